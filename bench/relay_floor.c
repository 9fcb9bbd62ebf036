/* relay_floor: the floor for a relay in the middle of a connection. It ends the client's TCP
 * connection and opens its own to the original destination (SO_ORIGINAL_DST, so it sits where
 * proxyd --intercept sits behind the same nftables redirect), or to a fixed TARGET for
 * connections that were not redirected (where proxyd --listen sits), and moves bytes both ways
 * with splice(2) through 1 MiB pipes as proxyd does: no parsing, no rules, no log. What it
 * costs is what the kernel costs for two TCP connections instead of one routed connection;
 * intercept_bench.sh measures it beside proxyd so that proxyd / floor shows proxyd's share.
 *
 *   relay_floor [--copy] LISTEN_IP:PORT [TARGET_IP:PORT]   (IPv4; one thread; until killed)
 *
 * --copy moves the bytes with read(2) and write(2) through a buffer of its own instead: the
 * relay copies every byte, but the sender's socket pages go back to it as soon as they are
 * read, where splice keeps them in flight (in the pipe, then in the client socket) until the
 * far end has them. Whether that changes the ends' CPU per byte when both are on this machine
 * is what intercept_bench.sh's floor-copy row measures beside the splicing floor (one quiet
 * run: it did not lower it).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* splice, pipe2, accept4; the tree's build defines it already */
#endif
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/netfilter_ipv4.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#define MAX_FDS 65536
#define PIPE_BYTES (1024 * 1024)

/* One direction of a relayed connection: bytes read from `from` wait in the pipe for `to`. */
struct half {
    int from, to;
    int pipe_rd, pipe_wr;
};

static struct half *half_of[MAX_FDS]; /* by the fd it reads from */

static bool parse_addr(const char *text, struct sockaddr_in *out)
{
    char ip[INET_ADDRSTRLEN];
    const char *colon = strrchr(text, ':');
    if (!colon || (size_t)(colon - text) >= sizeof(ip))
        return false;
    memcpy(ip, text, (size_t)(colon - text));
    ip[colon - text] = '\0';
    memset(out, 0, sizeof(*out));
    out->sin_family = AF_INET;
    out->sin_port = htons((uint16_t)atoi(colon + 1));
    return inet_pton(AF_INET, ip, &out->sin_addr) == 1;
}

static void close_both(int ep, struct half *h)
{
    struct half *back = half_of[h->to];
    int fds[2] = {h->from, h->to};
    for (int i = 0; i < 2; i++) {
        epoll_ctl(ep, EPOLL_CTL_DEL, fds[i], NULL);
        close(fds[i]);
        half_of[fds[i]] = NULL;
    }
    struct half *halves[2] = {h, back};
    for (int i = 0; i < 2; i++) {
        close(halves[i]->pipe_rd);
        close(halves[i]->pipe_wr);
        free(halves[i]);
    }
}

static struct half *half_new(int from, int to)
{
    int p[2];
    struct half *h = malloc(sizeof(*h));
    if (!h || pipe2(p, O_NONBLOCK | O_CLOEXEC) < 0) {
        free(h);
        return NULL;
    }
    fcntl(p[1], F_SETPIPE_SZ, PIPE_BYTES);
    *h = (struct half){.from = from, .to = to, .pipe_rd = p[0], .pipe_wr = p[1]};
    return h;
}

static bool copy_mode;

/* Waits for `to` to take more. False when it will not. */
static bool wait_writable(int to)
{
    struct pollfd w = {.fd = to, .events = POLLOUT};
    return poll(&w, 1, 60000) > 0;
}

/* relay() for --copy. */
static bool relay_copy(struct half *h)
{
    static char buf[256 * 1024];
    for (;;) {
        ssize_t got = read(h->from, buf, sizeof(buf));
        if (got == 0)
            return false;
        if (got < 0)
            return errno == EAGAIN || errno == EINTR;
        for (ssize_t off = 0; off < got;) {
            ssize_t put = write(h->to, buf + off, (size_t)(got - off));
            if (put > 0)
                off += put;
            else if (put < 0 && errno == EAGAIN && !wait_writable(h->to))
                return false;
            else if (put < 0 && errno != EAGAIN && errno != EINTR)
                return false;
        }
    }
}

/* Moves what `from` has to `to`; a full `to` is waited for (one thread: the floor is measured
 * with one bulk transfer at a time). False when the connection is over. */
static bool relay(struct half *h)
{
    if (copy_mode)
        return relay_copy(h);
    for (;;) {
        ssize_t got =
            splice(h->from, NULL, h->pipe_wr, NULL, PIPE_BYTES, SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
        if (got == 0)
            return false;
        if (got < 0)
            return errno == EAGAIN || errno == EINTR;
        while (got > 0) {
            ssize_t put = splice(h->pipe_rd, NULL, h->to, NULL, (size_t)got,
                                 SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
            if (put > 0) {
                got -= put;
            } else if (put < 0 && errno == EAGAIN) {
                if (!wait_writable(h->to))
                    return false;
            } else if (put < 0 && errno != EINTR) {
                return false;
            }
        }
    }
}

static void accept_one(int ep, int listen_fd, const struct sockaddr_in *fixed)
{
    int client = accept4(listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (client < 0)
        return;
    struct sockaddr_in dest;
    socklen_t len = sizeof(dest);
    if (fixed) {
        dest = *fixed;
    } else if (getsockopt(client, SOL_IP, SO_ORIGINAL_DST, &dest, &len) < 0) {
        close(client);
        return;
    }
    int origin = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1;
    if (origin < 0 || client >= MAX_FDS || origin >= MAX_FDS ||
        connect(origin, (struct sockaddr *)&dest, sizeof(dest)) < 0) {
        close(client);
        if (origin >= 0)
            close(origin);
        return;
    }
    fcntl(origin, F_SETFL, O_NONBLOCK);
    setsockopt(client, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    setsockopt(origin, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    struct half *up = half_new(client, origin), *down = half_new(origin, client);
    if (!up || !down) {
        close(client);
        close(origin);
        free(up);
        free(down);
        return;
    }
    half_of[client] = up;
    half_of[origin] = down;
    struct epoll_event ev = {.events = EPOLLIN | EPOLLRDHUP};
    ev.data.fd = client;
    epoll_ctl(ep, EPOLL_CTL_ADD, client, &ev);
    ev.data.fd = origin;
    epoll_ctl(ep, EPOLL_CTL_ADD, origin, &ev);
}

int main(int argc, char **argv)
{
    struct sockaddr_in listen_addr, fixed;
    if (argc > 1 && strcmp(argv[1], "--copy") == 0) {
        copy_mode = true;
        argv++;
        argc--;
    }
    if (argc < 2 || argc > 3 || !parse_addr(argv[1], &listen_addr) ||
        (argc == 3 && !parse_addr(argv[2], &fixed))) {
        fprintf(stderr, "usage: relay_floor [--copy] LISTEN_IP:PORT [TARGET_IP:PORT]\n");
        return 2;
    }
    int one = 1, listen_fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    setsockopt(listen_fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (bind(listen_fd, (struct sockaddr *)&listen_addr, sizeof(listen_addr)) < 0 ||
        listen(listen_fd, 4096) < 0) {
        perror("relay_floor: listen");
        return 1;
    }
    int ep = epoll_create1(EPOLL_CLOEXEC);
    struct epoll_event ev = {.events = EPOLLIN, .data.fd = listen_fd}, events[256];
    epoll_ctl(ep, EPOLL_CTL_ADD, listen_fd, &ev);
    for (;;) {
        int n = epoll_wait(ep, events, 256, -1);
        for (int i = 0; i < n; i++) {
            int fd = events[i].data.fd;
            if (fd == listen_fd) {
                accept_one(ep, listen_fd, argc == 3 ? &fixed : NULL);
                continue;
            }
            struct half *h = half_of[fd];
            if (h && !relay(h))
                close_both(ep, h);
        }
    }
}
