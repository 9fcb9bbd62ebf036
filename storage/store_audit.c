/* store_audit: the audit trail (who changed what policy when) and the key/value settings
 * table; a setting change is itself audited.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/clock.h"
#include "storage/store_impl.h"

#define AUDIT_DEFAULT_LIMIT 100
#define AUDIT_MAX_LIMIT 1000

int store_audit_add(struct store *st, const char *actor, const char *action, const char *detail,
                    char *err, size_t errlen)
{
    struct sql_stmt *s;
    int rc;

    if (store_prepare(st, "INSERT INTO audit(time_ms, actor, action, detail) VALUES (?, ?, ?, ?)",
                      &s, err, errlen) < 0)
        return -1;
    sql_bind_int64(s, 1, clock_wall_ms());
    sql_bind_text(s, 2, actor && *actor ? actor : "-");
    sql_bind_text(s, 3, action);
    sql_bind_text(s, 4, detail ? detail : "");
    rc = sql_step(s);
    sql_finalize(s);
    if (rc != SQL_DONE)
        return store_sql_err(st, err, errlen, "audit");
    store_version_note(st, actor, action, detail);
    return 0;
}

int store_audit_record(struct store *st, const char *actor, const char *action, const char *detail,
                       char *err, size_t errlen)
{
    if (store_begin(st, err, errlen) < 0)
        return -1;
    if (store_audit_add(st, actor, action, detail, err, errlen) < 0) {
        store_rollback(st);
        return -1;
    }
    return store_commit(st, err, errlen);
}

int store_audit_list(struct store *st, int64_t before_ms, size_t limit, struct store_audit **rows,
                     size_t *n, char *err, size_t errlen)
{
    return store_audit_search(st, before_ms, limit, NULL, NULL, rows, n, err, errlen);
}

/* "%text%" for LIKE, with its own %, _ and \ escaped by \. */
static void like_pattern(const char *text, char *out, size_t outlen)
{
    size_t o = 0;

    out[o++] = '%';
    for (const char *p = text; *p && o + 3 < outlen; p++) {
        if (*p == '%' || *p == '_' || *p == '\\')
            out[o++] = '\\';
        out[o++] = *p;
    }
    out[o++] = '%';
    out[o] = '\0';
}

int store_audit_search(struct store *st, int64_t before_ms, size_t limit, const char *actor,
                       const char *text, struct store_audit **rows, size_t *n, char *err,
                       size_t errlen)
{
    char pattern[2 * STORE_AUDIT_SEARCH_MAX + 3], sql[320];
    struct sql_stmt *s;
    struct store_audit *v;
    size_t len = 0;
    int rc;

    *rows = NULL;
    *n = 0;
    if (limit == 0)
        limit = AUDIT_DEFAULT_LIMIT;
    if (limit > AUDIT_MAX_LIMIT)
        limit = AUDIT_MAX_LIMIT;
    v = calloc(limit, sizeof(*v));
    if (!v)
        return store_errf(err, errlen, "audit: out of memory");
    /* Ids grow with time: walking the rowid backwards needs no index on time_ms. */
    snprintf(
        sql, sizeof(sql),
        "SELECT time_ms, actor, action, detail FROM audit"
        " WHERE time_ms < ?1 AND (CAST(?3 AS TEXT) IS NULL OR actor = ?3)"
        " AND (CAST(?4 AS TEXT) IS NULL OR action %s ?4 ESCAPE '\\' OR detail %s ?4 ESCAPE '\\')"
        " ORDER BY id DESC LIMIT ?2",
        sql_frag(st, SQL_LIKE), sql_frag(st, SQL_LIKE));
    if (store_prepare(st, sql, &s, err, errlen) < 0) {
        free(v);
        return -1;
    }
    sql_bind_int64(s, 1, before_ms > 0 ? before_ms : INT64_MAX);
    sql_bind_int64(s, 2, (int64_t)limit);
    if (actor && *actor)
        sql_bind_text(s, 3, actor);
    if (text && *text) {
        like_pattern(text, pattern, sizeof(pattern));
        sql_bind_text(s, 4, pattern);
    }
    while ((rc = sql_step(s)) == SQL_ROW && len < limit) {
        struct store_audit *a = &v[len++];

        a->time_ms = sql_col_int64(s, 0);
        snprintf(a->actor, sizeof(a->actor), "%s", sql_col_text(s, 1));
        snprintf(a->action, sizeof(a->action), "%s", sql_col_text(s, 2));
        snprintf(a->detail, sizeof(a->detail), "%s", sql_col_text(s, 3));
    }
    sql_finalize(s);
    if (rc != SQL_DONE && rc != SQL_ROW) {
        free(v);
        return store_sql_err(st, err, errlen, "audit");
    }
    *rows = v;
    *n = len;
    return 0;
}

int store_setting_read(struct store *st, const char *key, char **value, char *err, size_t errlen)
{
    struct sql_stmt *s;
    int rc;

    *value = NULL;
    if (store_prepare(st, "SELECT value FROM settings WHERE key = ?", &s, err, errlen) < 0)
        return -1;
    sql_bind_text(s, 1, key);
    rc = sql_step(s);
    if (rc == SQL_ROW && !(*value = strdup(sql_col_text(s, 0)))) {
        sql_finalize(s);
        store_errf(err, errlen, "setting %s: out of memory", key);
        return -1;
    }
    sql_finalize(s);
    return rc == SQL_ROW || rc == SQL_DONE ? 0 : store_sql_err(st, err, errlen, "setting");
}

/* A setting's value in the audit: a long one (a logo) by its start and size. */
static void audit_value(const char *v, char *out, size_t outlen)
{
    size_t n = v ? strlen(v) : 0;

    if (!n)
        snprintf(out, outlen, "(unset)");
    else if (n > 120)
        snprintf(out, outlen, "%.40s... (%zu bytes)", v, n);
    else
        snprintf(out, outlen, "%s", v);
}

int store_setting_set(struct store *st, const char *key, const char *value, const char *actor,
                      char *err, size_t errlen)
{
    struct sql_stmt *s;
    char detail[512], before[200], after[200];
    int rc;

    if (!key || !*key || !value)
        return store_errf(err, errlen, "setting: key and value are required");
    if (store_begin(st, err, errlen) < 0)
        return -1;
    char *old;
    if (store_setting_read(st, key, &old, err, errlen) < 0)
        goto fail; /* not audited as a change from "(unset)" */
    audit_value(old, before, sizeof(before));
    audit_value(value, after, sizeof(after));
    free(old);
    if (store_prepare(st,
                      "INSERT INTO settings(key, value) VALUES (?, ?)"
                      " ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                      &s, err, errlen) < 0)
        goto fail;
    sql_bind_text(s, 1, key);
    sql_bind_text(s, 2, value);
    rc = sql_step(s);
    sql_finalize(s);
    if (rc != SQL_DONE) {
        store_sql_err(st, err, errlen, "setting");
        goto fail;
    }
    snprintf(detail, sizeof(detail), "%.100s: %s -> %s", key, before, after);
    if (store_audit_add(st, actor, "setting.set", detail, err, errlen) < 0)
        goto fail;
    return store_commit(st, err, errlen);
fail:
    store_rollback(st);
    return -1;
}
