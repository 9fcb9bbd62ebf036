/* web-admin policy changes: how a change of rules or lists reaches the rule set in force. */
#ifndef PX_WA_CHANGE_H
#define PX_WA_CHANGE_H

#include <stddef.h>

#include "web-admin/wa_http.h"

/* Calls proxyd's policy hook (recompile from the store, publish) under ctx->policy_mu (the
 * caller holds it). 0, or -1 with err filled. */
int wa_change_hook(struct wa_ctx *ctx, char *err, size_t errlen);

#endif
