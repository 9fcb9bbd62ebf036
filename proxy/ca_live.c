/* ca_live: the running proxy's CA and mint (proxy/ca_live.h). */
#include "proxy/ca_live.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proxy/log.h"
#include "tls/ca.h"
#include "tls/mint.h"

void ca_live_init(struct ca_live *l, const char *data_dir, struct tls_mint *_Atomic *publish)
{
    memset(l, 0, sizeof(*l));
    l->data_dir = data_dir;
    l->publish = publish;
}

/* Takes the one in force out of use (kept until ca_live_free) and puts ca/mint (or none) in. */
static void replace(struct ca_live *l, struct tls_ca *ca, struct tls_mint *mint)
{
    atomic_store_explicit(l->publish, mint, memory_order_release);
    if (l->ca) {
        tls_mint_retire(l->mint);
        struct ca_retired *r = malloc(sizeof(*r));
        if (r) {
            *r = (struct ca_retired){l->retired, l->ca, l->mint};
            l->retired = r;
        } /* else: leaked rather than freed under a connection that may use it */
    }
    l->ca = ca;
    l->mint = mint;
}

static bool same_file(const struct stat *a, const struct stat *b)
{
    return a->st_ino == b->st_ino && a->st_dev == b->st_dev && a->st_size == b->st_size &&
           a->st_mtim.tv_sec == b->st_mtim.tv_sec && a->st_mtim.tv_nsec == b->st_mtim.tv_nsec;
}

void ca_live_poll(struct ca_live *l)
{
    char path[4200];
    struct stat st;
    snprintf(path, sizeof(path), "%s/%s", l->data_dir, TLS_CA_CERT_FILE);
    if (stat(path, &st) < 0) {
        if (l->ca && errno == ENOENT) {
            log_info("the local CA was removed: HTTPS block pages are off");
            replace(l, NULL, NULL);
        }
        l->seen_any = false;
        return;
    }
    if (l->seen_any && same_file(&st, &l->seen))
        return;
    l->seen = st;
    l->seen_any = true;
    char err[512];
    struct tls_ca *ca = tls_ca_load(l->data_dir, err, sizeof(err));
    if (!ca) {
        log_warnx("local CA not loaded: %s%s", err, l->ca ? " (the previous one stays)" : "");
        return;
    }
    struct tls_mint *mint =
        tls_mint_new(ca, TLS_MINT_MAX_ENTRIES, TLS_MINT_MAX_BYTES, err, sizeof(err));
    if (!mint) {
        log_warnx("local CA not used: %s", err);
        tls_ca_free(ca);
        return;
    }
    replace(l, ca, mint);
    log_info("local CA in use: %s, SHA-256 %s", ca->subject, ca->sha256);
}

void ca_live_free(struct ca_live *l)
{
    atomic_store_explicit(l->publish, NULL, memory_order_release);
    tls_mint_free(l->mint);
    tls_ca_free(l->ca);
    while (l->retired) {
        struct ca_retired *r = l->retired;
        l->retired = r->next;
        tls_mint_free(r->mint);
        tls_ca_free(r->ca);
        free(r);
    }
    l->ca = NULL;
    l->mint = NULL;
}
