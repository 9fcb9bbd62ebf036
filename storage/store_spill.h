/* store_spill: where the PostgreSQL log writer keeps batches the database did not take (it is
 * down, unreachable or refused them), until they can be sent: first in memory, then, when
 * memory holds mem_max bytes, appended to a local file (0600) of at most file_max bytes.
 * Batches beyond that are dropped and counted. First in, first out across both.
 *
 * A batch is a frame: its sequence number, its row count and its bytes (the writer's COPY
 * text; opaque here). The file starts with a header naming the writer (a random id made when
 * the file is made), so a batch committed just before its answer was lost is known by its
 * (writer, sequence) and never sent twice; the file survives a restart and is sent then.
 *
 * Writer thread only, except store_spill_counts. Backend-free, like store_queue.
 */
#ifndef PX_STORE_SPILL_H
#define PX_STORE_SPILL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define STORE_SPILL_ID_LEN 32 /* hex characters of the writer id */

struct store_spill;

/* Opens (or creates, 0600) the file at path and reads the frames a previous run left there; a
 * frame cut short by a crash ends the file (it is cut off there, its rows counted dropped).
 * NULL with err on a file that cannot be made, read or is not a spill file. */
struct store_spill *store_spill_open(const char *path, size_t mem_max, uint64_t file_max, char *err,
                                     size_t errlen);
/* Appends what is still in memory to the file (within its cap), closes and frees. */
void store_spill_close(struct store_spill *s);

/* The writer id of the file's header, STORE_SPILL_ID_LEN hex characters and a NUL. */
const char *store_spill_id(const struct store_spill *s);
/* The highest sequence number of a frame held (0: none ever held by this file). */
int64_t store_spill_last_seq(const struct store_spill *s);

/* Adds a frame (bytes copied). false when it did not fit under the caps: its rows are then
 * counted dropped, and why (a write error, the cap) is in err. */
bool store_spill_add(struct store_spill *s, int64_t seq, const char *text, size_t len,
                     uint64_t rows, char *err, size_t errlen);
bool store_spill_empty(const struct store_spill *s);
/* The oldest frame, its bytes valid until the next call on s. false when there is none, or
 * when the file cannot be read (err says why; the frames left in the file are then dropped,
 * counted, and the next call goes on with memory). */
bool store_spill_peek(struct store_spill *s, int64_t *seq, const char **text, size_t *len,
                      uint64_t *rows, char *err, size_t errlen);
/* Removes the frame store_spill_peek handed out. */
void store_spill_pop(struct store_spill *s);
/* Drops the frame store_spill_peek handed out, counting its rows dropped (the database
 * refuses it for good). */
void store_spill_drop(struct store_spill *s);

/* Rows waiting now, and rows dropped so far. Any thread. */
void store_spill_counts(const struct store_spill *s, uint64_t *waiting, uint64_t *dropped);

#endif
