/* tls session: a GnuTLS server session driven by an edge-triggered event loop. GnuTLS reads
 * and writes the socket itself (gnutls_transport_set_int); when it would block it says which
 * way (gnutls_record_get_direction), and only that readiness flag is cleared. A nested session
 * (tls_session_nest) reads and writes through the session it replaced instead, which keeps the
 * socket. */
#include <errno.h>
#include <poll.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "base/status.h"
#include "tls/tls.h"

static const char *const state_names[TLS_STATE_COUNT] = {
    [TLS_NONE] = "none", [TLS_HANDSHAKE] = "handshake", [TLS_OPEN] = "open",
    [TLS_SHUT] = "shut", [TLS_FAILED] = "failed",
};

const char *tls_state_str(enum tls_state s)
{
    return (unsigned)s < TLS_STATE_COUNT ? state_names[s] : "?";
}

int tls_session_start(struct tls_session *t, const struct tls_cred *cred, int fd)
{
    return tls_session_start_x509(t, cred->x509, cred->priority, &cred->ticket_key, fd);
}

int tls_session_start_x509(struct tls_session *t, gnutls_certificate_credentials_t x509,
                           gnutls_priority_t priority, const gnutls_datum_t *ticket_key, int fd)
{
    static const gnutls_datum_t alpn = {(unsigned char *)"http/1.1", 8};
    t->gs = NULL;
    t->state = TLS_NONE;
    t->error = gnutls_init(&t->gs, GNUTLS_SERVER | GNUTLS_NONBLOCK | GNUTLS_NO_SIGNAL);
    if (t->error < 0) {
        t->gs = NULL;
        return PX_ERR;
    }
    if ((t->error = gnutls_priority_set(t->gs, priority)) < 0 ||
        (t->error = gnutls_credentials_set(t->gs, GNUTLS_CRD_CERTIFICATE, x509)) < 0 ||
        (t->error = gnutls_session_ticket_enable_server(t->gs, ticket_key)) < 0 ||
        (t->error = gnutls_alpn_set_protocols(t->gs, &alpn, 1, 0)) < 0) {
        gnutls_deinit(t->gs);
        t->gs = NULL;
        return PX_ERR;
    }
    gnutls_certificate_server_set_request(t->gs, GNUTLS_CERT_IGNORE);
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

/* The session a nested one travels in (owned by it), or NULL: GnuTLS's user pointer of the
 * session, so that a session on a socket carries nothing more for it. */
static struct tls_session *outer_of(const struct tls_session *t)
{
    return t->gs ? gnutls_session_get_ptr(t->gs) : NULL;
}

/* Takes len bytes of the prefix first, if any. Returns the count taken. */
static size_t take_prefix(struct tls_session *t, void *p, size_t len)
{
    size_t n = len < t->pre_len ? len : t->pre_len;
    memcpy(p, t->pre, n);
    t->pre += n;
    t->pre_len -= n;
    return n;
}

/* A nested session's transport after its outer session's call returned r < 0: the outer's
 * "would block" is the nested one's; any other error fails the outer session (recorded there)
 * and reads as a reset to the nested one. Returns -1 with errno set, as GnuTLS asks of a
 * transport function. */
static ssize_t outer_failed(struct tls_session *t, struct tls_session *o, ssize_t r)
{
    int e = EAGAIN;
    if (r != GNUTLS_E_AGAIN && r != GNUTLS_E_INTERRUPTED) {
        o->error = (int)r;
        o->state = TLS_FAILED;
        e = ECONNRESET;
    }
    gnutls_transport_set_errno(t->gs, e);
    errno = e;
    return -1;
}

/* A nested session's pull: the prefix, then the plaintext of the outer session, whose
 * "would block" is the nested one's (the socket is empty, or full). */
static ssize_t nested_pull(gnutls_transport_ptr_t ptr, void *p, size_t len)
{
    struct tls_session *t = ptr, *o = outer_of(t);
    if (t->pre_len > 0)
        return (ssize_t)take_prefix(t, p, len);
    ssize_t n = 0;
    for (int i = 0; i < 8; i++) { /* records that carry nothing: warning alerts, tickets */
        n = gnutls_record_recv(o->gs, p, len);
        if (n >= 0)
            return n;
        if (n == GNUTLS_E_PREMATURE_TERMINATION)
            return 0;
        if (n == GNUTLS_E_AGAIN || n == GNUTLS_E_INTERRUPTED || gnutls_error_is_fatal((int)n))
            break;
    }
    return outer_failed(t, o, n);
}

/* A nested session's push: into the outer session (at most one record of it per call; GnuTLS
 * sends the rest after a short count, the same bytes again after "would block", as the outer
 * session wants them). */
static ssize_t nested_push(gnutls_transport_ptr_t ptr, const void *p, size_t len)
{
    struct tls_session *t = ptr, *o = outer_of(t);
    ssize_t n = gnutls_record_send(o->gs, p, len);
    if (n >= 0)
        return n;
    return outer_failed(t, o, n);
}

/* The pull side while a prefix is set: its bytes, then the socket's. */
static ssize_t prefix_pull(gnutls_transport_ptr_t ptr, void *p, size_t len)
{
    struct tls_session *t = ptr;
    if (t->pre_len > 0)
        return (ssize_t)take_prefix(t, p, len);
    ssize_t n = recv(t->fd, p, len, 0);
    if (n < 0)
        gnutls_transport_set_errno(t->gs, errno);
    return n;
}

static int prefix_pull_timeout(gnutls_transport_ptr_t ptr, unsigned ms)
{
    struct tls_session *t = ptr;
    const struct tls_session *o = outer_of(t);
    if (t->pre_len > 0 || (o && gnutls_record_check_pending(o->gs) > 0))
        return 1;
    struct pollfd pfd = {.fd = t->fd, .events = POLLIN};
    return poll(&pfd, 1, ms == GNUTLS_INDEFINITE_TIMEOUT ? -1 : (int)ms);
}

int tls_session_nest(struct tls_session *t, gnutls_certificate_credentials_t x509,
                     gnutls_priority_t priority, const gnutls_datum_t *ticket_key)
{
    if (t->state != TLS_OPEN || outer_of(t))
        return PX_ERR;
    struct tls_session *o = malloc(sizeof(*o));
    if (!o)
        return PX_ERR;
    *o = *t;
    if (tls_session_start_x509(t, x509, priority, ticket_key, o->fd) != PX_OK) {
        *t = *o;
        free(o);
        return PX_ERR;
    }
    gnutls_session_set_ptr(t->gs, o);
    gnutls_transport_set_ptr(t->gs, t);
    gnutls_transport_set_pull_function(t->gs, nested_pull);
    gnutls_transport_set_pull_timeout_function(t->gs, prefix_pull_timeout);
    gnutls_transport_set_push_function(t->gs, nested_push);
    return PX_OK;
}

void tls_session_prefix(struct tls_session *t, const void *p, size_t len)
{
    if (len == 0)
        return;
    t->pre = p;
    t->pre_len = len;
    if (outer_of(t))
        return; /* nested_pull takes the prefix first already */
    /* Sending stays GnuTLS's own on the descriptor; only reading goes through us. */
    gnutls_transport_set_ptr2(t->gs, t, (gnutls_transport_ptr_t)(intptr_t)t->fd);
    gnutls_transport_set_pull_function(t->gs, prefix_pull);
    gnutls_transport_set_pull_timeout_function(t->gs, prefix_pull_timeout);
}

size_t tls_session_prefix_left(const struct tls_session *t)
{
    return t->pre_len;
}

/* A call that returned r < 0: PX_AGAIN with the awaited flag cleared, or PX_ERR. */
static int would_block(struct tls_session *t, int r, bool *readable, bool *writable)
{
    if (r == GNUTLS_E_AGAIN) {
        if (gnutls_record_get_direction(t->gs) == 0)
            *readable = false;
        else
            *writable = false;
        return PX_AGAIN;
    }
    if (r == GNUTLS_E_INTERRUPTED)
        return PX_AGAIN;
    t->error = r;
    t->state = TLS_FAILED;
    return PX_ERR;
}

/* The loops below take at most MAX_EMPTY_RECORDS records that carry nothing for the caller
 * (warning alerts, key updates) per call. A peer that sends more in a row fails: answering
 * PX_AGAIN with its bytes still unread would leave the connection waiting for a readiness edge
 * that never comes, until its timeout. */
enum { MAX_EMPTY_RECORDS = 8 };

static int too_many_empty_records(struct tls_session *t)
{
    t->error = GNUTLS_E_UNEXPECTED_PACKET;
    t->state = TLS_FAILED;
    return PX_ERR;
}

/* A nested session's full record (16 KiB of plaintext and its header, tag and type) is larger
 * than the outer session's largest plaintext: each went out as two outer records, the second
 * of a few dozen bytes, each a send of its own (8,228 sends for 64 MiB instead of 4,100).
 * Records a little smaller fit one outer record each. Sending only: what the client may send
 * is what was negotiated. Once the handshake is done (GnuTLS refuses it during one, and only
 * then is the overhead of the chosen cipher known). */
static void fit_outer_record(struct tls_session *t)
{
    enum { MAX_PLAINTEXT = 16384 };
    if (!outer_of(t))
        return;
    size_t overhead = gnutls_record_overhead_size(t->gs);
    /* Best effort: a session that keeps 16 KiB records still works, with more records. */
    if (overhead < MAX_PLAINTEXT / 2)
        (void)gnutls_record_set_max_size(t->gs, MAX_PLAINTEXT - overhead);
}

int tls_session_handshake(struct tls_session *t, bool *readable, bool *writable)
{
    if (t->state != TLS_HANDSHAKE)
        return t->state == TLS_OPEN ? PX_OK : PX_ERR;
    for (int i = 0; i < MAX_EMPTY_RECORDS; i++) {
        int r = gnutls_handshake(t->gs);
        if (r == GNUTLS_E_SUCCESS) {
            t->state = TLS_OPEN;
            fit_outer_record(t);
            return PX_OK;
        }
        /* A warning alert (say, no SNI match) does not end the handshake. */
        if (r == GNUTLS_E_WARNING_ALERT_RECEIVED || r == GNUTLS_E_GOT_APPLICATION_DATA)
            continue;
        if (r != GNUTLS_E_AGAIN && r != GNUTLS_E_INTERRUPTED && gnutls_error_is_fatal(r)) {
            /* Tell the peer why when the error has an alert (a plaintext request gets one
             * too, which it cannot read, but a TLS client can); best effort. */
            gnutls_alert_send_appropriate(t->gs, r);
        }
        return would_block(t, r, readable, writable);
    }
    return too_many_empty_records(t);
}

/* Whether a read may find more now. GnuTLS answers GNUTLS_E_AGAIN also right after a TLS 1.3
 * post-handshake message it handled (a session ticket, a key update), when the records that
 * came with it are still in the socket: their readiness edge is spent, so clearing the flag
 * then would wait for an edge that never comes. */
static bool more_to_read(const struct tls_session *t)
{
    char byte;
    const struct tls_session *o = outer_of(t);
    if (gnutls_record_check_pending(t->gs) > 0 || t->pre_len > 0 ||
        (o && gnutls_record_check_pending(o->gs) > 0))
        return true;
    return recv(t->fd, &byte, 1, MSG_PEEK | MSG_DONTWAIT) >= 0; /* bytes, or the end */
}

enum { RECV_RETRY = 1 };

/* What a record read that returned r < 0 means, for tls_session_recv and _recv_held alike:
 * RECV_RETRY for a record that carried nothing for the caller (a warning alert, a TLS 1.3 key
 * update or ticket handled inside) or "would block" with more already there (more_to_read);
 * 0 for the peer's end without close_notify; else PX_AGAIN with the awaited flag cleared, or
 * PX_ERR. */
static int recv_failed(struct tls_session *t, int r, bool *readable, bool *writable)
{
    if (r == GNUTLS_E_PREMATURE_TERMINATION)
        return 0;
    if (r != GNUTLS_E_AGAIN && r != GNUTLS_E_INTERRUPTED && !gnutls_error_is_fatal(r))
        return RECV_RETRY;
    if (r == GNUTLS_E_AGAIN && more_to_read(t))
        return RECV_RETRY;
    return would_block(t, r, readable, writable);
}

ssize_t tls_session_recv(struct tls_session *t, void *p, size_t len, bool *readable, bool *writable)
{
    if (t->state != TLS_OPEN && t->state != TLS_SHUT)
        return PX_ERR;
    for (int i = 0; i < MAX_EMPTY_RECORDS; i++) {
        ssize_t n = gnutls_record_recv(t->gs, p, len);
        if (n >= 0)
            return n;
        int r = recv_failed(t, (int)n, readable, writable);
        if (r != RECV_RETRY)
            return r;
    }
    return too_many_empty_records(t);
}

ssize_t tls_session_recv_held(struct tls_session *t, const unsigned char **p, bool *readable,
                              bool *writable)
{
    gnutls_datum_t d;
    if (t->state != TLS_OPEN && t->state != TLS_SHUT)
        return PX_ERR;
    if (t->held) {
        gnutls_packet_get(t->held, &d, NULL);
        *p = d.data + t->held_off;
        return (ssize_t)(d.size - t->held_off);
    }
    if (!*readable)
        return PX_AGAIN;
    for (int i = 0; i < MAX_EMPTY_RECORDS; i++) {
        gnutls_packet_t packet = NULL;
        ssize_t n = gnutls_record_recv_packet(t->gs, &packet);
        if (n > 0 && packet) {
            gnutls_packet_get(packet, &d, NULL);
            t->held = packet;
            t->held_off = 0;
            *p = d.data;
            return (ssize_t)d.size;
        }
        if (packet)
            gnutls_packet_deinit(packet);
        /* GnuTLS says 0 both at the end and after a record that carried no data (a TLS 1.3
         * ticket): tls_session_recv tells them apart. */
        if (n >= 0)
            return 0;
        int r = recv_failed(t, (int)n, readable, writable);
        if (r != RECV_RETRY)
            return r;
    }
    return too_many_empty_records(t);
}

void tls_session_release_held(struct tls_session *t, size_t n)
{
    gnutls_datum_t d;
    if (!t->held)
        return;
    gnutls_packet_get(t->held, &d, NULL);
    t->held_off += n;
    if (t->held_off >= d.size) {
        gnutls_packet_deinit(t->held);
        t->held = NULL;
        t->held_off = 0;
    }
}

ssize_t tls_session_send(struct tls_session *t, const void *p, size_t len, bool *readable,
                         bool *writable)
{
    if (t->state != TLS_OPEN)
        return PX_ERR;
    ssize_t n = gnutls_record_send(t->gs, p, len);
    if (n > 0)
        return n;
    if (n == 0) /* len was 0 */
        return PX_AGAIN;
    return would_block(t, (int)n, readable, writable);
}

int tls_session_bye(struct tls_session *t)
{
    if (t->state != TLS_OPEN)
        return t->state == TLS_SHUT ? PX_OK : PX_ERR;
    t->state = TLS_SHUT;
    int r = gnutls_bye(t->gs, GNUTLS_SHUT_WR);
    /* Nested: the outer session ends its side too, after the inner's close_notify. */
    struct tls_session *o = outer_of(t);
    if (o)
        tls_session_bye(o);
    if (r < 0 && r != GNUTLS_E_AGAIN) {
        t->error = r;
        return PX_ERR;
    }
    return PX_OK;
}

void tls_session_end(struct tls_session *t)
{
    struct tls_session *o = outer_of(t);
    if (t->held)
        gnutls_packet_deinit(t->held);
    t->held = NULL;
    t->held_off = 0;
    if (t->gs)
        gnutls_deinit(t->gs);
    if (o) {
        tls_session_end(o);
        free(o);
    }
    t->gs = NULL;
    t->state = TLS_NONE;
}

const char *tls_session_error(const struct tls_session *t)
{
    return t->error ? gnutls_strerror(t->error) : "";
}
