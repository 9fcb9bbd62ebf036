/* web-admin stats and health: GET /api/stats (proxyd's counters, the last 24 h of the access
 * log, login counters) and GET /api/health (public).
 */
#ifndef PX_WA_STATS_H
#define PX_WA_STATS_H

#include "web-admin/wa_http.h"

enum MHD_Result wa_stats_get(struct wa_req *r);
enum MHD_Result wa_stats_health(struct wa_req *r);

#endif
