/* auth: Basic proxy authentication off the workers' threads. See auth.h.
 *
 * Everything shared sits under one mutex: the answer cache (set-associative, so a lookup is
 * eight compares and eviction is "oldest of the set", no pointers), the FIFO of
 * verification jobs and the list of results waiting to be posted. The failure throttle is
 * storage's store_throttle (its own mutex, taken inside ours), the same as the admin
 * login's. A job is one
 * set of credentials; the queries of every connection asking for them hang off it, so one
 * Argon2 run answers them all.
 *
 * A query moves WAITING (on its job) -> READY (answered, on a->ready) -> POSTED (handed to
 * its loop by ev_post). Cancelling frees it in the first two states; in the third the loop
 * owns it and the posted call frees it without calling back. Results wait on a->ready only
 * when a loop's post queue is full; the verifiers retry them every few ms. An answer carries
 * the generation its verification began in: one delivered after an invalidation is not used
 * (the user may be gone since the store was read), the asker is told to ask again (auth_cb).
 *
 * struct auth itself lives until auth_free() ran and the last posted query was delivered,
 * because a posted call still reads a->closed, a->freed and a->posted. auth_stop() ends the
 * threads and the callbacks but keeps every handle valid, so connections torn down after it
 * can still cancel theirs; auth_free() then releases what is left.
 */
#include "proxy/auth.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sodium.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/clock.h"
#include "proxy/ev.h"
#include "storage/store.h"

#define KEY_BYTES 32
#define PASSWORD_MAX 255
#define VERIFIERS_MAX 4
#define CACHE_SETS 512
#define CACHE_WAYS 8
#define RETRY_POST_MS 5
/* "Basic " + base64 of a 63-byte user, ':' and a 255-byte password. */
#define DECODED_MAX (AUTH_USER_MAX - 1 + 1 + PASSWORD_MAX)
#define ENCODED_MAX ((DECODED_MAX + 2) / 3 * 4)

struct link {
    struct link *prev, *next;
};

#define link_entry(l, type, member) ((type *)(void *)((char *)(l)-offsetof(type, member)))

static void link_init(struct link *head)
{
    head->prev = head->next = head;
}

static bool link_empty(const struct link *head)
{
    return head->next == head;
}

static void link_add_tail(struct link *head, struct link *l)
{
    l->prev = head->prev;
    l->next = head;
    head->prev->next = l;
    head->prev = l;
}

static void link_del(struct link *l)
{
    l->prev->next = l->next;
    l->next->prev = l->prev;
    l->prev = l->next = l;
}

enum query_state { QUERY_WAITING, QUERY_READY, QUERY_POSTED, QUERY_STATE_COUNT };

struct auth_query {
    struct link link;     /* in its job's waiters, or in a->ready */
    struct auth *a;       /* shared */
    struct ev_loop *loop; /* borrowed: the asking worker's loop */
    auth_cb cb;
    void *arg;            /* borrowed */
    struct auth_job *job; /* while WAITING */
    enum query_state state;
    bool cancelled; /* POSTED and cancelled: the posted call only frees */
    enum auth_status result;
    uint64_t gen; /* READY or POSTED: a->gen when the answer's verification began */
    char user[AUTH_USER_MAX];
};

struct auth_job {
    struct link link;    /* in a->jobs, oldest first */
    struct link waiters; /* struct auth_query */
    uint8_t key[KEY_BYTES];
    uint64_t gen;     /* a->gen when queued: a later invalidation must not join it */
    uint64_t run_gen; /* a->gen when the verifier read the store (or refused it unread) */
    bool running;
    char user[AUTH_USER_MAX];
    char addr[INET6_ADDRSTRLEN];     /* the first asker's address, for the throttle */
    char password[PASSWORD_MAX + 1]; /* wiped as soon as it was checked */
};

struct cache_entry {
    uint8_t key[KEY_BYTES];
    int64_t time_ms; /* when verified; 0 = empty */
    uint64_t gen;
    bool ok;
    char user[AUTH_USER_MAX];
};

struct verifier {
    struct auth *a;
    struct store *st; /* owned, used by this thread only */
    pthread_t thread;
    bool started;
};

struct auth {
    pthread_mutex_t lock;
    pthread_cond_t cond; /* a job was queued, or stopping */
    struct auth_opts opts;
    uint8_t hash_key[crypto_generichash_KEYBYTES]; /* random per process */
    uint64_t gen;                                  /* bumped by auth_invalidate */
    bool stopping;                                 /* verifiers must exit */
    bool stopped;                                  /* verifiers joined, stores closed */
    bool closed;   /* auth_stop ran: posted calls do not call back */
    bool freed;    /* auth_free ran: the last posted call frees struct auth */
    size_t posted; /* queries posted and not yet delivered */
    size_t njobs;
    struct link jobs;  /* struct auth_job, queued and running */
    struct link ready; /* struct auth_query, answered, waiting for ev_post */
    struct auth_counters counters;
    int nverifiers;
    struct verifier verifiers[VERIFIERS_MAX];
    struct store_throttle *throttle; /* owned */
    struct cache_entry cache[CACHE_SETS][CACHE_WAYS];
};

static const char *const status_names[AUTH_STATUS_COUNT] = {
    [AUTH_OK] = "ok",           [AUTH_DENIED] = "denied", [AUTH_MALFORMED] = "malformed",
    [AUTH_PENDING] = "pending", [AUTH_BUSY] = "busy",
};

const char *auth_status_str(enum auth_status st)
{
    return (unsigned)st < AUTH_STATUS_COUNT ? status_names[st] : "?";
}

/* ---- Decoding ---- */

struct credentials {
    char user[AUTH_USER_MAX];
    char password[PASSWORD_MAX + 1];
    size_t password_len;
};

static bool is_user_byte(unsigned char c)
{
    return c > 0x20 && c < 0x7f;
}

/* Returns true if value is well-formed Basic credentials (see auth_check in auth.h). */
static bool credentials_decode(const char *value, size_t len, struct credentials *cr)
{
    unsigned char bin[DECODED_MAX + 1];
    size_t bin_len, ulen;
    const unsigned char *colon;
    bool ok = false;

    if (len < 6 || strncasecmp(value, "Basic", 5) != 0 || value[5] != ' ')
        return false;
    value += 6;
    len -= 6;
    /* libsodium's original variant insists on the padding and on zero leftover bits. */
    if (len == 0 || len % 4 != 0 || len > ENCODED_MAX ||
        sodium_base642bin(bin, sizeof(bin), value, len, NULL, &bin_len, NULL,
                          sodium_base64_VARIANT_ORIGINAL) != 0)
        goto out;
    colon = memchr(bin, ':', bin_len);
    if (!colon)
        goto out;
    ulen = (size_t)(colon - bin);
    if (ulen == 0 || ulen >= AUTH_USER_MAX || bin_len - ulen - 1 > PASSWORD_MAX)
        goto out;
    for (size_t i = 0; i < ulen; i++)
        if (!is_user_byte(bin[i]))
            goto out;
    cr->password_len = bin_len - ulen - 1;
    /* The store compares C strings: "secret\0x" must not pass as "secret". */
    if (memchr(colon + 1, '\0', cr->password_len))
        goto out;
    memcpy(cr->user, bin, ulen);
    cr->user[ulen] = '\0';
    memcpy(cr->password, colon + 1, cr->password_len);
    cr->password[cr->password_len] = '\0';
    ok = true;
out:
    sodium_memzero(bin, sizeof(bin));
    return ok;
}

static void credentials_key(const struct auth *a, const struct credentials *cr,
                            uint8_t key[KEY_BYTES])
{
    crypto_generichash_state h;

    /* The user has no NUL, so "user\0password" names one pair only. */
    crypto_generichash_init(&h, a->hash_key, sizeof(a->hash_key), KEY_BYTES);
    crypto_generichash_update(&h, (const unsigned char *)cr->user, strlen(cr->user) + 1);
    crypto_generichash_update(&h, (const unsigned char *)cr->password, cr->password_len);
    crypto_generichash_final(&h, key, KEY_BYTES);
}

/* The client's address as text for the throttle ("" when unknown). */
static void addr_text(const struct sockaddr *sa, char out[INET6_ADDRSTRLEN])
{
    out[0] = '\0';
    if (sa && sa->sa_family == AF_INET)
        inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, out, INET6_ADDRSTRLEN);
    else if (sa && sa->sa_family == AF_INET6)
        inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)sa)->sin6_addr, out, INET6_ADDRSTRLEN);
}

/* ---- Cache (under a->lock) ---- */

static struct cache_entry *cache_set(struct auth *a, const uint8_t key[KEY_BYTES])
{
    uint32_t h;

    memcpy(&h, key, sizeof(h)); /* the key is already a keyed hash */
    return a->cache[h % CACHE_SETS];
}

static bool cache_live(const struct auth *a, const struct cache_entry *e, int64_t now)
{
    if (e->time_ms == 0 || e->gen != a->gen)
        return false;
    return now - e->time_ms < (e->ok ? a->opts.ok_ttl_ms : a->opts.denied_ttl_ms);
}

static const struct cache_entry *cache_find(struct auth *a, const uint8_t key[KEY_BYTES],
                                            int64_t now)
{
    struct cache_entry *set = cache_set(a, key);

    for (int i = 0; i < CACHE_WAYS; i++)
        if (cache_live(a, &set[i], now) && memcmp(set[i].key, key, KEY_BYTES) == 0)
            return &set[i];
    return NULL;
}

/* Replaces the same key, else a dead entry, else the oldest wrong answer, else the oldest:
 * a flood of wrong passwords evicts good answers last. */
static void cache_put(struct auth *a, const uint8_t key[KEY_BYTES], const char *user, bool ok,
                      int64_t now)
{
    struct cache_entry *set = cache_set(a, key), *victim = NULL;

    for (int i = 0; i < CACHE_WAYS && !victim; i++)
        if (set[i].time_ms != 0 && memcmp(set[i].key, key, KEY_BYTES) == 0)
            victim = &set[i];
    for (int i = 0; i < CACHE_WAYS && !victim; i++)
        if (!cache_live(a, &set[i], now))
            victim = &set[i];
    if (!victim)
        for (int i = 0; i < CACHE_WAYS; i++)
            if (!set[i].ok && (!victim || set[i].time_ms < victim->time_ms))
                victim = &set[i];
    if (!victim)
        for (int i = 0; i < CACHE_WAYS; i++)
            if (!victim || set[i].time_ms < victim->time_ms)
                victim = &set[i];
    memcpy(victim->key, key, KEY_BYTES);
    victim->time_ms = now ? now : 1;
    victim->gen = a->gen;
    victim->ok = ok;
    snprintf(victim->user, sizeof(victim->user), "%s", user);
}

/* ---- Queries and jobs ---- */

/* The end of struct auth, once nothing refers to it any more. */
static void auth_release(struct auth *a)
{
    store_throttle_free(a->throttle);
    pthread_cond_destroy(&a->cond);
    pthread_mutex_destroy(&a->lock);
    free(a);
}

/* Runs on the query's loop thread. */
static void query_deliver(struct ev_loop *loop, void *arg)
{
    struct auth_query *q = arg;
    struct auth *a = q->a;
    bool call, last;

    (void)loop;
    pthread_mutex_lock(&a->lock);
    call = !q->cancelled && !a->closed;
    last = --a->posted == 0 && a->freed;
    /* Users or policy changed since the store was read: a deleted user's check still running
     * then must not let this request through. The asker checks again, and a new verification
     * reads the store as it is now. */
    if (call && q->gen != a->gen && (q->result == AUTH_OK || q->result == AUTH_DENIED)) {
        a->counters.stale++;
        q->result = AUTH_PENDING;
    }
    pthread_mutex_unlock(&a->lock);
    if (call)
        q->cb(q->arg, q->result, q->result == AUTH_OK ? q->user : NULL);
    free(q);
    if (last)
        auth_release(a);
}

/* Hands every answered query to its loop; those whose loop queue is full stay on a->ready
 * for the next try. Under a->lock, which the posted call also takes, so it cannot run
 * before the state says POSTED. */
static void ready_flush(struct auth *a)
{
    struct link *l, *next;

    for (l = a->ready.next; l != &a->ready; l = next) {
        struct auth_query *q = link_entry(l, struct auth_query, link);

        next = l->next;
        if (ev_post(q->loop, query_deliver, q) < 0) {
            a->counters.post_full++;
            continue;
        }
        a->counters.posted++;
        link_del(&q->link);
        q->state = QUERY_POSTED;
        a->posted++;
    }
}

static void job_free(struct auth *a, struct auth_job *job)
{
    link_del(&job->link);
    a->njobs--;
    sodium_memzero(job->password, sizeof(job->password));
    free(job);
}

/* Answers every waiter of job and frees it. */
static void job_finish(struct auth *a, struct auth_job *job, enum auth_status st)
{
    while (!link_empty(&job->waiters)) {
        struct auth_query *q = link_entry(job->waiters.next, struct auth_query, link);

        link_del(&q->link);
        q->job = NULL;
        q->state = QUERY_READY;
        q->result = st;
        q->gen = job->run_gen;
        if (st == AUTH_OK)
            snprintf(q->user, sizeof(q->user), "%s", job->user);
        link_add_tail(&a->ready, &q->link);
    }
    job_free(a, job);
}

static struct auth_job *job_find(struct auth *a, const uint8_t key[KEY_BYTES])
{
    for (struct link *l = a->jobs.next; l != &a->jobs; l = l->next) {
        struct auth_job *job = link_entry(l, struct auth_job, link);

        if (job->gen == a->gen && memcmp(job->key, key, KEY_BYTES) == 0)
            return job;
    }
    return NULL;
}

static struct auth_job *job_next_queued(struct auth *a)
{
    for (struct link *l = a->jobs.next; l != &a->jobs; l = l->next) {
        struct auth_job *job = link_entry(l, struct auth_job, link);

        if (!job->running)
            return job;
    }
    return NULL;
}

/* ---- Verifier threads ---- */

static void *verifier_main(void *arg)
{
    struct verifier *v = arg;
    struct auth *a = v->a;

    pthread_mutex_lock(&a->lock);
    for (;;) {
        struct auth_job *job;
        enum auth_status st;
        int rc;

        if (a->stopping)
            break;
        ready_flush(a);
        job = job_next_queued(a);
        if (!job) {
            if (link_empty(&a->ready)) {
                pthread_cond_wait(&a->cond, &a->lock);
            } else {
                struct timespec ts;

                clock_gettime(CLOCK_REALTIME, &ts);
                ts.tv_nsec += RETRY_POST_MS * 1000000L;
                if (ts.tv_nsec >= 1000000000L) {
                    ts.tv_sec++;
                    ts.tv_nsec -= 1000000000L;
                }
                pthread_cond_timedwait(&a->cond, &a->lock, &ts);
            }
            continue;
        }
        /* Jobs queued before the user or address had to wait are refused like later ones. */
        job->run_gen = a->gen;
        if (store_throttle_wait_ms(a->throttle, job->user, job->addr, clock_mono_ms()) > 0) {
            a->counters.throttled++;
            job_finish(a, job, AUTH_DENIED);
            continue;
        }
        job->running = true;
        a->counters.verifications++;
        pthread_mutex_unlock(&a->lock);
        /* job stays valid: only job_finish frees a running job, and only this thread. */
        rc = store_account_verify(v->st, STORE_PROXY_USER, job->user, job->password);
        sodium_memzero(job->password, sizeof(job->password));
        pthread_mutex_lock(&a->lock);
        if (rc < 0) {
            a->counters.store_errors++;
            st = AUTH_BUSY;
        } else {
            int64_t now = clock_mono_ms();

            st = rc == 1 ? AUTH_OK : AUTH_DENIED;
            if (job->run_gen == a->gen)
                cache_put(a, job->key, job->user, rc == 1, now);
            store_throttle_note(a->throttle, job->user, job->addr, rc == 1, now);
        }
        job_finish(a, job, st);
    }
    pthread_mutex_unlock(&a->lock);
    return NULL;
}

/* ---- Public ---- */

static int64_t or_default(int64_t v, int64_t def)
{
    return v > 0 ? v : def;
}

/* Ends the verifier threads (each finishes its check first) and closes their stores.
 * Called once, from start-up's failure path or auth_stop. */
static void verifiers_stop(struct auth *a)
{
    pthread_mutex_lock(&a->lock);
    a->stopping = true;
    pthread_cond_broadcast(&a->cond);
    pthread_mutex_unlock(&a->lock);
    for (int i = 0; i < a->nverifiers; i++) {
        if (a->verifiers[i].started)
            pthread_join(a->verifiers[i].thread, NULL);
        store_close(a->verifiers[i].st);
    }
}

struct auth *auth_new_opts(const struct auth_opts *opts, char *err, size_t errlen)
{
    struct auth *a;
    int threads = opts->threads ? opts->threads : 2;

    if (threads < 1 || threads > VERIFIERS_MAX) {
        snprintf(err, errlen, "auth: %d verifier threads, want 1 to %d", threads, VERIFIERS_MAX);
        return NULL;
    }
    if (sodium_init() < 0) {
        snprintf(err, errlen, "auth: libsodium initialisation failed");
        return NULL;
    }
    a = calloc(1, sizeof(*a));
    if (!a) {
        snprintf(err, errlen, "auth: out of memory");
        return NULL;
    }
    a->opts = *opts;
    a->opts.threads = threads;
    a->opts.ok_ttl_ms = or_default(opts->ok_ttl_ms, 10 * 60 * 1000);
    a->opts.denied_ttl_ms = or_default(opts->denied_ttl_ms, 30 * 1000);
    a->opts.fail_max = opts->fail_max ? opts->fail_max : 10;
    a->opts.delay_ms = or_default(opts->delay_ms, 1000);
    a->opts.delay_max_ms = or_default(opts->delay_max_ms, 60 * 1000);
    a->opts.forget_ms = or_default(opts->forget_ms, 15 * 60 * 1000);
    a->opts.queue_max = opts->queue_max ? opts->queue_max : 1024;
    a->opts.db_path = NULL; /* borrowed, only needed below */
    struct store_throttle_opts to = {.fail_max = a->opts.fail_max,
                                     .delay_ms = a->opts.delay_ms,
                                     .delay_max_ms = a->opts.delay_max_ms,
                                     .forget_ms = a->opts.forget_ms};
    a->throttle = store_throttle_new(&to);
    if (!a->throttle) {
        snprintf(err, errlen, "auth: out of memory");
        free(a);
        return NULL;
    }
    randombytes_buf(a->hash_key, sizeof(a->hash_key));
    pthread_mutex_init(&a->lock, NULL);
    pthread_cond_init(&a->cond, NULL);
    link_init(&a->jobs);
    link_init(&a->ready);
    a->nverifiers = threads;
    for (int i = 0; i < threads; i++) {
        struct verifier *v = &a->verifiers[i];

        v->a = a;
        v->st = store_open(opts->db_path, err, errlen);
        if (!v->st)
            goto fail;
        errno = pthread_create(&v->thread, NULL, verifier_main, v);
        if (errno != 0) {
            snprintf(err, errlen, "auth: cannot start verifier thread: %s", strerror(errno));
            goto fail;
        }
        v->started = true;
    }
    return a;
fail:
    verifiers_stop(a);
    auth_release(a);
    return NULL;
}

struct auth *auth_new(const char *db_path, char *err, size_t errlen)
{
    struct auth_opts opts = {.db_path = db_path};

    return auth_new_opts(&opts, err, errlen);
}

void auth_stop(struct auth *a)
{
    if (!a || a->stopped)
        return;
    verifiers_stop(a);
    pthread_mutex_lock(&a->lock);
    a->stopped = true;
    a->closed = true;
    pthread_mutex_unlock(&a->lock);
}

void auth_free(struct auth *a)
{
    bool last;

    if (!a)
        return;
    auth_stop(a);
    pthread_mutex_lock(&a->lock);
    while (!link_empty(&a->jobs)) {
        struct auth_job *job = link_entry(a->jobs.next, struct auth_job, link);

        job_finish(a, job, AUTH_BUSY);
    }
    while (!link_empty(&a->ready)) {
        struct auth_query *q = link_entry(a->ready.next, struct auth_query, link);

        link_del(&q->link);
        free(q);
    }
    a->freed = true;
    last = a->posted == 0;
    pthread_mutex_unlock(&a->lock);
    if (last)
        auth_release(a);
}

void auth_invalidate(struct auth *a)
{
    pthread_mutex_lock(&a->lock);
    a->gen++;
    pthread_mutex_unlock(&a->lock);
}

/* A new verification of cr, or the one of the same credentials already queued, and a query
 * waiting for it on loop. Returns AUTH_PENDING with *q set, or AUTH_BUSY (stopping, queue
 * full, out of memory). Under a->lock. */
static enum auth_status query_queue(struct auth *a, struct ev_loop *loop,
                                    const struct credentials *cr, const uint8_t key[KEY_BYTES],
                                    const char *addr, auth_cb cb, void *arg, struct auth_query **q)
{
    struct auth_job *job;
    struct auth_query *nq = NULL;

    if (a->stopping)
        goto busy;
    job = job_find(a, key);
    if (!job && a->njobs >= a->opts.queue_max)
        goto busy;
    nq = calloc(1, sizeof(*nq));
    if (!nq)
        goto busy;
    if (job) {
        a->counters.coalesced++;
    } else {
        job = malloc(sizeof(*job));
        if (!job)
            goto busy;
        link_init(&job->waiters);
        memcpy(job->key, key, KEY_BYTES);
        memcpy(job->addr, addr, sizeof(job->addr));
        job->gen = job->run_gen = a->gen;
        job->running = false;
        memcpy(job->user, cr->user, sizeof(job->user));
        memcpy(job->password, cr->password, sizeof(job->password));
        link_add_tail(&a->jobs, &job->link);
        a->njobs++;
        pthread_cond_signal(&a->cond);
    }
    nq->a = a;
    nq->loop = loop;
    nq->cb = cb;
    nq->arg = arg;
    nq->job = job;
    nq->state = QUERY_WAITING;
    link_add_tail(&job->waiters, &nq->link);
    a->counters.queued++;
    *q = nq;
    return AUTH_PENDING;
busy:
    free(nq);
    a->counters.busy++;
    return AUTH_BUSY;
}

enum auth_status auth_check(struct auth *a, struct ev_loop *loop, const struct sockaddr *client,
                            const char *value, size_t len, char user_out[AUTH_USER_MAX], auth_cb cb,
                            void *arg, struct auth_query **q)
{
    struct credentials cr;
    uint8_t key[KEY_BYTES];
    char addr[INET6_ADDRSTRLEN];
    const struct cache_entry *e;
    enum auth_status st;
    int64_t now;

    user_out[0] = '\0';
    *q = NULL;
    if (!credentials_decode(value, len, &cr)) {
        pthread_mutex_lock(&a->lock);
        a->counters.malformed++;
        pthread_mutex_unlock(&a->lock);
        return AUTH_MALFORMED;
    }
    if (cr.password_len == 0) { /* the store refuses empty passwords: no need to ask it */
        st = AUTH_DENIED;
        goto out;
    }
    credentials_key(a, &cr, key);
    now = clock_mono_ms();
    pthread_mutex_lock(&a->lock);
    e = cache_find(a, key, now);
    if (e) {
        st = e->ok ? AUTH_OK : AUTH_DENIED;
        if (e->ok) {
            a->counters.hits_ok++;
            snprintf(user_out, AUTH_USER_MAX, "%s", e->user);
        } else {
            a->counters.hits_denied++;
        }
        goto unlock;
    }
    addr_text(client, addr); /* misses only: hits skip the throttle */
    if (store_throttle_wait_ms(a->throttle, cr.user, addr, now) > 0) {
        a->counters.throttled++;
        st = AUTH_DENIED;
        goto unlock;
    }
    st = query_queue(a, loop, &cr, key, addr, cb, arg, q);
unlock:
    pthread_mutex_unlock(&a->lock);
out:
    sodium_memzero(&cr, sizeof(cr));
    return st;
}

void auth_cancel(struct auth_query *q)
{
    struct auth *a;

    if (!q)
        return;
    a = q->a;
    pthread_mutex_lock(&a->lock);
    switch (q->state) {
    case QUERY_WAITING: {
        struct auth_job *job = q->job;

        link_del(&q->link);
        free(q);
        /* Nobody waits and no verifier took it yet: spare the Argon2 run. */
        if (link_empty(&job->waiters) && !job->running)
            job_free(a, job);
        break;
    }
    case QUERY_READY:
        link_del(&q->link);
        free(q);
        break;
    case QUERY_POSTED:
    case QUERY_STATE_COUNT:
        q->cancelled = true;
        break;
    }
    pthread_mutex_unlock(&a->lock);
}

void auth_counters(struct auth *a, struct auth_counters *out)
{
    pthread_mutex_lock(&a->lock);
    *out = a->counters;
    pthread_mutex_unlock(&a->lock);
}
