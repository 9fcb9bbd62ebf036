/* proxyctl's HTTP client: one libcurl easy handle reused for every request of a run (so
 * --follow keeps its connection), the bearer token lookup, the upload progress bar, and the
 * translation of answers into statuses and messages. Never exits. */
#include "proxyctl/ctl_http.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>

#define CONNECT_TIMEOUT_MS 3000L
#define TOTAL_TIMEOUT_MS 30000L
#define PROGRESS_MIN_BYTES (1024 * 1024)
#define ANSWER_MAX_BYTES ((size_t)1 << 30)

struct ctl_http {
    CURL *curl; /* owned */
};

static volatile sig_atomic_t interrupted;

void ctl_http_interrupt(void)
{
    interrupted = 1;
}

bool ctl_http_interrupted(void)
{
    return interrupted != 0;
}

struct ctl_http *ctl_http_new(void)
{
    static bool global_done;
    if (!global_done) {
        if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
            return NULL;
        global_done = true;
    }
    struct ctl_http *http = calloc(1, sizeof(*http));
    if (!http)
        return NULL;
    http->curl = curl_easy_init();
    if (!http->curl) {
        free(http);
        return NULL;
    }
    return http;
}

void ctl_http_free(struct ctl_http *http)
{
    if (!http)
        return;
    curl_easy_cleanup(http->curl);
    free(http);
}

void ctl_answer_free(struct ctl_answer *ans)
{
    free(ans->body);
    json_decref(ans->json);
    memset(ans, 0, sizeof(*ans));
}

/* Where an answer's body goes: the answer, or req->sink once the status says 2xx. */
struct body_dest {
    struct ctl_answer *ans;
    FILE *sink;
    CURL *curl;
};

static size_t on_body(char *data, size_t size, size_t nmemb, void *arg)
{
    struct body_dest *dest = arg;
    struct ctl_answer *ans = dest->ans;
    size_t n = size * nmemb;
    long status = 0;

    if (dest->sink) {
        curl_easy_getinfo(dest->curl, CURLINFO_RESPONSE_CODE, &status);
        if (status >= 200 && status < 300)
            return fwrite(data, 1, n, dest->sink) == n ? n : 0;
    }
    if (ans->len + n + 1 > ANSWER_MAX_BYTES)
        return 0;
    char *p = realloc(ans->body, ans->len + n + 1);
    if (!p)
        return 0;
    memcpy(p + ans->len, data, n);
    ans->body = p;
    ans->len += n;
    ans->body[ans->len] = '\0';
    return n;
}

struct progress {
    bool show;  /* stderr is a terminal and the caller asked */
    bool drawn; /* something is on the line */
    int last_permille;
};

/* Draws "[#####.....]  45%  12.0/26.7 MiB" on stderr; aborts the transfer on SIGINT. */
static int on_progress(void *arg, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
                       curl_off_t ulnow)
{
    struct progress *pg = arg;
    if (interrupted)
        return 1;
    if (!pg->show || ultotal <= PROGRESS_MIN_BYTES)
        return 0;
    int permille = (int)(ulnow * 1000 / ultotal);
    if (permille == pg->last_permille)
        return 0;
    pg->last_permille = permille;
    char bar[31];
    int filled = permille * 30 / 1000;
    for (int i = 0; i < 30; i++)
        bar[i] = i < filled ? '#' : '.';
    bar[30] = '\0';
    fprintf(stderr, "\rupload [%s] %3d%%  %.1f/%.1f MiB", bar, permille / 10,
            (double)ulnow / 1048576.0, (double)ultotal / 1048576.0);
    pg->drawn = true;
    return 0;
}

enum ctl_status ctl_api_token(struct ctl_ctx *ctx)
{
    if (ctx->token)
        return CTL_OK;
    const char *env = getenv("PROXYCTL_TOKEN");
    if (env && *env) {
        ctx->token = env;
        ctx->token_from = "PROXYCTL_TOKEN";
    } else {
        int fd = open(ctx->token_path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
            return ctl_fail(ctx, CTL_USAGE,
                            "no admin token: cannot read %s: %s (give --token, set "
                            "PROXYCTL_TOKEN, or point --data-dir at proxyd's data folder)",
                            ctx->token_path, strerror(errno));
        ssize_t n = read(fd, ctx->token_buf, sizeof(ctx->token_buf) - 1);
        int saved = errno;
        close(fd);
        if (n < 0)
            return ctl_fail(ctx, CTL_USAGE, "no admin token: cannot read %s: %s", ctx->token_path,
                            strerror(saved));
        ctx->token_buf[n] = '\0';
        while (n > 0 && (ctx->token_buf[n - 1] == '\n' || ctx->token_buf[n - 1] == '\r' ||
                         ctx->token_buf[n - 1] == ' ' || ctx->token_buf[n - 1] == '\t'))
            ctx->token_buf[--n] = '\0';
        ctx->token = ctx->token_buf;
        ctx->token_from = ctx->token_path;
    }
    if (!*ctx->token)
        return ctl_fail(ctx, CTL_USAGE, "no admin token: %s is empty", ctx->token_from);
    for (const char *p = ctx->token; *p; p++) {
        if (*p < 0x21 || *p > 0x7e)
            return ctl_fail(ctx, CTL_USAGE,
                            "admin token from %s contains a space or control character",
                            ctx->token_from);
    }
    return CTL_OK;
}

/* Why curl got no answer, in the words of the OS when it has some ("Connection refused"). */
static const char *transport_reason(CURL *curl, CURLcode rc, const char *errbuf)
{
    long os_errno = 0;
    if (rc == CURLE_COULDNT_CONNECT &&
        curl_easy_getinfo(curl, CURLINFO_OS_ERRNO, &os_errno) == CURLE_OK && os_errno != 0)
        return strerror((int)os_errno);
    if (rc == CURLE_OPERATION_TIMEDOUT)
        return "timed out";
    return *errbuf ? errbuf : curl_easy_strerror(rc);
}

/* The API's {"error","field"}, or the start of a body that is not JSON. */
static void refusal_message(struct ctl_ctx *ctx, const struct ctl_request *req,
                            const struct ctl_answer *ans)
{
    const char *msg = NULL, *field = NULL;
    if (ans->json) {
        msg = json_string_value(json_object_get(ans->json, "error"));
        field = json_string_value(json_object_get(ans->json, "field"));
    }
    if (ans->status == 401) {
        const char *where = ctx->token_from && strcmp(ctx->token_from, "PROXYCTL_TOKEN") == 0
                                ? "PROXYCTL_TOKEN"
                                : "--token";
        ctl_fail(ctx, CTL_REFUSED, "token rejected by %s (check %s or %s)", ctx->url, where,
                 ctx->token_path);
        return;
    }
    if (ans->status == 404 && req->what) {
        ctl_fail(ctx, CTL_REFUSED, "no such %s", req->what);
        return;
    }
    char snippet[200] = "";
    if (!msg && ans->body) {
        size_t n = 0;
        for (const char *p = ans->body; *p && n + 1 < sizeof(snippet); p++)
            snippet[n++] = (*p == '\n' || *p == '\r') ? ' ' : *p;
        snippet[n] = '\0';
        msg = snippet;
    }
    if (!msg || !*msg)
        msg = "no reason given";
    if (field && *field)
        ctl_fail(ctx, CTL_REFUSED, "%s (field %s; HTTP %ld from %s %s)", msg, field, ans->status,
                 req->method, req->path);
    else
        ctl_fail(ctx, CTL_REFUSED, "%s (HTTP %ld from %s %s)", msg, ans->status, req->method,
                 req->path);
}

static void parse_json(struct ctl_answer *ans)
{
    if (!ans->body)
        return;
    const char *p = ans->body;
    while (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n')
        p++;
    if (*p != '{' && *p != '[')
        return;
    json_error_t jerr;
    ans->json = json_loadb(ans->body, ans->len, 0, &jerr);
}

enum ctl_status ctl_api_send(struct ctl_ctx *ctx, const struct ctl_request *req,
                             struct ctl_answer *ans)
{
    memset(ans, 0, sizeof(*ans));
    if (!(req->flags & CTL_API_NO_AUTH)) {
        enum ctl_status st = ctl_api_token(ctx);
        if (st != CTL_OK)
            return st;
    }
    CURL *curl = ctx->http->curl;
    curl_easy_reset(curl); /* keeps the connection cache */

    char url[8192];
    if ((size_t)snprintf(url, sizeof(url), "%s%s", ctx->url, req->path) >= sizeof(url))
        return ctl_fail(ctx, CTL_USAGE, "request URL too long");
    /* --message names the policy version a change makes (docs/api.md): every request that
     * may change something carries it, reads do not. */
    if (ctx->message && strcmp(req->method, "GET") != 0) {
        char *esc = curl_easy_escape(NULL, ctx->message, 0);
        size_t len = strlen(url);
        int n = esc ? snprintf(url + len, sizeof(url) - len, "%cmessage=%s",
                               strchr(req->path, '?') ? '&' : '?', esc)
                    : -1;
        curl_free(esc);
        if (n < 0 || (size_t)n >= sizeof(url) - len)
            return ctl_fail(ctx, CTL_USAGE, "request URL too long");
    }

    char *json_body = NULL;
    const char *body = req->body;
    size_t body_len = req->body_len;
    const char *ctype = req->content_type ? req->content_type : "text/plain; charset=utf-8";
    if (req->json) {
        json_body = json_dumps(req->json, JSON_COMPACT);
        if (!json_body)
            return ctl_fail(ctx, CTL_USAGE, "cannot encode the request body");
        body = json_body;
        body_len = strlen(json_body);
        ctype = "application/json";
    }

    struct curl_slist *hdrs = NULL;
    char line[700];
    hdrs = curl_slist_append(hdrs, "Accept: application/json, text/plain");
    hdrs = curl_slist_append(hdrs, "Expect:");
    if (!(req->flags & CTL_API_NO_AUTH)) {
        snprintf(line, sizeof(line), "Authorization: Bearer %s", ctx->token);
        hdrs = curl_slist_append(hdrs, line);
    }
    if (body) {
        snprintf(line, sizeof(line), "Content-Type: %s", ctype);
        hdrs = curl_slist_append(hdrs, line);
    }

    char errbuf[CURL_ERROR_SIZE] = "";
    struct progress pg = {
        .show = (req->flags & CTL_API_PROGRESS) && isatty(STDERR_FILENO),
        .last_permille = -1,
    };
    curl_easy_setopt(curl, CURLOPT_URL, url);
    /* The user's http_proxy may well point at proxyd itself, which refuses loopback. */
    curl_easy_setopt(curl, CURLOPT_NOPROXY, "*");
    curl_easy_setopt(curl, CURLOPT_PROXY, "");
    curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
    if (ctx->cacert)
        curl_easy_setopt(curl, CURLOPT_CAINFO, ctx->cacert);
    curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS, CONNECT_TIMEOUT_MS);
    curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS,
                     (req->flags & CTL_API_NO_TIMEOUT) ? 0L : TOTAL_TIMEOUT_MS);
    curl_easy_setopt(curl, CURLOPT_USERAGENT, "proxyctl/" PX_VERSION);
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, errbuf);
    struct body_dest dest = {ans, req->sink, curl};
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, &dest);
    curl_easy_setopt(curl, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(curl, CURLOPT_XFERINFOFUNCTION, on_progress);
    curl_easy_setopt(curl, CURLOPT_XFERINFODATA, &pg);
    if (strcmp(req->method, "GET") == 0) {
        curl_easy_setopt(curl, CURLOPT_HTTPGET, 1L);
    } else {
        curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, req->method);
        if (body) {
            curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)body_len);
            curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body);
        } else if (strcmp(req->method, "DELETE") != 0) {
            curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)0);
            curl_easy_setopt(curl, CURLOPT_POSTFIELDS, "");
        }
    }

    CURLcode rc = curl_easy_perform(curl);
    if (pg.drawn)
        fputc('\n', stderr);
    curl_slist_free_all(hdrs);
    free(json_body);

    if (rc != CURLE_OK) {
        free(ans->body);
        memset(ans, 0, sizeof(*ans));
        if (rc == CURLE_ABORTED_BY_CALLBACK && interrupted)
            return ctl_fail(ctx, CTL_UNREACHABLE, "interrupted");
        return ctl_fail(ctx, CTL_UNREACHABLE,
                        "cannot reach proxyd admin API at %s: %s (is proxyd running? see --url)",
                        ctx->url, transport_reason(curl, rc, errbuf));
    }
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &ans->status);
    parse_json(ans);
    if (ans->status >= 200 && ans->status < 300)
        return CTL_OK;
    refusal_message(ctx, req, ans);
    ctl_answer_free(ans);
    return CTL_REFUSED;
}

enum ctl_status ctl_api(struct ctl_ctx *ctx, const char *method, const char *path,
                        const json_t *body, json_t **out, const char *what)
{
    struct ctl_request req = {
        .method = method,
        .path = path,
        .json = body,
        .what = what,
        .flags = strcmp(path, "/api/health") == 0 ? CTL_API_NO_AUTH : 0,
    };
    struct ctl_answer ans;
    *out = NULL;
    enum ctl_status st = ctl_api_send(ctx, &req, &ans);
    if (st != CTL_OK)
        return st;
    if (!ans.json) {
        ctl_answer_free(&ans);
        return ctl_fail(ctx, CTL_REFUSED, "%s %s%s: the answer is not JSON (is %s proxyd?)", method,
                        ctx->url, path, ctx->url);
    }
    *out = ans.json;
    ans.json = NULL;
    ctl_answer_free(&ans);
    return CTL_OK;
}

bool ctl_query_add(struct ctl_query *q, const char *key, const char *value)
{
    char *esc = curl_easy_escape(NULL, value, 0);
    if (!esc)
        return false;
    size_t room = sizeof(q->buf) - q->len;
    int n = snprintf(q->buf + q->len, room, "%c%s=%s", q->len ? '&' : '?', key, esc);
    curl_free(esc);
    if (n < 0 || (size_t)n >= room) {
        q->buf[q->len] = '\0';
        return false;
    }
    q->len += (size_t)n;
    return true;
}

bool ctl_query_add_num(struct ctl_query *q, const char *key, long long value)
{
    char num[32];
    snprintf(num, sizeof(num), "%lld", value);
    return ctl_query_add(q, key, num);
}

bool ctl_path_escape(const char *segment, char *buf, size_t len)
{
    char *esc = curl_easy_escape(NULL, segment, 0);
    if (!esc)
        return false;
    bool fits = strlen(esc) < len;
    if (fits)
        strcpy(buf, esc);
    curl_free(esc);
    return fits;
}
