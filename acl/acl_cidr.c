/* acl_cidr.c: client addresses and networks for `client` and `clients`: parsing CIDRs and
 * testing membership. IPv4 is kept IPv4-mapped so one comparison covers both families.
 */
#include "acl/acl_rule.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const uint8_t v4_mapped_prefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

static bool prefix_bits_zero(const uint8_t addr[16], int prefix)
{
    for (int bit = prefix; bit < 128; bit++) {
        if (addr[bit / 8] & (0x80 >> (bit % 8)))
            return false;
    }
    return true;
}

int acl_cidr_parse(const char *s, size_t len, struct acl_cidr *out)
{
    char buf[64];
    const char *slash = memchr(s, '/', len);
    size_t alen = slash ? (size_t)(slash - s) : len;

    if (alen == 0 || alen >= sizeof(buf))
        return -1;
    memcpy(buf, s, alen);
    buf[alen] = '\0';

    int max_prefix;
    int base;
    memset(out, 0, sizeof(*out));
    if (inet_pton(AF_INET, buf, out->addr + 12) == 1) {
        memcpy(out->addr, v4_mapped_prefix, 12);
        max_prefix = 32;
        base = 96;
    } else if (inet_pton(AF_INET6, buf, out->addr) == 1) {
        max_prefix = 128;
        base = 0;
    } else {
        return -1;
    }

    int prefix = max_prefix;
    if (slash) {
        const char *p = slash + 1;
        const char *end = s + len;
        if (p == end || end - p > 3)
            return -1;
        prefix = 0;
        for (; p < end; p++) {
            if (*p < '0' || *p > '9')
                return -1;
            prefix = prefix * 10 + (*p - '0');
        }
        if (prefix > max_prefix)
            return -1;
    }
    out->prefix = (uint8_t)(base + prefix);
    /* "10.1.2.3/8" is almost always a typo for a host or for 10.0.0.0/8: refuse it. */
    if (!prefix_bits_zero(out->addr, out->prefix))
        return -1;
    return 0;
}

int acl_cidr_parse_list(const char *s, size_t len, struct acl_cidr **out, uint32_t *n, char *msg,
                        size_t msglen)
{
    size_t count = 1;
    for (size_t i = 0; i < len; i++)
        count += s[i] == ',';

    struct acl_cidr *v = calloc(count, sizeof(*v));
    if (!v) {
        snprintf(msg, msglen, "out of memory");
        return -1;
    }
    size_t k = 0;
    const char *p = s;
    const char *end = s + len;
    while (p <= end) {
        const char *comma = memchr(p, ',', (size_t)(end - p));
        const char *e = comma ? comma : end;
        if (acl_cidr_parse(p, (size_t)(e - p), &v[k]) != 0) {
            snprintf(msg, msglen, "bad CIDR '%.*s'", (int)(e - p), p);
            free(v);
            return -1;
        }
        k++;
        if (!comma)
            break;
        p = comma + 1;
    }
    *out = v;
    *n = (uint32_t)k;
    return 0;
}

bool acl_addr_from_sockaddr(const struct sockaddr *sa, uint8_t out[16])
{
    if (!sa)
        return false;
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
        memcpy(out, v4_mapped_prefix, 12);
        memcpy(out + 12, &in->sin_addr, 4);
        return true;
    }
    if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
        memcpy(out, &in6->sin6_addr, 16);
        return true;
    }
    return false;
}

bool acl_cidr_contains(const struct acl_cidr *c, const uint8_t addr[16])
{
    int full = c->prefix / 8;
    int rest = c->prefix % 8;

    if (memcmp(c->addr, addr, (size_t)full) != 0)
        return false;
    if (rest == 0)
        return true;
    uint8_t mask = (uint8_t)(0xff << (8 - rest));
    return (c->addr[full] & mask) == (addr[full] & mask);
}

bool acl_cidr_list_contains(const struct acl_cidr *c, uint32_t n, const uint8_t addr[16])
{
    for (uint32_t i = 0; i < n; i++) {
        if (acl_cidr_contains(&c[i], addr))
            return true;
    }
    return false;
}

bool acl_addr_embedded_v4(const uint8_t addr[16], uint8_t out[16])
{
    static const uint8_t nat64_wkp[12] = {0x00, 0x64, 0xff, 0x9b, 0, 0, 0, 0, 0, 0, 0, 0};
    static const uint8_t zero[12] = {0};
    const uint8_t *v4;

    if (!memcmp(addr, nat64_wkp, 12))
        v4 = addr + 12; /* 64:ff9b::a.b.c.d (RFC 6052) */
    else if (addr[0] == 0x20 && addr[1] == 0x02)
        v4 = addr + 2; /* 2002:AABB:CCDD::/48 (6to4, RFC 3056) */
    else if (!memcmp(addr, zero, 12) && (addr[12] | addr[13] | addr[14]))
        v4 = addr + 12; /* ::a.b.c.d (IPv4-compatible; :: and ::1 are not IPv4) */
    else
        return false;
    memcpy(out, v4_mapped_prefix, 12);
    memcpy(out + 12, v4, 4);
    return true;
}

bool acl_dest_list_contains(const struct acl_cidr *c, uint32_t n, const uint8_t addr[16])
{
    uint8_t v4[16];
    return acl_cidr_list_contains(c, n, addr) ||
           (acl_addr_embedded_v4(addr, v4) && acl_cidr_list_contains(c, n, v4));
}
