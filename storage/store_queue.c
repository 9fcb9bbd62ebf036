/* store_queue: per-producer SPSC rings of access records and the consumer's wake-up.
 *
 * A push is a copy into the ring and a release store of the head; the consumer reads the
 * head with acquire, copies nothing (the writer binds straight from the slot) and publishes
 * the tail with release once it is done with the slots. Head and tail live on their own
 * cache lines so producer and consumer do not bounce one line between cores.
 */
#include <errno.h>
#include <poll.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "storage/store_queue.h"

#define RELEASE_EVERY 16 /* slots handed back to the producer at a time during a drain */

struct ring {
    _Alignas(64) _Atomic size_t head; /* records pushed; written by the producer only */
    _Atomic uint64_t dropped;         /* producer only */
    _Atomic bool kicked;              /* producer sets when it wakes the consumer */
    _Alignas(64) _Atomic size_t tail; /* records consumed; written by the consumer only */
    size_t mask;
    struct store_access *slots; /* owned, mask + 1 records */
};

struct store_queue {
    struct ring *rings; /* owned, nrings */
    size_t nrings;
    int efd; /* owned; producers and store_queue_wake write, the consumer reads */
};

struct store_queue *store_queue_new(size_t producers, size_t capacity, char *err, size_t errlen)
{
    struct store_queue *q;
    size_t cap = capacity ? capacity : STORE_QUEUE_DEFAULT_CAPACITY;
    size_t pow2 = 2;

    if (producers == 0) {
        snprintf(err, errlen, "record queue: at least one producer is required");
        return NULL;
    }
    if (cap > STORE_QUEUE_MAX_CAPACITY) {
        snprintf(err, errlen, "record queue: capacity %zu exceeds %u", cap,
                 STORE_QUEUE_MAX_CAPACITY);
        return NULL;
    }
    while (pow2 < cap)
        pow2 <<= 1;
    q = calloc(1, sizeof(*q));
    if (!q) {
        snprintf(err, errlen, "record queue: out of memory");
        return NULL;
    }
    q->efd = -1;
    q->nrings = producers;
    q->rings = calloc(producers, sizeof(*q->rings));
    if (!q->rings) {
        snprintf(err, errlen, "record queue: out of memory");
        goto fail;
    }
    for (size_t i = 0; i < producers; i++) {
        q->rings[i].mask = pow2 - 1;
        q->rings[i].slots = calloc(pow2, sizeof(struct store_access));
        if (!q->rings[i].slots) {
            snprintf(err, errlen, "record queue: out of memory for %zu x %zu records", producers,
                     pow2);
            goto fail;
        }
    }
    q->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (q->efd < 0) {
        snprintf(err, errlen, "record queue: eventfd: %s", strerror(errno));
        goto fail;
    }
    return q;
fail:
    store_queue_free(q);
    return NULL;
}

void store_queue_free(struct store_queue *q)
{
    if (!q)
        return;
    if (q->rings) {
        for (size_t i = 0; i < q->nrings; i++)
            free(q->rings[i].slots);
        free(q->rings);
    }
    if (q->efd >= 0)
        close(q->efd);
    free(q);
}

/* ---- Producer side ---- */

bool store_queue_push(struct store_queue *q, size_t producer, const struct store_access *rec)
{
    struct ring *r;
    size_t head, tail, fill;

    if (producer >= q->nrings)
        return false;
    r = &q->rings[producer];
    head = atomic_load_explicit(&r->head, memory_order_relaxed);
    tail = atomic_load_explicit(&r->tail, memory_order_acquire);
    fill = head - tail;
    if (fill > r->mask) {
        /* Only this producer writes the counter: a plain add, no locked instruction. */
        atomic_store_explicit(&r->dropped,
                              atomic_load_explicit(&r->dropped, memory_order_relaxed) + 1,
                              memory_order_relaxed);
        return false;
    }
    memcpy(&r->slots[head & r->mask], rec, sizeof(*rec));
    atomic_store_explicit(&r->head, head + 1, memory_order_release);
    /* Wake the consumer early, once per fill-up, so a burst does not wait a whole flush
     * interval with the ring filling. */
    if (fill + 1 >= (r->mask + 1) / 2 && !atomic_load_explicit(&r->kicked, memory_order_relaxed)) {
        atomic_store_explicit(&r->kicked, true, memory_order_relaxed);
        store_queue_wake(q);
    }
    return true;
}

void store_queue_wake(struct store_queue *q)
{
    uint64_t one = 1;

    /* A write to a non-blocking eventfd never blocks (EAGAIN only if the counter would
     * overflow, which a wake-up can ignore). */
    if (write(q->efd, &one, sizeof(one)) < 0) {
        /* Nothing to do: the consumer wakes on its timeout anyway. */
    }
}

void store_queue_counts(struct store_queue *q, uint64_t *pushed, uint64_t *dropped)
{
    uint64_t p = 0, d = 0;

    for (size_t i = 0; i < q->nrings; i++) {
        p += atomic_load(&q->rings[i].head);
        d += atomic_load(&q->rings[i].dropped);
    }
    *pushed = p;
    *dropped = d;
}

/* ---- Consumer side ---- */

void store_queue_wait(struct store_queue *q, int timeout_ms)
{
    struct pollfd pfd = {.fd = q->efd, .events = POLLIN};
    uint64_t v;

    if (poll(&pfd, 1, timeout_ms) > 0 && read(q->efd, &v, sizeof(v)) < 0) {
        /* EAGAIN: another wake-up raced this one; nothing lost. */
    }
}

size_t store_queue_len(struct store_queue *q)
{
    size_t n = 0;

    for (size_t i = 0; i < q->nrings; i++) {
        struct ring *r = &q->rings[i];

        n += atomic_load_explicit(&r->head, memory_order_acquire) -
             atomic_load_explicit(&r->tail, memory_order_relaxed);
    }
    return n;
}

size_t store_queue_drain(struct store_queue *q, size_t max,
                         void (*fn)(void *arg, const struct store_access *rec), void *arg)
{
    size_t taken = 0;

    for (size_t i = 0; i < q->nrings && taken < max; i++) {
        struct ring *r = &q->rings[i];
        size_t tail = atomic_load_explicit(&r->tail, memory_order_relaxed);
        size_t head = atomic_load_explicit(&r->head, memory_order_acquire);

        /* Before reading: a producer that fills up again from here on wakes us again. */
        atomic_store_explicit(&r->kicked, false, memory_order_relaxed);
        for (; tail != head && taken < max; tail++, taken++) {
            fn(arg, &r->slots[tail & r->mask]);
            if ((taken % RELEASE_EVERY) == RELEASE_EVERY - 1)
                atomic_store_explicit(&r->tail, tail + 1, memory_order_release);
        }
        atomic_store_explicit(&r->tail, tail, memory_order_release);
    }
    return taken;
}

size_t store_queue_drain_runs(struct store_queue *q, size_t max,
                              void (*fn)(void *arg, const struct store_access *recs, size_t n),
                              void *arg)
{
    size_t taken = 0;

    for (size_t i = 0; i < q->nrings && taken < max; i++) {
        struct ring *r = &q->rings[i];
        size_t tail = atomic_load_explicit(&r->tail, memory_order_relaxed);
        size_t head = atomic_load_explicit(&r->head, memory_order_acquire);

        atomic_store_explicit(&r->kicked, false, memory_order_relaxed);
        while (tail != head && taken < max) {
            size_t at = tail & r->mask;
            size_t n = head - tail;

            /* A run stops at the ring's end (it wraps), at the cap and at max. */
            if (n > r->mask + 1 - at)
                n = r->mask + 1 - at;
            if (n > STORE_QUEUE_RUN_MAX)
                n = STORE_QUEUE_RUN_MAX;
            if (n > max - taken)
                n = max - taken;
            fn(arg, &r->slots[at], n);
            tail += n;
            taken += n;
            atomic_store_explicit(&r->tail, tail, memory_order_release);
        }
    }
    return taken;
}
