/* config: one table of settings, read from flags and from the config file. */
#include "proxy/config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "acl/acl_forward.h"
#include "proxy/log.h"

enum opt_kind {
    OPT_STR,
    OPT_LIST,
    OPT_FORWARD,
    OPT_BOOL,
    OPT_UINT,
    OPT_MS,
    OPT_INT64,
    OPT_PORTS,
    OPT_LEVEL
};

struct opt {
    const char *name;
    enum opt_kind kind;
    size_t offset;
    size_t count_offset; /* OPT_LIST, OPT_FORWARD: where the count lives */
    size_t max;          /* OPT_LIST, OPT_FORWARD: capacity; OPT_UINT: upper bound */
    const char *help;
};

#define OFF(f) offsetof(struct px_config, f)
static const struct opt opts[] = {
    {"listen", OPT_LIST, OFF(listen), OFF(nlisten), CONFIG_MAX_LISTEN,
     "ADDR:PORT  proxy listener, repeatable (default 0.0.0.0:3128 and [::]:3128\n"
     "               unless listen-tls is given)"},
    {"listen-tls", OPT_LIST, OFF(listen_tls), OFF(nlisten_tls), CONFIG_MAX_LISTEN,
     "ADDR:PORT  proxy listener over TLS (PAC: HTTPS host:port), repeatable"},
    {"tls-cert", OPT_STR, OFF(tls_cert), 0, 0,
     "FILE  PEM certificate (chain) of listen-tls and admin-tls (default: one made at\n"
     "               first start, DATA-DIR/tls-cert.pem)"},
    {"tls-key", OPT_STR, OFF(tls_key), 0, 0,
     "FILE  its PEM private key (default DATA-DIR/tls-key.pem, made with it)"},
    {"upstream-ca", OPT_LIST, OFF(upstream_ca), OFF(nupstream_ca), CONFIG_MAX_UPSTREAM_CA,
     "FILE  PEM CA certificate(s) an inspected tunnel's origin may be issued by, besides the\n"
     "               system's store (an intranet's own CA), repeatable"},
    {"forward", OPT_FORWARD, OFF(forwards), OFF(nforwards), CONFIG_MAX_FORWARDS,
     "'ADDR:PORT HOST:PORT [clients CIDR,...] [tls-listen|tls-target] [tls-name NAME]'  port\n"
     "               forward: connections to ADDR:PORT relayed to HOST:PORT under the policy,\n"
     "               repeatable (tls-listen: clients speak TLS to ADDR:PORT; tls-target: proxyd\n"
     "               speaks TLS to HOST:PORT, verified for HOST or NAME; more: proxyctl forward)"},
    {"intercept", OPT_LIST, OFF(intercept), OFF(nintercept), CONFIG_MAX_LISTEN,
     "ADDR:PORT  listener for connections the gateway redirects here (nftables/iptables\n"
     "               redirect), repeatable; see docs/interception.md"},
    {"tproxy", OPT_LIST, OFF(tproxy), OFF(ntproxy), CONFIG_MAX_LISTEN,
     "ADDR:PORT  listener for connections the gateway diverts here with TPROXY (needs\n"
     "               CAP_NET_ADMIN), repeatable"},
    {"intercept-host-strict", OPT_BOOL, OFF(intercept_host_strict), 0, 0,
     "          refuse an intercepted HTTP request (409) or TLS connection (alert) whose Host\n"
     "               or server name does not resolve to the address it was bound for"},
    {"https-block-page", OPT_BOOL, OFF(https_block_page), 0, 0,
     "yes|no  with a local CA (proxyctl ca init), a denied HTTPS site gets the block page\n"
     "               inside TLS (default yes; the admin setting https_block_page wins)"},
    {"admin", OPT_STR, OFF(admin), 0, 0,
     "ADDR:PORT  admin server, or 'off' (default 127.0.0.1:8080)"},
    {"admin-allow-remote", OPT_BOOL, OFF(admin_allow_remote), 0, 0,
     "          allow a non-loopback admin address without admin-tls"},
    {"admin-tls", OPT_BOOL, OFF(admin_tls), 0, 0,
     "          the admin server over HTTPS only (tls-cert, tls-key); any admin address"},
    {"admin-host", OPT_LIST, OFF(admin_hosts), OFF(nadmin_hosts), CONFIG_MAX_ADMIN_HOSTS,
     "NAMES  more names the admin server answers to (Host; the /proxy.pac URL's), repeatable"},
    {"metrics-allow", OPT_STR, OFF(metrics_allow), 0, 0,
     "CIDRS  networks that read the admin server's /metrics without the token (loopback\n"
     "               always may)"},
    {"node-name", OPT_STR, OFF(node_name), 0, 0,
     "NAME  this proxyd in every access-log row, up to 63 bytes (default: the host name)"},
    {"data-dir", OPT_STR, OFF(data_dir), 0, 0,
     "DIR  database and admin token (default " PX_DATA_DIR ")"},
    {"db", OPT_STR, OFF(db_path), 0, 0,
     "DB  the database: an SQLite file (default DATA-DIR/proxyd.db), or PostgreSQL as a\n"
     "               postgresql:// URI or a libpq conninfo (docs/storage.md)"},
    {"workers", OPT_UINT, OFF(workers), 0, 256, "N  worker threads (default: number of CPUs)"},
    {"policy", OPT_STR, OFF(policy_file), 0, 0,
     "FILE  load this policy file into the store at start"},
    {"connect-ports", OPT_PORTS, OFF(connect_ports), OFF(nconnect_ports), CONFIG_MAX_PORTS,
     "LIST  ports CONNECT may reach (default 443)"},
    {"allow-loopback-targets", OPT_BOOL, OFF(allow_loopback_targets), 0, 0,
     "          let requests reach loopback origins (tests and benchmarks)"},
    {"dns-server", OPT_LIST, OFF(dns_servers), OFF(ndns_servers), CONFIG_MAX_DNS,
     "ADDR[:PORT]  DNS server, repeatable (default: /etc/resolv.conf)"},
    {"log-level", OPT_LEVEL, OFF(log_level), 0, 0,
     "LEVEL  error, warn, info, debug (default info)"},
    {"allow-clients", OPT_STR, OFF(allow_clients), 0, 0,
     "CIDRS  clients allowed by default (default: loopback and private networks)"},
    {"via", OPT_STR, OFF(via), 0, 0, "NAME  pseudonym in Via headers (default proxyd)"},
    {"contact", OPT_STR, OFF(contact), 0, 0, "TEXT  contact line on block pages"},
    {"pac-proxy", OPT_STR, OFF(pac_proxy), 0, 0,
     "HOST:PORT  proxy address in /proxy.pac (https://HOST:PORT: a listen-tls port)"},
    {"static-dir", OPT_STR, OFF(static_dir), 0, 0,
     "DIR  admin pages and assets (default " PX_STATIC_DIR ";\n"
     "               in a source tree: web-admin/static)"},
    {"user", OPT_STR, OFF(user), 0, 0,
     "NAME  started as root: bind the listeners, then run as this user (not under systemd,\n"
     "               whose unit sets the user)"},
    {"squid-log", OPT_STR, OFF(squid_log), 0, 0, "FILE  also write a Squid-format access.log"},
    {"syslog", OPT_STR, OFF(syslog), 0, 0,
     "TARGET  also send each access record as an RFC 5424 message to /dev/log (a local\n"
     "               socket), udp://HOST:PORT or tcp://HOST:PORT"},
    {"access-log", OPT_BOOL, OFF(access_log), 0, 0, "yes|no  SQLite access log (default yes)"},
    {"retention-days", OPT_INT64, OFF(retention_days), 0, 0,
     "N  delete log rows older (default 90)"},
    {"retention-rows", OPT_INT64, OFF(retention_rows), 0, 0,
     "N  keep at most N log rows (default 0: no limit)"},
    {"version-keep", OPT_INT64, OFF(version_keep), 0, 0,
     "N  keep the newest N policy versions, and every one a logged request names (default\n"
     "               100; 0: keep every version)"},
    {"version-keep-days", OPT_INT64, OFF(version_keep_days), 0, 0,
     "N  also keep every policy version younger than N days (default 30)"},
    {"log-spill-max", OPT_UINT, OFF(log_spill_max_mb), 0, 1048576,
     "MB  with a PostgreSQL --db: access-log rows it does not take wait in the data folder's\n"
     "               log-spill file, up to this size (default 256; rows beyond it are dropped)"},
    {"expired-rule-days", OPT_INT64, OFF(expired_rule_days), 0, 0,
     "N  delete a rule N days after its `expires` time (default 7; 0: at once)"},
    {"max-request-line", OPT_UINT, OFF(max_request_line), 0, 16384, "BYTES  (default 8192)"},
    {"max-head-bytes", OPT_UINT, OFF(max_head_bytes), 0, 24576,
     "BYTES  request head limit (default 16384)"},
    {"max-headers", OPT_UINT, OFF(max_headers), 0, 256, "N  (default 100)"},
    {"max-connections", OPT_UINT, OFF(max_connections), 0, 1000000,
     "N  per worker (default 16384)"},
    {"max-conns-per-client", OPT_UINT, OFF(max_conns_per_client), 0, 1000000,
     "N  connections one client address may hold (default 256; 0: no limit)"},
    {"header-timeout", OPT_MS, OFF(header_timeout_ms), 0, 0,
     "MS  to receive a request head (default 10000)"},
    {"idle-timeout", OPT_MS, OFF(idle_timeout_ms), 0, 0,
     "MS  idle keep-alive client (default 60000)"},
    {"connect-timeout", OPT_MS, OFF(connect_timeout_ms), 0, 0, "MS  origin connect (default 5000)"},
    {"origin-timeout", OPT_MS, OFF(origin_timeout_ms), 0, 0,
     "MS  origin silence mid-response (default 60000)"},
    {"tunnel-idle", OPT_MS, OFF(tunnel_idle_ms), 0, 0,
     "MS  idle CONNECT/WebSocket tunnel (default 600000)"},
    {"dns-timeout", OPT_MS, OFF(dns_timeout_ms), 0, 0, "MS  one name lookup (default 4000)"},
    {"list-max-bytes", OPT_INT64, OFF(list_max_bytes), 0, 0,
     "BYTES  a subscribed list's download at most (default 33554432)"},
    {"list-fetch-timeout", OPT_MS, OFF(list_fetch_timeout_ms), 0, 0,
     "MS  one subscribed list's download, redirects included (default 60000)"},
    {"subscription-min-interval", OPT_INT64, OFF(sub_min_interval_s), 0, 0,
     "SECONDS  the shortest interval of a list subscription (default 60; lower it only\n"
     "               for tests)"},
};
#undef OFF

void config_defaults(struct px_config *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->admin = strdup("127.0.0.1:8080");
    cfg->data_dir = strdup(PX_DATA_DIR);
    cfg->connect_ports[0] = 443;
    cfg->nconnect_ports = 1;
    cfg->log_level = LOG_LEVEL_INFO;
    cfg->via = strdup("proxyd");
    cfg->access_log = true;
    cfg->https_block_page = true;
    cfg->retention_days = 90;
    cfg->expired_rule_days = 7;
    cfg->log_spill_max_mb = 256;
    cfg->max_request_line = 8192;
    cfg->max_head_bytes = 16384;
    cfg->max_headers = 100;
    cfg->max_connections = 16384;
    cfg->max_conns_per_client = 256;
    cfg->header_timeout_ms = 10000;
    cfg->idle_timeout_ms = 60000;
    cfg->connect_timeout_ms = 5000;
    cfg->origin_timeout_ms = 60000;
    cfg->tunnel_idle_ms = 600000;
    cfg->dns_timeout_ms = 4000;
    cfg->list_max_bytes = 32 << 20;
    cfg->list_fetch_timeout_ms = 60000;
    cfg->sub_min_interval_s = 60;
    cfg->version_keep = 100;
    cfg->version_keep_days = 30;
}

void config_free(struct px_config *cfg)
{
    for (size_t i = 0; i < sizeof(opts) / sizeof(opts[0]); i++) {
        char *base = (char *)cfg + opts[i].offset;
        if (opts[i].kind == OPT_STR) {
            free(*(char **)base);
        } else if (opts[i].kind == OPT_LIST || opts[i].kind == OPT_FORWARD) {
            size_t n = *(size_t *)((char *)cfg + opts[i].count_offset);
            for (size_t j = 0; j < n; j++)
                free(((char **)base)[j]);
        }
    }
    free(cfg->config_file);
    memset(cfg, 0, sizeof(*cfg));
}

static bool parse_bool(const char *v, bool *out)
{
    if (!v || !strcasecmp(v, "yes") || !strcasecmp(v, "true") || !strcasecmp(v, "on") ||
        !strcmp(v, "1"))
        *out = true;
    else if (!strcasecmp(v, "no") || !strcasecmp(v, "false") || !strcasecmp(v, "off") ||
             !strcmp(v, "0"))
        *out = false;
    else
        return false;
    return true;
}

static bool parse_u64(const char *v, uint64_t max, uint64_t *out)
{
    if (!v || !*v || *v == '-')
        return false;
    char *end;
    errno = 0;
    unsigned long long x = strtoull(v, &end, 10);
    if (errno || *end || x > max)
        return false;
    *out = x;
    return true;
}

static const struct opt *opt_find(const char *name)
{
    for (size_t i = 0; i < sizeof(opts) / sizeof(opts[0]); i++)
        if (strcmp(opts[i].name, name) == 0)
            return &opts[i];
    return NULL;
}

/* OPT_UINT, OPT_MS and OPT_INT64 into base. 0, or -1 with err filled. */
static int set_number(void *base, const struct opt *o, const char *value, const char *where,
                      char *err, size_t errlen)
{
    uint64_t u;
    switch (o->kind) {
    case OPT_UINT:
        if (!parse_u64(value, o->max, &u)) {
            snprintf(err, errlen, "%s%s: expected a number up to %zu, got '%s'", where, o->name,
                     o->max, value);
            return -1;
        }
        *(unsigned *)base = (unsigned)u;
        return 0;
    case OPT_MS:
        if (!parse_u64(value, 86400000, &u) || u == 0) {
            snprintf(err, errlen, "%s%s: expected milliseconds (1..86400000), got '%s'", where,
                     o->name, value);
            return -1;
        }
        *(int *)base = (int)u;
        return 0;
    default: /* OPT_INT64 */
        if (!parse_u64(value, INT64_MAX, &u)) {
            snprintf(err, errlen, "%s%s: expected a number, got '%s'", where, o->name, value);
            return -1;
        }
        *(int64_t *)base = (int64_t)u;
        return 0;
    }
}

/* OPT_PORTS: a list of ports separated by commas or spaces, replacing the old one. */
static int set_ports(struct px_config *cfg, const struct opt *o, const char *value,
                     const char *where, char *err, size_t errlen)
{
    uint16_t *ports = (uint16_t *)((char *)cfg + o->offset);
    size_t *n = (size_t *)((char *)cfg + o->count_offset);
    char *copy = strdup(value), *save = NULL;
    uint64_t u;

    *n = 0;
    for (char *tok = strtok_r(copy, ", ", &save); tok; tok = strtok_r(NULL, ", ", &save)) {
        if (!parse_u64(tok, 65535, &u) || u == 0 || *n >= o->max) {
            snprintf(err, errlen, "%s%s: bad port '%s' (1..65535, at most %zu)", where, o->name,
                     tok, o->max);
            free(copy);
            return -1;
        }
        ports[(*n)++] = (uint16_t)u;
    }
    free(copy);
    return 0;
}

/* Sets one option; value is NULL for a bare boolean flag. "where" prefixes errors. */
static int config_set(struct px_config *cfg, const char *name, const char *value, const char *where,
                      char *err, size_t errlen)
{
    const struct opt *o = opt_find(name);
    if (!o) {
        snprintf(err, errlen, "%sunknown option '%s' (see --help)", where, name);
        return -1;
    }
    char *base = (char *)cfg + o->offset;
    if (!value && o->kind != OPT_BOOL) {
        snprintf(err, errlen, "%s%s needs a value", where, name);
        return -1;
    }
    switch (o->kind) {
    case OPT_STR:
        free(*(char **)base);
        *(char **)base = strdup(value);
        return 0;
    case OPT_FORWARD: {
        struct acl_forward f;
        char msg[300];
        if (acl_forward_parse_line(value, &f, msg, sizeof(msg)) < 0) {
            snprintf(err, errlen, "%s%s '%s': %s", where, name, value, msg);
            return -1;
        }
        __attribute__((fallthrough)); /* kept as text, like any list */
    }
    case OPT_LIST: {
        size_t *n = (size_t *)((char *)cfg + o->count_offset);
        if (*n >= o->max) {
            snprintf(err, errlen, "%s%s given more than %zu times", where, name, o->max);
            return -1;
        }
        ((char **)base)[(*n)++] = strdup(value);
        return 0;
    }
    case OPT_BOOL:
        if (!parse_bool(value, (bool *)base)) {
            snprintf(err, errlen, "%s%s: expected yes or no, got '%s'", where, name, value);
            return -1;
        }
        return 0;
    case OPT_UINT:
    case OPT_MS:
    case OPT_INT64:
        return set_number(base, o, value, where, err, errlen);
    case OPT_LEVEL: {
        int level = log_level_parse(value);
        if (level < 0) {
            snprintf(err, errlen, "%s%s: expected error, warn, info or debug, got '%s'", where,
                     name, value);
            return -1;
        }
        *(int *)base = level;
        return 0;
    }
    case OPT_PORTS:
        return set_ports(cfg, o, value, where, err, errlen);
    }
    return -1;
}

static int config_read_file(struct px_config *cfg, const char *path, char *err, size_t errlen)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return -1;
    }
    char line[4096], where[512];
    int lineno = 0, rc = 0;
    while (rc == 0 && fgets(line, sizeof(line), f)) {
        lineno++;
        char *hash = strchr(line, '#');
        if (hash)
            *hash = '\0';
        char *key = line + strspn(line, " \t\r\n");
        if (!*key)
            continue;
        char *end = key + strcspn(key, " \t\r\n");
        char *value = NULL;
        if (*end) {
            *end++ = '\0';
            value = end + strspn(end, " \t");
            size_t len = strlen(value);
            while (len && strchr(" \t\r\n", value[len - 1]))
                value[--len] = '\0';
            if (!*value)
                value = NULL;
        }
        snprintf(where, sizeof(where), "%s:%d: ", path, lineno);
        rc = config_set(cfg, key, value, where, err, errlen);
    }
    fclose(f);
    return rc;
}

void config_value_text(const struct px_config *cfg, const char *name, char *out, size_t outlen)
{
    const struct opt *o = opt_find(name);
    const char *base = o ? (const char *)cfg + o->offset : NULL;

    out[0] = '\0';
    if (!o)
        return;
    switch (o->kind) {
    case OPT_STR:
        snprintf(out, outlen, "%s", *(char *const *)base ? *(char *const *)base : "");
        break;
    case OPT_BOOL:
        snprintf(out, outlen, "%s", *(const bool *)base ? "yes" : "no");
        break;
    case OPT_UINT:
        snprintf(out, outlen, "%u", *(const unsigned *)base);
        break;
    case OPT_MS:
    case OPT_LEVEL:
        snprintf(out, outlen, "%d", *(const int *)base);
        break;
    case OPT_INT64:
        snprintf(out, outlen, "%lld", (long long)*(const int64_t *)base);
        break;
    default: /* lists: not asked for (no setting has a list twin) */
        break;
    }
}

void config_usage(FILE *out)
{
    fputs("usage: proxyd [options]\n"
          "A filtering HTTP/1.1 forward proxy.\n\n"
          "  --config FILE  read settings from FILE (\"key value\" lines, keys as below "
          "without --)\n"
          "  --help, --version\n",
          out);
    for (size_t i = 0; i < sizeof(opts) / sizeof(opts[0]); i++)
        fprintf(out, "  --%s %s\n", opts[i].name, opts[i].help);
}

/* A flag's value is the next argument unless the flag is boolean and the next argument
 * does not read as a boolean. */
static const char *flag_value(const char *name, int argc, char **argv, int *i)
{
    char *eq = strchr(argv[*i], '=');
    if (eq)
        return eq + 1;
    const struct opt *o = opt_find(name);
    bool is_bool = o && o->kind == OPT_BOOL;
    bool dummy;
    if (is_bool && !(*i + 1 < argc && parse_bool(argv[*i + 1], &dummy)))
        return NULL;
    if (*i + 1 < argc)
        return argv[++*i];
    return NULL;
}

enum config_parse config_from_args(struct px_config *cfg, int argc, char **argv, char *err,
                                   size_t errlen)
{
    /* The file first, so flags override it. */
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h"))
            return CONFIG_EXIT_HELP;
        if (!strcmp(argv[i], "--version"))
            return CONFIG_EXIT_VERSION;
        if (!strncmp(argv[i], "--config", 8) && (argv[i][8] == '\0' || argv[i][8] == '=')) {
            const char *v = argv[i][8] == '=' ? argv[i] + 9 : (i + 1 < argc ? argv[++i] : NULL);
            if (!v) {
                snprintf(err, errlen, "--config needs a file");
                return CONFIG_EXIT_USAGE;
            }
            free(cfg->config_file);
            cfg->config_file = strdup(v);
        }
    }
    if (cfg->config_file && config_read_file(cfg, cfg->config_file, err, errlen) < 0)
        return CONFIG_EXIT_USAGE;
    char name[64];
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        if (strncmp(arg, "--", 2) != 0) {
            snprintf(err, errlen, "unexpected argument '%s' (see --help)", arg);
            return CONFIG_EXIT_USAGE;
        }
        size_t len = strcspn(arg + 2, "=");
        if (len >= sizeof(name)) {
            snprintf(err, errlen, "unknown option '%s'", arg);
            return CONFIG_EXIT_USAGE;
        }
        memcpy(name, arg + 2, len);
        name[len] = '\0';
        if (!strcmp(name, "config")) {
            if (!strchr(arg, '='))
                i++;
            continue;
        }
        const char *value = flag_value(name, argc, argv, &i);
        if (config_set(cfg, name, value, "", err, errlen) < 0)
            return CONFIG_EXIT_USAGE;
    }
    if (!!cfg->tls_cert != !!cfg->tls_key) {
        snprintf(err, errlen, "tls-cert and tls-key go together: give both or neither");
        return CONFIG_EXIT_USAGE;
    }
    if (cfg->nlisten == 0 && cfg->nlisten_tls == 0) {
        cfg->listen[cfg->nlisten++] = strdup("0.0.0.0:3128");
        cfg->listen[cfg->nlisten++] = strdup("[::]:3128");
    }
    if (cfg->max_head_bytes < cfg->max_request_line)
        cfg->max_head_bytes = cfg->max_request_line;
    return CONFIG_RUN;
}

bool config_connect_port_allowed(const struct px_config *cfg, uint16_t port)
{
    for (size_t i = 0; i < cfg->nconnect_ports; i++)
        if (cfg->connect_ports[i] == port)
            return true;
    return false;
}
