/* ev: the per-worker event loop. A small epoll backend (in the manner of Redis's ae):
 * fd callbacks, a periodic tick for coarse timeouts, an eventfd so other threads can wake
 * the loop, and deferred calls that run at the end of an iteration (so close() and free()
 * of a connection never race a stale event in the same batch).
 *
 * A loop and everything registered on it belong to the thread that runs it; only
 * ev_wake() and ev_stop() may be called from other threads.
 */
#ifndef PX_EV_H
#define PX_EV_H

#include <stdbool.h>
#include <stdint.h>

#define EV_READ 1u
#define EV_WRITE 2u
#define EV_ERROR 4u /* EPOLLERR or EPOLLHUP: reported with whatever else is ready */
#define EV_EDGE 8u  /* edge-triggered: report changes of readiness, not readiness */
/* Reported with EV_READ when the peer has shut its sending side (EPOLLRDHUP, EPOLLHUP): reads
 * now return what is left and then 0, never EAGAIN. Under EV_EDGE this is said once, often
 * in the same event as the last bytes, so a reader that stops at a short read must remember
 * it or never learn of the end. */
#define EV_HUP 16u

struct ev_loop;
typedef void (*ev_io_cb)(struct ev_loop *loop, int fd, unsigned events, void *arg);
typedef void (*ev_fn)(struct ev_loop *loop, void *arg);

/* Returns a loop for fds below max_fds, or NULL (errno set). */
struct ev_loop *ev_loop_new(int max_fds);
void ev_loop_free(struct ev_loop *loop);

/* Watches fd for events (EV_READ|EV_WRITE), replacing any earlier interest; events == 0
 * keeps the registration but asks for nothing. Returns 0, or -1 (errno) if fd >= max_fds
 * or epoll refused. */
int ev_io_set(struct ev_loop *loop, int fd, unsigned events, ev_io_cb cb, void *arg);
/* Forgets fd (call before closing it). Pending events for fd in this iteration are dropped. */
void ev_io_del(struct ev_loop *loop, int fd);

/* Calls fn every interval_ms (coarse: timeouts, c-ares retries, clock refresh). */
void ev_tick_set(struct ev_loop *loop, int interval_ms, ev_fn fn, void *arg);
/* Called when another thread calls ev_wake(). */
void ev_wake_set(struct ev_loop *loop, ev_fn fn, void *arg);
/* Runs fn(arg) after the events of the current iteration are handled. Returns -1 if the
 * deferred queue is full (it is sized at max_fds). */
int ev_defer(struct ev_loop *loop, ev_fn fn, void *arg);

/* Runs the posted and deferred calls now (teardown of a loop that no longer runs). */
void ev_flush_deferred(struct ev_loop *loop);

/* Milliseconds of CLOCK_MONOTONIC, cached per iteration. */
int64_t ev_now_ms(const struct ev_loop *loop);

/* Runs until ev_stop(). Returns 0, or -1 if epoll_wait failed for another reason than EINTR. */
int ev_run(struct ev_loop *loop);
void ev_stop(struct ev_loop *loop); /* any thread */
/* Runs fn(loop, arg) on the loop's thread soon (any thread; e.g. to hand back the result of
 * work done elsewhere). Returns -1 if the queue is full. */
int ev_post(struct ev_loop *loop, ev_fn fn, void *arg);
void ev_wake(struct ev_loop *loop); /* any thread */

#endif
