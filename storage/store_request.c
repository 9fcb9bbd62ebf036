/* store_request: the access-request queue. proxyd adds what users ask for on the block page;
 * an admin approves (with the allow rule made for it) or denies (with a reason) each one. A
 * decision is audited like a policy change.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/clock.h"
#include "storage/store_impl.h"

#define REQUESTS_DEFAULT_LIMIT 100
#define REQUESTS_MAX_LIMIT 1000

int store_request_add(struct store *st, const struct store_request *rq, int64_t *id, char *err,
                      size_t errlen)
{
    struct sql_stmt *s;
    int rc;

    if (store_begin(st, err, errlen) < 0)
        return -1;
    /* One pending request per client and host: asking again replaces the reason. */
    if (store_prepare(st,
                      "UPDATE access_requests SET time_ms = ?1, \"user\" = ?3, rule_id = ?6,"
                      " reason = ?7, name = ?8 WHERE client = ?2 AND host = ?4 AND port = ?5"
                      " AND status = 'pending' RETURNING id",
                      &s, err, errlen) < 0)
        goto fail;
    for (int pass = 0; pass < 2; pass++) {
        sql_bind_int64(s, 1, rq->time_ms);
        sql_bind_text(s, 2, rq->client);
        sql_bind_text(s, 3, rq->user);
        sql_bind_text(s, 4, rq->host);
        sql_bind_int64(s, 5, rq->port);
        sql_bind_int64(s, 6, rq->rule_id);
        sql_bind_text(s, 7, rq->reason);
        sql_bind_text(s, 8, rq->name);
        rc = sql_step(s);
        if (rc == SQL_ROW) {
            *id = sql_col_int64(s, 0);
            sql_finalize(s);
            return store_commit(st, err, errlen);
        }
        sql_finalize(s);
        if (rc != SQL_DONE) {
            store_sql_err(st, err, errlen, "access request");
            goto fail;
        }
        if (pass == 1)
            break;
        if (store_prepare(
                st,
                "INSERT INTO access_requests(time_ms, client, \"user\", host, port, rule_id,"
                " reason, name) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) RETURNING id",
                &s, err, errlen) < 0)
            goto fail;
    }
    store_errf(err, errlen, "access request: not stored");
fail:
    store_rollback(st);
    return -1;
}

static void copy_col(char *dst, size_t cap, struct sql_stmt *s, int col)
{
    const char *v = sql_col_text(s, col);

    snprintf(dst, cap, "%s", v ? v : "");
}

#define REQUEST_COLUMNS                                                                            \
    "SELECT id, time_ms, client, \"user\", host, port, rule_id, reason, name, status, decided_ms," \
    " decided_by, note, granted_rule_id FROM access_requests"

static void request_from_row(struct sql_stmt *s, void *element)
{
    struct store_request *r = element;

    memset(r, 0, sizeof(*r));
    r->id = sql_col_int64(s, 0);
    r->time_ms = sql_col_int64(s, 1);
    copy_col(r->client, sizeof(r->client), s, 2);
    copy_col(r->user, sizeof(r->user), s, 3);
    copy_col(r->host, sizeof(r->host), s, 4);
    r->port = (uint16_t)sql_col_int(s, 5);
    r->rule_id = sql_col_int(s, 6);
    copy_col(r->reason, sizeof(r->reason), s, 7);
    copy_col(r->name, sizeof(r->name), s, 8);
    copy_col(r->status, sizeof(r->status), s, 9);
    r->decided_ms = sql_col_int64(s, 10);
    copy_col(r->decided_by, sizeof(r->decided_by), s, 11);
    copy_col(r->note, sizeof(r->note), s, 12);
    r->granted_rule_id = sql_col_int(s, 13);
}

int store_requests_list(struct store *st, bool pending_only, int64_t before, size_t limit,
                        struct store_request **rows, size_t *n, char *err, size_t errlen)
{
    struct sql_stmt *s;
    struct store_request *v;
    size_t len = 0;
    int rc = SQL_DONE;

    *rows = NULL;
    *n = 0;
    if (limit == 0)
        limit = REQUESTS_DEFAULT_LIMIT;
    if (limit > REQUESTS_MAX_LIMIT)
        limit = REQUESTS_MAX_LIMIT;
    v = calloc(limit, sizeof(*v));
    if (!v)
        return store_errf(err, errlen, "access requests: out of memory");
    if (store_prepare(st,
                      pending_only ? REQUEST_COLUMNS
                          " WHERE status = 'pending' AND id < ? ORDER BY id DESC"
                          " LIMIT ?"
                                   : REQUEST_COLUMNS " WHERE id < ? ORDER BY id DESC LIMIT ?",
                      &s, err, errlen) < 0) {
        free(v);
        return -1;
    }
    sql_bind_int64(s, 1, before > 0 ? before : INT64_MAX);
    sql_bind_int64(s, 2, (int64_t)limit);
    while (len < limit && (rc = sql_step(s)) == SQL_ROW)
        request_from_row(s, &v[len++]);
    sql_finalize(s);
    if (len < limit && rc != SQL_DONE) {
        free(v);
        return store_sql_err(st, err, errlen, "access requests");
    }
    *rows = v;
    *n = len;
    return 0;
}

int64_t store_requests_pending(struct store *st)
{
    struct sql_stmt *s;
    int64_t count = -1;

    if (store_prepare(st, "SELECT count(*) FROM access_requests WHERE status = 'pending'", &s, NULL,
                      0) < 0)
        return -1;
    if (sql_step(s) == SQL_ROW)
        count = sql_col_int64(s, 0);
    sql_finalize(s);
    return count;
}

int store_request_get(struct store *st, int64_t id, struct store_request *out, char *err,
                      size_t errlen)
{
    struct sql_stmt *s;
    int rc;

    if (store_prepare(st, REQUEST_COLUMNS " WHERE id = ?", &s, err, errlen) < 0)
        return -1;
    sql_bind_int64(s, 1, id);
    rc = store_row_read(st, s, request_from_row, out, "access request", err, errlen);
    if (rc == 1)
        store_errf(err, errlen, "access request %lld: no such request", (long long)id);
    return rc;
}

int store_request_decide(struct store *st, int64_t id, bool approved, const char *note,
                         int granted_rule_id, const char *actor, char *err, size_t errlen)
{
    struct sql_stmt *s;
    char detail[512];
    int rc;

    if (store_begin(st, err, errlen) < 0)
        return -1;
    if (store_prepare(st,
                      "UPDATE access_requests SET status = ?, decided_ms = ?, decided_by = ?,"
                      " note = ?, granted_rule_id = ? WHERE id = ? AND status = 'pending'"
                      " RETURNING host",
                      &s, err, errlen) < 0)
        goto fail;
    sql_bind_text(s, 1, approved ? "approved" : "denied");
    sql_bind_int64(s, 2, clock_wall_ms());
    sql_bind_text(s, 3, actor && *actor ? actor : "-");
    sql_bind_text(s, 4, note ? note : "");
    sql_bind_int64(s, 5, granted_rule_id);
    sql_bind_int64(s, 6, id);
    rc = sql_step(s);
    if (rc == SQL_ROW)
        snprintf(detail, sizeof(detail), "request %lld (%s): %s%s%s", (long long)id,
                 sql_col_text(s, 0), approved ? "approved" : "denied", note && *note ? ": " : "",
                 note ? note : "");
    sql_finalize(s);
    if (rc == SQL_DONE) {
        store_rollback(st);
        store_errf(err, errlen, "access request %lld is not pending (decided meanwhile, or gone)",
                   (long long)id);
        return 1;
    }
    if (rc != SQL_ROW) {
        store_sql_err(st, err, errlen, "access request");
        goto fail;
    }
    if (store_audit_add(st, actor, approved ? "request.approve" : "request.deny", detail, err,
                        errlen) < 0)
        goto fail;
    return store_commit(st, err, errlen);
fail:
    store_rollback(st);
    return -1;
}
