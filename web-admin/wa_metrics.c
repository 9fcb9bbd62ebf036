/* web-admin metrics and probes. See wa_metrics.h.
 *
 * Every line comes from base/stats.h's tables: a counter added there appears here without a
 * change. Names are "proxyd_" and the table's name; a counter gets "_total" unless its name
 * ends so, a histogram "_seconds". The numbers are a snapshot summed over the workers when
 * the request comes (proxyd's hook), so the hot path pays nothing for a scrape.
 */
#include <stdlib.h>
#include <string.h>

#include "base/clock.h"
#include "web-admin/wa_metrics.h"

#define PREFIX "proxyd_"
#define CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

static bool ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && !strcmp(s + n - m, suffix);
}

/* "# HELP" and "# TYPE" of one family; kind is "counter", "gauge" or "histogram". Writes the
 * family's full name into name (the sample name of a counter or gauge). */
static void family(FILE *f, const char *prefix, const char *base, const char *kind,
                   const char *help, char *name, size_t namelen)
{
    bool counter = !strcmp(kind, "counter");

    snprintf(name, namelen, "%s%s%s", prefix, base,
             counter && !ends_with(base, "_total") ? "_total" : "");
    fprintf(f, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, kind);
}

/* A label value, escaped as the format asks (backslash, double quote, newline). */
static void label_value(FILE *f, const char *v)
{
    for (; *v; v++) {
        if (*v == '\\' || *v == '"')
            fprintf(f, "\\%c", *v);
        else if (*v == '\n')
            fputs("\\n", f);
        else
            fputc(*v, f);
    }
}

/* One labelled family: labels is the table's comma-separated label names. */
static void group(FILE *f, const char *base, const char *kind, const char *labels, const char *help,
                  const struct wa_counter_set *set)
{
    char name[128];

    family(f, PREFIX, base, kind, help, name, sizeof(name));
    for (unsigned i = 0; i < set->n && i < WA_MAX_COUNTERS; i++) {
        const struct wa_counter *c = &set->c[i];
        const char *l = labels;

        if (!c->label[0])
            continue;
        fprintf(f, "%s{", name);
        for (unsigned k = 0; k < WA_MAX_LABELS && c->label[k] && *l; k++) {
            size_t n = strcspn(l, ",");

            fprintf(f, "%s%.*s=\"", k ? "," : "", (int)n, l);
            label_value(f, c->label[k]);
            fputc('"', f);
            l += n + (l[n] == ',');
        }
        fprintf(f, "} %llu\n", (unsigned long long)c->value);
    }
}

static void histogram(FILE *f, const char *base, const char *help, const struct wa_histogram *h)
{
    static const uint64_t bound_ns[] = {
#define B(n) n##ULL,
        STATS_BUCKETS_NS
#undef B
    };
    char name[128], base_s[96];
    uint64_t total = 0;

    snprintf(base_s, sizeof(base_s), "%s_seconds", base);
    family(f, PREFIX, base_s, "histogram", help, name, sizeof(name));
    for (unsigned b = 0; b < STATS_NBUCKETS; b++) {
        total += h->buckets[b];
        if (b + 1 < STATS_NBUCKETS)
            fprintf(f, "%s_bucket{le=\"%.9g\"} %llu\n", name, (double)bound_ns[b] / 1e9,
                    (unsigned long long)total);
        else
            fprintf(f, "%s_bucket{le=\"+Inf\"} %llu\n", name, (unsigned long long)total);
    }
    fprintf(f, "%s_sum %.9f\n%s_count %llu\n", name, (double)h->sum_ns / 1e9, name,
            (unsigned long long)total);
}

void wa_metrics_write(FILE *f, const struct wa_proxy_stats *p)
{
    char name[128];

    family(f, PREFIX, "start_time_seconds", "gauge", "when proxyd started, seconds since the epoch",
           name, sizeof(name));
    fprintf(f, "%s %.3f\n", name, (double)p->started_ms / 1000);
#define X(field, kind, what)                                                                       \
    family(f, PREFIX, #field, #kind, what, name, sizeof(name));                                    \
    fprintf(f, "%s %llu\n", name, (unsigned long long)p->field);
    STATS_WORKER_TABLE
    STATS_PROCESS_TABLE
#undef X
#define X(field, kind, what)                                                                       \
    family(f, PREFIX "log_", #field, #kind, what, name, sizeof(name));                             \
    fprintf(f, "%s %llu\n", name, (unsigned long long)p->log.field);
    STATS_LOG_TABLE
#undef X
#define X(field, kind, labels, what) group(f, #field, #kind, labels, what, &p->field);
    STATS_GROUP_TABLE
#undef X
#define X(field, what) histogram(f, #field, what, &p->field);
    STATS_HISTOGRAM_TABLE
#undef X
}

enum MHD_Result wa_metrics_get(struct wa_req *r)
{
    struct wa_proxy_stats *ps;
    char *text = NULL;
    size_t len = 0;
    FILE *f;
    enum MHD_Result rc;

    if (!r->ctx->opts->proxy_stats)
        return wa_reply_data(r, 200, CONTENT_TYPE, NULL, "", 0);
    /* Several kilobytes: off the MHD thread's stack. */
    ps = calloc(1, sizeof(*ps));
    f = ps ? open_memstream(&text, &len) : NULL;
    if (!f) {
        free(ps);
        return wa_reply_error(r, 500, NULL, "out of memory");
    }
    r->ctx->opts->proxy_stats(r->ctx->opts->hook_arg, ps);
    wa_metrics_write(f, ps);
    free(ps);
    if (fclose(f) != 0 || !text) {
        free(text);
        return wa_reply_error(r, 500, NULL, "out of memory");
    }
    rc = wa_reply_data(r, 200, CONTENT_TYPE, NULL, text, len);
    free(text);
    return rc;
}

enum MHD_Result wa_metrics_healthz(struct wa_req *r)
{
    return wa_reply_data(r, 200, "text/plain; charset=utf-8", NULL, "ok\n", 3);
}

enum MHD_Result wa_metrics_readyz(struct wa_req *r)
{
    char why[200] = "", text[256];
    int n;

    if (!r->ctx->opts->ready || r->ctx->opts->ready(r->ctx->opts->hook_arg, why, sizeof(why)))
        return wa_reply_data(r, 200, "text/plain; charset=utf-8", NULL, "ready\n", 6);
    n = snprintf(text, sizeof(text), "not ready: %s\n", why);
    return wa_reply_data(r, 503, "text/plain; charset=utf-8", NULL, text,
                         n > 0 && (size_t)n < sizeof(text) ? (size_t)n : sizeof(text) - 1);
}
