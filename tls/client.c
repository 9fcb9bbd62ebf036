/* tls client: origin sessions and the trust they are verified against (tls/client.h). */
#include "tls/client.h"

#include <arpa/inet.h>
#include <gnutls/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/status.h"

struct tls_trust {
    gnutls_certificate_credentials_t x509; /* owned */
    gnutls_priority_t priority;            /* owned: the system's defaults */
    unsigned count;
};

struct tls_trust *tls_trust_load(const char *const *ca_files, size_t n, char *err, size_t errlen)
{
    struct tls_trust *trust = calloc(1, sizeof(*trust));
    int r;
    if (!trust || gnutls_certificate_allocate_credentials(&trust->x509) < 0) {
        free(trust);
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    if ((r = gnutls_priority_init2(&trust->priority, NULL, NULL, 0)) < 0) {
        snprintf(err, errlen, "TLS priorities: %s", gnutls_strerror(r));
        goto fail;
    }
    /* No store on this system (a minimal container): only the office's CAs then. */
    r = gnutls_certificate_set_x509_system_trust(trust->x509);
    if (r > 0)
        trust->count += (unsigned)r;
    for (size_t i = 0; i < n; i++) {
        r = gnutls_certificate_set_x509_trust_file(trust->x509, ca_files[i], GNUTLS_X509_FMT_PEM);
        if (r <= 0) {
            snprintf(err, errlen, "%s: %s", ca_files[i],
                     r == 0 ? "no certificate in it" : gnutls_strerror(r));
            goto fail;
        }
        trust->count += (unsigned)r;
    }
    return trust;
fail:
    tls_trust_free(trust);
    return NULL;
}

void tls_trust_free(struct tls_trust *trust)
{
    if (!trust)
        return;
    gnutls_certificate_free_credentials(trust->x509);
    if (trust->priority)
        gnutls_priority_deinit(trust->priority);
    free(trust);
}

unsigned tls_trust_count(const struct tls_trust *trust)
{
    return trust ? trust->count : 0;
}

static bool is_address(const char *host)
{
    unsigned char buf[16];
    return inet_pton(AF_INET, host, buf) == 1 || inet_pton(AF_INET6, host, buf) == 1;
}

int tls_client_start(struct tls_session *t, const struct tls_trust *trust, const char *host,
                     const char *alpn, int fd)
{
    const gnutls_datum_t proto = {(unsigned char *)alpn, alpn ? (unsigned)strlen(alpn) : 0};
    t->gs = NULL;
    t->state = TLS_NONE;
    t->error = gnutls_init(&t->gs, GNUTLS_CLIENT | GNUTLS_NONBLOCK | GNUTLS_NO_SIGNAL);
    if (t->error < 0) {
        t->gs = NULL;
        return PX_ERR;
    }
    /* RFC 6066 3: no literal address in server_name. */
    if ((t->error = gnutls_priority_set(t->gs, trust->priority)) < 0 ||
        (t->error = gnutls_credentials_set(t->gs, GNUTLS_CRD_CERTIFICATE, trust->x509)) < 0 ||
        (!is_address(host) &&
         (t->error = gnutls_server_name_set(t->gs, GNUTLS_NAME_DNS, host, strlen(host))) < 0) ||
        (alpn && (t->error = gnutls_alpn_set_protocols(t->gs, &proto, 1, 0)) < 0)) {
        gnutls_deinit(t->gs);
        t->gs = NULL;
        return PX_ERR;
    }
    gnutls_transport_set_int(t->gs, fd);
    t->fd = fd;
    t->pre = NULL;
    t->pre_len = 0;
    t->held = NULL;
    t->held_off = 0;
    t->state = TLS_HANDSHAKE;
    t->error = 0;
    return PX_OK;
}

/* The causes a person can act on, most telling first. */
static const struct {
    unsigned bit;
    const char *text;
} causes[] = {
    {GNUTLS_CERT_EXPIRED, "certificate expired"},
    {GNUTLS_CERT_NOT_ACTIVATED, "certificate not yet valid"},
    {GNUTLS_CERT_UNEXPECTED_OWNER, "certificate is for another name"},
    {GNUTLS_CERT_REVOKED, "certificate revoked"},
    {GNUTLS_CERT_SIGNER_NOT_FOUND, "unknown issuer"},
    {GNUTLS_CERT_SIGNER_NOT_CA, "issuer is not a CA"},
    {GNUTLS_CERT_INSECURE_ALGORITHM, "insecure signature algorithm"},
    {GNUTLS_CERT_SIGNATURE_FAILURE, "bad signature"},
    {GNUTLS_CERT_PURPOSE_MISMATCH, "certificate not for a TLS server"},
    {GNUTLS_CERT_MISSING_OCSP_STATUS, "OCSP status missing"},
    {GNUTLS_CERT_INVALID_OCSP_STATUS, "OCSP status invalid"},
};

void tls_verify_reason(unsigned status, bool self_signed, const char *host, char *why,
                       size_t whylen)
{
    size_t n = 0;
    unsigned known = 0;
    if (whylen == 0)
        return;
    why[0] = '\0';
    for (size_t i = 0; i < sizeof(causes) / sizeof(causes[0]); i++) {
        known |= causes[i].bit;
        if (!(status & causes[i].bit) || n >= whylen)
            continue;
        const char *text = causes[i].text;
        if (causes[i].bit == GNUTLS_CERT_SIGNER_NOT_FOUND && self_signed)
            text = "self-signed certificate";
        if (causes[i].bit == GNUTLS_CERT_UNEXPECTED_OWNER)
            n += (size_t)snprintf(why + n, whylen - n, "%s%s (not %s)", n ? ", " : "", text, host);
        else
            n += (size_t)snprintf(why + n, whylen - n, "%s%s", n ? ", " : "", text);
    }
    /* GNUTLS_CERT_INVALID alone, or a bit this list does not name. */
    if (status && (n == 0 || (status & ~(known | GNUTLS_CERT_INVALID))) && n < whylen)
        snprintf(why + n, whylen - n, "%scertificate not trusted (status 0x%x)", n ? ", " : "",
                 status);
}

/* Whether the origin sent one certificate, issued by itself. */
static bool peer_self_signed(gnutls_session_t gs)
{
    unsigned n = 0;
    const gnutls_datum_t *chain = gnutls_certificate_get_peers(gs, &n);
    gnutls_x509_crt_t crt;
    bool self = false;
    if (!chain || n != 1 || gnutls_x509_crt_init(&crt) < 0)
        return false;
    if (gnutls_x509_crt_import(crt, &chain[0], GNUTLS_X509_FMT_DER) >= 0)
        self = gnutls_x509_crt_check_issuer(crt, crt) != 0;
    gnutls_x509_crt_deinit(crt);
    return self;
}

int tls_client_handshake(struct tls_session *t, const char *host, bool *readable, bool *writable,
                         char *why, size_t whylen, bool *verify_failed)
{
    *verify_failed = false;
    bool was_open = t->state == TLS_OPEN;
    int rc = tls_session_handshake(t, readable, writable);
    if (rc == PX_AGAIN || (rc == PX_OK && was_open))
        return rc;
    if (rc == PX_ERR) {
        snprintf(why, whylen, "TLS handshake failed: %s", tls_session_error(t));
        return PX_ERR;
    }
    unsigned status = 0;
    int r = gnutls_certificate_verify_peers3(t->gs, host, &status);
    if (r < 0 || status != 0) {
        if (r < 0)
            snprintf(why, whylen, "certificate not verified: %s", gnutls_strerror(r));
        else
            tls_verify_reason(status, peer_self_signed(t->gs), host, why, whylen);
        *verify_failed = true;
        t->error = GNUTLS_E_CERTIFICATE_VERIFICATION_ERROR;
        t->state = TLS_FAILED;
        return PX_ERR;
    }
    return PX_OK;
}
