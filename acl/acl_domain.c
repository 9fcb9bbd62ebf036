/* acl_domain.c: the suffix hash index that lets one request be checked against 100,000
 * domains with a handful of lookups. Keys and hosts arrive canonical (acl_host.c).
 */
#include "acl/acl_domain.h"

#include <stdlib.h>
#include <string.h>

#define FNV_OFFSET 2166136261u
#define FNV_PRIME 16777619u

static inline uint32_t fnv_step(uint32_t h, unsigned char c)
{
    return (h ^ c) * FNV_PRIME;
}

/* FNV's low bits are weak for power-of-two tables; spread them before masking. */
static inline uint32_t slot_of(uint32_t h)
{
    h ^= h >> 16;
    h *= 0x45d9f3bu;
    h ^= h >> 16;
    return h;
}

/* The hash of a key as the lookup computes it: FNV-1a over the bytes from right to left. */
static uint32_t key_hash(const char *s, size_t len)
{
    uint32_t h = FNV_OFFSET;
    for (size_t i = len; i-- > 0;)
        h = fnv_step(h, (unsigned char)s[i]);
    return h;
}

int acl_domain_index_init(struct acl_domain_index *ix, size_t max_keys)
{
    memset(ix, 0, sizeof(*ix));
    size_t cap = 16;
    while (cap < max_keys * 2)
        cap *= 2;
    if (cap > (size_t)UINT32_MAX)
        return -1;
    ix->slots = calloc(cap, sizeof(*ix->slots));
    ix->pair_slot = malloc((max_keys ? max_keys : 1) * sizeof(uint32_t));
    ix->pair_rule = malloc((max_keys ? max_keys : 1) * sizeof(uint32_t));
    if (!ix->slots || !ix->pair_slot || !ix->pair_rule) {
        acl_domain_index_free(ix);
        return -1;
    }
    ix->mask = (uint32_t)(cap - 1);
    ix->pairs_cap = max_keys;
    return 0;
}

static const struct acl_domain_entry *find(const struct acl_domain_index *ix, const char *key,
                                           size_t len, uint32_t h, uint32_t *slot_out)
{
    uint32_t i = slot_of(h) & ix->mask;
    for (;;) {
        const struct acl_domain_entry *e = &ix->slots[i];
        if (e->nrules == 0) {
            if (slot_out)
                *slot_out = i;
            return NULL;
        }
        if (e->hash == h && e->key_len == len && memcmp(ix->keys + e->key_off, key, len) == 0) {
            if (slot_out)
                *slot_out = i;
            return e;
        }
        i = (i + 1) & ix->mask;
    }
}

int acl_domain_index_add(struct acl_domain_index *ix, const char *key, size_t len, bool exact,
                         uint32_t rule)
{
    if (ix->npairs >= ix->pairs_cap || len == 0 || len > ACL_HOST_MAX)
        return -1;
    uint32_t h = key_hash(key, len);
    uint32_t slot;
    const struct acl_domain_entry *found = find(ix, key, len, h, &slot);
    struct acl_domain_entry *e = &ix->slots[slot];
    if (!found) {
        if (ix->keys_len + len > ix->keys_cap) {
            size_t cap = ix->keys_cap ? ix->keys_cap * 2 : 4096;
            while (cap < ix->keys_len + len)
                cap *= 2;
            char *k = realloc(ix->keys, cap);
            if (!k)
                return -1;
            ix->keys = k;
            ix->keys_cap = cap;
        }
        memcpy(ix->keys + ix->keys_len, key, len);
        e->hash = h;
        e->key_off = (uint32_t)ix->keys_len;
        e->key_len = (uint16_t)len;
        e->exact = exact;
        /* Until finish, rules_off holds the last rule counted, nrules the distinct count. */
        e->rules_off = rule;
        e->nrules = 1;
        ix->keys_len += len;
        ix->count++;
        uint32_t labels = 1;
        for (size_t i = 0; i < len; i++)
            labels += key[i] == '.';
        if (labels > ix->max_labels)
            ix->max_labels = labels;
    } else if (e->rules_off != rule) {
        e->rules_off = rule;
        e->nrules++;
    }
    ix->pair_slot[ix->npairs] = slot;
    ix->pair_rule[ix->npairs] = rule;
    ix->npairs++;
    return 0;
}

int acl_domain_index_finish(struct acl_domain_index *ix)
{
    size_t total = 0;
    for (uint32_t i = 0; i <= ix->mask; i++) {
        struct acl_domain_entry *e = &ix->slots[i];
        if (e->nrules == 0)
            continue;
        e->rules_off = (uint32_t)total;
        total += e->nrules;
        e->nrules = 0; /* refilled below */
    }
    ix->rules = malloc((total ? total : 1) * sizeof(uint32_t));
    if (!ix->rules)
        return -1;
    ix->nrules = total;
    for (size_t p = 0; p < ix->npairs; p++) {
        struct acl_domain_entry *e = &ix->slots[ix->pair_slot[p]];
        uint32_t rule = ix->pair_rule[p];
        uint32_t *list = ix->rules + e->rules_off;
        if (e->nrules > 0 && list[e->nrules - 1] == rule)
            continue;
        list[e->nrules++] = rule;
    }
    free(ix->pair_slot);
    free(ix->pair_rule);
    ix->pair_slot = ix->pair_rule = NULL;
    ix->npairs = ix->pairs_cap = 0;
    /* Shrink the key arena to what is used. */
    if (ix->keys_len > 0 && ix->keys_len < ix->keys_cap) {
        char *k = realloc(ix->keys, ix->keys_len);
        if (k) {
            ix->keys = k;
            ix->keys_cap = ix->keys_len;
        }
    }
    return 0;
}

void acl_domain_index_free(struct acl_domain_index *ix)
{
    free(ix->slots);
    free(ix->keys);
    free(ix->rules);
    free(ix->pair_slot);
    free(ix->pair_rule);
    memset(ix, 0, sizeof(*ix));
}

size_t acl_domain_index_memory(const struct acl_domain_index *ix)
{
    if (!ix->slots)
        return 0;
    return ((size_t)ix->mask + 1) * sizeof(*ix->slots) + ix->keys_cap +
           ix->nrules * sizeof(uint32_t);
}

size_t acl_domain_index_match(const struct acl_domain_index *ix, const char *host, size_t len,
                              bool is_ip, const struct acl_domain_entry **found, size_t cap)
{
    if (ix->count == 0 || len == 0 || len > ACL_HOST_MAX || cap == 0)
        return 0;
    size_t n = 0;
    if (is_ip) {
        const struct acl_domain_entry *e = find(ix, host, len, key_hash(host, len), NULL);
        if (e)
            found[n++] = e;
        return n;
    }
    uint32_t h = FNV_OFFSET;
    uint32_t labels = 0;
    for (size_t i = len; i-- > 0;) {
        h = fnv_step(h, (unsigned char)host[i]);
        if (i > 0 && host[i - 1] != '.')
            continue;
        if (++labels > ix->max_labels)
            break;
        const struct acl_domain_entry *e = find(ix, host + i, len - i, h, NULL);
        if (e && (!e->exact || i == 0)) {
            found[n++] = e;
            if (n == cap)
                break;
        }
    }
    return n;
}
