/* poll_thread: the thread that does proxyd's periodic database work (the policy version poll,
 * the settings, expired rules, access requests, forwards; after a SIGHUP too) for the main
 * thread, which alone takes the signals and so must never wait for the database: a frozen
 * PostgreSQL holds this thread (each of its waits within its bound, store_sql.c), never
 * SIGTERM. */
#ifndef PX_POLL_THREAD_H
#define PX_POLL_THREAD_H

#include <stdbool.h>
#include <stddef.h>

/* What a wake-up asks for besides the work of every turn (bits of run's asked). */
enum { POLL_ASK_NOW = 1 };

struct poll_thread;

/* Starts the thread: run(arg, asked) every every_ms, and at once when asked (poll_thread_ask;
 * asked holds what was asked since the last turn, 0 for a turn on time). NULL with err. */
struct poll_thread *poll_thread_start(void (*run)(void *arg, unsigned asked), void *arg,
                                      int every_ms, char *err, size_t errlen);
/* Wakes the thread for a turn now, with what (POLL_ASK_*). Any thread, signal-safe. */
void poll_thread_ask(struct poll_thread *t, unsigned what);
/* Stops the thread within bound_ms and frees it (NULL: true). false: it was still in a turn
 * (a wait on the database) and is left behind, detached, with what it uses: the caller must
 * not free that either. */
bool poll_thread_stop(struct poll_thread *t, int bound_ms);

#endif
