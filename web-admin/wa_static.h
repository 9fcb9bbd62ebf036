/* web-admin static files: the pages, CSS and JS, read once at start from the static folder
 * into memory, and the two handlers that serve them.
 */
#ifndef PX_WA_STATIC_H
#define PX_WA_STATIC_H

#include <stddef.h>

#include "web-admin/wa_http.h"

/* The admin pages, one line each: path, file in the static folder, id (names its script
 * /static/<id>.js, its nav item and body[data-page]), title. wa_routes.c routes them (for
 * admins only), wa_static.c wraps them in _layout.html. The login page, public and a whole
 * document of its own, is WA_LOGIN_PAGE (login.html). */
#define WA_PAGES(X)                                                                                \
    X("/", "index.html", "dashboard", "Dashboard")                                                 \
    X("/log", "log.html", "log", "Live log")                                                       \
    X("/policy", "policy.html", "policy", "Policy")                                                \
    X("/lists", "lists.html", "lists", "Lists")                                                    \
    X("/users", "users.html", "users", "Users")                                                    \
    X("/groups", "groups.html", "groups", "Groups")                                                \
    X("/versions", "versions.html", "versions", "Versions")                                        \
    X("/forwards", "forwards.html", "forwards", "Forwards")                                        \
    X("/requests", "requests.html", "requests", "Requests")                                        \
    X("/audit", "audit.html", "audit", "Audit")                                                    \
    X("/settings", "settings.html", "settings", "Settings")                                        \
    X("/ca", "ca.html", "ca", "Local CA")
#define WA_LOGIN_PAGE "/login"

/* Reads the files of dir with a known extension and a plain name into memory and wraps the
 * pages in the layout. NULL with err filled. */
struct wa_static *wa_static_load(const char *dir, char *err, size_t errlen);
void wa_static_free(struct wa_static *s);

/* GET a page (its path is r->url) / GET /static/NAME (NAME in r->param); 404 when missing. */
enum MHD_Result wa_static_page(struct wa_req *r);
enum MHD_Result wa_static_asset(struct wa_req *r);

#endif
