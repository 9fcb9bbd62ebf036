/* store_bench: figures for storage/: (1) sustained access-log throughput through the real
 * writer thread, (2) database size per million rows, (3) admin query latency over those
 * rows spread across 24 hours, (4) imports of 100,000 rules and of a 100,000-entry list
 * (store_rules_replace, store_list_replace: one transaction each). Prints tables; never passes or
 * fails on timing.
 *
 * usage: store_bench [OUTDIR]   (default /tmp; files store_bench_*.db are replaced)
 *        store_bench --db CONNINFO [OUTDIR]   (1) only, into that PostgreSQL database (it
 *        adds rows to its access_log) and, in the same run, into SQLite in OUTDIR
 * (1) prints, beside rows/s, the CPU seconds per 100,000 rows committed of the writer thread
 * and (PostgreSQL) of the server process serving its connection, from /proc: a figure the
 * machine's load moves far less than rows/s (the server must run on this machine).
 *
 * store_bench scale N [OUTDIR]: N synthetic rows over 30 days through the real writer (which
 * keeps the rollups as it writes; about 200 bytes a row), then the dashboard's queries
 * (totals, series, top lists over 24 h and 30 days, from the rollups) and log searches over
 * them, and for reference the 24 h totals counted from the raw rows. store_bench scale-queries
 * [OUTDIR] runs the queries again over what a scale run left.
 *
 * store_bench writer N [OUTDIR]: N realistic rows pushed as fast as the writer takes them, one
 * producer; prints rows/s. Run under callgrind (--separate-threads=yes) it gives the writer
 * thread's instructions per row, a figure the machine's load does not move.
 * store_bench writer-proxy N [OUTDIR]: the same with the rows of the proxy benches (one client
 * fetching one 1 KiB file from one origin, keep-alive), what the writer sees at c64 in
 * bench/proxy_bench.sh.
 *
 * store_bench --mix independent ...: any of the above with host and client drawn apart (nearly
 * every row a new (host, client) pair: the worst case for the writer's hourly visits) instead
 * of the default office mix (a client's hosts from its own working set; see fill).
 */
#include <dirent.h>
#include <libpq-fe.h>
#include <pthread.h>
#include <sched.h>
#include <sqlite3.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "storage/store.h"

#define HOSTS 2000
#define CLIENTS 200
#define RULES 20
#define QUERY_RUNS 5
#define TPUT_SECONDS 4
#define ROWS 1000000
#define IMPORT_RULES 100000
#define DAY_MS (24 * 3600 * 1000LL)
#define HOUR_MS (3600 * 1000LL)

static double now_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int64_t wall_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* xorshift: cheap and reproducible per thread. */
static uint64_t rnd(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

/* Skewed pick in [0, n): popular hosts and clients dominate, as in an office. */
static unsigned skewed(uint64_t *s, unsigned n)
{
    double u = (double)(rnd(s) % 1000000) / 1e6;

    return (unsigned)(u * u * u * n);
}

/* How rows pick their host. MIX_OFFICE: a client's host from its own working set of
 * WORKING_SET hosts (each drawn skewed from all HOSTS, so popular hosts are in many sets),
 * skewed too: an office's clients revisit the same few hosts, so an hour holds a few
 * thousand (host, client) pairs. MIX_INDEPENDENT: host and client drawn independently, nearly
 * every row a new pair: the worst case for the writer's hourly visits. */
enum mix { MIX_OFFICE, MIX_INDEPENDENT };
static enum mix row_mix = MIX_OFFICE;
#define WORKING_SET 40 /* said in main's first line */

static unsigned working_host(unsigned client, unsigned k)
{
    uint64_t x = ((uint64_t)client + 1) * 0x9e3779b97f4a7c15ull ^ ((uint64_t)k + 1) * 0xc2b2ae35ull;

    rnd(&x);
    rnd(&x);
    return skewed(&x, HOSTS);
}

static void fill(struct store_access *a, uint64_t *s, int64_t time_ms)
{
    static const char *const paths[] = {
        "/",
        "/index.html",
        "/api/v1/items?page=2&sort=desc",
        "/static/js/app.4f3c2a.js",
        "/images/logo.png",
        "/search?q=quarterly+report",
        "/ads/banner?id=18273",
        "/watch?v=dQw4w9WgXcQ",
    };
    unsigned h, c;
    bool deny, tunnel;

    if (row_mix == MIX_INDEPENDENT) {
        h = skewed(s, HOSTS);
        c = skewed(s, CLIENTS);
    } else {
        c = skewed(s, CLIENTS);
        h = working_host(c, skewed(s, WORKING_SET));
    }
    deny = rnd(s) % 100 < 5;
    tunnel = !deny && rnd(s) % 100 < 60;
    memset(a, 0, sizeof(*a));
    a->time_ms = time_ms;
    a->duration_ms = (uint32_t)(rnd(s) % 2000);
    a->decision = deny ? STORE_DENY : STORE_ALLOW;
    a->status = deny ? 403 : 200;
    a->rule_id = deny ? (int32_t)(1 + rnd(s) % RULES) : (rnd(s) % 4 == 0 ? RULES + 1 : 0);
    a->port = tunnel ? 443 : 80;
    a->bytes_up = deny ? 0 : 300 + rnd(s) % 2000;
    a->bytes_down = deny ? 0 : rnd(s) % 200000;
    snprintf(a->client, sizeof(a->client), "10.0.%u.%u", c / 250, c % 250 + 1);
    snprintf(a->method, sizeof(a->method), "%s", tunnel ? "CONNECT" : "GET");
    snprintf(a->scheme, sizeof(a->scheme), "%s", tunnel ? "https" : "http");
    snprintf(a->host, sizeof(a->host), "%s%u.example%u.com", h % 7 == 0 ? "ads" : "www", h, h % 13);
    if (!tunnel)
        snprintf(a->path, sizeof(a->path), "%s", paths[rnd(s) % 8]);
}

/* A row of the proxy benches: one client, one origin, one 1 KiB file; only the times vary. */
static void fill_proxy(struct store_access *a, uint64_t *s, int64_t time_ms)
{
    memset(a, 0, sizeof(*a));
    a->time_ms = time_ms;
    a->duration_ms = (uint32_t)(rnd(s) % 3);
    a->decision = STORE_ALLOW;
    a->status = 200;
    a->port = 18181;
    a->bytes_down = 1210;
    a->policy_version = 1;
    snprintf(a->client, sizeof(a->client), "127.0.0.1");
    snprintf(a->method, sizeof(a->method), "GET");
    snprintf(a->scheme, sizeof(a->scheme), "http");
    snprintf(a->host, sizeof(a->host), "127.0.0.1");
    snprintf(a->path, sizeof(a->path), "/small");
    snprintf(a->dest, sizeof(a->dest), "127.0.0.1:18181");
}

/* ---- (1) throughput ---- */

struct producer {
    struct store_log *log;
    size_t index;
    _Atomic bool *stop;
    _Atomic pid_t tid;
    uint64_t pushed, refused;
};

/* CPU seconds (user + system) of a process or thread from its /proc stat file, -1 if gone. */
static double proc_cpu_s(const char *path)
{
    char buf[1024], *p;
    unsigned long long ut, st;
    FILE *f = fopen(path, "r");
    size_t n = f ? fread(buf, 1, sizeof(buf) - 1, f) : 0;

    if (f)
        fclose(f);
    buf[n] = 0;
    /* After the command's closing parenthesis: state, then 10 fields before utime. */
    if (!(p = strrchr(buf, ')')) ||
        sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) != 2)
        return -1;
    return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

/* This process's threads other than the main one and the producers: the log writer. -1 if
 * one of them could not be read (or the list), so that no partial sum passes for the writer's. */
static double writer_cpu_s(const struct producer *p, size_t producers)
{
    DIR *d = opendir("/proc/self/task");
    struct dirent *e;
    double sum = d ? 0 : -1;

    while (d && sum >= 0 && (e = readdir(d))) {
        pid_t tid = (pid_t)atoi(e->d_name);
        char path[64];
        bool skip = tid <= 0 || tid == getpid();

        for (size_t i = 0; i < producers; i++)
            skip = skip || tid == atomic_load(&p[i].tid);
        if (skip)
            continue;
        snprintf(path, sizeof(path), "/proc/self/task/%d/stat", (int)tid);
        double cpu = proc_cpu_s(path);
        sum = cpu < 0 ? -1 : sum + cpu;
    }
    if (d)
        closedir(d);
    return sum;
}

/* PostgreSQL: the server processes of the other client sessions (the writer's), by a
 * connection of our own. Returns how many, at most max. */
static int pg_backends(const char *conninfo, int *pids, int max)
{
    PGconn *c = PQconnectdb(conninfo);
    PGresult *r = NULL;
    int n = 0;

    if (PQstatus(c) == CONNECTION_OK)
        r = PQexec(c, "SELECT pid FROM pg_stat_activity WHERE backend_type = 'client backend'"
                      " AND pid <> pg_backend_pid() AND datname = current_database()");
    for (int i = 0; r && PQresultStatus(r) == PGRES_TUPLES_OK && i < PQntuples(r) && n < max; i++)
        pids[n++] = atoi(PQgetvalue(r, i, 0));
    PQclear(r);
    PQfinish(c);
    return n;
}

/* The CPU seconds of these processes together, -1 if one of them could not be read (gone). */
static double pids_cpu_s(const int *pids, int n)
{
    double sum = 0;

    for (int i = 0; i < n; i++) {
        char path[64];

        snprintf(path, sizeof(path), "/proc/%d/stat", pids[i]);
        double cpu = proc_cpu_s(path);
        if (cpu < 0)
            return -1;
        sum += cpu;
    }
    return sum;
}

/* CPU seconds per 100,000 rows between two readings as text, "n/a" when either reading failed
 * (a thread or process gone between them: its time is no longer in /proc). */
static const char *per_100k_rows(char *buf, size_t len, double before, double after, double rows)
{
    if (before < 0 || after < 0)
        snprintf(buf, len, "n/a");
    else
        snprintf(buf, len, "%.3f", rows > 0 ? (after - before) * 1e5 / rows : 0);
    return buf;
}

static void *produce(void *arg)
{
    struct producer *p = arg;
    struct store_access a;
    uint64_t s = 0x9e3779b97f4a7c15ull + p->index;

    atomic_store(&p->tid, gettid());
    /* Stamped with the clock, as proxyd stamps a request: the rollups' keys are then those of
     * real traffic at this rate. (A millisecond a push, refused ones too, ran the rows' time
     * minutes ahead each second, and every flush summed a dozen minutes' keys.) */
    while (!atomic_load_explicit(p->stop, memory_order_relaxed)) {
        fill(&a, &s, wall_ms());
        if (store_log_push(p->log, p->index, &a)) {
            p->pushed++;
        } else {
            p->refused++;
            sched_yield(); /* queue full: give the writer the CPU, as a busy worker would */
        }
    }
    return NULL;
}

static void bench_throughput(const char *dir, const char *pg, size_t producers)
{
    char path[512], err[256];
    struct store_log_opts o = {
        .producers = producers, .queue_capacity = 16384, .flush_interval_ms = 100};
    struct producer p[2];
    pthread_t th[2];
    _Atomic bool stop = false;
    struct store_log_counters c0, c1;
    struct store_log *log;
    double t0, t1, w0, w1, b0 = 0, b1 = 0, rows;
    int pids[8], npids = 0;
    char fig[32];

    snprintf(path, sizeof(path), "%s/store_bench_tput.db", dir);
    if (!pg)
        unlink(path);
    o.db_path = pg ? pg : path;
    log = store_log_start(&o, err, sizeof(err));
    if (!log) {
        fprintf(stderr, "store_log_start: %s\n", err);
        exit(1);
    }
    for (size_t i = 0; i < producers; i++) {
        p[i] = (struct producer){.log = log, .index = i, .stop = &stop};
        pthread_create(&th[i], NULL, produce, &p[i]);
    }
    if (pg)
        npids = pg_backends(pg, pids, 8);
    sleep(1); /* warm-up: the first second fills caches and the WAL */
    store_log_counters(log, &c0);
    t0 = now_s();
    w0 = writer_cpu_s(p, producers);
    b0 = pids_cpu_s(pids, npids);
    sleep(TPUT_SECONDS);
    store_log_counters(log, &c1);
    t1 = now_s();
    w1 = writer_cpu_s(p, producers);
    b1 = pids_cpu_s(pids, npids);
    atomic_store(&stop, true);
    for (size_t i = 0; i < producers; i++)
        pthread_join(th[i], NULL);
    store_log_stop(log);
    /* CPU per 100,000 rows committed: what the load of other processes does not move. */
    rows = (double)(c1.written - c0.written);
    printf("  %-10s %zu producer%s  %10.0f rows/s committed  %8.0f pushes/s refused (queue full)"
           "  db errors %llu  CPU s/100k rows: writer %s",
           pg ? "PostgreSQL" : "SQLite", producers, producers > 1 ? "s" : " ", rows / (t1 - t0),
           (double)(c1.dropped_queue_full - c0.dropped_queue_full) / (t1 - t0),
           (unsigned long long)c1.dropped_db_error, per_100k_rows(fig, sizeof(fig), w0, w1, rows));
    if (pg)
        printf(" server %s (%d backend%s)", per_100k_rows(fig, sizeof(fig), b0, b1, rows), npids,
               npids == 1 ? "" : "s");
    printf("\n");
}

/* N rows through the writer, batches as large as the queue allows; proxy: fill_proxy's rows,
 * else fill's. */
static void bench_writer(const char *dir, int64_t rows, bool proxy)
{
    char path[512], side[540], err[256];
    struct store_log_opts o = {
        .producers = 1, .queue_capacity = 16384, .flush_interval_ms = 100, .node_name = "bench"};
    struct store_log *log;
    struct store_access a;
    uint64_t s = 42;
    int64_t t = wall_ms() - rows;
    double t0;

    snprintf(path, sizeof(path), "%s/store_bench_writer.db", dir);
    for (size_t i = 0; i < 3; i++) {
        snprintf(side, sizeof(side), "%s%s", path, (const char *[]){"", "-wal", "-shm"}[i]);
        unlink(side);
    }
    o.db_path = path;
    log = store_log_start(&o, err, sizeof(err));
    if (!log) {
        fprintf(stderr, "store_log_start: %s\n", err);
        exit(1);
    }
    t0 = now_s();
    for (int64_t i = 0; i < rows; i++) {
        if (proxy)
            fill_proxy(&a, &s, t++);
        else
            fill(&a, &s, t++);
        while (!store_log_push(log, 0, &a))
            sched_yield();
    }
    store_log_stop(log);
    printf("writer: %lld rows in %.2f s, %.0f rows/s\n", (long long)rows, now_s() - t0,
           (double)rows / (now_s() - t0));
}

/* ---- (2) size ---- */

static long long file_size(const char *path)
{
    struct stat sb;

    return stat(path, &sb) == 0 ? (long long)sb.st_size : 0;
}

static int64_t build_day(const char *path, int64_t now)
{
    char err[256], wal[600];
    struct store_log_opts o = {
        .db_path = path, .producers = 1, .queue_capacity = 16384, .flush_interval_ms = 100};
    struct store_log *log;
    struct store_log_counters c;
    struct store_access a;
    uint64_t s = 42;
    double t0;
    sqlite3 *db;

    unlink(path);
    log = store_log_start(&o, err, sizeof(err));
    if (!log) {
        fprintf(stderr, "store_log_start: %s\n", err);
        exit(1);
    }
    t0 = now_s();
    for (int64_t i = 0; i < ROWS; i++) {
        /* Evenly over the last 24 h, with a little disorder as requests finish late. */
        fill(&a, &s, now - DAY_MS + i * DAY_MS / ROWS - (int64_t)(rnd(&s) % 2000));
        while (!store_log_push(log, 0, &a))
            sched_yield();
    }
    store_log_stop(log);
    printf("  inserted %d rows through store_log in %.1f s (%.0f rows/s)\n", ROWS, now_s() - t0,
           ROWS / (now_s() - t0));
    (void)c;
    sqlite3_open(path, &db);
    sqlite3_exec(db, "PRAGMA wal_checkpoint(TRUNCATE)", NULL, NULL, NULL);
    snprintf(wal, sizeof(wal), "%s-wal", path);
    printf("  database %.1f MB + WAL %.1f MB after checkpoint = %.0f bytes/row\n",
           file_size(path) / 1e6, file_size(wal) / 1e6,
           (double)(file_size(path) + file_size(wal)) / ROWS);
    sqlite3_close(db);
    return 0;
}

/* ---- (3) queries ---- */

enum q_kind { Q_SEARCH, Q_TOP, Q_SERIES, Q_TOTALS, Q_RULES };

struct query {
    const char *name;
    enum q_kind kind;
    struct store_log_filter f;
    enum store_top_kind top;
    int64_t span_ms, bucket_ms;
    size_t rows;
};

static double run_query(struct store *st, struct query *q, int64_t now)
{
    char err[256];
    double t0 = now_s();
    int rc = 0;

    switch (q->kind) {
    case Q_SEARCH: {
        struct store_log_row *rows;

        rc = store_log_search(st, &q->f, &rows, &q->rows, err, sizeof(err));
        if (rc == 0)
            free(rows);
        break;
    }
    case Q_TOP: {
        struct store_top_row *rows;

        rc = store_top(st, q->top, now - q->span_ms, now, NULL, 10, &rows, &q->rows, err,
                       sizeof(err));
        if (rc == 0)
            free(rows);
        break;
    }
    case Q_SERIES: {
        struct store_series_point *pts;

        rc = store_series(st, now - q->span_ms, now, NULL, q->bucket_ms, &pts, &q->rows, err,
                          sizeof(err));
        if (rc == 0)
            free(pts);
        break;
    }
    case Q_TOTALS: {
        struct store_totals t;

        rc = store_totals(st, now - q->span_ms, now, NULL, &t, err, sizeof(err));
        q->rows = (size_t)t.requests;
        break;
    }
    case Q_RULES: {
        struct store_rule *rules;

        rc = store_rules_list(st, &rules, &q->rows, err, sizeof(err));
        if (rc == 0)
            store_rules_free(rules, q->rows);
        break;
    }
    }
    if (rc < 0) {
        fprintf(stderr, "%s: %s\n", q->name, err);
        exit(1);
    }
    return (now_s() - t0) * 1000;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;

    return x < y ? -1 : x > y;
}

static void bench_queries(const char *path, int64_t now)
{
    struct query qs[] = {
        {.name = "search: newest page", .kind = Q_SEARCH, .f = {.decision = -1, .limit = 100}},
        {.name = "search: by client",
         .kind = Q_SEARCH,
         .f = {.client = "10.0.0.20", .decision = -1, .limit = 100}},
        {.name = "search: absent client (full scan)",
         .kind = Q_SEARCH,
         .f = {.client = "10.9.9.9", .decision = -1, .limit = 100}},
        {.name = "search: client, 1 h 12 h ago",
         .kind = Q_SEARCH,
         .f = {.client = "10.0.0.20",
               .since_ms = now - 13 * HOUR_MS,
               .until_ms = now - 12 * HOUR_MS,
               .decision = -1,
               .limit = 100}},
        {.name = "search: absent client, 24 h",
         .kind = Q_SEARCH,
         .f = {.client = "10.9.9.9",
               .since_ms = now - DAY_MS,
               .until_ms = now,
               .decision = -1,
               .limit = 100}},
        {.name = "search: host substring",
         .kind = Q_SEARCH,
         .f = {.host_like = "ads7", .decision = -1, .limit = 100}},
        {.name = "search: text substring",
         .kind = Q_SEARCH,
         .f = {.text_like = "quarterly", .decision = -1, .limit = 100}},
        {.name = "search: denied only",
         .kind = Q_SEARCH,
         .f = {.decision = STORE_DENY, .limit = 100}},
        {.name = "search: page 50 deep (before_id)",
         .kind = Q_SEARCH,
         .f = {.decision = -1, .limit = 100}},
        {.name = "search: last hour, denied",
         .kind = Q_SEARCH,
         .f = {.since_ms = now - HOUR_MS, .until_ms = now, .decision = STORE_DENY, .limit = 100}},
        {.name = "search: 1 h window 12 h ago",
         .kind = Q_SEARCH,
         .f = {.since_ms = now - 13 * HOUR_MS,
               .until_ms = now - 12 * HOUR_MS,
               .decision = -1,
               .limit = 100}},
        {.name = "search: no match (full scan)",
         .kind = Q_SEARCH,
         .f = {.host_like = "nosuchhost", .decision = -1, .limit = 100}},
        {.name = "top hosts 1 h", .kind = Q_TOP, .top = STORE_TOP_HOSTS, .span_ms = HOUR_MS},
        {.name = "top hosts 24 h", .kind = Q_TOP, .top = STORE_TOP_HOSTS, .span_ms = DAY_MS},
        {.name = "top clients 1 h", .kind = Q_TOP, .top = STORE_TOP_CLIENTS, .span_ms = HOUR_MS},
        {.name = "top clients 24 h", .kind = Q_TOP, .top = STORE_TOP_CLIENTS, .span_ms = DAY_MS},
        {.name = "top blocked 1 h", .kind = Q_TOP, .top = STORE_TOP_BLOCKED, .span_ms = HOUR_MS},
        {.name = "top blocked 24 h", .kind = Q_TOP, .top = STORE_TOP_BLOCKED, .span_ms = DAY_MS},
        {.name = "series 1 h per minute", .kind = Q_SERIES, .span_ms = HOUR_MS, .bucket_ms = 60000},
        {.name = "series 24 h per hour", .kind = Q_SERIES, .span_ms = DAY_MS, .bucket_ms = HOUR_MS},
        {.name = "totals 24 h", .kind = Q_TOTALS, .span_ms = DAY_MS},
        {.name = "rules with hits", .kind = Q_RULES},
    };
    char err[256];
    struct store *st = store_open(path, err, sizeof(err));
    int id;

    if (!st) {
        fprintf(stderr, "%s\n", err);
        exit(1);
    }
    for (int i = 0; i < RULES + 1; i++) {
        char text[64];

        snprintf(text, sizeof(text), "deny domain blocked%d.test", i);
        store_rule_add(st, text, "", 0, "bench", &id, err, sizeof(err));
    }
    {
        /* Id of the 5,000th newest row, for the deep-page query. */
        sqlite3 *db;
        sqlite3_stmt *s;

        sqlite3_open(path, &db);
        sqlite3_prepare_v2(db, "SELECT max(id) - 5000 FROM access_log", -1, &s, NULL);
        if (sqlite3_step(s) == SQLITE_ROW)
            for (size_t i = 0; i < sizeof(qs) / sizeof(qs[0]); i++)
                if (strstr(qs[i].name, "before_id"))
                    qs[i].f.before_id = sqlite3_column_int64(s, 0);
        sqlite3_finalize(s);
        sqlite3_close(db);
    }
    printf("  %-34s %9s %9s %9s %7s\n", "query", "median ms", "min ms", "max ms", "rows");
    for (size_t i = 0; i < sizeof(qs) / sizeof(qs[0]); i++) {
        double t[QUERY_RUNS];

        for (int r = 0; r < QUERY_RUNS; r++)
            t[r] = run_query(st, &qs[i], now);
        qsort(t, QUERY_RUNS, sizeof(t[0]), cmp_double);
        printf("  %-34s %9.1f %9.1f %9.1f %7zu\n", qs[i].name, t[QUERY_RUNS / 2], t[0],
               t[QUERY_RUNS - 1], qs[i].rows);
    }
    {
        double t0 = now_s();
        int64_t n = store_retention_step(st, 0, ROWS - 5000, 5000);

        printf("  %-34s %9.1f %9s %9s %7lld\n", "retention step (5000 rows)", (now_s() - t0) * 1000,
               "", "", (long long)n);
    }
    store_close(st);
}

static double cpu_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* A policy import of IMPORT_RULES rules into an empty policy, then over those, and a list
 * of as many entries: wall and CPU time of each replace (the unit tests check what they do,
 * this how long). */
static void bench_policy_import(const char *dir)
{
    char path[512], side[540], err[256];
    char **texts = malloc(IMPORT_RULES * sizeof(*texts));
    struct store *st;

    snprintf(path, sizeof(path), "%s/store_bench_policy.db", dir);
    for (size_t i = 0; i < 3; i++) { /* a fresh database each run */
        snprintf(side, sizeof(side), "%s%s", path, (const char *[]){"", "-wal", "-shm"}[i]);
        unlink(side);
    }
    st = store_open(path, err, sizeof(err));
    if (!st || !texts) {
        fprintf(stderr, "%s\n", st ? "out of memory" : err);
        exit(1);
    }
    for (size_t i = 0; i < IMPORT_RULES; i++) {
        texts[i] = malloc(40);
        snprintf(texts[i], 40, "deny domain d%zu.test", i);
    }
    printf("  %-34s %9s %9s\n", "replace", "wall ms", "CPU ms");
    for (int round = 0; round < 2; round++) {
        double t0 = now_s(), c0 = cpu_s();

        if (store_rules_replace(st, (const char *const *)texts, IMPORT_RULES, "bench", err,
                                sizeof(err)) < 0) {
            fprintf(stderr, "store_rules_replace: %s\n", err);
            exit(1);
        }
        printf("  %-34s %9.1f %9.1f\n", round ? "over 100,000 rules" : "into an empty policy",
               (now_s() - t0) * 1000, (cpu_s() - c0) * 1000);
    }
    for (size_t i = 0; i < IMPORT_RULES; i++) /* a hosts file's order, not sorted */
        snprintf(texts[i], 40, "host%zu.ads.test", (i * 7919) % IMPORT_RULES);
    {
        double t0 = now_s(), c0 = cpu_s();

        if (store_list_replace(st, "ads", (const char *const *)texts, IMPORT_RULES, "bench", err,
                               sizeof(err)) < 0) {
            fprintf(stderr, "store_list_replace: %s\n", err);
            exit(1);
        }
        printf("  %-34s %9.1f %9.1f\n", "list of 100,000 entries", (now_s() - t0) * 1000,
               (cpu_s() - c0) * 1000);
    }
    for (size_t i = 0; i < IMPORT_RULES; i++)
        free(texts[i]);
    free(texts);
    store_close(st);
}

/* ---- (5) scale: N rows over 30 days ---- */

#define SCALE_DAYS 30

static void build_scale(const char *path, int64_t now, int64_t rows)
{
    char err[256], wal[600];
    struct store_log_opts o = {.db_path = path,
                               .producers = 1,
                               .queue_capacity = 65536,
                               .flush_interval_ms = 100,
                               .node_name = "bench-node"};
    struct store_log *log;
    struct store_access a;
    uint64_t s = 42;
    int64_t span = SCALE_DAYS * DAY_MS;
    double t0 = now_s();
    sqlite3 *db;

    for (size_t k = 0; k < 3; k++) { /* a fresh database each run */
        snprintf(wal, sizeof(wal), "%s%s", path, (const char *[]){"", "-wal", "-shm"}[k]);
        unlink(wal);
    }
    log = store_log_start(&o, err, sizeof(err));
    if (!log) {
        fprintf(stderr, "store_log_start: %s\n", err);
        exit(1);
    }
    for (int64_t i = 0; i < rows; i++) {
        fill(&a, &s, now - span + (int64_t)((double)i * (double)span / (double)rows));
        while (!store_log_push(log, 0, &a))
            sched_yield();
        if (i > 0 && i % 10000000 == 0)
            printf("  ... %lld rows, %.0f s\n", (long long)i, now_s() - t0);
    }
    store_log_stop(log);
    printf("  inserted %lld rows through store_log (rollups kept as it writes) in %.1f s "
           "(%.0f rows/s, loaded)\n",
           (long long)rows, now_s() - t0, (double)rows / (now_s() - t0));
    sqlite3_open(path, &db);
    sqlite3_exec(db, "PRAGMA wal_checkpoint(TRUNCATE)", NULL, NULL, NULL);
    snprintf(wal, sizeof(wal), "%s-wal", path);
    printf("  database %.1f MB + WAL %.1f MB = %.0f bytes/row\n", file_size(path) / 1e6,
           file_size(wal) / 1e6, (double)(file_size(path) + file_size(wal)) / (double)rows);
    sqlite3_close(db);
}

/* The 24 h totals the way store_totals computed them before the rollups: one pass over the
 * rows of the range (SQL aggregates here, the old code summed in C), for reference. */
static double raw_totals_ms(const char *path, int64_t now, int64_t *requests)
{
    sqlite3 *db;
    sqlite3_stmt *s;
    double t0 = now_s();

    sqlite3_open(path, &db);
    sqlite3_prepare_v2(db,
                       "SELECT count(*), sum(decision = 1), total(bytes_up), total(bytes_down)"
                       " FROM access_log WHERE time_ms >= ? AND time_ms < ?",
                       -1, &s, NULL);
    sqlite3_bind_int64(s, 1, now - DAY_MS);
    sqlite3_bind_int64(s, 2, now);
    *requests = sqlite3_step(s) == SQLITE_ROW ? sqlite3_column_int64(s, 0) : -1;
    sqlite3_finalize(s);
    sqlite3_close(db);
    return (now_s() - t0) * 1000;
}

static void bench_scale(const char *path, int64_t now)
{
    struct query qs[] = {
        {.name = "dashboard: totals 24 h", .kind = Q_TOTALS, .span_ms = DAY_MS},
        {.name = "dashboard: series 24 h per hour",
         .kind = Q_SERIES,
         .span_ms = DAY_MS,
         .bucket_ms = HOUR_MS},
        {.name = "dashboard: series 1 h per minute",
         .kind = Q_SERIES,
         .span_ms = HOUR_MS,
         .bucket_ms = 60000},
        {.name = "top hosts 24 h", .kind = Q_TOP, .top = STORE_TOP_HOSTS, .span_ms = DAY_MS},
        {.name = "top clients 24 h", .kind = Q_TOP, .top = STORE_TOP_CLIENTS, .span_ms = DAY_MS},
        {.name = "top blocked 24 h", .kind = Q_TOP, .top = STORE_TOP_BLOCKED, .span_ms = DAY_MS},
        {.name = "totals 30 days", .kind = Q_TOTALS, .span_ms = SCALE_DAYS * DAY_MS},
        {.name = "top hosts 30 days",
         .kind = Q_TOP,
         .top = STORE_TOP_HOSTS,
         .span_ms = SCALE_DAYS * DAY_MS},
        {.name = "series 30 days per day",
         .kind = Q_SERIES,
         .span_ms = SCALE_DAYS * DAY_MS,
         .bucket_ms = DAY_MS},
        {.name = "search: newest page", .kind = Q_SEARCH, .f = {.decision = -1, .limit = 100}},
        {.name = "search: host substring, last 1 h",
         .kind = Q_SEARCH,
         .f = {.host_like = "ads7",
               .since_ms = now - HOUR_MS,
               .until_ms = now,
               .decision = -1,
               .limit = 100}},
        {.name = "search: client, 1 h 12 h ago",
         .kind = Q_SEARCH,
         .f = {.client = "10.0.0.20",
               .since_ms = now - 13 * HOUR_MS,
               .until_ms = now - 12 * HOUR_MS,
               .decision = -1,
               .limit = 100}},
        {.name = "search: denied, last 1 h",
         .kind = Q_SEARCH,
         .f = {.since_ms = now - HOUR_MS, .until_ms = now, .decision = STORE_DENY, .limit = 100}},
    };
    char err[256];
    struct store *st = store_open(path, err, sizeof(err));
    int64_t raw_requests;
    double raw[QUERY_RUNS];

    if (!st) {
        fprintf(stderr, "%s\n", err);
        exit(1);
    }
    printf("  %-34s %9s %9s %9s %9s\n", "query", "median ms", "min ms", "max ms", "rows");
    for (size_t i = 0; i < sizeof(qs) / sizeof(qs[0]); i++) {
        double t[QUERY_RUNS];

        for (int r = 0; r < QUERY_RUNS; r++)
            t[r] = run_query(st, &qs[i], now);
        qsort(t, QUERY_RUNS, sizeof(t[0]), cmp_double);
        printf("  %-34s %9.1f %9.1f %9.1f %9zu\n", qs[i].name, t[QUERY_RUNS / 2], t[0],
               t[QUERY_RUNS - 1], qs[i].rows);
    }
    for (int r = 0; r < QUERY_RUNS; r++)
        raw[r] = raw_totals_ms(path, now, &raw_requests);
    qsort(raw, QUERY_RUNS, sizeof(raw[0]), cmp_double);
    printf("  %-34s %9.1f %9.1f %9.1f %9lld\n", "reference: raw rows, totals 24 h",
           raw[QUERY_RUNS / 2], raw[0], raw[QUERY_RUNS - 1], (long long)raw_requests);
    store_close(st);
}

int main(int argc, char **argv)
{
    const char *dir;
    char path[512];
    int64_t now = wall_ms();
    double t0 = now_s();

    if (argc > 2 && strcmp(argv[1], "--mix") == 0) {
        if (strcmp(argv[2], "independent") == 0) {
            row_mix = MIX_INDEPENDENT;
        } else if (strcmp(argv[2], "office") != 0) {
            fprintf(stderr, "store_bench: --mix office|independent, not %s\n", argv[2]);
            return 2;
        }
        argc -= 2;
        argv += 2;
    }
    dir = argc > 1 ? argv[1] : "/tmp";
    printf("store_bench: %s mix (hosts %s)\n", row_mix == MIX_OFFICE ? "office" : "independent",
           row_mix == MIX_OFFICE ? "from each client's working set of 40"
                                 : "drawn apart from clients");

    if (argc > 1 && strcmp(argv[1], "scale-queries") == 0) {
        /* The queries again over the rows a scale run left (a machine less loaded, say). */
        snprintf(path, sizeof(path), "%s/store_bench_scale.db", argc > 2 ? argv[2] : "/tmp");
        printf("(5) queries over %s, median of %d runs\n", path, QUERY_RUNS);
        bench_scale(path, now);
        return 0;
    }
    if (argc > 2 && strcmp(argv[1], "scale") == 0) {
        int64_t rows = strtoll(argv[2], NULL, 10);

        dir = argc > 3 ? argv[3] : "/tmp";
        if (rows <= 0) {
            fprintf(stderr, "usage: store_bench scale ROWS [DIR]\n");
            return 2;
        }
        snprintf(path, sizeof(path), "%s/store_bench_scale.db", dir);
        printf("store_bench scale: SQLite %s, %lld rows over %d days in %s\n", sqlite3_libversion(),
               (long long)rows, SCALE_DAYS, path);
        printf("(5) build\n");
        build_scale(path, now, rows);
        printf("(5) queries, median of %d runs\n", QUERY_RUNS);
        bench_scale(path, now);
        printf("total %.0f s\n", now_s() - t0);
        return 0;
    }
    if (argc > 2 && (strcmp(argv[1], "writer") == 0 || strcmp(argv[1], "writer-proxy") == 0)) {
        bench_writer(argc > 3 ? argv[3] : "/tmp", strtoll(argv[2], NULL, 10),
                     strcmp(argv[1], "writer-proxy") == 0);
        return 0;
    }
    if (argc > 2 && strcmp(argv[1], "--db") == 0) {
        dir = argc > 3 ? argv[3] : "/tmp";
        printf("store_bench: (1) only, PostgreSQL (%s) against SQLite %s in %s\n",
               store_path_is_pg(argv[2]) ? "--db" : "not a conninfo", sqlite3_libversion(), dir);
        printf("(1) sustained writer throughput, %d s, flush 100 ms, queue 16384/producer\n",
               TPUT_SECONDS);
        for (size_t producers = 1; producers <= 2; producers++) {
            bench_throughput(dir, NULL, producers);
            bench_throughput(dir, argv[2], producers);
        }
        return 0;
    }
    printf("store_bench: SQLite %s, output in %s\n", sqlite3_libversion(), dir);
    printf("(1) sustained writer throughput, %d s, flush 100 ms, queue 16384/producer\n",
           TPUT_SECONDS);
    bench_throughput(dir, NULL, 1);
    bench_throughput(dir, NULL, 2);
    printf("(2) size of %d realistic rows over 24 h\n", ROWS);
    snprintf(path, sizeof(path), "%s/store_bench_day.db", dir);
    build_day(path, now);
    printf("(3) query latency over %d rows, median of %d runs\n", ROWS, QUERY_RUNS);
    bench_queries(path, now);
    printf("(4) imports of %d rules and list entries, one transaction each\n", IMPORT_RULES);
    bench_policy_import(dir);
    printf("total %.0f s\n", now_s() - t0);
    return 0;
}
