/* reply: the answers proxyd gives itself instead of an origin: error and block pages, 407
 * with its challenge, "200 Connection established" for a tunnel, and the state that sends
 * them (CONN_REPLY). The page is built by a pure function (reply_format) so what a client
 * can see is tested without a socket. */
#ifndef PX_REPLY_H
#define PX_REPLY_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include "proxy/conn_close.h"

struct conn;

/* One page of ours, as reply_format writes it. Every string is borrowed and NUL-terminated;
 * all but status are HTML-escaped into the page (control bytes become '?'), since url comes
 * from the client and detail may quote it. */
struct reply_page {
    int status;          /* 400 ... 504; its reason phrase is ours */
    const char *detail;  /* what happened, in our words */
    const char *url;     /* the address the client asked for */
    const char *contact; /* whom to ask (--contact), "" for no such line */
    /* The office's logo as a data: URI ("data:image/png;base64,..."; the admin server checked
     * its type and size), "" for none. Not escaped: only a URI of that form whose payload
     * is base64 is shown, anything else is left out. */
    const char *logo;
    time_t when;     /* shown in local time */
    bool keep_alive; /* false: the answer says "Connection: close" */
    bool head_only;  /* an answer to HEAD: the head alone, with the page's Content-Length */
    /* A block page's "request access" form (access_req.h), posting this token; NULL for
     * none. */
    const char *form_token;
};

/* The largest logo a block page carries: REPLY_LOGO_BYTES of image, base64 in a data: URI
 * with its media type (REPLY_LOGO_URI_MAX with the NUL). With the rest of the page it stays
 * under BUF_SIZE, the buffer the page is built in. */
#define REPLY_LOGO_BYTES 16384
#define REPLY_LOGO_URI_MAX (40 + 4 * ((REPLY_LOGO_BYTES + 2) / 3))

/* Whether uri is a logo the page may carry: data:image/png, image/jpeg or image/svg+xml,
 * ";base64," and nothing but base64 after it, shorter than REPLY_LOGO_URI_MAX. */
bool reply_logo_ok(const char *uri);

/* Writes the whole answer (head and, unless head_only, the HTML page) into out[0 .. cap),
 * using scratch[0 .. scratch_cap) to build the page. A page that does not fit scratch is sent
 * empty. Returns the answer's length, or -1 when it does not fit out. Pure, any thread. */
long reply_format(const struct reply_page *pg, char *out, size_t cap, char *scratch,
                  size_t scratch_cap);

/* Answers the request in flight with a page of ours (state CONN_REPLY) instead of anything
 * from the origin, whose connection, if any, is closed. keep says whether the client
 * connection may carry another request afterwards as far as this answer goes (an unread body
 * forbids it); the request's own wish (HTTP/1.0, "Connection: close") and draining bind
 * every answer too (RFC 9112 9.6). Without a buffer, c is closed instead. */
void reply_page(struct conn *c, int status, const char *detail, bool keep);
/* Records why as the request's outcome (request_record_outcome), then reply_page. */
void reply_error(struct conn *c, enum conn_close why, int status, const char *detail, bool keep);
/* The 403 block page. A rule's denial names the rule by number only: its text (a regex, a
 * list's entry) is the admin's business, and the admin finds it by that number in the log.
 * A denial without a rule (a refused CONNECT port, a client outside the allowed networks)
 * says why in reason. With form set (a rule blocked a plain HTTP request and access requests
 * are on) it carries the "request access" form. */
void reply_blocked(struct conn *c, int rule_id, const char *reason, bool keep, bool form);
/* Puts "HTTP/1.1 200 Connection established" in c->down (attached, empty) for a CONNECT. */
void reply_established(struct conn *c);
/* The CONN_REPLY step: sends the answer, then hands the record on and waits for the next
 * request, or lingers to close. Returns whether the state moved on. */
bool reply_step(struct conn *c);

#endif
