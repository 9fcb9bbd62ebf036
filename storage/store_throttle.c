/* store_throttle: how long a login attempt must wait, per account and per source address,
 * with delays that double after fail_max failures, and the (account, address) pairs that
 * logged in before, which the account's delay spares. In memory only; see store.h.
 *
 * Three set-associative tables of fixed size, keyed by a keyed BLAKE2b of the account name,
 * the address, or both (random key per process, so nobody can aim many names at one set).
 * Eviction prefers empty entries, then forgotten ones, then those not delaying anything,
 * then the oldest: a flood of new names or addresses pushes out a delaying entry last.
 * Known pairs are only ever added by a successful login, which a guesser cannot produce.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "storage/store.h"

#define FAIL_SETS 1024
#define KNOWN_SETS 1024
#define WAYS 4
#define KNOWN_MS (30LL * 24 * 3600 * 1000) /* a pair that logged in stays known this long */

struct fail_entry {
    uint64_t key; /* 0 = empty */
    uint32_t fails;
    int64_t last_fail_ms;
};

struct known_entry {
    uint64_t key; /* 0 = empty */
    int64_t last_ok_ms;
};

struct store_throttle {
    pthread_mutex_t mu; /* guards both tables */
    struct store_throttle_opts opts;
    unsigned char hash_key[crypto_generichash_KEYBYTES];
    struct fail_entry fails[FAIL_SETS][WAYS];
    struct known_entry known[KNOWN_SETS][WAYS];
};

static int64_t or_default(int64_t v, int64_t def)
{
    return v > 0 ? v : def;
}

struct store_throttle *store_throttle_new(const struct store_throttle_opts *opts)
{
    struct store_throttle *t;

    if (sodium_init() < 0)
        return NULL;
    t = calloc(1, sizeof(*t));
    if (!t)
        return NULL;
    pthread_mutex_init(&t->mu, NULL);
    t->opts.fail_max = opts && opts->fail_max ? opts->fail_max : 5;
    t->opts.delay_ms = or_default(opts ? opts->delay_ms : 0, 1000);
    t->opts.delay_max_ms = or_default(opts ? opts->delay_max_ms : 0, 5 * 60 * 1000);
    t->opts.forget_ms = or_default(opts ? opts->forget_ms : 0, 15 * 60 * 1000);
    randombytes_buf(t->hash_key, sizeof(t->hash_key));
    return t;
}

void store_throttle_free(struct store_throttle *t)
{
    if (!t)
        return;
    pthread_mutex_destroy(&t->mu);
    free(t);
}

/* The address as the throttle sees it: IPv4 as is (IPv4-mapped IPv6 too), IPv6 cut to its
 * /64, since one host usually holds a whole /64 and could rotate through it. Text that is
 * not an address is taken as is. Returns the byte length written to out (at most 17). */
static size_t addr_bytes(const char *addr, unsigned char out[17])
{
    struct in6_addr a6;
    struct in_addr a4;

    if (inet_pton(AF_INET, addr, &a4) == 1) {
        out[0] = 4;
        memcpy(out + 1, &a4, 4);
        return 5;
    }
    if (inet_pton(AF_INET6, addr, &a6) == 1) {
        if (IN6_IS_ADDR_V4MAPPED(&a6)) {
            out[0] = 4;
            memcpy(out + 1, &a6.s6_addr[12], 4);
            return 5;
        }
        out[0] = 6;
        memcpy(out + 1, a6.s6_addr, 8);
        return 9;
    }
    return 0;
}

/* Keyed hash of a tag byte ('u' account, 'a' address, 'k' pair) and the parts; never 0. */
static uint64_t key_of(const struct store_throttle *t, char tag, const char *user, const char *addr)
{
    crypto_generichash_state h;
    unsigned char ab[17], out[8];
    uint64_t v;
    size_t n;

    crypto_generichash_init(&h, t->hash_key, sizeof(t->hash_key), sizeof(out));
    crypto_generichash_update(&h, (const unsigned char *)&tag, 1);
    if (user) /* the name has no NUL, so "name\0" ends it unambiguously */
        crypto_generichash_update(&h, (const unsigned char *)user, strlen(user) + 1);
    if (addr) {
        n = addr_bytes(addr, ab);
        if (n)
            crypto_generichash_update(&h, ab, n);
        else
            crypto_generichash_update(&h, (const unsigned char *)addr, strlen(addr) + 1);
    }
    crypto_generichash_final(&h, out, sizeof(out));
    memcpy(&v, out, sizeof(v));
    return v ? v : 1;
}

/* Failures still counted at now: none once forget_ms passed without one. */
static uint32_t fails_now(const struct store_throttle *t, const struct fail_entry *e, int64_t now)
{
    if (e->key == 0 || now - e->last_fail_ms >= t->opts.forget_ms)
        return 0;
    return e->fails;
}

/* When the entry lets the next attempt through: its last failure plus delay_ms doubled for
 * each failure past fail_max, at most delay_max_ms; 0 while under fail_max. */
static int64_t until_ms(const struct store_throttle *t, const struct fail_entry *e, int64_t now)
{
    uint32_t f = fails_now(t, e, now);
    int64_t delay = t->opts.delay_ms;

    if (f < t->opts.fail_max)
        return 0;
    for (uint32_t i = t->opts.fail_max; i < f && delay < t->opts.delay_max_ms; i++)
        delay *= 2;
    if (delay > t->opts.delay_max_ms)
        delay = t->opts.delay_max_ms;
    return e->last_fail_ms + delay;
}

static struct fail_entry *fail_find(struct store_throttle *t, uint64_t key)
{
    struct fail_entry *set = t->fails[(key >> 32) % FAIL_SETS];

    for (int i = 0; i < WAYS; i++)
        if (set[i].key == key)
            return &set[i];
    return NULL;
}

/* Lower is evicted first: empty or forgotten, then not delaying, then delaying. */
static int fail_rank(const struct store_throttle *t, const struct fail_entry *e, int64_t now)
{
    if (fails_now(t, e, now) == 0)
        return 0;
    return until_ms(t, e, now) > now ? 2 : 1;
}

static void fail_add(struct store_throttle *t, uint64_t key, int64_t now)
{
    struct fail_entry *e = fail_find(t, key);

    if (!e) {
        struct fail_entry *set = t->fails[(key >> 32) % FAIL_SETS];

        e = &set[0];
        for (int i = 1; i < WAYS; i++) {
            int r = fail_rank(t, &set[i], now), er = fail_rank(t, e, now);

            if (r < er || (r == er && set[i].last_fail_ms < e->last_fail_ms))
                e = &set[i];
        }
        *e = (struct fail_entry){.key = key};
    }
    e->fails = fails_now(t, e, now) + 1;
    e->last_fail_ms = now;
}

static int64_t wait_of(struct store_throttle *t, uint64_t key, int64_t now)
{
    const struct fail_entry *e = fail_find(t, key);
    int64_t until = e ? until_ms(t, e, now) : 0;

    return until > now ? until - now : 0;
}

static struct known_entry *known_find(struct store_throttle *t, uint64_t key, int64_t now)
{
    struct known_entry *set = t->known[(key >> 32) % KNOWN_SETS];

    for (int i = 0; i < WAYS; i++)
        if (set[i].key == key && now - set[i].last_ok_ms < KNOWN_MS)
            return &set[i];
    return NULL;
}

static void known_add(struct store_throttle *t, uint64_t key, int64_t now)
{
    struct known_entry *set = t->known[(key >> 32) % KNOWN_SETS], *e = known_find(t, key, now);

    if (!e) { /* an empty entry has last_ok_ms 0, so it goes before any used one */
        e = &set[0];
        for (int i = 1; i < WAYS; i++)
            if (set[i].last_ok_ms < e->last_ok_ms)
                e = &set[i];
    }
    e->key = key;
    e->last_ok_ms = now;
}

int64_t store_throttle_wait_ms(struct store_throttle *t, const char *user, const char *addr,
                               int64_t now_ms)
{
    uint64_t ku = key_of(t, 'u', user, NULL), ka = key_of(t, 'a', NULL, addr);
    uint64_t kk = key_of(t, 'k', user, addr);
    int64_t wait_addr, wait_user = 0;

    pthread_mutex_lock(&t->mu);
    wait_addr = wait_of(t, ka, now_ms);
    if (!known_find(t, kk, now_ms))
        wait_user = wait_of(t, ku, now_ms);
    pthread_mutex_unlock(&t->mu);
    return wait_addr > wait_user ? wait_addr : wait_user;
}

void store_throttle_note(struct store_throttle *t, const char *user, const char *addr, bool ok,
                         int64_t now_ms)
{
    uint64_t ku = key_of(t, 'u', user, NULL), ka = key_of(t, 'a', NULL, addr);
    uint64_t kk = key_of(t, 'k', user, addr);

    pthread_mutex_lock(&t->mu);
    if (ok) {
        /* No count is cleared (see store.h): the pair becomes known, and that is all. */
        known_add(t, kk, now_ms);
    } else {
        fail_add(t, ka, now_ms);
        fail_add(t, ku, now_ms);
    }
    pthread_mutex_unlock(&t->mu);
}
