/* test_store_session: admin login sessions in the database: a session is found by its id and
 * gives its admin's role and must-change mark as they are now; it ends at its expiry, at a
 * logout, when its admin's sessions are ended (keeping one when asked), when the role changes
 * and when the admin is deleted; only a hash of the id is stored; an admin's oldest sessions
 * beyond the limit go. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/clock.h"
#include "storage/store.h"
#include "tests/unit/common.h"

TEST_STORE_FIXTURE

/* Two admins to hold sessions. */
static void setup(void)
{
    store_setup();
    ck_assert_int_eq(store_account_set(st, STORE_ADMIN, "root", "adminpw1", "t", err, sizeof(err)),
                     0);
    ck_assert_int_eq(store_account_set(st, STORE_ADMIN, "ann", "annpw123", "t", err, sizeof(err)),
                     0);
}

/* A session id: 64 hex digits made of c. */
static const char *sid(char c)
{
    static char ids[4][STORE_SESSION_ID_HEX + 1];
    static int next;
    char *id = ids[next++ % 4];

    memset(id, c, STORE_SESSION_ID_HEX);
    id[STORE_SESSION_ID_HEX] = '\0';
    return id;
}

static int lookup(const char *id, struct store_session *s)
{
    return store_session_get(st, id, clock_wall_ms(), s, err, sizeof(err));
}

START_TEST(test_found_with_the_account_as_it_is_now)
{
    struct store_session s;
    int64_t later = clock_wall_ms() + 3600 * 1000;

    ck_assert_int_eq(store_session_add(st, sid('a'), "ann", later, err, sizeof(err)), 0);
    ck_assert_int_eq(lookup(sid('a'), &s), 0);
    ck_assert_str_eq(s.admin, "ann");
    ck_assert_int_eq(s.role, STORE_ROLE_ADMIN);
    ck_assert(!s.must_change);
    ck_assert_int_eq(s.expires_ms, later);
    /* Other ids, and ids of another shape, are no session. */
    ck_assert_int_eq(lookup(sid('b'), &s), 1);
    ck_assert_int_eq(lookup("", &s), 1);
    ck_assert_int_eq(lookup("ABCD", &s), 1);
    /* No admin, no session. */
    ck_assert_int_eq(store_session_add(st, sid('c'), "nobody", later, err, sizeof(err)), 1);
    ck_assert_int_eq(lookup(sid('c'), &s), 1);
    /* Only the hash is stored: the id is nowhere in the table. */
    if (!test_pg()) {
        char sql[256];
        snprintf(sql, sizeof(sql),
                 "SELECT count(*) FROM admin_sessions WHERE hex(hash) LIKE '%%AAAAAAAA%%'"
                 " OR CAST(hash AS TEXT) LIKE '%%aaaaaaaa%%'");
        ck_assert_int_eq(test_db_int(&tmp, sql), 0);
        ck_assert_int_eq(test_db_int(&tmp, "SELECT length(hash) FROM admin_sessions"), 32);
    }
    /* A role change ends the admin's sessions; the new role is what a new one gets. */
    ck_assert_int_eq(store_admin_role_set(st, "ann", STORE_ROLE_VIEWER, "root", err, sizeof(err)),
                     0);
    ck_assert_int_eq(lookup(sid('a'), &s), 1);
    ck_assert_int_eq(store_session_add(st, sid('a'), "ann", later, err, sizeof(err)), 0);
    ck_assert_int_eq(lookup(sid('a'), &s), 0);
    ck_assert_int_eq(s.role, STORE_ROLE_VIEWER);
    /* The same role again ends nothing. */
    ck_assert_int_eq(store_admin_role_set(st, "ann", STORE_ROLE_VIEWER, "root", err, sizeof(err)),
                     0);
    ck_assert_int_eq(lookup(sid('a'), &s), 0);
}
END_TEST

START_TEST(test_ends)
{
    struct store_session s;
    int64_t now = clock_wall_ms(), later = now + 3600 * 1000;

    ck_assert_int_eq(store_session_add(st, sid('1'), "ann", later, err, sizeof(err)), 0);
    ck_assert_int_eq(store_session_add(st, sid('2'), "ann", later, err, sizeof(err)), 0);
    ck_assert_int_eq(store_session_add(st, sid('3'), "ann", later, err, sizeof(err)), 0);
    ck_assert_int_eq(store_session_add(st, sid('4'), "root", later, err, sizeof(err)), 0);
    /* Expiry. */
    ck_assert_int_eq(store_session_get(st, sid('1'), later, &s, err, sizeof(err)), 1);
    ck_assert_int_eq(store_session_get(st, sid('1'), later - 1, &s, err, sizeof(err)), 0);
    /* Logout ends that one only. */
    ck_assert_int_eq(store_session_delete(st, sid('1'), err, sizeof(err)), 0);
    ck_assert_int_eq(lookup(sid('1'), &s), 1);
    ck_assert_int_eq(store_session_delete(st, sid('1'), err, sizeof(err)), 0);
    ck_assert_int_eq(lookup(sid('2'), &s), 0);
    /* All of ann's but one; root's stay. */
    ck_assert_int_eq(store_sessions_end(st, "ann", sid('3'), err, sizeof(err)), 1);
    ck_assert_int_eq(lookup(sid('2'), &s), 1);
    ck_assert_int_eq(lookup(sid('3'), &s), 0);
    ck_assert_int_eq(lookup(sid('4'), &s), 0);
    ck_assert_int_eq(store_sessions_end(st, "ann", NULL, err, sizeof(err)), 1);
    ck_assert_int_eq(lookup(sid('3'), &s), 1);
    /* Deleting the admin ends its sessions. */
    ck_assert_int_eq(store_account_delete(st, STORE_ADMIN, "root", "ann", err, sizeof(err)), 0);
    ck_assert_int_eq(lookup(sid('4'), &s), 1);
    /* An expired one is removed by the next login. */
    ck_assert_int_eq(store_session_add(st, sid('5'), "ann", now - 1, err, sizeof(err)), 0);
    ck_assert_int_eq(store_session_add(st, sid('6'), "ann", later, err, sizeof(err)), 0);
    ck_assert_int_eq(store_session_get(st, sid('5'), now - 2, &s, err, sizeof(err)), 1);
}
END_TEST

START_TEST(test_must_change_follows_the_account)
{
    struct store_session s;

    ck_assert_int_eq(store_admin_first(st, "first", "firstpw1", err, sizeof(err)), 0);
    /* root exists: not the first run. Make one that must change by hand. */
    test_store_remove(&tmp, st);
    st = test_store_make(&tmp);
    ck_assert_int_eq(store_admin_first(st, "first", "firstpw1", err, sizeof(err)), 1);
    ck_assert_int_eq(
        store_session_add(st, sid('f'), "first", clock_wall_ms() + 60000, err, sizeof(err)), 0);
    ck_assert_int_eq(lookup(sid('f'), &s), 0);
    ck_assert(s.must_change);
    ck_assert_int_eq(
        store_account_set(st, STORE_ADMIN, "first", "newpw1234", "first", err, sizeof(err)), 0);
    ck_assert_int_eq(lookup(sid('f'), &s), 0);
    ck_assert(!s.must_change);
}
END_TEST

START_TEST(test_oldest_beyond_the_limit_go)
{
    struct store_session s;
    char ids[STORE_SESSIONS_PER_ADMIN + 1][STORE_SESSION_ID_HEX + 1];
    int64_t later = clock_wall_ms() + 3600 * 1000;

    for (int i = 0; i <= STORE_SESSIONS_PER_ADMIN; i++) {
        snprintf(ids[i], sizeof(ids[i]), "%064x", i + 1);
        ck_assert_int_eq(store_session_add(st, ids[i], "ann", later, err, sizeof(err)), 0);
    }
    int live = 0;
    for (int i = 0; i <= STORE_SESSIONS_PER_ADMIN; i++)
        live += lookup(ids[i], &s) == 0;
    ck_assert_int_eq(live, STORE_SESSIONS_PER_ADMIN);
    ck_assert_int_eq(lookup(ids[STORE_SESSIONS_PER_ADMIN], &s), 0); /* the newest stays */
}
END_TEST

int main(void)
{
    Suite *s = suite_create("store_session");
    TCase *tc = tcase_create("session");
    SRunner *sr;
    int failed;

    tcase_add_checked_fixture(tc, setup, store_teardown);
    tcase_add_test(tc, test_found_with_the_account_as_it_is_now);
    tcase_add_test(tc, test_ends);
    tcase_add_test(tc, test_must_change_follows_the_account);
    tcase_add_test(tc, test_oldest_beyond_the_limit_go);
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
