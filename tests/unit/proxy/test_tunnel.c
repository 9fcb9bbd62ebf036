/* test_tunnel: the per-worker pool of empty pipes (proxy/tunnel.c), with real pipes: a closed
 * empty pipe is kept and handed out again, one that still holds bytes (by our count or by the
 * kernel's) never is, and the pool is bounded; and tun_splice between real loopback TCP
 * sockets: a large transfer arrives byte-exact, the end of stream is reported only after the
 * last byte, and a pipe that is full tries no fill until a drain has made room. */
#include "proxy/tunnel.h"
#include "acl/acl.h"
#include "base/status.h"

#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
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

/* A connected pair of non-blocking loopback TCP sockets: fds[0] writes to fds[1]. */
static void tcp_pair(int fds[2])
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(a);
    int l = socket(AF_INET, SOCK_STREAM, 0);
    ck_assert_int_ge(l, 0);
    ck_assert_int_eq(bind(l, (struct sockaddr *)&a, sizeof(a)), 0);
    ck_assert_int_eq(listen(l, 1), 0);
    ck_assert_int_eq(getsockname(l, (struct sockaddr *)&a, &len), 0);
    fds[0] = socket(AF_INET, SOCK_STREAM, 0);
    ck_assert_int_eq(connect(fds[0], (struct sockaddr *)&a, sizeof(a)), 0);
    fds[1] = accept(l, NULL, NULL);
    ck_assert_int_ge(fds[1], 0);
    close(l);
    for (int i = 0; i < 2; i++)
        ck_assert_int_eq(fcntl(fds[i], F_SETFL, O_NONBLOCK), 0);
}

/* The sender -> [src] tun_splice [dst] -> receiver chain of one direction of a tunnel. */
struct chain {
    int src[2], dst[2];
    struct tun_pipe_pool pool;
    struct tun_pipe p;
};

static void chain_open(struct chain *ch)
{
    memset(ch, 0, sizeof(*ch));
    tcp_pair(ch->src);
    tcp_pair(ch->dst);
    ck_assert_int_eq(tun_pipe_open(&ch->pool, &ch->p), 0);
}

static void chain_close(struct chain *ch)
{
    tun_pipe_close(&ch->pool, &ch->p);
    tun_pipe_pool_clear(&ch->pool);
    for (int i = 0; i < 2; i++) {
        close(ch->src[i]);
        close(ch->dst[i]);
    }
}

/* 24 MiB of a pattern that differs at every offset a lost, doubled or reordered block would
 * shift, sent with a half-close: all of it arrives in order, and eof is set only once the
 * last byte has gone through (the tunnel passes the half-close on only then). */
START_TEST(test_large_transfer_is_byte_exact_and_eof_comes_after_the_last_byte)
{
    enum { TOTAL = 24 * 1024 * 1024 };
    uint8_t *out = malloc(TOTAL), *in = malloc(TOTAL);
    ck_assert(out && in);
    uint32_t x = 2463534242u;
    for (size_t i = 0; i < TOTAL; i++) {
        x ^= x << 13, x ^= x >> 17, x ^= x << 5;
        out[i] = (uint8_t)x;
    }
    struct chain ch;
    chain_open(&ch);
    size_t sent = 0, got = 0;
    bool readable = true, writable = true, eof = false, shut = false, to_failed;
    uint64_t limit = UINT64_MAX;
    /* Bounded: every round either moves bytes or the kernel has them in flight. */
    for (long round = 0; round < 10000000 && !(eof && ch.p.bytes == 0 && got == sent); round++) {
        if (sent < TOTAL) {
            ssize_t n = write(ch.src[0], out + sent, TOTAL - sent > 65536 ? 65536 : TOTAL - sent);
            if (n > 0)
                sent += (size_t)n;
        } else if (!shut) {
            ck_assert_int_eq(shutdown(ch.src[0], SHUT_WR), 0);
            shut = true;
        }
        readable = writable = true; /* as an edge-triggered wake would say */
        bool was_eof = eof;
        ssize_t n =
            tun_splice(&ch.p, ch.src[1], &readable, ch.dst[0], &writable, &limit, &eof, &to_failed);
        ck_assert_int_ne(n, PX_ERR);
        ck_assert_msg(!eof || was_eof || shut, "eof before the sender ended");
        ssize_t r = read(ch.dst[1], in + got, TOTAL - got);
        if (r > 0)
            got += (size_t)r;
        if (eof)
            ck_assert_uint_eq(sent, TOTAL);
    }
    ck_assert(eof);
    ck_assert_uint_eq(got, TOTAL);
    ck_assert_uint_eq(ch.p.bytes, 0);
    ck_assert(memcmp(in, out, TOTAL) == 0);
    chain_close(&ch);
    free(out);
    free(in);
}
END_TEST

/* A pipe runs out of slots before its byte count reaches cap (here made small against the
 * count's cap of 1 MiB). Once a fill has found it full, a step while the destination is
 * blocked and the source still says readable must try no splice at all (a source given as
 * -1 would fail it); a drain then makes room and the next fill goes on where it stopped. */
START_TEST(test_full_pipe_tries_no_fill_until_a_drain)
{
    struct chain ch;
    chain_open(&ch);
    ck_assert_int_ge(fcntl(ch.p.wr, F_SETPIPE_SZ, 16 * 4096), 16 * 4096);
    ch.p.cap = 1024 * 1024;
    static uint8_t block[65536];
    memset(block, 'z', sizeof(block));
    size_t sent = 0;
    for (int i = 0; i < 64; i++) { /* more than the pipe holds, less than the socket does */
        ssize_t n = write(ch.src[0], block, sizeof(block));
        if (n > 0)
            sent += (size_t)n;
    }
    ck_assert_uint_gt(sent, 16 * 4096 + 4096);
    bool readable = true, writable = false, eof = false, to_failed;
    uint64_t limit = UINT64_MAX;
    for (int i = 0; i < 100 && !ch.p.full; i++) {
        readable = true;
        ck_assert_int_ne(
            tun_splice(&ch.p, ch.src[1], &readable, ch.dst[0], &writable, &limit, &eof, &to_failed),
            PX_ERR);
    }
    ck_assert(ch.p.full);
    ck_assert_uint_lt(ch.p.bytes, ch.p.cap);
    size_t held = ch.p.bytes;
    readable = true;
    ck_assert_int_eq(
        tun_splice(&ch.p, -1, &readable, ch.dst[0], &writable, &limit, &eof, &to_failed), 0);
    ck_assert_uint_eq(ch.p.bytes, held);
    ck_assert(readable); /* the source's bytes are still there to be read */
    writable = true;
    ssize_t n =
        tun_splice(&ch.p, ch.src[1], &readable, ch.dst[0], &writable, &limit, &eof, &to_failed);
    ck_assert_int_ge(n, (ssize_t)held);
    ck_assert_uint_eq(UINT64_MAX - limit, (uint64_t)n + ch.p.bytes);
    chain_close(&ch);
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
    tcase_add_test(tc, test_large_transfer_is_byte_exact_and_eof_comes_after_the_last_byte);
    tcase_add_test(tc, test_full_pipe_tries_no_fill_until_a_drain);
    tcase_set_timeout(tc, 60);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
