/* acl_live.c: the rule set in force. A mutex guards the current pointer and the reference
 * counts (kept in each set); the generation is an atomic so hot paths can check for a new
 * set with one load and take the mutex only when it moved. A replaced set is freed by
 * whichever of publish or the last release sees it unreferenced.
 */
#include "acl/acl_set.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>

struct acl_live {
    pthread_mutex_t mu;
    struct acl_set *current; /* owned; guarded by mu */
    _Atomic uint64_t generation;
};

struct acl_live *acl_live_new(struct acl_set *initial)
{
    struct acl_live *live = calloc(1, sizeof(*live));
    if (!live)
        return NULL;
    if (pthread_mutex_init(&live->mu, NULL) != 0) {
        free(live);
        return NULL;
    }
    live->current = initial;
    atomic_init(&live->generation, 1);
    return live;
}

void acl_live_free(struct acl_live *live)
{
    if (!live)
        return;
    acl_set_free(live->current);
    pthread_mutex_destroy(&live->mu);
    free(live);
}

void acl_live_publish(struct acl_live *live, struct acl_set *set)
{
    struct acl_set *unused = NULL;
    pthread_mutex_lock(&live->mu);
    struct acl_set *old = live->current;
    live->current = set;
    atomic_fetch_add_explicit(&live->generation, 1, memory_order_release);
    if (old) {
        if (old->live_refs == 0)
            unused = old;
        else
            old->live_retired = true;
    }
    pthread_mutex_unlock(&live->mu);
    acl_set_free(unused);
}

uint64_t acl_live_generation(const struct acl_live *live)
{
    /* The pointer is read under the mutex; the generation is only a hint to re-acquire. */
    return atomic_load_explicit(&((struct acl_live *)live)->generation, memory_order_relaxed);
}

const struct acl_set *acl_live_acquire(struct acl_live *live, uint64_t *generation)
{
    pthread_mutex_lock(&live->mu);
    struct acl_set *set = live->current;
    if (set)
        set->live_refs++;
    if (generation)
        *generation = atomic_load_explicit(&live->generation, memory_order_relaxed);
    pthread_mutex_unlock(&live->mu);
    return set;
}

void acl_live_release(struct acl_live *live, const struct acl_set *cset)
{
    if (!cset)
        return;
    /* Sets are allocated non-const; only the bookkeeping fields change here. */
    struct acl_set *set = (struct acl_set *)cset;
    struct acl_set *unused = NULL;
    pthread_mutex_lock(&live->mu);
    if (set->live_refs > 0 && --set->live_refs == 0 && set->live_retired)
        unused = set;
    pthread_mutex_unlock(&live->mu);
    acl_set_free(unused);
}
