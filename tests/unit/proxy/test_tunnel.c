/* test_tunnel: the per-worker pool of empty pipes (proxy/tunnel.c), with real pipes and no
 * socket: a closed empty pipe is kept and handed out again, one that still holds bytes (by
 * our count or by the kernel's) never is, and the pool is bounded. */
#include "proxy/tunnel.h"
#include "acl/acl.h"

#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

static bool is_open(int fd)
{
    return fcntl(fd, F_GETFD) >= 0 || errno != EBADF;
}

/* deny / splice / inspect: the policy's answer, then whether this proxyd can follow it. The
 * no-inspect list's "no" and a missing CA both splice; only the CA's absence is a note. */
START_TEST(test_inspect_decision_no_inspect_wins_and_no_ca_never_inspects)
{
    static const struct {
        struct acl_inspect in;
        const char *unable;
        bool want;
        const char *want_note;
    } cases[] = {
        {{.inspect = true, .rule_id = 9}, NULL, true, ""},
        {{.inspect = true, .rule_id = 9}, "no CA", false, "inspect rule 9 not applied: no CA"},
        {{.inspect = false, .no_inspect = true}, NULL, false, ""},
        {{.inspect = false, .no_inspect = true}, "no CA", false, ""},
        {{.inspect = false}, NULL, false, ""},
        {{.inspect = false}, "no CA", false, ""},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char note[96] = "stale";
        bool got = tun_inspect_decide(&cases[i].in, cases[i].unable, note, sizeof(note));
        ck_assert_msg(got == cases[i].want, "case %zu", i);
        ck_assert_str_eq(note, cases[i].want_note);
    }
}
END_TEST

START_TEST(test_closed_empty_pipe_is_handed_out_again)
{
    struct tun_pipe_pool pool = {0};
    struct tun_pipe p = {0};
    ck_assert_int_eq(tun_pipe_open(&pool, &p), 0);
    ck_assert(p.open);
    ck_assert_uint_eq(p.bytes, 0);
    ck_assert_uint_ge(p.cap, 65536);
    int rd = p.rd, wr = p.wr;
    tun_pipe_close(&pool, &p);
    ck_assert(!p.open);
    ck_assert_uint_eq(pool.n, 1);
    ck_assert(is_open(rd) && is_open(wr));
    struct tun_pipe q = {0};
    ck_assert_int_eq(tun_pipe_open(&pool, &q), 0);
    ck_assert_int_eq(q.rd, rd);
    ck_assert_int_eq(q.wr, wr);
    ck_assert_uint_eq(pool.n, 0);
    tun_pipe_close(&pool, &q);
    tun_pipe_pool_clear(&pool);
    ck_assert_uint_eq(pool.n, 0);
    ck_assert(!is_open(rd) && !is_open(wr));
}
END_TEST

/* How the bytes left in a pipe are counted when it is closed. */
static const struct leftover_case {
    const char *what;
    size_t written; /* into the pipe */
    size_t counted; /* what p.bytes says */
} leftover_cases[] = {
    {"bytes by our count and the kernel's", 5, 5},
    {"bytes the kernel has but our count missed", 3, 0},
    {"a count without bytes", 0, 7},
};

START_TEST(test_pipe_with_bytes_left_is_closed_not_kept)
{
    for (size_t i = 0; i < sizeof(leftover_cases) / sizeof(leftover_cases[0]); i++) {
        const struct leftover_case *t = &leftover_cases[i];
        struct tun_pipe_pool pool = {0};
        struct tun_pipe p = {0};
        ck_assert_int_eq(tun_pipe_open(&pool, &p), 0);
        if (t->written)
            ck_assert_int_eq(write(p.wr, "xxxxxxxx", t->written), (ssize_t)t->written);
        p.bytes = t->counted;
        int rd = p.rd, wr = p.wr;
        tun_pipe_close(&pool, &p);
        ck_assert_msg(pool.n == 0, "%s: kept", t->what);
        ck_assert_msg(!is_open(rd) && !is_open(wr), "%s: left open", t->what);
    }
}
END_TEST

START_TEST(test_pool_keeps_at_most_its_size)
{
    struct tun_pipe_pool pool = {0};
    struct tun_pipe p[TUN_PIPE_POOL + 2] = {{0}};
    for (size_t i = 0; i < TUN_PIPE_POOL + 2; i++)
        ck_assert_int_eq(tun_pipe_open(&pool, &p[i]), 0);
    for (size_t i = 0; i < TUN_PIPE_POOL + 2; i++)
        tun_pipe_close(&pool, &p[i]);
    ck_assert_uint_eq(pool.n, TUN_PIPE_POOL);
    ck_assert(!is_open(p[TUN_PIPE_POOL].rd) && !is_open(p[TUN_PIPE_POOL + 1].rd));
    tun_pipe_pool_clear(&pool);
    for (size_t i = 0; i < TUN_PIPE_POOL; i++)
        ck_assert(!is_open(p[i].rd) && !is_open(p[i].wr));
}
END_TEST

int main(void)
{
    Suite *s = suite_create("tunnel");
    TCase *tc = tcase_create("tunnel");
    tcase_add_test(tc, test_closed_empty_pipe_is_handed_out_again);
    tcase_add_test(tc, test_pipe_with_bytes_left_is_closed_not_kept);
    tcase_add_test(tc, test_pool_keeps_at_most_its_size);
    tcase_add_test(tc, test_inspect_decision_no_inspect_wins_and_no_ca_never_inspects);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
