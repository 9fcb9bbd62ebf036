/* tls x509: what every certificate proxyd makes has in common (the self-made server pair,
 * cred.c; the local CA, ca.c; the certificates minted for inspected hosts, mint.c): a fresh
 * ECDSA P-256 key, the certificate's start (version, serial, validity, names), its subject
 * alternative names, the self-signed pair as PEM text, and GnuTLS errors as text. Internal to
 * tls/. */
#ifndef PX_TLS_X509_H
#define PX_TLS_X509_H

#include <gnutls/x509.h>
#include <stddef.h>
#include <time.h>

/* Writes "what: GnuTLS's text for r" into err. Returns -1. */
int tls_x509_fail(int r, const char *what, char *err, size_t errlen);

/* A new ECDSA P-256 key in *key. Returns 0, or a GnuTLS error with *key NULL. */
int tls_x509_key_new(gnutls_x509_privkey_t *key);

/* A new X.509 v3 certificate in *crt: a random 16-byte serial (positive and of full length,
 * unique per certificate: Firefox refuses two of one issuer and serial), valid from an hour
 * ago (clocks differ) until not_after, organization "proxyd" and common name cn (none when
 * cn is NULL). Key, constraints, usages and names are the caller's. Returns 0, or a GnuTLS
 * error with *crt NULL. */
int tls_x509_crt_new(gnutls_x509_crt_t *crt, const char *cn, time_t not_after);

/* Adds name to crt as a subject alternative name: an IP address when it reads as one, else a
 * DNS name. Returns 0 or a GnuTLS error. */
int tls_x509_add_name(gnutls_x509_crt_t crt, const char *name);

/* Signs crt with its own key (SHA-256) and exports both as PEM text: *cert_pem and *key_pem,
 * malloc'd (the caller wipes the key's before freeing it). GnuTLS's own copy of the key text
 * is wiped here. Returns 0, or a GnuTLS error with both NULL. */
int tls_x509_self_signed_pem(gnutls_x509_crt_t crt, gnutls_x509_privkey_t key, char **cert_pem,
                             char **key_pem);

#endif
