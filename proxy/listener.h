/* listener: where a connection arrives. Every listening socket has a kind, and a connection
 * keeps the listener that accepted it (struct conn's listener), so a listener that intercepts,
 * forwards a port or speaks TLS has a place to begin. Each worker has its own socket per
 * configured address (SO_REUSEPORT, so the kernel spreads accepts over the workers); this file
 * binds them, runs the accept loop and decides who may connect (admission) before
 * conn_accept() takes the socket: a connection is closed unread when its client could get
 * nothing, holds too many already, or finds the worker full, and running out of descriptors
 * never turns into a busy loop.
 *
 * Threads: listener_probe() and listener_open() on the main thread at start (before --user
 * gives up root, so ports below 1024 work); everything else on the worker's thread, or
 * while no worker thread runs (start-up, teardown). */
#ifndef PX_LISTENER_H
#define PX_LISTENER_H

#include <stddef.h>
#include <sys/socket.h>

/* What a listener's connections are, and the setting that makes one: FORWARD, TLS (the same
 * proxy, its connections beginning with a TLS handshake, conn.c), INTERCEPT and TPROXY
 * (proxy/intercept.h) and PORTFWD (proxy/portfwd.h) (docs/architecture.md, "Listeners").
 * X(ENUM, name, setting) */
#define LISTENER_KIND_TABLE                                                                        \
    X(LISTENER_FORWARD, "forward", "listen")        /* browsers set to use the proxy */            \
    X(LISTENER_INTERCEPT, "intercept", "intercept") /* redirected here by the gateway */           \
    X(LISTENER_TPROXY, "tproxy", "tproxy")          /* diverted here by the gateway's TPROXY */    \
    X(LISTENER_TLS, "tls", "listen-tls")            /* forward, TLS from client to proxy */        \
    X(LISTENER_PORTFWD, "portfwd", "forward")       /* plain TCP relayed to one target */

enum listener_kind {
#define X(e, name, setting) e,
    LISTENER_KIND_TABLE
#undef X
        LISTENER_KIND_COUNT
};

/* "forward", "intercept", "tls", "portfwd"; "?" for anything else. */
const char *listener_kind_str(enum listener_kind kind);

/* Why a connection was closed as soon as it was accepted, before a byte was read: the
 * counter in worker stats and its name in /api/stats ("connections_refused"). X(ENUM, name) */
#define LISTENER_REFUSE_TABLE                                                                      \
    X(REFUSE_NOT_ALLOWED, "not_allowed")         /* no request of this client could pass */        \
    X(REFUSE_PER_CLIENT, "per_client")           /* --max-conns-per-client */                      \
    X(REFUSE_MAX_CONNECTIONS, "max_connections") /* --max-connections */                           \
    X(REFUSE_NO_DESCRIPTORS, "no_descriptors")   /* the process is out of descriptors */

enum listener_refuse {
#define X(e, s) e,
    LISTENER_REFUSE_TABLE
#undef X
        REFUSE_COUNT
};

/* The name of a refusal reason (a JSON key); "?" for anything else. */
const char *listener_refuse_str(enum listener_refuse why);

struct worker;
struct acl_forward;
struct tls_cred;

/* One listening socket of one worker. Lives in its worker (struct worker's listeners), so a
 * connection may point at it for as long as the worker exists. */
struct listener {
    int fd; /* owned; -1 once closed */
    enum listener_kind kind;
    const char *address;           /* borrowed: the setting's text, as written ("[::1]:3128") */
    struct sockaddr_storage addr;  /* what it is bound to */
    struct worker *w;              /* borrowed: whose loop accepts on it; NULL until attached */
    const struct acl_forward *fwd; /* borrowed, PORTFWD only: the forward (the worker's copy) */
    const struct tls_cred *tls;    /* borrowed, a tls-listen forward only: its certificate */
};

/* Binds text once without SO_REUSEPORT and lets go: fails (err filled) if any other socket
 * holds the address, since the workers' SO_REUSEPORT listeners would otherwise silently
 * share the port with another process. Returns 0 or -1. Main thread, before listener_open. */
int listener_probe(const char *text, char *err, size_t errlen);

/* Opens a non-blocking listening socket of kind on text ("IP:PORT", "[IPv6]:PORT") with
 * SO_REUSEPORT, one per worker, so that every worker has its own accept queue. Fills *l, whose
 * fd the caller owns until listener_attach hands it to a worker; text must outlive it.
 * Returns 0, or -1 with err filled. Main thread. */
int listener_open(struct listener *l, enum listener_kind kind, const char *text, char *err,
                  size_t errlen);

/* Gives the n listeners in ls (copied; their sockets now w's) to worker w, takes the reserve
 * descriptor kept for running out of them, and watches every listener on w's loop. Returns 0,
 * or -1 with err filled (what was taken is released by listener_detach). Worker start-up. */
int listener_attach(struct worker *w, const struct listener *ls, size_t n, char *err,
                    size_t errlen);

/* Watches l (fd open, not yet watched) on w's loop, accepting as w's listeners do: a listener
 * that comes while w runs (a port forward). Returns 0, or -1 (errno). Worker thread. */
int listener_watch(struct worker *w, struct listener *l);
/* Stops watching l and closes it. Worker thread. */
void listener_unwatch(struct listener *l);

/* Stops accepting for good: every listener of w closed, forwards' too (draining). Worker
 * thread. */
void listener_close_all(struct worker *w);

/* The tick's part: accepting goes on after a pause (out of descriptors, or an accept error
 * that would spin) once the reserve descriptor is held again. Worker thread. */
void listener_tick(struct worker *w);

/* Closes w's listeners and lets go of the reserve descriptor. Teardown, no thread running. */
void listener_detach(struct worker *w);

#endif
