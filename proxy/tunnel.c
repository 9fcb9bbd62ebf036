/* tunnel: CONNECT and WebSocket tunnels, and the kernel pipes that splice(2) bytes from socket
 * to socket for them and for long response bodies (relay.c), with a per-worker pool of empty
 * pipes. Worker thread only. */
#include "proxy/tunnel.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "base/status.h"
#include "proxy/bump.h"
#include "proxy/conn.h"
#include "proxy/intercept.h"
#include "proxy/log.h"
#include "proxy/origin.h"
#include "proxy/request.h"
#include "proxy/tls_hello.h"
#include "proxy/worker.h"

/* A pipe this large lets one splice move a good part of a long transfer. */
#define PIPE_SIZE (1024 * 1024)

/* ---- pipes ---- */

static int pipe_new(struct tun_pipe *p)
{
    int fds[2];
    if (pipe2(fds, O_NONBLOCK | O_CLOEXEC) < 0)
        return -1;
    p->rd = fds[0];
    p->wr = fds[1];
    int size = fcntl(p->wr, F_SETPIPE_SZ, PIPE_SIZE);
    p->cap = size > 0 ? (size_t)size : 65536;
    return 0;
}

static void pipe_free(struct tun_pipe *p)
{
    close(p->rd);
    close(p->wr);
}

int tun_pipe_open(struct tun_pipe_pool *pool, struct tun_pipe *p)
{
    if (pool->n > 0)
        *p = pool->free[--pool->n];
    else if (pipe_new(p) < 0)
        return -1;
    p->bytes = 0;
    p->full = false;
    p->open = true;
    return 0;
}

void tun_pipe_close(struct tun_pipe_pool *pool, struct tun_pipe *p)
{
    if (!p->open)
        return;
    p->open = false;
    p->full = false;
    /* Our count says empty; the kernel's must agree before another user gets the pipe. */
    int queued = -1;
    if (p->bytes == 0 && pool->n < TUN_PIPE_POOL && ioctl(p->rd, FIONREAD, &queued) == 0 &&
        queued == 0)
        pool->free[pool->n++] = *p;
    else
        pipe_free(p);
    p->bytes = 0;
}

void tun_pipe_pool_clear(struct tun_pipe_pool *pool)
{
    while (pool->n > 0)
        pipe_free(&pool->free[--pool->n]);
}

/* Empties the pipe into to. Returns the bytes delivered, or PX_ERR. */
static ssize_t pipe_drain(struct tun_pipe *p, int to, bool *writable)
{
    size_t want = p->bytes;
    ssize_t n = splice(p->rd, NULL, to, NULL, want, SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
    if (n > 0) {
        p->bytes -= (size_t)n;
        p->full = false;
        if ((size_t)n < want)
            *writable = false;
        return n;
    }
    if (n < 0 && errno == EAGAIN)
        *writable = false;
    else if (n < 0 && errno != EINTR)
        return PX_ERR;
    return 0;
}

/* Fills the pipe from from, at most *limit bytes. Returns whether anything moved (bytes or
 * the end of stream), or PX_ERR. EAGAIN proves the socket empty only when the pipe is empty
 * too (a pipe can be full with fewer bytes than its size), so only then is the readable flag
 * cleared; with bytes in the pipe it is taken for a full pipe (readable stays set, so the
 * next fill after a drain finds out). */
static int pipe_fill(struct tun_pipe *p, int from, bool *readable, uint64_t *limit, bool *eof)
{
    size_t want = p->cap - p->bytes;
    if (want > *limit)
        want = (size_t)*limit;
    ssize_t n = splice(from, NULL, p->wr, NULL, want, SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
    if (n > 0) {
        p->bytes += (size_t)n;
        *limit -= (uint64_t)n;
        return 1;
    }
    if (n == 0) {
        *eof = true;
        return 1;
    }
    if (errno == EAGAIN) {
        if (p->bytes == 0)
            *readable = false;
        else
            p->full = true;
    } else if (errno != EINTR) {
        return PX_ERR;
    }
    return 0;
}

ssize_t tun_splice(struct tun_pipe *p, int from, bool *readable, int to, bool *writable,
                   uint64_t *limit, bool *eof, bool *to_failed)
{
    ssize_t delivered = 0;
    *to_failed = false;
    for (int round = 0; round < 8; round++) {
        bool moved = false;
        if (p->bytes > 0 && *writable) {
            ssize_t n = pipe_drain(p, to, writable);
            if (n == PX_ERR) {
                *to_failed = true;
                return PX_ERR;
            }
            delivered += n;
            moved = n > 0;
        }
        if (*readable && !*eof && *limit > 0 && p->bytes < p->cap && !p->full) {
            int r = pipe_fill(p, from, readable, limit, eof);
            if (r == PX_ERR)
                return PX_ERR;
            moved |= r > 0;
        }
        if (!moved)
            break;
    }
    return delivered;
}

/* ---- inspected tunnels ---- */

bool tun_inspect_decide(const struct acl_inspect *in, const char *unable, char *note,
                        size_t notelen)
{
    if (notelen)
        note[0] = '\0';
    if (!in->inspect)
        return false;
    if (unable) {
        snprintf(note, notelen, "inspect rule %d not applied: %s", in->rule_id, unable);
        return false;
    }
    return true;
}

/* bump_begin's then: the session is up, the requests inside are read like any client's. */
static void inspect_then(struct conn *c)
{
    /* An intercepted connection was raw bytes until now: it is HTTP from here. */
    c->is_forward = false;
    c->tls_alert = false;
    c->inspecting = true;
    conn_next_request(c);
    conn_set_deadline(c, c->w->tun.header_timeout_ms);
}

void tun_inspect_start(struct conn *c)
{
    static struct log_ratelimit rl = LOG_RATELIMIT_INIT(10000, 1);
    struct worker *w = c->w;
    char err[256];
    c->inspect = false;
    c->tunnel_host = c->host;
    c->tunnel_port = c->req->rec.port;
    c->tunnel_addr = c->origin_addr;
    memcpy(c->tunnel_user, c->req->rec.user, sizeof(c->tunnel_user));
    c->tunnel_user[sizeof(c->tunnel_user) - 1] = '\0';
    /* The origin waits, kept by this client, for the first request inside. */
    c->origin_in_use = false;
    w->nattached++;
    if (c->is_connect)
        c->req->rec.status = 200;
    request_record_finish(c);
    if (bump_begin(c, c->tunnel_host.text, c->head_len, inspect_then, err, sizeof(err)) < 0) {
        log_warnx_limited(&rl, "inspecting %s: %s", c->tunnel_host.text, err);
        conn_close(c, CLOSE_OVERLOAD);
    }
}

/* ---- tunnels ---- */

void tun_rejudge(struct worker *w)
{
    struct conn *next;
    for (struct conn *c = w->active; c; c = next) {
        next = c->next;
        /* An inspected tunnel's requests are each judged as they come; but a WebSocket
         * inside one is a tunnel of its own, judged once, and lasts. */
        if (c->state != CONN_TUNNEL || (c->inspecting && !c->websocket) || !c->req || c->ofd < 0)
            continue;
        struct acl_decision ad;
        if (request_still_allowed(c, &ad))
            continue;
        char detail[200]; /* cut to the error column by request_record_outcome */
        snprintf(detail, sizeof(detail), "closed by a policy change: %s", ad.reason);
        c->req->rec.rule_id = ad.rule_id;
        c->req->rec.policy_version = acl_set_version(w->acl);
        request_record_outcome(c, CLOSE_DENIED, detail);
        conn_close(c, CLOSE_DENIED);
    }
}

static int name_cmp(const void *key, const void *elem)
{
    return strcmp(key, *(char *const *)elem);
}

/* The proxy user whose password let c's tunnel or request in, "" if none: an inspected
 * tunnel's is the CONNECT's whatever request it carries now; anything else's is its
 * request's, in any state (a CONNECT still resolving or connecting becomes a tunnel later). */
static const char *conn_user_of(const struct conn *c)
{
    if (c->tunnel_user[0])
        return c->tunnel_user;
    return c->req ? c->req->rec.user : "";
}

void tun_users_check(struct worker *w)
{
    struct proxy_shared *s = w->shared;
    struct conn *next;
    pthread_mutex_lock(&s->users_lock);
    w->users_judged_gen = atomic_load(&s->users_gen);
    for (struct conn *c = w->active; s->users_read && c; c = next) {
        next = c->next;
        const char *user = conn_user_of(c);
        if (!user[0] || c->user_read >= s->users_read ||
            (s->nusers > 0 && bsearch(user, s->users, s->nusers, sizeof(*s->users), name_cmp)))
            continue;
        char detail[120]; /* cut to the error column by request_record_outcome */
        snprintf(detail, sizeof(detail), "closed: proxy user %s was deleted", user);
        request_record_outcome(c, CLOSE_DENIED, detail);
        conn_close(c, CLOSE_DENIED);
    }
    pthread_mutex_unlock(&s->users_lock);
}

void tun_start(struct conn *c, bool read_hello)
{
    memset(&c->upf, 0, sizeof(c->upf));
    memset(&c->downf, 0, sizeof(c->downf));
    c->hello_pending = read_hello;
    c->retry_watch = c->retry_asked = false;
    c->up_judged = 0;
    conn_set_state(c, CONN_TUNNEL);
    c->counted_tunnel = true;
    STAT_ADD(c, tunnels_active, 1);
    conn_set_deadline(c, c->w->tun.tunnel_idle_ms);
}

static void count_bytes(struct conn *c, bool up, ssize_t n)
{
    if (n <= 0)
        return;
    if (up) {
        c->req->rec.bytes_up += (uint64_t)n;
        STAT_ADD(c, bytes_up, (uint64_t)n);
    } else {
        c->req->rec.bytes_down += (uint64_t)n;
        STAT_ADD(c, bytes_down, (uint64_t)n);
    }
}

/* The pumps of one side of a tunnel: the client's may be TLS (conn_client_*). */
static ssize_t side_recv(struct conn *c, bool client, struct buf *b)
{
    return client ? conn_client_recv(c, b, 0) : conn_origin_recv(c, b, 0);
}

static ssize_t side_send(struct conn *c, bool client, struct buf *b, size_t *ready)
{
    return client ? conn_client_send(c, b, ready) : conn_origin_send(c, b, ready);
}

/* One direction of a tunnel: bytes already buffered (sent along with the CONNECT or upgrade
 * head) go first, then everything moves through a pipe; without descriptors for a pipe, or
 * with a TLS client (whose bytes must be decrypted), it goes on through the buffer. Returns 1
 * on progress, 0 if none, -1 after closing c. */
static int tunnel_direction(struct conn *c, int from, bool *readable, int to, bool *writable,
                            struct buf *b, struct tun_pipe *p, struct conn_flow *f, bool up)
{
    struct worker *w = c->w;
    bool progress = false;
    ssize_t n = 0;
    if (b->len > 0) {
        size_t ready = b->len;
        n = side_send(c, !up, b, &ready);
        if (n == PX_ERR) {
            conn_close(c, up ? CLOSE_ORIGIN_ERROR : CLOSE_CLIENT_ERROR);
            return -1;
        }
        progress = n > 0;
        count_bytes(c, up, n);
    } else if (conn_client_tls(c) || conn_origin_tls(c) ||
               (!p->open && tun_pipe_open(&w->pipes, p) < 0)) {
        /* The bytes go through the buffer, counted when sent. */
        if (buf_attach(&w->bufs, b) < 0) {
            conn_close(c, CLOSE_OVERLOAD);
            return -1;
        }
        bool was_eof = f->eof;
        n = side_recv(c, up, b);
        if (n == PX_ERR) {
            conn_close(c, up ? CLOSE_CLIENT_ERROR : CLOSE_ORIGIN_ERROR);
            return -1;
        }
        if (n == 0)
            f->eof = true;
        progress = n > 0 || f->eof != was_eof;
        if (b->len == 0)
            buf_detach(&w->bufs, b);
    } else {
        buf_detach(&w->bufs, b); /* an idle tunnel holds no buffer */
        uint64_t limit = UINT64_MAX;
        bool was_eof = f->eof, to_failed;
        n = tun_splice(p, from, readable, to, writable, &limit, &f->eof, &to_failed);
        if (n == PX_ERR) {
            bool client_failed = up ? !to_failed : to_failed;
            conn_close(c, client_failed ? CLOSE_CLIENT_ERROR : CLOSE_ORIGIN_ERROR);
            return -1;
        }
        if (conn_want_reads(c, up, !p->full) < 0) {
            conn_close(c, CLOSE_OVERLOAD);
            return -1;
        }
        progress = n > 0 || f->eof != was_eof;
        count_bytes(c, up, n);
    }
    if (f->eof && b->len == 0 && p->bytes == 0 && !f->done) {
        if (up) { /* pass the half-close on (a TLS target hears close_notify first) */
            if (conn_origin_tls(c))
                tls_session_bye(&c->otls);
            shutdown(to, SHUT_WR);
        } else {
            conn_client_shutdown(c);
        }
        f->done = true;
        progress = true;
    }
    return progress;
}

/* ---- the client's first bytes ---- */

void tun_tls_alert(struct conn *c, uint8_t alert)
{
    struct worker *w = c->w;
    origin_close(c);
    /* An alert among origin bytes would be out of order. */
    if (c->dpipe.bytes > 0 || buf_attach(&w->bufs, &c->down) < 0 || buf_room(&c->down) < 7) {
        conn_close(c, CLOSE_NONE);
        return;
    }
    const uint8_t rec[7] = {21, 3, 3, 0, 2, 2 /* fatal */, alert};
    memcpy(buf_tail(&c->down), rec, sizeof(rec));
    c->down.len += sizeof(rec);
    c->client_keep_alive = false;
    conn_set_state(c, CONN_REPLY);
}

/* Ends the tunnel before any client byte went up, recorded as refused. */
static void hello_refuse(struct conn *c, enum conn_close why, int rule_id, const char *detail,
                         uint8_t alert)
{
    c->req->rec.decision = STORE_DENY;
    c->req->rec.rule_id = rule_id;
    request_record_outcome(c, why, detail);
    tun_tls_alert(c, alert);
}

/* What the held bytes say, once they say enough. Returns whether the tunnel goes on (the
 * bytes are then sent up as they are). */
static bool hello_judge(struct conn *c, bool full)
{
    struct tls_hello h;
    const char *why;
    switch (tls_hello_parse((const uint8_t *)buf_head(&c->up), c->up.len, &h, &why)) {
    case TLS_HELLO_NOT_TLS:
        return true;
    case TLS_HELLO_NEED_MORE:
        if (!full)
            return false;
        why = "ClientHello longer than the proxy reads";
        /* fall through */
    case TLS_HELLO_MALFORMED:
    case TLS_HELLO_RESULT_COUNT: {
        /* A hello we cannot read may name anything: refused, as a denied name is. */
        char detail[200]; /* cut to the error column by request_record_outcome */
        snprintf(detail, sizeof(detail), "ClientHello: %s", why);
        hello_refuse(c, CLOSE_BAD_HELLO, c->req->rec.rule_id, detail, TLS_ALERT_DECODE_ERROR);
        return false;
    }
    case TLS_HELLO_PARSED:
        break;
    }
    if (h.has_sni) {
        memcpy(c->req->rec.sni, h.sni.text, h.sni.len + 1);
        struct request_decision d;
        if ((h.sni.len != c->host.len || memcmp(h.sni.text, c->host.text, h.sni.len) != 0) &&
            request_decide_sni(c, &h.sni, &d) != VERDICT_ALLOW) {
            hello_refuse(c, d.why, d.rule_id, NULL, TLS_ALERT_ACCESS_DENIED);
            return false;
        }
    }
    /* A server that answers with a HelloRetryRequest reads the client's second ClientHello
     * as naming the server anew (OpenSSL switches to the name it gives): what follows this
     * one waits until the server's answer shows whether there will be one to judge. */
    c->retry_watch = true;
    c->retry_asked = false;
    c->up_judged = h.len;
    return true;
}

/* Ends the tunnel after the client's second ClientHello, recorded as refused. */
static int retry_refuse(struct conn *c, const char *what, const char *why)
{
    char detail[640]; /* cut to the error column by request_record_outcome */
    snprintf(detail, sizeof(detail), "second ClientHello: %s%s", what, why ? why : "");
    hello_refuse(c, CLOSE_BAD_HELLO, c->req->rec.rule_id, detail,
                 why ? TLS_ALERT_DECODE_ERROR : TLS_ALERT_ACCESS_DENIED);
    return -1;
}

/* After a HelloRetryRequest: the client's bytes after its first ClientHello must be a second
 * one naming the same server (RFC 8446 4.1.2), after any change_cipher_spec (middlebox
 * compatibility), early data or alert, which go up as they are. An alert does not end the
 * watch: OpenSSL's server reads past a user_canceled one, warning or fatal, to the next
 * ClientHello. The watch ends with the client's end. Returns 1 when bytes were judged, 0
 * when more are needed, -1 after refusing. */
static int retry_judge(struct conn *c)
{
    const uint8_t *p = (const uint8_t *)buf_head(&c->up);
    size_t len = c->up.len, off = c->up_judged;
    int judged = 0;
    bool partial = false;
    while (len - off >= 5 && (p[off] == 20 || p[off] == 21 || p[off] == 23)) {
        size_t rec = 5 + ((size_t)p[off + 3] << 8 | p[off + 4]);
        if (len - off < rec) {
            partial = true;
            break;
        }
        off += rec;
        c->up_judged = off;
        judged = 1;
    }
    if (c->upf.eof && len == off) { /* the client ended with no second ClientHello */
        c->retry_watch = false;
        return 1;
    }
    if (partial || len - off < 5)
        return c->upf.eof ? retry_refuse(c, "", "cut short") : judged;
    struct tls_hello h;
    const char *why;
    switch (tls_hello_parse(p + off, len - off, &h, &why)) {
    case TLS_HELLO_NEED_MORE:
        if (c->upf.eof || buf_room(&c->up) == 0)
            return retry_refuse(c, "", c->upf.eof ? "cut short" : "longer than the proxy reads");
        return judged;
    case TLS_HELLO_NOT_TLS:
        return retry_refuse(c, "", "not a ClientHello");
    case TLS_HELLO_MALFORMED:
    case TLS_HELLO_RESULT_COUNT:
        return retry_refuse(c, "", why);
    case TLS_HELLO_PARSED:
        break;
    }
    const char *first = c->req->rec.sni;
    if (h.has_sni ? strcmp(h.sni.text, first) != 0 : first[0] != '\0') {
        char what[2 * sizeof(c->req->rec.sni) + 32];
        snprintf(what, sizeof(what), "names %s, the first %s", h.has_sni ? h.sni.text : "no server",
                 first[0] ? first : "none");
        return retry_refuse(c, what, NULL);
    }
    c->retry_watch = false; /* the handshake goes on encrypted: nothing more to read */
    return 1;
}

/* The client -> origin direction while retry_watch: the judged bytes go up, the others wait
 * in c->up for the server's answer (retry_down_step) and, after a HelloRetryRequest, for
 * retry_judge. Returns 1 on progress, 0 if none, -1 after c left the tunnel. */
static int retry_up_step(struct conn *c)
{
    struct worker *w = c->w;
    int progress = 0;
    if (c->up_judged > 0) {
        size_t ready = c->up_judged;
        ssize_t n = conn_origin_send(c, &c->up, &ready);
        if (n == PX_ERR) {
            conn_close(c, CLOSE_ORIGIN_ERROR);
            return -1;
        }
        if (n > 0) {
            count_bytes(c, true, n);
            c->up_judged = ready;
            progress = 1;
        }
    }
    if (!c->upf.eof) {
        if (buf_attach(&w->bufs, &c->up) < 0) {
            conn_close(c, CLOSE_OVERLOAD);
            return -1;
        }
        ssize_t n = conn_client_recv(c, &c->up, 0);
        if (n == PX_ERR) {
            conn_close(c, CLOSE_CLIENT_ERROR);
            return -1;
        }
        if (n == 0)
            c->upf.eof = true;
        if (n >= 0)
            progress = 1;
    }
    if (c->retry_asked) {
        int r = retry_judge(c);
        if (r < 0)
            return -1;
        progress |= r;
    }
    if (c->up.len == 0)
        buf_detach(&w->bufs, &c->up);
    return progress;
}

/* The bytes of a ServerHello up to the end of its random, which tells a HelloRetryRequest
 * (RFC 8446 4.1.3): record header, handshake header, legacy_version, random. */
#define SERVER_HELLO_HEAD (5 + 4 + 2 + 32)

/* The origin -> client direction while the server's first answer to an allowed ClientHello
 * is unknown: read into c->down and passed on (tunnel_direction) once its head tells whether
 * it is a HelloRetryRequest. Returns as tunnel_direction. */
static int retry_down_step(struct conn *c)
{
    static const uint8_t hrr_random[32] = {0xCF, 0x21, 0xAD, 0x74, 0xE5, 0x9A, 0x61, 0x11,
                                           0xBE, 0x1D, 0x8C, 0x02, 0x1E, 0x65, 0xB8, 0x91,
                                           0xC2, 0xA2, 0x11, 0x16, 0x7A, 0xBB, 0x8C, 0x5E,
                                           0x07, 0x9E, 0x09, 0xE2, 0xC8, 0xA8, 0x33, 0x9C};
    struct worker *w = c->w;
    if (buf_attach(&w->bufs, &c->down) < 0) {
        conn_close(c, CLOSE_OVERLOAD);
        return -1;
    }
    ssize_t n = conn_origin_recv(c, &c->down, 0);
    if (n == PX_ERR) {
        conn_close(c, CLOSE_ORIGIN_ERROR);
        return -1;
    }
    if (n == 0)
        c->downf.eof = true;
    const uint8_t *b = (const uint8_t *)buf_head(&c->down);
    size_t len = c->down.len;
    bool known = c->downf.eof || (len >= 1 && b[0] != 22) || (len >= 6 && b[5] != 2) ||
                 len >= SERVER_HELLO_HEAD;
    if (!known) {
        if (len == 0)
            buf_detach(&w->bufs, &c->down);
        return n > 0;
    }
    c->retry_asked =
        len >= SERVER_HELLO_HEAD && b[0] == 22 && b[5] == 2 && memcmp(b + 11, hrr_random, 32) == 0;
    if (!c->retry_asked)
        c->retry_watch = false; /* no second ClientHello: the held bytes go up as they are */
    int sent = tunnel_direction(c, c->ofd, &c->o_readable, c->cfd, &c->c_writable, &c->down,
                                &c->dpipe, &c->downf, false);
    return sent < 0 ? -1 : 1;
}

/* The client -> origin direction while hello_pending: reads into c->up until hello_judge
 * decides. Returns 1 on progress, 0 if none, -1 after c left the tunnel (refused or closed). */
static int hello_step(struct conn *c)
{
    struct worker *w = c->w;
    if (buf_attach(&w->bufs, &c->up) < 0) {
        conn_close(c, CLOSE_OVERLOAD);
        return -1;
    }
    bool ended = false;
    /* Bytes that may start over as an HTTP request keep its head's reserve, as the peek does. */
    size_t reserve = c->first_bytes_late ? HEAD_RESERVE : 0;
    for (;;) {
        ssize_t n = conn_client_recv(c, &c->up, reserve);
        if (n == PX_ERR) {
            conn_close(c, CLOSE_CLIENT_ERROR);
            return -1;
        }
        if (n == 0)
            ended = true;
        if (n <= 0)
            break;
    }
    if (c->up.len == 0 && !ended) {
        buf_detach(&w->bufs, &c->up); /* a quiet client holds no buffer */
        return 0;
    }
    if (c->first_bytes_late) {
        int late = intercept_late_bytes(c, ended);
        if (late <= 0)
            return late;
    }
    bool go = hello_judge(c, buf_room(&c->up) == 0);
    if (c->state != CONN_TUNNEL)
        return -1;
    if (!go && !ended)
        return 0;
    /* Allowed, not TLS, or cut short by the client's end: the bytes go up as they came. */
    c->hello_pending = false;
    return 1;
}

bool tun_step(struct conn *c)
{
    int up = c->hello_pending ? hello_step(c)
             : c->retry_watch ? retry_up_step(c)
                              : tunnel_direction(c, c->cfd, &c->c_readable, c->ofd, &c->o_writable,
                                                 &c->up, &c->upipe, &c->upf, true);
    if (up < 0) /* a refused ClientHello's alert goes out next; a restarted one goes on */
        return c->state != CONN_CLOSED;
    int down = c->retry_watch && !c->retry_asked
                   ? retry_down_step(c)
                   : tunnel_direction(c, c->ofd, &c->o_readable, c->cfd, &c->c_writable, &c->down,
                                      &c->dpipe, &c->downf, false);
    if (down < 0)
        return false;
    if (c->upf.done && c->downf.done) {
        conn_close(c, CLOSE_NONE);
        return false;
    }
    if (up || down)
        conn_set_deadline(c, c->w->tun.tunnel_idle_ms);
    return up || down;
}
