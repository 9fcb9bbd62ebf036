/* test_portfwd: a worker's side of the port-forward table. A worker never waits for the
 * table's lock, which the admin server and the main thread hold across store calls that may
 * wait out a busy database. */
#include <check.h>
#include <pthread.h>
#include <stdlib.h>
#include <time.h>

#include "proxy/portfwd.h"
#include "proxy/worker.h"

static void *sync_once(void *arg)
{
    portfwd_worker_sync(arg, false);
    return NULL;
}

START_TEST(test_worker_sync_does_not_wait_for_a_held_table)
{
    static struct portfwd_table t;
    static struct proxy_shared shared;
    static struct worker w;
    pthread_t th;
    struct timespec deadline;

    portfwd_table_init(&t, 1);
    shared.forwards = &t;
    w.shared = &shared;
    w.fwd = calloc(PORTFWD_MAX, sizeof(*w.fwd));
    ck_assert_ptr_nonnull(w.fwd);
    atomic_store(&t.gen, 1); /* a change the worker has not seen */

    /* Another thread is in a store call under the lock. */
    pthread_mutex_lock(&t.lock);
    ck_assert_int_eq(pthread_create(&th, NULL, sync_once, &w), 0);
    clock_gettime(CLOCK_REALTIME, &deadline);
    deadline.tv_sec += 30; /* a hang guard: the call returns at once or not until unlocked */
    int joined = pthread_timedjoin_np(th, NULL, &deadline);
    pthread_mutex_unlock(&t.lock);
    if (joined != 0)
        pthread_join(th, NULL);
    ck_assert_msg(joined == 0, "the worker waited for the table's lock");
    ck_assert_uint_eq(w.fwd_gen, 0); /* not synced: left to the next call */

    /* The lock free again, the next call catches up. */
    portfwd_worker_sync(&w, false);
    ck_assert_uint_eq(w.fwd_gen, 1);
    free(w.fwd);
    portfwd_table_destroy(&t);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("portfwd");
    TCase *tc = tcase_create("worker");
    SRunner *sr;
    int failed;

    tcase_add_test(tc, test_worker_sync_does_not_wait_for_a_held_table);
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
