/* test_wake_thread: the thread with a wake-up eventfd and a bounded join (proxy/wake_thread.c).
 * A wake-up ends a wait long before its timeout; a stop joins a thread that waits; a thread held
 * elsewhere (as by a frozen database) is left behind by the stop, which returns false, and the
 * state it reads stays usable until it ends. Waits are long (60 s) hang guards, never measured. */
#include "proxy/wake_thread.h"

#include <check.h>
#include <pthread.h>
#include <stdatomic.h>
#include <unistd.h>

#include "base/status.h"

#define LONG_MS 60000

struct waiter {
    struct wake_thread wt;
    _Atomic int woken;    /* waits ended */
    pthread_mutex_t gate; /* held by the test: the thread blocks on it (the "database") */
    bool use_gate;
    _Atomic bool at_gate; /* the thread is past its check of the stop, at the gate */
    _Atomic bool ended;
};

static void *waiter_main(void *arg)
{
    struct waiter *w = arg;

    while (!wake_thread_stopping(&w->wt)) {
        if (w->use_gate) {
            atomic_store(&w->at_gate, true);
            pthread_mutex_lock(&w->gate);
            pthread_mutex_unlock(&w->gate);
        }
        wake_thread_wait(&w->wt, LONG_MS);
        atomic_fetch_add(&w->woken, 1);
    }
    atomic_store(&w->ended, true);
    return NULL;
}

/* Polls cond every 10 ms for up to 60 s (a hang guard, not a timing assertion). */
#define WAIT_FOR(cond)                                                                             \
    do {                                                                                           \
        for (int i_ = 0; i_ < 6000 && !(cond); i_++)                                               \
            usleep(10000);                                                                         \
        ck_assert(cond);                                                                           \
    } while (0)

START_TEST(test_wake_ends_a_wait_and_stop_joins)
{
    static struct waiter w;
    char err[128] = "";

    ck_assert_int_eq(wake_thread_start(&w.wt, waiter_main, &w, "test", err, sizeof(err)), PX_OK);
    wake_thread_wake(&w.wt);
    WAIT_FOR(atomic_load(&w.woken) >= 1); /* the 60 s wait ended on the wake-up */
    ck_assert(!wake_thread_stopping(&w.wt));
    ck_assert(wake_thread_stop(&w.wt, LONG_MS));
    ck_assert(atomic_load(&w.ended));
    ck_assert_int_eq(w.wt.wake_fd, -1);
}
END_TEST

START_TEST(test_a_held_thread_is_left_behind)
{
    static struct waiter w;
    char err[128] = "";

    pthread_mutex_init(&w.gate, NULL);
    w.use_gate = true;
    pthread_mutex_lock(&w.gate);
    ck_assert_int_eq(wake_thread_start(&w.wt, waiter_main, &w, "test", err, sizeof(err)), PX_OK);
    WAIT_FOR(atomic_load(&w.at_gate));
    ck_assert(!wake_thread_stop(&w.wt, 100)); /* it cannot end while the gate is held */
    ck_assert(!atomic_load(&w.ended));
    ck_assert_int_ge(w.wt.wake_fd, 0); /* still the thread's */
    pthread_mutex_unlock(&w.gate);
    WAIT_FOR(atomic_load(&w.ended)); /* it sees the stop once let go */
    close(w.wt.wake_fd);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("wake_thread");
    TCase *tc = tcase_create("core");
    SRunner *sr;
    int failed;

    tcase_add_test(tc, test_wake_ends_a_wait_and_stop_joins);
    tcase_add_test(tc, test_a_held_thread_is_left_behind);
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
