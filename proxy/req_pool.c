/* req_pool: the per-worker pool of request slots. Chunks are mapped (not malloc'd) so that a
 * slot's pages become resident only when it is first used: a burst of idle connections
 * reserves places without touching memory. */
#include "proxy/req_pool.h"

#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#define CHUNK_BYTES (REQ_POOL_CHUNK * sizeof(struct req_slot))

int req_pool_init(struct req_pool *p, size_t max_slots)
{
    memset(p, 0, sizeof(*p));
    p->max_chunks = (max_slots + REQ_POOL_CHUNK - 1) / REQ_POOL_CHUNK;
    if (p->max_chunks == 0)
        p->max_chunks = 1;
    p->chunks = calloc(p->max_chunks, sizeof(*p->chunks));
    return p->chunks ? 0 : -1;
}

void req_pool_destroy(struct req_pool *p)
{
    for (size_t i = 0; i < p->nchunks; i++)
        munmap(p->chunks[i], CHUNK_BYTES);
    free(p->chunks);
    memset(p, 0, sizeof(*p));
}

int req_pool_reserve(struct req_pool *p)
{
    if (p->reserved == p->nchunks * REQ_POOL_CHUNK) {
        if (p->nchunks == p->max_chunks)
            return -1;
        void *mem =
            mmap(NULL, CHUNK_BYTES, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (mem == MAP_FAILED)
            return -1;
        p->chunks[p->nchunks++] = mem;
    }
    p->reserved++;
    return 0;
}

void req_pool_unreserve(struct req_pool *p)
{
    p->reserved--;
}

/* Slots taken <= places held <= slots mapped: with none given back, every slot handed out is
 * taken, so an untouched one is left. */
struct req_slot *req_pool_take(struct req_pool *p)
{
    struct req_slot *s = p->free;
    if (s) {
        p->free = s->next_free;
        return s;
    }
    s = &p->chunks[p->fresh / REQ_POOL_CHUNK][p->fresh % REQ_POOL_CHUNK];
    p->fresh++;
    return s;
}

void req_pool_give(struct req_pool *p, struct req_slot *s)
{
    s->next_free = p->free;
    p->free = s;
}
