/* base/addr.h: the one parser of a socket address written as text, for every setting that
 * names one (proxy listeners, the admin server, DNS servers): "IPv4:PORT" and "[IPv6]:PORT",
 * and where the caller has a default port also "IPv4", "[IPv6]" and a bare IPv6 address
 * ("::1"). Only numeric addresses: a name would need a resolver, and a listener bound to
 * whatever a name meant at start-up is a surprise. Also networks as CIDR text, for settings
 * that admit callers by address (--metrics-allow). Pure, any thread. */
#ifndef PX_BASE_ADDR_H
#define PX_BASE_ADDR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

/* Parses text into *ss (zeroed first) and its length into *len. default_port 0: the port is
 * required; otherwise text may leave it out and gets default_port. An IPv6 address with a port
 * must be in brackets: without them "::1:53" would be an address of its own. The port is
 * decimal digits only, 0..65535 (a caller that cannot use 0 refuses it). Returns PX_OK, or
 * PX_ERR for anything else (the caller words the error: it knows which setting this was). */
int addr_parse(const char *text, uint16_t default_port, struct sockaddr_storage *ss,
               socklen_t *len);

/* The port of an AF_INET or AF_INET6 address in host order; 0 for other families. */
uint16_t addr_port(const struct sockaddr_storage *ss);

/* True when a and b are the same AF_INET or AF_INET6 address (same family: an IPv4-mapped
 * IPv6 address is not its IPv4 address here), and with ports set also the same port. */
bool addr_same(const struct sockaddr_storage *a, const struct sockaddr_storage *b, bool ports);

/* Writes the dotted quad of a (network order) and a NUL into out, returning its length (at
 * most 15). What inet_ntop(AF_INET) writes, at a twentieth of its cost: it runs for every
 * request (the client's address, an address as the target). */
static inline size_t addr_ipv4_text(const uint8_t a[4], char out[16])
{
    char *p = out;
    for (int i = 0; i < 4; i++) {
        unsigned v = a[i];
        if (v >= 100)
            *p++ = (char)('0' + v / 100);
        if (v >= 10)
            *p++ = (char)('0' + v / 10 % 10);
        *p++ = (char)('0' + v % 10);
        *p++ = i < 3 ? '.' : '\0';
    }
    return (size_t)(p - out - 1);
}

/* A network: "10.0.0.0/8", "fd00::/8", or one address ("192.0.2.7", "::1") as a /32 or
 * /128. Host bits set below the prefix are refused, since "10.1.2.3/8" is most likely a
 * typo for something narrower. */
struct addr_net {
    int family; /* AF_INET or AF_INET6 */
    unsigned char ip[16];
    unsigned prefix;
};

/* Parses one network (no spaces). Returns PX_OK, or PX_ERR (the caller words the error). */
int addr_net_parse(const char *text, struct addr_net *out);
/* True if sa (AF_INET or AF_INET6) lies in net; an IPv4 network also holds the IPv4-mapped
 * IPv6 form of its addresses (a dual-stack socket's view of an IPv4 client). */
bool addr_net_contains(const struct addr_net *net, const struct sockaddr *sa);

#endif
