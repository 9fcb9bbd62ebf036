/* proxyd: the daemon's state, one per process, made and owned by main.c (start-up, the poll
 * thread's work, the stop). It has a header of its own only so that the parts of main that
 * are files of their own (proxyd_stats.c: what the admin server and systemd are told) read it
 * too; no library code includes it. */
#ifndef PX_PROXYD_H
#define PX_PROXYD_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "proxy/access_req.h"
#include "proxy/ca_live.h"
#include "proxy/config.h"
#include "proxy/policy.h"
#include "proxy/portfwd.h"
#include "proxy/reply.h"
#include "proxy/worker.h"
#include "storage/store.h"

/* The values of the settings the admin may change live, as in force (setting, else config). */
struct live_settings {
    int64_t retention_days, retention_rows, expired_rule_days, version_keep, version_keep_days;
    char contact[256];
    char logo[REPLY_LOGO_URI_MAX];
};

struct proxyd {
    struct px_config cfg;
    struct proxy_shared shared;
    struct worker *workers;
    unsigned nworkers;
    struct listener *listeners; /* nworkers x nlisteners, opened before --user; then the
                                   workers' */
    size_t nlisteners;          /* per worker: --listen, then --listen-tls */
    struct tls_cred *tls;       /* TLS listeners' and admin's credentials, NULL if unused */
    struct tls_trust *trust;    /* what inspected tunnels' origins are verified against */
    char *fetch_ca_file;        /* --upstream-ca's certificates in one file for list downloads
                                   (libcurl takes one CA file beside the system's), or NULL */
    struct policy_loader policy;
    struct policy_watch *watch; /* PostgreSQL: other nodes' changes at once; or NULL */
    struct node_beat *beat;     /* this node's row in the nodes table */
    struct poll_thread *poller; /* the periodic database work; woken by signals and the watch */
    int argc;                   /* the command line, for a SIGHUP's reload */
    char **argv;
    struct portfwd_table forwards;
    struct acl_live *acl;
    struct store_log *log;
    struct auth *auth;
    struct dns_cache *dns_cache;
    struct client_limit *clients;
    struct access_req_box access_req;
    struct ca_live ca; /* the local CA and its mint (shared.mint) */
    struct wa_server *admin;
    int64_t started_ms;
    int64_t next_status_ms;   /* monotonic */
    uint64_t trimmed_gen;     /* rule-set generation memory was last trimmed after */
    int64_t gen_seen_ms;      /* monotonic: when a newer generation was first seen; 0 = none */
    _Atomic bool serving;     /* the workers run and listen (GET /readyz) */
    _Atomic bool users_stale; /* proxy users may have changed: the poll reads them again */
    /* Held by the admin hooks that reach into the workers (forwards) and by shut_down when
     * it clears serving: the admin server outlives the workers' drain, and no hook may post
     * to a loop that is ending. */
    pthread_mutex_t serving_mu;
    char node_name[STORE_NODE_NAME_MAX + 1]; /* --node-name, or the host name */
    /* The settings an admin changes on the running proxy (the settings table) override the
     * config's twins while they are set (docs/admin.md, "Settings"). apply_mu serialises
     * applying them (admin thread, poll thread), database reads included; settings_mu guards
     * what follows and the config's live fields, which the admin server reads
     * (hook_config_value) and SIGHUP changes on the main thread, and is never held across a
     * wait for the database. */
    pthread_mutex_t apply_mu;
    pthread_mutex_t settings_mu;
    struct proxy_tunables tun_base; /* the config's tunables, before the settings' overlay */
    struct live_settings applied;   /* what is in force */
};

#endif
