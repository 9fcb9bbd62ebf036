/* h1_parse.c: the strict HTTP/1.1 message-head parser, chunked-body validator and head
 * rewriter declared in h1_parse.h.
 *
 * Heads are parsed in two passes: a syntax pass that slices the start line and every field
 * line (one table lookup per byte, no calls in the loops) and a semantic pass over the few
 * header slices that decide framing and connection handling. The parser keeps no state
 * between calls, so the syntax pass must stay cheap: it is re-run on every read until the
 * head is complete.
 *
 * Limits are checked against positions, not against what arrived, so a prefix of a valid
 * head is always PX_AGAIN and an over-long line or head is refused before its end
 * arrives.
 */
#include "proxy/h1_parse.h"

#include <limits.h>
#include <string.h>

/* Character classes, one bit each, so every inner loop is one load and one test. */
#define C_TCHAR 0x01  /* token character (RFC 9110 5.6.2) */
#define C_FIELD 0x02  /* field-vchar, SP, HTAB, obs-text: allowed inside a field value */
#define C_TARGET 0x04 /* VCHAR except '#': allowed in a request-target */
#define C_HEX 0x08
#define C_DIGIT 0x10
#define C_HOST 0x20   /* unreserved: the characters we accept in a reg-name host */
#define C_QDTEXT 0x40 /* qdtext of a quoted-string (RFC 9110 5.6.4) */

/* Generated from the RFC grammar; row n holds bytes 16n..16n+15. */
static const unsigned char cclass[256] = {
    0,   0,   0,   0,   0,   0,   0,   0,   0,   66,  0,   0,   0,   0,   0,   0,   0,   0,   0,
    0,   0,   0,   0,   0,   0,   0,   0,   0,   0,   0,   0,   0,   66,  71,  6,   67,  71,  71,
    71,  71,  70,  70,  71,  71,  70,  103, 103, 70,  127, 127, 127, 127, 127, 127, 127, 127, 127,
    127, 70,  70,  70,  70,  70,  70,  70,  111, 111, 111, 111, 111, 111, 103, 103, 103, 103, 103,
    103, 103, 103, 103, 103, 103, 103, 103, 103, 103, 103, 103, 103, 103, 103, 70,  6,   70,  71,
    103, 71,  111, 111, 111, 111, 111, 111, 103, 103, 103, 103, 103, 103, 103, 103, 103, 103, 103,
    103, 103, 103, 103, 103, 103, 103, 103, 103, 70,  71,  70,  103, 0,   66,  66,  66,  66,  66,
    66,  66,  66,  66,  66,  66,  66,  66,  66,  66,  66,  66,  66,  66,  66,  66,  66,  66,  66,
    66,  66,  66,  66,  66,  66,  66,  66,  66,  66,  66,  66,  66,  66,  66,  66,  66,  66,  66,
    66,  66,  66,  66,  66,  66,  66,  66,  66,  66,  66,  66,  66,  66,  66,  66,  66,  66,  66,
    66,  66,  66,  66,  66,  66,  66,  66,  66,  66,  66,  66,  66,  66,  66,  66,  66,  66,  66,
    66,  66,  66,  66,  66,  66,  66,  66,  66,  66,  66,  66,  66,  66,  66,  66,  66,  66,  66,
    66,  66,  66,  66,  66,  66,  66,  66,  66,  66,  66,  66,  66,  66,  66,  66,  66,  66,  66,
    66,  66,  66,  66,  66,  66,  66,  66,  66,
};

#define IS(c, cls) ((cclass[(unsigned char)(c)] & (cls)) != 0)

/* ASCII lower-casing; header names and the codings we compare are ASCII. */
static inline unsigned char lower(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') ? (unsigned char)(c | 0x20) : c;
}

/* Returns the first byte in [p, end) not in class cls, or end. Unrolled because this loop
 * is where a long User-Agent or Cookie spends its time. */
static inline const char *scan(const char *p, const char *end, unsigned char cls)
{
    while (end - p >= 8) {
        if (!IS(p[0], cls))
            return p;
        if (!IS(p[1], cls))
            return p + 1;
        if (!IS(p[2], cls))
            return p + 2;
        if (!IS(p[3], cls))
            return p + 3;
        if (!IS(p[4], cls))
            return p + 4;
        if (!IS(p[5], cls))
            return p + 5;
        if (!IS(p[6], cls))
            return p + 6;
        if (!IS(p[7], cls))
            return p + 7;
        p += 8;
    }
    while (p < end && IS(*p, cls))
        p++;
    return p;
}

static bool slice_eq(struct h1_slice s, const char *lit, size_t n)
{
    return s.len == n && memcmp(s.p, lit, n) == 0;
}

/* lit must be lower case. */
static bool slice_eq_ci(struct h1_slice s, const char *lit, size_t n)
{
    if (s.len != n)
        return false;
    for (size_t i = 0; i < n; i++)
        if (lower((unsigned char)s.p[i]) != (unsigned char)lit[i])
            return false;
    return true;
}

#define EQ(s, lit) slice_eq((s), lit, sizeof(lit) - 1)
#define EQ_CI(s, lit) slice_eq_ci((s), lit, sizeof(lit) - 1)

static bool is_ows(char c)
{
    return c == ' ' || c == '\t';
}

/* Names the byte that made a line invalid, so logs say "bare LF" rather than "bad header". */
static const char *bad_byte(char c, const char *otherwise)
{
    switch (c) {
    case '\n':
        return "bare LF";
    case '\r':
        return "bare CR";
    case '\0':
        return "NUL byte";
    case ' ':
    case '\t':
        return otherwise;
    default:
        if ((unsigned char)c < 0x20 || c == 0x7f)
            return "control character";
        return otherwise;
    }
}

/* Outcome of a syntax pass over part of a head. */
enum scan_rc {
    SCAN_OK,
    SCAN_NEED,     /* ran into the end of the window */
    SCAN_BAD,      /* malformed at *pp, reason set */
    SCAN_TOO_MANY, /* more fields than the caller's array holds */
    SCAN_RC_COUNT
};

/* Skips the empty lines RFC 9112 2.2 asks a server to tolerate before a request-line. */
static enum scan_rc skip_empty_lines(const char **pp, const char *end, const char **reason)
{
    const char *p = *pp;
    enum scan_rc rc = SCAN_NEED;

    while (p < end) {
        if (*p == '\n') {
            *reason = "bare LF";
            rc = SCAN_BAD;
            break;
        }
        if (*p != '\r') {
            rc = SCAN_OK;
            break;
        }
        if (p + 1 == end)
            break;
        if (p[1] != '\n') {
            p++;
            *reason = "bare CR";
            rc = SCAN_BAD;
            break;
        }
        p += 2;
    }
    *pp = p;
    return rc;
}

/* Checks "HTTP/1.x" at *pp. The version is checked byte by byte against what has arrived so
 * that "HTTX" fails at once while "HTT" waits. */
static enum scan_rc scan_version(const char **pp, const char *end, int *minor, const char **reason)
{
    static const char pat[] = "HTTP/d.d";
    const char *p = *pp;

    /* Nearly every message says HTTP/1.1 or HTTP/1.0: what the loop below accepts, at once. */
    if (end - p >= 8 && memcmp(p, "HTTP/1.", 7) == 0 && (p[7] == '1' || p[7] == '0')) {
        *minor = p[7] - '0';
        *pp = p + 8;
        return SCAN_OK;
    }
    for (size_t i = 0; i < 8; i++, p++) {
        if (p == end) {
            *pp = p;
            return SCAN_NEED;
        }
        if (pat[i] == 'd' ? !IS(*p, C_DIGIT) : *p != pat[i]) {
            *pp = p;
            *reason = bad_byte(*p, "invalid HTTP version");
            return SCAN_BAD;
        }
    }
    if (p[-3] != '1' || (p[-1] != '0' && p[-1] != '1')) {
        *pp = p - 3;
        *reason = "unsupported HTTP version";
        return SCAN_BAD;
    }
    *minor = p[-1] - '0';
    *pp = p;
    return SCAN_OK;
}

/* Expects CRLF at *pp and steps over it. */
static enum scan_rc scan_crlf(const char **pp, const char *end, const char *otherwise,
                              const char **reason)
{
    const char *p = *pp;

    if (p == end)
        return SCAN_NEED;
    if (*p != '\r') {
        *reason = bad_byte(*p, otherwise);
        return SCAN_BAD;
    }
    if (++p == end) {
        *pp = p;
        return SCAN_NEED;
    }
    if (*p != '\n') {
        *pp = p;
        *reason = "bare CR";
        return SCAN_BAD;
    }
    *pp = p + 1;
    return SCAN_OK;
}

enum hdr_kind {
    HDR_OTHER,
    HDR_HOST,
    HDR_EXPECT,
    HDR_UPGRADE,
    HDR_CONNECTION,
    HDR_CONTENT_LENGTH,
    HDR_TRANSFER_ENCODING,
    HDR_PROXY_AUTHORIZATION,
    HDR_HOP_BY_HOP, /* Keep-Alive, Proxy-Connection, TE, Trailer: never forwarded */
    HDR_KIND_COUNT
};

/* Classifies a field name by its length first, so most names cost one switch. */
static enum hdr_kind hdr_kind_of(struct h1_slice name)
{
    switch (name.len) {
    case 2:
        return EQ_CI(name, "te") ? HDR_HOP_BY_HOP : HDR_OTHER;
    case 4:
        return EQ_CI(name, "host") ? HDR_HOST : HDR_OTHER;
    case 6:
        return EQ_CI(name, "expect") ? HDR_EXPECT : HDR_OTHER;
    case 7:
        return EQ_CI(name, "upgrade")   ? HDR_UPGRADE
               : EQ_CI(name, "trailer") ? HDR_HOP_BY_HOP
                                        : HDR_OTHER;
    case 10:
        return EQ_CI(name, "connection")   ? HDR_CONNECTION
               : EQ_CI(name, "keep-alive") ? HDR_HOP_BY_HOP
                                           : HDR_OTHER;
    case 14:
        return EQ_CI(name, "content-length") ? HDR_CONTENT_LENGTH : HDR_OTHER;
    case 16:
        return EQ_CI(name, "proxy-connection") ? HDR_HOP_BY_HOP : HDR_OTHER;
    case 17:
        return EQ_CI(name, "transfer-encoding") ? HDR_TRANSFER_ENCODING : HDR_OTHER;
    case 19:
        return EQ_CI(name, "proxy-authorization") ? HDR_PROXY_AUTHORIZATION : HDR_OTHER;
    default:
        return HDR_OTHER;
    }
}

/* Syntax pass over the field lines from *pp to the empty line that ends the head.
 * On SCAN_OK *pp is just past the final CRLF. */
static enum scan_rc scan_fields(const char **pp, const char *end, struct h1_header *hdrs,
                                size_t max, size_t *num, const char **reason)
{
    const char *p = *pp;
    size_t n = 0;
    enum scan_rc rc;

    for (;;) {
        if (p == end) {
            rc = SCAN_NEED;
            break;
        }
        if (*p == '\r') {
            rc = scan_crlf(&p, end, NULL, reason);
            break;
        }
        if (n == max) {
            *reason = "too many header fields";
            rc = SCAN_TOO_MANY;
            break;
        }

        const char *name = p;
        p = scan(p, end, C_TCHAR);
        if (p == end) {
            rc = SCAN_NEED;
            break;
        }
        if (*p != ':' || p == name) {
            rc = SCAN_BAD;
            if (p == name && is_ows(*p))
                *reason = "obs-fold not allowed";
            else if (is_ows(*p))
                *reason = "whitespace before colon";
            else
                *reason = bad_byte(*p, "invalid header name");
            break;
        }
        hdrs[n].name.p = name;
        hdrs[n].name.len = (size_t)(p - name);
        hdrs[n].kind = (unsigned char)hdr_kind_of(hdrs[n].name);
        p++;

        while (p < end && is_ows(*p))
            p++;
        const char *value = p;
        p = scan(p, end, C_FIELD);
        const char *value_end = p;
        rc = scan_crlf(&p, end, "invalid header value", reason);
        if (rc != SCAN_OK)
            break;
        while (value_end > value && is_ows(value_end[-1]))
            value_end--;
        hdrs[n].value.p = value;
        hdrs[n].value.len = (size_t)(value_end - value);
        n++;
    }
    *num = n;
    *pp = p;
    return rc;
}

/* Splits a comma-separated list (RFC 9110 5.6.1): skips empty elements and OWS, stores the
 * next element in *out. Returns false when the list is exhausted. */
static bool list_next(const char **pp, const char *end, struct h1_slice *out)
{
    const char *p = *pp;

    while (p < end && (*p == ',' || is_ows(*p)))
        p++;
    if (p == end)
        return false;
    const char *start = p;
    while (p < end && *p != ',')
        p++;
    const char *stop = p;
    while (is_ows(stop[-1]))
        stop--;
    out->p = start;
    out->len = (size_t)(stop - start);
    *pp = p;
    return true;
}

bool h1_is_tchar(unsigned char c)
{
    return IS(c, C_TCHAR);
}

static bool is_token(struct h1_slice s)
{
    return s.len > 0 && scan(s.p, s.p + s.len, C_TCHAR) == s.p + s.len;
}

/* What the framing and connection headers of a head say, gathered in one pass. */
struct head_info {
    size_t hosts;
    int host_idx;
    size_t content_lengths;
    size_t proxy_auths;
    int content_length_idx;
    int te_idx;
    int expect_idx;
    int upgrade_idx;
    int proxy_auth_idx;
    bool conn_close;
    bool conn_keep_alive;
    bool conn_upgrade;
    bool te_seen;
};

/* The Transfer-Encoding lines so far, read as one list of codings in order. */
struct te_state {
    bool chunked_seen, chunked_last, unknown_coding;
};

/* One Connection header's options into hi. Returns NULL, or what is wrong. */
static const char *connection_scan(struct h1_slice v, struct head_info *hi)
{
    const char *p = v.p, *end = v.p + v.len;
    struct h1_slice tok;

    while (list_next(&p, end, &tok)) {
        if (!is_token(tok))
            return "invalid Connection header";
        if (EQ_CI(tok, "close"))
            hi->conn_close = true;
        else if (EQ_CI(tok, "keep-alive"))
            hi->conn_keep_alive = true;
        else if (EQ_CI(tok, "upgrade"))
            hi->conn_upgrade = true;
    }
    return NULL;
}

/* One Transfer-Encoding header's codings into te. Returns NULL, or what is wrong. */
static const char *transfer_encoding_scan(struct h1_slice v, struct te_state *te)
{
    const char *p = v.p, *end = v.p + v.len;
    struct h1_slice tok;

    while (list_next(&p, end, &tok)) {
        if (!is_token(tok))
            return "invalid Transfer-Encoding";
        if (EQ_CI(tok, "chunked")) {
            if (te->chunked_seen)
                return "chunked applied more than once";
            te->chunked_seen = te->chunked_last = true;
        } else {
            te->chunked_last = false;
            te->unknown_coding = true;
        }
    }
    return NULL;
}

/* Whether the framing headers, all seen, can be read only one way. Returns NULL, or what is
 * wrong with *status_hint set. */
static const char *framing_judge(const struct head_info *hi, const struct te_state *te,
                                 int *status_hint)
{
    if (hi->proxy_auths > 1)
        return "multiple Proxy-Authorization headers";
    if (hi->content_lengths > 1)
        return "duplicate Content-Length";
    if (!hi->te_seen)
        return NULL;
    if (hi->content_lengths)
        return "Content-Length with Transfer-Encoding";
    if (te->chunked_seen && !te->chunked_last)
        return "chunked is not the final transfer coding";
    if (te->unknown_coding) {
        *status_hint = 501;
        return "unsupported transfer coding";
    }
    if (!te->chunked_seen)
        return "empty Transfer-Encoding";
    return NULL;
}

/* Semantic pass shared by requests and responses. Returns NULL or the reason the head
 * is malformed (*status_hint set to 501 for an unknown transfer coding). */
static const char *head_info_collect(const struct h1_header *hdrs, size_t n, struct head_info *hi,
                                     int *status_hint)
{
    struct te_state te = {false, false, false};
    const char *why = NULL;

    memset(hi, 0, sizeof(*hi));
    hi->content_length_idx = hi->te_idx = hi->expect_idx = -1;
    hi->upgrade_idx = hi->proxy_auth_idx = hi->host_idx = -1;
    *status_hint = 400;

    for (size_t i = 0; i < n && !why; i++) {
        switch (hdrs[i].kind) {
        case HDR_HOST:
            hi->hosts++;
            hi->host_idx = (int)i;
            break;
        case HDR_EXPECT:
            hi->expect_idx = (int)i;
            break;
        case HDR_UPGRADE:
            hi->upgrade_idx = (int)i;
            break;
        case HDR_PROXY_AUTHORIZATION:
            hi->proxy_auths++;
            hi->proxy_auth_idx = (int)i;
            break;
        case HDR_CONTENT_LENGTH:
            hi->content_lengths++;
            hi->content_length_idx = (int)i;
            break;
        case HDR_CONNECTION:
            why = connection_scan(hdrs[i].value, hi);
            break;
        case HDR_TRANSFER_ENCODING:
            hi->te_seen = true;
            hi->te_idx = (int)i;
            why = transfer_encoding_scan(hdrs[i].value, &te);
            break;
        default:
            break;
        }
    }
    return why ? why : framing_judge(hi, &te, status_hint);
}

/* Content-Length = 1*DIGIT, no sign, no list; values past INT64_MAX are refused so that
 * callers may keep lengths in off_t. */
static bool parse_content_length(struct h1_slice v, uint64_t *out)
{
    uint64_t n = 0;

    if (v.len == 0)
        return false;
    for (size_t i = 0; i < v.len; i++) {
        if (!IS(v.p[i], C_DIGIT))
            return false;
        unsigned d = (unsigned)(v.p[i] - '0');
        if (n > ((uint64_t)INT64_MAX - d) / 10)
            return false;
        n = n * 10 + d;
    }
    *out = n;
    return true;
}

/* The path reported for "http://host" with nothing after the authority. */
static const char root_path[] = "/";

/* authority = host [ ":" port ]; host is a reg-name of unreserved characters or an IPv6
 * literal, then made canonical. Userinfo is refused: it is deprecated and a classic way to
 * dress up a URL. */
static const char *parse_authority(const char *p, const char *end, bool port_required,
                                   struct h1_request *req)
{
    const char *q, *why;

    if (p == end)
        return "empty host";
    if (memchr(p, '@', (size_t)(end - p)))
        return "userinfo in request-target";
    if (*p == '[') {
        bool colon = false;
        for (q = p + 1; q < end && (IS(*q, C_HEX) || *q == ':' || *q == '.'); q++)
            colon |= *q == ':';
        if (q == end || *q != ']')
            return "invalid IPv6 literal";
        if (q == p + 1)
            return "empty host";
        if (!colon)
            return "invalid IPv6 literal";
        if (acl_host_parse(p + 1, (size_t)(q - p - 1), &req->host, &why) != 0)
            return why;
        q++;
    } else {
        q = scan(p, end, C_HOST);
        if (q == p)
            return q < end && *q == ':' ? "empty host" : "invalid host";
        if (q < end && *q != ':')
            return "invalid host";
        if (acl_host_parse(p, (size_t)(q - p), &req->host, &why) != 0)
            return why;
    }

    if (q == end) {
        if (port_required)
            return "missing port";
        req->port = 80;
        return NULL;
    }
    if (*q != ':')
        return "invalid host";
    q++;
    if (q == end || end - q > 5)
        return "invalid port";
    unsigned port = 0;
    for (; q < end; q++) {
        if (!IS(*q, C_DIGIT))
            return "invalid port";
        port = port * 10 + (unsigned)(*q - '0');
    }
    if (port == 0 || port > 65535)
        return "invalid port";
    req->port = (uint16_t)port;
    return NULL;
}

/* Host = uri-host [ ":" port ] (RFC 9110 7.2), the host as acl_host_parse takes it; empty
 * is allowed. The target's host is what proxyd goes to and what it sends upstream; a Host
 * header that is not even a host is refused rather than passed over (RFC 9112 3.2). target:
 * the request-target's host, parsed (len 0 for origin-form). */
static bool host_header_ok(struct h1_slice v, const struct acl_host *target)
{
    const char *end = v.p + v.len, *host_end;
    struct acl_host h;
    const char *why;

    if (v.len == 0)
        return true;
    if (v.p[0] == '[') {
        host_end = memchr(v.p, ']', v.len);
        if (!host_end)
            return false;
        host_end++;
    } else {
        host_end = memchr(v.p, ':', v.len);
        if (!host_end)
            host_end = end;
    }
    if (host_end < end) {
        if (*host_end != ':' || end - host_end - 1 > 5)
            return false;
        for (const char *d = host_end + 1; d < end; d++)
            if (!IS(*d, C_DIGIT))
                return false;
    }
    /* A header that spells the target's host in its canonical form (what a client sends)
     * is a host without a second parse: canonical text always parses again, which the fuzz
     * oracle (fuzz_acl_policy) checks. The parse cost about 570 instructions a request. */
    if (target->len > 0 && (size_t)(host_end - v.p) == target->len &&
        memcmp(v.p, target->text, target->len) == 0)
        return true;
    return acl_host_parse(v.p, (size_t)(host_end - v.p), &h, &why) == 0;
}

/* Classifies and splits req->target. Returns NULL or the reason it is refused. */
static const char *parse_target(struct h1_request *req)
{
    const char *t = req->target.p;
    const char *end = t + req->target.len;
    const bool is_connect = EQ(req->method, "CONNECT");

    if (is_connect) {
        req->form = H1_FORM_AUTHORITY;
        return parse_authority(t, end, true, req);
    }
    if (*t == '/') {
        req->form = H1_FORM_ORIGIN;
        return NULL;
    }
    if (req->target.len == 1 && *t == '*') {
        if (!EQ(req->method, "OPTIONS"))
            return "asterisk-form is only for OPTIONS";
        req->form = H1_FORM_ASTERISK;
        return NULL;
    }

    /* absolute-form: scheme "://" authority [ path-abempty [ "?" query ] ] */
    const char *p = t;
    if (!((*p | 0x20) >= 'a' && (*p | 0x20) <= 'z'))
        return "invalid request-target";
    while (p < end && (IS(*p, C_DIGIT) || ((*p | 0x20) >= 'a' && (*p | 0x20) <= 'z') || *p == '+' ||
                       *p == '-' || *p == '.'))
        p++;
    if (p == end || *p != ':')
        return "invalid request-target";
    req->scheme.p = t;
    req->scheme.len = (size_t)(p - t);
    if (!EQ_CI(req->scheme, "http"))
        return "unsupported URI scheme";
    p++;
    if (end - p < 2 || p[0] != '/' || p[1] != '/')
        return "invalid request-target";
    p += 2;

    const char *auth_end = p;
    while (auth_end < end && *auth_end != '/' && *auth_end != '?')
        auth_end++;
    const char *why = parse_authority(p, auth_end, false, req);
    if (why)
        return why;
    if (auth_end == end) {
        req->path.p = root_path;
        req->path.len = 1;
    } else if (*auth_end == '?') {
        /* "http://h?q" is legal but would need a '/' we cannot slice; no browser sends it */
        return "query without path";
    } else {
        req->path.p = auth_end;
        req->path.len = (size_t)(end - auth_end);
    }
    req->form = H1_FORM_ABSOLUTE;
    return NULL;
}

static int fail(struct h1_error *err, int status, const char *reason)
{
    err->status = status;
    err->reason = reason;
    return PX_ERR;
}

/* What a broken head is answered with: a request's own statuses, or 502 for every fault of a
 * response (the origin broke it, not the client). */
struct head_errs {
    int line_status, head_status, bad_status; /* start line too long; head too large; else */
    const char *line_too_long;
};

static const struct head_errs request_errs = {414, 431, 400, "request line too long"};
static const struct head_errs response_errs = {502, 502, 502, "status line too long"};

/* Turns a failed syntax pass into the return value: a position past a limit means the limit
 * was exceeded (whatever byte stopped the scan), running out of a window cut by a limit
 * too. */
static int syntax_fail(enum scan_rc rc, const char *reason, bool head_cut, bool line_over,
                       const struct head_errs *e, struct h1_error *err)
{
    if (line_over)
        return fail(err, e->line_status, "start line too long");
    if (rc == SCAN_TOO_MANY)
        return fail(err, e->head_status, reason);
    if (rc == SCAN_NEED)
        return head_cut ? fail(err, e->head_status, "header section too large") : PX_AGAIN;
    return fail(err, e->bad_status, reason);
}

/* Where the head must end within buf: at len, or at the head limit when len reaches it
 * (*head_cut). The head's length is returned as an int, so no limit may let it grow past
 * INT_MAX. */
static const char *head_window(const char *buf, size_t len, const struct h1_limits *lim,
                               bool *head_cut)
{
    const size_t max_head =
        lim->max_head_bytes < (size_t)INT_MAX ? lim->max_head_bytes : (size_t)INT_MAX;

    *head_cut = len >= max_head;
    return buf + (*head_cut ? max_head : len);
}

/* Judges a scanned start line of line_len bytes. Returns PX_OK when it is complete and within
 * its limit, else what the parser returns. */
static int start_line_check(enum scan_rc rc, const char *reason, size_t line_len, bool head_cut,
                            const struct h1_limits *lim, const struct head_errs *e,
                            struct h1_error *err)
{
    const bool line_over = line_len > lim->max_request_line;

    if (rc != SCAN_OK)
        return syntax_fail(rc, reason, head_cut, line_over, e, err);
    if (line_over)
        return fail(err, e->line_status, e->line_too_long);
    return PX_OK;
}

/* Scans the header fields up to and including the empty line. Returns PX_OK with *pp past the
 * head, else what the parser returns. */
static int fields_scan(const char **pp, const char *end, bool head_cut, const struct h1_limits *lim,
                       const struct head_errs *e, struct h1_header *hdrs, size_t *num_headers,
                       struct h1_error *err)
{
    const char *reason = NULL;
    enum scan_rc rc = scan_fields(pp, end, hdrs, lim->max_headers, num_headers, &reason);

    return rc == SCAN_OK ? PX_OK : syntax_fail(rc, reason, head_cut, false, e, err);
}

/* HTTP/1.1 stays open unless told to close; HTTP/1.0 only when asked to stay open. */
static bool keep_alive_of(const struct head_info *hi, int minor_version)
{
    return minor_version == 1 ? !hi->conn_close : hi->conn_keep_alive && !hi->conn_close;
}

/* request-line = method SP request-target SP HTTP-version CRLF, from *pp. Sets *line_end
 * where the version ends once it is complete (else leaves it NULL). */
static enum scan_rc request_line_scan(const char **pp, const char *end, struct h1_request *req,
                                      const char **line_end, const char **reason)
{
    const char *line = *pp, *p = *pp;
    enum scan_rc rc;

    p = scan(p, end, C_TCHAR);
    if (p == end) {
        rc = SCAN_NEED;
    } else if (*p != ' ' || p == line) {
        *reason = bad_byte(*p, "invalid method");
        rc = SCAN_BAD;
    } else {
        req->method.p = line;
        req->method.len = (size_t)(p - line);
        const char *target = ++p;
        p = scan(p, end, C_TARGET);
        if (p == end) {
            rc = SCAN_NEED;
        } else if (*p != ' ' || p == target) {
            *reason =
                *p == '#' ? "fragment in request-target" : bad_byte(*p, "invalid request-target");
            rc = SCAN_BAD;
        } else {
            req->target.p = target;
            req->target.len = (size_t)(p - target);
            p++;
            rc = scan_version(&p, end, &req->minor_version, reason);
            if (rc == SCAN_OK) {
                *line_end = p;
                rc = scan_crlf(&p, end, "invalid request line", reason);
            }
        }
    }
    *pp = p;
    return rc;
}

/* The semantic pass of a complete request head: target, Host, framing, connection. Returns
 * PX_OK, or PX_ERR with err filled. */
static int request_meaning(struct h1_request *req, struct h1_error *err)
{
    const struct h1_header *hdrs = req->headers;
    const char *why = parse_target(req);
    if (why)
        return fail(err, 400, why);

    struct head_info hi;
    int status;
    why = head_info_collect(hdrs, req->num_headers, &hi, &status);
    if (why)
        return fail(err, status, why);
    if (hi.hosts > 1)
        return fail(err, 400, "multiple Host headers");
    if (hi.hosts == 0 && req->minor_version == 1)
        return fail(err, 400, "missing Host header");
    if (hi.host_idx >= 0 && !host_header_ok(hdrs[hi.host_idx].value, &req->host))
        return fail(err, 400, "invalid Host header");

    if (hi.te_seen) {
        if (req->minor_version == 0)
            return fail(err, 400, "Transfer-Encoding in HTTP/1.0");
        req->body = H1_BODY_CHUNKED;
    } else if (hi.content_length_idx >= 0) {
        if (!parse_content_length(hdrs[hi.content_length_idx].value, &req->content_length))
            return fail(err, 400, "invalid Content-Length");
        req->body = H1_BODY_LENGTH;
    } else {
        req->body = H1_BODY_NONE;
    }

    req->keep_alive = keep_alive_of(&hi, req->minor_version);
    req->expect_continue = hi.expect_idx >= 0 && EQ_CI(hdrs[hi.expect_idx].value, "100-continue");
    req->upgrade_websocket = req->minor_version == 1 && EQ(req->method, "GET") && hi.conn_upgrade &&
                             hi.upgrade_idx >= 0 && EQ_CI(hdrs[hi.upgrade_idx].value, "websocket");
    if (hi.proxy_auth_idx >= 0)
        req->proxy_authorization = hdrs[hi.proxy_auth_idx].value;
    return PX_OK;
}

int h1_parse_request(const char *buf, size_t len, const struct h1_limits *lim,
                     struct h1_request *req, struct h1_error *err)
{
    struct h1_header *hdrs = req->headers;
    bool head_cut;
    const char *end = head_window(buf, len, lim, &head_cut);
    const char *p = buf, *reason = NULL;
    enum scan_rc rc;
    int ret;

    memset(req, 0, sizeof(*req));
    req->headers = hdrs;

    rc = skip_empty_lines(&p, end, &reason);
    if (rc != SCAN_OK)
        return syntax_fail(rc, reason, head_cut, false, &request_errs, err);

    const char *line = p, *line_end = NULL;
    rc = request_line_scan(&p, end, req, &line_end, &reason);
    /* The line's length is known once the version is complete; until then, every byte
     * so far counts. */
    ret = start_line_check(rc, reason, (size_t)((line_end ? line_end : p) - line), head_cut, lim,
                           &request_errs, err);
    if (ret != PX_OK)
        return ret;
    ret = fields_scan(&p, end, head_cut, lim, &request_errs, hdrs, &req->num_headers, err);
    if (ret != PX_OK)
        return ret;
    /* The head is complete: now what it means. */
    ret = request_meaning(req, err);
    return ret != PX_OK ? ret : (int)(p - buf);
}

/* status-line = HTTP-version SP 3DIGIT [ SP reason-phrase ] CRLF, from *pp; a missing
 * "SP reason" is tolerated because old servers send "HTTP/1.1 204\r\n". Sets *line_end as
 * request_line_scan does. */
static enum scan_rc status_line_scan(const char **pp, const char *end, struct h1_response *resp,
                                     const char **line_end, const char **reason)
{
    const char *p = *pp, *r;
    int status = 0;
    enum scan_rc rc = scan_version(&p, end, &resp->minor_version, reason);

    if (rc != SCAN_OK)
        goto out;
    if (p == end) {
        rc = SCAN_NEED;
        goto out;
    }
    if (*p != ' ') {
        *reason = bad_byte(*p, "invalid status line");
        rc = SCAN_BAD;
        goto out;
    }
    p++;
    for (int i = 0; i < 3; i++) {
        if (p == end) {
            rc = SCAN_NEED;
            goto out;
        }
        if (!IS(*p, C_DIGIT)) {
            *reason = bad_byte(*p, "invalid status code");
            rc = SCAN_BAD;
            goto out;
        }
        status = status * 10 + (*p++ - '0');
    }
    resp->status = status;
    r = p;
    if (p < end && *p == ' ') {
        r = ++p;
        p = scan(p, end, C_FIELD);
    }
    resp->reason.p = r;
    resp->reason.len = (size_t)(p - r);
    *line_end = p;
    rc = scan_crlf(&p, end, "invalid reason phrase", reason);
out:
    *pp = p;
    return rc;
}

/* The semantic pass of a complete response head: framing and connection. Returns PX_OK, or
 * PX_ERR with err filled (502). */
static int response_meaning(struct h1_response *resp, bool request_was_head, struct h1_error *err)
{
    const struct h1_header *hdrs = resp->headers;
    struct head_info hi;
    int status;
    const char *why = head_info_collect(hdrs, resp->num_headers, &hi, &status);
    if (why)
        return fail(err, 502, why);
    if (hi.te_seen && resp->minor_version == 0)
        return fail(err, 502, "Transfer-Encoding in HTTP/1.0");
    /* Checked even when the length is ignored below: a bad value means a broken origin. */
    if (hi.content_length_idx >= 0 &&
        !parse_content_length(hdrs[hi.content_length_idx].value, &resp->content_length))
        return fail(err, 502, "invalid Content-Length");

    if (request_was_head || resp->status < 200 || resp->status == 204 || resp->status == 304) {
        resp->body = H1_BODY_NONE;
        resp->content_length = 0;
    } else if (hi.te_seen) {
        resp->body = H1_BODY_CHUNKED;
    } else if (hi.content_length_idx >= 0) {
        resp->body = H1_BODY_LENGTH;
    } else {
        resp->body = H1_BODY_CLOSE;
    }

    resp->keep_alive = keep_alive_of(&hi, resp->minor_version);
    if (resp->body == H1_BODY_CLOSE)
        resp->keep_alive = false;
    resp->upgrade_websocket = resp->status == 101 && hi.upgrade_idx >= 0 &&
                              EQ_CI(hdrs[hi.upgrade_idx].value, "websocket");
    return PX_OK;
}

int h1_parse_response(const char *buf, size_t len, const struct h1_limits *lim,
                      bool request_was_head, struct h1_response *resp, struct h1_error *err)
{
    struct h1_header *hdrs = resp->headers;
    bool head_cut;
    const char *end = head_window(buf, len, lim, &head_cut);
    const char *p = buf, *reason = NULL, *line_end = NULL;
    enum scan_rc rc;
    int ret;

    memset(resp, 0, sizeof(*resp));
    resp->headers = hdrs;

    rc = status_line_scan(&p, end, resp, &line_end, &reason);
    ret = start_line_check(rc, reason, (size_t)((line_end ? line_end : p) - buf), head_cut, lim,
                           &response_errs, err);
    if (ret != PX_OK)
        return ret;
    if (resp->status < 100 || resp->status > 599)
        return fail(err, 502, "invalid status code");
    ret = fields_scan(&p, end, head_cut, lim, &response_errs, hdrs, &resp->num_headers, err);
    if (ret != PX_OK)
        return ret;
    ret = response_meaning(resp, request_was_head, err);
    return ret != PX_OK ? ret : (int)(p - buf);
}

/* ---- chunked bodies ---- */

/* States of struct h1_chunked.state; 0 is the state of a zeroed struct. The size-line states
 * come first and the trailer states last so that line accounting is a range test. */
enum chunk_state {
    CH_SIZE_FIRST,   /* first hex digit of a chunk-size */
    CH_SIZE,         /* further hex digits */
    CH_SIZE_WS,      /* BWS after the size or after a complete extension */
    CH_EXT_PRE_NAME, /* after ';': BWS, then an extension name */
    CH_EXT_NAME,
    CH_EXT_AFTER_NAME, /* BWS after a name: '=', ';' or CR may follow */
    CH_EXT_PRE_VAL,    /* after '=': BWS, then a token or a quoted-string */
    CH_EXT_VAL,        /* token value */
    CH_EXT_QS,         /* inside a quoted-string */
    CH_EXT_QS_ESC,     /* after a backslash inside a quoted-string */
    CH_SIZE_LF,        /* CR seen at the end of the size line */
    CH_DATA,
    CH_DATA_CR,
    CH_DATA_LF,
    CH_TRAILER_START, /* start of a trailer line, or the CR of the final CRLF */
    CH_TRAILER_NAME,
    CH_TRAILER_VALUE,
    CH_TRAILER_LF,
    CH_FINAL_LF,
    CH_DONE,
    CH_FAILED, /* sticky: a broken body stays broken */
    CH_STATE_COUNT
};

#define CHUNK_LINE_MAX 4096      /* one size line with extensions, or one trailer line */
#define CHUNK_TRAILERS_MAX 16384 /* all trailer lines together */
#define CHUNK_SIZE_DIGITS 16     /* 16 hex digits fill a uint64_t */

/* Size-line and extension states (RFC 9112 7.1.1). Returns the next state, or -1 with
 * *reason set. */
static int chunk_size_step(int s, char c, uint64_t *size, const char **reason)
{
    switch (s) {
    case CH_SIZE_FIRST:
    case CH_SIZE:
        if (IS(c, C_HEX)) {
            unsigned d = IS(c, C_DIGIT) ? (unsigned)(c - '0') : (unsigned)((c | 0x20) - 'a' + 10);
            *size = (*size << 4) | d;
            return CH_SIZE;
        }
        if (s == CH_SIZE_FIRST)
            break;
        return chunk_size_step(CH_SIZE_WS, c, size, reason);
    case CH_SIZE_WS:
        if (c == '\r')
            return CH_SIZE_LF;
        if (c == ';')
            return CH_EXT_PRE_NAME;
        if (is_ows(c))
            return CH_SIZE_WS;
        break;
    case CH_EXT_PRE_NAME:
        if (IS(c, C_TCHAR))
            return CH_EXT_NAME;
        if (is_ows(c))
            return s;
        break;
    case CH_EXT_NAME:
    case CH_EXT_AFTER_NAME:
        if (s == CH_EXT_NAME && IS(c, C_TCHAR))
            return s;
        if (is_ows(c))
            return CH_EXT_AFTER_NAME;
        if (c == '=')
            return CH_EXT_PRE_VAL;
        if (c == ';')
            return CH_EXT_PRE_NAME;
        if (c == '\r')
            return CH_SIZE_LF;
        break;
    case CH_EXT_PRE_VAL:
        if (c == '"')
            return CH_EXT_QS;
        if (IS(c, C_TCHAR))
            return CH_EXT_VAL;
        if (is_ows(c))
            return s;
        break;
    case CH_EXT_VAL:
        if (IS(c, C_TCHAR))
            return s;
        if (is_ows(c))
            return CH_SIZE_WS;
        if (c == ';')
            return CH_EXT_PRE_NAME;
        if (c == '\r')
            return CH_SIZE_LF;
        break;
    case CH_EXT_QS:
        if (c == '"')
            return CH_SIZE_WS;
        if (c == '\\')
            return CH_EXT_QS_ESC;
        if (IS(c, C_QDTEXT))
            return s;
        break;
    case CH_EXT_QS_ESC:
        if (IS(c, C_FIELD))
            return CH_EXT_QS;
        break;
    default:
        break;
    }
    *reason = bad_byte(c, s <= CH_SIZE ? "invalid chunk size" : "invalid chunk extension");
    return -1;
}

/* Trailer-section states: field lines validated like header lines, then the final CRLF. */
static int chunk_trailer_step(int s, char c, const char **reason)
{
    switch (s) {
    case CH_TRAILER_START:
        if (c == '\r')
            return CH_FINAL_LF;
        if (IS(c, C_TCHAR))
            return CH_TRAILER_NAME;
        *reason = is_ows(c) ? "obs-fold not allowed" : bad_byte(c, "invalid trailer field");
        return -1;
    case CH_TRAILER_NAME:
        if (IS(c, C_TCHAR))
            return s;
        if (c == ':')
            return CH_TRAILER_VALUE;
        *reason = is_ows(c) ? "whitespace before colon" : bad_byte(c, "invalid trailer field");
        return -1;
    case CH_TRAILER_VALUE:
        if (IS(c, C_FIELD))
            return s;
        if (c == '\r')
            return CH_TRAILER_LF;
        *reason = bad_byte(c, "invalid trailer value");
        return -1;
    default:
        *reason = "invalid chunked state";
        return -1;
    }
}

/* Counts one byte of state s against the line and trailer limits. Returns NULL, or which
 * limit it exceeds. */
static const char *chunk_budget(struct h1_chunked *st, int s)
{
    if (s <= CH_SIZE_LF) {
        if (++st->line_bytes > CHUNK_LINE_MAX)
            return "chunk size line too long";
    } else if (s >= CH_TRAILER_START) {
        if (++st->line_bytes > CHUNK_LINE_MAX)
            return "trailer line too long";
        /* a trailer section carries no data, so remaining counts its bytes */
        if (++st->remaining > CHUNK_TRAILERS_MAX)
            return "trailer section too large";
    }
    return NULL;
}

/* The state after byte c in state s (any but CH_DATA), or -1 with *reason set. */
static int chunk_step(struct h1_chunked *st, int s, char c, const char **reason)
{
    if (s < CH_SIZE_LF) {
        if (IS(c, C_HEX) && s <= CH_SIZE && st->line_bytes > CHUNK_SIZE_DIGITS) {
            *reason = "chunk size too large";
            return -1;
        }
        return chunk_size_step(s, c, &st->remaining, reason);
    }
    if (s == CH_SIZE_LF || s == CH_DATA_LF || s == CH_TRAILER_LF || s == CH_FINAL_LF) {
        if (c != '\n') {
            *reason = "bare CR";
            return -1;
        }
        st->line_bytes = 0;
        if (s == CH_SIZE_LF)
            return st->remaining ? CH_DATA : CH_TRAILER_START;
        if (s == CH_DATA_LF)
            return CH_SIZE_FIRST;
        if (s == CH_TRAILER_LF)
            return CH_TRAILER_START;
        return CH_DONE;
    }
    if (s == CH_DATA_CR) {
        if (c != '\r') {
            *reason = c == '\n' ? "bare LF" : bad_byte(c, "missing CRLF after chunk data");
            return -1;
        }
        return CH_DATA_LF;
    }
    return chunk_trailer_step(s, c, reason);
}

int h1_chunked_feed(struct h1_chunked *st, const char *buf, size_t len, size_t *consumed,
                    struct h1_error *err)
{
    const char *p = buf, *end = buf + len, *reason = NULL;
    int s = st->state;

    if (s < 0 || s >= CH_FAILED) {
        *consumed = 0;
        return fail(err, 400,
                    s == CH_FAILED ? "chunked body already failed" : "invalid chunked state");
    }
    while (p < end && s != CH_DONE) {
        if (s == CH_DATA) {
            /* data is forwarded verbatim and never inspected: skip it in one step */
            size_t avail = (size_t)(end - p);
            size_t take = st->remaining < avail ? (size_t)st->remaining : avail;
            p += take;
            st->remaining -= take;
            if (st->remaining == 0)
                s = CH_DATA_CR;
            continue;
        }
        reason = chunk_budget(st, s);
        if (reason)
            break;
        int next = chunk_step(st, s, *p, &reason);
        if (next < 0)
            break;
        s = next;
        p++;
    }
    *consumed = (size_t)(p - buf);
    if (reason) {
        st->state = CH_FAILED;
        return fail(err, 400, reason);
    }
    st->state = s;
    return s == CH_DONE ? PX_OK : PX_AGAIN;
}

/* ---- rewriting heads ---- */

/* A bounded writer: remembers overflow instead of checking after every piece. */
struct out {
    char *p;
    char *end;
    bool full;
};

static void put(struct out *o, const char *s, size_t n)
{
    if (o->full || (size_t)(o->end - o->p) < n) {
        o->full = true;
        return;
    }
    memcpy(o->p, s, n);
    o->p += n;
}

#define PUT_LIT(o, lit) put((o), lit, sizeof(lit) - 1)

static void put_slice(struct out *o, struct h1_slice s)
{
    put(o, s.p, s.len);
}

static void put_uint(struct out *o, unsigned v)
{
    char tmp[12];
    size_t i = sizeof(tmp);

    do {
        tmp[--i] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    put(o, tmp + i, sizeof(tmp) - i);
}

/* The names the Connection lines of a head list, split once per rewrite: is_hop_by_hop asks
 * them about every field, and splitting the lines again for each field cost more than the rest
 * of a rewrite (nginx's "Connection: keep-alive" beside eight other fields). */
#define CONNECTION_TOKENS_MAX 16

struct connection_tokens {
    struct h1_slice tok[CONNECTION_TOKENS_MAX];
    size_t n;
    bool many; /* more names than fit: every line is split again for each field instead */
    const struct h1_header *all;
    size_t nall;
};

static void connection_tokens_find(struct connection_tokens *ct, const struct h1_header *hdrs,
                                   size_t n)
{
    *ct = (struct connection_tokens){.all = hdrs, .nall = n};
    for (size_t i = 0; i < n && !ct->many; i++) {
        if (hdrs[i].kind != HDR_CONNECTION)
            continue;
        const char *p = hdrs[i].value.p, *end = p + hdrs[i].value.len;
        struct h1_slice tok;
        while (list_next(&p, end, &tok)) {
            if (ct->n == CONNECTION_TOKENS_MAX) {
                ct->many = true;
                break;
            }
            ct->tok[ct->n++] = tok;
        }
    }
}

static bool same_name(struct h1_slice a, struct h1_slice b)
{
    if (a.len != b.len)
        return false;
    for (size_t k = 0; k < a.len; k++)
        if (lower((unsigned char)a.p[k]) != lower((unsigned char)b.p[k]))
            return false;
    return true;
}

/* Whether a Connection header lists name (RFC 9110 7.6.1). */
static bool named_by_connection(const struct connection_tokens *ct, struct h1_slice name)
{
    struct h1_slice tok;

    if (!ct->many) {
        for (size_t i = 0; i < ct->n; i++)
            if (same_name(ct->tok[i], name))
                return true;
        return false;
    }
    for (size_t i = 0; i < ct->nall; i++) {
        const struct h1_header *h = &ct->all[i];
        if (h->kind != HDR_CONNECTION)
            continue;
        const char *p = h->value.p, *end = p + h->value.len;
        while (list_next(&p, end, &tok))
            if (same_name(tok, name))
                return true;
    }
    return false;
}

/* Whether a field must not be forwarded. Framing fields stay whatever Connection names:
 * the body is relayed verbatim, and dropping its length would let the next hop read the
 * body as another message. */
static bool is_hop_by_hop(const struct connection_tokens *ct, const struct h1_header *h,
                          bool is_request, bool keep_upgrade)
{
    switch (h->kind) {
    case HDR_CONNECTION:
    case HDR_HOP_BY_HOP:
        return true;
    case HDR_UPGRADE:
        return !keep_upgrade;
    case HDR_PROXY_AUTHORIZATION:
        return is_request;
    case HDR_CONTENT_LENGTH:
    case HDR_TRANSFER_ENCODING:
    case HDR_HOST:
        return false;
    default:
        break;
    }
    return named_by_connection(ct, h->name);
}

/* via ends up inside a header line: refuse anything that could end or fold that line. */
static bool via_ok(const char *via, size_t len)
{
    return len > 0 && scan(via, via + len, C_FIELD) == via + len && !is_ows(via[0]);
}

static long out_done(const struct out *o, const char *start)
{
    return o->full ? -1 : (long)(o->p - start);
}

long h1_request_rewrite(const struct h1_request *req, const char *via, char *out, size_t cap)
{
    struct out o = {out, out + cap, false};
    const size_t via_len = strlen(via);
    const bool host_from_target = req->host.len > 0;

    if (!via_ok(via, via_len))
        return -1;

    put_slice(&o, req->method);
    PUT_LIT(&o, " ");
    if (req->form == H1_FORM_ABSOLUTE) {
        /* RFC 9112 3.2.4: an OPTIONS for "http://h" is forwarded as "*" */
        if (req->path.p == root_path && EQ(req->method, "OPTIONS"))
            PUT_LIT(&o, "*");
        else
            put_slice(&o, req->path);
    } else {
        put_slice(&o, req->target);
    }
    /* A 1.0 client is asked for as 1.0, so no origin answers it in chunks. */
    put(&o, req->minor_version == 0 ? " HTTP/1.0\r\n" : " HTTP/1.1\r\n", 11);

    if (host_from_target) {
        const bool v6 = req->host.kind == ACL_HOST_IPV6;
        PUT_LIT(&o, "Host: ");
        if (v6)
            PUT_LIT(&o, "[");
        put(&o, req->host.text, req->host.len);
        if (v6)
            PUT_LIT(&o, "]");
        if (req->port != 80) {
            PUT_LIT(&o, ":");
            put_uint(&o, req->port);
        }
        PUT_LIT(&o, "\r\n");
    }

    struct connection_tokens ct;
    connection_tokens_find(&ct, req->headers, req->num_headers);
    for (size_t i = 0; i < req->num_headers; i++) {
        const struct h1_header *h = &req->headers[i];
        if (host_from_target && h->kind == HDR_HOST)
            continue;
        if (is_hop_by_hop(&ct, h, true, req->upgrade_websocket))
            continue;
        put_slice(&o, h->name);
        PUT_LIT(&o, ": ");
        put_slice(&o, h->value);
        PUT_LIT(&o, "\r\n");
    }

    PUT_LIT(&o, "Via: 1.1 ");
    put(&o, via, via_len);
    PUT_LIT(&o, "\r\n");
    if (req->upgrade_websocket)
        PUT_LIT(&o, "Connection: Upgrade\r\n");
    PUT_LIT(&o, "\r\n");
    return out_done(&o, out);
}

long h1_response_rewrite(const struct h1_response *resp, const char *via, bool client_keep_alive,
                         char *out, size_t cap)
{
    struct out o = {out, out + cap, false};
    const size_t via_len = strlen(via);
    const bool websocket = resp->status == 101 && resp->upgrade_websocket;

    if (!via_ok(via, via_len) || resp->status < 100 || resp->status > 999)
        return -1;

    PUT_LIT(&o, "HTTP/1.1 ");
    put_uint(&o, (unsigned)resp->status);
    PUT_LIT(&o, " ");
    put_slice(&o, resp->reason);
    PUT_LIT(&o, "\r\n");

    struct connection_tokens ct;
    connection_tokens_find(&ct, resp->headers, resp->num_headers);
    for (size_t i = 0; i < resp->num_headers; i++) {
        const struct h1_header *h = &resp->headers[i];
        if (is_hop_by_hop(&ct, h, false, websocket))
            continue;
        put_slice(&o, h->name);
        PUT_LIT(&o, ": ");
        put_slice(&o, h->value);
        PUT_LIT(&o, "\r\n");
    }

    PUT_LIT(&o, "Via: 1.1 ");
    put(&o, via, via_len);
    PUT_LIT(&o, "\r\n");
    if (websocket)
        PUT_LIT(&o, "Connection: Upgrade\r\n");
    else if (!client_keep_alive)
        PUT_LIT(&o, "Connection: close\r\n");
    PUT_LIT(&o, "\r\n");
    return out_done(&o, out);
}

int h1_header_find(const struct h1_header *headers, size_t n, const char *name)
{
    const size_t len = strlen(name);

    for (size_t i = 0; i < n; i++) {
        const struct h1_slice s = headers[i].name;
        if (s.len != len)
            continue;
        size_t k = 0;
        while (k < len && lower((unsigned char)s.p[k]) == lower((unsigned char)name[k]))
            k++;
        if (k == len)
            return (int)i;
    }
    return -1;
}
