/* proxyctl: the shared vocabulary of its files. The grammar (struct ctl_verb and its
 * parameter and option specs, as in OpenBSD relayctl's parser.c), the context one run
 * carries (struct ctl_ctx), the parsed call a verb handler receives (struct ctl_call), the
 * status every handler returns, and the handlers themselves, one group per ctl_cmd_*.c file.
 *
 * Handlers print their results to stdout and report failures into ctx->err; they never
 * exit. ctl_main.c alone turns a status into an exit code and prints ctx->err.
 */
#ifndef PX_CTL_CMD_H
#define PX_CTL_CMD_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

/* Statuses are the exit codes (docs/proxyctl.1, EXIT STATUS). */
enum ctl_status {
    CTL_OK = 0,          /* done */
    CTL_REFUSED = 1,     /* the API refused (4xx/5xx) or the thing does not exist */
    CTL_USAGE = 2,       /* bad arguments, found before asking the daemon */
    CTL_UNREACHABLE = 3, /* no HTTP answer from the admin URL */
    CTL_STATUS_COUNT
};

/* How an argument is checked before a handler sees it; a failed check is a usage error
 * naming the argument ("--before needs a rule id, got 'x'"). */
enum ctl_arg_type {
    ARG_FLAG,     /* option without a value */
    ARG_STRING,   /* anything non-empty */
    ARG_RULE_ID,  /* positive integer */
    ARG_COUNT,    /* positive integer (limits) */
    ARG_STATUS,   /* HTTP status 100..599 */
    ARG_DURATION, /* 30s, 15m, 1h, 2d: num holds milliseconds */
    ARG_IP,       /* IPv4 or IPv6 address */
    ARG_URL,      /* http:// or https:// URL */
    ARG_DOMAIN,   /* host name: letters, digits, '-', '.', '_' */
    ARG_NAME,     /* list or user name: letters, digits, '-', '.', '_', '@' */
    ARG_CHOICE,   /* one of spec->choices */
    ARG_METHOD,   /* HTTP method token */
    ARG_NUMBER,   /* integer >= 0 (policy versions, log ids) */
    ARG_TYPE_COUNT
};

/* "rule id", "duration like 30s, 15m, 1h or 2d", ... for messages. */
const char *ctl_arg_type_str(enum ctl_arg_type t);

/* A positional parameter. A repeated parameter takes the rest of the words. */
struct ctl_param {
    const char *metavar; /* "DOMAIN", "TEXT" */
    enum ctl_arg_type type;
    bool optional;
    bool repeated;
    const char *const *choices; /* ARG_CHOICE: NULL-terminated */
};

struct ctl_opt {
    const char *name; /* "--before" */
    enum ctl_arg_type type;
    const char *metavar; /* "ID"; NULL for flags */
    const char *help;
    const char *const *choices; /* ARG_CHOICE: NULL-terminated */
};

#define CTL_MAX_PARAMS 4
#define CTL_MAX_OPTS 10
#define CTL_MAX_WORDS 64

/* One parsed value. */
struct ctl_value {
    bool set;
    const char *str; /* borrowed from argv */
    long long num;   /* ARG_RULE_ID, ARG_COUNT, ARG_STATUS; ARG_DURATION in ms */
};

struct ctl_verb;

/* A verb call after parsing: positional words and option values, in table order. */
struct ctl_call {
    const struct ctl_verb *verb;
    const char *words[CTL_MAX_WORDS]; /* positionals, borrowed from argv */
    int nwords;
    long long word_num[CTL_MAX_WORDS];
    struct ctl_value opts[CTL_MAX_OPTS]; /* index = position in verb->opts */
};

struct ctl_http;

/* One run of proxyctl. */
struct ctl_ctx {
    const char *url;        /* admin API base, no trailing slash */
    const char *cacert;     /* PEM file of the CAs an https:// url is checked against, or
                               NULL for the system's */
    const char *token;      /* NULL until needed: see ctl_api_token() */
    const char *token_from; /* "--token", "PROXYCTL_TOKEN" or the token file's path */
    char token_path[4096];
    char token_buf[512];
    bool json;           /* --json: print the API's JSON */
    const char *message; /* --message: the policy version's message, or NULL */
    bool stdout_tty;
    const char *verb_name; /* "rules move", for messages */
    struct ctl_http *http; /* owned */
    char err[1024];        /* why the handler failed, without "proxyctl: " */
};

typedef enum ctl_status (*ctl_handler)(struct ctl_ctx *ctx, const struct ctl_call *call);

struct ctl_verb {
    const char *name;
    const char *sub; /* sub-verb or NULL */
    struct ctl_param params[CTL_MAX_PARAMS];
    struct ctl_opt opts[CTL_MAX_OPTS];
    ctl_handler run;
    const char *help; /* one line */
};

/* The value of option `name` in `call`, or NULL if the verb has no such option. */
const struct ctl_value *ctl_call_opt(const struct ctl_call *call, const char *name);

/* Fills ctx->err with "<verb>: <message>" and returns CTL_USAGE. */
enum ctl_status ctl_usage(struct ctl_ctx *ctx, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Fills ctx->err with the message and returns `st`. */
enum ctl_status ctl_fail(struct ctl_ctx *ctx, enum ctl_status st, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Local time "2026-11-25 14:03:09" of a Unix time in ms, into buf (at least 20 bytes). */
const char *ctl_time_str(long long time_ms, char *buf, size_t len);
/* "1.5 MiB", "812 B" into buf. */
const char *ctl_bytes_str(double bytes, char *buf, size_t len);
/* obj[key] as a number (0 if missing or not a number) or a string ("" if missing). */
long long ctl_json_num(const json_t *obj, const char *key);
const char *ctl_json_str(const json_t *obj, const char *key);
/* Prints a JSON value pretty to stdout (--json). */
void ctl_print_json(const json_t *v);
/* ctl_api() for a verb that shows the answer: with --json the answer is printed here, freed,
 * and *out is NULL; so is *out on failure. A caller returns the status when *out is NULL,
 * else shows *out its own way and json_decref()s it. */
enum ctl_status ctl_api_show(struct ctl_ctx *ctx, const char *method, const char *path,
                             const json_t *body, json_t **out, const char *what);
/* The end of a verb whose answer out (owned; freed here) says it was done: with --json the
 * answer is printed, else the sentence fmt. Returns CTL_OK. */
enum ctl_status ctl_print_done(struct ctl_ctx *ctx, json_t *out, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
struct ctl_column;
struct ctl_table;
/* ctl_api_show of a GET whose answer a verb shows as a table of ncols cols: *t is NULL when
 * there is nothing to show (--json printed it, or a failure was said) and the verb returns
 * the status; else *out is the answer and *t a new table, for the verb to fill from *out,
 * print (ctl_table_print) and json_decref. */
enum ctl_status ctl_api_table(struct ctl_ctx *ctx, const char *path, const struct ctl_column *cols,
                              size_t ncols, json_t **out, struct ctl_table **t);

/* ctl_cmd_rules.c */
enum ctl_status ctl_cmd_block(struct ctl_ctx *ctx, const struct ctl_call *call);
enum ctl_status ctl_cmd_unblock(struct ctl_ctx *ctx, const struct ctl_call *call);
enum ctl_status ctl_cmd_allow(struct ctl_ctx *ctx, const struct ctl_call *call);
enum ctl_status ctl_cmd_rules(struct ctl_ctx *ctx, const struct ctl_call *call);
enum ctl_status ctl_cmd_rules_add(struct ctl_ctx *ctx, const struct ctl_call *call);
enum ctl_status ctl_cmd_rules_del(struct ctl_ctx *ctx, const struct ctl_call *call);
enum ctl_status ctl_cmd_rules_enable(struct ctl_ctx *ctx, const struct ctl_call *call);
enum ctl_status ctl_cmd_rules_disable(struct ctl_ctx *ctx, const struct ctl_call *call);
enum ctl_status ctl_cmd_rules_report(struct ctl_ctx *ctx, const struct ctl_call *call);
enum ctl_status ctl_cmd_rules_enforce(struct ctl_ctx *ctx, const struct ctl_call *call);
enum ctl_status ctl_cmd_groups(struct ctl_ctx *ctx, const struct ctl_call *call);
enum ctl_status ctl_cmd_rules_move(struct ctl_ctx *ctx, const struct ctl_call *call);
enum ctl_status ctl_cmd_test(struct ctl_ctx *ctx, const struct ctl_call *call);

/* ctl_cmd_logs.c */
enum ctl_status ctl_cmd_logs(struct ctl_ctx *ctx, const struct ctl_call *call);
enum ctl_status ctl_cmd_top(struct ctl_ctx *ctx, const struct ctl_call *call);
enum ctl_status ctl_cmd_stats(struct ctl_ctx *ctx, const struct ctl_call *call);
enum ctl_status ctl_cmd_audit(struct ctl_ctx *ctx, const struct ctl_call *call);

/* ctl_cmd_policy.c */
enum ctl_status ctl_cmd_import(struct ctl_ctx *ctx, const struct ctl_call *call);
enum ctl_status ctl_cmd_export(struct ctl_ctx *ctx, const struct ctl_call *call);
enum ctl_status ctl_cmd_lists(struct ctl_ctx *ctx, const struct ctl_call *call);
enum ctl_status ctl_cmd_lists_show(struct ctl_ctx *ctx, const struct ctl_call *call);
enum ctl_status ctl_cmd_lists_del(struct ctl_ctx *ctx, const struct ctl_call *call);
enum ctl_status ctl_cmd_lists_import(struct ctl_ctx *ctx, const struct ctl_call *call);

/* ctl_cmd_subs.c */
enum ctl_status ctl_cmd_lists_subscribe(struct ctl_ctx *ctx, const struct ctl_call *call);
enum ctl_status ctl_cmd_lists_unsubscribe(struct ctl_ctx *ctx, const struct ctl_call *call);
enum ctl_status ctl_cmd_lists_subscriptions(struct ctl_ctx *ctx, const struct ctl_call *call);
enum ctl_status ctl_cmd_lists_refresh(struct ctl_ctx *ctx, const struct ctl_call *call);

/* ctl_cmd_versions.c */
enum ctl_status ctl_cmd_policy_log(struct ctl_ctx *ctx, const struct ctl_call *call);
enum ctl_status ctl_cmd_policy_show(struct ctl_ctx *ctx, const struct ctl_call *call);
enum ctl_status ctl_cmd_policy_diff(struct ctl_ctx *ctx, const struct ctl_call *call);
enum ctl_status ctl_cmd_policy_rollback(struct ctl_ctx *ctx, const struct ctl_call *call);
enum ctl_status ctl_cmd_why(struct ctl_ctx *ctx, const struct ctl_call *call);

/* ctl_cmd_requests.c */
enum ctl_status ctl_cmd_requests(struct ctl_ctx *ctx, const struct ctl_call *call);
enum ctl_status ctl_cmd_requests_approve(struct ctl_ctx *ctx, const struct ctl_call *call);
enum ctl_status ctl_cmd_requests_deny(struct ctl_ctx *ctx, const struct ctl_call *call);

/* ctl_cmd_users.c */
enum ctl_status ctl_cmd_users(struct ctl_ctx *ctx, const struct ctl_call *call);
enum ctl_status ctl_cmd_users_add(struct ctl_ctx *ctx, const struct ctl_call *call);
enum ctl_status ctl_cmd_users_passwd(struct ctl_ctx *ctx, const struct ctl_call *call);
enum ctl_status ctl_cmd_users_del(struct ctl_ctx *ctx, const struct ctl_call *call);
enum ctl_status ctl_cmd_admin_passwd(struct ctl_ctx *ctx, const struct ctl_call *call);
enum ctl_status ctl_cmd_admin_add(struct ctl_ctx *ctx, const struct ctl_call *call);
enum ctl_status ctl_cmd_admin_role(struct ctl_ctx *ctx, const struct ctl_call *call);
enum ctl_status ctl_cmd_admin_del(struct ctl_ctx *ctx, const struct ctl_call *call);
enum ctl_status ctl_cmd_token_add(struct ctl_ctx *ctx, const struct ctl_call *call);
enum ctl_status ctl_cmd_token_list(struct ctl_ctx *ctx, const struct ctl_call *call);
enum ctl_status ctl_cmd_token_del(struct ctl_ctx *ctx, const struct ctl_call *call);

/* ctl_cmd_policy.c: reads the whole file (NUL-terminated, at most the API's largest import);
 * NULL with ctx->err filled and *st set. */
char *ctl_read_file(struct ctl_ctx *ctx, const char *path, size_t *len, enum ctl_status *st);

/* ctl_cmd_ca.c */
enum ctl_status ctl_cmd_ca_init(struct ctl_ctx *ctx, const struct ctl_call *call);
enum ctl_status ctl_cmd_ca_import(struct ctl_ctx *ctx, const struct ctl_call *call);
enum ctl_status ctl_cmd_ca_show(struct ctl_ctx *ctx, const struct ctl_call *call);

/* ctl_cmd_forward.c */
enum ctl_status ctl_cmd_forward_list(struct ctl_ctx *ctx, const struct ctl_call *call);
enum ctl_status ctl_cmd_forward_add(struct ctl_ctx *ctx, const struct ctl_call *call);
enum ctl_status ctl_cmd_forward_del(struct ctl_ctx *ctx, const struct ctl_call *call);

/* ctl_cmd_daemon.c */
enum ctl_status ctl_cmd_reload(struct ctl_ctx *ctx, const struct ctl_call *call);
enum ctl_status ctl_cmd_version(struct ctl_ctx *ctx, const struct ctl_call *call);
enum ctl_status ctl_cmd_health(struct ctl_ctx *ctx, const struct ctl_call *call);
enum ctl_status ctl_cmd_nodes(struct ctl_ctx *ctx, const struct ctl_call *call);
enum ctl_status ctl_cmd_settings(struct ctl_ctx *ctx, const struct ctl_call *call);

#endif
