/* acl_forward: parsing a port forward and its client check (see acl_forward.h). */
#include "acl/acl_forward.h"

#include <stdio.h>
#include <string.h>

#include "base/addr.h"
#include "base/status.h"

static const char *const TLS_WORDS[] = {
#define X(e, word) [e] = word,
    ACL_FORWARD_TLS_TABLE
#undef X
};

const char *acl_forward_tls_str(enum acl_forward_tls t)
{
    return (unsigned)t < ACL_FORWARD_TLS_COUNT ? TLS_WORDS[t] : "?";
}

int acl_forward_tls_parse(const char *word, enum acl_forward_tls *out, char *msg, size_t msglen)
{
    for (unsigned i = 0; i < ACL_FORWARD_TLS_COUNT; i++)
        if (!strcmp(word, TLS_WORDS[i])) {
            *out = (enum acl_forward_tls)i;
            return 0;
        }
    size_t n = (size_t)snprintf(msg, msglen, "tls '%.40s': expected", word);
    for (unsigned i = 1; i < ACL_FORWARD_TLS_COUNT && n < msglen; i++)
        n += (size_t)snprintf(msg + n, msglen - n, "%s '%s'", i > 1 ? " or" : "", TLS_WORDS[i]);
    if (n < msglen)
        snprintf(msg + n, msglen - n, " or nothing");
    return -1;
}

int acl_forward_set_tls(struct acl_forward *f, const char *word, const char *name, char *msg,
                        size_t msglen)
{
    const char *why = "";
    if (acl_forward_tls_parse(word, &f->tls, msg, msglen) < 0)
        return -1;
    memset(&f->tls_name, 0, sizeof(f->tls_name));
    if (name && *name) {
        if (f->tls != ACL_FORWARD_TLS_TARGET) {
            snprintf(msg, msglen, "tls-name: only with tls-target");
            return -1;
        }
        if (acl_host_parse(name, strlen(name), &f->tls_name, &why) < 0) {
            snprintf(msg, msglen, "tls-name '%.80s': %s", name, why);
            return -1;
        }
    } else if (f->tls == ACL_FORWARD_TLS_TARGET && f->target.kind != ACL_HOST_NAME) {
        snprintf(msg, msglen,
                 "tls-target to an address: give tls-name NAME, the name its certificate bears");
        return -1;
    }
    return 0;
}

const char *acl_forward_tls_host(const struct acl_forward *f)
{
    return f->tls_name.len ? f->tls_name.text : f->target.text;
}

/* "host:port" or "[v6]:port" into host[0..*hlen) and *port (1..65535). A bare IPv6 address
 * without brackets is refused: "::1:22" could be an address of its own. */
static int split_target(const char *t, const char **host, size_t *hlen, uint16_t *port)
{
    const char *colon;
    if (t[0] == '[') {
        const char *close = strchr(t, ']');
        if (!close || close[1] != ':')
            return -1;
        *host = t + 1;
        *hlen = (size_t)(close - t - 1);
        colon = close + 1;
    } else {
        colon = strrchr(t, ':');
        if (!colon || memchr(t, ':', (size_t)(colon - t)))
            return -1;
        *host = t;
        *hlen = (size_t)(colon - t);
    }
    const char *p = colon + 1;
    unsigned long v = 0;
    if (!*p || strlen(p) > 5)
        return -1;
    for (; *p; p++) {
        if (*p < '0' || *p > '9')
            return -1;
        v = v * 10 + (unsigned long)(*p - '0');
    }
    if (v == 0 || v > 65535 || *hlen == 0)
        return -1;
    *port = (uint16_t)v;
    return 0;
}

static int parse_clients(const char *clients, struct acl_forward *out, char *msg, size_t msglen)
{
    size_t len = strlen(clients);
    if (len > ACL_FORWARD_CLIENTS_MAX) {
        snprintf(msg, msglen, "clients: list longer than %d bytes", ACL_FORWARD_CLIENTS_MAX);
        return -1;
    }
    memcpy(out->clients_text, clients, len + 1);
    const char *p = clients, *end = clients + len;
    for (;;) {
        const char *comma = memchr(p, ',', (size_t)(end - p));
        const char *e = comma ? comma : end;
        if (out->nclients == ACL_FORWARD_MAX_CLIENTS) {
            snprintf(msg, msglen, "clients: more than %d networks", ACL_FORWARD_MAX_CLIENTS);
            return -1;
        }
        if (acl_cidr_parse(p, (size_t)(e - p), &out->clients[out->nclients]) != 0) {
            snprintf(msg, msglen, "clients: bad CIDR '%.*s'", (int)(e - p), p);
            return -1;
        }
        out->nclients++;
        if (!comma)
            return 0;
        p = comma + 1;
    }
}

int acl_forward_parse(const char *listen, const char *target, const char *clients,
                      struct acl_forward *out, char *msg, size_t msglen)
{
    socklen_t len;
    memset(out, 0, sizeof(*out));
    if (strlen(listen) > ACL_FORWARD_LISTEN_MAX ||
        addr_parse(listen, 0, &out->listen_addr, &len) != PX_OK ||
        addr_port(&out->listen_addr) == 0) {
        snprintf(msg, msglen, "listen address '%.80s': expected IP:PORT or [IPv6]:PORT", listen);
        return -1;
    }
    memcpy(out->listen, listen, strlen(listen) + 1);
    const char *host, *why = "";
    size_t hlen;
    if (strlen(target) > ACL_FORWARD_TARGET_MAX ||
        split_target(target, &host, &hlen, &out->target_port) < 0) {
        snprintf(msg, msglen, "target '%.80s': expected HOST:PORT or [IPv6]:PORT", target);
        return -1;
    }
    if (acl_host_parse(host, hlen, &out->target, &why) < 0) {
        snprintf(msg, msglen, "target '%.80s': %s", target, why);
        return -1;
    }
    bool v6 = out->target.kind == ACL_HOST_IPV6;
    snprintf(out->target_text, sizeof(out->target_text), "%s%s%s:%u", v6 ? "[" : "",
             out->target.text, v6 ? "]" : "", out->target_port);
    if (clients && *clients)
        return parse_clients(clients, out, msg, msglen);
    return 0;
}

/* The next word of *p (separated by spaces or tabs) into w; false when there is none. */
static bool next_word(const char **p, char *w, size_t cap, bool *too_long)
{
    const char *s = *p;
    while (*s == ' ' || *s == '\t')
        s++;
    size_t n = strcspn(s, " \t");
    *p = s + n;
    if (n == 0)
        return false;
    if (n >= cap) {
        *too_long = true;
        n = cap - 1;
    }
    memcpy(w, s, n);
    w[n] = '\0';
    return true;
}

int acl_forward_parse_line(const char *line, struct acl_forward *out, char *msg, size_t msglen)
{
    char listen[ACL_FORWARD_LISTEN_MAX + 2], target[ACL_FORWARD_TARGET_MAX + 2], key[16];
    char clients[ACL_FORWARD_CLIENTS_MAX + 2] = "", name[ACL_HOST_MAX + 2] = "";
    bool too_long = false, have_clients = false, have_tls = false, have_name = false;
    enum acl_forward_tls tls = ACL_FORWARD_TLS_NONE;
    const char *p = line;
    if (!next_word(&p, listen, sizeof(listen), &too_long) ||
        !next_word(&p, target, sizeof(target), &too_long)) {
        snprintf(msg, msglen,
                 "expected LISTEN_ADDR:PORT TARGET_HOST:PORT [clients CIDR,...] [tls-listen | "
                 "tls-target [tls-name NAME]]");
        return -1;
    }
    char tls_msg[2];
    while (next_word(&p, key, sizeof(key), &too_long)) {
        if (!strcmp(key, "clients") && !have_clients &&
            next_word(&p, clients, sizeof(clients), &too_long)) {
            have_clients = true;
        } else if (!strcmp(key, "tls-name") && !have_name &&
                   next_word(&p, name, sizeof(name), &too_long)) {
            have_name = true;
        } else if (*key && !have_tls && !too_long &&
                   acl_forward_tls_parse(key, &tls, tls_msg, sizeof(tls_msg)) == 0) {
            have_tls = true;
        } else {
            snprintf(msg, msglen,
                     "after the target: expected 'clients CIDR,...', 'tls-listen' or "
                     "'tls-target', 'tls-name NAME', each once");
            return -1;
        }
    }
    if (too_long) {
        snprintf(msg, msglen, "a part of the forward is too long");
        return -1;
    }
    if (acl_forward_parse(listen, target, clients, out, msg, msglen) < 0)
        return -1;
    return acl_forward_set_tls(out, acl_forward_tls_str(tls), name, msg, msglen);
}

bool acl_forward_client_allowed(const struct acl_forward *f, const struct sockaddr *client)
{
    uint8_t a[16];
    if (f->nclients == 0)
        return true;
    return acl_addr_from_sockaddr(client, a) && acl_cidr_list_contains(f->clients, f->nclients, a);
}
