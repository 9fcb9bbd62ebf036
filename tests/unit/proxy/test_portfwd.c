/* test_portfwd: a worker's side of the port-forward table. A worker never waits for the
 * table's lock, which the admin server and the main thread hold across store calls that may
 * wait out a busy database. */
#include <arpa/inet.h>
#include <check.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "proxy/origin.h"
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

/* A loopback port nothing listens on (the kernel's pick, let go). */
static uint16_t unused_port(void)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(a);
    int fd = socket(AF_INET, SOCK_STREAM, 0);

    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&a, &len), 0);
    close(fd);
    return ntohs(a.sin_port);
}

static const char *refusal_at(const struct worker *w, uint16_t port)
{
    struct origin_guard g = origin_guard_of(w);
    struct sockaddr_in a = {
        .sin_family = AF_INET, .sin_port = htons(port), .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    struct sockaddr_storage ss = {0};

    memcpy(&ss, &a, sizeof(a));
    return origin_target_refusal(&g, &ss);
}

/* A forward listens from the moment it is added, but a worker takes it (and learns its port
 * for its own_ports) only at its next sync. A request on that worker to the forward's port
 * would loop back into proxyd past the forward's client list: the guard knows the port at
 * once, and forgets it once the forward is gone. */
START_TEST(test_a_new_forward_port_is_refused_before_any_worker_syncs)
{
    static struct portfwd_table t;
    static struct proxy_shared shared;
    static struct worker w;
    uint16_t port = unused_port();
    char line[96], err[300];
    char *lines[] = {line};

    portfwd_table_init(&t, 1);
    shared.forwards = &t;
    w.shared = &shared;
    w.tun.allow_loopback_targets = true;
    ck_assert_ptr_null(refusal_at(&w, port));

    snprintf(line, sizeof(line), "127.0.0.1:%u 127.0.0.1:9", port);
    ck_assert_msg(portfwd_table_add_config(&t, lines, 1, err, sizeof(err)) == 0, "%s", err);
    ck_assert_uint_eq(w.nown_ports, 0); /* the worker has not synced */
    ck_assert_str_eq(refusal_at(&w, port), "target is the proxy itself");
    ck_assert_ptr_null(refusal_at(&w, port == 65535 ? 1 : port + 1));

    portfwd_table_destroy(&t);
    ck_assert_ptr_null(refusal_at(&w, port));
}
END_TEST

int main(void)
{
    Suite *s = suite_create("portfwd");
    TCase *tc = tcase_create("worker");
    SRunner *sr;
    int failed;

    tcase_add_test(tc, test_worker_sync_does_not_wait_for_a_held_table);
    tcase_add_test(tc, test_a_new_forward_port_is_refused_before_any_worker_syncs);
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
