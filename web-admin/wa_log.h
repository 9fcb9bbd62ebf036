/* web-admin access log: GET /api/logs (search, filters, paging), GET /api/top,
 * GET /api/series and GET /api/visitors (the dashboard's top lists, time series and the
 * "who visited" summary of one domain).
 */
#ifndef PX_WA_LOG_H
#define PX_WA_LOG_H

#include "web-admin/wa_http.h"

/* The log filters of r's query (since, until, client, host, q, decision, status, rule) into f,
 * whose strings then point into r's query (valid while r is). 0, or -1 after answering 400
 * naming the bad one. GET /api/logs and its export share it, so a filter added here applies
 * to both. */
int wa_log_filter(struct wa_req *r, struct store_log_filter *f);

enum MHD_Result wa_log_search(struct wa_req *r);
enum MHD_Result wa_log_top(struct wa_req *r);
enum MHD_Result wa_log_series(struct wa_req *r);
enum MHD_Result wa_log_visitors(struct wa_req *r);

#endif
