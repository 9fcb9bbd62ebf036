/* web-admin rules: GET and POST /api/rules, POST /api/rules/check, GET, PATCH and DELETE
 * /api/rules/ID, POST /api/rules/ID/move (ID in wa_req.param), and POST /api/block,
 * /api/allow and /api/unblock for one domain.
 */
#ifndef PX_WA_RULES_H
#define PX_WA_RULES_H

#include "web-admin/wa_http.h"

/* Rule id as the API shows it ({"id","position","enabled","text","comment","hits",
 * "undecided"}), or NULL if there is no such rule (or no memory). */
json_t *wa_rules_json_of(struct store *st, int id);

enum MHD_Result wa_rules_list(struct wa_req *r);
enum MHD_Result wa_rules_add(struct wa_req *r);
enum MHD_Result wa_rules_check(struct wa_req *r);
enum MHD_Result wa_rules_get(struct wa_req *r);
enum MHD_Result wa_rules_patch(struct wa_req *r);
enum MHD_Result wa_rules_delete(struct wa_req *r);
enum MHD_Result wa_rules_move(struct wa_req *r);
enum MHD_Result wa_rules_block(struct wa_req *r);
enum MHD_Result wa_rules_allow(struct wa_req *r);
enum MHD_Result wa_rules_unblock(struct wa_req *r);

#endif
