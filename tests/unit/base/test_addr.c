/* test_addr: base/addr.c, the one parser of "IP:PORT" and "[IPv6]:PORT". */
#include "base/addr.h"

#include <arpa/inet.h>
#include <check.h>
#include <netinet/in.h>
#include <string.h>

#include "base/status.h"

static const struct {
    const char *text;
    uint16_t default_port; /* 0: the port is required */
    int want;              /* PX_OK or PX_ERR */
    int family;
    const char *ip; /* as inet_ntop writes it */
    uint16_t port;
} cases[] = {
    {"127.0.0.1:3128", 0, PX_OK, AF_INET, "127.0.0.1", 3128},
    {"0.0.0.0:0", 0, PX_OK, AF_INET, "0.0.0.0", 0},
    {"[::1]:8080", 0, PX_OK, AF_INET6, "::1", 8080},
    {"[::]:0", 0, PX_OK, AF_INET6, "::", 0},
    {"[::ffff:10.0.0.1]:65535", 0, PX_OK, AF_INET6, "::ffff:10.0.0.1", 65535},
    {"127.0.0.1", 0, PX_ERR, 0, NULL, 0}, /* the port is required */
    {"[::1]", 0, PX_ERR, 0, NULL, 0},
    {"::1", 0, PX_ERR, 0, NULL, 0},
    {"::1:3128", 0, PX_ERR, 0, NULL, 0},        /* an IPv6 address with a port needs [] */
    {"localhost:80", 0, PX_ERR, 0, NULL, 0},    /* numeric addresses only */
    {"127.0.0.1:99999", 0, PX_ERR, 0, NULL, 0}, /* port out of range */
    {"127.0.0.1:65536", 0, PX_ERR, 0, NULL, 0},
    {"127.0.0.1:", 0, PX_ERR, 0, NULL, 0},
    {"127.0.0.1:+80", 0, PX_ERR, 0, NULL, 0},
    {"127.0.0.1: 80", 0, PX_ERR, 0, NULL, 0},
    {"127.0.0.1:-0", 0, PX_ERR, 0, NULL, 0},
    {"127.0.0.1:80x", 0, PX_ERR, 0, NULL, 0},
    {":80", 0, PX_ERR, 0, NULL, 0},
    {"[]:80", 0, PX_ERR, 0, NULL, 0},
    {"[::1]80", 0, PX_ERR, 0, NULL, 0},
    {"[::1:80", 0, PX_ERR, 0, NULL, 0},
    {"[127.0.0.1]:80", 0, PX_ERR, 0, NULL, 0}, /* brackets hold IPv6 only */
    {"", 0, PX_ERR, 0, NULL, 0},
    {"1.2.3:80", 0, PX_ERR, 0, NULL, 0},
    /* with a default port (DNS servers: 53) */
    {"127.0.0.1", 53, PX_OK, AF_INET, "127.0.0.1", 53},
    {"127.0.0.1:5353", 53, PX_OK, AF_INET, "127.0.0.1", 5353},
    {"::1", 53, PX_OK, AF_INET6, "::1", 53},
    {"2001:db8::1", 53, PX_OK, AF_INET6, "2001:db8::1", 53},
    {"[::1]", 53, PX_OK, AF_INET6, "::1", 53},
    {"[::1]:5353", 53, PX_OK, AF_INET6, "::1", 5353},
    {"2001:db8::1:53", 53, PX_OK, AF_INET6, "2001:db8::1:53", 53}, /* no port: all address */
    {"127.0.0.1:", 53, PX_ERR, 0, NULL, 0},
    {"ns.example:53", 53, PX_ERR, 0, NULL, 0},
    {"[::1]:", 53, PX_ERR, 0, NULL, 0},
};

START_TEST(test_addr_parse_table)
{
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct sockaddr_storage ss;
        socklen_t len = 0;
        int rc = addr_parse(cases[i].text, cases[i].default_port, &ss, &len);
        ck_assert_msg(rc == cases[i].want, "'%s': returned %d", cases[i].text, rc);
        if (rc != PX_OK)
            continue;
        char ip[INET6_ADDRSTRLEN];
        const void *a = ss.ss_family == AF_INET
                            ? (const void *)&((struct sockaddr_in *)&ss)->sin_addr
                            : (const void *)&((struct sockaddr_in6 *)&ss)->sin6_addr;
        ck_assert_int_eq(ss.ss_family, cases[i].family);
        ck_assert_uint_eq(len, cases[i].family == AF_INET ? sizeof(struct sockaddr_in)
                                                          : sizeof(struct sockaddr_in6));
        ck_assert_ptr_nonnull(inet_ntop(ss.ss_family, a, ip, sizeof(ip)));
        ck_assert_msg(strcmp(ip, cases[i].ip) == 0, "'%s': address %s", cases[i].text, ip);
        ck_assert_msg(addr_port(&ss) == cases[i].port, "'%s': port %u", cases[i].text,
                      (unsigned)addr_port(&ss));
    }
}
END_TEST

/* An address too long for any IP must not overrun the parser's copy of it. */
START_TEST(test_addr_parse_overlong_is_refused)
{
    char text[512];
    struct sockaddr_storage ss;
    socklen_t len;

    memset(text, '1', sizeof(text) - 4);
    memcpy(text + sizeof(text) - 4, ":80", 4);
    ck_assert_int_eq(addr_parse(text, 0, &ss, &len), PX_ERR);
    text[0] = '[';
    memcpy(text + sizeof(text) - 5, "]:80", 5);
    ck_assert_int_eq(addr_parse(text, 0, &ss, &len), PX_ERR);
}
END_TEST

/* addr_same: family, address, and the port only when asked. */
START_TEST(test_addr_same_table)
{
    static const struct {
        const char *a, *b;
        bool with_ports, without;
    } pairs[] = {
        {"10.0.0.1:80", "10.0.0.1:80", true, true},
        {"10.0.0.1:80", "10.0.0.1:81", false, true},
        {"10.0.0.1:80", "10.0.0.2:80", false, false},
        {"[::1]:80", "[::1]:80", true, true},
        {"[::1]:80", "[::1]:81", false, true},
        {"[::1]:80", "[::2]:80", false, false},
        {"[::ffff:10.0.0.1]:80", "10.0.0.1:80", false, false}, /* families differ */
    };
    for (size_t i = 0; i < sizeof(pairs) / sizeof(pairs[0]); i++) {
        struct sockaddr_storage a, b;
        socklen_t len;

        ck_assert_int_eq(addr_parse(pairs[i].a, 0, &a, &len), PX_OK);
        ck_assert_int_eq(addr_parse(pairs[i].b, 0, &b, &len), PX_OK);
        ck_assert_msg(addr_same(&a, &b, true) == pairs[i].with_ports, "%s %s ports", pairs[i].a,
                      pairs[i].b);
        ck_assert_msg(addr_same(&b, &a, false) == pairs[i].without, "%s %s", pairs[i].a,
                      pairs[i].b);
    }
}
END_TEST

/* addr_ipv4_text writes what inet_ntop writes, for every octet width in every position. */
START_TEST(test_ipv4_text_matches_inet_ntop)
{
    static const uint8_t octets[] = {0, 1, 9, 10, 42, 99, 100, 127, 199, 200, 250, 255};
    const size_t n = sizeof(octets);
    for (size_t i = 0; i < n * n * n * n; i++) {
        const uint8_t a[4] = {octets[i % n], octets[i / n % n], octets[i / (n * n) % n],
                              octets[i / (n * n * n)]};
        char want[INET_ADDRSTRLEN], got[16];
        memset(got, 'x', sizeof(got));
        ck_assert_ptr_nonnull(inet_ntop(AF_INET, a, want, sizeof(want)));
        ck_assert_uint_eq(addr_ipv4_text(a, got), strlen(want));
        ck_assert_str_eq(got, want);
    }
}
END_TEST

static struct sockaddr_storage sa_of(const char *ip)
{
    struct sockaddr_storage ss;

    memset(&ss, 0, sizeof(ss));
    if (inet_pton(AF_INET, ip, &((struct sockaddr_in *)&ss)->sin_addr) == 1) {
        ss.ss_family = AF_INET;
    } else {
        ck_assert_int_eq(inet_pton(AF_INET6, ip, &((struct sockaddr_in6 *)&ss)->sin6_addr), 1);
        ss.ss_family = AF_INET6;
    }
    return ss;
}

/* Networks (--metrics-allow): which text parses, and which addresses each holds. */
START_TEST(test_addr_net_parse_and_contains_table)
{
    static const struct {
        const char *net;
        int want;             /* PX_OK or PX_ERR */
        const char *in, *out; /* an address inside, one outside (NULL: none to check) */
    } nets[] = {
        {"10.0.0.0/8", PX_OK, "10.255.1.2", "11.0.0.1"},
        {"10.0.0.0/8", PX_OK, "::ffff:10.1.2.3", "::ffff:11.1.2.3"}, /* IPv4-mapped */
        {"192.0.2.7", PX_OK, "192.0.2.7", "192.0.2.8"},              /* a host: /32 */
        {"192.0.2.0/25", PX_OK, "192.0.2.127", "192.0.2.128"},
        {"192.0.2.0/31", PX_OK, "192.0.2.1", "192.0.2.2"},
        {"0.0.0.0/0", PX_OK, "203.0.113.9", "::1"}, /* every IPv4, no IPv6 */
        {"fd00::/8", PX_OK, "fd12::1", "fe80::1"},
        {"2001:db8::/33", PX_OK, "2001:db8:7fff::1", "2001:db8:8000::1"},
        {"::1", PX_OK, "::1", "::2"},
        {"::/0", PX_OK, "2001:db8::1", "10.0.0.1"},
        {"10.1.2.3/8", PX_ERR, NULL, NULL}, /* host bits below the prefix */
        {"10.0.0.0/33", PX_ERR, NULL, NULL},
        {"fd00::/129", PX_ERR, NULL, NULL},
        {"10.0.0.0/", PX_ERR, NULL, NULL},
        {"10.0.0.0/+8", PX_ERR, NULL, NULL},
        {"10.0.0.0/0008", PX_ERR, NULL, NULL},
        {"/8", PX_ERR, NULL, NULL},
        {"", PX_ERR, NULL, NULL},
        {"example.com/8", PX_ERR, NULL, NULL},
        {"10.0.0.0/8 ", PX_ERR, NULL, NULL},
        {"[::1]/128", PX_ERR, NULL, NULL},
        {"1111:2222:3333:4444:5555:6666:7777:8888:9999/64", PX_ERR, NULL, NULL},
    };

    for (size_t i = 0; i < sizeof(nets) / sizeof(nets[0]); i++) {
        struct addr_net net;
        int rc = addr_net_parse(nets[i].net, &net);

        ck_assert_msg(rc == nets[i].want, "'%s': returned %d", nets[i].net, rc);
        if (rc != PX_OK)
            continue;
        struct sockaddr_storage in = sa_of(nets[i].in), out = sa_of(nets[i].out);
        ck_assert_msg(addr_net_contains(&net, (struct sockaddr *)&in), "%s should hold %s",
                      nets[i].net, nets[i].in);
        ck_assert_msg(!addr_net_contains(&net, (struct sockaddr *)&out), "%s should not hold %s",
                      nets[i].net, nets[i].out);
    }
}
END_TEST

int main(void)
{
    Suite *s = suite_create("addr");
    TCase *tc = tcase_create("parse");
    tcase_add_test(tc, test_addr_parse_table);
    tcase_add_test(tc, test_addr_parse_overlong_is_refused);
    tcase_add_test(tc, test_addr_same_table);
    tcase_add_test(tc, test_ipv4_text_matches_inet_ntop);
    tcase_add_test(tc, test_addr_net_parse_and_contains_table);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
