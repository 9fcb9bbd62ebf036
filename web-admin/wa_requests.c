/* web-admin access requests. See wa_requests.h. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "web-admin/wa_change.h"
#include "web-admin/wa_requests.h"
#include "web-admin/wa_rules.h"

#define NOTE_MAX 500 /* bytes of an admin's note or reason */

static json_t *request_json(const struct store_request *q)
{
    return json_pack("{s:I,s:I,s:s,s:o,s:o,s:i,s:i,s:o,s:o,s:s,s:I,s:o,s:o,s:i}", "id",
                     (json_int_t)q->id, "time_ms", (json_int_t)q->time_ms, "client", q->client,
                     "user", wa_json_text(q->user), "host", wa_json_text(q->host), "port",
                     (int)q->port, "rule_id", q->rule_id, "reason", wa_json_text(q->reason), "name",
                     wa_json_text(q->name), "status", q->status, "decided_ms",
                     (json_int_t)q->decided_ms, "decided_by", wa_json_text(q->decided_by), "note",
                     wa_json_text(q->note), "granted_rule_id", q->granted_rule_id);
}

enum MHD_Result wa_requests_list(struct wa_req *r)
{
    const char *which = wa_query(r, "status");
    struct store_request *rows;
    struct store *st;
    int64_t before = 0, limit;
    size_t n;
    char err[256];
    json_t *arr, *o;

    if (which && strcmp(which, "pending") && strcmp(which, "all"))
        return wa_reply_error(r, 400, "status", "status is pending or all");
    if (wa_query_int(r, "before", &before) < 0)
        return MHD_YES;
    limit = wa_query_limit(r, 100);
    if (limit < 0)
        return MHD_YES;
    st = wa_store(r);
    if (!st)
        return MHD_YES;
    if (store_requests_list(st, !which || !strcmp(which, "pending"), before, (size_t)limit, &rows,
                            &n, err, sizeof(err)) < 0)
        return wa_reply_error(r, 500, NULL, "%s", err);
    arr = json_array();
    for (size_t i = 0; arr && i < n; i++)
        json_array_append_new(arr, request_json(&rows[i]));
    o = json_pack("{s:o,s:I}", "rows", arr, "pending", (json_int_t)store_requests_pending(st));
    if (o)
        json_object_set_new(o, "next_before",
                            n == (size_t)limit && n > 0 ? json_integer(rows[n - 1].id)
                                                        : json_null());
    free(rows);
    return wa_reply_json(r, 200, o);
}

/* The request named by the path, pending. Returns 0, or -1 after answering. */
static int pending_request(struct wa_req *r, struct store *st, struct store_request *q)
{
    char *end, err[256];
    long long id;
    int rc;

    errno = 0;
    id = strtoll(r->param, &end, 10);
    if (errno || *end || id <= 0 || r->param[0] < '0' || r->param[0] > '9') {
        wa_reply_error(r, 400, NULL, "not a request id: %.40s", r->param);
        return -1;
    }
    rc = store_request_get(st, id, q, err, sizeof(err));
    if (rc != 0) {
        wa_reply_error(r, rc > 0 ? 404 : 500, NULL, "%s", err);
        return -1;
    }
    if (strcmp(q->status, "pending") != 0) {
        wa_reply_error(r, 409, NULL, "access request %lld was %s already", id, q->status);
        return -1;
    }
    return 0;
}

/* The lengths of access an approval offers (docs/policy.md): 0 seconds is permanent. */
static const struct {
    const char *name;
    int64_t seconds;
} durations[] = {{"1h", 3600}, {"1d", 86400}, {"1w", 7 * 86400}, {"permanent", 0}};

/* body[key] as a string of at most NOTE_MAX bytes ("" when absent). NULL after answering. */
static const char *note_of(struct wa_req *r, json_t *body, const char *key)
{
    json_t *v = json_object_get(body, key);

    if (!v || json_is_null(v))
        return "";
    if (!json_is_string(v) || strlen(json_string_value(v)) > NOTE_MAX) {
        wa_reply_error(r, 400, key, "%s: a text of at most %d bytes", key, NOTE_MAX);
        return NULL;
    }
    return json_string_value(v);
}

enum MHD_Result wa_requests_approve(struct wa_req *r)
{
    struct store *st = wa_store(r);
    struct store_request q;
    struct wa_change ch[2] = {{.kind = WA_RULE_ADD, .before = -1}, {.kind = WA_REQUEST_GRANT}};
    json_t *body, *rule;
    const char *scope, *note, *dur;
    char text[400], comment[600], until[40] = "";
    int64_t seconds = -1;
    int id = 0;

    if (!st || pending_request(r, st, &q) < 0)
        return MHD_YES;
    body = r->len ? wa_body_json(r) : json_object();
    if (!body)
        return MHD_YES;
    scope = json_string_value(json_object_get(body, "scope"));
    note = note_of(r, body, "note");
    if (!note) {
        json_decref(body);
        return MHD_YES;
    }
    dur = json_string_value(json_object_get(body, "for"));
    for (size_t i = 0; i < sizeof(durations) / sizeof(durations[0]); i++)
        if (!strcmp(dur ? dur : "permanent", durations[i].name))
            seconds = durations[i].seconds;
    if (seconds < 0) {
        json_decref(body);
        return wa_reply_error(r, 400, "for", "for is 1h, 1d, 1w or permanent");
    }
    if (seconds > 0) {
        /* The rule's own `expires` condition, in UTC: it stops matching then, without a
         * reload, and is deleted after the retention of expired rules. */
        time_t at = time(NULL) + (time_t)seconds;
        struct tm tm;

        gmtime_r(&at, &tm);
        strftime(until, sizeof(until), " expires %Y-%m-%dT%H:%M:%SZ", &tm);
    }
    if (!scope || !*scope)
        scope = q.user[0] ? "user" : "client";
    if (strcmp(scope, "client") && strcmp(scope, "user")) {
        json_decref(body);
        return wa_reply_error(r, 400, "scope", "scope is client or user");
    }
    if (!strcmp(scope, "user") && !q.user[0]) {
        json_decref(body);
        return wa_reply_error(r, 400, "scope", "the request came from no proxy user");
    }
    /* An allow rule above everything, for this host and only this client (or user). */
    snprintf(text, sizeof(text), "allow domain %s %s %s%s", q.host,
             !strcmp(scope, "user") ? "users" : "clients",
             !strcmp(scope, "user") ? q.user : q.client, until);
    snprintf(comment, sizeof(comment), "access request %lld%s%s", (long long)q.id,
             note[0] ? ": " : "", note);
    ch[0].text = text;
    ch[0].comment = comment;
    /* The rule and the request's approval are one change: of two approvals at once, the one
     * that finds the request decided adds no rule either (409). */
    ch[1].version = q.id;
    ch[1].comment = note;
    if (!wa_change_apply(r, ch, 2, &id, 409, NULL)) {
        json_decref(body);
        return MHD_YES;
    }
    json_decref(body);
    rule = wa_rules_json_of(st, id);
    return wa_reply_json(r, 200,
                         json_pack("{s:I,s:s,s:o}", "id", (json_int_t)q.id, "status", "approved",
                                   "rule", rule ? rule : json_null()));
}

enum MHD_Result wa_requests_deny(struct wa_req *r)
{
    struct store *st = wa_store(r);
    struct store_request q;
    const char *reason;
    json_t *body;
    char err[256];

    if (!st || pending_request(r, st, &q) < 0)
        return MHD_YES;
    body = r->len ? wa_body_json(r) : json_object();
    if (!body)
        return MHD_YES;
    reason = note_of(r, body, "reason");
    if (!reason) {
        json_decref(body);
        return MHD_YES;
    }
    int rc = store_request_decide(st, q.id, false, reason, 0, r->actor, err, sizeof(err));
    if (rc != 0) {
        json_decref(body);
        return wa_reply_error(r, rc > 0 ? 409 : 500, NULL, "%s", err);
    }
    json_decref(body);
    return wa_reply_json(r, 200,
                         json_pack("{s:I,s:s}", "id", (json_int_t)q.id, "status", "denied"));
}
