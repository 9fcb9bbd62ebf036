/* web-admin policy changes: compile the would-be policy, commit only what compiles, then put
 * it in force. See wa_change.h.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "web-admin/wa_change.h"

#define ATTEMPTS 3 /* fresh copies read when the store keeps moving under a change */

/* The policy a change would leave: the store's copy with the change applied. Rule texts and
 * list entries point into snap or into the changes; nothing here owns a string. */
struct candidate {
    struct store_policy snap; /* owned: what the store held, at snap.version */
    struct acl_rule_src *rules;
    size_t nrules, rules_cap;
    struct acl_list_src *lists;
    size_t nlists, lists_cap;
    int next_id; /* the id the store gives the next rule added */
};

static void candidate_free(struct candidate *c)
{
    store_policy_free(&c->snap);
    free(c->rules);
    free(c->lists);
    memset(c, 0, sizeof(*c));
}

/* Room for one more rule / list. 0, or -1 when out of memory (nothing changed). */
static int rules_room(struct candidate *c)
{
    size_t cap = c->rules_cap ? c->rules_cap * 2 : 16;
    struct acl_rule_src *v;

    if (c->nrules < c->rules_cap)
        return 0;
    v = realloc(c->rules, cap * sizeof(*v));
    if (!v)
        return -1;
    c->rules = v;
    c->rules_cap = cap;
    return 0;
}

static int lists_room(struct candidate *c)
{
    size_t cap = c->lists_cap ? c->lists_cap * 2 : 16;
    struct acl_list_src *v;

    if (c->nlists < c->lists_cap)
        return 0;
    v = realloc(c->lists, cap * sizeof(*v));
    if (!v)
        return -1;
    c->lists = v;
    c->lists_cap = cap;
    return 0;
}

static int candidate_read(struct candidate *c, struct store *st, char *err, size_t errlen)
{
    memset(c, 0, sizeof(*c));
    if (store_policy_read(st, &c->snap, err, errlen) < 0)
        return -1;
    c->next_id = c->snap.next_rule_id;
    for (size_t i = 0; i < c->snap.nrules; i++) {
        const struct store_rule *s = &c->snap.rules[i];

        if (rules_room(c) < 0)
            goto oom;
        c->rules[c->nrules++] = (struct acl_rule_src){s->id, s->enabled, s->text};
    }
    for (size_t i = 0; i < c->snap.nlists; i++) {
        const struct store_policy_list *l = &c->snap.lists[i];

        if (lists_room(c) < 0)
            goto oom;
        c->lists[c->nlists++] =
            (struct acl_list_src){l->name, (const char *const *)l->domains, l->count};
    }
    return 0;
oom:
    snprintf(err, errlen, "policy: out of memory");
    candidate_free(c);
    return -1;
}

static long rule_index(const struct candidate *c, int id)
{
    for (size_t i = 0; i < c->nrules; i++)
        if (c->rules[i].id == id)
            return (long)i;
    return -1;
}

static long list_index(const struct candidate *c, const char *name)
{
    for (size_t i = 0; i < c->nlists; i++)
        if (!strcmp(c->lists[i].name, name))
            return (long)i;
    return -1;
}

/* Where a rule placed "before" goes, as the store places it: -1 top, 0 end, else where
 * rule `before` is. -1 with err if there is no such rule. */
static long place_of(const struct candidate *c, int before, char *err, size_t errlen)
{
    long at;

    if (before == -1)
        return 0;
    if (before == 0)
        return (long)c->nrules;
    at = rule_index(c, before);
    if (at < 0)
        snprintf(err, errlen, "rule %d: no such rule", before);
    return at;
}

static int rule_insert(struct candidate *c, long at, struct acl_rule_src rule)
{
    if (rules_room(c) < 0)
        return -1;
    memmove(&c->rules[at + 1], &c->rules[at], (c->nrules - (size_t)at) * sizeof(*c->rules));
    c->rules[at] = rule;
    c->nrules++;
    return 0;
}

static struct acl_rule_src rule_remove(struct candidate *c, long at)
{
    struct acl_rule_src rule = c->rules[at];

    memmove(&c->rules[at], &c->rules[at + 1], (c->nrules - (size_t)at - 1) * sizeof(*c->rules));
    c->nrules--;
    return rule;
}

/* Applies one change to the candidate, as the store will apply it. 0, or -1 with err. */
static int candidate_edit(struct candidate *c, const struct wa_change *ch, char *err, size_t errlen)
{
    long at = -1, to;

    if (ch->kind == WA_RULE_UPDATE || ch->kind == WA_RULE_DELETE || ch->kind == WA_RULE_MOVE) {
        at = rule_index(c, ch->id);
        if (at < 0) {
            snprintf(err, errlen, "rule %d: no such rule", ch->id);
            return -1;
        }
    }
    switch (ch->kind) {
    case WA_RULE_ADD:
        to = place_of(c, ch->before, err, errlen);
        if (to < 0)
            return -1;
        if (rule_insert(c, to, (struct acl_rule_src){c->next_id++, true, ch->text}) < 0)
            goto oom;
        return 0;
    case WA_RULE_UPDATE:
        if (ch->text)
            c->rules[at].text = ch->text;
        if (ch->enabled >= 0)
            c->rules[at].enabled = ch->enabled != 0;
        return 0;
    case WA_RULE_DELETE:
        rule_remove(c, at);
        return 0;
    case WA_RULE_MOVE: {
        struct acl_rule_src rule;

        if (ch->before == ch->id) /* before itself: already there */
            return 0;
        rule = rule_remove(c, at);
        to = place_of(c, ch->before, err, errlen);
        if (to < 0)
            return -1;
        return rule_insert(c, to, rule) < 0 ? -1 : 0; /* room: it was just freed */
    }
    case WA_RULES_REPLACE:
        c->nrules = 0;
        for (size_t i = 0; i < ch->nitems; i++)
            if (rule_insert(c, (long)c->nrules,
                            (struct acl_rule_src){c->next_id++, true, ch->items[i]}) < 0)
                goto oom;
        return 0;
    case WA_RULES_RESTORE:
        c->nrules = 0;
        for (size_t i = 0; i < ch->nitems; i++)
            if (rule_insert(c, (long)c->nrules,
                            (struct acl_rule_src){ch->rules[i].id, ch->rules[i].enabled,
                                                  ch->rules[i].text}) < 0)
                goto oom;
        if (ch->with_lists)
            c->nlists = 0;
        for (size_t i = 0; ch->with_lists && i < ch->nlists; i++) {
            if (lists_room(c) < 0)
                goto oom;
            c->lists[c->nlists++] = (struct acl_list_src){
                ch->lists[i].name, (const char *const *)ch->lists[i].domains, ch->lists[i].count};
        }
        return 0;
    case WA_LIST_REPLACE:
        at = list_index(c, ch->list);
        if (at < 0) {
            if (lists_room(c) < 0)
                goto oom;
            at = (long)c->nlists++;
        }
        c->lists[at] = (struct acl_list_src){ch->list, ch->items, ch->nitems};
        return 0;
    case WA_LIST_DELETE:
        at = list_index(c, ch->list);
        if (at < 0) {
            snprintf(err, errlen, "list %s: no such list", ch->list);
            return -1;
        }
        c->lists[at] = c->lists[--c->nlists];
        return 0;
    case WA_SUB_CURRENT:
    case WA_REQUEST_GRANT:
        return 0; /* the store's to check, at the commit */
    case WA_CHANGE_KIND_COUNT:
        break;
    }
    snprintf(err, errlen, "policy change: unknown kind %d", (int)ch->kind);
    return -1;
oom:
    snprintf(err, errlen, "policy: out of memory");
    return -1;
}

/* ---- the commit, called back between compile and publish ---- */

struct commit_job {
    const char *actor;
    const char *message; /* NULL: the changes make it */
    struct store *st;
    const struct wa_change *ch;
    size_t n;
    const struct candidate *cand;
    int added_id;
    bool called;   /* commit ran: a failure is the store's, not the compiler's */
    bool conflict; /* what a change checks at the commit no longer holds: refused, not failed */
};

/* 0; 1 when a condition the change checks at the commit no longer holds (err says which);
 * -1 with err. */
static int write_change(struct store *st, const struct wa_change *ch, const char *actor,
                        int *added_id, char *err, size_t errlen)
{
    switch (ch->kind) {
    case WA_RULE_ADD:
        return store_rule_add(st, ch->text, ch->comment ? ch->comment : "", ch->before, actor,
                              added_id, err, errlen);
    case WA_RULE_UPDATE:
        return store_rule_update(st, ch->id, ch->text, ch->comment, ch->enabled, actor, err,
                                 errlen);
    case WA_RULE_DELETE:
        return store_rule_delete(st, ch->id, actor, err, errlen);
    case WA_RULE_MOVE:
        return store_rule_move(st, ch->id, ch->before, actor, err, errlen);
    case WA_RULES_REPLACE:
        return store_rules_replace(st, ch->items, ch->nitems, actor, err, errlen);
    case WA_LIST_REPLACE:
        return store_list_replace(st, ch->list, ch->items, ch->nitems, actor, err, errlen);
    case WA_LIST_DELETE:
        return store_list_delete(st, ch->list, actor, err, errlen);
    case WA_RULES_RESTORE:
        return store_rules_restore(st, ch->version, ch->rules, ch->nitems, actor, err, errlen);
    case WA_SUB_CURRENT:
        switch (store_sub_import_mark(st, ch->list, ch->text, ch->version, err, errlen)) {
        case 0:
            return 0;
        case 1:
            snprintf(err, errlen, "the subscription was removed or replaced during its download");
            return 1;
        default:
            return -1;
        }
    case WA_REQUEST_GRANT:
        return store_request_decide(st, ch->version, true, ch->comment, *added_id, actor, err,
                                    errlen);
    case WA_CHANGE_KIND_COUNT:
        break;
    }
    snprintf(err, errlen, "policy change: unknown kind %d", (int)ch->kind);
    return -1;
}

/* The store's rules, read inside the transaction, must be the candidate's: same ids (the
 * compiled set names rules by id, so a new rule must have got the id it was compiled with),
 * order, texts and enabled flags. 0, or -1 with err. */
static int rules_agree(struct store *st, const struct candidate *c, char *err, size_t errlen)
{
    struct store_rule *rules;
    size_t n, i;

    if (store_rules_list(st, &rules, &n, err, errlen) < 0)
        return -1;
    for (i = 0; i < n && n == c->nrules; i++)
        if (rules[i].id != c->rules[i].id || rules[i].enabled != c->rules[i].enabled ||
            strcmp(rules[i].text, c->rules[i].text) != 0)
            break;
    store_rules_free(rules, n);
    if (i == n && n == c->nrules)
        return 0;
    snprintf(err, errlen, "the rules stored differ from the rules compiled; nothing was changed");
    return -1;
}

static int commit_job(void *arg, int64_t *version, char *err, size_t errlen)
{
    struct commit_job *job = arg;
    int rc;

    job->called = true;
    rc = store_change_begin(job->st, job->cand->snap.version, err, errlen);
    if (rc != PX_OK)
        return rc;
    store_change_message(job->st, job->message);
    for (size_t i = 0; i < job->n; i++) {
        rc = write_change(job->st, &job->ch[i], job->actor, &job->added_id, err, errlen);
        if (rc != 0) {
            job->conflict = rc > 0;
            store_change_rollback(job->st);
            return PX_ERR;
        }
    }
    if (rules_agree(job->st, job->cand, err, errlen) < 0) {
        store_change_rollback(job->st);
        return PX_ERR;
    }
    return store_change_commit(job->st, version, err, errlen);
}

/* The policy_apply hook's work when proxyd installed none: compile with the default allowed
 * networks, commit, publish into the live set if there is one. */
static int apply_here(struct wa_ctx *ctx, const struct acl_config *cand, struct commit_job *job,
                      char *err, size_t errlen)
{
    struct acl_error aerr;
    struct acl_set *set;
    int64_t version;
    int rc;

    memset(&aerr, 0, sizeof(aerr));
    set = acl_set_compile(cand, &aerr);
    if (!set) {
        snprintf(err, errlen, "%s", aerr.msg);
        return PX_ERR;
    }
    rc = commit_job(job, &version, err, errlen);
    if (rc == PX_OK)
        acl_set_version_set(set, version);
    if (rc == PX_OK && ctx->opts->acl)
        acl_live_publish(ctx->opts->acl, set);
    else
        acl_set_free(set);
    return rc;
}

enum change_status {
    CHANGE_DONE,    /* committed and in force */
    CHANGE_REFUSED, /* the result does not compile (err names the rule and the reason), or a
                       condition a change checks at the commit no longer holds (err says which) */
    CHANGE_FAILED,  /* the store failed, or a rule or list a change names is gone */
    CHANGE_STATUS_COUNT
};

static enum change_status apply(struct wa_ctx *ctx, struct store *st, const char *actor,
                                const char *message, const struct wa_change *ch, size_t n,
                                int *added_id, char *err, size_t errlen)
{
    const struct wa_options *opts = ctx->opts;
    enum change_status status = CHANGE_FAILED;

    err[0] = '\0';
    if (!st) {
        snprintf(err, errlen, "no database connection");
        return CHANGE_FAILED;
    }
    pthread_mutex_lock(&ctx->policy_mu);
    for (int attempt = 0; attempt < ATTEMPTS; attempt++) {
        struct candidate c;
        struct commit_job job = {actor, message, st, ch, n, &c, 0, false, false};
        struct acl_config cfg;
        int rc = 0;

        if (candidate_read(&c, st, err, errlen) < 0)
            break;
        for (size_t i = 0; rc == 0 && i < n; i++)
            rc = candidate_edit(&c, &ch[i], err, errlen);
        if (rc < 0) {
            candidate_free(&c);
            break;
        }
        cfg = (struct acl_config){c.rules, c.nrules, c.lists, c.nlists, NULL};
        rc = opts->policy_apply
                 ? opts->policy_apply(opts->hook_arg, &cfg, commit_job, &job, err, errlen)
                 : apply_here(ctx, &cfg, &job, err, errlen);
        candidate_free(&c);
        if (rc == PX_OK && added_id)
            *added_id = job.added_id;
        if (rc == PX_AGAIN)
            continue;
        status = rc == PX_OK                   ? CHANGE_DONE
                 : job.called && !job.conflict ? CHANGE_FAILED
                                               : CHANGE_REFUSED;
        break;
    }
    pthread_mutex_unlock(&ctx->policy_mu);
    if (status != CHANGE_DONE && !err[0])
        snprintf(err, errlen, "%s",
                 status == CHANGE_REFUSED ? "the proxy refused the policy"
                                          : "the policy was not changed");
    return status;
}

bool wa_change_apply(struct wa_req *r, const struct wa_change *ch, size_t n, int *added_id,
                     unsigned refused_status, const char *refused_field)
{
    const char *message = wa_query(r, "message");
    char err[512];

    if (message && strlen(message) > WA_MESSAGE_MAX) {
        wa_reply_error(r, 400, "message", "a version message is at most %d bytes", WA_MESSAGE_MAX);
        return false;
    }
    switch (apply(r->ctx, r->st, r->actor, message, ch, n, added_id, err, sizeof(err))) {
    case CHANGE_DONE:
        return true;
    case CHANGE_REFUSED:
        wa_reply_error(r, refused_status, refused_field, "%s", err);
        return false;
    default:
        wa_reply_error(r, 500, NULL, "%s", err);
        return false;
    }
}

int wa_change_apply_as(struct wa_ctx *ctx, struct store *st, const char *actor, const char *message,
                       const struct wa_change *ch, size_t n, char *err, size_t errlen)
{
    switch (apply(ctx, st, actor, message, ch, n, NULL, err, errlen)) {
    case CHANGE_DONE:
        return 0;
    case CHANGE_REFUSED:
        return 1;
    default:
        return -1;
    }
}

int wa_change_reload(struct wa_ctx *ctx, char *err, size_t errlen)
{
    int rc;

    err[0] = '\0';
    if (!ctx->opts->policy_reload)
        return WA_RELOAD_DONE;
    pthread_mutex_lock(&ctx->policy_mu);
    rc = ctx->opts->policy_reload(ctx->opts->hook_arg, err, errlen);
    pthread_mutex_unlock(&ctx->policy_mu);
    if (rc != WA_RELOAD_DONE && !err[0])
        snprintf(err, errlen, "%s",
                 rc == WA_RELOAD_REFUSED ? "the proxy refused the stored policy"
                                         : "the stored policy could not be read");
    return rc;
}
