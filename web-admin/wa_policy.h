/* web-admin policy as a whole: GET /api/policy (export as a policy file), PUT /api/policy
 * (import one: all rules replaced), POST /api/test (which rule decides a URL, in the rule
 * set in force) and POST /api/reload.
 */
#ifndef PX_WA_POLICY_H
#define PX_WA_POLICY_H

#include "web-admin/wa_http.h"

enum MHD_Result wa_policy_export(struct wa_req *r);
enum MHD_Result wa_policy_import(struct wa_req *r);
enum MHD_Result wa_policy_test(struct wa_req *r);
enum MHD_Result wa_policy_reload(struct wa_req *r);

#endif
