/* intercept: redirected and TPROXY connections, from the original destination to what their
 * first bytes are (see intercept.h). Worker thread only, but for intercept_original_dst. */
#include "proxy/intercept.h"

#include <arpa/inet.h>
#include <errno.h>
#include <linux/netfilter_ipv4.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "acl/acl_host.h"
#include "base/status.h"
#include "proxy/bump.h"
#include "proxy/conn.h"
#include "proxy/h1_parse.h"
#include "proxy/origin.h"
#include "proxy/request.h"
#include "proxy/tls_hello.h"
#include "proxy/worker.h"

#ifndef IP6T_SO_ORIGINAL_DST
#define IP6T_SO_ORIGINAL_DST                                                                       \
    80 /* linux/netfilter_ipv6/ip6_tables.h, which userland cannot                                 \
          include cleanly */
#endif

/* How long a connection's first bytes are waited for before it is judged by its destination
 * alone: a client of a protocol whose server speaks first sends nothing until it has been
 * answered, and a TLS or HTTP client sends at once. A ClientHello that comes later is still
 * judged (the tunnel reads it, tunnel.c). */
#define PEEK_MS 2000

/* The longest method of capitals a first line is taken to begin with whatever follows it
 * (RFC 9110 methods in use are at most 7; WebDAV's at most 16). */
#define METHOD_MAX 16
/* A first line of a token and a space that has not ended by this many bytes is taken for an
 * HTTP request-line (a target this long is the parser's to refuse, with 414). */
#define LINE_GUESS_MAX 2048

int intercept_original_dst(int fd, enum listener_kind kind, struct sockaddr_storage *out)
{
    socklen_t len = sizeof(*out);
    memset(out, 0, sizeof(*out));
    if (getsockname(fd, (struct sockaddr *)out, &len) < 0)
        return -1;
    if (kind == LISTENER_TPROXY)
        return 0; /* TPROXY: the socket is bound to where the client was going */
    int family = out->ss_family;
    len = sizeof(*out);
    return family == AF_INET ? getsockopt(fd, SOL_IP, SO_ORIGINAL_DST, out, &len)
                             : getsockopt(fd, SOL_IPV6, IP6T_SO_ORIGINAL_DST, out, &len);
}

/* The original destination's address as a host (an IP literal). */
static void dest_host(const struct conn *c, struct acl_host *out)
{
    char ip[INET6_ADDRSTRLEN] = "";
    const char *why;
    if (c->orig_dst.ss_family == AF_INET)
        inet_ntop(AF_INET, &((const struct sockaddr_in *)&c->orig_dst)->sin_addr, ip, sizeof(ip));
    else
        inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)&c->orig_dst)->sin6_addr, ip,
                  sizeof(ip));
    acl_host_parse(ip, strlen(ip), out, &why); /* inet_ntop's text always parses */
}

static uint16_t dest_port(const struct conn *c)
{
    return ntohs(c->orig_dst.ss_family == AF_INET
                     ? ((const struct sockaddr_in *)&c->orig_dst)->sin_port
                     : ((const struct sockaddr_in6 *)&c->orig_dst)->sin6_port);
}

void intercept_begin(struct conn *c)
{
    if (intercept_original_dst(c->cfd, c->listener->kind, &c->orig_dst) < 0) {
        conn_close(c, CLOSE_CLIENT_ERROR);
        return;
    }
    c->intercepted = true;
    conn_set_state(c, CONN_PEEK);
    conn_set_deadline(c, PEEK_MS);
}

/* ---- connections that are not HTTP ---- */

static void set_field(char *dst, size_t cap, const char *src)
{
    snprintf(dst, cap, "%s", src);
}

/* A connection whose bytes are not HTTP: one record, the policy on host (a server name or
 * the destination's address) and the destination's port, then on its way to the original
 * destination (CONN_RESOLVE) or refused. hello: the ClientHello read, NULL when there is none
 * (or none that parsed). With one, host is what a session with the client is minted for (its
 * server name, or without one the destination's address: an IP SAN), so a denied one may get
 * the block page and an allowed one be inspected; the record keeps the server name. */
static void raw_begin(struct conn *c, const char *scheme, const char *method,
                      const struct acl_host *host, const struct tls_hello *hello)
{
    const struct acl_host *sni = hello && hello->has_sni ? &hello->sni : NULL;
    struct worker *w = c->w;
    c->is_forward = true;
    if (!c->recounted) {
        c->requests++;
        STAT_ADD(c, requests_total, 1);
    }
    c->recounted = false;
    request_record_begin(c);
    set_field(c->req->rec.scheme, sizeof(c->req->rec.scheme), scheme);
    set_field(c->req->rec.method, sizeof(c->req->rec.method), method);
    set_field(c->req->rec.host, sizeof(c->req->rec.host), host->text);
    if (sni)
        memcpy(c->req->rec.sni, sni->text, sni->len + 1);
    origin_format_addr(&c->orig_dst, c->req->rec.dest, sizeof(c->req->rec.dest));
    c->req->rec.port = dest_port(c);
    c->host = *host;
    c->req->rec.decision = STORE_DENY;
    struct acl_request ar;
    if (!request_judge_raw(c, &ar)) {
        /* A ClientHello: the block page inside TLS as its host, when a CA and the setting
         * allow; else the alert. */
        if (hello && bump_block_page(c))
            return;
        if (c->tls_alert)
            tun_tls_alert(c, TLS_ALERT_ACCESS_DENIED);
        else
            conn_close(c, CLOSE_NONE);
        return;
    }
    /* A ClientHello's host is what an inspected session is minted for. */
    if (hello)
        c->inspect = request_inspect_decide(c, &ar);
    /* origin_resolve takes the original destination as the only address, refuses it like
     * any target, connects, and splices (tun_start). */
    conn_set_state(c, CONN_RESOLVE);
    conn_set_deadline(c, w->tun.connect_timeout_ms);
}

static void tls_begin(struct conn *c, const struct tls_hello *h)
{
    struct acl_host host;
    c->tls_alert = true;
    if (h->has_sni)
        host = h->sni;
    else
        dest_host(c, &host);
    raw_begin(c, "https", "TLS", &host, h);
}

static void other_begin(struct conn *c)
{
    struct acl_host host;
    dest_host(c, &host);
    raw_begin(c, "tcp", "TCP", &host, NULL);
}

static void bad_hello(struct conn *c, const char *why)
{
    struct acl_host host;
    char detail[200]; /* cut to the error column by request_record_outcome */
    dest_host(c, &host);
    c->tls_alert = true;
    raw_begin(c, "https", "TLS", &host, NULL);
    if (c->state == CONN_CLOSED || c->state == CONN_REPLY)
        return; /* refused anyway */
    /* A ClientHello that cannot be read may name anything: refused, as a denied name is. */
    c->req->rec.decision = STORE_DENY;
    snprintf(detail, sizeof(detail), "ClientHello: %s", why);
    request_record_outcome(c, CLOSE_BAD_HELLO, detail);
    tun_tls_alert(c, TLS_ALERT_DECODE_ERROR);
}

/* ---- the first bytes ---- */

enum looks { LOOKS_NO, LOOKS_MAYBE, LOOKS_YES };

/* Leading line ends past which bytes are taken for HTTP whatever follows (the parser judges). */
#define LEADING_EOL_MAX 8

/* Whether p[0..len) begins like an HTTP request-line, as any server that might read it would
 * take one: a method token (not only capitals: "M-SEARCH", "get"), a space or tab, and a line
 * that names an HTTP version; or, as before, a method of capitals and a space. Empty lines
 * before it count as HTTP too: servers skip them (RFC 9112 2.2), as the parser does. What is
 * taken for HTTP the parser judges (the rules, or 400); what is not is judged by destination
 * alone and spliced, so the test leans to HTTP: a line of a token, a space and no end yet is
 * waited for, and taken for HTTP past LINE_GUESS_MAX. A client-first text protocol's line
 * ("get key" of memcached, "PING" of Redis) names no HTTP version and stays other bytes. */
static enum looks looks_http(const char *p, size_t len)
{
    size_t eol = 0;
    while (eol < len && (p[eol] == '\r' || p[eol] == '\n'))
        if (++eol > LEADING_EOL_MAX)
            return LOOKS_YES;
    p += eol;
    len -= eol;
    size_t m = 0;
    bool capitals = true;
    while (m < len && h1_is_tchar((unsigned char)p[m])) {
        capitals &= p[m] >= 'A' && p[m] <= 'Z';
        m++;
    }
    if (m == len)
        return len <= LINE_GUESS_MAX ? LOOKS_MAYBE : LOOKS_YES;
    if (m == 0 || (p[m] != ' ' && p[m] != '\t'))
        return eol > 0 ? LOOKS_YES : LOOKS_NO;
    if (capitals && m <= METHOD_MAX && p[m] == ' ')
        return LOOKS_YES;
    const char *nl = memchr(p, '\n', len);
    size_t line = nl ? (size_t)(nl - p) : len;
    if (memmem(p, line, "HTTP/", 5))
        return LOOKS_YES;
    if (nl)
        return eol > 0 ? LOOKS_YES : LOOKS_NO;
    return len <= LINE_GUESS_MAX ? LOOKS_MAYBE : LOOKS_YES;
}

bool intercept_step_peek(struct conn *c)
{
    struct worker *w = c->w;
    if (buf_attach(&w->bufs, &c->up) < 0) {
        conn_close(c, CLOSE_OVERLOAD);
        return false;
    }
    bool ended = false;
    for (;;) {
        /* HEAD_RESERVE kept free: an HTTP head read here is rewritten in place. */
        ssize_t n = conn_recv(c->cfd, &c->c_readable, c->c_hup, &c->up, HEAD_RESERVE);
        if (n == PX_ERR) {
            conn_close(c, CLOSE_CLIENT_ERROR);
            return false;
        }
        if (n == 0)
            ended = true;
        if (n <= 0)
            break;
    }
    if (c->up.len == 0) {
        if (ended)
            conn_close(c, CLOSE_NONE);
        return false;
    }
    bool full = buf_room(&c->up) <= HEAD_RESERVE;
    struct tls_hello h;
    const char *why;
    switch (tls_hello_parse((const uint8_t *)buf_head(&c->up), c->up.len, &h, &why)) {
    case TLS_HELLO_PARSED:
        tls_begin(c, &h);
        return true;
    case TLS_HELLO_MALFORMED:
    case TLS_HELLO_RESULT_COUNT:
        bad_hello(c, why);
        return true;
    case TLS_HELLO_NEED_MORE:
        if (full) {
            bad_hello(c, "ClientHello longer than the proxy reads");
            return true;
        }
        if (!ended)
            return false;
        other_begin(c); /* cut short: nothing to judge but where it goes */
        return true;
    case TLS_HELLO_NOT_TLS:
        break;
    }
    switch (looks_http(buf_head(&c->up), c->up.len)) {
    case LOOKS_YES:
        conn_set_state(c, CONN_READ_HEAD); /* request.c reads it as an intercepted request */
        conn_set_deadline(c, w->tun.header_timeout_ms);
        return true;
    case LOOKS_MAYBE:
        if (!ended && !full)
            return false;
        break;
    case LOOKS_NO:
        break;
    }
    other_begin(c);
    return true;
}

void intercept_peek_timeout(struct conn *c)
{
    struct tls_hello h;
    const char *why;
    /* A ClientHello still coming is read by the tunnel (tun_start's read_hello). */
    if (c->up.len > 0 && tls_hello_parse((const uint8_t *)buf_head(&c->up), c->up.len, &h, &why) ==
                             TLS_HELLO_MALFORMED) {
        bad_hello(c, why);
        return;
    }
    c->first_bytes_late = true;
    other_begin(c);
}

/* Whether the origin has said anything: then the client's bytes are part of its protocol. */
static bool origin_spoke(const struct conn *c)
{
    char b;
    return c->req->rec.bytes_down > 0 || c->down.len > 0 || c->dpipe.bytes > 0 ||
           recv(c->ofd, &b, 1, MSG_PEEK | MSG_DONTWAIT) > 0;
}

int intercept_late_bytes(struct conn *c, bool ended)
{
    struct worker *w = c->w;
    struct tls_hello h;
    const char *why;
    const char *p = buf_head(&c->up);
    enum tls_hello_result tls = tls_hello_parse((const uint8_t *)p, c->up.len, &h, &why);
    enum looks http = tls == TLS_HELLO_NOT_TLS ? looks_http(p, c->up.len) : LOOKS_NO;
    if (c->up.len == 0 || (tls == TLS_HELLO_NOT_TLS && http == LOOKS_NO)) {
        c->first_bytes_late = false;
        return 1;
    }
    bool full = buf_room(&c->up) <= HEAD_RESERVE;
    if ((tls == TLS_HELLO_NEED_MORE || http == LOOKS_MAYBE) && !ended && !full)
        return 0;
    c->first_bytes_late = false;
    if (origin_spoke(c))
        return 1;
    /* Started over: the judgement by destination alone, its origin connection and its tunnel
     * are dropped unrecorded (nothing moved); the bytes are judged as the peek judges them. */
    conn_drop_origin(c);
    c->is_forward = false;
    c->recounted = true;
    req_pool_give(&w->reqs, c->req);
    c->req = NULL;
    c->why = CLOSE_NONE;
    conn_set_state(c, CONN_PEEK);
    intercept_step_peek(c);
    return -1;
}

/* ---- intercepted HTTP ---- */

int intercept_request_host(const struct conn *c, const struct h1_request *req, struct acl_host *out,
                           const char **why)
{
    int i = h1_header_find(req->headers, req->num_headers, "host");
    if (i < 0 || req->headers[i].value.len == 0) {
        dest_host(c, out);
        return 0;
    }
    const char *p = req->headers[i].value.p;
    size_t len = req->headers[i].value.len;
    /* host[:port] (RFC 9110 7.2), checked by the parser already; the port is not where the
     * request goes (the original destination's is), so it is dropped. */
    size_t end = len;
    if (p[0] == '[') {
        const char *close = memchr(p, ']', len);
        end = close ? (size_t)(close - p) + 1 : len;
    } else {
        const char *colon = memchr(p, ':', len);
        if (colon)
            end = (size_t)(colon - p);
    }
    return acl_host_parse(p, end, out, why);
}
