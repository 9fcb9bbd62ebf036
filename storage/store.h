/* storage: the database of proxyd, SQLite or PostgreSQL (store_open's path). Schema and
 * migrations, the access-log writer thread fed by lock-free per-worker queues, the policy
 * store (rules, lists, users, admins, settings, audit), the queries the admin side needs and
 * its connection pool.
 *
 * One struct store wraps one connection (SQLite or libpq) and is used by one thread at a time
 * (open one per thread that needs it, or borrow one from a store_pool; SQLite's WAL mode and
 * PostgreSQL's MVCC let them read while the writer writes). Every statement is prepared;
 * errors are returned with a message in the caller's buffer, never printed. Never includes
 * proxy/ or web-admin/ headers.
 */
#ifndef PX_STORE_H
#define PX_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/stats.h"
#include "base/status.h"

/* ---- Opening ---- */

struct store;

/* Whether path names a PostgreSQL database rather than an SQLite file: a postgresql:// or
 * postgres:// URI, or a libpq key=value conninfo ("host=db1 dbname=proxyd"). */
bool store_path_is_pg(const char *path);

/* Opens (creating if needed, mode 0600, which its -wal and -shm files take over) the
 * database at path, sets WAL mode and a busy timeout, and runs migrations up to the current
 * schema version. Returns the store, or NULL with err
 * filled ("var/proxyd.db: unable to open database file"). */
struct store *store_open(const char *path, char *err, size_t errlen);
/* What a connection is for. PostgreSQL gives each its own limits (store_db.c, pg_purposes):
 * how long a statement may run, how long a transaction may sit idle (a frozen node must not
 * hold the fleet's locks), and how long a lock is waited for; all of them with TCP keepalives,
 * so a server that vanished is noticed in seconds, not in the system's minutes. What the
 * conninfo sets itself (keepalives_idle=..., options='-c statement_timeout=...') wins. */
enum store_purpose {
    STORE_FOR_ADMIN,        /* admin requests, policy loads, auth, forwards: store_open */
    STORE_FOR_EXPORT,       /* one long read of the whole log: store_open_lean */
    STORE_FOR_LOG_WRITER,   /* the access-log writer (store_log.c) */
    STORE_FOR_NODE_BEAT,    /* the node heartbeat */
    STORE_FOR_POLICY_WATCH, /* the wait for other nodes' policy changes (LISTEN) */
    STORE_PURPOSE_COUNT
};
/* store_open for a purpose (store_open is STORE_FOR_ADMIN). */
struct store *store_open_for(const char *path, enum store_purpose purpose, char *err,
                             size_t errlen);
void store_close(struct store *st);
/* PostgreSQL: from mono_ms on (clock_mono_ms), every wait of this process for the server ends
 * at once, failing (its connection closed), whatever its own bound: a stop sets it so that
 * threads in a statement to a frozen server can be joined. A later call moves it; 0 takes it
 * back. Any thread. */
void store_pg_give_up_at(int64_t mono_ms);
/* After a failed call: whether it failed because the database is not reachable (PostgreSQL:
 * its connection is down: the server cut it, could not be reached, or did not answer within
 * the bound), rather than for what the call asked. NULL and SQLite: false. */
bool store_unavailable(struct store *st);
/* store_open for one long read (an export of the whole log) that must not grow the process
 * with what it reads: no memory map, a 2 MiB page cache. Close it with store_close. */
struct store *store_open_lean(const char *path, char *err, size_t errlen);
int store_schema_version(struct store *st);

/* ---- Connection pool ----
 *
 * For threads that each need a connection for a short while (the admin server's request
 * threads): a store is handed to one thread at a time and given back, so a request does not
 * pay for an open (and its schema check) and idle connections stay few. */

struct store_pool;

/* A pool of connections to the database at path, keeping at most idle_max idle ones. Opens
 * nothing yet. Returns NULL with err filled when out of memory. */
struct store_pool *store_pool_new(const char *path, size_t idle_max, char *err, size_t errlen);
/* An idle connection, or a new one (store_open: the first one runs migrations). It belongs
 * to the caller until store_pool_put. Returns NULL with err filled when the database cannot
 * be opened. Any thread. */
struct store *store_pool_get(struct store_pool *pool, char *err, size_t errlen);
/* Whether the pool's database is a PostgreSQL server's (store_path_is_pg): a connection it
 * cannot open is then the server's outage (not reachable, refusing, frozen), where an SQLite
 * file that does not open is a fault of this machine's. */
bool store_pool_is_pg(const struct store_pool *pool);
/* Gives st back (NULL does nothing); it is closed instead when idle_max are already idle.
 * The caller must not have a transaction open on it. Any thread. */
void store_pool_put(struct store_pool *pool, struct store *st);
/* Closes the idle connections and frees the pool (NULL does nothing). Every connection
 * handed out must be back. */
void store_pool_free(struct store_pool *pool);

/* ---- Access log ---- */

/* STORE_REPORT: allowed, but a `report` rule (the row's rule_id) would have denied it. */
enum store_decision { STORE_ALLOW, STORE_DENY, STORE_AUTH, STORE_REPORT, STORE_DECISION_COUNT };
const char *store_decision_str(enum store_decision d); /* "allow", "deny", "auth", "report" */

/* One finished request or tunnel. Fixed size, filled on a worker without formatting;
 * over-long strings are truncated by the filler. */
struct store_access {
    int64_t time_ms; /* wall clock at request start, ms since the epoch */
    uint32_t duration_ms;
    uint16_t status; /* HTTP status sent to the client; 200 for an established tunnel */
    uint16_t port;
    uint64_t bytes_up;         /* client -> origin, body and tunnel bytes */
    uint64_t bytes_down;       /* origin -> client */
    int32_t rule_id;           /* deciding rule, 0 = default */
    int32_t undecided_rule_id; /* a regex rule that could not decide (match limit), 0 = none:
                                  counted per rule (store_rule.undecided), not a column */
    uint8_t decision;          /* enum store_decision */
    char client[46];           /* textual IP address */
    char user[64];
    char method[16];
    char scheme[8]; /* "http" or "https" (CONNECT) */
    char host[256];
    char path[1024]; /* path and query; "" for CONNECT */
    /* Why it failed or closed early ("connect-refused"), or why it was denied ("rule 7:
     * deny list ads (ads.example)", "CONNECT to port 25 is not allowed"); "" if fine. */
    char error[96];
    int64_t policy_version; /* the policy version whose rules decided it; 0 = not known */
    char sni[256];          /* the server name of the ClientHello that began the tunnel,
                               canonical; "" when none was read (not TLS, no name, no tunnel) */
    char dest[54];          /* the address the request went to, "IP:PORT" or "[IPv6]:PORT";
                               "" when it reached no origin; an intercepted connection's
                               original destination, even when it was refused */
};

struct store_log_opts {
    const char *db_path;
    size_t producers;           /* number of per-worker queues */
    size_t queue_capacity;      /* records per producer queue (rounded up to a power of two) */
    int flush_interval_ms;      /* longest a record waits before its batch is written */
    const char *squid_log_path; /* also append Squid native-format lines here, or NULL */
    int64_t retention_days;     /* 0 = keep forever */
    int64_t retention_rows;     /* 0 = no row limit */
    const char *node_name;      /* written in every row's node column (copied); NULL = "" */
    /* Policy versions the retention job keeps (store_version_prune): the newest version_keep
     * (0 = every version: nothing pruned) and all younger than version_keep_days. */
    int64_t version_keep;
    int64_t version_keep_days;
    /* Also send each record as an RFC 5424 message to /path (a local datagram socket such
     * as /dev/log), udp://HOST:PORT or tcp://HOST:PORT (octet counting), or NULL. */
    const char *syslog_target;
    /* PostgreSQL: batches the database does not take wait in memory, then in this file (made
     * 0600), at most spill_max_bytes in it, and are sent when it is back (store_spill.h);
     * NULL: they are dropped and counted (dropped_db_error), as always on SQLite. */
    const char *spill_path;
    uint64_t spill_max_bytes;
};

/* The numbers are base/stats.h's STATS_LOG_TABLE (queued, written, dropped_queue_full,
 * dropped_db_error, pending, db_errors). */
struct store_log_counters {
#define X(name, kind, what) uint64_t name;
    STATS_LOG_TABLE
#undef X
    bool db_ok; /* last write succeeded */
    char last_error[128];
};

struct store_log;

/* Opens its own connection and starts the writer thread. Returns NULL with err filled. */
struct store_log *store_log_start(const struct store_log_opts *opts, char *err, size_t errlen);
/* Hands a record to producer queue `producer` (0 .. producers-1; one thread per queue).
 * Never blocks, never allocates: returns false and counts a drop when the queue is full.
 * The record is copied. */
bool store_log_push(struct store_log *log, size_t producer, const struct store_access *rec);
/* Makes rec an empty record, as store_log_push reads it: every number 0 and every string "".
 * Only each string's first byte is written, not the ~1.9 KiB of the struct (a memset of it
 * per request cost 240 instructions, docs/performance.md "What logging costs a request");
 * what lies behind a string's NUL is never read. Any thread, on its own record. */
void store_access_clear(struct store_access *rec);
void store_log_counters(struct store_log *log, struct store_log_counters *out);
/* True while the writer thread goes round its loop: it last woke less than
 * STORE_LOG_STALL_MS ago (it wakes at least every flush interval). Any thread. */
#define STORE_LOG_STALL_MS 10000
bool store_log_alive(struct store_log *log);
/* Replaces the retention limits (as in store_log_opts; 0 = none) of a running writer, which
 * applies them from its next wake-up on (SIGHUP). Any thread; never blocks. */
void store_log_retention_set(struct store_log *log, int64_t days, int64_t rows);
/* The same for the versions kept (version_keep, version_keep_days). */
void store_log_versions_set(struct store_log *log, int64_t keep, int64_t keep_days);
/* Writes everything queued and stops the thread, waiting for it at most bound_ms (<= 0:
 * without a bound). true: it ended, and store_log_free may follow. false: it is still in a
 * wait on the database (its own waits end at store_pg_give_up_at's time, a reconnection's at
 * its connect_timeout): it is left behind, detached, and log must not be freed. The setters
 * above stay safe on a halted writer (they set what it no longer reads). */
bool store_log_halt(struct store_log *log, int bound_ms);
void store_log_free(struct store_log *log);
/* store_log_halt without a bound, then store_log_free. */
void store_log_stop(struct store_log *log);

/* ---- Policy store ---- */

/* Bumped by every change to rules, lists or users; proxyd recompiles when it moves. */
int64_t store_policy_version(struct store *st);
/* PostgreSQL: every commit that moves the policy version notifies this channel. */
#define STORE_POLICY_CHANNEL "px_policy"
/* PostgreSQL: waits up to timeout_ms on st (a connection of its own, used for nothing else)
 * for another node's policy change, or until wake_fd (-1: none) is readable. LISTENs first,
 * and again after the connection was opened anew. Returns 1 when a change was announced;
 * 0 after timeout_ms or on wake_fd; -1 with err when the
 * connection is down or this is SQLite (the caller waits a while itself, its version poll
 * being the fallback). 2 instead of 1 when the wait began listening (a change may have
 * come before). */
int store_policy_wait(struct store *st, int wake_fd, int timeout_ms, char *err, size_t errlen);

struct store_rule {
    int id;
    int position; /* 1-based priority, first match wins */
    bool enabled;
    char *text;        /* rule text in policy syntax, owned */
    char *comment;     /* owned, maybe "" */
    int64_t hits;      /* access_log rows decided by this rule */
    int64_t undecided; /* requests its regex could not decide (match limit), ever: a deny
                          rule denied them, an allow rule did not allow them */
};

/* Rules in priority order. *rules is owned by the caller: free with store_rules_free. */
int store_rules_list(struct store *st, struct store_rule **rules, size_t *n, char *err,
                     size_t errlen);
void store_rules_free(struct store_rule *rules, size_t n);
/* The rules whose text starts with prefix ("name "), in priority order, as store_rules_list:
 * the few lines of one kind without reading a policy of 100,000 rules into memory. */
int store_rules_starting(struct store *st, const char *prefix, struct store_rule **rules, size_t *n,
                         char *err, size_t errlen);
/* Rule id into *out (its text and comment are the caller's to free). 0; 1 with err when
 * there is no such rule; -1 with err when the store failed. */
int store_rule_get(struct store *st, int id, struct store_rule *out, char *err, size_t errlen);
/* Adds a rule before before_id (0: at the end; -1: at the top). The caller validated text.
 * Writes an audit row with actor. Sets *id. */
int store_rule_add(struct store *st, const char *text, const char *comment, int before_id,
                   const char *actor, int *id, char *err, size_t errlen);
/* NULL text/comment and enabled < 0 leave that field unchanged. Returns -1 if no such id. */
int store_rule_update(struct store *st, int id, const char *text, const char *comment, int enabled,
                      const char *actor, char *err, size_t errlen);
int store_rule_delete(struct store *st, int id, const char *actor, char *err, size_t errlen);
/* Moves rule id before before_id (0: to the end; -1: to the top). */
int store_rule_move(struct store *st, int id, int before_id, const char *actor, char *err,
                    size_t errlen);
/* Replaces all rules at once, in one transaction (policy import). */
int store_rules_replace(struct store *st, const char *const *texts, size_t n, const char *actor,
                        char *err, size_t errlen);

/* Everything a rule set is compiled from, read at one moment (store_policy_read). */
struct store_policy_list {
    char name[64];
    char **domains; /* owned, each owned */
    size_t count;
};
struct store_policy {
    int64_t version;          /* the policy version this is */
    int next_rule_id;         /* the id the next rule added gets (ids are never reused) */
    struct store_rule *rules; /* owned, in priority order */
    size_t nrules;
    struct store_policy_list *lists; /* owned, by name */
    size_t nlists;
};
/* Reads rules, lists and the version in one read transaction, so no change committed
 * meanwhile mixes in. 0, or -1 with err (out then empty). Free with store_policy_free. */
int store_policy_read(struct store *st, struct store_policy *out, char *err, size_t errlen);
void store_policy_free(struct store_policy *p);
/* Frees n lists (each one's domains, then the array). */
void store_policy_lists_free(struct store_policy_list *lists, size_t n);

/* Several changes committed as one, or not at all. Between store_change_begin and
 * store_change_commit every change function of this header (rules, lists, accounts,
 * settings) joins the one transaction, each as a savepoint: its own failure undoes only
 * itself, and the group's audit rows and version bumps commit or vanish together.
 *
 * store_change_begin takes the write lock. With if_version >= 0 it also checks the policy
 * version is still if_version (the version a candidate policy was read and compiled at):
 * PX_AGAIN if it moved, with nothing left open (read again). PX_OK, or PX_ERR with err. */
int store_change_begin(struct store *st, int64_t if_version, char *err, size_t errlen);
/* Commits the group; *version (if not NULL) gets the policy version it leaves. PX_OK, or
 * PX_ERR with err (nothing of the group kept). */
int store_change_commit(struct store *st, int64_t *version, char *err, size_t errlen);
/* Drops the group: nothing of it is kept, no audit row, no version bump. */
void store_change_rollback(struct store *st);

/* The message of the version the current transaction will leave (store_change_begin, or a
 * change function's own transaction: call it after store_begin's first change). Without one
 * the message lists the audited changes ("rule.add rule 7: deny domain x.com"). */
void store_change_message(struct store *st, const char *message);

/* ---- Policy versions ----
 *
 * Each committed change that moves the policy version (rules, lists, proxy users) is a
 * version: who, when, a message, the rules it left and the lists (all of them, with their
 * entries) it left. */
struct store_version {
    int64_t version;
    int64_t time_ms;
    char actor[160]; /* an admin, "OWNER/token:NAME", "token" or "proxyd" */
    char message[512];
    int64_t rules; /* how many rules it held */
    int64_t lists; /* how many lists it held; -1: recorded before versions kept lists */
};
/* Versions older than before (0: the newest), newest first, at most limit (0: 100; at most
 * 1000). *rows owned by the caller (free). */
int store_versions_list(struct store *st, int64_t before, size_t limit, struct store_version **rows,
                        size_t *n, char *err, size_t errlen);
/* One version, and (rules not NULL) the rules it held in priority order, each with its id
 * then; hits are 0 (free with store_rules_free). 0, 1 when there is no such version (err
 * says so), -1 with err. */
int store_version_get(struct store *st, int64_t version, struct store_version *info,
                      struct store_rule **rules, size_t *n, char *err, size_t errlen);
/* The lists version held, by name, each with its entries in order (free with
 * store_policy_lists_free). 0; 1 when there is no such version or it was recorded before
 * versions kept lists (err says which; *lists NULL); -1 with err. */
int store_version_lists(struct store *st, int64_t version, struct store_policy_list **lists,
                        size_t *n, char *err, size_t errlen);
/* Prunes old policy versions, oldest first, at most batch (<= 0: 1000) in one transaction:
 * a version goes when it is not the current one, not among the newest keep, older than
 * keep_days (0: any age), and ended (the next version began) more than 10 minutes before
 * the oldest access-log row, so every logged request's version stays for `why`. Only the
 * versions' own rows go here (a few each); the rules and list entries no version left refers
 * to are freed by store_version_gc. Audited as version.prune by STORE_PRUNE_ACTOR. keep <= 0:
 * nothing pruned. Returns how many went, or -1 with err. */
#define STORE_PRUNE_ACTOR "proxyd (retention)"
int64_t store_version_prune(struct store *st, int64_t keep, int64_t keep_days, int64_t batch,
                            char *err, size_t errlen);
/* Frees at most max_rows (<= 0: 5000) rule or list-entry rows of pruned versions that no
 * version left refers to, in one transaction, so a version that held a 100,000-entry list
 * is freed in steps as short as a retention step. Returns rows freed (0: nothing left), or
 * -1 with err. */
int64_t store_version_gc(struct store *st, int64_t max_rows, char *err, size_t errlen);
/* How a list differs between two versions: in one only (entries_from or entries_to is -1)
 * or with other entries (added: in `to` only, removed: in `from` only). */
struct store_list_change {
    char name[64];
    int64_t entries_from, entries_to; /* -1: the version had no such list */
    int64_t added, removed;           /* entries */
};
/* The lists that differ between versions from and to, by name (*out owned by the caller,
 * free). 0; 1 when either version does not exist or was recorded before versions kept lists
 * (err says which; *out NULL); -1 with err. */
int store_version_lists_diff(struct store *st, int64_t from, int64_t to,
                             struct store_list_change **out, size_t *n, char *err, size_t errlen);
/* Replaces all rules with the rules of version (as store_version_get gave them), keeping
 * their ids, comments and enabled flags, and all lists with the lists version held (when it
 * kept them; else the lists stay as they are): a rollback, itself a new version. */
int store_rules_restore(struct store *st, int64_t version, const struct store_rule *rules, size_t n,
                        const char *actor, char *err, size_t errlen);

struct store_list_info {
    char name[64];
    int64_t entries;
    int64_t updated_ms;
};
int store_lists(struct store *st, struct store_list_info **lists, size_t *n, char *err,
                size_t errlen);
/* Creates or replaces list `name` with the given domains, in one transaction. */
int store_list_replace(struct store *st, const char *name, const char *const *domains, size_t n,
                       const char *actor, char *err, size_t errlen);
int store_list_delete(struct store *st, const char *name, const char *actor, char *err,
                      size_t errlen);
/* All entries of a list; *domains is owned (free each and the array). */
int store_list_entries(struct store *st, const char *name, char ***domains, size_t *n, char *err,
                       size_t errlen);

/* ---- List subscriptions (store_subs.c) ----
 * A list proxyd fetches from a URL every every_s seconds and imports as a list change (the
 * list's entries, versions and rollbacks are a list's like any other). Adding and removing
 * one is audited (subscription.add / subscription.delete) without a new policy version;
 * removing one keeps the list. Any thread, on its own connection. */
#define STORE_SUB_URL_MAX 2048
struct store_sub {
    char name[64];
    char url[STORE_SUB_URL_MAX + 1];
    int64_t every_s;
    int64_t next_ms;     /* the next fetch is due then (wall clock); 0: at once */
    int64_t checked_ms;  /* the last fetch ended then; 0: never */
    int64_t imported_ms; /* the last fetch that imported the list; 0: never */
    int64_t entries;     /* entries of the list as last imported; -1: none yet */
    int status;          /* HTTP status of the last answer; 0: none (no answer) */
    char etag[256];      /* validators of the copy imported, sent with the next fetch */
    char last_modified[64];
    char error[512];    /* why the last fetch kept the list as it was; "" when it did not */
    int64_t created_ms; /* when it was added: with the URL, tells it from one added again */
};
/* All subscriptions by name (*out owned, free). 0, or -1 with err. */
int store_subs_list(struct store *st, struct store_sub **out, size_t *n, char *err, size_t errlen);
/* 0 with *out; 1 when there is none; -1 with err. */
int store_sub_get(struct store *st, const char *name, struct store_sub *out, char *err,
                  size_t errlen);
/* A subscription, due at once. 0; 1 when the list has one already (err says so); -1. */
int store_sub_add(struct store *st, const char *name, const char *url, int64_t every_s,
                  const char *actor, char *err, size_t errlen);
/* 0; 1 when there is none (err says so); -1 with err. The list stays. */
int store_sub_delete(struct store *st, const char *name, const char *actor, char *err,
                     size_t errlen);
/* Inside a policy change's transaction, before it imports a download as list `name`: sets
 * the subscription's imported_ms to now, if it is still the one added at created_ms with
 * url (one removed, or removed and added again, during the download must not get the list).
 * The row is locked until the change commits, so a removal waits or went first. 0; 1 when
 * it is not there (any more); -1 with err. */
int store_sub_import_mark(struct store *st, const char *name, const char *url, int64_t created_ms,
                          char *err, size_t errlen);
/* Writes sub's fetch fields (next_ms to error) to the row of sub->name, if it is still the
 * one added at sub->created_ms (else nothing). 0, or -1 with err. */
int store_sub_record(struct store *st, const struct store_sub *sub, char *err, size_t errlen);

/* ---- Access requests (asked for on the block page, decided by an admin) ---- */

struct store_request {
    int64_t id;
    int64_t time_ms; /* when it was (last) asked */
    char client[46];
    char user[64]; /* the proxy user, "" if none */
    char host[256];
    uint16_t port;
    int rule_id;      /* the rule that blocked it */
    char reason[512]; /* what the user wrote */
    char name[72];    /* the name the user gave, "" if none */
    char status[12];  /* "pending", "approved", "denied" */
    int64_t decided_ms;
    char decided_by[64];
    char note[512];      /* the admin's reason for a denial or note on an approval */
    int granted_rule_id; /* the allow rule an approval made, 0 if none */
};
/* Adds a pending request, or, when the client already has one pending for that host and
 * port, replaces its time, reason and name. *id: its id. */
int store_request_add(struct store *st, const struct store_request *rq, int64_t *id, char *err,
                      size_t errlen);
/* Requests older than before (0: the newest), newest first, all or only pending ones; at most
 * limit (0: 100; at most 1000). *rows owned by the caller (free). */
int store_requests_list(struct store *st, bool pending_only, int64_t before, size_t limit,
                        struct store_request **rows, size_t *n, char *err, size_t errlen);
/* How many are pending, or -1. */
int64_t store_requests_pending(struct store *st);
/* 0, 1 when there is no such request (err says so), -1 with err. */
int store_request_get(struct store *st, int64_t id, struct store_request *out, char *err,
                      size_t errlen);
/* Decides pending request id: approved with the rule made for it, or denied; note is the
 * admin's words. Audited. Joins a store_change_begin group, where its UPDATE locks the row
 * until the group commits: of two approvals at once (two admins, two nodes) one finds it
 * decided. 0; 1 when it is not pending (any more; err says so); -1 with err. */
int store_request_decide(struct store *st, int64_t id, bool approved, const char *note,
                         int granted_rule_id, const char *actor, char *err, size_t errlen);

/* ---- Proxy users and admins (passwords hashed with libsodium's crypto_pwhash_str) ---- */

enum store_account { STORE_PROXY_USER, STORE_ADMIN };
int store_account_set(struct store *st, enum store_account kind, const char *name,
                      const char *password, const char *actor, char *err, size_t errlen);
int store_account_delete(struct store *st, enum store_account kind, const char *name,
                         const char *actor, char *err, size_t errlen);
/* Returns 1 if the password matches, 0 if not or no such account, -1 on error. Slow by
 * design (Argon2id): callers cache positive answers. A name without an account costs the
 * same Argon2 run (against a dummy hash of the same limits), so timing does not reveal
 * which names exist; the first call in a process also makes that dummy hash. */
int store_account_verify(struct store *st, enum store_account kind, const char *name,
                         const char *password);
/* Argon2 verifications store_account_verify ran in this process, real or dummy (tests and
 * counters). Any thread. */
uint64_t store_account_hash_runs(void);
/* Names, owned array of owned strings (store_strings_free). */
int store_account_names(struct store *st, enum store_account kind, char ***names, size_t *n);
/* Frees an owned array of n owned strings, as store_account_names gives them. NULL is fine. */
void store_strings_free(char **v, size_t n);
/* Creates admin name with password, marked as having to change it at the first login, if
 * there is no admin yet (first run). Returns 1 if created, 0 if an admin exists (nothing
 * changed), -1 with err set. Setting an admin's password later clears the mark. */
int store_admin_first(struct store *st, const char *name, const char *password, char *err,
                      size_t errlen);
/* Returns 1 if admin name must change its password before anything else, 0 if not (or no
 * such admin), -1 on error. */
int store_admin_must_change(struct store *st, const char *name);

/* What an admin account may do through the admin API, least first: a role may do what
 * every role before it may. */
enum store_role { STORE_ROLE_VIEWER, STORE_ROLE_OPERATOR, STORE_ROLE_ADMIN, STORE_ROLE_COUNT };
/* "viewer", "operator", "admin". */
const char *store_role_str(enum store_role role);
/* The role named s, or -1. */
int store_role_parse(const char *s);
/* The role of admin name: 0 with *role set, 1 if there is no such admin, -1 with err. */
int store_admin_role(struct store *st, const char *name, enum store_role *role, char *err,
                     size_t errlen);
/* Gives admin name the role, with an audit row ("admin.role", "NAME: old -> new"). Refuses
 * to leave no account with role admin. 0; 1 if there is no such admin; 2 if name is the
 * last admin-role account and role is not admin (nothing changed); -1 with err. */
int store_admin_role_set(struct store *st, const char *name, enum store_role role,
                         const char *actor, char *err, size_t errlen);

/* ---- Admin API tokens (named, per admin account; store_token.c) ---- */

/* A token's secret: STORE_TOKEN_PREFIX and 64 hex digits (32 random bytes). */
#define STORE_TOKEN_PREFIX "pxt_"
#define STORE_TOKEN_LEN (4 + 64)

struct store_token {
    char name[64];
    char owner[64]; /* the admin account it acts for */
    int64_t created_ms;
    int64_t last_used_ms; /* 0: never; kept to the minute */
};
/* Makes token name for admin owner: a fresh random secret into secret (NUL-terminated),
 * of which only a BLAKE2b hash is stored; audit row "token.add" ("OWNER/token:NAME") by
 * actor. Names are owner's own: another admin may have a token of the same name. 0; 1 when
 * owner has a token of that name; 2 when there is no admin owner (nothing written either
 * way); -1 with err. */
int store_token_add(struct store *st, const char *owner, const char *name, const char *actor,
                    char secret[STORE_TOKEN_LEN + 1], char *err, size_t errlen);
/* The token whose secret this is: 0 with owner, name and *role (the owner's role now) set,
 * and its last use noted (at most once a minute, if the database takes the write); 1 when
 * secret is no token's; -1 with err. Any thread with its own connection. */
int store_token_check(struct store *st, const char *secret, char owner[64], char name[64],
                      enum store_role *role, char *err, size_t errlen);
/* Tokens by name and owner, of owner (NULL: all); owned array. 0, or -1 with err. */
int store_token_list(struct store *st, const char *owner, struct store_token **rows, size_t *n,
                     char *err, size_t errlen);
/* Revokes owner's token name (owner NULL: the token of that name, when only one admin has
 * one), audit row "token.delete" by actor. 0; 1 when there is no such token (of owner); 2
 * when owner is NULL and several admins have a token of that name (nothing revoked); -1
 * with err. */
int store_token_delete(struct store *st, const char *name, const char *owner, const char *actor,
                       char *err, size_t errlen);
/* Revokes every token of owner (after another admin reset owner's password: whoever knew the
 * old one may have made tokens with it), audit row "token.revoke" ("OWNER: N tokens") by actor
 * when there were any. The number revoked, or -1 with err. */
int store_token_revoke_owner(struct store *st, const char *owner, const char *actor, char *err,
                             size_t errlen);

/* ---- Admin login sessions (store_session.c) ----
 *
 * A browser's login, kept in the database so that every node sharing it knows the session
 * and a logout, role change, password reset or account delete on one node ends it on all of
 * them at once. Only a BLAKE2b hash of the session id is stored: a copy of the database
 * holds no usable session. The role and the must-change mark are the account's, read with
 * each check. At most STORE_SESSIONS_PER_ADMIN live ones per admin (a new login ends the
 * oldest beyond). Any thread with its own connection. */
#define STORE_SESSION_ID_HEX 64 /* the id: 32 random bytes in lower-case hex */
#define STORE_SESSIONS_PER_ADMIN 64
struct store_session {
    char admin[64];
    enum store_role role;
    bool must_change; /* the account must replace a first-run password */
    int64_t expires_ms;
};
/* Records session id of admin until expires_ms (wall clock), and removes expired sessions.
 * 0; 1 when there is no such admin; -1 with err. */
int store_session_add(struct store *st, const char *id, const char *admin, int64_t expires_ms,
                      char *err, size_t errlen);
/* The live session id (not expired at now_ms): 0 with *out; 1 when there is none; -1 with err
 * (the database could not answer: neither yes nor no). */
int store_session_get(struct store *st, const char *id, int64_t now_ms, struct store_session *out,
                      char *err, size_t errlen);
/* Ends session id (logout). 0 (also when there was none), or -1 with err. */
int store_session_delete(struct store *st, const char *id, char *err, size_t errlen);
/* Ends every session of admin but keep_id's (NULL: all). The number ended, or -1 with err.
 * store_admin_role_set and store_account_delete call it themselves. */
int64_t store_sessions_end(struct store *st, const char *admin, const char *keep_id, char *err,
                           size_t errlen);

/* ---- Login throttle (in memory, no database; for proxyd's 407s and the admin login) ----
 *
 * Says how long a password attempt for an account from a source address must wait before
 * it may be verified. Each failed verification counts against the account and against the
 * address; after fail_max failures of either, the next attempt waits delay_ms after the
 * last failure, doubling with each further failure up to delay_max_ms; counts are
 * forgotten forget_ms after the last failure. The account's delay does not apply from an
 * address where that account logged in before (within 30 days), so a guesser cannot lock
 * the real user out; the address's delay always applies. A success clears no count: not the
 * account's (a guesser on another address could wait for the real user to log in and start
 * afresh), not the address's (the holder of one valid account could spray other names from
 * one address, logging in between). Counts fade after forget_ms. IPv6 addresses count by
 * their /64.
 *
 * Callers check store_throttle_wait_ms() before verifying and refuse the attempt unverified
 * while it is above 0 (the answer must not depend on whether the account exists: the
 * throttle keeps counts for any name), then report the verification's outcome with
 * store_throttle_note(). Any thread (one mutex inside). now_ms is a monotonic clock. */
struct store_throttle_opts {
    unsigned fail_max;    /* failures before delays start; 0 = 5 */
    int64_t delay_ms;     /* first delay; 0 = 1 s */
    int64_t delay_max_ms; /* longest delay; 0 = 5 minutes */
    int64_t forget_ms;    /* counts reset this long after the last failure; 0 = 15 minutes */
};
struct store_throttle;
/* NULL opts: the defaults. Returns NULL when out of memory. */
struct store_throttle *store_throttle_new(const struct store_throttle_opts *opts);
void store_throttle_free(struct store_throttle *t);
/* Milliseconds until an attempt for user from addr may be verified; 0 = now. */
int64_t store_throttle_wait_ms(struct store_throttle *t, const char *user, const char *addr,
                               int64_t now_ms);
/* The outcome of one verification of user's password from addr. */
void store_throttle_note(struct store_throttle *t, const char *user, const char *addr, bool ok,
                         int64_t now_ms);

/* ---- Port forwards ---- */

/* One stored forward, its parts as acl_forward_parse accepted them (the caller validates:
 * the store keeps text). */
struct store_forward {
    int id;
    char listen[64];
    char target[264];
    char clients[1536]; /* "" = no list of its own */
    char tls[16];       /* "", "tls-listen" or "tls-target" (acl_forward_tls_str) */
    char tls_name[256]; /* tls-target: the name its certificate must bear; "" the target's */
    int64_t created_ms;
};

/* Every stored forward, by id. *out is owned by the caller (free()). 0, or -1 with err. */
int store_forwards_list(struct store *st, struct store_forward **out, size_t *n, char *err,
                        size_t errlen);
/* Adds a forward and its audit row ("forward.add") in one transaction; sets *id. Returns 0;
 * 1 when a forward already listens on that address (err says so); -1 with err. */
int store_forward_add(struct store *st, const char *listen, const char *target, const char *clients,
                      const char *tls, const char *tls_name, const char *actor, int *id, char *err,
                      size_t errlen);
/* Deletes forward id with its audit row ("forward.delete"). Returns 0; 1 when there
 * is no such forward; -1 with err. */
int store_forward_delete(struct store *st, int id, const char *actor, char *err, size_t errlen);

/* ---- Syslog (store_syslog.c) ----
 * A sink for --syslog TARGET: /dev/log (a local datagram socket), udp://HOST:PORT or
 * tcp://HOST:PORT (RFC 6587 octet counting); a name is looked up by new. Messages are RFC 5424,
 * APP-NAME proxyd, facility daemon, HOSTNAME node. Sending never waits: a datagram goes at
 * once or is dropped, TCP frames wait in a bounded buffer that flush writes (reconnecting at
 * most once a second). The access-log writer has one for its records (MSGID "access", set up
 * by store_log_start); proxyd's own lines go through another, with store_syslog_event. One
 * thread at a time per sink. new returns NULL with err. */
struct store_syslog;
struct store_syslog *store_syslog_new(const char *target, const char *node, char *err,
                                      size_t errlen);
void store_syslog_free(struct store_syslog *s);
void store_syslog_flush(struct store_syslog *s);
/* One event of proxyd's own: MSGID msgid ("daemon"), severity 0..7 (3 error, 4 warning,
 * 6 informational, 7 debug), text as the MSG (one line). */
void store_syslog_event(struct store_syslog *s, int severity, const char *msgid, const char *text);

/* ---- Settings and audit ---- */

/* *value: an owned string, or NULL if unset. -1 when the database did not answer (err): the
 * caller keeps what is in force rather than taking "unset" for an answer. */
int store_setting_read(struct store *st, const char *key, char **value, char *err, size_t errlen);
/* Sets key to value ("" for unset), audited as setting.set "key: before -> after". */
int store_setting_set(struct store *st, const char *key, const char *value, const char *actor,
                      char *err, size_t errlen);

struct store_audit {
    int64_t time_ms;
    char actor[160]; /* an admin, "OWNER/token:NAME", "token" or "proxyd" */
    char action[32]; /* "rule.add", "rule.delete", "list.replace", "user.set", ... */
    char detail[512];
};
int store_audit_list(struct store *st, int64_t before_ms, size_t limit, struct store_audit **rows,
                     size_t *n, char *err, size_t errlen);
#define STORE_AUDIT_SEARCH_MAX 256 /* bytes of search text; longer is cut there */
/* store_audit_list of the rows by actor (exact; NULL or "": anyone) whose action or detail
 * contains text (NULL or "": any). */
int store_audit_search(struct store *st, int64_t before_ms, size_t limit, const char *actor,
                       const char *text, struct store_audit **rows, size_t *n, char *err,
                       size_t errlen);
/* An audit row of its own, for what is no change of stored state (a login, a failed login,
 * a logout). 0, or -1 with err. */
int store_audit_record(struct store *st, const char *actor, const char *action, const char *detail,
                       char *err, size_t errlen);

/* ---- Queries for the admin side ---- */

#define STORE_NODE_NAME_MAX 63 /* bytes of a node name (--node-name) */
struct store_log_filter {
    int64_t since_ms, until_ms; /* 0 = open */
    const char *client;         /* exact address, or NULL */
    /* Kept by value, so a copy of the filter needs nothing else: */
    char client_prefix[64]; /* the start of the address as logged ("10.0.0."), "" for any */
    bool client_net_set;    /* only addresses in the network client_net/client_net_bits */
    uint8_t client_net[16]; /* IPv4 as IPv4-mapped */
    int client_net_bits;    /* 0..128 */
    char user[64];          /* exact proxy user, "" for any */
    const char *host_like;  /* substring of host, or NULL */
    const char *text_like;  /* substring of host or path, or NULL */
    int decision;           /* enum store_decision, or -1 for any */
    int status;             /* exact, or 0 for any */
    int rule_id;            /* the rule that decided, or 0 for any */
    int64_t before_id;      /* paging: rows with id < before_id (0 = newest); with it
                               the ids are walked down from there, never the time index
                               (each page would re-read the whole window) */
    int64_t after_id;       /* follow: rows with id > after_id (0 = unused) */
    size_t limit;
    /* The node that wrote the row, exact (kept by value too), "" for any: */
    char node[STORE_NODE_NAME_MAX + 1];
};
struct store_log_row {
    int64_t id;
    struct store_access a;
    char node[STORE_NODE_NAME_MAX + 1]; /* the node that wrote the row, "" for older rows */
};
int store_log_search(struct store *st, const struct store_log_filter *f,
                     struct store_log_row **rows, size_t *n, char *err, size_t errlen);

/* STORE_TOP_REPORTED: hosts of the rows a `report` rule would have denied;
 * STORE_TOP_BLOCKED_CLIENTS: clients of the denied rows. */
enum store_top_kind {
    STORE_TOP_HOSTS,
    STORE_TOP_CLIENTS,
    STORE_TOP_BLOCKED,
    STORE_TOP_REPORTED,
    STORE_TOP_BLOCKED_CLIENTS,
    STORE_TOP_COUNT
};
struct store_top_row {
    char key[256];
    int64_t requests;
    int64_t bytes;
};
/* Top, series and totals count the rows of every node (node NULL) or of the one node named
 * (as stored in the rows' node column; a name no row has: nothing). */
int store_top(struct store *st, enum store_top_kind kind, int64_t since_ms, int64_t until_ms,
              const char *node, size_t limit, struct store_top_row **rows, size_t *n, char *err,
              size_t errlen);

/* Who asked for one host in a time range, per client or per user (STORE_VISITORS_*). */
enum store_visitors_by { STORE_VISITORS_CLIENT, STORE_VISITORS_USER, STORE_VISITORS_COUNT };
struct store_visitor {
    char key[256]; /* the client address or the user name ("" for requests without one) */
    int64_t requests, blocked;
    int64_t first_ms, last_ms;
};
/* The rows of host (exact, as logged) from since to until (0: open) of every node (node
 * NULL) or of the one named, grouped by client or user, most requests first (ties by key), at
 * most limit (1..1000; 0: 10) into *rows (owned, free()). The range's rows are read (there is
 * no host index): a bounded range keeps it short. 0, or -1 with err. */
int store_host_visitors(struct store *st, const char *host, const char *node,
                        enum store_visitors_by by, int64_t since_ms, int64_t until_ms, size_t limit,
                        struct store_visitor **rows, size_t *n, char *err, size_t errlen);

struct store_series_point {
    int64_t bucket_ms;
    int64_t requests;
    int64_t blocked;
    int64_t bytes;
};
/* One point per bucket_ms bucket from since to until, empty buckets included (zeros);
 * buckets align to multiples of bucket_ms since the epoch. An open bound (0) becomes the
 * oldest/newest row's time. At most 100,000 points, else -1. "blocked" = decision deny. */
int store_series(struct store *st, int64_t since_ms, int64_t until_ms, const char *node,
                 int64_t bucket_ms, struct store_series_point **points, size_t *n, char *err,
                 size_t errlen);

struct store_totals {
    int64_t requests, blocked, bytes_up, bytes_down, clients, hosts;
};
/* clients, hosts: distinct, each counted once however many nodes saw it. */
int store_totals(struct store *st, int64_t since_ms, int64_t until_ms, const char *node,
                 struct store_totals *out, char *err, size_t errlen);

/* ---- The nodes (store_node.c) ----
 *
 * Every proxyd on the database has a row, which its heartbeat thread writes every
 * beat_every_ms and whenever the policy version it runs changes. A node is lagging when it
 * was not heard of for more than 3 beats, or runs an older policy version than the newest
 * stored; a node stopped cleanly says so and lags not. */
struct store_node {
    char name[STORE_NODE_NAME_MAX + 1];
    char software[32];      /* "proxyd 1.2.3" */
    char listen[256];       /* its proxy listeners, space-separated */
    int64_t started_ms;     /* wall clock */
    int64_t policy_version; /* the version it has in force (not the newest stored) */
    int64_t beat_every_ms;  /* how often it beats */
    /* This run of it ("gw1 pid 4242"): with started_ms, what tells apart two processes that
     * were given one name. */
    char instance[80];
    /* Another run that beats under the same name, as the heartbeat saw it (store_node_rival),
     * "" when none: written with the beat, so every node's admin side shows it. */
    char rival[80];
    /* Read back only (store_nodes_list), by the database's clock: */
    int64_t beat_ms;        /* its last beat */
    int64_t age_ms;         /* since then */
    int64_t stopped_ms;     /* when it stopped cleanly; 0: running */
    int64_t stopped_age_ms; /* since then; 0: running */
};
/* Whether another run of a node holds me's name and is alive (not stopped, heard of within
 * 3 beats): 1 with its instance in rival, 0 when not, -1 with err. A run killed without a
 * clean stop looks alive to its successor for one beat: the caller waits for a second. */
int store_node_rival(struct store *st, const struct store_node *me, char *rival, size_t rivallen,
                     char *err, size_t errlen);
/* Writes me's row (beat_ms now by the database's clock; stopped_ms 0) and forgets nodes not
 * heard of for 7 days. 0, or -1 with err. */
int store_node_beat(struct store *st, const struct store_node *me, char *err, size_t errlen);
/* Marks me's row as stopped cleanly (at the database's clock), unless another run of the name
 * wrote it last. 0, or -1 with err. */
int store_node_stop(struct store *st, const struct store_node *me, char *err, size_t errlen);
/* Every node by name (*out owned, free) and the newest policy version stored. 0, or -1. */
int store_nodes_list(struct store *st, struct store_node **out, size_t *n, int64_t *newest_version,
                     char *err, size_t errlen);
/* Whether node lags behind newest_version or its beats, or shares its name with another run;
 * why says how ("not seen for 41 s", "runs policy version 12, the newest is 14", "another
 * proxyd (gw2 pid 77) runs under this name"), "" when it does not. */
bool store_node_lagging(const struct store_node *node, int64_t newest_version, char *why,
                        size_t whylen);

/* Deletes rows older than days and/or beyond the newest max_rows, at most batch rows per
 * call; returns rows deleted or -1. The writer thread calls it between batches. On PostgreSQL,
 * where the log has a table per day (store_log_days_ensure), age drops whole days: a day's
 * table goes once all of it is older than days (so up to a day more is kept), however many
 * rows it holds (returned); only rows outside any day's table are deleted one by one. */
int64_t store_retention_step(struct store *st, int64_t days, int64_t max_rows, int64_t batch);

/* PostgreSQL: makes the access log's table for each UTC day from since_ms to until_ms (at
 * most 400 days), moving into it the rows of that day that were logged before it existed.
 * Days that have a table are left alone, so any node may call it at any time (the calls of
 * several nodes take turns). A day whose locks another session holds (a reader of the log) is
 * left for a later call, not waited for. Returns the days made, 0 on SQLite, or -1 with err. */
int store_log_days_ensure(struct store *st, int64_t since_ms, int64_t until_ms, char *err,
                          size_t errlen);

#endif
