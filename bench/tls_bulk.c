/* tls_bulk: a lean HTTPS origin and a lean HTTPS client on GnuTLS, so that a bulk benchmark
 * through a proxy measures the proxy and not curl and nginx (inspect_bench.sh: on the pinned
 * layout curl and nginx together used 1.5 to 1.7 ms of their CPU per MB, more than the proxy
 * under test). Both speak only what a download needs and copy nothing they need not: the
 * origin sends a static buffer, the client takes each decrypted record where GnuTLS left it
 * (gnutls_record_recv_packet) and drops it.
 *
 *   tls_bulk serve ADDR:PORT CERT KEY [--priority P]
 *       an HTTPS origin (IPv4, a process per connection, keep-alive): GET /N answers N bytes
 *       (any other path 1024); runs until killed
 *   tls_bulk get ADDR:PORT BYTES --cafile F [--proxy ADDR:PORT] [--proxy-tls CAFILE]
 *                [--count K] [--priority P]
 *       K downloads (default 3) of BYTES each, a new connection each: through the proxy with
 *       CONNECT when given (inside TLS to the proxy with --proxy-tls), then TLS to ADDR:PORT
 *       with its certificate verified for ADDR against F. Prints one line: the median MB/s
 *       (10^6 bytes), this client's CPU ms per MB over all K, and the total MB
 *
 * P is a GnuTLS priority string; the default, the same on both ends, allows TLS 1.3 with
 * AES-128-GCM only (the first choice of the browsers), so that every row of a benchmark uses
 * one cipher whatever each proxy would prefer. Errors go to stderr with exit status 1. */
#include <arpa/inet.h>
#include <errno.h>
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdbool.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define DEFAULT_PRIORITY "NORMAL:-VERS-ALL:+VERS-TLS1.3:-CIPHER-ALL:+AES-128-GCM"
#define CHUNK 16384      /* one full record per send */
#define MAX_HEAD 8192    /* a request or response head */
#define MAX_DOWNLOADS 99 /* --count */

static void die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("tls_bulk: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    exit(1);
}

static void check(int r, const char *what)
{
    if (r < 0)
        die("%s: %s", what, gnutls_strerror(r));
}

static struct sockaddr_in parse_addr(const char *s)
{
    struct sockaddr_in sa = {.sin_family = AF_INET};
    char host[64];
    const char *colon = strrchr(s, ':');
    char *end;
    if (!colon || (size_t)(colon - s) >= sizeof(host))
        die("%s: want ADDR:PORT", s);
    memcpy(host, s, (size_t)(colon - s));
    host[colon - s] = '\0';
    long port = strtol(colon + 1, &end, 10);
    if (*end || port <= 0 || port > 65535 || inet_pton(AF_INET, host, &sa.sin_addr) != 1)
        die("%s: want an IPv4 ADDR:PORT", s);
    sa.sin_port = htons((uint16_t)port);
    return sa;
}

/* ---- the origin ---- */

/* Reads one request head (up to its blank line) from a session into buf. Returns its length,
 * or 0 when the peer closed or sent something that is not a head. */
static size_t read_head(gnutls_session_t gs, char *buf, size_t cap)
{
    size_t len = 0;
    while (len < cap - 1) {
        ssize_t n = gnutls_record_recv(gs, buf + len, cap - 1 - len);
        if (n == GNUTLS_E_AGAIN || n == GNUTLS_E_INTERRUPTED)
            continue;
        if (n <= 0)
            return 0;
        len += (size_t)n;
        buf[len] = '\0';
        if (strstr(buf, "\r\n\r\n"))
            return len;
    }
    return 0;
}

static int send_all(gnutls_session_t gs, const void *p, size_t len)
{
    const char *c = p;
    while (len > 0) {
        ssize_t n = gnutls_record_send(gs, c, len);
        if (n == GNUTLS_E_AGAIN || n == GNUTLS_E_INTERRUPTED)
            continue;
        if (n < 0)
            return -1;
        c += n;
        len -= (size_t)n;
    }
    return 0;
}

/* One client connection, keep-alive, in a process of its own. */
static _Noreturn void serve_conn(int fd, gnutls_certificate_credentials_t cred,
                                 gnutls_priority_t prio)
{
    static char body[CHUNK];
    char head[MAX_HEAD], answer[256];
    gnutls_session_t gs;
    for (size_t i = 0; i < sizeof(body); i++)
        body[i] = (char)(i * 2654435761u >> 13); /* not all one byte; TLS does not compress */
    check(gnutls_init(&gs, GNUTLS_SERVER), "gnutls_init");
    check(gnutls_priority_set(gs, prio), "priority");
    check(gnutls_credentials_set(gs, GNUTLS_CRD_CERTIFICATE, cred), "credentials");
    gnutls_transport_set_int(gs, fd);
    int r;
    do
        r = gnutls_handshake(gs);
    while (r < 0 && !gnutls_error_is_fatal(r));
    if (r < 0)
        exit(0); /* a readiness probe, or a client that did not trust us: its business */
    while (read_head(gs, head, sizeof(head)) > 0) {
        unsigned long long size = 1024;
        if (strncmp(head, "GET /", 5) == 0 && head[5] >= '0' && head[5] <= '9')
            size = strtoull(head + 5, NULL, 10);
        int n = snprintf(answer, sizeof(answer),
                         "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n"
                         "Content-Length: %llu\r\n\r\n",
                         size);
        if (send_all(gs, answer, (size_t)n) < 0)
            break;
        while (size > 0) {
            size_t k = size < sizeof(body) ? (size_t)size : sizeof(body);
            if (send_all(gs, body, k) < 0)
                exit(0);
            size -= k;
        }
    }
    gnutls_bye(gs, GNUTLS_SHUT_WR);
    exit(0);
}

/* Reaped as they end so that their CPU time shows in ours (/proc/PID/stat's cutime) as soon
 * as a download is over. */
static void reap(int sig)
{
    (void)sig;
    int e = errno;
    while (waitpid(-1, NULL, WNOHANG) > 0)
        ;
    errno = e;
}

static _Noreturn void serve(int argc, char **argv)
{
    const char *prio_text = DEFAULT_PRIORITY;
    if (argc == 7 && strcmp(argv[5], "--priority") == 0)
        prio_text = argv[6];
    else if (argc != 5)
        die("usage: tls_bulk serve ADDR:PORT CERT KEY [--priority P]");
    struct sockaddr_in sa = parse_addr(argv[2]);
    gnutls_certificate_credentials_t cred;
    gnutls_priority_t prio;
    check(gnutls_certificate_allocate_credentials(&cred), "credentials");
    check(gnutls_certificate_set_x509_key_file(cred, argv[3], argv[4], GNUTLS_X509_FMT_PEM),
          argv[3]);
    check(gnutls_priority_init(&prio, prio_text, NULL), prio_text);
    int one = 1, lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (lfd < 0 || setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
        bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(lfd, 128) < 0)
        die("listen on %s: %s", argv[2], strerror(errno));
    struct sigaction sa_chld = {.sa_handler = reap, .sa_flags = SA_NOCLDSTOP};
    sigaction(SIGCHLD, &sa_chld, NULL);
    for (;;) {
        int fd = accept(lfd, NULL, NULL);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED || errno == EMFILE)
                continue;
            die("accept: %s", strerror(errno));
        }
        pid_t pid = fork();
        if (pid == 0) {
            close(lfd);
            signal(SIGCHLD, SIG_DFL);
            serve_conn(fd, cred, prio);
        }
        if (pid < 0)
            die("fork: %s", strerror(errno));
        close(fd);
    }
}

/* ---- the client ---- */

struct get_opts {
    struct sockaddr_in origin, proxy;
    const char *origin_text, *cafile, *proxy_ca, *prio_text;
    unsigned long long bytes;
    int count;
    bool via_proxy;
};

static ssize_t nested_pull(gnutls_transport_ptr_t p, void *buf, size_t len)
{
    ssize_t n = gnutls_record_recv(p, buf, len);
    if (n >= 0)
        return n;
    errno = EIO;
    return -1;
}

static ssize_t nested_push(gnutls_transport_ptr_t p, const void *buf, size_t len)
{
    ssize_t n = gnutls_record_send(p, buf, len);
    if (n >= 0)
        return n;
    errno = EIO;
    return -1;
}

/* A client session verified for host against cafile, on fd or inside outer. */
static gnutls_session_t client_session(int fd, gnutls_session_t outer, const char *cafile,
                                       const char *host, gnutls_priority_t prio)
{
    gnutls_certificate_credentials_t cred;
    gnutls_session_t gs;
    check(gnutls_certificate_allocate_credentials(&cred), "credentials");
    if (gnutls_certificate_set_x509_trust_file(cred, cafile, GNUTLS_X509_FMT_PEM) <= 0)
        die("%s: no certificate", cafile);
    check(gnutls_init(&gs, GNUTLS_CLIENT), "gnutls_init");
    check(gnutls_priority_set(gs, prio), "priority");
    check(gnutls_credentials_set(gs, GNUTLS_CRD_CERTIFICATE, cred), "credentials");
    gnutls_session_set_verify_cert(gs, host, 0);
    if (outer) {
        gnutls_transport_set_ptr(gs, outer);
        gnutls_transport_set_pull_function(gs, nested_pull);
        gnutls_transport_set_push_function(gs, nested_push);
    } else {
        gnutls_transport_set_int(gs, fd);
    }
    int r;
    do
        r = gnutls_handshake(gs);
    while (r < 0 && !gnutls_error_is_fatal(r));
    check(r, "TLS handshake");
    return gs;
}

/* Reads a response head byte by byte from a plain socket (the proxy's answer to CONNECT: the
 * tunnel's bytes follow it, so nothing past the blank line may be read). */
static void connect_answer(int fd, gnutls_session_t over)
{
    char head[MAX_HEAD];
    size_t len = 0;
    while (len < sizeof(head) - 1) {
        ssize_t n = over ? gnutls_record_recv(over, head + len, 1) : recv(fd, head + len, 1, 0);
        if (n == GNUTLS_E_AGAIN || n == GNUTLS_E_INTERRUPTED)
            continue;
        if (n <= 0)
            die("the proxy closed before answering CONNECT");
        len++;
        head[len] = '\0';
        if (len >= 4 && memcmp(head + len - 4, "\r\n\r\n", 4) == 0) {
            if (strncmp(head, "HTTP/1.1 200", 12) != 0 && strncmp(head, "HTTP/1.0 200", 12) != 0)
                die("CONNECT refused: %.*s", (int)strcspn(head, "\r"), head);
            return;
        }
    }
    die("CONNECT answer too long");
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double cpu_s(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
           (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

/* One download on a new connection. Returns its MB/s from the request to the last byte. */
static double download(const struct get_opts *o, gnutls_priority_t prio)
{
    const struct sockaddr_in *to = o->via_proxy ? &o->proxy : &o->origin;
    int one = 1, fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || connect(fd, (const struct sockaddr *)to, sizeof(*to)) < 0)
        die("connect: %s", strerror(errno));
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    gnutls_session_t outer = NULL, gs;
    if (o->via_proxy) {
        char req[256];
        if (o->proxy_ca) {
            char phost[INET_ADDRSTRLEN];
            inet_ntop(AF_INET, &o->proxy.sin_addr, phost, sizeof(phost));
            outer = client_session(fd, NULL, o->proxy_ca, phost, prio);
        }
        int n = snprintf(req, sizeof(req), "CONNECT %s HTTP/1.1\r\nHost: %s\r\n\r\n",
                         o->origin_text, o->origin_text);
        if (outer ? send_all(outer, req, (size_t)n) < 0 : send(fd, req, (size_t)n, 0) != n)
            die("sending CONNECT failed");
        connect_answer(fd, outer);
    }
    char host[INET_ADDRSTRLEN];
    inet_ntop(AF_INET, &o->origin.sin_addr, host, sizeof(host));
    gs = client_session(fd, outer, o->cafile, host, prio);
    char req[256], head[MAX_HEAD];
    int n = snprintf(req, sizeof(req), "GET /%llu HTTP/1.1\r\nHost: %s\r\n\r\n", o->bytes,
                     o->origin_text);
    double t0 = now_s();
    if (send_all(gs, req, (size_t)n) < 0)
        die("sending the request failed");
    /* The head, then the body, each record taken in place and dropped. */
    size_t hlen = 0;
    unsigned long long got = 0, want = 0;
    bool in_body = false;
    while (!in_body || got < want) {
        gnutls_packet_t packet;
        gnutls_datum_t d;
        ssize_t r = gnutls_record_recv_packet(gs, &packet);
        if (r == GNUTLS_E_AGAIN || r == GNUTLS_E_INTERRUPTED)
            continue;
        if (r <= 0)
            die("download ended after %llu of %llu body bytes: %s", got, want,
                r == 0 ? "closed" : gnutls_strerror((int)r));
        gnutls_packet_get(packet, &d, NULL);
        size_t off = 0;
        if (!in_body) {
            size_t k = d.size < sizeof(head) - 1 - hlen ? d.size : sizeof(head) - 1 - hlen;
            memcpy(head + hlen, d.data, k);
            hlen += k;
            head[hlen] = '\0';
            char *end = strstr(head, "\r\n\r\n");
            if (!end) {
                if (hlen >= sizeof(head) - 1)
                    die("response head too long");
                gnutls_packet_deinit(packet);
                continue;
            }
            const char *cl = strstr(head, "Content-Length: ");
            if (strncmp(head, "HTTP/1.1 200", 12) != 0 || !cl)
                die("unexpected answer: %.*s", (int)strcspn(head, "\r"), head);
            want = strtoull(cl + 16, NULL, 10);
            off = (size_t)(end + 4 - head) - (hlen - k); /* the body's start in this record */
            in_body = true;
        }
        got += d.size - off;
        gnutls_packet_deinit(packet);
    }
    double t1 = now_s();
    if (got != want)
        die("got %llu body bytes, %llu expected", got, want);
    gnutls_bye(gs, GNUTLS_SHUT_WR);
    gnutls_deinit(gs);
    if (outer)
        gnutls_deinit(outer);
    close(fd);
    return (double)want / 1e6 / (t1 - t0);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static int get(int argc, char **argv)
{
    struct get_opts o = {.count = 3, .prio_text = DEFAULT_PRIORITY};
    if (argc < 4)
        die("usage: tls_bulk get ADDR:PORT BYTES --cafile F [--proxy ADDR:PORT] "
            "[--proxy-tls CAFILE] [--count K] [--priority P]");
    o.origin_text = argv[2];
    o.origin = parse_addr(argv[2]);
    o.bytes = strtoull(argv[3], NULL, 10);
    for (int i = 4; i < argc; i += 2) {
        if (i + 1 >= argc)
            die("%s wants a value", argv[i]);
        if (strcmp(argv[i], "--cafile") == 0) {
            o.cafile = argv[i + 1];
        } else if (strcmp(argv[i], "--proxy") == 0) {
            o.proxy = parse_addr(argv[i + 1]);
            o.via_proxy = true;
        } else if (strcmp(argv[i], "--proxy-tls") == 0) {
            o.proxy_ca = argv[i + 1];
        } else if (strcmp(argv[i], "--count") == 0) {
            o.count = atoi(argv[i + 1]);
        } else if (strcmp(argv[i], "--priority") == 0) {
            o.prio_text = argv[i + 1];
        } else {
            die("unknown option %s", argv[i]);
        }
    }
    if (!o.cafile || o.bytes == 0 || o.count < 1 || o.count > MAX_DOWNLOADS ||
        (o.proxy_ca && !o.via_proxy))
        die("get needs --cafile, BYTES > 0, --count 1..%d, and --proxy with --proxy-tls",
            MAX_DOWNLOADS);
    gnutls_priority_t prio;
    check(gnutls_priority_init(&prio, o.prio_text, NULL), o.prio_text);
    double speeds[MAX_DOWNLOADS], c0 = cpu_s();
    for (int i = 0; i < o.count; i++)
        speeds[i] = download(&o, prio);
    double cpu = cpu_s() - c0, mb = (double)o.bytes * o.count / 1e6;
    qsort(speeds, (size_t)o.count, sizeof(speeds[0]), cmp_double);
    printf("%.1f %.3f %.1f\n", speeds[o.count / 2], cpu * 1e3 / mb, mb);
    return 0;
}

int main(int argc, char **argv)
{
    signal(SIGPIPE, SIG_IGN);
    if (argc >= 2 && strcmp(argv[1], "serve") == 0)
        serve(argc, argv);
    if (argc >= 2 && strcmp(argv[1], "get") == 0)
        return get(argc, argv);
    die("usage: tls_bulk serve ADDR:PORT CERT KEY [--priority P] | tls_bulk get ADDR:PORT BYTES "
        "--cafile F [--proxy ADDR:PORT] [--proxy-tls CAFILE] [--count K] [--priority P]");
    return 1;
}
