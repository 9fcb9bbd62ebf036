/* proxyctl verbs about rules: block, unblock, allow, rules (list, add, del, enable, disable,
 * report, enforce, move) and test. After block/allow/unblock they ask /api/test how the proxy now
 * decides about the domain, so "(in force)" is what the proxy says, not what proxyctl hopes. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/clock.h"
#include "proxyctl/ctl_cmd.h"
#include "proxyctl/ctl_http.h"
#include "proxyctl/ctl_table.h"

/* Asks /api/test about http://DOMAIN/; returns the deciding rule's id (0: the default) and
 * the action in `action`, or -1 if the daemon could not say (the error is dropped: the
 * change itself succeeded). */
static long long decided_by(struct ctl_ctx *ctx, const char *domain, char *action, size_t len)
{
    char url[600];
    snprintf(url, sizeof(url), "http://%s/", domain);
    json_t *body = json_pack("{s:s}", "url", url);
    json_t *out = NULL;
    char saved[sizeof(ctx->err)];
    memcpy(saved, ctx->err, sizeof(saved));
    enum ctl_status st = ctl_api(ctx, "POST", "/api/test", body, &out, NULL);
    memcpy(ctx->err, saved, sizeof(saved));
    json_decref(body);
    if (st != CTL_OK)
        return -1;
    snprintf(action, len, "%s", ctl_json_str(out, "action"));
    long long id = ctl_json_num(out, "rule_id");
    json_decref(out);
    return id;
}

/* POST /api/block or /api/allow, then say whether the new rule is the one deciding. */
static enum ctl_status add_domain_rule(struct ctl_ctx *ctx, const struct ctl_call *call,
                                       const char *path, const char *done)
{
    const char *domain = call->words[0];
    const struct ctl_value *dur = ctl_call_opt(call, "--for");
    const struct ctl_value *until = ctl_call_opt(call, "--until");
    if (dur->set && until->set)
        return ctl_usage(ctx, "--for and --until exclude each other");
    json_t *body = json_pack("{s:s}", "domain", domain);
    char when[32];
    if (dur->set) {
        /* Written in UTC, so the rule means the same whatever zone proxyd runs in. */
        time_t t = (time_t)((clock_wall_ms() + dur->num) / 1000);
        struct tm tm;
        gmtime_r(&t, &tm);
        strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
        json_object_set_new(body, "expires", json_string(when));
    } else if (until->set) {
        json_object_set_new(body, "expires", json_string(until->str));
    }
    json_t *out;
    enum ctl_status st = ctl_api_show(ctx, "POST", path, body, &out, NULL);
    json_decref(body);
    if (!out)
        return st;
    long long id = ctl_json_num(json_object_get(out, "rule"), "id");
    json_decref(out);
    char action[16];
    long long by = decided_by(ctx, domain, action, sizeof(action));
    if (by == id)
        printf("%s %s: rule %lld (in force)\n", done, domain, id);
    else if (by > 0)
        printf("%s %s: rule %lld (saved; the proxy still decides %s by rule %lld)\n", done, domain,
               id, action, by);
    else
        printf("%s %s: rule %lld (saved)\n", done, domain, id);
    return CTL_OK;
}

enum ctl_status ctl_cmd_block(struct ctl_ctx *ctx, const struct ctl_call *call)
{
    return add_domain_rule(ctx, call, "/api/block", "blocked");
}

enum ctl_status ctl_cmd_allow(struct ctl_ctx *ctx, const struct ctl_call *call)
{
    return add_domain_rule(ctx, call, "/api/allow", "allowed");
}

enum ctl_status ctl_cmd_unblock(struct ctl_ctx *ctx, const struct ctl_call *call)
{
    const char *domain = call->words[0];
    char what[600];
    snprintf(what, sizeof(what), "'deny domain' rule for %s", domain);
    json_t *body = json_pack("{s:s}", "domain", domain);
    json_t *out;
    enum ctl_status st = ctl_api_show(ctx, "POST", "/api/unblock", body, &out, what);
    json_decref(body);
    if (!out)
        return st;
    const json_t *ids = json_object_get(out, "deleted");
    printf("unblocked %s: deleted rule%s", domain, json_array_size(ids) == 1 ? "" : "s");
    size_t i;
    const json_t *v;
    json_array_foreach(ids, i, v)
    {
        printf("%s %lld", i ? "," : "", (long long)json_integer_value(v));
    }
    putchar('\n');
    json_decref(out);
    char action[16];
    long long by = decided_by(ctx, domain, action, sizeof(action));
    if (by > 0 && strcmp(action, "allow") != 0)
        printf("note: %s is still %s by rule %lld\n", domain,
               strcmp(action, "deny") == 0 ? "denied" : action, by);
    return CTL_OK;
}

enum ctl_status ctl_cmd_rules(struct ctl_ctx *ctx, const struct ctl_call *call)
{
    static const struct ctl_column cols[] = {
        {"id", true, false},      {"pos", true, false},       {"on", false, false},
        {"hits", true, false},    {"undecided", true, false}, {"text", false, true},
        {"comment", false, true},
    };
    json_t *out;
    struct ctl_table *t;
    enum ctl_status st = ctl_api_table(ctx, "/api/rules", cols, 7, &out, &t);
    if (!t)
        return st;
    size_t i;
    const json_t *r;
    json_array_foreach(json_object_get(out, "rules"), i, r)
    {
        char id[24], pos[24], hits[24], undecided[24];
        snprintf(id, sizeof(id), "%lld", ctl_json_num(r, "id"));
        snprintf(pos, sizeof(pos), "%lld", ctl_json_num(r, "position"));
        snprintf(hits, sizeof(hits), "%lld", ctl_json_num(r, "hits"));
        snprintf(undecided, sizeof(undecided), "%lld", ctl_json_num(r, "undecided"));
        const char *cells[] = {id,
                               pos,
                               json_is_false(json_object_get(r, "enabled")) ? "off" : "on",
                               hits,
                               undecided,
                               ctl_json_str(r, "text"),
                               ctl_json_str(r, "comment")};
        ctl_table_add(t, cells);
    }
    ctl_table_print(t, "no rules: every request gets the default action");
    json_decref(out);
    return CTL_OK;
}

enum ctl_status ctl_cmd_rules_add(struct ctl_ctx *ctx, const struct ctl_call *call)
{
    const struct ctl_value *comment = ctl_call_opt(call, "--comment");
    const struct ctl_value *top = ctl_call_opt(call, "--top");
    const struct ctl_value *before = ctl_call_opt(call, "--before");
    if (top->set && before->set)
        return ctl_usage(ctx, "--top and --before %s exclude each other", before->str);

    char text[4096];
    size_t n = 0;
    for (int i = 0; i < call->nwords; i++) {
        int w = snprintf(text + n, sizeof(text) - n, "%s%s", i ? " " : "", call->words[i]);
        if (w < 0 || (size_t)w >= sizeof(text) - n)
            return ctl_usage(ctx, "TEXT is longer than %zu bytes", sizeof(text) - 1);
        n += (size_t)w;
    }
    json_t *body = json_pack("{s:s}", "text", text);
    if (comment->set)
        json_object_set_new(body, "comment", json_string(comment->str));
    if (top->set)
        json_object_set_new(body, "before", json_integer(-1));
    else if (before->set)
        json_object_set_new(body, "before", json_integer(before->num));
    char what[64];
    snprintf(what, sizeof(what), "rule %lld", before->num);
    json_t *out = NULL;
    enum ctl_status st =
        ctl_api_show(ctx, "POST", "/api/rules", body, &out, before->set ? what : NULL);
    json_decref(body);
    if (!out)
        return st;
    const json_t *r = json_object_get(out, "rule");
    printf("added rule %lld at position %lld: %s\n", ctl_json_num(r, "id"),
           ctl_json_num(r, "position"), ctl_json_str(r, "text"));
    json_decref(out);
    return CTL_OK;
}

enum ctl_status ctl_cmd_rules_del(struct ctl_ctx *ctx, const struct ctl_call *call)
{
    char path[64], what[64];
    snprintf(path, sizeof(path), "/api/rules/%lld", call->word_num[0]);
    snprintf(what, sizeof(what), "rule %lld", call->word_num[0]);
    json_t *out = NULL;
    enum ctl_status st = ctl_api(ctx, "DELETE", path, NULL, &out, what);
    if (st != CTL_OK)
        return st;
    return ctl_print_done(ctx, out, "deleted rule %lld\n", call->word_num[0]);
}

static enum ctl_status set_enabled(struct ctl_ctx *ctx, const struct ctl_call *call, bool on)
{
    char path[64], what[64];
    snprintf(path, sizeof(path), "/api/rules/%lld", call->word_num[0]);
    snprintf(what, sizeof(what), "rule %lld", call->word_num[0]);
    json_t *body = json_pack("{s:b}", "enabled", on);
    json_t *out;
    enum ctl_status st = ctl_api_show(ctx, "PATCH", path, body, &out, what);
    json_decref(body);
    if (!out)
        return st;
    printf("%s rule %lld: %s\n", on ? "enabled" : "disabled", call->word_num[0],
           ctl_json_str(json_object_get(out, "rule"), "text"));
    json_decref(out);
    return CTL_OK;
}

enum ctl_status ctl_cmd_rules_enable(struct ctl_ctx *ctx, const struct ctl_call *call)
{
    return set_enabled(ctx, call, true);
}

enum ctl_status ctl_cmd_rules_disable(struct ctl_ctx *ctx, const struct ctl_call *call)
{
    return set_enabled(ctx, call, false);
}

/* Rewrites rule ID's action word from `from` to `to` (report <-> deny). The rule keeps its id,
 * place and hit counts: only its text changes. */
static enum ctl_status switch_action(struct ctl_ctx *ctx, const struct ctl_call *call,
                                     const char *from, const char *to)
{
    char path[64], what[64];
    snprintf(path, sizeof(path), "/api/rules/%lld", call->word_num[0]);
    snprintf(what, sizeof(what), "rule %lld", call->word_num[0]);
    json_t *out = NULL;
    enum ctl_status st = ctl_api(ctx, "GET", path, NULL, &out, what);
    if (st != CTL_OK)
        return st;
    const char *text = ctl_json_str(json_object_get(out, "rule"), "text");
    size_t n = strlen(from);
    if (strncmp(text, from, n) != 0 || (text[n] != ' ' && text[n] != '\t')) {
        enum ctl_status bad = ctl_fail(ctx, CTL_REFUSED, "rule %lld is not a '%s' rule: %s",
                                       call->word_num[0], from, text);
        json_decref(out);
        return bad;
    }
    char *changed = malloc(strlen(to) + strlen(text + n) + 1);
    if (!changed) {
        json_decref(out);
        return ctl_fail(ctx, CTL_REFUSED, "out of memory");
    }
    sprintf(changed, "%s%s", to, text + n);
    json_decref(out);
    json_t *body = json_pack("{s:s}", "text", changed);
    free(changed);
    st = ctl_api_show(ctx, "PATCH", path, body, &out, what);
    json_decref(body);
    if (!out)
        return st;
    printf("rule %lld: %s\n", call->word_num[0],
           ctl_json_str(json_object_get(out, "rule"), "text"));
    json_decref(out);
    return CTL_OK;
}

enum ctl_status ctl_cmd_rules_report(struct ctl_ctx *ctx, const struct ctl_call *call)
{
    return switch_action(ctx, call, "deny", "report");
}

enum ctl_status ctl_cmd_rules_enforce(struct ctl_ctx *ctx, const struct ctl_call *call)
{
    return switch_action(ctx, call, "report", "deny");
}

/* The `group NAME MEMBERS` lines of the policy: id, on/off, name, members. */
enum ctl_status ctl_cmd_groups(struct ctl_ctx *ctx, const struct ctl_call *call)
{
    (void)call;
    static const struct ctl_column cols[] = {{"id", true, false},
                                             {"on", false, false},
                                             {"group", false, true},
                                             {"members", false, true}};
    json_t *out;
    struct ctl_table *t;
    enum ctl_status st = ctl_api_table(ctx, "/api/rules", cols, 4, &out, &t);
    if (!t)
        return st;
    size_t i;
    const json_t *r;
    json_array_foreach(json_object_get(out, "rules"), i, r)
    {
        const char *text = ctl_json_str(r, "text");
        if (strncmp(text, "group", 5) != 0 || (text[5] != ' ' && text[5] != '\t'))
            continue;
        const char *name = text + 5 + strspn(text + 5, " \t");
        size_t nlen = strcspn(name, " \t");
        char group[64], id[24];
        snprintf(group, sizeof(group), "%.*s", (int)(nlen < 63 ? nlen : 63), name);
        snprintf(id, sizeof(id), "%lld", ctl_json_num(r, "id"));
        const char *members = name + nlen + strspn(name + nlen, " \t");
        const char *cells[] = {id, json_is_false(json_object_get(r, "enabled")) ? "off" : "on",
                               group, members};
        ctl_table_add(t, cells);
    }
    ctl_table_print(t, "no groups (add one with: proxyctl rules add group NAME MEMBERS)");
    json_decref(out);
    return CTL_OK;
}

static const json_t *find_rule(const json_t *rules, long long id)
{
    size_t i;
    const json_t *r;
    json_array_foreach(rules, i, r)
    {
        if (ctl_json_num(r, "id") == id)
            return r;
    }
    return NULL;
}

enum ctl_status ctl_cmd_rules_move(struct ctl_ctx *ctx, const struct ctl_call *call)
{
    long long id = call->word_num[0];
    const struct ctl_value *before = ctl_call_opt(call, "--before");
    const struct ctl_value *end = ctl_call_opt(call, "--end");
    if (before->set && end->set)
        return ctl_usage(ctx, "--before and --end exclude each other");
    if (!before->set && !end->set)
        return ctl_usage(ctx, "needs --before ID or --end");
    if (before->set && before->num == id)
        return ctl_usage(ctx, "--before %lld: cannot move rule %lld before itself", id, id);

    /* Look both rules up first, so a 404 can say which one is missing. */
    json_t *list = NULL;
    enum ctl_status st = ctl_api(ctx, "GET", "/api/rules", NULL, &list, NULL);
    if (st != CTL_OK)
        return st;
    const json_t *rules = json_object_get(list, "rules");
    long long missing = !find_rule(rules, id)                           ? id
                        : before->set && !find_rule(rules, before->num) ? before->num
                                                                        : 0;
    json_decref(list);
    if (missing)
        return ctl_fail(ctx, CTL_REFUSED, "no such rule %lld", missing);

    char path[80], what[64];
    snprintf(path, sizeof(path), "/api/rules/%lld/move", id);
    snprintf(what, sizeof(what), "rule %lld", id);
    json_t *body = json_pack("{s:I}", "before", (json_int_t)(end->set ? 0 : before->num));
    json_t *out = NULL;
    st = ctl_api_show(ctx, "POST", path, body, &out, what);
    json_decref(body);
    if (!out)
        return st;
    const json_t *r = find_rule(json_object_get(out, "rules"), id);
    printf("moved rule %lld to position %lld\n", id, r ? ctl_json_num(r, "position") : 0);
    json_decref(out);
    return CTL_OK;
}

enum ctl_status ctl_cmd_test(struct ctl_ctx *ctx, const struct ctl_call *call)
{
    json_t *body = json_pack("{s:s}", "url", call->words[0]);
    static const char *const keys[][2] = {
        {"--client", "client"}, {"--user", "user"}, {"--method", "method"}};
    for (size_t i = 0; i < 3; i++) {
        const struct ctl_value *v = ctl_call_opt(call, keys[i][0]);
        if (v->set)
            json_object_set_new(body, keys[i][1], json_string(v->str));
    }
    json_t *out;
    enum ctl_status st = ctl_api_show(ctx, "POST", "/api/test", body, &out, NULL);
    json_decref(body);
    if (!out)
        return st;
    const json_t *rule = json_object_get(out, "rule");
    long long id = ctl_json_num(out, "rule_id");
    printf("action: %s\n", ctl_json_str(out, "action"));
    if (id > 0 && json_is_object(rule))
        printf("rule:   %lld (position %lld%s): %s\n", id, ctl_json_num(rule, "position"),
               json_is_false(json_object_get(rule, "enabled")) ? ", off" : "",
               ctl_json_str(rule, "text"));
    else if (id > 0)
        printf("rule:   %lld\n", id);
    else
        printf("rule:   none (the default action)\n");
    long long report = ctl_json_num(out, "report_rule_id");
    if (report > 0)
        printf("report: rule %lld would deny it\n", report);
    printf("reason: %s\n", ctl_json_str(out, "reason"));
    const json_t *ins = json_object_get(out, "inspect");
    if (json_is_object(ins))
        printf("tunnel: %s (%s)\n",
               json_is_true(json_object_get(ins, "inspect")) ? "inspected" : "spliced",
               ctl_json_str(ins, "reason"));
    json_decref(out);
    return CTL_OK;
}
