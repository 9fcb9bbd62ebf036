/* store_forward: the stored port forwards. Each change is one transaction with its audit
 * row; forwards are not part of the rule set, so no change bumps the policy version (proxyd
 * reads the list itself, and the admin server's changes reach it directly).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/clock.h"
#include "storage/store_impl.h"

static void forward_of(struct sql_stmt *s, void *element)
{
    struct store_forward *f = element;

    f->id = sql_col_int(s, 0);
    snprintf(f->listen, sizeof(f->listen), "%s", sql_col_text(s, 1));
    snprintf(f->target, sizeof(f->target), "%s", sql_col_text(s, 2));
    snprintf(f->clients, sizeof(f->clients), "%s", sql_col_text(s, 3));
    f->created_ms = sql_col_int64(s, 4);
    snprintf(f->tls, sizeof(f->tls), "%s", sql_col_text(s, 5));
    snprintf(f->tls_name, sizeof(f->tls_name), "%s", sql_col_text(s, 6));
}

int store_forwards_list(struct store *st, struct store_forward **out, size_t *n, char *err,
                        size_t errlen)
{
    struct sql_stmt *s;

    *out = NULL;
    *n = 0;
    if (store_prepare(st,
                      "SELECT id, listen, target, clients, created_ms, tls, tls_name FROM forwards"
                      " ORDER BY id",
                      &s, err, errlen) < 0)
        return -1;
    return store_rows_read(st, s, forward_of, sizeof(**out), out, n, "forwards", err, errlen);
}

static void describe(char *detail, size_t cap, int id, const char *listen, const char *target,
                     const char *clients, const char *tls, const char *tls_name)
{
    snprintf(detail, cap, "forward %d: %s -> %s%s%s%s%s%s%s", id, listen, target,
             clients && *clients ? " clients " : "", clients ? clients : "", tls && *tls ? " " : "",
             tls ? tls : "", tls_name && *tls_name ? " tls-name " : "", tls_name ? tls_name : "");
}

static int commit_audited(struct store *st, const char *actor, const char *action,
                          const char *detail, char *err, size_t errlen)
{
    if (store_audit_add(st, actor, action, detail, err, errlen) < 0) {
        store_rollback(st);
        return -1;
    }
    return store_commit(st, err, errlen);
}

int store_forward_add(struct store *st, const char *listen, const char *target, const char *clients,
                      const char *tls, const char *tls_name, const char *actor, int *id, char *err,
                      size_t errlen)
{
    struct sql_stmt *s;
    char detail[512];

    if (!listen || !*listen || !target || !*target)
        return store_errf(err, errlen, "forward: listen address and target are required");
    if (store_begin(st, err, errlen) < 0)
        return -1;
    if (store_prepare(st,
                      "INSERT INTO forwards(listen, target, clients, created_ms, tls, tls_name)"
                      " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT(listen) DO NOTHING RETURNING id",
                      &s, err, errlen) < 0) {
        store_rollback(st);
        return -1;
    }
    sql_bind_text(s, 1, listen);
    sql_bind_text(s, 2, target);
    sql_bind_text(s, 3, clients ? clients : "");
    sql_bind_int64(s, 4, clock_wall_ms());
    sql_bind_text(s, 5, tls ? tls : "");
    sql_bind_text(s, 6, tls_name ? tls_name : "");
    int rc = sql_step(s);
    if (rc == SQL_ROW)
        *id = sql_col_int(s, 0);
    sql_finalize(s);
    if (rc == SQL_DONE) {
        store_rollback(st);
        store_errf(err, errlen, "a forward already listens on %s", listen);
        return 1;
    }
    if (rc != SQL_ROW) {
        store_sql_err(st, err, errlen, "forward add");
        store_rollback(st);
        return -1;
    }
    describe(detail, sizeof(detail), *id, listen, target, clients, tls, tls_name);
    return commit_audited(st, actor, "forward.add", detail, err, errlen);
}

int store_forward_delete(struct store *st, int id, const char *actor, char *err, size_t errlen)
{
    struct sql_stmt *s;
    char detail[512];

    if (store_begin(st, err, errlen) < 0)
        return -1;
    if (store_prepare(st,
                      "SELECT listen, target, clients, tls, tls_name FROM forwards WHERE id = ?",
                      &s, err, errlen) < 0) {
        store_rollback(st);
        return -1;
    }
    sql_bind_int64(s, 1, id);
    int rc = sql_step(s);
    if (rc == SQL_ROW)
        describe(detail, sizeof(detail), id, sql_col_text(s, 0), sql_col_text(s, 1),
                 sql_col_text(s, 2), sql_col_text(s, 3), sql_col_text(s, 4));
    sql_finalize(s);
    if (rc == SQL_DONE) {
        store_rollback(st);
        store_errf(err, errlen, "no forward %d", id);
        return 1;
    }
    if (rc != SQL_ROW) {
        store_sql_err(st, err, errlen, "forward delete");
        store_rollback(st);
        return -1;
    }
    if (store_prepare(st, "DELETE FROM forwards WHERE id = ?", &s, err, errlen) < 0) {
        store_rollback(st);
        return -1;
    }
    sql_bind_int64(s, 1, id);
    rc = sql_step(s);
    sql_finalize(s);
    if (rc != SQL_DONE) {
        store_sql_err(st, err, errlen, "forward delete");
        store_rollback(st);
        return -1;
    }
    return commit_audited(st, actor, "forward.delete", detail, err, errlen);
}
