/* relay: CONN_RELAY. The request side is one flow (c->upf); the response side moves through
 * the phases of enum relay_phase, one function each:
 *
 *   RELAY_HEAD    read until the response head parses; pass interim (1xx) heads on; a 101
 *                 to a WebSocket request becomes a tunnel
 *   RELAY_BODY    frame and send the body through the buffer; a long one, once the buffer
 *                 is empty, goes on as RELAY_SPLICE
 *   RELAY_SPLICE  origin -> pipe -> client until the body is framed and the pipe empty
 *   RELAY_PASS    between two TLS sessions (an inspected tunnel), a long body's records go
 *                 from the origin's session to the client's without the buffer; a record
 *                 with more than the body, and the origin's end, go back to RELAY_BODY
 *
 * A response is never "done" at rest: the pass that sends its last byte completes the
 * request (relay_complete). Bytes are never interpreted twice: a direction's "ready" count is
 * the framed prefix of its buffer that may be sent as it is. Worker thread only. */
#include "proxy/relay.h"

#include <string.h>

#include "base/status.h"
#include "proxy/conn.h"
#include "proxy/log.h"
#include "proxy/origin.h"
#include "proxy/reply.h"
#include "proxy/request.h"
#include "proxy/worker.h"
#include "tls/tls.h"

/* Bodies at least this long go through a pipe with splice(2). */
#define SPLICE_MIN (64 * 1024)

void relay_flow_start(struct conn_flow *f, enum h1_body body, uint64_t length)
{
    memset(f, 0, sizeof(*f));
    f->body = body;
    f->remaining = length;
    f->done = body == H1_BODY_NONE || (body == H1_BODY_LENGTH && length == 0);
}

/* Frames the unframed bytes of b, those behind the f->ready bytes already framed (a head,
 * or body framed before): how many more may be sent as they are. Framing behind a head lets
 * the head and the body bytes that came with it go out in one send. Returns false on a
 * malformed chunked body. */
static bool flow_frame(struct conn_flow *f, struct buf *b, struct h1_error *err)
{
    if (f->done || f->ready >= b->len)
        return true;
    const size_t unframed = b->len - f->ready;
    switch (f->body) {
    case H1_BODY_LENGTH: {
        size_t n = unframed < f->remaining ? unframed : (size_t)f->remaining;
        f->remaining -= n;
        f->ready += n;
        f->done = f->remaining == 0;
        return true;
    }
    case H1_BODY_CHUNKED: {
        size_t used = 0;
        int r = h1_chunked_feed(&f->chunked, buf_head(b) + f->ready, unframed, &used, err);
        if (r == PX_ERR)
            return false;
        f->ready += used;
        f->done = r == PX_OK;
        return true;
    }
    case H1_BODY_CLOSE:
        f->ready = b->len;
        return true;
    case H1_BODY_NONE:
    case H1_BODY_COUNT:
        f->done = true;
        return true;
    }
    return true;
}

void relay_fail(struct conn *c, enum conn_close why, int status, const char *detail)
{
    request_record_outcome(c, why, NULL);
    if (!c->head_sent && c->phase == RELAY_HEAD) {
        reply_page(c, status, detail, false);
        return;
    }
    conn_close(c, why);
}

/* Puts the request in flight back at the front of c->up as it was before any byte of it was
 * sent, framing included. Returns false when that is no longer possible: bytes already sent
 * were overwritten by more of its body. */
static bool relay_rewind(struct conn *c)
{
    /* Sending consumes from the front: off has moved by exactly what was sent, or the buffer
     * emptied and off went back to 0 with the bytes still in place. */
    if (!c->up_intact || (c->up.off != c->up_sent && (c->up.len != 0 || c->up.off != 0)))
        return false;
    c->up.len += c->up_sent;
    c->up.off = 0;
    c->req->rec.bytes_up -= c->up_sent < c->req->rec.bytes_up ? c->up_sent : c->req->rec.bytes_up;
    c->up_sent = 0;
    c->upf = c->upf_start;
    c->head_len = c->upf_start.ready;
    return true;
}

/* The origin connection failed (end of stream, reset, failed send) before any byte of an
 * answer. On a kept connection this is most likely the race of RFC 9112 9.3.1: the origin
 * closed it as idle while the request was on its way, and never saw the request. An
 * idempotent request is then sent again, once, on a connection of its own; any other is
 * answered as the origin answered, by closing, so that the client repeats it if it may (a
 * proxy MUST NOT). Everything else is a failure of the web site: 502. */
static void origin_lost(struct conn *c, enum conn_close why, const char *detail)
{
    bool unanswered = !c->head_sent && c->phase == RELAY_HEAD && c->down.len == 0;
    if (unanswered && c->origin_reused) {
        if (!c->retrying && c->idempotent && relay_rewind(c)) {
            log_debug("%s %s:%u: kept origin connection closed by the origin; sending again",
                      c->req->rec.method, c->req->rec.host, c->req->rec.port);
            origin_close(c);
            memset(&c->downf, 0, sizeof(c->downf));
            c->down.off = c->down.len = 0;
            c->origin_keep_alive = false;
            c->retrying = true;
            c->addr_next = 0;
            origin_connect(c);
            return;
        }
        if (c->requests > 1) {
            conn_close(c, why);
            return;
        }
    }
    relay_fail(c, why, 502, detail);
}

/* The request in flight is over: log it, then either wait for the next one or close. */
static void relay_complete(struct conn *c)
{
    bool request_fully_sent = c->upf.done && c->upf.ready == 0;
    request_record_finish(c);
    origin_finish(c, c->origin_keep_alive && request_fully_sent && c->down.len == 0);
    if (!c->client_keep_alive || !request_fully_sent) {
        conn_close(c, CLOSE_NONE);
        return;
    }
    conn_next_request(c);
}

/* ---- the request side ---- */

/* Frames the request bytes buffered so far. Returns false after failing the request (a
 * malformed chunked body). */
static bool frame_up(struct conn *c)
{
    struct h1_error err = {0};
    if (flow_frame(&c->upf, &c->up, &err))
        return true;
    request_record_outcome(c, CLOSE_BAD_REQUEST, err.reason);
    relay_fail(c, CLOSE_BAD_REQUEST, 400, err.reason);
    return false;
}

/* Sends what is framed of the request and reads more of its body. Returns PX_OK, or PX_ERR
 * when the request ended (failed, sent again, or closed). */
static int relay_up(struct conn *c, bool *progress)
{
    if (!frame_up(c))
        return PX_ERR;
    if (c->upf.ready > 0) {
        ssize_t n = conn_origin_send(c, &c->up, &c->upf.ready);
        if (n == PX_ERR) {
            origin_lost(c, CLOSE_ORIGIN_ERROR, "The connection to the web site failed.");
            return PX_ERR;
        }
        if (n > 0) {
            c->up_sent += (size_t)n;
            c->head_len -= (size_t)n < c->head_len ? (size_t)n : c->head_len;
            c->req->rec.bytes_up += (uint64_t)n;
            STAT_ADD(c, bytes_up, (uint64_t)n);
            *progress = true;
        }
    }
    /* A body that came whole with the head is framed before any read, so nothing is read
     * into the buffer and the request stays where a retry finds it (relay_rewind). */
    if (!c->upf.done && c->upf.ready == 0 && !frame_up(c))
        return PX_ERR;
    if (!c->upf.done && c->up.len < BUF_SIZE) {
        if (c->up_sent > 0)
            c->up_intact = false; /* more body may land where the bytes already sent were */
        ssize_t n = conn_client_recv(c, &c->up, 0);
        if (n == 0 || n == PX_ERR) {
            conn_close(c, n == 0 ? CLOSE_CLIENT_EOF : CLOSE_CLIENT_ERROR);
            return PX_ERR;
        }
        *progress |= n > 0;
    }
    return PX_OK;
}

/* ---- the response side ---- */

/* Reads more of the response into c->down, keeping reserve bytes free. Returns 1 when bytes
 * or the end of stream came, 0 when nothing did, PX_ERR after failing the request. */
static int down_read(struct conn *c, size_t reserve)
{
    if (c->downf.done || c->downf.eof || c->down.len >= BUF_SIZE)
        return 0;
    ssize_t n = conn_origin_recv(c, &c->down, reserve);
    if (n == PX_ERR) {
        origin_lost(c, CLOSE_ORIGIN_ERROR, "The connection to the web site failed.");
        return PX_ERR;
    }
    if (n == 0)
        c->downf.eof = true;
    return n >= 0;
}

/* Sends what is framed of the response. Returns PX_OK, or PX_ERR after closing c. */
static int down_send(struct conn *c, bool *progress)
{
    if (c->downf.ready == 0)
        return PX_OK;
    ssize_t n = conn_client_send(c, &c->down, &c->downf.ready);
    if (n == PX_ERR) {
        conn_close(c, CLOSE_CLIENT_ERROR);
        return PX_ERR;
    }
    if (n > 0) {
        c->head_sent = true;
        c->req->rec.bytes_down += (uint64_t)n;
        STAT_ADD(c, bytes_down, (uint64_t)n);
        *progress = true;
    }
    return PX_OK;
}

/* Frames the response bytes buffered so far. Returns false after closing c (a malformed
 * chunked body: the head is out, so there is no page to send). */
static bool frame_down(struct conn *c)
{
    struct h1_error err = {0};
    if (flow_frame(&c->downf, &c->down, &err))
        return true;
    request_record_outcome(c, CLOSE_BAD_RESPONSE, err.reason);
    conn_close(c, CLOSE_BAD_RESPONSE);
    return false;
}

/* The final head parsed: what the client is told, and how the body is framed. */
static void response_begin(struct conn *c, const struct h1_response *resp, bool keep,
                           size_t head_len)
{
    c->client_keep_alive = keep;
    c->origin_keep_alive = resp->keep_alive && resp->body != H1_BODY_CLOSE;
    c->phase = RELAY_BODY;
    relay_flow_start(&c->downf, resp->body, resp->content_length);
    c->downf.ready = head_len;
}

/* Parses the response head at the front of c->down and puts the rewritten head there.
 * Returns false when more bytes are needed, true when the head was handled (interim head
 * ready to go, final head begun, tunnel, or request failed). */
static bool response_head(struct conn *c)
{
    struct worker *w = c->w;
    struct h1_response resp = {.headers = w->headers};
    struct h1_error err = {0};
    struct h1_limits lim = w->tun.limits;
    lim.max_head_bytes = BUF_SIZE - HEAD_RESERVE;
    lim.max_request_line = BUF_SIZE - HEAD_RESERVE;
    int n = h1_parse_response(buf_head(&c->down), c->down.len, &lim, c->request_head, &resp, &err);
    if (n == PX_AGAIN) {
        if (c->down.len < BUF_SIZE - HEAD_RESERVE)
            return false;
        relay_fail(c, CLOSE_BAD_RESPONSE, 502, "The web site sent a response head too large.");
        return true;
    }
    if (n == PX_ERR) {
        request_record_outcome(c, CLOSE_BAD_RESPONSE, err.reason);
        relay_fail(c, CLOSE_BAD_RESPONSE, 502, "The web site sent a malformed response.");
        return true;
    }
    bool interim = resp.status >= 100 && resp.status < 200;
    bool upgrade = resp.status == 101 && c->websocket && resp.upgrade_websocket;
    if (resp.status == 101 && !upgrade) {
        relay_fail(c, CLOSE_BAD_RESPONSE, 502, "The web site switched protocols unasked.");
        return true;
    }
    bool keep = c->client_keep_alive && resp.body != H1_BODY_CLOSE &&
                !atomic_load_explicit(&w->draining, memory_order_relaxed);
    long len =
        h1_response_rewrite(&resp, w->tun.via, keep || interim, w->scratch, sizeof(w->scratch));
    size_t rest = c->down.len - (size_t)n;
    if (len < 0 || (size_t)len + rest > BUF_SIZE) {
        relay_fail(c, CLOSE_BAD_RESPONSE, 502, "The web site sent a response head too large.");
        return true;
    }
    memmove(c->down.data + len, c->down.data + c->down.off + n, rest);
    memcpy(c->down.data, w->scratch, (size_t)len);
    c->down.off = 0;
    c->down.len = (size_t)len + rest;
    if (interim && !upgrade) {
        /* 100 Continue and friends go to the client as they are; the final head follows. */
        c->downf.ready = (size_t)len;
        return true;
    }
    c->req->rec.status = (uint16_t)resp.status;
    if (upgrade)
        tun_start(c, false);
    else
        response_begin(c, &resp, keep, (size_t)len);
    return true;
}

/* RELAY_HEAD: read until the head parses; interim heads go out as they come. */
static bool down_head(struct conn *c, bool progress)
{
    int r = down_read(c, HEAD_RESERVE); /* room for what the rewrite adds */
    if (r == PX_ERR)
        return true;
    progress |= r > 0;
    if (r > 0 && c->downf.eof && c->down.len == 0) {
        origin_lost(c, CLOSE_ORIGIN_EOF, "The web site closed the connection without answering.");
        return true;
    }
    if (c->downf.ready == 0 && c->down.len > 0) {
        if (response_head(c))
            return true;
        if (c->downf.eof) {
            relay_fail(c, CLOSE_ORIGIN_EOF, 502, "The web site's response was cut short.");
            return true;
        }
    }
    if (down_send(c, &progress) == PX_ERR)
        return false;
    if (progress)
        conn_set_deadline(c, c->w->tun.origin_timeout_ms);
    return progress;
}

/* At the origin's end of stream, with nothing framed left to send: bytes that came with it
 * are framed and sent before the end is judged (the head may have gone out in this same
 * pass, with them still unframed behind it). A close-delimited body ends here; any other
 * was cut short. Returns PX_OK to go on, PX_AGAIN when framed bytes wait to be sent,
 * PX_ERR after closing c. */
static int body_at_eof(struct conn *c)
{
    if (!c->downf.eof || c->downf.done || c->downf.ready > 0)
        return PX_OK;
    if (c->down.len > 0) {
        if (!frame_down(c))
            return PX_ERR;
        if (c->downf.ready > 0)
            return PX_AGAIN;
    }
    if (c->downf.body == H1_BODY_CLOSE && c->down.len == 0) {
        c->downf.done = true;
    } else if (c->down.len == 0 || c->downf.body != H1_BODY_CLOSE) {
        conn_close(c, CLOSE_ORIGIN_EOF);
        return PX_ERR;
    }
    return PX_OK;
}

/* RELAY_BODY: frame and send through the buffer. */
static bool down_body(struct conn *c, bool progress)
{
    int r = down_read(c, 0);
    if (r == PX_ERR)
        return true;
    progress |= r > 0;
    if (!frame_down(c))
        return false;
    if (down_send(c, &progress) == PX_ERR)
        return false;
    r = body_at_eof(c);
    if (r != PX_OK)
        return r == PX_AGAIN;
    if (c->downf.done && c->downf.ready == 0) {
        relay_complete(c);
        return true;
    }
    /* A long body, once the head and what came with it are out, bypasses user space; without
     * descriptors for a pipe, or to a TLS client, it goes on through the buffer. */
    if (!conn_client_tls(c) && !conn_origin_tls(c) && !c->downf.done && c->downf.ready == 0 &&
        c->down.len == 0 &&
        (c->downf.body == H1_BODY_CLOSE ||
         (c->downf.body == H1_BODY_LENGTH && c->downf.remaining >= SPLICE_MIN)) &&
        (c->dpipe.open || tun_pipe_open(&c->w->pipes, &c->dpipe) == 0)) {
        c->phase = RELAY_SPLICE;
        return true;
    }
    /* Between two TLS sessions the same body skips the buffer instead: each record is
     * encrypted again from where the origin's session decrypted it (one copy of every byte
     * fewer than through c->down). The buffer need not be empty, only all framed: the head
     * and what came with it make the sends straddle the records, so it seldom empties. */
    if (conn_client_tls(c) && conn_origin_tls(c) && !c->downf.done && !c->downf.eof &&
        c->downf.ready == c->down.len &&
        (c->downf.body == H1_BODY_CLOSE ||
         (c->downf.body == H1_BODY_LENGTH && c->downf.remaining >= SPLICE_MIN))) {
        c->phase = RELAY_PASS;
        return true;
    }
    if (progress)
        conn_set_deadline(c, c->w->tun.origin_timeout_ms);
    return progress;
}

/* RELAY_PASS: what RELAY_BODY left in c->down (framed) goes first; then one record of the
 * origin's session at a time is sent on by the client's, from GnuTLS's buffer
 * (tls_session_recv_held). A record that holds more than is left of the body goes back to
 * RELAY_BODY, which frames it as it does every body (c->down is empty by then, and one
 * record, at most 16 KiB of plaintext, always fits it); so does a read that lent nothing (the
 * origin's end, or a record without data), for RELAY_BODY's read to tell which. */
static bool down_pass(struct conn *c, bool progress)
{
    if (c->down.len > 0) {
        if (down_send(c, &progress) == PX_ERR)
            return false;
        if (c->down.len > 0) {
            if (progress)
                conn_set_deadline(c, c->w->tun.origin_timeout_ms);
            return progress;
        }
    }
    const unsigned char *p;
    ssize_t n = tls_session_recv_held(&c->otls, &p, &c->o_readable, &c->o_writable);
    if (n == PX_ERR) {
        origin_lost(c, CLOSE_ORIGIN_ERROR, "The connection to the web site failed.");
        return true;
    }
    if (n == 0 || (n > 0 && c->downf.body == H1_BODY_LENGTH && (uint64_t)n > c->downf.remaining)) {
        if (n > 0) {
            if (buf_room(&c->down) < (size_t)n) { /* cannot happen: the buffer is empty */
                conn_close(c, CLOSE_OVERLOAD);
                return false;
            }
            memcpy(buf_tail(&c->down), p, (size_t)n);
            c->down.len += (size_t)n;
            tls_session_release_held(&c->otls, (size_t)n);
        }
        c->phase = RELAY_BODY;
        return true;
    }
    if (n > 0) {
        ssize_t sent = tls_session_send(&c->tls, p, (size_t)n, &c->c_readable, &c->c_writable);
        if (sent == PX_ERR) {
            conn_close(c, CLOSE_CLIENT_ERROR);
            return false;
        }
        if (sent > 0) { /* after PX_AGAIN the record stays lent: the same bytes go again */
            tls_session_release_held(&c->otls, (size_t)sent);
            if (c->downf.body == H1_BODY_LENGTH) {
                c->downf.remaining -= (uint64_t)sent;
                c->downf.done = c->downf.remaining == 0;
            }
            c->req->rec.bytes_down += (uint64_t)sent;
            STAT_ADD(c, bytes_down, (uint64_t)sent);
            progress = true;
        }
    }
    if (c->downf.done) {
        relay_complete(c);
        return true;
    }
    if (progress)
        conn_set_deadline(c, c->w->tun.origin_timeout_ms);
    return progress;
}

/* RELAY_SPLICE: origin -> pipe -> client. */
static bool down_splice(struct conn *c, bool progress)
{
    uint64_t limit = c->downf.body == H1_BODY_LENGTH ? c->downf.remaining : UINT64_MAX;
    uint64_t before = limit;
    bool was_eof = c->downf.eof, to_failed;
    ssize_t n = tun_splice(&c->dpipe, c->ofd, &c->o_readable, c->cfd, &c->c_writable, &limit,
                           &c->downf.eof, &to_failed);
    if (n == PX_ERR) {
        conn_close(c, to_failed ? CLOSE_CLIENT_ERROR : CLOSE_ORIGIN_ERROR);
        return false;
    }
    if (conn_want_reads(c, false, !c->dpipe.full) < 0) {
        conn_close(c, CLOSE_OVERLOAD);
        return false;
    }
    if (c->downf.body == H1_BODY_LENGTH) {
        c->downf.remaining = limit;
        c->downf.done = limit == 0;
    }
    c->req->rec.bytes_down += (uint64_t)n;
    STAT_ADD(c, bytes_down, (uint64_t)n);
    progress |= n > 0 || limit != before || c->downf.eof != was_eof;
    if (c->downf.eof && !c->downf.done) {
        if (c->downf.body != H1_BODY_CLOSE) {
            conn_close(c, CLOSE_ORIGIN_EOF);
            return false;
        }
        c->downf.done = true;
    }
    if (c->downf.done && c->dpipe.bytes == 0) {
        relay_complete(c);
        return true;
    }
    if (progress)
        conn_set_deadline(c, c->w->tun.origin_timeout_ms);
    return progress;
}

bool relay_step(struct conn *c)
{
    bool progress = false;
    if (relay_up(c, &progress) == PX_ERR)
        return true;
    switch (c->phase) {
    case RELAY_HEAD:
        return down_head(c, progress);
    case RELAY_BODY:
        return down_body(c, progress);
    case RELAY_SPLICE:
        return down_splice(c, progress);
    case RELAY_PASS:
        return down_pass(c, progress);
    case RELAY_PHASE_COUNT:
        break;
    }
    return progress;
}
