/* policy_watch: hears of policy changes other nodes make on a shared PostgreSQL at once.
 * A thread of its own waits on a connection of its own for the NOTIFY that every commit
 * moving the policy version sends (store_policy_wait), and calls changed(arg) for each; the
 * caller then reads the version as its poll does. The poll stays the fallback: a connection
 * that is lost is opened again (and LISTENs again) once a second, and meanwhile the poll
 * still sees every change. Not started on SQLite (one node per file). */
#ifndef PX_POLICY_WATCH_H
#define PX_POLICY_WATCH_H

#include <stddef.h>

struct policy_watch;

/* Opens the connection (db_path: a PostgreSQL conninfo) and starts the thread. NULL with err
 * filled. changed runs on the watcher's thread. */
struct policy_watch *policy_watch_start(const char *db_path, void (*changed)(void *arg), void *arg,
                                        char *err, size_t errlen);
/* Stops the thread, closes, frees. NULL does nothing. A thread still in a wait for the
 * database after bound_ms is left behind (detached, with its connection), and calls changed
 * no more. */
void policy_watch_stop(struct policy_watch *w, int bound_ms);

#endif
