/* proxyctl: the admin's command line, a client of proxyd's admin JSON API (docs/api.md).
 *
 * The grammar is one table (verbs[] below, in the manner of OpenBSD relayctl's parser.c):
 * each row names a verb and sub-verb, its positional parameters and options with their
 * types, its handler and one line of help. Parsing, validation, usage lines and --help text
 * all come from that table, so a new verb is one row and one handler. This file also owns
 * the global options, the token file location and the only exit() of the program.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <locale.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "proxyctl/ctl_cmd.h"
#include "proxyctl/ctl_table.h"
#include "proxyctl/ctl_http.h"

#define DEFAULT_URL "http://127.0.0.1:8080"
#define DEFAULT_DATA_DIR PX_DATA_DIR /* "var", or /var/lib/proxyd in the package */

static const char *const grant_lengths[] = {"1h", "1d", "1w", "permanent", NULL};
static const char *const roles[] = {"admin", "operator", "viewer", NULL};
static const char *const top_kinds[] = {"domains", "clients", "blocked", NULL};

/* The grammar reads best as a table, one verb per block. */
/* clang-format off */
#define P(m, t) {.metavar = m, .type = t}
#define P_OPT(m, t) {.metavar = m, .type = t, .optional = true}
#define P_REST(m, t) {.metavar = m, .type = t, .repeated = true}
#define P_OPT_REST(m, t) {.metavar = m, .type = t, .optional = true, .repeated = true}
#define O(n, t, m, h) {.name = n, .type = t, .metavar = m, .help = h}
#define O_FLAG(n, h) {.name = n, .type = ARG_FLAG, .help = h}
#define O_PASSWORD_STDIN O_FLAG("--password-stdin", "read the password from standard input")
#define NO_PARAMS {{0}}
#define NO_OPTS {{0}}

static const struct ctl_verb verbs[] = {
    {"block", NULL, {P("DOMAIN", ARG_DOMAIN)},
     {O("--for", ARG_DURATION, "DUR", "only for DUR from now (30m, 2h, 7d): the rule expires"),
      O("--until", ARG_STRING, "TIME", "only until TIME (2026-12-24T18:00 local, or ...Z UTC)")},
     ctl_cmd_block, "deny DOMAIN and its subdomains (adds a rule at the top)"},
    {"unblock", NULL, {P("DOMAIN", ARG_DOMAIN)}, NO_OPTS, ctl_cmd_unblock,
     "delete the 'deny domain DOMAIN' rules"},
    {"allow", NULL, {P("DOMAIN", ARG_DOMAIN)},
     {O("--for", ARG_DURATION, "DUR", "only for DUR from now (30m, 2h, 7d): the rule expires"),
      O("--until", ARG_STRING, "TIME", "only until TIME (2026-12-24T18:00 local, or ...Z UTC)")},
     ctl_cmd_allow, "allow DOMAIN and its subdomains (adds a rule at the top)"},
    {"rules", NULL, NO_PARAMS, NO_OPTS, ctl_cmd_rules,
     "list the rules in priority order: id, position, on/off, hits, text, comment"},
    {"rules", "add", {P_REST("TEXT", ARG_STRING)},
     {O("--comment", ARG_STRING, "C", "a comment kept with the rule"),
      O_FLAG("--top", "put the rule first (default: last)"),
      O("--before", ARG_RULE_ID, "ID", "put the rule just before rule ID")},
     ctl_cmd_rules_add, "add a rule, e.g. 'deny url-regex ^https?://[^/]+/ads/'"},
    {"rules", "del", {P("ID", ARG_RULE_ID)}, NO_OPTS, ctl_cmd_rules_del, "delete rule ID"},
    {"rules", "enable", {P("ID", ARG_RULE_ID)}, NO_OPTS, ctl_cmd_rules_enable,
     "turn rule ID on"},
    {"rules", "disable", {P("ID", ARG_RULE_ID)}, NO_OPTS, ctl_cmd_rules_disable,
     "turn rule ID off (kept, never matches)"},
    {"rules", "report", {P("ID", ARG_RULE_ID)}, NO_OPTS, ctl_cmd_rules_report,
     "make 'deny' rule ID report only: requests pass, the log marks them (hits kept)"},
    {"rules", "enforce", {P("ID", ARG_RULE_ID)}, NO_OPTS, ctl_cmd_rules_enforce,
     "make 'report' rule ID deny again (hits kept)"},
    {"rules", "move", {P("ID", ARG_RULE_ID)},
     {O("--before", ARG_RULE_ID, "ID", "move the rule just before this rule"),
      O_FLAG("--end", "move the rule to the end")},
     ctl_cmd_rules_move, "change the priority of rule ID"},
    {"groups", NULL, NO_PARAMS, NO_OPTS, ctl_cmd_groups,
     "list the groups (policy lines 'group NAME MEMBERS'): id, on/off, name, members"},
    {"test", NULL, {P("URL", ARG_URL)},
     {O("--client", ARG_IP, "IP", "the client address to test as"),
      O("--user", ARG_STRING, "U", "the proxy user to test as"),
      O("--method", ARG_METHOD, "M", "the request method (default GET)")},
     ctl_cmd_test, "show which rule decides about URL, and why"},
    {"logs", NULL, NO_PARAMS,
     {O("--client", ARG_STRING, "IP", "only requests from this client"),
      O("--host", ARG_STRING, "H", "only requests to this host"),
      O("--grep", ARG_STRING, "TEXT", "only requests whose URL contains TEXT"),
      O("--node", ARG_STRING, "NAME", "only requests that node NAME relayed"),
      O_FLAG("--blocked", "only denied requests"),
      O("--status", ARG_STATUS, "N", "only answers with HTTP status N"),
      O("--since", ARG_DURATION, "DUR", "only the last DUR (30s, 15m, 1h, 2d)"),
      O("--limit", ARG_COUNT, "N", "at most N rows (default 100, at most 1000)"),
      O_FLAG("--follow", "keep printing new requests until interrupted"),
      O_FLAG("--csv", "every matching row as CSV, newest first (with --json: as JSON)")},
     ctl_cmd_logs, "show the access log, oldest first"},
    {"top", NULL,
     {{.metavar = "KIND", .type = ARG_CHOICE, .optional = true, .choices = top_kinds}},
     {O("--since", ARG_DURATION, "DUR", "only the last DUR (30s, 15m, 1h, 2d)"),
      O("--limit", ARG_COUNT, "N", "at most N rows"),
      O_FLAG("--report", "the domains that report rules would have denied"),
      O("--node", ARG_STRING, "NAME", "only requests that node NAME relayed")},
     ctl_cmd_top, "busiest domains (default), clients, or most blocked domains"},
    {"stats", NULL, NO_PARAMS, {O("--node", ARG_STRING, "NAME", "totals of node NAME's requests")},
     ctl_cmd_stats, "proxy counters and totals of the last 24 h"},
    {"import", NULL, {P("FILE", ARG_STRING)},
     {O("--list", ARG_NAME, "NAME", "import FILE as the domain list NAME"),
      O_FLAG("--replace", "replace the list NAME if it exists, or import FILE without domains")},
     ctl_cmd_import,
     "replace the policy with a policy FILE, or load a domain list (hosts, plain, adblock)"},
    {"export", NULL, NO_PARAMS, NO_OPTS, ctl_cmd_export, "print the policy as a policy file"},
    {"lists", NULL, NO_PARAMS, NO_OPTS, ctl_cmd_lists, "list the domain lists"},
    {"lists", "show", {P("NAME", ARG_NAME)}, NO_OPTS, ctl_cmd_lists_show,
     "print the entries of list NAME"},
    {"lists", "del", {P("NAME", ARG_NAME)}, NO_OPTS, ctl_cmd_lists_del, "delete list NAME"},
    {"lists", "import", {P("NAME", ARG_NAME), P("FILE", ARG_STRING)},
     {O_FLAG("--replace", "replace list NAME if it exists, or import FILE without domains")},
     ctl_cmd_lists_import, "load FILE (hosts, plain, adblock) as the domain list NAME"},
    {"lists", "subscribe", {P("NAME", ARG_NAME), P("URL", ARG_URL)},
     {O("--every", ARG_DURATION, "DUR", "fetch every DUR (default 24h; at least 1m)"),
      O_FLAG("--replace", "subscribe over the existing list NAME (each fetch replaces it)")},
     ctl_cmd_lists_subscribe, "keep list NAME as proxyd fetches it from URL on a schedule"},
    {"lists", "unsubscribe", {P("NAME", ARG_NAME)}, NO_OPTS, ctl_cmd_lists_unsubscribe,
     "stop fetching list NAME (the list stays)"},
    {"lists", "subscriptions", NO_PARAMS, NO_OPTS, ctl_cmd_lists_subscriptions,
     "the subscriptions: interval, last fetch, status, entries, URL, last error"},
    {"lists", "refresh", {P("NAME", ARG_NAME)}, NO_OPTS, ctl_cmd_lists_refresh,
     "fetch subscribed list NAME now and say how it went"},
    {"users", NULL, NO_PARAMS, NO_OPTS, ctl_cmd_users, "list the proxy users"},
    {"users", "add", {P("NAME", ARG_NAME)}, {O_PASSWORD_STDIN}, ctl_cmd_users_add,
     "create proxy user NAME (asks for the password)"},
    {"users", "passwd", {P("NAME", ARG_NAME)}, {O_PASSWORD_STDIN}, ctl_cmd_users_passwd,
     "change the password of proxy user NAME"},
    {"users", "del", {P("NAME", ARG_NAME)}, NO_OPTS, ctl_cmd_users_del,
     "delete proxy user NAME"},
    {"admin", "passwd", {P_OPT("NAME", ARG_NAME)}, {O_PASSWORD_STDIN}, ctl_cmd_admin_passwd,
     "set the password of dashboard admin NAME (default admin)"},
    {"admin", "add", {P("NAME", ARG_NAME)},
     {O("--role", ARG_STRING, "ROLE", "admin (default), operator or viewer"),
      O("--password-file", ARG_STRING, "F", "read the password from the first line of F"),
      O_PASSWORD_STDIN},
     ctl_cmd_admin_add, "add dashboard admin NAME with a role (refused if NAME exists)"},
    {"admin", "role",
     {P("NAME", ARG_NAME), {.metavar = "ROLE", .type = ARG_CHOICE, .choices = roles}}, NO_OPTS,
     ctl_cmd_admin_role, "give admin NAME the role admin, operator or viewer"},
    {"admin", "del", {P("NAME", ARG_NAME)}, NO_OPTS, ctl_cmd_admin_del,
     "delete dashboard admin NAME (never the last with the admin role)"},
    {"token", "add", {P("NAME", ARG_NAME)},
     {O("--owner", ARG_NAME, "ADMIN", "the admin it acts for (default: the caller's account)")},
     ctl_cmd_token_add, "make API token NAME; prints its secret, shown only this once"},
    {"token", "list", NO_PARAMS, NO_OPTS, ctl_cmd_token_list,
     "list the API tokens: name, owner, created, last used"},
    {"token", "del", {P("NAME", ARG_NAME)},
     {O("--owner", ARG_NAME, "ADMIN",
        "the admin whose token it is (needed when several have one of that name)")},
     ctl_cmd_token_del, "revoke API token NAME at once"},
    {"forward", "list", NO_PARAMS, NO_OPTS, ctl_cmd_forward_list,
     "list the port forwards: id, listen address, target, clients, when added"},
    {"forward", "add", {P("LISTEN", ARG_STRING), P("TARGET", ARG_STRING)},
     {O("--clients", ARG_STRING, "CIDR,...", "only these clients (default: whom the policy lets)"),
      O_FLAG("--tls-listen", "clients speak TLS to LISTEN (proxyd's certificate); plain to TARGET"),
      O_FLAG("--tls-target", "clients speak plain TCP; proxyd speaks TLS to TARGET, verified"),
      O("--tls-name", ARG_STRING, "NAME",
        "with --tls-target: the name TARGET's certificate bears (default: its host)")},
     ctl_cmd_forward_add,
     "relay connections to LISTEN (IP:PORT) to TARGET (HOST:PORT), open at once"},
    {"forward", "del", {P("ID", ARG_COUNT)}, NO_OPTS, ctl_cmd_forward_del,
     "delete forward ID and close its listener (its connections go on)"},
    {"ca", "init", NO_PARAMS,
     {O("--cn", ARG_STRING, "NAME", "the CA's name (default 'proxyd CA on HOST')")},
     ctl_cmd_ca_init, "make the local CA (HTTPS block pages), in use at once"},
    {"ca", "import", {P("CERT", ARG_STRING), P("KEY", ARG_STRING)},
     {O_FLAG("--replace", "replace the CA kept there (clients must then trust the new one)")},
     ctl_cmd_ca_import,
     "use an existing CA: its PEM certificate and unencrypted PEM key files"},
    {"ca", "show", NO_PARAMS, NO_OPTS, ctl_cmd_ca_show,
     "the local CA: name, SHA-256 fingerprint, expiry, certificates cached"},
    {"reload", NULL, NO_PARAMS, NO_OPTS, ctl_cmd_reload, "make proxyd recompile the policy"},
    {"version", NULL, NO_PARAMS, NO_OPTS, ctl_cmd_version, "versions of proxyctl and proxyd"},
    {"health", NULL, NO_PARAMS, NO_OPTS, ctl_cmd_health,
     "check that proxyd answers and its database works"},
    {"nodes", NULL, NO_PARAMS, NO_OPTS, ctl_cmd_nodes,
     "the proxyd nodes on this database, lagging ones marked"},
    {"audit", NULL, NO_PARAMS, {O("--limit", ARG_COUNT, "N", "at most N rows")}, ctl_cmd_audit,
     "who changed the policy, and when"},
    {"settings", NULL, {P_OPT_REST("KEY=VALUE", ARG_STRING)}, NO_OPTS, ctl_cmd_settings,
     "show the settings, or change them"},
    {"policy", "log", NO_PARAMS, {O("--limit", ARG_COUNT, "N", "at most N versions")},
     ctl_cmd_policy_log, "the policy versions: number, time, who, rules, message"},
    {"policy", "show", {P("V", ARG_NUMBER)}, NO_OPTS, ctl_cmd_policy_show,
     "print the rules of policy version V"},
    {"policy", "diff", {P("V1", ARG_NUMBER), P("V2", ARG_NUMBER)}, NO_OPTS, ctl_cmd_policy_diff,
     "the rules added, removed, changed and moved from version V1 to V2"},
    {"policy", "rollback", {P("V", ARG_NUMBER)}, NO_OPTS, ctl_cmd_policy_rollback,
     "put the rules of version V back in force (a new version)"},
    {"requests", NULL, NO_PARAMS,
     {O_FLAG("--all", "decided requests too (default: pending ones)"),
      O("--limit", ARG_COUNT, "N", "at most N requests")},
     ctl_cmd_requests, "access requests sent from block pages, newest first"},
    {"requests", "approve", {P("ID", ARG_NUMBER)},
     {O_FLAG("--client", "allow the host for the request's client address"),
      O_FLAG("--user", "allow the host for the request's proxy user"),
      O("--note", ARG_STRING, "TEXT", "a note kept with the decision and the rule"),
      {.name = "--for", .type = ARG_CHOICE, .metavar = "1h|1d|1w|permanent",
       .help = "how long the rule lasts (default permanent)", .choices = grant_lengths}},
     ctl_cmd_requests_approve,
     "allow the host for the requester: adds 'allow domain HOST clients|users ...' at the top"},
    {"requests", "deny", {P("ID", ARG_NUMBER)},
     {O("--reason", ARG_STRING, "TEXT", "why, kept with the decision")}, ctl_cmd_requests_deny,
     "deny access request ID"},
    {"why", NULL, {P("LOG_ID", ARG_NUMBER)}, NO_OPTS, ctl_cmd_why,
     "the policy version and rule that decided logged request LOG_ID"},
};
/* clang-format on */
#define NVERBS (sizeof(verbs) / sizeof(verbs[0]))

/* Global options: accepted before or after the verb. */
struct global_opts {
    const char *url;
    const char *token;
    const char *data_dir;
    const char *message;
    const char *cacert;
    bool json, help, version;
};

/* ---- helpers shared by the handlers (declared in ctl_cmd.h) ---- */

const char *ctl_arg_type_str(enum ctl_arg_type t)
{
    switch (t) {
    case ARG_FLAG:
        return "no value";
    case ARG_STRING:
        return "a value";
    case ARG_RULE_ID:
        return "a rule id";
    case ARG_COUNT:
        return "a positive number";
    case ARG_STATUS:
        return "an HTTP status (100-599)";
    case ARG_DURATION:
        return "a duration like 30s, 15m, 1h or 2d";
    case ARG_IP:
        return "an IP address";
    case ARG_URL:
        return "an http:// or https:// URL";
    case ARG_DOMAIN:
        return "a domain name like example.com";
    case ARG_NAME:
        return "a name (letters, digits, '.', '_', '-', '@')";
    case ARG_CHOICE:
        return "one of";
    case ARG_METHOD:
        return "an HTTP method like GET";
    case ARG_NUMBER:
        return "a number";
    case ARG_TYPE_COUNT:
        break;
    }
    return "?";
}

static void verb_label(const struct ctl_verb *v, char *buf, size_t len)
{
    snprintf(buf, len, "%s%s%s", v->name, v->sub ? " " : "", v->sub ? v->sub : "");
}

enum ctl_status ctl_usage(struct ctl_ctx *ctx, const char *fmt, ...)
{
    int n = snprintf(ctx->err, sizeof(ctx->err), "%s: ", ctx->verb_name ? ctx->verb_name : "");
    if (!ctx->verb_name)
        n = 0;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(ctx->err + n, sizeof(ctx->err) - (size_t)n, fmt, ap);
    va_end(ap);
    return CTL_USAGE;
}

enum ctl_status ctl_fail(struct ctl_ctx *ctx, enum ctl_status st, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(ctx->err, sizeof(ctx->err), fmt, ap);
    va_end(ap);
    return st;
}

const struct ctl_value *ctl_call_opt(const struct ctl_call *call, const char *name)
{
    for (int i = 0; i < CTL_MAX_OPTS && call->verb->opts[i].name; i++)
        if (strcmp(call->verb->opts[i].name, name) == 0)
            return &call->opts[i];
    return NULL;
}

const char *ctl_time_str(long long time_ms, char *buf, size_t len)
{
    time_t t = (time_t)(time_ms / 1000);
    struct tm tm;
    if (time_ms <= 0 || !localtime_r(&t, &tm) || !strftime(buf, len, "%Y-%m-%d %H:%M:%S", &tm))
        snprintf(buf, len, "-");
    return buf;
}

const char *ctl_bytes_str(double bytes, char *buf, size_t len)
{
    static const char *const units[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB"};
    size_t u = 0;
    while (bytes >= 1024.0 && u + 1 < sizeof(units) / sizeof(units[0])) {
        bytes /= 1024.0;
        u++;
    }
    if (u == 0)
        snprintf(buf, len, "%.0f B", bytes);
    else
        snprintf(buf, len, "%.1f %s", bytes, units[u]);
    return buf;
}

long long ctl_json_num(const json_t *obj, const char *key)
{
    const json_t *v = json_object_get(obj, key);
    if (json_is_integer(v))
        return (long long)json_integer_value(v);
    if (json_is_real(v))
        return (long long)json_real_value(v);
    return 0;
}

const char *ctl_json_str(const json_t *obj, const char *key)
{
    const char *s = json_string_value(json_object_get(obj, key));
    return s ? s : "";
}

void ctl_print_json(const json_t *v)
{
    char *s = json_dumps(v, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_ENCODE_ANY);
    if (s) {
        puts(s);
        free(s);
    }
}

enum ctl_status ctl_api_show(struct ctl_ctx *ctx, const char *method, const char *path,
                             const json_t *body, json_t **out, const char *what)
{
    enum ctl_status st = ctl_api(ctx, method, path, body, out, what);
    if (st == CTL_OK && ctx->json) {
        ctl_print_json(*out);
        json_decref(*out);
        *out = NULL;
    }
    return st;
}

enum ctl_status ctl_print_done(struct ctl_ctx *ctx, json_t *out, const char *fmt, ...)
{
    if (ctx->json) {
        ctl_print_json(out);
    } else {
        va_list ap;
        va_start(ap, fmt);
        vprintf(fmt, ap);
        va_end(ap);
    }
    json_decref(out);
    return CTL_OK;
}

enum ctl_status ctl_api_table(struct ctl_ctx *ctx, const char *path, const struct ctl_column *cols,
                              size_t ncols, json_t **out, struct ctl_table **t)
{
    enum ctl_status st = ctl_api_show(ctx, "GET", path, NULL, out, NULL);

    *t = NULL;
    if (!*out)
        return st;
    *t = ctl_table_new(cols, ncols);
    if (!*t) {
        json_decref(*out);
        *out = NULL;
        return ctl_fail(ctx, CTL_REFUSED, "out of memory");
    }
    return CTL_OK;
}

/* ---- argument checks ---- */

static bool parse_number(const char *s, long long lo, long long hi, long long *out)
{
    if (!*s || !isdigit((unsigned char)*s))
        return false;
    errno = 0;
    char *end;
    long long n = strtoll(s, &end, 10);
    if (errno || *end || n < lo || n > hi)
        return false;
    *out = n;
    return true;
}

static bool parse_duration(const char *s, long long *ms)
{
    size_t n = strlen(s);
    if (n < 2)
        return false;
    long long unit;
    switch (s[n - 1]) {
    case 's':
        unit = 1000;
        break;
    case 'm':
        unit = 60 * 1000;
        break;
    case 'h':
        unit = 3600 * 1000;
        break;
    case 'd':
        unit = 86400 * 1000;
        break;
    default:
        return false;
    }
    char num[24];
    if (n - 1 >= sizeof(num))
        return false;
    memcpy(num, s, n - 1);
    num[n - 1] = '\0';
    long long v;
    if (!parse_number(num, 1, 100LL * 365 * 86400, &v))
        return false;
    *ms = v * unit;
    return true;
}

static bool is_domain(const char *s)
{
    size_t n = strlen(s);
    bool label = false;
    if (n == 0 || n > 253)
        return false;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (isalnum(*p) || *p >= 0x80 || *p == '_')
            label = true;
        else if (*p != '-' && *p != '.')
            return false;
    }
    return label;
}

static bool is_name(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 64)
        return false;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        if (!isalnum(*p) && !strchr("._-@", *p))
            return false;
    return true;
}

static bool is_url(const char *s)
{
    const char *rest;
    if (strncasecmp(s, "http://", 7) == 0)
        rest = s + 7;
    else if (strncasecmp(s, "https://", 8) == 0)
        rest = s + 8;
    else
        return false;
    if (!*rest || *rest == '/' || *rest == ':')
        return false;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        if (*p <= 0x20 || *p == 0x7f)
            return false;
    return true;
}

static bool is_ip(const char *s)
{
    unsigned char addr[16];
    return inet_pton(AF_INET, s, addr) == 1 || inet_pton(AF_INET6, s, addr) == 1;
}

static bool is_method(const char *s)
{
    if (!*s || strlen(s) > 32)
        return false;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        if (!isalpha(*p) && *p != '-')
            return false;
    return true;
}

/* Checks one value; on failure fills ctx->err naming `what` ("--before" or "ID"). */
static bool check_value(struct ctl_ctx *ctx, enum ctl_arg_type type, const char *const *choices,
                        const char *what, const char *s, long long *num)
{
    /* "--before needs a rule id" but "ID must be a rule id". */
    const char *verb = what[0] == '-' ? "needs" : "must be";
    bool ok = false;
    *num = 0;
    switch (type) {
    case ARG_FLAG:
        ok = true;
        break;
    case ARG_STRING:
        ok = *s != '\0';
        break;
    case ARG_RULE_ID:
        ok = parse_number(s, 1, INT_MAX, num);
        break;
    case ARG_COUNT:
        ok = parse_number(s, 1, 1000000, num);
        break;
    case ARG_STATUS:
        ok = parse_number(s, 100, 599, num);
        break;
    case ARG_DURATION:
        ok = parse_duration(s, num);
        break;
    case ARG_IP:
        ok = is_ip(s);
        break;
    case ARG_URL:
        ok = is_url(s);
        break;
    case ARG_DOMAIN:
        ok = is_domain(s);
        break;
    case ARG_NAME:
        ok = is_name(s);
        break;
    case ARG_METHOD:
        ok = is_method(s);
        break;
    case ARG_NUMBER:
        ok = parse_number(s, 0, LLONG_MAX, num);
        break;
    case ARG_CHOICE:
        for (int i = 0; choices[i]; i++)
            if (strcmp(choices[i], s) == 0) {
                *num = i;
                ok = true;
            }
        if (!ok) {
            char list[256] = "";
            for (int i = 0; choices[i]; i++)
                snprintf(list + strlen(list), sizeof(list) - strlen(list), "%s%s", i ? ", " : "",
                         choices[i]);
            ctl_usage(ctx, "%s %s one of %s, got '%s'", what, verb, list, s);
        }
        return ok;
    case ARG_TYPE_COUNT:
        break;
    }
    if (!ok)
        ctl_usage(ctx, "%s %s %s, got '%s'", what, verb, ctl_arg_type_str(type), s);
    return ok;
}

/* ---- help, generated from the table ---- */

static void usage_line(const struct ctl_verb *v, char *buf, size_t len)
{
    size_t n = 0;
    verb_label(v, buf, len);
    n = strlen(buf);
    for (int i = 0; i < CTL_MAX_PARAMS && v->params[i].metavar && n < len; i++) {
        const struct ctl_param *p = &v->params[i];
        n += (size_t)snprintf(buf + n, len - n, p->optional ? " [%s%s]" : " %s%s", p->metavar,
                              p->repeated ? "..." : "");
    }
    for (int i = 0; i < CTL_MAX_OPTS && v->opts[i].name && n < len; i++) {
        const struct ctl_opt *o = &v->opts[i];
        n += (size_t)snprintf(buf + n, len - n, " [%s%s%s]", o->name, o->metavar ? " " : "",
                              o->metavar ? o->metavar : "");
    }
}

static const char global_usage[] =
    "global options (before or after the verb):\n"
    "  --url URL        admin API of proxyd (default " DEFAULT_URL ", env PROXYCTL_URL)\n"
    "  --token TOKEN    admin token (env PROXYCTL_TOKEN; default: DIR/admin.token)\n"
    "  --data-dir DIR   proxyd's data folder (env PROXYD_DATA_DIR, default " DEFAULT_DATA_DIR ")\n"
    "  --cacert FILE    certificate to trust for an https:// URL (env PROXYCTL_CACERT;\n"
    "                   default: DIR/tls-cert.pem if it exists, else the system's CAs)\n"
    "  --json           print the API's JSON answer\n"
    "  --message MSG    the message of the policy version a change makes\n"
    "  -h, --help       help for proxyctl or for one verb\n"
    "  --version        print proxyctl's version\n"
    "exit status: 0 ok, 1 refused or not found, 2 usage error, 3 cannot reach proxyd\n";

static void print_help(FILE *out)
{
    fprintf(out, "usage: proxyctl [global options] VERB [ARGUMENTS] [--help]\n\n"
                 "Command line for proxyd, the filtering HTTP proxy, through its admin API.\n\n"
                 "verbs:\n");
    for (size_t i = 0; i < NVERBS; i++) {
        char line[256];
        usage_line(&verbs[i], line, sizeof(line));
        if (strlen(line) > 34) {
            fprintf(out, "  %s\n  %-34s  %s\n", line, "", verbs[i].help);
        } else {
            fprintf(out, "  %-34s  %s\n", line, verbs[i].help);
        }
    }
    fprintf(out, "\n%s", global_usage);
}

static void print_verb_help(FILE *out, const struct ctl_verb *v)
{
    char line[512];
    usage_line(v, line, sizeof(line));
    fprintf(out, "usage: proxyctl %s\n\n%s\n", line, v->help);
    if (v->opts[0].name) {
        fprintf(out, "\noptions:\n");
        for (int i = 0; i < CTL_MAX_OPTS && v->opts[i].name; i++) {
            const struct ctl_opt *o = &v->opts[i];
            snprintf(line, sizeof(line), "%s%s%s", o->name, o->metavar ? " " : "",
                     o->metavar ? o->metavar : "");
            fprintf(out, "  %-18s %s\n", line, o->help);
        }
    }
    bool subs = false;
    for (size_t i = 0; i < NVERBS; i++) {
        if (v->sub || strcmp(verbs[i].name, v->name) != 0 || !verbs[i].sub)
            continue;
        if (!subs)
            fprintf(out, "\nsub-verbs:\n");
        subs = true;
        usage_line(&verbs[i], line, sizeof(line));
        fprintf(out, "  proxyctl %s\n      %s\n", line, verbs[i].help);
    }
    fprintf(out, "\n%s", global_usage);
}

/* "add, del, enable" or "" */
static void sub_verbs_of(const char *name, char *buf, size_t len)
{
    buf[0] = '\0';
    for (size_t i = 0; i < NVERBS; i++)
        if (verbs[i].sub && strcmp(verbs[i].name, name) == 0)
            snprintf(buf + strlen(buf), len - strlen(buf), "%s%s", buf[0] ? ", " : "",
                     verbs[i].sub);
}

/* ---- parsing ---- */

/* Takes the global options out of argv; everything else lands in words[] in order. */
static enum ctl_status take_globals(struct ctl_ctx *ctx, int argc, char **argv,
                                    struct global_opts *g, const char **words, int *nwords)
{
    static const char *const with_value[] = {"--url", "--token", "--data-dir", "--message",
                                             "--cacert"};
    bool rest = false;
    *nwords = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (rest || strncmp(a, "--", 2) != 0 || strcmp(a, "--") == 0) {
            if (strcmp(a, "-h") == 0 && !rest) {
                g->help = true;
                continue;
            }
            if (strcmp(a, "--") == 0)
                rest = true;
            if (*nwords == CTL_MAX_WORDS)
                return ctl_fail(ctx, CTL_USAGE, "too many arguments (at most %d)", CTL_MAX_WORDS);
            words[(*nwords)++] = a;
            continue;
        }
        if (strcmp(a, "--json") == 0) {
            g->json = true;
            continue;
        }
        if (strcmp(a, "--help") == 0) {
            g->help = true;
            continue;
        }
        if (strcmp(a, "--version") == 0) {
            g->version = true;
            continue;
        }
        bool taken = false;
        for (size_t k = 0; k < sizeof(with_value) / sizeof(with_value[0]); k++) {
            size_t n = strlen(with_value[k]);
            if (strncmp(a, with_value[k], n) != 0 || (a[n] != '\0' && a[n] != '='))
                continue;
            const char *val = a[n] == '=' ? a + n + 1 : (i + 1 < argc ? argv[++i] : NULL);
            if (!val || !*val)
                return ctl_fail(ctx, CTL_USAGE, "%s needs a value", with_value[k]);
            if (k == 0)
                g->url = val;
            else if (k == 1)
                g->token = val;
            else if (k == 2)
                g->data_dir = val;
            else if (k == 3)
                g->message = val;
            else
                g->cacert = val;
            taken = true;
        }
        if (taken)
            continue;
        if (*nwords == CTL_MAX_WORDS)
            return ctl_fail(ctx, CTL_USAGE, "too many arguments (at most %d)", CTL_MAX_WORDS);
        words[(*nwords)++] = a; /* a verb option, checked against the verb's table */
    }
    return CTL_OK;
}

static const struct ctl_verb *find_verb(const char *name, const char *sub)
{
    for (size_t i = 0; i < NVERBS; i++) {
        if (strcmp(verbs[i].name, name) != 0)
            continue;
        if ((sub == NULL && verbs[i].sub == NULL) ||
            (sub && verbs[i].sub && strcmp(verbs[i].sub, sub) == 0))
            return &verbs[i];
    }
    return NULL;
}

static bool verb_exists(const char *name)
{
    for (size_t i = 0; i < NVERBS; i++)
        if (strcmp(verbs[i].name, name) == 0)
            return true;
    return false;
}

static enum ctl_status unknown_verb(struct ctl_ctx *ctx, const char *word)
{
    char list[512] = "";
    for (size_t i = 0; i < NVERBS; i++)
        if (i == 0 || strcmp(verbs[i - 1].name, verbs[i].name) != 0)
            snprintf(list + strlen(list), sizeof(list) - strlen(list), "%s%s", list[0] ? " " : "",
                     verbs[i].name);
    return ctl_fail(ctx, CTL_USAGE, "unknown verb '%s'; verbs: %s (see proxyctl --help)", word,
                    list);
}

/* Matches words (after the verb) against the verb's parameters and options. */
static enum ctl_status parse_call(struct ctl_ctx *ctx, const struct ctl_verb *v, const char **words,
                                  int nwords, struct ctl_call *call)
{
    memset(call, 0, sizeof(*call));
    call->verb = v;
    bool rest = false;
    for (int i = 0; i < nwords; i++) {
        const char *w = words[i];
        if (!rest && strcmp(w, "--") == 0) {
            rest = true;
            continue;
        }
        if (rest || strncmp(w, "--", 2) != 0) {
            call->words[call->nwords++] = w;
            continue;
        }
        const char *eq = strchr(w, '=');
        size_t nlen = eq ? (size_t)(eq - w) : strlen(w);
        int k;
        for (k = 0; k < CTL_MAX_OPTS && v->opts[k].name; k++)
            if (strlen(v->opts[k].name) == nlen && strncmp(v->opts[k].name, w, nlen) == 0)
                break;
        if (k == CTL_MAX_OPTS || !v->opts[k].name) {
            char list[256] = "";
            for (int j = 0; j < CTL_MAX_OPTS && v->opts[j].name; j++)
                snprintf(list + strlen(list), sizeof(list) - strlen(list), " %s", v->opts[j].name);
            if (list[0])
                return ctl_usage(ctx, "unknown option '%.*s'; options:%s", (int)nlen, w, list);
            return ctl_usage(ctx, "unknown option '%.*s'; this verb takes no options", (int)nlen,
                             w);
        }
        const struct ctl_opt *o = &v->opts[k];
        struct ctl_value *val = &call->opts[k];
        if (o->type == ARG_FLAG) {
            if (eq)
                return ctl_usage(ctx, "%s takes no value, got '%s'", o->name, eq + 1);
            val->set = true;
            continue;
        }
        const char *s = eq ? eq + 1 : (i + 1 < nwords ? words[++i] : NULL);
        if (!s)
            return ctl_usage(ctx, "%s needs %s", o->name, ctl_arg_type_str(o->type));
        if (!check_value(ctx, o->type, o->choices, o->name, s, &val->num))
            return CTL_USAGE;
        val->set = true;
        val->str = s;
    }

    int w = 0;
    for (int p = 0; p < CTL_MAX_PARAMS && v->params[p].metavar; p++) {
        const struct ctl_param *par = &v->params[p];
        if (w >= call->nwords) {
            if (par->optional)
                break;
            char line[256];
            usage_line(v, line, sizeof(line));
            return ctl_usage(ctx, "missing %s (usage: proxyctl %s)", par->metavar, line);
        }
        do {
            if (!check_value(ctx, par->type, par->choices, par->metavar, call->words[w],
                             &call->word_num[w]))
                return CTL_USAGE;
            w++;
        } while (par->repeated && w < call->nwords);
    }
    if (w < call->nwords) {
        char subs[256];
        sub_verbs_of(v->name, subs, sizeof(subs));
        if (w == 0 && !v->sub && subs[0])
            return ctl_usage(ctx, "unknown sub-verb '%s'; sub-verbs: %s", call->words[w], subs);
        return ctl_usage(ctx, "unexpected argument '%s'", call->words[w]);
    }
    return CTL_OK;
}

static int finish(struct ctl_ctx *ctx, enum ctl_status st)
{
    if (st != CTL_OK && ctx->err[0])
        fprintf(stderr, "proxyctl: %s\n", ctx->err);
    ctl_http_free(ctx->http);
    fflush(stdout);
    if (ferror(stdout) && st == CTL_OK) {
        fprintf(stderr, "proxyctl: cannot write the output\n");
        st = CTL_REFUSED;
    }
    return (int)st;
}

int main(int argc, char **argv)
{
    static struct ctl_ctx ctx;
    struct global_opts g = {0};
    const char *words[CTL_MAX_WORDS];
    int nwords;

    setlocale(LC_CTYPE, "");
    enum ctl_status st = take_globals(&ctx, argc, argv, &g, words, &nwords);
    if (st != CTL_OK)
        return finish(&ctx, st);
    if (g.version) {
        printf("proxyctl %s\n", PX_VERSION);
        return finish(&ctx, CTL_OK);
    }

    /* "help VERB [SUB]" reads like "VERB [SUB] --help". */
    if (nwords > 0 && strcmp(words[0], "help") == 0) {
        g.help = true;
        memmove(words, words + 1, (size_t)(nwords - 1) * sizeof(words[0]));
        nwords--;
    }
    if (nwords == 0) {
        print_help(g.help ? stdout : stderr);
        return finish(&ctx, g.help ? CTL_OK : CTL_USAGE);
    }
    if (!verb_exists(words[0]))
        return finish(&ctx, unknown_verb(&ctx, words[0]));
    const struct ctl_verb *v = NULL;
    int used = 1;
    if (nwords > 1)
        v = find_verb(words[0], words[1]);
    if (v)
        used = 2;
    else
        v = find_verb(words[0], NULL);
    char label[64];
    if (!v) {
        char subs[256];
        sub_verbs_of(words[0], subs, sizeof(subs));
        if (g.help) {
            printf("usage: proxyctl %s SUB-VERB ...; sub-verbs: %s\n", words[0], subs);
            for (size_t i = 0; i < NVERBS; i++)
                if (strcmp(verbs[i].name, words[0]) == 0) {
                    usage_line(&verbs[i], label, sizeof(label));
                    printf("  proxyctl %s\n      %s\n", label, verbs[i].help);
                }
            return finish(&ctx, CTL_OK);
        }
        if (nwords > 1)
            return finish(&ctx,
                          ctl_fail(&ctx, CTL_USAGE, "%s: unknown sub-verb '%s'; sub-verbs: %s",
                                   words[0], words[1], subs));
        return finish(&ctx, ctl_fail(&ctx, CTL_USAGE, "%s: needs a sub-verb: %s", words[0], subs));
    }
    verb_label(v, label, sizeof(label));
    ctx.verb_name = label;
    if (g.help) {
        print_verb_help(stdout, v);
        return finish(&ctx, CTL_OK);
    }

    struct ctl_call call;
    st = parse_call(&ctx, v, words + used, nwords - used, &call);
    if (st != CTL_OK)
        return finish(&ctx, st);

    ctx.url = g.url ? g.url : getenv("PROXYCTL_URL");
    if (!ctx.url || !*ctx.url)
        ctx.url = DEFAULT_URL;
    if (!is_url(ctx.url)) {
        const char *from = g.url ? "--url" : "PROXYCTL_URL";
        return finish(&ctx, ctl_fail(&ctx, CTL_USAGE,
                                     "%s needs an http:// URL like " DEFAULT_URL ", got '%s'", from,
                                     ctx.url));
    }
    static char url[2048];
    snprintf(url, sizeof(url), "%s", ctx.url);
    for (size_t n = strlen(url); n > 0 && url[n - 1] == '/'; n--)
        url[n - 1] = '\0';
    ctx.url = url;

    const char *dir = g.data_dir ? g.data_dir : getenv("PROXYD_DATA_DIR");
    if (!dir || !*dir)
        dir = DEFAULT_DATA_DIR;
    snprintf(ctx.token_path, sizeof(ctx.token_path), "%s/admin.token", dir);
    /* An admin server over TLS with proxyd's self-made certificate: trust that one. */
    ctx.cacert = g.cacert ? g.cacert : getenv("PROXYCTL_CACERT");
    if (ctx.cacert && !*ctx.cacert)
        ctx.cacert = NULL;
    if (!ctx.cacert && strncasecmp(ctx.url, "https://", 8) == 0) {
        static char self_made[4096];
        snprintf(self_made, sizeof(self_made), "%s/tls-cert.pem", dir);
        if (access(self_made, R_OK) == 0)
            ctx.cacert = self_made;
    }
    if (g.token) {
        ctx.token = g.token;
        ctx.token_from = "--token";
    }
    ctx.json = g.json;
    ctx.message = g.message;
    ctx.stdout_tty = isatty(STDOUT_FILENO);
    ctx.http = ctl_http_new();
    if (!ctx.http)
        return finish(&ctx, ctl_fail(&ctx, CTL_REFUSED, "cannot start libcurl"));
    return finish(&ctx, v->run(&ctx, &call));
}
