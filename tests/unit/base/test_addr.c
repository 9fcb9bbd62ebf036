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

int main(void)
{
    Suite *s = suite_create("addr");
    TCase *tc = tcase_create("parse");
    tcase_add_test(tc, test_addr_parse_table);
    tcase_add_test(tc, test_addr_parse_overlong_is_refused);
    tcase_add_test(tc, test_ipv4_text_matches_inet_ntop);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
