/* store_query: the access-log questions the admin side asks: search with filters and id
 * paging, top hosts/clients/blocked hosts, a time series, and totals for a time range.
 *
 * SQL is assembled only from the constant fragments in this file; every value (addresses,
 * substrings, times) is a bound parameter. Which index a query may use is chosen here, with
 * a unary `+` switching an index off, because the planner has no statistics for how the
 * rows spread over time (docs/storage.md, "Indexes").
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "storage/store_impl.h"

#define SEARCH_DEFAULT_LIMIT 100
#define SEARCH_MAX_LIMIT 1000
/* A bounded window at most this long is read through the time index, then sorted by id;
 * longer or open windows walk the ids from the newest end, which meets the window at once
 * for the usual "last hour / last day" and needs no sort. */
#define NARROW_WINDOW_MS (6 * 3600 * 1000LL)
#define SERIES_MAX_POINTS 100000
#define TOP_MAX_LIMIT 1000

/* Up to 16 parameters collected while the SQL text grows, bound in the same order. */
struct params {
    int n;
    struct {
        bool is_text;
        int64_t i;
        const char *t;
    } v[16];
};

static void param_int(struct params *p, int64_t i)
{
    p->v[p->n].is_text = false;
    p->v[p->n++].i = i;
}

static void param_text(struct params *p, const char *t)
{
    p->v[p->n].is_text = true;
    p->v[p->n++].t = t;
}

static void params_bind(const struct params *p, sqlite3_stmt *s)
{
    for (int i = 0; i < p->n; i++) {
        if (p->v[i].is_text)
            sqlite3_bind_text(s, i + 1, p->v[i].t, -1, SQLITE_TRANSIENT);
        else
            sqlite3_bind_int64(s, i + 1, p->v[i].i);
    }
}

/* "%<s with \, % and _ escaped>%" for LIKE ... ESCAPE '\'. Owned; NULL when out of memory. */
static char *like_pattern(const char *s)
{
    size_t len = strlen(s);
    char *out = malloc(2 * len + 3), *p = out;

    if (!out)
        return NULL;
    *p++ = '%';
    for (; *s; s++) {
        if (*s == '\\' || *s == '%' || *s == '_')
            *p++ = '\\';
        *p++ = *s;
    }
    *p++ = '%';
    *p = '\0';
    return out;
}

static void copy_col(char *dst, size_t size, sqlite3_stmt *s, int col)
{
    const char *v = (const char *)sqlite3_column_text(s, col);

    snprintf(dst, size, "%s", v ? v : "");
}

#define COPY_COL(field, s, col) copy_col((field), sizeof(field), (s), (col))

static void row_from_stmt(sqlite3_stmt *s, struct store_log_row *r)
{
    struct store_access *a = &r->a;

    memset(r, 0, sizeof(*r));
    r->id = sqlite3_column_int64(s, 0);
    a->time_ms = sqlite3_column_int64(s, 1);
    COPY_COL(a->client, s, 2);
    COPY_COL(a->user, s, 3);
    COPY_COL(a->method, s, 4);
    COPY_COL(a->scheme, s, 5);
    COPY_COL(a->host, s, 6);
    a->port = (uint16_t)sqlite3_column_int(s, 7);
    COPY_COL(a->path, s, 8);
    a->status = (uint16_t)sqlite3_column_int(s, 9);
    a->bytes_up = (uint64_t)sqlite3_column_int64(s, 10);
    a->bytes_down = (uint64_t)sqlite3_column_int64(s, 11);
    a->duration_ms = (uint32_t)sqlite3_column_int64(s, 12);
    a->decision = (uint8_t)sqlite3_column_int(s, 13);
    a->rule_id = sqlite3_column_int(s, 14);
    COPY_COL(a->error, s, 15);
}

int store_log_search(struct store *st, const struct store_log_filter *f, struct store_log_row **rows,
                     size_t *n, char *err, size_t errlen)
{
    char sql[1024];
    struct params p = {0};
    char *host_pat = NULL, *text_pat = NULL;
    struct store_log_row *v = NULL;
    sqlite3_stmt *s = NULL;
    size_t limit = f->limit ? f->limit : SEARCH_DEFAULT_LIMIT, len = 0;
    bool by_time = f->since_ms > 0 && f->until_ms > 0 && !f->client &&
                   f->until_ms - f->since_ms <= NARROW_WINDOW_MS;
    /* Unary + keeps an index out of the plan for that term. */
    const char *tcol = by_time ? "time_ms" : "+time_ms";
    int rc;

    *rows = NULL;
    *n = 0;
    if (limit > SEARCH_MAX_LIMIT)
        limit = SEARCH_MAX_LIMIT;
    snprintf(sql, sizeof(sql),
             "SELECT id, time_ms, client, user, method, scheme, host, port, path, status,"
             " bytes_up, bytes_down, duration_ms, decision, rule_id, error FROM access_log%s"
             " WHERE 1",
             by_time ? " INDEXED BY access_log_time" : "");
#define ADD(frag) strncat(sql, (frag), sizeof(sql) - strlen(sql) - 1)
    if (f->since_ms > 0) {
        ADD(" AND ");
        ADD(tcol);
        ADD(" >= ?");
        param_int(&p, f->since_ms);
    }
    if (f->until_ms > 0) {
        ADD(" AND ");
        ADD(tcol);
        ADD(" < ?");
        param_int(&p, f->until_ms);
    }
    if (f->client) {
        ADD(" AND client = ?");
        param_text(&p, f->client);
    }
    if (f->host_like) {
        if (!(host_pat = like_pattern(f->host_like)))
            goto oom;
        ADD(" AND host LIKE ? ESCAPE '\\'");
        param_text(&p, host_pat);
    }
    if (f->text_like) {
        if (!(text_pat = like_pattern(f->text_like)))
            goto oom;
        ADD(" AND (host LIKE ? ESCAPE '\\' OR path LIKE ? ESCAPE '\\')");
        param_text(&p, text_pat);
        param_text(&p, text_pat);
    }
    if (f->decision >= 0) {
        ADD(" AND +decision = ?");
        param_int(&p, f->decision);
    }
    if (f->status > 0) {
        ADD(" AND status = ?");
        param_int(&p, f->status);
    }
    if (f->before_id > 0) {
        ADD(" AND id < ?");
        param_int(&p, f->before_id);
    }
    if (f->after_id > 0) {
        ADD(" AND id > ?");
        param_int(&p, f->after_id);
    }
    /* Following (after_id) reads forward so the caller can resume from the last id. */
    ADD(f->after_id > 0 ? " ORDER BY id ASC LIMIT ?" : " ORDER BY id DESC LIMIT ?");
#undef ADD
    param_int(&p, (int64_t)limit);

    v = calloc(limit, sizeof(*v));
    if (!v)
        goto oom;
    if (store_prepare(st, sql, &s, err, errlen) < 0)
        goto fail;
    params_bind(&p, s);
    while (len < limit && (rc = sqlite3_step(s)) == SQLITE_ROW)
        row_from_stmt(s, &v[len++]);
    if (len < limit && rc != SQLITE_DONE) {
        store_sql_err(st, err, errlen, "log search");
        goto fail;
    }
    sqlite3_finalize(s);
    free(host_pat);
    free(text_pat);
    *rows = v;
    *n = len;
    return 0;
oom:
    store_errf(err, errlen, "log search: out of memory");
fail:
    sqlite3_finalize(s);
    free(host_pat);
    free(text_pat);
    free(v);
    return -1;
}

/* Open bounds (0) become the widest range. */
static void range(int64_t since_ms, int64_t until_ms, int64_t *lo, int64_t *hi)
{
    *lo = since_ms > 0 ? since_ms : INT64_MIN;
    *hi = until_ms > 0 ? until_ms : INT64_MAX;
}

int store_top(struct store *st, enum store_top_kind kind, int64_t since_ms, int64_t until_ms,
              size_t limit, struct store_top_row **rows, size_t *n, char *err, size_t errlen)
{
    /* Blocked hosts come through the (decision, time_ms) index: only denied rows are read. */
    static const char *const sql[STORE_TOP_COUNT] = {
        [STORE_TOP_HOSTS] = "SELECT host, count(*) AS c, sum(bytes_up + bytes_down)"
                            " FROM access_log WHERE time_ms >= ? AND time_ms < ?"
                            " GROUP BY host ORDER BY c DESC, host LIMIT ?",
        [STORE_TOP_CLIENTS] = "SELECT client, count(*) AS c, sum(bytes_up + bytes_down)"
                              " FROM access_log WHERE time_ms >= ? AND time_ms < ?"
                              " GROUP BY client ORDER BY c DESC, client LIMIT ?",
        [STORE_TOP_BLOCKED] = "SELECT host, count(*) AS c, sum(bytes_up + bytes_down)"
                              " FROM access_log WHERE decision = 1 AND time_ms >= ?"
                              " AND time_ms < ? GROUP BY host ORDER BY c DESC, host LIMIT ?",
    };
    sqlite3_stmt *s;
    struct store_top_row *v;
    int64_t lo, hi;
    size_t len = 0;
    int rc;

    *rows = NULL;
    *n = 0;
    if ((unsigned)kind >= STORE_TOP_COUNT)
        return store_errf(err, errlen, "top: bad kind %d", (int)kind);
    if (limit == 0 || limit > TOP_MAX_LIMIT)
        limit = limit ? TOP_MAX_LIMIT : 10;
    v = calloc(limit, sizeof(*v));
    if (!v)
        return store_errf(err, errlen, "top: out of memory");
    if (store_prepare(st, sql[kind], &s, err, errlen) < 0) {
        free(v);
        return -1;
    }
    range(since_ms, until_ms, &lo, &hi);
    sqlite3_bind_int64(s, 1, lo);
    sqlite3_bind_int64(s, 2, hi);
    sqlite3_bind_int64(s, 3, (int64_t)limit);
    while (len < limit && (rc = sqlite3_step(s)) == SQLITE_ROW) {
        COPY_COL(v[len].key, s, 0);
        v[len].requests = sqlite3_column_int64(s, 1);
        v[len].bytes = sqlite3_column_int64(s, 2);
        len++;
    }
    sqlite3_finalize(s);
    if (len < limit && rc != SQLITE_DONE) {
        free(v);
        return store_sql_err(st, err, errlen, "top");
    }
    *rows = v;
    *n = len;
    return 0;
}

int store_series(struct store *st, int64_t since_ms, int64_t until_ms, int64_t bucket_ms,
                 struct store_series_point **points, size_t *n, char *err, size_t errlen)
{
    sqlite3_stmt *s;
    struct store_series_point *v = NULL;
    size_t len = 0, cap = 0;
    bool fill = since_ms > 0 && until_ms > since_ms;
    int64_t lo, hi, first = 0;
    int rc;

    *points = NULL;
    *n = 0;
    if (bucket_ms <= 0)
        return store_errf(err, errlen, "series: bucket must be positive");
    range(since_ms, until_ms, &lo, &hi);
    /* A bounded range gets every bucket, empty ones as zeros, so a chart needs no gap
     * logic; buckets align to multiples of bucket_ms since the epoch. */
    if (fill) {
        first = since_ms / bucket_ms;
        cap = (size_t)((until_ms - 1) / bucket_ms - first + 1);
        if (cap > SERIES_MAX_POINTS)
            return store_errf(err, errlen, "series: more than %d buckets", SERIES_MAX_POINTS);
        v = calloc(cap, sizeof(*v));
        if (!v)
            return store_errf(err, errlen, "series: out of memory");
        for (size_t i = 0; i < cap; i++)
            v[i].bucket_ms = (first + (int64_t)i) * bucket_ms;
        len = cap;
    }
    if (store_prepare(st,
                      "SELECT time_ms / ?3 AS b, count(*), sum(decision = 1),"
                      " sum(bytes_up + bytes_down) FROM access_log"
                      " WHERE time_ms >= ?1 AND time_ms < ?2 GROUP BY b ORDER BY b",
                      &s, err, errlen) < 0) {
        free(v);
        return -1;
    }
    sqlite3_bind_int64(s, 1, lo);
    sqlite3_bind_int64(s, 2, hi);
    sqlite3_bind_int64(s, 3, bucket_ms);
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        int64_t b = sqlite3_column_int64(s, 0);
        struct store_series_point *pt;

        if (fill) {
            if (b < first || b - first >= (int64_t)len)
                continue;
            pt = &v[b - first];
        } else {
            if (len == cap) {
                struct store_series_point *nv;

                cap = cap ? cap * 2 : 64;
                nv = realloc(v, cap * sizeof(*v));
                if (!nv) {
                    sqlite3_finalize(s);
                    free(v);
                    return store_errf(err, errlen, "series: out of memory");
                }
                v = nv;
            }
            pt = &v[len++];
            pt->bucket_ms = b * bucket_ms;
        }
        pt->requests = sqlite3_column_int64(s, 1);
        pt->blocked = sqlite3_column_int64(s, 2);
        pt->bytes = sqlite3_column_int64(s, 3);
    }
    sqlite3_finalize(s);
    if (rc != SQLITE_DONE) {
        free(v);
        return store_sql_err(st, err, errlen, "series");
    }
    *points = v;
    *n = len;
    return 0;
}

int store_totals(struct store *st, int64_t since_ms, int64_t until_ms, struct store_totals *out,
                 char *err, size_t errlen)
{
    sqlite3_stmt *s;
    int64_t lo, hi;
    int rc;

    memset(out, 0, sizeof(*out));
    if (store_prepare(st,
                      "SELECT count(*), coalesce(sum(decision = 1), 0), coalesce(sum(bytes_up), 0),"
                      " coalesce(sum(bytes_down), 0),"
                      " count(DISTINCT client), count(DISTINCT host) FROM access_log"
                      " WHERE time_ms >= ? AND time_ms < ?",
                      &s, err, errlen) < 0)
        return -1;
    range(since_ms, until_ms, &lo, &hi);
    sqlite3_bind_int64(s, 1, lo);
    sqlite3_bind_int64(s, 2, hi);
    rc = sqlite3_step(s);
    if (rc == SQLITE_ROW) {
        out->requests = sqlite3_column_int64(s, 0);
        out->blocked = sqlite3_column_int64(s, 1);
        out->bytes_up = sqlite3_column_int64(s, 2);
        out->bytes_down = sqlite3_column_int64(s, 3);
        out->clients = sqlite3_column_int64(s, 4);
        out->hosts = sqlite3_column_int64(s, 5);
    }
    sqlite3_finalize(s);
    if (rc != SQLITE_ROW)
        return store_sql_err(st, err, errlen, "totals");
    return 0;
}
