/* tls_hello: reads a TLS ClientHello without decrypting anything and without a TLS library:
 * the first bytes a client sends on a tunnel or an intercepted connection, so that the server
 * name it asks for (SNI) can be judged by the same policy as a CONNECT host.
 *
 * Pure like h1_parse: bytes in, a verdict and facts out; no allocation, no I/O, no state kept
 * between calls (a caller that has more bytes calls again with all of them). Any thread.
 *
 * What is read: TLS records of type handshake (22) carrying one ClientHello, which may be split
 * over several records (and so over any number of TCP segments). Limits, each refused as
 * TLS_HELLO_MALFORMED:
 *   a record's length          1 .. TLS_RECORD_MAX (RFC 8446 5.1: no empty handshake records,
 *                              plaintext at most 2^14)
 *   the ClientHello's length   (the handshake message body) 1 .. TLS_HELLO_MAX
 *   a record of another type, or a handshake message that is not a ClientHello
 *   a ClientHello version (legacy_version) other than 3.x
 *   any length that runs past the field holding it; bytes after the ClientHello in its last
 *   record; a session id over 32 bytes, an odd or empty cipher suite list, no compression
 *   method, extensions that do not exactly fill their block
 *   a second extension of a type this reader looks at (server_name, ALPN, supported_versions):
 *   a server could take either, so neither is trusted
 *   server_name: an empty list, a second host_name, an empty name, or a name acl_host_parse
 *   refuses (the reason is acl_host_parse's)
 */
#ifndef PX_TLS_HELLO_H
#define PX_TLS_HELLO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "acl/acl_host.h"

#define TLS_RECORD_MAX 16384 /* longest plaintext record payload, bytes */
#define TLS_HELLO_MAX 16384  /* longest ClientHello body we read, bytes; real ones are < 2 KiB */

enum tls_hello_result {
    TLS_HELLO_PARSED,    /* a whole ClientHello: see struct tls_hello */
    TLS_HELLO_NEED_MORE, /* a valid beginning: call again with more bytes */
    TLS_HELLO_NOT_TLS,   /* the bytes do not start a TLS handshake record (HTTP, SSH, ...) */
    TLS_HELLO_MALFORMED, /* starts as TLS but breaks a rule above: *why says which */
    TLS_HELLO_RESULT_COUNT
};

/* "parsed", "need-more", "not-tls", "malformed" */
const char *tls_hello_result_str(enum tls_hello_result r);

struct tls_hello {
    size_t len;              /* bytes of the input the ClientHello's records take */
    uint16_t record_version; /* of its first record (0x0301 in most clients) */
    uint16_t legacy_version; /* the ClientHello's own (0x0303 from TLS 1.2 clients on) */
    uint16_t max_version;    /* highest version offered: from supported_versions when present
                                (GREASE values ignored), else legacy_version; 0x0304 = TLS 1.3 */
    bool has_sni;            /* a host_name in server_name: then sni is it, canonical */
    bool has_alpn;           /* an ALPN extension with a valid, non-empty protocol list */
    struct acl_host sni;
};

/* Reads in[0..len). Returns TLS_HELLO_PARSED with *out filled; TLS_HELLO_NEED_MORE or
 * TLS_HELLO_NOT_TLS; or TLS_HELLO_MALFORMED with *why set to a static reason. *out is zeroed
 * unless PARSED; *why is set to NULL unless MALFORMED. */
enum tls_hello_result tls_hello_parse(const uint8_t *in, size_t len, struct tls_hello *out,
                                      const char **why);

#endif
