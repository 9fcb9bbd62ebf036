/* fuzz_h1_request: libFuzzer target for proxy/h1_parse. One input is parsed as a request
 * head (tight and roomy limits) and as a response head; whatever follows a parsed head goes
 * through the chunked validator; parsed heads are rewritten. Invariants are checked with
 * abort() so they hold in release builds too.
 *
 * Linked with fuzz_replay.c instead of libFuzzer, it replays the seed corpus in every build.
 */
#include "proxy/h1_parse.h"
#include "fuzz_check.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_HEADERS 128

static const struct h1_limits lim_tight = {64, 256, 4};
static const struct h1_limits lim_roomy = {8192, 65536, 100};
/* roomy enough for anything our rewrite makes of a head that passed lim_roomy */
static const struct h1_limits lim_reparse = {16384, 131072, MAX_HEADERS};

static bool slice_ok(struct h1_slice s, const char *buf, size_t len)
{
    return s.len == 0 || (s.p >= buf && s.len <= len && s.p + s.len <= buf + len);
}

/* The host is canonical: what acl_host_parse makes of its own output is that output again
 * (one spelling per host), lower case, no trailing dot, IPv4-mapped addresses as IPv4. */
static bool host_canonical(const struct acl_host *h)
{
    struct acl_host again;
    const char *why;
    static const unsigned char mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

    if (h->len == 0 || h->len > ACL_HOST_MAX || strlen(h->text) != h->len ||
        h->text[h->len - 1] == '.' || h->kind >= ACL_HOST_KIND_COUNT)
        return false;
    for (size_t i = 0; i < h->len; i++)
        if ((h->text[i] >= 'A' && h->text[i] <= 'Z') || h->text[i] == '[')
            return false;
    if (acl_host_parse(h->text, h->len, &again, &why) != 0 || again.kind != h->kind ||
        again.len != h->len || memcmp(again.text, h->text, h->len) != 0 ||
        memcmp(again.addr, h->addr, 16) != 0)
        return false;
    if (h->kind == ACL_HOST_NAME)
        return memcmp(h->addr, (const unsigned char[16]){0}, 16) == 0;
    return (h->kind == ACL_HOST_IPV4) == (memcmp(h->addr, mapped, 12) == 0);
}

static bool headers_ok(const struct h1_header *h, size_t n, const char *buf, size_t len)
{
    for (size_t i = 0; i < n; i++)
        if (h[i].name.len == 0 || !slice_ok(h[i].name, buf, len) || !slice_ok(h[i].value, buf, len))
            return false;
    return true;
}

/* Validates buf whole and split in two at `split`: both ways must agree on the verdict and
 * on where the body ends (or where it broke). */
static void fuzz_chunked(const char *buf, size_t len, size_t split)
{
    struct h1_chunked st = {0}, st2 = {0};
    struct h1_error err = {0, NULL};
    size_t used = len + 1, a = 0, b = 0;

    int rc = h1_chunked_feed(&st, buf, len, &used, &err);
    CHECK(rc == PX_AGAIN || rc == PX_OK || rc == PX_ERR);
    CHECK(used <= len);
    if (rc == PX_AGAIN)
        CHECK(used == len);
    if (rc == PX_ERR)
        CHECK(err.status == 400 && err.reason != NULL);

    split = len ? split % (len + 1) : 0;
    int rc2 = h1_chunked_feed(&st2, buf, split, &a, &err);
    CHECK(a <= split);
    if (rc2 == PX_AGAIN) {
        CHECK(a == split);
        rc2 = h1_chunked_feed(&st2, buf + split, len - split, &b, &err);
        CHECK(b <= len - split);
    }
    CHECK(rc2 == rc);
    CHECK(a + b == used);

    /* a finished body stays finished and takes nothing more */
    if (rc == PX_OK) {
        CHECK(h1_chunked_feed(&st, buf, len, &used, &err) == PX_OK && used == 0);
    }
}

static void fuzz_request(const char *buf, size_t len, const struct h1_limits *lim, unsigned knob)
{
    struct h1_header hdrs[MAX_HEADERS], hdrs2[MAX_HEADERS];
    struct h1_request req = {.headers = hdrs}, again = {.headers = hdrs2};
    struct h1_error err = {0, NULL};

    int rc = h1_parse_request(buf, len, lim, &req, &err);
    if (rc == PX_ERR) {
        CHECK(err.status == 400 || err.status == 414 || err.status == 431 || err.status == 501);
        CHECK(err.reason != NULL && err.reason[0] != '\0');
        return;
    }
    if (rc == PX_AGAIN) {
        CHECK(len < lim->max_head_bytes); /* a full window is either a head or an error */
        return;
    }
    CHECK(rc > 0 && (size_t)rc <= len && (size_t)rc <= lim->max_head_bytes);
    const size_t head = (size_t)rc;

    CHECK(req.headers == hdrs && req.num_headers <= lim->max_headers);
    CHECK(headers_ok(hdrs, req.num_headers, buf, head));
    int host = h1_header_find(hdrs, req.num_headers, "HOST");
    CHECK(host >= -1 && host < (int)req.num_headers);
    CHECK(host == -1 ? req.minor_version == 0 : hdrs[host].name.len == 4);
    CHECK(slice_ok(req.method, buf, head) && req.method.len > 0);
    CHECK(slice_ok(req.target, buf, head) && req.target.len > 0);
    CHECK(slice_ok(req.scheme, buf, head));
    CHECK(slice_ok(req.path, buf, head) || (req.path.len == 1 && req.path.p[0] == '/'));
    CHECK(slice_ok(req.proxy_authorization, buf, head));
    CHECK(req.minor_version == 0 || req.minor_version == 1);
    CHECK(req.form < H1_FORM_COUNT);
    CHECK(req.body == H1_BODY_NONE || req.body == H1_BODY_LENGTH || req.body == H1_BODY_CHUNKED);
    if (req.form == H1_FORM_ABSOLUTE || req.form == H1_FORM_AUTHORITY)
        CHECK(host_canonical(&req.host) && req.port > 0);
    else
        CHECK(req.host.len == 0 && req.port == 0);

    /* the parser is stateless: any strict prefix of this head is incomplete */
    size_t cut = head * (knob & 0xff) / 256;
    CHECK(h1_parse_request(buf, cut, lim, &again, &err) == PX_AGAIN);

    if (req.body == H1_BODY_CHUNKED)
        fuzz_chunked(buf + head, len - head, knob);

    /* rewrite: bounded by cap, and every cap either fits exactly the same bytes or fails */
    size_t cap = 2 * head + 256;
    char *out = malloc(cap), *out2 = malloc(cap);
    CHECK(out && out2);
    long n = h1_request_rewrite(&req, "fuzz.proxy", out, cap);
    CHECK(n > 0 && (size_t)n <= cap);
    {
        size_t small = (size_t)n * ((knob >> 8) & 0xff) / 255;
        long m = h1_request_rewrite(&req, "fuzz.proxy", out2, small);
        CHECK(small >= (size_t)n ? m == n : m == -1);
        if (m == n)
            CHECK(memcmp(out, out2, (size_t)n) == 0);
    }
    /* what we would send upstream parses back with the same framing: a request whose body
     * the origin would delimit differently from us is exactly what must never happen */
    if (req.form == H1_FORM_ABSOLUTE) {
        int rc2 = h1_parse_request(out, (size_t)n, &lim_reparse, &again, &err);
        if (rc2 != n)
            fprintf(stderr, "rewrite reparse: %d (%s)\n%.*s", rc2, rc2 == PX_ERR ? err.reason : "",
                    (int)n, out);
        CHECK(rc2 == n);
        /* "OPTIONS http://h" goes upstream as "OPTIONS *" (RFC 9112 3.2.4) */
        CHECK(again.form == H1_FORM_ORIGIN ||
              (again.form == H1_FORM_ASTERISK && req.path.len == 1));
        CHECK(again.minor_version == req.minor_version); /* a 1.0 client is asked for as 1.0 */
        CHECK(again.body == req.body && again.content_length == req.content_length);
        CHECK(again.method.len == req.method.len &&
              memcmp(again.method.p, req.method.p, req.method.len) == 0);
        CHECK(again.upgrade_websocket == req.upgrade_websocket);
        CHECK(again.proxy_authorization.len == 0);
        /* the Host sent upstream names the host the policy judged, spelled the same */
        int h = h1_header_find(hdrs2, again.num_headers, "host");
        CHECK(h >= 0);
        struct h1_slice hv = hdrs2[h].value;
        size_t hl = req.host.len + (req.host.kind == ACL_HOST_IPV6 ? 2 : 0);
        CHECK(hv.len >= hl &&
              memcmp(hv.p + (req.host.kind == ACL_HOST_IPV6), req.host.text, req.host.len) == 0);
    }
    free(out);
    free(out2);
}

static void fuzz_response(const char *buf, size_t len, const struct h1_limits *lim, unsigned knob)
{
    struct h1_header hdrs[MAX_HEADERS];
    struct h1_response resp = {.headers = hdrs};
    struct h1_error err = {0, NULL};

    int rc = h1_parse_response(buf, len, lim, knob & 1, &resp, &err);
    if (rc == PX_ERR) {
        CHECK(err.status == 502 && err.reason != NULL);
        return;
    }
    if (rc == PX_AGAIN) {
        CHECK(len < lim->max_head_bytes);
        return;
    }
    const size_t head = (size_t)rc;
    CHECK(head <= len && resp.num_headers <= lim->max_headers);
    CHECK(resp.status >= 100 && resp.status <= 599);
    CHECK(slice_ok(resp.reason, buf, head));
    CHECK(headers_ok(hdrs, resp.num_headers, buf, head));
    CHECK(resp.body < H1_BODY_COUNT);
    if (resp.body == H1_BODY_CLOSE)
        CHECK(!resp.keep_alive);
    if (resp.body == H1_BODY_CHUNKED)
        fuzz_chunked(buf + head, len - head, knob);

    size_t cap = 2 * head + 256;
    char *out = malloc(cap);
    CHECK(out);
    long n = h1_response_rewrite(&resp, "fuzz.proxy", (knob & 2) != 0, out, cap);
    CHECK(n > 0 && (size_t)n <= cap);
    CHECK(h1_response_rewrite(&resp, "fuzz.proxy", (knob & 2) != 0, out, (size_t)n - 1) == -1);
    free(out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* parse from an exact-size heap copy so ASan sees any read past the end */
    char *buf = malloc(size ? size : 1);
    CHECK(buf);
    memcpy(buf, data, size);
    unsigned knob = size >= 2 ? (unsigned)data[size - 1] | (unsigned)data[size - 2] << 8 : 0;

    fuzz_request(buf, size, &lim_tight, knob);
    fuzz_request(buf, size, &lim_roomy, knob);
    fuzz_response(buf, size, &lim_tight, knob);
    fuzz_response(buf, size, &lim_roomy, knob);
    fuzz_chunked(buf, size, knob);
    free(buf);
    return 0;
}
