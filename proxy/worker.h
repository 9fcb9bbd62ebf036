/* worker: one thread with its own event loop, its own SO_REUSEPORT listeners (listener.h), its own
 * c-ares channel, buffer pool, connection free list, idle origin connections and counters. Workers
 * share only read-mostly state (struct proxy_shared): the live ACL, the DNS cache, the log
 * queues (one producer queue each) and the tunables, which the main thread replaces under a
 * mutex and workers copy when the generation moves. */
#ifndef PX_WORKER_H
#define PX_WORKER_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include "acl/acl.h"
#include "base/stats.h"
#include "proxy/auth.h"
#include "proxy/buf.h"
#include "proxy/config.h"
#include "proxy/req_pool.h"
#include "proxy/conn.h"
#include "proxy/conn_close.h"
#include "proxy/dns.h"
#include "proxy/ev.h"
#include "proxy/h1_parse.h"
#include "proxy/listener.h"
#include "proxy/origin.h"
#include "proxy/portfwd.h"
#include "proxy/reply.h"
#include "proxy/tunnel.h"
#include "storage/store.h"

#define WORKER_MAX_HEADERS 256
#define WORKER_MAX_LOCAL_ADDRS 32

/* Settings a worker reads on every request; replaced as a whole on SIGHUP. */
struct proxy_tunables {
    struct h1_limits limits;
    int header_timeout_ms, idle_timeout_ms, connect_timeout_ms, origin_timeout_ms, tunnel_idle_ms;
    unsigned max_connections;
    unsigned max_conns_per_client;
    uint16_t connect_ports[CONFIG_MAX_PORTS];
    size_t nconnect_ports;
    bool allow_loopback_targets;
    bool intercept_host_strict;
    char via[64];
    char contact[256];
    char logo[REPLY_LOGO_URI_MAX]; /* block pages' logo (reply.h), "" for none */
};

struct proxy_shared {
    struct acl_live *acl;        /* borrowed */
    struct store_log *log;       /* borrowed, NULL when the access log is off */
    struct auth *auth;           /* borrowed: proxy password checks */
    struct dns_cache *dns_cache; /* borrowed */
    const char *const *dns_servers;
    size_t ndns_servers;
    int dns_timeout_ms;
    /* Addresses that are this machine's own (interfaces) and ports that are proxyd's own
     * (listeners, admin; a worker adds its port forwards'): never proxied to. */
    struct sockaddr_storage local_addrs[WORKER_MAX_LOCAL_ADDRS];
    size_t nlocal_addrs;
    uint16_t own_ports[CONFIG_MAX_LISTENERS + 1];
    size_t nown_ports;
    struct client_limit *clients;      /* borrowed: connections per client address */
    struct portfwd_table *forwards;    /* borrowed: the port forwards in force */
    const struct tls_cred *tls;        /* borrowed: the TLS listeners' credentials, NULL if none */
    const struct tls_trust *trust;     /* borrowed: what inspected tunnels' origins are
                                          verified against (system store, --upstream-ca) */
    struct access_req_box *access_req; /* borrowed: block-page access requests */
    /* The local CA's certificates (tls/mint.h), NULL without a CA. Replaced (never freed
     * while workers run) when a CA is made or imported on the running proxy. */
    struct tls_mint *_Atomic mint;
    /* A denied CONNECT gets the block page inside TLS when a CA exists (bump.c): the setting
     * https_block_page, else --https-block-page. */
    atomic_bool https_block_page;
    int fd_limit; /* RLIMIT_NOFILE as raised at start: no descriptor is above */

    pthread_mutex_t tunables_lock;
    struct proxy_tunables tunables; /* under tunables_lock */
    atomic_uint_fast64_t tunables_gen;

    /* The proxy users in the store, names in strcmp order: the main thread reads them again
     * after users may have changed (proxy_users_refresh), and the workers close the tunnels of
     * users no longer there (tun_users_check). users_reads counts the reads begun; a
     * connection notes it when its password is checked (conn.user_read), so a list judges
     * only users checked before it was read: one created meanwhile is not in it yet. */
    pthread_mutex_t users_lock;
    char **users; /* under users_lock, owned */
    size_t nusers;
    uint64_t users_read; /* under users_lock: the users_reads value of the list's read, 0 for
                            none yet (nothing is closed until one is) */
    atomic_uint_fast64_t users_reads;
    atomic_uint_fast64_t users_gen; /* bumped when a list is put in place */
};

/* This worker's counters (base/stats.h), added to with relaxed atomics by the worker and
 * read by the main thread's sum. */
struct worker_stats {
#define X(name, kind, what) atomic_uint_fast64_t name;
    STATS_WORKER_TABLE
#undef X
    atomic_uint_fast64_t closes[CLOSE_COUNT];           /* "closes" */
    atomic_uint_fast64_t refused[REFUSE_COUNT];         /* "connections_refused" */
    atomic_uint_fast64_t conn_states[CONN_STATE_COUNT]; /* "connections_by_state" */
    atomic_uint_fast64_t requests_finished[STORE_DECISION_COUNT][STATUS_CLASS_COUNT]
                                          [LISTENER_KIND_COUNT]; /* "requests_finished" */
#define X(name, what)                                                                              \
    atomic_uint_fast64_t name##_buckets[STATS_NBUCKETS];                                           \
    atomic_uint_fast64_t name##_sum_ns;
    STATS_HISTOGRAM_TABLE
#undef X
};

struct conn;
struct client_limit;

struct conn_timer {
    int64_t deadline_ms;
    struct conn *c; /* NULL: no live connection on this descriptor */
};
struct tls_trust;
struct access_req_box;

struct worker {
    unsigned index;
    pthread_t thread;
    struct ev_loop *loop;        /* owned */
    struct proxy_shared *shared; /* borrowed */
    struct proxy_tunables tun;   /* this worker's copy */
    uint64_t tun_gen;
    struct listener listeners[CONFIG_MAX_LISTENERS]; /* connections point at these */
    size_t nlisten;
    struct portfwd_slot *fwd; /* owned, PORTFWD_MAX: this worker's forward listeners */
    uint64_t fwd_gen;         /* the forwards' table generation they match */
    /* proxyd's own ports as this worker knows them: shared's and its forwards' (a target on
     * one of them, at this machine, would loop back into proxyd). */
    uint16_t own_ports[CONFIG_MAX_LISTENERS + 1 + PORTFWD_MAX];
    size_t nown_ports;
    bool accept_paused;       /* listeners ask for nothing until the next tick */
    int reserve_fd;           /* owned: a descriptor kept to be let go when out of them */
    struct dns_resolver *dns; /* owned */
    struct buf_pool bufs;
    struct req_pool reqs;    /* a place per connection, a slot per request in flight */
    struct conn *free_conns; /* owned free list */
    struct conn *active;     /* intrusive list of live connections */
    size_t nconns;
    /* Each live connection's deadline, indexed by its client descriptor: the tick's sweep
     * reads these 16 bytes a connection in order, not each connection's struct (at 17,500
     * idle clients the list walk cost 1.5 ms a tick). timers_end: no live one at or above it
     * (accept raises it, the sweep lowers it). */
    struct conn_timer *timers; /* owned, shared->fd_limit entries */
    int timers_end;
    struct origin_pool origins; /* idle origin connections, any client's to take */
    struct tun_pipe_pool pipes; /* empty pipes for splice */
    size_t nattached;           /* idle origin connections kept by their client */
    const struct acl_set *acl;  /* reference held from shared->acl */
    uint64_t acl_gen;
    uint64_t tunnels_judged_gen;     /* the rule set the open tunnels were last judged by */
    uint64_t users_judged_gen;       /* the users the open tunnels were last checked against */
    struct acl_scratch *acl_scratch; /* owned */
    struct acl_clock clock;
    atomic_bool draining;
    int drain_grace_ms;
    int64_t drain_deadline_ms;
    struct worker_stats stats;
    struct h1_header headers[WORKER_MAX_HEADERS]; /* parse scratch, one request at a time */
    char scratch[BUF_SIZE];                       /* head rewrite scratch */
};

/* Creates the worker's loop and resolver and takes over its nlisten listeners (from
 * listener_open; copied, their sockets owned by the worker from here on: closed by
 * worker_destroy, or at exit if this fails). Returns 0, or -1 with err filled. Main thread. */
int worker_init(struct worker *w, unsigned index, struct proxy_shared *shared,
                const struct listener *listeners, size_t nlisten, char *err, size_t errlen);
int worker_start(struct worker *w); /* spawns the thread */
/* Stops accepting, lets requests in flight finish for up to grace_ms, then closes the rest
 * and ends the loop. Any thread. */
void worker_drain(struct worker *w, int grace_ms);
void worker_join(struct worker *w);
void worker_destroy(struct worker *w);
/* Tells the worker that shared->tunables changed. Any thread. */
void worker_notify(struct worker *w);
/* The rule set in force (w->acl), taken anew when its generation moved. Worker thread. */
const struct acl_set *worker_acl_refresh(struct worker *w);

#endif
