/* web-admin HTTP helpers: one request as a handler sees it (struct wa_req), the server state
 * every handler may reach (struct wa_ctx), and the request and reply helpers: JSON and error
 * answers with the security headers every answer carries, the body, query parameters, text
 * escaping. Calls nothing else in web-admin/: the handler files (wa_rules.c, wa_lists.c, ...),
 * wa_routes.c and wa_server.c build on it. Not an interface: nothing outside web-admin/
 * includes it.
 */
#ifndef PX_WA_HTTP_H
#define PX_WA_HTTP_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>
#include <microhttpd.h>

#include "web-admin/wa.h"

#define WA_BODY_LIMIT (1u << 20)         /* JSON bodies */
#define WA_PUBLIC_BODY_LIMIT (16u << 10) /* bodies of requests without a login (the login form) */
#define WA_POLICY_LIMIT (8u << 20)       /* policy imports (WA_BODY_POLICY): about 250,000 rules */
#define WA_LIST_LIMIT (32u << 20)        /* list imports (WA_BODY_LIST): over a million domains */
#define WA_TOKEN_HEX 64  /* 32 random bytes in hex: token, session ids, CSRF tokens */
#define WA_PARAM_MAX 256 /* longest path segment a route's {} takes */
#define WA_ROWS_MAX 1000 /* most rows one listing answers (?limit=) */

struct wa_auth;   /* wa_auth.c: token, sessions, login throttle */
struct wa_static; /* wa_static.c: pages and assets in memory */
struct wa_subs;   /* wa_subs.c: the list subscriptions' thread */

/* What every handler may reach besides its request. Set up by wa_start before the first
 * request and read-only afterwards, except policy_mu. Shared by the MHD threads. */
struct wa_ctx {
    const struct wa_options *opts; /* hooks, the live rule set, data_dir, pac_proxy: the
                                      server's own copy, strings owned by it */
    struct store_pool *pool;       /* borrowed: the database connections */
    struct wa_auth *auth;          /* borrowed */
    struct wa_static *files;       /* borrowed */
    struct wa_subs *subs;          /* borrowed: the subscription thread; NULL without fetches */
    pthread_mutex_t policy_mu;     /* one policy change at a time (wa_change.c) */
    /* The /proxy.pac URL other machines can fetch ("http://NAME:PORT/proxy.pac", NAME the
     * first admin host name, or the listen address), "" when the server listens on loopback
     * only and no other machine can reach it. */
    char pac_url[320];
    /* The pac_proxy setting as last read ("" unset), under pac_mu: a read the database does
     * not answer serves it, not the config's (a browser sent elsewhere, or one that falls
     * back to DIRECT on an error, would go round the proxy). */
    pthread_mutex_t pac_mu;
    char pac_last[8 + 256];
};

/* One HTTP request, from its first header to its answer. Lives on the MHD thread that
 * serves it; freed when MHD reports the request complete. */
struct wa_req {
    struct wa_ctx *ctx;
    struct MHD_Connection *conn;
    const char *method;          /* borrowed from MHD */
    const char *url;             /* path, percent-decoded by MHD */
    char param[WA_PARAM_MAX];    /* the path segment the route's {} matched, "" if none */
    char *body;                  /* owned, NUL-terminated once the request is complete */
    size_t len, cap, limit;      /* body bytes, allocated, allowed */
    const char *limit_hint;      /* static: said with the 413 */
    bool too_big;                /* more than limit arrived: answered 413 */
    bool authed;                 /* bearer token or live session */
    bool via_session;            /* a browser session (needs CSRF tokens) */
    bool must_change;            /* the session's admin must replace a first-run password */
    char actor[160];             /* audited: admin, "OWNER/token:NAME", "token" (admin.token) */
    char admin[64];              /* admin account acting (session, API token); "" admin.token */
    enum store_role role;        /* what the caller may do: the admin's (token owner's) role */
    char client[64];             /* requester's textual address */
    char csrf[WA_TOKEN_HEX + 1]; /* the session's CSRF token, when via_session */
    const char *set_cookie;      /* static or owned by the caller until the reply is queued */
    const char *allow;           /* a 405's Allow header, static or owned by the caller */
    int64_t retry_after_s;       /* > 0: the answer carries Retry-After */
    struct store *st;            /* acquired lazily by wa_store(), released after the answer */
    bool answered;
};

/* Retry-After of a 503 for a database that is not reachable: its connection is tried again
 * at most once a second (store_pg_revive), a frozen one's answer waited for 5 s at most once
 * seen (store_sql.c). */
#define WA_DB_RETRY_AFTER_S 5

/* The request's store connection (from the pool, opened if needed), or NULL after answering
 * itself: 503 (database unavailable, Retry-After) when a PostgreSQL server's connection cannot
 * be opened, 500 with the reason when an SQLite file cannot; the caller then just returns
 * MHD_YES. */
struct store *wa_store(struct wa_req *r);

/* Replies. Each queues exactly one answer, with the security headers (CSP, nosniff,
 * no-referrer, DENY framing; Cache-Control: cache, or no-store when NULL) and r's
 * Set-Cookie, Retry-After and Allow, and returns the MHD result to hand back. */
enum MHD_Result wa_reply_data(struct wa_req *r, unsigned status, const char *ctype,
                              const char *cache, const void *data, size_t len);
enum MHD_Result wa_reply_json(struct wa_req *r, unsigned status, json_t *obj); /* steals obj */
/* {"error": message, "field": field (if not NULL)}. A 500 after the request's connection
 * went down (store_unavailable: PostgreSQL away or frozen) is sent as 503 with Retry-After. */
enum MHD_Result wa_reply_error(struct wa_req *r, unsigned status, const char *field,
                               const char *fmt, ...) __attribute__((format(printf, 4, 5)));
/* 503 {"error": message} with Retry-After: the database is not reachable, whichever
 * connection found it (the request's own, or proxyd's for the policy). */
enum MHD_Result wa_reply_unavailable(struct wa_req *r, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* 200 with a body of unknown length made as it is sent (chunked): MHD calls read on this
 * request's thread for each block of at most WA_STREAM_BLOCK bytes, and done(cls) once at
 * the end, also when the client goes away or the reply cannot be queued. filename names the
 * download (Content-Disposition), a constant of ours. */
#define WA_STREAM_BLOCK (64u << 10)
enum MHD_Result wa_reply_stream(struct wa_req *r, const char *ctype, const char *filename,
                                MHD_ContentReaderCallback read, void *cls,
                                MHD_ContentReaderFreeCallback done);
/* 303 to location, no body. */
enum MHD_Result wa_reply_redirect(struct wa_req *r, const char *location);

/* A JSON string of s: s itself when it is UTF-8, else a copy with every byte that is not
 * part of a valid sequence written as the four characters \xNN, so stored text that is not
 * UTF-8 (or a message cut inside a character) is shown, never dropped. NULL only when out of
 * memory. */
json_t *wa_json_text(const char *s);

/* Appends n bytes of body as they arrive. Past r->limit it keeps nothing more and sets
 * r->too_big. PX_OK, or PX_ERR when out of memory. */
int wa_body_append(struct wa_req *r, const char *data, size_t n);
/* Parses the body as a JSON object; NULL after answering 400. */
json_t *wa_body_json(struct wa_req *r);
/* Query parameter, or NULL. */
const char *wa_query(struct wa_req *r, const char *key);
/* Integer query parameter: 1 if present and valid (*out set), 0 if absent, -1 after
 * answering 400 naming it. */
int wa_query_int(struct wa_req *r, const char *key, int64_t *out);
/* The limit query parameter of a listing: def when absent, at most WA_ROWS_MAX; -1 after
 * answering 400 (not a positive integer). */
int64_t wa_query_limit(struct wa_req *r, int64_t def);
/* The node query parameter: a node name as the log stores it (--node-name, at most
 * STORE_NODE_NAME_MAX bytes), *node NULL when absent or empty (every node). 0, or -1 after
 * answering 400. A name no node has is valid: it selects no row. */
int wa_query_node(struct wa_req *r, const char **node);
/* True if name is a usable list, user or admin name: 1-63 of [A-Za-z0-9._-], not starting
 * with '.'. */
bool wa_name_ok(const char *name);

#endif
