/* store_rollup: per-minute, per-hour and per-day sums of the access log (requests, blocked,
 * reported, bytes) in total and by host, client and rule, each per node, so the dashboard and
 * the top lists (of the fleet or of one node) read a few rows per bucket instead of every
 * access row; and the reader that answers a time range from them exactly.
 *
 * Exactness rests on one number, the watermark (access_rollup_watermark.rolled_id): every row
 * with an id at or below it is in the sums, no row above it is. The log writer adds its rows
 * up in memory and applies the sums, with the new watermark, inside the transaction of one of
 * its batches (at most every ROLLUP flush interval, store_log.c); retention takes deleted rows
 * back out in its own transaction. A reader adds the rows above the watermark from the raw
 * log, so a dashboard equals a count over the raw rows at any moment, also after a crash
 * lost the writer's unapplied sums (the writer then rolls those rows up from the table:
 * store_rollup_catch_up, also the backfill of a log from before the rollups).
 *
 * Several writers (proxyd nodes on one database) share the one watermark: a writer applies
 * its sums only when they hold every row between the watermark it last saw and its newest
 * row, and the watermark has not moved since; otherwise it drops them and catches up from
 * the table, which holds every node's rows (store_log.c, rollup_apply).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "storage/store_impl.h"

#define MINUTE_MS 60000LL
#define HOUR_MS 3600000LL
#define DAY_MS 86400000LL

/* Finest first; each divides the next. */
static const int64_t level_ms[STORE_ROLLUP_LEVELS] = {MINUTE_MS, HOUR_MS, DAY_MS};

#define KEY_BYTES 64 /* key text per key held, on average; a key is at most 255 */

struct slot {
    uint64_t hash;     /* 0: free */
    int64_t bucket_ms; /* start of the bucket */
    uint32_t key_off;  /* in arena */
    uint32_t node_off; /* in arena, shared by the slots of consecutive rows of one node */
    uint16_t key_len;
    uint8_t node_len;
    uint8_t level, dim;
    struct store_rollup_sums sums;
    int64_t first_ms, last_ms; /* a visit's: of the rows added */
    /* The smallest and largest id of the rows added (access_rollup.min_id, max_id): a reader
     * of a minute's rows of one host reads that range only (store_query.c, search_rare).
     * INT64_MAX and INT64_MIN while none was: a flush of rows only taken away then leaves
     * the range there as it is. An id not known (0) makes it unknown: NULL. */
    int64_t min_id, max_id;
};

/* A visit (access_visits) is a slot of this pseudo-dimension at the hour level, its key
 * "host\0client\0user" (none of them holds a NUL). */
#define VISIT_DIM STORE_ROLLUP_DIMS
#define VISIT_LEVEL 1

#define FLUSH_COLS 14 /* level_ms, dim, bucket_ms, key, node, the seven sums, min_id, max_id */

/* Minutes whose id ranges one accumulator holds: rows come in time order, a flush holds a
 * few minutes (a catch-up more; it flushes when they are full). */
#define ACC_MINUTES 64

/* The ids the added rows of one minute took (a row of access_log_minutes). */
struct minute_ids {
    int64_t minute_ms, first_id, last_id, rows;
};

/* The slots a dimension's key took at each level for the last row, and that row's minute
 * (the same minute: the same hour and day). Consecutive rows share most keys (the client of
 * a keep-alive connection, the default rule), which then skip the table. Only while the rows
 * are of one node: another node's row forgets them all. */
struct last_key {
    bool valid;
    int64_t minute;
    uint64_t key_hash;
    uint32_t at[STORE_ROLLUP_LEVELS];
};

struct store_rollup_acc {
    struct slot *slots; /* owned, 2 * keys: at most half used */
    uint32_t *used_at;  /* owned, keys: indexes of the used slots, to clear and to flush */
    char *arena;        /* owned, keys * KEY_BYTES */
    size_t keys, used, arena_len;
    /* The node of the last row, in arena (node_len 0 and node_off past the end: none yet). */
    uint32_t node_off;
    uint8_t node_len;
    uint64_t node_hash;
    struct last_key last[STORE_ROLLUP_DIMS];
    /* The visit slot of the last row (minute: its hour), as last[] for the dimensions:
     * a client's requests to one host mostly follow each other. */
    struct last_key last_visit;
    struct minute_ids minutes[ACC_MINUTES];
    size_t n_minutes, last_minute; /* last_minute: the entry the last row went to */
    /* PostgreSQL: a flush's columns as array literals (flush_pg), kept between flushes. */
    char *col[FLUSH_COLS];
    size_t col_len[FLUSH_COLS], col_cap[FLUSH_COLS];
};

struct store_rollup_acc *store_rollup_new(size_t keys)
{
    struct store_rollup_acc *acc = calloc(1, sizeof(*acc));
    size_t pow2 = 64;

    while (pow2 < keys)
        pow2 <<= 1;
    if (acc) {
        acc->keys = pow2;
        acc->node_off = UINT32_MAX;
        acc->slots = calloc(2 * pow2, sizeof(*acc->slots));
        acc->used_at = calloc(pow2, sizeof(*acc->used_at));
        acc->arena = malloc(pow2 * KEY_BYTES);
    }
    if (!acc || !acc->slots || !acc->used_at || !acc->arena) {
        store_rollup_free(acc);
        return NULL;
    }
    return acc;
}

void store_rollup_free(struct store_rollup_acc *acc)
{
    if (!acc)
        return;
    free(acc->slots);
    free(acc->used_at);
    free(acc->arena);
    for (int c = 0; c < FLUSH_COLS; c++)
        free(acc->col[c]);
    free(acc);
}

void store_rollup_clear(struct store_rollup_acc *acc)
{
    for (size_t i = 0; i < acc->used; i++)
        acc->slots[acc->used_at[i]].hash = 0;
    acc->used = 0;
    acc->arena_len = 0;
    acc->n_minutes = 0;
    acc->node_off = UINT32_MAX;
    acc->node_len = 0;
    for (int dim = 0; dim < STORE_ROLLUP_DIMS; dim++)
        acc->last[dim].valid = false;
    acc->last_visit.valid = false;
}

bool store_rollup_empty(const struct store_rollup_acc *acc)
{
    return acc->used == 0 && acc->n_minutes == 0;
}

/* The entry of minute in acc's id ranges, a new one when it has none; NULL when full. */
static struct minute_ids *minute_entry(struct store_rollup_acc *acc, int64_t minute)
{
    struct minute_ids *m;

    if (acc->n_minutes > 0 && acc->minutes[acc->last_minute].minute_ms == minute)
        return &acc->minutes[acc->last_minute];
    for (size_t i = 0; i < acc->n_minutes; i++) {
        if (acc->minutes[i].minute_ms == minute) {
            acc->last_minute = i;
            return &acc->minutes[i];
        }
    }
    if (acc->n_minutes == ACC_MINUTES)
        return NULL;
    acc->last_minute = acc->n_minutes++;
    m = &acc->minutes[acc->last_minute];
    *m = (struct minute_ids){.minute_ms = minute, .first_id = INT64_MAX, .last_id = INT64_MIN};
    return m;
}

static uint64_t hash_text(const char *s, size_t len)
{
    uint64_t h = 1469598103934665603ull; /* FNV-1a */

    for (size_t i = 0; i < len; i++)
        h = (h ^ (unsigned char)s[i]) * 1099511628211ull;
    return h;
}

static uint64_t mix(uint64_t h, uint64_t v)
{
    h ^= v + 0x9e3779b97f4a7c15ull + (h << 6) + (h >> 2);
    return h ? h : 1; /* 0 marks a free slot */
}

static void sums_add(struct store_rollup_sums *to, const struct store_rollup_sums *d)
{
    to->requests += d->requests;
    to->blocked += d->blocked;
    to->reported += d->reported;
    to->bytes_up += d->bytes_up;
    to->bytes_down += d->bytes_down;
    to->blocked_bytes += d->blocked_bytes;
    to->reported_bytes += d->reported_bytes;
}

/* Widens slot s's id range to id (0: not known, which the range then is for good). */
static void ids_add(struct slot *s, int64_t id)
{
    s->min_id = id < s->min_id ? id : s->min_id;
    s->max_id = id > s->max_id ? id : s->max_id;
}

static bool node_is(const struct store_rollup_acc *acc, const struct slot *s)
{
    return s->node_off == acc->node_off ||
           (s->node_len == acc->node_len &&
            memcmp(acc->arena + s->node_off, acc->arena + acc->node_off, acc->node_len) == 0);
}

/* A free slot s taken for a key of key_len bytes, which the caller puts at the arena's end,
 * of the node of the last row (slot_add, visit_add). */
static inline void slot_init(struct store_rollup_acc *acc, struct slot *s, uint64_t h, int level,
                             int dim, int64_t bucket, size_t key_len)
{
    memset(s, 0, sizeof(*s));
    s->hash = h;
    s->bucket_ms = bucket;
    s->level = (uint8_t)level;
    s->dim = (uint8_t)dim;
    s->key_off = (uint32_t)acc->arena_len;
    s->key_len = (uint16_t)key_len;
    s->node_off = acc->node_off;
    s->node_len = acc->node_len;
    s->first_ms = INT64_MAX;
    s->last_ms = INT64_MIN;
    s->min_id = INT64_MAX;
    s->max_id = INT64_MIN;
}

/* For the node of the last row (acc->node_off); room is checked by the caller. key_hash covers
 * the node too. Returns the slot's index. */
static uint32_t slot_add(struct store_rollup_acc *acc, int level, int dim, int64_t bucket,
                         const char *key, size_t key_len, uint64_t key_hash,
                         const struct store_rollup_sums *d)
{
    uint64_t h = mix(mix(key_hash, (uint64_t)bucket), (uint64_t)(level * 8 + dim));
    size_t mask = 2 * acc->keys - 1, i = h & mask;

    for (;; i = (i + 1) & mask) {
        struct slot *s = &acc->slots[i];

        if (s->hash == 0) {
            slot_init(acc, s, h, level, dim, bucket, key_len);
            memcpy(acc->arena + acc->arena_len, key, key_len);
            acc->arena_len += key_len;
            acc->used_at[acc->used++] = (uint32_t)i;
            break;
        }
        if (s->hash == h && s->bucket_ms == bucket && s->level == level && s->dim == dim &&
            s->key_len == key_len && memcmp(acc->arena + s->key_off, key, key_len) == 0 &&
            node_is(acc, s))
            break;
    }
    sums_add(&acc->slots[i].sums, d);
    return (uint32_t)i;
}

/* Whether slot s's key is the visit key of parts p (host, client, user; lengths len). */
static bool visit_is(const struct store_rollup_acc *acc, const struct slot *s, const char *const *p,
                     const size_t *len)
{
    const char *k = acc->arena + s->key_off;

    if (s->key_len != len[0] + len[1] + len[2] + 2)
        return false;
    for (int i = 0; i < 3; i++) {
        if (memcmp(k, p[i], len[i]) != 0 || (i < 2 && k[len[i]] != '\0'))
            return false;
        k += len[i] + 1;
    }
    return true;
}

/* slot_add for a visit: its key from its parts, put together in the arena only for a new
 * slot (room checked by the caller). Returns the slot's index. */
static uint32_t visit_add(struct store_rollup_acc *acc, int64_t hour, const char *const *p,
                          const size_t *len, uint64_t key_hash, const struct store_rollup_sums *d)
{
    uint64_t h = mix(mix(key_hash, (uint64_t)hour), (uint64_t)(VISIT_LEVEL * 8 + VISIT_DIM));
    size_t mask = 2 * acc->keys - 1, i = h & mask;

    for (;; i = (i + 1) & mask) {
        struct slot *s = &acc->slots[i];

        if (s->hash == 0) {
            slot_init(acc, s, h, VISIT_LEVEL, VISIT_DIM, hour, len[0] + len[1] + len[2] + 2);
            for (int k = 0; k < 3; k++) {
                memcpy(acc->arena + acc->arena_len, p[k], len[k]);
                acc->arena_len += len[k];
                if (k < 2)
                    acc->arena[acc->arena_len++] = '\0';
            }
            acc->used_at[acc->used++] = (uint32_t)i;
            break;
        }
        if (s->hash == h && s->bucket_ms == hour && s->level == VISIT_LEVEL &&
            s->dim == VISIT_DIM && visit_is(acc, s, p, len) && node_is(acc, s))
            break;
    }
    sums_add(&acc->slots[i].sums, d);
    return (uint32_t)i;
}

static int64_t floor_to(int64_t t, int64_t unit)
{
    return t - ((t % unit) + unit) % unit;
}

bool store_rollup_add(struct store_rollup_acc *acc, const struct store_rollup_row *r, int sign)
{
    bool deny = r->decision == STORE_DENY, report = r->decision == STORE_REPORT;
    int64_t bytes = r->bytes_up + r->bytes_down;
    struct store_rollup_sums d = {
        .requests = sign,
        .blocked = deny ? sign : 0,
        .reported = report ? sign : 0,
        .bytes_up = sign * r->bytes_up,
        .bytes_down = sign * r->bytes_down,
        .blocked_bytes = deny ? sign * bytes : 0,
        .reported_bytes = report ? sign * bytes : 0,
    };
    char rule[12], *p = rule + sizeof(rule);
    uint32_t rule_id = r->rule_id < 0 ? 0 : (uint32_t)r->rule_id;
    int64_t id = r->id > 0 ? r->id : 0;
    const char *keys[STORE_ROLLUP_DIMS];
    size_t lens[STORE_ROLLUP_DIMS], need = 0, node_len = strnlen(r->node, STORE_NODE_NAME_MAX);
    const char *visit[3];
    size_t visit_lens[3];
    uint64_t visit_hash;
    int64_t hour;
    struct last_key *lv = &acc->last_visit;
    struct slot *vs;
    uint64_t hashes[STORE_ROLLUP_DIMS];
    int64_t minute;
    struct minute_ids *ids = NULL;
    bool same_node = acc->node_off != UINT32_MAX && acc->node_len == node_len &&
                     memcmp(acc->arena + acc->node_off, r->node, node_len) == 0;

    /* The rule's key is its id in decimal. */
    do {
        *--p = (char)('0' + rule_id % 10);
        rule_id /= 10;
    } while (rule_id);
    keys[STORE_DIM_ALL] = "";
    keys[STORE_DIM_HOST] = r->host;
    keys[STORE_DIM_CLIENT] = r->client;
    keys[STORE_DIM_RULE] = p;
    /* Another node than the last row's: its name goes into the arena once, for all the
     * slots of its rows that follow, and the last row's slots are not this row's. */
    if (!same_node) {
        if (acc->arena_len + node_len > acc->keys * KEY_BYTES)
            return false;
        acc->node_off = (uint32_t)acc->arena_len;
        acc->node_len = (uint8_t)node_len;
        acc->node_hash = hash_text(r->node, node_len);
        memcpy(acc->arena + acc->arena_len, r->node, node_len);
        acc->arena_len += node_len;
        for (int dim = 0; dim < STORE_ROLLUP_DIMS; dim++)
            acc->last[dim].valid = false;
        acc->last_visit.valid = false;
    }
    for (int dim = 0; dim < STORE_ROLLUP_DIMS; dim++) {
        lens[dim] = dim == STORE_DIM_RULE ? (size_t)(rule + sizeof(rule) - p)
                                          : strnlen(keys[dim], STORE_ROLLUP_KEY_MAX);
        hashes[dim] = mix(hash_text(keys[dim], lens[dim]), acc->node_hash);
        need += lens[dim];
    }
    /* The visit's key: host, client and user; its hash from the host's and the client's
     * (which cover the node). */
    visit[0] = r->host;
    visit[1] = r->client;
    visit[2] = r->user ? r->user : "";
    visit_lens[0] = lens[STORE_DIM_HOST];
    visit_lens[1] = lens[STORE_DIM_CLIENT];
    visit_lens[2] = strnlen(visit[2], STORE_ROLLUP_KEY_MAX);
    visit_hash = mix(mix(hashes[STORE_DIM_HOST], hashes[STORE_DIM_CLIENT]),
                     hash_text(visit[2], visit_lens[2]));
    /* Room for every slot this row may take, so a row is never half added. */
    if (acc->used + STORE_ROLLUP_LEVELS * STORE_ROLLUP_DIMS + 1 > acc->keys ||
        acc->arena_len + STORE_ROLLUP_LEVELS * need + visit_lens[0] + visit_lens[1] +
                visit_lens[2] + 2 >
            acc->keys * KEY_BYTES)
        return false;
    minute = floor_to(r->time_ms, level_ms[0]);
    /* Only added rows widen an id range: one taken away leaves a range wider than its rows,
     * which still holds them all. */
    if (sign > 0 && r->id > 0 && !(ids = minute_entry(acc, minute)))
        return false;
    if (ids) {
        ids->first_id = r->id < ids->first_id ? r->id : ids->first_id;
        ids->last_id = r->id > ids->last_id ? r->id : ids->last_id;
        ids->rows++;
    }
    for (int dim = 0; dim < STORE_ROLLUP_DIMS; dim++) {
        struct last_key *last = &acc->last[dim];
        const struct slot *s = &acc->slots[last->at[0]];

        if (last->valid && last->minute == minute && last->key_hash == hashes[dim] &&
            s->key_len == lens[dim] && memcmp(acc->arena + s->key_off, keys[dim], lens[dim]) == 0) {
            for (int level = 0; level < STORE_ROLLUP_LEVELS; level++)
                sums_add(&acc->slots[last->at[level]].sums, &d);
        } else {
            for (int level = 0; level < STORE_ROLLUP_LEVELS; level++)
                last->at[level] = slot_add(acc, level, dim, floor_to(r->time_ms, level_ms[level]),
                                           keys[dim], lens[dim], hashes[dim], &d);
            last->valid = true;
            last->minute = minute;
            last->key_hash = hashes[dim];
        }
        if (sign > 0) /* as the minutes' ranges: one taken away leaves a superset */
            for (int level = 0; level < STORE_ROLLUP_LEVELS; level++)
                ids_add(&acc->slots[last->at[level]], id);
    }
    hour = floor_to(r->time_ms, level_ms[VISIT_LEVEL]);
    if (lv->valid && lv->minute == hour && lv->key_hash == visit_hash &&
        visit_is(acc, &acc->slots[lv->at[0]], visit, visit_lens)) {
        sums_add(&acc->slots[lv->at[0]].sums, &d);
    } else {
        lv->at[0] = visit_add(acc, hour, visit, visit_lens, visit_hash, &d);
        lv->valid = true;
        lv->minute = hour;
        lv->key_hash = visit_hash;
    }
    vs = &acc->slots[lv->at[0]];
    if (sign > 0) {
        vs->first_ms = r->time_ms < vs->first_ms ? r->time_ms : vs->first_ms;
        vs->last_ms = r->time_ms > vs->last_ms ? r->time_ms : vs->last_ms;
    }
    return true;
}

static int set_watermark(struct store *st, int64_t rolled_id, char *err, size_t errlen)
{
    struct sql_stmt *s;
    int rc;

    if (store_prepare(st, "UPDATE access_rollup_watermark SET rolled_id = ?1 WHERE id = 1", &s, err,
                      errlen) < 0)
        return -1;
    sql_bind_int64(s, 1, rolled_id);
    rc = sql_step(s);
    sql_finalize(s);
    return rc == SQL_DONE ? 0 : store_sql_err(st, err, errlen, "rollup watermark");
}

int64_t store_rollup_watermark(struct store *st, char *err, size_t errlen)
{
    struct sql_stmt *s;
    int64_t v = -1;

    if (store_prepare(st, "SELECT rolled_id FROM access_rollup_watermark WHERE id = 1", &s, err,
                      errlen) < 0)
        return -1;
    if (sql_step(s) == SQL_ROW)
        v = sql_col_int64(s, 0);
    sql_finalize(s);
    if (v < 0)
        store_sql_err(st, err, errlen, "rollup watermark");
    return v;
}

#define ROLLUP_INSERT                                                                              \
    "INSERT INTO access_rollup(level_ms, dim, bucket_ms, key, node, requests, blocked, reported,"  \
    " bytes_up, bytes_down, blocked_bytes, reported_bytes, min_id, max_id) "
/* An id range unknown (NULL: rows from before step 50) stays unknown. PostgreSQL's LEAST and
 * GREATEST would skip the NULL: the CASE is spelled out. */
#define ROLLUP_ADD_UP                                                                              \
    " ON CONFLICT(level_ms, dim, bucket_ms, key, node) DO UPDATE SET"                              \
    " requests = access_rollup.requests + excluded.requests,"                                      \
    " blocked = access_rollup.blocked + excluded.blocked,"                                         \
    " reported = access_rollup.reported + excluded.reported,"                                      \
    " bytes_up = access_rollup.bytes_up + excluded.bytes_up,"                                      \
    " bytes_down = access_rollup.bytes_down + excluded.bytes_down,"                                \
    " blocked_bytes = access_rollup.blocked_bytes + excluded.blocked_bytes,"                       \
    " reported_bytes = access_rollup.reported_bytes + excluded.reported_bytes,"                    \
    " min_id = CASE WHEN access_rollup.min_id IS NULL OR excluded.min_id IS NULL THEN NULL"        \
    " WHEN excluded.min_id < access_rollup.min_id THEN excluded.min_id"                            \
    " ELSE access_rollup.min_id END,"                                                              \
    " max_id = CASE WHEN access_rollup.max_id IS NULL OR excluded.max_id IS NULL THEN NULL"        \
    " WHEN excluded.max_id > access_rollup.max_id THEN excluded.max_id"                            \
    " ELSE access_rollup.max_id END"

#define VISIT_INSERT                                                                               \
    "INSERT INTO access_visits(level_ms, bucket_ms, host, client, \"user\", node, requests,"       \
    " blocked, first_ms, last_ms) "
/* A first or last time unknown (NULL: retention took a row away) stays unknown. */
#define VISIT_ADD_UP                                                                               \
    " ON CONFLICT(level_ms, bucket_ms, host, client, \"user\", node) DO UPDATE SET"                \
    " requests = access_visits.requests + excluded.requests,"                                      \
    " blocked = access_visits.blocked + excluded.blocked,"                                         \
    " first_ms = CASE WHEN access_visits.first_ms IS NULL OR excluded.first_ms IS NULL THEN NULL"  \
    " WHEN excluded.first_ms < access_visits.first_ms THEN excluded.first_ms"                      \
    " ELSE access_visits.first_ms END,"                                                            \
    " last_ms = CASE WHEN access_visits.last_ms IS NULL OR excluded.last_ms IS NULL THEN NULL"     \
    " WHEN excluded.last_ms > access_visits.last_ms THEN excluded.last_ms"                         \
    " ELSE access_visits.last_ms END"
#define VISIT_COLS 10

/* A visit slot's key parts: host, client, user (each within the slot's key). */
static void visit_parts(const struct store_rollup_acc *acc, const struct slot *s, const char **p,
                        size_t *len)
{
    const char *k = acc->arena + s->key_off, *end = k + s->key_len;

    for (int i = 0; i < 3; i++) {
        const char *nul = i < 2 ? memchr(k, '\0', (size_t)(end - k)) : NULL;

        p[i] = k;
        len[i] = nul ? (size_t)(nul - k) : (size_t)(end - k);
        k = nul ? nul + 1 : end;
    }
}

/* Appends n bytes to column c's literal. false: out of memory. */
static bool col_put(struct store_rollup_acc *acc, int c, const char *s, size_t n)
{
    if (acc->col_cap[c] - acc->col_len[c] < n + 2) {
        size_t cap = acc->col_cap[c] ? acc->col_cap[c] : 4096;
        char *nb;

        while (cap - acc->col_len[c] < n + 2)
            cap *= 2;
        if (!(nb = realloc(acc->col[c], cap)))
            return false;
        acc->col[c] = nb;
        acc->col_cap[c] = cap;
    }
    memcpy(acc->col[c] + acc->col_len[c], s, n);
    acc->col_len[c] += n;
    return true;
}

static bool col_int(struct store_rollup_acc *acc, int c, int64_t v)
{
    char num[24];
    int n = snprintf(num, sizeof(num), "%s%lld", acc->col_len[c] > 1 ? "," : "", (long long)v);

    return col_put(acc, c, num, (size_t)n);
}

/* An array element: v, or NULL when not known. */
static bool col_known(struct store_rollup_acc *acc, int c, bool known, int64_t v)
{
    return known ? col_int(acc, c, v)
                 : col_put(acc, c, acc->col_len[c] > 1 ? ",NULL" : "NULL",
                           acc->col_len[c] > 1 ? 5 : 4);
}

/* A key as an array element: quoted, with its quotes and backslashes escaped. */
static bool col_text(struct store_rollup_acc *acc, int c, const char *s, size_t len)
{
    bool ok = col_put(acc, c, acc->col_len[c] > 1 ? ",\"" : "\"", acc->col_len[c] > 1 ? 2 : 1);

    for (size_t i = 0; ok && i < len; i++) {
        char esc[2] = {'\\', s[i]};

        ok = s[i] == '"' || s[i] == '\\' ? col_put(acc, c, esc, 2) : col_put(acc, c, s + i, 1);
    }
    return ok && col_put(acc, c, "\"", 1);
}

/* PostgreSQL: starts n array literals in acc's columns (flush_pg, flush_visits_pg). False
 * when out of memory. */
static bool arrays_open(struct store_rollup_acc *acc, int n)
{
    bool ok = true;

    for (int c = 0; c < n; c++) {
        acc->col_len[c] = 0;
        ok = ok && col_put(acc, c, "{", 1);
    }
    return ok;
}

/* Ends acc's n array literals and, when rows went in, runs sql with them as its parameters
 * 1..n. ok: whether filling them went well. 0 or -1 (what names the step in the error). */
static int arrays_run(struct store *st, struct store_rollup_acc *acc, int n, bool ok, size_t rows,
                      const char *sql, const char *what, char *err, size_t errlen)
{
    struct sql_stmt *up;
    int rc;

    for (int c = 0; ok && c < n; c++)
        ok = col_put(acc, c, "}", 2); /* and the NUL */
    if (!ok)
        return store_errf(err, errlen, "rollup: out of memory");
    if (rows == 0)
        return 0;
    if (store_prepare(st, sql, &up, err, errlen) < 0)
        return -1;
    for (int c = 0; c < n; c++)
        sql_bind_text(up, c + 1, acc->col[c]);
    rc = sql_step(up);
    sql_finalize(up);
    return rc == SQL_DONE ? 0 : store_sql_err(st, err, errlen, what);
}

/* PostgreSQL: every (bucket, key) of acc with requests in one statement, each column an
 * array unnested into rows. A round trip and a statement per pair held the writer below a
 * few thousand rows/s with 2,000 hosts (issue 13, docs/performance.md). The keys of acc are
 * unique, as ON CONFLICT needs within one statement. 0 or -1. */
static int flush_pg(struct store *st, struct store_rollup_acc *acc, char *err, size_t errlen)
{
    bool ok = arrays_open(acc, FLUSH_COLS);
    size_t rows = 0;

    for (size_t i = 0; ok && i < acc->used; i++) {
        const struct slot *s = &acc->slots[acc->used_at[i]];

        if (s->sums.requests == 0 || s->dim == VISIT_DIM)
            continue; /* added and taken away again; a visit (flush_visits_pg) */
        rows++;
        ok = col_int(acc, 0, level_ms[s->level]) && col_int(acc, 1, s->dim) &&
             col_int(acc, 2, s->bucket_ms) &&
             col_text(acc, 3, acc->arena + s->key_off, s->key_len) &&
             col_text(acc, 4, acc->arena + s->node_off, s->node_len) &&
             col_int(acc, 5, s->sums.requests) && col_int(acc, 6, s->sums.blocked) &&
             col_int(acc, 7, s->sums.reported) && col_int(acc, 8, s->sums.bytes_up) &&
             col_int(acc, 9, s->sums.bytes_down) && col_int(acc, 10, s->sums.blocked_bytes) &&
             col_int(acc, 11, s->sums.reported_bytes) &&
             col_known(acc, 12, s->min_id > 0, s->min_id) &&
             col_known(acc, 13, s->min_id > 0, s->max_id);
    }
    return arrays_run(st, acc, FLUSH_COLS, ok, rows,
                      ROLLUP_INSERT "SELECT * FROM unnest(?1::bigint[], ?2::int[], ?3::bigint[],"
                                    " ?4::text[], ?5::text[], ?6::bigint[], ?7::bigint[],"
                                    " ?8::bigint[], ?9::bigint[], ?10::bigint[], ?11::bigint[],"
                                    " ?12::bigint[], ?13::bigint[], ?14::bigint[])"
                                    " AS r" ROLLUP_ADD_UP,
                      "rollup", err, errlen);
}

/* PostgreSQL: acc's visits in one statement, as flush_pg. A first or last time is NULL for
 * rows taken away. 0 or -1. */
static int flush_visits_pg(struct store *st, struct store_rollup_acc *acc, char *err, size_t errlen)
{
    bool ok = arrays_open(acc, VISIT_COLS);
    size_t rows = 0;

    for (size_t i = 0; ok && i < acc->used; i++) {
        const struct slot *s = &acc->slots[acc->used_at[i]];
        const char *part[3];
        size_t len[3];
        bool known = s->sums.requests > 0;

        if (s->sums.requests == 0 || s->dim != VISIT_DIM)
            continue;
        rows++;
        visit_parts(acc, s, part, len);
        ok = col_int(acc, 0, level_ms[s->level]) && col_int(acc, 1, s->bucket_ms) &&
             col_text(acc, 2, part[0], len[0]) && col_text(acc, 3, part[1], len[1]) &&
             col_text(acc, 4, part[2], len[2]) &&
             col_text(acc, 5, acc->arena + s->node_off, s->node_len) &&
             col_int(acc, 6, s->sums.requests) && col_int(acc, 7, s->sums.blocked) &&
             col_known(acc, 8, known, s->first_ms) && col_known(acc, 9, known, s->last_ms);
    }
    return arrays_run(st, acc, VISIT_COLS, ok, rows,
                      VISIT_INSERT "SELECT * FROM unnest(?1::bigint[], ?2::bigint[], ?3::text[],"
                                   " ?4::text[], ?5::text[], ?6::text[], ?7::bigint[],"
                                   " ?8::bigint[], ?9::bigint[], ?10::bigint[]) AS r" VISIT_ADD_UP,
                      "visits", err, errlen);
}

/* The id ranges of acc's minutes into access_log_minutes, each widening what is there. */
static int flush_minutes(struct store *st, struct store_rollup_acc *acc, char *err, size_t errlen)
{
    static const char *const sql[2] = {
        "INSERT INTO access_log_minutes(minute_ms, first_id, last_id, row_count)"
        " VALUES (?1, ?2, ?3, ?4) ON CONFLICT(minute_ms) DO UPDATE SET"
        " first_id = min(access_log_minutes.first_id, excluded.first_id),"
        " last_id = max(access_log_minutes.last_id, excluded.last_id),"
        " row_count = access_log_minutes.row_count + excluded.row_count",
        "INSERT INTO access_log_minutes(minute_ms, first_id, last_id, row_count)"
        " VALUES (?1, ?2, ?3, ?4) ON CONFLICT(minute_ms) DO UPDATE SET"
        " first_id = LEAST(access_log_minutes.first_id, excluded.first_id),"
        " last_id = GREATEST(access_log_minutes.last_id, excluded.last_id),"
        " row_count = access_log_minutes.row_count + excluded.row_count",
    };
    struct sql_stmt *s;
    int rc = SQL_DONE;

    if (store_prepare(st, sql[st->backend == STORE_PG], &s, err, errlen) < 0)
        return -1;
    for (size_t i = 0; i < acc->n_minutes && rc == SQL_DONE; i++) {
        sql_bind_int64(s, 1, acc->minutes[i].minute_ms);
        sql_bind_int64(s, 2, acc->minutes[i].first_id);
        sql_bind_int64(s, 3, acc->minutes[i].last_id);
        sql_bind_int64(s, 4, acc->minutes[i].rows);
        rc = sql_step(s);
        sql_reset(s);
    }
    sql_finalize(s);
    return rc == SQL_DONE ? 0 : store_sql_err(st, err, errlen, "minute ids");
}

/* A visit slot's upsert (SQLite) or, for rows taken away, the delete of a visit left without
 * requests (both). 0 or -1. */
static int flush_visit(struct store *st, const struct store_rollup_acc *acc, const struct slot *s,
                       struct sql_stmt *up, struct sql_stmt *gone, char *err, size_t errlen)
{
    const char *part[3];
    size_t len[3];
    int rc = SQL_DONE;

    visit_parts(acc, s, part, len);
    if (up) {
        sql_bind_int64(up, 1, level_ms[s->level]);
        sql_bind_int64(up, 2, s->bucket_ms);
        for (int k = 0; k < 3; k++)
            sql_bind_textn(up, 3 + k, part[k], len[k]);
        sql_bind_textn(up, 6, acc->arena + s->node_off, s->node_len);
        sql_bind_int64(up, 7, s->sums.requests);
        sql_bind_int64(up, 8, s->sums.blocked);
        if (s->sums.requests > 0) {
            sql_bind_int64(up, 9, s->first_ms);
            sql_bind_int64(up, 10, s->last_ms);
        } else {
            sql_bind_text(up, 9, NULL); /* NULL */
            sql_bind_text(up, 10, NULL);
        }
        rc = sql_step(up);
        sql_reset(up);
    }
    if (rc == SQL_DONE && s->sums.requests < 0) {
        sql_bind_int64(gone, 1, level_ms[s->level]);
        sql_bind_int64(gone, 2, s->bucket_ms);
        for (int k = 0; k < 3; k++)
            sql_bind_textn(gone, 3 + k, part[k], len[k]);
        sql_bind_textn(gone, 6, acc->arena + s->node_off, s->node_len);
        rc = sql_step(gone);
        sql_reset(gone);
    }
    return rc == SQL_DONE ? 0 : store_sql_err(st, err, errlen, "visits");
}

int store_rollup_flush(struct store *st, struct store_rollup_acc *acc, int64_t rolled_id, char *err,
                       size_t errlen)
{
    struct sql_stmt *up = NULL, *gone = NULL, *vup = NULL, *vgone = NULL;
    bool pg = st->backend == STORE_PG;
    int rc = 0;

    if (acc->used > 0 && pg)
        rc = flush_pg(st, acc, err, errlen);
    if (rc == 0 && acc->used > 0 && pg)
        rc = flush_visits_pg(st, acc, err, errlen);
    if (rc == 0 && acc->used > 0 &&
        ((!pg &&
          (store_prepare(
               st,
               ROLLUP_INSERT
               "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)" ROLLUP_ADD_UP,
               &up, err, errlen) < 0 ||
           store_prepare(
               st, VISIT_INSERT "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)" VISIT_ADD_UP,
               &vup, err, errlen) < 0)) ||
         store_prepare(st,
                       "DELETE FROM access_rollup WHERE level_ms = ?1 AND dim = ?2"
                       " AND bucket_ms = ?3 AND key = ?4 AND node = ?5 AND requests <= 0",
                       &gone, err, errlen) < 0 ||
         store_prepare(st,
                       "DELETE FROM access_visits WHERE level_ms = ?1 AND bucket_ms = ?2"
                       " AND host = ?3 AND client = ?4 AND \"user\" = ?5 AND node = ?6"
                       " AND requests <= 0",
                       &vgone, err, errlen) < 0))
        rc = -1;
    for (size_t i = 0; rc == 0 && i < acc->used; i++) {
        const struct slot *s = &acc->slots[acc->used_at[i]];

        if (s->sums.requests == 0)
            continue; /* added and taken away again */
        if (s->dim == VISIT_DIM) {
            rc = flush_visit(st, acc, s, vup, vgone, err, errlen);
            continue;
        }
        if (!pg) { /* PostgreSQL: in flush_pg's statement */
            sql_bind_int64(up, 1, level_ms[s->level]);
            sql_bind_int64(up, 2, s->dim);
            sql_bind_int64(up, 3, s->bucket_ms);
            sql_bind_textn(up, 4, acc->arena + s->key_off, s->key_len);
            sql_bind_textn(up, 5, acc->arena + s->node_off, s->node_len);
            sql_bind_int64(up, 6, s->sums.requests);
            sql_bind_int64(up, 7, s->sums.blocked);
            sql_bind_int64(up, 8, s->sums.reported);
            sql_bind_int64(up, 9, s->sums.bytes_up);
            sql_bind_int64(up, 10, s->sums.bytes_down);
            sql_bind_int64(up, 11, s->sums.blocked_bytes);
            sql_bind_int64(up, 12, s->sums.reported_bytes);
            if (s->min_id > 0) {
                sql_bind_int64(up, 13, s->min_id);
                sql_bind_int64(up, 14, s->max_id);
            } else {
                sql_bind_text(up, 13, NULL); /* NULL: not known */
                sql_bind_text(up, 14, NULL);
            }
            if (sql_step(up) != SQL_DONE)
                rc = store_sql_err(st, err, errlen, "rollup");
            sql_reset(up);
        }
        /* Rows taken away (retention): a bucket left without requests is no longer a row. */
        if (rc == 0 && s->sums.requests < 0) {
            sql_bind_int64(gone, 1, level_ms[s->level]);
            sql_bind_int64(gone, 2, s->dim);
            sql_bind_int64(gone, 3, s->bucket_ms);
            sql_bind_textn(gone, 4, acc->arena + s->key_off, s->key_len);
            sql_bind_textn(gone, 5, acc->arena + s->node_off, s->node_len);
            if (sql_step(gone) != SQL_DONE)
                rc = store_sql_err(st, err, errlen, "rollup");
            sql_reset(gone);
        }
    }
    sql_finalize(up);
    sql_finalize(gone);
    sql_finalize(vup);
    sql_finalize(vgone);
    if (rc == 0 && acc->n_minutes > 0)
        rc = flush_minutes(st, acc, err, errlen);
    if (rc == 0 && rolled_id >= 0)
        rc = set_watermark(st, rolled_id, err, errlen);
    store_rollup_clear(acc);
    return rc;
}

void store_rollup_row_of(struct sql_stmt *s, int first, struct store_rollup_row *r)
{
    const char *host = sql_col_text(s, first + 1);
    const char *client = sql_col_text(s, first + 2);
    const char *node = sql_col_text(s, first + 4);
    const char *user = sql_col_text(s, first + 8);

    r->id = 0;
    r->user = user ? user : "";
    r->time_ms = sql_col_int64(s, first);
    r->host = host ? host : "";
    r->client = client ? client : "";
    r->rule_id = sql_col_int(s, first + 3);
    r->node = node ? node : "";
    r->decision = sql_col_int(s, first + 5);
    r->bytes_up = sql_col_int64(s, first + 6);
    r->bytes_down = sql_col_int64(s, first + 7);
}

int64_t store_rollup_catch_up(struct store *st, struct store_rollup_acc *acc, int64_t max,
                              bool *done, int64_t *rolled, char *err, size_t errlen)
{
    struct sql_stmt *s;
    int64_t mark = store_rollup_watermark(st, err, errlen), last, n = 0;
    int rc;

    *done = false;
    if (mark < 0)
        return -1;
    last = mark;
    store_rollup_clear(acc);
    if (store_prepare(st,
                      "SELECT id, " STORE_ROLLUP_ROW_COLS
                      " FROM access_log WHERE id > ?1 ORDER BY id LIMIT ?2",
                      &s, err, errlen) < 0)
        return -1;
    sql_bind_int64(s, 1, mark);
    sql_bind_int64(s, 2, max);
    while ((rc = sql_step(s)) == SQL_ROW) {
        struct store_rollup_row r;

        store_rollup_row_of(s, 1, &r);
        r.id = sql_col_int64(s, 0);
        if (!store_rollup_add(acc, &r, 1)) {
            /* Full: what is summed so far goes in, up to the row before this one. The
             * reading statement stays open: the upserts touch another table. */
            if (store_rollup_flush(st, acc, last, err, errlen) < 0) {
                sql_finalize(s);
                return -1;
            }
            store_rollup_add(acc, &r, 1);
        }
        last = sql_col_int64(s, 0);
        n++;
    }
    sql_finalize(s);
    if (rc != SQL_DONE)
        return store_sql_err(st, err, errlen, "rollup catch-up");
    if (store_rollup_flush(st, acc, last, err, errlen) < 0)
        return -1;
    *done = n < max;
    *rolled = last;
    return n;
}

/* ---- Reading a range ---- */

static int64_t ceil_to(int64_t t, int64_t unit)
{
    int64_t f = floor_to(t, unit);

    return f == t ? t : f + unit;
}

struct reader {
    struct store *st;
    enum store_rollup_dim dim;
    int only;         /* a decision whose rows alone count, or -1 */
    const char *node; /* the node whose rows alone count, or NULL */
    store_rollup_fn fn;
    void *arg;
    char *err;
    size_t errlen;
};

/* dim's rollup rows of one level with buckets in [lo, hi), of every node or of rd->node. */
static int read_level(struct reader *rd, int level, int64_t lo, int64_t hi)
{
    char sql[320];
    struct sql_stmt *s;
    int rc;

    snprintf(sql, sizeof(sql),
             "SELECT bucket_ms, key, requests, blocked, reported, bytes_up, bytes_down,"
             " blocked_bytes, reported_bytes FROM access_rollup WHERE level_ms = ?1 AND dim = ?2"
             " AND bucket_ms >= ?3 AND bucket_ms < ?4%s%s",
             rd->only == STORE_DENY     ? " AND blocked > 0"
             : rd->only == STORE_REPORT ? " AND reported > 0"
                                        : "",
             rd->node ? " AND node = ?5" : "");
    if (store_prepare(rd->st, sql, &s, rd->err, rd->errlen) < 0)
        return -1;
    sql_bind_int64(s, 1, level_ms[level]);
    sql_bind_int64(s, 2, rd->dim);
    sql_bind_int64(s, 3, lo);
    sql_bind_int64(s, 4, hi);
    if (rd->node)
        sql_bind_text(s, 5, rd->node);
    while ((rc = sql_step(s)) == SQL_ROW) {
        struct store_rollup_sums sums = {
            .requests = sql_col_int64(s, 2),
            .blocked = sql_col_int64(s, 3),
            .reported = sql_col_int64(s, 4),
            .bytes_up = sql_col_int64(s, 5),
            .bytes_down = sql_col_int64(s, 6),
            .blocked_bytes = sql_col_int64(s, 7),
            .reported_bytes = sql_col_int64(s, 8),
        };
        const char *key = sql_col_text(s, 1);

        rd->fn(rd->arg, sql_col_int64(s, 0), key ? key : "", key ? strlen(key) : 0, &sums);
    }
    sql_finalize(s);
    return rc == SQL_DONE ? 0 : store_sql_err(rd->st, rd->err, rd->errlen, "rollup");
}

/* Raw rows with time in [lo, hi), each as the sums of one request; above_id > 0: only rows
 * with a greater id (the rows the rollups do not hold yet), found by id, not by time. */
static int read_raw(struct reader *rd, int64_t lo, int64_t hi, int64_t above_id)
{
    static const char *const key_col[STORE_ROLLUP_DIMS] = {"''", "host", "client", "rule_id"};
    char sql[360];
    struct sql_stmt *s;
    int rc;

    if (hi <= lo)
        return 0;
    snprintf(sql, sizeof(sql),
             "SELECT time_ms, %s, decision, bytes_up, bytes_down FROM access_log"
             " WHERE %s >= ?1 AND %s < ?2%s%s%s",
             key_col[rd->dim], above_id >= 0 ? "+time_ms" : "time_ms",
             above_id >= 0 ? "+time_ms" : "time_ms", above_id >= 0 ? " AND id > ?3" : "",
             rd->only == STORE_DENY     ? " AND decision = 1"
             : rd->only == STORE_REPORT ? " AND decision = 3"
                                        : "",
             !rd->node       ? ""
             : above_id >= 0 ? " AND node = ?4"
                             : " AND node = ?3");
    if (store_prepare(rd->st, sql, &s, rd->err, rd->errlen) < 0)
        return -1;
    sql_bind_int64(s, 1, lo);
    sql_bind_int64(s, 2, hi);
    if (above_id >= 0)
        sql_bind_int64(s, 3, above_id);
    if (rd->node)
        sql_bind_text(s, above_id >= 0 ? 4 : 3, rd->node);
    while ((rc = sql_step(s)) == SQL_ROW) {
        int decision = sql_col_int(s, 2);
        int64_t up = sql_col_int64(s, 3), down = sql_col_int64(s, 4);
        bool deny = decision == STORE_DENY, report = decision == STORE_REPORT;
        struct store_rollup_sums sums = {
            .requests = 1,
            .blocked = deny,
            .reported = report,
            .bytes_up = up,
            .bytes_down = down,
            .blocked_bytes = deny ? up + down : 0,
            .reported_bytes = report ? up + down : 0,
        };
        const char *key = sql_col_text(s, 1);

        rd->fn(rd->arg, sql_col_int64(s, 0), key ? key : "", key ? strlen(key) : 0, &sums);
    }
    sql_finalize(s);
    return rc == SQL_DONE ? 0 : store_sql_err(rd->st, rd->err, rd->errlen, "scan");
}

/* [lo, hi) from the coarsest level at or below level (whole buckets), the parts it does not
 * cover from the finer levels, the partial minutes at the edges from raw rows. */
static int read_span(struct reader *rd, int level, int64_t lo, int64_t hi)
{
    int64_t a, b;

    if (hi <= lo)
        return 0;
    if (level < 0)
        return read_raw(rd, lo, hi, -1);
    a = ceil_to(lo, level_ms[level]);
    b = floor_to(hi, level_ms[level]);
    if (a >= b)
        return read_span(rd, level - 1, lo, hi);
    if (read_span(rd, level - 1, lo, a) < 0 || read_level(rd, level, a, b) < 0)
        return -1;
    return read_span(rd, level - 1, b, hi);
}

int store_rollup_read(struct store *st, enum store_rollup_dim dim, int64_t lo, int64_t hi,
                      int64_t unit_ms, int only, const char *node, store_rollup_fn fn, void *arg,
                      char *err, size_t errlen)
{
    struct reader rd = {st, dim, only, node, fn, arg, err, errlen};
    int level = STORE_ROLLUP_LEVELS - 1;
    int64_t mark, a, b;

    /* A bucket counts whole only inside one unit: its length must divide the unit. */
    while (level >= 0 && unit_ms > 0 && unit_ms % level_ms[level] != 0)
        level--;
    if (level < 0)
        return read_raw(&rd, lo, hi, -1);
    if ((mark = store_rollup_watermark(st, err, errlen)) < 0)
        return -1;
    if (read_span(&rd, level, lo, hi) < 0)
        return -1;
    /* The whole minutes read from the rollups miss the rows above the watermark. */
    a = ceil_to(lo, MINUTE_MS);
    b = floor_to(hi, MINUTE_MS);
    return a < b ? read_raw(&rd, a, b, mark) : 0;
}

/* ---- Distinct keys of a range ----
 *
 * A count of the distinct hosts or clients needs no sums: only whether a key has a row in the
 * range. The whole hours (and days) are read as store_rollup_read does; for the partial hour
 * at each edge the keys of that hour's rollup row are read first, and only those not seen yet
 * (few: a key of the edge hour was mostly active in the hours beside it) are looked up in the
 * edge's minutes, instead of reading every minute row of up to two hours. */
#define EDGE_PROBE_KEYS 64 /* more unseen keys than this in an edge hour: read its minutes */

/* The keys of [x, y), which lies in one hour, not yet seen, to fn; mark: the watermark. */
static int edge_keys(struct reader *rd, int64_t x, int64_t y, int64_t mark,
                     store_rollup_seen_fn seen)
{
    static const struct store_rollup_sums none;
    int64_t hour = floor_to(x, HOUR_MS), cm = ceil_to(x, MINUTE_MS), fm = floor_to(y, MINUTE_MS);
    char *cand[EDGE_PROBE_KEYS];
    int ncand = 0, rc;
    bool many = false;
    char sql[512 + 8 * (60 + EDGE_PROBE_KEYS)];
    size_t used;
    struct sql_stmt *s;

    if (cm >= fm)
        return read_raw(rd, x, y, -1);
    /* The rows no rollup holds: the partial minutes, the rows above the watermark. */
    if (read_raw(rd, x, cm, -1) < 0 || read_raw(rd, fm, y, -1) < 0 ||
        read_raw(rd, cm, fm, mark) < 0)
        return -1;
    snprintf(sql, sizeof(sql),
             "SELECT key FROM access_rollup WHERE level_ms = ?1 AND dim = ?2 AND bucket_ms = ?3%s",
             rd->node ? " AND node = ?4" : "");
    if (store_prepare(rd->st, sql, &s, rd->err, rd->errlen) < 0)
        return -1;
    sql_bind_int64(s, 1, HOUR_MS);
    sql_bind_int64(s, 2, rd->dim);
    sql_bind_int64(s, 3, hour);
    if (rd->node)
        sql_bind_text(s, 4, rd->node);
    while ((rc = sql_step(s)) == SQL_ROW) {
        const char *key = sql_col_text(s, 0);
        size_t len = key ? strlen(key) : 0;

        if (many || seen(rd->arg, key ? key : "", len))
            continue;
        if (ncand == EDGE_PROBE_KEYS || !(cand[ncand] = strndup(key ? key : "", len)))
            many = true;
        else
            ncand++;
    }
    sql_finalize(s);
    if (rc != SQL_DONE) {
        rc = store_sql_err(rd->st, rd->err, rd->errlen, "rollup");
        goto out;
    }
    rc = 0;
    if (many) {
        rc = read_level(rd, 0, cm, fm);
        goto out;
    }
    if (ncand == 0)
        goto out;
    /* Those keys in the edge's whole minutes: one probe of the key per minute and key. */
    used = (size_t)snprintf(sql, sizeof(sql),
                            "SELECT bucket_ms, key FROM access_rollup WHERE level_ms = ?1"
                            " AND dim = ?2%s AND bucket_ms IN (",
                            rd->node ? " AND node = ?3" : " AND CAST(?3 AS TEXT) IS NULL");
    for (int64_t m = cm, i = 0; m < fm; m += MINUTE_MS, i++)
        used += (size_t)snprintf(sql + used, sizeof(sql) - used, "%s?%lld", i ? "," : "",
                                 (long long)(4 + i));
    used += (size_t)snprintf(sql + used, sizeof(sql) - used, ") AND key IN (");
    for (int i = 0; i < ncand; i++)
        used += (size_t)snprintf(sql + used, sizeof(sql) - used, "%s?%lld", i ? "," : "",
                                 (long long)(4 + (fm - cm) / MINUTE_MS + i));
    snprintf(sql + used, sizeof(sql) - used, ")");
    if (store_prepare(rd->st, sql, &s, rd->err, rd->errlen) < 0) {
        rc = -1;
        goto out;
    }
    sql_bind_int64(s, 1, MINUTE_MS);
    sql_bind_int64(s, 2, rd->dim);
    sql_bind_text(s, 3, rd->node);
    for (int64_t m = cm, i = 0; m < fm; m += MINUTE_MS, i++)
        sql_bind_int64(s, (int)(4 + i), m);
    for (int i = 0; i < ncand; i++)
        sql_bind_text(s, (int)(4 + (fm - cm) / MINUTE_MS + i), cand[i]);
    while ((rc = sql_step(s)) == SQL_ROW) {
        const char *key = sql_col_text(s, 1);

        rd->fn(rd->arg, sql_col_int64(s, 0), key ? key : "", key ? strlen(key) : 0, &none);
    }
    sql_finalize(s);
    rc = rc == SQL_DONE ? 0 : store_sql_err(rd->st, rd->err, rd->errlen, "rollup");
out:
    for (int i = 0; i < ncand; i++)
        free(cand[i]);
    return rc;
}

int store_rollup_keys(struct store *st, enum store_rollup_dim dim, int64_t lo, int64_t hi,
                      const char *node, store_rollup_fn fn, store_rollup_seen_fn seen, void *arg,
                      char *err, size_t errlen)
{
    struct reader rd = {st, dim, -1, node, fn, arg, err, errlen};
    int64_t a = ceil_to(lo, HOUR_MS), b = floor_to(hi, HOUR_MS), mark;

    if (a >= b)
        return store_rollup_read(st, dim, lo, hi, 0, -1, node, fn, arg, err, errlen);
    if (store_rollup_read(st, dim, a, b, 0, -1, node, fn, arg, err, errlen) < 0 ||
        (mark = store_rollup_watermark(st, err, errlen)) < 0)
        return -1;
    if (lo < a && edge_keys(&rd, lo, a, mark, seen) < 0)
        return -1;
    return b < hi ? edge_keys(&rd, b, hi, mark, seen) : 0;
}

int store_rollup_drop_range(struct store *st, int64_t lo, int64_t hi, char *err, size_t errlen)
{
    struct sql_stmt *s;
    int rc = SQL_DONE;

    /* One range of the primary key per level and dimension. */
    if (store_prepare(st,
                      "DELETE FROM access_rollup WHERE level_ms = ?1 AND dim = ?2"
                      " AND bucket_ms >= ?3 AND bucket_ms < ?4",
                      &s, err, errlen) < 0)
        return -1;
    for (int level = 0; level < STORE_ROLLUP_LEVELS && rc == SQL_DONE; level++) {
        for (int dim = 0; dim < STORE_ROLLUP_DIMS && rc == SQL_DONE; dim++) {
            sql_bind_int64(s, 1, level_ms[level]);
            sql_bind_int64(s, 2, dim);
            sql_bind_int64(s, 3, lo);
            sql_bind_int64(s, 4, hi);
            rc = sql_step(s);
            sql_reset(s);
        }
    }
    sql_finalize(s);
    if (rc != SQL_DONE)
        return store_sql_err(st, err, errlen, "rollup");
    if (store_prepare(st,
                      "DELETE FROM access_visits WHERE level_ms = ?1 AND bucket_ms >= ?2"
                      " AND bucket_ms < ?3",
                      &s, err, errlen) < 0)
        return -1;
    sql_bind_int64(s, 1, STORE_VISIT_LEVEL_MS);
    sql_bind_int64(s, 2, lo);
    sql_bind_int64(s, 3, hi);
    rc = sql_step(s);
    sql_finalize(s);
    if (rc != SQL_DONE)
        return store_sql_err(st, err, errlen, "visits");
    if (store_prepare(st, "DELETE FROM access_log_minutes WHERE minute_ms >= ?1 AND minute_ms < ?2",
                      &s, err, errlen) < 0)
        return -1;
    sql_bind_int64(s, 1, lo);
    sql_bind_int64(s, 2, hi);
    rc = sql_step(s);
    sql_finalize(s);
    return rc == SQL_DONE ? 0 : store_sql_err(st, err, errlen, "minute ids");
}
