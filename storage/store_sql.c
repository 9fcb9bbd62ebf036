/* store_sql: the driver under every query, one prepared statement of SQLite or PostgreSQL
 * (libpq) behind the same calls, and the few fragments of SQL the two spell differently.
 *
 * SQLite statements are SQLite's own, each call one branch away from it, so the embedded
 * default pays nothing measurable. PostgreSQL statements keep the SQL with its parameters
 * renumbered ($N) and run at the first step: one round trip, no statement left on the server
 * to deallocate, text parameters whose types the server infers.
 *
 * Every PostgreSQL connection is in libpq's nonblocking mode and every wait for the server is
 * this file's (pg_wait): poll on its socket with a deadline, the connection's answer bound
 * (st->answer_ms), or sooner the process's give-up time (store_pg_give_up_at, at a stop). A
 * server that is frozen (stopped, or a network that drops packets while TCP stays open)
 * answers nothing and is noticed by no keepalive: past the deadline its connection is shut,
 * the call fails with a message saying so, and the connection is opened again like one the
 * server cut (store_pg_revive). libpq's own blocking calls (PQexec, PQexecParams, PQgetResult
 * while busy) are not used.
 */
#include <ctype.h>
#include <errno.h>
#include <poll.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "base/clock.h"
#include "storage/store_impl.h"

/* PostgreSQL's own limit of parameters in a statement. */
#define SQL_PARAMS_MAX 65535

/* Parameter types sent with each statement: integers as int8 (so `SELECT ?` and
 * `INSERT ... SELECT ?` know theirs), text left for the server to infer from its use, text
 * for a number the SQL never uses (PostgreSQL refuses one it cannot type). */
#define OID_UNKNOWN 0
#define OID_BYTEA 17
#define OID_INT8 20
#define OID_TEXT 25

/* Deferred statements answered at least this often, so neither side's buffer fills with
 * results the other is not reading. */
#define PIPELINE_SYNC_EVERY 512

bool store_path_is_pg(const char *path)
{
    const char *p = path;

    if (!path)
        return false;
    if (strncmp(path, "postgresql://", 13) == 0 || strncmp(path, "postgres://", 11) == 0)
        return true;
    /* key=value: a word of letters and underscores, then '=' (a file name could hold '=',
     * but not right after a bare keyword with no '/' or '.' before it). */
    while (*p == ' ')
        p++;
    if (!islower((unsigned char)*p))
        return false;
    while (islower((unsigned char)*p) || *p == '_')
        p++;
    while (*p == ' ')
        p++;
    return *p == '=';
}

static const char *const fragments[SQL_FRAGMENT_COUNT][2] = {
    [SQL_BEGIN_WRITE] = {"BEGIN IMMEDIATE",
                         /* Policy writers read positions and counts before they write:
                          * one at a time across every node, as SQLite's write lock does
                          * (a lock per schema: databases side by side in one do not meet). */
                         "BEGIN; SELECT pg_advisory_xact_lock(7013, hashtext(current_schema()))"},
    /* Log writers of all nodes one at a time, as SQLite's write lock does: a batch's rows
     * then take consecutive ids and every row below a committed one is committed, which the
     * rollups' watermark rests on (store_log.c). A wait of up to 2 s: another node's batch
     * or catch-up may take that long; the policy lock's 250 ms would drop its rows. */
    [SQL_BEGIN_LOG] = {"BEGIN IMMEDIATE",
                       "BEGIN; SET LOCAL lock_timeout = 2000;"
                       " SELECT pg_advisory_xact_lock(7014, hashtext(current_schema()))"},
    [SQL_READ_BEGIN] = {"SAVEPOINT policy_read", "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"},
    [SQL_READ_END] = {"RELEASE policy_read", "COMMIT"},
    [SQL_BEGIN_SNAPSHOT] = {"BEGIN", "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"},
    [SQL_LIKE] = {"LIKE", "ILIKE"},
    [SQL_LEAST] = {"min", "LEAST"},
    /* PostgreSQL's planner takes no orders; its statistics find the index by themselves. */
    [SQL_INDEXED_BY_TIME] = {" INDEXED BY access_log_time", ""},
    [SQL_NEXT_RULE_ID] = {"SELECT max(coalesce((SELECT seq FROM sqlite_sequence WHERE name = "
                          "'rules'), 0), coalesce((SELECT max(id) FROM rules), 0)) + 1",
                          "SELECT GREATEST(CASE WHEN is_called THEN last_value + 1 ELSE last_value"
                          " END, coalesce((SELECT max(id) FROM rules), 0) + 1) FROM rules_id_seq"},
    /* Compared by bytes on both: a prefix's range is then exactly the text that starts with it
     * (PostgreSQL's own collation may sort by other rules); unary + keeps SQLite off an
     * index. */
    [SQL_CLIENT_PREFIX] =
        {" AND +client >= ? AND +client < ? || char(127)",
         " AND client COLLATE \"C\" >= ? AND client COLLATE \"C\" < ? || chr(127)"},
    /* The server's clock on PostgreSQL, so nodes whose clocks differ agree on ages. */
    [SQL_NOW_MS] = {"CAST((julianday('now') - 2440587.5) * 86400000.0 AS INTEGER)",
                    "CAST(extract(epoch FROM clock_timestamp()) * 1000 AS BIGINT)"},
};

const char *sql_frag(const struct store *st, enum sql_fragment f)
{
    return fragments[f][st->backend == STORE_PG];
}

/* Monotonic ms after which every wait on the server ends at once; 0: none. */
static _Atomic int64_t give_up_ms;

/* Monotonic ms at which a wait was cut for want of an answer on a connection whose bound is
 * past its statement_timeout (st->cut_means_frozen), while no connection of this process has
 * read a byte from the server since; 0: it answered since (or never failed). */
static _Atomic int64_t unanswered_since_ms;

/* A wait is at most this long a poll, so a give-up set meanwhile is seen. */
#define WAIT_SLICE_MS 250
/* While the server answers nothing on any connection (unanswered_since_ms), a wait ends this
 * long after that was seen or after it began, whichever is later, not at its own bound: a
 * frozen server then holds an admin request seconds, not a minute. Only a cut that a server
 * that works could not cause starts it: one at a bound past the connection's
 * statement_timeout, which such a server would have answered first (the heartbeat's, the
 * admin's); the writer's shorter bound also cuts a slow batch on a server that works, and a
 * long admin read then keeps its own bound. Any byte from the server on any connection (the
 * heartbeat's every 5 s, say) ends the rule. */
#define UNANSWERED_FOLLOW_MS 5000

void store_pg_give_up_at(int64_t mono_ms)
{
    atomic_store(&give_up_ms, mono_ms);
}

bool store_pg_given_up(void)
{
    int64_t g = atomic_load(&give_up_ms);

    return g > 0 && clock_mono_ms() >= g;
}

static int pg_err(struct store *st, const PGresult *res)
{
    const char *m = res ? PQresultErrorMessage(res) : PQerrorMessage(st->pg);
    size_t n;

    snprintf(st->pg_err, sizeof(st->pg_err), "%s", m && *m ? m : "PostgreSQL error");
    n = strlen(st->pg_err);
    while (n && (st->pg_err[n - 1] == '\n' || st->pg_err[n - 1] == ' '))
        st->pg_err[--n] = '\0';
    return -1;
}

/* The server did not answer by the deadline: its connection is shut (libpq reads the end
 * of the stream and marks it bad, so the next statement reconnects) and the error says so. */
static int pg_cut(struct store *st, int64_t waited_ms)
{
    int fd = PQsocket(st->pg);

    if (fd >= 0)
        shutdown(fd, SHUT_RDWR);
    PQconsumeInput(st->pg);
    int64_t none = 0;
    if (st->cut_means_frozen)
        atomic_compare_exchange_strong(&unanswered_since_ms, &none, clock_mono_ms());
    snprintf(st->pg_err, sizeof(st->pg_err),
             "PostgreSQL did not answer within %lld ms; connection closed", (long long)waited_ms);
    return -1;
}

/* Until libpq has what was sent on its way and a result it can hand out without waiting
 * (PQisBusy false): 0, or -1 with st->pg_err set (the connection failed, or no answer within
 * the bound: then it is closed). */
static int pg_wait(struct store *st)
{
    int64_t start = clock_mono_ms();

    for (;;) {
        int unsent = PQflush(st->pg);
        struct pollfd p = {.fd = PQsocket(st->pg), .events = POLLIN};
        int64_t now, until, g;
        int rc;

        if (unsent < 0)
            return pg_err(st, NULL);
        if (unsent == 0 && !PQisBusy(st->pg))
            return 0;
        if (PQstatus(st->pg) != CONNECTION_OK || p.fd < 0)
            return pg_err(st, NULL);
        now = clock_mono_ms();
        until = st->answer_ms > 0 ? start + st->answer_ms : INT64_MAX;
        g = atomic_load(&give_up_ms);
        if (g > 0 && g < until)
            until = g;
        g = atomic_load_explicit(&unanswered_since_ms, memory_order_relaxed);
        if (g > 0 && (g > start ? g : start) + UNANSWERED_FOLLOW_MS < until)
            until = (g > start ? g : start) + UNANSWERED_FOLLOW_MS;
        if (now >= until)
            return pg_cut(st, now - start);
        if (unsent)
            p.events |= POLLOUT;
        rc = poll(&p, 1, (int)(until - now < WAIT_SLICE_MS ? until - now : WAIT_SLICE_MS));
        if (rc < 0 && errno != EINTR)
            return pg_err(st, NULL);
        /* Read at every wake, not only when the socket is readable: over TLS part of an
         * answer may wait decrypted inside the TLS library, which poll does not see. */
        if (rc >= 0 && PQconsumeInput(st->pg) != 1)
            return pg_err(st, NULL);
        if (rc > 0 && (p.revents & (POLLIN | POLLHUP | POLLERR)) &&
            atomic_load_explicit(&unanswered_since_ms, memory_order_relaxed))
            atomic_store(&unanswered_since_ms, 0); /* the server answers again */
    }
}

/* The next result, waited for within the bound (NULL: none left, or the wait failed, which
 * *failed tells). */
static PGresult *pg_next(struct store *st, bool *failed)
{
    if (pg_wait(st) < 0) {
        *failed = true;
        return NULL;
    }
    return PQgetResult(st->pg);
}

/* PQexecParams (PQexec with no parameters, so that a script of several statements runs) within
 * the bound: every result read, the first error kept or else the last result, as PQexec keeps;
 * a COPY's start is handed back at once. NULL when nothing came back (st->pg_err says why). */
static PGresult *pg_exec(struct store *st, const char *sql, int nparams, const Oid *types,
                         const char *const *values)
{
    PGresult *last = NULL, *r;
    bool failed = false;
    int sent = nparams > 0 || types
                   ? PQsendQueryParams(st->pg, sql, nparams, types, values, NULL, NULL, 0)
                   : PQsendQuery(st->pg, sql);

    if (sent != 1) {
        pg_err(st, NULL);
        return NULL;
    }
    while ((r = pg_next(st, &failed))) {
        ExecStatusType status = PQresultStatus(r);

        if (status == PGRES_COPY_IN || status == PGRES_COPY_OUT) {
            PQclear(last);
            return r;
        }
        if (last && PQresultStatus(last) == PGRES_FATAL_ERROR) {
            PQclear(r);
            continue;
        }
        PQclear(last);
        last = r;
    }
    if (failed) {
        PQclear(last);
        return NULL;
    }
    return last;
}

/* `?N` becomes `$N`, a bare `?` the next number (as SQLite counts them); quoted text and
 * names are copied as they are. */
static char *pg_sql(const char *sql, int *nparams, unsigned char *used, size_t usedlen)
{
    size_t len = strlen(sql);
    char *out = malloc(len * 2 + 1), *o = out;
    int max = 0;
    char quote = 0;

    if (!out)
        return NULL;
    memset(used, 0, usedlen);
    for (const char *p = sql; *p; p++) {
        if (quote) {
            if (*p == quote)
                quote = 0;
            *o++ = *p;
        } else if (*p == '\'' || *p == '"') {
            quote = *p;
            *o++ = *p;
        } else if (*p == '?') {
            int n = 0;

            while (isdigit((unsigned char)p[1]))
                n = n * 10 + (*++p - '0');
            if (n == 0)
                n = max + 1;
            if (n > max)
                max = n;
            if ((size_t)n / 8 < usedlen)
                used[n / 8] |= (unsigned char)(1u << (n % 8));
            o += sprintf(o, "$%d", n);
        } else {
            *o++ = *p;
        }
    }
    *o = '\0';
    *nparams = max;
    return out;
}

/* FNV-1a: the kept statements' key, so a lookup compares whole texts only on a likely hit. */
static uint64_t stmt_hash(const char *sql)
{
    uint64_t h = 14695981039346656037ULL;

    for (const unsigned char *p = (const unsigned char *)sql; *p; p++)
        h = (h ^ *p) * 1099511628211ULL;
    return h ? h : 1; /* 0: a statement not to be kept */
}

/* The slot of a kept statement of this text, or -1. sqlite3_sql() is the text it was
 * prepared from (up to the end of its first statement: a script of several never matches). */
static int kept_find(const struct store *st, uint64_t hash, const char *sql)
{
    for (int i = 0; i < STORE_KEPT_STMTS; i++) {
        const struct store_kept_stmt *k = &st->kept[i];

        if (k->s && k->hash == hash && strcmp(sqlite3_sql(k->s->lite), sql) == 0)
            return i;
    }
    return -1;
}

static void stmt_free(struct sql_stmt *s)
{
    if (s->lite) {
        sqlite3_finalize(s->lite);
    } else {
        PQclear(s->res);
        for (int i = 0; s->owned && i < s->nparams; i++)
            free(s->owned[i]);
        free(s->owned);
        free(s->values);
        free(s->num);
        free(s->types);
        free(s->sql);
    }
    free(s);
}

/* Puts a reset statement back: not if one of its text is kept already (the two were in use
 * at once), else in a free slot or the least recently used one's. */
static void kept_put(struct store *st, struct sql_stmt *s)
{
    int slot = 0;

    if (s->hash == 0 || kept_find(st, s->hash, sqlite3_sql(s->lite)) >= 0) {
        stmt_free(s);
        return;
    }
    for (int i = 0; i < STORE_KEPT_STMTS; i++) {
        if (!st->kept[i].s) {
            slot = i;
            break;
        }
        if (st->kept[i].used < st->kept[slot].used)
            slot = i;
    }
    if (st->kept[slot].s)
        stmt_free(st->kept[slot].s);
    st->kept[slot] = (struct store_kept_stmt){.s = s, .hash = s->hash, .used = ++st->kept_clock};
}

void store_kept_drop(struct store *st)
{
    for (int i = 0; i < STORE_KEPT_STMTS; i++) {
        if (st->kept[i].s)
            stmt_free(st->kept[i].s);
        st->kept[i].s = NULL;
    }
}

/* PostgreSQL: the text with its parameters as $N, and their arrays. */
static int pg_prepare(struct store *st, const char *sql, struct sql_stmt **out, char *err,
                      size_t errlen)
{
    static _Thread_local unsigned char used[SQL_PARAMS_MAX / 8 + 1];
    struct sql_stmt *s = calloc(1, sizeof(*s));
    int n;

    if (!s)
        return store_errf(err, errlen, "prepare: out of memory");
    s->st = st;
    store_pg_revive(st); /* the statement fails at its step if that did not help */
    s->sql = pg_sql(sql, &s->nparams, used, sizeof(used));
    n = s->nparams ? s->nparams : 1;
    if (!s->sql || s->nparams > SQL_PARAMS_MAX ||
        !(s->values = calloc((size_t)n, sizeof(*s->values))) ||
        !(s->owned = calloc((size_t)n, sizeof(*s->owned))) ||
        !(s->num = calloc((size_t)n, sizeof(*s->num))) ||
        !(s->types = calloc((size_t)n, sizeof(*s->types)))) {
        const char *why =
            s->sql && s->nparams > SQL_PARAMS_MAX ? "too many parameters" : "out of memory";

        stmt_free(s);
        return store_errf(err, errlen, "prepare: %s", why);
    }
    for (int i = 1; i <= s->nparams; i++)
        s->types[i - 1] = used[i / 8] & (1u << (i % 8)) ? OID_UNKNOWN : OID_TEXT;
    *out = s;
    return 0;
}

int store_prepare(struct store *st, const char *sql, struct sql_stmt **out, char *err,
                  size_t errlen)
{
    struct sql_stmt *s;
    uint64_t hash;
    int slot;

    *out = NULL;
    if (st->backend != STORE_SQLITE)
        return pg_prepare(st, sql, out, err, errlen);
    hash = stmt_hash(sql);
    if ((slot = kept_find(st, hash, sql)) >= 0) {
        *out = st->kept[slot].s;
        st->kept[slot].s = NULL;
        return 0;
    }
    if (!(s = calloc(1, sizeof(*s))))
        return store_errf(err, errlen, "prepare: out of memory");
    s->st = st;
    s->hash = hash;
    /* Persistent: kept statements stay off the connection's small lookaside pool, which
     * one-shot work (sqlite3_exec's statements, schema reads) then has to itself. */
    if (sqlite3_prepare_v3(st->db, sql, -1, SQLITE_PREPARE_PERSISTENT, &s->lite, NULL) !=
        SQLITE_OK) {
        free(s);
        return store_sql_err(st, err, errlen, "prepare");
    }
    /* Kept only if a lookup can find it: not a script of several statements, whose text
     * SQLite keeps up to the end of the first. */
    if (!s->lite || strcmp(sqlite3_sql(s->lite), sql) != 0)
        s->hash = 0;
    *out = s;
    return 0;
}

static bool pg_index_ok(struct sql_stmt *s, int i)
{
    if (i < 1 || i > s->nparams)
        return false;
    free(s->owned[i - 1]);
    s->owned[i - 1] = NULL;
    s->types[i - 1] = OID_UNKNOWN;
    return true;
}

void sql_pg_bind_int64(struct sql_stmt *s, int i, int64_t v)
{
    if (pg_index_ok(s, i)) {
        snprintf(s->num[i - 1], sizeof(s->num[i - 1]), "%lld", (long long)v);
        s->values[i - 1] = s->num[i - 1];
        s->types[i - 1] = OID_INT8;
    }
}

void sql_bind_text(struct sql_stmt *s, int i, const char *v)
{
    if (s->lite)
        sqlite3_bind_text(s->lite, i, v, -1, SQLITE_STATIC);
    else if (pg_index_ok(s, i))
        s->values[i - 1] = v;
}

void sql_bind_textn(struct sql_stmt *s, int i, const char *v, size_t len)
{
    if (s->lite) {
        sqlite3_bind_text(s->lite, i, v, (int)len, SQLITE_STATIC);
    } else if (pg_index_ok(s, i)) {
        s->owned[i - 1] = strndup(v, len); /* libpq reads up to a NUL */
        s->values[i - 1] = s->owned[i - 1];
    }
}

void sql_bind_blob(struct sql_stmt *s, int i, const void *v, size_t len)
{
    if (s->lite) {
        sqlite3_bind_blob(s->lite, i, v, (int)len, SQLITE_STATIC);
    } else if (pg_index_ok(s, i)) {
        /* bytea's text form: \x and two hex digits a byte. */
        static const char hex[] = "0123456789abcdef";
        char *t = malloc(2 * len + 3);

        if (t) {
            t[0] = '\\';
            t[1] = 'x';
            for (size_t k = 0; k < len; k++) {
                t[2 + 2 * k] = hex[((const unsigned char *)v)[k] >> 4];
                t[3 + 2 * k] = hex[((const unsigned char *)v)[k] & 15];
            }
            t[2 + 2 * len] = '\0';
        }
        s->owned[i - 1] = t;
        s->values[i - 1] = t; /* NULL when out of memory: the step then finds nothing */
        s->types[i - 1] = OID_BYTEA;
    }
}

void sql_pg_bind_field(struct sql_stmt *s, int i, const char *field, size_t size)
{
    if (pg_index_ok(s, i)) {
        /* libpq reads text parameters up to their NUL: copy only a field that fills its
         * array without one (the fillers truncate, so this is rare). */
        if (memchr(field, '\0', size)) {
            s->values[i - 1] = field;
        } else {
            s->owned[i - 1] = strndup(field, size);
            s->values[i - 1] = s->owned[i - 1] ? s->owned[i - 1] : "";
        }
    }
}

void sql_defer(struct sql_stmt *s)
{
    s->deferred = true;
}

/* Sends a sync and reads every answer up to it. */
static int pipeline_sync(struct store *st)
{
    int nulls = 0;

    if (PQpipelineSync(st->pg) != 1)
        return pg_err(st, NULL);
    for (;;) {
        bool failed = false;
        PGresult *r = pg_next(st, &failed);
        ExecStatusType status;

        if (failed) {
            st->pg_pipeline_failed = true;
            return -1;
        }
        if (!r) {
            /* One NULL ends each statement's answer; more in a row means nothing is coming. */
            if (++nulls > 2 || PQstatus(st->pg) != CONNECTION_OK) {
                st->pg_pipeline_failed = true;
                return pg_err(st, NULL);
            }
            continue;
        }
        nulls = 0;
        status = PQresultStatus(r);
        if (status == PGRES_PIPELINE_SYNC) {
            PQclear(r);
            break;
        }
        if (status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK && !st->pg_pipeline_failed) {
            st->pg_pipeline_failed = true;
            if (status == PGRES_PIPELINE_ABORTED)
                snprintf(st->pg_err, sizeof(st->pg_err), "a deferred statement failed");
            else
                pg_err(st, r);
        }
        PQclear(r);
    }
    st->pg_unsynced = 0;
    return st->pg_pipeline_failed ? -1 : 0;
}

int sql_flush(struct store *st)
{
    int rc = 0;

    if (st->backend != STORE_PG || !st->pg_pipeline)
        return 0;
    rc = pipeline_sync(st);
    st->pg_pipeline = false;
    if (PQexitPipelineMode(st->pg) != 1 && rc == 0)
        rc = pg_err(st, NULL);
    if (st->pg_pipeline_failed) {
        st->pg_pipeline_failed = false;
        rc = -1;
    }
    return rc;
}

static int pg_step_deferred(struct sql_stmt *s)
{
    struct store *st = s->st;

    if (st->pg_pipeline_failed)
        return -1;
    if (!st->pg_pipeline) {
        if (PQenterPipelineMode(st->pg) != 1)
            return pg_err(st, NULL);
        st->pg_pipeline = true;
    }
    if (PQsendQueryParams(st->pg, s->sql, s->nparams, s->types, s->values, NULL, NULL, 0) != 1) {
        st->pg_pipeline_failed = true;
        return pg_err(st, NULL);
    }
    if (++st->pg_unsynced >= PIPELINE_SYNC_EVERY && pipeline_sync(st) < 0)
        return -1;
    return SQL_DONE;
}

int sql_pg_step(struct sql_stmt *s)
{
    struct store *st = s->st;
    const char *tuples;

    if (s->deferred)
        return pg_step_deferred(s);
    /* Anything that waits for its answer first collects the deferred ones' (libpq runs
     * nothing else in pipeline mode), and fails if one of them failed. */
    if (sql_flush(st) < 0)
        return -1;
    if (s->res) {
        if (++s->row < s->nrows)
            return SQL_ROW;
        return SQL_DONE;
    }
    /* types is never NULL: a statement without parameters still goes as one with them (the
     * extended protocol, one statement). */
    s->res = pg_exec(st, s->sql, s->nparams, s->types, s->values);
    if (!s->res)
        return -1;
    switch (PQresultStatus(s->res)) {
    case PGRES_TUPLES_OK:
    case PGRES_COMMAND_OK:
        tuples = PQcmdTuples(s->res);
        st->pg_changes = *tuples ? strtoll(tuples, NULL, 10) : 0;
        s->row = 0;
        s->nrows = PQntuples(s->res);
        return s->nrows > 0 ? SQL_ROW : SQL_DONE;
    default:
        pg_err(st, s->res);
        PQclear(s->res);
        s->res = NULL;
        return -1;
    }
}

static const char *pg_value(struct sql_stmt *s, int i)
{
    if (!s->res || s->row >= s->nrows || i >= PQnfields(s->res) || PQgetisnull(s->res, s->row, i))
        return NULL;
    return PQgetvalue(s->res, s->row, i);
}

int64_t sql_col_int64(struct sql_stmt *s, int i)
{
    const char *v;

    if (s->lite)
        return sqlite3_column_int64(s->lite, i);
    v = pg_value(s, i);
    if (!v)
        return 0;
    if (*v == 't' || *v == 'f') /* a boolean expression: SQLite gives 1 or 0 */
        return *v == 't';
    return strtoll(v, NULL, 10);
}

int sql_col_int(struct sql_stmt *s, int i)
{
    return (int)sql_col_int64(s, i);
}

const char *sql_col_text(struct sql_stmt *s, int i)
{
    if (s->lite)
        return (const char *)sqlite3_column_text(s->lite, i);
    return pg_value(s, i);
}

bool sql_col_null(struct sql_stmt *s, int i)
{
    if (s->lite)
        return sqlite3_column_type(s->lite, i) == SQLITE_NULL;
    return pg_value(s, i) == NULL;
}

void sql_pg_reset(struct sql_stmt *s)
{
    PQclear(s->res);
    s->res = NULL;
}

void sql_finalize(struct sql_stmt *s)
{
    if (!s)
        return;
    if (!s->lite) {
        stmt_free(s);
        return;
    }
    /* The reset ends its read (a reader left open would hold back every checkpoint) and
     * hands a failed step's error to the connection, as sqlite3_finalize does, for the
     * caller's sql_errmsg after this call. The bindings cleared: bound text is the caller's,
     * gone once it returns. */
    sqlite3_reset(s->lite);
    sqlite3_clear_bindings(s->lite);
    s->deferred = false;
    kept_put(s->st, s);
}

int64_t sql_last_log_id(struct store *st)
{
    PGresult *res;
    int64_t id = 0;

    if (st->backend == STORE_SQLITE)
        return sqlite3_last_insert_rowid(st->db);
    if (sql_flush(st) < 0)
        return 0;
    res = pg_exec(st, "SELECT currval(pg_get_serial_sequence('access_log', 'id'))", 0, NULL, NULL);
    if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1)
        id = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
    else if (res)
        pg_err(st, res);
    PQclear(res);
    return id;
}

int64_t sql_changes(struct store *st)
{
    return st->backend == STORE_SQLITE ? sqlite3_changes(st->db) : st->pg_changes;
}

const char *sql_errmsg(struct store *st)
{
    if (st->backend == STORE_SQLITE)
        return sqlite3_errmsg(st->db);
    return st->pg_err[0] ? st->pg_err : PQerrorMessage(st->pg);
}

bool store_unavailable(struct store *st)
{
    return st && st->backend == STORE_PG && PQstatus(st->pg) != CONNECTION_OK;
}

bool sql_conn_lost(struct store *st)
{
    int code;

    if (st->backend == STORE_PG)
        return PQstatus(st->pg) != CONNECTION_OK;
    code = sqlite3_errcode(st->db);
    return code != SQLITE_BUSY && code != SQLITE_LOCKED;
}

int sql_exec_script(struct store *st, const char *sql, char *err, size_t errlen)
{
    char *msg = NULL;
    PGresult *res;
    int rc = 0;

    if (st->backend == STORE_SQLITE) {
        if (sqlite3_exec(st->db, sql, NULL, NULL, &msg) != SQLITE_OK) {
            rc = store_errf(err, errlen, "%s", msg ? msg : sqlite3_errmsg(st->db));
            sqlite3_free(msg);
        }
        return rc;
    }
    /* The deferred statements' failure is this call's too; the script still runs (it may be
     * the ROLLBACK that clears it). */
    if (sql_flush(st) < 0)
        rc = store_errf(err, errlen, "%s", st->pg_err);
    res = pg_exec(st, sql, 0, NULL, NULL);
    if (PQresultStatus(res) != PGRES_COMMAND_OK && PQresultStatus(res) != PGRES_TUPLES_OK &&
        rc == 0)
        rc = store_errf(err, errlen, "%s", (res ? pg_err(st, res) : 0, st->pg_err));
    PQclear(res);
    return rc;
}

bool sql_tx_failed(struct store *st)
{
    return st->backend == STORE_PG && PQtransactionStatus(st->pg) == PQTRANS_INERROR;
}

bool sql_in_transaction(struct store *st)
{
    if (st->backend == STORE_SQLITE)
        return !sqlite3_get_autocommit(st->db);
    return PQtransactionStatus(st->pg) != PQTRANS_IDLE;
}

/* Room for add more bytes in c; false (and c->oom) when memory ran out. */
static bool copy_room(struct sql_copy *c, size_t add)
{
    size_t cap;
    char *nb;

    if (c->oom)
        return false;
    if (c->cap - c->len >= add)
        return true;
    cap = c->cap ? c->cap : 1 << 20;
    while (cap - c->len < add)
        cap *= 2;
    nb = realloc(c->buf, cap);
    if (!nb) {
        c->oom = true;
        return false;
    }
    c->buf = nb;
    c->cap = cap;
    return true;
}

/* Length of the UTF-8 sequence at p (at most n bytes), or 0 if it is not one. */
static size_t utf8_len(const unsigned char *p, size_t n)
{
    size_t len, i;
    uint32_t cp;

    if (p[0] < 0x80)
        return 1;
    if ((p[0] & 0xe0) == 0xc0)
        len = 2, cp = p[0] & 0x1f;
    else if ((p[0] & 0xf0) == 0xe0)
        len = 3, cp = p[0] & 0x0f;
    else if ((p[0] & 0xf8) == 0xf0)
        len = 4, cp = p[0] & 0x07;
    else
        return 0;
    if (len > n)
        return 0;
    for (i = 1; i < len; i++) {
        if ((p[i] & 0xc0) != 0x80)
            return 0;
        cp = cp << 6 | (p[i] & 0x3f);
    }
    /* Overlong forms, surrogates and beyond U+10FFFF are not UTF-8 either. */
    if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) ||
        (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff)
        return 0;
    return len;
}

void sql_copy_text(struct sql_copy *c, const char *field, size_t size)
{
    const unsigned char *p = (const unsigned char *)field;
    size_t n = strnlen(field, size), i = 0;
    char *o;

    if (!copy_room(c, 2 * n + 1))
        return;
    o = c->buf + c->len;
    while (i < n) {
        size_t k = utf8_len(p + i, n - i);

        if (k == 0) {
            *o++ = '?';
            i++;
            continue;
        }
        if (k > 1) {
            memcpy(o, p + i, k);
            o += k;
            i += k;
            continue;
        }
        switch (p[i]) {
        case '\\':
            *o++ = '\\', *o++ = '\\';
            break;
        case '\n':
            *o++ = '\\', *o++ = 'n';
            break;
        case '\r':
            *o++ = '\\', *o++ = 'r';
            break;
        case '\t':
            *o++ = '\\', *o++ = 't';
            break;
        default:
            *o++ = (char)p[i];
        }
        i++;
    }
    *o++ = '\t';
    c->len = (size_t)(o - c->buf);
}

void sql_copy_int(struct sql_copy *c, int64_t v)
{
    if (copy_room(c, 24))
        c->len += (size_t)snprintf(c->buf + c->len, 24, "%lld\t", (long long)v);
}

void sql_copy_row_end(struct sql_copy *c)
{
    if (!c->oom && c->len > 0)
        c->buf[c->len - 1] = '\n'; /* the last column's tab */
}

int sql_copy_send(struct store *st, struct sql_copy *c, const char *copy_sql)
{
    int rc;

    if (c->oom) {
        c->oom = false;
        c->len = 0;
        snprintf(st->pg_err, sizeof(st->pg_err), "COPY: out of memory");
        return -1;
    }
    rc = sql_copy_send_text(st, c->buf, c->len, copy_sql);
    c->len = 0;
    return rc;
}

int sql_copy_send_text(struct store *st, const char *text, size_t len, const char *copy_sql)
{
    PGresult *res;
    int rc = 0;

    if (len == 0)
        return 0;
    if (sql_flush(st) < 0)
        return -1;
    res = pg_exec(st, copy_sql, 0, NULL, NULL);
    if (PQresultStatus(res) != PGRES_COPY_IN) {
        rc = res ? pg_err(st, res) : -1;
        PQclear(res);
        return rc;
    }
    PQclear(res);
    /* A megabyte at a time, each sent before the next is queued (nonblocking libpq would
     * otherwise hold the whole text once more), every wait within the bound (pg_wait: in COPY
     * it waits for the socket only). A wait that fails has closed the connection. */
    for (size_t off = 0; off < len && rc == 0;) {
        size_t n = len - off < (1u << 20) ? len - off : (1u << 20);
        int put = PQputCopyData(st->pg, text + off, (int)n);

        if (put < 0)
            rc = pg_err(st, NULL);
        else if (pg_wait(st) < 0)
            return -1;
        else if (put == 1)
            off += n;
    }
    for (int end = 0; end == 0;) {
        end = PQputCopyEnd(st->pg, rc < 0 ? "client failed" : NULL);
        if (end < 0 && rc == 0)
            rc = pg_err(st, NULL);
        if (end >= 0 && pg_wait(st) < 0)
            return -1;
    }
    bool failed = false;
    while ((res = pg_next(st, &failed))) {
        if (PQresultStatus(res) != PGRES_COMMAND_OK && rc == 0)
            rc = pg_err(st, res);
        PQclear(res);
    }
    return failed ? -1 : rc;
}

void sql_copy_free(struct sql_copy *c)
{
    free(c->buf);
    memset(c, 0, sizeof(*c));
}
