/* web-admin accounts: proxy users (GET /api/users, PUT and DELETE /api/users/NAME) and
 * admins (the same under /api/admins); NAME in wa_req.param.
 */
#ifndef PX_WA_USERS_H
#define PX_WA_USERS_H

#include "web-admin/wa_http.h"

enum MHD_Result wa_users_list(struct wa_req *r);
enum MHD_Result wa_users_put(struct wa_req *r);
enum MHD_Result wa_users_delete(struct wa_req *r);
enum MHD_Result wa_admins_list(struct wa_req *r);
enum MHD_Result wa_admins_put(struct wa_req *r);
enum MHD_Result wa_admins_delete(struct wa_req *r);

enum MHD_Result wa_admins_role(struct wa_req *r);
enum MHD_Result wa_account_password(struct wa_req *r);

#endif
