/* test_store_forward: stored port forwards: add, list, delete, one per listen address, ids
 * never reused, each change audited, and none bumps the policy version. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "storage/store.h"
#include "tests/unit/common.h"

TEST_STORE_FIXTURE

/* The newest audit row's action and detail. */
static void last_audit(char *action, char *detail)
{
    struct store_audit *rows;
    size_t n;
    ck_assert_int_eq(store_audit_list(st, 0, 1, &rows, &n, err, sizeof(err)), 0);
    ck_assert_uint_eq(n, 1);
    strcpy(action, rows[0].action);
    strcpy(detail, rows[0].detail);
    free(rows);
}

START_TEST(test_add_list_delete_audited)
{
    char action[32], detail[512];
    int a, b;
    int64_t version = store_policy_version(st);

    ck_assert_int_eq(store_forward_add(st, "0.0.0.0:2222", "10.0.0.4:22", "10.0.0.0/8",
                                       "tls-listen", "", "alice", &a, err, sizeof(err)),
                     0);
    last_audit(action, detail);
    ck_assert_str_eq(action, "forward.add");
    ck_assert_msg(strstr(detail, "0.0.0.0:2222 -> 10.0.0.4:22 clients 10.0.0.0/8 tls-listen"), "%s",
                  detail);
    ck_assert_int_eq(store_forward_add(st, "[::1]:8022", "db.test:5432", "", "tls-target",
                                       "db.corp.test", "bob", &b, err, sizeof(err)),
                     0);
    last_audit(action, detail);
    ck_assert_msg(strstr(detail, "db.test:5432 tls-target tls-name db.corp.test"), "%s", detail);
    ck_assert_int_gt(b, a);

    struct store_forward *f;
    size_t n;
    ck_assert_int_eq(store_forwards_list(st, &f, &n, err, sizeof(err)), 0);
    ck_assert_uint_eq(n, 2);
    ck_assert_int_eq(f[0].id, a);
    ck_assert_str_eq(f[0].listen, "0.0.0.0:2222");
    ck_assert_str_eq(f[0].target, "10.0.0.4:22");
    ck_assert_str_eq(f[0].clients, "10.0.0.0/8");
    ck_assert_str_eq(f[0].tls, "tls-listen");
    ck_assert_int_gt(f[0].created_ms, 0);
    ck_assert_str_eq(f[1].listen, "[::1]:8022");
    ck_assert_str_eq(f[1].clients, "");
    ck_assert_str_eq(f[1].tls, "tls-target");
    ck_assert_str_eq(f[1].tls_name, "db.corp.test");
    ck_assert_str_eq(f[0].tls_name, "");
    free(f);

    ck_assert_int_eq(store_forward_delete(st, a, "carol", err, sizeof(err)), 0);
    last_audit(action, detail);
    ck_assert_str_eq(action, "forward.delete");
    ck_assert_msg(strstr(detail, "0.0.0.0:2222 -> 10.0.0.4:22"), "%s", detail);
    ck_assert_int_eq(store_forwards_list(st, &f, &n, err, sizeof(err)), 0);
    ck_assert_uint_eq(n, 1);
    ck_assert_int_eq(f[0].id, b);
    free(f);
    /* Forwards are not rules: the proxy does not recompile its rule set for them. */
    ck_assert_int_eq(store_policy_version(st), version);
}
END_TEST

START_TEST(test_one_forward_per_listen_address_and_ids_not_reused)
{
    int a, b, c;
    ck_assert_int_eq(
        store_forward_add(st, "127.0.0.1:9000", "a.test:1", "", "", "", "t", &a, err, sizeof(err)),
        0);
    ck_assert_int_eq(
        store_forward_add(st, "127.0.0.1:9000", "b.test:2", "", "", "", "t", &b, err, sizeof(err)),
        1);
    ck_assert_msg(strstr(err, "already listens on 127.0.0.1:9000"), "%s", err);
    ck_assert_int_eq(store_forward_delete(st, a, "t", err, sizeof(err)), 0);
    ck_assert_int_eq(
        store_forward_add(st, "127.0.0.1:9000", "b.test:2", "", "", "", "t", &c, err, sizeof(err)),
        0);
    ck_assert_int_gt(c, a);
}
END_TEST

START_TEST(test_missing_forward_is_reported_and_changes_nothing)
{
    struct store_audit *rows;
    size_t n, before;
    ck_assert_int_eq(store_audit_list(st, 0, 100, &rows, &before, err, sizeof(err)), 0);
    free(rows);
    ck_assert_int_eq(store_forward_delete(st, 42, "t", err, sizeof(err)), 1);
    ck_assert_msg(strstr(err, "no forward 42"), "%s", err);
    ck_assert_int_eq(store_audit_list(st, 0, 100, &rows, &n, err, sizeof(err)), 0);
    free(rows);
    ck_assert_uint_eq(n, before);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("store_forward");
    TCase *tc = tcase_create("forward");
    SRunner *sr;
    int failed;

    tcase_add_checked_fixture(tc, store_setup, store_teardown);
    tcase_add_test(tc, test_add_list_delete_audited);
    tcase_add_test(tc, test_one_forward_per_listen_address_and_ids_not_reused);
    tcase_add_test(tc, test_missing_forward_is_reported_and_changes_nothing);
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
