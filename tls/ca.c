/* tls ca: the local CA in the data folder (tls/ca.h). A kept or imported pair is checked the
 * same way before use: a CA certificate that may sign certificates, not expired, with the key
 * that belongs to it; so a bad file is refused with its reason and never half-used. */
#include "tls/ca.h"

#include <errno.h>
#include <fcntl.h>
#include <gnutls/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tls/file.h"
#include "tls/x509.h"

/* A made CA lasts ten years: clients trust it by hand, once. */
#define CA_DAYS 3650

static void ca_paths(const char *dir, char *cert, size_t certlen, char *key, size_t keylen)
{
    snprintf(cert, certlen, "%s/%s", dir, TLS_CA_CERT_FILE);
    snprintf(key, keylen, "%s/%s", dir, TLS_CA_KEY_FILE);
}

void tls_ca_free(struct tls_ca *ca)
{
    if (!ca)
        return;
    if (ca->crt)
        gnutls_x509_crt_deinit(ca->crt);
    if (ca->key)
        gnutls_privkey_deinit(ca->key);
    free(ca->cert_pem);
    free(ca);
}

bool tls_ca_present(const char *data_dir)
{
    char cert[4200], key[4200];
    ca_paths(data_dir, cert, sizeof(cert), key, sizeof(key));
    return access(cert, F_OK) == 0;
}

/* Fills the fingerprints of ca from its certificate. */
static int fingerprints(struct tls_ca *ca, char *err, size_t errlen)
{
    unsigned char md[32];
    size_t mdlen = sizeof(md);
    int r = gnutls_x509_crt_get_fingerprint(ca->crt, GNUTLS_DIG_SHA256, md, &mdlen);
    if (r < 0)
        return tls_x509_fail(r, "CA fingerprint", err, errlen);
    size_t o = 0;
    for (size_t i = 0; i < mdlen; i++)
        o += (size_t)snprintf(ca->sha256 + o, sizeof(ca->sha256) - o, i ? ":%02X" : "%02X", md[i]);

    gnutls_pubkey_t pub = NULL;
    gnutls_datum_t spki = {NULL, 0}, b64 = {NULL, 0};
    if ((r = gnutls_pubkey_init(&pub)) < 0 ||
        (r = gnutls_pubkey_import_x509(pub, ca->crt, 0)) < 0 ||
        (r = gnutls_pubkey_export2(pub, GNUTLS_X509_FMT_DER, &spki)) < 0 ||
        (r = gnutls_hash_fast(GNUTLS_DIG_SHA256, spki.data, spki.size, md)) < 0) {
        gnutls_free(spki.data);
        if (pub)
            gnutls_pubkey_deinit(pub);
        return tls_x509_fail(r, "CA public key", err, errlen);
    }
    gnutls_datum_t d = {md, 32};
    r = gnutls_base64_encode2(&d, &b64);
    gnutls_free(spki.data);
    gnutls_pubkey_deinit(pub);
    if (r < 0)
        return tls_x509_fail(r, "CA public key", err, errlen);
    snprintf(ca->spki_sha256, sizeof(ca->spki_sha256), "%.*s", (int)b64.size, b64.data);
    gnutls_free(b64.data);
    return 0;
}

/* Reads and checks a CA pair from PEM text. Returns the CA (cert_pem copied) or NULL with err
 * saying what is wrong, named after what (the file names, for the admin to find). */
static struct tls_ca *ca_from_pem(const char *cert_pem, const char *key_pem, const char *what,
                                  char *err, size_t errlen)
{
    struct tls_ca *ca = calloc(1, sizeof(*ca));
    if (!ca) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    gnutls_datum_t c = {(unsigned char *)cert_pem, (unsigned)strlen(cert_pem)};
    gnutls_datum_t k = {(unsigned char *)key_pem, (unsigned)strlen(key_pem)};
    int r;
    if ((r = gnutls_x509_crt_init(&ca->crt)) < 0) {
        tls_x509_fail(r, what, err, errlen);
        goto bad;
    }
    if ((r = gnutls_x509_crt_import(ca->crt, &c, GNUTLS_X509_FMT_PEM)) < 0) {
        snprintf(err, errlen, "%s: the certificate is not a PEM certificate (%s)", what,
                 gnutls_strerror(r));
        goto bad;
    }
    if ((r = gnutls_privkey_init(&ca->key)) < 0) {
        tls_x509_fail(r, what, err, errlen);
        goto bad;
    }
    if ((r = gnutls_privkey_import_x509_raw(ca->key, &k, GNUTLS_X509_FMT_PEM, NULL, 0)) < 0) {
        snprintf(err, errlen,
                 "%s: the key is not an unencrypted PEM private key (%s); an encrypted key: "
                 "openssl pkey -in KEY -out PLAIN",
                 what, gnutls_strerror(r));
        goto bad;
    }
    unsigned ca_flag = 0;
    if (gnutls_x509_crt_get_basic_constraints(ca->crt, NULL, &ca_flag, NULL) < 0 || !ca_flag) {
        snprintf(err, errlen, "%s: the certificate is not a CA certificate (basic constraints)",
                 what);
        goto bad;
    }
    unsigned usage = 0;
    r = gnutls_x509_crt_get_key_usage(ca->crt, &usage, NULL);
    if (r >= 0 && !(usage & GNUTLS_KEY_KEY_CERT_SIGN)) {
        snprintf(err, errlen, "%s: the certificate's key usage does not allow signing certificates",
                 what);
        goto bad;
    }
    ca->not_before = gnutls_x509_crt_get_activation_time(ca->crt);
    ca->not_after = gnutls_x509_crt_get_expiration_time(ca->crt);
    if (ca->not_after <= time(NULL)) {
        struct tm tm;
        char when[32];
        gmtime_r(&ca->not_after, &tm);
        strftime(when, sizeof(when), "%Y-%m-%d %H:%M UTC", &tm);
        snprintf(err, errlen, "%s: the CA certificate expired on %s", what, when);
        goto bad;
    }
    /* The key must be the certificate's: compare the public keys' identifiers. */
    unsigned char id1[64], id2[64];
    size_t n1 = sizeof(id1), n2 = sizeof(id2);
    gnutls_pubkey_t pub = NULL;
    if ((r = gnutls_x509_crt_get_key_id(ca->crt, 0, id1, &n1)) < 0 ||
        (r = gnutls_pubkey_init(&pub)) < 0 ||
        (r = gnutls_pubkey_import_privkey(pub, ca->key, 0, 0)) < 0 ||
        (r = gnutls_pubkey_get_key_id(pub, 0, id2, &n2)) < 0) {
        if (pub)
            gnutls_pubkey_deinit(pub);
        tls_x509_fail(r, what, err, errlen);
        goto bad;
    }
    gnutls_pubkey_deinit(pub);
    if (n1 != n2 || memcmp(id1, id2, n1) != 0) {
        snprintf(err, errlen, "%s: the key does not belong to the certificate", what);
        goto bad;
    }
    gnutls_datum_t dn = {NULL, 0};
    if (gnutls_x509_crt_get_dn3(ca->crt, &dn, 0) >= 0) {
        snprintf(ca->subject, sizeof(ca->subject), "%.*s", (int)dn.size, dn.data);
        gnutls_free(dn.data);
    }
    if (fingerprints(ca, err, errlen) < 0)
        goto bad;
    ca->cert_pem = strdup(cert_pem);
    if (!ca->cert_pem) {
        snprintf(err, errlen, "out of memory");
        goto bad;
    }
    return ca;
bad:
    tls_ca_free(ca);
    return NULL;
}

/* Frees a PEM key's text, wiping it first. */
static void free_key_text(char *s)
{
    if (s) {
        gnutls_memset(s, 0, strlen(s));
        free(s);
    }
}

struct tls_ca *tls_ca_load(const char *data_dir, char *err, size_t errlen)
{
    char cert_path[4200], key_path[4200];
    ca_paths(data_dir, cert_path, sizeof(cert_path), key_path, sizeof(key_path));
    char *cert = tls_file_read(cert_path);
    if (!cert) {
        if (errno == ENOENT)
            snprintf(err, errlen, "%s", TLS_CA_NONE);
        else
            snprintf(err, errlen, "%s: %s", cert_path, strerror(errno));
        return NULL;
    }
    char *key = tls_file_read(key_path);
    if (!key) {
        snprintf(err, errlen, "%s: %s", key_path, strerror(errno));
        free(cert);
        return NULL;
    }
    char what[300];
    snprintf(what, sizeof(what), "CA in %s", data_dir);
    struct tls_ca *ca = ca_from_pem(cert, key, what, err, errlen);
    free(cert);
    free_key_text(key);
    return ca;
}

char *tls_ca_cert_pem(const char *data_dir, char *err, size_t errlen)
{
    char cert_path[4200], key_path[4200];
    ca_paths(data_dir, cert_path, sizeof(cert_path), key_path, sizeof(key_path));
    char *cert = tls_file_read(cert_path);
    if (!cert) {
        if (errno == ENOENT)
            snprintf(err, errlen, "%s", TLS_CA_NONE);
        else
            snprintf(err, errlen, "%s: %s", cert_path, strerror(errno));
    }
    return cert;
}

/* Writes a checked pair into data_dir: the key first (0600), so a certificate on disk always
 * has its key beside it. Unless replace is set, only when data_dir holds no CA: the check and
 * the writes are one step under an exclusive lock on the folder (flock, so two importers,
 * threads of the admin server or processes, never both find it empty and mix their files).
 * Returns 0, -1 with err, or -2 with err when a CA is there and replace is not set. */
static int ca_write(const char *data_dir, const char *cert_pem, const char *key_pem, bool replace,
                    char *err, size_t errlen)
{
    char cert_path[4200], key_path[4200];
    int rc = -1;
    int dir = open(data_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

    if (dir < 0) {
        snprintf(err, errlen, "%s: %s", data_dir, strerror(errno));
        return -1;
    }
    while (flock(dir, LOCK_EX) < 0)
        if (errno != EINTR) {
            snprintf(err, errlen, "%s: cannot lock: %s", data_dir, strerror(errno));
            close(dir);
            return -1;
        }
    ca_paths(data_dir, cert_path, sizeof(cert_path), key_path, sizeof(key_path));
    if (!replace && tls_ca_present(data_dir)) {
        snprintf(err, errlen,
                 "a CA exists already in %s: every client that trusts it must then trust the "
                 "new one (replace it on purpose)",
                 data_dir);
        rc = -2;
    } else if (tls_file_write(key_path, key_pem, 0600, err, errlen) == 0 &&
               tls_file_write(cert_path, cert_pem, 0644, err, errlen) == 0) {
        rc = 0;
    }
    close(dir); /* and the lock with it */
    return rc;
}

int tls_ca_import_pem(const char *data_dir, const char *cert_pem, const char *key_pem, bool replace,
                      char *err, size_t errlen)
{
    struct tls_ca *ca = ca_from_pem(cert_pem, key_pem, "import", err, errlen);
    if (!ca)
        return -1;
    tls_ca_free(ca);
    return ca_write(data_dir, cert_pem, key_pem, replace, err, errlen);
}

int tls_ca_import(const char *data_dir, const char *cert_file, const char *key_file, bool replace,
                  char *err, size_t errlen)
{
    char *cert = tls_file_read(cert_file);
    if (!cert) {
        snprintf(err, errlen, "%s: %s", cert_file, strerror(errno));
        return -1;
    }
    char *key = tls_file_read(key_file);
    if (!key) {
        snprintf(err, errlen, "%s: %s", key_file, strerror(errno));
        free(cert);
        return -1;
    }
    int rc = tls_ca_import_pem(data_dir, cert, key, replace, err, errlen);
    free(cert);
    free_key_text(key);
    return rc;
}

int tls_ca_init(const char *data_dir, const char *common_name, char *err, size_t errlen)
{
    if (tls_ca_present(data_dir)) {
        snprintf(err, errlen,
                 "a CA exists already in %s (to replace it, remove %s and %s first: every "
                 "client that trusts it must then trust the new one)",
                 data_dir, TLS_CA_CERT_FILE, TLS_CA_KEY_FILE);
        return -1;
    }
    char cn[256];
    if (common_name && common_name[0]) {
        if (strlen(common_name) > 64) {
            snprintf(err, errlen, "CA name longer than 64 characters");
            return -1;
        }
        for (const char *p = common_name; *p; p++)
            if ((unsigned char)*p < 0x20 || *p == 0x7f) {
                snprintf(err, errlen, "CA name holds a control character");
                return -1;
            }
        snprintf(cn, sizeof(cn), "%s", common_name);
    } else {
        char host[256] = "";
        gethostname(host, sizeof(host) - 1);
        snprintf(cn, sizeof(cn), "proxyd CA on %.40s", host[0] ? host : "localhost");
    }
    gnutls_x509_privkey_t key = NULL;
    gnutls_x509_crt_t crt = NULL;
    char *cert_pem = NULL, *key_pem = NULL;
    unsigned char keyid[64];
    size_t keyidlen = sizeof(keyid);
    int r, rc = -1;
    if ((r = tls_x509_key_new(&key)) < 0) {
        tls_x509_fail(r, "making the CA key", err, errlen);
        goto out;
    }
    if ((r = tls_x509_crt_new(&crt, cn, time(NULL) + (time_t)CA_DAYS * 86400)) < 0 ||
        (r = gnutls_x509_crt_set_key(crt, key)) < 0 ||
        (r = gnutls_x509_crt_set_basic_constraints(crt, 1, 0)) < 0 ||
        (r = gnutls_x509_crt_set_key_usage(crt, GNUTLS_KEY_KEY_CERT_SIGN | GNUTLS_KEY_CRL_SIGN |
                                                    GNUTLS_KEY_DIGITAL_SIGNATURE)) < 0 ||
        (r = gnutls_x509_crt_get_key_id(crt, 0, keyid, &keyidlen)) < 0 ||
        (r = gnutls_x509_crt_set_subject_key_id(crt, keyid, keyidlen)) < 0 ||
        (r = tls_x509_self_signed_pem(crt, key, &cert_pem, &key_pem)) < 0) {
        tls_x509_fail(r, "making the CA certificate", err, errlen);
        goto out;
    }
    /* Checked again with the write: another init or import may have made one meanwhile. */
    rc = ca_write(data_dir, cert_pem, key_pem, false, err, errlen) == 0 ? 0 : -1;
out:
    free(cert_pem);
    free_key_text(key_pem);
    if (crt)
        gnutls_x509_crt_deinit(crt);
    if (key)
        gnutls_x509_privkey_deinit(key);
    return rc;
}
