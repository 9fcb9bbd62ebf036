/* store_pool: connections handed to one thread at a time and given back. Moved here from
 * web-admin so that a second backend pools its own connections behind the same calls and
 * the admin server never learns how a connection is made.
 *
 * A mutex guards a small stack of idle connections; it is held only to push or pop, never
 * across an open or a close. Last in, first out: the connection used most recently has the
 * warmest page cache.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "storage/store.h"

struct store_pool {
    pthread_mutex_t mu; /* guards nidle and idle[] */
    char *path;         /* owned */
    size_t idle_max;
    size_t nidle;
    struct store *idle[]; /* owned, idle_max slots */
};

struct store_pool *store_pool_new(const char *path, size_t idle_max, char *err, size_t errlen)
{
    struct store_pool *pool = calloc(1, sizeof(*pool) + idle_max * sizeof(pool->idle[0]));

    if (!pool || !(pool->path = strdup(path))) {
        free(pool);
        snprintf(err, errlen, "%s: out of memory for a connection pool", path);
        return NULL;
    }
    pool->idle_max = idle_max;
    pthread_mutex_init(&pool->mu, NULL);
    return pool;
}

struct store *store_pool_get(struct store_pool *pool, char *err, size_t errlen)
{
    struct store *st = NULL;

    pthread_mutex_lock(&pool->mu);
    if (pool->nidle > 0)
        st = pool->idle[--pool->nidle];
    pthread_mutex_unlock(&pool->mu);
    if (!st)
        st = store_open(pool->path, err, errlen);
    return st;
}

bool store_pool_is_pg(const struct store_pool *pool)
{
    return store_path_is_pg(pool->path);
}

void store_pool_put(struct store_pool *pool, struct store *st)
{
    if (!st)
        return;
    pthread_mutex_lock(&pool->mu);
    if (pool->nidle < pool->idle_max) {
        pool->idle[pool->nidle++] = st;
        st = NULL;
    }
    pthread_mutex_unlock(&pool->mu);
    store_close(st); /* NULL when kept */
}

void store_pool_free(struct store_pool *pool)
{
    if (!pool)
        return;
    while (pool->nidle > 0)
        store_close(pool->idle[--pool->nidle]);
    pthread_mutex_destroy(&pool->mu);
    free(pool->path);
    free(pool);
}
