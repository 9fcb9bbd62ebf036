/* web-admin internals shared by the wa_*.c files: the server struct, one HTTP request as
 * the handlers see it, the reply helpers and the handler entry points. Not an interface:
 * nothing outside web-admin/ includes this.
 */
#ifndef PX_WA_INTERNAL_H
#define PX_WA_INTERNAL_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>
#include <microhttpd.h>
#include <sys/socket.h>

#include "web-admin/wa.h"

#define WA_BODY_LIMIT (1u << 20)    /* JSON bodies */
#define WA_POLICY_LIMIT (8u << 20)  /* policy imports: about 250,000 rules */
#define WA_LIST_LIMIT (32u << 20)   /* list imports: over a million domains */
#define WA_STORE_IDLE 4             /* idle store connections kept */
#define WA_TOKEN_HEX 64             /* 32 random bytes, hex */
#define WA_CONN_MAX 1024            /* HTTP connections at once, all addresses */
#define WA_CONN_PER_ADDR 32         /* ... from one client address */
#define WA_CONN_IDLE_S 10           /* a connection silent this long is closed */

struct wa_auth;
struct wa_static;

struct wa_server {
    struct wa_options opts; /* strings below are owned copies; the rest borrowed */
    char *listen, *data_dir, *db_path, *static_dir, *pac_proxy;
    struct MHD_Daemon *mhd;
    uint16_t port;
    struct sockaddr_storage listen_addr;
    size_t max_request_line; /* the proxy's, for /api/test */
    char **hosts; /* owned: names allowed in Host besides addresses, lower case, no final dot */
    size_t nhosts;
    char token[WA_TOKEN_HEX + 1];
    struct store_pool *pool; /* owned; the MHD threads share it */
    /* Held across "commit, call the policy hook, undo on failure" so two admins' changes
     * never interleave with each other's undo. */
    pthread_mutex_t policy_mu;
    struct wa_auth *auth;
    struct wa_static *files;
};

/* One HTTP request, from its first header to its answer. Lives on the MHD thread that
 * serves it; freed when MHD reports the request complete. */
struct wa_req {
    struct wa_server *srv;
    struct MHD_Connection *conn;
    const char *method; /* borrowed from MHD */
    const char *url;    /* path, percent-decoded by MHD */
    char *body;         /* owned, NUL-terminated */
    size_t len, cap, limit;
    const char *limit_hint; /* static: said with the 413 */
    bool too_big;
    bool authed; /* bearer token or live session */
    bool via_session;
    bool must_change;            /* the session's admin must replace a first-run password */
    char actor[64];              /* admin name or "token" */
    char client[64];             /* requester's textual address */
    char csrf[WA_TOKEN_HEX + 1]; /* the session's CSRF token, when via_session */
    const char *set_cookie;      /* static or owned by the caller until the reply is queued */
    int64_t retry_after_s;       /* > 0: the answer carries Retry-After */
    struct store *st;            /* acquired lazily by wa_store(), released after the answer */
    bool answered;
};

/* ---- wa_server.c ---- */

/* The request's store connection (from the pool, opened if needed), or NULL after
 * answering 500 itself; the caller then just returns. */
struct store *wa_store(struct wa_req *r);

/* Replies. Each queues exactly one answer and returns the MHD result to hand back. */
enum MHD_Result wa_reply_json(struct wa_req *r, unsigned status, json_t *obj); /* steals obj */
enum MHD_Result wa_reply_error(struct wa_req *r, unsigned status, const char *field,
                               const char *fmt, ...) __attribute__((format(printf, 4, 5)));
enum MHD_Result wa_reply_data(struct wa_req *r, unsigned status, const char *ctype,
                              const char *cache, const void *data, size_t len);
/* A JSON string of s: s itself when it is UTF-8, else a copy with every byte that is not
 * part of a valid sequence written as the four characters \xNN, so stored text that is not
 * UTF-8 (or a message cut inside a character) is shown, never dropped. NULL only when out of
 * memory. */
json_t *wa_json_text(const char *s);
/* Adds the security headers every answer carries. */
void wa_headers_add(struct MHD_Response *resp, const char *cache);

/* Parses the body as a JSON object; NULL after answering 400. */
json_t *wa_body_json(struct wa_req *r);
/* Query parameter, or NULL. */
const char *wa_query(struct wa_req *r, const char *key);
/* Integer query parameter: 1 if present and valid (*out set), 0 if absent, -1 after
 * answering 400 naming it. */
int wa_query_int(struct wa_req *r, const char *key, int64_t *out);

/* Calls the policy hook under policy_mu (caller holds it). 0, or -1 with err filled. */
int wa_policy_hook(struct wa_server *srv, char *err, size_t errlen);

/* ---- wa_auth.c ---- */

/* throttle: the login throttle's settings, NULL for store_throttle's defaults. */
struct wa_auth *wa_auth_new(const struct store_throttle_opts *throttle);
void wa_auth_free(struct wa_auth *a);
/* Reads <data_dir>/admin.token, creating it (0600) if missing. */
int wa_token_load(struct wa_server *srv, char *err, size_t errlen);
/* Creates admin WA_FIRST_ADMIN with a random password, written to the first-password file,
 * if no admin exists; sets *created. 0, or -1 with err filled (then no admin, no file). */
int wa_first_admin(struct wa_server *srv, bool *created, char *err, size_t errlen);
/* Deletes the first-password file (after the first admin's password changed or the admin
 * was deleted). A missing file is fine. Any thread. */
void wa_first_password_forget(struct wa_server *srv);
/* Fills r->authed/actor/via_session from the bearer token or session cookie. */
void wa_auth_check(struct wa_req *r);
/* True if a state-changing request made with a session lacks the right X-CSRF-Token. */
bool wa_csrf_bad(struct wa_req *r);
enum MHD_Result wa_api_login(struct wa_req *r);
enum MHD_Result wa_api_logout(struct wa_req *r);
enum MHD_Result wa_api_session(struct wa_req *r);
/* Admin logins refused for a wrong name or password, and refused unverified (429). */
void wa_auth_counters(struct wa_auth *a, uint64_t *failed, uint64_t *throttled);
/* Drops every session of an admin (after its password changed or it was deleted). */
void wa_sessions_drop_user(struct wa_auth *a, const char *user);
/* The admin chose a new password: its sessions no longer have to. */
void wa_sessions_password_changed(struct wa_auth *a, const char *user);

/* ---- wa_rules.c ---- */

enum MHD_Result wa_api_rules(struct wa_req *r, const char *rest);
enum MHD_Result wa_api_block(struct wa_req *r, const char *action);
enum MHD_Result wa_api_unblock(struct wa_req *r);
enum MHD_Result wa_api_policy(struct wa_req *r);
enum MHD_Result wa_api_test(struct wa_req *r);
enum MHD_Result wa_api_reload(struct wa_req *r);
json_t *wa_rule_json(const struct store_rule *rule);

/* ---- wa_data.c ---- */

enum MHD_Result wa_api_lists(struct wa_req *r, const char *name);
enum MHD_Result wa_api_users(struct wa_req *r, const char *name, enum store_account kind);
enum MHD_Result wa_api_logs(struct wa_req *r);
enum MHD_Result wa_api_top(struct wa_req *r);
enum MHD_Result wa_api_series(struct wa_req *r);
enum MHD_Result wa_api_stats(struct wa_req *r);
enum MHD_Result wa_api_settings(struct wa_req *r);
enum MHD_Result wa_api_audit(struct wa_req *r);
enum MHD_Result wa_api_health(struct wa_req *r);
enum MHD_Result wa_pac(struct wa_req *r);
/* True if name is a usable list/user name: [A-Za-z0-9._-], 1..63 chars. */
bool wa_name_ok(const char *name);

/* ---- wa_static.c ---- */

/* Reads the whitelisted files of dir into memory. NULL with err filled. */
struct wa_static *wa_static_load(const char *dir, char *err, size_t errlen);
void wa_static_free(struct wa_static *s);
/* Serves /static/NAME or a page path ("/", "/log", ...). Returns MHD_NO-free result after
 * answering, or sets *found false without answering when the path is not a page/asset. */
enum MHD_Result wa_static_serve(struct wa_req *r, bool *found);
/* True if path names an HTML page (which unauthenticated browsers are redirected from). */
bool wa_static_is_page(const char *path);

#endif
