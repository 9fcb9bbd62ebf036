/* web-admin list subscriptions: lists proxyd fetches from a URL on a schedule and imports
 * through the same compile-then-commit path as an admin's import (wa_change_apply_as), as
 * actor "subscription:NAME". A thread of its own runs the due fetches, one at a time, so
 * neither relaying nor the admin server waits for a slow list host.
 *
 * API: GET /api/subscriptions; PUT (body {"url", "every_s"}) and DELETE
 * /api/subscriptions/NAME; POST /api/subscriptions/NAME/refresh (202 at once: the thread
 * fetches it next; the row says "fetching" until the outcome is recorded).
 */
#ifndef PX_WA_SUBS_H
#define PX_WA_SUBS_H

#include "web-admin/wa_http.h"

/* The thread that fetches due subscriptions (checked every second). NULL with err when it
 * cannot start. ctx must outlive it. */
struct wa_subs *wa_subs_start(struct wa_ctx *ctx, char *err, size_t errlen);
/* Ends the download in progress, if any, and makes later ones end at once. NULL is fine. */
void wa_subs_cancel(struct wa_subs *subs);
/* Ends the thread and frees subs (after wa_subs_cancel, once no request uses it). NULL is
 * fine. */
void wa_subs_stop(struct wa_subs *subs);

enum MHD_Result wa_subs_list(struct wa_req *r);
enum MHD_Result wa_subs_put(struct wa_req *r);
enum MHD_Result wa_subs_delete(struct wa_req *r);
enum MHD_Result wa_subs_refresh(struct wa_req *r);

#endif
