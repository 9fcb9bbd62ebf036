/* worker: a thread, its loop and the housekeeping tick (timeouts, the clock the ACL reads,
 * tunables and ACL refresh, idle origin expiry, draining). Its listeners, the accept loop and
 * who may connect are listener.c's. */
#include "proxy/worker.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "proxy/conn.h"
#include "proxy/listener.h"
#include "proxy/log.h"
#include "proxy/tunnel.h"

#define TICK_MS 100
#define ORIGIN_IDLE_MS 15000

static void refresh_clock(struct worker *w)
{
    time_t now = time(NULL);
    struct tm tm;
    localtime_r(&now, &tm);
    w->clock.wday = tm.tm_wday;
    w->clock.minute = tm.tm_hour * 60 + tm.tm_min;
    w->clock.now = (int64_t)now;
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

const struct acl_set *worker_acl_refresh(struct worker *w)
{
    if (!w->acl || acl_live_generation(w->shared->acl) != w->acl_gen) {
        if (w->acl)
            acl_live_release(w->shared->acl, w->acl);
        w->acl = acl_live_acquire(w->shared->acl, &w->acl_gen);
    }
    return w->acl;
}

static void on_tick(struct ev_loop *loop, void *arg)
{
    struct worker *w = arg;
    int64_t now = ev_now_ms(loop);
    refresh_clock(w);
    refresh_tunables(w);
    dns_resolver_tick(w->dns);
    /* Let go of an old rule set even when no request comes to refresh it; a new one judges
     * the open tunnels again. */
    if (w->acl)
        worker_acl_refresh(w);
    if (w->acl && w->tunnels_judged_gen != w->acl_gen) {
        w->tunnels_judged_gen = w->acl_gen;
        tun_rejudge(w);
    }
    if (w->users_judged_gen != atomic_load(&w->shared->users_gen))
        tun_users_check(w);
    portfwd_worker_sync(w, false);
    listener_tick(w);
    origin_pool_expire(&w->origins, now, ORIGIN_IDLE_MS);
    bool draining = atomic_load(&w->draining);
    if (draining && w->nlisten && w->listeners[0].fd >= 0) {
        listener_close_all(w);
        w->drain_deadline_ms = now + w->drain_grace_ms;
    }
    if (draining) {
        struct conn *next;
        for (struct conn *c = w->active; c; c = next) {
            next = c->next;
            if (c->state == CONN_IDLE || c->state == CONN_HANDSHAKE || now >= w->drain_deadline_ms)
                conn_abort(c, CLOSE_SHUTDOWN);
        }
    }
    /* Closing a connection only clears its own entry; the sweep sees the entries it passes
     * as they are, and lowers timers_end to one past the last live one. */
    int end = 0;
    for (int fd = 0; fd < w->timers_end; fd++) {
        const struct conn_timer *t = &w->timers[fd];
        if (!t->c)
            continue;
        if (now >= t->deadline_ms)
            conn_check_timeout(t->c, now);
        if (t->c)
            end = fd + 1;
    }
    w->timers_end = end;
    if (draining && w->nconns == 0)
        ev_stop(loop);
}

/* A wake (new settings, a drain, an answer posted by another thread) needs no sweep: the
 * posted calls have run already, and timeouts and the drain are the tick's, 100 ms at most. */
static void on_wake(struct ev_loop *loop, void *arg)
{
    refresh_tunables(arg);
    portfwd_worker_sync(arg, false);
}

int worker_init(struct worker *w, unsigned index, struct proxy_shared *shared,
                const struct listener *listeners, size_t nlisten, char *err, size_t errlen)
{
    memset(w, 0, sizeof(*w));
    w->index = index;
    w->shared = shared;
    w->reserve_fd = -1;
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
    if (buf_pool_init(&w->bufs, 256, &w->stats.buffers_in_use) < 0) {
        snprintf(err, errlen, "worker %u: out of memory", index);
        return -1;
    }
    w->timers = calloc((size_t)shared->fd_limit, sizeof(*w->timers));
    if (!w->timers) {
        snprintf(err, errlen, "worker %u: out of memory", index);
        return -1;
    }
    /* Every connection holds a descriptor: the limit bounds the places held at once. */
    if (req_pool_init(&w->reqs, (size_t)shared->fd_limit) < 0) {
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
    w->fwd = calloc(PORTFWD_MAX, sizeof(*w->fwd));
    if (!w->fwd) {
        snprintf(err, errlen, "worker %u: out of memory", index);
        return -1;
    }
    if (listener_attach(w, listeners, nlisten, err, errlen) < 0)
        return -1;
    portfwd_worker_sync(w, true);
    refresh_clock(w);
    ev_tick_set(w->loop, TICK_MS, on_tick, w);
    ev_wake_set(w->loop, on_wake, w);
    w->acl = acl_live_acquire(shared->acl, &w->acl_gen);
    return 0;
}

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    /* Named for per-thread figures (top -H, bench/proxy_bench.sh's worker CPU column). */
    char name[16];
    snprintf(name, sizeof(name), "px-worker-%u", w->index);
    pthread_setname_np(pthread_self(), name);
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
    listener_detach(w);
    free(w->fwd);
    w->fwd = NULL;
    origin_pool_clear(&w->origins);
    tun_pipe_pool_clear(&w->pipes);
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
    req_pool_destroy(&w->reqs);
    free(w->timers);
    w->timers = NULL;
    ev_loop_free(w->loop);
    w->loop = NULL;
}
