/* web-admin static files: the pages, CSS and JS, read once at start from the static folder
 * into memory. Only files found then, with a known extension and a plain name, can ever be
 * served, so no request path reaches the file system (no traversal, no symlink games).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "web-admin/wa_internal.h"

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

/* Page paths and the file behind each. */
static const struct {
    const char *path, *file;
} pages[] = {
    {"/", "index.html"},        {"/login", "login.html"},       {"/log", "log.html"},
    {"/policy", "policy.html"}, {"/lists", "lists.html"},       {"/users", "users.html"},
    {"/audit", "audit.html"},   {"/settings", "settings.html"},
};

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

static const struct static_file *find(const struct wa_static *s, const char *name)
{
    for (size_t i = 0; i < s->n; i++)
        if (!strcmp(s->files[i].name, name))
            return &s->files[i];
    return NULL;
}

static const char *page_file(const char *path)
{
    for (size_t i = 0; i < sizeof(pages) / sizeof(pages[0]); i++)
        if (!strcmp(pages[i].path, path))
            return pages[i].file;
    return NULL;
}

bool wa_static_is_page(const char *path)
{
    return page_file(path) != NULL;
}

enum MHD_Result wa_static_serve(struct wa_req *r, bool *found)
{
    const struct static_file *f = NULL;
    const char *page = page_file(r->url);

    *found = false;
    if (page) {
        /* Pages hold no data, but a browser without a session belongs on the login page. */
        if (!r->authed && strcmp(r->url, "/login") != 0) {
            struct MHD_Response *resp =
                MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
            enum MHD_Result ret;
            if (!resp)
                return MHD_NO;
            wa_headers_add(resp, NULL);
            MHD_add_response_header(resp, "Location", "/login");
            ret = MHD_queue_response(r->conn, MHD_HTTP_SEE_OTHER, resp);
            MHD_destroy_response(resp);
            r->answered = true;
            *found = true;
            return ret;
        }
        f = find(r->srv->files, page);
    } else if (!strncmp(r->url, "/static/", 8) && plain_name(r->url + 8)) {
        f = find(r->srv->files, r->url + 8);
    }
    if (!f)
        return MHD_NO;
    *found = true;
    return wa_reply_data(r, 200, f->ctype, page ? "no-store" : "no-cache", f->data, f->len);
}
