/* web-admin HTTP helpers: replies with the security headers, the request body, query
 * parameters, JSON text escaping. See wa_http.h.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/status.h"
#include "storage/store.h"
#include "web-admin/wa_http.h"

#define WA_CSP                                                                                     \
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "              \
    "frame-ancestors 'none'; base-uri 'none'; form-action 'self'"

struct store *wa_store(struct wa_req *r)
{
    char err[256];

    if (r->st)
        return r->st;
    r->st = store_pool_get(r->ctx->pool, err, sizeof(err));
    if (r->st)
        return r->st;
    if (store_pool_is_pg(r->ctx->pool))
        wa_reply_unavailable(r, "database unavailable: %s", err);
    else
        wa_reply_error(r, 500, NULL, "database: %s", err);
    return NULL;
}

/* ---- replies ---- */

static void headers_add(struct MHD_Response *resp, const char *cache)
{
    MHD_add_response_header(resp, "Content-Security-Policy", WA_CSP);
    MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
    MHD_add_response_header(resp, "Referrer-Policy", "no-referrer");
    MHD_add_response_header(resp, "X-Frame-Options", "DENY");
    MHD_add_response_header(resp, "Cache-Control", cache ? cache : "no-store");
}

enum MHD_Result wa_reply_data(struct wa_req *r, unsigned status, const char *ctype,
                              const char *cache, const void *data, size_t len)
{
    struct MHD_Response *resp;
    enum MHD_Result ret;

    resp = MHD_create_response_from_buffer(len, (void *)data, MHD_RESPMEM_MUST_COPY);
    if (!resp)
        return MHD_NO;
    headers_add(resp, cache);
    if (ctype)
        MHD_add_response_header(resp, "Content-Type", ctype);
    if (r->set_cookie)
        MHD_add_response_header(resp, "Set-Cookie", r->set_cookie);
    if (r->retry_after_s > 0) {
        char secs[24];

        snprintf(secs, sizeof(secs), "%lld", (long long)r->retry_after_s);
        MHD_add_response_header(resp, "Retry-After", secs);
    }
    if (r->allow)
        MHD_add_response_header(resp, "Allow", r->allow);
    ret = MHD_queue_response(r->conn, status, resp);
    MHD_destroy_response(resp);
    r->answered = true;
    return ret;
}

enum MHD_Result wa_reply_stream(struct wa_req *r, const char *ctype, const char *filename,
                                MHD_ContentReaderCallback read, void *cls,
                                MHD_ContentReaderFreeCallback done)
{
    struct MHD_Response *resp;
    enum MHD_Result ret;
    char disp[160];

    resp = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, WA_STREAM_BLOCK, read, cls, done);
    if (!resp) {
        done(cls);
        return MHD_NO;
    }
    headers_add(resp, NULL);
    MHD_add_response_header(resp, "Content-Type", ctype);
    snprintf(disp, sizeof(disp), "attachment; filename=\"%s\"", filename);
    MHD_add_response_header(resp, "Content-Disposition", disp);
    ret = MHD_queue_response(r->conn, 200, resp);
    MHD_destroy_response(resp);
    r->answered = true;
    return ret;
}

json_t *wa_json_text(const char *s)
{
    static const char hex[] = "0123456789abcdef";
    size_t len = strlen(s), bad, o = 0;
    json_t *j;
    char *out;

    if (acl_utf8_valid(s, len, &bad))
        return json_string(s);
    out = malloc(len * 4 + 1);
    if (!out)
        return NULL;
    for (size_t i = 0; i < len;) {
        if (acl_utf8_valid(s + i, len - i, &bad)) {
            memcpy(out + o, s + i, len - i);
            o += len - i;
            break;
        }
        memcpy(out + o, s + i, bad);
        o += bad;
        i += bad;
        out[o++] = '\\';
        out[o++] = 'x';
        out[o++] = hex[(unsigned char)s[i] >> 4];
        out[o++] = hex[(unsigned char)s[i] & 15];
        i++;
    }
    out[o] = '\0';
    j = json_string(out);
    free(out);
    return j;
}

/* JSON only has '<', '>' and '&' inside strings, so escaping them there keeps the document
 * equal while making it inert if something ever sniffs it as HTML. */
static char *json_html_safe(const char *s)
{
    size_t extra = 0;
    const char *p;
    char *out, *o;

    for (p = s; *p; p++)
        if (*p == '<' || *p == '>' || *p == '&')
            extra += 5;
    out = malloc(strlen(s) + extra + 1);
    if (!out)
        return NULL;
    for (p = s, o = out; *p; p++) {
        if (*p == '<' || *p == '>' || *p == '&') {
            o += sprintf(o, "\\u%04x", (unsigned)*p);
        } else {
            *o++ = *p;
        }
    }
    *o = '\0';
    return out;
}

enum MHD_Result wa_reply_redirect(struct wa_req *r, const char *location)
{
    struct MHD_Response *resp;
    enum MHD_Result ret;

    resp = MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
    if (!resp)
        return MHD_NO;
    headers_add(resp, NULL);
    MHD_add_response_header(resp, "Location", location);
    ret = MHD_queue_response(r->conn, MHD_HTTP_SEE_OTHER, resp);
    MHD_destroy_response(resp);
    r->answered = true;
    return ret;
}

enum MHD_Result wa_reply_json(struct wa_req *r, unsigned status, json_t *obj)
{
    char *text, *safe;
    enum MHD_Result ret;

    if (!obj)
        return wa_reply_data(r, 500, "application/json", NULL, "{\"error\":\"out of memory\"}", 25);
    text = json_dumps(obj, JSON_COMPACT);
    json_decref(obj);
    safe = text ? json_html_safe(text) : NULL;
    free(text);
    if (!safe)
        return wa_reply_data(r, 500, "application/json", NULL, "{\"error\":\"out of memory\"}", 25);
    ret = wa_reply_data(r, status, "application/json", NULL, safe, strlen(safe));
    free(safe);
    return ret;
}

enum MHD_Result wa_reply_error(struct wa_req *r, unsigned status, const char *field,
                               const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    json_t *o;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    /* A failure of the request's connection (PostgreSQL down, or frozen past the bound) is
     * the database's, not the request's: 503, to try again later. */
    if (status == 500 && store_unavailable(r->st)) {
        status = 503;
        if (r->retry_after_s <= 0)
            r->retry_after_s = WA_DB_RETRY_AFTER_S;
    }
    /* msg may quote what a client sent, or be cut inside a character. */
    o = json_pack("{s:o}", "error", wa_json_text(msg));
    if (o && field)
        json_object_set_new(o, "field", json_string(field));
    return wa_reply_json(r, status, o);
}

enum MHD_Result wa_reply_unavailable(struct wa_req *r, const char *fmt, ...)
{
    char msg[512];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (r->retry_after_s <= 0)
        r->retry_after_s = WA_DB_RETRY_AFTER_S;
    return wa_reply_json(r, 503, json_pack("{s:o}", "error", wa_json_text(msg)));
}

/* ---- requests ---- */

int wa_body_append(struct wa_req *r, const char *data, size_t n)
{
    if (r->too_big || r->len + n > r->limit) {
        r->too_big = true;
        return PX_OK;
    }
    if (r->len + n + 1 > r->cap) {
        size_t cap = r->cap ? r->cap : 4096;
        char *nb;

        while (cap < r->len + n + 1)
            cap *= 2;
        nb = realloc(r->body, cap);
        if (!nb)
            return PX_ERR;
        r->body = nb;
        r->cap = cap;
    }
    memcpy(r->body + r->len, data, n);
    r->len += n;
    r->body[r->len] = '\0';
    return PX_OK;
}

json_t *wa_body_json(struct wa_req *r)
{
    json_error_t jerr;
    json_t *o;

    if (r->len == 0) {
        wa_reply_error(r, 400, NULL, "a JSON object body is required");
        return NULL;
    }
    o = json_loadb(r->body, r->len, JSON_REJECT_DUPLICATES, &jerr);
    if (!o) {
        wa_reply_error(r, 400, NULL, "invalid JSON at line %d column %d: %s", jerr.line,
                       jerr.column, jerr.text);
        return NULL;
    }
    if (!json_is_object(o)) {
        json_decref(o);
        wa_reply_error(r, 400, NULL, "the body must be a JSON object");
        return NULL;
    }
    return o;
}

const char *wa_query(struct wa_req *r, const char *key)
{
    return MHD_lookup_connection_value(r->conn, MHD_GET_ARGUMENT_KIND, key);
}

int wa_query_int(struct wa_req *r, const char *key, int64_t *out)
{
    const char *v = wa_query(r, key);
    char *end;
    long long n;

    if (!v || !*v)
        return 0;
    errno = 0;
    n = strtoll(v, &end, 10);
    if (errno || *end) {
        wa_reply_error(r, 400, key, "%s: not an integer", key);
        return -1;
    }
    *out = n;
    return 1;
}

int64_t wa_query_limit(struct wa_req *r, int64_t def)
{
    int64_t v = def;
    int rc = wa_query_int(r, "limit", &v);

    if (rc < 0)
        return -1;
    if (v <= 0) {
        wa_reply_error(r, 400, "limit", "limit must be positive");
        return -1;
    }
    return v > WA_ROWS_MAX ? WA_ROWS_MAX : v;
}

int wa_query_node(struct wa_req *r, const char **node)
{
    const char *v = wa_query(r, "node");

    *node = v && *v ? v : NULL;
    if (*node && strlen(*node) > STORE_NODE_NAME_MAX) {
        wa_reply_error(r, 400, "node", "node: longer than a node name (%d bytes)",
                       STORE_NODE_NAME_MAX);
        return -1;
    }
    return 0;
}

bool wa_name_ok(const char *name)
{
    size_t n = 0;

    for (; name[n]; n++) {
        char c = name[n];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-'))
            return false;
    }
    return n > 0 && n < 64 && name[0] != '.';
}
