/* dns: asynchronous name resolution with c-ares. One resolver (c-ares channel) per worker,
 * driven by that worker's ev loop through the socket-state callback and ares_process_fd;
 * one cache shared by all workers (mutex-protected, TTL-respecting, negative entries kept
 * briefly). IP literals are answered at once without a query. No blocking call anywhere.
 */
#ifndef PX_DNS_H
#define PX_DNS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "acl/acl_host.h"
#include "base/status.h"
#include "proxy/ev.h"

#define DNS_MAX_ADDRS 8

enum dns_status {
    DNS_OK,
    DNS_NXDOMAIN, /* the name does not exist (or has no A/AAAA) */
    DNS_TIMEOUT,  /* no server answered in time */
    DNS_FAILED,   /* anything else (server failure, refused, bad name) */
    DNS_STATUS_COUNT
};
const char *dns_status_str(enum dns_status s); /* "ok", "nxdomain", "timeout", "failed" */

struct dns_result {
    enum dns_status status;
    /* IPv6 and IPv4 interleaved, IPv6 first whenever c-ares's RFC 6724 sort prefers it (it
     * does for any IPv6 address this host can reach; not for ULA fc00::/7 against IPv4). */
    size_t naddrs;
    struct sockaddr_storage addrs[DNS_MAX_ADDRS]; /* ports set to the requested port */
};

struct dns_cache;
/* max_entries bounds memory; negative answers are kept neg_ttl_s seconds. NULL on ENOMEM. */
struct dns_cache *dns_cache_new(size_t max_entries, int neg_ttl_s);
void dns_cache_free(struct dns_cache *cache);
size_t dns_cache_size(struct dns_cache *cache); /* any thread */

struct dns_resolver;
struct dns_query;

/* servers: "IP" or "IP:PORT" (IPv6 as "[::1]:53"); n == 0 uses /etc/resolv.conf.
 * timeout_ms bounds one whole lookup (all tries). Returns NULL with err filled. */
struct dns_resolver *dns_resolver_new(struct ev_loop *loop, struct dns_cache *cache,
                                      const char *const *servers, size_t nservers, int timeout_ms,
                                      char *err, size_t errlen);
void dns_resolver_free(struct dns_resolver *r); /* cancels pending queries without callbacks */

typedef void (*dns_cb)(void *arg, const struct dns_result *res);

/* Resolves host, in canonical form (acl_host_parse: the parser's output): an IP literal is
 * answered with its address, a name is looked up exactly as spelled there. If the answer is
 * at hand (IP literal or cache hit) fills *now and returns PX_OK without calling cb.
 * Otherwise starts a query, stores a handle in *q and returns PX_AGAIN; cb(arg, res) is
 * called later on the loop's thread, exactly once, unless dns_cancel(*q) is called first.
 * Returns PX_ERR if the query could not start (out of memory). */
int dns_resolve(struct dns_resolver *r, const struct acl_host *host, uint16_t port, dns_cb cb,
                void *arg, struct dns_query **q, struct dns_result *now);
/* The callback of q will not be called; q is invalid afterwards. */
void dns_cancel(struct dns_query *q);

/* Drives c-ares's retry timers and enforces timeout_ms: waiters of a lookup older than that
 * get DNS_TIMEOUT. Call it from the loop's tick (every 50-100 ms) on the loop's thread; the
 * tick interval is the resolution of every DNS timeout. May run callbacks. */
void dns_resolver_tick(struct dns_resolver *r);

#endif
