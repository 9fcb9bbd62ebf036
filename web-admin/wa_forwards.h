/* web-admin port forwards: GET /api/forwards, POST /api/forwards, DELETE /api/forwards/ID
 * (ID in wa_req.param). proxyd binds a new forward's listener before it is stored, so an
 * address that cannot be bound is the request's error (409) and nothing is kept.
 */
#ifndef PX_WA_FORWARDS_H
#define PX_WA_FORWARDS_H

#include "web-admin/wa_http.h"

enum MHD_Result wa_forwards_list(struct wa_req *r);
enum MHD_Result wa_forwards_add(struct wa_req *r);
enum MHD_Result wa_forwards_delete(struct wa_req *r);

#endif
