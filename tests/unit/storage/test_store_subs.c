/* test_store_subs: list subscriptions: add (one per list, due at once), list, get, the
 * outcome of a fetch recorded and read back, delete; adding and deleting are audited and
 * move no policy version; bad input is refused before anything is stored. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/clock.h"
#include "storage/store.h"
#include "tests/unit/common.h"

TEST_STORE_FIXTURE

static void last_audit(char *action, size_t alen, char *detail, size_t dlen)
{
    struct store_audit *rows;
    size_t n;

    ck_assert_int_eq(store_audit_list(st, 0, 1, &rows, &n, err, sizeof(err)), 0);
    ck_assert_uint_eq(n, 1);
    snprintf(action, alen, "%s", rows[0].action);
    snprintf(detail, dlen, "%s", rows[0].detail);
    free(rows);
}

START_TEST(test_add_record_get_delete)
{
    struct store_sub *rows, s;
    char action[32], detail[512];
    int64_t v = store_policy_version(st);
    size_t n;

    ck_assert_int_eq(
        store_sub_add(st, "ads", "https://lists.example/ads.txt", 86400, "alice", err, sizeof(err)),
        0);
    last_audit(action, sizeof(action), detail, sizeof(detail));
    ck_assert_str_eq(action, "subscription.add");
    ck_assert_str_eq(detail, "list ads: https://lists.example/ads.txt every 86400s");
    /* One per list. */
    ck_assert_int_eq(
        store_sub_add(st, "ads", "http://other.example/", 60, "alice", err, sizeof(err)), 1);
    ck_assert_msg(strstr(err, "already has a subscription") != NULL, "%s", err);
    ck_assert_int_eq(
        store_sub_add(st, "trackers", "http://t.example/x", 3600, "bob", err, sizeof(err)), 0);

    ck_assert_int_eq(store_subs_list(st, &rows, &n, err, sizeof(err)), 0);
    ck_assert_uint_eq(n, 2);
    ck_assert_str_eq(rows[0].name, "ads"); /* by name */
    ck_assert_str_eq(rows[0].url, "https://lists.example/ads.txt");
    ck_assert_int_eq(rows[0].every_s, 86400);
    ck_assert_int_eq(rows[0].next_ms, 0); /* due at once */
    ck_assert_int_eq(rows[0].checked_ms, 0);
    ck_assert_int_eq(rows[0].entries, -1);
    ck_assert_str_eq(rows[0].error, "");
    ck_assert_str_eq(rows[1].name, "trackers");
    free(rows);

    /* A fetch's outcome, read back as written. */
    ck_assert_int_eq(store_sub_get(st, "ads", &s, err, sizeof(err)), 0);
    s.checked_ms = 1000;
    s.next_ms = 1000 + 86400 * 1000LL;
    s.imported_ms = 900;
    s.entries = 81234;
    s.status = 200;
    snprintf(s.etag, sizeof(s.etag), "\"v1\"");
    snprintf(s.last_modified, sizeof(s.last_modified), "Tue, 01 Dec 2026 07:00:00 GMT");
    snprintf(s.error, sizeof(s.error), "it's \"quoted\"; and 'kept'");
    ck_assert_int_eq(store_sub_record(st, &s, err, sizeof(err)), 0);
    memset(&s, 0, sizeof(s));
    ck_assert_int_eq(store_sub_get(st, "ads", &s, err, sizeof(err)), 0);
    ck_assert_int_eq(s.checked_ms, 1000);
    ck_assert_int_eq(s.next_ms, 1000 + 86400 * 1000LL);
    ck_assert_int_eq(s.imported_ms, 900);
    ck_assert_int_eq(s.entries, 81234);
    ck_assert_int_eq(s.status, 200);
    ck_assert_str_eq(s.etag, "\"v1\"");
    ck_assert_str_eq(s.last_modified, "Tue, 01 Dec 2026 07:00:00 GMT");
    ck_assert_str_eq(s.error, "it's \"quoted\"; and 'kept'");
    ck_assert_str_eq(s.url, "https://lists.example/ads.txt");

    ck_assert_int_eq(store_sub_delete(st, "ads", "alice", err, sizeof(err)), 0);
    last_audit(action, sizeof(action), detail, sizeof(detail));
    ck_assert_str_eq(action, "subscription.delete");
    ck_assert_str_eq(detail, "list ads");
    ck_assert_int_eq(store_sub_get(st, "ads", &s, err, sizeof(err)), 1);
    ck_assert_int_eq(store_sub_delete(st, "ads", "alice", err, sizeof(err)), 1);
    ck_assert_msg(strstr(err, "has no subscription") != NULL, "%s", err);
    /* None of it is a policy change. */
    ck_assert_int_eq(store_policy_version(st), v);
}
END_TEST

/* A download's import and record reach only the subscription it was made for: one removed, or
 * removed and added again, meanwhile is not marked, and its record goes nowhere. */
START_TEST(test_import_and_record_need_the_same_subscription)
{
    struct store_sub old, now;

    ck_assert_int_eq(store_sub_add(st, "ads", "http://a.example/1", 3600, "t", err, sizeof(err)),
                     0);
    ck_assert_int_eq(store_sub_get(st, "ads", &old, err, sizeof(err)), 0);
    ck_assert_int_gt(old.created_ms, 0);
    ck_assert_int_eq(store_sub_import_mark(st, "ads", old.url, old.created_ms, err, sizeof(err)),
                     0);
    ck_assert_int_eq(store_sub_get(st, "ads", &now, err, sizeof(err)), 0);
    ck_assert_int_gt(now.imported_ms, 0);
    ck_assert_int_eq(
        store_sub_import_mark(st, "ads", "http://a.example/2", old.created_ms, err, sizeof(err)),
        1);
    ck_assert_int_eq(
        store_sub_import_mark(st, "ads", old.url, old.created_ms + 1, err, sizeof(err)), 1);

    ck_assert_int_eq(store_sub_delete(st, "ads", "t", err, sizeof(err)), 0);
    ck_assert_int_eq(store_sub_import_mark(st, "ads", old.url, old.created_ms, err, sizeof(err)),
                     1);
    /* Added again, later (created_ms moves). */
    while (clock_wall_ms() <= old.created_ms)
        ;
    ck_assert_int_eq(store_sub_add(st, "ads", old.url, 3600, "t", err, sizeof(err)), 0);
    ck_assert_int_eq(store_sub_import_mark(st, "ads", old.url, old.created_ms, err, sizeof(err)),
                     1);
    old.checked_ms = 1234;
    old.entries = 7;
    ck_assert_int_eq(store_sub_record(st, &old, err, sizeof(err)), 0);
    ck_assert_int_eq(store_sub_get(st, "ads", &now, err, sizeof(err)), 0);
    ck_assert_int_eq(now.checked_ms, 0);
    ck_assert_int_eq(now.entries, -1);
    ck_assert_int_eq(now.imported_ms, 0);
}
END_TEST

START_TEST(test_bad_input_is_refused)
{
    char url[STORE_SUB_URL_MAX + 2];
    struct store_sub *rows;
    size_t n;

    memset(url, 'a', sizeof(url) - 1);
    url[sizeof(url) - 1] = '\0';
    ck_assert_int_eq(store_sub_add(st, "", "http://x.example/", 60, "t", err, sizeof(err)), -1);
    ck_assert_int_eq(store_sub_add(st, "x", "", 60, "t", err, sizeof(err)), -1);
    ck_assert_int_eq(store_sub_add(st, "x", "http://x.example/", 0, "t", err, sizeof(err)), -1);
    ck_assert_int_eq(store_sub_add(st, "x", url, 60, "t", err, sizeof(err)), -1);
    ck_assert_int_eq(store_subs_list(st, &rows, &n, err, sizeof(err)), 0);
    ck_assert_uint_eq(n, 0);
    free(rows);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("store_subs");
    TCase *tc = tcase_create("subs");
    SRunner *sr;
    int failed;

    tcase_add_checked_fixture(tc, store_setup, store_teardown);
    tcase_add_test(tc, test_add_record_get_delete);
    tcase_add_test(tc, test_import_and_record_need_the_same_subscription);
    tcase_add_test(tc, test_bad_input_is_refused);
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
