/* test_acl_eval.c: decisions. A table of policies and requests with the expected action,
 * deciding rule and reason; then a randomised check that the indexed evaluation picks the
 * same rule as trying the rules one at a time in order. */
#include "acl/acl.h"

#include <arpa/inet.h>
#include <check.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { SUN, MON, TUE, WED, THU, FRI, SAT };

static const char *const p_domain[] = {
    "deny domain example.com",
    "deny domain xn--bcher-kva.example",
    "deny domain 192.0.2.7",
    "deny domain 2001:db8::1",
    "deny domain ::ffff:192.0.2.8",
    "deny domain Trailing.Test.",
    NULL,
};

static const char *const p_url[] = {
    "deny url-regex ^https?://[^/]+/ads/",
    "deny host-regex ^tracker[0-9]*\\.",
    "deny url-regex ^http://plain\\.test/$",
    "deny url-regex ^https://tunnel\\.test:8443/$",
    "deny url-regex ^https://tunnel\\.test/$",
    "deny url-regex /a%2Fb",
    "deny url-regex ^http://upper\\.test/~user/",
    "deny url-regex \"^http://space\\.test/a b\"",
    "deny url-regex (a+)+$",
    "deny url-regex ^http://\\[2001:db8::5\\]/v6",
    "deny url-regex [0-9]$", /* joins (a+)+$ in the prefilter group */
    NULL,
};

static const char *const p_net[] = {
    "allow client 192.0.2.0/24",
    "deny client 10.9.0.0/16",
    "deny method PUT,DELETE",
    "deny port 25,8000-8999",
    "deny client 2001:db8:1::/48",
    "allow client 203.0.113.5",
    NULL,
};

static const char *const p_sched[] = {
    "deny domain night.test schedule mon-fri 22:00-06:00",
    "deny domain work.test schedule mon-fri 09:00-17:00",
    "deny domain weekend.test schedule sat,sun 00:00-24:00",
    NULL,
};

static const char *const p_mixed[] = {
    "allow url-regex ^http://ads\\.example\\.com/ok/",
    "deny domain example.com",
    "allow host-regex ^www\\.",
    "deny list ads",
    "deny any",
    NULL,
};

static const char *const p_auth[] = {
    "deny domain off.test", /* disabled below */
    "deny domain social.test users bob,carol",
    "deny domain video.test clients 10.1.0.0/16 users dave",
    "allow user alice clients 10.2.0.0/16",
    NULL,
};

static const char *const p_custom[] = {NULL};

/* A regex that cannot decide must not let a request through: not past a deny rule, and not
 * by an allow rule. */
static const char *const p_undecided[] = {
    "allow url-regex ^http://allow\\.test/(a+)+$",
    "deny url-regex ^http://deny\\.test/(a+)+$",
    "deny host-regex ^(b+)+$",
    NULL,
};

/* An allow list for one site and a deny rule for a path: what loose servers read must pass
 * both. */
static const char *const p_loose[] = {
    "allow url-regex ^http://app\\.test/public/",
    "deny url-regex ^http://app\\.test/",
    "deny url-regex ^https?://[^/]+/admin(/|$)",
    NULL,
};

static const char *const p_dest[] = {
    "allow domain intranet.test",
    "deny dest 10.0.0.0/8,fd00::/8",
    "deny dest 127.0.0.0/8 clients 10.9.0.0/16",
    "allow dest 192.0.2.0/24",
    "deny domain 127.0.0.1",
    "deny url-regex ^http://[^/]+/deny-after/",
    "deny dest 198.51.100.0/24 users bob",
    NULL,
};

enum {
    P_DOMAIN,
    P_URL,
    P_NET,
    P_SCHED,
    P_MIXED,
    P_AUTH,
    P_CUSTOM,
    P_UNDECIDED,
    P_DEST,
    P_LOOSE,
    P_COUNT
};

static const char *const *const policies[P_COUNT] = {
    p_domain, p_url, p_net, p_sched, p_mixed, p_auth, p_custom, p_undecided, p_dest, p_loose};
static struct acl_set *sets[P_COUNT];
static struct acl_scratch *scratch;

static const char *const ads_domains[] = {"tracker.test", "www.adnet.test"};
static const struct acl_list_src lists[] = {{"ads", ads_domains, 2}};

static void setup(void)
{
    for (int p = 0; p < P_COUNT; p++) {
        struct acl_rule_src rules[16];
        size_t n = 0;
        for (; policies[p][n]; n++) {
            rules[n].id = (int)n + 1;
            rules[n].enabled = !(p == P_AUTH && n == 0);
            rules[n].text = policies[p][n];
        }
        struct acl_config cfg = {.rules = rules, .nrules = n, .lists = lists, .nlists = 1};
        if (p == P_CUSTOM)
            cfg.allowed_clients = "198.51.100.0/24";
        struct acl_error err;
        sets[p] = acl_set_compile(&cfg, &err);
        ck_assert_msg(sets[p] != NULL, "policy %d: %s", p, err.msg);
    }
    scratch = acl_scratch_new();
    ck_assert_ptr_nonnull(scratch);
}

static void teardown(void)
{
    for (int p = 0; p < P_COUNT; p++)
        acl_set_free(sets[p]);
    acl_scratch_free(scratch);
}

/* A request from text: "GET http://host:port/path" or "CONNECT host:port". */
struct req_buf {
    struct acl_request req;
    struct sockaddr_storage ss;
    struct acl_host host; /* canonical, as proxyd's parser hands it over */
    char scheme[16], path[1024];
};

static void req_make(struct req_buf *rb, const char *line, const char *client, const char *user,
                     int wday, int minute)
{
    memset(rb, 0, sizeof(*rb));
    const char *sp = strchr(line, ' ');
    ck_assert_ptr_nonnull(sp);
    struct acl_request *r = &rb->req;
    r->method = line;
    r->method_len = (size_t)(sp - line);
    const char *u = sp + 1;
    const char *hs;
    if (r->method_len == 7 && memcmp(line, "CONNECT", 7) == 0) {
        strcpy(rb->scheme, "https");
        hs = u;
    } else {
        const char *sep = strstr(u, "://");
        ck_assert_ptr_nonnull(sep);
        memcpy(rb->scheme, u, (size_t)(sep - u));
        hs = sep + 3;
    }
    const char *pe = strchr(hs, '/');
    const char *he = pe ? pe : hs + strlen(hs);
    if (pe)
        strcpy(rb->path, pe);
    const char *colon = NULL;
    if (*hs == '[') {
        const char *rb_end = memchr(hs, ']', (size_t)(he - hs));
        colon = (rb_end && rb_end + 1 < he && rb_end[1] == ':') ? rb_end + 1 : NULL;
    } else {
        colon = memchr(hs, ':', (size_t)(he - hs));
    }
    const char *hend = colon ? colon : he, *why;
    ck_assert_msg(acl_host_parse(hs, (size_t)(hend - hs), &rb->host, &why) == 0, "%s: %s", line,
                  why);
    bool https = strcasecmp(rb->scheme, "https") == 0;
    r->port = colon ? (uint16_t)atoi(colon + 1) : (https ? 443 : 80);
    r->scheme = rb->scheme;
    r->host = &rb->host;
    r->path = rb->path;
    r->path_len = strlen(rb->path);
    r->user = user;
    r->clock.wday = wday;
    r->clock.minute = minute;
    if (strchr(client, ':')) {
        struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&rb->ss;
        s6->sin6_family = AF_INET6;
        ck_assert_int_eq(inet_pton(AF_INET6, client, &s6->sin6_addr), 1);
    } else {
        struct sockaddr_in *s4 = (struct sockaddr_in *)&rb->ss;
        s4->sin_family = AF_INET;
        ck_assert_int_eq(inet_pton(AF_INET, client, &s4->sin_addr), 1);
    }
    r->client = (const struct sockaddr *)&rb->ss;
}

#define LAN "10.0.0.5"
#define H(h, m) ((h)*60 + (m))

struct eval_case {
    int policy;
    const char *request;
    const char *client;
    const char *user;
    int wday, minute;
    enum acl_action want;
    int want_rule;
    const char *want_reason; /* substring, or NULL */
};

static const struct eval_case cases[] = {
    /* domain: the domain and its subdomains, nothing that only looks alike */
    {P_DOMAIN, "GET http://example.com/", LAN, NULL, MON, 600, ACL_DENY, 1,
     "rule 1: deny domain example.com"},
    {P_DOMAIN, "GET http://www.Example.COM./x", LAN, NULL, MON, 600, ACL_DENY, 1, NULL},
    {P_DOMAIN, "GET http://a.b.example.com/", LAN, NULL, MON, 600, ACL_DENY, 1, NULL},
    {P_DOMAIN, "GET http://notexample.com/", LAN, NULL, MON, 600, ACL_ALLOW, 0,
     "default: client 10.0.0.5 allowed"},
    {P_DOMAIN, "GET http://example.com.evil/", LAN, NULL, MON, 600, ACL_ALLOW, 0, NULL},
    {P_DOMAIN, "GET http://xample.com/", LAN, NULL, MON, 600, ACL_ALLOW, 0, NULL},
    {P_DOMAIN, "GET http://com/", LAN, NULL, MON, 600, ACL_ALLOW, 0, NULL},
    {P_DOMAIN, "CONNECT example.com:443", LAN, NULL, MON, 600, ACL_DENY, 1, NULL},
    {P_DOMAIN, "GET http://xn--bcher-kva.example/", LAN, NULL, MON, 600, ACL_DENY, 2, NULL},
    {P_DOMAIN, "GET http://WWW.XN--BCHER-KVA.EXAMPLE/", LAN, NULL, MON, 600, ACL_DENY, 2, NULL},
    {P_DOMAIN, "GET http://bcher-kva.example/", LAN, NULL, MON, 600, ACL_ALLOW, 0, NULL},
    {P_DOMAIN, "GET http://192.0.2.8/", LAN, NULL, MON, 600, ACL_DENY, 5,
     "rule 5: deny domain 192.0.2.8"},
    {P_DOMAIN, "GET http://[::ffff:192.0.2.8]/", LAN, NULL, MON, 600, ACL_DENY, 5, NULL},
    {P_DOMAIN, "GET http://[::ffff:c000:207]/", LAN, NULL, MON, 600, ACL_DENY, 3, NULL},
    {P_DOMAIN, "GET http://[0:0:0:0:0:ffff:192.0.2.7]:81/", LAN, NULL, MON, 600, ACL_DENY, 3, NULL},
    {P_DOMAIN, "GET http://trailing.test./", LAN, NULL, MON, 600, ACL_DENY, 6, NULL},
    {P_DOMAIN, "GET http://trailing.test/", LAN, NULL, MON, 600, ACL_DENY, 6,
     "rule 6: deny domain trailing.test"},
    {P_DOMAIN, "GET http://192.0.2.7/", LAN, NULL, MON, 600, ACL_DENY, 3, NULL},
    {P_DOMAIN, "GET http://192.0.2.7:8080/", LAN, NULL, MON, 600, ACL_DENY, 3, NULL},
    {P_DOMAIN, "GET http://192.0.2.70/", LAN, NULL, MON, 600, ACL_ALLOW, 0, NULL},
    {P_DOMAIN, "GET http://192.0.2.7.example/", LAN, NULL, MON, 600, ACL_ALLOW, 0, NULL},
    {P_DOMAIN, "GET http://[2001:DB8:0::1]:8080/", LAN, NULL, MON, 600, ACL_DENY, 4, NULL},
    {P_DOMAIN, "CONNECT [2001:db8::1]:443", LAN, NULL, MON, 600, ACL_DENY, 4, NULL},
    {P_DOMAIN, "GET http://[2001:db8::2]/", LAN, NULL, MON, 600, ACL_ALLOW, 0, NULL},
    /* url-regex on the normalised URL, host-regex on the normalised host */
    {P_URL, "GET http://x.test/%61ds/1", LAN, NULL, MON, 600, ACL_DENY, 1, NULL},
    {P_URL, "GET http://x.test/ads/", LAN, NULL, MON, 600, ACL_DENY, 1, NULL},
    {P_URL, "GET HTTP://X.TEST:80/ads/", LAN, NULL, MON, 600, ACL_DENY, 1, NULL},
    {P_URL, "GET https://x.test/ads/", LAN, NULL, MON, 600, ACL_DENY, 1, NULL},
    {P_URL, "GET http://x.test/adz/", LAN, NULL, MON, 600, ACL_ALLOW, 0, NULL},
    {P_URL, "GET http://x.test/x/ads/", LAN, NULL, MON, 600, ACL_ALLOW, 0, NULL},
    /* Dot segments and empty segments are resolved as the origin resolves them. */
    {P_URL, "GET http://x.test/x/../ads/", LAN, NULL, MON, 600, ACL_DENY, 1, NULL},
    {P_URL, "GET http://x.test//ads/", LAN, NULL, MON, 600, ACL_DENY, 1, NULL},
    {P_URL, "GET http://x.test/./ads/", LAN, NULL, MON, 600, ACL_DENY, 1, NULL},
    {P_URL, "GET http://x.test/%2e%2E/ads/", LAN, NULL, MON, 600, ACL_DENY, 1, NULL},
    {P_URL, "GET http://x.test/x/y/.././../ads/", LAN, NULL, MON, 600, ACL_DENY, 1, NULL},
    {P_URL, "GET http://x.test/ads", LAN, NULL, MON, 600, ACL_ALLOW, 0, NULL},
    {P_URL, "GET http://x.test/ads/..", LAN, NULL, MON, 600, ACL_ALLOW, 0, NULL},
    {P_URL, "GET http://x.test/z?/../ads/", LAN, NULL, MON, 600, ACL_ALLOW, 0, NULL},
    {P_URL, "GET http://plain.test/.", LAN, NULL, MON, 600, ACL_DENY, 3, NULL},
    {P_URL, "GET http://plain.test/a/..", LAN, NULL, MON, 600, ACL_DENY, 3, NULL},
    {P_URL, "GET http://plain.test//", LAN, NULL, MON, 600, ACL_DENY, 3, NULL},
    {P_URL, "GET http://Tracker12.test/", LAN, NULL, MON, 600, ACL_DENY, 2,
     "rule 2: deny host-regex"},
    {P_URL, "GET http://my.tracker12.test/", LAN, NULL, MON, 600, ACL_ALLOW, 0, NULL},
    {P_URL, "GET http://plain.test:80/", LAN, NULL, MON, 600, ACL_DENY, 3, NULL},
    {P_URL, "GET http://plain.test", LAN, NULL, MON, 600, ACL_DENY, 3, NULL},
    {P_URL, "GET http://plain.test:8080/", LAN, NULL, MON, 600, ACL_ALLOW, 0, NULL},
    {P_URL, "CONNECT tunnel.test:8443", LAN, NULL, MON, 600, ACL_DENY, 4, NULL},
    {P_URL, "CONNECT tunnel.test:443", LAN, NULL, MON, 600, ACL_DENY, 5, NULL},
    {P_URL, "GET http://enc.test/a%2fb", LAN, NULL, MON, 600, ACL_DENY, 6, NULL},
    {P_URL, "GET http://enc.test/a/b", LAN, NULL, MON, 600, ACL_ALLOW, 0, NULL},
    /* An encoded slash that delimits a dot segment: nginx reads "/x/..%2fads/" as "/ads/",
     * others as one segment; neither reading may decide, so it denies, saying why. */
    {P_URL, "GET http://x.test/x/..%2fads/", LAN, NULL, MON, 600, ACL_DENY, 0, "encoded slash"},
    {P_URL, "GET http://x.test/x/%2e%2e%2Fads/", LAN, NULL, MON, 600, ACL_DENY, 0, "encoded slash"},
    {P_URL, "GET http://x.test/x%2F..%2Fads/", LAN, NULL, MON, 600, ACL_DENY, 0, "encoded slash"},
    {P_URL, "GET http://x.test/x/.%5cads/", LAN, NULL, MON, 600, ACL_DENY, 0, "encoded slash"},
    {P_URL, "GET http://x.test/a..%2fb/ads..", LAN, NULL, MON, 600, ACL_ALLOW, 0, NULL},
    {P_URL, "GET http://x.test/x?q=..%2f", LAN, NULL, MON, 600, ACL_ALLOW, 0, NULL},
    /* Tomcat and Jetty drop a segment's ";parameters" ("/ads;v=1/" is "/ads/", "/x/..;/ads/"
     * is "/ads/"), IIS takes "\\" and "%5C" for "/", nginx decodes "%2F": a path must pass
     * as those servers read it too. */
    {P_URL, "GET http://x.test/ads;v=1/x", LAN, NULL, MON, 600, ACL_DENY, 1,
     "rule 1: deny url-regex ^https?://[^/]+/ads/ (path read without ;parameters"},
    {P_URL, "GET http://x.test/pub/..;/ads/", LAN, NULL, MON, 600, ACL_DENY, 1, NULL},
    {P_URL, "GET http://x.test/pub/..;x=y/ads/", LAN, NULL, MON, 600, ACL_DENY, 1, NULL},
    {P_URL, "GET http://x.test/pub\\..\\ads\\", LAN, NULL, MON, 600, ACL_DENY, 1, NULL},
    {P_URL, "GET http://x.test/ads\\x", LAN, NULL, MON, 600, ACL_DENY, 1, NULL},
    {P_URL, "GET http://x.test/ads%5cx", LAN, NULL, MON, 600, ACL_DENY, 1, NULL},
    {P_URL, "GET http://x.test/ads%2Fx", LAN, NULL, MON, 600, ACL_DENY, 1, NULL},
    {P_URL, "GET http://x.test/app;jsessionid=A1/ok", LAN, NULL, MON, 600, ACL_ALLOW, 0, NULL},
    {P_URL, "GET http://x.test/ad;s/", LAN, NULL, MON, 600, ACL_ALLOW, 0, NULL},
    {P_URL, "GET http://x.test/x?q=;/ads/\\", LAN, NULL, MON, 600, ACL_ALLOW, 0, NULL},
    {P_LOOSE, "GET http://app.test/public/a;b=c", LAN, NULL, MON, 600, ACL_ALLOW, 1, NULL},
    {P_LOOSE, "GET http://app.test/public/..;/secret", LAN, NULL, MON, 600, ACL_DENY, 2, NULL},
    {P_LOOSE, "GET http://app.test/public/..\\secret", LAN, NULL, MON, 600, ACL_DENY, 2, NULL},
    {P_LOOSE, "GET http://app.test/public/..%2Fsecret", LAN, NULL, MON, 600, ACL_DENY, 0,
     "encoded slash"},
    {P_LOOSE, "GET http://other.test/admin;x", LAN, NULL, MON, 600, ACL_DENY, 3, NULL},
    {P_LOOSE, "GET http://other.test/admin%2Fx", LAN, NULL, MON, 600, ACL_DENY, 3, NULL},
    {P_LOOSE, "GET http://other.test/administrator;x", LAN, NULL, MON, 600, ACL_ALLOW, 0, NULL},
    /* Each reading on its own: Tomcat ends a ";parameter" at a "/" written as such, so to it
     * "/admin;\\..\\" is "/admin" while IIS reads "/"; one reading ending parameters at "\\"
     * too read "/" and let it past. */
    {P_LOOSE, "GET http://other.test/admin;\\..\\", LAN, NULL, MON, 600, ACL_DENY, 3,
     "(path read without ;parameters, as Tomcat and Jetty read it)"},
    {P_LOOSE, "GET http://other.test/admin;x\\..\\..\\y", LAN, NULL, MON, 600, ACL_DENY, 3, NULL},
    {P_LOOSE, "GET http://app.test/public/..;\\..\\public\\/secret", LAN, NULL, MON, 600, ACL_DENY,
     2, "without ;parameters, as Tomcat"},
    /* A server reading the path one way in front of one that reads it the other way. */
    {P_LOOSE, "GET http://other.test/x\\..;/admin", LAN, NULL, MON, 600, ACL_DENY, 3,
     "without ;parameters, then with \\, %5C and %2F as /"},
    {P_LOOSE, "GET http://other.test/x/..;\\admin", LAN, NULL, MON, 600, ACL_DENY, 3,
     "with \\, %5C and %2F as /, then without ;parameters"},
    /* Already denied otherwise: a dot segment between encoded backslashes, and the empty
     * segment that ";" leaves, which every reading collapses. */
    {P_LOOSE, "GET http://other.test/admin;%5C..%5C", LAN, NULL, MON, 600, ACL_DENY, 0,
     "encoded slash"},
    {P_LOOSE, "GET http://other.test/;/admin/", LAN, NULL, MON, 600, ACL_DENY, 3, NULL},
    {P_LOOSE, "GET http://other.test/app;jsessionid=A1/a\\b%2Fc", LAN, NULL, MON, 600, ACL_ALLOW, 0,
     NULL},
    {P_URL, "GET http://upper.test/%7euser/", LAN, NULL, MON, 600, ACL_DENY, 7, NULL},
    {P_URL, "GET http://space.test/a b", LAN, NULL, MON, 600, ACL_DENY, 8, NULL},
    {P_URL, "GET http://[2001:DB8::5]/v6", LAN, NULL, MON, 600, ACL_DENY, 10, NULL},
    /* catastrophic backtracking: a deny rule that cannot decide denies, and says why */
    {P_URL, "GET http://x.test/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaab", LAN, NULL, MON,
     600, ACL_DENY, 9, "rule 9: deny url-regex (a+)+$ (its regex hit the match limit"},
    {P_UNDECIDED, "GET http://deny.test/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaab", LAN, NULL,
     MON, 600, ACL_DENY, 2, "undecided, so it denies"},
    {P_UNDECIDED, "GET http://deny.test/aaaa", LAN, NULL, MON, 600, ACL_DENY, 2, NULL},
    {P_UNDECIDED, "GET http://deny.test/aaaab", LAN, NULL, MON, 600, ACL_ALLOW, 0, NULL},
    {P_UNDECIDED, "GET http://allow.test/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaab", LAN,
     NULL, MON, 600, ACL_ALLOW, 0, "rule 1 hit the regex match limit (undecided, so it does not"},
    {P_UNDECIDED, "GET http://allow.test/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaab",
     "8.8.8.8", NULL, MON, 600, ACL_DENY, 0,
     "not in allowed networks; rule 1 hit the regex match limit"},
    {P_UNDECIDED, "GET http://allow.test/aaaa", "8.8.8.8", NULL, MON, 600, ACL_ALLOW, 1, NULL},
    {P_UNDECIDED, "GET http://bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb-/", LAN,
     NULL, MON, 600, ACL_DENY, 3, "rule 3: deny host-regex"},
    /* dest: literal addresses at decision time, on the binary address */
    {P_DEST, "GET http://10.1.2.3/", LAN, NULL, MON, 600, ACL_DENY, 2,
     "rule 2: deny dest 10.0.0.0/8,fd00::/8"},
    {P_DEST, "CONNECT [::ffff:10.1.2.3]:443", LAN, NULL, MON, 600, ACL_DENY, 2, NULL},
    {P_DEST, "GET http://[fd00::5]/", LAN, NULL, MON, 600, ACL_DENY, 2, NULL},
    /* IPv6 forms a translator turns into 10.1.2.3: NAT64, 6to4, IPv4-compatible */
    {P_DEST, "GET http://[64:ff9b::a01:203]/", LAN, NULL, MON, 600, ACL_DENY, 2, NULL},
    {P_DEST, "CONNECT [2002:a01:203::1]:443", LAN, NULL, MON, 600, ACL_DENY, 2, NULL},
    {P_DEST, "GET http://[::10.1.2.3]/", LAN, NULL, MON, 600, ACL_DENY, 2, NULL},
    {P_DEST, "GET http://[2001:db8::a01:203]/", LAN, NULL, MON, 600, ACL_ALLOW, 0, NULL},
    {P_DEST, "GET http://127.0.0.1/", LAN, NULL, MON, 600, ACL_DENY, 5, NULL},
    {P_DEST, "GET http://127.0.0.1/", "10.9.1.1", NULL, MON, 600, ACL_DENY, 3, NULL},
    {P_DEST, "GET http://127.0.0.2/", LAN, NULL, MON, 600, ACL_ALLOW, 0, NULL},
    {P_DEST, "GET http://192.0.2.5/deny-after/", LAN, NULL, MON, 600, ACL_ALLOW, 4,
     "rule 4: allow dest 192.0.2.0/24"},
    {P_DEST, "GET http://198.51.100.1/", LAN, NULL, MON, 600, ACL_AUTH, 7, NULL},
    {P_DEST, "GET http://intranet.test/", LAN, NULL, MON, 600, ACL_ALLOW, 1, NULL},
    {P_DEST, "GET http://name.test/", LAN, NULL, MON, 600, ACL_ALLOW, 0, NULL},
    {P_DEST, "GET http://name.test/deny-after/", LAN, NULL, MON, 600, ACL_DENY, 6, NULL},
    {P_URL, "GET http://x.test/page7", LAN, NULL, MON, 600, ACL_DENY, 11, NULL},
    /* clients, methods, ports; IPv4-mapped clients match IPv4 CIDRs */
    {P_NET, "GET http://a.test/", "192.0.2.9", NULL, MON, 600, ACL_ALLOW, 1,
     "rule 1: allow client 192.0.2.0/24"},
    {P_NET, "GET http://a.test/", "::ffff:192.0.2.9", NULL, MON, 600, ACL_ALLOW, 1, NULL},
    {P_NET, "GET http://a.test/", "10.9.1.1", NULL, MON, 600, ACL_DENY, 2, NULL},
    {P_NET, "GET http://a.test/", "::ffff:10.9.1.1", NULL, MON, 600, ACL_DENY, 2, NULL},
    {P_NET, "GET http://a.test/", "10.8.1.1", NULL, MON, 600, ACL_ALLOW, 0, NULL},
    {P_NET, "PUT http://a.test/", LAN, NULL, MON, 600, ACL_DENY, 3, NULL},
    {P_NET, "DELETE http://a.test/", LAN, NULL, MON, 600, ACL_DENY, 3, NULL},
    {P_NET, "put http://a.test/", LAN, NULL, MON, 600, ACL_DENY, 3, NULL}, /* origins fold */
    {P_NET, "Delete http://a.test/", LAN, NULL, MON, 600, ACL_DENY, 3, NULL},
    {P_NET, "GET http://a.test:8080/", LAN, NULL, MON, 600, ACL_DENY, 4, NULL},
    {P_NET, "GET http://a.test:8000/", LAN, NULL, MON, 600, ACL_DENY, 4, NULL},
    {P_NET, "GET http://a.test:8999/", LAN, NULL, MON, 600, ACL_DENY, 4, NULL},
    {P_NET, "GET http://a.test:9000/", LAN, NULL, MON, 600, ACL_ALLOW, 0, NULL},
    {P_NET, "CONNECT mail.test:25", LAN, NULL, MON, 600, ACL_DENY, 4, NULL},
    {P_NET, "GET http://a.test/", "2001:db8:1::5", NULL, MON, 600, ACL_DENY, 5, NULL},
    {P_NET, "GET http://a.test/", "2001:db8:2::5", NULL, MON, 600, ACL_DENY, 0,
     "default: client 2001:db8:2::5 not in allowed networks"},
    {P_NET, "GET http://a.test/", "203.0.113.5", NULL, MON, 600, ACL_ALLOW, 6, NULL},
    {P_NET, "GET http://a.test/", "203.0.113.6", NULL, MON, 600, ACL_DENY, 0, NULL},
    /* the default networks */
    {P_NET, "GET http://a.test/", "::1", NULL, MON, 600, ACL_ALLOW, 0, NULL},
    {P_NET, "GET http://a.test/", "::2", NULL, MON, 600, ACL_DENY, 0, NULL},
    {P_NET, "GET http://a.test/", "127.1.2.3", NULL, MON, 600, ACL_ALLOW, 0, NULL},
    {P_NET, "GET http://a.test/", "::ffff:127.0.0.1", NULL, MON, 600, ACL_ALLOW, 0, NULL},
    {P_NET, "GET http://a.test/", "fd00::1", NULL, MON, 600, ACL_ALLOW, 0, NULL},
    {P_NET, "GET http://a.test/", "fe80::1", NULL, MON, 600, ACL_DENY, 0, NULL},
    {P_NET, "GET http://a.test/", "172.31.255.255", NULL, MON, 600, ACL_ALLOW, 0, NULL},
    {P_NET, "GET http://a.test/", "172.32.0.1", NULL, MON, 600, ACL_DENY, 0, NULL},
    {P_NET, "GET http://a.test/", "192.168.7.7", NULL, MON, 600, ACL_ALLOW, 0, NULL},
    {P_NET, "GET http://a.test/", "8.8.8.8", NULL, MON, 600, ACL_DENY, 0,
     "default: client 8.8.8.8 not in allowed networks"},
    {P_CUSTOM, "GET http://a.test/", "198.51.100.7", NULL, MON, 600, ACL_ALLOW, 0, NULL},
    {P_CUSTOM, "GET http://a.test/", "10.0.0.1", NULL, MON, 600, ACL_DENY, 0, NULL},
    /* schedules, across midnight and on day boundaries */
    {P_SCHED, "GET http://night.test/", LAN, NULL, MON, H(23, 0), ACL_DENY, 1, NULL},
    {P_SCHED, "GET http://night.test/", LAN, NULL, MON, H(22, 0), ACL_DENY, 1, NULL},
    {P_SCHED, "GET http://night.test/", LAN, NULL, MON, H(21, 59), ACL_ALLOW, 0, NULL},
    {P_SCHED, "GET http://night.test/", LAN, NULL, TUE, H(5, 59), ACL_DENY, 1, NULL},
    {P_SCHED, "GET http://night.test/", LAN, NULL, TUE, H(6, 0), ACL_ALLOW, 0, NULL},
    {P_SCHED, "GET http://night.test/", LAN, NULL, MON, H(5, 0), ACL_ALLOW, 0, NULL},
    {P_SCHED, "GET http://night.test/", LAN, NULL, SAT, H(3, 0), ACL_DENY, 1, NULL},
    {P_SCHED, "GET http://night.test/", LAN, NULL, SAT, H(23, 0), ACL_ALLOW, 0, NULL},
    {P_SCHED, "GET http://night.test/", LAN, NULL, FRI, H(23, 30), ACL_DENY, 1, NULL},
    {P_SCHED, "GET http://night.test/", LAN, NULL, SUN, H(23, 30), ACL_ALLOW, 0, NULL},
    {P_SCHED, "GET http://night.test/", LAN, NULL, SUN, 0, ACL_ALLOW, 0, NULL},
    {P_SCHED, "GET http://work.test/", LAN, NULL, MON, H(9, 0), ACL_DENY, 2, NULL},
    {P_SCHED, "GET http://work.test/", LAN, NULL, FRI, H(16, 59), ACL_DENY, 2, NULL},
    {P_SCHED, "GET http://work.test/", LAN, NULL, FRI, H(17, 0), ACL_ALLOW, 0, NULL},
    {P_SCHED, "GET http://work.test/", LAN, NULL, MON, H(8, 59), ACL_ALLOW, 0, NULL},
    {P_SCHED, "GET http://work.test/", LAN, NULL, SAT, H(10, 0), ACL_ALLOW, 0, NULL},
    {P_SCHED, "GET http://weekend.test/", LAN, NULL, SUN, 0, ACL_DENY, 3, NULL},
    {P_SCHED, "GET http://weekend.test/", LAN, NULL, SAT, H(23, 59), ACL_DENY, 3, NULL},
    {P_SCHED, "GET http://weekend.test/", LAN, NULL, SAT, 0, ACL_DENY, 3, NULL},
    {P_SCHED, "GET http://weekend.test/", LAN, NULL, MON, 0, ACL_ALLOW, 0, NULL},
    {P_SCHED, "GET http://weekend.test/", LAN, NULL, FRI, H(23, 59), ACL_ALLOW, 0, NULL},
    /* first match wins across kinds */
    {P_MIXED, "GET http://ads.example.com/ok/x", LAN, NULL, MON, 600, ACL_ALLOW, 1, NULL},
    {P_MIXED, "GET http://ads.example.com/no", LAN, NULL, MON, 600, ACL_DENY, 2, NULL},
    {P_MIXED, "GET http://www.example.com/", LAN, NULL, MON, 600, ACL_DENY, 2, NULL},
    {P_MIXED, "GET http://www.adnet.test/", LAN, NULL, MON, 600, ACL_ALLOW, 3, NULL},
    {P_MIXED, "GET http://tracker.test/", LAN, NULL, MON, 600, ACL_DENY, 4,
     "rule 4: deny list ads (tracker.test)"},
    {P_MIXED, "GET http://sub.tracker.test/", LAN, NULL, MON, 600, ACL_DENY, 4, NULL},
    {P_MIXED, "GET http://other.test/", LAN, NULL, MON, 600, ACL_DENY, 5, "rule 5: deny any"},
    /* users: AUTH only when everything else about the rule holds; disabled rules skipped */
    {P_AUTH, "GET http://off.test/", LAN, NULL, MON, 600, ACL_ALLOW, 0, NULL},
    {P_AUTH, "GET http://social.test/", LAN, NULL, MON, 600, ACL_AUTH, 2,
     "rule 2 requires an authenticated user"},
    {P_AUTH, "GET http://social.test/", LAN, "bob", MON, 600, ACL_DENY, 2, NULL},
    {P_AUTH, "GET http://social.test/", LAN, "eve", MON, 600, ACL_ALLOW, 0, NULL},
    {P_AUTH, "GET http://video.test/", "10.1.2.3", NULL, MON, 600, ACL_AUTH, 3, NULL},
    {P_AUTH, "GET http://video.test/", "10.5.0.1", NULL, MON, 600, ACL_ALLOW, 0, NULL},
    {P_AUTH, "GET http://x.test/", "10.2.0.1", NULL, MON, 600, ACL_AUTH, 4, NULL},
    {P_AUTH, "GET http://x.test/", "10.2.0.1", "alice", MON, 600, ACL_ALLOW, 4, NULL},
    {P_AUTH, "GET http://x.test/", "10.3.0.1", "alice", MON, 600, ACL_ALLOW, 0, NULL},
    {P_AUTH, "GET http://x.test/", "10.2.0.1", "Alice", MON, 600, ACL_ALLOW, 0, NULL},
};

START_TEST(test_decision_matches_table)
{
    const struct eval_case *c = &cases[_i];
    struct req_buf rb;
    struct acl_decision d;
    req_make(&rb, c->request, c->client, c->user, c->wday, c->minute);
    acl_eval(sets[c->policy], &rb.req, scratch, &d);
    ck_assert_msg(d.action == c->want && d.rule_id == c->want_rule,
                  "case %d '%s' from %s: got %s rule %d (%s), want %s rule %d", _i, c->request,
                  c->client, acl_action_str(d.action), d.rule_id, d.reason, acl_action_str(c->want),
                  c->want_rule);
    if (c->want_reason)
        ck_assert_msg(strstr(d.reason, c->want_reason), "case %d: reason '%s' lacks '%s'", _i,
                      d.reason, c->want_reason);
}
END_TEST

/* ---- Randomised: indexed evaluation == the first rule that decides on its own ---- */

static unsigned rng_state = 12345;

static unsigned rnd(unsigned n)
{
    rng_state = rng_state * 1103515245u + 12345u;
    return (rng_state >> 8) % n;
}

static const char *const words[] = {"ads", "img", "cdn", "www", "track", "pix", "video", "api"};
static const char *const tlds[] = {"test", "example", "invalid"};

static void random_rule(char *buf, size_t len)
{
    static const char *const acts[] = {"allow", "deny", "deny", "report"};
    const char *act = acts[rnd(4)];
    const char *w = words[rnd(8)];
    const char *t = tlds[rnd(3)];
    char cond[96] = "";
    switch (rnd(6)) {
    case 0:
        snprintf(cond, sizeof(cond), " clients 10.%u.0.0/16", rnd(3));
        break;
    case 1:
        snprintf(cond, sizeof(cond), " schedule mon-fri %02u:00-%02u:00", rnd(24), rnd(24));
        break;
    case 2:
        snprintf(cond, sizeof(cond), " users u%u", rnd(3));
        break;
    default:
        break;
    }
    if (strstr(cond, "schedule") && strncmp(cond + 18, cond + 24, 2) == 0)
        cond[0] = '\0'; /* empty range */
    switch (rnd(12)) {
    case 0:
    case 1:
    case 2:
        snprintf(buf, len, "%s domain %s%u.%s%s", act, w, rnd(4), t, cond);
        break;
    case 10:
        snprintf(buf, len, "%s dest 10.%u.0.0/16%s", act, rnd(4), cond);
        break;
    case 11:
        snprintf(buf, len, "%s domain %s10.%u.0.%u%s", act, rnd(2) ? "" : "::ffff:", rnd(4), rnd(3),
                 cond);
        break;
    case 3:
        snprintf(buf, len, "%s url-regex ^https?://[^/]+/%s/v%u/%s", act, w, rnd(3), cond);
        break;
    case 4:
        snprintf(buf, len, "%s url-regex /%s[0-9]+\\.gif%s", act, w, cond);
        break;
    case 5:
        snprintf(buf, len, "%s host-regex ^%s[0-9]*\\.%s", act, w, cond);
        break;
    case 6:
        snprintf(buf, len, "%s url-regex \\.(gif|png)$%s", act, cond);
        break;
    case 7:
        snprintf(buf, len, "%s port %u%s", act, 8000 + rnd(3), cond);
        break;
    case 8:
        snprintf(buf, len, "%s list l%u%s", act, rnd(2), cond);
        break;
    default:
        snprintf(buf, len, "%s method %s%s", act, rnd(2) ? "POST" : "PUT", cond);
        break;
    }
}

START_TEST(test_indexed_eval_agrees_with_rule_by_rule)
{
    enum { NRULES = 150, NREQ = 1500 };
    static char texts[NRULES][160];
    struct acl_rule_src rules[NRULES];
    const char *l0[] = {"ads1.test", "track2.example", "cdn0.invalid"};
    const char *l1[] = {"www3.test", "pix1.example"};
    struct acl_list_src ls[] = {{"l0", l0, 3}, {"l1", l1, 2}};
    for (int i = 0; i < NRULES; i++) {
        random_rule(texts[i], sizeof(texts[i]));
        rules[i] = (struct acl_rule_src){.id = i + 1, .enabled = rnd(10) != 0, .text = texts[i]};
    }
    struct acl_error err;
    struct acl_config cfg = {.rules = rules, .nrules = NRULES, .lists = ls, .nlists = 2};
    struct acl_set *all = acl_set_compile(&cfg, &err);
    ck_assert_msg(all != NULL, "%s", err.msg);
    struct acl_config c0 = {.lists = ls, .nlists = 2};
    struct acl_set *none = acl_set_compile(&c0, &err);
    ck_assert_ptr_nonnull(none);
    struct acl_set *one[NRULES];
    for (int i = 0; i < NRULES; i++) {
        struct acl_config c1 = {.rules = &rules[i], .nrules = 1, .lists = ls, .nlists = 2};
        one[i] = acl_set_compile(&c1, &err);
        ck_assert_msg(one[i] != NULL, "%s", err.msg);
    }
    for (int q = 0; q < NREQ; q++) {
        char line[256], client[32];
        const char *w = words[rnd(8)];
        char host[64];
        if (rnd(4))
            snprintf(host, sizeof(host), "%s%s%u.%s", rnd(3) ? "" : "sub.", w, rnd(5),
                     tlds[rnd(3)]);
        else
            snprintf(host, sizeof(host), "10.%u.0.%u", rnd(4), rnd(3));
        snprintf(line, sizeof(line), "%s http%s://%s:%u/%s/%s%u%s", rnd(4) ? "GET" : "POST",
                 rnd(2) ? "s" : "", host, rnd(3) ? 80 : 8000 + rnd(3), words[rnd(8)],
                 rnd(2) ? "v" : w, rnd(4), rnd(2) ? ".gif" : "/x");
        snprintf(client, sizeof(client), "10.%u.0.9", rnd(4));
        char user[8];
        snprintf(user, sizeof(user), "u%u", rnd(4));
        struct req_buf rb;
        req_make(&rb, line, client, rnd(3) ? user : NULL, (int)rnd(7), (int)rnd(1440));
        struct acl_decision got, ref = {.rule_id = 0};
        int report = 0; /* the first report rule that holds on its own, above the decider */
        acl_eval(all, &rb.req, scratch, &got);
        for (int i = 0; i < NRULES; i++) {
            acl_eval(one[i], &rb.req, scratch, &ref);
            if (ref.rule_id != 0)
                break;
            if (!report)
                report = ref.report_rule_id;
        }
        if (ref.rule_id == 0) /* any set without a report rule gives the same default */
            acl_eval(none, &rb.req, scratch, &ref);
        if (ref.action != ACL_ALLOW)
            report = 0;
        ck_assert_msg(got.rule_id == ref.rule_id && got.action == ref.action &&
                          got.report_rule_id == report,
                      "%s client %s: indexed %s rule %d report %d, rule by rule %s rule %d "
                      "report %d",
                      line, client, acl_action_str(got.action), got.rule_id, got.report_rule_id,
                      acl_action_str(ref.action), ref.rule_id, report);
    }
    for (int i = 0; i < NRULES; i++)
        acl_set_free(one[i]);
    acl_set_free(all);
    acl_set_free(none);
}
END_TEST

/* An expired rule never matches: from its `expires` second on, by the caller's clock; a
 * clock of 0 checks no expiry. */
START_TEST(test_expired_rule_stops_matching_on_time)
{
    const char *texts[] = {"allow domain youtube.test expires 2026-12-24T18:00Z",
                           "deny domain youtube.test",
                           "deny domain old.test expires 2020-01-01T00:00Z"};
    struct acl_rule_src rules[3];
    for (int i = 0; i < 3; i++)
        rules[i] = (struct acl_rule_src){.id = i + 1, .enabled = true, .text = texts[i]};
    struct acl_config cfg = {.rules = rules, .nrules = 3};
    struct acl_error err;
    struct acl_set *set = acl_set_compile(&cfg, &err);
    ck_assert_msg(set != NULL, "%s", err.msg);
    const struct {
        const char *host;
        int64_t now;
        enum acl_action want;
        int rule;
    } at[] = {
        {"youtube.test", 1798135199, ACL_ALLOW, 1}, {"youtube.test", 1798135200, ACL_DENY, 2},
        {"youtube.test", 1900000000, ACL_DENY, 2},  {"youtube.test", 0, ACL_ALLOW, 1},
        {"old.test", 1798135199, ACL_ALLOW, 0},     {"old.test", 1577836799, ACL_DENY, 3},
    };
    for (size_t i = 0; i < sizeof(at) / sizeof(at[0]); i++) {
        char line[96];
        struct req_buf rb;
        struct acl_decision d;
        snprintf(line, sizeof(line), "GET http://%s/", at[i].host);
        req_make(&rb, line, LAN, NULL, MON, 600);
        rb.req.clock.now = at[i].now;
        acl_eval(set, &rb.req, scratch, &d);
        ck_assert_msg(d.action == at[i].want && d.rule_id == at[i].rule,
                      "case %zu: %s rule %d (%s)", i, acl_action_str(d.action), d.rule_id,
                      d.reason);
    }
    acl_set_free(set);
}
END_TEST

/* A group's networks and users stand in for `clients @G` and `users @G`, wherever the group
 * is defined; a group that is off has no members; unknown and twice-defined groups are
 * refused at compile time naming the rule. */
START_TEST(test_groups_expand_into_conditions)
{
    const char *texts[] = {
        "deny domain video.test clients @sales",
        "deny domain chat.test users @sales",
        "allow any clients @staff, 192.0.2.9",
        "group sales 10.1.0.0/16, user:alice, user:bob",
        "group staff 203.0.113.0/24",
        "deny domain off.test clients @off",
        "group off 10.1.0.0/16",
    };
    struct acl_rule_src rules[7];
    for (int i = 0; i < 7; i++)
        rules[i] = (struct acl_rule_src){.id = i + 1, .enabled = i != 6, .text = texts[i]};
    struct acl_config cfg = {.rules = rules, .nrules = 7};
    struct acl_error err;
    struct acl_set *set = acl_set_compile(&cfg, &err);
    ck_assert_msg(set != NULL, "%s", err.msg);
    const struct {
        const char *req, *client, *user;
        enum acl_action want;
        int rule;
    } at[] = {
        {"GET http://video.test/", "10.1.2.3", NULL, ACL_DENY, 1},
        {"GET http://video.test/", "10.2.2.3", NULL, ACL_ALLOW, 0},
        {"GET http://chat.test/", "10.2.2.3", "bob", ACL_DENY, 2},
        {"GET http://chat.test/", "10.2.2.3", "carol", ACL_ALLOW, 0},
        {"GET http://chat.test/", "10.2.2.3", NULL, ACL_AUTH, 2},
        {"GET http://x.test/", "203.0.113.7", NULL, ACL_ALLOW, 3},
        {"GET http://x.test/", "192.0.2.9", NULL, ACL_ALLOW, 3},
        {"GET http://x.test/", "198.51.100.1", NULL, ACL_DENY, 0},
        {"GET http://off.test/", "10.1.2.3", NULL, ACL_ALLOW, 0}, /* group off: no members */
    };
    for (size_t i = 0; i < sizeof(at) / sizeof(at[0]); i++) {
        struct req_buf rb;
        struct acl_decision d;
        req_make(&rb, at[i].req, at[i].client, at[i].user, MON, 600);
        acl_eval(set, &rb.req, scratch, &d);
        ck_assert_msg(d.action == at[i].want && d.rule_id == at[i].rule,
                      "case %zu: %s rule %d (%s)", i, acl_action_str(d.action), d.rule_id,
                      d.reason);
    }
    struct sockaddr_in sin = {.sin_family = AF_INET};
    inet_pton(AF_INET, "203.0.113.7", &sin.sin_addr);
    ck_assert(acl_client_admitted(set, (const struct sockaddr *)&sin));
    inet_pton(AF_INET, "198.51.100.1", &sin.sin_addr);
    ck_assert(!acl_client_admitted(set, (const struct sockaddr *)&sin));
    acl_set_free(set);

    struct acl_rule_src bad1[] = {{1, true, "deny any clients @nobody"}};
    struct acl_config c1 = {.rules = bad1, .nrules = 1};
    ck_assert_ptr_null(acl_set_compile(&c1, &err));
    ck_assert_str_eq(err.msg, "rule 1: clients: no group named 'nobody'");
    struct acl_rule_src bad2[] = {{4, true, "group g 10.0.0.0/8"}, {5, true, "group g user:x"}};
    struct acl_config c2 = {.rules = bad2, .nrules = 2};
    ck_assert_ptr_null(acl_set_compile(&c2, &err));
    ck_assert_str_eq(err.msg, "rule 5: group: 'g' is defined twice");
}
END_TEST

/* A report rule never decides: the request goes on to the rules below, and an allowed one
 * names the first report rule that held. */
static const char *const p_report[] = {
    "report domain tiktok.test",
    "report url-regex ^http://[^/]+/ads/",
    "deny domain blocked.test",
    "report domain blocked.test",
    "report dest 10.1.0.0/16",
    "report any users alice",
    "allow domain ok.test",
    "deny domain tiktok.test clients 10.7.0.0/16",
    NULL,
};

static const struct {
    const char *request, *client, *user;
    enum acl_action want;
    int want_rule, want_report;
    const char *want_reason; /* substring when not brief, or NULL */
} report_cases[] = {
    {"GET http://tiktok.test/", LAN, NULL, ACL_ALLOW, 0, 1,
     "rule 1 would deny (report domain tiktok.test)"},
    {"GET http://www.tiktok.test/ads/x", LAN, NULL, ACL_ALLOW, 0, 1, NULL},
    {"GET http://other.test/ads/x", LAN, NULL, ACL_ALLOW, 0, 2, NULL},
    {"GET http://blocked.test/", LAN, NULL, ACL_DENY, 3, 0, "rule 3: deny domain blocked.test"},
    {"GET http://10.1.2.3/", LAN, NULL, ACL_ALLOW, 0, 5, NULL},
    {"GET http://other.test/", LAN, "alice", ACL_ALLOW, 0, 6, NULL},
    {"GET http://other.test/", LAN, NULL, ACL_ALLOW, 0, 0, NULL}, /* never asks for a user */
    {"GET http://ok.test/ads/", LAN, NULL, ACL_ALLOW, 7, 2, NULL},
    {"GET http://ok.test/", LAN, NULL, ACL_ALLOW, 7, 0, NULL},
    {"GET http://tiktok.test/", "10.7.0.1", NULL, ACL_DENY, 8, 0, NULL},
    {"GET http://tiktok.test/", "8.8.8.8", NULL, ACL_DENY, 0, 0, "not in allowed networks"},
};

/* Inspect rules say which tunnels are decrypted and nothing about passing; the no-inspect
 * list beats every one of them. */
static const char *const p_inspect[] = {
    "deny domain blocked.test",
    "inspect domain example.test",
    "allow any",
    "inspect list office clients 10.7.0.0/16",
    "inspect any users alice",
    "inspect url-regex ^https://regex\\.test/",
    NULL,
};

static const char *const office_domains[] = {"office.test", "mybank.test"};
static const char *const no_inspect_domains[] = {"bank.test", "mybank.test", "health.test"};

static const struct {
    const char *request, *client, *user;
    bool want_inspect;
    int want_rule;
    const char *want_reason; /* substring */
} inspect_cases[] = {
    {"CONNECT example.test:443", LAN, NULL, true, 2, "rule 2: inspect domain example.test"},
    {"CONNECT www.example.test:443", LAN, NULL, true, 2, NULL},
    /* below an allow rule that decides the request: inspect rules stand apart */
    {"CONNECT office.test:443", "10.7.0.1", NULL, true, 4, "rule 4: inspect list office"},
    {"CONNECT office.test:443", LAN, NULL, false, 0, "no inspect rule"},
    {"CONNECT other.test:443", LAN, "alice", true, 5, NULL},
    {"CONNECT other.test:443", LAN, "bob", false, 0, "no inspect rule"},
    {"CONNECT other.test:443", LAN, NULL, false, 0, "no inspect rule"},
    {"CONNECT regex.test:443", LAN, NULL, true, 6, NULL},
    /* the no-inspect list wins over every inspect rule */
    {"CONNECT bank.test:443", LAN, "alice", false, 0, "no-inspect list (bank.test)"},
    {"CONNECT www.mybank.test:443", "10.7.0.1", NULL, false, 0, "no-inspect list (mybank.test)"},
    {"CONNECT health.test:8443", LAN, "alice", false, 0, NULL},
};

START_TEST(test_inspect_rules_and_the_no_inspect_list)
{
    struct acl_rule_src rules[16];
    size_t n = 0;
    for (; p_inspect[n]; n++)
        rules[n] = (struct acl_rule_src){.id = (int)n + 1, .enabled = true, .text = p_inspect[n]};
    struct acl_list_src ilists[] = {
        {"office", office_domains, 2},
        {ACL_NO_INSPECT_LIST, no_inspect_domains, 3},
    };
    struct acl_config cfg = {.rules = rules, .nrules = n, .lists = ilists, .nlists = 2};
    struct acl_error err;
    struct acl_set *set = acl_set_compile(&cfg, &err);
    ck_assert_msg(set != NULL, "%s", err.msg);
    for (size_t i = 0; i < sizeof(inspect_cases) / sizeof(inspect_cases[0]); i++) {
        struct req_buf rb;
        struct acl_inspect in;
        struct acl_decision d;
        req_make(&rb, inspect_cases[i].request, inspect_cases[i].client, inspect_cases[i].user, MON,
                 600);
        acl_eval_inspect(set, &rb.req, scratch, &in);
        ck_assert_msg(in.inspect == inspect_cases[i].want_inspect &&
                          in.rule_id == inspect_cases[i].want_rule,
                      "case %zu '%s': got inspect %d rule %d (%s)", i, inspect_cases[i].request,
                      in.inspect, in.rule_id, in.reason);
        if (inspect_cases[i].want_reason)
            ck_assert_msg(strstr(in.reason, inspect_cases[i].want_reason), "case %zu: '%s'", i,
                          in.reason);
        /* and an inspect rule never decides whether the request passes */
        acl_eval(set, &rb.req, scratch, &d);
        ck_assert_msg(d.action == ACL_ALLOW && d.rule_id == 3, "case %zu: %s rule %d", i,
                      acl_action_str(d.action), d.rule_id);
    }

    /* Without the list, the same host is inspected; the shipped list (policies/lists/
     * no-inspect.txt, compiled in) is in force instead, until the policy has a no-inspect
     * list of its own, even an empty one. */
    cfg.nlists = 1;
    struct acl_set *bare = acl_set_compile(&cfg, &err);
    ck_assert_msg(bare != NULL, "%s", err.msg);
    struct req_buf rb;
    struct acl_inspect in;
    req_make(&rb, "CONNECT bank.test:443", LAN, "alice", MON, 600);
    acl_eval_inspect(bare, &rb.req, scratch, &in);
    ck_assert_msg(in.inspect && in.rule_id == 5, "%s", in.reason);
    req_make(&rb, "CONNECT www.paypal.com:443", LAN, "alice", MON, 600);
    acl_eval_inspect(bare, &rb.req, scratch, &in);
    ck_assert_msg(!in.inspect && in.no_inspect, "%s", in.reason);
    ck_assert_str_eq(in.reason, "no-inspect list (paypal.com)");
    acl_set_free(bare);
    struct acl_list_src emptied[] = {{"office", office_domains, 2}, {ACL_NO_INSPECT_LIST, NULL, 0}};
    cfg.lists = emptied;
    cfg.nlists = 2;
    struct acl_set *own = acl_set_compile(&cfg, &err);
    ck_assert_msg(own != NULL, "%s", err.msg);
    acl_eval_inspect(own, &rb.req, scratch, &in);
    ck_assert_msg(in.inspect && in.rule_id == 5, "%s", in.reason);
    acl_set_free(own);

    /* A policy without inspect rules inspects nothing; a bad one names the rule. */
    struct acl_rule_src plain[] = {{1, true, "allow any"}};
    struct acl_config pc = {.rules = plain, .nrules = 1};
    struct acl_set *ps = acl_set_compile(&pc, &err);
    ck_assert_ptr_nonnull(ps);
    acl_eval_inspect(ps, &rb.req, scratch, &in);
    ck_assert(!in.inspect && in.rule_id == 0);
    ck_assert_str_eq(in.reason, "no inspect rule");
    acl_set_free(ps);
    /* The action as the rule parser reads it, however the text spells it: quoted, or after
     * a line break (an import's CRLF), it is an inspect rule all the same. */
    struct acl_rule_src spelt[] = {{1, true, "allow any"},
                                   {2, true, "\"inspect\" domain example.test"},
                                   {3, true, "\r\ninspect domain other.test"}};
    struct acl_config sc = {.rules = spelt, .nrules = 3};
    struct acl_set *ss = acl_set_compile(&sc, &err);
    ck_assert_msg(ss != NULL, "%s", err.msg);
    req_make(&rb, "CONNECT example.test:443", LAN, NULL, MON, 600);
    acl_eval_inspect(ss, &rb.req, scratch, &in);
    ck_assert_msg(in.inspect && in.rule_id == 2, "%s", in.reason);
    req_make(&rb, "CONNECT other.test:443", LAN, NULL, MON, 600);
    acl_eval_inspect(ss, &rb.req, scratch, &in);
    ck_assert_msg(in.inspect && in.rule_id == 3, "%s", in.reason);
    acl_set_free(ss);
    struct acl_rule_src bad[] = {{1, true, "allow any"}, {2, true, "inspect list nothere"}};
    struct acl_config bc = {.rules = bad, .nrules = 2};
    ck_assert_ptr_null(acl_set_compile(&bc, &err));
    ck_assert_str_eq(err.msg, "rule 2: list: no list named 'nothere'");
    acl_set_free(set);
}
END_TEST

START_TEST(test_report_rules_never_decide)
{
    struct acl_rule_src rules[16];
    size_t n = 0;
    for (; p_report[n]; n++)
        rules[n] = (struct acl_rule_src){.id = (int)n + 1, .enabled = true, .text = p_report[n]};
    struct acl_config cfg = {.rules = rules, .nrules = n};
    struct acl_error err;
    struct acl_set *set = acl_set_compile(&cfg, &err);
    ck_assert_msg(set != NULL, "%s", err.msg);
    for (size_t i = 0; i < sizeof(report_cases) / sizeof(report_cases[0]); i++) {
        struct req_buf rb;
        struct acl_decision d, brief;
        req_make(&rb, report_cases[i].request, report_cases[i].client, report_cases[i].user, MON,
                 600);
        acl_eval(set, &rb.req, scratch, &d);
        ck_assert_msg(d.action == report_cases[i].want && d.rule_id == report_cases[i].want_rule &&
                          d.report_rule_id == report_cases[i].want_report,
                      "case %zu '%s': got %s rule %d report %d (%s)", i, report_cases[i].request,
                      acl_action_str(d.action), d.rule_id, d.report_rule_id, d.reason);
        if (report_cases[i].want_reason)
            ck_assert_msg(strstr(d.reason, report_cases[i].want_reason), "case %zu: '%s'", i,
                          d.reason);
        rb.req.brief = true;
        acl_eval(set, &rb.req, scratch, &brief);
        ck_assert_int_eq(brief.report_rule_id, d.report_rule_id);
    }

    /* `report dest` on a name: its resolved addresses tell, as for `deny dest`. */
    struct req_buf rb;
    struct acl_decision first, d;
    req_make(&rb, "GET http://name.test/", LAN, NULL, MON, 600);
    acl_eval(set, &rb.req, scratch, &first);
    ck_assert(first.action == ACL_ALLOW && first.dest_pending && first.report_rule_id == 0);
    struct sockaddr_in sin = {.sin_family = AF_INET};
    inet_pton(AF_INET, "10.1.9.9", &sin.sin_addr);
    acl_eval_dest(set, &rb.req, &first, (const struct sockaddr *)&sin, &d);
    ck_assert_int_eq(d.action, ACL_ALLOW);
    ck_assert_int_eq(d.report_rule_id, 5);
    inet_pton(AF_INET, "10.2.9.9", &sin.sin_addr);
    acl_eval_dest(set, &rb.req, &first, (const struct sockaddr *)&sin, &d);
    ck_assert_int_eq(d.action, ACL_ALLOW);
    ck_assert_int_eq(d.report_rule_id, 0);
    acl_set_free(set);

    /* A report rule lets nobody in that the default action keeps out. */
    struct acl_rule_src only = {.id = 1, .enabled = true, .text = "report any"};
    struct acl_config c1 = {.rules = &only, .nrules = 1};
    set = acl_set_compile(&c1, &err);
    ck_assert_ptr_nonnull(set);
    inet_pton(AF_INET, "8.8.8.8", &sin.sin_addr);
    ck_assert(!acl_client_admitted(set, (const struct sockaddr *)&sin));
    acl_set_free(set);
}
END_TEST

/* A `deny dest` rule applies to a name's resolved addresses; an `allow dest` never allows a
 * name by its addresses. */
struct dest_case {
    const char *request, *client, *user, *resolved;
    bool pending; /* what acl_eval says */
    bool new_set; /* the set changed while resolving: every deny dest rule applies */
    enum acl_action want;
    int want_rule;
    const char *want_reason;
};

static const struct dest_case dest_cases[] = {
    {"GET http://name.test/", LAN, NULL, "10.1.2.3", true, false, ACL_DENY, 2,
     "rule 2: deny dest 10.0.0.0/8,fd00::/8 (address 10.1.2.3)"},
    {"GET http://name.test/", LAN, NULL, "::ffff:10.1.2.3", true, false, ACL_DENY, 2,
     "(address 10.1.2.3)"},
    {"CONNECT name.test:443", LAN, NULL, "fd00::1", true, false, ACL_DENY, 2, NULL},
    {"GET http://name.test/", LAN, NULL, "64:ff9b::10.1.2.3", true, false, ACL_DENY, 2,
     "(address 64:ff9b::a01:203)"},
    {"GET http://name.test/", LAN, NULL, "2002:a01:203::", true, false, ACL_DENY, 2, NULL},
    {"GET http://name.test/", LAN, NULL, "127.0.0.1", true, false, ACL_ALLOW, 0, NULL},
    {"GET http://name.test/", "10.9.1.1", NULL, "127.0.0.1", true, false, ACL_DENY, 3, NULL},
    {"GET http://name.test/", LAN, NULL, "192.0.2.5", true, false, ACL_ALLOW, 0, NULL},
    {"GET http://name.test/", LAN, NULL, "198.51.100.9", true, false, ACL_AUTH, 7, NULL},
    {"GET http://name.test/", LAN, "bob", "198.51.100.9", true, false, ACL_DENY, 7, NULL},
    {"GET http://name.test/", LAN, "eve", "198.51.100.9", true, false, ACL_ALLOW, 0, NULL},
    {"GET http://intranet.test/", LAN, NULL, "10.1.2.3", false, false, ACL_ALLOW, 1, NULL},
    {"GET http://intranet.test/", LAN, NULL, "10.1.2.3", false, true, ACL_DENY, 2, NULL},
};

START_TEST(test_deny_dest_applies_to_resolved_addresses)
{
    const struct dest_case *c = &dest_cases[_i];
    struct req_buf rb;
    struct acl_decision first, d;
    req_make(&rb, c->request, c->client, c->user, MON, 600);
    acl_eval(sets[P_DEST], &rb.req, scratch, &first);
    ck_assert_msg(first.action == ACL_ALLOW && first.dest_pending == c->pending,
                  "case %d: first %s pending %d (%s)", _i, acl_action_str(first.action),
                  first.dest_pending, first.reason);
    if (c->new_set)
        first.order = UINT32_MAX;
    struct sockaddr_storage ss = {0};
    if (strchr(c->resolved, ':')) {
        ss.ss_family = AF_INET6;
        inet_pton(AF_INET6, c->resolved, &((struct sockaddr_in6 *)&ss)->sin6_addr);
    } else {
        ss.ss_family = AF_INET;
        inet_pton(AF_INET, c->resolved, &((struct sockaddr_in *)&ss)->sin_addr);
    }
    acl_eval_dest(sets[P_DEST], &rb.req, &first, (const struct sockaddr *)&ss, &d);
    ck_assert_msg(d.action == c->want && d.rule_id == c->want_rule,
                  "case %d '%s' -> %s: got %s rule %d (%s), want %s rule %d", _i, c->request,
                  c->resolved, acl_action_str(d.action), d.rule_id, d.reason,
                  acl_action_str(c->want), c->want_rule);
    if (c->want_reason)
        ck_assert_msg(strstr(d.reason, c->want_reason), "case %d: reason '%s' lacks '%s'", _i,
                      d.reason, c->want_reason);
    /* Without a rule set nothing can say the address is fine: deny, as acl_eval does. */
    acl_eval_dest(NULL, &rb.req, &first, (const struct sockaddr *)&ss, &d);
    ck_assert_int_eq(d.action, ACL_DENY);
}
END_TEST

START_TEST(test_undecided_rule_is_named)
{
    struct req_buf rb;
    struct acl_decision d;
    req_make(&rb, "GET http://allow.test/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaab", LAN,
             NULL, MON, 600);
    rb.req.brief = true;
    acl_eval(sets[P_UNDECIDED], &rb.req, scratch, &d);
    ck_assert_int_eq(d.action, ACL_ALLOW);
    ck_assert_int_eq(d.rule_id, 0);
    ck_assert_int_eq(d.undecided_rule_id, 1); /* counted even when the reason is skipped */
    req_make(&rb, "GET http://deny.test/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaab", LAN,
             NULL, MON, 600);
    acl_eval(sets[P_UNDECIDED], &rb.req, scratch, &d);
    ck_assert_int_eq(d.undecided_rule_id, 2);
    req_make(&rb, "GET http://deny.test/aaaa", LAN, NULL, MON, 600);
    acl_eval(sets[P_UNDECIDED], &rb.req, scratch, &d);
    ck_assert_int_eq(d.undecided_rule_id, 0);
}
END_TEST

START_TEST(test_null_set_denies)
{
    struct req_buf rb;
    struct acl_decision d;
    req_make(&rb, "GET http://a.test/", LAN, NULL, MON, 600);
    acl_eval(NULL, &rb.req, scratch, &d);
    ck_assert_int_eq(d.action, ACL_DENY);
    ck_assert_str_eq(d.reason, "no policy loaded");
}
END_TEST

START_TEST(test_brief_request_leaves_allow_reason_empty_but_explains_denials)
{
    struct acl_rule_src rules[] = {{1, true, "allow domain ok.test"},
                                   {2, true, "deny domain bad.test"}};
    struct acl_config cfg = {.rules = rules, .nrules = 2};
    struct acl_error err;
    struct acl_set *set = acl_set_compile(&cfg, &err);
    ck_assert_ptr_nonnull(set);
    struct req_buf rb;
    struct acl_decision d;
    const char *urls[] = {"GET http://ok.test/", "GET http://other.test/", "GET http://bad.test/"};
    const enum acl_action want[] = {ACL_ALLOW, ACL_ALLOW, ACL_DENY};
    for (int i = 0; i < 3; i++) {
        for (int brief = 0; brief < 2; brief++) {
            req_make(&rb, urls[i], LAN, NULL, MON, 600);
            rb.req.brief = brief;
            strcpy(d.reason, "stale");
            acl_eval(set, &rb.req, scratch, &d);
            ck_assert_int_eq(d.action, want[i]);
            if (brief && want[i] == ACL_ALLOW)
                ck_assert_str_eq(d.reason, "");
            else
                ck_assert_int_gt(strlen(d.reason), 10);
        }
    }
    acl_set_free(set);
}
END_TEST

/* Whether a client may be closed unread: only when no request of its could be allowed. */
static const struct {
    int policy;
    const char *client;
    bool admitted;
} admit_cases[] = {
    {P_DOMAIN, "10.1.2.3", true}, /* private network, deny rules only */
    {P_DOMAIN, "127.0.0.1", true},
    {P_DOMAIN, "::1", true},
    {P_DOMAIN, "8.8.8.8", false}, /* elsewhere, and no rule allows anything */
    {P_DOMAIN, "2001:db8::9", false},
    {P_NET, "192.0.2.9", true},        /* allow client 192.0.2.0/24 */
    {P_NET, "::ffff:192.0.2.9", true}, /* the same, IPv4-mapped */
    {P_NET, "203.0.113.5", true},      /* allow client 203.0.113.5 */
    {P_NET, "203.0.113.6", false},
    {P_MIXED, "8.8.8.8", true}, /* allow url-regex: for anyone */
    {P_AUTH, "10.2.0.1", true},
    {P_AUTH, "8.8.8.8", false},       /* allow user alice clients 10.2.0.0/16 */
    {P_CUSTOM, "198.51.100.7", true}, /* allowed networks replaced */
    {P_CUSTOM, "10.0.0.1", false},
    {P_CUSTOM, "127.0.0.1", false},
};

START_TEST(test_client_admitted_only_when_some_request_could_pass)
{
    struct req_buf rb;
    req_make(&rb, "GET http://a.test/", admit_cases[_i].client, NULL, MON, 600);
    ck_assert_msg(acl_client_admitted(sets[admit_cases[_i].policy], rb.req.client) ==
                      admit_cases[_i].admitted,
                  "case %d: %s", _i, admit_cases[_i].client);
    ck_assert(!acl_client_admitted(NULL, rb.req.client));
}
END_TEST

START_TEST(test_memory_grows_with_rules)
{
    ck_assert_uint_gt(acl_set_memory(sets[P_URL]), acl_set_memory(sets[P_CUSTOM]));
}
END_TEST

int main(void)
{
    Suite *s = suite_create("acl_eval");
    TCase *tc = tcase_create("eval");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_loop_test(tc, test_decision_matches_table, 0,
                        (int)(sizeof(cases) / sizeof(cases[0])));
    tcase_add_loop_test(tc, test_deny_dest_applies_to_resolved_addresses, 0,
                        (int)(sizeof(dest_cases) / sizeof(dest_cases[0])));
    tcase_add_test(tc, test_undecided_rule_is_named);
    tcase_add_test(tc, test_indexed_eval_agrees_with_rule_by_rule);
    tcase_add_test(tc, test_null_set_denies);
    tcase_add_test(tc, test_report_rules_never_decide);
    tcase_add_test(tc, test_inspect_rules_and_the_no_inspect_list);
    tcase_add_test(tc, test_groups_expand_into_conditions);
    tcase_add_test(tc, test_expired_rule_stops_matching_on_time);
    tcase_add_test(tc, test_brief_request_leaves_allow_reason_empty_but_explains_denials);
    tcase_add_test(tc, test_memory_grows_with_rules);
    tcase_add_loop_test(tc, test_client_admitted_only_when_some_request_could_pass, 0,
                        (int)(sizeof(admit_cases) / sizeof(admit_cases[0])));
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
