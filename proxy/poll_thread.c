/* poll_thread: the main thread's database work on a thread of its own (poll_thread.h). */
#include "proxy/poll_thread.h"

#include <errno.h>
#include <poll.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

struct poll_thread {
    pthread_t thread;
    int wake_fd; /* eventfd: poll_thread_ask and poll_thread_stop */
    _Atomic unsigned asked;
    _Atomic bool stopping;
    void (*run)(void *arg, unsigned asked);
    void *arg;
    int every_ms;
};

static void *poll_main(void *arg)
{
    struct poll_thread *t = arg;

    while (!atomic_load(&t->stopping)) {
        struct pollfd p = {.fd = t->wake_fd, .events = POLLIN};
        uint64_t n;

        if (poll(&p, 1, t->every_ms) > 0 && read(t->wake_fd, &n, sizeof(n)) < 0) {
            /* EAGAIN: another turn took the wake-up */
        }
        if (atomic_load(&t->stopping))
            break;
        t->run(t->arg, atomic_exchange(&t->asked, 0));
    }
    return NULL;
}

struct poll_thread *poll_thread_start(void (*run)(void *arg, unsigned asked), void *arg,
                                      int every_ms, char *err, size_t errlen)
{
    struct poll_thread *t = calloc(1, sizeof(*t));

    if (!t) {
        snprintf(err, errlen, "poll thread: out of memory");
        return NULL;
    }
    t->run = run;
    t->arg = arg;
    t->every_ms = every_ms;
    t->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (t->wake_fd < 0) {
        snprintf(err, errlen, "poll thread: eventfd: %s", strerror(errno));
        free(t);
        return NULL;
    }
    if ((errno = pthread_create(&t->thread, NULL, poll_main, t)) != 0) {
        snprintf(err, errlen, "poll thread: pthread_create: %s", strerror(errno));
        close(t->wake_fd);
        free(t);
        return NULL;
    }
    return t;
}

void poll_thread_ask(struct poll_thread *t, unsigned what)
{
    uint64_t one = 1;

    if (!t)
        return;
    atomic_fetch_or(&t->asked, what);
    if (write(t->wake_fd, &one, sizeof(one)) < 0) {
        /* the counter is full: a wake-up is pending all the same */
    }
}

bool thread_join_within(pthread_t thread, int bound_ms)
{
    struct timespec until;

    /* pthread_timedjoin_np's deadline is by CLOCK_REALTIME. */
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += bound_ms / 1000;
    until.tv_nsec += (long)(bound_ms % 1000) * 1000000L;
    if (until.tv_nsec >= 1000000000L) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000L;
    }
    if (pthread_timedjoin_np(thread, NULL, &until) == 0)
        return true;
    pthread_detach(thread);
    return false;
}

bool poll_thread_stop(struct poll_thread *t, int bound_ms)
{
    if (!t)
        return true;
    atomic_store(&t->stopping, true);
    poll_thread_ask(t, 0);
    if (!thread_join_within(t->thread, bound_ms))
        return false; /* t stays: the thread still reads it */
    close(t->wake_fd);
    free(t);
    return true;
}
