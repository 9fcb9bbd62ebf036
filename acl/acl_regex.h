/* acl_regex.h: regexes of host-regex and url-regex rules: compiling them (PCRE2, JIT, limits)
 * and the literal prefilter. Running 1,000 regexes on every request costs far more than the
 * 2 us a decision may take, so each regex that must contain some literal of three or more
 * bytes ("/ads/v" in ^https?://[^/]+/ads/v[0-9]+/) is filed under its rarest trigram; for each
 * trigram of the subject, a request runs only the regexes filed under it whose whole literal
 * is there at that place. Regexes without such a literal are run one by one. Internal to acl/.
 */
#ifndef PX_ACL_REGEX_H
#define PX_ACL_REGEX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <pcre2.h>

#define ACL_MATCH_LIMIT 100000
#define ACL_DEPTH_LIMIT 10000
#define ACL_REGEX_BUCKET_BITS 14
#define ACL_REGEX_BUCKETS (1u << ACL_REGEX_BUCKET_BITS)

/* Compiles pattern (caseless for host-regex), JIT-compiled if jit. Returns the code (owned by
 * the caller), or NULL with "missing closing parenthesis at offset 4" in msg. */
pcre2_code *acl_regex_compile(const char *pattern, size_t len, bool caseless, bool jit, char *msg,
                              size_t msglen);

/* Writes to out (lower-cased) the longest literal that every match of pattern contains, and
 * returns its length; 0 if none could be proven (top-level '|', \Q, (?x), ...). Conservative:
 * a shorter or missing literal only costs speed, never a wrong answer. */
size_t acl_regex_literal(const char *pattern, size_t len, char *out, size_t cap);

/* True if pattern still means the same as one alternative of a larger pattern: no verbs,
 * backreferences, numbered or named subroutine calls, conditions, \Q or extended mode. */
bool acl_regex_joinable(const pcre2_code *re, const char *pattern, size_t len);

struct acl_regex_member {
    uint32_t rule;    /* rule index */
    uint32_t lit_off; /* into lits; lower-case */
    uint32_t lit_len;
    uint32_t tri;     /* the trigram it is filed under (acl_regex_trigram) */
    uint32_t tri_off; /* where that trigram starts in the literal */
};

struct acl_regex_index {
    uint32_t *bucket_off;             /* owned; ACL_REGEX_BUCKETS + 1 offsets into members */
    struct acl_regex_member *members; /* owned; per bucket, ascending rule */
    size_t nmembers;
    char *lits; /* owned */
    size_t lits_len;
};

/* Builds an index over n regexes: rules[i] (ascending) whose literal is lits[i] of lens[i]
 * (>= 3 bytes, lower-case). 0 or -1 (no memory). */
int acl_regex_index_build(struct acl_regex_index *ix, const uint32_t *rules,
                          const char *const *lits, const size_t *lens, size_t n);
void acl_regex_index_free(struct acl_regex_index *ix);
size_t acl_regex_index_memory(const struct acl_regex_index *ix);

static inline unsigned char acl_lower(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') ? (unsigned char)(c + 32) : c;
}

/* The trigram at s (3 bytes, any case) as a number, and its bucket. */
static inline uint32_t acl_regex_trigram(const char *s)
{
    return (uint32_t)acl_lower((unsigned char)s[0]) << 16 |
           (uint32_t)acl_lower((unsigned char)s[1]) << 8 | acl_lower((unsigned char)s[2]);
}

static inline uint32_t acl_regex_bucket(uint32_t trigram)
{
    return (trigram * 2654435761u) >> (32 - ACL_REGEX_BUCKET_BITS);
}

/* True if s[0..len) equals lit (lower-case), ignoring ASCII case in s. */
static inline bool acl_equal_nocase(const char *s, const char *lit, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        if (acl_lower((unsigned char)s[i]) != (unsigned char)lit[i])
            return false;
    }
    return true;
}

#endif
