/* test_client: tls/client.h. A client session is driven the way conn.c drives one (non-
 * blocking, readiness flags) against our own server session on the other end of a socket
 * pair, in one thread. The server's certificates are made by the test with GnuTLS: signed by
 * a test CA (valid, expired, for another name) or by themselves. The client trusts the test
 * CA through a file (what --upstream-ca gives), on top of the system's store. */
#include "tls/client.h"

#include <arpa/inet.h>
#include <check.h>
#include <gnutls/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "base/status.h"
#include "tests/unit/common.h"

struct made {
    gnutls_x509_crt_t crt;
    gnutls_x509_privkey_t key;
};

/* A certificate for name (a DNS name or an IP address), valid [from, to), signed by issuer
 * (NULL: by itself). */
static struct made make(const char *name, bool ca, time_t from, time_t to,
                        const struct made *issuer)
{
    struct made m;
    static unsigned serial = 1;
    unsigned char ser[4] = {0, 0, 0, (unsigned char)serial++};
    ck_assert_int_eq(gnutls_x509_privkey_init(&m.key), 0);
    ck_assert_int_eq(gnutls_x509_privkey_generate(m.key, GNUTLS_PK_ECDSA,
                                                  GNUTLS_CURVE_TO_BITS(GNUTLS_ECC_CURVE_SECP256R1),
                                                  0),
                     0);
    ck_assert_int_eq(gnutls_x509_crt_init(&m.crt), 0);
    ck_assert_int_eq(gnutls_x509_crt_set_version(m.crt, 3), 0);
    ck_assert_int_eq(gnutls_x509_crt_set_serial(m.crt, ser, sizeof(ser)), 0);
    ck_assert_int_eq(gnutls_x509_crt_set_dn_by_oid(m.crt, GNUTLS_OID_X520_COMMON_NAME, 0, name,
                                                   (unsigned)strlen(name)),
                     0);
    ck_assert_int_eq(gnutls_x509_crt_set_key(m.crt, m.key), 0);
    ck_assert_int_eq(gnutls_x509_crt_set_activation_time(m.crt, from), 0);
    ck_assert_int_eq(gnutls_x509_crt_set_expiration_time(m.crt, to), 0);
    ck_assert_int_eq(gnutls_x509_crt_set_basic_constraints(m.crt, ca, -1), 0);
    if (ca) {
        ck_assert_int_eq(gnutls_x509_crt_set_key_usage(m.crt, GNUTLS_KEY_KEY_CERT_SIGN), 0);
    } else {
        unsigned char ip[16];
        int v4 = inet_pton(AF_INET, name, ip) == 1, v6 = !v4 && inet_pton(AF_INET6, name, ip) == 1;
        if (v4 || v6)
            ck_assert_int_eq(gnutls_x509_crt_set_subject_alt_name(m.crt, GNUTLS_SAN_IPADDRESS, ip,
                                                                  v4 ? 4 : 16, GNUTLS_FSAN_SET),
                             0);
        else
            ck_assert_int_eq(gnutls_x509_crt_set_subject_alt_name(m.crt, GNUTLS_SAN_DNSNAME, name,
                                                                  (unsigned)strlen(name),
                                                                  GNUTLS_FSAN_SET),
                             0);
        ck_assert_int_eq(gnutls_x509_crt_set_key_purpose_oid(m.crt, GNUTLS_KP_TLS_WWW_SERVER, 0),
                         0);
    }
    const struct made *by = issuer ? issuer : &m;
    ck_assert_int_eq(gnutls_x509_crt_sign2(m.crt, by->crt, by->key, GNUTLS_DIG_SHA256, 0), 0);
    return m;
}

static void made_free(struct made *m)
{
    gnutls_x509_crt_deinit(m->crt);
    gnutls_x509_privkey_deinit(m->key);
}

static void write_crt(const char *path, gnutls_x509_crt_t crt)
{
    gnutls_datum_t d;
    ck_assert_int_eq(gnutls_x509_crt_export2(crt, GNUTLS_X509_FMT_PEM, &d), 0);
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fwrite(d.data, 1, d.size, f);
    fclose(f);
    gnutls_free(d.data);
}

static void write_key(const char *path, gnutls_x509_privkey_t key)
{
    gnutls_datum_t d;
    ck_assert_int_eq(gnutls_x509_privkey_export2(key, GNUTLS_X509_FMT_PEM, &d), 0);
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fwrite(d.data, 1, d.size, f);
    fclose(f);
    gnutls_free(d.data);
}

struct fixture {
    struct test_tmpdir t;
    struct made ca;
    char ca_path[256];
    struct tls_trust *trust;
};

static void fixture_make(struct fixture *f)
{
    char err[512] = "";
    time_t now = time(NULL);
    test_tmpdir_make(&f->t);
    f->ca = make("proxyd test CA", true, now - 86400, now + 86400 * 30, NULL);
    snprintf(f->ca_path, sizeof(f->ca_path), "%s/ca.pem", f->t.dir);
    write_crt(f->ca_path, f->ca.crt);
    const char *files[] = {f->ca_path};
    f->trust = tls_trust_load(files, 1, err, sizeof(err));
    ck_assert_msg(f->trust != NULL, "%s", err);
    ck_assert_uint_ge(tls_trust_count(f->trust), 1);
}

static void fixture_free(struct fixture *f)
{
    tls_trust_free(f->trust);
    made_free(&f->ca);
    test_tmpdir_remove(&f->t);
}

/* Connects a client for host to a server presenting leaf; returns the client's result with
 * why filled, after both sides ran to the end. */
static int connect_to(struct fixture *f, struct made *leaf, const char *host, char *why,
                      size_t whylen, bool *verify_failed)
{
    char cert[256], key[256], err[512] = "";
    snprintf(cert, sizeof(cert), "%s/leaf.pem", f->t.dir);
    snprintf(key, sizeof(key), "%s/leaf-key.pem", f->t.dir);
    write_crt(cert, leaf->crt);
    write_key(key, leaf->key);
    bool made;
    struct tls_cred_options o = {.cert_file = cert, .key_file = key};
    struct tls_cred *cred = tls_cred_load(&o, &made, err, sizeof(err));
    ck_assert_msg(cred != NULL, "%s", err);

    int sv[2];
    ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), 0);
    struct tls_session server = {0}, client = {0};
    ck_assert_int_eq(tls_session_start(&server, cred, sv[0]), PX_OK);
    ck_assert_int_eq(tls_client_start(&client, f->trust, host, "http/1.1", sv[1]), PX_OK);
    ck_assert_int_eq(client.state, TLS_HANDSHAKE);
    int s = PX_AGAIN, c = PX_AGAIN;
    for (int i = 0; i < 1000 && c == PX_AGAIN; i++) {
        bool r = true, w = true;
        if (s == PX_AGAIN)
            s = tls_session_handshake(&server, &r, &w);
        r = w = true;
        c = tls_client_handshake(&client, host, &r, &w, why, whylen, verify_failed);
        if (c == PX_AGAIN)
            ck_assert(!r || !w); /* it waits for one way, and says so */
    }
    ck_assert_int_ne(c, PX_AGAIN);
    if (c == PX_OK) {
        gnutls_datum_t alpn;
        ck_assert_int_eq(gnutls_alpn_get_selected_protocol(client.gs, &alpn), 0);
        ck_assert_mem_eq(alpn.data, "http/1.1", 8);
        /* Bytes both ways: it is an ordinary session from here. */
        bool r = true, w = true;
        ck_assert_int_eq(tls_session_send(&client, "GET / HTTP/1.1\r\n\r\n", 18, &r, &w), 18);
        char buf[64];
        ssize_t n = PX_AGAIN;
        for (int i = 0; i < 100 && n == PX_AGAIN; i++) {
            r = w = true;
            if (server.state == TLS_HANDSHAKE)
                tls_session_handshake(&server, &r, &w);
            else
                n = tls_session_recv(&server, buf, sizeof(buf), &r, &w);
        }
        ck_assert_int_eq(n, 18);
        ck_assert_mem_eq(buf, "GET / HTTP/1.1\r\n\r\n", 18);
    } else {
        ck_assert_int_eq(client.state, TLS_FAILED);
    }
    tls_session_end(&client);
    tls_session_end(&server);
    close(sv[0]);
    close(sv[1]);
    tls_cred_free(cred);
    return c;
}

START_TEST(test_valid_origin_verifies_for_its_name_and_its_address)
{
    struct fixture f;
    fixture_make(&f);
    time_t now = time(NULL);
    char why[256] = "";
    bool vf = true;
    struct made leaf = make("origin.test", false, now - 3600, now + 86400, &f.ca);
    ck_assert_msg(connect_to(&f, &leaf, "origin.test", why, sizeof(why), &vf) == PX_OK, "%s", why);
    ck_assert(!vf);
    made_free(&leaf);
    leaf = make("127.0.0.1", false, now - 3600, now + 86400, &f.ca);
    ck_assert_msg(connect_to(&f, &leaf, "127.0.0.1", why, sizeof(why), &vf) == PX_OK, "%s", why);
    made_free(&leaf);
    fixture_free(&f);
}
END_TEST

START_TEST(test_bad_certificates_fail_with_their_reason)
{
    struct fixture f;
    fixture_make(&f);
    time_t now = time(NULL);
    struct made stranger = make("stranger CA", true, now - 86400, now + 86400, NULL);
    struct {
        struct made leaf;
        const char *host, *want;
    } cases[] = {
        {make("origin.test", false, now - 86400 * 10, now - 86400, &f.ca), "origin.test",
         "certificate expired"},
        {make("origin.test", false, now + 86400, now + 86400 * 10, &f.ca), "origin.test",
         "certificate not yet valid"},
        {make("other.test", false, now - 3600, now + 86400, &f.ca), "origin.test",
         "certificate is for another name (not origin.test)"},
        {make("origin.test", false, now - 3600, now + 86400, &stranger), "origin.test",
         "unknown issuer"},
        {make("origin.test", false, now - 3600, now + 86400, NULL), "origin.test",
         "self-signed certificate"},
        {make("127.0.0.2", false, now - 3600, now + 86400, &f.ca), "127.0.0.1",
         "certificate is for another name (not 127.0.0.1)"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char why[256] = "";
        bool vf = false;
        int rc = connect_to(&f, &cases[i].leaf, cases[i].host, why, sizeof(why), &vf);
        ck_assert_msg(rc == PX_ERR && vf, "case %zu: rc %d (%s)", i, rc, why);
        ck_assert_msg(strcmp(why, cases[i].want) == 0, "case %zu: '%s', want '%s'", i, why,
                      cases[i].want);
        made_free(&cases[i].leaf);
    }
    made_free(&stranger);
    fixture_free(&f);
}
END_TEST

START_TEST(test_reason_names_every_cause)
{
    static const struct {
        unsigned status;
        bool self;
        const char *want;
    } cases[] = {
        {0, false, ""},
        {GNUTLS_CERT_INVALID | GNUTLS_CERT_EXPIRED | GNUTLS_CERT_SIGNER_NOT_FOUND, false,
         "certificate expired, unknown issuer"},
        {GNUTLS_CERT_INVALID | GNUTLS_CERT_SIGNER_NOT_FOUND, true, "self-signed certificate"},
        {GNUTLS_CERT_INVALID | GNUTLS_CERT_UNEXPECTED_OWNER, false,
         "certificate is for another name (not h.test)"},
        {GNUTLS_CERT_INVALID, false, "certificate not trusted (status 0x2)"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char why[160];
        tls_verify_reason(cases[i].status, cases[i].self, "h.test", why, sizeof(why));
        ck_assert_str_eq(why, cases[i].want);
    }
    char tiny[8];
    tls_verify_reason(GNUTLS_CERT_INVALID | GNUTLS_CERT_EXPIRED, false, "h.test", tiny,
                      sizeof(tiny));
    ck_assert_uint_lt(strlen(tiny), sizeof(tiny));
}
END_TEST

START_TEST(test_bad_ca_file_is_named)
{
    struct test_tmpdir t;
    char err[512] = "", path[256];
    test_tmpdir_make(&t);
    snprintf(path, sizeof(path), "%s/empty.pem", t.dir);
    FILE *fp = fopen(path, "w");
    fputs("not a certificate\n", fp);
    fclose(fp);
    const char *files[] = {path};
    ck_assert_ptr_null(tls_trust_load(files, 1, err, sizeof(err)));
    ck_assert_msg(strstr(err, path) && strstr(err, "no certificate"), "%s", err);
    snprintf(path, sizeof(path), "%s/missing.pem", t.dir);
    ck_assert_ptr_null(tls_trust_load(files, 1, err, sizeof(err)));
    ck_assert_msg(strstr(err, path), "%s", err);
    test_tmpdir_remove(&t);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("tls_client");
    TCase *tc = tcase_create("client");
    tcase_add_test(tc, test_valid_origin_verifies_for_its_name_and_its_address);
    tcase_add_test(tc, test_bad_certificates_fail_with_their_reason);
    tcase_add_test(tc, test_reason_names_every_cause);
    tcase_add_test(tc, test_bad_ca_file_is_named);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
