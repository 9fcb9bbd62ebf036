/* acl_utf8.c: UTF-8 validation of policy text. A rule is stored, listed as JSON and shown in
 * the admin pages; text that is not UTF-8 would be enforced but could not be shown, so it is
 * refused where it enters.
 */
#include "acl/acl.h"

bool acl_utf8_valid(const char *str, size_t len, size_t *bad_off)
{
    const unsigned char *s = (const unsigned char *)str;
    size_t i = 0;

    while (i < len) {
        unsigned char c = s[i];
        size_t n;
        unsigned char lo = 0x80, hi = 0xbf; /* allowed range of the second byte */
        if (c < 0x80) {
            i++;
            continue;
        }
        if (c >= 0xc2 && c <= 0xdf) {
            n = 1;
        } else if (c >= 0xe0 && c <= 0xef) {
            n = 2;
            if (c == 0xe0)
                lo = 0xa0; /* overlong */
            else if (c == 0xed)
                hi = 0x9f; /* surrogates */
        } else if (c >= 0xf0 && c <= 0xf4) {
            n = 3;
            if (c == 0xf0)
                lo = 0x90; /* overlong */
            else if (c == 0xf4)
                hi = 0x8f; /* past U+10FFFF */
        } else {
            goto bad;
        }
        if (len - i <= n || s[i + 1] < lo || s[i + 1] > hi)
            goto bad;
        for (size_t k = 2; k <= n; k++) {
            if ((s[i + k] & 0xc0) != 0x80)
                goto bad;
        }
        i += n + 1;
    }
    return true;
bad:
    if (bad_off)
        *bad_off = i;
    return false;
}
