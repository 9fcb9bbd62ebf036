/* config: proxyd's settings. Every command-line flag has a config-file twin ("key value",
 * one per line, '#' comments), both parsed by one table so they cannot drift apart.
 * Parse errors come back as "file:line: what is wrong" in the caller's buffer. */
#ifndef PX_CONFIG_H
#define PX_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define CONFIG_MAX_LISTEN 8
#define CONFIG_MAX_UPSTREAM_CA 16
/* Every listening address of every kind (listen, listen-tls). */
#define CONFIG_MAX_LISTENERS (4 * CONFIG_MAX_LISTEN) /* listen, listen-tls, intercept, tproxy */
#define CONFIG_MAX_DNS 4
#define CONFIG_MAX_PORTS 32
#define CONFIG_MAX_ADMIN_HOSTS 16
#define CONFIG_MAX_FORWARDS 16

struct px_config {
    char *config_file;
    char *listen[CONFIG_MAX_LISTEN]; /* "127.0.0.1:3128", "[::1]:3128" */
    size_t nlisten;
    char *intercept[CONFIG_MAX_LISTEN]; /* listeners for connections redirected here */
    size_t nintercept;
    char *tproxy[CONFIG_MAX_LISTEN]; /* listeners for connections diverted here by TPROXY */
    size_t ntproxy;
    bool intercept_host_strict; /* refuse an intercepted request whose Host does not resolve to
                                   the address it was bound for */
    bool https_block_page;      /* with a CA: denied CONNECTs get the block page inside TLS */
    /* "LISTEN TARGET [clients CIDR,...]" (acl_forward_parse_line), checked when read */
    char *forwards[CONFIG_MAX_FORWARDS];
    size_t nforwards;
    char *listen_tls[CONFIG_MAX_LISTEN]; /* the proxy over TLS */
    size_t nlisten_tls;
    char *tls_cert;                            /* PEM files of the TLS listeners and admin-tls; */
    char *tls_key;                             /* NULL: the self-made pair in the data folder */
    char *upstream_ca[CONFIG_MAX_UPSTREAM_CA]; /* trusted for inspected origins, besides the
                                                  system's store */
    size_t nupstream_ca;
    char *admin; /* "127.0.0.1:8080" or "off" */
    bool admin_allow_remote;
    bool admin_tls; /* the admin server speaks HTTPS, with tls_cert/tls_key or the self-made */
    char *admin_hosts[CONFIG_MAX_ADMIN_HOSTS]; /* names the admin server answers to (Host) */
    size_t nadmin_hosts;
    char *metrics_allow; /* CIDRs that read /metrics without the token, besides loopback */
    char *node_name;     /* this node in every access row; NULL = the host name */
    char *data_dir;
    char *db_path;    /* default <data_dir>/proxyd.db */
    unsigned workers; /* 0 = number of CPUs */
    char *policy_file;
    uint16_t connect_ports[CONFIG_MAX_PORTS];
    size_t nconnect_ports;
    bool allow_loopback_targets;
    char *dns_servers[CONFIG_MAX_DNS];
    size_t ndns_servers;
    int log_level;
    char *allow_clients; /* CIDR list for the default action; NULL = private nets */
    char *via;           /* pseudonym in Via headers */
    char *contact;       /* contact line on block pages */
    char *pac_proxy;     /* address /proxy.pac hands out */
    char *static_dir;    /* admin pages and assets; NULL = PX_STATIC_DIR */
    char *user;          /* run as this user after binding, or NULL */
    char *squid_log;     /* classic access.log path, or NULL */
    char *syslog;        /* --syslog target, or NULL */
    bool access_log;     /* SQLite access log on */
    int64_t retention_days;
    int64_t expired_rule_days; /* an expired rule is deleted this many days later */
    int64_t retention_rows;
    unsigned log_spill_max_mb; /* PostgreSQL: cap of the log spill file, MB */
    /* limits */
    unsigned max_request_line;
    unsigned max_head_bytes;
    unsigned max_headers;
    unsigned max_connections;      /* per worker */
    unsigned max_conns_per_client; /* per client address, all workers; 0: no limit */
    /* timeouts, milliseconds */
    int header_timeout_ms;
    int idle_timeout_ms;
    int connect_timeout_ms;
    int origin_timeout_ms;
    int tunnel_idle_ms;
    int dns_timeout_ms;
    /* list subscriptions (web-admin/wa_subs.c, proxy/fetch.c) */
    int64_t list_max_bytes;     /* a fetched list's body at most */
    int list_fetch_timeout_ms;  /* one whole fetch, redirects included */
    int64_t sub_min_interval_s; /* the shortest interval a subscription may have */
    int64_t version_keep;       /* policy versions kept: the newest N (0: all) ... */
    int64_t version_keep_days;  /* ... and all younger than this */
};

enum config_parse { CONFIG_RUN, CONFIG_EXIT_HELP, CONFIG_EXIT_VERSION, CONFIG_EXIT_USAGE };

/* Fills cfg with the embedded defaults. */
void config_defaults(struct px_config *cfg);
/* Applies argv (and the --config file it names, flags winning over the file). Returns
 * CONFIG_RUN, CONFIG_EXIT_HELP or CONFIG_EXIT_VERSION when asked (the caller prints them),
 * or CONFIG_EXIT_USAGE with err filled. */
enum config_parse config_from_args(struct px_config *cfg, int argc, char **argv, char *err,
                                   size_t errlen);
void config_free(struct px_config *cfg);
/* Option `name`'s value in cfg as text: a string's ("" when unset), yes/no, a number;
 * "" for an unknown name or a list. */
void config_value_text(const struct px_config *cfg, const char *name, char *out, size_t outlen);
/* Writes --help to out: one line per entry of the option table, so no option is left out. */
void config_usage(FILE *out);
bool config_connect_port_allowed(const struct px_config *cfg, uint16_t port);

#endif
