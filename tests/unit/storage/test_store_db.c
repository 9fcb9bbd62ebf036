/* test_store_db: opening, the fresh schema, reopening, and migrating an old database. */
#include <check.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "storage/store_impl.h"
#include "tests/unit/common.h"

static struct test_tmpdir tmp;

static void setup(void)
{
    test_tmpdir_make(&tmp);
}

static void teardown(void)
{
    test_tmpdir_remove(&tmp);
}

static int current_version(void)
{
    return store_migrations[store_migrations_count - 1].version;
}

/* Runs sql on a raw connection to path (bypassing the store), returning the first integer. */
static int64_t raw_int(const char *path, const char *sql)
{
    sqlite3 *db;
    sqlite3_stmt *s;
    int64_t v = -1;

    ck_assert_int_eq(sqlite3_open(path, &db), SQLITE_OK);
    ck_assert_int_eq(sqlite3_prepare_v2(db, sql, -1, &s, NULL), SQLITE_OK);
    if (sqlite3_step(s) == SQLITE_ROW)
        v = sqlite3_column_int64(s, 0);
    sqlite3_finalize(s);
    sqlite3_close(db);
    return v;
}

START_TEST(test_fresh_database_has_every_table_at_current_version)
{
    static const char *const tables[] = {
        "schema_version", "access_log", "rules",    "lists",          "list_entries", "users",
        "admins",         "audit",      "settings", "policy_version", "rule_hits",    "forwards",
    };
    char err[256] = "";
    struct store *st = store_open(tmp.db, err, sizeof(err));
    sqlite3 *db;

    ck_assert_msg(st != NULL, "%s", err);
    ck_assert_int_eq(store_schema_version(st), current_version());
    ck_assert_int_eq(store_policy_version(st), 0);
    store_close(st);
    ck_assert_int_eq(sqlite3_open(tmp.db, &db), SQLITE_OK);
    for (size_t i = 0; i < sizeof(tables) / sizeof(tables[0]); i++) {
        sqlite3_stmt *s;

        ck_assert_int_eq(
            sqlite3_prepare_v2(db, "SELECT 1 FROM sqlite_master WHERE name = ?", -1, &s, NULL),
            SQLITE_OK);
        sqlite3_bind_text(s, 1, tables[i], -1, SQLITE_STATIC);
        ck_assert_msg(sqlite3_step(s) == SQLITE_ROW, "table %s missing", tables[i]);
        sqlite3_finalize(s);
    }
    sqlite3_close(db);
}
END_TEST

START_TEST(test_database_is_in_wal_mode)
{
    char err[256] = "";
    struct store *st = store_open(tmp.db, err, sizeof(err));
    sqlite3 *db;
    sqlite3_stmt *s;

    ck_assert_msg(st != NULL, "%s", err);
    ck_assert_int_eq(sqlite3_open(tmp.db, &db), SQLITE_OK);
    ck_assert_int_eq(sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &s, NULL), SQLITE_OK);
    ck_assert_int_eq(sqlite3_step(s), SQLITE_ROW);
    ck_assert_str_eq((const char *)sqlite3_column_text(s, 0), "wal");
    sqlite3_finalize(s);
    sqlite3_close(db);
    store_close(st);
}
END_TEST

/* Password hashes and browsing history: the database and its -wal and -shm are 0600 even
 * under a permissive umask (they were 0644). */
START_TEST(test_database_files_are_private)
{
    static const char *const suffixes[] = {"", "-wal", "-shm"};
    char err[256], path[600];
    mode_t old = umask(022);
    struct store *st = store_open(tmp.db, err, sizeof(err));
    struct stat sb;

    umask(old);
    ck_assert_msg(st != NULL, "%s", err);
    ck_assert_int_eq(store_setting_set(st, "pac_proxy", "p.test:3128", "t", err, sizeof(err)), 0);
    for (size_t i = 0; i < sizeof(suffixes) / sizeof(suffixes[0]); i++) {
        snprintf(path, sizeof(path), "%s%s", tmp.db, suffixes[i]);
        ck_assert_msg(stat(path, &sb) == 0, "%s missing", path);
        ck_assert_msg((sb.st_mode & 0777) == 0600, "%s: mode %o", path, sb.st_mode & 0777);
    }
    store_close(st);
}
END_TEST

START_TEST(test_reopen_keeps_data_and_version)
{
    char err[256] = "";
    struct store *st = store_open(tmp.db, err, sizeof(err));
    char *v;

    ck_assert_msg(st != NULL, "%s", err);
    ck_assert_int_eq(store_setting_set(st, "retention_days", "30", "test", err, sizeof(err)), 0);
    store_close(st);
    st = store_open(tmp.db, err, sizeof(err));
    ck_assert_msg(st != NULL, "%s", err);
    ck_assert_int_eq(store_schema_version(st), current_version());
    ck_assert_int_eq(store_setting_read(st, "retention_days", &v, err, sizeof(err)), 0);
    ck_assert_ptr_nonnull(v);
    ck_assert_str_eq(v, "30");
    free(v);
    store_close(st);
    ck_assert_int_eq(raw_int(tmp.db, "SELECT count(*) FROM schema_version"), 1);
}
END_TEST

/* Steps are numbered ahead and land in any order: the array must stay sorted, each number
 * once, or a step would run twice or in the wrong order. */
START_TEST(test_migrations_are_sorted_each_version_once)
{
    ck_assert_uint_gt(store_migrations_count, 0);
    ck_assert_int_gt(store_migrations[0].version, 0);
    for (size_t i = 1; i < store_migrations_count; i++)
        ck_assert_msg(store_migrations[i - 1].version < store_migrations[i].version,
                      "store_migrations[%zu] (version %d) is not above the one before (%d)", i,
                      store_migrations[i].version, store_migrations[i - 1].version);
}
END_TEST

/* A step that lands after a higher-numbered one (a database made while step 8 was not yet
 * in the program, at version 11) still runs at the next open. */
START_TEST(test_step_numbered_below_the_version_runs_when_it_lands)
{
    char err[256] = "";
    struct store *st = store_open(tmp.db, err, sizeof(err));
    sqlite3 *db;

    ck_assert_msg(st != NULL, "%s", err);
    store_close(st);
    ck_assert_int_eq(raw_int(tmp.db, "SELECT count(*) FROM schema_steps"),
                     (int64_t)store_migrations_count);
    ck_assert_int_eq(sqlite3_open(tmp.db, &db), SQLITE_OK);
    ck_assert_int_eq(sqlite3_exec(db,
                                  "DROP TABLE forwards;"
                                  "DELETE FROM schema_steps WHERE version = 8;",
                                  NULL, NULL, NULL),
                     SQLITE_OK);
    sqlite3_close(db);
    ck_assert_int_eq(raw_int(tmp.db, "SELECT count(*) FROM sqlite_master WHERE name = 'forwards'"),
                     0);

    st = store_open(tmp.db, err, sizeof(err));
    ck_assert_msg(st != NULL, "%s", err);
    ck_assert_int_eq(store_schema_version(st), current_version());
    store_close(st);
    ck_assert_int_eq(raw_int(tmp.db, "SELECT count(*) FROM sqlite_master WHERE name = 'forwards'"),
                     1);
    ck_assert_int_eq(raw_int(tmp.db, "SELECT count(*) FROM schema_steps WHERE version = 8"), 1);
}
END_TEST

START_TEST(test_version_1_database_migrates_and_backfills_rule_hits)
{
    char err[256] = "";
    sqlite3 *db;
    struct store *st;
    struct store_rule *rules;
    size_t n;

    /* A database as the first release left it: step 1 only, with rules and log rows. */
    ck_assert_int_eq(sqlite3_open(tmp.db, &db), SQLITE_OK);
    ck_assert_int_eq(store_migrations[0].version, 1);
    ck_assert_int_eq(sqlite3_exec(db, store_migrations[0].sql, NULL, NULL, NULL), SQLITE_OK);
    ck_assert_int_eq(
        sqlite3_exec(db,
                     "CREATE TABLE schema_version(version INTEGER NOT NULL);"
                     "INSERT INTO schema_version VALUES (1);"
                     "INSERT INTO rules(id, position, text, created_ms, updated_ms)"
                     " VALUES (7, 1, 'deny domain a.test', 0, 0), (9, 2, 'allow all', 0, 0);"
                     "INSERT INTO access_log(time_ms, client, host, rule_id)"
                     " VALUES (1, 'c', 'a.test', 7), (2, 'c', 'a.test', 7), (3, 'c', 'b', 9),"
                     " (4, 'c', 'x', 0);",
                     NULL, NULL, NULL),
        SQLITE_OK);
    sqlite3_close(db);

    st = store_open(tmp.db, err, sizeof(err));
    ck_assert_msg(st != NULL, "%s", err);
    ck_assert_int_eq(store_schema_version(st), current_version());
    ck_assert_int_eq(store_rules_list(st, &rules, &n, err, sizeof(err)), 0);
    ck_assert_uint_eq(n, 2);
    ck_assert_int_eq(rules[0].id, 7);
    ck_assert_int_eq(rules[0].hits, 2);
    ck_assert_int_eq(rules[1].id, 9);
    ck_assert_int_eq(rules[1].hits, 1);
    store_rules_free(rules, n);
    /* The policy found at the upgrade is the first version kept, with its rules; the old
     * log rows name no version. */
    struct store_version info;
    ck_assert_int_eq(store_version_get(st, 0, &info, &rules, &n, err, sizeof(err)), 0);
    ck_assert_uint_eq(n, 2);
    ck_assert_int_eq(rules[0].id, 7);
    ck_assert_str_eq(rules[1].text, "allow all");
    store_rules_free(rules, n);
    store_close(st);
    ck_assert_int_eq(raw_int(tmp.db, "SELECT count(*) FROM access_log WHERE policy_version = 0"),
                     4);
    ck_assert_int_eq(raw_int(tmp.db, "SELECT count(*) FROM access_log"), 4);
    ck_assert_int_eq(
        raw_int(tmp.db, "SELECT count(*) FROM sqlite_master WHERE name = 'access_log_time'"), 1);
}
END_TEST

/* Step 4 drops the client index from databases that have it; new ones never keep it. */
START_TEST(test_version_3_database_loses_client_index_keeps_rows)
{
    char err[256] = "";
    sqlite3 *db;
    struct store *st;

    ck_assert_int_eq(sqlite3_open(tmp.db, &db), SQLITE_OK);
    for (size_t i = 0; i < store_migrations_count && store_migrations[i].version <= 3; i++)
        ck_assert_int_eq(sqlite3_exec(db, store_migrations[i].sql, NULL, NULL, NULL), SQLITE_OK);
    ck_assert_int_eq(sqlite3_exec(db,
                                  "CREATE TABLE schema_version(version INTEGER NOT NULL);"
                                  "INSERT INTO schema_version VALUES (3);"
                                  "INSERT INTO access_log(time_ms, client, host)"
                                  " VALUES (1, 'c1', 'a.test'), (2, 'c2', 'b.test');",
                                  NULL, NULL, NULL),
                     SQLITE_OK);
    sqlite3_close(db);
    ck_assert_int_eq(
        raw_int(tmp.db, "SELECT count(*) FROM sqlite_master WHERE name = 'access_log_client'"), 1);

    st = store_open(tmp.db, err, sizeof(err));
    ck_assert_msg(st != NULL, "%s", err);
    ck_assert_int_eq(store_schema_version(st), current_version());
    store_close(st);
    ck_assert_int_eq(
        raw_int(tmp.db, "SELECT count(*) FROM sqlite_master WHERE name = 'access_log_client'"), 0);
    /* The time index stays; the (decision, time) one went with step 18 (the rollups). */
    ck_assert_int_eq(raw_int(tmp.db, "SELECT count(*) FROM sqlite_master WHERE type = 'index'"
                                     " AND name = 'access_log_time'"),
                     1);
    ck_assert_int_eq(raw_int(tmp.db, "SELECT count(*) FROM sqlite_master WHERE type = 'index'"
                                     " AND name = 'access_log_decision_time'"),
                     0);
    ck_assert_int_eq(raw_int(tmp.db, "SELECT count(*) FROM access_log WHERE client = 'c2'"), 1);
}
END_TEST

START_TEST(test_newer_schema_is_refused_with_message)
{
    char err[256] = "";
    struct store *st = store_open(tmp.db, err, sizeof(err));
    sqlite3 *db;

    ck_assert_ptr_nonnull(st);
    store_close(st);
    ck_assert_int_eq(sqlite3_open(tmp.db, &db), SQLITE_OK);
    ck_assert_int_eq(sqlite3_exec(db, "UPDATE schema_version SET version = 999", NULL, NULL, NULL),
                     SQLITE_OK);
    sqlite3_close(db);
    st = store_open(tmp.db, err, sizeof(err));
    ck_assert_ptr_null(st);
    ck_assert_msg(strstr(err, "999") != NULL, "%s", err);
}
END_TEST

START_TEST(test_unopenable_path_fills_err_with_path)
{
    char err[256] = "";
    char path[600];

    snprintf(path, sizeof(path), "%s/no/such/dir/x.db", tmp.dir);
    ck_assert_ptr_null(store_open(path, err, sizeof(err)));
    ck_assert_msg(strncmp(err, path, strlen(path)) == 0, "%s", err);
}
END_TEST

START_TEST(test_decision_names)
{
    static const struct {
        int d;
        const char *name;
    } cases[] = {
        {STORE_ALLOW, "allow"},
        {STORE_DENY, "deny"},
        {STORE_AUTH, "auth"},
        {42, "unknown"},
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        ck_assert_str_eq(store_decision_str((enum store_decision)cases[i].d), cases[i].name);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("store_db");
    TCase *tc = tcase_create("db");
    SRunner *sr;
    int failed;

    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_fresh_database_has_every_table_at_current_version);
    tcase_add_test(tc, test_database_is_in_wal_mode);
    tcase_add_test(tc, test_database_files_are_private);
    tcase_add_test(tc, test_reopen_keeps_data_and_version);
    tcase_add_test(tc, test_migrations_are_sorted_each_version_once);
    tcase_add_test(tc, test_step_numbered_below_the_version_runs_when_it_lands);
    tcase_add_test(tc, test_version_1_database_migrates_and_backfills_rule_hits);
    tcase_add_test(tc, test_version_3_database_loses_client_index_keeps_rows);
    tcase_add_test(tc, test_newer_schema_is_refused_with_message);
    tcase_add_test(tc, test_unopenable_path_fills_err_with_path);
    tcase_add_test(tc, test_decision_names);
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
