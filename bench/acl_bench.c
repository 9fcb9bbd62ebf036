/* acl_bench.c: how fast the ACL compiles and decides with a big policy.
 *
 * Two policies, each with 1,000 regex rules (url-regex and host-regex with different
 * literals, a few without any literal) and 100,000 generated domains: once as 100,000
 * `deny domain` rules, once as one `deny list big` over a 100,000-domain list. For each:
 * compile time, acl_set_memory, RSS growth, and the time of 1,000,000 acl_eval calls over a
 * mix of requests (list hits, subdomain hits, regex hits, misses), each call timed with
 * CLOCK_MONOTONIC; median, p99 and mean in ns. Targets: compile < 1 s, median < 2 us.
 * Then the time acl_list_parse takes over those domains as a 100,000-line hosts file.
 *
 * Usage: acl_bench [evaluations]   (default 1000000)
 */
#include "acl/acl.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define NDOMAINS 100000
#define NREGEX 1000
#define NREQ 8192

static const char *const words[] = {
    "news", "shop", "mail", "video", "cloud", "photo",  "game", "sport", "travel", "music",
    "bank", "food", "auto", "home",  "tech",  "health", "book", "job",   "film",   "radio",
};
static const char *const tlds[] = {"com", "net", "org", "io", "de", "fr", "co.uk", "info"};
#define NWORDS (sizeof(words) / sizeof(words[0]))
#define NTLDS (sizeof(tlds) / sizeof(tlds[0]))

static unsigned long rng = 88172645463325252ul;

static unsigned rnd(unsigned n)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (unsigned)(rng % n);
}

static double now_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec * 1e3 + (double)t.tv_nsec / 1e6;
}

static long rss_kib(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    long pages = 0, resident = 0;
    if (f) {
        if (fscanf(f, "%ld %ld", &pages, &resident) != 2)
            resident = 0;
        fclose(f);
    }
    return resident * (sysconf(_SC_PAGESIZE) / 1024);
}

static void domain_name(unsigned i, char *buf, size_t len)
{
    snprintf(buf, len, "%s%u.%s-%u.%s", words[i % NWORDS], i, words[(i / 7) % NWORDS], i % 113,
             tlds[i % NTLDS]);
}

/* 1,000 regex rules: 500 ad-path url-regexes, 300 file-name url-regexes, 190 host-regexes,
 * 10 without a literal (checked on every request). */
static char *regex_rule(unsigned i)
{
    char buf[160];
    const char *w = words[i % NWORDS];
    if (i < 500)
        snprintf(buf, sizeof(buf), "deny url-regex ^https?://[^/]+/%s-ads%u/v[0-9]+/", w, i);
    else if (i < 800)
        snprintf(buf, sizeof(buf), "deny url-regex /%sbanner%u[0-9]*\\.(gif|png|js)", w, i);
    else if (i < 990)
        snprintf(buf, sizeof(buf), "deny host-regex ^(ad|trk)%u[0-9]*\\.%s\\.", i, w);
    else
        snprintf(buf, sizeof(buf), "deny url-regex \\.(exe|scr|bat%u)$", i);
    return strdup(buf);
}

struct request {
    char host[128];
    struct acl_host canon; /* what proxyd's parser hands the ACL */
    char path[160];
    const char *method;
    const char *scheme;
    uint16_t port;
};

static void make_requests(struct request *rq, unsigned n)
{
    static const char *const paths[] = {
        "/",
        "/index.html",
        "/static/js/app.min.js?v=",
        "/images/photo.jpg?id=",
        "/api/v2/items?sort=desc&page=",
        "/%7Euser/profile",
        "/search?q=weather+",
    };
    for (unsigned i = 0; i < n; i++) {
        struct request *r = &rq[i];
        unsigned kind = rnd(100);
        char dom[100];
        r->method = rnd(10) ? "GET" : "POST";
        r->scheme = "http";
        r->port = 80;
        snprintf(r->path, sizeof(r->path), "%s%u", paths[rnd(7)], rnd(100000));
        if (kind < 25) { /* a listed domain */
            domain_name(rnd(NDOMAINS), r->host, sizeof(r->host));
        } else if (kind < 40) { /* a subdomain of a listed domain */
            domain_name(rnd(NDOMAINS), dom, sizeof(dom));
            snprintf(r->host, sizeof(r->host), "www.%s", dom);
        } else if (kind < 45) { /* an ad path */
            unsigned k = rnd(500);
            snprintf(r->host, sizeof(r->host), "cdn%u.example.org", rnd(1000));
            snprintf(r->path, sizeof(r->path), "/%s-ads%u/v%u/banner.js", words[k % NWORDS], k,
                     rnd(9));
        } else if (kind < 50) { /* an ad host */
            unsigned k = 800 + rnd(190);
            snprintf(r->host, sizeof(r->host), "ad%u7.%s.example", k, words[k % NWORDS]);
        } else if (kind < 55) { /* CONNECT to an unlisted site */
            snprintf(r->host, sizeof(r->host), "login.%s%u.example.net", words[rnd(NWORDS)],
                     rnd(100000));
            r->method = "CONNECT";
            r->scheme = "https";
            r->port = 443;
            r->path[0] = '\0';
        } else { /* a miss that looks like the listed names */
            snprintf(r->host, sizeof(r->host), "www.%s%u.%s-x%u.%s", words[rnd(NWORDS)],
                     rnd(1000000), words[rnd(NWORDS)], rnd(113), tlds[rnd(NTLDS)]);
        }
        const char *why;
        if (acl_host_parse(r->host, strlen(r->host), &r->canon, &why) != 0) {
            fprintf(stderr, "bad host %s: %s\n", r->host, why);
            exit(1);
        }
    }
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

struct result {
    double compile_ms;
    size_t set_bytes;
    long rss_growth_kib;
    uint32_t median_ns, p99_ns, max_ns;
    double mean_ns;
    unsigned long denies;
};

static int run(const char *label, const struct acl_config *cfg, const struct request *rq,
               unsigned long evals, uint32_t *times, struct result *res)
{
    struct acl_error err;
    long rss0 = rss_kib();
    double t0 = now_ms();
    struct acl_set *set = acl_set_compile(cfg, &err);
    res->compile_ms = now_ms() - t0;
    if (!set) {
        fprintf(stderr, "%s: compile failed: %s\n", label, err.msg);
        return -1;
    }
    res->rss_growth_kib = rss_kib() - rss0;
    res->set_bytes = acl_set_memory(set);

    struct acl_scratch *s = acl_scratch_new();
    struct sockaddr_in client = {.sin_family = AF_INET};
    inet_pton(AF_INET, "10.1.2.3", &client.sin_addr);
    struct acl_decision d;
    res->denies = 0;
    double total = 0;
    for (unsigned long i = 0; i < evals; i++) {
        const struct request *r = &rq[i % NREQ];
        struct acl_request req = {
            .scheme = r->scheme,
            .host = &r->canon,
            .port = r->port,
            .path = r->path,
            .path_len = strlen(r->path),
            .method = r->method,
            .method_len = strlen(r->method),
            .client = (const struct sockaddr *)&client,
            .clock = {.wday = 2, .minute = 600},
        };
        struct timespec a, b;
        clock_gettime(CLOCK_MONOTONIC, &a);
        acl_eval(set, &req, s, &d);
        clock_gettime(CLOCK_MONOTONIC, &b);
        uint32_t ns = (uint32_t)((b.tv_sec - a.tv_sec) * 1000000000L + (b.tv_nsec - a.tv_nsec));
        times[i] = ns;
        total += ns;
        res->denies += d.action == ACL_DENY;
    }
    qsort(times, evals, sizeof(*times), cmp_u32);
    res->median_ns = times[evals / 2];
    res->p99_ns = times[evals * 99 / 100];
    res->max_ns = times[evals - 1];
    res->mean_ns = total / (double)evals;
    acl_scratch_free(s);
    acl_set_free(set);
    return 0;
}

static void print_row(const char *label, size_t nrules, const struct result *r, unsigned long evals)
{
    printf("%-26s %7zu %10.1f %9.1f %9.1f %9u %8u %8.0f %9u %6.1f%%\n", label, nrules,
           r->compile_ms, (double)r->set_bytes / (1024.0 * 1024.0),
           (double)r->rss_growth_kib / 1024.0, r->median_ns, r->p99_ns, r->mean_ns, r->max_ns,
           100.0 * (double)r->denies / (double)evals);
}

int main(int argc, char **argv)
{
    unsigned long evals = argc > 1 ? strtoul(argv[1], NULL, 10) : 1000000ul;
    if (evals == 0)
        evals = 1;
    char **domains = malloc(NDOMAINS * sizeof(char *));
    struct acl_rule_src *rules = malloc((NDOMAINS + NREGEX + 1) * sizeof(*rules));
    struct request *rq = malloc(NREQ * sizeof(*rq));
    uint32_t *times = malloc(evals * sizeof(uint32_t));
    if (!domains || !rules || !rq || !times) {
        fprintf(stderr, "out of memory\n");
        return 1;
    }
    for (unsigned i = 0; i < NDOMAINS; i++) {
        char buf[128];
        domain_name(i, buf, sizeof(buf));
        domains[i] = strdup(buf);
    }
    make_requests(rq, NREQ);

    /* Regex rules first, so every request walks past them before any domain decides. */
    size_t n = 0;
    for (unsigned i = 0; i < NREGEX; i++)
        rules[n++] =
            (struct acl_rule_src){.id = (int)n + 1, .enabled = true, .text = regex_rule(i)};
    size_t nregex = n;

    /* Timer cost, to read the per-call figures against. */
    struct timespec a, b;
    uint32_t overhead = UINT32_MAX;
    for (int i = 0; i < 1000; i++) {
        clock_gettime(CLOCK_MONOTONIC, &a);
        clock_gettime(CLOCK_MONOTONIC, &b);
        uint32_t ns = (uint32_t)((b.tv_sec - a.tv_sec) * 1000000000L + (b.tv_nsec - a.tv_nsec));
        if (ns < overhead)
            overhead = ns;
    }

    printf("acl_bench: %d domains, %d regex rules, %lu evaluations over %d requests\n", NDOMAINS,
           NREGEX, evals, NREQ);
    printf("(per-call times include one clock_gettime pair, about %u ns here)\n\n", overhead);
    printf("%-26s %7s %10s %9s %9s %9s %8s %8s %9s %7s\n", "variant", "rules", "compile_ms",
           "set_MiB", "rss_MiB", "median_ns", "p99_ns", "mean_ns", "max_ns", "denied");

    /* A: one rule per domain. */
    for (unsigned i = 0; i < NDOMAINS; i++) {
        char buf[160];
        snprintf(buf, sizeof(buf), "deny domain %s", domains[i]);
        rules[n++] = (struct acl_rule_src){.id = (int)n + 1, .enabled = true, .text = strdup(buf)};
    }
    struct acl_config cfg = {.rules = rules, .nrules = n};
    struct result ra;
    if (run("A", &cfg, rq, evals, times, &ra) != 0)
        return 1;
    print_row("100k domain rules + regex", n, &ra, evals);
    for (size_t i = nregex; i < n; i++)
        free((char *)rules[i].text);

    /* B: one list rule over the same domains. */
    n = nregex;
    rules[n++] = (struct acl_rule_src){.id = (int)n + 1, .enabled = true, .text = "deny list big"};
    struct acl_list_src list = {"big", (const char *const *)domains, NDOMAINS};
    cfg = (struct acl_config){.rules = rules, .nrules = n, .lists = &list, .nlists = 1};
    struct result rb;
    if (run("B", &cfg, rq, evals, times, &rb) != 0)
        return 1;
    print_row("100k list + regex", n, &rb, evals);

    /* The list as an imported hosts file: parse (and dedupe) time. */
    {
        size_t cap = (size_t)NDOMAINS * 160, len = 0;
        char *text = malloc(cap), **parsed;
        size_t nparsed;
        struct acl_list_stats ls;
        if (!text) {
            fprintf(stderr, "out of memory\n");
            return 1;
        }
        for (unsigned i = 0; i < NDOMAINS; i++)
            len += (size_t)snprintf(text + len, cap - len, "0.0.0.0 %s\n", domains[i]);
        double t0 = now_ms();
        if (acl_list_parse(text, len, &parsed, &nparsed, &ls) != 0) {
            fprintf(stderr, "acl_list_parse failed\n");
            return 1;
        }
        printf("\nacl_list_parse of a %d-line hosts file: %.1f ms (%zu domains)\n", NDOMAINS,
               now_ms() - t0, nparsed);
        acl_list_free(parsed, nparsed);
        free(text);
    }

    printf("\ntargets: compile < 1000 ms, median < 2000 ns\n");
    for (size_t i = 0; i < nregex; i++)
        free((char *)rules[i].text);
    for (unsigned i = 0; i < NDOMAINS; i++)
        free(domains[i]);
    free(domains);
    free(rules);
    free(rq);
    free(times);
    return 0;
}
