/* web-admin rules: the rule list (GET, POST /api/rules), one rule (GET, PATCH, DELETE
 * /api/rules/ID, POST /api/rules/ID/move), the syntax check (POST /api/rules/check) and the
 * block/allow/unblock shortcuts for one domain.
 *
 * Every change goes through wa_change_apply: compiled first, stored only if it compiles.
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "web-admin/wa_change.h"
#include "web-admin/wa_rules.h"

#define RULE_TEXT_MAX 8192

/* text with each token that holds an A-label ("xn--") in Unicode; 0, or -1 if it does not
 * fit. */
static int display_text(const char *text, char *out, size_t outlen)
{
    size_t n = 0;
    for (const char *p = text; *p;) {
        size_t sp = strspn(p, " \t"), tok = strcspn(p + sp, " \t");
        char word[1024], shown[1024];
        if (n + sp >= outlen)
            return -1;
        memcpy(out + n, p, sp);
        n += sp;
        p += sp;
        if (tok == 0)
            break;
        const char *w = p;
        size_t wl = tok;
        if (tok < sizeof(word)) {
            memcpy(word, p, tok);
            word[tok] = '\0';
            if (strstr(word, "xn--") && acl_host_unicode(word, shown, sizeof(shown)) == 0) {
                w = shown;
                wl = strlen(shown);
            }
        }
        if (n + wl >= outlen)
            return -1;
        memcpy(out + n, w, wl);
        n += wl;
        p += tok;
    }
    out[n] = '\0';
    return 0;
}

static json_t *rule_json(const struct store_rule *rule)
{
    /* Text that is not UTF-8 (stored before it was refused at input) is shown escaped: a
     * rule in force must never be missing from the listing. */
    json_t *o =
        json_pack("{s:i,s:i,s:b,s:o,s:o,s:I,s:I}", "id", rule->id, "position", rule->position,
                  "enabled", rule->enabled, "text", wa_json_text(rule->text ? rule->text : ""),
                  "comment", wa_json_text(rule->comment ? rule->comment : ""), "hits",
                  (json_int_t)rule->hits, "undecided", (json_int_t)rule->undecided);
    /* Names in punycode (a rule added from a log row) read in Unicode. */
    if (o && rule->text && strstr(rule->text, "xn--")) {
        char shown[RULE_TEXT_MAX + 1];
        if (display_text(rule->text, shown, sizeof(shown)) == 0 &&
            json_object_set_new(o, "text_display", wa_json_text(shown))) {
            json_decref(o);
            return NULL;
        }
    }
    /* The same clock test as the proxy's: expired from its `expires` second on. */
    int64_t expires;
    bool has = o && acl_rule_expiry(rule->text, &expires);
    if (o && (json_object_set_new(o, "expires", has ? json_integer(expires * 1000) : json_null()) ||
              json_object_set_new(o, "expired", json_boolean(has && time(NULL) >= expires)))) {
        json_decref(o);
        return NULL;
    }
    return o;
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
        if (json_array_append_new(arr, rule_json(&rules[i])) < 0) {
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

    if (store_rule_get(st, id, &rule, err, sizeof(err)) != 0)
        return wa_reply_error(r, 500, NULL, "%s", err);
    o = json_pack("{s:o}", "rule", rule_json(&rule));
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

/* Whether rule `id` (a "before" field's) exists; false after answering: 400 naming the field
 * when it does not, 500 (503 for a database that is down) when it could not be read. */
static bool before_exists(struct wa_req *r, struct store *st, int id)
{
    struct store_rule rule;
    char err[256];
    int rc = store_rule_get(st, id, &rule, err, sizeof(err));

    if (rc > 0)
        wa_reply_error(r, 400, "before", "no rule %d", id);
    else if (rc < 0)
        wa_reply_error(r, 500, NULL, "%s", err);
    else
        rule_clear(&rule);
    return rc == 0;
}

/* Id of the rule after `id` in priority order (0 if last or absent): where it goes back. */
static int successor_of(struct store_rule *rules, size_t n, int id)
{
    for (size_t i = 0; i + 1 < n; i++)
        if (rules[i].id == id)
            return rules[i + 1].id;
    return 0;
}

/* Validates and adds the rule. Answers 201 with it. */
static enum MHD_Result add_rule(struct wa_req *r, const char *text, const char *comment, int before,
                                const char *field)
{
    struct wa_change ch = {.kind = WA_RULE_ADD, .text = text, .comment = comment, .before = before};
    struct store *st;
    int id = 0;

    if (check_text(r, text) < 0)
        return MHD_YES;
    st = wa_store(r);
    if (!st)
        return MHD_YES;
    if (before > 0 && !before_exists(r, st, before))
        return MHD_YES;
    if (!wa_change_apply(r, &ch, 1, &id, 400, field))
        return MHD_YES;
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
    json_t *body = wa_body_json(r), *jt, *jc, *je;
    const char *text = NULL, *comment = NULL;
    struct wa_change ch;
    int enabled = -1;
    bool ok;

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
    ch = (struct wa_change){.kind = WA_RULE_UPDATE,
                            .id = old->id,
                            .text = text,
                            .comment = comment,
                            .enabled = enabled};
    ok = wa_change_apply(r, &ch, 1, NULL, 400, text || !je ? "text" : "enabled");
    json_decref(body);
    if (!ok)
        return MHD_YES;
    return reply_rule(r, st, 200, old->id);
}

static enum MHD_Result rule_delete(struct wa_req *r, int id)
{
    struct wa_change ch = {.kind = WA_RULE_DELETE, .id = id};

    if (!wa_change_apply(r, &ch, 1, NULL, 409, NULL))
        return MHD_YES;
    return wa_reply_json(r, 200, json_pack("{s:i}", "deleted", id));
}

static enum MHD_Result rule_move(struct wa_req *r, struct store *st, int id)
{
    struct wa_change ch = {.kind = WA_RULE_MOVE, .id = id};
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
    if (before > 0 && !before_exists(r, st, before)) {
        store_rules_free(rules, n);
        return MHD_YES;
    }
    if (before < 0) {
        store_rules_free(rules, n);
        return wa_reply_error(r, 400, "before", "before must be a rule id, 0 or -1");
    }
    back = successor_of(rules, n, id);
    store_rules_free(rules, n);
    if (before == id || before == back)
        return reply_rules(r, st); /* already there */
    ch.before = before;
    if (!wa_change_apply(r, &ch, 1, NULL, 409, NULL))
        return MHD_YES;
    return reply_rules(r, st);
}

json_t *wa_rules_json_of(struct store *st, int id)
{
    struct store_rule rule;
    char err[256];
    json_t *j;

    if (store_rule_get(st, id, &rule, err, sizeof(err)) != 0)
        return NULL;
    j = rule_json(&rule);
    rule_clear(&rule);
    return j;
}

enum MHD_Result wa_rules_list(struct wa_req *r)
{
    struct store *st = wa_store(r);

    return st ? reply_rules(r, st) : MHD_YES;
}

enum MHD_Result wa_rules_add(struct wa_req *r)
{
    return rules_post(r);
}

enum MHD_Result wa_rules_check(struct wa_req *r)
{
    json_t *body = wa_body_json(r);
    const char *text;
    enum MHD_Result ret;

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

/* The rule whose id is the path's {}, read into *rule (clear it after), and the store; NULL
 * after answering: 404 when there is no such rule, 500 (503 for a database that is down)
 * when it could not be read. */
static struct store *path_rule(struct wa_req *r, struct store_rule *rule)
{
    struct store *st;
    char err[256], *end;
    long id;

    errno = 0;
    id = strtol(r->param, &end, 10);
    if (errno || end == r->param || *end || id <= 0 || id > INT32_MAX) {
        wa_reply_error(r, 404, NULL, "no such endpoint");
        return NULL;
    }
    st = wa_store(r);
    int rc = st ? store_rule_get(st, (int)id, rule, err, sizeof(err)) : 0;
    if (rc > 0)
        wa_reply_error(r, 404, NULL, "no rule %ld", id);
    else if (rc < 0)
        wa_reply_error(r, 500, NULL, "%s", err);
    return rc == 0 ? st : NULL;
}

enum MHD_Result wa_rules_get(struct wa_req *r)
{
    struct store_rule rule;
    enum MHD_Result ret;

    if (!path_rule(r, &rule))
        return MHD_YES;
    ret = wa_reply_json(r, 200, json_pack("{s:o}", "rule", rule_json(&rule)));
    rule_clear(&rule);
    return ret;
}

enum MHD_Result wa_rules_patch(struct wa_req *r)
{
    struct store_rule rule;
    struct store *st = path_rule(r, &rule);
    enum MHD_Result ret;

    if (!st)
        return MHD_YES;
    ret = rule_patch(r, st, &rule);
    rule_clear(&rule);
    return ret;
}

enum MHD_Result wa_rules_delete(struct wa_req *r)
{
    struct store_rule rule;
    struct store *st = path_rule(r, &rule);
    enum MHD_Result ret;

    if (!st)
        return MHD_YES;
    ret = rule_delete(r, rule.id);
    rule_clear(&rule);
    return ret;
}

enum MHD_Result wa_rules_move(struct wa_req *r)
{
    struct store_rule rule;
    struct store *st = path_rule(r, &rule);
    enum MHD_Result ret;

    if (!st)
        return MHD_YES;
    ret = rule_move(r, st, rule.id);
    rule_clear(&rule);
    return ret;
}

/* ---- block, allow, unblock ---- */

/* The host a domain or URL names, in canonical form, without a leading "*.": what
 * block/allow/unblock compare. Normalising is acl_host_parse's, as for rules and requests;
 * this only finds the host in what an admin pastes. 0, or -1 if it is not a host. */
static int block_host(const char *in, char *out, size_t outlen)
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
    if (block_host(d, dom, domlen) < 0) {
        wa_reply_error(r, 400, "domain", "not a domain name: %.200s", d);
        return NULL;
    }
    return dom;
}

/* True if text is exactly "<action> domain <dom>", up to case, spacing and a trailing dot,
 * or (with_expiry) that followed by "expires T": what block/allow wrote, lasting or timed. */
static bool is_domain_rule(const char *text, const char *action, const char *dom, bool with_expiry)
{
    char buf[RULE_TEXT_MAX + 1], *tok[6], *save = NULL, norm[256];
    size_t n = 0;

    snprintf(buf, sizeof(buf), "%s", text);
    for (char *t = strtok_r(buf, " \t", &save); t; t = strtok_r(NULL, " \t", &save)) {
        if (n == 5)
            return false;
        tok[n++] = t;
    }
    if (n == 5 && (!with_expiry || strcasecmp(tok[3], "expires")))
        return false;
    if ((n != 3 && n != 5) || strcasecmp(tok[0], action) || strcasecmp(tok[1], "domain"))
        return false;
    return block_host(tok[2], norm, sizeof(norm)) == 0 && strcmp(norm, dom) == 0 &&
           strchr(tok[2], '/') == NULL;
}

/* Id of the first rule that is exactly "<action> domain <dom>": 0 if none, -1 on error. */
static int domain_rule_find(struct store *st, const char *action, const char *dom)
{
    struct store_rule *rules;
    size_t n;
    char err[256];
    int id = 0;

    if (store_rules_list(st, &rules, &n, err, sizeof(err)) < 0)
        return -1;
    for (size_t i = 0; i < n && !id; i++)
        if (is_domain_rule(rules[i].text, action, dom, false))
            id = rules[i].id;
    store_rules_free(rules, n);
    return id;
}

/* A second click on "Block domain" (or a retried call) finds the rule the first one added:
 * it answers 200 with that rule and "existing": true, and adds nothing. */
static enum MHD_Result block_or_allow(struct wa_req *r, const char *action)
{
    char dom[256], text[360];
    json_t *body = NULL, *exp;
    enum MHD_Result ret;
    struct store *st;
    int id;

    if (!body_domain(r, &body, dom, sizeof(dom))) {
        json_decref(body);
        return MHD_YES;
    }
    /* "expires": the rule's `expires` time as the policy language writes it. */
    exp = json_object_get(body, "expires");
    if (exp && !json_is_null(exp) &&
        (!json_is_string(exp) || json_string_length(exp) == 0 || json_string_length(exp) > 32)) {
        json_decref(body);
        return wa_reply_error(r, 400, "expires", "expires is a time such as 2026-12-24T18:00Z");
    }
    /* The value becomes part of the rule's text: anything but a time's characters (a space
     * above all) would add words, and so conditions, to the rule. */
    if (json_is_string(exp) &&
        strspn(json_string_value(exp), "0123456789-:TZ") != json_string_length(exp)) {
        ret = wa_reply_error(r, 400, "expires",
                             "expires: bad time '%s' (want YYYY-MM-DDTHH:MM in local time, or "
                             "ending in Z for UTC)",
                             json_string_value(exp));
        json_decref(body);
        return ret;
    }
    st = wa_store(r);
    if (!st) {
        json_decref(body);
        return MHD_YES;
    }
    /* A lasting rule that exists already is the answer (a timed one is a rule of its own). */
    id = json_is_string(exp) ? 0 : domain_rule_find(st, action, dom);
    if (id < 0) {
        json_decref(body);
        return wa_reply_error(r, 500, NULL, "cannot read the rules");
    }
    if (id > 0) {
        struct store_rule rule;
        char err[256];

        json_decref(body);
        if (store_rule_get(st, id, &rule, err, sizeof(err)) != 0)
            return wa_reply_error(r, 500, NULL, "%s", err);
        ret =
            wa_reply_json(r, 200, json_pack("{s:o,s:b}", "rule", rule_json(&rule), "existing", 1));
        rule_clear(&rule);
        return ret;
    }
    if (json_is_string(exp))
        snprintf(text, sizeof(text), "%s domain %s expires %s", action, dom,
                 json_string_value(exp));
    else
        snprintf(text, sizeof(text), "%s domain %s", action, dom);
    ret = add_rule(r, text, json_string_value(json_object_get(body, "comment")), -1,
                   json_is_string(exp) ? "expires" : "domain");
    json_decref(body);
    return ret;
}

enum MHD_Result wa_rules_block(struct wa_req *r)
{
    return block_or_allow(r, "deny");
}

enum MHD_Result wa_rules_allow(struct wa_req *r)
{
    return block_or_allow(r, "allow");
}

enum MHD_Result wa_rules_unblock(struct wa_req *r)
{
    char dom[256], err[512];
    json_t *body = NULL, *ids;
    struct store_rule *rules;
    struct wa_change *ch;
    struct store *st;
    size_t n, hits = 0;

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
    ch = calloc(n ? n : 1, sizeof(*ch));
    ids = json_array();
    if (!ch || !ids) {
        store_rules_free(rules, n);
        free(ch);
        json_decref(ids);
        return wa_reply_error(r, 500, NULL, "out of memory");
    }
    for (size_t i = 0; i < n; i++) {
        /* A timed block (`block --until`) is a block of that host too. */
        if (!is_domain_rule(rules[i].text, "deny", dom, true))
            continue;
        ch[hits++] = (struct wa_change){.kind = WA_RULE_DELETE, .id = rules[i].id};
        json_array_append_new(ids, json_integer(rules[i].id));
    }
    store_rules_free(rules, n);
    if (hits == 0) {
        free(ch);
        json_decref(ids);
        return wa_reply_error(r, 404, "domain",
                              "no rule \"deny domain %s\" (with or without expires)", dom);
    }
    if (!wa_change_apply(r, ch, hits, NULL, 409, NULL)) {
        free(ch);
        json_decref(ids);
        return MHD_YES;
    }
    free(ch);
    return wa_reply_json(r, 200, json_pack("{s:o}", "deleted", ids));
}
