/* test_dns: the c-ares resolver and shared cache of proxy/dns.c, run against
 * tests/e2e/dnsstub.py on 127.0.0.1 (never the machine's resolver). The stub is started once
 * by main() and killed by PID at exit; its stderr log ("query <proto> <type> <name>") tells
 * the tests how many questions actually reached the server. Every loop run has a deadline,
 * a hang guard only: a run ends as soon as what it waits for has happened, and no verdict
 * depends on how long that took (a loaded machine under sanitizers may take many times
 * longer than an idle one). The resolver's own timeout is as long for the same reason,
 * except where a test is about that timeout.
 */
#include "proxy/dns.h"
#include "proxy/ev.h"

#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef DNSSTUB_PATH
#error "DNSSTUB_PATH must name tests/e2e/dnsstub.py"
#endif
#ifndef PYTHON3_PATH
#define PYTHON3_PATH "python3"
#endif

#define TIMEOUT_MS 30000      /* lookups that are answered: never their verdict */
#define SHORT_TIMEOUT_MS 1500 /* the tests of names that are never answered */
#define RUN_MAX_MS 30000      /* a loop run's hang guard */
#define NEG_TTL_S 1

static pid_t stub_pid = -1;
static pid_t stub_owner = -1; /* Check's forked children must not kill the parent's stub */
static int stub_port;
static char stub_log[] = "/tmp/test_dns_stub_XXXXXX";

static void stub_stop(void)
{
    if (stub_pid <= 0 || getpid() != stub_owner)
        return;
    kill(stub_pid, SIGTERM);
    for (int i = 0; i < 50; i++) {
        if (waitpid(stub_pid, NULL, WNOHANG) == stub_pid) {
            stub_pid = -1;
            break;
        }
        usleep(100 * 1000);
    }
    if (stub_pid > 0) {
        kill(stub_pid, SIGKILL);
        waitpid(stub_pid, NULL, 0);
        stub_pid = -1;
    }
    unlink(stub_log);
}

static void stub_start(void)
{
    int logfd = mkstemp(stub_log);
    int out[2];
    if (logfd < 0 || pipe(out) < 0) {
        perror("test_dns: stub log or pipe");
        exit(1);
    }
    /* Option and value pairs; every name below is served only by this stub. */
    static const char *const opts[][2] = {
        {"--ttl", "30"},
        {"--record", "both.test=127.0.0.1,::1"},
        {"--record", "v4.test=127.0.0.2"},
        {"--record", "v6.test=::1"},
        {"--record", "mixed.test=10.0.0.1,10.0.0.2,10.0.0.3,10.0.0.4,10.0.0.5,"
                     "fd00::1,fd00::2,fd00::3,fd00::4,fd00::5"},
        {"--record", "big.test=10.1.0.1,10.1.0.2,10.1.0.3,10.1.0.4,10.1.0.5,10.1.0.6,10.1.0.7,"
                     "10.1.0.8,10.1.0.9,10.1.0.10,10.1.0.11,10.1.0.12,10.1.0.13,10.1.0.14,"
                     "10.1.0.15,10.1.0.16,10.1.0.17,10.1.0.18,10.1.0.19,10.1.0.20,10.1.0.21,"
                     "10.1.0.22,10.1.0.23,10.1.0.24,10.1.0.25,10.1.0.26,10.1.0.27,10.1.0.28,"
                     "10.1.0.29,10.1.0.30,10.1.0.31,10.1.0.32,10.1.0.33,10.1.0.34,10.1.0.35"},
        {"--record", "cached.test=127.0.0.3"},
        {"--record", "short.test=127.0.0.4"},
        {"--ttl-of", "short.test=1"},
        {"--record", "coalesce.test=127.0.0.5"},
        {"--record", "slow.test=127.0.0.6"},
        {"--delay", "slow.test=400"},
        {"--record", "slow2.test=127.0.0.6"},
        {"--delay", "slow2.test=400"},
        {"--record", "*.many.test=127.0.1.1"},
        {"--drop", "never.test"},
        {"--drop", "never2.test"},
        {"--drop", "never3.test"},
        {"--servfail", "broken.test"},
    };
    enum { NOPTS = sizeof(opts) / sizeof(opts[0]) };
    const char *argv[4 + 2 * NOPTS + 1];
    size_t argc = 0;
    argv[argc++] = PYTHON3_PATH;
    argv[argc++] = DNSSTUB_PATH;
    argv[argc++] = "--port";
    argv[argc++] = "0";
    for (size_t i = 0; i < NOPTS; i++) {
        argv[argc++] = opts[i][0];
        argv[argc++] = opts[i][1];
    }
    argv[argc] = NULL;
    stub_owner = getpid();
    stub_pid = fork();
    if (stub_pid < 0) {
        perror("test_dns: fork");
        exit(1);
    }
    if (stub_pid == 0) {
        dup2(out[1], STDOUT_FILENO);
        dup2(logfd, STDERR_FILENO);
        close(out[0]);
        close(out[1]);
        close(logfd);
        execvp(argv[0], (char *const *)argv);
        _exit(127);
    }
    close(out[1]);
    close(logfd);
    atexit(stub_stop);

    char line[64];
    size_t len = 0;
    struct pollfd pfd = {.fd = out[0], .events = POLLIN};
    while (len < sizeof(line) - 1 && !memchr(line, '\n', len)) {
        if (poll(&pfd, 1, 60000) <= 0)
            break;
        ssize_t n = read(out[0], line + len, sizeof(line) - 1 - len);
        if (n <= 0)
            break;
        len += (size_t)n;
    }
    line[len] = '\0';
    close(out[0]);
    if (sscanf(line, "PORT %d", &stub_port) != 1 || stub_port <= 0) {
        fprintf(stderr, "test_dns: dnsstub did not report its port (got '%s')\n", line);
        exit(1);
    }
}

/* Questions of type qtype ("A", "AAAA") about name that reached the stub over proto ("udp",
 * "tcp", or NULL for both). */
static int stub_queries(const char *proto, const char *qtype, const char *name)
{
    FILE *f = fopen(stub_log, "r");
    ck_assert_ptr_nonnull(f);
    char line[512], p[16], t[16], n[300];
    int count = 0;
    while (fgets(line, sizeof(line), f))
        if (sscanf(line, "query %15s %15s %299s", p, t, n) == 3 && strcmp(t, qtype) == 0 &&
            strcmp(n, name) == 0 && (!proto || strcmp(p, proto) == 0))
            count++;
    fclose(f);
    return count;
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* One loop and one resolver; the cache may outlive them (it is shared in the proxy). */
struct fixture {
    struct ev_loop *loop;
    struct dns_resolver *r;
    struct dns_cache *cache;
    int outstanding; /* callbacks still expected */
    int64_t deadline_ms;
    int64_t min_end_ms;
    bool (*until)(struct fixture *); /* NULL, or what must hold besides the callbacks */
};

struct answer {
    struct fixture *f;
    int calls;
    int64_t at_ms;
    struct dns_result res;
};

static void on_answer(void *arg, const struct dns_result *res)
{
    struct answer *a = arg;
    a->calls++;
    a->res = *res;
    a->at_ms = now_ms();
    a->f->outstanding--;
}

static void on_tick(struct ev_loop *loop, void *arg)
{
    struct fixture *f = arg;
    dns_resolver_tick(f->r);
    int64_t t = now_ms();
    if (t >= f->deadline_ms ||
        (f->outstanding <= 0 && t >= f->min_end_ms && (!f->until || f->until(f))))
        ev_stop(loop);
}

static void fixture_open_timeout(struct fixture *f, struct dns_cache *cache, int timeout_ms)
{
    char server[64], err[256] = "";
    snprintf(server, sizeof(server), "127.0.0.1:%d", stub_port);
    const char *servers[] = {server};
    f->cache = cache;
    f->loop = ev_loop_new(1024);
    ck_assert_ptr_nonnull(f->loop);
    f->r = dns_resolver_new(f->loop, cache, servers, 1, timeout_ms, err, sizeof(err));
    ck_assert_msg(f->r != NULL, "dns_resolver_new: %s", err);
    f->outstanding = 0;
    f->until = NULL;
    ev_tick_set(f->loop, 20, on_tick, f);
}

static void fixture_open(struct fixture *f, struct dns_cache *cache)
{
    fixture_open_timeout(f, cache, TIMEOUT_MS);
}

static void fixture_close(struct fixture *f)
{
    dns_resolver_free(f->r);
    ev_loop_free(f->loop);
    f->r = NULL;
    f->loop = NULL;
}

/* Runs the loop until every expected callback came and f->until holds (but at least min_ms),
 * or max_ms. A loop runs once (ev_stop is final), so multi-step tests open a new fixture per
 * step. */
static void fixture_run(struct fixture *f, int min_ms, int max_ms)
{
    f->min_end_ms = now_ms() + min_ms;
    f->deadline_ms = now_ms() + max_ms;
    ck_assert_int_eq(ev_run(f->loop), 0);
}

/* dns_resolve on the canonical form of text, as proxyd's parser hands hosts over. */
static int resolve(struct dns_resolver *r, const char *text, uint16_t port, struct answer *a,
                   struct dns_query **q, struct dns_result *now)
{
    struct acl_host h;
    const char *why;
    ck_assert_msg(acl_host_parse(text, strlen(text), &h, &why) == 0, "%s: %s", text, why);
    return dns_resolve(r, &h, port, on_answer, a, q, now);
}

/* Starts a lookup expected to need the network. */
static struct dns_query *start(struct fixture *f, const char *name, uint16_t port, struct answer *a)
{
    struct dns_query *q = NULL;
    struct dns_result now;
    a->f = f;
    int rc = resolve(f->r, name, port, a, &q, &now);
    ck_assert_msg(rc == PX_AGAIN, "%s: dns_resolve returned %d, expected a query", name, rc);
    ck_assert_ptr_nonnull(q);
    f->outstanding++;
    return q;
}

static void addr_str(const struct sockaddr_storage *ss, char *buf, size_t len, int *port)
{
    if (ss->ss_family == AF_INET6) {
        const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)ss;
        inet_ntop(AF_INET6, &s6->sin6_addr, buf, (socklen_t)len);
        *port = ntohs(s6->sin6_port);
    } else {
        const struct sockaddr_in *s4 = (const struct sockaddr_in *)ss;
        inet_ntop(AF_INET, &s4->sin_addr, buf, (socklen_t)len);
        *port = ntohs(s4->sin_port);
    }
}

/* Checks res against a comma-separated address list, in order, each with port. */
static void expect_addrs(const char *what, const struct dns_result *res, const char *want,
                         uint16_t port)
{
    char got[512] = "";
    for (size_t i = 0; i < res->naddrs; i++) {
        char a[INET6_ADDRSTRLEN];
        int p;
        addr_str(&res->addrs[i], a, sizeof(a), &p);
        ck_assert_msg(p == port, "%s: address %zu has port %d, want %u", what, i, p, port);
        if (i)
            strcat(got, ",");
        strcat(got, a);
    }
    ck_assert_msg(strcmp(got, want) == 0, "%s: got '%s', want '%s'", what, got, want);
}

/* The answer a came from the network just now; within ttl_ms of it, the same name is a
 * cache hit. Checked only while that holds for sure (a loaded machine may have spent the
 * TTL already before the loop stopped), so the verdict does not depend on the pace. */
static void expect_hit_within_ttl(struct dns_resolver *r, const char *name, struct answer *a,
                                  int ttl_ms)
{
    struct dns_result now;
    struct dns_query *q;
    int64_t t0 = now_ms();
    int rc = resolve(r, name, 80, a, &q, &now);
    if (t0 - a->at_ms < ttl_ms / 2) {
        ck_assert_msg(rc == PX_OK, "%s: not a cache hit %lld ms after its answer", name,
                      (long long)(t0 - a->at_ms));
        ck_assert_int_eq(now.status, a->res.status);
        ck_assert_uint_eq(now.naddrs, a->res.naddrs);
    } else {
        fprintf(stderr, "test_dns: %s: hit within the TTL not checked (%lld ms later)\n", name,
                (long long)(t0 - a->at_ms));
        if (rc == PX_AGAIN)
            dns_cancel(q);
    }
}

/* Both slow names have been answered and cached. */
static bool both_slow_cached(struct fixture *f)
{
    return dns_cache_size(f->cache) >= 2;
}

START_TEST(test_status_names)
{
    static const struct {
        enum dns_status s;
        const char *name;
    } cases[] = {
        {DNS_OK, "ok"},
        {DNS_NXDOMAIN, "nxdomain"},
        {DNS_TIMEOUT, "timeout"},
        {DNS_FAILED, "failed"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        ck_assert_str_eq(dns_status_str(cases[i].s), cases[i].name);
}
END_TEST

START_TEST(test_answers_follow_the_records)
{
    static const struct {
        const char *name;
        uint16_t port;
        enum dns_status status;
        const char *addrs; /* in the order expected; NULL: checked below */
    } cases[] = {
        {"both.test", 80, DNS_OK, "::1,127.0.0.1"},    /* IPv6 first */
        {"BOTH.Test.", 8080, DNS_OK, "::1,127.0.0.1"}, /* any case, trailing dot */
        {"v4.test", 443, DNS_OK, "127.0.0.2"},
        {"v6.test", 443, DNS_OK, "::1"},
        {"unknown.test", 80, DNS_NXDOMAIN, ""},
        {"broken.test", 80, DNS_FAILED, ""},
        {"mixed.test", 80, DNS_OK, NULL},
        {"big.test", 80, DNS_OK, NULL}, /* 35 A records: truncated over UDP, retried on TCP */
    };
    enum { N = sizeof(cases) / sizeof(cases[0]) };
    struct fixture f;
    struct answer ans[N];
    memset(ans, 0, sizeof(ans));
    fixture_open(&f, NULL);
    for (size_t i = 0; i < N; i++)
        start(&f, cases[i].name, cases[i].port, &ans[i]);
    fixture_run(&f, 0, RUN_MAX_MS);
    for (size_t i = 0; i < N; i++) {
        ck_assert_msg(ans[i].calls == 1, "%s: %d callbacks", cases[i].name, ans[i].calls);
        ck_assert_msg(ans[i].res.status == cases[i].status, "%s: status %s, want %s", cases[i].name,
                      dns_status_str(ans[i].res.status), dns_status_str(cases[i].status));
        if (cases[i].addrs)
            expect_addrs(cases[i].name, &ans[i].res, cases[i].addrs, cases[i].port);
    }
    /* mixed.test: 5 + 5 addresses, capped at DNS_MAX_ADDRS, families alternating. */
    const struct dns_result *mixed = &ans[6].res;
    ck_assert_uint_eq(mixed->naddrs, DNS_MAX_ADDRS);
    for (size_t i = 1; i < mixed->naddrs; i++)
        ck_assert_int_ne(mixed->addrs[i].ss_family, mixed->addrs[i - 1].ss_family);
    const struct dns_result *big = &ans[7].res;
    ck_assert_uint_eq(big->naddrs, DNS_MAX_ADDRS);
    ck_assert_int_ge(stub_queries("tcp", "A", "big.test"), 1);
    fixture_close(&f);
}
END_TEST

/* Questions that reached the stub about a name that starts with prefix and is longer. */
static int stub_queries_longer(const char *prefix)
{
    FILE *f = fopen(stub_log, "r");
    ck_assert_ptr_nonnull(f);
    char line[512], p[16], t[16], n[300];
    int count = 0;
    while (fgets(line, sizeof(line), f))
        if (sscanf(line, "query %15s %15s %299s", p, t, n) == 3 &&
            strncmp(n, prefix, strlen(prefix)) == 0 && strlen(n) > strlen(prefix))
            count++;
    fclose(f);
    return count;
}

/* An NXDOMAIN is the answer (not a timeout), and no search domain is tried after it (each
 * would cost a round trip). */
START_TEST(test_nxdomain_is_one_answer)
{
    struct fixture f;
    struct answer a = {0};
    fixture_open(&f, NULL);
    start(&f, "nosuchname.test", 80, &a);
    fixture_run(&f, 0, RUN_MAX_MS);
    ck_assert_int_eq(a.calls, 1);
    ck_assert_int_eq(a.res.status, DNS_NXDOMAIN);
    ck_assert_int_ge(stub_queries(NULL, "A", "nosuchname.test"), 1);
    ck_assert_int_eq(stub_queries_longer("nosuchname.test."), 0);
    fixture_close(&f);
}
END_TEST

START_TEST(test_second_lookup_is_a_cache_hit)
{
    struct dns_cache *cache = dns_cache_new(64, NEG_TTL_S);
    struct fixture f;
    struct answer a = {0};
    struct dns_result now;
    struct dns_query *q;
    fixture_open(&f, cache);
    start(&f, "cached.test", 80, &a);
    fixture_run(&f, 0, RUN_MAX_MS);
    ck_assert_int_eq(a.calls, 1);
    expect_addrs("first", &a.res, "127.0.0.3", 80);
    ck_assert_int_eq(resolve(f.r, "Cached.Test", 8443, &a, &q, &now), PX_OK);
    expect_addrs("cache hit", &now, "127.0.0.3", 8443);
    fixture_close(&f);

    /* Another worker's resolver sees the same cache. */
    fixture_open(&f, cache);
    ck_assert_int_eq(resolve(f.r, "cached.test", 81, &a, &q, &now), PX_OK);
    expect_addrs("other resolver", &now, "127.0.0.3", 81);
    fixture_close(&f);
    ck_assert_int_eq(stub_queries(NULL, "A", "cached.test"), 1);
    ck_assert_int_eq(a.calls, 1);
    ck_assert_uint_eq(dns_cache_size(cache), 1);
    dns_cache_free(cache);
}
END_TEST

START_TEST(test_expired_ttl_makes_a_new_query)
{
    struct dns_cache *cache = dns_cache_new(64, NEG_TTL_S);
    struct fixture f;
    struct answer a = {0}, b = {0};
    fixture_open(&f, cache);
    start(&f, "short.test", 80, &a); /* TTL 1 s */
    fixture_run(&f, 0, RUN_MAX_MS);
    ck_assert_int_eq(a.res.status, DNS_OK);
    expect_hit_within_ttl(f.r, "short.test", &a, 1000);
    fixture_close(&f);
    usleep(1500 * 1000); /* at least the TTL: the entry has expired, however slow the machine */
    fixture_open(&f, cache);
    start(&f, "short.test", 80, &b);
    fixture_run(&f, 0, RUN_MAX_MS);
    ck_assert_int_eq(b.calls, 1);
    expect_addrs("after expiry", &b.res, "127.0.0.4", 80);
    ck_assert_int_eq(stub_queries(NULL, "A", "short.test"), 2);
    fixture_close(&f);
    dns_cache_free(cache);
}
END_TEST

START_TEST(test_negative_answer_is_cached_briefly)
{
    struct dns_cache *cache = dns_cache_new(64, NEG_TTL_S);
    struct fixture f;
    struct answer a = {0}, b = {0};
    fixture_open(&f, cache);
    start(&f, "negative.test", 80, &a);
    fixture_run(&f, 0, RUN_MAX_MS);
    ck_assert_int_eq(a.res.status, DNS_NXDOMAIN);
    expect_hit_within_ttl(f.r, "negative.test", &a, NEG_TTL_S * 1000);
    ck_assert_int_eq(stub_queries(NULL, "A", "negative.test"), 1);
    fixture_close(&f);
    usleep((NEG_TTL_S * 1000 + 300) * 1000); /* past the TTL however slow the machine */
    fixture_open(&f, cache);
    start(&f, "negative.test", 80, &b);
    fixture_run(&f, 0, RUN_MAX_MS);
    ck_assert_int_eq(b.res.status, DNS_NXDOMAIN);
    ck_assert_int_eq(stub_queries(NULL, "A", "negative.test"), 2);
    fixture_close(&f);
    dns_cache_free(cache);
}
END_TEST

/* A name never answered ends in DNS_TIMEOUT, never before its timeout (timers do not fire
 * early); how soon after it is the loop's and the machine's pace, so only the hang guard of
 * the run bounds it. */
START_TEST(test_unanswered_name_times_out_and_is_not_cached)
{
    struct dns_cache *cache = dns_cache_new(64, NEG_TTL_S);
    struct fixture f;
    struct answer a = {0}, late = {0};
    fixture_open_timeout(&f, cache, SHORT_TIMEOUT_MS);
    int64_t t0 = now_ms();
    start(&f, "never.test", 80, &a);
    fixture_run(&f, 0, RUN_MAX_MS);
    int64_t took = a.at_ms - t0;
    ck_assert_int_eq(a.calls, 1);
    ck_assert_int_eq(a.res.status, DNS_TIMEOUT);
    fprintf(stderr, "test_dns: never.test timed out after %lld ms (timeout_ms %d)\n",
            (long long)took, SHORT_TIMEOUT_MS);
    ck_assert_msg(took >= SHORT_TIMEOUT_MS / 2, "timed out after %lld ms", (long long)took);
    /* c-ares retried once (DNS_TRIES) rather than giving up on the first lost datagram. */
    ck_assert_int_ge(stub_queries("udp", "A", "never.test"), 2);
    /* A timeout is not cached: the next request asks again. */
    start(&f, "never.test", 80, &late);
    ck_assert_uint_eq(dns_cache_size(cache), 0);
    fixture_close(&f); /* with that lookup pending: no callback, nothing leaked */
    ck_assert_int_eq(late.calls, 0);
    dns_cache_free(cache);
}
END_TEST

START_TEST(test_ip_literals_answer_at_once_from_their_address)
{
    static const struct {
        const char *host;
        const char *addrs;
    } cases[] = {
        {"127.0.0.1", "127.0.0.1"},
        {"10.1.2.3", "10.1.2.3"},
        {"::1", "::1"},
        {"[::1]", "::1"},
        {"[2001:db8::1]", "2001:db8::1"},
        {"[::ffff:10.0.0.1]", "10.0.0.1"}, /* IPv4-mapped: asked for as IPv4 */
    };
    struct dns_cache *cache = dns_cache_new(64, NEG_TTL_S);
    struct fixture f;
    struct answer a = {0};
    fixture_open(&f, cache);
    a.f = &f;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct dns_result now;
        struct dns_query *q = (struct dns_query *)&a; /* must be reset to NULL */
        int rc = resolve(f.r, cases[i].host, 3128, &a, &q, &now);
        ck_assert_msg(rc == PX_OK, "'%s': returned %d", cases[i].host, rc);
        ck_assert_ptr_null(q);
        ck_assert_msg(now.status == DNS_OK, "'%s': %s", cases[i].host, dns_status_str(now.status));
        expect_addrs(cases[i].host, &now, cases[i].addrs, 3128);
    }
    /* No host at all (never made by the parser) fails without a query. */
    struct acl_host none = {0};
    struct dns_result now;
    struct dns_query *q;
    ck_assert_int_eq(dns_resolve(f.r, &none, 80, on_answer, &a, &q, &now), PX_OK);
    ck_assert_int_eq(now.status, DNS_FAILED);
    ck_assert_int_eq(a.calls, 0);
    ck_assert_uint_eq(dns_cache_size(cache), 0);
    fixture_close(&f);
    dns_cache_free(cache);
}
END_TEST

START_TEST(test_localhost_comes_from_hosts_file)
{
    struct fixture f;
    struct answer a = {0};
    struct dns_result now;
    struct dns_query *q = NULL;
    fixture_open(&f, NULL);
    a.f = &f;
    int rc = resolve(f.r, "localhost", 80, &a, &q, &now);
    if (rc == PX_AGAIN) {
        f.outstanding++;
        fixture_run(&f, 0, RUN_MAX_MS);
        now = a.res;
    }
    ck_assert_int_eq(now.status, DNS_OK);
    bool loopback = false;
    for (size_t i = 0; i < now.naddrs; i++) {
        char s[INET6_ADDRSTRLEN];
        int p;
        addr_str(&now.addrs[i], s, sizeof(s), &p);
        loopback |= strcmp(s, "127.0.0.1") == 0 || strcmp(s, "::1") == 0;
    }
    ck_assert(loopback);
    ck_assert_int_eq(stub_queries(NULL, "A", "localhost"), 0);
    fixture_close(&f);
}
END_TEST

START_TEST(test_cancelled_query_never_calls_back)
{
    struct dns_cache *cache = dns_cache_new(64, NEG_TTL_S);
    struct fixture f;
    struct answer a = {0}, b = {0}, c = {0};
    struct dns_result now;
    struct dns_query *q;
    fixture_open(&f, cache);
    dns_cancel(start(&f, "slow.test", 80, &a));  /* the only waiter */
    dns_cancel(start(&f, "slow2.test", 80, &b)); /* one of two waiters */
    start(&f, "slow2.test", 81, &c);
    f.outstanding -= 2;
    /* Until both lookups have completed (their answers are cached), cancelled or not: a
     * callback of a cancelled query would have come with them. */
    f.until = both_slow_cached;
    fixture_run(&f, 0, RUN_MAX_MS);
    ck_assert_int_eq(a.calls, 0);
    ck_assert_int_eq(b.calls, 0);
    ck_assert_int_eq(c.calls, 1);
    expect_addrs("the other waiter", &c.res, "127.0.0.6", 81);
    /* The cancelled lookup still completed and filled the cache. */
    ck_assert_int_eq(resolve(f.r, "slow.test", 80, &a, &q, &now), PX_OK);
    expect_addrs("cache after cancel", &now, "127.0.0.6", 80);
    fixture_close(&f);
    dns_cache_free(cache);
}
END_TEST

START_TEST(test_concurrent_requests_for_one_name_share_a_query)
{
    enum { N = 10 };
    struct fixture f;
    struct answer a[N];
    memset(a, 0, sizeof(a));
    fixture_open(&f, NULL);
    for (int i = 0; i < N; i++)
        start(&f, "coalesce.test", (uint16_t)(1000 + i), &a[i]);
    fixture_run(&f, 0, RUN_MAX_MS);
    for (int i = 0; i < N; i++) {
        ck_assert_int_eq(a[i].calls, 1);
        expect_addrs("coalesced", &a[i].res, "127.0.0.5", (uint16_t)(1000 + i));
    }
    ck_assert_int_eq(stub_queries(NULL, "A", "coalesce.test"), 1);
    fixture_close(&f);
}
END_TEST

START_TEST(test_many_concurrent_names_all_answered)
{
    enum { N = 200 };
    struct dns_cache *cache = dns_cache_new(64, NEG_TTL_S);
    struct fixture f;
    static struct answer a[N];
    memset(a, 0, sizeof(a));
    fixture_open(&f, cache);
    int64_t t0 = now_ms();
    for (int i = 0; i < N; i++) {
        char name[64];
        snprintf(name, sizeof(name), "host%d.many.test", i);
        start(&f, name, 80, &a[i]);
    }
    fixture_run(&f, 0, RUN_MAX_MS);
    for (int i = 0; i < N; i++) {
        ck_assert_msg(a[i].calls == 1, "host%d: %d callbacks", i, a[i].calls);
        ck_assert_msg(a[i].res.status == DNS_OK, "host%d: %s", i, dns_status_str(a[i].res.status));
        expect_addrs("many", &a[i].res, "127.0.1.1", 80);
    }
    fprintf(stderr, "test_dns: %d lookups answered in %lld ms\n", N, (long long)(now_ms() - t0));
    /* The cache holds 64 entries at most: the rest were evicted. */
    ck_assert_uint_eq(dns_cache_size(cache), 64);
    fixture_close(&f);
    dns_cache_free(cache);
}
END_TEST

START_TEST(test_free_with_pending_lookups_calls_nobody)
{
    struct fixture f;
    struct answer a = {0}, b = {0}, c = {0};
    fixture_open(&f, NULL);
    start(&f, "never2.test", 80, &a);
    start(&f, "never2.test", 81, &b);
    start(&f, "never3.test", 80, &c); /* never answered either: no run is too slow for that */
    fixture_run(&f, 100, 100);
    fixture_close(&f);
    ck_assert_int_eq(a.calls + b.calls + c.calls, 0);
}
END_TEST

START_TEST(test_server_strings)
{
    static const struct {
        const char *server;
        bool ok;
    } cases[] = {
        {"127.0.0.1", true},
        {"127.0.0.1:5353", true},
        {"::1", true},
        {"[::1]", true},
        {"[::1]:53", true},
        {"127.0.0.1:0", false},
        {"127.0.0.1:65536", false},
        {"127.0.0.1:", false},
        {"127.0.0.1:x", false},
        {"[::1", false},
        {"[::1]x", false},
        {"dns.example", false},
        {"", false},
    };
    struct ev_loop *loop = ev_loop_new(64);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char err[256] = "";
        const char *servers[] = {cases[i].server};
        struct dns_resolver *r = dns_resolver_new(loop, NULL, servers, 1, 1000, err, sizeof(err));
        ck_assert_msg((r != NULL) == cases[i].ok, "'%s': %s", cases[i].server,
                      r ? "accepted" : err);
        if (!r)
            ck_assert_msg(err[0] != '\0', "'%s': no error text", cases[i].server);
        dns_resolver_free(r);
    }
    ev_loop_free(loop);
}
END_TEST

static Suite *dns_suite(void)
{
    Suite *s = suite_create("dns");
    TCase *tc = tcase_create("resolver");
    tcase_set_timeout(tc, 100); /* a hang guard: every loop run has its own of 30 s */
    tcase_add_test(tc, test_status_names);
    tcase_add_test(tc, test_answers_follow_the_records);
    tcase_add_test(tc, test_nxdomain_is_one_answer);
    tcase_add_test(tc, test_second_lookup_is_a_cache_hit);
    tcase_add_test(tc, test_expired_ttl_makes_a_new_query);
    tcase_add_test(tc, test_negative_answer_is_cached_briefly);
    tcase_add_test(tc, test_unanswered_name_times_out_and_is_not_cached);
    tcase_add_test(tc, test_ip_literals_answer_at_once_from_their_address);
    tcase_add_test(tc, test_localhost_comes_from_hosts_file);
    tcase_add_test(tc, test_cancelled_query_never_calls_back);
    tcase_add_test(tc, test_concurrent_requests_for_one_name_share_a_query);
    tcase_add_test(tc, test_many_concurrent_names_all_answered);
    tcase_add_test(tc, test_free_with_pending_lookups_calls_nobody);
    tcase_add_test(tc, test_server_strings);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    stub_start();
    SRunner *sr = srunner_create(dns_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    stub_stop();
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
