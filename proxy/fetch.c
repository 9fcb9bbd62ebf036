/* fetch: proxyd's own downloads through its resolver and target refusal. See fetch.h.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <curl/curl.h>

#include "base/addr.h"
#include "base/status.h"
#include "proxy/fetch.h"

#define RESOLVE_TICK_MS 50
#define RESOLVE_ENTRY_MAX (ACL_HOST_MAX + 16 + DNS_MAX_ADDRS * (INET6_ADDRSTRLEN + 3))

/* One hop: where it may connect and what came back. */
struct hop {
    const struct fetch_env *env;
    struct wa_fetch *f;
    struct sockaddr_storage allowed[DNS_MAX_ADDRS]; /* the addresses that passed refusal */
    size_t nallowed;
    char *body; /* owned */
    size_t len, cap;
    bool too_big;
    const char *vetoed; /* static: why curl's connect was vetoed */
};

int fetch_init(void)
{
    return curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK ? PX_OK : PX_ERR;
}

static int64_t mono_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- resolve: proxyd's resolver on a loop of this thread's own ---- */

struct wait {
    struct ev_loop *loop;
    struct dns_resolver *r;
    struct dns_result res;
    const _Atomic bool *stop; /* the caller's: shutdown does not wait for a slow answer */
    bool stopped;
};

static void on_resolved(void *arg, const struct dns_result *res)
{
    struct wait *w = arg;

    w->res = *res;
    ev_stop(w->loop);
}

static void on_tick(struct ev_loop *loop, void *arg)
{
    struct wait *w = arg;

    if (w->stop && atomic_load(w->stop)) {
        w->stopped = true;
        ev_stop(loop); /* dns_resolver_free cancels the query */
        return;
    }
    dns_resolver_tick(w->r);
}

/* The addresses of host:port into res. PX_OK, or PX_ERR with err (also when *stop is set
 * while the answer is awaited). */
static int resolve(const struct fetch_env *env, const struct acl_host *host, uint16_t port,
                   const _Atomic bool *stop, struct dns_result *res, char *err, size_t errlen)
{
    struct wait w;
    struct dns_query *q = NULL;
    int rc;

    memset(&w, 0, sizeof(w));
    w.stop = stop;
    w.loop = ev_loop_new(env->max_fds);
    if (!w.loop) {
        snprintf(err, errlen, "%s: cannot make a resolver loop", host->text);
        return PX_ERR;
    }
    w.r = dns_resolver_new(w.loop, env->cache, env->dns_servers, env->ndns_servers,
                           env->dns_timeout_ms, err, errlen);
    if (!w.r) {
        ev_loop_free(w.loop);
        return PX_ERR;
    }
    ev_tick_set(w.loop, RESOLVE_TICK_MS, on_tick, &w);
    rc = dns_resolve(w.r, host, port, on_resolved, &w, &q, &w.res);
    if (rc == PX_AGAIN)
        rc = ev_run(w.loop) == 0 ? PX_OK : PX_ERR; /* dns_resolver_tick ends it in time */
    dns_resolver_free(w.r);
    ev_loop_free(w.loop);
    if (w.stopped) {
        snprintf(err, errlen, "%s: stopped while resolving", host->text);
        return PX_ERR;
    }
    if (rc != PX_OK) {
        snprintf(err, errlen, "%s: cannot resolve (out of memory)", host->text);
        return PX_ERR;
    }
    if (w.res.status != DNS_OK || w.res.naddrs == 0) {
        snprintf(err, errlen, "%s: cannot resolve (%s)", host->text, dns_status_str(w.res.status));
        return PX_ERR;
    }
    *res = w.res;
    return PX_OK;
}

/* ---- curl's callbacks ---- */

/* Only an address that passed refusal is connected to, whatever curl was told or found. */
static curl_socket_t open_socket(void *arg, curlsocktype purpose, struct curl_sockaddr *a)
{
    struct hop *h = arg;
    struct sockaddr_storage ss;
    bool ok = false;

    (void)purpose;
    if ((a->family != AF_INET && a->family != AF_INET6) || a->addrlen > sizeof(ss)) {
        h->vetoed = "not an IP address";
        return CURL_SOCKET_BAD;
    }
    memset(&ss, 0, sizeof(ss));
    memcpy(&ss, &a->addr, a->addrlen);
    for (size_t i = 0; i < h->nallowed && !ok; i++)
        ok = addr_same(&h->allowed[i], &ss, true);
    const char *why = origin_target_refusal(&h->env->guard, &ss);
    if (!ok || why) {
        h->vetoed = why ? why : "not an address the name resolved to";
        return CURL_SOCKET_BAD;
    }
    return socket(a->family, a->socktype, a->protocol);
}

static size_t on_body(char *data, size_t size, size_t n, void *arg)
{
    struct hop *h = arg;
    size_t len = size * n;

    if (len > h->f->max_bytes - h->len) {
        h->too_big = true;
        return 0; /* ends the transfer */
    }
    if (h->len + len + 1 > h->cap) {
        size_t cap = h->cap ? h->cap : 64 << 10;
        char *b;

        while (cap < h->len + len + 1)
            cap *= 2;
        if (cap > h->f->max_bytes + 1)
            cap = h->f->max_bytes + 1;
        b = realloc(h->body, cap);
        if (!b)
            return 0;
        h->body = b;
        h->cap = cap;
    }
    memcpy(h->body + h->len, data, len);
    h->len += len;
    h->body[h->len] = '\0';
    return len;
}

static int on_progress(void *arg, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
                       curl_off_t ulnow)
{
    struct hop *h = arg;

    (void)dltotal, (void)dlnow, (void)ultotal, (void)ulnow;
    return h->f->stop && atomic_load(h->f->stop) ? 1 : 0;
}

static void header_copy(CURL *c, const char *name, char *dst, size_t cap)
{
    struct curl_header *hd;

    dst[0] = '\0';
    if (curl_easy_header(c, name, 0, CURLH_HEADER, -1, &hd) == CURLHE_OK && hd->value &&
        strlen(hd->value) < cap)
        snprintf(dst, cap, "%s", hd->value);
}

/* ---- one hop ---- */

/* The URL's scheme, canonical host and port, checked. The URL is rewritten with the canonical
 * host into *canon (owned, curl_free). PX_OK, or PX_ERR with err. */
static int url_target(const char *url, struct acl_host *host, uint16_t *port, char **canon,
                      char *err, size_t errlen)
{
    CURLU *u = curl_url();
    char *scheme = NULL, *h = NULL, *p = NULL;
    const char *why = NULL;
    int rc = PX_ERR;

    if (!u) {
        snprintf(err, errlen, "out of memory");
        return PX_ERR;
    }
    if (curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_HOST, &h, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_PORT, &p, CURLU_DEFAULT_PORT) != CURLUE_OK) {
        snprintf(err, errlen, "%.200s: not a URL", url);
        goto out;
    }
    if (strcasecmp(scheme, "http") != 0 && strcasecmp(scheme, "https") != 0) {
        snprintf(err, errlen, "%.200s: only http and https URLs are fetched", url);
        goto out;
    }
    if (acl_host_parse(h, strlen(h), host, &why) < 0) {
        snprintf(err, errlen, "%.200s: %s", url, why);
        goto out;
    }
    long port_l = strtol(p, NULL, 10);
    if (port_l < 1 || port_l > 65535) {
        snprintf(err, errlen, "%.200s: bad port", url);
        goto out;
    }
    *port = (uint16_t)port_l;
    if (host->kind == ACL_HOST_NAME &&
        curl_url_set(u, CURLUPART_HOST, host->text, 0) != CURLUE_OK) {
        snprintf(err, errlen, "%.200s: bad host", url);
        goto out;
    }
    if (curl_url_get(u, CURLUPART_URL, canon, 0) != CURLUE_OK) {
        snprintf(err, errlen, "%.200s: not a URL", url);
        goto out;
    }
    rc = PX_OK;
out:
    curl_free(scheme);
    curl_free(h);
    curl_free(p);
    curl_url_cleanup(u);
    return rc;
}

/* The allowed addresses of the hop's target into h->allowed, and curl's pinning line.
 * PX_OK, or PX_ERR with err. */
static int hop_targets(struct hop *h, const struct acl_host *host, uint16_t port, char *pin,
                       size_t pinlen, char *err, size_t errlen)
{
    struct dns_result res;
    const char *why = NULL;
    size_t off;

    if (resolve(h->env, host, port, h->f->stop, &res, err, errlen) != PX_OK)
        return PX_ERR;
    off = (size_t)snprintf(pin, pinlen, "%s:%u:", host->text, (unsigned)port);
    h->nallowed = 0;
    for (size_t i = 0; i < res.naddrs; i++) {
        const char *r = origin_target_refusal(&h->env->guard, &res.addrs[i]);
        char text[INET6_ADDRSTRLEN];
        const struct sockaddr_storage *ss = &res.addrs[i];

        if (r) {
            why = why ? why : r;
            continue;
        }
        h->allowed[h->nallowed++] = *ss;
        if (ss->ss_family == AF_INET)
            inet_ntop(AF_INET, &((const struct sockaddr_in *)ss)->sin_addr, text, sizeof(text));
        else
            inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)ss)->sin6_addr, text, sizeof(text));
        if (off < pinlen)
            off += (size_t)snprintf(pin + off, pinlen - off, "%s%s%s%s", h->nallowed > 1 ? "," : "",
                                    ss->ss_family == AF_INET6 ? "[" : "", text,
                                    ss->ss_family == AF_INET6 ? "]" : "");
    }
    if (h->nallowed == 0) {
        snprintf(err, errlen, "%s: target refused (%s)", host->text, why ? why : "no address");
        return PX_ERR;
    }
    return PX_OK;
}

/* One request to url. PX_OK with *next (owned, free) set to a redirect's target or NULL;
 * PX_ERR with f->err. */
static int hop_run(struct hop *h, const char *url, int timeout_ms, char **next)
{
    struct wa_fetch *f = h->f;
    char pin[RESOLVE_ENTRY_MAX], cerr[CURL_ERROR_SIZE] = "", hdr[512], *canon = NULL;
    struct curl_slist *resolve_list = NULL, *headers = NULL;
    struct acl_host host;
    uint16_t port;
    CURL *c = NULL;
    CURLcode cc;
    long status = 0;
    int rc = PX_ERR;

    *next = NULL;
    if (url_target(url, &host, &port, &canon, f->err, sizeof(f->err)) != PX_OK)
        return PX_ERR;
    if (hop_targets(h, &host, port, pin, sizeof(pin), f->err, sizeof(f->err)) != PX_OK)
        goto out;
    c = curl_easy_init();
    if (!c) {
        snprintf(f->err, sizeof(f->err), "out of memory");
        goto out;
    }
    if (host.kind == ACL_HOST_NAME)
        resolve_list = curl_slist_append(NULL, pin);
    if (f->etag && *f->etag && strlen(f->etag) < 400) {
        snprintf(hdr, sizeof(hdr), "If-None-Match: %s", f->etag);
        headers = curl_slist_append(headers, hdr);
    }
    if (f->last_modified && *f->last_modified && strlen(f->last_modified) < 400) {
        snprintf(hdr, sizeof(hdr), "If-Modified-Since: %s", f->last_modified);
        headers = curl_slist_append(headers, hdr);
    }
    curl_easy_setopt(c, CURLOPT_URL, canon);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L); /* each hop is checked here */
    curl_easy_setopt(c, CURLOPT_PROXY, "");          /* never an environment's proxy */
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)timeout_ms);
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, cerr);
    curl_easy_setopt(c, CURLOPT_USERAGENT, "proxyd-list-fetch");
    curl_easy_setopt(c, CURLOPT_ACCEPT_ENCODING, "");
    /* Beside the system's store (curl's CA folder, which this leaves in place). */
    if (h->env->ca_file)
        curl_easy_setopt(c, CURLOPT_CAINFO, h->env->ca_file);
    curl_easy_setopt(c, CURLOPT_RESOLVE, resolve_list);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(c, CURLOPT_OPENSOCKETFUNCTION, open_socket);
    curl_easy_setopt(c, CURLOPT_OPENSOCKETDATA, h);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, h);
    curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, on_progress);
    curl_easy_setopt(c, CURLOPT_XFERINFODATA, h);
    curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
    cc = curl_easy_perform(c);
    if (cc != CURLE_OK) {
        if (h->too_big)
            snprintf(f->err, sizeof(f->err), "download larger than %zu bytes", f->max_bytes);
        else if (h->vetoed)
            snprintf(f->err, sizeof(f->err), "%s: target refused (%s)", host.text, h->vetoed);
        else
            snprintf(f->err, sizeof(f->err), "%s: %s", host.text,
                     cerr[0] ? cerr : curl_easy_strerror(cc));
        goto out;
    }
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    f->status = (int)status;
    if (status == 301 || status == 302 || status == 303 || status == 307 || status == 308) {
        char *loc = NULL;

        curl_easy_getinfo(c, CURLINFO_REDIRECT_URL, &loc);
        if (!loc) {
            snprintf(f->err, sizeof(f->err), "HTTP status %ld without a Location", status);
            goto out;
        }
        *next = strdup(loc);
        if (!*next) {
            snprintf(f->err, sizeof(f->err), "out of memory");
            goto out;
        }
    } else {
        header_copy(c, "ETag", f->etag_out, sizeof(f->etag_out));
        header_copy(c, "Last-Modified", f->last_modified_out, sizeof(f->last_modified_out));
    }
    rc = PX_OK;
out:
    curl_easy_cleanup(c);
    curl_slist_free_all(resolve_list);
    curl_slist_free_all(headers);
    curl_free(canon);
    return rc;
}

int fetch_list(const struct fetch_env *env, struct wa_fetch *f)
{
    int64_t deadline = mono_ms() + env->timeout_ms;
    char *url = strdup(f->url);

    f->status = 0;
    f->body = NULL;
    f->len = 0;
    f->err[0] = f->etag_out[0] = f->last_modified_out[0] = '\0';
    if (!url) {
        snprintf(f->err, sizeof(f->err), "out of memory");
        return PX_ERR;
    }
    for (int hops = 0;; hops++) {
        struct hop h = {.env = env, .f = f};
        int64_t left = deadline - mono_ms();
        char *next = NULL;
        int rc;

        if (left <= 0) {
            snprintf(f->err, sizeof(f->err), "timed out after %d ms", env->timeout_ms);
            break;
        }
        rc = hop_run(&h, url, (int)left, &next);
        free(url);
        url = NULL;
        if (rc != PX_OK) {
            free(h.body);
            break;
        }
        if (!next) {
            f->body = h.body;
            f->len = h.len;
            return PX_OK;
        }
        free(h.body);
        if (hops == FETCH_REDIRECTS_MAX) {
            free(next);
            snprintf(f->err, sizeof(f->err), "more than %d redirects", FETCH_REDIRECTS_MAX);
            break;
        }
        url = next;
    }
    free(url);
    f->status = 0;
    return PX_ERR;
}
