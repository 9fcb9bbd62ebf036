/* node_beat: the thread that keeps this node's row in the nodes table (node_beat.h). */
#include "proxy/node_beat.h"

#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/clock.h"
#include "proxy/log.h"
#include "proxy/wake_thread.h"

struct node_beat {
    struct wake_thread wt; /* node_beat_stop wakes the wait */
    struct store *st;      /* owned; the beat thread's alone */
    struct store_node me;  /* the beat thread's alone once started */
    int64_t (*running_version)(void *arg);
    void *arg;
    _Atomic uint64_t nodes, lagging, stopped;                 /* node_beat_fleet */
    char rival_seen[sizeof(((struct store_node *)0)->rival)]; /* at the last beat, "" none */
    int rival_missed; /* beats in a row without the rival in me.rival */
};

/* Counts the nodes for node_beat_fleet; a failed read keeps the last. */
static void fleet_read(struct node_beat *b)
{
    struct store_node *rows;
    int64_t newest;
    uint64_t lagging = 0, stopped = 0;
    size_t n;
    char why[128], err[256];

    if (store_nodes_list(b->st, &rows, &n, &newest, err, sizeof(err)) < 0)
        return;
    for (size_t i = 0; i < n; i++) {
        lagging += store_node_lagging(&rows[i], newest, why, sizeof(why));
        stopped += rows[i].stopped_ms > 0;
    }
    free(rows);
    atomic_store(&b->nodes, n - stopped);
    atomic_store(&b->lagging, lagging);
    atomic_store(&b->stopped, stopped);
}

void node_beat_fleet(struct node_beat *b, uint64_t *nodes, uint64_t *lagging, uint64_t *stopped)
{
    *nodes = b ? atomic_load(&b->nodes) : 0;
    *lagging = b ? atomic_load(&b->lagging) : 0;
    *stopped = b ? atomic_load(&b->stopped) : 0;
}

/* Another live run under this node's name, before each beat. The same rival at two beats in a
 * row is one (a run killed without a clean stop still looks alive at its successor's first
 * beat, never at its second); it goes into the row, for every node's admin side, and into the
 * log once. It is gone when missed at two beats in a row (a policy change makes this node beat
 * twice within a moment, the rival's beat perhaps not between). A failed read changes
 * nothing. */
static void rival_check(struct node_beat *b)
{
    char rival[sizeof(b->me.rival)], err[256];
    int rc = store_node_rival(b->st, &b->me, rival, sizeof(rival), err, sizeof(err));

    if (rc < 0)
        return;
    if (rc == 1 && strcmp(rival, b->rival_seen) == 0) {
        if (strcmp(b->me.rival, rival) != 0)
            log_warnx("node name: another proxyd (%s) runs as node '%s' on this database; "
                      "give each node its own --node-name (their rows in the nodes table and "
                      "the fleet's counts mix)",
                      rival, b->me.name);
        snprintf(b->me.rival, sizeof(b->me.rival), "%s", rival);
        b->rival_missed = 0;
    } else if (rc == 0 && b->me.rival[0] && ++b->rival_missed >= 2) {
        log_info("node name: no other proxyd runs as node '%s' any more", b->me.name);
        b->me.rival[0] = '\0';
    }
    snprintf(b->rival_seen, sizeof(b->rival_seen), "%s", rc == 1 ? rival : "");
}

static void *beat_main(void *arg)
{
    struct node_beat *b = arg;
    int64_t next_ms = 0; /* monotonic; 0: at once */
    int64_t sent_version = -1;
    bool down = false;

    while (!wake_thread_stopping(&b->wt)) {
        int64_t version = b->running_version(b->arg);
        int64_t now = clock_mono_ms();

        if (now >= next_ms || version != sent_version) {
            char err[256] = "";

            b->me.policy_version = version;
            rival_check(b);
            if (store_node_beat(b->st, &b->me, err, sizeof(err)) == 0) {
                if (down)
                    log_info("node heartbeat: written again");
                down = false;
                sent_version = version;
                fleet_read(b);
            } else if (!down) {
                log_warnx("node heartbeat: %s; relaying goes on, retrying every %d s", err,
                          NODE_BEAT_MS / 1000);
                down = true;
            }
            /* A failed beat is tried again at the next interval, not at the next check. */
            if (down)
                sent_version = version;
            next_ms = clock_mono_ms() + NODE_BEAT_MS;
        }
        wake_thread_wait(&b->wt, NODE_BEAT_CHECK_MS);
    }
    return NULL;
}

struct node_beat *node_beat_start(const char *db_path, const struct store_node *me,
                                  int64_t (*running_version)(void *arg), void *arg, char *err,
                                  size_t errlen)
{
    struct node_beat *b = calloc(1, sizeof(*b));

    if (!b) {
        snprintf(err, errlen, "node heartbeat: out of memory");
        return NULL;
    }
    b->me = *me;
    b->me.beat_every_ms = NODE_BEAT_MS;
    b->running_version = running_version;
    b->arg = arg;
    b->st = store_open_for(db_path, STORE_FOR_NODE_BEAT, err, errlen);
    if (!b->st || wake_thread_start(&b->wt, beat_main, b, "node heartbeat", err, errlen) < 0) {
        store_close(b->st);
        free(b);
        return NULL;
    }
    return b;
}

void node_beat_stop(struct node_beat *b, int bound_ms)
{
    char err[256];

    if (!b)
        return;
    if (!wake_thread_stop(&b->wt, bound_ms)) {
        log_warnx("node heartbeat: the thread is still waiting for the database: left behind");
        return; /* the thread still uses b and its connection */
    }
    if (store_node_stop(b->st, &b->me, err, sizeof(err)) < 0)
        log_warnx("node heartbeat: cannot mark this node stopped: %s", err);
    store_close(b->st);
    free(b);
}
