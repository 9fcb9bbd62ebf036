/* test_store_pool: connections handed out and given back: reuse of an idle one, the first
 * get creating the database, an unopenable path, and threads sharing one pool without ever
 * holding the same connection at once. */
#include <check.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

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
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
