/* store_retention: deleting old access-log rows in small steps, oldest first, by age and by
 * row count, keeping the rule hit counters and the rollups equal to the rows that remain.
 * Only rows the rollups hold (at or below their watermark) are deleted, so each deleted row
 * is taken out of them; the writer applies its sums before each step. On PostgreSQL the log
 * has a table per day (migration 33): this file makes them ahead and drops them whole.
 */
#include <stdlib.h>
#include <string.h>

#include "base/clock.h"
#include "storage/store_impl.h"

#define DEFAULT_BATCH 5000
#define DAY_MS (24 * 3600 * 1000LL)
/* (bucket, key) pairs a step sums before applying them: deleted rows are the oldest, few
 * buckets at a time, so a small accumulator seldom fills (and works when it does). */
#define ROLLUP_KEYS 1024
#define ENSURE_MAX_DAYS 400
/* The day tables access_log_add_day makes: access_log_YYYYMMDD. Only those are dropped, and
 * their names go into the DROP's text only once they matched this. */
#define DAY_TABLE_PREFIX "access_log_"
#define DAY_TABLE_LEN (sizeof(DAY_TABLE_PREFIX) - 1 + 8)

/* Deletes through `stmt` (a DELETE ... RETURNING rule_id and the rollups' columns) and takes
 * the deleted rows off the hit counters and the rollups. Returns rows deleted or -1. */
static int64_t delete_counted(struct store *st, struct sql_stmt *stmt, struct store_hit_tally *t,
                              struct store_rollup_acc *acc)
{
    int64_t n = 0;
    int rc;

    while ((rc = sql_step(stmt)) == SQL_ROW) {
        int32_t rule_id = sql_col_int(stmt, 0);
        struct store_rollup_row r;

        store_rollup_row_of(stmt, 1, &r);
        /* As with the tally below: the delete is done before the first row comes back. */
        if (!store_rollup_add(acc, &r, -1)) {
            if (store_rollup_flush(st, acc, -1, NULL, 0) < 0)
                return -1;
            store_rollup_add(acc, &r, -1);
        }
        n++;
        if (!store_tally_add(t, rule_id, -1, 0)) {
            /* RETURNING rows are computed before the first is returned: the delete is done,
             * so another statement may run now. */
            if (store_tally_flush(st, t, NULL, 0) < 0)
                return -1;
            store_tally_add(t, rule_id, -1, 0);
        }
    }
    return rc == SQL_DONE ? n : -1;
}

static int64_t floor_day(int64_t t)
{
    return t / DAY_MS - (t % DAY_MS < 0);
}

int store_log_days_ensure(struct store *st, int64_t since_ms, int64_t until_ms, char *err,
                          size_t errlen)
{
    struct sql_stmt *s;
    int64_t first = floor_day(since_ms), last = floor_day(until_ms);
    int made = 0, rc;

    if (st->backend != STORE_PG)
        return 0;
    if (last < first || last - first >= ENSURE_MAX_DAYS)
        return store_errf(err, errlen, "log days: bad range");
    /* The advisory lock makes two nodes take turns: the second sees the first's tables. */
    if (store_begin(st, err, errlen) < 0)
        return -1;
    if (store_exec(st, "SELECT pg_advisory_xact_lock(7014, hashtext(current_schema()))", err,
                   errlen) < 0 ||
        store_prepare(st,
                      "SELECT access_log_add_day(d)"
                      " FROM generate_series(CAST(?1 AS BIGINT), CAST(?2 AS BIGINT)) d",
                      &s, err, errlen) < 0)
        goto fail;
    sql_bind_int64(s, 1, first);
    sql_bind_int64(s, 2, last);
    while ((rc = sql_step(s)) == SQL_ROW)
        made += sql_col_int(s, 0) != 0;
    sql_finalize(s);
    if (rc != SQL_DONE) {
        store_sql_err(st, err, errlen, "log days");
        goto fail;
    }
    if (store_commit(st, err, errlen) < 0)
        return -1;
    return made;
fail:
    store_rollback(st);
    return -1;
}

/* Runs sql (with ?1, ?2 the bounds lo, hi when it has them) and returns its first column as an
 * integer (0 for no row), or -1. */
static int64_t query_int(struct store *st, const char *sql, int64_t lo, int64_t hi)
{
    struct sql_stmt *s;
    int64_t v = 0;
    int rc;

    if (store_prepare(st, sql, &s, NULL, 0) < 0)
        return -1;
    if (strstr(sql, "?1")) {
        sql_bind_int64(s, 1, lo);
        sql_bind_int64(s, 2, hi);
    }
    rc = sql_step(s);
    if (rc == SQL_ROW)
        v = sql_col_int64(s, 0);
    sql_finalize(s);
    return rc == SQL_ROW || rc == SQL_DONE ? v : -1;
}

/* PostgreSQL, inside the step's transaction: drops the oldest day table if its whole day is
 * before cutoff and the rollups hold all its rows, and takes the day out of the rollups and
 * the hit counters by the day's own rollups, so not one row is read. Returns the rows it
 * held, 0 when none is due, or -1. */
static int64_t drop_old_day(struct store *st, int64_t cutoff)
{
    struct sql_stmt *s;
    char name[64], sql[192];
    int64_t lo = 0, hi = 0, newest, mark, rows;
    const char *t;
    int rc;

    name[0] = '\0';
    if (store_prepare(st,
                      "SELECT c.relname, CAST(b[1] AS BIGINT), CAST(b[2] AS BIGINT)"
                      " FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid,"
                      " regexp_match(pg_get_expr(c.relpartbound, c.oid),"
                      " 'FROM \\(''?(-?[0-9]+)''?\\) TO \\(''?(-?[0-9]+)''?\\)') b"
                      " WHERE i.inhparent = CAST('access_log' AS regclass)"
                      " AND c.relname ~ '^" DAY_TABLE_PREFIX "[0-9]{8}$' ORDER BY 3 LIMIT 1",
                      &s, NULL, 0) < 0)
        return -1;
    rc = sql_step(s);
    if (rc == SQL_ROW && (t = sql_col_text(s, 0)) && strlen(t) == DAY_TABLE_LEN &&
        strspn(t + sizeof(DAY_TABLE_PREFIX) - 1, "0123456789") == 8) {
        memcpy(name, t, DAY_TABLE_LEN + 1);
        lo = sql_col_int64(s, 1);
        hi = sql_col_int64(s, 2);
    }
    sql_finalize(s);
    if (rc != SQL_ROW && rc != SQL_DONE)
        return -1;
    /* Whole days only: the day's rollup buckets are then exactly its rows. */
    if (!name[0] || hi > cutoff || lo % DAY_MS != 0 || hi - lo != DAY_MS)
        return 0;
    snprintf(sql, sizeof(sql), "SELECT coalesce(max(id), 0) FROM %s", name);
    if ((newest = query_int(st, sql, 0, 0)) < 0 ||
        (mark = query_int(st, "SELECT rolled_id FROM access_rollup_watermark", 0, 0)) < 0)
        return -1;
    if (newest > mark)
        return 0; /* the writer rolls them up first */
    /* Dropping a day's table locks the whole log (its parent) exclusively: a wait for it
     * would hold this transaction, and the log writers' lock with it, while a long reader
     * (a backup, a report) runs, and queue every new reader of the log behind it. So the
     * lock is taken only if it is free at once; otherwise the day goes at a later step. */
    snprintf(sql, sizeof(sql),
             "LOCK TABLE ONLY access_log, ONLY %s IN ACCESS EXCLUSIVE MODE NOWAIT", name);
    if (store_exec(st, "SAVEPOINT day_drop", NULL, 0) < 0)
        return -1;
    if (store_exec(st, sql, NULL, 0) < 0)
        return store_exec(st, "ROLLBACK TO SAVEPOINT day_drop", NULL, 0) < 0 ? -1 : 0;
    if (store_exec(st, "RELEASE day_drop", NULL, 0) < 0)
        return -1;
    rows =
        query_int(st,
                  "SELECT coalesce(sum(requests), 0) FROM access_rollup"
                  " WHERE level_ms = 86400000 AND dim = 0 AND bucket_ms >= ?1 AND bucket_ms < ?2",
                  lo, hi);
    if (rows < 0 ||
        query_int(st,
                  "UPDATE rule_hits SET hits = rule_hits.hits - r.n"
                  " FROM (SELECT key, sum(requests) AS n FROM access_rollup"
                  " WHERE level_ms = 86400000 AND dim = 3 AND bucket_ms >= ?1 AND bucket_ms < ?2"
                  " GROUP BY key) r WHERE r.key = CAST(rule_hits.rule_id AS TEXT)",
                  lo, hi) < 0 ||
        store_rollup_drop_range(st, lo, hi, NULL, 0) < 0)
        return -1;
    snprintf(sql, sizeof(sql), "DROP TABLE %s", name);
    if (store_exec(st, sql, NULL, 0) < 0)
        return -1;
    return rows;
}

/* The minutes' id ranges (access_log_minutes) whose every row is gone: each ends below the
 * oldest id left (rows leave from the old end). The time bound keeps the delete on the
 * primary key's old end instead of reading every minute kept. */
static const char minutes_gone_sql[] =
    "DELETE FROM access_log_minutes WHERE minute_ms <= coalesce("
    " (SELECT time_ms FROM access_log ORDER BY id LIMIT 1), minute_ms)"
    " AND last_id < coalesce((SELECT min(id) FROM access_log),"
    " (SELECT rolled_id FROM access_rollup_watermark) + 1)";

int64_t store_retention_step(struct store *st, int64_t days, int64_t max_rows, int64_t batch)
{
    struct store_hit_tally *tally;
    struct store_rollup_acc *acc;
    struct sql_stmt *s = NULL;
    int64_t deleted = 0, n;

    if (days <= 0 && max_rows <= 0)
        return 0;
    if (batch <= 0)
        batch = DEFAULT_BATCH;
    /* Kept on st from one step to the next: the accumulator's table is tens of KiB, and
     * a calloc of it every step was a third of a step that deletes nothing. Both are empty
     * between steps (flushed, or cleared on failure). */
    if (!st->retention_tally)
        st->retention_tally = calloc(1, sizeof(*st->retention_tally));
    if (!st->retention_acc)
        st->retention_acc = store_rollup_new(ROLLUP_KEYS);
    tally = st->retention_tally;
    acc = st->retention_acc;
    if (!tally || !acc || store_begin(st, NULL, 0) < 0)
        return -1;
    if (max_rows > 0) {
        /* Rows leave only from the old end, so ids are contiguous and "beyond the newest
         * max_rows" is id <= max(id) - max_rows: two b-tree probes instead of a count. */
        char sql[512];

        snprintf(sql, sizeof(sql),
                 "DELETE FROM access_log WHERE id <= %s("
                 " (SELECT max(id) FROM access_log) - ?1,"
                 " (SELECT min(id) FROM access_log) + ?2 - 1,"
                 " (SELECT rolled_id FROM access_rollup_watermark)) RETURNING "
                 "rule_id, " STORE_ROLLUP_ROW_COLS,
                 sql_frag(st, SQL_LEAST));
        if (store_prepare(st, sql, &s, NULL, 0) < 0)
            goto fail;
        sql_bind_int64(s, 1, max_rows);
        sql_bind_int64(s, 2, batch);
        if ((n = delete_counted(st, s, tally, acc)) < 0)
            goto fail;
        deleted += n;
        sql_finalize(s);
        s = NULL;
    }
    if (days > 0 && deleted < batch && st->backend == STORE_PG) {
        if ((n = drop_old_day(st, clock_wall_ms() - days * DAY_MS)) < 0)
            goto fail;
        deleted += n;
    }
    if (days > 0 && deleted < batch) {
        char sql[512];

        /* Walks the time index from its old end: cost is the rows deleted, not the table.
         * PostgreSQL: only rows of no day table, the others leave with their day. */
        snprintf(sql, sizeof(sql),
                 "DELETE FROM %s WHERE id IN (SELECT id FROM %s"
                 " WHERE time_ms < ? AND id <= (SELECT rolled_id FROM access_rollup_watermark)"
                 " ORDER BY time_ms LIMIT ?) RETURNING rule_id, " STORE_ROLLUP_ROW_COLS,
                 st->backend == STORE_PG ? "access_log_default" : "access_log",
                 st->backend == STORE_PG ? "access_log_default" : "access_log");
        if (store_prepare(st, sql, &s, NULL, 0) < 0)
            goto fail;
        sql_bind_int64(s, 1, clock_wall_ms() - days * DAY_MS);
        sql_bind_int64(s, 2, batch - deleted);
        if ((n = delete_counted(st, s, tally, acc)) < 0)
            goto fail;
        deleted += n;
        sql_finalize(s);
        s = NULL;
    }
    if (store_tally_flush(st, tally, NULL, 0) < 0 || store_rollup_flush(st, acc, -1, NULL, 0) < 0 ||
        store_exec(st, "DELETE FROM rule_hits WHERE hits <= 0 AND undecided <= 0", NULL, 0) < 0 ||
        (deleted > 0 && store_exec(st, minutes_gone_sql, NULL, 0) < 0) ||
        store_commit(st, NULL, 0) < 0)
        goto fail;
    return deleted;
fail:
    sql_finalize(s);
    store_rollback(st);
    store_tally_reset(tally);
    store_rollup_clear(acc);
    return -1;
}
