/* access_req: "request access" from the block page. When the setting access_requests is on,
 * a page blocked by a rule carries a form whose GET goes to the reserved path
 * ACCESS_REQ_PATH on the blocked host itself: the browser sends it through proxyd like the
 * page, and proxyd answers it here instead of deciding it (docs/policy.md says why this path).
 * The form carries a token only the block page has: a MAC over the client address, the host,
 * the port and an expiry, under a key made at start, so a page elsewhere cannot send a request
 * for the client (it cannot read the block page). Requests are rate-limited per client and
 * queued for the main thread, which stores them (store_request_add): a worker never waits for
 * the database.
 *
 * The box is shared by the workers and the main thread (one mutex; the path is rare). */
#ifndef PX_ACCESS_REQ_H
#define PX_ACCESS_REQ_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "storage/store.h"

#define ACCESS_REQ_PATH "/.proxyd/request-access"
#define ACCESS_REQ_REASON_MAX 500 /* bytes of the reason */
#define ACCESS_REQ_NAME_MAX 64    /* bytes of the optional name */
#define ACCESS_REQ_TOKEN_LEN 80   /* room for a token and its NUL */
#define ACCESS_REQ_TOKEN_TTL_S 3600
#define ACCESS_REQ_PER_CLIENT 5        /* requests a client may send ... */
#define ACCESS_REQ_WINDOW_MS 3600000LL /* ... per hour */
#define ACCESS_REQ_QUEUE 64            /* waiting for the main thread */
#define ACCESS_REQ_CLIENTS 256         /* clients the rate limit remembers */

struct access_req_rate {
    char client[46];
    int64_t window_start_ms;
    unsigned count;
};

struct access_req_box {
    atomic_bool enabled; /* the setting, as the main thread last read it */
    unsigned char key[32];
    pthread_mutex_t mu;
    struct store_request queue[ACCESS_REQ_QUEUE]; /* under mu */
    size_t nqueued;
    struct access_req_rate rate[ACCESS_REQ_CLIENTS]; /* under mu */
};

/* What a submitted form said, parsed from the query. */
struct access_req_form {
    char token[ACCESS_REQ_TOKEN_LEN];
    char reason[ACCESS_REQ_REASON_MAX + 1];
    char name[ACCESS_REQ_NAME_MAX + 1];
};

enum access_req_result {
    ACCESS_REQ_QUEUED,
    ACCESS_REQ_BAD_FORM,     /* missing or over-long fields, not UTF-8 */
    ACCESS_REQ_BAD_TOKEN,    /* not this client's, host's or port's, or expired */
    ACCESS_REQ_RATE_LIMITED, /* ACCESS_REQ_PER_CLIENT already within the window */
    ACCESS_REQ_BUSY,         /* the queue is full */
    ACCESS_REQ_RESULT_COUNT
};

/* A random key; the box off and empty. 0, or -1 (libsodium failed). */
int access_req_init(struct access_req_box *b);
void access_req_destroy(struct access_req_box *b);

/* The token for a block page to client about host:port, valid until now_s + TTL, into out
 * (ACCESS_REQ_TOKEN_LEN). Any thread. */
void access_req_token(const struct access_req_box *b, const char *client, const char *host,
                      uint16_t port, int64_t now_s, char *out);
/* Whether token was made for client, host and port and has not expired at now_s. */
bool access_req_token_ok(const struct access_req_box *b, const char *token, const char *client,
                         const char *host, uint16_t port, int64_t now_s);

/* Parses the query string q[0..len) (after '?', application/x-www-form-urlencoded: '+' is a
 * space, %XX a byte) into f: t (the token: 1 to 79 of [0-9a-f.]), reason (at most
 * ACCESS_REQ_REASON_MAX bytes of UTF-8 without control bytes but tab and line breaks, not
 * only blanks) and name (optional, at most ACCESS_REQ_NAME_MAX bytes of UTF-8 without control
 * bytes); the last of a repeated key counts, unknown keys are ignored. Returns 0, or -1 with
 * *why (static) when a field is missing, too long, holds a bad %-escape or what it may not.
 * Pure. */
int access_req_parse(const char *q, size_t len, struct access_req_form *f, const char **why);

/* Checks the token and the client's rate, then queues rq (time_ms, client, user, host, port,
 * rule_id set by the caller; reason and name from f). Any worker. */
enum access_req_result access_req_submit(struct access_req_box *b, const struct access_req_form *f,
                                         struct store_request *rq, int64_t now_ms);

/* Takes up to max queued requests into out; returns how many. Main thread. */
size_t access_req_take(struct access_req_box *b, struct store_request *out, size_t max);

#endif
