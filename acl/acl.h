/* acl: the policy language. Parses policy text and domain lists, compiles rules into an
 * immutable rule set, and answers "may this request pass, and which rule says so".
 *
 * Pure: no sockets, no globals, no logging, no I/O. A compiled struct acl_set is immutable:
 * any number of threads may call acl_eval on it at once, each with its own struct
 * acl_scratch. Errors are reported into a struct acl_error, never printed.
 *
 * Rule text (one rule; see docs/policy.md):
 *   ACTION MATCH ARG [CONDITION ARG]...
 *   ACTION    allow | deny | report | inspect
 *   MATCH     domain D | host-regex RE | url-regex RE | client CIDR | dest CIDR
 *             | user NAME | method M | port N | list NAME | any
 *   CONDITION clients CIDR[,CIDR...] | users NAME[,NAME...] | schedule DAYS HH:MM-HH:MM
 *             | expires YYYY-MM-DDTHH:MM[:SS][Z]
 * A policy file is rules one per line; '#' starts a comment; a line that starts with white
 * space continues the rule above it.
 */
#ifndef PX_ACL_H
#define PX_ACL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "acl/acl_host.h"

enum acl_action {
    ACL_ALLOW,
    ACL_DENY,
    ACL_AUTH,    /* a rule needs a user and the request carries none: answer 407 */
    ACL_REPORT,  /* a rule's action only: it would deny, but the request goes on and is marked
                    (acl_decision.report_rule_id); never the action of a decision */
    ACL_INSPECT, /* a rule's action only: a tunnel it holds for is decrypted when the request
                    is allowed (acl_eval_inspect); never the action of a decision */
    ACL_ACTION_COUNT
};

/* "allow", "deny", "auth", "report", "inspect" */
const char *acl_action_str(enum acl_action a);

struct acl_error {
    int rule_id;   /* id of the offending rule (0 if not about one rule) */
    int line;      /* line in the policy/list text (0 if not from text) */
    char msg[256]; /* "rule 12: url-regex: missing ) at offset 4" */
};

/* One rule as stored by the policy store or read from a file. */
struct acl_rule_src {
    int id;           /* policy store id; for a file, the line number of its first line */
    bool enabled;     /* disabled rules are validated but never match */
    const char *text; /* rule text, borrowed */
};

/* A named domain list (hosts file, plain list or adblock '||d^' entries), already parsed. */
struct acl_list_src {
    const char *name;           /* borrowed */
    const char *const *domains; /* borrowed, normalised by acl_list_parse */
    size_t count;
};

struct acl_config {
    const struct acl_rule_src *rules; /* in priority order: first match wins */
    size_t nrules;
    const struct acl_list_src *lists;
    size_t nlists;
    /* Clients that the default action allows: comma-separated CIDRs. NULL means loopback and
     * private networks (127/8, ::1, 10/8, 172.16/12, 192.168/16, fc00::/7). Requests from
     * elsewhere that no rule allows are denied (rule id 0). */
    const char *allowed_clients;
};

struct acl_set; /* compiled, immutable */

/* Compiles cfg into a rule set. Returns it (owned by the caller, free with acl_set_free),
 * or NULL with *err naming the first bad rule and the reason; nothing is kept on error.
 * Regexes are compiled with PCRE2 JIT and a match limit. Borrowed strings in cfg may be
 * freed once this returns. */
struct acl_set *acl_set_compile(const struct acl_config *cfg, struct acl_error *err);
void acl_set_free(struct acl_set *set);
/* Approximate heap bytes held by the set (for stats and the benchmark). */
size_t acl_set_memory(const struct acl_set *set);
/* The policy version the set was compiled from, which the caller names once it knows it and
 * before it publishes the set (the one change a set takes); 0 until then and for NULL. Each
 * access row names the version that decided it. */
void acl_set_version_set(struct acl_set *set, int64_t version);
int64_t acl_set_version(const struct acl_set *set);

/* Checks one rule's text in isolation (UTF-8, syntax, regex, CIDR, schedule). 0 or -1 with
 * *err. */
int acl_rule_check(const char *text, struct acl_error *err);
/* Whether text is a client name line `name ADDRESS LABEL` (a policy line that never matches:
 * the admin pages show LABEL beside the address): true with addr (16 bytes, IPv4 as
 * IPv4-mapped, as acl_host_parse gives it) and label set. */
bool acl_client_name(const char *text, uint8_t addr[16], char *label, size_t labellen);
/* The `expires` time of one rule's text, in seconds since the epoch: true with *expires set,
 * false when the text has none or is not a rule. Text without the word is not parsed (a
 * listing of many rules asks about each). */
bool acl_rule_expiry(const char *text, int64_t *expires);

/* Per-thread scratch space: PCRE2 match data and the URL normalisation buffer. */
struct acl_scratch *acl_scratch_new(void);
void acl_scratch_free(struct acl_scratch *s);

/* The time, computed by the caller (once a second, not per request). */
struct acl_clock {
    int wday;    /* local time: 0 = Sunday .. 6 = Saturday */
    int minute;  /* local time: 0 .. 1439 */
    int64_t now; /* seconds since the epoch: a rule whose `expires` time is not after it never
                    matches. 0 (a caller that never sets it) leaves every rule unexpired. */
};

struct acl_request {
    const char *scheme;          /* "http", or "https" for CONNECT; NUL-terminated */
    const struct acl_host *host; /* canonical (acl_host_parse), borrowed */
    uint16_t port;
    const char *path; /* path and query as received; "" for CONNECT */
    size_t path_len;
    const char *method; /* "GET", "CONNECT", ... */
    size_t method_len;
    const struct sockaddr *client; /* AF_INET or AF_INET6 */
    const char *user;              /* authenticated proxy user, or NULL */
    struct acl_clock clock;
    bool brief; /* the caller reads the reason only when the request is not allowed: an
                   ALLOW decision then leaves it "" (saves formatting on the hot path) */
};

struct acl_decision {
    enum acl_action action;
    int rule_id;      /* deciding rule, 0 for the default action */
    char reason[160]; /* "rule 7: deny domain facebook.com" / "default: client allowed";
                         "" for ALLOW when the request asked to be brief */
    /* A regex rule that could not decide (it hit the PCRE2 match or depth limit) at or above
     * the deciding rule; 0 if none. A deny rule that cannot decide denies (it is then the
     * deciding rule); an allow rule that cannot decide does not allow. */
    int undecided_rule_id;
    /* ALLOW of a host name only: a `deny dest` rule above the deciding rule holds for this
     * request and its networks can only be checked against the name's addresses. Ask
     * acl_eval_dest about each resolved address before connecting. */
    bool dest_pending;
    /* ALLOW only: the first `report` rule above the deciding rule that holds for this request
     * (the request would have been denied had it been a `deny` rule), 0 if none. A report
     * rule never decides: it is skipped, and the rules below it decide as if it were not
     * there. Its conditions must hold without asking for a user. */
    int report_rule_id;
    uint32_t order; /* private to acl_eval_dest: position of the deciding rule in the set */
};

/* Evaluates req against set. Never fails and allocates nothing. A literal address is
 * matched by `domain IP` and `dest CIDR` rules on its binary form. */
void acl_eval(const struct acl_set *set, const struct acl_request *req, struct acl_scratch *s,
              struct acl_decision *out);

/* May any request from client be allowed? True when client is in the allowed networks or an
 * allow rule may apply to it (one whose client match or clients condition, if any, includes
 * it). Schedules and users are not weighed, so the answer errs toward true; false means every
 * request from client would be denied, so a server may close its connection unread. NULL set:
 * false. Allocates nothing; any thread. */
bool acl_client_admitted(const struct acl_set *set, const struct sockaddr *client);

/* Decides again for one resolved address addr (AF_INET or AF_INET6; the port is not read) of
 * a request that acl_eval allowed with first->dest_pending: the first `deny dest` rule above
 * the deciding rule whose networks hold addr and whose conditions hold for req (client,
 * user, schedule; its host, path and method are not read) decides instead: out is DENY (or AUTH
 * when that rule needs a user and req has none), else out is first, with report_rule_id set
 * from the first `report dest` rule above the deciding rule that holds for addr when first
 * had none. set must be the set
 * first came from; when the set in force has changed since, pass a first whose order is
 * UINT32_MAX and every `deny dest` rule of the new set applies. Allocates nothing. */
void acl_eval_dest(const struct acl_set *set, const struct acl_request *req,
                   const struct acl_decision *first, const struct sockaddr *addr,
                   struct acl_decision *out);

/* ---- Which tunnels are decrypted ---- */

/* The list whose domains are never inspected, whatever an inspect rule says (banks, health):
 * a list of the policy like any other, which the admin edits. */
#define ACL_NO_INSPECT_LIST "no-inspect"

struct acl_inspect {
    bool inspect;
    int rule_id;      /* the first `inspect` rule that holds, 0 if none */
    bool no_inspect;  /* the host is on the no-inspect list (then inspect is false) */
    char reason[160]; /* "rule 9: inspect domain example.com", "no-inspect list (bank.example)
                         beats rule 9", "no inspect rule" */
};

/* Whether a tunnel of req (scheme "https", method "CONNECT", path "") is to be decrypted.
 * `inspect` rules are apart from allow and deny: they decide nothing about passing, and the
 * first that holds (in policy order, wherever it stands among the others) says inspect,
 * unless the host is on the no-inspect list, which always wins. A rule that names users
 * holds only for a request that carries one. The caller asks only about a request acl_eval
 * allowed. Allocates nothing; any thread with its own scratch. */
void acl_eval_inspect(const struct acl_set *set, const struct acl_request *req,
                      struct acl_scratch *s, struct acl_inspect *out);

/* ---- Policy text ---- */

struct acl_policy {
    struct acl_rule_src *rules; /* owned; texts owned (continuation lines joined by a space) */
    size_t nrules;
};

/* Splits policy text into rules and checks each with acl_rule_check (so text that is not
 * UTF-8 is refused, naming the line and the offset). Returns 0, or -1 with *err naming the
 * line and reason (and *out left empty). */
int acl_policy_parse(const char *text, size_t len, struct acl_policy *out, struct acl_error *err);
void acl_policy_free(struct acl_policy *p);

/* ---- Domain lists ---- */

struct acl_list_stats {
    size_t added;      /* distinct valid domains */
    size_t duplicates; /* valid but already present */
    size_t skipped;    /* lines that are neither comment nor a usable domain */
    int first_skipped_line;
    char first_skipped_reason[128];
};

/* Parses a hosts file ("0.0.0.0 ads.example.com"), a plain domain list, or the domain-only
 * subset of adblock syntax ("||ads.example.com^"), in any mix. Entries are kept in canonical
 * form (acl_host_parse). The skip reason quotes the line with bytes outside printable ASCII
 * escaped as \xNN. Returns 0 with *domains (owned array of owned strings; free with
 * acl_list_free) or -1 on allocation failure. */
int acl_list_parse(const char *text, size_t len, char ***domains, size_t *count,
                   struct acl_list_stats *stats);
void acl_list_free(char **domains, size_t count);

/* ---- Text ---- */

/* True if s[0..len) is well-formed UTF-8 (RFC 3629: no overlong forms, no surrogates, nothing
 * past U+10FFFF). Otherwise false, with *bad_off (if not NULL) set to the offset of the first
 * byte that does not start or continue a valid sequence. */
bool acl_utf8_valid(const char *s, size_t len, size_t *bad_off);

/* ---- Publication of the rule set in force ---- */

/* Holds the rule set in force. Readers on hot paths keep a reference and refresh it only
 * when the generation moves, so reading costs one relaxed atomic load per request. */
struct acl_live;

struct acl_live *acl_live_new(struct acl_set *initial); /* takes ownership of initial */
void acl_live_free(struct acl_live *live);              /* all references must be released */
/* Replaces the set in force (takes ownership). The old set is freed when its last reference
 * is released. Any thread. */
void acl_live_publish(struct acl_live *live, struct acl_set *set);
/* Current generation; changes on every publish. Any thread, lock-free. */
uint64_t acl_live_generation(const struct acl_live *live);
/* Returns a reference to the set in force and its generation; release it when done. */
const struct acl_set *acl_live_acquire(struct acl_live *live, uint64_t *generation);
void acl_live_release(struct acl_live *live, const struct acl_set *set);

#endif
