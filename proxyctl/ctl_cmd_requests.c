/* proxyctl access requests: the queue (GET /api/requests), approve and deny. */
#include <stdio.h>
#include <string.h>

#include "proxyctl/ctl_cmd.h"
#include "proxyctl/ctl_http.h"
#include "proxyctl/ctl_table.h"

enum ctl_status ctl_cmd_requests(struct ctl_ctx *ctx, const struct ctl_call *call)
{
    struct ctl_query q = {0};
    const struct ctl_value *limit = ctl_call_opt(call, "--limit");
    bool all = ctl_call_opt(call, "--all")->set;
    ctl_query_add(&q, "status", all ? "all" : "pending");
    if (limit->set)
        ctl_query_add_num(&q, "limit", limit->num);
    char path[sizeof(q.buf) + 16];
    snprintf(path, sizeof(path), "/api/requests%s", q.buf);
    static const struct ctl_column cols[] = {
        {"id", true, false},    {"time", false, false},  {"client", false, false},
        {"user", false, false}, {"host", false, false},  {"status", false, false},
        {"name", false, true},  {"reason", false, true}, {"decision", false, true}};
    json_t *out;
    struct ctl_table *t;
    enum ctl_status st = ctl_api_table(ctx, path, cols, sizeof(cols) / sizeof(cols[0]), &out, &t);
    if (!t)
        return st;
    size_t i;
    const json_t *r;
    json_array_foreach(json_object_get(out, "rows"), i, r)
    {
        char id[24], time[32], decision[640] = "";
        snprintf(id, sizeof(id), "%lld", ctl_json_num(r, "id"));
        if (strcmp(ctl_json_str(r, "status"), "pending") != 0) {
            int n = snprintf(decision, sizeof(decision), "by %s", ctl_json_str(r, "decided_by"));
            if (ctl_json_num(r, "granted_rule_id") && n > 0 && (size_t)n < sizeof(decision))
                n += snprintf(decision + n, sizeof(decision) - (size_t)n, " (rule %lld)",
                              ctl_json_num(r, "granted_rule_id"));
            if (*ctl_json_str(r, "note") && n > 0 && (size_t)n < sizeof(decision))
                snprintf(decision + n, sizeof(decision) - (size_t)n, ": %s",
                         ctl_json_str(r, "note"));
        }
        const char *cells[] = {id,
                               ctl_time_str(ctl_json_num(r, "time_ms"), time, sizeof(time)),
                               ctl_json_str(r, "client"),
                               ctl_json_str(r, "user"),
                               ctl_json_str(r, "host"),
                               ctl_json_str(r, "status"),
                               ctl_json_str(r, "name"),
                               ctl_json_str(r, "reason"),
                               decision};
        ctl_table_add(t, cells);
    }
    ctl_table_print(t, all ? "no access requests" : "no pending access requests");
    json_decref(out);
    return CTL_OK;
}

enum ctl_status ctl_cmd_requests_approve(struct ctl_ctx *ctx, const struct ctl_call *call)
{
    bool client = ctl_call_opt(call, "--client")->set, user = ctl_call_opt(call, "--user")->set;
    const struct ctl_value *note = ctl_call_opt(call, "--note");
    const struct ctl_value *length = ctl_call_opt(call, "--for");
    if (client && user)
        return ctl_usage(ctx, "--client and --user exclude each other");
    json_t *body = json_object();
    if (client || user)
        json_object_set_new(body, "scope", json_string(client ? "client" : "user"));
    if (note->set)
        json_object_set_new(body, "note", json_string(note->str));
    if (length->set)
        json_object_set_new(body, "for", json_string(length->str));
    char path[64], what[48];
    snprintf(path, sizeof(path), "/api/requests/%lld/approve", call->word_num[0]);
    snprintf(what, sizeof(what), "access request %lld", call->word_num[0]);
    json_t *out;
    enum ctl_status st = ctl_api_show(ctx, "POST", path, body, &out, what);
    json_decref(body);
    if (!out)
        return st;
    const json_t *rule = json_object_get(out, "rule");
    printf("approved request %lld: rule %lld (in force): %s\n", call->word_num[0],
           ctl_json_num(rule, "id"), ctl_json_str(rule, "text"));
    json_decref(out);
    return CTL_OK;
}

enum ctl_status ctl_cmd_requests_deny(struct ctl_ctx *ctx, const struct ctl_call *call)
{
    const struct ctl_value *reason = ctl_call_opt(call, "--reason");
    json_t *body = json_object();
    if (reason->set)
        json_object_set_new(body, "reason", json_string(reason->str));
    char path[64], what[48];
    snprintf(path, sizeof(path), "/api/requests/%lld/deny", call->word_num[0]);
    snprintf(what, sizeof(what), "access request %lld", call->word_num[0]);
    json_t *out;
    enum ctl_status st = ctl_api_show(ctx, "POST", path, body, &out, what);
    json_decref(body);
    if (!out)
        return st;
    printf("denied request %lld\n", call->word_num[0]);
    json_decref(out);
    return CTL_OK;
}
