/* test_acl_live.c: publication of the rule set in force: generations, references that outlive
 * a publish, and readers racing a writer that publishes 1,000 sets (run it under ASan). */
#include "acl/acl.h"

#include <check.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A set whose only rule, with id `version`, denies gen.test. */
static struct acl_set *make_set(int version)
{
    struct acl_rule_src r = {.id = version, .enabled = true, .text = "deny domain gen.test"};
    struct acl_config cfg = {.rules = &r, .nrules = 1};
    struct acl_error err;
    struct acl_set *set = acl_set_compile(&cfg, &err);
    ck_assert_msg(set != NULL, "%s", err.msg);
    return set;
}

static int decide_version(const struct acl_set *set, struct acl_scratch *s)
{
    struct acl_host h;
    const char *why;
    ck_assert_int_eq(acl_host_parse("www.gen.test", 12, &h, &why), 0);
    struct acl_request req = {.scheme = "http",
                              .host = &h,
                              .port = 80,
                              .path = "/",
                              .path_len = 1,
                              .method = "GET",
                              .method_len = 3};
    struct acl_decision d;
    acl_eval(set, &req, s, &d);
    return d.rule_id;
}

START_TEST(test_reference_outlives_publish)
{
    struct acl_scratch *s = acl_scratch_new();
    struct acl_live *live = acl_live_new(make_set(1));
    uint64_t g1;
    const struct acl_set *old = acl_live_acquire(live, &g1);
    ck_assert_uint_eq(g1, acl_live_generation(live));

    acl_live_publish(live, make_set(2));
    ck_assert_uint_ne(acl_live_generation(live), g1);
    /* The old set is still usable until released (ASan would flag a use after free). */
    ck_assert_int_eq(decide_version(old, s), 1);
    uint64_t g2;
    const struct acl_set *cur = acl_live_acquire(live, &g2);
    ck_assert_int_eq(decide_version(cur, s), 2);
    ck_assert_uint_eq(g2, acl_live_generation(live));
    acl_live_release(live, old);
    acl_live_release(live, cur);

    /* Publishing with no reader out frees the old set at once. */
    acl_live_publish(live, make_set(3));
    cur = acl_live_acquire(live, NULL);
    ck_assert_int_eq(decide_version(cur, s), 3);
    acl_live_release(live, cur);
    acl_live_free(live);
    acl_scratch_free(s);
}
END_TEST

enum { SETS = 1000, READERS = 2 };

struct shared {
    struct acl_live *live;
    atomic_bool done;
    atomic_long evals;
    atomic_int errors;
};

static void *reader(void *arg)
{
    struct shared *sh = arg;
    struct acl_scratch *s = acl_scratch_new();
    uint64_t gen;
    const struct acl_set *set = acl_live_acquire(sh->live, &gen);
    int last = 0;
    long n = 0;
    for (;;) {
        bool finished = atomic_load(&sh->done);
        if (acl_live_generation(sh->live) != gen) {
            acl_live_release(sh->live, set);
            set = acl_live_acquire(sh->live, &gen);
        }
        int v = decide_version(set, s);
        if (v < last || v < 1 || v > SETS)
            atomic_fetch_add(&sh->errors, 1); /* versions only move forward */
        last = v;
        n++;
        if (finished)
            break;
    }
    if (last != SETS)
        atomic_fetch_add(&sh->errors, 1); /* saw the final set after the writer finished */
    acl_live_release(sh->live, set);
    acl_scratch_free(s);
    atomic_fetch_add(&sh->evals, n);
    return NULL;
}

START_TEST(test_readers_race_a_publishing_writer)
{
    struct shared sh = {.live = acl_live_new(make_set(1))};
    pthread_t t[READERS];
    for (int i = 0; i < READERS; i++)
        ck_assert_int_eq(pthread_create(&t[i], NULL, reader, &sh), 0);
    uint64_t g = acl_live_generation(sh.live);
    for (int v = 2; v <= SETS; v++) {
        acl_live_publish(sh.live, make_set(v));
        uint64_t ng = acl_live_generation(sh.live);
        ck_assert_uint_gt(ng, g);
        g = ng;
    }
    atomic_store(&sh.done, true);
    for (int i = 0; i < READERS; i++)
        pthread_join(t[i], NULL);
    ck_assert_int_eq(atomic_load(&sh.errors), 0);
    ck_assert_int_gt(atomic_load(&sh.evals), 0);
    acl_live_free(sh.live);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("acl_live");
    TCase *tc = tcase_create("live");
    tcase_set_timeout(tc, 100);
    tcase_add_test(tc, test_reference_outlives_publish);
    tcase_add_test(tc, test_readers_race_a_publishing_writer);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
