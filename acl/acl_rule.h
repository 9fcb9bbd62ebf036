/* acl_rule.h: one parsed rule (struct acl_rule) and the pieces it is made of: addresses and
 * CIDRs, name lists, port ranges, schedules. Internal to acl/; the public interface is acl.h.
 */
#ifndef PX_ACL_RULE_H
#define PX_ACL_RULE_H

#include "acl/acl.h"

#include <pcre2.h> /* PCRE2_CODE_UNIT_WIDTH=8 comes from acl/CMakeLists.txt */

enum acl_match {
    ACL_MATCH_DOMAIN,
    ACL_MATCH_HOST_REGEX,
    ACL_MATCH_URL_REGEX,
    ACL_MATCH_CLIENT,
    ACL_MATCH_DEST,
    ACL_MATCH_USER,
    ACL_MATCH_METHOD,
    ACL_MATCH_PORT,
    ACL_MATCH_LIST,
    ACL_MATCH_ANY,
    ACL_MATCH_COUNT
};

/* The keyword of a match: "domain", "host-regex", ... */
const char *acl_match_str(enum acl_match m);

/* An address or network. IPv4 is stored IPv4-mapped (::ffff:a.b.c.d, prefix + 96), so an
 * IPv4 CIDR also matches clients that arrive as IPv4-mapped IPv6. */
struct acl_cidr {
    uint8_t addr[16];
    uint8_t prefix; /* 0..128 */
};

/* A comma list of names (users, methods): NUL-separated in one owned buffer. */
struct acl_names {
    char *buf; /* owned, "a\0b\0" */
    uint32_t count;
};

struct acl_port_range {
    uint16_t lo, hi;
};

/* Days are a bitmask (bit 0 = Sunday). When start > end the window crosses midnight: it
 * runs from start on a listed day to end on the day after. */
struct acl_schedule {
    uint8_t days;
    uint16_t start_min; /* 0..1439 */
    uint16_t end_min;   /* 0..1440 */
};

struct acl_rule {
    int id;
    bool enabled;
    /* `group NAME MEMBER[,MEMBER...]`: a definition, never a rule of a set. arg is NAME, cidrs
     * its networks, names its users (members "user:NAME"). */
    bool is_group;
    /* `name ADDRESS LABEL`: what the admin pages call a client; never a rule of a set. arg is
     * LABEL, cidrs[0] the address (a host route). */
    bool is_name;
    enum acl_action action; /* ACL_ALLOW, ACL_DENY, ACL_REPORT or ACL_INSPECT */
    enum acl_match match;
    char *arg; /* owned: the match argument (domain canonical), for reasons; "" for any */

    /* The parsed match argument; which member is used depends on match. */
    pcre2_code *re;         /* owned; host-regex, url-regex */
    bool in_group;          /* re is also an alternative of its kind's prefilter (struct acl_set) */
    struct acl_cidr *cidrs; /* owned; client, dest, and domain with an IP address (one host
                               route: matched on the binary address, not in the domain index) */
    uint32_t ncidrs;
    struct acl_names names;       /* user, method */
    struct acl_port_range *ports; /* owned; port */
    uint32_t nports;

    /* Conditions. */
    bool has_clients, has_users, has_schedule, has_expiry;
    struct acl_cidr *cond_clients; /* owned */
    uint32_t ncond_clients;
    struct acl_names cond_users;
    /* `clients @G` and `users @G`: the groups named, resolved by the compiler, which adds
     * their networks to cond_clients and their users to cond_users. */
    struct acl_names cond_client_groups, cond_user_groups;
    struct acl_schedule schedule;
    int64_t expires; /* has_expiry: seconds since the epoch from which the rule never matches */
};

/* Parses one rule's text into *r (zeroed first). jit: also JIT-compile regexes (for a rule
 * set; a syntax check does not need it). Returns 0, or -1 with a message such as
 * "url-regex: missing closing parenthesis at offset 4" or "not valid UTF-8 (byte 0xff at
 * offset 12)" in msg (r left empty). */
int acl_rule_parse(const char *text, bool jit, struct acl_rule *r, char *msg, size_t msglen);
/* Frees what r owns and zeroes it. */
void acl_rule_clear(struct acl_rule *r);
/* Heap bytes owned by r (approximate, includes compiled regex and JIT code). */
size_t acl_rule_memory(const struct acl_rule *r);
/* True if the rule can only be decided with an authenticated user. */
bool acl_rule_needs_user(const struct acl_rule *r);

/* Offset of the comment in s[0..len): a '#' that starts a token outside double quotes.
 * Returns len if there is none. */
size_t acl_comment_start(const char *s, size_t len);

/* ---- Addresses (acl_cidr.c) ---- */

/* Parses "10.0.0.0/8", "::1/128" or a bare address (host route). Host bits must be zero.
 * Returns 0 or -1. */
int acl_cidr_parse(const char *s, size_t len, struct acl_cidr *out);
/* Parses a comma-separated CIDR list into an owned array. Returns 0, or -1 with the bad
 * element described in msg ("bad CIDR '10.0.0.0/33'"). */
int acl_cidr_parse_list(const char *s, size_t len, struct acl_cidr **out, uint32_t *n, char *msg,
                        size_t msglen);
/* Converts a socket address to 16 bytes (IPv4 as IPv4-mapped). false if not IPv4/IPv6. */
bool acl_addr_from_sockaddr(const struct sockaddr *sa, uint8_t out[16]);
bool acl_cidr_contains(const struct acl_cidr *c, const uint8_t addr[16]);
bool acl_cidr_list_contains(const struct acl_cidr *c, uint32_t n, const uint8_t addr[16]);
/* The IPv4 address (IPv4-mapped) that an IPv6 address carries for a translator to reach:
 * NAT64's well-known prefix 64:ff9b::/96, 6to4 2002::/16 and IPv4-compatible ::/96. false
 * for any other address. */
bool acl_addr_embedded_v4(const uint8_t addr[16], uint8_t out[16]);
/* acl_cidr_list_contains for a destination: true also when the IPv4 address it embeds is in
 * the list, so that "deny dest 10.0.0.0/8" holds for 64:ff9b::a00:1 and 2002:a00:1::. */
bool acl_dest_list_contains(const struct acl_cidr *c, uint32_t n, const uint8_t addr[16]);

/* ---- Schedules (acl_schedule.c) ---- */

/* Parses DAYS ("mon-fri", "sat,sun", "daily", "mon,wed-fri") and "HH:MM-HH:MM". Returns 0,
 * or -1 with a reason in msg. */
int acl_schedule_parse(const char *days, size_t days_len, const char *times, size_t times_len,
                       struct acl_schedule *out, char *msg, size_t msglen);
bool acl_schedule_active(const struct acl_schedule *s, const struct acl_clock *clock);
/* Parses "2026-12-24T18:00", "2026-12-24T18:00:30" (local time) or the same with a final 'Z'
 * (UTC) into seconds since the epoch. Returns 0, or -1 with a reason in msg. */
int acl_expiry_parse(const char *s, size_t len, int64_t *out, char *msg, size_t msglen);

/* ---- Name lists ---- */

/* Whether name[0..len) is one of n's names; fold_case compares ASCII letters without case. */
bool acl_names_contains(const struct acl_names *n, const char *name, size_t len, bool fold_case);
/* Appends the names of more to n (a new buffer). 0, or -1 when out of memory (n unchanged). */
int acl_names_append(struct acl_names *n, const struct acl_names *more);

#endif
