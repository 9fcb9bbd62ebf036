/* web-admin routes: the one table of every path the admin server answers, with its method,
 * who may call it and how large a body it takes, and the dispatch by method and path.
 * wa_server.c asks it which route a request has, enforces the route's flags, then runs it.
 */
#ifndef PX_WA_ROUTES_H
#define PX_WA_ROUTES_H

#include <stddef.h>

#include "web-admin/wa_http.h"

/* What a route asks of the caller. Without WA_PUBLIC or WA_PAGE a route needs the bearer
 * token or a session (401), and a session must send its CSRF token with every method but
 * GET and HEAD (403). */
enum wa_route_flag {
    WA_PUBLIC = 1 << 0,      /* anyone, no credentials */
    WA_PAGE = 1 << 1,        /* an HTML page: without credentials, or with a first-run password
                                still to replace, 303 to /login */
    WA_BODY_POLICY = 1 << 2, /* the body is a policy file: up to WA_POLICY_LIMIT, not the
                                WA_BODY_LIMIT of JSON bodies */
    WA_BODY_LIST = 1 << 3,   /* the body is a domain list: up to WA_LIST_LIMIT */
    WA_FIRST_RUN = 1 << 4,   /* open to a session whose first-run password is still to replace
                                (with a {} in the path: only for its own name) */
    WA_METRICS = 1 << 5,     /* public to loopback and the networks of --metrics-allow (a
                                Prometheus scraper); anyone else needs credentials */
    /* Who may call it (store_role). GET and HEAD: every role. Any other method: the admin
     * role, unless the route says less, so a route added without a thought is closed to the
     * others (403). */
    WA_ANY_ROLE = 1 << 6, /* every role: it changes nothing stored (a check, a test, a logout)
                             or only the caller's own account */
    WA_OPERATOR = 1 << 7, /* block, unblock, allow and lists: operators too */
};

struct wa_route {
    const char *method;  /* "GET" (answers HEAD too), "POST", ...; NULL: any method */
    const char *pattern; /* "/api/rules/{}/move": {} takes one path segment (wa_req.param),
                            a final * the rest of the path */
    unsigned flags;      /* enum wa_route_flag */
    enum MHD_Result (*handler)(struct wa_req *r);
};

extern const struct wa_route wa_routes[];
extern const size_t wa_routes_count;

/* The route of one request. Rows with the same pattern are one path: the first pattern that
 * matches the path decides which rows are candidates, then the method picks one. */
struct wa_match {
    const struct wa_route *route; /* NULL: no row has this method for this path */
    unsigned flags;               /* the route's flags; without a route, the flags every row
                                     of the path has (0 for an unknown path) */
    char allow[64];               /* the path's methods, "GET, HEAD, PUT"; "" if unknown */
    char param[WA_PARAM_MAX];     /* what {} took, "" if nothing */
};

/* Finds the route for method and path (percent-decoded). Never fails. Any thread. */
void wa_route_find(const char *method, const char *path, struct wa_match *m);

/* Answers r: the route's handler, or 405 with Allow when the path is known but not the
 * method, or 404. */
enum MHD_Result wa_route_run(struct wa_req *r, const struct wa_match *m);

#endif
