/* test_acl_forward: a port forward's text (config line and separate parts) parsed into its
 * one form, every malformed part refused with its name, and the forward's own client list. */
#include <arpa/inet.h>
#include <check.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "acl/acl_forward.h"

static struct acl_forward f;
static char msg[256];

START_TEST(test_line_with_clients)
{
    ck_assert_int_eq(
        acl_forward_parse_line("0.0.0.0:2222  10.0.0.4:22\tclients 10.0.0.0/8,fd00::/8", &f, msg,
                               sizeof(msg)),
        0);
    ck_assert_str_eq(f.listen, "0.0.0.0:2222");
    ck_assert_str_eq(f.target_text, "10.0.0.4:22");
    ck_assert_int_eq(f.target_port, 22);
    ck_assert_int_eq(f.target.kind, ACL_HOST_IPV4);
    ck_assert_str_eq(f.clients_text, "10.0.0.0/8,fd00::/8");
    ck_assert_uint_eq(f.nclients, 2);
}
END_TEST

START_TEST(test_tls_word_in_any_place)
{
    ck_assert_int_eq(acl_forward_parse_line("0.0.0.0:9995 10.0.0.4:110", &f, msg, sizeof(msg)), 0);
    ck_assert_int_eq(f.tls, ACL_FORWARD_TLS_NONE);
    ck_assert_int_eq(
        acl_forward_parse_line("0.0.0.0:9995 10.0.0.4:110 tls-listen", &f, msg, sizeof(msg)), 0);
    ck_assert_int_eq(f.tls, ACL_FORWARD_TLS_LISTEN);
    ck_assert_uint_eq(f.nclients, 0);
    ck_assert_int_eq(
        acl_forward_parse_line("0.0.0.0:9995 10.0.0.4:110 tls-listen clients 10.0.0.0/8", &f, msg,
                               sizeof(msg)),
        0);
    ck_assert_int_eq(f.tls, ACL_FORWARD_TLS_LISTEN);
    ck_assert_str_eq(f.clients_text, "10.0.0.0/8");
    enum acl_forward_tls t;
    ck_assert_int_eq(acl_forward_tls_parse("tls-listen", &t, msg, sizeof(msg)), 0);
    ck_assert_str_eq(acl_forward_tls_str(t), "tls-listen");
    ck_assert_int_eq(acl_forward_tls_parse("", &t, msg, sizeof(msg)), 0);
    ck_assert_int_eq(t, ACL_FORWARD_TLS_NONE);
    ck_assert_int_eq(acl_forward_tls_parse("TLS-listen", &t, msg, sizeof(msg)), -1);
    ck_assert_str_eq(msg, "tls 'TLS-listen': expected 'tls-listen' or 'tls-target' or nothing");
    ck_assert_str_eq(acl_forward_tls_str(ACL_FORWARD_TLS_COUNT), "?");
}
END_TEST

START_TEST(test_tls_target_names_what_it_verifies)
{
    /* The target's own host by default; a name given is canonical, and an address target
     * is verified only for a name given. */
    ck_assert_int_eq(
        acl_forward_parse_line("0.0.0.0:9995 Mail.Test:995 tls-target", &f, msg, sizeof(msg)), 0);
    ck_assert_int_eq(f.tls, ACL_FORWARD_TLS_TARGET);
    ck_assert_uint_eq(f.tls_name.len, 0);
    ck_assert_str_eq(acl_forward_tls_host(&f), "mail.test");
    ck_assert_int_eq(acl_forward_parse_line("0.0.0.0:9995 10.0.0.4:995 tls-name Mail.Corp.Test. "
                                            "tls-target clients 10.0.0.0/8",
                                            &f, msg, sizeof(msg)),
                     0);
    ck_assert_str_eq(acl_forward_tls_host(&f), "mail.corp.test");
    ck_assert_str_eq(f.clients_text, "10.0.0.0/8");
    ck_assert_int_eq(acl_forward_set_tls(&f, "tls-target", "", msg, sizeof(msg)), -1);
    ck_assert_uint_eq(f.tls_name.len, 0);
    ck_assert_int_eq(acl_forward_set_tls(&f, "", "", msg, sizeof(msg)), 0);
    ck_assert_int_eq(f.tls, ACL_FORWARD_TLS_NONE);
    ck_assert_int_eq(acl_forward_set_tls(&f, "tls-target", "10.0.0.4", msg, sizeof(msg)), 0);
    ck_assert_str_eq(acl_forward_tls_host(&f), "10.0.0.4");
}
END_TEST

START_TEST(test_names_and_ipv6_are_canonical)
{
    ck_assert_int_eq(
        acl_forward_parse("[::1]:8022", "DB.Example.TEST.:5432", NULL, &f, msg, sizeof(msg)), 0);
    ck_assert_str_eq(f.target_text, "db.example.test:5432");
    ck_assert_int_eq(f.target.kind, ACL_HOST_NAME);
    ck_assert_uint_eq(f.nclients, 0);
    ck_assert_int_eq(
        acl_forward_parse("127.0.0.1:1", "[2001:DB8::0:1]:443", "", &f, msg, sizeof(msg)), 0);
    ck_assert_str_eq(f.target_text, "[2001:db8::1]:443");
}
END_TEST

START_TEST(test_bad_parts_are_named)
{
    static const struct {
        const char *line, *want;
    } bad[] = {
        {"", "expected LISTEN_ADDR:PORT TARGET_HOST:PORT"},
        {"0.0.0.0:2222", "expected LISTEN_ADDR:PORT TARGET_HOST:PORT"},
        {"host.test:2222 10.0.0.4:22", "listen address 'host.test:2222'"},
        {"0.0.0.0:0 10.0.0.4:22", "listen address '0.0.0.0:0'"},
        {"0.0.0.0:70000 10.0.0.4:22", "listen address"},
        {"0.0.0.0:2222 10.0.0.4", "target '10.0.0.4': expected HOST:PORT"},
        {"0.0.0.0:2222 10.0.0.4:0", "target '10.0.0.4:0'"},
        {"0.0.0.0:2222 10.0.0.4:65536", "target '10.0.0.4:65536'"},
        {"0.0.0.0:2222 10.0.0.4:2x", "target '10.0.0.4:2x'"},
        {"0.0.0.0:2222 ::1:22", "target '::1:22'"},
        {"0.0.0.0:2222 [::1:22", "target '[::1:22'"},
        {"0.0.0.0:2222 :22", "target ':22'"},
        {"0.0.0.0:2222 bad..name:22", "target 'bad..name:22'"},
        {"0.0.0.0:2222 10.0.0.4:22 clients", "expected 'clients CIDR,...'"},
        {"0.0.0.0:2222 10.0.0.4:22 users 10.0.0.0/8", "expected 'clients CIDR,...'"},
        {"0.0.0.0:2222 10.0.0.4:22 clients 10.0.0.1/8", "bad CIDR '10.0.0.1/8'"},
        {"0.0.0.0:2222 10.0.0.4:22 clients 10.0.0.0/8,", "bad CIDR ''"},
        {"0.0.0.0:2222 10.0.0.4:22 clients 10.0.0.0/8 extra", "expected 'clients CIDR,...'"},
        {"0.0.0.0:2222 10.0.0.4:22 tls-listen tls-listen", "each once"},
        {"0.0.0.0:2222 10.0.0.4:22 clients 10.0.0.0/8 clients 10.0.0.0/8", "each once"},
        {"0.0.0.0:2222 10.0.0.4:22 tls", "'tls-listen' or 'tls-target'"},
        {"0.0.0.0:2222 10.0.0.4:22 tls-target", "tls-target to an address: give tls-name"},
        {"0.0.0.0:2222 [::1]:22 tls-target", "tls-target to an address: give tls-name"},
        {"0.0.0.0:2222 db.test:22 tls-name db.test", "tls-name: only with tls-target"},
        {"0.0.0.0:2222 db.test:22 tls-listen tls-name db.test", "tls-name: only with tls-target"},
        {"0.0.0.0:2222 db.test:22 tls-target tls-name bad..name", "tls-name 'bad..name'"},
        {"0.0.0.0:2222 db.test:22 tls-target tls-name", "each once"},
        {"0.0.0.0:2222 db.test:22 tls-target tls-name a.test tls-name b.test", "each once"},
        {"0.0.0.0:2222 db.test:22 tls-target tls-listen", "each once"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        msg[0] = '\0';
        ck_assert_msg(acl_forward_parse_line(bad[i].line, &f, msg, sizeof(msg)) == -1, "%s",
                      bad[i].line);
        ck_assert_msg(strstr(msg, bad[i].want), "'%s': got '%s'", bad[i].line, msg);
    }
}
END_TEST

START_TEST(test_overlong_parts_are_refused_not_cut)
{
    char line[4096], clients[2048] = "";
    for (int i = 0; i < 33; i++)
        snprintf(clients + strlen(clients), sizeof(clients) - strlen(clients), "%s10.%d.0.0/16",
                 i ? "," : "", i);
    snprintf(line, sizeof(line), "0.0.0.0:1 10.0.0.4:22 clients %s", clients);
    ck_assert_int_eq(acl_forward_parse_line(line, &f, msg, sizeof(msg)), -1);
    ck_assert_msg(strstr(msg, "more than 32 networks"), "%s", msg);
    char host[400];
    memset(host, 'a', sizeof(host));
    host[sizeof(host) - 1] = '\0';
    snprintf(line, sizeof(line), "0.0.0.0:1 %s:22", host);
    ck_assert_int_eq(acl_forward_parse_line(line, &f, msg, sizeof(msg)), -1);
    ck_assert_msg(strstr(msg, "too long"), "%s", msg);
}
END_TEST

static struct sockaddr_storage v4(const char *ip)
{
    struct sockaddr_storage ss = {0};
    struct sockaddr_in *s = (struct sockaddr_in *)&ss;
    s->sin_family = AF_INET;
    inet_pton(AF_INET, ip, &s->sin_addr);
    return ss;
}

START_TEST(test_client_list)
{
    ck_assert_int_eq(
        acl_forward_parse("0.0.0.0:1", "a.test:2", "10.0.0.0/8,192.168.1.7", &f, msg, sizeof(msg)),
        0);
    struct sockaddr_storage in = v4("10.2.3.4"), host = v4("192.168.1.7"), out = v4("192.168.1.8");
    ck_assert(acl_forward_client_allowed(&f, (struct sockaddr *)&in));
    ck_assert(acl_forward_client_allowed(&f, (struct sockaddr *)&host));
    ck_assert(!acl_forward_client_allowed(&f, (struct sockaddr *)&out));
    ck_assert_int_eq(acl_forward_parse("0.0.0.0:1", "a.test:2", NULL, &f, msg, sizeof(msg)), 0);
    ck_assert(acl_forward_client_allowed(&f, (struct sockaddr *)&out));
}
END_TEST

int main(void)
{
    Suite *s = suite_create("acl_forward");
    TCase *tc = tcase_create("forward");
    tcase_add_test(tc, test_line_with_clients);
    tcase_add_test(tc, test_tls_word_in_any_place);
    tcase_add_test(tc, test_tls_target_names_what_it_verifies);
    tcase_add_test(tc, test_names_and_ipv6_are_canonical);
    tcase_add_test(tc, test_bad_parts_are_named);
    tcase_add_test(tc, test_overlong_parts_are_refused_not_cut);
    tcase_add_test(tc, test_client_list);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
