/* test_policy: proxy/policy.c's side of an admin change (policy_apply: compile, commit,
 * publish, under the loader's lock) and of a proxy user change (policy_unchanged), against a
 * real store in a temporary folder.
 */
#include "proxy/policy.h"
#include "storage/store.h"
#include "tests/unit/common.h"

#include <arpa/inet.h>
#include <check.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static struct test_tmpdir tmp;
static struct policy_loader pl;
static struct store *st; /* the admin server's connection, apart from the loader's */
static char err[256];

/* What the admin server's commit does: add one rule, report the new version. */
struct commit_args {
    int calls;
    int rc; /* to return instead of writing, when not PX_OK */
    const char *text;
    int id;
};

static int commit(void *arg, int64_t *version, char *cerr, size_t cerrlen)
{
    struct commit_args *c = arg;

    c->calls++;
    if (c->rc != PX_OK)
        return c->rc;
    if (store_rule_add(st, c->text, "", 0, "test", &c->id, cerr, cerrlen) < 0)
        return PX_ERR;
    *version = store_policy_version(st);
    return PX_OK;
}

static void setup(void)
{
    int64_t version;

    st = test_store_make(&tmp);
    ck_assert_int_eq(policy_loader_init(&pl, tmp.db, "10.0.0.0/8", err, sizeof(err)), 0);
    pl.live = acl_live_new(policy_compile(&pl, &version, err, sizeof(err)));
    ck_assert_ptr_nonnull(pl.live);
    pl.version = version;
}

static void teardown(void)
{
    acl_live_free(pl.live);
    policy_loader_destroy(&pl);
    test_store_remove(&tmp, st);
}

/* The decision of the set in force for http://host/ from client. */
static struct acl_decision decide(const char *host, const char *client)
{
    struct acl_scratch *scratch = acl_scratch_new();
    struct sockaddr_in sin = {.sin_family = AF_INET};
    struct acl_request req = {
        .scheme = "http", .port = 80, .path = "/", .path_len = 1, .method = "GET", .method_len = 3};
    struct acl_decision d;
    struct acl_host h;
    const struct acl_set *set;
    const char *why;
    uint64_t gen;

    ck_assert_int_eq(acl_host_parse(host, strlen(host), &h, &why), 0);
    ck_assert_int_eq(inet_pton(AF_INET, client, &sin.sin_addr), 1);
    req.host = &h;
    req.client = (const struct sockaddr *)&sin;
    set = acl_live_acquire(pl.live, &gen);
    acl_eval(set, &req, scratch, &d);
    acl_live_release(pl.live, set);
    acl_scratch_free(scratch);
    return d;
}

START_TEST(test_a_change_that_does_not_compile_is_never_committed)
{
    struct acl_rule_src rule = {100, true, "deny list nowhere"};
    struct acl_config cand = {.rules = &rule, .nrules = 1};
    struct commit_args c = {.rc = PX_OK, .text = "deny list nowhere"};
    uint64_t gen = acl_live_generation(pl.live);

    ck_assert_int_eq(policy_apply(&pl, &cand, commit, &c, err, sizeof(err)), PX_ERR);
    ck_assert_int_eq(c.calls, 0);
    ck_assert_msg(strstr(err, "rule 100:") && strstr(err, "nowhere"), "%s", err);
    ck_assert_uint_eq(acl_live_generation(pl.live), gen);
    ck_assert_int_eq(store_policy_version(st), 0);
}
END_TEST

START_TEST(test_a_committed_change_is_in_force_as_its_version)
{
    struct acl_rule_src rule = {1, true, "deny domain blocked.test"};
    struct acl_config cand = {.rules = &rule, .nrules = 1};
    struct commit_args c = {.rc = PX_OK, .text = "deny domain blocked.test"};
    uint64_t gen = acl_live_generation(pl.live);
    struct acl_decision d;

    ck_assert_int_eq(policy_apply(&pl, &cand, commit, &c, err, sizeof(err)), PX_OK);
    ck_assert_int_eq(c.calls, 1);
    ck_assert_int_eq(c.id, 1);
    ck_assert_uint_gt(acl_live_generation(pl.live), gen);
    ck_assert_int_eq(pl.version, store_policy_version(st));
    d = decide("blocked.test", "10.1.2.3");
    ck_assert_int_eq(d.action, ACL_DENY);
    ck_assert_int_eq(d.rule_id, 1);
    /* proxyd's allowed networks were added to the candidate */
    d = decide("other.test", "192.168.1.1");
    ck_assert_int_eq(d.action, ACL_DENY);
    ck_assert_int_eq(d.rule_id, 0);
    ck_assert_int_eq(decide("other.test", "10.1.2.3").action, ACL_ALLOW);
    /* the poll finds nothing left to do */
    gen = acl_live_generation(pl.live);
    ck_assert_int_eq(policy_reload(&pl, false, err, sizeof(err)), 0);
    ck_assert_uint_eq(acl_live_generation(pl.live), gen);
}
END_TEST

START_TEST(test_a_commit_that_fails_or_must_retry_publishes_nothing)
{
    static const int rcs[] = {PX_AGAIN, PX_ERR};
    struct acl_rule_src rule = {1, true, "deny domain blocked.test"};
    struct acl_config cand = {.rules = &rule, .nrules = 1};
    uint64_t gen = acl_live_generation(pl.live);

    for (size_t i = 0; i < sizeof(rcs) / sizeof(rcs[0]); i++) {
        struct commit_args c = {.rc = rcs[i]};

        ck_assert_int_eq(policy_apply(&pl, &cand, commit, &c, err, sizeof(err)), rcs[i]);
        ck_assert_int_eq(c.calls, 1);
        ck_assert_uint_eq(acl_live_generation(pl.live), gen);
        ck_assert_int_eq(decide("blocked.test", "10.1.2.3").action, ACL_ALLOW);
    }
}
END_TEST

/* A proxy user bumps the policy version, but the set in force stands for the new version
 * too: the poll compiles nothing. Unless something else came between. */
START_TEST(test_a_user_change_needs_no_recompile)
{
    int64_t from = store_policy_version(st);
    uint64_t gen = acl_live_generation(pl.live);
    int id;

    ck_assert_int_eq(store_account_set(st, STORE_PROXY_USER, "bob", "pw", "t", err, sizeof(err)),
                     0);
    policy_unchanged(&pl, from, store_policy_version(st));
    ck_assert_int_eq(policy_reload(&pl, false, err, sizeof(err)), 0);
    ck_assert_uint_eq(acl_live_generation(pl.live), gen);

    /* a rule added meanwhile: from no longer matches, the poll compiles it */
    from = store_policy_version(st);
    ck_assert_int_eq(store_rule_add(st, "deny domain late.test", "", 0, "t", &id, err, sizeof(err)),
                     0);
    ck_assert_int_eq(store_account_set(st, STORE_PROXY_USER, "carol", "pw", "t", err, sizeof(err)),
                     0);
    policy_unchanged(&pl, from + 1, store_policy_version(st));
    policy_unchanged(&pl, -1, -1);
    ck_assert_int_eq(policy_reload(&pl, false, err, sizeof(err)), 1);
    ck_assert_int_eq(decide("late.test", "10.1.2.3").action, ACL_DENY);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("policy");
    TCase *tc = tcase_create("policy");
    SRunner *sr;
    int failed;

    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_a_change_that_does_not_compile_is_never_committed);
    tcase_add_test(tc, test_a_committed_change_is_in_force_as_its_version);
    tcase_add_test(tc, test_a_commit_that_fails_or_must_retry_publishes_nothing);
    tcase_add_test(tc, test_a_user_change_needs_no_recompile);
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
