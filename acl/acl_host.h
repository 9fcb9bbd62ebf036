/* acl_host: the one canonical form of a host. The HTTP parser produces it for every request
 * target, the policy for every `domain` rule and list entry, and the resolver, the access log
 * and the target-address check read it as produced: two spellings of one host can no longer
 * be judged apart ("Blocked.Example.", "blocked.example"; "[::ffff:127.0.0.1]", "127.0.0.1").
 *
 * Canonical form:
 *   a name   lower case, without the one trailing dot a name may carry; labels of 1..63
 *            letters, digits, '-' or '_'; at most 253 bytes. An internationalised name is
 *            its A-labels (punycode, "xn--bcher-kva.example"), however it was written: a
 *            name in UTF-8 ("Bücher.example") is converted with libidn2 (IDNA2008, UTS #46
 *            non-transitional, as browsers send it), so a rule written either way matches a
 *            request written either way
 *   IPv4     dotted decimal, four parts, no leading zeros ("127.0.0.1"); an IPv4-mapped IPv6
 *            address ("::ffff:127.0.0.1") is this IPv4 address
 *   IPv6     inet_ntop's text, without brackets ("2001:db8::1")
 * Refused: empty labels ("a..b", ".a", "."), any other byte (percent-escapes; non-ASCII that
 * is not a valid IDN), and
 * a name whose last label is a number ("127.1", "0x7f.1", "2130706433", "0127.0.0.1",
 * "a.123"): URL parsers read those as IPv4 in legacy forms that other software reads
 * differently, so proxyd refuses them rather than guess.
 *
 * Part of acl/, so pure: any thread, no I/O; no allocation for ASCII input (every request a
 * browser sends), libidn2's for a name in UTF-8.
 */
#ifndef PX_ACL_HOST_H
#define PX_ACL_HOST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define ACL_HOST_MAX 253 /* longest canonical host text, bytes */

enum acl_host_kind { ACL_HOST_NAME, ACL_HOST_IPV4, ACL_HOST_IPV6, ACL_HOST_KIND_COUNT };

/* "name", "ipv4", "ipv6" */
const char *acl_host_kind_str(enum acl_host_kind k);

struct acl_host {
    enum acl_host_kind kind;
    uint8_t addr[16]; /* IPv4 and IPv6: the address, IPv4 as IPv4-mapped (::ffff:a.b.c.d);
                         all zero for a name */
    uint16_t len;     /* of text */
    char text[ACL_HOST_MAX + 1]; /* canonical text, NUL-terminated */
};

/* Parses in[0..len): a name, a dotted-quad IPv4 address, or an IPv6 address with or without
 * brackets. Returns 0 with *out filled, or -1 with *why set to a static reason ("empty label
 * in host", ...) and *out zeroed. */
int acl_host_parse(const char *in, size_t len, struct acl_host *out, const char **why);

/* A canonical host as people read it: its A-labels turned back into UTF-8 ("bücher.example");
 * any other host, or one whose Unicode is not a valid name with these same A-labels (a
 * right-to-left override, a control), as it is. Returns 0, or -1 when it does not fit
 * in outlen. Allocates (libidn2): for the admin side, not the request path. */
int acl_host_unicode(const char *host, char *out, size_t outlen);

/* True for an IP literal (ACL_HOST_IPV4 or ACL_HOST_IPV6). */
static inline bool acl_host_is_ip(const struct acl_host *h)
{
    return h->kind != ACL_HOST_NAME;
}

#endif
