/* fuzz_access_req: libFuzzer target for access_req_parse, the parser of the query a block
 * page's "request access" form sends (any client can send any bytes there).
 *
 * Invariants beyond "no crash": the answer agrees with a plain reference reading of the
 * documented format and limits (pairs split on '&', key and value on the first '='; '+' a
 * space, %XX a byte; keys t, reason, name, the last of each counting, any other ignored; a
 * bad escape or a value past its limit refuses the whole form: token 1..79 of [0-9a-f.], reason at
 * most 500 bytes of UTF-8 without control bytes but tab and line breaks, not only blanks;
 * name at most 64 bytes of UTF-8 without control bytes); a refusal says why; what is
 * accepted is NUL-terminated within its field.
 *
 * Linked with fuzz_replay.c instead of libFuzzer, it replays the seed corpus in every build.
 */
#include "fuzz_check.h"
#include "proxy/access_req.h"

#include <stdbool.h>
#include <string.h>

#include "acl/acl.h"

/* The reference decoder: -1 on a bad escape, else the decoded length (out has room). */
static long ref_decode(const char *s, size_t len, char *out)
{
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] == '+') {
            out[n++] = ' ';
        } else if (s[i] == '%') {
            unsigned v = 0;
            if (i + 2 >= len)
                return -1;
            for (int k = 1; k <= 2; k++) {
                char c = s[i + k];
                v *= 16;
                if (c >= '0' && c <= '9')
                    v += (unsigned)(c - '0');
                else if (c >= 'a' && c <= 'f')
                    v += (unsigned)(c - 'a' + 10);
                else if (c >= 'A' && c <= 'F')
                    v += (unsigned)(c - 'A' + 10);
                else
                    return -1;
            }
            out[n++] = (char)v;
            i += 2;
        } else {
            out[n++] = s[i];
        }
    }
    return (long)n;
}

static bool ref_text(const char *s, size_t len, bool multiline)
{
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == 0x7f || (c < 0x20 && !(multiline && (c == '\t' || c == '\n' || c == '\r'))))
            return false;
    }
    return acl_utf8_valid(s, len, NULL);
}

static bool blank(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if (!strchr(" \t\r\n", s[i]))
            return false;
    return true;
}

static char buf[8192], tok[8192], rsn[8192], nam[8192];

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct access_req_form f;
    const char *why = NULL;
    const char *q = (const char *)data, *end = q + size;
    bool ok = true, have_t = false, have_r = false;
    long tl = 0, rl = 0, nl = 0;

    if (size > sizeof(buf))
        return 0;
    while (q < end && ok) {
        const char *amp = memchr(q, '&', (size_t)(end - q));
        const char *pe = amp ? amp : end;
        const char *eq = memchr(q, '=', (size_t)(pe - q));
        const char *v = eq ? eq + 1 : pe;
        size_t kl = (size_t)((eq ? eq : pe) - q);
        long n = -2;

        if ((kl == 1 && !memcmp(q, "t", 1)) || (kl == 6 && !memcmp(q, "reason", 6)) ||
            (kl == 4 && !memcmp(q, "name", 4)))
            n = ref_decode(v, (size_t)(pe - v), buf);
        if (kl == 1 && !memcmp(q, "t", 1)) {
            ok = n > 0 && n < ACCESS_REQ_TOKEN_LEN;
            for (long i = 0; ok && i < n; i++)
                ok = (buf[i] >= '0' && buf[i] <= '9') || (buf[i] >= 'a' && buf[i] <= 'f') ||
                     buf[i] == '.';
            memcpy(tok, buf, (size_t)(n > 0 ? n : 0));
            tl = n;
            have_t = true;
        } else if (kl == 6 && !memcmp(q, "reason", 6)) {
            ok = n >= 0 && n <= ACCESS_REQ_REASON_MAX && ref_text(buf, (size_t)n, true);
            memcpy(rsn, buf, (size_t)(n > 0 ? n : 0));
            rl = n;
            have_r = ok && n > 0 && !blank(buf, (size_t)n);
        } else if (kl == 4 && !memcmp(q, "name", 4)) {
            ok = n >= 0 && n <= ACCESS_REQ_NAME_MAX && ref_text(buf, (size_t)n, false);
            memcpy(nam, buf, (size_t)(n > 0 ? n : 0));
            nl = n;
        }
        q = amp ? amp + 1 : end;
    }
    ok = ok && have_t && have_r;

    int rc = access_req_parse((const char *)data, size, &f, &why);
    CHECK(rc == (ok ? 0 : -1));
    if (rc < 0) {
        CHECK(why != NULL && *why);
        return 0;
    }
    CHECK((long)strlen(f.token) == tl && !memcmp(f.token, tok, (size_t)tl));
    CHECK((long)strnlen(f.reason, sizeof(f.reason)) == rl && !memcmp(f.reason, rsn, (size_t)rl));
    CHECK((long)strnlen(f.name, sizeof(f.name)) == nl && !memcmp(f.name, nam, (size_t)nl));
    return 0;
}
