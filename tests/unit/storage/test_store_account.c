/* test_store_account: proxy users and admins: set, verify, change, delete, wrong password,
 * and the two kinds kept apart. */
#include <check.h>
#include <sodium.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "storage/store.h"
#include "tests/unit/common.h"

static struct test_tmpdir tmp;
static struct store *st;
static char err[256];

static void setup(void)
{
    st = test_store_make(&tmp);
}

static void teardown(void)
{
    test_store_remove(&tmp, st);
}

START_TEST(test_verify_answers_by_name_password_and_kind)
{
    static const struct {
        enum store_account kind;
        const char *name, *password;
        int want;
    } cases[] = {
        {STORE_PROXY_USER, "alice", "s3cret", 1}, {STORE_PROXY_USER, "alice", "S3cret", 0},
        {STORE_PROXY_USER, "alice", "", 0},       {STORE_PROXY_USER, "nobody", "s3cret", 0},
        {STORE_ADMIN, "alice", "s3cret", 0}, /* a proxy user is not an admin */
        {STORE_ADMIN, "root", "adminpw", 1},      {STORE_PROXY_USER, "root", "adminpw", 0},
    };

    ck_assert_int_eq(
        store_account_set(st, STORE_PROXY_USER, "alice", "s3cret", "t", err, sizeof(err)), 0);
    ck_assert_int_eq(store_account_set(st, STORE_ADMIN, "root", "adminpw", "t", err, sizeof(err)),
                     0);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        ck_assert_msg(store_account_verify(st, cases[i].kind, cases[i].name, cases[i].password) ==
                          cases[i].want,
                      "case %zu", i);
}
END_TEST

START_TEST(test_password_change_and_delete)
{
    char **names;
    size_t n;

    ck_assert_int_eq(store_account_set(st, STORE_PROXY_USER, "bob", "one", "t", err, sizeof(err)),
                     0);
    ck_assert_int_eq(store_account_set(st, STORE_PROXY_USER, "amy", "x", "t", err, sizeof(err)), 0);
    ck_assert_int_eq(store_account_set(st, STORE_PROXY_USER, "bob", "two", "t", err, sizeof(err)),
                     0);
    ck_assert_int_eq(store_account_verify(st, STORE_PROXY_USER, "bob", "one"), 0);
    ck_assert_int_eq(store_account_verify(st, STORE_PROXY_USER, "bob", "two"), 1);
    ck_assert_int_eq(store_account_names(st, STORE_PROXY_USER, &names, &n), 0);
    ck_assert_uint_eq(n, 2);
    ck_assert_str_eq(names[0], "amy");
    ck_assert_str_eq(names[1], "bob");
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
    ck_assert_int_eq(store_account_delete(st, STORE_PROXY_USER, "bob", "t", err, sizeof(err)), 0);
    ck_assert_int_eq(store_account_verify(st, STORE_PROXY_USER, "bob", "two"), 0);
    ck_assert_int_eq(store_account_delete(st, STORE_PROXY_USER, "bob", "t", err, sizeof(err)), -1);
    ck_assert_int_eq(store_account_names(st, STORE_ADMIN, &names, &n), 0);
    ck_assert_uint_eq(n, 0);
    free(names);
}
END_TEST

START_TEST(test_hash_is_argon2id_not_the_password)
{
    char path[600];
    FILE *f;
    char *buf = calloc(1, 1 << 20);
    size_t len;

    if (test_pg()) { /* SQLite's files; PostgreSQL keeps its own */
        free(buf);
        return;
    }
    ck_assert_int_eq(
        store_account_set(st, STORE_ADMIN, "root", "plaintext-marker", "t", err, sizeof(err)), 0);
    store_close(st);
    /* The password must appear nowhere in the files; the Argon2id tag must. */
    len = 0;
    for (int i = 0; i < 2; i++) {
        snprintf(path, sizeof(path), "%s%s", tmp.db, i ? "-wal" : "");
        f = fopen(path, "rb");
        if (!f)
            continue;
        len += fread(buf + len, 1, (1 << 20) - 1 - len, f);
        fclose(f);
    }
    st = store_open(tmp.db, err, sizeof(err));
    ck_assert_ptr_nonnull(st);
    ck_assert_ptr_null(memmem(buf, len, "plaintext-marker", 16));
    ck_assert_ptr_nonnull(memmem(buf, len, "$argon2id$", 10));
    free(buf);
}
END_TEST

START_TEST(test_first_admin_must_change_until_a_password_is_set)
{
    ck_assert_int_eq(store_admin_first(st, "admin", "generated1", err, sizeof(err)), 1);
    ck_assert_int_eq(store_account_verify(st, STORE_ADMIN, "admin", "generated1"), 1);
    ck_assert_int_eq(store_admin_must_change(st, "admin"), 1);
    ck_assert_int_eq(store_admin_must_change(st, "nobody"), 0);
    /* Only the first run creates one. */
    ck_assert_int_eq(store_admin_first(st, "other", "generated2", err, sizeof(err)), 0);
    ck_assert_int_eq(store_account_verify(st, STORE_ADMIN, "other", "generated2"), 0);
    /* Another admin's account is not marked; setting the password clears the mark. */
    ck_assert_int_eq(store_account_set(st, STORE_ADMIN, "root", "adminpw", "t", err, sizeof(err)),
                     0);
    ck_assert_int_eq(store_admin_must_change(st, "root"), 0);
    ck_assert_int_eq(store_admin_must_change(st, "admin"), 1);
    ck_assert_int_eq(
        store_account_set(st, STORE_ADMIN, "admin", "chosen-pw", "admin", err, sizeof(err)), 0);
    ck_assert_int_eq(store_admin_must_change(st, "admin"), 0);
    ck_assert_int_eq(store_account_verify(st, STORE_ADMIN, "admin", "chosen-pw"), 1);
}
END_TEST

/* The hash each Argon2 verification ran against: the test is linked with
 * --wrap=crypto_pwhash_str_verify, so store_account.c's calls come here first. */
int __real_crypto_pwhash_str_verify(const char *str, const char *passwd,
                                    unsigned long long passwdlen);
int __wrap_crypto_pwhash_str_verify(const char *str, const char *passwd,
                                    unsigned long long passwdlen);
static char verified_hash[crypto_pwhash_STRBYTES];

int __wrap_crypto_pwhash_str_verify(const char *str, const char *passwd,
                                    unsigned long long passwdlen)
{
    snprintf(verified_hash, sizeof(verified_hash), "%s", str);
    return __real_crypto_pwhash_str_verify(str, passwd, passwdlen);
}

/* "$argon2id$v=19$m=65536,t=2,p=1$": the algorithm and its limits, without salt and hash. */
static void hash_limits(const char *hash, char *out, size_t outlen)
{
    const char *p = hash;

    for (int dollars = 0; *p && dollars < 4; p++)
        dollars += *p == '$';
    snprintf(out, outlen, "%.*s", (int)(p - hash), hash);
}

/* A name without an account, or with a malformed hash, costs one Argon2 run like a wrong
 * password of a real account does, so the time of the answer does not tell names apart:
 * each is counted by store_account_hash_runs(), and each runs against a hash of the same
 * algorithm and limits (memory, passes, lanes), which is what its cost is made of. */
START_TEST(test_unknown_name_costs_one_argon2_run)
{
    static const char *const names[] = {"alice", "nobody", "broken"};
    char limits[3][crypto_pwhash_STRBYTES];

    ck_assert_int_eq(
        store_account_set(st, STORE_PROXY_USER, "alice", "s3cret", "t", err, sizeof(err)), 0);
    ck_assert_int_eq(store_account_set(st, STORE_PROXY_USER, "broken", "x", "t", err, sizeof(err)),
                     0);
    store_close(st);
    test_db_exec(&tmp, "UPDATE users SET hash = 'garbage' WHERE name = 'broken'");
    st = store_open(tmp.db, err, sizeof(err));
    ck_assert_ptr_nonnull(st);
    for (size_t i = 0; i < 3; i++) {
        uint64_t before = store_account_hash_runs();

        verified_hash[0] = '\0';
        ck_assert_int_eq(store_account_verify(st, STORE_PROXY_USER, names[i], "wrong"), 0);
        ck_assert_msg(store_account_hash_runs() == before + 1, "%s: %llu runs", names[i],
                      (unsigned long long)(store_account_hash_runs() - before));
        hash_limits(verified_hash, limits[i], sizeof(limits[i]));
        ck_assert_msg(strncmp(limits[i], "$argon2id$", 10) == 0, "%s: verified against '%s'",
                      names[i], verified_hash);
    }
    for (size_t i = 1; i < 3; i++)
        ck_assert_msg(strcmp(limits[i], limits[0]) == 0, "%s: Argon2 %s, alice %s", names[i],
                      limits[i], limits[0]);
}
END_TEST

START_TEST(test_bad_input_is_refused)
{
    ck_assert_int_eq(store_account_set(st, STORE_PROXY_USER, "", "pw", "t", err, sizeof(err)), -1);
    ck_assert_int_eq(store_account_set(st, STORE_PROXY_USER, "a", "", "t", err, sizeof(err)), -1);
    ck_assert_int_eq(store_account_set(st, (enum store_account)7, "a", "pw", "t", err, sizeof(err)),
                     -1);
    ck_assert_int_eq(store_account_verify(st, (enum store_account)7, "a", "pw"), -1);
}
END_TEST

/* API tokens on either backend: made, found by their secret (a hash lookup), listed by
 * owner, refused once revoked, and gone with their owner. */
START_TEST(test_api_tokens_add_check_list_delete)
{
    char secret[STORE_TOKEN_LEN + 1], other[STORE_TOKEN_LEN + 1], owner[64], name[64];
    enum store_role role;
    struct store_token *rows;
    size_t n;

    ck_assert_int_eq(store_account_set(st, STORE_ADMIN, "ann", "pw-ann-1", "t", err, sizeof(err)),
                     0);
    ck_assert_int_eq(store_token_add(st, "ann", "ci", "t", secret, err, sizeof(err)), 0);
    ck_assert_int_eq(store_token_add(st, "ann", "ci", "t", other, err, sizeof(err)), 1);
    ck_assert_int_eq(store_token_add(st, "nobody", "x", "t", other, err, sizeof(err)), 2);
    ck_assert_int_eq(store_token_add(st, "ann", "cron", "t", other, err, sizeof(err)), 0);
    ck_assert_int_eq(store_token_check(st, secret, owner, name, &role, err, sizeof(err)), 0);
    ck_assert_str_eq(owner, "ann");
    ck_assert_str_eq(name, "ci");
    ck_assert_int_eq(role, STORE_ROLE_ADMIN);
    ck_assert_int_eq(store_token_list(st, "ann", &rows, &n, err, sizeof(err)), 0);
    ck_assert_uint_eq(n, 2);
    ck_assert_str_eq(rows[0].name, "ci");
    ck_assert_str_eq(rows[1].name, "cron");
    free(rows);
    ck_assert_int_eq(store_token_delete(st, "ci", "ann", "t", err, sizeof(err)), 0);
    ck_assert_int_eq(store_token_check(st, secret, owner, name, &role, err, sizeof(err)), 1);
    ck_assert_int_eq(store_token_check(st, other, owner, name, &role, err, sizeof(err)), 0);
    /* Revoking an owner's tokens takes all of them, and only theirs. */
    char bens[STORE_TOKEN_LEN + 1];
    ck_assert_int_eq(store_account_set(st, STORE_ADMIN, "ben", "pw-ben-1", "t", err, sizeof(err)),
                     0);
    ck_assert_int_eq(store_token_add(st, "ben", "bens", "t", bens, err, sizeof(err)), 0);
    ck_assert_int_eq(store_token_add(st, "ann", "ci2", "t", secret, err, sizeof(err)), 0);
    ck_assert_int_eq(store_token_revoke_owner(st, "ann", "t", err, sizeof(err)), 2);
    ck_assert_int_eq(store_token_check(st, other, owner, name, &role, err, sizeof(err)), 1);
    ck_assert_int_eq(store_token_check(st, secret, owner, name, &role, err, sizeof(err)), 1);
    ck_assert_int_eq(store_token_check(st, bens, owner, name, &role, err, sizeof(err)), 0);
    ck_assert_int_eq(store_token_revoke_owner(st, "ann", "t", err, sizeof(err)), 0);
    ck_assert_int_eq(store_token_add(st, "ann", "cron", "t", other, err, sizeof(err)), 0);
    ck_assert_int_eq(store_account_delete(st, STORE_ADMIN, "ann", "t", err, sizeof(err)), 0);
    ck_assert_int_eq(store_token_check(st, other, owner, name, &role, err, sizeof(err)), 1);
}
END_TEST

/* Token names are each owner's own: two admins may both have "ci", each token is found and
 * revoked as its owner's, and a revocation without an owner takes a name only one admin has. */
START_TEST(test_token_names_are_per_owner)
{
    char ann_ci[STORE_TOKEN_LEN + 1], ben_ci[STORE_TOKEN_LEN + 1], ben_x[STORE_TOKEN_LEN + 1];
    char owner[64], name[64];
    enum store_role role;
    struct store_token *rows;
    size_t n;

    ck_assert_int_eq(store_account_set(st, STORE_ADMIN, "ann", "pw-ann-1", "t", err, sizeof(err)),
                     0);
    ck_assert_int_eq(store_account_set(st, STORE_ADMIN, "ben", "pw-ben-1", "t", err, sizeof(err)),
                     0);
    ck_assert_int_eq(store_token_add(st, "ann", "ci", "t", ann_ci, err, sizeof(err)), 0);
    ck_assert_int_eq(store_token_add(st, "ben", "ci", "t", ben_ci, err, sizeof(err)), 0);
    ck_assert_int_eq(store_token_add(st, "ben", "ci", "t", ben_x, err, sizeof(err)), 1);
    ck_assert_int_eq(store_token_add(st, "ben", "x", "t", ben_x, err, sizeof(err)), 0);
    ck_assert_int_eq(store_token_check(st, ben_ci, owner, name, &role, err, sizeof(err)), 0);
    ck_assert_str_eq(owner, "ben");
    ck_assert_str_eq(name, "ci");
    ck_assert_int_eq(store_token_list(st, NULL, &rows, &n, err, sizeof(err)), 0);
    ck_assert_uint_eq(n, 3);
    ck_assert_str_eq(rows[0].owner, "ann"); /* by name, then owner */
    ck_assert_str_eq(rows[1].owner, "ben");
    ck_assert_str_eq(rows[2].name, "x");
    free(rows);
    /* Without an owner, "ci" is ambiguous: nothing is revoked. */
    ck_assert_int_eq(store_token_delete(st, "ci", NULL, "t", err, sizeof(err)), 2);
    ck_assert_int_eq(store_token_check(st, ann_ci, owner, name, &role, err, sizeof(err)), 0);
    ck_assert_int_eq(store_token_delete(st, "x", "ann", "t", err, sizeof(err)), 1);
    ck_assert_int_eq(store_token_delete(st, "x", NULL, "t", err, sizeof(err)), 0);
    ck_assert_int_eq(store_token_check(st, ben_x, owner, name, &role, err, sizeof(err)), 1);
    ck_assert_int_eq(store_token_delete(st, "ci", "ben", "t", err, sizeof(err)), 0);
    ck_assert_int_eq(store_token_check(st, ben_ci, owner, name, &role, err, sizeof(err)), 1);
    ck_assert_int_eq(store_token_check(st, ann_ci, owner, name, &role, err, sizeof(err)), 0);
    ck_assert_int_eq(store_token_delete(st, "ci", NULL, "t", err, sizeof(err)), 0);
    ck_assert_int_eq(store_token_check(st, ann_ci, owner, name, &role, err, sizeof(err)), 1);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("store_account");
    TCase *tc = tcase_create("account");
    SRunner *sr;
    int failed;

    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_verify_answers_by_name_password_and_kind);
    tcase_add_test(tc, test_password_change_and_delete);
    tcase_add_test(tc, test_hash_is_argon2id_not_the_password);
    tcase_add_test(tc, test_first_admin_must_change_until_a_password_is_set);
    tcase_add_test(tc, test_unknown_name_costs_one_argon2_run);
    tcase_add_test(tc, test_bad_input_is_refused);
    tcase_add_test(tc, test_api_tokens_add_check_list_delete);
    tcase_add_test(tc, test_token_names_are_per_owner);
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
