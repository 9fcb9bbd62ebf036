/* store_queue: per-producer SPSC rings of access records and the consumer's wake-up.
 *
 * A push packs the record into the ring's bytes (its strings at their length) and stores
 * the head with release; the consumer reads the head with acquire, unpacks a run into its
 * scratch records for the callback and publishes the tail (slots and bytes) with release
 * once it is done with them. Head and tail live on their own cache lines so producer and
 * consumer do not bounce one line between cores.
 */
#include <errno.h>
#include <poll.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "storage/store_queue.h"

#define RELEASE_EVERY 16 /* slots handed back to the producer at a time during a drain */

/* A record travels packed: the numbers before `client` as they lie in the struct, the policy
 * version, then each string as a 16-bit length and its bytes (no padding, no NUL). A typical
 * row is about 150 bytes instead of the struct's 1.9 KiB, so a ring that has gone round once
 * holds megabytes, not the 120 MiB a full ring of structs would keep resident per worker, and
 * a push copies what the strings hold, not their fixed sizes. */
#define PACKED_NUMBERS offsetof(struct store_access, client)
#define STRING_FIELDS                                                                              \
    F(client)                                                                                      \
    F(user)                                                                                        \
    F(method)                                                                                      \
    F(scheme)                                                                                      \
    F(host)                                                                                        \
    F(path)                                                                                        \
    F(error)                                                                                       \
    F(sni)                                                                                         \
    F(dest)
#define F(name) +sizeof(((struct store_access *)0)->name)
enum { STRINGS_SIZE = 0 STRING_FIELDS };
#undef F
#define F(name) +1
enum { NSTRINGS = 0 STRING_FIELDS };
#undef F
/* Every member is packed: a member added to struct store_access changes its size and stops
 * the build here until it is added above (3: the struct's padding today). */
_Static_assert(sizeof(struct store_access) ==
                   PACKED_NUMBERS + STRINGS_SIZE + sizeof(int64_t) /* policy_version */ + 3,
               "struct store_access changed: pack the new member in store_queue.c");
enum { PACKED_MAX = PACKED_NUMBERS + sizeof(int64_t) + NSTRINGS * 2 + STRINGS_SIZE };
/* Bytes of packed records a ring holds per record of its capacity: a typical row is about
 * 150, so a ring fills by count before bytes unless rows are long (long URLs). */
#define BYTES_PER_RECORD 256
#define BYTES_MIN 4096 /* at least two of the longest records */
_Static_assert(2 * PACKED_MAX <= BYTES_MIN, "a ring holds the longest record");

/* Where record i of a ring lies: off in its bytes, len of them, and end, the ring's byte
 * count once it was pushed (what the consumer hands back when done with it). */
struct slot {
    uint32_t off;
    uint32_t len;
    size_t end;
};

struct ring {
    _Alignas(64) _Atomic size_t head; /* records pushed; written by the producer only */
    size_t bhead;                     /* bytes used by pushes, wrap skips included; producer */
    _Atomic uint64_t dropped;         /* producer only */
    _Atomic bool kicked;              /* producer sets when it wakes the consumer */
    _Alignas(64) _Atomic size_t tail; /* records consumed; written by the consumer only */
    _Atomic size_t btail;             /* bytes the consumer is done with; consumer only */
    size_t mask;                      /* record slots - 1 */
    size_t bmask;                     /* bytes - 1 */
    struct slot *slots;               /* owned, mask + 1 */
    unsigned char *bytes;             /* owned, bmask + 1 */
};

struct store_queue {
    struct ring *rings; /* owned, nrings */
    size_t nrings;
    int efd; /* owned; producers and store_queue_wake write, the consumer reads */
    struct store_access *scratch; /* owned, STORE_QUEUE_RUN_MAX records: the consumer unpacks
                                     a run here for its callback */
};

struct store_queue *store_queue_new(size_t producers, size_t capacity, char *err, size_t errlen)
{
    struct store_queue *q;
    size_t cap = capacity ? capacity : STORE_QUEUE_DEFAULT_CAPACITY;
    size_t pow2 = 2, bytes = BYTES_MIN;

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
    while (bytes < pow2 * BYTES_PER_RECORD)
        bytes <<= 1;
    q = calloc(1, sizeof(*q));
    if (!q) {
        snprintf(err, errlen, "record queue: out of memory");
        return NULL;
    }
    q->efd = -1;
    q->nrings = producers;
    q->rings = calloc(producers, sizeof(*q->rings));
    q->scratch = calloc(STORE_QUEUE_RUN_MAX, sizeof(*q->scratch));
    if (!q->rings || !q->scratch) {
        snprintf(err, errlen, "record queue: out of memory");
        goto fail;
    }
    for (size_t i = 0; i < producers; i++) {
        q->rings[i].mask = pow2 - 1;
        q->rings[i].bmask = bytes - 1;
        q->rings[i].slots = calloc(pow2, sizeof(struct slot));
        q->rings[i].bytes = calloc(bytes, 1);
        if (!q->rings[i].slots || !q->rings[i].bytes) {
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
        for (size_t i = 0; i < q->nrings; i++) {
            free(q->rings[i].slots);
            free(q->rings[i].bytes);
        }
        free(q->rings);
    }
    free(q->scratch);
    if (q->efd >= 0)
        close(q->efd);
    free(q);
}

/* ---- Packing ---- */

/* The packed size of rec; lens gets each string's length. */
static size_t packed_size(const struct store_access *rec, uint16_t lens[NSTRINGS])
{
    size_t n = PACKED_NUMBERS + sizeof(int64_t), i = 0;

#define F(name)                                                                                    \
    lens[i] = (uint16_t)strnlen(rec->name, sizeof(rec->name));                                     \
    n += 2 + lens[i++];
    STRING_FIELDS
#undef F
    return n;
}

static void pack(unsigned char *p, const struct store_access *rec, const uint16_t lens[NSTRINGS])
{
    size_t i = 0;

    memcpy(p, rec, PACKED_NUMBERS);
    p += PACKED_NUMBERS;
    memcpy(p, &rec->policy_version, sizeof(int64_t));
    p += sizeof(int64_t);
#define F(name)                                                                                    \
    memcpy(p, &lens[i], 2);                                                                        \
    memcpy(p + 2, rec->name, lens[i]);                                                             \
    p += 2 + lens[i++];
    STRING_FIELDS
#undef F
}

/* The reverse of pack. Only what the record holds is written: each string's bytes and one NUL
 * after them (a string that filled its array without a NUL, as the filler's truncation allows,
 * fills it again), not the rest of the ~1.9 KiB struct. Clearing it all was a memset of the
 * whole struct a row, about a third of what the writer spent on the queue (docs/performance.md,
 * "The log writer's insert path"). */
static void unpack(struct store_access *rec, const unsigned char *p)
{
    uint16_t len;

    memcpy(rec, p, PACKED_NUMBERS);
    p += PACKED_NUMBERS;
    memcpy(&rec->policy_version, p, sizeof(int64_t));
    p += sizeof(int64_t);
#define F(name)                                                                                    \
    memcpy(&len, p, 2);                                                                            \
    if (len < sizeof(rec->name)) {                                                                 \
        memcpy(rec->name, p + 2, len);                                                             \
        rec->name[len] = '\0';                                                                     \
    } else {                                                                                       \
        memcpy(rec->name, p + 2, sizeof(rec->name));                                               \
    }                                                                                              \
    p += 2 + len;
    STRING_FIELDS
#undef F
}

/* ---- Producer side ---- */

void store_access_clear(struct store_access *rec)
{
    memset(rec, 0, PACKED_NUMBERS);
    rec->policy_version = 0;
#define F(name) rec->name[0] = '\0';
    STRING_FIELDS
#undef F
}

bool store_queue_push(struct store_queue *q, size_t producer, const struct store_access *rec)
{
    struct ring *r;
    size_t head, tail, fill, need, pos, at, size, used;
    uint16_t lens[NSTRINGS];

    if (producer >= q->nrings)
        return false;
    r = &q->rings[producer];
    head = atomic_load_explicit(&r->head, memory_order_relaxed);
    tail = atomic_load_explicit(&r->tail, memory_order_acquire);
    fill = head - tail;
    need = packed_size(rec, lens);
    size = r->bmask + 1;
    pos = r->bhead;
    at = pos & r->bmask;
    if (at + need > size) { /* a record never wraps: the rest of the ring is skipped */
        pos += size - at;
        at = 0;
    }
    used = pos + need - atomic_load_explicit(&r->btail, memory_order_acquire);
    if (fill > r->mask || used > size) {
        /* Only this producer writes the counter: a plain add, no locked instruction. */
        atomic_store_explicit(&r->dropped,
                              atomic_load_explicit(&r->dropped, memory_order_relaxed) + 1,
                              memory_order_relaxed);
        return false;
    }
    pack(r->bytes + at, rec, lens);
    r->bhead = pos + need;
    r->slots[head & r->mask] =
        (struct slot){.off = (uint32_t)at, .len = (uint32_t)need, .end = r->bhead};
    atomic_store_explicit(&r->head, head + 1, memory_order_release);
    /* Wake the consumer early, once per fill-up, so a burst does not wait a whole flush
     * interval with the ring filling. */
    if ((fill + 1 >= (r->mask + 1) / 2 || used >= size / 2) &&
        !atomic_load_explicit(&r->kicked, memory_order_relaxed)) {
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

/* Hands records [tail, upto) of r back to the producer: their slots and their bytes. */
static void release(struct ring *r, size_t upto)
{
    atomic_store_explicit(&r->btail, r->slots[(upto - 1) & r->mask].end, memory_order_release);
    atomic_store_explicit(&r->tail, upto, memory_order_release);
}

size_t store_queue_drain(struct store_queue *q, size_t max,
                         void (*fn)(void *arg, const struct store_access *rec), void *arg)
{
    size_t taken = 0;

    for (size_t i = 0; i < q->nrings && taken < max; i++) {
        struct ring *r = &q->rings[i];
        size_t tail = atomic_load_explicit(&r->tail, memory_order_relaxed);
        size_t head = atomic_load_explicit(&r->head, memory_order_acquire);
        size_t start = tail;

        /* Before reading: a producer that fills up again from here on wakes us again. */
        atomic_store_explicit(&r->kicked, false, memory_order_relaxed);
        for (; tail != head && taken < max; tail++, taken++) {
            unpack(q->scratch, r->bytes + r->slots[tail & r->mask].off);
            fn(arg, q->scratch);
            if ((taken % RELEASE_EVERY) == RELEASE_EVERY - 1)
                release(r, tail + 1);
        }
        if (tail != start)
            release(r, tail);
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
            for (size_t k = 0; k < n; k++)
                unpack(&q->scratch[k], r->bytes + r->slots[at + k].off);
            fn(arg, q->scratch, n);
            tail += n;
            taken += n;
            release(r, tail);
        }
    }
    return taken;
}
