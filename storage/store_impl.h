/* storage internals shared by the store_*.c files: the definition of struct store, the
 * migration steps, transaction and error helpers, the audit/policy-version hooks every policy
 * change goes through, and the rule hit tally the writer and retention keep current.
 *
 * Not an interface: nothing outside storage/ includes this file, except the storage unit
 * tests (to build an old-version database for the migration test).
 */
#ifndef PX_STORE_IMPL_H
#define PX_STORE_IMPL_H

#include <sqlite3.h>
#include <stdarg.h>

#include "storage/store.h"

struct store {
    sqlite3 *db; /* owned */
    char *path;  /* owned copy of the path given to store_open */
    int depth;   /* transaction levels open (store_begin), see store_begin */
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

/* Opens like store_open with a chosen busy timeout (the writer uses a short one). */
struct store *store_open_timeout(const char *path, int busy_timeout_ms, char *err, size_t errlen);

/* Formats into err (if any) and returns -1, so error paths read `return store_errf(...)`. */
int store_errf(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* "what: <sqlite message>" into err; returns -1. */
int store_sql_err(struct store *st, char *err, size_t errlen, const char *what);

int store_prepare(struct store *st, const char *sql, sqlite3_stmt **out, char *err, size_t errlen);
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

/* The access-log writer's syslog sink (store_syslog.c), writer thread only. new: target as
 * --syslog takes it (/dev/log, udp://HOST:PORT, tcp://HOST:PORT; a name is looked up now),
 * node the HOSTNAME field; NULL with err. add formats one record and sends it, or queues it
 * (TCP), or drops it, never waiting; flush writes queued TCP frames, reconnecting at most
 * once a second. counts: messages sent and dropped so far. */
struct store_syslog;
struct store_syslog *store_syslog_new(const char *target, const char *node, char *err,
                                      size_t errlen);
void store_syslog_free(struct store_syslog *s);
void store_syslog_add(struct store_syslog *s, const struct store_access *a, const char *node);
void store_syslog_flush(struct store_syslog *s);
void store_syslog_counts(const struct store_syslog *s, uint64_t *sent, uint64_t *dropped);

/* ---- Rollups (store_rollup.c) ----
 * Table access_rollup: per bucket (a minute, an hour or a day: level_ms), dimension and key,
 * the sums of the access rows of that bucket with that key. Every row with an id at or below
 * the watermark (access_rollup_state.rolled_id) is in them, no other row; readers add the
 * rows above it from the raw log (store_rollup_read), so a sum read equals a count of the
 * rows. */
#define STORE_ROLLUP_LEVELS 3 /* minute, hour, day */
#define STORE_ROLLUP_KEY_MAX 255
enum store_rollup_dim {
    STORE_DIM_ALL, /* key "" */
    STORE_DIM_HOST,
    STORE_DIM_CLIENT,
    STORE_DIM_RULE, /* key: the rule id in decimal, "0" for the default */
    STORE_DIM_NODE,
    STORE_ROLLUP_DIMS
};
struct store_rollup_sums {
    int64_t requests, blocked, reported; /* blocked: decision deny; reported: report */
    int64_t bytes_up, bytes_down, blocked_bytes, reported_bytes;
};
/* What of an access row the rollups need. */
struct store_rollup_row {
    int64_t time_ms;
    const char *host, *client, *node;
    int32_t rule_id;
    int decision;
    int64_t bytes_up, bytes_down;
};
/* Sums gathered in memory, applied with one upsert per (bucket, key) by store_rollup_flush.
 * Holds at least keys (bucket, key) pairs (about 300 bytes each) before it says it is full. */
struct store_rollup_acc;
struct store_rollup_acc *store_rollup_new(size_t keys); /* NULL when out of memory */
void store_rollup_free(struct store_rollup_acc *acc);
void store_rollup_clear(struct store_rollup_acc *acc);
bool store_rollup_empty(const struct store_rollup_acc *acc);
/* Adds one row (sign 1) or takes one away (-1) at every level and dimension. Returns false,
 * adding nothing, when the accumulator is full: flush it and add again. */
bool store_rollup_add(struct store_rollup_acc *acc, const struct store_rollup_row *r, int sign);
/* Applies acc inside the caller's transaction (a bucket left without requests is deleted),
 * sets the watermark to rolled_id unless it is negative, and empties acc. 0, or -1 with err
 * (acc emptied all the same: the caller rolls back). */
int store_rollup_flush(struct store *st, struct store_rollup_acc *acc, int64_t rolled_id, char *err,
                       size_t errlen);
/* The watermark, or -1 with err. */
int64_t store_rollup_watermark(struct store *st, char *err, size_t errlen);
/* Inside the caller's transaction: rolls up at most max rows above the watermark (in id
 * order, through acc, which it empties first) and moves the watermark past them; *done says
 * it reached the newest row. Returns rows rolled up, or -1 with err. */
int64_t store_rollup_catch_up(struct store *st, struct store_rollup_acc *acc, int64_t max,
                              bool *done, char *err, size_t errlen);
/* The access_log columns the rollups need: selected from column first on, store_rollup_row_of
 * reads one row (its strings valid until the next step). */
#define STORE_ROLLUP_ROW_COLS "time_ms, host, client, rule_id, node, decision, bytes_up, bytes_down"
void store_rollup_row_of(sqlite3_stmt *s, int first, struct store_rollup_row *r);
/* Hands fn the sums of dim over [lo, hi): rollup rows for whole buckets (bucket_ms their
 * start), one call per raw row (bucket_ms its time) for the partial minutes at the edges and
 * for the rows above the watermark. Only buckets whose length divides unit_ms are used (0:
 * any). only: a decision (STORE_DENY, STORE_REPORT) whose rows alone are handed over (rollup
 * rows that have some; the caller reads their blocked or reported sums), or -1 for all. Call
 * it inside a read transaction, so the watermark and the rows agree. 0, or -1 with err. */
typedef void (*store_rollup_fn)(void *arg, int64_t bucket_ms, const char *key, size_t keylen,
                                const struct store_rollup_sums *sums);
int store_rollup_read(struct store *st, enum store_rollup_dim dim, int64_t lo, int64_t hi,
                      int64_t unit_ms, int only, store_rollup_fn fn, void *arg, char *err,
                      size_t errlen);

#endif
