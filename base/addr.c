/* base/addr: "IP:PORT" and "[IPv6]:PORT" into a sockaddr (see addr.h). */
#include "base/addr.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>

#include "base/status.h"

/* Digits only, no sign or space (strtol would take " +80"), at most 65535. */
static int port_parse(const char *s, uint16_t *out)
{
    unsigned long v = 0;

    if (!*s)
        return PX_ERR;
    for (; *s; s++) {
        if (*s < '0' || *s > '9')
            return PX_ERR;
        v = v * 10 + (unsigned long)(*s - '0');
        if (v > 65535)
            return PX_ERR;
    }
    *out = (uint16_t)v;
    return PX_OK;
}

/* host (NUL-terminated, no brackets) as family into ss. */
static int host_parse(const char *host, int family, uint16_t port, struct sockaddr_storage *ss,
                      socklen_t *len)
{
    if (family == AF_INET) {
        struct sockaddr_in *s4 = (struct sockaddr_in *)ss;
        if (inet_pton(AF_INET, host, &s4->sin_addr) != 1)
            return PX_ERR;
        s4->sin_family = AF_INET;
        s4->sin_port = htons(port);
        *len = sizeof(*s4);
        return PX_OK;
    }
    struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;
    if (inet_pton(AF_INET6, host, &s6->sin6_addr) != 1)
        return PX_ERR;
    s6->sin6_family = AF_INET6;
    s6->sin6_port = htons(port);
    *len = sizeof(*s6);
    return PX_OK;
}

int addr_parse(const char *text, uint16_t default_port, struct sockaddr_storage *ss, socklen_t *len)
{
    char host[INET6_ADDRSTRLEN];
    const char *hs = text, *he, *port = NULL;
    int family = AF_INET;
    uint16_t p = default_port;

    memset(ss, 0, sizeof(*ss));
    if (text[0] == '[') {
        hs = text + 1;
        he = strchr(hs, ']');
        if (!he || (he[1] && he[1] != ':'))
            return PX_ERR;
        port = he[1] ? he + 2 : NULL;
        family = AF_INET6;
    } else if (strchr(text, ':') != strrchr(text, ':')) {
        he = text + strlen(text); /* a bare IPv6 address: it has no port */
        family = AF_INET6;
    } else {
        he = strchr(text, ':');
        port = he ? he + 1 : NULL;
        if (!he)
            he = text + strlen(text);
    }
    if (he == hs || (size_t)(he - hs) >= sizeof(host))
        return PX_ERR;
    memcpy(host, hs, (size_t)(he - hs));
    host[he - hs] = '\0';
    if (port ? port_parse(port, &p) < 0 : default_port == 0)
        return PX_ERR;
    return host_parse(host, family, p, ss, len);
}

uint16_t addr_port(const struct sockaddr_storage *ss)
{
    if (ss->ss_family == AF_INET)
        return ntohs(((const struct sockaddr_in *)ss)->sin_port);
    if (ss->ss_family == AF_INET6)
        return ntohs(((const struct sockaddr_in6 *)ss)->sin6_port);
    return 0;
}

bool addr_same(const struct sockaddr_storage *a, const struct sockaddr_storage *b, bool ports)
{
    if (a->ss_family != b->ss_family)
        return false;
    if (a->ss_family == AF_INET) {
        const struct sockaddr_in *x = (const void *)a, *y = (const void *)b;
        return x->sin_addr.s_addr == y->sin_addr.s_addr && (!ports || x->sin_port == y->sin_port);
    }
    if (a->ss_family == AF_INET6) {
        const struct sockaddr_in6 *x = (const void *)a, *y = (const void *)b;
        return !memcmp(&x->sin6_addr, &y->sin6_addr, 16) &&
               (!ports || x->sin6_port == y->sin6_port);
    }
    return false;
}

int addr_net_parse(const char *text, struct addr_net *out)
{
    char ip[INET6_ADDRSTRLEN + 1];
    const char *slash = strchr(text, '/');
    size_t n = slash ? (size_t)(slash - text) : strlen(text);
    unsigned max, prefix = 0;

    memset(out, 0, sizeof(*out));
    if (n == 0 || n >= sizeof(ip))
        return PX_ERR;
    memcpy(ip, text, n);
    ip[n] = '\0';
    if (inet_pton(AF_INET, ip, out->ip) == 1) {
        out->family = AF_INET;
        max = 32;
    } else if (inet_pton(AF_INET6, ip, out->ip) == 1) {
        out->family = AF_INET6;
        max = 128;
    } else {
        return PX_ERR;
    }
    if (!slash) {
        prefix = max;
    } else {
        const char *d = slash + 1;
        if (!*d || strlen(d) > 3)
            return PX_ERR;
        for (; *d; d++) {
            if (*d < '0' || *d > '9')
                return PX_ERR;
            prefix = prefix * 10 + (unsigned)(*d - '0');
        }
        if (prefix > max)
            return PX_ERR;
    }
    out->prefix = prefix;
    for (unsigned bit = prefix; bit < max; bit++)
        if (out->ip[bit / 8] & (0x80u >> (bit % 8)))
            return PX_ERR;
    return PX_OK;
}

bool addr_net_contains(const struct addr_net *net, const struct sockaddr *sa)
{
    const unsigned char *ip;
    unsigned full, rest;

    if (sa->sa_family == AF_INET) {
        ip = (const unsigned char *)&((const struct sockaddr_in *)sa)->sin_addr;
        if (net->family != AF_INET)
            return false;
    } else if (sa->sa_family == AF_INET6) {
        const struct in6_addr *a6 = &((const struct sockaddr_in6 *)sa)->sin6_addr;
        if (net->family == AF_INET && IN6_IS_ADDR_V4MAPPED(a6))
            ip = &a6->s6_addr[12];
        else if (net->family == AF_INET6)
            ip = a6->s6_addr;
        else
            return false;
    } else {
        return false;
    }
    full = net->prefix / 8;
    rest = net->prefix % 8;
    if (memcmp(ip, net->ip, full) != 0)
        return false;
    return rest == 0 || ((ip[full] ^ net->ip[full]) & (0xffu << (8 - rest)) & 0xffu) == 0;
}
