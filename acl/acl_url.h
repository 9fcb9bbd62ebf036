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

/* The path as the servers that read it most loosely read it, written into out[0..cap): each
 * segment's ";parameters" dropped (Tomcat and Jetty serve "/admin;x=1/" and "/a/..;/admin"
 * as "/admin/" and "/admin"), "\" and "%5C" taken for "/" (IIS) and "%2F" too (nginx
 * decodes it before it resolves the path). The query is copied as it is. Returns the
 * length, -1 when the path holds none of these (it has that one reading), or -2 when out is
 * too small. */
int acl_url_loose_path(const char *path, size_t len, char *out, size_t cap);

#endif
