/* client_limit: per-address connection counts. Open addressing with linear probing at most
 * half full, and backward-shift deletion (no tombstones, so a long-running table never
 * degrades). See client_limit.h. */
#include "proxy/client_limit.h"

#include <netinet/in.h>
#include <pthread.h>
#include <sodium.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

struct slot {
    uint8_t addr[16];
    uint32_t hash;  /* of addr, kept so that deletion need not hash again */
    uint32_t count; /* 0: empty */
};

struct client_limit {
    pthread_mutex_t lock;
    struct slot *slots; /* owned, cap entries, under lock */
    size_t cap;         /* a power of two, at least twice max */
    size_t used;        /* under lock */
    size_t max;
    unsigned char key[crypto_shorthash_KEYBYTES];
};

struct client_limit *client_limit_new(size_t max_clients)
{
    if (sodium_init() < 0)
        return NULL;
    struct client_limit *t = calloc(1, sizeof(*t));
    if (!t)
        return NULL;
    t->max = max_clients ? max_clients : 1;
    t->cap = 2;
    while (t->cap < 2 * t->max)
        t->cap *= 2;
    t->slots = calloc(t->cap, sizeof(*t->slots)); /* untouched pages cost no memory */
    if (!t->slots) {
        free(t);
        return NULL;
    }
    randombytes_buf(t->key, sizeof(t->key));
    pthread_mutex_init(&t->lock, NULL);
    return t;
}

void client_limit_free(struct client_limit *t)
{
    if (!t)
        return;
    pthread_mutex_destroy(&t->lock);
    free(t->slots);
    free(t);
}

static bool addr_key(const struct sockaddr *sa, uint8_t out[16])
{
    if (sa->sa_family == AF_INET6) {
        memcpy(out, &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr, 16);
        return true;
    }
    if (sa->sa_family == AF_INET) {
        static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
        memcpy(out, mapped, 12);
        memcpy(out + 12, &((const struct sockaddr_in *)(const void *)sa)->sin_addr, 4);
        return true;
    }
    return false;
}

static uint32_t hash_key(const struct client_limit *t, const uint8_t addr[16])
{
    unsigned char h[crypto_shorthash_BYTES];
    crypto_shorthash(h, addr, 16, t->key);
    uint32_t v;
    memcpy(&v, h, sizeof(v));
    return v;
}

/* The slot holding addr, or the empty slot where it would go. Under lock. */
static size_t find(const struct client_limit *t, const uint8_t addr[16], uint32_t hash)
{
    size_t mask = t->cap - 1;
    size_t i = hash & mask;
    while (t->slots[i].count && memcmp(t->slots[i].addr, addr, 16) != 0)
        i = (i + 1) & mask;
    return i;
}

enum client_take client_limit_take(struct client_limit *t, const struct sockaddr *addr,
                                   unsigned max)
{
    uint8_t key[16];
    if (!addr_key(addr, key))
        return CLIENT_UNTRACKED;
    uint32_t hash = hash_key(t, key);
    enum client_take r = CLIENT_TAKEN;
    pthread_mutex_lock(&t->lock);
    struct slot *s = &t->slots[find(t, key, hash)];
    if (s->count == 0) {
        if (t->used >= t->max) {
            r = CLIENT_UNTRACKED;
        } else {
            memcpy(s->addr, key, 16);
            s->hash = hash;
            s->count = 1;
            t->used++;
        }
    } else if (max && s->count >= max) {
        r = CLIENT_OVER_LIMIT;
    } else {
        s->count++;
    }
    pthread_mutex_unlock(&t->lock);
    return r;
}

/* Empties slot i and moves later entries of its probe run back, so that every entry stays
 * reachable from its home slot without passing an empty one. Under lock. */
static void remove_at(struct client_limit *t, size_t i)
{
    size_t mask = t->cap - 1;
    size_t j = i;
    for (;;) {
        t->slots[i].count = 0;
        for (;;) {
            j = (j + 1) & mask;
            if (t->slots[j].count == 0)
                return;
            size_t home = t->slots[j].hash & mask;
            /* The entry at j may move to i unless its home lies cyclically in (i, j]. */
            bool stays = i <= j ? (i < home && home <= j) : (i < home || home <= j);
            if (!stays)
                break;
        }
        t->slots[i] = t->slots[j];
        i = j;
    }
}

void client_limit_release(struct client_limit *t, const struct sockaddr *addr)
{
    uint8_t key[16];
    if (!addr_key(addr, key))
        return;
    uint32_t hash = hash_key(t, key);
    pthread_mutex_lock(&t->lock);
    size_t i = find(t, key, hash);
    if (t->slots[i].count > 1) {
        t->slots[i].count--;
    } else if (t->slots[i].count == 1) {
        remove_at(t, i);
        t->used--;
    }
    pthread_mutex_unlock(&t->lock);
}

unsigned client_limit_count(struct client_limit *t, const struct sockaddr *addr)
{
    uint8_t key[16];
    if (!addr_key(addr, key))
        return 0;
    uint32_t hash = hash_key(t, key);
    pthread_mutex_lock(&t->lock);
    unsigned n = t->slots[find(t, key, hash)].count;
    pthread_mutex_unlock(&t->lock);
    return n;
}
