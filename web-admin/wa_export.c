/* web-admin log export: GET /api/logs/export?format=csv|json and the filters of GET /api/logs
 * (wa_log_filter, so each filter applies to both). Any number of rows in constant memory:
 * the rows are read a page at a time, newest first, each page below the last one's id
 * (keyset paging, so rows written meanwhile neither repeat nor shift the pages), through a
 * connection of its own without a memory map (store_open_lean), and each row is formatted
 * only when MHD asks for the next block to send.
 *
 * CSV follows RFC 4180 (CRLF, fields with a quote, comma or line break quoted, quotes
 * doubled). Every text field is attacker-chosen (a path, a host, a user name), so one that
 * starts with = + - @, a tab or a CR, which a spreadsheet would run as a formula, is quoted
 * and starts with an apostrophe (OWASP's "CSV injection" advice). JSON is one array, a row
 * per line (each after the first line starts with its comma), with the keys of /api/logs
 * rows; text that is not UTF-8 has its bytes as \xNN (wa_json_text).
 */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "web-admin/wa_export.h"
#include "web-admin/wa_log.h"

#define PAGE_ROWS 256
/* Room for the longest row: every text field at its longest, each byte escaped (JSON's
 * \u00XX is 6 bytes), with the keys. */
#define PIECE_MAX (24u << 10)
/* Exports running at once: each holds a database connection and a page of rows for as long
 * as the client takes to read, so a script looping on the URL must not exhaust either. */
#define EXPORTS_MAX 4

static atomic_int exports_running;

enum export_format { EXPORT_CSV, EXPORT_JSON, EXPORT_FORMAT_COUNT };

enum export_step { STEP_HEAD, STEP_ROWS, STEP_TAIL, STEP_DONE };

struct export
{
    enum export_format format;
    enum export_step step;
    struct store *st; /* owned: store_open_lean */
    struct store_log_filter f;
    char *client, *host, *q;    /* owned copies of the filter's strings */
    struct store_log_row *rows; /* owned: the current page */
    size_t n, next;
    bool last_page; /* the current page was short: nothing below it */
    bool failed;    /* the database failed mid-way: end the reply as broken */
    uint64_t written;
    size_t len, off; /* the formatted piece in line not yet handed to MHD */
    char line[PIECE_MAX];
};

static const char *const csv_head = "id,time,time_ms,client,user,method,scheme,host,port,path,"
                                    "status,bytes_up,bytes_down,duration_ms,decision,rule_id,"
                                    "error,policy_version,sni,dest,node\r\n";

static void export_free(void *cls)
{
    struct export *x = cls;

    store_close(x->st);
    free(x->rows);
    free(x->client);
    free(x->host);
    free(x->q);
    free(x);
    atomic_fetch_sub(&exports_running, 1);
}

/* Appends s to x->line as one CSV field (see the top of the file). */
static void csv_text(struct export *x, const char *s)
{
    bool formula = s[0] && strchr("=+-@\t\r", s[0]);
    bool quote = formula || strpbrk(s, "\",\r\n");

    if (quote)
        x->line[x->len++] = '"';
    if (formula)
        x->line[x->len++] = '\'';
    for (; *s && x->len + 4 < sizeof(x->line); s++) {
        if (*s == '"')
            x->line[x->len++] = '"';
        x->line[x->len++] = *s;
    }
    if (quote)
        x->line[x->len++] = '"';
    x->line[x->len++] = ',';
}

static void csv_num(struct export *x, long long v)
{
    x->len += (size_t)snprintf(x->line + x->len, sizeof(x->line) - x->len, "%lld,", v);
}

static const char *decision_str(uint8_t d)
{
    return d < STORE_DECISION_COUNT ? store_decision_str((enum store_decision)d) : "?";
}

static void csv_row(struct export *x, const struct store_log_row *row)
{
    const struct store_access *a = &row->a;
    time_t secs = (time_t)(a->time_ms / 1000);
    struct tm tm;
    char when[64];

    gmtime_r(&secs, &tm);
    snprintf(when, sizeof(when), "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
             tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(a->time_ms % 1000));
    csv_num(x, row->id);
    csv_text(x, when);
    csv_num(x, a->time_ms);
    csv_text(x, a->client);
    csv_text(x, a->user);
    csv_text(x, a->method);
    csv_text(x, a->scheme);
    csv_text(x, a->host);
    csv_num(x, a->port);
    csv_text(x, a->path);
    csv_num(x, a->status);
    csv_num(x, (long long)a->bytes_up);
    csv_num(x, (long long)a->bytes_down);
    csv_num(x, a->duration_ms);
    csv_text(x, decision_str(a->decision));
    csv_num(x, a->rule_id);
    csv_text(x, a->error);
    csv_num(x, a->policy_version);
    csv_text(x, a->sni);
    csv_text(x, a->dest);
    csv_text(x, row->node);
    x->line[x->len - 1] = '\r'; /* the last field's comma */
    x->line[x->len++] = '\n';
}

/* One JSON object on its own line, after a comma unless it is the first. PX_ERR when out of
 * memory. */
static int json_row(struct export *x, const struct store_log_row *row)
{
    const struct store_access *a = &row->a;
    json_t *o = json_pack(
        "{s:I,s:I,s:o?,s:o?,s:o?,s:o?,s:o?,s:i,s:o?,s:i,s:I,s:I,s:I,s:s,s:i,s:o?,s:I,s:o?,s:o?,"
        "s:o?}",
        "id", (json_int_t)row->id, "time_ms", (json_int_t)a->time_ms, "client",
        wa_json_text(a->client), "user", wa_json_text(a->user), "method", wa_json_text(a->method),
        "scheme", wa_json_text(a->scheme), "host", wa_json_text(a->host), "port", (int)a->port,
        "path", wa_json_text(a->path), "status", (int)a->status, "bytes_up",
        (json_int_t)a->bytes_up, "bytes_down", (json_int_t)a->bytes_down, "duration_ms",
        (json_int_t)a->duration_ms, "decision", decision_str(a->decision), "rule_id",
        (int)a->rule_id, "error", wa_json_text(a->error), "policy_version",
        (json_int_t)a->policy_version, "sni", wa_json_text(a->sni), "dest", wa_json_text(a->dest),
        "node", wa_json_text(row->node));
    size_t n;

    if (!o)
        return PX_ERR;
    if (x->written > 0)
        x->line[x->len++] = ',';
    n = json_dumpb(o, x->line + x->len, sizeof(x->line) - x->len - 2, JSON_COMPACT);
    json_decref(o);
    if (n == 0 || n > sizeof(x->line) - x->len - 2)
        return PX_ERR;
    x->len += n;
    x->line[x->len++] = '\n';
    return PX_OK;
}

/* The next page below the last row sent. PX_ERR when the database fails. */
static int page_next(struct export *x)
{
    char err[256];

    if (x->n > 0)
        x->f.before_id = x->rows[x->n - 1].id;
    free(x->rows);
    x->rows = NULL;
    x->n = x->next = 0;
    x->f.limit = PAGE_ROWS;
    if (store_log_search(x->st, &x->f, &x->rows, &x->n, err, sizeof(err)) < 0)
        return PX_ERR;
    x->last_page = x->n < PAGE_ROWS;
    return PX_OK;
}

/* Formats the next piece (the head, one row, the tail) into line. PX_ERR when the database
 * or memory fails. */
static int piece_next(struct export *x)
{
    x->len = x->off = 0;
    switch (x->step) {
    case STEP_HEAD:
        x->len = (size_t)snprintf(x->line, sizeof(x->line), "%s",
                                  x->format == EXPORT_CSV ? csv_head : "[\n");
        x->step = STEP_ROWS;
        return PX_OK;
    case STEP_ROWS:
        if (x->next == x->n) {
            if (x->last_page) {
                x->step = STEP_TAIL;
                return PX_OK;
            }
            if (page_next(x) < 0)
                return PX_ERR;
            if (x->n == 0) {
                x->step = STEP_TAIL;
                return PX_OK;
            }
        }
        if (x->format == EXPORT_CSV)
            csv_row(x, &x->rows[x->next]);
        else if (json_row(x, &x->rows[x->next]) < 0)
            return PX_ERR;
        x->next++;
        x->written++;
        return PX_OK;
    case STEP_TAIL:
        if (x->format == EXPORT_JSON)
            x->len = (size_t)snprintf(x->line, sizeof(x->line), "]\n");
        x->step = STEP_DONE;
        return PX_OK;
    case STEP_DONE:
        break;
    }
    return PX_OK;
}

static ssize_t export_read(void *cls, uint64_t pos, char *buf, size_t max)
{
    struct export *x = cls;
    size_t out = 0;

    (void)pos;
    if (x->failed) /* after the part sent before the failure: the reply ends broken */
        return MHD_CONTENT_READER_END_WITH_ERROR;
    while (out < max) {
        if (x->off < x->len) {
            size_t n = x->len - x->off < max - out ? x->len - x->off : max - out;
            memcpy(buf + out, x->line + x->off, n);
            x->off += n;
            out += n;
            continue;
        }
        if (x->step == STEP_DONE)
            break;
        if (piece_next(x) < 0) {
            x->failed = true;
            break;
        }
    }
    if (out > 0)
        return (ssize_t)out;
    return x->failed ? MHD_CONTENT_READER_END_WITH_ERROR : MHD_CONTENT_READER_END_OF_STREAM;
}

static char *dup_or_null(const char *s, bool *oom)
{
    char *d;

    if (!s)
        return NULL;
    d = strdup(s);
    if (!d)
        *oom = true;
    return d;
}

enum MHD_Result wa_export_logs(struct wa_req *r)
{
    static const char *const formats[EXPORT_FORMAT_COUNT] = {"csv", "json"};
    static const char *const ctypes[EXPORT_FORMAT_COUNT] = {"text/csv; charset=utf-8",
                                                            "application/json"};
    static const char *const files[EXPORT_FORMAT_COUNT] = {"proxyd-log.csv", "proxyd-log.json"};
    const char *fmt = wa_query(r, "format");
    struct store_log_filter f;
    struct export *x;
    char err[256];
    int k = -1;
    bool oom = false;

    for (int i = 0; i < EXPORT_FORMAT_COUNT; i++)
        if (fmt && !strcmp(fmt, formats[i]))
            k = i;
    if (k < 0)
        return wa_reply_error(r, 400, "format", "format is csv or json");
    if (wa_log_filter(r, &f) < 0)
        return MHD_YES;
    if (atomic_fetch_add(&exports_running, 1) >= EXPORTS_MAX) {
        atomic_fetch_sub(&exports_running, 1);
        r->retry_after_s = 10;
        return wa_reply_error(
            r, 429, NULL, "%d exports are running: try again when one has finished", EXPORTS_MAX);
    }
    x = calloc(1, sizeof(*x)); /* from here export_free ends the export's count */
    if (!x) {
        atomic_fetch_sub(&exports_running, 1);
        return wa_reply_error(r, 500, NULL, "out of memory");
    }
    x->format = (enum export_format)k;
    x->f = f;
    x->f.client = x->client = dup_or_null(f.client, &oom);
    x->f.host_like = x->host = dup_or_null(f.host_like, &oom);
    x->f.text_like = x->q = dup_or_null(f.text_like, &oom);
    if (oom) {
        export_free(x);
        return wa_reply_error(r, 500, NULL, "out of memory");
    }
    x->st = store_open_lean(r->ctx->opts->db_path, err, sizeof(err));
    if (!x->st) {
        export_free(x);
        return wa_reply_error(r, 500, NULL, "database: %s", err);
    }
    /* The first page now: a database that fails at once is a 500, not a broken download. */
    if (page_next(x) < 0) {
        export_free(x);
        return wa_reply_error(r, 500, NULL, "cannot read the log");
    }
    return wa_reply_stream(r, ctypes[k], files[k], export_read, x, export_free);
}
