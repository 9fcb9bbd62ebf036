/* web-admin nodes: the proxyd nodes on this database (storage's nodes table), each with the
 * policy version it runs and when it was last heard of, lagging ones marked.
 *
 * API: GET /api/nodes.
 */
#ifndef PX_WA_NODES_H
#define PX_WA_NODES_H

#include "web-admin/wa_http.h"

enum MHD_Result wa_nodes_list(struct wa_req *r);

#endif
