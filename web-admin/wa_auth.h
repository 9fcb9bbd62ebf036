/* web-admin authentication: the bearer token, the first admin account and its password file,
 * login sessions with their CSRF tokens, the login throttle, and the login, logout and
 * session endpoints.
 */
#ifndef PX_WA_AUTH_H
#define PX_WA_AUTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "web-admin/wa_http.h"

/* Reads <data_dir>/admin.token, creating it (0600, 32 random bytes in hex) if missing.
 * throttle: the login throttle's settings, NULL for store_throttle's defaults. Returns the
 * state (free with wa_auth_free), or NULL with err filled. */
struct wa_auth *wa_auth_new(const char *data_dir, const struct store_throttle_opts *throttle,
                            char *err, size_t errlen);
void wa_auth_free(struct wa_auth *a);

/* Creates admin WA_FIRST_ADMIN with a random password, written to the first-password file in
 * data_dir, if no admin exists; sets *created. 0, or -1 with err filled (then no admin, no
 * file). */
int wa_auth_first_admin(struct store_pool *pool, const char *data_dir, bool *created, char *err,
                        size_t errlen);
/* Deletes the first-password file (after the first admin's password changed or the admin
 * was deleted). A missing file is fine. Any thread. */
void wa_auth_first_password_forget(const char *data_dir);

/* Fills r->authed, actor, admin, role, via_session, must_change and csrf from the bearer
 * token (admin.token, or an admin's API token looked up in the database) or the session
 * cookie. May answer r itself (500: the database cannot check a token); the caller then
 * stops. Any MHD thread. */
void wa_auth_check(struct wa_req *r);
/* True if a state-changing request (not GET, HEAD or OPTIONS) made with a session lacks the
 * session's X-CSRF-Token. */
bool wa_auth_csrf_bad(struct wa_req *r);

/* Admin logins refused for a wrong name or password, and refused unverified (429). */
void wa_auth_counters(struct wa_auth *a, uint64_t *failed, uint64_t *throttled);
/* Ends admin's sessions on every node (its password changed), but the caller's own session
 * when keep_own and it is admin's. The number ended, or -1 with err. A role change and an
 * account's deletion end them in the store itself. */
int64_t wa_auth_sessions_end(struct wa_req *r, struct store *st, const char *admin, bool keep_own,
                             char *err, size_t errlen);

/* POST /api/login, POST /api/logout, GET /api/session */
enum MHD_Result wa_auth_login(struct wa_req *r);
enum MHD_Result wa_auth_logout(struct wa_req *r);
enum MHD_Result wa_auth_session(struct wa_req *r);

#endif
