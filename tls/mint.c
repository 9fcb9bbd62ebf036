/* tls mint: per-host certificates and their cache (tls/mint.h). The cache is a hash table of
 * entries chained per bucket and a doubly linked list from most to least recently used.
 * Eviction takes an entry out of both; a borrowed one (refs > 0) lives on, unlisted, until
 * its last release frees it. */
#include "tls/mint.h"

#include <gnutls/abstract.h>
#include <gnutls/crypto.h>
#include <gnutls/x509.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/status.h"
#include "tls/x509.h"

struct mint_entry {
    struct mint_entry *chain;         /* next in the bucket */
    struct mint_entry *newer, *older; /* LRU list */
    gnutls_certificate_credentials_t cred;
    unsigned refs; /* borrowers (tls_mint_get not yet released) */
    bool cached;   /* in the table and the list */
    uint32_t hash;
    size_t bytes;
    time_t not_after;
    char host[]; /* NUL-terminated */
};

struct tls_mint {
    const struct tls_ca *ca; /* borrowed */
    gnutls_x509_privkey_t leaf_key;
    gnutls_pubkey_t leaf_pub;
    unsigned char leaf_key_id[64];
    size_t leaf_key_id_len;
    gnutls_priority_t priority;
    gnutls_datum_t ticket_key;

    /* Signing reads the CA certificate (its name, its key identifier), a GnuTLS object not
     * documented as safe to read from two threads at once: only signatures wait on this. */
    pthread_mutex_t sign_lock;

    pthread_mutex_t lock; /* everything below */
    struct mint_entry **buckets;
    size_t nbuckets; /* a power of two */
    struct mint_entry *newest, *oldest;
    size_t max_entries, max_bytes;
    struct tls_mint_stats st;
};

size_t tls_mint_entry_bytes(size_t host_len, size_t der_len)
{
    /* GnuTLS's credential structure with one key and certificate, measured with mallinfo2
     * around 200 credentials (test_mint.c): about 7.5 KiB besides the certificate. */
    return sizeof(struct mint_entry) + host_len + 1 + 2 * der_len + 7680;
}

static uint32_t hash_host(const char *s)
{
    uint32_t h = 2166136261u; /* FNV-1a */
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 16777619u;
    return h;
}

struct tls_mint *tls_mint_new(const struct tls_ca *ca, size_t max_entries, size_t max_bytes,
                              char *err, size_t errlen)
{
    if (max_entries < 1 || max_bytes < 1 || max_entries > (1u << 24)) {
        snprintf(err, errlen, "certificate cache bounds must be 1..16777216 entries, >= 1 byte");
        return NULL;
    }
    struct tls_mint *m = calloc(1, sizeof(*m));
    if (!m) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    m->ca = ca;
    m->max_entries = m->st.max_entries = max_entries;
    m->max_bytes = m->st.max_bytes = max_bytes;
    m->nbuckets = 16;
    while (m->nbuckets < max_entries)
        m->nbuckets *= 2;
    m->buckets = calloc(m->nbuckets, sizeof(*m->buckets));
    pthread_mutex_init(&m->lock, NULL);
    pthread_mutex_init(&m->sign_lock, NULL);
    if (!m->buckets) {
        snprintf(err, errlen, "out of memory");
        goto bad;
    }
    int r;
    gnutls_privkey_t pk = NULL;
    m->leaf_key_id_len = sizeof(m->leaf_key_id);
    if ((r = tls_x509_key_new(&m->leaf_key)) < 0 || (r = gnutls_privkey_init(&pk)) < 0 ||
        (r = gnutls_privkey_import_x509(pk, m->leaf_key, 0)) < 0 ||
        (r = gnutls_pubkey_init(&m->leaf_pub)) < 0 ||
        (r = gnutls_pubkey_import_privkey(m->leaf_pub, pk, 0, 0)) < 0 ||
        (r = gnutls_pubkey_get_key_id(m->leaf_pub, 0, m->leaf_key_id, &m->leaf_key_id_len)) < 0) {
        tls_x509_fail(r, "making the leaf key", err, errlen);
        if (pk)
            gnutls_privkey_deinit(pk);
        goto bad;
    }
    gnutls_privkey_deinit(pk); /* flags 0: the key itself stays */
    if ((r = gnutls_priority_init2(&m->priority, NULL, NULL, 0)) < 0 ||
        (r = gnutls_session_ticket_key_generate(&m->ticket_key)) < 0) {
        tls_x509_fail(r, "TLS settings", err, errlen);
        goto bad;
    }
    return m;
bad:
    tls_mint_free(m);
    return NULL;
}

static void entry_free(struct mint_entry *e)
{
    if (e->cred)
        gnutls_certificate_free_credentials(e->cred);
    free(e);
}

void tls_mint_free(struct tls_mint *m)
{
    if (!m)
        return;
    for (struct mint_entry *e = m->newest, *next; e; e = next) {
        next = e->older;
        entry_free(e);
    }
    free(m->buckets);
    if (m->leaf_pub)
        gnutls_pubkey_deinit(m->leaf_pub);
    if (m->leaf_key)
        gnutls_x509_privkey_deinit(m->leaf_key);
    if (m->priority)
        gnutls_priority_deinit(m->priority);
    if (m->ticket_key.data) {
        gnutls_memset(m->ticket_key.data, 0, m->ticket_key.size);
        gnutls_free(m->ticket_key.data);
    }
    pthread_mutex_destroy(&m->lock);
    pthread_mutex_destroy(&m->sign_lock);
    free(m);
}

/* Makes the certificate for host and credentials holding it with the leaf key. Returns a new
 * entry (not cached, refs 0) or NULL with err filled. Called without m->lock. */
static struct mint_entry *mint(struct tls_mint *m, const char *host, uint32_t hash, char *err,
                               size_t errlen)
{
    size_t hlen = strlen(host);
    if (hlen == 0 || hlen > 253) {
        snprintf(err, errlen, "no certificate for a host of %zu bytes", hlen);
        return NULL;
    }
    struct mint_entry *e = calloc(1, sizeof(*e) + hlen + 1);
    if (!e) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    memcpy(e->host, host, hlen + 1);
    e->hash = hash;
    gnutls_x509_crt_t crt = NULL;
    gnutls_privkey_t key = NULL;
    gnutls_pcert_st pcert;
    bool pcert_made = false;
    int r;
    time_t end = time(NULL) + (time_t)TLS_MINT_DAYS * 86400;
    if (end > m->ca->not_after)
        end = m->ca->not_after;
    e->not_after = end;
    /* A common name longer than 64 bytes is not allowed (RFC 5280 ub-common-name); the SAN
     * names the host either way, and it is what clients check. */
    if ((r = tls_x509_crt_new(&crt, hlen <= 64 ? host : NULL, end)) < 0 ||
        (r = tls_x509_add_name(crt, host)) < 0 ||
        (r = gnutls_x509_crt_set_pubkey(crt, m->leaf_pub)) < 0 ||
        (r = gnutls_x509_crt_set_basic_constraints(crt, 0, -1)) < 0 ||
        (r = gnutls_x509_crt_set_key_usage(crt, GNUTLS_KEY_DIGITAL_SIGNATURE)) < 0 ||
        (r = gnutls_x509_crt_set_key_purpose_oid(crt, GNUTLS_KP_TLS_WWW_SERVER, 0)) < 0 ||
        (r = gnutls_x509_crt_set_subject_key_id(crt, m->leaf_key_id, m->leaf_key_id_len)) < 0) {
        tls_x509_fail(r, "making a certificate", err, errlen);
        goto bad;
    }
    pthread_mutex_lock(&m->sign_lock);
    r = gnutls_x509_crt_privkey_sign(crt, m->ca->crt, m->ca->key, GNUTLS_DIG_SHA256, 0);
    pthread_mutex_unlock(&m->sign_lock);
    if (r < 0) {
        tls_x509_fail(r, "signing a certificate", err, errlen);
        goto bad;
    }
    if ((r = gnutls_pcert_import_x509(&pcert, crt, 0)) < 0) {
        tls_x509_fail(r, "a minted certificate", err, errlen);
        goto bad;
    }
    pcert_made = true;
    size_t der_len = pcert.cert.size;
    /* The leaf key is shared, not copied: this handle does not free it (flags 0). */
    if ((r = gnutls_privkey_init(&key)) < 0 ||
        (r = gnutls_privkey_import_x509(key, m->leaf_key, 0)) < 0 ||
        (r = gnutls_certificate_allocate_credentials(&e->cred)) < 0) {
        tls_x509_fail(r, "credentials", err, errlen);
        goto bad;
    }
    gnutls_certificate_set_flags(e->cred, GNUTLS_CERTIFICATE_SKIP_KEY_CERT_MATCH);
    if ((r = gnutls_certificate_set_key(e->cred, NULL, 0, &pcert, 1, key)) < 0) {
        tls_x509_fail(r, "credentials", err, errlen);
        goto bad;
    }
    /* Both belong to e->cred now. */
    key = NULL;
    pcert_made = false;
    gnutls_x509_crt_deinit(crt);
    e->bytes = tls_mint_entry_bytes(hlen, der_len);
    return e;
bad:
    if (pcert_made)
        gnutls_pcert_deinit(&pcert);
    if (key)
        gnutls_privkey_deinit(key);
    if (crt)
        gnutls_x509_crt_deinit(crt);
    entry_free(e);
    return NULL;
}

/* ---- the cache; m->lock held ---- */

static struct mint_entry **find_slot(struct tls_mint *m, const char *host, uint32_t hash)
{
    struct mint_entry **p = &m->buckets[hash & (m->nbuckets - 1)];
    while (*p && ((*p)->hash != hash || strcmp((*p)->host, host) != 0))
        p = &(*p)->chain;
    return p;
}

static void list_unlink(struct tls_mint *m, struct mint_entry *e)
{
    if (e->newer)
        e->newer->older = e->older;
    else
        m->newest = e->older;
    if (e->older)
        e->older->newer = e->newer;
    else
        m->oldest = e->newer;
    e->newer = e->older = NULL;
}

static void list_push_newest(struct tls_mint *m, struct mint_entry *e)
{
    e->newer = NULL;
    e->older = m->newest;
    if (m->newest)
        m->newest->newer = e;
    else
        m->oldest = e;
    m->newest = e;
}

/* Takes e out of the cache. Returns e when it is to be freed (no borrower), else NULL. */
static struct mint_entry *uncache(struct tls_mint *m, struct mint_entry *e)
{
    struct mint_entry **p = find_slot(m, e->host, e->hash);
    if (*p == e)
        *p = e->chain;
    e->chain = NULL;
    list_unlink(m, e);
    e->cached = false;
    m->st.entries--;
    m->st.bytes -= e->bytes;
    return e->refs == 0 ? e : NULL;
}

/* Evicts the least recently used entries until the bounds hold; those without borrowers go
 * on *dead (freed after the lock). keep is never evicted (the one being handed out). */
static void evict(struct tls_mint *m, struct mint_entry *keep, struct mint_entry **dead)
{
    while ((m->st.entries > m->max_entries || m->st.bytes > m->max_bytes) && m->oldest &&
           m->oldest != keep) {
        struct mint_entry *e = uncache(m, m->oldest);
        m->st.evictions++;
        if (e) {
            e->chain = *dead;
            *dead = e;
        }
    }
}

static void free_dead(struct mint_entry *dead)
{
    while (dead) {
        struct mint_entry *next = dead->chain;
        entry_free(dead);
        dead = next;
    }
}

gnutls_certificate_credentials_t tls_mint_get(struct tls_mint *m, const char *host, void **ref,
                                              char *err, size_t errlen)
{
    uint32_t hash = hash_host(host);
    struct mint_entry *dead = NULL;
    time_t now = time(NULL);
    pthread_mutex_lock(&m->lock);
    struct mint_entry *e = *find_slot(m, host, hash);
    /* A certificate in its last day is made again rather than handed out. */
    if (e && e->not_after - 86400 < now && e->not_after < m->ca->not_after) {
        e = uncache(m, e);
        if (e) {
            e->chain = dead;
            dead = e;
        }
        e = NULL;
    }
    if (e) {
        m->st.hits++;
        e->refs++;
        list_unlink(m, e);
        list_push_newest(m, e);
        pthread_mutex_unlock(&m->lock);
        free_dead(dead);
        *ref = e;
        return e->cred;
    }
    m->st.misses++;
    pthread_mutex_unlock(&m->lock);
    free_dead(dead);
    dead = NULL;

    struct mint_entry *made = mint(m, host, hash, err, errlen);
    pthread_mutex_lock(&m->lock);
    if (!made) {
        m->st.failures++;
        pthread_mutex_unlock(&m->lock);
        return NULL;
    }
    struct mint_entry **slot = find_slot(m, host, hash);
    if (*slot) { /* another worker minted it meanwhile: use that one */
        e = *slot;
        list_unlink(m, e);
        dead = made;
    } else {
        e = made;
        e->cached = true;
        *slot = e;
        m->st.entries++;
        m->st.bytes += e->bytes;
    }
    e->refs++;
    list_push_newest(m, e);
    evict(m, e, &dead);
    pthread_mutex_unlock(&m->lock);
    free_dead(dead);
    *ref = e;
    return e->cred;
}

void tls_mint_retire(struct tls_mint *m)
{
    struct mint_entry *dead = NULL;
    pthread_mutex_lock(&m->lock);
    m->max_entries = 1;
    m->max_bytes = 1;
    evict(m, NULL, &dead);
    pthread_mutex_unlock(&m->lock);
    free_dead(dead);
}

void tls_mint_release(struct tls_mint *m, void *ref)
{
    struct mint_entry *e = ref;
    if (!e)
        return;
    pthread_mutex_lock(&m->lock);
    bool gone = --e->refs == 0 && !e->cached;
    pthread_mutex_unlock(&m->lock);
    if (gone)
        entry_free(e);
}

int tls_mint_session_start(struct tls_mint *m, struct tls_session *t,
                           gnutls_certificate_credentials_t x509, int fd)
{
    return tls_session_start_x509(t, x509, m->priority, &m->ticket_key, fd);
}

int tls_mint_session_nest(struct tls_mint *m, struct tls_session *t,
                          gnutls_certificate_credentials_t x509)
{
    return tls_session_nest(t, x509, m->priority, &m->ticket_key);
}

void tls_mint_stats(struct tls_mint *m, struct tls_mint_stats *out)
{
    pthread_mutex_lock(&m->lock);
    *out = m->st;
    pthread_mutex_unlock(&m->lock);
}
