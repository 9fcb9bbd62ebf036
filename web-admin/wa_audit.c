/* web-admin audit: GET /api/audit, who changed what policy when, newest first; filtered by
 * actor (exact) and by text in the action or detail.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/clock.h"
#include "web-admin/wa_audit.h"

enum MHD_Result wa_audit_list(struct wa_req *r)
{
    struct store_audit *rows;
    struct store *st;
    int64_t before = 0, limit;
    size_t n;
    char err[256];
    json_t *arr, *o;

    if (wa_query_int(r, "before", &before) < 0)
        return MHD_YES;
    if (before <= 0)
        before = clock_wall_ms() + 1;
    limit = wa_query_limit(r, 100);
    if (limit < 0)
        return MHD_YES;
    const char *actor = wa_query(r, "actor"), *q = wa_query(r, "q");
    if (q && strlen(q) > STORE_AUDIT_SEARCH_MAX)
        return wa_reply_error(r, 400, "q", "q: search text longer than %d bytes",
                              STORE_AUDIT_SEARCH_MAX);
    if (actor && strlen(actor) > 63)
        return wa_reply_error(r, 400, "actor", "actor: names are at most 63 bytes");
    st = wa_store(r);
    if (!st)
        return MHD_YES;
    if (store_audit_search(st, before, (size_t)limit, actor, q, &rows, &n, err, sizeof(err)) < 0)
        return wa_reply_error(r, 500, NULL, "%s", err);
    arr = json_array();
    for (size_t i = 0; arr && i < n; i++)
        json_array_append_new(arr, json_pack("{s:I,s:s,s:s,s:s}", "time_ms",
                                             (json_int_t)rows[i].time_ms, "actor", rows[i].actor,
                                             "action", rows[i].action, "detail", rows[i].detail));
    o = json_pack("{s:o}", "rows", arr);
    if (o)
        json_object_set_new(o, "next_before",
                            n == (size_t)limit && n > 0 ? json_integer(rows[n - 1].time_ms)
                                                        : json_null());
    free(rows);
    return wa_reply_json(r, 200, o);
}
