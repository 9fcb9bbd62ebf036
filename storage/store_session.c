/* store_session: admin login sessions (table admin_sessions, migration 32), shared by every
 * node on the database, so a login made on one node works on the others and its end is seen
 * by all of them at their next request.
 *
 * Like an API token (store_token.c), a session id is 32 random bytes: an unkeyed BLAKE2b
 * hash of it is the key, so a copy of the database yields no session, and the lookup is one
 * index probe. The role and the must-change mark are read from admins with each check, so a
 * changed role or a replaced first-run password takes effect on every node at once.
 */
#include <sodium.h>
#include <stdio.h>
#include <string.h>

#include "base/clock.h"
#include "storage/store_impl.h"

static bool id_shape_ok(const char *id)
{
    return id && strlen(id) == STORE_SESSION_ID_HEX &&
           strspn(id, "0123456789abcdef") == STORE_SESSION_ID_HEX;
}

static int id_hash(const char *id, unsigned char out[crypto_generichash_BYTES])
{
    if (sodium_init() < 0)
        return -1;
    return crypto_generichash(out, crypto_generichash_BYTES, (const unsigned char *)id, strlen(id),
                              NULL, 0);
}

int store_session_add(struct store *st, const char *id, const char *admin, int64_t expires_ms,
                      char *err, size_t errlen)
{
    unsigned char hash[crypto_generichash_BYTES];
    int64_t now = clock_wall_ms();
    enum store_role role;
    struct sql_stmt *s;
    int rc;

    if (!id_shape_ok(id) || !admin || strlen(admin) > 63)
        return store_errf(err, errlen, "session: bad arguments");
    if (id_hash(id, hash) != 0)
        return store_errf(err, errlen, "session: cannot hash");
    if (store_begin(st, err, errlen) < 0)
        return -1;
    rc = store_admin_role(st, admin, &role, err, errlen);
    if (rc > 0) /* deleted meanwhile: said, as the caller replies with err */
        store_errf(err, errlen, "session: no admin %s", admin);
    if (rc != 0)
        goto out;
    rc = -1;
    if (store_prepare(st,
                      "INSERT INTO admin_sessions(hash, admin, created_ms, expires_ms)"
                      " VALUES (?, ?, ?, ?)",
                      &s, err, errlen) < 0)
        goto out;
    sql_bind_blob(s, 1, hash, sizeof(hash));
    sql_bind_text(s, 2, admin);
    sql_bind_int64(s, 3, now);
    sql_bind_int64(s, 4, expires_ms);
    if (sql_step(s) != SQL_DONE) {
        store_sql_err(st, err, errlen, "session");
        sql_finalize(s);
        goto out;
    }
    sql_finalize(s);
    /* Expired ones go (of every admin: the table stays as small as the live logins), and this
     * admin's oldest beyond the limit, so logging in over and over cannot grow it. */
    if (store_prepare(st,
                      "DELETE FROM admin_sessions WHERE expires_ms <= ?2 OR (admin = ?1"
                      " AND hash NOT IN (SELECT hash FROM admin_sessions WHERE admin = ?1"
                      " ORDER BY created_ms DESC, hash LIMIT ?3))",
                      &s, err, errlen) < 0)
        goto out;
    sql_bind_text(s, 1, admin);
    sql_bind_int64(s, 2, now);
    sql_bind_int64(s, 3, STORE_SESSIONS_PER_ADMIN);
    if (sql_step(s) != SQL_DONE) {
        store_sql_err(st, err, errlen, "sessions");
        sql_finalize(s);
        goto out;
    }
    sql_finalize(s);
    return store_commit(st, err, errlen);
out:
    store_rollback(st);
    return rc;
}

int store_session_get(struct store *st, const char *id, int64_t now_ms, struct store_session *out,
                      char *err, size_t errlen)
{
    unsigned char hash[crypto_generichash_BYTES];
    struct sql_stmt *s;
    int rc, role;

    memset(out, 0, sizeof(*out));
    if (!id_shape_ok(id))
        return 1;
    if (id_hash(id, hash) != 0)
        return store_errf(err, errlen, "session: cannot hash");
    if (store_prepare(st,
                      "SELECT s.admin, a.role, a.must_change, s.expires_ms FROM admin_sessions s"
                      " JOIN admins a ON a.name = s.admin WHERE s.hash = ? AND s.expires_ms > ?",
                      &s, err, errlen) < 0)
        return -1;
    sql_bind_blob(s, 1, hash, sizeof(hash));
    sql_bind_int64(s, 2, now_ms);
    rc = sql_step(s);
    if (rc == SQL_ROW) {
        snprintf(out->admin, sizeof(out->admin), "%s", sql_col_text(s, 0));
        role = store_role_parse(sql_col_text(s, 1));
        out->role = role < 0 ? STORE_ROLE_VIEWER : (enum store_role)role; /* fails closed */
        out->must_change = sql_col_int(s, 2) != 0;
        out->expires_ms = sql_col_int64(s, 3);
    }
    sql_finalize(s);
    if (rc == SQL_ROW)
        return 0;
    return rc == SQL_DONE ? 1 : store_sql_err(st, err, errlen, "session");
}

int store_session_delete(struct store *st, const char *id, char *err, size_t errlen)
{
    unsigned char hash[crypto_generichash_BYTES];
    struct sql_stmt *s;
    int rc;

    if (!id_shape_ok(id))
        return 0;
    if (id_hash(id, hash) != 0)
        return store_errf(err, errlen, "session: cannot hash");
    if (store_prepare(st, "DELETE FROM admin_sessions WHERE hash = ?", &s, err, errlen) < 0)
        return -1;
    sql_bind_blob(s, 1, hash, sizeof(hash));
    rc = sql_step(s);
    sql_finalize(s);
    return rc == SQL_DONE ? 0 : store_sql_err(st, err, errlen, "session");
}

int64_t store_sessions_end(struct store *st, const char *admin, const char *keep_id, char *err,
                           size_t errlen)
{
    unsigned char hash[crypto_generichash_BYTES] = {0}; /* no session's: keeps none */
    struct sql_stmt *s;
    int rc;

    if (!admin)
        return store_errf(err, errlen, "sessions: bad arguments");
    if (id_shape_ok(keep_id) && id_hash(keep_id, hash) != 0)
        return store_errf(err, errlen, "session: cannot hash");
    if (store_prepare(st, "DELETE FROM admin_sessions WHERE admin = ? AND hash <> ?", &s, err,
                      errlen) < 0)
        return -1;
    sql_bind_text(s, 1, admin);
    sql_bind_blob(s, 2, hash, sizeof(hash));
    rc = sql_step(s);
    sql_finalize(s);
    if (rc != SQL_DONE)
        return store_sql_err(st, err, errlen, "sessions");
    return sql_changes(st);
}
