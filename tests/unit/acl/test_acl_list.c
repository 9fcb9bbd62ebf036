/* test_acl_list.c: list import: hosts, plain and adblock lines in one file, what is kept, what
 * is skipped and why, duplicates, and a 100,000-line list. */
#include "acl/acl.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char mixed[] =
    "# hosts part\n"                                              /* 1 */
    "127.0.0.1 localhost\n"                                       /* 2 */
    "127.0.0.1\tlocalhost.localdomain local\n"                    /* 3 */
    "255.255.255.255 broadcasthost\n"                             /* 4 */
    "0.0.0.0 0.0.0.0\n"                                           /* 5 */
    "0.0.0.0 Ads.Example.com. b.example.com # trailing comment\n" /* 6 */
    "::1 ip6-localhost v6.example.com\n"                          /* 7 */
    "\n"                                                          /* 8 */
    "plain.example.org\n"                                         /* 9 */
    "  spaced.example.org  \r\n"                                  /* 10 */
    "ads.example.com\n"                                           /* 11: duplicate */
    "! adblock comment\n"                                         /* 12 */
    "[Adblock Plus 2.0]\n"                                        /* 13 */
    "||adblock.example.net^\n"                                    /* 14 */
    "||third.example.net^$third-party\n"                          /* 15 */
    "/ads/*\n"                                                    /* 16 */
    "example.com##.banner\n"                                      /* 17 */
    "@@||good.example.net^\n"                                     /* 18 */
    "bad_but_ok_underscore.example\n"                             /* 19 */
    "bad..dots.example\n"                                         /* 20 */
    "two words\n"                                                 /* 21 */
    "||path.example.net^/x\n"                                     /* 22 */
    "0.0.0.0\n"                                                   /* 23 */
    "x.aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.example\n"; /* 24 */

static const char *const want_domains[] = {
    "ads.example.com",
    "b.example.com",
    "v6.example.com",
    "plain.example.org",
    "spaced.example.org",
    "adblock.example.net",
    "bad_but_ok_underscore.example",
};

static bool has(char **d, size_t n, const char *s)
{
    for (size_t i = 0; i < n; i++) {
        if (strcmp(d[i], s) == 0)
            return true;
    }
    return false;
}

START_TEST(test_mixed_list_keeps_domains_and_counts_the_rest)
{
    char **d;
    size_t n;
    struct acl_list_stats st;
    ck_assert_int_eq(acl_list_parse(mixed, strlen(mixed), &d, &n, &st), 0);
    size_t want = sizeof(want_domains) / sizeof(want_domains[0]);
    for (size_t i = 0; i < want; i++)
        ck_assert_msg(has(d, n, want_domains[i]), "missing %s", want_domains[i]);
    ck_assert_uint_eq(n, want);
    ck_assert_uint_eq(st.added, want);
    ck_assert_uint_eq(st.duplicates, 1);
    /* 15 options, 16 pattern, 17 element hiding, 18 exception, 20 bad, 21 two words,
     * 22 path, 23 address alone, 24 label > 63 */
    ck_assert_uint_eq(st.skipped, 9);
    ck_assert_int_eq(st.first_skipped_line, 15);
    ck_assert_msg(strstr(st.first_skipped_reason, "adblock options not supported"), "%s",
                  st.first_skipped_reason);
    acl_list_free(d, n);
}
END_TEST

struct skip_case {
    const char *line;
    const char *reason;
};

static const struct skip_case skip_cases[] = {
    {"||a.example^$script", "adblock options not supported"},
    {"/banner/*", "adblock pattern rules not supported"},
    {"|http://a.example/", "adblock pattern rules not supported"},
    {"example.com##.ad", "adblock element hiding not supported"},
    {"@@||a.example^", "adblock exception rules not supported"},
    {"||a.example^/path", "adblock path rules not supported"},
    {"||a.example/x", "adblock pattern rules not supported"},
    {"a..example", "invalid domain"},
    {"-$.example", "adblock pattern rules not supported"},
    {"bad!.example", "invalid domain"},
    {"one two", "unrecognised line"},
    {"10.0.0.1", "address without names"},
    {"0.0.0.0 *.wild.example", "adblock pattern rules not supported"},
    {"0.0.0.0 under%score.example", "invalid domain"},
    /* the host forms proxyd's parser refuses never become entries either */
    {"blocked.example..", "invalid domain"},
    {".blocked.example", "invalid domain"},
    {"0.0.0.0 ads.127", "invalid domain"},
    {"0.0.0.0 0x7f.1", "invalid domain"},
    {"0.0.0.0 0127.0.0.1", "invalid domain"},
    /* a line that is not UTF-8 is quoted escaped: the reason goes out as JSON */
    {"caf\xc3.example", "invalid domain 'caf\\xc3.example'"},
    {"bad\xff\x01.example", "invalid domain 'bad\\xff\\x01.example'"},
};

/* Entries written in Unicode are kept as the A-labels browsers send. */
START_TEST(test_unicode_entries_become_a_labels)
{
    const char text[] = "0.0.0.0 b\xc3\xbc"
                        "cher.example\n||stra\xc3\x9f"
                        "e.example^\n"
                        "xn--bcher-kva.example\n";
    char **d;
    size_t n;
    struct acl_list_stats st;
    ck_assert_int_eq(acl_list_parse(text, strlen(text), &d, &n, &st), 0);
    ck_assert_uint_eq(n, 2);
    ck_assert_uint_eq(st.duplicates, 1);
    ck_assert_str_eq(d[0], "xn--bcher-kva.example");
    ck_assert_str_eq(d[1], "xn--strae-oqa.example");
    acl_list_free(d, n);
}
END_TEST

START_TEST(test_unusable_line_is_skipped_with_reason)
{
    const struct skip_case *c = &skip_cases[_i];
    char **d;
    size_t n;
    struct acl_list_stats st;
    ck_assert_int_eq(acl_list_parse(c->line, strlen(c->line), &d, &n, &st), 0);
    ck_assert_uint_eq(n, 0);
    ck_assert_uint_eq(st.skipped, 1);
    ck_assert_int_eq(st.first_skipped_line, 1);
    ck_assert_msg(strstr(st.first_skipped_reason, c->reason), "'%s': reason '%s' lacks '%s'",
                  c->line, st.first_skipped_reason, c->reason);
    acl_list_free(d, n);
}
END_TEST

/* What parsing 100,000 lines does; how long it takes is bench/acl_bench's figure. */
START_TEST(test_hundred_thousand_lines_parse_and_dedupe)
{
    enum { N = 100000 };
    size_t cap = (size_t)N * 40 + 64;
    char *text = malloc(cap);
    ck_assert_ptr_nonnull(text);
    size_t len = 0;
    for (int i = 0; i < N; i++) /* every tenth line repeats an earlier domain */
        len += (size_t)snprintf(text + len, cap - len, "0.0.0.0 host%d.list-%d.example\n",
                                i % 10 == 9 ? i - 9 : i, (i % 10 == 9 ? i - 9 : i) % 97);
    char **d;
    size_t n;
    struct acl_list_stats st;
    ck_assert_int_eq(acl_list_parse(text, len, &d, &n, &st), 0);
    ck_assert_uint_eq(n, N - N / 10);
    ck_assert_uint_eq(st.duplicates, N / 10);
    ck_assert_uint_eq(st.skipped, 0);

    /* And the list compiles into a set that matches its domains and their subdomains. */
    struct acl_list_src l = {"big", (const char *const *)d, n};
    struct acl_rule_src r = {.id = 1, .enabled = true, .text = "deny list big"};
    struct acl_config cfg = {.rules = &r, .nrules = 1, .lists = &l, .nlists = 1};
    struct acl_error err;
    struct acl_set *set = acl_set_compile(&cfg, &err);
    ck_assert_msg(set != NULL, "%s", err.msg);
    acl_list_free(d, n);
    struct acl_scratch *s = acl_scratch_new();
    const char *hosts[] = {"host500.list-15.example", "www.host500.list-15.example",
                           "host509.list-15.example"};
    const int want[] = {1, 1, 0};
    for (int i = 0; i < 3; i++) {
        struct acl_host h;
        const char *why;
        ck_assert_int_eq(acl_host_parse(hosts[i], strlen(hosts[i]), &h, &why), 0);
        struct acl_request req = {.scheme = "http",
                                  .host = &h,
                                  .port = 80,
                                  .path = "/",
                                  .path_len = 1,
                                  .method = "GET",
                                  .method_len = 3};
        struct acl_decision dec;
        acl_eval(set, &req, s, &dec);
        ck_assert_msg(dec.rule_id == want[i], "%s: %s", hosts[i], dec.reason);
    }
    acl_scratch_free(s);
    acl_set_free(set);
    free(text);
}
END_TEST

START_TEST(test_empty_input_gives_empty_list)
{
    char **d;
    size_t n;
    struct acl_list_stats st;
    ck_assert_int_eq(acl_list_parse("", 0, &d, &n, &st), 0);
    ck_assert_uint_eq(n, 0);
    ck_assert_uint_eq(st.added + st.skipped + st.duplicates, 0);
    acl_list_free(d, n);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("acl_list");
    TCase *tc = tcase_create("list");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_mixed_list_keeps_domains_and_counts_the_rest);
    tcase_add_test(tc, test_unicode_entries_become_a_labels);
    tcase_add_loop_test(tc, test_unusable_line_is_skipped_with_reason, 0,
                        (int)(sizeof(skip_cases) / sizeof(skip_cases[0])));
    tcase_add_test(tc, test_hundred_thousand_lines_parse_and_dedupe);
    tcase_add_test(tc, test_empty_input_gives_empty_list);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
