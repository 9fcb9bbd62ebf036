/* base/clock.h: the one millisecond clock of every module. Wall time is what access records
 * and the database store (ms since the Unix epoch); monotonic time is what deadlines, timers
 * and throttles measure, since the wall clock may jump. The coarse variants read the kernel's
 * tick-resolution clock without a system call, for hot paths that need no better than ~4 ms. */
#ifndef PX_BASE_CLOCK_H
#define PX_BASE_CLOCK_H

#include <stdint.h>
#include <time.h>

static inline int64_t clock_ms_of(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static inline int64_t clock_wall_ms(void)
{
    return clock_ms_of(CLOCK_REALTIME);
}

static inline int64_t clock_wall_coarse_ms(void)
{
    return clock_ms_of(CLOCK_REALTIME_COARSE);
}

static inline int64_t clock_mono_ms(void)
{
    return clock_ms_of(CLOCK_MONOTONIC);
}

static inline int64_t clock_mono_coarse_ms(void)
{
    return clock_ms_of(CLOCK_MONOTONIC_COARSE);
}

/* Microseconds of the monotonic clock, for the one reader that wants them: systemd's
 * MONOTONIC_USEC, which must not read earlier than the reload request it answers. */
static inline int64_t clock_mono_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* Nanoseconds of the monotonic clock, for the latency histograms of base/stats.h (a rule
 * evaluation takes well under a millisecond). */
static inline int64_t clock_mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

#endif
