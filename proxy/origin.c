/* origin: target refusal, resolve and connect, and idle origin connections (kept by their
 * client, or pooled for any client of the worker). Worker thread, except the pure functions
 * (refusal, pool) that origin.h marks. */
#include "proxy/origin.h"
#include "tls/client.h"

#include <errno.h>
#include <stdio.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <arpa/inet.h>

#include "acl/acl_rule.h"
#include "base/addr.h"
#include "base/status.h"
#include "proxy/conn.h"
#include "proxy/log.h"
#include "proxy/portfwd.h"
#include "proxy/reply.h"
#include "proxy/request.h"
#include "proxy/tunnel.h"
#include "proxy/worker.h"

/* ---- target refusal ---- */

struct origin_guard origin_guard_of(const struct worker *w)
{
    return (struct origin_guard){
        .local_addrs = w->shared->local_addrs,
        .nlocal_addrs = w->shared->nlocal_addrs,
        .own_ports = w->own_ports,
        .nown_ports = w->nown_ports,
        .claimed_ports = w->shared->forwards ? w->shared->forwards->claimed_ports : NULL,
        .nclaimed_ports = w->shared->forwards ? PORTFWD_MAX : 0,
        .allow_loopback = w->tun.allow_loopback_targets,
    };
}

static bool addr_is_local(const struct origin_guard *g, const struct sockaddr_storage *ss)
{
    for (size_t i = 0; i < g->nlocal_addrs; i++)
        if (addr_same(&g->local_addrs[i], ss, false))
            return true;
    return false;
}

const char *origin_target_refusal(const struct origin_guard *g, const struct sockaddr_storage *ss)
{
    uint16_t port;
    bool loopback = false, linklocal = false, unspec = false, multicast = false;
    if (ss->ss_family == AF_INET) {
        const struct sockaddr_in *s4 = (const void *)ss;
        uint32_t a = ntohl(s4->sin_addr.s_addr);
        port = ntohs(s4->sin_port);
        loopback = (a >> 24) == 127;
        linklocal = (a >> 16) == 0xa9fe;
        unspec = (a >> 24) == 0;
        multicast = (a >> 28) >= 0xe;
    } else {
        const struct sockaddr_in6 *s6 = (const void *)ss;
        const uint8_t *b = s6->sin6_addr.s6_addr;
        port = ntohs(s6->sin6_port);
        uint8_t embedded[16];
        if (IN6_IS_ADDR_V4MAPPED(&s6->sin6_addr) || acl_addr_embedded_v4(b, embedded)) {
            /* A translator (NAT64, 6to4) delivers these to the IPv4 address inside, so that
             * address must pass too; a mapped address is nothing but its IPv4 address. */
            struct sockaddr_storage v4 = {0};
            struct sockaddr_in *s4 = (struct sockaddr_in *)&v4;
            s4->sin_family = AF_INET;
            s4->sin_port = s6->sin6_port;
            memcpy(&s4->sin_addr, IN6_IS_ADDR_V4MAPPED(&s6->sin6_addr) ? b + 12 : embedded + 12, 4);
            const char *why = origin_target_refusal(g, &v4);
            if (why || IN6_IS_ADDR_V4MAPPED(&s6->sin6_addr))
                return why;
        }
        loopback = IN6_IS_ADDR_LOOPBACK(&s6->sin6_addr);
        linklocal = IN6_IS_ADDR_LINKLOCAL(&s6->sin6_addr);
        unspec = IN6_IS_ADDR_UNSPECIFIED(&s6->sin6_addr);
        multicast = IN6_IS_ADDR_MULTICAST(&s6->sin6_addr);
    }
    if (linklocal)
        return "link-local target address";
    if (unspec || multicast)
        return "invalid target address";
    bool local = loopback || addr_is_local(g, ss);
    if (!local)
        return NULL;
    for (size_t i = 0; i < g->nown_ports; i++)
        if (g->own_ports[i] == port)
            return "target is the proxy itself";
    for (size_t i = 0; i < g->nclaimed_ports; i++)
        if (atomic_load_explicit(&g->claimed_ports[i], memory_order_acquire) == port)
            return "target is the proxy itself";
    if (!g->allow_loopback)
        return loopback ? "loopback target address" : "target is this machine";
    return NULL;
}

/* ---- the pool ---- */

bool origin_pool_put(struct origin_pool *p, int fd, const struct sockaddr_storage *addr,
                     int64_t now_ms)
{
    if (p->n >= ORIGIN_POOL_MAX)
        return false;
    p->idle[p->n++] = (struct origin_idle){.addr = *addr, .fd = fd, .since_ms = now_ms};
    return true;
}

int origin_pool_take(struct origin_pool *p, const struct sockaddr_storage *addr)
{
    for (size_t i = p->n; i-- > 0;) {
        if (!addr_same(&p->idle[i].addr, addr, true))
            continue;
        int fd = p->idle[i].fd;
        p->idle[i] = p->idle[--p->n];
        return fd;
    }
    return -1;
}

size_t origin_pool_expire(struct origin_pool *p, int64_t now_ms, int64_t max_idle_ms)
{
    size_t closed = 0;
    for (size_t i = 0; i < p->n;) {
        if (now_ms - p->idle[i].since_ms > max_idle_ms) {
            close(p->idle[i].fd);
            p->idle[i] = p->idle[--p->n];
            closed++;
        } else {
            i++;
        }
    }
    return closed;
}

void origin_pool_clear(struct origin_pool *p)
{
    for (size_t i = 0; i < p->n; i++)
        close(p->idle[i].fd);
    p->n = 0;
}

/* Takes a pooled connection to addr that the origin has not closed meanwhile. */
static int take_live(struct origin_pool *p, const struct sockaddr_storage *addr)
{
    int fd;
    while ((fd = origin_pool_take(p, addr)) >= 0) {
        char probe;
        ssize_t n = recv(fd, &probe, 1, MSG_PEEK | MSG_DONTWAIT);
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return fd;
        close(fd); /* closed by the origin, or it sent something unasked */
    }
    return -1;
}

/* ---- a connection's origin socket ---- */

void origin_close(struct conn *c)
{
    if (c->ofd < 0)
        return;
    tls_session_end(&c->otls);
    if (!c->origin_in_use)
        c->w->nattached--;
    ev_io_del(c->w->loop, c->ofd);
    close(c->ofd);
    c->ofd = -1;
    c->origin_in_use = false;
    c->o_hup = false;
}

/* Puts a healthy origin connection in the worker's pool, for any client's next request to the
 * same address; closes it otherwise. */
static void release(struct conn *c, bool healthy)
{
    struct worker *w = c->w;
    if (c->ofd < 0)
        return;
    /* A connection made from a client's address is that client's only; one that speaks TLS
     * for an inspected tunnel is the tunnel's. */
    if (!healthy || c->origin_as_client || conn_origin_tls(c) ||
        atomic_load_explicit(&w->draining, memory_order_relaxed)) {
        origin_close(c);
        return;
    }
    int fd = c->ofd;
    if (!origin_pool_put(&w->origins, fd, &c->origin_addr, ev_now_ms(w->loop))) {
        origin_close(c);
        return;
    }
    if (!c->origin_in_use)
        w->nattached--;
    ev_io_del(w->loop, fd);
    c->ofd = -1;
    c->origin_in_use = false;
}

/* A TLS origin at rest may still have sent records that carry no data (TLS 1.3 session
 * tickets): they are read now, so that the origin socket shows readable later only when the
 * origin speaks unasked or closes. False when it did either already. */
static bool tls_origin_at_rest(struct conn *c)
{
    char sink[64];
    ssize_t n = tls_session_recv(&c->otls, sink, sizeof(sink), &c->o_readable, &c->o_writable);
    return n == PX_AGAIN;
}

void origin_finish(struct conn *c, bool healthy)
{
    struct worker *w = c->w;
    if (healthy && conn_origin_tls(c))
        healthy = tls_origin_at_rest(c);
    if (healthy && c->client_keep_alive && w->nattached < WORKER_MAX_ATTACHED &&
        !atomic_load_explicit(&w->draining, memory_order_relaxed)) {
        /* The same client most likely asks the same origin next: keep it at hand. */
        c->origin_in_use = false;
        w->nattached++;
        return;
    }
    release(c, healthy);
}

void origin_format_addr(const struct sockaddr_storage *ss, char *out, size_t cap)
{
    if (cap == 0)
        return;
    if (ss->ss_family == AF_INET) {
        /* every request that connects comes here: no printf (docs/performance.md) */
        const struct sockaddr_in *a = (const struct sockaddr_in *)ss;
        char text[sizeof("255.255.255.255:65535")], digits[5];
        size_t n = addr_ipv4_text((const uint8_t *)&a->sin_addr, text), k = 0;
        for (unsigned port = ntohs(a->sin_port); k == 0 || port > 0; port /= 10)
            digits[k++] = (char)('0' + port % 10);
        text[n++] = ':';
        while (k > 0)
            text[n++] = digits[--k];
        n = n < cap ? n : cap - 1;
        memcpy(out, text, n);
        out[n] = '\0';
    } else {
        char ip[INET6_ADDRSTRLEN];
        const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)ss;
        inet_ntop(AF_INET6, &a->sin6_addr, ip, sizeof(ip));
        snprintf(out, cap, "[%s]:%u", ip, ntohs(a->sin6_port));
    }
}

/* The request goes up: CONN_RELAY. */
static void relay_begin(struct conn *c)
{
    conn_set_state(c, CONN_RELAY);
    conn_set_deadline(c, c->w->tun.origin_timeout_ms);
}

/* ofd is connected: the request goes up, or the tunnel opens. */
static void connected(struct conn *c)
{
    struct worker *w = c->w;
    c->origin_in_use = true;
    origin_format_addr(&c->origin_addr, c->req->rec.dest, sizeof(c->req->rec.dest));
    if (buf_attach(&w->bufs, &c->down) < 0) {
        conn_close(c, CLOSE_OVERLOAD);
        return;
    }
    if (c->inspect && (c->is_connect || c->tls_alert)) {
        tun_inspect_start(c);
        return;
    }
    if (c->inspecting && !conn_origin_tls(c)) {
        if (tls_client_start(&c->otls, w->shared->trust, c->tunnel_host.text, "http/1.1", c->ofd) !=
            PX_OK) {
            reply_error(c, CLOSE_OVERLOAD, 503,
                        "The proxy is short of resources right now; please try again.", false);
            return;
        }
        conn_set_state(c, CONN_ORIGIN_TLS);
        conn_set_deadline(c, w->tun.connect_timeout_ms);
        return;
    }
    /* A tls-target forward speaks TLS to its target before any client byte goes up. */
    const char *fwd_name = c->is_forward ? portfwd_tls_name(c) : NULL;
    if (fwd_name && !conn_origin_tls(c)) {
        if (tls_client_start(&c->otls, w->shared->trust, fwd_name, NULL, c->ofd) != PX_OK) {
            conn_close(c, CLOSE_OVERLOAD);
            return;
        }
        conn_set_state(c, CONN_ORIGIN_TLS);
        conn_set_deadline(c, w->tun.connect_timeout_ms);
        return;
    }
    if (c->is_connect || c->is_forward) {
        if (c->is_connect)
            reply_established(c);
        /* An intercepted connection judged by its destination alone may still begin with a
         * ClientHello: its name is judged when it comes. */
        tun_start(c, c->is_connect || (c->intercepted && !c->tls_alert));
        return;
    }
    relay_begin(c);
}

bool origin_step_tls(struct conn *c)
{
    char why[160];
    bool verify_failed;
    const char *fwd_name = c->is_forward ? portfwd_tls_name(c) : NULL;
    int r = tls_client_handshake(&c->otls, fwd_name ? fwd_name : c->tunnel_host.text,
                                 &c->o_readable, &c->o_writable, why, sizeof(why), &verify_failed);
    if (r == PX_AGAIN)
        return false;
    if (r == PX_OK) {
        /* Records the origin's last flight may have brought wait in GnuTLS. */
        c->o_readable = true;
        if (fwd_name)
            tun_start(c, false);
        else
            relay_begin(c);
        return true;
    }
    if (fwd_name) {
        /* A forward's client gets no page: its connection closes, the row says why (a
         * certificate that fails is a denial, as for an inspected site). */
        origin_close(c);
        if (verify_failed)
            c->req->rec.decision = STORE_DENY;
        request_record_outcome(c, verify_failed ? CLOSE_DENIED : CLOSE_ORIGIN_ERROR, why);
        conn_close(c, CLOSE_NONE);
        return true;
    }
    if (!verify_failed) {
        origin_close(c);
        reply_error(c, CLOSE_ORIGIN_ERROR, 502, why, false);
        return true;
    }
    /* Never a silent pass: the user is told why, and the row is a denial with the reason. */
    origin_close(c);
    c->req->rec.decision = STORE_DENY;
    request_record_outcome(c, CLOSE_DENIED, why);
    char reason[256];
    snprintf(reason, sizeof(reason), "the web site's certificate cannot be trusted: %s", why);
    reply_blocked(c, 0, reason, false, false);
    return true;
}

/* May the request go out on a connection another client left in the pool? Such a connection
 * may turn out closed by the origin once the request is on its way (origin_lost in relay.c).
 * We then repeat an idempotent request ourselves and leave any other to the client, which
 * repeats only what it sent on a connection it had used before (so browsers do, and HAProxy's
 * "http-reuse safe" relies on it). A first request we could not repeat gets a connection of
 * its own, so that it never fails for a reason the client cannot recover from. An intercepted
 * request goes to its original destination, which is what the pool is keyed by; only TPROXY's
 * must speak from its client's address, which no pooled connection has. */
static bool may_take_kept_origin(const struct conn *c)
{
    bool as_client = c->intercepted && c->listener->kind == LISTENER_TPROXY;
    return !c->is_connect && !c->is_forward && !c->retrying && !as_client && !c->inspecting &&
           (c->requests > 1 || c->idempotent);
}

/* What became of one address tried by origin_connect. */
enum attempt {
    ATTEMPT_DONE, /* c moved on: connected, connecting, or answered */
    ATTEMPT_NONE, /* no idle connection to reuse: open a new one */
    ATTEMPT_NEXT, /* this address failed: try the next */
    ATTEMPT_STOP, /* try no more addresses: 502 */
    ATTEMPT_COUNT
};

/* Uses an idle connection to ss: the one c keeps, or one from the pool. */
static enum attempt reuse(struct conn *c, const struct sockaddr_storage *ss)
{
    struct worker *w = c->w;
    /* A tunnel gets a fresh connection: an HTTP keep-alive one is not its to take. */
    if (c->ofd >= 0 && !c->origin_in_use) {
        if (!c->is_connect && !c->is_forward && !c->o_readable &&
            addr_same(&c->origin_addr, ss, true)) {
            w->nattached--;
            c->origin_reused = true;
            connected(c);
            return ATTEMPT_DONE;
        }
        release(c, !c->o_readable);
    }
    int fd = may_take_kept_origin(c) ? take_live(&w->origins, ss) : -1;
    if (fd < 0)
        return ATTEMPT_NONE;
    c->ofd = fd;
    c->origin_addr = *ss;
    c->origin_in_use = true;
    c->origin_reused = true;
    c->o_readable = c->o_hup = false;
    c->o_writable = true;
    if (conn_watch_origin(c, fd) < 0) {
        origin_close(c);
        return ATTEMPT_NEXT;
    }
    connected(c);
    return ATTEMPT_DONE;
}

/* TPROXY: the origin sees the client's address, not proxyd's (the gateway routes its answers
 * back here). Returns whether fd is bound so; if the kernel refuses, it goes from ours. */
static bool bind_as_client(const struct conn *c, int fd, socklen_t len)
{
    int one = 1;
    struct sockaddr_storage from = c->client_addr;
    if (from.ss_family == AF_INET) {
        ((struct sockaddr_in *)&from)->sin_port = 0;
        if (setsockopt(fd, SOL_IP, IP_TRANSPARENT, &one, sizeof(one)) < 0)
            return false;
    } else {
        ((struct sockaddr_in6 *)&from)->sin6_port = 0;
        if (setsockopt(fd, SOL_IPV6, IPV6_TRANSPARENT, &one, sizeof(one)) < 0)
            return false;
    }
    return bind(fd, (const struct sockaddr *)&from, len) == 0;
}

/* Opens a new connection to ss. */
static enum attempt connect_new(struct conn *c, const struct sockaddr_storage *ss)
{
    struct worker *w = c->w;
    int fd = socket(ss->ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, IPPROTO_TCP);
    if (fd < 0) {
        /* Out of descriptors (or memory): every request fails alike until some free up. */
        static struct log_ratelimit socket_rl = LOG_RATELIMIT_INIT(10000, 1);
        log_warn_limited(&socket_rl, "while connecting to %s: socket", c->req->rec.host);
        reply_error(c, CLOSE_OVERLOAD, 503,
                    "The proxy is short of resources right now; please try again.",
                    c->upf.body == H1_BODY_NONE);
        return ATTEMPT_DONE;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    socklen_t len =
        ss->ss_family == AF_INET ? sizeof(struct sockaddr_in) : sizeof(struct sockaddr_in6);
    c->origin_as_client = c->intercepted && c->listener->kind == LISTENER_TPROXY &&
                          ss->ss_family == c->client_addr.ss_family && bind_as_client(c, fd, len);
    c->ofd = fd;
    c->origin_addr = *ss;
    c->origin_in_use = true;
    c->origin_reused = false;
    c->o_readable = c->o_writable = c->o_hup = false;
    if (conn_watch_origin(c, fd) < 0) {
        origin_close(c);
        return ATTEMPT_STOP;
    }
    if (connect(fd, (const struct sockaddr *)ss, len) == 0) {
        c->o_writable = true;
        connected(c);
        return ATTEMPT_DONE;
    }
    if (errno == EINPROGRESS) {
        conn_set_state(c, CONN_CONNECT);
        conn_set_deadline(c, w->tun.connect_timeout_ms);
        return ATTEMPT_DONE;
    }
    origin_close(c);
    return ATTEMPT_NEXT;
}

void origin_connect(struct conn *c)
{
    while (c->addr_next < c->req->addrs.naddrs) {
        const struct sockaddr_storage *ss = &c->req->addrs.addrs[c->addr_next++];
        enum attempt a = reuse(c, ss);
        if (a == ATTEMPT_NONE)
            a = connect_new(c, ss);
        if (a == ATTEMPT_DONE)
            return;
        if (a == ATTEMPT_STOP)
            break;
    }
    reply_error(c, CLOSE_CONNECT_FAILED, 502,
                "The proxy could not connect to the web site's server.",
                c->upf.body == H1_BODY_NONE);
}

void origin_connect_done(struct conn *c)
{
    int err = 0;
    socklen_t len = sizeof(err);
    if (getsockopt(c->ofd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
        err = errno;
    if (err == 0) {
        c->o_writable = true;
        connected(c);
        return;
    }
    origin_close(c);
    origin_connect(c);
}

/* ---- resolve ---- */

/* Whether res holds the address (not the port) of ss. */
static bool holds_address(const struct dns_result *res, const struct sockaddr_storage *ss)
{
    for (size_t i = 0; i < res->naddrs; i++)
        if (addr_same(&res->addrs[i], ss, false))
            return true;
    return false;
}

/* An intercepted request goes to its original destination only. With --intercept-host-strict
 * the name it gave (Host, or the TLS server name) was looked up first, and a name that does
 * not name that address is refused (a client cannot borrow an allowed name for another
 * server): an HTTP request with a 409, a TLS connection with an access_denied alert. Returns
 * false when answered. */
static bool intercepted_addrs(struct conn *c, const struct dns_result *res)
{
    if (res && !(res->status == DNS_OK && holds_address(res, &c->orig_dst))) {
        c->req->rec.decision = STORE_DENY;
        request_record_outcome(c, CLOSE_DENIED, "host-mismatch");
        if (c->tls_alert)
            tun_tls_alert(c, TLS_ALERT_ACCESS_DENIED);
        else
            reply_error(c, CLOSE_DENIED, 409,
                        "The web site named in this request is not the server it was sent to.",
                        false);
        return false;
    }
    memset(&c->req->addrs, 0, sizeof(c->req->addrs));
    c->req->addrs.status = DNS_OK;
    c->req->addrs.naddrs = 1;
    c->req->addrs.addrs[0] = c->orig_dst;
    return true;
}

static void use_resolved(struct conn *c, const struct dns_result *res)
{
    if (c->inspecting) {
        /* A request inside an inspected tunnel goes where the tunnel went. */
        memset(&c->req->addrs, 0, sizeof(c->req->addrs));
        c->req->addrs.status = DNS_OK;
        c->req->addrs.naddrs = 1;
        c->req->addrs.addrs[0] = c->tunnel_addr;
        res = &c->req->addrs;
    } else if (c->intercepted) {
        if (!intercepted_addrs(c, res))
            return;
        res = &c->req->addrs;
    }
    if (res->status != DNS_OK) {
        STAT_ADD(c, dns_failures, 1);
        enum conn_close why = res->status == DNS_NXDOMAIN  ? CLOSE_DNS_NXDOMAIN
                              : res->status == DNS_TIMEOUT ? CLOSE_DNS_TIMEOUT
                                                           : CLOSE_DNS_FAILED;
        reply_error(c, why, 502,
                    res->status == DNS_NXDOMAIN ? "The web site's name does not exist."
                                                : "The web site's name could not be resolved.",
                    c->upf.body == H1_BODY_NONE);
        return;
    }
    if (res != &c->req->addrs)
        c->req->addrs = *res;
    c->addr_next = 0;
    struct request_decision d;
    if (request_decide_addrs(c, &d) != VERDICT_ALLOW) {
        request_refuse(c, &d);
        return;
    }
    origin_connect(c);
}

static void on_resolved(void *arg, const struct dns_result *res)
{
    struct conn *c = arg;
    c->dnsq = NULL;
    STAT_OBSERVE(c, dns_lookup, c->dns_start_ns);
    use_resolved(c, res);
    conn_run(c);
}

/* Whether an intercepted connection's name is looked up to check it against where the
 * connection goes: with --intercept-host-strict, an HTTP request's Host and a TLS server name;
 * never a connection that names nothing (TLS without a server name, other bytes), whose host
 * is its destination's address. */
static bool intercepted_name_checked(const struct conn *c)
{
    return c->w->tun.intercept_host_strict && (!c->is_forward || c->req->rec.sni[0] != '\0');
}

void origin_resolve(struct conn *c)
{
    struct worker *w = c->w;
    if (c->inspecting || (c->intercepted && !intercepted_name_checked(c))) {
        use_resolved(c, NULL);
        return;
    }
    STAT_ADD(c, dns_lookups, 1);
    c->dns_start_ns = clock_mono_ns();
    int r =
        dns_resolve(w->dns, &c->host, c->req->rec.port, on_resolved, c, &c->dnsq, &c->req->addrs);
    if (r == PX_OK) {
        use_resolved(c, &c->req->addrs);
    } else if (r == PX_ERR) {
        STAT_ADD(c, dns_failures, 1);
        reply_error(c, CLOSE_DNS_FAILED, 502, "The web site's name could not be resolved.", false);
    }
}
