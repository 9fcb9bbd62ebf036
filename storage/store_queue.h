/* store_queue: the per-producer record queues between proxy workers and a log writer. One
 * lock-free single-producer/single-consumer ring per producer, holding records packed (each
 * string at its length, about 150 bytes a typical row), and an eventfd the consumer sleeps on.
 *
 * Backend-free on purpose: no database header here or in store_queue.c, so every log writer
 * (SQLite today, PostgreSQL later) drains the same queues instead of carrying a copy.
 *
 * Not an interface: nothing outside storage/ includes this file, except the storage unit
 * tests. Workers reach it through store_log_push in store.h.
 */
#ifndef PX_STORE_QUEUE_H
#define PX_STORE_QUEUE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "storage/store.h"

#define STORE_QUEUE_DEFAULT_CAPACITY 4096
#define STORE_QUEUE_MAX_CAPACITY (1u << 20)

struct store_queue;

/* Makes `producers` rings of `capacity` records each (0: the default; rounded up to a power
 * of two) and 256 bytes of packed records per record (at least 4 KiB; rows with long strings
 * may fill the bytes first). Returns the queue, or NULL with err filled ("record queue: capacity
 * 2000000 exceeds 1048576", out of memory, eventfd failure). Called once, before any producer
 * starts. */
struct store_queue *store_queue_new(size_t producers, size_t capacity, char *err, size_t errlen);
/* Frees the rings and closes the eventfd. Producers and consumer must have stopped. */
void store_queue_free(struct store_queue *q);

/* Producer `producer` (0 .. producers-1; one thread per ring) packs rec into its ring.
 * Never blocks, locks or allocates: returns false when the ring is full, of records or of
 * bytes (counted as a drop)
 * or producer is out of range (not counted). When the ring passes half full it wakes the
 * consumer once per fill-up with a non-blocking eventfd write. */
bool store_queue_push(struct store_queue *q, size_t producer, const struct store_access *rec);

/* Consumer only (one thread). Sleeps until a producer's wake-up or store_queue_wake, or at
 * most timeout_ms. Returning says nothing about what is queued: ask store_queue_len. */
void store_queue_wait(struct store_queue *q, int timeout_ms);
/* Records pushed and not yet drained, over all rings. Consumer only. */
size_t store_queue_len(struct store_queue *q);
/* Calls fn on up to max queued records, ring after ring, each ring oldest first. rec is the
 * record unpacked (each string NUL-terminated or filling its array; the bytes after a NUL are
 * not cleared) and stays valid until fn returns; slots go back to producers in groups of 16
 * as fn returns, so a long drain frees room early. Returns the records taken. Consumer only. */
size_t store_queue_drain(struct store_queue *q, size_t max,
                         void (*fn)(void *arg, const struct store_access *rec), void *arg);
/* Like store_queue_drain, but hands fn runs of records that lie next to each other in a ring
 * (at most STORE_QUEUE_RUN_MAX each), so a writer can insert several in one statement. recs
 * stays valid until fn returns; each run's slots go back to the producer then. */
#define STORE_QUEUE_RUN_MAX 64
size_t store_queue_drain_runs(struct store_queue *q, size_t max,
                              void (*fn)(void *arg, const struct store_access *recs, size_t n),
                              void *arg);

/* Wakes a sleeping store_queue_wait (used to stop the consumer). Any thread. */
void store_queue_wake(struct store_queue *q);
/* Records accepted by store_queue_push so far (*pushed) and refused on a full ring
 * (*dropped), over all rings. Both only grow. Any thread. */
void store_queue_counts(struct store_queue *q, uint64_t *pushed, uint64_t *dropped);

#endif
