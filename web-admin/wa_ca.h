/* web-admin ca: the local CA (tls/ca.h) on the admin server. GET /ca.crt (no login: every
 * client of the office fetches it to trust it), GET /api/ca (what it is, and the cache of
 * certificates it signed), POST /api/ca (make one; admin role, audited) and POST
 * /api/ca/import (an existing CA's certificate and key; admin role, audited). proxyd takes
 * a new CA into use within a second of its files changing (proxy/ca_live.c). */
#ifndef PX_WA_CA_H
#define PX_WA_CA_H

#include "web-admin/wa_http.h"

enum MHD_Result wa_ca_cert(struct wa_req *r);
enum MHD_Result wa_ca_get(struct wa_req *r);
enum MHD_Result wa_ca_init(struct wa_req *r);
enum MHD_Result wa_ca_import(struct wa_req *r);

#endif
