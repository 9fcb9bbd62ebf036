/* test_tls_hello: the ClientHello reader (proxy/tls_hello.c). Hellos are built here field by
 * field, then cut into records of every size and fed whole, as every prefix (bytes arriving
 * in TCP segments), and ending exactly at a guard page so that an over-read crashes. */
#include "proxy/tls_hello.h"

#include <check.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

/* ---- building hellos ---- */

struct bytes {
    uint8_t b[4 * TLS_HELLO_MAX];
    size_t n;
};

static void put(struct bytes *o, const void *p, size_t n)
{
    ck_assert_uint_le(o->n + n, sizeof(o->b));
    memcpy(o->b + o->n, p, n);
    o->n += n;
}

static void put8(struct bytes *o, size_t v)
{
    uint8_t b = (uint8_t)v;
    put(o, &b, 1);
}

static void put16(struct bytes *o, size_t v)
{
    put8(o, v >> 8);
    put8(o, v);
}

static void put_ext(struct bytes *o, size_t type, const struct bytes *data)
{
    put16(o, type);
    put16(o, data->n);
    put(o, data->b, data->n);
}

struct spec {
    const char *sni;    /* NULL: no server_name extension */
    bool alpn;          /* h2, http/1.1 */
    bool tls13;         /* supported_versions: GREASE, 1.3, 1.2 */
    bool no_extensions; /* no extensions block at all (TLS 1.2 and older may) */
    bool others;        /* unrelated extensions before and after ours */
    size_t pad;         /* a padding extension (21) of this many bytes */
    size_t session_id;  /* bytes */
};

static void build_body(const struct spec *s, struct bytes *o)
{
    static struct bytes exts, d;
    o->n = exts.n = 0;
    put16(o, 0x0303);
    for (int i = 0; i < 32; i++)
        put8(o, i);
    put8(o, s->session_id);
    for (size_t i = 0; i < s->session_id; i++)
        put8(o, 0xaa);
    put16(o, 4); /* two cipher suites */
    put16(o, 0x1301);
    put16(o, 0xc02f);
    put8(o, 1);
    put8(o, 0);
    if (s->no_extensions)
        return;
    if (s->others) {
        d.n = 0;
        put(&d, "\x00\x02\x00\x17", 4); /* supported_groups: x25519 */
        put_ext(&exts, 10, &d);
        d.n = 0;
        put_ext(&exts, 23, &d); /* extended_master_secret, empty */
    }
    if (s->sni) {
        size_t n = strlen(s->sni);
        d.n = 0;
        put16(&d, n + 3);
        put8(&d, 0);
        put16(&d, n);
        put(&d, s->sni, n);
        put_ext(&exts, 0, &d);
    }
    if (s->alpn) {
        d.n = 0;
        put16(&d, 12);
        put8(&d, 2);
        put(&d, "h2", 2);
        put8(&d, 8);
        put(&d, "http/1.1", 8);
        put_ext(&exts, 16, &d);
    }
    if (s->tls13) {
        d.n = 0;
        put8(&d, 6);
        put16(&d, 0x3a3a);
        put16(&d, 0x0304);
        put16(&d, 0x0303);
        put_ext(&exts, 43, &d);
    }
    if (s->others) {
        d.n = 0;
        put(&d, "\x00\x04\x03\x00\x01\x02", 6); /* ec_point_formats-like opaque data */
        put_ext(&exts, 0xff01, &d);
    }
    if (s->pad) {
        d.n = 0;
        for (size_t i = 0; i < s->pad; i++)
            put8(&d, 0);
        put_ext(&exts, 21, &d);
    }
    put16(o, exts.n);
    put(o, exts.b, exts.n);
}

/* The handshake message (header + body) in records of at most rec bytes of payload. */
static void wrap(const struct bytes *body, size_t rec, struct bytes *o)
{
    static struct bytes msg;
    msg.n = 0;
    put8(&msg, 1);
    put8(&msg, body->n >> 16);
    put16(&msg, body->n & 0xffff);
    put(&msg, body->b, body->n);
    o->n = 0;
    for (size_t off = 0; off < msg.n; off += rec) {
        size_t n = msg.n - off < rec ? msg.n - off : rec;
        put8(o, 22);
        put16(o, off == 0 ? 0x0301 : 0x0303);
        put16(o, n);
        put(o, msg.b + off, n);
    }
}

static void build(const struct spec *s, size_t rec, struct bytes *o)
{
    static struct bytes body;
    build_body(s, &body);
    wrap(&body, rec, o);
}

/* ---- feeding ---- */

/* Parses in[0..len) placed so that it ends exactly at an inaccessible page. */
static enum tls_hello_result parse_at_guard(const uint8_t *in, size_t len, struct tls_hello *h,
                                            const char **why)
{
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    size_t span = (len + page - 1) / page * page + page;
    uint8_t *m = mmap(NULL, span, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    ck_assert(m != MAP_FAILED);
    ck_assert_int_eq(mprotect(m + span - page, page, PROT_NONE), 0);
    uint8_t *at = m + span - page - len;
    memcpy(at, in, len);
    enum tls_hello_result r = tls_hello_parse(at, len, h, why);
    munmap(m, span);
    return r;
}

/* Every prefix needs more; the whole parses, at a guard page too. */
static void parse_whole(const struct bytes *in, struct tls_hello *h)
{
    const char *why;
    for (size_t i = 0; i < in->n; i++) {
        enum tls_hello_result r = parse_at_guard(in->b, i, h, &why);
        ck_assert_msg(r == TLS_HELLO_NEED_MORE, "prefix %zu of %zu: %s (%s)", i, in->n,
                      tls_hello_result_str(r), why ? why : "");
    }
    enum tls_hello_result r = parse_at_guard(in->b, in->n, h, &why);
    ck_assert_msg(r == TLS_HELLO_PARSED, "whole: %s (%s)", tls_hello_result_str(r), why ? why : "");
    ck_assert_uint_eq(h->len, in->n);
}

/* ---- tests ---- */

START_TEST(test_tls13_hello_with_sni_and_alpn)
{
    static struct bytes in;
    struct spec s = {
        .sni = "WWW.Example.COM.", .alpn = true, .tls13 = true, .others = true, .session_id = 32};
    build(&s, TLS_RECORD_MAX, &in);
    struct tls_hello h;
    parse_whole(&in, &h);
    ck_assert(h.has_sni);
    ck_assert_str_eq(h.sni.text, "www.example.com"); /* canonical */
    ck_assert_int_eq(h.sni.kind, ACL_HOST_NAME);
    ck_assert(h.has_alpn);
    ck_assert_uint_eq(h.record_version, 0x0301);
    ck_assert_uint_eq(h.legacy_version, 0x0303);
    ck_assert_uint_eq(h.max_version, 0x0304); /* GREASE 0x3a3a is not a version */
}
END_TEST

START_TEST(test_hello_split_over_records_of_every_size)
{
    static struct bytes in;
    struct spec s = {.sni = "split.example", .alpn = true, .tls13 = true, .others = true};
    static struct bytes body;
    build_body(&s, &body);
    for (size_t rec = 1; rec <= body.n + 4; rec++) {
        wrap(&body, rec, &in);
        struct tls_hello h;
        const char *why;
        ck_assert_int_eq(tls_hello_parse(in.b, in.n, &h, &why), TLS_HELLO_PARSED);
        ck_assert_str_eq(h.sni.text, "split.example");
        ck_assert_uint_eq(h.len, in.n);
        ck_assert_uint_eq(h.max_version, 0x0304);
        ck_assert(h.has_alpn);
    }
    /* Records of 7 bytes, arriving byte by byte, ending at a guard page. */
    wrap(&body, 7, &in);
    struct tls_hello h;
    parse_whole(&in, &h);
    ck_assert_str_eq(h.sni.text, "split.example");
}
END_TEST

START_TEST(test_hello_without_sni_or_extensions)
{
    static struct bytes in;
    struct tls_hello h;
    struct spec s = {.alpn = true, .tls13 = true, .others = true};
    build(&s, TLS_RECORD_MAX, &in);
    parse_whole(&in, &h);
    ck_assert(!h.has_sni);
    ck_assert_uint_eq(h.sni.len, 0);
    ck_assert(h.has_alpn);

    struct spec old = {.no_extensions = true};
    build(&old, TLS_RECORD_MAX, &in);
    parse_whole(&in, &h);
    ck_assert(!h.has_sni && !h.has_alpn);
    ck_assert_uint_eq(h.max_version, 0x0303); /* TLS 1.2: legacy_version is the offer */
}
END_TEST

START_TEST(test_sni_ip_literal_is_canonical)
{
    static struct bytes in;
    struct tls_hello h;
    struct spec s = {.sni = "::ffff:10.0.0.1"};
    build(&s, TLS_RECORD_MAX, &in);
    parse_whole(&in, &h);
    ck_assert_int_eq(h.sni.kind, ACL_HOST_IPV4);
    ck_assert_str_eq(h.sni.text, "10.0.0.1");
}
END_TEST

START_TEST(test_hello_size_limit)
{
    static struct bytes in, body;
    struct tls_hello h;
    const char *why;
    /* A padding extension sized so that the body is exactly TLS_HELLO_MAX, then one more. */
    struct spec s = {.sni = "big.example", .pad = 0};
    build_body(&s, &body);
    s.pad = TLS_HELLO_MAX - body.n - 4;
    build_body(&s, &body);
    ck_assert_uint_eq(body.n, TLS_HELLO_MAX);
    wrap(&body, TLS_RECORD_MAX, &in);
    ck_assert_int_eq(tls_hello_parse(in.b, in.n, &h, &why), TLS_HELLO_PARSED);
    ck_assert_str_eq(h.sni.text, "big.example");
    s.pad++;
    build_body(&s, &body);
    wrap(&body, TLS_RECORD_MAX, &in);
    ck_assert_int_eq(tls_hello_parse(in.b, in.n, &h, &why), TLS_HELLO_MALFORMED);
    ck_assert_str_eq(why, "ClientHello longer than 16384 bytes");
    /* Known from the handshake header alone: no need to wait for the rest. */
    ck_assert_int_eq(tls_hello_parse(in.b, 9, &h, &why), TLS_HELLO_MALFORMED);
}
END_TEST

static const struct {
    const char *what;
    const char *in;
    size_t len;
} not_tls[] = {
    {"HTTP", "GET / HTTP/1.1\r\nHost: a\r\n\r\n", 27},
    {"SSH", "SSH-2.0-OpenSSH_9.2\r\n", 21},
    {"SSLv2-style hello", "\x80\x2e\x01\x03\x01", 5},
    {"handshake byte, then not version 3", "\x16\x02", 2},
    {"a lone 'G'", "G", 1},
};

START_TEST(test_not_tls)
{
    struct tls_hello h;
    const char *why;
    for (size_t i = 0; i < sizeof(not_tls) / sizeof(not_tls[0]); i++)
        ck_assert_msg(parse_at_guard((const uint8_t *)not_tls[i].in, not_tls[i].len, &h, &why) ==
                          TLS_HELLO_NOT_TLS,
                      "%s", not_tls[i].what);
    ck_assert_int_eq(tls_hello_parse((const uint8_t *)"", 0, &h, &why), TLS_HELLO_NEED_MORE);
    ck_assert_int_eq(tls_hello_parse((const uint8_t *)"\x16", 1, &h, &why), TLS_HELLO_NEED_MORE);
    ck_assert_int_eq(tls_hello_parse((const uint8_t *)"\x16\x03", 2, &h, &why),
                     TLS_HELLO_NEED_MORE);
}
END_TEST

/* Edits of a good hello (records of 40 bytes) and the reason each must give. */
enum edit {
    EDIT_RECORD_LEN_0,
    EDIT_RECORD_LEN_OVER,
    EDIT_SECOND_RECORD_ALERT,
    EDIT_SECOND_RECORD_VERSION,
    EDIT_NOT_CLIENT_HELLO,
    EDIT_BODY_LEN_0,
    EDIT_TRAILING_BYTES,
    EDIT_VERSION_2,
    EDIT_SESSION_ID_33,
    EDIT_CIPHERS_ODD,
    EDIT_NO_COMPRESSION,
    EDIT_EXTS_SHORT,
    EDIT_EXT_OVERRUN,
    EDIT_SNI_TWICE,
    EDIT_TWO_HOST_NAMES,
    EDIT_SNI_EMPTY_LIST,
    EDIT_SNI_EMPTY_NAME,
    EDIT_SNI_BAD_NAME,
    EDIT_SNI_NOT_ASCII,
    EDIT_VERSIONS_ODD,
    EDIT_ALPN_EMPTY_NAME,
    EDIT_COUNT
};

static const char *const edit_why[EDIT_COUNT] = {
    [EDIT_RECORD_LEN_0] = "empty handshake record",
    [EDIT_RECORD_LEN_OVER] = "record longer than 16384 bytes",
    [EDIT_SECOND_RECORD_ALERT] = "a record of another type before the ClientHello ends",
    [EDIT_SECOND_RECORD_VERSION] =
        "a record of another protocol version before the ClientHello ends",
    [EDIT_NOT_CLIENT_HELLO] = "handshake message is not a ClientHello",
    [EDIT_BODY_LEN_0] = "empty ClientHello",
    [EDIT_TRAILING_BYTES] = "bytes after the ClientHello in its record",
    [EDIT_VERSION_2] = "ClientHello version is not 3.x",
    [EDIT_SESSION_ID_33] = "session id longer than 32 bytes or running past the ClientHello",
    [EDIT_CIPHERS_ODD] = "cipher suite list empty, odd or running past the ClientHello",
    [EDIT_NO_COMPRESSION] = "compression method list empty or running past the ClientHello",
    [EDIT_EXTS_SHORT] = "extensions do not exactly fill the rest of the ClientHello",
    [EDIT_EXT_OVERRUN] = "extension runs past the extensions block",
    [EDIT_SNI_TWICE] = "an extension appears twice",
    [EDIT_TWO_HOST_NAMES] = "two host names in server_name",
    [EDIT_SNI_EMPTY_LIST] = "server_name list empty or not filling its extension",
    [EDIT_SNI_EMPTY_NAME] = "empty host name in server_name",
    [EDIT_SNI_BAD_NAME] = "empty label in host name",
    [EDIT_SNI_NOT_ASCII] = "host name in server_name is not ASCII",
    [EDIT_VERSIONS_ODD] = "supported_versions list empty, odd or not filling its extension",
    [EDIT_ALPN_EMPTY_NAME] = "ALPN protocol name empty or running past its list",
};

/* A body with hand-made extensions (ext, ext_len) after the fixed fields. */
static void body_with_exts(struct bytes *o, const void *ext, size_t ext_len)
{
    struct spec s = {.no_extensions = true};
    build_body(&s, o);
    put16(o, ext_len);
    put(o, ext, ext_len);
}

static void make_edit(enum edit e, struct bytes *in)
{
    static struct bytes body;
    struct spec s = {.sni = "ok.example", .alpn = true, .tls13 = true};
    build_body(&s, &body);
    /* Offsets in the body: version 0, random 2, session id length 34, cipher length 35,
     * ciphers 37..40, compression length 41, method 42, extensions length 43. */
    switch (e) {
    case EDIT_NOT_CLIENT_HELLO:
    case EDIT_BODY_LEN_0:
    case EDIT_RECORD_LEN_0:
    case EDIT_RECORD_LEN_OVER:
    case EDIT_SECOND_RECORD_ALERT:
    case EDIT_SECOND_RECORD_VERSION:
    case EDIT_TRAILING_BYTES:
    case EDIT_COUNT:
        break;
    case EDIT_VERSION_2:
        body.b[0] = 2;
        break;
    case EDIT_SESSION_ID_33:
        body.b[34] = 33;
        break;
    case EDIT_CIPHERS_ODD:
        body.b[36] = 3;
        break;
    case EDIT_NO_COMPRESSION:
        body.b[41] = 0;
        break;
    case EDIT_EXTS_SHORT:
        body.b[44]--;
        break;
    case EDIT_EXT_OVERRUN:
        body_with_exts(&body, "\x00\x17\x00\x05\x00", 5);
        break;
    case EDIT_SNI_TWICE:
        body_with_exts(&body,
                       "\x00\x00\x00\x06\x00\x04\x00\x00\x01x"
                       "\x00\x00\x00\x06\x00\x04\x00\x00\x01y",
                       20);
        break;
    case EDIT_TWO_HOST_NAMES:
        body_with_exts(&body, "\x00\x00\x00\x0a\x00\x08\x00\x00\x01x\x00\x00\x01y", 14);
        break;
    case EDIT_SNI_EMPTY_LIST:
        body_with_exts(&body, "\x00\x00\x00\x02\x00\x00", 6);
        break;
    case EDIT_SNI_EMPTY_NAME:
        body_with_exts(&body, "\x00\x00\x00\x05\x00\x03\x00\x00\x00", 9);
        break;
    case EDIT_SNI_BAD_NAME:
        body_with_exts(&body, "\x00\x00\x00\x09\x00\x07\x00\x00\x04\x61..b", 13);
        break;
    case EDIT_SNI_NOT_ASCII: /* "bü" in UTF-8, not its A-label */
        body_with_exts(&body,
                       "\x00\x00\x00\x08\x00\x06\x00\x00\x03"
                       "b\xc3\xbc",
                       12);
        break;
    case EDIT_VERSIONS_ODD:
        body_with_exts(&body, "\x00\x2b\x00\x04\x03\x03\x04\x03", 8);
        break;
    case EDIT_ALPN_EMPTY_NAME:
        body_with_exts(&body, "\x00\x10\x00\x06\x00\x04\x02h2\x00", 10);
        break;
    }
    wrap(&body, 40, in);
    switch (e) {
    case EDIT_NOT_CLIENT_HELLO:
        in->b[5] = 2;
        break;
    case EDIT_BODY_LEN_0:
        in->b[6] = in->b[7] = in->b[8] = 0;
        break;
    case EDIT_RECORD_LEN_0:
        in->b[45 + 3] = in->b[45 + 4] = 0; /* the second record's header */
        break;
    case EDIT_RECORD_LEN_OVER:
        in->b[3] = 0x40;
        in->b[4] = 0x01;
        break;
    case EDIT_SECOND_RECORD_ALERT:
        in->b[45] = 21;
        break;
    case EDIT_SECOND_RECORD_VERSION:
        in->b[46] = 2;
        break;
    case EDIT_TRAILING_BYTES: {
        /* One more byte inside the last record. */
        size_t last = in->n - 1 - ((body.n + 4) % 40 ? (body.n + 4) % 40 : 40) - 4;
        size_t rlen = (size_t)in->b[last + 3] << 8 | in->b[last + 4];
        rlen++;
        in->b[last + 3] = (uint8_t)(rlen >> 8);
        in->b[last + 4] = (uint8_t)rlen;
        put8(in, 0);
        break;
    }
    default:
        break;
    }
}

START_TEST(test_malformed)
{
    static struct bytes in;
    for (int e = 0; e < EDIT_COUNT; e++) {
        make_edit((enum edit)e, &in);
        struct tls_hello h;
        const char *why;
        enum tls_hello_result r = parse_at_guard(in.b, in.n, &h, &why);
        ck_assert_msg(r == TLS_HELLO_MALFORMED, "edit %d: %s", e, tls_hello_result_str(r));
        ck_assert_msg(why && !strcmp(why, edit_why[e]), "edit %d: '%s', want '%s'", e,
                      why ? why : "(null)", edit_why[e]);
        ck_assert(!h.has_sni && h.len == 0);
    }
}
END_TEST

START_TEST(test_result_names)
{
    ck_assert_str_eq(tls_hello_result_str(TLS_HELLO_PARSED), "parsed");
    ck_assert_str_eq(tls_hello_result_str(TLS_HELLO_NEED_MORE), "need-more");
    ck_assert_str_eq(tls_hello_result_str(TLS_HELLO_NOT_TLS), "not-tls");
    ck_assert_str_eq(tls_hello_result_str(TLS_HELLO_MALFORMED), "malformed");
    ck_assert_str_eq(tls_hello_result_str(TLS_HELLO_RESULT_COUNT), "?");
}
END_TEST

int main(void)
{
    Suite *s = suite_create("tls_hello");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_tls13_hello_with_sni_and_alpn);
    tcase_add_test(tc, test_hello_split_over_records_of_every_size);
    tcase_add_test(tc, test_hello_without_sni_or_extensions);
    tcase_add_test(tc, test_sni_ip_literal_is_canonical);
    tcase_add_test(tc, test_hello_size_limit);
    tcase_add_test(tc, test_not_tls);
    tcase_add_test(tc, test_malformed);
    tcase_add_test(tc, test_result_names);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
