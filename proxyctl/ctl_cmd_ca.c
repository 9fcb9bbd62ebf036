/* proxyctl verbs about the local CA: ca init, ca import, ca show (docs/api.md, /api/ca;
 * docs/ca.md). The files of an import are read here and sent as text: the admin server may
 * run where they are not. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proxyctl/ctl_cmd.h"
#include "proxyctl/ctl_http.h"

/* Prints what /api/ca (or an init or import) says about the CA. */
static void print_ca(const json_t *o)
{
    if (!json_is_true(json_object_get(o, "present"))) {
        printf("no CA (make one with: proxyctl ca init)\n");
        return;
    }
    const char *error = ctl_json_str(o, "error");
    if (*error) {
        printf("CA files present but unusable: %s\n", error);
        return;
    }
    char from[32], until[32];
    printf("subject  %s\n", ctl_json_str(o, "subject"));
    printf("sha256   %s\n", ctl_json_str(o, "sha256"));
    printf("valid    %s to %s\n",
           ctl_time_str(ctl_json_num(o, "not_before_ms"), from, sizeof(from)),
           ctl_time_str(ctl_json_num(o, "not_after_ms"), until, sizeof(until)));
    const json_t *cache = json_object_get(o, "cache");
    if (cache) {
        char bytes[32];
        printf("cache    %lld certificates (%s), %lld hits, %lld signed, %lld evicted\n",
               ctl_json_num(cache, "entries"),
               ctl_bytes_str((double)ctl_json_num(cache, "bytes"), bytes, sizeof(bytes)),
               ctl_json_num(cache, "hits"), ctl_json_num(cache, "misses"),
               ctl_json_num(cache, "evictions"));
    }
}

static enum ctl_status made(struct ctl_ctx *ctx, json_t *body, const char *path)
{
    json_t *out = NULL;
    enum ctl_status st = ctl_api_show(ctx, "POST", path, body, &out, "CA");
    json_decref(body);
    if (!out)
        return st;
    print_ca(out);
    printf("clients trust it from http://ADMIN/ca.crt (the Settings page explains how)\n");
    json_decref(out);
    return CTL_OK;
}

enum ctl_status ctl_cmd_ca_init(struct ctl_ctx *ctx, const struct ctl_call *call)
{
    const struct ctl_value *cn = ctl_call_opt(call, "--cn");
    json_t *body = cn->set ? json_pack("{s:s}", "cn", cn->str) : json_object();
    if (!body)
        return ctl_usage(ctx, "the name is not valid UTF-8");
    return made(ctx, body, "/api/ca");
}

enum ctl_status ctl_cmd_ca_import(struct ctl_ctx *ctx, const struct ctl_call *call)
{
    size_t clen, klen;
    enum ctl_status st;
    char *cert = ctl_read_file(ctx, call->words[0], &clen, &st);
    if (!cert)
        return st;
    char *key = ctl_read_file(ctx, call->words[1], &klen, &st);
    if (!key) {
        free(cert);
        return st;
    }
    json_t *body = json_pack("{s:s,s:s,s:b}", "cert", cert, "key", key, "replace",
                             ctl_call_opt(call, "--replace")->set);
    memset(key, 0, klen);
    free(key);
    free(cert);
    if (!body)
        return ctl_usage(ctx, "the files are not PEM text");
    return made(ctx, body, "/api/ca/import");
}

enum ctl_status ctl_cmd_ca_show(struct ctl_ctx *ctx, const struct ctl_call *call)
{
    (void)call;
    json_t *out;
    enum ctl_status st = ctl_api_show(ctx, "GET", "/api/ca", NULL, &out, NULL);
    if (!out)
        return st;
    print_ca(out);
    json_decref(out);
    return CTL_OK;
}
