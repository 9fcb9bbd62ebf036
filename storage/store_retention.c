/* store_retention: deleting old access-log rows in small steps, oldest first, by age and by
 * row count, keeping the rule hit counters and the rollups equal to the rows that remain.
 * Only rows the rollups hold (at or below their watermark) are deleted, so each deleted row
 * is taken out of them; the writer applies its sums before each step.
 */
#include <stdlib.h>

#include "base/clock.h"
#include "storage/store_impl.h"

#define DEFAULT_BATCH 5000
#define DAY_MS (24 * 3600 * 1000LL)
/* (bucket, key) pairs a step sums before applying them: deleted rows are the oldest, few
 * buckets at a time, so a small accumulator seldom fills (and works when it does). */
#define ROLLUP_KEYS 1024

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
    tally = calloc(1, sizeof(*tally));
    acc = store_rollup_new(ROLLUP_KEYS);
    if (!tally || !acc || store_begin(st, NULL, 0) < 0) {
        free(tally);
        store_rollup_free(acc);
        return -1;
    }
    if (max_rows > 0) {
        /* Rows leave only from the old end, so ids are contiguous and "beyond the newest
         * max_rows" is id <= max(id) - max_rows: two b-tree probes instead of a count. */
        char sql[512];

        snprintf(sql, sizeof(sql),
                 "DELETE FROM access_log WHERE id <= %s("
                 " (SELECT max(id) FROM access_log) - ?1,"
                 " (SELECT min(id) FROM access_log) + ?2 - 1,"
                 " (SELECT rolled_id FROM access_rollup_state)) RETURNING "
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
    if (days > 0 && deleted < batch) {
        /* Walks the time index from its old end: cost is the rows deleted, not the table. */
        if (store_prepare(st,
                          "DELETE FROM access_log WHERE id IN (SELECT id FROM access_log"
                          " WHERE time_ms < ? AND id <= (SELECT rolled_id FROM access_rollup_state)"
                          " ORDER BY time_ms LIMIT ?) RETURNING rule_id, " STORE_ROLLUP_ROW_COLS,
                          &s, NULL, 0) < 0)
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
        store_commit(st, NULL, 0) < 0)
        goto fail;
    free(tally);
    store_rollup_free(acc);
    return deleted;
fail:
    sql_finalize(s);
    store_rollback(st);
    free(tally);
    store_rollup_free(acc);
    return -1;
}
