/* web-admin PAC file: GET /proxy.pac, so browsers can be pointed at the proxy by one URL.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "web-admin/wa_pac.h"
#include "web-admin/wa_settings.h"

/* The pac_proxy setting into out ("" unset): as read now, or as last read when the database
 * does not answer. */
static void pac_setting(struct wa_ctx *ctx, char *out, size_t outlen)
{
    char err[256];
    struct store *st = store_pool_get(ctx->pool, err, sizeof(err));
    char *set = NULL;
    bool read = st && store_setting_read(st, "pac_proxy", &set, err, sizeof(err)) == 0;

    store_pool_put(ctx->pool, st);
    pthread_mutex_lock(&ctx->pac_mu);
    if (read)
        snprintf(ctx->pac_last, sizeof(ctx->pac_last), "%s", set ? set : "");
    snprintf(out, outlen, "%s", ctx->pac_last);
    pthread_mutex_unlock(&ctx->pac_mu);
    free(set);
}

enum MHD_Result wa_pac_get(struct wa_req *r)
{
    char pac[512], set[sizeof(r->ctx->pac_last)];
    const char *proxy = r->ctx->opts->pac_proxy;

    pac_setting(r->ctx, set, sizeof(set));
    if (*set && wa_settings_pac_proxy_ok(set))
        proxy = set;
    if (!wa_settings_pac_proxy_ok(proxy))
        proxy = "127.0.0.1:3128";
    /* The proxy over TLS: browsers speak TLS to it, and a proxy password never goes in clear. */
    bool https = strncmp(proxy, "https://", 8) == 0;
    snprintf(pac, sizeof(pac),
             "function FindProxyForURL(url, host) {\n"
             "    if (isPlainHostName(host) || host == \"localhost\" || "
             "shExpMatch(host, \"127.*\"))\n"
             "        return \"DIRECT\";\n"
             "    return \"%s %s\";\n"
             "}\n",
             https ? "HTTPS" : "PROXY", https ? proxy + 8 : proxy);
    return wa_reply_data(r, 200, "application/x-ns-proxy-autoconfig", "no-cache", pac, strlen(pac));
}
