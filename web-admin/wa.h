/* web-admin: the admin HTTP server (libmicrohttpd, its own threads inside proxyd): JSON API
 * under /api/, the pages and static assets, /proxy.pac, login sessions and the proxyctl
 * bearer token. proxyctl's source lives beside it (ctl_*.c), as a client of that API.
 *
 * Reads and writes the database through connections borrowed from a store_pool; asks the live
 * ACL set to explain decisions; hands proxyd every change of rules or lists to compile before
 * it is committed (policy_apply). Never includes proxy/ headers.
 */
#ifndef PX_WA_H
#define PX_WA_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "acl/acl.h"
#include "acl/acl_forward.h"
#include "base/stats.h"
#include "base/status.h"
#include "storage/store.h"

#define WA_MAX_COUNTERS 128 /* requests_finished: decisions x status classes x listener kinds */
#define WA_MAX_LABELS 3

/* A counter proxyd names itself, so a new reason needs no change here. */
struct wa_counter {
    /* static: the values of the group's labels (base/stats.h), as many as it has; the JSON
     * key is label[0], or the values joined with '/' */
    const char *label[WA_MAX_LABELS];
    uint64_t value;
};

/* Counters by label: one JSON object, one labelled family in /metrics. */
struct wa_counter_set {
    struct wa_counter c[WA_MAX_COUNTERS];
    unsigned n;
};

/* One latency histogram: counts per bucket of base/stats.h's STATS_BUCKETS_NS (not
 * cumulative; the last is +Inf), and the total of the durations. */
struct wa_histogram {
    uint64_t buckets[STATS_NBUCKETS];
    uint64_t sum_ns;
};

/* Counters proxyd exposes to the admin side (filled by a hook, any thread); the fields come
 * from base/stats.h, which also makes their JSON and /metrics text. */
struct wa_proxy_stats {
    int64_t started_ms;
#define X(name, kind, what) uint64_t name;
    STATS_WORKER_TABLE
    STATS_PROCESS_TABLE
#undef X
#define X(name, kind, labels, what) struct wa_counter_set name;
    STATS_GROUP_TABLE
#undef X
#define X(name, what) struct wa_histogram name;
    STATS_HISTOGRAM_TABLE
#undef X
    struct store_log_counters log;
};

/* One download of a list subscription (wa_subs.c), which proxyd makes (list_fetch). */
struct wa_fetch {
    const char *url;           /* in: http:// or https:// */
    const char *etag;          /* in: sent as If-None-Match unless "" */
    const char *last_modified; /* in: sent as If-Modified-Since unless "" */
    size_t max_bytes;          /* in: a longer body is refused */
    const _Atomic bool *stop;  /* in: once true, the download ends (PX_ERR); may be NULL */
    int status;                /* out: the last answer's HTTP status */
    char *body;                /* out, owned by the caller (free): a 2xx answer's body */
    size_t len;
    char etag_out[256]; /* out: the answer's validators, "" when it had none */
    char last_modified_out[64];
    char err[512]; /* out: why there is no answer to use */
};

/* The outcomes of the policy_reload hook (POST /api/reload answers 200, 409, 500, 503). */
enum wa_reload_status {
    WA_RELOAD_DONE = 0,
    WA_RELOAD_REFUSED = -1,   /* the stored policy does not compile */
    WA_RELOAD_DB_FAILED = -2, /* the store failed */
    WA_RELOAD_DB_DOWN = -3,   /* the database is not reachable */
};

struct wa_options {
    const char *listen; /* "127.0.0.1:8080" or "[::1]:8080" */
    /* Names the server answers to in the Host header, besides the listen address itself
     * (any IP literal when it listens on 0.0.0.0 or ::) and localhost, 127.0.0.1 and [::1];
     * every other Host gets 421, on every path. Each entry may be a comma list. Copied. */
    const char *const *hosts;
    size_t nhosts;
    bool allow_remote; /* permit a non-loopback listen address without TLS (say so loudly) */
    /* PEM certificate (chain) and private key: the server speaks HTTPS only, and any listen
     * address is allowed. NULL: plain HTTP. Borrowed: must outlive the server. */
    const char *tls_cert_pem, *tls_key_pem;
    const char *data_dir;  /* holds admin.token (mode 0600) */
    const char *node_name; /* this node's name in the nodes table (GET /api/nodes: "self") */
    const char *db_path;
    const char *static_dir;    /* web-admin/static */
    const char *pac_proxy;     /* "host:port" handed out by /proxy.pac */
    unsigned max_request_line; /* the proxy's request-line limit (/api/test); 0 = 8192 */
    struct acl_live *acl;      /* borrowed: rule set in force, for /api/test */
    /* Admin login throttle; NULL = 5 failures of an account or an address, then delays
     * from 1 s doubling to 5 minutes (store_throttle's defaults). Copied at start. */
    const struct store_throttle_opts *login_throttle;
    /* A change of rules or lists, compiled before it is committed (web-admin/wa_change.c).
     * cand is the policy as the change would leave it. The hook compiles it as proxyd
     * compiles the store's policy (adding its allowed networks). If that fails it returns
     * PX_ERR with err naming the rule and the reason ("rule 9: list: no list named 'ads'")
     * and does not call commit: nothing is written. Else it calls commit(commit_arg,
     * &version, err, errlen), which writes the change in one transaction and returns PX_OK
     * with the store's new policy version, PX_AGAIN when the store's policy moved since cand
     * was read (nothing written), or PX_ERR with err. Only after PX_OK does the hook put the
     * compiled set in force, as that version. Returns what commit returned. Called on an
     * admin thread; proxyd's own reloads wait for it. NULL: the admin server compiles cand
     * itself (default allowed networks) and publishes the set into acl. */
    int (*policy_apply)(void *arg, const struct acl_config *cand,
                        int (*commit)(void *commit_arg, int64_t *version, char *err, size_t errlen),
                        void *commit_arg, char *err, size_t errlen);
    /* POST /api/reload: compile the store's policy again and put it in force. A
     * wa_reload_status, with err unless done (the old set stays). NULL: nothing to do. */
    int (*policy_reload)(void *arg, char *err, size_t errlen);
    /* A proxy user was set or deleted: proxyd forgets the password checks it cached. The
     * change moved the store's policy version from `from` to `to` without touching rules or
     * lists, so a set compiled at `from` stands for `to` too; both are -1 when other changes
     * may have come between. May be NULL. */
    void (*users_changed)(void *arg, int64_t from, int64_t to);
    void (*proxy_stats)(void *arg, struct wa_proxy_stats *out);
    /* POST /api/forwards: proxyd binds f's listener on every worker and stores f (actor for
     * the audit), or neither. 0 with *id set; 1 when refused with err saying why (the address
     * cannot be bound, a forward holds it already, too many); -1 with err. DELETE
     * /api/forwards/ID: stored forward id is deleted and its listeners close; 0, 1 when there
     * is no such forward, -1 with err. NULL: forwards cannot be changed (503). */
    int (*forward_add)(void *arg, const struct acl_forward *f, const char *actor, int *id,
                       char *err, size_t errlen);
    int (*forward_delete)(void *arg, int id, const char *actor, char *err, size_t errlen);
    /* The config file's `forward` lines (acl_forward_parse_line), in force from the start:
     * GET /api/forwards lists them too (ids -1, -2, ... as proxyd numbers them), marked as
     * from the config and not deletable through the API. Borrowed: must outlive the server. */
    char *const *config_forwards;
    size_t nconfig_forwards;
    /* GET /readyz: true if proxyd serves (listening, a policy in force, the access log's
     * writer running); else false with why saying what is missing. Any thread. NULL: ready. */
    bool (*ready)(void *arg, char *why, size_t whylen);
    /* Networks whose callers may read GET /metrics without credentials, besides loopback:
     * comma-separated CIDRs ("10.0.0.0/8,fd00::/8"), or NULL. Copied. */
    const char *metrics_allow;
    /* The first-run admin account could not be made at start (made false, err says why: a
     * full disk, a locked database): the server runs without it, and a thread of its own
     * tries again every WA_FIRST_ADMIN_RETRY_S seconds. Called again, with made true and
     * err NULL, once it is made (its password file is then there). Never for a start that
     * made it or found an admin. May be NULL. Any thread. */
    void (*first_admin)(void *arg, bool made, const char *err);
    /* Downloads f->url for a list subscription as proxyd downloads anything: its own
     * resolver, its target refusal (no loopback or private targets unless allowed) on every
     * address and after every redirect (a few at most), http and https only, a timeout, at
     * most f->max_bytes. PX_OK when an answer came (f->status, and the body of a 2xx); PX_ERR
     * with f->err. Called on the subscription thread or an MHD thread. NULL: subscriptions
     * are not fetched (503). */
    int (*list_fetch)(void *arg, struct wa_fetch *f);
    size_t list_max_bytes;   /* a subscription's list is at most this long; 0 = WA_LIST_LIMIT */
    int64_t sub_min_every_s; /* the shortest subscription interval; 0 = 60 */
    /* PUT /api/settings committed a change: proxyd reads the settings again and puts them in
     * force before the answer goes out. May be NULL. */
    void (*settings_changed)(void *arg);
    /* The config's value of option `name` (proxyd's option table: "retention-days") as text,
     * "" when unset: the Settings page shows what a setting overrides. May be NULL. */
    void (*config_value)(void *arg, const char *name, char *out, size_t outlen);
    void *hook_arg;
};

struct wa_server;

/* The first-run admin, and the file in the data folder that holds its generated password
 * (mode 0600) until that password is changed. */
#define WA_FIRST_ADMIN "admin"
#define WA_FIRST_PASSWORD_FILE "admin.password"

#define WA_FIRST_ADMIN_RETRY_S 5

/* Starts the server. Creates the bearer token file if missing. On first run (no admin
 * account) creates admin WA_FIRST_ADMIN with a random password, written only to
 * <data_dir>/WA_FIRST_PASSWORD_FILE, and sets *first_run (the caller says where the file
 * is; false otherwise). That password must be replaced at its first login; the file is
 * deleted when it is. If the account cannot be written, the server starts anyway and
 * retries (opts->first_admin): a full disk or a locked database must not stop the proxy
 * around it. Returns NULL with err filled. */
struct wa_server *wa_start(const struct wa_options *opts, bool *first_run, char *err,
                           size_t errlen);
void wa_stop(struct wa_server *srv);
/* The TCP port the server listens on (useful after listening on port 0). Any thread. */
uint16_t wa_port(const struct wa_server *srv);

#endif
