/* auth: proxy authentication (HTTP Basic, RFC 7617) for proxyd's workers, without ever
 * blocking a worker. Checking a password is Argon2id in the store (tens of ms), so it runs
 * on verifier threads of this module, each with its own struct store; the answer comes back
 * on the asking worker's loop through ev_post(). Answers are cached: a hit costs one keyed
 * BLAKE2b hash and one mutex, no database.
 *
 * One struct auth is shared by all workers. Passwords are never stored in the cache (its key
 * is a keyed BLAKE2b of "user\0password" with a random per-process key) and never logged;
 * a password waiting for its verification is wiped once checked. Concurrent checks of the
 * same credentials share one verification.
 *
 * Guessing is slowed by storage's store_throttle, per user and per client address (IPv6 by
 * its /64): after fail_max failed verifications of either, a new password for that user or
 * from that address is denied without running Argon2 until delay_ms after the last failure,
 * doubling with each further failure up to delay_max_ms; counts are forgotten forget_ms
 * after the last failure. The user's delay does not apply from an address where the user
 * logged in before, and credentials already cached as good always work: so guessing from
 * many addresses slows down everyone's guesses for that user, but never locks the real user
 * out where they usually are. A name without an account costs the same Argon2 run as a
 * wrong password (store_account_verify), and is throttled the same way.
 *
 * Threads: auth_check() from any worker thread; auth_cancel() on the thread that runs the
 * query's loop; auth_invalidate() and auth_counters() from any thread; auth_new(),
 * auth_stop() and auth_free() from the thread that owns proxyd's start-up and shutdown.
 */
#ifndef PX_AUTH_H
#define PX_AUTH_H

#include <stddef.h>
#include <stdint.h>

struct ev_loop;
struct sockaddr;

/* The realm of the challenge; proxyd sends it with 407 as
 * "Proxy-Authenticate: Basic realm=\"proxyd\"". */
#define AUTH_REALM "proxyd"
#define AUTH_USER_MAX 64 /* bytes of a user name buffer, NUL included */

enum auth_status {
    AUTH_OK,        /* verified: the user name is in user_out (or the callback's user) */
    AUTH_DENIED,    /* wrong user or password, or user or address throttled: 407 again */
    AUTH_MALFORMED, /* not Basic, or Basic but not well-formed: treat as no credentials */
    AUTH_PENDING,   /* verification queued: the callback will say (auth_check only) */
    AUTH_BUSY,      /* cannot verify now (queue full, out of memory, store error): 503 */
    AUTH_STATUS_COUNT
};
/* "ok", "denied", "malformed", "pending", "busy". */
const char *auth_status_str(enum auth_status st);

struct auth;

struct auth_opts {
    const char *db_path;   /* the SQLite database of the store */
    int threads;           /* verifier threads, 1 to 4; 0 = 2 (Argon2 uses 64 MiB each) */
    int64_t ok_ttl_ms;     /* how long a good answer is trusted; 0 = 10 minutes */
    int64_t denied_ttl_ms; /* how long a wrong answer is repeated; 0 = 30 s */
    unsigned fail_max;     /* failures of a user or an address before delays; 0 = 10 */
    int64_t delay_ms;      /* first delay, doubling with each further failure; 0 = 1 s */
    int64_t delay_max_ms;  /* longest delay; 0 = 60 s */
    int64_t forget_ms;     /* failure counts reset this long after the last; 0 = 15 min */
    size_t queue_max;      /* distinct verifications queued or running; 0 = 1024 */
};

/* Opens one store per verifier thread on opts->db_path and starts the threads. Returns the
 * auth, or NULL with err filled ("var/proxyd.db: unable to open database file"). */
struct auth *auth_new_opts(const struct auth_opts *opts, char *err, size_t errlen);
/* auth_new_opts() with the defaults above. */
struct auth *auth_new(const char *db_path, char *err, size_t errlen);

/* Shutdown, step 1: stops and joins the verifier threads (waiting for a check in progress,
 * tens of ms). From its return on, no callback runs, not even one already posted to a loop,
 * and auth_check() answers AUTH_BUSY instead of queueing; but every auth_query handle stays
 * valid, so connections torn down afterwards still auth_cancel() theirs. Call it once the
 * workers stopped calling auth_check(). Idempotent; NULL is ignored. */
void auth_stop(struct auth *a);

/* Shutdown, step 2 (runs auth_stop() first if needed): frees the module and every query
 * not yet posted; every auth_query handle is invalid afterwards: do not cancel them. A result
 * already posted to a loop is freed, silently, when that loop runs it (ev_post's queue: run
 * or drain the loops afterwards, or it stays allocated until exit). NULL is ignored.
 * Order at shutdown: join workers, auth_stop, abort connections (auth_cancel), drain the
 * loops' posted calls, auth_free, free the loops. */
void auth_free(struct auth *a);

/* Forgets every cached answer (good and wrong) and stops sharing verifications started
 * before; failure counts of the throttle stay. proxyd calls it when store_policy_version()
 * moves, since users and passwords may have changed. */
void auth_invalidate(struct auth *a);

/* Called on the loop given to auth_check(), from that loop's own thread, with AUTH_OK (user
 * is the verified name, valid during the call only), AUTH_DENIED or AUTH_BUSY (user NULL), or
 * AUTH_PENDING (user NULL) when the answer came from a store read before the latest
 * auth_invalidate(): it is not an answer, call auth_check() again. The query is freed when
 * the callback returns: do not cancel it from the callback. */
typedef void (*auth_cb)(void *arg, enum auth_status st, const char *user);

/* A verification a connection is waiting for; owned by this module. */
struct auth_query;

/* Checks the value of a Proxy-Authorization header (value, len: a slice, OWS removed, not
 * NUL-terminated) sent by client (its address, for the throttle; NULL if unknown). Strict: scheme
 * "Basic" (any case), exactly one space, base64 of the standard alphabet with its padding and
 * nothing after, decoding to user ":" password with a user of 1 to 63 printable non-space ASCII
 * bytes and a password of 0 to 255 bytes without NUL. Returns at once: AUTH_OK        good
 * credentials cached; user_out holds the user name (NUL-terminated) AUTH_DENIED    wrong
 * credentials cached, an empty password, or the user or the client's address must wait (throttled;
 * nothing is verified) AUTH_MALFORMED anything else than well-formed Basic credentials (NTLM,
 * Bearer, ...) AUTH_BUSY      too many verifications queued, or out of memory AUTH_PENDING   a
 * verification is queued: *q is set, and cb(arg, ...) will run once on loop's thread via ev_post(),
 * unless auth_cancel(*q) is called first On every answer but AUTH_OK, user_out is "". Any worker
 * thread; never blocks on the database (it takes the module's mutex for a hash-table lookup). */
enum auth_status auth_check(struct auth *a, struct ev_loop *loop, const struct sockaddr *client,
                            const char *value, size_t len, char user_out[AUTH_USER_MAX], auth_cb cb,
                            void *arg, struct auth_query **q);

/* The callback of q will not run (e.g. the connection went away); q is invalid afterwards.
 * Call on q's loop thread, before the callback ran and before auth_free() (after auth_stop()
 * is fine). Safe against a verifier that already finished and posted the result: the posted
 * call sees the cancellation and only frees q. A verification nobody waits for any more is
 * dropped if it has not started. NULL is ignored. */
void auth_cancel(struct auth_query *q);

/* What the checks did, one table: the fields of struct auth_counters and their names in
 * /api/stats ("proxy.auth"). X(name, what it counts) */
#define AUTH_COUNTER_TABLE                                                                         \
    X(hits_ok, "answered AUTH_OK from the cache")                                                  \
    X(hits_denied, "answered AUTH_DENIED from the cache")                                          \
    X(queued, "AUTH_PENDING answers (coalesced ones included)")                                    \
    X(coalesced, "... of which joined a verification already queued")                              \
    X(verifications, "Argon2 checks run against the store")                                        \
    X(store_errors, "... of which the store could not answer (AUTH_BUSY)")                         \
    X(throttled, "denied without a check: the user or the address must wait")                      \
    X(malformed, "Proxy-Authorization values that are not Basic credentials")                      \
    X(busy, "AUTH_BUSY from auth_check: queue full or out of memory")                              \
    X(posted, "answers handed to a loop by ev_post()")                                             \
    X(post_full, "ev_post() refused (loop queue full): retried every 5 ms")                        \
    X(stale, "answers from before an auth_invalidate(), not used: AUTH_PENDING, asked again")

struct auth_counters {
#define X(name, what) uint64_t name;
    AUTH_COUNTER_TABLE
#undef X
};
/* A snapshot of a's counters. Any thread. */
void auth_counters(struct auth *a, struct auth_counters *out);

#endif
