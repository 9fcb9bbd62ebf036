/* ca_live: the local CA (tls/ca.h) of the running proxy and the mint the workers use
 * (proxy_shared.mint). Loaded at start when the data folder holds one, and again whenever
 * its certificate file changes (`proxyctl ca init`, an import, the admin UI's "Create CA"),
 * so a CA made on the running proxy is in use within a poll. A replaced mint is kept, not
 * freed, until ca_live_free: connections may still present its certificates.
 * Main thread only. */
#ifndef PX_CA_LIVE_H
#define PX_CA_LIVE_H

#include <stdbool.h>
#include <sys/stat.h>

struct tls_ca;
struct tls_mint;

struct ca_retired {
    struct ca_retired *next;
    struct tls_ca *ca;
    struct tls_mint *mint;
};

struct ca_live {
    const char *data_dir;              /* borrowed */
    struct tls_mint *_Atomic *publish; /* where workers read the mint (proxy_shared.mint) */
    struct tls_ca *ca;                 /* in force, or NULL */
    struct tls_mint *mint;
    struct stat seen; /* the certificate file as last looked at */
    bool seen_any;
    struct ca_retired *retired;
};

void ca_live_init(struct ca_live *l, const char *data_dir, struct tls_mint *_Atomic *publish);
/* Loads the CA when its certificate file is new or changed since the last call, and
 * publishes its mint; a CA that does not load is logged once per change and the one in
 * force stays. A removed CA is no longer used. */
void ca_live_poll(struct ca_live *l);
/* Everything, once no worker runs. */
void ca_live_free(struct ca_live *l);

#endif
