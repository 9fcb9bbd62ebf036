/* web-admin policy versions: the history (GET /api/versions), one version's rules
 * (GET /api/versions/{v}), a rule-level diff of two versions with the lists that differ
 * (GET /api/versions/diff), a
 * rollback (POST /api/versions/{v}/rollback, compiled before it is committed like any
 * change) and why a logged request was decided as it was (GET /api/logs/{id}/why).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "acl/acl_rule.h"
#include "web-admin/wa_change.h"
#include "web-admin/wa_versions.h"

#define TRACE_MAX 1000 /* rules a why answer lists before the deciding one */

/* A version number or log id: a decimal integer >= 0 without sign or spaces. */
static int parse_id(const char *s, int64_t *out)
{
    char *end;
    long long v;

    if (!s || *s < '0' || *s > '9')
        return -1;
    errno = 0;
    v = strtoll(s, &end, 10);
    if (errno || *end)
        return -1;
    *out = v;
    return 0;
}

/* "lists": how many lists the version kept, null for one from before versions kept them. */
static json_t *version_json(const struct store_version *v)
{
    return json_pack("{s:I,s:I,s:o,s:o,s:I,s:o}", "version", (json_int_t)v->version, "time_ms",
                     (json_int_t)v->time_ms, "actor", wa_json_text(v->actor), "message",
                     wa_json_text(v->message), "rules", (json_int_t)v->rules, "lists",
                     v->lists < 0 ? json_null() : json_integer((json_int_t)v->lists));
}

static json_t *rule_json(const struct store_rule *r)
{
    return json_pack("{s:i,s:i,s:b,s:o,s:o}", "id", r->id, "position", r->position, "enabled",
                     r->enabled, "text", wa_json_text(r->text), "comment",
                     wa_json_text(r->comment));
}

enum MHD_Result wa_versions_list(struct wa_req *r)
{
    struct store_version *rows;
    struct store *st;
    int64_t before = 0, limit;
    size_t n;
    char err[256];
    json_t *arr, *o;

    if (wa_query_int(r, "before", &before) < 0)
        return MHD_YES;
    limit = wa_query_limit(r, 100);
    if (limit < 0)
        return MHD_YES;
    st = wa_store(r);
    if (!st)
        return MHD_YES;
    if (store_versions_list(st, before, (size_t)limit, &rows, &n, err, sizeof(err)) < 0)
        return wa_reply_error(r, 500, NULL, "%s", err);
    arr = json_array();
    for (size_t i = 0; arr && i < n; i++)
        json_array_append_new(arr, version_json(&rows[i]));
    o = json_pack("{s:o,s:I}", "rows", arr, "current", (json_int_t)store_policy_version(st));
    if (o)
        json_object_set_new(o, "next_before",
                            n == (size_t)limit && n > 0 ? json_integer(rows[n - 1].version)
                                                        : json_null());
    free(rows);
    return wa_reply_json(r, 200, o);
}

/* Reads version `text` (a path segment or query value named field) with its rules. Returns
 * 0, or -1 after answering (400 not a number, 404 no such version, 500). */
static int version_load(struct wa_req *r, struct store *st, const char *text, const char *field,
                        struct store_version *info, struct store_rule **rules, size_t *n)
{
    int64_t v;
    char err[256];
    int rc;

    if (parse_id(text, &v) < 0) {
        wa_reply_error(r, 400, field, "not a version number: %.40s", text ? text : "(missing)");
        return -1;
    }
    rc = store_version_get(st, v, info, rules, n, err, sizeof(err));
    if (rc != 0)
        wa_reply_error(r, rc > 0 ? 404 : 500, rc > 0 ? field : NULL, "%s", err);
    return rc == 0 ? 0 : -1;
}

enum MHD_Result wa_versions_get(struct wa_req *r)
{
    struct store *st = wa_store(r);
    struct store_version info;
    struct store_rule *rules;
    size_t n;
    json_t *o, *arr;

    if (!st || version_load(r, st, r->param, NULL, &info, &rules, &n) < 0)
        return MHD_YES;
    o = version_json(&info);
    arr = json_array();
    for (size_t i = 0; arr && i < n; i++)
        json_array_append_new(arr, rule_json(&rules[i]));
    json_object_set_new(o, "rule_list", arr);
    store_rules_free(rules, n);
    return wa_reply_json(r, 200, o);
}

/* ---- diff ---- */

static int cmp_int(const void *a, const void *b)
{
    int x = *(const int *)a, y = *(const int *)b;

    return (x > y) - (x < y);
}

/* Index in rules (sorted copy `ids` of their ids beside `at`, their indices) of rule id, or
 * -1. */
static long find_rule(const int *ids, const long *at, size_t n, int id)
{
    const int *p = bsearch(&id, ids, n, sizeof(*ids), cmp_int);

    return p ? at[p - ids] : -1;
}

struct id_index {
    int *ids;
    long *at;
    size_t n;
};

static int id_index_build(struct id_index *x, const struct store_rule *rules, size_t n)
{
    struct pair {
        int id;
        long at;
    } *v = malloc((n ? n : 1) * sizeof(*v));

    x->ids = malloc((n ? n : 1) * sizeof(*x->ids));
    x->at = malloc((n ? n : 1) * sizeof(*x->at));
    x->n = n;
    if (!v || !x->ids || !x->at) {
        free(v);
        return -1;
    }
    for (size_t i = 0; i < n; i++)
        v[i] = (struct pair){rules[i].id, (long)i};
    /* The pair starts with its id: sorting pairs by their first int sorts by id. */
    qsort(v, n, sizeof(*v), cmp_int);
    for (size_t i = 0; i < n; i++) {
        x->ids[i] = v[i].id;
        x->at[i] = v[i].at;
    }
    free(v);
    return 0;
}

static void id_index_free(struct id_index *x)
{
    free(x->ids);
    free(x->at);
}

/* The rules both versions hold, in the order of b, are "in place" when they form the longest
 * run whose order a agrees with; every other one moved. keep[j] (j indexes b) is set for
 * those in place. pos_a[j] is the index in a of b's rule j, or -1 when a lacks it. Patience
 * sorting: O(n log n). 0, or -1 when out of memory. */
static int mark_in_place(const long *pos_a, size_t nb, bool *keep)
{
    long *tail = malloc((nb ? nb : 1) * sizeof(*tail)); /* index j ending a run of length k+1 */
    long *prev = malloc((nb ? nb : 1) * sizeof(*prev));
    size_t len = 0;

    if (!tail || !prev) {
        free(tail);
        free(prev);
        return -1;
    }
    for (size_t j = 0; j < nb; j++) {
        size_t lo = 0, hi = len;

        keep[j] = false;
        if (pos_a[j] < 0)
            continue;
        while (lo < hi) {
            size_t mid = (lo + hi) / 2;

            if (pos_a[tail[mid]] < pos_a[j])
                lo = mid + 1;
            else
                hi = mid;
        }
        prev[j] = lo > 0 ? tail[lo - 1] : -1;
        tail[lo] = (long)j;
        if (lo == len)
            len++;
    }
    for (long j = len ? tail[len - 1] : -1; j >= 0; j = prev[j])
        keep[j] = true;
    free(tail);
    free(prev);
    return 0;
}

static json_t *change_json(const char *what, const struct store_rule *rule)
{
    json_t *o = rule_json(rule);

    json_object_set_new(o, "change", json_string(what));
    return o;
}

/* The rule-level changes from rules a to rules b: removed (in a only), added (in b only),
 * changed (text, enabled or comment differ; "before" holds a's), moved (out of the order
 * the others keep). In b's order, removed ones first. NULL when out of memory. */
static json_t *diff_rules(const struct store_rule *a, size_t na, const struct store_rule *b,
                          size_t nb)
{
    struct id_index ia = {0}, ib = {0};
    long *pos_a = malloc((nb ? nb : 1) * sizeof(*pos_a));
    bool *keep = malloc((nb ? nb : 1) * sizeof(*keep));
    json_t *arr = json_array();

    if (!pos_a || !keep || !arr || id_index_build(&ia, a, na) < 0 || id_index_build(&ib, b, nb) < 0)
        goto oom;
    for (size_t j = 0; j < nb; j++)
        pos_a[j] = find_rule(ia.ids, ia.at, ia.n, b[j].id);
    if (mark_in_place(pos_a, nb, keep) < 0)
        goto oom;
    for (size_t i = 0; i < na; i++)
        if (find_rule(ib.ids, ib.at, ib.n, a[i].id) < 0)
            json_array_append_new(arr, change_json("removed", &a[i]));
    for (size_t j = 0; j < nb; j++) {
        const struct store_rule *old = pos_a[j] >= 0 ? &a[pos_a[j]] : NULL;

        if (!old) {
            json_array_append_new(arr, change_json("added", &b[j]));
            continue;
        }
        if (strcmp(old->text, b[j].text) || old->enabled != b[j].enabled ||
            strcmp(old->comment, b[j].comment)) {
            json_t *o = change_json("changed", &b[j]);

            json_object_set_new(o, "before", rule_json(old));
            json_array_append_new(arr, o);
        }
        if (!keep[j]) {
            json_t *o = change_json("moved", &b[j]);

            json_object_set_new(o, "from_position", json_integer(old->position));
            json_array_append_new(arr, o);
        }
    }
    id_index_free(&ia);
    id_index_free(&ib);
    free(pos_a);
    free(keep);
    return arr;
oom:
    id_index_free(&ia);
    id_index_free(&ib);
    free(pos_a);
    free(keep);
    json_decref(arr);
    return NULL;
}

enum MHD_Result wa_versions_diff(struct wa_req *r)
{
    struct store *st = wa_store(r);
    struct store_version va, vb;
    struct store_rule *ra = NULL, *rb = NULL;
    size_t na = 0, nb = 0;
    json_t *changes;

    if (!st || version_load(r, st, wa_query(r, "from"), "from", &va, &ra, &na) < 0)
        return MHD_YES;
    if (version_load(r, st, wa_query(r, "to"), "to", &vb, &rb, &nb) < 0) {
        store_rules_free(ra, na);
        return MHD_YES;
    }
    changes = diff_rules(ra, na, rb, nb);
    store_rules_free(ra, na);
    store_rules_free(rb, nb);
    if (!changes)
        return wa_reply_error(r, 500, NULL, "out of memory");
    /* The lists too, by entries: null when either version did not keep its lists. */
    struct store_list_change *lc;
    size_t nlc;
    char err[256];
    int rc = store_version_lists_diff(st, va.version, vb.version, &lc, &nlc, err, sizeof(err));
    if (rc < 0) {
        json_decref(changes);
        return wa_reply_error(r, 500, NULL, "%s", err);
    }
    json_t *lists = rc == 0 ? json_array() : json_null();
    for (size_t i = 0; rc == 0 && i < nlc; i++) {
        const struct store_list_change *c = &lc[i];
        const char *what = c->entries_from < 0 ? "added"
                           : c->entries_to < 0 ? "removed"
                                               : "changed";

        json_array_append_new(
            lists,
            json_pack("{s:s,s:s,s:o,s:o,s:I,s:I}", "name", c->name, "change", what, "entries_from",
                      c->entries_from < 0 ? json_null() : json_integer(c->entries_from),
                      "entries_to", c->entries_to < 0 ? json_null() : json_integer(c->entries_to),
                      "added", (json_int_t)c->added, "removed", (json_int_t)c->removed));
    }
    free(lc);
    return wa_reply_json(r, 200,
                         json_pack("{s:o,s:o,s:o,s:o}", "from", version_json(&va), "to",
                                   version_json(&vb), "changes", changes, "lists", lists));
}

/* ---- rollback ---- */

enum MHD_Result wa_versions_rollback(struct wa_req *r)
{
    struct store *st = wa_store(r);
    struct store_version info;
    struct store_rule *rules;
    struct store_policy_list *lists = NULL;
    struct wa_change ch = {.kind = WA_RULES_RESTORE};
    size_t n, nlists = 0;
    char err[256];
    int rc;
    bool ok;

    if (!st || version_load(r, st, r->param, NULL, &info, &rules, &n) < 0)
        return MHD_YES;
    /* The lists too, when the version kept them: its `list NAME` rules then match what
     * they matched. A version from before lists were kept restores its rules only. */
    rc = store_version_lists(st, info.version, &lists, &nlists, err, sizeof(err));
    if (rc < 0) {
        store_rules_free(rules, n);
        return wa_reply_error(r, 500, NULL, "%s", err);
    }
    ch.version = info.version;
    ch.rules = rules;
    ch.nitems = n;
    ch.lists = lists;
    ch.nlists = nlists;
    ch.with_lists = rc == 0;
    ok = wa_change_apply(r, &ch, 1, NULL, 409, NULL);
    store_rules_free(rules, n);
    store_policy_lists_free(lists, nlists);
    if (!ok)
        return MHD_YES;
    return wa_reply_json(r, 200,
                         json_pack("{s:I,s:I,s:i,s:o}", "version",
                                   (json_int_t)store_policy_version(st), "restored",
                                   (json_int_t)info.version, "rules", (int)n, "lists",
                                   rc == 0 ? json_integer((json_int_t)nlists) : json_null()));
}

/* ---- why ---- */

/* The rule parser's answer, not a second reading of the text: a quoted "inspect", or one
 * after a line break, is an inspect rule too. */
static bool is_inspect_rule(const char *text)
{
    struct acl_rule rule;
    char msg[160];
    bool inspect =
        acl_rule_parse(text, false, &rule, msg, sizeof(msg)) == 0 && rule.action == ACL_INSPECT;
    acl_rule_clear(&rule);
    return inspect;
}

enum MHD_Result wa_versions_why(struct wa_req *r)
{
    struct store *st = wa_store(r);
    struct store_log_filter f = {.decision = -1, .limit = 1};
    struct store_log_row *row = NULL;
    struct store_version info;
    struct store_rule *rules = NULL;
    size_t n = 0, nrows;
    int64_t id;
    char err[256];
    json_t *o, *trace, *rule = json_null();
    int rc = 1;

    if (!st)
        return MHD_YES;
    if (parse_id(r->param, &id) < 0 || id <= 0)
        return wa_reply_error(r, 400, NULL, "not a log id: %.40s", r->param);
    f.before_id = id + 1;
    if (store_log_search(st, &f, &row, &nrows, err, sizeof(err)) < 0)
        return wa_reply_error(r, 500, NULL, "%s", err);
    if (nrows == 0 || row[0].id != id) {
        free(row);
        return wa_reply_error(r, 404, NULL, "log row %lld: no such row", (long long)id);
    }
    const struct store_access *a = &row[0].a;
    if (a->policy_version > 0)
        rc = store_version_get(st, a->policy_version, &info, &rules, &n, err, sizeof(err));
    if (rc < 0) {
        free(row);
        return wa_reply_error(r, 500, NULL, "%s", err);
    }
    /* First match wins: every enabled rule above the deciding one did not decide it. */
    trace = json_array();
    for (size_t i = 0; rc == 0 && i < n && i < TRACE_MAX; i++) {
        bool decided = rules[i].id == a->rule_id;
        json_t *t = rule_json(&rules[i]);

        /* A report rule only marks the request, which went on: it decided nothing. An
         * inspect rule decides whether a tunnel is decrypted, never whether it passes. */
        json_object_set_new(t, "result",
                            json_string(decided && a->decision == STORE_REPORT ? "reported"
                                        : decided                              ? "decided"
                                        : !rules[i].enabled                    ? "disabled"
                                        : is_inspect_rule(rules[i].text)       ? "inspect rule"
                                                                               : "did not decide"));
        json_array_append_new(trace, t);
        if (decided) {
            json_decref(rule);
            rule = rule_json(&rules[i]);
            break;
        }
    }
    o = json_pack("{s:I,s:I,s:s,s:o,s:s,s:s,s:o,s:i,s:o,s:i,s:s,s:i,s:I,s:o,s:o,s:o,s:b}", "id",
                  (json_int_t)id, "time_ms", (json_int_t)a->time_ms, "client", a->client, "user",
                  wa_json_text(a->user), "method", a->method, "scheme", a->scheme, "host",
                  wa_json_text(a->host), "port", (int)a->port, "path", wa_json_text(a->path),
                  "status", (int)a->status, "decision",
                  store_decision_str((enum store_decision)a->decision), "rule_id", a->rule_id,
                  "policy_version", (json_int_t)a->policy_version, "version",
                  rc == 0 ? version_json(&info) : json_null(), "rule", rule, "trace", trace,
                  "trace_truncated", rc == 0 && n > TRACE_MAX && json_is_null(rule));
    /* The retention job prunes only versions older than every logged request, so this is
     * a row that outlived its version some other way (a log kept longer, an old node). */
    json_object_set_new(o, "version_pruned", json_boolean(a->policy_version > 0 && rc == 1));
    store_rules_free(rules, n);
    free(row);
    return wa_reply_json(r, 200, o);
}
