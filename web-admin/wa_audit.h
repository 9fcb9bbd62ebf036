/* web-admin audit: GET /api/audit, who changed what when, newest first. */
#ifndef PX_WA_AUDIT_H
#define PX_WA_AUDIT_H

#include "web-admin/wa_http.h"

enum MHD_Result wa_audit_list(struct wa_req *r);

#endif
