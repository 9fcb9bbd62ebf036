/* web-admin port forwards: the config file's forwards and the stored ones, and changes through
 * proxyd's hooks, which open or close the listeners as they store (see wa_forwards.h). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "acl/acl_forward.h"
#include "web-admin/wa.h"
#include "web-admin/wa_forwards.h"

static json_t *forward_json(const struct store_forward *f)
{
    json_t *o = json_object();
    if (!o)
        return NULL;
    json_object_set_new(o, "id", json_integer(f->id));
    json_object_set_new(o, "listen", wa_json_text(f->listen));
    json_object_set_new(o, "target", wa_json_text(f->target));
    json_object_set_new(o, "clients", wa_json_text(f->clients));
    json_object_set_new(o, "tls", wa_json_text(f->tls));
    json_object_set_new(o, "tls_name", wa_json_text(f->tls_name));
    json_object_set_new(o, "created_ms", json_integer(f->created_ms));
    json_object_set_new(o, "source", json_string("api"));
    return o;
}

/* Why the API cannot delete a config file's forward: the file would open it again at the
 * next start, so a delete here would only last until then. */
#define CONFIG_FORWARD_WHY                                                                         \
    "from proxyd's config file: remove its forward line there and restart proxyd to close it"

/* The config file's forward i (line as the config holds it), numbered as proxyd numbers it. */
static json_t *config_forward_json(const char *line, size_t i)
{
    struct acl_forward f;
    char msg[300];
    json_t *o = json_object();
    if (!o)
        return NULL;
    json_object_set_new(o, "id", json_integer(-(json_int_t)i - 1));
    /* proxyd read the line at start; should it not parse now, the line itself is shown. */
    bool ok = acl_forward_parse_line(line, &f, msg, sizeof(msg)) == 0;
    json_object_set_new(o, "listen", wa_json_text(ok ? f.listen : line));
    json_object_set_new(o, "target", wa_json_text(ok ? f.target_text : ""));
    json_object_set_new(o, "clients", wa_json_text(ok ? f.clients_text : ""));
    json_object_set_new(o, "tls", json_string(ok ? acl_forward_tls_str(f.tls) : ""));
    json_object_set_new(o, "tls_name", wa_json_text(ok ? f.tls_name.text : ""));
    json_object_set_new(o, "source", json_string("config"));
    json_object_set_new(o, "note", json_string(CONFIG_FORWARD_WHY));
    return o;
}

enum MHD_Result wa_forwards_list(struct wa_req *r)
{
    struct store *st = wa_store(r);
    struct store_forward *rows;
    size_t n;
    char err[256];

    if (!st)
        return MHD_YES;
    if (store_forwards_list(st, &rows, &n, err, sizeof(err)) < 0)
        return wa_reply_error(r, 500, NULL, "%s", err);
    const struct wa_options *o = r->ctx->opts;
    json_t *arr = json_array();
    for (size_t i = 0; arr && i < o->nconfig_forwards; i++)
        json_array_append_new(arr, config_forward_json(o->config_forwards[i], i));
    for (size_t i = 0; arr && i < n; i++)
        json_array_append_new(arr, forward_json(&rows[i]));
    free(rows);
    return wa_reply_json(r, 200, json_pack("{s:o}", "forwards", arr));
}

/* A string member of body, "" when absent; NULL (after answering 400) when not a string. */
static const char *member(struct wa_req *r, json_t *body, const char *key, bool required)
{
    json_t *v = json_object_get(body, key);
    if (!v && !required)
        return "";
    if (!json_is_string(v)) {
        wa_reply_error(r, 400, key, "%s (a string) is required", key);
        return NULL;
    }
    return json_string_value(v);
}

enum MHD_Result wa_forwards_add(struct wa_req *r)
{
    struct wa_ctx *ctx = r->ctx;
    json_t *body = wa_body_json(r);
    const char *listen, *target, *clients, *tls, *tls_name;
    struct acl_forward f;
    char err[512];
    int id = 0;

    if (!body)
        return MHD_YES;
    if (!(listen = member(r, body, "listen", true)) ||
        !(target = member(r, body, "target", true)) ||
        !(clients = member(r, body, "clients", false)) || !(tls = member(r, body, "tls", false)) ||
        !(tls_name = member(r, body, "tls_name", false))) {
        json_decref(body);
        return MHD_YES;
    }
    if (acl_forward_parse(listen, target, clients, &f, err, sizeof(err)) < 0 ||
        acl_forward_set_tls(&f, tls, tls_name, err, sizeof(err)) < 0) {
        json_decref(body);
        const char *field = !strncmp(err, "listen", 6)     ? "listen"
                            : !strncmp(err, "target", 6)   ? "target"
                            : !strncmp(err, "tls-name", 8) ? "tls_name"
                            : !strncmp(err, "tls", 3)      ? "tls"
                                                           : "clients";
        return wa_reply_error(r, 400, field, "%s", err);
    }
    json_decref(body);
    if (!ctx->opts->forward_add)
        return wa_reply_error(r, 503, NULL, "port forwards need proxyd");
    /* Taken first: the answer reads the stored row back (its time too). */
    struct store *st = wa_store(r);
    if (!st)
        return MHD_YES;
    int rc = ctx->opts->forward_add(ctx->opts->hook_arg, &f, r->actor, &id, err, sizeof(err));
    if (rc > 0)
        return wa_reply_error(r, 409, "listen", "%s", err);
    if (rc < 0)
        return wa_reply_error(r, 500, NULL, "%s", err);
    /* The row as stored; should it be gone already, as added. */
    struct store_forward *rows = NULL, row = {.id = id};
    size_t n = 0;
    snprintf(row.listen, sizeof(row.listen), "%s", f.listen);
    snprintf(row.target, sizeof(row.target), "%s", f.target_text);
    snprintf(row.clients, sizeof(row.clients), "%s", f.clients_text);
    snprintf(row.tls, sizeof(row.tls), "%s", acl_forward_tls_str(f.tls));
    snprintf(row.tls_name, sizeof(row.tls_name), "%s", f.tls_name.text);
    if (store_forwards_list(st, &rows, &n, err, sizeof(err)) == 0)
        for (size_t i = 0; i < n; i++)
            if (rows[i].id == id)
                row = rows[i];
    free(rows);
    return wa_reply_json(r, 201, forward_json(&row));
}

enum MHD_Result wa_forwards_delete(struct wa_req *r)
{
    struct wa_ctx *ctx = r->ctx;
    char err[256], *end;
    long id;

    errno = 0;
    id = strtol(r->param, &end, 10);
    if (!errno && end != r->param && !*end && id < 0 && id >= -(long)ctx->opts->nconfig_forwards)
        return wa_reply_error(r, 409, NULL, "forward %ld is " CONFIG_FORWARD_WHY, id);
    if (errno || end == r->param || *end || id <= 0 || id > INT32_MAX)
        return wa_reply_error(r, 404, NULL, "no forward %s", r->param);
    if (!ctx->opts->forward_delete)
        return wa_reply_error(r, 503, NULL, "port forwards need proxyd");
    int rc = ctx->opts->forward_delete(ctx->opts->hook_arg, (int)id, r->actor, err, sizeof(err));
    if (rc > 0)
        return wa_reply_error(r, 404, NULL, "no forward %ld", id);
    if (rc < 0)
        return wa_reply_error(r, 500, NULL, "%s", err);
    return wa_reply_json(r, 200, json_pack("{s:I}", "deleted", (json_int_t)id));
}
