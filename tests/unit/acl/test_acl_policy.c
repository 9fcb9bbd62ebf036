/* test_acl_policy.c: policy text split into rules (comments, continuations, ids, errors with
 * line numbers), and every policy file and list shipped under policies/ parses and compiles. */
#include "acl/acl.h"

#include <check.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef PX_POLICY_DIR
#error "PX_POLICY_DIR must name the policies/ folder"
#endif

struct policy_case {
    const char *text;
    int nrules;       /* -1: error expected */
    const char *want; /* first rule's text, or the error substring */
    int want_line;    /* first rule's id, or the error line */
};

static const struct policy_case cases[] = {
    {"", 0, NULL, 0},
    {"# only comments\n\n   # indented comment\n", 0, NULL, 0},
    {"deny domain a.com\n", 1, "deny domain a.com", 1},
    {"\n\ndeny domain a.com   # why\n", 1, "deny domain a.com", 3},
    {"deny domain a.com\r\nallow any\r\n", 2, "deny domain a.com", 1},
    {"deny domain a.com\n  schedule mon-fri 09:00-17:00\n\tclients 10.0.0.0/8\n", 1,
     "deny domain a.com schedule mon-fri 09:00-17:00 clients 10.0.0.0/8", 1},
    {"deny domain a.com\n  # comment between\n  schedule daily 09:00-10:00\n", 1,
     "deny domain a.com schedule daily 09:00-10:00", 1},
    {"deny url-regex \"^http://x/#frag\" # real comment\n", 1, "deny url-regex \"^http://x/#frag\"",
     1},
    {"deny url-regex ^http://x/a#b\n", 1, "deny url-regex ^http://x/a#b", 1},
    {"deny domain a.com\n\n  \n", 1, "deny domain a.com", 1},
    {"  deny domain a.com\n", -1, "line 1: continuation line", 1},
    {"deny domain a.com\nallow any\nfrobnicate\n", -1, "line 3: unknown action 'frobnicate'", 3},
    {"deny domain a.com\n\ndeny url-regex ^(x\n", -1,
     "line 3: url-regex: missing closing parenthesis at offset 3", 3},
    {"deny domain a.com\n  schedule mon-fri\n", -1, "line 1: schedule: missing argument", 1},
    {"deny domain a.com\ndeny url-regex \"abc\n", -1, "line 2: url-regex: unterminated quote", 2},
};

START_TEST(test_policy_text_splits_into_rules)
{
    const struct policy_case *c = &cases[_i];
    struct acl_policy p;
    struct acl_error err;
    int rc = acl_policy_parse(c->text, strlen(c->text), &p, &err);
    if (c->nrules < 0) {
        ck_assert_msg(rc == -1, "case %d accepted", _i);
        ck_assert_msg(strstr(err.msg, c->want), "case %d: '%s' lacks '%s'", _i, err.msg, c->want);
        ck_assert_int_eq(err.line, c->want_line);
        ck_assert_uint_eq(p.nrules, 0);
        return;
    }
    ck_assert_msg(rc == 0, "case %d: %s", _i, err.msg);
    ck_assert_uint_eq(p.nrules, (size_t)c->nrules);
    if (c->nrules > 0) {
        ck_assert_str_eq(p.rules[0].text, c->want);
        ck_assert_int_eq(p.rules[0].id, c->want_line);
        ck_assert(p.rules[0].enabled);
    }
    acl_policy_free(&p);
}
END_TEST

static char *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    ck_assert_msg(f != NULL, "cannot open %s", path);
    char *buf = NULL;
    size_t cap = 0;
    *len = 0;
    for (;;) {
        if (*len + 4096 > cap) {
            cap = cap ? cap * 2 : 8192;
            buf = realloc(buf, cap);
            ck_assert_ptr_nonnull(buf);
        }
        size_t n = fread(buf + *len, 1, cap - *len, f);
        if (n == 0)
            break;
        *len += n;
    }
    fclose(f);
    return buf;
}

struct loaded_list {
    char name[64];
    char **domains;
    size_t count;
};

static size_t load_lists(struct loaded_list *out, size_t cap)
{
    DIR *d = opendir(PX_POLICY_DIR "/lists");
    ck_assert_ptr_nonnull(d);
    size_t n = 0;
    struct dirent *e;
    while ((e = readdir(d)) && n < cap) {
        size_t l = strlen(e->d_name);
        if (l < 5 || strcmp(e->d_name + l - 4, ".txt") != 0)
            continue;
        char path[512];
        snprintf(path, sizeof(path), "%s/lists/%s", PX_POLICY_DIR, e->d_name);
        size_t len;
        char *text = read_file(path, &len);
        struct acl_list_stats st;
        ck_assert_int_eq(acl_list_parse(text, len, &out[n].domains, &out[n].count, &st), 0);
        ck_assert_msg(st.skipped == 0, "%s:%d: %s", path, st.first_skipped_line,
                      st.first_skipped_reason);
        ck_assert_msg(out[n].count >= 10, "%s has only %zu domains", path, out[n].count);
        snprintf(out[n].name, sizeof(out[n].name), "%.*s", (int)(l - 4), e->d_name);
        free(text);
        n++;
    }
    closedir(d);
    return n;
}

static int check_policies_in(const char *dir, const struct acl_list_src *ls, size_t nls)
{
    DIR *d = opendir(dir);
    ck_assert_msg(d != NULL, "cannot open %s", dir);
    int files = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        size_t l = strlen(e->d_name);
        if (l < 8 || strcmp(e->d_name + l - 7, ".policy") != 0)
            continue;
        char path[512];
        snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
        size_t len;
        char *text = read_file(path, &len);
        struct acl_policy p;
        struct acl_error err;
        ck_assert_msg(acl_policy_parse(text, len, &p, &err) == 0, "%s: %s", path, err.msg);
        ck_assert_msg(p.nrules >= 3, "%s: only %zu rules", path, p.nrules);
        struct acl_config cfg = {.rules = p.rules, .nrules = p.nrules, .lists = ls, .nlists = nls};
        struct acl_set *set = acl_set_compile(&cfg, &err);
        ck_assert_msg(set != NULL, "%s: %s", path, err.msg);
        acl_set_free(set);
        acl_policy_free(&p);
        free(text);
        files++;
    }
    closedir(d);
    return files;
}

START_TEST(test_shipped_policies_and_lists_are_valid)
{
    struct loaded_list lists[16];
    size_t n = load_lists(lists, 16);
    ck_assert_uint_ge(n, 1);
    struct acl_list_src ls[16];
    for (size_t i = 0; i < n; i++)
        ls[i] = (struct acl_list_src){lists[i].name, (const char *const *)lists[i].domains,
                                      lists[i].count};
    ck_assert_int_eq(check_policies_in(PX_POLICY_DIR, ls, n), 1);
    ck_assert_int_ge(check_policies_in(PX_POLICY_DIR "/examples", ls, n), 2);
    for (size_t i = 0; i < n; i++)
        acl_list_free(lists[i].domains, lists[i].count);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("acl_policy");
    TCase *tc = tcase_create("policy");
    tcase_add_loop_test(tc, test_policy_text_splits_into_rules, 0,
                        (int)(sizeof(cases) / sizeof(cases[0])));
    tcase_add_test(tc, test_shipped_policies_and_lists_are_valid);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
