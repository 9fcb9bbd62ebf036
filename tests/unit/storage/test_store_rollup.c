/* test_store_rollup: the dashboard's numbers (store_totals, store_top, store_series), read
 * from the rollups, equal a count over the raw rows, for ranges that do and do not fall on
 * minute, hour and day boundaries: rows written by the writer, rows the rollups do not hold
 * yet (as after a crash), after the writer catches up, and after retention deleted some; for
 * the rows of every node and of each node alone. */
#include <check.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "storage/store.h"
#include "tests/unit/common.h"

#define MIN_MS 60000LL
#define HOUR_MS 3600000LL
#define DAY_MS 86400000LL
#define ROWS 3000
/* A midnight (UTC): the rows spread over three days from here. */
#define T0 (1700000000000LL - 1700000000000LL % DAY_MS)

static struct test_tmpdir tmp;
static char err[256];
static uint64_t seed;

static void setup(void)
{
    test_tmpdir_make(&tmp);
    seed = 0x2545f4914f6cdd1dull;
}

static void teardown(void)
{
    test_tmpdir_remove(&tmp);
}

static uint64_t rnd(void)
{
    seed ^= seed << 13;
    seed ^= seed >> 7;
    seed ^= seed << 17;
    return seed;
}

/* A row somewhere in the three days from base, some of them out of time order. */
static struct store_access random_row(int64_t base)
{
    struct store_access a;

    memset(&a, 0, sizeof(a));
    a.time_ms = base + (int64_t)(rnd() % (uint64_t)(3 * DAY_MS));
    a.decision = (uint8_t)(rnd() % 4);
    a.status = 200;
    a.port = 80;
    a.rule_id = (int32_t)(rnd() % 4);
    a.bytes_up = rnd() % 1000;
    a.bytes_down = rnd() % 100000;
    snprintf(a.client, sizeof(a.client), "10.0.0.%u", (unsigned)(rnd() % 7));
    snprintf(a.host, sizeof(a.host), "h%u.test", (unsigned)(rnd() % 25));
    snprintf(a.method, sizeof(a.method), "GET");
    return a;
}

static void write_rows_of(const char *node, size_t n, int64_t base)
{
    struct store_log_opts o = {.db_path = tmp.db,
                               .producers = 1,
                               .queue_capacity = 4096,
                               .flush_interval_ms = 10,
                               .node_name = node};
    struct store_log *log = store_log_start(&o, err, sizeof(err));

    ck_assert_msg(log != NULL, "%s", err);
    for (size_t i = 0; i < n; i++) {
        struct store_access a = random_row(base);

        ck_assert(store_log_push(log, 0, &a));
    }
    store_log_stop(log);
}

static void write_rows(size_t n, int64_t base)
{
    write_rows_of("n1", n, base);
}

/* Rows that reach the table without the writer (the sums for them lost, as in a crash). */
static void insert_raw(size_t n, int64_t base)
{
    sqlite3 *db;
    sqlite3_stmt *s;

    ck_assert_int_eq(sqlite3_open(tmp.db, &db), SQLITE_OK);
    ck_assert_int_eq(sqlite3_prepare_v2(db,
                                        "INSERT INTO access_log(time_ms, client, host, decision,"
                                        " bytes_up, bytes_down, rule_id, node)"
                                        " VALUES (?, ?, ?, ?, ?, ?, ?, 'n2')",
                                        -1, &s, NULL),
                     SQLITE_OK);
    for (size_t i = 0; i < n; i++) {
        struct store_access a = random_row(base);

        sqlite3_bind_int64(s, 1, a.time_ms);
        sqlite3_bind_text(s, 2, a.client, -1, SQLITE_TRANSIENT);
        sqlite3_bind_text(s, 3, a.host, -1, SQLITE_TRANSIENT);
        sqlite3_bind_int(s, 4, a.decision);
        sqlite3_bind_int64(s, 5, (int64_t)a.bytes_up);
        sqlite3_bind_int64(s, 6, (int64_t)a.bytes_down);
        sqlite3_bind_int(s, 7, a.rule_id);
        ck_assert_int_eq(sqlite3_step(s), SQLITE_DONE);
        sqlite3_reset(s);
    }
    sqlite3_finalize(s);
    sqlite3_close(db);
}

static int64_t raw_int(const char *sql)
{
    sqlite3 *db;
    sqlite3_stmt *s;
    int64_t v = -1;

    ck_assert_int_eq(sqlite3_open(tmp.db, &db), SQLITE_OK);
    ck_assert_msg(sqlite3_prepare_v2(db, sql, -1, &s, NULL) == SQLITE_OK, "%s", sqlite3_errmsg(db));
    if (sqlite3_step(s) == SQLITE_ROW)
        v = sqlite3_column_int64(s, 0);
    sqlite3_finalize(s);
    sqlite3_close(db);
    return v;
}

/* The rows of a query over the raw log, joined as "a:b:c,..." (integers). */
static void raw_text(sqlite3 *db, const char *sql, char *out, size_t size)
{
    sqlite3_stmt *s;

    ck_assert_msg(sqlite3_prepare_v2(db, sql, -1, &s, NULL) == SQLITE_OK, "%s", sqlite3_errmsg(db));
    out[0] = '\0';
    while (sqlite3_step(s) == SQLITE_ROW)
        for (int c = 0; c < sqlite3_column_count(s); c++)
            snprintf(out + strlen(out), size - strlen(out), "%s%s",
                     c        ? ":"
                     : out[0] ? ","
                              : "",
                     (const char *)sqlite3_column_text(s, c));
    sqlite3_finalize(s);
}

/* Every figure of the three calls over [lo, hi) against the raw rows, of node (NULL: all). */
static void check_range(struct store *st, int64_t lo, int64_t hi, const char *node)
{
    char only[64] = "";
    static const int64_t buckets[] = {MIN_MS, 5 * MIN_MS, HOUR_MS, DAY_MS, 30000, 7 * MIN_MS};
    static char sql[1024], want[65536], got[65536];
    struct store_totals t;
    struct store_top_row *r;
    struct store_series_point *p;
    size_t n;
    sqlite3 *db;

    if (node)
        snprintf(only, sizeof(only), " AND node = '%s'", node);
    ck_assert_int_eq(sqlite3_open(tmp.db, &db), SQLITE_OK);
    snprintf(sql, sizeof(sql),
             "SELECT count(*), CAST(total(decision = 1) AS INTEGER),"
             " CAST(total(bytes_up) AS INTEGER), CAST(total(bytes_down) AS INTEGER),"
             " count(DISTINCT client), count(DISTINCT host) FROM access_log"
             " WHERE time_ms >= %lld AND time_ms < %lld%s",
             (long long)lo, (long long)hi, only);
    raw_text(db, sql, want, sizeof(want));
    ck_assert_int_eq(store_totals(st, lo, hi, node, &t, err, sizeof(err)), 0);
    snprintf(got, sizeof(got), "%lld:%lld:%lld:%lld:%lld:%lld", (long long)t.requests,
             (long long)t.blocked, (long long)t.bytes_up, (long long)t.bytes_down,
             (long long)t.clients, (long long)t.hosts);
    ck_assert_msg(strcmp(got, want) == 0, "totals [%lld, %lld) of %s: got %s want %s",
                  (long long)lo, (long long)hi, node ? node : "all", got, want);
    for (int kind = 0; kind < STORE_TOP_COUNT; kind++) {
        snprintf(sql, sizeof(sql),
                 "SELECT %s, count(*), sum(bytes_up + bytes_down) FROM access_log"
                 " WHERE time_ms >= %lld AND time_ms < %lld%s%s GROUP BY 1 ORDER BY 2 DESC, 1",
                 kind == STORE_TOP_CLIENTS || kind == STORE_TOP_BLOCKED_CLIENTS ? "client" : "host",
                 (long long)lo, (long long)hi,
                 kind == STORE_TOP_BLOCKED || kind == STORE_TOP_BLOCKED_CLIENTS
                     ? " AND decision = 1"
                 : kind == STORE_TOP_REPORTED ? " AND decision = 3"
                                              : "",
                 only);
        raw_text(db, sql, want, sizeof(want));
        ck_assert_int_eq(
            store_top(st, (enum store_top_kind)kind, lo, hi, node, 1000, &r, &n, err, sizeof(err)),
            0);
        got[0] = '\0';
        for (size_t k = 0; k < n; k++)
            snprintf(got + strlen(got), sizeof(got) - strlen(got), "%s%s:%lld:%lld", k ? "," : "",
                     r[k].key, (long long)r[k].requests, (long long)r[k].bytes);
        free(r);
        ck_assert_msg(strcmp(got, want) == 0, "top %d [%lld, %lld) of %s: got %s want %s", kind,
                      (long long)lo, (long long)hi, node ? node : "all", got, want);
    }
    for (size_t b = 0; b < sizeof(buckets) / sizeof(buckets[0]); b++) {
        long long u = (long long)buckets[b];

        if ((hi - lo) / buckets[b] > 20000)
            continue;
        /* The points that have rows (store_series also lists empty ones, as zeros). */
        snprintf(sql, sizeof(sql),
                 "SELECT time_ms - ((time_ms %% %lld) + %lld) %% %lld, count(*),"
                 " CAST(total(decision = 1) AS INTEGER),"
                 " CAST(total(bytes_up + bytes_down) AS INTEGER) FROM access_log"
                 " WHERE time_ms >= %lld AND time_ms < %lld%s GROUP BY 1 ORDER BY 1",
                 u, u, u, (long long)lo, (long long)hi, only);
        raw_text(db, sql, want, sizeof(want));
        ck_assert_int_eq(store_series(st, lo, hi, node, buckets[b], &p, &n, err, sizeof(err)), 0);
        got[0] = '\0';
        for (size_t k = 0; k < n; k++)
            if (p[k].requests != 0)
                snprintf(got + strlen(got), sizeof(got) - strlen(got), "%s%lld:%lld:%lld:%lld",
                         got[0] ? "," : "", (long long)p[k].bucket_ms, (long long)p[k].requests,
                         (long long)p[k].blocked, (long long)p[k].bytes);
        free(p);
        ck_assert_msg(strcmp(got, want) == 0, "series %lld [%lld, %lld): got %s want %s", u,
                      (long long)lo, (long long)hi, got, want);
    }
    sqlite3_close(db);
}

/* Ranges on and off the minute, hour and day boundaries, short and long; of every node and
 * of each. */
static void check_ranges(struct store *st)
{
    static const char *const nodes[] = {NULL, "n1", "n2", "n3"};

    const int64_t ranges[][2] = {
        {T0, T0 + 3 * DAY_MS},
        {T0 - DAY_MS, T0 + 5 * DAY_MS},
        {T0 + DAY_MS, T0 + 2 * DAY_MS},
        {T0 + 3 * HOUR_MS, T0 + 30 * HOUR_MS},
        {T0 + 17 * MIN_MS, T0 + 2 * DAY_MS + 93 * MIN_MS},
        {T0 + 12345, T0 + 2 * DAY_MS + 3 * HOUR_MS + 54321},
        {T0 + DAY_MS + 1000, T0 + DAY_MS + 59000},
        {T0 + HOUR_MS - 30000, T0 + HOUR_MS + 90000},
    };

    for (size_t i = 0; i < sizeof(ranges) / sizeof(ranges[0]); i++)
        for (size_t k = 0; k < sizeof(nodes) / sizeof(nodes[0]); k++)
            check_range(st, ranges[i][0], ranges[i][1], nodes[k]);
}

START_TEST(test_dashboard_equals_raw_counts)
{
    struct store *st;

    /* Two nodes in turns: their rows share the buckets and most keys. */
    write_rows(ROWS / 3, T0);
    write_rows_of("n3", ROWS / 3, T0);
    write_rows(ROWS / 3, T0);
    ck_assert_int_eq(raw_int("SELECT rolled_id FROM access_rollup_watermark"),
                     raw_int("SELECT max(id) FROM access_log"));
    st = store_open(tmp.db, err, sizeof(err));
    ck_assert_msg(st != NULL, "%s", err);
    check_ranges(st);
    store_close(st);
}
END_TEST

START_TEST(test_rows_above_the_watermark_count_and_are_caught_up)
{
    struct store *st;

    write_rows(ROWS / 2, T0);
    insert_raw(200, T0); /* not in the rollups */
    ck_assert_int_lt(raw_int("SELECT rolled_id FROM access_rollup_watermark"),
                     raw_int("SELECT max(id) FROM access_log"));
    st = store_open(tmp.db, err, sizeof(err));
    ck_assert_msg(st != NULL, "%s", err);
    check_ranges(st);
    store_close(st);
    /* A writer that starts rolls them up from the table, then goes on with its own. */
    write_rows(ROWS / 2, T0);
    ck_assert_int_eq(raw_int("SELECT rolled_id FROM access_rollup_watermark"),
                     raw_int("SELECT max(id) FROM access_log"));
    /* The rows it caught up carry their own node. */
    ck_assert_int_eq(raw_int("SELECT sum(requests) FROM access_rollup WHERE level_ms = 86400000"
                             " AND dim = 0 AND node = 'n2'"),
                     200);
    st = store_open(tmp.db, err, sizeof(err));
    ck_assert_msg(st != NULL, "%s", err);
    check_ranges(st);
    store_close(st);
}
END_TEST

START_TEST(test_retention_takes_deleted_rows_out_of_the_rollups)
{
    struct store *st;
    int64_t deleted = 0, n;

    write_rows(ROWS, T0);
    st = store_open(tmp.db, err, sizeof(err));
    ck_assert_msg(st != NULL, "%s", err);
    /* By rows, in small steps: the oldest ids go, whatever their time. */
    while ((n = store_retention_step(st, 0, ROWS - 700, 300)) > 0)
        deleted += n;
    ck_assert_int_eq(n, 0);
    ck_assert_int_eq(deleted, 700);
    check_ranges(st);
    /* Buckets left without rows are gone from the rollups, not kept at zero. */
    ck_assert_int_eq(raw_int("SELECT count(*) FROM access_rollup WHERE requests <= 0"), 0);
    ck_assert_int_eq(raw_int("SELECT count(*) FROM access_rollup WHERE level_ms = 60000"
                             " AND dim = 0"),
                     raw_int("SELECT count(DISTINCT time_ms / 60000) FROM access_log"));
    store_close(st);
    /* Everything: the rollups empty with the log. */
    st = store_open(tmp.db, err, sizeof(err));
    ck_assert_msg(st != NULL, "%s", err);
    while (store_retention_step(st, 0, 1, 1000) > 0)
        ;
    ck_assert_int_eq(raw_int("SELECT count(*) FROM access_log"), 1);
    ck_assert_int_eq(raw_int("SELECT count(*) FROM access_rollup"), 3 * 4);
    check_ranges(st);
    store_close(st);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("store_rollup");
    TCase *tc = tcase_create("rollup");

    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, test_dashboard_equals_raw_counts);
    tcase_add_test(tc, test_rows_above_the_watermark_count_and_are_caught_up);
    tcase_add_test(tc, test_retention_takes_deleted_rows_out_of_the_rollups);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
