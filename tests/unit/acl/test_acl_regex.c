/* test_acl_regex.c: the regex prefilters. The literal a pattern is filed under must be in
 * every string the pattern matches, or a deny rule would be skipped; patterns joined into one
 * alternation must keep their meaning. */
#include "acl/acl_regex.h"

#include <check.h>
#include <stdlib.h>
#include <string.h>

struct literal_case {
    const char *pattern;
    const char *want; /* "" = none */
};

static const struct literal_case literal_cases[] = {
    {"^https?://[^/]+/ads/v[0-9]+/", "/ads/v"},
    {"/banner[0-9]*\\.gif", "/banner"},
    {"\\.doubleclick\\.net", ".doubleclick.net"},
    {"ADS", "ads"},
    {"abcd?efg", "abc"},
    {"ab?cdef", "cdef"},
    {"abcd*ef", "abc"},
    {"abcd+ef", "abc"},
    {"abcd{2}xy", "abc"},
    {"abcd{2,5}xy", "abc"},
    {"ab{x}cd", "x}cd"},
    {"foo|barbaz", ""},
    {"(foo|bar)bazq", "bazq"},
    {"(?:x|y)*track", "track"},
    {"[abc]xyz[def]", "xyz"},
    {"[]abc]xyz", "xyz"},
    {"[[:alpha:]]+qqq", "qqq"},
    {"\\Qa.b\\E", ""},
    {"(?x) a b c d", ""},
    {"a(*ACCEPT)bcdef", ""},
    {"\\x41BCD", "bcd"},
    {"\\x{41}BCD", "bcd"},
    {"\\101BCD", "bcd"},
    {"\\d\\d\\dabc", "abc"},
    {"\\p{L}abc", "abc"},
    {"(?i)Track", "track"},
    {"(?#comment)abcd", "abcd"},
    {"ab\\.cd", "ab.cd"},
    {"a.b.c", "a"},
};

START_TEST(test_literal_is_the_required_one)
{
    const struct literal_case *c = &literal_cases[_i];
    char out[128];
    size_t n = acl_regex_literal(c->pattern, strlen(c->pattern), out, sizeof(out));
    ck_assert_msg(n == strlen(c->want) && memcmp(out, c->want, n) == 0,
                  "'%s': literal '%.*s', want '%s'", c->pattern, (int)n, out, c->want);
}
END_TEST

/* Property: whenever the pattern matches a subject, the literal is in the subject. */
static const char *const subjects[] = {
    "http://x/ads/v1/",
    "https://a.b/ads/v22/x",
    "/banner.gif",
    "/banner12.gif",
    ".DoubleClick.NET",
    "abcefg",
    "abcdefg",
    "abcdddef",
    "abcddxy",
    "abcdddddxy",
    "ab{x}cd",
    "foo",
    "barbaz",
    "xybazq",
    "xytrack",
    "]xyzd",
    "axyzd",
    "aqqq",
    "a.b",
    "abcd",
    "ABCD",
    "123abc",
    "ab.cd",
    "a1b2c",
    "Track",
    "abcccccc",
    "bazq",
};

START_TEST(test_literal_is_in_every_match)
{
    const struct literal_case *c = &literal_cases[_i];
    char lit[128];
    char msg[128];
    size_t n = acl_regex_literal(c->pattern, strlen(c->pattern), lit, sizeof(lit));
    pcre2_code *re =
        acl_regex_compile(c->pattern, strlen(c->pattern), true, false, msg, sizeof(msg));
    ck_assert_msg(re != NULL, "%s: %s", c->pattern, msg);
    pcre2_match_data *md = pcre2_match_data_create(1, NULL);
    for (size_t i = 0; i < sizeof(subjects) / sizeof(subjects[0]); i++) {
        const char *s = subjects[i];
        if (pcre2_match(re, (PCRE2_SPTR)s, strlen(s), 0, 0, md, NULL) < 0)
            continue;
        bool found = false;
        for (size_t k = 0; !found && k + n <= strlen(s); k++)
            found = acl_equal_nocase(s + k, lit, n);
        ck_assert_msg(found, "'%s' matches '%s' without literal '%.*s'", c->pattern, s, (int)n,
                      lit);
    }
    pcre2_match_data_free(md);
    pcre2_code_free(re);
}
END_TEST

struct join_case {
    const char *pattern;
    bool joinable;
};

static const struct join_case join_cases[] = {
    {"\\.(gif|png)$", true},  {"^https?://[0-9.]+/", true}, {"(?i)abc", true},  {"(a)\\1", false},
    {"(?<n>a)\\k<n>", false}, {"a(*COMMIT)b", false},       {"(a)(?1)", false}, {"(a)(?-1)", false},
    {"(?R)?x", false},        {"(?x) a # b", false},        {"(?ix)a", false},  {"\\Qa|b", false},
    {"(a)?(?(1)b|c)", false}, {"(?-i)abc", true},
};

START_TEST(test_joinable_refuses_what_would_change_meaning)
{
    const struct join_case *c = &join_cases[_i];
    char msg[128];
    pcre2_code *re =
        acl_regex_compile(c->pattern, strlen(c->pattern), false, false, msg, sizeof(msg));
    ck_assert_msg(re != NULL, "%s: %s", c->pattern, msg);
    ck_assert_msg(acl_regex_joinable(re, c->pattern, strlen(c->pattern)) == c->joinable,
                  "'%s' joinable should be %d", c->pattern, c->joinable);
    pcre2_code_free(re);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("acl_regex");
    TCase *tc = tcase_create("regex");
    int nl = (int)(sizeof(literal_cases) / sizeof(literal_cases[0]));
    tcase_add_loop_test(tc, test_literal_is_the_required_one, 0, nl);
    tcase_add_loop_test(tc, test_literal_is_in_every_match, 0, nl);
    tcase_add_loop_test(tc, test_joinable_refuses_what_would_change_meaning, 0,
                        (int)(sizeof(join_cases) / sizeof(join_cases[0])));
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
