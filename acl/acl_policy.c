/* acl_policy.c: policy text (a file, or what `proxyctl import` sends) split into rules.
 * One rule a line; '#' at the start of a token begins a comment; a line that starts with
 * white space continues the rule above (joined with one space); blank and comment-only lines
 * are ignored, also between a rule and its continuation. A rule's id is the number of its
 * first line.
 */
#include "acl/acl_rule.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct builder {
    struct acl_policy *out;
    size_t cap;
    char *text; /* the rule being gathered, owned until added */
    size_t len, text_cap;
    int line;
};

static int text_append(struct builder *b, const char *s, size_t n)
{
    if (b->len + n + 1 > b->text_cap) {
        size_t cap = b->text_cap ? b->text_cap : 128;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *t = realloc(b->text, cap);
        if (!t)
            return -1;
        b->text = t;
        b->text_cap = cap;
    }
    memcpy(b->text + b->len, s, n);
    b->len += n;
    b->text[b->len] = '\0';
    return 0;
}

/* Checks the gathered rule and moves it into out. */
static int flush(struct builder *b, struct acl_error *err)
{
    if (!b->text)
        return 0;
    struct acl_error e;
    if (acl_rule_check(b->text, &e) != 0) {
        err->line = err->rule_id = b->line;
        snprintf(err->msg, sizeof(err->msg), "line %d: %.236s", b->line, e.msg);
        return -1;
    }
    struct acl_policy *p = b->out;
    if (p->nrules == b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 16;
        struct acl_rule_src *r = realloc(p->rules, cap * sizeof(*r));
        if (!r)
            goto oom;
        p->rules = r;
        b->cap = cap;
    }
    /* Gathered in a growing buffer (128 bytes at least): keep only what the rule needs, a
     * large import holds hundreds of thousands of them at once. */
    char *fit = realloc(b->text, b->len + 1);
    if (fit)
        b->text = fit;
    p->rules[p->nrules].id = b->line;
    p->rules[p->nrules].enabled = true;
    p->rules[p->nrules].text = b->text;
    p->nrules++;
    b->text = NULL;
    b->len = b->text_cap = 0;
    return 0;
oom:
    snprintf(err->msg, sizeof(err->msg), "out of memory");
    return -1;
}

static bool is_blank(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f';
}

int acl_policy_parse(const char *text, size_t len, struct acl_policy *out, struct acl_error *err)
{
    struct builder b = {.out = out};
    memset(out, 0, sizeof(*out));
    memset(err, 0, sizeof(*err));

    const char *p = text, *end = text + len;
    for (int lineno = 1; p < end; lineno++) {
        const char *eol = memchr(p, '\n', (size_t)(end - p));
        const char *next = eol ? eol + 1 : end;
        if (!eol)
            eol = end;
        size_t n = acl_comment_start(p, (size_t)(eol - p));
        while (n > 0 && is_blank(p[n - 1]))
            n--;
        size_t lead = 0;
        while (lead < n && is_blank(p[lead]))
            lead++;
        if (lead == n) {
            p = next;
            continue;
        }
        if (memchr(p, '\0', n)) {
            snprintf(err->msg, sizeof(err->msg), "line %d: NUL byte", lineno);
            err->line = lineno;
            goto fail;
        }
        if (lead > 0) {
            if (!b.text) {
                snprintf(err->msg, sizeof(err->msg),
                         "line %d: continuation line (starts with white space) without a rule "
                         "above",
                         lineno);
                err->line = lineno;
                goto fail;
            }
            if (text_append(&b, " ", 1) != 0 || text_append(&b, p + lead, n - lead) != 0)
                goto oom;
        } else {
            if (flush(&b, err) != 0)
                goto fail;
            b.line = lineno;
            if (text_append(&b, p, n) != 0)
                goto oom;
        }
        p = next;
    }
    if (flush(&b, err) != 0)
        goto fail;
    return 0;
oom:
    snprintf(err->msg, sizeof(err->msg), "out of memory");
fail:
    free(b.text);
    acl_policy_free(out);
    return -1;
}

void acl_policy_free(struct acl_policy *p)
{
    if (!p)
        return;
    for (size_t i = 0; i < p->nrules; i++)
        free((char *)p->rules[i].text);
    free(p->rules);
    p->rules = NULL;
    p->nrules = 0;
}
