/* web-admin access log: the search behind the live log page (GET /api/logs) and the
 * dashboard's top lists, time series and per-domain visitors (GET /api/top, GET /api/series,
 * GET /api/visitors).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "acl/acl_rule.h"
#include "base/clock.h"
#include "web-admin/wa_log.h"

#define DAY_MS (24LL * 3600 * 1000)
#define WA_SEARCH_MAX 1024 /* bytes of a log search text */

/* A logged host as people read it: an internationalised name in Unicode (the row keeps the
 * punycode the browser sent in "host"). */
static json_t *host_display(const char *host)
{
    char u[1024];
    return wa_json_text(acl_host_unicode(host, u, sizeof(u)) == 0 ? u : host);
}

/* The client names of the policy (`name ADDRESS LABEL` lines), read once per answer. */
struct client_names {
    struct client_name {
        uint8_t addr[16];
        char label[64];
    } * v;
    size_t n;
};

/* Without names (the store failed, or none): the rows go out with addresses only. */
static void names_load(struct store *st, struct client_names *cn)
{
    struct store_rule *rules;
    size_t n;
    char err[256];
    memset(cn, 0, sizeof(*cn));
    if (store_rules_starting(st, "name", &rules, &n, err, sizeof(err)) < 0)
        return;
    for (size_t i = 0; i < n; i++) {
        struct client_name c;
        if (!acl_client_name(rules[i].text, c.addr, c.label, sizeof(c.label)))
            continue;
        struct client_name *v = realloc(cn->v, (cn->n + 1) * sizeof(*v));
        if (!v)
            break;
        cn->v = v;
        cn->v[cn->n++] = c;
    }
    store_rules_free(rules, n);
}

/* The name of a logged client address, as JSON (null: none). The first line naming it wins. */
static json_t *name_of(const struct client_names *cn, const char *client)
{
    struct acl_host h;
    const char *why;
    if (cn->n == 0 || acl_host_parse(client, strlen(client), &h, &why) != 0 || !acl_host_is_ip(&h))
        return json_null();
    for (size_t i = 0; i < cn->n; i++)
        if (memcmp(cn->v[i].addr, h.addr, 16) == 0)
            return json_string(cn->v[i].label);
    return json_null();
}

/* The texts of the rules one page of rows names, each read once (a page names few rules;
 * the policy may hold 100,000). Room for one per row: no page names more. */
struct rule_texts {
    struct rule_text {
        int id;
        char *text; /* owned; NULL: the rule is gone */
    } * at;
    size_t n;
};

/* The rule's text as it is now, for the row that names it: NULL once the rule is gone. */
static const char *rule_text_of(struct store *st, struct rule_texts *rt, int id)
{
    struct store_rule rule;
    char err[256];

    if (id <= 0)
        return NULL;
    for (size_t i = 0; i < rt->n; i++)
        if (rt->at[i].id == id)
            return rt->at[i].text;
    rt->at[rt->n].id = id;
    rt->at[rt->n].text = NULL;
    if (store_rule_get(st, id, &rule, err, sizeof(err)) == 0) {
        rt->at[rt->n].text = strdup(rule.text ? rule.text : "");
        free(rule.text);
        free(rule.comment);
    }
    return rt->at[rt->n++].text;
}

static void rule_texts_free(struct rule_texts *rt)
{
    for (size_t i = 0; i < rt->n; i++)
        free(rt->at[i].text);
    free(rt->at);
}

static json_t *log_row_json(const struct store_log_row *row, struct store *st,
                            struct rule_texts *rt, const struct client_names *cn)
{
    const char *rule_text;
    const struct store_access *a = &row->a;
    json_t *o = json_object();

    if (!o)
        return NULL;
    json_object_set_new(o, "id", json_integer(row->id));
    json_object_set_new(o, "time_ms", json_integer(a->time_ms));
    json_object_set_new(o, "client", json_string(a->client));
    json_object_set_new(o, "client_name", name_of(cn, a->client));
    json_object_set_new(o, "user", json_string(a->user));
    json_object_set_new(o, "method", json_string(a->method));
    json_object_set_new(o, "scheme", json_string(a->scheme));
    json_object_set_new(o, "host", json_string(a->host));
    json_object_set_new(o, "host_display", host_display(a->host));
    json_object_set_new(o, "port", json_integer(a->port));
    json_object_set_new(o, "path", json_string(a->path));
    json_object_set_new(o, "status", json_integer(a->status));
    json_object_set_new(o, "bytes_up", json_integer((json_int_t)a->bytes_up));
    json_object_set_new(o, "bytes_down", json_integer((json_int_t)a->bytes_down));
    json_object_set_new(o, "duration_ms", json_integer(a->duration_ms));
    json_object_set_new(o, "decision",
                        json_string(a->decision < STORE_DECISION_COUNT
                                        ? store_decision_str((enum store_decision)a->decision)
                                        : "?"));
    json_object_set_new(o, "rule_id", json_integer(a->rule_id));
    rule_text = rule_text_of(st, rt, a->rule_id);
    json_object_set_new(o, "rule_text", rule_text ? wa_json_text(rule_text) : json_null());
    /* For a denial: the decision's reason (the rule and what matched, or why no rule was
     * needed); otherwise what went wrong, if anything. */
    json_object_set_new(o, "error", json_string(a->error));
    json_object_set_new(o, "policy_version", json_integer(a->policy_version));
    json_object_set_new(o, "sni", json_string(a->sni));
    json_object_set_new(o, "dest", json_string(a->dest));
    json_object_set_new(o, "node", json_string(row->node));
    return o;
}

static const char *nonempty(const char *s)
{
    return s && *s ? s : NULL;
}

/* Search text no longer than a logged host or path can match (the log keeps paths to 1 KB):
 * longer would only reach SQLite's LIKE pattern limit (50,000 bytes) and fail. NULL when
 * absent or empty; sets *bad after answering 400 naming key. */
static const char *query_search(struct wa_req *r, const char *key, bool *bad)
{
    const char *v = nonempty(wa_query(r, key));

    if (v && strlen(v) > WA_SEARCH_MAX) {
        wa_reply_error(r, 400, key, "%s: search text longer than %d bytes", key, WA_SEARCH_MAX);
        *bad = true;
    }
    return v;
}

/* The client filter of the log into f: an address (exact, as logged), a network
 * ("10.0.0.0/8", "fd00::/8"), or the start of the address as logged ("10.0.0.", "10.0.0.*").
 * The network and the start are kept in f itself, so a copy of f (the export's) keeps them.
 * -1 after answering 400. */
static int client_filter(struct wa_req *r, const char *v, struct store_log_filter *f)
{
    size_t len = strlen(v);
    struct acl_cidr cidr;
    struct acl_host h;
    const char *why;

    if (strchr(v, '/')) {
        if (acl_cidr_parse(v, len, &cidr) != 0) {
            wa_reply_error(r, 400, "client",
                           "client: '%.64s' is not a network (ADDRESS/BITS, host bits zero)", v);
            return -1;
        }
        f->client_net_set = true;
        memcpy(f->client_net, cidr.addr, sizeof(f->client_net));
        f->client_net_bits = cidr.prefix;
        return 0;
    }
    if (acl_host_parse(v, len, &h, &why) == 0 && acl_host_is_ip(&h)) {
        if (strcmp(h.text, v) == 0) {
            f->client = v; /* as logged: the client column's index answers */
        } else {
            /* Another spelling of the address (::ffff:10.0.0.1, FD00::1, [::1]): the rows
             * hold the canonical form, which the one-address network matches. */
            f->client_net_set = true;
            memcpy(f->client_net, h.addr, sizeof(f->client_net));
            f->client_net_bits = 128;
        }
        return 0;
    }
    if (len && v[len - 1] == '*')
        len--;
    if (len == 0 || len >= sizeof(f->client_prefix) ||
        strspn(v, "0123456789abcdefABCDEF.:") < len) {
        wa_reply_error(r, 400, "client",
                       "client: '%.64s' is not an address, a network or the start of an address",
                       v);
        return -1;
    }
    for (size_t i = 0; i < len; i++) /* addresses are logged in lower case */
        f->client_prefix[i] = (char)(v[i] >= 'A' && v[i] <= 'F' ? v[i] + 32 : v[i]);
    f->client_prefix[len] = '\0';
    return 0;
}

int wa_log_filter(struct wa_req *r, struct store_log_filter *f)
{
    const char *dec;
    int64_t v = 0;
    bool bad = false;

    memset(f, 0, sizeof(*f));
    f->decision = -1;
    if (wa_query_int(r, "since", &f->since_ms) < 0 || wa_query_int(r, "until", &f->until_ms) < 0)
        return -1;
    if (wa_query_int(r, "status", &v) < 0)
        return -1;
    if (v < 0 || v > 999) {
        wa_reply_error(r, 400, "status", "status must be an HTTP status code");
        return -1;
    }
    f->status = (int)v;
    v = 0;
    if (wa_query_int(r, "rule", &v) < 0)
        return -1;
    if (v < 0 || v > INT32_MAX) {
        wa_reply_error(r, 400, "rule", "rule must be a rule id");
        return -1;
    }
    f->rule_id = (int)v;
    const char *client = query_search(r, "client", &bad);
    if (!bad && client && client_filter(r, client, f) < 0)
        return -1;
    const char *user = bad ? NULL : query_search(r, "user", &bad);
    if (!bad && user && strlen(user) >= sizeof(f->user)) {
        wa_reply_error(r, 400, "user", "user: longer than a proxy user name");
        return -1;
    }
    if (!bad && user)
        memcpy(f->user, user, strlen(user) + 1);
    const char *node;
    if (!bad && wa_query_node(r, &node) < 0)
        return -1;
    if (!bad && node)
        memcpy(f->node, node, strlen(node) + 1);
    if (!bad)
        f->host_like = query_search(r, "host", &bad);
    if (!bad)
        f->text_like = query_search(r, "q", &bad);
    if (bad)
        return -1;
    dec = nonempty(wa_query(r, "decision"));
    if (dec) {
        for (int d = 0; d < STORE_DECISION_COUNT; d++)
            if (!strcmp(dec, store_decision_str((enum store_decision)d)))
                f->decision = d;
        if (f->decision < 0) {
            wa_reply_error(r, 400, "decision", "decision is allow, deny, auth or report");
            return -1;
        }
    }
    return 0;
}

enum MHD_Result wa_log_search(struct wa_req *r)
{
    struct store_log_filter f;
    struct store_log_row *rows;
    struct rule_texts rt = {NULL, 0};
    struct store *st;
    int64_t limit;
    size_t n;
    char err[256];
    json_t *arr, *o;

    if (wa_log_filter(r, &f) < 0 || wa_query_int(r, "before", &f.before_id) < 0 ||
        wa_query_int(r, "after", &f.after_id) < 0)
        return MHD_YES;
    limit = wa_query_limit(r, 100);
    if (limit < 0)
        return MHD_YES;
    f.limit = (size_t)limit;
    st = wa_store(r);
    if (!st)
        return MHD_YES;
    if (store_log_search(st, &f, &rows, &n, err, sizeof(err)) < 0)
        return wa_reply_error(r, 500, NULL, "%s", err);
    struct client_names cn;
    names_load(st, &cn);
    rt.at = calloc(n ? n : 1, sizeof(*rt.at));
    if (!rt.at) {
        free(rows);
        free(cn.v);
        return wa_reply_error(r, 500, NULL, "out of memory");
    }
    arr = json_array();
    int64_t oldest = 0;
    for (size_t i = 0; arr && i < n; i++) {
        json_array_append_new(arr, log_row_json(&rows[i], st, &rt, &cn));
        if (oldest == 0 || rows[i].id < oldest)
            oldest = rows[i].id;
    }
    free(rows);
    rule_texts_free(&rt);
    free(cn.v);
    o = json_pack("{s:o}", "rows", arr);
    if (o)
        json_object_set_new(o, "next_before",
                            n == f.limit && oldest > 0 ? json_integer(oldest) : json_null());
    return wa_reply_json(r, 200, o);
}

/* since/until query parameters: default the last 24 h. -1 after answering 400. */
static int query_range(struct wa_req *r, int64_t *since, int64_t *until)
{
    *until = clock_wall_ms();
    *since = *until - DAY_MS;
    if (wa_query_int(r, "since", since) < 0 || wa_query_int(r, "until", until) < 0)
        return -1;
    if (*until < *since) {
        wa_reply_error(r, 400, "until", "until is before since");
        return -1;
    }
    return 0;
}

enum MHD_Result wa_log_top(struct wa_req *r)
{
    static const char *const kinds[STORE_TOP_COUNT] = {"hosts", "clients", "blocked", "reported",
                                                       "blocked_clients"};
    const char *kind = nonempty(wa_query(r, "kind"));
    struct store_top_row *rows;
    struct store *st;
    const char *node;
    int64_t since, until, limit;
    int k = -1;
    size_t n;
    char err[256];
    json_t *arr;

    if (!kind)
        kind = "hosts";
    for (int i = 0; i < STORE_TOP_COUNT; i++)
        if (!strcmp(kind, kinds[i]))
            k = i;
    if (k < 0)
        return wa_reply_error(r, 400, "kind",
                              "kind is hosts, clients, blocked, reported or blocked_clients");
    if (query_range(r, &since, &until) < 0 || wa_query_node(r, &node) < 0)
        return MHD_YES;
    limit = wa_query_limit(r, 10);
    if (limit < 0)
        return MHD_YES;
    st = wa_store(r);
    if (!st)
        return MHD_YES;
    if (store_top(st, (enum store_top_kind)k, since, until, node, (size_t)limit, &rows, &n, err,
                  sizeof(err)) < 0)
        return wa_reply_error(r, 500, NULL, "%s", err);
    struct client_names cn = {0};
    bool by_client = k == STORE_TOP_CLIENTS || k == STORE_TOP_BLOCKED_CLIENTS;
    if (by_client)
        names_load(st, &cn);
    arr = json_array();
    for (size_t i = 0; arr && i < n; i++) {
        json_t *row =
            json_pack("{s:s,s:o,s:I,s:I}", "key", rows[i].key, "key_display",
                      by_client ? json_string(rows[i].key) : host_display(rows[i].key), "requests",
                      (json_int_t)rows[i].requests, "bytes", (json_int_t)rows[i].bytes);
        if (row && by_client)
            json_object_set_new(row, "key_name", name_of(&cn, rows[i].key));
        json_array_append_new(arr, row);
    }
    free(cn.v);
    free(rows);
    return wa_reply_json(r, 200,
                         json_pack("{s:s,s:o,s:o}", "kind", kinds[k], "node",
                                   node ? json_string(node) : json_null(), "rows", arr));
}

enum MHD_Result wa_log_series(struct wa_req *r)
{
    struct store_series_point *pts;
    struct store *st;
    const char *node;
    int64_t since, until, bucket = 3600 * 1000;
    size_t n;
    char err[256];
    json_t *arr;

    if (query_range(r, &since, &until) < 0 || wa_query_int(r, "bucket", &bucket) < 0 ||
        wa_query_node(r, &node) < 0)
        return MHD_YES;
    if (bucket < 1000)
        return wa_reply_error(r, 400, "bucket", "bucket must be at least 1000 ms");
    if ((until - since) / bucket > 10000)
        return wa_reply_error(r, 400, "bucket", "more than 10000 buckets; use a larger bucket");
    st = wa_store(r);
    if (!st)
        return MHD_YES;
    if (store_series(st, since, until, node, bucket, &pts, &n, err, sizeof(err)) < 0)
        return wa_reply_error(r, 500, NULL, "%s", err);
    arr = json_array();
    for (size_t i = 0; arr && i < n; i++)
        json_array_append_new(arr, json_pack("{s:I,s:I,s:I,s:I}", "t", (json_int_t)pts[i].bucket_ms,
                                             "requests", (json_int_t)pts[i].requests, "blocked",
                                             (json_int_t)pts[i].blocked, "bytes",
                                             (json_int_t)pts[i].bytes));
    free(pts);
    return wa_reply_json(r, 200,
                         json_pack("{s:o,s:I,s:o}", "points", arr, "bucket", (json_int_t)bucket,
                                   "node", node ? json_string(node) : json_null()));
}

/* One grouping of GET /api/visitors as JSON rows; NULL after answering 500. */
static json_t *visitors_json(struct wa_req *r, struct store *st, const char *host, const char *node,
                             enum store_visitors_by by, int64_t since, int64_t until, size_t limit,
                             const struct client_names *cn)
{
    struct store_visitor *v;
    size_t n;
    char err[256];
    json_t *arr;

    if (store_host_visitors(st, host, node, by, since, until, limit, &v, &n, err, sizeof(err)) <
        0) {
        wa_reply_error(r, 500, NULL, "%s", err);
        return NULL;
    }
    arr = json_array();
    for (size_t i = 0; arr && i < n; i++) {
        json_t *row = json_pack(
            "{s:s,s:I,s:I,s:I,s:I}", by == STORE_VISITORS_CLIENT ? "client" : "user", v[i].key,
            "requests", (json_int_t)v[i].requests, "blocked", (json_int_t)v[i].blocked, "first_ms",
            (json_int_t)v[i].first_ms, "last_ms", (json_int_t)v[i].last_ms);
        if (row && by == STORE_VISITORS_CLIENT)
            json_object_set_new(row, "client_name", name_of(cn, v[i].key));
        json_array_append_new(arr, row);
    }
    free(v);
    return arr;
}

enum MHD_Result wa_log_visitors(struct wa_req *r)
{
    const char *in = nonempty(wa_query(r, "host")), *why;
    struct acl_host h;
    struct store *st;
    const char *node;
    int64_t since, until, limit;
    json_t *clients, *users;

    if (!in)
        return wa_reply_error(r, 400, "host", "host is required");
    /* The log keeps hosts in acl_host_parse's form: ask in the same one. */
    if (strlen(in) > 255 || acl_host_parse(in, strlen(in), &h, &why) != 0)
        return wa_reply_error(r, 400, "host", "not a host name: %.200s", in);
    if (query_range(r, &since, &until) < 0 || wa_query_node(r, &node) < 0)
        return MHD_YES;
    limit = wa_query_limit(r, 20);
    if (limit < 0)
        return MHD_YES;
    st = wa_store(r);
    if (!st)
        return MHD_YES;
    struct client_names cn;
    names_load(st, &cn);
    clients =
        visitors_json(r, st, h.text, node, STORE_VISITORS_CLIENT, since, until, (size_t)limit, &cn);
    free(cn.v);
    if (!clients)
        return MHD_YES;
    users =
        visitors_json(r, st, h.text, node, STORE_VISITORS_USER, since, until, (size_t)limit, NULL);
    if (!users) {
        json_decref(clients);
        return MHD_YES;
    }
    return wa_reply_json(r, 200,
                         json_pack("{s:s,s:o,s:I,s:I,s:o,s:o,s:o}", "host", h.text, "host_display",
                                   host_display(h.text), "since_ms", (json_int_t)since, "until_ms",
                                   (json_int_t)until, "node",
                                   node ? json_string(node) : json_null(), "clients", clients,
                                   "users", users));
}
