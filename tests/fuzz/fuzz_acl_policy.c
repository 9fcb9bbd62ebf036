/* fuzz_acl_policy: libFuzzer target for the text parsers of acl/: policy text
 * (acl_policy_parse, acl_rule_check), the rule compiler (acl_set_compile) and evaluator
 * (acl_eval), domain lists (acl_list_parse: hosts, plain and adblock lines, downloaded from
 * anywhere) and hosts (acl_host_parse).
 *
 * The input up to its first NUL byte is the policy; what follows it (or, without a NUL, the
 * whole input again) is the list, compiled in as list "fuzz", and the host.
 *
 * Invariants beyond "no crash":
 *   - every rule accepted is accepted again from its own text, and the rule texts one a line
 *     parse back to the same rules (what an export writes, an import reads);
 *   - an accepted policy compiles, unless a rule names a list or group that does not exist or
 *     a group is defined twice;
 *   - fixed requests evaluated against the set: a valid action, a rule of the set (or 0),
 *     the same decision twice and when brief, the same decision as trying the rules one at a
 *     time in order (small sets), never ALLOW for a client acl_client_admitted refuses, and
 *     the report rule named on an ALLOW is the first report rule above the decider that
 *     holds on its own (report rules never decide); an inspect answer names a rule of the
 *     policy, never with the no-inspect list, and is the same twice;
 *   - list entries are canonical hosts, distinct, as many as counted, and the list written
 *     back as "||d^" lines parses to the same entries with nothing skipped;
 *   - a host that parses is canonical: its text parses to itself.
 *
 * Linked with fuzz_replay.c instead of libFuzzer, it replays the seed corpus in every build.
 */
#include "acl/acl.h"
#include "fuzz_check.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>

#define ONE_BY_ONE_MAX 8 /* rules, for the rule-by-rule comparison (a compile each) */

static struct acl_scratch *scratch;

/* The host is canonical: its text parses to itself (one spelling per host). */
static void host_check(const char *in, size_t len)
{
    struct acl_host h, again;
    const char *why;

    if (acl_host_parse(in, len, &h, &why) != 0) {
        CHECK(why != NULL && h.len == 0);
        return;
    }
    CHECK(h.len > 0 && h.len <= ACL_HOST_MAX && strlen(h.text) == h.len);
    CHECK(h.kind < ACL_HOST_KIND_COUNT);
    CHECK(acl_host_parse(h.text, h.len, &again, &why) == 0);
    CHECK(again.kind == h.kind && again.len == h.len && memcmp(again.text, h.text, h.len) == 0 &&
          memcmp(again.addr, h.addr, 16) == 0);
}

static int str_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void list_check(char **domains, size_t count, const struct acl_list_stats *st)
{
    CHECK(st->added == count);
    CHECK((st->skipped == 0) == (st->first_skipped_line == 0));

    size_t cap = 1;
    for (size_t i = 0; i < count; i++) {
        struct acl_host h;
        const char *why;
        size_t n = strlen(domains[i]);
        CHECK(acl_host_parse(domains[i], n, &h, &why) == 0);
        CHECK(h.len == n && memcmp(h.text, domains[i], n) == 0);
        cap += n + 4;
    }

    char **sorted = malloc((count ? count : 1) * sizeof(*sorted));
    CHECK(sorted);
    if (count)
        memcpy(sorted, domains, count * sizeof(*sorted));
    qsort(sorted, count, sizeof(*sorted), str_cmp);
    for (size_t i = 1; i < count; i++)
        CHECK(strcmp(sorted[i - 1], sorted[i]) != 0);
    free(sorted);

    /* written back in adblock form, the one that takes any canonical host */
    char *text = malloc(cap), *p = text;
    CHECK(text);
    for (size_t i = 0; i < count; i++)
        p += sprintf(p, "||%s^\n", domains[i]);
    char **again;
    size_t n_again;
    struct acl_list_stats st2;
    CHECK(acl_list_parse(text, (size_t)(p - text), &again, &n_again, &st2) == 0);
    CHECK(n_again == count && st2.skipped == 0 && st2.duplicates == 0);
    for (size_t i = 0; i < count; i++)
        CHECK(strcmp(again[i], domains[i]) == 0);
    acl_list_free(again, n_again);
    free(text);
}

/* Every rule is accepted from its own text, and the texts one a line are the same policy. */
static void policy_check(const struct acl_policy *pol)
{
    struct acl_error err;
    size_t cap = 1;

    for (size_t i = 0; i < pol->nrules; i++) {
        const struct acl_rule_src *r = &pol->rules[i];
        CHECK(r->text && r->text[0] != '\0' && r->enabled);
        CHECK(i == 0 || r->id > pol->rules[i - 1].id);
        CHECK(acl_rule_check(r->text, &err) == 0);
        cap += strlen(r->text) + 1;
    }

    char *text = malloc(cap), *p = text;
    CHECK(text);
    for (size_t i = 0; i < pol->nrules; i++)
        p += sprintf(p, "%s\n", pol->rules[i].text);
    struct acl_policy again;
    CHECK(acl_policy_parse(text, (size_t)(p - text), &again, &err) == 0);
    CHECK(again.nrules == pol->nrules);
    for (size_t i = 0; i < pol->nrules; i++)
        CHECK(strcmp(again.rules[i].text, pol->rules[i].text) == 0);
    acl_policy_free(&again);
    free(text);
}

static bool same_decision(const struct acl_decision *a, const struct acl_decision *b)
{
    return a->action == b->action && a->rule_id == b->rule_id &&
           a->undecided_rule_id == b->undecided_rule_id && a->dest_pending == b->dest_pending &&
           a->report_rule_id == b->report_rule_id;
}

static bool rule_of(const struct acl_config *cfg, int id)
{
    for (size_t i = 0; i < cfg->nrules; i++)
        if (cfg->rules[i].id == id)
            return true;
    return id == 0;
}

static bool is_group(const char *text)
{
    return strncmp(text, "group", 5) == 0 && (text[5] == ' ' || text[5] == '\t');
}

/* The first rule that decides on its own is the rule that decides in the set. */
static void one_by_one_check(const struct acl_config *cfg, const struct acl_request *req,
                             const struct acl_decision *got)
{
    struct acl_decision ref = {.rule_id = 0};
    struct acl_error err;
    int report = 0;

    /* Each rule with the policy's group definitions, which decide nothing themselves. */
    struct acl_rule_src with_groups[ONE_BY_ONE_MAX + 1];
    size_t ngroups = 0;
    for (size_t i = 0; i < cfg->nrules; i++)
        if (is_group(cfg->rules[i].text))
            with_groups[ngroups++] = cfg->rules[i];
    for (size_t i = 0; i < cfg->nrules && ref.rule_id == 0; i++) {
        struct acl_config one = *cfg;
        with_groups[ngroups] = cfg->rules[i];
        one.rules = with_groups;
        one.nrules = ngroups + !is_group(cfg->rules[i].text);
        /* Every client allowed by default, so that a report rule that holds is named whatever
         * the client (a rule that decides does so whatever the default). */
        one.allowed_clients = "::/0";
        struct acl_set *set = acl_set_compile(&one, &err);
        CHECK(set);
        acl_eval(set, req, scratch, &ref);
        acl_set_free(set);
        if (!report && ref.rule_id == 0)
            report = ref.report_rule_id;
    }
    if (ref.rule_id == 0) {
        struct acl_config none = *cfg;
        none.nrules = 0;
        struct acl_set *set = acl_set_compile(&none, &err);
        CHECK(set);
        acl_eval(set, req, scratch, &ref);
        acl_set_free(set);
    }
    if (ref.rule_id != got->rule_id || ref.action != got->action)
        fprintf(stderr, "in the set: %s rule %d (%s); one by one: %s rule %d (%s)\n",
                acl_action_str(got->action), got->rule_id, got->reason, acl_action_str(ref.action),
                ref.rule_id, ref.reason);
    CHECK(ref.rule_id == got->rule_id && ref.action == got->action);
    CHECK(got->report_rule_id == (got->action == ACL_ALLOW ? report : 0));
}

static void eval_check(const struct acl_set *set, const struct acl_config *cfg,
                       struct acl_request *req)
{
    struct acl_decision d, again;

    req->brief = false;
    acl_eval(set, req, scratch, &d);
    CHECK(d.action < ACL_ACTION_COUNT);
    CHECK(rule_of(cfg, d.rule_id) && rule_of(cfg, d.undecided_rule_id) &&
          rule_of(cfg, d.report_rule_id));
    CHECK(!d.report_rule_id || d.action == ACL_ALLOW);
    CHECK(memchr(d.reason, '\0', sizeof(d.reason)) && d.reason[0] != '\0');
    CHECK(!d.dest_pending || (d.action == ACL_ALLOW && !acl_host_is_ip(req->host)));
    if (d.action == ACL_ALLOW)
        CHECK(acl_client_admitted(set, req->client));

    acl_eval(set, req, scratch, &again);
    CHECK(same_decision(&d, &again) && strcmp(d.reason, again.reason) == 0);
    req->brief = true;
    acl_eval(set, req, scratch, &again);
    CHECK(same_decision(&d, &again));

    if (d.dest_pending) {
        struct sockaddr_in6 addr = {.sin6_family = AF_INET6};
        inet_pton(AF_INET6, "::ffff:10.1.2.3", &addr.sin6_addr);
        acl_eval_dest(set, req, &d, (const struct sockaddr *)&addr, &again);
        CHECK(again.action < ACL_ACTION_COUNT && rule_of(cfg, again.rule_id));
    }
    if (cfg->nrules <= ONE_BY_ONE_MAX)
        one_by_one_check(cfg, req, &d);

    /* Inspect rules: one of the policy's when it says inspect, none with the no-inspect
     * list, and the same answer twice. */
    struct acl_inspect in, in2;
    acl_eval_inspect(set, req, scratch, &in);
    acl_eval_inspect(set, req, scratch, &in2);
    CHECK(memchr(in.reason, '\0', sizeof(in.reason)) && in.reason[0] != '\0');
    CHECK(rule_of(cfg, in.rule_id) && (!in.inspect || in.rule_id > 0));
    CHECK(!(in.inspect && in.no_inspect) && (!in.no_inspect || in.rule_id == 0));
    CHECK(in.inspect == in2.inspect && in.rule_id == in2.rule_id &&
          strcmp(in.reason, in2.reason) == 0);
}

struct fixed_request {
    const char *method, *scheme, *host, *path, *client, *user;
    uint16_t port;
    struct acl_clock clock;
};

static const struct fixed_request fixed[] = {
    /* 2026-12-24T18:00:00Z: the second a rule `expires 2026-12-24T18:00Z` stops matching */
    {"GET",
     "http",
     "ads.example.com",
     "/x/../ads/a.js?q=1",
     "10.0.0.1",
     NULL,
     80,
     {1, 600, 1798135200}},
    {"CONNECT", "https", "2001:db8::1", "", "203.0.113.9", "alice", 443, {6, 1439, 0}},
    {"post", "http", "192.0.2.7", "/upload", "2001:db8:1::5", "bob", 8080, {0, 0, 1893456000}},
};

static void sockaddr_of(const char *ip, struct sockaddr_storage *ss)
{
    memset(ss, 0, sizeof(*ss));
    struct sockaddr_in *in = (struct sockaddr_in *)ss;
    struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ss;
    if (inet_pton(AF_INET, ip, &in->sin_addr) == 1) {
        in->sin_family = AF_INET;
    } else {
        in6->sin6_family = AF_INET6;
        CHECK(inet_pton(AF_INET6, ip, &in6->sin6_addr) == 1);
    }
}

static void request_fill(struct acl_request *req, const struct fixed_request *f,
                         struct acl_host *host, struct sockaddr_storage *client)
{
    const char *why;
    CHECK(acl_host_parse(f->host, strlen(f->host), host, &why) == 0);
    sockaddr_of(f->client, client);
    *req = (struct acl_request){
        .scheme = f->scheme,
        .host = host,
        .port = f->port,
        .path = f->path,
        .path_len = strlen(f->path),
        .method = f->method,
        .method_len = strlen(f->method),
        .client = (const struct sockaddr *)client,
        .user = f->user,
        .clock = f->clock,
    };
}

static void set_check(const struct acl_policy *pol, char **domains, size_t ndomains)
{
    const struct acl_list_src list = {"fuzz", (const char *const *)domains, ndomains};
    const struct acl_config cfg = {pol->rules, pol->nrules, &list, 1, NULL};
    struct acl_error err;

    struct acl_set *set = acl_set_compile(&cfg, &err);
    if (!set) {
        CHECK(err.msg[0] != '\0' && memchr(err.msg, '\0', sizeof(err.msg)));
        bool names = strstr(err.msg, "no list named") || strstr(err.msg, "no group named") ||
                     strstr(err.msg, "is defined twice");
        if (!names)
            fprintf(stderr, "compile: %s\n", err.msg);
        CHECK(names);
        return;
    }
    CHECK(acl_set_memory(set) > 0);

    struct acl_request req;
    struct acl_host host;
    struct sockaddr_storage client;
    for (size_t i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++) {
        request_fill(&req, &fixed[i], &host, &client);
        eval_check(set, &cfg, &req);
    }
    /* a host of the list, so that list rules can match */
    if (ndomains > 0) {
        request_fill(&req, &fixed[0], &host, &client);
        const char *why;
        CHECK(acl_host_parse(domains[0], strlen(domains[0]), &host, &why) == 0);
        eval_check(set, &cfg, &req);
    }
    acl_set_free(set);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!scratch)
        CHECK((scratch = acl_scratch_new()) != NULL);

    /* exact-size heap copies so ASan sees any read past the end */
    const uint8_t *nul = memchr(data, '\0', size);
    const size_t policy_len = nul ? (size_t)(nul - data) : size;
    const size_t list_off = nul ? policy_len + 1 : 0;
    char *policy = malloc(policy_len ? policy_len : 1);
    char *list = malloc(size - list_off ? size - list_off : 1);
    CHECK(policy && list);
    memcpy(policy, data, policy_len);
    memcpy(list, data + list_off, size - list_off);

    host_check(list, size - list_off);

    char **domains;
    size_t ndomains;
    struct acl_list_stats st;
    CHECK(acl_list_parse(list, size - list_off, &domains, &ndomains, &st) == 0);
    list_check(domains, ndomains, &st);

    struct acl_policy pol;
    struct acl_error err;
    if (acl_policy_parse(policy, policy_len, &pol, &err) == 0) {
        policy_check(&pol);
        set_check(&pol, domains, ndomains);
        acl_policy_free(&pol);
    } else {
        CHECK(err.msg[0] != '\0' && pol.nrules == 0 && pol.rules == NULL);
    }

    acl_list_free(domains, ndomains);
    free(policy);
    free(list);
    return 0;
}
