/* web-admin metrics and probes: GET /metrics (proxyd's counters of base/stats.h in the
 * Prometheus text format 0.0.4), GET /healthz (liveness) and GET /readyz (readiness).
 */
#ifndef PX_WA_METRICS_H
#define PX_WA_METRICS_H

#include <stdio.h>

#include "web-admin/wa_http.h"

/* Writes every counter of p to f in the Prometheus text format. Any thread. */
void wa_metrics_write(FILE *f, const struct wa_proxy_stats *p);

enum MHD_Result wa_metrics_get(struct wa_req *r);
enum MHD_Result wa_metrics_healthz(struct wa_req *r);
enum MHD_Result wa_metrics_readyz(struct wa_req *r);

#endif
