/* proxyctl verbs about port forwards: forward list, forward add, forward del. proxyd checks
 * the addresses and binds the listener (docs/api.md, /api/forwards); its refusal is shown as
 * it words it. */
#include <stdio.h>
#include <string.h>

#include "proxyctl/ctl_cmd.h"
#include "proxyctl/ctl_http.h"
#include "proxyctl/ctl_table.h"

enum ctl_status ctl_cmd_forward_list(struct ctl_ctx *ctx, const struct ctl_call *call)
{
    static const struct ctl_column cols[] = {{"id", true, false},     {"listen", false, false},
                                             {"target", false, true}, {"clients", false, true},
                                             {"tls", false, false},   {"added", false, false}};
    json_t *out;
    struct ctl_table *t;
    enum ctl_status st = ctl_api_table(ctx, "/api/forwards", cols, 6, &out, &t);
    if (!t)
        return st;
    size_t i;
    const json_t *r;
    const char *config_note = NULL;
    json_array_foreach(json_object_get(out, "forwards"), i, r)
    {
        char id[24], added[32];
        /* A config file's forward has no stored id to delete it by: its line is its name. */
        if (!strcmp(ctl_json_str(r, "source"), "config")) {
            config_note = ctl_json_str(r, "note");
            snprintf(id, sizeof(id), "config");
            snprintf(added, sizeof(added), "(config file)");
        } else {
            snprintf(id, sizeof(id), "%lld", ctl_json_num(r, "id"));
            ctl_time_str(ctl_json_num(r, "created_ms"), added, sizeof(added));
        }
        const char *clients = ctl_json_str(r, "clients");
        const char *tls = ctl_json_str(r, "tls"), *name = ctl_json_str(r, "tls_name");
        char tls_cell[300];
        snprintf(tls_cell, sizeof(tls_cell), "%s%s%s", *tls ? tls : "-", *name ? " " : "", name);
        const char *cells[] = {id,
                               ctl_json_str(r, "listen"),
                               ctl_json_str(r, "target"),
                               *clients ? clients : "(policy)",
                               tls_cell,
                               added};
        ctl_table_add(t, cells);
    }
    ctl_table_print(t, "no forwards (add one with: proxyctl forward add LISTEN TARGET)");
    if (config_note)
        printf("config: %s\n", config_note);
    json_decref(out);
    return CTL_OK;
}

enum ctl_status ctl_cmd_forward_add(struct ctl_ctx *ctx, const struct ctl_call *call)
{
    const struct ctl_value *clients = ctl_call_opt(call, "--clients");
    const struct ctl_value *tls_listen = ctl_call_opt(call, "--tls-listen");
    const struct ctl_value *tls_target = ctl_call_opt(call, "--tls-target");
    const struct ctl_value *tls_name = ctl_call_opt(call, "--tls-name");
    if (tls_listen->set && tls_target->set)
        return ctl_usage(ctx, "--tls-listen or --tls-target, not both");
    json_t *body = json_pack("{s:s,s:s,s:s,s:s,s:s}", "listen", call->words[0], "target",
                             call->words[1], "clients", clients->set ? clients->str : "", "tls",
                             tls_listen->set   ? "tls-listen"
                             : tls_target->set ? "tls-target"
                                               : "",
                             "tls_name", tls_name->set ? tls_name->str : "");
    if (!body)
        return ctl_usage(ctx, "the addresses are not valid UTF-8");
    json_t *out = NULL;
    enum ctl_status st = ctl_api_show(ctx, "POST", "/api/forwards", body, &out, "forward");
    json_decref(body);
    if (!out)
        return st;
    const char *cl = ctl_json_str(out, "clients"), *tls = ctl_json_str(out, "tls");
    const char *name = ctl_json_str(out, "tls_name");
    printf("forward %lld: %s -> %s%s%s%s%s%s%s (listening)\n", ctl_json_num(out, "id"),
           ctl_json_str(out, "listen"), ctl_json_str(out, "target"), *cl ? " clients " : "", cl,
           *tls ? " " : "", tls, *name ? " tls-name " : "", name);
    json_decref(out);
    return CTL_OK;
}

enum ctl_status ctl_cmd_forward_del(struct ctl_ctx *ctx, const struct ctl_call *call)
{
    char path[64], what[48];
    snprintf(path, sizeof(path), "/api/forwards/%lld", call->word_num[0]);
    snprintf(what, sizeof(what), "forward %lld", call->word_num[0]);
    json_t *out = NULL;
    enum ctl_status st = ctl_api(ctx, "DELETE", path, NULL, &out, what);
    if (st != CTL_OK)
        return st;
    return ctl_print_done(ctx, out, "deleted forward %lld (its listener is closed)\n",
                          call->word_num[0]);
}
