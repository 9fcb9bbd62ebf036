/* web-admin access requests: the queue of what users asked for on the block page
 * (GET /api/requests), approving one (an allow rule for that client or user and host, put
 * in force like any change) and denying one with a reason. */
#ifndef PX_WA_REQUESTS_H
#define PX_WA_REQUESTS_H

#include "web-admin/wa_http.h"

enum MHD_Result wa_requests_list(struct wa_req *r);
enum MHD_Result wa_requests_approve(struct wa_req *r);
enum MHD_Result wa_requests_deny(struct wa_req *r);

#endif
