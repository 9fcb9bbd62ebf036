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
    store_strings_free(names, n);
    if (count)
        *count = n;
    return found;
}

/* True if admin name has the admin role and no other account does: deleting it would leave
 * nobody to manage accounts and settings (other than the token file's holder). */
static bool last_admin_role(struct store *st, const char *name)
{
    char **names, err[256];
    enum store_role role;
    size_t n, others = 0;
    bool is_admin = false;

    if (store_account_names(st, STORE_ADMIN, &names, &n) < 0)
        return false;
    for (size_t i = 0; i < n; i++) {
        if (store_admin_role(st, names[i], &role, err, sizeof(err)) != 0 ||
            role != STORE_ROLE_ADMIN)
            continue;
        if (!strcmp(names[i], name))
            is_admin = true;
        else
            others++;
    }
    store_strings_free(names, n);
    return is_admin && others == 0;
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
    /* An admin's role, optional: a new account without one gets the admin role. */
    json_t *jr = json_object_get(body, "role");
    int role = -1;
    if (kind == STORE_ADMIN && jr && (role = store_role_parse(json_string_value(jr))) < 0) {
        json_decref(body);
        return wa_reply_error(r, 400, "role", "role is admin, operator or viewer");
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
    if (kind == STORE_ADMIN && role >= 0) {
        rc = store_admin_role_set(st, name, (enum store_role)role, r->actor, err, sizeof(err));
        if (rc == 2)
            return wa_reply_error(r, 409, "role", "%s is the last admin with the admin role", name);
        if (rc != 0)
            return wa_reply_error(r, 500, NULL, "cannot save the role: %s", err);
    }
    if (kind == STORE_PROXY_USER)
        users_changed(ctx, from, store_policy_version(st));
    /* Another admin's password changed: end their sessions (keep the caller's own) and their
     * API tokens, which whoever knew the old password may have made. */
    if (kind == STORE_ADMIN && strcmp(name, r->admin) != 0) {
        if (wa_auth_sessions_end(r, st, name, false, err, sizeof(err)) < 0)
            return wa_reply_error(r, 500, NULL, "password saved, but its sessions stay: %s", err);
        if (store_token_revoke_owner(st, name, r->actor, err, sizeof(err)) < 0)
            return wa_reply_error(r, 500, NULL, "password saved, but its tokens stay: %s", err);
    } else if (kind == STORE_ADMIN &&
               wa_auth_sessions_end(r, st, name, true, err, sizeof(err)) < 0) {
        /* One's own: the other sessions end, the one making the change stays. */
        return wa_reply_error(r, 500, NULL, "password saved, but other sessions stay: %s", err);
    }
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
    if (exists > 0 && kind == STORE_ADMIN && last_admin_role(st, name))
        count = 1;
    if (exists <= 0 || (kind == STORE_ADMIN && count <= 1)) {
        store_change_rollback(st);
        if (exists < 0)
            return wa_reply_error(r, 500, NULL, "cannot read the accounts");
        if (!exists)
            return wa_reply_error(r, 404, NULL, "no %s %s", kind == STORE_ADMIN ? "admin" : "user",
                                  name);
        return wa_reply_error(r, 409, NULL, "%s is the last admin with the admin role", name);
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
    /* An admin's sessions went with its row (admin_sessions' foreign key). */
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
    json_t *roles = kind == STORE_ADMIN ? json_object() : NULL;
    for (size_t i = 0; arr && i < n; i++) {
        enum store_role role;
        char err[256];

        json_array_append_new(arr, json_string(names[i]));
        if (roles && store_admin_role(st, names[i], &role, err, sizeof(err)) == 0)
            json_object_set_new(roles, names[i], json_string(store_role_str(role)));
    }
    store_strings_free(names, n);
    if (roles) /* {"admins":[names], "roles":{name: role}}: the list stays a list of names */
        return wa_reply_json(r, 200, json_pack("{s:o,s:o}", "admins", arr, "roles", roles));
    return wa_reply_json(r, 200, json_pack("{s:o}", "users", arr));
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

/* PUT /api/admins/NAME/role {"role"}: the admin's sessions end, so the next login has the
 * new role. */
enum MHD_Result wa_admins_role(struct wa_req *r)
{
    struct store *st;
    json_t *body;
    char err[512];
    int role, rc;

    if (!wa_name_ok(r->param))
        return wa_reply_error(r, 400, "name", "names are 1-63 letters, digits, '.', '_', '-'");
    body = wa_body_json(r);
    if (!body)
        return MHD_YES;
    role = store_role_parse(json_string_value(json_object_get(body, "role")));
    json_decref(body);
    if (role < 0)
        return wa_reply_error(r, 400, "role", "role is admin, operator or viewer");
    st = wa_store(r);
    if (!st)
        return MHD_YES;
    rc = store_admin_role_set(st, r->param, (enum store_role)role, r->actor, err, sizeof(err));
    if (rc == 1)
        return wa_reply_error(r, 404, NULL, "no admin %s", r->param);
    if (rc == 2)
        return wa_reply_error(r, 409, "role", "%s is the last admin with the admin role", r->param);
    if (rc < 0)
        return wa_reply_error(r, 500, NULL, "%s", err);
    /* store_admin_role_set ended the admin's sessions on every node. */
    return wa_reply_json(
        r, 200,
        json_pack("{s:s,s:s}", "admin", r->param, "role", store_role_str((enum store_role)role)));
}

/* POST /api/account/password {"current","password"}: the caller changes its own password,
 * whatever its role, after proving it knows the current one (a session left open on a
 * shared screen must not be enough). */
enum MHD_Result wa_account_password(struct wa_req *r)
{
    const char *cur, *pw;
    struct store *st;
    json_t *body;
    char err[512];
    int ok;

    if (!r->via_session)
        return wa_reply_error(r, 400, NULL, "the bearer token belongs to no account");
    body = wa_body_json(r);
    if (!body)
        return MHD_YES;
    cur = json_string_value(json_object_get(body, "current"));
    pw = json_string_value(json_object_get(body, "password"));
    if (!cur || !*cur) {
        json_decref(body);
        return wa_reply_error(r, 400, "current", "the current password is required");
    }
    if (!pw || strlen(pw) < 8 || strlen(pw) > 1024) {
        json_decref(body);
        return wa_reply_error(r, 400, "password", "password must be 8 to 1024 characters");
    }
    st = wa_store(r);
    if (!st) {
        json_decref(body);
        return MHD_YES;
    }
    ok = store_account_verify(st, STORE_ADMIN, r->actor, cur);
    if (ok != 1) {
        json_decref(body);
        if (ok < 0)
            return wa_reply_error(r, 500, NULL, "cannot check the password");
        return wa_reply_error(r, 403, "current", "the current password is wrong");
    }
    ok = store_account_set(st, STORE_ADMIN, r->actor, pw, r->actor, err, sizeof(err));
    json_decref(body);
    if (ok < 0)
        return wa_reply_error(r, 500, NULL, "cannot save the password");
    /* Its other sessions end on every node; this one stays, no longer bound to change it. */
    if (wa_auth_sessions_end(r, st, r->admin, true, err, sizeof(err)) < 0)
        return wa_reply_error(r, 500, NULL, "password saved, but other sessions stay: %s", err);
    if (strcmp(r->actor, WA_FIRST_ADMIN) == 0)
        wa_auth_first_password_forget(r->ctx->opts->data_dir);
    return wa_reply_json(r, 200, json_pack("{s:s}", "admin", r->actor));
}
