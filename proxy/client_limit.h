/* client_limit: how many connections each client address holds, across all workers, so that
 * one address cannot take every descriptor (--max-conns-per-client). A fixed table sized at
 * start, so nothing is allocated per connection; keys are addresses (IPv4 as IPv4-mapped
 * IPv6, so a client counts once on a dual-stack listener), hashed with a random key so that
 * chosen addresses cannot pile up in one place; one mutex, taken once when a connection is
 * accepted and once when it closes. Any thread. */
#ifndef PX_CLIENT_LIMIT_H
#define PX_CLIENT_LIMIT_H

#include <stddef.h>
#include <sys/socket.h>

struct client_limit;

enum client_take {
    CLIENT_TAKEN,      /* counted: call client_limit_release when the connection closes */
    CLIENT_OVER_LIMIT, /* the address holds max connections already: not counted */
    CLIENT_UNTRACKED,  /* more distinct addresses than the table holds, or not IP: not
                          counted, do not release */
    CLIENT_TAKE_COUNT
};

/* Returns a table for up to max_clients distinct addresses at once, or NULL (out of memory). */
struct client_limit *client_limit_new(size_t max_clients);
void client_limit_free(struct client_limit *t);

/* Counts one more connection from addr unless it holds max already (max 0: no limit, count
 * only). */
enum client_take client_limit_take(struct client_limit *t, const struct sockaddr *addr,
                                   unsigned max);
/* Forgets one connection counted by client_limit_take (CLIENT_TAKEN). */
void client_limit_release(struct client_limit *t, const struct sockaddr *addr);
/* Connections counted for addr now (tests, diagnostics). */
unsigned client_limit_count(struct client_limit *t, const struct sockaddr *addr);

#endif
