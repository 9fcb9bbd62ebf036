/* web-admin accounts: proxy users (who may pass the proxy with a password) and admins (who
 * may use this server): GET /api/users, PUT and DELETE /api/users/NAME, and the same under
 * /api/admins. Neither is policy the rule set is compiled from: a change here is stored
 * at once, and proxyd is only told to forget the proxy password checks it cached.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "web-admin/wa_auth.h"
#include "web-admin/wa_users.h"

static void names_free(char **names, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
}

/* 1 if the account exists, 0 if not; *count gets how many of that kind exist. -1 on error. */
static int account_exists(struct store *st, enum store_account kind, const char *name,
                          size_t *count)
{
    char **names;
    size_t n;
    int found = 0;

    if (store_account_names(st, kind, &names, &n) < 0)
        return -1;
    for (size_t i = 0; i < n; i++)
        if (!strcmp(names[i], name))
            found = 1;
    names_free(names, n);
    if (count)
        *count = n;
    return found;
}

/* Tells proxyd a proxy user changed: it forgets the password checks it cached. A change
 * that moved the policy version by one, from `from` to `to`, was this change alone and left
 * the rule set as it is, so proxyd need not compile it again. */
static void users_changed(struct wa_ctx *ctx, int64_t from, int64_t to)
{
    if (!ctx->opts->users_changed)
        return;
    if (from < 0 || to != from + 1)
        from = to = -1;
    ctx->opts->users_changed(ctx->opts->hook_arg, from, to);
}

static enum MHD_Result account_put(struct wa_req *r, struct store *st, enum store_account kind,
                                   const char *name)
{
    struct wa_ctx *ctx = r->ctx;
    const char *key = kind == STORE_ADMIN ? "admin" : "user";
    size_t min = kind == STORE_ADMIN ? 8 : 1;
    json_t *body;
    const char *pw;
    char err[512];
    int64_t from;
    int rc;

    body = wa_body_json(r);
    if (!body)
        return MHD_YES;
    pw = json_string_value(json_object_get(body, "password"));
    if (!pw || strlen(pw) < min || strlen(pw) > 1024) {
        json_decref(body);
        return wa_reply_error(r, 400, "password", "password must be %zu to 1024 characters", min);
    }
    /* {"create": true} (the Add forms, proxyctl users add) never touches an account that
     * exists: adding a name twice must not reset the first one's password. */
    if (json_is_true(json_object_get(body, "create"))) {
        int exists = account_exists(st, kind, name, NULL);

        if (exists != 0) {
            json_decref(body);
            if (exists < 0)
                return wa_reply_error(r, 500, NULL, "cannot read the accounts");
            return wa_reply_error(r, 409, "name",
                                  "%s %s already exists; nothing changed (its row has Set "
                                  "password)",
                                  key, name);
        }
    }
    /* Not in a group transaction: the password is hashed (Argon2, tens of ms) before the
     * store takes the write lock, and must stay so. The version read around it tells whether
     * anything else changed meanwhile. */
    from = store_policy_version(st);
    rc = store_account_set(st, kind, name, pw, r->actor, err, sizeof(err));
    json_decref(body);
    if (rc < 0)
        return wa_reply_error(r, 500, NULL, "cannot save the account");
    if (kind == STORE_PROXY_USER)
        users_changed(ctx, from, store_policy_version(st));
    /* Another admin's password changed: end their sessions (keep the caller's own). */
    if (kind == STORE_ADMIN && strcmp(name, r->actor) != 0)
        wa_auth_sessions_drop(ctx->auth, name);
    else if (kind == STORE_ADMIN)
        wa_auth_sessions_password_changed(ctx->auth, name);
    /* The generated first-run password is void now: its file goes. */
    if (kind == STORE_ADMIN && strcmp(name, WA_FIRST_ADMIN) == 0)
        wa_auth_first_password_forget(ctx->opts->data_dir);
    return wa_reply_json(r, 200, json_pack("{s:s}", key, name));
}

/* The existence and last-admin checks and the delete are one transaction, so two admins
 * deleting each other at once cannot leave none. */
static enum MHD_Result account_delete(struct wa_req *r, struct store *st, enum store_account kind,
                                      const char *name)
{
    struct wa_ctx *ctx = r->ctx;
    size_t count = 0;
    char err[512];
    int64_t from, to;
    int exists;

    if (store_change_begin(st, -1, err, sizeof(err)) != PX_OK)
        return wa_reply_error(r, 500, NULL, "%s", err);
    exists = account_exists(st, kind, name, &count);
    if (exists <= 0 || (kind == STORE_ADMIN && count <= 1)) {
        store_change_rollback(st);
        if (exists < 0)
            return wa_reply_error(r, 500, NULL, "cannot read the accounts");
        if (!exists)
            return wa_reply_error(r, 404, NULL, "no %s %s", kind == STORE_ADMIN ? "admin" : "user",
                                  name);
        return wa_reply_error(r, 409, NULL, "%s is the last admin", name);
    }
    from = store_policy_version(st);
    if (store_account_delete(st, kind, name, r->actor, err, sizeof(err)) < 0) {
        store_change_rollback(st);
        return wa_reply_error(r, 500, NULL, "%s", err);
    }
    if (store_change_commit(st, &to, err, sizeof(err)) != PX_OK)
        return wa_reply_error(r, 500, NULL, "%s", err);
    if (kind == STORE_PROXY_USER)
        users_changed(ctx, from, to);
    if (kind == STORE_ADMIN)
        wa_auth_sessions_drop(ctx->auth, name);
    if (kind == STORE_ADMIN && strcmp(name, WA_FIRST_ADMIN) == 0)
        wa_auth_first_password_forget(ctx->opts->data_dir);
    return wa_reply_json(r, 200, json_pack("{s:s}", "deleted", name));
}

static enum MHD_Result accounts_list(struct wa_req *r, enum store_account kind)
{
    struct store *st = wa_store(r);
    char **names;
    size_t n;
    json_t *arr;

    if (!st)
        return MHD_YES;
    if (store_account_names(st, kind, &names, &n) < 0)
        return wa_reply_error(r, 500, NULL, "cannot read the accounts");
    arr = json_array();
    for (size_t i = 0; arr && i < n; i++)
        json_array_append_new(arr, json_string(names[i]));
    names_free(names, n);
    return wa_reply_json(r, 200, json_pack("{s:o}", kind == STORE_ADMIN ? "admins" : "users", arr));
}

/* PUT or DELETE of the account named in the path. */
static enum MHD_Result account_change(struct wa_req *r, enum store_account kind, bool put)
{
    struct store *st;

    if (!wa_name_ok(r->param))
        return wa_reply_error(r, 400, "name", "names are 1-63 letters, digits, '.', '_', '-'");
    st = wa_store(r);
    if (!st)
        return MHD_YES;
    return put ? account_put(r, st, kind, r->param) : account_delete(r, st, kind, r->param);
}

enum MHD_Result wa_users_list(struct wa_req *r)
{
    return accounts_list(r, STORE_PROXY_USER);
}

enum MHD_Result wa_users_put(struct wa_req *r)
{
    return account_change(r, STORE_PROXY_USER, true);
}

enum MHD_Result wa_users_delete(struct wa_req *r)
{
    return account_change(r, STORE_PROXY_USER, false);
}

enum MHD_Result wa_admins_list(struct wa_req *r)
{
    return accounts_list(r, STORE_ADMIN);
}

enum MHD_Result wa_admins_put(struct wa_req *r)
{
    return account_change(r, STORE_ADMIN, true);
}

enum MHD_Result wa_admins_delete(struct wa_req *r)
{
    return account_change(r, STORE_ADMIN, false);
}
