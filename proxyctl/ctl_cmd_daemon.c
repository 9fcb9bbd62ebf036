/* proxyctl verbs about the daemon itself: reload, version, health, nodes, settings. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proxyctl/ctl_cmd.h"
#include "proxyctl/ctl_http.h"
#include "proxyctl/ctl_table.h"

enum ctl_status ctl_cmd_reload(struct ctl_ctx *ctx, const struct ctl_call *call)
{
    json_t *out;
    enum ctl_status st = ctl_api_show(ctx, "POST", "/api/reload", NULL, &out, NULL);
    if (!out)
        return st;
    printf("reloaded: policy generation %lld in force\n",
           (long long)json_integer_value(json_object_get(out, "generation")));
    json_decref(out);
    return CTL_OK;
}

enum ctl_status ctl_cmd_version(struct ctl_ctx *ctx, const struct ctl_call *call)
{
    json_t *out = NULL;
    if (!ctx->json)
        printf("proxyctl %s\n", PX_VERSION);
    fflush(stdout);
    enum ctl_status st = ctl_api(ctx, "GET", "/api/health", NULL, &out, NULL);
    if (st != CTL_OK)
        return st;
    const char *v = json_string_value(json_object_get(out, "version"));
    if (ctx->json) {
        json_t *both = json_pack("{s:s,s:O}", "proxyctl", PX_VERSION, "proxyd", out);
        ctl_print_json(both);
        json_decref(both);
    } else {
        printf("proxyd %s at %s\n", v ? v : "(version unknown)", ctx->url);
    }
    json_decref(out);
    return CTL_OK;
}

enum ctl_status ctl_cmd_health(struct ctl_ctx *ctx, const struct ctl_call *call)
{
    json_t *out = NULL;
    enum ctl_status st = ctl_api(ctx, "GET", "/api/health", NULL, &out, NULL);
    if (st != CTL_OK)
        return st;
    bool ok = json_is_true(json_object_get(out, "ok"));
    bool db_ok = json_is_true(json_object_get(out, "db_ok"));
    const char *v = json_string_value(json_object_get(out, "version"));
    if (ctx->json)
        ctl_print_json(out);
    else
        printf("proxyd %s at %s: %s, database %s\n", v ? v : "?", ctx->url, ok ? "ok" : "NOT OK",
               db_ok ? "ok" : "NOT OK");
    json_decref(out);
    if (!ok || !db_ok)
        return ctl_fail(ctx, CTL_REFUSED, "proxyd at %s reports a problem%s", ctx->url,
                        db_ok ? "" : " with its database");
    return CTL_OK;
}

#define SETTING_SHOWN_MAX 200 /* bytes of a value shown whole in the table */

static void print_settings(const json_t *settings, const struct ctl_call *call)
{
    static const struct ctl_column cols[] = {{"key", false, false}, {"value", false, true}};
    struct ctl_table *t = ctl_table_new(cols, 2);
    if (!t)
        return;
    const char *key;
    const json_t *v;
    json_object_foreach((json_t *)settings, key, v)
    {
        /* After a change, show only the keys that were given. */
        bool wanted = call->nwords == 0;
        for (int i = 0; i < call->nwords && !wanted; i++) {
            size_t n = strcspn(call->words[i], "=");
            wanted = strlen(key) == n && strncmp(key, call->words[i], n) == 0;
        }
        if (!wanted)
            continue;
        char *s = json_is_string(v) ? strdup(json_string_value(v))
                                    : json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
        /* A long value (the logo is a data: URI of up to 22 KB) by its start and size; --json
         * has it whole. */
        size_t len = s ? strlen(s) : 0;
        if (len > SETTING_SHOWN_MAX) {
            char *shown = NULL;
            if (asprintf(&shown, "%.40s... (%zu bytes; --json shows it whole)", s, len) < 0)
                shown = NULL;
            free(s);
            s = shown;
        }
        const char *cells[] = {key, s ? s : "?"};
        ctl_table_add(t, cells);
        free(s);
    }
    if (ctl_table_rows(t) > 0)
        ctl_table_flush(t, stdout, ctl_table_max_width());
    ctl_table_free(t);
}

enum ctl_status ctl_cmd_settings(struct ctl_ctx *ctx, const struct ctl_call *call)
{
    json_t *out = NULL;
    enum ctl_status st;
    if (call->nwords == 0) {
        st = ctl_api(ctx, "GET", "/api/settings", NULL, &out, NULL);
    } else {
        json_t *body = json_object();
        for (int i = 0; i < call->nwords; i++) {
            const char *w = call->words[i];
            const char *eq = strchr(w, '=');
            if (!eq || eq == w) {
                json_decref(body);
                return ctl_usage(ctx, "expected KEY=VALUE, got '%s'", w);
            }
            char key[128];
            if ((size_t)(eq - w) >= sizeof(key)) {
                json_decref(body);
                return ctl_usage(ctx, "key too long in '%s'", w);
            }
            memcpy(key, w, (size_t)(eq - w));
            key[eq - w] = '\0';
            json_t *val = json_string(eq + 1);
            if (!val) {
                json_decref(body);
                return ctl_usage(ctx, "value of %s is not valid UTF-8", key);
            }
            json_object_set_new(body, key, val);
        }
        st = ctl_api(ctx, "PUT", "/api/settings", body, &out, NULL);
        json_decref(body);
    }
    if (st != CTL_OK)
        return st;
    if (ctx->json)
        ctl_print_json(out);
    else
        print_settings(json_object_get(out, "settings"), call);
    json_decref(out);
    return CTL_OK;
}

/* The fleet: every proxyd on the database, lagging ones said so (GET /api/nodes). */
enum ctl_status ctl_cmd_nodes(struct ctl_ctx *ctx, const struct ctl_call *call)
{
    (void)call;
    static const struct ctl_column cols[] = {{"node", false, false},    {"state", false, false},
                                             {"policy", true, false},   {"seen", true, false},
                                             {"started", false, false}, {"software", false, false},
                                             {"listen", false, true},   {"why", false, true}};
    json_t *out;
    struct ctl_table *t;
    enum ctl_status st =
        ctl_api_table(ctx, "/api/nodes", cols, sizeof(cols) / sizeof(cols[0]), &out, &t);
    if (!t)
        return st;
    size_t i;
    const json_t *r;
    json_array_foreach(json_object_get(out, "nodes"), i, r)
    {
        char name[80], policy[24], seen[32], started[32];
        snprintf(name, sizeof(name), "%s%s", ctl_json_str(r, "name"),
                 json_is_true(json_object_get(r, "self")) ? " (this)" : "");
        snprintf(policy, sizeof(policy), "%lld", ctl_json_num(r, "policy_version"));
        if (strcmp(ctl_json_str(r, "state"), "stopped") == 0)
            snprintf(seen, sizeof(seen), "stopped %lld s ago",
                     ctl_json_num(r, "stopped_ago_ms") / 1000);
        else
            snprintf(seen, sizeof(seen), "%lld s ago", ctl_json_num(r, "seen_ago_ms") / 1000);
        ctl_time_str(ctl_json_num(r, "started_ms"), started, sizeof(started));
        const char *cells[] = {name,
                               ctl_json_str(r, "state"),
                               policy,
                               seen,
                               started,
                               ctl_json_str(r, "software"),
                               ctl_json_str(r, "listen"),
                               ctl_json_str(r, "why")};
        ctl_table_add(t, cells);
    }
    ctl_table_print(t, "no nodes have reported yet");
    printf("newest policy version %lld; %lld lagging\n", ctl_json_num(out, "newest_policy_version"),
           ctl_json_num(out, "lagging"));
    json_decref(out);
    return CTL_OK;
}
