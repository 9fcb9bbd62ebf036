/* store_token: named API tokens of admin accounts (table admin_tokens, migration 20).
 *
 * A secret is 32 random bytes: guessing one is hopeless, so a fast unkeyed BLAKE2b hash
 * (libsodium's crypto_generichash) is enough to keep a stolen database from yielding usable
 * tokens, and it can be looked up by an index, unlike a salted password hash. Only the hash
 * is stored; the secret is shown once.
 */
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/clock.h"
#include "storage/store_impl.h"

/* Last use is noted at this granularity, so a busy script does not write on every call. */
#define LAST_USED_STEP_MS 60000

static int token_hash(const char *secret, unsigned char out[crypto_generichash_BYTES])
{
    if (sodium_init() < 0)
        return -1;
    return crypto_generichash(out, crypto_generichash_BYTES, (const unsigned char *)secret,
                              strlen(secret), NULL, 0);
}

/* True if secret has the shape of a token: the prefix and 64 lower-case hex digits. */
static bool token_shape_ok(const char *secret)
{
    size_t plen = strlen(STORE_TOKEN_PREFIX);

    if (strlen(secret) != STORE_TOKEN_LEN || strncmp(secret, STORE_TOKEN_PREFIX, plen) != 0)
        return false;
    return strspn(secret + plen, "0123456789abcdef") == STORE_TOKEN_LEN - plen;
}

int store_token_add(struct store *st, const char *owner, const char *name, const char *actor,
                    char secret[STORE_TOKEN_LEN + 1], char *err, size_t errlen)
{
    unsigned char raw[32], hash[crypto_generichash_BYTES];
    char detail[160];
    enum store_role role;
    struct sql_stmt *s;
    int rc;

    if (!owner || !name || !*name || strlen(name) > 63 || strlen(owner) > 63)
        return store_errf(err, errlen, "token: bad arguments");
    if (sodium_init() < 0)
        return store_errf(err, errlen, "libsodium: initialisation failed");
    randombytes_buf(raw, sizeof(raw));
    memcpy(secret, STORE_TOKEN_PREFIX, strlen(STORE_TOKEN_PREFIX));
    sodium_bin2hex(secret + strlen(STORE_TOKEN_PREFIX), STORE_TOKEN_LEN + 1 - 4, raw, sizeof(raw));
    sodium_memzero(raw, sizeof(raw));
    if (token_hash(secret, hash) != 0)
        return store_errf(err, errlen, "token: cannot hash");
    if (store_begin(st, err, errlen) < 0)
        return -1;
    rc = store_admin_role(st, owner, &role, err, errlen);
    if (rc != 0) {
        store_rollback(st);
        return rc < 0 ? -1 : 2;
    }
    if (store_prepare(st,
                      "INSERT INTO admin_tokens(name, owner, hash, created_ms) VALUES (?, ?, ?, ?)"
                      " ON CONFLICT(owner, name) DO NOTHING",
                      &s, err, errlen) < 0)
        goto fail;
    sql_bind_text(s, 1, name);
    sql_bind_text(s, 2, owner);
    sql_bind_blob(s, 3, hash, sizeof(hash));
    sql_bind_int64(s, 4, clock_wall_ms());
    rc = sql_step(s);
    sql_finalize(s);
    if (rc != SQL_DONE) {
        store_sql_err(st, err, errlen, "token");
        goto fail;
    }
    if (sql_changes(st) == 0) {
        store_rollback(st);
        sodium_memzero(secret, STORE_TOKEN_LEN + 1);
        return 1;
    }
    snprintf(detail, sizeof(detail), "%s/token:%s", owner, name);
    if (store_audit_add(st, actor, "token.add", detail, err, errlen) < 0)
        goto fail;
    if (store_commit(st, err, errlen) < 0)
        goto wipe;
    return 0;
fail:
    store_rollback(st);
wipe:
    sodium_memzero(secret, STORE_TOKEN_LEN + 1);
    return -1;
}

int store_token_check(struct store *st, const char *secret, char owner[64], char name[64],
                      enum store_role *role, char *err, size_t errlen)
{
    unsigned char hash[crypto_generichash_BYTES];
    int64_t last = 0, now = clock_wall_ms();
    struct sql_stmt *s;
    int rc, r;

    if (!secret || !token_shape_ok(secret))
        return 1;
    if (token_hash(secret, hash) != 0)
        return store_errf(err, errlen, "token: cannot hash");
    if (store_prepare(st,
                      "SELECT t.name, t.owner, a.role, t.last_used_ms FROM admin_tokens t"
                      " JOIN admins a ON a.name = t.owner WHERE t.hash = ?",
                      &s, err, errlen) < 0)
        return -1;
    sql_bind_blob(s, 1, hash, sizeof(hash));
    rc = sql_step(s);
    if (rc == SQL_ROW) {
        snprintf(name, 64, "%s", sql_col_text(s, 0));
        snprintf(owner, 64, "%s", sql_col_text(s, 1));
        r = store_role_parse(sql_col_text(s, 2));
        *role = r < 0 ? STORE_ROLE_VIEWER : (enum store_role)r; /* unknown: fails closed */
        last = sql_col_int64(s, 3);
    }
    sql_finalize(s);
    if (rc == SQL_DONE)
        return 1;
    if (rc != SQL_ROW)
        return store_sql_err(st, err, errlen, "token");
    /* Best effort: a locked or full database must not refuse a valid token. */
    if (now - last >= LAST_USED_STEP_MS &&
        store_prepare(st, "UPDATE admin_tokens SET last_used_ms = ? WHERE hash = ?", &s, NULL, 0) ==
            0) {
        sql_bind_int64(s, 1, now);
        sql_bind_blob(s, 2, hash, sizeof(hash));
        sql_step(s);
        sql_finalize(s);
    }
    return 0;
}

static void token_of(struct sql_stmt *s, void *element)
{
    struct store_token *t = element;

    snprintf(t->name, sizeof(t->name), "%s", sql_col_text(s, 0));
    snprintf(t->owner, sizeof(t->owner), "%s", sql_col_text(s, 1));
    t->created_ms = sql_col_int64(s, 2);
    t->last_used_ms = sql_col_int64(s, 3);
}

int store_token_list(struct store *st, const char *owner, struct store_token **rows, size_t *n,
                     char *err, size_t errlen)
{
    struct sql_stmt *s;

    *rows = NULL;
    *n = 0;
    if (store_prepare(st,
                      "SELECT name, owner, created_ms, last_used_ms FROM admin_tokens"
                      " WHERE CAST(?1 AS TEXT) IS NULL OR owner = ?1 ORDER BY name, owner",
                      &s, err, errlen) < 0)
        return -1;
    if (owner)
        sql_bind_text(s, 1, owner);
    return store_rows_read(st, s, token_of, sizeof(**rows), rows, n, "tokens", err, errlen);
}

int store_token_delete(struct store *st, const char *name, const char *owner, const char *actor,
                       char *err, size_t errlen)
{
    char held_by[64] = "", detail[160];
    struct sql_stmt *s;
    int rc, held = 0;

    if (!name)
        return store_errf(err, errlen, "token: no name");
    if (store_begin(st, err, errlen) < 0)
        return -1;
    /* Without an owner: the one token of that name, if only one admin has one. */
    if (store_prepare(st,
                      "SELECT owner FROM admin_tokens"
                      " WHERE name = ?1 AND (CAST(?2 AS TEXT) IS NULL OR owner = ?2) LIMIT 2",
                      &s, err, errlen) < 0)
        goto fail;
    sql_bind_text(s, 1, name);
    if (owner)
        sql_bind_text(s, 2, owner);
    while ((rc = sql_step(s)) == SQL_ROW)
        if (held++ == 0)
            snprintf(held_by, sizeof(held_by), "%s", sql_col_text(s, 0));
    sql_finalize(s);
    if (rc != SQL_DONE) {
        store_sql_err(st, err, errlen, "token");
        goto fail;
    }
    if (held != 1) {
        store_rollback(st);
        return held == 0 ? 1 : 2;
    }
    if (store_prepare(st, "DELETE FROM admin_tokens WHERE name = ? AND owner = ?", &s, err,
                      errlen) < 0)
        goto fail;
    sql_bind_text(s, 1, name);
    sql_bind_text(s, 2, held_by);
    rc = sql_step(s);
    sql_finalize(s);
    if (rc != SQL_DONE) {
        store_sql_err(st, err, errlen, "token");
        goto fail;
    }
    snprintf(detail, sizeof(detail), "%s/token:%s", held_by, name);
    if (store_audit_add(st, actor, "token.delete", detail, err, errlen) < 0)
        goto fail;
    return store_commit(st, err, errlen);
fail:
    store_rollback(st);
    return -1;
}

int store_token_revoke_owner(struct store *st, const char *owner, const char *actor, char *err,
                             size_t errlen)
{
    char detail[160];
    int n;

    if (!owner)
        return store_errf(err, errlen, "token: no owner");
    if (store_begin(st, err, errlen) < 0)
        return -1;
    if (store_exec_text(st, "DELETE FROM admin_tokens WHERE owner = ?", owner, "token", err,
                        errlen) < 0)
        goto fail;
    n = (int)sql_changes(st);
    if (n == 0) {
        store_rollback(st);
        return 0;
    }
    snprintf(detail, sizeof(detail), "%s: %d token%s", owner, n, n == 1 ? "" : "s");
    if (store_audit_add(st, actor, "token.revoke", detail, err, errlen) < 0)
        goto fail;
    return store_commit(st, err, errlen) < 0 ? -1 : n;
fail:
    store_rollback(st);
    return -1;
}
