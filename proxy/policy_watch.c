/* policy_watch: the thread that waits for other nodes' policy changes (policy_watch.h). */
#include "proxy/policy_watch.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "proxy/log.h"
#include "proxy/poll_thread.h"
#include "storage/store.h"

/* The longest one wait lasts: how soon a stop is seen had the wake-up been missed, and how
 * often a connection that is down is tried again (its reconnection is itself limited to
 * once a second). */
#define WAIT_MS 1000

struct policy_watch {
    pthread_t thread;
    struct store *st; /* owned; the watcher thread's alone */
    int wake_fd;      /* eventfd: policy_watch_stop wakes the wait */
    _Atomic bool stopping;
    void (*changed)(void *arg);
    void *arg;
};

static void *watch_main(void *arg)
{
    struct policy_watch *w = arg;
    bool down = false;

    while (!atomic_load(&w->stopping)) {
        char err[256] = "";
        int rc = store_policy_wait(w->st, w->wake_fd, WAIT_MS, err, sizeof(err));

        if (rc > 0) {
            if (down)
                log_info("policy notifications: listening again");
            if (rc == 1)
                log_debug("policy change announced by PostgreSQL");
            down = false;
            w->changed(w->arg); /* after a new LISTEN too: a change may have come before */
        } else if (rc < 0) {
            if (!down)
                log_warnx("policy notifications: %s; the version poll goes on, retrying", err);
            down = true;
            /* Wait before the next try, or for the stop. */
            struct pollfd p = {.fd = w->wake_fd, .events = POLLIN};
            poll(&p, 1, WAIT_MS);
        }
    }
    return NULL;
}

struct policy_watch *policy_watch_start(const char *db_path, void (*changed)(void *arg), void *arg,
                                        char *err, size_t errlen)
{
    struct policy_watch *w = calloc(1, sizeof(*w));

    if (!w) {
        snprintf(err, errlen, "policy notifications: out of memory");
        return NULL;
    }
    w->changed = changed;
    w->arg = arg;
    w->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (w->wake_fd < 0) {
        snprintf(err, errlen, "policy notifications: eventfd: %s", strerror(errno));
        free(w);
        return NULL;
    }
    w->st = store_open_for(db_path, STORE_FOR_POLICY_WATCH, err, errlen);
    if (!w->st)
        goto fail;
    if ((errno = pthread_create(&w->thread, NULL, watch_main, w)) != 0) {
        snprintf(err, errlen, "policy notifications: pthread_create: %s", strerror(errno));
        goto fail;
    }
    return w;
fail:
    store_close(w->st);
    close(w->wake_fd);
    free(w);
    return NULL;
}

void policy_watch_stop(struct policy_watch *w, int bound_ms)
{
    uint64_t one = 1;

    if (!w)
        return;
    atomic_store(&w->stopping, true);
    if (write(w->wake_fd, &one, sizeof(one)) < 0) {
        /* the wait ends within WAIT_MS all the same */
    }
    if (!thread_join_within(w->thread, bound_ms)) {
        log_warnx(
            "policy notifications: the thread is still waiting for the database: left behind");
        return; /* the thread still uses w and its connection */
    }
    store_close(w->st);
    close(w->wake_fd);
    free(w);
}
