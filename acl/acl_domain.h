/* acl_domain.h: domain names and the domain index. Every `domain` rule and every domain of
 * every list a `list` rule names goes into one hash table keyed by the domain; a host is
 * looked up by hashing each of its label suffixes, right to left, in one pass ("com",
 * "example.com", "www.example.com"). Each key maps to the sorted indexes of the rules that
 * use it. Internal to acl/.
 */
#ifndef PX_ACL_DOMAIN_H
#define PX_ACL_DOMAIN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "acl/acl_host.h" /* ACL_HOST_MAX: keys and hosts are canonical hosts */

struct acl_domain_entry {
    uint32_t hash;
    uint32_t key_off;   /* into keys */
    uint32_t rules_off; /* into rules */
    uint32_t nrules;    /* 0: empty slot */
    uint16_t key_len;
    bool exact; /* IP literal: matches the whole host only, never as a suffix */
};

struct acl_domain_index {
    struct acl_domain_entry *slots; /* owned; capacity mask + 1 */
    uint32_t mask;
    uint32_t count;
    uint32_t max_labels; /* most labels in any key: longer suffixes need no lookup */
    char *keys;          /* owned, not NUL-separated */
    size_t keys_len, keys_cap;
    uint32_t *rules; /* owned; per entry, ascending rule indexes */
    size_t nrules;
    /* Build state, freed by finish. */
    uint32_t *pair_slot, *pair_rule;
    size_t npairs, pairs_cap;
};

/* Prepares an index for up to max_keys additions. 0 or -1 (no memory). */
int acl_domain_index_init(struct acl_domain_index *ix, size_t max_keys);
/* Adds key (a canonical host) for rule index rule. exact: key is an IP literal, which matches
 * only itself, never as a suffix. Rules must be added in ascending order. 0 or -1 (no memory,
 * or more than max_keys additions). */
int acl_domain_index_add(struct acl_domain_index *ix, const char *key, size_t len, bool exact,
                         uint32_t rule);
/* Builds the rule lists. 0 or -1 (no memory). */
int acl_domain_index_finish(struct acl_domain_index *ix);
void acl_domain_index_free(struct acl_domain_index *ix);
size_t acl_domain_index_memory(const struct acl_domain_index *ix);

/* Finds the keys that host (canonical text) equals or ends with at a label boundary. is_ip: the
 * host is an IP literal, so only the whole host is looked up. Writes up to cap entries to found;
 * returns how many. Allocates nothing. */
size_t acl_domain_index_match(const struct acl_domain_index *ix, const char *host, size_t len,
                              bool is_ip, const struct acl_domain_entry **found, size_t cap);

#endif
