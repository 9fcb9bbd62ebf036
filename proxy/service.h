/* service: what proxyd does as a system service. Started as root with --user, it binds its
 * listeners first and then becomes that user for good; under systemd (Type=notify) it tells
 * the service manager when it is ready, reloading or stopping, and what it is doing.
 * Main thread only. */
#ifndef PX_SERVICE_H
#define PX_SERVICE_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

struct service_user {
    char name[64];
    uid_t uid;
    gid_t gid; /* the user's primary group */
    /* --tproxy: CAP_NET_ADMIN is kept (and only it), so that connections to origins can
     * still be made from the clients' addresses (IP_TRANSPARENT) after root is gone. */
    bool keep_net_admin;
};

/* Looks up a user by name (or number). Returns 0, or -1 with err filled ("--user x: no such
 * user"). */
int service_user_find(const char *name, struct service_user *u, char *err, size_t errlen);

/* Becomes u for good: creates data_dir owned by u when it is missing, sets u's groups, gid
 * and uid (real, effective and saved), then checks that root cannot be had back and that u
 * may use data_dir. Returns 0, or -1 with err filled. Call before any thread starts (the
 * switch is process-wide in glibc anyway) and after the listeners are bound. Not root: 0 if
 * already u, else -1. */
int service_user_switch(const struct service_user *u, const char *data_dir, char *err,
                        size_t errlen);

/* Sends one state line block to the service manager ("READY=1", "STATUS=...", see
 * sd_notify(3)); does nothing when proxyd was not started by one ($NOTIFY_SOCKET unset). */
void service_notify(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
