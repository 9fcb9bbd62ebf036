/* test_origin: the pure parts of proxy/origin.c, without a worker or a socket: target refusal
 * (which addresses proxyd never connects to, a table) and the pool of idle origin
 * connections (put, take, same address, expiry, a full pool), its descriptors stood in for by
 * /dev/null. */
#include "proxy/origin.h"

#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static struct sockaddr_storage addr_of(const char *text, uint16_t port)
{
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof(ss));
    if (strchr(text, ':')) {
        struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
        s6->sin6_family = AF_INET6;
        s6->sin6_port = htons(port);
        ck_assert_msg(inet_pton(AF_INET6, text, &s6->sin6_addr) == 1, "%s", text);
    } else {
        struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
        s4->sin_family = AF_INET;
        s4->sin_port = htons(port);
        ck_assert_msg(inet_pton(AF_INET, text, &s4->sin_addr) == 1, "%s", text);
    }
    return ss;
}

/* ---- target refusal ---- */

#define OWN_V4 "192.0.2.10"
#define OWN_V6 "2001:db8::10"
#define PROXY_PORT 3128
#define ADMIN_PORT 8080

static const char *const LOOPBACK = "loopback target address";
static const char *const LINK_LOCAL = "link-local target address";
static const char *const INVALID = "invalid target address";
static const char *const ITSELF = "target is the proxy itself";
static const char *const MACHINE = "target is this machine";

static const struct refusal_case {
    const char *addr;
    uint16_t port;
    bool allow_loopback;
    const char *want; /* NULL: may be a target */
} refusal_cases[] = {
    /* Out on the network: always a target, whatever the port. */
    {"93.184.216.34", 80, false, NULL},
    {"10.1.2.3", 443, false, NULL},
    {"2606:2800:220:1::1", 443, false, NULL},
    {"93.184.216.34", PROXY_PORT, false, NULL},
    /* Loopback: only when allowed, and never proxyd's own ports. */
    {"127.0.0.1", 80, false, LOOPBACK},
    {"127.9.9.9", 80, false, LOOPBACK},
    {"::1", 80, false, LOOPBACK},
    {"127.0.0.1", 80, true, NULL},
    {"::1", 80, true, NULL},
    {"127.0.0.1", PROXY_PORT, true, ITSELF},
    {"127.0.0.1", ADMIN_PORT, true, ITSELF},
    {"::1", ADMIN_PORT, true, ITSELF},
    {"127.0.0.1", PROXY_PORT, false, ITSELF},
    /* This machine's own addresses: as loopback. */
    {OWN_V4, 80, false, MACHINE},
    {OWN_V6, 80, false, MACHINE},
    {OWN_V4, 80, true, NULL},
    {OWN_V4, ADMIN_PORT, true, ITSELF},
    {OWN_V6, PROXY_PORT, true, ITSELF},
    {"192.0.2.11", 80, false, NULL}, /* a neighbour is not us */
    /* Link-local, unspecified, multicast and the rest of 224/3: never. */
    {"169.254.169.254", 80, false, LINK_LOCAL},
    {"169.254.169.254", 80, true, LINK_LOCAL},
    {"fe80::1", 80, true, LINK_LOCAL},
    {"0.0.0.0", 80, true, INVALID},
    {"0.1.2.3", 80, true, INVALID},
    {"::", 80, true, INVALID},
    {"224.0.0.1", 80, true, INVALID},
    {"239.255.255.250", 1900, false, INVALID},
    {"240.0.0.1", 80, false, INVALID},
    {"255.255.255.255", 80, false, INVALID},
    {"ff02::1", 80, true, INVALID},
    /* IPv4-mapped IPv6 is judged as the IPv4 address it carries. */
    {"::ffff:127.0.0.1", 80, false, LOOPBACK},
    {"::ffff:127.0.0.1", 80, true, NULL},
    {"::ffff:127.0.0.1", PROXY_PORT, true, ITSELF},
    {"::ffff:169.254.1.1", 80, true, LINK_LOCAL},
    {"::ffff:" OWN_V4, 80, false, MACHINE},
    {"::ffff:93.184.216.34", 80, false, NULL},
    /* NAT64, 6to4 and IPv4-compatible addresses also answer for the IPv4 address inside. */
    {"64:ff9b::127.0.0.1", 80, false, LOOPBACK},
    {"64:ff9b::127.0.0.1", 80, true, NULL},
    {"2002:a9fe:101::1", 80, true, LINK_LOCAL},
    {"::127.0.0.1", 80, false, LOOPBACK},
    {"64:ff9b::" OWN_V4, 80, false, MACHINE},
    {"64:ff9b::93.184.216.34", 80, false, NULL},
    {"2002:5db8:d822::1", 80, false, NULL},
    {"2001:db8::7f00:1", 80, false, NULL},
};

START_TEST(test_target_refusal_table)
{
    struct sockaddr_storage local[2] = {addr_of(OWN_V4, 0), addr_of(OWN_V6, 0)};
    const uint16_t own_ports[] = {PROXY_PORT, ADMIN_PORT};
    for (size_t i = 0; i < sizeof(refusal_cases) / sizeof(refusal_cases[0]); i++) {
        const struct refusal_case *t = &refusal_cases[i];
        struct origin_guard g = {
            .local_addrs = local,
            .nlocal_addrs = 2,
            .own_ports = own_ports,
            .nown_ports = 2,
            .allow_loopback = t->allow_loopback,
        };
        struct sockaddr_storage ss = addr_of(t->addr, t->port);
        const char *got = origin_target_refusal(&g, &ss);
        ck_assert_msg(got == t->want || (got && t->want && !strcmp(got, t->want)),
                      "%s port %u%s: got \"%s\", want \"%s\"", t->addr, t->port,
                      t->allow_loopback ? " (loopback allowed)" : "", got ? got : "(allowed)",
                      t->want ? t->want : "(allowed)");
    }
}
END_TEST

START_TEST(test_target_refusal_without_own_addresses_still_knows_loopback)
{
    struct origin_guard g = {0};
    struct sockaddr_storage ss = addr_of("127.0.0.1", 80);
    ck_assert_str_eq(origin_target_refusal(&g, &ss), LOOPBACK);
    ss = addr_of(OWN_V4, 80);
    ck_assert_ptr_null(origin_target_refusal(&g, &ss));
}
END_TEST

/* The address a request went to, as the access log shows it. */
START_TEST(test_format_addr_as_logged)
{
    static const struct {
        const char *addr;
        uint16_t port;
        const char *want;
    } cases[] = {
        {"0.0.0.0", 0, "0.0.0.0:0"},
        {"127.0.0.1", 80, "127.0.0.1:80"},
        {"10.20.30.40", 8080, "10.20.30.40:8080"},
        {"255.255.255.255", 65535, "255.255.255.255:65535"},
        {"192.0.2.1", 9, "192.0.2.1:9"},
        {"::1", 443, "[::1]:443"},
        {"2001:db8::5", 65535, "[2001:db8::5]:65535"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct sockaddr_storage ss = addr_of(cases[i].addr, cases[i].port);
        char out[54];
        memset(out, 'x', sizeof(out));
        origin_format_addr(&ss, out, sizeof(out));
        ck_assert_str_eq(out, cases[i].want);
    }
}
END_TEST

/* ---- the pool ---- */

static int fake_fd(void)
{
    int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    ck_assert_int_ge(fd, 0);
    return fd;
}

static bool is_open(int fd)
{
    return fcntl(fd, F_GETFD) >= 0 || errno != EBADF;
}

START_TEST(test_pool_take_gives_back_what_was_put_for_that_address_only)
{
    struct origin_pool p = {0};
    struct sockaddr_storage a = addr_of("10.0.0.1", 80), a_other_port = addr_of("10.0.0.1", 8080),
                            b = addr_of("10.0.0.2", 80), a6 = addr_of("::ffff:10.0.0.1", 80);
    int fa = fake_fd(), fb = fake_fd();
    ck_assert(origin_pool_put(&p, fa, &a, 1000));
    ck_assert(origin_pool_put(&p, fb, &b, 1000));
    ck_assert_int_eq(origin_pool_take(&p, &a_other_port), -1); /* the port is part of it */
    ck_assert_int_eq(origin_pool_take(&p, &a6), -1);           /* and the family */
    ck_assert_int_eq(origin_pool_take(&p, &a), fa);
    ck_assert_int_eq(origin_pool_take(&p, &a), -1); /* taken is gone */
    ck_assert_uint_eq(p.n, 1);
    ck_assert_int_eq(origin_pool_take(&p, &b), fb);
    ck_assert_uint_eq(p.n, 0);
    close(fa);
    close(fb);
}
END_TEST

START_TEST(test_pool_take_prefers_the_most_recent)
{
    struct origin_pool p = {0};
    struct sockaddr_storage a = addr_of("2001:db8::1", 443), b = addr_of("2001:db8::2", 443);
    int f1 = fake_fd(), f2 = fake_fd(), f3 = fake_fd();
    ck_assert(origin_pool_put(&p, f1, &a, 1000));
    ck_assert(origin_pool_put(&p, f2, &b, 2000));
    ck_assert(origin_pool_put(&p, f3, &a, 3000));
    ck_assert_int_eq(origin_pool_take(&p, &a), f3);
    ck_assert_int_eq(origin_pool_take(&p, &a), f1);
    ck_assert_int_eq(origin_pool_take(&p, &b), f2);
    close(f1);
    close(f2);
    close(f3);
}
END_TEST

START_TEST(test_pool_expiry_closes_only_the_old)
{
    struct origin_pool p = {0};
    struct sockaddr_storage a = addr_of("10.0.0.1", 80);
    int old1 = fake_fd(), young = fake_fd(), old2 = fake_fd(), edge = fake_fd();
    ck_assert(origin_pool_put(&p, old1, &a, 1000));
    ck_assert(origin_pool_put(&p, young, &a, 9000));
    ck_assert(origin_pool_put(&p, old2, &a, 2000));
    ck_assert(origin_pool_put(&p, edge, &a, 5000)); /* idle exactly the limit: kept */
    ck_assert_uint_eq(origin_pool_expire(&p, 10000, 5000), 2);
    ck_assert(!is_open(old1));
    ck_assert(!is_open(old2));
    ck_assert_uint_eq(p.n, 2);
    int first = origin_pool_take(&p, &a), second = origin_pool_take(&p, &a);
    ck_assert((first == young && second == edge) || (first == edge && second == young));
    ck_assert_uint_eq(origin_pool_expire(&p, 10000, 5000), 0);
    close(young);
    close(edge);
}
END_TEST

START_TEST(test_pool_full_refuses_and_leaves_the_fd_to_the_caller)
{
    struct origin_pool p = {0};
    struct sockaddr_storage a = addr_of("10.0.0.1", 80);
    int fd = fake_fd();
    for (size_t i = 0; i < ORIGIN_POOL_MAX; i++)
        ck_assert(origin_pool_put(&p, fd, &a, (int64_t)i));
    int extra = fake_fd();
    ck_assert(!origin_pool_put(&p, extra, &a, 100));
    ck_assert(is_open(extra));
    ck_assert_uint_eq(p.n, ORIGIN_POOL_MAX);
    ck_assert_int_eq(origin_pool_take(&p, &a), fd); /* a free slot... */
    ck_assert(origin_pool_put(&p, extra, &a, 100)); /* ...takes the next */
    ck_assert_int_eq(origin_pool_take(&p, &a), extra);
    p.n = 0; /* every entry is the same fd: close it once, not ORIGIN_POOL_MAX times */
    close(fd);
    close(extra);
}
END_TEST

START_TEST(test_pool_clear_closes_everything)
{
    struct origin_pool p = {0};
    struct sockaddr_storage a = addr_of("10.0.0.1", 80), b = addr_of("::1", 80);
    int fa = fake_fd(), fb = fake_fd();
    ck_assert(origin_pool_put(&p, fa, &a, 0));
    ck_assert(origin_pool_put(&p, fb, &b, 0));
    origin_pool_clear(&p);
    ck_assert_uint_eq(p.n, 0);
    ck_assert(!is_open(fa));
    ck_assert(!is_open(fb));
}
END_TEST

int main(void)
{
    Suite *s = suite_create("origin");
    TCase *tc = tcase_create("origin");
    tcase_add_test(tc, test_target_refusal_table);
    tcase_add_test(tc, test_format_addr_as_logged);
    tcase_add_test(tc, test_target_refusal_without_own_addresses_still_knows_loopback);
    tcase_add_test(tc, test_pool_take_gives_back_what_was_put_for_that_address_only);
    tcase_add_test(tc, test_pool_take_prefers_the_most_recent);
    tcase_add_test(tc, test_pool_expiry_closes_only_the_old);
    tcase_add_test(tc, test_pool_full_refuses_and_leaves_the_fd_to_the_caller);
    tcase_add_test(tc, test_pool_clear_closes_everything);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
