/* store_node: the nodes table (migration 31): each proxyd on the database records itself
 * there and beats (store_node_beat) every few seconds, so any node's admin side shows the
 * fleet: who runs, since when, which software, which policy version each one has in force,
 * who has not been heard of, and which name two processes were given (each run records its
 * instance, host and pid, and one that finds another live run under its name says so).
 *
 * Times of the beat come from the database's clock (SQL_NOW_MS), as does the age a reader
 * gets, so a node whose own clock is off is not taken for a silent one.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "storage/store_impl.h"

/* A node not heard of for this long (stopped or gone) leaves the table. */
#define NODE_FORGET_MS (7LL * 24 * 3600 * 1000)

static int step_done(struct store *st, struct sql_stmt *s, const char *what, char *err,
                     size_t errlen)
{
    int rc = sql_step(s);

    sql_finalize(s);
    return rc == SQL_DONE ? 0 : store_sql_err(st, err, errlen, what);
}

int store_node_beat(struct store *st, const struct store_node *me, char *err, size_t errlen)
{
    char sql[1024];
    struct sql_stmt *s;

    snprintf(sql, sizeof(sql),
             "INSERT INTO nodes(name, started_ms, software, listen, policy_version, beat_ms,"
             " beat_every_ms, stopped_ms, instance, rival) VALUES (?, ?, ?, ?, ?, %s, ?, 0, ?, ?)"
             " ON CONFLICT(name) DO UPDATE SET started_ms = excluded.started_ms,"
             " software = excluded.software, listen = excluded.listen,"
             " policy_version = excluded.policy_version, beat_ms = excluded.beat_ms,"
             " beat_every_ms = excluded.beat_every_ms, stopped_ms = 0,"
             " instance = excluded.instance, rival = excluded.rival",
             sql_frag(st, SQL_NOW_MS));
    if (store_prepare(st, sql, &s, err, errlen) < 0)
        return -1;
    sql_bind_field(s, 1, me->name, sizeof(me->name));
    sql_bind_int64(s, 2, me->started_ms);
    sql_bind_field(s, 3, me->software, sizeof(me->software));
    sql_bind_field(s, 4, me->listen, sizeof(me->listen));
    sql_bind_int64(s, 5, me->policy_version);
    sql_bind_int64(s, 6, me->beat_every_ms);
    sql_bind_field(s, 7, me->instance, sizeof(me->instance));
    sql_bind_field(s, 8, me->rival, sizeof(me->rival));
    if (step_done(st, s, "node beat", err, errlen) < 0)
        return -1;
    /* Long gone nodes go (a few rows at most: nothing to batch). */
    snprintf(sql, sizeof(sql), "DELETE FROM nodes WHERE beat_ms < %s - ?",
             sql_frag(st, SQL_NOW_MS));
    if (store_prepare(st, sql, &s, err, errlen) < 0)
        return -1;
    sql_bind_int64(s, 1, NODE_FORGET_MS);
    return step_done(st, s, "nodes", err, errlen);
}

/* Prepares sql, whose parameters are me's name, instance and start (a run of the node). */
static int prepare_run(struct store *st, const char *sql, const struct store_node *me,
                       struct sql_stmt **s, char *err, size_t errlen)
{
    if (store_prepare(st, sql, s, err, errlen) < 0)
        return -1;
    sql_bind_field(*s, 1, me->name, sizeof(me->name));
    sql_bind_field(*s, 2, me->instance, sizeof(me->instance));
    sql_bind_int64(*s, 3, me->started_ms);
    return 0;
}

int store_node_stop(struct store *st, const struct store_node *me, char *err, size_t errlen)
{
    char sql[256];
    struct sql_stmt *s;

    /* Only its own run's row: another run under the same name goes on. */
    snprintf(sql, sizeof(sql),
             "UPDATE nodes SET stopped_ms = %s WHERE name = ? AND instance = ? AND started_ms = ?",
             sql_frag(st, SQL_NOW_MS));
    if (prepare_run(st, sql, me, &s, err, errlen) < 0)
        return -1;
    return step_done(st, s, "node stop", err, errlen);
}

int store_node_rival(struct store *st, const struct store_node *me, char *rival, size_t rivallen,
                     char *err, size_t errlen)
{
    char sql[512];
    struct sql_stmt *s;
    int rc, found = 0;

    rival[0] = '\0';
    snprintf(sql, sizeof(sql),
             "SELECT instance, started_ms FROM nodes WHERE name = ? AND stopped_ms = 0"
             " AND %s - beat_ms <= 3 * beat_every_ms AND (instance <> ? OR started_ms <> ?)",
             sql_frag(st, SQL_NOW_MS));
    if (prepare_run(st, sql, me, &s, err, errlen) < 0)
        return -1;
    if ((rc = sql_step(s)) == SQL_ROW) {
        const char *instance = sql_col_text(s, 0);

        /* A node from before instances were recorded is known by its start alone. */
        if (*instance)
            snprintf(rival, rivallen, "%s", instance);
        else
            snprintf(rival, rivallen, "started at %lld ms", (long long)sql_col_int64(s, 1));
        found = 1;
    }
    sql_finalize(s);
    if (rc != SQL_ROW && rc != SQL_DONE)
        return store_sql_err(st, err, errlen, "nodes");
    return found;
}

int store_nodes_list(struct store *st, struct store_node **out, size_t *n, int64_t *newest_version,
                     char *err, size_t errlen)
{
    struct store_node *rows = NULL;
    size_t len = 0, cap = 0;
    struct sql_stmt *s;
    char sql[512];
    int rc;

    *out = NULL;
    *n = 0;
    /* The newest version first: a change committed meanwhile can only make a node look
     * ahead of it, never behind. */
    *newest_version = store_policy_version(st);
    if (*newest_version < 0)
        return store_errf(err, errlen, "nodes: cannot read the policy version");
    snprintf(sql, sizeof(sql),
             "SELECT name, started_ms, software, listen, policy_version, beat_ms, beat_every_ms,"
             " stopped_ms, %s - beat_ms, instance, rival,"
             " CASE WHEN stopped_ms > 0 THEN %s - stopped_ms ELSE 0 END FROM nodes ORDER BY name",
             sql_frag(st, SQL_NOW_MS), sql_frag(st, SQL_NOW_MS));
    if (store_prepare(st, sql, &s, err, errlen) < 0)
        return -1;
    while ((rc = sql_step(s)) == SQL_ROW) {
        if (store_array_reserve(&rows, &cap, len, 8, sizeof(*rows)) < 0) {
            sql_finalize(s);
            store_errf(err, errlen, "nodes: out of memory");
            goto fail;
        }
        struct store_node *r = &rows[len++];
        memset(r, 0, sizeof(*r));
        snprintf(r->name, sizeof(r->name), "%s", sql_col_text(s, 0));
        r->started_ms = sql_col_int64(s, 1);
        snprintf(r->software, sizeof(r->software), "%s", sql_col_text(s, 2));
        snprintf(r->listen, sizeof(r->listen), "%s", sql_col_text(s, 3));
        r->policy_version = sql_col_int64(s, 4);
        r->beat_ms = sql_col_int64(s, 5);
        r->beat_every_ms = sql_col_int64(s, 6);
        r->stopped_ms = sql_col_int64(s, 7);
        r->age_ms = sql_col_int64(s, 8);
        snprintf(r->instance, sizeof(r->instance), "%s", sql_col_text(s, 9));
        snprintf(r->rival, sizeof(r->rival), "%s", sql_col_text(s, 10));
        r->stopped_age_ms = sql_col_int64(s, 11);
    }
    sql_finalize(s);
    if (rc != SQL_DONE) {
        store_sql_err(st, err, errlen, "nodes");
        goto fail;
    }
    *out = rows;
    *n = len;
    return 0;
fail:
    free(rows);
    return -1;
}

bool store_node_lagging(const struct store_node *node, int64_t newest_version, char *why,
                        size_t whylen)
{
    why[0] = '\0';
    if (node->stopped_ms > 0)
        return false;
    if (node->rival[0]) {
        snprintf(why, whylen, "another proxyd (%s) runs under this name", node->rival);
        return true;
    }
    if (node->age_ms > 3 * node->beat_every_ms) {
        snprintf(why, whylen, "not seen for %lld s", (long long)((node->age_ms + 500) / 1000));
        return true;
    }
    if (node->policy_version < newest_version) {
        snprintf(why, whylen, "runs policy version %lld, the newest is %lld",
                 (long long)node->policy_version, (long long)newest_version);
        return true;
    }
    return false;
}
