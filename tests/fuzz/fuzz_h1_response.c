/* fuzz_h1_response: libFuzzer target for the response side of proxy/h1_parse, whose input
 * comes from origins, which are untrusted: h1_parse_response under tight and roomy limits,
 * for a GET and for a HEAD, and the framing it decides (how the body is delimited).
 *
 * Invariants beyond "no crash":
 *   - an error is a 502 with a reason; a full window never waits for more;
 *   - the verdict is the same for GET and HEAD except the body, and does not depend on the
 *     bytes after the head; every strict prefix of a head is "need more" (so a head read in
 *     any number of pieces parses the same);
 *   - the framing agrees with RFC 9112 6.3 computed here from the headers: HEAD, 1xx, 204
 *     and 304 have no body, then chunked, then Content-Length, else until close; never
 *     Content-Length with Transfer-Encoding, nor two Content-Lengths, nor chunked in 1.0;
 *   - the head we send the client (h1_response_rewrite) re-parses to the same status and
 *     framing, and rewriting that again only adds our Via: the canonical form is a fixpoint.
 * The last two input bytes pick the split point and the rewrite's keep-alive.
 *
 * Linked with fuzz_replay.c instead of libFuzzer, it replays the seed corpus in every build.
 */
#include "proxy/h1_parse.h"
#include "fuzz_check.h"

#include <string.h>

#define MAX_HEADERS 128
#define VIA "fuzz.proxy"
#define VIA_LINE "Via: 1.1 " VIA "\r\n"

static const struct h1_limits lim_tight = {64, 256, 4};
static const struct h1_limits lim_roomy = {8192, 65536, 100};
/* roomy enough for anything the rewrite makes of a head that passed lim_roomy */
static const struct h1_limits lim_reparse = {16384, 131072, MAX_HEADERS};

struct parsed {
    int rc;
    struct h1_header hdrs[MAX_HEADERS];
    struct h1_response resp;
    struct h1_error err;
};

static void parse(const char *buf, size_t len, const struct h1_limits *lim, bool head,
                  struct parsed *out)
{
    out->resp.headers = out->hdrs;
    out->err = (struct h1_error){0, NULL};
    out->rc = h1_parse_response(buf, len, lim, head, &out->resp, &out->err);
}

static size_t header_count(const struct parsed *p, const char *name)
{
    size_t n = 0;
    for (size_t i = 0; i < p->resp.num_headers; i++)
        n += h1_header_find(&p->hdrs[i], 1, name) == 0;
    return n;
}

/* Content-Length's value as a decimal number; false if it is not one (or past INT64_MAX). */
static bool decimal(struct h1_slice v, uint64_t *out)
{
    uint64_t n = 0;
    if (v.len == 0)
        return false;
    for (size_t i = 0; i < v.len; i++) {
        if (v.p[i] < '0' || v.p[i] > '9' || __builtin_mul_overflow(n, 10, &n) ||
            __builtin_add_overflow(n, (uint64_t)(v.p[i] - '0'), &n) || n > INT64_MAX)
            return false;
    }
    *out = n;
    return true;
}

/* The framing RFC 9112 6.3 gives an accepted head, worked out here independently. */
static void framing_check(const struct parsed *p, bool head)
{
    const struct h1_response *r = &p->resp;
    const size_t te = header_count(p, "transfer-encoding");
    const size_t cl = header_count(p, "content-length");
    const bool no_body = head || r->status < 200 || r->status == 204 || r->status == 304;

    CHECK(cl <= 1 && !(cl && te)); /* the two ways a body length can be read twice */
    CHECK(te == 0 || r->minor_version == 1);
    if (cl) {
        uint64_t n;
        CHECK(
            decimal(p->hdrs[h1_header_find(p->hdrs, r->num_headers, "content-length")].value, &n));
        CHECK(no_body ? r->content_length == 0 : r->content_length == n);
    }
    if (no_body)
        CHECK(r->body == H1_BODY_NONE && r->content_length == 0);
    else if (te)
        CHECK(r->body == H1_BODY_CHUNKED);
    else if (cl)
        CHECK(r->body == H1_BODY_LENGTH);
    else
        CHECK(r->body == H1_BODY_CLOSE && !r->keep_alive);
    CHECK(!r->upgrade_websocket || r->status == 101);
}

static bool same_slice(struct h1_slice a, const char *abase, struct h1_slice b, const char *bbase)
{
    return a.len == b.len && (a.len == 0 || a.p - abase == b.p - bbase);
}

/* Whether a (parsed from abase) and b (from bbase) are the same head at the same offsets;
 * keep_alive apart, which depends on the body. */
static bool same_head(const struct parsed *a, const char *abase, const struct parsed *b,
                      const char *bbase)
{
    if (a->resp.num_headers != b->resp.num_headers)
        return false;
    for (size_t i = 0; i < a->resp.num_headers; i++)
        if (!same_slice(a->hdrs[i].name, abase, b->hdrs[i].name, bbase) ||
            !same_slice(a->hdrs[i].value, abase, b->hdrs[i].value, bbase))
            return false;
    return a->resp.status == b->resp.status && a->resp.minor_version == b->resp.minor_version &&
           a->resp.upgrade_websocket == b->resp.upgrade_websocket &&
           same_slice(a->resp.reason, abase, b->resp.reason, bbase);
}

/* What the client is sent parses back to the same message, and is a fixpoint of rewriting
 * but for the Via we add each time. */
static void rewrite_check(const struct parsed *p, bool head, bool keep_alive)
{
    static struct parsed again, third;
    const size_t head_len = (size_t)p->rc, cap = 2 * head_len + 256;
    char *out = malloc(cap), *out2 = malloc(cap + sizeof(VIA_LINE));
    CHECK(out && out2);

    long n = h1_response_rewrite(&p->resp, VIA, keep_alive, out, cap);
    CHECK(n > 0 && (size_t)n <= cap);
    CHECK(h1_response_rewrite(&p->resp, VIA, keep_alive, out, (size_t)n - 1) == -1);

    parse(out, (size_t)n, &lim_reparse, head, &again);
    CHECK(again.rc == n);
    CHECK(again.resp.minor_version == 1 && again.resp.status == p->resp.status);
    CHECK(again.resp.body == p->resp.body && again.resp.content_length == p->resp.content_length);
    CHECK(again.resp.upgrade_websocket == p->resp.upgrade_websocket);
    /* a connection we close says so, but for a 101 WebSocket, which says Upgrade */
    CHECK(keep_alive || p->resp.upgrade_websocket || !again.resp.keep_alive);
    framing_check(&again, head);

    if (keep_alive && !p->resp.upgrade_websocket) {
        long n2 = h1_response_rewrite(&again.resp, VIA, true, out2, cap + sizeof(VIA_LINE));
        const size_t via = sizeof(VIA_LINE) - 1;
        CHECK(n2 == n + (long)via);
        CHECK(memcmp(out2, out, (size_t)n - 2) == 0);
        CHECK(memcmp(out2 + n - 2, VIA_LINE "\r\n", via + 2) == 0);
        parse(out2, (size_t)n2, &lim_reparse, head, &third);
        CHECK(third.rc == n2 && third.resp.body == p->resp.body);
    }
    free(out);
    free(out2);
}

static void fuzz_response(const char *buf, size_t len, const struct h1_limits *lim, unsigned knob)
{
    static struct parsed get, head, cut;

    parse(buf, len, lim, false, &get);
    parse(buf, len, lim, true, &head);

    /* HEAD changes the body and nothing else */
    CHECK(get.rc == head.rc);
    if (get.rc == PX_ERR) {
        CHECK(get.err.status == 502 && get.err.reason != NULL && get.err.reason[0] != '\0');
        CHECK(head.err.reason == get.err.reason);
        return;
    }
    if (get.rc == PX_AGAIN) {
        CHECK(len < lim->max_head_bytes); /* a full window is either a head or an error */
        return;
    }
    CHECK(get.rc > 0 && (size_t)get.rc <= len && (size_t)get.rc <= lim->max_head_bytes);
    CHECK(same_head(&get, buf, &head, buf));
    /* a body that runs until close closes the connection; the same head after a HEAD does not */
    CHECK(get.resp.body == H1_BODY_CLOSE || get.resp.keep_alive == head.resp.keep_alive);
    CHECK(get.resp.num_headers <= lim->max_headers);
    CHECK(get.resp.status >= 100 && get.resp.status <= 599);
    CHECK(get.resp.minor_version == 0 || get.resp.minor_version == 1);
    CHECK(get.resp.body < H1_BODY_COUNT && head.resp.body == H1_BODY_NONE);
    framing_check(&get, false);
    framing_check(&head, true);

    /* what follows the head is not read: the head alone (in a buffer of its size, so ASan
     * sees a read past it) parses the same */
    const size_t head_len = (size_t)get.rc;
    char *alone = malloc(head_len);
    CHECK(alone);
    memcpy(alone, buf, head_len);
    parse(alone, head_len, lim, false, &cut);
    CHECK(cut.rc == get.rc && same_head(&cut, alone, &get, buf) &&
          cut.resp.keep_alive == get.resp.keep_alive && cut.resp.body == get.resp.body &&
          cut.resp.content_length == get.resp.content_length);
    free(alone);

    /* the parser keeps no state: any strict prefix of the head is incomplete, so a head that
     * arrives in pieces is parsed when its last piece arrives, and the same */
    size_t split = head_len * (knob & 0xff) / 256;
    parse(buf, split, lim, false, &cut);
    CHECK(cut.rc == PX_AGAIN);
    parse(buf, head_len - 1, lim, false, &cut);
    CHECK(cut.rc == PX_AGAIN);

    rewrite_check(&get, false, (knob & 0x100) != 0);
    rewrite_check(&head, true, (knob & 0x200) != 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* parse from an exact-size heap copy so ASan sees any read past the end */
    char *buf = malloc(size ? size : 1);
    CHECK(buf);
    memcpy(buf, data, size);
    unsigned knob = size >= 2 ? (unsigned)data[size - 1] | (unsigned)data[size - 2] << 8 : 0;

    fuzz_response(buf, size, &lim_tight, knob);
    fuzz_response(buf, size, &lim_roomy, knob);
    free(buf);
    return 0;
}
