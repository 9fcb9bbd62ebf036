/* acl_rule.c: the parser of one rule's text (ACTION MATCH ARG [CONDITION ARG]...) into a
 * struct acl_rule, and acl_rule_check built on it. Tokens are separated by white space; a
 * token may be double-quoted (for regexes with spaces or '#'); inside quotes a backslash
 * keeps the next byte, so \" stays in the regex as \" (a literal quote to PCRE2).
 */
#include "acl/acl_rule.h"
#include "acl/acl_host.h"
#include "acl/acl_regex.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static const char *const action_names[ACL_ACTION_COUNT] = {"allow", "deny", "auth", "report",
                                                           "inspect"};

const char *acl_action_str(enum acl_action a)
{
    return (unsigned)a < ACL_ACTION_COUNT ? action_names[a] : "?";
}

static const char *const match_names[ACL_MATCH_COUNT] = {
    "domain", "host-regex", "url-regex", "client", "dest", "user", "method", "port", "list", "any",
};

const char *acl_match_str(enum acl_match m)
{
    return (unsigned)m < ACL_MATCH_COUNT ? match_names[m] : "?";
}

struct token {
    const char *s;
    size_t len;
};

struct lexer {
    const char *p, *end;
};

static bool is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\v' || c == '\f';
}

/* Next token: 1 found, 0 at end (or at a comment), -1 unterminated quote. */
static int lex_next(struct lexer *lx, struct token *t)
{
    while (lx->p < lx->end && is_space(*lx->p))
        lx->p++;
    if (lx->p == lx->end || *lx->p == '#')
        return 0;
    if (*lx->p == '"') {
        const char *q = ++lx->p;
        while (q < lx->end && *q != '"')
            q += (*q == '\\' && q + 1 < lx->end) ? 2 : 1;
        if (q >= lx->end)
            return -1;
        t->s = lx->p;
        t->len = (size_t)(q - lx->p);
        lx->p = q + 1;
        return 1;
    }
    t->s = lx->p;
    while (lx->p < lx->end && !is_space(*lx->p))
        lx->p++;
    t->len = (size_t)(lx->p - t->s);
    return 1;
}

size_t acl_comment_start(const char *s, size_t len)
{
    struct lexer lx = {s, s + len};
    struct token t;
    int rc;
    while ((rc = lex_next(&lx, &t)) == 1)
        ;
    if (rc < 0)
        return len; /* the parser reports the quote */
    return (size_t)(lx.p - s);
}

static bool tok_is(const struct token *t, const char *word)
{
    size_t n = strlen(word);
    return t->len == n && memcmp(t->s, word, n) == 0;
}

/* Parser state: the lexer, an argument buffer for lists written with spaces after commas
 * ("clients 10.0.0.0/8, 192.168.0.0/16"), and where errors go. */
struct parser {
    struct lexer lx;
    char *msg;
    size_t msglen;
    char list[1024];
};

/* Reads the argument of keyword kw into *t. A list argument whose token ends in ',' is
 * joined with the following tokens. Returns 0 or -1 (missing argument). */
static int arg_next(struct parser *ps, const char *kw, bool is_list, struct token *t)
{
    int rc = lex_next(&ps->lx, t);
    if (rc < 0) {
        snprintf(ps->msg, ps->msglen, "%s: unterminated quote", kw);
        return -1;
    }
    if (rc == 0 || t->len == 0) {
        snprintf(ps->msg, ps->msglen, "%s: missing argument", kw);
        return -1;
    }
    if (!is_list || t->s[t->len - 1] != ',')
        return 0;
    size_t n = 0;
    for (;;) {
        if (n + t->len >= sizeof(ps->list)) {
            snprintf(ps->msg, ps->msglen, "%s: list too long", kw);
            return -1;
        }
        memcpy(ps->list + n, t->s, t->len);
        n += t->len;
        if (ps->list[n - 1] != ',')
            break;
        if (lex_next(&ps->lx, t) != 1) {
            snprintf(ps->msg, ps->msglen, "%s: list ends with ','", kw);
            return -1;
        }
    }
    t->s = ps->list;
    t->len = n;
    return 0;
}

static char *dup_token(const struct token *t)
{
    char *s = malloc(t->len + 1);
    if (s) {
        memcpy(s, t->s, t->len);
        s[t->len] = '\0';
    }
    return s;
}

/* RFC 9110 token characters, the alphabet of method names. */
static bool is_tchar(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           (c && strchr("!#$%&'*+-.^_`|~", c));
}

/* A comma list of names (users: any printable non-space byte but ','; methods: tchars). */
static int names_parse(const struct token *t, bool method, struct acl_names *out, char *msg,
                       size_t msglen, const char *kw)
{
    out->buf = malloc(t->len + 2);
    if (!out->buf) {
        snprintf(msg, msglen, "out of memory");
        return -1;
    }
    uint32_t count = 0;
    size_t start = 0;
    for (size_t i = 0; i <= t->len; i++) {
        if (i < t->len && t->s[i] != ',') {
            unsigned char c = (unsigned char)t->s[i];
            bool ok = method ? is_tchar(c) : (c > 0x20 && c != 0x7f && c != '"');
            if (!ok) {
                snprintf(msg, msglen, "%s: bad %s '%.*s'", kw, method ? "method" : "name",
                         (int)t->len, t->s);
                goto fail;
            }
            out->buf[i] = (char)c;
            continue;
        }
        if (i == start) {
            snprintf(msg, msglen, "%s: empty name in '%.*s'", kw, (int)t->len, t->s);
            goto fail;
        }
        out->buf[i] = '\0';
        count++;
        start = i + 1;
    }
    out->count = count;
    return 0;
fail:
    free(out->buf);
    out->buf = NULL;
    return -1;
}

bool acl_names_contains(const struct acl_names *n, const char *name, size_t len, bool fold_case)
{
    const char *p = n->buf;
    for (uint32_t i = 0; i < n->count; i++) {
        size_t l = strlen(p);
        if (l == len && (fold_case ? strncasecmp(p, name, len) : memcmp(p, name, len)) == 0)
            return true;
        p += l + 1;
    }
    return false;
}

/* Bytes of n's buffer, NULs included. */
static size_t names_size(const struct acl_names *n)
{
    size_t len = 0;
    for (uint32_t i = 0; i < n->count; i++)
        len += strlen(n->buf + len) + 1;
    return len;
}

int acl_names_append(struct acl_names *n, const struct acl_names *more)
{
    size_t a = names_size(n), b = names_size(more);
    char *buf = malloc(a + b + 1);
    if (!buf)
        return -1;
    if (a)
        memcpy(buf, n->buf, a);
    if (b)
        memcpy(buf + a, more->buf, b);
    buf[a + b] = '\0';
    free(n->buf);
    n->buf = buf;
    n->count += more->count;
    return 0;
}

static bool is_list_name_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '_' || c == '.';
}

/* Splits a comma list into its "@GROUP" elements (into groups) and the rest (written to
 * rest[0..*rest_len), comma-separated). 0, or -1 with a message. */
static int split_groups(const struct token *t, const char *kw, char *rest, size_t *rest_len,
                        struct acl_names *groups, char *msg, size_t msglen)
{
    char names[1024];
    size_t nlen = 0, rlen = 0;
    const char *p = t->s, *end = t->s + t->len;
    while (p <= end) {
        const char *comma = memchr(p, ',', (size_t)(end - p));
        const char *e = comma ? comma : end;
        size_t len = (size_t)(e - p);
        if (len == 0) {
            snprintf(msg, msglen, "%s: empty name in '%.*s'", kw, (int)t->len, t->s);
            return -1;
        }
        if (p[0] == '@') {
            bool ok = len > 1;
            for (size_t i = 1; i < len; i++)
                ok &= is_list_name_char(p[i]);
            if (!ok) {
                snprintf(msg, msglen, "%s: bad group name '%.*s'", kw, (int)len, p);
                return -1;
            }
            if (nlen + len >= sizeof(names)) {
                snprintf(msg, msglen, "%s: list too long", kw);
                return -1;
            }
            memcpy(names + nlen, p + 1, len - 1);
            nlen += len - 1;
            names[nlen++] = ',';
        } else {
            if (rlen + len + 1 >= 1024) {
                snprintf(msg, msglen, "%s: list too long", kw);
                return -1;
            }
            if (rlen)
                rest[rlen++] = ',';
            memcpy(rest + rlen, p, len);
            rlen += len;
        }
        if (!comma)
            break;
        p = comma + 1;
    }
    *rest_len = rlen;
    if (nlen == 0)
        return 0;
    struct token g = {names, nlen - 1};
    return names_parse(&g, false, groups, msg, msglen, kw);
}

static int port_number(const char *s, size_t len)
{
    if (len == 0 || len > 5)
        return -1;
    int v = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    return v >= 1 && v <= 65535 ? v : -1;
}

/* "443", "80,443", "8000-8999". */
static int ports_parse(const struct token *t, struct acl_rule *r, char *msg, size_t msglen)
{
    size_t count = 1;
    for (size_t i = 0; i < t->len; i++)
        count += t->s[i] == ',';
    r->ports = calloc(count, sizeof(*r->ports));
    if (!r->ports) {
        snprintf(msg, msglen, "out of memory");
        return -1;
    }
    const char *p = t->s, *end = t->s + t->len;
    for (;;) {
        const char *comma = memchr(p, ',', (size_t)(end - p));
        const char *e = comma ? comma : end;
        const char *dash = memchr(p, '-', (size_t)(e - p));
        int lo = port_number(p, (size_t)((dash ? dash : e) - p));
        int hi = dash ? port_number(dash + 1, (size_t)(e - dash - 1)) : lo;
        if (lo < 0 || hi < 0 || hi < lo) {
            snprintf(msg, msglen, "port: bad port '%.*s' (want N, N-M or a comma list, 1..65535)",
                     (int)(e - p), p);
            return -1;
        }
        r->ports[r->nports].lo = (uint16_t)lo;
        r->ports[r->nports].hi = (uint16_t)hi;
        r->nports++;
        if (!comma)
            break;
        p = comma + 1;
    }
    return 0;
}

static int match_parse(struct parser *ps, struct acl_rule *r, bool jit)
{
    const char *kw = acl_match_str(r->match);
    struct token t;

    if (r->match == ACL_MATCH_ANY) {
        r->arg = strdup("");
        return r->arg ? 0 : -1;
    }
    bool is_list = r->match == ACL_MATCH_CLIENT || r->match == ACL_MATCH_DEST ||
                   r->match == ACL_MATCH_USER || r->match == ACL_MATCH_METHOD ||
                   r->match == ACL_MATCH_PORT;
    if (arg_next(ps, kw, is_list, &t) != 0)
        return -1;

    switch (r->match) {
    case ACL_MATCH_DOMAIN: {
        /* The same canonical form as every request's host, so the two compare equal (an
         * internationalised name in its A-labels, however it is written). */
        struct acl_host h;
        const char *why;
        if (acl_host_parse(t.s, t.len, &h, &why) != 0) {
            if (t.len > 2 && t.s[0] == '*' && t.s[1] == '.')
                snprintf(ps->msg, ps->msglen,
                         "domain: bad domain '%.*s' (write '%.*s': it covers subdomains)",
                         (int)t.len, t.s, (int)t.len - 2, t.s + 2);
            else
                snprintf(ps->msg, ps->msglen, "domain: bad domain '%.*s' (%s)", (int)t.len, t.s,
                         why);
            return -1;
        }
        if (acl_host_is_ip(&h)) {
            /* An address matches on its binary form: a host route. */
            r->cidrs = calloc(1, sizeof(*r->cidrs));
            if (!r->cidrs) {
                snprintf(ps->msg, ps->msglen, "out of memory");
                return -1;
            }
            memcpy(r->cidrs[0].addr, h.addr, 16);
            r->cidrs[0].prefix = 128;
            r->ncidrs = 1;
        }
        struct token nt = {h.text, h.len};
        r->arg = dup_token(&nt);
        break;
    }
    case ACL_MATCH_HOST_REGEX:
    case ACL_MATCH_URL_REGEX: {
        char why[200];
        r->re =
            acl_regex_compile(t.s, t.len, r->match == ACL_MATCH_HOST_REGEX, jit, why, sizeof(why));
        if (!r->re) {
            snprintf(ps->msg, ps->msglen, "%s: %s", kw, why);
            return -1;
        }
        r->arg = dup_token(&t);
        break;
    }
    case ACL_MATCH_CLIENT:
    case ACL_MATCH_DEST: {
        char why[160];
        if (acl_cidr_parse_list(t.s, t.len, &r->cidrs, &r->ncidrs, why, sizeof(why)) != 0) {
            snprintf(ps->msg, ps->msglen, "%s: %s", kw, why);
            return -1;
        }
        r->arg = dup_token(&t);
        break;
    }
    case ACL_MATCH_USER:
    case ACL_MATCH_METHOD:
        if (names_parse(&t, r->match == ACL_MATCH_METHOD, &r->names, ps->msg, ps->msglen, kw))
            return -1;
        r->arg = dup_token(&t);
        break;
    case ACL_MATCH_PORT:
        if (ports_parse(&t, r, ps->msg, ps->msglen) != 0)
            return -1;
        r->arg = dup_token(&t);
        break;
    case ACL_MATCH_LIST:
        for (size_t i = 0; i < t.len; i++) {
            char c = t.s[i];
            if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '-' || c == '_' || c == '.')) {
                snprintf(ps->msg, ps->msglen, "list: bad list name '%.*s'", (int)t.len, t.s);
                return -1;
            }
        }
        r->arg = dup_token(&t);
        break;
    default:
        break;
    }
    if (!r->arg) {
        snprintf(ps->msg, ps->msglen, "out of memory");
        return -1;
    }
    return 0;
}

static int condition_parse(struct parser *ps, const struct token *kw, struct acl_rule *r)
{
    struct token t;
    char why[160];

    if (tok_is(kw, "clients")) {
        if (r->has_clients)
            goto duplicate;
        if (arg_next(ps, "clients", true, &t) != 0)
            return -1;
        char rest[1024];
        size_t rest_len;
        if (split_groups(&t, "clients", rest, &rest_len, &r->cond_client_groups, ps->msg,
                         ps->msglen) != 0)
            return -1;
        if ((rest_len > 0 || r->cond_client_groups.count == 0) &&
            acl_cidr_parse_list(rest, rest_len, &r->cond_clients, &r->ncond_clients, why,
                                sizeof(why)) != 0) {
            snprintf(ps->msg, ps->msglen, "clients: %s", why);
            return -1;
        }
        r->has_clients = true;
        return 0;
    }
    if (tok_is(kw, "users")) {
        if (r->has_users)
            goto duplicate;
        if (arg_next(ps, "users", true, &t) != 0)
            return -1;
        char rest[1024];
        size_t rest_len;
        if (split_groups(&t, "users", rest, &rest_len, &r->cond_user_groups, ps->msg, ps->msglen) !=
            0)
            return -1;
        struct token names = {rest, rest_len};
        if ((rest_len > 0 || r->cond_user_groups.count == 0) &&
            names_parse(&names, false, &r->cond_users, ps->msg, ps->msglen, "users") != 0)
            return -1;
        r->has_users = true;
        return 0;
    }
    if (tok_is(kw, "schedule")) {
        struct token times;
        if (r->has_schedule)
            goto duplicate;
        if (arg_next(ps, "schedule", true, &t) != 0)
            return -1;
        /* The days token may have been joined into ps->list; times goes after it there. */
        if (arg_next(ps, "schedule", false, &times) != 0)
            return -1;
        if (acl_schedule_parse(t.s, t.len, times.s, times.len, &r->schedule, why, sizeof(why)) !=
            0) {
            snprintf(ps->msg, ps->msglen, "schedule: %s", why);
            return -1;
        }
        r->has_schedule = true;
        return 0;
    }
    if (tok_is(kw, "expires")) {
        if (r->has_expiry)
            goto duplicate;
        if (arg_next(ps, "expires", false, &t) != 0)
            return -1;
        if (acl_expiry_parse(t.s, t.len, &r->expires, why, sizeof(why)) != 0) {
            snprintf(ps->msg, ps->msglen, "expires: %s", why);
            return -1;
        }
        r->has_expiry = true;
        return 0;
    }
    for (int m = 0; m < ACL_MATCH_COUNT; m++) {
        if (tok_is(kw, match_names[m])) {
            snprintf(ps->msg, ps->msglen,
                     "'%s' after the match: a rule has one match (conditions: clients, users, "
                     "schedule, expires)",
                     match_names[m]);
            return -1;
        }
    }
    snprintf(ps->msg, ps->msglen,
             "unknown condition '%.*s' (want clients, users, schedule or expires)", (int)kw->len,
             kw->s);
    return -1;
duplicate:
    snprintf(ps->msg, ps->msglen, "duplicate condition '%.*s'", (int)kw->len, kw->s);
    return -1;
}

/* `group NAME MEMBER[,MEMBER...]`, after the word "group": members are CIDRs and
 * "user:NAME". */
static int group_parse(struct parser *ps, struct acl_rule *r)
{
    struct token t;
    char why[160], cidrs[1024];
    size_t clen = 0;
    if (arg_next(ps, "group", false, &t) != 0)
        return -1;
    for (size_t i = 0; i < t.len; i++) {
        if (!is_list_name_char(t.s[i])) {
            snprintf(ps->msg, ps->msglen, "group: bad group name '%.*s'", (int)t.len, t.s);
            return -1;
        }
    }
    r->is_group = true;
    r->arg = dup_token(&t);
    if (!r->arg) {
        snprintf(ps->msg, ps->msglen, "out of memory");
        return -1;
    }
    if (arg_next(ps, "group", true, &t) != 0)
        return -1;
    char users[1024];
    size_t ulen = 0;
    const char *p = t.s, *end = t.s + t.len;
    for (;;) {
        const char *comma = memchr(p, ',', (size_t)(end - p));
        const char *e = comma ? comma : end;
        size_t len = (size_t)(e - p);
        bool user = len > 5 && memcmp(p, "user:", 5) == 0;
        char *buf = user ? users : cidrs;
        size_t *n = user ? &ulen : &clen;
        const char *v = user ? p + 5 : p;
        size_t vlen = user ? len - 5 : len;
        if (*n + vlen + 1 >= sizeof(cidrs)) {
            snprintf(ps->msg, ps->msglen, "group: list too long");
            return -1;
        }
        if (*n)
            buf[(*n)++] = ',';
        memcpy(buf + *n, v, vlen);
        *n += vlen;
        if (!comma)
            break;
        p = comma + 1;
    }
    if (clen && acl_cidr_parse_list(cidrs, clen, &r->cidrs, &r->ncidrs, why, sizeof(why)) != 0) {
        snprintf(ps->msg, ps->msglen, "group: %s (a member is a CIDR or user:NAME)", why);
        return -1;
    }
    struct token ut = {users, ulen};
    if (ulen && names_parse(&ut, false, &r->names, ps->msg, ps->msglen, "group") != 0)
        return -1;
    int rc = lex_next(&ps->lx, &t);
    if (rc != 0) {
        snprintf(ps->msg, ps->msglen,
                 rc < 0 ? "unterminated quote"
                        : "group: '%.*s' after the members (a group has no conditions)",
                 (int)t.len, t.s);
        return -1;
    }
    return 0;
}

/* `name ADDRESS LABEL`, after the word "name". */
static int name_parse(struct parser *ps, struct acl_rule *r)
{
    struct token a, l;
    char why[160];
    if (arg_next(ps, "name", false, &a) != 0)
        return -1;
    if (acl_cidr_parse_list(a.s, a.len, &r->cidrs, &r->ncidrs, why, sizeof(why)) != 0 ||
        r->ncidrs != 1 || r->cidrs[0].prefix != 128 || memchr(a.s, '/', a.len)) {
        snprintf(ps->msg, ps->msglen, "name: bad address '%.*s' (one client address)", (int)a.len,
                 a.s);
        return -1;
    }
    if (arg_next(ps, "name", false, &l) != 0)
        return -1;
    bool ok = l.len <= 63;
    for (size_t i = 0; i < l.len; i++)
        ok &= is_list_name_char(l.s[i]);
    if (!ok) {
        snprintf(ps->msg, ps->msglen, "name: bad client name '%.*s' (1-63 of A-Z a-z 0-9 . _ -)",
                 (int)l.len, l.s);
        return -1;
    }
    r->is_name = true;
    r->arg = dup_token(&l);
    if (!r->arg) {
        snprintf(ps->msg, ps->msglen, "out of memory");
        return -1;
    }
    int rc = lex_next(&ps->lx, &l);
    if (rc != 0) {
        snprintf(ps->msg, ps->msglen, rc < 0 ? "unterminated quote" : "name: '%.*s' after the name",
                 (int)l.len, l.s);
        return -1;
    }
    return 0;
}

bool acl_client_name(const char *text, uint8_t addr[16], char *label, size_t labellen)
{
    struct acl_rule r;
    char msg[256];
    if (!text || strncmp(text, "name", 4) != 0 || acl_rule_parse(text, false, &r, msg, sizeof(msg)))
        return false;
    bool is = r.is_name && strlen(r.arg) < labellen;
    if (is) {
        memcpy(addr, r.cidrs[0].addr, 16);
        memcpy(label, r.arg, strlen(r.arg) + 1);
    }
    acl_rule_clear(&r);
    return is;
}

int acl_rule_parse(const char *text, bool jit, struct acl_rule *r, char *msg, size_t msglen)
{
    struct parser ps = {.lx = {text, text + strlen(text)}, .msg = msg, .msglen = msglen};
    struct token t;

    memset(r, 0, sizeof(*r));
    r->enabled = true;
    size_t bad;
    if (!acl_utf8_valid(text, strlen(text), &bad)) {
        /* Such a rule would be enforced but could not be listed, shown or exported. */
        snprintf(msg, msglen, "not valid UTF-8 (byte 0x%02x at offset %zu)",
                 (unsigned char)text[bad], bad);
        return -1;
    }
    int rc = lex_next(&ps.lx, &t);
    if (rc <= 0) {
        snprintf(msg, msglen, rc < 0 ? "unterminated quote" : "empty rule");
        return -1;
    }
    if (tok_is(&t, "allow")) {
        r->action = ACL_ALLOW;
    } else if (tok_is(&t, "deny")) {
        r->action = ACL_DENY;
    } else if (tok_is(&t, "report")) {
        r->action = ACL_REPORT;
    } else if (tok_is(&t, "inspect")) {
        r->action = ACL_INSPECT;
    } else if (tok_is(&t, "group") || tok_is(&t, "name")) {
        if ((tok_is(&t, "group") ? group_parse(&ps, r) : name_parse(&ps, r)) == 0)
            return 0;
        acl_rule_clear(r);
        return -1;
    } else {
        snprintf(msg, msglen,
                 "unknown action '%.*s' (want allow, deny, report or inspect, or group or name)",
                 (int)t.len, t.s);
        return -1;
    }

    rc = lex_next(&ps.lx, &t);
    if (rc <= 0) {
        snprintf(msg, msglen, "missing match after '%s'", acl_action_str(r->action));
        return -1;
    }
    int m;
    for (m = 0; m < ACL_MATCH_COUNT; m++) {
        if (tok_is(&t, match_names[m]))
            break;
    }
    if (m == ACL_MATCH_COUNT) {
        snprintf(msg, msglen,
                 "unknown match '%.*s' (want domain, host-regex, url-regex, client, dest, "
                 "user, method, port, list or any)",
                 (int)t.len, t.s);
        return -1;
    }
    r->match = (enum acl_match)m;
    if (match_parse(&ps, r, jit) != 0)
        goto fail;

    while ((rc = lex_next(&ps.lx, &t)) == 1) {
        struct token kw = t;
        if (condition_parse(&ps, &kw, r) != 0)
            goto fail;
    }
    if (rc < 0) {
        snprintf(msg, msglen, "unterminated quote");
        goto fail;
    }
    return 0;
fail:
    acl_rule_clear(r);
    return -1;
}

void acl_rule_clear(struct acl_rule *r)
{
    free(r->arg);
    pcre2_code_free(r->re);
    free(r->cidrs);
    free(r->names.buf);
    free(r->ports);
    free(r->cond_clients);
    free(r->cond_users.buf);
    free(r->cond_client_groups.buf);
    free(r->cond_user_groups.buf);
    memset(r, 0, sizeof(*r));
}

size_t acl_rule_memory(const struct acl_rule *r)
{
    size_t n = sizeof(*r);
    if (r->arg)
        n += strlen(r->arg) + 1;
    if (r->re) {
        size_t size = 0, jit = 0;
        pcre2_pattern_info(r->re, PCRE2_INFO_SIZE, &size);
        if (pcre2_pattern_info(r->re, PCRE2_INFO_JITSIZE, &jit) != 0)
            jit = 0;
        n += size + jit;
    }
    n += r->ncidrs * sizeof(*r->cidrs) + r->nports * sizeof(*r->ports);
    n += r->ncond_clients * sizeof(*r->cond_clients);
    /* Name buffers are at most their argument's length + 2. */
    if (r->names.buf && r->arg)
        n += strlen(r->arg) + 2;
    for (uint32_t i = 0, off = 0; r->cond_users.buf && i < r->cond_users.count; i++) {
        size_t l = strlen(r->cond_users.buf + off) + 1;
        n += l;
        off += (uint32_t)l;
    }
    return n;
}

bool acl_rule_needs_user(const struct acl_rule *r)
{
    return r->match == ACL_MATCH_USER || r->has_users;
}

bool acl_rule_expiry(const char *text, int64_t *expires)
{
    struct acl_rule r;
    char msg[256];
    if (!text || !strstr(text, "expires") || acl_rule_parse(text, false, &r, msg, sizeof(msg)) != 0)
        return false;
    bool has = r.has_expiry;
    *expires = r.expires;
    acl_rule_clear(&r);
    return has;
}

int acl_rule_check(const char *text, struct acl_error *err)
{
    struct acl_rule r;
    memset(err, 0, sizeof(*err));
    if (!text) {
        snprintf(err->msg, sizeof(err->msg), "empty rule");
        return -1;
    }
    if (acl_rule_parse(text, false, &r, err->msg, sizeof(err->msg)) != 0)
        return -1;
    acl_rule_clear(&r);
    return 0;
}
