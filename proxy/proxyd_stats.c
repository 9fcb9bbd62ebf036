/* proxyd_stats: the running proxy's figures and readiness for the admin server
 * (proxyd_stats.h). */
#include "proxy/proxyd_stats.h"

#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "base/clock.h"
#include "base/stats.h"
#include "proxy/auth.h"
#include "proxy/dns.h"
#include "proxy/listener.h"
#include "proxy/node_beat.h"
#include "proxy/proxyd.h"
#include "tls/mint.h"

_Static_assert(REFUSE_COUNT <= WA_MAX_COUNTERS, "refusal reasons exceed wa_counter_set");
_Static_assert(CLOSE_COUNT <= WA_MAX_COUNTERS, "close reasons exceed wa_counter_set");
#define X(name, what) +1
_Static_assert(0 AUTH_COUNTER_TABLE <= WA_MAX_COUNTERS, "auth counters exceed wa_counter_set");
#undef X

_Static_assert(CONN_STATE_COUNT <= WA_MAX_COUNTERS, "connection states exceed wa_counter_set");
_Static_assert(STORE_DECISION_COUNT *STATUS_CLASS_COUNT *LISTENER_KIND_COUNT <= WA_MAX_COUNTERS,
               "requests_finished exceeds wa_counter_set");

/* Adds n to counter i of set, named name (static). */
static void counter_add(struct wa_counter_set *set, unsigned i, const char *name, uint64_t n)
{
    set->c[i].label[0] = name;
    set->c[i].value += n;
    if (set->n <= i)
        set->n = i + 1;
}

/* Adds n to requests_finished's counter of (decision, status class, listener kind). */
static void finished_add(struct wa_counter_set *set, unsigned d, unsigned s, unsigned k, uint64_t n)
{
    unsigned i = (d * STATUS_CLASS_COUNT + s) * LISTENER_KIND_COUNT + k;

    /* Most combinations never happen (a listener kind not configured, a deny with 2xx):
     * they stay out of the JSON and /metrics until they do. */
    if (n == 0)
        return;
    set->c[i].label[0] = store_decision_str((enum store_decision)d);
    set->c[i].label[1] = conn_status_class_str(s);
    set->c[i].label[2] = listener_kind_str((enum listener_kind)k);
    set->c[i].value += n;
    if (set->n <= i)
        set->n = i + 1;
}

/* A close reason as a JSON key: the access log writes no error for a plain close. */
static const char *close_key(enum conn_close why)
{
    const char *s = conn_close_str(why);
    return *s ? s : "none";
}

/* Every worker's counters, summed. */
static void sum_workers(const struct proxyd *p, struct wa_proxy_stats *out)
{
    for (unsigned i = 0; i < p->nworkers; i++) {
        const struct worker_stats *s = &p->workers[i].stats;
#define X(name, kind, what) out->name += atomic_load_explicit(&s->name, memory_order_relaxed);
        STATS_WORKER_TABLE
#undef X
#define X(name, what)                                                                              \
    for (unsigned b = 0; b < STATS_NBUCKETS; b++)                                                  \
        out->name.buckets[b] += atomic_load_explicit(&s->name##_buckets[b], memory_order_relaxed); \
    out->name.sum_ns += atomic_load_explicit(&s->name##_sum_ns, memory_order_relaxed);
        STATS_HISTOGRAM_TABLE
#undef X
        for (unsigned st = 0; st < CONN_STATE_COUNT; st++)
            if (st != CONN_CLOSED) /* no longer open: never counted */
                counter_add(&out->connections_by_state, st, conn_state_str((enum conn_state)st),
                            atomic_load_explicit(&s->conn_states[st], memory_order_relaxed));
        for (unsigned d = 0; d < STORE_DECISION_COUNT; d++)
            for (unsigned sc = 0; sc < STATUS_CLASS_COUNT; sc++)
                for (unsigned k = 0; k < LISTENER_KIND_COUNT; k++)
                    finished_add(&out->requests_finished, d, sc, k,
                                 atomic_load_explicit(&s->requests_finished[d][sc][k],
                                                      memory_order_relaxed));
        for (unsigned r = 0; r < REFUSE_COUNT; r++)
            counter_add(&out->connections_refused, r, listener_refuse_str((enum listener_refuse)r),
                        atomic_load_explicit(&s->refused[r], memory_order_relaxed));
        for (unsigned c = 0; c < CLOSE_COUNT; c++)
            counter_add(&out->closes, c, close_key((enum conn_close)c),
                        atomic_load_explicit(&s->closes[c], memory_order_relaxed));
    }
}

static void sum_auth(struct auth *a, struct wa_counter_set *set)
{
    struct auth_counters ac;
    unsigned i = 0;

    auth_counters(a, &ac);
#define X(name, what) counter_add(set, i++, #name, ac.name);
    AUTH_COUNTER_TABLE
#undef X
}

void proxyd_stats_read(void *arg, struct wa_proxy_stats *out)
{
    struct proxyd *p = arg;
    memset(out, 0, sizeof(*out));
    out->started_ms = p->started_ms;
    sum_workers(p, out);
    out->dns_cache_entries = dns_cache_size(p->dns_cache);
    out->acl_generation = acl_live_generation(p->acl);
    out->workers = p->nworkers;
    int64_t version = atomic_load(&p->policy.in_force_version);
    int64_t since_ms = atomic_load(&p->policy.in_force_ms);
    out->policy_version = version > 0 ? (uint64_t)version : 0;
    out->policy_age_seconds = since_ms > 0 && clock_wall_ms() > since_ms
                                  ? (uint64_t)(clock_wall_ms() - since_ms) / 1000
                                  : 0;
    struct tls_mint *mint = atomic_load_explicit(&p->shared.mint, memory_order_acquire);
    if (mint) { /* a replaced one lives on until exit: safe to read */
        struct tls_mint_stats ms;
        tls_mint_stats(mint, &ms);
        out->mint_cache_entries = ms.entries;
        out->mint_cache_bytes = ms.bytes;
        out->mint_cache_hits = ms.hits;
        out->mint_cache_misses = ms.misses;
        out->mint_cache_evictions = ms.evictions;
    }
    node_beat_fleet(p->beat, &out->fleet_nodes, &out->fleet_nodes_lagging,
                    &out->fleet_nodes_stopped);
    if (p->auth)
        sum_auth(p->auth, &out->auth);
    if (p->log)
        store_log_counters(p->log, &out->log);
}

bool proxyd_ready(void *arg, char *why, size_t whylen)
{
    struct proxyd *p = arg;

    if (!atomic_load(&p->serving)) {
        snprintf(why, whylen, "not listening yet (starting or shutting down)");
        return false;
    }
    if (atomic_load(&p->policy.in_force_ms) == 0) {
        snprintf(why, whylen, "no policy in force yet");
        return false;
    }
    if (p->log && !store_log_alive(p->log)) {
        snprintf(why, whylen, "the access log's writer has not run for %d s",
                 STORE_LOG_STALL_MS / 1000);
        return false;
    }
    return true;
}
