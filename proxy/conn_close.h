/* conn_close: why a request or connection ended. One table gives each reason its enum
 * name, its text (the access log's error column) and, through worker stats, its counter. */
#ifndef PX_CONN_CLOSE_H
#define PX_CONN_CLOSE_H

/* X(ENUM, "text") */
#define CONN_CLOSE_TABLE                                                                           \
    X(CLOSE_NONE, "")                                                                              \
    X(CLOSE_CLIENT_EOF, "client-closed")                                                           \
    X(CLOSE_CLIENT_ERROR, "client-error")                                                          \
    X(CLOSE_CLIENT_TIMEOUT, "client-timeout")                                                      \
    X(CLOSE_IDLE_TIMEOUT, "idle-timeout")                                                          \
    X(CLOSE_TLS_HANDSHAKE, "tls-handshake-failed")                                                 \
    X(CLOSE_BAD_REQUEST, "bad-request")                                                            \
    X(CLOSE_DENIED, "denied")                                                                      \
    X(CLOSE_SNI_DENIED, "sni-denied")                                                              \
    X(CLOSE_BAD_HELLO, "bad-client-hello")                                                         \
    X(CLOSE_AUTH_REQUIRED, "auth-required")                                                        \
    X(CLOSE_DNS_NXDOMAIN, "dns-nxdomain")                                                          \
    X(CLOSE_DNS_FAILED, "dns-failed")                                                              \
    X(CLOSE_DNS_TIMEOUT, "dns-timeout")                                                            \
    X(CLOSE_TARGET_FORBIDDEN, "target-forbidden")                                                  \
    X(CLOSE_CONNECT_FAILED, "connect-failed")                                                      \
    X(CLOSE_CONNECT_TIMEOUT, "connect-timeout")                                                    \
    X(CLOSE_ORIGIN_TIMEOUT, "origin-timeout")                                                      \
    X(CLOSE_ORIGIN_EOF, "origin-closed-early")                                                     \
    X(CLOSE_ORIGIN_ERROR, "origin-error")                                                          \
    X(CLOSE_BAD_RESPONSE, "bad-response")                                                          \
    X(CLOSE_TUNNEL_IDLE, "tunnel-idle")                                                            \
    X(CLOSE_OVERLOAD, "overload")                                                                  \
    X(CLOSE_SHUTDOWN, "shutdown")

enum conn_close {
#define X(e, s) e,
    CONN_CLOSE_TABLE
#undef X
        CLOSE_COUNT
};

const char *conn_close_str(enum conn_close why);

#endif
