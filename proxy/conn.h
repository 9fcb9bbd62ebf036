/* conn: one client connection and everything it needs for the request in flight: both
 * sockets, one buffer each way (held only while there are bytes to move), the parse and
 * framing state, the deadline, and (in a slot of the worker's req_pool, held only while a
 * request is in flight) the facts of the access record and the origin's addresses. A reader finds
 * every state a connection can be in in enum conn_state, and every phase of a relayed response in
 * enum relay_phase.
 *
 * One connection's life is split by concern, one file and header each:
 *   conn.c     this struct, the pump (conn_run), socket events, timeouts, close
 *   request.c  the head read and parsed, the access record, the decision, the rewritten head
 *   origin.c   target refusal, resolve and connect, the idle-origin pool
 *   relay.c    HTTP framing of both directions, long bodies spliced
 *   tunnel.c   CONNECT and WebSocket tunnels, kernel pipes and their per-worker pool
 *   reply.c    our own answers: error and block pages, 407, 200 established
 *   bump.c     TLS toward the client as the host it asked for (HTTPS block page, inspection)
 * Everything here runs on the thread of the worker that accepted the connection. */
#ifndef PX_CONN_H
#define PX_CONN_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>

#include "acl/acl.h"
#include "base/clock.h"
#include "base/stats.h"
#include "proxy/buf.h"
#include "proxy/conn_close.h"
#include "proxy/dns.h"
#include "proxy/h1_parse.h"
#include "proxy/req_pool.h"
#include "proxy/tunnel.h"
#include "storage/store.h"
#include "tls/tls.h"

struct listener;
struct worker;

enum conn_state {
    CONN_IDLE,       /* keep-alive between requests: no buffers held */
    CONN_HANDSHAKE,  /* a TLS listener's connection before its first request: the handshake */
    CONN_BUMP,       /* TLS toward the client as the host it asked for (bump.c) */
    CONN_PEEK,       /* intercepted: reading the first bytes to tell TLS, HTTP or other */
    CONN_READ_HEAD,  /* reading a request head */
    CONN_AUTH,       /* waiting for a verifier thread to check the proxy password */
    CONN_RESOLVE,    /* waiting for the origin's addresses */
    CONN_CONNECT,    /* origin connect in progress */
    CONN_ORIGIN_TLS, /* an inspected tunnel's request, or a tls-target forward's connection:
                        the TLS handshake with the origin and the check of its certificate */
    CONN_RELAY,      /* request going up, response coming down (phase: enum relay_phase) */
    CONN_TUNNEL,     /* CONNECT or WebSocket: opaque bytes both ways */
    CONN_REPLY,      /* sending a response of our own (error, block page, 407) */
    CONN_LINGER,     /* answer sent, write side shut: draining input so it is not reset */
    CONN_CLOSED,     /* waiting for the end of the loop iteration to be freed */
    CONN_STATE_COUNT
};

const char *conn_state_str(enum conn_state s);

/* A response status as /metrics labels it: 1..5 for 1xx..5xx, 0 ("none") for no status or
 * one outside 100-599. */
#define STATUS_CLASS_COUNT 6

unsigned conn_status_class(unsigned status);
const char *conn_status_class_str(unsigned cls); /* "none", "1xx" .. "5xx" */

/* The response side of CONN_RELAY (the request side is its framing, c->upf). */
enum relay_phase {
    RELAY_HEAD,   /* awaiting the final response head; interim (1xx) heads pass on as they come */
    RELAY_BODY,   /* the body, framed through the buffer */
    RELAY_SPLICE, /* a long body, origin -> pipe -> client with splice(2) */
    RELAY_PASS,   /* a long body between two TLS sessions, each record re-encrypted from where
                     the origin's session decrypted it */
    RELAY_PHASE_COUNT
};

const char *relay_phase_str(enum relay_phase p);

/* Framing of one direction of a relayed message. */
struct conn_flow {
    enum h1_body body;
    uint64_t remaining; /* H1_BODY_LENGTH: body bytes not yet framed */
    struct h1_chunked chunked;
    size_t ready; /* bytes at the buffer's head that are framed and may be sent */
    bool done;    /* whole message framed */
    bool eof;     /* the reading side reached EOF */
};

struct conn {
    struct conn *next, *prev;        /* worker's active list, or free list via next */
    struct worker *w;                /* borrowed */
    const struct listener *listener; /* borrowed: the one that accepted the connection */
    enum conn_state state;
    int cfd;                 /* client socket, owned */
    struct tls_session tls;  /* TLS between client and proxy (TLS_NONE on plain listeners):
                                every client byte goes through it, never spliced */
    int ofd;                 /* origin socket, owned, -1 if none */
    struct tls_session otls; /* TLS between proxy and origin (an inspected tunnel's), with ofd:
                                every origin byte goes through it, never spliced */
    struct buf up;           /* client -> origin */
    struct buf down;         /* origin -> client */
    struct conn_flow upf, downf;
    enum relay_phase phase; /* CONN_RELAY: where the response is */
    /* Readiness as last reported by edge-triggered epoll; cleared by EAGAIN or a short read. */
    bool c_readable, c_writable, o_readable, o_writable;
    /* The peer's end of stream (or an error) was reported: its edge is spent, so a short read
     * no longer means "drained", and the socket stays readable until recv says 0. */
    bool c_hup, o_hup;
    bool origin_in_use;    /* ofd serves the request in flight (else: kept idle, attached) */
    bool origin_as_client; /* ofd is bound to the client's address (TPROXY): never pooled */
    bool origin_reused;    /* ofd carried an earlier request: the origin may have closed it
                              as idle while this one was on its way */
    bool retrying;         /* the request goes out again, on a connection of its own */
    unsigned requests;     /* requests begun on this client connection */
    /* Sending the request again: up.data[0 .. up_sent) holds the bytes of it already sent
     * while up_intact (reading more of its body may overwrite them), and upf_start is its
     * framing as it began. */
    size_t up_sent;
    bool up_intact;
    struct conn_flow upf_start;
    bool rerun_queued;        /* the pump stopped at its fairness cap and continues later */
    bool auth_known;          /* the request's credentials were checked: user in auth_user, or
                                 "" when they were wrong (the request goes on anonymous) */
    uint8_t auth_rechecks;    /* times users or policy changed during this request's check */
    struct auth_query *authq; /* pending password check, owned by the auth module */
    char auth_user[64];
    uint64_t user_read; /* proxy_shared.users_reads when the password was last checked */
    /* Owned: a WebSocket's path when the record's copy is cut short (over 1 KiB, rare: the one
     * allocation of a request), so a policy change judges the open WebSocket on all of it. */
    char *ws_path;
    struct tun_pipe dpipe;               /* origin -> client (long bodies, tunnels) */
    struct tun_pipe upipe;               /* client -> origin (tunnels) */
    struct sockaddr_storage origin_addr; /* where ofd goes */
    bool head_sent;                      /* response bytes reached the client */
    bool client_keep_alive;
    bool origin_keep_alive;
    bool request_head; /* HEAD: response has no body */
    bool idempotent;   /* RFC 9110 9.2.2: the method may be repeated (origin_lost) */
    bool websocket;
    bool is_connect;
    bool is_forward;  /* raw bytes, no HTTP either way: accepted by a port forward, or an
                         intercepted connection that is not HTTP */
    int fwd_id;       /* the port forward that accepted it (portfwd_id), 0 for none */
    bool intercepted; /* accepted by an intercept or tproxy listener: every request goes to
                         orig_dst, whatever it names */
    bool tls_alert;   /* raw bytes that began with a ClientHello: a refusal is a TLS alert */
    struct sockaddr_storage orig_dst; /* intercepted: where the client's connection was bound */
    bool counted_tunnel;
    struct tls_mint *mint; /* bump.c: the mint of the certificate c->tls presents, or NULL */
    void *mint_ref;        /* that certificate, held until the session ends */
    gnutls_certificate_credentials_t mint_cred;
    void (*bump_then)(struct conn *c); /* CONN_BUMP: what runs after the handshake */
    bool block_inside;                 /* CONN_BUMP: the HTTPS block page reads the request */
    /* An inspected tunnel (CONNECT, or an intercepted TLS connection): its requests are read
     * from the client through tls with a minted certificate, go to tunnel_addr over otls, and
     * are decided and logged one by one as https://tunnel_host/path. */
    bool inspect;    /* decided for the CONNECT in flight: once it is established */
    bool inspecting; /* the client's TLS is ours: requests inside the tunnel */
    /* Also a tls-target forward's name to verify (portfwd_begin). */
    struct acl_host tunnel_host;
    uint16_t tunnel_port;
    struct sockaddr_storage tunnel_addr;
    char tunnel_user[64];  /* the CONNECT's proxy user, "" if none: every request's */
    bool hello_pending;    /* CONN_TUNNEL after CONNECT: the client's first bytes are held in up
                              until they prove not to be TLS, or a ClientHello whose server name
                              the policy allows (tunnel.c) */
    bool retry_watch;      /* CONN_TUNNEL: a ClientHello was allowed, and until the server's
                              first answer proves it no HelloRetryRequest, or the client's
                              second ClientHello was judged, the client's later bytes are held
                              in up after up_judged (tunnel.c) */
    bool retry_asked;      /* ... the server's answer was a HelloRetryRequest */
    size_t up_judged;      /* while retry_watch: bytes at the front of up that may go up */
    bool recounted;        /* started over (intercept_late_bytes, or a password checked again
                              after a change of users): its request was counted by the
                              judgement it replaces, so the next one is not (counters only
                              grow) */
    bool first_bytes_late; /* intercepted, gone on by its destination alone after the peek
                              window: a ClientHello or HTTP request that comes before the
                              origin says anything is judged as if in time (intercept.c) */

    struct sockaddr_storage client_addr;
    bool client_counted;  /* holds a place in w->shared->clients */
    struct acl_host host; /* the target's host, canonical: what the resolver looks up */
    bool dest_pending;    /* the policy allowed the name but a `deny dest` rule waits for
                             its addresses (acl_eval_dest) */
    uint32_t acl_order;   /* the decision's position in the set of generation acl_gen */
    uint64_t acl_gen;
    struct dns_query *dnsq; /* pending lookup, owned by the resolver */
    int64_t dns_start_ns;   /* monotonic, when dnsq was sent (the lookup latency histogram) */
    size_t addr_next;       /* next address of req->addrs to try */
    size_t head_len;        /* bytes at the front of up that are the request's unsent head */

    /* The request in flight's access record (req->rec, filled as facts become known) and
     * origin addresses (req->addrs), from w->reqs; NULL between requests. */
    struct req_slot *req;
    int64_t start_ms; /* monotonic */
    enum conn_close why;
};

/* Moves c to state s, keeping the worker's count of connections per state (only here: a
 * plain assignment would leave the count wrong). Worker thread. */
void conn_set_state(struct conn *c, enum conn_state s);

/* Accepts fd, taken by listener l of w, as a new client connection (fd non-blocking).
 * counted: the connection is counted in w->shared->clients, and its close releases it.
 * Returns 0 or -1 (fd closed, count released). Worker thread. */
int conn_accept(struct worker *w, const struct listener *l, int fd,
                const struct sockaddr_storage *addr, bool counted);
/* Checks the deadline of c against now; closes or answers 504 on expiry. Worker thread. */
void conn_check_timeout(struct conn *c, int64_t now_ms);
/* Closes c at once (shutdown, worker teardown), logging an unfinished request. */
void conn_abort(struct conn *c, enum conn_close why);

/* Whether the client side of c is TLS: its bytes go through c->tls, never splice(2). */
static inline bool conn_client_tls(const struct conn *c)
{
    return c->tls.state != TLS_NONE;
}

/* Whether the origin side of c is TLS: its bytes go through c->otls, never splice(2). */
static inline bool conn_origin_tls(const struct conn *c)
{
    return c->otls.state != TLS_NONE;
}

/* ---- for the files of one connection's life (request, origin, relay, tunnel, reply) ---- */

/* Bytes kept free while a head (request or response) is read, for what its rewrite adds. */
#define HEAD_RESERVE 1024

#define STAT_ADD(c, field, n)                                                                      \
    atomic_fetch_add_explicit(&(c)->w->stats.field, (n), memory_order_relaxed)

/* Adds the duration since start_ns (clock_mono_ns) to histogram name of c's worker
 * (base/stats.h: STATS_HISTOGRAM_TABLE). */
#define STAT_OBSERVE(c, name, start_ns)                                                            \
    do {                                                                                           \
        int64_t d_ = clock_mono_ns() - (start_ns);                                                 \
        uint64_t ns_ = d_ > 0 ? (uint64_t)d_ : 0;                                                  \
        atomic_fetch_add_explicit(&(c)->w->stats.name##_buckets[stats_bucket(ns_)], 1,             \
                                  memory_order_relaxed);                                           \
        atomic_fetch_add_explicit(&(c)->w->stats.name##_sum_ns, ns_, memory_order_relaxed);        \
    } while (0)

/* Advances c's state until its sockets would block; after 64 rounds it lets the other
 * connections run and goes on after this loop iteration. For the callbacks that resume a
 * parked connection (a lookup or a password check done). */
void conn_run(struct conn *c);
/* Ends c: why becomes the request's close reason unless one was recorded, an unfinished
 * request is logged, sockets, pipes and buffers are let go, and c is freed after the loop
 * iteration. A second call does nothing. */
void conn_close(struct conn *c, enum conn_close why);
/* The state in force times out ms from now (conn_check_timeout). */
void conn_set_deadline(struct conn *c, int ms);
/* Registers fd as c's origin socket with the loop (edge-triggered, both ways). Returns 0, or
 * -1 (errno) when the loop refused it. */
int conn_watch_origin(struct conn *c, int fd);
/* Whether the loop reports that side's incoming bytes (its writability always is). A splice
 * whose pipe is full turns them off for its source, which would otherwise wake the worker
 * for every segment it cannot take, and on again once a drain has made room (epoll then
 * reports at once what arrived meanwhile). No system call when nothing changes. Returns 0,
 * or -1 when epoll refused. */
int conn_want_reads(struct conn *c, bool client, bool want);
/* The request in flight is over, its record handed on, and the client may send another:
 * per-request state is cleared and c waits for the next head (already buffered, or idle). */
void conn_next_request(struct conn *c);
/* Lets go of c's origin and of all the request in flight set up to move bytes to and from
 * it: the origin socket (closed, not pooled), a tunnel and its count, both pipes, the
 * response's buffer, the framing and the per-request flags (conn_next_request clears the
 * same). The record, the client's buffer and the state are the caller's. For a connection
 * that ends (conn_close) or starts over (intercept_late_bytes). */
void conn_drop_origin(struct conn *c);
/* Our answer is out and the connection ends: shuts the write side and drains what the
 * client still sends for a moment, so the answer is not lost to a reset. */
void conn_linger(struct conn *c);

/* The byte pumps between a socket and a buffer. readable/writable are c's readiness flags
 * for fd: cleared when the socket proves drained or full (EAGAIN, or a short transfer). */

/* Sends up to *ready bytes from the head of b, consuming them from b and *ready. Returns the
 * bytes sent (> 0), PX_AGAIN when none could be sent now, PX_ERR on a failed send (errno). */
ssize_t conn_send(int fd, bool *writable, struct buf *b, size_t *ready);
/* Reads into the tail of b, leaving reserve bytes free. hup: the peer's end of stream was
 * reported, so a short read leaves the socket readable (the 0 is still to come). Returns the
 * bytes read (> 0), 0 at the end of stream, PX_AGAIN when nothing can be read now (not
 * readable, or no room), PX_ERR on a failed read (errno). */
ssize_t conn_recv(int fd, bool *readable, bool hup, struct buf *b, size_t reserve);

/* The client side's pumps: conn_recv/conn_send on c->cfd, through c->tls when the client
 * speaks TLS (same returns). */
ssize_t conn_client_recv(struct conn *c, struct buf *b, size_t reserve);
ssize_t conn_client_send(struct conn *c, struct buf *b, size_t *ready);
/* Sends all of c->down to the client (a reply of ours, or a CONNECT's 200), adding what went to
 * *sent if sent is not NULL. True once c->down is empty; false when the client cannot take more
 * now (c waits to be writable) or the send failed (c is closed). */
bool conn_client_flush(struct conn *c, uint64_t *sent);
/* The origin side's pumps: conn_recv/conn_send on c->ofd, through c->otls when the origin
 * speaks TLS (same returns). */
ssize_t conn_origin_recv(struct conn *c, struct buf *b, size_t reserve);
ssize_t conn_origin_send(struct conn *c, struct buf *b, size_t *ready);
/* Ends the client side's write direction: close_notify (TLS), then a TCP half-close. */
void conn_client_shutdown(struct conn *c);

#endif
