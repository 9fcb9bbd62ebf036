/* tls_hello: the ClientHello reader. Two passes: the records are checked and their payload
 * gathered into one flat copy of the handshake message (a ClientHello may be split over
 * records at any byte), then that copy is read field by field, each length checked against
 * the field that holds it. Pure: any thread. */
#include "proxy/tls_hello.h"

#include <string.h>

#define REC_HANDSHAKE 22
#define HS_CLIENT_HELLO 1
#define HS_HEADER 4 /* msg_type, 24-bit length */

#define EXT_SERVER_NAME 0
#define EXT_ALPN 16
#define EXT_SUPPORTED_VERSIONS 43
#define SNI_HOST_NAME 0

static const char *const result_names[TLS_HELLO_RESULT_COUNT] = {
    [TLS_HELLO_PARSED] = "parsed",
    [TLS_HELLO_NEED_MORE] = "need-more",
    [TLS_HELLO_NOT_TLS] = "not-tls",
    [TLS_HELLO_MALFORMED] = "malformed",
};

const char *tls_hello_result_str(enum tls_hello_result r)
{
    return (unsigned)r < TLS_HELLO_RESULT_COUNT ? result_names[r] : "?";
}

/* ---- pass 1: records -> one handshake message ---- */

/* Gathers the handshake message from the records at in[0..len) into hs (HS_HEADER +
 * TLS_HELLO_MAX bytes). Returns PARSED with *msg_len (header included) and *used (bytes of
 * in taken), or another result. */
static enum tls_hello_result gather(const uint8_t *in, size_t len, uint8_t *hs, size_t *msg_len,
                                    size_t *used, const char **why)
{
    size_t off = 0, have = 0, need = HS_HEADER;
    for (;;) {
        if (off == 0 && len >= 1 && in[0] != REC_HANDSHAKE)
            return TLS_HELLO_NOT_TLS;
        if (off == 0 && len >= 2 && in[1] != 3)
            return TLS_HELLO_NOT_TLS;
        if (off > 0 && off < len && in[off] != REC_HANDSHAKE) {
            *why = "a record of another type before the ClientHello ends";
            return TLS_HELLO_MALFORMED;
        }
        if (off > 0 && off + 1 < len && in[off + 1] != 3) {
            *why = "a record of another protocol version before the ClientHello ends";
            return TLS_HELLO_MALFORMED;
        }
        if (len - off < 5)
            return TLS_HELLO_NEED_MORE;
        size_t rlen = (size_t)in[off + 3] << 8 | in[off + 4];
        if (rlen == 0) {
            *why = "empty handshake record";
            return TLS_HELLO_MALFORMED;
        }
        if (rlen > TLS_RECORD_MAX) {
            *why = "record longer than 16384 bytes";
            return TLS_HELLO_MALFORMED;
        }
        size_t p = off + 5, rec_end = p + rlen;
        size_t avail_end = rec_end < len ? rec_end : len;
        while (p < avail_end) {
            if (have == need) {
                *why = "bytes after the ClientHello in its record";
                return TLS_HELLO_MALFORMED;
            }
            if (have < HS_HEADER) {
                hs[have++] = in[p++];
                if (have < HS_HEADER)
                    continue;
                if (hs[0] != HS_CLIENT_HELLO) {
                    *why = "handshake message is not a ClientHello";
                    return TLS_HELLO_MALFORMED;
                }
                size_t body = (size_t)hs[1] << 16 | (size_t)hs[2] << 8 | hs[3];
                if (body == 0 || body > TLS_HELLO_MAX) {
                    *why = body ? "ClientHello longer than 16384 bytes" : "empty ClientHello";
                    return TLS_HELLO_MALFORMED;
                }
                need = HS_HEADER + body;
                continue;
            }
            size_t n = avail_end - p < need - have ? avail_end - p : need - have;
            memcpy(hs + have, in + p, n);
            have += n;
            p += n;
        }
        if (have == need && p < rec_end) {
            *why = "bytes after the ClientHello in its record";
            return TLS_HELLO_MALFORMED;
        }
        if (p < rec_end)
            return TLS_HELLO_NEED_MORE;
        off = rec_end;
        if (have == need) {
            *msg_len = have;
            *used = off;
            return TLS_HELLO_PARSED;
        }
    }
}

/* ---- pass 2: the ClientHello's fields ---- */

/* A bounded view of bytes still to read. */
struct rd {
    const uint8_t *p;
    size_t left;
};

static bool take(struct rd *r, size_t n, struct rd *part)
{
    if (n > r->left)
        return false;
    if (part) {
        part->p = r->p;
        part->left = n;
    }
    r->p += n;
    r->left -= n;
    return true;
}

static bool u8(struct rd *r, size_t *v)
{
    if (r->left < 1)
        return false;
    *v = r->p[0];
    return take(r, 1, NULL);
}

static bool u16(struct rd *r, size_t *v)
{
    if (r->left < 2)
        return false;
    *v = (size_t)r->p[0] << 8 | r->p[1];
    return take(r, 2, NULL);
}

/* A vector with a length prefix of 1 or 2 bytes, that must fill exactly what holds it when
 * whole is set. */
static bool vec(struct rd *r, int prefix, bool whole, struct rd *part)
{
    size_t n;
    if (!(prefix == 1 ? u8(r, &n) : u16(r, &n)) || !take(r, n, part))
        return false;
    return !whole || r->left == 0;
}

/* GREASE (RFC 8701): reserved values clients offer to keep servers tolerant; never a version. */
static bool is_grease(size_t v)
{
    return (v & 0x0f0f) == 0x0a0a && (v >> 8) == (v & 0xff);
}

static const char *read_server_name(struct rd ext, struct tls_hello *out)
{
    struct rd list;
    if (!vec(&ext, 2, true, &list) || list.left == 0)
        return "server_name list empty or not filling its extension";
    while (list.left > 0) {
        size_t type;
        struct rd name;
        if (!u8(&list, &type) || !vec(&list, 2, false, &name))
            return "server_name entry runs past its list";
        if (type != SNI_HOST_NAME)
            continue;
        if (out->has_sni)
            return "two host names in server_name";
        if (name.left == 0)
            return "empty host name in server_name";
        /* RFC 6066 3: the name is ASCII, an IDN in A-labels. Raw UTF-8 here is no name any
         * client sends: converting it would judge a name the server will not see. */
        for (size_t i = 0; i < name.left; i++)
            if (name.p[i] >= 0x80)
                return "host name in server_name is not ASCII";
        const char *why;
        if (acl_host_parse((const char *)name.p, name.left, &out->sni, &why) != 0)
            return why;
        out->has_sni = true;
    }
    return NULL;
}

static const char *read_alpn(struct rd ext, struct tls_hello *out)
{
    struct rd list;
    if (!vec(&ext, 2, true, &list) || list.left == 0)
        return "ALPN list empty or not filling its extension";
    while (list.left > 0) {
        struct rd proto;
        if (!vec(&list, 1, false, &proto) || proto.left == 0)
            return "ALPN protocol name empty or running past its list";
    }
    out->has_alpn = true;
    return NULL;
}

static const char *read_versions(struct rd ext, struct tls_hello *out)
{
    struct rd list;
    if (!vec(&ext, 1, true, &list) || list.left == 0 || list.left % 2)
        return "supported_versions list empty, odd or not filling its extension";
    size_t best = 0;
    while (list.left > 0) {
        size_t v = 0;
        u16(&list, &v); /* cannot fail: an even count of bytes is left */
        if (!is_grease(v) && v > best)
            best = v;
    }
    if (best == 0)
        return "supported_versions offers no version";
    out->max_version = (uint16_t)best;
    return NULL;
}

static const char *read_extensions(struct rd *r, struct tls_hello *out)
{
    struct rd exts;
    if (!vec(r, 2, true, &exts))
        return "extensions do not exactly fill the rest of the ClientHello";
    bool seen_sni = false, seen_alpn = false, seen_versions = false;
    while (exts.left > 0) {
        size_t type;
        struct rd ext;
        if (!u16(&exts, &type) || !vec(&exts, 2, false, &ext))
            return "extension runs past the extensions block";
        const char *why = NULL;
        bool *seen = type == EXT_SERVER_NAME          ? &seen_sni
                     : type == EXT_ALPN               ? &seen_alpn
                     : type == EXT_SUPPORTED_VERSIONS ? &seen_versions
                                                      : NULL;
        if (seen && *seen)
            return "an extension appears twice";
        if (seen)
            *seen = true;
        if (type == EXT_SERVER_NAME)
            why = read_server_name(ext, out);
        else if (type == EXT_ALPN)
            why = read_alpn(ext, out);
        else if (type == EXT_SUPPORTED_VERSIONS)
            why = read_versions(ext, out);
        if (why)
            return why;
    }
    return NULL;
}

static const char *read_hello(struct rd r, struct tls_hello *out)
{
    size_t version, n;
    struct rd part;
    if (!u16(&r, &version) || !take(&r, 32, NULL))
        return "ClientHello too short for its version and random";
    if (version >> 8 != 3)
        return "ClientHello version is not 3.x";
    out->legacy_version = (uint16_t)version;
    out->max_version = (uint16_t)version;
    if (!u8(&r, &n) || n > 32 || !take(&r, n, NULL))
        return "session id longer than 32 bytes or running past the ClientHello";
    if (!vec(&r, 2, false, &part) || part.left == 0 || part.left % 2)
        return "cipher suite list empty, odd or running past the ClientHello";
    if (!vec(&r, 1, false, &part) || part.left == 0)
        return "compression method list empty or running past the ClientHello";
    if (r.left == 0)
        return NULL; /* no extensions: allowed before TLS 1.3 */
    return read_extensions(&r, out);
}

enum tls_hello_result tls_hello_parse(const uint8_t *in, size_t len, struct tls_hello *out,
                                      const char **why)
{
    uint8_t hs[HS_HEADER + TLS_HELLO_MAX];
    size_t msg_len = 0, used = 0;
    memset(out, 0, sizeof(*out));
    *why = NULL;
    enum tls_hello_result res = gather(in, len, hs, &msg_len, &used, why);
    if (res != TLS_HELLO_PARSED)
        return res;
    struct tls_hello h = {.len = used, .record_version = (uint16_t)(in[1] << 8 | in[2])};
    *why = read_hello((struct rd){hs + HS_HEADER, msg_len - HS_HEADER}, &h);
    if (*why)
        return TLS_HELLO_MALFORMED;
    *out = h;
    return TLS_HELLO_PARSED;
}
