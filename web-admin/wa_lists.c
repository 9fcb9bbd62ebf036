/* web-admin lists: named domain lists (hosts files, plain lists, adblock domains) that rules
 * use with `list NAME`: GET /api/lists, GET, PUT (import) and DELETE /api/lists/NAME.
 * Imports and deletes go through wa_change_apply: compiled first, stored only if it compiles.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "web-admin/wa_change.h"
#include "web-admin/wa_lists.h"

int wa_list_exists(struct store *st, const char *name)
{
    struct store_list_info *lists;
    size_t n;
    char err[256];
    int found = 0;

    if (store_lists(st, &lists, &n, err, sizeof(err)) < 0)
        return -1;
    for (size_t i = 0; i < n; i++)
        if (!strcmp(lists[i].name, name))
            found = 1;
    free(lists);
    return found;
}

static enum MHD_Result lists_get_all(struct wa_req *r, struct store *st)
{
    struct store_list_info *lists;
    size_t n;
    char err[256];
    json_t *arr = json_array();

    if (store_lists(st, &lists, &n, err, sizeof(err)) < 0) {
        json_decref(arr);
        return wa_reply_error(r, 500, NULL, "%s", err);
    }
    for (size_t i = 0; arr && i < n; i++)
        json_array_append_new(arr, json_pack("{s:s,s:I,s:I}", "name", lists[i].name, "entries",
                                             (json_int_t)lists[i].entries, "updated_ms",
                                             (json_int_t)lists[i].updated_ms));
    free(lists);
    return wa_reply_json(r, 200, json_pack("{s:o}", "lists", arr));
}

static enum MHD_Result list_put(struct wa_req *r, const char *name)
{
    struct acl_list_stats stats;
    struct wa_change ch = {.kind = WA_LIST_REPLACE, .list = name};
    char **domains = NULL;
    size_t n = 0;
    bool ok;
    json_t *o;

    memset(&stats, 0, sizeof(stats));
    if (acl_list_parse(r->body, r->len, &domains, &n, &stats) < 0)
        return wa_reply_error(r, 500, NULL, "out of memory while parsing the list");
    /* Text with no domain in it (an empty paste, the wrong file) and an import under a name
     * in use are mistakes more often than wishes: one would quietly stop every rule using the
     * list, the other swap out the list those rules rely on. Either waits for replace=1. */
    const char *replace = wa_query(r, "replace");
    if (!replace || strcmp(replace, "1") != 0) {
        int exists = wa_list_exists(wa_store(r), name);
        if (exists < 0) {
            acl_list_free(domains, n);
            return wa_reply_error(r, 500, NULL, "cannot read the lists");
        }
        if (n == 0) {
            acl_list_free(domains, n);
            if (stats.skipped)
                return wa_reply_error(
                    r, 409, "replace",
                    "list %s: no domains in the text (%zu lines skipped, the first, line %d: "
                    "%s): importing it %s; nothing changed: confirm with replace=1",
                    name, (size_t)stats.skipped, stats.first_skipped_line,
                    stats.first_skipped_reason,
                    exists ? "empties the list" : "makes an empty list");
            return wa_reply_error(r, 409, "replace",
                                  "list %s: the text is empty: importing it %s; nothing changed: "
                                  "confirm with replace=1",
                                  name, exists ? "empties the list" : "makes an empty list");
        }
        if (exists) {
            acl_list_free(domains, n);
            return wa_reply_error(r, 409, "replace",
                                  "list %s exists: importing replaces its entries; nothing "
                                  "changed: confirm with replace=1",
                                  name);
        }
    }
    ch.items = (const char *const *)domains;
    ch.nitems = n;
    ok = wa_change_apply(r, &ch, 1, NULL, 409, NULL);
    acl_list_free(domains, n);
    if (!ok)
        return MHD_YES;
    o = json_pack("{s:s,s:I,s:I,s:I,s:i,s:s}", "name", name, "added", (json_int_t)stats.added,
                  "duplicates", (json_int_t)stats.duplicates, "skipped", (json_int_t)stats.skipped,
                  "first_skipped_line", stats.first_skipped_line, "first_skipped_reason",
                  stats.first_skipped_reason);
    return wa_reply_json(r, 200, o);
}

static enum MHD_Result list_get(struct wa_req *r, struct store *st, const char *name)
{
    char **domains, err[256];
    size_t n;
    json_t *arr;

    if (store_list_entries(st, name, &domains, &n, err, sizeof(err)) < 0)
        return wa_reply_error(r, 500, NULL, "%s", err);
    arr = json_array();
    for (size_t i = 0; arr && i < n; i++)
        json_array_append_new(arr, json_string(domains[i]));
    store_strings_free(domains, n);
    return wa_reply_json(r, 200, json_pack("{s:s,s:o}", "name", name, "entries", arr));
}

/* Id of the first rule of the form "ACTION list NAME ...", 0 if none, -1 on error; its text
 * goes to text. Disabled rules count: switching one on would then fail to compile. */
static int list_user(struct store *st, const char *name, char *text, size_t textlen)
{
    struct store_rule *rules;
    size_t n;
    char err[256];
    int id = 0;

    if (store_rules_list(st, &rules, &n, err, sizeof(err)) < 0)
        return -1;
    for (size_t i = 0; i < n && !id; i++) {
        char buf[512], *save = NULL, *tok[3] = {NULL, NULL, NULL};
        size_t k = 0;

        snprintf(buf, sizeof(buf), "%s", rules[i].text ? rules[i].text : "");
        for (char *t = strtok_r(buf, " \t", &save); t && k < 3; t = strtok_r(NULL, " \t", &save))
            tok[k++] = t;
        if (k == 3 && !strcasecmp(tok[1], "list") && !strcmp(tok[2], name)) {
            id = rules[i].id;
            snprintf(text, textlen, "%s", rules[i].text);
        }
    }
    store_rules_free(rules, n);
    return id;
}

/* A rule still naming the list makes the result not compile: then nothing is deleted. The
 * rule is named first, so the answer does not read as if the list were missing. */
static enum MHD_Result list_delete(struct wa_req *r, struct store *st, const char *name)
{
    struct wa_change ch = {.kind = WA_LIST_DELETE, .list = name};
    char text[200];
    int user = list_user(st, name, text, sizeof(text));

    if (user < 0)
        return wa_reply_error(r, 500, NULL, "cannot read the rules");
    if (user > 0)
        return wa_reply_error(r, 409, NULL,
                              "list %s is used by rule %d (%s): delete or change that rule "
                              "first; nothing changed",
                              name, user, text);
    if (!wa_change_apply(r, &ch, 1, NULL, 409, NULL))
        return MHD_YES;
    return wa_reply_json(r, 200, json_pack("{s:s}", "deleted", name));
}

/* The store connection for the list named in the path, or NULL after answering: 400 for a
 * name that cannot be a list's, 404 (when must_exist) for a list that is not there. */
static struct store *named_list(struct wa_req *r, bool must_exist)
{
    struct store *st;
    int exists;

    if (!wa_name_ok(r->param)) {
        wa_reply_error(r, 400, "name", "list names are 1-63 letters, digits, '.', '_', '-'");
        return NULL;
    }
    st = wa_store(r);
    if (!st || !must_exist)
        return st;
    exists = wa_list_exists(st, r->param);
    if (exists < 0)
        wa_reply_error(r, 500, NULL, "cannot read the lists");
    else if (!exists)
        wa_reply_error(r, 404, NULL, "no list %s", r->param);
    return exists > 0 ? st : NULL;
}

enum MHD_Result wa_lists_list(struct wa_req *r)
{
    struct store *st = wa_store(r);

    return st ? lists_get_all(r, st) : MHD_YES;
}

enum MHD_Result wa_lists_get(struct wa_req *r)
{
    struct store *st = named_list(r, true);

    return st ? list_get(r, st, r->param) : MHD_YES;
}

enum MHD_Result wa_lists_put(struct wa_req *r)
{
    struct store *st = named_list(r, false);

    return st ? list_put(r, r->param) : MHD_YES;
}

enum MHD_Result wa_lists_delete(struct wa_req *r)
{
    struct store *st = named_list(r, true);

    return st ? list_delete(r, st, r->param) : MHD_YES;
}
