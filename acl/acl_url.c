/* acl_url.c: building the normalised host and URL of a request into a caller's buffer
 * (the per-thread scratch), so evaluation allocates nothing.
 */
#include "acl/acl_url.h"

#include <string.h>

static const char hex_upper[] = "0123456789ABCDEF";

static int hex_value(unsigned char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c |= 32;
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

static bool is_unreserved(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '.' || c == '_' || c == '~';
}

int acl_url_begin(char *buf, size_t cap, const char *scheme, const struct acl_host *host,
                  size_t *host_off)
{
    size_t pos = 0;
    size_t slen = scheme ? strlen(scheme) : 0;
    size_t hlen = host ? host->len : 0;
    bool v6 = host && host->kind == ACL_HOST_IPV6;
    if (slen == 0) {
        scheme = "http";
        slen = 4;
    }
    /* scheme, "://", "[" host "]" */
    if (slen + 3 + hlen + 2 >= cap)
        return -1;
    for (size_t i = 0; i < slen; i++) {
        char c = scheme[i];
        buf[pos++] = (c >= 'A' && c <= 'Z') ? (char)(c + 32) : c;
    }
    memcpy(buf + pos, "://", 3);
    pos += 3;
    if (v6)
        buf[pos++] = '[';
    *host_off = pos;
    if (hlen)
        memcpy(buf + pos, host->text, hlen);
    pos += hlen;
    if (v6)
        buf[pos++] = ']';
    buf[pos] = '\0';
    return (int)pos;
}

/* Resolves the path's dot segments (RFC 3986 5.2.4) and collapses empty segments, in place,
 * in path[0..len) which starts with '/' and ends before any query. Origins resolve "/a/../b",
 * "/./b" and "//b" to "/b", so a rule written for "/b" must see "/b" too. Returns the new
 * length (never longer). */
static size_t remove_dot_segments(char *path, size_t len)
{
    size_t out = 0; /* path[0..out) is the resolved prefix, "" or "/seg/seg" */
    size_t i = 0;
    bool dir = false; /* the resolved path names a directory: ends with "/" */
    while (i < len) {
        size_t start = ++i; /* skip the '/' */
        while (i < len && path[i] != '/')
            i++;
        size_t seg = i - start;
        bool last = i == len;
        if (seg == 0 || (seg == 1 && path[start] == '.')) {
            dir = last || dir;
            continue;
        }
        if (seg == 2 && path[start] == '.' && path[start + 1] == '.') {
            while (out > 0 && path[--out] != '/')
                ;
            dir = true;
            continue;
        }
        path[out++] = '/';
        memmove(path + out, path + start, seg);
        out += seg;
        dir = false;
    }
    if (out == 0 || dir)
        path[out++] = '/';
    return out;
}

/* Whether path[0..len), with escapes in upper case, holds an encoded slash or backslash and a
 * "." or ".." segment when those count as separators too. */
static bool encoded_slash_dot_segment(const char *path, size_t len)
{
    bool encoded = false;
    for (size_t i = 0; i + 2 < len && !encoded; i++)
        encoded =
            path[i] == '%' && (memcmp(path + i, "%2F", 3) == 0 || memcmp(path + i, "%5C", 3) == 0);
    if (!encoded)
        return false;
    size_t seg = 0; /* where the current segment starts */
    for (size_t i = 0; i <= len; i++) {
        size_t sep =
            i == len         ? 1
            : path[i] == '/' ? 1
            : i + 2 < len && (memcmp(path + i, "%2F", 3) == 0 || memcmp(path + i, "%5C", 3) == 0)
                ? 3
                : 0;
        if (!sep)
            continue;
        size_t n = i - seg;
        if ((n == 1 && path[seg] == '.') || (n == 2 && path[seg] == '.' && path[seg + 1] == '.'))
            return true;
        i += sep - 1;
        seg = i + 1;
    }
    return false;
}

int acl_url_finish(char *buf, size_t cap, size_t pos, uint16_t port, const char *path,
                   size_t path_len)
{
    /* Worst case: ":65535", every byte kept as is, "/" and the NUL. */
    if (pos + 6 + path_len + 2 > cap)
        return -1;
    /* buf starts with the lower-cased scheme written by acl_url_begin. */
    bool is_default = (port == 80 && strncmp(buf, "http:", 5) == 0) ||
                      (port == 443 && strncmp(buf, "https:", 6) == 0);
    if (port != 0 && !is_default) {
        char digits[6];
        int n = 0;
        for (unsigned v = port; v > 0; v /= 10)
            digits[n++] = (char)('0' + v % 10);
        buf[pos++] = ':';
        while (n > 0)
            buf[pos++] = digits[--n];
    }
    size_t path_begin = pos;
    if (path_len == 0) {
        buf[pos++] = '/';
    } else {
        for (size_t i = 0; i < path_len; i++) {
            unsigned char c = (unsigned char)path[i];
            int hi, lo;
            if (c == '%' && i + 2 < path_len && (hi = hex_value((unsigned char)path[i + 1])) >= 0 &&
                (lo = hex_value((unsigned char)path[i + 2])) >= 0) {
                unsigned char d = (unsigned char)(hi << 4 | lo);
                if (is_unreserved(d)) {
                    buf[pos++] = (char)d;
                } else {
                    buf[pos++] = '%';
                    buf[pos++] = hex_upper[hi];
                    buf[pos++] = hex_upper[lo];
                }
                i += 2;
                continue;
            }
            buf[pos++] = (char)c;
        }
    }
    /* Only the path holds segments: resolve up to the query or fragment. An origin-form
     * path starts with '/'; anything else (an asterisk-form "*") is left as it is. */
    if (buf[path_begin] == '/') {
        size_t end = path_begin;
        while (end < pos && buf[end] != '?' && buf[end] != '#')
            end++;
        if (encoded_slash_dot_segment(buf + path_begin, end - path_begin))
            return ACL_URL_AMBIGUOUS;
        size_t kept = remove_dot_segments(buf + path_begin, end - path_begin);
        memmove(buf + path_begin + kept, buf + end, pos - end);
        pos -= (end - path_begin) - kept;
    }
    buf[pos] = '\0';
    return (int)pos;
}

/* The length of the separator a loose server sees at path[i..end): "/", "\\", "%2F" or
 * "%5C" in either case; 0 for none. */
static size_t loose_separator(const char *path, size_t i, size_t end)
{
    if (path[i] == '/' || path[i] == '\\')
        return 1;
    if (path[i] != '%' || i + 2 >= end)
        return 0;
    char lo = (char)(path[i + 2] | 32);
    return (path[i + 1] == '2' && lo == 'f') || (path[i + 1] == '5' && lo == 'c') ? 3 : 0;
}

unsigned acl_url_readings(const char *path, size_t len)
{
    bool param = false;         /* inside a ";parameter", which ends at a "/" */
    bool semi = false;          /* a ";" */
    bool sep_in_param = false;  /* a "\\", "%2F" or "%5C" inside a parameter */
    bool sep_elsewhere = false; /* one outside */
    for (size_t i = 0; i < len && path[i] != '?'; i++) {
        if (path[i] == '/') {
            param = false;
        } else if (path[i] == ';') {
            semi = param = true;
        } else if (loose_separator(path, i, len)) {
            sep_in_param |= param;
            sep_elsewhere |= !param;
        }
    }
    /* Each reading kept differs from the path as it is and from the others kept: without a
     * ";" the two-step readings are SEPARATORS, without a separator they are PARAMS; with
     * separators only inside parameters PARAMS_SEPARATORS is PARAMS, and with separators only
     * outside them SEPARATORS_PARAMS is PARAMS_SEPARATORS. */
    unsigned r = 0;
    if (semi)
        r |= 1u << ACL_URL_READ_PARAMS;
    if (sep_in_param || sep_elsewhere)
        r |= 1u << ACL_URL_READ_SEPARATORS;
    if (semi && sep_elsewhere)
        r |= 1u << ACL_URL_READ_PARAMS_SEPARATORS;
    if (semi && sep_in_param)
        r |= 1u << ACL_URL_READ_SEPARATORS_PARAMS;
    return r;
}

int acl_url_read_path(const char *path, size_t len, enum acl_url_reading reading, char *out,
                      size_t cap)
{
    if (len >= cap)
        return -1;
    bool params = reading != ACL_URL_READ_SEPARATORS;
    bool seps = reading != ACL_URL_READ_PARAMS;
    bool param_ends_at_any = reading == ACL_URL_READ_SEPARATORS_PARAMS;
    size_t end = 0;
    while (end < len && path[end] != '?')
        end++;
    size_t o = 0;       /* each byte read writes at most one: o <= i < len < cap */
    bool param = false; /* inside a segment's ";parameters", being dropped */
    for (size_t i = 0; i < end; i++) {
        size_t sep = path[i] == '/' ? 1 : seps ? loose_separator(path, i, end) : 0;
        if (param && !(path[i] == '/' || (param_ends_at_any && sep)))
            continue;
        param = false;
        if (sep) {
            out[o++] = '/';
            i += sep - 1;
        } else if (params && path[i] == ';') {
            param = true;
        } else {
            out[o++] = path[i];
        }
    }
    memcpy(out + o, path + end, len - end);
    o += len - end;
    out[o] = '\0';
    return (int)o;
}

const char *acl_url_reading_str(enum acl_url_reading reading)
{
    static const char *const str[ACL_URL_READ_COUNT] = {
        [ACL_URL_READ_PARAMS] = "path read without ;parameters, as Tomcat and Jetty read it",
        [ACL_URL_READ_SEPARATORS] = "path read with \\, %5C and %2F as /, as IIS and nginx read it",
        [ACL_URL_READ_PARAMS_SEPARATORS] =
            "path read without ;parameters, then with \\, %5C and %2F as /",
        [ACL_URL_READ_SEPARATORS_PARAMS] =
            "path read with \\, %5C and %2F as /, then without ;parameters",
    };
    return (unsigned)reading < ACL_URL_READ_COUNT ? str[reading] : "path read another way";
}
