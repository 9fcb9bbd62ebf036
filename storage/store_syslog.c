/* store_syslog: the syslog sink of --syslog TARGET: the access-log writer's, where each record
 * becomes one RFC 5424 message (MSGID "access") whose structured data holds the record's
 * fields, and proxyd's own events' (MSGID "daemon", store_syslog_event), sent to a local
 * datagram socket (/dev/log), a UDP collector, or a TCP collector with RFC 6587 octet-counting
 * framing ("LEN SP MSG").
 *
 * It runs on the writer thread only, never on a worker, and never waits: sockets are
 * non-blocking, a datagram that cannot go at once is dropped, TCP frames wait in a bounded
 * buffer (whole frames only) and are dropped when it is full or the connection is lost. A
 * dead collector costs a reconnect attempt a second. Every message is counted sent or
 * dropped (the log counters, /metrics).
 */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "base/clock.h"
#include "storage/store_impl.h"

#define MSG_MAX 8192                /* longest message: every field at its longest, escaped */
#define TCP_PENDING_MAX (256 << 10) /* frames waiting for a slow TCP collector */
#define RECONNECT_MS 1000
/* RFC 5424 wants a registered enterprise number after '@'; 32473 is the one RFC 5612 keeps
 * for documentation and examples. */
#define SD_ID "access@32473"
#define FACILITY 3 /* daemon */

enum syslog_transport { SYSLOG_UNIX, SYSLOG_UDP, SYSLOG_TCP };

struct store_syslog {
    enum syslog_transport transport;
    struct sockaddr_storage addr;
    socklen_t addrlen;
    int fd;             /* -1: not connected */
    bool connecting;    /* TCP: connect in progress */
    int64_t retry_ms;   /* monotonic: next connect attempt */
    char hostname[256]; /* HOSTNAME field: the node name, printable ASCII, or "-" */
    char procid[16];
    char *pending; /* TCP: whole frames not yet written (owned) */
    size_t pending_len, pending_off;
    uint64_t pending_frames; /* frames in pending; lost with it if the connection is */
    uint64_t sent, dropped;
    char msg[MSG_MAX];
};

/* Parses TARGET: /path, udp://HOST:PORT or tcp://HOST:PORT (HOST a name, looked up now, or
 * an address, IPv6 in brackets). 0, or -1 with err. */
static int target_parse(struct store_syslog *s, const char *target, char *err, size_t errlen)
{
    char host[256], *colon;
    const char *rest;
    struct addrinfo hints = {0}, *ai = NULL;
    int rc;

    if (target[0] == '/') {
        struct sockaddr_un *un = (struct sockaddr_un *)&s->addr;
        if (strlen(target) >= sizeof(un->sun_path))
            return store_errf(err, errlen, "syslog %s: socket path too long", target);
        s->transport = SYSLOG_UNIX;
        un->sun_family = AF_UNIX;
        memcpy(un->sun_path, target, strlen(target) + 1);
        s->addrlen = sizeof(*un);
        return 0;
    }
    if (strncmp(target, "udp://", 6) == 0)
        s->transport = SYSLOG_UDP;
    else if (strncmp(target, "tcp://", 6) == 0)
        s->transport = SYSLOG_TCP;
    else
        return store_errf(err, errlen,
                          "syslog %s: expected /path/to/socket, udp://HOST:PORT or tcp://HOST:PORT",
                          target);
    rest = target + 6;
    if (strlen(rest) >= sizeof(host))
        return store_errf(err, errlen, "syslog %s: too long", target);
    snprintf(host, sizeof(host), "%s", rest);
    colon = strrchr(host, ':');
    if (!colon || !colon[1] || strspn(colon + 1, "0123456789") != strlen(colon + 1) ||
        atoi(colon + 1) < 1 || atoi(colon + 1) > 65535)
        return store_errf(err, errlen, "syslog %s: needs a port (HOST:PORT)", target);
    *colon = '\0';
    if (host[0] == '[') {
        size_t n = strlen(host);
        if (n < 3 || host[n - 1] != ']')
            return store_errf(err, errlen, "syslog %s: bad [IPv6] address", target);
        host[n - 1] = '\0';
        memmove(host, host + 1, n - 1);
    }
    hints.ai_socktype = s->transport == SYSLOG_UDP ? SOCK_DGRAM : SOCK_STREAM;
    rc = getaddrinfo(host, colon + 1, &hints, &ai);
    if (rc != 0 || !ai)
        return store_errf(err, errlen, "syslog %s: %s", target, gai_strerror(rc));
    memcpy(&s->addr, ai->ai_addr, ai->ai_addrlen);
    s->addrlen = ai->ai_addrlen;
    freeaddrinfo(ai);
    return 0;
}

static void sock_close(struct store_syslog *s)
{
    if (s->fd >= 0)
        close(s->fd);
    s->fd = -1;
    s->connecting = false;
}

/* A new non-blocking socket connected (or connecting) to the target; on failure the next
 * attempt waits RECONNECT_MS. */
static void sock_open(struct store_syslog *s)
{
    int type = s->transport == SYSLOG_TCP ? SOCK_STREAM : SOCK_DGRAM;
    int64_t now = clock_mono_ms();

    if (s->fd >= 0 || now < s->retry_ms)
        return;
    s->retry_ms = now + RECONNECT_MS;
    s->fd = socket(s->addr.ss_family, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (s->fd < 0)
        return;
    if (connect(s->fd, (struct sockaddr *)&s->addr, s->addrlen) == 0)
        return;
    if (errno == EINPROGRESS && s->transport == SYSLOG_TCP) {
        s->connecting = true;
        return;
    }
    sock_close(s);
}

struct store_syslog *store_syslog_new(const char *target, const char *node, char *err,
                                      size_t errlen)
{
    struct store_syslog *s = calloc(1, sizeof(*s));
    size_t n = 0;

    if (!s) {
        store_errf(err, errlen, "syslog: out of memory");
        return NULL;
    }
    s->fd = -1;
    if (target_parse(s, target, err, errlen) < 0) {
        free(s);
        return NULL;
    }
    /* HOSTNAME is 1-255 printable ASCII characters without spaces. */
    for (const char *p = node ? node : ""; *p && n < sizeof(s->hostname) - 1; p++)
        s->hostname[n++] = *p > 32 && *p < 127 ? *p : '_';
    if (n == 0)
        s->hostname[n++] = '-';
    s->hostname[n] = '\0';
    snprintf(s->procid, sizeof(s->procid), "%d", (int)getpid());
    sock_open(s);
    return s;
}

void store_syslog_free(struct store_syslog *s)
{
    if (!s)
        return;
    sock_close(s);
    free(s->pending);
    free(s);
}

void store_syslog_counts(const struct store_syslog *s, uint64_t *sent, uint64_t *dropped)
{
    *sent = s ? s->sent : 0;
    *dropped = s ? s->dropped : 0;
}

/* ---- formatting ---- */

struct out {
    char *p, *end;
};

static void put(struct out *o, const char *s)
{
    for (; *s && o->p < o->end; s++)
        *o->p++ = *s;
}

/* A PARAM-VALUE: '"', '\' and ']' escaped with '\' (RFC 5424 6.3.3). It must be UTF-8; the
 * fields are bytes a client chose, so a control or non-ASCII byte goes as the four
 * characters \xNN (a '\' before 'x' is not an escape: both characters stay). */
static void put_value(struct out *o, const char *s)
{
    static const char hex[] = "0123456789abcdef";

    for (; *s && o->end - o->p > 4; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\' || c == ']') {
            *o->p++ = '\\';
            *o->p++ = (char)c;
        } else if (c < 0x20 || c >= 0x7f) {
            *o->p++ = '\\';
            *o->p++ = 'x';
            *o->p++ = hex[c >> 4];
            *o->p++ = hex[c & 15];
        } else {
            *o->p++ = (char)c;
        }
    }
}

static void param(struct out *o, const char *name, const char *value)
{
    put(o, " ");
    put(o, name);
    put(o, "=\"");
    put_value(o, value);
    put(o, "\"");
}

static void param_num(struct out *o, const char *name, long long v)
{
    char num[24];

    snprintf(num, sizeof(num), "%lld", v);
    param(o, name, num);
}

/* The message for record a into s->msg; returns its length. */
static size_t format(struct store_syslog *s, const struct store_access *a, const char *node)
{
    struct out o = {s->msg, s->msg + sizeof(s->msg) - 2};
    time_t secs = (time_t)(a->time_ms / 1000);
    const char *decision = a->decision < STORE_DECISION_COUNT
                               ? store_decision_str((enum store_decision)a->decision)
                               : "?";
    /* Denials are notices, the rest information. */
    int pri = FACILITY * 8 + (a->decision == STORE_DENY ? 5 : 6);
    char head[512], when[64];
    struct tm tm;

    gmtime_r(&secs, &tm);
    snprintf(when, sizeof(when), "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
             tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(a->time_ms % 1000));
    snprintf(head, sizeof(head), "<%d>1 %s %s proxyd %s access [" SD_ID, pri, when, s->hostname,
             s->procid);
    put(&o, head);
    param(&o, "client", a->client);
    param(&o, "user", a->user);
    param(&o, "method", a->method);
    param(&o, "scheme", a->scheme);
    param(&o, "host", a->host);
    param_num(&o, "port", a->port);
    param(&o, "path", a->path);
    param_num(&o, "status", a->status);
    param_num(&o, "bytes_up", (long long)a->bytes_up);
    param_num(&o, "bytes_down", (long long)a->bytes_down);
    param_num(&o, "duration_ms", a->duration_ms);
    param(&o, "decision", decision);
    param_num(&o, "rule_id", a->rule_id);
    param(&o, "error", a->error);
    param_num(&o, "policy_version", a->policy_version);
    param(&o, "sni", a->sni);
    param(&o, "dest", a->dest);
    param(&o, "node", node);
    put(&o, "]");
    /* MSG, for collectors that show only that: words that need no escaping. */
    put(&o, " ");
    put(&o, decision);
    put(&o, " ");
    put(&o, a->method[0] ? a->method : "-");
    put(&o, " ");
    put(&o, a->host[0] ? a->host : "-");
    snprintf(head, sizeof(head), ":%u %u", (unsigned)a->port, (unsigned)a->status);
    put(&o, head);
    return (size_t)(o.p - s->msg);
}

/* ---- sending ---- */

/* TCP: writes what it can of pending without waiting; a lost connection loses its frames. */
static void tcp_write(struct store_syslog *s)
{
    while (s->fd >= 0 && !s->connecting && s->pending_off < s->pending_len) {
        ssize_t n = send(s->fd, s->pending + s->pending_off, s->pending_len - s->pending_off,
                         MSG_DONTWAIT | MSG_NOSIGNAL);
        if (n > 0) {
            s->pending_off += (size_t)n;
            continue;
        }
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
            return;
        sock_close(s);
        s->dropped += s->pending_frames;
        s->pending_len = s->pending_off = 0;
        s->pending_frames = 0;
        return;
    }
    if (s->pending_off == s->pending_len) {
        s->sent += s->pending_frames;
        s->pending_len = s->pending_off = 0;
        s->pending_frames = 0;
    }
}

/* Finishes a TCP connect in progress, if it has. */
static void tcp_connected(struct store_syslog *s)
{
    int soerr = 0;
    socklen_t len = sizeof(soerr);
    struct sockaddr_storage peer;
    socklen_t plen = sizeof(peer);

    if (!s->connecting)
        return;
    if (getpeername(s->fd, (struct sockaddr *)&peer, &plen) == 0) {
        s->connecting = false;
        return;
    }
    if (errno == ENOTCONN &&
        (getsockopt(s->fd, SOL_SOCKET, SO_ERROR, &soerr, &len) < 0 || soerr == 0))
        return; /* still on its way */
    sock_close(s);
}

/* An event of proxyd's own into s->msg: no structured data, the text as MSG (a control byte
 * as '?', so that a line stays one line). Returns its length. */
static size_t format_event(struct store_syslog *s, int severity, const char *msgid,
                           const char *text)
{
    struct out o = {s->msg, s->msg + sizeof(s->msg) - 2};
    int64_t now = clock_wall_ms();
    time_t secs = (time_t)(now / 1000);
    char head[512];
    struct tm tm;

    gmtime_r(&secs, &tm);
    snprintf(head, sizeof(head), "<%d>1 %04d-%02d-%02dT%02d:%02d:%02d.%03dZ %s proxyd %s %s - ",
             FACILITY * 8 + (severity & 7), tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
             tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(now % 1000), s->hostname, s->procid, msgid);
    put(&o, head);
    for (; *text && o.p < o.end; text++)
        *o.p++ = (unsigned char)*text < 0x20 || *text == 0x7f ? '?' : *text;
    return (size_t)(o.p - s->msg);
}

/* Sends s->msg[0 .. len): a datagram at once or never, a TCP frame queued. */
static void send_msg(struct store_syslog *s, size_t len)
{
    sock_open(s);
    if (s->transport != SYSLOG_TCP) {
        if (s->fd >= 0 && send(s->fd, s->msg, len, MSG_DONTWAIT | MSG_NOSIGNAL) == (ssize_t)len) {
            s->sent++;
            return;
        }
        s->dropped++;
        /* A datagram socket whose peer went away (syslogd restarted) must reconnect. */
        if (s->fd >= 0 && errno != EAGAIN && errno != EWOULDBLOCK)
            sock_close(s);
        return;
    }
    char frame_head[16];
    int hl = snprintf(frame_head, sizeof(frame_head), "%zu ", len);
    if (!s->pending && !(s->pending = malloc(TCP_PENDING_MAX))) {
        s->dropped++;
        return;
    }
    if (s->pending_off > 0 && s->pending_len + (size_t)hl + len > TCP_PENDING_MAX) {
        memmove(s->pending, s->pending + s->pending_off, s->pending_len - s->pending_off);
        s->pending_len -= s->pending_off;
        s->pending_off = 0;
    }
    if (s->pending_len + (size_t)hl + len > TCP_PENDING_MAX) {
        s->dropped++; /* the collector keeps up no longer: drop, never wait */
        return;
    }
    memcpy(s->pending + s->pending_len, frame_head, (size_t)hl);
    memcpy(s->pending + s->pending_len + (size_t)hl, s->msg, len);
    s->pending_len += (size_t)hl + len;
    s->pending_frames++;
}

void store_syslog_add(struct store_syslog *s, const struct store_access *a, const char *node)
{
    send_msg(s, format(s, a, node));
}

void store_syslog_event(struct store_syslog *s, int severity, const char *msgid, const char *text)
{
    send_msg(s, format_event(s, severity, msgid, text));
    store_syslog_flush(s);
}

void store_syslog_flush(struct store_syslog *s)
{
    if (!s || s->transport != SYSLOG_TCP)
        return;
    sock_open(s);
    tcp_connected(s);
    tcp_write(s);
}
