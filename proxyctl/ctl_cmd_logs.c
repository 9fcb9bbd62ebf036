/* proxyctl verbs that read what the proxy did: logs (with --follow), top, stats, audit.
 * --follow polls GET /api/logs?after=<last id> once a second until SIGINT/SIGTERM. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/clock.h"
#include "proxyctl/ctl_cmd.h"
#include "proxyctl/ctl_http.h"
#include "proxyctl/ctl_table.h"

#define FOLLOW_POLL_MS 1000
#define FOLLOW_BATCH 1000

/* ---- logs ---- */

static const struct ctl_column log_cols[] = {
    {"id", true, false}, /* what `proxyctl why` takes */
    {"time", false, false},   {"client", false, false}, {"user", false, false},
    {"method", false, false}, {"status", true, false},  {"decision", false, false},
    {"bytes", true, false},   {"ms", true, false},      {"url", false, true},
};
#define LOG_NCOLS (sizeof(log_cols) / sizeof(log_cols[0]))

static int by_id(const void *a, const void *b)
{
    long long x = ctl_json_num(*(json_t *const *)a, "id");
    long long y = ctl_json_num(*(json_t *const *)b, "id");
    return (x > y) - (x < y);
}

/* Adds rows to the table oldest first; returns the largest id seen (or last_id). */
static long long add_log_rows(struct ctl_table *t, const json_t *rows, long long last_id,
                              bool json_lines)
{
    size_t n = json_array_size(rows);
    json_t **sorted = malloc((n ? n : 1) * sizeof(*sorted));
    if (!sorted)
        return last_id;
    for (size_t i = 0; i < n; i++)
        sorted[i] = json_array_get(rows, i);
    qsort(sorted, n, sizeof(*sorted), by_id);
    for (size_t i = 0; i < n; i++) {
        const json_t *r = sorted[i];
        long long id = ctl_json_num(r, "id");
        if (id <= last_id)
            continue;
        last_id = id;
        if (json_lines) {
            char *s = json_dumps(r, JSON_COMPACT | JSON_PRESERVE_ORDER);
            if (s)
                puts(s);
            free(s);
            continue;
        }
        char idstr[24], time[32], status[16], decision[48], bytes[32], ms[24], url[2048];
        snprintf(idstr, sizeof(idstr), "%lld", id);
        ctl_time_str(ctl_json_num(r, "time_ms"), time, sizeof(time));
        long long st = ctl_json_num(r, "status");
        snprintf(status, sizeof(status), st ? "%lld" : "-", st);
        long long rule = ctl_json_num(r, "rule_id");
        const char *err = ctl_json_str(r, "error");
        if (rule > 0)
            snprintf(decision, sizeof(decision), "%s #%lld", ctl_json_str(r, "decision"), rule);
        else
            snprintf(decision, sizeof(decision), "%s", ctl_json_str(r, "decision"));
        ctl_bytes_str((double)ctl_json_num(r, "bytes_down"), bytes, sizeof(bytes));
        snprintf(ms, sizeof(ms), "%lld", ctl_json_num(r, "duration_ms"));
        const char *method = ctl_json_str(r, "method");
        const char *scheme = ctl_json_str(r, "scheme");
        long long port = ctl_json_num(r, "port");
        bool default_port = (port == 80 && strcmp(scheme, "http") == 0) ||
                            (port == 443 && strcmp(scheme, "https") == 0) || port == 0;
        if (strcmp(method, "CONNECT") == 0 || !*scheme)
            snprintf(url, sizeof(url), "%s:%lld", ctl_json_str(r, "host"), port);
        else if (default_port)
            snprintf(url, sizeof(url), "%s://%s%s", scheme, ctl_json_str(r, "host"),
                     ctl_json_str(r, "path"));
        else
            snprintf(url, sizeof(url), "%s://%s:%lld%s", scheme, ctl_json_str(r, "host"), port,
                     ctl_json_str(r, "path"));
        if (*err)
            snprintf(url + strlen(url), sizeof(url) - strlen(url), " (%s)", err);
        char client[128];
        const char *cname = ctl_json_str(r, "client_name");
        snprintf(client, sizeof(client), "%s%s%s", ctl_json_str(r, "client"), *cname ? " " : "",
                 cname);
        const char *cells[LOG_NCOLS] = {
            idstr, time, client, ctl_json_str(r, "user"), method, status, decision, bytes, ms, url};
        ctl_table_add(t, cells);
    }
    free(sorted);
    return last_id;
}

static void on_stop_signal(int sig)
{
    ctl_http_interrupt();
}

/* Sleeps up to ms, waking early when interrupted. */
static void nap(int ms)
{
    for (int slept = 0; slept < ms && !ctl_http_interrupted(); slept += 50) {
        struct timespec ts = {0, 50 * 1000000L};
        nanosleep(&ts, NULL);
    }
}

static enum ctl_status fetch_logs(struct ctl_ctx *ctx, const struct ctl_query *filters,
                                  long long after, long long limit, json_t **out)
{
    struct ctl_query q = *filters;
    if (after > 0 && !ctl_query_add_num(&q, "after", after))
        return ctl_usage(ctx, "filters too long");
    if (limit > 0 && !ctl_query_add_num(&q, "limit", limit))
        return ctl_usage(ctx, "filters too long");
    char path[sizeof(q.buf) + 16];
    snprintf(path, sizeof(path), "/api/logs%s", q.buf);
    return ctl_api(ctx, "GET", path, NULL, out, NULL);
}

/* Every row the filters match, as the server streams it (GET /api/logs/export): to stdout as
 * it arrives, so any size fits. */
static enum ctl_status export_logs(struct ctl_ctx *ctx, const struct ctl_query *filters,
                                   const char *format)
{
    struct ctl_query q = *filters;
    if (!ctl_query_add(&q, "format", format))
        return ctl_usage(ctx, "filters too long");
    char path[sizeof(q.buf) + 24];
    snprintf(path, sizeof(path), "/api/logs/export%s", q.buf);
    struct ctl_request req = {
        .method = "GET", .path = path, .flags = CTL_API_NO_TIMEOUT, .sink = stdout};
    struct ctl_answer ans;
    enum ctl_status st = ctl_api_send(ctx, &req, &ans);
    ctl_answer_free(&ans);
    if (st == CTL_OK && fflush(stdout) != 0)
        return ctl_fail(ctx, CTL_REFUSED, "cannot write the export: %s", strerror(errno));
    return st;
}

enum ctl_status ctl_cmd_logs(struct ctl_ctx *ctx, const struct ctl_call *call)
{
    struct ctl_query q = {0};
    static const char *const text_filters[][2] = {
        {"--client", "client"}, {"--host", "host"}, {"--grep", "q"}, {"--node", "node"}};
    for (size_t i = 0; i < sizeof(text_filters) / sizeof(text_filters[0]); i++) {
        const struct ctl_value *v = ctl_call_opt(call, text_filters[i][0]);
        if (v->set && !ctl_query_add(&q, text_filters[i][1], v->str))
            return ctl_usage(ctx, "%s is too long", text_filters[i][0]);
    }
    if (ctl_call_opt(call, "--blocked")->set)
        ctl_query_add(&q, "decision", "deny");
    const struct ctl_value *status = ctl_call_opt(call, "--status");
    if (status->set)
        ctl_query_add_num(&q, "status", status->num);
    const struct ctl_value *since = ctl_call_opt(call, "--since");
    if (since->set)
        ctl_query_add_num(&q, "since", clock_wall_ms() - since->num);
    const struct ctl_value *limit = ctl_call_opt(call, "--limit");
    if (limit->set && limit->num > 1000)
        return ctl_usage(ctx, "--limit is at most 1000, got %lld", limit->num);
    bool follow = ctl_call_opt(call, "--follow")->set;
    /* --csv, or --json without --limit or --follow: the export, every matching row. */
    bool csv = ctl_call_opt(call, "--csv")->set;
    if (csv && (follow || limit->set))
        return ctl_usage(ctx, "--csv prints every matching row: it takes no --limit or --follow");
    if (csv || (ctx->json && !follow && !limit->set))
        return export_logs(ctx, &q, csv ? "csv" : "json");

    json_t *out = NULL;
    enum ctl_status st = fetch_logs(ctx, &q, 0, limit->set ? limit->num : 0, &out);
    if (st != CTL_OK)
        return st;
    if (ctx->json && !follow) {
        ctl_print_json(out);
        json_decref(out);
        return CTL_OK;
    }
    struct ctl_table *t = ctl_table_new(log_cols, LOG_NCOLS);
    if (!t) {
        json_decref(out);
        return ctl_fail(ctx, CTL_REFUSED, "out of memory");
    }
    int max_width = ctl_table_max_width();
    long long last_id = add_log_rows(t, json_object_get(out, "rows"), 0, ctx->json);
    json_decref(out);
    if (!follow || ctl_table_rows(t) > 0)
        ctl_table_flush(t, stdout, max_width);
    if (!follow) {
        ctl_table_free(t);
        return CTL_OK;
    }

    struct sigaction sa = {.sa_handler = on_stop_signal};
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    while (!ctl_http_interrupted()) {
        nap(FOLLOW_POLL_MS);
        if (ctl_http_interrupted())
            break;
        st = fetch_logs(ctx, &q, last_id, FOLLOW_BATCH, &out);
        if (st != CTL_OK)
            break;
        last_id = add_log_rows(t, json_object_get(out, "rows"), last_id, ctx->json);
        json_decref(out);
        if (ctl_table_rows(t) > 0)
            ctl_table_flush(t, stdout, max_width);
        fflush(stdout);
    }
    ctl_table_free(t);
    return ctl_http_interrupted() ? CTL_OK : st;
}

/* ---- top ---- */

enum ctl_status ctl_cmd_top(struct ctl_ctx *ctx, const struct ctl_call *call)
{
    static const char *const kinds[] = {"hosts", "clients", "blocked", "reported"};
    static const char *const titles[] = {"domain", "client", "blocked domain", "reported domain"};
    int k = call->nwords > 0 ? (int)call->word_num[0] : 0;
    if (ctl_call_opt(call, "--report")->set) {
        if (call->nwords > 0)
            return ctl_usage(ctx, "--report lists domains: it takes no KIND");
        k = 3;
    }
    struct ctl_query q = {0};
    ctl_query_add(&q, "kind", kinds[k]);
    const struct ctl_value *since = ctl_call_opt(call, "--since");
    if (since->set)
        ctl_query_add_num(&q, "since", clock_wall_ms() - since->num);
    const struct ctl_value *limit = ctl_call_opt(call, "--limit");
    if (limit->set)
        ctl_query_add_num(&q, "limit", limit->num);
    const struct ctl_value *node = ctl_call_opt(call, "--node");
    if (node->set && !ctl_query_add(&q, "node", node->str))
        return ctl_usage(ctx, "--node is too long");
    char path[sizeof(q.buf) + 16];
    snprintf(path, sizeof(path), "/api/top%s", q.buf);
    const struct ctl_column cols[] = {
        {titles[k], false, true}, {"requests", true, false}, {"bytes", true, false}};
    json_t *out;
    struct ctl_table *t;
    enum ctl_status st = ctl_api_table(ctx, path, cols, 3, &out, &t);
    if (!t)
        return st;
    size_t i;
    const json_t *r;
    json_array_foreach(json_object_get(out, "rows"), i, r)
    {
        char req[24], bytes[32], key[320];
        snprintf(req, sizeof(req), "%lld", ctl_json_num(r, "requests"));
        ctl_bytes_str((double)ctl_json_num(r, "bytes"), bytes, sizeof(bytes));
        const char *kname = ctl_json_str(r, "key_name"); /* a client's name */
        snprintf(key, sizeof(key), "%s%s%s", ctl_json_str(r, "key"), *kname ? " " : "", kname);
        const char *cells[] = {key, req, bytes};
        ctl_table_add(t, cells);
    }
    ctl_table_print(t, "no requests in that time");
    json_decref(out);
    return CTL_OK;
}

/* ---- stats ---- */

static void key_width(const json_t *obj, const char *prefix, int *width)
{
    const char *key;
    const json_t *v;
    json_object_foreach((json_t *)obj, key, v)
    {
        if (json_is_object(v)) {
            char sub[128];
            snprintf(sub, sizeof(sub), "%s%s.", prefix, key);
            key_width(v, sub, width);
            continue;
        }
        int w = (int)(strlen(prefix) + strlen(key));
        if (w > *width)
            *width = w;
    }
}

/* One "key  value" line per member; nested objects flatten to "log.queued". Times (keys
 * ending in _ms with a date-sized value) print in local time; byte counts also in units. */
static void print_members(const json_t *obj, const char *prefix, int width)
{
    const char *key;
    const json_t *v;
    json_object_foreach((json_t *)obj, key, v)
    {
        char name[160], val[256];
        snprintf(name, sizeof(name), "%s%s", prefix, key);
        if (json_is_object(v)) {
            char sub[170];
            snprintf(sub, sizeof(sub), "%s.", name);
            print_members(v, sub, width);
            continue;
        }
        size_t klen = strlen(key);
        if (json_is_integer(v)) {
            long long n = (long long)json_integer_value(v);
            if (klen > 3 && strcmp(key + klen - 3, "_ms") == 0 && n > 1000000000000LL) {
                char t[32];
                long long up = (clock_wall_ms() - n) / 1000;
                snprintf(val, sizeof(val), "%s (%lldd %02lld:%02lld:%02lld ago)",
                         ctl_time_str(n, t, sizeof(t)), up / 86400, up / 3600 % 24, up / 60 % 60,
                         up % 60);
            } else if (strstr(key, "bytes")) {
                char b[32];
                snprintf(val, sizeof(val), "%lld (%s)", n, ctl_bytes_str((double)n, b, sizeof(b)));
            } else {
                snprintf(val, sizeof(val), "%lld", n);
            }
        } else if (json_is_boolean(v)) {
            snprintf(val, sizeof(val), "%s", json_is_true(v) ? "yes" : "no");
        } else if (json_is_string(v)) {
            snprintf(val, sizeof(val), "%s", json_string_value(v));
        } else {
            char *s = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
            snprintf(val, sizeof(val), "%s", s ? s : "?");
            free(s);
        }
        for (char *p = val; *p; p++)
            if ((unsigned char)*p < 0x20 || *p == 0x7f)
                *p = '?';
        printf("  %-*s  %s\n", width, name, val);
    }
}

enum ctl_status ctl_cmd_stats(struct ctl_ctx *ctx, const struct ctl_call *call)
{
    struct ctl_query q = {0};
    const struct ctl_value *node = ctl_call_opt(call, "--node");
    if (node->set && !ctl_query_add(&q, "node", node->str))
        return ctl_usage(ctx, "--node is too long");
    char path[sizeof(q.buf) + 16];
    snprintf(path, sizeof(path), "/api/stats%s", q.buf);
    json_t *out;
    enum ctl_status st = ctl_api_show(ctx, "GET", path, NULL, &out, NULL);
    if (!out)
        return st;
    int width = 0;
    const json_t *proxy = json_object_get(out, "proxy");
    const json_t *totals = json_object_get(out, "totals");
    key_width(proxy, "", &width);
    key_width(totals, "", &width);
    if (json_is_object(proxy)) {
        printf("proxy (since it started)\n");
        print_members(proxy, "", width);
    }
    if (json_is_object(totals)) {
        if (node->set)
            printf("access log of node %s (last 24 h)\n", node->str);
        else
            printf("access log (last 24 h)\n");
        print_members(totals, "", width);
    }
    json_decref(out);
    return CTL_OK;
}

/* ---- audit ---- */

enum ctl_status ctl_cmd_audit(struct ctl_ctx *ctx, const struct ctl_call *call)
{
    struct ctl_query q = {0};
    const struct ctl_value *limit = ctl_call_opt(call, "--limit");
    if (limit->set)
        ctl_query_add_num(&q, "limit", limit->num);
    char path[sizeof(q.buf) + 16];
    snprintf(path, sizeof(path), "/api/audit%s", q.buf);
    static const struct ctl_column cols[] = {{"time", false, false},
                                             {"actor", false, false},
                                             {"action", false, false},
                                             {"detail", false, true}};
    json_t *out;
    struct ctl_table *t;
    enum ctl_status st = ctl_api_table(ctx, path, cols, 4, &out, &t);
    if (!t)
        return st;
    size_t i;
    const json_t *r;
    json_array_foreach(json_object_get(out, "rows"), i, r)
    {
        char time[32];
        const char *cells[] = {ctl_time_str(ctl_json_num(r, "time_ms"), time, sizeof(time)),
                               ctl_json_str(r, "actor"), ctl_json_str(r, "action"),
                               ctl_json_str(r, "detail")};
        ctl_table_add(t, cells);
    }
    ctl_table_print(t, "no policy changes recorded");
    json_decref(out);
    return CTL_OK;
}
