/* node_beat: this node's row in the nodes table (store_node.c). A thread of its own, on a
 * connection of its own, writes it at start, every NODE_BEAT_MS after, and within
 * NODE_BEAT_CHECK_MS of a change of the policy version this node has in force, and marks it
 * stopped at a clean stop. A database that is locked, slow or unreachable only delays the
 * beat (the thread waits; no worker ever does), and the next one is tried at the next
 * interval. Before each beat it looks for another run under its name (store_node_rival), and
 * after it reads the whole table back, for the fleet gauges of /metrics. */
#ifndef PX_NODE_BEAT_H
#define PX_NODE_BEAT_H

#include <stddef.h>
#include <stdint.h>

#include "storage/store.h"

#define NODE_BEAT_MS 5000
#define NODE_BEAT_CHECK_MS 250

struct node_beat;

/* Opens a connection to db_path and starts the thread. me: the row's fixed fields (name,
 * software, listen, started_ms, instance; copied); running_version(arg) is asked for the policy
 * version in force (any thread may change it). NULL with err filled. */
struct node_beat *node_beat_start(const char *db_path, const struct store_node *me,
                                  int64_t (*running_version)(void *arg), void *arg, char *err,
                                  size_t errlen);
/* The nodes running on the database (not stopped cleanly), how many of them lag, and the
 * nodes stopped cleanly (kept for 7 days), as the thread read them after its last beat (0s
 * before it could). Any thread. */
void node_beat_fleet(struct node_beat *b, uint64_t *nodes, uint64_t *lagging, uint64_t *stopped);
/* Stops the thread, marks the row stopped (if the database takes it), closes, frees. NULL
 * does nothing. A thread still in a wait for the database after bound_ms is left behind
 * (detached, with its connection; the row is then not marked). */
void node_beat_stop(struct node_beat *b, int bound_ms);

#endif
