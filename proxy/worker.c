/* worker: a thread, its loop, its listeners and the housekeeping tick (timeouts, the clock
 * the ACL reads, tunables and ACL refresh, idle origin expiry, draining), and who may connect:
 * a connection is closed unread when its client could get nothing, holds too many already,
 * or finds the worker full, and running out of descriptors never turns into a busy loop. */
#include "proxy/worker.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "base/addr.h"
#include "base/status.h"
#include "proxy/client_limit.h"
#include "proxy/conn.h"
#include "proxy/log.h"

#define TICK_MS 100
#define ORIGIN_IDLE_MS 15000
#define ACCEPT_BATCH 64
/* Connections refused in one go when out of descriptors; more wait for the next event. */
#define SHED_BATCH 256

static const char *const refuse_names[REFUSE_COUNT] = {
#define X(e, s) s,
    WORKER_REFUSE_TABLE
#undef X
};

const char *worker_refuse_str(enum worker_refuse why)
{
    return (unsigned)why < REFUSE_COUNT ? refuse_names[why] : "?";
}

int worker_listen_probe(const char *text, char *err, size_t errlen)
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

int worker_listen_open(const char *text, char *err, size_t errlen)
{
    struct sockaddr_storage ss;
    socklen_t len;
    if (addr_parse(text, 0, &ss, &len) != PX_OK) {
        snprintf(err, errlen, "listen address '%s': expected IP:PORT or [IPv6]:PORT", text);
        return -1;
    }
    int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        snprintf(err, errlen, "listen %s: socket: %s", text, strerror(errno));
        return -1;
    }
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one));
    if (ss.ss_family == AF_INET6)
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
    if (bind(fd, (struct sockaddr *)&ss, len) < 0 || listen(fd, 4096) < 0) {
        snprintf(err, errlen, "listen %s: %s", text, strerror(errno));
        close(fd);
        return -1;
    }
    return fd;
}

static void refresh_clock(struct worker *w)
{
    time_t now = time(NULL);
    struct tm tm;
    localtime_r(&now, &tm);
    w->clock.wday = tm.tm_wday;
    w->clock.minute = tm.tm_hour * 60 + tm.tm_min;
}

static void refresh_tunables(struct worker *w)
{
    uint64_t gen = atomic_load_explicit(&w->shared->tunables_gen, memory_order_acquire);
    if (gen == w->tun_gen)
        return;
    pthread_mutex_lock(&w->shared->tunables_lock);
    w->tun = w->shared->tunables;
    w->tun_gen = atomic_load(&w->shared->tunables_gen);
    pthread_mutex_unlock(&w->shared->tunables_lock);
}

static void close_listeners(struct worker *w)
{
    for (size_t i = 0; i < w->nlisten; i++) {
        if (w->listen_fds[i] < 0)
            continue;
        ev_io_del(w->loop, w->listen_fds[i]);
        close(w->listen_fds[i]);
        w->listen_fds[i] = -1;
    }
}

const struct acl_set *worker_acl_refresh(struct worker *w)
{
    if (!w->acl || acl_live_generation(w->shared->acl) != w->acl_gen) {
        if (w->acl)
            acl_live_release(w->shared->acl, w->acl);
        w->acl = acl_live_acquire(w->shared->acl, &w->acl_gen);
    }
    return w->acl;
}

static void on_accept(struct ev_loop *loop, int fd, unsigned events, void *arg);

/* ---- who may connect ---- */

static void pause_accepting(struct worker *w)
{
    for (size_t i = 0; i < w->nlisten; i++)
        if (w->listen_fds[i] >= 0)
            ev_io_set(w->loop, w->listen_fds[i], 0, on_accept, w);
    w->accept_paused = true;
}

/* From the tick: accepting goes on once the reserve descriptor is held again. */
static void resume_accepting(struct worker *w)
{
    if (w->reserve_fd < 0)
        w->reserve_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (w->reserve_fd < 0)
        return;
    for (size_t i = 0; i < w->nlisten; i++)
        if (w->listen_fds[i] >= 0)
            ev_io_set(w->loop, w->listen_fds[i], EV_READ, on_accept, w);
    w->accept_paused = false;
}

/* Counted before the close: whoever sees the close and then asks /api/stats sees the count. */
static void refuse(struct worker *w, int fd, enum worker_refuse why)
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

/* Whether fd, just accepted, may become a connection. Nothing has been read from it. */
static void admit(struct worker *w, int fd, const struct sockaddr_storage *ss)
{
    static struct log_ratelimit not_allowed_rl = LOG_RATELIMIT_INIT(10000, 1);
    static struct log_ratelimit per_client_rl = LOG_RATELIMIT_INIT(10000, 1);
    static struct log_ratelimit full_rl = LOG_RATELIMIT_INIT(10000, 1);
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
    conn_accept(w, fd, ss, t == CLIENT_TAKEN);
}

static void on_accept(struct ev_loop *loop, int fd, unsigned events, void *arg)
{
    static struct log_ratelimit accept_rl = LOG_RATELIMIT_INIT(10000, 1);
    struct worker *w = arg;
    for (int i = 0; i < ACCEPT_BATCH; i++) {
        struct sockaddr_storage ss;
        socklen_t len = sizeof(ss);
        int cfd = accept4(fd, (struct sockaddr *)&ss, &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (cfd >= 0) {
            admit(w, cfd, &ss);
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

static void on_tick(struct ev_loop *loop, void *arg)
{
    struct worker *w = arg;
    int64_t now = ev_now_ms(loop);
    refresh_clock(w);
    refresh_tunables(w);
    dns_resolver_tick(w->dns);
    /* Let go of an old rule set even when no request comes to refresh it. */
    if (w->acl)
        worker_acl_refresh(w);
    if (w->accept_paused && !atomic_load(&w->draining))
        resume_accepting(w);
    for (size_t i = 0; i < w->norigins;) {
        if (now - w->origins[i].since_ms > ORIGIN_IDLE_MS) {
            close(w->origins[i].fd);
            w->origins[i] = w->origins[--w->norigins];
        } else {
            i++;
        }
    }
    bool draining = atomic_load(&w->draining);
    if (draining && w->nlisten && w->listen_fds[0] >= 0) {
        close_listeners(w);
        w->drain_deadline_ms = now + w->drain_grace_ms;
    }
    struct conn *next;
    for (struct conn *c = w->active; c; c = next) {
        next = c->next;
        if (draining && (c->state == CONN_IDLE || now >= w->drain_deadline_ms))
            conn_abort(c, CLOSE_SHUTDOWN);
        else
            conn_check_timeout(c, now);
    }
    if (draining && w->nconns == 0)
        ev_stop(loop);
}

/* A wake (new settings, a drain, an answer posted by another thread) needs no sweep: the
 * posted calls have run already, and timeouts and the drain are the tick's, 100 ms at most. */
static void on_wake(struct ev_loop *loop, void *arg)
{
    refresh_tunables(arg);
}

int worker_init(struct worker *w, unsigned index, struct proxy_shared *shared,
                const struct px_config *cfg, const int *listen_fds, char *err, size_t errlen)
{
    memset(w, 0, sizeof(*w));
    w->index = index;
    w->shared = shared;
    w->reserve_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (w->reserve_fd < 0) {
        snprintf(err, errlen, "worker %u: /dev/null: %s", index, strerror(errno));
        return -1;
    }
    for (size_t i = 0; i < CONFIG_MAX_LISTEN; i++)
        w->listen_fds[i] = -1;
    pthread_mutex_lock(&shared->tunables_lock);
    w->tun = shared->tunables;
    w->tun_gen = atomic_load(&shared->tunables_gen);
    pthread_mutex_unlock(&shared->tunables_lock);

    /* Any descriptor number the process may get is one the loop may have to watch. */
    w->loop = ev_loop_new(shared->fd_limit);
    if (!w->loop) {
        snprintf(err, errlen, "worker %u: event loop: %s", index, strerror(errno));
        return -1;
    }
    if (buf_pool_init(&w->bufs, 256) < 0) {
        snprintf(err, errlen, "worker %u: out of memory", index);
        return -1;
    }
    w->acl_scratch = acl_scratch_new();
    if (!w->acl_scratch) {
        snprintf(err, errlen, "worker %u: out of memory", index);
        return -1;
    }
    w->dns = dns_resolver_new(w->loop, shared->dns_cache, shared->dns_servers, shared->ndns_servers,
                              shared->dns_timeout_ms, err, errlen);
    if (!w->dns)
        return -1;
    for (size_t i = 0; i < cfg->nlisten; i++) {
        int fd = listen_fds[i];
        w->listen_fds[w->nlisten++] = fd;
        if (ev_io_set(w->loop, fd, EV_READ, on_accept, w) < 0) {
            snprintf(err, errlen, "listen %s: epoll: %s", cfg->listen[i], strerror(errno));
            return -1;
        }
    }
    refresh_clock(w);
    ev_tick_set(w->loop, TICK_MS, on_tick, w);
    ev_wake_set(w->loop, on_wake, w);
    w->acl = acl_live_acquire(shared->acl, &w->acl_gen);
    return 0;
}

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    if (ev_run(w->loop) < 0)
        log_warn("worker %u: event loop stopped", w->index);
    return NULL;
}

int worker_start(struct worker *w)
{
    return pthread_create(&w->thread, NULL, worker_main, w) == 0 ? 0 : -1;
}

void worker_drain(struct worker *w, int grace_ms)
{
    /* The tick turns the grace period into a deadline on the worker's own clock. */
    w->drain_grace_ms = grace_ms;
    atomic_store(&w->draining, true);
    ev_wake(w->loop);
}

void worker_notify(struct worker *w)
{
    ev_wake(w->loop);
}

void worker_join(struct worker *w)
{
    pthread_join(w->thread, NULL);
}

void worker_destroy(struct worker *w)
{
    if (w->loop) {
        struct conn *next;
        for (struct conn *c = w->active; c; c = next) {
            next = c->next;
            conn_abort(c, CLOSE_SHUTDOWN);
        }
        ev_flush_deferred(w->loop);
    }
    close_listeners(w);
    if (w->reserve_fd >= 0)
        close(w->reserve_fd);
    w->reserve_fd = -1;
    for (size_t i = 0; i < w->norigins; i++)
        close(w->origins[i].fd);
    w->norigins = 0;
    if (w->dns)
        dns_resolver_free(w->dns);
    if (w->acl)
        acl_live_release(w->shared->acl, w->acl);
    acl_scratch_free(w->acl_scratch);
    while (w->free_conns) {
        struct conn *c = w->free_conns;
        w->free_conns = c->next;
        free(c);
    }
    buf_pool_destroy(&w->bufs);
    ev_loop_free(w->loop);
    w->loop = NULL;
}
