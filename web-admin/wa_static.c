/* web-admin static files: the pages, CSS and JS, read once at start from the static folder
 * into memory. Only files found then, with a known extension and a plain name, can ever be
 * served, so no request path reaches the file system (no traversal, no symlink games).
 * The head, header and nav that every admin page shares live once, in _layout.html; a page file
 * holds only what goes below the page title, and is wrapped in the layout at load time, so
 * pages stay server-rendered and need no script to get their navigation.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "web-admin/wa_static.h"

#define STATIC_MAX_FILES 128
#define STATIC_MAX_BYTES (4 << 20)

struct static_file {
    char name[64];
    const char *ctype;
    char *data; /* owned */
    size_t len;
};

struct wa_static {
    struct static_file files[STATIC_MAX_FILES];
    size_t n;
};

static const struct {
    const char *ext, *ctype;
} types[] = {
    {".html", "text/html; charset=utf-8"},
    {".css", "text/css; charset=utf-8"},
    {".js", "text/javascript; charset=utf-8"},
    {".svg", "image/svg+xml"},
    {".png", "image/png"},
    {".ico", "image/x-icon"},
    {".txt", "text/plain; charset=utf-8"},
};

#define LAYOUT_FILE "_layout.html"

/* Page paths and the file behind each (wa_static.h). A page with an id is wrapped in the
 * layout: the id names its script (/static/<id>.js), its nav item and body[data-page]; the
 * title heads the page. The login page has no nav and is a whole document of its own. */
#define PAGE_ENTRY(path, file, id, title) {path, file, id, title},
static const struct {
    const char *path, *file, *id, *title;
} pages[] = {{WA_LOGIN_PAGE, "login.html", NULL, NULL}, WA_PAGES(PAGE_ENTRY)};

static const char *type_of(const char *name)
{
    size_t n = strlen(name);

    for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
        size_t e = strlen(types[i].ext);
        if (n > e && !strcmp(name + n - e, types[i].ext))
            return types[i].ctype;
    }
    return NULL;
}

static bool plain_name(const char *name)
{
    size_t n = strlen(name);

    return n > 0 && n < 64 && name[0] != '.' &&
           strspn(name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") == n;
}

static int read_file(int dirfd, const char *name, struct static_file *f, char *err, size_t errlen)
{
    struct stat sb;
    ssize_t got;
    size_t off = 0;
    int fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);

    if (fd < 0 || fstat(fd, &sb) < 0 || !S_ISREG(sb.st_mode) || sb.st_size > STATIC_MAX_BYTES) {
        if (fd >= 0)
            close(fd);
        return 0; /* not a plain small file: not served */
    }
    f->data = malloc((size_t)sb.st_size + 1);
    if (!f->data) {
        close(fd);
        snprintf(err, errlen, "static file %s: out of memory", name);
        return -1;
    }
    while (off < (size_t)sb.st_size) {
        got = read(fd, f->data + off, (size_t)sb.st_size - off);
        if (got <= 0) {
            snprintf(err, errlen, "static file %s: %s", name, got ? strerror(errno) : "short read");
            close(fd);
            free(f->data);
            f->data = NULL;
            return -1;
        }
        off += (size_t)got;
    }
    close(fd);
    f->len = off;
    snprintf(f->name, sizeof(f->name), "%s", name);
    f->ctype = type_of(name);
    return 1;
}

static struct static_file *find(struct wa_static *s, const char *name)
{
    for (size_t i = 0; i < s->n; i++)
        if (!strcmp(s->files[i].name, name))
            return &s->files[i];
    return NULL;
}

struct out {
    char *p; /* owned */
    size_t len, cap;
};

static bool out_put(struct out *o, const char *s, size_t n)
{
    if (o->len + n > o->cap) {
        size_t cap = (o->len + n) * 2;
        char *p = realloc(o->p, cap);
        if (!p)
            return false;
        o->p = p;
        o->cap = cap;
    }
    memcpy(o->p + o->len, s, n);
    o->len += n;
    return true;
}

static bool is_name(const char *s, size_t n, const char *name)
{
    return strlen(name) == n && !memcmp(s, name, n);
}

/* Replaces a page file's body by the layout with the body, id and title filled into its
 * {{main}}, {{page}} and {{title}}; {{active:<id>}} marks the nav item of this page. An unknown
 * placeholder is an error, so a typo in the layout stops the start instead of showing. */
static int wrap_page(const struct static_file *layout, struct static_file *page, const char *id,
                     const char *title, char *err, size_t errlen)
{
    static const char active[] = " class=\"active\" aria-current=\"page\"";
    const char *p = layout->data, *end = layout->data + layout->len;
    struct out o = {0};
    bool ok = true;

    while (ok && p < end) {
        const char *open = memmem(p, (size_t)(end - p), "{{", 2), *name, *close;
        size_t n;

        if (!open) {
            ok = out_put(&o, p, (size_t)(end - p));
            break;
        }
        close = memmem(open, (size_t)(end - open), "}}", 2);
        if (!close) {
            snprintf(err, errlen, "static file %s: unclosed {{", LAYOUT_FILE);
            free(o.p);
            return -1;
        }
        name = open + 2;
        n = (size_t)(close - name);
        ok = out_put(&o, p, (size_t)(open - p));
        if (!ok)
            break;
        if (is_name(name, n, "main"))
            ok = out_put(&o, page->data, page->len);
        else if (is_name(name, n, "page"))
            ok = out_put(&o, id, strlen(id));
        else if (is_name(name, n, "title"))
            ok = out_put(&o, title, strlen(title));
        else if (n > 7 && !memcmp(name, "active:", 7)) {
            if (is_name(name + 7, n - 7, id))
                ok = out_put(&o, active, sizeof(active) - 1);
        } else {
            snprintf(err, errlen, "static file %s: unknown placeholder {{%.*s}}", LAYOUT_FILE,
                     (int)n, name);
            free(o.p);
            return -1;
        }
        p = close + 2;
    }
    if (!ok) {
        snprintf(err, errlen, "static file %s: out of memory", page->name);
        free(o.p);
        return -1;
    }
    free(page->data);
    page->data = o.p;
    page->len = o.len;
    return 0;
}

static int wrap_pages(struct wa_static *s, char *err, size_t errlen)
{
    const struct static_file *layout = find(s, LAYOUT_FILE);

    for (size_t i = 0; i < sizeof(pages) / sizeof(pages[0]); i++) {
        struct static_file *page = find(s, pages[i].file);

        if (!pages[i].id || !page)
            continue;
        if (!layout) {
            snprintf(err, errlen, "static file %s: not found, needed by %s", LAYOUT_FILE,
                     pages[i].file);
            return -1;
        }
        if (wrap_page(layout, page, pages[i].id, pages[i].title, err, errlen) < 0)
            return -1;
    }
    return 0;
}

struct wa_static *wa_static_load(const char *dir, char *err, size_t errlen)
{
    struct wa_static *s = calloc(1, sizeof(*s));
    struct dirent *de;
    DIR *d;

    if (!s) {
        snprintf(err, errlen, "static files: out of memory");
        return NULL;
    }
    d = opendir(dir);
    if (!d) {
        snprintf(err, errlen, "static folder %s: %s", dir, strerror(errno));
        free(s);
        return NULL;
    }
    while ((de = readdir(d)) != NULL && s->n < STATIC_MAX_FILES) {
        int rc;

        if (!plain_name(de->d_name) || !type_of(de->d_name))
            continue;
        rc = read_file(dirfd(d), de->d_name, &s->files[s->n], err, errlen);
        if (rc < 0) {
            closedir(d);
            wa_static_free(s);
            return NULL;
        }
        s->n += (size_t)rc;
    }
    closedir(d);
    if (wrap_pages(s, err, errlen) < 0) {
        wa_static_free(s);
        return NULL;
    }
    return s;
}

void wa_static_free(struct wa_static *s)
{
    if (!s)
        return;
    for (size_t i = 0; i < s->n; i++)
        free(s->files[i].data);
    free(s);
}

static const char *page_file(const char *path)
{
    for (size_t i = 0; i < sizeof(pages) / sizeof(pages[0]); i++)
        if (!strcmp(pages[i].path, path))
            return pages[i].file;
    return NULL;
}

enum MHD_Result wa_static_page(struct wa_req *r)
{
    const char *name = page_file(r->url);
    const struct static_file *f = name ? find(r->ctx->files, name) : NULL;

    if (!f)
        return wa_reply_data(r, 404, "text/plain; charset=utf-8", NULL, "not found\n", 10);
    return wa_reply_data(r, 200, f->ctype, "no-store", f->data, f->len);
}

enum MHD_Result wa_static_asset(struct wa_req *r)
{
    const struct static_file *f = NULL;

    /* _layout.html is only a part of pages, never served on its own */
    if (plain_name(r->param) && r->param[0] != '_')
        f = find(r->ctx->files, r->param);
    if (!f)
        return wa_reply_data(r, 404, "text/plain; charset=utf-8", NULL, "not found\n", 10);
    return wa_reply_data(r, 200, f->ctype, "no-cache", f->data, f->len);
}
