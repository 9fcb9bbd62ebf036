/* request: head -> access record -> port, password, policy decision -> rewritten head; the
 * decision on the resolved addresses; the access record's outcome. Worker thread only. */
#include "proxy/request.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <arpa/inet.h>

#include "base/addr.h"
#include "base/clock.h"
#include "base/status.h"
#include "proxy/access_req.h"
#include "proxy/bump.h"
#include "proxy/conn.h"
#include "proxy/intercept.h"
#include "proxy/log.h"
#include "proxy/origin.h"
#include "proxy/relay.h"
#include "proxy/reply.h"
#include "proxy/worker.h"

static const char *const verdict_names[VERDICT_COUNT] = {
    "allow", "deny", "auth", "wait", "unavailable",
};

const char *request_verdict_str(enum request_verdict v)
{
    return (unsigned)v < VERDICT_COUNT ? verdict_names[v] : "?";
}

static void copy_field(char *dst, size_t cap, const char *src, size_t len)
{
    if (len >= cap)
        len = cap - 1;
    if (len) /* src may be NULL for an absent field */
        memcpy(dst, src, len);
    dst[len] = '\0';
}

/* ---- the access record ---- */

static bool request_in_flight(const struct conn *c)
{
    return c->req != NULL;
}

/* Every connection holds a place in w->reqs (conn_accept), so a slot is always there. */
static void record_start(struct conn *c)
{
    if (!c->req) {
        c->req = req_pool_take(&c->w->reqs);
        c->req->addrs.status = DNS_OK;
        c->req->addrs.naddrs = 0;
    }
    store_access_clear(&c->req->rec);
    c->req->rec.time_ms = clock_wall_coarse_ms();
    c->start_ms = ev_now_ms(c->w->loop);
    c->why = CLOSE_NONE;
    const struct sockaddr *sa = (const struct sockaddr *)&c->client_addr;
    _Static_assert(sizeof(c->req->rec.client) >= 16, "room for a dotted quad");
    if (sa->sa_family == AF_INET)
        addr_ipv4_text((const uint8_t *)&((const struct sockaddr_in *)sa)->sin_addr,
                       c->req->rec.client);
    else
        inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)sa)->sin6_addr, c->req->rec.client,
                  sizeof(c->req->rec.client));
}

void request_record_begin(struct conn *c)
{
    record_start(c);
}

void request_record_outcome(struct conn *c, enum conn_close why, const char *detail)
{
    c->why = why;
    if (detail && c->req)
        copy_field(c->req->rec.error, sizeof(c->req->rec.error), detail, strlen(detail));
}

void request_record_finish(struct conn *c)
{
    if (!request_in_flight(c))
        return;
    struct worker *w = c->w;
    int64_t now = ev_now_ms(w->loop);
    c->req->rec.duration_ms = (uint32_t)(now > c->start_ms ? now - c->start_ms : 0);
    if (c->why != CLOSE_NONE && !c->req->rec.error[0]) {
        const char *text = conn_close_str(c->why);
        copy_field(c->req->rec.error, sizeof(c->req->rec.error), text, strlen(text));
    }
    if (w->shared->log)
        store_log_push(w->shared->log, w->index, &c->req->rec);
    if (c->req->rec.decision == STORE_DENY || c->req->rec.decision == STORE_AUTH)
        STAT_ADD(c, requests_denied, 1);
    if (c->req->rec.decision < STORE_DECISION_COUNT)
        STAT_ADD(c,
                 requests_finished[c->req->rec.decision][conn_status_class(c->req->rec.status)]
                                  [c->listener->kind],
                 1);
    req_pool_give(&w->reqs, c->req);
    c->req = NULL;
}

/* A request we cannot read (or forward) as it came: status, with the parser's reason. */
static void bad_request(struct conn *c, int status, const char *reason)
{
    if (!request_in_flight(c))
        record_start(c);
    copy_field(c->req->rec.method, sizeof(c->req->rec.method), "-", 1);
    c->req->rec.decision = STORE_DENY;
    c->head_len = 0;
    request_record_outcome(c, CLOSE_BAD_REQUEST, reason);
    reply_page(c, status, reason, false);
}

void request_head_timeout(struct conn *c)
{
    record_start(c);
    copy_field(c->req->rec.method, sizeof(c->req->rec.method), "-", 1);
    reply_error(c, CLOSE_CLIENT_TIMEOUT, 408, "The request took too long to arrive.", false);
}

/* ---- the proxy password ---- */

/* Checks of one request a change of users or policy may start over. */
#define AUTH_RECHECKS_MAX 4

static const char auth_unavailable[] =
    "The proxy cannot check passwords right now; please try again.";

static void on_auth_result(void *arg, enum auth_status st, const char *user)
{
    struct conn *c = arg;
    c->authq = NULL;
    if (st == AUTH_OK || st == AUTH_DENIED) {
        snprintf(c->auth_user, sizeof(c->auth_user), "%s", st == AUTH_OK ? user : "");
        c->user_read = atomic_load(&c->w->shared->users_reads);
        c->auth_known = true;
        /* The head is still at the front of c->up: the pump parses it again, now with the
         * user known. The first parse is gone: its header slices were written into the
         * worker's one header array (w->headers), which the worker's other connections have
         * parsed their own heads into while the verifier ran. Parsing again costs
         * microseconds against the verifier's milliseconds and keeps no per-connection copy
         * of a parse (8 KiB of headers) for the rare request that waits for a password. */
        conn_set_state(c, CONN_READ_HEAD);
    } else if (st == AUTH_PENDING && ++c->auth_rechecks <= AUTH_RECHECKS_MAX) {
        /* Users or policy changed while the password was checked: the head is parsed again
         * and its password checked anew, against the store as it is now. Counted once. */
        c->recounted = true;
        conn_set_state(c, CONN_READ_HEAD);
    } else { /* (changes faster than checks: each would be asked again without end) */
        reply_error(c, CLOSE_OVERLOAD, 503, auth_unavailable, false);
    }
    conn_run(c);
}

/* Who is asking: *user is the verified user, or NULL. Returns ALLOW when that is known,
 * WAIT when a verifier was asked (state CONN_AUTH), UNAVAILABLE when none can be. */
static enum request_verdict request_user(struct conn *c, const struct h1_request *req,
                                         const char **user)
{
    struct worker *w = c->w;
    *user = NULL;
    if (c->auth_known) {
        *user = c->auth_user[0] ? c->auth_user : NULL;
        return VERDICT_ALLOW;
    }
    if (req->proxy_authorization.len == 0 || !w->shared->auth)
        return VERDICT_ALLOW;
    switch (auth_check(w->shared->auth, w->loop, (const struct sockaddr *)&c->client_addr,
                       req->proxy_authorization.p, req->proxy_authorization.len, c->auth_user,
                       on_auth_result, c, &c->authq)) {
    case AUTH_OK:
        *user = c->auth_user;
        c->user_read = atomic_load(&w->shared->users_reads);
        return VERDICT_ALLOW;
    case AUTH_MALFORMED:
    case AUTH_DENIED:
        /* Wrong credentials count as none: the policy decides, and answers 407 where a rule
         * needs a user. */
        return VERDICT_ALLOW;
    case AUTH_PENDING:
        conn_set_state(c, CONN_AUTH);
        conn_set_deadline(c, w->tun.header_timeout_ms);
        return VERDICT_WAIT;
    case AUTH_BUSY:
    case AUTH_STATUS_COUNT:
        break;
    }
    return VERDICT_UNAVAILABLE;
}

/* ---- the decision ---- */

static enum request_verdict decided(struct request_decision *d, enum request_verdict verdict,
                                    enum conn_close why, int rule_id, bool keep, const char *reason)
{
    static const int status[VERDICT_COUNT] = {
        [VERDICT_DENY] = 403, [VERDICT_AUTH] = 407, [VERDICT_UNAVAILABLE] = 503};
    d->verdict = verdict;
    d->status = status[verdict];
    d->why = why;
    d->rule_id = rule_id;
    d->keep = keep;
    if (verdict == VERDICT_ALLOW || verdict == VERDICT_WAIT)
        d->reason[0] = '\0';
    else
        copy_field(d->reason, sizeof(d->reason), reason, strlen(reason));
    return verdict;
}

/* An answer of ours leaves the connection usable only when nothing unread follows the head:
 * no request body, and for a denied CONNECT no tunnel bytes the client may have sent ahead. */
static bool nothing_unread(const struct conn *c)
{
    return c->upf.body == H1_BODY_NONE && !c->is_connect;
}

static bool connect_port_allowed(const struct worker *w, uint16_t port)
{
    bool ok = false;
    for (size_t i = 0; i < w->tun.nconnect_ports; i++)
        ok |= w->tun.connect_ports[i] == port;
    return ok;
}

bool request_inspect_decide(struct conn *c, const struct acl_request *ar)
{
    static struct log_ratelimit rl = LOG_RATELIMIT_INIT(60000, 1);
    struct worker *w = c->w;
    struct acl_inspect in;
    char note[sizeof(c->req->rec.error)];
    acl_eval_inspect(w->acl, ar, w->acl_scratch, &in);
    if (!in.inspect)
        return false;
    const char *unable = !bump_mint(c) ? "no CA" : NULL;
    bool inspect = tun_inspect_decide(&in, unable, note, sizeof(note));
    if (note[0]) {
        copy_field(c->req->rec.error, sizeof(c->req->rec.error), note, strlen(note));
        log_warnx_limited(&rl, "CONNECT %s: %s", c->req->rec.host, note);
    }
    return inspect;
}

/* The policy allowed the request in flight: the row says so, or names the report rule that
 * would have denied it (report_rule_id, 0 for none), so it is counted. */
static void record_allowed(struct conn *c, int report_rule_id)
{
    c->req->rec.decision = STORE_ALLOW;
    if (report_rule_id) {
        c->req->rec.decision = STORE_REPORT;
        c->req->rec.rule_id = report_rule_id;
    }
}

/* The decision on what the request says: the CONNECT port, then (the password known) the
 * policy. The port comes first so that a CONNECT to a port never allowed costs no password
 * check. */
static enum request_verdict decide(struct conn *c, const struct h1_request *req,
                                   struct request_decision *d)
{
    struct worker *w = c->w;
    if (c->is_connect && !connect_port_allowed(w, req->port)) {
        char why[96];
        snprintf(why, sizeof(why), "CONNECT to port %u is not allowed", req->port);
        return decided(d, VERDICT_DENY, CLOSE_DENIED, 0, nothing_unread(c), why);
    }
    const char *user;
    enum request_verdict v = request_user(c, req, &user);
    if (v == VERDICT_WAIT)
        return decided(d, v, CLOSE_NONE, 0, false, "");
    if (v == VERDICT_UNAVAILABLE)
        return decided(d, v, CLOSE_OVERLOAD, 0, false, auth_unavailable);
    if (user)
        copy_field(c->req->rec.user, sizeof(c->req->rec.user), user, strlen(user));

    worker_acl_refresh(w);
    struct acl_request ar;
    request_acl(c, &ar);
    /* The head's own path and method: the record's copies may be cut short. */
    ar.path = req->path.p ? req->path.p : "";
    ar.path_len = req->path.len;
    ar.method = req->method.p;
    ar.method_len = req->method.len;
    struct acl_decision ad;
    request_eval(c, &ar, &ad);
    if (ad.action == ACL_DENY)
        return decided(d, VERDICT_DENY, CLOSE_DENIED, ad.rule_id, nothing_unread(c), ad.reason);
    if (ad.action == ACL_AUTH)
        /* Unlike a denial, a CONNECT asked for credentials keeps its connection: the client
         * sends them on it next. */
        return decided(
            d, VERDICT_AUTH, CLOSE_AUTH_REQUIRED, ad.rule_id, c->upf.body == H1_BODY_NONE,
            req->proxy_authorization.len ? "The proxy user name or password is wrong."
                                         : "This address needs a proxy user name and password.");
    if (c->websocket && req->path.len >= sizeof(c->req->rec.path)) {
        /* A policy change judges an open WebSocket again (tun_rejudge) on the record's path,
         * which holds only the first bytes of this one: what a rule reads past them would go
         * unread. Rare enough (a WebSocket path over 1 KiB) for a copy of its own. */
        free(c->ws_path);
        c->ws_path = strndup(req->path.p, req->path.len);
        if (!c->ws_path)
            return decided(d, VERDICT_UNAVAILABLE, CLOSE_OVERLOAD, 0, false, "out of memory");
    }
    record_allowed(c, ad.report_rule_id);
    if (c->is_connect)
        c->inspect = request_inspect_decide(c, &ar);
    return decided(d, VERDICT_ALLOW, CLOSE_NONE, ad.rule_id, true, "");
}

void request_eval(struct conn *c, const struct acl_request *ar, struct acl_decision *ad)
{
    struct worker *w = c->w;
    int64_t eval_start_ns = clock_mono_ns();
    acl_eval(w->acl, ar, w->acl_scratch, ad);
    c->req->rec.policy_version = acl_set_version(w->acl);
    STAT_OBSERVE(c, acl_eval, eval_start_ns);
    c->req->rec.rule_id = ad->rule_id;
    c->req->rec.undecided_rule_id = ad->undecided_rule_id;
    c->dest_pending = ad->dest_pending;
    c->acl_order = ad->order;
    c->acl_gen = w->acl_gen;
}

void request_acl(const struct conn *c, struct acl_request *ar)
{
    const struct store_access *rec = &c->req->rec;
    const char *path = c->ws_path ? c->ws_path : rec->path;
    *ar = (struct acl_request){
        .scheme = rec->scheme,
        .host = &c->host,
        .port = rec->port,
        .path = path,
        .path_len = strlen(path),
        .method = rec->method,
        .method_len = strlen(rec->method),
        .client = (const struct sockaddr *)&c->client_addr,
        .user = rec->user[0] ? rec->user : NULL,
        .clock = c->w->clock,
        .brief = true, /* the reason is read only when the request is not allowed */
    };
}

bool request_judge_raw(struct conn *c, struct acl_request *ar)
{
    worker_acl_refresh(c->w);
    request_acl(c, ar);
    struct acl_decision ad;
    request_eval(c, ar, &ad);
    if (ad.action != ACL_ALLOW) {
        c->req->rec.decision = ad.action == ACL_DENY ? STORE_DENY : STORE_AUTH;
        request_record_outcome(c, ad.action == ACL_DENY ? CLOSE_DENIED : CLOSE_AUTH_REQUIRED, NULL);
        return false;
    }
    record_allowed(c, ad.report_rule_id);
    return true;
}

/* ar, a tunnel's request, as the server name its ClientHello asked for is judged. */
static void sni_request(struct acl_request *ar, const struct acl_host *sni)
{
    ar->scheme = "https";
    ar->host = sni;
}

/* `deny dest` rules on every address of the name (acl_eval_dest): a name that points into a
 * denied network is denied, whichever address would be tried. */
static enum request_verdict decide_dest(struct conn *c, struct request_decision *d)
{
    struct worker *w = c->w;
    /* Another request on this worker may have moved to a newer set meanwhile: then every
     * `deny dest` rule of that set applies. */
    struct acl_decision first = {
        .action = ACL_ALLOW,
        .rule_id = c->req->rec.rule_id,
        .order = c->acl_gen == w->acl_gen ? c->acl_order : UINT32_MAX,
    };
    struct acl_request ar;
    request_acl(c, &ar);
    for (size_t i = 0; i < c->req->addrs.naddrs; i++) {
        struct acl_decision ad;
        acl_eval_dest(w->acl, &ar, &first, (const struct sockaddr *)&c->req->addrs.addrs[i], &ad);
        if (ad.action != ACL_ALLOW)
            c->req->rec.policy_version = acl_set_version(w->acl);
        if (ad.action == ACL_DENY)
            return decided(d, VERDICT_DENY, CLOSE_DENIED, ad.rule_id, nothing_unread(c), ad.reason);
        if (ad.action == ACL_AUTH)
            return decided(d, VERDICT_AUTH, CLOSE_AUTH_REQUIRED, ad.rule_id, nothing_unread(c),
                           "This address needs a proxy user name and password.");
        if (ad.report_rule_id && c->req->rec.decision == STORE_ALLOW) {
            c->req->rec.decision = STORE_REPORT;
            c->req->rec.rule_id = ad.report_rule_id;
            first.report_rule_id = ad.report_rule_id;
        }
    }
    return decided(d, VERDICT_ALLOW, CLOSE_NONE, c->req->rec.rule_id, true, "");
}

enum request_verdict request_decide_sni(struct conn *c, const struct acl_host *sni,
                                        struct request_decision *d)
{
    struct worker *w = c->w;
    worker_acl_refresh(w);
    struct acl_request ar;
    request_acl(c, &ar);
    sni_request(&ar, sni);
    struct acl_decision ad;
    acl_eval(w->acl, &ar, w->acl_scratch, &ad);
    if (ad.undecided_rule_id)
        c->req->rec.undecided_rule_id = ad.undecided_rule_id;
    if (ad.action == ACL_ALLOW) {
        if (ad.report_rule_id && c->req->rec.decision == STORE_ALLOW) {
            /* The name would have been denied: the row names the report rule. */
            c->req->rec.decision = STORE_REPORT;
            c->req->rec.rule_id = ad.report_rule_id;
        }
        return decided(d, VERDICT_ALLOW, CLOSE_NONE, c->req->rec.rule_id, true, "");
    }
    return decided(d, VERDICT_DENY, CLOSE_SNI_DENIED, ad.rule_id, false,
                   ad.action == ACL_DENY ? ad.reason
                                         : "the server name needs a proxy user name and password");
}

bool request_still_allowed(struct conn *c, struct acl_decision *ad)
{
    struct worker *w = c->w;
    const char *name = c->req->rec.sni;
    struct acl_request ar;
    request_acl(c, &ar);
    acl_eval(w->acl, &ar, w->acl_scratch, ad);
    if (ad->action != ACL_ALLOW)
        return false;
    /* hello_judge put a server name other than the host to the policy (request_decide_sni). */
    struct acl_host sni;
    const char *why;
    if (name[0] && strcmp(name, c->host.text) != 0 &&
        acl_host_parse(name, strlen(name), &sni, &why) == 0) {
        sni_request(&ar, &sni);
        acl_eval(w->acl, &ar, w->acl_scratch, ad);
        if (ad->action != ACL_ALLOW)
            return false;
    }
    struct acl_decision first = *ad;
    acl_eval_dest(w->acl, &ar, &first, (const struct sockaddr *)&c->origin_addr, ad);
    return ad->action == ACL_ALLOW;
}

enum request_verdict request_decide_addrs(struct conn *c, struct request_decision *d)
{
    /* A set published while the name was being resolved may hold `deny dest` rules that the
     * set which decided did not: they apply too (decide_dest then asks all of them). */
    worker_acl_refresh(c->w);
    bool newer_set = c->acl_gen != c->w->acl_gen;
    if ((c->dest_pending || newer_set) && decide_dest(c, d) != VERDICT_ALLOW)
        return d->verdict;
    /* Refused addresses are never tried; the request is refused when none is left. */
    struct origin_guard g = origin_guard_of(c->w);
    const char *refusal = NULL;
    size_t kept = 0;
    for (size_t i = 0; i < c->req->addrs.naddrs; i++) {
        const char *why = origin_target_refusal(&g, &c->req->addrs.addrs[i]);
        if (why)
            refusal = why;
        else
            c->req->addrs.addrs[kept++] = c->req->addrs.addrs[i];
    }
    c->req->addrs.naddrs = kept;
    if (kept == 0 && refusal)
        return decided(d, VERDICT_DENY, CLOSE_TARGET_FORBIDDEN, c->req->rec.rule_id,
                       nothing_unread(c), refusal);
    return decided(d, VERDICT_ALLOW, CLOSE_NONE, c->req->rec.rule_id, true, "");
}

/* A browser shows no page for a refused CONNECT, unless it is answered inside TLS. */
bool request_access_on(const struct conn *c)
{
    const struct access_req_box *b = c->w->shared->access_req;
    return b && (c->mint_ref || (!c->is_connect && !c->is_forward)) &&
           atomic_load_explicit(&b->enabled, memory_order_relaxed);
}

/* A GET of ACCESS_REQ_PATH, on any host: the form a block page carries. Returns the query's
 * start (after '?', may be empty) or NULL. */
static const char *access_request_query(const struct conn *c, const struct h1_request *req,
                                        size_t *qlen)
{
    static const char path[] = ACCESS_REQ_PATH;
    size_t n = sizeof(path) - 1;
    if (!request_access_on(c) || req->method.len != 3 || memcmp(req->method.p, "GET", 3) ||
        req->path.len < n || memcmp(req->path.p, path, n) ||
        (req->path.len > n && req->path.p[n] != '?'))
        return NULL;
    *qlen = req->path.len > n ? req->path.len - n - 1 : 0;
    return req->path.p + n + (req->path.len > n);
}

/* Answers a submitted access request (the policy denied its host: there is something to ask
 * for). The log row keeps the path without the query: the reason is the admin's to read in
 * the queue, not in every log search. */
void request_access_submit(struct conn *c, const char *q, size_t qlen, int rule_id, bool keep)
{
    struct access_req_form f;
    const char *why = NULL;
    char detail[400];
    static const int status[ACCESS_REQ_RESULT_COUNT] = {202, 400, 403, 429, 503};

    copy_field(c->req->rec.path, sizeof(c->req->rec.path), ACCESS_REQ_PATH,
               sizeof(ACCESS_REQ_PATH) - 1);
    c->req->rec.decision = STORE_DENY;
    c->req->rec.rule_id = rule_id;
    enum access_req_result res = ACCESS_REQ_BAD_FORM;
    if (access_req_parse(q, qlen, &f, &why) == 0) {
        struct store_request rq = {
            .time_ms = clock_wall_ms(), .port = c->req->rec.port, .rule_id = rule_id};
        snprintf(rq.client, sizeof(rq.client), "%s", c->req->rec.client);
        snprintf(rq.user, sizeof(rq.user), "%s", c->req->rec.user);
        snprintf(rq.host, sizeof(rq.host), "%s", c->req->rec.host);
        res = access_req_submit(c->w->shared->access_req, &f, &rq, rq.time_ms);
    }
    switch (res) {
    case ACCESS_REQ_QUEUED:
        snprintf(detail, sizeof(detail),
                 "Your request for %s was sent to the administrators. Once one approves it, "
                 "the address opens for you without anything else to do.",
                 c->req->rec.host);
        break;
    case ACCESS_REQ_BAD_FORM:
        snprintf(detail, sizeof(detail), "The request was not sent: %s.", why);
        break;
    case ACCESS_REQ_BAD_TOKEN:
        snprintf(detail, sizeof(detail),
                 "The request was not sent: the form has expired or was not made for this "
                 "computer. Open the blocked address again and send the form from there.");
        break;
    case ACCESS_REQ_RATE_LIMITED:
        snprintf(detail, sizeof(detail),
                 "The request was not sent: this computer has sent %d requests within the last "
                 "hour. Please wait before sending another.",
                 ACCESS_REQ_PER_CLIENT);
        break;
    default:
        snprintf(detail, sizeof(detail),
                 "The request was not sent: too many requests are waiting to be stored. Please "
                 "try again in a minute.");
        break;
    }
    request_record_outcome(c, res == ACCESS_REQ_QUEUED ? CLOSE_DENIED : CLOSE_BAD_REQUEST,
                           res == ACCESS_REQ_QUEUED ? "access-request" : "access-request-refused");
    reply_page(c, status[res], detail, keep);
}

void request_refuse(struct conn *c, const struct request_decision *d)
{
    if (d->verdict == VERDICT_DENY || d->verdict == VERDICT_AUTH) {
        c->req->rec.decision = d->verdict == VERDICT_DENY ? STORE_DENY : STORE_AUTH;
        c->req->rec.rule_id = d->rule_id;
    }
    /* The decision's own words say more in the log than "denied" or "target-forbidden":
     * the rule and what of the request it matched, or why no rule was needed (a refused
     * CONNECT port, a client outside the allowed networks). */
    request_record_outcome(c, d->why, d->verdict == VERDICT_DENY ? d->reason : NULL);
    if (d->verdict == VERDICT_DENY)
        reply_blocked(c, d->rule_id, d->reason, d->keep, request_access_on(c) && d->rule_id > 0);
    else
        reply_page(c, d->status, d->reason, d->keep);
}

/* ---- from head to decision ---- */

/* RFC 9110 9.2.2: methods whose effect is the same when a request is repeated. Methods are
 * case-sensitive. */
static bool method_idempotent(const char *m, size_t len)
{
    switch (len) {
    case 3:
        return !memcmp(m, "GET", 3) || !memcmp(m, "PUT", 3);
    case 4:
        return !memcmp(m, "HEAD", 4);
    case 5:
        return !memcmp(m, "TRACE", 5);
    case 6:
        return !memcmp(m, "DELETE", 6);
    case 7:
        return !memcmp(m, "OPTIONS", 7);
    default:
        return false;
    }
}

/* A new request: counted (once: not again when its head is parsed after a password check),
 * its record begun and what its head says about the connection noted. */
static void begin(struct conn *c, const struct h1_request *req, size_t head_len)
{
    if (!c->auth_known && !c->recounted) {
        STAT_ADD(c, requests_total, 1);
        c->requests++;
    }
    c->recounted = false;
    record_start(c);
    c->head_len = head_len;
    copy_field(c->req->rec.method, sizeof(c->req->rec.method), req->method.p, req->method.len);
    /* Keep-alive is offered to HTTP/1.1 clients only: a 1.0 client would need a
     * "Connection: keep-alive" echo we do not promise. */
    c->client_keep_alive = req->keep_alive && req->minor_version == 1;
    c->request_head = req->method.len == 4 && !memcmp(req->method.p, "HEAD", 4);
    c->idempotent = method_idempotent(req->method.p, req->method.len);
    c->is_connect = req->form == H1_FORM_AUTHORITY;
    c->websocket = req->upgrade_websocket;
    relay_flow_start(&c->upf, req->body, req->content_length);
}

/* The target as the record keeps it. The parser made the host canonical; everything after
 * reads this one form. */
static void record_target(struct conn *c, const struct h1_request *req)
{
    c->host = req->host;
    copy_field(c->req->rec.host, sizeof(c->req->rec.host), c->host.text, c->host.len);
    c->req->rec.port = req->port;
    copy_field(c->req->rec.scheme, sizeof(c->req->rec.scheme), c->is_connect ? "https" : "http",
               c->is_connect ? 5 : 4);
    copy_field(c->req->rec.path, sizeof(c->req->rec.path), req->path.p, req->path.len);
}

/* Puts the head to send to the origin in place of the client's at the front of c->up.
 * Returns false when it was answered instead (too large). req's slices die here. */
static bool rewrite_head(struct conn *c, const struct h1_request *req, size_t head_len)
{
    struct worker *w = c->w;
    long n = h1_request_rewrite(req, w->tun.via, w->scratch, sizeof(w->scratch));
    size_t rest = c->up.len - head_len;
    if (n < 0 || (size_t)n + rest > BUF_SIZE) {
        bad_request(c, 431, "request head too large to forward");
        return false;
    }
    memmove(c->up.data + n, c->up.data + c->up.off + head_len, rest);
    memcpy(c->up.data, w->scratch, (size_t)n);
    c->up.off = 0;
    c->up.len = (size_t)n + rest;
    c->upf.ready = (size_t)n;
    c->head_len = (size_t)n;
    c->upf_start = c->upf;
    c->up_sent = 0;
    c->up_intact = true;
    return true;
}

/* The target of an intercepted request, which names only a path: the host from Host, the port
 * and address from where the connection was bound (origin.c goes there only). req's port and
 * path become those the decision reads; its host stays empty, so the rewrite keeps the
 * client's Host. Returns false when answered. */
static bool intercepted_target(struct conn *c, struct h1_request *req)
{
    const char *why;
    copy_field(c->req->rec.path, sizeof(c->req->rec.path), req->target.p, req->target.len);
    copy_field(c->req->rec.scheme, sizeof(c->req->rec.scheme), "http", 4);
    origin_format_addr(&c->orig_dst, c->req->rec.dest, sizeof(c->req->rec.dest));
    if (req->form != H1_FORM_ORIGIN) {
        bad_request(c, 400, "an intercepted request must name only a path");
        return false;
    }
    if (intercept_request_host(c, req, &c->host, &why) < 0) {
        bad_request(c, 400, why);
        return false;
    }
    copy_field(c->req->rec.host, sizeof(c->req->rec.host), c->host.text, c->host.len);
    req->port = ntohs(c->orig_dst.ss_family == AF_INET
                          ? ((const struct sockaddr_in *)&c->orig_dst)->sin_port
                          : ((const struct sockaddr_in6 *)&c->orig_dst)->sin6_port);
    req->path = req->target;
    c->req->rec.port = req->port;
    return true;
}

/* The target of a request inside an inspected tunnel, which names only a path: the tunnel's
 * host and port, whatever Host says (a Host naming another host is refused: the tunnel's name
 * is what was decided, minted for and verified). The user is the CONNECT's. req's port and
 * path become those the decision reads; its host stays empty, so the rewrite keeps Host.
 * Returns false when answered. */
static bool inspected_target(struct conn *c, struct h1_request *req)
{
    const char *why;
    struct acl_host named;
    c->host = c->tunnel_host;
    copy_field(c->req->rec.host, sizeof(c->req->rec.host), c->host.text, c->host.len);
    copy_field(c->req->rec.scheme, sizeof(c->req->rec.scheme), "https", 5);
    copy_field(c->req->rec.path, sizeof(c->req->rec.path), req->target.p, req->target.len);
    copy_field(c->req->rec.user, sizeof(c->req->rec.user), c->tunnel_user, strlen(c->tunnel_user));
    c->req->rec.port = c->tunnel_port;
    if (req->form != H1_FORM_ORIGIN) {
        bad_request(c, 400, "a request inside an HTTPS tunnel must name only a path");
        return false;
    }
    if (intercept_request_host(c, req, &named, &why) < 0) {
        bad_request(c, 400, why);
        return false;
    }
    if (named.len && (named.len != c->host.len || memcmp(named.text, c->host.text, named.len))) {
        c->req->rec.decision = STORE_DENY;
        reply_error(c, CLOSE_DENIED, 421,
                    "This request names another web site than the one its connection is for.",
                    false);
        return false;
    }
    req->port = c->tunnel_port;
    req->path = req->target;
    /* Credentials were the CONNECT's business: what a request inside says is not read. */
    c->auth_known = true;
    copy_field(c->auth_user, sizeof(c->auth_user), c->tunnel_user, strlen(c->tunnel_user));
    return true;
}

/* Acts on a complete request head at the front of c->up. */
static void handle_request(struct conn *c, struct h1_request *req, size_t head_len)
{
    begin(c, req, head_len);
    if (c->inspecting) {
        if (!inspected_target(c, req))
            return;
    } else if (c->intercepted) {
        if (!intercepted_target(c, req))
            return;
    } else if (req->form == H1_FORM_ORIGIN || req->form == H1_FORM_ASTERISK) {
        copy_field(c->req->rec.path, sizeof(c->req->rec.path), req->target.p, req->target.len);
        c->req->rec.decision = STORE_DENY;
        reply_error(c, CLOSE_BAD_REQUEST, 400,
                    "This is a proxy server: configure it as your browser's HTTP proxy "
                    "instead of opening it as a web site.",
                    false);
        return;
    } else {
        record_target(c, req);
    }
    struct request_decision d;
    const char *q;
    size_t qlen;
    switch (decide(c, req, &d)) {
    case VERDICT_ALLOW:
        break;
    case VERDICT_WAIT:
        return;
    case VERDICT_DENY:
        if (d.rule_id > 0 && (q = access_request_query(c, req, &qlen))) {
            request_access_submit(c, q, qlen, d.rule_id, d.keep);
            return;
        }
        request_refuse(c, &d);
        return;
    default:
        request_refuse(c, &d);
        return;
    }
    if (c->is_connect) {
        buf_consume(&c->up, head_len);
        c->head_len = 0;
    } else if (!rewrite_head(c, req, head_len)) {
        return;
    }
    /* The pump starts the lookup (origin_resolve) on its next round. */
    conn_set_state(c, CONN_RESOLVE);
}

/* ---- reading the head ---- */

/* Parses what c->up holds. Returns whether the request was handled (complete or bad). */
static bool parse_head(struct conn *c)
{
    struct worker *w = c->w;
    struct h1_request req = {.headers = w->headers};
    struct h1_error err = {0};
    int n = h1_parse_request(buf_head(&c->up), c->up.len, &w->tun.limits, &req, &err);
    if (n > 0)
        handle_request(c, &req, (size_t)n);
    else if (n == PX_ERR)
        bad_request(c, err.status, err.reason);
    return n > 0 || n == PX_ERR;
}

bool request_step_read_head(struct conn *c)
{
    struct worker *w = c->w;
    if (!c->c_readable && c->up.len == 0) {
        buf_detach(&w->bufs, &c->up); /* nothing pending: an idle connection holds no buffer */
        return false;
    }
    if (buf_attach(&w->bufs, &c->up) < 0) {
        conn_close(c, CLOSE_OVERLOAD);
        return false;
    }
    for (;;) {
        if (c->up.len > 0 && parse_head(c))
            return true;
        /* Keep room for what the head rewrite adds (Host, Via). */
        size_t room = buf_room(&c->up);
        room = room > HEAD_RESERVE ? room - HEAD_RESERVE : 0;
        if (room == 0) {
            bad_request(c, 431, "request head too large");
            return true;
        }
        ssize_t n = conn_client_recv(c, &c->up, HEAD_RESERVE);
        if (n > 0) {
            if (c->state == CONN_IDLE) {
                conn_set_state(c, CONN_READ_HEAD);
                conn_set_deadline(c, w->tun.header_timeout_ms);
            }
            continue;
        }
        if (n == 0 && c->up.len > 0) {
            /* The client ended in the middle of a head: say so rather than say nothing (it
             * may still read), and do not wait for the header timeout. */
            bad_request(c, 400, "request head cut short by the client's close");
            return true;
        }
        if (n == 0) {
            conn_close(c, CLOSE_NONE);
            return false;
        }
        if (n == PX_AGAIN) {
            if (c->up.len == 0) {
                /* Nothing pending: an idle connection holds no buffer. */
                buf_detach(&w->bufs, &c->up);
                buf_detach(&w->bufs, &c->down);
            }
            return false;
        }
        conn_close(c, CLOSE_CLIENT_ERROR);
        return false;
    }
}
