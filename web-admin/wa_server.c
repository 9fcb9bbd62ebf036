/* web-admin server: start and stop of the libmicrohttpd daemon, the listen address and its
 * loopback guard, connection limits, the Host check against DNS rebinding, request bodies
 * and their limits, and the gate every request passes before its route runs: credentials,
 * CSRF token and first-run password as the route's flags (wa_routes.c) ask.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <malloc.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include <sodium.h>

#include "base/addr.h"
#include "base/status.h"
#include "web-admin/wa_auth.h"
#include "web-admin/wa_routes.h"
#include "web-admin/wa_static.h"
#include "web-admin/wa_subs.h"

#define WA_STORE_IDLE 4     /* idle store connections kept */
#define WA_CONN_MAX 1024    /* HTTP connections at once, all addresses */
#define WA_CONN_PER_ADDR 32 /* ... from one client address */
#define WA_CONN_IDLE_S 10   /* a connection silent this long is closed */
#define WA_METRICS_NETS 32  /* networks in --metrics-allow */

struct wa_server {
    struct wa_options opts; /* strings below are owned copies; the rest borrowed */
    char *listen, *data_dir, *db_path, *static_dir, *pac_proxy;
    struct wa_ctx ctx; /* what the handlers reach (ctx.opts is &opts) */
    struct MHD_Daemon *mhd;
    uint16_t port;
    struct sockaddr_storage listen_addr;
    char **hosts; /* owned: names allowed in Host besides addresses, lower case, no final dot */
    size_t nhosts;
    struct addr_net metrics_nets[WA_METRICS_NETS]; /* read /metrics without credentials */
    size_t nmetrics_nets;
    /* The first-run admin's retries (first_admin_retry), while it could not be made. */
    pthread_t retry;
    bool retrying;
    pthread_mutex_t retry_mu;
    pthread_cond_t retry_cv;
    bool stopping; /* under retry_mu */
};

/* One request and its route, from its first header until MHD reports it complete. */
struct request {
    struct wa_req r;
    struct wa_match m;
};

/* ---- listen address ---- */

/* "IP:PORT" or "[IPv6]:PORT" into ss. 0, or -1 with err filled. */
static int parse_listen(const char *s, struct sockaddr_storage *ss, char *err, size_t errlen)
{
    socklen_t len;

    if (addr_parse(s, 0, ss, &len) == PX_OK)
        return 0;
    snprintf(err, errlen, "admin listen address %s: expected IP:PORT or [IPv6]:PORT", s);
    return -1;
}

static bool is_loopback(const struct sockaddr_storage *ss)
{
    if (ss->ss_family == AF_INET) {
        const struct sockaddr_in *sin = (const struct sockaddr_in *)ss;
        return (ntohl(sin->sin_addr.s_addr) >> 24) == 127;
    }
    const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)ss;
    if (IN6_IS_ADDR_LOOPBACK(&sin6->sin6_addr))
        return true;
    return IN6_IS_ADDR_V4MAPPED(&sin6->sin6_addr) && sin6->sin6_addr.s6_addr[12] == 127;
}

/* ---- Host header ----
 *
 * A page of another site whose name the attacker points at 127.0.0.1 (DNS rebinding) can
 * make a browser talk to this server as if it were that site: the browser then sends that
 * name in Host. So only our own names are answered: the names configured (--admin-host),
 * the address we listen on, and the loopback names. An IP literal is never a rebinding
 * vector, so when we listen on every address (0.0.0.0 or ::), any IP literal is ours. */

static bool is_unspecified(const struct sockaddr_storage *ss)
{
    if (ss->ss_family == AF_INET)
        return ((const struct sockaddr_in *)ss)->sin_addr.s_addr == htonl(INADDR_ANY);
    return IN6_IS_ADDR_UNSPECIFIED(&((const struct sockaddr_in6 *)ss)->sin6_addr);
}

/* True if name (no port, brackets kept around IPv6) is an IP literal of ours. */
static bool host_ip_ok(const struct wa_server *srv, const char *name)
{
    const struct sockaddr_storage *ls = &srv->listen_addr;
    unsigned char ip[sizeof(struct in6_addr)];
    char v6[INET6_ADDRSTRLEN + 1];
    size_t n = strlen(name);
    int fam;

    if (name[0] == '[' && n > 2 && n - 2 < sizeof(v6) && name[n - 1] == ']') {
        memcpy(v6, name + 1, n - 2);
        v6[n - 2] = '\0';
        fam = AF_INET6;
        if (inet_pton(AF_INET6, v6, ip) != 1)
            return false;
    } else {
        fam = AF_INET;
        if (inet_pton(AF_INET, name, ip) != 1)
            return false;
    }
    if (is_unspecified(ls))
        return true;
    if (fam != ls->ss_family)
        return false;
    if (fam == AF_INET)
        return memcmp(ip, &((const struct sockaddr_in *)ls)->sin_addr, 4) == 0;
    return memcmp(ip, &((const struct sockaddr_in6 *)ls)->sin6_addr, 16) == 0;
}

/* Our port, from the daemon that took the connection: srv->port is only set once
 * MHD_start_daemon returned, and a request can come before. */
static unsigned conn_port(struct MHD_Connection *conn)
{
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_DAEMON);
    const union MHD_DaemonInfo *di =
        ci ? MHD_get_daemon_info(ci->daemon, MHD_DAEMON_INFO_BIND_PORT) : NULL;

    return di ? di->port : 0;
}

/* True if host (the Host header's value, NULL when absent) names this server; the port, if
 * given, must be ours (none: ours must be 80). Case and one final dot are ignored. */
static bool host_allowed(const struct wa_server *srv, unsigned our_port, const char *host)
{
    static const char *const loopback[] = {"localhost", "127.0.0.1", "[::1]"};
    char name[256];
    const char *port;
    size_t n;

    if (!host || !*host)
        return false;
    if (host[0] == '[') {
        const char *end = strchr(host, ']');
        if (!end)
            return false;
        port = end + 1;
    } else {
        port = host + strcspn(host, ":");
        if (*port && strchr(port + 1, ':'))
            return false; /* IPv6 without brackets */
    }
    if (*port) {
        char *end;
        unsigned long p;

        if (port[0] != ':' || port[1] < '0' || port[1] > '9')
            return false;
        p = strtoul(port + 1, &end, 10);
        if (*end || p != our_port)
            return false;
    } else if (our_port != 80) {
        return false;
    }
    n = (size_t)(port - host);
    if (n > 0 && host[n - 1] == '.') /* "name." is "name" */
        n--;
    if (n == 0 || n >= sizeof(name))
        return false;
    for (size_t i = 0; i < n; i++)
        name[i] = (char)tolower((unsigned char)host[i]);
    name[n] = '\0';
    for (size_t i = 0; i < sizeof(loopback) / sizeof(loopback[0]); i++)
        if (strcmp(name, loopback[i]) == 0)
            return true;
    if (host_ip_ok(srv, name))
        return true;
    for (size_t i = 0; i < srv->nhosts; i++)
        if (strcmp(name, srv->hosts[i]) == 0)
            return true;
    return false;
}

/* Copies the configured names (each entry may be a comma list) in lower case without a
 * final dot. 0, or -1 with err filled. */
static int hosts_copy(struct wa_server *srv, const struct wa_options *opts, char *err,
                      size_t errlen)
{
    for (size_t i = 0; i < opts->nhosts; i++) {
        const char *p = opts->hosts[i];

        while (*p) {
            size_t n = strcspn(p, ", \t");
            char *name, **grown;

            if (n == 0) {
                p++;
                continue;
            }
            if (n > 253 || memchr(p, '/', n) || memchr(p, ':', n) || memchr(p, '[', n)) {
                snprintf(err, errlen,
                         "admin host '%.*s': expected a host name, without port or scheme",
                         (int)(n > 100 ? 100 : n), p);
                return -1;
            }
            grown = realloc(srv->hosts, (srv->nhosts + 1) * sizeof(*grown));
            name = strndup(p, n);
            if (grown)
                srv->hosts = grown;
            if (!grown || !name) {
                free(name);
                snprintf(err, errlen, "admin server: out of memory");
                return -1;
            }
            for (char *c = name; *c; c++)
                *c = (char)tolower((unsigned char)*c);
            if (n > 1 && name[n - 1] == '.')
                name[n - 1] = '\0';
            srv->hosts[srv->nhosts++] = name;
            p += n;
        }
    }
    return 0;
}

/* The peer's address as text, IPv4-mapped IPv6 shown as plain IPv4. */
static void client_text(struct MHD_Connection *conn, char *out, size_t outlen)
{
    const union MHD_ConnectionInfo *ci;
    const struct sockaddr *sa;

    snprintf(out, outlen, "unknown");
    ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    if (!ci || !ci->client_addr)
        return;
    sa = ci->client_addr;
    if (sa->sa_family == AF_INET) {
        inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, out, (socklen_t)outlen);
    } else if (sa->sa_family == AF_INET6) {
        const struct in6_addr *a = &((const struct sockaddr_in6 *)sa)->sin6_addr;
        if (IN6_IS_ADDR_V4MAPPED(a))
            inet_ntop(AF_INET, &a->s6_addr[12], out, (socklen_t)outlen);
        else
            inet_ntop(AF_INET6, a, out, (socklen_t)outlen);
    }
}

/* ---- who may read /metrics ---- */

/* opts->metrics_allow, comma-separated CIDRs, into srv->metrics_nets. 0, or -1 with err. */
static int metrics_nets_parse(struct wa_server *srv, const char *list, char *err, size_t errlen)
{
    const char *p = list;

    while (p && *p) {
        char one[64];
        size_t n = strcspn(p, ",");

        if (n == 0 || n >= sizeof(one) || srv->nmetrics_nets == WA_METRICS_NETS) {
            snprintf(err, errlen,
                     "metrics-allow: '%.*s' is not a network (at most %d, "
                     "comma-separated, like 10.0.0.0/8)",
                     (int)(n < 64 ? n : 64), p, WA_METRICS_NETS);
            return -1;
        }
        memcpy(one, p, n);
        one[n] = '\0';
        if (addr_net_parse(one, &srv->metrics_nets[srv->nmetrics_nets]) != PX_OK) {
            snprintf(err, errlen,
                     "metrics-allow: '%s' is not a network (like 10.0.0.0/8 or fd00::/8, "
                     "no host bits below the prefix)",
                     one);
            return -1;
        }
        srv->nmetrics_nets++;
        p += n + (p[n] == ',');
    }
    return 0;
}

/* True if the caller is on loopback or in a network of --metrics-allow. */
static bool metrics_open_to(const struct wa_server *srv, struct MHD_Connection *conn)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    struct sockaddr_storage ss;
    const struct sockaddr *sa;

    if (!ci || !ci->client_addr)
        return false;
    sa = ci->client_addr;
    memset(&ss, 0, sizeof(ss));
    if (sa->sa_family == AF_INET)
        memcpy(&ss, sa, sizeof(struct sockaddr_in));
    else if (sa->sa_family == AF_INET6)
        memcpy(&ss, sa, sizeof(struct sockaddr_in6));
    else
        return false;
    if (is_loopback(&ss))
        return true;
    for (size_t i = 0; i < srv->nmetrics_nets; i++)
        if (addr_net_contains(&srv->metrics_nets[i], sa))
            return true;
    return false;
}

/* ---- the gate and the request's life ---- */

/* The least role that may call a route with this method (wa_routes.h). */
static enum store_role route_role(const char *method, unsigned flags)
{
    if (!strcmp(method, "GET") || !strcmp(method, "HEAD") || (flags & WA_ANY_ROLE))
        return STORE_ROLE_VIEWER;
    return flags & WA_OPERATOR ? STORE_ROLE_OPERATOR : STORE_ROLE_ADMIN;
}

/* Enforces what the route's flags ask (wa_routes.h). True if the request may go on; else it
 * has been answered. An unknown path is 404 for anyone, a known one with another method 405
 * for anyone who may use the path at all. */
static bool gate(const struct wa_server *srv, struct wa_req *r, const struct wa_match *m)
{
    unsigned f = m->flags;

    if ((!m->route && !m->allow[0]) || (f & WA_PUBLIC))
        return true;
    if ((f & WA_METRICS) && metrics_open_to(srv, r->conn))
        return true;
    if (f & WA_PAGE) {
        /* Pages hold no data, but a browser without a session belongs on the login page, and
         * one that must replace a first-run password too (the page then asks for it). */
        if (!m->route || (r->authed && !r->must_change))
            return true;
        /* The login page sends the browser back here afterwards (?next=, a plain path of
         * ours: the login page takes nothing else). */
        char to[160];
        if (strcmp(r->url, "/") != 0 && strlen(r->url) < 100 &&
            strspn(r->url, "abcdefghijklmnopqrstuvwxyz0123456789/-_") == strlen(r->url))
            snprintf(to, sizeof(to), "%s?next=%s", WA_LOGIN_PAGE, r->url);
        else
            snprintf(to, sizeof(to), "%s", WA_LOGIN_PAGE);
        wa_reply_redirect(r, to);
        return false;
    }
    if (!r->authed) {
        wa_reply_error(r, 401, NULL, "authentication required");
        return false;
    }
    if (wa_auth_csrf_bad(r)) {
        wa_reply_error(r, 403, NULL, "missing or wrong X-CSRF-Token header");
        return false;
    }
    /* A first-run password opens nothing but the way to replace it. */
    if (r->must_change &&
        !((f & WA_FIRST_RUN) && (!r->param[0] || strcmp(r->param, r->actor) == 0))) {
        wa_reply_error(r, 403, "password", "choose a new password first (PUT /api/admins/%s)",
                       r->actor);
        return false;
    }
    if (r->role < route_role(r->method, f)) {
        wa_reply_error(r, 403, NULL, "%s %s needs the %s role; %s has the %s role", r->method,
                       r->url, store_role_str(route_role(r->method, f)), r->actor,
                       store_role_str(r->role));
        return false;
    }
    return true;
}

/* The largest body a route takes, and what to say when one is larger. The whole body is held,
 * parsed and compiled in memory, several times its size at the peak: imports are where that
 * counts. */
static size_t body_limit(unsigned flags, const char **hint)
{
    *hint = "";
    if (flags & WA_BODY_POLICY) {
        *hint = "; put long lists of domains in a list (PUT /api/lists/NAME, up to 32 MiB) "
                "and name it in one rule";
        return WA_POLICY_LIMIT;
    }
    return flags & WA_BODY_LIST ? WA_LIST_LIMIT : WA_BODY_LIMIT;
}

static enum MHD_Result too_large(struct wa_req *r)
{
    bool mib = r->limit >= (1u << 20);
    return wa_reply_error(r, 413, NULL, "request body larger than %zu %s (%zu bytes)%s",
                          r->limit >> (mib ? 20 : 10), mib ? "MiB" : "KiB", r->limit,
                          r->limit_hint);
}

/* The first call for a request: its headers are in, its body is not. Everything that needs
 * only the headers is decided here, since answering before the body arrives makes MHD
 * discard the body and close. */
static enum MHD_Result request_begin(struct wa_server *srv, struct request *req,
                                     struct MHD_Connection *conn, const char *url,
                                     const char *method)
{
    struct wa_req *r = &req->r;
    const char *cl, *host;

    r->ctx = &srv->ctx;
    r->conn = conn;
    r->method = method;
    r->url = url;
    wa_route_find(method, url, &req->m);
    memcpy(r->param, req->m.param, sizeof(r->param));
    r->limit = body_limit(req->m.flags, &r->limit_hint);
    client_text(conn, r->client, sizeof(r->client));
    host = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_HOST);
    if (!host_allowed(srv, conn_port(conn), host))
        return wa_reply_error(r, 421, NULL,
                              "this admin server does not answer to the name '%.100s'; "
                              "add it with --admin-host",
                              host ? host : "");
    wa_auth_check(r);
    if (r->answered || !gate(srv, r, &req->m))
        return MHD_YES;
    /* Anyone who reaches the port may send to a public route: a login is a few hundred bytes,
     * so no one without one makes the server hold a megabyte per connection. */
    if (!r->authed && r->limit > WA_PUBLIC_BODY_LIMIT) {
        r->limit = WA_PUBLIC_BODY_LIMIT;
        r->limit_hint = "; log in first";
    }
    cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
    if (cl && strtoull(cl, NULL, 10) > r->limit)
        return too_large(r);
    /* Known length: one buffer of that size, not a doubling one (which copies the body a few
     * times and leaves freed pieces behind). */
    if (cl && strtoull(cl, NULL, 10) > 0) {
        r->cap = (size_t)strtoull(cl, NULL, 10) + 1;
        r->body = malloc(r->cap);
        if (!r->body)
            return MHD_NO;
        r->body[0] = '\0';
    }
    return MHD_YES;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_size, void **con_cls)
{
    struct request *req = *con_cls;
    struct wa_req *r;

    (void)version;
    if (!req) {
        req = calloc(1, sizeof(*req));
        if (!req)
            return MHD_NO;
        *con_cls = req;
        return request_begin(cls, req, conn, url, method);
    }
    r = &req->r;
    if (r->answered) {
        *upload_size = 0;
        return MHD_YES;
    }
    if (*upload_size > 0) {
        size_t n = *upload_size;

        *upload_size = 0;
        return wa_body_append(r, upload_data, n) == PX_OK ? MHD_YES : MHD_NO;
    }
    if (r->too_big)
        return too_large(r);
    if (!r->body) {
        r->body = calloc(1, 1);
        if (!r->body)
            return MHD_NO;
    }
    return wa_route_run(r, &req->m);
}

static void on_done(void *cls, struct MHD_Connection *conn, void **con_cls,
                    enum MHD_RequestTerminationCode toe)
{
    struct wa_server *srv = cls;
    struct request *req = *con_cls;

    (void)conn;
    (void)toe;
    if (!req)
        return;
    store_pool_put(srv->ctx.pool, req->r.st);
    free(req->r.body);
    /* An import's parsing and compiling freed many times its size: hand the free pages back
     * (proxyd trims again once the workers let go of the old rule set). */
    if (req->r.cap >= WA_BODY_LIMIT)
        malloc_trim(0);
    free(req);
    *con_cls = NULL;
}

/* ---- start and stop ---- */

/* srv->ctx.pac_url: a URL clients can use, never a loopback one (clients reach no loopback
 * of ours). On every address: by the first name we answer to (--admin-host, else this
 * machine's name), else none we could name. */
static void pac_url_set(struct wa_server *srv)
{
    const struct sockaddr_storage *ls = &srv->listen_addr;
    char ip[INET6_ADDRSTRLEN] = "";
    const void *a = ls->ss_family == AF_INET
                        ? (const void *)&((const struct sockaddr_in *)ls)->sin_addr
                        : (const void *)&((const struct sockaddr_in6 *)ls)->sin6_addr;

    srv->ctx.pac_url[0] = '\0';
    if (is_loopback(ls))
        return;
    if (is_unspecified(ls)) {
        if (srv->nhosts > 0)
            snprintf(srv->ctx.pac_url, sizeof(srv->ctx.pac_url), "http://%s:%u/proxy.pac",
                     srv->hosts[0], (unsigned)srv->port);
        return;
    }
    if (!inet_ntop(ls->ss_family, a, ip, sizeof(ip)))
        return;
    snprintf(srv->ctx.pac_url, sizeof(srv->ctx.pac_url),
             ls->ss_family == AF_INET6 ? "http://[%s]:%u/proxy.pac" : "http://%s:%u/proxy.pac", ip,
             (unsigned)srv->port);
}

static char *dup_opt(const char *s)
{
    return s ? strdup(s) : NULL;
}

/* The first-run admin, until it is made (or another process made an admin), every
 * WA_FIRST_ADMIN_RETRY_S seconds; says so through the first_admin hook once it is. */
static void *first_admin_retry(void *arg)
{
    struct wa_server *srv = arg;
    char err[512];
    bool created = false;

    pthread_mutex_lock(&srv->retry_mu);
    while (!srv->stopping) {
        struct timespec until;

        clock_gettime(CLOCK_MONOTONIC, &until);
        until.tv_sec += WA_FIRST_ADMIN_RETRY_S;
        pthread_cond_timedwait(&srv->retry_cv, &srv->retry_mu, &until);
        if (srv->stopping)
            break;
        pthread_mutex_unlock(&srv->retry_mu);
        int rc = wa_auth_first_admin(srv->ctx.pool, srv->data_dir, &created, err, sizeof(err));
        pthread_mutex_lock(&srv->retry_mu);
        if (rc == 0)
            break;
    }
    pthread_mutex_unlock(&srv->retry_mu);
    if (created && srv->opts.first_admin)
        srv->opts.first_admin(srv->opts.hook_arg, true, NULL);
    return NULL;
}

/* The start could not make the first-run admin (err): report, and retry on a thread. */
static int first_admin_later(struct wa_server *srv, const char *why, char *err, size_t errlen)
{
    pthread_condattr_t ca;

    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&srv->retry_cv, &ca);
    pthread_condattr_destroy(&ca);
    pthread_mutex_init(&srv->retry_mu, NULL);
    if (pthread_create(&srv->retry, NULL, first_admin_retry, srv) != 0) {
        snprintf(err, errlen, "%s (and cannot start a thread to retry)", why);
        pthread_cond_destroy(&srv->retry_cv);
        pthread_mutex_destroy(&srv->retry_mu);
        return -1;
    }
    srv->retrying = true;
    if (srv->opts.first_admin)
        srv->opts.first_admin(srv->opts.hook_arg, false, why);
    return 0;
}

void wa_stop(struct wa_server *srv)
{
    if (!srv)
        return;
    if (srv->retrying) {
        pthread_mutex_lock(&srv->retry_mu);
        srv->stopping = true;
        pthread_cond_signal(&srv->retry_cv);
        pthread_mutex_unlock(&srv->retry_mu);
        pthread_join(srv->retry, NULL);
        pthread_cond_destroy(&srv->retry_cv);
        pthread_mutex_destroy(&srv->retry_mu);
    }
    wa_subs_cancel(srv->ctx.subs); /* the thread's download ends now, while MHD stops */
    if (srv->mhd)
        MHD_stop_daemon(srv->mhd);
    wa_subs_stop(srv->ctx.subs); /* after MHD: a request may be using it */
    store_pool_free(srv->ctx.pool);
    wa_auth_free(srv->ctx.auth);
    wa_static_free(srv->ctx.files);
    pthread_mutex_destroy(&srv->ctx.policy_mu);
    pthread_mutex_destroy(&srv->ctx.pac_mu);
    free(srv->listen);
    free(srv->data_dir);
    free(srv->db_path);
    free(srv->static_dir);
    free(srv->pac_proxy);
    for (size_t i = 0; i < srv->nhosts; i++)
        free(srv->hosts[i]);
    free(srv->hosts);
    free(srv);
}

uint16_t wa_port(const struct wa_server *srv)
{
    return srv->port;
}

struct wa_server *wa_start(const struct wa_options *opts, bool *first_run, char *err, size_t errlen)
{
    struct sockaddr_storage ss;
    struct wa_server *srv;
    struct store *st;
    const union MHD_DaemonInfo *di;
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_AUTO;

    *first_run = false;
    if (!opts->listen || !opts->data_dir || !opts->db_path) {
        snprintf(err, errlen, "admin server: listen, data_dir and db_path are required");
        return NULL;
    }
    if (parse_listen(opts->listen, &ss, err, errlen) < 0)
        return NULL;
    bool tls = opts->tls_cert_pem && opts->tls_key_pem;
    if (!is_loopback(&ss) && !opts->allow_remote && !tls) {
        snprintf(err, errlen,
                 "admin listen address %s is not loopback; use TLS (--admin-tls), or set "
                 "allow_remote (--admin-allow-remote) to expose it without TLS",
                 opts->listen);
        return NULL;
    }
    if (sodium_init() < 0) {
        snprintf(err, errlen, "admin server: libsodium failed to initialise");
        return NULL;
    }
    srv = calloc(1, sizeof(*srv));
    if (!srv) {
        snprintf(err, errlen, "admin server: out of memory");
        return NULL;
    }
    pthread_mutex_init(&srv->ctx.policy_mu, NULL);
    pthread_mutex_init(&srv->ctx.pac_mu, NULL);
    srv->ctx.opts = &srv->opts;
    srv->opts = *opts;
    if (!tls)
        srv->opts.tls_cert_pem = srv->opts.tls_key_pem = NULL;
    srv->listen = dup_opt(opts->listen);
    srv->data_dir = dup_opt(opts->data_dir);
    srv->db_path = dup_opt(opts->db_path);
    srv->static_dir = dup_opt(opts->static_dir ? opts->static_dir : PX_STATIC_DIR);
    srv->pac_proxy = dup_opt(opts->pac_proxy ? opts->pac_proxy : "127.0.0.1:3128");
    if (!srv->listen || !srv->data_dir || !srv->db_path || !srv->static_dir || !srv->pac_proxy) {
        snprintf(err, errlen, "admin server: out of memory");
        goto fail;
    }
    srv->opts.listen = srv->listen;
    srv->opts.data_dir = srv->data_dir;
    srv->opts.db_path = srv->db_path;
    srv->opts.static_dir = srv->static_dir;
    srv->opts.pac_proxy = srv->pac_proxy;
    srv->opts.hosts = NULL; /* srv->hosts holds them */
    srv->opts.nhosts = 0;
    srv->opts.max_request_line = opts->max_request_line ? opts->max_request_line : 8192;
    srv->listen_addr = ss;
    if (hosts_copy(srv, opts, err, errlen) < 0)
        goto fail;
    if (metrics_nets_parse(srv, opts->metrics_allow, err, errlen) < 0)
        goto fail;
    srv->opts.metrics_allow = NULL; /* srv->metrics_nets holds them */

    srv->ctx.auth = wa_auth_new(srv->data_dir, opts->login_throttle, err, errlen);
    if (!srv->ctx.auth)
        goto fail;
    srv->ctx.pool = store_pool_new(srv->db_path, WA_STORE_IDLE, err, errlen);
    if (!srv->ctx.pool)
        goto fail;
    st = store_pool_get(srv->ctx.pool, err, errlen); /* opens the database: migrations run here */
    if (!st)
        goto fail;
    store_pool_put(srv->ctx.pool, st);
    srv->ctx.files = wa_static_load(srv->static_dir, err, errlen);
    if (!srv->ctx.files)
        goto fail;

    if (ss.ss_family == AF_INET6)
        flags |= MHD_USE_DUAL_STACK;
    if (tls)
        flags |= MHD_USE_TLS;
    errno = 0;
    /* Connections that say nothing for WA_CONN_IDLE_S are closed; one address holds at most
     * WA_CONN_PER_ADDR, so it alone cannot take the WA_CONN_MAX that all share. */
    srv->mhd = MHD_start_daemon(
        flags, 0, NULL, NULL, on_request, srv, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss,
        MHD_OPTION_THREAD_POOL_SIZE, (unsigned)2, MHD_OPTION_CONNECTION_TIMEOUT,
        (unsigned)WA_CONN_IDLE_S, MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)(128 * 1024),
        MHD_OPTION_CONNECTION_LIMIT, (unsigned)WA_CONN_MAX, MHD_OPTION_PER_IP_CONNECTION_LIMIT,
        (unsigned)WA_CONN_PER_ADDR, MHD_OPTION_NOTIFY_COMPLETED, on_done, srv,
        /* Read only with MHD_USE_TLS; an option of value NULL would end the list early. */
        tls ? MHD_OPTION_HTTPS_MEM_CERT : MHD_OPTION_END, opts->tls_cert_pem,
        MHD_OPTION_HTTPS_MEM_KEY, opts->tls_key_pem, MHD_OPTION_END);
    if (!srv->mhd) {
        snprintf(err, errlen, "admin listen address %s: cannot listen%s%s", opts->listen,
                 errno ? ": " : "", errno ? strerror(errno) : "");
        goto fail;
    }
    di = MHD_get_daemon_info(srv->mhd, MHD_DAEMON_INFO_BIND_PORT);
    srv->port = di ? di->port : 0;
    pac_url_set(srv);
    /* Last, so a start that fails never creates an admin whose password nobody saw. A
     * failure here (a full disk, a locked database) is no reason to fail the start: proxyd
     * would exit with it, and relaying must go on. */
    if (srv->opts.list_fetch) {
        srv->ctx.subs = wa_subs_start(&srv->ctx, err, errlen);
        if (!srv->ctx.subs)
            goto fail;
    }
    char why[512];
    if (wa_auth_first_admin(srv->ctx.pool, srv->data_dir, first_run, why, sizeof(why)) < 0 &&
        first_admin_later(srv, why, err, errlen) < 0)
        goto fail;
    return srv;
fail:
    *first_run = false;
    wa_stop(srv);
    return NULL;
}
