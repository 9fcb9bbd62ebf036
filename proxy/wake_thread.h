/* wake_thread: a thread with an eventfd that wakes its waits, and a stop that joins it within a
 * bound. The shape of proxyd's database threads (poll_thread.c, policy_watch.c, node_beat.c):
 * each may be inside a wait on a frozen PostgreSQL when the stop comes, so the stop must never
 * wait for it without end; a thread still busy after the bound is left behind, detached. The
 * owner embeds the struct in its own and its thread runs
 *     while (!wake_thread_stopping(&x->wt)) { ...; wake_thread_wait(&x->wt, ms); }
 * (or hands wake_fd to a poll of its own, as store_policy_wait takes it). */
#ifndef PX_WAKE_THREAD_H
#define PX_WAKE_THREAD_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>

struct wake_thread {
    pthread_t thread;
    int wake_fd;           /* eventfd, non-blocking; owned: closed by a stop that joined */
    _Atomic bool stopping; /* set by wake_thread_stop before it wakes the thread */
};

/* Makes the eventfd and starts fn(arg) on a thread of its own (arg: usually the struct t is
 * embedded in). Returns PX_OK, or PX_ERR with err "<what>: eventfd: <reason>" or "<what>:
 * pthread_create: <reason>" and nothing left open. */
int wake_thread_start(struct wake_thread *t, void *(*fn)(void *), void *arg, const char *what,
                      char *err, size_t errlen);

/* Ends the thread's current or next wait. Any thread; signal-safe (one write). */
void wake_thread_wake(struct wake_thread *t);

/* The thread's own: waits until woken or timeout_ms passed, and takes the wake-up (a later wait
 * waits again). */
void wake_thread_wait(struct wake_thread *t, int timeout_ms);

/* Whether a stop was asked. Any thread. */
static inline bool wake_thread_stopping(struct wake_thread *t)
{
    return atomic_load(&t->stopping);
}

/* Asks the thread to stop, wakes it and joins it within bound_ms. true: it ended and the
 * eventfd is closed. false: it is still running (in a wait on the database) and is left behind,
 * detached: it still reads *t and whatever it uses, so the caller must free none of that. */
bool wake_thread_stop(struct wake_thread *t, int bound_ms);

#endif
