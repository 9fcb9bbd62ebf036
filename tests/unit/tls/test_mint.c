/* test_mint: the local CA (tls/ca.h) and the per-host certificates (tls/mint.h). A made CA is
 * kept with its key 0600, loaded back, never overwritten by a second init; an import refuses
 * what cannot sign (a server certificate, a key of another pair, text that is no PEM). A
 * minted certificate verifies against the CA, names the host in its SAN (an IP address SAN
 * for an IP literal) and is valid from an hour ago to no later than the CA. The cache counts
 * hits and misses, evicts the least recently used by count and by bytes, and keeps an evicted
 * entry alive while borrowed. A client that trusts only the CA completes a handshake with
 * the host's name checked. */
#include "tls/mint.h"

#include <check.h>
#include <malloc.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/status.h"
#include "tests/unit/common.h"
#include "tls/ca.h"
#include "tls/file.h"
#include "tls/tls.h"

static struct tls_ca *make_ca(struct test_tmpdir *t, const char *cn)
{
    char err[512] = "";
    test_tmpdir_make(t);
    ck_assert_msg(tls_ca_init(t->dir, cn, err, sizeof(err)) == 0, "init: %s", err);
    struct tls_ca *ca = tls_ca_load(t->dir, err, sizeof(err));
    ck_assert_msg(ca != NULL, "load: %s", err);
    return ca;
}

static gnutls_x509_crt_t cred_crt(gnutls_certificate_credentials_t cred)
{
    gnutls_datum_t der;
    ck_assert_int_eq(gnutls_certificate_get_crt_raw(cred, 0, 0, &der), 0);
    gnutls_x509_crt_t crt;
    ck_assert_int_eq(gnutls_x509_crt_init(&crt), 0);
    ck_assert_int_eq(gnutls_x509_crt_import(crt, &der, GNUTLS_X509_FMT_DER), 0);
    return crt;
}

START_TEST(test_ca_init_keeps_key_private_and_refuses_a_second)
{
    struct test_tmpdir t;
    char err[512] = "";
    test_tmpdir_make(&t);
    ck_assert(!tls_ca_present(t.dir));
    ck_assert_ptr_null(tls_ca_load(t.dir, err, sizeof(err)));
    ck_assert_str_eq(err, TLS_CA_NONE);
    ck_assert_int_eq(tls_ca_init(t.dir, "Office CA", err, sizeof(err)), 0);
    ck_assert(tls_ca_present(t.dir));
    char key[256];
    snprintf(key, sizeof(key), "%s/%s", t.dir, TLS_CA_KEY_FILE);
    struct stat st;
    ck_assert_int_eq(stat(key, &st), 0);
    ck_assert_uint_eq(st.st_mode & 0777, 0600);
    struct tls_ca *ca = tls_ca_load(t.dir, err, sizeof(err));
    ck_assert_msg(ca != NULL, "%s", err);
    ck_assert_msg(strstr(ca->subject, "CN=Office CA") != NULL, "%s", ca->subject);
    ck_assert_uint_eq(strlen(ca->sha256), 95); /* 32 bytes as XX:XX:... */
    ck_assert_uint_eq(strlen(ca->spki_sha256), 44);
    ck_assert(ca->not_after > time(NULL) + 9L * 365 * 86400);
    ck_assert(strstr(ca->cert_pem, "BEGIN CERTIFICATE") != NULL);
    char first[96];
    snprintf(first, sizeof(first), "%s", ca->sha256);
    tls_ca_free(ca);

    ck_assert_int_eq(tls_ca_init(t.dir, NULL, err, sizeof(err)), -1);
    ck_assert_msg(strstr(err, "exists already") != NULL, "%s", err);
    ca = tls_ca_load(t.dir, err, sizeof(err));
    ck_assert_str_eq(ca->sha256, first);
    tls_ca_free(ca);

    /* A name that cannot go into a certificate is refused with its reason. */
    struct test_tmpdir u;
    test_tmpdir_make(&u);
    ck_assert_int_eq(tls_ca_init(u.dir, "bad\nname", err, sizeof(err)), -1);
    ck_assert_msg(strstr(err, "control") != NULL, "%s", err);
    ck_assert(!tls_ca_present(u.dir));
    test_tmpdir_remove(&u);
    test_tmpdir_remove(&t);
}
END_TEST

START_TEST(test_ca_import_takes_a_ca_and_refuses_what_cannot_sign)
{
    struct test_tmpdir a, b, dst;
    struct tls_ca *ca_a = make_ca(&a, "A");
    struct tls_ca *ca_b = make_ca(&b, "B");
    test_tmpdir_make(&dst);
    /* A server certificate (not a CA): the self-made one of tls_cred_load. */
    bool made;
    char err[512] = "";
    struct tls_cred_options o = {.data_dir = a.dir};
    struct tls_cred *server = tls_cred_load(&o, &made, err, sizeof(err));
    ck_assert_msg(server != NULL, "%s", err);
    char a_cert[256], a_key[256], b_key[256], s_cert[256], s_key[256], junk[256], missing[256];
    snprintf(a_cert, sizeof(a_cert), "%s/%s", a.dir, TLS_CA_CERT_FILE);
    snprintf(a_key, sizeof(a_key), "%s/%s", a.dir, TLS_CA_KEY_FILE);
    snprintf(b_key, sizeof(b_key), "%s/%s", b.dir, TLS_CA_KEY_FILE);
    snprintf(s_cert, sizeof(s_cert), "%s/%s", a.dir, TLS_SELF_CERT_FILE);
    snprintf(s_key, sizeof(s_key), "%s/%s", a.dir, TLS_SELF_KEY_FILE);
    snprintf(junk, sizeof(junk), "%s/junk.pem", dst.dir);
    snprintf(missing, sizeof(missing), "%s/missing.pem", dst.dir);
    FILE *f = fopen(junk, "w");
    fputs("not a certificate\n", f);
    fclose(f);
    const struct {
        const char *cert, *key, *reason;
    } cases[] = {
        {s_cert, s_key, "not a CA"},
        {a_cert, b_key, "does not belong"},
        {junk, a_key, "not a PEM certificate"},
        {a_cert, junk, "not an unencrypted PEM private key"},
        {missing, a_key, "missing.pem"},
        {a_cert, missing, "missing.pem"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        err[0] = '\0';
        ck_assert_int_eq(
            tls_ca_import(dst.dir, cases[i].cert, cases[i].key, false, err, sizeof(err)), -1);
        ck_assert_msg(strstr(err, cases[i].reason) != NULL, "case %zu: '%s'", i, err);
        ck_assert(!tls_ca_present(dst.dir));
    }
    ck_assert_msg(tls_ca_import(dst.dir, a_cert, a_key, false, err, sizeof(err)) == 0, "%s", err);
    struct tls_ca *got = tls_ca_load(dst.dir, err, sizeof(err));
    ck_assert_msg(got != NULL, "%s", err);
    ck_assert_str_eq(got->sha256, ca_a->sha256);
    char key[256];
    snprintf(key, sizeof(key), "%s/%s", dst.dir, TLS_CA_KEY_FILE);
    struct stat st;
    ck_assert_int_eq(stat(key, &st), 0);
    ck_assert_uint_eq(st.st_mode & 0777, 0600);
    tls_ca_free(got);
    /* Another CA over the one kept: only on purpose. */
    char b_cert[256];
    snprintf(b_cert, sizeof(b_cert), "%s/%s", b.dir, TLS_CA_CERT_FILE);
    ck_assert_int_eq(tls_ca_import(dst.dir, b_cert, b_key, false, err, sizeof(err)), -2);
    ck_assert_msg(strstr(err, "exists already") != NULL, "%s", err);
    got = tls_ca_load(dst.dir, err, sizeof(err));
    ck_assert_str_eq(got->sha256, ca_a->sha256);
    tls_ca_free(got);
    ck_assert_msg(tls_ca_import(dst.dir, b_cert, b_key, true, err, sizeof(err)) == 0, "%s", err);
    got = tls_ca_load(dst.dir, err, sizeof(err));
    ck_assert_str_eq(got->sha256, ca_b->sha256);
    tls_ca_free(got);
    tls_cred_free(server);
    tls_ca_free(ca_a);
    tls_ca_free(ca_b);
    test_tmpdir_remove(&a);
    test_tmpdir_remove(&b);
    test_tmpdir_remove(&dst);
}
END_TEST

/* Importers racing into an empty folder without replace: exactly one of them wins each time,
 * and the folder holds its pair (the existence check and the writes are one step). */
#define RACERS 6
#define RACE_ROUNDS 8

struct racer {
    pthread_barrier_t *go;
    const char *dir;
    char *cert, *key;
    int rc;
};

static void *race_import(void *arg)
{
    struct racer *r = arg;
    char err[512];

    pthread_barrier_wait(r->go);
    r->rc = tls_ca_import_pem(r->dir, r->cert, r->key, false, err, sizeof(err));
    return NULL;
}

START_TEST(test_concurrent_imports_without_replace_keep_one_pair)
{
    struct test_tmpdir src[RACERS];
    struct tls_ca *made[RACERS];
    struct racer racers[RACERS];
    char path[4200], err[512];

    for (int i = 0; i < RACERS; i++) {
        made[i] = make_ca(&src[i], "racer");
        snprintf(path, sizeof(path), "%s/%s", src[i].dir, TLS_CA_CERT_FILE);
        racers[i].cert = tls_file_read(path);
        snprintf(path, sizeof(path), "%s/%s", src[i].dir, TLS_CA_KEY_FILE);
        racers[i].key = tls_file_read(path);
        ck_assert(racers[i].cert && racers[i].key);
    }
    for (int round = 0; round < RACE_ROUNDS; round++) {
        struct test_tmpdir dst;
        pthread_barrier_t go;
        pthread_t th[RACERS];
        int winners = 0, winner = -1;

        test_tmpdir_make(&dst);
        pthread_barrier_init(&go, NULL, RACERS);
        for (int i = 0; i < RACERS; i++) {
            racers[i].go = &go;
            racers[i].dir = dst.dir;
            ck_assert_int_eq(pthread_create(&th[i], NULL, race_import, &racers[i]), 0);
        }
        for (int i = 0; i < RACERS; i++) {
            pthread_join(th[i], NULL);
            ck_assert_msg(racers[i].rc == 0 || racers[i].rc == -2, "rc %d", racers[i].rc);
            if (racers[i].rc == 0) {
                winners++;
                winner = i;
            }
        }
        pthread_barrier_destroy(&go);
        ck_assert_int_eq(winners, 1);
        struct tls_ca *got = tls_ca_load(dst.dir, err, sizeof(err));
        ck_assert_msg(got != NULL, "round %d: %s", round, err);
        ck_assert_str_eq(got->sha256, made[winner]->sha256);
        tls_ca_free(got);
        test_tmpdir_remove(&dst);
    }
    for (int i = 0; i < RACERS; i++) {
        free(racers[i].cert);
        free(racers[i].key);
        tls_ca_free(made[i]);
        test_tmpdir_remove(&src[i]);
    }
}
END_TEST

static struct tls_mint *new_mint(const struct tls_ca *ca, size_t entries, size_t bytes)
{
    char err[512] = "";
    struct tls_mint *m = tls_mint_new(ca, entries, bytes, err, sizeof(err));
    ck_assert_msg(m != NULL, "%s", err);
    return m;
}

START_TEST(test_minted_certificate_verifies_names_the_host_and_ends_with_the_ca)
{
    struct test_tmpdir t;
    struct tls_ca *ca = make_ca(&t, NULL);
    struct tls_mint *m = new_mint(ca, 100, 1u << 20);
    time_t now = time(NULL);
    const struct {
        const char *host;
        bool ip;
        unsigned char addr[16];
        size_t addrlen;
    } hosts[] = {
        {"blocked.example", false, {0}, 0},
        {"xn--bcher-kva.example", false, {0}, 0},
        {"192.0.2.7", true, {192, 0, 2, 7}, 4},
        {"2001:db8::1", true, {0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1}, 16},
        /* longer than a common name may be: the SAN alone names it */
        {"a-very-long-label-that-goes-on-and-on.another-long-label-here.example", false, {0}, 0},
    };
    for (size_t i = 0; i < sizeof(hosts) / sizeof(hosts[0]); i++) {
        void *ref = NULL;
        char err[512] = "";
        gnutls_certificate_credentials_t cred =
            tls_mint_get(m, hosts[i].host, &ref, err, sizeof(err));
        ck_assert_msg(cred != NULL, "%s: %s", hosts[i].host, err);
        gnutls_x509_crt_t crt = cred_crt(cred);
        unsigned status = 99;
        ck_assert_int_eq(gnutls_x509_crt_verify(crt, &ca->crt, 1, 0, &status), 0);
        ck_assert_msg(status == 0, "%s: verify status %#x", hosts[i].host, status);
        ck_assert_msg(gnutls_x509_crt_check_hostname(crt, hosts[i].host), "%s", hosts[i].host);
        ck_assert(!gnutls_x509_crt_check_hostname(crt, "other.example"));
        char san[300];
        size_t sanlen = sizeof(san);
        unsigned crit;
        int type = gnutls_x509_crt_get_subject_alt_name(crt, 0, san, &sanlen, &crit);
        if (hosts[i].ip) {
            ck_assert_int_eq(type, GNUTLS_SAN_IPADDRESS);
            ck_assert_uint_eq(sanlen, hosts[i].addrlen);
            ck_assert_mem_eq(san, hosts[i].addr, sanlen);
        } else {
            ck_assert_int_eq(type, GNUTLS_SAN_DNSNAME);
            ck_assert_str_eq(san, hosts[i].host);
        }
        time_t nb = gnutls_x509_crt_get_activation_time(crt);
        time_t na = gnutls_x509_crt_get_expiration_time(crt);
        ck_assert(nb <= now - 3600 + 5 && nb >= now - 3600 - 60);
        ck_assert(na <= ca->not_after);
        ck_assert(na <= now + (time_t)TLS_MINT_DAYS * 86400 + 60);
        ck_assert(na > now + 300L * 86400);
        unsigned is_ca = 1;
        ck_assert_int_eq(gnutls_x509_crt_get_basic_constraints(crt, NULL, &is_ca, NULL), 0);
        ck_assert_uint_eq(is_ca, 0);
        gnutls_x509_crt_deinit(crt);
        tls_mint_release(m, ref);
    }
    tls_mint_free(m);
    tls_ca_free(ca);
    test_tmpdir_remove(&t);
}
END_TEST

/* A mint replaced by a new CA's keeps at most one host, and a borrowed certificate stays usable
 * until released. */
START_TEST(test_retired_mint_empties_its_cache)
{
    struct test_tmpdir t;
    struct tls_ca *ca = make_ca(&t, NULL);
    struct tls_mint *m = new_mint(ca, 10, 1u << 20);
    void *held, *ref;
    char err[256], host[32];
    struct tls_mint_stats st;
    ck_assert_ptr_nonnull(tls_mint_get(m, "held.example", &held, err, sizeof(err)));
    for (int i = 0; i < 5; i++) {
        snprintf(host, sizeof(host), "h%d.example", i);
        ck_assert_msg(tls_mint_get(m, host, &ref, err, sizeof(err)) != NULL, "%s", err);
        tls_mint_release(m, ref);
    }
    tls_mint_stats(m, &st);
    ck_assert_uint_eq(st.entries, 6);
    tls_mint_retire(m);
    tls_mint_stats(m, &st);
    ck_assert_uint_eq(st.entries, 0);
    ck_assert_uint_eq(st.bytes, 0);
    /* A worker that read the old mint before the switch still gets certificates. */
    for (int i = 0; i < 3; i++) {
        snprintf(host, sizeof(host), "late%d.example", i);
        ck_assert_msg(tls_mint_get(m, host, &ref, err, sizeof(err)) != NULL, "%s", err);
        tls_mint_release(m, ref);
    }
    tls_mint_stats(m, &st);
    ck_assert_uint_le(st.entries, 1);
    tls_mint_release(m, held); /* freed here: uncached and no longer borrowed (ASan checks) */
    tls_mint_free(m);
    tls_ca_free(ca);
    test_tmpdir_remove(&t);
}
END_TEST

/* A CA that ends sooner than TLS_MINT_DAYS: the leaf ends with it, not after. */
START_TEST(test_minted_certificate_ends_no_later_than_a_short_ca)
{
    struct test_tmpdir t;
    struct tls_ca *ca = make_ca(&t, NULL);
    ca->not_after = time(NULL) + 10 * 86400; /* as if the CA ended in ten days */
    struct tls_mint *m = new_mint(ca, 10, 1u << 20);
    void *ref;
    char err[256];
    gnutls_certificate_credentials_t cred =
        tls_mint_get(m, "short.example", &ref, err, sizeof(err));
    ck_assert_msg(cred != NULL, "%s", err);
    gnutls_x509_crt_t crt = cred_crt(cred);
    ck_assert(gnutls_x509_crt_get_expiration_time(crt) <= ca->not_after);
    gnutls_x509_crt_deinit(crt);
    tls_mint_release(m, ref);
    tls_mint_free(m);
    tls_ca_free(ca);
    test_tmpdir_remove(&t);
}
END_TEST

static gnutls_certificate_credentials_t get(struct tls_mint *m, const char *host, void **ref)
{
    char err[256] = "";
    gnutls_certificate_credentials_t cred = tls_mint_get(m, host, ref, err, sizeof(err));
    ck_assert_msg(cred != NULL, "%s: %s", host, err);
    return cred;
}

START_TEST(test_cache_hits_misses_and_evicts_by_count)
{
    struct test_tmpdir t;
    struct tls_ca *ca = make_ca(&t, NULL);
    struct tls_mint *m = new_mint(ca, 2, 1u << 30);
    struct tls_mint_stats st;
    void *ra, *rb, *rc, *ra2;
    gnutls_certificate_credentials_t a = get(m, "a.example", &ra);
    tls_mint_release(m, ra);
    ck_assert_ptr_eq(get(m, "a.example", &ra2), a); /* the same credentials: a hit */
    tls_mint_release(m, ra2);
    get(m, "b.example", &rb);
    tls_mint_release(m, rb);
    tls_mint_stats(m, &st);
    ck_assert_uint_eq(st.hits, 1);
    ck_assert_uint_eq(st.misses, 2);
    ck_assert_uint_eq(st.entries, 2);
    ck_assert_uint_eq(st.evictions, 0);
    /* a was used before b: the third host pushes a out, b stays */
    get(m, "c.example", &rc);
    tls_mint_release(m, rc);
    tls_mint_stats(m, &st);
    ck_assert_uint_eq(st.entries, 2);
    ck_assert_uint_eq(st.evictions, 1);
    get(m, "b.example", &rb);
    tls_mint_release(m, rb);
    tls_mint_stats(m, &st);
    ck_assert_uint_eq(st.hits, 2);
    get(m, "a.example", &ra);
    tls_mint_release(m, ra);
    tls_mint_stats(m, &st);
    ck_assert_uint_eq(st.misses, 4); /* a was minted again */
    ck_assert_uint_eq(st.evictions, 2);
    ck_assert_uint_eq(st.max_entries, 2);
    tls_mint_free(m);
    tls_ca_free(ca);
    test_tmpdir_remove(&t);
}
END_TEST

START_TEST(test_cache_evicts_by_bytes)
{
    struct test_tmpdir t;
    struct tls_ca *ca = make_ca(&t, NULL);
    /* Measure one entry, then allow two and a half of them. */
    struct tls_mint *probe = new_mint(ca, 10, 1u << 30);
    void *r;
    get(probe, "h0.example", &r);
    tls_mint_release(probe, r);
    struct tls_mint_stats st;
    tls_mint_stats(probe, &st);
    size_t one = st.bytes;
    ck_assert_uint_gt(one, 0);
    tls_mint_free(probe);

    struct tls_mint *m = new_mint(ca, 1000, one * 5 / 2);
    const char *hosts[] = {"h1.example", "h2.example", "h3.example", "h4.example"};
    for (size_t i = 0; i < 4; i++) {
        get(m, hosts[i], &r);
        tls_mint_release(m, r);
        tls_mint_stats(m, &st);
        ck_assert_uint_le(st.bytes, st.max_bytes);
    }
    ck_assert_uint_eq(st.entries, 2);
    ck_assert_uint_eq(st.evictions, 2);
    /* ECDSA signatures differ in length by a byte or two */
    ck_assert_uint_le(st.bytes, 2 * one + 16);
    ck_assert_uint_ge(st.bytes, 2 * one - 16);
    get(m, "h4.example", &r); /* the newest two stayed */
    tls_mint_release(m, r);
    get(m, "h3.example", &r);
    tls_mint_release(m, r);
    tls_mint_stats(m, &st);
    ck_assert_uint_eq(st.hits, 2);
    tls_mint_free(m);
    tls_ca_free(ca);
    test_tmpdir_remove(&t);
}
END_TEST

/* An entry evicted while a handshake borrows it stays whole until released (ASan in the
 * sanitizer build says whether it was freed early or never). */
START_TEST(test_borrowed_entry_outlives_its_eviction)
{
    struct test_tmpdir t;
    struct tls_ca *ca = make_ca(&t, NULL);
    struct tls_mint *m = new_mint(ca, 1, 1u << 30);
    void *ra, *rb;
    gnutls_certificate_credentials_t a = get(m, "a.example", &ra);
    get(m, "b.example", &rb); /* evicts a, which is borrowed */
    struct tls_mint_stats st;
    tls_mint_stats(m, &st);
    ck_assert_uint_eq(st.evictions, 1);
    ck_assert_uint_eq(st.entries, 1);
    gnutls_x509_crt_t crt = cred_crt(a); /* still readable */
    ck_assert(gnutls_x509_crt_check_hostname(crt, "a.example"));
    gnutls_x509_crt_deinit(crt);
    void *ra2;
    gnutls_certificate_credentials_t a2 = get(m, "a.example", &ra2);
    ck_assert_ptr_ne(a2, a); /* a new one: the old is out of the cache */
    tls_mint_release(m, ra);
    tls_mint_release(m, rb);
    tls_mint_release(m, ra2);
    tls_mint_free(m);
    tls_ca_free(ca);
    test_tmpdir_remove(&t);
}
END_TEST

/* tls_mint_entry_bytes against the heap: 200 entries cost about what they are counted as. */
START_TEST(test_entry_bytes_match_the_heap)
{
    struct test_tmpdir t;
    struct tls_ca *ca = make_ca(&t, NULL);
    struct tls_mint *m = new_mint(ca, 1000, 1u << 30);
    void *r;
    get(m, "warm.example", &r); /* first-use allocations of GnuTLS out of the way */
    tls_mint_release(m, r);
    struct mallinfo2 before = mallinfo2();
    for (int i = 0; i < 200; i++) {
        char host[64];
        snprintf(host, sizeof(host), "host%03d.example", i);
        get(m, host, &r);
        tls_mint_release(m, r);
    }
    struct mallinfo2 after = mallinfo2();
    struct tls_mint_stats st;
    tls_mint_stats(m, &st);
    size_t heap = (after.uordblks - before.uordblks) / 200;
    size_t counted = st.bytes / st.entries;
    /* Under a sanitizer the heap is its own, and mallinfo2 says nothing: skip there. */
    if (after.uordblks > before.uordblks)
        ck_assert_msg(counted >= heap / 2 && counted <= heap * 2, "heap %zu per entry, counted %zu",
                      heap, counted);
    tls_mint_free(m);
    tls_ca_free(ca);
    test_tmpdir_remove(&t);
}
END_TEST

struct worker_arg {
    struct tls_mint *m;
    int seed;
    int fails;
};

static void *hammer(void *p)
{
    struct worker_arg *a = p;
    for (int i = 0; i < 300; i++) {
        char host[64], err[256];
        snprintf(host, sizeof(host), "h%d.example", (i * 7 + a->seed) % 40);
        void *ref;
        gnutls_certificate_credentials_t cred = tls_mint_get(a->m, host, &ref, err, sizeof(err));
        if (!cred) {
            a->fails++;
            continue;
        }
        gnutls_datum_t der;
        if (gnutls_certificate_get_crt_raw(cred, 0, 0, &der) < 0 || der.size == 0)
            a->fails++;
        tls_mint_release(a->m, ref);
    }
    return NULL;
}

/* Four threads over 40 hosts with room for 16: every lookup answered, the counts add up. */
START_TEST(test_threads_share_the_cache)
{
    struct test_tmpdir t;
    struct tls_ca *ca = make_ca(&t, NULL);
    struct tls_mint *m = new_mint(ca, 16, 1u << 30);
    pthread_t th[4];
    struct worker_arg args[4];
    for (int i = 0; i < 4; i++) {
        args[i] = (struct worker_arg){m, i * 3, 0};
        pthread_create(&th[i], NULL, hammer, &args[i]);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        ck_assert_int_eq(args[i].fails, 0);
    }
    struct tls_mint_stats st;
    tls_mint_stats(m, &st);
    ck_assert_uint_eq(st.hits + st.misses, 4 * 300);
    ck_assert_uint_le(st.entries, 16);
    tls_mint_free(m);
    tls_ca_free(ca);
    test_tmpdir_remove(&t);
}
END_TEST

/* A client trusting only the CA, checking the name it asked for, completes a handshake with
 * a session started on minted credentials. */
static void client_trusting_the_ca_accepts_the_minted_certificate(bool prefix)
{
    struct test_tmpdir t;
    struct tls_ca *ca = make_ca(&t, NULL);
    struct tls_mint *m = new_mint(ca, 10, 1u << 20);
    void *ref;
    gnutls_certificate_credentials_t cred = get(m, "blocked.example", &ref);
    int sv[2];
    ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), 0);
    struct tls_session server = {0};
    ck_assert_int_eq(tls_mint_session_start(m, &server, cred, sv[0]), PX_OK);
    gnutls_session_t client;
    gnutls_certificate_credentials_t ccred;
    ck_assert_int_eq(gnutls_init(&client, GNUTLS_CLIENT | GNUTLS_NONBLOCK), 0);
    ck_assert_int_eq(gnutls_set_default_priority(client), 0);
    ck_assert_int_eq(gnutls_certificate_allocate_credentials(&ccred), 0);
    gnutls_datum_t cap = {(unsigned char *)ca->cert_pem, (unsigned)strlen(ca->cert_pem)};
    ck_assert_int_eq(gnutls_certificate_set_x509_trust_mem(ccred, &cap, GNUTLS_X509_FMT_PEM), 1);
    gnutls_credentials_set(client, GNUTLS_CRD_CERTIFICATE, ccred);
    gnutls_server_name_set(client, GNUTLS_NAME_DNS, "blocked.example", 15);
    gnutls_session_set_verify_cert(client, "blocked.example", 0);
    gnutls_transport_set_int(client, sv[1]);
    /* With prefix: the ClientHello is read before the session begins (as the peek does),
     * and handed to it as its first bytes. */
    unsigned char hello[16384];
    ssize_t hello_len = 0;
    if (prefix) {
        ck_assert_int_eq(gnutls_handshake(client), GNUTLS_E_AGAIN);
        hello_len = recv(sv[0], hello, sizeof(hello), 0);
        ck_assert_int_gt(hello_len, 0);
        tls_session_prefix(&server, hello, (size_t)hello_len);
        ck_assert_uint_eq(tls_session_prefix_left(&server), (size_t)hello_len);
    }
    int s = PX_AGAIN, c = GNUTLS_E_AGAIN;
    for (int i = 0; i < 1000 && (s != PX_OK || c != 0); i++) {
        if (c != 0) {
            c = gnutls_handshake(client);
            ck_assert_msg(c == 0 || c == GNUTLS_E_AGAIN, "client: %s", gnutls_strerror(c));
        }
        if (s != PX_OK) {
            bool rd = true, wr = true;
            s = tls_session_handshake(&server, &rd, &wr);
            ck_assert_msg(s != PX_ERR, "server: %s", tls_session_error(&server));
        }
    }
    ck_assert_int_eq(s, PX_OK);
    ck_assert_int_eq(c, 0);
    ck_assert_uint_eq(tls_session_prefix_left(&server), 0);
    /* A request and its answer through the session. */
    ck_assert_int_eq(gnutls_record_send(client, "GET / HTTP/1.1\r\n\r\n", 18), 18);
    char got[64];
    bool rd = true, wr = true;
    ssize_t n = tls_session_recv(&server, got, sizeof(got), &rd, &wr);
    ck_assert_int_eq(n, 18);
    ck_assert_mem_eq(got, "GET / HTTP/1.1\r\n\r\n", 18);
    ck_assert_int_eq(tls_session_send(&server, "HTTP/1.1 403", 12, &rd, &wr), 12);
    ssize_t back = GNUTLS_E_AGAIN;
    for (int i = 0; i < 1000 && back == GNUTLS_E_AGAIN; i++)
        back = gnutls_record_recv(client, got, sizeof(got));
    ck_assert_int_eq(back, 12);
    tls_session_end(&server);
    gnutls_deinit(client);
    gnutls_certificate_free_credentials(ccred);
    close(sv[0]);
    close(sv[1]);
    tls_mint_release(m, ref);
    tls_mint_free(m);
    tls_ca_free(ca);
    test_tmpdir_remove(&t);
}

START_TEST(test_client_trusting_the_ca_accepts_the_minted_certificate)
{
    client_trusting_the_ca_accepts_the_minted_certificate(false);
}
END_TEST

START_TEST(test_clienthello_read_before_the_session_is_its_first_input)
{
    client_trusting_the_ca_accepts_the_minted_certificate(true);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("mint");
    TCase *tc = tcase_create("ca and mint");
    tcase_add_test(tc, test_ca_init_keeps_key_private_and_refuses_a_second);
    tcase_add_test(tc, test_ca_import_takes_a_ca_and_refuses_what_cannot_sign);
    tcase_add_test(tc, test_concurrent_imports_without_replace_keep_one_pair);
    tcase_add_test(tc, test_minted_certificate_verifies_names_the_host_and_ends_with_the_ca);
    tcase_add_test(tc, test_minted_certificate_ends_no_later_than_a_short_ca);
    tcase_add_test(tc, test_cache_hits_misses_and_evicts_by_count);
    tcase_add_test(tc, test_cache_evicts_by_bytes);
    tcase_add_test(tc, test_borrowed_entry_outlives_its_eviction);
    tcase_add_test(tc, test_retired_mint_empties_its_cache);
    tcase_add_test(tc, test_entry_bytes_match_the_heap);
    tcase_add_test(tc, test_threads_share_the_cache);
    tcase_add_test(tc, test_client_trusting_the_ca_accepts_the_minted_certificate);
    tcase_add_test(tc, test_clienthello_read_before_the_session_is_its_first_input);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
