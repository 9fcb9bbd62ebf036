/* test_tmpdir: a private temporary directory per test (mkdtemp) and its removal, shared by
 * the storage unit tests. Header-only: each test executable includes it once.
 */
#ifndef PX_TEST_TMPDIR_H
#define PX_TEST_TMPDIR_H

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

struct test_tmpdir {
    char dir[64];
    char db[128]; /* dir/test.db */
};

static inline void test_tmpdir_make(struct test_tmpdir *t)
{
    snprintf(t->dir, sizeof(t->dir), "/tmp/px_store_test.XXXXXX");
    if (!mkdtemp(t->dir)) {
        perror("mkdtemp");
        abort();
    }
    snprintf(t->db, sizeof(t->db), "%s/test.db", t->dir);
}

static inline int test_tmpdir_rm_one(const char *path, const struct stat *sb, int flag,
                                     struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static inline void test_tmpdir_remove(struct test_tmpdir *t)
{
    nftw(t->dir, test_tmpdir_rm_one, 8, FTW_DEPTH | FTW_PHYS);
}

static inline double test_now_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

#endif
