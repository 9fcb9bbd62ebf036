/* test_store_query: log search filters (LIKE metacharacters taken literally), paging and
 * following, top, series, totals, and retention by row count and by age; on PostgreSQL the
 * log's table per day (made ahead, dropped whole by retention, made from an old log). */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "storage/store.h"
#include "storage/store_impl.h"
#include "tests/unit/common.h"

#define MIN_MS 60000LL
#define DAY_MS (24 * 3600 * 1000LL)

static struct test_tmpdir tmp;
static struct store *st;
static char err[256];
static int64_t T; /* time of row 1, on a minute boundary */

struct row {
    int64_t dt_ms;
    const char *client, *host, *path;
    uint8_t decision;
    uint16_t status;
    uint64_t up, down;
    int rule_id;
    const char *user; /* NULL: none */
};

/* Ids 1..6 in this order. */
static const struct row rows[] = {
    {0, "10.0.0.1", "a%b_c.test", "/x", STORE_ALLOW, 200, 10, 100, 0, NULL},
    {1000, "10.0.0.1", "axbyc.test", "/quarterly", STORE_ALLOW, 200, 20, 200, 0, NULL},
    {2000, "10.0.0.2", "ads.test", "/banner", STORE_DENY, 403, 0, 0, 5, NULL},
    {61000, "10.0.0.2", "ads.test", "/banner", STORE_DENY, 403, 0, 0, 5, NULL},
    {62000, "10.0.0.3", "www.test", "/a_b", STORE_ALLOW, 200, 5, 50, 0, "alice"},
    {120000, "10.0.0.1", "www.test", "/", STORE_ALLOW, 404, 1, 1, 0, NULL},
};

/* Through a writer of node (NULL: ""). */
static void push_rows_of(const char *node, const struct row *r, size_t n, int64_t base)
{
    struct store_log_opts o = {.db_path = tmp.db,
                               .producers = 1,
                               .queue_capacity = 4096,
                               .flush_interval_ms = 10,
                               .node_name = node};
    struct store_log *log = store_log_start(&o, err, sizeof(err));

    ck_assert_msg(log != NULL, "%s", err);
    for (size_t i = 0; i < n; i++) {
        struct store_access a;

        memset(&a, 0, sizeof(a));
        a.time_ms = base + r[i].dt_ms;
        a.decision = r[i].decision;
        a.status = r[i].status;
        a.bytes_up = r[i].up;
        a.bytes_down = r[i].down;
        a.rule_id = r[i].rule_id;
        a.port = 80;
        snprintf(a.client, sizeof(a.client), "%s", r[i].client);
        snprintf(a.host, sizeof(a.host), "%s", r[i].host);
        snprintf(a.path, sizeof(a.path), "%s", r[i].path);
        snprintf(a.method, sizeof(a.method), "GET");
        snprintf(a.user, sizeof(a.user), "%s", r[i].user ? r[i].user : "");
        snprintf(a.scheme, sizeof(a.scheme), "http");
        /* A full queue: the writer drains it (bounded: 60 s). */
        for (int tries = 0; !store_log_push(log, 0, &a); tries++) {
            ck_assert_int_lt(tries, 600000);
            usleep(100);
        }
    }
    store_log_stop(log);
}

static void push_rows(const struct row *r, size_t n, int64_t base)
{
    push_rows_of(NULL, r, n, base);
}

static void setup(void)
{
    struct timespec ts;
    int id;

    clock_gettime(CLOCK_REALTIME, &ts);
    T = ((int64_t)ts.tv_sec * 1000 - 2 * 3600 * 1000) / MIN_MS * MIN_MS;
    st = test_store_make(&tmp);
    /* Rules 1..5 exist so rule 5's hits show in store_rules_list. */
    for (int i = 1; i <= 5; i++)
        ck_assert_int_eq(
            store_rule_add(st, "deny domain ads.test", "", 0, "t", &id, err, sizeof(err)), 0);
}

static void teardown(void)
{
    test_store_remove(&tmp, st);
}

static int64_t hits_of(int rule_id)
{
    struct store_rule *rules;
    size_t n;
    int64_t hits = -1;

    ck_assert_int_eq(store_rules_list(st, &rules, &n, err, sizeof(err)), 0);
    for (size_t i = 0; i < n; i++)
        if (rules[i].id == rule_id)
            hits = rules[i].hits;
    store_rules_free(rules, n);
    return hits;
}

/* Ids of the search result joined by ",". */
static void search_ids(const struct store_log_filter *f, char *out, size_t size)
{
    struct store_log_row *r;
    size_t n;

    ck_assert_msg(store_log_search(st, f, &r, &n, err, sizeof(err)) == 0, "%s", err);
    out[0] = '\0';
    for (size_t i = 0; i < n; i++)
        snprintf(out + strlen(out), size - strlen(out), "%s%lld", i ? "," : "", (long long)r[i].id);
    free(r);
}

/* 10.0.0.2 as IPv4-mapped: with 127 bits 10.0.0.2-3, with 128 only .2. */
#define NET_10_0_0_2                                                                               \
    .client_net_set = true, .client_net = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 10, 0, 0, 2}

/* 2001:db8:: and 11.0.0.0 (IPv4-mapped): networks no client of the rows is in. */
#define NET_2001_DB8 .client_net_set = true, .client_net = {0x20, 0x01, 0x0d, 0xb8}
#define NET_11_0_0_0                                                                               \
    .client_net_set = true, .client_net = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 11, 0, 0, 0}

START_TEST(test_search_filters_paging_and_follow)
{
    const struct {
        struct store_log_filter f;
        const char *want;
    } cases[] = {
        {{.decision = -1}, "6,5,4,3,2,1"},
        {{.client = "10.0.0.1", .decision = -1}, "6,2,1"},
        {{.host_like = "a%b_c", .decision = -1}, "1"}, /* not axbyc.test */
        {{.host_like = "A%B", .decision = -1}, "1"},   /* case-insensitive */
        {{.host_like = "ads", .decision = -1}, "4,3"},
        {{.host_like = "\\", .decision = -1}, ""},
        {{.text_like = "a_b", .decision = -1}, "5"},
        {{.text_like = "quarterly", .decision = -1}, "2"},
        {{.text_like = "www", .decision = -1}, "6,5"},
        {{.decision = STORE_DENY}, "4,3"},
        {{.decision = STORE_AUTH}, ""},
        {{.status = 404, .decision = -1}, "6"},
        {{.since_ms = T + 1000, .until_ms = T + 62000, .decision = -1}, "4,3,2"},
        {{.since_ms = T + 1000, .decision = -1}, "6,5,4,3,2"},
        {{.until_ms = T + 2000, .decision = -1}, "2,1"},
        {{.before_id = 4, .decision = -1}, "3,2,1"},
        {{.before_id = 4, .decision = -1, .limit = 2}, "3,2"},
        {{.after_id = 4, .decision = -1}, "5,6"},
        {{.after_id = 1, .decision = -1, .limit = 2}, "2,3"},
        {{.client = "10.0.0.2", .decision = STORE_DENY}, "4,3"},
        {{.client = "10.0.0.2", .since_ms = T + 60000, .until_ms = T + 70000, .decision = -1}, "4"},
        {{.decision = -1, .limit = 2}, "6,5"},
        {{.rule_id = 5, .decision = -1}, "4,3"},
        {{.client_prefix = "10.0.0.", .decision = -1}, "6,5,4,3,2,1"},
        {{.client_prefix = "10.0.0.3", .decision = -1}, "5"},
        {{.client_prefix = "10.0.1", .decision = -1}, ""},
        {{NET_10_0_0_2, .client_net_bits = 127, .decision = -1}, "5,4,3"},
        {{NET_10_0_0_2, .client_net_bits = 128, .decision = -1}, "4,3"},
        {{NET_10_0_0_2, .client_net_bits = 0, .decision = -1}, "6,5,4,3,2,1"},
        {{NET_10_0_0_2, .client_net_bits = 125, .decision = STORE_DENY}, "4,3"},
        /* Networks wider than ::ffff:0:0/96 hold every IPv4 client or none (PostgreSQL's
         * inet keeps the families apart: the store has to say which). */
        {{NET_10_0_0_2, .client_net_bits = 96, .decision = -1}, "6,5,4,3,2,1"},
        {{NET_10_0_0_2, .client_net_bits = 80, .decision = -1}, "6,5,4,3,2,1"},
        {{NET_2001_DB8, .client_net_bits = 32, .decision = -1}, ""},
        {{NET_11_0_0_0, .client_net_bits = 104, .decision = -1}, ""},
        {{.user = "alice", .decision = -1}, "5"},
        {{.user = "ALICE", .decision = -1}, ""},
        {{.rule_id = 4, .decision = -1}, ""},
    };
    char got[128];

    push_rows(rows, sizeof(rows) / sizeof(rows[0]), T);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        search_ids(&cases[i].f, got, sizeof(got));
        ck_assert_msg(strcmp(got, cases[i].want) == 0, "case %zu: got '%s' want '%s'", i, got,
                      cases[i].want);
    }
}
END_TEST

/* Rows of test_search_windows: id, time after T, client. */
struct win_row {
    int64_t id, dt_ms;
    const char *client;
};

/* The reference answer: the rows in [since, until) (0: open) of client (NULL: any) with ids
 * below before (0: any), newest id first, at most limit, joined by ",". */
static void window_ref(const struct win_row *w, size_t n, int64_t since, int64_t until,
                       const char *client, int64_t before, size_t limit, char *out, size_t size)
{
    size_t got = 0;

    out[0] = '\0';
    for (int64_t id = 1000; id > 0 && got < limit; id--) {
        for (size_t i = 0; i < n; i++) {
            int64_t t = T + w[i].dt_ms;

            if (w[i].id != id || (since > 0 && t < since) || (until > 0 && t >= until) ||
                (client && strcmp(client, w[i].client) != 0) || (before > 0 && id >= before))
                continue;
            snprintf(out + strlen(out), size - strlen(out), "%s%lld", got ? "," : "",
                     (long long)id);
            got++;
        }
    }
}

/* Time windows (SQLite reads them as id ranges, access_log_minutes): every edge of a minute,
 * windows wider than 6 h, rows written out of time order, rows above the rollups' watermark
 * (not in the minutes' ranges yet), a client filter and page 2, each against the rows. */
START_TEST(test_search_windows)
{
    static const struct row first[] = {
        {0, "10.0.0.1", "a.test", "/", STORE_ALLOW, 200, 1, 1, 0, NULL},
        {59999, "10.0.0.2", "a.test", "/", STORE_ALLOW, 200, 1, 1, 0, NULL},
        {60000, "10.0.0.1", "a.test", "/", STORE_ALLOW, 200, 1, 1, 0, NULL},
        {90000, "10.0.0.2", "a.test", "/", STORE_ALLOW, 200, 1, 1, 0, NULL},
        {119999, "10.0.0.1", "a.test", "/", STORE_ALLOW, 200, 1, 1, 0, NULL},
        {120000, "10.0.0.2", "a.test", "/", STORE_ALLOW, 200, 1, 1, 0, NULL},
        {3 * 3600000, "10.0.0.1", "a.test", "/", STORE_ALLOW, 200, 1, 1, 0, NULL},
        {7 * 3600000, "10.0.0.2", "a.test", "/", STORE_ALLOW, 200, 1, 1, 0, NULL},
    };
    /* Written later with older times (a late node, a spill sent when the database came back). */
    static const struct row late[] = {
        {30000, "10.0.0.2", "a.test", "/", STORE_ALLOW, 200, 1, 1, 0, NULL},
        {61000, "10.0.0.1", "a.test", "/", STORE_ALLOW, 200, 1, 1, 0, NULL},
    };
    static const struct win_row w[] = {
        {1, 0, "10.0.0.1"},           {2, 59999, "10.0.0.2"},       {3, 60000, "10.0.0.1"},
        {4, 90000, "10.0.0.2"},       {5, 119999, "10.0.0.1"},      {6, 120000, "10.0.0.2"},
        {7, 3 * 3600000, "10.0.0.1"}, {8, 7 * 3600000, "10.0.0.2"}, {9, 30000, "10.0.0.2"},
        {10, 61000, "10.0.0.1"},      {11, 45000, "10.0.0.2"},      {12, 120001, "10.0.0.1"},
    };
    const int64_t edges[] = {0,
                             T - 1,
                             T,
                             T + 1,
                             T + 59999,
                             T + 60000,
                             T + 60001,
                             T + 119999,
                             T + 120000,
                             T + 120001,
                             T + 3 * 3600000,
                             T + 3 * 3600000 + 1,
                             T + 7 * 3600000 + 1};
    const size_t ne = sizeof(edges) / sizeof(edges[0]);
    const char *clients[] = {NULL, "10.0.0.2"};
    struct sql_stmt *s;
    char got[256], want[256];

    push_rows(first, sizeof(first) / sizeof(first[0]), T);
    push_rows(late, sizeof(late) / sizeof(late[0]), T);
    /* The writer kept each minute's ids with the rollups: minute 0 took ids 1, 2 and 9. */
    ck_assert_int_eq(store_prepare(st,
                                   "SELECT first_id, last_id, row_count FROM access_log_minutes"
                                   " WHERE minute_ms = ?1",
                                   &s, err, sizeof(err)),
                     0);
    sql_bind_int64(s, 1, T);
    ck_assert_int_eq(sql_step(s), SQL_ROW);
    ck_assert_int_eq(sql_col_int64(s, 0), 1);
    ck_assert_int_eq(sql_col_int64(s, 1), 9);
    ck_assert_int_eq(sql_col_int64(s, 2), 3);
    sql_finalize(s);
    /* Rows 11 and 12 above the watermark, as if the writer had not rolled them up yet. */
    for (size_t i = 10; i < 12; i++) {
        ck_assert_int_eq(
            store_prepare(st,
                          "INSERT INTO access_log(time_ms, client, \"user\", method, scheme, host,"
                          " port, path, status, bytes_up, bytes_down, duration_ms, decision,"
                          " rule_id, error, policy_version, sni, dest, node) VALUES (?1, ?2, '',"
                          " 'GET', 'http', 'a.test', 80, '/', 200, 1, 1, 0, 0, 0, '', 0, '', '',"
                          " '')",
                          &s, err, sizeof(err)),
            0);
        sql_bind_int64(s, 1, T + w[i].dt_ms);
        sql_bind_text(s, 2, w[i].client);
        ck_assert_int_eq(sql_step(s), SQL_DONE);
        sql_finalize(s);
    }
    ck_assert_int_eq(store_rollup_watermark(st, err, sizeof(err)), 10);
    for (size_t a = 0; a < ne; a++) {
        for (size_t b = 0; b < ne; b++) {
            int64_t since = edges[a], until = edges[b];

            if ((since == 0 && until == 0) || (since > 0 && until > 0 && until <= since))
                continue;
            for (size_t c = 0; c < 2; c++) {
                struct store_log_filter f = {
                    .since_ms = since, .until_ms = until, .client = clients[c], .decision = -1};
                size_t comma = 0;

                window_ref(w, 12, since, until, clients[c], 0, 100, want, sizeof(want));
                search_ids(&f, got, sizeof(got));
                ck_assert_msg(strcmp(got, want) == 0, "[%lld, %lld) %s: got '%s' want '%s'",
                              (long long)(since ? since - T : -1),
                              (long long)(until ? until - T : -1), clients[c] ? clients[c] : "",
                              got, want);
                /* Page 2 of pages of 2: below the first page's last id. */
                f.limit = 2;
                search_ids(&f, got, sizeof(got));
                for (size_t i = 0; got[i]; i++)
                    comma = got[i] == ',' ? i + 1 : comma;
                if (strchr(got, ',') == NULL)
                    continue;
                f.before_id = strtoll(got + comma, NULL, 10);
                window_ref(w, 12, since, until, clients[c], f.before_id, 2, want, sizeof(want));
                search_ids(&f, got, sizeof(got));
                ck_assert_msg(strcmp(got, want) == 0, "page 2 [%lld, %lld) %s: got '%s' want '%s'",
                              (long long)(since ? since - T : -1),
                              (long long)(until ? until - T : -1), clients[c] ? clients[c] : "",
                              got, want);
            }
        }
    }
}
END_TEST

/* Rows of test_search_rare_hosts: id, time, host, client. */
struct rare_row {
    int64_t id, time_ms;
    char host[32];
    const char *client;
};

/* More rows than the search's first probe of the newest ids (RARE_PROBE_IDS, 20,000). */
#define RARE_LOGGED 24000
#define RARE_ROWS (RARE_LOGGED + 5)

/* The reference: rows whose host holds sub (ASCII case-insensitive) in [since, until) (0:
 * open) of client (NULL: any) below before (0: any), newest id first, at most limit. */
static void rare_ref(const struct rare_row *w, const char *sub, int64_t since, int64_t until,
                     const char *client, int64_t before, size_t limit, char *out, size_t size)
{
    size_t got = 0;

    out[0] = '\0';
    for (size_t i = RARE_ROWS; i-- > 0 && got < limit;) {
        if (!strcasestr(w[i].host, sub) || (since > 0 && w[i].time_ms < since) ||
            (until > 0 && w[i].time_ms >= until) || (client && strcmp(client, w[i].client)) ||
            (before > 0 && w[i].id >= before))
            continue;
        snprintf(out + strlen(out), size - strlen(out), "%s%lld", got ? "," : "",
                 (long long)w[i].id);
        got++;
    }
}

/* A host substring few rows match is answered from the rollups' minutes (store_query.c,
 * search_rare): the same rows as a scan, with hosts only in old rows, rows written out of
 * time order, rows above the watermark, minutes whose id ranges are known and minutes whose
 * ranges are not (NULL, from before step 50), windows, a client filter and page 2. */
START_TEST(test_search_rare_hosts)
{
    static struct rare_row w[RARE_ROWS];
    static struct row r[RARE_LOGGED];
    const char *subs[] = {"RARE", "old.rare", "nomatch", "common"};
    const int64_t start = T - 3 * DAY_MS;
    const int64_t edges[][2] = {{0, 0},
                                {start + 600 * 10000, 0},
                                {start + 300 * 10000 + 1, start + 2100 * 10000},
                                {start + 900 * 10000, start + 900 * 10000 + 60000}};
    struct sql_stmt *s;
    char got[1024], want[1024];
    long long nulls;

    /* 24,000 rows 10 s apart (2.8 days); among the oldest 3,000 a rare host every 300th and
     * 450th row, one only in the first three. */
    for (size_t i = 0; i < RARE_LOGGED; i++) {
        const char *host = i < 3000 && i % 300 == 7    ? "rare1.test"
                           : i < 3000 && i % 450 == 11 ? "rare2.example"
                           : i < 3                     ? "old.rare.test"
                                                       : "common.test";

        w[i].id = (int64_t)i + 1;
        w[i].time_ms = start + (int64_t)i * 10000;
        snprintf(w[i].host, sizeof(w[i].host), "%s", host);
        w[i].client = i % 2 ? "10.0.0.2" : "10.0.0.1";
        r[i] = (struct row){
            w[i].time_ms - start, w[i].client, host, "/", STORE_ALLOW, 200, 1, 1, 0, NULL};
    }
    /* Three written late with old times, then two above the watermark (not rolled up). */
    for (size_t i = RARE_LOGGED; i < RARE_ROWS; i++) {
        w[i].id = (int64_t)i + 1;
        w[i].time_ms = start + (int64_t)(i - RARE_LOGGED) * 2 * 3600000 + 30000;
        snprintf(w[i].host, sizeof(w[i].host), "%s", "rare1.test");
        w[i].client = "10.0.0.2";
    }
    push_rows(r, RARE_LOGGED, start);
    /* Each rollup row of a rare host holds the smallest and largest id of its rows. */
    ck_assert_int_eq(test_db_int(&tmp, "SELECT count(*) FROM access_rollup r WHERE dim = 1"
                                       " AND key <> 'common.test' AND (min_id IS NULL OR"
                                       " min_id <> (SELECT min(id) FROM access_log l"
                                       " WHERE l.host = r.key AND l.time_ms >= r.bucket_ms"
                                       " AND l.time_ms < r.bucket_ms + r.level_ms) OR"
                                       " max_id <> (SELECT max(id) FROM access_log l"
                                       " WHERE l.host = r.key AND l.time_ms >= r.bucket_ms"
                                       " AND l.time_ms < r.bucket_ms + r.level_ms))"),
                     0);
    /* Every other minute's ranges as rows summed before step 50 left them (NULL: the whole
     * minute is read); the late rows' merges into them keep them NULL. */
    test_db_exec(&tmp, "UPDATE access_rollup SET min_id = NULL, max_id = NULL"
                       " WHERE level_ms = 60000 AND bucket_ms / 60000 % 2 = 0");
    nulls = test_db_int(&tmp, "SELECT count(*) FROM access_rollup WHERE min_id IS NULL");
    ck_assert_int_gt(nulls, 0);
    ck_assert_int_gt(test_db_int(&tmp, "SELECT count(*) FROM access_rollup"
                                       " WHERE level_ms = 60000 AND min_id IS NOT NULL"),
                     0);
    for (size_t i = RARE_LOGGED; i < RARE_LOGGED + 3; i++) {
        struct row late = {
            w[i].time_ms - start, w[i].client, w[i].host, "/", STORE_ALLOW, 200, 1, 1, 0, NULL};

        push_rows(&late, 1, start);
    }
    for (size_t i = RARE_LOGGED + 3; i < RARE_ROWS; i++) {
        ck_assert_int_eq(
            store_prepare(st,
                          "INSERT INTO access_log(time_ms, client, \"user\", method, scheme, host,"
                          " port, path, status, bytes_up, bytes_down, duration_ms, decision,"
                          " rule_id, error, policy_version, sni, dest, node) VALUES (?1, ?2, '',"
                          " 'GET', 'http', ?3, 80, '/', 200, 1, 1, 0, 0, 0, '', 0, '', '', '')",
                          &s, err, sizeof(err)),
            0);
        sql_bind_int64(s, 1, w[i].time_ms);
        sql_bind_text(s, 2, w[i].client);
        sql_bind_text(s, 3, w[i].host);
        ck_assert_int_eq(sql_step(s), SQL_DONE);
        sql_finalize(s);
    }
    ck_assert_int_eq(store_rollup_watermark(st, err, sizeof(err)), RARE_LOGGED + 3);
    ck_assert_int_eq(test_db_int(&tmp, "SELECT count(*) FROM access_rollup WHERE min_id IS NULL"),
                     nulls);
    for (size_t u = 0; u < sizeof(subs) / sizeof(subs[0]); u++) {
        for (size_t e = 0; e < sizeof(edges) / sizeof(edges[0]); e++) {
            for (size_t c = 0; c < (e == 0 ? 2 : 1); c++) { /* a client: in all the rows */
                struct store_log_filter f = {.host_like = subs[u],
                                             .since_ms = edges[e][0],
                                             .until_ms = edges[e][1],
                                             .client = c ? "10.0.0.2" : NULL,
                                             .decision = -1};
                const char *last;

                rare_ref(w, subs[u], f.since_ms, f.until_ms, f.client, 0, 100, want, sizeof(want));
                search_ids(&f, got, sizeof(got));
                ck_assert_msg(strcmp(got, want) == 0,
                              "%s window %zu client %zu: got '%s' want '%s'", subs[u], e, c, got,
                              want);
                /* Pages of 10: page 2 below page 1's last id. */
                f.limit = 10;
                rare_ref(w, subs[u], f.since_ms, f.until_ms, f.client, 0, 10, want, sizeof(want));
                search_ids(&f, got, sizeof(got));
                ck_assert_msg(strcmp(got, want) == 0,
                              "page 1 %s window %zu client %zu: got '%s' want '%s'", subs[u], e, c,
                              got, want);
                if (!(last = strrchr(got, ',')))
                    continue;
                f.before_id = strtoll(last + 1, NULL, 10);
                rare_ref(w, subs[u], f.since_ms, f.until_ms, f.client, f.before_id, 10, want,
                         sizeof(want));
                search_ids(&f, got, sizeof(got));
                ck_assert_msg(strcmp(got, want) == 0,
                              "page 2 %s window %zu client %zu: got '%s' want '%s'", subs[u], e, c,
                              got, want);
            }
        }
    }
}
END_TEST

START_TEST(test_search_returns_every_field)
{
    struct store_log_filter f = {.decision = -1, .limit = 1, .after_id = 2};
    struct store_log_row *r;
    size_t n;

    push_rows(rows, sizeof(rows) / sizeof(rows[0]), T);
    ck_assert_int_eq(store_log_search(st, &f, &r, &n, err, sizeof(err)), 0);
    ck_assert_uint_eq(n, 1);
    ck_assert_int_eq(r[0].id, 3);
    ck_assert_int_eq(r[0].a.time_ms, T + 2000);
    ck_assert_str_eq(r[0].a.client, "10.0.0.2");
    ck_assert_str_eq(r[0].a.host, "ads.test");
    ck_assert_str_eq(r[0].a.path, "/banner");
    ck_assert_str_eq(r[0].a.method, "GET");
    ck_assert_int_eq(r[0].a.decision, STORE_DENY);
    ck_assert_int_eq(r[0].a.status, 403);
    ck_assert_int_eq(r[0].a.rule_id, 5);
    ck_assert_int_eq(r[0].a.port, 80);
    free(r);
}
END_TEST

START_TEST(test_top_hosts_clients_blocked)
{
    const struct {
        enum store_top_kind kind;
        int64_t since;
        const char *want; /* key:requests:bytes,... */
    } cases[] = {
        {STORE_TOP_HOSTS, 0, "ads.test:2:0,www.test:2:57,a%b_c.test:1:110,axbyc.test:1:220"},
        {STORE_TOP_CLIENTS, 0, "10.0.0.1:3:332,10.0.0.2:2:0,10.0.0.3:1:55"},
        {STORE_TOP_BLOCKED, 0, "ads.test:2:0"},
        {STORE_TOP_HOSTS, T + 60000, "www.test:2:57,ads.test:1:0"},
        {STORE_TOP_BLOCKED, T + 62000, ""},
        {STORE_TOP_BLOCKED_CLIENTS, 0, "10.0.0.2:2:0"},
    };
    struct store_top_row *r;
    size_t n;
    char got[2048];

    push_rows(rows, sizeof(rows) / sizeof(rows[0]), T);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        ck_assert_int_eq(
            store_top(st, cases[i].kind, cases[i].since, 0, NULL, 10, &r, &n, err, sizeof(err)), 0);
        got[0] = '\0';
        for (size_t k = 0; k < n; k++)
            snprintf(got + strlen(got), sizeof(got) - strlen(got), "%s%s:%lld:%lld", k ? "," : "",
                     r[k].key, (long long)r[k].requests, (long long)r[k].bytes);
        free(r);
        ck_assert_msg(strcmp(got, cases[i].want) == 0, "case %zu: got '%s'", i, got);
    }
    ck_assert_int_eq(store_top(st, STORE_TOP_HOSTS, 0, 0, NULL, 1, &r, &n, err, sizeof(err)), 0);
    ck_assert_uint_eq(n, 1);
    free(r);
}
END_TEST

/* Who asked for one host: per client and per user, with blocked counts and first/last. */
START_TEST(test_host_visitors_by_client_and_user)
{
    static const struct row more[] = {
        {3000, "10.0.0.3", "ads.test", "/ok", STORE_ALLOW, 200, 0, 0, 0, NULL},
        {4000, "10.0.0.2", "ads.test", "/b", STORE_DENY, 403, 0, 0, 5, NULL},
        {5000, "10.0.0.4", "other.test", "/", STORE_ALLOW, 200, 0, 0, 0, NULL},
    };
    struct store_visitor *v;
    size_t n;

    push_rows(rows, sizeof(rows) / sizeof(rows[0]), T);
    push_rows(more, sizeof(more) / sizeof(more[0]), T);
    ck_assert_int_eq(store_host_visitors(st, "ads.test", NULL, STORE_VISITORS_CLIENT, 0, 0, 10, &v,
                                         &n, err, sizeof(err)),
                     0);
    ck_assert_uint_eq(n, 2);
    ck_assert_str_eq(v[0].key, "10.0.0.2");
    ck_assert_int_eq(v[0].requests, 3);
    ck_assert_int_eq(v[0].blocked, 3);
    ck_assert_int_eq(v[0].first_ms, T + 2000);
    ck_assert_int_eq(v[0].last_ms, T + 61000);
    ck_assert_str_eq(v[1].key, "10.0.0.3");
    ck_assert_int_eq(v[1].blocked, 0);
    free(v);
    /* The range bounds the rows: from T + 3000 on, 10.0.0.2 has two, 10.0.0.3 one. */
    ck_assert_int_eq(store_host_visitors(st, "ads.test", NULL, STORE_VISITORS_CLIENT, T + 3000, 0,
                                         1, &v, &n, err, sizeof(err)),
                     0);
    ck_assert_uint_eq(n, 1);
    ck_assert_int_eq(v[0].requests, 2);
    ck_assert_int_eq(v[0].first_ms, T + 4000);
    free(v);
    /* No user on these rows: one group, the empty name. */
    ck_assert_int_eq(store_host_visitors(st, "ads.test", NULL, STORE_VISITORS_USER, 0, 0, 10, &v,
                                         &n, err, sizeof(err)),
                     0);
    ck_assert_uint_eq(n, 1);
    ck_assert_str_eq(v[0].key, "");
    ck_assert_int_eq(v[0].requests, 4);
    free(v);
    ck_assert_int_eq(store_host_visitors(st, "none.test", NULL, STORE_VISITORS_USER, 0, 0, 10, &v,
                                         &n, err, sizeof(err)),
                     0);
    ck_assert_uint_eq(n, 0);
    free(v);
}
END_TEST

#define EDGE_ROWS 120

/* The totals' distinct hosts and clients read the partial hours at a range's edges by probing
 * only the keys that hour holds and the whole hours did not (store_rollup_keys): the same
 * counts as a scan, with keys only in an edge's whole minutes, in its partial minutes, in the
 * edge hour but outside the range, above the watermark, and more keys than it probes. */
START_TEST(test_totals_distinct_keys_at_the_edges)
{
    static struct row r[EDGE_ROWS];
    static char hosts[EDGE_ROWS][32], clients[EDGE_ROWS][32];
    static int64_t t[EDGE_ROWS + 1];
    const int64_t H = 3600000, h1 = (T - 4 * H) / H * H;
    struct store_totals tot;
    struct sql_stmt *s;
    size_t n = 0;

#define EDGE_ROW(dt, host, client)                                                                 \
    do {                                                                                           \
        t[n] = (dt);                                                                               \
        snprintf(hosts[n], sizeof(hosts[n]), "%s", (host));                                        \
        snprintf(clients[n], sizeof(clients[n]), "%s", (client));                                  \
        n++;                                                                                       \
    } while (0)
    for (int i = 0; i < 36; i++) /* every 5 minutes for 3 hours, from h1 - 1 h */
        EDGE_ROW(-H + i * 300000, "core.test", "10.0.0.1");
    EDGE_ROW(-50 * 60000, "hourmate.test", "10.0.1.1");     /* start hour, before the ranges */
    EDGE_ROW(-30 * 60000, "e1.test", "10.0.1.2");           /* start edge, a whole minute */
    EDGE_ROW(-45 * 60000 + 40000, "e2.test", "10.0.1.3");   /* start edge, a partial minute */
    EDGE_ROW(-45 * 60000 + 10000, "out.test", "10.0.1.4");  /* just before the ranges */
    EDGE_ROW(2 * H + 10 * 60000, "e3.test", "10.0.1.5");    /* end edge, a whole minute */
    EDGE_ROW(2 * H + 40 * 60000, "after.test", "10.0.1.6"); /* end hour, after the ranges */
    for (int i = 0; i < 70; i++) /* more than one edge probes: 70 new hosts, one client */
        EDGE_ROW(2 * H + 5 * 60000 + i, "m", "10.0.1.7");
    for (size_t i = n - 70; i < n; i++)
        snprintf(hosts[i], sizeof(hosts[i]), "m%zu.test", i);
    for (size_t i = 0; i < n; i++)
        r[i] = (struct row){t[i], clients[i], hosts[i], "/", STORE_ALLOW, 200, 1, 1, 0, NULL};
    push_rows(r, n, h1);
    /* Above the watermark: a host and a client only there, in the end edge. */
    ck_assert_int_eq(
        store_prepare(st,
                      "INSERT INTO access_log(time_ms, client, \"user\", method, scheme, host,"
                      " port, path, status, bytes_up, bytes_down, duration_ms, decision,"
                      " rule_id, error, policy_version, sni, dest, node) VALUES (?1, '10.0.1.8',"
                      " '', 'GET', 'http', 'late.test', 80, '/', 200, 1, 1, 0, 0, 0, '', 0, '',"
                      " '', '')",
                      &s, err, sizeof(err)),
        0);
    t[n] = 2 * H + 12 * 60000;
    sql_bind_int64(s, 1, h1 + t[n]);
    ck_assert_int_eq(sql_step(s), SQL_DONE);
    sql_finalize(s);
    snprintf(hosts[n], sizeof(hosts[n]), "late.test");
    snprintf(clients[n], sizeof(clients[n]), "10.0.1.8");
    n++;
    {
        /* [since, until) relative to h1: edges inside hours, on hours, one hour only. */
        const int64_t ranges[][2] = {{-45 * 60000 + 30000, 2 * H + 15 * 60000 + 1},
                                     {-45 * 60000 + 30000, 2 * H + 6 * 60000},
                                     {-31 * 60000, 2 * H + 11 * 60000},
                                     {0, 2 * H},
                                     {-H, 3 * H},
                                     {2 * H + 60000, 2 * H + 13 * 60000}};

        for (size_t g = 0; g < sizeof(ranges) / sizeof(ranges[0]); g++) {
            int64_t want_hosts = 0, want_clients = 0;

            for (size_t i = 0; i < n; i++) {
                bool in = t[i] >= ranges[g][0] && t[i] < ranges[g][1], first_h = in, first_c = in;

                for (size_t j = 0; in && j < i; j++) {
                    if (t[j] >= ranges[g][0] && t[j] < ranges[g][1]) {
                        first_h = first_h && strcmp(hosts[j], hosts[i]) != 0;
                        first_c = first_c && strcmp(clients[j], clients[i]) != 0;
                    }
                }
                want_hosts += first_h;
                want_clients += first_c;
            }
            ck_assert_int_eq(store_totals(st, h1 + ranges[g][0], h1 + ranges[g][1], NULL, &tot, err,
                                          sizeof(err)),
                             0);
            ck_assert_msg(tot.hosts == want_hosts && tot.clients == want_clients,
                          "range %zu: hosts %lld want %lld, clients %lld want %lld", g,
                          (long long)tot.hosts, (long long)want_hosts, (long long)tot.clients,
                          (long long)want_clients);
        }
    }
#undef EDGE_ROW
}
END_TEST

/* The visitors' reference, a scan of w[0..n) (rows with id below from_id gone): rows of host
 * in [since, until) (0: open) of node (NULL: any), per client or user, most first, ties by key
 * (bytes), at most limit, as "key:requests:blocked:first:last". */
struct visit_row {
    int64_t id, time_ms;
    const char *client, *user, *node;
    bool host, deny;
};

static void visitors_ref(const struct visit_row *w, size_t n, int64_t from_id, int64_t since,
                         int64_t until, const char *node, enum store_visitors_by by, size_t limit,
                         char *out, size_t size)
{
    struct visit_sum {
        const char *key;
        int64_t requests, blocked, first, last;
    } k[16], swap;
    size_t nk = 0;

    for (size_t i = 0; i < n; i++) {
        const char *key = by == STORE_VISITORS_CLIENT ? w[i].client : w[i].user;
        size_t j;

        if (!w[i].host || w[i].id < from_id || (since > 0 && w[i].time_ms < since) ||
            (until > 0 && w[i].time_ms >= until) || (node && strcmp(node, w[i].node)))
            continue;
        for (j = 0; j < nk && strcmp(k[j].key, key); j++)
            ;
        if (j == nk) {
            ck_assert_uint_lt(nk, 16);
            k[nk++] = (struct visit_sum){key, 0, 0, INT64_MAX, INT64_MIN};
        }
        k[j].requests++;
        k[j].blocked += w[i].deny;
        k[j].first = w[i].time_ms < k[j].first ? w[i].time_ms : k[j].first;
        k[j].last = w[i].time_ms > k[j].last ? w[i].time_ms : k[j].last;
    }
    for (size_t a = 0; a < nk; a++)
        for (size_t b = a + 1; b < nk; b++)
            if (k[b].requests > k[a].requests ||
                (k[b].requests == k[a].requests && strcmp(k[b].key, k[a].key) < 0)) {
                swap = k[a];
                k[a] = k[b];
                k[b] = swap;
            }
    out[0] = '\0';
    for (size_t a = 0; a < nk && a < limit; a++)
        snprintf(out + strlen(out), size - strlen(out), "%s%s:%lld:%lld:%lld:%lld", a ? "," : "",
                 k[a].key, (long long)k[a].requests, (long long)k[a].blocked, (long long)k[a].first,
                 (long long)k[a].last);
}

static void visitors_got(const char *node, enum store_visitors_by by, int64_t since, int64_t until,
                         size_t limit, char *out, size_t size)
{
    struct store_visitor *v;
    size_t n;

    ck_assert_int_eq(
        store_host_visitors(st, "v.test", node, by, since, until, limit, &v, &n, err, sizeof(err)),
        0);
    out[0] = '\0';
    for (size_t a = 0; a < n; a++)
        snprintf(out + strlen(out), size - strlen(out), "%s%s:%lld:%lld:%lld:%lld", a ? "," : "",
                 v[a].key, (long long)v[a].requests, (long long)v[a].blocked,
                 (long long)v[a].first_ms, (long long)v[a].last_ms);
    free(v);
}

#define VISIT_LOGGED 3000
#define VISIT_ROWS (VISIT_LOGGED + 6)

/* Who visited a host is read from the writer's hourly visits for whole hours and from the rows
 * for the rest (store_query.c): the same as a scan of the rows, for ranges with and without
 * partial hours, per client and per user, of the fleet and of one node, with rows written out
 * of time order and rows above the watermark; and after retention took away part of an hour
 * (its visits' first and last times then come from the rows). */
START_TEST(test_host_visitors_against_a_scan)
{
    static const char *const clients[] = {"10.0.0.1", "10.0.0.2", "10.0.0.3", "10.0.0.10",
                                          "10.0.0.11"};
    static const char *const users[] = {"", "alice", "bob"};
    static struct visit_row w[VISIT_ROWS];
    static struct row r[VISIT_ROWS];
    const int64_t start = T - 6 * 3600000 + 17000; /* not on an hour */
    const int64_t H = 3600000, h0 = (start / H + 1) * H;
    const int64_t ranges[][2] = {{0, 0},
                                 {h0, h0 + 3 * H},
                                 {h0 - 1, h0 + 2 * H + 1},
                                 {start + 1000, 0},
                                 {h0 + 600000, h0 + 1200000},
                                 {h0 + H - 5000, h0 + 4 * H + 7000},
                                 {T + DAY_MS, 0}};
    const char *nodes[] = {NULL, "a", "b"};
    struct sql_stmt *s;
    char got[1024], want[1024];
    int64_t from_id = 1;

    /* 3,000 rows 6 s apart (5 h), a third of them of the host; the last 6 written late with old
     * times (3) and put in above the watermark (3). */
    for (size_t i = 0; i < VISIT_ROWS; i++) {
        bool late = i >= VISIT_LOGGED;

        w[i].id = (int64_t)i + 1;
        w[i].time_ms =
            late ? start + (int64_t)(i - VISIT_LOGGED) * 3700000 + 1234 : start + (int64_t)i * 6000;
        w[i].client = clients[(i * 7 + i / 100) % 5];
        w[i].user = users[(i / 3) % 3];
        w[i].node = late || (i / 1000) % 2 == 0 ? "a" : "b";
        w[i].host = late || i % 3 != 1;
        w[i].deny = i % 5 == 0;
        r[i] = (struct row){w[i].time_ms - start,
                            w[i].client,
                            w[i].host ? "v.test" : "o.test",
                            "/",
                            w[i].deny ? STORE_DENY : STORE_ALLOW,
                            w[i].deny ? 403 : 200,
                            1,
                            1,
                            0,
                            w[i].user};
    }
    /* One above the watermark in the hour retention leaves in part (below): read from the
     * rows there, and not again as a row the visits do not hold yet. */
    w[VISIT_ROWS - 1].time_ms = h0 + H - 1000;
    push_rows_of("a", r, 1000, start);
    push_rows_of("b", r + 1000, 1000, start);
    push_rows_of("a", r + 2000, 1003, start);
    for (size_t i = VISIT_LOGGED + 3; i < VISIT_ROWS; i++) {
        ck_assert_int_eq(
            store_prepare(st,
                          "INSERT INTO access_log(time_ms, client, \"user\", method, scheme, host,"
                          " port, path, status, bytes_up, bytes_down, duration_ms, decision,"
                          " rule_id, error, policy_version, sni, dest, node) VALUES (?1, ?2, ?3,"
                          " 'GET', 'http', 'v.test', 80, '/', 200, 1, 1, 0, ?4, 0, '', 0, '', '',"
                          " 'a')",
                          &s, err, sizeof(err)),
            0);
        sql_bind_int64(s, 1, w[i].time_ms);
        sql_bind_text(s, 2, w[i].client);
        sql_bind_text(s, 3, w[i].user);
        sql_bind_int64(s, 4, w[i].deny ? STORE_DENY : STORE_ALLOW);
        ck_assert_int_eq(sql_step(s), SQL_DONE);
        sql_finalize(s);
    }
    ck_assert_int_eq(store_rollup_watermark(st, err, sizeof(err)), VISIT_LOGGED + 3);
    ck_assert_int_gt(test_db_int(&tmp, "SELECT count(*) FROM access_visits"), 0);
    for (int round = 0; round < 2; round++) {
        for (size_t g = 0; g < sizeof(ranges) / sizeof(ranges[0]); g++) {
            for (size_t nd = 0; nd < 3; nd++) {
                for (int by = 0; by < STORE_VISITORS_COUNT; by++) {
                    size_t limit = g == 3 ? 2 : 10;

                    visitors_ref(w, VISIT_ROWS, from_id, ranges[g][0], ranges[g][1], nodes[nd],
                                 (enum store_visitors_by)by, limit, want, sizeof(want));
                    visitors_got(nodes[nd], (enum store_visitors_by)by, ranges[g][0], ranges[g][1],
                                 limit, got, sizeof(got));
                    ck_assert_msg(strcmp(got, want) == 0,
                                  "round %d range %zu node %s by %d: got '%s' want '%s'", round, g,
                                  nodes[nd] ? nodes[nd] : "-", by, got, want);
                }
            }
        }
        /* Retention by rows takes the oldest 700 (into the second hour): the hour it leaves
         * in part has visits whose first and last times are no longer known. */
        while (store_retention_step(st, 0, VISIT_ROWS - 700, 100) > 0)
            ;
        from_id = test_db_int(&tmp, "SELECT min(id) FROM access_log");
        ck_assert_int_eq(from_id, 701);
        ck_assert_int_gt(
            test_db_int(&tmp, "SELECT count(*) FROM access_visits WHERE first_ms IS NULL"), 0);
    }
}
END_TEST

START_TEST(test_series_buckets_include_empty_ones)
{
    static const struct store_series_point want[] = {
        {0, 3, 1, 330},
        {MIN_MS, 2, 1, 55},
        {2 * MIN_MS, 1, 0, 2},
        {3 * MIN_MS, 0, 0, 0},
    };
    struct store_series_point *p;
    size_t n;

    push_rows(rows, sizeof(rows) / sizeof(rows[0]), T);
    ck_assert_int_eq(store_series(st, T, T + 4 * MIN_MS, NULL, MIN_MS, &p, &n, err, sizeof(err)),
                     0);
    ck_assert_uint_eq(n, 4);
    for (size_t i = 0; i < n; i++) {
        ck_assert_int_eq(p[i].bucket_ms, T + want[i].bucket_ms);
        ck_assert_int_eq(p[i].requests, want[i].requests);
        ck_assert_int_eq(p[i].blocked, want[i].blocked);
        ck_assert_int_eq(p[i].bytes, want[i].bytes);
    }
    free(p);
    /* Open bounds: from the oldest to the newest row. */
    ck_assert_int_eq(store_series(st, 0, 0, NULL, MIN_MS, &p, &n, err, sizeof(err)), 0);
    ck_assert_uint_eq(n, 3);
    free(p);
    ck_assert_int_eq(store_series(st, T, T + MIN_MS, NULL, 0, &p, &n, err, sizeof(err)), -1);
}
END_TEST

START_TEST(test_totals_count_requests_bytes_and_distinct)
{
    struct store_totals t;

    ck_assert_int_eq(store_totals(st, 0, 0, NULL, &t, err, sizeof(err)), 0);
    ck_assert_int_eq(t.requests, 0);
    push_rows(rows, sizeof(rows) / sizeof(rows[0]), T);
    ck_assert_int_eq(store_totals(st, 0, 0, NULL, &t, err, sizeof(err)), 0);
    ck_assert_int_eq(t.requests, 6);
    ck_assert_int_eq(t.blocked, 2);
    ck_assert_int_eq(t.bytes_up, 36);
    ck_assert_int_eq(t.bytes_down, 351);
    ck_assert_int_eq(t.clients, 3);
    ck_assert_int_eq(t.hosts, 4);
    ck_assert_int_eq(store_totals(st, T + 60000, T + 120000, NULL, &t, err, sizeof(err)), 0);
    ck_assert_int_eq(t.requests, 2);
    ck_assert_int_eq(t.clients, 2);
    ck_assert_int_eq(t.hosts, 2);
}
END_TEST

/* "key:requests:bytes,..." of a top list of node (NULL: all). */
static void top_text(enum store_top_kind kind, const char *node, char *got, size_t size)
{
    struct store_top_row *r;
    size_t n;

    ck_assert_msg(store_top(st, kind, 0, 0, node, 10, &r, &n, err, sizeof(err)) == 0, "%s", err);
    got[0] = '\0';
    for (size_t k = 0; k < n; k++)
        snprintf(got + strlen(got), size - strlen(got), "%s%s:%lld:%lld", k ? "," : "", r[k].key,
                 (long long)r[k].requests, (long long)r[k].bytes);
    free(r);
}

/* "requests:blocked:up:down:clients:hosts" of node (NULL: all) over the whole log. */
static void totals_text(const char *node, char *got, size_t size)
{
    struct store_totals t;

    ck_assert_msg(store_totals(st, 0, 0, node, &t, err, sizeof(err)) == 0, "%s", err);
    snprintf(got, size, "%lld:%lld:%lld:%lld:%lld:%lld", (long long)t.requests,
             (long long)t.blocked, (long long)t.bytes_up, (long long)t.bytes_down,
             (long long)t.clients, (long long)t.hosts);
}

/* "requests:blocked:bytes,..." per minute of node (NULL: all) over the rows' three minutes. */
static void series_text(const char *node, char *got, size_t size)
{
    struct store_series_point *p;
    size_t n;

    ck_assert_msg(store_series(st, T, T + 3 * MIN_MS, node, MIN_MS, &p, &n, err, sizeof(err)) == 0,
                  "%s", err);
    got[0] = '\0';
    for (size_t k = 0; k < n; k++)
        snprintf(got + strlen(got), size - strlen(got), "%s%lld:%lld:%lld", k ? "," : "",
                 (long long)p[k].requests, (long long)p[k].blocked, (long long)p[k].bytes);
    free(p);
}

/* Every figure of the dashboard for the fleet, for each node and for a node without rows. */
static void check_by_node(const char *want_all, const char *want_a, const char *want_b)
{
    static const char *const nodes[] = {NULL, "node-a", "node-b", "node-c"};
    const char *want[] = {want_all, want_a, want_b, "0:0:0:0:0:0"};
    char got[512];

    for (size_t i = 0; i < 4; i++) {
        totals_text(nodes[i], got, sizeof(got));
        ck_assert_msg(strcmp(got, want[i]) == 0, "totals of %s: got %s want %s",
                      nodes[i] ? nodes[i] : "all", got, want[i]);
    }
}

/* Issue 13: the dashboard and the top lists of one node or of the fleet, from the rollups
 * (keyed by node), the rows above their watermark, and after step 46 emptied them (an
 * upgrade): the writer then rebuilds them from the rows. A key two nodes saw counts once. */
START_TEST(test_top_series_totals_by_node)
{
    static const char want_all[] = "6:2:36:351:3:4", want_a[] = "3:1:30:300:2:3",
                      want_b[] = "3:1:6:51:3:2";
    char got[512], sql[512];

    push_rows_of("node-a", rows, 3, T);
    push_rows_of("node-b", rows + 3, 3, T);
    check_by_node(want_all, want_a, want_b);
    top_text(STORE_TOP_HOSTS, NULL, got, sizeof(got));
    ck_assert_str_eq(got, "ads.test:2:0,www.test:2:57,a%b_c.test:1:110,axbyc.test:1:220");
    top_text(STORE_TOP_HOSTS, "node-a", got, sizeof(got));
    ck_assert_str_eq(got, "a%b_c.test:1:110,ads.test:1:0,axbyc.test:1:220");
    top_text(STORE_TOP_HOSTS, "node-b", got, sizeof(got));
    ck_assert_str_eq(got, "www.test:2:57,ads.test:1:0");
    top_text(STORE_TOP_CLIENTS, "node-a", got, sizeof(got));
    ck_assert_str_eq(got, "10.0.0.1:2:330,10.0.0.2:1:0");
    top_text(STORE_TOP_BLOCKED_CLIENTS, "node-b", got, sizeof(got));
    ck_assert_str_eq(got, "10.0.0.2:1:0");
    top_text(STORE_TOP_BLOCKED, "node-c", got, sizeof(got));
    ck_assert_str_eq(got, "");
    series_text(NULL, got, sizeof(got));
    ck_assert_str_eq(got, "3:1:330,2:1:55,1:0:2");
    series_text("node-a", got, sizeof(got));
    ck_assert_str_eq(got, "3:1:330,0:0:0,0:0:0");
    series_text("node-b", got, sizeof(got));
    ck_assert_str_eq(got, "0:0:0,2:1:55,1:0:2");
    /* Who visited ads.test: one request on each node, both in the fleet's answer. */
    static const char *const nodes[] = {NULL, "node-a", "node-b", "node-c"};
    static const int64_t want_visits[] = {2, 1, 1, 0};
    for (size_t i = 0; i < 4; i++) {
        struct store_visitor *v;
        size_t n;
        int64_t visits = 0;
        ck_assert_int_eq(store_host_visitors(st, "ads.test", nodes[i], STORE_VISITORS_CLIENT, 0, 0,
                                             10, &v, &n, err, sizeof(err)),
                         0);
        for (size_t k = 0; k < n; k++)
            visits += v[k].requests;
        free(v);
        ck_assert_msg(visits == want_visits[i], "visitors of node %s: %lld",
                      nodes[i] ? nodes[i] : "(all)", (long long)visits);
    }
    /* A row the rollups do not hold yet (its writer's sums lost): counted raw, for its node. */
    snprintf(sql, sizeof(sql),
             "INSERT INTO access_log(time_ms, client, host, decision, bytes_up, bytes_down, node)"
             " VALUES (%lld, '10.0.0.9', 'raw.test', 0, 1, 2, 'node-b')",
             (long long)(T + 130000));
    test_db_exec(&tmp, sql);
    check_by_node("7:2:37:353:4:5", want_a, "4:1:7:53:4:3");
    series_text("node-b", got, sizeof(got));
    ck_assert_str_eq(got, "0:0:0,2:1:55,2:0:5");
    /* An upgrade to step 49 (a database as a proxyd from before it left it: the rollups and
     * their watermark, no visits): the rollups empty, the watermark 0, every figure still
     * exact. */
    test_db_exec(&tmp, "DROP TABLE access_visits");
    test_db_exec(&tmp, "ALTER TABLE access_rollup_watermark RENAME TO access_rollup_state");
    /* (step 50's columns stay: they are not what this upgrade is about) */
    test_db_exec(&tmp, "DELETE FROM schema_steps WHERE version IN (49, 51)");
    store_close(st);
    st = store_open(tmp.db, err, sizeof(err));
    ck_assert_msg(st != NULL, "%s", err);
    ck_assert_int_eq(test_db_int(&tmp, "SELECT count(*) FROM access_rollup"), 0);
    ck_assert_int_eq(test_db_int(&tmp, "SELECT rolled_id FROM access_rollup_watermark"), 0);
    check_by_node("7:2:37:353:4:5", want_a, "4:1:7:53:4:3");
    top_text(STORE_TOP_HOSTS, "node-b", got, sizeof(got));
    ck_assert_str_eq(got, "www.test:2:57,ads.test:1:0,raw.test:1:3");
    /* The next writer rolls every node's rows up again, each under its own node. */
    push_rows_of("node-a", rows, 1, T + 3 * MIN_MS);
    ck_assert_int_eq(test_db_int(&tmp, "SELECT rolled_id FROM access_rollup_watermark"),
                     test_db_int(&tmp, "SELECT max(id) FROM access_log"));
    ck_assert_int_eq(test_db_int(&tmp,
                                 "SELECT sum(requests) FROM access_rollup"
                                 " WHERE level_ms = 86400000 AND dim = 0 AND node = 'node-b'"),
                     4);
    ck_assert_int_eq(test_db_int(&tmp,
                                 "SELECT sum(requests) FROM access_rollup"
                                 " WHERE level_ms = 86400000 AND dim = 0 AND node = 'node-a'"),
                     4);
    check_by_node("8:2:47:453:4:5", "4:1:40:400:2:3", "4:1:7:53:4:3");
    top_text(STORE_TOP_HOSTS, "node-b", got, sizeof(got));
    ck_assert_str_eq(got, "www.test:2:57,ads.test:1:0,raw.test:1:3");
    /* ... and the visits of every row, the older ones too. */
    ck_assert_int_eq(test_db_int(&tmp, "SELECT sum(requests) FROM access_visits"),
                     test_db_int(&tmp, "SELECT count(*) FROM access_log"));
}
END_TEST

START_TEST(test_retention_by_rows_keeps_newest_and_hits)
{
    struct store_totals t;

    push_rows(rows, sizeof(rows) / sizeof(rows[0]), T);
    ck_assert_int_eq(hits_of(5), 2);
    ck_assert_int_eq(store_retention_step(st, 0, 4, 100), 2);
    ck_assert_int_eq(store_retention_step(st, 0, 4, 100), 0);
    ck_assert_int_eq(store_totals(st, 0, 0, NULL, &t, err, sizeof(err)), 0);
    ck_assert_int_eq(t.requests, 4);
    ck_assert_int_eq(hits_of(5), 2);
    /* A small batch deletes at most that many per step. */
    ck_assert_int_eq(store_retention_step(st, 0, 1, 2), 2);
    ck_assert_int_eq(hits_of(5), 0);
    ck_assert_int_eq(store_retention_step(st, 0, 1, 2), 1);
    ck_assert_int_eq(store_totals(st, 0, 0, NULL, &t, err, sizeof(err)), 0);
    ck_assert_int_eq(t.requests, 1);
}
END_TEST

START_TEST(test_retention_by_age_deletes_only_old_rows)
{
    static const struct row old[] = {
        {0, "10.0.0.9", "old.test", "/", STORE_DENY, 403, 0, 0, 5, NULL},
        {1, "10.0.0.9", "old.test", "/", STORE_DENY, 403, 0, 0, 5, NULL},
        {2, "10.0.0.9", "old.test", "/", STORE_DENY, 403, 0, 0, 5, NULL},
    };
    struct store_totals t;

    char sql[160];

    push_rows(old, 3, T - 10 * DAY_MS);
    push_rows(rows, sizeof(rows) / sizeof(rows[0]), T);
    ck_assert_int_eq(hits_of(5), 5);
    /* The old rows' minute in the minutes' id ranges until its rows are gone, then not. */
    snprintf(sql, sizeof(sql), "SELECT count(*) FROM access_log_minutes WHERE minute_ms < %lld",
             (long long)(T - DAY_MS));
    ck_assert_int_eq(test_db_int(&tmp, sql), 1);
    int64_t minutes = test_db_int(&tmp, "SELECT count(*) FROM access_log_minutes");
    ck_assert_int_eq(store_retention_step(st, 7, 0, 2), 2);
    ck_assert_int_eq(test_db_int(&tmp, sql), 1); /* one of its rows is left */
    ck_assert_int_eq(store_retention_step(st, 7, 0, 2), 1);
    ck_assert_int_eq(test_db_int(&tmp, sql), 0);
    ck_assert_int_eq(test_db_int(&tmp, "SELECT count(*) FROM access_log_minutes"), minutes - 1);
    ck_assert_int_eq(store_retention_step(st, 7, 0, 2), 0);
    ck_assert_int_eq(hits_of(5), 2);
    ck_assert_int_eq(store_totals(st, 0, 0, NULL, &t, err, sizeof(err)), 0);
    ck_assert_int_eq(t.requests, 6);
    ck_assert_int_eq(store_retention_step(st, 0, 0, 100), 0); /* nothing configured */
}
END_TEST

START_TEST(test_retention_by_age_drops_whole_days)
{
    /* Two days ten and nine days ago (whole UTC days), rule 5 denying every row. */
    int64_t d0 = (T - 10 * DAY_MS) / DAY_MS * DAY_MS, d1 = d0 + DAY_MS;
    static const struct row old[] = {
        {3600000, "10.0.0.9", "old.test", "/", STORE_DENY, 403, 0, 0, 5, NULL},
        {7200000, "10.0.0.9", "old.test", "/", STORE_DENY, 403, 0, 0, 5, NULL},
        {7260000, "10.0.0.8", "older.test", "/", STORE_DENY, 403, 0, 0, 5, NULL},
    };
    struct store_totals t;
    char ids[128];

    /* The first day's rows come before its table (PostgreSQL keeps them in the default one
     * until then), the second day's after. */
    push_rows(old, 3, d0);
    ck_assert_int_eq(store_log_days_ensure(st, d0, d1 + 1, err, sizeof(err)), test_pg() ? 2 : 0);
    ck_assert_int_eq(store_log_days_ensure(st, d0, d1, err, sizeof(err)), 0); /* made already */
    push_rows(old, 2, d1);
    push_rows(rows, sizeof(rows) / sizeof(rows[0]), T);
    ck_assert_int_eq(hits_of(5), 7);
    if (test_pg()) {
        ck_assert_int_eq(
            test_db_int(&tmp, "SELECT count(*) FROM access_log_default WHERE host LIKE 'old%'"), 0);
        /* A day's table goes whole, bigger than the batch; then the next day's. */
        ck_assert_int_eq(store_retention_step(st, 7, 0, 2), 3);
        ck_assert_int_eq(store_totals(st, 0, 0, NULL, &t, err, sizeof(err)), 0);
        ck_assert_int_eq(t.requests, 8);
        ck_assert_int_eq(t.hosts, 5);
        ck_assert_int_eq(hits_of(5), 4);
        ck_assert_int_eq(store_retention_step(st, 7, 0, 2), 2);
    } else {
        ck_assert_int_eq(store_retention_step(st, 7, 0, 2), 2);
        ck_assert_int_eq(store_retention_step(st, 7, 0, 2), 2);
        ck_assert_int_eq(store_retention_step(st, 7, 0, 2), 1);
    }
    ck_assert_int_eq(store_retention_step(st, 7, 0, 2), 0);
    ck_assert_int_eq(hits_of(5), 2);
    ck_assert_int_eq(store_totals(st, 0, 0, NULL, &t, err, sizeof(err)), 0);
    ck_assert_int_eq(t.requests, 6);
    ck_assert_int_eq(t.blocked, 2);
    ck_assert_int_eq(t.hosts, 4);
    ck_assert_int_eq(store_totals(st, d0, d1 + DAY_MS, NULL, &t, err, sizeof(err)), 0);
    ck_assert_int_eq(t.requests, 0);
    /* Rows are found by id as before. */
    search_ids(&(struct store_log_filter){.decision = -1}, ids, sizeof(ids));
    ck_assert_str_eq(ids, "11,10,9,8,7,6");
    search_ids(&(struct store_log_filter){.decision = -1, .before_id = 8, .limit = 1}, ids,
               sizeof(ids));
    ck_assert_str_eq(ids, "7");
    if (test_pg())
        ck_assert_int_eq(test_db_int(&tmp, "SELECT count(*) FROM pg_inherits"
                                           " WHERE inhparent = CAST('access_log' AS regclass)"),
                         3); /* the default, today's, tomorrow's */
}
END_TEST

/* PostgreSQL: dropping a day's table locks the whole log, so a reader holding it (a backup,
 * a long report) must not make the step wait: that wait held the log writers' lock and
 * queued every new reader behind it, and ended in a failed step (-1) after lock_timeout,
 * again every few seconds for as long as the reader ran. The day goes once it is free. */
START_TEST(test_day_drop_does_not_wait_for_a_reader)
{
    int64_t d0 = (T - 10 * DAY_MS) / DAY_MS * DAY_MS;
    static const struct row old[] = {
        {3600000, "10.0.0.9", "old.test", "/", STORE_DENY, 403, 0, 0, 5, NULL},
        {7200000, "10.0.0.9", "old.test", "/", STORE_DENY, 403, 0, 0, 5, NULL},
    };
    struct store_totals t;
    PGconn *reader;
    PGresult *r;

    if (!test_pg())
        return;
    ck_assert_int_eq(store_log_days_ensure(st, d0, d0, err, sizeof(err)), 1);
    push_rows(old, 2, d0);
    push_rows(rows, sizeof(rows) / sizeof(rows[0]), T);
    /* Another session reads the log and keeps its transaction open. */
    reader = PQconnectdb(tmp.db);
    ck_assert_msg(PQstatus(reader) == CONNECTION_OK, "%s", PQerrorMessage(reader));
    r = PQexec(reader, "BEGIN; SELECT count(*) FROM access_log");
    ck_assert_msg(PQresultStatus(r) == PGRES_TUPLES_OK, "%s", PQerrorMessage(reader));
    PQclear(r);
    /* Nothing dropped, no failure; the rows and their counts stay as they are. */
    ck_assert_int_eq(store_retention_step(st, 7, 0, 100), 0);
    ck_assert_int_eq(store_totals(st, 0, 0, NULL, &t, err, sizeof(err)), 0);
    ck_assert_int_eq(t.requests, 8);
    ck_assert_int_eq(hits_of(5), 4);
    /* The reader done, the day goes whole with its counts. */
    PQclear(PQexec(reader, "COMMIT"));
    PQfinish(reader);
    ck_assert_int_eq(store_retention_step(st, 7, 0, 100), 2);
    ck_assert_int_eq(store_totals(st, 0, 0, NULL, &t, err, sizeof(err)), 0);
    ck_assert_int_eq(t.requests, 6);
    ck_assert_int_eq(hits_of(5), 2);
}
END_TEST

/* PostgreSQL: attaching a day's table locks the default table exclusively, so a session
 * reading the log (a backup, a long report) must not make the writer wait for it: the wait
 * held the log writers' lock of every node for lock_timeout and then failed (-1), at every
 * try. The day is left for a later call, made once the reader is done. */
START_TEST(test_day_table_waits_for_no_reader)
{
    int64_t d0 = (T - 20 * DAY_MS) / DAY_MS * DAY_MS;
    PGconn *reader;
    PGresult *r;

    if (!test_pg())
        return;
    reader = PQconnectdb(tmp.db);
    ck_assert_msg(PQstatus(reader) == CONNECTION_OK, "%s", PQerrorMessage(reader));
    r = PQexec(reader, "BEGIN; SELECT count(*) FROM access_log");
    ck_assert_msg(PQresultStatus(r) == PGRES_TUPLES_OK, "%s", PQerrorMessage(reader));
    PQclear(r);
    ck_assert_msg(store_log_days_ensure(st, d0, d0, err, sizeof(err)) == 0, "%s", err);
    PQclear(PQexec(reader, "COMMIT"));
    PQfinish(reader);
    ck_assert_msg(store_log_days_ensure(st, d0, d0, err, sizeof(err)) == 1, "%s", err);
}
END_TEST

/* PostgreSQL: a log from before the days (migration 33) keeps its rows and ids; each day gets
 * its table, and new ids continue above every id the old table gave. */
START_TEST(test_old_log_moves_into_days)
{
    struct test_tmpdir old;
    struct store *o;
    char sql[512], ids[128];
    int64_t d0 = (T - 3 * DAY_MS) / DAY_MS * DAY_MS;
    static const struct row one[] = {
        {0, "10.0.0.1", "new.test", "/", STORE_ALLOW, 200, 1, 1, 0, NULL}};

    if (!test_pg())
        return;
    test_tmpdir_make(&old);
    /* The schema as it was at step 28 (every step to it recorded by the version). */
    for (size_t i = 0; i < store_migrations_count && store_migrations[i].version <= 28; i++) {
        const char *q = store_migrations[i].sql;

        for (size_t k = 0; k < store_migrations_pg_count; k++)
            if (store_migrations_pg[k].version == store_migrations[i].version)
                q = store_migrations_pg[k].sql;
        test_db_exec(&old, q);
    }
    test_db_exec(&old, "CREATE TABLE schema_version(version INTEGER NOT NULL);"
                       "INSERT INTO schema_version VALUES (28)");
    /* Ids 1-4 given, 4 deleted again: the new ids start at 5. One row before 1970. */
    snprintf(sql, sizeof(sql),
             "INSERT INTO access_log(time_ms, client, host) VALUES (%lld, '10.0.0.1', 'a.test'),"
             " (%lld, '10.0.0.1', 'b.test'), (-5, '10.0.0.1', 'c.test'),"
             " (%lld, '10.0.0.1', 'd.test'); DELETE FROM access_log WHERE id = 4",
             (long long)d0 + 5, (long long)(d0 + DAY_MS + 5), (long long)d0);
    test_db_exec(&old, sql);
    o = store_open(old.db, err, sizeof(err));
    ck_assert_msg(o != NULL, "%s", err);
    store_close(o);
    ck_assert_int_eq(test_db_int(&old, "SELECT count(*) FROM pg_inherits"
                                       " WHERE inhparent = CAST('access_log' AS regclass)"),
                     3);
    ck_assert_int_eq(test_db_int(&old, "SELECT count(*) FROM access_log_default"), 1);
    ck_assert_int_eq(test_db_int(&old, "SELECT count(*) FROM access_log"), 3);
    ck_assert_int_eq(test_db_int(&old, "SELECT id FROM access_log WHERE host = 'b.test'"), 2);
    /* Through the store, by id, with a new row (the writer also makes today's table). */
    snprintf(tmp.db, sizeof(tmp.db), "%s", old.db);
    push_rows(one, 1, T);
    o = store_open(old.db, err, sizeof(err));
    ck_assert_msg(o != NULL, "%s", err);
    store_close(st);
    st = o;
    search_ids(&(struct store_log_filter){.decision = -1}, ids, sizeof(ids));
    ck_assert_str_eq(ids, "5,3,2,1");
    ck_assert_int_eq(test_db_int(&old, "SELECT count(*) FROM pg_inherits"
                                       " WHERE inhparent = CAST('access_log' AS regclass)"),
                     5); /* and today's, tomorrow's */
    store_close(st);
    st = NULL;
    test_tmpdir_remove(&old);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("store_query");
    TCase *tc = tcase_create("query");
    SRunner *sr;
    int failed;

    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_search_filters_paging_and_follow);
    tcase_add_test(tc, test_search_returns_every_field);
    tcase_add_test(tc, test_search_windows);
    tcase_add_test(tc, test_search_rare_hosts);
    tcase_add_test(tc, test_top_hosts_clients_blocked);
    tcase_add_test(tc, test_host_visitors_by_client_and_user);
    tcase_add_test(tc, test_totals_distinct_keys_at_the_edges);
    tcase_add_test(tc, test_host_visitors_against_a_scan);
    tcase_add_test(tc, test_series_buckets_include_empty_ones);
    tcase_add_test(tc, test_totals_count_requests_bytes_and_distinct);
    tcase_add_test(tc, test_top_series_totals_by_node);
    tcase_add_test(tc, test_retention_by_rows_keeps_newest_and_hits);
    tcase_add_test(tc, test_retention_by_age_deletes_only_old_rows);
    tcase_add_test(tc, test_retention_by_age_drops_whole_days);
    tcase_add_test(tc, test_day_drop_does_not_wait_for_a_reader);
    tcase_add_test(tc, test_day_table_waits_for_no_reader);
    tcase_add_test(tc, test_old_log_moves_into_days);
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
