/* tls ca: the office's local certificate authority, kept in the data folder (certificate
 * ca-cert.pem, key ca-key.pem 0600). It signs the per-host certificates of tls/mint.h, for
 * the HTTPS block page and inspected tunnels; clients trust it once (/ca.crt on the admin
 * server). It is made here (tls_ca_init: an ECDSA P-256 key, ten years) or imported from the
 * office's own PKI (tls_ca_import: a CA certificate and its unencrypted key, RSA or EC).
 * Nothing here prints; errors come back as text in the caller's buffer. */
#ifndef PX_TLS_CA_H
#define PX_TLS_CA_H

#include <gnutls/abstract.h>
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>
#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#define TLS_CA_CERT_FILE "ca-cert.pem"
#define TLS_CA_KEY_FILE "ca-key.pem"
/* tls_ca_load's err when the data folder holds no CA (not an error: inspection is off). */
#define TLS_CA_NONE "no CA"

/* A loaded CA. Read-only once loaded: any thread may sign with it (tls/mint.c). */
struct tls_ca {
    gnutls_x509_crt_t crt; /* owned */
    gnutls_privkey_t key;  /* owned */
    char *cert_pem;        /* owned, NUL-terminated: what /ca.crt serves */
    time_t not_before, not_after;
    char subject[256];    /* the certificate's DN, RFC 4514 text */
    char sha256[96];      /* fingerprint, "AB:CD:..." (what the install page says to compare) */
    char spki_sha256[48]; /* base64 SHA-256 of the public key (Chromium's SPKI lists) */
};

/* Loads the CA kept in data_dir. Returns it (tls_ca_free), or NULL with err filled:
 * exactly TLS_CA_NONE when there is none, else why the kept one is unusable. */
struct tls_ca *tls_ca_load(const char *data_dir, char *err, size_t errlen);
void tls_ca_free(struct tls_ca *ca);
/* Whether data_dir holds a CA (its certificate file exists), usable or not. */
bool tls_ca_present(const char *data_dir);

/* Makes a new CA in data_dir named common_name (NULL or "": "proxyd CA on HOST"). Refuses
 * when one is there already (an admin replaces a CA on purpose: remove the files first).
 * Returns 0, or -1 with err filled. */
int tls_ca_init(const char *data_dir, const char *common_name, char *err, size_t errlen);
/* Copies an existing CA into data_dir: cert_file (PEM, the CA's certificate: basic
 * constraints CA, may sign certificates, not expired) and key_file (its unencrypted PEM
 * key). A CA kept there is replaced only when replace is set: the check and the writes are one
 * step (of imports racing into an empty folder, one wins). Returns 0, -1 with err naming
 * what is wrong, or -2 (the pair checked and good) when a CA is there and replace is not set. */
int tls_ca_import(const char *data_dir, const char *cert_file, const char *key_file, bool replace,
                  char *err, size_t errlen);
/* The same from PEM text (the admin API receives the files' contents). */
int tls_ca_import_pem(const char *data_dir, const char *cert_pem, const char *key_pem, bool replace,
                      char *err, size_t errlen);
/* The CA certificate's PEM text as kept in data_dir (no key read: /ca.crt serves it to anyone).
 * Returns it (free) or NULL with err filled (TLS_CA_NONE when there is none). */
char *tls_ca_cert_pem(const char *data_dir, char *err, size_t errlen);

#endif
