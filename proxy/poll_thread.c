/* poll_thread: the main thread's database work on a thread of its own (poll_thread.h). */
#include "proxy/poll_thread.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>

#include "proxy/wake_thread.h"

struct poll_thread {
    struct wake_thread wt; /* woken by poll_thread_ask and poll_thread_stop */
    _Atomic unsigned asked;
    void (*run)(void *arg, unsigned asked);
    void *arg;
    int every_ms;
};

static void *poll_main(void *arg)
{
    struct poll_thread *t = arg;

    while (!wake_thread_stopping(&t->wt)) {
        wake_thread_wait(&t->wt, t->every_ms);
        if (wake_thread_stopping(&t->wt))
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
    if (wake_thread_start(&t->wt, poll_main, t, "poll thread", err, errlen) < 0) {
        free(t);
        return NULL;
    }
    return t;
}

void poll_thread_ask(struct poll_thread *t, unsigned what)
{
    if (!t)
        return;
    atomic_fetch_or(&t->asked, what);
    wake_thread_wake(&t->wt);
}

bool poll_thread_stop(struct poll_thread *t, int bound_ms)
{
    if (!t)
        return true;
    if (!wake_thread_stop(&t->wt, bound_ms))
        return false; /* t stays: the thread still reads it */
    free(t);
    return true;
}
