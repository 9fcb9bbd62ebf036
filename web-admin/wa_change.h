/* web-admin policy changes: a change of rules or lists is compiled before it is committed.
 *
 * wa_change_apply reads the store's policy at one moment (store_policy_read), applies the
 * change to that copy in memory, and has the result compiled (proxyd's policy_apply hook,
 * which adds its allowed networks). A result that does not compile is refused and never
 * reaches the store: no version bump, no audit row, nothing to undo. One that compiles is
 * written in one transaction that first checks the policy version is still the one the copy
 * was read at (store_change_begin), so no change committed meanwhile, by this process or
 * another, can slip between compile and commit; if one did, the whole thing runs again on
 * a fresh copy. Only after the commit is the compiled set put in force.
 *
 * Changes that do not alter the rule set (proxy users, admins, settings) do not come here:
 * they need no compile.
 */
#ifndef PX_WA_CHANGE_H
#define PX_WA_CHANGE_H

#include <stdbool.h>
#include <stddef.h>

#include "web-admin/wa_http.h"

#define WA_MESSAGE_MAX 500 /* bytes of a version message */

enum wa_change_kind {
    WA_RULE_ADD,      /* text, comment, before */
    WA_RULE_UPDATE,   /* id, text (NULL: kept), comment (NULL: kept), enabled (-1: kept) */
    WA_RULE_DELETE,   /* id */
    WA_RULE_MOVE,     /* id, before */
    WA_RULES_REPLACE, /* items: the new rule texts, all enabled, no comments */
    WA_LIST_REPLACE,  /* list, items: its domains (created if missing) */
    WA_LIST_DELETE,   /* list */
    WA_RULES_RESTORE, /* version, rules: that version's rules, with their ids, and (with_lists)
                         lists: all its lists (a rollback) */
    WA_SUB_CURRENT,   /* list, text (its URL), version (its created_ms): the list's subscription
                         is still the one whose download this change imports (changes no rule;
                         checked in the change's transaction, store_sub_import_mark) */
    WA_REQUEST_GRANT, /* version (an access request's id), comment (the admin's note): the
                         request, still pending, is approved with the rule the change's
                         WA_RULE_ADD added (changes no rule; in the change's transaction,
                         store_request_decide; its audit text joins the version's message) */
    WA_CHANGE_KIND_COUNT
};

/* One change, as the store's functions take it (store.h). Strings are borrowed. */
struct wa_change {
    enum wa_change_kind kind;
    int id;
    int before; /* -1: top, 0: end, else before this rule */
    const char *text;
    const char *comment;
    int enabled;
    const char *list;
    const char *const *items;
    size_t nitems;
    int64_t version;
    const struct store_rule *rules;        /* nitems of them */
    const struct store_policy_list *lists; /* nlists of them */
    size_t nlists;
    bool with_lists;
};

/* Applies the n changes in order, as one: all of them are in force, or none is stored. They
 * are one policy version, whose message is the request's `message` query parameter if it has
 * one (else the changes themselves).
 * *added_id (if not NULL) gets the id of the last rule added. Uses r's store connection
 * (wa_store must have given it). One change at a time per server (ctx->policy_mu). Any MHD
 * thread.
 *
 * Returns true when the changes are in force: the caller answers. Else it has answered:
 * refused_status (400 or 409) with field refused_field when the policy they would leave does
 * not compile, naming the rule and the reason, or when a condition a change checks at the
 * commit no longer holds (WA_SUB_CURRENT, WA_REQUEST_GRANT); 500 when the store failed or a
 * rule or list a change names is gone. */
bool wa_change_apply(struct wa_req *r, const struct wa_change *ch, size_t n, int *added_id,
                     unsigned refused_status, const char *refused_field);

/* wa_change_apply for work no request carries (a list subscription's import): the changes
 * as actor, with message (NULL: the changes make it), on store connection st, which the
 * caller holds. 0 when in force; 1 when refused (the result does not compile, err naming the
 * rule and the reason, or a condition checked at the commit no longer holds); -1 with err
 * when the store failed. Any thread but an MHD thread
 * inside wa_change_apply (one change at a time: ctx->policy_mu). */
int wa_change_apply_as(struct wa_ctx *ctx, struct store *st, const char *actor, const char *message,
                       const struct wa_change *ch, size_t n, char *err, size_t errlen);

/* POST /api/reload's work: proxyd compiles the store's policy again. A wa_reload_status,
 * with err unless done. */
int wa_change_reload(struct wa_ctx *ctx, char *err, size_t errlen);

#endif
