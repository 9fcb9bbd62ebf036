/* store_query: the access-log questions the admin side asks: search with filters and id
 * paging (raw rows), top hosts/clients/blocked hosts, a time series, and totals for a time
 * range (from the rollups, store_rollup.c).
 *
 * SQL is assembled only from the constant fragments in this file; every value (addresses,
 * substrings, times) is a bound parameter. Which index a query may use is chosen here, with
 * a unary `+` switching an index off, because the planner has no statistics for how the
 * rows spread over time (docs/storage.md, "Indexes").
 */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "storage/store_impl.h"

#define SEARCH_DEFAULT_LIMIT 100
#define SEARCH_MAX_LIMIT 1000
/* Without the minutes' id ranges (PostgreSQL, or rows out of time order): a bounded window
 * at most this long is read through the time index, then sorted by id (also with a client
 * filter: there is no client index); longer or open windows walk the ids from the newest
 * end, which meets the window at once for the usual "last hour / last day" and needs no
 * sort. */
#define NARROW_WINDOW_MS (6 * 3600 * 1000LL)
#define SERIES_MAX_POINTS 100000
#define TOP_MAX_LIMIT 1000

/* Up to 24 parameters collected while the SQL text grows, bound in the same order. */
struct params {
    int n;
    struct {
        enum { PARAM_INT, PARAM_TEXT, PARAM_BLOB16 } kind;
        int64_t i;
        const void *t; /* text, or 16 bytes */
    } v[24];
};

static void param_int(struct params *p, int64_t i)
{
    p->v[p->n].kind = PARAM_INT;
    p->v[p->n++].i = i;
}

static void param_text(struct params *p, const char *t)
{
    p->v[p->n].kind = PARAM_TEXT;
    p->v[p->n++].t = t;
}

static void param_blob16(struct params *p, const uint8_t *b)
{
    p->v[p->n].kind = PARAM_BLOB16;
    p->v[p->n++].t = b;
}

static void params_bind(const struct params *p, struct sql_stmt *s)
{
    for (int i = 0; i < p->n; i++) {
        if (p->v[i].kind == PARAM_TEXT)
            sql_bind_text(s, i + 1, p->v[i].t);
        else if (p->v[i].kind == PARAM_BLOB16)
            sql_bind_blob(s, i + 1, p->v[i].t, 16);
        else
            sql_bind_int64(s, i + 1, p->v[i].i);
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

static void copy_col(char *dst, size_t size, struct sql_stmt *s, int col)
{
    const char *v = sql_col_text(s, col);

    snprintf(dst, size, "%s", v ? v : "");
}

#define COPY_COL(field, s, col) copy_col((field), sizeof(field), (s), (col))

static void row_from_stmt(struct sql_stmt *s, struct store_log_row *r)
{
    struct store_access *a = &r->a;

    memset(r, 0, sizeof(*r));
    r->id = sql_col_int64(s, 0);
    a->time_ms = sql_col_int64(s, 1);
    COPY_COL(a->client, s, 2);
    COPY_COL(a->user, s, 3);
    COPY_COL(a->method, s, 4);
    COPY_COL(a->scheme, s, 5);
    COPY_COL(a->host, s, 6);
    a->port = (uint16_t)sql_col_int(s, 7);
    COPY_COL(a->path, s, 8);
    a->status = (uint16_t)sql_col_int(s, 9);
    a->bytes_up = (uint64_t)sql_col_int64(s, 10);
    a->bytes_down = (uint64_t)sql_col_int64(s, 11);
    a->duration_ms = (uint32_t)sql_col_int64(s, 12);
    a->decision = (uint8_t)sql_col_int(s, 13);
    a->rule_id = sql_col_int(s, 14);
    COPY_COL(a->error, s, 15);
    a->policy_version = sql_col_int64(s, 16);
    COPY_COL(a->sni, s, 17);
    COPY_COL(a->dest, s, 18);
    COPY_COL(r->node, s, 19);
}

/* px_in_net(client, net, bits): 1 when the logged address text client lies in the network
 * of 16 bytes net (IPv4 as IPv4-mapped) and bits, else 0 (also for text that is no address). */
static void sql_in_net(sqlite3_context *ctx, int argc, sqlite3_value **argv)
{
    const char *client = (const char *)sqlite3_value_text(argv[0]);
    const uint8_t *net = sqlite3_value_blob(argv[1]);
    int bits = sqlite3_value_int(argv[2]);
    uint8_t a[16] = {0};

    (void)argc;
    if (!client || !net || sqlite3_value_bytes(argv[1]) != 16 || bits < 0 || bits > 128) {
        sqlite3_result_int(ctx, 0);
        return;
    }
    if (inet_pton(AF_INET, client, a + 12) == 1) {
        a[10] = a[11] = 0xff;
    } else if (inet_pton(AF_INET6, client, a) != 1) {
        sqlite3_result_int(ctx, 0);
        return;
    }
    int whole = bits / 8, rest = bits % 8;
    bool in = memcmp(a, net, (size_t)whole) == 0 &&
              (rest == 0 || ((a[whole] ^ net[whole]) & (0xff << (8 - rest)) & 0xff) == 0);
    sqlite3_result_int(ctx, in);
}

/* An IPv4 address in dotted quad, each part at most 255: PostgreSQL's inet takes it. */
#define PG_IPV4_RE                                                                                 \
    "^((25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])\\.){3}(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]" \
    "?[0-9])$"

/* PostgreSQL's terms for px_in_net's network (net, bits): v6 the network as inet text, which
 * IPv6 clients are compared with; v4 the network IPv4 clients (px_in_net compares them as
 * IPv4-mapped) lie in, as inet text, or "" when none does. -1 for bits out of 0..128. */
static int pg_net_terms(const struct store_log_filter *f, char *v4, char *v6)
{
    static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    int bits = f->client_net_bits;
    char a[INET6_ADDRSTRLEN], a4[INET_ADDRSTRLEN];

    if (bits < 0 || bits > 128 || !inet_ntop(AF_INET6, f->client_net, a, sizeof(a)))
        return -1;
    snprintf(v6, INET6_ADDRSTRLEN + 5, "%s/%d", a, bits);
    v4[0] = '\0';
    if (bits >= 96) {
        if (memcmp(f->client_net, mapped, 12) == 0 &&
            inet_ntop(AF_INET, f->client_net + 12, a4, sizeof(a4)))
            snprintf(v4, INET_ADDRSTRLEN + 4, "%s/%d", a4, bits - 96);
    } else {
        /* Every IPv4 client or none: whether ::ffff:0:0/96 lies in the network. */
        int whole = bits / 8, rest = bits % 8;
        if (memcmp(f->client_net, mapped, (size_t)whole) == 0 &&
            (rest == 0 ||
             ((mapped[whole] ^ f->client_net[whole]) & (0xff << (8 - rest)) & 0xff) == 0))
            strcpy(v4, "0.0.0.0/0");
    }
    return 0;
}

/* A read transaction unless the caller has one open. */
static bool read_begin(struct store *st)
{
    if (sql_in_transaction(st))
        return false;
    return sql_exec_script(st, sql_frag(st, SQL_BEGIN_SNAPSHOT), NULL, 0) == 0;
}

static void read_end(struct store *st, bool began)
{
    if (began)
        sql_exec_script(st, "COMMIT", NULL, 0);
}

/* SQLite: the ids that hold the rows of a window [since, until) (0: open) at or below the
 * rollups' watermark, from the id range of each minute of it (access_log_minutes, kept with
 * the rollups): *lo_id > *hi_id when none does. The rows above the watermark are few and the
 * newest. false when the range is far wider than the rows it holds (rows written out of time
 * order, e.g. a spill sent late, would make it read much of the log): the caller then keeps
 * to the time index. */
#define ID_RANGE_SLACK 100000
static bool window_ids(struct store *st, int64_t since, int64_t until, int64_t *mark,
                       int64_t *lo_id, int64_t *hi_id, char *err, size_t errlen, int *rc)
{
    struct sql_stmt *s;
    int64_t rows = 0;

    *rc = 0;
    *lo_id = 1;
    *hi_id = 0;
    if ((*mark = store_rollup_watermark(st, err, errlen)) < 0) {
        *rc = -1;
        return false;
    }
    if (store_prepare(st,
                      "SELECT min(first_id), max(last_id), sum(row_count) FROM access_log_minutes"
                      " WHERE minute_ms >= ?1 AND minute_ms < ?2",
                      &s, err, errlen) < 0) {
        *rc = -1;
        return false;
    }
    /* A minute that starts before since may hold rows of the window. */
    sql_bind_int64(s, 1, since > 0 ? since - ((since % 60000) + 60000) % 60000 : INT64_MIN);
    sql_bind_int64(s, 2, until > 0 ? until : INT64_MAX);
    if (sql_step(s) != SQL_ROW) {
        *rc = store_sql_err(st, err, errlen, "log search");
        sql_finalize(s);
        return false;
    }
    if (!sql_col_null(s, 0)) {
        *lo_id = sql_col_int64(s, 0);
        *hi_id = sql_col_int64(s, 1);
        rows = sql_col_int64(s, 2);
    }
    sql_finalize(s);
    if (*hi_id > *mark)
        *hi_id = *mark;
    return *lo_id > *hi_id || *hi_id - *lo_id <= 2 * rows + ID_RANGE_SLACK;
}

/* Appends the rows of sql (its parameters p, the limit last) to v[*len ...]; 0 or -1. */
static int search_rows(struct store *st, const char *sql, const struct params *p,
                       struct store_log_row *v, size_t *len, size_t limit, char *err, size_t errlen)
{
    struct sql_stmt *s;
    int rc = SQL_DONE;

    if (store_prepare(st, sql, &s, err, errlen) < 0)
        return -1;
    params_bind(p, s);
    while (*len < limit && (rc = sql_step(s)) == SQL_ROW)
        row_from_stmt(s, &v[(*len)++]);
    if (*len < limit && rc != SQL_DONE) {
        store_sql_err(st, err, errlen, "log search");
        sql_finalize(s);
        return -1;
    }
    sql_finalize(s);
    return 0;
}

/* ---- A host substring few rows match ----
 *
 * Without a host index (an index costs the writer a B-tree insert a row) a substring that
 * few rows match read the whole log for a page. The rollups know every host of every day,
 * hour and minute, and each minute row the smallest and largest id of its host's rows there
 * (min_id, max_id, step 50): the hosts that match come from the day rows, the minutes that
 * hold them and their id ranges from exact probes down the hours, and only those ranges are
 * read (an hour's by one statement), newest hour first, until the page is full and no older
 * minute holds a higher id. A range not known (NULL: summed before step 50) is the minute's
 * whole id range (access_log_minutes). Retention only takes rows away: a range stays a
 * superset of its host's rows. */
#define RARE_HOSTS 32 /* more matching hosts than this: the walk over the newest ids */
/* Matching rows fewer than 1 in this many of the window's: rare. The walk over the newest ids
 * reads about limit * all / matching rows; the ranges about limit rows and a few statements an
 * hour, whatever the host's rows a minute (a minute whose range is not known costs its whole
 * minute, again about limit * all / matching rows for a page). Until the ranges, a host in
 * more than a quarter of the minutes was not rare (three statements a minute, each reading the
 * whole minute): at 100M rows over 30 days one in 5,000 rows, a row in every other minute, went
 * the walk's way and read 500,000 rows. */
#define RARE_SHARE 100
#define HOUR_MS 3600000LL
#define DAY_MS 86400000LL
/* Ids read first below the cursor: a common substring fills its page there (ads7, about 1 row
 * in 110, in some 11,000), before the rollups are asked which hosts match. */
#define RARE_PROBE_IDS 20000

/* A matching host's ids in one minute; lo 0 while not known. */
struct rare_range {
    int64_t minute, lo, hi;
};

struct rare {
    struct store *st;
    const struct store_log_filter *f;
    char *sql; /* the search's SQL so far (its filters), size 2048 */
    struct params *p;
    const char *tcol;
    size_t base_len;
    int base_n;
    char keys[RARE_HOSTS][STORE_ROLLUP_KEY_MAX + 1];
    int nkeys;
    struct store_log_row *cand; /* owned, 2 * limit: the best rows of the minutes read */
    size_t ncand, limit;
    struct rare_range *ranges; /* owned: the hour's */
    size_t nranges, cap_ranges;
    int64_t mark;
    char *err;
    size_t errlen;
};

static int cmp_row_id_desc(const void *pa, const void *pb)
{
    const struct store_log_row *a = pa, *b = pb;

    return a->id > b->id ? -1 : a->id < b->id;
}

static int cmp_range_lo(const void *pa, const void *pb)
{
    const struct rare_range *a = pa, *b = pb;

    return a->lo < b->lo ? -1 : a->lo > b->lo;
}

/* floor of t to unit (t may be negative) */
static int64_t rare_floor(int64_t t, int64_t unit)
{
    return t - ((t % unit) + unit) % unit;
}

/* The children (hours of a day, minutes of an hour) of bucket `parent` whose rollup of key k
 * has rows: bit i of *found for child i (at most 60). Minutes also add their id ranges (one a
 * node) to r->ranges. 0 or -1. */
static int rare_children(struct rare *r, int64_t level, int n, int64_t parent, int k,
                         uint64_t *found)
{
    char sql[512] = "SELECT bucket_ms, min_id, max_id FROM access_rollup WHERE level_ms = ?"
                    " AND dim = ? AND key = ? AND bucket_ms IN (?";
    struct sql_stmt *s;
    int rc;

    for (int i = 1; i < n; i++)
        strcat(sql, ", ?");
    strcat(sql, ")");
    if (store_prepare(r->st, sql, &s, r->err, r->errlen) < 0)
        return -1;
    sql_bind_int64(s, 1, level);
    sql_bind_int64(s, 2, STORE_DIM_HOST);
    sql_bind_text(s, 3, r->keys[k]);
    for (int i = 0; i < n; i++)
        sql_bind_int64(s, 4 + i, parent + i * level);
    while ((rc = sql_step(s)) == SQL_ROW) {
        int64_t i = (sql_col_int64(s, 0) - parent) / level;
        struct rare_range *g;

        if (i < 0 || i >= n)
            continue;
        *found |= 1ull << i;
        if (level != 60000)
            continue;
        if (r->nranges == r->cap_ranges) {
            size_t nc = r->cap_ranges ? 2 * r->cap_ranges : 64;

            if (!(g = realloc(r->ranges, nc * sizeof(*g)))) {
                sql_finalize(s);
                return store_errf(r->err, r->errlen, "log search: out of memory");
            }
            r->ranges = g;
            r->cap_ranges = nc;
        }
        g = &r->ranges[r->nranges++];
        g->minute = sql_col_int64(s, 0);
        g->lo = sql_col_null(s, 1) || sql_col_null(s, 2) ? 0 : sql_col_int64(s, 1);
        g->hi = g->lo ? sql_col_int64(s, 2) : 0;
    }
    sql_finalize(s);
    return rc == SQL_DONE ? 0 : store_sql_err(r->st, r->err, r->errlen, "log search");
}

/* The largest id of the rows at or below the watermark in the minutes before `minute`. */
static int rare_older_max(struct rare *r, int64_t minute, int64_t *max_id)
{
    struct sql_stmt *s;
    int rc;

    *max_id = 0;
    if (store_prepare(r->st, "SELECT max(last_id) FROM access_log_minutes WHERE minute_ms < ?1", &s,
                      r->err, r->errlen) < 0)
        return -1;
    sql_bind_int64(s, 1, minute);
    rc = sql_step(s);
    if (rc == SQL_ROW && !sql_col_null(s, 0))
        *max_id = sql_col_int64(s, 0);
    sql_finalize(s);
    return rc == SQL_ROW ? 0 : store_sql_err(r->st, r->err, r->errlen, "log search");
}

/* The ranges not known (lo 0) of the hour from `hour` as their minutes' whole id ranges; a
 * minute without one: every id (its time bounds the read). 0 or -1. */
static int rare_unknown(struct rare *r, int64_t hour)
{
    struct sql_stmt *s;
    int rc;

    for (size_t i = 0; i < r->nranges; i++)
        if (r->ranges[i].lo == 0)
            r->ranges[i].lo = 1, r->ranges[i].hi = INT64_MAX;
    if (store_prepare(r->st,
                      "SELECT minute_ms, first_id, last_id FROM access_log_minutes"
                      " WHERE minute_ms >= ?1 AND minute_ms < ?2",
                      &s, r->err, r->errlen) < 0)
        return -1;
    sql_bind_int64(s, 1, hour);
    sql_bind_int64(s, 2, hour + HOUR_MS);
    while ((rc = sql_step(s)) == SQL_ROW)
        for (size_t i = 0; i < r->nranges; i++)
            if (r->ranges[i].hi == INT64_MAX && r->ranges[i].minute == sql_col_int64(s, 0)) {
                r->ranges[i].lo = sql_col_int64(s, 1);
                r->ranges[i].hi = sql_col_int64(s, 2);
            }
    sql_finalize(s);
    return rc == SQL_DONE ? 0 : store_sql_err(r->st, r->err, r->errlen, "log search");
}

/* Reads ranges g[0..n) (disjoint, sorted) of the hour from `hour` into the candidates, the
 * highest first, until the candidates are full of ids above the rest. One statement, run once
 * a range: with the ranges ORed in one, SQLite's planner scanned the whole table from three
 * single-id ranges on (at 10,000,000 rows). 0 or -1. */
static int rare_read(struct rare *r, int64_t hour, const struct rare_range *g, size_t n)
{
    struct sql_stmt *s;
    int rc = SQL_DONE, at;

    r->sql[r->base_len] = '\0';
    r->p->n = r->base_n;
    strncat(r->sql, " AND ", 2047 - strlen(r->sql));
    strncat(r->sql, r->tcol, 2047 - strlen(r->sql));
    strncat(r->sql, " >= ? AND ", 2047 - strlen(r->sql));
    strncat(r->sql, r->tcol, 2047 - strlen(r->sql));
    strncat(r->sql, " < ? AND id >= ? AND id <= ? ORDER BY id DESC LIMIT ?", 2047 - strlen(r->sql));
    param_int(r->p, hour);
    param_int(r->p, hour + HOUR_MS);
    at = r->p->n;
    param_int(r->p, 0);
    param_int(r->p, 0);
    param_int(r->p, (int64_t)r->limit);
    if (store_prepare(r->st, r->sql, &s, r->err, r->errlen) < 0)
        return -1;
    for (size_t i = n; i-- > 0 && rc == SQL_DONE;) {
        size_t got = 0;

        if (r->ncand == r->limit && r->cand[r->limit - 1].id > g[i].hi)
            break;
        r->p->v[at].i = g[i].lo;
        r->p->v[at + 1].i = g[i].hi;
        params_bind(r->p, s);
        while (got < r->limit && (rc = sql_step(s)) == SQL_ROW)
            row_from_stmt(s, &r->cand[r->ncand + got++]);
        if (rc == SQL_ROW)
            rc = SQL_DONE; /* the limit's rows read */
        sql_reset(s);
        r->ncand += got;
        if (got > 0 && r->ncand > 1)
            qsort(r->cand, r->ncand, sizeof(*r->cand), cmp_row_id_desc);
        if (r->ncand > r->limit)
            r->ncand = r->limit;
    }
    sql_finalize(s);
    return rc == SQL_DONE ? 0 : store_sql_err(r->st, r->err, r->errlen, "log search");
}

/* The matching rows at or below the watermark of the hour from `hour`, in its id ranges
 * (r->ranges: its minutes in the window), into the candidates, then the best limit of them
 * kept. 1 when the page is settled (full, and no older minute holds a higher id), 0 to go
 * on, -1. */
static int rare_hour(struct rare *r, int64_t hour)
{
    int64_t top = r->mark, older;
    size_t n = 0;
    bool unknown = false;

    if (r->f->before_id > 0 && top >= r->f->before_id)
        top = r->f->before_id - 1;
    for (size_t i = 0; i < r->nranges; i++)
        unknown = unknown || r->ranges[i].lo == 0;
    if (unknown && rare_unknown(r, hour) < 0)
        return -1;
    /* At or below the top, sorted, and overlapping ones merged (nodes' ranges interleave; a
     * row read twice would be on the page twice). */
    for (size_t i = 0; i < r->nranges; i++) {
        struct rare_range g = r->ranges[i];

        g.hi = g.hi < top ? g.hi : top;
        if (g.lo <= g.hi)
            r->ranges[n++] = g;
    }
    qsort(r->ranges, n, sizeof(*r->ranges), cmp_range_lo);
    r->nranges = n;
    n = 0;
    for (size_t i = 0; i < r->nranges; i++) {
        if (n > 0 && r->ranges[i].lo <= r->ranges[n - 1].hi + 1) {
            if (r->ranges[i].hi > r->ranges[n - 1].hi)
                r->ranges[n - 1].hi = r->ranges[i].hi;
        } else {
            r->ranges[n++] = r->ranges[i];
        }
    }
    r->nranges = 0;
    if (rare_read(r, hour, r->ranges, n) < 0)
        return -1;
    if (r->ncand < r->limit)
        return 0;
    if (rare_older_max(r, hour, &older) < 0)
        return -1;
    return older <= r->cand[r->limit - 1].id;
}

/* Hosts matching the pattern in the window's day rollups, and whether they are rare there.
 * 1 rare (r->keys filled), 0 not, -1. */
static int rare_hosts(struct rare *r, const char *host_pat, int64_t day_lo, int64_t day_hi)
{
    char sql[400];
    struct sql_stmt *s;
    int64_t matching = 0, all = 0;
    int rc;

    snprintf(sql, sizeof(sql),
             "SELECT key, sum(requests) FROM access_rollup WHERE level_ms = ?1 AND dim = ?2"
             " AND bucket_ms >= ?3 AND bucket_ms < ?4 AND key %s ?5 ESCAPE '\\' GROUP BY key",
             sql_frag(r->st, SQL_LIKE));
    if (store_prepare(r->st, sql, &s, r->err, r->errlen) < 0)
        return -1;
    sql_bind_int64(s, 1, DAY_MS);
    sql_bind_int64(s, 2, STORE_DIM_HOST);
    sql_bind_int64(s, 3, day_lo);
    sql_bind_int64(s, 4, day_hi);
    sql_bind_text(s, 5, host_pat);
    r->nkeys = 0;
    while ((rc = sql_step(s)) == SQL_ROW) {
        const char *k = sql_col_text(s, 0);

        if (r->nkeys == RARE_HOSTS) {
            sql_finalize(s);
            return 0;
        }
        snprintf(r->keys[r->nkeys++], sizeof(r->keys[0]), "%s", k ? k : "");
        matching += sql_col_int64(s, 1);
    }
    sql_finalize(s);
    if (rc != SQL_DONE)
        return store_sql_err(r->st, r->err, r->errlen, "log search");
    if (store_prepare(r->st,
                      "SELECT sum(requests) FROM access_rollup WHERE level_ms = ?1"
                      " AND dim = ?2 AND bucket_ms >= ?3 AND bucket_ms < ?4",
                      &s, r->err, r->errlen) < 0)
        return -1;
    sql_bind_int64(s, 1, DAY_MS);
    sql_bind_int64(s, 2, STORE_DIM_ALL);
    sql_bind_int64(s, 3, day_lo);
    sql_bind_int64(s, 4, day_hi);
    rc = sql_step(s);
    if (rc == SQL_ROW && !sql_col_null(s, 0))
        all = sql_col_int64(s, 0);
    sql_finalize(s);
    if (rc != SQL_ROW)
        return store_sql_err(r->st, r->err, r->errlen, "log search");
    return matching * RARE_SHARE <= all;
}

/* The newest RARE_PROBE_IDS ids below the cursor: 1 when they fill the page (v), else 0 (v
 * emptied), -1. */
static int rare_probe(struct rare *r, struct store_log_row *v, size_t *len)
{
    struct sql_stmt *s;
    int64_t top = r->f->before_id - 1;
    int rc;

    if (r->f->before_id <= 0) {
        if (store_prepare(r->st, "SELECT max(id) FROM access_log", &s, r->err, r->errlen) < 0)
            return -1;
        rc = sql_step(s);
        top = rc == SQL_ROW ? sql_col_int64(s, 0) : 0;
        sql_finalize(s);
        if (rc != SQL_ROW)
            return store_sql_err(r->st, r->err, r->errlen, "log search");
    }
    r->sql[r->base_len] = '\0';
    r->p->n = r->base_n;
    strncat(r->sql, " AND id > ? AND id <= ? ORDER BY id DESC LIMIT ?", 2047 - strlen(r->sql));
    param_int(r->p, top - RARE_PROBE_IDS);
    param_int(r->p, top);
    param_int(r->p, (int64_t)r->limit);
    if (search_rows(r->st, r->sql, r->p, v, len, r->limit, r->err, r->errlen) < 0)
        return -1;
    r->sql[r->base_len] = '\0';
    r->p->n = r->base_n;
    if (*len == r->limit)
        return 1;
    *len = 0;
    return 0;
}

/* The page of a host substring search through the rollups when its hosts are rare: v[*len..]
 * after the rows above the watermark. 1 answered, 0 not rare (nothing done), -1. */
static int search_rare(struct rare *r, const char *host_pat, struct store_log_row *v, size_t *len)
{
    const struct store_log_filter *f = r->f;
    int64_t since = f->since_ms > 0 ? f->since_ms : INT64_MIN / 2;
    int64_t until = f->until_ms > 0 ? f->until_ms : INT64_MAX / 2;
    int64_t day_lo = rare_floor(since, DAY_MS), day_hi = until;
    struct sql_stmt *s;
    int64_t *days = NULL;
    uint32_t *day_keys = NULL;
    size_t ndays = 0, cap = 0;
    int rc;

    if ((rc = rare_probe(r, v, len)) != 0)
        return rc;
    if ((r->mark = store_rollup_watermark(r->st, r->err, r->errlen)) < 0)
        return -1;
    if ((rc = rare_hosts(r, host_pat, day_lo, day_hi)) <= 0)
        return rc;
    /* The days that hold a matching host, newest first, with which of the hosts. */
    for (int k = 0; k < r->nkeys; k++) {
        if (store_prepare(r->st,
                          "SELECT bucket_ms FROM access_rollup WHERE level_ms = ?1 AND dim = ?2"
                          " AND bucket_ms >= ?3 AND bucket_ms < ?4 AND key = ?5",
                          &s, r->err, r->errlen) < 0)
            goto fail;
        sql_bind_int64(s, 1, DAY_MS);
        sql_bind_int64(s, 2, STORE_DIM_HOST);
        sql_bind_int64(s, 3, day_lo);
        sql_bind_int64(s, 4, day_hi);
        sql_bind_text(s, 5, r->keys[k]);
        while ((rc = sql_step(s)) == SQL_ROW) {
            int64_t d = sql_col_int64(s, 0);
            size_t i;

            for (i = 0; i < ndays && days[i] != d; i++)
                ;
            if (i == ndays) {
                if (ndays == cap) {
                    size_t nc = cap ? 2 * cap : 64;
                    int64_t *nd = realloc(days, nc * sizeof(*nd));
                    uint32_t *nk = nd ? realloc(day_keys, nc * sizeof(*nk)) : NULL;

                    if (nd)
                        days = nd;
                    if (!nd || !nk) {
                        sql_finalize(s);
                        store_errf(r->err, r->errlen, "log search: out of memory");
                        goto fail;
                    }
                    day_keys = nk;
                    cap = nc;
                }
                days[ndays] = d;
                day_keys[ndays++] = 0;
            }
            day_keys[i] |= 1u << k;
        }
        sql_finalize(s);
        if (rc != SQL_DONE) {
            store_sql_err(r->st, r->err, r->errlen, "log search");
            goto fail;
        }
    }
    /* The rows above the watermark first: their ids are above all the others. */
    r->sql[r->base_len] = '\0';
    r->p->n = r->base_n;
    strncat(r->sql, " AND id > ? ORDER BY id DESC LIMIT ?", 2047 - strlen(r->sql));
    param_int(r->p, r->mark);
    param_int(r->p, (int64_t)r->limit);
    if (search_rows(r->st, r->sql, r->p, v, len, r->limit, r->err, r->errlen) < 0)
        goto fail;
    r->limit -= *len;
    for (size_t sorted = 0; sorted < ndays; sorted++) /* newest day first */
        for (size_t j = sorted + 1; j < ndays; j++)
            if (days[j] > days[sorted]) {
                int64_t d = days[j];
                uint32_t m = day_keys[j];

                days[j] = days[sorted], day_keys[j] = day_keys[sorted];
                days[sorted] = d, day_keys[sorted] = m;
            }
    rc = 0;
    for (size_t d = 0; r->limit > 0 && rc == 0 && d < ndays; d++) {
        uint64_t hours = 0;

        for (int k = 0; k < r->nkeys; k++)
            if ((day_keys[d] & (1u << k)) && rare_children(r, HOUR_MS, 24, days[d], k, &hours) < 0)
                goto fail;
        for (int h = 23; rc == 0 && h >= 0; h--) {
            int64_t hour = days[d] + h * HOUR_MS;
            uint64_t minutes = 0;
            size_t kept = 0;

            if (!(hours & (1ull << h)) || hour >= until || hour + HOUR_MS <= since)
                continue;
            r->nranges = 0;
            for (int k = 0; k < r->nkeys; k++)
                if ((day_keys[d] & (1u << k)) && rare_children(r, 60000, 60, hour, k, &minutes) < 0)
                    goto fail;
            /* The minutes in the window only: the others' rows are not on the page. */
            for (size_t i = 0; i < r->nranges; i++)
                if (r->ranges[i].minute < until && r->ranges[i].minute + 60000 > since)
                    r->ranges[kept++] = r->ranges[i];
            r->nranges = kept;
            if (r->nranges > 0 && (rc = rare_hour(r, hour)) < 0)
                goto fail;
        }
    }
    if (r->limit > 0)
        for (size_t i = 0; i < r->ncand; i++)
            v[(*len)++] = r->cand[i];
    free(days);
    free(day_keys);
    return 1;
fail:
    free(days);
    free(day_keys);
    return -1;
}

int store_log_search(struct store *st, const struct store_log_filter *f,
                     struct store_log_row **rows, size_t *n, char *err, size_t errlen)
{
    char sql[2048];
    char v4net[INET_ADDRSTRLEN + 4], v6net[INET6_ADDRSTRLEN + 5];
    struct params p = {0};
    char *host_pat = NULL, *text_pat = NULL;
    struct store_log_row *v = NULL;
    size_t limit = f->limit ? f->limit : SEARCH_DEFAULT_LIMIT, len = 0, base_len;
    int64_t mark = 0, lo_id = 1, hi_id = 0;
    bool began = false;
    int rc = 0;
    /* A later page (before_id) walks the ids down from where the last one ended: the time
     * index would read and sort the whole window again for each page of an export. */
    bool by_time = f->since_ms > 0 && f->until_ms > 0 && f->before_id == 0 &&
                   f->until_ms - f->since_ms <= NARROW_WINDOW_MS;
    /* SQLite, a window: its ids from the minutes' id ranges, walked down from the newest
     * (the rows above the rollups' watermark first: they are newer than any below). Then
     * neither a window's sort nor a walk over every newer id. (PostgreSQL skips the days
     * outside the window: its log is partitioned by day, store_retention.c.) */
    bool by_ids =
        st->backend == STORE_SQLITE && f->after_id == 0 && (f->since_ms > 0 || f->until_ms > 0);

    *rows = NULL;
    *n = 0;
    if (limit > SEARCH_MAX_LIMIT)
        limit = SEARCH_MAX_LIMIT;
    if (by_ids || f->host_like)
        began = read_begin(st);
    if (by_ids) {
        by_ids = window_ids(st, f->since_ms, f->until_ms, &mark, &lo_id, &hi_id, err, errlen, &rc);
        if (rc < 0)
            goto fail;
    }
    by_time = by_time && !by_ids;
    /* Unary + keeps an index out of the plan for that term (SQLite). PostgreSQL plans with
     * statistics, and needs the bare column to skip the days outside the window. */
    const char *tcol = by_time || st->backend == STORE_PG ? "time_ms" : "+time_ms";
    snprintf(sql, sizeof(sql),
             "SELECT id, time_ms, client, \"user\", method, scheme, host, port, path, status,"
             " bytes_up, bytes_down, duration_ms, decision, rule_id, error, policy_version, sni,"
             " dest, node FROM access_log%s"
             " WHERE 1 = 1",
             by_time ? sql_frag(st, SQL_INDEXED_BY_TIME) : "");
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
    /* A prefix or network of addresses may hold most of the log: no index (then a sort of
     * all of it), the newest rows are read until the page is full. */
    if (f->client_prefix[0]) {
        ADD(sql_frag(st, SQL_CLIENT_PREFIX));
        param_text(&p, f->client_prefix);
        param_text(&p, f->client_prefix);
    }
    if (f->client_net_set && st->backend == STORE_PG) {
        if (pg_net_terms(f, v4net, v6net) < 0) {
            store_errf(err, errlen, "log search: bad network length %d", f->client_net_bits);
            goto fail;
        }
        /* Only text that is an address is cast (a cast of anything else is an error). */
        ADD(" AND CASE WHEN client ~ '" PG_IPV4_RE "' THEN ");
        if (v4net[0]) {
            ADD("client::inet <<= CAST(? AS inet)");
            param_text(&p, v4net);
        } else {
            ADD("false");
        }
        ADD(" WHEN client ~ '^[0-9A-Fa-f:.]+$' AND strpos(client, ':') > 0"
            " THEN client::inet <<= CAST(? AS inet) ELSE false END");
        param_text(&p, v6net);
    } else if (f->client_net_set) {
        /* Once per connection: registering a function again expires every prepared
         * statement of the connection, the kept ones too (store_sql.c). */
        if (!st->in_net_registered &&
            sqlite3_create_function(st->db, "px_in_net", 3, SQLITE_UTF8 | SQLITE_DETERMINISTIC,
                                    NULL, sql_in_net, NULL, NULL) != SQLITE_OK) {
            store_sql_err(st, err, errlen, "log search");
            goto fail;
        }
        st->in_net_registered = true;
        ADD(" AND px_in_net(client, ?, ?)");
        param_blob16(&p, f->client_net);
        param_int(&p, f->client_net_bits);
    }
    if (f->user[0]) {
        ADD(" AND \"user\" = ?");
        param_text(&p, f->user);
    }
    if (f->node[0]) {
        ADD(" AND node = ?");
        param_text(&p, f->node);
    }
    if (f->host_like) {
        if (!(host_pat = like_pattern(f->host_like)))
            goto oom;
        ADD(" AND host ");
        ADD(sql_frag(st, SQL_LIKE));
        ADD(" ? ESCAPE '\\'");
        param_text(&p, host_pat);
    }
    if (f->text_like) {
        if (!(text_pat = like_pattern(f->text_like)))
            goto oom;
        ADD(" AND (host ");
        ADD(sql_frag(st, SQL_LIKE));
        ADD(" ? ESCAPE '\\' OR path ");
        ADD(sql_frag(st, SQL_LIKE));
        ADD(" ? ESCAPE '\\')");
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
    if (f->rule_id > 0) {
        ADD(" AND rule_id = ?");
        param_int(&p, f->rule_id);
    }
    if (f->before_id > 0) {
        ADD(" AND id < ?");
        param_int(&p, f->before_id);
    }
    if (f->after_id > 0) {
        ADD(" AND id > ?");
        param_int(&p, f->after_id);
    }
    v = calloc(limit, sizeof(*v));
    if (!v)
        goto oom;
    if (f->host_like && f->after_id == 0) {
        struct rare r = {.st = st,
                         .f = f,
                         .sql = sql,
                         .p = &p,
                         .tcol = tcol,
                         .base_len = strlen(sql),
                         .base_n = p.n,
                         .limit = limit,
                         .err = err,
                         .errlen = errlen};

        r.cand = calloc(2 * limit, sizeof(*r.cand));
        if (!r.cand)
            goto oom;
        rc = search_rare(&r, host_pat, v, &len);
        free(r.cand);
        free(r.ranges);
        if (rc < 0)
            goto fail;
    }
    if (rc == 1) {
        /* answered from the rollups' minutes */
    } else if (by_ids) {
        /* Two ranges of ids, newest first: above the watermark, then the window's range. */
        int base_n = p.n;

        base_len = strlen(sql);
        ADD(" AND id > ? ORDER BY id DESC LIMIT ?");
        param_int(&p, mark);
        param_int(&p, (int64_t)limit);
        if (search_rows(st, sql, &p, v, &len, limit, err, errlen) < 0)
            goto fail;
        if (len < limit && lo_id <= hi_id) {
            sql[base_len] = '\0';
            p.n = base_n;
            ADD(" AND id >= ? AND id <= ? ORDER BY id DESC LIMIT ?");
            param_int(&p, lo_id);
            param_int(&p, hi_id);
            param_int(&p, (int64_t)(limit - len));
            if (search_rows(st, sql, &p, v, &len, limit, err, errlen) < 0)
                goto fail;
        }
    } else {
        /* Following (after_id) reads forward so the caller can resume from the last id. */
        ADD(f->after_id > 0 ? " ORDER BY id ASC LIMIT ?" : " ORDER BY id DESC LIMIT ?");
        param_int(&p, (int64_t)limit);
        if (search_rows(st, sql, &p, v, &len, limit, err, errlen) < 0)
            goto fail;
    }
#undef ADD
    read_end(st, began);
    free(host_pat);
    free(text_pat);
    *rows = v;
    *n = len;
    return 0;
oom:
    store_errf(err, errlen, "log search: out of memory");
fail:
    read_end(st, began);
    free(host_pat);
    free(text_pat);
    free(v);
    return -1;
}

/* ---- Aggregates over a time range ----
 *
 * top, series and totals read the rollups (store_rollup.c) for the whole minutes, hours and
 * days of the range and the raw rows only for the partial minutes at its edges and for the
 * rows the rollups do not hold yet, and aggregate in C: SQLite's GROUP BY and
 * count(DISTINCT) sort through a temporary b-tree (docs/storage.md has the figures). Each
 * runs in one read transaction, so the rollups, their watermark and the rows agree. */

/* Open bounds (0) become the oldest and newest times in the log; *lo == *hi when empty. */
static int resolve_range(struct store *st, int64_t since_ms, int64_t until_ms, int64_t *lo,
                         int64_t *hi, char *err, size_t errlen)
{
    struct sql_stmt *s;
    int64_t oldest = 0, newest = -1;
    int rc;

    if (since_ms > 0 && until_ms > 0) {
        *lo = since_ms;
        *hi = until_ms < since_ms ? since_ms : until_ms;
        return 0;
    }
    /* Two subqueries, so each min/max is one probe of the time index. */
    if (store_prepare(st,
                      "SELECT (SELECT min(time_ms) FROM access_log),"
                      " (SELECT max(time_ms) FROM access_log)",
                      &s, err, errlen) < 0)
        return -1;
    rc = sql_step(s);
    if (rc == SQL_ROW && !sql_col_null(s, 0)) {
        oldest = sql_col_int64(s, 0);
        newest = sql_col_int64(s, 1);
    }
    sql_finalize(s);
    if (rc != SQL_ROW)
        return store_sql_err(st, err, errlen, "time range");
    *lo = since_ms > 0 ? since_ms : oldest;
    *hi = until_ms > 0 ? until_ms : newest + 1;
    if (*hi < *lo)
        *hi = *lo;
    return 0;
}

/* Open-addressing hash of keys (host or client) to counts. */
struct agg_slot {
    char *key; /* owned, NUL-terminated; NULL = free */
    uint64_t hash;
    int64_t requests;
    int64_t bytes;
    int64_t blocked, first_ms, last_ms; /* visitors only */
};

struct agg {
    struct agg_slot *slots; /* owned, cap entries */
    size_t cap, used;
    bool oom;
};

static uint64_t hash_bytes(const unsigned char *p, size_t len)
{
    uint64_t h = 1469598103934665603ull; /* FNV-1a */

    for (size_t i = 0; i < len; i++)
        h = (h ^ p[i]) * 1099511628211ull;
    return h;
}

static bool agg_grow(struct agg *a)
{
    size_t cap = a->cap ? a->cap * 2 : 1024;
    struct agg_slot *slots = calloc(cap, sizeof(*slots));

    if (!slots)
        return false;
    for (size_t i = 0; i < a->cap; i++) {
        size_t j;

        if (!a->slots[i].key)
            continue;
        for (j = a->slots[i].hash & (cap - 1); slots[j].key; j = (j + 1) & (cap - 1))
            ;
        slots[j] = a->slots[i];
    }
    free(a->slots);
    a->slots = slots;
    a->cap = cap;
    return true;
}

/* Adds requests and bytes to key's counts; the slot, or NULL when out of memory. */
static struct agg_slot *agg_add(struct agg *a, const char *key, size_t len, int64_t requests,
                                int64_t bytes)
{
    uint64_t h;
    size_t i;

    if (a->oom)
        return NULL;
    if ((a->used + 1) * 2 > a->cap && !agg_grow(a)) {
        a->oom = true;
        return NULL;
    }
    h = hash_bytes((const unsigned char *)key, len);
    for (i = h & (a->cap - 1); a->slots[i].key; i = (i + 1) & (a->cap - 1)) {
        if (a->slots[i].hash == h && strncmp(a->slots[i].key, key, len) == 0 &&
            a->slots[i].key[len] == '\0') {
            a->slots[i].requests += requests;
            a->slots[i].bytes += bytes;
            return &a->slots[i];
        }
    }
    a->slots[i].key = strndup(key, len);
    if (!a->slots[i].key) {
        a->oom = true;
        return NULL;
    }
    a->slots[i].hash = h;
    a->slots[i].requests = requests;
    a->slots[i].bytes = bytes;
    a->slots[i].first_ms = INT64_MAX;
    a->slots[i].last_ms = INT64_MIN;
    a->used++;
    return &a->slots[i];
}

static void agg_free(struct agg *a)
{
    for (size_t i = 0; i < a->cap; i++)
        free(a->slots[i].key);
    free(a->slots);
}

static void top_all(void *arg, int64_t bucket_ms, const char *key, size_t len,
                    const struct store_rollup_sums *sums)
{
    (void)bucket_ms;
    agg_add(arg, key, len, sums->requests, sums->bytes_up + sums->bytes_down);
}

static void top_blocked(void *arg, int64_t bucket_ms, const char *key, size_t len,
                        const struct store_rollup_sums *sums)
{
    (void)bucket_ms;
    agg_add(arg, key, len, sums->blocked, sums->blocked_bytes);
}

static void top_reported(void *arg, int64_t bucket_ms, const char *key, size_t len,
                         const struct store_rollup_sums *sums)
{
    (void)bucket_ms;
    agg_add(arg, key, len, sums->reported, sums->reported_bytes);
}

/* Most requests first; ties by key so the answer is stable. */
static int cmp_top(const void *pa, const void *pb)
{
    const struct agg_slot *a = pa, *b = pb;

    if (a->requests != b->requests)
        return a->requests > b->requests ? -1 : 1;
    return strcmp(a->key, b->key);
}

int store_top(struct store *st, enum store_top_kind kind, int64_t since_ms, int64_t until_ms,
              const char *node, size_t limit, struct store_top_row **rows, size_t *n, char *err,
              size_t errlen)
{
    struct agg a = {0};
    struct store_top_row *v;
    int64_t lo, hi;
    size_t len = 0;
    bool began;

    *rows = NULL;
    *n = 0;
    if ((unsigned)kind >= STORE_TOP_COUNT)
        return store_errf(err, errlen, "top: bad kind %d", (int)kind);
    if (limit == 0 || limit > TOP_MAX_LIMIT)
        limit = limit ? TOP_MAX_LIMIT : 10;
    /* Blocked clients: the client rollups' blocked sums, as blocked hosts read the host ones. */
    bool by_client = kind == STORE_TOP_CLIENTS || kind == STORE_TOP_BLOCKED_CLIENTS;
    bool blocked = kind == STORE_TOP_BLOCKED || kind == STORE_TOP_BLOCKED_CLIENTS;
    began = read_begin(st);
    if (resolve_range(st, since_ms, until_ms, &lo, &hi, err, errlen) < 0 ||
        store_rollup_read(st, by_client ? STORE_DIM_CLIENT : STORE_DIM_HOST, lo, hi, 0,
                          blocked                      ? STORE_DENY
                          : kind == STORE_TOP_REPORTED ? STORE_REPORT
                                                       : -1,
                          node,
                          blocked                      ? top_blocked
                          : kind == STORE_TOP_REPORTED ? top_reported
                                                       : top_all,
                          &a, err, errlen) < 0)
        goto fail;
    read_end(st, began);
    began = false;
    if (a.oom) {
        store_errf(err, errlen, "top: out of memory");
        goto fail;
    }
    /* Compact the used slots to the front, then sort only those. */
    for (size_t i = 0; i < a.cap; i++)
        if (a.slots[i].key)
            a.slots[len++] = a.slots[i];
    for (size_t i = len; i < a.cap; i++)
        a.slots[i].key = NULL;
    if (len > 1)
        qsort(a.slots, len, sizeof(*a.slots), cmp_top);
    if (len > limit)
        len = limit;
    v = calloc(len ? len : 1, sizeof(*v));
    if (!v) {
        store_errf(err, errlen, "top: out of memory");
        goto fail;
    }
    for (size_t i = 0; i < len; i++) {
        snprintf(v[i].key, sizeof(v[i].key), "%s", a.slots[i].key);
        v[i].requests = a.slots[i].requests;
        v[i].bytes = a.slots[i].bytes;
    }
    agg_free(&a);
    *rows = v;
    *n = len;
    return 0;
fail:
    read_end(st, began);
    agg_free(&a);
    return -1;
}

/* ---- Who visited a host ----
 *
 * From the writer's hourly visits (access_visits, store_rollup.c) for the whole hours of the
 * range, one probe of the primary key an hour (bucket, then host), and from the rows for the
 * partial hours at its edges, for the rows above the rollups' watermark, and for an hour whose
 * first or last times retention made unknown. So its cost follows the host's visitors per
 * hour and the rows of at most two hours, not the rows of the range. */
#define VISIT_HOURS_PER_STMT 200

struct visits {
    struct store *st;
    const char *host, *node;
    enum store_visitors_by by;
    struct agg agg;
    char *err;
    size_t errlen;
};

static void visit_add(struct visits *vs, const char *client, const char *user, int64_t requests,
                      int64_t blocked, int64_t first_ms, int64_t last_ms)
{
    const char *key = vs->by == STORE_VISITORS_CLIENT ? client : user;
    struct agg_slot *a = agg_add(&vs->agg, key ? key : "", key ? strlen(key) : 0, requests, 0);

    if (!a)
        return;
    a->blocked += blocked;
    a->first_ms = first_ms < a->first_ms ? first_ms : a->first_ms;
    a->last_ms = last_ms > a->last_ms ? last_ms : a->last_ms;
}

/* The host's rows with time in [lo, hi); above_id >= 0: only those with a greater id, found by
 * id (the rows the visits do not hold yet); upto_id >= 0: only those with an id not greater
 * (the rows the visits would hold: the others are read by the above_id pass). 0 or -1. */
static int visits_raw(struct visits *vs, int64_t lo, int64_t hi, int64_t above_id, int64_t upto_id)
{
    char sql[352];
    struct sql_stmt *s;
    int rc;

    if (hi <= lo)
        return 0;
    snprintf(sql, sizeof(sql),
             "SELECT client, \"user\", decision, time_ms FROM access_log WHERE %s >= ?1"
             " AND %s < ?2 AND host = ?3%s%s%s",
             above_id >= 0 ? "+time_ms" : "time_ms", above_id >= 0 ? "+time_ms" : "time_ms",
             above_id >= 0 ? " AND id > ?4" : "", vs->node ? " AND node = ?5" : "",
             upto_id >= 0 ? " AND id <= ?6" : "");
    if (store_prepare(vs->st, sql, &s, vs->err, vs->errlen) < 0)
        return -1;
    sql_bind_int64(s, 1, lo);
    sql_bind_int64(s, 2, hi);
    sql_bind_text(s, 3, vs->host);
    if (above_id >= 0)
        sql_bind_int64(s, 4, above_id);
    if (vs->node)
        sql_bind_text(s, 5, vs->node);
    if (upto_id >= 0)
        sql_bind_int64(s, 6, upto_id);
    while ((rc = sql_step(s)) == SQL_ROW) {
        int64_t t = sql_col_int64(s, 3);

        visit_add(vs, sql_col_text(s, 0), sql_col_text(s, 1), 1, sql_col_int(s, 2) == STORE_DENY, t,
                  t);
    }
    sql_finalize(s);
    return rc == SQL_DONE ? 0 : store_sql_err(vs->st, vs->err, vs->errlen, "visitors");
}

/* The hours hours[0..n) of the host's visits (unknown = 1: only those whose first or last
 * time is unknown, each handed to *unknown_at; else every visit added up). 0 or -1. */
static int visits_hours(struct visits *vs, const int64_t *hours, size_t n, bool unknown,
                        int64_t *unknown_at, size_t *n_unknown)
{
    char sql[320 + VISIT_HOURS_PER_STMT * 6];
    size_t used;
    struct sql_stmt *s;
    int rc;

    used = (size_t)snprintf(sql, sizeof(sql),
                            "SELECT %s FROM access_visits WHERE level_ms = ?1 AND host = ?2%s%s"
                            " AND bucket_ms IN (",
                            unknown ? "DISTINCT bucket_ms"
                                    : "client, \"user\", requests, blocked, first_ms, last_ms",
                            vs->node ? " AND node = ?3" : " AND CAST(?3 AS TEXT) IS NULL",
                            unknown ? " AND (first_ms IS NULL OR last_ms IS NULL)" : "");
    for (size_t i = 0; i < n && used < sizeof(sql); i++)
        used += (size_t)snprintf(sql + used, sizeof(sql) - used, "%s?%zu", i ? "," : "", i + 4);
    if (used + 2 > sizeof(sql))
        return store_errf(vs->err, vs->errlen, "visitors: too many hours");
    strcat(sql, ")");
    if (store_prepare(vs->st, sql, &s, vs->err, vs->errlen) < 0)
        return -1;
    sql_bind_int64(s, 1, STORE_VISIT_LEVEL_MS);
    sql_bind_text(s, 2, vs->host);
    sql_bind_text(s, 3, vs->node);
    for (size_t i = 0; i < n; i++)
        sql_bind_int64(s, 4 + (int)i, hours[i]);
    while ((rc = sql_step(s)) == SQL_ROW) {
        if (unknown)
            unknown_at[(*n_unknown)++] = sql_col_int64(s, 0);
        else
            visit_add(vs, sql_col_text(s, 0), sql_col_text(s, 1), sql_col_int64(s, 2),
                      sql_col_int64(s, 3), sql_col_int64(s, 4), sql_col_int64(s, 5));
    }
    sql_finalize(s);
    return rc == SQL_DONE ? 0 : store_sql_err(vs->st, vs->err, vs->errlen, "visitors");
}

static int cmp_int64(const void *pa, const void *pb)
{
    int64_t a = *(const int64_t *)pa, b = *(const int64_t *)pb;

    return a < b ? -1 : a > b;
}

/* The whole hours [a, b) of the range, VISIT_HOURS_PER_STMT at a time: the hours whose times
 * retention made unknown from the rows up to the watermark mark, the others from the visits
 * (the rows above mark are the caller's). 0 or -1. */
static int visits_span(struct visits *vs, int64_t a, int64_t b, int64_t mark)
{
    int64_t hours[VISIT_HOURS_PER_STMT], unknown[VISIT_HOURS_PER_STMT], known[VISIT_HOURS_PER_STMT];

    for (int64_t h = a; h < b;) {
        size_t n = 0, n_unknown = 0, n_known = 0;

        while (h < b && n < VISIT_HOURS_PER_STMT) {
            hours[n++] = h;
            h += STORE_VISIT_LEVEL_MS;
        }
        if (visits_hours(vs, hours, n, true, unknown, &n_unknown) < 0)
            return -1;
        qsort(unknown, n_unknown, sizeof(unknown[0]), cmp_int64);
        for (size_t i = 0; i < n; i++) {
            if (bsearch(&hours[i], unknown, n_unknown, sizeof(unknown[0]), cmp_int64)) {
                if (visits_raw(vs, hours[i], hours[i] + STORE_VISIT_LEVEL_MS, -1, mark) < 0)
                    return -1;
            } else {
                known[n_known++] = hours[i];
            }
        }
        if (n_known > 0 && visits_hours(vs, known, n_known, false, NULL, NULL) < 0)
            return -1;
    }
    return 0;
}

int store_host_visitors(struct store *st, const char *host, const char *node,
                        enum store_visitors_by by, int64_t since_ms, int64_t until_ms, size_t limit,
                        struct store_visitor **rows, size_t *n, char *err, size_t errlen)
{
    struct visits vs = {
        .st = st, .host = host, .node = node, .by = by, .err = err, .errlen = errlen};
    struct store_visitor *v = NULL;
    int64_t lo, hi, a, b, mark;
    size_t len = 0;
    bool began;
    int rc;

    *rows = NULL;
    *n = 0;
    if ((unsigned)by >= STORE_VISITORS_COUNT)
        return store_errf(err, errlen, "visitors: bad grouping %d", (int)by);
    if (limit == 0 || limit > TOP_MAX_LIMIT)
        limit = limit ? TOP_MAX_LIMIT : 10;
    began = read_begin(st);
    rc = resolve_range(st, since_ms, until_ms, &lo, &hi, err, errlen);
    if (rc == 0 && lo < hi) {
        a = rare_floor(lo + STORE_VISIT_LEVEL_MS - 1, STORE_VISIT_LEVEL_MS);
        b = rare_floor(hi, STORE_VISIT_LEVEL_MS);
        if (a >= b) {
            rc = visits_raw(&vs, lo, hi, -1, -1);
        } else if ((mark = store_rollup_watermark(st, err, errlen)) < 0) {
            rc = -1;
        } else {
            rc = visits_raw(&vs, lo, a, -1, -1);
            if (rc == 0)
                rc = visits_span(&vs, a, b, mark);
            if (rc == 0)
                rc = visits_raw(&vs, a, b, mark, -1);
            if (rc == 0)
                rc = visits_raw(&vs, b, hi, -1, -1);
        }
    }
    read_end(st, began);
    if (rc == 0 && vs.agg.oom)
        rc = store_errf(err, errlen, "visitors: out of memory");
    /* Most requests first, ties by key (bytes): the used slots to the front, sorted. */
    if (rc == 0) {
        for (size_t i = 0; i < vs.agg.cap; i++)
            if (vs.agg.slots[i].key)
                vs.agg.slots[len++] = vs.agg.slots[i];
        for (size_t i = len; i < vs.agg.cap; i++)
            vs.agg.slots[i].key = NULL;
        if (len > 1)
            qsort(vs.agg.slots, len, sizeof(*vs.agg.slots), cmp_top);
    }
    if (len > limit)
        len = limit;
    if (rc == 0 && !(v = calloc(len ? len : 1, sizeof(*v))))
        rc = store_errf(err, errlen, "visitors: out of memory");
    for (size_t i = 0; rc == 0 && i < len; i++) {
        snprintf(v[i].key, sizeof(v[i].key), "%s", vs.agg.slots[i].key);
        v[i].requests = vs.agg.slots[i].requests;
        v[i].blocked = vs.agg.slots[i].blocked;
        v[i].first_ms = vs.agg.slots[i].first_ms;
        v[i].last_ms = vs.agg.slots[i].last_ms;
    }
    agg_free(&vs.agg);
    if (rc < 0)
        return -1;
    *rows = v;
    *n = len;
    return 0;
}

struct series_acc {
    struct store_series_point *v;
    size_t len;
    int64_t first; /* bucket number of v[0] */
    int64_t bucket_ms;
};

static void series_sums(void *arg, int64_t bucket_ms, const char *key, size_t len,
                        const struct store_rollup_sums *sums)
{
    struct series_acc *acc = arg;
    int64_t b = bucket_ms / acc->bucket_ms - acc->first;
    struct store_series_point *pt;

    (void)key;
    (void)len;
    if (b < 0 || b >= (int64_t)acc->len)
        return;
    pt = &acc->v[b];
    pt->requests += sums->requests;
    pt->blocked += sums->blocked;
    pt->bytes += sums->bytes_up + sums->bytes_down;
}

int store_series(struct store *st, int64_t since_ms, int64_t until_ms, const char *node,
                 int64_t bucket_ms, struct store_series_point **points, size_t *n, char *err,
                 size_t errlen)
{
    struct series_acc acc = {.bucket_ms = bucket_ms};
    int64_t lo, hi, last;
    bool began;

    *points = NULL;
    *n = 0;
    if (bucket_ms <= 0)
        return store_errf(err, errlen, "series: bucket must be positive");
    began = read_begin(st);
    if (resolve_range(st, since_ms, until_ms, &lo, &hi, err, errlen) < 0)
        goto fail;
    if (hi <= lo) {
        read_end(st, began);
        return 0;
    }
    acc.first = lo / bucket_ms;
    last = (hi - 1) / bucket_ms;
    if (last - acc.first + 1 > SERIES_MAX_POINTS) {
        store_errf(err, errlen, "series: more than %d buckets", SERIES_MAX_POINTS);
        goto fail;
    }
    acc.len = (size_t)(last - acc.first + 1);
    acc.v = calloc(acc.len, sizeof(*acc.v));
    if (!acc.v) {
        store_errf(err, errlen, "series: out of memory");
        goto fail;
    }
    for (size_t i = 0; i < acc.len; i++)
        acc.v[i].bucket_ms = (acc.first + (int64_t)i) * bucket_ms;
    /* A rollup bucket counts whole only inside one point: bucket_ms a multiple of its
     * length (points start at multiples of bucket_ms). */
    if (store_rollup_read(st, STORE_DIM_ALL, lo, hi, bucket_ms, -1, node, series_sums, &acc, err,
                          errlen) < 0)
        goto fail;
    read_end(st, began);
    *points = acc.v;
    *n = acc.len;
    return 0;
fail:
    read_end(st, began);
    free(acc.v);
    return -1;
}

static void totals_sums(void *arg, int64_t bucket_ms, const char *key, size_t len,
                        const struct store_rollup_sums *sums)
{
    struct store_totals *t = arg;

    (void)bucket_ms;
    (void)key;
    (void)len;
    t->requests += sums->requests;
    t->blocked += sums->blocked;
    t->bytes_up += sums->bytes_up;
    t->bytes_down += sums->bytes_down;
}

static void distinct_keys(void *arg, int64_t bucket_ms, const char *key, size_t len,
                          const struct store_rollup_sums *sums)
{
    (void)bucket_ms;
    agg_add(arg, key, len, sums->requests, 0);
}

/* Whether key is in a (out of memory: says yes, and a->oom fails the caller). */
static bool distinct_seen(void *arg, const char *key, size_t len)
{
    struct agg *a = arg;
    uint64_t h = hash_bytes((const unsigned char *)key, len);

    if (a->oom || a->cap == 0)
        return a->oom;
    for (size_t i = h & (a->cap - 1); a->slots[i].key; i = (i + 1) & (a->cap - 1))
        if (a->slots[i].hash == h && strncmp(a->slots[i].key, key, len) == 0 &&
            a->slots[i].key[len] == '\0')
            return true;
    return false;
}

int store_totals(struct store *st, int64_t since_ms, int64_t until_ms, const char *node,
                 struct store_totals *out, char *err, size_t errlen)
{
    struct agg clients = {0}, hosts = {0};
    int64_t lo, hi;
    int rc;
    bool began;

    memset(out, 0, sizeof(*out));
    began = read_begin(st);
    rc = resolve_range(st, since_ms, until_ms, &lo, &hi, err, errlen);
    if (rc == 0)
        rc = store_rollup_read(st, STORE_DIM_ALL, lo, hi, 0, -1, node, totals_sums, out, err,
                               errlen);
    /* A key seen by several nodes comes once per node: the hash counts it once. */
    if (rc == 0)
        rc = store_rollup_keys(st, STORE_DIM_CLIENT, lo, hi, node, distinct_keys, distinct_seen,
                               &clients, err, errlen);
    if (rc == 0)
        rc = store_rollup_keys(st, STORE_DIM_HOST, lo, hi, node, distinct_keys, distinct_seen,
                               &hosts, err, errlen);
    read_end(st, began);
    if (rc == 0 && (clients.oom || hosts.oom))
        rc = store_errf(err, errlen, "totals: out of memory");
    out->clients = (int64_t)clients.used;
    out->hosts = (int64_t)hosts.used;
    agg_free(&clients);
    agg_free(&hosts);
    return rc;
}
