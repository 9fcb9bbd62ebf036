/* test_store_spill: the log spill alone, without a writer or a database: first in first out
 * across memory and file, the file's cap and its drop count, a restart that finds the frames
 * (and the writer id) a previous run left, a frame cut short by a crash, a file that is not a
 * spill file, and the mode of the file. */
#include <check.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "storage/store_spill.h"

static char dir[64];
static char path[128];

static void setup(void)
{
    snprintf(dir, sizeof(dir), "/tmp/pxspill.XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/log-spill", dir);
}

static void teardown(void)
{
    unlink(path);
    rmdir(dir);
}

static struct store_spill *open_spill(size_t mem_max, uint64_t file_max)
{
    char err[256] = "";
    struct store_spill *s = store_spill_open(path, mem_max, file_max, err, sizeof(err));

    ck_assert_msg(s != NULL, "%s", err);
    return s;
}

/* A frame's text: "row SEQ.I\n" for each of its rows. */
static size_t frame_text(char *buf, size_t cap, int64_t seq, uint64_t rows)
{
    size_t n = 0;

    for (uint64_t i = 0; i < rows; i++)
        n += (size_t)snprintf(buf + n, cap - n, "row %lld.%llu\n", (long long)seq,
                              (unsigned long long)i);
    return n;
}

static bool add(struct store_spill *s, int64_t seq, uint64_t rows)
{
    char text[4096], err[256];
    size_t n = frame_text(text, sizeof(text), seq, rows);

    return store_spill_add(s, seq, text, n, rows, err, sizeof(err));
}

/* Takes the oldest frame and checks it is seq's, with rows rows. */
static void expect_next(struct store_spill *s, int64_t seq, uint64_t rows)
{
    char want[4096], err[256] = "";
    const char *text;
    size_t len, wlen = frame_text(want, sizeof(want), seq, rows);
    int64_t got_seq;
    uint64_t got_rows;

    ck_assert_msg(store_spill_peek(s, &got_seq, &text, &len, &got_rows, err, sizeof(err)),
                  "no frame %lld (%s)", (long long)seq, err);
    ck_assert_int_eq(got_seq, seq);
    ck_assert_uint_eq(got_rows, rows);
    ck_assert_uint_eq(len, wlen);
    ck_assert(memcmp(text, want, len) == 0);
    store_spill_pop(s);
}

static void counts(struct store_spill *s, uint64_t waiting, uint64_t dropped)
{
    uint64_t w, d;

    store_spill_counts(s, &w, &d);
    ck_assert_uint_eq(w, waiting);
    ck_assert_uint_eq(d, dropped);
}

static off_t file_size(void)
{
    struct stat sb;

    ck_assert_int_eq(stat(path, &sb), 0);
    return sb.st_size;
}

START_TEST(test_frames_come_back_in_order_across_memory_and_file)
{
    /* Memory holds about two frames: the rest goes through the file, oldest first. */
    struct store_spill *s = open_spill(80, 1 << 20);
    struct stat sb;

    ck_assert_int_eq(stat(path, &sb), 0);
    ck_assert_int_eq(sb.st_mode & 0777, 0600);
    ck_assert(store_spill_empty(s));
    for (int64_t seq = 1; seq <= 10; seq++)
        ck_assert(add(s, seq, 2));
    ck_assert(file_size() > 100); /* some went to the file */
    counts(s, 20, 0);
    ck_assert_int_eq(store_spill_last_seq(s), 10);
    for (int64_t seq = 1; seq <= 10; seq++)
        expect_next(s, seq, 2);
    ck_assert(store_spill_empty(s));
    counts(s, 0, 0);
    ck_assert(file_size() < 100); /* emptied back to its header */
    /* And again, after it emptied. */
    ck_assert(add(s, 11, 3));
    expect_next(s, 11, 3);
    store_spill_close(s);
}
END_TEST

START_TEST(test_full_file_drops_and_counts)
{
    /* No memory to speak of, a file of about three frames. */
    struct store_spill *s = open_spill(1, 160);
    int kept = 0;

    for (int64_t seq = 1; seq <= 10; seq++)
        kept += add(s, seq, 2);
    ck_assert_int_gt(kept, 0);
    ck_assert_int_lt(kept, 10);
    counts(s, (uint64_t)kept * 2, (uint64_t)(10 - kept) * 2);
    for (int64_t seq = 1; seq <= kept; seq++)
        expect_next(s, seq, 2);
    ck_assert(store_spill_empty(s));
    /* Room again once sent. */
    ck_assert(add(s, 11, 2));
    store_spill_close(s);
}
END_TEST

START_TEST(test_restart_finds_the_frames_and_the_writer_id)
{
    struct store_spill *s = open_spill(1 << 20, 1 << 20);
    char id[STORE_SPILL_ID_LEN + 1];

    snprintf(id, sizeof(id), "%s", store_spill_id(s));
    ck_assert_uint_eq(strlen(id), STORE_SPILL_ID_LEN);
    ck_assert(add(s, 5, 1));
    ck_assert(add(s, 6, 4));
    expect_next(s, 5, 1);
    store_spill_close(s); /* memory's frame goes to the file */

    s = open_spill(1 << 20, 1 << 20);
    ck_assert_str_eq(store_spill_id(s), id);
    ck_assert_int_eq(store_spill_last_seq(s), 6);
    counts(s, 4, 0);
    expect_next(s, 6, 4);
    ck_assert(store_spill_empty(s));
    store_spill_close(s);
}
END_TEST

START_TEST(test_a_frame_cut_short_ends_the_file)
{
    struct store_spill *s = open_spill(1, 1 << 20);
    int fd;

    ck_assert(add(s, 1, 2));
    ck_assert(add(s, 2, 3));
    store_spill_close(s);
    /* A crash in the middle of the second frame's write. */
    fd = open(path, O_WRONLY);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(ftruncate(fd, file_size() - 5), 0);
    close(fd);
    s = open_spill(1, 1 << 20);
    counts(s, 2, 3);
    expect_next(s, 1, 2);
    ck_assert(store_spill_empty(s));
    ck_assert(add(s, 3, 1)); /* appended where the good frames end */
    expect_next(s, 3, 1);
    store_spill_close(s);
}
END_TEST

START_TEST(test_drop_counts_a_refused_frame)
{
    struct store_spill *s = open_spill(1 << 20, 1 << 20);
    const char *text;
    size_t len;
    int64_t seq;
    uint64_t rows;

    ck_assert(add(s, 1, 2));
    ck_assert(add(s, 2, 1));
    ck_assert(store_spill_peek(s, &seq, &text, &len, &rows, NULL, 0));
    store_spill_drop(s);
    counts(s, 1, 2);
    expect_next(s, 2, 1);
    store_spill_close(s);
}
END_TEST

START_TEST(test_a_file_that_is_not_a_spill_is_refused)
{
    char err[256] = "";
    FILE *f = fopen(path, "w");

    ck_assert_ptr_nonnull(f);
    fputs("proxyd.db or anything else\n", f);
    fclose(f);
    ck_assert_ptr_null(store_spill_open(path, 1 << 20, 1 << 20, err, sizeof(err)));
    ck_assert_msg(strstr(err, "not a log spill file") != NULL, "%s", err);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("store_spill");
    TCase *tc = tcase_create("spill");
    SRunner *sr;
    int failed;

    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_frames_come_back_in_order_across_memory_and_file);
    tcase_add_test(tc, test_full_file_drops_and_counts);
    tcase_add_test(tc, test_restart_finds_the_frames_and_the_writer_id);
    tcase_add_test(tc, test_a_frame_cut_short_ends_the_file);
    tcase_add_test(tc, test_drop_counts_a_refused_frame);
    tcase_add_test(tc, test_a_file_that_is_not_a_spill_is_refused);
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
