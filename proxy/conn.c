/* conn: the life of a client connection: read and parse a request, ask the ACL, resolve,
 * connect (or reuse an idle origin connection), relay the request up and the response down
 * with exact framing, tunnel CONNECT and WebSocket, answer errors and blocks with a page,
 * and hand one access record per request to storage.
 *
 * Every handler runs on the worker's thread. conn_run() is the pump: it advances the
 * current state until the sockets would block, then sets the epoll interest from what the
 * state still needs. Bytes are never interpreted twice: a direction's "ready" count is the
 * framed prefix of its buffer that may be sent as it is. Tunnels and pipes: tunnel.c. */
#include "proxy/conn.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>

#include "base/clock.h"
#include "base/status.h"
#include "proxy/client_limit.h"
#include "proxy/log.h"
#include "proxy/origin.h"
#include "proxy/relay.h"
#include "proxy/reply.h"
#include "proxy/worker.h"

static const char *const state_names[CONN_STATE_COUNT] = {
    "idle",  "read-head", "auth",  "resolve", "connect",
    "relay", "tunnel",    "reply", "linger",  "closed",
};

const char *conn_state_str(enum conn_state s)
{
    return (unsigned)s < CONN_STATE_COUNT ? state_names[s] : "?";
}

static const char *const phase_names[RELAY_PHASE_COUNT] = {
    [RELAY_HEAD] = "head",
    [RELAY_BODY] = "body",
    [RELAY_SPLICE] = "splice",
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

static void on_client(struct ev_loop *loop, int fd, unsigned events, void *arg);
static void on_origin(struct ev_loop *loop, int fd, unsigned events, void *arg);

/* How long a connection that was answered and shut drains what its client still sends. */
#define LINGER_MS 2000

static void copy_field(char *dst, size_t cap, const char *src, size_t len)
{
    if (len >= cap)
        len = cap - 1;
    if (len) /* src may be NULL for an absent field */
        memcpy(dst, src, len);
    dst[len] = '\0';
}

void conn_set_deadline(struct conn *c, int ms)
{
    c->deadline_ms = ev_now_ms(c->w->loop) + ms;
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

/* ---- the access record ---- */

static bool request_in_flight(const struct conn *c)
{
    return c->rec.time_ms != 0;
}

void request_record_outcome(struct conn *c, enum conn_close why, const char *detail)
{
    c->why = why;
    if (detail)
        copy_field(c->rec.error, sizeof(c->rec.error), detail, strlen(detail));
}

void request_record_finish(struct conn *c)
{
    if (!request_in_flight(c))
        return;
    struct worker *w = c->w;
    int64_t now = ev_now_ms(w->loop);
    c->rec.duration_ms = (uint32_t)(now > c->start_ms ? now - c->start_ms : 0);
    if (c->why != CLOSE_NONE && !c->rec.error[0])
        copy_field(c->rec.error, sizeof(c->rec.error), conn_close_str(c->why),
                   strlen(conn_close_str(c->why)));
    if (w->shared->log)
        store_log_push(w->shared->log, w->index, &c->rec);
    if (c->rec.decision != STORE_ALLOW)
        STAT_ADD(c, requests_denied, 1);
    c->rec.time_ms = 0;
}

/* ---- sockets and interest ---- */

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

/* ---- our own responses ---- */

void reply_denied(struct conn *c, const char *reason, int rule_id)
{
    c->rec.decision = STORE_DENY;
    c->rec.rule_id = rule_id;
    c->why = CLOSE_DENIED;
    /* A request body we have not read would be taken for the next request. */
    reply_blocked(c, reason, c->upf.body == H1_BODY_NONE && !c->is_connect);
}

/* ---- reading a request ---- */

static void start_request_record(struct conn *c)
{
    memset(&c->rec, 0, sizeof(c->rec));
    c->rec.time_ms = clock_wall_coarse_ms();
    c->start_ms = ev_now_ms(c->w->loop);
    c->why = CLOSE_NONE;
    const struct sockaddr *sa = (const struct sockaddr *)&c->client_addr;
    if (sa->sa_family == AF_INET)
        inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, c->rec.client,
                  sizeof(c->rec.client));
    else
        inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)sa)->sin6_addr, c->rec.client,
                  sizeof(c->rec.client));
}

static void handle_bad_request(struct conn *c, const struct h1_error *err)
{
    if (!request_in_flight(c))
        start_request_record(c);
    copy_field(c->rec.method, sizeof(c->rec.method), "-", 1);
    copy_field(c->rec.error, sizeof(c->rec.error), err->reason, strlen(err->reason));
    c->rec.decision = STORE_DENY;
    c->why = CLOSE_BAD_REQUEST;
    c->head_len = 0;
    reply_page(c, err->status, err->reason, false);
}

/* Acts on a complete request head at the front of c->up. */
static void on_auth_result(void *arg, enum auth_status st, const char *user)
{
    struct conn *c = arg;
    c->authq = NULL;
    if (st == AUTH_OK || st == AUTH_DENIED) {
        snprintf(c->auth_user, sizeof(c->auth_user), "%s", st == AUTH_OK ? user : "");
        c->auth_known = true;
        c->state = CONN_READ_HEAD; /* the head is still in up: parse it again, user known */
    } else {
        c->why = CLOSE_OVERLOAD;
        reply_page(c, 503, "The proxy cannot check passwords right now; please try again.", false);
    }
    conn_run(c);
}

/* Who is asking: the verified user, or NULL. Returns false when the request is answered or
 * parked (state changed) instead. */
static bool request_user(struct conn *c, const struct h1_request *req, const char **user)
{
    struct worker *w = c->w;
    *user = NULL;
    if (c->auth_known) {
        *user = c->auth_user[0] ? c->auth_user : NULL;
        return true;
    }
    if (req->proxy_authorization.len == 0 || !w->shared->auth)
        return true;
    switch (auth_check(w->shared->auth, w->loop, (const struct sockaddr *)&c->client_addr,
                       req->proxy_authorization.p, req->proxy_authorization.len, c->auth_user,
                       on_auth_result, c, &c->authq)) {
    case AUTH_OK:
        *user = c->auth_user;
        return true;
    case AUTH_MALFORMED:
    case AUTH_DENIED:
        /* Wrong credentials count as none: the ACL decides, and answers 407 where a rule
         * needs a user. */
        return true;
    case AUTH_PENDING:
        c->state = CONN_AUTH;
        conn_set_deadline(c, w->tun.header_timeout_ms);
        return false;
    case AUTH_BUSY:
    case AUTH_STATUS_COUNT:
        break;
    }
    c->why = CLOSE_OVERLOAD;
    reply_page(c, 503, "The proxy cannot check passwords right now; please try again.", false);
    return false;
}

static void handle_request(struct conn *c, struct h1_request *req, size_t head_len)
{
    struct worker *w = c->w;
    if (!c->auth_known) { /* else a head parsed again after a password check */
        STAT_ADD(c, requests_total, 1);
        c->requests++;
    }
    start_request_record(c);
    c->head_len = head_len;
    copy_field(c->rec.method, sizeof(c->rec.method), req->method.p, req->method.len);
    /* Keep-alive is offered to HTTP/1.1 clients only: a 1.0 client would need a
     * "Connection: keep-alive" echo we do not promise. */
    c->client_keep_alive = req->keep_alive && req->minor_version == 1;
    c->request_head = req->method.len == 4 && !memcmp(req->method.p, "HEAD", 4);
    static const char *const idempotent[] = {"GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE"};
    c->idempotent = false;
    for (size_t i = 0; i < sizeof(idempotent) / sizeof(idempotent[0]); i++)
        c->idempotent |= strcmp(c->rec.method, idempotent[i]) == 0;
    c->is_connect = req->form == H1_FORM_AUTHORITY;
    c->websocket = req->upgrade_websocket;
    relay_flow_start(&c->upf, req->body, req->content_length);

    if (req->form == H1_FORM_ORIGIN || req->form == H1_FORM_ASTERISK) {
        copy_field(c->rec.path, sizeof(c->rec.path), req->target.p, req->target.len);
        c->rec.decision = STORE_DENY;
        c->why = CLOSE_BAD_REQUEST;
        reply_page(c, 400,
                   "This is a proxy server: configure it as your browser's HTTP proxy "
                   "instead of opening it as a web site.",
                   false);
        return;
    }
    /* The parser made the host canonical; everything after reads this one form. */
    c->host = req->host;
    copy_field(c->rec.host, sizeof(c->rec.host), c->host.text, c->host.len);
    c->rec.port = req->port;
    copy_field(c->rec.scheme, sizeof(c->rec.scheme), c->is_connect ? "https" : "http",
               c->is_connect ? 5 : 4);
    copy_field(c->rec.path, sizeof(c->rec.path), req->path.p, req->path.len);

    if (c->is_connect) {
        bool port_ok = false;
        for (size_t i = 0; i < w->tun.nconnect_ports; i++)
            port_ok |= w->tun.connect_ports[i] == req->port;
        if (!port_ok) {
            char why[96];
            snprintf(why, sizeof(why), "CONNECT to port %u is not allowed", req->port);
            reply_denied(c, why, 0);
            return;
        }
    }

    const char *user;
    if (!request_user(c, req, &user))
        return;
    if (user)
        copy_field(c->rec.user, sizeof(c->rec.user), user, strlen(user));

    worker_acl_refresh(w);
    struct acl_request ar = {
        .scheme = c->rec.scheme,
        .host = &c->host,
        .port = req->port,
        .path = req->path.p ? req->path.p : "",
        .path_len = req->path.len,
        .method = req->method.p,
        .method_len = req->method.len,
        .client = (const struct sockaddr *)&c->client_addr,
        .user = user,
        .clock = w->clock,
        .brief = true, /* the reason is shown only on block pages */
    };
    struct acl_decision d;
    acl_eval(w->acl, &ar, w->acl_scratch, &d);
    c->rec.rule_id = d.rule_id;
    c->rec.undecided_rule_id = d.undecided_rule_id;
    c->dest_pending = d.dest_pending;
    c->acl_order = d.order;
    c->acl_gen = w->acl_gen;
    if (d.action == ACL_DENY) {
        reply_denied(c, d.reason, d.rule_id);
        return;
    }
    if (d.action == ACL_AUTH) {
        c->rec.decision = STORE_AUTH;
        c->why = CLOSE_AUTH_REQUIRED;
        reply_page(c, 407,
                   req->proxy_authorization.len
                       ? "The proxy user name or password is wrong."
                       : "This address needs a proxy user name and password.",
                   c->upf.body == H1_BODY_NONE);
        return;
    }
    c->rec.decision = STORE_ALLOW;

    if (c->is_connect) {
        buf_consume(&c->up, head_len);
        c->head_len = 0;
    } else {
        long n = h1_request_rewrite(req, w->tun.via, w->scratch, sizeof(w->scratch));
        size_t rest = c->up.len - head_len;
        if (n < 0 || (size_t)n + rest > BUF_SIZE) {
            struct h1_error e = {431, "request head too large to forward"};
            handle_bad_request(c, &e);
            return;
        }
        /* The rewritten head replaces the original in place; req's slices die here. */
        memmove(c->up.data + n, c->up.data + c->up.off + head_len, rest);
        memcpy(c->up.data, w->scratch, (size_t)n);
        c->up.off = 0;
        c->up.len = (size_t)n + rest;
        c->upf.ready = (size_t)n;
        c->head_len = (size_t)n;
        c->upf_start = c->upf;
        c->up_sent = 0;
        c->up_intact = true;
    }

    /* The pump starts the lookup (begin_resolve) on its next round. */
    c->state = CONN_RESOLVE;
}

static bool step_read_head(struct conn *c)
{
    struct worker *w = c->w;
    if (!c->c_readable && c->up.len == 0)
        return false;
    if (buf_attach(&w->bufs, &c->up) < 0) {
        conn_close(c, CLOSE_OVERLOAD);
        return false;
    }
    for (;;) {
        if (c->up.len > 0) {
            struct h1_request req = {.headers = w->headers};
            struct h1_error err = {0};
            int n = h1_parse_request(buf_head(&c->up), c->up.len, &w->tun.limits, &req, &err);
            if (n > 0) {
                handle_request(c, &req, (size_t)n);
                return true;
            }
            if (n == PX_ERR) {
                handle_bad_request(c, &err);
                return true;
            }
        }
        /* Keep room for what the head rewrite adds (Host, Via). */
        size_t room = buf_room(&c->up);
        room = room > HEAD_RESERVE ? room - HEAD_RESERVE : 0;
        if (room == 0) {
            struct h1_error e = {431, "request head too large"};
            handle_bad_request(c, &e);
            return true;
        }
        if (!c->c_readable)
            return false;
        ssize_t n = recv(c->cfd, buf_tail(&c->up), room, 0);
        if (n > 0) {
            if ((size_t)n < room && !c->c_hup)
                c->c_readable = false;
            if (c->state == CONN_IDLE) {
                c->state = CONN_READ_HEAD;
                conn_set_deadline(c, w->tun.header_timeout_ms);
            }
            c->up.len += (size_t)n;
            continue;
        }
        if (n == 0 && c->up.len > 0) {
            /* The client ended in the middle of a head: say so rather than say nothing (it
             * may still read), and do not wait for the header timeout. */
            struct h1_error e = {400, "request head cut short by the client's close"};
            c->why = CLOSE_CLIENT_EOF;
            handle_bad_request(c, &e);
            return true;
        }
        if (n == 0) {
            conn_close(c, CLOSE_NONE);
            return false;
        }
        if (errno == EAGAIN || errno == EWOULDBLOCK) {
            c->c_readable = false;
            if (c->up.len == 0) {
                /* Nothing pending: an idle connection holds no buffer. */
                buf_detach(&w->bufs, &c->up);
                buf_detach(&w->bufs, &c->down);
            }
            return false;
        }
        if (errno == EINTR)
            continue;
        conn_close(c, CLOSE_CLIENT_ERROR);
        return false;
    }
}

/* Applies `deny dest` rules to the name's addresses (acl_eval_dest), all of them: a name
 * that points into a denied network is denied, whichever address would be tried. Returns
 * false when the request was answered instead. */
bool dest_allowed(struct conn *c, const struct dns_result *res)
{
    struct worker *w = c->w;
    if (!c->dest_pending)
        return true;
    /* Another request on this worker may have moved to a newer set meanwhile: then every
     * `deny dest` rule of that set applies. */
    struct acl_decision first = {
        .action = ACL_ALLOW,
        .rule_id = c->rec.rule_id,
        .order = c->acl_gen == w->acl_gen ? c->acl_order : UINT32_MAX,
    };
    struct acl_request ar = {
        .client = (const struct sockaddr *)&c->client_addr,
        .user = c->rec.user[0] ? c->rec.user : NULL,
        .clock = w->clock,
    };
    for (size_t i = 0; i < res->naddrs; i++) {
        struct acl_decision d;
        acl_eval_dest(w->acl, &ar, &first, (const struct sockaddr *)&res->addrs[i], &d);
        if (d.action == ACL_ALLOW)
            continue;
        c->rec.rule_id = d.rule_id;
        if (d.action == ACL_DENY) {
            reply_denied(c, d.reason, d.rule_id);
        } else {
            c->rec.decision = STORE_AUTH;
            c->why = CLOSE_AUTH_REQUIRED;
            reply_page(c, 407, "This address needs a proxy user name and password.",
                       c->upf.body == H1_BODY_NONE && !c->is_connect);
        }
        return false;
    }
    return true;
}

/* ---- between requests, and the end ---- */

void conn_next_request(struct conn *c)
{
    struct worker *w = c->w;
    memset(&c->upf, 0, sizeof(c->upf));
    memset(&c->downf, 0, sizeof(c->downf));
    c->phase = RELAY_HEAD;
    c->head_sent = c->request_head = c->websocket = c->is_connect = false;
    c->retrying = c->up_intact = false;
    c->up_sent = 0;
    c->origin_keep_alive = false;
    c->auth_known = false;
    tun_pipe_close(&c->dpipe);
    c->addr_next = 0;
    c->addrs.naddrs = 0;
    c->head_len = 0;
    c->dest_pending = false;
    buf_detach(&w->bufs, &c->down);
    c->state = c->up.len ? CONN_READ_HEAD : CONN_IDLE;
    conn_set_deadline(c, c->up.len ? w->tun.header_timeout_ms : w->tun.idle_timeout_ms);
}

void conn_linger(struct conn *c)
{
    shutdown(c->cfd, SHUT_WR);
    c->state = CONN_LINGER;
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

void conn_run(struct conn *c)
{
    for (int rounds = 0;; rounds++) {
        if (rounds == 64) {
            /* Fair to the other connections: go on after this iteration's events. No new
             * edge would come for bytes we already know about. */
            if (!c->rerun_queued && ev_defer(c->w->loop, conn_rerun, c) == 0)
                c->rerun_queued = true;
            return;
        }
        bool progress = false;
        switch (c->state) {
        case CONN_IDLE:
        case CONN_READ_HEAD:
            progress = step_read_head(c);
            break;
        case CONN_AUTH:
            break;
        case CONN_RESOLVE:
            /* Every outcome of a lookup leaves this state, so no query means none started. */
            if (!c->dnsq) {
                origin_resolve(c);
                progress = c->state != CONN_RESOLVE;
            }
            break;
        case CONN_CONNECT:
            break;
        case CONN_RELAY:
            progress = relay_step(c);
            break;
        case CONN_TUNNEL:
            progress = tun_step(c);
            break;
        case CONN_REPLY:
            progress = reply_step(c);
            break;
        case CONN_LINGER:
            progress = step_linger(c);
            break;
        case CONN_CLOSED:
        case CONN_STATE_COUNT:
            return;
        }
        if (!progress)
            break;
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

/* ---- birth, death, timeouts ---- */

static void free_conn(struct ev_loop *loop, void *arg)
{
    struct conn *c = arg;
    struct worker *w = c->w;
    c->next = w->free_conns;
    w->free_conns = c;
}

void conn_close(struct conn *c, enum conn_close why)
{
    struct worker *w = c->w;
    if (c->state == CONN_CLOSED)
        return;
    if (why != CLOSE_NONE && c->why == CLOSE_NONE)
        c->why = why;
    request_record_finish(c);
    atomic_fetch_add_explicit(&w->stats.closes[c->why], 1, memory_order_relaxed);
    if (c->dnsq) {
        dns_cancel(c->dnsq);
        c->dnsq = NULL;
    }
    if (c->authq) {
        auth_cancel(c->authq);
        c->authq = NULL;
    }
    if (c->counted_tunnel)
        atomic_fetch_sub_explicit(&w->stats.tunnels_active, 1, memory_order_relaxed);
    origin_close(c);
    tun_pipe_close(&c->dpipe);
    tun_pipe_close(&c->upipe);
    ev_io_del(w->loop, c->cfd);
    close(c->cfd);
    c->cfd = -1;
    if (c->client_counted)
        client_limit_release(w->shared->clients, (const struct sockaddr *)&c->client_addr);
    c->client_counted = false;
    buf_detach(&w->bufs, &c->up);
    buf_detach(&w->bufs, &c->down);
    c->state = CONN_CLOSED;
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
    if (c) {
        w->free_conns = c->next;
    } else {
        c = malloc(sizeof(*c));
        if (!c) {
            close(fd);
            if (counted)
                client_limit_release(w->shared->clients, (const struct sockaddr *)addr);
            return -1;
        }
    }
    memset(c, 0, offsetof(struct conn, rec));
    c->rec.time_ms = 0; /* the record itself is cleared when a request starts */
    c->why = CLOSE_NONE;
    c->w = w;
    c->listener = l;
    c->cfd = fd;
    c->ofd = -1;
    c->client_addr = *addr;
    c->client_counted = counted;
    c->state = CONN_IDLE;
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
    conn_run(c);
    return 0;
}

void conn_check_timeout(struct conn *c, int64_t now_ms)
{
    if (c->state == CONN_CLOSED || now_ms < c->deadline_ms)
        return;
    switch (c->state) {
    case CONN_IDLE:
        conn_close(c, CLOSE_IDLE_TIMEOUT);
        return;
    case CONN_READ_HEAD:
        if (c->up.len == 0) {
            conn_close(c, CLOSE_IDLE_TIMEOUT);
            return;
        }
        start_request_record(c);
        copy_field(c->rec.method, sizeof(c->rec.method), "-", 1);
        c->why = CLOSE_CLIENT_TIMEOUT;
        reply_page(c, 408, "The request took too long to arrive.", false);
        break;
    case CONN_AUTH:
        auth_cancel(c->authq);
        c->authq = NULL;
        c->why = CLOSE_OVERLOAD;
        reply_page(c, 503, "The proxy could not check the password in time.", false);
        break;
    case CONN_RESOLVE:
        if (c->dnsq) {
            dns_cancel(c->dnsq);
            c->dnsq = NULL;
        }
        c->why = CLOSE_DNS_TIMEOUT;
        reply_page(c, 504, "The web site's name could not be resolved in time.", false);
        break;
    case CONN_CONNECT:
        c->why = CLOSE_CONNECT_TIMEOUT;
        reply_page(c, 504, "The web site's server did not accept a connection in time.", false);
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
