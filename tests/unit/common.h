/* tests/unit/common.h: fixtures the unit test programs share: a private temporary folder per
 * test (mkdtemp, removed with everything in it) and a fresh store opened in it, so a test
 * file's setup and teardown are one call each.
 *
 * The storage tests run twice, the second time with PX_TEST_PG set to the conninfo of the
 * PostgreSQL that tests/pg_fixture.sh started (tests/unit/storage/CMakeLists.txt): then the
 * "database" of each test is a schema of its own in that PostgreSQL, dropped with the folder.
 *
 * Header-only (static inline) because each test program is one .c file with no test
 * library to link; a program that never calls the store fixtures needs no px_store. The
 * helpers fail the running Check test rather than return errors.
 */
#ifndef PX_TEST_COMMON_H
#define PX_TEST_COMMON_H

#include <check.h>
#include <ftw.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "storage/store.h"

struct test_tmpdir {
    char dir[64];       /* /tmp/px_test.XXXXXX, mode 0700 */
    char db[512];       /* dir/proxyd.db, not created until something opens it; with PX_TEST_PG
                           a conninfo naming the schema below */
    char pg_schema[48]; /* with PX_TEST_PG: the test's schema, "" without */
};

#ifdef PX_TEST_PG_FIXTURE
#include <libpq-fe.h>
#include <unistd.h>

/* Runs sql on the fixture's PostgreSQL (PX_TEST_PG); fails the test if it cannot. */
static inline void test_pg_exec(const char *sql)
{
    PGconn *c = PQconnectdb(getenv("PX_TEST_PG"));
    PGresult *r;

    ck_assert_msg(PQstatus(c) == CONNECTION_OK, "PostgreSQL: %s", PQerrorMessage(c));
    PQclear(PQexec(c, "SET client_min_messages = warning"));
    r = PQexec(c, sql);
    ck_assert_msg(PQresultStatus(r) == PGRES_COMMAND_OK, "%s: %s", sql, PQerrorMessage(c));
    PQclear(r);
    PQfinish(c);
}
#endif

#ifdef PX_TEST_PG_FIXTURE
#include <sqlite3.h>

/* Runs sql on the test's own database, behind the store's back (to break a row). */
static inline void test_db_exec(const struct test_tmpdir *t, const char *sql)
{
    if (t->pg_schema[0]) {
        PGconn *c = PQconnectdb(t->db);
        PGresult *r = PQexec(c, sql);

        ck_assert_msg(PQresultStatus(r) == PGRES_COMMAND_OK, "%s: %s", sql, PQerrorMessage(c));
        PQclear(r);
        PQfinish(c);
    } else {
        sqlite3 *db;

        ck_assert_int_eq(sqlite3_open(t->db, &db), SQLITE_OK);
        ck_assert_msg(sqlite3_exec(db, sql, 0, 0, 0) == SQLITE_OK, "%s: %s", sql,
                      sqlite3_errmsg(db));
        sqlite3_close(db);
    }
}

/* The first column of the first row of sql on the test's own database, behind the store's
 * back. */
static inline long long test_db_int(const struct test_tmpdir *t, const char *sql)
{
    long long v;

    if (t->pg_schema[0]) {
        PGconn *c = PQconnectdb(t->db);
        PGresult *r = PQexec(c, sql);

        ck_assert_msg(PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1, "%s: %s", sql,
                      PQerrorMessage(c));
        v = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
        PQclear(r);
        PQfinish(c);
    } else {
        sqlite3 *db;
        sqlite3_stmt *s;

        ck_assert_int_eq(sqlite3_open(t->db, &db), SQLITE_OK);
        ck_assert_int_eq(sqlite3_prepare_v2(db, sql, -1, &s, NULL), SQLITE_OK);
        ck_assert_int_eq(sqlite3_step(s), SQLITE_ROW);
        v = sqlite3_column_int64(s, 0);
        sqlite3_finalize(s);
        sqlite3_close(db);
    }
    return v;
}
#endif

/* Whether this run stores into PostgreSQL (tests of SQLite's own files skip themselves). */
static inline bool test_pg(void)
{
    const char *pg = getenv("PX_TEST_PG");

    return pg && *pg;
}

/* Makes a new private folder; fails the test if it cannot. */
static inline void test_tmpdir_make(struct test_tmpdir *t)
{
    snprintf(t->dir, sizeof(t->dir), "/tmp/px_test.XXXXXX");
    ck_assert_msg(mkdtemp(t->dir) != NULL, "mkdtemp %s failed", t->dir);
    snprintf(t->db, sizeof(t->db), "%s/proxyd.db", t->dir);
    t->pg_schema[0] = '\0';
#ifdef PX_TEST_PG_FIXTURE
    if (test_pg()) {
        static unsigned seq;
        char sql[96];

        snprintf(t->pg_schema, sizeof(t->pg_schema), "pxt_%ld_%u", (long)getpid(), seq++);
        snprintf(sql, sizeof(sql), "CREATE SCHEMA %s", t->pg_schema);
        test_pg_exec(sql);
        snprintf(t->db, sizeof(t->db), "%s options='-csearch_path=%s'", getenv("PX_TEST_PG"),
                 t->pg_schema);
    }
#endif
}

static inline int test_tmpdir_rm_one(const char *path, const struct stat *sb, int flag,
                                     struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

/* Removes the folder and everything in it (the database with its -wal and -shm files,
 * logs a test wrote). */
static inline void test_tmpdir_remove(struct test_tmpdir *t)
{
    nftw(t->dir, test_tmpdir_rm_one, 8, FTW_DEPTH | FTW_PHYS);
#ifdef PX_TEST_PG_FIXTURE
    if (t->pg_schema[0]) {
        char sql[96];

        snprintf(sql, sizeof(sql), "DROP SCHEMA %s CASCADE", t->pg_schema);
        test_pg_exec(sql);
        t->pg_schema[0] = '\0';
    }
#endif
}

/* Makes the folder and opens a store at t->db (schema migrated). Returns the store, owned
 * by the caller: give it to test_store_remove. Fails the test if it cannot open. */
static inline struct store *test_store_make(struct test_tmpdir *t)
{
    char err[256] = "";
    struct store *st;

    test_tmpdir_make(t);
    st = store_open(t->db, err, sizeof(err));
    ck_assert_msg(st != NULL, "store_open %s: %s", t->db, err);
    return st;
}

/* Closes st (NULL if the test closed it already) and removes the folder. */
static inline void test_store_remove(struct test_tmpdir *t, struct store *st)
{
    store_close(st);
    test_tmpdir_remove(t);
}

/* The fixture of a test program whose every test runs on a fresh store: `st` (opened by
 * store_setup, in the folder or schema `tmp`, closed and removed by store_teardown) and `err`
 * for the calls' messages, emptied first. Used once at file level, after the includes; a
 * program that wants more in its setup calls store_setup from a setup of its own. */
#define TEST_STORE_FIXTURE                                                                         \
    static struct test_tmpdir tmp;                                                                 \
    static struct store *st;                                                                       \
    static char err[256];                                                                          \
    static void store_setup(void)                                                                  \
    {                                                                                              \
        err[0] = '\0';                                                                             \
        st = test_store_make(&tmp);                                                                \
    }                                                                                              \
    static void store_teardown(void)                                                               \
    {                                                                                              \
        test_store_remove(&tmp, st);                                                               \
    }

/* Monotonic seconds, for the hang guards of tests that poll for a condition (never to bound
 * how long something may take: a loaded machine decides that, not the code). */
static inline double test_now_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

#endif
