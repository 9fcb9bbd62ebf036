/* test_store_pool: connections handed out and given back: reuse of an idle one, the first
 * get creating the database, an unopenable path, and threads sharing one pool without ever
 * holding the same connection at once; on PostgreSQL, a connection whose server process is
 * frozen (SIGSTOP) fails at its bound or at the give-up time, and comes back once it runs; a
 * writer's cut on a server that works does not shorten an admin read. */
#include <check.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/clock.h"
#include "storage/store.h"
#include "storage/store_impl.h"
#include "tests/unit/common.h"

static struct test_tmpdir tmp;
static char err[256];

static void setup(void)
{
    test_tmpdir_make(&tmp);
    err[0] = '\0';
}

static void teardown(void)
{
    test_tmpdir_remove(&tmp);
}

static struct store_pool *pool_new(size_t idle_max)
{
    struct store_pool *pool = store_pool_new(tmp.db, idle_max, err, sizeof(err));

    ck_assert_msg(pool != NULL, "%s", err);
    return pool;
}

START_TEST(test_first_get_creates_the_database)
{
    struct store_pool *pool = pool_new(2);
    struct store *st;

    ck_assert_int_eq(access(tmp.db, F_OK), -1); /* a new pool opens nothing */
    st = store_pool_get(pool, err, sizeof(err));
    ck_assert_msg(st != NULL, "%s", err);
    ck_assert_int_gt(store_schema_version(st), 0);
    store_pool_put(pool, st);
    store_pool_free(pool);
}
END_TEST

/* A connection to a database whose steps have all run opens without the write lock: another
 * session holding it (on PostgreSQL the nodes' policy lock, held by a node stopped or cut off
 * in a transaction) must not keep connections from opening, as it did for the lock's timeout
 * (each open read its steps under the lock, so a node frozen then held every node's policy
 * changes). */
START_TEST(test_a_migrated_database_opens_while_its_write_lock_is_held)
{
    struct store *first, *holder, *again;
    char e2[256] = "";

    first = store_open(tmp.db, err, sizeof(err)); /* makes and migrates it */
    ck_assert_msg(first != NULL, "%s", err);
    holder = store_open(tmp.db, err, sizeof(err));
    ck_assert_msg(holder != NULL, "%s", err);
    ck_assert_msg(store_begin(holder, err, sizeof(err)) == 0, "%s", err);
    again = store_open(tmp.db, e2, sizeof(e2));
    ck_assert_msg(again != NULL, "opened while another session holds the write lock: %s", e2);
    ck_assert_int_gt(store_schema_version(again), 0);
    store_close(again);
    store_rollback(holder);
    store_close(holder);
    store_close(first);
}
END_TEST

START_TEST(test_given_back_connection_is_handed_out_again)
{
    struct store_pool *pool = pool_new(2);
    struct store *a = store_pool_get(pool, err, sizeof(err));
    struct store *b = store_pool_get(pool, err, sizeof(err));

    ck_assert_ptr_nonnull(a);
    ck_assert_ptr_nonnull(b);
    ck_assert_ptr_ne(a, b); /* one thread at a time: never the same one twice */
    store_pool_put(pool, a);
    ck_assert_ptr_eq(store_pool_get(pool, err, sizeof(err)), a);
    store_pool_put(pool, b);
    store_pool_put(pool, a);
    ck_assert_ptr_eq(store_pool_get(pool, err, sizeof(err)), a); /* last in, first out */
    store_pool_put(pool, a);
    store_pool_put(pool, NULL);
    store_pool_free(pool); /* closes both; the sanitizer build sees a leak otherwise */
}
END_TEST

START_TEST(test_beyond_idle_max_is_closed_not_kept)
{
    struct store_pool *pool = pool_new(1);
    struct store *a = store_pool_get(pool, err, sizeof(err));
    struct store *b = store_pool_get(pool, err, sizeof(err));

    ck_assert_ptr_nonnull(a);
    ck_assert_ptr_nonnull(b);
    store_pool_put(pool, a);
    store_pool_put(pool, b); /* closed: one idle is the most kept */
    ck_assert_ptr_eq(store_pool_get(pool, err, sizeof(err)), a);
    store_pool_put(pool, a);
    store_pool_free(pool);
}
END_TEST

START_TEST(test_unopenable_path_fills_err)
{
    char path[160];
    struct store_pool *pool;

    snprintf(path, sizeof(path), "%s/no/such/dir/x.db", tmp.dir);
    pool = store_pool_new(path, 2, err, sizeof(err));
    ck_assert_msg(pool != NULL, "%s", err);
    ck_assert_ptr_null(store_pool_get(pool, err, sizeof(err)));
    ck_assert_msg(strstr(err, path) != NULL, "%s", err);
    /* An SQLite file that does not open is this machine's fault, not a server's outage: the
     * admin server answers 500 with the reason, not 503 (wa_store). */
    ck_assert(!store_pool_is_pg(pool));
    store_pool_free(pool);
    pool = store_pool_new("host=/nonexistent port=5432 user=px", 2, err, sizeof(err));
    ck_assert_msg(pool != NULL, "%s", err);
    ck_assert(store_pool_is_pg(pool));
    store_pool_free(pool);
}
END_TEST

#define THREADS 4
#define ROUNDS 300

/* The connections handed out and not yet given back, over all threads. */
static pthread_mutex_t held_mu = PTHREAD_MUTEX_INITIALIZER;
static struct store *held[THREADS];

/* Records st as held by thread i; false if another thread holds it already. */
static bool hold(int i, struct store *st)
{
    bool ok = true;

    pthread_mutex_lock(&held_mu);
    for (int k = 0; k < THREADS; k++)
        ok = ok && held[k] != st;
    held[i] = st;
    pthread_mutex_unlock(&held_mu);
    return ok;
}

static void release(int i)
{
    pthread_mutex_lock(&held_mu);
    held[i] = NULL;
    pthread_mutex_unlock(&held_mu);
}

struct worker {
    struct store_pool *pool;
    int index;
    int failures;
};

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    char e[256];

    for (int i = 0; i < ROUNDS; i++) {
        struct store *st = store_pool_get(w->pool, e, sizeof(e));

        if (!st || !hold(w->index, st) || store_schema_version(st) <= 0)
            w->failures++;
        release(w->index);
        store_pool_put(w->pool, st);
    }
    return NULL;
}

START_TEST(test_threads_share_one_pool)
{
    struct worker w[THREADS];
    pthread_t t[THREADS];
    struct store_pool *pool = pool_new(2); /* fewer idle than threads: opens and closes too */
    struct store *st = store_pool_get(pool, err, sizeof(err));

    ck_assert_msg(st != NULL, "%s", err); /* schema in place before the threads race */
    store_pool_put(pool, st);
    for (int i = 0; i < THREADS; i++) {
        w[i] = (struct worker){.pool = pool, .index = i};
        ck_assert_int_eq(pthread_create(&t[i], NULL, worker_main, &w[i]), 0);
    }
    for (int i = 0; i < THREADS; i++) {
        ck_assert_int_eq(pthread_join(t[i], NULL), 0);
        ck_assert_int_eq(w[i].failures, 0);
    }
    store_pool_free(pool);
}
END_TEST

/* A session setting as the server shows it. */
static const char *show(struct store *st, const char *name)
{
    static char value[64];
    char sql[96];
    struct sql_stmt *s;

    snprintf(sql, sizeof(sql), "SHOW %s", name);
    ck_assert_int_eq(store_prepare(st, sql, &s, err, sizeof(err)), 0);
    ck_assert_int_eq(sql_step(s), SQL_ROW);
    snprintf(value, sizeof(value), "%s", sql_col_text(s, 0));
    sql_finalize(s);
    return value;
}

/* A connection option as libpq uses it. */
static const char *conn_option(struct store *st, const char *key)
{
    static char value[64];
    PQconninfoOption *opts = PQconninfo(st->pg);

    value[0] = '\0';
    for (PQconninfoOption *o = opts; o && o->keyword; o++)
        if (strcmp(o->keyword, key) == 0 && o->val)
            snprintf(value, sizeof(value), "%s", o->val);
    PQconninfoFree(opts);
    return value;
}

START_TEST(test_pg_sessions_have_their_purposes_limits_unless_the_conninfo_sets_them)
{
    struct store *st;
    char conninfo[768];

    if (!test_pg())
        return; /* PostgreSQL's own settings */
    /* The log writer: its short lock wait, a minute a statement, 10 s idle in a transaction,
     * and keepalives that notice a vanished server in seconds. */
    st = store_open_timeout(tmp.db, STORE_FOR_LOG_WRITER, 250, err, sizeof(err));
    ck_assert_msg(st != NULL, "%s", err);
    ck_assert_str_eq(show(st, "lock_timeout"), "250ms");
    ck_assert_str_eq(show(st, "statement_timeout"), "1min");
    ck_assert_str_eq(show(st, "idle_in_transaction_session_timeout"), "10s");
    ck_assert_str_eq(conn_option(st, "keepalives"), "1");
    ck_assert_str_eq(conn_option(st, "keepalives_idle"), "10");
    ck_assert_str_eq(conn_option(st, "keepalives_interval"), "5");
    ck_assert_str_eq(conn_option(st, "keepalives_count"), "3");
    ck_assert_str_eq(conn_option(st, "tcp_user_timeout"), "30000");
    ck_assert_str_eq(conn_option(st, "connect_timeout"), "5");
    /* They are set again on a reconnection. */
    ck_assert_int_eq(sql_exec_script(st, "SET statement_timeout = 0", err, sizeof(err)), 0);
    ck_assert_int_lt(
        sql_exec_script(st, "SELECT pg_terminate_backend(pg_backend_pid())", err, sizeof(err)), 0);
    ck_assert_int_eq(store_pg_revive(st), 0);
    ck_assert_str_eq(show(st, "statement_timeout"), "1min");
    ck_assert_str_eq(show(st, "lock_timeout"), "250ms");
    store_close(st);
    /* The node heartbeat: a stuck server is given 10 s. The export: no statement limit. */
    st = store_open_for(tmp.db, STORE_FOR_NODE_BEAT, err, sizeof(err));
    ck_assert_msg(st != NULL, "%s", err);
    ck_assert_str_eq(show(st, "lock_timeout"), "2s");
    ck_assert_str_eq(show(st, "statement_timeout"), "10s");
    store_close(st);
    st = store_open_lean(tmp.db, err, sizeof(err));
    ck_assert_msg(st != NULL, "%s", err);
    ck_assert_str_eq(show(st, "statement_timeout"), "0");
    store_close(st);
    /* What the admin wrote in the conninfo wins, the rest is still set. */
    snprintf(conninfo, sizeof(conninfo),
             "%s keepalives_idle=33 options='-csearch_path=%s -cstatement_timeout=1234'",
             getenv("PX_TEST_PG"), tmp.pg_schema);
    st = store_open_for(conninfo, STORE_FOR_LOG_WRITER, err, sizeof(err));
    ck_assert_msg(st != NULL, "%s", err);
    ck_assert_str_eq(show(st, "statement_timeout"), "1234ms");
    ck_assert_str_eq(show(st, "idle_in_transaction_session_timeout"), "10s");
    ck_assert_str_eq(conn_option(st, "keepalives_idle"), "33");
    ck_assert_str_eq(conn_option(st, "keepalives_count"), "3");
    store_close(st);
}
END_TEST

/* SELECT's one integer on st, or -1 when the statement failed. */
static long long one_int(struct store *st, const char *sql)
{
    struct sql_stmt *s;
    long long v = -1;

    if (store_prepare(st, sql, &s, err, sizeof(err)) < 0)
        return -1;
    if (sql_step(s) == SQL_ROW)
        v = sql_col_int64(s, 0);
    else
        snprintf(err, sizeof(err), "%s", sql_errmsg(st));
    sql_finalize(s);
    return v;
}

START_TEST(test_pg_a_frozen_server_process_costs_a_statement_its_bound_then_the_give_up)
{
    struct store *st;
    long long pid, got;
    int64_t began, waited;
    bool unavailable;
    char why[256];

    if (!test_pg())
        return; /* a PostgreSQL server process to freeze */
    /* The heartbeat's bound: 15 s an answer. */
    st = store_open_for(tmp.db, STORE_FOR_NODE_BEAT, err, sizeof(err));
    ck_assert_msg(st != NULL, "%s", err);
    pid = one_int(st, "SELECT pg_backend_pid()");
    ck_assert_int_gt(pid, 0);
    /* Frozen: the socket stays open, nothing answers. Continued before any assertion (a
     * failed one ends this process, and a stopped backend would hold the fixture's stop). */
    ck_assert_int_eq(kill((pid_t)pid, SIGSTOP), 0);
    began = clock_mono_ms();
    got = one_int(st, "SELECT 1");
    waited = clock_mono_ms() - began;
    unavailable = store_unavailable(st);
    snprintf(why, sizeof(why), "%s", err);
    kill((pid_t)pid, SIGCONT);
    ck_assert_int_eq(got, -1);
    ck_assert_msg(strstr(why, "did not answer within"), "%s", why);
    ck_assert_int_ge(waited, 15000); /* not before its bound (no upper limit: a loaded CI) */
    ck_assert(unavailable);
    /* A new connection once the server answers (at most one attempt a second). */
    for (int i = 0; i < 300 && one_int(st, "SELECT 1") != 1; i++)
        usleep(100 * 1000);
    ck_assert_int_eq(one_int(st, "SELECT 1"), 1);
    ck_assert(!store_unavailable(st));

    /* At a stop the give-up time ends the wait before the bound, and no reconnection is
     * tried after it. */
    pid = one_int(st, "SELECT pg_backend_pid()");
    ck_assert_int_gt(pid, 0);
    ck_assert_int_eq(kill((pid_t)pid, SIGSTOP), 0);
    store_pg_give_up_at(clock_mono_ms() + 500);
    got = one_int(st, "SELECT 1");
    long long after = one_int(st, "SELECT 1");
    kill((pid_t)pid, SIGCONT);
    ck_assert_int_eq(got, -1);
    ck_assert_int_eq(after, -1); /* failed at once: no reconnection after the give-up */
    store_pg_give_up_at(0);
    for (int i = 0; i < 300 && one_int(st, "SELECT 1") != 1; i++)
        usleep(100 * 1000);
    ck_assert_int_eq(one_int(st, "SELECT 1"), 1);
    store_close(st);
}
END_TEST

START_TEST(test_pg_a_writers_cut_on_a_server_that_works_leaves_an_admin_read_its_bound)
{
    struct store *writer, *admin;
    long long got;

    if (!test_pg())
        return;
    writer = store_open_for(tmp.db, STORE_FOR_LOG_WRITER, err, sizeof(err));
    ck_assert_msg(writer != NULL, "%s", err);
    admin = store_open_for(tmp.db, STORE_FOR_ADMIN, err, sizeof(err));
    ck_assert_msg(admin != NULL, "%s", err);
    /* A statement slower than the writer's bound (15 s), well within its statement_timeout
     * (60 s): cut, on a server that works. */
    ck_assert_int_eq(one_int(writer, "SELECT 1 FROM pg_sleep(16)"), -1);
    ck_assert_msg(strstr(err, "did not answer within"), "%s", err);
    /* An admin read longer than the 5 s that follow a cut of a frozen server, with nothing
     * read from the server meanwhile: it gets its answer. */
    got = one_int(admin, "SELECT 7 FROM pg_sleep(8)");
    ck_assert_msg(got == 7, "%s", err);
    store_close(admin);
    store_close(writer);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("store_pool");
    TCase *tc = tcase_create("pool");
    SRunner *sr;
    int failed;

    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_first_get_creates_the_database);
    tcase_add_test(tc, test_a_migrated_database_opens_while_its_write_lock_is_held);
    tcase_add_test(tc, test_given_back_connection_is_handed_out_again);
    tcase_add_test(tc, test_beyond_idle_max_is_closed_not_kept);
    tcase_add_test(tc, test_unopenable_path_fills_err);
    tcase_add_test(tc, test_threads_share_one_pool);
    tcase_add_test(tc, test_pg_sessions_have_their_purposes_limits_unless_the_conninfo_sets_them);
    tcase_add_test(tc,
                   test_pg_a_frozen_server_process_costs_a_statement_its_bound_then_the_give_up);
    tcase_add_test(tc, test_pg_a_writers_cut_on_a_server_that_works_leaves_an_admin_read_its_bound);
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
