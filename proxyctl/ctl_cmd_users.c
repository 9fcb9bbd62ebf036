/* proxyctl verbs about accounts: proxy users (users, users add/passwd/del) and dashboard
 * admins (admin add/role/del/passwd) and their API tokens (token add/list/del). Passwords
 * come from the terminal without echo, typed twice, or from one line of standard input when
 * it is not a terminal or with --password-stdin; never from the command line, where other
 * local users could read them in ps. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include "proxyctl/ctl_cmd.h"
#include "proxyctl/ctl_http.h"
#include "proxyctl/ctl_table.h"

#define PASSWORD_MAX 256

static struct termios saved_tty;

/* Ctrl-C at the prompt must not leave the terminal without echo. */
static void restore_tty_and_die(int sig)
{
    tcsetattr(STDIN_FILENO, TCSAFLUSH, &saved_tty);
    signal(sig, SIG_DFL);
    raise(sig);
}

/* Reads one line into buf without the newline; false on EOF or a line too long. */
static bool read_line(FILE *in, char *buf, size_t len, bool *too_long)
{
    *too_long = false;
    if (!fgets(buf, (int)len, in))
        return false;
    size_t n = strlen(buf);
    if (n > 0 && buf[n - 1] == '\n')
        buf[--n] = '\0';
    else if (!feof(in)) {
        *too_long = true;
        return false;
    }
    if (n > 0 && buf[n - 1] == '\r')
        buf[--n] = '\0';
    return true;
}

static bool prompt_no_echo(const char *prompt, char *buf, size_t len, bool *too_long)
{
    struct termios t;
    fputs(prompt, stderr);
    fflush(stderr);
    if (tcgetattr(STDIN_FILENO, &saved_tty) != 0)
        return read_line(stdin, buf, len, too_long);
    struct sigaction sa = {.sa_handler = restore_tty_and_die}, old_int, old_term;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, &old_int);
    sigaction(SIGTERM, &sa, &old_term);
    t = saved_tty;
    t.c_lflag &= ~(tcflag_t)ECHO;
    t.c_lflag |= ECHONL;
    tcsetattr(STDIN_FILENO, TCSAFLUSH, &t);
    bool ok = read_line(stdin, buf, len, too_long);
    tcsetattr(STDIN_FILENO, TCSAFLUSH, &saved_tty);
    sigaction(SIGINT, &old_int, NULL);
    sigaction(SIGTERM, &old_term, NULL);
    return ok;
}

static enum ctl_status read_password(struct ctl_ctx *ctx, const struct ctl_call *call,
                                     const char *who, char *pw, size_t len)
{
    bool too_long = false;
    const struct ctl_value *file = ctl_call_opt(call, "--password-file");
    bool from_stdin = ctl_call_opt(call, "--password-stdin")->set || !isatty(STDIN_FILENO);
    if (file && file->set) {
        /* Its first line; the file is the admin's to keep secret (mode 0600). */
        FILE *f = fopen(file->str, "r");
        if (!f)
            return ctl_usage(ctx, "%s: %s", file->str, strerror(errno));
        bool ok = read_line(f, pw, len, &too_long);
        fclose(f);
        if (!ok)
            return too_long ? ctl_usage(ctx, "password longer than %zu bytes", len - 2)
                            : ctl_usage(ctx, "%s: no password in it", file->str);
    } else if (from_stdin) {
        if (!read_line(stdin, pw, len, &too_long))
            return too_long ? ctl_usage(ctx, "password longer than %zu bytes", len - 2)
                            : ctl_usage(ctx, "no password on standard input");
    } else {
        char prompt[400], again[PASSWORD_MAX + 2];
        snprintf(prompt, sizeof(prompt), "new password for %s: ", who);
        if (!prompt_no_echo(prompt, pw, len, &too_long))
            return ctl_usage(ctx, too_long ? "password too long" : "no password given");
        if (!prompt_no_echo("again: ", again, sizeof(again), &too_long)) {
            explicit_bzero(again, sizeof(again));
            return ctl_usage(ctx, "no password given");
        }
        bool same = strcmp(pw, again) == 0;
        explicit_bzero(again, sizeof(again));
        if (!same)
            return ctl_usage(ctx, "the passwords do not match; nothing changed");
    }
    if (!*pw)
        return ctl_usage(ctx, "the password is empty; nothing changed");
    return CTL_OK;
}

/* PUT {"password"} to path (/api/users/NAME or /api/admins/NAME); with create, the server
 * refuses (409) a name that exists, so two adds of one name cannot reset its password. role:
 * an admin's, or NULL. */
static enum ctl_status put_password(struct ctl_ctx *ctx, const struct ctl_call *call,
                                    const char *kind, const char *name, bool create,
                                    const char *role, json_t **out)
{
    char esc[256], path[300], who[300];
    if (!ctl_path_escape(name, esc, sizeof(esc)))
        return ctl_usage(ctx, "name too long");
    snprintf(path, sizeof(path), "/api/%ss/%s", kind, esc);
    snprintf(who, sizeof(who), "%s %s", kind, name);
    char pw[PASSWORD_MAX + 2];
    enum ctl_status st = read_password(ctx, call, who, pw, sizeof(pw));
    if (st != CTL_OK) {
        explicit_bzero(pw, sizeof(pw));
        return st;
    }
    json_t *body = json_pack("{s:s,s:b}", "password", pw, "create", create);
    if (body && role)
        json_object_set_new(body, "role", json_string(role));
    explicit_bzero(pw, sizeof(pw));
    if (!body)
        return ctl_usage(ctx, "the password is not valid UTF-8");
    st = ctl_api(ctx, "PUT", path, body, out, who);
    /* Jansson keeps its own copy of the string: wipe it before freeing. */
    json_t *copy = json_object_get(body, "password");
    const char *s = json_string_value(copy);
    if (s)
        explicit_bzero((char *)s, strlen(s));
    json_decref(body);
    return st;
}

/* Whether proxy user `name` exists; CTL_OK with *exists set, or an error status. */
static enum ctl_status user_exists(struct ctl_ctx *ctx, const char *name, bool *exists)
{
    json_t *out = NULL;
    enum ctl_status st = ctl_api(ctx, "GET", "/api/users", NULL, &out, NULL);
    if (st != CTL_OK)
        return st;
    *exists = false;
    size_t i;
    const json_t *u;
    json_array_foreach(json_object_get(out, "users"), i, u)
    {
        const char *s = json_string_value(u);
        if (!s && json_is_object(u))
            s = json_string_value(json_object_get(u, "name"));
        if (s && strcmp(s, name) == 0)
            *exists = true;
    }
    json_decref(out);
    return CTL_OK;
}

enum ctl_status ctl_cmd_users(struct ctl_ctx *ctx, const struct ctl_call *call)
{
    json_t *out;
    enum ctl_status st = ctl_api_show(ctx, "GET", "/api/users", NULL, &out, NULL);
    if (!out)
        return st;
    const json_t *users = json_object_get(out, "users");
    size_t i;
    const json_t *u;
    json_array_foreach(users, i, u)
    {
        const char *s = json_string_value(u);
        if (!s && json_is_object(u))
            s = json_string_value(json_object_get(u, "name"));
        if (s && !strpbrk(s, "\n\r\x1b"))
            puts(s);
    }
    if (json_array_size(users) == 0)
        fprintf(stderr, "no proxy users (add one with: proxyctl users add NAME)\n");
    json_decref(out);
    return CTL_OK;
}

static enum ctl_status set_user_password(struct ctl_ctx *ctx, const struct ctl_call *call,
                                         bool create)
{
    const char *name = call->words[0];
    bool exists = false;
    enum ctl_status st = user_exists(ctx, name, &exists);
    if (st != CTL_OK)
        return st;
    if (create && exists)
        return ctl_fail(ctx, CTL_REFUSED,
                        "user %s already exists (change the password with: proxyctl users "
                        "passwd %s)",
                        name, name);
    if (!create && !exists)
        return ctl_fail(ctx, CTL_REFUSED, "no such user %s", name);
    json_t *out = NULL;
    st = put_password(ctx, call, "user", name, create, NULL, &out);
    if (st != CTL_OK)
        return st;
    return ctl_print_done(ctx, out,
                          create ? "added user %s\n" : "changed the password of user %s\n", name);
}

enum ctl_status ctl_cmd_users_add(struct ctl_ctx *ctx, const struct ctl_call *call)
{
    return set_user_password(ctx, call, true);
}

enum ctl_status ctl_cmd_users_passwd(struct ctl_ctx *ctx, const struct ctl_call *call)
{
    return set_user_password(ctx, call, false);
}

enum ctl_status ctl_cmd_users_del(struct ctl_ctx *ctx, const struct ctl_call *call)
{
    char esc[256], path[300], what[300];
    if (!ctl_path_escape(call->words[0], esc, sizeof(esc)))
        return ctl_usage(ctx, "name too long");
    snprintf(path, sizeof(path), "/api/users/%s", esc);
    snprintf(what, sizeof(what), "user %s", call->words[0]);
    json_t *out = NULL;
    enum ctl_status st = ctl_api(ctx, "DELETE", path, NULL, &out, what);
    if (st != CTL_OK)
        return st;
    return ctl_print_done(ctx, out, "deleted user %s\n", call->words[0]);
}

enum ctl_status ctl_cmd_admin_passwd(struct ctl_ctx *ctx, const struct ctl_call *call)
{
    const char *name = call->nwords > 0 ? call->words[0] : "admin";
    json_t *out = NULL;
    enum ctl_status st = put_password(ctx, call, "admin", name, false, NULL, &out);
    if (st != CTL_OK)
        return st;
    return ctl_print_done(ctx, out, "set the password of admin %s\n", name);
}

/* admin add NAME [--role ROLE] [--password-file F | --password-stdin]: a new dashboard
 * admin; a name that exists is refused, its password kept. */
enum ctl_status ctl_cmd_admin_add(struct ctl_ctx *ctx, const struct ctl_call *call)
{
    const struct ctl_value *role = ctl_call_opt(call, "--role");
    const char *r = role && role->set ? role->str : "admin";
    if (strcmp(r, "admin") && strcmp(r, "operator") && strcmp(r, "viewer"))
        return ctl_usage(ctx, "--role is admin, operator or viewer, not '%s'", r);
    json_t *out = NULL;
    enum ctl_status st = put_password(ctx, call, "admin", call->words[0], true, r, &out);
    if (st != CTL_OK)
        return st;
    return ctl_print_done(ctx, out, "added admin %s (role %s)\n", call->words[0], r);
}

/* admin role NAME ROLE. */
enum ctl_status ctl_cmd_admin_role(struct ctl_ctx *ctx, const struct ctl_call *call)
{
    char esc[256], path[320], what[300];
    if (!ctl_path_escape(call->words[0], esc, sizeof(esc)))
        return ctl_usage(ctx, "name too long");
    snprintf(path, sizeof(path), "/api/admins/%s/role", esc);
    snprintf(what, sizeof(what), "admin %s", call->words[0]);
    json_t *body = json_pack("{s:s}", "role", call->words[1]), *out = NULL;
    enum ctl_status st = ctl_api(ctx, "PUT", path, body, &out, what);
    json_decref(body);
    if (st != CTL_OK)
        return st;
    return ctl_print_done(ctx, out, "admin %s now has the role %s\n", call->words[0],
                          call->words[1]);
}

/* admin del NAME. */
enum ctl_status ctl_cmd_admin_del(struct ctl_ctx *ctx, const struct ctl_call *call)
{
    char esc[256], path[300], what[300];
    if (!ctl_path_escape(call->words[0], esc, sizeof(esc)))
        return ctl_usage(ctx, "name too long");
    snprintf(path, sizeof(path), "/api/admins/%s", esc);
    snprintf(what, sizeof(what), "admin %s", call->words[0]);
    json_t *out = NULL;
    enum ctl_status st = ctl_api(ctx, "DELETE", path, NULL, &out, what);
    if (st != CTL_OK)
        return st;
    return ctl_print_done(ctx, out, "deleted admin %s\n", call->words[0]);
}

/* token add NAME [--owner ADMIN]: the secret goes to stdout alone on its line (so
 * `proxyctl token add ci > ci.token` keeps it), the note to stderr. */
enum ctl_status ctl_cmd_token_add(struct ctl_ctx *ctx, const struct ctl_call *call)
{
    const struct ctl_value *owner = ctl_call_opt(call, "--owner");
    char what[300];
    snprintf(what, sizeof(what), "token %s", call->words[0]);
    json_t *body = json_pack("{s:s}", "name", call->words[0]), *out = NULL;
    if (body && owner->set)
        json_object_set_new(body, "owner", json_string(owner->str));
    enum ctl_status st = ctl_api(ctx, "POST", "/api/tokens", body, &out, what);
    json_decref(body);
    if (st != CTL_OK)
        return st;
    if (ctx->json) {
        ctl_print_json(out);
    } else {
        puts(ctl_json_str(out, "token"));
        fprintf(stderr, "token %s acts for admin %s; this is the only time it is shown\n",
                ctl_json_str(out, "name"), ctl_json_str(out, "owner"));
    }
    json_t *secret = json_object_get(out, "token");
    const char *s = json_string_value(secret);
    if (s)
        explicit_bzero((char *)s, strlen(s));
    json_decref(out);
    return CTL_OK;
}

enum ctl_status ctl_cmd_token_list(struct ctl_ctx *ctx, const struct ctl_call *call)
{
    (void)call;
    static const struct ctl_column cols[] = {{"name", false, false},
                                             {"owner", false, false},
                                             {"created", false, false},
                                             {"last used", false, false}};
    json_t *out;
    struct ctl_table *t;
    enum ctl_status st = ctl_api_table(ctx, "/api/tokens", cols, 4, &out, &t);
    if (!t)
        return st;
    size_t i;
    const json_t *r;
    json_array_foreach(json_object_get(out, "tokens"), i, r)
    {
        char created[32], used[32];
        long long last = ctl_json_num(r, "last_used_ms");
        const char *cells[] = {
            ctl_json_str(r, "name"), ctl_json_str(r, "owner"),
            ctl_time_str(ctl_json_num(r, "created_ms"), created, sizeof(created)),
            last ? ctl_time_str(last, used, sizeof(used)) : "never"};
        ctl_table_add(t, cells);
    }
    ctl_table_print(t, "no API tokens (make one with: proxyctl token add NAME)");
    json_decref(out);
    return CTL_OK;
}

enum ctl_status ctl_cmd_token_del(struct ctl_ctx *ctx, const struct ctl_call *call)
{
    const struct ctl_value *owner = ctl_call_opt(call, "--owner");
    char esc[256], owner_esc[256] = "", path[600], what[300];
    if (!ctl_path_escape(call->words[0], esc, sizeof(esc)) ||
        (owner->set && !ctl_path_escape(owner->str, owner_esc, sizeof(owner_esc))))
        return ctl_usage(ctx, "name too long");
    snprintf(path, sizeof(path), "/api/tokens/%s%s%s", esc, owner->set ? "?owner=" : "", owner_esc);
    snprintf(what, sizeof(what), "token %s", call->words[0]);
    json_t *out = NULL;
    enum ctl_status st = ctl_api(ctx, "DELETE", path, NULL, &out, what);
    if (st != CTL_OK)
        return st;
    return ctl_print_done(ctx, out, "revoked token %s\n", call->words[0]);
}
