/* reply: our own answers (error and block pages, 407, 200 established) and CONN_REPLY. */
#include "proxy/reply.h"

#include <stdio.h>
#include <string.h>

#include "base/status.h"
#include "proxy/access_req.h"
#include "proxy/bump.h"
#include "proxy/conn.h"
#include "proxy/origin.h"
#include "proxy/request.h"
#include "proxy/worker.h"

static size_t html_escape(char *out, size_t cap, const char *s, size_t len)
{
    size_t n = 0;
    for (size_t i = 0; i < len && n + 7 < cap; i++) {
        const char *rep = NULL;
        switch (s[i]) {
        case '<':
            rep = "&lt;";
            break;
        case '>':
            rep = "&gt;";
            break;
        case '&':
            rep = "&amp;";
            break;
        case '"':
            rep = "&quot;";
            break;
        case '\'':
            rep = "&#39;";
            break;
        }
        if (rep) {
            size_t r = strlen(rep);
            memcpy(out + n, rep, r);
            n += r;
        } else if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f) {
            out[n++] = '?';
        } else {
            out[n++] = s[i];
        }
    }
    out[n] = '\0';
    return n;
}

/* Our pages load nothing but their inline style and a data: logo, and their form (the access
 * request) goes to the page's own host. */
#define REPLY_CSP                                                                                  \
    "default-src 'none'; img-src data:; style-src 'unsafe-inline'; form-action 'self'; "           \
    "base-uri 'none'; frame-ancestors 'none'"

static const char *status_text(int status)
{
    switch (status) {
    case 400:
        return "Bad Request";
    case 202:
        return "Accepted";
    case 403:
        return "Forbidden";
    case 407:
        return "Proxy Authentication Required";
    case 408:
        return "Request Timeout";
    case 409:
        return "Conflict";
    case 414:
        return "URI Too Long";
    case 429:
        return "Too Many Requests";
    case 431:
        return "Request Header Fields Too Large";
    case 501:
        return "Not Implemented";
    case 502:
        return "Bad Gateway";
    case 503:
        return "Service Unavailable";
    case 504:
        return "Gateway Timeout";
    default:
        return "Error";
    }
}

/* The "request access" form: a GET to the reserved path on the page's own host (a relative
 * action), which the browser sends through the proxy like the page. */
static void format_form(const struct reply_page *pg, char *out, size_t cap)
{
    char token[ACCESS_REQ_TOKEN_LEN * 6];

    out[0] = '\0';
    if (!pg->form_token)
        return;
    html_escape(token, sizeof(token), pg->form_token, strlen(pg->form_token));
    snprintf(out, cap,
             "<form method=\"get\" action=\"" ACCESS_REQ_PATH "\">"
             "<h2>Request access</h2>"
             "<input type=\"hidden\" name=\"t\" value=\"%s\">"
             "<p><label>Why do you need this address?<br><textarea name=\"reason\" "
             "rows=\"3\" cols=\"50\" maxlength=\"%d\" required></textarea></label></p>"
             "<p><label>Your name (optional)<br><input name=\"name\" maxlength=\"%d\">"
             "</label></p><p><button type=\"submit\">Send the request</button></p></form>\n",
             token, ACCESS_REQ_REASON_MAX, ACCESS_REQ_NAME_MAX);
}

bool reply_logo_ok(const char *uri)
{
    static const char *const types[] = {"data:image/png;base64,", "data:image/jpeg;base64,",
                                        "data:image/svg+xml;base64,"};
    static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=";
    size_t n = strnlen(uri, REPLY_LOGO_URI_MAX);

    if (n == REPLY_LOGO_URI_MAX)
        return false;
    for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
        size_t t = strlen(types[i]);
        if (strncmp(uri, types[i], t) == 0)
            return n > t && strspn(uri + t, b64) == n - t;
    }
    return false;
}

/* The HTML page into out. Returns its length, 0 when it does not fit. */
static size_t format_page(const struct reply_page *pg, char *out, size_t cap)
{
    /* Escaping at most sextuples a byte ("&quot;" for '"'). */
    char url[1200], what[400], when[64], contact[6 * 256], form[1024];
    struct tm tm;
    html_escape(url, sizeof(url), pg->url, strlen(pg->url));
    html_escape(what, sizeof(what), pg->detail, strlen(pg->detail));
    html_escape(contact, sizeof(contact), pg->contact, strlen(pg->contact));
    /* A data: URI alone (an SVG in an <img> runs no script and loads nothing), and the page's
     * Content-Security-Policy allows no other image source. */
    bool logo = pg->logo && *pg->logo && reply_logo_ok(pg->logo);
    localtime_r(&pg->when, &tm);
    strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S %Z", &tm);
    const char *text = status_text(pg->status);
    format_form(pg, form, sizeof(form));
    int n =
        snprintf(out, cap,
                 "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\">"
                 "<meta name=\"viewport\" content=\"width=device-width\">"
                 "<title>%d %s</title><style>body{font-family:sans-serif;max-width:40em;"
                 "margin:3em auto;padding:0 1em;color:#222}code{word-break:break-all}"
                 "</style></head><body>\n%s%s%s<h1>%d %s</h1>\n<p>%s</p>\n"
                 "<p>Address: <code>%s</code></p>\n<p>Time: %s</p>\n%s%s%s%s"
                 "<hr><p><small>proxyd</small></p></body></html>\n",
                 pg->status, text,
                 logo ? "<p><img alt=\"\" style=\"max-height:5em;max-width:100%\" src=\"" : "",
                 logo ? pg->logo : "", logo ? "\"></p>\n" : "", pg->status, text, what, url, when,
                 contact[0] ? "<p>Contact: " : "", contact, contact[0] ? "</p>\n" : "", form);
    return n < 0 || (size_t)n >= cap ? 0 : (size_t)n;
}

long reply_format(const struct reply_page *pg, char *out, size_t cap, char *scratch,
                  size_t scratch_cap)
{
    size_t blen = format_page(pg, scratch, scratch_cap);
    const char *extra = pg->status == 407 ? "Proxy-Authenticate: Basic realm=\"proxyd\"\r\n" : "";
    int hlen = snprintf(out, cap,
                        "HTTP/1.1 %d %s\r\nContent-Type: text/html; charset=utf-8\r\n"
                        "Content-Length: %zu\r\nCache-Control: no-store\r\n"
                        "Content-Security-Policy: " REPLY_CSP "\r\n%s%s\r\n",
                        pg->status, status_text(pg->status), blen, extra,
                        pg->keep_alive ? "" : "Connection: close\r\n");
    size_t total = (size_t)hlen + (pg->head_only ? 0 : blen);
    if (hlen < 0 || total > cap)
        return -1;
    if (!pg->head_only)
        memcpy(out + hlen, scratch, blen);
    return (long)total;
}

/* The address the client asked for, as far as it was read (truncated to fit out). */
static void request_url(const struct conn *c, char *out, size_t cap)
{
    int n;
    if (c->is_connect)
        n = snprintf(out, cap, "%s:%u", c->req->rec.host, c->req->rec.port);
    else if (c->req->rec.host[0])
        n = snprintf(out, cap, "%s://%s:%u%s", c->req->rec.scheme, c->req->rec.host,
                     c->req->rec.port, c->req->rec.path);
    else
        n = snprintf(out, cap, "(unparsed request)");
    if (n < 0)
        out[0] = '\0';
}

static void page_send(struct conn *c, int status, const char *detail, bool keep,
                      const char *form_token)
{
    struct worker *w = c->w;
    if (c->is_forward) {
        /* Raw bytes: a page would reach the forward's client as its server's first words.
         * The outcome is recorded; the close is the answer, after an alert to a TLS client. */
        if (c->tls_alert)
            tun_tls_alert(c, TLS_ALERT_ACCESS_DENIED);
        else
            conn_close(c, CLOSE_NONE);
        return;
    }
    keep = keep && c->client_keep_alive;
    if (c->origin_in_use)
        origin_close(c);
    if (buf_attach(&w->bufs, &c->down) < 0) {
        conn_close(c, CLOSE_OVERLOAD);
        return;
    }
    c->down.off = c->down.len = 0;
    c->req->rec.status = (uint16_t)status;
    if (status >= 500)
        STAT_ADD(c, errors_upstream, 1);
    else if (status == 400 || status == 414 || status == 431 || status == 501)
        STAT_ADD(c, errors_parse, 1);

    char url[1100];
    request_url(c, url, sizeof(url));
    struct reply_page pg = {
        .status = status,
        .detail = detail,
        .url = url,
        .contact = w->tun.contact,
        .logo = w->tun.logo,
        .when = time(NULL),
        .keep_alive = keep,
        .head_only = c->request_head,
        .form_token = form_token,
    };
    long n = reply_format(&pg, c->down.data, BUF_SIZE, w->scratch, sizeof(w->scratch));
    if (n < 0) {
        conn_close(c, CLOSE_CLIENT_ERROR);
        return;
    }
    c->down.len = (size_t)n;
    c->client_keep_alive = keep && !atomic_load_explicit(&w->draining, memory_order_relaxed);
    conn_set_state(c, CONN_REPLY);
    conn_set_deadline(c, w->tun.header_timeout_ms);
}

void reply_page(struct conn *c, int status, const char *detail, bool keep)
{
    page_send(c, status, detail, keep, NULL);
}

void reply_error(struct conn *c, enum conn_close why, int status, const char *detail, bool keep)
{
    request_record_outcome(c, why, NULL);
    reply_page(c, status, detail, keep);
}

void reply_blocked(struct conn *c, int rule_id, const char *reason, bool keep, bool form)
{
    if (c->is_connect && bump_block_page(c))
        return; /* the same page, inside TLS as the host */
    char detail[256], token[ACCESS_REQ_TOKEN_LEN];
    if (rule_id > 0)
        snprintf(detail, sizeof(detail),
                 "This request was blocked by the office's access policy (rule %d).", rule_id);
    else
        snprintf(detail, sizeof(detail),
                 "This request was blocked by the office's access policy (%s).", reason);
    if (form)
        access_req_token(c->w->shared->access_req, c->req->rec.client, c->req->rec.host,
                         c->req->rec.port, time(NULL), token);
    page_send(c, 403, detail, keep, form ? token : NULL);
}

void reply_established(struct conn *c)
{
    static const char established[] = "HTTP/1.1 200 Connection established\r\n\r\n";
    memcpy(c->down.data, established, sizeof(established) - 1);
    c->down.off = 0;
    c->down.len = sizeof(established) - 1;
    c->req->rec.status = 200;
}

bool reply_step(struct conn *c)
{
    if (!conn_client_flush(c, &c->req->rec.bytes_down))
        return false;
    request_record_finish(c);
    if (c->client_keep_alive) {
        /* A request answered by us was never sent on: drop its head, keep what follows. */
        buf_consume(&c->up, c->head_len < c->up.len ? c->head_len : c->up.len);
        conn_next_request(c);
        return true;
    }
    conn_linger(c);
    return true;
}
