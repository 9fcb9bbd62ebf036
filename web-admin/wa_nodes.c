/* web-admin nodes (wa_nodes.h). Whether a node lags is decided here once
 * (store_node_lagging), so the page, proxyctl and scripts say the same. */
#include <stdlib.h>
#include <string.h>

#include "web-admin/wa.h"
#include "web-admin/wa_nodes.h"

static json_t *node_json(const struct store_node *n, int64_t newest, const char *self)
{
    char why[128];
    bool lagging = store_node_lagging(n, newest, why, sizeof(why));
    const char *state = n->stopped_ms > 0                  ? "stopped"
                        : !lagging                         ? "ok"
                        : n->rival[0]                      ? "duplicate"
                        : n->age_ms > 3 * n->beat_every_ms ? "unseen"
                                                           : "behind";

    return json_pack("{s:o,s:o,s:o,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:o,s:s,s:b,s:s,s:b}", "name",
                     wa_json_text(n->name), "software", wa_json_text(n->software), "listen",
                     wa_json_text(n->listen), "started_ms", (json_int_t)n->started_ms,
                     "policy_version", (json_int_t)n->policy_version, "behind",
                     (json_int_t)(newest > n->policy_version ? newest - n->policy_version : 0),
                     "beat_ms", (json_int_t)n->beat_ms, "seen_ago_ms", (json_int_t)n->age_ms,
                     "beat_every_ms", (json_int_t)n->beat_every_ms, "stopped_ago_ms",
                     (json_int_t)n->stopped_age_ms, "rival", wa_json_text(n->rival), "state", state,
                     "lagging", lagging, "why", why, "self", self && strcmp(self, n->name) == 0);
}

enum MHD_Result wa_nodes_list(struct wa_req *r)
{
    struct store_node *rows;
    int64_t newest;
    size_t n, lagging = 0;
    char err[256], why[128];
    struct store *st = wa_store(r);
    json_t *arr;

    if (!st)
        return MHD_YES;
    if (store_nodes_list(st, &rows, &n, &newest, err, sizeof(err)) < 0)
        return wa_reply_error(r, 500, NULL, "cannot read the nodes: %s", err);
    arr = json_array();
    for (size_t i = 0; i < n; i++) {
        json_array_append_new(arr, node_json(&rows[i], newest, r->ctx->opts->node_name));
        lagging += store_node_lagging(&rows[i], newest, why, sizeof(why));
    }
    free(rows);
    return wa_reply_json(r, 200,
                         json_pack("{s:I,s:I,s:o}", "newest_policy_version", (json_int_t)newest,
                                   "lagging", (json_int_t)lagging, "nodes", arr));
}
