/* base/stats.h: proxyd's counters, written once. The tables generate the worker's atomic
 * counters (proxy/worker.h: struct worker_stats), their sum over the workers
 * (proxy/proxyd_stats.c: proxyd_stats_read), the struct handed to the admin server
 * (web-admin/wa.h: struct wa_proxy_stats), the "proxy" object of GET /api/stats and the text
 * of GET /metrics (web-admin/wa_metrics.c), so a new counter is one line here and one
 * STAT_ADD where it happens.
 *
 * It lives in base/ because both ends must see it and neither may include the other's
 * folder: web-admin never includes proxy/, and the worker's own struct should not come from
 * the admin server's headers. It names no type of either side, only fields.
 *
 * Each name is a struct field, its JSON key and (prefixed "proxyd_", a counter suffixed
 * "_total" unless it ends so) its Prometheus name, which docs/api.md and scripts rely on:
 * rename none. X(name, kind, what): kind is counter (only grows) or gauge (a level now). */
#ifndef PX_BASE_STATS_H
#define PX_BASE_STATS_H

#include <stdint.h>

/* Counted by each worker (atomic_uint_fast64_t, relaxed) and summed over the workers. */
#define STATS_WORKER_TABLE                                                                         \
    X(connections_active, gauge, "client connections open now")                                    \
    X(connections_total, counter, "client connections accepted")                                   \
    X(requests_total, counter, "requests begun")                                                   \
    X(requests_denied, counter, "requests denied by a rule or the client allowlist")               \
    X(tunnels_active, gauge, "CONNECT and WebSocket tunnels open now")                             \
    X(bytes_up, counter, "bytes sent to origins")                                                  \
    X(bytes_down, counter, "bytes sent to clients")                                                \
    X(errors_parse, counter, "requests answered 400, 414 or 431")                                  \
    X(errors_upstream, counter, "requests answered 502 or 504")                                    \
    X(dns_lookups, counter, "origin name lookups (IP literals and cache hits included)")           \
    X(dns_failures, counter, "origin name lookups that found no address")                          \
    X(buffers_in_use, gauge, "32 KiB I/O buffers held by connections now (none while idle)")

/* Read once per snapshot from the process as a whole (the main thread's hook). */
#define STATS_PROCESS_TABLE                                                                        \
    X(dns_cache_entries, gauge, "names and answers in the shared DNS cache")                       \
    X(acl_generation, counter, "rule sets published since start")                                  \
    X(workers, gauge, "worker threads")                                                            \
    X(policy_version, gauge, "the policy store's version of the rule set in force")                \
    X(policy_age_seconds, gauge, "seconds since the rule set in force was put in force")           \
    X(mint_cache_entries, gauge, "certificates the local CA signed, in the cache")                 \
    X(mint_cache_bytes, gauge, "bytes the cached certificates are counted as")                     \
    X(mint_cache_hits, counter, "certificates handed out from the cache (this CA)")                \
    X(mint_cache_misses, counter, "certificates signed (this CA)")                                 \
    X(mint_cache_evictions, counter, "certificates pushed out of the cache (this CA)")             \
    X(fleet_nodes, gauge,                                                                          \
      "proxyd nodes running on this database, as this node's heartbeat last read them")            \
    X(fleet_nodes_lagging, gauge,                                                                  \
      "of them, lagging: behind the newest policy version, silent for 3 heartbeats, or sharing "   \
      "its name with another proxyd")                                                              \
    X(fleet_nodes_stopped, gauge, "proxyd nodes stopped cleanly in the last 7 days")

/* The access log writer's counters (storage/store.h: struct store_log_counters, summed by the
 * writer), under "log" in GET /api/stats and prefixed "proxyd_log_" in /metrics. */
#define STATS_LOG_TABLE                                                                            \
    X(queued, counter, "records accepted by the access log's queues")                              \
    X(written, counter, "access log rows committed")                                               \
    X(dropped_queue_full, counter, "records dropped because their worker's queue was full")        \
    X(dropped_db_error, counter, "records dropped because the database refused their batch")       \
    X(pending, gauge, "records accepted and not yet committed (queue depth)")                      \
    X(db_errors, counter, "access log batches the database refused")                               \
    X(spilled, gauge, "records waiting in the log spill (memory, file) for PostgreSQL to return")  \
    X(dropped_spill, counter, "records dropped because the log spill was full or unwritable")      \
    X(syslog_sent, counter, "access records sent to the --syslog target")                          \
    X(syslog_dropped, counter, "access records the --syslog target did not take at once (dropped)")

/* Counters by label, each a JSON object whose keys the proxy names from its own tables
 * (listener.h's refusals and kinds, conn_close.h's close reasons, conn.h's states, auth.h's
 * counters, store.h's decisions). labels: the Prometheus label names, comma-separated; with
 * several, the JSON key joins the values with '/' ("allow/2xx/forward"), and a combination
 * appears once it has counted something. */
#define STATS_GROUP_TABLE                                                                          \
    X(connections_refused, counter, "reason", "connections closed unread at accept, by reason")    \
    X(closes, counter, "reason", "client connections closed, by reason")                           \
    X(auth, counter, "counter", "proxy password checks (Proxy-Authorization)")                     \
    X(connections_by_state, gauge, "state", "client connections open now, by state")               \
    X(requests_finished, counter, "decision,status,listener",                                      \
      "requests finished (access records), by decision, status class and listener kind")

/* Latency histograms, kept per worker as counts per bucket and summed. Prometheus names get
 * "_seconds" appended; the JSON shows count and sum_ns. */
#define STATS_HISTOGRAM_TABLE                                                                      \
    X(dns_lookup, "origin name lookups sent to a DNS server, until answered or failed")            \
    X(acl_eval, "access rule evaluations (acl_eval) of a request")

/* Upper bounds of the histogram buckets in nanoseconds, ascending; a last bucket (+Inf)
 * follows. */
#define STATS_BUCKETS_NS                                                                           \
    B(250)                                                                                         \
    B(500)                                                                                         \
    B(1000)                                                                                        \
    B(2500)                                                                                        \
    B(5000)                                                                                        \
    B(10000)                                                                                       \
    B(25000)                                                                                       \
    B(50000)                                                                                       \
    B(100000)                                                                                      \
    B(250000)                                                                                      \
    B(500000)                                                                                      \
    B(1000000)                                                                                     \
    B(2500000)                                                                                     \
    B(5000000)                                                                                     \
    B(10000000)                                                                                    \
    B(25000000)                                                                                    \
    B(50000000)                                                                                    \
    B(100000000)                                                                                   \
    B(250000000)                                                                                   \
    B(500000000)                                                                                   \
    B(1000000000)                                                                                  \
    B(2500000000)                                                                                  \
    B(5000000000)                                                                                  \
    B(10000000000)

#define B(ns) +1
enum { STATS_NBUCKETS = 0 STATS_BUCKETS_NS + 1 }; /* + the +Inf bucket */
#undef B

/* The bucket of a duration: the first whose bound is at least ns, or the +Inf one. */
static inline unsigned stats_bucket(uint64_t ns)
{
    static const uint64_t bound[] = {
#define B(n) n##ULL,
        STATS_BUCKETS_NS
#undef B
    };
    unsigned i = 0;

    while (i < sizeof(bound) / sizeof(bound[0]) && ns > bound[i])
        i++;
    return i;
}

#endif
