/* Tests of the admin JSON API over real HTTP (libcurl against wa_start on 127.0.0.1 with an
 * ephemeral port, in a temporary data folder).
 *
 * The server runs in the parent (an unchecked fixture per test case); each test is a
 * forked child that talks to it, so the tests share one database: each uses its own
 * domains and names. The policy hooks compile and publish into an acl_live exactly as proxyd
 * does, so compile errors are real.
 */
#include <arpa/inet.h>
#include <check.h>
#include <curl/curl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "acl/acl.h"
#include "storage/store.h"
#include "tests/unit/common.h"
#include "web-admin/wa.h"

#define CSP                                                                                        \
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "              \
    "frame-ancestors 'none'; base-uri 'none'; form-action 'self'"

/* ---- the server under test (lives in the parent) ---- */

static struct test_tmpdir tmp; /* the data folder; tmp.db is the server's database */
/* The first-run password is replaced through the store before the tests run (they share
 * one server, and a first-run session may only change it): the shared tests log in with
 * ADMIN_PW. test_first_login_must_change_password has a server of its own. */
#define ADMIN_PW "admin-test-password"
static char token[128];
static char base[64];
static struct wa_server *srv;
static struct acl_live *live;
/* Names the server answers to besides its address and the loopback names. */
static const char *const admin_hosts[] = {"Admin.Test.", "pac.example, wpad.lan"};
/* The first delay is a minute, so no test depends on how fast requests follow each other. */
static const struct store_throttle_opts login_throttle = {.delay_ms = 60000};

/* The store's policy compiled as proxyd compiles it (the first set, and reloads). */
static struct acl_set *compile_from_store(const char *path, char *err, size_t errlen)
{
    struct store *st = store_open(path, err, errlen);
    struct store_rule *rules = NULL;
    struct store_list_info *lists = NULL;
    struct acl_rule_src *src = NULL;
    struct acl_list_src *lsrc = NULL;
    char ***doms = NULL;
    size_t nrules = 0, nlists = 0;
    struct acl_error aerr;
    struct acl_set *set = NULL;

    if (!st)
        return NULL;
    if (store_rules_list(st, &rules, &nrules, err, errlen) < 0 ||
        store_lists(st, &lists, &nlists, err, errlen) < 0)
        goto out;
    src = calloc(nrules + 1, sizeof(*src));
    lsrc = calloc(nlists + 1, sizeof(*lsrc));
    doms = calloc(nlists + 1, sizeof(*doms));
    for (size_t i = 0; i < nrules; i++) {
        src[i].id = rules[i].id;
        src[i].enabled = rules[i].enabled;
        src[i].text = rules[i].text;
    }
    for (size_t i = 0; i < nlists; i++) {
        lsrc[i].name = lists[i].name;
        if (store_list_entries(st, lists[i].name, &doms[i], &lsrc[i].count, err, errlen) < 0)
            goto out;
        lsrc[i].domains = (const char *const *)doms[i];
    }
    struct acl_config cfg = {.rules = src, .nrules = nrules, .lists = lsrc, .nlists = nlists};
    memset(&aerr, 0, sizeof(aerr));
    set = acl_set_compile(&cfg, &aerr);
    if (!set)
        snprintf(err, errlen, "%s", aerr.msg);
out:
    for (size_t i = 0; doms && i < nlists; i++)
        acl_list_free(doms[i], lsrc[i].count);
    free(doms);
    free(lsrc);
    free(src);
    free(lists);
    store_rules_free(rules, nrules);
    store_close(st);
    return set;
}

/* The hooks proxyd installs: compile the would-be policy, let the admin server commit it, then
 * publish; recompile the store's policy on reload. */
static int hook_policy_apply(void *arg, const struct acl_config *cand,
                             int (*commit)(void *commit_arg, int64_t *version, char *err,
                                           size_t errlen),
                             void *commit_arg, char *err, size_t errlen)
{
    struct acl_error aerr;
    struct acl_set *set;
    int64_t version;
    int rc;

    (void)arg;
    memset(&aerr, 0, sizeof(aerr));
    set = acl_set_compile(cand, &aerr);
    if (!set) {
        snprintf(err, errlen, "%s", aerr.msg);
        return PX_ERR;
    }
    rc = commit(commit_arg, &version, err, errlen);
    if (rc == PX_OK)
        acl_live_publish(live, set);
    else
        acl_set_free(set);
    return rc;
}

static int hook_policy_reload(void *arg, char *err, size_t errlen)
{
    struct acl_set *set = compile_from_store(arg, err, errlen);

    if (!set)
        return -1;
    acl_live_publish(live, set);
    return 0;
}

static void hook_proxy_stats(void *arg, struct wa_proxy_stats *out)
{
    memset(out, 0, sizeof(*out));
    out->requests_total = 1234;
    out->requests_denied = 56;
    out->workers = 3;
    out->log.written = 77;
    out->log.db_ok = true;
}

/* The readiness hook (GET /readyz) says not ready while this file exists: the server runs
 * in the parent, the tests in forked children, so a variable would not reach it. */
static char not_ready_path[512];

static bool hook_ready(void *arg, char *why, size_t whylen)
{
    (void)arg;
    if (access(not_ready_path, F_OK) != 0)
        return true;
    snprintf(why, whylen, "no policy in force yet");
    return false;
}

/* Reads the one line of a file in the data folder dir into out; false if it is missing. */
static bool read_line(const char *dir, const char *name, char *out, size_t outlen)
{
    char path[256];
    FILE *f;
    bool ok;

    snprintf(path, sizeof(path), "%s/%s", dir, name);
    f = fopen(path, "r");
    if (!f)
        return false;
    ok = fgets(out, (int)outlen, f) != NULL;
    fclose(f);
    out[strcspn(out, "\n")] = '\0';
    return ok;
}

static void server_up(void)
{
    char err[256];
    struct wa_options o;
    struct store *st;
    bool first_run;

    test_tmpdir_make(&tmp);
    live = acl_live_new(compile_from_store(tmp.db, err, sizeof(err)));
    ck_assert_ptr_nonnull(live);
    memset(&o, 0, sizeof(o));
    o.listen = "127.0.0.1:0";
    o.data_dir = tmp.dir;
    o.db_path = tmp.db;
    o.static_dir = PX_TEST_STATIC_DIR;
    o.pac_proxy = "proxy.test:3128";
    o.acl = live;
    o.login_throttle = &login_throttle;
    o.hosts = admin_hosts;
    o.nhosts = sizeof(admin_hosts) / sizeof(admin_hosts[0]);
    o.policy_apply = hook_policy_apply;
    o.policy_reload = hook_policy_reload;
    o.proxy_stats = hook_proxy_stats;
    o.ready = hook_ready;
    snprintf(not_ready_path, sizeof(not_ready_path), "%s/not-ready", tmp.dir);
    o.hook_arg = tmp.db;
    srv = wa_start(&o, &first_run, err, sizeof(err));
    ck_assert_msg(srv != NULL, "wa_start: %s", err);
    ck_assert(first_run);
    ck_assert_uint_gt(wa_port(srv), 0);
    snprintf(base, sizeof(base), "http://127.0.0.1:%u", (unsigned)wa_port(srv));
    ck_assert(read_line(tmp.dir, "admin.token", token, sizeof(token)));
    st = store_open(tmp.db, err, sizeof(err));
    ck_assert_msg(st != NULL, "%s", err);
    ck_assert_int_eq(
        store_account_set(st, STORE_ADMIN, "admin", ADMIN_PW, "test", err, sizeof(err)), 0);
    store_close(st);
}

static void server_down(void)
{
    wa_stop(srv);
    acl_live_free(live);
    test_tmpdir_remove(&tmp);
}

/* ---- HTTP client ---- */

struct res {
    long status;
    char body[1 << 20];
    size_t len;
    char headers[16384];
    size_t hlen;
};

static size_t on_body(char *p, size_t sz, size_t n, void *arg)
{
    struct res *r = arg;
    size_t take = sz * n;

    if (take > sizeof(r->body) - 1 - r->len)
        take = sizeof(r->body) - 1 - r->len;
    memcpy(r->body + r->len, p, take);
    r->len += take;
    r->body[r->len] = '\0';
    return sz * n;
}

static size_t on_header(char *p, size_t sz, size_t n, void *arg)
{
    struct res *r = arg;
    size_t take = sz * n;

    if (take > sizeof(r->headers) - 1 - r->hlen)
        take = sizeof(r->headers) - 1 - r->hlen;
    memcpy(r->headers + r->hlen, p, take);
    r->hlen += take;
    r->headers[r->hlen] = '\0';
    return sz * n;
}

enum auth { AUTH_NONE, AUTH_TOKEN };

/* Source address of the requests that follow (any of 127.0.0.0/8), NULL for the default. */
static const char *src_ip;

/* One request. hdrs: NULL-terminated extra header lines. body may be NULL. */
static struct res *http_raw(const char *method, const char *path, const char *body, size_t blen,
                            enum auth auth, const char *const *hdrs, bool path_as_is)
{
    static struct res r;
    struct curl_slist *h = NULL;
    char url[2048], bearer[256];
    CURL *c = curl_easy_init();

    memset(&r, 0, sizeof(r));
    snprintf(url, sizeof(url), "%s%s", base, path);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &r);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, &r);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 30L);
    curl_easy_setopt(c, CURLOPT_NOPROXY, "*");
    if (path_as_is)
        curl_easy_setopt(c, CURLOPT_PATH_AS_IS, 1L);
    if (src_ip) {
        char iface[64];

        snprintf(iface, sizeof(iface), "host!%s", src_ip);
        curl_easy_setopt(c, CURLOPT_INTERFACE, iface);
    }
    if (body) {
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)blen);
    }
    if (!strcmp(method, "HEAD"))
        curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
    if (auth == AUTH_TOKEN) {
        snprintf(bearer, sizeof(bearer), "Authorization: Bearer %s", token);
        h = curl_slist_append(h, bearer);
    }
    bool expect = false;
    for (size_t i = 0; hdrs && hdrs[i]; i++) {
        h = curl_slist_append(h, hdrs[i]);
        expect |= !strncasecmp(hdrs[i], "Expect:", 7);
    }
    if (!expect) /* no waiting for a 100 Continue, unless asked */
        h = curl_slist_append(h, "Expect:");
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    CURLcode rc = curl_easy_perform(c);
    ck_assert_msg(rc == CURLE_OK, "%s %s: %s", method, path, curl_easy_strerror(rc));
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r.status);
    curl_slist_free_all(h);
    curl_easy_cleanup(c);
    return &r;
}

static struct res *http(const char *method, const char *path, const char *body, enum auth auth,
                        const char *const *hdrs)
{
    return http_raw(method, path, body, body ? strlen(body) : 0, auth, hdrs, false);
}

/* With the bearer token; asserts the status and returns the parsed JSON (owned). */
static json_t *api(const char *method, const char *path, const char *body, long want)
{
    struct res *r = http(method, path, body, AUTH_TOKEN, NULL);
    json_error_t jerr;
    json_t *j;

    ck_assert_msg(r->status == want, "%s %s: status %ld, want %ld: %s", method, path, r->status,
                  want, r->body);
    j = json_loads(r->body, 0, &jerr);
    ck_assert_msg(j != NULL, "%s %s: not JSON: %s", method, path, r->body);
    return j;
}

/* The value of response header name (case-insensitive), or NULL. */
static const char *header(struct res *r, const char *name, char *out, size_t outlen)
{
    size_t n = strlen(name);

    for (char *line = r->headers; *line;) {
        char *eol = strstr(line, "\r\n");
        size_t len = eol ? (size_t)(eol - line) : strlen(line);
        if (len > n && !strncasecmp(line, name, n) && line[n] == ':') {
            const char *v = line + n + 1;
            while (*v == ' ')
                v++;
            snprintf(out, outlen, "%.*s", (int)(len - (size_t)(v - line)), v);
            return out;
        }
        if (!eol)
            break;
        line = eol + 2;
    }
    return NULL;
}

static const char *jstr(json_t *o, const char *key)
{
    const char *s = json_string_value(json_object_get(o, key));
    ck_assert_msg(s != NULL, "no string %s", key);
    return s;
}

static json_int_t jint(json_t *o, const char *key)
{
    json_t *v = json_object_get(o, key);
    ck_assert_msg(json_is_integer(v), "no integer %s", key);
    return json_integer_value(v);
}

/* Logs in and returns the pxsid cookie value and CSRF token. */
static void login(const char *user, const char *pw, char *sid, size_t sidlen, char *csrf,
                  size_t csrflen)
{
    char body[256], cookie[512];
    struct res *r;
    json_t *j;

    snprintf(body, sizeof(body), "{\"user\":\"%s\",\"password\":\"%s\"}", user, pw);
    r = http("POST", "/api/login", body, AUTH_NONE, NULL);
    ck_assert_msg(r->status == 200, "login: %ld %s", r->status, r->body);
    ck_assert_ptr_nonnull(header(r, "Set-Cookie", cookie, sizeof(cookie)));
    ck_assert_msg(!strncmp(cookie, "pxsid=", 6), "%s", cookie);
    snprintf(sid, sidlen, "%.*s", (int)strcspn(cookie + 6, ";"), cookie + 6);
    j = json_loads(r->body, 0, NULL);
    snprintf(csrf, csrflen, "%s", jstr(j, "csrf"));
    json_decref(j);
}

/* Rules whose text mentions needle. */
static int rule_count_of(const char *needle)
{
    char err[256];
    struct store *st = store_open(tmp.db, err, sizeof(err));
    struct store_rule *rules;
    size_t n;
    int found = 0;

    ck_assert_msg(st != NULL, "%s", err);
    ck_assert_int_eq(store_rules_list(st, &rules, &n, err, sizeof(err)), 0);
    for (size_t i = 0; i < n; i++)
        found += strstr(rules[i].text, needle) != NULL;
    store_rules_free(rules, n);
    store_close(st);
    return found;
}

static int rule_count(void)
{
    char err[256];
    struct store *st = store_open(tmp.db, err, sizeof(err));
    struct store_rule *rules;
    size_t n;

    ck_assert_msg(st != NULL, "%s", err);
    ck_assert_int_eq(store_rules_list(st, &rules, &n, err, sizeof(err)), 0);
    store_rules_free(rules, n);
    store_close(st);
    return (int)n;
}

/* ---- authentication ---- */

START_TEST(test_no_credentials_is_401)
{
    static const char *const paths[] = {"/api/rules", "/api/logs",    "/api/stats",   "/api/policy",
                                        "/api/users", "/api/session", "/api/settings"};
    for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
        struct res *r = http("GET", paths[i], NULL, AUTH_NONE, NULL);
        ck_assert_msg(r->status == 401, "%s: %ld", paths[i], r->status);
        ck_assert_ptr_nonnull(strstr(r->body, "\"error\""));
    }
    ck_assert_int_eq(
        http("POST", "/api/rules", "{\"text\":\"deny domain x.test\"}", AUTH_NONE, NULL)->status,
        401);
}
END_TEST

START_TEST(test_bearer_token_works_and_wrong_token_is_401)
{
    static const char *const wrong[] = {"Authorization: Bearer 0000", NULL};
    static const char *const basic[] = {"Authorization: Basic YWRtaW46YWRtaW4=", NULL};
    char path[128];
    struct stat sb;

    json_decref(api("GET", "/api/rules", NULL, 200));
    ck_assert_int_eq(http("GET", "/api/rules", NULL, AUTH_NONE, wrong)->status, 401);
    ck_assert_int_eq(http("GET", "/api/rules", NULL, AUTH_NONE, basic)->status, 401);
    ck_assert_int_eq(strlen(token), 64);
    snprintf(path, sizeof(path), "%s/admin.token", tmp.dir);
    ck_assert_int_eq(stat(path, &sb), 0);
    ck_assert_int_eq(sb.st_mode & 0777, 0600);
    json_t *j = api("GET", "/api/session", NULL, 200);
    ck_assert_str_eq(jstr(j, "user"), "token");
    json_decref(j);
}
END_TEST

START_TEST(test_login_sets_strict_httponly_cookie)
{
    char sid[128], csrf[128], cookie[512], hdr[256];
    struct res *r;

    snprintf(cookie, sizeof(cookie), "{\"user\":\"admin\",\"password\":\"%s\"}", ADMIN_PW);
    r = http("POST", "/api/login", cookie, AUTH_NONE, NULL);
    ck_assert_int_eq(r->status, 200);
    ck_assert_ptr_nonnull(header(r, "Set-Cookie", cookie, sizeof(cookie)));
    ck_assert_ptr_nonnull(strstr(cookie, "HttpOnly"));
    ck_assert_ptr_nonnull(strstr(cookie, "SameSite=Strict"));
    ck_assert_ptr_nonnull(strstr(cookie, "Path=/"));

    login("admin", ADMIN_PW, sid, sizeof(sid), csrf, sizeof(csrf));
    ck_assert_int_eq(strlen(sid), 64);
    snprintf(hdr, sizeof(hdr), "Cookie: pxsid=%s", sid);
    const char *const h[] = {hdr, NULL};
    r = http("GET", "/api/session", NULL, AUTH_NONE, h);
    ck_assert_int_eq(r->status, 200);
    json_t *j = json_loads(r->body, 0, NULL);
    ck_assert_str_eq(jstr(j, "user"), "admin");
    ck_assert_str_eq(jstr(j, "csrf"), csrf);
    ck_assert(json_is_false(json_object_get(j, "must_change_password")));
    json_decref(j);

    /* logout ends the session */
    char hcsrf[160];
    snprintf(hcsrf, sizeof(hcsrf), "X-CSRF-Token: %s", csrf);
    const char *const h2[] = {hdr, hcsrf, NULL};
    ck_assert_int_eq(http("POST", "/api/logout", NULL, AUTH_NONE, h2)->status, 200);
    ck_assert_int_eq(http("GET", "/api/session", NULL, AUTH_NONE, h)->status, 401);
}
END_TEST

START_TEST(test_wrong_password_is_401)
{
    struct res *r =
        http("POST", "/api/login", "{\"user\":\"admin\",\"password\":\"nope\"}", AUTH_NONE, NULL);
    ck_assert_int_eq(r->status, 401);
    ck_assert_int_eq(
        http("POST", "/api/login", "{\"user\":\"ghost\",\"password\":\"x\"}", AUTH_NONE, NULL)
            ->status,
        401);
    ck_assert_int_eq(http("POST", "/api/login", "{\"user\":", AUTH_NONE, NULL)->status, 400);
}
END_TEST

START_TEST(test_state_change_with_session_needs_csrf)
{
    char sid[128], csrf[128], hc[160], hx[160], hbad[160];

    login("admin", ADMIN_PW, sid, sizeof(sid), csrf, sizeof(csrf));
    snprintf(hc, sizeof(hc), "Cookie: pxsid=%s", sid);
    snprintf(hx, sizeof(hx), "X-CSRF-Token: %s", csrf);
    snprintf(hbad, sizeof(hbad), "X-CSRF-Token: %064d", 7);
    const char *const no_csrf[] = {hc, NULL};
    const char *const bad_csrf[] = {hc, hbad, NULL};
    const char *const good[] = {hc, hx, NULL};
    const char *body = "{\"text\":\"deny domain csrf.test\"}";

    ck_assert_int_eq(http("POST", "/api/rules", body, AUTH_NONE, no_csrf)->status, 403);
    ck_assert_int_eq(http("POST", "/api/rules", body, AUTH_NONE, bad_csrf)->status, 403);
    ck_assert_int_eq(http("GET", "/api/rules", NULL, AUTH_NONE, no_csrf)->status, 200);
    struct res *r = http("POST", "/api/rules", body, AUTH_NONE, good);
    ck_assert_int_eq(r->status, 201);
    json_t *j = json_loads(r->body, 0, NULL);
    int id = (int)jint(json_object_get(j, "rule"), "id");
    json_decref(j);
    char path[64];
    snprintf(path, sizeof(path), "/api/rules/%d", id);
    ck_assert_int_eq(http("DELETE", path, NULL, AUTH_NONE, no_csrf)->status, 403);
    ck_assert_int_eq(http("DELETE", path, NULL, AUTH_NONE, good)->status, 200);

    /* the audit row names the admin */
    j = api("GET", "/api/audit?limit=5", NULL, 200);
    bool seen = false;
    size_t i;
    json_t *row;
    json_array_foreach(json_object_get(j, "rows"), i, row) seen |=
        !strcmp(jstr(row, "actor"), "admin");
    ck_assert(seen);
    json_decref(j);
}
END_TEST

START_TEST(test_login_throttled_after_5_failures)
{
    const char *bad = "{\"user\":\"admin\",\"password\":\"wrong-password\"}";
    char good[128];

    for (int i = 0; i < 5; i++)
        ck_assert_int_eq(http("POST", "/api/login", bad, AUTH_NONE, NULL)->status, 401);
    ck_assert_int_eq(http("POST", "/api/login", bad, AUTH_NONE, NULL)->status, 429);
    /* even the right password waits out the block */
    snprintf(good, sizeof(good), "{\"user\":\"admin\",\"password\":\"%s\"}", ADMIN_PW);
    ck_assert_int_eq(http("POST", "/api/login", good, AUTH_NONE, NULL)->status, 429);
    /* the token is unaffected */
    json_decref(api("GET", "/api/rules", NULL, 200));
}
END_TEST

static json_int_t auth_stat(const char *key)
{
    json_t *j = api("GET", "/api/stats", NULL, 200);
    json_int_t v = jint(json_object_get(j, "auth"), key);

    json_decref(j);
    return v;
}

/* A name without an account costs a password check like a wrong password does, so the time
 * of the 401 does not tell which admin names exist. */
START_TEST(test_unknown_admin_name_costs_a_password_check)
{
    json_int_t before = auth_stat("password_checks");

    src_ip = "127.0.5.1";
    ck_assert_int_eq(
        http("POST", "/api/login", "{\"user\":\"ghost5\",\"password\":\"x\"}", AUTH_NONE, NULL)
            ->status,
        401);
    ck_assert_int_eq(auth_stat("password_checks"), before + 1);
    ck_assert_int_eq(
        http("POST", "/api/login", "{\"user\":\"admin\",\"password\":\"x\"}", AUTH_NONE, NULL)
            ->status,
        401);
    ck_assert_int_eq(auth_stat("password_checks"), before + 2);
    src_ip = NULL;
}
END_TEST

/* Guesses for one admin from ever new addresses (the attack that gave 460-656 guesses a
 * minute): after 5 failures of the account, the rest are refused unverified (429); the real
 * admin, from the address she logged in from before, still gets in. */
START_TEST(test_login_guesses_from_rotating_addresses_are_throttled)
{
    char ip[32], sid[128], csrf[128];
    int refused = 0, checked = 0;
    json_int_t checks, throttled;

    json_decref(api("PUT", "/api/admins/victim", "{\"password\":\"victim-password\"}", 200));
    src_ip = "127.0.6.1";
    login("victim", "victim-password", sid, sizeof(sid), csrf, sizeof(csrf));
    checks = auth_stat("password_checks");
    throttled = auth_stat("admin_logins_throttled");
    for (int i = 0; i < 20; i++) {
        snprintf(ip, sizeof(ip), "127.0.7.%d", i + 1);
        src_ip = ip;
        struct res *r = http("POST", "/api/login", "{\"user\":\"victim\",\"password\":\"guess\"}",
                             AUTH_NONE, NULL);
        char retry[32];
        if (r->status == 429) {
            refused++;
            ck_assert_ptr_nonnull(header(r, "Retry-After", retry, sizeof(retry)));
            ck_assert_int_gt(atoi(retry), 0);
        } else {
            ck_assert_int_eq(r->status, 401);
            checked++;
        }
    }
    src_ip = NULL;
    ck_assert_int_eq(checked, 5);
    ck_assert_int_eq(refused, 15);
    ck_assert_int_eq(auth_stat("password_checks"), checks + 5);
    ck_assert_int_eq(auth_stat("admin_logins_throttled"), throttled + 15);

    /* not locked out: the right password from her usual address */
    src_ip = "127.0.6.1";
    login("victim", "victim-password", sid, sizeof(sid), csrf, sizeof(csrf));
    /* from a new address the account's delay holds, right password or not */
    src_ip = "127.0.8.1";
    ck_assert_int_eq(http("POST", "/api/login",
                          "{\"user\":\"victim\",\"password\":\"victim-password\"}", AUTH_NONE, NULL)
                         ->status,
                     429);
    /* other admins are not affected */
    char body[128];
    snprintf(body, sizeof(body), "{\"user\":\"admin\",\"password\":\"%s\"}", ADMIN_PW);
    ck_assert_int_eq(http("POST", "/api/login", body, AUTH_NONE, NULL)->status, 200);
    src_ip = NULL;
}
END_TEST

/* ---- rules ---- */

static int add_rule(const char *text, int before)
{
    char body[512];
    json_t *j;
    int id;

    snprintf(body, sizeof(body), "{\"text\":\"%s\",\"comment\":\"c\",\"before\":%d}", text, before);
    j = api("POST", "/api/rules", body, 201);
    json_t *rule = json_object_get(j, "rule");
    ck_assert_str_eq(jstr(rule, "text"), text);
    id = (int)jint(rule, "id");
    json_decref(j);
    return id;
}

/* Position of rule id in GET /api/rules, 0 if absent; checks positions are 1..n. */
static int position_of(int id)
{
    json_t *j = api("GET", "/api/rules", NULL, 200), *row;
    size_t i;
    int pos = 0;

    ck_assert(json_is_integer(json_object_get(j, "version")));
    json_array_foreach(json_object_get(j, "rules"), i, row)
    {
        ck_assert_int_eq(jint(row, "position"), (json_int_t)i + 1);
        if (jint(row, "id") == id)
            pos = (int)i + 1;
    }
    json_decref(j);
    return pos;
}

START_TEST(test_rules_crud_move_and_positions)
{
    int a = add_rule("deny domain crud-a.test", 0);
    int b = add_rule("deny domain crud-b.test", 0);
    int c = add_rule("deny domain crud-c.test", -1);
    char path[64], body[128];
    json_t *j;

    ck_assert_int_eq(position_of(c), 1);
    ck_assert_int_eq(position_of(b), position_of(a) + 1);

    snprintf(path, sizeof(path), "/api/rules/%d", a);
    j = api("GET", path, NULL, 200);
    ck_assert_str_eq(jstr(json_object_get(j, "rule"), "comment"), "c");
    ck_assert(json_is_true(json_object_get(json_object_get(j, "rule"), "enabled")));
    json_decref(j);

    j = api("PATCH", path, "{\"text\":\"deny domain crud-a2.test\",\"enabled\":false}", 200);
    ck_assert_str_eq(jstr(json_object_get(j, "rule"), "text"), "deny domain crud-a2.test");
    ck_assert(json_is_false(json_object_get(json_object_get(j, "rule"), "enabled")));
    json_decref(j);

    /* move b before c (to the top), then a to the end */
    snprintf(path, sizeof(path), "/api/rules/%d/move", b);
    snprintf(body, sizeof(body), "{\"before\":%d}", c);
    json_decref(api("POST", path, body, 200));
    ck_assert_int_eq(position_of(b), 1);
    ck_assert_int_eq(position_of(c), 2);
    snprintf(path, sizeof(path), "/api/rules/%d/move", a);
    j = api("POST", path, "{\"before\":0}", 200);
    ck_assert_int_eq(json_array_size(json_object_get(j, "rules")), (size_t)rule_count());
    json_decref(j);
    ck_assert_int_eq(position_of(a), rule_count());
    snprintf(path, sizeof(path), "/api/rules/%d/move", a);
    json_decref(api("POST", path, "{\"before\":99999}", 400));

    for (int i = 0; i < 3; i++) {
        int id = i == 0 ? a : i == 1 ? b : c;
        snprintf(path, sizeof(path), "/api/rules/%d", id);
        j = api("DELETE", path, NULL, 200);
        ck_assert_int_eq(jint(j, "deleted"), id);
        json_decref(j);
        json_decref(api("GET", path, NULL, 404));
        ck_assert_int_eq(position_of(id), 0);
    }
    json_decref(api("DELETE", "/api/rules/99999", NULL, 404));
}
END_TEST

START_TEST(test_bad_rule_is_400_with_acl_message)
{
    static const char *const bad[] = {
        "deny",
        "allow nothing x",
        "deny url-regex (",
        "deny client 10.0.0.0/99",
        "deny domain x.test schedule funday 25:00-26:00",
        "permit domain x.test",
    };
    int before = rule_count();

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct acl_error aerr;
        json_t *req = json_pack("{s:s}", "text", bad[i]);
        char *body = json_dumps(req, 0);
        memset(&aerr, 0, sizeof(aerr));
        ck_assert_int_eq(acl_rule_check(bad[i], &aerr), -1);
        json_t *j = api("POST", "/api/rules", body, 400);
        ck_assert_str_eq(jstr(j, "field"), "text");
        ck_assert_str_eq(jstr(j, "error"), aerr.msg);
        json_decref(j);
        j = api("POST", "/api/rules/check", body, 400);
        ck_assert_str_eq(jstr(j, "error"), aerr.msg);
        json_decref(j);
        free(body);
        json_decref(req);
    }
    json_decref(api("POST", "/api/rules/check", "{\"text\":\"deny domain fine.test\"}", 200));
    json_decref(api("POST", "/api/rules", "{\"text\":\"deny domain a.test\\nallow any\"}", 400));
    json_decref(api("POST", "/api/rules", "{\"text\":42}", 400));
    json_decref(api("POST", "/api/rules", "not json", 400));
    ck_assert_int_eq(rule_count(), before);
}
END_TEST

START_TEST(test_rule_naming_missing_list_is_400_and_undone)
{
    int before = rule_count();
    json_t *j = api("POST", "/api/rules", "{\"text\":\"deny list no-such-list\"}", 400);

    ck_assert_str_eq(jstr(j, "field"), "text");
    ck_assert_ptr_nonnull(strstr(jstr(j, "error"), "no-such-list"));
    json_decref(j);
    ck_assert_int_eq(rule_count(), before);

    /* an edit into a bad rule is put back */
    int id = add_rule("deny domain undo-edit.test", 0);
    char path[64];
    snprintf(path, sizeof(path), "/api/rules/%d", id);
    json_decref(api("PATCH", path, "{\"text\":\"deny list no-such-list\"}", 400));
    j = api("GET", path, NULL, 200);
    ck_assert_str_eq(jstr(json_object_get(j, "rule"), "text"), "deny domain undo-edit.test");
    json_decref(j);
    json_decref(api("DELETE", path, NULL, 200));
}
END_TEST

/* The store's policy version and how many audit rows it holds. */
static void store_marks(int64_t *version, size_t *audits)
{
    char err[256];
    struct store *st = store_open(tmp.db, err, sizeof(err));
    struct store_audit *rows;

    ck_assert_msg(st != NULL, "%s", err);
    *version = store_policy_version(st);
    ck_assert_int_eq(store_audit_list(st, 0, 100000, &rows, audits, err, sizeof(err)), 0);
    free(rows);
    store_close(st);
}

/* The rule that decides url in the set in force, and that set's generation. */
static int deciding_rule(const char *url, json_int_t *generation)
{
    char body[256];
    json_t *j;
    int id;

    snprintf(body, sizeof(body), "{\"url\":\"%s\"}", url);
    j = api("POST", "/api/test", body, 200);
    id = (int)jint(j, "rule_id");
    *generation = jint(j, "generation");
    json_decref(j);
    return id;
}

/* A change whose result does not compile is refused before anything is stored: the store's
 * policy version and audit log stay as they were, the rule set in force stays (same
 * generation, same decision), and the error names the rule and the reason. */
START_TEST(test_change_that_does_not_compile_never_reaches_the_store)
{
    static const struct {
        const char *method, *path; /* the rule kept in force's id follows when names_kept */
        const char *body;
        long status;
        const char *field;
        bool names_kept; /* the error names that rule; else a new one (a higher id) */
    } cases[] = {
        {"POST", "/api/rules", "{\"text\":\"deny list nc-missing\"}", 400, "text", false},
        {"POST", "/api/rules", "{\"text\":\"allow list nc-missing\",\"before\":-1}", 400, "text",
         false},
        {"PATCH", "/api/rules/", "{\"text\":\"deny list nc-missing\"}", 400, "text", true},
        {"PUT", "/api/policy", "deny domain nc-other.test\ndeny list nc-missing\n", 400, "policy",
         false},
        {"DELETE", "/api/lists/nc-used", NULL, 409, NULL, false},
    };
    int kept = add_rule("deny domain nc-kept.test", -1), list_rule, named;
    int64_t version, v;
    size_t audits, a;
    json_int_t gen, g;
    char path[64], rule_path[64], want[64];

    json_decref(api("PUT", "/api/lists/nc-used", "nc-listed.test\n", 200));
    list_rule = add_rule("deny list nc-used", 0);
    store_marks(&version, &audits);
    ck_assert_int_eq(deciding_rule("http://nc-kept.test/", &gen), kept);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        json_t *j;
        const char *e;

        if (cases[i].names_kept)
            snprintf(path, sizeof(path), "%s%d", cases[i].path, kept);
        else
            snprintf(path, sizeof(path), "%s", cases[i].path);
        j = api(cases[i].method, path, cases[i].body, cases[i].status);
        e = jstr(j, "error");
        if (cases[i].field)
            ck_assert_str_eq(jstr(j, "field"), cases[i].field);
        /* "rule 12: list: no list named 'nc-missing'"; a list delete names the rule that
         * uses the list, not the list as missing */
        if (i < 4) {
            ck_assert_msg(sscanf(e, "rule %d: ", &named) == 1, "%s", e);
            ck_assert_msg(strstr(e, "no list named 'nc-missing'"), "%s", e);
        } else {
            ck_assert_msg(
                sscanf(e, "list nc-used is used by rule %d (deny list nc-used)", &named) == 1, "%s",
                e);
            ck_assert_msg(strstr(e, "nothing changed") && !strstr(e, "no list"), "%s", e);
        }
        if (i == 4)
            ck_assert_int_eq(named, list_rule);
        else if (cases[i].names_kept)
            ck_assert_int_eq(named, kept);
        else
            ck_assert_int_gt(named, list_rule);
        json_decref(j);

        store_marks(&v, &a);
        ck_assert_msg(v == version, "%s %s: policy version %lld, was %lld", cases[i].method, path,
                      (long long)v, (long long)version);
        ck_assert_msg(a == audits, "%s %s: %zu audit rows, were %zu", cases[i].method, path, a,
                      audits);
        ck_assert_int_eq(deciding_rule("http://nc-kept.test/", &g), kept);
        ck_assert_int_eq(g, gen);
    }
    snprintf(rule_path, sizeof(rule_path), "/api/rules/%d", kept);
    json_t *j = api("GET", rule_path, NULL, 200);
    ck_assert_str_eq(jstr(json_object_get(j, "rule"), "text"), "deny domain nc-kept.test");
    json_decref(j);
    ck_assert_int_eq(rule_count_of("nc-missing"), 0);
    ck_assert_int_eq(deciding_rule("http://nc-listed.test/", &g), list_rule);

    /* A proxy user is no policy the rule set is made of: stored, never compiled. */
    json_decref(api("PUT", "/api/users/nc-user", "{\"password\":\"pw\"}", 200));
    json_decref(api("DELETE", "/api/users/nc-user", NULL, 200));
    ck_assert_int_eq(deciding_rule("http://nc-kept.test/", &g), kept);
    ck_assert_int_eq(g, gen);

    snprintf(want, sizeof(want), "/api/rules/%d", list_rule);
    json_decref(api("DELETE", want, NULL, 200));
    json_decref(api("DELETE", "/api/lists/nc-used", NULL, 200));
    json_decref(api("DELETE", rule_path, NULL, 200));
}
END_TEST

START_TEST(test_block_unblock_allow)
{
    static const struct {
        const char *domain;
        const char *text;
    } ok[] = {
        {"Ads.Example.TEST.", "deny domain ads.example.test"},
        {"https://user@Tracker.test:8443/pixel?x=1", "deny domain tracker.test"},
        {"*.wild.test", "deny domain wild.test"},
        /* the canonical form of requests: an address blocks its every spelling */
        {"http://[::1]/", "deny domain ::1"},
        {"[::FFFF:127.0.0.9]:80", "deny domain 127.0.0.9"},
        /* an internationalised name: its A-labels, as browsers send it */
        {"B\u00dccher.test", "deny domain xn--bcher-kva.test"},
    };
    static const char *const bad[] = {"",      "exa mple.test",   "a..b",    "x;y.test",
                                      "a b",   "a.test..",        ".a.test", "0x7f.0.0.1",
                                      "127.1", "b\u200dcher.test"};
    char body[256];
    json_t *j;

    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        json_t *req = json_pack("{s:s}", "domain", ok[i].domain);
        char *b = json_dumps(req, 0);
        j = api("POST", "/api/block", b, 201);
        ck_assert_str_eq(jstr(json_object_get(j, "rule"), "text"), ok[i].text);
        ck_assert_int_eq(jint(json_object_get(j, "rule"), "position"), 1);
        json_decref(j);
        free(b);
        json_decref(req);
    }
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        snprintf(body, sizeof(body), "{\"domain\":\"%s\"}", bad[i]);
        j = api("POST", "/api/block", body, 400);
        ck_assert_str_eq(jstr(j, "field"), "domain");
        json_decref(j);
    }
    /* Blocking a blocked domain again (a second click) adds nothing and names the rule. */
    int before = rule_count();
    j = api("POST", "/api/block", "{\"domain\":\"ADS.example.test\"}", 200);
    ck_assert(json_is_true(json_object_get(j, "existing")));
    ck_assert_str_eq(jstr(json_object_get(j, "rule"), "text"), "deny domain ads.example.test");
    json_decref(j);
    ck_assert_int_eq(rule_count(), before);
    /* a second identical rule (added as a rule): unblock removes both */
    json_decref(api("POST", "/api/rules", "{\"text\":\"deny domain ads.example.test\"}", 201));
    j = api("POST", "/api/unblock", "{\"domain\":\"ADS.example.test.\"}", 200);
    ck_assert_int_eq(json_array_size(json_object_get(j, "deleted")), 2);
    json_decref(j);
    json_decref(api("POST", "/api/unblock", "{\"domain\":\"ads.example.test\"}", 404));
    json_decref(api("POST", "/api/unblock", "{\"domain\":\"tracker.test\"}", 200));
    json_decref(api("POST", "/api/unblock", "{\"domain\":\"wild.test\"}", 200));
    json_decref(api("POST", "/api/unblock", "{\"domain\":\"::1\"}", 200));
    json_decref(api("POST", "/api/unblock", "{\"domain\":\"127.0.0.9\"}", 200));
    /* a timed block is a block of the host too; a rule that says more is not unblock's */
    json_decref(api("POST", "/api/block",
                    "{\"domain\":\"timed.test\",\"expires\":\"2999-01-01T00:00Z\"}", 201));
    j = api("POST", "/api/rules", "{\"text\":\"deny domain timed.test clients 10.0.0.0/8\"}", 201);
    ck_assert_int_eq(rule_count_of("timed.test"), 2);
    json_decref(api("POST", "/api/unblock", "{\"domain\":\"timed.test\"}", 200));
    ck_assert_int_eq(rule_count_of("timed.test expires"), 0);
    ck_assert_int_eq(rule_count_of("timed.test clients"), 1);
    json_decref(api("POST", "/api/unblock", "{\"domain\":\"timed.test\"}", 404));
    snprintf(body, sizeof(body), "/api/rules/%d", (int)jint(json_object_get(j, "rule"), "id"));
    json_decref(j);
    json_decref(api("DELETE", body, NULL, 200));

    j = api("POST", "/api/allow", "{\"domain\":\"good.test\"}", 201);
    ck_assert_str_eq(jstr(json_object_get(j, "rule"), "text"), "allow domain good.test");
    json_t *again = api("POST", "/api/allow", "{\"domain\":\"good.test\"}", 200);
    ck_assert_int_eq(jint(json_object_get(again, "rule"), "id"),
                     jint(json_object_get(j, "rule"), "id"));
    json_decref(again);
    /* unblock leaves allow rules alone */
    json_decref(api("POST", "/api/unblock", "{\"domain\":\"good.test\"}", 404));
    char path[64];
    snprintf(path, sizeof(path), "/api/rules/%d", (int)jint(json_object_get(j, "rule"), "id"));
    json_decref(j);
    json_decref(api("DELETE", path, NULL, 200));
}
END_TEST

/* ---- policy ---- */

START_TEST(test_policy_put_get_round_trip)
{
    const char *policy = "# office policy\n"
                         "deny domain social.test   # no social\n"
                         "deny url-regex ^http://[^/]+/ads/\n"
                         "allow client 10.0.0.0/8\n";
    struct res *r;
    json_t *j;

    r = http("PUT", "/api/policy", policy, AUTH_TOKEN, NULL);
    ck_assert_msg(r->status == 200, "%ld %s", r->status, r->body);
    j = json_loads(r->body, 0, NULL);
    ck_assert_int_eq(jint(j, "rules"), 3);
    json_decref(j);
    ck_assert_int_eq(rule_count(), 3);

    r = http("GET", "/api/policy", NULL, AUTH_TOKEN, NULL);
    ck_assert_int_eq(r->status, 200);
    ck_assert_ptr_nonnull(strstr(r->body, "\ndeny domain social.test\n"));
    ck_assert_ptr_nonnull(strstr(r->body, "\ndeny url-regex ^http://[^/]+/ads/\n"));
    ck_assert_ptr_nonnull(strstr(r->body, "\nallow client 10.0.0.0/8\n"));

    /* the export imports back to the same rules */
    char *exported = strdup(r->body);
    j = api("PUT", "/api/policy", exported, 200);
    free(exported);
    ck_assert_int_eq(jint(j, "rules"), 3);
    json_decref(j);
    r = http("GET", "/api/policy", NULL, AUTH_TOKEN, NULL);
    ck_assert_ptr_nonnull(strstr(r->body, "\ndeny domain social.test\n"));

    /* a bad line: 400 naming it, nothing changed */
    j = api("PUT", "/api/policy", "deny domain ok.test\nallow any\ndeny url-regex (\n", 400);
    ck_assert_ptr_nonnull(strstr(jstr(j, "error"), "3"));
    ck_assert_int_eq(jint(j, "line"), 3);
    json_decref(j);
    ck_assert_int_eq(rule_count(), 3);

    /* a policy that parses but does not compile (missing list): undone */
    j = api("PUT", "/api/policy", "deny list not-there\n", 400);
    ck_assert_ptr_nonnull(strstr(jstr(j, "error"), "not-there"));
    json_decref(j);
    ck_assert_int_eq(rule_count(), 3);

    j = api("PUT", "/api/policy", "", 200);
    ck_assert_int_eq(jint(j, "rules"), 0);
    json_decref(j);
    ck_assert_int_eq(rule_count(), 0);
}
END_TEST

START_TEST(test_url_test_names_deciding_rule)
{
    static const struct {
        const char *req;
        const char *action;
        int rule; /* index into ids, -1 = default */
        const char *method;
    } cases[] = {
        {"{\"url\":\"http://www.blocked.test/x\"}", "deny", 0, "GET"},
        {"{\"url\":\"https://blocked.test/\"}", "deny", 0, "CONNECT"},
        {"{\"url\":\"http://other.test/ads/banner.png\"}", "deny", 1, "GET"},
        {"{\"url\":\"http://other.test/\",\"client\":\"10.1.2.3\"}", "allow", 2, "GET"},
        {"{\"url\":\"other.test/page\",\"client\":\"192.168.1.1\"}", "allow", -1, "GET"},
    };
    int ids[3];
    json_t *j;

    json_decref(api("PUT", "/api/policy",
                    "deny domain blocked.test\ndeny url-regex ^http://[^/]+/ads/\n"
                    "allow client 10.0.0.0/8\n",
                    200));
    j = api("GET", "/api/rules", NULL, 200);
    for (int i = 0; i < 3; i++)
        ids[i] = (int)jint(json_array_get(json_object_get(j, "rules"), (size_t)i), "id");
    json_decref(j);

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        j = api("POST", "/api/test", cases[i].req, 200);
        ck_assert_msg(!strcmp(jstr(j, "action"), cases[i].action), "%s: %s", cases[i].req,
                      jstr(j, "action"));
        ck_assert_int_eq(jint(j, "rule_id"), cases[i].rule < 0 ? 0 : ids[cases[i].rule]);
        ck_assert(strlen(jstr(j, "reason")) > 0);
        if (cases[i].rule < 0)
            ck_assert(json_is_null(json_object_get(j, "rule")));
        else
            ck_assert_int_eq(jint(json_object_get(j, "rule"), "id"), ids[cases[i].rule]);
        ck_assert_str_eq(jstr(json_object_get(j, "request"), "method"), cases[i].method);
        json_decref(j);
    }
    json_decref(api("POST", "/api/test", "{\"url\":\"ftp://x.test/\"}", 400));
    json_decref(api("POST", "/api/test", "{\"url\":\"http://x.test/\",\"client\":\"nope\"}", 400));
    json_decref(api("PUT", "/api/policy", "", 200));
}
END_TEST

/* "GET http://host/<n bytes of path> HTTP/1.1" is 20 + strlen(host) + n bytes; the body
 * of an /api/test request for it (owned). */
static char *long_url_test(const char *host, size_t path_len, const char *tail)
{
    size_t fill = path_len - 1 - strlen(tail);
    char *body = malloc(path_len + 256);

    ck_assert_ptr_nonnull(body);
    int n = snprintf(body, 256, "{\"url\":\"http://%s/", host);
    memset(body + n, 'a', fill);
    snprintf(body + n + fill, path_len + 256 - (size_t)n - fill, "%s\"}", tail);
    return body;
}

/* The whole URL is judged, up to the proxy's request-line limit (8192 here): a rule that
 * matches past 4 KB used to be missed, since the path was cut there. Longer is 414, as the
 * proxy answers. */
START_TEST(test_url_test_judges_the_whole_url_up_to_the_request_line_limit)
{
    char *body;
    json_t *j;

    json_decref(api("PUT", "/api/policy", "deny url-regex /deep-tail$\n", 200));
    body = long_url_test("long.test", 6000, "/deep-tail");
    j = api("POST", "/api/test", body, 200);
    ck_assert_str_eq(jstr(j, "action"), "deny");
    ck_assert_uint_eq(strlen(jstr(json_object_get(j, "request"), "path")), 6000);
    json_decref(j);
    free(body);
    /* request line exactly at the limit: judged; one byte more: 414 */
    body = long_url_test("edge.test", 8192 - 20 - 9, "/deep-tail");
    j = api("POST", "/api/test", body, 200);
    ck_assert_str_eq(jstr(j, "action"), "deny");
    json_decref(j);
    free(body);
    body = long_url_test("edge.test", 8192 - 20 - 9 + 1, "/deep-tail");
    j = api("POST", "/api/test", body, 414);
    ck_assert_str_eq(jstr(j, "field"), "url");
    ck_assert_ptr_nonnull(strstr(jstr(j, "error"), "max-request-line"));
    json_decref(j);
    free(body);
    json_decref(api("PUT", "/api/policy", "", 200));
}
END_TEST

/* /api/test reads the URL's host as proxyd's parser does: one canonical form, or a 400. */
/* A url that is missing or not a string is a 400, never a crash of the whole proxyd. */
START_TEST(test_url_test_without_a_string_url_is_400)
{
    static const char *const bodies[] = {"{}", "{\"url\":5}", "{\"url\":null}",
                                         "{\"url\":[\"http://a.test/\"]}"};
    for (size_t i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++)
        json_decref(api("POST", "/api/test", bodies[i], 400));
}
END_TEST

START_TEST(test_url_test_uses_the_canonical_host)
{
    static const struct {
        const char *url;
        int rule; /* index into ids, -1 = default allow */
        const char *host;
        bool dest_pending;
    } cases[] = {
        {"http://CANON.test./x", 0, "canon.test", false},
        {"https://www.canon.test.:443/", 0, "www.canon.test", false},
        {"http://[::ffff:127.0.0.1]:8080/", 1, "127.0.0.1", false},
        {"http://127.0.0.1./", 1, "127.0.0.1", false},
        {"http://10.2.3.4/", 2, "10.2.3.4", false},
        {"http://[::ffff:a02:304]/", 2, "10.2.3.4", false},
        {"http://name.test/", -1, "name.test", true},
    };
    static const struct {
        const char *url, *why;
    } bad[] = {
        {"http://canon.test../", "bad host: empty label in host name"},
        {"http://.canon.test/", "bad host: empty label in host name"},
        {"http://0x7f.1/", "bad host: ambiguous IPv4 address"},
        {"http://2130706433/", "bad host: ambiguous IPv4 address"},
        {"http://canon%2etest/", "bad host: invalid character in host name"},
    };
    int ids[3];
    json_t *j;

    json_decref(api("PUT", "/api/policy",
                    "deny domain canon.test\ndeny domain 127.0.0.1\ndeny dest 10.0.0.0/8\n", 200));
    j = api("GET", "/api/rules", NULL, 200);
    for (int i = 0; i < 3; i++)
        ids[i] = (int)jint(json_array_get(json_object_get(j, "rules"), (size_t)i), "id");
    json_decref(j);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        json_t *req = json_pack("{s:s}", "url", cases[i].url);
        char *body = json_dumps(req, 0);
        j = api("POST", "/api/test", body, 200);
        ck_assert_msg(jint(j, "rule_id") == (cases[i].rule < 0 ? 0 : ids[cases[i].rule]), "%s: %s",
                      cases[i].url, jstr(j, "reason"));
        ck_assert_str_eq(jstr(j, "action"), cases[i].rule < 0 ? "allow" : "deny");
        ck_assert_str_eq(jstr(json_object_get(j, "request"), "host"), cases[i].host);
        ck_assert(json_is_true(json_object_get(j, "dest_pending")) == cases[i].dest_pending);
        json_decref(j);
        free(body);
        json_decref(req);
    }
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        json_t *req = json_pack("{s:s}", "url", bad[i].url);
        char *body = json_dumps(req, 0);
        j = api("POST", "/api/test", body, 400);
        ck_assert_str_eq(jstr(j, "field"), "url");
        ck_assert_msg(strstr(jstr(j, "error"), bad[i].why), "%s: %s", bad[i].url, jstr(j, "error"));
        json_decref(j);
        free(body);
        json_decref(req);
    }
    json_decref(api("PUT", "/api/policy", "", 200));
}
END_TEST

/* ---- text that is not UTF-8 ---- */

START_TEST(test_policy_not_utf8_is_refused_naming_line_and_old_policy_stays)
{
    json_t *j;

    json_decref(api("PUT", "/api/policy", "deny domain keep-utf8.test\n", 200));
    j = api("PUT", "/api/policy", "deny domain a-utf8.test\ndeny url-regex ^http://x/\xff\n", 400);
    ck_assert_str_eq(jstr(j, "error"), "line 2: not valid UTF-8 (byte 0xff at offset 25)");
    ck_assert_int_eq(jint(j, "line"), 2);
    json_decref(j);
    j = api("GET", "/api/rules", NULL, 200);
    ck_assert_int_eq(json_array_size(json_object_get(j, "rules")), 1);
    ck_assert_str_eq(jstr(json_array_get(json_object_get(j, "rules"), 0), "text"),
                     "deny domain keep-utf8.test");
    json_decref(j);
    /* a JSON body with such bytes never reaches the rule parser */
    json_decref(api("POST", "/api/rules", "{\"text\":\"deny url-regex \xff\"}", 400));
    json_decref(api("POST", "/api/rules/check", "{\"text\":\"deny url-regex \xc3\"}", 400));
    json_decref(api("PUT", "/api/policy", "", 200));
}
END_TEST

/* A rule that reached the database before input was checked is listed escaped, never left
 * out of the listing. */
START_TEST(test_stored_rule_not_utf8_is_listed_escaped)
{
    char err[256], path[64];
    int id;
    struct store *st = store_open(tmp.db, err, sizeof(err));
    ck_assert_msg(st != NULL, "%s", err);
    ck_assert_int_eq(store_rule_add(st, "deny url-regex ^http://old\\.test/\xff", "caf\xe9", 0,
                                    "test", &id, err, sizeof(err)),
                     0);
    store_close(st);

    json_t *j = api("GET", "/api/rules", NULL, 200), *row, *found = NULL;
    size_t i;
    json_array_foreach(json_object_get(j, "rules"), i, row) if (jint(row, "id") == id) found = row;
    ck_assert_msg(found != NULL, "rule %d missing from the listing", id);
    ck_assert_str_eq(jstr(found, "text"), "deny url-regex ^http://old\\.test/\\xff");
    ck_assert_str_eq(jstr(found, "comment"), "caf\\xe9");
    ck_assert_int_eq(jint(found, "undecided"), 0);
    json_decref(j);
    snprintf(path, sizeof(path), "/api/rules/%d", id);
    j = api("GET", path, NULL, 200);
    ck_assert_str_eq(jstr(json_object_get(j, "rule"), "text"),
                     "deny url-regex ^http://old\\.test/\\xff");
    json_decref(j);
    /* it cannot be compiled: the export still shows it, and it can be deleted */
    json_decref(api("DELETE", path, NULL, 200));
}
END_TEST

/* A reason cut inside a character (the rule is long and not ASCII) is still sent. */
START_TEST(test_url_test_reason_cut_inside_a_character_is_json)
{
    char re[400], url[400], text[460], path[64], prefix[64];
    json_t *j, *req;
    char *body;
    int id;
    size_t n;

    for (int pad = 0; pad < 2; pad++) {
        n = (size_t)snprintf(re, sizeof(re), "^http://u8\\.test/%s", pad ? "a" : "");
        snprintf(url, sizeof(url), "http://u8.test/%s", pad ? "a" : "");
        for (int k = 0; k < 80; k++) {
            strcat(re, "\xc3\xa9");
            strcat(url, "\xc3\xa9");
        }
        snprintf(text, sizeof(text), "deny url-regex %s", re);
        if (pad == 0) {
            req = json_pack("{s:s,s:i}", "text", text, "before", -1);
            body = json_dumps(req, 0);
            j = api("POST", "/api/rules", body, 201);
            id = (int)jint(json_object_get(j, "rule"), "id");
        } else {
            req = json_pack("{s:s}", "text", text);
            body = json_dumps(req, 0);
            j = api("PATCH", path, body, 200);
        }
        json_decref(j);
        free(body);
        json_decref(req);
        snprintf(path, sizeof(path), "/api/rules/%d", id);
        /* reason = "rule ID: deny url-regex " + re, cut to 159 bytes: the 2-byte characters
         * must straddle that cut */
        int plen = snprintf(prefix, sizeof(prefix), "rule %d: deny url-regex ", id);
        if ((plen + (int)n) % 2 == 0)
            break;
    }
    req = json_pack("{s:s}", "url", url);
    body = json_dumps(req, 0);
    j = api("POST", "/api/test", body, 200);
    ck_assert_str_eq(jstr(j, "action"), "deny");
    ck_assert_int_eq(jint(j, "rule_id"), id);
    const char *reason = jstr(j, "reason");
    ck_assert_msg(strlen(reason) > 4 && !strcmp(reason + strlen(reason) - 4, "\\xc3"), "%s",
                  reason);
    json_decref(j);
    free(body);
    json_decref(req);
    json_decref(api("DELETE", path, NULL, 200));
}
END_TEST

/* ---- lists, users ---- */

START_TEST(test_list_import_summary_and_delete_guard)
{
    const char *list = "# ads\n0.0.0.0 a.ads.test\n||b.ads.test^\nc.ads.test\nC.ads.test.\n"
                       "not_a_domain$\n";
    json_t *j;

    j = api("PUT", "/api/lists/ads", list, 200);
    ck_assert_str_eq(jstr(j, "name"), "ads");
    ck_assert_int_eq(jint(j, "added"), 3);
    ck_assert_int_eq(jint(j, "duplicates"), 1);
    ck_assert_int_eq(jint(j, "skipped"), 1);
    ck_assert_int_eq(jint(j, "first_skipped_line"), 6);
    ck_assert(strlen(jstr(j, "first_skipped_reason")) > 0);
    json_decref(j);

    j = api("GET", "/api/lists", NULL, 200);
    json_t *row;
    size_t i;
    bool seen = false;
    json_array_foreach(json_object_get(j, "lists"), i, row) if (!strcmp(jstr(row, "name"), "ads"))
    {
        seen = true;
        ck_assert_int_eq(jint(row, "entries"), 3);
        ck_assert_int_gt(jint(row, "updated_ms"), 0);
    }
    ck_assert(seen);
    json_decref(j);
    j = api("GET", "/api/lists/ads", NULL, 200);
    ck_assert_int_eq(json_array_size(json_object_get(j, "entries")), 3);
    json_decref(j);

    /* a rule may now use it, and the list cannot go while the rule needs it */
    int id = add_rule("deny list ads", -1);
    j = api("POST", "/api/test", "{\"url\":\"http://x.b.ads.test/\"}", 200);
    ck_assert_int_eq(jint(j, "rule_id"), id);
    json_decref(j);
    j = api("DELETE", "/api/lists/ads", NULL, 409);
    char want[128];
    snprintf(want, sizeof(want), "list ads is used by rule %d (deny list ads)", id);
    ck_assert_msg(strstr(jstr(j, "error"), want), "%s", jstr(j, "error"));
    json_decref(j);
    /* Text without a domain (an empty paste, a file of comments) and an import under a name
     * in use wait for replace=1 (409, field "replace"), the list kept as it was. */
    static const struct {
        const char *text;
        const char *error;
    } ask[] = {
        {"", "list ads: the text is empty: importing it empties the list; nothing changed: "
             "confirm with replace=1"},
        {"# nothing here\nnot_a_domain$\n",
         "list ads: no domains in the text (1 lines skipped, the first, line 2: "},
        {"other.ads.test\n", "list ads exists: importing replaces its entries; nothing changed: "
                             "confirm with replace=1"},
    };
    for (size_t k = 0; k < sizeof(ask) / sizeof(ask[0]); k++) {
        j = api("PUT", "/api/lists/ads", ask[k].text, 409);
        ck_assert_str_eq(jstr(j, "field"), "replace");
        ck_assert_msg(strncmp(jstr(j, "error"), ask[k].error, strlen(ask[k].error)) == 0, "%s",
                      jstr(j, "error"));
        json_decref(j);
    }
    j = api("PUT", "/api/lists/fresh", "", 409);
    ck_assert_str_eq(jstr(j, "error"), "list fresh: the text is empty: importing it makes an "
                                       "empty list; nothing changed: confirm with replace=1");
    json_decref(j);
    json_decref(api("GET", "/api/lists/fresh", NULL, 404));
    j = api("GET", "/api/lists/ads", NULL, 200);
    ck_assert_int_eq(json_array_size(json_object_get(j, "entries")), 3);
    json_decref(j);
    /* Confirmed, an empty import empties the list (its rule still compiles: it matches nothing). */
    j = api("PUT", "/api/lists/ads?replace=1", "# nothing here\n", 200);
    ck_assert_int_eq(jint(j, "added"), 0);
    json_decref(j);
    j = api("GET", "/api/lists/ads", NULL, 200);
    ck_assert_int_eq(json_array_size(json_object_get(j, "entries")), 0);
    json_decref(j);
    j = api("POST", "/api/test", "{\"url\":\"http://x.b.ads.test/\"}", 200);
    ck_assert_int_eq(jint(j, "rule_id"), 0);
    json_decref(j);
    char path[64];
    snprintf(path, sizeof(path), "/api/rules/%d", id);
    json_decref(api("DELETE", path, NULL, 200));
    j = api("DELETE", "/api/lists/ads", NULL, 200);
    ck_assert_str_eq(jstr(j, "deleted"), "ads");
    json_decref(j);
    json_decref(api("GET", "/api/lists/ads", NULL, 404));
    json_decref(api("PUT", "/api/lists/..bad", "a.test\n", 400));
}
END_TEST

/* A line that is not UTF-8 is skipped, and the reason quotes it escaped (the import is in
 * force, so its answer must not fail). */
START_TEST(test_list_import_not_utf8_line_is_quoted_escaped)
{
    json_t *j = api("PUT", "/api/lists/u8list", "ok.u8list.test\nbad\xff.u8list.test\n", 200);
    ck_assert_int_eq(jint(j, "added"), 1);
    ck_assert_int_eq(jint(j, "skipped"), 1);
    ck_assert_str_eq(jstr(j, "first_skipped_reason"), "invalid domain 'bad\\xff.u8list.test'");
    json_decref(j);
    json_decref(api("DELETE", "/api/lists/u8list", NULL, 200));
}
END_TEST

static bool name_in(json_t *arr, const char *name)
{
    json_t *v;
    size_t i;

    json_array_foreach(arr, i, v) if (!strcmp(json_string_value(v), name)) return true;
    return false;
}

/* Audit rows whose detail or target mentions needle. */
static size_t audit_rows_about(const char *needle)
{
    json_t *j = api("GET", "/api/audit?limit=1000", NULL, 200), *row;
    size_t i, n = 0;

    json_array_foreach(json_object_get(j, "rows"), i, row)
    {
        char *dump = json_dumps(row, 0);
        n += dump && strstr(dump, needle);
        free(dump);
    }
    json_decref(j);
    return n;
}

/* A session of admin name (logged in with pw): its Cookie and X-CSRF-Token header lines. */
struct as {
    char hc[160], hx[160];
    const char *hdrs[3];
};

static void as_login(struct as *a, const char *name, const char *pw)
{
    char sid[128], csrf[128];

    login(name, pw, sid, sizeof(sid), csrf, sizeof(csrf));
    snprintf(a->hc, sizeof(a->hc), "Cookie: pxsid=%s", sid);
    snprintf(a->hx, sizeof(a->hx), "X-CSRF-Token: %s", csrf);
    a->hdrs[0] = a->hc;
    a->hdrs[1] = a->hx;
    a->hdrs[2] = NULL;
}

static long as_call(struct as *a, const char *method, const char *path, const char *body)
{
    return http(method, path, body, AUTH_NONE, a->hdrs)->status;
}

/* Roles are enforced by the API: a viewer reads and tests but changes nothing (403), an
 * operator blocks, unblocks, allows and manages lists but not rules, accounts or settings;
 * a role change ends the admin's sessions; the last admin-role account keeps its role. */
START_TEST(test_roles_are_enforced_by_the_api)
{
    struct as v, o;
    json_t *j;

    json_decref(api("PUT", "/api/admins/role-viewer",
                    "{\"password\":\"viewer-password\",\"role\":\"viewer\",\"create\":true}", 200));
    json_decref(api("PUT", "/api/admins/role-operator",
                    "{\"password\":\"operator-password\",\"role\":\"operator\"}", 200));
    json_decref(api("PUT", "/api/admins/role-bad",
                    "{\"password\":\"whatever-pw\",\"role\":\"root\"}", 400));
    j = api("GET", "/api/admins", NULL, 200);
    ck_assert_str_eq(jstr(json_object_get(j, "roles"), "role-viewer"), "viewer");
    ck_assert_str_eq(jstr(json_object_get(j, "roles"), "role-operator"), "operator");
    ck_assert_str_eq(jstr(json_object_get(j, "roles"), "admin"), "admin");
    ck_assert(name_in(json_object_get(j, "admins"), "role-viewer"));
    json_decref(j);

    as_login(&v, "role-viewer", "viewer-password");
    j = json_loads(http("GET", "/api/session", NULL, AUTH_NONE, v.hdrs)->body, 0, NULL);
    ck_assert_str_eq(jstr(j, "role"), "viewer");
    json_decref(j);
    static const struct {
        const char *method, *path, *body;
        long viewer, operator;
    } calls[] = {
        {"GET", "/api/rules", NULL, 200, 200},
        {"GET", "/api/logs", NULL, 200, 200},
        {"GET", "/api/audit", NULL, 200, 200},
        {"POST", "/api/test", "{\"url\":\"http://roles.test/\"}", 200, 200},
        {"POST", "/api/rules/check", "{\"text\":\"deny domain roles.test\"}", 200, 200},
        {"POST", "/api/rules", "{\"text\":\"deny domain roles.test\"}", 403, 403},
        {"PUT", "/api/policy", "deny domain roles.test\n", 403, 403},
        {"POST", "/api/block", "{\"domain\":\"roles.test\"}", 403, 201},
        {"POST", "/api/unblock", "{\"domain\":\"roles.test\"}", 403, 200},
        {"PUT", "/api/lists/roles", "roles.test\n", 403, 200},
        {"DELETE", "/api/lists/roles", NULL, 403, 200},
        {"PUT", "/api/users/role-user", "{\"password\":\"x\"}", 403, 403},
        {"PUT", "/api/settings", "{}", 403, 403},
        {"PUT", "/api/admins/role-viewer/role", "{\"role\":\"admin\"}", 403, 403},
        {"POST", "/api/nothing-here", "{}", 404, 404},
    };
    as_login(&o, "role-operator", "operator-password");
    for (size_t i = 0; i < sizeof(calls) / sizeof(calls[0]); i++) {
        long got = as_call(&v, calls[i].method, calls[i].path, calls[i].body);
        ck_assert_msg(got == calls[i].viewer, "viewer %s %s: %ld, want %ld", calls[i].method,
                      calls[i].path, got, calls[i].viewer);
        got = as_call(&o, calls[i].method, calls[i].path, calls[i].body);
        ck_assert_msg(got == calls[i].operator, "operator %s %s: %ld, want %ld", calls[i].method,
                      calls[i].path, got, calls[i].operator);
    }
    struct res *r =
        http("POST", "/api/rules", "{\"text\":\"deny domain roles.test\"}", AUTH_NONE, v.hdrs);
    ck_assert_msg(strstr(r->body, "needs the admin role; role-viewer has the viewer role"), "%s",
                  r->body);
    ck_assert_int_eq(rule_count_of("roles.test"), 0);

    /* Any role changes its own password, knowing the current one. */
    ck_assert_int_eq(as_call(&v, "POST", "/api/account/password",
                             "{\"current\":\"wrong\",\"password\":\"viewer-password-2\"}"),
                     403);
    ck_assert_int_eq(
        as_call(&v, "POST", "/api/account/password",
                "{\"current\":\"viewer-password\",\"password\":\"viewer-password-2\"}"),
        200);
    ck_assert_int_eq(as_call(&v, "GET", "/api/rules", NULL), 200);
    as_login(&v, "role-viewer", "viewer-password-2");

    /* A role change ends the sessions; the next login has the new role. */
    j = api("PUT", "/api/admins/role-viewer/role", "{\"role\":\"operator\"}", 200);
    ck_assert_str_eq(jstr(j, "role"), "operator");
    json_decref(j);
    ck_assert_int_eq(as_call(&v, "GET", "/api/rules", NULL), 401);
    as_login(&v, "role-viewer", "viewer-password-2");
    ck_assert_int_eq(as_call(&v, "POST", "/api/block", "{\"domain\":\"roles2.test\"}"), 201);
    json_decref(api("POST", "/api/unblock", "{\"domain\":\"roles2.test\"}", 200));
    json_decref(api("PUT", "/api/admins/nobody-here/role", "{\"role\":\"viewer\"}", 404));
    json_decref(api("PUT", "/api/admins/role-viewer/role", "{\"role\":\"king\"}", 400));

    /* The last admin-role account keeps its role and cannot be deleted. */
    j = api("PUT", "/api/admins/admin/role", "{\"role\":\"viewer\"}", 409);
    ck_assert_str_eq(jstr(j, "field"), "role");
    json_decref(j);
    json_decref(api("PUT", "/api/admins/role-operator/role", "{\"role\":\"admin\"}", 200));
    json_decref(api("PUT", "/api/admins/role-operator/role", "{\"role\":\"viewer\"}", 200));
    json_decref(api("DELETE", "/api/admins/admin", NULL, 409));
    /* The audit names who changed which role, from what to what, and the logins. */
    ck_assert_uint_gt(audit_rows_about("role-operator: admin -> viewer"), 0);
    ck_assert_uint_gt(audit_rows_about("\"login\""), 0);
    /* The audit filter: by who (exact) and by text in the action or detail. */
    j = api("GET", "/api/audit?actor=role-viewer&limit=1000", NULL, 200);
    json_t *row;
    size_t i, logins = 0;
    json_array_foreach(json_object_get(j, "rows"), i, row)
    {
        ck_assert_str_eq(jstr(row, "actor"), "role-viewer");
        logins += !strcmp(jstr(row, "action"), "login");
    }
    ck_assert_uint_ge(logins, 3);
    json_decref(j);
    j = api("GET", "/api/audit?q=admin%20-%3E%20viewer&limit=1000", NULL, 200);
    ck_assert_uint_ge(json_array_size(json_object_get(j, "rows")), 1);
    json_array_foreach(json_object_get(j, "rows"), i, row)
        ck_assert_ptr_nonnull(strstr(jstr(row, "detail"), "admin -> viewer"));
    json_decref(j);
    j = api("GET", "/api/audit?q=100%25_%5C&limit=10", NULL, 200); /* LIKE's own characters */
    ck_assert_uint_eq(json_array_size(json_object_get(j, "rows")), 0);
    json_decref(j);
    json_decref(api("DELETE", "/api/admins/role-viewer", NULL, 200));
    json_decref(api("DELETE", "/api/admins/role-operator", NULL, 200));
}
END_TEST

START_TEST(test_users_and_admins)
{
    json_t *j;

    j = api("PUT", "/api/users/alice", "{\"password\":\"s3cret\"}", 200);
    ck_assert_str_eq(jstr(j, "user"), "alice");
    json_decref(j);
    j = api("GET", "/api/users", NULL, 200);
    ck_assert(name_in(json_object_get(j, "users"), "alice"));
    json_decref(j);
    json_decref(api("PUT", "/api/users/alice", "{\"password\":\"changed\"}", 200));
    /* Adding a name that exists is refused, and its password stays (the audit shows no
     * change). */
    size_t audits = audit_rows_about("alice");
    j = api("PUT", "/api/users/alice", "{\"password\":\"other\",\"create\":true}", 409);
    ck_assert_str_eq(jstr(j, "field"), "name");
    ck_assert_msg(strstr(jstr(j, "error"), "user alice already exists; nothing changed"), "%s",
                  jstr(j, "error"));
    json_decref(j);
    ck_assert_uint_eq(audit_rows_about("alice"), audits);
    json_decref(api("PUT", "/api/users/alice-2", "{\"password\":\"x\",\"create\":true}", 200));
    json_decref(api("DELETE", "/api/users/alice-2", NULL, 200));
    json_decref(
        api("PUT", "/api/admins/admin", "{\"password\":\"long-enough-pw\",\"create\":true}", 409));
    json_decref(api("PUT", "/api/users/alice", "{}", 400));
    json_decref(api("PUT", "/api/users/bad%20name", "{\"password\":\"x\"}", 400));
    j = api("DELETE", "/api/users/alice", NULL, 200);
    ck_assert_str_eq(jstr(j, "deleted"), "alice");
    json_decref(j);
    json_decref(api("DELETE", "/api/users/alice", NULL, 404));
    j = api("GET", "/api/users", NULL, 200);
    ck_assert(!name_in(json_object_get(j, "users"), "alice"));
    json_decref(j);

    json_decref(api("PUT", "/api/admins/bob", "{\"password\":\"short\"}", 400));
    j = api("PUT", "/api/admins/bob", "{\"password\":\"long-enough-pw\"}", 200);
    ck_assert_str_eq(jstr(j, "admin"), "bob");
    json_decref(j);
    j = api("GET", "/api/admins", NULL, 200);
    ck_assert(name_in(json_object_get(j, "admins"), "bob"));
    ck_assert(name_in(json_object_get(j, "admins"), "admin"));
    json_decref(j);
    char sid[128], csrf[128];
    login("bob", "long-enough-pw", sid, sizeof(sid), csrf, sizeof(csrf));
    json_decref(api("DELETE", "/api/admins/bob", NULL, 200));
    ck_assert_int_eq(http("POST", "/api/login",
                          "{\"user\":\"bob\",\"password\":\"long-enough-pw\"}", AUTH_NONE, NULL)
                         ->status,
                     401);
}
END_TEST

/* ---- logs, top, series, stats ---- */

static void insert_rows(int64_t now)
{
    static const struct {
        const char *client, *host, *path;
        int status, decision, rule;
    } rows[] = {
        {"10.9.0.1", "logs-a.test", "/index.html", 200, STORE_ALLOW, 0},
        {"10.9.0.1", "logs-a.test", "/img.png", 404, STORE_ALLOW, 0},
        {"10.9.0.2", "logs-b.test", "/<script>alert(1)</script>", 403, STORE_DENY, 7},
        {"10.9.0.2", "logs-b.test", "/second", 403, STORE_DENY, 7},
        {"10.9.0.3", "logs-c.test", "/needle-path", 407, STORE_AUTH, 8},
    };
    struct store_log_opts o = {
        .db_path = tmp.db, .producers = 1, .queue_capacity = 64, .flush_interval_ms = 10};
    char err[256];
    struct store_log *log = store_log_start(&o, err, sizeof(err));

    ck_assert_msg(log != NULL, "%s", err);
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        struct store_access a;
        memset(&a, 0, sizeof(a));
        a.time_ms = now - 60000 + (int64_t)i;
        a.duration_ms = 5;
        a.status = (uint16_t)rows[i].status;
        a.port = 80;
        a.bytes_up = 10;
        a.bytes_down = 100;
        a.rule_id = rows[i].rule;
        a.decision = (uint8_t)rows[i].decision;
        snprintf(a.client, sizeof(a.client), "%s", rows[i].client);
        snprintf(a.method, sizeof(a.method), "GET");
        snprintf(a.scheme, sizeof(a.scheme), "http");
        snprintf(a.host, sizeof(a.host), "%s", rows[i].host);
        snprintf(a.path, sizeof(a.path), "%s", rows[i].path);
        ck_assert(store_log_push(log, 0, &a));
    }
    store_log_stop(log);
}

/* A log row for host decided by rule (0: none) with reason, as proxyd writes one. */
static void insert_decided(const char *host, int rule, const char *reason)
{
    struct store_log_opts o = {
        .db_path = tmp.db, .producers = 1, .queue_capacity = 64, .flush_interval_ms = 10};
    char err[256];
    struct store_log *log = store_log_start(&o, err, sizeof(err));
    struct store_access a;

    ck_assert_msg(log != NULL, "%s", err);
    memset(&a, 0, sizeof(a));
    a.time_ms = (int64_t)time(NULL) * 1000;
    a.status = 403;
    a.port = 443;
    a.rule_id = rule;
    a.decision = STORE_DENY;
    snprintf(a.client, sizeof(a.client), "10.9.1.1");
    snprintf(a.method, sizeof(a.method), "CONNECT");
    snprintf(a.scheme, sizeof(a.scheme), "https");
    snprintf(a.host, sizeof(a.host), "%s", host);
    snprintf(a.error, sizeof(a.error), "%s", reason);
    ck_assert(store_log_push(log, 0, &a));
    store_log_stop(log);
}

/* Each row says which rule decided it, with the rule's text as it is now (null once it is
 * deleted), and the decision's reason. */
START_TEST(test_log_rows_carry_rule_text_and_reason)
{
    int id = add_rule("deny host-regex ^ruletext[0-9]+[.]test$", 0);
    json_t *j, *row;

    insert_decided("ruletext1.test", id, "rule N: deny host-regex");
    insert_decided("ruletext-port.test", 0, "CONNECT to port 25 is not allowed");
    j = api("GET", "/api/logs?host=ruletext", NULL, 200);
    ck_assert_int_eq(json_array_size(json_object_get(j, "rows")), 2);
    row = json_array_get(json_object_get(j, "rows"), 0); /* newest first */
    ck_assert_str_eq(jstr(row, "host"), "ruletext-port.test");
    ck_assert(json_is_null(json_object_get(row, "rule_text")));
    ck_assert_str_eq(jstr(row, "error"), "CONNECT to port 25 is not allowed");
    row = json_array_get(json_object_get(j, "rows"), 1);
    ck_assert_int_eq(jint(row, "rule_id"), id);
    ck_assert_str_eq(jstr(row, "rule_text"), "deny host-regex ^ruletext[0-9]+[.]test$");
    json_decref(j);

    char path[64];
    snprintf(path, sizeof(path), "/api/rules/%d", id);
    json_decref(api("DELETE", path, NULL, 200));
    j = api("GET", "/api/logs?host=ruletext1", NULL, 200);
    row = json_array_get(json_object_get(j, "rows"), 0);
    ck_assert_int_eq(jint(row, "rule_id"), id);
    ck_assert(json_is_null(json_object_get(row, "rule_text")));
    json_decref(j);
}
END_TEST

static size_t log_count(const char *query)
{
    char path[512];
    json_t *j;
    size_t n;

    snprintf(path, sizeof(path), "/api/logs?%s", query);
    j = api("GET", path, NULL, 200);
    n = json_array_size(json_object_get(j, "rows"));
    json_decref(j);
    return n;
}

/* A 60 KB search text used to reach SQLite's LIKE pattern limit and answer 500. Up to
 * 1024 bytes is searched; longer is a 400 naming the parameter, for q, host and client. */
START_TEST(test_long_log_search_text_is_400_not_500)
{
    static const char *const keys[] = {"q", "host", "client"};
    static const size_t lens[] = {1024, 1025, 60000};
    char *path = malloc(70000);
    json_t *j;

    ck_assert_ptr_nonnull(path);
    for (size_t k = 0; k < sizeof(keys) / sizeof(keys[0]); k++) {
        for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
            int n = snprintf(path, 64, "/api/logs?%s=", keys[k]);
            memset(path + n, 'x', lens[i]);
            path[n + lens[i]] = '\0';
            /* A client is an address, a network or the start of one: x... is none. */
            bool ok = lens[i] <= 1024 && strcmp(keys[k], "client") != 0;
            j = api("GET", path, NULL, ok ? 200 : 400);
            if (!ok)
                ck_assert_str_eq(jstr(j, "field"), keys[k]);
            else
                ck_assert_int_eq(json_array_size(json_object_get(j, "rows")), 0);
            json_decref(j);
        }
    }
    free(path);
}
END_TEST

/* Every counter of base/stats.h is in the "proxy" object under its own name: the scalars as
 * integers, the counters by reason as objects. Another counter in the table needs no change
 * here or in the handler. */
START_TEST(test_stats_has_every_counter_of_the_table)
{
    static const char *const scalars[] = {
#define X(name, kind, what) #name,
        STATS_WORKER_TABLE STATS_PROCESS_TABLE
#undef X
    };
    static const char *const groups[] = {
#define X(name, kind, labels, what) #name,
        STATS_GROUP_TABLE
#undef X
#define X(name, what) #name,
            STATS_HISTOGRAM_TABLE
#undef X
    };
    static const char *const log_counters[] = {
#define X(name, kind, what) #name,
        STATS_LOG_TABLE
#undef X
    };
    json_t *j = api("GET", "/api/stats", NULL, 200);
    json_t *p = json_object_get(j, "proxy");

    for (size_t i = 0; i < sizeof(scalars) / sizeof(scalars[0]); i++)
        jint(p, scalars[i]);
    for (size_t i = 0; i < sizeof(groups) / sizeof(groups[0]); i++)
        ck_assert_msg(json_is_object(json_object_get(p, groups[i])), "no object %s", groups[i]);
    ck_assert_int_eq(jint(p, "started_ms"), 0);
    ck_assert(json_is_object(json_object_get(p, "log")));
    for (size_t i = 0; i < sizeof(log_counters) / sizeof(log_counters[0]); i++)
        jint(json_object_get(p, "log"), log_counters[i]);
    json_decref(j);
}
END_TEST

/* GET /metrics: the hook's numbers in the Prometheus text format, to loopback without
 * credentials; the probes answer anyone, /readyz with the hook's reason. */
START_TEST(test_metrics_text_and_probes)
{
    static const char *const lines[] = {
        "# TYPE proxyd_requests_total counter\nproxyd_requests_total 1234\n",
        "# TYPE proxyd_requests_denied_total counter\nproxyd_requests_denied_total 56\n",
        "# TYPE proxyd_workers gauge\nproxyd_workers 3\n",
        "# TYPE proxyd_log_written_total counter\nproxyd_log_written_total 77\n",
        "# TYPE proxyd_log_pending gauge\nproxyd_log_pending 0\n",
        "# TYPE proxyd_acl_eval_seconds histogram\n",
        "proxyd_acl_eval_seconds_bucket{le=\"+Inf\"} 0\nproxyd_acl_eval_seconds_sum 0.000000000\n"
        "proxyd_acl_eval_seconds_count 0\n",
    };
    char ctype[128];
    struct res *r = http("GET", "/metrics", NULL, AUTH_NONE, NULL);

    ck_assert_int_eq(r->status, 200);
    ck_assert_ptr_nonnull(header(r, "Content-Type", ctype, sizeof(ctype)));
    ck_assert_str_eq(ctype, "text/plain; version=0.0.4; charset=utf-8");
    for (size_t i = 0; i < sizeof(lines) / sizeof(lines[0]); i++)
        ck_assert_msg(strstr(r->body, lines[i]), "no %s in:\n%s", lines[i], r->body);
    r = http("GET", "/healthz", NULL, AUTH_NONE, NULL);
    ck_assert_int_eq(r->status, 200);
    ck_assert_str_eq(r->body, "ok\n");
    r = http("GET", "/readyz", NULL, AUTH_NONE, NULL);
    ck_assert_int_eq(r->status, 200);
    ck_assert_str_eq(r->body, "ready\n");
    FILE *flag = fopen(not_ready_path, "w");
    ck_assert_ptr_nonnull(flag);
    fclose(flag);
    r = http("GET", "/readyz", NULL, AUTH_NONE, NULL);
    ck_assert_int_eq(r->status, 503);
    ck_assert_str_eq(r->body, "not ready: no policy in force yet\n");
    unlink(not_ready_path);
}
END_TEST

START_TEST(test_logs_search_filters_paging_and_escaping)
{
    static const struct {
        const char *query;
        size_t rows;
    } cases[] = {
        {"host=logs-", 5},
        {"host=logs-a", 2},
        {"client=10.9.0.2", 2},
        {"client=10.9.0.2&decision=deny", 2},
        {"host=logs-&decision=allow", 2},
        {"host=logs-&decision=auth", 1},
        {"host=logs-&status=404", 1},
        {"q=needle", 1},
        {"client=10.9.0.99", 0},
    };
    int64_t now = (int64_t)time(NULL) * 1000;
    char q[256];
    json_t *j;

    insert_rows(now);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        ck_assert_msg(log_count(cases[i].query) == cases[i].rows, "%s: %zu rows", cases[i].query,
                      log_count(cases[i].query));
    snprintf(q, sizeof(q), "host=logs-&since=%lld&until=%lld", (long long)(now - 60000 + 2),
             (long long)(now - 60000 + 4));
    ck_assert_uint_eq(log_count(q), 2);
    json_decref(api("GET", "/api/logs?decision=maybe", NULL, 400));
    json_decref(api("GET", "/api/logs?limit=abc", NULL, 400));

    /* paging: newest first, two at a time */
    j = api("GET", "/api/logs?host=logs-&limit=2", NULL, 200);
    ck_assert_int_eq(json_array_size(json_object_get(j, "rows")), 2);
    json_int_t next = jint(j, "next_before");
    json_int_t newest = jint(json_array_get(json_object_get(j, "rows"), 0), "id");
    json_decref(j);
    snprintf(q, sizeof(q), "/api/logs?host=logs-&limit=10&before=%lld", (long long)next);
    j = api("GET", q, NULL, 200);
    ck_assert_int_eq(json_array_size(json_object_get(j, "rows")), 3);
    ck_assert(json_is_null(json_object_get(j, "next_before")));
    json_decref(j);
    snprintf(q, sizeof(q), "/api/logs?host=logs-&after=%lld", (long long)(newest - 2));
    j = api("GET", q, NULL, 200);
    ck_assert_int_eq(json_array_size(json_object_get(j, "rows")), 2);
    json_decref(j);

    /* an attacker-chosen path stays data: escaped in the raw JSON, exact once parsed */
    struct res *r = http("GET", "/api/logs?host=logs-b&q=script", NULL, AUTH_TOKEN, NULL);
    ck_assert_int_eq(r->status, 200);
    ck_assert_ptr_null(strstr(r->body, "<script>"));
    ck_assert_ptr_null(strstr(r->body, "</script>"));
    j = json_loads(r->body, 0, NULL);
    json_t *row = json_array_get(json_object_get(j, "rows"), 0);
    ck_assert_str_eq(jstr(row, "path"), "/<script>alert(1)</script>");
    ck_assert_str_eq(jstr(row, "decision"), "deny");
    ck_assert_int_eq(jint(row, "rule_id"), 7);
    ck_assert_str_eq(jstr(row, "client"), "10.9.0.2");
    ck_assert_int_eq(jint(row, "bytes_down"), 100);
    json_decref(j);

    /* top, series, stats over the same rows */
    j = api("GET", "/api/top?kind=blocked&limit=50", NULL, 200);
    ck_assert_str_eq(jstr(j, "kind"), "blocked");
    json_t *t;
    size_t i;
    bool seen = false;
    json_array_foreach(json_object_get(j, "rows"), i, t) if (!strcmp(jstr(t, "key"), "logs-b.test"))
    {
        seen = true;
        ck_assert_int_eq(jint(t, "requests"), 2);
    }
    ck_assert(seen);
    json_decref(j);
    j = api("GET", "/api/top?kind=clients&limit=1000", NULL, 200);
    ck_assert_int_ge(json_array_size(json_object_get(j, "rows")), 3);
    json_decref(j);
    json_decref(api("GET", "/api/top?kind=nonsense", NULL, 400));

    snprintf(q, sizeof(q), "/api/series?since=%lld&until=%lld&bucket=60000",
             (long long)(now - 120000), (long long)(now + 60000));
    j = api("GET", q, NULL, 200);
    json_int_t req = 0, blocked = 0;
    json_array_foreach(json_object_get(j, "points"), i, t)
    {
        req += jint(t, "requests");
        blocked += jint(t, "blocked");
        ck_assert(json_is_integer(json_object_get(t, "t")));
    }
    ck_assert_int_ge(req, 5);
    ck_assert_int_ge(blocked, 2);
    json_decref(j);
    json_decref(api("GET", "/api/series?since=0&until=999999999999&bucket=1000", NULL, 400));

    j = api("GET", "/api/stats", NULL, 200);
    json_t *p = json_object_get(j, "proxy");
    ck_assert_int_eq(jint(p, "requests_total"), 1234);
    ck_assert_int_eq(jint(p, "requests_denied"), 56);
    ck_assert_int_eq(jint(p, "workers"), 3);
    ck_assert_int_eq(jint(json_object_get(p, "log"), "written"), 77);
    ck_assert_int_ge(jint(json_object_get(j, "totals"), "requests"), 5);
    ck_assert_int_ge(jint(json_object_get(j, "totals"), "blocked"), 2);
    ck_assert_int_ge(jint(json_object_get(j, "totals"), "clients"), 3);
    json_decref(j);
}
END_TEST

/* ---- audit, settings, PAC, health, reload ---- */

START_TEST(test_audit_rows_appear)
{
    int id = add_rule("deny domain audited.test", 0);
    char path[64];
    json_t *j, *row;
    size_t i;
    bool seen = false;

    snprintf(path, sizeof(path), "/api/rules/%d", id);
    json_decref(api("DELETE", path, NULL, 200));
    j = api("GET", "/api/audit?limit=20", NULL, 200);
    json_array_foreach(json_object_get(j, "rows"), i, row)
    {
        ck_assert_int_gt(jint(row, "time_ms"), 0);
        if (!strcmp(jstr(row, "actor"), "token") && strstr(jstr(row, "detail"), "audited.test"))
            seen = true;
        jstr(row, "action");
    }
    ck_assert(seen);
    json_decref(j);
    j = api("GET", "/api/audit?limit=1", NULL, 200);
    ck_assert_int_eq(json_array_size(json_object_get(j, "rows")), 1);
    ck_assert(json_is_integer(json_object_get(j, "next_before")));
    json_decref(j);
}
END_TEST

/* proxy: what the PAC file returns after "PROXY" ("HTTPS" when it begins with https://). */
static void pac_for(char *out, size_t outlen, const char *proxy)
{
    bool https = strncmp(proxy, "https://", 8) == 0;
    snprintf(out, outlen,
             "function FindProxyForURL(url, host) {\n"
             "    if (isPlainHostName(host) || host == \"localhost\" || "
             "shExpMatch(host, \"127.*\"))\n"
             "        return \"DIRECT\";\n"
             "    return \"%s %s\";\n"
             "}\n",
             https ? "HTTPS" : "PROXY", https ? proxy + 8 : proxy);
}

/* DNS rebinding: a page of evil.example whose name now points at 127.0.0.1 reaches this
 * server with "Host: evil.example". Only our own names are answered, on every path. */
START_TEST(test_foreign_host_is_421_on_every_path)
{
    static const struct {
        const char *method, *path, *body;
        enum auth auth;
    } paths[] = {
        {"GET", "/", NULL, AUTH_NONE},
        {"GET", "/login", NULL, AUTH_NONE},
        {"GET", "/static/app.js", NULL, AUTH_NONE},
        {"GET", "/proxy.pac", NULL, AUTH_NONE},
        {"GET", "/api/health", NULL, AUTH_NONE},
        {"POST", "/api/login", "{\"user\":\"admin\",\"password\":\"" ADMIN_PW "\"}", AUTH_NONE},
        {"GET", "/api/rules", NULL, AUTH_TOKEN},
        {"POST", "/api/block", "{\"domain\":\"rebind.test\"}", AUTH_TOKEN},
        {"GET", "/no-such-page", NULL, AUTH_NONE},
    };
    unsigned port = wa_port(srv);
    char bad[8][96], good[9][96];

    snprintf(bad[0], sizeof(bad[0]), "Host: evil.example:%u", port);
    snprintf(bad[1], sizeof(bad[1]), "Host: evil.example");
    snprintf(bad[2], sizeof(bad[2]), "Host: localhost.evil.example:%u", port);
    snprintf(bad[3], sizeof(bad[3]), "Host: 127.0.0.1:%u", port + 1 == 65536 ? 1 : port + 1);
    snprintf(bad[4], sizeof(bad[4]), "Host: 127.0.0.2:%u", port);
    snprintf(bad[5], sizeof(bad[5]), "Host: admin.test.evil.example:%u", port);
    snprintf(bad[6], sizeof(bad[6]), "Host: admin.test:%ux", port);
    snprintf(bad[7], sizeof(bad[7]), "Host: ::1:%u", port);
    snprintf(good[0], sizeof(good[0]), "Host: 127.0.0.1:%u", port);
    snprintf(good[1], sizeof(good[1]), "Host: localhost:%u", port);
    snprintf(good[2], sizeof(good[2]), "Host: LOCALHOST.:%u", port);
    snprintf(good[3], sizeof(good[3]), "Host: [::1]:%u", port);
    snprintf(good[4], sizeof(good[4]), "Host: admin.test:%u", port);
    snprintf(good[5], sizeof(good[5]), "Host: ADMIN.test.:%u", port);
    snprintf(good[6], sizeof(good[6]), "Host: pac.example:%u", port);
    snprintf(good[7], sizeof(good[7]), "Host: wpad.lan:%u", port);
    snprintf(good[8], sizeof(good[8]), "Host: 127.0.0.1:%u", port);

    for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
        for (size_t b = 0; b < sizeof(bad) / sizeof(bad[0]); b++) {
            const char *const h[] = {bad[b], NULL};
            struct res *r = http(paths[i].method, paths[i].path, paths[i].body, paths[i].auth, h);

            ck_assert_msg(r->status == 421, "%s %s with %s: %ld", paths[i].method, paths[i].path,
                          bad[b], r->status);
            ck_assert_ptr_nonnull(strstr(r->body, "--admin-host"));
        }
    }
    ck_assert_int_eq(rule_count_of("rebind.test"), 0);
    for (size_t g = 0; g < sizeof(good) / sizeof(good[0]); g++) {
        const char *const h[] = {good[g], NULL};

        ck_assert_msg(http("GET", "/proxy.pac", NULL, AUTH_NONE, h)->status == 200, "%s", good[g]);
        ck_assert_msg(http("GET", "/login", NULL, AUTH_NONE, h)->status == 200, "%s", good[g]);
        ck_assert_msg(http("GET", "/api/rules", NULL, AUTH_TOKEN, h)->status == 200, "%s", good[g]);
    }
}
END_TEST

/* 300 connections that never send a byte used to take all 256 of the server's for 30 s and
 * lock everyone out. Now one address holds at most a few: idle ones from 127.0.0.2 leave
 * room for a request from 127.0.0.1 (all of 127.0.0.0/8 is this machine). */
START_TEST(test_idle_connections_from_one_address_leave_room_for_others)
{
    enum { IDLE = 300 };
    static int fds[IDLE];
    struct sockaddr_in from = {.sin_family = AF_INET}, to = {.sin_family = AF_INET};
    int opened = 0;

    inet_pton(AF_INET, "127.0.0.2", &from.sin_addr);
    inet_pton(AF_INET, "127.0.0.1", &to.sin_addr);
    to.sin_port = htons(wa_port(srv));
    for (int i = 0; i < IDLE; i++) {
        fds[i] = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        ck_assert_int_ge(fds[i], 0);
        ck_assert_int_eq(bind(fds[i], (struct sockaddr *)&from, sizeof(from)), 0);
        /* The kernel completes the handshake whether or not the server accepts. */
        if (connect(fds[i], (struct sockaddr *)&to, sizeof(to)) == 0)
            opened++;
    }
    ck_assert_int_gt(opened, 256);
    json_decref(api("GET", "/api/health", NULL, 200));
    ck_assert_int_eq(http("GET", "/proxy.pac", NULL, AUTH_NONE, NULL)->status, 200);
    for (int i = 0; i < IDLE; i++)
        close(fds[i]);
}
END_TEST

START_TEST(test_proxy_pac_and_settings)
{
    char expect[512], ctype[128];
    struct res *r;
    json_t *j;

    r = http("GET", "/proxy.pac", NULL, AUTH_NONE, NULL);
    ck_assert_int_eq(r->status, 200);
    ck_assert_str_eq(header(r, "Content-Type", ctype, sizeof(ctype)),
                     "application/x-ns-proxy-autoconfig");
    pac_for(expect, sizeof(expect), "proxy.test:3128");
    ck_assert_str_eq(r->body, expect);

    j = api("PUT", "/api/settings", "{\"pac_proxy\":\"gw.test:8080\"}", 200);
    ck_assert_str_eq(jstr(json_object_get(j, "settings"), "pac_proxy"), "gw.test:8080");
    json_decref(j);
    r = http("GET", "/proxy.pac", NULL, AUTH_NONE, NULL);
    pac_for(expect, sizeof(expect), "gw.test:8080");
    ck_assert_str_eq(r->body, expect);

    /* The proxy's TLS port: the PAC file says HTTPS. */
    json_decref(api("PUT", "/api/settings", "{\"pac_proxy\":\"https://gw.test:3129\"}", 200));
    r = http("GET", "/proxy.pac", NULL, AUTH_NONE, NULL);
    pac_for(expect, sizeof(expect), "https://gw.test:3129");
    ck_assert_str_eq(r->body, expect);
    ck_assert(strstr(r->body, "\"HTTPS gw.test:3129\"") != NULL);
    json_decref(api("PUT", "/api/settings", "{\"pac_proxy\":\"gw.test:8080\"}", 200));

    j = api("PUT", "/api/settings", "{\"pac_proxy\":\"x\\\";alert(1)//:1\"}", 400);
    ck_assert_str_eq(jstr(j, "field"), "pac_proxy");
    json_decref(j);
    j = api("PUT", "/api/settings", "{\"pac_proxy\":\"http://gw.test:8080\"}", 400);
    json_decref(j);
    json_decref(api("PUT", "/api/settings", "{\"no_such_key\":\"1\"}", 400));
    j = api("GET", "/api/settings", NULL, 200);
    ck_assert_str_eq(jstr(json_object_get(j, "settings"), "pac_proxy"), "gw.test:8080");
    /* On loopback no other machine can fetch the PAC file: no URL is offered. */
    ck_assert(json_is_null(json_object_get(j, "pac_url")));
    json_decref(j);
    json_decref(api("PUT", "/api/settings", "{\"pac_proxy\":null}", 200));
    r = http("GET", "/proxy.pac", NULL, AUTH_NONE, NULL);
    pac_for(expect, sizeof(expect), "proxy.test:3128");
    ck_assert_str_eq(r->body, expect);
}
END_TEST

START_TEST(test_health_and_reload)
{
    struct res *r = http("GET", "/api/health", NULL, AUTH_NONE, NULL);
    json_t *j;

    ck_assert_int_eq(r->status, 200);
    j = json_loads(r->body, 0, NULL);
    ck_assert(json_is_true(json_object_get(j, "ok")));
    ck_assert(json_is_true(json_object_get(j, "db_ok")));
    ck_assert_str_eq(jstr(j, "version"), PX_VERSION);
    json_decref(j);
    j = api("POST", "/api/reload", NULL, 200);
    json_int_t g1 = jint(j, "generation");
    json_decref(j);
    j = api("POST", "/api/reload", NULL, 200);
    ck_assert_int_gt(jint(j, "generation"), g1);
    json_decref(j);
    json_decref(api("GET", "/api/reload", NULL, 405));
    json_decref(api("GET", "/api/nonsense", NULL, 404));
}
END_TEST

/* The route table answers what it does not hold: a known path with another method 405 with
 * the path's methods in Allow (after the credentials the path needs), an unknown path 404. */
START_TEST(test_unknown_method_is_405_with_allow_and_unknown_path_404)
{
    static const struct {
        const char *method, *path;
        enum auth auth;
        long status;
        const char *allow;
    } cases[] = {
        {"DELETE", "/api/rules", AUTH_TOKEN, 405, "GET, HEAD, POST"},
        {"DELETE", "/api/rules", AUTH_NONE, 401, NULL},
        {"GET", "/api/rules/check", AUTH_TOKEN, 405, "POST"},
        {"PUT", "/api/rules/1/move", AUTH_TOKEN, 405, "POST"},
        {"POST", "/api/health", AUTH_NONE, 405, "GET, HEAD"},
        {"GET", "/api/login", AUTH_NONE, 405, "POST"},
        {"PUT", "/proxy.pac", AUTH_NONE, 405, "GET, HEAD"},
        {"POST", "/log", AUTH_NONE, 405, "GET, HEAD"},
        {"GET", "/api/nonsense", AUTH_TOKEN, 404, NULL},
        {"GET", "/api/nonsense", AUTH_NONE, 401, NULL},
        {"GET", "/nothing", AUTH_NONE, 404, NULL},
        {"POST", "/nothing", AUTH_TOKEN, 404, NULL},
        {"HEAD", "/api/health", AUTH_NONE, 200, NULL},
    };
    char v[128];

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct res *r = http(cases[i].method, cases[i].path, NULL, cases[i].auth, NULL);

        ck_assert_msg(r->status == cases[i].status, "%s %s: %ld", cases[i].method, cases[i].path,
                      r->status);
        if (cases[i].allow)
            ck_assert_str_eq(header(r, "Allow", v, sizeof(v)), cases[i].allow);
        else
            ck_assert_ptr_null(header(r, "Allow", v, sizeof(v)));
    }
}
END_TEST

/* A body refused by its Content-Length is answered before it is read, and the server closes:
 * a client still sending may then see its send fail before it reads the 413. Browsers and
 * curl ask first for large bodies (Expect: 100-continue), and so do these tests. */
static const char *const expect_continue[] = {"Expect: 100-continue", NULL};

START_TEST(test_bodies_are_bounded)
{
    size_t big = (1u << 20) + 100;
    char *body = malloc(big);

    memset(body, ' ', big);
    body[0] = '{';
    body[big - 1] = '}';
    struct res *r = http_raw("POST", "/api/rules", body, big, AUTH_TOKEN, expect_continue, false);
    ck_assert_int_eq(r->status, 413);
    /* without a login, a public route takes 16 KiB, and says so */
    r = http_raw("POST", "/api/login", body, (16u << 10) + 1, AUTH_NONE, expect_continue, false);
    ck_assert_int_eq(r->status, 413);
    ck_assert_ptr_nonnull(strstr(r->body, "16 KiB"));
    ck_assert_ptr_nonnull(strstr(r->body, "log in first"));
    r = http_raw("POST", "/api/login", body, 16u << 10, AUTH_NONE, NULL, false);
    ck_assert_int_eq(r->status, 400); /* read in full, then refused as the bad login it is */
    /* imports may be larger */
    memset(body, '\n', big);
    memcpy(body, "a.big.test", 10);
    r = http_raw("PUT", "/api/lists/big", body, big, AUTH_TOKEN, NULL, false);
    ck_assert_int_eq(r->status, 200);
    free(body);
    json_decref(api("DELETE", "/api/lists/big", NULL, 200));
}
END_TEST

/* A 28 MB policy held the admin server at 570 MB of RSS (476 MB after). A policy import is
 * now at most 8 MiB, and a list 32 MiB; larger is a 413 that says what to do instead,
 * before the body is read. */
START_TEST(test_imports_are_bounded_with_a_clear_413)
{
    size_t policy = (8u << 20) + 1, list = (32u << 20) + 1;
    char *body = malloc(list);
    json_t *j;

    ck_assert_ptr_nonnull(body);
    for (size_t i = 0; i + 25 <= list; i += 25)
        memcpy(body + i, "deny domain x0000.test\n\n\n", 25);
    struct res *r =
        http_raw("PUT", "/api/policy", body, policy, AUTH_TOKEN, expect_continue, false);
    ck_assert_int_eq(r->status, 413);
    j = json_loads(r->body, 0, NULL);
    ck_assert_ptr_nonnull(strstr(jstr(j, "error"), "8 MiB"));
    ck_assert_ptr_nonnull(strstr(jstr(j, "error"), "/api/lists/NAME"));
    json_decref(j);
    r = http_raw("PUT", "/api/lists/huge", body, list, AUTH_TOKEN, expect_continue, false);
    ck_assert_int_eq(r->status, 413);
    ck_assert_ptr_nonnull(strstr(r->body, "32 MiB"));
    /* at the limit, a policy is taken (one rule and blank lines: quick to compile) */
    memset(body + 25, '\n', policy - 25);
    r = http_raw("PUT", "/api/policy", body, policy - 1, AUTH_TOKEN, NULL, false);
    ck_assert_msg(r->status == 200, "%ld %s", r->status, r->body);
    free(body);
    json_decref(api("PUT", "/api/policy", "", 200));
}
END_TEST

/* ---- static files and headers ---- */

START_TEST(test_static_files_and_traversal)
{
    static const struct {
        const char *path;
        long status;
        const char *ctype;
        enum auth auth;
    } cases[] = {
        {"/static/app.css", 200, "text/css; charset=utf-8", AUTH_NONE},
        {"/static/common.js", 200, "text/javascript; charset=utf-8", AUTH_NONE},
        {"/login", 200, "text/html; charset=utf-8", AUTH_NONE},
        {"/", 303, NULL, AUTH_NONE},
        {"/policy", 303, NULL, AUTH_NONE},
        {"/", 200, "text/html; charset=utf-8", AUTH_TOKEN},
        {"/log", 200, "text/html; charset=utf-8", AUTH_TOKEN},
        {"/static/../wa.h", 404, NULL, AUTH_TOKEN},
        {"/static/%2e%2e/wa.h", 404, NULL, AUTH_TOKEN},
        {"/static/%2e%2e%2fwa.h", 404, NULL, AUTH_TOKEN},
        {"/static/..%2fwa.h", 404, NULL, AUTH_TOKEN},
        {"/static/../../CMakeLists.txt", 404, NULL, AUTH_TOKEN},
        {"/static/", 404, NULL, AUTH_TOKEN},
        {"/static/nope.js", 404, NULL, AUTH_TOKEN},
        {"/wa.h", 404, NULL, AUTH_TOKEN},
        {"/static/%00app.css", 404, NULL, AUTH_TOKEN},
    };
    char ctype[128], loc[128];

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct res *r = http_raw("GET", cases[i].path, NULL, 0, cases[i].auth, NULL, true);
        ck_assert_msg(r->status == cases[i].status, "%s: %ld", cases[i].path, r->status);
        if (cases[i].ctype)
            ck_assert_str_eq(header(r, "Content-Type", ctype, sizeof(ctype)), cases[i].ctype);
        /* A page sends the browser to log in, and to come back afterwards. */
        if (r->status == 303)
            ck_assert_str_eq(header(r, "Location", loc, sizeof(loc)),
                             strcmp(cases[i].path, "/") ? "/login?next=/policy" : "/login");
        if (r->status == 404)
            ck_assert_ptr_null(strstr(r->body, "PX_WA_H"));
    }
}
END_TEST

START_TEST(test_security_headers_on_every_response)
{
    static const struct {
        const char *method, *path;
        enum auth auth;
        bool api;
    } cases[] = {
        {"GET", "/api/rules", AUTH_TOKEN, true},
        {"GET", "/api/rules", AUTH_NONE, true},
        {"GET", "/api/health", AUTH_NONE, true},
        {"POST", "/api/rules", AUTH_TOKEN, true},
        {"GET", "/static/app.css", AUTH_NONE, false},
        {"GET", "/login", AUTH_NONE, false},
        {"GET", "/nothing", AUTH_NONE, false},
        {"GET", "/proxy.pac", AUTH_NONE, false},
        {"GET", "/", AUTH_NONE, false},
    };
    char v[512];

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct res *r = http(cases[i].method, cases[i].path, NULL, cases[i].auth, NULL);
        ck_assert_msg(header(r, "Content-Security-Policy", v, sizeof(v)), "%s", cases[i].path);
        ck_assert_str_eq(v, CSP);
        ck_assert_str_eq(header(r, "X-Content-Type-Options", v, sizeof(v)), "nosniff");
        ck_assert_str_eq(header(r, "Referrer-Policy", v, sizeof(v)), "no-referrer");
        if (cases[i].api)
            ck_assert_str_eq(header(r, "Cache-Control", v, sizeof(v)), "no-store");
    }
}
END_TEST

/* ---- start-up ---- */

START_TEST(test_non_loopback_listen_refused)
{
    static const struct {
        const char *listen;
        const char *err;
    } cases[] = {
        {"0.0.0.0:0", "admin listen address 0.0.0.0:0 is not loopback; use TLS (--admin-tls), "
                      "or set allow_remote (--admin-allow-remote) to expose it without TLS"},
        {"192.0.2.1:8080", "admin listen address 192.0.2.1:8080 is not loopback; use TLS "
                           "(--admin-tls), or set allow_remote (--admin-allow-remote) to expose "
                           "it without TLS"},
        {"[::]:0", "admin listen address [::]:0 is not loopback; use TLS (--admin-tls), or "
                   "set allow_remote (--admin-allow-remote) to expose it without TLS"},
        {"localhost:80", "admin listen address localhost:80: expected IP:PORT or [IPv6]:PORT"},
        {"127.0.0.1", "admin listen address 127.0.0.1: expected IP:PORT or [IPv6]:PORT"},
        {"127.0.0.1:99999", "admin listen address 127.0.0.1:99999: expected IP:PORT or "
                            "[IPv6]:PORT"},
    };
    struct test_tmpdir t;
    char err[256], pw[64], again[64];
    struct wa_options o;
    bool first_run;

    test_tmpdir_make(&t);
    memset(&o, 0, sizeof(o));
    o.data_dir = t.dir;
    o.db_path = t.db;
    o.static_dir = PX_TEST_STATIC_DIR;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        o.listen = cases[i].listen;
        ck_assert_ptr_null(wa_start(&o, &first_run, err, sizeof(err)));
        ck_assert_str_eq(err, cases[i].err);
        ck_assert(!first_run);
    }
    /* nothing was created by the refusals; a loopback start then creates the admin */
    ck_assert_int_eq(access(t.db, F_OK), -1);
    ck_assert(!read_line(t.dir, "admin.password", pw, sizeof(pw)));
    o.listen = "127.0.0.1:0";
    struct wa_server *s = wa_start(&o, &first_run, err, sizeof(err));
    ck_assert_msg(s != NULL, "%s", err);
    ck_assert(first_run);
    ck_assert(read_line(t.dir, "admin.password", pw, sizeof(pw)));
    ck_assert_int_eq(strlen(pw), 16);
    ck_assert_int_eq(strcspn(pw, "0O1lI"), 16);
    wa_stop(s);
    s = wa_start(&o, &first_run, err, sizeof(err)); /* second run: no new password */
    ck_assert_msg(s != NULL, "%s", err);
    ck_assert(!first_run);
    ck_assert(read_line(t.dir, "admin.password", again, sizeof(again)));
    ck_assert_str_eq(again, pw); /* not changed yet: still wanted */
    wa_stop(s);
    test_tmpdir_remove(&t);
}
END_TEST

/* Listening on every address, the PAC URL offered is one other machines can use: by the
 * first admin host name, never a loopback address. (Port 0: only this test's requests, over
 * 127.0.0.1, reach it.) */
START_TEST(test_pac_url_names_a_reachable_host)
{
    static const char *const hosts[] = {"Proxy.Office.test, other.test"};
    char err[256], want[128];
    struct test_tmpdir t;
    struct wa_options o;
    bool first_run;
    json_t *j;

    test_tmpdir_make(&t);
    memset(&o, 0, sizeof(o));
    o.listen = "0.0.0.0:0";
    o.allow_remote = true;
    o.hosts = hosts;
    o.nhosts = 1;
    o.data_dir = t.dir;
    o.db_path = t.db;
    o.static_dir = PX_TEST_STATIC_DIR;
    struct wa_server *s = wa_start(&o, &first_run, err, sizeof(err));
    ck_assert_msg(s != NULL, "%s", err);
    snprintf(base, sizeof(base), "http://127.0.0.1:%u", (unsigned)wa_port(s));
    ck_assert(read_line(t.dir, "admin.token", token, sizeof(token)));
    j = api("GET", "/api/settings", NULL, 200);
    snprintf(want, sizeof(want), "http://proxy.office.test:%u/proxy.pac", (unsigned)wa_port(s));
    ck_assert_str_eq(jstr(j, "pac_url"), want);
    json_decref(j);
    wa_stop(s);
    test_tmpdir_remove(&t);
}
END_TEST

START_TEST(test_first_login_must_change_password)
{
    char err[256], path[128], pw[64], body[256];
    char sid[128], csrf[128], hc[160], hx[160];
    struct test_tmpdir t;
    struct wa_options o;
    struct stat sb;
    struct res *r;
    json_t *j;
    bool first_run;

    test_tmpdir_make(&t);
    memset(&o, 0, sizeof(o));
    o.listen = "127.0.0.1:0";
    o.data_dir = t.dir;
    o.db_path = t.db;
    o.static_dir = PX_TEST_STATIC_DIR;
    struct wa_server *s = wa_start(&o, &first_run, err, sizeof(err));
    ck_assert_msg(s != NULL, "%s", err);
    ck_assert(first_run);
    /* This child's own server: the helpers talk to it. */
    snprintf(base, sizeof(base), "http://127.0.0.1:%u", (unsigned)wa_port(s));
    ck_assert(read_line(t.dir, "admin.token", token, sizeof(token)));

    /* The password is in a file only its owner reads. */
    snprintf(path, sizeof(path), "%s/admin.password", t.dir);
    ck_assert_int_eq(stat(path, &sb), 0);
    ck_assert_int_eq(sb.st_mode & 0777, 0600);
    ck_assert(read_line(t.dir, "admin.password", pw, sizeof(pw)));
    ck_assert_int_eq(strlen(pw), 16);

    /* Its first login is told to change it, and may do nothing else. */
    snprintf(body, sizeof(body), "{\"user\":\"admin\",\"password\":\"%s\"}", pw);
    r = http("POST", "/api/login", body, AUTH_NONE, NULL);
    ck_assert_int_eq(r->status, 200);
    j = json_loads(r->body, 0, NULL);
    ck_assert(json_is_true(json_object_get(j, "must_change_password")));
    json_decref(j);
    login("admin", pw, sid, sizeof(sid), csrf, sizeof(csrf));
    snprintf(hc, sizeof(hc), "Cookie: pxsid=%s", sid);
    snprintf(hx, sizeof(hx), "X-CSRF-Token: %s", csrf);
    const char *const h[] = {hc, hx, NULL};
    r = http("GET", "/api/session", NULL, AUTH_NONE, h);
    ck_assert_int_eq(r->status, 200);
    j = json_loads(r->body, 0, NULL);
    ck_assert(json_is_true(json_object_get(j, "must_change_password")));
    json_decref(j);
    ck_assert_int_eq(http("GET", "/api/rules", NULL, AUTH_NONE, h)->status, 403);
    ck_assert_int_eq(
        http("PUT", "/api/admins/eve", "{\"password\":\"long-enough-pw\"}", AUTH_NONE, h)->status,
        403);
    r = http("GET", "/", NULL, AUTH_NONE, h); /* pages send it to the login page */
    ck_assert_int_eq(r->status, 303);
    ck_assert_int_eq(http("GET", "/login", NULL, AUTH_NONE, h)->status, 200);
    ck_assert_int_eq(
        http("PUT", "/api/admins/admin", "{\"password\":\"short\"}", AUTH_NONE, h)->status, 400);
    ck_assert_int_eq(access(path, F_OK), 0);

    /* The new password: the file goes, the same session may do everything. */
    r = http("PUT", "/api/admins/admin", "{\"password\":\"my-own-password\"}", AUTH_NONE, h);
    ck_assert_msg(r->status == 200, "%ld %s", r->status, r->body);
    ck_assert_int_eq(access(path, F_OK), -1);
    ck_assert_int_eq(http("GET", "/api/rules", NULL, AUTH_NONE, h)->status, 200);
    ck_assert_int_eq(http("GET", "/", NULL, AUTH_NONE, h)->status, 200);
    r = http("POST", "/api/login", body, AUTH_NONE, NULL);
    ck_assert_int_eq(r->status, 401); /* the generated one is void */
    r = http("POST", "/api/login", "{\"user\":\"admin\",\"password\":\"my-own-password\"}",
             AUTH_NONE, NULL);
    ck_assert_int_eq(r->status, 200);
    j = json_loads(r->body, 0, NULL);
    ck_assert(json_is_false(json_object_get(j, "must_change_password")));
    json_decref(j);

    /* A restart neither makes a new password nor brings the file back. */
    wa_stop(s);
    s = wa_start(&o, &first_run, err, sizeof(err));
    ck_assert_msg(s != NULL, "%s", err);
    ck_assert(!first_run);
    ck_assert_int_eq(access(path, F_OK), -1);
    wa_stop(s);
    test_tmpdir_remove(&t);
}
END_TEST

static Suite *wa_suite(void)
{
    Suite *s = suite_create("wa_api");
    TCase *api_tc = tcase_create("api");
    TCase *throttle = tcase_create("throttle");
    TCase *unknown = tcase_create("unknown_name");
    TCase *rotating = tcase_create("rotating_addresses");
    TCase *start = tcase_create("start");

    tcase_add_unchecked_fixture(api_tc, server_up, server_down);
    tcase_set_timeout(api_tc, 60);
    tcase_add_test(api_tc, test_no_credentials_is_401);
    tcase_add_test(api_tc, test_bearer_token_works_and_wrong_token_is_401);
    tcase_add_test(api_tc, test_login_sets_strict_httponly_cookie);
    tcase_add_test(api_tc, test_wrong_password_is_401);
    tcase_add_test(api_tc, test_state_change_with_session_needs_csrf);
    tcase_add_test(api_tc, test_rules_crud_move_and_positions);
    tcase_add_test(api_tc, test_bad_rule_is_400_with_acl_message);
    tcase_add_test(api_tc, test_rule_naming_missing_list_is_400_and_undone);
    tcase_add_test(api_tc, test_change_that_does_not_compile_never_reaches_the_store);
    tcase_add_test(api_tc, test_block_unblock_allow);
    tcase_add_test(api_tc, test_policy_put_get_round_trip);
    tcase_add_test(api_tc, test_url_test_names_deciding_rule);
    tcase_add_test(api_tc, test_url_test_judges_the_whole_url_up_to_the_request_line_limit);
    tcase_add_test(api_tc, test_url_test_uses_the_canonical_host);
    tcase_add_test(api_tc, test_url_test_without_a_string_url_is_400);
    tcase_add_test(api_tc, test_policy_not_utf8_is_refused_naming_line_and_old_policy_stays);
    tcase_add_test(api_tc, test_stored_rule_not_utf8_is_listed_escaped);
    tcase_add_test(api_tc, test_url_test_reason_cut_inside_a_character_is_json);
    tcase_add_test(api_tc, test_list_import_not_utf8_line_is_quoted_escaped);
    tcase_add_test(api_tc, test_list_import_summary_and_delete_guard);
    tcase_add_test(api_tc, test_users_and_admins);
    tcase_add_test(api_tc, test_roles_are_enforced_by_the_api);
    tcase_add_test(api_tc, test_stats_has_every_counter_of_the_table);
    tcase_add_test(api_tc, test_metrics_text_and_probes);
    tcase_add_test(api_tc, test_logs_search_filters_paging_and_escaping);
    tcase_add_test(api_tc, test_long_log_search_text_is_400_not_500);
    tcase_add_test(api_tc, test_log_rows_carry_rule_text_and_reason);
    tcase_add_test(api_tc, test_audit_rows_appear);
    tcase_add_test(api_tc, test_foreign_host_is_421_on_every_path);
    tcase_add_test(api_tc, test_idle_connections_from_one_address_leave_room_for_others);
    tcase_add_test(api_tc, test_proxy_pac_and_settings);
    tcase_add_test(api_tc, test_health_and_reload);
    tcase_add_test(api_tc, test_unknown_method_is_405_with_allow_and_unknown_path_404);
    tcase_add_test(api_tc, test_bodies_are_bounded);
    tcase_add_test(api_tc, test_imports_are_bounded_with_a_clear_413);
    tcase_add_test(api_tc, test_static_files_and_traversal);
    tcase_add_test(api_tc, test_security_headers_on_every_response);
    suite_add_tcase(s, api_tc);

    tcase_add_unchecked_fixture(throttle, server_up, server_down);
    tcase_set_timeout(throttle, 60);
    tcase_add_test(throttle, test_login_throttled_after_5_failures);
    suite_add_tcase(s, throttle);
    /* A server each: throttle counts must start from zero. */
    tcase_add_unchecked_fixture(unknown, server_up, server_down);
    tcase_set_timeout(unknown, 60);
    tcase_add_test(unknown, test_unknown_admin_name_costs_a_password_check);
    suite_add_tcase(s, unknown);
    tcase_add_unchecked_fixture(rotating, server_up, server_down);
    tcase_set_timeout(rotating, 60);
    tcase_add_test(rotating, test_login_guesses_from_rotating_addresses_are_throttled);
    suite_add_tcase(s, rotating);

    tcase_set_timeout(start, 60);
    tcase_add_test(start, test_non_loopback_listen_refused);
    tcase_add_test(start, test_first_login_must_change_password);
    tcase_add_test(start, test_pac_url_names_a_reachable_host);
    suite_add_tcase(s, start);
    return s;
}

int main(void)
{
    SRunner *sr;
    int failed;

    curl_global_init(CURL_GLOBAL_DEFAULT);
    sr = srunner_create(wa_suite());
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    curl_global_cleanup();
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
