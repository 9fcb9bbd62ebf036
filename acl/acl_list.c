/* acl_list.c: importing domain lists. Accepts, in any mix, hosts files ("0.0.0.0 a.com
 * b.com"), plain lists (one domain a line) and the domain-only subset of adblock syntax
 * ("||ads.example.com^"). Everything else is counted as skipped with the first reason, so an
 * admin sees why an import brought fewer domains than lines.
 */
#include "acl/acl.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Names hosts files map to local addresses; never meant as blocked domains. */
static const char *const hosts_reserved[] = {
    "localhost",       "localhost.localdomain", "broadcasthost",  "local",
    "0.0.0.0",         "ip6-localhost",         "ip6-loopback",   "ip6-localnet",
    "ip6-mcastprefix", "ip6-allnodes",          "ip6-allrouters", "ip6-allhosts",
};

struct list_builder {
    char **domains; /* owned */
    size_t count, cap;
    uint32_t *set; /* open addressing over domains: index + 1, 0 empty */
    size_t set_mask;
    struct acl_list_stats *stats;
};

static uint32_t hash_str(const char *s, size_t n)
{
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)s[i]) * 16777619u;
    h ^= h >> 15;
    return h * 0x2c1b3c6du;
}

static int set_grow(struct list_builder *b)
{
    size_t cap = b->set ? (b->set_mask + 1) * 2 : 1024;
    uint32_t *set = calloc(cap, sizeof(*set));
    if (!set)
        return -1;
    for (size_t i = 0; i < b->count; i++) {
        size_t slot = hash_str(b->domains[i], strlen(b->domains[i])) & (cap - 1);
        while (set[slot])
            slot = (slot + 1) & (cap - 1);
        set[slot] = (uint32_t)(i + 1);
    }
    free(b->set);
    b->set = set;
    b->set_mask = cap - 1;
    return 0;
}

/* Quotes at most 60 bytes of s into out, bytes outside printable ASCII as \xNN: the reason is
 * shown and sent as JSON, and the line may be anything (not UTF-8, control bytes). */
static void quote(char *out, size_t cap, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    size_t o = 0;
    for (size_t i = 0; i < n && i < 60 && o + 5 < cap; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c < 0x7f) {
            out[o++] = (char)c;
        } else {
            out[o++] = '\\';
            out[o++] = 'x';
            out[o++] = hex[c >> 4];
            out[o++] = hex[c & 15];
        }
    }
    out[o] = '\0';
}

static void skip(struct list_builder *b, int line, const char *reason, const char *s, size_t n)
{
    b->stats->skipped++;
    if (b->stats->first_skipped_line == 0) {
        char q[60 * 4 + 1];
        b->stats->first_skipped_line = line;
        if (s) {
            quote(q, sizeof(q), s, n);
            snprintf(b->stats->first_skipped_reason, sizeof(b->stats->first_skipped_reason),
                     "%s '%.80s'", reason, q);
        } else {
            snprintf(b->stats->first_skipped_reason, sizeof(b->stats->first_skipped_reason), "%s",
                     reason);
        }
    }
}

/* Validates, turns canonical and adds one domain. 0, or -1 on allocation failure. */
static int add_domain(struct list_builder *b, int line, const char *s, size_t n)
{
    struct acl_host h;
    const char *why;
    if (acl_host_parse(s, n, &h, &why) != 0) {
        skip(b, line, "invalid domain", s, n);
        return 0;
    }
    const char *d = h.text;
    n = h.len;

    if (!b->set || (b->count + 1) * 2 > b->set_mask + 1) {
        if (set_grow(b) != 0)
            return -1;
    }
    size_t slot = hash_str(d, n) & b->set_mask;
    while (b->set[slot]) {
        if (strcmp(b->domains[b->set[slot] - 1], d) == 0) {
            b->stats->duplicates++;
            return 0;
        }
        slot = (slot + 1) & b->set_mask;
    }
    if (b->count == b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 256;
        char **v = realloc(b->domains, cap * sizeof(*v));
        if (!v)
            return -1;
        b->domains = v;
        b->cap = cap;
    }
    char *copy = malloc(n + 1);
    if (!copy)
        return -1;
    memcpy(copy, d, n + 1);
    b->domains[b->count++] = copy;
    b->set[slot] = (uint32_t)b->count;
    b->stats->added++;
    return 0;
}

static bool is_blank(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f';
}

static bool is_address(const char *s, size_t n)
{
    struct acl_host h;
    const char *why;
    return acl_host_parse(s, n, &h, &why) == 0 && acl_host_is_ip(&h);
}

static bool is_reserved(const char *s, size_t n)
{
    for (size_t i = 0; i < sizeof(hosts_reserved) / sizeof(hosts_reserved[0]); i++) {
        if (strlen(hosts_reserved[i]) == n && strncasecmp(s, hosts_reserved[i], n) == 0)
            return true;
    }
    return false;
}

/* "||domain^" and friends. */
static int adblock_line(struct list_builder *b, int line, const char *s, size_t n)
{
    const char *d = s + 2;
    const char *end = s + n;
    const char *caret = memchr(d, '^', (size_t)(end - d));
    const char *stop = caret ? caret : end;
    for (const char *q = d; q < stop; q++) {
        if (*q == '/' || *q == '*' || *q == '$' || *q == '|') {
            skip(b, line, "adblock pattern rules not supported", s, n);
            return 0;
        }
    }
    if (caret && caret + 1 < end) {
        if (caret[1] == '$')
            skip(b, line, "adblock options not supported", s, n);
        else if (!(caret[1] == '|' && caret + 2 == end))
            skip(b, line, "adblock path rules not supported", s, n);
        else
            return add_domain(b, line, d, (size_t)(stop - d));
        return 0;
    }
    return add_domain(b, line, d, (size_t)(stop - d));
}

static int parse_line(struct list_builder *b, int line, const char *s, size_t n)
{
    if (n == 0 || s[0] == '!' || s[0] == '#' || (n >= 8 && memcmp(s, "[Adblock", 8) == 0))
        return 0;
    if (n >= 2 && s[0] == '@' && s[1] == '@') {
        skip(b, line, "adblock exception rules not supported", s, n);
        return 0;
    }
    if (memmem(s, n, "##", 2) || memmem(s, n, "#@#", 3) || memmem(s, n, "#?#", 3) ||
        memmem(s, n, "#$#", 3)) {
        skip(b, line, "adblock element hiding not supported", s, n);
        return 0;
    }
    if (n >= 2 && s[0] == '|' && s[1] == '|')
        return adblock_line(b, line, s, n);
    if (s[0] == '|' || s[0] == '/' || memchr(s, '*', n) || memchr(s, '^', n) || memchr(s, '$', n)) {
        skip(b, line, "adblock pattern rules not supported", s, n);
        return 0;
    }

    /* Hosts or plain: drop a trailing comment, split on white space. */
    const char *hash = memchr(s, '#', n);
    if (hash)
        n = (size_t)(hash - s);
    const char *tok[64];
    size_t len[64];
    size_t ntok = 0;
    for (size_t i = 0; i < n;) {
        while (i < n && is_blank(s[i]))
            i++;
        if (i == n)
            break;
        size_t start = i;
        while (i < n && !is_blank(s[i]))
            i++;
        if (ntok < 64) {
            tok[ntok] = s + start;
            len[ntok] = i - start;
        }
        ntok++;
    }
    if (ntok == 0)
        return 0;
    if (ntok > 64) {
        skip(b, line, "too many names on one line", NULL, 0);
        return 0;
    }
    if (is_address(tok[0], len[0])) {
        if (ntok == 1)
            skip(b, line, "address without names", tok[0], len[0]);
        for (size_t i = 1; i < ntok; i++) {
            if (is_reserved(tok[i], len[i]))
                continue;
            if (add_domain(b, line, tok[i], len[i]) != 0)
                return -1;
        }
        return 0;
    }
    if (ntok > 1) {
        skip(b, line, "unrecognised line", s, n);
        return 0;
    }
    if (is_reserved(tok[0], len[0]))
        return 0;
    return add_domain(b, line, tok[0], len[0]);
}

int acl_list_parse(const char *text, size_t len, char ***domains, size_t *count,
                   struct acl_list_stats *stats)
{
    struct list_builder b = {.stats = stats};
    memset(stats, 0, sizeof(*stats));
    *domains = NULL;
    *count = 0;

    const char *p = text, *end = text + len;
    for (int line = 1; p < end; line++) {
        const char *eol = memchr(p, '\n', (size_t)(end - p));
        const char *next = eol ? eol + 1 : end;
        if (!eol)
            eol = end;
        while (p < eol && is_blank(*p))
            p++;
        size_t n = (size_t)(eol - p);
        while (n > 0 && is_blank(p[n - 1]))
            n--;
        if (parse_line(&b, line, p, n) != 0) {
            free(b.set);
            acl_list_free(b.domains, b.count);
            memset(stats, 0, sizeof(*stats));
            return -1;
        }
        p = next;
    }
    free(b.set);
    *domains = b.domains;
    *count = b.count;
    return 0;
}

void acl_list_free(char **domains, size_t count)
{
    if (!domains)
        return;
    for (size_t i = 0; i < count; i++)
        free(domains[i]);
    free(domains);
}
