/* dns: per-worker c-ares resolvers and the answer cache they share. See dns.h.
 *
 * A lookup (struct dns_lookup) is one ares_getaddrinfo() call. c-ares owns it from that call
 * until its callback runs, which always happens once: with the answer, an error, or
 * ARES_EDESTRUCTION from ares_destroy(). The caller's handles (struct dns_query) are only
 * waiters hung on a lookup: requests for a name already being looked up on this worker join
 * that lookup, and cancelling a handle just unlinks and frees it, so c-ares never holds a
 * pointer the caller may forget.
 *
 * The hard bound on a lookup is enforced here, not left to c-ares: dns_resolver_tick() fails
 * the waiters of a lookup older than timeout_ms with DNS_TIMEOUT; the lookup itself lives on
 * until c-ares gives up (its per-try timeouts are sized to end just before that deadline) and
 * a late answer still fills the cache.
 */
#include "proxy/dns.h"

#include <ares.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/addr.h"
#include "base/clock.h"
#include "base/status.h"

#define DNS_MAX_TTL_S 300 /* cap on positive answers, so a changed record is seen in time */
#define DNS_TRIES 2       /* one retry: a lost UDP datagram should not cost the request */
#define DNS_PENDING_BUCKETS 256

/* An address without a port: cache entries are shared by requests for any port. */
struct dns_addr {
    sa_family_t family;
    union {
        struct in_addr v4;
        struct in6_addr v6;
    } ip;
};

struct dns_answer {
    enum dns_status status;
    size_t naddrs;
    struct dns_addr addrs[DNS_MAX_ADDRS];
};

/* ---------------------------------------------------------------------------------------- */
/* The shared cache                                                                         */

struct dns_entry {
    struct dns_entry *hnext;         /* hash chain */
    struct dns_entry *older, *newer; /* insertion order: eviction takes the oldest */
    int64_t expires_ms;
    uint32_t hash;
    struct dns_answer answer;
    char name[]; /* lower case, no trailing dot */
};

struct dns_cache {
    pthread_mutex_t lock;       /* guards everything below */
    struct dns_entry **buckets; /* owned; nbuckets is a power of two */
    size_t nbuckets;
    size_t count;
    size_t max_entries;
    struct dns_entry *oldest, *newest;
    int neg_ttl_s;
};

static uint32_t name_hash(const char *name)
{
    uint32_t h = 2166136261u; /* FNV-1a */
    for (const unsigned char *p = (const unsigned char *)name; *p; p++) {
        h ^= *p;
        h *= 16777619u;
    }
    return h;
}

struct dns_cache *dns_cache_new(size_t max_entries, int neg_ttl_s)
{
    struct dns_cache *c = calloc(1, sizeof(*c));
    if (!c)
        return NULL;
    c->nbuckets = 16;
    while (c->nbuckets < max_entries)
        c->nbuckets <<= 1;
    c->buckets = calloc(c->nbuckets, sizeof(*c->buckets));
    if (!c->buckets || pthread_mutex_init(&c->lock, NULL) != 0) {
        free(c->buckets);
        free(c);
        return NULL;
    }
    c->max_entries = max_entries;
    c->neg_ttl_s = neg_ttl_s < 0 ? 0 : neg_ttl_s;
    return c;
}

void dns_cache_free(struct dns_cache *c)
{
    if (!c)
        return;
    struct dns_entry *e = c->oldest;
    while (e) {
        struct dns_entry *next = e->newer;
        free(e);
        e = next;
    }
    pthread_mutex_destroy(&c->lock);
    free(c->buckets);
    free(c);
}

size_t dns_cache_size(struct dns_cache *c)
{
    pthread_mutex_lock(&c->lock);
    size_t n = c->count;
    pthread_mutex_unlock(&c->lock);
    return n;
}

/* Called with the lock held. */
static void cache_remove(struct dns_cache *c, struct dns_entry *e)
{
    struct dns_entry **pp = &c->buckets[e->hash & (c->nbuckets - 1)];
    while (*pp != e)
        pp = &(*pp)->hnext;
    *pp = e->hnext;
    if (e->older)
        e->older->newer = e->newer;
    else
        c->oldest = e->newer;
    if (e->newer)
        e->newer->older = e->older;
    else
        c->newest = e->older;
    c->count--;
    free(e);
}

/* Called with the lock held. Drops the entry if it has expired. */
static struct dns_entry *cache_find(struct dns_cache *c, const char *name, uint32_t hash,
                                    int64_t now_ms)
{
    for (struct dns_entry *e = c->buckets[hash & (c->nbuckets - 1)]; e; e = e->hnext) {
        if (e->hash != hash || strcmp(e->name, name) != 0)
            continue;
        if (e->expires_ms <= now_ms) {
            cache_remove(c, e);
            return NULL;
        }
        return e;
    }
    return NULL;
}

static bool cache_get(struct dns_cache *c, const char *name, uint32_t hash, struct dns_answer *out)
{
    int64_t now_ms = clock_mono_coarse_ms();
    pthread_mutex_lock(&c->lock);
    struct dns_entry *e = cache_find(c, name, hash, now_ms);
    if (e)
        *out = e->answer;
    pthread_mutex_unlock(&c->lock);
    return e != NULL;
}

static void cache_put(struct dns_cache *c, const char *name, uint32_t hash,
                      const struct dns_answer *a, int ttl_s)
{
    if (c->max_entries == 0 || ttl_s <= 0)
        return;
    size_t len = strlen(name);
    struct dns_entry *n = malloc(sizeof(*n) + len + 1);
    if (!n)
        return; /* a cache that cannot grow just answers less often */
    memcpy(n->name, name, len + 1);
    n->hash = hash;
    n->answer = *a;
    n->hnext = NULL;
    n->newer = NULL;

    int64_t now_ms = clock_mono_coarse_ms();
    n->expires_ms = now_ms + (int64_t)ttl_s * 1000;
    pthread_mutex_lock(&c->lock);
    struct dns_entry *old = cache_find(c, name, hash, now_ms);
    if (old)
        cache_remove(c, old);
    /* Full: drop the oldest insertion. With TTLs capped at DNS_MAX_TTL_S it is close to the
     * soonest to expire anyway, and finding it costs O(1). */
    while (c->count >= c->max_entries && c->oldest)
        cache_remove(c, c->oldest);
    struct dns_entry **bucket = &c->buckets[hash & (c->nbuckets - 1)];
    n->hnext = *bucket;
    *bucket = n;
    n->older = c->newest;
    if (c->newest)
        c->newest->newer = n;
    else
        c->oldest = n;
    c->newest = n;
    c->count++;
    pthread_mutex_unlock(&c->lock);
}

/* ---------------------------------------------------------------------------------------- */
/* Answers                                                                                  */

const char *dns_status_str(enum dns_status s)
{
    static const char *const names[DNS_STATUS_COUNT] = {
        [DNS_OK] = "ok",
        [DNS_NXDOMAIN] = "nxdomain",
        [DNS_TIMEOUT] = "timeout",
        [DNS_FAILED] = "failed",
    };
    return (unsigned)s < DNS_STATUS_COUNT ? names[s] : "?";
}

static void result_fill(struct dns_result *res, const struct dns_answer *a, uint16_t port)
{
    memset(res, 0, sizeof(*res));
    res->status = a->status;
    res->naddrs = a->naddrs;
    for (size_t i = 0; i < a->naddrs; i++) {
        if (a->addrs[i].family == AF_INET6) {
            struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&res->addrs[i];
            sin6->sin6_family = AF_INET6;
            sin6->sin6_port = htons(port);
            sin6->sin6_addr = a->addrs[i].ip.v6;
        } else {
            struct sockaddr_in *sin = (struct sockaddr_in *)&res->addrs[i];
            sin->sin_family = AF_INET;
            sin->sin_port = htons(port);
            sin->sin_addr = a->addrs[i].ip.v4;
        }
    }
}

static void answer_error(struct dns_answer *a, enum dns_status status)
{
    memset(a, 0, sizeof(*a));
    a->status = status;
}

static enum dns_status status_from_ares(int status)
{
    switch (status) {
    case ARES_SUCCESS:
        return DNS_OK;
    case ARES_ENOTFOUND:
    case ARES_ENODATA:
        return DNS_NXDOMAIN;
    case ARES_ETIMEOUT:
        return DNS_TIMEOUT;
    default:
        return DNS_FAILED;
    }
}

/* Fills *a from what c-ares found and returns how long it may be cached in seconds (0: not at
 * all). c-ares has already sorted the nodes (RFC 6724); within that order the two families
 * are interleaved so a dead family costs one connect attempt, not all of them, and the
 * family c-ares prefers (IPv6 whenever this host can reach it) goes first. */
static int answer_from_ares(struct dns_answer *a, int status, const struct ares_addrinfo *ai,
                            int neg_ttl_s)
{
    answer_error(a, status_from_ares(status));
    if (a->status != DNS_OK)
        return a->status == DNS_NXDOMAIN ? neg_ttl_s : 0;

    struct dns_addr v6[DNS_MAX_ADDRS], v4[DNS_MAX_ADDRS];
    size_t n6 = 0, n4 = 0;
    int first_family = 0;
    int ttl_s = DNS_MAX_TTL_S;
    for (const struct ares_addrinfo_node *n = ai ? ai->nodes : NULL; n; n = n->ai_next) {
        if (n->ai_family == AF_INET6 && n6 < DNS_MAX_ADDRS &&
            n->ai_addrlen >= sizeof(struct sockaddr_in6)) {
            v6[n6].family = AF_INET6;
            v6[n6++].ip.v6 = ((const struct sockaddr_in6 *)n->ai_addr)->sin6_addr;
        } else if (n->ai_family == AF_INET && n4 < DNS_MAX_ADDRS &&
                   n->ai_addrlen >= sizeof(struct sockaddr_in)) {
            v4[n4].family = AF_INET;
            v4[n4++].ip.v4 = ((const struct sockaddr_in *)n->ai_addr)->sin_addr;
        } else {
            continue;
        }
        if (!first_family)
            first_family = n->ai_family;
        if (n->ai_ttl < ttl_s)
            ttl_s = n->ai_ttl;
    }
    /* An alias expiring earlier than the addresses it leads to bounds them too. */
    for (const struct ares_addrinfo_cname *cn = ai ? ai->cnames : NULL; cn; cn = cn->next)
        if (cn->ttl < ttl_s)
            ttl_s = cn->ttl;

    if (n6 + n4 == 0) {
        a->status = DNS_NXDOMAIN;
        return neg_ttl_s;
    }
    const struct dns_addr *first = first_family == AF_INET ? v4 : v6;
    const struct dns_addr *second = first_family == AF_INET ? v6 : v4;
    size_t nfirst = first_family == AF_INET ? n4 : n6;
    size_t nsecond = first_family == AF_INET ? n6 : n4;
    for (size_t i = 0; a->naddrs < DNS_MAX_ADDRS && (i < nfirst || i < nsecond); i++) {
        if (i < nfirst)
            a->addrs[a->naddrs++] = first[i];
        if (i < nsecond && a->naddrs < DNS_MAX_ADDRS)
            a->addrs[a->naddrs++] = second[i];
    }
    return ttl_s < 1 ? 1 : ttl_s;
}

/* IP literals never reach c-ares or the cache: their binary address is the answer. */
static void literal_answer(const struct acl_host *host, struct dns_answer *a)
{
    memset(a, 0, sizeof(*a));
    if (host->kind == ACL_HOST_IPV4) {
        a->addrs[0].family = AF_INET;
        memcpy(&a->addrs[0].ip.v4, host->addr + 12, 4);
    } else {
        a->addrs[0].family = AF_INET6;
        memcpy(&a->addrs[0].ip.v6, host->addr, 16);
    }
    a->status = DNS_OK;
    a->naddrs = 1;
}

/* ---------------------------------------------------------------------------------------- */
/* Resolvers                                                                                */

struct dns_query {
    struct dns_query *prev, *next; /* waiters of the same lookup */
    struct dns_lookup *lookup;     /* borrowed: the lookup outlives its waiters */
    dns_cb cb;
    void *arg;
    uint16_t port;
};

struct dns_lookup {
    struct dns_resolver *r;           /* borrowed */
    struct dns_lookup *hnext;         /* pending table chain */
    struct dns_lookup *older, *newer; /* pending list, oldest (soonest deadline) first */
    struct dns_query *waiters;        /* owned, in arrival order */
    struct dns_query *last_waiter;
    int64_t deadline_ms;
    uint32_t hash;
    bool pending;  /* in the pending table: new requests for the name may join */
    bool starting; /* inside ares_getaddrinfo(): an answer now goes to early */
    bool answered_early;
    struct dns_answer early;
    char name[];
};

struct dns_resolver {
    struct ev_loop *loop;    /* borrowed; must outlive the resolver */
    struct dns_cache *cache; /* shared, borrowed; may be NULL */
    ares_channel channel;    /* owned */
    bool channel_ok;
    bool destroying;
    int timeout_ms;
    struct dns_lookup *oldest, *newest;
    struct dns_lookup *pending[DNS_PENDING_BUCKETS];
};

static pthread_once_t ares_once = PTHREAD_ONCE_INIT;
static int ares_lib_status = ARES_SUCCESS;

/* ares_library_init() is not thread-safe in c-ares 1.18; workers start resolvers at once. */
static void ares_lib_init(void)
{
    ares_lib_status = ares_library_init(ARES_LIB_INIT_ALL);
}

static void pending_unlink(struct dns_resolver *r, struct dns_lookup *l)
{
    if (!l->pending)
        return;
    struct dns_lookup **pp = &r->pending[l->hash % DNS_PENDING_BUCKETS];
    while (*pp != l)
        pp = &(*pp)->hnext;
    *pp = l->hnext;
    if (l->older)
        l->older->newer = l->newer;
    else
        r->oldest = l->newer;
    if (l->newer)
        l->newer->older = l->older;
    else
        r->newest = l->older;
    l->hnext = l->older = l->newer = NULL;
    l->pending = false;
}

static void pending_link(struct dns_resolver *r, struct dns_lookup *l)
{
    struct dns_lookup **bucket = &r->pending[l->hash % DNS_PENDING_BUCKETS];
    l->hnext = *bucket;
    *bucket = l;
    l->newer = NULL;
    l->older = r->newest;
    if (r->newest)
        r->newest->newer = l;
    else
        r->oldest = l;
    r->newest = l;
    l->pending = true;
}

static struct dns_lookup *pending_find(struct dns_resolver *r, const char *name, uint32_t hash)
{
    for (struct dns_lookup *l = r->pending[hash % DNS_PENDING_BUCKETS]; l; l = l->hnext)
        if (l->hash == hash && strcmp(l->name, name) == 0)
            return l;
    return NULL;
}

static void waiter_unlink(struct dns_query *q)
{
    struct dns_lookup *l = q->lookup;
    if (q->prev)
        q->prev->next = q->next;
    else
        l->waiters = q->next;
    if (q->next)
        q->next->prev = q->prev;
    else
        l->last_waiter = q->prev;
}

/* Hands the answer to every waiter. One waiter is unlinked before its callback runs, so a
 * callback may cancel other waiters of this lookup or start new lookups. */
static void waiters_notify(struct dns_lookup *l, const struct dns_answer *a)
{
    struct dns_query *q;
    while ((q = l->waiters) != NULL) {
        waiter_unlink(q);
        struct dns_result res;
        result_fill(&res, a, q->port);
        dns_cb cb = q->cb;
        void *arg = q->arg;
        free(q);
        cb(arg, &res);
    }
}

static void lookup_free(struct dns_lookup *l)
{
    struct dns_query *q;
    while ((q = l->waiters) != NULL) {
        waiter_unlink(q);
        free(q);
    }
    pending_unlink(l->r, l);
    free(l);
}

static void addrinfo_cb(void *arg, int status, int timeouts, struct ares_addrinfo *ai)
{
    struct dns_lookup *l = arg;
    struct dns_resolver *r = l->r;
    if (status == ARES_EDESTRUCTION || r->destroying) {
        if (ai)
            ares_freeaddrinfo(ai);
        lookup_free(l);
        return;
    }
    struct dns_answer a;
    int ttl_s = answer_from_ares(&a, status, ai, r->cache ? r->cache->neg_ttl_s : 0);
    if (ai)
        ares_freeaddrinfo(ai);
    if (r->cache)
        cache_put(r->cache, l->name, l->hash, &a, ttl_s);
    if (l->starting) {
        l->early = a;
        l->answered_early = true;
        return; /* dns_resolve() returns it and frees l */
    }
    pending_unlink(r, l);
    waiters_notify(l, &a);
    free(l);
}

static void sock_ready(struct ev_loop *loop, int fd, unsigned events, void *arg)
{
    struct dns_resolver *r = arg;
    /* On an error, reading is what makes c-ares notice it and move to another server. */
    ares_socket_t rfd = events & (EV_READ | EV_ERROR) ? fd : ARES_SOCKET_BAD;
    ares_socket_t wfd = events & EV_WRITE ? fd : ARES_SOCKET_BAD;
    ares_process_fd(r->channel, rfd, wfd);
}

/* c-ares calls this before it closes a socket, so the fd leaves epoll while still open. */
static void sock_state_cb(void *data, ares_socket_t fd, int readable, int writable)
{
    struct dns_resolver *r = data;
    if (!readable && !writable) {
        ev_io_del(r->loop, fd);
        return;
    }
    unsigned events = (readable ? EV_READ : 0u) | (writable ? EV_WRITE : 0u);
    /* Failure means fd >= the loop's max_fds: the query then ends by its timeout. */
    (void)ev_io_set(r->loop, fd, events, sock_ready, r);
}

/* Parses "IP", "IP:PORT", "IPv6", "[IPv6]" or "[IPv6]:PORT" (port 53 by default) into node.
 * Returns false with err filled. */
static bool server_parse(const char *s, struct ares_addr_port_node *node, char *err, size_t errlen)
{
    struct sockaddr_storage ss;
    socklen_t len;

    if (addr_parse(s, 53, &ss, &len) != PX_OK || addr_port(&ss) == 0) {
        snprintf(err, errlen, "dns server '%s': expected IP, IP:PORT or [IPv6]:PORT (port 1-65535)",
                 s);
        return false;
    }
    memset(node, 0, sizeof(*node));
    node->family = ss.ss_family;
    if (ss.ss_family == AF_INET)
        node->addr.addr4 = ((struct sockaddr_in *)&ss)->sin_addr;
    else
        memcpy(&node->addr.addr6, &((struct sockaddr_in6 *)&ss)->sin6_addr,
               sizeof(node->addr.addr6));
    node->udp_port = addr_port(&ss);
    node->tcp_port = node->udp_port;
    return true;
}

/* Counts the servers c-ares would take from resolv.conf, to size the per-try timeout. */
static int system_server_count(void)
{
    ares_channel probe;
    struct ares_options opts = {.flags = ARES_FLAG_NOSEARCH};
    if (ares_init_options(&probe, &opts, ARES_OPT_FLAGS) != ARES_SUCCESS)
        return 1;
    struct ares_addr_port_node *list = NULL;
    int n = 0;
    if (ares_get_servers_ports(probe, &list) == ARES_SUCCESS)
        for (struct ares_addr_port_node *p = list; p; p = p->next)
            n++;
    ares_free_data(list);
    ares_destroy(probe);
    return n > 0 ? n : 1;
}

struct dns_resolver *dns_resolver_new(struct ev_loop *loop, struct dns_cache *cache,
                                      const char *const *servers, size_t nservers, int timeout_ms,
                                      char *err, size_t errlen)
{
    if (timeout_ms <= 0) {
        snprintf(err, errlen, "dns timeout %d ms: must be positive", timeout_ms);
        return NULL;
    }
    pthread_once(&ares_once, ares_lib_init);
    if (ares_lib_status != ARES_SUCCESS) {
        snprintf(err, errlen, "c-ares init: %s", ares_strerror(ares_lib_status));
        return NULL;
    }
    struct ares_addr_port_node *nodes = NULL;
    if (nservers > 0) {
        nodes = calloc(nservers, sizeof(*nodes));
        if (!nodes) {
            snprintf(err, errlen, "dns servers: out of memory");
            return NULL;
        }
        for (size_t i = 0; i < nservers; i++) {
            if (!server_parse(servers[i], &nodes[i], err, errlen)) {
                free(nodes);
                return NULL;
            }
            nodes[i].next = i + 1 < nservers ? &nodes[i + 1] : NULL;
        }
    }
    struct dns_resolver *r = calloc(1, sizeof(*r));
    if (!r) {
        free(nodes);
        snprintf(err, errlen, "dns resolver: out of memory");
        return NULL;
    }
    r->loop = loop;
    r->cache = cache;
    r->timeout_ms = timeout_ms;

    /* c-ares tries each server DNS_TRIES times, doubling the timeout each round, so one
     * lookup lasts nservers * try_ms * (2^tries - 1). Size try_ms so that ends at 90% of
     * timeout_ms; the rest is slack for the tick that drives c-ares's timers. */
    int count = nservers > 0 ? (int)nservers : system_server_count();
    int try_ms = timeout_ms * 9 / 10 / (count * ((1 << DNS_TRIES) - 1));
    if (try_ms < 20)
        try_ms = 20;

    /* No search domains: the client chose the name it asked for (Squid's dns_defnames off),
     * and each search domain would add a round trip to every NXDOMAIN. "fb": /etc/hosts,
     * then DNS, so localhost keeps working with any server. */
    static char lookups[] = "fb";
    struct ares_options opts = {
        .flags = ARES_FLAG_STAYOPEN | ARES_FLAG_NOSEARCH,
        .timeout = try_ms,
        .tries = DNS_TRIES,
        .domains = NULL,
        .ndomains = 0,
        .lookups = lookups,
        .sock_state_cb = sock_state_cb,
        .sock_state_cb_data = r,
    };
    int mask = ARES_OPT_FLAGS | ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES | ARES_OPT_DOMAINS |
               ARES_OPT_LOOKUPS | ARES_OPT_SOCK_STATE_CB;
    int rc = ares_init_options(&r->channel, &opts, mask);
    if (rc != ARES_SUCCESS) {
        snprintf(err, errlen, "c-ares channel: %s", ares_strerror(rc));
        free(nodes);
        free(r);
        return NULL;
    }
    r->channel_ok = true;
    if (nodes) {
        rc = ares_set_servers_ports(r->channel, nodes);
        free(nodes);
        if (rc != ARES_SUCCESS) {
            snprintf(err, errlen, "dns servers: %s", ares_strerror(rc));
            dns_resolver_free(r);
            return NULL;
        }
    }
    return r;
}

void dns_resolver_free(struct dns_resolver *r)
{
    if (!r)
        return;
    /* ares_destroy() ends every query with ARES_EDESTRUCTION; addrinfo_cb then frees each
     * lookup and its waiters without calling anyone back. */
    r->destroying = true;
    if (r->channel_ok)
        ares_destroy(r->channel);
    free(r);
}

void dns_resolver_tick(struct dns_resolver *r)
{
    struct timeval tv;
    if (ares_timeout(r->channel, NULL, &tv) && tv.tv_sec == 0 && tv.tv_usec < 1000)
        ares_process_fd(r->channel, ARES_SOCKET_BAD, ARES_SOCKET_BAD);

    /* The hard bound: the lookup stays with c-ares, its waiters get their answer now. */
    int64_t now_ms = clock_mono_coarse_ms();
    struct dns_answer timeout;
    answer_error(&timeout, DNS_TIMEOUT);
    while (r->oldest && r->oldest->deadline_ms <= now_ms) {
        struct dns_lookup *l = r->oldest;
        pending_unlink(r, l);
        waiters_notify(l, &timeout);
    }
}

int dns_resolve(struct dns_resolver *r, const struct acl_host *host, uint16_t port, dns_cb cb,
                void *arg, struct dns_query **q, struct dns_result *now)
{
    struct dns_answer a;
    /* Canonical already: the key is the name as c-ares will be asked for it. */
    const char *key = host->text;
    *q = NULL;
    if (acl_host_is_ip(host)) {
        literal_answer(host, &a);
        result_fill(now, &a, port);
        return PX_OK;
    }
    if (host->len == 0) {
        answer_error(&a, DNS_FAILED);
        result_fill(now, &a, port);
        return PX_OK;
    }
    uint32_t hash = name_hash(key);
    if (r->cache && cache_get(r->cache, key, hash, &a)) {
        result_fill(now, &a, port);
        return PX_OK;
    }

    struct dns_query *w = calloc(1, sizeof(*w));
    if (!w)
        return PX_ERR;
    w->cb = cb;
    w->arg = arg;
    w->port = port;
    struct dns_lookup *l = pending_find(r, key, hash);
    if (!l) {
        size_t len = strlen(key);
        l = calloc(1, sizeof(*l) + len + 1);
        if (!l) {
            free(w);
            return PX_ERR;
        }
        memcpy(l->name, key, len + 1);
        l->r = r;
        l->hash = hash;
        l->deadline_ms = clock_mono_coarse_ms() + r->timeout_ms;
        struct ares_addrinfo_hints hints = {.ai_family = AF_UNSPEC};
        /* /etc/hosts answers, and some errors, arrive before ares_getaddrinfo() returns. */
        l->starting = true;
        ares_getaddrinfo(r->channel, key, NULL, &hints, addrinfo_cb, l);
        l->starting = false;
        if (l->answered_early) {
            result_fill(now, &l->early, port);
            free(l);
            free(w);
            return PX_OK;
        }
        pending_link(r, l);
    }
    w->lookup = l;
    w->prev = l->last_waiter;
    if (l->last_waiter)
        l->last_waiter->next = w;
    else
        l->waiters = w;
    l->last_waiter = w;
    *q = w;
    return PX_AGAIN;
}

void dns_cancel(struct dns_query *q)
{
    if (!q)
        return;
    waiter_unlink(q);
    free(q);
}
