/* web-admin routes: the table and the dispatch. See wa_routes.h.
 *
 * A new endpoint is one row here and one handler in the file of its resource. The table is
 * the only place that says which path is public, takes a large body, or stays open to a
 * first-run password; docs/api.md lists the same endpoints, and test_wa_routes checks the two
 * agree.
 */
#include <stdio.h>
#include <string.h>

#include "web-admin/wa_audit.h"
#include "web-admin/wa_auth.h"
#include "web-admin/wa_ca.h"
#include "web-admin/wa_export.h"
#include "web-admin/wa_forwards.h"
#include "web-admin/wa_lists.h"
#include "web-admin/wa_log.h"
#include "web-admin/wa_metrics.h"
#include "web-admin/wa_nodes.h"
#include "web-admin/wa_pac.h"
#include "web-admin/wa_policy.h"
#include "web-admin/wa_requests.h"
#include "web-admin/wa_routes.h"
#include "web-admin/wa_rules.h"
#include "web-admin/wa_settings.h"
#include "web-admin/wa_static.h"
#include "web-admin/wa_stats.h"
#include "web-admin/wa_subs.h"
#include "web-admin/wa_tokens.h"
#include "web-admin/wa_users.h"
#include "web-admin/wa_versions.h"

static enum MHD_Result api_not_found(struct wa_req *r)
{
    return wa_reply_error(r, 404, NULL, "no such endpoint");
}

#define PAGE_ROUTE(path, file, id, title) {"GET", path, WA_PAGE, wa_static_page},

/* Flags say who may call (wa_routes.h): a method other than GET needs the admin role
 * unless WA_OPERATOR or WA_ANY_ROLE says less.
 * Order matters only where patterns overlap: "/api/rules/check" before "/api/rules/{}". */
const struct wa_route wa_routes[] = {
    /* method, pattern, flags, handler */
    {"GET", "/api/health", WA_PUBLIC, wa_stats_health},
    {"POST", "/api/login", WA_PUBLIC, wa_auth_login},
    {"POST", "/api/logout", WA_FIRST_RUN | WA_ANY_ROLE, wa_auth_logout},
    {"GET", "/api/session", WA_FIRST_RUN, wa_auth_session},

    {"GET", "/api/rules", 0, wa_rules_list},
    {"POST", "/api/rules", 0, wa_rules_add},
    {"POST", "/api/rules/check", WA_ANY_ROLE, wa_rules_check},
    {"GET", "/api/rules/{}", 0, wa_rules_get},
    {"PATCH", "/api/rules/{}", 0, wa_rules_patch},
    {"DELETE", "/api/rules/{}", 0, wa_rules_delete},
    {"POST", "/api/rules/{}/move", 0, wa_rules_move},
    {"POST", "/api/block", WA_OPERATOR, wa_rules_block},
    {"POST", "/api/allow", WA_OPERATOR, wa_rules_allow},
    {"POST", "/api/unblock", WA_OPERATOR, wa_rules_unblock},

    {"GET", "/api/policy", 0, wa_policy_export},
    {"PUT", "/api/policy", WA_BODY_POLICY, wa_policy_import},
    {"POST", "/api/test", WA_ANY_ROLE, wa_policy_test},
    {"POST", "/api/reload", 0, wa_policy_reload},

    {"GET", "/api/requests", 0, wa_requests_list},
    {"POST", "/api/requests/{}/approve", WA_OPERATOR, wa_requests_approve},
    {"POST", "/api/requests/{}/deny", WA_OPERATOR, wa_requests_deny},

    {"GET", "/api/versions", 0, wa_versions_list},
    {"GET", "/api/versions/diff", 0, wa_versions_diff},
    {"GET", "/api/versions/{}", 0, wa_versions_get},
    {"POST", "/api/versions/{}/rollback", 0, wa_versions_rollback},

    {"GET", "/api/lists", 0, wa_lists_list},
    {"GET", "/api/lists/{}", 0, wa_lists_get},
    {"PUT", "/api/lists/{}", WA_BODY_LIST | WA_OPERATOR, wa_lists_put},
    {"DELETE", "/api/lists/{}", WA_OPERATOR, wa_lists_delete},
    {"GET", "/api/subscriptions", 0, wa_subs_list},
    {"PUT", "/api/subscriptions/{}", WA_OPERATOR, wa_subs_put},
    {"DELETE", "/api/subscriptions/{}", WA_OPERATOR, wa_subs_delete},
    {"POST", "/api/subscriptions/{}/refresh", WA_OPERATOR, wa_subs_refresh},

    {"GET", "/api/users", 0, wa_users_list},
    {"PUT", "/api/users/{}", 0, wa_users_put},
    {"DELETE", "/api/users/{}", 0, wa_users_delete},
    {"GET", "/api/admins", 0, wa_admins_list},
    {"PUT", "/api/admins/{}", WA_FIRST_RUN, wa_admins_put},
    {"DELETE", "/api/admins/{}", 0, wa_admins_delete},
    {"PUT", "/api/admins/{}/role", 0, wa_admins_role},
    {"POST", "/api/account/password", WA_ANY_ROLE, wa_account_password},
    {"GET", "/api/tokens", 0, wa_tokens_list},
    {"POST", "/api/tokens", WA_ANY_ROLE, wa_tokens_add},
    {"DELETE", "/api/tokens/{}", WA_ANY_ROLE, wa_tokens_delete},

    {"GET", "/api/forwards", 0, wa_forwards_list},
    {"POST", "/api/forwards", 0, wa_forwards_add},
    {"DELETE", "/api/forwards/{}", 0, wa_forwards_delete},

    {"GET", "/api/logs", 0, wa_log_search},
    {"GET", "/api/logs/export", 0, wa_export_logs},
    {"GET", "/api/logs/{}/why", 0, wa_versions_why},
    {"GET", "/api/top", 0, wa_log_top},
    {"GET", "/api/series", 0, wa_log_series},
    {"GET", "/api/visitors", 0, wa_log_visitors},
    {"GET", "/api/stats", 0, wa_stats_get},
    {"GET", "/api/nodes", 0, wa_nodes_list},
    {"GET", "/api/settings", 0, wa_settings_get},
    {"PUT", "/api/settings", 0, wa_settings_put},
    {"GET", "/api/audit", 0, wa_audit_list},
    {"GET", "/api/ca", 0, wa_ca_get},
    {"POST", "/api/ca", 0, wa_ca_init},
    {"POST", "/api/ca/import", 0, wa_ca_import},
    /* Any other /api/ path: 404, but only to a caller with credentials. */
    {NULL, "/api/*", WA_ANY_ROLE, api_not_found},

    {"GET", "/metrics", WA_METRICS, wa_metrics_get},
    {"GET", "/healthz", WA_PUBLIC, wa_metrics_healthz},
    {"GET", "/readyz", WA_PUBLIC, wa_metrics_readyz},
    {"GET", "/proxy.pac", WA_PUBLIC, wa_pac_get},
    {"GET", "/ca.crt", WA_PUBLIC, wa_ca_cert},
    {"GET", "/static/{}", WA_PUBLIC, wa_static_asset},
    {"GET", WA_LOGIN_PAGE, WA_PUBLIC, wa_static_page},
    WA_PAGES(PAGE_ROUTE)};
const size_t wa_routes_count = sizeof(wa_routes) / sizeof(wa_routes[0]);

/* True if path matches pattern; what {} took goes to param. */
static bool path_match(const char *pattern, const char *path, char *param, size_t paramlen)
{
    param[0] = '\0';
    while (*pattern) {
        if (pattern[0] == '*' && pattern[1] == '\0')
            return true;
        if (pattern[0] == '{' && pattern[1] == '}') {
            size_t n = strcspn(path, "/");

            if (n == 0 || n >= paramlen)
                return false;
            memcpy(param, path, n);
            param[n] = '\0';
            path += n;
            pattern += 2;
            continue;
        }
        if (*pattern++ != *path++)
            return false;
    }
    return *path == '\0';
}

static bool method_is(const char *want, const char *method)
{
    return !want || !strcmp(want, method) || (!strcmp(want, "GET") && !strcmp(method, "HEAD"));
}

void wa_route_find(const char *method, const char *path, struct wa_match *m)
{
    const struct wa_route *path_row = NULL;
    size_t i, len = 0;

    memset(m, 0, sizeof(*m));
    for (i = 0; i < wa_routes_count && !path_row; i++)
        if (path_match(wa_routes[i].pattern, path, m->param, sizeof(m->param)))
            path_row = &wa_routes[i];
    if (!path_row)
        return;
    m->flags = ~0u;
    for (i = 0; i < wa_routes_count; i++) {
        const struct wa_route *row = &wa_routes[i];

        if (strcmp(row->pattern, path_row->pattern) != 0)
            continue;
        m->flags &= row->flags;
        if (row->method)
            len +=
                (size_t)snprintf(m->allow + len, sizeof(m->allow) - len, "%s%s%s", len ? ", " : "",
                                 row->method, !strcmp(row->method, "GET") ? ", HEAD" : "");
        if (len >= sizeof(m->allow))
            len = sizeof(m->allow) - 1;
        if (!m->route && method_is(row->method, method))
            m->route = row;
    }
    if (m->route)
        m->flags = m->route->flags;
}

enum MHD_Result wa_route_run(struct wa_req *r, const struct wa_match *m)
{
    if (m->route)
        return m->route->handler(r);
    if (m->allow[0]) {
        r->allow = m->allow;
        return wa_reply_error(r, 405, NULL, "method %s not allowed here", r->method);
    }
    return wa_reply_data(r, 404, "text/plain; charset=utf-8", NULL, "not found\n", 10);
}
