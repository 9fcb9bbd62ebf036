/* web-admin settings: GET and PUT /api/settings, the one table of what an admin may set on
 * the running proxy: each key's group and label on the Settings page, its help, the config
 * option it overrides and the check its value passes. proxyd puts a change in force before
 * the PUT is answered (wa_options.settings_changed).
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <sodium.h>

#include "acl/acl.h"
#include "acl/acl_rule.h"
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

/* ---- the checks: true, or false with why (the field's name is added by the caller) ---- */

static bool check_pac_proxy(const char *v, char *why, size_t whylen)
{
    if (wa_settings_pac_proxy_ok(v))
        return true;
    snprintf(why, whylen, "expected host:port or https://host:port");
    return false;
}

static bool check_on_off(const char *v, char *why, size_t whylen)
{
    if (!strcmp(v, "on") || !strcmp(v, "off"))
        return true;
    snprintf(why, whylen, "expected on or off");
    return false;
}

/* A whole number 0 .. max. */
static bool check_number(const char *v, long long max, char *why, size_t whylen)
{
    char *end;
    long long x;

    if (*v >= '0' && *v <= '9' && strlen(v) <= 15) {
        x = strtoll(v, &end, 10);
        if (!*end && x <= max)
            return true;
    }
    snprintf(why, whylen, "expected a whole number from 0 to %lld", max);
    return false;
}

static bool check_days(const char *v, char *why, size_t whylen)
{
    return check_number(v, WA_SETTINGS_MAX_DAYS, why, whylen);
}

static bool check_rows(const char *v, char *why, size_t whylen)
{
    return check_number(v, WA_SETTINGS_MAX_ROWS, why, whylen);
}

static bool check_contact(const char *v, char *why, size_t whylen)
{
    size_t n = strlen(v), bad;

    if (n > WA_SETTINGS_CONTACT_MAX) {
        snprintf(why, whylen, "at most %d bytes, got %zu", WA_SETTINGS_CONTACT_MAX, n);
        return false;
    }
    if (!acl_utf8_valid(v, n, &bad)) {
        snprintf(why, whylen, "not valid UTF-8 (byte %zu)", bad);
        return false;
    }
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)v[i] < 0x20 || v[i] == 0x7f) {
            snprintf(why, whylen, "one line of plain text: no control characters");
            return false;
        }
    return true;
}

static bool check_networks(const char *v, char *why, size_t whylen)
{
    static const uint8_t zero[10] = {0};
    struct acl_cidr *nets = NULL;
    uint32_t n = 0;
    char msg[200];

    if (!*v) {
        snprintf(why, whylen, "no network given (unset it for the config's or the default)");
        return false;
    }
    if (acl_cidr_parse_list(v, strlen(v), &nets, &n, msg, sizeof(msg)) != 0) {
        snprintf(why, whylen, "%s", msg);
        return false;
    }
    if (n == 0) {
        snprintf(why, whylen, "no network given (unset it for the config's or the default)");
        free(nets);
        return false;
    }
    for (uint32_t i = 0; i < n; i++)
        if (nets[i].prefix == 0 || (nets[i].prefix == 96 && nets[i].addr[10] == 0xff &&
                                    nets[i].addr[11] == 0xff && !memcmp(nets[i].addr, zero, 10))) {
            /* Anyone on the internet: never an open proxy by one edit. */
            snprintf(why, whylen,
                     "a network of every address (/0) would make proxyd an open "
                     "proxy; list the office's networks");
            free(nets);
            return false;
        }
    free(nets);
    return true;
}

/* What an image's first bytes say it is: "image/png", "image/jpeg", "image/svg+xml" or NULL. */
static const char *image_type(const unsigned char *b, size_t n)
{
    static const unsigned char png[] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    size_t i = 0;

    if (n >= sizeof(png) && memcmp(b, png, sizeof(png)) == 0)
        return "image/png";
    if (n >= 3 && b[0] == 0xff && b[1] == 0xd8 && b[2] == 0xff)
        return "image/jpeg";
    /* SVG is text: an optional BOM and white space, then a declaration, a comment or the
     * element itself, and an <svg somewhere. */
    if (n >= 3 && b[0] == 0xef && b[1] == 0xbb && b[2] == 0xbf)
        i = 3;
    while (i < n && isspace(b[i]))
        i++;
    if (n - i >= 4 && b[i] == '<' && (b[i + 1] == '?' || b[i + 1] == '!' || b[i + 1] == 's') &&
        memmem(b + i, n - i, "<svg", 4))
        return "image/svg+xml";
    return NULL;
}

static bool check_logo(const char *v, char *why, size_t whylen)
{
    static const char prefix[] = "data:";
    const char *comma = strchr(v, ','), *semi;
    unsigned char *bin;
    size_t binlen = 0, b64len, cap;
    char type[32];

    if (strncmp(v, prefix, sizeof(prefix) - 1) != 0 || !comma ||
        !(semi = memchr(v, ';', (size_t)(comma - v))) || strncmp(semi, ";base64,", 8) != 0 ||
        (size_t)(semi - v) - (sizeof(prefix) - 1) >= sizeof(type)) {
        snprintf(why, whylen, "expected a data: URI of a PNG, JPEG or SVG image, base64");
        return false;
    }
    snprintf(type, sizeof(type), "%.*s", (int)(semi - v - (sizeof(prefix) - 1)),
             v + sizeof(prefix) - 1);
    b64len = strlen(comma + 1);
    if (b64len > 4 * ((WA_SETTINGS_LOGO_BYTES + 2) / 3)) {
        snprintf(why, whylen, "at most %d bytes (%d KiB), got about %zu", WA_SETTINGS_LOGO_BYTES,
                 WA_SETTINGS_LOGO_BYTES / 1024, b64len / 4 * 3);
        return false;
    }
    cap = b64len / 4 * 3 + 3;
    bin = malloc(cap);
    if (!bin || sodium_base642bin(bin, cap, comma + 1, b64len, NULL, &binlen, NULL,
                                  sodium_base64_VARIANT_ORIGINAL) != 0) {
        free(bin);
        snprintf(why, whylen, "its base64 does not decode");
        return false;
    }
    const char *is = image_type(bin, binlen);
    free(bin);
    if (binlen > WA_SETTINGS_LOGO_BYTES) {
        snprintf(why, whylen, "at most %d bytes (%d KiB), got %zu", WA_SETTINGS_LOGO_BYTES,
                 WA_SETTINGS_LOGO_BYTES / 1024, binlen);
        return false;
    }
    if (!is) {
        snprintf(why, whylen, "not a PNG, JPEG or SVG image (by its first bytes)");
        return false;
    }
    if (strcmp(is, type) != 0) {
        snprintf(why, whylen, "said to be %s, but its bytes are %s", type, is);
        return false;
    }
    return true;
}

/* ---- the table ---- */

struct setting_def {
    const char *key;
    const char *group;  /* its heading on the Settings page, in the order of first use */
    const char *label;  /* the field's name there */
    const char *config; /* the config option it overrides while set, NULL for none */
    const char *unset;  /* in force when neither is set (config == NULL) */
    bool (*check)(const char *value, char *why, size_t whylen);
    const char *help;
};

static const struct setting_def settings[] = {
    {"block_contact", "Block page", "Contact line", "contact", NULL, check_contact,
     "Whom employees ask about a blocked page, shown on every block page (plain text, one "
     "line)."},
    {"block_logo", "Block page", "Logo", NULL, "", check_logo,
     "A small PNG, JPEG or SVG image (at most 16 KiB) shown at the top of every block page, "
     "plain HTTP and HTTPS."},
    {"allow_clients", "Clients", "Allowed client networks", "allow-clients", NULL, check_networks,
     "Who may use the proxy: networks (CIDR), separated by commas or new lines. Clients "
     "elsewhere are refused unless a rule allows them. Default: loopback and private "
     "networks. The admin pages have their own listener and are not affected."},
    {"retention_days", "Log & retention", "Keep the access log (days)", "retention-days", NULL,
     check_days, "Rows older than this are deleted (0: keep them all)."},
    {"retention_rows", "Log & retention", "Keep at most (rows)", "retention-rows", NULL, check_rows,
     "The newest rows kept (0: no limit)."},
    {"expired_rule_days", "Log & retention", "Delete expired rules after (days)",
     "expired-rule-days", NULL, check_days,
     "A rule past its expires time is deleted this many days later (0: at once)."},
    {"version_keep", "Log & retention", "Keep policy versions (newest)", "version-keep", NULL,
     check_rows,
     "The newest policy versions kept, besides every one a logged request names "
     "(0: keep every version)."},
    {"version_keep_days", "Log & retention", "Keep policy versions (days)", "version-keep-days",
     NULL, check_days, "Every policy version younger than this is kept too."},
    {"pac_proxy", "PAC", "Proxy address in the PAC file", "pac-proxy", NULL, check_pac_proxy,
     "host:port browsers are told to use (https://host:port: the proxy's TLS port)."},
    {"access_requests", "Access requests", "Request-access form", NULL, "off", check_on_off,
     "on: block pages offer a form to ask for access (queued under Requests); off: they do "
     "not."},
    {"https_block_page", "TLS", "Block page for HTTPS", "https-block-page", NULL, check_on_off,
     "on: with a local CA, a blocked HTTPS site shows the block page (clients must trust the "
     "CA); off: the browser's own error."},
};
#define NSETTINGS (sizeof(settings) / sizeof(settings[0]))

static const struct setting_def *setting_find(const char *key)
{
    for (size_t i = 0; i < NSETTINGS; i++)
        if (!strcmp(settings[i].key, key))
            return &settings[i];
    return NULL;
}

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

/* What the config says for d, as proxyd reads it ("" when it says nothing). */
static void config_of(struct wa_req *r, const struct setting_def *d, char *out, size_t outlen)
{
    const struct wa_options *o = r->ctx->opts;

    out[0] = '\0';
    if (d->config && o->config_value)
        o->config_value(o->hook_arg, d->config, out, outlen);
    /* Booleans read yes/no in the config, on/off here. */
    if (d->check == check_on_off && *out)
        snprintf(out, outlen, "%s", strcmp(out, "yes") ? "off" : "on");
    /* Without --pac-proxy the PAC file names this machine and the first listener. */
    if (!strcmp(d->key, "pac_proxy") && !*out && o->pac_proxy)
        snprintf(out, outlen, "%s", o->pac_proxy);
}

/* What the page shows for d: a switch, a number, networks, an image or a line of text. */
static const char *kind_of(const struct setting_def *d)
{
    if (d->check == check_on_off)
        return "switch";
    if (d->check == check_days || d->check == check_rows)
        return "number";
    if (d->check == check_networks)
        return "networks";
    if (d->check == check_logo)
        return "image";
    return "text";
}

static enum MHD_Result settings_reply(struct wa_req *r, struct store *st, json_t *warnings)
{
    json_t *o = json_object(), *help = json_object(), *fields = json_array();
    char conf[4096], err[256];

    for (size_t i = 0; o && help && fields && i < NSETTINGS; i++) {
        const struct setting_def *d = &settings[i];
        char *v;
        /* Not "unset" when the database did not say: the page would show the config's
         * values as in force. */
        if (store_setting_read(st, d->key, &v, err, sizeof(err)) < 0) {
            json_decref(o);
            json_decref(help);
            json_decref(fields);
            json_decref(warnings);
            return wa_reply_error(r, 500, NULL, "%s", err);
        }
        bool set = v && *v;
        config_of(r, d, conf, sizeof(conf));
        json_object_set_new(o, d->key, set ? json_string(v) : json_null());
        json_object_set_new(help, d->key, json_string(d->help));
        json_array_append_new(
            fields, json_pack("{s:s,s:s,s:s,s:s,s:s,s:o,s:o,s:o,s:s}", "key", d->key, "kind",
                              kind_of(d), "group", d->group, "label", d->label, "help", d->help,
                              "value", set ? json_string(v) : json_null(), "config_option",
                              d->config ? json_string(d->config) : json_null(), "config_value",
                              d->config ? json_string(conf) : json_null(), "in_force",
                              set         ? v
                              : d->config ? conf
                                          : d->unset));
        free(v);
    }
    /* Where browsers get the PAC file: only a URL other machines can reach is offered. */
    return wa_reply_json(
        r, 200,
        json_pack("{s:o,s:o,s:o,s:o,s:s,s:I,s:o}", "settings", o, "help", help, "fields", fields,
                  "pac_url", r->ctx->pac_url[0] ? json_string(r->ctx->pac_url) : json_null(),
                  "version", PX_VERSION, "db_bytes", (json_int_t)db_bytes(r->ctx->opts->db_path),
                  "warnings", warnings ? warnings : json_array()));
}

/* allow_clients as stored: the networks separated by commas, whatever separated them. */
static void networks_normalise(const char *in, char *out, size_t outlen)
{
    size_t n = 0;

    out[0] = '\0';
    while (*in) {
        size_t skip = strspn(in, ", \t\r\n"), len;
        in += skip;
        len = strcspn(in, ", \t\r\n");
        if (!len)
            break;
        n += (size_t)snprintf(out + n, n < outlen ? outlen - n : 0, "%s%.*s", n ? "," : "",
                              (int)len, in);
        in += len;
    }
}

/* Whether the caller's own address is inside the networks v (checked already). */
static bool caller_inside(const char *client, const char *v)
{
    struct acl_cidr *nets = NULL;
    uint32_t n = 0;
    uint8_t a[16] = {0};
    char msg[200];
    struct in_addr a4;
    bool in;

    if (inet_pton(AF_INET, client, &a4) == 1) {
        a[10] = a[11] = 0xff;
        memcpy(a + 12, &a4, 4);
    } else if (inet_pton(AF_INET6, client, a) != 1) {
        return true; /* not an address: nothing to say */
    }
    if (acl_cidr_parse_list(v, strlen(v), &nets, &n, msg, sizeof(msg)) != 0)
        return true;
    in = acl_cidr_list_contains(nets, n, a);
    free(nets);
    return in;
}

static enum MHD_Result settings_put(struct wa_req *r, struct store *st)
{
    json_t *body = wa_body_json(r), *val, *warnings = json_array();
    const char *key;
    char err[512], why[256];
    char *fixed[NSETTINGS] = {0}; /* the values to store, normalised; NULL: not in the body */
    enum MHD_Result ret;
    bool changed = false;
    size_t i;

    if (!body) {
        json_decref(warnings);
        return MHD_YES;
    }
    json_object_foreach(body, key, val)
    {
        const struct setting_def *d = setting_find(key);
        if (!d) {
            ret = wa_reply_error(r, 400, key, "unknown setting %.64s", key);
            goto out;
        }
        i = (size_t)(d - settings);
        if (json_is_null(val) || (json_is_string(val) && !*json_string_value(val))) {
            fixed[i] = strdup(""); /* unset: the config's value, or the default, again */
            continue;
        }
        if (!json_is_string(val)) {
            ret = wa_reply_error(r, 400, d->key, "%s (%s): expected a string", d->label, d->key);
            goto out;
        }
        const char *v = json_string_value(val);
        size_t vlen = strlen(v) + 1;
        fixed[i] = malloc(vlen);
        if (!fixed[i]) {
            ret = wa_reply_error(r, 500, NULL, "out of memory");
            goto out;
        }
        if (d->check == check_networks)
            networks_normalise(v, fixed[i], vlen);
        else
            memcpy(fixed[i], v, vlen);
        if (!d->check(fixed[i], why, sizeof(why))) {
            ret = wa_reply_error(r, 400, d->key, "%s (%s): %s", d->label, d->key, why);
            goto out;
        }
        if (d->check == check_networks && !caller_inside(r->client, fixed[i]))
            json_array_append_new(
                warnings,
                json_sprintf("Your address %s is outside these networks: it may still use the "
                             "admin pages, but not the proxy.",
                             r->client));
    }
    /* All keys or none: one transaction; each change audited (as before -> after). */
    if (store_change_begin(st, -1, err, sizeof(err)) != PX_OK) {
        ret = wa_reply_error(r, 500, NULL, "%s", err);
        goto out;
    }
    for (i = 0; i < NSETTINGS; i++) {
        char *old;
        if (!fixed[i])
            continue;
        if (store_setting_read(st, settings[i].key, &old, err, sizeof(err)) < 0) {
            store_change_rollback(st);
            ret = wa_reply_error(r, 500, NULL, "%s", err);
            goto out;
        }
        bool same = !strcmp(old ? old : "", fixed[i]);
        free(old);
        if (same)
            continue; /* no audit row for what did not change */
        if (store_setting_set(st, settings[i].key, fixed[i], r->actor, err, sizeof(err)) < 0) {
            store_change_rollback(st);
            ret = wa_reply_error(r, 500, NULL, "%s", err);
            goto out;
        }
        changed = true;
    }
    if (store_change_commit(st, NULL, err, sizeof(err)) != PX_OK) {
        ret = wa_reply_error(r, 500, NULL, "%s", err);
        goto out;
    }
    if (changed && r->ctx->opts->settings_changed)
        r->ctx->opts->settings_changed(r->ctx->opts->hook_arg);
    ret = settings_reply(r, st, warnings);
    warnings = NULL;
out:
    for (i = 0; i < NSETTINGS; i++)
        free(fixed[i]);
    json_decref(body); /* key lived in body */
    json_decref(warnings);
    return ret;
}

enum MHD_Result wa_settings_get(struct wa_req *r)
{
    struct store *st = wa_store(r);

    return st ? settings_reply(r, st, NULL) : MHD_YES;
}

enum MHD_Result wa_settings_put(struct wa_req *r)
{
    struct store *st = wa_store(r);

    return st ? settings_put(r, st) : MHD_YES;
}
