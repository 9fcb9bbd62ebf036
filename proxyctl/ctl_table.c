/* Table printing for proxyctl: rows of copied cells, widths in characters (UTF-8 code
 * points), cutting to the terminal width. Cells come from the daemon, and log cells from
 * arbitrary clients, so control characters are never written to the terminal as-is. */
#include "proxyctl/ctl_table.h"

#include <langinfo.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#define MIN_CUT_WIDTH 8
#define GAP 2

struct ctl_table {
    const struct ctl_column *cols; /* borrowed */
    size_t ncols;
    char **cells; /* owned: nrows * ncols strings, already sanitised */
    size_t nrows, cap;
    int *width; /* owned: remembered widths, grows across flushes */
    bool header_done;
};

struct ctl_table *ctl_table_new(const struct ctl_column *cols, size_t ncols)
{
    struct ctl_table *t = calloc(1, sizeof(*t));
    if (!t)
        return NULL;
    t->width = calloc(ncols, sizeof(*t->width));
    if (!t->width) {
        free(t);
        return NULL;
    }
    t->cols = cols;
    t->ncols = ncols;
    return t;
}

static void clear_rows(struct ctl_table *t)
{
    for (size_t i = 0; i < t->nrows * t->ncols; i++)
        free(t->cells[i]);
    t->nrows = 0;
}

void ctl_table_free(struct ctl_table *t)
{
    if (!t)
        return;
    clear_rows(t);
    free(t->cells);
    free(t->width);
    free(t);
}

size_t ctl_table_rows(const struct ctl_table *t)
{
    return t->nrows;
}

/* Copy of s with C0 controls, DEL and newlines replaced by '?' (no terminal escapes). */
static char *sanitised(const char *s)
{
    char *c = strdup(s ? s : "");
    if (!c)
        return NULL;
    for (unsigned char *p = (unsigned char *)c; *p; p++)
        if (*p < 0x20 || *p == 0x7f)
            *p = '?';
    return c;
}

bool ctl_table_add(struct ctl_table *t, const char *const *cells)
{
    if (t->nrows == t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 16;
        char **p = realloc(t->cells, cap * t->ncols * sizeof(*p));
        if (!p)
            return false;
        t->cells = p;
        t->cap = cap;
    }
    char **row = t->cells + t->nrows * t->ncols;
    for (size_t i = 0; i < t->ncols; i++) {
        row[i] = sanitised(cells[i]);
        if (!row[i]) {
            while (i > 0)
                free(row[--i]);
            return false;
        }
    }
    t->nrows++;
    return true;
}

/* Display width: one per code point (UTF-8 continuation bytes do not count). */
static int text_width(const char *s)
{
    int w = 0;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        if ((*p & 0xc0) != 0x80)
            w++;
    return w;
}

static bool utf8_terminal(void)
{
    const char *cs = nl_langinfo(CODESET);
    return cs && strcmp(cs, "UTF-8") == 0;
}

/* Writes s in exactly `width` columns (padding, or cut with a marker), or unpadded if last. */
static void put_cell(FILE *out, const char *s, int width, bool right, bool last)
{
    int w = text_width(s);
    if (w > width) {
        /* Keep width-1 code points, then the marker. */
        int keep = width - 1, n = 0;
        const unsigned char *p = (const unsigned char *)s;
        while (*p) {
            if ((*p & 0xc0) != 0x80 && n++ == keep)
                break;
            p++;
        }
        fwrite(s, 1, (size_t)((const char *)p - s), out);
        fputs(utf8_terminal() ? "\u2026" : "~", out);
        return;
    }
    if (right)
        fprintf(out, "%*s%s", width - w, "", s);
    else if (last)
        fputs(s, out);
    else
        fprintf(out, "%s%*s", s, width - w, "");
}

static void put_row(const struct ctl_table *t, FILE *out, const char *const *cells,
                    const int *width)
{
    for (size_t c = 0; c < t->ncols; c++) {
        if (c)
            fprintf(out, "%*s", GAP, "");
        put_cell(out, cells[c], width[c], t->cols[c].right, c + 1 == t->ncols);
    }
    fputc('\n', out);
}

/* Cuts the widest shrinkable columns until the row fits max_width (or nothing can shrink). */
static void fit(const struct ctl_table *t, int *width, int max_width)
{
    int total = GAP * (int)(t->ncols - 1);
    for (size_t c = 0; c < t->ncols; c++)
        total += width[c];
    while (total > max_width) {
        size_t widest = t->ncols;
        for (size_t c = 0; c < t->ncols; c++) {
            int floor = text_width(t->cols[c].title);
            if (floor < MIN_CUT_WIDTH)
                floor = MIN_CUT_WIDTH;
            if (t->cols[c].shrink && width[c] > floor &&
                (widest == t->ncols || width[c] > width[widest]))
                widest = c;
        }
        if (widest == t->ncols)
            return;
        width[widest]--;
        total--;
    }
}

void ctl_table_flush(struct ctl_table *t, FILE *out, int max_width)
{
    for (size_t c = 0; c < t->ncols; c++) {
        int w = text_width(t->cols[c].title);
        if (w > t->width[c])
            t->width[c] = w;
    }
    for (size_t r = 0; r < t->nrows; r++)
        for (size_t c = 0; c < t->ncols; c++) {
            int w = text_width(t->cells[r * t->ncols + c]);
            if (w > t->width[c])
                t->width[c] = w;
        }
    int *width = malloc(t->ncols * sizeof(*width));
    if (!width)
        return;
    memcpy(width, t->width, t->ncols * sizeof(*width));
    if (max_width > 0)
        fit(t, width, max_width);
    if (!t->header_done) {
        const char *titles[t->ncols];
        for (size_t c = 0; c < t->ncols; c++)
            titles[c] = t->cols[c].title;
        put_row(t, out, titles, width);
        t->header_done = true;
    }
    for (size_t r = 0; r < t->nrows; r++)
        put_row(t, out, (const char *const *)t->cells + r * t->ncols, width);
    free(width);
    clear_rows(t);
    fflush(out);
}

int ctl_table_max_width(void)
{
    if (!isatty(STDOUT_FILENO))
        return 0;
    const char *env = getenv("COLUMNS");
    if (env && *env) {
        char *end;
        long n = strtol(env, &end, 10);
        if (*end == '\0' && n > 10 && n < 100000)
            return (int)n;
    }
    struct winsize ws;
    if (ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 10)
        return ws.ws_col;
    return 80;
}

void ctl_table_print(struct ctl_table *t, const char *empty_msg)
{
    if (ctl_table_rows(t) == 0)
        fprintf(stderr, "%s\n", empty_msg);
    else
        ctl_table_flush(t, stdout, ctl_table_max_width());
    ctl_table_free(t);
}
