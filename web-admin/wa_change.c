/* web-admin policy changes: see wa_change.h. */
#include <stdio.h>

#include "web-admin/wa_change.h"

int wa_change_hook(struct wa_ctx *ctx, char *err, size_t errlen)
{
    err[0] = '\0';
    if (!ctx->opts->policy_changed)
        return 0;
    if (ctx->opts->policy_changed(ctx->opts->hook_arg, err, errlen) == 0)
        return 0;
    if (!err[0])
        snprintf(err, errlen, "the proxy refused the new policy");
    return -1;
}
