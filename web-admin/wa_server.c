/* web-admin server: start and stop of the libmicrohttpd daemon, the listen address and its
 * loopback guard, the Host check against DNS rebinding, request bodies and their limits, routing of
 * /api/, /proxy.pac and the pages and the reply helpers (security headers on every answer).
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <malloc.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <sodium.h>

#include "base/addr.h"
#include "base/status.h"
#include "web-admin/wa_internal.h"

#define WA_CSP                                                                                     \
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "              \
    "frame-ancestors 'none'; base-uri 'none'; form-action 'self'"

struct store *wa_store(struct wa_req *r)
{
    char err[256];

    if (r->st)
        return r->st;
    r->st = store_pool_get(r->srv->pool, err, sizeof(err));
    if (!r->st)
        wa_reply_error(r, 500, NULL, "database: %s", err);
    return r->st;
}

int wa_policy_hook(struct wa_server *srv, char *err, size_t errlen)
{
    err[0] = '\0';
    if (!srv->opts.policy_changed)
        return 0;
    if (srv->opts.policy_changed(srv->opts.hook_arg, err, errlen) == 0)
        return 0;
    if (!err[0])
        snprintf(err, errlen, "the proxy refused the new policy");
    return -1;
}

/* ---- replies ---- */

void wa_headers_add(struct MHD_Response *resp, const char *cache)
{
    MHD_add_response_header(resp, "Content-Security-Policy", WA_CSP);
    MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
    MHD_add_response_header(resp, "Referrer-Policy", "no-referrer");
    MHD_add_response_header(resp, "X-Frame-Options", "DENY");
    MHD_add_response_header(resp, "Cache-Control", cache ? cache : "no-store");
}

enum MHD_Result wa_reply_data(struct wa_req *r, unsigned status, const char *ctype,
                              const char *cache, const void *data, size_t len)
{
    struct MHD_Response *resp;
    enum MHD_Result ret;

    resp = MHD_create_response_from_buffer(len, (void *)data, MHD_RESPMEM_MUST_COPY);
    if (!resp)
        return MHD_NO;
    wa_headers_add(resp, cache);
    if (ctype)
        MHD_add_response_header(resp, "Content-Type", ctype);
    if (r->set_cookie)
        MHD_add_response_header(resp, "Set-Cookie", r->set_cookie);
    if (r->retry_after_s > 0) {
        char secs[24];

        snprintf(secs, sizeof(secs), "%lld", (long long)r->retry_after_s);
        MHD_add_response_header(resp, "Retry-After", secs);
    }
    ret = MHD_queue_response(r->conn, status, resp);
    MHD_destroy_response(resp);
    r->answered = true;
    return ret;
}

json_t *wa_json_text(const char *s)
{
    static const char hex[] = "0123456789abcdef";
    size_t len = strlen(s), bad, o = 0;
    json_t *j;
    char *out;

    if (acl_utf8_valid(s, len, &bad))
        return json_string(s);
    out = malloc(len * 4 + 1);
    if (!out)
        return NULL;
    for (size_t i = 0; i < len;) {
        if (acl_utf8_valid(s + i, len - i, &bad)) {
            memcpy(out + o, s + i, len - i);
            o += len - i;
            break;
        }
        memcpy(out + o, s + i, bad);
        o += bad;
        i += bad;
        out[o++] = '\\';
        out[o++] = 'x';
        out[o++] = hex[(unsigned char)s[i] >> 4];
        out[o++] = hex[(unsigned char)s[i] & 15];
        i++;
    }
    out[o] = '\0';
    j = json_string(out);
    free(out);
    return j;
}

/* JSON only has '<', '>' and '&' inside strings, so escaping them there keeps the document
 * equal while making it inert if something ever sniffs it as HTML. */
static char *json_html_safe(const char *s)
{
    size_t extra = 0;
    const char *p;
    char *out, *o;

    for (p = s; *p; p++)
        if (*p == '<' || *p == '>' || *p == '&')
            extra += 5;
    out = malloc(strlen(s) + extra + 1);
    if (!out)
        return NULL;
    for (p = s, o = out; *p; p++) {
        if (*p == '<' || *p == '>' || *p == '&') {
            o += sprintf(o, "\\u%04x", (unsigned)*p);
        } else {
            *o++ = *p;
        }
    }
    *o = '\0';
    return out;
}

enum MHD_Result wa_reply_json(struct wa_req *r, unsigned status, json_t *obj)
{
    char *text, *safe;
    enum MHD_Result ret;

    if (!obj)
        return wa_reply_data(r, 500, "application/json", NULL, "{\"error\":\"out of memory\"}", 25);
    text = json_dumps(obj, JSON_COMPACT);
    json_decref(obj);
    safe = text ? json_html_safe(text) : NULL;
    free(text);
    if (!safe)
        return wa_reply_data(r, 500, "application/json", NULL, "{\"error\":\"out of memory\"}", 25);
    ret = wa_reply_data(r, status, "application/json", NULL, safe, strlen(safe));
    free(safe);
    return ret;
}

enum MHD_Result wa_reply_error(struct wa_req *r, unsigned status, const char *field,
                               const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    json_t *o;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    /* msg may quote what a client sent, or be cut inside a character. */
    o = json_pack("{s:o}", "error", wa_json_text(msg));
    if (o && field)
        json_object_set_new(o, "field", json_string(field));
    return wa_reply_json(r, status, o);
}

/* ---- request helpers ---- */

json_t *wa_body_json(struct wa_req *r)
{
    json_error_t jerr;
    json_t *o;

    if (r->len == 0) {
        wa_reply_error(r, 400, NULL, "a JSON object body is required");
        return NULL;
    }
    o = json_loadb(r->body, r->len, JSON_REJECT_DUPLICATES, &jerr);
    if (!o) {
        wa_reply_error(r, 400, NULL, "invalid JSON at line %d column %d: %s", jerr.line,
                       jerr.column, jerr.text);
        return NULL;
    }
    if (!json_is_object(o)) {
        json_decref(o);
        wa_reply_error(r, 400, NULL, "the body must be a JSON object");
        return NULL;
    }
    return o;
}

const char *wa_query(struct wa_req *r, const char *key)
{
    return MHD_lookup_connection_value(r->conn, MHD_GET_ARGUMENT_KIND, key);
}

int wa_query_int(struct wa_req *r, const char *key, int64_t *out)
{
    const char *v = wa_query(r, key);
    char *end;
    long long n;

    if (!v || !*v)
        return 0;
    errno = 0;
    n = strtoll(v, &end, 10);
    if (errno || *end) {
        wa_reply_error(r, 400, key, "%s: not an integer", key);
        return -1;
    }
    *out = n;
    return 1;
}

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

/* ---- routing ---- */

static bool is_method(struct wa_req *r, const char *m)
{
    return strcmp(r->method, m) == 0;
}

static enum MHD_Result not_allowed(struct wa_req *r)
{
    return wa_reply_error(r, 405, NULL, "method %s not allowed here", r->method);
}

/* path is the part after "/api/"; *rest is set to what follows name ("" or "/..."). */
static bool seg_is(const char *path, const char *name, const char **rest)
{
    size_t n = strlen(name);

    if (strncmp(path, name, n) != 0 || (path[n] != '\0' && path[n] != '/'))
        return false;
    *rest = path + n;
    return true;
}

/* The largest body a request may send, and what to say when it is larger. The whole body is
 * held, parsed and compiled in memory, several times its size at the peak: imports are where
 * that counts. */
static size_t body_limit(const char *method, const char *url, const char **hint)
{
    if (strcmp(method, "PUT") == 0 && strcmp(url, "/api/policy") == 0) {
        *hint = "; put long lists of domains in a list (PUT /api/lists/NAME, up to 32 MiB) "
                "and name it in one rule";
        return WA_POLICY_LIMIT;
    }
    *hint = "";
    if (strcmp(method, "PUT") == 0 && strncmp(url, "/api/lists/", 11) == 0)
        return WA_LIST_LIMIT;
    return WA_BODY_LIMIT;
}

static bool needs_auth(const char *url)
{
    if (strncmp(url, "/api/", 5) != 0)
        return false;
    return strcmp(url, "/api/health") != 0 && strcmp(url, "/api/login") != 0;
}

static bool is_own_password_change(struct wa_req *r, const char *p)
{
    const char *rest;

    return is_method(r, "PUT") && seg_is(p, "admins", &rest) && rest[0] == '/' &&
           strcmp(rest + 1, r->actor) == 0;
}

static enum MHD_Result route_api(struct wa_req *r, const char *p)
{
    const char *rest;

    if (strcmp(p, "health") == 0)
        return is_method(r, "GET") ? wa_api_health(r) : not_allowed(r);
    if (strcmp(p, "login") == 0)
        return is_method(r, "POST") ? wa_api_login(r) : not_allowed(r);
    if (!r->authed)
        return wa_reply_error(r, 401, NULL, "authentication required");
    if (wa_csrf_bad(r))
        return wa_reply_error(r, 403, NULL, "missing or wrong X-CSRF-Token header");
    /* A first-run password opens nothing but the way to replace it. */
    if (r->must_change && strcmp(p, "logout") != 0 && strcmp(p, "session") != 0 &&
        !is_own_password_change(r, p))
        return wa_reply_error(r, 403, "password",
                              "choose a new password first (PUT /api/admins/%s)", r->actor);

    if (strcmp(p, "logout") == 0)
        return is_method(r, "POST") ? wa_api_logout(r) : not_allowed(r);
    if (strcmp(p, "session") == 0)
        return is_method(r, "GET") ? wa_api_session(r) : not_allowed(r);
    if (seg_is(p, "rules", &rest))
        return wa_api_rules(r, rest);
    if (strcmp(p, "block") == 0)
        return is_method(r, "POST") ? wa_api_block(r, "deny") : not_allowed(r);
    if (strcmp(p, "allow") == 0)
        return is_method(r, "POST") ? wa_api_block(r, "allow") : not_allowed(r);
    if (strcmp(p, "unblock") == 0)
        return is_method(r, "POST") ? wa_api_unblock(r) : not_allowed(r);
    if (strcmp(p, "policy") == 0)
        return wa_api_policy(r);
    if (strcmp(p, "test") == 0)
        return is_method(r, "POST") ? wa_api_test(r) : not_allowed(r);
    if (strcmp(p, "reload") == 0)
        return is_method(r, "POST") ? wa_api_reload(r) : not_allowed(r);
    if (seg_is(p, "lists", &rest))
        return wa_api_lists(r, *rest ? rest + 1 : NULL);
    if (seg_is(p, "users", &rest))
        return wa_api_users(r, *rest ? rest + 1 : NULL, STORE_PROXY_USER);
    if (seg_is(p, "admins", &rest))
        return wa_api_users(r, *rest ? rest + 1 : NULL, STORE_ADMIN);
    if (strcmp(p, "logs") == 0)
        return is_method(r, "GET") ? wa_api_logs(r) : not_allowed(r);
    if (strcmp(p, "top") == 0)
        return is_method(r, "GET") ? wa_api_top(r) : not_allowed(r);
    if (strcmp(p, "series") == 0)
        return is_method(r, "GET") ? wa_api_series(r) : not_allowed(r);
    if (strcmp(p, "stats") == 0)
        return is_method(r, "GET") ? wa_api_stats(r) : not_allowed(r);
    if (strcmp(p, "settings") == 0)
        return wa_api_settings(r);
    if (strcmp(p, "audit") == 0)
        return is_method(r, "GET") ? wa_api_audit(r) : not_allowed(r);
    return wa_reply_error(r, 404, NULL, "no such endpoint");
}

static enum MHD_Result route(struct wa_req *r)
{
    enum MHD_Result ret;
    bool found;

    if (strncmp(r->url, "/api/", 5) == 0)
        return route_api(r, r->url + 5);
    if (strcmp(r->url, "/proxy.pac") == 0)
        return is_method(r, "GET") || is_method(r, "HEAD") ? wa_pac(r) : not_allowed(r);
    if (!is_method(r, "GET") && !is_method(r, "HEAD"))
        return not_allowed(r);
    ret = wa_static_serve(r, &found);
    if (found)
        return ret;
    return wa_reply_data(r, 404, "text/plain; charset=utf-8", NULL, "not found\n", 10);
}

static enum MHD_Result too_large(struct wa_req *r)
{
    return wa_reply_error(r, 413, NULL, "request body larger than %zu MiB (%zu bytes)%s",
                          r->limit >> 20, r->limit, r->limit_hint);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_size, void **con_cls)
{
    struct wa_server *srv = cls;
    struct wa_req *r = *con_cls;

    if (!r) {
        const char *cl, *host;

        r = calloc(1, sizeof(*r));
        if (!r)
            return MHD_NO;
        *con_cls = r;
        r->srv = srv;
        r->conn = conn;
        r->method = method;
        r->url = url;
        r->limit = body_limit(method, url, &r->limit_hint);
        client_text(conn, r->client, sizeof(r->client));
        host = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_HOST);
        if (!host_allowed(srv, conn_port(conn), host))
            return wa_reply_error(r, 421, NULL,
                                  "this admin server does not answer to the name '%.100s'; "
                                  "add it with --admin-host",
                                  host ? host : "");
        wa_auth_check(r);
        /* Answering before the body arrives makes MHD discard it and close. */
        if (needs_auth(url) && !r->authed)
            return wa_reply_error(r, 401, NULL, "authentication required");
        cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
        if (cl && strtoull(cl, NULL, 10) > r->limit)
            return too_large(r);
        /* Known length: one buffer of that size, not a doubling one (which copies the body
         * a few times and leaves freed pieces behind). */
        if (cl && strtoull(cl, NULL, 10) > 0) {
            r->cap = (size_t)strtoull(cl, NULL, 10) + 1;
            r->body = malloc(r->cap);
            if (!r->body)
                return MHD_NO;
            r->body[0] = '\0';
        }
        return MHD_YES;
    }
    if (r->answered) {
        *upload_size = 0;
        return MHD_YES;
    }
    if (*upload_size > 0) {
        size_t n = *upload_size;

        *upload_size = 0;
        if (r->too_big || r->len + n > r->limit) {
            r->too_big = true;
            return MHD_YES;
        }
        if (r->len + n + 1 > r->cap) {
            size_t cap = r->cap ? r->cap : 4096;
            char *nb;
            while (cap < r->len + n + 1)
                cap *= 2;
            nb = realloc(r->body, cap);
            if (!nb)
                return MHD_NO;
            r->body = nb;
            r->cap = cap;
        }
        memcpy(r->body + r->len, upload_data, n);
        r->len += n;
        r->body[r->len] = '\0';
        return MHD_YES;
    }
    if (r->too_big)
        return too_large(r);
    if (!r->body) {
        r->body = calloc(1, 1);
        if (!r->body)
            return MHD_NO;
    }
    return route(r);
}

static void on_done(void *cls, struct MHD_Connection *conn, void **con_cls,
                    enum MHD_RequestTerminationCode toe)
{
    struct wa_req *r = *con_cls;

    if (!r)
        return;
    store_pool_put(r->srv->pool, r->st);
    free(r->body);
    /* An import's parsing and compiling freed many times its size: hand the free pages back
     * (proxyd trims again once the workers let go of the old rule set). */
    if (r->cap >= WA_BODY_LIMIT)
        malloc_trim(0);
    free(r);
    *con_cls = NULL;
}

/* ---- start and stop ---- */

static char *dup_opt(const char *s)
{
    return s ? strdup(s) : NULL;
}

void wa_stop(struct wa_server *srv)
{
    if (!srv)
        return;
    if (srv->mhd)
        MHD_stop_daemon(srv->mhd);
    store_pool_free(srv->pool);
    wa_auth_free(srv->auth);
    wa_static_free(srv->files);
    pthread_mutex_destroy(&srv->policy_mu);
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
    if (!is_loopback(&ss) && !opts->allow_remote) {
        snprintf(err, errlen,
                 "admin listen address %s is not loopback; set allow_remote "
                 "(--admin-allow-remote) to expose it without TLS",
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
    pthread_mutex_init(&srv->policy_mu, NULL);
    srv->opts = *opts;
    srv->listen = dup_opt(opts->listen);
    srv->data_dir = dup_opt(opts->data_dir);
    srv->db_path = dup_opt(opts->db_path);
    srv->static_dir = dup_opt(opts->static_dir ? opts->static_dir : PX_STATIC_DIR);
    srv->pac_proxy = dup_opt(opts->pac_proxy ? opts->pac_proxy : "127.0.0.1:3128");
    srv->auth = wa_auth_new(opts->login_throttle);
    if (!srv->listen || !srv->data_dir || !srv->db_path || !srv->static_dir || !srv->pac_proxy ||
        !srv->auth) {
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
    srv->listen_addr = ss;
    srv->max_request_line = opts->max_request_line ? opts->max_request_line : 8192;
    if (hosts_copy(srv, opts, err, errlen) < 0)
        goto fail;

    if (wa_token_load(srv, err, errlen) < 0)
        goto fail;
    srv->pool = store_pool_new(srv->db_path, WA_STORE_IDLE, err, errlen);
    if (!srv->pool)
        goto fail;
    st = store_pool_get(srv->pool, err, errlen); /* opens the database: migrations run here */
    if (!st)
        goto fail;
    store_pool_put(srv->pool, st);
    srv->files = wa_static_load(srv->static_dir, err, errlen);
    if (!srv->files)
        goto fail;

    if (ss.ss_family == AF_INET6)
        flags |= MHD_USE_DUAL_STACK;
    errno = 0;
    /* Connections that say nothing for WA_CONN_IDLE_S are closed; one address holds at most
     * WA_CONN_PER_ADDR, so it alone cannot take the WA_CONN_MAX that all share. */
    srv->mhd = MHD_start_daemon(
        flags, 0, NULL, NULL, on_request, srv, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss,
        MHD_OPTION_THREAD_POOL_SIZE, (unsigned)2, MHD_OPTION_CONNECTION_TIMEOUT,
        (unsigned)WA_CONN_IDLE_S, MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)(128 * 1024),
        MHD_OPTION_CONNECTION_LIMIT, (unsigned)WA_CONN_MAX, MHD_OPTION_PER_IP_CONNECTION_LIMIT,
        (unsigned)WA_CONN_PER_ADDR, MHD_OPTION_NOTIFY_COMPLETED, on_done, srv, MHD_OPTION_END);
    if (!srv->mhd) {
        snprintf(err, errlen, "admin listen address %s: cannot listen%s%s", opts->listen,
                 errno ? ": " : "", errno ? strerror(errno) : "");
        goto fail;
    }
    di = MHD_get_daemon_info(srv->mhd, MHD_DAEMON_INFO_BIND_PORT);
    srv->port = di ? di->port : 0;
    /* Last, so a start that fails never creates an admin whose password nobody saw. */
    if (wa_first_admin(srv, first_run, err, errlen) < 0)
        goto fail;
    return srv;
fail:
    *first_run = false;
    wa_stop(srv);
    return NULL;
}
