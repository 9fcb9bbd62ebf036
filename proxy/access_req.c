/* access_req: tokens, form parsing, rate limit and queue of block-page access requests. See
 * access_req.h. */
#include "proxy/access_req.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include <sodium.h>

#include "acl/acl.h"

int access_req_init(struct access_req_box *b)
{
    memset(b, 0, sizeof(*b));
    atomic_init(&b->enabled, false);
    if (sodium_init() < 0)
        return -1;
    randombytes_buf(b->key, sizeof(b->key));
    pthread_mutex_init(&b->mu, NULL);
    return 0;
}

void access_req_destroy(struct access_req_box *b)
{
    pthread_mutex_destroy(&b->mu);
    sodium_memzero(b->key, sizeof(b->key));
}

/* The MAC of "expiry|client|host|port" as 32 hex digits (the first 16 bytes) into hex[33]. */
static void token_mac(const struct access_req_box *b, const char *client, const char *host,
                      uint16_t port, int64_t expiry, char *hex)
{
    unsigned char mac[crypto_auth_hmacsha256_BYTES];
    crypto_auth_hmacsha256_state st;
    char head[64];
    int n = snprintf(head, sizeof(head), "%" PRId64 "|%u|", expiry, (unsigned)port);

    crypto_auth_hmacsha256_init(&st, b->key, sizeof(b->key));
    crypto_auth_hmacsha256_update(&st, (const unsigned char *)head, (size_t)n);
    /* Lengths first: no two (client, host) pairs give the same bytes. */
    n = snprintf(head, sizeof(head), "%zu|%zu|", strlen(client), strlen(host));
    crypto_auth_hmacsha256_update(&st, (const unsigned char *)head, (size_t)n);
    crypto_auth_hmacsha256_update(&st, (const unsigned char *)client, strlen(client));
    crypto_auth_hmacsha256_update(&st, (const unsigned char *)host, strlen(host));
    crypto_auth_hmacsha256_final(&st, mac);
    sodium_bin2hex(hex, 33, mac, 16);
}

void access_req_token(const struct access_req_box *b, const char *client, const char *host,
                      uint16_t port, int64_t now_s, char *out)
{
    char hex[33];
    int64_t expiry = now_s + ACCESS_REQ_TOKEN_TTL_S;

    token_mac(b, client, host, port, expiry, hex);
    snprintf(out, ACCESS_REQ_TOKEN_LEN, "%" PRId64 ".%s", expiry, hex);
}

bool access_req_token_ok(const struct access_req_box *b, const char *token, const char *client,
                         const char *host, uint16_t port, int64_t now_s)
{
    char hex[33];
    int64_t expiry = 0;
    const char *p = token;

    /* At most 12 digits: an expiry far beyond any now, never an overflow. */
    for (int i = 0; *p >= '0' && *p <= '9'; p++, i++) {
        if (i == 12)
            return false;
        expiry = expiry * 10 + (*p - '0');
    }
    if (p == token || *p != '.' || strlen(p + 1) != 32 || expiry < now_s ||
        expiry > now_s + ACCESS_REQ_TOKEN_TTL_S)
        return false;
    token_mac(b, client, host, port, expiry, hex);
    return sodium_memcmp(hex, p + 1, 32) == 0;
}

static int hex_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Decodes s[0..len) into out[0..cap): returns the decoded length, or -1 when it does not fit
 * (cap - 1 bytes at most, NUL-terminated) or holds a bad %-escape. */
static long url_decode(const char *s, size_t len, char *out, size_t cap)
{
    size_t n = 0;

    for (size_t i = 0; i < len; i++) {
        int c = (unsigned char)s[i];

        if (c == '+') {
            c = ' ';
        } else if (c == '%') {
            int hi = i + 2 < len ? hex_value(s[i + 1]) : -1;
            int lo = i + 2 < len ? hex_value(s[i + 2]) : -1;

            if (hi < 0 || lo < 0)
                return -1;
            c = hi * 16 + lo;
            i += 2;
        }
        if (n + 1 >= cap)
            return -1;
        out[n++] = (char)c;
    }
    out[n] = '\0';
    return (long)n;
}

/* Control characters other than tab and line breaks have no place in a reason or name. */
static bool text_ok(const char *s, size_t len, bool multiline)
{
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];

        if ((c < 0x20 && !(multiline && (c == '\t' || c == '\n' || c == '\r'))) || c == 0x7f)
            return false;
    }
    return acl_utf8_valid(s, len, NULL);
}

int access_req_parse(const char *q, size_t len, struct access_req_form *f, const char **why)
{
    bool have_token = false, have_reason = false;
    const char *end = q + len;

    memset(f, 0, sizeof(*f));
    while (q < end) {
        const char *amp = memchr(q, '&', (size_t)(end - q));
        const char *pair_end = amp ? amp : end;
        const char *eq = memchr(q, '=', (size_t)(pair_end - q));
        const char *val = eq ? eq + 1 : pair_end;
        size_t klen = (size_t)((eq ? eq : pair_end) - q), vlen = (size_t)(pair_end - val);
        long n;

        if (klen == 1 && *q == 't') {
            /* Tokens are ours: digits, a dot, lower-case hex (access_req_token). */
            n = url_decode(val, vlen, f->token, sizeof(f->token));
            if (n <= 0 || strspn(f->token, "0123456789abcdef.") != (size_t)n) {
                *why = "bad token";
                return -1;
            }
            have_token = true;
        } else if (klen == 6 && !memcmp(q, "reason", 6)) {
            n = url_decode(val, vlen, f->reason, sizeof(f->reason));
            if (n < 0 || !text_ok(f->reason, (size_t)n, true)) {
                *why =
                    n < 0 ? "the reason is too long (at most 500 bytes)" : "the reason is not text";
                return -1;
            }
            have_reason = n > 0 && f->reason[strspn(f->reason, " \t\r\n")] != '\0';
        } else if (klen == 4 && !memcmp(q, "name", 4)) {
            n = url_decode(val, vlen, f->name, sizeof(f->name));
            if (n < 0 || !text_ok(f->name, (size_t)n, false)) {
                *why = n < 0 ? "the name is too long (at most 64 bytes)" : "the name is not text";
                return -1;
            }
        }
        q = amp ? amp + 1 : end;
    }
    if (!have_token) {
        *why = "the form's token is missing";
        return -1;
    }
    if (!have_reason) {
        *why = "please say why you need this address";
        return -1;
    }
    return 0;
}

/* Whether client may send one more request now; counts it. Under b->mu. */
static bool rate_take(struct access_req_box *b, const char *client, int64_t now_ms)
{
    struct access_req_rate *slot = NULL, *oldest = &b->rate[0];

    for (size_t i = 0; i < ACCESS_REQ_CLIENTS; i++) {
        struct access_req_rate *r = &b->rate[i];

        if (!strcmp(r->client, client)) {
            slot = r;
            break;
        }
        if (r->window_start_ms < oldest->window_start_ms)
            oldest = r;
    }
    if (!slot || now_ms - slot->window_start_ms >= ACCESS_REQ_WINDOW_MS) {
        /* A forgotten client starts afresh: the table holds the most recent ones. */
        if (!slot)
            slot = oldest;
        snprintf(slot->client, sizeof(slot->client), "%s", client);
        slot->window_start_ms = now_ms;
        slot->count = 0;
    }
    if (slot->count >= ACCESS_REQ_PER_CLIENT)
        return false;
    slot->count++;
    return true;
}

enum access_req_result access_req_submit(struct access_req_box *b, const struct access_req_form *f,
                                         struct store_request *rq, int64_t now_ms)
{
    enum access_req_result res = ACCESS_REQ_QUEUED;

    if (!access_req_token_ok(b, f->token, rq->client, rq->host, rq->port, now_ms / 1000))
        return ACCESS_REQ_BAD_TOKEN;
    snprintf(rq->reason, sizeof(rq->reason), "%s", f->reason);
    snprintf(rq->name, sizeof(rq->name), "%s", f->name);
    pthread_mutex_lock(&b->mu);
    if (b->nqueued == ACCESS_REQ_QUEUE)
        res = ACCESS_REQ_BUSY;
    else if (!rate_take(b, rq->client, now_ms))
        res = ACCESS_REQ_RATE_LIMITED;
    else
        b->queue[b->nqueued++] = *rq;
    pthread_mutex_unlock(&b->mu);
    return res;
}

size_t access_req_take(struct access_req_box *b, struct store_request *out, size_t max)
{
    size_t n;

    pthread_mutex_lock(&b->mu);
    n = b->nqueued < max ? b->nqueued : max;
    memcpy(out, b->queue, n * sizeof(*out));
    memmove(b->queue, b->queue + n, (b->nqueued - n) * sizeof(*out));
    b->nqueued -= n;
    pthread_mutex_unlock(&b->mu);
    return n;
}
