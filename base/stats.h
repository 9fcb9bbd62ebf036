/* base/stats.h: proxyd's counters, written once. The table generates the worker's atomic
 * counters (proxy/worker.h: struct worker_stats), their sum over the workers (proxy/main.c:
 * hook_proxy_stats), the struct handed to the admin server (web-admin/wa.h: struct
 * wa_proxy_stats) and the "proxy" object of GET /api/stats (web-admin), so a new counter is
 * one line here and one STAT_ADD where it happens.
 *
 * It lives in base/ because both ends must see it and neither may include the other's
 * folder: web-admin never includes proxy/, and the worker's own struct should not come from
 * the admin server's headers. It names no type of either side, only fields.
 *
 * Each name is a struct field and its JSON key, which docs/api.md and scripts rely on:
 * rename none. X(name, what it counts) */
#ifndef PX_BASE_STATS_H
#define PX_BASE_STATS_H

/* Counted by each worker (atomic_uint_fast64_t, relaxed) and summed over the workers. */
#define STATS_WORKER_TABLE                                                                         \
    X(connections_active, "client connections open now")                                           \
    X(connections_total, "client connections accepted")                                            \
    X(requests_total, "requests begun")                                                            \
    X(requests_denied, "requests denied by a rule or the client allowlist")                        \
    X(tunnels_active, "CONNECT and WebSocket tunnels open now")                                    \
    X(bytes_up, "bytes sent to origins")                                                           \
    X(bytes_down, "bytes sent to clients")                                                         \
    X(errors_parse, "requests answered 400, 414 or 431")                                           \
    X(errors_upstream, "requests answered 502 or 504")

/* Read once per snapshot from the process as a whole (the main thread's hook). */
#define STATS_PROCESS_TABLE                                                                        \
    X(dns_cache_entries, "names and answers in the shared DNS cache")                              \
    X(acl_generation, "rule sets published since start")                                           \
    X(workers, "worker threads")

/* Counters by reason, each a JSON object whose keys the proxy names from its own tables
 * (listener.h's refusals, conn_close.h's close reasons, auth.h's counters). */
#define STATS_GROUP_TABLE                                                                          \
    X(connections_refused, "connections closed unread at accept, by reason")                       \
    X(closes, "client connections closed, by reason")                                              \
    X(auth, "proxy password checks (Proxy-Authorization)")

#endif
