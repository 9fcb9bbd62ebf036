/* web-admin stats and health: GET /api/stats (proxyd's counters through its hook with what
 * each one counts, the totals of a range of the access log (the last 24 h unless asked),
 * login counters) and GET /api/health.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/clock.h"
#include "web-admin/wa_auth.h"
#include "web-admin/wa_stats.h"

#define DAY_MS (24LL * 3600 * 1000)

static json_t *counter_set_json(const struct wa_counter_set *set)
{
    json_t *o = json_object();

    for (unsigned i = 0; o && i < set->n && i < WA_MAX_COUNTERS; i++) {
        const struct wa_counter *c = &set->c[i];
        char key[256];
        size_t len = 0;

        if (!c->label[0])
            continue;
        for (unsigned k = 0; k < WA_MAX_LABELS && c->label[k] && len < sizeof(key); k++)
            len +=
                (size_t)snprintf(key + len, sizeof(key) - len, "%s%s", k ? "/" : "", c->label[k]);
        json_object_set_new(o, key, json_integer((json_int_t)c->value));
    }
    return o;
}

static json_t *histogram_json(const struct wa_histogram *h)
{
    uint64_t count = 0;

    for (unsigned b = 0; b < STATS_NBUCKETS; b++)
        count += h->buckets[b];
    return json_pack("{s:I,s:I}", "count", (json_int_t)count, "sum_ns", (json_int_t)h->sum_ns);
}

/* The "proxy" object of GET /api/stats: every entry of base/stats.h's tables under its own
 * name, the access log's counters under "log". */
static json_t *proxy_stats_json(const struct wa_proxy_stats *p)
{
    const struct store_log_counters *l = &p->log;
    json_t *o = json_object(), *log = json_object();

    if (!o || !log) {
        json_decref(o);
        json_decref(log);
        return NULL;
    }
    json_object_set_new(o, "started_ms", json_integer((json_int_t)p->started_ms));
#define X(name, kind, what) json_object_set_new(o, #name, json_integer((json_int_t)p->name));
    STATS_WORKER_TABLE
    STATS_PROCESS_TABLE
#undef X
#define X(name, kind, labels, what) json_object_set_new(o, #name, counter_set_json(&p->name));
    STATS_GROUP_TABLE
#undef X
#define X(name, what) json_object_set_new(o, #name, histogram_json(&p->name));
    STATS_HISTOGRAM_TABLE
#undef X
#define X(name, kind, what) json_object_set_new(log, #name, json_integer((json_int_t)l->name));
    STATS_LOG_TABLE
#undef X
    json_object_set_new(log, "db_ok", json_boolean(l->db_ok));
    json_object_set_new(log, "last_error", json_string(l->last_error));
    json_object_set_new(o, "log", log);
    return o;
}

/* What each counter of the "proxy" object counts, from the tables that make them: the
 * dashboard's Diagnostics panel shows these words beside the numbers. */
static json_t *proxy_help_json(void)
{
    json_t *o = json_object(), *log = json_object();

    if (!o || !log) {
        json_decref(o);
        json_decref(log);
        return json_null();
    }
    json_object_set_new(o, "started_ms", json_string("when proxyd started"));
#define X(name, kind, what) json_object_set_new(o, #name, json_string(what));
    STATS_WORKER_TABLE
    STATS_PROCESS_TABLE
#undef X
#define X(name, kind, labels, what) json_object_set_new(o, #name, json_string(what));
    STATS_GROUP_TABLE
#undef X
#define X(name, what) json_object_set_new(o, #name, json_string(what));
    STATS_HISTOGRAM_TABLE
#undef X
#define X(name, kind, what) json_object_set_new(log, #name, json_string(what));
    STATS_LOG_TABLE
#undef X
    json_object_set_new(log, "db_ok", json_string("the database accepts the log's batches"));
    json_object_set_new(log, "last_error", json_string("the database's last error"));
    json_object_set_new(o, "log", log);
    return o;
}

enum MHD_Result wa_stats_get(struct wa_req *r)
{
    struct wa_proxy_stats ps;
    struct store_totals t;
    struct store *st;
    const char *node;
    int64_t until = clock_wall_ms(), since = until - DAY_MS;
    uint64_t failed, throttled;
    char err[256];
    json_t *proxy;

    if (wa_query_int(r, "since", &since) < 0 || wa_query_int(r, "until", &until) < 0 ||
        wa_query_node(r, &node) < 0)
        return MHD_YES;
    if (until < since)
        return wa_reply_error(r, 400, "until", "until is before since");
    memset(&ps, 0, sizeof(ps));
    if (r->ctx->opts->proxy_stats) {
        r->ctx->opts->proxy_stats(r->ctx->opts->hook_arg, &ps);
        ps.log.last_error[sizeof(ps.log.last_error) - 1] = '\0';
        proxy = proxy_stats_json(&ps);
    } else {
        proxy = json_null();
    }
    st = wa_store(r);
    if (!st) {
        json_decref(proxy);
        return MHD_YES;
    }
    memset(&t, 0, sizeof(t));
    if (store_totals(st, since, until, node, &t, err, sizeof(err)) < 0) {
        json_decref(proxy);
        return wa_reply_error(r, 500, NULL, "%s", err);
    }
    wa_auth_counters(r->ctx->auth, &failed, &throttled);
    json_t *out = json_pack(
        "{s:o,s:o,s:{s:I,s:I,s:I,s:I,s:I,s:I},s:I,s:I,s:o,s:{s:I,s:I,s:I}}", "proxy", proxy,
        "proxy_help", r->ctx->opts->proxy_stats ? proxy_help_json() : json_null(), "totals",
        "requests", (json_int_t)t.requests, "blocked", (json_int_t)t.blocked, "bytes_up",
        (json_int_t)t.bytes_up, "bytes_down", (json_int_t)t.bytes_down, "clients",
        (json_int_t)t.clients, "hosts", (json_int_t)t.hosts, "since_ms", (json_int_t)since,
        "until_ms", (json_int_t)until, "node", node ? json_string(node) : json_null(), "auth",
        "password_checks", (json_int_t)store_account_hash_runs(), "admin_logins_failed",
        (json_int_t)failed, "admin_logins_throttled", (json_int_t)throttled);
    /* "proxy" holds this node's counters only, whichever node's totals are asked for. */
    if (out)
        json_object_set_new(out, "answering_node",
                            r->ctx->opts->node_name ? json_string(r->ctx->opts->node_name)
                                                    : json_null());
    return wa_reply_json(r, 200, out);
}

enum MHD_Result wa_stats_health(struct wa_req *r)
{
    char err[256];
    struct store *st = store_pool_get(r->ctx->pool, err, sizeof(err));
    bool db_ok = st && store_schema_version(st) > 0;

    store_pool_put(r->ctx->pool, st);
    return wa_reply_json(
        r, 200, json_pack("{s:b,s:s,s:b}", "ok", 1, "version", PX_VERSION, "db_ok", db_ok));
}
