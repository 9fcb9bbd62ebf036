/* acl_compile.c: turns rule texts and lists into an immutable struct acl_set: parses every
 * rule, resolves list names, and builds the domain index, the regex literal indexes and the
 * list of rules that are checked one by one.
 */
#include "acl/acl_set.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "no_inspect_list.h" /* builtin_no_inspect: policies/lists/no-inspect.txt */

#define LITERAL_MAX 128

static const char default_allowed[] =
    "127.0.0.0/8,::1/128,10.0.0.0/8,172.16.0.0/12,192.168.0.0/16,fc00::/7";

static const struct acl_list_src *list_find(const struct acl_config *cfg, const char *name)
{
    for (size_t i = 0; i < cfg->nlists; i++) {
        if (cfg->lists[i].name && strcmp(cfg->lists[i].name, name) == 0)
            return &cfg->lists[i];
    }
    return NULL;
}

static int fail(struct acl_error *err, int rule_id, const char *what)
{
    err->rule_id = rule_id;
    if (rule_id)
        snprintf(err->msg, sizeof(err->msg), "rule %d: %.236s", rule_id, what);
    else
        snprintf(err->msg, sizeof(err->msg), "%.250s", what);
    return -1;
}

static const struct acl_rule *group_find(const struct acl_rule *all, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (all[i].is_group && strcmp(all[i].arg, name) == 0)
            return &all[i];
    return NULL;
}

/* Adds the networks and users of the groups r names (`clients @G`, `users @G`) to its
 * conditions. A group that is off has no members. */
static int resolve_groups(struct acl_rule *r, const struct acl_rule *all, size_t n, char *msg,
                          size_t msglen)
{
    const char *name = r->cond_client_groups.buf;
    for (uint32_t k = 0; k < r->cond_client_groups.count; k++, name += strlen(name) + 1) {
        const struct acl_rule *g = group_find(all, n, name);
        if (!g) {
            snprintf(msg, msglen, "clients: no group named '%s'", name);
            return -1;
        }
        if (!g->enabled || g->ncidrs == 0)
            continue;
        struct acl_cidr *c = realloc(r->cond_clients, (r->ncond_clients + g->ncidrs) * sizeof(*c));
        if (!c) {
            snprintf(msg, msglen, "out of memory");
            return -1;
        }
        memcpy(c + r->ncond_clients, g->cidrs, g->ncidrs * sizeof(*c));
        r->cond_clients = c;
        r->ncond_clients += g->ncidrs;
    }
    name = r->cond_user_groups.buf;
    for (uint32_t k = 0; k < r->cond_user_groups.count; k++, name += strlen(name) + 1) {
        const struct acl_rule *g = group_find(all, n, name);
        if (!g) {
            snprintf(msg, msglen, "users: no group named '%s'", name);
            return -1;
        }
        if (g->enabled && g->names.count && acl_names_append(&r->cond_users, &g->names) != 0) {
            snprintf(msg, msglen, "out of memory");
            return -1;
        }
    }
    return 0;
}

/* Parses cfg's rules into set: its inspect rules when inspect, else all others, saying in
 * *saw_inspect whether an enabled inspect rule was left out. The inspect set begins with
 * `deny list no-inspect` (id 0) when cfg has that list. */
static int parse_rules(struct acl_set *set, const struct acl_config *cfg, bool inspect,
                       bool *saw_inspect, struct acl_error *err)
{
    char msg[256];
    int rc = -1;
    size_t n = cfg->nrules;
    /* All parsed first: a group may be defined anywhere in the policy. */
    struct acl_rule *all = calloc(n ? n : 1, sizeof(*all));
    set->rules = calloc(n + 1, sizeof(*set->rules));
    if (!all || !set->rules) {
        free(all);
        return fail(err, 0, "out of memory");
    }
    if (inspect && list_find(cfg, ACL_NO_INSPECT_LIST)) {
        if (acl_rule_parse("deny list " ACL_NO_INSPECT_LIST, true, &set->rules[0], msg,
                           sizeof(msg)) != 0) {
            free(all);
            return fail(err, 0, msg);
        }
        set->nrules = 1;
        set->no_inspect_first = true;
    }
    size_t parsed = 0;
    for (; parsed < n; parsed++) {
        const struct acl_rule_src *src = &cfg->rules[parsed];
        if (!src->text ||
            acl_rule_parse(src->text, src->enabled, &all[parsed], msg, sizeof(msg)) != 0) {
            fail(err, src->id, src->text ? msg : "empty rule");
            goto out;
        }
        all[parsed].id = src->id;
        all[parsed].enabled = src->enabled;
        if (all[parsed].is_group && group_find(all, parsed, all[parsed].arg)) {
            snprintf(msg, sizeof(msg), "group: '%s' is defined twice", all[parsed].arg);
            fail(err, src->id, msg);
            parsed++;
            goto out;
        }
    }
    for (size_t i = 0; i < n; i++) {
        struct acl_rule *r = &all[i];
        /* Validated, groups resolved; never matches. */
        if (resolve_groups(r, all, n, msg, sizeof(msg)) != 0) {
            fail(err, r->id, msg);
            goto out;
        }
        if (r->is_group || r->is_name || !r->enabled)
            continue;
        if ((r->action == ACL_INSPECT) != inspect) {
            *saw_inspect |= r->action == ACL_INSPECT;
            continue;
        }
        if (r->match == ACL_MATCH_LIST && !list_find(cfg, r->arg)) {
            snprintf(msg, sizeof(msg), "list: no list named '%s'", r->arg);
            fail(err, r->id, msg);
            goto out;
        }
        set->rules[set->nrules++] = *r;
        memset(r, 0, sizeof(*r)); /* the set owns it now */
    }
    rc = 0;
out:
    for (size_t i = 0; i < parsed; i++)
        acl_rule_clear(&all[i]);
    free(all);
    return rc;
}

static int build_domains(struct acl_set *set, const struct acl_config *cfg)
{
    size_t keys = 0;
    for (uint32_t i = 0; i < set->nrules; i++) {
        const struct acl_rule *r = &set->rules[i];
        if (r->match == ACL_MATCH_DOMAIN && !r->cidrs)
            keys++;
        else if (r->match == ACL_MATCH_LIST)
            keys += list_find(cfg, r->arg)->count;
    }
    if (acl_domain_index_init(&set->domains, keys) != 0)
        return -1;
    for (uint32_t i = 0; i < set->nrules; i++) {
        const struct acl_rule *r = &set->rules[i];
        if (r->match == ACL_MATCH_DOMAIN && !r->cidrs) {
            if (acl_domain_index_add(&set->domains, r->arg, strlen(r->arg), false, i) != 0)
                return -1;
        } else if (r->match == ACL_MATCH_LIST) {
            const struct acl_list_src *l = list_find(cfg, r->arg);
            for (size_t k = 0; k < l->count; k++) {
                /* Lists come from acl_list_parse or the store: make sure they are canonical. */
                struct acl_host h;
                const char *why, *d = l->domains[k];
                if (!d || acl_host_parse(d, strlen(d), &h, &why) != 0)
                    continue;
                if (acl_domain_index_add(&set->domains, h.text, h.len, acl_host_is_ip(&h), i) != 0)
                    return -1;
            }
        }
    }
    return acl_domain_index_finish(&set->domains);
}

/* Files regexes with a usable literal into set->rx and everything left into set->linear. */
static int build_regexes_and_linear(struct acl_set *set)
{
    int rc = -1;
    uint32_t n = set->nrules;
    uint32_t *rules = malloc((n ? n : 1) * sizeof(uint32_t));
    const char **lits = malloc((n ? n : 1) * sizeof(char *));
    size_t *lens = malloc((n ? n : 1) * sizeof(size_t));
    char *arena = malloc((size_t)(n ? n : 1) * LITERAL_MAX);
    bool *indexed = calloc(n ? n : 1, sizeof(bool));
    set->linear = malloc((n ? n : 1) * sizeof(uint32_t));
    if (!rules || !lits || !lens || !arena || !indexed || !set->linear)
        goto out;

    for (int kind = 0; kind < ACL_RX_COUNT; kind++) {
        enum acl_match want = kind == ACL_RX_HOST ? ACL_MATCH_HOST_REGEX : ACL_MATCH_URL_REGEX;
        size_t k = 0;
        for (uint32_t i = 0; i < n; i++) {
            const struct acl_rule *r = &set->rules[i];
            if (r->match != want)
                continue;
            if (want == ACL_MATCH_URL_REGEX)
                set->has_url_regex = true;
            char *lit = arena + (size_t)i * LITERAL_MAX;
            size_t len = acl_regex_literal(r->arg, strlen(r->arg), lit, LITERAL_MAX);
            if (len < 3)
                continue;
            rules[k] = i;
            lits[k] = lit;
            lens[k] = len;
            indexed[i] = true;
            k++;
        }
        if (acl_regex_index_build(&set->rx[kind], rules, lits, lens, k) != 0)
            goto out;
    }
    for (uint32_t i = 0; i < n; i++) {
        const struct acl_rule *r = &set->rules[i];
        /* Domain rules naming an address match on the binary address, one by one. */
        bool in_domains = r->match == ACL_MATCH_LIST || (r->match == ACL_MATCH_DOMAIN && !r->cidrs);
        if (!in_domains && !indexed[i])
            set->linear[set->nlinear++] = i;
        if (r->match == ACL_MATCH_DEST && r->action != ACL_ALLOW)
            set->has_deny_dest = true;
    }
    rc = 0;
out:
    free(rules);
    free(lits);
    free(lens);
    free(arena);
    free(indexed);
    return rc;
}

/* Joins the regexes of one kind that are checked one by one into set->group[kind]. */
static int build_group(struct acl_set *set, enum acl_regex_kind kind)
{
    enum acl_match want = kind == ACL_RX_HOST ? ACL_MATCH_HOST_REGEX : ACL_MATCH_URL_REGEX;
    size_t len = 0, count = 0;
    for (uint32_t k = 0; k < set->nlinear; k++) {
        const struct acl_rule *r = &set->rules[set->linear[k]];
        if (r->match == want && acl_regex_joinable(r->re, r->arg, strlen(r->arg))) {
            len += strlen(r->arg) + 6;
            count++;
        }
    }
    if (count < 2)
        return 0;
    char *pat = malloc(len + 1);
    if (!pat)
        return -1;
    size_t n = 0;
    for (uint32_t k = 0; k < set->nlinear; k++) {
        const struct acl_rule *r = &set->rules[set->linear[k]];
        if (r->match == want && acl_regex_joinable(r->re, r->arg, strlen(r->arg)))
            n += (size_t)sprintf(pat + n, "%s(?:%s)", n ? "|" : "", r->arg);
    }
    char msg[200];
    set->group[kind] = acl_regex_compile(pat, n, kind == ACL_RX_HOST, true, msg, sizeof(msg));
    free(pat);
    if (!set->group[kind])
        return 0; /* only slower: each regex is still checked on its own */
    for (uint32_t k = 0; k < set->nlinear; k++) {
        struct acl_rule *r = &set->rules[set->linear[k]];
        if (r->match == want && acl_regex_joinable(r->re, r->arg, strlen(r->arg)))
            r->in_group = true;
    }
    return 0;
}

/* What acl_client_admitted reads: whether some allow rule applies to any client, and which
 * allow rules apply only to some. */
static int build_client_allows(struct acl_set *set)
{
    set->client_allows = calloc(set->nrules ? set->nrules : 1, sizeof(*set->client_allows));
    if (!set->client_allows)
        return -1;
    for (uint32_t i = 0; i < set->nrules; i++) {
        const struct acl_rule *r = &set->rules[i];
        if (r->action != ACL_ALLOW)
            continue;
        if (r->match == ACL_MATCH_CLIENT || r->has_clients)
            set->client_allows[set->nclient_allows++] = i;
        else
            set->open_allow = true;
    }
    return 0;
}

static struct acl_set *compile(const struct acl_config *cfg, bool inspect, struct acl_error *err);

/* The set of cfg's inspect rules. A policy without a list named no-inspect gets the shipped
 * one, compiled in: banking, health and government tunnels stay undecrypted until the admin
 * makes that list their own (import one of that name; an empty one inspects them too). */
static struct acl_set *compile_inspect(const struct acl_config *cfg, struct acl_error *err)
{
    if (list_find(cfg, ACL_NO_INSPECT_LIST))
        return compile(cfg, true, err);
    char **domains = NULL;
    size_t count = 0;
    struct acl_list_stats stats;
    struct acl_list_src *lists = calloc(cfg->nlists + 1, sizeof(*lists));
    if (!lists || acl_list_parse((const char *)builtin_no_inspect, sizeof(builtin_no_inspect) - 1,
                                 &domains, &count, &stats) != 0) {
        free(lists);
        fail(err, 0, "out of memory");
        return NULL;
    }
    if (cfg->nlists)
        memcpy(lists, cfg->lists, cfg->nlists * sizeof(*lists));
    lists[cfg->nlists] =
        (struct acl_list_src){ACL_NO_INSPECT_LIST, (const char *const *)domains, count};
    struct acl_config with_builtin = *cfg;
    with_builtin.lists = lists;
    with_builtin.nlists = cfg->nlists + 1;
    struct acl_set *set = compile(&with_builtin, true, err);
    acl_list_free(domains, count);
    free(lists);
    return set;
}

/* The set of cfg's inspect rules (inspect) or of all its other rules. The inspect set has no
 * allowed networks: a request no inspect rule holds for is not inspected. */
static struct acl_set *compile(const struct acl_config *cfg, bool inspect, struct acl_error *err)
{
    char msg[200];
    struct acl_set *set = calloc(1, sizeof(*set));
    if (!set) {
        fail(err, 0, "out of memory");
        return NULL;
    }
    const char *allowed = cfg->allowed_clients ? cfg->allowed_clients : default_allowed;
    if (!inspect && acl_cidr_parse_list(allowed, strlen(allowed), &set->allowed, &set->nallowed,
                                        msg, sizeof(msg)) != 0) {
        char what[240];
        snprintf(what, sizeof(what), "allowed clients: %s", msg);
        fail(err, 0, what);
        goto fail;
    }
    /* Whether there are inspect rules is the parser's to say (a quoted "inspect" is one). */
    bool saw_inspect = false;
    if (parse_rules(set, cfg, inspect, &saw_inspect, err) != 0)
        goto fail;
    if (!inspect && (saw_inspect || list_find(cfg, ACL_NO_INSPECT_LIST)) &&
        !(set->inspect = compile_inspect(cfg, err)))
        goto fail;
    if (build_domains(set, cfg) != 0 || build_client_allows(set) != 0 ||
        build_regexes_and_linear(set) != 0 || build_group(set, ACL_RX_HOST) != 0 ||
        build_group(set, ACL_RX_URL) != 0) {
        fail(err, 0, "out of memory");
        goto fail;
    }

    size_t mem = sizeof(*set) + (size_t)set->nallowed * sizeof(*set->allowed) +
                 (size_t)set->nlinear * sizeof(uint32_t) +
                 (size_t)set->nrules * sizeof(*set->client_allows);
    for (uint32_t i = 0; i < set->nrules; i++)
        mem += acl_rule_memory(&set->rules[i]);
    mem += acl_domain_index_memory(&set->domains);
    for (int k = 0; k < ACL_RX_COUNT; k++) {
        mem += acl_regex_index_memory(&set->rx[k]);
        size_t size = 0, jit = 0;
        if (set->group[k] && pcre2_pattern_info(set->group[k], PCRE2_INFO_SIZE, &size) == 0)
            mem += size;
        if (set->group[k] && pcre2_pattern_info(set->group[k], PCRE2_INFO_JITSIZE, &jit) == 0)
            mem += jit;
    }
    set->memory = mem + acl_set_memory(set->inspect);
    return set;
fail:
    acl_set_free(set);
    return NULL;
}

struct acl_set *acl_set_compile(const struct acl_config *cfg, struct acl_error *err)
{
    memset(err, 0, sizeof(*err));
    return compile(cfg, false, err);
}

void acl_set_free(struct acl_set *set)
{
    if (!set)
        return;
    for (uint32_t i = 0; i < set->nrules; i++)
        acl_rule_clear(&set->rules[i]);
    free(set->rules);
    free(set->linear);
    acl_domain_index_free(&set->domains);
    for (int k = 0; k < ACL_RX_COUNT; k++) {
        acl_regex_index_free(&set->rx[k]);
        pcre2_code_free(set->group[k]);
    }
    free(set->allowed);
    free(set->client_allows);
    acl_set_free(set->inspect);
    free(set);
}

size_t acl_set_memory(const struct acl_set *set)
{
    return set ? set->memory : 0;
}

void acl_set_version_set(struct acl_set *set, int64_t version)
{
    set->version = version;
}

int64_t acl_set_version(const struct acl_set *set)
{
    return set ? set->version : 0;
}
