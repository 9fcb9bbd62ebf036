/* store_log: the access-log writer. One thread drains the per-worker record queues
 * (store_queue.c, backend-free) into the database, one transaction per batch, keeps the
 * rollups (store_rollup.c) as it writes, and optionally appends Squid native lines.
 *
 * The writer wakes every flush interval, or early when a queue passes half full. When the
 * database refuses a batch, the writer keeps draining (counting the rows as
 * dropped_db_error) and retries once a second, reopening the connection when the file was
 * removed or the connection broke. With a syslog target each record also goes there
 * (store_syslog.c), from this thread, never waiting.
 *
 * PostgreSQL with a spill (store_log_opts.spill_path): a batch the database does not take
 * is kept, as the COPY text it was sent as, in the spill (store_spill.c: memory, then a
 * file) and sent again once it is back; while the spill holds anything, new batches join
 * it, so batches reach the database in the order of their sequence numbers. Each batch's
 * transaction also records its number in log_delivery (one row per spill file's writer id),
 * so a batch whose COMMIT went through but whose answer was lost is not sent twice.
 *
 * Several nodes writing into one database (a fleet on one PostgreSQL): each batch's rows take
 * consecutive ids and the rows below a committed one are committed (SQLite: its write lock;
 * PostgreSQL: the log writers' advisory lock taken at BEGIN, SQL_BEGIN_LOG), so the rollups'
 * one watermark stays exact: see rollup_apply. (This needs the ids' sequence to hand out one
 * id at a time, as it does: with CACHE n each session would draw ids in blocks, and a batch
 * committed later could hold lower ids than one committed before it.)
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <stddef.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/clock.h"
#include "base/thread.h"
#include "storage/store_impl.h"
#include "storage/store_queue.h"
#include "storage/store_spill.h"

#define DEFAULT_FLUSH_MS 100
/* SQLite: how long a batch waits for another writer's lock (a policy change, another node's
 * batch, retention) before it is counted lost. Waiting costs no worker anything (the queues
 * hold the rows meanwhile); giving up loses the batch: 250 ms lost one under load between two
 * nodes' writers on one file (unit_store_log, two nodes, load 20). */
#define WRITER_BUSY_TIMEOUT_MS 2000
#define RETRY_MS 1000   /* after a failure, and for the file checks */
#define MAX_BATCH 65536 /* rows per transaction, to bound its length */
/* PostgreSQL keeps a batch's text until its commit (for the spill): fewer rows bound it. */
#define PG_MAX_BATCH 8192
#define SPILL_MEM_MAX (16u << 20) /* spilled bytes kept in memory before the file */
#define REPLAY_MS 500             /* spent sending spilled batches before the queues again */
#define REPLAY_REFUSALS                                                                            \
    3 /* a spilled batch refused this often over a working connection:                             \
         dropped (the database will not take it; the rest must go) */
#define RETENTION_BATCH 5000
#define RETENTION_IDLE_MS 2000 /* between retention steps once caught up */
#define PRUNE_BATCH 100        /* policy versions pruned per transaction */
#define PRUNE_IDLE_MS 5000     /* between version prunes once caught up */
/* PostgreSQL: how often the log's tables for today and tomorrow are made sure of (a day
 * ahead, so many tries fit before a row needs one), and again after a failure. */
#define LOG_DAYS_MS (600 * 1000)
#define LOG_DAYS_RETRY_MS (60 * 1000)
#define DAY_MS (24 * 3600 * 1000LL)
#define SQUID_LINE_MAX 1600 /* longest line format_squid can produce, with margin */
/* Rollup sums wait in memory at most this long before a batch's transaction applies them:
 * a bucket's upsert then covers two seconds of rows, not one batch's few, and readers count
 * at most about that many rows raw (store_rollup_read). */
#define ROLLUP_FLUSH_MS 2000
/* Rows above the watermark rolled up per transaction while catching up (a log from before
 * the rollups, or sums lost with a failed batch): short enough to keep draining the queues. */
#define CATCH_UP_ROWS 20000
#define ROLLUP_KEYS 32768 /* (bucket, key) pairs summed in memory before they must be applied */

/* SQLite: a prepared INSERT of INSERT_ROWS rows that binds the columns in `shared` (bit c for
 * column c of LOG_COLUMNS) once, from the first row, for all its rows (insert_sql). */
struct insert_variant {
    uint32_t shared;
    uint32_t uses; /* chunks inserted with it, halved at each replacement */
    struct sql_stmt *stmt;
};
/* Variants kept per connection: a chunk whose exact one is not among them uses the one that
 * shares the most of its columns, and after VARIANT_MISSES such chunks its own replaces the
 * least used. Preparing one costs about 740,000 instructions (callgrind), what about 70 rows
 * cost to insert: at most one per 1,024 chunks is at most 45 instructions a row. */
#define INSERT_VARIANTS 8
#define VARIANT_MISSES 1024

struct store_log {
    /* Shared with producers and store_log_counters callers. */
    struct store_queue *queue; /* owned */
    _Atomic bool stopping;
    _Atomic uint64_t written;
    _Atomic uint64_t dropped_db;
    _Atomic bool db_ok;
    _Atomic uint64_t db_errors; /* batches refused */
    _Atomic int64_t beat_ms;    /* monotonic, the writer's last wake-up */
    pthread_mutex_t err_lock;   /* guards last_error only; never taken by producers */
    char last_error[128];
    /* Set by store_log_retention_set from any thread, read by the writer. */
    _Atomic int64_t retention_days_set, retention_rows_set;
    _Atomic int64_t version_keep_set, version_keep_days_set;

    /* Writer thread only. */
    pthread_t thread;
    char *db_path;    /* owned */
    bool is_pg;       /* db_path is a PostgreSQL conninfo: no file to watch */
    char *squid_path; /* owned, or NULL */
    char *node_name;  /* owned: every row's node column */
    int flush_ms;
    int64_t retention_days, retention_rows;
    struct store *st;        /* NULL while the database cannot be opened */
    struct sql_stmt *insert; /* SQLite, prepared on st: one row */
    /* SQLite, prepared on st: INSERT_ROWS rows, by the columns they bind once (see
     * insert_variant); [0] binds every column of every row. */
    struct insert_variant variants[INSERT_VARIANTS];
    size_t nvariants;
    unsigned variant_misses; /* chunks since the last replacement that found no exact one */
    struct sql_copy copy;    /* PostgreSQL: the batch's rows, as COPY text */
    size_t copy_sent;        /* bytes of copy already sent in this batch */
    bool spilling;           /* the batch being drained goes to the spill, not the db */
    /* PostgreSQL with a spill: see the top of the file. */
    struct store_spill *spill; /* owned, or NULL */
    struct sql_stmt *deliver;  /* prepared on st: records a batch's sequence number */
    int64_t seq;               /* the last sequence number given to a batch */
    int64_t delivered;         /* the database's last for this writer (read at open) */
    int refusals;              /* of the spill's oldest batch, see REPLAY_REFUSALS */
    dev_t db_dev;
    ino_t db_ino;
    bool failing;
    int64_t next_retry_ms;
    int64_t next_check_ms;
    int64_t next_retention_ms;
    int64_t next_prune_ms;
    int64_t next_days_ms; /* PostgreSQL: see LOG_DAYS_MS */
    int squid_fd;
    dev_t squid_dev;
    ino_t squid_ino;
    char *squid_buf; /* owned, one batch of lines */
    size_t squid_len, squid_cap;
    struct store_syslog *syslog; /* owned, or NULL */
    _Atomic uint64_t syslog_sent, syslog_dropped;
    struct store_hit_tally tally;
    bool batch_ok; /* the current batch's inserts have all succeeded so far */
    /* The rows written since the rollups' watermark, summed (store_rollup.c): those with ids
     * in (rolled_base, rolled_last], every one of them this writer's, where rolled_base is
     * the watermark as this writer last saw it. While behind, the sums in memory are not
     * kept: the rows above the watermark are rolled up from the table (catch-up) instead. */
    struct store_rollup_acc *rollup; /* owned */
    int64_t rolled_base, rolled_last;
    /* PostgreSQL: rows summed whose ids are not known yet (their COPY not sent, or sent and
     * not asked for the last id): they follow rolled_last, see rollup_confirm. */
    int64_t unconfirmed;
    bool rollup_behind;
    int64_t next_rollup_ms; /* monotonic */
};

static void set_error(struct store_log *log, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void set_error(struct store_log *log, const char *fmt, ...)
{
    va_list ap;

    pthread_mutex_lock(&log->err_lock);
    va_start(ap, fmt);
    vsnprintf(log->last_error, sizeof(log->last_error), fmt, ap);
    va_end(ap);
    pthread_mutex_unlock(&log->err_lock);
}

/* ---- Producer side ---- */

bool store_log_push(struct store_log *log, size_t producer, const struct store_access *rec)
{
    return store_queue_push(log->queue, producer, rec);
}

void store_log_counters(struct store_log *log, struct store_log_counters *out)
{
    uint64_t written, dropped_db, queued, dropped_full;

    memset(out, 0, sizeof(*out));
    /* Committed counts first, pushes after: pushes only grow, so pending never underflows. */
    written = atomic_load(&log->written);
    dropped_db = atomic_load(&log->dropped_db);
    store_queue_counts(log->queue, &queued, &dropped_full);
    out->queued = queued;
    out->written = written;
    out->dropped_queue_full = dropped_full;
    out->dropped_db_error = dropped_db;
    out->pending = queued - written - dropped_db;
    out->db_errors = atomic_load(&log->db_errors);
    if (log->spill) {
        store_spill_counts(log->spill, &out->spilled, &out->dropped_spill);
        out->pending -= out->dropped_spill;
    }
    out->syslog_sent = atomic_load(&log->syslog_sent);
    out->syslog_dropped = atomic_load(&log->syslog_dropped);
    out->db_ok = atomic_load(&log->db_ok);
    pthread_mutex_lock(&log->err_lock);
    memcpy(out->last_error, log->last_error, sizeof(out->last_error));
    pthread_mutex_unlock(&log->err_lock);
}

bool store_log_alive(struct store_log *log)
{
    return clock_mono_ms() - atomic_load(&log->beat_ms) < STORE_LOG_STALL_MS;
}

/* ---- Squid native format ---- */

/* Appends s, percent-encoding what would split a whitespace-separated field. */
static char *put_field(char *p, const char *s, size_t max)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t len = strnlen(s, max);

    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];

        if (c <= 0x20 || c == 0x7f) {
            *p++ = '%';
            *p++ = hex[c >> 4];
            *p++ = hex[c & 15];
        } else {
            *p++ = (char)c;
        }
    }
    return p;
}

#define PUT(p, field) put_field((p), (field), sizeof(field))

/* One line of Squid's native access.log format:
 * time.ms elapsed client code/status bytes method URL user hierarchy/peer type */
static size_t format_squid(char *buf, const struct store_access *a)
{
    int64_t end_ms = a->time_ms + a->duration_ms;
    bool tunnel = strncmp(a->method, "CONNECT", sizeof(a->method)) == 0;
    bool denied = a->decision == STORE_DENY || a->decision == STORE_AUTH;
    bool v6 = memchr(a->host, ':', strnlen(a->host, sizeof(a->host))) != NULL;
    const char *code = denied ? "TCP_DENIED" : tunnel ? "TCP_TUNNEL" : "TCP_MISS";
    char *p = buf;

    p += sprintf(p, "%lld.%03d %6u ", (long long)(end_ms / 1000), (int)(end_ms % 1000),
                 (unsigned)a->duration_ms);
    p = PUT(p, a->client);
    p += sprintf(p, " %s/%03u %llu ", code, (unsigned)a->status, (unsigned long long)a->bytes_down);
    p = a->method[0] ? PUT(p, a->method) : (*p++ = '-', p);
    *p++ = ' ';
    if (!tunnel) {
        p = PUT(p, a->scheme[0] ? a->scheme : "http");
        p = stpcpy(p, "://");
    }
    if (v6)
        *p++ = '[';
    p = PUT(p, a->host);
    if (v6)
        *p++ = ']';
    if (tunnel || (a->port != 0 && a->port != 80))
        p += sprintf(p, ":%u", (unsigned)a->port);
    if (!tunnel)
        p = a->path[0] ? PUT(p, a->path) : (*p++ = '/', p);
    *p++ = ' ';
    p = a->user[0] ? PUT(p, a->user) : (*p++ = '-', p);
    if (denied || a->error[0]) {
        p = stpcpy(p, " HIER_NONE/- -\n");
    } else {
        p = stpcpy(p, " HIER_DIRECT/");
        p = PUT(p, a->host);
        p = stpcpy(p, " -\n");
    }
    return (size_t)(p - buf);
}

static void squid_open(struct store_log *log)
{
    struct stat sb;

    log->squid_fd = open(log->squid_path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
    if (log->squid_fd < 0) {
        set_error(log, "%s: %s", log->squid_path, strerror(errno));
        return;
    }
    if (fstat(log->squid_fd, &sb) == 0) {
        log->squid_dev = sb.st_dev;
        log->squid_ino = sb.st_ino;
    }
}

static void squid_add(struct store_log *log, const struct store_access *a)
{
    if (!log->squid_path)
        return;
    if (log->squid_cap - log->squid_len < SQUID_LINE_MAX) {
        size_t cap = log->squid_cap ? log->squid_cap * 2 : 256 * 1024;
        char *nb = realloc(log->squid_buf, cap);

        if (!nb)
            return; /* this line is lost; the database still has the record */
        log->squid_buf = nb;
        log->squid_cap = cap;
    }
    log->squid_len += format_squid(log->squid_buf + log->squid_len, a);
}

/* One write per batch: lines are appended with O_APPEND, so other writers and rotation by
 * rename both stay safe. */
static void squid_flush(struct store_log *log)
{
    size_t off = 0;

    if (!log->squid_path || log->squid_len == 0)
        return;
    if (log->squid_fd < 0)
        squid_open(log);
    while (log->squid_fd >= 0 && off < log->squid_len) {
        ssize_t n = write(log->squid_fd, log->squid_buf + off, log->squid_len - off);

        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            set_error(log, "%s: %s", log->squid_path, n < 0 ? strerror(errno) : "short write");
            break;
        }
        off += (size_t)n;
    }
    log->squid_len = 0;
}

/* ---- Writer: database side ---- */

/* Rows per multi-row INSERT: one statement's start and end (cursors opened and closed on the
 * table and its indexes, the statement's halt) cost about as much as binding and writing a
 * row, so runs of rows share them; a run's remainder goes in one row at a time. It is also
 * the chunk after which the writer gives way (take_run), the longest a worker woken meanwhile
 * may wait for it: 32 rows made that wait twice as long for 340 instructions a row less (of
 * the writer's 20,000; docs/performance.md, "Smaller chunks"). */
#define INSERT_ROWS 16

/* The columns of a row, in the order the INSERT binds them and the COPY sends them: NUM for a
 * number member of struct store_access, TEXT for a char array, each with its column's name as
 * the statements spell it. The node, the same in every row, comes last, outside the list. */
#define LOG_COLUMNS(NUM, TEXT)                                                                     \
    NUM(time_ms, "time_ms")                                                                        \
    TEXT(client, "client")                                                                         \
    TEXT(user, "\"user\"")                                                                         \
    TEXT(method, "method")                                                                         \
    TEXT(scheme, "scheme")                                                                         \
    TEXT(host, "host")                                                                             \
    NUM(port, "port")                                                                              \
    TEXT(path, "path")                                                                             \
    NUM(status, "status")                                                                          \
    NUM(bytes_up, "bytes_up")                                                                      \
    NUM(bytes_down, "bytes_down")                                                                  \
    NUM(duration_ms, "duration_ms")                                                                \
    NUM(decision, "decision")                                                                      \
    NUM(rule_id, "rule_id")                                                                        \
    TEXT(error, "error")                                                                           \
    NUM(policy_version, "policy_version")                                                          \
    TEXT(sni, "sni")                                                                               \
    TEXT(dest, "dest")
#define COLUMN_INDEX(member, name) COLUMN_##member,
enum { LOG_COLUMNS(COLUMN_INDEX, COLUMN_INDEX) INSERT_COLS };
#undef COLUMN_INDEX
#define COLUMN_NAME(member, name) name ", "
#define COLUMN_NAMES LOG_COLUMNS(COLUMN_NAME, COLUMN_NAME) "node"
_Static_assert(INSERT_COLS <= 32, "a variant's mask has a bit per column");
#define INSERT_SQL_MAX (sizeof(COLUMN_NAMES) + 64 + INSERT_ROWS * (INSERT_COLS * 6 + 8))

/* The columns whose value is the same in all n rows of recs, bit c for column c. */
static uint32_t shared_columns(const struct store_access *recs, size_t n)
{
    uint32_t shared = 0;
    size_t r;

#define NUM(m, name)                                                                               \
    for (r = 1; r < n && recs[r].m == recs[0].m; r++)                                              \
        ;                                                                                          \
    shared |= (uint32_t)(r == n) << COLUMN_##m;
#define TEXT(m, name)                                                                              \
    for (r = 1; r < n && strncmp(recs[r].m, recs[0].m, sizeof(recs[0].m)) == 0; r++)               \
        ;                                                                                          \
    shared |= (uint32_t)(r == n) << COLUMN_##m;
    LOG_COLUMNS(NUM, TEXT)
#undef NUM
#undef TEXT
    return shared;
}

/* Row r's parameter for column c: ?2 .. ?(1 + INSERT_COLS) for the first row, and so on; a
 * column in `shared` takes the first row's in every row. */
static int param_of(size_t r, int c, uint32_t shared)
{
    return 2 + (int)((shared >> c) & 1 ? 0 : r) * INSERT_COLS + c;
}

/* "INSERT ... VALUES (?2, ..., ?19, ?1), (?20, ..., ?37, ?1), ..." for rows rows, with the
 * first row's parameter in every row for the columns in shared. */
static void insert_sql(char *sql, size_t rows, uint32_t shared)
{
    char *p = stpcpy(sql, "INSERT INTO access_log(" COLUMN_NAMES ") VALUES ");

    for (size_t r = 0; r < rows; r++) {
        for (int c = 0; c < INSERT_COLS; c++)
            p += sprintf(p, "%s?%d", c ? ", " : r ? ", (" : "(", param_of(r, c, shared));
        p = stpcpy(p, ", ?1)");
    }
}

static int prepare_insert(struct store_log *log, size_t rows, uint32_t shared,
                          struct sql_stmt **out, char *err, size_t errlen)
{
    char sql[INSERT_SQL_MAX];

    insert_sql(sql, rows, shared);
    if (store_prepare(log->st, sql, out, err, errlen) < 0)
        return -1;
    /* Bindings outlive sql_reset: the node is bound for the statement's life. */
    sql_bind_text(*out, 1, log->node_name);
    return 0;
}

/* The statement for a chunk of INSERT_ROWS rows whose columns in want are the same in every
 * row: its own if kept (or prepared now while there is room or VARIANT_MISSES chunks have
 * gone without theirs), else the kept one that shares the most of them and no other. */
static struct insert_variant *insert_variant(struct store_log *log, uint32_t want)
{
    struct insert_variant *best = &log->variants[0], *least = NULL, *slot;
    struct sql_stmt *s;
    char err[128];

    for (size_t i = 0; i < log->nvariants; i++) {
        struct insert_variant *v = &log->variants[i];

        if (v->shared == want) {
            v->uses++;
            return v;
        }
        if ((v->shared & ~want) == 0 &&
            __builtin_popcount(v->shared) > __builtin_popcount(best->shared))
            best = v;
        if (i > 0 && (!least || v->uses < least->uses))
            least = v;
    }
    if (log->nvariants < INSERT_VARIANTS || ++log->variant_misses >= VARIANT_MISSES) {
        slot = log->nvariants < INSERT_VARIANTS ? &log->variants[log->nvariants] : least;
        /* A failed prepare (out of memory) leaves the kept ones; the chunk uses best. */
        if (prepare_insert(log, INSERT_ROWS, want, &s, err, sizeof(err)) == 0) {
            if (slot == &log->variants[log->nvariants])
                log->nvariants++;
            else
                sql_finalize(slot->stmt);
            for (size_t i = 0; i < log->nvariants; i++)
                log->variants[i].uses /= 2;
            *slot = (struct insert_variant){.shared = want, .uses = 1, .stmt = s};
            log->variant_misses = 0;
            return slot;
        }
    }
    best->uses++;
    return best;
}

/* With a spill: the last batch number the database holds for this writer, and the upsert
 * each batch records its own with. */
static int delivery_open(struct store_log *log, char *err, size_t errlen)
{
    struct sql_stmt *s;
    int rc;

    if (store_prepare(log->st, "SELECT seq FROM log_delivery WHERE writer = ?1", &s, err, errlen) <
        0)
        return -1;
    sql_bind_text(s, 1, store_spill_id(log->spill));
    rc = sql_step(s);
    log->delivered = rc == SQL_ROW ? sql_col_int64(s, 0) : 0;
    sql_finalize(s);
    if (rc != SQL_ROW && rc != SQL_DONE)
        return store_sql_err(log->st, err, errlen, "log_delivery");
    if (log->seq < log->delivered)
        log->seq = log->delivered;
    if (store_prepare(log->st,
                      "INSERT INTO log_delivery(writer, seq) VALUES (?1, ?2)"
                      " ON CONFLICT(writer) DO UPDATE SET seq = excluded.seq",
                      &log->deliver, err, errlen) < 0)
        return -1;
    sql_bind_text(log->deliver, 1, store_spill_id(log->spill));
    sql_defer(log->deliver);
    return 0;
}

/* Inside a batch's transaction: records its number. 0 or -1. */
static int deliver(struct store_log *log, int64_t seq)
{
    int rc;

    sql_bind_int64(log->deliver, 2, seq);
    rc = sql_step(log->deliver);
    sql_reset(log->deliver);
    return rc == SQL_DONE ? 0 : -1;
}

static void db_close(struct store_log *log)
{
    sql_finalize(log->insert);
    for (size_t i = 0; i < log->nvariants; i++)
        sql_finalize(log->variants[i].stmt);
    log->nvariants = 0;
    log->variant_misses = 0;
    sql_finalize(log->deliver);
    log->insert = log->deliver = NULL;
    store_close(log->st);
    log->st = NULL;
}

/* PostgreSQL: today's and tomorrow's tables of the log (store_log_days_ensure); a failure
 * costs nothing now (rows go to the default table) and is tried again soon. */
static void log_days(struct store_log *log, int64_t now)
{
    log->next_days_ms =
        now + (store_log_days_ensure(log->st, now, now + DAY_MS, NULL, 0) < 0 ? LOG_DAYS_RETRY_MS
                                                                              : LOG_DAYS_MS);
}

static int db_open(struct store_log *log, char *err, size_t errlen)
{
    struct stat sb = {0};

    log->st =
        store_open_timeout(log->db_path, STORE_FOR_LOG_WRITER, WRITER_BUSY_TIMEOUT_MS, err, errlen);
    if (!log->st)
        return -1;
    log->st->no_policy_lock = true;
    /* PostgreSQL takes the rows as COPY (copy_row): no INSERT to prepare. */
    if (!log->is_pg) {
        if (prepare_insert(log, 1, 0, &log->insert, err, errlen) < 0 ||
            prepare_insert(log, INSERT_ROWS, 0, &log->variants[0].stmt, err, errlen) < 0) {
            db_close(log);
            return -1;
        }
        log->nvariants = 1;
        if (stat(log->db_path, &sb) < 0) {
            store_errf(err, errlen, "%s: %s", log->db_path, strerror(errno));
            db_close(log);
            return -1;
        }
    }
    log->db_dev = sb.st_dev;
    log->db_ino = sb.st_ino;
    if (log->spill && delivery_open(log, err, errlen) < 0) {
        db_close(log);
        return -1;
    }
    if (log->is_pg)
        log_days(log, clock_wall_ms());
    return 0;
}

/* A connection keeps writing into a file that was deleted or replaced: compare what the
 * path names now with what was opened. The same check reopens a rotated Squid log. */
static void check_files(struct store_log *log)
{
    struct stat sb;

    if (log->st && !log->is_pg &&
        (stat(log->db_path, &sb) < 0 || sb.st_dev != log->db_dev || sb.st_ino != log->db_ino)) {
        char err[128];

        set_error(log, "%s: database file removed or replaced; reopening", log->db_path);
        db_close(log);
        /* Reopen now (creating a fresh schema) rather than at the next batch, so records
         * stop going to the unlinked file as soon as possible. */
        if (db_open(log, err, sizeof(err)) < 0) {
            set_error(log, "%s", err);
            atomic_store(&log->db_ok, false);
            log->failing = true;
            log->next_retry_ms = clock_wall_ms() + RETRY_MS;
        }
    }
    if (log->squid_fd >= 0 && (stat(log->squid_path, &sb) < 0 || sb.st_dev != log->squid_dev ||
                               sb.st_ino != log->squid_ino)) {
        close(log->squid_fd);
        log->squid_fd = -1; /* reopened (created) by the next flush */
    }
}

/* Binds a's columns as parameters base + column, but for those in skip. Bound in place: the
 * queue's scratch records stay untouched until store_queue_drain_runs's callback returns,
 * after the step. */
static void bind_row(struct sql_stmt *s, int base, const struct store_access *a, uint32_t skip)
{
#define NUM(m, name)                                                                               \
    if (!(skip & (1u << COLUMN_##m)))                                                              \
        sql_bind_int64(s, base + COLUMN_##m, (int64_t)a->m);
#define TEXT(m, name)                                                                              \
    if (!(skip & (1u << COLUMN_##m)))                                                              \
        sql_bind_field(s, base + COLUMN_##m, a->m, sizeof(a->m));
    LOG_COLUMNS(NUM, TEXT)
#undef NUM
#undef TEXT
}

/* Inserts the n rows of a through s, a statement of n rows binding the columns in shared
 * once (from a's first row: the same in all). 0 or -1. */
static int insert_rows(struct sql_stmt *s, uint32_t shared, const struct store_access *a, size_t n)
{
    int rc;

    for (size_t r = 0; r < n; r++)
        bind_row(s, param_of(r, 0, 0), &a[r], r ? shared : 0);
    rc = sql_step(s);
    sql_reset(s);
    return rc == SQL_DONE ? 0 : -1;
}

/* PostgreSQL takes a batch as COPY (a fraction of an INSERT's cost a row): the columns of
 * insert_sql, in its order. */
static const char copy_sql[] = "COPY access_log(" COLUMN_NAMES ") FROM STDIN";

/* PostgreSQL: one row into the batch's COPY text (sent by copy_flush). */
static void copy_row(struct store_log *log, const struct store_access *a)
{
    struct sql_copy *c = &log->copy;

#define NUM(m, name) sql_copy_int(c, (int64_t)a->m);
#define TEXT(m, name) sql_copy_text(c, a->m, sizeof(a->m));
    LOG_COLUMNS(NUM, TEXT)
#undef NUM
#undef TEXT
    sql_copy_text(c, log->node_name, strlen(log->node_name) + 1);
    sql_copy_row_end(c);
}

/* PostgreSQL: sends the batch's rows not sent yet, as one COPY; the text stays (for the
 * spill, should the batch fail). 0 or -1. */
static int copy_flush(struct store_log *log)
{
    int rc;

    if (log->copy.oom) {
        snprintf(log->st->pg_err, sizeof(log->st->pg_err), "COPY: out of memory");
        return -1;
    }
    rc = sql_copy_send_text(log->st, log->copy.buf + log->copy_sent, log->copy.len - log->copy_sent,
                            copy_sql);
    log->copy_sent = log->copy.len;
    return rc;
}

/* Empties the batch's COPY text. */
static void copy_reset(struct store_log *log)
{
    log->copy.len = log->copy_sent = 0;
    log->copy.oom = false;
}

/* Counts a row for rule_id (none for 0), flushing the tally when it is full. 0 or -1. */
static int tally(struct store_log *log, int32_t rule_id, int64_t hits, int64_t undecided)
{
    if (rule_id == 0 || store_tally_add(&log->tally, rule_id, hits, undecided))
        return 0;
    /* PostgreSQL runs nothing else while a COPY is open: send the rows first. */
    if ((log->is_pg && copy_flush(log) < 0) || store_tally_flush(log->st, &log->tally, NULL, 0) < 0)
        return -1;
    store_tally_add(&log->tally, rule_id, hits, undecided);
    return 0;
}

/* Drops the sums in memory: the rows above the watermark are rolled up from the table. */
static void rollup_fall_behind(struct store_log *log)
{
    store_rollup_clear(log->rollup);
    log->rollup_behind = true;
    log->unconfirmed = 0;
}

/* PostgreSQL, once the COPY holding every row summed is sent: the ids those rows took (the
 * last ones handed out, consecutive under the log writers' lock) must follow rolled_last,
 * else another node's rows lie in between and the sums are dropped (as rollup_add does row
 * by row on SQLite). 0 or -1. */
static int rollup_confirm(struct store_log *log)
{
    int64_t last;

    if (log->rollup_behind || log->unconfirmed == 0)
        return 0;
    if ((last = sql_last_log_id(log->st)) <= 0)
        return -1;
    if (last - log->unconfirmed != log->rolled_last)
        rollup_fall_behind(log);
    else
        log->rolled_last = last;
    log->unconfirmed = 0;
    return 0;
}

/* Inside a transaction: applies the sums in memory and moves the watermark to rolled_last,
 * if they follow the watermark without a gap. Another node's rows in between (their ids
 * interleave with this writer's, batch by batch) or another writer's catch-up (it moved
 * the watermark over rows these sums hold): the sums are dropped and the rows above the
 * watermark rolled up from the table instead, so no row counts twice or not at all.
 * 0 or -1. */
static int rollup_apply(struct store_log *log)
{
    int64_t mark = store_rollup_watermark(log->st, NULL, 0);

    if (mark < 0)
        return -1;
    if (mark != log->rolled_base) {
        rollup_fall_behind(log);
        return 0;
    }
    if (store_rollup_flush(log->st, log->rollup, log->rolled_last, NULL, 0) < 0)
        return -1;
    log->rolled_base = log->rolled_last;
    return 0;
}

/* id: the row's id, or the one it will take (PostgreSQL: checked by rollup_confirm, which drops
 * the sums when it differs). */
static struct store_rollup_row rollup_row(const struct store_log *log, const struct store_access *a,
                                          int64_t id)
{
    return (struct store_rollup_row){
        .id = id,
        .time_ms = a->time_ms,
        .host = a->host,
        .client = a->client,
        .user = a->user,
        .node = log->node_name,
        .rule_id = a->rule_id,
        .decision = a->decision,
        .bytes_up = (int64_t)a->bytes_up,
        .bytes_down = (int64_t)a->bytes_down,
    };
}

/* Adds a's row (id id) to the sums in memory, applying them first when they are full. */
static int rollup_add(struct store_log *log, const struct store_access *a, int64_t id)
{
    struct store_rollup_row r = rollup_row(log, a, id);

    if (log->rollup_behind)
        return 0;
    if (id != log->rolled_last + 1) {
        /* Rows of another node since this writer's last: the sums no longer run unbroken. */
        rollup_fall_behind(log);
        return 0;
    }
    if (!store_rollup_add(log->rollup, &r, 1)) {
        if (rollup_apply(log) < 0)
            return -1;
        if (log->rollup_behind)
            return 0;
        store_rollup_add(log->rollup, &r, 1);
    }
    log->rolled_last = id;
    return 0;
}

/* PostgreSQL: adds a's row, whose id is not known yet, to the sums in memory. When they are
 * full, the rows before it are sent and their ids checked, and the sums applied first. */
static int rollup_add_pg(struct store_log *log, const struct store_access *a)
{
    /* The id it takes if no other node's rows come in between (rollup_confirm checks). */
    struct store_rollup_row r = rollup_row(log, a, log->rolled_last + log->unconfirmed + 1);

    if (log->rollup_behind)
        return 0;
    if (!store_rollup_add(log->rollup, &r, 1)) {
        if (copy_flush(log) < 0 || rollup_confirm(log) < 0)
            return -1;
        /* Sums dropped by rollup_confirm must not be applied: that would move the watermark
         * over the rows they held, which then counted nowhere. */
        if (!log->rollup_behind && rollup_apply(log) < 0)
            return -1;
        if (log->rollup_behind)
            return 0;
        r.id = log->rolled_last + log->unconfirmed + 1;
        store_rollup_add(log->rollup, &r, 1);
    }
    log->unconfirmed++;
    return 0;
}

/* Inside the batch's transaction: a catch-up step while behind, else the sums in memory
 * once they are due (or now, with force). 0 or -1. */
static int rollup_step(struct store_log *log, bool force)
{
    int64_t now = clock_mono_ms();
    bool done;

    if (!log->rollup_behind) {
        if (store_rollup_empty(log->rollup) || (!force && now < log->next_rollup_ms))
            return 0;
        if (rollup_apply(log) < 0)
            return -1;
    }
    if (log->rollup_behind) {
        if (store_rollup_catch_up(log->st, log->rollup, CATCH_UP_ROWS, &done, &log->rolled_base,
                                  NULL, 0) < 0)
            return -1;
        log->rolled_last = log->rolled_base;
        log->rollup_behind = !done;
    }
    log->next_rollup_ms = now + ROLLUP_FLUSH_MS;
    return 0;
}

/* Between batches: a transaction of its own for a catch-up step or for sums in memory that
 * are due (or all of them, with force: retention deletes only rows the rollups hold). */
static void rollup_idle(struct store_log *log, bool force)
{
    if (!log->st || log->failing ||
        (!log->rollup_behind &&
         (store_rollup_empty(log->rollup) || (!force && clock_mono_ms() < log->next_rollup_ms))))
        return;
    if (store_begin(log->st, NULL, 0) < 0)
        return;
    if (rollup_step(log, force) < 0 || store_commit(log->st, NULL, 0) < 0) {
        store_rollback(log->st);
        rollup_fall_behind(log);
    }
}

/* PostgreSQL's part of take_run: the rows join the batch's COPY text, sent once at the
 * batch's end (write_batch), and are summed before their ids are known (rollup_add_pg). A
 * COPY per run of the queue (at most 64 rows) with a round trip for its last id cost the
 * server more CPU a row: 0.62 against 0.44 CPU s per 100,000 rows, one producer at load 5-8
 * (docs/performance.md, "PostgreSQL: the server's CPU per row"). */
static void take_run_pg(struct store_log *log, const struct store_access *recs, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        const struct store_access *a = &recs[i];
        bool db = log->batch_ok && !log->spilling;

        if (db && rollup_add_pg(log, a) < 0)
            db = log->batch_ok = false;
        /* With a spill the text is kept even once the batch failed: it is what is spilled. */
        if (db || log->spill || log->spilling)
            copy_row(log, a);
        if (db && (tally(log, a->rule_id, 1, 0) < 0 || tally(log, a->undecided_rule_id, 0, 1) < 0))
            log->batch_ok = false;
        squid_add(log, a);
        if (log->syslog)
            store_syslog_add(log->syslog, a, log->node_name);
    }
}

/* SQLite: inserts n rows of recs (one INSERT_ROWS-row statement, or n one-row ones), then
 * counts and sums them and formats their Squid lines. After the first failed insert the rest
 * is only taken (and counted lost by the caller); Squid lines are formatted either way. */
static void take_rows(struct store_log *log, const struct store_access *recs, size_t n)
{
    int64_t first_id;
    size_t i = 0;

    if (n == INSERT_ROWS) {
        if (log->batch_ok) {
            struct insert_variant *v = insert_variant(log, shared_columns(recs, n));

            if (insert_rows(v->stmt, v->shared, recs, INSERT_ROWS) < 0)
                log->batch_ok = false;
        }
        i = n;
    }
    for (; log->batch_ok && i < n; i++)
        if (insert_rows(log->insert, 0, recs + i, 1) < 0)
            log->batch_ok = false;
    /* The rows took consecutive ids, the last of them the newest. (No database when the batch
     * is only being taken, to be dropped.) */
    first_id = log->batch_ok ? sql_last_log_id(log->st) - (int64_t)n + 1 : 0;
    for (i = 0; i < n; i++) {
        if (log->batch_ok && (tally(log, recs[i].rule_id, 1, 0) < 0 ||
                              tally(log, recs[i].undecided_rule_id, 0, 1) < 0 ||
                              rollup_add(log, &recs[i], first_id + (int64_t)i) < 0))
            log->batch_ok = false;
        squid_add(log, &recs[i]);
        if (log->syslog)
            store_syslog_add(log->syslog, &recs[i], log->node_name);
    }
}

/* store_queue_drain_runs's callback: n records of the batch, next to each other in a ring.
 *
 * SQLite: the rows go INSERT_ROWS at a time, each chunk inserted and summed before the next,
 * and between chunks the writer yields its CPU. A batch is 100 ms of traffic (thousands of
 * rows, milliseconds of work); a worker on the same CPU (an admin may pin the proxy to one)
 * that woke meanwhile could wait for all of it: that wait was the p99 of keep-alive requests
 * (docs/performance.md, "Tail latency"). Now it waits for one chunk at most (a shorter
 * scheduler slice for the worker did not shorten that wait, measured). The yield changes no
 * share of the CPU: with nothing else ready it returns at once, a system call per INSERT_ROWS
 * rows. */
static void take_run(void *arg, const struct store_access *recs, size_t n)
{
    struct store_log *log = arg;

    if (log->is_pg) {
        take_run_pg(log, recs, n);
        return;
    }
    for (size_t i = 0, k; i < n; i += k) {
        k = n - i >= INSERT_ROWS ? INSERT_ROWS : n - i;
        take_rows(log, recs + i, k);
        sched_yield();
    }
}

/* Takes up to max records out of the queues. With ok, inserts each (stopping the inserts
 * at the first failure, *ok turns false); always formats Squid lines. Returns records
 * taken. */
static size_t drain(struct store_log *log, size_t max, bool *ok)
{
    size_t n;

    log->batch_ok = *ok;
    n = store_queue_drain_runs(log->queue, max, take_run, log);
    *ok = log->batch_ok;
    return n;
}

/* Counts a failed attempt and schedules the retry. Rolls back the open transaction, if any. */
static void fail_db(struct store_log *log, const char *why)
{
    atomic_fetch_add(&log->db_errors, 1);
    atomic_store(&log->db_ok, false);
    if (log->st) {
        set_error(log, "%s: %s: %s", store_name(log->st), why, sql_errmsg(log->st));
        store_rollback(log->st);
    }
    log->failing = true;
    log->next_retry_ms = clock_wall_ms() + RETRY_MS;
    /* The sums in memory may hold rows that are now gone, or have been applied in the
     * transaction just undone: start again from the watermark. */
    rollup_fall_behind(log);
    /* A lock held by someone else passes; anything else may be a broken connection or a
     * file that is gone: start from a fresh connection next time. */
    if (log->st && sql_conn_lost(log->st))
        db_close(log);
}

/* Counts a lost batch, as fail_db. */
static void fail_batch(struct store_log *log, size_t rows, const char *why)
{
    atomic_fetch_add(&log->dropped_db, rows);
    fail_db(log, why);
}

/* With a spill: the batch's text (rows rows) becomes the spill's newest batch. */
static void spill_batch(struct store_log *log, size_t rows)
{
    char err[160];

    if (rows == 0)
        return;
    if (log->copy.oom) {
        atomic_fetch_add(&log->dropped_db, rows);
        set_error(log, "log spill: out of memory");
    } else if (!store_spill_add(log->spill, ++log->seq, log->copy.buf, log->copy.len, rows, err,
                                sizeof(err))) {
        set_error(log, "%s", err);
    }
    copy_reset(log);
}

/* A failed batch: spilled (with a spill) or counted lost, and the retry scheduled. */
static void batch_failed(struct store_log *log, size_t rows, const char *why)
{
    if (log->spill) {
        /* The failure counted first: whoever sees the batch in the spill (its counts, /metrics)
         * sees the error that put it there. fail_db leaves the batch's text (log->copy). */
        fail_db(log, why);
        spill_batch(log, rows);
    } else {
        fail_batch(log, rows, why);
    }
}

/* The column of rule_id in a COPY row (copy_sql's order, from 0). */
#define RULE_ID_COL COLUMN_rule_id

/* Inside a transaction: the rule hits of spilled rows, read from their text (a regex's
 * undecided counts are not in it: those of spilled rows are not kept). 0 or -1. */
static int tally_text(struct store_log *log, const char *text, size_t len)
{
    const char *p = text, *end = text + len;

    store_tally_reset(&log->tally);
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *q = p;

        if (!nl)
            nl = end;
        for (int tab = 0; q && tab < RULE_ID_COL; tab++) {
            q = memchr(q, '\t', (size_t)(nl - q));
            q = q ? q + 1 : NULL;
        }
        if (q) {
            long id = strtol(q, NULL, 10);

            if (id > 0 && id <= INT32_MAX && !store_tally_add(&log->tally, (int32_t)id, 1, 0)) {
                if (store_tally_flush(log->st, &log->tally, NULL, 0) < 0)
                    return -1;
                store_tally_add(&log->tally, (int32_t)id, 1, 0);
            }
        }
        p = nl + 1;
    }
    return store_tally_flush(log->st, &log->tally, NULL, 0);
}

/* One spilled batch in a transaction of its own, with its number. 0 or -1 (the caller's
 * fail_db rolls back). */
static int send_spilled(struct store_log *log, int64_t seq, const char *text, size_t len)
{
    if (store_begin(log->st, NULL, 0) < 0 || sql_copy_send_text(log->st, text, len, copy_sql) < 0 ||
        tally_text(log, text, len) < 0 || deliver(log, seq) < 0 ||
        store_commit(log->st, NULL, 0) < 0)
        return -1;
    /* Their sums are in no rollup yet: rolled up from the table (catch-up), with whatever
     * the sums in memory held. */
    rollup_fall_behind(log);
    return 0;
}

/* Sends the spilled batches, oldest first, for at most REPLAY_MS (the queues wait); a batch
 * the database already holds (by its number: its commit's answer was lost) is only removed.
 * Stops at the first failure, which schedules the retry. */
static void replay(struct store_log *log)
{
    char err[160] = "";
    int64_t seq, until = clock_mono_ms() + REPLAY_MS;
    const char *text;
    size_t len;
    uint64_t rows;

    if (!log->st && db_open(log, err, sizeof(err)) < 0) {
        set_error(log, "%s", err);
        fail_db(log, "open");
        return;
    }
    while (clock_mono_ms() < until &&
           store_spill_peek(log->spill, &seq, &text, &len, &rows, err, sizeof(err))) {
        if (seq > log->delivered && send_spilled(log, seq, text, len) < 0) {
            bool refused = !sql_conn_lost(log->st);

            fail_db(log, "resend");
            if (refused && ++log->refusals >= REPLAY_REFUSALS) {
                set_error(log, "log spill: batch %lld refused %d times, dropped", (long long)seq,
                          REPLAY_REFUSALS);
                store_spill_drop(log->spill);
                log->refusals = 0;
            }
            return;
        }
        if (seq > log->delivered)
            log->delivered = seq;
        store_spill_pop(log->spill);
        log->refusals = 0;
        atomic_fetch_add(&log->written, rows);
    }
    if (err[0])
        set_error(log, "%s", err);
    if (log->failing) {
        log->failing = false;
        atomic_store(&log->db_ok, true);
    }
}

/* Writes one batch of at most MAX_BATCH rows (PG_MAX_BATCH on PostgreSQL). Returns rows
 * taken from the queues. */
static size_t write_batch(struct store_log *log)
{
    char err[128];
    size_t n, max = log->is_pg ? PG_MAX_BATCH : MAX_BATCH;
    bool ok = true;
    bool waiting = log->failing && clock_wall_ms() < log->next_retry_ms;

    if (log->spill && (waiting || !store_spill_empty(log->spill))) {
        /* The database is away, or batches wait for it: this one goes behind them. */
        copy_reset(log);
        log->spilling = true;
        n = drain(log, max, &ok);
        log->spilling = false;
        spill_batch(log, n);
        if (!waiting)
            replay(log);
        return n;
    }
    if (waiting) {
        /* Keep producers flowing while the database is away. */
        ok = false;
        n = drain(log, max, &ok);
        atomic_fetch_add(&log->dropped_db, n);
        return n;
    }
    copy_reset(log);
    if (!log->st && db_open(log, err, sizeof(err)) < 0) {
        set_error(log, "%s", err);
        ok = false;
        n = drain(log, max, &ok);
        batch_failed(log, n, "open");
        return n;
    }
    if (store_begin(log->st, NULL, 0) < 0) {
        ok = false;
        n = drain(log, max, &ok);
        batch_failed(log, n, "begin");
        return n;
    }
    store_tally_reset(&log->tally);
    n = drain(log, max, &ok);
    if (ok && log->is_pg)
        ok = copy_flush(log) == 0 && rollup_confirm(log) == 0;
    if (ok && log->spill && n > 0)
        ok = deliver(log, log->seq + 1) == 0;
    if (ok)
        ok = store_tally_flush(log->st, &log->tally, NULL, 0) == 0 &&
             rollup_step(log, atomic_load(&log->stopping)) == 0;
    if (!ok || store_commit(log->st, NULL, 0) < 0) {
        batch_failed(log, n, "insert");
        return n;
    }
    if (log->spill && n > 0)
        log->delivered = ++log->seq;
    atomic_fetch_add(&log->written, n);
    if (log->failing) {
        log->failing = false;
        atomic_store(&log->db_ok, true);
    }
    return n;
}

static void housekeeping(struct store_log *log)
{
    int64_t now = clock_wall_ms();
    int64_t deleted, days, rows;

    if (now >= log->next_check_ms) {
        check_files(log);
        log->next_check_ms = now + RETRY_MS;
    }
    if (log->st && !log->failing && now >= log->next_prune_ms) {
        char err[256];
        int64_t keep = atomic_load(&log->version_keep_set), pruned = 0, freed = 0;

        if (keep > 0) {
            pruned = store_version_prune(log->st, keep, atomic_load(&log->version_keep_days_set),
                                         PRUNE_BATCH, err, sizeof(err));
            freed = store_version_gc(log->st, RETENTION_BATCH, err, sizeof(err));
        }
        /* A locked database or a full disk: the next round tries again, relaying goes on.
         * Still behind: go on at once, in steps as short as a retention step. */
        log->next_prune_ms =
            now + (pruned == PRUNE_BATCH || freed == RETENTION_BATCH ? 0 : PRUNE_IDLE_MS);
    }
    if (log->is_pg && log->st && !log->failing && now >= log->next_days_ms)
        log_days(log, now);
    days = atomic_load(&log->retention_days_set);
    rows = atomic_load(&log->retention_rows_set);
    if (days != log->retention_days || rows != log->retention_rows) {
        log->retention_days = days;
        log->retention_rows = rows;
        log->next_retention_ms = 0; /* new limits: the next step runs now */
    }
    if ((log->retention_days <= 0 && log->retention_rows <= 0) || !log->st || log->failing ||
        now < log->next_retention_ms) {
        rollup_idle(log, false);
        return;
    }
    rollup_idle(log, true);
    deleted =
        store_retention_step(log->st, log->retention_days, log->retention_rows, RETENTION_BATCH);
    /* Still behind: go on after the next batch instead of waiting. */
    log->next_retention_ms = now + (deleted == RETENTION_BATCH ? 0 : RETENTION_IDLE_MS);
}

static void syslog_flush(struct store_log *log);

static void *writer_main(void *arg)
{
    struct store_log *log = arg;

    /* Named for per-thread figures (top -H, perf sched). */
    pthread_setname_np(pthread_self(), "px-log-writer");
    for (;;) {
        /* Read before draining: everything pushed before store_log_stop is then written. */
        bool stopping = atomic_load(&log->stopping);

        if (stopping)
            log->next_retry_ms = 0; /* one last attempt to write what is left */

        atomic_store(&log->beat_ms, clock_mono_ms());
        if (!stopping)
            store_queue_wait(log->queue, log->flush_ms);
        while (store_queue_len(log->queue) > 0) {
            write_batch(log);
            squid_flush(log);
            syslog_flush(log);
            if (!stopping && store_queue_len(log->queue) < MAX_BATCH)
                break; /* the rest waits for the next wake-up, with the next arrivals */
        }
        /* Spilled batches go out also when nothing new arrives. */
        if (log->spill && !store_spill_empty(log->spill) &&
            !(log->failing && clock_wall_ms() < log->next_retry_ms))
            replay(log);
        if (stopping) {
            rollup_idle(log, true); /* the sums still in memory */
            break;
        }
        syslog_flush(log); /* a TCP collector back: what waited goes */
        housekeeping(log);
    }
    return NULL;
}

static void syslog_flush(struct store_log *log)
{
    uint64_t sent, dropped;

    if (!log->syslog)
        return;
    store_syslog_flush(log->syslog);
    store_syslog_counts(log->syslog, &sent, &dropped);
    atomic_store(&log->syslog_sent, sent);
    atomic_store(&log->syslog_dropped, dropped);
}

/* ---- Start and stop ---- */

static void log_free(struct store_log *log)
{
    if (!log)
        return;
    db_close(log);
    store_spill_close(log->spill); /* what is still in memory goes to the file */
    store_queue_free(log->queue);
    if (log->squid_fd >= 0)
        close(log->squid_fd);
    pthread_mutex_destroy(&log->err_lock);
    free(log->squid_buf);
    store_syslog_free(log->syslog);
    sql_copy_free(&log->copy);
    free(log->db_path);
    free(log->squid_path);
    free(log->node_name);
    store_rollup_free(log->rollup);
    free(log);
}

struct store_log *store_log_start(const struct store_log_opts *opts, char *err, size_t errlen)
{
    struct store_log *log;

    if (!opts->db_path || opts->producers == 0) {
        store_errf(err, errlen, "store_log_start: db_path and producers are required");
        return NULL;
    }
    log = calloc(1, sizeof(*log));
    if (!log) {
        store_errf(err, errlen, "store_log_start: out of memory");
        return NULL;
    }
    log->squid_fd = -1;
    pthread_mutex_init(&log->err_lock, NULL);
    log->flush_ms = opts->flush_interval_ms > 0 ? opts->flush_interval_ms : DEFAULT_FLUSH_MS;
    log->retention_days = opts->retention_days;
    log->retention_rows = opts->retention_rows;
    atomic_store(&log->retention_days_set, opts->retention_days);
    atomic_store(&log->retention_rows_set, opts->retention_rows);
    atomic_store(&log->version_keep_set, opts->version_keep);
    atomic_store(&log->version_keep_days_set, opts->version_keep_days);
    log->db_path = strdup(opts->db_path);
    log->is_pg = store_path_is_pg(opts->db_path);
    log->squid_path = opts->squid_log_path ? strdup(opts->squid_log_path) : NULL;
    log->node_name = strdup(opts->node_name ? opts->node_name : "");
    log->rollup = store_rollup_new(ROLLUP_KEYS);
    /* Whatever the last writer left unapplied is rolled up from the table first. */
    log->rollup_behind = true;
    if (!log->db_path || (opts->squid_log_path && !log->squid_path) || !log->node_name ||
        !log->rollup) {
        store_errf(err, errlen, "store_log_start: out of memory");
        goto fail;
    }
    log->queue = store_queue_new(opts->producers, opts->queue_capacity, err, errlen);
    if (!log->queue)
        goto fail;
    if (log->is_pg && opts->spill_path) {
        log->spill =
            store_spill_open(opts->spill_path, SPILL_MEM_MAX, opts->spill_max_bytes, err, errlen);
        if (!log->spill)
            goto fail;
        log->seq = store_spill_last_seq(log->spill); /* db_open: or the database's, if later */
    }
    /* Open once here so a bad path is reported at start, not only in the counters. */
    if (db_open(log, err, errlen) < 0)
        goto fail;
    if (log->squid_path) {
        squid_open(log);
        if (log->squid_fd < 0) {
            store_errf(err, errlen, "%s: %s", log->squid_path, strerror(errno));
            goto fail;
        }
    }
    if (opts->syslog_target) {
        log->syslog = store_syslog_new(opts->syslog_target, log->node_name, err, errlen);
        if (!log->syslog)
            goto fail;
    }
    atomic_store(&log->db_ok, true);
    atomic_store(&log->beat_ms, clock_mono_ms());
    log->next_check_ms = clock_wall_ms() + RETRY_MS;
    if ((errno = pthread_create(&log->thread, NULL, writer_main, log)) != 0) {
        store_errf(err, errlen, "store_log_start: pthread_create: %s", strerror(errno));
        goto fail;
    }
    return log;
fail:
    log_free(log);
    return NULL;
}

void store_log_retention_set(struct store_log *log, int64_t days, int64_t rows)
{
    atomic_store(&log->retention_days_set, days);
    atomic_store(&log->retention_rows_set, rows);
    store_queue_wake(log->queue);
}

void store_log_versions_set(struct store_log *log, int64_t keep, int64_t keep_days)
{
    atomic_store(&log->version_keep_set, keep);
    atomic_store(&log->version_keep_days_set, keep_days);
    store_queue_wake(log->queue);
}

bool store_log_halt(struct store_log *log, int bound_ms)
{
    if (!log)
        return true;
    atomic_store(&log->stopping, true);
    store_queue_wake(log->queue);
    if (bound_ms <= 0)
        return pthread_join(log->thread, NULL) == 0;
    return thread_join_within(log->thread, bound_ms);
}

void store_log_free(struct store_log *log)
{
    log_free(log);
}

void store_log_stop(struct store_log *log)
{
    store_log_halt(log, 0);
    log_free(log);
}
