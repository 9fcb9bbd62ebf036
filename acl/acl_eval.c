/* acl_eval.c: deciding one request against a compiled set, and the per-thread scratch.
 *
 * First match wins. Rather than walk every rule, each source of candidates yields the lowest
 * rule index below the best found so far whose match and conditions hold: the domain index
 * (one lookup per label suffix of the host), the regex literal indexes (only regexes whose
 * literal the subject contains), and the short list of rules checked one by one. The lowest
 * index over all sources is the first matching rule in policy order.
 *
 * A regex that hits its match or depth limit cannot say whether it matches. Such a rule is
 * "undecided": a deny rule then denies (a crafted URL must not slip past it by being slow to
 * match) and an allow rule does not allow. The decision names the rule, so it is counted.
 *
 * A `report` rule never decides: when it holds it is remembered (the lowest one) and the search
 * goes on as if it were not there; the decision names it only when the request is allowed.
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
    const char *host; /* canonical text */
    size_t host_len;
    bool host_is_ip;
    uint8_t host_addr[16]; /* when host_is_ip */
    const char *url;       /* normalised; NULL unless the set has url-regex rules */
    size_t url_len;
    uint8_t client[16];
    bool has_client;
    uint32_t best;
    bool best_auth;
    const struct acl_domain_entry *best_key;
    uint32_t undecided;  /* lowest rule whose regex gave up at its limit */
    uint32_t dest_later; /* lowest `deny dest` rule that holds but needs the resolved address */
    uint32_t report;     /* lowest `report` rule that holds */
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

/* Does r's regex match? At a limit (match, depth, JIT stack) it cannot tell: then a deny
 * rule counts as matching and an allow rule as not, and the rule is remembered. */
static bool regex_matches(struct eval *ev, const struct acl_rule *r, const char *subj, size_t len)
{
    int rc = pcre2_match(r->re, (PCRE2_SPTR)subj, len, 0, 0, ev->s->md, ev->s->mctx);
    if (rc >= 0)
        return true;
    if (rc == PCRE2_ERROR_NOMATCH)
        return false;
    uint32_t idx = (uint32_t)(r - ev->set->rules);
    if (idx < ev->undecided)
        ev->undecided = idx;
    return r->action == ACL_DENY;
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

    if (r->has_expiry && req->clock.now != 0 && req->clock.now >= r->expires)
        return FIRE_NO;
    if (r->has_clients &&
        (!ev->has_client || !acl_cidr_list_contains(r->cond_clients, r->ncond_clients, ev->client)))
        return FIRE_NO;
    if (r->has_schedule && !acl_schedule_active(&r->schedule, &req->clock))
        return FIRE_NO;
    if (r->has_users) {
        if (!req->user)
            needs_user = true;
        else if (!acl_names_contains(&r->cond_users, req->user, strlen(req->user), false))
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
        case ACL_MATCH_DOMAIN: /* naming an address; names are reached through the index */
            ok = ev->host_is_ip && acl_dest_list_contains(r->cidrs, r->ncidrs, ev->host_addr);
            break;
        case ACL_MATCH_DEST:
            if (ev->host_is_ip) {
                ok = acl_dest_list_contains(r->cidrs, r->ncidrs, ev->host_addr);
            } else if (r->action != ACL_ALLOW) {
                /* Only the name's addresses can tell (acl_eval_dest); an allow never waits
                 * for them: whoever answers for a name must not be able to allow it. */
                uint32_t idx = (uint32_t)(r - ev->set->rules);
                if (idx < ev->dest_later)
                    ev->dest_later = idx;
            }
            break;
        case ACL_MATCH_USER:
            if (!req->user)
                needs_user = ok = true;
            else
                ok = acl_names_contains(&r->names, req->user, strlen(req->user), false);
            break;
        case ACL_MATCH_METHOD:
            /* Methods are case-sensitive on the wire, but origins often fold them ("delete"
             * acts as DELETE): a method rule matches every spelling of its names. */
            ok = req->method && acl_names_contains(&r->names, req->method, req->method_len, true);
            break;
        case ACL_MATCH_PORT:
            ok = port_in(r, req->port);
            break;
        case ACL_MATCH_ANY:
            ok = true;
            break;
        default: /* list rules are only reached through the index */
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
    /* An inspect rule does not ask for a password either: without a user it does not hold,
     * and the inspect rules below it are tried. */
    if (f == FIRE_AUTH && ev->set->rules[idx].action == ACL_INSPECT)
        return false;
    if (ev->set->rules[idx].action == ACL_REPORT) {
        /* A report rule does not ask for a password: without a user it does not hold. */
        if (f == FIRE_YES && idx < ev->report)
            ev->report = idx;
        return false;
    }
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
    size_t n = 0;
    bool undecided = ev->undecided != NO_RULE && ev->undecided <= ev->best;
    out->order = ev->best;
    if (undecided)
        out->undecided_rule_id = ev->set->rules[ev->undecided].id;
    if (ev->best != NO_RULE) {
        const struct acl_rule *r = &ev->set->rules[ev->best];
        out->rule_id = r->id;
        out->action = ev->best_auth ? ACL_AUTH : r->action;
        out->dest_pending = out->action == ACL_ALLOW && ev->dest_later < ev->best;
        if (out->action == ACL_ALLOW && ev->report < ev->best)
            out->report_rule_id = ev->set->rules[ev->report].id;
        if (ev->req->brief && out->action == ACL_ALLOW)
            return;
        if (ev->best_auth) {
            n = (size_t)snprintf(out->reason, sizeof(out->reason),
                                 "rule %d requires an authenticated user", r->id);
        } else if (ev->best_key && r->match == ACL_MATCH_LIST) {
            const struct acl_domain_entry *k = ev->best_key;
            n = (size_t)snprintf(out->reason, sizeof(out->reason), "rule %d: %s list %s (%.*s)",
                                 r->id, acl_action_str(r->action), r->arg, (int)k->key_len,
                                 ev->set->domains.keys + k->key_off);
        } else {
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
        out->dest_pending = allowed && ev->dest_later != NO_RULE;
        if (allowed && ev->report != NO_RULE)
            out->report_rule_id = ev->set->rules[ev->report].id;
        if (allowed && ev->req->brief)
            return;
        client_str(ev->req->client, who, sizeof(who));
        n = (size_t)snprintf(out->reason, sizeof(out->reason),
                             allowed ? "default: client %s allowed"
                                     : "default: client %s not in allowed networks",
                             who);
    }
    if (out->report_rule_id && n < sizeof(out->reason)) {
        const struct acl_rule *r = &ev->set->rules[ev->report];
        n += (size_t)snprintf(out->reason + n, sizeof(out->reason) - n,
                              "; rule %d would deny (report %s%s%s)", r->id,
                              acl_match_str(r->match), r->arg[0] ? " " : "", r->arg);
    }
    if (!undecided || n >= sizeof(out->reason))
        return;
    if (ev->undecided == ev->best)
        snprintf(out->reason + n, sizeof(out->reason) - n,
                 " (its regex hit the match limit: undecided, so it denies)");
    else
        snprintf(out->reason + n, sizeof(out->reason) - n,
                 "; rule %d hit the regex match limit (undecided, so it does not allow)",
                 out->undecided_rule_id);
}

/* acl_eval, leaving in *ev what the evaluation found. */
static void evaluate(struct eval *ev, const struct acl_set *set, const struct acl_request *req,
                     struct acl_scratch *s, struct acl_decision *out)
{
    *ev = (struct eval){
        .set = set,
        .req = req,
        .s = s,
        .best = NO_RULE,
        .undecided = NO_RULE,
        .dest_later = NO_RULE,
        .report = NO_RULE,
    };
    memset(out, 0, sizeof(*out));
    out->action = ACL_DENY;
    out->order = NO_RULE;
    if (!set || !s) {
        snprintf(out->reason, sizeof(out->reason), "no policy loaded");
        return;
    }

    size_t host_off;
    int pos = acl_url_begin(s->url, sizeof(s->url), req->scheme, req->host, &host_off);
    if (pos >= 0 && set->has_url_regex) {
        int len = acl_url_finish(s->url, sizeof(s->url), (size_t)pos, req->port,
                                 req->path ? req->path : "", req->path ? req->path_len : 0);
        if (len == ACL_URL_AMBIGUOUS) {
            /* Either reading could be the origin's: judging one lets the other past. */
            snprintf(out->reason, sizeof(out->reason),
                     "request path has an encoded slash in a dot segment (url-regex rules "
                     "cannot judge it)");
            return;
        }
        if (len >= 0) {
            ev->url = s->url;
            ev->url_len = (size_t)len;
        } else {
            pos = -1;
        }
    }
    if (pos < 0) {
        /* Failing open here would let a long URL slip past deny rules. */
        snprintf(out->reason, sizeof(out->reason), "request URL longer than %d bytes", ACL_URL_MAX);
        return;
    }
    ev->host = s->url + host_off;
    ev->host_len = req->host ? req->host->len : 0;
    ev->host_is_ip = req->host && acl_host_is_ip(req->host);
    if (ev->host_is_ip)
        memcpy(ev->host_addr, req->host->addr, 16);
    ev->has_client = acl_addr_from_sockaddr(req->client, ev->client);

    eval_domains(ev);
    eval_linear(ev);
    eval_regex_index(ev, &set->rx[ACL_RX_HOST], ev->host, ev->host_len);
    eval_regex_index(ev, &set->rx[ACL_RX_URL], ev->url, ev->url_len);
    decide(ev, out);
}

void acl_eval(const struct acl_set *set, const struct acl_request *req, struct acl_scratch *s,
              struct acl_decision *out)
{
    struct eval ev;
    evaluate(&ev, set, req, s, out);
    if (out->action != ACL_ALLOW || !set->has_url_regex || !req->path)
        return;
    /* Servers read ";parameters", "\\" and encoded slashes differently (acl_url.h): the
     * request passes only if every reading of its path passes too. */
    unsigned readings = acl_url_readings(req->path, req->path_len);
    for (int k = 0; k < ACL_URL_READ_COUNT; k++) {
        if (!(readings & 1u << k))
            continue;
        struct acl_decision loose = {.action = ACL_DENY, .order = NO_RULE};
        int len = acl_url_read_path(req->path, req->path_len, (enum acl_url_reading)k,
                                    s->loose_path, sizeof(s->loose_path));
        if (len < 0) {
            snprintf(loose.reason, sizeof(loose.reason), "request URL longer than %d bytes",
                     ACL_URL_MAX);
        } else {
            struct acl_request r = *req;
            r.path = s->loose_path;
            r.path_len = (size_t)len;
            evaluate(&ev, set, &r, s, &loose);
        }
        if (loose.action != ACL_ALLOW) {
            size_t n = strlen(loose.reason);
            *out = loose;
            if (n < sizeof(out->reason))
                snprintf(out->reason + n, sizeof(out->reason) - n, " (%s)",
                         acl_url_reading_str((enum acl_url_reading)k));
            return;
        }
        /* All allow: the later deciding rule has more `deny dest` rules above it to ask. */
        if (loose.order > out->order)
            out->order = loose.order;
        out->dest_pending |= loose.dest_pending;
        if (!out->report_rule_id)
            out->report_rule_id = loose.report_rule_id;
    }
}

void acl_eval_inspect(const struct acl_set *set, const struct acl_request *req,
                      struct acl_scratch *s, struct acl_inspect *out)
{
    struct acl_request r = *req;
    struct acl_decision d;
    struct eval ev;

    memset(out, 0, sizeof(*out));
    if (!set || !set->inspect || !s) {
        snprintf(out->reason, sizeof(out->reason), "no inspect rule");
        return;
    }
    r.brief = false;
    evaluate(&ev, set->inspect, &r, s, &d);
    if (ev.best == NO_RULE) {
        /* No host looked at: the URL was too long, and d says so. */
        snprintf(out->reason, sizeof(out->reason), "%s", ev.host ? "no inspect rule" : d.reason);
        return;
    }
    if (ev.best == 0 && set->inspect->no_inspect_first) {
        const struct acl_domain_entry *k = ev.best_key;
        out->no_inspect = true;
        snprintf(out->reason, sizeof(out->reason), "no-inspect list (%.*s)",
                 k ? (int)k->key_len : 0, k ? set->inspect->domains.keys + k->key_off : "");
        return;
    }
    out->rule_id = d.rule_id;
    out->inspect = true;
    snprintf(out->reason, sizeof(out->reason), "%s", d.reason);
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

void acl_eval_dest(const struct acl_set *set, const struct acl_request *req,
                   const struct acl_decision *first, const struct sockaddr *sa,
                   struct acl_decision *out)
{
    struct eval ev = {.set = set, .req = req, .best = NO_RULE};
    uint8_t addr[16];
    *out = *first;
    out->dest_pending = false;
    if (!set) { /* no rule set to ask: deny, as acl_eval does */
        out->action = ACL_DENY;
        snprintf(out->reason, sizeof(out->reason), "no policy loaded");
        return;
    }
    if (!set->has_deny_dest || !acl_addr_from_sockaddr(sa, addr))
        return;
    ev.has_client = acl_addr_from_sockaddr(req->client, ev.client);
    for (uint32_t k = 0; k < set->nlinear && set->linear[k] < first->order; k++) {
        const struct acl_rule *r = &set->rules[set->linear[k]];
        if (r->match != ACL_MATCH_DEST || r->action == ACL_ALLOW ||
            !acl_dest_list_contains(r->cidrs, r->ncidrs, addr))
            continue;
        enum fire f = rule_fires(&ev, r, true);
        if (f == FIRE_NO)
            continue;
        if (r->action == ACL_REPORT) {
            if (f == FIRE_YES && !out->report_rule_id)
                out->report_rule_id = r->id;
            continue;
        }
        char where[INET6_ADDRSTRLEN];
        struct in6_addr a6;
        memcpy(&a6, addr, 16);
        if (IN6_IS_ADDR_V4MAPPED(&a6))
            inet_ntop(AF_INET, addr + 12, where, sizeof(where));
        else
            inet_ntop(AF_INET6, addr, where, sizeof(where));
        out->rule_id = r->id;
        out->order = set->linear[k];
        out->undecided_rule_id = 0;
        out->report_rule_id = 0;
        if (f == FIRE_AUTH) {
            out->action = ACL_AUTH;
            snprintf(out->reason, sizeof(out->reason), "rule %d requires an authenticated user",
                     r->id);
        } else {
            out->action = ACL_DENY;
            snprintf(out->reason, sizeof(out->reason), "rule %d: deny dest %s (address %s)", r->id,
                     r->arg, where);
        }
        return;
    }
}
