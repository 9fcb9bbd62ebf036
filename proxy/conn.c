/* conn: the life of a client connection as a state machine. conn_run() is the pump: it runs
 * the handler of the current state (request.c, origin.c, relay.c, tunnel.c, reply.c) until
 * the sockets would block. Socket events only record readiness and call the pump; deadlines
 * are checked on the worker's tick; closing frees the connection only after the loop
 * iteration. Also here: the byte pumps between a socket and a buffer, which keep the
 * edge-triggered readiness flags honest. Worker thread only. */
#include "proxy/conn.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "base/status.h"
#include "proxy/bump.h"
#include "proxy/client_limit.h"
#include "proxy/log.h"
#include "proxy/intercept.h"
#include "proxy/origin.h"
#include "proxy/portfwd.h"
#include "proxy/relay.h"
#include "proxy/reply.h"
#include "proxy/request.h"
#include "proxy/worker.h"

/* How long a connection that was answered and shut drains what its client still sends. */
#define LINGER_MS 2000

static const char *const state_names[CONN_STATE_COUNT] = {
    [CONN_IDLE] = "idle",       [CONN_HANDSHAKE] = "handshake", [CONN_BUMP] = "bump",
    [CONN_PEEK] = "peek",       [CONN_READ_HEAD] = "read-head", [CONN_AUTH] = "auth",
    [CONN_RESOLVE] = "resolve", [CONN_CONNECT] = "connect",     [CONN_ORIGIN_TLS] = "origin-tls",
    [CONN_RELAY] = "relay",     [CONN_TUNNEL] = "tunnel",       [CONN_REPLY] = "reply",
    [CONN_LINGER] = "linger",   [CONN_CLOSED] = "closed",
};

const char *conn_state_str(enum conn_state s)
{
    return (unsigned)s < CONN_STATE_COUNT ? state_names[s] : "?";
}

unsigned conn_status_class(unsigned status)
{
    return status >= 100 && status < 600 ? status / 100 : 0;
}

const char *conn_status_class_str(unsigned cls)
{
    static const char *const names[STATUS_CLASS_COUNT] = {"none", "1xx", "2xx",
                                                          "3xx",  "4xx", "5xx"};
    return cls < STATUS_CLASS_COUNT ? names[cls] : "?";
}

/* A closed connection is no longer open: it leaves the count when it enters CONN_CLOSED. */
void conn_set_state(struct conn *c, enum conn_state s)
{
    struct worker_stats *st = &c->w->stats;

    if (c->state == s)
        return;
    if (c->state != CONN_CLOSED)
        atomic_fetch_sub_explicit(&st->conn_states[c->state], 1, memory_order_relaxed);
    if (s != CONN_CLOSED)
        atomic_fetch_add_explicit(&st->conn_states[s], 1, memory_order_relaxed);
    c->state = s;
}

static const char *const phase_names[RELAY_PHASE_COUNT] = {
    [RELAY_HEAD] = "head",
    [RELAY_BODY] = "body",
    [RELAY_SPLICE] = "splice",
    [RELAY_PASS] = "pass",
};

const char *relay_phase_str(enum relay_phase p)
{
    return (unsigned)p < RELAY_PHASE_COUNT ? phase_names[p] : "?";
}

static const char *const close_names[CLOSE_COUNT] = {
#define X(e, s) s,
    CONN_CLOSE_TABLE
#undef X
};

const char *conn_close_str(enum conn_close why)
{
    return (unsigned)why < CLOSE_COUNT ? close_names[why] : "?";
}

void conn_set_deadline(struct conn *c, int ms)
{
    if (c->cfd >= 0) /* closed: no deadline */
        c->w->timers[c->cfd].deadline_ms = ev_now_ms(c->w->loop) + ms;
}

/* ---- byte pumps ---- */

ssize_t conn_send(int fd, bool *writable, struct buf *b, size_t *ready)
{
    if (!*writable)
        return PX_AGAIN;
    size_t want = *ready;
    ssize_t n = send(fd, buf_head(b), want, MSG_NOSIGNAL);
    if (n > 0) {
        buf_consume(b, (size_t)n);
        *ready -= (size_t)n;
        if ((size_t)n < want)
            *writable = false;
        return n;
    }
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
        *writable = false;
        return PX_AGAIN;
    }
    if (n < 0 && errno == EINTR)
        return PX_AGAIN;
    return PX_ERR;
}

ssize_t conn_recv(int fd, bool *readable, bool hup, struct buf *b, size_t reserve)
{
    if (!*readable)
        return PX_AGAIN;
    size_t room = buf_room(b);
    if (room <= reserve)
        return PX_AGAIN;
    room -= reserve;
    ssize_t n = recv(fd, buf_tail(b), room, 0);
    if (n > 0) {
        b->len += (size_t)n;
        if ((size_t)n < room && !hup)
            *readable = false; /* drained: the next edge says when there is more */
        return n;
    }
    if (n == 0)
        return 0;
    if (errno == EAGAIN || errno == EWOULDBLOCK) {
        *readable = false;
        return PX_AGAIN;
    }
    if (errno == EINTR)
        return PX_AGAIN;
    return PX_ERR;
}

/* conn_recv through a TLS session t on the socket whose flags are readable/writable. */
static ssize_t tls_recv(struct tls_session *t, bool *readable, bool *writable, struct buf *b,
                        size_t reserve)
{
    if (!*readable)
        return PX_AGAIN;
    size_t room = buf_room(b);
    if (room <= reserve)
        return PX_AGAIN;
    /* No short-read shortcut: GnuTLS may hold decrypted bytes the socket no longer shows, so
     * only its "would block" clears the flag. */
    ssize_t n = tls_session_recv(t, buf_tail(b), room - reserve, readable, writable);
    if (n > 0)
        b->len += (size_t)n;
    return n;
}

/* conn_send through a TLS session t. */
static ssize_t tls_send(struct tls_session *t, bool *readable, bool *writable, struct buf *b,
                        size_t *ready)
{
    if (!*writable || *ready == 0)
        return PX_AGAIN;
    ssize_t n = tls_session_send(t, buf_head(b), *ready, readable, writable);
    if (n > 0) {
        buf_consume(b, (size_t)n);
        *ready -= (size_t)n;
    }
    return n;
}

ssize_t conn_client_recv(struct conn *c, struct buf *b, size_t reserve)
{
    if (!conn_client_tls(c))
        return conn_recv(c->cfd, &c->c_readable, c->c_hup, b, reserve);
    return tls_recv(&c->tls, &c->c_readable, &c->c_writable, b, reserve);
}

ssize_t conn_client_send(struct conn *c, struct buf *b, size_t *ready)
{
    if (!conn_client_tls(c))
        return conn_send(c->cfd, &c->c_writable, b, ready);
    return tls_send(&c->tls, &c->c_readable, &c->c_writable, b, ready);
}

bool conn_client_flush(struct conn *c, uint64_t *sent)
{
    while (c->down.len > 0) {
        size_t ready = c->down.len;
        ssize_t n = conn_client_send(c, &c->down, &ready);
        if (n == PX_ERR) {
            conn_close(c, CLOSE_CLIENT_ERROR);
            return false;
        }
        if (n == PX_AGAIN)
            return false;
        if (sent)
            *sent += (uint64_t)n;
    }
    return true;
}

ssize_t conn_origin_recv(struct conn *c, struct buf *b, size_t reserve)
{
    if (!conn_origin_tls(c))
        return conn_recv(c->ofd, &c->o_readable, c->o_hup, b, reserve);
    return tls_recv(&c->otls, &c->o_readable, &c->o_writable, b, reserve);
}

ssize_t conn_origin_send(struct conn *c, struct buf *b, size_t *ready)
{
    if (!conn_origin_tls(c))
        return conn_send(c->ofd, &c->o_writable, b, ready);
    return tls_send(&c->otls, &c->o_readable, &c->o_writable, b, ready);
}

void conn_client_shutdown(struct conn *c)
{
    if (conn_client_tls(c))
        tls_session_bye(&c->tls);
    shutdown(c->cfd, SHUT_WR);
}

/* CONN_HANDSHAKE: a TLS client's handshake; then it is an idle connection like any other, or
 * a tls-listen forward's connection on its way to the target. */
static bool step_handshake(struct conn *c)
{
    static struct log_ratelimit tls_rl = LOG_RATELIMIT_INIT(10000, 1);
    int r = tls_session_handshake(&c->tls, &c->c_readable, &c->c_writable);
    if (r == PX_AGAIN)
        return false;
    if (r == PX_ERR) {
        char who[INET6_ADDRSTRLEN] = "?";
        const struct sockaddr_storage *ss = &c->client_addr;
        inet_ntop(ss->ss_family,
                  ss->ss_family == AF_INET
                      ? (const void *)&((const struct sockaddr_in *)ss)->sin_addr
                      : (const void *)&((const struct sockaddr_in6 *)ss)->sin6_addr,
                  who, sizeof(who));
        log_info_limited(&tls_rl, "client %s: TLS handshake failed: %s", who,
                         tls_session_error(&c->tls));
        /* Closed with its bytes unread, the socket would answer with a reset, and the alert
         * GnuTLS sent would be lost: drain for a moment instead, like any answered client. */
        c->why = CLOSE_TLS_HANDSHAKE;
        conn_linger(c);
        return true;
    }
    /* The first request may have come with the handshake's last flight and wait in GnuTLS. */
    c->c_readable = true;
    conn_set_state(c, CONN_IDLE);
    conn_set_deadline(c, c->w->tun.header_timeout_ms);
    if (c->listener->kind == LISTENER_PORTFWD)
        portfwd_begin_after_tls(c);
    return true;
}

/* ---- between requests, and the end ---- */

/* Clears what the request in flight set up on c: its framing both ways, the response's
 * phase, pipe and buffer, its flags, and a tunnel (its count, the wait for a ClientHello, the
 * client's pipe). The origin socket stays: kept for the next request, or the caller's to
 * close (conn_drop_origin). The one list of per-request fields: a new one is cleared here. */
static void clear_request(struct conn *c)
{
    struct worker *w = c->w;
    if (c->counted_tunnel)
        atomic_fetch_sub_explicit(&w->stats.tunnels_active, 1, memory_order_relaxed);
    c->counted_tunnel = false;
    memset(&c->upf, 0, sizeof(c->upf));
    memset(&c->downf, 0, sizeof(c->downf));
    c->phase = RELAY_HEAD;
    c->head_sent = c->request_head = c->websocket = c->is_connect = c->hello_pending = false;
    free(c->ws_path);
    c->ws_path = NULL;
    c->retry_watch = c->retry_asked = false;
    c->up_judged = 0;
    c->inspect = false; /* a CONNECT answered with an error leaves it set */
    c->retrying = c->up_intact = false;
    c->up_sent = 0;
    c->origin_keep_alive = false;
    c->auth_known = false;
    c->auth_rechecks = 0;
    tun_pipe_close(&w->pipes, &c->dpipe);
    tun_pipe_close(&w->pipes, &c->upipe);
    c->addr_next = 0;
    c->head_len = 0;
    c->dest_pending = false;
    buf_detach(&w->bufs, &c->down);
}

void conn_drop_origin(struct conn *c)
{
    clear_request(c);
    origin_close(c);
    c->o_readable = c->o_writable = false;
}

void conn_next_request(struct conn *c)
{
    struct worker *w = c->w;
    clear_request(c);
    /* An idle keep-alive client holds no buffer: the pump's read-head step may not run (the
     * client's readiness is spent), so the up buffer goes back here, not only on EAGAIN. */
    if (c->up.len == 0)
        buf_detach(&w->bufs, &c->up);
    conn_set_state(c, c->up.len ? CONN_READ_HEAD : CONN_IDLE);
    conn_set_deadline(c, c->up.len ? w->tun.header_timeout_ms : w->tun.idle_timeout_ms);
}

void conn_linger(struct conn *c)
{
    conn_client_shutdown(c);
    conn_set_state(c, CONN_LINGER);
    conn_set_deadline(c, LINGER_MS);
}

static bool step_linger(struct conn *c)
{
    char sink[4096];
    if (!c->c_readable)
        return false;
    for (int i = 0; i < 16; i++) {
        ssize_t n = recv(c->cfd, sink, sizeof(sink), 0);
        if (n > 0)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            c->c_readable = false;
            return false;
        }
        break;
    }
    conn_close(c, CLOSE_NONE);
    return false;
}

/* ---- the pump ---- */

static void conn_rerun(struct ev_loop *loop, void *arg)
{
    struct conn *c = arg;
    c->rerun_queued = false;
    conn_run(c);
}

/* Runs the handler of c's state once. Returns whether to go on (progress, or a new state). */
static bool step(struct conn *c)
{
    switch (c->state) {
    case CONN_HANDSHAKE:
        return step_handshake(c);
    case CONN_BUMP:
        return bump_step(c);
    case CONN_PEEK:
        return intercept_step_peek(c);
    case CONN_IDLE:
    case CONN_READ_HEAD:
        return request_step_read_head(c);
    case CONN_RESOLVE:
        /* Every outcome of a lookup leaves this state, so no query means none started. */
        if (c->dnsq)
            return false;
        origin_resolve(c);
        return c->state != CONN_RESOLVE;
    case CONN_ORIGIN_TLS:
        return origin_step_tls(c);
    case CONN_RELAY:
        return relay_step(c);
    case CONN_TUNNEL:
        return tun_step(c);
    case CONN_REPLY:
        return reply_step(c);
    case CONN_LINGER:
        return step_linger(c);
    case CONN_AUTH:    /* on_auth_result resumes it */
    case CONN_CONNECT: /* on_origin resumes it */
    case CONN_CLOSED:
    case CONN_STATE_COUNT:
        break;
    }
    return false;
}

void conn_run(struct conn *c)
{
    for (int rounds = 0; c->state != CONN_CLOSED; rounds++) {
        if (rounds == 64) {
            /* Fair to the other connections: go on after this iteration's events. No new
             * edge would come for bytes we already know about. */
            if (!c->rerun_queued && ev_defer(c->w->loop, conn_rerun, c) == 0)
                c->rerun_queued = true;
            return;
        }
        if (!step(c))
            return;
    }
}

/* An error makes both directions "ready": the next recv or send reports it. */
static void on_client(struct ev_loop *loop, int fd, unsigned events, void *arg)
{
    struct conn *c = arg;
    c->c_readable |= (events & (EV_READ | EV_ERROR)) != 0;
    c->c_writable |= (events & (EV_WRITE | EV_ERROR)) != 0;
    c->c_hup |= (events & (EV_HUP | EV_ERROR)) != 0;
    conn_run(c);
}

static void on_origin(struct ev_loop *loop, int fd, unsigned events, void *arg)
{
    struct conn *c = arg;
    c->o_readable |= (events & (EV_READ | EV_ERROR)) != 0;
    c->o_writable |= (events & (EV_WRITE | EV_ERROR)) != 0;
    c->o_hup |= (events & (EV_HUP | EV_ERROR)) != 0;
    if (!c->origin_in_use) {
        /* A kept origin connection that speaks unasked or closes is of no more use. */
        if (events & (EV_READ | EV_ERROR))
            origin_close(c);
        return;
    }
    if (c->state == CONN_CONNECT) {
        if (!(events & (EV_WRITE | EV_ERROR)))
            return;
        origin_connect_done(c);
    }
    conn_run(c);
}

/* Sockets are registered once, edge-triggered, for both directions: the handlers record
 * readiness in the connection and the pump acts on it, so a request costs no epoll_ctl. */
static int watch(struct conn *c, int fd, ev_io_cb cb)
{
    return ev_io_set(c->w->loop, fd, EV_READ | EV_WRITE | EV_EDGE, cb, c);
}

int conn_watch_origin(struct conn *c, int fd)
{
    return watch(c, fd, on_origin);
}

int conn_want_reads(struct conn *c, bool client, bool want)
{
    unsigned events = (want ? EV_READ : 0u) | EV_WRITE | EV_EDGE;
    return ev_io_set(c->w->loop, client ? c->cfd : c->ofd, events, client ? on_client : on_origin,
                     c);
}

/* ---- birth, death, timeouts ---- */

static void free_conn(struct ev_loop *loop, void *arg)
{
    struct conn *c = arg;
    struct worker *w = c->w;
    c->next = w->free_conns;
    w->free_conns = c;
}

/* Lets go of what c holds besides its client socket: queries, the origin, pipes, buffers. */
static void release_all(struct conn *c)
{
    struct worker *w = c->w;
    if (c->dnsq) {
        dns_cancel(c->dnsq);
        c->dnsq = NULL;
    }
    if (c->authq) {
        auth_cancel(c->authq);
        c->authq = NULL;
    }
    conn_drop_origin(c);
    buf_detach(&w->bufs, &c->up);
}

void conn_close(struct conn *c, enum conn_close why)
{
    struct worker *w = c->w;
    if (c->state == CONN_CLOSED)
        return;
    if (why != CLOSE_NONE && c->why == CLOSE_NONE)
        request_record_outcome(c, why, NULL);
    request_record_finish(c);
    atomic_fetch_add_explicit(&w->stats.closes[c->why], 1, memory_order_relaxed);
    release_all(c);
    if (conn_client_tls(c)) {
        /* A client at rest (idle timeout, shutdown) hears the end; otherwise it is gone. */
        if (c->tls.state == TLS_OPEN &&
            (c->why == CLOSE_NONE || c->why == CLOSE_IDLE_TIMEOUT || c->why == CLOSE_SHUTDOWN))
            tls_session_bye(&c->tls);
        tls_session_end(&c->tls);
    }
    bump_release(c); /* after the session that presented its certificate */
    ev_io_del(w->loop, c->cfd);
    w->timers[c->cfd] = (struct conn_timer){0, NULL}; /* the tick lowers timers_end */
    close(c->cfd);
    c->cfd = -1;
    if (c->client_counted)
        client_limit_release(w->shared->clients, (const struct sockaddr *)&c->client_addr);
    c->client_counted = false;
    req_pool_unreserve(&w->reqs); /* request_record_finish gave back any slot */
    conn_set_state(c, CONN_CLOSED);
    if (c->prev)
        c->prev->next = c->next;
    else
        w->active = c->next;
    if (c->next)
        c->next->prev = c->prev;
    w->nconns--;
    atomic_fetch_sub_explicit(&w->stats.connections_active, 1, memory_order_relaxed);
    /* Freed after this iteration: a later event in the same batch may still name c. */
    if (ev_defer(w->loop, free_conn, c) < 0)
        free_conn(w->loop, c);
}

void conn_abort(struct conn *c, enum conn_close why)
{
    conn_close(c, why);
}

int conn_accept(struct worker *w, const struct listener *l, int fd,
                const struct sockaddr_storage *addr, bool counted)
{
    struct conn *c = w->free_conns;
    /* Above the loop's table (a limit past FD_LIMIT_MAX): no place to watch it from. */
    if (fd >= w->shared->fd_limit || req_pool_reserve(&w->reqs) < 0) {
        c = NULL;
    } else if (c) {
        w->free_conns = c->next;
    } else {
        c = malloc(sizeof(*c));
        if (!c)
            req_pool_unreserve(&w->reqs);
    }
    if (!c) {
        close(fd);
        if (counted)
            client_limit_release(w->shared->clients, (const struct sockaddr *)addr);
        return -1;
    }
    memset(c, 0, sizeof(*c));
    c->why = CLOSE_NONE;
    c->w = w;
    c->listener = l;
    c->fwd_id = portfwd_id(l);
    c->cfd = fd;
    c->ofd = -1;
    c->client_addr = *addr;
    c->client_counted = counted;
    c->state = CONN_CLOSED; /* not counted until conn_set_state below */
    /* A tls-listen forward's clients speak TLS too; portfwd_begin follows the handshake. A
     * client outside the forward's list gets no handshake (a signature for anyone who asks,
     * and the certificate): portfwd_begin refuses and logs it at once, as without TLS. */
    const struct tls_cred *cred = l->kind == LISTENER_TLS ? w->shared->tls : l->tls;
    if (l->kind == LISTENER_TLS ||
        (l->kind == LISTENER_PORTFWD && l->fwd->tls == ACL_FORWARD_TLS_LISTEN &&
         acl_forward_client_allowed(l->fwd, (const struct sockaddr *)addr))) {
        if (!cred || tls_session_start(&c->tls, cred, fd) < 0) {
            c->tls.state = TLS_NONE;
            close(fd);
            req_pool_unreserve(&w->reqs);
            if (counted)
                client_limit_release(w->shared->clients, (const struct sockaddr *)addr);
            c->next = w->free_conns;
            w->free_conns = c;
            return -1;
        }
        conn_set_state(c, CONN_HANDSHAKE);
    } else {
        conn_set_state(c, CONN_IDLE);
    }
    w->timers[fd].c = c; /* fd < shared->fd_limit: the kernel gives none above the limit */
    if (fd >= w->timers_end)
        w->timers_end = fd + 1;
    c->next = w->active;
    c->prev = NULL;
    if (w->active)
        w->active->prev = c;
    w->active = c;
    w->nconns++;
    atomic_fetch_add_explicit(&w->stats.connections_active, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&w->stats.connections_total, 1, memory_order_relaxed);
    conn_set_deadline(c, w->tun.header_timeout_ms);
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    c->c_readable = c->c_writable = true; /* the request may be there already */
    if (watch(c, fd, on_client) < 0) {
        conn_close(c, CLOSE_OVERLOAD);
        return -1;
    }
    if (l->kind == LISTENER_PORTFWD && c->state != CONN_HANDSHAKE)
        portfwd_begin(c, l->fwd);
    else if (l->kind == LISTENER_INTERCEPT || l->kind == LISTENER_TPROXY)
        intercept_begin(c);
    conn_run(c);
    return 0;
}

void conn_check_timeout(struct conn *c, int64_t now_ms)
{
    if (c->state == CONN_CLOSED || now_ms < c->w->timers[c->cfd].deadline_ms)
        return;
    switch (c->state) {
    case CONN_IDLE:
        conn_close(c, CLOSE_IDLE_TIMEOUT);
        return;
    case CONN_HANDSHAKE:
    case CONN_BUMP:
        conn_close(c, CLOSE_CLIENT_TIMEOUT);
        return;
    case CONN_PEEK:
        intercept_peek_timeout(c);
        break;
    case CONN_READ_HEAD:
        if (c->up.len == 0) {
            conn_close(c, CLOSE_IDLE_TIMEOUT);
            return;
        }
        request_head_timeout(c);
        break;
    case CONN_AUTH:
        auth_cancel(c->authq);
        c->authq = NULL;
        reply_error(c, CLOSE_OVERLOAD, 503, "The proxy could not check the password in time.",
                    false);
        break;
    case CONN_RESOLVE:
        if (c->dnsq) {
            dns_cancel(c->dnsq);
            c->dnsq = NULL;
        }
        reply_error(c, CLOSE_DNS_TIMEOUT, 504, "The web site's name could not be resolved in time.",
                    false);
        break;
    case CONN_CONNECT:
        reply_error(c, CLOSE_CONNECT_TIMEOUT, 504,
                    "The web site's server did not accept a connection in time.", false);
        break;
    case CONN_ORIGIN_TLS:
        origin_close(c);
        reply_error(c, CLOSE_CONNECT_TIMEOUT, 504,
                    "The web site's server did not complete its TLS handshake in time.", false);
        break;
    case CONN_RELAY:
        relay_fail(c, CLOSE_ORIGIN_TIMEOUT, 504, "The web site did not answer in time.");
        break;
    case CONN_TUNNEL:
        conn_close(c, CLOSE_TUNNEL_IDLE);
        return;
    case CONN_REPLY:
    case CONN_LINGER:
        conn_close(c, c->state == CONN_REPLY ? CLOSE_CLIENT_TIMEOUT : CLOSE_NONE);
        return;
    case CONN_CLOSED:
    case CONN_STATE_COUNT:
        return;
    }
    conn_run(c);
}
