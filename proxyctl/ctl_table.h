/* proxyctl's aligned tables: column widths computed from the cells, numbers right-aligned,
 * control characters shown as '?', and, when printing to a terminal, the widest shrinkable
 * columns cut (with a marker) so a row fits $COLUMNS. Piped output is never cut. */
#ifndef PX_CTL_TABLE_H
#define PX_CTL_TABLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

struct ctl_column {
    const char *title;
    bool right;  /* right-align (numbers) */
    bool shrink; /* may be cut to fit the terminal (free text: rule text, URL, comment) */
};

struct ctl_table;

/* Returns NULL when out of memory. cols is borrowed and must outlive the table. */
struct ctl_table *ctl_table_new(const struct ctl_column *cols, size_t ncols);
void ctl_table_free(struct ctl_table *t);

/* Copies one row of ncols cells (NULL prints as ""). Returns false when out of memory. */
bool ctl_table_add(struct ctl_table *t, const char *const *cells);
size_t ctl_table_rows(const struct ctl_table *t);

/* Prints the rows added since the last flush, and the header on the first flush. Widths
 * only grow from one flush to the next, so --follow output stays aligned. max_width 0: no
 * cutting. */
void ctl_table_flush(struct ctl_table *t, FILE *out, int max_width);

/* The width to cut to: $COLUMNS or the terminal's width if stdout is a terminal, else 0. */
int ctl_table_max_width(void);

/* Prints all of t to stdout cut to ctl_table_max_width(), or, when t has no rows, the line
 * empty_msg to stderr (so a pipe gets no header without rows); then frees t. */
void ctl_table_print(struct ctl_table *t, const char *empty_msg);

#endif
