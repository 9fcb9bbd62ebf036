/* listener: binding, the accept loop and admission (see listener.h). */
#include "proxy/listener.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "base/addr.h"
#include "base/status.h"
#include "proxy/client_limit.h"
#include "proxy/conn.h"
#include "proxy/log.h"
#include "proxy/portfwd.h"
#include "proxy/worker.h"

#define ACCEPT_BATCH 64
/* Connections refused in one go when out of descriptors; more wait for the next event. */
#define SHED_BATCH 256

static const char *const kind_names[LISTENER_KIND_COUNT] = {
#define X(e, name, setting) name,
    LISTENER_KIND_TABLE
#undef X
};

const char *listener_kind_str(enum listener_kind kind)
{
    return (unsigned)kind < LISTENER_KIND_COUNT ? kind_names[kind] : "?";
}

static const char *const refuse_names[REFUSE_COUNT] = {
#define X(e, s) s,
    LISTENER_REFUSE_TABLE
#undef X
};

const char *listener_refuse_str(enum listener_refuse why)
{
    return (unsigned)why < REFUSE_COUNT ? refuse_names[why] : "?";
}

/* ---- binding ---- */

int listener_probe(const char *text, char *err, size_t errlen)
{
    struct sockaddr_storage ss;
    socklen_t len;
    if (addr_parse(text, 0, &ss, &len) != PX_OK) {
        snprintf(err, errlen, "listen address '%s': expected IP:PORT or [IPv6]:PORT", text);
        return -1;
    }
    int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        snprintf(err, errlen, "listen %s: socket: %s", text, strerror(errno));
        return -1;
    }
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (ss.ss_family == AF_INET6)
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
    int rc = bind(fd, (struct sockaddr *)&ss, len);
    int saved = errno;
    close(fd);
    if (rc < 0) {
        snprintf(err, errlen, "listen %s: %s%s", text, strerror(saved),
                 saved == EADDRINUSE ? " (is another proxyd or proxy running?)" : "");
        return -1;
    }
    return 0;
}

int listener_open(struct listener *l, enum listener_kind kind, const char *text, char *err,
                  size_t errlen)
{
    socklen_t len;
    memset(l, 0, sizeof(*l));
    l->fd = -1;
    l->kind = kind;
    l->address = text;
    if (addr_parse(text, 0, &l->addr, &len) != PX_OK) {
        snprintf(err, errlen, "listen address '%s': expected IP:PORT or [IPv6]:PORT", text);
        return -1;
    }
    int fd = socket(l->addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        snprintf(err, errlen, "listen %s: socket: %s", text, strerror(errno));
        return -1;
    }
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one));
    /* TPROXY hands over connections bound for other addresses: only a transparent socket
     * may accept them. */
    if (kind == LISTENER_TPROXY &&
        (l->addr.ss_family == AF_INET
             ? setsockopt(fd, SOL_IP, IP_TRANSPARENT, &one, sizeof(one))
             : setsockopt(fd, SOL_IPV6, IPV6_TRANSPARENT, &one, sizeof(one))) < 0) {
        snprintf(err, errlen,
                 "tproxy %s: IP_TRANSPARENT: %s: --tproxy needs the capability CAP_NET_ADMIN "
                 "(start proxyd as root, or give it AmbientCapabilities=CAP_NET_ADMIN in its "
                 "systemd unit)",
                 text, strerror(errno));
        close(fd);
        return -1;
    }
    if (l->addr.ss_family == AF_INET6)
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
    if (bind(fd, (struct sockaddr *)&l->addr, len) < 0 || listen(fd, 4096) < 0) {
        snprintf(err, errlen, "listen %s: %s", text, strerror(errno));
        close(fd);
        return -1;
    }
    l->fd = fd;
    return 0;
}

/* ---- who may connect ---- */

static void on_accept(struct ev_loop *loop, int fd, unsigned events, void *arg);

/* Listener i of w, its own ones first and then its forwards'; NULL for a free forward slot
 * or past the end (i >= nlisten + PORTFWD_MAX). */
static struct listener *listener_at(struct worker *w, size_t i)
{
    if (i < w->nlisten)
        return &w->listeners[i];
    i -= w->nlisten;
    if (!w->fwd || i >= PORTFWD_MAX || w->fwd[i].id == 0)
        return NULL;
    return &w->fwd[i].l;
}

static void pause_accepting(struct worker *w)
{
    for (size_t i = 0; i < w->nlisten + PORTFWD_MAX; i++) {
        struct listener *l = listener_at(w, i);
        if (l && l->fd >= 0)
            ev_io_set(w->loop, l->fd, 0, on_accept, l);
    }
    w->accept_paused = true;
}

/* From the tick: accepting goes on once the reserve descriptor is held again. */
static void resume_accepting(struct worker *w)
{
    if (w->reserve_fd < 0)
        w->reserve_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (w->reserve_fd < 0)
        return;
    for (size_t i = 0; i < w->nlisten + PORTFWD_MAX; i++) {
        struct listener *l = listener_at(w, i);
        if (l && l->fd >= 0)
            ev_io_set(w->loop, l->fd, EV_READ, on_accept, l);
    }
    w->accept_paused = false;
}

/* Counted before the close: whoever sees the close and then asks /api/stats sees the count. */
static void refuse(struct worker *w, int fd, enum listener_refuse why)
{
    atomic_fetch_add_explicit(&w->stats.refused[why], 1, memory_order_relaxed);
    close(fd);
}

static const char *addr_str(const struct sockaddr_storage *ss, char *buf, size_t len)
{
    const void *a = ss->ss_family == AF_INET
                        ? (const void *)&((const struct sockaddr_in *)ss)->sin_addr
                        : (const void *)&((const struct sockaddr_in6 *)ss)->sin6_addr;
    if (!inet_ntop(ss->ss_family, a, buf, (socklen_t)len))
        snprintf(buf, len, "?");
    return buf;
}

/* Out of descriptors with connections waiting. The listener is level-triggered: left there,
 * they would be reported again at once, for ever (a busy loop). So the reserve descriptor,
 * held for this moment, is let go to accept each waiting connection and close it at once:
 * its client learns now instead of hanging, and the queue empties. When the reserve cannot be
 * taken back (another thread took the number) or accept fails otherwise, accepting pauses
 * until the next tick instead. */
static void shed_backlog(struct worker *w, int lfd)
{
    static struct log_ratelimit shed_rl = LOG_RATELIMIT_INIT(10000, 1);
    log_warn_limited(&shed_rl, "worker %u: accept: refusing new connections", w->index);
    for (int i = 0; i < SHED_BATCH; i++) {
        if (w->reserve_fd >= 0)
            close(w->reserve_fd);
        int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
        int saved = errno;
        if (fd >= 0)
            refuse(w, fd, REFUSE_NO_DESCRIPTORS);
        w->reserve_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
        if (fd < 0 && (saved == EAGAIN || saved == EWOULDBLOCK) && w->reserve_fd >= 0)
            return; /* the queue is empty */
        if (fd < 0 || w->reserve_fd < 0) {
            pause_accepting(w);
            return;
        }
    }
}

/* Whether fd, just accepted on l, may become a connection. Nothing has been read from it. */
static void admit(struct listener *l, int fd, const struct sockaddr_storage *ss)
{
    static struct log_ratelimit not_allowed_rl = LOG_RATELIMIT_INIT(10000, 1);
    static struct log_ratelimit per_client_rl = LOG_RATELIMIT_INIT(10000, 1);
    static struct log_ratelimit full_rl = LOG_RATELIMIT_INIT(10000, 1);
    struct worker *w = l->w;
    const struct sockaddr *sa = (const struct sockaddr *)ss;
    char who[INET6_ADDRSTRLEN];
    /* An open proxy is the first thing scanners look for: a client that no request of could
     * pass costs a close, not a buffer and a parse. */
    if (!acl_client_admitted(worker_acl_refresh(w), sa)) {
        log_info_limited(&not_allowed_rl, "client %s refused: not in the allowed networks",
                         addr_str(ss, who, sizeof(who)));
        refuse(w, fd, REFUSE_NOT_ALLOWED);
        return;
    }
    if (w->nconns >= w->tun.max_connections) {
        log_warnx_limited(&full_rl, "worker %u: max-connections (%u) reached: refusing", w->index,
                          w->tun.max_connections);
        refuse(w, fd, REFUSE_MAX_CONNECTIONS);
        return;
    }
    enum client_take t = client_limit_take(w->shared->clients, sa, w->tun.max_conns_per_client);
    if (t == CLIENT_OVER_LIMIT) {
        log_info_limited(&per_client_rl, "client %s refused: it holds max-conns-per-client (%u)",
                         addr_str(ss, who, sizeof(who)), w->tun.max_conns_per_client);
        refuse(w, fd, REFUSE_PER_CLIENT);
        return;
    }
    conn_accept(w, l, fd, ss, t == CLIENT_TAKEN);
}

static void on_accept(struct ev_loop *loop, int fd, unsigned events, void *arg)
{
    static struct log_ratelimit accept_rl = LOG_RATELIMIT_INIT(10000, 1);
    struct listener *l = arg;
    struct worker *w = l->w;
    for (int i = 0; i < ACCEPT_BATCH; i++) {
        struct sockaddr_storage ss;
        socklen_t len = sizeof(ss);
        int cfd = accept4(fd, (struct sockaddr *)&ss, &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (cfd >= 0) {
            admit(l, cfd, &ss);
            continue;
        }
        switch (errno) {
        case EAGAIN:
#if EWOULDBLOCK != EAGAIN
        case EWOULDBLOCK:
#endif
            return;
        case EINTR:
        case ECONNABORTED: /* that one is gone; others may wait */
        case EPROTO:
            continue;
        case EMFILE:
        case ENFILE:
            shed_backlog(w, fd);
            return;
        default:
            /* Out of memory, or worse: an error that stays would spin the listener. */
            log_warn_limited(&accept_rl, "worker %u: accept", w->index);
            pause_accepting(w);
            return;
        }
    }
}

/* ---- a worker's listeners ---- */

int listener_attach(struct worker *w, const struct listener *ls, size_t n, char *err, size_t errlen)
{
    w->reserve_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (w->reserve_fd < 0) {
        snprintf(err, errlen, "worker %u: /dev/null: %s", w->index, strerror(errno));
        return -1;
    }
    for (size_t i = 0; i < n && i < CONFIG_MAX_LISTENERS; i++) {
        struct listener *l = &w->listeners[w->nlisten++];
        *l = ls[i];
        l->w = w;
        if (ev_io_set(w->loop, l->fd, EV_READ, on_accept, l) < 0) {
            snprintf(err, errlen, "listen %s: epoll: %s", l->address, strerror(errno));
            return -1;
        }
    }
    return 0;
}

int listener_watch(struct worker *w, struct listener *l)
{
    l->w = w;
    /* Paused for want of descriptors, it waits like the others for the tick's resume. */
    return ev_io_set(w->loop, l->fd, w->accept_paused ? 0 : EV_READ, on_accept, l);
}

void listener_unwatch(struct listener *l)
{
    if (l->fd < 0)
        return;
    ev_io_del(l->w->loop, l->fd);
    close(l->fd);
    l->fd = -1;
}

void listener_close_all(struct worker *w)
{
    for (size_t i = 0; i < w->nlisten + PORTFWD_MAX; i++) {
        struct listener *l = listener_at(w, i);
        if (l && l->fd >= 0) {
            l->w = w;
            listener_unwatch(l);
        }
    }
}

void listener_tick(struct worker *w)
{
    if (w->accept_paused && !atomic_load(&w->draining))
        resume_accepting(w);
}

void listener_detach(struct worker *w)
{
    listener_close_all(w);
    if (w->reserve_fd >= 0)
        close(w->reserve_fd);
    w->reserve_fd = -1;
}
