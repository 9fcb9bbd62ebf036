/* tests/unit/common.h: fixtures the unit test programs share: a private temporary folder per
 * test (mkdtemp, removed with everything in it) and a fresh store opened in it, so a test
 * file's setup and teardown are one call each.
 *
 * Header-only (static inline) because each test program is one .c file with no test
 * library to link; a program that never calls the store fixtures needs no px_store. The
 * helpers fail the running Check test rather than return errors.
 */
#ifndef PX_TEST_COMMON_H
#define PX_TEST_COMMON_H

#include <check.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "storage/store.h"

struct test_tmpdir {
    char dir[64]; /* /tmp/px_test.XXXXXX, mode 0700 */
    char db[128]; /* dir/proxyd.db, not created until something opens it */
};

/* Makes a new private folder; fails the test if it cannot. */
static inline void test_tmpdir_make(struct test_tmpdir *t)
{
    snprintf(t->dir, sizeof(t->dir), "/tmp/px_test.XXXXXX");
    ck_assert_msg(mkdtemp(t->dir) != NULL, "mkdtemp %s failed", t->dir);
    snprintf(t->db, sizeof(t->db), "%s/proxyd.db", t->dir);
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

/* Monotonic seconds, for the hang guards of tests that poll for a condition (never to bound
 * how long something may take: a loaded machine decides that, not the code). */
static inline double test_now_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

#endif
