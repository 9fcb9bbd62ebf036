/* acl_regex.c: compiling host-regex and url-regex patterns, proving which literal a pattern
 * needs, and the trigram index built from those literals (see acl_regex.h for why).
 */
#include "acl/acl_regex.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

pcre2_code *acl_regex_compile(const char *pattern, size_t len, bool caseless, bool jit, char *msg,
                              size_t msglen)
{
    int errcode;
    PCRE2_SIZE erroff;
    uint32_t opts = caseless ? PCRE2_CASELESS : 0;
    pcre2_code *re = pcre2_compile((PCRE2_SPTR)pattern, len, opts, &errcode, &erroff, NULL);
    if (!re) {
        PCRE2_UCHAR text[160];
        if (pcre2_get_error_message(errcode, text, sizeof(text)) < 0)
            snprintf((char *)text, sizeof(text), "error %d", errcode);
        snprintf(msg, msglen, "%s at offset %zu", (const char *)text, (size_t)erroff);
        return NULL;
    }
    /* Without JIT (unsupported CPU, no executable memory) the interpreter still works. */
    if (jit)
        (void)pcre2_jit_compile(re, PCRE2_JIT_COMPLETE);
    return re;
}

static bool is_alnum(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

static bool is_digit(unsigned char c)
{
    return c >= '0' && c <= '9';
}

/* Index just past the class that starts at p[i] == '[', or n + 1 if unterminated. */
static size_t skip_class(const char *p, size_t n, size_t i)
{
    i++;
    if (i < n && p[i] == '^')
        i++;
    if (i < n && p[i] == ']')
        i++;
    while (i < n) {
        if (p[i] == '\\') {
            i += 2;
        } else if (p[i] == '[' && i + 1 < n && p[i + 1] == ':') {
            const char *e = memmem(p + i + 2, n - i - 2, ":]", 2);
            if (!e)
                return n + 1;
            i = (size_t)(e - p) + 2;
        } else if (p[i] == ']') {
            return i + 1;
        } else {
            i++;
        }
    }
    return n + 1;
}

/* Index just past the group that starts at p[i] == '(', or n + 1 if the pattern is beyond
 * this scanner (unbalanced, or an extended-mode switch that changes what spaces mean). */
static size_t skip_group(const char *p, size_t n, size_t i)
{
    if (i + 1 < n && p[i + 1] == '?') {
        if (i + 2 < n && p[i + 2] == '#') {
            const char *e = memchr(p + i + 3, ')', n - i - 3);
            return e ? (size_t)(e - p) + 1 : n + 1;
        }
        size_t j = i + 2;
        bool has_x = false;
        while (j < n && (is_alnum((unsigned char)p[j]) || p[j] == '-' || p[j] == '^')) {
            has_x |= p[j] == 'x';
            j++;
        }
        if (has_x)
            return n + 1;
    }
    int depth = 0;
    while (i < n) {
        char c = p[i];
        if (c == '\\') {
            i += 2;
        } else if (c == '[') {
            i = skip_class(p, n, i);
        } else if (c == '(') {
            depth++;
            i++;
        } else if (c == ')') {
            i++;
            if (--depth == 0)
                return i;
        } else {
            i++;
        }
    }
    return n + 1;
}

/* Index just past the arguments of an escape letter at p[i - 1] ("\x{41}", "\p{L}",
 * "\g<1>", "\012", "\cA"). */
static size_t skip_escape_args(const char *p, size_t n, size_t i, unsigned char letter)
{
    if (is_digit(letter)) {
        while (i < n && is_digit((unsigned char)p[i]))
            i++;
        return i;
    }
    if (letter == 'c')
        return i + 1;
    if (i < n && (p[i] == '{' || p[i] == '<' || p[i] == '\'')) {
        char close = p[i] == '{' ? '}' : p[i] == '<' ? '>' : '\'';
        const char *e = memchr(p + i + 1, close, n - i - 1);
        return e ? (size_t)(e - p) + 1 : n;
    }
    if (letter == 'x') {
        for (int k = 0; k < 2 && i < n; k++, i++) {
            unsigned char c = (unsigned char)p[i];
            if (!is_digit(c) && !((c | 32) >= 'a' && (c | 32) <= 'f'))
                break;
        }
    }
    return i;
}

/* If p[i] == '{' opens a counted quantifier ("{2}", "{1,3}", "{2,}"), the index past it. */
static size_t quantifier_end(const char *p, size_t n, size_t i)
{
    for (size_t j = i + 1; j < n; j++) {
        if (p[j] == '}')
            return j + 1;
        if (!is_digit((unsigned char)p[j]) && p[j] != ',' && p[j] != ' ')
            return 0;
    }
    return 0;
}

bool acl_regex_joinable(const pcre2_code *re, const char *p, size_t n)
{
    static const char *const refuse[] = {"(*",  "\\Q", "\\g", "\\k", "(?R", "(?&",
                                         "(?P", "(?(", "(?<", "(?'", "(?x", "(?|"};
    uint32_t backrefs = 1;
    if (pcre2_pattern_info(re, PCRE2_INFO_BACKREFMAX, &backrefs) != 0 || backrefs != 0)
        return false;
    for (size_t i = 0; i < sizeof(refuse) / sizeof(refuse[0]); i++) {
        if (memmem(p, n, refuse[i], strlen(refuse[i])))
            return false;
    }
    for (size_t i = 0; i + 2 < n; i++) {
        if (p[i] != '(' || p[i + 1] != '?')
            continue;
        char c = p[i + 2];
        /* (?1) (?+1) (?-1): calls by number; (?...x...): extended mode switched on. */
        if (is_digit((unsigned char)c) || c == '+' ||
            (c == '-' && i + 3 < n && is_digit((unsigned char)p[i + 3])))
            return false;
        for (size_t j = i + 2;
             j < n && (is_alnum((unsigned char)p[j]) || p[j] == '-' || p[j] == '^'); j++) {
            if (p[j] == 'x')
                return false;
        }
    }
    return true;
}

size_t acl_regex_literal(const char *p, size_t n, char *out, size_t cap)
{
    char run[256];
    size_t rlen = 0, best = 0;
    bool last_lit = false;

    /* Verbs such as (*ACCEPT) can end a match before any literal; \Q..\E hides structure. */
    if (memmem(p, n, "(*", 2) || memmem(p, n, "\\Q", 2))
        return 0;

#define END_RUN()                                                                                  \
    do {                                                                                           \
        if (rlen > best) {                                                                         \
            best = rlen < cap ? rlen : cap;                                                        \
            memcpy(out, run, best);                                                                \
        }                                                                                          \
        rlen = 0;                                                                                  \
        last_lit = false;                                                                          \
    } while (0)

    size_t i = 0;
    while (i < n) {
        unsigned char c = (unsigned char)p[i];
        if (c == '\\') {
            if (i + 1 >= n)
                return 0;
            unsigned char d = (unsigned char)p[i + 1];
            if (is_alnum(d)) {
                i = skip_escape_args(p, n, i + 2, d);
                END_RUN();
                continue;
            }
            c = d;
            i += 2;
        } else if (c == '[') {
            i = skip_class(p, n, i);
            if (i > n)
                return 0;
            END_RUN();
            continue;
        } else if (c == '(') {
            i = skip_group(p, n, i);
            if (i > n)
                return 0;
            END_RUN();
            continue;
        } else if (c == ')' || c == '|') {
            return 0;
        } else if (c == '.' || c == '^' || c == '$') {
            i++;
            END_RUN();
            continue;
        } else if (c == '?' || c == '*' || c == '+' || c == '{') {
            /* The item before a quantifier may be absent or repeated: drop it from the run. */
            if (last_lit && rlen > 0)
                rlen--;
            size_t q = c == '{' ? quantifier_end(p, n, i) : 0;
            i = q ? q : i + 1;
            END_RUN();
            continue;
        } else {
            i++;
        }
        if (rlen < sizeof(run))
            run[rlen++] = (char)acl_lower(c);
        last_lit = true;
    }
    END_RUN();
#undef END_RUN
    return best;
}

int acl_regex_index_build(struct acl_regex_index *ix, const uint32_t *rules,
                          const char *const *lits, const size_t *lens, size_t n)
{
    memset(ix, 0, sizeof(*ix));
    uint32_t *freq = calloc(ACL_REGEX_BUCKETS, sizeof(uint32_t));
    uint32_t *chosen = malloc((n ? n : 1) * sizeof(uint32_t));
    uint32_t *chosen_off = malloc((n ? n : 1) * sizeof(uint32_t));
    ix->bucket_off = calloc(ACL_REGEX_BUCKETS + 1, sizeof(uint32_t));
    ix->members = malloc((n ? n : 1) * sizeof(*ix->members));
    size_t lits_total = 0;
    for (size_t i = 0; i < n; i++)
        lits_total += lens[i];
    ix->lits = malloc(lits_total ? lits_total : 1);
    if (!freq || !chosen || !chosen_off || !ix->bucket_off || !ix->members || !ix->lits) {
        free(freq);
        free(chosen);
        free(chosen_off);
        acl_regex_index_free(ix);
        return -1;
    }

    /* File each regex under the trigram of its literal that the fewest literals share. */
    for (size_t i = 0; i < n; i++) {
        for (size_t k = 0; k + 3 <= lens[i]; k++)
            freq[acl_regex_bucket(acl_regex_trigram(lits[i] + k))]++;
    }
    for (size_t i = 0; i < n; i++) {
        uint32_t best = 0;
        for (size_t k = 1; k + 3 <= lens[i]; k++) {
            if (freq[acl_regex_bucket(acl_regex_trigram(lits[i] + k))] <
                freq[acl_regex_bucket(acl_regex_trigram(lits[i] + best))])
                best = (uint32_t)k;
        }
        chosen_off[i] = best;
        chosen[i] = acl_regex_bucket(acl_regex_trigram(lits[i] + best));
        ix->bucket_off[chosen[i] + 1]++;
    }
    for (uint32_t b = 0; b < ACL_REGEX_BUCKETS; b++)
        ix->bucket_off[b + 1] += ix->bucket_off[b];
    /* Counting sort by bucket; stable, so each bucket stays in ascending rule order. */
    memset(freq, 0, ACL_REGEX_BUCKETS * sizeof(uint32_t));
    for (size_t i = 0; i < n; i++) {
        uint32_t b = chosen[i];
        struct acl_regex_member *m = &ix->members[ix->bucket_off[b] + freq[b]++];
        m->rule = rules[i];
        m->lit_off = (uint32_t)ix->lits_len;
        m->lit_len = (uint32_t)lens[i];
        m->tri = acl_regex_trigram(lits[i] + chosen_off[i]);
        m->tri_off = chosen_off[i];
        memcpy(ix->lits + ix->lits_len, lits[i], lens[i]);
        ix->lits_len += lens[i];
    }
    ix->nmembers = n;
    free(freq);
    free(chosen);
    free(chosen_off);
    return 0;
}

void acl_regex_index_free(struct acl_regex_index *ix)
{
    free(ix->bucket_off);
    free(ix->members);
    free(ix->lits);
    memset(ix, 0, sizeof(*ix));
}

size_t acl_regex_index_memory(const struct acl_regex_index *ix)
{
    if (!ix->bucket_off)
        return 0;
    return (ACL_REGEX_BUCKETS + 1) * sizeof(uint32_t) + ix->nmembers * sizeof(*ix->members) +
           ix->lits_len;
}
