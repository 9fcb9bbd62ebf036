/* fuzz_acl_forward: libFuzzer target for the port-forward parser (acl_forward_parse_line and
 * acl_forward_parse): config-file lines, and stored rows, which proxyd reads back from the
 * database whatever wrote them there.
 *
 * The input up to its first NUL byte (at most 4095 bytes) is the line.
 *
 * Invariants beyond "no crash":
 *   - a refused line says why (the message is not empty);
 *   - an accepted forward is within acl_forward.h's limits: listen 1..ACL_FORWARD_LISTEN_MAX
 *     bytes with a port, target port 1..65535 and its text at most ACL_FORWARD_TARGET_MAX
 *     bytes, at most ACL_FORWARD_MAX_CLIENTS networks whose text is at most
 *     ACL_FORWARD_CLIENTS_MAX bytes, no networks exactly when no client text;
 *   - it is canonical: its parts as stored (listen, target_text, clients_text and the TLS
 *     word and name) parse to the same forward (what the admin API stores, the proxy's poll
 *     reads back); its TLS mode is one of acl_forward.h's table;
 *   - a TLS name comes only with tls-target, and a tls-target forward to an address has one
 *     (it fails closed without), so there is always a name to verify for.
 *
 * Linked with fuzz_replay.c instead of libFuzzer, it replays the seed corpus in every build.
 */
#include "acl/acl_forward.h"
#include "fuzz_check.h"

#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static char line[4096];
    static struct acl_forward f, again;
    char msg[300] = "";

    if (size > sizeof(line) - 1)
        size = sizeof(line) - 1;
    memcpy(line, data, size);
    line[size] = '\0';
    if (acl_forward_parse_line(line, &f, msg, sizeof(msg)) != 0) {
        CHECK(msg[0] != '\0');
        return 0;
    }
    size_t listen_len = strlen(f.listen);
    CHECK(listen_len > 0 && listen_len <= ACL_FORWARD_LISTEN_MAX);
    CHECK(f.target_port >= 1);
    CHECK(strlen(f.target_text) <= ACL_FORWARD_TARGET_MAX);
    CHECK(f.target.len > 0 && f.target.len <= ACL_HOST_MAX);
    CHECK(f.nclients <= ACL_FORWARD_MAX_CLIENTS);
    CHECK(strlen(f.clients_text) <= ACL_FORWARD_CLIENTS_MAX);
    CHECK((f.nclients == 0) == (f.clients_text[0] == '\0'));

    msg[0] = '\0';
    CHECK(acl_forward_parse(f.listen, f.target_text, f.clients_text, &again, msg, sizeof(msg)) ==
          0);
    CHECK(strcmp(again.listen, f.listen) == 0);
    CHECK(memcmp(&again.listen_addr, &f.listen_addr, sizeof(f.listen_addr)) == 0);
    CHECK(strcmp(again.target_text, f.target_text) == 0 && again.target_port == f.target_port);
    CHECK(again.target.kind == f.target.kind && strcmp(again.target.text, f.target.text) == 0);
    CHECK(again.nclients == f.nclients &&
          memcmp(again.clients, f.clients, f.nclients * sizeof(f.clients[0])) == 0);
    CHECK(strcmp(again.clients_text, f.clients_text) == 0);
    CHECK((unsigned)f.tls < ACL_FORWARD_TLS_COUNT);
    CHECK(acl_forward_set_tls(&again, acl_forward_tls_str(f.tls), f.tls_name.text, msg,
                              sizeof(msg)) == 0 &&
          again.tls == f.tls);
    CHECK(again.tls_name.len == f.tls_name.len && !strcmp(again.tls_name.text, f.tls_name.text));
    CHECK(f.tls_name.len == 0 || f.tls == ACL_FORWARD_TLS_TARGET);
    CHECK(f.tls != ACL_FORWARD_TLS_TARGET || f.target.kind == ACL_HOST_NAME || f.tls_name.len > 0);
    CHECK(strlen(acl_forward_tls_host(&f)) > 0);
    return 0;
}
