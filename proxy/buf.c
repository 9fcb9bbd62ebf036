/* buf: the per-worker buffer pool. Buffers are mmap'd one by one so that releasing the
 * surplus gives memory back to the kernel at once (malloc would keep it in its arenas). */
#include "proxy/buf.h"

#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

int buf_pool_init(struct buf_pool *pool, size_t max_free, atomic_uint_fast64_t *in_use_gauge)
{
    memset(pool, 0, sizeof(*pool));
    pool->in_use_gauge = in_use_gauge;
    pool->free = calloc(max_free ? max_free : 1, sizeof(*pool->free));
    pool->max_free = max_free;
    return pool->free ? 0 : -1;
}

void buf_pool_destroy(struct buf_pool *pool)
{
    for (size_t i = 0; i < pool->nfree; i++)
        munmap(pool->free[i], BUF_SIZE);
    free(pool->free);
    memset(pool, 0, sizeof(*pool));
}

int buf_attach(struct buf_pool *pool, struct buf *b)
{
    if (b->data)
        return 0;
    char *mem;
    if (pool->nfree > 0) {
        mem = pool->free[--pool->nfree];
    } else {
        mem = mmap(NULL, BUF_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (mem == MAP_FAILED)
            return -1;
    }
    pool->in_use++;
    if (pool->in_use_gauge)
        atomic_fetch_add_explicit(pool->in_use_gauge, 1, memory_order_relaxed);
    b->data = mem;
    b->off = 0;
    b->len = 0;
    return 0;
}

void buf_detach(struct buf_pool *pool, struct buf *b)
{
    if (!b->data)
        return;
    if (pool->nfree < pool->max_free)
        pool->free[pool->nfree++] = b->data;
    else
        munmap(b->data, BUF_SIZE);
    pool->in_use--;
    if (pool->in_use_gauge)
        atomic_fetch_sub_explicit(pool->in_use_gauge, 1, memory_order_relaxed);
    b->data = NULL;
    b->off = 0;
    b->len = 0;
}

size_t buf_room(struct buf *b)
{
    if (b->off > 0 && b->off + b->len > BUF_SIZE / 2) {
        memmove(b->data, b->data + b->off, b->len);
        b->off = 0;
    }
    return BUF_SIZE - b->off - b->len;
}
