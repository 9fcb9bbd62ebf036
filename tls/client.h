/* tls client: a non-blocking client session toward an origin (the other end of an inspected
 * tunnel, or a port forward that speaks TLS to its target), and the trust it verifies the
 * origin's certificate against: the system's store plus the office's own CAs (--upstream-ca).
 *
 * The session is a struct tls_session (tls/tls.h) like the server's: the same handshake,
 * recv, send, bye and end calls drive it. The handshake offers the host as SNI (a DNS name;
 * none for an address) and the caller's ALPN (http/1.1 for an inspected origin); once it is done
 * the certificate is verified for the host, and a failure comes back as a reason a person can read
 * ("certificate expired", "certificate is for another name", "unknown issuer", "self-signed
 * certificate"). Nothing here prints or exits. */
#ifndef PX_TLS_CLIENT_H
#define PX_TLS_CLIENT_H

#include <stdbool.h>
#include <stddef.h>

#include "tls/tls.h"

/* What origins are verified against. Read-only once loaded: any thread may start sessions
 * with it. */
struct tls_trust;

/* The system's trust store (gnutls_certificate_set_x509_system_trust) plus every certificate
 * in the PEM files ca_files[0..n) (each a CA or a bundle). Returns the trust (tls_trust_free),
 * or NULL with err naming the file and what is wrong with it ("FILE: no certificate in it").
 * A system without a store is not an error: only the files are trusted then. Start-up. */
struct tls_trust *tls_trust_load(const char *const *ca_files, size_t n, char *err, size_t errlen);
void tls_trust_free(struct tls_trust *trust);
/* Certificates trusted (system and files), for the start-up log. */
unsigned tls_trust_count(const struct tls_trust *trust);

/* Begins a client session on the connected socket fd toward host (canonical: a DNS name or
 * an IP literal, NUL-terminated), offering alpn as the one protocol (NULL: no ALPN, for a port
 * forward whose protocol proxyd does not know). trust is borrowed and must outlive the session.
 * Returns PX_OK (state TLS_HANDSHAKE; drive it with tls_client_handshake) or PX_ERR (out of
 * memory; t stays TLS_NONE). */
int tls_client_start(struct tls_session *t, const struct tls_trust *trust, const char *host,
                     const char *alpn, int fd);

/* Moves the handshake on, then verifies the origin's certificate for host. Returns PX_OK
 * (TLS_OPEN, verified), PX_AGAIN (waits for the readiness tls_session_handshake says), or
 * PX_ERR (TLS_FAILED) with why filled: the verification's reason, or the handshake's error
 * ("TLS handshake failed: ..."). *verify_failed says whether the failure was the certificate's
 * (an answer for the user) rather than the connection's. */
int tls_client_handshake(struct tls_session *t, const char *host, bool *readable, bool *writable,
                         char *why, size_t whylen, bool *verify_failed);

/* The reason for a verification status (gnutls_certificate_verify_peers3's bits): the
 * causes joined by ", " ("certificate expired, unknown issuer"); self_signed turns "unknown
 * issuer" into "self-signed certificate". "" for 0. */
void tls_verify_reason(unsigned status, bool self_signed, const char *host, char *why,
                       size_t whylen);

#endif
