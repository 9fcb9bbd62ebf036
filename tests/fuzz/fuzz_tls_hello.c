/* fuzz_tls_hello: libFuzzer target for proxy/tls_hello. One input is read as the first bytes of
 * a connection. The oracle walks the records itself (a second, simpler reading of the limits
 * in tls_hello.h) and checks the reader's verdict against it exactly:
 *   not-tls   exactly when the first byte is not 22 or the second not 3
 *   malformed whenever a record the reader must reach declares 0 or more than TLS_RECORD_MAX
 *             bytes, or the handshake header declares 0 or more than TLS_HELLO_MAX
 *   need-more never when the oracle holds the whole ClientHello in well-formed records
 *   parsed    the records the reader took hold exactly one ClientHello of 1..TLS_HELLO_MAX
 *             bytes; every shorter prefix needs more; the SNI is canonical and was in it
 * and the same message cut into records of another size gets the same verdict, facts and
 * reason. Invariants abort, so they hold in release builds too.
 *
 * Linked with fuzz_replay.c instead of libFuzzer, it replays the seed corpus in every build.
 */
#include "proxy/tls_hello.h"
#include "fuzz_check.h"

#include <string.h>

#define HS_CAP (4 + TLS_HELLO_MAX)

/* What the oracle makes of the input's records. */
struct walk {
    uint8_t msg[HS_CAP]; /* the handshake bytes of the well-formed records, up to HS_CAP */
    size_t have;         /* bytes in msg */
    size_t used;         /* input bytes of the records whose payload completed msg */
    bool bad_record;     /* reached a record header declaring 0 or > TLS_RECORD_MAX */
    bool bad_header;     /* the handshake header: not a ClientHello, or length 0 or too long */
    bool complete;       /* msg holds the whole message: 4 + its declared length */
    bool extra;          /* the record that completed it declares more bytes than it needs */
    size_t need;         /* 4 + declared length, once known */
};

static size_t rec_len(const uint8_t *p)
{
    return (size_t)p[3] << 8 | p[4];
}

static void walk(const uint8_t *in, size_t size, struct walk *w)
{
    memset(w, 0, sizeof(*w));
    size_t off = 0;
    while (!w->complete && !w->bad_header && off + 5 <= size && in[off] == 22 && in[off + 1] == 3) {
        size_t n = rec_len(in + off);
        if (n == 0 || n > TLS_RECORD_MAX) {
            w->bad_record = true;
            return;
        }
        size_t end = off + 5 + n;
        for (size_t p = off + 5; p < end && p < size && !w->complete && !w->bad_header; p++) {
            w->msg[w->have++] = in[p];
            if (w->have == 4) {
                size_t body = (size_t)w->msg[1] << 16 | (size_t)w->msg[2] << 8 | w->msg[3];
                w->bad_header = w->msg[0] != 1 || body == 0 || body > TLS_HELLO_MAX;
                w->need = 4 + body;
            }
            if (w->have >= 4 && w->have == w->need) {
                w->complete = end <= size;
                w->extra = p + 1 < end;
                w->used = end;
                if (!w->complete) /* the record's tail is still to come */
                    return;
            }
        }
        if (end > size)
            return;
        off = end;
    }
}

static bool host_canonical(const struct acl_host *h)
{
    struct acl_host again;
    const char *why;
    return h->len > 0 && h->len <= ACL_HOST_MAX && strlen(h->text) == h->len &&
           acl_host_parse(h->text, h->len, &again, &why) == 0 && again.len == h->len &&
           memcmp(again.text, h->text, h->len) == 0 && again.kind == h->kind;
}

/* A case-insensitive search for the host's text in the message; a trailing dot the name had
 * is gone from the canonical form, and an IP literal may have been spelt otherwise. */
static bool name_in(const struct acl_host *h, const uint8_t *msg, size_t n)
{
    if (h->kind != ACL_HOST_NAME)
        return true;
    for (size_t i = 0; i + h->len <= n; i++) {
        size_t k = 0;
        while (k < h->len && (msg[i + k] | 0x20) == (h->text[k] | 0x20))
            k++;
        if (k == h->len)
            return true;
    }
    return false;
}

/* The message msg[0..n) in records of rec bytes of payload. Returns the length. */
static size_t rerecord(const uint8_t *msg, size_t n, size_t rec, uint8_t *out)
{
    size_t o = 0;
    for (size_t off = 0; off < n; off += rec) {
        size_t k = n - off < rec ? n - off : rec;
        out[o++] = 22;
        out[o++] = 3;
        out[o++] = 3;
        out[o++] = (uint8_t)(k >> 8);
        out[o++] = (uint8_t)k;
        memcpy(out + o, msg + off, k);
        o += k;
    }
    return o;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct walk w;
    static uint8_t again[HS_CAP * 6];
    struct tls_hello h, h2;
    const char *why, *why2;

    enum tls_hello_result r = tls_hello_parse(data, size, &h, &why);
    CHECK(r < TLS_HELLO_RESULT_COUNT);
    CHECK((r == TLS_HELLO_MALFORMED) == (why != NULL));

    bool not_tls = (size >= 1 && data[0] != 22) || (size >= 2 && data[1] != 3);
    CHECK((r == TLS_HELLO_NOT_TLS) == not_tls);
    if (not_tls)
        return 0;

    walk(data, size, &w);
    if (w.bad_record || w.bad_header || w.extra)
        CHECK(r == TLS_HELLO_MALFORMED);
    if (w.complete)
        CHECK(r != TLS_HELLO_NEED_MORE);
    if (r != TLS_HELLO_PARSED) {
        CHECK(h.len == 0 && !h.has_sni && !h.has_alpn);
    } else {
        CHECK(w.complete && !w.extra && h.len == w.used && h.len <= size);
        CHECK(w.need >= 5 && w.need <= HS_CAP);
        CHECK(tls_hello_parse(data, h.len - 1, &h2, &why2) == TLS_HELLO_NEED_MORE);
        CHECK(tls_hello_parse(data, (size_t)data[size - 1] % h.len, &h2, &why2) ==
              TLS_HELLO_NEED_MORE);
        CHECK(h.record_version == (data[1] << 8 | data[2]));
        if (h.has_sni)
            CHECK(host_canonical(&h.sni) && name_in(&h.sni, w.msg, w.have));
        else
            CHECK(h.sni.len == 0);
        CHECK(h.legacy_version >> 8 == 3);
    }
    if (!w.complete || w.extra)
        return 0;

    /* Whatever the record boundaries, one message gets one verdict. */
    size_t rec = 1 + (size_t)data[size - 1] * 67 % TLS_RECORD_MAX;
    size_t n = rerecord(w.msg, w.need, rec, again);
    enum tls_hello_result r2 = tls_hello_parse(again, n, &h2, &why2);
    CHECK(r2 == r);
    if (r == TLS_HELLO_MALFORMED) {
        CHECK(strcmp(why, why2) == 0);
        return 0;
    }
    CHECK(h2.len == n && h2.has_sni == h.has_sni && h2.has_alpn == h.has_alpn &&
          h2.legacy_version == h.legacy_version && h2.max_version == h.max_version &&
          h2.record_version == 0x0303 && h2.sni.len == h.sni.len &&
          memcmp(h2.sni.text, h.sni.text, h.sni.len) == 0);
    return 0;
}
