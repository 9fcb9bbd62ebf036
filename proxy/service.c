/* service: the switch to an unprivileged user and the systemd notifications. */
#include "proxy/service.h"

#include <errno.h>
#include <grp.h>
#include <linux/capability.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

int service_user_find(const char *name, struct service_user *u, char *err, size_t errlen)
{
    struct passwd pw, *found = NULL;
    char buf[4096];
    int rc = getpwnam_r(name, &pw, buf, sizeof(buf), &found);

    if (!found) {
        char *end;
        unsigned long id = strtoul(name, &end, 10);
        if (*name && !*end && rc == 0)
            rc = getpwuid_r((uid_t)id, &pw, buf, sizeof(buf), &found);
    }
    if (!found) {
        snprintf(err, errlen, "--user %s: %s", name, rc ? strerror(rc) : "no such user");
        return -1;
    }
    if (strlen(pw.pw_name) >= sizeof(u->name)) {
        snprintf(err, errlen, "--user %s: name too long", name);
        return -1;
    }
    snprintf(u->name, sizeof(u->name), "%s", pw.pw_name);
    u->uid = pw.pw_uid;
    u->gid = pw.pw_gid;
    u->keep_net_admin = false;
    return 0;
}

/* The data folder is made for the user only when proxyd creates it: an existing folder keeps
 * its owner (chown of a mistyped --data-dir such as /var/lib would be hard to undo). */
static int data_dir_create(const struct service_user *u, const char *dir, char *err, size_t errlen)
{
    if (mkdir(dir, 0700) < 0) {
        if (errno == EEXIST)
            return 0;
        snprintf(err, errlen, "data folder %s: %s", dir, strerror(errno));
        return -1;
    }
    if (chown(dir, u->uid, u->gid) < 0) {
        snprintf(err, errlen, "data folder %s: chown to %s: %s", dir, u->name, strerror(errno));
        return -1;
    }
    return 0;
}

/* After the switch with PR_SET_KEEPCAPS: of root's capabilities, CAP_NET_ADMIN alone stays
 * permitted and effective (capset(2) directly: one capability does not need libcap). */
static int keep_only_net_admin(void)
{
    struct __user_cap_header_struct head = {.version = _LINUX_CAPABILITY_VERSION_3};
    struct __user_cap_data_struct data[_LINUX_CAPABILITY_U32S_3] = {{0}};
    data[CAP_TO_INDEX(CAP_NET_ADMIN)].permitted = CAP_TO_MASK(CAP_NET_ADMIN);
    data[CAP_TO_INDEX(CAP_NET_ADMIN)].effective = CAP_TO_MASK(CAP_NET_ADMIN);
    if (syscall(SYS_capset, &head, data) < 0)
        return -1;
    return prctl(PR_SET_KEEPCAPS, 0, 0, 0, 0);
}

int service_user_switch(const struct service_user *u, const char *data_dir, char *err,
                        size_t errlen)
{
    if (geteuid() != 0) {
        if (geteuid() == u->uid && getuid() == u->uid)
            return 0;
        snprintf(err, errlen, "--user %s: only root can switch users (running as uid %u)", u->name,
                 (unsigned)geteuid());
        return -1;
    }
    if (u->uid == 0)
        return 0; /* --user root: nothing to give up */
    if (data_dir_create(u, data_dir, err, errlen) < 0)
        return -1;
    if (initgroups(u->name, u->gid) < 0) {
        snprintf(err, errlen, "--user %s: setting its groups: %s", u->name, strerror(errno));
        return -1;
    }
    if (u->keep_net_admin && prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) < 0) {
        snprintf(err, errlen, "--user %s: keeping CAP_NET_ADMIN for --tproxy: %s", u->name,
                 strerror(errno));
        return -1;
    }
    /* The group first: once the uid is gone, so is the right to change it. */
    if (setresgid(u->gid, u->gid, u->gid) < 0 || setresuid(u->uid, u->uid, u->uid) < 0) {
        snprintf(err, errlen, "--user %s: %s", u->name, strerror(errno));
        return -1;
    }
    if (u->keep_net_admin && keep_only_net_admin() < 0) {
        snprintf(err, errlen, "--user %s: keeping CAP_NET_ADMIN for --tproxy: %s", u->name,
                 strerror(errno));
        return -1;
    }
    uid_t ruid, euid, suid;
    gid_t rgid, egid, sgid;
    if (setuid(0) == 0 || seteuid(0) == 0 || getresuid(&ruid, &euid, &suid) < 0 ||
        getresgid(&rgid, &egid, &sgid) < 0 || ruid != u->uid || euid != u->uid || suid != u->uid ||
        rgid != u->gid || egid != u->gid || sgid != u->gid) {
        snprintf(err, errlen, "--user %s: root could be regained; refusing to run", u->name);
        return -1;
    }
    if (access(data_dir, R_OK | W_OK | X_OK) < 0) {
        snprintf(err, errlen, "data folder %s: not usable by user %s (%s); chown it to %s",
                 data_dir, u->name, strerror(errno), u->name);
        return -1;
    }
    return 0;
}

void service_notify(const char *fmt, ...)
{
    char text[512];
    va_list ap;

    if (!getenv("NOTIFY_SOCKET"))
        return;
    va_start(ap, fmt);
    vsnprintf(text, sizeof(text), fmt, ap);
    va_end(ap);
    sd_notify(0, text);
}
