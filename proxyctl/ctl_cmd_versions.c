/* proxyctl policy versions: policy log, show, diff and rollback, and why a logged request was
 * decided (GET /api/versions..., GET /api/logs/ID/why).
 */
#include <stdio.h>
#include <string.h>

#include "proxyctl/ctl_cmd.h"
#include "proxyctl/ctl_http.h"
#include "proxyctl/ctl_table.h"

enum ctl_status ctl_cmd_policy_log(struct ctl_ctx *ctx, const struct ctl_call *call)
{
    struct ctl_query q = {0};
    const struct ctl_value *limit = ctl_call_opt(call, "--limit");
    if (limit->set)
        ctl_query_add_num(&q, "limit", limit->num);
    char path[sizeof(q.buf) + 16];
    snprintf(path, sizeof(path), "/api/versions%s", q.buf);
    static const struct ctl_column cols[] = {{"version", true, false},
                                             {"time", false, false},
                                             {"actor", false, false},
                                             {"rules", true, false},
                                             {"message", false, true}};
    json_t *out;
    struct ctl_table *t;
    enum ctl_status st = ctl_api_table(ctx, path, cols, 5, &out, &t);
    if (!t)
        return st;
    size_t i;
    const json_t *r;
    json_array_foreach(json_object_get(out, "rows"), i, r)
    {
        char version[24], time[32], rules[24];
        snprintf(version, sizeof(version), "%lld%s", ctl_json_num(r, "version"),
                 ctl_json_num(r, "version") == ctl_json_num(out, "current") ? "*" : "");
        snprintf(rules, sizeof(rules), "%lld", ctl_json_num(r, "rules"));
        const char *cells[] = {version,
                               ctl_time_str(ctl_json_num(r, "time_ms"), time, sizeof(time)),
                               ctl_json_str(r, "actor"), rules, ctl_json_str(r, "message")};
        ctl_table_add(t, cells);
    }
    ctl_table_print(t, "no policy versions recorded");
    json_decref(out);
    return CTL_OK;
}

/* "  12 on  deny domain x.example  # comment" */
static void print_rule(const char *mark, const json_t *r)
{
    const char *comment = ctl_json_str(r, "comment");
    printf("%s %4lld %-3s %s%s%s\n", mark, ctl_json_num(r, "id"),
           json_is_true(json_object_get(r, "enabled")) ? "on" : "off", ctl_json_str(r, "text"),
           *comment ? "  # " : "", comment);
}

enum ctl_status ctl_cmd_policy_show(struct ctl_ctx *ctx, const struct ctl_call *call)
{
    char path[64], what[48];
    snprintf(path, sizeof(path), "/api/versions/%lld", call->word_num[0]);
    snprintf(what, sizeof(what), "policy version %lld", call->word_num[0]);
    json_t *out;
    enum ctl_status st = ctl_api_show(ctx, "GET", path, NULL, &out, what);
    if (!out)
        return st;
    char time[32];
    printf("# version %lld, %s by %s: %s\n", ctl_json_num(out, "version"),
           ctl_time_str(ctl_json_num(out, "time_ms"), time, sizeof(time)),
           ctl_json_str(out, "actor"), ctl_json_str(out, "message"));
    size_t i;
    const json_t *r;
    json_array_foreach(json_object_get(out, "rule_list"), i, r) print_rule(" ", r);
    json_decref(out);
    return CTL_OK;
}

enum ctl_status ctl_cmd_policy_diff(struct ctl_ctx *ctx, const struct ctl_call *call)
{
    struct ctl_query q = {0};
    ctl_query_add_num(&q, "from", call->word_num[0]);
    ctl_query_add_num(&q, "to", call->word_num[1]);
    char path[sizeof(q.buf) + 24];
    snprintf(path, sizeof(path), "/api/versions/diff%s", q.buf);
    json_t *out;
    enum ctl_status st = ctl_api_show(ctx, "GET", path, NULL, &out, "policy version");
    if (!out)
        return st;
    const json_t *changes = json_object_get(out, "changes");
    printf("--- version %lld\n+++ version %lld\n", call->word_num[0], call->word_num[1]);
    size_t i;
    const json_t *c;
    json_array_foreach(changes, i, c)
    {
        const char *what = ctl_json_str(c, "change");
        if (strcmp(what, "removed") == 0) {
            print_rule("-", c);
        } else if (strcmp(what, "added") == 0) {
            print_rule("+", c);
        } else if (strcmp(what, "changed") == 0) {
            print_rule("-", json_object_get(c, "before"));
            print_rule("+", c);
        } else if (strcmp(what, "moved") == 0) {
            printf("~ %4lld moved from position %lld to %lld: %s\n", ctl_json_num(c, "id"),
                   ctl_json_num(c, "from_position"), ctl_json_num(c, "position"),
                   ctl_json_str(c, "text"));
        }
    }
    if (json_array_size(changes) == 0)
        printf("(the rules are the same)\n");
    /* The lists whose entries differ; null: one of the versions did not keep its lists. */
    const json_t *lists = json_object_get(out, "lists");
    json_array_foreach(lists, i, c)
    {
        const char *what = ctl_json_str(c, "change");
        if (strcmp(what, "added") == 0)
            printf("+ list %s (%lld entries)\n", ctl_json_str(c, "name"),
                   ctl_json_num(c, "entries_to"));
        else if (strcmp(what, "removed") == 0)
            printf("- list %s (%lld entries)\n", ctl_json_str(c, "name"),
                   ctl_json_num(c, "entries_from"));
        else
            printf("~ list %s: %lld -> %lld entries (%lld added, %lld removed)\n",
                   ctl_json_str(c, "name"), ctl_json_num(c, "entries_from"),
                   ctl_json_num(c, "entries_to"), ctl_json_num(c, "added"),
                   ctl_json_num(c, "removed"));
    }
    if (json_is_array(lists) && json_array_size(lists) == 0)
        printf("(the lists are the same)\n");
    json_decref(out);
    return CTL_OK;
}

enum ctl_status ctl_cmd_policy_rollback(struct ctl_ctx *ctx, const struct ctl_call *call)
{
    char path[64], what[48];
    snprintf(path, sizeof(path), "/api/versions/%lld/rollback", call->word_num[0]);
    snprintf(what, sizeof(what), "policy version %lld", call->word_num[0]);
    json_t *out;
    enum ctl_status st = ctl_api_show(ctx, "POST", path, NULL, &out, what);
    if (!out)
        return st;
    /* "lists" is null for a version from before versions kept lists: its lists stay. */
    if (json_is_integer(json_object_get(out, "lists")))
        printf("rules and lists of version %lld in force again (%lld rules, %lld lists): now "
               "version %lld\n",
               ctl_json_num(out, "restored"), ctl_json_num(out, "rules"),
               ctl_json_num(out, "lists"), ctl_json_num(out, "version"));
    else
        printf("rules of version %lld in force again (%lld rules; lists unchanged, that version "
               "did not keep them): now version %lld\n",
               ctl_json_num(out, "restored"), ctl_json_num(out, "rules"),
               ctl_json_num(out, "version"));
    json_decref(out);
    return CTL_OK;
}

enum ctl_status ctl_cmd_why(struct ctl_ctx *ctx, const struct ctl_call *call)
{
    char path[64], what[48];
    snprintf(path, sizeof(path), "/api/logs/%lld/why", call->word_num[0]);
    snprintf(what, sizeof(what), "log row %lld", call->word_num[0]);
    json_t *out;
    enum ctl_status st = ctl_api_show(ctx, "GET", path, NULL, &out, what);
    if (!out)
        return st;
    char time[32];
    const char *user = ctl_json_str(out, "user");
    printf("request %lld at %s: %s %s://%s:%lld%s from %s%s%s\n", ctl_json_num(out, "id"),
           ctl_time_str(ctl_json_num(out, "time_ms"), time, sizeof(time)),
           ctl_json_str(out, "method"), ctl_json_str(out, "scheme"), ctl_json_str(out, "host"),
           ctl_json_num(out, "port"), ctl_json_str(out, "path"), ctl_json_str(out, "client"),
           *user ? " user " : "", user);
    printf("decision: %s (status %lld)\n", ctl_json_str(out, "decision"),
           ctl_json_num(out, "status"));
    const json_t *v = json_object_get(out, "version");
    if (!json_is_object(v) && json_is_true(json_object_get(out, "version_pruned"))) {
        printf("policy version %lld: pruned (no longer kept)\n",
               ctl_json_num(out, "policy_version"));
        printf("rule: %lld\n", ctl_json_num(out, "rule_id"));
        json_decref(out);
        return CTL_OK;
    }
    if (!json_is_object(v)) {
        printf("policy version: not recorded (logged before versions were kept)\n");
        printf("rule: %lld\n", ctl_json_num(out, "rule_id"));
        json_decref(out);
        return CTL_OK;
    }
    printf("policy version %lld, %s by %s: %s\n", ctl_json_num(v, "version"),
           ctl_time_str(ctl_json_num(v, "time_ms"), time, sizeof(time)), ctl_json_str(v, "actor"),
           ctl_json_str(v, "message"));
    const json_t *rule = json_object_get(out, "rule");
    if (json_is_object(rule))
        printf("%s %lld (position %lld): %s\n",
               strcmp(ctl_json_str(out, "decision"), "report") ? "rule" : "reported by rule",
               ctl_json_num(rule, "id"), ctl_json_num(rule, "position"),
               ctl_json_str(rule, "text"));
    else if (ctl_json_num(out, "rule_id") == 0)
        printf("rule: none matched; the default action decided\n");
    else
        printf("rule %lld: not in that version\n", ctl_json_num(out, "rule_id"));
    printf("trace (first match wins):\n");
    size_t i;
    const json_t *t;
    json_array_foreach(json_object_get(out, "trace"), i, t)
    {
        printf("  %4lld %-15s %s\n", ctl_json_num(t, "position"), ctl_json_str(t, "result"),
               ctl_json_str(t, "text"));
    }
    if (json_is_true(json_object_get(out, "trace_truncated")))
        printf("  ... (more rules not shown)\n");
    if (!json_is_object(rule) && ctl_json_num(out, "rule_id") == 0)
        printf("  default action\n");
    json_decref(out);
    return CTL_OK;
}
