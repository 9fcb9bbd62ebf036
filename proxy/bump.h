/* bump: TLS toward the client in the name of the host it asked for, with a certificate the
 * local CA minted for that host (tls/mint.h). After the decision on a CONNECT (or an
 * intercepted ClientHello), this is the one place that starts the server session on the
 * client socket: the HTTPS block page uses it (here), and so does an inspected tunnel.
 *
 * Its steps run in state CONN_BUMP:
 *   a CONNECT's "200 Connection established", sent plain;
 *   the TLS handshake as the host (ALPN http/1.1), the client's bytes already read (a
 *   ClientHello the peek or the tunnel read) taken first; on the TLS proxy port the session
 *   runs inside the client's TLS to proxyd (tls_session_nest: TLS inside TLS), which only
 *   such a connection pays for;
 *   then the caller's continuation, with c->up empty and every later client byte decrypted
 *   (conn_client_recv/send go through c->tls as on a TLS listener).
 * A client that does not trust the CA ends the handshake with an alert: the connection
 * closes, its record as it was (a denial stays one deny row).
 * Worker thread only. */
#ifndef PX_BUMP_H
#define PX_BUMP_H

#include <stdbool.h>
#include <stddef.h>

struct conn;
struct tls_mint;

/* What runs once the handshake is done: it moves c to its next state (or closes it). */
typedef void bump_then_fn(struct conn *c);

/* The mint in force (the data folder holds a CA), or NULL. */
struct tls_mint *bump_mint(const struct conn *c);

/* Begins TLS toward c's client as host (canonical, acl_host_parse) after skip bytes at the
 * head of c->up that are not the client's TLS (the CONNECT head; the bytes after them are
 * the session's first input). The certificate is had now, so a failure leaves c as it was.
 * Returns 0 (c in CONN_BUMP, then(c) after the handshake), or -1 with err filled: no CA,
 * minting failed. */
int bump_begin(struct conn *c, const char *host, size_t skip, bump_then_fn *then, char *err,
               size_t errlen);
/* The CONN_BUMP step. Returns whether c moved on. */
bool bump_step(struct conn *c);
/* Lets the certificate go once the session has ended (conn_close). */
void bump_release(struct conn *c);

/* The HTTPS block page: for a denied CONNECT (its outcome recorded) when a CA exists, the
 * setting https-block-page is on (on either proxy port): the CONNECT is answered 200,
 * the TLS handshake made as the host, and the first request inside answered with the same
 * 403 block page plain HTTP gets, then the connection closes. Returns whether it took c
 * over (else the caller answers as before). */
bool bump_block_page(struct conn *c);

#endif
