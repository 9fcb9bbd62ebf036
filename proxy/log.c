/* log: diagnostic lines on stderr, one write(2) each so threads never interleave; under
 * systemd each line starts with its syslog priority for the journal; each line also goes to
 * the sink, if one is set (the --syslog target). */
#include "proxy/log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <stdlib.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "base/clock.h"

_Atomic int log_threshold = LOG_LEVEL_INFO;

void log_threshold_set(enum log_level level)
{
    atomic_store_explicit(&log_threshold, (int)level, memory_order_relaxed);
}

static const char *const level_names[LOG_LEVEL_COUNT] = {"error", "warn", "info", "debug"};

int log_level_parse(const char *name)
{
    for (int i = 0; i < LOG_LEVEL_COUNT; i++)
        if (strcasecmp(name, level_names[i]) == 0)
            return i;
    return -1;
}

const char *log_level_str(enum log_level level)
{
    return (unsigned)level < LOG_LEVEL_COUNT ? level_names[level] : "?";
}

/* Each level's syslog severity (RFC 5424): the journal's PRIORITY and the sink's. */
static const int level_severity[LOG_LEVEL_COUNT] = {3, 4, 6, 7};

static void (*sink_fn)(void *arg, int severity, const char *text);
static void *sink_arg;

void log_sink_set(void (*sink)(void *arg, int severity, const char *text), void *arg)
{
    sink_fn = sink;
    sink_arg = arg;
}

/* Whether stderr is the journal: systemd sets JOURNAL_STREAM to "DEVICE:INODE" of the stream
 * it connected, which a redirection elsewhere no longer matches (systemd.exec(5)). */
static bool stderr_is_journal(void)
{
    const char *e = getenv("JOURNAL_STREAM");
    unsigned long long dev, ino;
    struct stat sb;

    return e && sscanf(e, "%llu:%llu", &dev, &ino) == 2 && fstat(STDERR_FILENO, &sb) == 0 &&
           (unsigned long long)sb.st_dev == dev && (unsigned long long)sb.st_ino == ino;
}

/* Formats and writes one line; suppressed > 0 adds how many similar lines were dropped. */
static void log_vemit(enum log_level level, int errnum, uint64_t suppressed, const char *fmt,
                      va_list ap)
{
    /* Asked once; a race only asks twice. */
    static _Atomic int journal = -1;
    char line[1024];
    int n, start;

    if (atomic_load_explicit(&journal, memory_order_relaxed) < 0)
        atomic_store_explicit(&journal, stderr_is_journal(), memory_order_relaxed);
    if (atomic_load_explicit(&journal, memory_order_relaxed)) {
        /* "<3>": journald's PRIORITY; it stamps the time and names the unit itself. */
        n = snprintf(line, sizeof(line), "<%d>", level_severity[level]);
    } else {
        int64_t now_ms = clock_wall_ms();
        time_t secs = (time_t)(now_ms / 1000);
        struct tm tm;
        localtime_r(&secs, &tm);
        n = (int)strftime(line, sizeof(line), "%Y-%m-%d %H:%M:%S", &tm);
        n += snprintf(line + n, sizeof(line) - (size_t)n, ".%03d proxyd %s: ", (int)(now_ms % 1000),
                      level_names[level]);
    }
    start = n;
    n += vsnprintf(line + n, sizeof(line) - (size_t)n, fmt, ap);
    if (n > (int)sizeof(line) - 2)
        n = (int)sizeof(line) - 2;
    if (errnum)
        n += snprintf(line + n, sizeof(line) - (size_t)n, ": %s", strerror(errnum));
    if (n > (int)sizeof(line) - 2)
        n = (int)sizeof(line) - 2;
    if (suppressed)
        n += snprintf(line + n, sizeof(line) - (size_t)n, " (%llu similar suppressed)",
                      (unsigned long long)suppressed);
    if (n > (int)sizeof(line) - 2)
        n = (int)sizeof(line) - 2;
    line[n] = '\0';
    if (sink_fn)
        sink_fn(sink_arg, level_severity[level], line + start);
    line[n++] = '\n';
    ssize_t w = write(STDERR_FILENO, line, (size_t)n);
    (void)w;
}

void log_emit(enum log_level level, int errnum, const char *fmt, ...)
{
    if (!log_enabled(level))
        return;
    va_list ap;
    va_start(ap, fmt);
    log_vemit(level, errnum, 0, fmt, ap);
    va_end(ap);
}

bool log_ratelimit_pass(struct log_ratelimit *rl, int64_t now_ms, uint64_t *suppressed)
{
    bool pass;
    pthread_mutex_lock(&rl->lock);
    if (rl->in_window == 0 || now_ms - rl->window_start_ms >= rl->interval_ms) {
        rl->window_start_ms = now_ms;
        rl->in_window = 0;
    }
    pass = rl->in_window < rl->burst;
    if (pass) {
        rl->in_window++;
        *suppressed = rl->suppressed;
        rl->suppressed = 0;
    } else {
        rl->suppressed++;
    }
    pthread_mutex_unlock(&rl->lock);
    return pass;
}

void log_emit_limited(struct log_ratelimit *rl, enum log_level level, int errnum, const char *fmt,
                      ...)
{
    if (!log_enabled(level))
        return;
    uint64_t suppressed;
    if (!log_ratelimit_pass(rl, clock_mono_coarse_ms(), &suppressed))
        return;
    va_list ap;
    va_start(ap, fmt);
    log_vemit(level, errnum, suppressed, fmt, ap);
    va_end(ap);
}
