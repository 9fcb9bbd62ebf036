/* storage internals shared by the store_*.c files: the definition of struct store, the
 * migration steps, transaction and error helpers, the audit/policy-version hooks every policy
 * change goes through, and the rule hit tally the writer and retention keep current.
 *
 * Not an interface: nothing outside storage/ includes this file, except the storage unit
 * tests (to build an old-version database for the migration test).
 */
#ifndef PX_STORE_IMPL_H
#define PX_STORE_IMPL_H

#include <libpq-fe.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <string.h>

#include "storage/store.h"

/* The two engines behind store.h. Every query is written once, in the SQL both accept; the
 * few places where they differ are fragments of sql_dialect (store_sql.c), one per backend. */
enum store_backend { STORE_SQLITE, STORE_PG };

/* SQLite statements kept between uses (store_sql.c): a prepare costs tens to hundreds of
 * thousands of instructions, a reset hundreds, and what runs by the clock (the poll thread's
 * reads, the writer's rollup flush and retention) prepares the same few texts every turn.
 * Bounded, so texts that differ every time (placeholder lists of varying length) only churn
 * the least recently used entries. */
#define STORE_KEPT_STMTS 32
struct store_kept_stmt {
    struct sql_stmt *s; /* owned, reset and unbound; NULL: a free slot */
    uint64_t hash;      /* of its SQL text (stmt_hash) */
    uint64_t used;      /* st->kept_clock when it was put back: the lowest is evicted */
};

struct store {
    enum store_backend backend;
    sqlite3 *db; /* owned; SQLite only */
    PGconn *pg;  /* owned; PostgreSQL only */
    char *path;  /* owned copy of the path or conninfo given to store_open */
    /* PostgreSQL: rows the last statement touched, and its error (SQLite keeps both itself). */
    int64_t pg_changes;
    char pg_err[256];
    int busy_timeout_ms;        /* PostgreSQL: lock_timeout, set again on a new connection */
    enum store_purpose purpose; /* PostgreSQL: its session limits, set again likewise */
    int answer_ms;              /* PostgreSQL: the longest wait for an answer (0: none) */
    int64_t pg_revive_ms;       /* PostgreSQL: monotonic, no reconnection attempt before */
    uint64_t revived;           /* PostgreSQL: reconnections so far (LISTEN must be sent again) */
    bool listening;             /* PostgreSQL: store_policy_wait sent LISTEN ... */
    uint64_t listen_revived;    /* ... on the connection of this many reconnections */
    /* PostgreSQL: answer_ms is past the purpose's statement_timeout, so a wait cut at it met a
     * server that does not answer, not a slow statement (store_sql.c, unanswered_since_ms). */
    bool cut_means_frozen;
    /* PostgreSQL: deferred statements sent in pipeline mode and not yet answered (sql_defer),
     * and whether one of them failed (the transaction is then lost). */
    bool pg_pipeline;
    size_t pg_unsynced;
    bool pg_pipeline_failed;
    /* PostgreSQL: transactions leave the policy lock alone (the log writer: its batches
     * never read policy, and must not wait behind an admin's change). */
    bool no_policy_lock;
    int depth; /* transaction levels open (store_begin), see store_begin */
    /* The policy version being written (store_version.c): the outermost commit records it
     * with who, when, a message and the rules it leaves. Reset by the outermost begin. */
    bool version_pending;      /* the policy version moved in this transaction */
    bool in_group;             /* inside store_change_begin: the group bumps the version once */
    int64_t group_base;        /* the version the group started at */
    bool message_set;          /* store_change_message gave the message */
    char version_actor[160];   /* the last actor audited in this transaction */
    char version_message[512]; /* the message, or the audited changes joined by "; " */
    /* What the version keeps of the lists: unchanged (share the version before's), changed
     * (compare each list with the version before's), or, after a rollback, lists_like's. */
    bool lists_changed;
    int64_t lists_like; /* a rollback restored the lists of this version; 0: none */
    struct store_kept_stmt kept[STORE_KEPT_STMTS]; /* SQLite only */
    uint64_t kept_clock;
    bool in_net_registered; /* SQLite: the log search's px_in_net() is on this connection */
    /* store_retention_step's sums, kept for the next step (owned; NULL until the first). */
    struct store_hit_tally *retention_tally;
    struct store_rollup_acc *retention_acc;
};

/* One schema step. Steps run in order inside one transaction at open; each one run is
 * recorded (schema_steps), so a database gets every step it has not run, also one numbered
 * below its version (steps are numbered ahead and may land out of order). The array is sorted
 * by version, each version once. Never edit a released step: add a new one. */
struct store_migration {
    int version;
    const char *sql; /* constant DDL, no user input */
};
extern const struct store_migration store_migrations[];
extern const size_t store_migrations_count;
/* The same step for PostgreSQL, for the steps whose SQL differs there. */
extern const struct store_migration store_migrations_pg[];
extern const size_t store_migrations_pg_count;

/* Opens like store_open_for with a chosen busy timeout (the writer uses a short one). */
struct store *store_open_timeout(const char *path, enum store_purpose purpose, int busy_timeout_ms,
                                 char *err, size_t errlen);

/* PostgreSQL: a connection that broke (server restarted, network cut) is opened again,
 * outside a transaction and at most once a second; every statement's prepare asks first.
 * 0 when the connection is up (or SQLite, or inside a transaction), -1 while it is not. */
int store_pg_revive(struct store *st);
/* Whether the give-up time (store_pg_give_up_at) has passed: no connection is then made or
 * made again (each attempt would cost its connect_timeout). */
bool store_pg_given_up(void);

/* The database as messages name it: the SQLite path, or "PostgreSQL" (a conninfo may hold
 * a password). */
const char *store_name(const struct store *st);

/* Formats into err (if any) and returns -1, so error paths read `return store_errf(...)`. */
int store_errf(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* "what: <sqlite message>" into err; returns -1. */
int store_sql_err(struct store *st, char *err, size_t errlen, const char *what);

/* ---- The driver: one prepared statement of either backend (store_sql.c) ----
 *
 * The calls mirror SQLite's (prepare, bind, step, column, reset, finalize), so every query is
 * written once: `?` and `?N` parameters, which PostgreSQL gets as $N. Text bound by
 * sql_bind_text must stay valid until the step that uses it. PostgreSQL runs a statement at
 * its first step and hands its rows out one per step after that. */
struct sql_stmt;
enum { SQL_ROW = 100, SQL_DONE = 101 }; /* sql_step; anything else is an error */

/* A statement for sql (owned by the caller until sql_finalize): on SQLite one kept from an
 * earlier use of the same text if there is one, taken out so no two users share it. 0, or
 * -1 with "prepare: <message>" in err. */
int store_prepare(struct store *st, const char *sql, struct sql_stmt **out, char *err,
                  size_t errlen);
/* Finalizes every kept statement (before the connection closes: SQLite refuses to close one
 * with statements left). */
void store_kept_drop(struct store *st);
void sql_bind_text(struct sql_stmt *s, int i, const char *v);
/* len bytes of text at v (no NUL needed after them), valid until the step that uses them. */
void sql_bind_textn(struct sql_stmt *s, int i, const char *v, size_t len);
/* len bytes of binary (a BLOB; PostgreSQL: bytea), valid until the step that uses them. */
void sql_bind_blob(struct sql_stmt *s, int i, const void *v, size_t len);
/* The calls a log batch makes for each row are inline: on SQLite they are SQLite's own
 * behind one branch (the writer's cost per row stays SQLite's). The pg ones are store_sql.c's. */
struct sql_stmt { /* store_sql.c; its fields are no one else's */
    struct store *st;
    sqlite3_stmt *lite; /* SQLite; NULL for PostgreSQL */
    /* PostgreSQL */
    char *sql; /* owned, parameters as $N */
    int nparams;
    /* Each nparams long, owned, allocated at prepare (none while binding or stepping). */
    const char **values;
    char **owned; /* copies made by sql_bind_field and sql_bind_blob */
    char (*num)[24];
    Oid *types;
    PGresult *res;
    int row, nrows;
    bool deferred; /* sql_defer */
    uint64_t hash; /* SQLite: of the text it was prepared from; 0: not to be kept */
};

void sql_pg_bind_int64(struct sql_stmt *s, int i, int64_t v);
void sql_pg_bind_field(struct sql_stmt *s, int i, const char *field, size_t size);
int sql_pg_step(struct sql_stmt *s);
void sql_pg_reset(struct sql_stmt *s);

static inline void sql_bind_int64(struct sql_stmt *s, int i, int64_t v)
{
    if (s->lite)
        sqlite3_bind_int64(s->lite, i, v);
    else
        sql_pg_bind_int64(s, i, v);
}

/* A char array of size bytes holding text up to its first NUL, or all of it without one. */
static inline void sql_bind_field(struct sql_stmt *s, int i, const char *field, size_t size)
{
    if (s->lite)
        sqlite3_bind_text(s->lite, i, field, (int)strnlen(field, size), SQLITE_STATIC);
    else
        sql_pg_bind_field(s, i, field, size);
}

static inline int sql_step(struct sql_stmt *s)
{
    return s->lite ? sqlite3_step(s->lite) : sql_pg_step(s);
}

/* Ready to step again, with the same bindings. */
static inline void sql_reset(struct sql_stmt *s)
{
    if (s->lite)
        sqlite3_reset(s->lite);
    else
        sql_pg_reset(s);
}

int64_t sql_col_int64(struct sql_stmt *s, int i); /* NULL reads as 0 */
int sql_col_int(struct sql_stmt *s, int i);
const char *sql_col_text(struct sql_stmt *s, int i); /* NULL for NULL */
bool sql_col_null(struct sql_stmt *s, int i);
/* Marks s as one whose steps need no answer before the next (bulk inserts in a loop): on
 * PostgreSQL they are sent without waiting (libpq's pipeline mode), so a loop of them is not
 * a round trip per row; an error shows at a later step, at sql_flush or at store_commit, and
 * loses the transaction. SQLite steps it at once as ever. Statements with rows are never
 * deferred. */
void sql_defer(struct sql_stmt *s);
/* Waits for every deferred statement sent on st: 0, or -1 (sql_errmsg says why). */
int sql_flush(struct store *st);
/* Ends the caller's use of s (NULL does nothing). A SQLite statement is reset, its bindings
 * cleared, and kept for the next store_prepare of its text (store.h's thread rule holds: it
 * stays with its connection); the least recently used one is finalized when all slots are
 * taken. */
void sql_finalize(struct sql_stmt *s);
/* The id the last row inserted into access_log took (on PostgreSQL after the deferred
 * statements are answered). */
int64_t sql_last_log_id(struct store *st);
/* Rows the last INSERT, UPDATE or DELETE touched. */
int64_t sql_changes(struct store *st);
const char *sql_errmsg(struct store *st);
/* After an error: whether the connection itself is in doubt (reopen it) rather than a lock
 * that someone else held. */
bool sql_conn_lost(struct store *st);
/* Runs constant SQL of one or more statements without results (migrations). 0, or -1 with
 * the engine's message in err. */
int sql_exec_script(struct store *st, const char *sql, char *err, size_t errlen);
/* Whether the open transaction is lost: PostgreSQL aborts it at the first error (a COMMIT
 * would then roll back and say so only in its command tag). */
bool sql_tx_failed(struct store *st);
/* Whether a transaction is open on st (also one PostgreSQL aborted after an error). */
bool sql_in_transaction(struct store *st);

/* PostgreSQL's COPY FROM STDIN (text format), for the log writer: rows are formatted into one
 * buffer (grown as needed and kept for the next batch) and sent as one COPY, which costs the
 * server a fraction of an INSERT a row. */
struct sql_copy {
    char *buf; /* owned */
    size_t len, cap;
    bool oom; /* a row did not fit and memory ran out: the send fails */
};
/* Appends a text column: a char array of size bytes holding text up to its first NUL (or all
 * of it), escaped for COPY, bytes that are not UTF-8 replaced by '?' (PostgreSQL refuses
 * them and would refuse the whole COPY). */
void sql_copy_text(struct sql_copy *c, const char *field, size_t size);
void sql_copy_int(struct sql_copy *c, int64_t v);
/* Ends the row. */
void sql_copy_row_end(struct sql_copy *c);
/* Runs copy_sql ("COPY t(cols) FROM STDIN") with the rows so far, inside the caller's
 * transaction, and empties the buffer either way. 0, or -1 (sql_errmsg says why). */
int sql_copy_send(struct store *st, struct sql_copy *c, const char *copy_sql);
/* The same for len bytes of rows already in COPY's text format (each ending in a newline). */
int sql_copy_send_text(struct store *st, const char *text, size_t len, const char *copy_sql);
void sql_copy_free(struct sql_copy *c);

/* What the engines spell differently. Each entry is written once, for both, in store_sql.c. */
enum sql_fragment {
    SQL_BEGIN_WRITE,     /* a transaction that changes policy: takes the write lock up front */
    SQL_BEGIN_LOG,       /* a transaction of the log writer */
    SQL_READ_BEGIN,      /* a read-only snapshot (store_policy_read) outside a transaction */
    SQL_READ_END,        /* its end */
    SQL_BEGIN_SNAPSHOT,  /* a read transaction whose statements all see one moment */
    SQL_LIKE,            /* case-insensitive (ASCII) LIKE */
    SQL_LEAST,           /* the smaller of two values */
    SQL_INDEXED_BY_TIME, /* after "FROM access_log": read it by the time index */
    SQL_NEXT_RULE_ID,    /* one more than the largest rule id ever handed out */
    SQL_CLIENT_PREFIX,   /* " AND" the client starts with ?, given twice (no index used) */
    SQL_NOW_MS,          /* the database's wall clock, ms since the epoch */
    SQL_FRAGMENT_COUNT
};
const char *sql_frag(const struct store *st, enum sql_fragment f);

/* BEGIN IMMEDIATE: policy writers take the write lock up front, so a transaction never fails
 * half way on a lock upgrade. Inside an open transaction (store_change_begin) it opens a
 * savepoint instead: store_commit then keeps the work for the outer commit and store_rollback
 * undoes only this level, so every change function can run alone or as part of a group. */
int store_begin(struct store *st, char *err, size_t errlen);
int store_commit(struct store *st, char *err, size_t errlen);
void store_rollback(struct store *st);
/* Runs one constant statement without results (inside a caller's transaction). */
int store_exec(struct store *st, const char *sql, char *err, size_t errlen);
/* Runs sql with one text parameter (?1) and no results. Returns 0, or -1 with "what: <sqlite
 * message>" in err. sqlite3_changes() then tells how many rows it touched. */
int store_exec_text(struct store *st, const char *sql, const char *arg, const char *what, char *err,
                    size_t errlen);

/* Makes room for element len in the growing array *vp of cap elements of elem bytes: the
 * first allocation holds first elements, each next one twice as many. vp points to the
 * caller's array pointer (any type). Returns 0, or -1 when out of memory (array untouched). */
int store_array_reserve(void *vp, size_t *cap, size_t len, size_t first, size_t elem);

/* How a query's row becomes an element: fill(s, element) reads the columns into it. */
typedef void (*store_row_fill)(struct sql_stmt *s, void *element);
/* Every row of s (prepared and bound by the caller, finalized here) into a new array of elem
 * bytes each, *(T **)vp (owned, free; NULL and *n 0 on failure). 0, or -1 with err naming
 * what. */
int store_rows_read(struct store *st, struct sql_stmt *s, store_row_fill fill, size_t elem,
                    void *vp, size_t *n, const char *what, char *err, size_t errlen);
/* The first row of s (finalized here) into out. 0; 1 when there is none; -1 with err naming
 * what. */
int store_row_read(struct store *st, struct sql_stmt *s, store_row_fill fill, void *out,
                   const char *what, char *err, size_t errlen);

/* Both run inside the caller's transaction. */
int store_audit_add(struct store *st, const char *actor, const char *action, const char *detail,
                    char *err, size_t errlen);
int store_policy_bump(struct store *st, char *err, size_t errlen);
/* The outermost commit of a transaction that moved the policy version calls this first:
 * the version's row in policy_versions (who, when, message), the rules and the lists it
 * leaves. */
int store_version_record(struct store *st, char *err, size_t errlen);
/* Called for each audit row a transaction writes: its actor and action make the version's
 * default message. */
void store_version_note(struct store *st, const char *actor, const char *action,
                        const char *detail);

/* Per-rule counts gathered in memory (a batch of inserted or deleted log rows), then added
 * to table rule_hits in one upsert per rule: hits (rows the rule decided) and undecided
 * (times its regex hit the match limit). Rule 0 (the default) is not counted. */
#define STORE_TALLY_SLOTS 512
struct store_hit_tally {
    int32_t rule_id[STORE_TALLY_SLOTS]; /* 0 = free slot */
    int64_t count[STORE_TALLY_SLOTS];
    int64_t undecided[STORE_TALLY_SLOTS];
    size_t used;
};
void store_tally_reset(struct store_hit_tally *t);
/* Adds hits and undecided to rule_id's counts. Returns false when the tally is full (flush it
 * and add again). */
bool store_tally_add(struct store_hit_tally *t, int32_t rule_id, int64_t hits, int64_t undecided);
/* Applies the tally inside the caller's transaction and resets it. */
int store_tally_flush(struct store *st, struct store_hit_tally *t, char *err, size_t errlen);

/* The access-log writer's syslog sink (store_syslog.c; new, free and flush in store.h),
 * writer thread only. add formats one record and sends it, or queues it (TCP), or drops it,
 * never waiting. counts: messages sent and dropped so far. */
void store_syslog_add(struct store_syslog *s, const struct store_access *a, const char *node);
void store_syslog_counts(const struct store_syslog *s, uint64_t *sent, uint64_t *dropped);

/* ---- Rollups (store_rollup.c) ----
 * Table access_rollup: per bucket (a minute, an hour or a day: level_ms), dimension, key and
 * node, the sums of the access rows of that bucket with that key written by that node (a
 * node's totals: its STORE_DIM_ALL rows). Every row with an id at or below
 * the watermark (access_rollup_watermark.rolled_id) is in them, no other row; readers add the
 * rows above it from the raw log (store_rollup_read), so a sum read equals a count of the
 * rows. */
#define STORE_ROLLUP_LEVELS 3 /* minute, hour, day */
#define STORE_ROLLUP_KEY_MAX 255
enum store_rollup_dim {
    STORE_DIM_ALL, /* key "" */
    STORE_DIM_HOST,
    STORE_DIM_CLIENT,
    STORE_DIM_RULE, /* key: the rule id in decimal, "0" for the default */
    STORE_ROLLUP_DIMS
};
struct store_rollup_sums {
    int64_t requests, blocked, reported; /* blocked: decision deny; reported: report */
    int64_t bytes_up, bytes_down, blocked_bytes, reported_bytes;
};
/* What of an access row the rollups need. */
struct store_rollup_row {
    int64_t id; /* > 0: added rows go into the minute's id range (access_log_minutes) */
    int64_t time_ms;
    const char *host, *client, *user, *node;
    int32_t rule_id;
    int decision;
    int64_t bytes_up, bytes_down;
};
/* Table access_visits: per hour (level_ms, the hour only), host, client, user and node, the
 * requests and denied requests of those rows and their first and last time (NULL once
 * retention took a row of them away: the reader then asks the rows), under the same
 * watermark: who visited a host reads these, not every row of the range. */
#define STORE_VISIT_LEVEL_MS 3600000LL
/* Sums gathered in memory, applied by store_rollup_flush (an upsert per (bucket, key, node) on
 * SQLite, one for them all on PostgreSQL).
 * Holds at least keys (bucket, key, node) triples (about 300 bytes each) before it says it is
 * full. */
struct store_rollup_acc;
struct store_rollup_acc *store_rollup_new(size_t keys); /* NULL when out of memory */
void store_rollup_free(struct store_rollup_acc *acc);
void store_rollup_clear(struct store_rollup_acc *acc);
bool store_rollup_empty(const struct store_rollup_acc *acc);
/* Adds one row (sign 1) or takes one away (-1) at every level and dimension, and to its
 * hour's visit (access_visits). Returns false,
 * adding nothing, when the accumulator is full: flush it and add again. */
bool store_rollup_add(struct store_rollup_acc *acc, const struct store_rollup_row *r, int sign);
/* Applies acc inside the caller's transaction (a bucket left without requests is deleted; the
 * added rows' ids widen their minutes' id ranges in access_log_minutes, which thus cover
 * every row at or below the watermark), sets the watermark to rolled_id unless it is
 * negative, and empties acc. 0, or -1 with err
 * (acc emptied all the same: the caller rolls back). */
int store_rollup_flush(struct store *st, struct store_rollup_acc *acc, int64_t rolled_id, char *err,
                       size_t errlen);
/* The watermark, or -1 with err. */
int64_t store_rollup_watermark(struct store *st, char *err, size_t errlen);
/* Inside the caller's transaction: rolls up at most max rows above the watermark (in id
 * order, whichever node wrote them, through acc, which it empties first) and moves the
 * watermark past them (*rolled: where it left it); *done says it reached the newest row.
 * Returns rows rolled up, or -1 with err. */
int64_t store_rollup_catch_up(struct store *st, struct store_rollup_acc *acc, int64_t max,
                              bool *done, int64_t *rolled, char *err, size_t errlen);
/* Inside the caller's transaction: deletes every rollup row of every level and dimension
 * whose bucket starts in [lo, hi), those hours' visits and those minutes' id ranges, for rows
 * leaving whole buckets at once (a day's table dropped). 0, or -1 with err. */
int store_rollup_drop_range(struct store *st, int64_t lo, int64_t hi, char *err, size_t errlen);
/* The access_log columns the rollups need: selected from column first on, store_rollup_row_of
 * reads one row (its strings valid until the next step). */
#define STORE_ROLLUP_ROW_COLS                                                                      \
    "time_ms, host, client, rule_id, node, decision, bytes_up, bytes_down, \"user\""
void store_rollup_row_of(struct sql_stmt *s, int first, struct store_rollup_row *r);
/* Hands fn the sums of dim over [lo, hi): rollup rows for whole buckets (bucket_ms their
 * start), one call per raw row (bucket_ms its time) for the partial minutes at the edges and
 * for the rows above the watermark. Only buckets whose length divides unit_ms are used (0:
 * any). only: a decision (STORE_DENY, STORE_REPORT) whose rows alone are handed over (rollup
 * rows that have some; the caller reads their blocked or reported sums), or -1 for all. node:
 * the rows of that node only, or NULL for every node's (then a (bucket, key) may come once
 * per node: fn adds them up, and counts a key once). Call it inside a read transaction, so
 * the watermark and the rows agree. 0, or -1 with err. */
typedef void (*store_rollup_fn)(void *arg, int64_t bucket_ms, const char *key, size_t keylen,
                                const struct store_rollup_sums *sums);
int store_rollup_read(struct store *st, enum store_rollup_dim dim, int64_t lo, int64_t hi,
                      int64_t unit_ms, int only, const char *node, store_rollup_fn fn, void *arg,
                      char *err, size_t errlen);
/* Whether arg has seen key already. */
typedef bool (*store_rollup_seen_fn)(void *arg, const char *key, size_t keylen);
/* Hands fn every key of dim with rows in [lo, hi) (at least once; the sums are not the key's:
 * for counting distinct keys), reading fewer rollup rows than store_rollup_read: in the
 * partial hours at the range's edges only the keys seen asks about. Inside a read
 * transaction. 0, or -1 with err. */
int store_rollup_keys(struct store *st, enum store_rollup_dim dim, int64_t lo, int64_t hi,
                      const char *node, store_rollup_fn fn, store_rollup_seen_fn seen, void *arg,
                      char *err, size_t errlen);

#endif
