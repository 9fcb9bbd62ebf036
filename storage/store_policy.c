/* store_policy: rules (ordered by position), named domain lists, the policy version every
 * change bumps, and the per-rule hit and undecided counters (table rule_hits) the writer
 * keeps.
 *
 * Every change is one transaction holding the change, its audit row and the version bump,
 * so proxyd never compiles a half-applied policy and the audit never misses a change.
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/clock.h"
#include "storage/store_impl.h"

#define LIST_NAME_MAX 63

int64_t store_policy_version(struct store *st)
{
    struct sql_stmt *s;
    int64_t v = -1;

    if (store_prepare(st, "SELECT version FROM policy_version WHERE id = 1", &s, NULL, 0) < 0)
        return -1;
    if (sql_step(s) == SQL_ROW)
        v = sql_col_int64(s, 0);
    sql_finalize(s);
    return v;
}

/* Takes the notifications libpq has read; whether there was one. */
static bool pg_notified(struct store *st)
{
    PGnotify *n;
    bool any = false;

    while ((n = PQnotifies(st->pg))) {
        any = true;
        PQfreemem(n);
    }
    return any;
}

int store_policy_wait(struct store *st, int wake_fd, int timeout_ms, char *err, size_t errlen)
{
    struct pollfd fds[2];
    nfds_t nfds = 0;
    int rc;

    if (st->backend != STORE_PG)
        return store_errf(err, errlen, "SQLite has no change notifications");
    /* listening: the connection (counted by its reconnections) the LISTEN was sent on. */
    if (PQstatus(st->pg) != CONNECTION_OK || !st->listening || st->listen_revived != st->revived) {
        st->listening = false;
        if (store_pg_revive(st) < 0 || PQstatus(st->pg) != CONNECTION_OK)
            return store_errf(err, errlen, "PostgreSQL: not connected");
        if (store_exec(st, "LISTEN " STORE_POLICY_CHANNEL, err, errlen) < 0)
            return -1;
        st->listening = true;
        st->listen_revived = st->revived;
        return 2;
    }
    if (PQconsumeInput(st->pg) != 1)
        return store_errf(err, errlen, "PostgreSQL: %s", PQerrorMessage(st->pg));
    if (pg_notified(st))
        return 1;
    fds[nfds++] = (struct pollfd){.fd = PQsocket(st->pg), .events = POLLIN};
    if (wake_fd >= 0)
        fds[nfds++] = (struct pollfd){.fd = wake_fd, .events = POLLIN};
    rc = poll(fds, nfds, timeout_ms);
    if (rc < 0 && errno != EINTR)
        return store_errf(err, errlen, "poll: %s", strerror(errno));
    if (rc <= 0 || !(fds[0].revents & (POLLIN | POLLHUP | POLLERR)))
        return 0;
    /* The end of the stream shows here as an error: the connection is gone. */
    if (PQconsumeInput(st->pg) != 1 || PQstatus(st->pg) != CONNECTION_OK)
        return store_errf(err, errlen, "PostgreSQL: %s", PQerrorMessage(st->pg));
    return pg_notified(st) ? 1 : 0;
}

int store_policy_bump(struct store *st, char *err, size_t errlen)
{
    struct sql_stmt *s;
    int rc;

    /* A group of changes is one version: each change sets base + 1, so a change undone by
     * its savepoint leaves the others' bump in place. */
    if (store_prepare(st,
                      "UPDATE policy_version SET version = coalesce(?, version + 1) WHERE id = 1",
                      &s, err, errlen) < 0)
        return -1;
    if (st->in_group)
        sql_bind_int64(s, 1, st->group_base + 1);
    rc = sql_step(s);
    sql_finalize(s);
    if (rc != SQL_DONE)
        return store_sql_err(st, err, errlen, "policy version");
    st->version_pending = true;
    return 0;
}

/* ---- Rule hit tally ---- */

void store_tally_reset(struct store_hit_tally *t)
{
    if (t->used == 0)
        return;
    memset(t->rule_id, 0, sizeof(t->rule_id));
    t->used = 0;
}

bool store_tally_add(struct store_hit_tally *t, int32_t rule_id, int64_t hits, int64_t undecided)
{
    size_t i = ((uint32_t)rule_id * 2654435761u) % STORE_TALLY_SLOTS;

    if (rule_id == 0)
        return true;
    /* Open addressing, kept at most 3/4 full so probes stay short. */
    for (;; i = (i + 1) % STORE_TALLY_SLOTS) {
        if (t->rule_id[i] == rule_id) {
            t->count[i] += hits;
            t->undecided[i] += undecided;
            return true;
        }
        if (t->rule_id[i] == 0)
            break;
    }
    if (t->used >= STORE_TALLY_SLOTS * 3 / 4)
        return false;
    t->rule_id[i] = rule_id;
    t->count[i] = hits;
    t->undecided[i] = undecided;
    t->used++;
    return true;
}

int store_tally_flush(struct store *st, struct store_hit_tally *t, char *err, size_t errlen)
{
    struct sql_stmt *s;
    int rc = 0;

    if (t->used == 0)
        return 0;
    if (store_prepare(st,
                      "INSERT INTO rule_hits(rule_id, hits, undecided) VALUES (?, ?, ?)"
                      " ON CONFLICT(rule_id) DO UPDATE SET hits = rule_hits.hits + excluded.hits,"
                      " undecided = rule_hits.undecided + excluded.undecided",
                      &s, err, errlen) < 0)
        return -1;
    sql_defer(s);
    for (size_t i = 0; i < STORE_TALLY_SLOTS && rc == 0; i++) {
        if (t->rule_id[i] == 0)
            continue;
        sql_bind_int64(s, 1, t->rule_id[i]);
        sql_bind_int64(s, 2, t->count[i]);
        sql_bind_int64(s, 3, t->undecided[i]);
        if (sql_step(s) != SQL_DONE)
            rc = store_sql_err(st, err, errlen, "rule_hits");
        sql_reset(s);
    }
    sql_finalize(s);
    store_tally_reset(t);
    return rc;
}

/* ---- Rules ---- */

#define RULE_COLUMNS                                                                               \
    "SELECT r.id, r.position, r.enabled, r.text, r.comment, coalesce(h.hits, 0),"                  \
    " coalesce(h.undecided, 0) FROM rules r LEFT JOIN rule_hits h ON h.rule_id = r.id"

static int rule_from_row(struct sql_stmt *s, struct store_rule *r)
{
    const char *text = sql_col_text(s, 3);
    const char *comment = sql_col_text(s, 4);

    r->id = sql_col_int(s, 0);
    r->position = sql_col_int(s, 1);
    r->enabled = sql_col_int(s, 2) != 0;
    r->hits = sql_col_int64(s, 5);
    r->undecided = sql_col_int64(s, 6);
    r->text = strdup(text ? text : "");
    r->comment = strdup(comment ? comment : "");
    if (!r->text || !r->comment) {
        free(r->text);
        free(r->comment);
        r->text = r->comment = NULL;
        return -1;
    }
    return 0;
}

void store_rules_free(struct store_rule *rules, size_t n)
{
    if (!rules)
        return;
    for (size_t i = 0; i < n; i++) {
        free(rules[i].text);
        free(rules[i].comment);
    }
    free(rules);
}

/* The rules in priority order, all of them (prefix NULL) or those whose text starts with
 * prefix. */
static int rules_select(struct store *st, const char *prefix, struct store_rule **rules, size_t *n,
                        char *err, size_t errlen)
{
    struct sql_stmt *s;
    struct store_rule *v = NULL;
    size_t len = 0, cap = 0;
    int rc;

    *rules = NULL;
    *n = 0;
    if (store_prepare(st,
                      prefix ? RULE_COLUMNS " WHERE substr(r.text, 1, length(?1)) = ?1"
                                            " ORDER BY r.position, r.id"
                             : RULE_COLUMNS " ORDER BY r.position, r.id",
                      &s, err, errlen) < 0)
        return -1;
    if (prefix)
        sql_bind_text(s, 1, prefix);
    while ((rc = sql_step(s)) == SQL_ROW) {
        if (store_array_reserve(&v, &cap, len, 32, sizeof(*v)) < 0)
            goto oom;
        if (rule_from_row(s, &v[len]) < 0)
            goto oom;
        len++;
    }
    if (rc != SQL_DONE) {
        store_sql_err(st, err, errlen, "rules");
        goto fail;
    }
    sql_finalize(s);
    *rules = v;
    *n = len;
    return 0;
oom:
    store_errf(err, errlen, "rules: out of memory");
fail:
    sql_finalize(s);
    store_rules_free(v, len);
    return -1;
}

int store_rules_list(struct store *st, struct store_rule **rules, size_t *n, char *err,
                     size_t errlen)
{
    return rules_select(st, NULL, rules, n, err, errlen);
}

int store_rules_starting(struct store *st, const char *prefix, struct store_rule **rules, size_t *n,
                         char *err, size_t errlen)
{
    return rules_select(st, prefix, rules, n, err, errlen);
}

int store_rule_get(struct store *st, int id, struct store_rule *out, char *err, size_t errlen)
{
    struct sql_stmt *s;
    int rc;

    memset(out, 0, sizeof(*out));
    if (store_prepare(st, RULE_COLUMNS " WHERE r.id = ?", &s, err, errlen) < 0)
        return -1;
    sql_bind_int64(s, 1, id);
    rc = sql_step(s);
    if (rc == SQL_ROW)
        rc = rule_from_row(s, out) == 0 ? 0 : store_errf(err, errlen, "rule: out of memory");
    else if (rc == SQL_DONE) {
        store_errf(err, errlen, "rule %d: no such rule", id);
        rc = 1;
    } else
        rc = store_sql_err(st, err, errlen, "rule");
    sql_finalize(s);
    return rc;
}

/* Runs `sql` with the nargs integer parameters args. When out is given, stores the first
 * column of the first row there. Returns 0, 1 when out was given but there was no row (or
 * it was NULL), -1 on error. */
static int exec_ints(struct store *st, const char *sql, const int64_t *args, int nargs,
                     int64_t *out, char *err, size_t errlen)
{
    struct sql_stmt *s;
    int rc, ret;

    if (store_prepare(st, sql, &s, err, errlen) < 0)
        return -1;
    for (int i = 0; i < nargs; i++)
        sql_bind_int64(s, i + 1, args[i]);
    rc = sql_step(s);
    if (rc == SQL_ROW) {
        if (out)
            *out = sql_col_int64(s, 0);
        ret = out && sql_col_null(s, 0) ? 1 : 0;
    } else if (rc == SQL_DONE) {
        ret = out ? 1 : 0;
    } else {
        ret = store_sql_err(st, err, errlen, "rules");
    }
    sql_finalize(s);
    return ret;
}

#define ARGS(...) (const int64_t[]){__VA_ARGS__}, (int)(sizeof((int64_t[]){__VA_ARGS__}) / 8)

/* Position of rule id in *pos; 1 (with err) when there is no such rule. */
static int rule_position(struct store *st, int id, int64_t *pos, char *err, size_t errlen)
{
    int rc = exec_ints(st, "SELECT position FROM rules WHERE id = ?", ARGS(id), pos, err, errlen);

    if (rc == 1)
        store_errf(err, errlen, "rule %d: no such rule", id);
    return rc;
}

static int rule_count(struct store *st, int64_t *count, char *err, size_t errlen)
{
    return exec_ints(st, "SELECT count(*) FROM rules", NULL, 0, count, err, errlen) < 0 ? -1 : 0;
}

/* The position a rule placed "before before_id" gets: -1 top, 0 end (count + 1), else the
 * position of before_id. */
static int target_position(struct store *st, int before_id, int64_t *pos, char *err, size_t errlen)
{
    if (before_id == -1) {
        *pos = 1;
        return 0;
    }
    if (before_id == 0) {
        if (rule_count(st, pos, err, errlen) < 0)
            return -1;
        (*pos)++;
        return 0;
    }
    return rule_position(st, before_id, pos, err, errlen) == 0 ? 0 : -1;
}

/* Ends a policy change inside its transaction: the audit row, the version bump, the commit.
 * Returns 0, or -1 with err set and the transaction rolled back. */
static int change_commit(struct store *st, const char *actor, const char *action,
                         const char *detail, char *err, size_t errlen)
{
    if (store_audit_add(st, actor, action, detail, err, errlen) < 0 ||
        store_policy_bump(st, err, errlen) < 0) {
        store_rollback(st);
        return -1;
    }
    return store_commit(st, err, errlen);
}

/* change_commit for a change of one rule, audited with the rule's text. */
static int rule_change_commit(struct store *st, const char *actor, const char *action, int id,
                              const char *text, char *err, size_t errlen)
{
    char detail[512];

    snprintf(detail, sizeof(detail), "rule %d: %s", id, text ? text : "");
    return change_commit(st, actor, action, detail, err, errlen);
}

/* Text of rule id (owned) or NULL. */
static char *rule_text(struct store *st, int id)
{
    struct sql_stmt *s;
    char *text = NULL;

    if (store_prepare(st, "SELECT text FROM rules WHERE id = ?", &s, NULL, 0) < 0)
        return NULL;
    sql_bind_int64(s, 1, id);
    if (sql_step(s) == SQL_ROW)
        text = strdup(sql_col_text(s, 0));
    sql_finalize(s);
    return text;
}

/* Comment of rule id (owned) or NULL. */
static char *rule_comment(struct store *st, int id)
{
    struct sql_stmt *s;
    char *c = NULL;

    if (store_prepare(st, "SELECT comment FROM rules WHERE id = ?", &s, NULL, 0) < 0)
        return NULL;
    sql_bind_int64(s, 1, id);
    if (sql_step(s) == SQL_ROW)
        c = strdup(sql_col_text(s, 0));
    sql_finalize(s);
    return c;
}

int store_rule_add(struct store *st, const char *text, const char *comment, int before_id,
                   const char *actor, int *id, char *err, size_t errlen)
{
    struct sql_stmt *s;
    int64_t pos, now = clock_wall_ms();

    if (!text || !*text)
        return store_errf(err, errlen, "rule: empty text");
    if (store_begin(st, err, errlen) < 0)
        return -1;
    if (target_position(st, before_id, &pos, err, errlen) < 0 ||
        exec_ints(st, "UPDATE rules SET position = position + 1 WHERE position >= ?", ARGS(pos),
                  NULL, err, errlen) < 0 ||
        store_prepare(st,
                      "INSERT INTO rules(position, enabled, text, comment, created_ms,"
                      " updated_ms) VALUES (?, 1, ?, ?, ?, ?) RETURNING id",
                      &s, err, errlen) < 0)
        goto fail;
    sql_bind_int64(s, 1, pos);
    sql_bind_text(s, 2, text);
    sql_bind_text(s, 3, comment ? comment : "");
    sql_bind_int64(s, 4, now);
    sql_bind_int64(s, 5, now);
    if (sql_step(s) != SQL_ROW) {
        store_sql_err(st, err, errlen, "rule add");
        sql_finalize(s);
        goto fail;
    }
    *id = sql_col_int(s, 0);
    sql_finalize(s);
    return rule_change_commit(st, actor, "rule.add", *id, text, err, errlen);
fail:
    store_rollback(st);
    return -1;
}

int store_rule_update(struct store *st, int id, const char *text, const char *comment, int enabled,
                      const char *actor, char *err, size_t errlen)
{
    struct sql_stmt *s;
    int64_t pos;
    char *now_text, *old_text = NULL, *old_comment = NULL, detail[512];
    size_t n;
    int rc;

    if (text && !*text)
        return store_errf(err, errlen, "rule %d: empty text", id);
    if (store_begin(st, err, errlen) < 0)
        return -1;
    if (rule_position(st, id, &pos, err, errlen) != 0)
        goto fail;
    /* What it was, for the audit's "before -> after". */
    old_text = rule_text(st, id);
    old_comment = comment ? rule_comment(st, id) : NULL;
    /* Each field keeps its value when its parameter is NULL. */
    if (store_prepare(st,
                      "UPDATE rules SET text = coalesce(?1, text), comment = coalesce(?2, comment),"
                      " enabled = coalesce(?3, enabled), updated_ms = ?4 WHERE id = ?5",
                      &s, err, errlen) < 0)
        goto fail;
    if (text)
        sql_bind_text(s, 1, text);
    if (comment)
        sql_bind_text(s, 2, comment);
    if (enabled >= 0)
        sql_bind_int64(s, 3, enabled != 0);
    sql_bind_int64(s, 4, clock_wall_ms());
    sql_bind_int64(s, 5, id);
    if (sql_step(s) != SQL_DONE) {
        store_sql_err(st, err, errlen, "rule update");
        sql_finalize(s);
        goto fail;
    }
    sql_finalize(s);
    now_text = rule_text(st, id);
    n = (size_t)snprintf(detail, sizeof(detail), "rule %d: %s", id, now_text ? now_text : "");
    if (text && old_text && now_text && strcmp(old_text, now_text) != 0)
        n = (size_t)snprintf(detail, sizeof(detail), "rule %d: %s -> %s", id, old_text, now_text);
    if (comment && old_comment && strcmp(old_comment, comment) != 0 && n < sizeof(detail))
        snprintf(detail + n, sizeof(detail) - n, " (comment '%s' -> '%s')", old_comment, comment);
    rc = change_commit(st, actor,
                       enabled == 0 && !text  ? "rule.disable"
                       : enabled > 0 && !text ? "rule.enable"
                                              : "rule.update",
                       detail, err, errlen);
    free(now_text);
    free(old_text);
    free(old_comment);
    return rc;
fail:
    free(old_text);
    free(old_comment);
    store_rollback(st);
    return -1;
}

int store_rule_delete(struct store *st, int id, const char *actor, char *err, size_t errlen)
{
    int64_t pos;
    char *text;
    int rc;

    if (store_begin(st, err, errlen) < 0)
        return -1;
    if (rule_position(st, id, &pos, err, errlen) != 0) {
        store_rollback(st);
        return -1;
    }
    text = rule_text(st, id);
    if (exec_ints(st, "DELETE FROM rules WHERE id = ?", ARGS(id), NULL, err, errlen) < 0 ||
        exec_ints(st, "UPDATE rules SET position = position - 1 WHERE position > ?", ARGS(pos),
                  NULL, err, errlen) < 0) {
        store_rollback(st);
        rc = -1;
    } else {
        rc = rule_change_commit(st, actor, "rule.delete", id, text, err, errlen);
    }
    free(text);
    return rc;
}

int store_rule_move(struct store *st, int id, int before_id, const char *actor, char *err,
                    size_t errlen)
{
    int64_t old, pos;
    char *text;
    char detail[512];

    if (store_begin(st, err, errlen) < 0)
        return -1;
    if (rule_position(st, id, &old, err, errlen) != 0)
        goto fail;
    if (before_id == id) /* before itself: already there */
        return store_commit(st, err, errlen);
    /* Take the rule out (close its gap), then open a gap where it goes. Position 0 parks it
     * meanwhile so neither shift touches it. */
    if (exec_ints(st, "UPDATE rules SET position = 0 WHERE id = ?", ARGS(id), NULL, err, errlen) <
            0 ||
        exec_ints(st, "UPDATE rules SET position = position - 1 WHERE position > ?", ARGS(old),
                  NULL, err, errlen) < 0)
        goto fail;
    if (before_id == 0) {
        if (rule_count(st, &pos, err, errlen) < 0)
            goto fail;
    } else if (target_position(st, before_id, &pos, err, errlen) < 0) {
        goto fail;
    }
    if (exec_ints(st, "UPDATE rules SET position = position + 1 WHERE position >= ?", ARGS(pos),
                  NULL, err, errlen) < 0 ||
        exec_ints(st, "UPDATE rules SET position = ?, updated_ms = ? WHERE id = ?",
                  ARGS(pos, clock_wall_ms(), id), NULL, err, errlen) < 0)
        goto fail;
    text = rule_text(st, id);
    snprintf(detail, sizeof(detail), "rule %d: position %lld -> %lld: %s", id, (long long)old,
             (long long)pos, text ? text : "");
    free(text);
    return change_commit(st, actor, "rule.move", detail, err, errlen);
fail:
    store_rollback(st);
    return -1;
}

int store_rules_replace(struct store *st, const char *const *texts, size_t n, const char *actor,
                        char *err, size_t errlen)
{
    struct sql_stmt *s;
    int64_t now = clock_wall_ms();
    char detail[64];

    for (size_t i = 0; i < n; i++)
        if (!texts[i] || !*texts[i])
            return store_errf(err, errlen, "rule %zu: empty text", i + 1);
    if (store_begin(st, err, errlen) < 0)
        return -1;
    if (store_exec(st, "DELETE FROM rules", err, errlen) < 0 ||
        store_prepare(st,
                      "INSERT INTO rules(position, enabled, text, comment, created_ms,"
                      " updated_ms) VALUES (?, 1, ?, '', ?, ?)",
                      &s, err, errlen) < 0)
        goto fail;
    sql_defer(s);
    for (size_t i = 0; i < n; i++) {
        sql_bind_int64(s, 1, (int64_t)i + 1);
        sql_bind_text(s, 2, texts[i]);
        sql_bind_int64(s, 3, now);
        sql_bind_int64(s, 4, now);
        if (sql_step(s) != SQL_DONE) {
            store_sql_err(st, err, errlen, "rules replace");
            sql_finalize(s);
            goto fail;
        }
        sql_reset(s);
    }
    sql_finalize(s);
    snprintf(detail, sizeof(detail), "%zu rules", n);
    return change_commit(st, actor, "rules.replace", detail, err, errlen);
fail:
    store_rollback(st);
    return -1;
}

/* ---- Lists ---- */

static int check_list_name(const char *name, char *err, size_t errlen)
{
    if (!name || !*name || strlen(name) > LIST_NAME_MAX)
        return store_errf(err, errlen, "list name must be 1 to %d bytes", LIST_NAME_MAX);
    return 0;
}

int store_lists(struct store *st, struct store_list_info **lists, size_t *n, char *err,
                size_t errlen)
{
    struct sql_stmt *s;
    struct store_list_info *v = NULL;
    size_t len = 0, cap = 0;
    int rc;

    *lists = NULL;
    *n = 0;
    if (store_prepare(st,
                      "SELECT name, updated_ms,"
                      " (SELECT count(*) FROM list_entries e WHERE e.list = l.name)"
                      " FROM lists l ORDER BY name",
                      &s, err, errlen) < 0)
        return -1;
    while ((rc = sql_step(s)) == SQL_ROW) {
        const char *name = sql_col_text(s, 0);

        if (store_array_reserve(&v, &cap, len, 16, sizeof(*v)) < 0) {
            store_errf(err, errlen, "lists: out of memory");
            goto fail;
        }
        snprintf(v[len].name, sizeof(v[len].name), "%s", name ? name : "");
        v[len].updated_ms = sql_col_int64(s, 1);
        v[len].entries = sql_col_int64(s, 2);
        len++;
    }
    if (rc != SQL_DONE) {
        store_sql_err(st, err, errlen, "lists");
        goto fail;
    }
    sql_finalize(s);
    *lists = v;
    *n = len;
    return 0;
fail:
    sql_finalize(s);
    free(v);
    return -1;
}

static int cmp_str(const void *a, const void *b)
{
    const char *x = *(const char *const *)a, *y = *(const char *const *)b;

    return strcmp(x ? x : "", y ? y : "");
}

int store_list_replace(struct store *st, const char *name, const char *const *domains, size_t n,
                       const char *actor, char *err, size_t errlen)
{
    struct sql_stmt *s = NULL;
    const char **sorted;
    char detail[128];
    int64_t added = 0;

    if (check_list_name(name, err, errlen) < 0)
        return -1;
    /* Inserting in key order appends to the b-tree instead of splitting pages all over it:
     * several times faster for 100k entries. */
    sorted = malloc((n ? n : 1) * sizeof(*sorted));
    if (!sorted)
        return store_errf(err, errlen, "list %s: out of memory", name);
    if (n) {
        memcpy(sorted, domains, n * sizeof(*sorted));
        qsort(sorted, n, sizeof(*sorted), cmp_str);
    }
    if (store_begin(st, err, errlen) < 0) {
        free(sorted);
        return -1;
    }
    if (store_prepare(st,
                      "INSERT INTO lists(name, updated_ms) VALUES (?, ?)"
                      " ON CONFLICT(name) DO UPDATE SET updated_ms = excluded.updated_ms",
                      &s, err, errlen) < 0)
        goto fail;
    sql_bind_text(s, 1, name);
    sql_bind_int64(s, 2, clock_wall_ms());
    if (sql_step(s) != SQL_DONE)
        goto sql_fail;
    sql_finalize(s);
    s = NULL;
    if (store_exec_text(st, "DELETE FROM list_entries WHERE list = ?", name, "list replace", err,
                        errlen) < 0 ||
        store_prepare(st,
                      "INSERT INTO list_entries(list, domain) VALUES (?, ?) ON CONFLICT DO NOTHING",
                      &s, err, errlen) < 0)
        goto fail;
    sql_defer(s);
    sql_bind_text(s, 1, name);
    for (size_t i = 0; i < n; i++) {
        if (!sorted[i] || !*sorted[i])
            continue;
        if (i > 0 && sorted[i - 1] && strcmp(sorted[i - 1], sorted[i]) == 0)
            continue;
        sql_bind_text(s, 2, sorted[i]);
        if (sql_step(s) != SQL_DONE)
            goto sql_fail;
        sql_reset(s);
        added++;
    }
    sql_finalize(s);
    s = NULL;
    st->lists_changed = true;
    st->lists_like = 0;
    snprintf(detail, sizeof(detail), "%s: %lld entries", name, (long long)added);
    free(sorted);
    return change_commit(st, actor, "list.replace", detail, err, errlen);
sql_fail:
    store_sql_err(st, err, errlen, "list replace");
fail:
    sql_finalize(s);
    free(sorted);
    store_rollback(st);
    return -1;
}

int store_list_delete(struct store *st, const char *name, const char *actor, char *err,
                      size_t errlen)
{
    char detail[128];

    if (check_list_name(name, err, errlen) < 0 || store_begin(st, err, errlen) < 0)
        return -1;
    /* Entries go with it (ON DELETE CASCADE). */
    if (store_exec_text(st, "DELETE FROM lists WHERE name = ?", name, "list delete", err, errlen) <
        0)
        goto fail;
    if (sql_changes(st) == 0) {
        store_errf(err, errlen, "list %s: no such list", name);
        goto fail;
    }
    st->lists_changed = true;
    st->lists_like = 0;
    snprintf(detail, sizeof(detail), "%s", name);
    return change_commit(st, actor, "list.delete", detail, err, errlen);
fail:
    store_rollback(st);
    return -1;
}

static bool list_exists(struct store *st, const char *name)
{
    struct sql_stmt *s;
    bool found;

    if (store_prepare(st, "SELECT 1 FROM lists WHERE name = ?", &s, NULL, 0) < 0)
        return false;
    sql_bind_text(s, 1, name);
    found = sql_step(s) == SQL_ROW;
    sql_finalize(s);
    return found;
}

int store_list_entries(struct store *st, const char *name, char ***domains, size_t *n, char *err,
                       size_t errlen)
{
    struct sql_stmt *s;
    char **v = NULL;
    size_t len = 0, cap = 0;
    int rc;

    *domains = NULL;
    *n = 0;
    if (store_prepare(st, "SELECT domain FROM list_entries WHERE list = ? ORDER BY domain", &s, err,
                      errlen) < 0)
        return -1;
    sql_bind_text(s, 1, name);
    while ((rc = sql_step(s)) == SQL_ROW) {
        if (store_array_reserve(&v, &cap, len, 256, sizeof(*v)) < 0)
            goto oom;
        if (!(v[len] = strdup(sql_col_text(s, 0))))
            goto oom;
        len++;
    }
    if (rc != SQL_DONE) {
        store_sql_err(st, err, errlen, "list entries");
        goto fail;
    }
    sql_finalize(s);
    s = NULL;
    if (len == 0 && !list_exists(st, name)) {
        store_errf(err, errlen, "list %s: no such list", name);
        goto fail;
    }
    *domains = v;
    *n = len;
    return 0;
oom:
    store_errf(err, errlen, "list %s: out of memory", name);
fail:
    sql_finalize(s);
    for (size_t i = 0; i < len; i++)
        free(v[i]);
    free(v);
    return -1;
}

/* ---- The whole policy at one moment, and grouped changes ---- */

void store_policy_lists_free(struct store_policy_list *lists, size_t n)
{
    for (size_t i = 0; lists && i < n; i++) {
        for (size_t j = 0; j < lists[i].count; j++)
            free(lists[i].domains[j]);
        free(lists[i].domains);
    }
    free(lists);
}

void store_policy_free(struct store_policy *p)
{
    store_rules_free(p->rules, p->nrules);
    store_policy_lists_free(p->lists, p->nlists);
    memset(p, 0, sizeof(*p));
}

/* AUTOINCREMENT hands out one more than the largest id the table ever held. */
static int next_rule_id(struct store *st, int *id, char *err, size_t errlen)
{
    int64_t v = 0;

    if (exec_ints(st, sql_frag(st, SQL_NEXT_RULE_ID), NULL, 0, &v, err, errlen) < 0)
        return -1;
    *id = (int)v;
    return 0;
}

int store_policy_read(struct store *st, struct store_policy *out, char *err, size_t errlen)
{
    struct store_list_info *infos = NULL;
    size_t n = 0;

    memset(out, 0, sizeof(*out));
    /* A savepoint outside a transaction is a deferred BEGIN: every read below sees the
     * database as of the first one. */
    if (store_exec(st, sql_frag(st, SQL_READ_BEGIN), err, errlen) < 0)
        return -1;
    out->version = store_policy_version(st);
    if (out->version < 0) {
        store_errf(err, errlen, "policy version: %s", sql_errmsg(st));
        goto fail;
    }
    if (next_rule_id(st, &out->next_rule_id, err, errlen) < 0 ||
        store_rules_list(st, &out->rules, &out->nrules, err, errlen) < 0 ||
        store_lists(st, &infos, &n, err, errlen) < 0)
        goto fail;
    out->lists = calloc(n ? n : 1, sizeof(*out->lists));
    if (!out->lists) {
        store_errf(err, errlen, "lists: out of memory");
        goto fail;
    }
    for (size_t i = 0; i < n; i++) {
        struct store_policy_list *l = &out->lists[i];

        memcpy(l->name, infos[i].name, sizeof(l->name));
        if (store_list_entries(st, l->name, &l->domains, &l->count, err, errlen) < 0)
            goto fail;
        out->nlists++;
    }
    free(infos);
    return store_exec(st, sql_frag(st, SQL_READ_END), err, errlen) < 0 ? -1 : 0;
fail:
    free(infos);
    store_policy_free(out);
    sql_exec_script(
        st, st->backend == STORE_PG ? "ROLLBACK" : "ROLLBACK TO policy_read; RELEASE policy_read",
        NULL, 0);
    return -1;
}

int store_change_begin(struct store *st, int64_t if_version, char *err, size_t errlen)
{
    int64_t now;

    if (store_begin(st, err, errlen) < 0)
        return PX_ERR;
    now = store_policy_version(st);
    st->in_group = now >= 0;
    st->group_base = now;
    if (if_version < 0 || now == if_version)
        return PX_OK;
    store_rollback(st);
    if (now < 0)
        return store_errf(err, errlen, "policy version: cannot read it");
    store_errf(err, errlen, "the policy changed meanwhile (version %lld, not %lld)", (long long)now,
               (long long)if_version);
    return PX_AGAIN;
}

int store_change_commit(struct store *st, int64_t *version, char *err, size_t errlen)
{
    int64_t v = store_policy_version(st);

    if (v < 0) {
        store_rollback(st);
        return store_errf(err, errlen, "policy version: cannot read it");
    }
    if (store_commit(st, err, errlen) < 0)
        return PX_ERR;
    if (version)
        *version = v;
    return PX_OK;
}

void store_change_rollback(struct store *st)
{
    store_rollback(st);
}
