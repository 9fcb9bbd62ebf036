/* store_version: the history of the policy. Each committed change that moves the policy
 * version leaves one row in policy_versions (who, when, a message) and the rules that version
 * held (policy_version_rules, shared with the version before when the rules did not change),
 * so a version can be listed, compared with another and restored, and a logged request can
 * be explained with the rules that decided it.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/clock.h"
#include "storage/store_impl.h"

#define VERSIONS_DEFAULT_LIMIT 100
#define VERSIONS_MAX_LIMIT 1000

void store_version_note(struct store *st, const char *actor, const char *action, const char *detail)
{
    size_t len = strlen(st->version_message);

    snprintf(st->version_actor, sizeof(st->version_actor), "%s", actor && *actor ? actor : "-");
    if (st->message_set || len + 1 >= sizeof(st->version_message))
        return;
    snprintf(st->version_message + len, sizeof(st->version_message) - len, "%s%s %s",
             len ? "; " : "", action, detail ? detail : "");
}

void store_change_message(struct store *st, const char *message)
{
    if (!message || !*message)
        return;
    snprintf(st->version_message, sizeof(st->version_message), "%s", message);
    st->message_set = true;
}

/* Runs sql binding the integers args[0..nargs) and text (when not NULL) after them, and
 * returns the first column of its first row in *out: 0, 1 when there is no row, -1 with err. */
static int query_int_text(struct store *st, const char *sql, const int64_t *args, int nargs,
                          const char *text, int64_t *out, char *err, size_t errlen)
{
    struct sql_stmt *s;
    int rc;

    if (store_prepare(st, sql, &s, err, errlen) < 0)
        return -1;
    for (int i = 0; i < nargs; i++)
        sql_bind_int64(s, i + 1, args[i]);
    if (text)
        sql_bind_text(s, nargs + 1, text);
    rc = sql_step(s);
    if (rc == SQL_ROW && !sql_col_null(s, 0)) {
        *out = sql_col_int64(s, 0);
        rc = 0;
    } else if (rc == SQL_ROW || rc == SQL_DONE) {
        rc = 1;
    } else {
        rc = store_sql_err(st, err, errlen, "policy versions");
    }
    sql_finalize(s);
    return rc;
}

static int query_int(struct store *st, const char *sql, const int64_t *args, int nargs,
                     int64_t *out, char *err, size_t errlen)
{
    return query_int_text(st, sql, args, nargs, NULL, out, err, errlen);
}

/* Runs sql binding the integers args[0..nargs) and text (when not NULL) after them, for no
 * result. 0, or -1 with err. */
static int exec_ints(struct store *st, const char *sql, const int64_t *args, int nargs,
                     const char *text, char *err, size_t errlen)
{
    struct sql_stmt *s;
    int rc;

    if (store_prepare(st, sql, &s, err, errlen) < 0)
        return -1;
    for (int i = 0; i < nargs; i++)
        sql_bind_int64(s, i + 1, args[i]);
    if (text)
        sql_bind_text(s, nargs + 1, text);
    rc = sql_step(s);
    sql_finalize(s);
    return rc == SQL_DONE ? 0 : store_sql_err(st, err, errlen, "policy version lists");
}

/* The lists version v leaves, in policy_version_lists: when this transaction changed none,
 * the rows of prev (the version before) as they are; after a rollback, the rows of the
 * version restored; else, for each list, the entries of prev's list of that name when they
 * are the same, or a copy of its entries under v. 0, or -1 with err. */
static int lists_record(struct store *st, int64_t v, int64_t prev, char *err, size_t errlen)
{
    int64_t kept = 0, args[2] = {v, prev};
    struct sql_stmt *s;
    int rc;

    if (query_int(st, "SELECT lists_kept FROM policy_versions WHERE version = ?", &prev, 1, &kept,
                  err, errlen) < 0)
        return -1;
    if (st->lists_like > 0 || (!st->lists_changed && kept)) {
        args[1] = st->lists_like > 0 ? st->lists_like : prev;
        return exec_ints(
            st,
            "INSERT INTO policy_version_lists(version, name, entries_of)"
            " SELECT ?1, name, entries_of FROM policy_version_lists WHERE version = ?2",
            args, 2, NULL, err, errlen);
    }
    if (store_prepare(st, "SELECT name FROM lists ORDER BY name", &s, err, errlen) < 0)
        return -1;
    while ((rc = sql_step(s)) == SQL_ROW) {
        const char *name = sql_col_text(s, 0);
        int64_t of = 0;

        /* prev's entries of that name, if they are exactly the list's now */
        rc = query_int_text(st,
                            "SELECT l.entries_of FROM policy_version_lists l"
                            " WHERE l.version = ?2 AND l.name = ?3"
                            " AND (SELECT count(*) FROM list_entries WHERE list = ?3) ="
                            " (SELECT count(*) FROM policy_version_list_entries"
                            "  WHERE version = l.entries_of AND list = ?3)"
                            " AND NOT EXISTS (SELECT domain FROM list_entries WHERE list = ?3"
                            "  EXCEPT SELECT domain FROM policy_version_list_entries"
                            "  WHERE version = l.entries_of AND list = ?3)",
                            args, 2, name, &of, err, errlen);
        if (rc < 0)
            break;
        if (rc == 1) {
            of = v;
            if (exec_ints(st,
                          "INSERT INTO policy_version_list_entries(version, list, domain)"
                          " SELECT ?1, list, domain FROM list_entries WHERE list = ?3",
                          args, 2, name, err, errlen) < 0) {
                rc = -1;
                break;
            }
        }
        int64_t row[2] = {v, of};
        if (exec_ints(st,
                      "INSERT INTO policy_version_lists(version, entries_of, name)"
                      " VALUES (?1, ?2, ?3)",
                      row, 2, name, err, errlen) < 0) {
            rc = -1;
            break;
        }
    }
    sql_finalize(s);
    if (rc == SQL_DONE)
        return 0;
    return rc == -1 ? -1 : store_sql_err(st, err, errlen, "lists");
}

int store_version_record(struct store *st, char *err, size_t errlen)
{
    int64_t v = store_policy_version(st), prev = 0, rules_of = 0, same = 0, exists;
    struct sql_stmt *s;
    int rc;

    st->version_pending = false;
    if (v < 0)
        return store_errf(err, errlen, "policy version: cannot read it");
    rc = query_int(st, "SELECT 1 FROM policy_versions WHERE version = ?", &v, 1, &exists, err,
                   errlen);
    if (rc <= 0) /* recorded already (the bump was undone), or an error */
        return rc;
    rc = query_int(st, "SELECT max(version) FROM policy_versions WHERE version < ?", &v, 1, &prev,
                   err, errlen);
    if (rc < 0)
        return -1;
    if (rc == 0) {
        if (query_int(st, "SELECT rules_of FROM policy_versions WHERE version = ?", &prev, 1,
                      &rules_of, err, errlen) < 0 ||
            query_int(st,
                      "SELECT (SELECT count(*) FROM rules) ="
                      " (SELECT count(*) FROM policy_version_rules WHERE version = ?1)"
                      " AND NOT EXISTS (SELECT position, id, enabled, text, comment FROM rules"
                      " EXCEPT SELECT position, rule_id, enabled, text, comment"
                      " FROM policy_version_rules WHERE version = ?1)",
                      &rules_of, 1, &same, err, errlen) < 0)
            return -1;
    }
    if (store_prepare(st,
                      "INSERT INTO policy_versions(version, time_ms, actor, message, rules_of,"
                      " lists_kept) VALUES (?, ?, ?, ?, ?, 1)",
                      &s, err, errlen) < 0)
        return -1;
    sql_bind_int64(s, 1, v);
    sql_bind_int64(s, 2, clock_wall_ms());
    sql_bind_text(s, 3, st->version_actor[0] ? st->version_actor : "-");
    sql_bind_text(s, 4, st->version_message);
    sql_bind_int64(s, 5, same ? rules_of : v);
    rc = sql_step(s);
    sql_finalize(s);
    if (rc != SQL_DONE)
        return store_sql_err(st, err, errlen, "policy versions");
    if (lists_record(st, v, prev, err, errlen) < 0)
        return -1;
    if (same)
        return 0;
    if (store_prepare(st,
                      "INSERT INTO policy_version_rules(version, position, rule_id, enabled, text,"
                      " comment) SELECT ?, position, id, enabled, text, comment FROM rules",
                      &s, err, errlen) < 0)
        return -1;
    sql_bind_int64(s, 1, v);
    rc = sql_step(s);
    sql_finalize(s);
    return rc == SQL_DONE ? 0 : store_sql_err(st, err, errlen, "policy version rules");
}

#define VERSION_COLUMNS                                                                            \
    "SELECT v.version, v.time_ms, v.actor, v.message,"                                             \
    " (SELECT count(*) FROM policy_version_rules r WHERE r.version = v.rules_of),"                 \
    " CASE WHEN v.lists_kept <> 0 THEN"                                                            \
    "  (SELECT count(*) FROM policy_version_lists l WHERE l.version = v.version) ELSE -1 END"      \
    " FROM policy_versions v"

static void version_from_row(struct sql_stmt *s, struct store_version *v)
{
    const char *actor = sql_col_text(s, 2);
    const char *message = sql_col_text(s, 3);

    memset(v, 0, sizeof(*v));
    v->version = sql_col_int64(s, 0);
    v->time_ms = sql_col_int64(s, 1);
    snprintf(v->actor, sizeof(v->actor), "%s", actor ? actor : "");
    snprintf(v->message, sizeof(v->message), "%s", message ? message : "");
    v->rules = sql_col_int64(s, 4);
    v->lists = sql_col_int64(s, 5);
}

int store_versions_list(struct store *st, int64_t before, size_t limit, struct store_version **rows,
                        size_t *n, char *err, size_t errlen)
{
    struct sql_stmt *s;
    struct store_version *v;
    size_t len = 0;
    int rc;

    *rows = NULL;
    *n = 0;
    if (limit == 0)
        limit = VERSIONS_DEFAULT_LIMIT;
    if (limit > VERSIONS_MAX_LIMIT)
        limit = VERSIONS_MAX_LIMIT;
    v = calloc(limit, sizeof(*v));
    if (!v)
        return store_errf(err, errlen, "policy versions: out of memory");
    if (store_prepare(st, VERSION_COLUMNS " WHERE v.version < ? ORDER BY v.version DESC LIMIT ?",
                      &s, err, errlen) < 0) {
        free(v);
        return -1;
    }
    sql_bind_int64(s, 1, before > 0 ? before : INT64_MAX);
    sql_bind_int64(s, 2, (int64_t)limit);
    while (len < limit && (rc = sql_step(s)) == SQL_ROW)
        version_from_row(s, &v[len++]);
    sql_finalize(s);
    if (len < limit && rc != SQL_DONE) {
        free(v);
        return store_sql_err(st, err, errlen, "policy versions");
    }
    *rows = v;
    *n = len;
    return 0;
}

int store_version_get(struct store *st, int64_t version, struct store_version *info,
                      struct store_rule **rules, size_t *n, char *err, size_t errlen)
{
    struct sql_stmt *s;
    struct store_rule *v = NULL;
    size_t len = 0, cap = 0;
    int rc;

    if (rules) {
        *rules = NULL;
        *n = 0;
    }
    if (store_prepare(st, VERSION_COLUMNS " WHERE v.version = ?", &s, err, errlen) < 0)
        return -1;
    sql_bind_int64(s, 1, version);
    rc = sql_step(s);
    if (rc == SQL_ROW)
        version_from_row(s, info);
    sql_finalize(s);
    if (rc == SQL_DONE) {
        store_errf(err, errlen, "version %lld: no such policy version", (long long)version);
        return 1;
    }
    if (rc != SQL_ROW)
        return store_sql_err(st, err, errlen, "policy versions");
    if (!rules)
        return 0;
    if (store_prepare(st,
                      "SELECT r.rule_id, r.position, r.enabled, r.text, r.comment"
                      " FROM policy_versions v JOIN policy_version_rules r"
                      " ON r.version = v.rules_of WHERE v.version = ? ORDER BY r.position",
                      &s, err, errlen) < 0)
        return -1;
    sql_bind_int64(s, 1, version);
    while ((rc = sql_step(s)) == SQL_ROW) {
        struct store_rule *r;

        if (store_array_reserve(&v, &cap, len, 32, sizeof(*v)) < 0)
            goto oom;
        r = &v[len];
        memset(r, 0, sizeof(*r));
        r->id = sql_col_int(s, 0);
        r->position = sql_col_int(s, 1);
        r->enabled = sql_col_int(s, 2) != 0;
        r->text = strdup(sql_col_text(s, 3));
        r->comment = strdup(sql_col_text(s, 4));
        len++;
        if (!r->text || !r->comment)
            goto oom;
    }
    sql_finalize(s);
    if (rc != SQL_DONE) {
        store_rules_free(v, len);
        return store_sql_err(st, err, errlen, "policy version rules");
    }
    *rules = v;
    *n = len;
    return 0;
oom:
    sql_finalize(s);
    store_rules_free(v, len);
    return store_errf(err, errlen, "policy version rules: out of memory");
}

/* Inside the caller's transaction: replaces every list with the lists version held, when
 * it kept them. 0, 1 when the version predates kept lists (lists left as they are), -1 with
 * err. */
static int lists_restore(struct store *st, int64_t version, char *err, size_t errlen)
{
    int64_t kept = 0, args[2] = {version, clock_wall_ms()};

    if (query_int(st, "SELECT lists_kept FROM policy_versions WHERE version = ?", &version, 1,
                  &kept, err, errlen) < 0)
        return -1;
    if (!kept)
        return 1;
    if (store_exec(st, "DELETE FROM list_entries", err, errlen) < 0 ||
        store_exec(st, "DELETE FROM lists", err, errlen) < 0 ||
        exec_ints(st,
                  "INSERT INTO lists(name, updated_ms)"
                  " SELECT name, ?2 FROM policy_version_lists WHERE version = ?1",
                  args, 2, NULL, err, errlen) < 0 ||
        exec_ints(st,
                  "INSERT INTO list_entries(list, domain)"
                  " SELECT e.list, e.domain FROM policy_version_lists l"
                  " JOIN policy_version_list_entries e"
                  " ON e.version = l.entries_of AND e.list = l.name WHERE l.version = ?1",
                  args, 1, NULL, err, errlen) < 0)
        return -1;
    st->lists_changed = true;
    st->lists_like = version;
    return 0;
}

int store_version_lists(struct store *st, int64_t version, struct store_policy_list **lists,
                        size_t *n, char *err, size_t errlen)
{
    struct store_policy_list *v = NULL;
    size_t len = 0, cap = 0, dcap = 0; /* dcap: room in the last list's domains */
    int64_t kept = 0;
    struct sql_stmt *s;
    int rc;

    *lists = NULL;
    *n = 0;
    rc = query_int(st, "SELECT lists_kept FROM policy_versions WHERE version = ?", &version, 1,
                   &kept, err, errlen);
    if (rc < 0)
        return -1;
    if (rc == 1 || !kept) {
        store_errf(err, errlen, "version %lld: %s", (long long)version,
                   rc == 1 ? "no such policy version" : "recorded before versions kept lists");
        return 1;
    }
    if (store_prepare(st,
                      "SELECT l.name, e.domain FROM policy_version_lists l"
                      " LEFT JOIN policy_version_list_entries e"
                      " ON e.version = l.entries_of AND e.list = l.name"
                      " WHERE l.version = ? ORDER BY l.name, e.domain",
                      &s, err, errlen) < 0)
        return -1;
    sql_bind_int64(s, 1, version);
    while ((rc = sql_step(s)) == SQL_ROW) {
        const char *name = sql_col_text(s, 0);
        const char *domain = sql_col_text(s, 1);
        struct store_policy_list *l = len ? &v[len - 1] : NULL;

        if (!l || strcmp(l->name, name) != 0) {
            if (store_array_reserve(&v, &cap, len, 8, sizeof(*v)) < 0)
                goto oom;
            l = &v[len++];
            memset(l, 0, sizeof(*l));
            snprintf(l->name, sizeof(l->name), "%s", name);
            dcap = 0;
        }
        if (!domain) /* a list without entries */
            continue;
        if (store_array_reserve(&l->domains, &dcap, l->count, 256, sizeof(*l->domains)) < 0 ||
            !(l->domains[l->count] = strdup(domain)))
            goto oom;
        l->count++;
    }
    sql_finalize(s);
    if (rc != SQL_DONE) {
        store_policy_lists_free(v, len);
        return store_sql_err(st, err, errlen, "policy version lists");
    }
    *lists = v;
    *n = len;
    return 0;
oom:
    sql_finalize(s);
    store_policy_lists_free(v, len);
    return store_errf(err, errlen, "policy version lists: out of memory");
}

/* Entries of list in version a's snapshot that version b's lacks ("" name: none). */
static int entries_only_in(struct store *st, int64_t a_of, int64_t b_of, const char *name,
                           int64_t *out, char *err, size_t errlen)
{
    int64_t args[2] = {a_of, b_of};

    *out = 0;
    return query_int_text(
               st,
               "SELECT count(*) FROM (SELECT domain FROM policy_version_list_entries"
               " WHERE version = ?1 AND list = ?3 EXCEPT SELECT domain"
               " FROM policy_version_list_entries WHERE version = ?2 AND list = ?3) AS d",
               args, 2, name, out, err, errlen) < 0
               ? -1
               : 0;
}

int store_version_lists_diff(struct store *st, int64_t from, int64_t to,
                             struct store_list_change **out, size_t *n, char *err, size_t errlen)
{
    struct store_list_change *v = NULL;
    size_t len = 0, cap = 0;
    int64_t kept, args[2] = {from, to};
    struct sql_stmt *s;
    int rc;

    *out = NULL;
    *n = 0;
    for (int i = 0; i < 2; i++) {
        kept = 0;
        rc = query_int(st, "SELECT lists_kept FROM policy_versions WHERE version = ?", &args[i], 1,
                       &kept, err, errlen);
        if (rc < 0)
            return -1;
        if (rc == 1 || !kept) {
            store_errf(err, errlen, "version %lld: %s", (long long)args[i],
                       rc == 1 ? "no such policy version" : "recorded before versions kept lists");
            return 1;
        }
    }
    /* Each name in either version, with where its entries are in each (NULL: not there);
     * the same entries_of is the same content. */
    if (store_prepare(st,
                      "WITH a AS (SELECT name, entries_of FROM policy_version_lists"
                      "  WHERE version = ?1),"
                      " b AS (SELECT name, entries_of FROM policy_version_lists WHERE version = ?2)"
                      " SELECT n.name, a.entries_of, b.entries_of FROM"
                      " (SELECT name FROM a UNION SELECT name FROM b) n"
                      " LEFT JOIN a ON a.name = n.name LEFT JOIN b ON b.name = n.name"
                      " WHERE a.entries_of IS DISTINCT FROM b.entries_of ORDER BY n.name",
                      &s, err, errlen) < 0)
        return -1;
    sql_bind_int64(s, 1, from);
    sql_bind_int64(s, 2, to);
    while ((rc = sql_step(s)) == SQL_ROW) {
        const char *name = sql_col_text(s, 0);
        bool in_a = !sql_col_null(s, 1);
        bool in_b = !sql_col_null(s, 2);
        int64_t a_of = sql_col_int64(s, 1), b_of = sql_col_int64(s, 2);
        struct store_list_change c;

        memset(&c, 0, sizeof(c));
        snprintf(c.name, sizeof(c.name), "%s", name);
        c.entries_from = c.entries_to = -1;
        if ((in_a &&
             (query_int_text(st,
                             "SELECT count(*) FROM policy_version_list_entries"
                             " WHERE version = ?1 AND list = ?2",
                             &a_of, 1, name, &c.entries_from, err, errlen) < 0 ||
              (in_b && entries_only_in(st, a_of, b_of, name, &c.removed, err, errlen) < 0))) ||
            (in_b &&
             (query_int_text(st,
                             "SELECT count(*) FROM policy_version_list_entries"
                             " WHERE version = ?1 AND list = ?2",
                             &b_of, 1, name, &c.entries_to, err, errlen) < 0 ||
              (in_a && entries_only_in(st, b_of, a_of, name, &c.added, err, errlen) < 0)))) {
            rc = -1;
            break;
        }
        if (!in_a)
            c.added = c.entries_to;
        if (!in_b)
            c.removed = c.entries_from;
        if (in_a && in_b && c.added == 0 && c.removed == 0)
            continue; /* the same entries, stored twice (a list changed and changed back) */
        if (store_array_reserve(&v, &cap, len, 8, sizeof(*v)) < 0) {
            store_errf(err, errlen, "list diff: out of memory");
            rc = -1;
            break;
        }
        v[len++] = c;
    }
    sql_finalize(s);
    if (rc != SQL_DONE) {
        free(v);
        return rc == -1 ? -1 : store_sql_err(st, err, errlen, "list diff");
    }
    *out = v;
    *n = len;
    return 0;
}

int store_rules_restore(struct store *st, int64_t version, const struct store_rule *rules, size_t n,
                        const char *actor, char *err, size_t errlen)
{
    struct sql_stmt *s;
    int64_t now = clock_wall_ms();
    char detail[80];
    int rc;

    for (size_t i = 0; i < n; i++)
        if (!rules[i].text || !*rules[i].text || rules[i].id <= 0)
            return store_errf(err, errlen, "rule %zu: empty text or no id", i + 1);
    if (store_begin(st, err, errlen) < 0)
        return -1;
    /* The rules keep their ids: their hit counts and the log rows that name them still
     * point at them. An id is never handed out again (AUTOINCREMENT), so no other rule can
     * hold it meanwhile. */
    if (store_exec(st, "DELETE FROM rules", err, errlen) < 0 ||
        store_prepare(st,
                      "INSERT INTO rules(id, position, enabled, text, comment, created_ms,"
                      " updated_ms) VALUES (?, ?, ?, ?, ?, ?, ?)",
                      &s, err, errlen) < 0)
        goto fail;
    sql_defer(s);
    for (size_t i = 0; i < n; i++) {
        sql_bind_int64(s, 1, rules[i].id);
        sql_bind_int64(s, 2, (int64_t)i + 1);
        sql_bind_int64(s, 3, rules[i].enabled);
        sql_bind_text(s, 4, rules[i].text);
        sql_bind_text(s, 5, rules[i].comment ? rules[i].comment : "");
        sql_bind_int64(s, 6, now);
        sql_bind_int64(s, 7, now);
        if (sql_step(s) != SQL_DONE) {
            store_sql_err(st, err, errlen, "rules restore");
            sql_finalize(s);
            goto fail;
        }
        sql_reset(s);
    }
    sql_finalize(s);
    rc = lists_restore(st, version, err, errlen);
    if (rc < 0)
        goto fail;
    if (rc == 0)
        snprintf(detail, sizeof(detail), "version %lld: %zu rules and its lists",
                 (long long)version, n);
    else
        snprintf(detail, sizeof(detail), "version %lld: %zu rules", (long long)version, n);
    if (store_audit_add(st, actor, "policy.rollback", detail, err, errlen) < 0 ||
        store_policy_bump(st, err, errlen) < 0)
        goto fail;
    return store_commit(st, err, errlen);
fail:
    store_rollback(st);
    return -1;
}

/* ---- pruning (the writer's retention job) ---- */

/* A version ended this long before the oldest logged request may still be named by it: a
 * node logs under the version it holds, which may lag another node's change a little. */
#define PRUNE_LOG_SLACK_MS (10 * 60 * 1000LL)
#define PRUNE_BATCH_MAX 1000
#define PRUNE_ROWS_DEFAULT 5000
#define DAY_MS (24 * 3600 * 1000LL)

/* Deletes version v's own rows; what it stored (rules, list entries) stays for
 * store_version_gc, which frees it in bounded steps once no version refers to it. */
static int version_drop(struct store *st, int64_t v, char *err, size_t errlen)
{
    if (exec_ints(st, "DELETE FROM policy_versions WHERE version = ?1", &v, 1, NULL, err, errlen) <
            0 ||
        exec_ints(st, "DELETE FROM policy_version_lists WHERE version = ?1", &v, 1, NULL, err,
                  errlen) < 0)
        return -1;
    return 0;
}

int64_t store_version_prune(struct store *st, int64_t keep, int64_t keep_days, int64_t batch,
                            char *err, size_t errlen)
{
    int64_t now = clock_wall_ms(), floor_v, oldest = 0, args[5], *found = NULL, pruned = 0;
    size_t nfound = 0;
    struct sql_stmt *s;
    int rc;

    if (keep <= 0)
        return 0;
    if (batch <= 0 || batch > PRUNE_BATCH_MAX)
        batch = PRUNE_BATCH_MAX;
    if (store_begin(st, err, errlen) < 0)
        return -1;
    args[0] = keep - 1;
    rc = query_int(st, "SELECT version FROM policy_versions ORDER BY version DESC LIMIT 1 OFFSET ?",
                   args, 1, &floor_v, err, errlen);
    if (rc != 0) /* fewer than keep versions: nothing to prune */
        goto done;
    rc = query_int(st, "SELECT time_ms FROM access_log ORDER BY id LIMIT 1", NULL, 0, &oldest, err,
                   errlen);
    if (rc < 0)
        goto done;
    /* Oldest first, and only versions that ended before the oldest logged request began,
     * so `why` finds the version of every request the log still holds. */
    args[0] = floor_v;
    args[1] = store_policy_version(st);
    args[2] = keep_days > 0 ? now - keep_days * DAY_MS : now;
    args[3] = rc == 1 ? INT64_MAX : oldest - PRUNE_LOG_SLACK_MS;
    args[4] = batch;
    if (store_prepare(st,
                      "SELECT v.version FROM policy_versions v"
                      " WHERE v.version < ?1 AND v.version < ?2 AND v.time_ms < ?3"
                      " AND (SELECT w.time_ms FROM policy_versions w WHERE w.version > v.version"
                      "      ORDER BY w.version LIMIT 1) < ?4"
                      " ORDER BY v.version LIMIT ?5",
                      &s, err, errlen) < 0) {
        rc = -1;
        goto done;
    }
    for (int i = 0; i < 5; i++)
        sql_bind_int64(s, i + 1, args[i]);
    found = malloc((size_t)batch * sizeof(*found));
    while (found && (rc = sql_step(s)) == SQL_ROW)
        found[nfound++] = sql_col_int64(s, 0);
    sql_finalize(s);
    if (!found) {
        rc = store_errf(err, errlen, "prune: out of memory");
        goto done;
    }
    if (rc != SQL_DONE) {
        rc = store_sql_err(st, err, errlen, "prune");
        goto done;
    }
    rc = 0;
    for (size_t i = 0; rc == 0 && i < nfound; i++)
        rc = version_drop(st, found[i], err, errlen);
    if (rc == 0 && nfound) {
        char detail[96];

        snprintf(detail, sizeof(detail), "%zu versions, %lld to %lld", nfound, (long long)found[0],
                 (long long)found[nfound - 1]);
        rc = store_audit_add(st, STORE_PRUNE_ACTOR, "version.prune", detail, err, errlen);
    }
    pruned = (int64_t)nfound;
done:
    free(found);
    if (rc < 0) {
        store_rollback(st);
        return -1;
    }
    return store_commit(st, err, errlen) < 0 ? -1 : pruned;
}

/* The next key (version, and list for entries) after *v / list that holds rows of table
 * `entries` (1) or rules (0). 0 with the key; 1 when there is none; -1 with err. */
static int next_key(struct store *st, bool entries, int64_t *v, char *list, size_t listlen,
                    char *err, size_t errlen)
{
    struct sql_stmt *s;
    int rc;

    if (store_prepare(st,
                      entries ? "SELECT version, list FROM policy_version_list_entries"
                                " WHERE version > ?1 OR (version = ?1 AND list > ?2)"
                                " ORDER BY version, list LIMIT 1"
                              : "SELECT version, '' FROM policy_version_rules WHERE version > ?1"
                                " ORDER BY version LIMIT 1",
                      &s, err, errlen) < 0)
        return -1;
    sql_bind_int64(s, 1, *v);
    if (entries)
        sql_bind_text(s, 2, list);
    rc = sql_step(s);
    if (rc == SQL_ROW) {
        *v = sql_col_int64(s, 0);
        snprintf(list, listlen, "%s", sql_col_text(s, 1));
    }
    sql_finalize(s);
    if (rc == SQL_DONE)
        return 1;
    return rc == SQL_ROW ? 0 : store_sql_err(st, err, errlen, "policy version gc");
}

/* Deletes at most max_rows rows of the first key no version refers to, in the caller's
 * transaction. Rows deleted (0: no such key), or -1 with err. */
static int64_t gc_one(struct store *st, bool entries, int64_t max_rows, char *err, size_t errlen)
{
    char list[256] = "";
    int64_t v = -1, args[2], used;
    int rc;

    /* One index probe per key: there are about as many keys as versions kept that changed
     * a list or the rules, so a pass that finds nothing to free stays cheap. */
    while ((rc = next_key(st, entries, &v, list, sizeof(list), err, errlen)) == 0) {
        args[0] = v;
        rc = entries ? query_int_text(st,
                                      "SELECT 1 FROM policy_version_lists"
                                      " WHERE entries_of = ?1 AND name = ?2 LIMIT 1",
                                      args, 1, list, &used, err, errlen)
                     : query_int(st, "SELECT 1 FROM policy_versions WHERE rules_of = ?1 LIMIT 1",
                                 args, 1, &used, err, errlen);
        if (rc < 0)
            return -1;
        if (rc == 0)
            continue; /* a version refers to it */
        args[1] = max_rows;
        if (exec_ints(st,
                      entries ? "DELETE FROM policy_version_list_entries"
                                " WHERE version = ?1 AND list = ?3 AND domain IN"
                                " (SELECT domain FROM policy_version_list_entries"
                                "  WHERE version = ?1 AND list = ?3 ORDER BY domain LIMIT ?2)"
                              : "DELETE FROM policy_version_rules WHERE version = ?1 AND rule_id IN"
                                " (SELECT rule_id FROM policy_version_rules WHERE version = ?1"
                                "  ORDER BY rule_id LIMIT ?2)",
                      args, 2, entries ? list : NULL, err, errlen) < 0)
            return -1;
        return sql_changes(st);
    }
    return rc < 0 ? -1 : 0;
}

int64_t store_version_gc(struct store *st, int64_t max_rows, char *err, size_t errlen)
{
    int64_t n;

    if (max_rows <= 0)
        max_rows = PRUNE_ROWS_DEFAULT;
    if (store_begin(st, err, errlen) < 0)
        return -1;
    n = gc_one(st, true, max_rows, err, errlen);
    if (n == 0)
        n = gc_one(st, false, max_rows, err, errlen);
    if (n < 0) {
        store_rollback(st);
        return -1;
    }
    return store_commit(st, err, errlen) < 0 ? -1 : n;
}
