/* web-admin list subscriptions: the API, and the thread that fetches due lists and imports
 * them. See wa_subs.h.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "base/clock.h"
#include "web-admin/wa_change.h"
#include "web-admin/wa_lists.h"
#include "web-admin/wa_subs.h"

#define SUB_MIN_EVERY_S 60            /* default shortest interval: list hosts ask for hours */
#define SUB_MAX_EVERY_S (366 * 86400) /* longest interval */
#define SUB_POLL_S 1                  /* how often the thread looks for due subscriptions */
/* After the store failed to record a fetch (a locked or unreachable database), the thread waits
 * this long before fetching anything again: the subscription still looks due, and would
 * otherwise be downloaded once a second until the database is back. */
#define SUB_STORE_RETRY_MS 60000
#define SUB_URL_SHOWN (STORE_SUB_URL_MAX + 8) /* a URL with "***@" or "?***" put in */
#define SUB_WANTED_MAX 64                     /* refreshes asked for and not yet begun */

struct wa_subs {
    struct wa_ctx *ctx; /* borrowed */
    pthread_t thread;
    pthread_mutex_t mu; /* stopping, wanted, running, and the condition's */
    pthread_cond_t cv;
    bool stopping;
    _Atomic bool stop;      /* ends a download in progress */
    int64_t store_retry_ms; /* the thread's: no fetch before this (monotonic) */
    /* Refreshes asked for through the API, fetched by the thread before the due ones: the
     * request is answered at once, never held for a download (which may take a minute). */
    char wanted[SUB_WANTED_MAX][64];
    size_t nwanted;
    char running[64]; /* the subscription being fetched now; "" when none */
};

/* url into out (n bytes) without what may be a secret: the user and password before '@'
 * always, and the query (a token in "?key=...") too when hide_query is set. */
static void url_redacted(const char *url, bool hide_query, char *out, size_t n)
{
    const char *host = strstr(url, "://");
    host = host ? host + 3 : url;
    size_t authority = strcspn(host, "/?#");
    const char *at = memrchr(host, '@', authority); /* the last: a password may hold one */
    const char *rest = at ? at + 1 : host;
    size_t keep = hide_query ? strcspn(rest, "?#") : strlen(rest);

    snprintf(out, n, "%.*s%s%.*s%s", (int)(host - url), url, at ? "***@" : "", (int)keep, rest,
             rest[keep] ? "?***" : "");
}

/* ---- one fetch ---- */

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* True when list `name` holds exactly the domains (any order; both free of duplicates). */
static bool list_is(struct store *st, const char *name, char **domains, size_t n)
{
    char **have, err[256];
    size_t nhave;
    bool same;

    if (store_list_entries(st, name, &have, &nhave, err, sizeof(err)) < 0)
        return false;
    same = nhave == n;
    if (same && n) {
        char **mine = malloc(n * sizeof(*mine));

        if (!mine) {
            same = false;
        } else {
            memcpy(mine, domains, n * sizeof(*mine));
            qsort(mine, n, sizeof(*mine), cmp_str);
            qsort(have, n, sizeof(*have), cmp_str);
            for (size_t i = 0; same && i < n; i++)
                same = strcmp(mine[i], have[i]) == 0;
            free(mine);
        }
    }
    for (size_t i = 0; i < nhave; i++)
        free(have[i]);
    free(have);
    return same;
}

/* The list in the body of a 2xx answer: imported as a policy change, unless it is empty or
 * the same as the list in force. Fills sub's outcome (error "" when the list is as fetched). */
static void sub_import(struct wa_ctx *ctx, struct store *st, struct store_sub *sub,
                       const struct wa_fetch *f)
{
    struct acl_list_stats stats;
    char **domains = NULL, actor[96], message[WA_MESSAGE_MAX + 1], err[512];
    size_t n = 0;

    memset(&stats, 0, sizeof(stats));
    if (acl_list_parse(f->body ? f->body : "", f->len, &domains, &n, &stats) < 0) {
        snprintf(sub->error, sizeof(sub->error), "out of memory while parsing the list");
        return;
    }
    if (n == 0) {
        /* An empty answer is a broken mirror far more often than a wish to unblock all. */
        if (stats.skipped)
            snprintf(sub->error, sizeof(sub->error),
                     "download has no domains (%zu lines skipped, the first, line %d: %s); the "
                     "list was kept",
                     (size_t)stats.skipped, stats.first_skipped_line, stats.first_skipped_reason);
        else
            snprintf(sub->error, sizeof(sub->error), "download is empty; the list was kept");
    } else if (list_is(st, sub->name, domains, n)) {
        sub->entries = (int64_t)n; /* nothing new: no version for it */
    } else {
        /* The subscription is checked in the import's own transaction: one removed during
         * the download (which may take a minute) keeps its list as it is. */
        struct wa_change ch[] = {
            {.kind = WA_SUB_CURRENT,
             .list = sub->name,
             .text = sub->url,
             .version = sub->created_ms},
            {.kind = WA_LIST_REPLACE,
             .list = sub->name,
             .items = (const char *const *)domains,
             .nitems = n},
        };
        int rc;

        char shown[SUB_URL_SHOWN];

        /* Versions and their messages are shown to every role: no credentials in them. */
        url_redacted(sub->url, false, shown, sizeof(shown));
        snprintf(actor, sizeof(actor), "subscription:%s", sub->name);
        snprintf(message, sizeof(message), "subscription %s: %zu entries from %.400s", sub->name, n,
                 shown);
        rc = wa_change_apply_as(ctx, st, actor, message, ch, sizeof(ch) / sizeof(ch[0]), err,
                                sizeof(err));
        if (rc == 0) {
            sub->entries = (int64_t)n;
            sub->imported_ms = clock_wall_ms();
        } else {
            snprintf(sub->error, sizeof(sub->error), "%s: %.400s; the list was kept",
                     rc > 0 ? "not imported" : "cannot store it", err);
        }
    }
    if (!sub->error[0]) {
        snprintf(sub->etag, sizeof(sub->etag), "%s", f->etag_out);
        snprintf(sub->last_modified, sizeof(sub->last_modified), "%s", f->last_modified_out);
    }
    acl_list_free(domains, n);
}

/* Fetches subscription `name` now and records how it went: the thread's alone, so one
 * fetch at a time. 0; 1 when there is no such subscription; -1 with err when the store
 * failed. */
static int sub_run(struct wa_subs *subs, struct store *st, const char *name, char *err,
                   size_t errlen)
{
    const struct wa_options *o = subs->ctx->opts;
    struct store_sub sub;
    struct wa_fetch f;
    int rc;

    rc = store_sub_get(st, name, &sub, err, errlen);
    if (rc != 0)
        return rc;
    memset(&f, 0, sizeof(f));
    f.url = sub.url;
    f.etag = sub.etag;
    f.last_modified = sub.last_modified;
    f.max_bytes = o->list_max_bytes ? o->list_max_bytes : WA_LIST_LIMIT;
    f.stop = &subs->stop;
    sub.error[0] = '\0';
    sub.status = 0;
    if (o->list_fetch(o->hook_arg, &f) != PX_OK) {
        snprintf(sub.error, sizeof(sub.error), "%.400s; the list was kept",
                 f.err[0] ? f.err : "download failed");
    } else {
        sub.status = f.status;
        if (f.status == 304)
            ; /* not modified: the list and its validators stand */
        else if (f.status < 200 || f.status > 299)
            snprintf(sub.error, sizeof(sub.error), "HTTP status %d; the list was kept", f.status);
        else
            sub_import(subs->ctx, st, &sub, &f);
    }
    free(f.body);
    sub.checked_ms = clock_wall_ms();
    sub.next_ms = sub.checked_ms + sub.every_s * 1000;
    /* The download is done: a lock held a moment too long elsewhere must not lose its
     * outcome (a refresh's caller waits for it), so the record is tried again, twice. */
    for (int tries = 0; (rc = store_sub_record(st, &sub, err, errlen)) < 0 && tries < 2; tries++)
        ;
    return rc;
}

/* subs->running: the subscription the thread fetches now ("" when none). */
static void running_set(struct wa_subs *subs, const char *name)
{
    pthread_mutex_lock(&subs->mu);
    snprintf(subs->running, sizeof(subs->running), "%s", name);
    pthread_mutex_unlock(&subs->mu);
}

/* True when name waits to be fetched (the caller holds subs->mu). */
static bool wanted_locked(const struct wa_subs *subs, const char *name)
{
    for (size_t i = 0; i < subs->nwanted; i++)
        if (strcmp(subs->wanted[i], name) == 0)
            return true;
    return false;
}

/* Takes the oldest wanted refresh into name (64 bytes), running from now on (in one step, so
 * the API never sees it neither wanted nor running). False when none is wanted. */
static bool wanted_take(struct wa_subs *subs, char *name)
{
    bool any;

    pthread_mutex_lock(&subs->mu);
    any = subs->nwanted > 0;
    if (any) {
        memcpy(name, subs->wanted[0], 64);
        memcpy(subs->running, name, 64);
        memmove(subs->wanted[0], subs->wanted[1], (subs->nwanted - 1) * sizeof(subs->wanted[0]));
        subs->nwanted--;
    }
    pthread_mutex_unlock(&subs->mu);
    return any;
}

/* ---- the thread ---- */

static void run_due(struct wa_subs *subs)
{
    struct store_sub *rows;
    struct store *st;
    char err[512], name[64];
    bool wanted;
    size_t n;

    pthread_mutex_lock(&subs->mu);
    wanted = subs->nwanted > 0;
    pthread_mutex_unlock(&subs->mu);
    if (!wanted && clock_mono_ms() < subs->store_retry_ms)
        return;
    st = store_pool_get(subs->ctx->pool, err, sizeof(err));
    if (!st)
        return; /* a locked or missing database: the next round tries again */
    /* Asked for by an admin: fetched even while a failed record holds the schedule back (the
     * outcome, or the store's error, is what the admin waits for). */
    while (!atomic_load(&subs->stop) && wanted_take(subs, name)) {
        if (sub_run(subs, st, name, err, sizeof(err)) < 0)
            subs->store_retry_ms = clock_mono_ms() + SUB_STORE_RETRY_MS;
        running_set(subs, "");
    }
    if (clock_mono_ms() < subs->store_retry_ms) {
        store_pool_put(subs->ctx->pool, st);
        return;
    }
    if (store_subs_list(st, &rows, &n, err, sizeof(err)) == 0) {
        int64_t now = clock_wall_ms();

        for (size_t i = 0; i < n && !atomic_load(&subs->stop); i++) {
            if (rows[i].next_ms > now)
                continue;
            running_set(subs, rows[i].name);
            int rc = sub_run(subs, st, rows[i].name, err, sizeof(err));
            running_set(subs, "");
            if (rc < 0) {
                subs->store_retry_ms = clock_mono_ms() + SUB_STORE_RETRY_MS;
                break;
            }
        }
        free(rows);
    }
    store_pool_put(subs->ctx->pool, st);
}

static void *subs_main(void *arg)
{
    struct wa_subs *subs = arg;

    pthread_mutex_lock(&subs->mu);
    while (!subs->stopping) {
        struct timespec until;

        pthread_mutex_unlock(&subs->mu);
        run_due(subs);
        pthread_mutex_lock(&subs->mu);
        clock_gettime(CLOCK_MONOTONIC, &until);
        until.tv_sec += SUB_POLL_S;
        /* A new subscription signals, to be fetched at once; a spurious wake-up only looks
         * for due subscriptions early. */
        if (!subs->stopping)
            pthread_cond_timedwait(&subs->cv, &subs->mu, &until);
    }
    pthread_mutex_unlock(&subs->mu);
    return NULL;
}

struct wa_subs *wa_subs_start(struct wa_ctx *ctx, char *err, size_t errlen)
{
    struct wa_subs *subs = calloc(1, sizeof(*subs));
    pthread_condattr_t ca;

    if (!subs) {
        snprintf(err, errlen, "subscriptions: out of memory");
        return NULL;
    }
    subs->ctx = ctx;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&subs->cv, &ca);
    pthread_condattr_destroy(&ca);
    pthread_mutex_init(&subs->mu, NULL);
    atomic_init(&subs->stop, false);
    if (pthread_create(&subs->thread, NULL, subs_main, subs) != 0) {
        snprintf(err, errlen, "subscriptions: cannot start a thread");
        pthread_cond_destroy(&subs->cv);
        pthread_mutex_destroy(&subs->mu);
        free(subs);
        return NULL;
    }
    return subs;
}

void wa_subs_cancel(struct wa_subs *subs)
{
    if (subs)
        atomic_store(&subs->stop, true);
}

void wa_subs_stop(struct wa_subs *subs)
{
    if (!subs)
        return;
    atomic_store(&subs->stop, true);
    pthread_mutex_lock(&subs->mu);
    subs->stopping = true;
    pthread_cond_signal(&subs->cv);
    pthread_mutex_unlock(&subs->mu);
    pthread_join(subs->thread, NULL);
    pthread_cond_destroy(&subs->cv);
    pthread_mutex_destroy(&subs->mu);
    free(subs);
}

/* ---- the API ---- */

/* The subscriptions wanted or being fetched, as they were at one moment. Taken before the rows
 * are read: a fetch the moment saw as done has its outcome in the rows read after it (the
 * thread records before it lets go), so a row never reads as done with the outcome before. */
struct fetching_now {
    char names[SUB_WANTED_MAX + 1][64];
    size_t n;
};

static void fetching_take(struct wa_subs *subs, struct fetching_now *now)
{
    now->n = 0;
    if (!subs)
        return;
    pthread_mutex_lock(&subs->mu);
    if (subs->running[0])
        memcpy(now->names[now->n++], subs->running, sizeof(now->names[0]));
    for (size_t i = 0; i < subs->nwanted; i++)
        memcpy(now->names[now->n++], subs->wanted[i], sizeof(now->names[0]));
    pthread_mutex_unlock(&subs->mu);
}

/* 4 KiB: off the admin thread's stack, one per thread that answers requests. */
static _Thread_local struct fetching_now fetching_seen;

static bool fetching_in(const struct fetching_now *now, const char *name)
{
    for (size_t i = 0; i < now->n; i++)
        if (strcmp(now->names[i], name) == 0)
            return true;
    return false;
}

/* A subscription as the API shows it: its URL whole to those who may change it, without
 * credentials or query to a viewer; "fetching" while a refresh is wanted or its download
 * runs. */
static json_t *sub_json(const struct store_sub *s, bool fetching, enum store_role role)
{
    char shown[SUB_URL_SHOWN];

    if (role == STORE_ROLE_VIEWER)
        url_redacted(s->url, true, shown, sizeof(shown));
    else
        snprintf(shown, sizeof(shown), "%s", s->url);
    return json_pack("{s:s,s:o,s:I,s:I,s:I,s:I,s:I,s:i,s:o,s:o,s:o,s:b}", "name", s->name, "url",
                     wa_json_text(shown), "every_s", (json_int_t)s->every_s, "next_ms",
                     (json_int_t)s->next_ms, "checked_ms", (json_int_t)s->checked_ms, "imported_ms",
                     (json_int_t)s->imported_ms, "entries", (json_int_t)s->entries, "status",
                     s->status, "etag", wa_json_text(s->etag), "last_modified",
                     wa_json_text(s->last_modified), "error", wa_json_text(s->error), "fetching",
                     fetching);
}

enum MHD_Result wa_subs_list(struct wa_req *r)
{
    struct store *st = wa_store(r);
    struct store_sub *rows;
    char err[256];
    size_t n;
    json_t *arr;

    if (!st)
        return MHD_YES;
    fetching_take(r->ctx->subs, &fetching_seen);
    if (store_subs_list(st, &rows, &n, err, sizeof(err)) < 0)
        return wa_reply_error(r, 500, NULL, "%s", err);
    arr = json_array();
    for (size_t i = 0; arr && i < n; i++)
        json_array_append_new(
            arr, sub_json(&rows[i], fetching_in(&fetching_seen, rows[i].name), r->role));
    free(rows);
    return wa_reply_json(r, 200, json_pack("{s:o}", "subscriptions", arr));
}

/* An http or https URL with a host, in printable ASCII: the fetch parses it fully. */
static bool url_ok(const char *url)
{
    size_t skip;

    if (!strncasecmp(url, "http://", 7))
        skip = 7;
    else if (!strncasecmp(url, "https://", 8))
        skip = 8;
    else
        return false;
    if (!url[skip] || url[skip] == '/' || strlen(url) > STORE_SUB_URL_MAX)
        return false;
    for (const unsigned char *p = (const unsigned char *)url; *p; p++)
        if (*p <= 0x20 || *p >= 0x7f)
            return false;
    return true;
}

static struct store *named(struct wa_req *r)
{
    if (!wa_name_ok(r->param)) {
        wa_reply_error(r, 400, "name", "list names are 1-63 letters, digits, '.', '_', '-'");
        return NULL;
    }
    return wa_store(r);
}

enum MHD_Result wa_subs_put(struct wa_req *r)
{
    const struct wa_options *o = r->ctx->opts;
    int64_t min_s = o->sub_min_every_s > 0 ? o->sub_min_every_s : SUB_MIN_EVERY_S;
    struct store *st;
    const char *url, *replace;
    json_t *body, *every;
    int64_t every_s;
    char err[512];
    int rc;

    if (!r->ctx->subs)
        return wa_reply_error(r, 503, NULL, "this proxyd fetches no lists");
    st = named(r);
    if (!st)
        return MHD_YES;
    body = wa_body_json(r);
    if (!body)
        return MHD_YES;
    url = json_string_value(json_object_get(body, "url"));
    every = json_object_get(body, "every_s");
    if (!url || !url_ok(url)) {
        json_decref(body);
        return wa_reply_error(r, 400, "url",
                              "url: an http:// or https:// URL with a host, printable ASCII, "
                              "at most %d bytes",
                              STORE_SUB_URL_MAX);
    }
    every_s = json_is_integer(every) ? (int64_t)json_integer_value(every) : -1;
    if (every_s < min_s || every_s > SUB_MAX_EVERY_S) {
        json_decref(body);
        return wa_reply_error(r, 400, "every_s", "every_s: %lld to %lld seconds", (long long)min_s,
                              (long long)SUB_MAX_EVERY_S);
    }
    /* A subscription replaces the list's entries at each fetch: over a list an admin
     * imported, that is a replacement to confirm, as an import over it is. */
    replace = wa_query(r, "replace");
    if (!replace || strcmp(replace, "1") != 0) {
        int exists = wa_list_exists(st, r->param);

        if (exists != 0) {
            json_decref(body);
            if (exists < 0)
                return wa_reply_error(r, 500, NULL, "cannot read the lists");
            return wa_reply_error(r, 409, "replace",
                                  "list %s exists: each fetch replaces its entries; nothing "
                                  "changed: confirm with replace=1",
                                  r->param);
        }
    }
    rc = store_sub_add(st, r->param, url, every_s, r->actor, err, sizeof(err));
    json_decref(body);
    if (rc < 0)
        return wa_reply_error(r, 500, NULL, "%s", err);
    if (rc > 0)
        return wa_reply_error(r, 409, NULL, "%s", err);
    pthread_mutex_lock(&r->ctx->subs->mu);
    pthread_cond_signal(&r->ctx->subs->cv); /* due at once */
    pthread_mutex_unlock(&r->ctx->subs->mu);
    struct store_sub sub;
    fetching_take(r->ctx->subs, &fetching_seen);
    if (store_sub_get(st, r->param, &sub, err, sizeof(err)) != 0)
        return wa_reply_error(r, 500, NULL, "%s", err);
    return wa_reply_json(r, 201, sub_json(&sub, fetching_in(&fetching_seen, sub.name), r->role));
}

enum MHD_Result wa_subs_delete(struct wa_req *r)
{
    struct store *st = named(r);
    char err[256];
    int rc;

    if (!st)
        return MHD_YES;
    rc = store_sub_delete(st, r->param, r->actor, err, sizeof(err));
    if (rc < 0)
        return wa_reply_error(r, 500, NULL, "%s", err);
    if (rc > 0)
        return wa_reply_error(r, 404, NULL, "%s", err);
    return wa_reply_json(r, 200, json_pack("{s:s}", "unsubscribed", r->param));
}

/* 202 at once with the subscription as it stands ("fetching": true): the thread fetches it
 * next, and GET /api/subscriptions shows the outcome once "fetching" is false again. A
 * refresh already waiting is not asked for twice; one asked while a fetch runs follows it
 * (that download may have begun before what the refresh is for, and may be done but for its
 * record). */
enum MHD_Result wa_subs_refresh(struct wa_req *r)
{
    struct wa_subs *subs = r->ctx->subs;
    struct store *st;
    struct store_sub sub;
    char err[512];
    bool full = false;
    int rc;

    if (!subs)
        return wa_reply_error(r, 503, NULL, "this proxyd fetches no lists");
    st = named(r);
    if (!st)
        return MHD_YES;
    rc = store_sub_get(st, r->param, &sub, err, sizeof(err));
    if (rc < 0)
        return wa_reply_error(r, 500, NULL, "%s", err);
    if (rc > 0)
        return wa_reply_error(r, 404, NULL, "list %s has no subscription", r->param);
    pthread_mutex_lock(&subs->mu);
    if (!wanted_locked(subs, sub.name)) {
        full = subs->nwanted == SUB_WANTED_MAX;
        if (!full)
            snprintf(subs->wanted[subs->nwanted++], sizeof(subs->wanted[0]), "%s", sub.name);
    }
    pthread_cond_signal(&subs->cv);
    pthread_mutex_unlock(&subs->mu);
    if (full)
        return wa_reply_error(r, 503, NULL, "%d refreshes are waiting already; try again later",
                              SUB_WANTED_MAX);
    /* Fetching as of the moment it was asked: a quick download may be over by the time the
     * reply is made, which must not read as "not taken". */
    return wa_reply_json(r, 202, sub_json(&sub, true, r->role));
}
