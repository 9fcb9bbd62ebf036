/* web-admin access log: GET /api/logs (search, filters, paging), GET /api/top and
 * GET /api/series (the dashboard's top lists and time series).
 */
#ifndef PX_WA_LOG_H
#define PX_WA_LOG_H

#include "web-admin/wa_http.h"

enum MHD_Result wa_log_search(struct wa_req *r);
enum MHD_Result wa_log_top(struct wa_req *r);
enum MHD_Result wa_log_series(struct wa_req *r);

#endif
