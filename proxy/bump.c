/* bump: the server TLS session after a CONNECT decision, and the HTTPS block page
 * (proxy/bump.h). */
#include "proxy/bump.h"

#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "base/status.h"
#include "proxy/access_req.h"
#include "proxy/conn.h"
#include "proxy/log.h"
#include "proxy/reply.h"
#include "proxy/request.h"
#include "proxy/worker.h"
#include "tls/mint.h"

static const char established[] = "HTTP/1.1 200 Connection established\r\n\r\n";

struct tls_mint *bump_mint(const struct conn *c)
{
    return atomic_load_explicit(&c->w->shared->mint, memory_order_acquire);
}

void bump_release(struct conn *c)
{
    if (c->mint_ref)
        tls_mint_release(c->mint, c->mint_ref);
    c->mint_ref = NULL;
    c->mint = NULL;
    c->bump_then = NULL;
}

int bump_begin(struct conn *c, const char *host, size_t skip, bump_then_fn *then, char *err,
               size_t errlen)
{
    struct worker *w = c->w;
    struct tls_mint *m = bump_mint(c);
    if (!m) {
        snprintf(err, errlen, "no CA");
        return -1;
    }
    void *ref;
    gnutls_certificate_credentials_t cred = tls_mint_get(m, host, &ref, err, errlen);
    if (!cred)
        return -1;
    if (c->is_connect) {
        /* The 200 goes out alone: whatever our answer was to be is replaced by it. */
        if (buf_attach(&w->bufs, &c->down) < 0) {
            tls_mint_release(m, ref);
            snprintf(err, errlen, "no buffer");
            return -1;
        }
        memcpy(c->down.data, established, sizeof(established) - 1);
        c->down.off = 0;
        c->down.len = sizeof(established) - 1;
    }
    if (c->up.data)
        buf_consume(&c->up, skip < c->up.len ? skip : c->up.len);
    c->head_len = 0;
    c->mint = m;
    c->mint_ref = ref;
    c->mint_cred = cred;
    c->bump_then = then;
    conn_set_state(c, CONN_BUMP);
    conn_set_deadline(c, w->tun.header_timeout_ms);
    return 0;
}

/* The handshake failed: most often a client that does not trust the CA (its alert says
 * "unknown CA"), which is what such a client saw before too, an error. */
static void handshake_failed(struct conn *c)
{
    static struct log_ratelimit rl = LOG_RATELIMIT_INIT(10000, 1);
    log_info_limited(&rl, "TLS as %s toward a client failed: %s (clients must trust the CA)",
                     c->host.text, tls_session_error(&c->tls));
    conn_close(c, CLOSE_NONE);
}

static bool block_read_head(struct conn *c);

bool bump_step(struct conn *c)
{
    if (c->block_inside)
        return block_read_head(c);
    if (c->tls.state != TLS_HANDSHAKE) {
        /* The 200 first (a CONNECT), then the session on the same socket, or inside the
         * client's TLS to the proxy port (TLS inside TLS: only such a connection pays). */
        if (!conn_client_flush(c, NULL))
            return false;
        buf_detach(&c->w->bufs, &c->down);
        int r = conn_client_tls(c) ? tls_mint_session_nest(c->mint, &c->tls, c->mint_cred)
                                   : tls_mint_session_start(c->mint, &c->tls, c->mint_cred, c->cfd);
        if (r != PX_OK) {
            if (!conn_client_tls(c))
                c->tls.state = TLS_NONE;
            conn_close(c, CLOSE_OVERLOAD);
            return false;
        }
        if (c->up.len > 0)
            tls_session_prefix(&c->tls, buf_head(&c->up), c->up.len);
    }
    int r = tls_session_handshake(&c->tls, &c->c_readable, &c->c_writable);
    if (r == PX_AGAIN)
        return false;
    if (r == PX_ERR) {
        handshake_failed(c);
        return false;
    }
    /* A client sends nothing before the server's first flight but its ClientHello (and early
     * data, which the handshake skips): bytes of the prefix left over are not TLS. */
    if (tls_session_prefix_left(&c->tls) > 0) {
        conn_close(c, CLOSE_CLIENT_ERROR);
        return false;
    }
    if (c->up.data)
        c->up.off = c->up.len = 0;
    /* The first request may have come with the handshake's last flight and wait in GnuTLS. */
    c->c_readable = true;
    bump_then_fn *then = c->bump_then;
    c->bump_then = NULL;
    then(c);
    return true;
}

/* ---- the HTTPS block page ---- */

/* The page for the request read inside the session, as plain HTTP would get it. */
static void block_answer(struct conn *c, const struct h1_request *req)
{
    c->request_head = req->method.len == 4 && !memcmp(req->method.p, "HEAD", 4);
    /* A form sent from an earlier HTTPS block page: GET of ACCESS_REQ_PATH on this host. */
    static const char path[] = ACCESS_REQ_PATH;
    size_t n = sizeof(path) - 1;
    const struct h1_slice *t = &req->target;
    if (c->req->rec.rule_id > 0 && request_access_on(c) && req->method.len == 3 &&
        !memcmp(req->method.p, "GET", 3) && t->len >= n && !memcmp(t->p, path, n) &&
        (t->len == n || t->p[n] == '?')) {
        size_t qlen = t->len > n ? t->len - n - 1 : 0;
        request_access_submit(c, t->p + n + (t->len > n), qlen, c->req->rec.rule_id, false);
        return;
    }
    reply_blocked(c, c->req->rec.rule_id, c->req->rec.error, false,
                  c->req->rec.rule_id > 0 && request_access_on(c));
}

/* CONN_BUMP after the handshake of a block page: reads the first request's head. */
static bool block_read_head(struct conn *c)
{
    struct worker *w = c->w;
    if (buf_attach(&w->bufs, &c->up) < 0) {
        conn_close(c, CLOSE_OVERLOAD);
        return false;
    }
    for (;;) {
        if (c->up.len > 0) {
            struct h1_request req = {.headers = w->headers};
            struct h1_error err = {0};
            int n = h1_parse_request(buf_head(&c->up), c->up.len, &w->tun.limits, &req, &err);
            if (n > 0) {
                block_answer(c, &req);
                return true;
            }
            if (n == PX_ERR) { /* not a request we read: the page anyway, it is all we say */
                reply_blocked(c, c->req->rec.rule_id, c->req->rec.error, false, false);
                return true;
            }
        }
        if (buf_room(&c->up) == 0) {
            reply_blocked(c, c->req->rec.rule_id, c->req->rec.error, false, false);
            return true;
        }
        ssize_t n = conn_client_recv(c, &c->up, 0);
        if (n > 0)
            continue;
        if (n == PX_AGAIN)
            return false;
        conn_close(c, n == 0 ? CLOSE_NONE : CLOSE_CLIENT_ERROR);
        return false;
    }
}

static void block_then(struct conn *c)
{
    /* An intercepted connection was raw bytes until now: it is HTTP from here. */
    c->is_forward = false;
    c->tls_alert = false;
    c->block_inside = true;
    conn_set_deadline(c, c->w->tun.header_timeout_ms);
}

bool bump_block_page(struct conn *c)
{
    /* (A page answered inside a session of ours already is sent there.) */
    if (!atomic_load_explicit(&c->w->shared->https_block_page, memory_order_relaxed) ||
        !bump_mint(c) || c->mint_ref)
        return false;
    size_t skip;
    if (c->is_connect)
        skip = c->head_len;
    else if (c->intercepted && c->tls_alert)
        skip = 0; /* c->host is the ClientHello's name (or the destination's address without
                     one), and all of c->up is TLS; intercept.c asks only for a hello it read */
    else
        return false;
    const char *host = c->host.text;
    char err[256];
    if (bump_begin(c, host, skip, block_then, err, sizeof(err)) < 0) {
        static struct log_ratelimit rl = LOG_RATELIMIT_INIT(10000, 1);
        log_warnx_limited(&rl, "HTTPS block page for %s: %s", host, err);
        return false;
    }
    return true;
}
