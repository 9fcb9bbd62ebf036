/* wake_thread: a thread with a wake-up eventfd and a bounded join (wake_thread.h). */
#include "proxy/wake_thread.h"

#include <errno.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "base/status.h"
#include "base/thread.h"

int wake_thread_start(struct wake_thread *t, void *(*fn)(void *), void *arg, const char *what,
                      char *err, size_t errlen)
{
    atomic_store(&t->stopping, false);
    t->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (t->wake_fd < 0) {
        snprintf(err, errlen, "%s: eventfd: %s", what, strerror(errno));
        return PX_ERR;
    }
    if ((errno = pthread_create(&t->thread, NULL, fn, arg)) != 0) {
        snprintf(err, errlen, "%s: pthread_create: %s", what, strerror(errno));
        close(t->wake_fd);
        t->wake_fd = -1;
        return PX_ERR;
    }
    return PX_OK;
}

void wake_thread_wake(struct wake_thread *t)
{
    uint64_t one = 1;

    if (write(t->wake_fd, &one, sizeof(one)) < 0) {
        /* the counter is full: a wake-up is pending all the same */
    }
}

void wake_thread_wait(struct wake_thread *t, int timeout_ms)
{
    struct pollfd p = {.fd = t->wake_fd, .events = POLLIN};
    uint64_t n;

    if (poll(&p, 1, timeout_ms) > 0 && read(t->wake_fd, &n, sizeof(n)) < 0) {
        /* EAGAIN: another turn took the wake-up */
    }
}

bool wake_thread_stop(struct wake_thread *t, int bound_ms)
{
    atomic_store(&t->stopping, true);
    wake_thread_wake(t);
    if (!thread_join_within(t->thread, bound_ms))
        return false;
    close(t->wake_fd);
    t->wake_fd = -1;
    return true;
}
