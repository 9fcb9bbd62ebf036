/* web-admin log export: GET /api/logs/export, the access log under the log page's filters
 * as CSV or JSON, streamed.
 */
#ifndef PX_WA_EXPORT_H
#define PX_WA_EXPORT_H

#include "web-admin/wa_http.h"

enum MHD_Result wa_export_logs(struct wa_req *r);

#endif
