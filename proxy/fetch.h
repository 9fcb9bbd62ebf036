/* fetch: proxyd's own downloads (the lists of list subscriptions, web-admin/wa_subs.c), made
 * the way a proxied request reaches an origin: names resolved by proxyd's c-ares resolver
 * (its --dns-server, its cache), every address weighed by origin_target_refusal before
 * anything connects, and again after every redirect. libcurl (GnuTLS flavour) speaks HTTP and
 * TLS, pinned to those addresses (CURLOPT_RESOLVE), with any other address vetoed when it
 * opens a socket; http and https only; no proxy from the environment. An https server is
 * verified against the system's store and env->ca_file (the --upstream-ca certificates, as
 * an inspected origin is).
 */
#ifndef PX_FETCH_H
#define PX_FETCH_H

#include <stddef.h>

#include "proxy/dns.h"
#include "proxy/origin.h"
#include "web-admin/wa.h"

#define FETCH_REDIRECTS_MAX 5

struct fetch_env {
    struct dns_cache *cache; /* borrowed: the workers' shared cache */
    const char *const *dns_servers;
    size_t ndns_servers;
    int dns_timeout_ms;
    int max_fds;               /* descriptors of the process: the resolver's loop watches any */
    struct origin_guard guard; /* its arrays borrowed: what a target may not be */
    int timeout_ms;            /* the whole download, redirects included */
    const char *ca_file;       /* CAs trusted beside the system's (--upstream-ca), or NULL */
};

/* curl_global_init's work: call once at start, before any other thread runs. PX_OK, or
 * PX_ERR. */
int fetch_init(void);

/* Downloads f->url (wa.h's wa_fetch: validators, size limit, stop flag in; status, body,
 * validators out). A redirect (301, 302, 303, 307, 308) is followed, at most
 * FETCH_REDIRECTS_MAX times, each new URL checked as the first. PX_OK when an answer came
 * (f->status; f->body, owned by the caller, for a 2xx); PX_ERR with f->err (no address,
 * every address refused, a timeout, too long a body, too many redirects). Blocks the calling
 * thread; any thread. */
int fetch_list(const struct fetch_env *env, struct wa_fetch *f);

#endif
