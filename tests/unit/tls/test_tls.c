/* test_tls: tls/ credentials and sessions. The self-made pair is made once, kept (key 0600)
 * and reused, remade when the kept certificate is unusable; bad settings come back as a
 * reason. A server session is driven the way conn.c drives it (non-blocking, readiness flags)
 * against a GnuTLS client on the other end of a socket pair, in one thread: handshake, bytes
 * both ways through a full socket (the send retried after PX_AGAIN), close_notify, and a peer
 * that speaks no TLS. */
#include "tls/tls.h"

#include <check.h>
#include <errno.h>
#include <stdint.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/status.h"
#include "tests/unit/common.h"

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "r");
    ck_assert_msg(f != NULL, "open %s", path);
    static char text[65536];
    size_t n = fread(text, 1, sizeof(text) - 1, f);
    fclose(f);
    text[n] = '\0';
    return strdup(text);
}

static struct tls_cred *load_self(const char *dir, bool *made)
{
    char err[512] = "";
    struct tls_cred_options o = {.data_dir = dir};
    struct tls_cred *cred = tls_cred_load(&o, made, err, sizeof(err));
    ck_assert_msg(cred != NULL, "tls_cred_load: %s", err);
    return cred;
}

START_TEST(test_self_made_pair_is_kept_private_and_reused)
{
    struct test_tmpdir t;
    test_tmpdir_make(&t);
    bool made;
    struct tls_cred *cred = load_self(t.dir, &made);
    ck_assert(made);
    char cert[256], key[256];
    snprintf(cert, sizeof(cert), "%s/%s", t.dir, TLS_SELF_CERT_FILE);
    snprintf(key, sizeof(key), "%s/%s", t.dir, TLS_SELF_KEY_FILE);
    struct stat st;
    ck_assert_int_eq(stat(key, &st), 0);
    ck_assert_uint_eq(st.st_mode & 0777, 0600);
    ck_assert_str_eq(tls_cred_cert_path(cred), cert);
    char *first = slurp(cert);
    ck_assert_str_eq(tls_cred_cert_pem(cred), first);
    ck_assert(strstr(tls_cred_key_pem(cred), "PRIVATE KEY") != NULL);
    tls_cred_free(cred);

    cred = load_self(t.dir, &made);
    ck_assert(!made);
    ck_assert_str_eq(tls_cred_cert_pem(cred), first);
    tls_cred_free(cred);
    free(first);
    test_tmpdir_remove(&t);
}
END_TEST

START_TEST(test_unusable_kept_certificate_is_remade)
{
    struct test_tmpdir t;
    test_tmpdir_make(&t);
    bool made;
    tls_cred_free(load_self(t.dir, &made));
    char cert[256];
    snprintf(cert, sizeof(cert), "%s/%s", t.dir, TLS_SELF_CERT_FILE);
    FILE *f = fopen(cert, "w");
    fputs("-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydGlmaWNhdGU=\n-----END CERTIFICATE-----\n", f);
    fclose(f);
    struct tls_cred *cred = load_self(t.dir, &made);
    ck_assert(made);
    ck_assert(strstr(tls_cred_cert_pem(cred), "bm90IGEg") == NULL);
    tls_cred_free(cred);
    test_tmpdir_remove(&t);
}
END_TEST

/* Settings that cannot work, and the words the reason must contain. */
START_TEST(test_bad_settings_give_a_reason)
{
    struct test_tmpdir a, b;
    test_tmpdir_make(&a);
    test_tmpdir_make(&b);
    bool made;
    tls_cred_free(load_self(a.dir, &made));
    tls_cred_free(load_self(b.dir, &made));
    char a_cert[256], a_key[256], b_key[256], missing[256];
    snprintf(a_cert, sizeof(a_cert), "%s/%s", a.dir, TLS_SELF_CERT_FILE);
    snprintf(a_key, sizeof(a_key), "%s/%s", a.dir, TLS_SELF_KEY_FILE);
    snprintf(b_key, sizeof(b_key), "%s/%s", b.dir, TLS_SELF_KEY_FILE);
    snprintf(missing, sizeof(missing), "%s/missing.pem", a.dir);
    const struct {
        const char *cert, *key, *reason;
    } cases[] = {
        {a_cert, NULL, "go together"},   {NULL, a_key, "go together"},
        {missing, a_key, "missing.pem"}, {a_cert, missing, "missing.pem"},
        {a_cert, b_key, "its key"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char err[512] = "";
        struct tls_cred_options o = {
            .cert_file = cases[i].cert, .key_file = cases[i].key, .data_dir = a.dir};
        ck_assert_ptr_null(tls_cred_load(&o, &made, err, sizeof(err)));
        ck_assert_msg(strstr(err, cases[i].reason) != NULL, "case %zu: '%s'", i, err);
    }
    struct tls_cred_options good = {.cert_file = a_cert, .key_file = a_key, .data_dir = b.dir};
    char err[512] = "";
    struct tls_cred *cred = tls_cred_load(&good, &made, err, sizeof(err));
    ck_assert_msg(cred != NULL, "%s", err);
    ck_assert(!made);
    tls_cred_free(cred);
    test_tmpdir_remove(&a);
    test_tmpdir_remove(&b);
}
END_TEST

/* ---- sessions ---- */

struct pair {
    struct test_tmpdir t;
    struct tls_cred *cred;
    int sfd, cfd; /* server and client ends, non-blocking */
    struct tls_session server;
    gnutls_session_t client;
    gnutls_certificate_credentials_t client_cred;
    bool readable, writable; /* the server's flags */
};

static void pair_open(struct pair *p)
{
    bool made;
    test_tmpdir_make(&p->t);
    p->cred = load_self(p->t.dir, &made);
    int sv[2];
    ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), 0);
    p->sfd = sv[0];
    p->cfd = sv[1];
    ck_assert_int_eq(tls_session_start(&p->server, p->cred, p->sfd), PX_OK);
    ck_assert_int_eq(p->server.state, TLS_HANDSHAKE);
    ck_assert_int_eq(gnutls_init(&p->client, GNUTLS_CLIENT | GNUTLS_NONBLOCK), 0);
    ck_assert_int_eq(gnutls_set_default_priority(p->client), 0);
    ck_assert_int_eq(gnutls_certificate_allocate_credentials(&p->client_cred), 0);
    gnutls_datum_t ca = {(unsigned char *)tls_cred_cert_pem(p->cred),
                         (unsigned)strlen(tls_cred_cert_pem(p->cred))};
    ck_assert_int_eq(
        gnutls_certificate_set_x509_trust_mem(p->client_cred, &ca, GNUTLS_X509_FMT_PEM), 1);
    gnutls_credentials_set(p->client, GNUTLS_CRD_CERTIFICATE, p->client_cred);
    gnutls_server_name_set(p->client, GNUTLS_NAME_DNS, "localhost", 9);
    gnutls_session_set_verify_cert(p->client, "localhost", 0);
    gnutls_transport_set_int(p->client, p->cfd);
}

static void pair_close(struct pair *p)
{
    tls_session_end(&p->server);
    ck_assert_int_eq(p->server.state, TLS_NONE);
    gnutls_deinit(p->client);
    gnutls_certificate_free_credentials(p->client_cred);
    tls_cred_free(p->cred);
    close(p->sfd);
    close(p->cfd);
    test_tmpdir_remove(&p->t);
}

/* Both handshakes to the end, alternating as an event loop would. */
static void pair_handshake(struct pair *p)
{
    int s = PX_AGAIN, c = GNUTLS_E_AGAIN;
    for (int i = 0; i < 1000 && (s != PX_OK || c != 0); i++) {
        if (c != 0) {
            c = gnutls_handshake(p->client);
            ck_assert_msg(c == 0 || c == GNUTLS_E_AGAIN, "client: %s", gnutls_strerror(c));
        }
        if (s != PX_OK) {
            p->readable = p->writable = true;
            s = tls_session_handshake(&p->server, &p->readable, &p->writable);
            ck_assert_msg(s != PX_ERR, "server: %s", tls_session_error(&p->server));
            if (s == PX_AGAIN) /* it waits for one way, and says so */
                ck_assert(!p->readable || !p->writable);
        }
    }
    ck_assert_int_eq(s, PX_OK);
    ck_assert_int_eq(c, 0);
    ck_assert_int_eq(p->server.state, TLS_OPEN);
    gnutls_datum_t alpn;
    ck_assert_int_eq(gnutls_alpn_get_selected_protocol(p->server.gs, &alpn), 0);
    ck_assert_int_eq(alpn.size, 8);
    ck_assert_mem_eq(alpn.data, "http/1.1", 8);
}

START_TEST(test_session_carries_bytes_both_ways_and_ends_with_close_notify)
{
    struct pair p;
    pair_open(&p);
    gnutls_datum_t proto = {(unsigned char *)"http/1.1", 8};
    gnutls_alpn_set_protocols(p.client, &proto, 1, 0);
    pair_handshake(&p);

    /* Client to server: more than a socket buffer, read as it comes. */
    enum { UP = 300 * 1024, DOWN = 2 * 1024 * 1024 };
    unsigned char *up = malloc(UP), *got = malloc(DOWN);
    for (size_t i = 0; i < UP; i++)
        up[i] = (unsigned char)(i * 7);
    size_t sent = 0, recvd = 0;
    for (int i = 0; i < 100000 && recvd < UP; i++) {
        if (sent < UP) {
            ssize_t n = gnutls_record_send(p.client, up + sent, UP - sent);
            ck_assert(n > 0 || n == GNUTLS_E_AGAIN);
            if (n > 0)
                sent += (size_t)n;
        }
        p.readable = p.writable = true;
        ssize_t n = tls_session_recv(&p.server, got + recvd, UP - recvd, &p.readable, &p.writable);
        ck_assert_msg(n > 0 || n == PX_AGAIN, "recv %zd", n);
        if (n > 0)
            recvd += (size_t)n;
        else
            ck_assert(!p.readable);
    }
    ck_assert_uint_eq(recvd, UP);
    ck_assert_mem_eq(got, up, UP);

    /* Server to client through a socket that fills: after PX_AGAIN the same bytes are offered
     * again (with more behind them, as a growing buffer would) and counted once sent. */
    unsigned char *down = malloc(DOWN);
    for (size_t i = 0; i < DOWN; i++)
        down[i] = (unsigned char)(i * 13 + 1);
    sent = recvd = 0;
    int agains = 0;
    for (int i = 0; i < 100000 && recvd < DOWN; i++) {
        for (int k = 0; k < 64 && sent < DOWN; k++) {
            p.readable = p.writable = true;
            ssize_t n =
                tls_session_send(&p.server, down + sent, DOWN - sent, &p.readable, &p.writable);
            ck_assert_msg(n > 0 || n == PX_AGAIN, "send %zd", n);
            if (n == PX_AGAIN) {
                ck_assert(!p.writable);
                agains++;
                break;
            }
            sent += (size_t)n;
        }
        while (recvd < DOWN) {
            ssize_t n = gnutls_record_recv(p.client, got + recvd, DOWN - recvd);
            if (n == GNUTLS_E_AGAIN)
                break;
            ck_assert_msg(n > 0, "client recv %zd", n);
            recvd += (size_t)n;
        }
    }
    ck_assert_int_gt(agains, 0); /* the socket did fill */
    ck_assert_uint_eq(recvd, DOWN);
    ck_assert_mem_eq(got, down, DOWN);

    /* close_notify: the client reads the end; its own close_notify reads as 0. */
    ck_assert_int_eq(tls_session_bye(&p.server), PX_OK);
    ck_assert_int_eq(p.server.state, TLS_SHUT);
    ssize_t n;
    for (int i = 0; i < 1000 && (n = gnutls_record_recv(p.client, got, 16)) == GNUTLS_E_AGAIN; i++)
        ;
    ck_assert_int_eq(n, 0);
    p.readable = p.writable = true;
    ck_assert_int_eq(tls_session_send(&p.server, "x", 1, &p.readable, &p.writable), PX_ERR);
    ck_assert_int_eq(gnutls_bye(p.client, GNUTLS_SHUT_WR), 0);
    p.readable = true;
    ck_assert_int_eq(tls_session_recv(&p.server, got, 16, &p.readable, &p.writable), 0);
    free(up);
    free(down);
    free(got);
    pair_close(&p);
}
END_TEST

/* The client end of TLS inside TLS: its session's records travel inside the client's outer
 * session (p->client), whose records are counted as they come off the socket. */
struct nested_client {
    struct pair *p;
    gnutls_session_t inner;
    unsigned char head[5]; /* the outer record header being read */
    size_t head_got, body_left;
    unsigned outer_records; /* application data records read on the socket */
};

static ssize_t counting_pull(gnutls_transport_ptr_t ptr, void *buf, size_t len)
{
    struct nested_client *nc = ptr;
    ssize_t n = recv(nc->p->cfd, buf, len, 0);
    if (n < 0) {
        gnutls_transport_set_errno(nc->p->client, errno);
        return n;
    }
    for (const unsigned char *b = buf, *end = b + n; b < end;) {
        if (nc->body_left > 0) {
            size_t k = (size_t)(end - b) < nc->body_left ? (size_t)(end - b) : nc->body_left;
            nc->body_left -= k;
            b += k;
            continue;
        }
        nc->head[nc->head_got++] = *b++;
        if (nc->head_got == 5) {
            nc->head_got = 0;
            nc->body_left = (size_t)nc->head[3] << 8 | nc->head[4];
            nc->outer_records += nc->head[0] == 23;
        }
    }
    return n;
}

static ssize_t inner_push(gnutls_transport_ptr_t ptr, const void *buf, size_t len)
{
    struct nested_client *nc = ptr;
    ssize_t n = gnutls_record_send(nc->p->client, buf, len);
    if (n >= 0)
        return n;
    gnutls_transport_set_errno(nc->inner, EAGAIN);
    return -1;
}

static ssize_t inner_pull(gnutls_transport_ptr_t ptr, void *buf, size_t len)
{
    struct nested_client *nc = ptr;
    ssize_t n = gnutls_record_recv(nc->p->client, buf, len);
    if (n >= 0)
        return n;
    gnutls_transport_set_errno(nc->inner, EAGAIN);
    return -1;
}

START_TEST(test_nested_session_carries_bytes_in_whole_outer_records)
{
    struct pair p;
    pair_open(&p);
    struct nested_client nc = {.p = &p};
    gnutls_transport_set_ptr2(p.client, &nc, (gnutls_transport_ptr_t)(intptr_t)p.cfd);
    gnutls_transport_set_pull_function(p.client, counting_pull);
    gnutls_datum_t proto = {(unsigned char *)"http/1.1", 8};
    gnutls_alpn_set_protocols(p.client, &proto, 1, 0);
    pair_handshake(&p);
    ck_assert_int_eq(
        tls_session_nest(&p.server, p.cred->x509, p.cred->priority, &p.cred->ticket_key), PX_OK);
    ck_assert_int_eq(gnutls_init(&nc.inner, GNUTLS_CLIENT | GNUTLS_NONBLOCK), 0);
    ck_assert_int_eq(gnutls_set_default_priority(nc.inner), 0);
    gnutls_credentials_set(nc.inner, GNUTLS_CRD_CERTIFICATE, p.client_cred);
    gnutls_session_set_verify_cert(nc.inner, "localhost", 0);
    gnutls_transport_set_ptr(nc.inner, &nc);
    gnutls_transport_set_push_function(nc.inner, inner_push);
    gnutls_transport_set_pull_function(nc.inner, inner_pull);
    int s = PX_AGAIN, c = GNUTLS_E_AGAIN;
    for (int i = 0; i < 1000 && (s != PX_OK || c != 0); i++) {
        if (c != 0) {
            c = gnutls_handshake(nc.inner);
            ck_assert_msg(c == 0 || c == GNUTLS_E_AGAIN, "inner client: %s", gnutls_strerror(c));
        }
        if (s != PX_OK) {
            p.readable = p.writable = true;
            s = tls_session_handshake(&p.server, &p.readable, &p.writable);
            ck_assert_msg(s != PX_ERR, "inner server: %s", tls_session_error(&p.server));
        }
    }
    ck_assert_int_eq(s, PX_OK);
    ck_assert_int_eq(c, 0);

    /* Each full record of the nested session is one outer record, not one of 16 KiB and one
     * of its last few bytes (130 records then). A few more are read here: the nested
     * session's tickets, and the last short record. */
    enum { DOWN = 1024 * 1024, RECORD = 16384 };
    unsigned char *down = malloc(DOWN), *got = malloc(DOWN);
    for (size_t i = 0; i < DOWN; i++)
        down[i] = (unsigned char)(i * 11 + 3);
    size_t sent = 0, recvd = 0;
    unsigned before = nc.outer_records;
    for (int i = 0; i < 100000 && recvd < DOWN; i++) {
        if (sent < DOWN) {
            p.readable = p.writable = true;
            ssize_t n =
                tls_session_send(&p.server, down + sent, DOWN - sent, &p.readable, &p.writable);
            ck_assert_msg(n > 0 || n == PX_AGAIN, "send %zd", n);
            if (n > 0)
                sent += (size_t)n;
        }
        ssize_t n = gnutls_record_recv(nc.inner, got + recvd, DOWN - recvd);
        ck_assert_msg(n > 0 || n == GNUTLS_E_AGAIN, "inner recv %zd", n);
        if (n > 0)
            recvd += (size_t)n;
    }
    ck_assert_uint_eq(recvd, DOWN);
    ck_assert_mem_eq(got, down, DOWN);
    unsigned records = nc.outer_records - before;
    ck_assert_msg(records <= DOWN / (RECORD - 256) + 4, "%u outer records for %d bytes", records,
                  DOWN);

    /* And the other way, the client's records through both sessions. */
    sent = recvd = 0;
    for (int i = 0; i < 100000 && recvd < DOWN; i++) {
        if (sent < DOWN) {
            ssize_t n = gnutls_record_send(nc.inner, down + sent, DOWN - sent);
            ck_assert(n > 0 || n == GNUTLS_E_AGAIN);
            if (n > 0)
                sent += (size_t)n;
        }
        p.readable = p.writable = true;
        ssize_t n =
            tls_session_recv(&p.server, got + recvd, DOWN - recvd, &p.readable, &p.writable);
        ck_assert_msg(n > 0 || n == PX_AGAIN, "recv %zd", n);
        if (n > 0)
            recvd += (size_t)n;
    }
    ck_assert_uint_eq(recvd, DOWN);
    ck_assert_mem_eq(got, down, DOWN);
    free(down);
    free(got);
    gnutls_deinit(nc.inner);
    pair_close(&p);
}
END_TEST

START_TEST(test_peer_without_tls_fails_the_handshake)
{
    static const char *const inputs[] = {
        "GET http://example.test/ HTTP/1.1\r\nHost: example.test\r\n\r\n",
        "\x16\x03\x01\xff\xffhello", /* a handshake record longer than TLS allows */
    };
    for (size_t i = 0; i < sizeof(inputs) / sizeof(inputs[0]); i++) {
        struct pair p;
        pair_open(&p);
        ck_assert_int_eq(write(p.cfd, inputs[i], strlen(inputs[i])), (ssize_t)strlen(inputs[i]));
        p.readable = p.writable = true;
        int r = PX_AGAIN;
        for (int k = 0; k < 10 && r == PX_AGAIN; k++)
            r = tls_session_handshake(&p.server, &p.readable, &p.writable);
        ck_assert_msg(r == PX_ERR, "input %zu: %d", i, r);
        ck_assert_int_eq(p.server.state, TLS_FAILED);
        ck_assert_str_ne(tls_session_error(&p.server), "");
        ck_assert_str_eq(tls_state_str(p.server.state), "failed");
        p.readable = p.writable = true;
        ck_assert_int_eq(tls_session_recv(&p.server, p.t.dir, 1, &p.readable, &p.writable), PX_ERR);
        pair_close(&p);
    }
}
END_TEST

START_TEST(test_handshake_waits_without_bytes)
{
    struct pair p;
    pair_open(&p);
    p.readable = p.writable = true;
    ck_assert_int_eq(tls_session_handshake(&p.server, &p.readable, &p.writable), PX_AGAIN);
    ck_assert(!p.readable);
    ck_assert(p.writable);
    pair_close(&p);
}
END_TEST

/* A peer that sends only records with nothing to read (warning alerts here) gets its session
 * failed after a few in a row: left at PX_AGAIN with the socket still readable, the connection
 * would wait for an edge that never comes until its timeout. */
START_TEST(test_records_without_data_fail_the_session)
{
    struct pair p;
    pair_open(&p);
    ck_assert_int_eq(gnutls_priority_set_direct(p.client, "NORMAL:-VERS-TLS1.3", NULL), 0);
    gnutls_datum_t proto = {(unsigned char *)"http/1.1", 8};
    gnutls_alpn_set_protocols(p.client, &proto, 1, 0);
    pair_handshake(&p);
    for (int i = 0; i < 12; i++) {
        int r;
        for (int k = 0;
             k < 100 && (r = gnutls_alert_send(p.client, GNUTLS_AL_WARNING,
                                               GNUTLS_A_NO_RENEGOTIATION)) == GNUTLS_E_AGAIN;
             k++)
            ;
        ck_assert_msg(r == 0, "alert %d: %s", i, gnutls_strerror(r));
    }
    char got[16];
    p.readable = p.writable = true;
    ssize_t n = tls_session_recv(&p.server, got, sizeof(got), &p.readable, &p.writable);
    ck_assert_int_eq(n, PX_ERR);
    ck_assert_int_eq(p.server.state, TLS_FAILED);
    ck_assert_str_ne(tls_session_error(&p.server), "");
    pair_close(&p);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("tls");
    TCase *tc = tcase_create("tls");
    tcase_add_test(tc, test_self_made_pair_is_kept_private_and_reused);
    tcase_add_test(tc, test_unusable_kept_certificate_is_remade);
    tcase_add_test(tc, test_bad_settings_give_a_reason);
    tcase_add_test(tc, test_session_carries_bytes_both_ways_and_ends_with_close_notify);
    tcase_add_test(tc, test_nested_session_carries_bytes_in_whole_outer_records);
    tcase_add_test(tc, test_peer_without_tls_fails_the_handshake);
    tcase_add_test(tc, test_handshake_waits_without_bytes);
    tcase_add_test(tc, test_records_without_data_fail_the_session);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
