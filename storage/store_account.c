/* store_account: proxy users and admin accounts, passwords hashed with libsodium's
 * crypto_pwhash_str (Argon2id, interactive limits). Changes to proxy users bump the policy
 * version (proxyd's authentication reads them); admin changes do not.
 *
 * A name without an account is checked against a dummy hash made with the same limits, so
 * a wrong password costs one Argon2 run whether the name exists or not: the answer's timing
 * does not tell which names exist.
 */
#include <pthread.h>
#include <sodium.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/clock.h"
#include "storage/store_impl.h"

static pthread_once_t sodium_once = PTHREAD_ONCE_INIT;
static int sodium_status = -1;
/* Made once per process from a random password nobody knows; "" if hashing failed, and
 * then unknown names cost no Argon2 (a timing hint, never a false match). */
static char dummy_hash[crypto_pwhash_STRBYTES];
static _Atomic uint64_t hash_runs;

static void sodium_setup(void)
{
    unsigned char pw[16];

    sodium_status = sodium_init() < 0 ? -1 : 0;
    if (sodium_status < 0)
        return;
    randombytes_buf(pw, sizeof(pw));
    if (crypto_pwhash_str(dummy_hash, (const char *)pw, sizeof(pw),
                          crypto_pwhash_OPSLIMIT_INTERACTIVE,
                          crypto_pwhash_MEMLIMIT_INTERACTIVE) != 0)
        dummy_hash[0] = '\0';
    sodium_memzero(pw, sizeof(pw));
}

static int crypto_ready(char *err, size_t errlen)
{
    pthread_once(&sodium_once, sodium_setup);
    if (sodium_status < 0)
        return store_errf(err, errlen, "libsodium: initialisation failed");
    return 0;
}

/* Table names are chosen from this fixed pair, never from input. */
static const char *const set_sql[] = {
    [STORE_PROXY_USER] = "INSERT INTO users(name, hash, updated_ms) VALUES (?, ?, ?)"
                         " ON CONFLICT(name) DO UPDATE SET hash = excluded.hash,"
                         " updated_ms = excluded.updated_ms",
    [STORE_ADMIN] = "INSERT INTO admins(name, hash, updated_ms) VALUES (?, ?, ?)"
                    " ON CONFLICT(name) DO UPDATE SET hash = excluded.hash,"
                    " updated_ms = excluded.updated_ms, must_change = 0",
};
static const char *const delete_sql[] = {
    [STORE_PROXY_USER] = "DELETE FROM users WHERE name = ?",
    [STORE_ADMIN] = "DELETE FROM admins WHERE name = ?",
};
static const char *const hash_sql[] = {
    [STORE_PROXY_USER] = "SELECT hash FROM users WHERE name = ?",
    [STORE_ADMIN] = "SELECT hash FROM admins WHERE name = ?",
};
static const char *const names_sql[] = {
    [STORE_PROXY_USER] = "SELECT name FROM users ORDER BY name",
    [STORE_ADMIN] = "SELECT name FROM admins ORDER BY name",
};
static const char *const kind_name[] = {[STORE_PROXY_USER] = "user", [STORE_ADMIN] = "admin"};

static bool kind_ok(enum store_account kind)
{
    return kind == STORE_PROXY_USER || kind == STORE_ADMIN;
}

/* Ends an account change inside its transaction: the audit row (action e.g. "user.set",
 * "admin.delete"), a policy version bump for proxy users (they count as policy: a change to
 * them is a policy change), the commit. Returns 0, or -1 with err set and the transaction
 * rolled back. */
static int account_change_commit(struct store *st, enum store_account kind, const char *verb,
                                 const char *name, const char *actor, char *err, size_t errlen)
{
    char action[32];

    snprintf(action, sizeof(action), "%s.%s", kind_name[kind], verb);
    if (store_audit_add(st, actor, action, name, err, errlen) < 0 ||
        (kind == STORE_PROXY_USER && store_policy_bump(st, err, errlen) < 0)) {
        store_rollback(st);
        return -1;
    }
    return store_commit(st, err, errlen);
}

/* Argon2id of password into hash; done before any transaction: it takes tens of ms and must
 * not hold the write lock. 0, or -1 with err set. */
static int hash_password(enum store_account kind, const char *name, const char *password,
                         char hash[crypto_pwhash_STRBYTES], char *err, size_t errlen)
{
    if (!kind_ok(kind))
        return store_errf(err, errlen, "account: bad kind %d", (int)kind);
    if (!name || !*name || strlen(name) > 63)
        return store_errf(err, errlen, "%s name must be 1 to 63 bytes", kind_name[kind]);
    if (!password || !*password)
        return store_errf(err, errlen, "%s %s: empty password", kind_name[kind], name);
    if (crypto_ready(err, errlen) < 0)
        return -1;
    if (crypto_pwhash_str(hash, password, strlen(password), crypto_pwhash_OPSLIMIT_INTERACTIVE,
                          crypto_pwhash_MEMLIMIT_INTERACTIVE) != 0)
        return store_errf(err, errlen, "%s %s: out of memory while hashing", kind_name[kind], name);
    return 0;
}

/* Runs sql (name, hash, now) inside the caller's transaction. 0, or -1 with err set. */
static int account_write(struct store *st, enum store_account kind, const char *sql,
                         const char *name, const char *hash, char *err, size_t errlen)
{
    struct sql_stmt *s;
    int rc;

    if (store_prepare(st, sql, &s, err, errlen) < 0)
        return -1;
    sql_bind_text(s, 1, name);
    sql_bind_text(s, 2, hash);
    sql_bind_int64(s, 3, clock_wall_ms());
    rc = sql_step(s);
    sql_finalize(s);
    return rc == SQL_DONE ? 0 : store_sql_err(st, err, errlen, kind_name[kind]);
}

int store_account_set(struct store *st, enum store_account kind, const char *name,
                      const char *password, const char *actor, char *err, size_t errlen)
{
    char hash[crypto_pwhash_STRBYTES];

    if (hash_password(kind, name, password, hash, err, errlen) < 0)
        return -1;
    if (store_begin(st, err, errlen) < 0)
        return -1;
    if (account_write(st, kind, set_sql[kind], name, hash, err, errlen) < 0) {
        store_rollback(st);
        return -1;
    }
    return account_change_commit(st, kind, "set", name, actor, err, errlen);
}

int store_admin_first(struct store *st, const char *name, const char *password, char *err,
                      size_t errlen)
{
    char hash[crypto_pwhash_STRBYTES];
    struct sql_stmt *s;
    int64_t admins = -1;

    if (hash_password(STORE_ADMIN, name, password, hash, err, errlen) < 0)
        return -1;
    /* Counted under the write lock, so two processes starting on one database at once
     * cannot both create a first admin. */
    if (store_begin(st, err, errlen) < 0)
        return -1;
    if (store_prepare(st, "SELECT count(*) FROM admins", &s, err, errlen) < 0)
        goto fail;
    if (sql_step(s) == SQL_ROW)
        admins = sql_col_int64(s, 0);
    sql_finalize(s);
    if (admins < 0) {
        store_sql_err(st, err, errlen, "admins");
        goto fail;
    }
    if (admins > 0) {
        store_rollback(st);
        return 0;
    }
    if (account_write(st, STORE_ADMIN,
                      "INSERT INTO admins(name, hash, updated_ms, must_change) VALUES (?, ?, ?, 1)",
                      name, hash, err, errlen) < 0)
        goto fail;
    return account_change_commit(st, STORE_ADMIN, "set", name, "proxyd", err, errlen) < 0 ? -1 : 1;
fail:
    store_rollback(st);
    return -1;
}

int store_admin_must_change(struct store *st, const char *name)
{
    struct sql_stmt *s;
    int rc, ret;

    if (!name ||
        store_prepare(st, "SELECT must_change FROM admins WHERE name = ?", &s, NULL, 0) < 0)
        return -1;
    sql_bind_text(s, 1, name);
    rc = sql_step(s);
    ret = rc == SQL_ROW ? sql_col_int(s, 0) != 0 : rc == SQL_DONE ? 0 : -1;
    sql_finalize(s);
    return ret;
}

static const char *const role_names[STORE_ROLE_COUNT] = {[STORE_ROLE_VIEWER] = "viewer",
                                                         [STORE_ROLE_OPERATOR] = "operator",
                                                         [STORE_ROLE_ADMIN] = "admin"};

const char *store_role_str(enum store_role role)
{
    return role < STORE_ROLE_COUNT ? role_names[role] : "?";
}

int store_role_parse(const char *s)
{
    for (int i = 0; s && i < STORE_ROLE_COUNT; i++)
        if (!strcmp(s, role_names[i]))
            return i;
    return -1;
}

/* The role of admin name inside the caller's transaction, as store_admin_role answers. An
 * unknown word in the column (written by hand) reads as viewer: it fails closed. */
static int role_read(struct store *st, const char *name, enum store_role *role, char *err,
                     size_t errlen)
{
    struct sql_stmt *s;
    int rc, r;

    if (store_prepare(st, "SELECT role FROM admins WHERE name = ?", &s, err, errlen) < 0)
        return -1;
    sql_bind_text(s, 1, name);
    rc = sql_step(s);
    if (rc == SQL_ROW) {
        r = store_role_parse(sql_col_text(s, 0));
        *role = r < 0 ? STORE_ROLE_VIEWER : (enum store_role)r;
    }
    sql_finalize(s);
    if (rc == SQL_ROW)
        return 0;
    if (rc == SQL_DONE)
        return 1;
    return store_errf(err, errlen, "admin %s: cannot read its role", name);
}

int store_admin_role(struct store *st, const char *name, enum store_role *role, char *err,
                     size_t errlen)
{
    if (!name)
        return store_errf(err, errlen, "admin role: no name");
    return role_read(st, name, role, err, errlen);
}

int store_admin_role_set(struct store *st, const char *name, enum store_role role,
                         const char *actor, char *err, size_t errlen)
{
    enum store_role old;
    struct sql_stmt *s;
    char detail[160];
    int rc, admins = 0;

    if (!name || role >= STORE_ROLE_COUNT)
        return store_errf(err, errlen, "admin role: bad arguments");
    if (store_begin(st, err, errlen) < 0)
        return -1;
    rc = role_read(st, name, &old, err, errlen);
    if (rc != 0)
        goto out;
    if (old == STORE_ROLE_ADMIN && role != STORE_ROLE_ADMIN) {
        if (store_prepare(st, "SELECT count(*) FROM admins WHERE role = 'admin'", &s, err, errlen) <
            0) {
            rc = -1;
            goto out;
        }
        if (sql_step(s) == SQL_ROW)
            admins = sql_col_int(s, 0);
        sql_finalize(s);
        if (admins <= 1) {
            rc = 2;
            goto out;
        }
    }
    if (store_prepare(st, "UPDATE admins SET role = ? WHERE name = ?", &s, err, errlen) < 0) {
        rc = -1;
        goto out;
    }
    sql_bind_text(s, 1, role_names[role]);
    sql_bind_text(s, 2, name);
    rc =
        sql_step(s) == SQL_DONE ? 0 : store_errf(err, errlen, "admin %s: %s", name, sql_errmsg(st));
    sql_finalize(s);
    if (rc < 0)
        goto out;
    /* Its sessions end on every node: they were opened for the old role. */
    if (old != role && store_sessions_end(st, name, NULL, err, errlen) < 0) {
        rc = -1;
        goto out;
    }
    snprintf(detail, sizeof(detail), "%s: %s -> %s", name, role_names[old], role_names[role]);
    if (store_audit_add(st, actor, "admin.role", detail, err, errlen) < 0) {
        rc = -1;
        goto out;
    }
    return store_commit(st, err, errlen);
out:
    store_rollback(st);
    return rc;
}

int store_account_delete(struct store *st, enum store_account kind, const char *name,
                         const char *actor, char *err, size_t errlen)
{
    if (!kind_ok(kind) || !name)
        return store_errf(err, errlen, "account: bad arguments");
    if (store_begin(st, err, errlen) < 0)
        return -1;
    if (store_exec_text(st, delete_sql[kind], name, kind_name[kind], err, errlen) < 0)
        goto fail;
    if (sql_changes(st) == 0) {
        store_errf(err, errlen, "%s %s: no such account", kind_name[kind], name);
        goto fail;
    }
    return account_change_commit(st, kind, "delete", name, actor, err, errlen);
fail:
    store_rollback(st);
    return -1;
}

/* Runs Argon2 against the dummy hash: the same work as a real check, never a match. */
static int verify_dummy(const char *password)
{
    int rc = 0;

    if (dummy_hash[0]) {
        atomic_fetch_add(&hash_runs, 1);
        rc = crypto_pwhash_str_verify(dummy_hash, password, strlen(password));
    }
    (void)rc; /* a match is no account either */
    return 0;
}

int store_account_verify(struct store *st, enum store_account kind, const char *name,
                         const char *password)
{
    char hash[crypto_pwhash_STRBYTES];
    struct sql_stmt *s;
    const char *h;
    int rc;

    if (!kind_ok(kind) || !name || !password || crypto_ready(NULL, 0) < 0)
        return -1;
    if (store_prepare(st, hash_sql[kind], &s, NULL, 0) < 0)
        return -1;
    sql_bind_text(s, 1, name);
    rc = sql_step(s);
    if (rc == SQL_DONE) {
        sql_finalize(s);
        return verify_dummy(password);
    }
    h = rc == SQL_ROW ? sql_col_text(s, 0) : NULL;
    if (!h || strlen(h) >= sizeof(hash) || strncmp(h, "$argon2id$", 10) != 0) {
        sql_finalize(s);
        /* a malformed hash matches nothing */
        return rc == SQL_ROW ? verify_dummy(password) : -1;
    }
    memcpy(hash, h, strlen(h) + 1);
    sql_finalize(s);
    atomic_fetch_add(&hash_runs, 1);
    return crypto_pwhash_str_verify(hash, password, strlen(password)) == 0 ? 1 : 0;
}

void store_strings_free(char **v, size_t n)
{
    for (size_t i = 0; v && i < n; i++)
        free(v[i]);
    free(v);
}

uint64_t store_account_hash_runs(void)
{
    return atomic_load(&hash_runs);
}

int store_account_names(struct store *st, enum store_account kind, char ***names, size_t *n)
{
    struct sql_stmt *s;
    char **v = NULL;
    size_t len = 0, cap = 0;
    int rc;

    *names = NULL;
    *n = 0;
    if (!kind_ok(kind) || store_prepare(st, names_sql[kind], &s, NULL, 0) < 0)
        return -1;
    while ((rc = sql_step(s)) == SQL_ROW) {
        if (store_array_reserve(&v, &cap, len, 16, sizeof(*v)) < 0)
            break;
        if (!(v[len] = strdup(sql_col_text(s, 0))))
            break;
        len++;
    }
    sql_finalize(s);
    if (rc != SQL_DONE) {
        for (size_t i = 0; i < len; i++)
            free(v[i]);
        free(v);
        return -1;
    }
    *names = v;
    *n = len;
    return 0;
}
