/* tls mint: per-host server certificates signed by the local CA (tls/ca.h), for the HTTPS
 * block page and inspected tunnels, kept in an LRU cache bounded by count and by bytes.
 *
 * One leaf key (ECDSA P-256) is made per tls_mint and used for every host, as Squid and
 * mitmproxy do: a mint is then one signature, not a key generation. The cache lock is held
 * for lookups and list moves only; the signature is made outside it, so workers finding a
 * cached host never wait behind another's mint (two workers missing the same host at once
 * both sign; the first to finish is kept).
 *
 * Thread-safe: any worker calls tls_mint_get/release; tls_mint_new/free on one thread while
 * no other uses it. */
#ifndef PX_TLS_MINT_H
#define PX_TLS_MINT_H

#include <gnutls/gnutls.h>
#include <stddef.h>
#include <stdint.h>

#include "tls/ca.h"
#include "tls/tls.h"

struct tls_mint;

/* Certificates minted are valid from an hour ago (clients with a slow clock) to 397 days
 * from now (the longest browsers accept) or the CA's end, whichever is first. */
#define TLS_MINT_DAYS 397

/* The cache's bounds as proxyd uses them: thousands of hosts (what an office reaches over
 * HTTPS in a day), at most 32 MiB. */
#define TLS_MINT_MAX_ENTRIES 10000
#define TLS_MINT_MAX_BYTES (32u << 20)

struct tls_mint_stats {
    uint64_t hits, misses; /* lookups answered from the cache / by a new certificate */
    uint64_t evictions;    /* entries pushed out by either bound */
    uint64_t failures;     /* mints that failed (the caller got an error) */
    size_t entries, bytes; /* in the cache now (bytes: tls_mint_entry_bytes each) */
    size_t max_entries, max_bytes;
};

/* A new mint signing with ca (borrowed: it must outlive the mint), caching at most
 * max_entries hosts and max_bytes (both >= 1). Makes the leaf key. Returns it, or NULL with
 * err filled. */
struct tls_mint *tls_mint_new(const struct tls_ca *ca, size_t max_entries, size_t max_bytes,
                              char *err, size_t errlen);
/* Frees m and its cache. Every tls_mint_get must have been released. */
void tls_mint_free(struct tls_mint *m);

/* Server credentials for host (canonical, acl_host_parse: a DNS name, or an IP literal, which
 * gets an IP address SAN), from the cache or minted now. They stay valid, even if evicted,
 * until tls_mint_release(m, *ref). Returns NULL with err filled when minting fails. */
gnutls_certificate_credentials_t tls_mint_get(struct tls_mint *m, const char *host, void **ref,
                                              char *err, size_t errlen);
void tls_mint_release(struct tls_mint *m, void *ref);

/* For a mint replaced by a new CA's while connections may still hold its certificates: empties
 * the cache (borrowed entries live until released) and caches at most one entry from now on,
 * so that a retired mint kept until exit holds its leaf key and little else. */
void tls_mint_retire(struct tls_mint *m);

/* Begins a server session on fd presenting x509 (from tls_mint_get, held until the session
 * ends), ALPN http/1.1 only, like tls_session_start. Returns PX_OK or PX_ERR. */
int tls_mint_session_start(struct tls_mint *m, struct tls_session *t,
                           gnutls_certificate_credentials_t x509, int fd);
/* The same inside t, an open session (the client's to the TLS proxy port): tls_session_nest.
 * Returns PX_OK or PX_ERR (t unchanged). */
int tls_mint_session_nest(struct tls_mint *m, struct tls_session *t,
                          gnutls_certificate_credentials_t x509);

/* The cache's figures now (for /metrics and the admin UI). */
void tls_mint_stats(struct tls_mint *m, struct tls_mint_stats *out);

/* What one cache entry is counted as, for a host of host_len bytes: the entry, the name and
 * the certificate (its DER kept twice by GnuTLS: raw and parsed) plus GnuTLS's credential
 * structure, as measured (tests/unit/tls/test_mint.c checks the figure against the heap). */
size_t tls_mint_entry_bytes(size_t host_len, size_t der_len);

#endif
