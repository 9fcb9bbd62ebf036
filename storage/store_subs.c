/* store_subs: list subscriptions, the lists proxyd fetches from a URL on a schedule. Adding
 * and removing one is audited but moves no policy version (the rule set is unchanged until a
 * fetch imports the list, which is a list change of its own); a fetch's outcome is recorded
 * without audit, as a log line would be.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/clock.h"
#include "storage/store_impl.h"

#define SUB_COLS                                                                                   \
    "name, url, every_s, next_ms, checked_ms, imported_ms, entries, status, etag,"                 \
    " last_modified, error, created_ms"

static void copy_col(char *dst, size_t cap, struct sql_stmt *s, int col)
{
    const char *t = sql_col_text(s, col);

    snprintf(dst, cap, "%s", t ? t : "");
}

static void sub_of(struct sql_stmt *s, void *element)
{
    struct store_sub *o = element;

    memset(o, 0, sizeof(*o));
    copy_col(o->name, sizeof(o->name), s, 0);
    copy_col(o->url, sizeof(o->url), s, 1);
    o->every_s = sql_col_int64(s, 2);
    o->next_ms = sql_col_int64(s, 3);
    o->checked_ms = sql_col_int64(s, 4);
    o->imported_ms = sql_col_int64(s, 5);
    o->entries = sql_col_int64(s, 6);
    o->status = sql_col_int(s, 7);
    copy_col(o->etag, sizeof(o->etag), s, 8);
    copy_col(o->last_modified, sizeof(o->last_modified), s, 9);
    copy_col(o->error, sizeof(o->error), s, 10);
    o->created_ms = sql_col_int64(s, 11);
}

int store_subs_list(struct store *st, struct store_sub **out, size_t *n, char *err, size_t errlen)
{
    struct sql_stmt *s;

    *out = NULL;
    *n = 0;
    if (store_prepare(st, "SELECT " SUB_COLS " FROM list_subscriptions ORDER BY name", &s, err,
                      errlen) < 0)
        return -1;
    return store_rows_read(st, s, sub_of, sizeof(**out), out, n, "subscriptions", err, errlen);
}

int store_sub_get(struct store *st, const char *name, struct store_sub *out, char *err,
                  size_t errlen)
{
    struct sql_stmt *s;

    if (store_prepare(st, "SELECT " SUB_COLS " FROM list_subscriptions WHERE name = ?", &s, err,
                      errlen) < 0)
        return -1;
    sql_bind_text(s, 1, name);
    return store_row_read(st, s, sub_of, out, "subscription", err, errlen);
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

int store_sub_add(struct store *st, const char *name, const char *url, int64_t every_s,
                  const char *actor, char *err, size_t errlen)
{
    char detail[STORE_SUB_URL_MAX + 128];
    struct sql_stmt *s;
    int rc;

    if (!name || !*name || strlen(name) > 63 || !url || !*url || strlen(url) > STORE_SUB_URL_MAX ||
        every_s <= 0)
        return store_errf(err, errlen,
                          "subscription: a name, a URL of at most %d bytes and an "
                          "interval are required",
                          STORE_SUB_URL_MAX);
    if (store_begin(st, err, errlen) < 0)
        return -1;
    /* next_ms 0: the first fetch is due at once. */
    if (store_prepare(st,
                      "INSERT INTO list_subscriptions(name, url, every_s, created_ms)"
                      " VALUES (?, ?, ?, ?) ON CONFLICT(name) DO NOTHING",
                      &s, err, errlen) < 0) {
        store_rollback(st);
        return -1;
    }
    sql_bind_text(s, 1, name);
    sql_bind_text(s, 2, url);
    sql_bind_int64(s, 3, every_s);
    sql_bind_int64(s, 4, clock_wall_ms());
    rc = sql_step(s);
    sql_finalize(s);
    if (rc != SQL_DONE) {
        store_sql_err(st, err, errlen, "subscription add");
        store_rollback(st);
        return -1;
    }
    if (sql_changes(st) == 0) {
        store_rollback(st);
        store_errf(err, errlen, "list %s already has a subscription", name);
        return 1;
    }
    snprintf(detail, sizeof(detail), "list %s: %s every %llds", name, url, (long long)every_s);
    return commit_audited(st, actor, "subscription.add", detail, err, errlen);
}

int store_sub_delete(struct store *st, const char *name, const char *actor, char *err,
                     size_t errlen)
{
    char detail[128];

    if (store_begin(st, err, errlen) < 0)
        return -1;
    if (store_exec_text(st, "DELETE FROM list_subscriptions WHERE name = ?", name,
                        "subscription delete", err, errlen) < 0) {
        store_rollback(st);
        return -1;
    }
    if (sql_changes(st) == 0) {
        store_rollback(st);
        store_errf(err, errlen, "list %s has no subscription", name);
        return 1;
    }
    snprintf(detail, sizeof(detail), "list %s", name);
    return commit_audited(st, actor, "subscription.delete", detail, err, errlen);
}

int store_sub_import_mark(struct store *st, const char *name, const char *url, int64_t created_ms,
                          char *err, size_t errlen)
{
    struct sql_stmt *s;
    int rc;

    /* An UPDATE, not a SELECT: it locks the row on PostgreSQL too, where a concurrent DELETE
     * would otherwise commit between this check and the import's commit. */
    if (store_prepare(st,
                      "UPDATE list_subscriptions SET imported_ms = ?"
                      " WHERE name = ? AND url = ? AND created_ms = ?",
                      &s, err, errlen) < 0)
        return -1;
    sql_bind_int64(s, 1, clock_wall_ms());
    sql_bind_text(s, 2, name);
    sql_bind_text(s, 3, url);
    sql_bind_int64(s, 4, created_ms);
    rc = sql_step(s);
    sql_finalize(s);
    if (rc != SQL_DONE)
        return store_sql_err(st, err, errlen, "subscription import");
    return sql_changes(st) == 1 ? 0 : 1;
}

int store_sub_record(struct store *st, const struct store_sub *sub, char *err, size_t errlen)
{
    struct sql_stmt *s;
    int rc;

    if (store_prepare(st,
                      "UPDATE list_subscriptions SET next_ms = ?, checked_ms = ?, imported_ms = ?,"
                      " entries = ?, status = ?, etag = ?, last_modified = ?, error = ?"
                      " WHERE name = ? AND created_ms = ?",
                      &s, err, errlen) < 0)
        return -1;
    sql_bind_int64(s, 1, sub->next_ms);
    sql_bind_int64(s, 2, sub->checked_ms);
    sql_bind_int64(s, 3, sub->imported_ms);
    sql_bind_int64(s, 4, sub->entries);
    sql_bind_int64(s, 5, sub->status);
    sql_bind_text(s, 6, sub->etag);
    sql_bind_text(s, 7, sub->last_modified);
    sql_bind_text(s, 8, sub->error);
    sql_bind_text(s, 9, sub->name);
    sql_bind_int64(s, 10, sub->created_ms);
    rc = sql_step(s);
    sql_finalize(s);
    return rc == SQL_DONE ? 0 : store_sql_err(st, err, errlen, "subscription record");
}
