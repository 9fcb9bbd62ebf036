/* acl_url.h: the normalised absolute URL that url-regex rules see, and the normalised host
 * inside it that domain and host-regex rules see. Internal to acl/.
 *
 *   scheme lower-cased; the host canonical (acl_host.h), IPv6 inside []; the port dropped when it
 * is the scheme's default (80 for http, 443 for https); percent-encoded unreserved characters
 * (ALPHA DIGIT - . _ ~) decoded, other escapes kept with upper-case hex; an empty path (CONNECT)
 * becomes "/".
 */
#ifndef PX_ACL_URL_H
#define PX_ACL_URL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "acl/acl_host.h"

#define ACL_URL_MAX 65536 /* normalised URL buffer, bytes */

/* Writes "scheme://host" into buf. host NULL is an empty host. Sets *host_off to where the
 * host's text starts within buf (after a '['). Returns the bytes written, or -1 if it does
 * not fit in cap. */
int acl_url_begin(char *buf, size_t cap, const char *scheme, const struct acl_host *host,
                  size_t *host_off);

/* Appends ":port" (unless default) and the normalised path at buf + pos. Returns the total
 * URL length, -1 if it does not fit in cap, or ACL_URL_AMBIGUOUS for a path whose dot
 * segments an encoded slash or backslash delimits ("/x/..%2Fadmin"): origins that decode
 * it before resolving them ("/admin") and those that do not ("/x/..%2Fadmin") read different
 * paths, so no one normalised form is what a rule would be judging. */
#define ACL_URL_AMBIGUOUS (-2)
int acl_url_finish(char *buf, size_t cap, size_t pos, uint16_t port, const char *path,
                   size_t path_len);

/* How a server reads a path's ";", "\\", "%5C" and "%2F", beyond what acl_url_finish resolves
 * in every reading (escapes, dot segments, runs of "/"). Servers differ, and one in front of
 * another may read a path its way and hand it on as it is for the other to read its own way:
 * a path is judged in each reading.
 *   PARAMS: Tomcat and Jetty drop a segment's ";parameters" up to the next "/" written as such
 *     ("/admin;x=1/" and "/a/..;/admin" are "/admin/" and "/admin"; "/admin;\\..\\" is
 *     "/admin"), and take "\\" and escapes as part of the segment;
 *   SEPARATORS: IIS takes "\\" and "%5C" for "/", nginx decodes "%2F" before it resolves the
 *     path; ";" is a character like another;
 *   PARAMS_SEPARATORS: the first, then the second (Tomcat with allowBackslash and
 *     encodedSolidusHandling="decode": it drops parameters before it decodes and resolves);
 *   SEPARATORS_PARAMS: the second, then the first, so a parameter ends at any separator (a
 *     server that takes "\\" for "/" in front of Tomcat: "/x/..;\\admin" reaches it as
 *     "/x/..;/admin"). */
enum acl_url_reading {
    ACL_URL_READ_PARAMS,
    ACL_URL_READ_SEPARATORS,
    ACL_URL_READ_PARAMS_SEPARATORS,
    ACL_URL_READ_SEPARATORS_PARAMS,
    ACL_URL_READ_COUNT
};

/* The readings in which path[0..len) (up to its query) may read otherwise than as it is and
 * than in another reading of the set: a bit (1u << reading) each; 0 when it holds none of
 * ";", "\\", "%2F" and "%5C" (in either case). */
unsigned acl_url_readings(const char *path, size_t len);

/* Writes path[0..len) as `reading` reads it into out[0..cap), NUL-terminated; the query is
 * copied as it is. Never longer than len. Returns the length, or -1 when cap <= len. */
int acl_url_read_path(const char *path, size_t len, enum acl_url_reading reading, char *out,
                      size_t cap);

/* The words a reason adds for a decision taken on that reading: "path read without
 * ;parameters, ...". */
const char *acl_url_reading_str(enum acl_url_reading reading);

#endif
