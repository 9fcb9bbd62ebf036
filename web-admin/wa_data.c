/* web-admin data endpoints: domain lists, proxy users and admins, the access log search,
 * top/series/stats for the dashboard, settings, audit, health and /proxy.pac.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/clock.h"
#include "web-admin/wa_internal.h"

#define DAY_MS (24LL * 3600 * 1000)
#define ROWS_MAX 1000
#define WA_SEARCH_MAX 1024 /* bytes of a log search text */

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

static bool is_get(struct wa_req *r)
{
    return !strcmp(r->method, "GET") || !strcmp(r->method, "HEAD");
}

static enum MHD_Result not_allowed(struct wa_req *r)
{
    return wa_reply_error(r, 405, NULL, "method %s not allowed here", r->method);
}

static void names_free(char **names, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
}

/* ---- lists ---- */

/* 1 if list `name` exists, 0 if not, -1 on error. */
static int list_exists(struct store *st, const char *name)
{
    struct store_list_info *lists;
    size_t n;
    char err[256];
    int found = 0;

    if (store_lists(st, &lists, &n, err, sizeof(err)) < 0)
        return -1;
    for (size_t i = 0; i < n; i++)
        if (!strcmp(lists[i].name, name))
            found = 1;
    free(lists);
    return found;
}

static enum MHD_Result lists_get_all(struct wa_req *r, struct store *st)
{
    struct store_list_info *lists;
    size_t n;
    char err[256];
    json_t *arr = json_array();

    if (store_lists(st, &lists, &n, err, sizeof(err)) < 0) {
        json_decref(arr);
        return wa_reply_error(r, 500, NULL, "%s", err);
    }
    for (size_t i = 0; arr && i < n; i++)
        json_array_append_new(arr, json_pack("{s:s,s:I,s:I}", "name", lists[i].name, "entries",
                                             (json_int_t)lists[i].entries, "updated_ms",
                                             (json_int_t)lists[i].updated_ms));
    free(lists);
    return wa_reply_json(r, 200, json_pack("{s:o}", "lists", arr));
}

/* Puts list `name` back as it was: its old entries, or no list at all. */
static void list_restore(struct wa_req *r, struct store *st, const char *name, int existed,
                         char **old, size_t n_old)
{
    char err[256];

    if (existed)
        store_list_replace(st, name, (const char *const *)old, n_old, r->actor, err, sizeof(err));
    else
        store_list_delete(st, name, r->actor, err, sizeof(err));
}

static enum MHD_Result list_put(struct wa_req *r, struct store *st, const char *name)
{
    struct wa_server *srv = r->srv;
    struct acl_list_stats stats;
    char **domains = NULL, **old = NULL, err[512];
    size_t n = 0, n_old = 0;
    int existed;
    json_t *o;

    memset(&stats, 0, sizeof(stats));
    if (acl_list_parse(r->body, r->len, &domains, &n, &stats) < 0)
        return wa_reply_error(r, 500, NULL, "out of memory while parsing the list");
    pthread_mutex_lock(&srv->policy_mu);
    existed = list_exists(st, name);
    if (existed < 0 ||
        (existed && store_list_entries(st, name, &old, &n_old, err, sizeof(err)) < 0)) {
        pthread_mutex_unlock(&srv->policy_mu);
        acl_list_free(domains, n);
        return wa_reply_error(r, 500, NULL, "cannot read list %s", name);
    }
    if (store_list_replace(st, name, (const char *const *)domains, n, r->actor, err, sizeof(err)) <
        0) {
        pthread_mutex_unlock(&srv->policy_mu);
        acl_list_free(domains, n);
        names_free(old, n_old);
        return wa_reply_error(r, 500, NULL, "%s", err);
    }
    acl_list_free(domains, n);
    if (wa_policy_hook(srv, err, sizeof(err)) < 0) {
        list_restore(r, st, name, existed, old, n_old);
        pthread_mutex_unlock(&srv->policy_mu);
        names_free(old, n_old);
        return wa_reply_error(r, 409, NULL, "%s", err);
    }
    pthread_mutex_unlock(&srv->policy_mu);
    names_free(old, n_old);
    o = json_pack("{s:s,s:I,s:I,s:I,s:i,s:s}", "name", name, "added", (json_int_t)stats.added,
                  "duplicates", (json_int_t)stats.duplicates, "skipped", (json_int_t)stats.skipped,
                  "first_skipped_line", stats.first_skipped_line, "first_skipped_reason",
                  stats.first_skipped_reason);
    return wa_reply_json(r, 200, o);
}

static enum MHD_Result list_get(struct wa_req *r, struct store *st, const char *name)
{
    char **domains, err[256];
    size_t n;
    json_t *arr;

    if (store_list_entries(st, name, &domains, &n, err, sizeof(err)) < 0)
        return wa_reply_error(r, 500, NULL, "%s", err);
    arr = json_array();
    for (size_t i = 0; arr && i < n; i++)
        json_array_append_new(arr, json_string(domains[i]));
    names_free(domains, n);
    return wa_reply_json(r, 200, json_pack("{s:s,s:o}", "name", name, "entries", arr));
}

static enum MHD_Result list_delete(struct wa_req *r, struct store *st, const char *name)
{
    struct wa_server *srv = r->srv;
    char **old = NULL, err[512];
    size_t n_old = 0;

    pthread_mutex_lock(&srv->policy_mu);
    if (store_list_entries(st, name, &old, &n_old, err, sizeof(err)) < 0 ||
        store_list_delete(st, name, r->actor, err, sizeof(err)) < 0) {
        pthread_mutex_unlock(&srv->policy_mu);
        names_free(old, n_old);
        return wa_reply_error(r, 500, NULL, "%s", err);
    }
    /* A rule still naming the list makes the compile fail: the hook's refusal undoes it. */
    if (wa_policy_hook(srv, err, sizeof(err)) < 0) {
        list_restore(r, st, name, 1, old, n_old);
        pthread_mutex_unlock(&srv->policy_mu);
        names_free(old, n_old);
        return wa_reply_error(r, 409, NULL, "%s", err);
    }
    pthread_mutex_unlock(&srv->policy_mu);
    names_free(old, n_old);
    return wa_reply_json(r, 200, json_pack("{s:s}", "deleted", name));
}

enum MHD_Result wa_api_lists(struct wa_req *r, const char *name)
{
    struct store *st;
    int exists;

    if (!name || !*name) {
        if (!is_get(r))
            return not_allowed(r);
        st = wa_store(r);
        return st ? lists_get_all(r, st) : MHD_YES;
    }
    if (!wa_name_ok(name))
        return wa_reply_error(r, 400, "name", "list names are 1-63 letters, digits, '.', '_', '-'");
    if (!is_get(r) && strcmp(r->method, "PUT") && strcmp(r->method, "DELETE"))
        return not_allowed(r);
    st = wa_store(r);
    if (!st)
        return MHD_YES;
    if (!strcmp(r->method, "PUT"))
        return list_put(r, st, name);
    exists = list_exists(st, name);
    if (exists < 0)
        return wa_reply_error(r, 500, NULL, "cannot read the lists");
    if (!exists)
        return wa_reply_error(r, 404, NULL, "no list %s", name);
    return is_get(r) ? list_get(r, st, name) : list_delete(r, st, name);
}

/* ---- proxy users and admins ---- */

/* 1 if the account exists, 0 if not; *count gets how many of that kind exist. -1 on error. */
static int account_exists(struct store *st, enum store_account kind, const char *name,
                          size_t *count)
{
    char **names;
    size_t n;
    int found = 0;

    if (store_account_names(st, kind, &names, &n) < 0)
        return -1;
    for (size_t i = 0; i < n; i++)
        if (!strcmp(names[i], name))
            found = 1;
    names_free(names, n);
    if (count)
        *count = n;
    return found;
}

static enum MHD_Result account_put(struct wa_req *r, struct store *st, enum store_account kind,
                                   const char *name)
{
    struct wa_server *srv = r->srv;
    const char *key = kind == STORE_ADMIN ? "admin" : "user";
    size_t min = kind == STORE_ADMIN ? 8 : 1;
    json_t *body;
    const char *pw;
    char err[512];
    int existed;

    body = wa_body_json(r);
    if (!body)
        return MHD_YES;
    pw = json_string_value(json_object_get(body, "password"));
    if (!pw || strlen(pw) < min || strlen(pw) > 1024) {
        json_decref(body);
        return wa_reply_error(r, 400, "password", "password must be %zu to 1024 characters", min);
    }
    pthread_mutex_lock(&srv->policy_mu);
    existed = account_exists(st, kind, name, NULL);
    if (existed < 0 || store_account_set(st, kind, name, pw, r->actor, err, sizeof(err)) < 0) {
        pthread_mutex_unlock(&srv->policy_mu);
        json_decref(body);
        return wa_reply_error(r, 500, NULL, "cannot save the account");
    }
    json_decref(body);
    if (kind == STORE_PROXY_USER && wa_policy_hook(srv, err, sizeof(err)) < 0) {
        char uerr[256];
        /* A new user can be taken back; a changed password hash cannot be restored. */
        if (!existed)
            store_account_delete(st, kind, name, r->actor, uerr, sizeof(uerr));
        pthread_mutex_unlock(&srv->policy_mu);
        return wa_reply_error(r, 409, NULL, "%s%s", err,
                              existed ? " (the new password is saved)" : "");
    }
    pthread_mutex_unlock(&srv->policy_mu);
    /* Another admin's password changed: end their sessions (keep the caller's own). */
    if (kind == STORE_ADMIN && strcmp(name, r->actor) != 0)
        wa_sessions_drop_user(srv->auth, name);
    else if (kind == STORE_ADMIN)
        wa_sessions_password_changed(srv->auth, name);
    /* The generated first-run password is void now: its file goes. */
    if (kind == STORE_ADMIN && strcmp(name, WA_FIRST_ADMIN) == 0)
        wa_first_password_forget(srv);
    return wa_reply_json(r, 200, json_pack("{s:s}", key, name));
}

static enum MHD_Result account_delete(struct wa_req *r, struct store *st, enum store_account kind,
                                      const char *name)
{
    struct wa_server *srv = r->srv;
    size_t count = 0;
    char err[512];
    int exists;

    pthread_mutex_lock(&srv->policy_mu);
    exists = account_exists(st, kind, name, &count);
    if (exists <= 0) {
        pthread_mutex_unlock(&srv->policy_mu);
        return exists < 0 ? wa_reply_error(r, 500, NULL, "cannot read the accounts")
                          : wa_reply_error(r, 404, NULL, "no %s %s",
                                           kind == STORE_ADMIN ? "admin" : "user", name);
    }
    if (kind == STORE_ADMIN && count <= 1) {
        pthread_mutex_unlock(&srv->policy_mu);
        return wa_reply_error(r, 409, NULL, "%s is the last admin", name);
    }
    if (store_account_delete(st, kind, name, r->actor, err, sizeof(err)) < 0) {
        pthread_mutex_unlock(&srv->policy_mu);
        return wa_reply_error(r, 500, NULL, "%s", err);
    }
    /* The compiled set holds no user table, so a refusal here is not about this user and a
     * deleted password hash could not be restored anyway: report it, undo nothing. */
    if (kind == STORE_PROXY_USER && wa_policy_hook(srv, err, sizeof(err)) < 0) {
        pthread_mutex_unlock(&srv->policy_mu);
        return wa_reply_error(r, 500, NULL, "user deleted, but the proxy did not reload: %s", err);
    }
    pthread_mutex_unlock(&srv->policy_mu);
    if (kind == STORE_ADMIN)
        wa_sessions_drop_user(srv->auth, name);
    if (kind == STORE_ADMIN && strcmp(name, WA_FIRST_ADMIN) == 0)
        wa_first_password_forget(srv);
    return wa_reply_json(r, 200, json_pack("{s:s}", "deleted", name));
}

enum MHD_Result wa_api_users(struct wa_req *r, const char *name, enum store_account kind)
{
    struct store *st;

    if (!name || !*name) {
        char **names;
        size_t n;
        json_t *arr;

        if (!is_get(r))
            return not_allowed(r);
        st = wa_store(r);
        if (!st)
            return MHD_YES;
        if (store_account_names(st, kind, &names, &n) < 0)
            return wa_reply_error(r, 500, NULL, "cannot read the accounts");
        arr = json_array();
        for (size_t i = 0; arr && i < n; i++)
            json_array_append_new(arr, json_string(names[i]));
        names_free(names, n);
        return wa_reply_json(r, 200,
                             json_pack("{s:o}", kind == STORE_ADMIN ? "admins" : "users", arr));
    }
    if (!wa_name_ok(name))
        return wa_reply_error(r, 400, "name", "names are 1-63 letters, digits, '.', '_', '-'");
    if (strcmp(r->method, "PUT") && strcmp(r->method, "DELETE"))
        return not_allowed(r);
    st = wa_store(r);
    if (!st)
        return MHD_YES;
    return !strcmp(r->method, "PUT") ? account_put(r, st, kind, name)
                                     : account_delete(r, st, kind, name);
}

/* ---- access log, top, series ---- */

static json_t *log_row_json(const struct store_log_row *row)
{
    const struct store_access *a = &row->a;
    json_t *o = json_object();

    if (!o)
        return NULL;
    json_object_set_new(o, "id", json_integer(row->id));
    json_object_set_new(o, "time_ms", json_integer(a->time_ms));
    json_object_set_new(o, "client", json_string(a->client));
    json_object_set_new(o, "user", json_string(a->user));
    json_object_set_new(o, "method", json_string(a->method));
    json_object_set_new(o, "scheme", json_string(a->scheme));
    json_object_set_new(o, "host", json_string(a->host));
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
    json_object_set_new(o, "error", json_string(a->error));
    return o;
}

/* limit query parameter: default def, at most ROWS_MAX. -1 after answering 400. */
static int64_t query_limit(struct wa_req *r, int64_t def)
{
    int64_t v = def;
    int rc = wa_query_int(r, "limit", &v);

    if (rc < 0)
        return -1;
    if (v <= 0) {
        wa_reply_error(r, 400, "limit", "limit must be positive");
        return -1;
    }
    return v > ROWS_MAX ? ROWS_MAX : v;
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

enum MHD_Result wa_api_logs(struct wa_req *r)
{
    struct store_log_filter f;
    struct store_log_row *rows;
    struct store *st;
    const char *dec;
    int64_t v, limit;
    size_t n;
    char err[256];
    json_t *arr, *o;
    bool bad = false;

    memset(&f, 0, sizeof(f));
    f.decision = -1;
    if (wa_query_int(r, "since", &f.since_ms) < 0 || wa_query_int(r, "until", &f.until_ms) < 0 ||
        wa_query_int(r, "before", &f.before_id) < 0 || wa_query_int(r, "after", &f.after_id) < 0)
        return MHD_YES;
    v = 0;
    if (wa_query_int(r, "status", &v) < 0)
        return MHD_YES;
    if (v < 0 || v > 999)
        return wa_reply_error(r, 400, "status", "status must be an HTTP status code");
    f.status = (int)v;
    limit = query_limit(r, 100);
    if (limit < 0)
        return MHD_YES;
    f.limit = (size_t)limit;
    f.client = query_search(r, "client", &bad);
    if (!bad)
        f.host_like = query_search(r, "host", &bad);
    if (!bad)
        f.text_like = query_search(r, "q", &bad);
    if (bad)
        return MHD_YES;
    dec = nonempty(wa_query(r, "decision"));
    if (dec) {
        for (int d = 0; d < STORE_DECISION_COUNT; d++)
            if (!strcmp(dec, store_decision_str((enum store_decision)d)))
                f.decision = d;
        if (f.decision < 0)
            return wa_reply_error(r, 400, "decision", "decision is allow, deny or auth");
    }
    st = wa_store(r);
    if (!st)
        return MHD_YES;
    if (store_log_search(st, &f, &rows, &n, err, sizeof(err)) < 0)
        return wa_reply_error(r, 500, NULL, "%s", err);
    arr = json_array();
    int64_t oldest = 0;
    for (size_t i = 0; arr && i < n; i++) {
        json_array_append_new(arr, log_row_json(&rows[i]));
        if (oldest == 0 || rows[i].id < oldest)
            oldest = rows[i].id;
    }
    free(rows);
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

enum MHD_Result wa_api_top(struct wa_req *r)
{
    static const char *const kinds[STORE_TOP_COUNT] = {"hosts", "clients", "blocked"};
    const char *kind = nonempty(wa_query(r, "kind"));
    struct store_top_row *rows;
    struct store *st;
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
        return wa_reply_error(r, 400, "kind", "kind is hosts, clients or blocked");
    if (query_range(r, &since, &until) < 0)
        return MHD_YES;
    limit = query_limit(r, 10);
    if (limit < 0)
        return MHD_YES;
    st = wa_store(r);
    if (!st)
        return MHD_YES;
    if (store_top(st, (enum store_top_kind)k, since, until, (size_t)limit, &rows, &n, err,
                  sizeof(err)) < 0)
        return wa_reply_error(r, 500, NULL, "%s", err);
    arr = json_array();
    for (size_t i = 0; arr && i < n; i++)
        json_array_append_new(arr, json_pack("{s:s,s:I,s:I}", "key", rows[i].key, "requests",
                                             (json_int_t)rows[i].requests, "bytes",
                                             (json_int_t)rows[i].bytes));
    free(rows);
    return wa_reply_json(r, 200, json_pack("{s:s,s:o}", "kind", kinds[k], "rows", arr));
}

enum MHD_Result wa_api_series(struct wa_req *r)
{
    struct store_series_point *pts;
    struct store *st;
    int64_t since, until, bucket = 3600 * 1000;
    size_t n;
    char err[256];
    json_t *arr;

    if (query_range(r, &since, &until) < 0 || wa_query_int(r, "bucket", &bucket) < 0)
        return MHD_YES;
    if (bucket < 1000)
        return wa_reply_error(r, 400, "bucket", "bucket must be at least 1000 ms");
    if ((until - since) / bucket > 10000)
        return wa_reply_error(r, 400, "bucket", "more than 10000 buckets; use a larger bucket");
    st = wa_store(r);
    if (!st)
        return MHD_YES;
    if (store_series(st, since, until, bucket, &pts, &n, err, sizeof(err)) < 0)
        return wa_reply_error(r, 500, NULL, "%s", err);
    arr = json_array();
    for (size_t i = 0; arr && i < n; i++)
        json_array_append_new(arr, json_pack("{s:I,s:I,s:I,s:I}", "t", (json_int_t)pts[i].bucket_ms,
                                             "requests", (json_int_t)pts[i].requests, "blocked",
                                             (json_int_t)pts[i].blocked, "bytes",
                                             (json_int_t)pts[i].bytes));
    free(pts);
    return wa_reply_json(r, 200,
                         json_pack("{s:o,s:I}", "points", arr, "bucket", (json_int_t)bucket));
}

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

enum MHD_Result wa_api_stats(struct wa_req *r)
{
    struct wa_proxy_stats ps;
    struct store_totals t;
    struct store *st;
    int64_t now = clock_wall_ms();
    uint64_t failed, throttled;
    char err[256];
    json_t *proxy;

    memset(&ps, 0, sizeof(ps));
    if (r->srv->opts.proxy_stats) {
        r->srv->opts.proxy_stats(r->srv->opts.hook_arg, &ps);
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
    wa_auth_counters(r->srv->auth, &failed, &throttled);
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

/* ---- settings ---- */

/* "host:port" or "[v6]:port", nothing that could break out of the PAC's JS string. */
static bool hostport_ok(const char *s)
{
    const char *colon = strrchr(s, ':');
    size_t n = strlen(s);

    if (!colon || colon == s || n > 255 || !colon[1] ||
        strspn(colon + 1, "0123456789") != strlen(colon + 1))
        return false;
    return strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-_:[]") == n;
}

struct setting_def {
    const char *key;
    bool (*valid)(const char *value);
    const char *expect;
    bool policy; /* proxyd compiles it into the rule set */
};

static const struct setting_def settings[] = {
    {"pac_proxy", hostport_ok, "host:port handed out by /proxy.pac", false},
};
#define NSETTINGS (sizeof(settings) / sizeof(settings[0]))

static enum MHD_Result settings_reply(struct wa_req *r, struct store *st)
{
    json_t *o = json_object(), *help = json_object();

    for (size_t i = 0; o && help && i < NSETTINGS; i++) {
        char *v = store_setting_get(st, settings[i].key);
        json_object_set_new(o, settings[i].key, v && *v ? json_string(v) : json_null());
        json_object_set_new(help, settings[i].key, json_string(settings[i].expect));
        free(v);
    }
    return wa_reply_json(r, 200, json_pack("{s:o,s:o}", "settings", o, "help", help));
}

static enum MHD_Result settings_put(struct wa_req *r, struct store *st)
{
    struct wa_server *srv = r->srv;
    json_t *body = wa_body_json(r), *val;
    const char *key;
    char *old[NSETTINGS] = {0}, err[512];
    bool touched[NSETTINGS] = {0}, policy = false;
    enum MHD_Result ret;

    if (!body)
        return MHD_YES;
    json_object_foreach(body, key, val)
    {
        size_t i;
        for (i = 0; i < NSETTINGS && strcmp(settings[i].key, key); i++)
            ;
        if (i == NSETTINGS) {
            ret = wa_reply_error(r, 400, key, "unknown setting %.64s", key);
            json_decref(body); /* key lives in body */
            return ret;
        }
        if (json_is_null(val) || (json_is_string(val) && !*json_string_value(val)))
            continue; /* unset */
        if (!json_is_string(val) || !settings[i].valid(json_string_value(val))) {
            ret = wa_reply_error(r, 400, settings[i].key, "%s: expected %s", settings[i].key,
                                 settings[i].expect);
            json_decref(body);
            return ret;
        }
    }
    pthread_mutex_lock(&srv->policy_mu);
    for (size_t i = 0; i < NSETTINGS; i++) {
        const char *v;

        val = json_object_get(body, settings[i].key);
        if (!val)
            continue;
        v = json_is_string(val) ? json_string_value(val) : "";
        old[i] = store_setting_get(st, settings[i].key);
        touched[i] = true;
        policy |= settings[i].policy;
        if (store_setting_set(st, settings[i].key, v, r->actor, err, sizeof(err)) < 0) {
            ret = wa_reply_error(r, 500, NULL, "%s", err);
            goto undo;
        }
    }
    if (policy && wa_policy_hook(srv, err, sizeof(err)) < 0) {
        ret = wa_reply_error(r, 409, NULL, "%s", err);
        goto undo;
    }
    pthread_mutex_unlock(&srv->policy_mu);
    for (size_t i = 0; i < NSETTINGS; i++)
        free(old[i]);
    json_decref(body);
    return settings_reply(r, st);
undo:
    for (size_t i = 0; i < NSETTINGS; i++) {
        if (touched[i])
            store_setting_set(st, settings[i].key, old[i] ? old[i] : "", r->actor, err,
                              sizeof(err));
        free(old[i]);
    }
    pthread_mutex_unlock(&srv->policy_mu);
    json_decref(body);
    return ret;
}

enum MHD_Result wa_api_settings(struct wa_req *r)
{
    struct store *st;

    if (!is_get(r) && strcmp(r->method, "PUT"))
        return not_allowed(r);
    st = wa_store(r);
    if (!st)
        return MHD_YES;
    return is_get(r) ? settings_reply(r, st) : settings_put(r, st);
}

/* ---- audit, health, PAC ---- */

enum MHD_Result wa_api_audit(struct wa_req *r)
{
    struct store_audit *rows;
    struct store *st;
    int64_t before = 0, limit;
    size_t n;
    char err[256];
    json_t *arr, *o;

    if (wa_query_int(r, "before", &before) < 0)
        return MHD_YES;
    if (before <= 0)
        before = clock_wall_ms() + 1;
    limit = query_limit(r, 100);
    if (limit < 0)
        return MHD_YES;
    st = wa_store(r);
    if (!st)
        return MHD_YES;
    if (store_audit_list(st, before, (size_t)limit, &rows, &n, err, sizeof(err)) < 0)
        return wa_reply_error(r, 500, NULL, "%s", err);
    arr = json_array();
    for (size_t i = 0; arr && i < n; i++)
        json_array_append_new(arr, json_pack("{s:I,s:s,s:s,s:s}", "time_ms",
                                             (json_int_t)rows[i].time_ms, "actor", rows[i].actor,
                                             "action", rows[i].action, "detail", rows[i].detail));
    o = json_pack("{s:o}", "rows", arr);
    if (o)
        json_object_set_new(o, "next_before",
                            n == (size_t)limit && n > 0 ? json_integer(rows[n - 1].time_ms)
                                                        : json_null());
    free(rows);
    return wa_reply_json(r, 200, o);
}

enum MHD_Result wa_api_health(struct wa_req *r)
{
    char err[256];
    struct store *st = store_pool_get(r->srv->pool, err, sizeof(err));
    bool db_ok = st && store_schema_version(st) > 0;

    store_pool_put(r->srv->pool, st);
    return wa_reply_json(
        r, 200, json_pack("{s:b,s:s,s:b}", "ok", 1, "version", PX_VERSION, "db_ok", db_ok));
}

enum MHD_Result wa_pac(struct wa_req *r)
{
    char pac[512], err[256];
    const char *proxy = r->srv->pac_proxy;
    struct store *st = store_pool_get(r->srv->pool, err, sizeof(err));
    char *set = st ? store_setting_get(st, "pac_proxy") : NULL;
    enum MHD_Result ret;

    store_pool_put(r->srv->pool, st);
    if (set && hostport_ok(set))
        proxy = set;
    if (!hostport_ok(proxy))
        proxy = "127.0.0.1:3128";
    snprintf(pac, sizeof(pac),
             "function FindProxyForURL(url, host) {\n"
             "    if (isPlainHostName(host) || host == \"localhost\" || "
             "shExpMatch(host, \"127.*\"))\n"
             "        return \"DIRECT\";\n"
             "    return \"PROXY %s\";\n"
             "}\n",
             proxy);
    free(set);
    ret = wa_reply_data(r, 200, "application/x-ns-proxy-autoconfig", "no-cache", pac, strlen(pac));
    return ret;
}
