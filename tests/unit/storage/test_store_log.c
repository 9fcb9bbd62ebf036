/* test_store_log: the writer thread: batching, flush on stop, back-pressure, a locked or
 * removed database, and the Squid native-format lines.
 *
 * The writer runs in its own time: every wait polls for what it should bring about, bounded
 * by WAIT_S only as a guard against a hang (a loaded machine under sanitizers may take many
 * times longer than an idle one; no verdict here depends on how long anything took). */
#include <check.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "storage/store.h"
#include "storage/store_impl.h"
#include "tests/unit/common.h"

static struct test_tmpdir tmp;

static void setup(void)
{
    test_tmpdir_make(&tmp);
}

static void teardown(void)
{
    test_tmpdir_remove(&tmp);
}

static struct store_access record(int64_t time_ms, const char *host, int rule_id)
{
    struct store_access a;

    memset(&a, 0, sizeof(a));
    a.time_ms = time_ms;
    a.duration_ms = 45;
    a.status = 200;
    a.port = 80;
    a.bytes_down = 1234;
    a.rule_id = rule_id;
    snprintf(a.client, sizeof(a.client), "10.0.0.5");
    snprintf(a.method, sizeof(a.method), "GET");
    snprintf(a.scheme, sizeof(a.scheme), "http");
    snprintf(a.host, sizeof(a.host), "%s", host);
    snprintf(a.path, sizeof(a.path), "/");
    return a;
}

static int64_t count_rows(const char *path)
{
    char err[256] = "";
    struct store *st = store_open(path, err, sizeof(err));
    struct store_totals t;

    ck_assert_msg(st != NULL, "%s", err);
    ck_assert_msg(store_totals(st, 0, 0, NULL, &t, err, sizeof(err)) == 0, "%s", err);
    store_close(st);
    return t.requests;
}

static struct store_log *start(size_t producers, size_t capacity, int flush_ms, const char *squid)
{
    struct store_log_opts o = {
        .db_path = tmp.db,
        .producers = producers,
        .queue_capacity = capacity,
        .flush_interval_ms = flush_ms,
        .squid_log_path = squid,
    };
    char err[256] = "";
    struct store_log *log = store_log_start(&o, err, sizeof(err));

    ck_assert_msg(log != NULL, "%s", err);
    return log;
}

#define WAIT_S 30.0 /* a hang guard, not a deadline */

/* Polls the counters until pred holds (or WAIT_S passed: false). */
static bool wait_for(struct store_log *log,
                     bool (*pred)(const struct store_log_counters *, uint64_t), uint64_t arg,
                     struct store_log_counters *c)
{
    double deadline = test_now_s() + WAIT_S;

    for (;;) {
        store_log_counters(log, c);
        if (pred(c, arg))
            return true;
        if (test_now_s() >= deadline)
            return false;
        usleep(10000);
    }
}

/* Pushes one record once the writer has taken enough out of the queue that it has room:
 * a push that found the ring full would be a drop the test did not ask for. */
static void push_with_room(struct store_log *log, size_t capacity, const struct store_access *a)
{
    struct store_log_counters c;
    double deadline = test_now_s() + WAIT_S;

    for (store_log_counters(log, &c); c.pending >= capacity / 2; store_log_counters(log, &c)) {
        ck_assert_msg(test_now_s() < deadline, "the writer stopped draining: %llu pending",
                      (unsigned long long)c.pending);
        usleep(1000);
    }
    ck_assert(store_log_push(log, 0, a));
}

static bool written_at_least(const struct store_log_counters *c, uint64_t n)
{
    return c->written >= n;
}

static bool db_dropped_at_least(const struct store_log_counters *c, uint64_t n)
{
    return c->dropped_db_error >= n && !c->db_ok;
}

/* Writing again, and nothing left in the queue: the table holds c->written rows. */
static bool db_back(const struct store_log_counters *c, uint64_t n)
{
    return c->written >= n && c->db_ok && c->pending == 0;
}

/* Holds the write lock from another connection, as a long admin transaction would (on
 * PostgreSQL: the access log's table lock). */
struct db_lock {
    sqlite3 *db;
    PGconn *pg;
};

static struct db_lock lock_db(void)
{
    struct db_lock l = {0};

    if (test_pg()) {
        PGresult *r;

        l.pg = PQconnectdb(tmp.db);
        ck_assert_msg(PQstatus(l.pg) == CONNECTION_OK, "%s", PQerrorMessage(l.pg));
        r = PQexec(l.pg, "BEGIN; LOCK TABLE access_log IN ACCESS EXCLUSIVE MODE");
        ck_assert_msg(PQresultStatus(r) == PGRES_COMMAND_OK, "%s", PQerrorMessage(l.pg));
        PQclear(r);
        return l;
    }
    ck_assert_int_eq(sqlite3_open(tmp.db, &l.db), SQLITE_OK);
    ck_assert_int_eq(sqlite3_exec(l.db, "BEGIN EXCLUSIVE", NULL, NULL, NULL), SQLITE_OK);
    return l;
}

static void unlock_db(struct db_lock l)
{
    if (l.pg) {
        PGresult *r = PQexec(l.pg, "COMMIT");

        ck_assert_int_eq(PQresultStatus(r), PGRES_COMMAND_OK);
        PQclear(r);
        PQfinish(l.pg);
        return;
    }
    ck_assert_int_eq(sqlite3_exec(l.db, "COMMIT", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(l.db);
}

START_TEST(test_records_from_two_producers_are_all_committed)
{
    struct store_log *log = start(2, 16384, 20, NULL);
    struct store_log_counters c;
    const size_t n = 10000;

    for (size_t i = 0; i < n; i++) {
        struct store_access a = record(1700000000000 + (int64_t)i, "example.com", 0);

        ck_assert(store_log_push(log, i % 2, &a));
    }
    ck_assert(wait_for(log, written_at_least, n, &c));
    ck_assert_uint_eq(c.queued, n);
    ck_assert_uint_eq(c.pending, 0);
    ck_assert_uint_eq(c.dropped_queue_full, 0);
    ck_assert(c.db_ok);
    store_log_stop(log);
    ck_assert_int_eq(count_rows(tmp.db), (int64_t)n);
}
END_TEST

/* Every row carries the writer's node name, and the log search returns it. */
START_TEST(test_rows_carry_the_node_name)
{
    struct store_log_opts o = {
        .db_path = tmp.db, .producers = 1, .queue_capacity = 64, .node_name = "edge-7"};
    struct store_log_filter f;
    struct store_log_row *rows;
    char err[256] = "";
    size_t n;
    struct store_log *log = store_log_start(&o, err, sizeof(err));
    struct store *st;

    ck_assert_msg(log != NULL, "%s", err);
    for (int i = 0; i < 3; i++) {
        struct store_access a = record(1700000000000 + i, "example.com", 0);

        ck_assert(store_log_push(log, 0, &a));
    }
    store_log_stop(log);
    st = store_open(tmp.db, err, sizeof(err));
    ck_assert_msg(st != NULL, "%s", err);
    memset(&f, 0, sizeof(f));
    f.decision = -1;
    f.limit = 10;
    ck_assert_int_eq(store_log_search(st, &f, &rows, &n, err, sizeof(err)), 0);
    ck_assert_uint_eq(n, 3);
    for (size_t i = 0; i < n; i++)
        ck_assert_str_eq(rows[i].node, "edge-7");
    free(rows);
    store_close(st);
}
END_TEST

/* Rows go in several to a statement (and the rest one at a time): each field of each row
 * lands in its own row, whatever statement carried it. */
/* Row i's value for field f of test_every_field_of_every_row_is_stored: its own, or in some
 * fields of each 16 rows (a multi-row INSERT's chunk) the same in all 16, a different choice
 * of fields from chunk to chunk (SQLite binds a chunk's shared values once: more choices than
 * it keeps statements for). */
static int field_value(int i, int f)
{
    unsigned choice = (unsigned)(i / 16) * 2654435761u;

    return (choice >> (f + 3)) & 1 ? i : 1000 + i / 16;
}

START_TEST(test_every_field_of_every_row_is_stored)
{
    struct store_log_opts o = {
        .db_path = tmp.db, .producers = 1, .queue_capacity = 256, .node_name = "n1"};
    struct store_log_filter f;
    struct store_log_row *rows;
    char err[256] = "";
    size_t n;
    const int count = 197; /* runs of 64, 64, 64 and 5: several statements of each size */
    struct store_access *want = calloc((size_t)count, sizeof(*want));
    struct store_log *log = store_log_start(&o, err, sizeof(err));
    struct store *st;

    ck_assert_msg(log != NULL && want != NULL, "%s", err);
    for (int i = 0; i < count; i++) {
        struct store_access *a = &want[i];

        a->time_ms = 1700000000000 + i * 7;
        a->duration_ms = (uint32_t)field_value(i, 0) * 3;
        a->status = (uint16_t)(200 + field_value(i, 1));
        a->port = (uint16_t)(1000 + field_value(i, 2));
        a->bytes_up = (uint64_t)field_value(i, 3) * 11;
        a->bytes_down = (uint64_t)field_value(i, 4) * 13;
        a->rule_id = field_value(i, 5) % 5;
        a->decision = (uint8_t)(field_value(i, 6) % 4);
        a->policy_version = 40 + field_value(i, 7);
        snprintf(a->client, sizeof(a->client), "10.0.%d.%d", field_value(i, 8) / 250,
                 field_value(i, 8) % 250);
        snprintf(a->user, sizeof(a->user), "user%d", field_value(i, 9));
        snprintf(a->method, sizeof(a->method), "M%d", field_value(i, 10));
        snprintf(a->scheme, sizeof(a->scheme), "s%d", field_value(i, 11));
        snprintf(a->host, sizeof(a->host), "h%d.example", field_value(i, 12));
        snprintf(a->path, sizeof(a->path), "/p/%d", field_value(i, 13));
        snprintf(a->error, sizeof(a->error), "e%d", field_value(i, 14));
        snprintf(a->sni, sizeof(a->sni), "sni%d.example", field_value(i, 15));
        snprintf(a->dest, sizeof(a->dest), "192.0.2.%d:%d", field_value(i, 16) % 250,
                 443 + field_value(i, 16));
        ck_assert(store_log_push(log, 0, a));
    }
    store_log_stop(log); /* writes everything queued, in one batch */
    st = store_open(tmp.db, err, sizeof(err));
    ck_assert_msg(st != NULL, "%s", err);
    memset(&f, 0, sizeof(f));
    f.decision = -1;
    f.limit = 1000;
    ck_assert_int_eq(store_log_search(st, &f, &rows, &n, err, sizeof(err)), 0);
    ck_assert_uint_eq(n, (size_t)count);
    for (size_t k = 0; k < n; k++) {
        const struct store_access *got = &rows[k].a,
                                  *a = &want[count - 1 - (int)k]; /* newest first */

        ck_assert_int_eq(rows[k].id, count - (int64_t)k);
        ck_assert_int_eq(got->time_ms, a->time_ms);
        ck_assert_uint_eq(got->duration_ms, a->duration_ms);
        ck_assert_uint_eq(got->status, a->status);
        ck_assert_uint_eq(got->port, a->port);
        ck_assert_uint_eq(got->bytes_up, a->bytes_up);
        ck_assert_uint_eq(got->bytes_down, a->bytes_down);
        ck_assert_int_eq(got->rule_id, a->rule_id);
        ck_assert_uint_eq(got->decision, a->decision);
        ck_assert_int_eq(got->policy_version, a->policy_version);
        ck_assert_str_eq(got->client, a->client);
        ck_assert_str_eq(got->user, a->user);
        ck_assert_str_eq(got->method, a->method);
        ck_assert_str_eq(got->scheme, a->scheme);
        ck_assert_str_eq(got->host, a->host);
        ck_assert_str_eq(got->path, a->path);
        ck_assert_str_eq(got->error, a->error);
        ck_assert_str_eq(got->sni, a->sni);
        ck_assert_str_eq(got->dest, a->dest);
        ck_assert_str_eq(rows[k].node, "n1");
    }
    free(rows);
    free(want);
    store_close(st);
}
END_TEST

/* Fields come from the network: tabs, newlines and backslashes (COPY's own syntax on
 * PostgreSQL) come back as they went in, and so does UTF-8; a byte that is no UTF-8 comes
 * back as it went in on SQLite and as '?' on PostgreSQL (which refuses it, and would refuse
 * the whole batch with it). A field that fills its array without a NUL is cut there. */
START_TEST(test_awkward_bytes_come_back_as_logged)
{
    static const char path[] = "/a\tb\nc\\d\re \xc3\xa9 \xff\xfe end";
    struct store_log *log = start(1, 64, 20, NULL);
    struct store_log_counters c;
    struct store_log_filter f = {.decision = -1, .limit = 10};
    struct store_log_row *rows;
    struct store_access a = record(1700000000000, "example.com", 0);
    char err[256] = "";
    size_t n;
    struct store *st;

    snprintf(a.path, sizeof(a.path), "%s", path);
    memset(a.method, 'M', sizeof(a.method)); /* no NUL */
    ck_assert(store_log_push(log, 0, &a));
    ck_assert(wait_for(log, written_at_least, 1, &c));
    store_log_stop(log);
    st = store_open(tmp.db, err, sizeof(err));
    ck_assert_msg(st != NULL, "%s", err);
    ck_assert_int_eq(store_log_search(st, &f, &rows, &n, err, sizeof(err)), 0);
    ck_assert_uint_eq(n, 1);
    ck_assert_str_eq(rows[0].a.path, test_pg() ? "/a\tb\nc\\d\re \xc3\xa9 ?? end" : path);
    ck_assert_uint_eq(strlen(rows[0].a.method), sizeof(a.method) - 1); /* the row's array */
    free(rows);
    store_close(st);
}
END_TEST

START_TEST(test_stop_writes_everything_still_queued)
{
    /* A flush interval far longer than the test: only stop can write these. */
    struct store_log *log = start(1, 4096, 60000, NULL);

    for (int i = 0; i < 1000; i++) {
        struct store_access a = record(1700000000000 + i, "example.com", 0);

        ck_assert(store_log_push(log, 0, &a));
    }
    store_log_stop(log);
    ck_assert_int_eq(count_rows(tmp.db), 1000);
}
END_TEST

START_TEST(test_full_queue_push_fails_fast_and_counts_drops)
{
    struct store_log *log = start(1, 8, 60000, NULL);
    struct store_log_counters c;
    struct db_lock lock = lock_db();
    struct store_access a = record(1700000000000, "example.com", 0);
    uint64_t refused = 0;

    /* The writer, woken at half full, waits on the lock (its busy timeout) and drains
     * nothing meanwhile: the ring fills and pushes must be refused, not wait for room. A
     * push that waited would either never be refused (refused stays 0) or, waiting a while
     * before giving up, keep this loop of 100k pushes far past the test's timeout. */
    for (int i = 0; i < 100000; i++)
        if (!store_log_push(log, 0, &a))
            refused++;
    store_log_counters(log, &c);
    ck_assert_uint_gt(refused, 0);
    ck_assert_uint_eq(c.dropped_queue_full, refused);
    ck_assert_uint_eq(c.queued + refused, 100000);
    unlock_db(lock);
    store_log_stop(log);
}
END_TEST

START_TEST(test_locked_database_drops_batches_then_resumes)
{
    const size_t capacity = 1024;
    struct store_log *log = start(1, capacity, 20, NULL);
    struct store_log_counters c;
    struct db_lock lock = lock_db();
    struct store_access a = record(1700000000000, "example.com", 0);
    double deadline;

    for (int i = 0; i < 10; i++)
        ck_assert(store_log_push(log, 0, &a));
    ck_assert(wait_for(log, db_dropped_at_least, 10, &c));
    ck_assert_str_ne(c.last_error, "");
    /* Producers keep going while the database is away: the writer drains and drops, so
     * there is always room again (while it waits on the lock, for its busy timeout, the
     * ring holds; each push waits for room rather than count on the writer's pace). */
    for (int i = 0; i < 2000; i++)
        push_with_room(log, capacity, &a);
    ck_assert(wait_for(log, db_dropped_at_least, 2010, &c));
    ck_assert_uint_eq(c.written, 0);
    ck_assert_uint_eq(c.dropped_queue_full, 0);

    /* The writer retries once a second and drops what comes meanwhile: records keep
     * coming until one is written. */
    unlock_db(lock);
    deadline = test_now_s() + WAIT_S;
    for (store_log_counters(log, &c); !c.db_ok; store_log_counters(log, &c)) {
        ck_assert_msg(test_now_s() < deadline, "the writer never resumed: %s", c.last_error);
        push_with_room(log, capacity, &a);
        usleep(30000);
    }
    ck_assert(wait_for(log, db_back, 1, &c));
    store_log_stop(log);
    ck_assert_int_eq(count_rows(tmp.db), (int64_t)c.written);
}
END_TEST

static bool file_exists(const char *path)
{
    return access(path, F_OK) == 0;
}

START_TEST(test_removed_database_file_is_recreated)
{
    if (test_pg()) /* SQLite's own file: PostgreSQL has none to remove */
        return;
    struct store_log *log = start(1, 1024, 20, NULL);
    struct store_log_counters c;
    struct store_access a = record(1700000000000, "example.com", 0);
    int i;

    for (i = 0; i < 5; i++)
        ck_assert(store_log_push(log, 0, &a));
    ck_assert(wait_for(log, written_at_least, 5, &c));
    ck_assert_int_eq(unlink(tmp.db), 0);
    for (double deadline = test_now_s() + WAIT_S; !file_exists(tmp.db) && test_now_s() < deadline;)
        usleep(10000);
    ck_assert_msg(file_exists(tmp.db), "database not recreated");
    for (i = 0; i < 5; i++)
        ck_assert(store_log_push(log, 0, &a));
    ck_assert(wait_for(log, written_at_least, 10, &c));
    ck_assert(c.db_ok);
    store_log_stop(log);
    ck_assert_int_eq(count_rows(tmp.db), 5);
}
END_TEST

START_TEST(test_squid_lines_in_native_format)
{
    static const struct {
        const char *method, *scheme, *host, *path, *user, *error;
        uint16_t port, status;
        uint8_t decision;
        const char *line;
    } cases[] = {
        {"GET", "http", "example.com", "/", "", "", 80, 200, STORE_ALLOW,
         "1700000000.123     45 10.0.0.5 TCP_MISS/200 1234 GET http://example.com/ - "
         "HIER_DIRECT/example.com -"},
        {"GET", "http", "ads.test", "/x?a=1", "bob", "", 8080, 403, STORE_DENY,
         "1700000000.123     45 10.0.0.5 TCP_DENIED/403 1234 GET http://ads.test:8080/x?a=1 bob "
         "HIER_NONE/- -"},
        {"CONNECT", "https", "secure.test", "", "", "", 443, 200, STORE_ALLOW,
         "1700000000.123     45 10.0.0.5 TCP_TUNNEL/200 1234 CONNECT secure.test:443 - "
         "HIER_DIRECT/secure.test -"},
        {"GET", "http", "::1", "/a b", "", "connect-refused", 80, 502, STORE_ALLOW,
         "1700000000.123     45 10.0.0.5 TCP_MISS/502 1234 GET http://[::1]/a%20b - HIER_NONE/- -"},
    };
    const size_t n = sizeof(cases) / sizeof(cases[0]);
    char squid[160], line[512];
    struct store_log *log;
    FILE *f;
    size_t i;

    snprintf(squid, sizeof(squid), "%s/access.log", tmp.dir);
    log = start(1, 64, 20, squid);
    for (i = 0; i < n; i++) {
        struct store_access a = record(1700000000078, cases[i].host, 0);

        snprintf(a.method, sizeof(a.method), "%s", cases[i].method);
        snprintf(a.scheme, sizeof(a.scheme), "%s", cases[i].scheme);
        snprintf(a.path, sizeof(a.path), "%s", cases[i].path);
        snprintf(a.user, sizeof(a.user), "%s", cases[i].user);
        snprintf(a.error, sizeof(a.error), "%s", cases[i].error);
        a.port = cases[i].port;
        a.status = cases[i].status;
        a.decision = cases[i].decision;
        ck_assert(store_log_push(log, 0, &a));
    }
    store_log_stop(log);
    f = fopen(squid, "r");
    ck_assert_ptr_nonnull(f);
    for (i = 0; i < n; i++) {
        ck_assert_ptr_nonnull(fgets(line, sizeof(line), f));
        line[strcspn(line, "\n")] = '\0';
        ck_assert_str_eq(line, cases[i].line);
    }
    ck_assert_ptr_null(fgets(line, sizeof(line), f));
    fclose(f);
}
END_TEST

START_TEST(test_rule_hits_follow_logged_records)
{
    static const struct {
        int rule_id;
        int records;
    } cases[] = {{3, 5}, {8, 2}, {0, 7}};
    struct store_log *log = start(1, 1024, 20, NULL);
    char err[256] = "";
    struct store *st;
    struct store_rule *rules;
    size_t n;
    int id, ids[3] = {0};

    st = store_open(tmp.db, err, sizeof(err));
    ck_assert_msg(st != NULL, "%s", err);
    /* Rules get ids 1.. in order; add enough that 3 and 8 exist. */
    for (int i = 1; i <= 8; i++) {
        char text[32];

        snprintf(text, sizeof(text), "deny domain r%d.test", i);
        ck_assert_int_eq(store_rule_add(st, text, "", 0, "t", &id, err, sizeof(err)), 0);
    }
    for (size_t i = 0; i < 3; i++) {
        for (int k = 0; k < cases[i].records; k++) {
            struct store_access a = record(1700000000000, "x.test", cases[i].rule_id);

            ck_assert(store_log_push(log, 0, &a));
        }
        ids[i] = cases[i].rule_id;
    }
    store_log_stop(log);
    ck_assert_int_eq(store_rules_list(st, &rules, &n, err, sizeof(err)), 0);
    for (size_t r = 0; r < n; r++) {
        int64_t want = 0;

        for (size_t i = 0; i < 3; i++)
            if (ids[i] == rules[r].id)
                want = cases[i].records;
        ck_assert_int_eq(rules[r].hits, want);
    }
    store_rules_free(rules, n);
    store_close(st);
}
END_TEST

/* Polls the table until it holds at most n rows (or WAIT_S passed: false). */
static bool rows_down_to(int64_t n)
{
    for (double deadline = test_now_s() + WAIT_S;; usleep(10000)) {
        if (count_rows(tmp.db) <= n)
            return true;
        if (test_now_s() >= deadline)
            return false;
    }
}

START_TEST(test_retention_set_applies_to_a_running_writer)
{
    struct store_log *log = start(1, 4096, 20, NULL); /* started without retention */
    struct store_log_counters c;

    for (int i = 0; i < 10; i++) {
        struct store_access a = record(1700000000000 + i, "example.com", 0);

        ck_assert(store_log_push(log, 0, &a));
    }
    ck_assert(wait_for(log, written_at_least, 10, &c));
    ck_assert_int_eq(count_rows(tmp.db), 10);
    store_log_retention_set(log, 0, 3);
    ck_assert(rows_down_to(3));
    ck_assert_int_eq(count_rows(tmp.db), 3);
    store_log_retention_set(log, 1, 0); /* the rows are from 2023 */
    ck_assert(rows_down_to(0));
    store_log_stop(log);
}
END_TEST

/* A regex rule that could not decide is counted on that rule, apart from its hits: a deny
 * rule that denied at its limit has both, an allow rule that did not allow only this. */
START_TEST(test_undecided_rules_are_counted_per_rule)
{
    static const struct {
        int rule_id, undecided_rule_id, records;
    } cases[] = {{2, 2, 3}, {0, 1, 4}, {2, 0, 1}, {0, 0, 2}};
    struct store_log *log = start(1, 1024, 20, NULL);
    char err[256] = "";
    struct store_rule *rules;
    size_t n;
    int id;
    struct store *st = store_open(tmp.db, err, sizeof(err));

    ck_assert_msg(st != NULL, "%s", err);
    ck_assert_int_eq(
        store_rule_add(st, "allow url-regex (a+)+$", "", 0, "t", &id, err, sizeof(err)), 0);
    ck_assert_int_eq(id, 1);
    ck_assert_int_eq(store_rule_add(st, "deny url-regex (b+)+$", "", 0, "t", &id, err, sizeof(err)),
                     0);
    ck_assert_int_eq(id, 2);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        for (int k = 0; k < cases[i].records; k++) {
            struct store_access a = record(1700000000000, "x.test", cases[i].rule_id);
            a.undecided_rule_id = cases[i].undecided_rule_id;
            ck_assert(store_log_push(log, 0, &a));
        }
    }
    store_log_stop(log);
    ck_assert_int_eq(store_rules_list(st, &rules, &n, err, sizeof(err)), 0);
    ck_assert_uint_eq(n, 2);
    ck_assert_int_eq(rules[0].id, 1);
    ck_assert_int_eq(rules[0].hits, 0);
    ck_assert_int_eq(rules[0].undecided, 4);
    ck_assert_int_eq(rules[1].hits, 4);
    ck_assert_int_eq(rules[1].undecided, 3);
    store_rules_free(rules, n);
    /* Retention takes rows off the hits; the undecided count stays. */
    ck_assert_int_eq(store_retention_step(st, 1, 0, 100), 10);
    ck_assert_int_eq(store_rules_list(st, &rules, &n, err, sizeof(err)), 0);
    ck_assert_int_eq(rules[0].undecided, 4);
    ck_assert_int_eq(rules[1].hits, 0);
    ck_assert_int_eq(rules[1].undecided, 3);
    store_rules_free(rules, n);
    store_close(st);
}
END_TEST

START_TEST(test_bad_options_are_refused_with_message)
{
    struct store_log_opts o = {.db_path = NULL, .producers = 1};
    char err[256] = "";

    ck_assert_ptr_null(store_log_start(&o, err, sizeof(err)));
    ck_assert_str_ne(err, "");
    o.db_path = "/nonexistent-dir/x.db";
    err[0] = '\0';
    ck_assert_ptr_null(store_log_start(&o, err, sizeof(err)));
    ck_assert_msg(strstr(err, "/nonexistent-dir/x.db") != NULL, "%s", err);
}
END_TEST

/* One integer out of the database at path (both backends). */
static int64_t query_int(const char *path, const char *sql)
{
    char err[256] = "";
    struct store *st = store_open(path, err, sizeof(err));
    struct sql_stmt *s;
    int64_t v;

    ck_assert_msg(st != NULL, "%s", err);
    ck_assert_msg(store_prepare(st, sql, &s, err, sizeof(err)) == 0, "%s", err);
    ck_assert_int_eq(sql_step(s), SQL_ROW);
    v = sql_col_int64(s, 0);
    sql_finalize(s);
    store_close(st);
    return v;
}

/* The rollups hold exactly the rows at or below their watermark, each once, and the
 * dashboard's total (rollups plus the rows above it) equals the rows' count. */
static void check_rollups_exact(const char *when)
{
    int64_t rows = query_int(tmp.db, "SELECT count(*) FROM access_log");
    int64_t summed = query_int(tmp.db, "SELECT coalesce(sum(requests), 0) FROM access_rollup"
                                       " WHERE level_ms = 60000 AND dim = 0");
    int64_t below = query_int(tmp.db, "SELECT count(*) FROM access_log WHERE id <="
                                      " (SELECT rolled_id FROM access_rollup_watermark)");
    /* Each node's rows at or below the watermark, against its rollup rows. */
    int64_t nodes_off =
        query_int(tmp.db, "SELECT count(*) FROM (SELECT node, count(*) AS n FROM access_log"
                          " WHERE id <= (SELECT rolled_id FROM access_rollup_watermark)"
                          " GROUP BY node) r LEFT JOIN (SELECT node, sum(requests) AS s"
                          " FROM access_rollup WHERE level_ms = 60000 AND dim = 0"
                          " GROUP BY node) u ON u.node = r.node WHERE coalesce(u.s, 0) <> r.n");
    int64_t total = count_rows(tmp.db);

    ck_assert_msg(summed == below, "%s: the rollups hold %lld rows, the watermark covers %lld",
                  when, (long long)summed, (long long)below);
    ck_assert_msg(nodes_off == 0, "%s: the rollups of %lld nodes differ from their rows", when,
                  (long long)nodes_off);
    ck_assert_msg(total == rows, "%s: dashboard total %lld, rows %lld", when, (long long)total,
                  (long long)rows);
}

static struct store_log *start_node(const char *node)
{
    struct store_log_opts o = {.db_path = tmp.db,
                               .producers = 1,
                               .queue_capacity = 4096,
                               .flush_interval_ms = 5,
                               .node_name = node};
    char err[256] = "";
    struct store_log *log = store_log_start(&o, err, sizeof(err));

    ck_assert_msg(log != NULL, "%s", err);
    return log;
}

/* Pushes n rows into log, whose writer has written done before, and waits for them. */
static void write_burst(struct store_log *log, uint64_t done, size_t n, int64_t *t)
{
    struct store_log_counters c;

    for (size_t i = 0; i < n; i++) {
        struct store_access a = record((*t += 7), i % 3 ? "example.com" : "example.org", 0);

        ck_assert(store_log_push(log, 0, &a));
    }
    ck_assert(wait_for(log, written_at_least, done + n, &c));
}

/* Two nodes writing into one database (issue 13: a fleet on one PostgreSQL): their rows'
 * ids interleave batch by batch, and each writer sums its own rows in memory for a while
 * before applying them. The rollups must still count each row once: whichever node stops
 * first, and after a node starts again and rolls up what it finds above the watermark. */
START_TEST(test_two_nodes_keep_the_rollups_exact)
{
    /* A name with what an array literal quotes (PostgreSQL's rollups go in as arrays). */
    static const char node_a[] = "node \"a\"\\,{1} ";
    struct store_log *a = start_node(node_a), *b = start_node("node-b");
    int64_t t = 1700000000000;
    uint64_t done = 0;

    struct store_log_counters c;

    for (int round = 0; round < 6; round++, done += 150) {
        write_burst(a, done, 150, &t);
        write_burst(b, done, 150, &t);
    }
    /* And both at once: their batches may then meet in the database. */
    for (int i = 0; i < 2000; i++) {
        struct store_access r = record((t += 3), "example.net", 0);

        ck_assert(store_log_push(i % 2 ? a : b, 0, &r));
        if (i % 400 == 399)
            usleep(2000);
    }
    done += 1000;
    ck_assert(wait_for(a, written_at_least, done, &c));
    ck_assert(wait_for(b, written_at_least, done, &c));
    check_rollups_exact("both running");
    store_log_stop(b);
    check_rollups_exact("node-b stopped");
    store_log_stop(a);
    check_rollups_exact("both stopped");
    a = start_node(node_a);
    write_burst(a, 0, 40, &t);
    store_log_stop(a);
    check_rollups_exact("node-a restarted");
    ck_assert_int_eq(query_int(tmp.db, "SELECT count(*) FROM access_log"), 2 * 6 * 150 + 2040);
    ck_assert_int_eq(query_int(tmp.db, "SELECT sum(requests) FROM access_rollup WHERE dim = 0"
                                       " AND level_ms = 86400000 AND node = 'node \"a\"\\,{1} '"),
                     6 * 150 + 1040);
}
END_TEST

/* More (bucket, key) pairs than the writer sums in memory (32,768) within one flush
 * interval: the sums are applied in the middle of a batch (on PostgreSQL before the batch's
 * rows have been sent, so their ids are checked first). One node: with another one's rows in
 * between, a writer rolls up from the table instead (test_two_nodes_keep_the_rollups_exact). */
START_TEST(test_more_keys_than_the_sums_hold_stay_exact)
{
    struct store_log *a = start_node("node-a");
    int64_t t = 1700000000000;
    struct store_log_counters c;
    enum { ROWS = 24000 };

    for (int i = 0; i < ROWS; i++) {
        char host[32];
        struct store_access r;

        snprintf(host, sizeof(host), "h%d.example", i);
        r = record((t += 1), host, 0);
        push_with_room(a, 4096, &r);
    }
    ck_assert(wait_for(a, written_at_least, ROWS, &c));
    check_rollups_exact("running");
    store_log_stop(a);
    check_rollups_exact("stopped");
    ck_assert_int_eq(query_int(tmp.db, "SELECT count(*) FROM access_rollup"
                                       " WHERE dim = 1 AND level_ms = 86400000"),
                     query_int(tmp.db, "SELECT count(DISTINCT host) FROM access_log"));
}
END_TEST

/* A writer whose flush interval is longer than the test wakes when one of its queues is half
 * full (HALF records): the rows pushed until then are one batch. */
enum { HALF = 2048 };

/* Pushes n rows into queue ring of log: host and client distinct from row distinct_from on
 * (six (bucket, key) pairs a row), or (-1) all one. */
static void push_rows(struct store_log *log, size_t ring, int n, int64_t *t, int distinct_from)
{
    for (int i = 0; i < n; i++) {
        struct store_access r = record((*t += 1), "example.com", 0);

        if (distinct_from >= 0) {
            snprintf(r.host, sizeof(r.host), "h%d.example", distinct_from + i);
            snprintf(r.client, sizeof(r.client), "10.1.%d.%d", (distinct_from + i) / 250,
                     (distinct_from + i) % 250);
        }
        ck_assert(store_log_push(log, ring, &r));
    }
}

/* PostgreSQL sums a batch's rows before their ids are known. When the sums fill up in the
 * middle of a batch and the rows sent so far do not follow the writer's last (here: another
 * node's batch was undone, and PostgreSQL hands out no id twice), the sums are dropped and
 * the rows above the watermark rolled up from the table. Dropped with them are the rows of
 * earlier batches whose ids were checked but whose sums were not applied yet: the watermark
 * must not pass over those. */
START_TEST(test_sums_dropped_mid_batch_keep_the_watermark)
{
    struct store_log_opts o = {.db_path = tmp.db,
                               .producers = 3,
                               .queue_capacity = 2 * HALF,
                               .flush_interval_ms = 3600 * 1000,
                               .node_name = "node-a"};
    char err[256] = "";
    struct store_log *log = store_log_start(&o, err, sizeof(err));
    struct store_log_counters c;
    struct store *other;
    int64_t t = 1700000000000;
    uint64_t done = 0;

    ck_assert_msg(log != NULL, "%s", err);
    /* The first batch: rolled up from the table (a writer starts behind); the sums are due
     * ROLLUP_FLUSH_MS later. */
    push_rows(log, 0, HALF, &t, -1);
    ck_assert(wait_for(log, written_at_least, done += HALF, &c));
    /* A batch summed, not applied: the watermark below its rows. (A machine so slow that
     * the sums came due takes another round.) */
    for (int round = 0;; round++) {
        push_rows(log, 0, HALF, &t, -1);
        ck_assert(wait_for(log, written_at_least, done += HALF, &c));
        if (query_int(tmp.db, "SELECT rolled_id FROM access_rollup_watermark") <
            query_int(tmp.db, "SELECT max(id) FROM access_log"))
            break;
        ck_assert_msg(round < 50, "every batch's sums came due before the next batch");
    }
    other = store_open(tmp.db, err, sizeof(err));
    ck_assert_msg(other != NULL, "%s", err);
    ck_assert_msg(store_begin(other, err, sizeof(err)) == 0, "%s", err);
    ck_assert_msg(store_exec(other,
                             "INSERT INTO access_log(time_ms, client, node)"
                             " VALUES (1700000000000, '10.0.0.9', 'node-b')",
                             err, sizeof(err)) == 0,
                  "%s", err);
    store_rollback(other);
    store_close(other);
    /* One batch of more pairs than the sums hold (32,768): queues 1 and 2 just under half
     * full, then queue 0 half full. */
    push_rows(log, 1, HALF - 1, &t, 0);
    push_rows(log, 2, HALF - 1, &t, HALF);
    push_rows(log, 0, HALF, &t, 2 * HALF);
    ck_assert(wait_for(log, written_at_least, done += 3 * HALF - 2, &c));
    check_rollups_exact("running");
    store_log_stop(log);
    check_rollups_exact("stopped");
    ck_assert_int_eq(query_int(tmp.db, "SELECT sum(requests) FROM access_rollup WHERE dim = 0"
                                       " AND level_ms = 86400000"),
                     (int64_t)done);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("store_log");
    TCase *tc = tcase_create("log");
    SRunner *sr;
    int failed;

    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_records_from_two_producers_are_all_committed);
    tcase_add_test(tc, test_stop_writes_everything_still_queued);
    tcase_add_test(tc, test_rows_carry_the_node_name);
    tcase_add_test(tc, test_awkward_bytes_come_back_as_logged);
    tcase_add_test(tc, test_every_field_of_every_row_is_stored);
    tcase_add_test(tc, test_full_queue_push_fails_fast_and_counts_drops);
    tcase_add_test(tc, test_locked_database_drops_batches_then_resumes);
    tcase_add_test(tc, test_removed_database_file_is_recreated);
    tcase_add_test(tc, test_squid_lines_in_native_format);
    tcase_add_test(tc, test_rule_hits_follow_logged_records);
    tcase_add_test(tc, test_retention_set_applies_to_a_running_writer);
    tcase_add_test(tc, test_undecided_rules_are_counted_per_rule);
    tcase_add_test(tc, test_two_nodes_keep_the_rollups_exact);
    tcase_add_test(tc, test_more_keys_than_the_sums_hold_stay_exact);
    tcase_add_test(tc, test_sums_dropped_mid_batch_keep_the_watermark);
    tcase_add_test(tc, test_bad_options_are_refused_with_message);
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
