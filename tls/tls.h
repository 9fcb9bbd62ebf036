/* tls: the TLS layer, on GnuTLS (docs/architecture.md says why GnuTLS). Besides this header's
 * two things below, the folder owns the office's local CA (tls/ca.h) and the per-host
 * certificates it signs, cached (tls/mint.h). This header's:
 *   - server credentials (struct tls_cred): a certificate and key given as files
 *     (--tls-cert/--tls-key), or one made by proxyd at first start and kept in the data
 *     folder (key 0600) for the next start; also handed to the admin server as PEM text;
 *   - a non-blocking server session (struct tls_session) that a connection's event loop drives
 *     with the readiness flags it already keeps: handshake, read, write, close_notify, each
 *     returning the PX_ status vocabulary (base/status.h) instead of blocking.
 * Nothing here prints or exits; errors come back as text in the caller's buffer. */
#ifndef PX_TLS_H
#define PX_TLS_H

#include <gnutls/gnutls.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/* The kept self-made certificate and key, in the data folder. */
#define TLS_SELF_CERT_FILE "tls-cert.pem"
#define TLS_SELF_KEY_FILE "tls-key.pem"

/* Shared read-only by every session once loaded. */
struct tls_cred {
    gnutls_certificate_credentials_t x509; /* owned */
    gnutls_priority_t priority;            /* owned: the system's defaults */
    gnutls_datum_t ticket_key;             /* owned: session tickets, this run only */
    char *cert_pem, *key_pem;              /* owned, NUL-terminated */
    char cert_path[4096];
};

struct tls_cred_options {
    const char *cert_file; /* PEM certificate (chain), or NULL for the self-made one */
    const char *key_file;  /* PEM private key; given together with cert_file or not at all */
    const char *data_dir;  /* where the self-made pair is kept */
    /* Names and addresses a self-made certificate is made for, besides localhost, 127.0.0.1,
     * ::1 and this machine's name (only when it is made; a kept one is reused as it is). */
    const char *const *names;
    size_t nnames;
};

/* Loads the certificate and key of o, or the kept self-made pair, or makes and keeps a new
 * one (also when the kept certificate has expired). *made says whether it made one.
 * Returns the credentials (tls_cred_free), or NULL with err filled. Main thread, at start;
 * the credentials are then read by any thread. */
struct tls_cred *tls_cred_load(const struct tls_cred_options *o, bool *made, char *err,
                               size_t errlen);
void tls_cred_free(struct tls_cred *cred);
/* The certificate (chain) and key as PEM text, borrowed from cred (libmicrohttpd's
 * MHD_OPTION_HTTPS_MEM_CERT and _KEY). */
const char *tls_cred_cert_pem(const struct tls_cred *cred);
const char *tls_cred_key_pem(const struct tls_cred *cred);
/* Where the certificate came from (a path), for the log and for clients to trust. */
const char *tls_cred_cert_path(const struct tls_cred *cred);

enum tls_state {
    TLS_NONE,      /* no TLS on this connection */
    TLS_HANDSHAKE, /* handshake under way */
    TLS_OPEN,      /* records flow both ways */
    TLS_SHUT,      /* our close_notify is sent (or tried): nothing more is written */
    TLS_FAILED,    /* a fatal error: the session is of no more use */
    TLS_STATE_COUNT
};

const char *tls_state_str(enum tls_state s);

/* One server-side session on a connected socket. Lives inside its connection (no allocation
 * of ours; GnuTLS allocates its own). A zeroed one is TLS_NONE. */
struct tls_session {
    gnutls_session_t gs; /* owned, NULL in TLS_NONE */
    enum tls_state state;
    int error; /* the last GnuTLS error, 0 if none */
    /* tls_session_prefix: the client's bytes read before the session began, taken first */
    int fd;
    const unsigned char *pre;
    size_t pre_len;
    /* tls_session_recv_held: a decrypted record lent by GnuTLS, and how much of it is taken */
    gnutls_packet_t held;
    size_t held_off;
};

/* Begins a server session on fd with cred (borrowed: must outlive the session), offering
 * ALPN http/1.1 only. Returns PX_OK (state TLS_HANDSHAKE) or PX_ERR (out of memory; t stays
 * TLS_NONE). */
int tls_session_start(struct tls_session *t, const struct tls_cred *cred, int fd);
/* The same with credentials held elsewhere (a minted certificate, tls/mint.h): x509,
 * priority and ticket_key borrowed for the session's life. */
int tls_session_start_x509(struct tls_session *t, gnutls_certificate_credentials_t x509,
                           gnutls_priority_t priority, const gnutls_datum_t *ticket_key, int fd);

/* TLS inside TLS: t, an open session, becomes a new server session (x509, priority and
 * ticket_key borrowed as by tls_session_start_x509) whose records travel inside the open one
 * instead of on the socket: the one open before is kept, owned by t, and ends with it
 * (tls_session_bye and _end act on both). The same calls drive t as any session, with the
 * socket's readiness flags. Returns PX_OK (state TLS_HANDSHAKE), or PX_ERR with t unchanged
 * (not open, nested already, out of memory). Only a connection that takes it pays for it:
 * the outer session is allocated here. */
int tls_session_nest(struct tls_session *t, gnutls_certificate_credentials_t x509,
                     gnutls_priority_t priority, const gnutls_datum_t *ticket_key);

/* Makes p[0 .. len) the first bytes the session reads, before the socket's: a ClientHello
 * that was read to decide what to do with the connection (intercepted TLS, a tunnel's first
 * bytes). Borrowed: p stays as it is until tls_session_prefix_left says 0 (the handshake
 * reads all of it: a client sends nothing more before the server's answer). Right after
 * tls_session_start*, before the handshake. */
void tls_session_prefix(struct tls_session *t, const void *p, size_t len);
/* Bytes of the prefix not read yet. */
size_t tls_session_prefix_left(const struct tls_session *t);

/* The readiness arguments of the calls below are the connection's edge-triggered flags for
 * fd: a call that would block clears the one GnuTLS waits for (the other is left alone), so
 * the caller calls again once that one is set. */

/* Moves the handshake on. Returns PX_OK once it is done (TLS_OPEN), PX_AGAIN when it waits
 * for readiness, PX_ERR when it failed (TLS_FAILED; tls_session_error says why). */
int tls_session_handshake(struct tls_session *t, bool *readable, bool *writable);

/* Reads up to len bytes of plaintext. Returns the count (> 0), 0 at the peer's end (its
 * close_notify, or the TCP end without one: the HTTP framing above tells whether that was
 * early), PX_AGAIN, or PX_ERR (TLS_FAILED). */
ssize_t tls_session_recv(struct tls_session *t, void *p, size_t len, bool *readable,
                         bool *writable);

/* Reads without a copy: *p is set to the plaintext of the next record (or what is left of the
 * one lent before), left in GnuTLS's own buffer and lent to the caller until
 * tls_session_release_held takes all of it (or the session ends), so that a relay can hand it
 * to another session's tls_session_send as it is. Returns its length (> 0); 0 when no record
 * is lent now, the end or a record that carried no data (a TLS 1.3 ticket): then read with
 * tls_session_recv, which tells them apart; PX_AGAIN (at once when nothing is lent and
 * *readable is false) or PX_ERR as tls_session_recv. */
ssize_t tls_session_recv_held(struct tls_session *t, const unsigned char **p, bool *readable,
                              bool *writable);
/* n more bytes of the lent record are taken; once all are, it goes back to GnuTLS. */
void tls_session_release_held(struct tls_session *t, size_t n);

/* Sends up to len bytes (at most one record). After PX_AGAIN the caller keeps the same bytes
 * at p and calls again with at least as many: GnuTLS has taken them and reports them sent
 * once the record is out. Returns the count sent (> 0), PX_AGAIN, or PX_ERR (TLS_FAILED). */
ssize_t tls_session_send(struct tls_session *t, const void *p, size_t len, bool *readable,
                         bool *writable);

/* Sends close_notify once, without waiting (best effort: a full socket drops it). Returns
 * PX_OK, or PX_ERR when the session cannot send it. State TLS_SHUT either way. */
int tls_session_bye(struct tls_session *t);

/* Ends the session (not the socket): back to TLS_NONE. Safe on any state. */
void tls_session_end(struct tls_session *t);

/* The text of the last error, "" if none. */
const char *tls_session_error(const struct tls_session *t);

#endif
