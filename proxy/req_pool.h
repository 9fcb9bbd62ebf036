/* req_pool: the per-worker pool of request slots. A slot holds what only a request in flight
 * needs (its access record and the origin's addresses, 2.9 KiB); a connection takes one when a
 * request starts and gives it back once the record is handed on, so an idle keep-alive client
 * costs its struct conn and its socket only. Slots live in chunks mapped as the pool grows and
 * are touched only when first handed out. Every connection holds a place from its accept to
 * its end, so taking a slot never fails and never allocates: growth happens at accept.
 * Single-threaded: one pool per worker. */
#ifndef PX_REQ_POOL_H
#define PX_REQ_POOL_H

#include <stddef.h>

#include "proxy/dns.h"
#include "storage/store.h"

struct req_slot {
    struct store_access rec; /* the access record, filled as facts become known */
    struct dns_result addrs; /* the origin's addresses */
    struct req_slot *next_free;
};

/* Slots per mapped chunk. */
#define REQ_POOL_CHUNK 64

struct req_pool {
    struct req_slot **chunks; /* owned: max_chunks entries, the first nchunks mapped */
    size_t max_chunks;
    size_t nchunks;
    size_t fresh;          /* slots [0, fresh) were handed out at least once */
    size_t reserved;       /* places held by connections */
    struct req_slot *free; /* slots given back, to be taken first */
};

/* max_slots: the most places ever held at once (a connection holds a descriptor, so the
 * descriptor limit bounds it). Returns 0, or -1 when memory is exhausted. */
int req_pool_init(struct req_pool *p, size_t max_slots);
void req_pool_destroy(struct req_pool *p);
/* Holds a place for one more connection, mapping a chunk when all are held. Returns 0, or -1
 * (no memory, or max_slots places held). */
int req_pool_reserve(struct req_pool *p);
/* Lets a place go; its connection holds no slot any more. */
void req_pool_unreserve(struct req_pool *p);
/* A slot for a connection that holds a place and no slot (contents as last left). */
struct req_slot *req_pool_take(struct req_pool *p);
void req_pool_give(struct req_pool *p, struct req_slot *s);

#endif
