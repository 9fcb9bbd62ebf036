/* proxyctl verbs of list subscriptions: lists subscribe, unsubscribe, subscriptions and
 * refresh (the API's /api/subscriptions). proxyd does the fetching; these only ask.
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "proxyctl/ctl_cmd.h"
#include "proxyctl/ctl_http.h"
#include "proxyctl/ctl_table.h"

#define DEFAULT_EVERY_S 86400
/* How long `lists refresh` waits for the outcome: a download may take proxyd's
 * list-fetch-timeout (60 s by default), and others asked for may run before it. */
#define REFRESH_WAIT_S 300
#define REFRESH_POLL_MS 250

static enum ctl_status sub_request(struct ctl_ctx *ctx, const char *method, const char *name,
                                   const char *suffix, const json_t *body, json_t **out)
{
    char esc[256], path[400], what[300];

    if (!ctl_path_escape(name, esc, sizeof(esc)))
        return ctl_usage(ctx, "list name too long");
    snprintf(path, sizeof(path), "/api/subscriptions/%s%s", esc, suffix);
    snprintf(what, sizeof(what), "subscription %s", name);
    return ctl_api(ctx, method, path, body, out, what);
}

/* "2h", "1d", "90s": the interval as the user would write it. */
static const char *every_str(long long s, char *buf, size_t len)
{
    if (s % 86400 == 0)
        snprintf(buf, len, "%lldd", s / 86400);
    else if (s % 3600 == 0)
        snprintf(buf, len, "%lldh", s / 3600);
    else if (s % 60 == 0)
        snprintf(buf, len, "%lldm", s / 60);
    else
        snprintf(buf, len, "%llds", s);
    return buf;
}

/* One line of how the last fetch went. */
static void outcome_print(const json_t *s)
{
    const char *error = ctl_json_str(s, "error");
    long long status = ctl_json_num(s, "status");

    if (ctl_json_num(s, "checked_ms") == 0)
        printf("list %s: not fetched yet\n", ctl_json_str(s, "name"));
    else if (*error)
        printf("list %s: %s\n", ctl_json_str(s, "name"), error);
    else if (status == 304)
        printf("list %s: not modified (%lld entries)\n", ctl_json_str(s, "name"),
               ctl_json_num(s, "entries"));
    else
        printf("list %s: %lld entries\n", ctl_json_str(s, "name"), ctl_json_num(s, "entries"));
}

enum ctl_status ctl_cmd_lists_subscribe(struct ctl_ctx *ctx, const struct ctl_call *call)
{
    const struct ctl_value *every = ctl_call_opt(call, "--every");
    const struct ctl_value *replace = ctl_call_opt(call, "--replace");
    long long every_s = every && every->set ? every->num / 1000 : DEFAULT_EVERY_S;
    json_t *body, *out = NULL;
    enum ctl_status st;
    char buf[32];

    if (every && every->set && every->num % 1000 != 0)
        return ctl_usage(ctx, "--every takes whole seconds");
    body = json_pack("{s:s,s:I}", "url", call->words[1], "every_s", (json_int_t)every_s);
    if (!body)
        return ctl_fail(ctx, CTL_REFUSED, "out of memory");
    st = sub_request(ctx, "PUT", call->words[0], replace && replace->set ? "?replace=1" : "", body,
                     &out);
    json_decref(body);
    if (st != CTL_OK) {
        if (strstr(ctx->err, "replace=1")) /* say it in proxyctl's words */
            snprintf(ctx->err, sizeof(ctx->err),
                     "list %s exists: each fetch would replace its entries; nothing changed "
                     "(subscribe with --replace to do so)",
                     call->words[0]);
        return st;
    }
    return ctl_print_done(
        ctx, out,
        "subscribed list %s to %s every %s; the first fetch follows within a second "
        "(proxyctl lists subscriptions)\n",
        call->words[0], call->words[1], every_str(every_s, buf, sizeof(buf)));
}

enum ctl_status ctl_cmd_lists_unsubscribe(struct ctl_ctx *ctx, const struct ctl_call *call)
{
    json_t *out = NULL;
    enum ctl_status st = sub_request(ctx, "DELETE", call->words[0], "", NULL, &out);

    if (st != CTL_OK)
        return st;
    return ctl_print_done(ctx, out, "list %s is no longer fetched (the list stays)\n",
                          call->words[0]);
}

/* The subscription `name` of GET /api/subscriptions (a new reference into *all, which the
 * caller frees), or NULL with ctx->err when it is gone or the API failed (*st says how). */
static json_t *sub_find(struct ctl_ctx *ctx, const char *name, json_t **all, enum ctl_status *st)
{
    const json_t *s;
    size_t i;

    *all = NULL;
    *st = ctl_api(ctx, "GET", "/api/subscriptions", NULL, all, "subscriptions");
    if (*st != CTL_OK)
        return NULL;
    json_array_foreach(json_object_get(*all, "subscriptions"), i, s)
    {
        if (strcmp(ctl_json_str(s, "name"), name) == 0)
            return (json_t *)s;
    }
    *st = CTL_REFUSED;
    snprintf(ctx->err, sizeof(ctx->err), "list %s has no subscription (any more)", name);
    return NULL;
}

/* Asks proxyd to fetch now (answered at once), then polls the subscription until its fetch
 * is recorded, for REFRESH_WAIT_S at most. */
enum ctl_status ctl_cmd_lists_refresh(struct ctl_ctx *ctx, const struct ctl_call *call)
{
    json_t *out = NULL, *all = NULL;
    const json_t *s;
    enum ctl_status st = sub_request(ctx, "POST", call->words[0], "/refresh", NULL, &out);
    struct timespec pause = {0, REFRESH_POLL_MS * 1000000L};
    long long checked_before;

    if (st != CTL_OK)
        return st;
    checked_before = ctl_json_num(out, "checked_ms");
    json_decref(out);
    out = NULL;
    for (int waited_ms = 0;; waited_ms += REFRESH_POLL_MS) {
        s = sub_find(ctx, call->words[0], &all, &st);
        if (!s) {
            json_decref(all);
            return st;
        }
        if (!json_is_true(json_object_get(s, "fetching")))
            break;
        json_decref(all);
        all = NULL;
        if (waited_ms >= REFRESH_WAIT_S * 1000)
            return ctl_fail(ctx, CTL_REFUSED,
                            "list %s: still fetching after %d s (proxyctl lists subscriptions "
                            "shows the outcome once it is recorded)",
                            call->words[0], REFRESH_WAIT_S);
        nanosleep(&pause, NULL);
    }
    if (ctl_json_num(s, "checked_ms") == checked_before) {
        json_decref(all);
        return ctl_fail(ctx, CTL_REFUSED,
                        "list %s: the fetch ended but its outcome was not recorded (the "
                        "database did not take it)",
                        call->words[0]);
    }
    out = json_incref((json_t *)s);
    json_decref(all);
    if (ctx->json)
        ctl_print_json(out);
    else
        outcome_print(out);
    /* A fetch that kept the old list did not do what was asked. */
    st = *ctl_json_str(out, "error") ? CTL_REFUSED : CTL_OK;
    if (st != CTL_OK)
        snprintf(ctx->err, sizeof(ctx->err), "list %s: %s", call->words[0],
                 ctl_json_str(out, "error"));
    json_decref(out);
    return st;
}

enum ctl_status ctl_cmd_lists_subscriptions(struct ctl_ctx *ctx, const struct ctl_call *call)
{
    static const struct ctl_column cols[] = {{"name", false, false},       {"every", true, false},
                                             {"last fetch", false, false}, {"status", true, false},
                                             {"entries", true, false},     {"url", false, true},
                                             {"last error", false, true}};
    json_t *out;
    enum ctl_status st = ctl_api_show(ctx, "GET", "/api/subscriptions", NULL, &out, NULL);
    struct ctl_table *t;
    const json_t *s;
    size_t i;

    (void)call;
    if (!out)
        return st;
    t = ctl_table_new(cols, sizeof(cols) / sizeof(cols[0]));
    if (!t) {
        json_decref(out);
        return ctl_fail(ctx, CTL_REFUSED, "out of memory");
    }
    json_array_foreach(json_object_get(out, "subscriptions"), i, s)
    {
        char every[32], when[32], status[16], entries[24];
        long long checked = ctl_json_num(s, "checked_ms");

        every_str(ctl_json_num(s, "every_s"), every, sizeof(every));
        if (checked)
            ctl_time_str(checked, when, sizeof(when));
        else
            snprintf(when, sizeof(when), "never");
        snprintf(status, sizeof(status), "%lld", ctl_json_num(s, "status"));
        if (ctl_json_num(s, "entries") >= 0)
            snprintf(entries, sizeof(entries), "%lld", ctl_json_num(s, "entries"));
        else
            snprintf(entries, sizeof(entries), "-");
        const char *cells[] = {ctl_json_str(s, "name"), every,   when,
                               checked ? status : "-",  entries, ctl_json_str(s, "url"),
                               ctl_json_str(s, "error")};
        ctl_table_add(t, cells);
    }
    ctl_table_print(t, "no subscriptions (add one with: proxyctl lists subscribe NAME URL)");
    json_decref(out);
    return CTL_OK;
}
