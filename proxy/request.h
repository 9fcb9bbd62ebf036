/* request: a request from its head to the decision: the head read and parsed, the access
 * record begun and, in one place, its outcome written; the proxy password asked for; the one
 * decision whether the request may go on (CONNECT port, policy, and on the resolved
 * addresses `deny dest` rules and target refusal); the head rewritten for the origin.
 * Worker thread only. */
#ifndef PX_REQUEST_H
#define PX_REQUEST_H

#include <stdbool.h>
#include <stddef.h>

#include "proxy/conn_close.h"

struct acl_decision;
struct acl_host;
struct acl_request;
struct conn;

enum request_verdict {
    VERDICT_ALLOW,       /* the request goes on */
    VERDICT_DENY,        /* 403 block page */
    VERDICT_AUTH,        /* 407: a rule needs a user and the request has none */
    VERDICT_WAIT,        /* a password check is running: the request resumes when it ends */
    VERDICT_UNAVAILABLE, /* 503: the password cannot be checked now */
    VERDICT_COUNT
};

const char *request_verdict_str(enum request_verdict v);

/* Whether and how a request may go on; request_refuse answers every verdict but ALLOW and
 * WAIT. */
struct request_decision {
    enum request_verdict verdict;
    int status;          /* the answer: 403, 407, 503; 0 for ALLOW and WAIT */
    int rule_id;         /* the deciding rule (0: the default action, or no rule decided) */
    enum conn_close why; /* the close reason for the record: denied, target-forbidden, ... */
    bool keep;           /* the client connection may carry another request after the answer
                            (not with an unread body or tunnel bytes behind the head) */
    char reason[160];    /* DENY: the policy's words for the block page; AUTH, UNAVAILABLE:
                            the page's words */
};

/* The CONN_IDLE and CONN_READ_HEAD step: reads and parses the head; a complete one is
 * decided and rewritten (state CONN_RESOLVE), a bad one answered. Returns whether the state
 * moved on (false: waiting for more bytes, or closed). */
bool request_step_read_head(struct conn *c);
/* The decision on the resolved addresses in c->req->addrs, once the policy allowed the request:
 * `deny dest` rules waiting for them (any denied address denies), then target refusal
 * (origin_target_refusal), which removes refused addresses from c->req->addrs; none left: DENY.
 * Fills d. Returns d->verdict: ALLOW, DENY or AUTH. */
enum request_verdict request_decide_addrs(struct conn *c, struct request_decision *d);
/* The policy on the server name a tunnel's ClientHello asked for, when it is not the host the
 * tunnel was allowed for: the same rules as for that host (scheme https, the tunnel's port,
 * client and user). A rule that needs a user the tunnel did not bring denies: credentials
 * cannot be asked for inside a tunnel. Addresses are not looked at again: the tunnel stays
 * on the addresses already checked. Fills d. Returns d->verdict: ALLOW or DENY. */
enum request_verdict request_decide_sni(struct conn *c, const struct acl_host *sni,
                                        struct request_decision *d);
/* Records the decision d (not ALLOW or WAIT) in the access record and answers it. */
void request_refuse(struct conn *c, const struct request_decision *d);
/* Whether a block page for c may offer the "request access" form: the setting is on and c
 * speaks HTTP the browser shows (plain HTTP, or inside TLS as the host: bump.c). */
bool request_access_on(const struct conn *c);
/* Answers a submitted access request q[0 .. qlen) (the query of ACCESS_REQ_PATH) for the
 * request in flight, which rule rule_id denied: queued, or refused with the reason. */
void request_access_submit(struct conn *c, const char *q, size_t qlen, int rule_id, bool keep);
/* Whether the allowed tunnel in flight (a CONNECT, or an intercepted ClientHello with a
 * server name), decided on ar, is decrypted (tun_inspect_decide): an inspect rule says so,
 * the no-inspect list does not forbid it, and this proxyd can (a CA to mint with, a client
 * that does not speak TLS to us already). An inspect rule left unapplied is said in the row
 * and, at most once a minute, in the log. */
bool request_inspect_decide(struct conn *c, const struct acl_request *ar);

/* The request in flight on c as the policy reads it, from what stays with c while it is in
 * flight: c's host and client, its record's scheme, port, method, path and user (the record is
 * c's slot's, so nothing is borrowed from a buffer), the worker's clock, brief. A tunnel, a
 * forward and raw bytes are judged on exactly this when they open, so tun_rejudge asks the
 * same again (a CONNECT's, a forward's and raw bytes' path is ""). A request head's decision
 * puts the head's own path and method in (the record keeps the first 1023 bytes of a path):
 * a WebSocket whose path is longer is judged again on those. Worker thread. */
void request_acl(const struct conn *c, struct acl_request *ar);
/* The policy on the request in flight of raw bytes (a port forward's connection, an
 * intercepted one that is not HTTP), as request_acl reads it from the record, with the rule
 * set in force: the decision is recorded (request_eval), and the row's decision with it:
 * allowed (or the report rule that would have denied it), else denied with its close reason.
 * No credentials come with raw bytes, so a rule that needs a user denies. *ar is the request
 * judged. Returns whether it is allowed; answering a refusal is the caller's. Worker thread. */
bool request_judge_raw(struct conn *c, struct acl_request *ar);
/* Whether the rule set in force still allows the open tunnel of c as it was judged: its
 * request (request_acl), the other server name its ClientHello asked for (as
 * request_decide_sni judged it), and the connected address (`deny dest`). *ad says why not.
 * Records nothing. Worker thread. */
bool request_still_allowed(struct conn *c, struct acl_decision *ad);

/* Decides ar with the worker's rule set (refreshed by the caller) into *ad and records the
 * decision on c: the row's policy version, rule and undecided rule, and what the later check
 * of the resolved addresses needs (dest_pending, the decision's order in this set). The rest
 * of the row (decision, outcome) is the caller's. Worker thread. */
void request_eval(struct conn *c, const struct acl_request *ar, struct acl_decision *ad);

/* Begins the access record of a request that has no head (a forwarded connection): time,
 * client, start of its duration. */
void request_record_begin(struct conn *c);
/* The one writer of how the request in flight ended: why is its close reason (counted, and
 * the access log's error column) and detail, when not NULL, the error column's text instead
 * (a parser's or a refusal's own words). */
void request_record_outcome(struct conn *c, enum conn_close why, const char *detail);
/* Hands the record of the request in flight to storage, once (later calls do nothing). */
void request_record_finish(struct conn *c);
/* The head did not arrive in time: 408, or a quiet close when nothing of it came. */
void request_head_timeout(struct conn *c);

#endif
