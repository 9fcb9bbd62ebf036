/* web-admin API tokens: named bearer tokens of admin accounts (storage's store_token.c). A
 * token acts as its owner with the owner's role, and the audit names it ("alice/token:ci").
 * The data folder's admin.token stays what it was: one machine-wide token with the admin
 * role, audited as "token"; it belongs to no account, so what it makes must name an owner.
 */
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "web-admin/wa_tokens.h"

/* True if the caller may see and revoke owner's tokens, and make new ones for owner. */
static bool may_manage(const struct wa_req *r, const char *owner)
{
    return r->role == STORE_ROLE_ADMIN || (r->admin[0] && strcmp(r->admin, owner) == 0);
}

/* GET /api/tokens: {"tokens":[{name, owner, created_ms, last_used_ms}]}, the caller's own,
 * or everyone's for the admin role. Never a secret. */
enum MHD_Result wa_tokens_list(struct wa_req *r)
{
    struct store_token *rows;
    struct store *st = wa_store(r);
    char err[256];
    size_t n;
    json_t *arr;

    if (!st)
        return MHD_YES;
    if (store_token_list(st, r->role == STORE_ROLE_ADMIN ? NULL : r->admin, &rows, &n, err,
                         sizeof(err)) < 0)
        return wa_reply_error(r, 500, NULL, "%s", err);
    arr = json_array();
    for (size_t i = 0; arr && i < n; i++)
        json_array_append_new(arr,
                              json_pack("{s:s,s:s,s:I,s:I}", "name", rows[i].name, "owner",
                                        rows[i].owner, "created_ms", (json_int_t)rows[i].created_ms,
                                        "last_used_ms", (json_int_t)rows[i].last_used_ms));
    free(rows);
    return wa_reply_json(r, 200, json_pack("{s:o}", "tokens", arr));
}

/* POST /api/tokens {"name", "owner"?}: 201 {name, owner, token}; the secret is in this answer
 * only. owner defaults to the caller's account; another owner needs the admin role. */
enum MHD_Result wa_tokens_add(struct wa_req *r)
{
    char secret[STORE_TOKEN_LEN + 1], name[64], owner[64], err[256];
    const char *n, *o;
    struct store *st;
    json_t *body, *ans;
    int rc;

    body = wa_body_json(r);
    if (!body)
        return MHD_YES;
    n = json_string_value(json_object_get(body, "name"));
    o = json_string_value(json_object_get(body, "owner"));
    if (!n || !wa_name_ok(n)) {
        json_decref(body);
        return wa_reply_error(r, 400, "name",
                              "a token name is 1-63 letters, digits, '.', '_', '-'");
    }
    if (o && *o && !wa_name_ok(o)) {
        json_decref(body);
        return wa_reply_error(r, 400, "owner", "no such admin");
    }
    snprintf(name, sizeof(name), "%s", n);
    snprintf(owner, sizeof(owner), "%s", o && *o ? o : r->admin);
    json_decref(body);
    if (!owner[0])
        return wa_reply_error(r, 400, "owner",
                              "admin.token belongs to no admin: say which admin the token acts "
                              "for (owner)");
    if (!may_manage(r, owner))
        return wa_reply_error(r, 403, "owner", "only the admin role makes tokens for others");
    st = wa_store(r);
    if (!st)
        return MHD_YES;
    rc = store_token_add(st, owner, name, r->actor, secret, err, sizeof(err));
    if (rc == 1)
        return wa_reply_error(r, 409, "name", "%s has a token named %s already", owner, name);
    if (rc == 2)
        return wa_reply_error(r, 400, "owner", "no admin %s", owner);
    if (rc < 0)
        return wa_reply_error(r, 500, NULL, "%s", err);
    ans = json_pack("{s:s,s:s,s:s}", "name", name, "owner", owner, "token", secret);
    sodium_memzero(secret, sizeof(secret));
    return wa_reply_json(r, 201, ans);
}

/* DELETE /api/tokens/NAME[?owner=ADMIN]: revoked at once (the next request with it is 401).
 * Names are per owner: without owner, a caller without the admin role means its own token,
 * one with it the token of that name if only one admin has one (409 otherwise). A token of
 * another admin is "no such token" to a caller without the admin role. */
enum MHD_Result wa_tokens_delete(struct wa_req *r)
{
    const char *owner = wa_query(r, "owner");
    struct store *st;
    char err[256];
    int rc;

    if (!wa_name_ok(r->param))
        return wa_reply_error(r, 404, NULL, "no token %s", r->param);
    if (r->role != STORE_ROLE_ADMIN && !r->admin[0])
        return wa_reply_error(r, 403, NULL, "no account to hold tokens");
    if (owner && (!wa_name_ok(owner) || !may_manage(r, owner)))
        return wa_reply_error(r, 404, NULL, "no token %s", r->param);
    if (!owner && r->role != STORE_ROLE_ADMIN)
        owner = r->admin;
    st = wa_store(r);
    if (!st)
        return MHD_YES;
    rc = store_token_delete(st, r->param, owner, r->actor, err, sizeof(err));
    if (rc == 1)
        return wa_reply_error(r, 404, NULL, "no token %s", r->param);
    if (rc == 2)
        return wa_reply_error(r, 409, "owner",
                              "several admins have a token named %s: name its owner (owner=ADMIN)",
                              r->param);
    if (rc < 0)
        return wa_reply_error(r, 500, NULL, "%s", err);
    return wa_reply_json(r, 200, json_pack("{s:s}", "deleted", r->param));
}
