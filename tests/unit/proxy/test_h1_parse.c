/* test_h1_parse: table-driven tests of proxy/h1_parse (request and response heads, chunked
 * bodies, head rewriting). Every head case is parsed whole, as every prefix, and with its
 * last byte just before a PROT_NONE page, so an over-read crashes instead of passing.
 */
#include "proxy/h1_parse.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define IN(s) .in = (s), .len = sizeof(s) - 1

static const struct h1_limits lim_default = {8192, 65536, 64};
static const struct h1_limits lim_line27 = {27, 4096, 16}; /* "GET http://a.test/ HTTP/1.1" */
static const struct h1_limits lim_head45 = {1024, 45, 16}; /* that line + Host: a.test */
static const struct h1_limits lim_hdr2 = {1024, 4096, 2};

/* ---- guard page ---- */

/* A mapping whose last page is PROT_NONE; data copied with guard_put ends at that page. */
struct guard {
    void *map;
    size_t map_len;
    char *limit;
};

static void guard_init(struct guard *g, size_t cap)
{
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    size_t pages = cap / page + 1;

    g->map_len = (pages + 1) * page;
    g->map = mmap(NULL, g->map_len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    ck_assert(g->map != MAP_FAILED);
    g->limit = (char *)g->map + pages * page;
    ck_assert_int_eq(mprotect(g->limit, page, PROT_NONE), 0);
}

static const char *guard_put(struct guard *g, const char *s, size_t n)
{
    memcpy(g->limit - n, s, n);
    return g->limit - n;
}

static void guard_free(struct guard *g)
{
    munmap(g->map, g->map_len);
}

static bool slice_in(struct h1_slice s, const char *buf, size_t len)
{
    return s.len == 0 || (s.p >= buf && s.p + s.len <= buf + len);
}

static bool slice_is(struct h1_slice s, const char *want)
{
    if (!want)
        return s.len == 0;
    return s.len == strlen(want) && memcmp(s.p, want, s.len) == 0;
}

static const char *const form_names[] = {"origin", "absolute", "authority", "asterisk"};
static const char *const body_names[] = {"none", "length", "chunked", "close"};

/* ---- requests that parse ---- */

struct req_ok {
    const char *name;
    const char *in;
    size_t len;
    size_t trailing; /* bytes after the head (body or a pipelined request) */
    const struct h1_limits *lim;
    const char *method;
    enum h1_target_form form;
    const char *host;
    unsigned port;
    const char *path;
    int minor;
    size_t num_headers;
    enum h1_body body;
    uint64_t content_length;
    bool keep_alive;
    bool expect_continue;
    bool websocket;
    const char *proxy_auth;
};

#define BROWSER_GET                                                                                \
    "GET http://www.example.com/index.html?q=1&r=2 HTTP/1.1\r\n"                                   \
    "Host: www.example.com\r\n"                                                                    \
    "User-Agent: Mozilla/5.0 (X11; Linux x86_64; rv:109.0) Gecko/20100101 Firefox/115.0\r\n"       \
    "Accept: text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,*/*;q=0.8\r\n"       \
    "Accept-Language: en-US,en;q=0.5\r\n"                                                          \
    "Accept-Encoding: gzip, deflate\r\n"                                                           \
    "Proxy-Connection: keep-alive\r\n"                                                             \
    "Cookie: session=0123456789abcdef; theme=dark\r\n"                                             \
    "Upgrade-Insecure-Requests: 1\r\n"                                                             \
    "\r\n"

static const struct req_ok req_ok_cases[] = {
    {"browser_get", IN(BROWSER_GET), 0, NULL, "GET", H1_FORM_ABSOLUTE, "www.example.com", 80,
     "/index.html?q=1&r=2", 1, 8, H1_BODY_NONE, 0, true, false, false, NULL},
    {"port_and_query",
     IN("GET http://example.com:8080/a/b?x=y HTTP/1.1\r\nHost: example.com:8080\r\n\r\n"), 0, NULL,
     "GET", H1_FORM_ABSOLUTE, "example.com", 8080, "/a/b?x=y", 1, 1, H1_BODY_NONE, 0, true, false,
     false, NULL},
    {"scheme_case_insensitive", IN("GET HTTP://Example.COM/ HTTP/1.1\r\nHost: x\r\n\r\n"), 0, NULL,
     "GET", H1_FORM_ABSOLUTE, "example.com", 80, "/", 1, 1, H1_BODY_NONE, 0, true, false, false,
     NULL},
    /* the host comes out canonical: one spelling per host, whatever the client wrote */
    {"host_trailing_dot",
     IN("GET http://Blocked.Example./ HTTP/1.1\r\nHost: Blocked.Example.\r\n\r\n"), 0, NULL, "GET",
     H1_FORM_ABSOLUTE, "blocked.example", 80, "/", 1, 1, H1_BODY_NONE, 0, true, false, false, NULL},
    {"connect_trailing_dot", IN("CONNECT BLOCKED.example.:443 HTTP/1.1\r\nHost: x\r\n\r\n"), 0,
     NULL, "CONNECT", H1_FORM_AUTHORITY, "blocked.example", 443, NULL, 1, 1, H1_BODY_NONE, 0, true,
     false, false, NULL},
    {"host_underscore", IN("GET http://_dmarc.a-b.test/ HTTP/1.1\r\nHost: _dmarc.a-b.test\r\n\r\n"),
     0, NULL, "GET", H1_FORM_ABSOLUTE, "_dmarc.a-b.test", 80, "/", 1, 1, H1_BODY_NONE, 0, true,
     false, false, NULL},
    {"ipv4_mapped_is_ipv4",
     IN("GET http://[::FFFF:127.0.0.1]:81/ HTTP/1.1\r\nHost: [::ffff:7f00:1]:81\r\n\r\n"), 0, NULL,
     "GET", H1_FORM_ABSOLUTE, "127.0.0.1", 81, "/", 1, 1, H1_BODY_NONE, 0, true, false, false,
     NULL},
    {"ipv6_canonical", IN("CONNECT [2001:DB8:0:0::0001]:443 HTTP/1.1\r\nHost: x\r\n\r\n"), 0, NULL,
     "CONNECT", H1_FORM_AUTHORITY, "2001:db8::1", 443, NULL, 1, 1, H1_BODY_NONE, 0, true, false,
     false, NULL},
    {"ipv4_trailing_dot", IN("GET http://127.0.0.1./ HTTP/1.1\r\nHost: 127.0.0.1.\r\n\r\n"), 0,
     NULL, "GET", H1_FORM_ABSOLUTE, "127.0.0.1", 80, "/", 1, 1, H1_BODY_NONE, 0, true, false, false,
     NULL},
    {"digits_in_first_labels", IN("GET http://1.2.3.4.example/ HTTP/1.1\r\nHost: x\r\n\r\n"), 0,
     NULL, "GET", H1_FORM_ABSOLUTE, "1.2.3.4.example", 80, "/", 1, 1, H1_BODY_NONE, 0, true, false,
     false, NULL},
    {"host_header_empty_and_port_empty", IN("GET http://a.test/ HTTP/1.1\r\nHost:\r\n\r\n"), 0,
     NULL, "GET", H1_FORM_ABSOLUTE, "a.test", 80, "/", 1, 1, H1_BODY_NONE, 0, true, false, false,
     NULL},
    {"empty_path_is_slash", IN("GET http://example.com HTTP/1.1\r\nHost: example.com\r\n\r\n"), 0,
     NULL, "GET", H1_FORM_ABSOLUTE, "example.com", 80, "/", 1, 1, H1_BODY_NONE, 0, true, false,
     false, NULL},
    {"empty_path_with_port", IN("GET http://example.com:81 HTTP/1.1\r\nHost: a\r\n\r\n"), 0, NULL,
     "GET", H1_FORM_ABSOLUTE, "example.com", 81, "/", 1, 1, H1_BODY_NONE, 0, true, false, false,
     NULL},
    {"ipv6_literal", IN("GET http://[::1]:8080/x HTTP/1.1\r\nHost: [::1]:8080\r\n\r\n"), 0, NULL,
     "GET", H1_FORM_ABSOLUTE, "::1", 8080, "/x", 1, 1, H1_BODY_NONE, 0, true, false, false, NULL},
    {"ipv4_literal", IN("GET http://10.1.2.3/ HTTP/1.1\r\nHost: 10.1.2.3\r\n\r\n"), 0, NULL, "GET",
     H1_FORM_ABSOLUTE, "10.1.2.3", 80, "/", 1, 1, H1_BODY_NONE, 0, true, false, false, NULL},
    {"port_65535", IN("GET http://a.test:65535/ HTTP/1.1\r\nHost: a\r\n\r\n"), 0, NULL, "GET",
     H1_FORM_ABSOLUTE, "a.test", 65535, "/", 1, 1, H1_BODY_NONE, 0, true, false, false, NULL},
    {"connect", IN("CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n"), 0, NULL,
     "CONNECT", H1_FORM_AUTHORITY, "example.com", 443, NULL, 1, 1, H1_BODY_NONE, 0, true, false,
     false, NULL},
    {"connect_ipv6", IN("CONNECT [2001:db8::1]:443 HTTP/1.1\r\nHost: x\r\n\r\n"), 0, NULL,
     "CONNECT", H1_FORM_AUTHORITY, "2001:db8::1", 443, NULL, 1, 1, H1_BODY_NONE, 0, true, false,
     false, NULL},
    {"options_asterisk", IN("OPTIONS * HTTP/1.1\r\nHost: a.test\r\n\r\n"), 0, NULL, "OPTIONS",
     H1_FORM_ASTERISK, NULL, 0, NULL, 1, 1, H1_BODY_NONE, 0, true, false, false, NULL},
    {"origin_form", IN("GET /proxy.pac HTTP/1.1\r\nHost: proxy:3128\r\n\r\n"), 0, NULL, "GET",
     H1_FORM_ORIGIN, NULL, 0, NULL, 1, 1, H1_BODY_NONE, 0, true, false, false, NULL},
    {"post_content_length",
     IN("POST http://a.test/f HTTP/1.1\r\nHost: a.test\r\nContent-Length: 5\r\n\r\nhello"), 5, NULL,
     "POST", H1_FORM_ABSOLUTE, "a.test", 80, "/f", 1, 2, H1_BODY_LENGTH, 5, true, false, false,
     NULL},
    {"content_length_leading_zeros",
     IN("POST http://a.test/ HTTP/1.1\r\nHost: a\r\nContent-Length: 007\r\n\r\n"), 0, NULL, "POST",
     H1_FORM_ABSOLUTE, "a.test", 80, "/", 1, 2, H1_BODY_LENGTH, 7, true, false, false, NULL},
    {"content_length_max",
     IN("PUT http://a.test/ HTTP/1.1\r\nHost: a\r\nContent-Length: 9223372036854775807\r\n\r\n"), 0,
     NULL, "PUT", H1_FORM_ABSOLUTE, "a.test", 80, "/", 1, 2, H1_BODY_LENGTH, 9223372036854775807ULL,
     true, false, false, NULL},
    {"post_chunked",
     IN("POST http://a.test/ HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: "
        "chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"),
     15, NULL, "POST", H1_FORM_ABSOLUTE, "a.test", 80, "/", 1, 2, H1_BODY_CHUNKED, 0, true, false,
     false, NULL},
    {"chunked_case_and_ows",
     IN("POST http://a.test/ HTTP/1.1\r\nHost: a\r\nTransfer-Encoding:  ChUnKeD \t\r\n\r\n"), 0,
     NULL, "POST", H1_FORM_ABSOLUTE, "a.test", 80, "/", 1, 2, H1_BODY_CHUNKED, 0, true, false,
     false, NULL},
    {"http10_defaults_to_close", IN("GET http://a.test/ HTTP/1.0\r\n\r\n"), 0, NULL, "GET",
     H1_FORM_ABSOLUTE, "a.test", 80, "/", 0, 0, H1_BODY_NONE, 0, false, false, false, NULL},
    {"http10_keep_alive", IN("GET http://a.test/ HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n"), 0,
     NULL, "GET", H1_FORM_ABSOLUTE, "a.test", 80, "/", 0, 1, H1_BODY_NONE, 0, true, false, false,
     NULL},
    {"http11_connection_close",
     IN("GET http://a.test/ HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"), 0, NULL, "GET",
     H1_FORM_ABSOLUTE, "a.test", 80, "/", 1, 2, H1_BODY_NONE, 0, false, false, false, NULL},
    {"close_wins_in_list",
     IN("GET http://a.test/ HTTP/1.0\r\nConnection: keep-alive, ,CLOSE\r\n\r\n"), 0, NULL, "GET",
     H1_FORM_ABSOLUTE, "a.test", 80, "/", 0, 1, H1_BODY_NONE, 0, false, false, false, NULL},
    {"expect_continue",
     IN("PUT http://a.test/ HTTP/1.1\r\nHost: a\r\nExpect: 100-Continue\r\nContent-Length: "
        "3\r\n\r\n"),
     0, NULL, "PUT", H1_FORM_ABSOLUTE, "a.test", 80, "/", 1, 3, H1_BODY_LENGTH, 3, true, true,
     false, NULL},
    {"websocket",
     IN("GET http://a.test/chat HTTP/1.1\r\nHost: a\r\nConnection: keep-alive, Upgrade\r\nUpgrade: "
        "WebSocket\r\n\r\n"),
     0, NULL, "GET", H1_FORM_ABSOLUTE, "a.test", 80, "/chat", 1, 3, H1_BODY_NONE, 0, true, false,
     true, NULL},
    {"websocket_needs_get",
     IN("POST http://a.test/ HTTP/1.1\r\nHost: a\r\nConnection: upgrade\r\nUpgrade: "
        "websocket\r\n\r\n"),
     0, NULL, "POST", H1_FORM_ABSOLUTE, "a.test", 80, "/", 1, 3, H1_BODY_NONE, 0, true, false,
     false, NULL},
    {"websocket_needs_connection_token",
     IN("GET http://a.test/ HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\n\r\n"), 0, NULL, "GET",
     H1_FORM_ABSOLUTE, "a.test", 80, "/", 1, 2, H1_BODY_NONE, 0, true, false, false, NULL},
    {"proxy_authorization",
     IN("GET http://a.test/ HTTP/1.1\r\nHost: a\r\nProxy-Authorization: Basic dTpw \r\n\r\n"), 0,
     NULL, "GET", H1_FORM_ABSOLUTE, "a.test", 80, "/", 1, 2, H1_BODY_NONE, 0, true, false, false,
     "Basic dTpw"},
    {"leading_empty_lines", IN("\r\n\r\nGET http://a.test/ HTTP/1.1\r\nHost: a\r\n\r\n"), 0, NULL,
     "GET", H1_FORM_ABSOLUTE, "a.test", 80, "/", 1, 1, H1_BODY_NONE, 0, true, false, false, NULL},
    {"empty_value_and_trimmed_ows",
     IN("GET http://a.test/ HTTP/1.1\r\nHost: a\r\nX-Empty:\r\nX-Pad: \t a b \t\r\n\r\n"), 0, NULL,
     "GET", H1_FORM_ABSOLUTE, "a.test", 80, "/", 1, 3, H1_BODY_NONE, 0, true, false, false, NULL},
    {"obs_text_in_value",
     IN("GET http://a.test/ HTTP/1.1\r\nHost: a\r\nX-Name: J\xc3\xbcrgen\r\n\r\n"), 0, NULL, "GET",
     H1_FORM_ABSOLUTE, "a.test", 80, "/", 1, 2, H1_BODY_NONE, 0, true, false, false, NULL},
    {"pipelined_next_request",
     IN("GET http://a.test/1 HTTP/1.1\r\nHost: a\r\n\r\nGET http://a.test/2 HTTP/1.1\r\nHost: "
        "a\r\n\r\n"),
     41, NULL, "GET", H1_FORM_ABSOLUTE, "a.test", 80, "/1", 1, 1, H1_BODY_NONE, 0, true, false,
     false, NULL},
    {"line_exactly_at_limit", IN("GET http://a.test/ HTTP/1.1\r\nHost: a.test\r\n\r\n"), 0,
     &lim_line27, "GET", H1_FORM_ABSOLUTE, "a.test", 80, "/", 1, 1, H1_BODY_NONE, 0, true, false,
     false, NULL},
    {"head_exactly_at_limit", IN("GET http://a.test/ HTTP/1.1\r\nHost: a.test\r\n\r\n"), 0,
     &lim_head45, "GET", H1_FORM_ABSOLUTE, "a.test", 80, "/", 1, 1, H1_BODY_NONE, 0, true, false,
     false, NULL},
    {"headers_exactly_at_limit", IN("GET http://a.test/ HTTP/1.1\r\nHost: a\r\nX-A: 1\r\n\r\n"), 0,
     &lim_hdr2, "GET", H1_FORM_ABSOLUTE, "a.test", 80, "/", 1, 2, H1_BODY_NONE, 0, true, false,
     false, NULL},
};

static void check_request_fields(const struct req_ok *c, const char *buf,
                                 const struct h1_request *r)
{
    ck_assert_msg(slice_is(r->method, c->method), "%s: method", c->name);
    ck_assert_msg(r->form == c->form, "%s: form %s", c->name, form_names[r->form]);
    ck_assert_msg(strcmp(r->host.text, c->host ? c->host : "") == 0 &&
                      r->host.len == strlen(r->host.text),
                  "%s: host '%s'", c->name, r->host.text);
    ck_assert_msg(r->port == c->port, "%s: port %u", c->name, r->port);
    ck_assert_msg(slice_is(r->path, c->path), "%s: path '%.*s'", c->name, (int)r->path.len,
                  r->path.p);
    ck_assert_msg(r->minor_version == c->minor, "%s: minor", c->name);
    ck_assert_msg(r->num_headers == c->num_headers, "%s: %zu headers", c->name, r->num_headers);
    ck_assert_msg(r->body == c->body, "%s: body %s", c->name, body_names[r->body]);
    ck_assert_msg(r->content_length == c->content_length, "%s: content_length", c->name);
    ck_assert_msg(r->keep_alive == c->keep_alive, "%s: keep_alive", c->name);
    ck_assert_msg(r->expect_continue == c->expect_continue, "%s: expect", c->name);
    ck_assert_msg(r->upgrade_websocket == c->websocket, "%s: websocket", c->name);
    ck_assert_msg(slice_is(r->proxy_authorization, c->proxy_auth), "%s: proxy-auth", c->name);

    /* every slice is a view into the input; the only exception is the "/" of an empty path */
    ck_assert(slice_in(r->method, buf, c->len) && slice_in(r->target, buf, c->len));
    ck_assert(slice_in(r->scheme, buf, c->len));
    ck_assert(slice_in(r->path, buf, c->len) || slice_is(r->path, "/"));
    for (size_t i = 0; i < r->num_headers; i++)
        ck_assert(slice_in(r->headers[i].name, buf, c->len) &&
                  slice_in(r->headers[i].value, buf, c->len));
}

START_TEST(test_valid_request_parses_to_expected_fields)
{
    const struct req_ok *c = &req_ok_cases[_i];
    const struct h1_limits *lim = c->lim ? c->lim : &lim_default;
    struct h1_header *hdrs = calloc(lim->max_headers + 1, sizeof(*hdrs));
    struct h1_request req = {.headers = hdrs};
    struct h1_error err = {0, NULL};
    const int head_len = (int)(c->len - c->trailing);
    struct guard g;

    int rc = h1_parse_request(c->in, c->len, lim, &req, &err);
    ck_assert_msg(rc == head_len, "%s: returned %d (%d %s), want %d", c->name, rc, err.status,
                  err.reason ? err.reason : "", head_len);
    check_request_fields(c, c->in, &req);

    /* every strict prefix is incomplete, and ending at a guard page reads nothing past it */
    guard_init(&g, c->len);
    for (size_t k = 0; k < (size_t)head_len; k++) {
        const char *b = guard_put(&g, c->in, k);
        rc = h1_parse_request(b, k, lim, &req, &err);
        ck_assert_msg(rc == PX_AGAIN, "%s: prefix %zu returned %d (%s)", c->name, k, rc,
                      rc == PX_ERR ? err.reason : "");
    }
    const char *b = guard_put(&g, c->in, (size_t)head_len);
    rc = h1_parse_request(b, (size_t)head_len, lim, &req, &err);
    ck_assert_msg(rc == head_len, "%s: at guard page returned %d", c->name, rc);
    b = guard_put(&g, c->in, c->len);
    rc = h1_parse_request(b, c->len, lim, &req, &err);
    ck_assert_msg(rc == head_len, "%s: whole at guard page returned %d", c->name, rc);
    guard_free(&g);
    free(hdrs);
}
END_TEST

/* ---- requests that are refused ---- */

struct req_bad {
    const char *name;
    const char *in;
    size_t len;
    const struct h1_limits *lim;
    int status;
};

#define RL "GET http://a.test/ HTTP/1.1\r\n"
#define POST_RL "POST http://a.test/ HTTP/1.1\r\nHost: a.test\r\n"

static const struct req_bad req_bad_cases[] = {
    /* framing: anything two parties could read two ways */
    {"cl_with_te", IN(POST_RL "Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n"), NULL,
     400},
    {"te_with_cl", IN(POST_RL "Transfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n"), NULL,
     400},
    {"duplicate_identical_cl", IN(POST_RL "Content-Length: 5\r\nContent-Length: 5\r\n\r\n"), NULL,
     400},
    {"duplicate_differing_cl", IN(POST_RL "Content-Length: 5\r\nContent-Length: 6\r\n\r\n"), NULL,
     400},
    {"cl_comma_list", IN(POST_RL "Content-Length: 5, 5\r\n\r\n"), NULL, 400},
    {"cl_plus_sign", IN(POST_RL "Content-Length: +5\r\n\r\n"), NULL, 400},
    {"cl_minus_sign", IN(POST_RL "Content-Length: -1\r\n\r\n"), NULL, 400},
    {"cl_space_inside", IN(POST_RL "Content-Length: 1 2\r\n\r\n"), NULL, 400},
    {"cl_empty", IN(POST_RL "Content-Length:\r\n\r\n"), NULL, 400},
    {"cl_hex", IN(POST_RL "Content-Length: 0x10\r\n\r\n"), NULL, 400},
    {"cl_overflow", IN(POST_RL "Content-Length: 18446744073709551616\r\n\r\n"), NULL, 400},
    {"cl_past_int64", IN(POST_RL "Content-Length: 9223372036854775808\r\n\r\n"), NULL, 400},
    {"te_gzip", IN(POST_RL "Transfer-Encoding: gzip\r\n\r\n"), NULL, 501},
    {"te_identity", IN(POST_RL "Transfer-Encoding: identity\r\n\r\n"), NULL, 501},
    {"te_gzip_then_chunked", IN(POST_RL "Transfer-Encoding: gzip, chunked\r\n\r\n"), NULL, 501},
    {"te_chunked_chunked", IN(POST_RL "Transfer-Encoding: chunked, chunked\r\n\r\n"), NULL, 400},
    {"te_chunked_on_two_lines",
     IN(POST_RL "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n"), NULL, 400},
    {"te_chunked_not_last", IN(POST_RL "Transfer-Encoding: chunked, gzip\r\n\r\n"), NULL, 400},
    {"te_empty", IN(POST_RL "Transfer-Encoding: \r\n\r\n"), NULL, 400},
    {"te_with_parameter", IN(POST_RL "Transfer-Encoding: chunked;q=1\r\n\r\n"), NULL, 400},
    {"te_in_http10", IN("POST http://a.test/ HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n"), NULL,
     400},
    /* field syntax */
    {"obs_fold", IN(RL "Host: a.test\r\nX-A: 1\r\n folded\r\n\r\n"), NULL, 400},
    {"obs_fold_tab", IN(RL "Host: a.test\r\nX-A: 1\r\n\tfolded\r\n\r\n"), NULL, 400},
    {"space_before_first_field", IN(RL " Host: a.test\r\n\r\n"), NULL, 400},
    {"bare_lf_request_line", IN("GET http://a.test/ HTTP/1.1\nHost: a.test\r\n\r\n"), NULL, 400},
    {"bare_lf_in_target", IN("GET http://a.test/\n HTTP/1.1\r\nHost: a.test\r\n\r\n"), NULL, 400},
    {"bare_lf_header", IN(RL "Host: a.test\nX-A: 1\r\n\r\n"), NULL, 400},
    {"bare_lf_end_of_head", IN(RL "Host: a.test\r\n\n"), NULL, 400},
    {"bare_lf_before_request", IN("\nGET http://a.test/ HTTP/1.1\r\nHost: a\r\n\r\n"), NULL, 400},
    {"bare_cr_header", IN(RL "Host: a.test\r\nX-A: 1\rX-B: 2\r\n\r\n"), NULL, 400},
    {"nul_in_value", IN(RL "Host: a.test\r\nX-A: a\0b\r\n\r\n"), NULL, 400},
    {"nul_in_name", IN(RL "Host: a.test\r\nX\0A: b\r\n\r\n"), NULL, 400},
    {"ctl_in_value", IN(RL "Host: a.test\r\nX-A: a\x01b\r\n\r\n"), NULL, 400},
    {"del_in_value", IN(RL "Host: a.test\r\nX-A: a\x7f\r\n\r\n"), NULL, 400},
    {"space_before_colon", IN(RL "Host : a.test\r\n\r\n"), NULL, 400},
    {"tab_before_colon", IN(RL "Host\t: a.test\r\n\r\n"), NULL, 400},
    {"empty_field_name", IN(RL "Host: a.test\r\n: x\r\n\r\n"), NULL, 400},
    {"field_name_not_token", IN(RL "Host: a.test\r\nX(A): b\r\n\r\n"), NULL, 400},
    {"field_without_colon", IN(RL "Host: a.test\r\nX-A\r\n\r\n"), NULL, 400},
    {"bad_connection_token", IN(RL "Host: a.test\r\nConnection: close;x\r\n\r\n"), NULL, 400},
    {"two_proxy_authorizations",
     IN(RL "Host: a\r\nProxy-Authorization: a\r\nProxy-Authorization: b\r\n\r\n"), NULL, 400},
    /* Host */
    {"missing_host_http11", IN(RL "X-A: 1\r\n\r\n"), NULL, 400},
    {"two_hosts", IN(RL "Host: a.test\r\nHost: b.test\r\n\r\n"), NULL, 400},
    {"two_hosts_http10", IN("GET http://a.test/ HTTP/1.0\r\nHost: a\r\nhost: a\r\n\r\n"), NULL,
     400},
    /* request-line and target */
    {"userinfo", IN("GET http://user:pw@a.test/ HTTP/1.1\r\nHost: a.test\r\n\r\n"), NULL, 400},
    {"userinfo_connect", IN("CONNECT user@a.test:443 HTTP/1.1\r\nHost: a\r\n\r\n"), NULL, 400},
    {"port_zero", IN("GET http://a.test:0/ HTTP/1.1\r\nHost: a\r\n\r\n"), NULL, 400},
    {"port_65536", IN("GET http://a.test:65536/ HTTP/1.1\r\nHost: a\r\n\r\n"), NULL, 400},
    {"port_abc", IN("GET http://a.test:abc/ HTTP/1.1\r\nHost: a\r\n\r\n"), NULL, 400},
    {"port_empty", IN("GET http://a.test:/ HTTP/1.1\r\nHost: a\r\n\r\n"), NULL, 400},
    {"port_six_digits", IN("GET http://a.test:000080/ HTTP/1.1\r\nHost: a\r\n\r\n"), NULL, 400},
    {"empty_host", IN("GET http:///x HTTP/1.1\r\nHost: a\r\n\r\n"), NULL, 400},
    {"empty_host_with_port", IN("GET http://:80/ HTTP/1.1\r\nHost: a\r\n\r\n"), NULL, 400},
    {"empty_ipv6", IN("GET http://[]/ HTTP/1.1\r\nHost: a\r\n\r\n"), NULL, 400},
    {"unclosed_ipv6", IN("GET http://[::1/ HTTP/1.1\r\nHost: a\r\n\r\n"), NULL, 400},
    {"ipv6_zone", IN("GET http://[fe80::1%25eth0]/ HTTP/1.1\r\nHost: a\r\n\r\n"), NULL, 400},
    {"bad_host_char", IN("GET http://a!b.test/ HTTP/1.1\r\nHost: a\r\n\r\n"), NULL, 400},
    /* host spellings a rule could be bypassed with (issue 10, item 1) */
    {"double_trailing_dot", IN("GET http://blocked.example../ HTTP/1.1\r\nHost: a\r\n\r\n"), NULL,
     400},
    {"connect_double_trailing_dot", IN("CONNECT blocked.example..:443 HTTP/1.1\r\nHost: a\r\n\r\n"),
     NULL, 400},
    {"empty_label_inside", IN("GET http://blocked..example/ HTTP/1.1\r\nHost: a\r\n\r\n"), NULL,
     400},
    {"leading_dot", IN("GET http://.blocked.example/ HTTP/1.1\r\nHost: a\r\n\r\n"), NULL, 400},
    {"only_dot", IN("GET http://./ HTTP/1.1\r\nHost: a\r\n\r\n"), NULL, 400},
    {"only_dots", IN("CONNECT ...:443 HTTP/1.1\r\nHost: a\r\n\r\n"), NULL, 400},
    {"percent_in_host", IN("GET http://blocked%2eexample/ HTTP/1.1\r\nHost: a\r\n\r\n"), NULL, 400},
    {"tilde_in_host", IN("GET http://a~b.test/ HTTP/1.1\r\nHost: a\r\n\r\n"), NULL, 400},
    {"label_64",
     IN("GET http://aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.test/ "
        "HTTP/1.1\r\nHost: a\r\n\r\n"),
     NULL, 400},
    {"name_254",
     IN("GET http://"
        "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa."
        "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa."
        "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa."
        "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa/ HTTP/1.1\r\nHost: "
        "a\r\n\r\n"),
     NULL, 400},
    /* address spellings other parsers read as 127.0.0.1 (item 2) */
    {"ipv4_leading_zero", IN("GET http://0127.0.0.1/ HTTP/1.1\r\nHost: a\r\n\r\n"), NULL, 400},
    {"ipv4_zero_padded", IN("GET http://127.000.000.001/ HTTP/1.1\r\nHost: a\r\n\r\n"), NULL, 400},
    {"ipv4_one_integer", IN("GET http://2130706433/ HTTP/1.1\r\nHost: a\r\n\r\n"), NULL, 400},
    {"ipv4_hex", IN("GET http://0x7f.1/ HTTP/1.1\r\nHost: a\r\n\r\n"), NULL, 400},
    {"ipv4_hex_whole", IN("CONNECT 0x7F000001:443 HTTP/1.1\r\nHost: a\r\n\r\n"), NULL, 400},
    {"ipv4_short", IN("GET http://127.1/ HTTP/1.1\r\nHost: a\r\n\r\n"), NULL, 400},
    {"ipv4_five_parts", IN("GET http://1.2.3.4.5/ HTTP/1.1\r\nHost: a\r\n\r\n"), NULL, 400},
    {"ipv4_part_over_255", IN("GET http://1.2.3.256/ HTTP/1.1\r\nHost: a\r\n\r\n"), NULL, 400},
    {"number_last_label", IN("GET http://example.123/ HTTP/1.1\r\nHost: a\r\n\r\n"), NULL, 400},
    {"ipv6_mapped_leading_zero", IN("GET http://[::ffff:127.000.0.1]/ HTTP/1.1\r\nHost: a\r\n\r\n"),
     NULL, 400},
    {"ipv6_too_many_groups", IN("GET http://[1:2:3:4:5:6:7:8:9]/ HTTP/1.1\r\nHost: a\r\n\r\n"),
     NULL, 400},
    /* a Host header must be a host too, though the target's host is the one used */
    {"host_header_empty_label", IN(RL "Host: a..test\r\n\r\n"), NULL, 400},
    {"host_header_legacy_ipv4", IN(RL "Host: 0x7f.1\r\n\r\n"), NULL, 400},
    {"host_header_bad_port", IN(RL "Host: a.test:8o\r\n\r\n"), NULL, 400},
    {"host_header_space", IN(RL "Host: a test\r\n\r\n"), NULL, 400},
    {"host_header_unclosed_ipv6", IN(RL "Host: [::1\r\n\r\n"), NULL, 400},
    {"host_header_userinfo", IN(RL "Host: u@a.test\r\n\r\n"), NULL, 400},
    {"fragment", IN("GET http://a.test/x#frag HTTP/1.1\r\nHost: a\r\n\r\n"), NULL, 400},
    {"fragment_origin_form", IN("GET /x#frag HTTP/1.1\r\nHost: a\r\n\r\n"), NULL, 400},
    {"https_scheme", IN("GET https://a.test/ HTTP/1.1\r\nHost: a\r\n\r\n"), NULL, 400},
    {"ftp_scheme", IN("GET ftp://a.test/ HTTP/1.1\r\nHost: a\r\n\r\n"), NULL, 400},
    {"scheme_without_slashes", IN("GET http:a.test/ HTTP/1.1\r\nHost: a\r\n\r\n"), NULL, 400},
    {"query_without_path", IN("GET http://a.test?x HTTP/1.1\r\nHost: a\r\n\r\n"), NULL, 400},
    {"authority_form_for_get", IN("GET a.test:80 HTTP/1.1\r\nHost: a\r\n\r\n"), NULL, 400},
    {"asterisk_for_get", IN("GET * HTTP/1.1\r\nHost: a\r\n\r\n"), NULL, 400},
    {"connect_without_port", IN("CONNECT a.test HTTP/1.1\r\nHost: a\r\n\r\n"), NULL, 400},
    {"connect_port_zero", IN("CONNECT a.test:0 HTTP/1.1\r\nHost: a\r\n\r\n"), NULL, 400},
    {"connect_absolute_form", IN("CONNECT http://a.test:443/ HTTP/1.1\r\nHost: a\r\n\r\n"), NULL,
     400},
    {"connect_origin_form", IN("CONNECT /x HTTP/1.1\r\nHost: a\r\n\r\n"), NULL, 400},
    {"version_1_2", IN("GET http://a.test/ HTTP/1.2\r\nHost: a\r\n\r\n"), NULL, 400},
    {"version_2_0", IN("GET http://a.test/ HTTP/2.0\r\nHost: a\r\n\r\n"), NULL, 400},
    {"version_lower_case", IN("GET http://a.test/ http/1.1\r\nHost: a\r\n\r\n"), NULL, 400},
    {"version_garbage", IN("GET http://a.test/ HTTX/1.1\r\nHost: a\r\n\r\n"), NULL, 400},
    {"version_trailing_space", IN("GET http://a.test/ HTTP/1.1 \r\nHost: a\r\n\r\n"), NULL, 400},
    {"version_missing", IN("GET http://a.test/\r\nHost: a\r\n\r\n"), NULL, 400},
    {"double_space", IN("GET  http://a.test/ HTTP/1.1\r\nHost: a\r\n\r\n"), NULL, 400},
    {"method_not_token", IN("G(T http://a.test/ HTTP/1.1\r\nHost: a\r\n\r\n"), NULL, 400},
    {"ctl_in_target", IN("GET http://a.test/\x01 HTTP/1.1\r\nHost: a\r\n\r\n"), NULL, 400},
    {"tab_separator", IN("GET\thttp://a.test/ HTTP/1.1\r\nHost: a\r\n\r\n"), NULL, 400},
    /* limits */
    {"line_one_over_limit", IN("GET http://a.test/x HTTP/1.1\r\nHost: a.test\r\n\r\n"), &lim_line27,
     414},
    {"line_over_limit_incomplete", IN("GET http://a.test/xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"),
     &lim_line27, 414},
    {"head_one_over_limit", IN("GET http://a.test/ HTTP/1.1\r\nHost: a.testx\r\n\r\n"), &lim_head45,
     431},
    {"head_over_limit_incomplete",
     IN("GET http://a.test/ HTTP/1.1\r\nHost: a.test\r\nX-Long: aaaaaaaaaaaa"), &lim_head45, 431},
    {"too_many_headers", IN("GET http://a.test/ HTTP/1.1\r\nHost: a\r\nX-A: 1\r\nX-B: 2\r\n\r\n"),
     &lim_hdr2, 431},
};

START_TEST(test_malformed_request_is_refused_with_status)
{
    const struct req_bad *c = &req_bad_cases[_i];
    const struct h1_limits *lim = c->lim ? c->lim : &lim_default;
    struct h1_header *hdrs = calloc(lim->max_headers + 1, sizeof(*hdrs));
    struct h1_request req = {.headers = hdrs};
    struct h1_error err = {0, NULL};
    struct guard g;

    int rc = h1_parse_request(c->in, c->len, lim, &req, &err);
    ck_assert_msg(rc == PX_ERR, "%s: returned %d, want error", c->name, rc);
    ck_assert_msg(err.status == c->status, "%s: status %d (%s), want %d", c->name, err.status,
                  err.reason, c->status);
    ck_assert_msg(err.reason && *err.reason, "%s: no reason", c->name);

    /* prefixes may wait or fail early, but once they fail, with the same status; none may
     * read past its end */
    guard_init(&g, c->len);
    bool failed = false;
    for (size_t k = 0; k <= c->len; k++) {
        const char *b = guard_put(&g, c->in, k);
        err.status = 0;
        rc = h1_parse_request(b, k, lim, &req, &err);
        if (failed || rc == PX_ERR) {
            ck_assert_msg(rc == PX_ERR && err.status == c->status,
                          "%s: prefix %zu returned %d status %d", c->name, k, rc, err.status);
            failed = true;
        } else {
            ck_assert_msg(rc == PX_AGAIN, "%s: prefix %zu returned %d", c->name, k, rc);
        }
    }
    ck_assert(failed);
    guard_free(&g);
    free(hdrs);
}
END_TEST

START_TEST(test_error_reasons_name_the_fault)
{
    static const struct {
        const char *in;
        const char *reason;
    } cases[] = {
        {POST_RL "Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n",
         "Content-Length with Transfer-Encoding"},
        {RL "Host: a\r\nX: 1\r\n y\r\n\r\n", "obs-fold not allowed"},
        {RL "Host : a\r\n\r\n", "whitespace before colon"},
        {RL "Host: a\nX: 1\r\n\r\n", "bare LF"},
        {RL "X: 1\r\n\r\n", "missing Host header"},
        {RL "Host: a..b\r\n\r\n", "invalid Host header"},
        /* The target's host (a.test) as the header's start: what follows still counts. */
        {RL "Host: a.test..\r\n\r\n", "invalid Host header"},
        {RL "Host: a.test:4x\r\n\r\n", "invalid Host header"},
        {"GET http://a..b/ HTTP/1.1\r\nHost: a\r\n\r\n", "empty label in host name"},
        {"GET http://127.1/ HTTP/1.1\r\nHost: a\r\n\r\n",
         "ambiguous IPv4 address (write four decimal parts without leading zeros)"},
        {"GET http://a.test/ HTTP/1.2\r\n\r\n", "unsupported HTTP version"},
    };
    struct h1_header hdrs[8];
    const struct h1_limits lim = {1024, 4096, 8};

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct h1_request req = {.headers = hdrs};
        struct h1_error err = {0, NULL};
        ck_assert_int_eq(h1_parse_request(cases[i].in, strlen(cases[i].in), &lim, &req, &err),
                         PX_ERR);
        ck_assert_str_eq(err.reason, cases[i].reason);
    }
}
END_TEST

/* ---- responses ---- */

struct resp_case {
    const char *name;
    const char *in;
    size_t len;
    bool head_request;
    int error_status; /* 0: parses */
    int status;
    const char *reason;
    enum h1_body body;
    uint64_t content_length;
    bool keep_alive;
    bool websocket;
    size_t num_headers;
};

static const struct resp_case resp_cases[] = {
    {"ok_content_length", IN("HTTP/1.1 200 OK\r\nContent-Length: 12\r\n\r\n"), false, 0, 200, "OK",
     H1_BODY_LENGTH, 12, true, false, 1},
    {"chunked", IN("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"), false, 0, 200, "OK",
     H1_BODY_CHUNKED, 0, true, false, 1},
    {"close_delimited", IN("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\n"), false, 0, 200,
     "OK", H1_BODY_CLOSE, 0, false, false, 1},
    {"no_content", IN("HTTP/1.1 204 No Content\r\n\r\n"), false, 0, 204, "No Content", H1_BODY_NONE,
     0, true, false, 0},
    {"not_modified_with_length", IN("HTTP/1.1 304 Not Modified\r\nContent-Length: 99\r\n\r\n"),
     false, 0, 304, "Not Modified", H1_BODY_NONE, 0, true, false, 1},
    {"continue", IN("HTTP/1.1 100 Continue\r\n\r\n"), false, 0, 100, "Continue", H1_BODY_NONE, 0,
     true, false, 0},
    {"head_response_with_length", IN("HTTP/1.1 200 OK\r\nContent-Length: 500\r\n\r\n"), true, 0,
     200, "OK", H1_BODY_NONE, 0, true, false, 1},
    {"head_response_chunked", IN("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"), true, 0,
     200, "OK", H1_BODY_NONE, 0, true, false, 1},
    {"switching_to_websocket",
     IN("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n"),
     false, 0, 101, "Switching Protocols", H1_BODY_NONE, 0, true, true, 2},
    {"empty_reason", IN("HTTP/1.1 200 \r\nContent-Length: 0\r\n\r\n"), false, 0, 200, NULL,
     H1_BODY_LENGTH, 0, true, false, 1},
    {"missing_reason", IN("HTTP/1.1 204\r\n\r\n"), false, 0, 204, NULL, H1_BODY_NONE, 0, true,
     false, 0},
    {"http10_close", IN("HTTP/1.0 200 OK\r\nContent-Length: 1\r\n\r\n"), false, 0, 200, "OK",
     H1_BODY_LENGTH, 1, false, false, 1},
    {"http10_keep_alive",
     IN("HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 1\r\n\r\n"), false, 0, 200,
     "OK", H1_BODY_LENGTH, 1, true, false, 2},
    {"connection_close", IN("HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 1\r\n\r\n"),
     false, 0, 200, "OK", H1_BODY_LENGTH, 1, false, false, 2},
    {"cl_with_te", IN("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n"),
     false, 502, 0, NULL, H1_BODY_NONE, 0, false, false, 0},
    {"cl_with_te_on_204",
     IN("HTTP/1.1 204 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n"), false, 502,
     0, NULL, H1_BODY_NONE, 0, false, false, 0},
    {"duplicate_cl", IN("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n"), false,
     502, 0, NULL, H1_BODY_NONE, 0, false, false, 0},
    {"bad_cl", IN("HTTP/1.1 200 OK\r\nContent-Length: 5a\r\n\r\n"), false, 502, 0, NULL,
     H1_BODY_NONE, 0, false, false, 0},
    {"te_gzip", IN("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n"), false, 502, 0, NULL,
     H1_BODY_NONE, 0, false, false, 0},
    {"te_in_http10", IN("HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"), false, 502, 0,
     NULL, H1_BODY_NONE, 0, false, false, 0},
    {"obs_fold", IN("HTTP/1.1 200 OK\r\nX-A: 1\r\n 2\r\n\r\n"), false, 502, 0, NULL, H1_BODY_NONE,
     0, false, false, 0},
    {"bare_lf", IN("HTTP/1.1 200 OK\nContent-Length: 0\r\n\r\n"), false, 502, 0, NULL, H1_BODY_NONE,
     0, false, false, 0},
    {"status_not_digits", IN("HTTP/1.1 2x0 OK\r\n\r\n"), false, 502, 0, NULL, H1_BODY_NONE, 0,
     false, false, 0},
    {"status_too_small", IN("HTTP/1.1 099 Odd\r\n\r\n"), false, 502, 0, NULL, H1_BODY_NONE, 0,
     false, false, 0},
    {"status_too_large", IN("HTTP/1.1 600 Odd\r\n\r\n"), false, 502, 0, NULL, H1_BODY_NONE, 0,
     false, false, 0},
    {"status_four_digits", IN("HTTP/1.1 2000 OK\r\n\r\n"), false, 502, 0, NULL, H1_BODY_NONE, 0,
     false, false, 0},
    {"reason_glued", IN("HTTP/1.1 200OK\r\n\r\n"), false, 502, 0, NULL, H1_BODY_NONE, 0, false,
     false, 0},
    {"version_2", IN("HTTP/2.0 200 OK\r\n\r\n"), false, 502, 0, NULL, H1_BODY_NONE, 0, false, false,
     0},
    {"nul_in_reason", IN("HTTP/1.1 200 O\0K\r\n\r\n"), false, 502, 0, NULL, H1_BODY_NONE, 0, false,
     false, 0},
};

START_TEST(test_response_parses_or_is_refused_with_502)
{
    const struct resp_case *c = &resp_cases[_i];
    const struct h1_limits lim = {1024, 4096, 8};
    struct h1_header hdrs[8];
    struct h1_response resp = {.headers = hdrs};
    struct h1_error err = {0, NULL};
    struct guard g;

    int rc = h1_parse_response(c->in, c->len, &lim, c->head_request, &resp, &err);
    if (c->error_status) {
        ck_assert_msg(rc == PX_ERR && err.status == c->error_status, "%s: %d status %d", c->name,
                      rc, err.status);
    } else {
        ck_assert_msg(rc == (int)c->len, "%s: returned %d (%s)", c->name, rc,
                      rc == PX_ERR ? err.reason : "");
        ck_assert_msg(resp.status == c->status, "%s: status %d", c->name, resp.status);
        ck_assert_msg(slice_is(resp.reason, c->reason), "%s: reason", c->name);
        ck_assert_msg(resp.body == c->body, "%s: body %s", c->name, body_names[resp.body]);
        ck_assert_msg(resp.content_length == c->content_length, "%s: length", c->name);
        ck_assert_msg(resp.keep_alive == c->keep_alive, "%s: keep_alive", c->name);
        ck_assert_msg(resp.upgrade_websocket == c->websocket, "%s: websocket", c->name);
        ck_assert_msg(resp.num_headers == c->num_headers, "%s: headers", c->name);
    }

    guard_init(&g, c->len);
    bool failed = false;
    for (size_t k = 0; k <= c->len; k++) {
        const char *b = guard_put(&g, c->in, k);
        rc = h1_parse_response(b, k, &lim, c->head_request, &resp, &err);
        if (k == c->len && !c->error_status) {
            ck_assert_int_eq(rc, (int)c->len);
        } else if (failed || rc == PX_ERR) {
            ck_assert_msg(c->error_status && rc == PX_ERR, "%s: prefix %zu returned %d", c->name, k,
                          rc);
            failed = true;
        } else {
            ck_assert_msg(rc == PX_AGAIN, "%s: prefix %zu returned %d", c->name, k, rc);
        }
    }
    guard_free(&g);
}
END_TEST

START_TEST(test_response_limits_are_502)
{
    struct h1_header hdrs[2];
    struct h1_response resp = {.headers = hdrs};
    struct h1_error err = {0, NULL};
    const struct h1_limits lim = {20, 64, 2};
    static const char *const cases[] = {
        "HTTP/1.1 200 A very long reason phrase\r\n\r\n",  /* status line > 20 */
        "HTTP/1.1 200 OK\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n", /* 3 fields > 2 */
        "HTTP/1.1 200 OK\r\nA: 01234567890123456789012345678901234567890\r\n\r\n", /* 65 */
        "HTTP/1.1 200 OK\r\nA: 0123456789012345678901234567890123456789012345",    /* > 64 */
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int rc = h1_parse_response(cases[i], strlen(cases[i]), &lim, false, &resp, &err);
        ck_assert_msg(rc == PX_ERR && err.status == 502, "case %zu: %d %d", i, rc, err.status);
    }
}
END_TEST

/* ---- chunked bodies ---- */

struct chunk_case {
    const char *name;
    const char *in;
    size_t len;
};

static const struct chunk_case chunk_ok_cases[] = {
    {"one_chunk", IN("5\r\nhello\r\n0\r\n\r\n")},
    {"several_chunks", IN("3\r\nabc\r\n2\r\nde\r\n1\r\nf\r\n0\r\n\r\n")},
    {"empty_body", IN("0\r\n\r\n")},
    {"upper_and_lower_hex", IN("A\r\n0123456789\r\nb\r\n0123456789a\r\n0\r\n\r\n")},
    {"sixteen_digit_size", IN("0000000000000005\r\nhello\r\n0\r\n\r\n")},
    {"extension", IN("5;foo=bar\r\nhello\r\n0;last\r\n\r\n")},
    {"extensions_with_bws", IN("5 ; a = b ;c\t;d=\"x y\"\r\nhello\r\n0\r\n\r\n")},
    {"quoted_extension_escape", IN("5;a=\"q\\\"\\\\;\"\r\nhello\r\n0\r\n\r\n")},
    {"trailers", IN("5\r\nhello\r\n0\r\nX-Checksum: abc\r\nX-Empty:\r\n\r\n")},
    {"crlf_inside_data", IN("4\r\n\r\n\r\n\r\n0\r\n\r\n")},
};

static const struct chunk_case chunk_bad_cases[] = {
    {"non_hex_size", IN("x\r\nhello\r\n0\r\n\r\n")},
    {"empty_size", IN("\r\n0\r\n\r\n")},
    {"negative_size", IN("-5\r\nhello\r\n0\r\n\r\n")},
    {"hex_prefix", IN("0x5\r\nhello\r\n0\r\n\r\n")},
    {"seventeen_digits", IN("00000000000000001\r\nx\r\n0\r\n\r\n")},
    {"size_overflow", IN("10000000000000000\r\n")},
    {"missing_crlf_after_data", IN("5\r\nhelloX\r\n0\r\n\r\n")},
    {"bare_lf_after_size", IN("5\nhello\r\n0\r\n\r\n")},
    {"bare_lf_after_data", IN("5\r\nhello\n0\r\n\r\n")},
    {"bare_cr_after_size", IN("5\rhello\r\n0\r\n\r\n")},
    {"bare_lf_final", IN("5\r\nhello\r\n0\r\n\n")},
    {"space_inside_size", IN("5 5\r\nhello\r\n0\r\n\r\n")},
    {"extension_without_name", IN("5;=x\r\nhello\r\n0\r\n\r\n")},
    {"extension_bad_char", IN("5;a=b@c\r\nhello\r\n0\r\n\r\n")},
    {"unterminated_quote", IN("5;a=\"x\r\nhello\r\n0\r\n\r\n")},
    {"lf_in_extension", IN("5;a\nhello\r\n0\r\n\r\n")},
    {"trailer_obs_fold", IN("0\r\nX: 1\r\n folded\r\n\r\n")},
    {"trailer_space_before_colon", IN("0\r\nX : 1\r\n\r\n")},
    {"trailer_nul", IN("0\r\nX: a\0b\r\n\r\n")},
    {"trailer_bare_lf", IN("0\r\nX: 1\n\r\n")},
    {"trailer_without_colon", IN("0\r\nX\r\n\r\n")},
};

static const char pipelined[] = "GET http://a.test/ HTTP/1.1\r\nHost: a\r\n\r\n";

/* Feeds in[0..len) as two pieces split at `split`; returns what the last call returned and
 * the total consumed. */
static int chunk_feed_split(const char *in, size_t len, size_t split, size_t *total)
{
    struct h1_chunked st = {0};
    struct h1_error err;
    size_t used = 0;

    *total = 0;
    int rc = h1_chunked_feed(&st, in, split, &used, &err);
    *total += used;
    if (rc != PX_AGAIN)
        return rc;
    ck_assert_uint_eq(used, split);
    rc = h1_chunked_feed(&st, in + split, len - split, &used, &err);
    *total += used;
    return rc;
}

static void check_chunked_valid(const char *name, const char *in, size_t len)
{
    char *buf = malloc(len + sizeof(pipelined));
    struct h1_chunked st = {0};
    struct h1_error err;
    size_t used, total;

    /* whole, with the next request right behind it: consumed stops at the body's end */
    memcpy(buf, in, len);
    memcpy(buf + len, pipelined, sizeof(pipelined) - 1);
    int rc = h1_chunked_feed(&st, buf, len + sizeof(pipelined) - 1, &used, &err);
    ck_assert_msg(rc == PX_OK && used == len, "%s: rc %d used %zu of %zu", name, rc, used, len);
    rc = h1_chunked_feed(&st, buf + len, sizeof(pipelined) - 1, &used, &err);
    ck_assert_msg(rc == PX_OK && used == 0, "%s: after the end: rc %d used %zu", name, rc, used);

    /* split at every position, the second piece followed by the next request */
    for (size_t k = 0; k <= len; k++) {
        rc = chunk_feed_split(buf, len + sizeof(pipelined) - 1, k, &total);
        ck_assert_msg(rc == PX_OK && total == len, "%s: split %zu: rc %d total %zu", name, k, rc,
                      total);
    }

    /* one byte at a time, each ending at a guard page */
    struct guard g;
    guard_init(&g, 1);
    memset(&st, 0, sizeof(st));
    for (size_t k = 0; k < len; k++) {
        const char *b = guard_put(&g, in + k, 1);
        rc = h1_chunked_feed(&st, b, 1, &used, &err);
        ck_assert_msg(used == 1, "%s: byte %zu not consumed", name, k);
        ck_assert_msg(rc == (k + 1 == len ? PX_OK : PX_AGAIN), "%s: byte %zu returned %d", name, k,
                      rc);
    }
    guard_free(&g);
    free(buf);
}

START_TEST(test_valid_chunked_body_ends_exactly_at_its_end)
{
    check_chunked_valid(chunk_ok_cases[_i].name, chunk_ok_cases[_i].in, chunk_ok_cases[_i].len);
}
END_TEST

START_TEST(test_big_chunk_sizes_are_counted_not_read)
{
    /* 64 KiB chunk, checked with the same whole/split/bytewise drill */
    const size_t data = 0x10000;
    char *body = malloc(data + 64);
    size_t n = (size_t)sprintf(body, "10000\r\n");
    memset(body + n, 'x', data);
    n += data;
    n += (size_t)sprintf(body + n, "\r\n0\r\n\r\n");
    struct h1_chunked st = {0};
    struct h1_error err;
    size_t used;
    ck_assert_int_eq(h1_chunked_feed(&st, body, n, &used, &err), PX_OK);
    ck_assert_uint_eq(used, n);
    free(body);

    /* the largest size there is: 16 hex digits of F, then data keeps being accepted */
    static const char huge[] = "FFFFFFFFFFFFFFFF\r\n0123456789";
    memset(&st, 0, sizeof(st));
    ck_assert_int_eq(h1_chunked_feed(&st, huge, sizeof(huge) - 1, &used, &err), PX_AGAIN);
    ck_assert_uint_eq(used, sizeof(huge) - 1);
    ck_assert(st.remaining == UINT64_MAX - 10);
}
END_TEST

static void check_chunked_invalid(const char *name, const char *in, size_t len)
{
    struct h1_chunked st = {0};
    struct h1_error err = {0, NULL};
    size_t used;

    int rc = h1_chunked_feed(&st, in, len, &used, &err);
    ck_assert_msg(rc == PX_ERR && err.status == 400, "%s: rc %d", name, rc);
    ck_assert_msg(used <= len, "%s: consumed past the input", name);
    ck_assert(err.reason && *err.reason);
    /* a broken body stays broken, whatever comes next */
    ck_assert_int_eq(h1_chunked_feed(&st, "0\r\n\r\n", 5, &used, &err), PX_ERR);

    /* fed a byte at a time, it must fail too, and never report the body complete */
    struct guard g;
    guard_init(&g, 1);
    memset(&st, 0, sizeof(st));
    rc = PX_AGAIN;
    for (size_t k = 0; k < len && rc == PX_AGAIN; k++)
        rc = h1_chunked_feed(&st, guard_put(&g, in + k, 1), 1, &used, &err);
    ck_assert_msg(rc == PX_ERR, "%s: bytewise rc %d", name, rc);
    guard_free(&g);
}

START_TEST(test_invalid_chunked_body_is_400)
{
    check_chunked_invalid(chunk_bad_cases[_i].name, chunk_bad_cases[_i].in,
                          chunk_bad_cases[_i].len);
}
END_TEST

START_TEST(test_over_long_chunk_lines_are_400)
{
    char buf[6000];

    /* a size line with a 5000-byte extension */
    size_t n = (size_t)sprintf(buf, "5;a=");
    memset(buf + n, 'b', 5000);
    n += 5000;
    n += (size_t)sprintf(buf + n, "\r\nhello\r\n0\r\n\r\n");
    check_chunked_invalid("long_size_line", buf, n);

    /* a 5000-byte trailer line */
    n = (size_t)sprintf(buf, "0\r\nX: ");
    memset(buf + n, 'v', 5000);
    n += 5000;
    n += (size_t)sprintf(buf + n, "\r\n\r\n");
    check_chunked_invalid("long_trailer_line", buf, n);

    /* 4000-byte lines are fine, but not five of them as trailers (16 KiB in all) */
    n = (size_t)sprintf(buf, "0\r\n");
    static char big[5 * 4010 + 16];
    memcpy(big, buf, n);
    for (int i = 0; i < 5; i++) {
        n += (size_t)sprintf(big + n, "X: ");
        memset(big + n, 'v', 4000);
        n += 4000;
        n += (size_t)sprintf(big + n, "\r\n");
    }
    n += (size_t)sprintf(big + n, "\r\n");
    check_chunked_invalid("large_trailer_section", big, n);
}
END_TEST

/* ---- rewriting ---- */

struct rewrite_case {
    const char *name;
    const char *in;
    const char *want;
};

static const struct rewrite_case req_rewrite_cases[] = {
    {"hop_by_hop_removed",
     "GET http://example.com:8080/a?b=1 HTTP/1.1\r\n"
     "Host: wrong.example\r\n"
     "Connection: keep-alive, X-Foo\r\n"
     "X-Foo: 1\r\n"
     "Keep-Alive: timeout=5\r\n"
     "Proxy-Connection: keep-alive\r\n"
     "Proxy-Authorization: Basic Zm9vOmJhcg==\r\n"
     "TE: trailers\r\n"
     "Trailer: X-Sum\r\n"
     "Upgrade: h2c\r\n"
     "Accept: */*\r\n"
     "x-foo: 2\r\n"
     "Via: 1.0 other\r\n"
     "\r\n",
     "GET /a?b=1 HTTP/1.1\r\n"
     "Host: example.com:8080\r\n"
     "Accept: */*\r\n"
     "Via: 1.0 other\r\n"
     "Via: 1.1 proxyd\r\n"
     "\r\n"},
    /* the hop-by-hop names in any case, and names of the same lengths that are not them */
    {"hop_by_hop_names_any_case_only_those",
     "GET http://a.test/ HTTP/1.1\r\nHost: a.test\r\n"
     "KEEP-ALIVE: 1\r\nproxy-CONNECTION: x\r\ntE: trailers\r\nTRAILER: X\r\n"
     "TF: kept\r\nTrailed: kept\r\nKeep-Alivf: kept\r\nProxy-Connectiom: kept\r\n\r\n",
     "GET / HTTP/1.1\r\nHost: a.test\r\n"
     "TF: kept\r\nTrailed: kept\r\nKeep-Alivf: kept\r\nProxy-Connectiom: kept\r\n"
     "Via: 1.1 proxyd\r\n\r\n"},
    {"websocket_keeps_upgrade",
     "GET http://[::1]/chat HTTP/1.1\r\n"
     "Host: [::1]\r\n"
     "Connection: keep-alive, Upgrade\r\n"
     "Upgrade: websocket\r\n"
     "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
     "Sec-WebSocket-Version: 13\r\n"
     "\r\n",
     "GET /chat HTTP/1.1\r\n"
     "Host: [::1]\r\n"
     "Upgrade: websocket\r\n"
     "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
     "Sec-WebSocket-Version: 13\r\n"
     "Via: 1.1 proxyd\r\n"
     "Connection: Upgrade\r\n"
     "\r\n"},
    {"framing_survives_connection_tokens",
     "POST http://a.test/up HTTP/1.1\r\n"
     "Host: a.test\r\n"
     "Connection: Content-Length, Host, X-A\r\n"
     "Content-Length: 5\r\n"
     "X-A: gone\r\n"
     "\r\n",
     "POST /up HTTP/1.1\r\n"
     "Host: a.test\r\n"
     "Content-Length: 5\r\n"
     "Via: 1.1 proxyd\r\n"
     "\r\n"},
    {"chunked_kept",
     "POST http://a.test/ HTTP/1.1\r\nHost: a.test\r\nTransfer-Encoding: chunked\r\n\r\n",
     "POST / HTTP/1.1\r\nHost: a.test\r\nTransfer-Encoding: chunked\r\nVia: 1.1 proxyd\r\n\r\n"},
    {"http10_client_empty_path", "GET http://a.test HTTP/1.0\r\nUser-Agent: x\r\n\r\n",
     "GET / HTTP/1.0\r\nHost: a.test\r\nUser-Agent: x\r\nVia: 1.1 proxyd\r\n\r\n"},
    {"options_empty_path_becomes_asterisk",
     "OPTIONS http://a.test:81 HTTP/1.1\r\nHost: a.test:81\r\n\r\n",
     "OPTIONS * HTTP/1.1\r\nHost: a.test:81\r\nVia: 1.1 proxyd\r\n\r\n"},
    {"host_sent_canonical",
     "GET http://WWW.Example.COM.:8080/ HTTP/1.1\r\nHost: other.example\r\n\r\n",
     "GET / HTTP/1.1\r\nHost: www.example.com:8080\r\nVia: 1.1 proxyd\r\n\r\n"},
    {"ipv4_mapped_sent_as_ipv4", "GET http://[::ffff:10.1.2.3]/ HTTP/1.1\r\nHost: x\r\n\r\n",
     "GET / HTTP/1.1\r\nHost: 10.1.2.3\r\nVia: 1.1 proxyd\r\n\r\n"},
    /* names on many Connection lines: the last still names fields */
    {"ten_connection_lines",
     "GET http://a.test/ HTTP/1.1\r\nHost: a.test\r\n"
     "Connection: x-1\r\nConnection: x-2\r\nConnection: x-3\r\nConnection: x-4\r\n"
     "Connection: x-5\r\nConnection: x-6\r\nConnection: x-7\r\nConnection: x-8\r\n"
     "Connection: x-9\r\nConnection: keep-alive, X-10\r\n"
     "X-1: a\r\nX-8: b\r\nX-9: c\r\nX-10: d\r\nX-11: kept\r\n\r\n",
     "GET / HTTP/1.1\r\nHost: a.test\r\nX-11: kept\r\nVia: 1.1 proxyd\r\n\r\n"},
    /* more names than the rewrite splits out once: the ones past them still name fields */
    {"eighteen_connection_names",
     "GET http://a.test/ HTTP/1.1\r\nHost: a.test\r\n"
     "Connection: x-1, x-2, x-3, x-4, x-5, x-6, x-7, x-8, x-9, x-10, x-11, x-12, x-13, x-14, x-15,"
     " x-16, X-17\r\nConnection: x-18\r\n"
     "X-1: a\r\nX-16: b\r\nX-17: c\r\nX-18: d\r\nX-19: kept\r\n\r\n",
     "GET / HTTP/1.1\r\nHost: a.test\r\nX-19: kept\r\nVia: 1.1 proxyd\r\n\r\n"},
    {"origin_form_keeps_host", "GET /proxy.pac HTTP/1.1\r\nAccept: */*\r\nHost: proxy:3128\r\n\r\n",
     "GET /proxy.pac HTTP/1.1\r\nAccept: */*\r\nHost: proxy:3128\r\nVia: 1.1 proxyd\r\n\r\n"},
};

static void check_rewrite_caps(const char *name, const char *want, size_t want_len,
                               long (*run)(const void *, char *, size_t), const void *arg)
{
    char out[2048];

    /* every cap short of the exact size fails, and nothing is written past cap */
    for (size_t cap = 0; cap < want_len; cap++) {
        memset(out, '#', sizeof(out));
        ck_assert_msg(run(arg, out, cap) == -1, "%s: cap %zu did not fail", name, cap);
        for (size_t k = cap; k < sizeof(out); k++)
            ck_assert_msg(out[k] == '#', "%s: cap %zu wrote at %zu", name, cap, k);
    }
    ck_assert_int_eq(run(arg, out, want_len), (long)want_len);
    ck_assert(memcmp(out, want, want_len) == 0);
}

static long run_req_rewrite(const void *arg, char *out, size_t cap)
{
    return h1_request_rewrite(arg, "proxyd", out, cap);
}

START_TEST(test_request_rewrite_produces_exact_bytes)
{
    const struct rewrite_case *c = &req_rewrite_cases[_i];
    struct h1_header hdrs[32];
    struct h1_request req = {.headers = hdrs};
    struct h1_error err;
    char out[2048];

    ck_assert_int_eq(h1_parse_request(c->in, strlen(c->in), &lim_default, &req, &err),
                     (int)strlen(c->in));
    long n = h1_request_rewrite(&req, "proxyd", out, sizeof(out));
    ck_assert_msg(n == (long)strlen(c->want) && memcmp(out, c->want, (size_t)n) == 0,
                  "%s: got\n%.*s", c->name, (int)(n < 0 ? 0 : n), out);
    check_rewrite_caps(c->name, c->want, strlen(c->want), run_req_rewrite, &req);

    /* what we send must itself parse */
    struct h1_header hdrs2[32];
    struct h1_request again = {.headers = hdrs2};
    ck_assert_int_eq(h1_parse_request(out, (size_t)n, &lim_default, &again, &err), (int)n);
}
END_TEST

struct resp_rewrite_case {
    const char *name;
    const char *in;
    bool client_keep_alive;
    const char *want;
};

static const struct resp_rewrite_case resp_rewrite_cases[] = {
    {"keep_alive_client",
     "HTTP/1.0 200 OK\r\nConnection: keep-alive, X-Gone\r\nKeep-Alive: timeout=5\r\n"
     "X-Gone: 1\r\nContent-Length: 2\r\nTrailer: X\r\nUpgrade: h2c\r\n\r\n",
     true, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nVia: 1.1 proxyd\r\n\r\n"},
    {"closing_client",
     "HTTP/1.0 200 OK\r\nConnection: keep-alive, X-Gone\r\nKeep-Alive: timeout=5\r\n"
     "X-Gone: 1\r\nContent-Length: 2\r\nTrailer: X\r\nUpgrade: h2c\r\n\r\n",
     false, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nVia: 1.1 proxyd\r\nConnection: close\r\n\r\n"},
    {"websocket_101",
     "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
     "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n",
     true,
     "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
     "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\nVia: 1.1 proxyd\r\n"
     "Connection: Upgrade\r\n\r\n"},
    {"missing_reason", "HTTP/1.1 204\r\nVia: 1.1 up\r\n\r\n", true,
     "HTTP/1.1 204 \r\nVia: 1.1 up\r\nVia: 1.1 proxyd\r\n\r\n"},
};

struct resp_arg {
    const struct h1_response *resp;
    bool keep_alive;
};

static long run_resp_rewrite(const void *arg, char *out, size_t cap)
{
    const struct resp_arg *a = arg;
    return h1_response_rewrite(a->resp, "proxyd", a->keep_alive, out, cap);
}

START_TEST(test_response_rewrite_produces_exact_bytes)
{
    const struct resp_rewrite_case *c = &resp_rewrite_cases[_i];
    struct h1_header hdrs[32];
    struct h1_response resp = {.headers = hdrs};
    struct h1_error err;
    char out[2048];

    ck_assert_int_eq(h1_parse_response(c->in, strlen(c->in), &lim_default, false, &resp, &err),
                     (int)strlen(c->in));
    long n = h1_response_rewrite(&resp, "proxyd", c->client_keep_alive, out, sizeof(out));
    ck_assert_msg(n == (long)strlen(c->want) && memcmp(out, c->want, (size_t)n) == 0,
                  "%s: got\n%.*s", c->name, (int)(n < 0 ? 0 : n), out);
    struct resp_arg a = {&resp, c->client_keep_alive};
    check_rewrite_caps(c->name, c->want, strlen(c->want), run_resp_rewrite, &a);
}
END_TEST

START_TEST(test_rewrite_refuses_via_that_could_inject)
{
    struct h1_header hdrs[4];
    struct h1_request req = {.headers = hdrs};
    struct h1_error err;
    char out[512];
    static const char in[] = "GET http://a.test/ HTTP/1.1\r\nHost: a\r\n\r\n";

    ck_assert_int_gt(h1_parse_request(in, sizeof(in) - 1, &lim_default, &req, &err), 0);
    ck_assert_int_eq(h1_request_rewrite(&req, "p\r\nX-Evil: 1", out, sizeof(out)), -1);
    ck_assert_int_eq(h1_request_rewrite(&req, "", out, sizeof(out)), -1);
    ck_assert_int_gt(h1_request_rewrite(&req, "proxy.example:3128 (proxyd)", out, sizeof(out)), 0);
}
END_TEST

START_TEST(test_header_find_is_case_insensitive)
{
    struct h1_header hdrs[4];
    struct h1_request req = {.headers = hdrs};
    struct h1_error err;
    static const char in[] = "GET http://a.test/ HTTP/1.1\r\nHost: a\r\nX-Forwarded-For: "
                             "1\r\nx-forwarded-for: 2\r\n\r\n";

    ck_assert_int_gt(h1_parse_request(in, sizeof(in) - 1, &lim_default, &req, &err), 0);
    ck_assert_int_eq(h1_header_find(hdrs, req.num_headers, "HOST"), 0);
    ck_assert_int_eq(h1_header_find(hdrs, req.num_headers, "X-FORWARDED-FOR"), 1);
    ck_assert_int_eq(h1_header_find(hdrs, req.num_headers, "X-Forwarded"), -1);
    ck_assert_int_eq(h1_header_find(hdrs, req.num_headers, "Hosts"), -1);
    ck_assert_int_eq(h1_header_find(hdrs, 0, "Host"), -1);
}
END_TEST

#define N(a) ((int)(sizeof(a) / sizeof((a)[0])))

static Suite *h1_suite(void)
{
    Suite *s = suite_create("h1_parse");
    TCase *tc = tcase_create("requests");
    tcase_add_loop_test(tc, test_valid_request_parses_to_expected_fields, 0, N(req_ok_cases));
    tcase_add_loop_test(tc, test_malformed_request_is_refused_with_status, 0, N(req_bad_cases));
    tcase_add_test(tc, test_error_reasons_name_the_fault);
    tcase_add_test(tc, test_header_find_is_case_insensitive);
    suite_add_tcase(s, tc);

    tc = tcase_create("responses");
    tcase_add_loop_test(tc, test_response_parses_or_is_refused_with_502, 0, N(resp_cases));
    tcase_add_test(tc, test_response_limits_are_502);
    suite_add_tcase(s, tc);

    tc = tcase_create("chunked");
    tcase_add_loop_test(tc, test_valid_chunked_body_ends_exactly_at_its_end, 0, N(chunk_ok_cases));
    tcase_add_loop_test(tc, test_invalid_chunked_body_is_400, 0, N(chunk_bad_cases));
    tcase_add_test(tc, test_big_chunk_sizes_are_counted_not_read);
    tcase_add_test(tc, test_over_long_chunk_lines_are_400);
    suite_add_tcase(s, tc);

    tc = tcase_create("rewrite");
    tcase_add_loop_test(tc, test_request_rewrite_produces_exact_bytes, 0, N(req_rewrite_cases));
    tcase_add_loop_test(tc, test_response_rewrite_produces_exact_bytes, 0, N(resp_rewrite_cases));
    tcase_add_test(tc, test_rewrite_refuses_via_that_could_inject);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(h1_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
