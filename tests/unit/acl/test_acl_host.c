/* test_acl_host.c: the one canonical host form. Every spelling of a host that other software
 * reads as the same host must come out as one text (or be refused), names and addresses
 * alike, since rules, requests, the resolver and the log compare that text. */
#include "acl/acl_host.h"

#include <check.h>
#include <stdlib.h>
#include <string.h>

struct host_ok {
    const char *in;
    enum acl_host_kind kind;
    const char *text;
};

static const struct host_ok ok_cases[] = {
    {"example.com", ACL_HOST_NAME, "example.com"},
    {"WWW.Example.COM", ACL_HOST_NAME, "www.example.com"},
    {"blocked.example.", ACL_HOST_NAME, "blocked.example"},
    {"_dmarc.a-b.example", ACL_HOST_NAME, "_dmarc.a-b.example"},
    {"xn--bcher-kva.example", ACL_HOST_NAME, "xn--bcher-kva.example"},
    /* names in UTF-8: their A-labels (IDNA2008, UTS #46 non-transitional) */
    {"caf\xc3\xa9.example", ACL_HOST_NAME, "xn--caf-dma.example"},
    {"B\xc3\x9c"
     "CHER.Example.",
     ACL_HOST_NAME, "xn--bcher-kva.example"},
    {"stra\xc3\x9f"
     "e.example",
     ACL_HOST_NAME, "xn--strae-oqa.example"},
    {"\xe4\xbe\x8b\xe5\xad\x90.\xe6\xb5\x8b\xe8\xaf\x95", ACL_HOST_NAME, "xn--fsqu00a.xn--0zwm56d"},
    {"localhost", ACL_HOST_NAME, "localhost"},
    {"1.2.3.4.example", ACL_HOST_NAME, "1.2.3.4.example"},
    {"123.example", ACL_HOST_NAME, "123.example"},
    {"0x7f.example", ACL_HOST_NAME, "0x7f.example"},
    {"a.1b", ACL_HOST_NAME, "a.1b"},
    {"127.0.0.1", ACL_HOST_IPV4, "127.0.0.1"},
    {"127.0.0.1.", ACL_HOST_IPV4, "127.0.0.1"},
    {"0.0.0.0", ACL_HOST_IPV4, "0.0.0.0"},
    {"255.255.255.255", ACL_HOST_IPV4, "255.255.255.255"},
    {"10.0.10.100", ACL_HOST_IPV4, "10.0.10.100"},
    {"::1", ACL_HOST_IPV6, "::1"},
    {"[::1]", ACL_HOST_IPV6, "::1"},
    {"[2001:DB8:0:0:0:0:0:1]", ACL_HOST_IPV6, "2001:db8::1"},
    {"2001:db8:0000::0001", ACL_HOST_IPV6, "2001:db8::1"},
    {"[::ffff:127.0.0.1]", ACL_HOST_IPV4, "127.0.0.1"},
    {"::FFFF:7f00:1", ACL_HOST_IPV4, "127.0.0.1"},
    {"[0:0:0:0:0:ffff:10.1.2.3]", ACL_HOST_IPV4, "10.1.2.3"},
    {"::127.0.0.1", ACL_HOST_IPV6, "::127.0.0.1"}, /* IPv4-compatible: not the IPv4 address */
};

START_TEST(test_host_is_made_canonical)
{
    const struct host_ok *c = &ok_cases[_i];
    struct acl_host h;
    const char *why = NULL;
    ck_assert_msg(acl_host_parse(c->in, strlen(c->in), &h, &why) == 0, "'%s': %s", c->in, why);
    ck_assert_msg(h.kind == c->kind, "'%s': kind %s", c->in, acl_host_kind_str(h.kind));
    ck_assert_str_eq(h.text, c->text);
    ck_assert_uint_eq(h.len, strlen(c->text));
    ck_assert_int_eq(acl_host_is_ip(&h), c->kind != ACL_HOST_NAME);
    /* canonical text is its own canonical form */
    struct acl_host again;
    ck_assert_int_eq(acl_host_parse(h.text, h.len, &again, &why), 0);
    ck_assert(memcmp(&again, &h, sizeof(h)) == 0);
}
END_TEST

/* One address, one binary form: IPv4 and its IPv4-mapped spelling compare equal. */
START_TEST(test_ipv4_and_mapped_share_one_address)
{
    static const char *const spellings[] = {"127.0.0.1", "[::ffff:127.0.0.1]", "::ffff:7f00:1",
                                            "127.0.0.1."};
    static const unsigned char want[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 127, 0, 0, 1};
    for (size_t i = 0; i < sizeof(spellings) / sizeof(spellings[0]); i++) {
        struct acl_host h;
        const char *why;
        ck_assert_int_eq(acl_host_parse(spellings[i], strlen(spellings[i]), &h, &why), 0);
        ck_assert_msg(memcmp(h.addr, want, 16) == 0, "%s", spellings[i]);
    }
    struct acl_host n;
    const char *why;
    ck_assert_int_eq(acl_host_parse("a.test", 6, &n, &why), 0);
    ck_assert(memcmp(n.addr, (const unsigned char[16]){0}, 16) == 0);
}
END_TEST

struct host_bad {
    const char *in;
    const char *why;
};

#define LABEL63 "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"

static const struct host_bad bad_cases[] = {
    {"", "empty host"},
    {".", "empty host"},
    {"..", "empty label in host name"},
    {"...", "empty label in host name"},
    {"blocked.example..", "empty label in host name"},
    {".blocked.example", "empty label in host name"},
    {"blocked..example", "empty label in host name"},
    {"blocked%2eexample", "invalid character in host name"},
    {"blocked.example%2e", "invalid character in host name"},
    {"a b.example", "invalid character in host name"},
    {"a~b.example", "invalid character in host name"},
    {"a/b", "invalid character in host name"},
    {"caf\xc3\xa9 .example", "invalid internationalised name (IDNA2008)"},
    {"caf\xc3.example", "invalid internationalised name (IDNA2008)"},      /* not UTF-8 */
    {"\xe2\x80\x8d.example", "invalid internationalised name (IDNA2008)"}, /* ZWJ alone */
    {"a\0b", "invalid character in host name"},
    {LABEL63 "a.example", "host name label longer than 63 bytes"},
    {LABEL63 "." LABEL63 "." LABEL63 "." LABEL63 "a", "host name longer than 253 bytes"},
    /* legacy IPv4 spellings: refused, not guessed */
    {"0127.0.0.1", "ambiguous IPv4 address"},
    {"127.000.000.001", "ambiguous IPv4 address"},
    {"127.0.0.01", "ambiguous IPv4 address"},
    {"2130706433", "ambiguous IPv4 address"},
    {"0x7f.1", "ambiguous IPv4 address"},
    {"0x7f.0.0.1", "ambiguous IPv4 address"},
    {"0X7F000001", "ambiguous IPv4 address"},
    {"017700000001", "ambiguous IPv4 address"},
    {"127.1", "ambiguous IPv4 address"},
    {"127.0.1", "ambiguous IPv4 address"},
    {"1.2.3.4.5", "ambiguous IPv4 address"},
    {"1.2.3.256", "ambiguous IPv4 address"},
    {"1.2.3.1000", "ambiguous IPv4 address"},
    {"example.123", "ambiguous IPv4 address"},
    {"example.0x1f", "ambiguous IPv4 address"},
    {"example.0x", "ambiguous IPv4 address"},
    /* IPv6 */
    {"[]", "empty host"},
    {"[::1", "invalid IPv6 address"},
    {"[127.0.0.1]", "invalid IPv6 address"},
    {"[fe80::1%25eth0]", "invalid IPv6 address"},
    {"fe80::1%eth0", "invalid IPv6 address"},
    {"1:2:3:4:5:6:7:8:9", "invalid IPv6 address"},
    {"::ffff:127.000.0.1", "invalid IPv6 address"},
    {"::ffff:127.1", "invalid IPv6 address"},
    {"[::1]:80", "invalid IPv6 address"},
    {"a.test:80", "invalid IPv6 address"},
};

START_TEST(test_bad_host_is_refused_with_reason)
{
    const struct host_bad *c = &bad_cases[_i];
    size_t len = strlen(c->in);
    if (strcmp(c->in, "a") == 0)
        len = 3; /* "a\0b" */
    struct acl_host h;
    const char *why = NULL;
    ck_assert_msg(acl_host_parse(c->in, len, &h, &why) == -1, "'%s' accepted as '%s'", c->in,
                  h.text);
    ck_assert_msg(why && strstr(why, c->why), "'%s': reason '%s' lacks '%s'", c->in, why ? why : "",
                  c->why);
    ck_assert_uint_eq(h.len, 0);
}
END_TEST

/* What the admin pages show for a logged host: Unicode only for a name that is valid in
 * Unicode and has these same A-labels; a label that decodes to a right-to-left override
 * (shown backwards) or to nothing valid is shown as sent. */
static const struct {
    const char *host, *shown;
} unicode_cases[] = {
    {"xn--bcher-kva.example", "b\303\274cher.example"},
    {"www.xn--bcher-kva.example", "www.b\303\274cher.example"},
    {"xn--strae-oqa.example", "stra\303\237e.example"},
    {"example.com", "example.com"},
    {"10.0.0.1", "10.0.0.1"},
    {"xn--abcgpj-dm0c.test", "xn--abcgpj-dm0c.test"}, /* "abc" U+202E "gpj" */
    {"xn--zz.example", "xn--zz.example"},
    {"xn--.example", "xn--.example"},
    /* Lookalikes stay in punycode: all-Cyrillic letters that read as Latin under a Latin
     * top-level domain ("аррӏе.com"), Cyrillic mixed with Latin ("аpple.com"); the same
     * letters under a Cyrillic top-level domain, other Cyrillic, Japanese and Greek read. */
    {"xn--80ak6aa92e.com", "xn--80ak6aa92e.com"},
    {"xn--pple-43d.com", "xn--pple-43d.com"},
    {"xn--0xaaf.com", "xn--0xaaf.com"}, /* "ορο", Greek */
    {"xn--n1aahb.xn--p1ai", "\321\201\320\276\321\201\320\276.\321\200\321\204"},
    {"xn--e1afmkfd.com", "\320\277\321\200\320\270\320\274\320\265\321\200.com"},
    {"xn--wgv71a119e.jp", "\346\227\245\346\234\254\350\252\236.jp"},
    {"xn--mxacd.gr", "\316\261\316\262\316\263.gr"},
};

START_TEST(test_unicode_shown_only_for_valid_names)
{
    char out[300];

    ck_assert_int_eq(acl_host_unicode(unicode_cases[_i].host, out, sizeof(out)), 0);
    ck_assert_str_eq(out, unicode_cases[_i].shown);
}
END_TEST

START_TEST(test_kind_names)
{
    ck_assert_str_eq(acl_host_kind_str(ACL_HOST_NAME), "name");
    ck_assert_str_eq(acl_host_kind_str(ACL_HOST_IPV4), "ipv4");
    ck_assert_str_eq(acl_host_kind_str(ACL_HOST_IPV6), "ipv6");
    ck_assert_str_eq(acl_host_kind_str(ACL_HOST_KIND_COUNT), "?");
}
END_TEST

int main(void)
{
    Suite *s = suite_create("acl_host");
    TCase *tc = tcase_create("host");
    tcase_add_loop_test(tc, test_host_is_made_canonical, 0,
                        (int)(sizeof(ok_cases) / sizeof(ok_cases[0])));
    tcase_add_test(tc, test_ipv4_and_mapped_share_one_address);
    tcase_add_loop_test(tc, test_bad_host_is_refused_with_reason, 0,
                        (int)(sizeof(bad_cases) / sizeof(bad_cases[0])));
    tcase_add_test(tc, test_kind_names);
    tcase_add_loop_test(tc, test_unicode_shown_only_for_valid_names, 0,
                        sizeof(unicode_cases) / sizeof(unicode_cases[0]));
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
