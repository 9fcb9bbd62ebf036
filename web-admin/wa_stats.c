/* web-admin stats and health: GET /api/stats (proxyd's counters through its hook, the last
 * 24 h of the access log, login counters) and GET /api/health.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/clock.h"
#include "web-admin/wa_auth.h"
#include "web-admin/wa_stats.h"

#define DAY_MS (24LL * 3600 * 1000)

static json_t *proxy_stats_json(const struct wa_proxy_stats *p)
{
    const struct store_log_counters *l = &p->log;
    json_t *refused = json_object();
    for (unsigned i = 0; refused && i < p->nrefused && i < WA_MAX_COUNTERS; i++)
        if (p->refused[i].name)
            json_object_set_new(refused, p->refused[i].name,
                                json_integer((json_int_t)p->refused[i].value));

    return json_pack(
        "{s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:i,s:o,"
        "s:{s:I,s:I,s:I,s:I,s:I,s:b,s:s}}",
        "started_ms", (json_int_t)p->started_ms, "connections_active",
        (json_int_t)p->connections_active, "connections_total", (json_int_t)p->connections_total,
        "requests_total", (json_int_t)p->requests_total, "requests_denied",
        (json_int_t)p->requests_denied, "tunnels_active", (json_int_t)p->tunnels_active, "bytes_up",
        (json_int_t)p->bytes_up, "bytes_down", (json_int_t)p->bytes_down, "errors_parse",
        (json_int_t)p->errors_parse, "errors_upstream", (json_int_t)p->errors_upstream,
        "dns_cache_entries", (json_int_t)p->dns_cache_entries, "acl_generation",
        (json_int_t)p->acl_generation, "workers", (int)p->workers, "connections_refused",
        refused ? refused : json_null(), "log", "queued", (json_int_t)l->queued, "written",
        (json_int_t)l->written, "dropped_queue_full", (json_int_t)l->dropped_queue_full,
        "dropped_db_error", (json_int_t)l->dropped_db_error, "pending", (json_int_t)l->pending,
        "db_ok", l->db_ok, "last_error", l->last_error);
}

enum MHD_Result wa_stats_get(struct wa_req *r)
{
    struct wa_proxy_stats ps;
    struct store_totals t;
    struct store *st;
    int64_t now = clock_wall_ms();
    uint64_t failed, throttled;
    char err[256];
    json_t *proxy;

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
    if (store_totals(st, now - DAY_MS, now, &t, err, sizeof(err)) < 0) {
        json_decref(proxy);
        return wa_reply_error(r, 500, NULL, "%s", err);
    }
    wa_auth_counters(r->ctx->auth, &failed, &throttled);
    return wa_reply_json(
        r, 200,
        json_pack("{s:o,s:{s:I,s:I,s:I,s:I,s:I,s:I},s:I,s:I,s:{s:I,s:I,s:I}}", "proxy", proxy,
                  "totals", "requests", (json_int_t)t.requests, "blocked", (json_int_t)t.blocked,
                  "bytes_up", (json_int_t)t.bytes_up, "bytes_down", (json_int_t)t.bytes_down,
                  "clients", (json_int_t)t.clients, "hosts", (json_int_t)t.hosts, "since_ms",
                  (json_int_t)(now - DAY_MS), "until_ms", (json_int_t)now, "auth",
                  "password_checks", (json_int_t)store_account_hash_runs(), "admin_logins_failed",
                  (json_int_t)failed, "admin_logins_throttled", (json_int_t)throttled));
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
