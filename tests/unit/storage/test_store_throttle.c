/* test_store_throttle: the login throttle's delays per account and per address, doubling and
 * capped, forgotten after a quiet spell; known (account, address) pairs spared the account's
 * delay; IPv6 counted by /64. Time is passed in, so nothing here sleeps or depends on speed.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>

#include "storage/store.h"

static const struct store_throttle_opts opts = {
    .fail_max = 3, .delay_ms = 1000, .delay_max_ms = 8000, .forget_ms = 60000};

/* n failures of user, each from a new address 127.0.<base>.<i>, at time now. */
static void fail_from_many(struct store_throttle *t, const char *user, int base, int n, int64_t now)
{
    char addr[32];

    for (int i = 0; i < n; i++) {
        snprintf(addr, sizeof(addr), "127.0.%d.%d", base, i + 1);
        store_throttle_note(t, user, addr, false, now);
    }
}

START_TEST(test_delay_doubles_after_fail_max_and_is_capped)
{
    struct store_throttle *t = store_throttle_new(&opts);
    /* failures so far -> wait right after the last one */
    static const int64_t want[] = {0, 0, 0, 1000, 2000, 4000, 8000, 8000, 8000};

    ck_assert_ptr_nonnull(t);
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
        if (i > 0)
            store_throttle_note(t, "alice", "127.0.0.9", false, 100000);
        ck_assert_msg(store_throttle_wait_ms(t, "alice", "127.0.0.9", 100000) == want[i],
                      "after %zu failures: %lld", i,
                      (long long)store_throttle_wait_ms(t, "alice", "127.0.0.9", 100000));
    }
    /* the wait runs down with time */
    ck_assert_int_eq(store_throttle_wait_ms(t, "alice", "127.0.0.9", 103000), 5000);
    ck_assert_int_eq(store_throttle_wait_ms(t, "alice", "127.0.0.9", 108000), 0);
    store_throttle_free(t);
}
END_TEST

START_TEST(test_rotating_addresses_still_throttle_the_account)
{
    struct store_throttle *t = store_throttle_new(&opts);

    fail_from_many(t, "alice", 1, 5, 1000);
    /* every address is fresh, yet the account waits */
    ck_assert_int_eq(store_throttle_wait_ms(t, "alice", "127.0.9.9", 1000), 4000);
    /* other accounts and their addresses do not */
    ck_assert_int_eq(store_throttle_wait_ms(t, "bob", "127.0.9.9", 1000), 0);
    store_throttle_free(t);
}
END_TEST

START_TEST(test_known_address_is_spared_the_account_delay)
{
    struct store_throttle *t = store_throttle_new(&opts);

    store_throttle_note(t, "alice", "127.0.0.1", true, 500);
    fail_from_many(t, "alice", 1, 20, 1000);
    ck_assert_int_gt(store_throttle_wait_ms(t, "alice", "127.0.9.9", 1000), 0);
    /* the real user, from where she logged in before, is not locked out */
    ck_assert_int_eq(store_throttle_wait_ms(t, "alice", "127.0.0.1", 1000), 0);
    /* known for alice only */
    fail_from_many(t, "bob", 2, 3, 1000);
    ck_assert_int_gt(store_throttle_wait_ms(t, "bob", "127.0.0.1", 1000), 0);
    store_throttle_free(t);
}
END_TEST

START_TEST(test_address_delay_applies_to_every_account)
{
    struct store_throttle *t = store_throttle_new(&opts);
    char user[16];

    store_throttle_note(t, "alice", "127.0.0.7", true, 500);
    for (int i = 0; i < 4; i++) { /* one address sprays many names */
        snprintf(user, sizeof(user), "u%d", i);
        store_throttle_note(t, user, "127.0.0.7", false, 1000);
    }
    ck_assert_int_eq(store_throttle_wait_ms(t, "nobody-yet", "127.0.0.7", 1000), 2000);
    /* a known pair does not escape its address's delay */
    ck_assert_int_eq(store_throttle_wait_ms(t, "alice", "127.0.0.7", 1000), 2000);
    ck_assert_int_eq(store_throttle_wait_ms(t, "nobody-yet", "127.0.0.8", 1000), 0);
    store_throttle_free(t);
}
END_TEST

/* A success clears no count: else one valid account lets its holder spray guesses at other
 * names from one address, logging in between to start afresh, and a guesser on another
 * address could wait for the real user to log in. */
START_TEST(test_success_clears_neither_the_address_nor_the_account)
{
    struct store_throttle *t = store_throttle_new(&opts);
    char user[16];

    fail_from_many(t, "alice", 1, 2, 1000);
    for (int i = 0; i < 4; i++) { /* the holder of "mallory" sprays other names */
        snprintf(user, sizeof(user), "u%d", i);
        store_throttle_note(t, user, "127.0.0.5", false, 1000);
    }
    store_throttle_note(t, "alice", "127.0.0.5", false, 1000);
    ck_assert_int_gt(store_throttle_wait_ms(t, "alice", "127.0.0.6", 1000), 0);
    store_throttle_note(t, "mallory", "127.0.0.5", true, 1000);
    ck_assert_int_gt(store_throttle_wait_ms(t, "bob", "127.0.0.5", 1000), 0);
    ck_assert_int_gt(store_throttle_wait_ms(t, "alice", "127.0.0.6", 1000), 0);
    store_throttle_free(t);
}
END_TEST

START_TEST(test_counts_are_forgotten_after_a_quiet_spell)
{
    struct store_throttle *t = store_throttle_new(&opts);

    fail_from_many(t, "alice", 1, 10, 1000);
    ck_assert_int_eq(store_throttle_wait_ms(t, "alice", "127.0.9.9", 1000), 8000);
    ck_assert_int_eq(store_throttle_wait_ms(t, "alice", "127.0.9.9", 61000), 0);
    /* and start from zero again */
    store_throttle_note(t, "alice", "127.0.9.9", false, 61000);
    ck_assert_int_eq(store_throttle_wait_ms(t, "alice", "127.0.8.8", 61000), 0);
    store_throttle_free(t);
}
END_TEST

START_TEST(test_ipv6_counts_by_its_64)
{
    struct store_throttle *t = store_throttle_new(&opts);

    for (int i = 0; i < 3; i++) {
        char addr[64];

        snprintf(addr, sizeof(addr), "2001:db8:1:2::%x", i + 1);
        store_throttle_note(t, "u", addr, false, 1000);
    }
    ck_assert_int_eq(store_throttle_wait_ms(t, "v", "2001:db8:1:2:ffff::1", 1000), 1000);
    ck_assert_int_eq(store_throttle_wait_ms(t, "v", "2001:db8:1:3::1", 1000), 0);
    /* an IPv4-mapped address is its IPv4 address */
    for (int i = 0; i < 3; i++)
        store_throttle_note(t, "u", "::ffff:127.0.0.3", false, 1000);
    ck_assert_int_eq(store_throttle_wait_ms(t, "v", "127.0.0.3", 1000), 1000);
    store_throttle_free(t);
}
END_TEST

/* Thousands of other names failing cannot push a delaying account out of the table. */
START_TEST(test_flood_of_names_does_not_evict_a_delayed_account)
{
    struct store_throttle *t = store_throttle_new(&opts);
    char user[32];

    fail_from_many(t, "alice", 1, 10, 1000);
    for (int i = 0; i < 20000; i++) {
        snprintf(user, sizeof(user), "junk%d", i);
        store_throttle_note(t, user, "127.0.3.3", false, 1000);
    }
    ck_assert_int_eq(store_throttle_wait_ms(t, "alice", "127.0.9.9", 1000), 8000);
    store_throttle_free(t);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("store_throttle");
    TCase *tc = tcase_create("throttle");
    SRunner *sr;
    int failed;

    tcase_add_test(tc, test_delay_doubles_after_fail_max_and_is_capped);
    tcase_add_test(tc, test_rotating_addresses_still_throttle_the_account);
    tcase_add_test(tc, test_known_address_is_spared_the_account_delay);
    tcase_add_test(tc, test_address_delay_applies_to_every_account);
    tcase_add_test(tc, test_success_clears_neither_the_address_nor_the_account);
    tcase_add_test(tc, test_counts_are_forgotten_after_a_quiet_spell);
    tcase_add_test(tc, test_ipv6_counts_by_its_64);
    tcase_add_test(tc, test_flood_of_names_does_not_evict_a_delayed_account);
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
