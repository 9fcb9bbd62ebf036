/* web-admin API tokens of admin accounts: GET /api/tokens, POST /api/tokens, DELETE
 * /api/tokens/NAME (NAME in wa_req.param). Any role may hold tokens of its own; the admin
 * role sees and manages everyone's.
 */
#ifndef PX_WA_TOKENS_H
#define PX_WA_TOKENS_H

#include "web-admin/wa_http.h"

enum MHD_Result wa_tokens_list(struct wa_req *r);
enum MHD_Result wa_tokens_add(struct wa_req *r);
enum MHD_Result wa_tokens_delete(struct wa_req *r);

#endif
