/* acl_set.h: the compiled rule set (struct acl_set) and the per-thread scratch, shared by
 * acl_compile.c (builds), acl_eval.c (reads) and acl_live.c (counts references). Internal.
 */
#ifndef PX_ACL_SET_H
#define PX_ACL_SET_H

#include "acl/acl_domain.h"
#include "acl/acl_regex.h"
#include "acl/acl_rule.h"
#include "acl/acl_url.h"

enum acl_regex_kind { ACL_RX_HOST, ACL_RX_URL, ACL_RX_COUNT };

struct acl_set {
    struct acl_rule *rules; /* owned; enabled rules only, in priority order */
    uint32_t nrules;
    /* Rules evaluated one by one, ascending: everything not reached through an index
     * (client, dest, user, method, port, any, domain with an address, regexes without a
     * literal). */
    uint32_t *linear; /* owned */
    uint32_t nlinear;
    struct acl_domain_index domains;         /* domain and list rules */
    struct acl_regex_index rx[ACL_RX_COUNT]; /* regexes with a literal */
    /* Per kind, the regexes checked one by one joined as (?:re1)|(?:re2)|...: when it does
     * not match, none of them can, and a request pays one match instead of many. */
    pcre2_code *group[ACL_RX_COUNT]; /* owned; NULL if fewer than two could be joined */
    bool has_url_regex;              /* build the full URL only when some rule reads it */
    bool has_deny_dest;              /* some `deny dest` or `report dest` rule may wait */
    struct acl_cidr *allowed;        /* owned; the default action's networks */
    uint32_t nallowed;
    /* For acl_client_admitted: some allow rule names no client at all (anyone may pass), and
     * the allow rules that name clients, by index. */
    bool open_allow;
    uint32_t *client_allows; /* owned */
    uint32_t nclient_allows;
    /* The `inspect` rules, compiled as a set of their own (acl_eval_inspect), headed by the
     * rule `deny list no-inspect` (id 0) when that list exists; NULL when there is neither.
     * The set above holds no inspect rule. */
    struct acl_set *inspect; /* owned */
    bool no_inspect_first;   /* inspect->rules[0] is the no-inspect rule */
    size_t memory;
    int64_t version; /* the policy version compiled (acl_set_version) */
    /* Owned by acl_live and changed only under its mutex; not part of the rules. */
    unsigned long live_refs;
    bool live_retired;
};

#define ACL_SEEN_MAX 64

struct acl_scratch {
    pcre2_match_data *md;       /* owned */
    pcre2_match_context *mctx;  /* owned; match and depth limits, jit stack */
    pcre2_jit_stack *jit_stack; /* owned */
    /* Rules already tried through a regex index during this evaluation. */
    uint32_t seen[ACL_SEEN_MAX];
    uint32_t nseen;
    char url[ACL_URL_MAX];
    char loose_path[ACL_URL_MAX]; /* the request's path as loose servers read it */
};

#endif
