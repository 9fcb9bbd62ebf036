/* proxyctl verbs that move policy text and domain lists: import (a policy file replaces the
 * rules; anything else is a domain list), export, lists. A file is a policy file when its
 * first line that is not blank or a comment starts with "allow" or "deny". */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "proxyctl/ctl_cmd.h"
#include "proxyctl/ctl_http.h"
#include "proxyctl/ctl_table.h"

#define IMPORT_MAX_BYTES (32LL * 1024 * 1024) /* the API's limit for lists (policies: 8 MiB) */

char *ctl_read_file(struct ctl_ctx *ctx, const char *path, size_t *len, enum ctl_status *st)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        *st = ctl_usage(ctx, "cannot open %s: %s", path, strerror(errno));
        return NULL;
    }
    struct stat sb;
    if (fstat(fileno(f), &sb) == 0 && S_ISDIR(sb.st_mode)) {
        fclose(f);
        *st = ctl_usage(ctx, "%s is a directory", path);
        return NULL;
    }
    size_t cap = 65536, n = 0;
    char *buf = malloc(cap);
    const char *why = NULL;
    for (;;) {
        if (!buf) {
            why = "out of memory";
            break;
        }
        if ((long long)n > IMPORT_MAX_BYTES) {
            free(buf);
            fclose(f);
            *st = ctl_fail(ctx, CTL_REFUSED,
                           "%s is larger than the admin API accepts (32 MiB for a list, 8 MiB "
                           "for a policy)",
                           path);
            return NULL;
        }
        if (n + 1 >= cap) {
            char *p = realloc(buf, cap * 2);
            if (!p) {
                why = "out of memory";
                break;
            }
            buf = p;
            cap *= 2;
        }
        size_t got = fread(buf + n, 1, cap - n - 1, f);
        n += got;
        if (got == 0) {
            if (ferror(f))
                why = strerror(errno);
            break;
        }
    }
    fclose(f);
    if (why) {
        free(buf);
        *st = ctl_usage(ctx, "cannot read %s: %s", path, why);
        return NULL;
    }
    buf[n] = '\0';
    *len = n;
    return buf;
}

/* The first line that is neither blank nor a comment; false if there is none. */
static bool first_content_line(const char *text, size_t len, const char **line, size_t *n)
{
    const char *p = text, *end = text + len;
    while (p < end) {
        const char *eol = memchr(p, '\n', (size_t)(end - p));
        if (!eol)
            eol = end;
        const char *s = p;
        while (s < eol && (*s == ' ' || *s == '\t' || *s == '\r'))
            s++;
        if (s < eol && *s != '#' && *s != '!') {
            *line = p;
            *n = (size_t)(eol - p);
            return true;
        }
        p = eol + 1;
    }
    return false;
}

static bool starts_with_word(const char *line, size_t n, const char *word)
{
    size_t w = strlen(word);
    return n > w && strncmp(line, word, w) == 0 && (line[w] == ' ' || line[w] == '\t');
}

/* "lists/ads.txt" -> "ads"; false if the result is not a usable list name. */
static bool list_name_from_path(const char *path, char *name, size_t len)
{
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    snprintf(name, len, "%s", base);
    char *dot = strchr(name + (name[0] == '.'), '.');
    if (dot)
        *dot = '\0';
    if (!*name || strlen(name) > 64)
        return false;
    for (const unsigned char *p = (const unsigned char *)name; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
              strchr("._-@", *p)))
            return false;
    return true;
}

/* PUTs a file's text to an API path: with no total timeout (a large list takes a while to
 * store) and a progress bar on a terminal. */
static enum ctl_status put_text(struct ctl_ctx *ctx, const char *api_path, const char *text,
                                size_t len, struct ctl_answer *ans)
{
    struct ctl_request req = {
        .method = "PUT",
        .path = api_path,
        .body = text,
        .body_len = len,
        .content_type = "text/plain; charset=utf-8",
        .flags = CTL_API_NO_TIMEOUT | CTL_API_PROGRESS,
    };
    return ctl_api_send(ctx, &req, ans);
}

static enum ctl_status import_policy(struct ctl_ctx *ctx, const char *path, const char *text,
                                     size_t len)
{
    struct ctl_answer ans;
    enum ctl_status st = put_text(ctx, "/api/policy", text, len, &ans);
    if (st != CTL_OK) {
        if (st == CTL_REFUSED) {
            char msg[sizeof(ctx->err)];
            snprintf(msg, sizeof(msg), "%s", ctx->err);
            ctl_fail(ctx, st, "%s: policy refused, nothing changed: %s", path, msg);
        }
        return st;
    }
    if (ctx->json && ans.json)
        ctl_print_json(ans.json);
    else
        printf("imported policy %s: %lld rules in force (they replace the previous rules)\n", path,
               (long long)json_integer_value(json_object_get(ans.json, "rules")));
    ctl_answer_free(&ans);
    return CTL_OK;
}

static enum ctl_status import_list(struct ctl_ctx *ctx, const char *path, const char *name,
                                   const char *text, size_t len, bool replace)
{
    char esc[256], url[320];
    if (!ctl_path_escape(name, esc, sizeof(esc)))
        return ctl_usage(ctx, "list name too long: %s", name);
    snprintf(url, sizeof(url), "/api/lists/%s%s", esc, replace ? "?replace=1" : "");
    struct ctl_answer ans;
    enum ctl_status st = put_text(ctx, url, text, len, &ans);
    const char *api_word = strstr(ctx->err, "confirm with replace=1");
    if (st == CTL_REFUSED && api_word) {
        /* The API's words name its parameter; ours name the option. */
        char msg[sizeof(ctx->err)];
        snprintf(msg, sizeof(msg), "%.*s%s", (int)(api_word - ctx->err), ctx->err,
                 "give --replace to go ahead");
        ctl_fail(ctx, CTL_REFUSED, "%s", msg);
    }
    if (st != CTL_OK)
        return st;
    if (ctx->json && ans.json) {
        ctl_print_json(ans.json);
        ctl_answer_free(&ans);
        return CTL_OK;
    }
    const json_t *j = ans.json;
    long long skipped = (long long)json_integer_value(json_object_get(j, "skipped"));
    printf("imported list %s from %s: %lld added, %lld duplicates, %lld skipped\n", name, path,
           (long long)json_integer_value(json_object_get(j, "added")),
           (long long)json_integer_value(json_object_get(j, "duplicates")), skipped);
    if (skipped > 0) {
        const json_t *line = json_object_get(j, "first_skipped_line");
        const char *reason = json_string_value(json_object_get(j, "first_skipped_reason"));
        if (json_is_integer(line))
            printf("  first skipped: line %lld: %s\n", (long long)json_integer_value(line),
                   reason ? reason : "");
        else if (json_is_string(line))
            printf("  first skipped: '%s': %s\n", json_string_value(line), reason ? reason : "");
    }
    ctl_answer_free(&ans);
    return CTL_OK;
}

enum ctl_status ctl_cmd_import(struct ctl_ctx *ctx, const struct ctl_call *call)
{
    const char *path = call->words[0];
    const struct ctl_value *list = ctl_call_opt(call, "--list");
    enum ctl_status st = CTL_OK;
    size_t len = 0;
    char *text = ctl_read_file(ctx, path, &len, &st);
    if (!text)
        return st;
    const char *line;
    size_t n;
    /* With --list it is a list, whatever it holds: the daemon says what an empty one means. */
    if (!first_content_line(text, len, &line, &n) && !list->set) {
        free(text);
        return ctl_usage(ctx, "%s holds no rules or domains (only blank lines or comments)", path);
    }
    if (!list->set && (starts_with_word(line, n, "allow") || starts_with_word(line, n, "deny"))) {
        st = import_policy(ctx, path, text, len);
    } else {
        char name[128];
        if (list->set)
            snprintf(name, sizeof(name), "%s", list->str);
        else if (!list_name_from_path(path, name, sizeof(name))) {
            free(text);
            return ctl_usage(ctx, "cannot name a list after %s: give --list NAME", path);
        }
        st = import_list(ctx, path, name, text, len, ctl_call_opt(call, "--replace")->set);
    }
    free(text);
    return st;
}

enum ctl_status ctl_cmd_lists_import(struct ctl_ctx *ctx, const struct ctl_call *call)
{
    const char *name = call->words[0], *path = call->words[1];
    enum ctl_status st = CTL_OK;
    size_t len = 0;
    char *text = ctl_read_file(ctx, path, &len, &st);
    if (!text)
        return st;
    st = import_list(ctx, path, name, text, len, ctl_call_opt(call, "--replace")->set);
    free(text);
    return st;
}

enum ctl_status ctl_cmd_export(struct ctl_ctx *ctx, const struct ctl_call *call)
{
    struct ctl_request req = {.method = "GET", .path = "/api/policy"};
    struct ctl_answer ans;
    enum ctl_status st = ctl_api_send(ctx, &req, &ans);
    if (st != CTL_OK)
        return st;
    if (ans.len > 0) {
        fwrite(ans.body, 1, ans.len, stdout);
        if (ans.body[ans.len - 1] != '\n')
            putchar('\n');
    }
    ctl_answer_free(&ans);
    return CTL_OK;
}

enum ctl_status ctl_cmd_lists(struct ctl_ctx *ctx, const struct ctl_call *call)
{
    static const struct ctl_column cols[] = {
        {"name", false, true}, {"entries", true, false}, {"updated", false, false}};
    json_t *out;
    struct ctl_table *t;
    enum ctl_status st = ctl_api_table(ctx, "/api/lists", cols, 3, &out, &t);
    if (!t)
        return st;
    size_t i;
    const json_t *r;
    json_array_foreach(json_object_get(out, "lists"), i, r)
    {
        char entries[24], updated[32];
        snprintf(entries, sizeof(entries), "%lld",
                 (long long)json_integer_value(json_object_get(r, "entries")));
        ctl_time_str((long long)json_integer_value(json_object_get(r, "updated_ms")), updated,
                     sizeof(updated));
        const char *cells[] = {json_string_value(json_object_get(r, "name")), entries, updated};
        ctl_table_add(t, cells);
    }
    ctl_table_print(t, "no lists (load one with: proxyctl import FILE --list NAME)");
    json_decref(out);
    return CTL_OK;
}

static enum ctl_status list_request(struct ctl_ctx *ctx, const char *method, const char *name,
                                    json_t **out)
{
    char esc[256], path[300], what[300];
    if (!ctl_path_escape(name, esc, sizeof(esc)))
        return ctl_usage(ctx, "list name too long");
    snprintf(path, sizeof(path), "/api/lists/%s", esc);
    snprintf(what, sizeof(what), "list %s", name);
    return ctl_api(ctx, method, path, NULL, out, what);
}

enum ctl_status ctl_cmd_lists_show(struct ctl_ctx *ctx, const struct ctl_call *call)
{
    json_t *out = NULL;
    enum ctl_status st = list_request(ctx, "GET", call->words[0], &out);
    if (st != CTL_OK)
        return st;
    if (ctx->json) {
        ctl_print_json(out);
    } else {
        size_t i;
        const json_t *e;
        json_array_foreach(json_object_get(out, "entries"), i, e)
        {
            const char *s = json_string_value(e);
            if (s && !strpbrk(s, "\n\r\x1b"))
                puts(s);
        }
    }
    json_decref(out);
    return CTL_OK;
}

enum ctl_status ctl_cmd_lists_del(struct ctl_ctx *ctx, const struct ctl_call *call)
{
    json_t *out = NULL;
    enum ctl_status st = list_request(ctx, "DELETE", call->words[0], &out);
    if (st != CTL_OK)
        return st;
    return ctl_print_done(ctx, out, "deleted list %s\n", call->words[0]);
}
