/* web-admin policy versions: history, one version, diff, rollback, and why a logged request
 * was decided (wa_versions.c).
 */
#ifndef PX_WA_VERSIONS_H
#define PX_WA_VERSIONS_H

#include "web-admin/wa_http.h"

enum MHD_Result wa_versions_list(struct wa_req *r);
enum MHD_Result wa_versions_get(struct wa_req *r);
enum MHD_Result wa_versions_diff(struct wa_req *r);
enum MHD_Result wa_versions_rollback(struct wa_req *r);
enum MHD_Result wa_versions_why(struct wa_req *r);

#endif
