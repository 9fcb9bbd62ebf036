/* proxyctl's side of the admin JSON API (docs/api.md): one libcurl handle, the bearer token,
 * and the mapping from HTTP answers to statuses and messages ("token rejected by ...",
 * "no such rule 99", "cannot reach proxyd admin API at ..."). Never prints (except the
 * upload progress bar on a terminal's stderr), never exits.
 */
#ifndef PX_CTL_HTTP_H
#define PX_CTL_HTTP_H

#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stddef.h>

#include <jansson.h>

#include "proxyctl/ctl_cmd.h"

/* Request flags. */
#define CTL_API_NO_AUTH 0x1    /* send no token (GET /api/health) */
#define CTL_API_NO_TIMEOUT 0x2 /* no total timeout (imports); connect timeout stays */
#define CTL_API_PROGRESS 0x4   /* progress bar on stderr if it is a terminal */

struct ctl_request {
    const char *method; /* "GET" */
    const char *path;   /* "/api/rules/12", query included, already escaped */
    const json_t *json; /* body as JSON, or NULL */
    const char *body;   /* raw body (used when json is NULL), borrowed */
    size_t body_len;
    const char *content_type; /* of the raw body; "text/plain" if NULL */
    unsigned flags;
    const char *what; /* names the thing on 404: "rule 12" -> "no such rule 12" */
    /* A 2xx answer's body is written here as it arrives, not kept (an export of any size);
     * NULL: kept in the answer. Other answers are kept either way, for their message. */
    FILE *sink;
};

struct ctl_answer {
    long status;
    char *body; /* owned, NUL-terminated */
    size_t len;
    json_t *json; /* owned; NULL if the body is not JSON */
};

/* A query string under construction: "?since=1&q=a%20b". Values are escaped. */
struct ctl_query {
    char buf[4096];
    size_t len;
};

/* Creates the handle; returns NULL if libcurl cannot (out of memory). */
struct ctl_http *ctl_http_new(void);
void ctl_http_free(struct ctl_http *http);

/* Makes requests in progress give up soon; async-signal-safe (SIGINT during --follow). */
void ctl_http_interrupt(void);
bool ctl_http_interrupted(void);

/* Sends one request to ctx->url. Returns CTL_OK with *ans filled (caller frees with
 * ctl_answer_free) for a 2xx answer. Otherwise fills ctx->err and returns CTL_UNREACHABLE
 * (no answer), CTL_USAGE (no token to send) or CTL_REFUSED (any other HTTP status, with the
 * API's message and field; *ans is then empty). */
enum ctl_status ctl_api_send(struct ctl_ctx *ctx, const struct ctl_request *req,
                             struct ctl_answer *ans);

/* Shorthand for a JSON request and a JSON answer: *out is the parsed answer (caller
 * json_decref()s it); an answer that is not JSON is CTL_REFUSED. */
enum ctl_status ctl_api(struct ctl_ctx *ctx, const char *method, const char *path,
                        const json_t *body, json_t **out, const char *what);

void ctl_answer_free(struct ctl_answer *ans);

/* Finds the token: --token, PROXYCTL_TOKEN, or the token file (ctx->token_path). Returns
 * CTL_OK, or CTL_USAGE with ctx->err saying where it looked. */
enum ctl_status ctl_api_token(struct ctl_ctx *ctx);

/* Appends "key=value" (value escaped) to q; false if it would not fit. */
bool ctl_query_add(struct ctl_query *q, const char *key, const char *value);
bool ctl_query_add_num(struct ctl_query *q, const char *key, long long value);

/* Escapes one path segment (a list or user name) into buf; false if it does not fit. */
bool ctl_path_escape(const char *segment, char *buf, size_t len);

#endif
