/* tunnel: opaque bytes both ways once a CONNECT is established or a WebSocket upgrade is
 * answered, and the kernel pipes that move bytes socket to socket with splice(2), never
 * through user space (tunnels, and long response bodies for relay.c). Each worker keeps a few
 * empty pipes for the next user, so a download or a tunnel does not pay for pipe2() and its
 * resize. Worker thread only. */
#ifndef PX_TUNNEL_H
#define PX_TUNNEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct conn;
struct worker;
struct acl_inspect;

/* A kernel pipe from a socket to a socket. */
struct tun_pipe {
    int rd, wr;   /* owned when open */
    size_t bytes; /* in the pipe, not yet delivered */
    size_t cap;
    /* A fill found no room: a pipe runs out of slots (one per page or socket fragment) before
     * its bytes reach cap. No fill is tried until a drain has made room, so a source that
     * keeps signalling new bytes costs no splice that cannot move any. */
    bool full;
    bool open;
};

#define TUN_PIPE_POOL 8

/* Empty pipes a worker keeps for its next users (each holds two descriptors). */
struct tun_pipe_pool {
    struct tun_pipe free[TUN_PIPE_POOL];
    size_t n;
};

/* Opens p (closed): an empty pipe from the pool, else a new one sized for long transfers.
 * Returns 0, or -1 (errno) when no pipe can be had (out of descriptors). */
int tun_pipe_open(struct tun_pipe_pool *pool, struct tun_pipe *p);
/* Closes p if open: an empty pipe goes back to the pool while it has room; one that still
 * holds bytes (a transfer cut short) is closed, so no byte ever reaches another user. */
void tun_pipe_close(struct tun_pipe_pool *pool, struct tun_pipe *p);
/* Closes every pipe of the pool (worker teardown). */
void tun_pipe_pool_clear(struct tun_pipe_pool *pool);

/* Moves bytes from -> p -> to; p must be open. Takes at most *limit bytes from `from` (and
 * lowers it) and sets *eof when `from` has ended. Returns the bytes delivered to `to` (0 when
 * none moved out of the pipe), or PX_ERR (errno) with *to_failed saying whether writing to
 * `to` failed (else reading `from` did). readable/writable are the sockets' readiness flags,
 * cleared when proved empty or full. */
ssize_t tun_splice(struct tun_pipe *p, int from, bool *readable, int to, bool *writable,
                   uint64_t *limit, bool *eof, bool *to_failed);

/* Ends c with a fatal TLS alert (RFC 8446 6.2 description) after whatever of ours the client
 * has not had yet, then the close; the origin, if any, is let go. When origin bytes are on
 * their way to the client, or no buffer can be had, the close alone is the answer. The
 * outcome must be recorded before. */
void tun_tls_alert(struct conn *c, uint8_t alert);
#define TLS_ALERT_ACCESS_DENIED 49
#define TLS_ALERT_DECODE_ERROR 50

/* Whether an allowed tunnel is decrypted, from the policy's answer (acl_eval_inspect) and
 * unable: NULL when this proxyd can inspect this tunnel, else why not ("no CA"). True only
 * when the policy says inspect and nothing stands in the way. note gets what the access row
 * says about it: "inspect rule 9 not applied: no CA" when a rule asked and could not be
 * followed, "" otherwise (nothing asked, or the no-inspect list said no). Pure. */
bool tun_inspect_decide(const struct acl_inspect *in, const char *unable, char *note,
                        size_t notelen);
/* The CONNECT in flight, decided for inspection, has its origin connected: the CONNECT's
 * record is handed on (200), the origin is kept by c for the requests inside, and the
 * client's side becomes TLS as the tunnel's host (bump_begin); then the requests inside are
 * read, decided and relayed one by one (c->inspecting). Closes c when that cannot begin (no
 * CA any more: the client was promised nothing but the 200 it has not had). */
void tun_inspect_start(struct conn *c);
/* c becomes a tunnel (CONNECT established, or 101 Switching Protocols relayed): from now on
 * bytes go both ways unread until both sides have ended or it idles out. read_hello: the
 * client's first bytes are read first (at most a buffer's worth, as long as the tunnel may
 * idle); a TLS ClientHello's server name other than the tunnel's host is put to the policy,
 * and a denied or unreadable one ends the tunnel with a TLS alert. The origin's bytes flow
 * meanwhile (a protocol whose server speaks first is not held up). */
void tun_start(struct conn *c, bool read_hello);

/* Judges every open tunnel of w again by the rule set now in force, as it was judged when it
 * opened (its host, server name, port, client, user, connected address), and closes those it
 * no longer allows: a tunnel outlives the rules that let it open (a browser keeps one to a
 * site for minutes), and a block is for what is open too. Worker thread, after a new set. */
void tun_rejudge(struct worker *w);
/* Closes w's tunnels whose proxy user is no longer in the store (deleted), spliced or
 * inspected, and an upgraded WebSocket's (the password was checked once, when it opened), and
 * any request of such a user still in flight (a CONNECT resolving becomes a tunnel later).
 * Worker thread, after the main thread read the users again (proxy_shared.users_gen). */
void tun_users_check(struct worker *w);
/* The CONN_TUNNEL step: moves what it can both ways. Returns whether anything moved (false
 * also after closing c). */
bool tun_step(struct conn *c);

#endif
