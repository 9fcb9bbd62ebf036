/* log: the daemon's diagnostic channel (stderr: under systemd, journal lines with their
 * priority; and a sink, the --syslog target). The level is checked before any formatting, so
 * a disabled log_debug costs one comparison. Access records do not go here:
 * they are fixed-size structs handed to storage (storage/store.h). Any thread. */
#ifndef PX_LOG_H
#define PX_LOG_H

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

enum log_level {
    LOG_LEVEL_ERROR,
    LOG_LEVEL_WARN,
    LOG_LEVEL_INFO,
    LOG_LEVEL_DEBUG,
    LOG_LEVEL_COUNT
};

/* The most verbose level written (an enum log_level). The main thread sets it at start and on
 * SIGHUP while every thread reads it, so it is atomic; relaxed is enough: a line more or less
 * around the change is all a late reader costs. */
extern _Atomic int log_threshold;

/* Sets the level in force. Any thread. */
void log_threshold_set(enum log_level level);

/* Whether a line of this level is written; the macros ask before formatting anything. */
static inline bool log_enabled(enum log_level level)
{
    return (int)level <= atomic_load_explicit(&log_threshold, memory_order_relaxed);
}

/* Where every line written also goes, besides stderr: sink(arg, severity, text) with the
 * line's syslog severity (3 error, 4 warning, 6 info, 7 debug) and its text (no time, no
 * level, no newline), on the thread that logs; it must not wait. NULL: none. Set before other
 * threads log, cleared after they stop. */
void log_sink_set(void (*sink)(void *arg, int severity, const char *text), void *arg);

/* Parses "error", "warn", "info", "debug"; returns -1 for anything else. */
int log_level_parse(const char *name);
const char *log_level_str(enum log_level level);

void log_emit(enum log_level level, int errnum, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* log_warn appends strerror(errno); the x variants do not. */
#define log_error(...) log_emit(LOG_LEVEL_ERROR, 0, __VA_ARGS__)
#define log_warn(...)                                                                              \
    do {                                                                                           \
        if (log_enabled(LOG_LEVEL_WARN))                                                           \
            log_emit(LOG_LEVEL_WARN, errno, __VA_ARGS__);                                          \
    } while (0)
#define log_warnx(...)                                                                             \
    do {                                                                                           \
        if (log_enabled(LOG_LEVEL_WARN))                                                           \
            log_emit(LOG_LEVEL_WARN, 0, __VA_ARGS__);                                              \
    } while (0)
#define log_info(...)                                                                              \
    do {                                                                                           \
        if (log_enabled(LOG_LEVEL_INFO))                                                           \
            log_emit(LOG_LEVEL_INFO, 0, __VA_ARGS__);                                              \
    } while (0)
#define log_debug(...)                                                                             \
    do {                                                                                           \
        if (log_enabled(LOG_LEVEL_DEBUG))                                                          \
            log_emit(LOG_LEVEL_DEBUG, 0, __VA_ARGS__);                                             \
    } while (0)

/* A budget for a message that can repeat without end (an accept that fails while descriptors
 * are exhausted, a refused client that keeps trying): at most `burst` lines per `interval_ms`.
 * Lines over budget are counted, not written; the next line written says how many there were.
 * Declare one per message, static, with LOG_RATELIMIT_INIT; any thread may use it. */
struct log_ratelimit {
    pthread_mutex_t lock;
    int64_t interval_ms;
    unsigned burst;
    int64_t window_start_ms; /* under lock */
    unsigned in_window;      /* under lock: lines written in the current window */
    uint64_t suppressed;     /* under lock: lines dropped since the last one written */
};

#define LOG_RATELIMIT_INIT(interval_ms, burst)                                                     \
    {                                                                                              \
        PTHREAD_MUTEX_INITIALIZER, (interval_ms), (burst), 0, 0, 0                                 \
    }

/* Asks rl whether a line may be written at now_ms (any monotonic clock). Returns true, with
 * *suppressed set to the lines dropped since the last one that passed, or false (the line is
 * counted as dropped). Any thread. */
bool log_ratelimit_pass(struct log_ratelimit *rl, int64_t now_ms, uint64_t *suppressed);

/* log_emit under a budget: the line, if it passes, ends with "(N similar suppressed)". */
void log_emit_limited(struct log_ratelimit *rl, enum log_level level, int errnum, const char *fmt,
                      ...) __attribute__((format(printf, 4, 5)));

#define log_warn_limited(rl, ...)                                                                  \
    do {                                                                                           \
        if (log_enabled(LOG_LEVEL_WARN))                                                           \
            log_emit_limited((rl), LOG_LEVEL_WARN, errno, __VA_ARGS__);                            \
    } while (0)
#define log_warnx_limited(rl, ...)                                                                 \
    do {                                                                                           \
        if (log_enabled(LOG_LEVEL_WARN))                                                           \
            log_emit_limited((rl), LOG_LEVEL_WARN, 0, __VA_ARGS__);                                \
    } while (0)
#define log_info_limited(rl, ...)                                                                  \
    do {                                                                                           \
        if (log_enabled(LOG_LEVEL_INFO))                                                           \
            log_emit_limited((rl), LOG_LEVEL_INFO, 0, __VA_ARGS__);                                \
    } while (0)

#endif
