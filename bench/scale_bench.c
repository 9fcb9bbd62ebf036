/* scale_bench: the dashboard, the top lists and the log searches over a big access log,
 * through the store calls the admin API makes, on SQLite or PostgreSQL.
 *
 * usage: scale_bench [--rows N] [--days D] [--runs R] [--mix office|independent]
 *                    [--queries-only] DB
 *   DB: an SQLite file (created; it must not hold log rows yet) or a PostgreSQL conninfo
 *   (bench/scale_bench.sh starts a PostgreSQL of its own, as tests/pg_fixture.sh does).
 *
 * The fill is generated inside the database: N rows (default 100,000,000) evenly over D whole
 * UTC days (default 30), the last one today's up to now; 200 clients picked with a skew (a few
 * dominate, as in an office), each client's host from its own working set of 40 of the 2,000
 * hosts (--mix office, the default; skewed, popular hosts in many sets) or, the worst case for
 * the hourly visits, drawn apart from the client (--mix independent), 5% denied by one of 20 rules,
 * 60% of the rest tunnels, statuses 200/304/404/500. The oldest day is made by one statement
 * (generate_series on PostgreSQL, a recursive CTE on SQLite) and its rollups summed from its rows
 * by SQL, as the writer would have kept them (per minute, hour and day, in total and by host,
 * client and rule, each per node), with the minutes' id ranges and the hourly visits. Every other
 * day is that day copied (INSERT ... SELECT) with its times and buckets shifted by whole days and
 * its ids by whole days' rows, so only one day is summed by GROUP BY; today's buckets that end
 * after now are summed from its copied rows. Then the watermark and the rule hit counters, and a
 * check that the rollups' totals (all of them, and today's) equal a count of the rows. Each query
 * then runs R times (default 5) on a fresh connection: median and max ms, and what its last run did
 * whatever the load (SQLite: thousands of VM instructions; PostgreSQL: rows read by sequential
 * scans and index entries returned, pg_stat_get_xact_tuples_returned). The "result" column is the
 * rows returned (for totals, the requests counted). Wall-clock figures depend on the machine's
 * load: the table prints the load average next to them.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "storage/store.h"
#include "storage/store_impl.h"

#define DAY_MS (24 * 3600 * 1000LL)
#define HOUR_MS (3600 * 1000LL)
#define MIN_MS 60000LL
#define MAX_RUNS 101

static double now_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int64_t wall_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static const char *loadavg(void)
{
    static char buf[64];
    FILE *f = fopen("/proc/loadavg", "r");

    buf[0] = '\0';
    if (f) {
        if (fgets(buf, sizeof(buf), f))
            buf[strcspn(buf, " ")] = '\0'; /* the 1-minute figure only */
        fclose(f);
    }
    return buf;
}

static void die(const char *what, const char *err)
{
    fprintf(stderr, "scale_bench: %s: %s\n", what, err);
    exit(1);
}

/* Runs sql with the integer parameters ?1..?nargs. */
static void run(struct store *st, const char *what, const char *sql, int nargs, const int64_t *args)
{
    struct sql_stmt *s;
    char err[512];
    int rc;

    if (store_prepare(st, sql, &s, err, sizeof(err)) < 0)
        die(what, err);
    for (int i = 0; i < nargs; i++)
        sql_bind_int64(s, i + 1, args[i]);
    while ((rc = sql_step(s)) == SQL_ROW)
        ;
    sql_finalize(s);
    if (rc != SQL_DONE) {
        store_sql_err(st, err, sizeof(err), what);
        die(what, err);
    }
}

static int64_t query_int(struct store *st, const char *sql)
{
    struct sql_stmt *s;
    char err[512];
    int64_t v = 0;

    if (store_prepare(st, sql, &s, err, sizeof(err)) < 0)
        die(sql, err);
    if (sql_step(s) != SQL_ROW) {
        store_sql_err(st, err, sizeof(err), "query");
        die(sql, err);
    }
    v = sql_col_int64(s, 0);
    sql_finalize(s);
    return v;
}

/* Independent of the client: nearly every row of an hour a new (host, client) pair, the worst
 * case for the hourly visits. */
#define HOST_INDEPENDENT                                                                           \
    "(((i * 48271) % 9973) * ((i * 48271) % 9973) * ((i * 48271) % 9973) * 2000) / 991921850317"
/* An office: the client's k-th host of its working set of 40, k skewed; each of the set's
 * hosts is skewed over all 2,000 (popular hosts are in many sets). */
#define HOST_OFFICE                                                                                \
    "(((c * 7537 + k * 2671 + 101) % 9973) * ((c * 7537 + k * 2671 + 101) % 9973)"                 \
    " * ((c * 7537 + k * 2671 + 101) % 9973) * 2000) / 991921850317"
#define WORKING_SET_K                                                                              \
    "(((i * 40503 + 29) % 9973) * ((i * 40503 + 29) % 9973) * ((i * 40503 + 29) % 9973) * 40)"     \
    " / 991921850317"

enum mix { MIX_OFFICE, MIX_INDEPENDENT };
static enum mix host_mix = MIX_OFFICE;

/* Row i of the fill, from a column i of the numbers ?1 <= i < ?2; ?3 the first row's time,
 * ?4 the span, ?5 the rows in all. Integer arithmetic only, so both engines make the same
 * rows. Skew: x^3 of x uniform in [0, 9973). */
#define FILL_ROWS                                                                                  \
    "INSERT INTO access_log(time_ms, client, \"user\", method, scheme, host, port, path, status,"  \
    " bytes_up, bytes_down, duration_ms, decision, rule_id, error, policy_version, sni, dest,"     \
    " node)"                                                                                       \
    " SELECT t, '10.0.' || (c / 250) || '.' || (c % 250 + 1), '',"                                 \
    " CASE WHEN tun = 1 THEN 'CONNECT' ELSE 'GET' END,"                                            \
    " CASE WHEN tun = 1 THEN 'https' ELSE 'http' END, host, CASE WHEN tun = 1 THEN 443 ELSE 80"    \
    " END, CASE WHEN tun = 1 THEN '' WHEN p = 0 THEN '/' WHEN p = 1 THEN '/index.html'"            \
    " WHEN p = 2 THEN '/api/v1/items?page=2&sort=desc' WHEN p = 3 THEN '/static/js/app.4f3c2a.js'" \
    " WHEN p = 4 THEN '/images/logo.png' WHEN p = 5 THEN '/search?q=quarterly+report'"             \
    " WHEN p = 6 THEN '/ads/banner?id=18273' ELSE '/watch?v=dQw4w9WgXcQ' END,"                     \
    " CASE WHEN dn = 1 THEN 403 WHEN tun = 1 THEN 200 WHEN s < 80 THEN 200 WHEN s < 90 THEN 304"   \
    " WHEN s < 97 THEN 404 ELSE 500 END,"                                                          \
    " CASE WHEN dn = 1 THEN 0 ELSE 300 + (i * 1103) % 2000 END,"                                   \
    " CASE WHEN dn = 1 THEN 0 ELSE (i * 2089 + 5) % 200000 END, (i * 397) % 2000, dn,"             \
    " CASE WHEN dn = 1 THEN 1 + (i * 31) % 20 WHEN (i * 131) % 4 = 0 THEN 21 ELSE 0 END, '', 0,"   \
    " CASE WHEN tun = 1 THEN host ELSE '' END, '', 'bench-node'"                                   \
    " FROM (SELECT i, t, c, dn, s, p, CASE WHEN dn = 0 AND tr < 60 THEN 1 ELSE 0 END AS tun,"      \
    " (CASE WHEN h % 7 = 0 THEN 'ads' ELSE 'www' END) || h || '.example' || (h % 13) || '.com'"    \
    " AS host"                                                                                     \
    " FROM (SELECT i, t, c, dn, tr, s, p, "
/* ... then the host h of the mix (HOST_OFFICE or HOST_INDEPENDENT), FILL_ROWS_FROM, the
 * numbers and ") a) b) m". */
#define FILL_ROWS_FROM                                                                             \
    " AS h FROM (SELECT i, CAST(?3 AS BIGINT) + i * CAST(?4 AS BIGINT) / CAST(?5 AS BIGINT) AS t," \
    " (((i * 69621 + 7) % 9973) * ((i * 69621 + 7) % 9973) * ((i * 69621 + 7) % 9973) * 200)"      \
    " / 991921850317 AS c,"                                                                        \
    " CASE WHEN (i * 16807 + 3) % 100 < 5 THEN 1 ELSE 0 END AS dn, (i * 7919 + 11) % 100 AS tr,"   \
    " (i * 104729 + 17) % 100 AS s, (i * 613) % 8 AS p, " WORKING_SET_K " AS k FROM "
#define NUMBERS_PG "generate_series(CAST(?1 AS BIGINT), CAST(?2 AS BIGINT) - 1) AS g(i)"
#define NUMBERS_SQLITE                                                                             \
    "(WITH RECURSIVE g(i) AS (SELECT ?1 UNION ALL SELECT i + 1 FROM g WHERE i + 1 < ?2)"           \
    " SELECT i FROM g)"

/* The rollups' sums and id ranges, of rows or of finer rollup rows. */
#define SUMS_OF_ROWS                                                                               \
    "count(*), sum(CASE WHEN decision = 1 THEN 1 ELSE 0 END),"                                     \
    " sum(CASE WHEN decision = 3 THEN 1 ELSE 0 END), sum(bytes_up), sum(bytes_down),"              \
    " sum(CASE WHEN decision = 1 THEN bytes_up + bytes_down ELSE 0 END),"                          \
    " sum(CASE WHEN decision = 3 THEN bytes_up + bytes_down ELSE 0 END), min(id), max(id)"
#define SUMS_OF_SUMS                                                                               \
    "sum(requests), sum(blocked), sum(reported), sum(bytes_up), sum(bytes_down),"                  \
    " sum(blocked_bytes), sum(reported_bytes), min(min_id), max(max_id)"
#define ROLLUP_COLS                                                                                \
    "INSERT INTO access_rollup(level_ms, dim, bucket_ms, key, node, requests, blocked, reported,"  \
    " bytes_up, bytes_down, blocked_bytes, reported_bytes, min_id, max_id) "

/* store_rollup.c's keys per dimension (enum store_rollup_dim order). */
static const char *const dim_key[STORE_ROLLUP_DIMS] = {"''", "host", "client",
                                                       "CAST(rule_id AS TEXT)"};

/* The columns a copied row keeps as they are (FILL_ROWS's, after id and time_ms). */
#define ROW_COLS                                                                                   \
    "client, \"user\", method, scheme, host, port, path, status, bytes_up, bytes_down,"            \
    " duration_ms, decision, rule_id, error, policy_version, sni, dest, node"
#define SUM_COLS "requests, blocked, reported, bytes_up, bytes_down, blocked_bytes, reported_bytes"

/* The rollups of level `to` for the buckets in [lo, hi), summed from the rollup rows of the
 * finer level `from` (every dimension). */
static void rollup_from_finer(struct store *st, int64_t from, int64_t to, int64_t lo, int64_t hi)
{
    char sql[1024];
    int64_t args[2] = {lo, hi};

    /* A dimension a statement: each reads one range of the primary key. */
    for (int dim = 0; dim < STORE_ROLLUP_DIMS; dim++) {
        snprintf(sql, sizeof(sql),
                 ROLLUP_COLS "SELECT %lld, dim, bucket_ms / %lld * %lld, key, node, " SUMS_OF_SUMS
                             " FROM access_rollup WHERE level_ms = %lld AND dim = %d"
                             " AND bucket_ms >= ?1 AND bucket_ms < ?2 GROUP BY 2, 3, 4, 5",
                 (long long)to, (long long)to, (long long)to, (long long)from, dim);
        run(st, "rollup", sql, 2, args);
    }
}

/* The minute rollups and the minutes' id ranges of the rows with time in [lo, hi). */
static void rollup_rows(struct store *st, int64_t lo, int64_t hi)
{
    char sql[1024];
    int64_t args[2] = {lo, hi};

    for (int dim = 0; dim < STORE_ROLLUP_DIMS; dim++) {
        snprintf(sql, sizeof(sql),
                 ROLLUP_COLS "SELECT 60000, %d, time_ms / 60000 * 60000, %s, node, " SUMS_OF_ROWS
                             " FROM access_log WHERE time_ms >= ?1 AND time_ms < ?2"
                             " GROUP BY 3, 4, 5",
                 dim, dim_key[dim]);
        run(st, "rollup", sql, 2, args);
    }
    run(st, "minute ids",
        "INSERT INTO access_log_minutes(minute_ms, first_id, last_id, row_count)"
        " SELECT time_ms / 60000 * 60000, min(id), max(id), count(*) FROM access_log"
        " WHERE time_ms >= ?1 AND time_ms < ?2 GROUP BY 1",
        2, args);
}

/* The hourly visits (access_visits) of the rows with time in [lo, hi). */
static void visits_of_rows(struct store *st, int64_t lo, int64_t hi)
{
    int64_t args[2] = {lo, hi};

    run(st, "visits",
        "INSERT INTO access_visits(level_ms, bucket_ms, host, client, \"user\", node, requests,"
        " blocked, first_ms, last_ms) SELECT 3600000, time_ms / 3600000 * 3600000, host, client,"
        " \"user\", node, count(*), sum(CASE WHEN decision = 1 THEN 1 ELSE 0 END), min(time_ms),"
        " max(time_ms) FROM access_log WHERE time_ms >= ?1 AND time_ms < ?2 GROUP BY 2, 3, 4, 5, 6",
        2, args);
}

/* Days are filled and copied in slices of an hour's worth: on PostgreSQL a statement ends at
 * the store's statement_timeout (a minute), which a whole day of 100M rows outlasts on a loaded
 * machine. */
#define DAY_SLICES 24

/* The template: per_day rows of the UTC day d0 (ids [*base, *base + per_day)), with their
 * rollups summed by SQL (from the rows, then from the finer rollups), as the writer would
 * have kept them. */
static void fill_template(struct store *st, int64_t d0, int64_t per_day, int64_t *base)
{
    char sql[4096];
    int64_t lo, hi;

    snprintf(sql, sizeof(sql), "%s%s%s%s) a) b) m", FILL_ROWS,
             host_mix == MIX_OFFICE ? HOST_OFFICE : HOST_INDEPENDENT, FILL_ROWS_FROM,
             st->backend == STORE_PG ? NUMBERS_PG : NUMBERS_SQLITE);
    for (int64_t j = 0; j < DAY_SLICES; j++) {
        int64_t args[5] = {per_day * j / DAY_SLICES, per_day * (j + 1) / DAY_SLICES, d0, DAY_MS,
                           per_day};

        run(st, "fill", sql, 5, args);
    }
    lo = query_int(st, "SELECT min(id) FROM access_log");
    hi = query_int(st, "SELECT max(id) FROM access_log");
    if (hi - lo + 1 != per_day)
        die("fill", "the template day's ids are not consecutive");
    *base = lo;
    for (int64_t h = d0; h < d0 + DAY_MS; h += HOUR_MS) {
        rollup_rows(st, h, h + HOUR_MS);
        rollup_from_finer(st, MIN_MS, HOUR_MS, h, h + HOUR_MS);
    }
    for (int64_t h = d0; h < d0 + DAY_MS; h += HOUR_MS)
        visits_of_rows(st, h, h + HOUR_MS);
    rollup_from_finer(st, HOUR_MS, DAY_MS, d0, d0 + DAY_MS);
}

/* Day k after the template: its rows, rollups and minutes copied with times (and buckets)
 * k days later and ids k * per_day higher, up to cut (now, for today; the rollup buckets
 * that end after cut are summed from the copied rows instead). */
static void copy_day(struct store *st, int64_t d0, int64_t per_day, int64_t base, int64_t k,
                     int64_t cut)
{
    static const int64_t level[STORE_ROLLUP_LEVELS] = {MIN_MS, HOUR_MS, DAY_MS};
    int64_t shift = k * DAY_MS, ids = k * per_day, day = d0 + shift;

    for (int64_t j = 0; j < DAY_SLICES; j++) {
        int64_t rows_args[5] = {ids, shift, base + per_day * j / DAY_SLICES,
                                base + per_day * (j + 1) / DAY_SLICES, cut};

        run(st, "copy rows",
            "INSERT INTO access_log(id, time_ms, " ROW_COLS
            ") SELECT id + ?1, time_ms + ?2, " ROW_COLS
            " FROM access_log WHERE id >= ?3 AND id < ?4 AND time_ms + ?2 < ?5 ORDER BY id",
            5, rows_args);
    }
    for (int l = 0; l < STORE_ROLLUP_LEVELS; l++) {
        for (int dim = 0; dim < STORE_ROLLUP_DIMS; dim++) {
            for (int64_t j = 0; j < DAY_SLICES; j++) {
                int64_t args[7] = {shift,
                                   level[l],
                                   d0 + DAY_MS * j / DAY_SLICES,
                                   d0 + DAY_MS * (j + 1) / DAY_SLICES,
                                   cut,
                                   dim,
                                   ids};

                run(st, "copy rollups",
                    ROLLUP_COLS "SELECT level_ms, dim, bucket_ms + ?1, key, node, " SUM_COLS
                                ", min_id + ?7, max_id + ?7"
                                " FROM access_rollup WHERE level_ms = ?2 AND dim = ?6 AND"
                                " bucket_ms >= ?3 AND bucket_ms < ?4 AND bucket_ms + ?1 + ?2 <= ?5",
                    7, args);
            }
        }
    }
    {
        int64_t args[5] = {shift, ids, d0, d0 + DAY_MS, cut};

        run(st, "copy minute ids",
            "INSERT INTO access_log_minutes(minute_ms, first_id, last_id, row_count)"
            " SELECT minute_ms + ?1, first_id + ?2, last_id + ?2, row_count"
            " FROM access_log_minutes WHERE minute_ms >= ?3 AND minute_ms < ?4"
            " AND minute_ms + ?1 + 60000 <= ?5",
            5, args);
    }
    for (int64_t h = d0; h < d0 + DAY_MS; h += HOUR_MS) {
        int64_t args[4] = {shift, h, h + HOUR_MS, cut};

        run(st, "copy visits",
            "INSERT INTO access_visits(level_ms, bucket_ms, host, client, \"user\", node,"
            " requests, blocked, first_ms, last_ms) SELECT level_ms, bucket_ms + ?1, host,"
            " client, \"user\", node, requests, blocked, first_ms + ?1, last_ms + ?1"
            " FROM access_visits WHERE level_ms = 3600000 AND bucket_ms >= ?2 AND bucket_ms < ?3"
            " AND bucket_ms + ?1 + 3600000 <= ?4",
            4, args);
    }
    if (cut < day + DAY_MS) {
        /* Today: the minute cut falls in, from its rows; its hour and its day from the
         * finer rollups; the visits of its hour from its rows. */
        int64_t minute = cut / MIN_MS * MIN_MS, hour = cut / HOUR_MS * HOUR_MS;

        if (minute < cut)
            rollup_rows(st, minute, cut);
        visits_of_rows(st, hour, cut);
        rollup_from_finer(st, MIN_MS, HOUR_MS, hour, cut);
        rollup_from_finer(st, HOUR_MS, DAY_MS, day, cut);
    }
}

/* The host rollups' id ranges of the minutes in [lo, hi) that do not name a row of their host
 * and minute at both ends (a copy's ids shifted wrongly, or a range not summed); each day's
 * total range that is not its minutes' (access_log_minutes). */
static int64_t bad_ranges(struct store *st, int64_t lo, int64_t hi)
{
    char sql[1024];

    snprintf(sql, sizeof(sql),
             "SELECT count(*) FROM access_rollup r WHERE level_ms = 60000 AND dim = 1"
             " AND bucket_ms >= %lld AND bucket_ms < %lld AND (min_id IS NULL OR max_id IS NULL"
             " OR NOT EXISTS (SELECT 1 FROM access_log l WHERE l.id = r.min_id AND l.host = r.key"
             " AND l.time_ms >= r.bucket_ms AND l.time_ms < r.bucket_ms + 60000)"
             " OR NOT EXISTS (SELECT 1 FROM access_log l WHERE l.id = r.max_id AND l.host = r.key"
             " AND l.time_ms >= r.bucket_ms AND l.time_ms < r.bucket_ms + 60000))",
             (long long)lo, (long long)hi);
    return query_int(st, sql) +
           query_int(st, "SELECT count(*) FROM (SELECT bucket_ms, min(min_id) AS lo,"
                         " max(max_id) AS hi FROM access_rollup WHERE level_ms = 86400000"
                         " AND dim = 0 GROUP BY bucket_ms) r WHERE lo IS NULL OR hi IS NULL"
                         " OR lo <> (SELECT min(first_id) FROM access_log_minutes"
                         " WHERE minute_ms >= r.bucket_ms AND minute_ms < r.bucket_ms + 86400000)"
                         " OR hi <> (SELECT max(last_id) FROM access_log_minutes"
                         " WHERE minute_ms >= r.bucket_ms AND minute_ms < r.bucket_ms + 86400000)");
}

static void fill(const char *db, int64_t rows, int days, int64_t now)
{
    char err[512];
    struct store *st = store_open(db, err, sizeof(err));
    /* Whole UTC days, the last one today's, up to now; the oldest is the template. */
    int64_t today = now / DAY_MS * DAY_MS, d0 = today - (int64_t)(days - 1) * DAY_MS;
    int64_t span = now - d0, per_day = rows * DAY_MS / span, base = 0, made;
    double t0 = now_s(), t1;

    if (!st)
        die(db, err);
    if (per_day < 1)
        die("fill", "fewer rows than days");
    if (query_int(st, "SELECT count(*) FROM (SELECT 1 FROM access_log LIMIT 1) x") != 0)
        die(db, "the access log has rows already (the fill needs an empty one)");
    if (st->backend == STORE_SQLITE &&
        store_exec(st, "PRAGMA cache_size=-262144", err, sizeof(err)) < 0)
        die("pragma", err);
    if (store_log_days_ensure(st, d0, now + DAY_MS, err, sizeof(err)) < 0)
        die("days", err);
    fill_template(st, d0, per_day, &base);
    t1 = now_s();
    printf("  template day: %lld rows with their rollups, %.0f s, load %s\n", (long long)per_day,
           t1 - t0, loadavg());
    fflush(stdout);
    for (int64_t k = 1; k < days; k++) {
        copy_day(st, d0, per_day, base, k, now);
        printf("  ... day %lld copied, %.0f s, load %s\n", (long long)k, now_s() - t0, loadavg());
        fflush(stdout);
    }
    if (st->backend == STORE_PG)
        run(st, "ids", "SELECT setval('access_log_ids', (SELECT max(id) FROM access_log))", 0,
            NULL);
    run(st, "watermark",
        "UPDATE access_rollup_watermark SET rolled_id = (SELECT coalesce(max(id), 0) FROM "
        "access_log)",
        0, NULL);
    run(st, "rule hits",
        "INSERT INTO rule_hits(rule_id, hits) SELECT CAST(key AS INTEGER), sum(requests)"
        " FROM access_rollup WHERE level_ms = 86400000 AND dim = 3 AND key <> '0' GROUP BY key",
        0, NULL);
    made = query_int(st, "SELECT count(*) FROM access_log");
    printf("  filled %lld rows over %d days in %.0f s (template %.0f s, copies %.0f s;"
           " %.0f rows/s; load %s)\n",
           (long long)made, days, now_s() - t0, t1 - t0, now_s() - t1,
           (double)made / (now_s() - t0), loadavg());
    if (st->backend == STORE_PG) {
        /* What autovacuum would have done to a log written over days. Without the store's
         * statement_timeout: at 100M rows on a loaded machine it outlasted the minute. */
        t0 = now_s();
        if (store_exec(st, "SET statement_timeout = 0", err, sizeof(err)) < 0 ||
            store_exec(st, "VACUUM ANALYZE", err, sizeof(err)) < 0)
            die("vacuum", err);
        printf("  VACUUM ANALYZE %.0f s\n", now_s() - t0);
    }
    {
        /* The rollups agree with the rows: the totals over all of them, and over today (a
         * copied part and the part summed from its rows) against a count of the rows. */
        struct store_totals t;
        int64_t args[2] = {today, now};
        struct sql_stmt *s;
        int64_t raw = -1;

        if (store_totals(st, 0, 0, NULL, &t, err, sizeof(err)) < 0)
            die("totals", err);
        printf("  totals from the rollups: %lld requests, %lld blocked\n", (long long)t.requests,
               (long long)t.blocked);
        if (t.requests != made)
            die("check", "the rollups' total is not the number of rows");
        if (store_totals(st, today, now, NULL, &t, err, sizeof(err)) < 0)
            die("totals", err);
        if (store_prepare(st,
                          "SELECT count(*) FROM access_log WHERE time_ms >= ?1 AND time_ms < ?2",
                          &s, err, sizeof(err)) < 0)
            die("check", err);
        sql_bind_int64(s, 1, args[0]);
        sql_bind_int64(s, 2, args[1]);
        if (sql_step(s) == SQL_ROW)
            raw = sql_col_int64(s, 0);
        sql_finalize(s);
        printf("  today: %lld requests from the rollups, %lld rows\n", (long long)t.requests,
               (long long)raw);
        if (t.requests != raw)
            die("check", "today's rollups do not match its rows");
        /* The id ranges: an hour a day before (copied) and the last hour (copied and summed
         * from the rows), and every day's total. */
        if (bad_ranges(st, (now - DAY_MS) / HOUR_MS * HOUR_MS,
                       (now - DAY_MS) / HOUR_MS * HOUR_MS + HOUR_MS) != 0 ||
            bad_ranges(st, now - HOUR_MS, now) != 0)
            die("check", "rollup id ranges do not name their rows");
        printf("  rollup id ranges checked\n");
    }
    printf("  rows %lld (blocked %lld), rollup rows %lld\n", (long long)made,
           (long long)query_int(st, "SELECT count(*) FROM access_log WHERE decision = 1"),
           (long long)query_int(st, "SELECT count(*) FROM access_rollup"));
    store_close(st);
}

enum q_kind { Q_TOTALS, Q_SERIES, Q_TOP, Q_SEARCH, Q_VISITORS };

struct query {
    const char *name;
    enum q_kind kind;
    int64_t span_ms, bucket_ms; /* the range: the last span_ms, as the UI's range buttons */
    enum store_top_kind top;
    struct store_log_filter f;
    size_t rows;
};

/* The range the UI asks for: until at the end of the bucket that holds now. */
static void ui_range(const struct query *q, int64_t now, int64_t *since, int64_t *until)
{
    int64_t b = q->bucket_ms ? q->bucket_ms : MIN_MS;

    *until = (now / b + 1) * b;
    *since = *until - q->span_ms;
}

static double run_query(struct store *st, struct query *q, int64_t now)
{
    char err[256];
    int64_t since, until;
    double t0 = now_s();
    int rc = 0;

    ui_range(q, now, &since, &until);
    switch (q->kind) {
    case Q_TOTALS: {
        struct store_totals t;

        rc = store_totals(st, since, until, NULL, &t, err, sizeof(err));
        q->rows = (size_t)t.requests;
        break;
    }
    case Q_SERIES: {
        struct store_series_point *p;

        rc = store_series(st, since, until, NULL, q->bucket_ms, &p, &q->rows, err, sizeof(err));
        if (rc == 0)
            free(p);
        break;
    }
    case Q_TOP: {
        struct store_top_row *r;

        rc = store_top(st, q->top, since, until, NULL, 10, &r, &q->rows, err, sizeof(err));
        if (rc == 0)
            free(r);
        break;
    }
    case Q_VISITORS: {
        struct store_visitor *v;

        rc = store_host_visitors(st, "www1.example1.com", NULL, STORE_VISITORS_CLIENT, since, until,
                                 10, &v, &q->rows, err, sizeof(err));
        if (rc == 0)
            free(v);
        break;
    }
    case Q_SEARCH: {
        struct store_log_row *r;

        rc = store_log_search(st, &q->f, &r, &q->rows, err, sizeof(err));
        if (rc == 0)
            free(r);
        break;
    }
    }
    if (rc < 0)
        die(q->name, err);
    return (now_s() - t0) * 1000;
}

/* What a query did, independent of the machine's load: SQLite the thousands of virtual
 * machine instructions its statements ran (a progress handler; the pager's cache counters miss
 * the pages read through mmap), PostgreSQL the rows and index entries its scans returned in the
 * open transaction (pg_stat_get_xact_tuples_returned). A count since the handler was set (or the
 * transaction began). */
static int64_t vm_thousands;

static int count_vm(void *arg)
{
    (void)arg;
    vm_thousands++;
    return 0;
}

static int64_t reads_so_far(struct store *st)
{
    if (st->backend == STORE_SQLITE)
        return vm_thousands;
    /* Tables: rows their sequential scans read; indexes: entries their scans returned. */
    return query_int(st, "SELECT coalesce(sum(pg_stat_get_xact_tuples_returned(c.oid)), 0)"
                         " FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
                         " WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'i')");
}

/* One run of q, its reads into *reads. */
static double measured_query(struct store *st, struct query *q, int64_t now, int64_t *reads)
{
    char err[256];
    bool pg = st->backend == STORE_PG;
    int64_t before;
    double ms;

    /* PostgreSQL's per-transaction counts: the query runs in a transaction of the bench's. */
    if (pg &&
        store_exec(st, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", err, sizeof(err)) < 0)
        die("begin", err);
    if (!pg)
        sqlite3_progress_handler(st->db, 1000, count_vm, NULL);
    before = reads_so_far(st);
    ms = run_query(st, q, now);
    *reads = reads_so_far(st) - before;
    if (!pg)
        sqlite3_progress_handler(st->db, 0, NULL, NULL);
    if (pg && store_exec(st, "COMMIT", err, sizeof(err)) < 0)
        die("commit", err);
    return ms;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;

    return x < y ? -1 : x > y;
}

static void queries(const char *db, int runs, int64_t now)
{
    struct query qs[] = {
        {.name = "dashboard 24 h: totals",
         .kind = Q_TOTALS,
         .span_ms = DAY_MS,
         .bucket_ms = 10 * MIN_MS},
        {.name = "dashboard 24 h: series 10 min",
         .kind = Q_SERIES,
         .span_ms = DAY_MS,
         .bucket_ms = 10 * MIN_MS},
        {.name = "dashboard 1 h: series 1 min",
         .kind = Q_SERIES,
         .span_ms = HOUR_MS,
         .bucket_ms = MIN_MS},
        {.name = "dashboard 30 d: totals",
         .kind = Q_TOTALS,
         .span_ms = 30 * DAY_MS,
         .bucket_ms = 6 * HOUR_MS},
        {.name = "dashboard 30 d: series 6 h",
         .kind = Q_SERIES,
         .span_ms = 30 * DAY_MS,
         .bucket_ms = 6 * HOUR_MS},
        {.name = "top hosts 24 h",
         .kind = Q_TOP,
         .span_ms = DAY_MS,
         .bucket_ms = 10 * MIN_MS,
         .top = STORE_TOP_HOSTS},
        {.name = "top clients 24 h",
         .kind = Q_TOP,
         .span_ms = DAY_MS,
         .bucket_ms = 10 * MIN_MS,
         .top = STORE_TOP_CLIENTS},
        {.name = "top blocked 24 h",
         .kind = Q_TOP,
         .span_ms = DAY_MS,
         .bucket_ms = 10 * MIN_MS,
         .top = STORE_TOP_BLOCKED},
        {.name = "top reported 24 h",
         .kind = Q_TOP,
         .span_ms = DAY_MS,
         .bucket_ms = 10 * MIN_MS,
         .top = STORE_TOP_REPORTED},
        {.name = "top blocked clients 24 h",
         .kind = Q_TOP,
         .span_ms = DAY_MS,
         .bucket_ms = 10 * MIN_MS,
         .top = STORE_TOP_BLOCKED_CLIENTS},
        {.name = "top hosts 30 d",
         .kind = Q_TOP,
         .span_ms = 30 * DAY_MS,
         .bucket_ms = 6 * HOUR_MS,
         .top = STORE_TOP_HOSTS},
        {.name = "top clients 30 d",
         .kind = Q_TOP,
         .span_ms = 30 * DAY_MS,
         .bucket_ms = 6 * HOUR_MS,
         .top = STORE_TOP_CLIENTS},
        {.name = "top blocked 30 d",
         .kind = Q_TOP,
         .span_ms = 30 * DAY_MS,
         .bucket_ms = 6 * HOUR_MS,
         .top = STORE_TOP_BLOCKED},
        {.name = "visitors of a host 24 h",
         .kind = Q_VISITORS,
         .span_ms = DAY_MS,
         .bucket_ms = 10 * MIN_MS},
        {.name = "search: newest page", .kind = Q_SEARCH, .f = {.decision = -1, .limit = 100}},
        {.name = "search: host substring",
         .kind = Q_SEARCH,
         .f = {.host_like = "ads7", .decision = -1}},
        {.name = "search: host substring, rare",
         .kind = Q_SEARCH,
         .f = {.host_like = "www1999.", .decision = -1}},
        {.name = "search: client", .kind = Q_SEARCH, .f = {.client = "10.0.0.20", .decision = -1}},
        {.name = "search: status 500", .kind = Q_SEARCH, .f = {.status = 500, .decision = -1}},
        {.name = "search: denied", .kind = Q_SEARCH, .f = {.decision = STORE_DENY}},
        {.name = "search: 1 h, 12 h ago",
         .kind = Q_SEARCH,
         .f = {.since_ms = now - 13 * HOUR_MS, .until_ms = now - 12 * HOUR_MS, .decision = -1}},
        {.name = "search: 1 h 20 d ago, client",
         .kind = Q_SEARCH,
         .f = {.since_ms = now - 20 * DAY_MS - HOUR_MS,
               .until_ms = now - 20 * DAY_MS,
               .client = "10.0.0.20",
               .decision = -1}},
        {.name = "search: 7 d window, status 404",
         .kind = Q_SEARCH,
         .f = {.since_ms = now - 14 * DAY_MS,
               .until_ms = now - 7 * DAY_MS,
               .status = 404,
               .decision = -1}},
        {.name = "search: page 2 of a host",
         .kind = Q_SEARCH,
         .f = {.host_like = "ads7", .decision = -1}},
    };
    size_t nq = sizeof(qs) / sizeof(qs[0]);
    char err[512];
    struct store *st;
    double t[MAX_RUNS];

    /* Page 2: below the first page's last id, as the log page's "older" link. */
    {
        struct store_log_row *r;
        size_t n;

        if (!(st = store_open(db, err, sizeof(err))))
            die(db, err);
        if (store_log_search(st, &qs[nq - 1].f, &r, &n, err, sizeof(err)) < 0)
            die("page 1", err);
        qs[nq - 1].f.before_id = n ? r[n - 1].id : 1;
        free(r);
        store_close(st);
    }
    printf("  %-34s %10s %10s %10s %12s   (%d runs, load at start %s)\n", "query", "median ms",
           "max ms", "result", store_path_is_pg(db) ? "rows read" : "kVM ops", runs, loadavg());
    for (size_t i = 0; i < nq; i++) {
        int64_t reads = 0;

        /* A connection per query, as the admin API's requests take one from its pool. */
        if (!(st = store_open(db, err, sizeof(err))))
            die(db, err);
        for (int r = 0; r < runs; r++)
            t[r] = measured_query(st, &qs[i], now, &reads);
        store_close(st);
        qsort(t, (size_t)runs, sizeof(t[0]), cmp_double);
        printf("  %-34s %10.1f %10.1f %10zu %12lld\n", qs[i].name, t[runs / 2], t[runs - 1],
               qs[i].rows, (long long)reads);
        fflush(stdout);
    }
    printf("  load at end %s\n", loadavg());
}

int main(int argc, char **argv)
{
    int64_t rows = 100000000, now = wall_ms();
    int days = 30, runs = 5;
    bool queries_only = false;
    const char *db = NULL;

    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--rows") == 0 && i + 1 < argc)
            rows = strtoll(argv[++i], NULL, 10);
        else if (strcmp(argv[i], "--days") == 0 && i + 1 < argc)
            days = atoi(argv[++i]);
        else if (strcmp(argv[i], "--runs") == 0 && i + 1 < argc)
            runs = atoi(argv[++i]);
        else if (strcmp(argv[i], "--mix") == 0 && i + 1 < argc &&
                 strcmp(argv[i + 1], "office") == 0)
            host_mix = MIX_OFFICE, i++;
        else if (strcmp(argv[i], "--mix") == 0 && i + 1 < argc &&
                 strcmp(argv[i + 1], "independent") == 0)
            host_mix = MIX_INDEPENDENT, i++;
        else if (strcmp(argv[i], "--queries-only") == 0)
            queries_only = true;
        else if (argv[i][0] != '-' && !db)
            db = argv[i];
        else
            db = NULL, i = argc;
    }
    if (!db || rows <= 0 || days <= 0 || days > 365 || runs <= 0 || runs > MAX_RUNS) {
        fprintf(stderr, "usage: scale_bench [--rows N] [--days D] [--runs R] [--mix "
                        "office|independent] [--queries-only] DB\n"
                        "  DB: an SQLite file or a PostgreSQL conninfo\n");
        return 2;
    }
    printf("scale_bench: %s, %s\n", store_path_is_pg(db) ? "PostgreSQL" : "SQLite",
           queries_only ? "queries over the rows there" : "fill, then queries");
    if (!queries_only) {
        printf("fill: %lld rows over %d days, %s mix\n", (long long)rows, days,
               host_mix == MIX_OFFICE ? "office" : "independent");
        fill(db, rows, days, now);
    }
    printf("queries:\n");
    queries(db, runs, now);
    return 0;
}
