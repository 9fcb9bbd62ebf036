/* web-admin authentication: the bearer token file, the first admin account and its password
 * file, login sessions (12 h, in the database: store_session.c, so every node sharing it
 * knows them and sees them end), their CSRF tokens, and login throttling per account and per
 * client address (storage's store_throttle, in this process: delays that double after 5
 * failures, up to 5 minutes; an admin's own earlier addresses are spared the account's delay).
 *
 * Secrets are compared with sodium_memcmp so timing says nothing about how much matched.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "base/clock.h"
#include "web-admin/wa_auth.h"

#define WA_SESSION_MS (12LL * 3600 * 1000)
#define WA_COOKIE_ATTRS "; HttpOnly; SameSite=Strict; Path=/"
/* Over HTTPS the cookie is also Secure: a browser never sends it over plain HTTP. */
#define WA_COOKIE_SECURE "; Secure"

struct wa_auth {
    char token[WA_TOKEN_HEX + 1];    /* the bearer token (admin.token), read-only after start */
    pthread_mutex_t mu;              /* guards the counters */
    struct store_throttle *throttle; /* owned; locks itself */
    uint64_t failed, throttled;
};

static int token_load(struct wa_auth *a, const char *data_dir, char *err, size_t errlen);

struct wa_auth *wa_auth_new(const char *data_dir, const struct store_throttle_opts *throttle,
                            char *err, size_t errlen)
{
    struct wa_auth *a = calloc(1, sizeof(*a));

    if (!a) {
        snprintf(err, errlen, "admin server: out of memory");
        return NULL;
    }
    pthread_mutex_init(&a->mu, NULL);
    a->throttle = store_throttle_new(throttle); /* NULL: 5 failures, 1 s doubling to 5 min */
    if (!a->throttle) {
        snprintf(err, errlen, "admin server: out of memory");
        wa_auth_free(a);
        return NULL;
    }
    if (token_load(a, data_dir, err, errlen) < 0) {
        wa_auth_free(a);
        return NULL;
    }
    return a;
}

void wa_auth_free(struct wa_auth *a)
{
    if (!a)
        return;
    store_throttle_free(a->throttle);
    pthread_mutex_destroy(&a->mu);
    sodium_memzero(a, sizeof(*a));
    free(a);
}

static void random_hex(char out[WA_TOKEN_HEX + 1])
{
    unsigned char raw[WA_TOKEN_HEX / 2];

    randombytes_buf(raw, sizeof(raw));
    sodium_bin2hex(out, WA_TOKEN_HEX + 1, raw, sizeof(raw));
    sodium_memzero(raw, sizeof(raw));
}

static bool secret_eq(const char *a, const char *b)
{
    size_t n = strlen(a);

    return n > 0 && n == strlen(b) && sodium_memcmp(a, b, n) == 0;
}

/* ---- token file and first admin ---- */

static bool token_char_ok(char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '-' ||
           c == '_';
}

/* Writes text and a newline to a new file at path (which must not exist), readable by
 * proxyd's user only, never through a link, and synced before it counts as written; a file
 * cut short is removed. The copy on the stack is wiped. 0, or -1 with err filled and errno
 * EEXIST when path exists, another value otherwise. */
static int secret_file_create(const char *path, const char *text, char *err, size_t errlen)
{
    char line[WA_TOKEN_HEX + 2];
    size_t len;
    ssize_t n;
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);

    if (fd < 0) {
        snprintf(err, errlen, "%s: cannot create: %s", path, strerror(errno));
        return -1;
    }
    if (snprintf(line, sizeof(line), "%s\n", text) >= (int)sizeof(line)) {
        close(fd);
        unlink(path);
        snprintf(err, errlen, "%s: secret too long", path);
        errno = EINVAL;
        return -1;
    }
    len = strlen(line);
    n = write(fd, line, len);
    sodium_memzero(line, sizeof(line));
    if (n != (ssize_t)len || fsync(fd) < 0) {
        snprintf(err, errlen, "%s: cannot write: %s", path, strerror(errno));
        close(fd);
        unlink(path);
        errno = EIO; /* not EEXIST: the caller must not take the file for an old one */
        return -1;
    }
    close(fd);
    return 0;
}

/* Reads <data_dir>/admin.token into a->token, creating it (0600) if missing. */
static int token_load(struct wa_auth *a, const char *data_dir, char *err, size_t errlen)
{
    char path[4096], buf[256];
    ssize_t n;
    size_t len;
    int fd;

    if (snprintf(path, sizeof(path), "%s/admin.token", data_dir) >= (int)sizeof(path)) {
        snprintf(err, errlen, "%s: data folder path too long", data_dir);
        return -1;
    }
    random_hex(a->token);
    if (secret_file_create(path, a->token, err, errlen) == 0)
        return 0;
    if (errno != EEXIST) /* err says why */
        return -1;
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        snprintf(err, errlen, "%s: cannot read: %s", path, strerror(errno));
        return -1;
    }
    n = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    if (n < 0) {
        snprintf(err, errlen, "%s: cannot read: %s", path, strerror(errno));
        return -1;
    }
    buf[n] = '\0';
    len = strcspn(buf, " \t\r\n");
    buf[len] = '\0';
    for (size_t i = 0; i < len; i++)
        if (!token_char_ok(buf[i]))
            len = 0;
    if (len < 16 || len > WA_TOKEN_HEX) {
        snprintf(err, errlen, "%s: expected one token of 16 to 64 letters, digits, '-' or '_'",
                 path);
        return -1;
    }
    memcpy(a->token, buf, len + 1);
    sodium_memzero(buf, sizeof(buf));
    return 0;
}

static int first_password_path(const char *data_dir, char *path, size_t len)
{
    return snprintf(path, len, "%s/" WA_FIRST_PASSWORD_FILE, data_dir) < (int)len ? 0 : -1;
}

/* Writes pw to path (see secret_file_create). A file left from an earlier database is
 * replaced. 0, or -1 with err filled. */
static int first_password_write(const char *path, const char *pw, char *err, size_t errlen)
{
    if (unlink(path) < 0 && errno != ENOENT) {
        snprintf(err, errlen, "%s: cannot replace: %s", path, strerror(errno));
        return -1;
    }
    return secret_file_create(path, pw, err, errlen);
}

int wa_auth_first_admin(struct store_pool *pool, const char *data_dir, bool *created, char *err,
                        size_t errlen)
{
    /* No look-alikes (0/O, 1/l/I) so the password survives being read off a terminal. */
    static const char alphabet[] = "abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    char pw[17], path[4096];
    char **names = NULL;
    size_t n = 0;
    struct store *st;
    int rc;

    *created = false;
    if (first_password_path(data_dir, path, sizeof(path)) < 0) {
        snprintf(err, errlen, "%s: data folder path too long", data_dir);
        return -1;
    }
    st = store_pool_get(pool, err, errlen);
    if (!st)
        return -1;
    if (store_account_names(st, STORE_ADMIN, &names, &n) < 0) {
        snprintf(err, errlen, "admin accounts: cannot read the database");
        store_pool_put(pool, st);
        return -1;
    }
    store_strings_free(names, n);
    if (n > 0) { /* not the first run: a password file still there is still wanted */
        store_pool_put(pool, st);
        return 0;
    }
    for (size_t i = 0; i < 16; i++)
        pw[i] = alphabet[randombytes_uniform(sizeof(alphabet) - 1)];
    pw[16] = '\0';
    /* The file first: an account whose password nobody can read would lock the admin out. */
    rc = first_password_write(path, pw, err, errlen);
    if (rc == 0)
        rc = store_admin_first(st, WA_FIRST_ADMIN, pw, err, errlen);
    store_pool_put(pool, st);
    sodium_memzero(pw, sizeof(pw));
    if (rc <= 0) /* failed, or another process created an admin meanwhile */
        unlink(path);
    *created = rc == 1;
    return rc < 0 ? -1 : 0;
}

void wa_auth_first_password_forget(const char *data_dir)
{
    char path[4096];

    if (first_password_path(data_dir, path, sizeof(path)) == 0)
        unlink(path);
}

/* ---- sessions ---- */

/* A session's CSRF token, derived from its id (a keyed BLAKE2b of a constant), so any node
 * that knows the cookie knows the token without storing it, and the stored hash of the id
 * does not give it. */
static void session_csrf(const char *sid, char out[WA_TOKEN_HEX + 1])
{
    static const char what[] = "proxyd csrf";
    unsigned char raw[WA_TOKEN_HEX / 2];

    crypto_generichash(raw, sizeof(raw), (const unsigned char *)what, sizeof(what) - 1,
                       (const unsigned char *)sid, strlen(sid));
    sodium_bin2hex(out, WA_TOKEN_HEX + 1, raw, sizeof(raw));
    sodium_memzero(raw, sizeof(raw));
}

static const char *session_cookie(struct wa_req *r)
{
    const char *sid = MHD_lookup_connection_value(r->conn, MHD_COOKIE_KIND, "pxsid");

    return sid && strlen(sid) == WA_TOKEN_HEX ? sid : NULL;
}

int64_t wa_auth_sessions_end(struct wa_req *r, struct store *st, const char *admin, bool keep_own,
                             char *err, size_t errlen)
{
    const char *own =
        keep_own && r->via_session && strcmp(r->admin, admin) == 0 ? session_cookie(r) : NULL;

    return store_sessions_end(st, admin, own, err, errlen);
}

/* An admin's API token (store_token.c): it acts as its owner, with the owner's role now.
 * A database that cannot answer is a 500 (answered here), not a 401 that reads as revoked. */
static void token_check(struct wa_req *r, const char *secret)
{
    char owner[64], name[64], err[256];
    enum store_role role;
    struct store *st = wa_store(r);
    int rc;

    if (!st)
        return;
    rc = store_token_check(st, secret, owner, name, &role, err, sizeof(err));
    if (rc < 0) {
        wa_reply_error(r, 500, NULL, "cannot check the token: %s", err);
        return;
    }
    if (rc == 1)
        return;
    r->authed = true;
    r->role = role;
    snprintf(r->admin, sizeof(r->admin), "%s", owner);
    snprintf(r->actor, sizeof(r->actor), "%s/token:%s", owner, name);
}

void wa_auth_check(struct wa_req *r)
{
    const char *h, *sid;
    struct store_session s;
    struct store *st;
    char err[256];
    int rc;

    h = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);
    if (h) {
        /* A presented but wrong token is a failure, never a fallback to the cookie. */
        if (strncasecmp(h, "Bearer ", 7) != 0)
            return;
        if (secret_eq(h + 7, r->ctx->auth->token)) {
            r->authed = true;
            r->role = STORE_ROLE_ADMIN;
            snprintf(r->actor, sizeof(r->actor), "token");
        } else if (strncmp(h + 7, STORE_TOKEN_PREFIX, strlen(STORE_TOKEN_PREFIX)) == 0) {
            token_check(r, h + 7);
        }
        return;
    }
    sid = session_cookie(r);
    if (!sid)
        return;
    st = wa_store(r);
    if (!st)
        return;
    rc = store_session_get(st, sid, clock_wall_ms(), &s, err, sizeof(err));
    if (rc < 0) { /* not a 401, which would read as a logout */
        wa_reply_error(r, 500, NULL, "cannot check the session: %s", err);
        return;
    }
    if (rc == 0) {
        r->authed = true;
        r->via_session = true;
        r->must_change = s.must_change;
        r->role = s.role;
        snprintf(r->actor, sizeof(r->actor), "%s", s.admin);
        snprintf(r->admin, sizeof(r->admin), "%s", s.admin);
        session_csrf(sid, r->csrf);
    }
}

bool wa_auth_csrf_bad(struct wa_req *r)
{
    const char *h;

    if (!r->via_session)
        return false;
    if (!strcmp(r->method, "GET") || !strcmp(r->method, "HEAD") || !strcmp(r->method, "OPTIONS"))
        return false;
    h = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, "X-CSRF-Token");
    return !h || !secret_eq(h, r->csrf);
}

void wa_auth_counters(struct wa_auth *a, uint64_t *failed, uint64_t *throttled)
{
    pthread_mutex_lock(&a->mu);
    *failed = a->failed;
    *throttled = a->throttled;
    pthread_mutex_unlock(&a->mu);
}

/* ---- handlers ---- */

enum MHD_Result wa_auth_login(struct wa_req *r)
{
    char cookie[160];
    struct wa_auth *a = r->ctx->auth;
    json_t *body, *ans;
    const char *user, *pw;
    char csrf[WA_TOKEN_HEX + 1], sid[WA_TOKEN_HEX + 1];
    struct store *st;
    int64_t wait_ms;
    int ok, must_change;
    enum store_role role = STORE_ROLE_VIEWER;
    char detail[128], err[256];

    body = wa_body_json(r);
    if (!body)
        return MHD_YES;
    user = json_string_value(json_object_get(body, "user"));
    pw = json_string_value(json_object_get(body, "password"));
    if (!user || !*user) {
        json_decref(body);
        return wa_reply_error(r, 400, "user", "user is required");
    }
    if (!pw) {
        json_decref(body);
        return wa_reply_error(r, 400, "password", "password is required");
    }
    /* Refused unverified, the same for any name, so neither the answer nor its time tells
     * whether the account exists. */
    wait_ms = store_throttle_wait_ms(a->throttle, user, r->client, clock_mono_ms());
    if (wait_ms > 0) {
        pthread_mutex_lock(&a->mu);
        a->throttled++;
        pthread_mutex_unlock(&a->mu);
        json_decref(body);
        r->retry_after_s = (wait_ms + 999) / 1000;
        return wa_reply_error(r, 429, NULL, "too many failed logins; try again in %lld s",
                              (long long)r->retry_after_s);
    }
    st = wa_store(r);
    if (!st) {
        json_decref(body);
        return MHD_YES;
    }
    ok = store_account_verify(st, STORE_ADMIN, user, pw);
    if (ok < 0) {
        json_decref(body);
        return wa_reply_error(r, 500, NULL, "cannot check the password");
    }
    store_throttle_note(a->throttle, user, r->client, ok == 1, clock_mono_ms());
    snprintf(detail, sizeof(detail), "from %s", r->client);
    if (ok != 1) {
        pthread_mutex_lock(&a->mu);
        a->failed++;
        pthread_mutex_unlock(&a->mu);
        /* Under the name tried (the throttle bounds how many such rows one can cause); a
         * failure to write it does not change the answer. */
        char tried[64];
        snprintf(tried, sizeof(tried), "%s", user);
        store_audit_record(st, tried, "login.failed", detail, err, sizeof(err));
        json_decref(body);
        return wa_reply_error(r, 401, NULL, "wrong user name or password");
    }
    must_change = store_admin_must_change(st, user);
    if (must_change < 0 || store_admin_role(st, user, &role, err, sizeof(err)) != 0) {
        json_decref(body);
        return wa_reply_error(r, 500, NULL, "cannot read the account");
    }
    random_hex(sid);
    if (store_session_add(st, sid, user, clock_wall_ms() + WA_SESSION_MS, err, sizeof(err)) != 0) {
        sodium_memzero(sid, sizeof(sid));
        json_decref(body);
        return wa_reply_error(r, 500, NULL, "cannot record the session: %s", err);
    }
    /* Only a login that happened is recorded (a database that refused the session refused
     * the login). Recorded if it can be: the session stands either way. */
    store_audit_record(st, user, "login", detail, err, sizeof(err));
    session_csrf(sid, csrf);
    snprintf(cookie, sizeof(cookie), "pxsid=%s" WA_COOKIE_ATTRS "%s; Max-Age=%lld", sid,
             r->ctx->opts->tls_cert_pem ? WA_COOKIE_SECURE : "", WA_SESSION_MS / 1000);
    sodium_memzero(sid, sizeof(sid));

    ans = json_pack("{s:s,s:s,s:b,s:s}", "user", user, "csrf", csrf, "must_change_password",
                    must_change == 1, "role", store_role_str(role));
    json_decref(body);
    r->set_cookie = cookie;
    return wa_reply_json(r, 200, ans);
}

enum MHD_Result wa_auth_logout(struct wa_req *r)
{
    char detail[128], err[256];
    struct store *st;

    if (!r->via_session)
        return wa_reply_json(r, 200, json_pack("{s:b}", "ok", 1));
    st = wa_store(r); /* wa_auth_check's: the session was just read through it */
    if (!st)
        return MHD_YES;
    /* The browser forgets the cookie in any case. */
    r->set_cookie = r->ctx->opts->tls_cert_pem ? "pxsid=" WA_COOKIE_ATTRS WA_COOKIE_SECURE
                                                 "; Max-Age=0"
                                               : "pxsid=" WA_COOKIE_ATTRS "; Max-Age=0";
    /* Ended on every node. A database that cannot take the delete keeps the session alive
     * elsewhere until it expires: say so rather than pretend. */
    if (store_session_delete(st, session_cookie(r), err, sizeof(err)) != 0)
        return wa_reply_error(r, 500, NULL, "cannot end the session: %s", err);
    /* Recorded if it can be. */
    snprintf(detail, sizeof(detail), "from %s", r->client);
    store_audit_record(st, r->actor, "logout", detail, err, sizeof(err));
    return wa_reply_json(r, 200, json_pack("{s:b}", "ok", 1));
}

enum MHD_Result wa_auth_session(struct wa_req *r)
{
    return wa_reply_json(r, 200,
                         json_pack("{s:s,s:s,s:b,s:s}", "user", r->actor, "csrf",
                                   r->via_session ? r->csrf : "", "must_change_password",
                                   r->must_change, "role", store_role_str(r->role)));
}
