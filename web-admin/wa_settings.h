/* web-admin settings: GET and PUT /api/settings, the keys an admin may set at run time,
 * each with its group, label, help, the config option it overrides and its check. */
#ifndef PX_WA_SETTINGS_H
#define PX_WA_SETTINGS_H

#include <stdbool.h>

#include "web-admin/wa_http.h"

/* The limits of what PUT /api/settings stores. The logo's must not exceed what a block page
 * carries (proxy/reply.h REPLY_LOGO_BYTES, checked where both are seen: proxy/main.c). */
#define WA_SETTINGS_LOGO_BYTES 16384
#define WA_SETTINGS_CONTACT_MAX 200
#define WA_SETTINGS_MAX_DAYS 36500
#define WA_SETTINGS_MAX_ROWS 1000000000000LL

/* True if s is "host:port" or "[v6]:port" with nothing that could break out of the PAC
 * file's JavaScript string (the pac_proxy setting). */
bool wa_settings_hostport_ok(const char *s);
/* Whether s is what /proxy.pac may hand out: "host:port" (a plain proxy port, PAC "PROXY") or
 * "https://host:port" (the proxy over TLS, PAC "HTTPS"). */
bool wa_settings_pac_proxy_ok(const char *s);

enum MHD_Result wa_settings_get(struct wa_req *r);
enum MHD_Result wa_settings_put(struct wa_req *r);

#endif
