/* web-admin lists: GET /api/lists; GET, PUT (import: hosts file, plain list or adblock
 * domains as text/plain) and DELETE /api/lists/NAME (NAME in wa_req.param).
 */
#ifndef PX_WA_LISTS_H
#define PX_WA_LISTS_H

#include "web-admin/wa_http.h"

/* 1 if list `name` exists, 0 if not, -1 on error. */
int wa_list_exists(struct store *st, const char *name);

enum MHD_Result wa_lists_list(struct wa_req *r);
enum MHD_Result wa_lists_get(struct wa_req *r);
enum MHD_Result wa_lists_put(struct wa_req *r);
enum MHD_Result wa_lists_delete(struct wa_req *r);

#endif
