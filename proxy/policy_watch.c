/* policy_watch: the thread that waits for other nodes' policy changes (policy_watch.h). */
#include "proxy/policy_watch.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>

#include "proxy/log.h"
#include "proxy/wake_thread.h"
#include "storage/store.h"

/* The longest one wait lasts: how soon a stop is seen had the wake-up been missed, and how
 * often a connection that is down is tried again (its reconnection is itself limited to
 * once a second). */
#define WAIT_MS 1000

struct policy_watch {
    struct wake_thread wt; /* policy_watch_stop wakes the wait */
    struct store *st;      /* owned; the watcher thread's alone */
    void (*changed)(void *arg);
    void *arg;
};

static void *watch_main(void *arg)
{
    struct policy_watch *w = arg;
    bool down = false;

    while (!wake_thread_stopping(&w->wt)) {
        char err[256] = "";
        int rc = store_policy_wait(w->st, w->wt.wake_fd, WAIT_MS, err, sizeof(err));

        /* A wait that outlived the stop's bound returns to a caller that may be gone. */
        if (wake_thread_stopping(&w->wt))
            break;
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
            wake_thread_wait(&w->wt, WAIT_MS); /* before the next try, or for the stop */
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
    w->st = store_open_for(db_path, STORE_FOR_POLICY_WATCH, err, errlen);
    if (!w->st ||
        wake_thread_start(&w->wt, watch_main, w, "policy notifications", err, errlen) < 0) {
        store_close(w->st);
        free(w);
        return NULL;
    }
    return w;
}

void policy_watch_stop(struct policy_watch *w, int bound_ms)
{
    if (!w)
        return;
    if (!wake_thread_stop(&w->wt, bound_ms)) {
        log_warnx(
            "policy notifications: the thread is still waiting for the database: left behind");
        return; /* the thread still uses w and its connection */
    }
    store_close(w->st);
    free(w);
}
