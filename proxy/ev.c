/* ev: the per-worker epoll loop. See ev.h. */
#include "proxy/ev.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "base/clock.h"

#define EV_BATCH 256
#define EV_POSTED_MAX 4096

struct ev_slot {
    ev_io_cb cb;
    void *arg;
    unsigned events;
    bool registered;
};

struct ev_deferred {
    ev_fn fn;
    void *arg;
};

struct ev_loop {
    int epfd;
    int wakefd;
    int max_fds;
    struct ev_slot *slots;        /* owned, indexed by fd */
    struct ev_deferred *deferred; /* owned ring of max_fds entries */
    int ndeferred;
    int64_t now_ms;
    int tick_ms;
    int64_t next_tick_ms;
    ev_fn tick_fn;
    void *tick_arg;
    ev_fn wake_fn;
    void *wake_arg;
    atomic_bool stop;
    pthread_mutex_t posted_lock;
    struct ev_deferred posted[EV_POSTED_MAX]; /* under posted_lock */
    int nposted;
    struct epoll_event ready[EV_BATCH];
    int nready;
};

struct ev_loop *ev_loop_new(int max_fds)
{
    struct ev_loop *loop = calloc(1, sizeof(*loop));
    if (!loop)
        return NULL;
    loop->max_fds = max_fds;
    pthread_mutex_init(&loop->posted_lock, NULL);
    loop->epfd = epoll_create1(EPOLL_CLOEXEC);
    loop->wakefd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    loop->slots = calloc((size_t)max_fds, sizeof(*loop->slots));
    loop->deferred = calloc((size_t)max_fds, sizeof(*loop->deferred));
    if (loop->epfd < 0 || loop->wakefd < 0 || !loop->slots || !loop->deferred ||
        loop->wakefd >= max_fds) {
        int saved = errno;
        ev_loop_free(loop);
        errno = saved ? saved : ENOMEM;
        return NULL;
    }
    struct epoll_event ee = {.events = EPOLLIN, .data.fd = loop->wakefd};
    epoll_ctl(loop->epfd, EPOLL_CTL_ADD, loop->wakefd, &ee);
    loop->now_ms = clock_mono_ms();
    return loop;
}

void ev_loop_free(struct ev_loop *loop)
{
    if (!loop)
        return;
    if (loop->epfd >= 0)
        close(loop->epfd);
    if (loop->wakefd >= 0)
        close(loop->wakefd);
    free(loop->slots);
    free(loop->deferred);
    pthread_mutex_destroy(&loop->posted_lock);
    free(loop);
}

int ev_io_set(struct ev_loop *loop, int fd, unsigned events, ev_io_cb cb, void *arg)
{
    if (fd < 0 || fd >= loop->max_fds) {
        errno = EMFILE;
        return -1;
    }
    struct ev_slot *s = &loop->slots[fd];
    struct epoll_event ee = {0};
    ee.data.fd = fd;
    if (events & EV_READ)
        ee.events |= EPOLLIN | EPOLLRDHUP;
    if (events & EV_WRITE)
        ee.events |= EPOLLOUT;
    if (events & EV_EDGE)
        ee.events |= EPOLLET;
    if (!s->registered || s->events != events) {
        int op = s->registered ? EPOLL_CTL_MOD : EPOLL_CTL_ADD;
        if (epoll_ctl(loop->epfd, op, fd, &ee) < 0)
            return -1;
    }
    s->registered = true;
    s->events = events;
    s->cb = cb;
    s->arg = arg;
    return 0;
}

void ev_io_del(struct ev_loop *loop, int fd)
{
    if (fd < 0 || fd >= loop->max_fds || !loop->slots[fd].registered)
        return;
    epoll_ctl(loop->epfd, EPOLL_CTL_DEL, fd, NULL);
    memset(&loop->slots[fd], 0, sizeof(loop->slots[fd]));
    /* A later event for this fd number in the current batch belongs to the old file. */
    for (int i = 0; i < loop->nready; i++)
        if (loop->ready[i].data.fd == fd)
            loop->ready[i].data.fd = -1;
}

void ev_tick_set(struct ev_loop *loop, int interval_ms, ev_fn fn, void *arg)
{
    loop->tick_ms = interval_ms;
    loop->tick_fn = fn;
    loop->tick_arg = arg;
    loop->next_tick_ms = clock_mono_ms() + interval_ms;
}

void ev_wake_set(struct ev_loop *loop, ev_fn fn, void *arg)
{
    loop->wake_fn = fn;
    loop->wake_arg = arg;
}

int ev_defer(struct ev_loop *loop, ev_fn fn, void *arg)
{
    if (loop->ndeferred >= loop->max_fds)
        return -1;
    loop->deferred[loop->ndeferred++] = (struct ev_deferred){fn, arg};
    return 0;
}

int64_t ev_now_ms(const struct ev_loop *loop)
{
    return loop->now_ms;
}

static void run_deferred(struct ev_loop *loop)
{
    /* A deferred call may defer another; those run in the same pass. */
    for (int i = 0; i < loop->ndeferred; i++)
        loop->deferred[i].fn(loop, loop->deferred[i].arg);
    loop->ndeferred = 0;
}

static void run_posted(struct ev_loop *loop)
{
    struct ev_deferred batch[64];
    for (;;) {
        pthread_mutex_lock(&loop->posted_lock);
        int n = loop->nposted < 64 ? loop->nposted : 64;
        memcpy(batch, loop->posted, (size_t)n * sizeof(batch[0]));
        memmove(loop->posted, loop->posted + n, (size_t)(loop->nposted - n) * sizeof(batch[0]));
        loop->nposted -= n;
        pthread_mutex_unlock(&loop->posted_lock);
        if (n == 0)
            return;
        for (int i = 0; i < n; i++)
            batch[i].fn(loop, batch[i].arg);
    }
}

int ev_post(struct ev_loop *loop, ev_fn fn, void *arg)
{
    pthread_mutex_lock(&loop->posted_lock);
    if (loop->nposted >= EV_POSTED_MAX) {
        pthread_mutex_unlock(&loop->posted_lock);
        return -1;
    }
    loop->posted[loop->nposted++] = (struct ev_deferred){fn, arg};
    pthread_mutex_unlock(&loop->posted_lock);
    ev_wake(loop);
    return 0;
}

void ev_flush_deferred(struct ev_loop *loop)
{
    run_posted(loop);
    run_deferred(loop);
}

int ev_run(struct ev_loop *loop)
{
    while (!atomic_load_explicit(&loop->stop, memory_order_relaxed)) {
        int timeout = -1;
        if (loop->tick_fn) {
            int64_t wait = loop->next_tick_ms - clock_mono_ms();
            timeout = wait < 0 ? 0 : (int)wait;
        }
        int n = epoll_wait(loop->epfd, loop->ready, EV_BATCH, timeout);
        if (n < 0 && errno != EINTR)
            return -1;
        loop->nready = n < 0 ? 0 : n;
        loop->now_ms = clock_mono_ms();
        for (int i = 0; i < loop->nready; i++) {
            int fd = loop->ready[i].data.fd;
            if (fd < 0)
                continue;
            if (fd == loop->wakefd) {
                uint64_t v;
                while (read(loop->wakefd, &v, sizeof(v)) > 0) {
                }
                run_posted(loop);
                if (loop->wake_fn)
                    loop->wake_fn(loop, loop->wake_arg);
                continue;
            }
            struct ev_slot *s = &loop->slots[fd];
            if (!s->registered || !s->cb)
                continue;
            uint32_t e = loop->ready[i].events;
            unsigned events = 0;
            if (e & (EPOLLIN | EPOLLRDHUP))
                events |= EV_READ;
            if (e & EPOLLOUT)
                events |= EV_WRITE;
            if (e & (EPOLLERR | EPOLLHUP))
                events |= EV_ERROR;
            if (e & (EPOLLRDHUP | EPOLLHUP))
                events |= EV_HUP;
            s->cb(loop, fd, events, s->arg);
        }
        loop->nready = 0;
        run_deferred(loop);
        if (loop->tick_fn && loop->now_ms >= loop->next_tick_ms) {
            loop->next_tick_ms = loop->now_ms + loop->tick_ms;
            loop->tick_fn(loop, loop->tick_arg);
            run_deferred(loop);
        }
    }
    return 0;
}

void ev_stop(struct ev_loop *loop)
{
    atomic_store(&loop->stop, true);
    ev_wake(loop);
}

void ev_wake(struct ev_loop *loop)
{
    uint64_t one = 1;
    ssize_t r = write(loop->wakefd, &one, sizeof(one));
    (void)r; /* EAGAIN means a wake-up is already pending */
}
