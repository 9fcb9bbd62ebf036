/* test_store_node: the nodes table: a beat writes a node's row and a second one replaces it;
 * the list gives every node by name with the newest policy version, ages by the database's
 * clock; a node is lagging when behind the newest version or silent for more than 3 beats,
 * and not when stopped cleanly; a beat forgets nodes silent for 7 days; two runs under one
 * name are told apart by their instance and start, and the one that says so lags. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/clock.h"
#include "storage/store.h"
#include "tests/unit/common.h"

TEST_STORE_FIXTURE

static struct store_node me(const char *name, int64_t version)
{
    struct store_node n = {.started_ms = 1000, .policy_version = version, .beat_every_ms = 5000};

    snprintf(n.name, sizeof(n.name), "%s", name);
    snprintf(n.software, sizeof(n.software), "proxyd 9.9");
    snprintf(n.listen, sizeof(n.listen), "127.0.0.1:3128 tls:[::1]:3129");
    snprintf(n.instance, sizeof(n.instance), "gw1 pid %d", name[0]);
    return n;
}

static struct store_node *list(size_t *n, int64_t *newest)
{
    struct store_node *rows;

    ck_assert_int_eq(store_nodes_list(st, &rows, n, newest, err, sizeof(err)), 0);
    return rows;
}

START_TEST(test_beat_list_lag_stop_forget)
{
    struct store_node a = me("a", 0), b = me("b", 0), *rows;
    int64_t newest, now = clock_wall_ms();
    char why[128];
    int id;
    size_t n;

    rows = list(&n, &newest);
    ck_assert_uint_eq(n, 0);
    free(rows);
    ck_assert_int_eq(store_rule_add(st, "deny domain x.test", "", 0, "t", &id, err, sizeof(err)),
                     0);
    a.policy_version = b.policy_version = store_policy_version(st);
    ck_assert_int_eq(store_node_beat(st, &b, err, sizeof(err)), 0);
    ck_assert_int_eq(store_node_beat(st, &a, err, sizeof(err)), 0);
    ck_assert_int_eq(store_node_beat(st, &a, err, sizeof(err)), 0); /* one row each */
    rows = list(&n, &newest);
    ck_assert_uint_eq(n, 2);
    ck_assert_int_eq(newest, a.policy_version);
    ck_assert_str_eq(rows[0].name, "a"); /* by name */
    ck_assert_str_eq(rows[0].software, "proxyd 9.9");
    ck_assert_str_eq(rows[0].listen, "127.0.0.1:3128 tls:[::1]:3129");
    ck_assert_int_eq(rows[0].started_ms, 1000);
    ck_assert_int_eq(rows[0].beat_every_ms, 5000);
    ck_assert_int_eq(rows[0].stopped_ms, 0);
    /* The database's clock, which here is this machine's. */
    ck_assert_int_ge(rows[0].beat_ms, now - 60000);
    ck_assert_int_le(rows[0].beat_ms, clock_wall_ms() + 60000);
    ck_assert_int_le(rows[0].age_ms, 60000);
    ck_assert(!store_node_lagging(&rows[0], newest, why, sizeof(why)));
    ck_assert_str_eq(why, "");
    free(rows);

    /* A change b has not taken yet: b is behind. */
    ck_assert_int_eq(store_rule_add(st, "deny domain y.test", "", 0, "t", &id, err, sizeof(err)),
                     0);
    a.policy_version = store_policy_version(st);
    ck_assert_int_eq(store_node_beat(st, &a, err, sizeof(err)), 0);
    rows = list(&n, &newest);
    ck_assert(!store_node_lagging(&rows[0], newest, why, sizeof(why)));
    ck_assert(store_node_lagging(&rows[1], newest, why, sizeof(why)));
    char want[128];
    snprintf(want, sizeof(want), "runs policy version %lld, the newest is %lld",
             (long long)b.policy_version, (long long)newest);
    ck_assert_str_eq(why, want);
    free(rows);

    /* b silent for 41 s (more than 3 beats): unseen, said before behind. */
    test_db_exec(&tmp, "UPDATE nodes SET beat_ms = beat_ms - 41000 WHERE name = 'b'");
    rows = list(&n, &newest);
    ck_assert(store_node_lagging(&rows[1], newest, why, sizeof(why)));
    ck_assert_msg(strncmp(why, "not seen for 4", 14) == 0 && strstr(why, " s") != NULL, "%s", why);
    ck_assert_int_ge(rows[1].age_ms, 41000);
    free(rows);

    /* Stopped cleanly: not lagging, however old; stopped just now, though last seen 41 s
     * ago. */
    ck_assert_int_eq(store_node_stop(st, &b, err, sizeof(err)), 0);
    rows = list(&n, &newest);
    ck_assert_int_gt(rows[1].stopped_ms, 0);
    ck_assert_int_ge(rows[1].stopped_age_ms, 0);
    ck_assert_int_lt(rows[1].stopped_age_ms, 41000);
    ck_assert_int_ge(rows[1].age_ms, 41000);
    ck_assert(!store_node_lagging(&rows[1], newest, why, sizeof(why)));
    free(rows);
    /* Beating again: running. */
    b.policy_version = newest;
    ck_assert_int_eq(store_node_beat(st, &b, err, sizeof(err)), 0);
    rows = list(&n, &newest);
    ck_assert_int_eq(rows[1].stopped_ms, 0);
    free(rows);

    /* Silent for 8 days: the next beat of any node forgets it. */
    test_db_exec(&tmp, "UPDATE nodes SET beat_ms = beat_ms - 691200000 WHERE name = 'b'");
    ck_assert_int_eq(store_node_beat(st, &a, err, sizeof(err)), 0);
    rows = list(&n, &newest);
    ck_assert_uint_eq(n, 1);
    ck_assert_str_eq(rows[0].name, "a");
    free(rows);
}
END_TEST

START_TEST(test_two_runs_under_one_name_are_told_apart)
{
    struct store_node a = me("a", 0), a2 = me("a", 0), *rows;
    char rival[80], why[128];
    int64_t newest;
    size_t n;

    snprintf(a2.instance, sizeof(a2.instance), "gw2 pid 77");
    /* Nobody else under the name: none, and a run does not rival itself. */
    ck_assert_int_eq(store_node_rival(st, &a, rival, sizeof(rival), err, sizeof(err)), 0);
    ck_assert_int_eq(store_node_beat(st, &a, err, sizeof(err)), 0);
    ck_assert_int_eq(store_node_rival(st, &a, rival, sizeof(rival), err, sizeof(err)), 0);
    ck_assert_str_eq(rival, "");
    /* Another host's run: found, by its instance. */
    ck_assert_int_eq(store_node_rival(st, &a2, rival, sizeof(rival), err, sizeof(err)), 1);
    ck_assert_str_eq(rival, "gw1 pid 97");
    /* The same host and pid started anew (a restart): another run too. */
    a2 = a;
    a2.started_ms++;
    ck_assert_int_eq(store_node_rival(st, &a2, rival, sizeof(rival), err, sizeof(err)), 1);
    /* The rival written with the beat: the row is lagging, and says why. */
    snprintf(a2.rival, sizeof(a2.rival), "%s", rival);
    ck_assert_int_eq(store_node_beat(st, &a2, err, sizeof(err)), 0);
    rows = list(&n, &newest);
    ck_assert_str_eq(rows[0].rival, "gw1 pid 97");
    ck_assert(store_node_lagging(&rows[0], newest, why, sizeof(why)));
    ck_assert_str_eq(why, "another proxyd (gw1 pid 97) runs under this name");
    free(rows);
    /* The first run's stop leaves the row of the one that wrote it last alone. */
    ck_assert_int_eq(store_node_stop(st, &a, err, sizeof(err)), 0);
    rows = list(&n, &newest);
    ck_assert_int_eq(rows[0].stopped_ms, 0);
    free(rows);
    /* Silent for more than 3 beats, or stopped: no longer a rival. */
    ck_assert_int_eq(store_node_rival(st, &a, rival, sizeof(rival), err, sizeof(err)), 1);
    test_db_exec(&tmp, "UPDATE nodes SET beat_ms = beat_ms - 16000");
    ck_assert_int_eq(store_node_rival(st, &a, rival, sizeof(rival), err, sizeof(err)), 0);
    test_db_exec(&tmp, "UPDATE nodes SET beat_ms = beat_ms + 16000");
    ck_assert_int_eq(store_node_stop(st, &a2, err, sizeof(err)), 0);
    ck_assert_int_eq(store_node_rival(st, &a, rival, sizeof(rival), err, sizeof(err)), 0);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("store_node");
    TCase *tc = tcase_create("node");
    SRunner *sr;
    int failed;

    tcase_add_checked_fixture(tc, store_setup, store_teardown);
    tcase_add_test(tc, test_beat_list_lag_stop_forget);
    tcase_add_test(tc, test_two_runs_under_one_name_are_told_apart);
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
