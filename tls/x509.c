/* tls x509: what every certificate proxyd makes has in common (tls/x509.h). */
#include "tls/x509.h"

#include <arpa/inet.h>
#include <gnutls/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int tls_x509_fail(int r, const char *what, char *err, size_t errlen)
{
    snprintf(err, errlen, "%s: %s", what, gnutls_strerror(r));
    return -1;
}

int tls_x509_key_new(gnutls_x509_privkey_t *key)
{
    int r = gnutls_x509_privkey_init(key);
    if (r < 0) {
        *key = NULL;
        return r;
    }
    r = gnutls_x509_privkey_generate(*key, GNUTLS_PK_ECDSA,
                                     GNUTLS_CURVE_TO_BITS(GNUTLS_ECC_CURVE_SECP256R1), 0);
    if (r < 0) {
        gnutls_x509_privkey_deinit(*key);
        *key = NULL;
    }
    return r;
}

int tls_x509_crt_new(gnutls_x509_crt_t *crt, const char *cn, time_t not_after)
{
    unsigned char serial[16];
    int r = gnutls_rnd(GNUTLS_RND_NONCE, serial, sizeof(serial));
    *crt = NULL;
    if (r < 0)
        return r;
    serial[0] &= 0x7f; /* a positive number */
    serial[0] |= 0x01; /* of full length */
    if ((r = gnutls_x509_crt_init(crt)) < 0) {
        *crt = NULL;
        return r;
    }
    if ((r = gnutls_x509_crt_set_version(*crt, 3)) < 0 ||
        (r = gnutls_x509_crt_set_serial(*crt, serial, sizeof(serial))) < 0 ||
        (r = gnutls_x509_crt_set_activation_time(*crt, time(NULL) - 3600)) < 0 ||
        (r = gnutls_x509_crt_set_expiration_time(*crt, not_after)) < 0 ||
        (r = gnutls_x509_crt_set_dn_by_oid(*crt, GNUTLS_OID_X520_ORGANIZATION_NAME, 0, "proxyd",
                                           6)) < 0 ||
        (cn && (r = gnutls_x509_crt_set_dn_by_oid(*crt, GNUTLS_OID_X520_COMMON_NAME, 0, cn,
                                                  (unsigned)strlen(cn))) < 0)) {
        gnutls_x509_crt_deinit(*crt);
        *crt = NULL;
    }
    return r < 0 ? r : 0;
}

int tls_x509_add_name(gnutls_x509_crt_t crt, const char *name)
{
    unsigned char ip[16];
    if (inet_pton(AF_INET, name, ip) == 1)
        return gnutls_x509_crt_set_subject_alt_name(crt, GNUTLS_SAN_IPADDRESS, ip, 4,
                                                    GNUTLS_FSAN_APPEND);
    if (inet_pton(AF_INET6, name, ip) == 1)
        return gnutls_x509_crt_set_subject_alt_name(crt, GNUTLS_SAN_IPADDRESS, ip, 16,
                                                    GNUTLS_FSAN_APPEND);
    return gnutls_x509_crt_set_subject_alt_name(crt, GNUTLS_SAN_DNSNAME, name,
                                                (unsigned)strlen(name), GNUTLS_FSAN_APPEND);
}

int tls_x509_self_signed_pem(gnutls_x509_crt_t crt, gnutls_x509_privkey_t key, char **cert_pem,
                             char **key_pem)
{
    gnutls_datum_t c = {NULL, 0}, k = {NULL, 0};
    int r;
    *cert_pem = *key_pem = NULL;
    if ((r = gnutls_x509_crt_sign2(crt, crt, key, GNUTLS_DIG_SHA256, 0)) >= 0 &&
        (r = gnutls_x509_crt_export2(crt, GNUTLS_X509_FMT_PEM, &c)) >= 0 &&
        (r = gnutls_x509_privkey_export2(key, GNUTLS_X509_FMT_PEM, &k)) >= 0) {
        *cert_pem = strndup((const char *)c.data, c.size);
        *key_pem = strndup((const char *)k.data, k.size);
        if (!*cert_pem || !*key_pem) {
            free(*cert_pem);
            if (*key_pem)
                gnutls_memset(*key_pem, 0, strlen(*key_pem));
            free(*key_pem);
            *cert_pem = *key_pem = NULL;
            r = GNUTLS_E_MEMORY_ERROR;
        }
    }
    if (k.data) {
        gnutls_memset(k.data, 0, k.size);
        gnutls_free(k.data);
    }
    gnutls_free(c.data);
    return r < 0 ? r : 0;
}
