/* acl_eval.c: deciding one request against a compiled set, and the per-thread scratch.
 *
 * First match wins. Rather than walk every rule, each source of candidates yields the lowest
 * rule index below the best found so far whose match and conditions hold: the domain index
 * (one lookup per label suffix of the host), the regex literal indexes (only regexes whose
 * literal the subject contains), and the short list of rules checked one by one. The lowest
 * index over all sources is the first matching rule in policy order.
 */
#include "acl/acl_set.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NO_RULE UINT32_MAX

enum fire { FIRE_NO, FIRE_YES, FIRE_AUTH };

struct eval {
    const struct acl_set *set;
    const struct acl_request *req;
    struct acl_scratch *s;
    const char *host; /* normalised, inside s->url */
    size_t host_len;
    bool host_is_ip;
    const char *url; /* normalised; NULL unless the set has url-regex rules */
    size_t url_len;
    uint8_t client[16];
    bool has_client;
    uint32_t best;
    bool best_auth;
    const struct acl_domain_entry *best_key;
    int limit_rule_id; /* first rule whose regex gave up at its limit */
    enum { GROUP_UNTRIED, GROUP_MATCHED, GROUP_MISSED } group[ACL_RX_COUNT];
};

struct acl_scratch *acl_scratch_new(void)
{
    struct acl_scratch *s = calloc(1, sizeof(*s));
    if (!s)
        return NULL;
    /* Rules only ask "does it match"; captures are never read, so one pair is enough:
     * pcre2_match then returns 0 for a match with more groups, which still means a match. */
    s->md = pcre2_match_data_create(1, NULL);
    s->mctx = pcre2_match_context_create(NULL);
    s->jit_stack = pcre2_jit_stack_create(32 * 1024, 512 * 1024, NULL);
    if (!s->md || !s->mctx || !s->jit_stack) {
        acl_scratch_free(s);
        return NULL;
    }
    pcre2_set_match_limit(s->mctx, ACL_MATCH_LIMIT);
    pcre2_set_depth_limit(s->mctx, ACL_DEPTH_LIMIT);
    pcre2_jit_stack_assign(s->mctx, NULL, s->jit_stack);
    return s;
}

void acl_scratch_free(struct acl_scratch *s)
{
    if (!s)
        return;
    pcre2_match_data_free(s->md);
    pcre2_match_context_free(s->mctx);
    pcre2_jit_stack_free(s->jit_stack);
    free(s);
}

static bool regex_matches(struct eval *ev, const struct acl_rule *r, const char *subj, size_t len)
{
    int rc = pcre2_match(r->re, (PCRE2_SPTR)subj, len, 0, 0, ev->s->md, ev->s->mctx);
    if (rc >= 0)
        return true;
    if (rc != PCRE2_ERROR_NOMATCH && ev->limit_rule_id == 0)
        ev->limit_rule_id = r->id;
    return false;
}

/* False when the joined regexes of r's kind cannot match, so r cannot either. */
static bool group_may_match(struct eval *ev, const struct acl_rule *r, const char *subj, size_t len)
{
    int kind = r->match == ACL_MATCH_HOST_REGEX ? ACL_RX_HOST : ACL_RX_URL;
    if (!r->in_group)
        return true;
    if (ev->group[kind] == GROUP_UNTRIED) {
        int rc =
            pcre2_match(ev->set->group[kind], (PCRE2_SPTR)subj, len, 0, 0, ev->s->md, ev->s->mctx);
        /* At its limit the group proves nothing: then every regex runs on its own. */
        ev->group[kind] = rc == PCRE2_ERROR_NOMATCH ? GROUP_MISSED : GROUP_MATCHED;
    }
    return ev->group[kind] == GROUP_MATCHED;
}

static bool port_in(const struct acl_rule *r, uint16_t port)
{
    for (uint32_t i = 0; i < r->nports; i++) {
        if (port >= r->ports[i].lo && port <= r->ports[i].hi)
            return true;
    }
    return false;
}

/* Does rule r decide this request? match_known: an index already proved the match. */
static enum fire rule_fires(struct eval *ev, const struct acl_rule *r, bool match_known)
{
    const struct acl_request *req = ev->req;
    bool needs_user = false;

    if (r->has_clients &&
        (!ev->has_client || !acl_cidr_list_contains(r->cond_clients, r->ncond_clients, ev->client)))
        return FIRE_NO;
    if (r->has_schedule && !acl_schedule_active(&r->schedule, &req->clock))
        return FIRE_NO;
    if (r->has_users) {
        if (!req->user)
            needs_user = true;
        else if (!acl_names_contains(&r->cond_users, req->user, strlen(req->user)))
            return FIRE_NO;
    }
    if (!match_known) {
        bool ok = false;
        switch (r->match) {
        case ACL_MATCH_HOST_REGEX:
            ok = group_may_match(ev, r, ev->host, ev->host_len) &&
                 regex_matches(ev, r, ev->host, ev->host_len);
            break;
        case ACL_MATCH_URL_REGEX:
            ok = ev->url && group_may_match(ev, r, ev->url, ev->url_len) &&
                 regex_matches(ev, r, ev->url, ev->url_len);
            break;
        case ACL_MATCH_CLIENT:
            ok = ev->has_client && acl_cidr_list_contains(r->cidrs, r->ncidrs, ev->client);
            break;
        case ACL_MATCH_USER:
            if (!req->user)
                needs_user = ok = true;
            else
                ok = acl_names_contains(&r->names, req->user, strlen(req->user));
            break;
        case ACL_MATCH_METHOD:
            ok = req->method && acl_names_contains(&r->names, req->method, req->method_len);
            break;
        case ACL_MATCH_PORT:
            ok = port_in(r, req->port);
            break;
        case ACL_MATCH_ANY:
            ok = true;
            break;
        default: /* domain and list rules are only reached through the index */
            break;
        }
        if (!ok)
            return FIRE_NO;
    }
    return needs_user ? FIRE_AUTH : FIRE_YES;
}

static bool take(struct eval *ev, uint32_t idx, bool match_known)
{
    enum fire f = rule_fires(ev, &ev->set->rules[idx], match_known);
    if (f == FIRE_NO)
        return false;
    ev->best = idx;
    ev->best_auth = f == FIRE_AUTH;
    ev->best_key = NULL;
    return true;
}

static void eval_domains(struct eval *ev)
{
    const struct acl_domain_entry *found[ACL_HOST_MAX / 2 + 2];
    const struct acl_domain_index *ix = &ev->set->domains;
    size_t n = acl_domain_index_match(ix, ev->host, ev->host_len, ev->host_is_ip, found,
                                      sizeof(found) / sizeof(found[0]));
    for (size_t i = 0; i < n; i++) {
        const uint32_t *rules = ix->rules + found[i]->rules_off;
        for (uint32_t j = 0; j < found[i]->nrules && rules[j] < ev->best; j++) {
            if (take(ev, rules[j], true)) {
                ev->best_key = found[i];
                break;
            }
        }
    }
}

static void eval_linear(struct eval *ev)
{
    for (uint32_t k = 0; k < ev->set->nlinear && ev->set->linear[k] < ev->best; k++) {
        if (take(ev, ev->set->linear[k], false))
            break;
    }
}

/* Remembers the rules run through the regex index, so a literal that occurs twice in the
 * subject does not run its regex twice. */
static bool already_tried(struct acl_scratch *s, uint32_t rule)
{
    for (uint32_t i = 0; i < s->nseen; i++) {
        if (s->seen[i] == rule)
            return true;
    }
    if (s->nseen < ACL_SEEN_MAX)
        s->seen[s->nseen++] = rule;
    return false;
}

static void eval_regex_index(struct eval *ev, const struct acl_regex_index *ix, const char *subj,
                             size_t len)
{
    if (ix->nmembers == 0 || !subj || len < 3)
        return;
    ev->s->nseen = 0;
    for (size_t i = 0; i + 3 <= len; i++) {
        uint32_t tri = acl_regex_trigram(subj + i);
        uint32_t b = acl_regex_bucket(tri);
        for (uint32_t m = ix->bucket_off[b]; m < ix->bucket_off[b + 1]; m++) {
            const struct acl_regex_member *mb = &ix->members[m];
            if (mb->rule >= ev->best)
                break;
            /* The literal must be in the subject where this trigram sits in it. */
            if (mb->tri != tri || i < mb->tri_off || i - mb->tri_off + mb->lit_len > len ||
                !acl_equal_nocase(subj + i - mb->tri_off, ix->lits + mb->lit_off, mb->lit_len))
                continue;
            if (already_tried(ev->s, mb->rule))
                continue;
            if (take(ev, mb->rule, false))
                break;
        }
    }
}

static void client_str(const struct sockaddr *sa, char *buf, size_t len)
{
    const void *addr = NULL;
    int af = sa ? sa->sa_family : AF_UNSPEC;
    if (af == AF_INET)
        addr = &((const struct sockaddr_in *)sa)->sin_addr;
    else if (af == AF_INET6)
        addr = &((const struct sockaddr_in6 *)sa)->sin6_addr;
    if (!addr || !inet_ntop(af, addr, buf, (socklen_t)len))
        snprintf(buf, len, "(unknown)");
}

static void decide(struct eval *ev, struct acl_decision *out)
{
    size_t n;
    if (ev->best != NO_RULE) {
        const struct acl_rule *r = &ev->set->rules[ev->best];
        out->rule_id = r->id;
        if (ev->req->brief && !ev->best_auth && r->action == ACL_ALLOW) {
            out->action = ACL_ALLOW;
            return;
        }
        if (ev->best_auth) {
            out->action = ACL_AUTH;
            n = (size_t)snprintf(out->reason, sizeof(out->reason),
                                 "rule %d requires an authenticated user", r->id);
        } else if (ev->best_key && r->match == ACL_MATCH_LIST) {
            out->action = r->action;
            const struct acl_domain_entry *k = ev->best_key;
            n = (size_t)snprintf(out->reason, sizeof(out->reason), "rule %d: %s list %s (%.*s)",
                                 r->id, acl_action_str(r->action), r->arg, (int)k->key_len,
                                 ev->set->domains.keys + k->key_off);
        } else {
            out->action = r->action;
            n = (size_t)snprintf(out->reason, sizeof(out->reason), "rule %d: %s %s%s%s", r->id,
                                 acl_action_str(r->action), acl_match_str(r->match),
                                 r->arg[0] ? " " : "", r->arg);
        }
    } else {
        char who[INET6_ADDRSTRLEN];
        bool allowed = ev->has_client &&
                       acl_cidr_list_contains(ev->set->allowed, ev->set->nallowed, ev->client);
        out->rule_id = 0;
        out->action = allowed ? ACL_ALLOW : ACL_DENY;
        if (allowed && ev->req->brief)
            return;
        client_str(ev->req->client, who, sizeof(who));
        n = (size_t)snprintf(out->reason, sizeof(out->reason),
                             allowed ? "default: client %s allowed"
                                     : "default: client %s not in allowed networks",
                             who);
    }
    if (ev->limit_rule_id && ev->limit_rule_id != out->rule_id && n < sizeof(out->reason))
        snprintf(out->reason + n, sizeof(out->reason) - n,
                 "; rule %d hit the regex match limit (counted as no match)", ev->limit_rule_id);
}

void acl_eval(const struct acl_set *set, const struct acl_request *req, struct acl_scratch *s,
              struct acl_decision *out)
{
    struct eval ev = {.set = set, .req = req, .s = s, .best = NO_RULE};
    out->rule_id = 0;
    out->reason[0] = '\0';
    out->action = ACL_DENY;
    if (!set || !s) {
        snprintf(out->reason, sizeof(out->reason), "no policy loaded");
        return;
    }

    size_t host_off;
    int pos = acl_url_begin(s->url, sizeof(s->url), req->scheme, req->host ? req->host : "",
                            req->host ? req->host_len : 0, &host_off, &ev.host_len, &ev.host_is_ip);
    if (pos >= 0 && set->has_url_regex) {
        int len = acl_url_finish(s->url, sizeof(s->url), (size_t)pos, req->port,
                                 req->path ? req->path : "", req->path ? req->path_len : 0);
        if (len >= 0) {
            ev.url = s->url;
            ev.url_len = (size_t)len;
        } else {
            pos = -1;
        }
    }
    if (pos < 0) {
        /* Failing open here would let a long URL slip past deny rules. */
        snprintf(out->reason, sizeof(out->reason), "request URL longer than %d bytes", ACL_URL_MAX);
        return;
    }
    ev.host = s->url + host_off;
    ev.has_client = acl_addr_from_sockaddr(req->client, ev.client);

    eval_domains(&ev);
    eval_linear(&ev);
    eval_regex_index(&ev, &set->rx[ACL_RX_HOST], ev.host, ev.host_len);
    eval_regex_index(&ev, &set->rx[ACL_RX_URL], ev.url, ev.url_len);
    decide(&ev, out);
}

bool acl_client_admitted(const struct acl_set *set, const struct sockaddr *client)
{
    uint8_t addr[16];
    if (!set || !acl_addr_from_sockaddr(client, addr))
        return false;
    if (set->open_allow || acl_cidr_list_contains(set->allowed, set->nallowed, addr))
        return true;
    for (uint32_t k = 0; k < set->nclient_allows; k++) {
        const struct acl_rule *r = &set->rules[set->client_allows[k]];
        if (r->match == ACL_MATCH_CLIENT && !acl_cidr_list_contains(r->cidrs, r->ncidrs, addr))
            continue;
        if (r->has_clients && !acl_cidr_list_contains(r->cond_clients, r->ncond_clients, addr))
            continue;
        return true;
    }
    return false;
}
