/* buf: fixed-size I/O buffers and the per-worker pool they come from. A connection holds
 * buffers only while a request is in flight, so an idle keep-alive client costs no buffer
 * memory. The pool keeps a bounded number of free buffers and unmaps the rest, so RSS
 * falls back after a burst. Single-threaded: one pool per worker. */
#ifndef PX_BUF_H
#define PX_BUF_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>

#define BUF_SIZE (32 * 1024)

/* Bytes live in data[off .. off+len). */
struct buf {
    char *data; /* owned by the pool while attached to a connection */
    size_t off;
    size_t len;
};

struct buf_pool {
    char **free; /* owned: stack of free buffers */
    size_t nfree;
    size_t max_free; /* above this, released buffers are unmapped */
    size_t in_use;
    /* Mirrors in_use for readers on other threads (the /metrics gauge), or NULL. */
    atomic_uint_fast64_t *in_use_gauge;
};

/* in_use_gauge: see struct buf_pool; may be NULL. */
int buf_pool_init(struct buf_pool *pool, size_t max_free, atomic_uint_fast64_t *in_use_gauge);
void buf_pool_destroy(struct buf_pool *pool);

/* Attaches a buffer to b if it has none. Returns 0, or -1 when memory is exhausted. */
int buf_attach(struct buf_pool *pool, struct buf *b);
/* Returns b's memory to the pool; b must be empty or its bytes are discarded. */
void buf_detach(struct buf_pool *pool, struct buf *b);

/* Free space at the tail, after moving live bytes to the front if that makes room. */
size_t buf_room(struct buf *b);
static inline char *buf_tail(struct buf *b)
{
    return b->data + b->off + b->len;
}
static inline char *buf_head(struct buf *b)
{
    return b->data + b->off;
}
static inline void buf_consume(struct buf *b, size_t n)
{
    b->off += n;
    b->len -= n;
    if (b->len == 0)
        b->off = 0;
}

#endif
