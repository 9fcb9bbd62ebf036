/* web-admin PAC file: GET /proxy.pac (public), pointing browsers at the proxy. */
#ifndef PX_WA_PAC_H
#define PX_WA_PAC_H

#include "web-admin/wa_http.h"

enum MHD_Result wa_pac_get(struct wa_req *r);

#endif
