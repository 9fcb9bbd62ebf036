/* test_acl_rule.c: the rule parser. Every bad rule must be refused with a message naming the
 * keyword and the reason; every good rule must be accepted. */
#include "acl/acl.h"

#include <arpa/inet.h>
#include <check.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct bad_case {
    const char *text;
    const char *want; /* substring of the message */
};

static const struct bad_case bad_rules[] = {
    {"", "empty rule"},
    {"   # only a comment", "empty rule"},
    {"block domain a.com", "unknown action 'block'"},
    {"deny", "missing match after 'deny'"},
    {"deny website a.com", "unknown match 'website'"},
    {"deny domain", "domain: missing argument"},
    {"deny domain # comment", "domain: missing argument"},
    {"deny domain exa mple.com", "unknown condition 'mple.com'"},
    {"deny domain a..com", "domain: bad domain 'a..com'"},
    {"deny domain *.example.com", "write 'example.com'"},
    {"deny domain bad/char.com", "domain: bad domain"},
    {"deny domain "
     "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.com",
     "domain: bad domain"},
    {"deny url-regex ^(ads", "url-regex: missing closing parenthesis at offset 5"},
    {"deny host-regex [a-", "host-regex: missing terminating ] for character class"},
    {"deny url-regex \"^/ads", "unterminated quote"},
    {"deny url-regex", "url-regex: missing argument"},
    {"deny url-regex a{2,1}", "url-regex: numbers out of order"},
    {"allow client 10.0.0.0/33", "client: bad CIDR '10.0.0.0/33'"},
    {"allow client 10.0.0.1/8", "client: bad CIDR '10.0.0.1/8'"},
    {"allow client 300.1.1.1", "client: bad CIDR '300.1.1.1'"},
    {"allow client ::1/129", "client: bad CIDR '::1/129'"},
    {"allow client 10.0.0.0/8,,192.168.0.0/16", "client: bad CIDR ''"},
    {"allow client", "client: missing argument"},
    {"allow user", "user: missing argument"},
    {"allow user a,,b", "user: empty name"},
    {"deny method GE(T", "method: bad method"},
    {"deny port 0", "port: bad port '0'"},
    {"deny port 70000", "port: bad port '70000'"},
    {"deny port 9000-8000", "port: bad port '9000-8000'"},
    {"deny port 80,x", "port: bad port 'x'"},
    {"deny list bad/name", "list: bad list name"},
    {"deny list", "list: missing argument"},
    {"deny domain a.com clients 10.0.0.0/8 clients 10.0.0.0/8", "duplicate condition 'clients'"},
    {"deny domain a.com users a users b", "duplicate condition 'users'"},
    {"deny domain a.com schedule daily 09:00-10:00 schedule daily 11:00-12:00",
     "duplicate condition 'schedule'"},
    {"deny domain a.com clients 10.0.0.0/40", "clients: bad CIDR '10.0.0.0/40'"},
    {"deny domain a.com clients", "clients: missing argument"},
    {"deny domain a.com schedule mon-fri", "schedule: missing argument"},
    {"deny domain a.com schedule mon-frx 09:00-17:00", "schedule: bad days 'mon-frx'"},
    {"deny domain a.com schedule monday 09:00-17:00", "schedule: bad days 'monday'"},
    {"deny domain a.com schedule mon-fri 09:00", "schedule: bad time range '09:00'"},
    {"deny domain a.com schedule mon-fri 09:60-17:00", "schedule: bad time range"},
    {"deny domain a.com schedule mon-fri 24:00-17:00", "schedule: bad time range"},
    {"deny domain a.com schedule mon-fri 9-17", "schedule: bad time range '9-17'"},
    {"deny domain a.com schedule daily 10:00-10:00", "schedule: empty time range"},
    {"deny domain a.com weekdays", "unknown condition 'weekdays'"},
    {"deny domain a.com port 80", "'port' after the match"},
    {"deny any extra", "unknown condition 'extra'"},
    {"deny any expires", "expires: missing argument"},
    {"name", "name: missing argument"},
    {"name 10.1.2.3", "name: missing argument"},
    {"name 10.1.0.0/16 office", "name: bad address '10.1.0.0/16' (one client address)"},
    {"name 10.1.2.3/32 pc", "name: bad address '10.1.2.3/32'"},
    {"name pc 10.1.2.3", "name: bad address 'pc'"},
    {"name 10.1.2.3 reception/pc", "name: bad client name 'reception/pc'"},
    {"name 10.1.2.3 reception pc", "name: 'pc' after the name"},
    {"group", "group: missing argument"},
    {"group sales", "group: missing argument"},
    {"group sa/les 10.0.0.0/8", "group: bad group name 'sa/les'"},
    {"group sales 10.0.0.0/33", "group: bad CIDR '10.0.0.0/33' (a member is a CIDR or user:NAME)"},
    {"group sales alice", "group: bad CIDR 'alice'"},
    {"group sales user:", "group: bad CIDR 'user:'"},
    {"group sales 10.0.0.0/8 clients 10.0.0.0/8", "group: 'clients' after the members"},
    {"deny any clients @", "clients: bad group name '@'"},
    {"deny any clients @a/b", "clients: bad group name '@a/b'"},
    {"deny any users @x,,y", "users: empty name"},
    {"deny any expires 2026-12-24", "expires: bad time '2026-12-24'"},
    {"deny any expires 2026-12-24 18:00", "expires: bad time '2026-12-24'"},
    {"deny any expires 2026-13-01T00:00", "expires: bad time"},
    {"deny any expires 2026-12-24T24:00", "expires: bad time"},
    {"deny any expires 2026-12-24T18:60", "expires: bad time"},
    {"deny any expires 2026-12-24T18:00:60", "expires: bad time"},
    {"deny any expires 2026-12-24T18:00z", "expires: bad time"},
    {"deny any expires 2026-12-24T18:00ZZ", "expires: bad time"},
    {"deny any expires 1969-12-31T23:59Z", "expires: bad time"},
    {"deny any expires +026-12-24T18:00", "expires: bad time"},
    {"deny any expires 2026-02-29T00:00", "expires: bad time '2026-02-29T00:00' (no such day)"},
    {"deny any expires 2026-04-31T00:00", "(no such day)"},
    {"deny any expires 2026-12-24T18:00 expires 2027-01-01T00:00", "duplicate condition 'expires'"},
    /* domains take the one canonical host form requests are parsed into */
    {"deny domain bü\xe2\x80\x8d"
     "cher.example",
     "(invalid internationalised name (IDNA2008))"},
    {"deny domain xn--bcher-kva.ex\xc3\xa4mple..", "bad domain"},
    {"deny domain a.com..", "bad domain 'a.com..' (empty label in host name)"},
    {"deny domain .a.com", "(empty label in host name)"},
    {"deny domain ..", "(empty label in host name)"},
    {"deny domain a%2ecom", "(invalid character in host name)"},
    {"deny domain 127.1", "ambiguous IPv4 address"},
    {"deny domain 0x7f.0.0.1", "ambiguous IPv4 address"},
    {"deny domain 127.000.000.001", "ambiguous IPv4 address"},
    {"deny domain 2130706433", "ambiguous IPv4 address"},
    {"deny domain [::ffff:127.0.0.01]", "(invalid IPv6 address)"},
    /* dest takes CIDRs like client */
    {"deny dest", "dest: missing argument"},
    {"deny dest 10.0.0.1/8", "dest: bad CIDR '10.0.0.1/8'"},
    {"deny dest example.com", "dest: bad CIDR 'example.com'"},
    {"deny dest 127.1", "dest: bad CIDR '127.1'"},
    /* text that is not UTF-8 would be enforced but could not be listed: refused, anywhere */
    {"deny url-regex ^/\xff", "not valid UTF-8 (byte 0xff at offset 17)"},
    {"deny domain a.com # caf\xe9", "not valid UTF-8 (byte 0xe9 at offset 23)"},
    {"deny url-regex /\xc0\xaf", "not valid UTF-8 (byte 0xc0 at offset 16)"}, /* overlong */
    {"deny url-regex /\xed\xa0\x80", "not valid UTF-8 (byte 0xed"},           /* surrogate */
    {"deny url-regex /\xf4\x90\x80\x80", "not valid UTF-8 (byte 0xf4"},       /* > U+10FFFF */
    {"deny url-regex /\xe2\x82", "not valid UTF-8 (byte 0xe2 at offset 16)"}, /* cut short */
    {"deny url-regex /\x80", "not valid UTF-8 (byte 0x80 at offset 16)"},
};

START_TEST(test_bad_rule_is_refused_with_reason)
{
    const struct bad_case *c = &bad_rules[_i];
    struct acl_error err;
    ck_assert_msg(acl_rule_check(c->text, &err) == -1, "accepted: %s", c->text);
    ck_assert_msg(strstr(err.msg, c->want) != NULL, "rule '%s': message '%s' lacks '%s'", c->text,
                  err.msg, c->want);
}
END_TEST

static const char *const good_rules[] = {
    "deny domain facebook.com",
    "deny domain FaceBook.COM.",
    "deny domain xn--bcher-kva.example",
    "deny domain _dmarc.example",
    "deny domain ::ffff:127.0.0.1",
    "deny url-regex ^http://x/caf\xc3\xa9/\xe2\x82\xac/\xf0\x9f\x98\x80",
    "deny dest 10.0.0.0/8",
    "deny dest 10.0.0.0/8, fd00::/8 clients 10.1.0.0/16",
    "deny domain 192.0.2.7",
    "deny domain 2001:db8::1",
    "deny domain [2001:db8::1]",
    "deny url-regex ^https?://[^/]+/ads/",
    "deny url-regex \"^https?://[^/]+/a b/#frag\"",
    "deny url-regex \"say \\\"hi\\\"\"",
    "deny url-regex /x#y",
    "deny host-regex ^ad[0-9]+\\.",
    "allow client 10.0.0.0/8",
    "allow client 10.0.0.0/8,192.168.0.0/16",
    "allow client 10.0.0.0/8, 192.168.0.0/16",
    "allow client ::1/128",
    "allow client 192.0.2.1",
    "allow client fe80::/10",
    "allow user alice",
    "allow user alice,bob",
    "deny method CONNECT",
    "deny method PUT,DELETE",
    "deny port 25",
    "deny port 80,443,8000-8999",
    "deny list ads",
    "allow any",
    "deny any # everything else",
    "deny domain a.com clients 10.0.0.0/8,fc00::/7 users bob,carol schedule mon-fri "
    "09:00-17:00",
    "deny domain a.com schedule sat,sun 00:00-24:00",
    "deny domain a.com schedule mon,wed-fri 22:00-06:00",
    "deny domain a.com schedule fri-mon 9:30-10:00",
    "deny domain a.com schedule daily 23:59-00:01",
    "deny domain a.com schedule sat, sun 10:00-12:00",
    "allow domain youtube.com expires 2026-12-24T18:00",
    "deny domain bücher.example",
    "group sales 10.1.0.0/16, user:alice, user:bob",
    "name 10.1.2.3 reception-pc",
    "name 2001:db8::7 printer.floor2",
    "group staff user:carol",
    "deny any clients @sales",
    "deny any clients @sales, 10.9.0.0/16 users @staff, dave",
    "deny domain BÜCHER.example.",
    "deny domain straße.example",
    "allow domain youtube.com expires 2026-12-24T18:00:30Z clients 10.1.0.0/16",
    "report any expires 2028-02-29T00:00 schedule daily 09:00-17:00",
};

START_TEST(test_good_rule_is_accepted)
{
    struct acl_error err;
    ck_assert_msg(acl_rule_check(good_rules[_i], &err) == 0, "refused '%s': %s", good_rules[_i],
                  err.msg);
}
END_TEST

/* Through acl_set_compile, the message names the rule id. */
START_TEST(test_compile_error_names_rule_id)
{
    struct acl_rule_src rules[] = {
        {.id = 3, .enabled = true, .text = "deny domain a.com"},
        {.id = 12, .enabled = true, .text = "deny url-regex ^(ads"},
    };
    struct acl_config cfg = {.rules = rules, .nrules = 2};
    struct acl_error err;
    ck_assert_ptr_null(acl_set_compile(&cfg, &err));
    ck_assert_int_eq(err.rule_id, 12);
    ck_assert_str_eq(err.msg, "rule 12: url-regex: missing closing parenthesis at offset 5");
}
END_TEST

START_TEST(test_disabled_rule_is_still_validated)
{
    struct acl_rule_src rules[] = {
        {.id = 4, .enabled = false, .text = "deny client 10.0.0.0/99"},
    };
    struct acl_config cfg = {.rules = rules, .nrules = 1};
    struct acl_error err;
    ck_assert_ptr_null(acl_set_compile(&cfg, &err));
    ck_assert_str_eq(err.msg, "rule 4: client: bad CIDR '10.0.0.0/99'");
}
END_TEST

START_TEST(test_unknown_list_is_refused)
{
    struct acl_rule_src rules[] = {{.id = 9, .enabled = true, .text = "deny list nope"}};
    struct acl_config cfg = {.rules = rules, .nrules = 1};
    struct acl_error err;
    ck_assert_ptr_null(acl_set_compile(&cfg, &err));
    ck_assert_str_eq(err.msg, "rule 9: list: no list named 'nope'");
}
END_TEST

START_TEST(test_bad_allowed_clients_is_refused)
{
    struct acl_config cfg = {.allowed_clients = "10.0.0.0/8,banana"};
    struct acl_error err;
    ck_assert_ptr_null(acl_set_compile(&cfg, &err));
    ck_assert_int_eq(err.rule_id, 0);
    ck_assert_str_eq(err.msg, "allowed clients: bad CIDR 'banana'");
}
END_TEST

/* A domain rule's argument is kept in canonical form, so it is what the reason shows. */
START_TEST(test_domain_argument_is_canonical_in_reason)
{
    static const struct {
        const char *rule, *host, *reason;
    } cases[] = {
        {"deny domain FaceBook.COM.", "www.facebook.com", "rule 1: deny domain facebook.com"},
        {"deny domain ::FFFF:127.0.0.1", "127.0.0.1", "rule 1: deny domain 127.0.0.1"},
        {"deny domain [2001:DB8:0::1]", "[2001:db8::1]", "rule 1: deny domain 2001:db8::1"},
        /* an IDN rule in Unicode matches the punycode browsers send, and the reverse */
        {"deny domain Bücher.Example", "www.xn--bcher-kva.example",
         "rule 1: deny domain xn--bcher-kva.example"},
        {"deny domain xn--bcher-kva.example", "BÜCHER.example.",
         "rule 1: deny domain xn--bcher-kva.example"},
        {"deny domain straße.example", "xn--strae-oqa.example",
         "rule 1: deny domain xn--strae-oqa.example"}, /* non-transitional: not strasse */
    };
    struct acl_scratch *s = acl_scratch_new();
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct acl_rule_src r = {1, true, cases[i].rule};
        struct acl_config cfg = {.rules = &r, .nrules = 1};
        struct acl_error err;
        struct acl_set *set = acl_set_compile(&cfg, &err);
        ck_assert_msg(set != NULL, "%s", err.msg);
        struct acl_host h;
        const char *why;
        ck_assert_int_eq(acl_host_parse(cases[i].host, strlen(cases[i].host), &h, &why), 0);
        struct acl_request req = {.scheme = "http",
                                  .host = &h,
                                  .port = 80,
                                  .path = "/",
                                  .path_len = 1,
                                  .method = "GET",
                                  .method_len = 3};
        struct acl_decision d;
        acl_eval(set, &req, s, &d);
        ck_assert_str_eq(d.reason, cases[i].reason);
        acl_set_free(set);
    }
    acl_scratch_free(s);
}
END_TEST

START_TEST(test_host_unicode_turns_a_labels_back)
{
    char out[256];
    ck_assert_int_eq(acl_host_unicode("www.xn--bcher-kva.example", out, sizeof(out)), 0);
    ck_assert_str_eq(out, "www.bücher.example");
    ck_assert_int_eq(acl_host_unicode("example.com", out, sizeof(out)), 0);
    ck_assert_str_eq(out, "example.com");
    ck_assert_int_eq(acl_host_unicode("xn--zz.example", out, sizeof(out)), 0); /* no decode */
    ck_assert_str_eq(out, "xn--zz.example");
    ck_assert_int_eq(acl_host_unicode("xn--bcher-kva.example", out, 10), -1);
    struct acl_host h;
    const char *why;
    ck_assert_int_eq(acl_host_parse("bücher.example", strlen("bücher.example"), &h, &why), 0);
    ck_assert_str_eq(h.text, "xn--bcher-kva.example");
    ck_assert_int_eq(acl_host_parse("b\xc3", 2, &h, &why), -1); /* cut short */
    ck_assert_str_eq(why, "invalid internationalised name (IDNA2008)");
}
END_TEST

struct utf8_case {
    const char *s;
    bool valid;
    size_t bad_off;
};

static const struct utf8_case utf8_cases[] = {
    {"", true, 0},
    {"plain ascii", true, 0},
    {"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80 \xf4\x8f\xbf\xbf", true, 0},
    {"\xed\x9f\xbf", true, 0}, /* U+D7FF, just below the surrogates */
    {"a\x80", false, 1},
    {"ab\xc0\x80", false, 2},       /* overlong NUL */
    {"\xc1\xbf", false, 0},         /* overlong */
    {"\xe0\x9f\xbf", false, 0},     /* overlong */
    {"\xf0\x8f\xbf\xbf", false, 0}, /* overlong */
    {"x\xed\xa0\x80", false, 1},    /* surrogate */
    {"\xf4\x90\x80\x80", false, 0}, /* past U+10FFFF */
    {"\xf5\x80\x80\x80", false, 0},
    {"\xff", false, 0},
    {"\xe2\x82", false, 0},     /* cut short */
    {"\xe2\x28\xa1", false, 0}, /* bad continuation */
    {"ok \xc3\xa9\xc3", false, 5},
};

START_TEST(test_utf8_validation_finds_the_first_bad_byte)
{
    const struct utf8_case *c = &utf8_cases[_i];
    size_t off = 12345;
    bool ok = acl_utf8_valid(c->s, strlen(c->s), &off);
    ck_assert_msg(ok == c->valid, "case %d: valid %d", _i, ok);
    if (!ok)
        ck_assert_msg(off == c->bad_off, "case %d: offset %zu, want %zu", _i, off, c->bad_off);
}
END_TEST

/* UTC times are exact; local ones follow TZ, daylight saving included. */
START_TEST(test_expiry_is_seconds_since_the_epoch)
{
    int64_t t = -1;
    ck_assert(!acl_rule_expiry("allow any", &t));
    ck_assert(!acl_rule_expiry("allow nothing expires 2026-12-24T18:00Z", &t));
    ck_assert(!acl_rule_expiry("allow domain expires.test", &t));
    ck_assert_int_eq(acl_rule_expiry("allow any expires 2026-12-24T18:00Z", &t), 1);
    ck_assert_int_eq(t, 1798135200);
    ck_assert_int_eq(acl_rule_expiry("allow any expires 1970-01-01T00:00:01Z", &t), 1);
    ck_assert_int_eq(t, 1);
    ck_assert_int_eq(acl_rule_expiry("allow any expires 2028-02-29T23:59:59Z", &t), 1);
    ck_assert_int_eq(t, 1835481599);
    setenv("TZ", "Europe/Berlin", 1);
    tzset();
    ck_assert_int_eq(acl_rule_expiry("allow any expires 2026-12-24T18:00", &t), 1);
    ck_assert_int_eq(t, 1798135200 - 3600); /* CET, UTC+1 */
    ck_assert_int_eq(acl_rule_expiry("allow any expires 2026-07-01T12:00", &t), 1);
    ck_assert_int_eq(t, 1782907200 - 7200); /* CEST, UTC+2 */
    unsetenv("TZ");
    tzset();
}
END_TEST

START_TEST(test_client_name_lines_are_read)
{
    uint8_t addr[16];
    char label[64];
    static const uint8_t v4[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 10, 1, 2, 3};
    ck_assert(acl_client_name("name 10.1.2.3 reception-pc", addr, label, sizeof(label)));
    ck_assert_str_eq(label, "reception-pc");
    ck_assert_mem_eq(addr, v4, 16);
    ck_assert(acl_client_name("name ::ffff:10.1.2.3 pc2", addr, label, sizeof(label)));
    ck_assert_mem_eq(addr, v4, 16);
    ck_assert(!acl_client_name("name 10.1.2.3 reception-pc", addr, label, 5));
    ck_assert(!acl_client_name("allow client 10.1.2.3", addr, label, sizeof(label)));
    ck_assert(!acl_client_name("name 10.1.2.0/24 net", addr, label, sizeof(label)));
    /* a name line never matches: a policy of one allows nobody outside the default */
    struct acl_rule_src r = {1, true, "name 8.8.8.8 outside"};
    struct acl_config cfg = {.rules = &r, .nrules = 1};
    struct acl_error err;
    struct acl_set *set = acl_set_compile(&cfg, &err);
    ck_assert_ptr_nonnull(set);
    struct sockaddr_in sin = {.sin_family = AF_INET};
    inet_pton(AF_INET, "8.8.8.8", &sin.sin_addr);
    ck_assert(!acl_client_admitted(set, (const struct sockaddr *)&sin));
    acl_set_free(set);
}
END_TEST

START_TEST(test_action_str_names_every_action)
{
    ck_assert_str_eq(acl_action_str(ACL_ALLOW), "allow");
    ck_assert_str_eq(acl_action_str(ACL_DENY), "deny");
    ck_assert_str_eq(acl_action_str(ACL_AUTH), "auth");
    ck_assert_str_eq(acl_action_str(ACL_REPORT), "report");
    ck_assert_str_eq(acl_action_str(ACL_INSPECT), "inspect");
}
END_TEST

int main(void)
{
    Suite *s = suite_create("acl_rule");
    TCase *tc = tcase_create("parse");
    tcase_add_loop_test(tc, test_bad_rule_is_refused_with_reason, 0,
                        (int)(sizeof(bad_rules) / sizeof(bad_rules[0])));
    tcase_add_loop_test(tc, test_good_rule_is_accepted, 0,
                        (int)(sizeof(good_rules) / sizeof(good_rules[0])));
    tcase_add_test(tc, test_compile_error_names_rule_id);
    tcase_add_test(tc, test_disabled_rule_is_still_validated);
    tcase_add_test(tc, test_unknown_list_is_refused);
    tcase_add_test(tc, test_bad_allowed_clients_is_refused);
    tcase_add_test(tc, test_action_str_names_every_action);
    tcase_add_test(tc, test_expiry_is_seconds_since_the_epoch);
    tcase_add_test(tc, test_client_name_lines_are_read);
    tcase_add_test(tc, test_domain_argument_is_canonical_in_reason);
    tcase_add_test(tc, test_host_unicode_turns_a_labels_back);
    tcase_add_loop_test(tc, test_utf8_validation_finds_the_first_bad_byte, 0,
                        (int)(sizeof(utf8_cases) / sizeof(utf8_cases[0])));
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
