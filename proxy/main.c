/* main: proxyd's start-up and shutdown, in this order: settings, data folder, policy store
 * and the rule set, access-log writer, DNS cache, workers, admin server. The main thread
 * then only waits for signals; the poll thread (poll_thread.c) polls the policy version
 * (changes made to the database by other means take effect within a second; on PostgreSQL
 * another node's change wakes it at once, policy_watch.c) and does the rest of the periodic
 * database work, so that a database that does not answer never holds a signal; SIGHUP
 * re-reads the settings, SIGTERM and SIGINT drain and exit. Its state is struct proxyd
 * (proxyd.h); what the admin server is told of the running proxy is proxyd_stats.c. */
#include <arpa/inet.h>
#include <errno.h>
#include <ifaddrs.h>
#include <malloc.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "acl/acl_rule.h"
#include "base/addr.h"
#include "base/clock.h"
#include "base/status.h"
#include "proxy/client_limit.h"
#include "proxy/access_req.h"
#include "proxy/config.h"
#include "proxy/fetch.h"
#include "proxy/listener.h"
#include "proxy/log.h"
#include "proxy/policy.h"
#include "proxy/node_beat.h"
#include "proxy/origin.h"
#include "proxy/policy_watch.h"
#include "proxy/poll_thread.h"
#include "proxy/portfwd.h"
#include "proxy/proxyd.h"
#include "proxy/proxyd_stats.h"
#include "proxy/reply.h"
#include "proxy/service.h"
#include "proxy/worker.h"
#include "proxy/ca_live.h"
#include "tls/client.h"
#include "tls/file.h"
#include "tls/mint.h"
#include "tls/tls.h"
#include "web-admin/wa.h"
#include "web-admin/wa_settings.h"

#define DRAIN_GRACE_MS 10000
/* At a stop, the database threads' waits for a PostgreSQL that does not answer end this long
 * after the stop asks (store_pg_give_up_at), and a thread is waited for at most
 * DB_JOIN_MS (a reconnection in progress takes up to its connect_timeout, 5 s): one that is
 * still in libpq then is left behind as the process exits. */
#define DB_GIVE_UP_MS 5000
#define DB_JOIN_MS 15000
#define POLICY_POLL_MS 250
/* The descriptor budget (check_fd_budget): the database, the admin server, the resolvers and
 * the loops hold about FDS_BASE, each worker one in reserve (listener.c) and at most
 * ORIGIN_POOL_MAX pooled origin connections. */
#define FDS_BASE 64
/* Above this, descriptor numbers are not watched (the loops' tables would be too large). */
#define FD_LIMIT_MAX (1 << 20)
#define STATUS_INTERVAL_MS 5000 /* systemd's status line */

static bool same_str(const char *a, const char *b)
{
    return strcmp(a ? a : "", b ? b : "") == 0;
}

static void tunables_from_config(struct proxy_tunables *t, const struct px_config *cfg)
{
    memset(t, 0, sizeof(*t));
    t->limits.max_request_line = cfg->max_request_line;
    t->limits.max_head_bytes = cfg->max_head_bytes;
    t->limits.max_headers =
        cfg->max_headers < WORKER_MAX_HEADERS ? cfg->max_headers : WORKER_MAX_HEADERS;
    t->header_timeout_ms = cfg->header_timeout_ms;
    t->idle_timeout_ms = cfg->idle_timeout_ms;
    t->connect_timeout_ms = cfg->connect_timeout_ms;
    t->origin_timeout_ms = cfg->origin_timeout_ms;
    t->tunnel_idle_ms = cfg->tunnel_idle_ms;
    t->max_connections = cfg->max_connections;
    t->max_conns_per_client = cfg->max_conns_per_client;
    memcpy(t->connect_ports, cfg->connect_ports, sizeof(t->connect_ports));
    t->nconnect_ports = cfg->nconnect_ports;
    t->allow_loopback_targets = cfg->allow_loopback_targets;
    t->intercept_host_strict = cfg->intercept_host_strict;
    snprintf(t->via, sizeof(t->via), "%s", cfg->via ? cfg->via : "proxyd");
    snprintf(t->contact, sizeof(t->contact), "%s", cfg->contact ? cfg->contact : "");
}

/* This machine's own addresses and proxyd's own ports, which requests may never target. */
static void collect_own_addresses(struct proxyd *p)
{
    struct proxy_shared *s = &p->shared;
    struct ifaddrs *ifa = NULL;
    if (getifaddrs(&ifa) == 0) {
        for (struct ifaddrs *i = ifa; i && s->nlocal_addrs < WORKER_MAX_LOCAL_ADDRS;
             i = i->ifa_next) {
            if (!i->ifa_addr)
                continue;
            int fam = i->ifa_addr->sa_family;
            if (fam != AF_INET && fam != AF_INET6)
                continue;
            struct sockaddr_storage *ss = &s->local_addrs[s->nlocal_addrs++];
            memset(ss, 0, sizeof(*ss));
            memcpy(ss, i->ifa_addr,
                   fam == AF_INET ? sizeof(struct sockaddr_in) : sizeof(struct sockaddr_in6));
        }
        freeifaddrs(ifa);
    }
    struct sockaddr_storage ss;
    socklen_t len;
    for (size_t i = 0; i < p->cfg.nlisten; i++)
        if (addr_parse(p->cfg.listen[i], 0, &ss, &len) == PX_OK)
            s->own_ports[s->nown_ports++] = addr_port(&ss);
    for (size_t i = 0; i < p->cfg.nlisten_tls; i++)
        if (addr_parse(p->cfg.listen_tls[i], 0, &ss, &len) == PX_OK)
            s->own_ports[s->nown_ports++] = addr_port(&ss);
    /* A connection straight to an intercept port (not redirected) has itself as its
     * original destination: refused as one of ours, not relayed in a loop. */
    for (size_t i = 0; i < p->cfg.nintercept; i++)
        if (addr_parse(p->cfg.intercept[i], 0, &ss, &len) == PX_OK)
            s->own_ports[s->nown_ports++] = addr_port(&ss);
    for (size_t i = 0; i < p->cfg.ntproxy; i++)
        if (addr_parse(p->cfg.tproxy[i], 0, &ss, &len) == PX_OK)
            s->own_ports[s->nown_ports++] = addr_port(&ss);
    if (strcmp(p->cfg.admin, "off") != 0 && addr_parse(p->cfg.admin, 0, &ss, &len) == PX_OK)
        s->own_ports[s->nown_ports++] = addr_port(&ss);
    /* The port forwards' ports come and go: each worker adds them (portfwd_worker_sync). */
}

/* The admin server's policy change: compiled here, committed by the admin server, then in
 * force (policy_apply). */
static int hook_policy_apply(void *arg, const struct acl_config *cand,
                             int (*commit)(void *commit_arg, int64_t *version, char *err,
                                           size_t errlen),
                             void *commit_arg, char *err, size_t errlen)
{
    struct proxyd *p = arg;
    int rc = policy_apply(&p->policy, cand, commit, commit_arg, err, errlen);

    if (rc == PX_OK)
        log_info("policy changed by the admin server (generation %llu)",
                 (unsigned long long)acl_live_generation(p->acl));
    return rc;
}

/* A list subscription's download (web-admin/wa_subs.c): through proxyd's resolver and its
 * target refusal, as a request would go. */
static int hook_list_fetch(void *arg, struct wa_fetch *f)
{
    struct proxyd *p = arg;
    struct proxy_shared *s = &p->shared;
    /* The opt-in as the workers have it now: SIGHUP changes the tunables, not p->cfg. */
    pthread_mutex_lock(&s->tunables_lock);
    bool allow_loopback = s->tunables.allow_loopback_targets;
    pthread_mutex_unlock(&s->tunables_lock);
    /* The forwards' listen ports too, as a worker's guard has them: with loopback targets
     * allowed, a list URL could otherwise reach a forward's target through its port. */
    uint16_t own_ports[CONFIG_MAX_LISTENERS + 1 + PORTFWD_MAX];
    size_t nown_ports = portfwd_own_ports(s->forwards, s->own_ports, s->nown_ports, own_ports);
    struct fetch_env env = {
        .cache = p->dns_cache,
        .dns_servers = s->dns_servers,
        .ndns_servers = s->ndns_servers,
        .dns_timeout_ms = s->dns_timeout_ms,
        .max_fds = s->fd_limit,
        .guard = {.local_addrs = s->local_addrs,
                  .nlocal_addrs = s->nlocal_addrs,
                  .own_ports = own_ports,
                  .nown_ports = nown_ports,
                  .allow_loopback = allow_loopback},
        .timeout_ms = p->cfg.list_fetch_timeout_ms > 0 ? p->cfg.list_fetch_timeout_ms : 60000,
        .ca_file = p->fetch_ca_file,
    };
    int rc = fetch_list(&env, f);

    if (rc != PX_OK)
        log_warnx("list subscription: %s: %s", f->url, f->err);
    return rc;
}

/* POST /api/reload */
static int hook_policy_reload(void *arg, char *err, size_t errlen)
{
    struct proxyd *p = arg;
    int rc = policy_reload(&p->policy, true, err, errlen);

    auth_invalidate(p->auth);
    switch (rc) {
    case POLICY_NOT_COMPILED:
        log_warnx("stored policy does not compile, the previous one stays in force: %s", err);
        return WA_RELOAD_REFUSED;
    case POLICY_DB_DOWN:
        return WA_RELOAD_DB_DOWN;
    case POLICY_NOT_READ:
        return WA_RELOAD_DB_FAILED;
    default:
        log_info("policy reloaded on request (generation %llu)",
                 (unsigned long long)acl_live_generation(p->acl));
        return WA_RELOAD_DONE;
    }
}

/* A proxy user was set or deleted: its cached password checks go; no recompile. */
static void hook_users_changed(void *arg, int64_t from, int64_t to)
{
    struct proxyd *p = arg;

    auth_invalidate(p->auth);
    policy_unchanged(&p->policy, from, to);
    atomic_store(&p->users_stale, true); /* read by the poll's next turn, within POLICY_POLL_MS */
}

/* POST /api/forwards: bound and stored, or neither. */
static int hook_forward_add(void *arg, const struct acl_forward *f, const char *actor, int *id,
                            char *err, size_t errlen)
{
    struct proxyd *p = arg;
    int rc = 1;

    pthread_mutex_lock(&p->serving_mu);
    if (atomic_load(&p->serving))
        rc = portfwd_add(&p->forwards, f, actor, id, err, errlen);
    else
        snprintf(err, errlen, "proxyd is shutting down");
    pthread_mutex_unlock(&p->serving_mu);
    return rc;
}

/* DELETE /api/forwards/ID */
static int hook_forward_delete(void *arg, int id, const char *actor, char *err, size_t errlen)
{
    struct proxyd *p = arg;
    int rc = -1;

    pthread_mutex_lock(&p->serving_mu);
    if (atomic_load(&p->serving))
        rc = portfwd_delete(&p->forwards, id, actor, err, errlen);
    else
        snprintf(err, errlen, "proxyd is shutting down");
    pthread_mutex_unlock(&p->serving_mu);
    return rc;
}

/* ---- settings changed on the running proxy ---- */

_Static_assert(WA_SETTINGS_LOGO_BYTES <= REPLY_LOGO_BYTES && WA_SETTINGS_CONTACT_MAX < 256,
               "the admin server stores a logo or contact line block pages cannot carry");

/* The settings table's keys proxyd itself reads (the admin server's table, wa_settings.c,
 * says what each means and checks what it stores). */
enum live_key {
    LIVE_ACCESS_REQUESTS,
    LIVE_HTTPS_BLOCK_PAGE,
    LIVE_RETENTION_DAYS,
    LIVE_RETENTION_ROWS,
    LIVE_EXPIRED_RULE_DAYS,
    LIVE_VERSION_KEEP,
    LIVE_VERSION_KEEP_DAYS,
    LIVE_BLOCK_CONTACT,
    LIVE_BLOCK_LOGO,
    LIVE_ALLOW_CLIENTS,
    LIVE_COUNT
};
static const char *const live_keys[LIVE_COUNT] = {
    [LIVE_ACCESS_REQUESTS] = "access_requests",
    [LIVE_HTTPS_BLOCK_PAGE] = "https_block_page",
    [LIVE_RETENTION_DAYS] = "retention_days",
    [LIVE_RETENTION_ROWS] = "retention_rows",
    [LIVE_EXPIRED_RULE_DAYS] = "expired_rule_days",
    [LIVE_VERSION_KEEP] = "version_keep",
    [LIVE_VERSION_KEEP_DAYS] = "version_keep_days",
    [LIVE_BLOCK_CONTACT] = "block_contact",
    [LIVE_BLOCK_LOGO] = "block_logo",
    [LIVE_ALLOW_CLIENTS] = "allow_clients",
};

/* A stored setting as a number 0 .. INT64_MAX, else fallback: unset, or not a number (the
 * admin server checks what it stores; a hand-edited database may hold anything). */
static int64_t setting_number(const char *v, int64_t fallback)
{
    char *end;
    long long x;

    if (!v || !*v || *v < '0' || *v > '9')
        return fallback;
    errno = 0;
    x = strtoll(v, &end, 10);
    return errno || *end ? fallback : (int64_t)x;
}

/* Whether v is a list of networks the rule set compiles with. */
static bool networks_ok(const char *v)
{
    struct acl_cidr *nets = NULL;
    uint32_t n = 0;
    char msg[200];
    bool ok = acl_cidr_parse_list(v, strlen(v), &nets, &n, msg, sizeof(msg)) == 0 && n > 0;

    free(nets);
    return ok;
}

/* The tunables the workers copy: the config's, with the contact line and logo in force.
 * Under settings_mu. */
static void tunables_publish(struct proxyd *p)
{
    pthread_mutex_lock(&p->shared.tunables_lock);
    p->shared.tunables = p->tun_base;
    memcpy(p->shared.tunables.contact, p->applied.contact, sizeof(p->applied.contact));
    memcpy(p->shared.tunables.logo, p->applied.logo, sizeof(p->applied.logo));
    atomic_fetch_add(&p->shared.tunables_gen, 1);
    pthread_mutex_unlock(&p->shared.tunables_lock);
    for (unsigned i = 0; p->workers && i < p->nworkers; i++)
        worker_notify(&p->workers[i]);
}

/* Reads the settings table and puts in force what changed: each setting when set, else its
 * config twin. The admin server's hook and the poll thread (also after a SIGHUP). A stored
 * value proxyd cannot use is passed over for the config's, once logged. */
static void settings_apply(struct proxyd *p)
{
    static struct log_ratelimit bad_rl = LOG_RATELIMIT_INIT(60000, 4);
    static struct log_ratelimit unread_rl = LOG_RATELIMIT_INIT(60000, 4);
    char *v[LIVE_COUNT], err[1024];

    pthread_mutex_lock(&p->apply_mu);
    pthread_mutex_lock(&p->policy.lock);
    int read = 0;
    for (int i = 0; i < LIVE_COUNT; i++)
        v[i] = NULL;
    for (int i = 0; i < LIVE_COUNT && read == 0; i++)
        read = store_setting_read(p->policy.st, live_keys[i], &v[i], err, sizeof(err));
    pthread_mutex_unlock(&p->policy.lock);
    /* A database that does not answer has not unset anything: taking its silence for the
     * config's values would put, say, the config's wider allow_clients in force for the
     * outage. */
    if (read < 0) {
        for (int i = 0; i < LIVE_COUNT; i++)
            free(v[i]);
        log_warnx_limited(&unread_rl, "settings not read, those in force stay: %s", err);
        pthread_mutex_unlock(&p->apply_mu);
        return;
    }
    for (int i = 0; i < LIVE_COUNT; i++)
        if (v[i] && !*v[i]) {
            free(v[i]);
            v[i] = NULL; /* unset */
        }

    pthread_mutex_lock(&p->settings_mu);
    const struct px_config *cfg = &p->cfg;
    atomic_store_explicit(&p->access_req.enabled,
                          v[LIVE_ACCESS_REQUESTS] && !strcmp(v[LIVE_ACCESS_REQUESTS], "on"),
                          memory_order_relaxed);
    atomic_store_explicit(&p->shared.https_block_page,
                          v[LIVE_HTTPS_BLOCK_PAGE] ? !strcmp(v[LIVE_HTTPS_BLOCK_PAGE], "on")
                                                   : cfg->https_block_page,
                          memory_order_relaxed);

    int64_t days = setting_number(v[LIVE_RETENTION_DAYS], cfg->retention_days);
    int64_t rows = setting_number(v[LIVE_RETENTION_ROWS], cfg->retention_rows);
    if (days != p->applied.retention_days || rows != p->applied.retention_rows) {
        p->applied.retention_days = days;
        p->applied.retention_rows = rows;
        if (p->log) {
            store_log_retention_set(p->log, days, rows);
            log_info("access log retention now %lld days, %lld rows (0: no limit)", (long long)days,
                     (long long)rows);
        }
    }
    p->applied.expired_rule_days =
        setting_number(v[LIVE_EXPIRED_RULE_DAYS], cfg->expired_rule_days);
    int64_t keep = setting_number(v[LIVE_VERSION_KEEP], cfg->version_keep);
    int64_t keep_days = setting_number(v[LIVE_VERSION_KEEP_DAYS], cfg->version_keep_days);
    if (keep != p->applied.version_keep || keep_days != p->applied.version_keep_days) {
        p->applied.version_keep = keep;
        p->applied.version_keep_days = keep_days;
        if (p->log) {
            store_log_versions_set(p->log, keep, keep_days);
            log_info("policy versions kept now: the newest %lld (0: all), and %lld days",
                     (long long)keep, (long long)keep_days);
        }
    }

    const char *contact = v[LIVE_BLOCK_CONTACT] ? v[LIVE_BLOCK_CONTACT]
                          : cfg->contact        ? cfg->contact
                                                : "";
    const char *logo = v[LIVE_BLOCK_LOGO] ? v[LIVE_BLOCK_LOGO] : "";
    if (*logo && !reply_logo_ok(logo)) {
        log_warnx_limited(&bad_rl,
                          "setting block_logo: not a PNG, JPEG or SVG data: URI of at "
                          "most %d bytes; block pages show no logo",
                          REPLY_LOGO_BYTES);
        logo = "";
    }
    if (strncmp(contact, p->applied.contact, sizeof(p->applied.contact)) != 0 ||
        strcmp(logo, p->applied.logo) != 0) {
        snprintf(p->applied.contact, sizeof(p->applied.contact), "%s", contact);
        snprintf(p->applied.logo, sizeof(p->applied.logo), "%s", logo);
        tunables_publish(p);
        log_info("block pages: contact line '%s', %s", p->applied.contact,
                 p->applied.logo[0] ? "a logo" : "no logo");
    }

    const char *allow = v[LIVE_ALLOW_CLIENTS];
    if (allow && !networks_ok(allow)) {
        log_warnx_limited(&bad_rl,
                          "setting allow_clients: not a list of networks ('%.80s'); "
                          "the config's stay in force",
                          allow);
        allow = NULL;
    }
    if (!allow)
        allow = cfg->allow_clients;
    /* A copy: a SIGHUP may replace the config's once settings_mu is let go, before the
     * recompile below, which waits for the database. */
    char *fresh = allow ? strdup(allow) : NULL;
    pthread_mutex_unlock(&p->settings_mu);
    for (int i = 0; i < LIVE_COUNT; i++)
        free(v[i]);
    /* Only this function changes it (under apply_mu): read without the loader's lock. */
    if (!same_str(fresh, p->policy.allowed_clients)) {
        char *old;
        pthread_mutex_lock(&p->policy.lock);
        old = p->policy.allowed_clients;
        p->policy.allowed_clients = fresh;
        pthread_mutex_unlock(&p->policy.lock);
        if (policy_reload(&p->policy, true, err, sizeof(err)) < 0) {
            log_warnx("allowed client networks '%s' not applied: %s", fresh ? fresh : "(default)",
                      err);
            pthread_mutex_lock(&p->policy.lock);
            p->policy.allowed_clients = old;
            pthread_mutex_unlock(&p->policy.lock);
            free(fresh);
        } else {
            log_info("allowed client networks now %s",
                     fresh ? fresh : "loopback and private (default)");
            free(old);
        }
    } else {
        free(fresh);
    }
    pthread_mutex_unlock(&p->apply_mu);
}

/* PUT /api/settings committed: in force before the admin server answers. Not once the
 * workers drain (their loops may be gone when the tunables would wake them): the change is
 * stored, and read at the next start. */
static void hook_settings_changed(void *arg)
{
    struct proxyd *p = arg;

    pthread_mutex_lock(&p->serving_mu);
    if (atomic_load(&p->serving))
        settings_apply(p);
    pthread_mutex_unlock(&p->serving_mu);
}

/* The config's value of option `name` as text, for the Settings page ("" when unset). */
static void hook_config_value(void *arg, const char *name, char *out, size_t outlen)
{
    struct proxyd *p = arg;

    pthread_mutex_lock(&p->settings_mu);
    config_value_text(&p->cfg, name, out, outlen);
    pthread_mutex_unlock(&p->settings_mu);
}

static int make_data_dir(const char *dir, char *err, size_t errlen)
{
    if (mkdir(dir, 0700) == 0 || errno == EEXIST)
        return 0;
    snprintf(err, errlen, "data folder %s: %s", dir, strerror(errno));
    return -1;
}

/* The data folder and the database hold password hashes and browsing history. What proxyd
 * creates is private (umask 077, and the store makes its files 0600); what already existed
 * keeps its mode, which is the admin's call, but a wider one is worth a warning. */
static void warn_if_shared(const char *path)
{
    struct stat sb;
    if (stat(path, &sb) != 0 || (sb.st_mode & 077) == 0)
        return;
    log_warnx("%s is open to other users (mode %04o) and holds password hashes and browsing "
              "history: chmod %s %s",
              path, (unsigned)(sb.st_mode & 07777), S_ISDIR(sb.st_mode) ? "700" : "600", path);
}

/* Raises the descriptor limit as far as the hard limit allows. Returns the limit in force. */
static int raise_fd_limit(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return 1024;
    if (rl.rlim_cur < rl.rlim_max) {
        rlim_t want = rl.rlim_max;
        rl.rlim_cur = want;
        if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
            getrlimit(RLIMIT_NOFILE, &rl);
    }
    return rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur > FD_LIMIT_MAX ? FD_LIMIT_MAX
                                                                      : (int)rl.rlim_cur;
}

/* Says at start when max-connections cannot all be served: past the limit, connections are
 * refused as they come (listener.c) rather than failing later for want of an origin socket.
 * A client with a request in flight holds two descriptors (client, origin); an idle
 * keep-alive client one, plus the origin connection kept for it while its worker keeps fewer
 * than WORKER_MAX_ATTACHED; a long body or a tunnel takes a pipe only when descriptors are
 * spare (else its bytes go through a buffer), so pipes are not counted. */
static void check_fd_budget(int fd_limit, unsigned workers, unsigned max_connections)
{
    int64_t fixed = FDS_BASE + (int64_t)workers * (1 + ORIGIN_POOL_MAX);
    int64_t avail = fd_limit > fixed ? fd_limit - fixed : 0;
    int64_t attached = (int64_t)workers * WORKER_MAX_ATTACHED;
    int64_t busy = avail / 2, idle = avail <= 2 * attached ? avail / 2 : avail - attached;
    uint64_t wanted = (uint64_t)workers * max_connections;

    if (wanted <= (uint64_t)busy)
        return;
    log_warnx("descriptor limit %d: room for about %lld client connections with a request in "
              "flight (2 descriptors each: client and origin), or %lld idle between requests "
              "(1 each, and the origin connections kept for the first %lld), not %llu (%u "
              "workers x max-connections %u); beyond that new ones are refused. This counts "
              "%lld for the database, admin server, resolvers and pooled origin connections. "
              "Raise the hard limit (ulimit -Hn, systemd LimitNOFILE=) or lower max-connections",
              fd_limit, (long long)busy, (long long)idle, (long long)attached,
              (unsigned long long)wanted, workers, max_connections, (long long)fixed);
}

/* The worker count a setting means: 0 is one per CPU. Computed the same way at start and
 * on SIGHUP, so an unchanged setting compares equal. */
static unsigned workers_wanted(unsigned workers)
{
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);

    if (workers)
        return workers;
    return cpus > 0 ? (unsigned)cpus : 1;
}

static bool same_list(char *const *a, size_t na, char *const *b, size_t nb)
{
    if (na != nb)
        return false;
    for (size_t i = 0; i < na; i++)
        if (strcmp(a[i], b[i]) != 0)
            return false;
    return true;
}

/* The listening addresses of every kind, in the order each worker's listeners have. */
static size_t listen_specs(const struct px_config *cfg, const char **texts,
                           enum listener_kind *kinds)
{
    size_t n = 0;
    for (size_t i = 0; i < cfg->nlisten; i++, n++) {
        texts[n] = cfg->listen[i];
        kinds[n] = LISTENER_FORWARD;
    }
    for (size_t i = 0; i < cfg->nlisten_tls; i++, n++) {
        texts[n] = cfg->listen_tls[i];
        kinds[n] = LISTENER_TLS;
    }
    for (size_t i = 0; i < cfg->nintercept; i++, n++) {
        texts[n] = cfg->intercept[i];
        kinds[n] = LISTENER_INTERCEPT;
    }
    for (size_t i = 0; i < cfg->ntproxy; i++, n++) {
        texts[n] = cfg->tproxy[i];
        kinds[n] = LISTENER_TPROXY;
    }
    return n;
}

/* Every worker's listeners, opened before anything else and before root is given up
 * (--user), so that a port below 1024 (and TPROXY's IP_TRANSPARENT) needs root only this
 * long. Each kind comes from a setting of its own (listener.h's table): --listen,
 * --listen-tls, --intercept, --tproxy. */
static int open_listeners(struct proxyd *p, char *err, size_t errlen)
{
    const char *texts[CONFIG_MAX_LISTENERS];
    enum listener_kind kinds[CONFIG_MAX_LISTENERS];
    size_t n = listen_specs(&p->cfg, texts, kinds);

    p->nlisteners = n;
    p->nworkers = workers_wanted(p->cfg.workers);
    for (size_t i = 0; i < n; i++)
        if (listener_probe(texts[i], err, errlen) < 0)
            return -1;
    p->listeners = calloc((size_t)p->nworkers * n, sizeof(*p->listeners));
    if (!p->listeners) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    for (unsigned w = 0; w < p->nworkers; w++)
        for (size_t i = 0; i < n; i++)
            if (listener_open(&p->listeners[w * n + i], kinds[i], texts[i], err, errlen) < 0)
                return -1;
    /* The config file's port forwards; stored ones are opened once the store is (and
     * whenever they change), as the user proxyd runs as. */
    portfwd_table_init(&p->forwards, p->nworkers);
    return portfwd_table_add_config(&p->forwards, p->cfg.forwards, p->cfg.nforwards, err, errlen);
}

/* --user: right after the listeners and before the data folder is opened, so that every file
 * proxyd creates belongs to that user and no thread ever runs as root. */
static int drop_root(struct proxyd *p, char *err, size_t errlen)
{
    struct service_user u;

    if (!p->cfg.user)
        return 0;
    if (service_user_find(p->cfg.user, &u, err, errlen) < 0)
        return -1;
    u.keep_net_admin = p->cfg.ntproxy > 0;
    if (service_user_switch(&u, p->cfg.data_dir, err, errlen) < 0)
        return -1;
    log_info("running as user %s (uid %u, gid %u%s)", u.name, (unsigned)getuid(),
             (unsigned)getgid(), u.keep_net_admin ? ", keeping CAP_NET_ADMIN for --tproxy" : "");
    return 0;
}

/* systemd's status line ("systemctl status proxyd"), with the counters the admin server
 * shows; state ("READY=1\n" or "") goes in the same message. */
static void notify_status(struct proxyd *p, const char *state)
{
    struct wa_proxy_stats st;

    proxyd_stats_read(p, &st);
    service_notify(
        "%sSTATUS=%llu requests (%llu denied), %llu connections open, %llu tunnels", state,
        (unsigned long long)st.requests_total, (unsigned long long)st.requests_denied,
        (unsigned long long)st.connections_active, (unsigned long long)st.tunnels_active);
    p->next_status_ms = clock_mono_ms() + STATUS_INTERVAL_MS;
}

/* A replaced rule set is freed when the last worker lets go of it (at its next tick, 100 ms),
 * and a large one leaves its pages in malloc's free lists, where the next one does not fit
 * them exactly: RSS only grew with each big import. A second after each change, give the
 * free pages of every arena back to the system. */
static void trim_after_policy_change(struct proxyd *p)
{
    uint64_t gen = acl_live_generation(p->acl);
    int64_t now = clock_mono_ms();

    if (gen == p->trimmed_gen)
        return;
    if (p->gen_seen_ms == 0) {
        p->gen_seen_ms = now;
        return;
    }
    if (now - p->gen_seen_ms < 1000)
        return;
    malloc_trim(0);
    p->trimmed_gen = gen;
    p->gen_seen_ms = 0;
}

/* The signal loop's turn: the status line when it is due. */
static void notify_tick(struct proxyd *p)
{
    if (clock_mono_ms() >= p->next_status_ms)
        notify_status(p, "");
}

/* SIGHUP, on the main thread: re-read the settings; put in force at once what can change
 * live and needs no database (the tunables, the log level), name what needs a restart. The
 * settings table's overlay on the config's values, which reads the database, follows at the
 * poll thread's next turn, asked for here: a database that does not answer delays that part
 * alone. */
static void reload_config(struct proxyd *p, int argc, char **argv)
{
    struct px_config fresh;
    char err[1024];
    config_defaults(&fresh);
    if (config_from_args(&fresh, argc, argv, err, sizeof(err)) != CONFIG_RUN) {
        log_warnx("SIGHUP: settings not reloaded: %s", err);
        config_free(&fresh);
        return;
    }
    log_threshold_set((enum log_level)fresh.log_level);
    char restart[128] = "";
    const struct {
        bool changed;
        const char *name;
    } start_only[] = {
        {!same_list(p->cfg.listen, p->cfg.nlisten, fresh.listen, fresh.nlisten), "listen"},
        {!same_list(p->cfg.listen_tls, p->cfg.nlisten_tls, fresh.listen_tls, fresh.nlisten_tls),
         "listen-tls"},
        {!same_str(p->cfg.tls_cert, fresh.tls_cert) || !same_str(p->cfg.tls_key, fresh.tls_key),
         "tls-cert/tls-key"},
        {fresh.admin_tls != p->cfg.admin_tls, "admin-tls"},
        {!same_list(p->cfg.upstream_ca, p->cfg.nupstream_ca, fresh.upstream_ca, fresh.nupstream_ca),
         "upstream-ca"},
        {!same_list(p->cfg.forwards, p->cfg.nforwards, fresh.forwards, fresh.nforwards), "forward"},
        {!same_list(p->cfg.intercept, p->cfg.nintercept, fresh.intercept, fresh.nintercept),
         "intercept"},
        {!same_list(p->cfg.tproxy, p->cfg.ntproxy, fresh.tproxy, fresh.ntproxy), "tproxy"},
        {workers_wanted(fresh.workers) != p->nworkers, "workers"},
        {!same_str(p->cfg.admin, fresh.admin), "admin"},
        {!same_str(p->cfg.metrics_allow, fresh.metrics_allow), "metrics-allow"},
        {!same_str(p->cfg.node_name, fresh.node_name), "node-name"},
        {!same_str(p->cfg.data_dir, fresh.data_dir), "data-dir"},
        {fresh.access_log != p->cfg.access_log, "access-log"},
        {fresh.log_spill_max_mb != p->cfg.log_spill_max_mb, "log-spill-max"},
        {!same_str(p->cfg.user, fresh.user), "user"},
    };
    for (size_t i = 0; i < sizeof(start_only) / sizeof(start_only[0]); i++)
        if (start_only[i].changed)
            snprintf(restart + strlen(restart), sizeof(restart) - strlen(restart), "%s%s",
                     restart[0] ? ", " : "", start_only[i].name);
    if (restart[0])
        log_warnx("SIGHUP: changed %s: needs a restart (the old value stays until then)", restart);
    /* What can change live, then the settings over it (which win while they are set). */
    pthread_mutex_lock(&p->settings_mu);
    tunables_from_config(&p->tun_base, &fresh);
    /* Published even when the settings leave contact and logo as they are. */
    tunables_publish(p);
    free(p->cfg.allow_clients);
    p->cfg.allow_clients = fresh.allow_clients ? strdup(fresh.allow_clients) : NULL;
    free(p->cfg.contact);
    p->cfg.contact = fresh.contact ? strdup(fresh.contact) : NULL;
    p->cfg.retention_days = fresh.retention_days;
    p->cfg.retention_rows = fresh.retention_rows;
    p->cfg.version_keep = fresh.version_keep;
    p->cfg.version_keep_days = fresh.version_keep_days;
    p->cfg.expired_rule_days = fresh.expired_rule_days;
    p->cfg.https_block_page = fresh.https_block_page;
    pthread_mutex_unlock(&p->settings_mu);
    config_free(&fresh);
    poll_thread_ask(p->poller, POLL_ASK_NOW);
    log_info("settings reloaded");
}

/* ---- start-up, in order ---- */

/* proxyd's own lines also to the --syslog target: a sink of their own (the access log's
 * writer has its socket), under a lock since any thread logs. */
static struct {
    pthread_mutex_t mu;
    struct store_syslog *s;
} daemon_syslog = {PTHREAD_MUTEX_INITIALIZER, NULL};

static void daemon_syslog_sink(void *arg, int severity, const char *text)
{
    (void)arg;
    pthread_mutex_lock(&daemon_syslog.mu);
    if (daemon_syslog.s)
        store_syslog_event(daemon_syslog.s, severity, "daemon", text);
    pthread_mutex_unlock(&daemon_syslog.mu);
}

/* Opens the sink when --syslog is set, before anything else is logged. Returns 0, or -1
 * once the error is written (a target that cannot be used stops the start). */
static int daemon_syslog_start(struct proxyd *p)
{
    char err[1024] = "", host[256] = "";

    if (!p->cfg.syslog)
        return 0;
    if (!p->cfg.node_name && gethostname(host, sizeof(host) - 1) != 0)
        host[0] = '\0';
    daemon_syslog.s = store_syslog_new(p->cfg.syslog, p->cfg.node_name ? p->cfg.node_name : host,
                                       err, sizeof(err));
    if (!daemon_syslog.s) {
        log_error("%s", err);
        return -1;
    }
    log_sink_set(daemon_syslog_sink, NULL);
    return 0;
}

/* The last lines written: the sink goes once every other thread has stopped. */
static void daemon_syslog_stop(void)
{
    log_sink_set(NULL, NULL);
    pthread_mutex_lock(&daemon_syslog.mu);
    store_syslog_free(daemon_syslog.s);
    daemon_syslog.s = NULL;
    pthread_mutex_unlock(&daemon_syslog.mu);
}

/* A TCP collector's frames that waited go when they can (the main thread's poll). */
static void daemon_syslog_flush(void)
{
    pthread_mutex_lock(&daemon_syslog.mu);
    store_syslog_flush(daemon_syslog.s);
    pthread_mutex_unlock(&daemon_syslog.mu);
}

/* The settings. Returns -1 to run, else the exit status (--help, --version, a usage error). */
static int settings_load(struct proxyd *p, int argc, char **argv)
{
    char err[1024] = "";

    config_defaults(&p->cfg);
    switch (config_from_args(&p->cfg, argc, argv, err, sizeof(err))) {
    case CONFIG_EXIT_HELP:
        config_usage(stdout);
        return 0;
    case CONFIG_EXIT_VERSION:
        printf("proxyd %s\n", PX_VERSION);
        return 0;
    case CONFIG_EXIT_USAGE:
        fprintf(stderr, "proxyd: %s\n", err);
        return 2;
    case CONFIG_RUN:
        break;
    }
    log_threshold_set((enum log_level)p->cfg.log_level);
    return -1;
}

/* Signals are taken by the main thread alone, with sigtimedwait: blocked before any thread
 * starts, since threads inherit the mask (else SIGHUP's default kills). */
static void signals_block(sigset_t *sigs)
{
    signal(SIGPIPE, SIG_IGN);
    sigemptyset(sigs);
    sigaddset(sigs, SIGTERM);
    sigaddset(sigs, SIGINT);
    sigaddset(sigs, SIGHUP);
    sigaddset(sigs, SIGUSR2); /* read the policy version now */
    pthread_sigmask(SIG_BLOCK, sigs, NULL);
}

/* The data folder and the policy store in it. Returns 0, or -1 once the error is logged. */
static int data_open(struct proxyd *p)
{
    static const char *const db_suffixes[] = {"", "-wal", "-shm"};
    char err[1024] = "";

    if (make_data_dir(p->cfg.data_dir, err, sizeof(err)) < 0) {
        log_error("%s", err);
        return -1;
    }
    if (!p->cfg.db_path) {
        size_t n = strlen(p->cfg.data_dir) + sizeof("/proxyd.db");
        p->cfg.db_path = malloc(n);
        snprintf(p->cfg.db_path, n, "%s/proxyd.db", p->cfg.data_dir);
    }
    const struct px_config *cfg = &p->cfg;
    if (policy_loader_init(&p->policy, cfg->db_path, cfg->allow_clients, err, sizeof(err)) < 0) {
        log_error("while opening the database: %s", err);
        return -1;
    }
    warn_if_shared(p->cfg.data_dir);
    for (size_t i = 0;
         !store_path_is_pg(p->cfg.db_path) && i < sizeof(db_suffixes) / sizeof(db_suffixes[0]);
         i++) {
        char path[4096];
        snprintf(path, sizeof(path), "%s%s", p->cfg.db_path, db_suffixes[i]);
        warn_if_shared(path);
    }
    return 0;
}

/* The first rule set. The store is the source; --policy makes it equal to a file first.
 * Returns 0, or -1 once the error is logged. */
static int policy_start(struct proxyd *p)
{
    char err[1024] = "";
    int64_t version;

    if (p->cfg.policy_file &&
        policy_import_file(&p->policy, p->cfg.policy_file, err, sizeof(err)) < 0) {
        log_error("policy not loaded: %s", err);
        return -1;
    }
    struct acl_set *set = policy_compile(&p->policy, &version, err, sizeof(err));
    if (!set) {
        log_error("the stored policy does not compile: %s", err);
        return -1;
    }
    p->acl = acl_live_new(set);
    p->trimmed_gen = acl_live_generation(p->acl);
    p->policy.live = p->acl;
    p->policy.version = version;
    policy_mark_in_force(&p->policy, version);
    return 0;
}

/* The TLS credentials, when a TLS listener or the admin server over TLS needs them: given
 * files, or the self-made pair kept in the data folder. Returns 0, or -1 once the error is
 * logged. */
static int tls_start(struct proxyd *p)
{
    char err[1024] = "";
    const char *names[CONFIG_MAX_LISTENERS + 1];
    size_t nnames = 0;
    bool made;

    /* Forwards added later load one themselves (portfwd_table_tls). */
    if (p->cfg.nlisten_tls == 0 && !p->cfg.admin_tls && !portfwd_table_wants_tls(&p->forwards)) {
        struct tls_cred_options later = {
            .cert_file = p->cfg.tls_cert, .key_file = p->cfg.tls_key, .data_dir = p->cfg.data_dir};
        portfwd_table_tls(&p->forwards, NULL, &later);
        return 0;
    }
    /* A self-made certificate also names the addresses it is reached at. */
    for (size_t i = 0; i < p->cfg.nlisten_tls + 1; i++) {
        const char *text = i < p->cfg.nlisten_tls ? p->cfg.listen_tls[i] : p->cfg.admin;
        struct sockaddr_storage ss;
        socklen_t len;
        static char hosts[CONFIG_MAX_LISTENERS + 1][INET6_ADDRSTRLEN];
        if (addr_parse(text, 0, &ss, &len) != PX_OK)
            continue;
        const void *a = ss.ss_family == AF_INET
                            ? (const void *)&((struct sockaddr_in *)&ss)->sin_addr
                            : (const void *)&((struct sockaddr_in6 *)&ss)->sin6_addr;
        if (inet_ntop(ss.ss_family, a, hosts[nnames], sizeof(hosts[0])))
            names[nnames] = hosts[nnames], nnames++;
    }
    struct tls_cred_options o = {
        .cert_file = p->cfg.tls_cert,
        .key_file = p->cfg.tls_key,
        .data_dir = p->cfg.data_dir,
        .names = names,
        .nnames = nnames,
    };
    p->tls = tls_cred_load(&o, &made, err, sizeof(err));
    if (!p->tls) {
        log_error("while loading the TLS certificate: %s", err);
        return -1;
    }
    if (made)
        log_info("made a TLS certificate for this proxy: %s (clients trust it to connect)",
                 tls_cred_cert_path(p->tls));
    p->shared.tls = p->tls;
    portfwd_table_tls(&p->forwards, p->tls, &o);
    return 0;
}

/* List downloads (libcurl) trust what an inspected origin is verified against: the system's
 * store (curl's CA folder) and --upstream-ca, which libcurl takes as one file: the data
 * folder's FETCH_CA_FILE, written anew at each start (removed without --upstream-ca).
 * Returns 0, or -1 once logged. */
#define FETCH_CA_FILE "upstream-ca-bundle.pem"
static int fetch_ca_write(struct proxyd *p)
{
    char err[1024] = "";
    size_t n = strlen(p->cfg.data_dir) + sizeof("/" FETCH_CA_FILE), len = 0;
    char *path = malloc(n), *bundle = NULL;

    if (!path) {
        log_error("out of memory");
        return -1;
    }
    snprintf(path, n, "%s/" FETCH_CA_FILE, p->cfg.data_dir);
    if (p->cfg.nupstream_ca == 0) {
        unlink(path);
        free(path);
        return 0;
    }
    for (size_t i = 0; i < p->cfg.nupstream_ca; i++) {
        char *pem = tls_file_read(p->cfg.upstream_ca[i]);
        char *more = pem ? realloc(bundle, len + strlen(pem) + 2) : NULL;

        if (!more) {
            log_error("upstream-ca %s: %s", p->cfg.upstream_ca[i],
                      pem ? "out of memory" : strerror(errno));
            free(pem);
            free(bundle);
            free(path);
            return -1;
        }
        bundle = more;
        len += (size_t)sprintf(bundle + len, "%s\n", pem);
        free(pem);
    }
    if (tls_file_write(path, bundle, 0644, err, sizeof(err)) < 0) {
        log_error("while writing the list downloads' CA file: %s", err);
        free(bundle);
        free(path);
        return -1;
    }
    free(bundle);
    p->fetch_ca_file = path;
    return 0;
}

/* The trust inspected tunnels' origins are verified against: the system's store and
 * --upstream-ca. Loaded whether or not a CA exists yet (one may be made on the running proxy),
 * so a bad --upstream-ca file stops the start at once. Returns 0, or -1 once logged. */
static int trust_start(struct proxyd *p)
{
    char err[1024] = "";
    p->trust = tls_trust_load((const char *const *)p->cfg.upstream_ca, p->cfg.nupstream_ca, err,
                              sizeof(err));
    if (!p->trust) {
        log_error("while loading upstream-ca: %s", err);
        return -1;
    }
    log_debug("inspected origins are verified against %u trusted certificates",
              tls_trust_count(p->trust));
    p->shared.trust = p->trust;
    return fetch_ca_write(p);
}

/* The admin address is free: a start that could not listen there stops before the database is
 * made (the admin server itself starts last, on the database). Returns 0, or -1 with err. */
static int admin_address_free(const struct proxyd *p, char *err, size_t errlen)
{
    struct sockaddr_storage ss;
    socklen_t len;
    int fd, one = 1, zero = 0;

    if (strcmp(p->cfg.admin, "off") == 0 || addr_parse(p->cfg.admin, 0, &ss, &len) != PX_OK)
        return 0; /* "off", or a bad address the admin server words itself */
    fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return 0;
    /* As libmicrohttpd binds it: reusable, and dual-stack for IPv6. */
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (ss.ss_family == AF_INET6)
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof(zero));
    if (bind(fd, (struct sockaddr *)&ss, len) != 0) {
        snprintf(err, errlen, "admin listen address %s: cannot listen: %s", p->cfg.admin,
                 strerror(errno));
        close(fd);
        return -1;
    }
    close(fd);
    return 0;
}

/* What can be checked before the database is created or migrated: the node name, the admin
 * address, the TLS certificate and --upstream-ca (--syslog and the proxy ports were opened
 * before). A bad flag leaves nothing behind: a data folder made here is removed again (it
 * is empty then: certificates are written only once made whole). Returns 0, or -1 once
 * logged. */
static int checks_before_data(struct proxyd *p)
{
    char err[1024] = "";
    bool made_dir;

    if (p->cfg.node_name) {
        if (strlen(p->cfg.node_name) > STORE_NODE_NAME_MAX) {
            log_error("node-name: longer than %d bytes", STORE_NODE_NAME_MAX);
            return -1;
        }
        snprintf(p->node_name, sizeof(p->node_name), "%s", p->cfg.node_name);
    } else if (gethostname(p->node_name, sizeof(p->node_name) - 1) != 0) {
        p->node_name[0] = '\0';
    }
    if (admin_address_free(p, err, sizeof(err)) < 0) {
        log_error("admin server: %s", err);
        return -1;
    }
    made_dir = mkdir(p->cfg.data_dir, 0700) == 0;
    if (make_data_dir(p->cfg.data_dir, err, sizeof(err)) < 0) {
        log_error("%s", err);
        return -1;
    }
    if (tls_start(p) < 0 || trust_start(p) < 0) {
        if (made_dir)
            rmdir(p->cfg.data_dir);
        return -1;
    }
    return 0;
}

/* What the workers share and use: the access-log writer, the password verifiers, the DNS
 * cache. Returns 0, or -1 once the error is logged. */
static int services_start(struct proxyd *p)
{
    char err[1024] = "";

    if (p->cfg.access_log) {
        char spill[4096];
        snprintf(spill, sizeof(spill), "%s/log-spill", p->cfg.data_dir);
        struct store_log_opts lo = {
            .db_path = p->cfg.db_path,
            .producers = p->nworkers,
            .queue_capacity = 65536,
            .flush_interval_ms = 100,
            .squid_log_path = p->cfg.squid_log,
            .syslog_target = p->cfg.syslog,
            .retention_days = p->cfg.retention_days,
            .retention_rows = p->cfg.retention_rows,
            .version_keep = p->cfg.version_keep,
            .version_keep_days = p->cfg.version_keep_days,
            .node_name = p->node_name,
            .spill_path = store_path_is_pg(p->cfg.db_path) ? spill : NULL,
            .spill_max_bytes = (uint64_t)p->cfg.log_spill_max_mb << 20,
        };
        p->log = store_log_start(&lo, err, sizeof(err));
        if (!p->log) {
            log_error("while starting the access log: %s", err);
            return -1;
        }
    }
    p->auth = auth_new(p->cfg.db_path, err, sizeof(err));
    if (!p->auth) {
        log_error("while starting password checks: %s", err);
        return -1;
    }
    p->dns_cache = dns_cache_new(65536, 30);
    if (!p->dns_cache) {
        log_error("out of memory");
        return -1;
    }
    return 0;
}

/* struct proxy_shared, read by every worker. Returns 0, or -1 once the error is logged. */
static int shared_fill(struct proxyd *p, int fd_limit)
{
    p->shared.acl = p->acl;
    p->shared.log = p->log;
    p->shared.auth = p->auth;
    p->shared.dns_cache = p->dns_cache;
    p->shared.dns_servers = (const char *const *)p->cfg.dns_servers;
    p->shared.ndns_servers = p->cfg.ndns_servers;
    p->shared.dns_timeout_ms = p->cfg.dns_timeout_ms;
    pthread_mutex_init(&p->shared.tunables_lock, NULL);
    pthread_mutex_init(&p->shared.users_lock, NULL);
    atomic_store(&p->users_stale, true); /* the poll's first turn reads them */
    tunables_from_config(&p->tun_base, &p->cfg);
    p->shared.tunables = p->tun_base;
    snprintf(p->applied.contact, sizeof(p->applied.contact), "%s", p->tun_base.contact);
    p->applied.retention_days = p->cfg.retention_days;
    p->applied.retention_rows = p->cfg.retention_rows;
    p->applied.expired_rule_days = p->cfg.expired_rule_days;
    p->applied.version_keep = p->cfg.version_keep;
    p->applied.version_keep_days = p->cfg.version_keep_days;
    collect_own_addresses(p);

    check_fd_budget(fd_limit, p->nworkers, p->cfg.max_connections);
    /* Every client holds a descriptor, so the table never needs more places than there are. */
    uint64_t most = (uint64_t)p->nworkers * p->cfg.max_connections;
    p->clients = client_limit_new(most < (uint64_t)fd_limit ? (size_t)most : (size_t)fd_limit);
    if (!p->clients) {
        log_error("out of memory");
        return -1;
    }
    p->shared.clients = p->clients;
    p->shared.forwards = &p->forwards;
    if (access_req_init(&p->access_req) < 0) {
        log_error("libsodium could not start");
        return -1;
    }
    p->shared.access_req = &p->access_req;
    p->shared.fd_limit = fd_limit;
    atomic_store(&p->shared.https_block_page, p->cfg.https_block_page);
    ca_live_init(&p->ca, p->cfg.data_dir, &p->shared.mint);
    ca_live_poll(&p->ca);
    settings_apply(p); /* before the workers take their first request */
    return 0;
}

/* The workers, each with its own listeners. Returns 0, or -1 once the error is logged. */
static int workers_start(struct proxyd *p)
{
    char err[1024] = "";

    p->workers = calloc(p->nworkers, sizeof(*p->workers));
    if (!p->workers) {
        log_error("out of memory");
        return -1;
    }
    for (unsigned i = 0; i < p->nworkers; i++) {
        if (worker_init(&p->workers[i], i, &p->shared, p->listeners + i * p->nlisteners,
                        p->nlisteners, err, sizeof(err)) < 0) {
            log_error("%s", err);
            return -1;
        }
    }
    for (unsigned i = 0; i < p->nworkers; i++)
        if (worker_start(&p->workers[i]) < 0) {
            log_error("cannot start worker %u", i);
            return -1;
        }
    if (portfwd_table_open_store(&p->forwards, p->cfg.db_path, err, sizeof(err)) < 0) {
        log_error("while opening the database for forwards: %s", err);
        return -1;
    }
    portfwd_table_attach(&p->forwards, p->workers);
    portfwd_poll(&p->forwards);
    atomic_store(&p->serving, true);
    return 0;
}

static int64_t running_version(void *arg)
{
    struct proxyd *p = arg;

    return atomic_load(&p->policy.in_force_version);
}

/* This node's heartbeat in the nodes table (node_beat.h). Returns 0, or -1 once the error is
 * logged. */
static int beat_start(struct proxyd *p)
{
    struct store_node me = {.started_ms = p->started_ms};
    char err[1024] = "";
    size_t len = 0;

    char host[64] = "";

    snprintf(me.name, sizeof(me.name), "%s", p->node_name);
    snprintf(me.software, sizeof(me.software), "proxyd %s", PX_VERSION);
    if (gethostname(host, sizeof(host) - 1) != 0)
        snprintf(host, sizeof(host), "?");
    snprintf(me.instance, sizeof(me.instance), "%s pid %ld", host, (long)getpid());
    for (size_t i = 0; i < p->cfg.nlisten + p->cfg.nlisten_tls && len < sizeof(me.listen); i++) {
        bool tls = i >= p->cfg.nlisten;
        const char *a = tls ? p->cfg.listen_tls[i - p->cfg.nlisten] : p->cfg.listen[i];
        len += (size_t)snprintf(me.listen + len, sizeof(me.listen) - len, "%s%s%s", len ? " " : "",
                                tls ? "tls:" : "", a);
    }
    p->beat = node_beat_start(p->cfg.db_path, &me, running_version, p, err, sizeof(err));
    if (!p->beat) {
        log_error("%s", err);
        return -1;
    }
    return 0;
}

/* What /proxy.pac hands out: --pac-proxy, else this machine's name (host, may be "") and
 * the first listener's port ("https://" first for a TLS one). */
static void pac_address(const struct proxyd *p, const char *host, char *out, size_t outlen)
{
    struct sockaddr_storage ss;
    socklen_t len;
    unsigned port = 3128;

    if (p->cfg.pac_proxy) {
        snprintf(out, outlen, "%s", p->cfg.pac_proxy);
        return;
    }
    /* The first plain listener; with none, the first TLS one (PAC "HTTPS"). */
    bool tls = p->cfg.nlisten == 0;
    const char *first = tls ? p->cfg.listen_tls[0] : p->cfg.listen[0];
    if (addr_parse(first, 0, &ss, &len) == PX_OK)
        port = addr_port(&ss);
    snprintf(out, outlen, "%s%s:%u", tls ? "https://" : "", host[0] ? host : "127.0.0.1", port);
}

/* The admin server could not make the first-run admin (made false), or has made it since. */
static void hook_first_admin(void *arg, bool made, const char *err)
{
    struct proxyd *p = arg;

    if (made)
        log_info("first run: admin user '%s', its password is in %s/%s (deleted once the "
                 "password is changed; the first login asks for a new one)",
                 WA_FIRST_ADMIN, p->cfg.data_dir, WA_FIRST_PASSWORD_FILE);
    else
        log_error("admin server: cannot create the first admin account: %s; proxying goes on, "
                  "and it is tried again every %d s",
                  err, WA_FIRST_ADMIN_RETRY_S);
}

/* The admin server, unless --admin off. Returns 0, or -1 once the error is logged. */
static int admin_start(struct proxyd *p)
{
    char err[1024] = "", pac[300], host[256] = "";
    const char *hosts[CONFIG_MAX_ADMIN_HOSTS + 1];
    size_t nhosts = 0;
    bool first_run;

    if (strcmp(p->cfg.admin, "off") == 0)
        return 0;
    gethostname(host, sizeof(host) - 1);
    pac_address(p, host, pac, sizeof(pac));
    /* The Host names the admin server answers to: --admin-host and this machine's own
     * name (no rebinding page can own it; browsers fetch /proxy.pac by it). */
    for (size_t i = 0; i < p->cfg.nadmin_hosts; i++)
        hosts[nhosts++] = p->cfg.admin_hosts[i];
    if (host[0])
        hosts[nhosts++] = host;
    struct wa_options wo = {
        .listen = p->cfg.admin,
        .hosts = hosts,
        .nhosts = nhosts,
        .max_request_line = p->cfg.max_request_line,
        .allow_remote = p->cfg.admin_allow_remote,
        .tls_cert_pem = p->cfg.admin_tls ? tls_cred_cert_pem(p->tls) : NULL,
        .tls_key_pem = p->cfg.admin_tls ? tls_cred_key_pem(p->tls) : NULL,
        .data_dir = p->cfg.data_dir,
        .node_name = p->node_name,
        .db_path = p->cfg.db_path,
        .static_dir = p->cfg.static_dir,
        .pac_proxy = pac,
        .acl = p->acl,
        .policy_apply = hook_policy_apply,
        .policy_reload = hook_policy_reload,
        .users_changed = hook_users_changed,
        .proxy_stats = proxyd_stats_read,
        .forward_add = hook_forward_add,
        .forward_delete = hook_forward_delete,
        .config_forwards = p->cfg.forwards,
        .nconfig_forwards = p->cfg.nforwards,
        .ready = proxyd_ready,
        .metrics_allow = p->cfg.metrics_allow,
        .first_admin = hook_first_admin,
        .list_fetch = hook_list_fetch,
        .list_max_bytes = p->cfg.list_max_bytes > 0 ? (size_t)p->cfg.list_max_bytes : 0,
        .sub_min_every_s = p->cfg.sub_min_interval_s > 0 ? p->cfg.sub_min_interval_s : 1,
        .settings_changed = hook_settings_changed,
        .config_value = hook_config_value,
        .hook_arg = p,
    };
    p->admin = wa_start(&wo, &first_run, err, sizeof(err));
    if (!p->admin) {
        log_error("admin server: %s", err);
        return -1;
    }
    if (first_run)
        hook_first_admin(p, true, NULL);
    return 0;
}

/* ---- running and stopping ---- */

/* The access requests the workers queued, stored. On the policy loader's connection: the
 * main thread's own. */
static void access_requests_poll(struct proxyd *p)
{
    struct store_request rq[16];
    char err[256];
    size_t n;

    pthread_mutex_lock(&p->policy.lock);
    while ((n = access_req_take(&p->access_req, rq, sizeof(rq) / sizeof(rq[0]))) > 0) {
        for (size_t i = 0; i < n; i++) {
            int64_t id;
            if (store_request_add(p->policy.st, &rq[i], &id, err, sizeof(err)) < 0)
                log_warnx("access request from %s for %s not stored: %s", rq[i].client, rq[i].host,
                          err);
            else
                log_info("access request %lld from %s for %s", (long long)id, rq[i].client,
                         rq[i].host);
        }
    }
    pthread_mutex_unlock(&p->policy.lock);
}

static int name_order(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The proxy users as the store has them now, for the workers to close the tunnels of those
 * deleted (tun_users_check). Unread (the database away), the last list stays. */
static void proxy_users_refresh(struct proxyd *p)
{
    static struct log_ratelimit rl = LOG_RATELIMIT_INIT(60000, 4);
    struct proxy_shared *s = &p->shared;
    char **names;
    size_t n;

    /* Before the read: a password checked from now on is judged by the next list. */
    uint64_t read = atomic_fetch_add(&s->users_reads, 1) + 1;
    pthread_mutex_lock(&p->policy.lock);
    int rc = store_account_names(p->policy.st, STORE_PROXY_USER, &names, &n);
    pthread_mutex_unlock(&p->policy.lock);
    if (rc < 0) {
        atomic_store(&p->users_stale, true); /* again next turn */
        log_warnx_limited(&rl, "proxy users not read from the database: their open tunnels "
                               "are checked once they are");
        return;
    }
    /* strcmp order for bsearch: PostgreSQL's ORDER BY follows its collation. */
    if (n > 1) /* names is NULL when there are none, which qsort may not be given */
        qsort(names, n, sizeof(*names), name_order);
    pthread_mutex_lock(&s->users_lock);
    char **old = s->users;
    size_t nold = s->nusers;
    s->users = names;
    s->nusers = n;
    s->users_read = read;
    atomic_fetch_add(&s->users_gen, 1);
    pthread_mutex_unlock(&s->users_lock);
    store_strings_free(old, nold);
}

/* The poll thread's turn (every POLICY_POLL_MS, at once when asked, after a SIGHUP too): what
 * the database may have changed. Every call here may wait for the database. */
static void poll_turn(void *arg, unsigned asked)
{
    struct proxyd *p = arg;
    char err[1024] = "";

    (void)asked; /* POLL_ASK_NOW: a turn now is all */
    portfwd_poll(&p->forwards);
    int64_t keep_days = p->applied.expired_rule_days;
    int64_t keep_s = keep_days > 1000000 ? INT64_MAX / 2 : keep_days * 86400;
    int expired = policy_expire(&p->policy, clock_wall_ms() / 1000, keep_s, err, sizeof(err));
    if (expired > 0)
        log_info("deleted %d expired rule%s", expired, expired == 1 ? "" : "s");
    else if (expired < 0)
        log_warnx("expired rules not deleted: %s", err);
    settings_apply(p);
    access_requests_poll(p);
    int rc = policy_reload(&p->policy, false, err, sizeof(err));
    if (rc != 0)
        auth_invalidate(p->auth);
    /* Another node's change of users moves the policy version too. */
    if (atomic_exchange(&p->users_stale, false) || rc != 0)
        proxy_users_refresh(p);
    if (rc > 0)
        log_info("policy reloaded (generation %llu)",
                 (unsigned long long)acl_live_generation(p->acl));
    else if (rc == POLICY_NOT_COMPILED)
        log_warnx("stored policy does not compile, the previous one stays in force: %s", err);
    else if (rc < 0)
        log_warnx("stored policy not read, the one in force stays: %s", err);
    trim_after_policy_change(p);
}

/* The policy watch heard of another node's change (its thread): the poll runs now instead of
 * at its next tick, so the change is in force here within milliseconds. */
static void policy_announced(void *arg)
{
    struct proxyd *p = arg;

    poll_thread_ask(p->poller, POLL_ASK_NOW);
}

/* The poll thread, once everything its turn reaches runs, then on PostgreSQL the policy watch
 * that wakes it: p->poller is set before the watch's thread exists, so no announcement is
 * lost (the watch's first LISTEN wakes the poll too, for a change made before it). argc and
 * argv: the command line, for a SIGHUP's reload. Returns 0, or -1 once the error is logged. */
static int poll_start(struct proxyd *p, int argc, char **argv)
{
    char err[1024];

    p->argc = argc;
    p->argv = argv;
    p->poller = poll_thread_start(poll_turn, p, POLICY_POLL_MS, err, sizeof(err));
    if (!p->poller) {
        log_error("%s", err);
        return -1;
    }
    if (store_path_is_pg(p->cfg.db_path)) {
        p->watch = policy_watch_start(p->cfg.db_path, policy_announced, p, err, sizeof(err));
        if (!p->watch) {
            log_error("%s", err);
            return -1;
        }
    }
    return 0;
}

/* The main thread's life: signals, the systemd status line, the syslog and the local CA's
 * file (nothing that waits for the database: the poll thread's), until SIGTERM or SIGINT. */
static void signals_run(struct proxyd *p, const sigset_t *sigs)
{
    for (;;) {
        struct timespec wait = {0, POLICY_POLL_MS * 1000000L};
        int sig = sigtimedwait(sigs, NULL, &wait);
        if (sig == SIGTERM || sig == SIGINT)
            return;
        if (sig == SIGHUP) {
            service_notify("RELOADING=1\nMONOTONIC_USEC=%lld", (long long)clock_mono_us());
            reload_config(p, p->argc, p->argv);
            service_notify("READY=1");
        } else if (sig == SIGUSR2)
            poll_thread_ask(p->poller, POLL_ASK_NOW);
        notify_tick(p);
        daemon_syslog_flush();
        ca_live_poll(&p->ca);
    }
}

/* Everything started, stopped in reverse order. */
static void shut_down(struct proxyd *p)
{
    service_notify("STOPPING=1");
    pthread_mutex_lock(&p->serving_mu);
    atomic_store(&p->serving, false);
    pthread_mutex_unlock(&p->serving_mu);
    log_info("shutting down: draining connections (up to %d s)", DRAIN_GRACE_MS / 1000);
    /* A PostgreSQL that does not answer holds none of the database threads past this. */
    store_pg_give_up_at(clock_mono_ms() + DB_GIVE_UP_MS);
    /* The watch before the poll thread it wakes (policy_announced). */
    policy_watch_stop(p->watch, DB_JOIN_MS);
    bool poller_gone = poll_thread_stop(p->poller, DB_JOIN_MS);
    if (!poller_gone)
        log_warnx("the poll thread is still waiting for the database: left behind");
    /* The drain's own database work (proxy-user checks, admin pages) keeps its usual bounds
     * on a server that answers: the give-up was for the threads just joined. */
    store_pg_give_up_at(0);
    /* The admin server stays up while connections drain, so that /readyz tells a load
     * balancer to send no more (503) until proxyd is gone; its hooks read the workers,
     * which live until worker_destroy. */
    for (unsigned i = 0; i < p->nworkers; i++)
        worker_drain(&p->workers[i], DRAIN_GRACE_MS);
    for (unsigned i = 0; i < p->nworkers; i++)
        worker_join(&p->workers[i]);
    if (p->admin)
        wa_stop(p->admin);
    /* Verifiers stop before the loops they post to are freed; queries stay cancellable
     * until auth_free, and posted answers are freed when worker_destroy flushes the loops. */
    auth_stop(p->auth);
    /* A poll thread left behind may still reach the workers, auth, forwards, policy, the
     * access log's writer, the access requests, the TLS credentials and the settings once its
     * wait ends (poll_turn): those stay for the process's exit. */
    for (unsigned i = 0; poller_gone && i < p->nworkers; i++)
        worker_destroy(&p->workers[i]);
    if (poller_gone) {
        auth_free(p->auth);
        portfwd_table_destroy(&p->forwards);
        free(p->workers);
    }
    free(p->listeners);
    /* Again from now, for the writer's last batches (they had the drain's time to be sent)
     * and the last access requests. */
    store_pg_give_up_at(clock_mono_ms() + DB_GIVE_UP_MS);
    /* The heartbeat only now: the admin server's /metrics read it while connections drained. */
    node_beat_stop(p->beat, DB_JOIN_MS);
    if (p->log) {
        if (!store_log_halt(p->log, DB_JOIN_MS)) {
            log_warnx("the access log's writer is still waiting for the database: left behind "
                      "(the rows it holds are lost)");
        } else {
            log_info("access log flushed");
            if (poller_gone)
                store_log_free(p->log); /* else the poll's settings_apply may still set it */
        }
    }
    dns_cache_free(p->dns_cache);
    client_limit_free(p->clients);
    if (poller_gone) {
        access_requests_poll(p); /* what was queued before the workers stopped */
        access_req_destroy(&p->access_req);
        policy_loader_destroy(&p->policy);
        acl_live_free(p->acl);
        store_strings_free(p->shared.users, p->shared.nusers);
        tls_cred_free(p->tls); /* a stored forward the poll opens may take it */
    }
    ca_live_free(&p->ca);
    tls_trust_free(p->trust);
    free(p->fetch_ca_file);
    if (poller_gone)
        config_free(&p->cfg);
    log_info("stopped");
    daemon_syslog_stop();
}

int main(int argc, char **argv)
{
    static struct proxyd p;
    char err[1024] = "";
    sigset_t sigs;
    int rc;

    p.started_ms = clock_wall_ms();
    pthread_mutex_init(&p.serving_mu, NULL);
    pthread_mutex_init(&p.apply_mu, NULL);
    pthread_mutex_init(&p.settings_mu, NULL);
    rc = settings_load(&p, argc, argv);
    if (rc >= 0)
        return rc;
    if (daemon_syslog_start(&p) < 0)
        return 1;
    signals_block(&sigs);
    if (fetch_init() != PX_OK) {
        log_error("libcurl failed to initialise");
        return 1;
    }
    int fd_limit = raise_fd_limit();
    umask(077);
    if (open_listeners(&p, err, sizeof(err)) < 0 || drop_root(&p, err, sizeof(err)) < 0) {
        log_error("%s", err);
        return 1;
    }
    if (checks_before_data(&p) < 0 || data_open(&p) < 0 || policy_start(&p) < 0 ||
        services_start(&p) < 0 || shared_fill(&p, fd_limit) < 0 || workers_start(&p) < 0 ||
        beat_start(&p) < 0 || admin_start(&p) < 0 || poll_start(&p, argc, argv) < 0)
        return 1;
    for (size_t i = 0; i < p.cfg.nlisten; i++)
        log_info("proxy listening on %s", p.cfg.listen[i]);
    for (size_t i = 0; i < p.cfg.nlisten_tls; i++)
        log_info("proxy listening on %s over TLS", p.cfg.listen_tls[i]);
    for (size_t i = 0; i < p.cfg.nintercept; i++)
        log_info("intercepting connections redirected to %s", p.cfg.intercept[i]);
    for (size_t i = 0; i < p.cfg.ntproxy; i++)
        log_info("intercepting connections diverted (TPROXY) to %s", p.cfg.tproxy[i]);
    for (size_t i = 0; i < p.cfg.nforwards; i++)
        log_info("forward %s", p.cfg.forwards[i]);
    log_info("proxyd %s: %u workers, admin %s, data in %s, descriptor limit %d", PX_VERSION,
             p.nworkers, p.cfg.admin, p.cfg.data_dir, fd_limit);
    notify_status(&p, "READY=1\n");
    signals_run(&p, &sigs);
    shut_down(&p);
    return 0;
}
