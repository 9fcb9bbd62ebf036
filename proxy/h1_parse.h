/* h1_parse: strict HTTP/1.1 (RFC 9110/9112) message-head parser, chunked-body validator and
 * head rewriter for a forward proxy.
 *
 * Pure and zero-copy, in the manner of picohttpparser: input is a buffer and a length, output
 * is slices into that buffer and a caller-supplied header array. No allocation, no globals,
 * no hidden state; every function may be called from any thread. The one copy is the
 * target's host, which the parser turns canonical (acl_host.h) once, so that the policy, the
 * resolver, the log and the Host sent upstream all see the same host.
 *
 * Strictness is a security property here: anything a downstream server could read another
 * way (CL and TE together, differing duplicate Content-Length, unknown or repeated transfer
 * codings, obs-fold, bare LF, control bytes, whitespace before the colon, bad chunk sizes)
 * is an error, never "repaired" and forwarded.
 */
#ifndef PX_H1_PARSE_H
#define PX_H1_PARSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "acl/acl_host.h"
#include "base/status.h"

/* The parse functions return the bytes consumed (> 0) or, from base/status.h, PX_AGAIN (the
 * head is not complete yet: read more and call again) or PX_ERR (malformed: see struct
 * h1_error; the connection must close). */

/* A borrowed view into the caller's buffer; valid as long as that buffer is. */
struct h1_slice {
    const char *p;
    size_t len;
};

struct h1_header {
    struct h1_slice name;  /* token characters only, case as received */
    struct h1_slice value; /* leading and trailing OWS removed */
    /* What the name means to h1_parse.c (its own classes), set by the parser: the parse and
     * the rewrite ask for each field several times, and the name is compared once. */
    unsigned char kind;
};

struct h1_limits {
    size_t max_request_line; /* request/status line: exceeded: 414 (requests), 502 (responses) */
    size_t max_head_bytes;   /* whole head incl. that line: exceeded: 431 / 502 */
    size_t max_headers;      /* header count: exceeded: 431 / 502 */
};

struct h1_error {
    int status;         /* HTTP status to answer with: 400, 414, 431 or 501 */
    const char *reason; /* static string saying what was wrong, for the error page and log */
};

enum h1_target_form {
    H1_FORM_ORIGIN,    /* "/path?q" : not a proxy request (e.g. a browser fetching /proxy.pac) */
    H1_FORM_ABSOLUTE,  /* "http://host[:port]/path?q" */
    H1_FORM_AUTHORITY, /* "host:port", CONNECT only */
    H1_FORM_ASTERISK,  /* "*", OPTIONS only */
    H1_FORM_COUNT
};

enum h1_body {
    H1_BODY_NONE,    /* no body follows the head */
    H1_BODY_LENGTH,  /* exactly content_length bytes follow */
    H1_BODY_CHUNKED, /* chunked coding follows (forwarded verbatim, validated by h1_chunked) */
    H1_BODY_CLOSE,   /* responses only: body runs until the origin closes */
    H1_BODY_COUNT
};

struct h1_request {
    struct h1_slice method;
    struct h1_slice target; /* the request-target exactly as received */
    enum h1_target_form form;
    struct h1_slice
        scheme; /* absolute-form: "http" (lower-cased by the caller if needed); else empty */
    struct acl_host host; /* absolute/authority-form: the host in canonical form (a copy);
                             kind NAME and len 0 for origin/asterisk form */
    uint16_t port;        /* explicit port, else 80 for http; 0 for origin/asterisk form */
    struct h1_slice path; /* absolute-form: path and query ("/" if empty); empty for others */
    int minor_version;    /* HTTP/1.x: 0 or 1 */

    struct h1_header *headers; /* in: caller's array of max_headers entries; out: filled */
    size_t num_headers;        /* out */

    enum h1_body body;                   /* NONE, LENGTH or CHUNKED */
    uint64_t content_length;             /* when body == H1_BODY_LENGTH */
    bool keep_alive;                     /* per version and Connection header */
    bool expect_continue;                /* Expect: 100-continue */
    bool upgrade_websocket;              /* Connection: upgrade + Upgrade: websocket (GET only) */
    struct h1_slice proxy_authorization; /* value of Proxy-Authorization, empty if absent */
};

struct h1_response {
    int minor_version;
    int status; /* 100..599 */
    struct h1_slice reason;
    struct h1_header *headers; /* as in struct h1_request */
    size_t num_headers;
    enum h1_body body; /* derived with the request's method: HEAD, 1xx, 204, 304 -> NONE */
    uint64_t content_length;
    bool keep_alive;        /* false if the origin said close or is HTTP/1.0 without keep-alive */
    bool upgrade_websocket; /* 101 with Upgrade: websocket */
};

/* Parses a request head from buf[0..len).
 * Returns the head's length in bytes (> 0; the body, if any, starts there), PX_AGAIN
 * when buf holds only a prefix of a valid head that is within the limits, or PX_ERR with
 * *err filled (414 for an over-long request line, 431 for too many or too large headers,
 * 501 for an unsupported transfer coding, 400 for everything else, among it a target host
 * acl_host_parse refuses and a Host header that is neither empty nor host[:port]).
 * req->headers must point to an array of lim->max_headers entries. */
int h1_parse_request(const char *buf, size_t len, const struct h1_limits *lim,
                     struct h1_request *req, struct h1_error *err);

/* Parses a response head. request_was_head says whether the request was HEAD (no body
 * whatever the headers say). Returns as h1_parse_request; errors carry status 502. */
int h1_parse_response(const char *buf, size_t len, const struct h1_limits *lim,
                      bool request_was_head, struct h1_response *resp, struct h1_error *err);

/* Incremental validator of a chunked body (with trailers) that the proxy forwards verbatim.
 * Zero it before the first call. */
struct h1_chunked {
    int state;          /* private */
    uint64_t remaining; /* private: data bytes left in the current chunk */
    size_t line_bytes;  /* private: bytes of the current size/trailer line, to bound them */
};

/* Feeds buf[0..len) to the validator. Sets *consumed to the bytes that belong to the body
 * (never past its end). Returns PX_OK when the body (last chunk and trailers) is complete,
 * PX_AGAIN when all of buf was consumed and more is needed, PX_ERR on a malformed body
 * (bad hex, size overflow, missing CRLF, over-long line) with *err set (status 400). */
int h1_chunked_feed(struct h1_chunked *st, const char *buf, size_t len, size_t *consumed,
                    struct h1_error *err);

/* Writes the request head to send to the origin into out[0..cap): origin-form request line
 * ("METHOD /path HTTP/1.x", x as the client sent it), Host set from the target's canonical
 * host (the client's Host header dropped: RFC 9112 3.2.2), hop-by-hop headers removed
 * (Connection and every header it names, Keep-Alive, Proxy-Connection,
 * Proxy-Authorization, TE, Trailer, Upgrade unless req->upgrade_websocket), then
 * "Via: 1.1 <via>" appended and, for a WebSocket upgrade, "Connection: Upgrade".
 * Returns the bytes written, or -1 if it does not fit in cap. */
long h1_request_rewrite(const struct h1_request *req, const char *via, char *out, size_t cap);

/* Writes the response head to send to the client: status line as HTTP/1.1, hop-by-hop
 * headers removed as above (Upgrade kept for a 101 WebSocket), Via appended, and
 * "Connection: close" added when client_keep_alive is false. Returns bytes or -1. */
long h1_response_rewrite(const struct h1_response *resp, const char *via, bool client_keep_alive,
                         char *out, size_t cap);

/* Whether c may appear in a token (RFC 9110 5.6.2): a method, a field name. */
bool h1_is_tchar(unsigned char c);

/* Case-insensitive search for a header; returns its index or -1. */
int h1_header_find(const struct h1_header *headers, size_t n, const char *name);

#endif
