/* acl_forward: a port forward as written by an admin, "LISTEN_ADDR:PORT TARGET_HOST:PORT
 * [clients CIDR,...] [tls-listen | tls-target [tls-name NAME]]", parsed once into the one form that
 * the config file, the admin API, the policy store and the proxy's listeners all use: the listen
 * address (numeric, as base/addr.h reads it), the target's canonical host (acl_host_parse) and
 * port, and the networks whose clients may use it (none listed: any client the policy admits).
 *
 * Pure: no sockets, no allocation, any thread. */
#ifndef PX_ACL_FORWARD_H
#define PX_ACL_FORWARD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "acl/acl_host.h"
#include "acl/acl_rule.h"

#define ACL_FORWARD_MAX_CLIENTS 32
#define ACL_FORWARD_LISTEN_MAX 63    /* "[ffff:...:ffff]:65535" fits with room */
#define ACL_FORWARD_TARGET_MAX 263   /* "[" host "]:" port */
#define ACL_FORWARD_CLIENTS_MAX 1535 /* the client list as text */

/* Where a forward speaks TLS. The word is the same in the config line, the admin API's "tls"
 * member, proxyctl and the store. */
#define ACL_FORWARD_TLS_TABLE                                                                      \
    X(ACL_FORWARD_TLS_NONE, "")             /* raw bytes both ways (spliced) */                    \
    X(ACL_FORWARD_TLS_LISTEN, "tls-listen") /* clients speak TLS to proxyd (its certificate);      \
                                               plain TCP to the target */                          \
    X(ACL_FORWARD_TLS_TARGET, "tls-target") /* plain TCP from clients; proxyd speaks TLS to the    \
                                               target and verifies its certificate */

enum acl_forward_tls {
#define X(e, word) e,
    ACL_FORWARD_TLS_TABLE
#undef X
        ACL_FORWARD_TLS_COUNT
};

/* The word of a TLS mode ("" for none); "?" for anything else. */
const char *acl_forward_tls_str(enum acl_forward_tls t);
/* The mode named by word ("" is none). Returns 0, or -1 with msg listing the words. */
int acl_forward_tls_parse(const char *word, enum acl_forward_tls *out, char *msg, size_t msglen);

struct acl_forward {
    char listen[ACL_FORWARD_LISTEN_MAX + 1]; /* as written, validated */
    struct sockaddr_storage listen_addr;
    struct acl_host target;                         /* canonical */
    uint16_t target_port;                           /* 1..65535 */
    char target_text[ACL_FORWARD_TARGET_MAX + 1];   /* canonical "host:port", "[v6]:port" */
    char clients_text[ACL_FORWARD_CLIENTS_MAX + 1]; /* "" or "CIDR,CIDR" as written */
    struct acl_cidr clients[ACL_FORWARD_MAX_CLIENTS];
    uint32_t nclients; /* 0: no list of its own */
    enum acl_forward_tls tls;
    /* tls-target: the name the target's certificate must bear, when not the target's host
     * (len 0). An address target has no name to verify: it needs one given. */
    struct acl_host tls_name;
};

/* Parses the three parts (clients may be NULL or ""); out->tls is NONE (acl_forward_set_tls
 * sets it). Returns 0 with *out filled, or -1 with msg naming the part and what is wrong
 * ("target '10.0.0.4': expected HOST:PORT"). */
int acl_forward_parse(const char *listen, const char *target, const char *clients,
                      struct acl_forward *out, char *msg, size_t msglen);

/* Sets f's TLS mode from its word and the expected name ("" or NULL: the target's host), as
 * the config line, the admin API and the store give them. Refused, with msg: an unknown word,
 * a name that is no host (acl_host_parse) or comes without tls-target, and tls-target to an
 * address without a name (nothing to verify its certificate for: fails closed). */
int acl_forward_set_tls(struct acl_forward *f, const char *word, const char *name, char *msg,
                        size_t msglen);
/* The name a tls-target forward verifies its target's certificate for (and sends as SNI). */
const char *acl_forward_tls_host(const struct acl_forward *f);

/* Parses one line "LISTEN TARGET [clients CIDR,...] [tls-listen | tls-target] [tls-name NAME]"
 * (the config file's `forward` value; the options in any order, each once). Returns 0, or -1
 * with msg. */
int acl_forward_parse_line(const char *line, struct acl_forward *out, char *msg, size_t msglen);

/* Whether client (AF_INET or AF_INET6) is one the forward's own list lets in: always when it
 * has none. The policy's client rules are weighed separately. */
bool acl_forward_client_allowed(const struct acl_forward *f, const struct sockaddr *client);

#endif
