/* web-admin policy as a whole: export and import as a policy file (GET, PUT /api/policy),
 * "which rule decides this URL" (POST /api/test) and reload (POST /api/reload). An import
 * replaces every rule through wa_change_apply: compiled first, stored only if it compiles.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "web-admin/wa_change.h"
#include "web-admin/wa_policy.h"
#include "web-admin/wa_rules.h"

/* Comments go after '#' on the rule's line: keep them on one line. */
static void one_line(char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f)
            *s = ' ';
}

/* ---- export and import ---- */

enum MHD_Result wa_policy_export(struct wa_req *r)
{
    struct store *st = wa_store(r);
    struct store_rule *rules;
    size_t n, len = 0;
    char err[256], *buf = NULL;
    FILE *f;
    enum MHD_Result ret;

    if (!st)
        return MHD_YES;
    if (store_rules_list(st, &rules, &n, err, sizeof(err)) < 0)
        return wa_reply_error(r, 500, NULL, "%s", err);
    f = open_memstream(&buf, &len);
    if (!f) {
        store_rules_free(rules, n);
        return wa_reply_error(r, 500, NULL, "out of memory");
    }
    fprintf(f, "# proxyd policy: %zu rules, version %lld. First match wins.\n", n,
            (long long)store_policy_version(st));
    for (size_t i = 0; i < n; i++) {
        one_line(rules[i].comment);
        fprintf(f, "%s%s", rules[i].enabled ? "" : "# disabled: ", rules[i].text);
        if (rules[i].comment[0])
            fprintf(f, "  # %s", rules[i].comment);
        fputc('\n', f);
    }
    fclose(f);
    store_rules_free(rules, n);
    ret = wa_reply_data(r, 200, "text/plain; charset=utf-8", NULL, buf, len);
    free(buf);
    return ret;
}

enum MHD_Result wa_policy_import(struct wa_req *r)
{
    struct store *st = wa_store(r);
    struct acl_policy pol = {0};
    struct acl_error aerr;
    struct wa_change ch = {.kind = WA_RULES_REPLACE};
    const char **texts;
    bool ok;

    if (!st)
        return MHD_YES;
    memset(&aerr, 0, sizeof(aerr));
    if (acl_policy_parse(r->body, r->len, &pol, &aerr) < 0) {
        json_t *o = json_object();
        char msg[400];
        if (aerr.line > 0 && strncmp(aerr.msg, "line", 4) != 0)
            snprintf(msg, sizeof(msg), "line %d: %s", aerr.line, aerr.msg);
        else
            snprintf(msg, sizeof(msg), "%s", aerr.msg);
        json_object_set_new(o, "error", json_string(msg));
        json_object_set_new(o, "field", json_string("policy"));
        json_object_set_new(o, "line", json_integer(aerr.line));
        return wa_reply_json(r, 400, o);
    }
    texts = calloc(pol.nrules ? pol.nrules : 1, sizeof(*texts));
    if (!texts) {
        acl_policy_free(&pol);
        return wa_reply_error(r, 500, NULL, "out of memory");
    }
    for (size_t i = 0; i < pol.nrules; i++)
        texts[i] = pol.rules[i].text;
    ch.items = texts;
    ch.nitems = pol.nrules;
    ok = wa_change_apply(r, &ch, 1, NULL, 400, "policy");
    free(texts);
    acl_policy_free(&pol);
    if (!ok)
        return MHD_YES;
    return wa_reply_json(r, 200, json_pack("{s:i}", "rules", (int)ch.nitems));
}

/* ---- test a URL ---- */

struct test_url {
    const char *scheme;
    struct acl_host host; /* canonical, as proxyd's parser makes it */
    uint16_t port;
    char *path;        /* owned, whole: path and query as the proxy would see them */
    size_t target_len; /* the request-target a browser would send: the URL with a scheme */
};

/* http://host[:port]/path, https://host[:port]/..., or a bare host[:port][/path] (http).
 * 0 (free u->path afterwards), or -1 with *why if it cannot be read. */
static int parse_test_url(const char *url, struct test_url *u, const char **why)
{
    const char *s = url, *e, *hs, *he, *p;
    unsigned long port;
    char *end;

    memset(u, 0, sizeof(*u));
    u->scheme = "http";
    u->port = 80;
    if (!strncasecmp(s, "http://", 7)) {
        s += 7;
    } else if (!strncasecmp(s, "https://", 8)) {
        s += 8;
        u->scheme = "https";
        u->port = 443;
    } else if (strstr(s, "://")) {
        return -1;
    }
    e = s + strcspn(s, "/?#");
    for (p = s; p < e; p++) /* userinfo */
        if (*p == '@')
            s = p + 1;
    /* What a browser sends: "http://" + the URL from its host to its fragment, or for https
     * a CONNECT to "host:port" */
    u->target_len = strcmp(u->scheme, "https") ? 7 + strcspn(s, "#") : (size_t)(e - s) + 6;
    if (*s == '[') {
        hs = s + 1;
        he = memchr(hs, ']', (size_t)(e - hs));
        if (!he)
            return -1;
        p = he + 1;
    } else {
        hs = s;
        he = memchr(s, ':', (size_t)(e - s));
        if (!he)
            he = e;
        p = he;
    }
    if (acl_host_parse(hs, (size_t)(he - hs), &u->host, why) != 0)
        return -1;
    if (p < e) {
        if (*p != ':' || p + 1 == e)
            return -1;
        port = strtoul(p + 1, &end, 10);
        if (end != e || port == 0 || port > 65535)
            return -1;
        u->port = (uint16_t)port;
    }
    if (!strcmp(u->scheme, "https")) {
        u->path = strdup(""); /* a CONNECT has no path */
        return u->path ? 0 : -1;
    }
    p = e;
    e = p + strcspn(p, "#");
    /* No cut: a rule may match at the very end of a long path. */
    if (asprintf(&u->path, "%s%.*s", e > p && *p == '/' ? "" : "/", (int)(e - p), p) < 0) {
        u->path = NULL;
        return -1;
    }
    return 0;
}

static int parse_client(const char *text, struct sockaddr_storage *ss)
{
    memset(ss, 0, sizeof(*ss));
    if (inet_pton(AF_INET, text, &((struct sockaddr_in *)ss)->sin_addr) == 1) {
        ss->ss_family = AF_INET;
        return 0;
    }
    if (inet_pton(AF_INET6, text, &((struct sockaddr_in6 *)ss)->sin6_addr) == 1) {
        ss->ss_family = AF_INET6;
        return 0;
    }
    return -1;
}

enum MHD_Result wa_policy_test(struct wa_req *r)
{
    struct acl_live *live = r->ctx->opts->acl;
    json_t *body, *o, *jrule = NULL;
    const char *url, *client, *user, *method;
    struct test_url u = {0}; /* freed on every path, also when url is missing */
    struct sockaddr_storage ss;
    struct acl_request req;
    struct acl_decision dec;
    struct acl_scratch *scratch;
    const struct acl_set *set;
    struct tm tm;
    time_t now = time(NULL);
    uint64_t gen;

    body = wa_body_json(r);
    if (!body)
        return MHD_YES;
    url = json_string_value(json_object_get(body, "url"));
    client = json_string_value(json_object_get(body, "client"));
    user = json_string_value(json_object_get(body, "user"));
    method = json_string_value(json_object_get(body, "method"));
    const char *why = NULL;
    if (!url || parse_test_url(url, &u, &why) < 0) {
        json_decref(body);
        free(u.path);
        if (why) /* proxyd answers such a request 400 too */
            return wa_reply_error(r, 400, "url", "bad host: %s", why);
        return wa_reply_error(r, 400, "url", "expected http://host[:port]/path or https://host");
    }
    if (!client || !*client)
        client = r->client;
    if (parse_client(client, &ss) < 0) {
        enum MHD_Result ret = wa_reply_error(r, 400, "client", "not an IP address: %.100s", client);
        json_decref(body);
        free(u.path);
        return ret;
    }
    if (!method || !*method)
        method = strcmp(u.scheme, "https") ? "GET" : "CONNECT";
    /* "METHOD target HTTP/1.1": longer than the proxy's limit, it never gets to the rules. */
    size_t line_len = strlen(method) + 1 + u.target_len + 9,
           line_max = r->ctx->opts->max_request_line;
    if (line_len > line_max) {
        json_decref(body);
        free(u.path);
        return wa_reply_error(r, 414, "url",
                              "the request line would be %zu bytes; the proxy answers longer "
                              "than %zu (max-request-line) with 414 and applies no rule",
                              line_len, line_max);
    }
    if (!live) {
        json_decref(body);
        free(u.path);
        return wa_reply_error(r, 503, NULL, "no rule set in force");
    }
    scratch = acl_scratch_new();
    if (!scratch) {
        json_decref(body);
        free(u.path);
        return wa_reply_error(r, 500, NULL, "out of memory");
    }
    localtime_r(&now, &tm);
    memset(&req, 0, sizeof(req));
    req.scheme = u.scheme;
    req.host = &u.host;
    req.port = u.port;
    req.path = u.path;
    req.path_len = strlen(u.path);
    req.method = method;
    req.method_len = strlen(method);
    req.client = (const struct sockaddr *)&ss;
    req.user = user && *user ? user : NULL;
    req.clock.wday = tm.tm_wday;
    req.clock.minute = tm.tm_hour * 60 + tm.tm_min;
    req.clock.now = (int64_t)now;
    memset(&dec, 0, sizeof(dec));
    set = acl_live_acquire(live, &gen);
    acl_eval(set, &req, scratch, &dec);
    /* A tunnel's bytes are decrypted or spliced: what an allowed CONNECT would get. */
    struct acl_inspect ins = {0};
    bool tunnel = !strcmp(u.scheme, "https");
    if (tunnel)
        acl_eval_inspect(set, &req, scratch, &ins);
    acl_live_release(live, set);
    acl_scratch_free(scratch);

    if (dec.rule_id > 0) {
        struct store *st = wa_store(r);
        if (!st) {
            json_decref(body);
            free(u.path);
            return MHD_YES;
        }
        jrule = wa_rules_json_of(st, dec.rule_id);
    }
    /* The reason quotes rule text and may be cut inside a character; the path too. */
    o = json_pack("{s:s,s:i,s:o,s:o,s:i,s:i,s:b,s:I,s:{s:s,s:s,s:i,s:o,s:s,s:s,s:s?}}", "action",
                  acl_action_str(dec.action), "rule_id", dec.rule_id, "reason",
                  wa_json_text(dec.reason), "rule", jrule ? jrule : json_null(),
                  "undecided_rule_id", dec.undecided_rule_id, "report_rule_id", dec.report_rule_id,
                  "dest_pending", dec.dest_pending, "generation", (json_int_t)gen, "request",
                  "scheme", u.scheme, "host", u.host.text, "port", (int)u.port, "path",
                  wa_json_text(u.path), "method", method, "client", client, "user", req.user);
    json_object_set_new(o, "inspect",
                        tunnel ? json_pack("{s:b,s:i,s:b,s:o}", "inspect", ins.inspect, "rule_id",
                                           ins.rule_id, "no_inspect", ins.no_inspect, "reason",
                                           wa_json_text(ins.reason))
                               : json_null());
    json_decref(body);
    free(u.path);
    return wa_reply_json(r, 200, o);
}

/* ---- reload ---- */

enum MHD_Result wa_policy_reload(struct wa_req *r)
{
    struct acl_live *live = r->ctx->opts->acl;
    char err[512];

    switch (wa_change_reload(r->ctx, err, sizeof(err))) {
    case WA_RELOAD_DONE:
        break;
    case WA_RELOAD_REFUSED:
        return wa_reply_error(r, 409, NULL, "%s", err);
    case WA_RELOAD_DB_DOWN:
        return wa_reply_unavailable(r, "%s", err);
    default:
        return wa_reply_error(r, 500, NULL, "%s", err);
    }
    return wa_reply_json(
        r, 200,
        json_pack("{s:I}", "generation", (json_int_t)(live ? acl_live_generation(live) : 0)));
}
