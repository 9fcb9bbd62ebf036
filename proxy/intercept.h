/* intercept: connections the gateway sent here without the client knowing: redirected
 * (--intercept: nftables `redirect`, iptables REDIRECT; the original destination comes from
 * SO_ORIGINAL_DST / IP6T_SO_ORIGINAL_DST) or diverted (--tproxy: TPROXY; the original
 * destination is the socket's own local address, and connections to the origin keep the
 * client's address where the kernel lets them).
 *
 * Every such connection goes to its original destination and nowhere else, whatever it
 * names. Its first bytes say what it is (state CONN_PEEK):
 *   a TLS ClientHello  the policy judges its server name (or the destination's address when
 *                      it has none) as scheme https; allowed, it is spliced to the original
 *                      destination; denied, it gets a TLS alert
 *   an HTTP request    origin-form with Host: the same policy, rewrite and log as a proxy
 *                      request, the host taken from Host (request.c); denied, the block page
 *   anything else, or  the policy judges the destination's address and port (scheme tcp);
 *   nothing in time    allowed, spliced, with a later ClientHello still judged by name
 * Every connection is one access-log row per request, `dest` its original destination.
 * Worker thread only. */
#ifndef PX_INTERCEPT_H
#define PX_INTERCEPT_H

#include <stdbool.h>
#include <sys/socket.h>

#include "proxy/listener.h"

struct conn;
struct acl_host;
struct h1_request;

/* The destination the client's connection fd was bound for, as the kernel kept it for a
 * listener of kind (INTERCEPT or TPROXY). Returns 0, or -1 (errno; ENOENT: the connection
 * was not redirected). Any thread. */
int intercept_original_dst(int fd, enum listener_kind kind, struct sockaddr_storage *out);

/* A connection accepted by an intercept or tproxy listener: its original destination noted
 * and its first bytes awaited (CONN_PEEK), or closed when it has none. */
void intercept_begin(struct conn *c);
/* The CONN_PEEK step. Returns whether the state moved on. */
bool intercept_step_peek(struct conn *c);
/* CONN_PEEK's deadline: what came is not enough to tell, so the connection is judged by its
 * destination and spliced. */
void intercept_peek_timeout(struct conn *c);

/* The tunnel's reading of held first bytes on a first_bytes_late connection (tunnel.c
 * hello_step): a ClientHello or an HTTP request, with nothing from the origin yet, starts the
 * connection over as if the peek had seen it. Returns 1 when the bytes are the tunnel's to
 * judge (first_bytes_late cleared), 0 to wait for more, -1 when c left the tunnel. */
int intercept_late_bytes(struct conn *c, bool ended);

/* The host of an intercepted origin-form request: Host's host, canonical, or the original
 * destination's address when the request has no Host (HTTP/1.0). Returns 0, or -1 with *why
 * set when Host names no host proxyd accepts. */
int intercept_request_host(const struct conn *c, const struct h1_request *req, struct acl_host *out,
                           const char **why);

#endif
