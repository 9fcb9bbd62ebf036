/* web-admin ca: the local CA's endpoints (wa_ca.h). */
#include "web-admin/wa_ca.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tls/ca.h"

enum MHD_Result wa_ca_cert(struct wa_req *r)
{
    char err[512];
    char *pem = tls_ca_cert_pem(r->ctx->opts->data_dir, err, sizeof(err));
    if (!pem)
        return wa_reply_error(r, 404, NULL, "%s",
                              strcmp(err, TLS_CA_NONE) ? "the CA cannot be read" : "no CA");
    enum MHD_Result ret =
        wa_reply_data(r, 200, "application/x-x509-ca-cert", "no-cache", pem, strlen(pem));
    free(pem);
    return ret;
}

static json_t *ca_json(const struct tls_ca *ca)
{
    return json_pack("{s:b,s:o,s:s,s:s,s:I,s:I}", "present", 1, "subject",
                     wa_json_text(ca->subject), "sha256", ca->sha256, "spki_sha256",
                     ca->spki_sha256, "not_before_ms", (json_int_t)ca->not_before * 1000,
                     "not_after_ms", (json_int_t)ca->not_after * 1000);
}

enum MHD_Result wa_ca_get(struct wa_req *r)
{
    char err[512];
    struct tls_ca *ca = tls_ca_load(r->ctx->opts->data_dir, err, sizeof(err));
    json_t *o;
    if (ca) {
        o = ca_json(ca);
        tls_ca_free(ca);
    } else if (!strcmp(err, TLS_CA_NONE)) {
        o = json_pack("{s:b}", "present", 0);
    } else {
        /* There, but unusable: say why, so the admin can replace it. */
        o = json_pack("{s:b,s:o}", "present", 1, "error", wa_json_text(err));
    }
    /* The cache of the CA in use, as proxyd counts it. */
    if (o && r->ctx->opts->proxy_stats) {
        struct wa_proxy_stats *st = calloc(1, sizeof(*st));
        if (st) {
            r->ctx->opts->proxy_stats(r->ctx->opts->hook_arg, st);
            json_object_set_new(o, "cache",
                                json_pack("{s:I,s:I,s:I,s:I,s:I}", "entries",
                                          (json_int_t)st->mint_cache_entries, "bytes",
                                          (json_int_t)st->mint_cache_bytes, "hits",
                                          (json_int_t)st->mint_cache_hits, "misses",
                                          (json_int_t)st->mint_cache_misses, "evictions",
                                          (json_int_t)st->mint_cache_evictions));
            free(st);
        }
    }
    return wa_reply_json(r, 200, o);
}

/* Answers with the CA now in the data folder, after recording action in the audit. */
static enum MHD_Result made(struct wa_req *r, const char *action)
{
    char err[512], detail[400];
    struct tls_ca *ca = tls_ca_load(r->ctx->opts->data_dir, err, sizeof(err));
    if (!ca)
        return wa_reply_error(r, 500, NULL, "%s", err);
    snprintf(detail, sizeof(detail), "%.200s, SHA-256 %s", ca->subject, ca->sha256);
    struct store *st = wa_store(r);
    if (!st) {
        tls_ca_free(ca);
        return MHD_YES;
    }
    /* The CA is made either way: a full disk must not hide it from the answer. */
    store_audit_record(st, r->actor, action, detail, err, sizeof(err));
    json_t *o = ca_json(ca);
    tls_ca_free(ca);
    return wa_reply_json(r, 201, o);
}

enum MHD_Result wa_ca_init(struct wa_req *r)
{
    char err[512];
    const char *cn = NULL;
    json_t *body = NULL;
    if (r->len > 0) {
        body = wa_body_json(r);
        if (!body)
            return MHD_YES;
        json_t *v = json_object_get(body, "cn");
        if (v && !json_is_null(v) && !json_is_string(v)) {
            json_decref(body);
            return wa_reply_error(r, 400, "cn", "cn: a string");
        }
        cn = v && json_is_string(v) ? json_string_value(v) : NULL;
    }
    int rc = tls_ca_init(r->ctx->opts->data_dir, cn, err, sizeof(err));
    json_decref(body);
    if (rc < 0)
        return wa_reply_error(r, tls_ca_present(r->ctx->opts->data_dir) ? 409 : 400, "cn", "%s",
                              err);
    return made(r, "ca.init");
}

enum MHD_Result wa_ca_import(struct wa_req *r)
{
    char err[512];
    json_t *body = wa_body_json(r);
    if (!body)
        return MHD_YES;
    const char *cert = json_string_value(json_object_get(body, "cert"));
    const char *key = json_string_value(json_object_get(body, "key"));
    json_t *replace = json_object_get(body, "replace");
    if (replace && !json_is_boolean(replace)) {
        json_decref(body);
        return wa_reply_error(r, 400, "replace", "replace: true or false");
    }
    if (!cert || !key) {
        json_decref(body);
        return wa_reply_error(r, 400, cert ? "key" : "cert",
                              "cert and key (PEM text, strings) are required");
    }
    int rc = tls_ca_import_pem(r->ctx->opts->data_dir, cert, key, json_is_true(replace), err,
                               sizeof(err));
    json_decref(body);
    if (rc == -2)
        return wa_reply_error(r, 409, "replace", "%s", err);
    if (rc < 0)
        return wa_reply_error(r, 400, NULL, "%s", err);
    return made(r, "ca.import");
}
