/* Tests of the admin route table (web-admin/wa_routes.c) against docs/api.md, and of the
 * dispatch by method and path.
 *
 * docs/api.md is what proxyctl and the pages are written against, so the table must hold
 * every endpoint it lists, public exactly where it says "Unauthenticated", open to a
 * first-run password exactly where it says so, with the import limits exactly for the
 * text/plain uploads (a policy file, a list); and the table must hold nothing the document
 * does not list.
 */
#include <check.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "web-admin/wa_routes.h"
#include "web-admin/wa_static.h"

#define MAX_DOC_ROUTES 128

struct doc_route {
    char method[8];
    char path[128]; /* ID and NAME replaced by a sample segment */
    unsigned body;  /* WA_BODY_POLICY or WA_BODY_LIST for the text/plain uploads, else 0 */
};

static char *doc;
static struct doc_route endpoints[MAX_DOC_ROUTES];
static size_t nendpoints;

static char *read_doc(void)
{
    FILE *f = fopen(PX_TEST_API_DOC, "r");
    char *text = calloc(1, 1 << 20);
    size_t n;

    ck_assert_msg(f != NULL, "cannot open %s", PX_TEST_API_DOC);
    ck_assert_ptr_nonnull(text);
    n = fread(text, 1, (1 << 20) - 1, f);
    fclose(f);
    text[n] = '\0';
    return text;
}

/* "/api/rules/ID/move" -> "/api/rules/7/move", "/api/admins/<its own name>" ->
 * "/api/admins/sample" */
static void sample_path(const char *in, size_t len, char *out, size_t outlen)
{
    size_t o = 0;

    for (size_t i = 0; i < len && o + 8 < outlen;) {
        if (!strncmp(in + i, "ID", 2) && (i + 2 == len || in[i + 2] == '/')) {
            o += (size_t)snprintf(out + o, outlen - o, "7");
            i += 2;
        } else if (!strncmp(in + i, "NAME", 4) && (i + 4 == len || in[i + 4] == '/')) {
            o += (size_t)snprintf(out + o, outlen - o, "sample");
            i += 4;
        } else if (in[i] == '<') {
            o += (size_t)snprintf(out + o, outlen - o, "sample");
            while (i < len && in[i] != '>')
                i++;
            i++;
        } else {
            out[o++] = in[i++];
        }
    }
    out[o] = '\0';
}

/* The endpoint table's rows: "| METHOD /path | body | answer |". */
static void parse_endpoints(void)
{
    regex_t re;
    regmatch_t m[4];
    const char *p = doc;

    ck_assert_int_eq(
        regcomp(&re, "\n\\| (GET|POST|PUT|PATCH|DELETE) (/[^ |]+) \\| ([^|]*)\\|", REG_EXTENDED),
        0);
    while (regexec(&re, p, 4, m, 0) == 0) {
        struct doc_route *d = &endpoints[nendpoints++];

        ck_assert_uint_lt(nendpoints, MAX_DOC_ROUTES);
        memset(d, 0, sizeof(*d));
        snprintf(d->method, sizeof(d->method), "%.*s", (int)(m[1].rm_eo - m[1].rm_so),
                 p + m[1].rm_so);
        sample_path(p + m[2].rm_so, (size_t)(m[2].rm_eo - m[2].rm_so), d->path, sizeof(d->path));
        if (!strncmp(p + m[3].rm_so, "text/plain policy", 17))
            d->body = WA_BODY_POLICY;
        else if (!strncmp(p + m[3].rm_so, "text/plain list", 15))
            d->body = WA_BODY_LIST;
        p += m[0].rm_eo - 1;
    }
    regfree(&re);
    ck_assert_uint_gt(nendpoints, 30);
}

/* The `METHOD /path` pairs in backticks between the first `from` and the `to` after it. */
static size_t doc_pairs(const char *from, const char *to, struct doc_route *out, size_t max)
{
    const char *s = strstr(doc, from), *e;
    regex_t re;
    regmatch_t m[3];
    size_t n = 0;

    ck_assert_msg(s != NULL, "docs/api.md has no \"%s\"", from);
    e = strstr(s, to);
    ck_assert_msg(e != NULL, "docs/api.md has no \"%s\" after \"%s\"", to, from);
    ck_assert_int_eq(regcomp(&re, "`(GET|POST|PUT|PATCH|DELETE) (/[^`]*)`", REG_EXTENDED), 0);
    while (n < max && regexec(&re, s, 3, m, 0) == 0 && s + m[0].rm_eo <= e) {
        snprintf(out[n].method, sizeof(out[n].method), "%.*s", (int)(m[1].rm_eo - m[1].rm_so),
                 s + m[1].rm_so);
        sample_path(s + m[2].rm_so, (size_t)(m[2].rm_eo - m[2].rm_so), out[n].path,
                    sizeof(out[n].path));
        n++;
        s += m[0].rm_eo;
    }
    regfree(&re);
    return n;
}

static bool pair_in(const struct doc_route *set, size_t n, const char *method, const char *path)
{
    for (size_t i = 0; i < n; i++)
        if (!strcmp(set[i].method, method) && !strcmp(set[i].path, path))
            return true;
    return false;
}

/* The route the table gives method and path, failing the test when there is none. */
static const struct wa_route *route_of(const char *method, const char *path)
{
    struct wa_match m;

    wa_route_find(method, path, &m);
    ck_assert_msg(m.route != NULL, "%s %s: not in the route table", method, path);
    ck_assert_msg(m.route->method != NULL, "%s %s: only the catch-all answers it", method, path);
    return m.route;
}

static void setup(void)
{
    doc = read_doc();
    nendpoints = 0;
    parse_endpoints();
}

static void teardown(void)
{
    free(doc);
}

START_TEST(test_every_documented_endpoint_is_routed_with_its_flags)
{
    struct doc_route public_[16], first_run[8];
    size_t npublic = doc_pairs("- Unauthenticated:", "\n\n", public_, 16);
    size_t nfirst = doc_pairs("- **First-run password**", "anything else", first_run, 8);

    ck_assert_uint_ge(npublic, 4);
    ck_assert_uint_eq(nfirst, 3);
    for (size_t i = 0; i < nendpoints; i++) {
        const struct doc_route *d = &endpoints[i];
        const struct wa_route *r = route_of(d->method, d->path);
        bool pub = pair_in(public_, npublic, d->method, d->path);

        ck_assert_msg(!!(r->flags & WA_PUBLIC) == pub, "%s %s: public is %d in the table",
                      d->method, d->path, !!(r->flags & WA_PUBLIC));
        ck_assert_msg((r->flags & (WA_BODY_POLICY | WA_BODY_LIST)) == d->body,
                      "%s %s: body flags %u, documented %u", d->method, d->path,
                      r->flags & (WA_BODY_POLICY | WA_BODY_LIST), d->body);
        ck_assert_msg(!!(r->flags & WA_FIRST_RUN) == pair_in(first_run, nfirst, d->method, d->path),
                      "%s %s: first-run flag is %d", d->method, d->path,
                      !!(r->flags & WA_FIRST_RUN));
        ck_assert_msg(!(r->flags & WA_PAGE), "%s %s: an API call flagged as a page", d->method,
                      d->path);
    }
    /* Named only in the text: login, logout, session, the PAC file, the login page. */
    for (size_t i = 0; i < npublic; i++)
        ck_assert_msg(route_of(public_[i].method, public_[i].path)->flags & WA_PUBLIC,
                      "%s %s is documented as public", public_[i].method, public_[i].path);
    for (size_t i = 0; i < nfirst; i++) {
        const struct wa_route *r = route_of(first_run[i].method, first_run[i].path);

        ck_assert_msg(r->flags & WA_FIRST_RUN,
                      "%s %s is documented as open to a first-run "
                      "password",
                      first_run[i].method, first_run[i].path);
        ck_assert_msg(!(r->flags & WA_PUBLIC), "%s %s needs a session", first_run[i].method,
                      first_run[i].path);
    }
}
END_TEST

START_TEST(test_pages_need_an_admin_and_assets_are_public)
{
    const char *s = strstr(doc, "Pages (");
    const char *e = s ? strchr(s, ')') : NULL;
    size_t npages = 0;

    ck_assert_ptr_nonnull(e);
    for (const char *p = strchr(s, '`'); p && p < e; p = strchr(p, '`')) {
        const char *q = strchr(p + 1, '`');
        char path[64];

        snprintf(path, sizeof(path), "%.*s", (int)(q - p - 1), p + 1);
        ck_assert_msg(route_of("GET", path)->flags == WA_PAGE, "page %s: flags %u", path,
                      route_of("GET", path)->flags);
        npages++;
        p = q + 1;
    }
#define COUNT_PAGE(path, file, id, title) +1
    ck_assert_uint_eq(npages, 0 WA_PAGES(COUNT_PAGE)); /* the doc names every page */
#undef COUNT_PAGE
    ck_assert_uint_eq(route_of("GET", "/static/app.css")->flags, WA_PUBLIC);
    ck_assert_uint_eq(route_of("GET", "/login")->flags, WA_PUBLIC);
}
END_TEST

/* The reverse: a route the document does not list would be an endpoint nobody knows of. */
START_TEST(test_every_route_is_documented)
{
    for (size_t i = 0; i < wa_routes_count; i++) {
        const struct wa_route *r = &wa_routes[i];
        char path[128];
        bool found = false;

        if (!r->method || strncmp(r->pattern, "/api/", 5) != 0)
            continue; /* pages, assets and /proxy.pac: checked above */
        snprintf(path, sizeof(path), "%s", r->pattern);
        for (size_t j = 0; j < nendpoints && !found; j++) {
            struct wa_match m;

            wa_route_find(endpoints[j].method, endpoints[j].path, &m);
            found = m.route == r;
        }
        found = found || strstr(doc, path) != NULL; /* login, logout, session: in the text */
        ck_assert_msg(found, "%s %s is not in docs/api.md", r->method, r->pattern);
    }
}
END_TEST

START_TEST(test_dispatch_by_method_and_path)
{
    static const struct {
        const char *method, *path;
        bool routed;       /* a row answers it (the /api/ catch-all counts) */
        const char *allow; /* the path's methods, "" for an unknown path */
        const char *param;
    } cases[] = {
        {"GET", "/api/rules", true, "GET, HEAD, POST", ""},
        {"HEAD", "/api/rules", true, "GET, HEAD, POST", ""},
        {"DELETE", "/api/rules", false, "GET, HEAD, POST", ""},
        {"POST", "/api/rules/check", true, "POST", ""},
        {"GET", "/api/rules/check", false, "POST", ""},
        {"PATCH", "/api/rules/12", true, "GET, HEAD, PATCH, DELETE", "12"},
        {"POST", "/api/rules/12", false, "GET, HEAD, PATCH, DELETE", "12"},
        {"POST", "/api/rules/12/move", true, "POST", "12"},
        {"PUT", "/api/admins/root", true, "PUT, DELETE", "root"},
        {"GET", "/api/nonsense", true, "", ""},
        {"GET", "/api/rules/12/13", true, "", ""},
        {"GET", "/nothing", false, "", ""},
        {"POST", "/nothing", false, "", ""},
        {"GET", "/static/", false, "", ""},
        {"GET", "/static/a/b.css", false, "", ""},
        {"POST", "/proxy.pac", false, "GET, HEAD", ""},
        {"POST", "/log", false, "GET, HEAD", ""},
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct wa_match m;

        wa_route_find(cases[i].method, cases[i].path, &m);
        ck_assert_msg((m.route != NULL) == cases[i].routed, "%s %s: routed %d", cases[i].method,
                      cases[i].path, m.route != NULL);
        ck_assert_msg(!strcmp(m.allow, cases[i].allow), "%s %s: allow \"%s\"", cases[i].method,
                      cases[i].path, m.allow);
        ck_assert_str_eq(m.param, cases[i].param);
    }
}
END_TEST

/* Without a route for the method, the gate asks what every row of the path asks: a path
 * open to a first-run password for PUT only is closed to it for GET. */
START_TEST(test_flags_without_a_route_are_those_all_rows_share)
{
    struct wa_match m;

    wa_route_find("GET", "/api/admins/root", &m);
    ck_assert_ptr_null(m.route);
    ck_assert_uint_eq(m.flags, 0);
    wa_route_find("GET", "/api/login", &m);
    ck_assert_ptr_null(m.route);
    ck_assert_uint_eq(m.flags, WA_PUBLIC);
    wa_route_find("GET", "/nothing", &m);
    ck_assert_uint_eq(m.flags, 0);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("wa_routes");
    TCase *tc = tcase_create("routes");
    SRunner *sr;
    int failed;

    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_every_documented_endpoint_is_routed_with_its_flags);
    tcase_add_test(tc, test_pages_need_an_admin_and_assets_are_public);
    tcase_add_test(tc, test_every_route_is_documented);
    tcase_add_test(tc, test_dispatch_by_method_and_path);
    tcase_add_test(tc, test_flags_without_a_route_are_those_all_rows_share);
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
