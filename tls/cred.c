/* tls credentials: the server certificate and key, given or self-made. A self-made pair is an
 * ECDSA P-256 key (the cheapest handshake to sign) and a certificate for this machine's names,
 * written to the data folder with the key 0600 so that clients told to trust it once keep
 * trusting it across restarts. */
#include <errno.h>
#include <fcntl.h>
#include <gnutls/crypto.h>
#include <gnutls/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "base/status.h"
#include "tls/file.h"
#include "tls/tls.h"
#include "tls/x509.h"

/* Days a self-made certificate is valid: the most browsers accept for a server certificate. */
#define SELF_DAYS 397

const char *tls_cred_cert_pem(const struct tls_cred *cred)
{
    return cred->cert_pem;
}

const char *tls_cred_key_pem(const struct tls_cred *cred)
{
    return cred->key_pem;
}

const char *tls_cred_cert_path(const struct tls_cred *cred)
{
    return cred->cert_path;
}

void tls_cred_free(struct tls_cred *cred)
{
    if (!cred)
        return;
    if (cred->x509)
        gnutls_certificate_free_credentials(cred->x509);
    if (cred->priority)
        gnutls_priority_deinit(cred->priority);
    if (cred->ticket_key.data)
        gnutls_memset(cred->ticket_key.data, 0, cred->ticket_key.size);
    gnutls_free(cred->ticket_key.data);
    if (cred->key_pem)
        gnutls_memset(cred->key_pem, 0, strlen(cred->key_pem));
    free(cred->key_pem);
    free(cred->cert_pem);
    free(cred);
}

/* Whether name may go into a certificate as written: a host name or an address, not a
 * wildcard bind address. */
static bool usable_name(const char *name)
{
    if (!name[0] || strlen(name) > 253 || !strcmp(name, "0.0.0.0") || !strcmp(name, "::"))
        return false;
    for (const char *p = name; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
              *p == '.' || *p == '-' || *p == ':'))
            return false;
    return true;
}

/* Makes a key and a self-signed certificate for the names of o, as PEM text in *cert_pem and
 * *key_pem (malloc'd). Returns 0, or -1 with err filled. */
static int make_self(const struct tls_cred_options *o, char **cert_pem, char **key_pem, char *err,
                     size_t errlen)
{
    gnutls_x509_privkey_t key = NULL;
    gnutls_x509_crt_t crt = NULL;
    char host[256] = "";
    int r, rc = -1;

    gethostname(host, sizeof(host) - 1);
    const char *cn = usable_name(host) ? host : "localhost";
    if ((r = tls_x509_key_new(&key)) < 0) {
        tls_x509_fail(r, "making a key", err, errlen);
        goto out;
    }
    if ((r = tls_x509_crt_new(&crt, cn, time(NULL) + (time_t)SELF_DAYS * 86400)) < 0 ||
        (r = gnutls_x509_crt_set_key(crt, key)) < 0 ||
        (r = gnutls_x509_crt_set_basic_constraints(crt, 0, -1)) < 0 ||
        (r = gnutls_x509_crt_set_key_usage(crt, GNUTLS_KEY_DIGITAL_SIGNATURE)) < 0 ||
        (r = gnutls_x509_crt_set_key_purpose_oid(crt, GNUTLS_KP_TLS_WWW_SERVER, 0)) < 0) {
        tls_x509_fail(r, "making a certificate", err, errlen);
        goto out;
    }
    static const char *const always[] = {"localhost", "127.0.0.1", "::1"};
    for (size_t i = 0; i < sizeof(always) / sizeof(always[0]); i++)
        if ((r = tls_x509_add_name(crt, always[i])) < 0) {
            tls_x509_fail(r, always[i], err, errlen);
            goto out;
        }
    if (usable_name(host) && strcmp(host, "localhost") != 0 &&
        (r = tls_x509_add_name(crt, host)) < 0) {
        tls_x509_fail(r, host, err, errlen);
        goto out;
    }
    for (size_t i = 0; i < o->nnames; i++) {
        if (!usable_name(o->names[i]))
            continue;
        bool dup = !strcmp(o->names[i], host);
        for (size_t j = 0; j < sizeof(always) / sizeof(always[0]); j++)
            dup |= !strcmp(o->names[i], always[j]);
        if (!dup && (r = tls_x509_add_name(crt, o->names[i])) < 0) {
            tls_x509_fail(r, o->names[i], err, errlen);
            goto out;
        }
    }
    if ((r = tls_x509_self_signed_pem(crt, key, cert_pem, key_pem)) < 0) {
        tls_x509_fail(r, "signing the certificate", err, errlen);
        goto out;
    }
    rc = 0;
out:
    if (crt)
        gnutls_x509_crt_deinit(crt);
    if (key)
        gnutls_x509_privkey_deinit(key);
    return rc;
}

/* Whether the first certificate of pem is past its end (or unreadable). */
static bool expired(const char *pem)
{
    gnutls_x509_crt_t crt;
    gnutls_datum_t d = {(unsigned char *)pem, (unsigned)strlen(pem)};
    if (gnutls_x509_crt_init(&crt) < 0)
        return true;
    bool old = gnutls_x509_crt_import(crt, &d, GNUTLS_X509_FMT_PEM) < 0 ||
               gnutls_x509_crt_get_expiration_time(crt) <= time(NULL);
    gnutls_x509_crt_deinit(crt);
    return old;
}

/* The kept self-made pair, or a new one written beside it. */
static int load_self(struct tls_cred *cred, const struct tls_cred_options *o, bool *made, char *err,
                     size_t errlen)
{
    char key_path[4096];
    snprintf(cred->cert_path, sizeof(cred->cert_path), "%s/%s", o->data_dir, TLS_SELF_CERT_FILE);
    snprintf(key_path, sizeof(key_path), "%s/%s", o->data_dir, TLS_SELF_KEY_FILE);
    cred->cert_pem = tls_file_read(cred->cert_path);
    int cert_errno = errno;
    cred->key_pem = tls_file_read(key_path);
    int key_errno = errno;
    if (cred->cert_pem && cred->key_pem && !expired(cred->cert_pem))
        return 0;
    /* Missing (or expired) is remade; unreadable is the admin's to look at. */
    if ((!cred->cert_pem && cert_errno != ENOENT) || (!cred->key_pem && key_errno != ENOENT)) {
        bool cert_bad = !cred->cert_pem && cert_errno != ENOENT;
        snprintf(err, errlen, "%s: %s", cert_bad ? cred->cert_path : key_path,
                 strerror(cert_bad ? cert_errno : key_errno));
        return -1;
    }
    free(cred->cert_pem);
    free(cred->key_pem);
    cred->cert_pem = cred->key_pem = NULL;
    if (make_self(o, &cred->cert_pem, &cred->key_pem, err, errlen) < 0)
        return -1;
    /* The key first: a certificate on disk always has its key beside it. */
    if (tls_file_write(key_path, cred->key_pem, 0600, err, errlen) < 0 ||
        tls_file_write(cred->cert_path, cred->cert_pem, 0644, err, errlen) < 0)
        return -1;
    *made = true;
    return 0;
}

struct tls_cred *tls_cred_load(const struct tls_cred_options *o, bool *made, char *err,
                               size_t errlen)
{
    int r;
    *made = false;
    if (!o->cert_file != !o->key_file) {
        snprintf(err, errlen, "tls-cert and tls-key go together: give both or neither");
        return NULL;
    }
    struct tls_cred *cred = calloc(1, sizeof(*cred));
    if (!cred) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    if (o->cert_file) {
        snprintf(cred->cert_path, sizeof(cred->cert_path), "%s", o->cert_file);
        cred->cert_pem = tls_file_read(o->cert_file);
        if (!cred->cert_pem) {
            snprintf(err, errlen, "tls-cert %s: %s", o->cert_file, strerror(errno));
            goto fail;
        }
        cred->key_pem = tls_file_read(o->key_file);
        if (!cred->key_pem) {
            snprintf(err, errlen, "tls-key %s: %s", o->key_file, strerror(errno));
            goto fail;
        }
    } else if (load_self(cred, o, made, err, errlen) < 0) {
        goto fail;
    }
    gnutls_datum_t c = {(unsigned char *)cred->cert_pem, (unsigned)strlen(cred->cert_pem)};
    gnutls_datum_t k = {(unsigned char *)cred->key_pem, (unsigned)strlen(cred->key_pem)};
    if ((r = gnutls_certificate_allocate_credentials(&cred->x509)) < 0) {
        tls_x509_fail(r, "TLS credentials", err, errlen);
        goto fail;
    }
    if ((r = gnutls_certificate_set_x509_key_mem(cred->x509, &c, &k, GNUTLS_X509_FMT_PEM)) < 0) {
        snprintf(err, errlen, "%s and its key: %s", cred->cert_path, gnutls_strerror(r));
        goto fail;
    }
    if ((r = gnutls_priority_init2(&cred->priority, NULL, NULL, 0)) < 0 ||
        (r = gnutls_session_ticket_key_generate(&cred->ticket_key)) < 0) {
        tls_x509_fail(r, "TLS settings", err, errlen);
        goto fail;
    }
    return cred;
fail:
    tls_cred_free(cred);
    return NULL;
}
