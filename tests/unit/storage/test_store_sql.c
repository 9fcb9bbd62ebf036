/* test_store_sql: the SQLite statements kept between uses (store_prepare, sql_finalize):
 * never shared, put back with nothing of their last use, bounded, and gone with the store. */
#include <check.h>
#include <dirent.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>

#include "storage/store_impl.h"
#include "tests/unit/common.h"

TEST_STORE_FIXTURE

static void setup(void)
{
    store_setup();
    ck_assert_int_eq(
        store_exec(st, "CREATE TABLE kv(k INTEGER PRIMARY KEY, v TEXT)", err, sizeof(err)), 0);
}

static void teardown(void)
{
    store_teardown();
}

static struct sql_stmt *prepare(const char *sql)
{
    struct sql_stmt *s;

    ck_assert_msg(store_prepare(st, sql, &s, err, sizeof(err)) == 0, "%s: %s", sql, err);
    return s;
}

/* How many kept statements were prepared from sql. */
static int kept_count(const char *sql)
{
    int n = 0;

    for (int i = 0; i < STORE_KEPT_STMTS; i++)
        n += st->kept[i].s && strcmp(sqlite3_sql(st->kept[i].s->lite), sql) == 0;
    return n;
}

static int kept_total(void)
{
    int n = 0;

    for (int i = 0; i < STORE_KEPT_STMTS; i++)
        n += st->kept[i].s != NULL;
    return n;
}

static int open_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    int n = 0;

    ck_assert_ptr_nonnull(d);
    while (readdir(d))
        n++;
    closedir(d);
    return n;
}

START_TEST(test_text_in_use_twice_gives_two_statements)
{
    const char *sql = "SELECT count(*) FROM kv";
    struct sql_stmt *a = prepare(sql), *b = prepare(sql), *c;

    ck_assert_ptr_ne(a, b);
    ck_assert_ptr_ne(a->lite, b->lite);
    /* Both run at once: neither is the other's. */
    ck_assert_int_eq(sql_step(a), SQL_ROW);
    ck_assert_int_eq(sql_step(b), SQL_ROW);
    sql_finalize(a);
    sql_finalize(b);
    ck_assert_int_eq(kept_count(sql), 1);
    c = prepare(sql);
    ck_assert_msg(c == a || c == b, "a kept statement was not taken");
    ck_assert_int_eq(kept_count(sql), 0);
    sql_finalize(c);
}
END_TEST

START_TEST(test_kept_statement_has_no_bindings_left)
{
    const char *sql = "SELECT ?1, ?2";
    struct sql_stmt *s = prepare(sql);
    sqlite3_stmt *lite = s->lite;
    char text[] = "bound";

    sql_bind_text(s, 1, text);
    sql_bind_int64(s, 2, 42);
    ck_assert_int_eq(sql_step(s), SQL_ROW);
    ck_assert_str_eq(sql_col_text(s, 0), "bound");
    sql_finalize(s);
    memset(text, 'x', sizeof(text) - 1); /* the caller's text changes once it is done */
    s = prepare(sql);
    ck_assert_ptr_eq(s->lite, lite);
    ck_assert_int_eq(sql_step(s), SQL_ROW);
    ck_assert(sql_col_null(s, 0));
    ck_assert(sql_col_null(s, 1));
    sql_finalize(s);
}
END_TEST

/* A statement put back in the middle of its rows holds no read: another connection's
 * checkpoint then copies the whole log back and truncates it. */
START_TEST(test_kept_statement_holds_no_read)
{
    sqlite3 *other;
    sqlite3_stmt *cp;
    struct sql_stmt *s;

    ck_assert_int_eq(store_exec(st,
                                "INSERT INTO kv(v) VALUES ('a'), ('b'), ('c');"
                                "INSERT INTO kv(v) SELECT v FROM kv",
                                err, sizeof(err)),
                     0);
    s = prepare("SELECT v FROM kv ORDER BY k");
    ck_assert_int_eq(sql_step(s), SQL_ROW);
    sql_finalize(s);
    ck_assert_int_eq(kept_count("SELECT v FROM kv ORDER BY k"), 1);
    ck_assert_int_eq(sqlite3_open(tmp.db, &other), SQLITE_OK);
    ck_assert_int_eq(sqlite3_exec(other, "INSERT INTO kv(v) VALUES ('d')", NULL, NULL, NULL),
                     SQLITE_OK);
    ck_assert_int_eq(sqlite3_prepare_v2(other, "PRAGMA wal_checkpoint(TRUNCATE)", -1, &cp, NULL),
                     SQLITE_OK);
    ck_assert_int_eq(sqlite3_step(cp), SQLITE_ROW);
    ck_assert_int_eq(sqlite3_column_int(cp, 0), 0); /* 1: blocked by a reader */
    ck_assert_int_eq(sqlite3_column_int(cp, 1), 0); /* frames left in the log */
    sqlite3_finalize(cp);
    sqlite3_close(other);
}
END_TEST

/* After a failed step, the connection's message is the step's, as after sqlite3_finalize
 * (callers read sql_errmsg after sql_finalize). */
START_TEST(test_error_message_survives_finalize)
{
    struct sql_stmt *s = prepare("INSERT INTO kv(k, v) VALUES (1, 'x')");

    ck_assert_int_eq(sql_step(s), SQL_DONE);
    sql_reset(s);
    ck_assert_int_ne(sql_step(s), SQL_DONE);
    sql_finalize(s);
    ck_assert_msg(strstr(sql_errmsg(st), "UNIQUE") != NULL, "%s", sql_errmsg(st));
}
END_TEST

/* Texts used once each (a varying list of placeholders) do not grow the cache, and push out
 * the least recently used ones only. */
START_TEST(test_kept_statements_are_bounded_least_recent_out)
{
    const char *often = "SELECT v FROM kv WHERE k = ?";
    char sql[64];

    for (int i = 0; i < 3 * STORE_KEPT_STMTS; i++) {
        sql_finalize(prepare(often));
        snprintf(sql, sizeof(sql), "SELECT %d", i);
        sql_finalize(prepare(sql));
    }
    ck_assert_int_eq(kept_total(), STORE_KEPT_STMTS);
    ck_assert_int_eq(kept_count(often), 1);
    ck_assert_int_eq(kept_count(sql), 1);
    ck_assert_int_eq(kept_count("SELECT 0"), 0);
}
END_TEST

/* A script of several statements is never taken for its first one, nor kept. */
START_TEST(test_script_text_is_not_its_first_statement)
{
    struct sql_stmt *s = prepare("SELECT 1");
    int kept;

    sql_finalize(s);
    kept = kept_total();
    s = prepare("SELECT 1; SELECT 2");
    ck_assert_int_eq(kept_count("SELECT 1"), 1);
    sql_finalize(s);
    ck_assert_int_eq(kept_total(), kept);
}
END_TEST

/* SQLite does not close a connection with statements left: the file would stay open. */
START_TEST(test_close_with_kept_statements_closes_the_database)
{
    struct store *other;
    int before;

    /* Alone on the file: SQLite holds a closed connection's descriptor back while another
     * connection of the process has a lock on it. */
    store_close(st);
    st = NULL;
    before = open_fds();
    other = store_open(tmp.db, err, sizeof(err));
    ck_assert_msg(other != NULL, "%s", err);
    for (int i = 0; i < 4; i++) {
        struct sql_stmt *s;
        char sql[64];

        snprintf(sql, sizeof(sql), "SELECT v FROM kv WHERE k > %d", i);
        ck_assert_int_eq(store_prepare(other, sql, &s, err, sizeof(err)), 0);
        ck_assert_int_ne(sql_step(s), -1);
        sql_finalize(s);
    }
    ck_assert_int_gt(open_fds(), before);
    store_close(other);
    ck_assert_int_eq(open_fds(), before);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("store_sql");
    TCase *tc = tcase_create("kept statements");
    SRunner *sr;
    int failed;

    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_text_in_use_twice_gives_two_statements);
    tcase_add_test(tc, test_kept_statement_has_no_bindings_left);
    tcase_add_test(tc, test_kept_statement_holds_no_read);
    tcase_add_test(tc, test_error_message_survives_finalize);
    tcase_add_test(tc, test_kept_statements_are_bounded_least_recent_out);
    tcase_add_test(tc, test_script_text_is_not_its_first_statement);
    tcase_add_test(tc, test_close_with_kept_statements_closes_the_database);
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
