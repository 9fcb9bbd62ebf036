/* store_spill: batches the database did not take, in memory and then in a local file, first in
 * first out (store_spill.h).
 *
 * Memory and file hold frames in the same form, "SEQ ROWS LEN\n" and LEN bytes, so memory
 * goes to the file frame by frame with one write each. Memory frames are always newer than
 * the file's: a frame goes to memory only after the memory before it went to the file. The
 * file is read from its head and emptied (cut back to its header) once every frame in it was
 * handed out and removed; until then a restart sends its frames again, and the writer skips
 * the ones the database already has (their sequence numbers).
 */
#include "storage/store_spill.h"

#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "storage/store_impl.h"

#define MAGIC "proxyd-log-spill 1 "
#define HEADER_LEN (sizeof(MAGIC) - 1 + STORE_SPILL_ID_LEN + 1)
#define FRAME_HEAD_MAX 64 /* three numbers of at most 20 digits, two spaces, a newline */

enum spill_from { FROM_NONE, FROM_FILE, FROM_MEM };

struct store_spill {
    int fd;
    char id[STORE_SPILL_ID_LEN + 1];
    size_t mem_max;
    uint64_t file_max;
    /* Frames waiting in memory: mem[mem_head .. mem_len), mem_rows rows. */
    char *mem;
    size_t mem_head, mem_len, mem_cap;
    uint64_t mem_rows;
    /* Frames waiting in the file: [file_head, file_end), file_rows rows. */
    uint64_t file_head, file_end, file_rows;
    char *rbuf; /* the file frame handed out */
    size_t rbuf_cap;
    int64_t last_seq;
    /* The frame handed out by store_spill_peek: where, where the next starts, its rows. */
    enum spill_from peeked;
    uint64_t peek_next, peek_rows;
    _Atomic uint64_t waiting, dropped;
};

/* Reads "SEQ ROWS LEN\n" at p (avail bytes). Returns the header's length, or 0 when it is not
 * one (cut short or malformed). */
static size_t parse_head(const char *p, size_t avail, int64_t *seq, uint64_t *rows, uint64_t *len)
{
    uint64_t v[3] = {0, 0, 0};
    size_t i = 0;

    for (int f = 0; f < 3; f++) {
        size_t digits = 0;

        while (i < avail && p[i] >= '0' && p[i] <= '9' && digits < 19) {
            v[f] = v[f] * 10 + (uint64_t)(p[i++] - '0');
            digits++;
        }
        if (digits == 0 || i >= avail || p[i] != (f < 2 ? ' ' : '\n'))
            return 0;
        i++;
    }
    *seq = (int64_t)v[0];
    *rows = v[1];
    *len = v[2];
    return i;
}

static bool write_all(int fd, const char *p, size_t n, uint64_t off)
{
    while (n > 0) {
        ssize_t w = pwrite(fd, p, n, (off_t)off);

        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return false;
        p += w;
        n -= (size_t)w;
        off += (uint64_t)w;
    }
    return true;
}

static bool read_all(int fd, char *p, size_t n, uint64_t off)
{
    while (n > 0) {
        ssize_t r = pread(fd, p, n, (off_t)off);

        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return false;
        p += r;
        n -= (size_t)r;
        off += (uint64_t)r;
    }
    return true;
}

static void count_drop(struct store_spill *s, uint64_t rows)
{
    atomic_fetch_sub(&s->waiting, rows);
    atomic_fetch_add(&s->dropped, rows);
}

/* Appends one frame to the file, within its cap. */
static int file_append(struct store_spill *s, const char *frame, size_t n, uint64_t rows, char *err,
                       size_t errlen)
{
    if (s->file_end + n > s->file_max)
        return store_errf(err, errlen, "log spill file: full (%llu bytes)",
                          (unsigned long long)s->file_max);
    if (!write_all(s->fd, frame, n, s->file_end)) {
        int e = errno;

        /* Nothing half written stays behind the frames before it. */
        if (ftruncate(s->fd, (off_t)s->file_end) < 0) {
            /* the next open cuts the file at the broken frame */
        }
        return store_errf(err, errlen, "log spill file: %s", strerror(e ? e : EIO));
    }
    s->file_end += n;
    s->file_rows += rows;
    return 0;
}

/* Moves memory's frames to the file, oldest first; a frame that does not fit is dropped. */
static void mem_to_file(struct store_spill *s, char *err, size_t errlen)
{
    while (s->mem_head < s->mem_len) {
        int64_t seq;
        uint64_t rows, len;
        size_t h = parse_head(s->mem + s->mem_head, s->mem_len - s->mem_head, &seq, &rows, &len);
        size_t n = h + (size_t)len;

        if (file_append(s, s->mem + s->mem_head, n, rows, err, errlen) < 0)
            count_drop(s, rows);
        s->mem_head += n;
        s->mem_rows -= rows;
    }
    s->mem_head = s->mem_len = 0;
}

/* The file's header: a new file gets one with a fresh id, an old one's is checked. */
static int read_header(struct store_spill *s, const char *path, uint64_t size, char *err,
                       size_t errlen)
{
    char h[HEADER_LEN + 1];

    if (size == 0) {
        unsigned char raw[STORE_SPILL_ID_LEN / 2];

        if (getrandom(raw, sizeof(raw), 0) != (ssize_t)sizeof(raw))
            return store_errf(err, errlen, "%s: getrandom: %s", path, strerror(errno));
        for (size_t i = 0; i < sizeof(raw); i++)
            snprintf(s->id + 2 * i, 3, "%02x", raw[i]);
        snprintf(h, sizeof(h), "%s%s\n", MAGIC, s->id);
        if (!write_all(s->fd, h, HEADER_LEN, 0))
            return store_errf(err, errlen, "%s: %s", path, strerror(errno));
        return 0;
    }
    if (size < HEADER_LEN || !read_all(s->fd, h, HEADER_LEN, 0) ||
        memcmp(h, MAGIC, sizeof(MAGIC) - 1) != 0 || h[HEADER_LEN - 1] != '\n')
        return store_errf(err, errlen, "%s: not a log spill file", path);
    for (size_t i = 0; i < STORE_SPILL_ID_LEN; i++) {
        char c = h[sizeof(MAGIC) - 1 + i];

        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
            return store_errf(err, errlen, "%s: not a log spill file", path);
        s->id[i] = c;
    }
    s->id[STORE_SPILL_ID_LEN] = '\0';
    return 0;
}

/* Counts the frames a previous run left; a frame cut short ends the file there. */
static void scan_frames(struct store_spill *s, uint64_t size)
{
    uint64_t off = HEADER_LEN;

    while (off < size) {
        char h[FRAME_HEAD_MAX];
        size_t want = size - off < sizeof(h) ? (size_t)(size - off) : sizeof(h);
        int64_t seq;
        uint64_t rows = 0, len;
        size_t hl = read_all(s->fd, h, want, off) ? parse_head(h, want, &seq, &rows, &len) : 0;

        if (hl == 0 || len > size - off - hl) {
            atomic_fetch_add(&s->dropped, rows);
            if (ftruncate(s->fd, (off_t)off) < 0) {
                /* frames after off are ignored all the same */
            }
            break;
        }
        s->file_rows += rows;
        if (seq > s->last_seq)
            s->last_seq = seq;
        off += hl + len;
    }
    s->file_end = off;
    atomic_store(&s->waiting, s->file_rows);
}

struct store_spill *store_spill_open(const char *path, size_t mem_max, uint64_t file_max, char *err,
                                     size_t errlen)
{
    struct store_spill *s = calloc(1, sizeof(*s));
    struct stat sb;

    if (!s) {
        store_errf(err, errlen, "%s: out of memory", path);
        return NULL;
    }
    s->mem_max = mem_max;
    s->file_max = file_max;
    s->fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (s->fd < 0) {
        store_errf(err, errlen, "%s: %s", path, strerror(errno));
        free(s);
        return NULL;
    }
    if (fstat(s->fd, &sb) < 0 || !S_ISREG(sb.st_mode)) {
        store_errf(err, errlen, "%s: not a regular file", path);
        goto fail;
    }
    if (fchmod(s->fd, 0600) < 0 || read_header(s, path, (uint64_t)sb.st_size, err, errlen) < 0)
        goto fail;
    s->file_head = s->file_end = HEADER_LEN;
    if ((uint64_t)sb.st_size > HEADER_LEN)
        scan_frames(s, (uint64_t)sb.st_size);
    return s;
fail:
    close(s->fd);
    free(s);
    return NULL;
}

void store_spill_close(struct store_spill *s)
{
    if (!s)
        return;
    mem_to_file(s, NULL, 0);
    close(s->fd);
    free(s->mem);
    free(s->rbuf);
    free(s);
}

const char *store_spill_id(const struct store_spill *s)
{
    return s->id;
}

int64_t store_spill_last_seq(const struct store_spill *s)
{
    return s->last_seq;
}

bool store_spill_add(struct store_spill *s, int64_t seq, const char *text, size_t len,
                     uint64_t rows, char *err, size_t errlen)
{
    char head[FRAME_HEAD_MAX];
    int hl = snprintf(head, sizeof(head), "%lld %llu %zu\n", (long long)seq,
                      (unsigned long long)rows, len);
    size_t n = (size_t)hl + len;

    if (seq > s->last_seq)
        s->last_seq = seq;
    atomic_fetch_add(&s->waiting, rows);
    if (s->mem_len - s->mem_head + n > s->mem_max)
        mem_to_file(s, err, errlen);
    if (n > s->mem_max) { /* never fits in memory: straight to the file */
        char *frame = malloc(n);
        int rc;

        if (!frame) {
            count_drop(s, rows);
            store_errf(err, errlen, "log spill: out of memory");
            return false;
        }
        memcpy(frame, head, (size_t)hl);
        memcpy(frame + hl, text, len);
        rc = file_append(s, frame, n, rows, err, errlen);
        free(frame);
        if (rc < 0)
            count_drop(s, rows);
        return rc == 0;
    }
    if (s->mem_cap - s->mem_len < n) {
        size_t cap = s->mem_len + n > s->mem_max ? s->mem_len + n : s->mem_max;
        char *m = realloc(s->mem, cap);

        if (!m) {
            count_drop(s, rows);
            store_errf(err, errlen, "log spill: out of memory");
            return false;
        }
        s->mem = m;
        s->mem_cap = cap;
    }
    memcpy(s->mem + s->mem_len, head, (size_t)hl);
    memcpy(s->mem + s->mem_len + hl, text, len);
    s->mem_len += n;
    s->mem_rows += rows;
    return true;
}

bool store_spill_empty(const struct store_spill *s)
{
    return s->file_head == s->file_end && s->mem_head == s->mem_len;
}

/* Drops every frame in the file (it cannot be read) and cuts it back to its header. */
static void file_lost(struct store_spill *s)
{
    count_drop(s, s->file_rows);
    s->file_rows = 0;
    s->file_head = s->file_end = HEADER_LEN;
    if (ftruncate(s->fd, HEADER_LEN) < 0) {
        /* the frames are counted lost either way */
    }
}

bool store_spill_peek(struct store_spill *s, int64_t *seq, const char **text, size_t *len,
                      uint64_t *rows, char *err, size_t errlen)
{
    uint64_t flen;
    size_t hl;

    s->peeked = FROM_NONE;
    if (s->file_head < s->file_end) {
        char h[FRAME_HEAD_MAX];
        uint64_t left = s->file_end - s->file_head;
        size_t want = left < sizeof(h) ? (size_t)left : sizeof(h);

        hl = read_all(s->fd, h, want, s->file_head) ? parse_head(h, want, seq, rows, &flen) : 0;
        if (hl && flen <= left - hl && s->rbuf_cap < flen + 1) {
            char *b = realloc(s->rbuf, (size_t)flen + 1);

            if (b) {
                s->rbuf = b;
                s->rbuf_cap = (size_t)flen + 1;
            }
        }
        if (!hl || flen > left - hl || s->rbuf_cap < flen + 1 ||
            !read_all(s->fd, s->rbuf, (size_t)flen, s->file_head + hl)) {
            store_errf(err, errlen, "log spill file: %s; its rows are dropped",
                       errno ? strerror(errno) : "unreadable batch");
            file_lost(s);
            return store_spill_peek(s, seq, text, len, rows, NULL, 0);
        }
        *text = s->rbuf;
        *len = (size_t)flen;
        s->peeked = FROM_FILE;
        s->peek_next = s->file_head + hl + flen;
        s->peek_rows = *rows;
        return true;
    }
    if (s->mem_head == s->mem_len)
        return false;
    hl = parse_head(s->mem + s->mem_head, s->mem_len - s->mem_head, seq, rows, &flen);
    *text = s->mem + s->mem_head + hl;
    *len = (size_t)flen;
    s->peeked = FROM_MEM;
    s->peek_next = s->mem_head + hl + flen;
    s->peek_rows = *rows;
    return true;
}

void store_spill_pop(struct store_spill *s)
{
    if (s->peeked == FROM_FILE) {
        s->file_head = s->peek_next;
        s->file_rows -= s->peek_rows;
        if (s->file_head == s->file_end) {
            s->file_head = s->file_end = HEADER_LEN;
            if (ftruncate(s->fd, HEADER_LEN) < 0) {
                /* a restart sends the frames again; the writer skips them by sequence */
            }
        }
    } else if (s->peeked == FROM_MEM) {
        s->mem_head = (size_t)s->peek_next;
        s->mem_rows -= s->peek_rows;
        if (s->mem_head == s->mem_len)
            s->mem_head = s->mem_len = 0;
    } else {
        return;
    }
    atomic_fetch_sub(&s->waiting, s->peek_rows);
    s->peeked = FROM_NONE;
}

void store_spill_drop(struct store_spill *s)
{
    uint64_t rows = s->peek_rows;

    if (s->peeked == FROM_NONE)
        return;
    store_spill_pop(s);
    atomic_fetch_add(&s->dropped, rows);
}

void store_spill_counts(const struct store_spill *s, uint64_t *waiting, uint64_t *dropped)
{
    *waiting = atomic_load(&s->waiting);
    *dropped = atomic_load(&s->dropped);
}
