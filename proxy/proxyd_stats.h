/* proxyd_stats: what the running proxy tells the admin server (GET /api/stats, /metrics,
 * /readyz) and, through main.c, systemd's status line: every worker's counters summed (the
 * tables of base/stats.h), the password verifiers', the mint cache's, the fleet's and the
 * access log writer's, and whether it is ready. A part of main (proxyd.h), in a file of its
 * own because it only reads. */
#ifndef PX_PROXYD_STATS_H
#define PX_PROXYD_STATS_H

#include <stdbool.h>
#include <stddef.h>

#include "web-admin/wa.h"

/* The admin server's proxy_stats hook: out (overwritten) with the figures of the proxyd at
 * arg (struct proxyd *). Any thread, while the workers exist. */
void proxyd_stats_read(void *arg, struct wa_proxy_stats *out);

/* The admin server's ready hook: true when the workers listen, a policy is in force and the
 * access log's writer runs; else false with why saying what is missing. Any thread. */
bool proxyd_ready(void *arg, char *why, size_t whylen);

#endif
