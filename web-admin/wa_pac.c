/* web-admin PAC file: GET /proxy.pac, so browsers can be pointed at the proxy by one URL.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "web-admin/wa_pac.h"
#include "web-admin/wa_settings.h"

enum MHD_Result wa_pac_get(struct wa_req *r)
{
    char pac[512], err[256];
    const char *proxy = r->ctx->opts->pac_proxy;
    struct store *st = store_pool_get(r->ctx->pool, err, sizeof(err));
    char *set = st ? store_setting_get(st, "pac_proxy") : NULL;
    enum MHD_Result ret;

    store_pool_put(r->ctx->pool, st);
    if (set && wa_settings_pac_proxy_ok(set))
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
    free(set);
    ret = wa_reply_data(r, 200, "application/x-ns-proxy-autoconfig", "no-cache", pac, strlen(pac));
    return ret;
}
