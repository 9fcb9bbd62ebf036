/* web-admin policy endpoints: rules (CRUD, move), block/allow/unblock shortcuts, policy
 * import and export, "test a URL" and reload.
 *
 * Every change follows one pattern under policy_mu: validate, commit to the store, ask
 * proxyd to compile it (the policy hook), and if proxyd refuses, undo the commit so the
 * database never holds a policy that is not in force.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "web-admin/wa_internal.h"

#define RULE_TEXT_MAX 8192

json_t *wa_rule_json(const struct store_rule *rule)
{
    /* Text that is not UTF-8 (stored before it was refused at input) is shown escaped: a
     * rule in force must never be missing from the listing. */
    return json_pack("{s:i,s:i,s:b,s:o,s:o,s:I,s:I}", "id", rule->id, "position", rule->position,
                     "enabled", rule->enabled, "text", wa_json_text(rule->text ? rule->text : ""),
                     "comment", wa_json_text(rule->comment ? rule->comment : ""), "hits",
                     (json_int_t)rule->hits, "undecided", (json_int_t)rule->undecided);
}

static void rule_clear(struct store_rule *rule)
{
    free(rule->text);
    free(rule->comment);
    memset(rule, 0, sizeof(*rule));
}

/* The rules as a JSON array, or NULL with *bad_id naming a rule that could not be encoded:
 * a listing either holds every rule or fails, never leaves one out. */
static json_t *rules_json(struct store_rule *rules, size_t n, int *bad_id)
{
    json_t *arr = json_array();

    *bad_id = 0;
    for (size_t i = 0; arr && i < n; i++) {
        if (json_array_append_new(arr, wa_rule_json(&rules[i])) < 0) {
            *bad_id = rules[i].id;
            json_decref(arr);
            return NULL;
        }
    }
    return arr;
}

/* Answers with the whole rule list ({"rules":[...],"version":N}). */
static enum MHD_Result reply_rules(struct wa_req *r, struct store *st)
{
    struct store_rule *rules;
    size_t n;
    char err[256];
    json_t *o, *arr;
    int bad_id;

    if (store_rules_list(st, &rules, &n, err, sizeof(err)) < 0)
        return wa_reply_error(r, 500, NULL, "%s", err);
    arr = rules_json(rules, n, &bad_id);
    store_rules_free(rules, n);
    if (!arr)
        return wa_reply_error(r, 500, NULL, "cannot encode rule %d as JSON", bad_id);
    o = json_pack("{s:o,s:I}", "rules", arr, "version", (json_int_t)store_policy_version(st));
    return wa_reply_json(r, 200, o);
}

static enum MHD_Result reply_rule(struct wa_req *r, struct store *st, unsigned status, int id)
{
    struct store_rule rule;
    char err[256];
    json_t *o;

    if (store_rule_get(st, id, &rule, err, sizeof(err)) < 0)
        return wa_reply_error(r, 500, NULL, "%s", err);
    o = json_pack("{s:o}", "rule", wa_rule_json(&rule));
    rule_clear(&rule);
    return wa_reply_json(r, status, o);
}

/* One line of printable text, then the policy parser's verdict. 0, or -1 after 400. */
static int check_text(struct wa_req *r, const char *text)
{
    struct acl_error aerr;

    if (!*text)
        return wa_reply_error(r, 400, "text", "rule text is empty"), -1;
    if (strlen(text) > RULE_TEXT_MAX)
        return wa_reply_error(r, 400, "text", "rule text longer than %d bytes", RULE_TEXT_MAX), -1;
    for (const unsigned char *p = (const unsigned char *)text; *p; p++)
        if (*p < 0x20 || *p == 0x7f)
            return wa_reply_error(r, 400, "text", "rule text must be one line"), -1;
    memset(&aerr, 0, sizeof(aerr));
    if (acl_rule_check(text, &aerr) < 0)
        return wa_reply_error(r, 400, "text", "%s", aerr.msg[0] ? aerr.msg : "invalid rule"), -1;
    return 0;
}

static bool rule_exists(struct store *st, int id)
{
    struct store_rule rule;
    char err[256];

    if (store_rule_get(st, id, &rule, err, sizeof(err)) < 0)
        return false;
    rule_clear(&rule);
    return true;
}

/* Id of the rule after `id` in priority order (0 if last or absent): where it goes back. */
static int successor_of(struct store_rule *rules, size_t n, int id)
{
    for (size_t i = 0; i + 1 < n; i++)
        if (rules[i].id == id)
            return rules[i + 1].id;
    return 0;
}

/* Re-adds old[i] for every gone[i], each before its old successor, so positions come back
 * (ids cannot). Walks backwards so each successor already exists. */
static void restore_deleted(struct store *st, const struct store_rule *old, size_t n,
                            const bool *gone, const char *actor)
{
    char err[256];
    int next_id = 0;

    for (size_t i = n; i-- > 0;) {
        int id;

        if (!gone[i]) {
            next_id = old[i].id;
            continue;
        }
        if (store_rule_add(st, old[i].text, old[i].comment, next_id, actor, &id, err, sizeof(err)) <
            0)
            continue;
        if (!old[i].enabled)
            store_rule_update(st, id, NULL, NULL, 0, actor, err, sizeof(err));
        next_id = id;
    }
}

/* Validates, commits, runs the hook, undoes on refusal. Answers 201 with the rule. */
static enum MHD_Result add_rule(struct wa_req *r, const char *text, const char *comment, int before,
                                const char *field)
{
    struct wa_server *srv = r->srv;
    struct store *st;
    char err[512];
    int id;

    if (check_text(r, text) < 0)
        return MHD_YES;
    st = wa_store(r);
    if (!st)
        return MHD_YES;
    if (before > 0 && !rule_exists(st, before))
        return wa_reply_error(r, 400, "before", "no rule %d", before);
    pthread_mutex_lock(&srv->policy_mu);
    if (store_rule_add(st, text, comment ? comment : "", before, r->actor, &id, err, sizeof(err)) <
        0) {
        pthread_mutex_unlock(&srv->policy_mu);
        return wa_reply_error(r, 500, NULL, "%s", err);
    }
    if (wa_policy_hook(srv, err, sizeof(err)) < 0) {
        char uerr[256];
        store_rule_delete(st, id, r->actor, uerr, sizeof(uerr));
        pthread_mutex_unlock(&srv->policy_mu);
        return wa_reply_error(r, 400, field, "%s", err);
    }
    pthread_mutex_unlock(&srv->policy_mu);
    return reply_rule(r, st, 201, id);
}

static enum MHD_Result rules_post(struct wa_req *r)
{
    json_t *body = wa_body_json(r), *jt, *jc, *jb;
    enum MHD_Result ret;

    if (!body)
        return MHD_YES;
    jt = json_object_get(body, "text");
    jc = json_object_get(body, "comment");
    jb = json_object_get(body, "before");
    if (!json_is_string(jt))
        ret = wa_reply_error(r, 400, "text", "text (a string) is required");
    else if (jc && !json_is_string(jc) && !json_is_null(jc))
        ret = wa_reply_error(r, 400, "comment", "comment must be a string");
    else if (jb && !json_is_integer(jb) && !json_is_null(jb))
        ret = wa_reply_error(r, 400, "before", "before must be a rule id, -1 or 0");
    else
        ret = add_rule(r, json_string_value(jt), json_string_value(jc),
                       jb ? (int)json_integer_value(jb) : 0, "text");
    json_decref(body);
    return ret;
}

static enum MHD_Result rule_patch(struct wa_req *r, struct store *st, struct store_rule *old)
{
    struct wa_server *srv = r->srv;
    json_t *body = wa_body_json(r), *jt, *jc, *je;
    const char *text = NULL, *comment = NULL;
    int enabled = -1;
    char err[512], uerr[256];

    if (!body)
        return MHD_YES;
    jt = json_object_get(body, "text");
    jc = json_object_get(body, "comment");
    je = json_object_get(body, "enabled");
    if (jt && !json_is_string(jt)) {
        json_decref(body);
        return wa_reply_error(r, 400, "text", "text must be a string");
    }
    if (jc && !json_is_string(jc)) {
        json_decref(body);
        return wa_reply_error(r, 400, "comment", "comment must be a string");
    }
    if (je && !json_is_boolean(je)) {
        json_decref(body);
        return wa_reply_error(r, 400, "enabled", "enabled must be true or false");
    }
    text = json_string_value(jt);
    comment = json_string_value(jc);
    if (je)
        enabled = json_is_true(je);
    if (text && check_text(r, text) < 0) {
        json_decref(body);
        return MHD_YES;
    }
    pthread_mutex_lock(&srv->policy_mu);
    if (store_rule_update(st, old->id, text, comment, enabled, r->actor, err, sizeof(err)) < 0) {
        pthread_mutex_unlock(&srv->policy_mu);
        json_decref(body);
        return wa_reply_error(r, 500, NULL, "%s", err);
    }
    json_decref(body);
    if (wa_policy_hook(srv, err, sizeof(err)) < 0) {
        store_rule_update(st, old->id, old->text, old->comment, old->enabled, r->actor, uerr,
                          sizeof(uerr));
        pthread_mutex_unlock(&srv->policy_mu);
        return wa_reply_error(r, 400, text || !je ? "text" : "enabled", "%s", err);
    }
    pthread_mutex_unlock(&srv->policy_mu);
    return reply_rule(r, st, 200, old->id);
}

static enum MHD_Result rule_delete(struct wa_req *r, struct store *st, int id)
{
    struct wa_server *srv = r->srv;
    struct store_rule *rules;
    size_t n;
    bool *gone;
    char err[512];

    if (store_rules_list(st, &rules, &n, err, sizeof(err)) < 0)
        return wa_reply_error(r, 500, NULL, "%s", err);
    gone = calloc(n ? n : 1, sizeof(*gone));
    if (!gone) {
        store_rules_free(rules, n);
        return wa_reply_error(r, 500, NULL, "out of memory");
    }
    for (size_t i = 0; i < n; i++)
        gone[i] = rules[i].id == id;
    pthread_mutex_lock(&srv->policy_mu);
    if (store_rule_delete(st, id, r->actor, err, sizeof(err)) < 0) {
        pthread_mutex_unlock(&srv->policy_mu);
        store_rules_free(rules, n);
        free(gone);
        return wa_reply_error(r, 500, NULL, "%s", err);
    }
    if (wa_policy_hook(srv, err, sizeof(err)) < 0) {
        restore_deleted(st, rules, n, gone, r->actor);
        pthread_mutex_unlock(&srv->policy_mu);
        store_rules_free(rules, n);
        free(gone);
        return wa_reply_error(r, 409, NULL, "%s", err);
    }
    pthread_mutex_unlock(&srv->policy_mu);
    store_rules_free(rules, n);
    free(gone);
    return wa_reply_json(r, 200, json_pack("{s:i}", "deleted", id));
}

static enum MHD_Result rule_move(struct wa_req *r, struct store *st, int id)
{
    struct wa_server *srv = r->srv;
    struct store_rule *rules;
    size_t n;
    json_t *body, *jb;
    int before, back;
    char err[512];

    body = wa_body_json(r);
    if (!body)
        return MHD_YES;
    jb = json_object_get(body, "before");
    if (!json_is_integer(jb)) {
        json_decref(body);
        return wa_reply_error(r, 400, "before",
                              "before (a rule id, 0 = end, -1 = top) is "
                              "required");
    }
    before = (int)json_integer_value(jb);
    json_decref(body);
    if (store_rules_list(st, &rules, &n, err, sizeof(err)) < 0)
        return wa_reply_error(r, 500, NULL, "%s", err);
    if (before ==
        -1) /* the store knows "before a rule" and "at the end": top is before the first */
        before = n > 0 ? rules[0].id : 0;
    if (before > 0 && !rule_exists(st, before)) {
        store_rules_free(rules, n);
        return wa_reply_error(r, 400, "before", "no rule %d", before);
    }
    if (before < 0) {
        store_rules_free(rules, n);
        return wa_reply_error(r, 400, "before", "before must be a rule id, 0 or -1");
    }
    back = successor_of(rules, n, id);
    store_rules_free(rules, n);
    if (before == id || before == back)
        return reply_rules(r, st); /* already there */
    pthread_mutex_lock(&srv->policy_mu);
    if (store_rule_move(st, id, before, r->actor, err, sizeof(err)) < 0) {
        pthread_mutex_unlock(&srv->policy_mu);
        return wa_reply_error(r, 500, NULL, "%s", err);
    }
    if (wa_policy_hook(srv, err, sizeof(err)) < 0) {
        char uerr[256];
        store_rule_move(st, id, back, r->actor, uerr, sizeof(uerr));
        pthread_mutex_unlock(&srv->policy_mu);
        return wa_reply_error(r, 409, NULL, "%s", err);
    }
    pthread_mutex_unlock(&srv->policy_mu);
    return reply_rules(r, st);
}

/* rest: "" or "/ID" or "/ID/move" */
enum MHD_Result wa_api_rules(struct wa_req *r, const char *rest)
{
    struct store *st;
    struct store_rule rule;
    enum MHD_Result ret;
    char err[256], *end;
    long id;
    bool get = !strcmp(r->method, "GET") || !strcmp(r->method, "HEAD");

    if (!*rest || !strcmp(rest, "/")) {
        if (!get && strcmp(r->method, "POST"))
            return wa_reply_error(r, 405, NULL, "method %s not allowed here", r->method);
        if (!get)
            return rules_post(r);
        st = wa_store(r);
        return st ? reply_rules(r, st) : MHD_YES;
    }
    if (!strcmp(rest, "/check")) {
        json_t *body;
        const char *text;

        if (strcmp(r->method, "POST"))
            return wa_reply_error(r, 405, NULL, "use POST");
        body = wa_body_json(r);
        if (!body)
            return MHD_YES;
        text = json_string_value(json_object_get(body, "text"));
        if (!text)
            ret = wa_reply_error(r, 400, "text", "text (a string) is required");
        else if (check_text(r, text) < 0)
            ret = MHD_YES;
        else
            ret = wa_reply_json(r, 200, json_pack("{s:b}", "ok", 1));
        json_decref(body);
        return ret;
    }
    id = strtol(rest + 1, &end, 10);
    if (end == rest + 1 || id <= 0 || id > INT32_MAX || (*end && strcmp(end, "/move")))
        return wa_reply_error(r, 404, NULL, "no such endpoint");
    st = wa_store(r);
    if (!st)
        return MHD_YES;
    if (store_rule_get(st, (int)id, &rule, err, sizeof(err)) < 0)
        return wa_reply_error(r, 404, NULL, "no rule %ld", id);
    if (*end) {
        ret = strcmp(r->method, "POST") ? wa_reply_error(r, 405, NULL, "use POST")
                                        : rule_move(r, st, (int)id);
    } else if (get) {
        json_t *o = json_pack("{s:o}", "rule", wa_rule_json(&rule));
        ret = wa_reply_json(r, 200, o);
    } else if (!strcmp(r->method, "PATCH")) {
        ret = rule_patch(r, st, &rule);
    } else if (!strcmp(r->method, "DELETE")) {
        ret = rule_delete(r, st, (int)id);
    } else {
        ret = wa_reply_error(r, 405, NULL, "method %s not allowed here", r->method);
    }
    rule_clear(&rule);
    return ret;
}

/* ---- block, allow, unblock ---- */

/* A domain, or a URL whose host is taken, in canonical form (acl_host_parse, as rules and
 * requests are), without a leading "*.". 0, or -1 if it is not a host. */
static int domain_norm(const char *in, char *out, size_t outlen)
{
    const char *s = in, *e, *at, *p;
    struct acl_host h;
    const char *why;

    while (isspace((unsigned char)*s))
        s++;
    p = strstr(s, "://");
    if (p)
        s = p + 3;
    e = s + strcspn(s, "/?#");
    while (e > s && isspace((unsigned char)e[-1]))
        e--;
    at = memchr(s, '@', (size_t)(e - s));
    while (at) { /* userinfo: keep what follows the last '@' */
        s = at + 1;
        at = memchr(s, '@', (size_t)(e - s));
    }
    if (*s == '[') { /* [v6] or [v6]:port */
        p = memchr(s, ']', (size_t)(e - s));
        if (p)
            e = p + 1;
    } else if ((p = memchr(s, ':', (size_t)(e - s))) && !memchr(p + 1, ':', (size_t)(e - p - 1))) {
        e = p; /* host:port; more than one ':' is a bare IPv6 address */
    }
    if (e - s >= 2 && s[0] == '*' && s[1] == '.')
        s += 2;
    if (acl_host_parse(s, (size_t)(e - s), &h, &why) != 0 || h.len >= outlen)
        return -1;
    memcpy(out, h.text, (size_t)h.len + 1);
    return 0;
}

static const char *body_domain(struct wa_req *r, json_t **body, char *dom, size_t domlen)
{
    const char *d;

    *body = wa_body_json(r);
    if (!*body)
        return NULL;
    d = json_string_value(json_object_get(*body, "domain"));
    if (!d) {
        wa_reply_error(r, 400, "domain", "domain (a string) is required");
        return NULL;
    }
    if (domain_norm(d, dom, domlen) < 0) {
        wa_reply_error(r, 400, "domain", "not a domain name: %.200s", d);
        return NULL;
    }
    return dom;
}

enum MHD_Result wa_api_block(struct wa_req *r, const char *action)
{
    char dom[256], text[300];
    json_t *body = NULL;
    enum MHD_Result ret;

    if (!body_domain(r, &body, dom, sizeof(dom))) {
        json_decref(body);
        return MHD_YES;
    }
    snprintf(text, sizeof(text), "%s domain %s", action, dom);
    ret = add_rule(r, text, json_string_value(json_object_get(body, "comment")), -1, "domain");
    json_decref(body);
    return ret;
}

/* True if text is exactly "deny domain <dom>", up to case, spacing and a trailing dot. */
static bool is_deny_of(const char *text, const char *dom)
{
    char buf[RULE_TEXT_MAX + 1], *tok[4], *save = NULL, norm[256];
    size_t n = 0;

    snprintf(buf, sizeof(buf), "%s", text);
    for (char *t = strtok_r(buf, " \t", &save); t; t = strtok_r(NULL, " \t", &save)) {
        if (n == 3)
            return false;
        tok[n++] = t;
    }
    if (n != 3 || strcasecmp(tok[0], "deny") || strcasecmp(tok[1], "domain"))
        return false;
    return domain_norm(tok[2], norm, sizeof(norm)) == 0 && strcmp(norm, dom) == 0 &&
           strchr(tok[2], '/') == NULL;
}

enum MHD_Result wa_api_unblock(struct wa_req *r)
{
    struct wa_server *srv = r->srv;
    char dom[256], err[512];
    json_t *body = NULL, *ids;
    struct store_rule *rules;
    struct store *st;
    size_t n, hits = 0;
    bool *gone;

    if (!body_domain(r, &body, dom, sizeof(dom))) {
        json_decref(body);
        return MHD_YES;
    }
    json_decref(body);
    st = wa_store(r);
    if (!st)
        return MHD_YES;
    if (store_rules_list(st, &rules, &n, err, sizeof(err)) < 0)
        return wa_reply_error(r, 500, NULL, "%s", err);
    gone = calloc(n ? n : 1, sizeof(*gone));
    ids = json_array();
    if (!gone || !ids) {
        store_rules_free(rules, n);
        free(gone);
        json_decref(ids);
        return wa_reply_error(r, 500, NULL, "out of memory");
    }
    for (size_t i = 0; i < n; i++)
        if (is_deny_of(rules[i].text, dom))
            gone[i] = true, hits++;
    if (hits == 0) {
        store_rules_free(rules, n);
        free(gone);
        json_decref(ids);
        return wa_reply_error(r, 404, "domain", "no rule \"deny domain %s\"", dom);
    }
    pthread_mutex_lock(&srv->policy_mu);
    for (size_t i = 0; i < n; i++) {
        if (!gone[i])
            continue;
        if (store_rule_delete(st, rules[i].id, r->actor, err, sizeof(err)) < 0)
            gone[i] = false;
        else
            json_array_append_new(ids, json_integer(rules[i].id));
    }
    if (wa_policy_hook(srv, err, sizeof(err)) < 0) {
        restore_deleted(st, rules, n, gone, r->actor);
        pthread_mutex_unlock(&srv->policy_mu);
        store_rules_free(rules, n);
        free(gone);
        json_decref(ids);
        return wa_reply_error(r, 409, NULL, "%s", err);
    }
    pthread_mutex_unlock(&srv->policy_mu);
    store_rules_free(rules, n);
    free(gone);
    return wa_reply_json(r, 200, json_pack("{s:o}", "deleted", ids));
}

/* ---- policy import and export ---- */

/* Comments go after '#' on the rule's line: keep them on one line. */
static void one_line(char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f)
            *s = ' ';
}

static enum MHD_Result policy_export(struct wa_req *r, struct store *st)
{
    struct store_rule *rules;
    size_t n, len = 0;
    char err[256], *buf = NULL;
    FILE *f;
    enum MHD_Result ret;

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

static enum MHD_Result policy_import(struct wa_req *r, struct store *st)
{
    struct wa_server *srv = r->srv;
    struct acl_policy pol = {0};
    struct acl_error aerr;
    struct store_rule *old;
    const char **texts, **old_texts;
    size_t n_old;
    char err[512], uerr[256];

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
    if (store_rules_list(st, &old, &n_old, err, sizeof(err)) < 0) {
        acl_policy_free(&pol);
        return wa_reply_error(r, 500, NULL, "%s", err);
    }
    texts = calloc(pol.nrules ? pol.nrules : 1, sizeof(*texts));
    old_texts = calloc(n_old ? n_old : 1, sizeof(*old_texts));
    if (!texts || !old_texts) {
        free(texts);
        free(old_texts);
        acl_policy_free(&pol);
        store_rules_free(old, n_old);
        return wa_reply_error(r, 500, NULL, "out of memory");
    }
    for (size_t i = 0; i < pol.nrules; i++)
        texts[i] = pol.rules[i].text;
    for (size_t i = 0; i < n_old; i++)
        old_texts[i] = old[i].text;

    pthread_mutex_lock(&srv->policy_mu);
    if (store_rules_replace(st, texts, pol.nrules, r->actor, err, sizeof(err)) < 0) {
        pthread_mutex_unlock(&srv->policy_mu);
        free(texts);
        free(old_texts);
        acl_policy_free(&pol);
        store_rules_free(old, n_old);
        return wa_reply_error(r, 500, NULL, "%s", err);
    }
    if (wa_policy_hook(srv, err, sizeof(err)) < 0) {
        struct store_rule *now;
        size_t n_now;

        store_rules_replace(st, old_texts, n_old, r->actor, uerr, sizeof(uerr));
        /* The replace took only texts: put comments and disabled flags back by position. */
        if (store_rules_list(st, &now, &n_now, uerr, sizeof(uerr)) == 0) {
            for (size_t i = 0; i < n_now && i < n_old; i++)
                if (old[i].comment[0] || !old[i].enabled)
                    store_rule_update(st, now[i].id, NULL, old[i].comment, old[i].enabled, r->actor,
                                      uerr, sizeof(uerr));
            store_rules_free(now, n_now);
        }
        pthread_mutex_unlock(&srv->policy_mu);
        free(texts);
        free(old_texts);
        acl_policy_free(&pol);
        store_rules_free(old, n_old);
        return wa_reply_error(r, 400, "policy", "%s", err);
    }
    pthread_mutex_unlock(&srv->policy_mu);
    free(texts);
    free(old_texts);
    store_rules_free(old, n_old);
    json_t *o = json_pack("{s:i}", "rules", (int)pol.nrules);
    acl_policy_free(&pol);
    return wa_reply_json(r, 200, o);
}

enum MHD_Result wa_api_policy(struct wa_req *r)
{
    struct store *st;

    if (strcmp(r->method, "GET") && strcmp(r->method, "HEAD") && strcmp(r->method, "PUT"))
        return wa_reply_error(r, 405, NULL, "method %s not allowed here", r->method);
    st = wa_store(r);
    if (!st)
        return MHD_YES;
    return strcmp(r->method, "PUT") ? policy_export(r, st) : policy_import(r, st);
}

/* ---- test a URL ---- */

struct test_url {
    const char *scheme;
    struct acl_host host; /* canonical, as proxyd's parser makes it */
    uint16_t port;
    char *path;         /* owned, whole: path and query as the proxy would see them */
    size_t target_len;  /* the request-target a browser would send: the URL with a scheme */
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

enum MHD_Result wa_api_test(struct wa_req *r)
{
    struct acl_live *live = r->srv->opts.acl;
    json_t *body, *o, *jrule = NULL;
    const char *url, *client, *user, *method;
    struct test_url u;
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
    size_t line_len = strlen(method) + 1 + u.target_len + 9, line_max = r->srv->max_request_line;
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
    memset(&dec, 0, sizeof(dec));
    set = acl_live_acquire(live, &gen);
    acl_eval(set, &req, scratch, &dec);
    acl_live_release(live, set);
    acl_scratch_free(scratch);

    if (dec.rule_id > 0) {
        struct store *st = wa_store(r);
        struct store_rule rule;
        char err[256];
        if (!st) {
            json_decref(body);
            free(u.path);
            return MHD_YES;
        }
        if (store_rule_get(st, dec.rule_id, &rule, err, sizeof(err)) == 0) {
            jrule = wa_rule_json(&rule);
            rule_clear(&rule);
        }
    }
    /* The reason quotes rule text and may be cut inside a character; the path too. */
    o = json_pack("{s:s,s:i,s:o,s:o,s:i,s:b,s:I,s:{s:s,s:s,s:i,s:o,s:s,s:s,s:s?}}", "action",
                  acl_action_str(dec.action), "rule_id", dec.rule_id, "reason",
                  wa_json_text(dec.reason), "rule", jrule ? jrule : json_null(),
                  "undecided_rule_id", dec.undecided_rule_id, "dest_pending", dec.dest_pending,
                  "generation", (json_int_t)gen, "request", "scheme", u.scheme, "host", u.host.text,
                  "port", (int)u.port, "path", wa_json_text(u.path), "method", method, "client",
                  client, "user", req.user);
    json_decref(body);
    free(u.path);
    return wa_reply_json(r, 200, o);
}

enum MHD_Result wa_api_reload(struct wa_req *r)
{
    struct wa_server *srv = r->srv;
    char err[512];
    int rc;

    pthread_mutex_lock(&srv->policy_mu);
    rc = wa_policy_hook(srv, err, sizeof(err));
    pthread_mutex_unlock(&srv->policy_mu);
    if (rc < 0)
        return wa_reply_error(r, 409, NULL, "%s", err);
    return wa_reply_json(
        r, 200,
        json_pack("{s:I}", "generation",
                  (json_int_t)(srv->opts.acl ? acl_live_generation(srv->opts.acl) : 0)));
}
