/* origin: the way from an allowed request to a connected origin socket: target refusal (no
 * SSRF into this machine or odd addresses), resolve, connect (trying the addresses in turn),
 * and the idle origin connections kept for the next request, attached to their client or in
 * the worker's pool. Pool and refusal are pure functions over plain structs (unit-tested
 * without a worker); the rest runs on the connection's worker thread. */
#ifndef PX_ORIGIN_H
#define PX_ORIGIN_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

struct conn;
struct worker;

/* ---- target refusal ---- */

/* What a target address is weighed against: this machine's own addresses and proxyd's own
 * ports (all borrowed), and whether loopback and own addresses may be targets at all. */
struct origin_guard {
    const struct sockaddr_storage *local_addrs;
    size_t nlocal_addrs;
    const uint16_t *own_ports;
    size_t nown_ports;
    /* The forwards' ports as the table has them (0: none), read lock-free: a forward being
     * added is here before it listens, while own_ports catch up at the worker's next sync. */
    const atomic_uint_least16_t *claimed_ports;
    size_t nclaimed_ports;
    bool allow_loopback;
};

/* The guard of w's settings in force (borrowing from w->shared). */
struct origin_guard origin_guard_of(const struct worker *w);

/* The second check, on every resolved address (which defeats DNS rebinding): why ss (AF_INET
 * or AF_INET6 with its port) may not be a target, or NULL when it may. Link-local,
 * unspecified and multicast (and IPv4 240/4 and broadcast) are always refused; loopback and
 * this machine's own addresses only without g->allow_loopback, and proxyd's own ports there
 * always. An IPv4-mapped IPv6 address is judged as its IPv4 address. Returns a static string;
 * pure, any thread. */
const char *origin_target_refusal(const struct origin_guard *g, const struct sockaddr_storage *ss);

/* ---- the pool of idle origin connections ---- */

#define ORIGIN_POOL_MAX 64
/* Idle origin connections a worker keeps attached to their clients (between a client's
 * requests, for its next one). */
#define WORKER_MAX_ATTACHED 1024

struct origin_idle {
    struct sockaddr_storage addr;
    int fd; /* owned by the pool */
    int64_t since_ms;
};

/* Idle origin connections of a worker, any client's to take. Zero-initialised when empty. */
struct origin_pool {
    struct origin_idle idle[ORIGIN_POOL_MAX];
    size_t n;
};

/* Keeps fd, connected to addr, from now_ms on. Returns true (the pool owns fd), or false when
 * the pool is full (the caller still owns fd). */
bool origin_pool_put(struct origin_pool *p, int fd, const struct sockaddr_storage *addr,
                     int64_t now_ms);
/* Takes the most recently kept connection to addr (same family, address and port). Returns
 * its fd (the caller owns it), or -1 when there is none. It is not checked for life. */
int origin_pool_take(struct origin_pool *p, const struct sockaddr_storage *addr);
/* Closes the connections idle for more than max_idle_ms. Returns how many. */
size_t origin_pool_expire(struct origin_pool *p, int64_t now_ms, int64_t max_idle_ms);
/* Closes every connection of the pool. */
void origin_pool_clear(struct origin_pool *p);

/* ---- a connection's origin (worker thread) ---- */

/* The CONN_RESOLVE step: looks up c->host, or uses an answer at hand, and goes on to the
 * address decision and connect; a failed lookup is answered 502. An intercepted connection's
 * only address is its original destination (with --intercept-host-strict an HTTP request's
 * host is looked up first, and one that does not name that address is answered 409). */
void origin_resolve(struct conn *c);
/* "IP:PORT" or "[IPv6]:PORT" of ss into out (cap bytes; 54 hold any). */
void origin_format_addr(const struct sockaddr_storage *ss, char *out, size_t cap);
/* Tries c->req->addrs from c->addr_next on: a kept connection to the address when that is safe,
 * else a new non-blocking connect (state CONN_CONNECT). Connected: state CONN_RELAY, or a
 * tunnel for CONNECT. No address left: 502 (503 when out of descriptors). */
void origin_connect(struct conn *c);
/* The origin socket of a connect in progress became writable: connected, or on to the next
 * address. */
void origin_connect_done(struct conn *c);
/* The CONN_ORIGIN_TLS step: the handshake with an inspected tunnel's origin, and the check of
 * its certificate. Verified, the request goes up (CONN_RELAY); a certificate that cannot be
 * trusted is answered with a page naming the reason and recorded as a denial with it (never
 * a silent pass). Returns whether the state moved on. */
bool origin_step_tls(struct conn *c);
/* Closes c's origin socket, if any (in use or kept). */
void origin_close(struct conn *c);
/* The request in flight is done with its origin socket. healthy: it may carry another
 * request. It is kept attached to c when c's client stays too, else put in the worker's pool
 * or closed. */
void origin_finish(struct conn *c, bool healthy);

#endif
