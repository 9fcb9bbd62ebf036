/* test_store_request: block-page access requests: asked, then decided once. An approval in a
 * policy change group (what the admin's Approve makes: its rule and the decision in one
 * transaction) finds a request decided meanwhile, and the group then keeps no rule. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "storage/store.h"
#include "tests/unit/common.h"

TEST_STORE_FIXTURE

static int64_t ask(const char *host)
{
    struct store_request rq = {.port = 443, .rule_id = 1};
    int64_t id = 0;

    snprintf(rq.client, sizeof(rq.client), "10.0.0.9");
    snprintf(rq.host, sizeof(rq.host), "%s", host);
    snprintf(rq.reason, sizeof(rq.reason), "work");
    ck_assert_int_eq(store_request_add(st, &rq, &id, err, sizeof(err)), 0);
    ck_assert_int_gt(id, 0);
    return id;
}

static size_t rules_now(void)
{
    struct store_rule *rules;
    size_t n;

    ck_assert_int_eq(store_rules_list(st, &rules, &n, err, sizeof(err)), 0);
    store_rules_free(rules, n);
    return n;
}

/* An approval as the admin server makes it: the rule, then the decision, in one group. */
static int approve_in_group(int64_t id)
{
    int rule = 0;

    ck_assert_int_eq(store_change_begin(st, -1, err, sizeof(err)), PX_OK);
    ck_assert_int_eq(store_rule_add(st, "allow domain a.test clients 10.0.0.9", "", -1, "t", &rule,
                                    err, sizeof(err)),
                     0);
    int rc = store_request_decide(st, id, true, "ok", rule, "t", err, sizeof(err));
    if (rc == 0)
        ck_assert_int_eq(store_change_commit(st, NULL, err, sizeof(err)), PX_OK);
    else
        store_change_rollback(st);
    return rc;
}

START_TEST(test_a_request_is_decided_once)
{
    int64_t id = ask("a.test");
    struct store_request q;

    ck_assert_int_eq(approve_in_group(id), 0);
    ck_assert_uint_eq(rules_now(), 1);
    /* The second approval finds it decided: its rule goes with its group. */
    ck_assert_int_eq(approve_in_group(id), 1);
    ck_assert_ptr_nonnull(strstr(err, "not pending"));
    ck_assert_uint_eq(rules_now(), 1);
    /* A denial after it, alone, finds it decided too; nothing changes. */
    ck_assert_int_eq(store_request_decide(st, id, false, "no", 0, "t", err, sizeof(err)), 1);
    ck_assert_int_eq(store_request_get(st, id, &q, err, sizeof(err)), 0);
    ck_assert_str_eq(q.status, "approved");
    ck_assert_str_eq(q.note, "ok");
    ck_assert_int_gt(q.granted_rule_id, 0);
    /* The connection is still good for the next change. */
    ck_assert_int_eq(store_request_decide(st, ask("b.test"), false, "no", 0, "t", err, sizeof(err)),
                     0);
    ck_assert_int_eq(store_request_decide(st, id + 100, false, "no", 0, "t", err, sizeof(err)), 1);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("store_request");
    TCase *tc = tcase_create("requests");
    SRunner *sr;
    int failed;

    tcase_add_checked_fixture(tc, store_setup, store_teardown);
    tcase_add_test(tc, test_a_request_is_decided_once);
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
