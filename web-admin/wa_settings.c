/* web-admin settings: GET and PUT /api/settings, the keys an admin may set at run time,
 * each with its check and help text.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "web-admin/wa_settings.h"

bool wa_settings_hostport_ok(const char *s)
{
    const char *colon = strrchr(s, ':');
    size_t n = strlen(s);

    if (!colon || colon == s || n > 255 || !colon[1] ||
        strspn(colon + 1, "0123456789") != strlen(colon + 1))
        return false;
    return strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-_:[]") == n;
}

bool wa_settings_pac_proxy_ok(const char *s)
{
    return wa_settings_hostport_ok(strncmp(s, "https://", 8) == 0 ? s + 8 : s);
}

/* None is policy: the rule set is compiled from rules and lists alone, so a setting needs no
 * compile. */
struct setting_def {
    const char *key;
    bool (*valid)(const char *value);
    const char *expect;
};

static bool on_off(const char *s)
{
    return !strcmp(s, "on") || !strcmp(s, "off");
}

static const struct setting_def settings[] = {
    {"pac_proxy", wa_settings_pac_proxy_ok,
     "host:port handed out by /proxy.pac (https://host:port: the proxy's TLS port)"},
    {"access_requests", on_off,
     "on: block pages offer a form to request access (queued under Requests); off (default)"},
    {"https_block_page", on_off,
     "on: with a local CA, a blocked HTTPS site shows the block page (clients must trust the "
     "CA); off: the browser's own error; unset: --https-block-page (default on)"},
};
#define NSETTINGS (sizeof(settings) / sizeof(settings[0]))

/* The database's size on disk: the file and its write-ahead log (what a full disk counts). */
static int64_t db_bytes(const char *db_path)
{
    char wal[4200];
    struct stat sb;
    int64_t total = 0;

    if (stat(db_path, &sb) == 0)
        total += sb.st_size;
    if (snprintf(wal, sizeof(wal), "%s-wal", db_path) < (int)sizeof(wal) && stat(wal, &sb) == 0)
        total += sb.st_size;
    return total;
}

static enum MHD_Result settings_reply(struct wa_req *r, struct store *st)
{
    json_t *o = json_object(), *help = json_object();

    for (size_t i = 0; o && help && i < NSETTINGS; i++) {
        char *v = store_setting_get(st, settings[i].key);
        json_object_set_new(o, settings[i].key, v && *v ? json_string(v) : json_null());
        json_object_set_new(help, settings[i].key, json_string(settings[i].expect));
        free(v);
    }
    /* Where browsers get the PAC file: only a URL other machines can reach is offered. */
    return wa_reply_json(r, 200,
                         json_pack("{s:o,s:o,s:o,s:s,s:I}", "settings", o, "help", help, "pac_url",
                                   r->ctx->pac_url[0] ? json_string(r->ctx->pac_url) : json_null(),
                                   "version", PX_VERSION, "db_bytes",
                                   (json_int_t)db_bytes(r->ctx->opts->db_path)));
}

static enum MHD_Result settings_put(struct wa_req *r, struct store *st)
{
    json_t *body = wa_body_json(r), *val;
    const char *key;
    char err[512];
    enum MHD_Result ret;

    if (!body)
        return MHD_YES;
    json_object_foreach(body, key, val)
    {
        size_t i;
        for (i = 0; i < NSETTINGS && strcmp(settings[i].key, key); i++)
            ;
        if (i == NSETTINGS) {
            ret = wa_reply_error(r, 400, key, "unknown setting %.64s", key);
            json_decref(body); /* key lives in body */
            return ret;
        }
        if (json_is_null(val) || (json_is_string(val) && !*json_string_value(val)))
            continue; /* unset */
        if (!json_is_string(val) || !settings[i].valid(json_string_value(val))) {
            ret = wa_reply_error(r, 400, settings[i].key, "%s: expected %s", settings[i].key,
                                 settings[i].expect);
            json_decref(body);
            return ret;
        }
    }
    /* All keys or none: one transaction. */
    if (store_change_begin(st, -1, err, sizeof(err)) != PX_OK) {
        json_decref(body);
        return wa_reply_error(r, 500, NULL, "%s", err);
    }
    for (size_t i = 0; i < NSETTINGS; i++) {
        val = json_object_get(body, settings[i].key);
        if (val && store_setting_set(st, settings[i].key,
                                     json_is_string(val) ? json_string_value(val) : "", r->actor,
                                     err, sizeof(err)) < 0) {
            store_change_rollback(st);
            json_decref(body);
            return wa_reply_error(r, 500, NULL, "%s", err);
        }
    }
    json_decref(body);
    if (store_change_commit(st, NULL, err, sizeof(err)) != PX_OK)
        return wa_reply_error(r, 500, NULL, "%s", err);
    return settings_reply(r, st);
}

enum MHD_Result wa_settings_get(struct wa_req *r)
{
    struct store *st = wa_store(r);

    return st ? settings_reply(r, st) : MHD_YES;
}

enum MHD_Result wa_settings_put(struct wa_req *r)
{
    struct store *st = wa_store(r);

    return st ? settings_put(r, st) : MHD_YES;
}
