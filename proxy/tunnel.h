/* tunnel: opaque bytes both ways once a CONNECT is established or a WebSocket upgrade is
 * answered, and the kernel pipes that move bytes socket to socket with splice(2), never
 * through user space (tunnels, and long response bodies). Worker thread only. */
#ifndef PX_TUNNEL_H
#define PX_TUNNEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct conn;

/* A kernel pipe from a socket to a socket. */
struct tun_pipe {
    int rd, wr;   /* owned when open */
    size_t bytes; /* in the pipe, not yet delivered */
    size_t cap;
    bool open;
};

/* Opens p (closed): a new pipe sized for long transfers. Returns 0, or -1 (errno) when no
 * pipe can be had (out of descriptors). */
int tun_pipe_open(struct tun_pipe *p);
/* Closes p if open. */
void tun_pipe_close(struct tun_pipe *p);

/* Moves bytes from -> p -> to; p must be open. Takes at most *limit bytes from `from` (and
 * lowers it) and sets *eof when `from` has ended. Returns the bytes delivered to `to` (0 when
 * none moved out of the pipe), or PX_ERR (errno) with *to_failed saying whether writing to
 * `to` failed (else reading `from` did). readable/writable are the sockets' readiness flags,
 * cleared when proved empty or full. */
ssize_t tun_splice(struct tun_pipe *p, int from, bool *readable, int to, bool *writable,
                   uint64_t *limit, bool *eof, bool *to_failed);

/* c becomes a tunnel (CONNECT established, or 101 Switching Protocols relayed): from now on
 * bytes go both ways unread until both sides have ended or it idles out. */
void tun_start(struct conn *c);
/* The CONN_TUNNEL step: moves what it can both ways. Returns whether anything moved (false
 * also after closing c). */
bool tun_step(struct conn *c);

#endif
