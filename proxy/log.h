/* log: the daemon's diagnostic channel (stderr). The level is checked before any
 * formatting, so a disabled log_debug costs one comparison. Access records do not go here:
 * they are fixed-size structs handed to storage (storage/store.h). Any thread. */
#ifndef PX_LOG_H
#define PX_LOG_H

enum log_level { LOG_LEVEL_ERROR, LOG_LEVEL_WARN, LOG_LEVEL_INFO, LOG_LEVEL_DEBUG, LOG_LEVEL_COUNT };

extern enum log_level log_threshold;

/* Parses "error", "warn", "info", "debug"; returns -1 for anything else. */
int log_level_parse(const char *name);
const char *log_level_str(enum log_level level);

void log_emit(enum log_level level, int errnum, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* log_warn appends strerror(errno); the x variants do not. */
#define log_error(...) log_emit(LOG_LEVEL_ERROR, 0, __VA_ARGS__)
#define log_warn(...)                                                                              \
    do {                                                                                           \
        if (log_threshold >= LOG_LEVEL_WARN)                                                       \
            log_emit(LOG_LEVEL_WARN, errno, __VA_ARGS__);                                          \
    } while (0)
#define log_warnx(...)                                                                             \
    do {                                                                                           \
        if (log_threshold >= LOG_LEVEL_WARN)                                                       \
            log_emit(LOG_LEVEL_WARN, 0, __VA_ARGS__);                                              \
    } while (0)
#define log_info(...)                                                                              \
    do {                                                                                           \
        if (log_threshold >= LOG_LEVEL_INFO)                                                       \
            log_emit(LOG_LEVEL_INFO, 0, __VA_ARGS__);                                              \
    } while (0)
#define log_debug(...)                                                                             \
    do {                                                                                           \
        if (log_threshold >= LOG_LEVEL_DEBUG)                                                      \
            log_emit(LOG_LEVEL_DEBUG, 0, __VA_ARGS__);                                             \
    } while (0)

#endif
