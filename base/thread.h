/* base/thread.h: a join that does not wait without end. proxyd's database threads may be in
 * a wait on a PostgreSQL that does not answer when the stop comes; the stop waits for each
 * within a bound and leaves one still waiting behind (detached), so that SIGTERM always ends
 * the process. Shared by the storage writer (store_log.c) and proxy/wake_thread.c. */
#ifndef PX_BASE_THREAD_H
#define PX_BASE_THREAD_H

#include <pthread.h>
#include <stdbool.h>
#include <time.h>

/* pthread_join within bound_ms; false: the thread still runs, and is detached. */
static inline bool thread_join_within(pthread_t thread, int bound_ms)
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

#endif
