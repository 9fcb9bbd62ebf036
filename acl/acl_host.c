/* acl_host.c: parsing a host into its canonical form (acl_host.h). */
#include "acl/acl_host.h"
#include "base/addr.h"

#include <arpa/inet.h>
#include <idn2.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const kind_names[ACL_HOST_KIND_COUNT] = {"name", "ipv4", "ipv6"};

const char *acl_host_kind_str(enum acl_host_kind k)
{
    return (unsigned)k < ACL_HOST_KIND_COUNT ? kind_names[k] : "?";
}

static const uint8_t v4_mapped_prefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

static bool is_digit(unsigned char c)
{
    return c >= '0' && c <= '9';
}

static bool is_hex(unsigned char c)
{
    return is_digit(c) || ((c | 0x20) >= 'a' && (c | 0x20) <= 'f');
}

static void set_ipv4(struct acl_host *out, const uint8_t a[4])
{
    out->kind = ACL_HOST_IPV4;
    memcpy(out->addr, v4_mapped_prefix, 12);
    memcpy(out->addr + 12, a, 4);
    out->len = (uint16_t)addr_ipv4_text(a, out->text);
}

static int refuse(struct acl_host *out, const char **why, const char *reason)
{
    memset(out, 0, sizeof(*out));
    *why = reason;
    return -1;
}

static int parse_v6(const char *in, size_t len, struct acl_host *out, const char **why)
{
    char tmp[INET6_ADDRSTRLEN];
    struct in6_addr a6;

    if (len == 0)
        return refuse(out, why, "empty host");
    if (len >= sizeof(tmp))
        return refuse(out, why, "invalid IPv6 address");
    memcpy(tmp, in, len);
    tmp[len] = '\0';
    if (inet_pton(AF_INET6, tmp, &a6) != 1)
        return refuse(out, why, "invalid IPv6 address");
    if (IN6_IS_ADDR_V4MAPPED(&a6)) {
        set_ipv4(out, a6.s6_addr + 12);
        return 0;
    }
    out->kind = ACL_HOST_IPV6;
    memcpy(out->addr, a6.s6_addr, 16);
    if (!inet_ntop(AF_INET6, &a6, out->text, sizeof(out->text)))
        return refuse(out, why, "invalid IPv6 address");
    out->len = (uint16_t)strlen(out->text);
    return 0;
}

/* A number as the last label of a name makes URL parsers read the whole host as IPv4
 * (WHATWG "ends in a number"): decimal digits, or "0x" and hex digits. */
static bool is_number_label(const char *s, size_t n)
{
    size_t i = 0;
    if (n >= 2 && s[0] == '0' && (s[1] | 0x20) == 'x') {
        for (i = 2; i < n && is_hex((unsigned char)s[i]); i++)
            ;
        return i == n;
    }
    for (; i < n && is_digit((unsigned char)s[i]); i++)
        ;
    return n > 0 && i == n;
}

/* Exactly four decimal parts of 0..255 without leading zeros: the only IPv4 spelling every
 * parser reads the same way. */
static bool parse_dotted_quad(const char *s, size_t n, uint8_t a[4])
{
    size_t i = 0;
    for (int part = 0; part < 4; part++) {
        size_t start = i;
        unsigned v = 0;
        while (i < n && is_digit((unsigned char)s[i]) && i - start < 3)
            v = v * 10 + (unsigned)(s[i++] - '0');
        size_t digits = i - start;
        if (digits == 0 || v > 255 || (digits > 1 && s[start] == '0'))
            return false;
        a[part] = (uint8_t)v;
        if (part < 3) {
            if (i >= n || s[i] != '.')
                return false;
            i++;
        }
    }
    return i == n;
}

static int parse_name(const char *in, size_t len, struct acl_host *out, const char **why)
{
    if (len > 0 && in[len - 1] == '.')
        len--;
    if (len == 0)
        return refuse(out, why, "empty host");
    if (len > ACL_HOST_MAX)
        return refuse(out, why, "host name longer than 253 bytes");
    size_t label = 0, last = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)in[i];
        if (c == '.') {
            if (label == 0)
                return refuse(out, why, "empty label in host name");
            label = 0;
            last = i + 1;
            out->text[i] = '.';
            continue;
        }
        if (c >= 'A' && c <= 'Z')
            c = (unsigned char)(c + 32);
        else if (!((c >= 'a' && c <= 'z') || is_digit(c) || c == '-' || c == '_'))
            return refuse(out, why, "invalid character in host name");
        if (++label > 63)
            return refuse(out, why, "host name label longer than 63 bytes");
        out->text[i] = (char)c;
    }
    if (label == 0)
        return refuse(out, why, "empty label in host name");
    if (is_number_label(out->text + last, len - last)) {
        uint8_t a[4];
        if (!parse_dotted_quad(out->text, len, a))
            return refuse(out, why,
                          "ambiguous IPv4 address (write four decimal parts without leading "
                          "zeros)");
        set_ipv4(out, a);
        return 0;
    }
    out->kind = ACL_HOST_NAME;
    out->text[len] = '\0';
    out->len = (uint16_t)len;
    return 0;
}

/* A name with bytes outside ASCII: UTF-8 U-labels, turned into their A-labels (punycode,
 * "xn--") by libidn2 as browsers do (IDNA2008 with UTS #46 non-transitional mapping: case
 * folded, NFC, "ß" kept), and then read as an ASCII name. */
static int parse_idn(const char *in, size_t len, struct acl_host *out, const char **why)
{
    char u8[4 * ACL_HOST_MAX + 8];
    char *ascii = NULL;

    if (len >= sizeof(u8))
        return refuse(out, why, "host name longer than 253 bytes");
    if (memchr(in, '\0', len))
        return refuse(out, why, "invalid character in host name");
    memcpy(u8, in, len);
    u8[len] = '\0';
    if (idn2_to_ascii_8z(u8, &ascii, IDN2_NFC_INPUT | IDN2_NONTRANSITIONAL) != IDN2_OK)
        return refuse(out, why, "invalid internationalised name (IDNA2008)");
    size_t n = strlen(ascii);
    int rc = -1;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)ascii[i] >= 0x80)
            goto out;
    rc = parse_name(ascii, n, out, why);
out:
    idn2_free(ascii);
    return rc < 0 && !*why ? refuse(out, why, "invalid internationalised name (IDNA2008)") : rc;
}

int acl_host_parse(const char *in, size_t len, struct acl_host *out, const char **why)
{
    /* Whole, so equal hosts are equal bytes (and nothing stale follows the text). */
    memset(out, 0, sizeof(*out));
    *why = NULL;
    if (len >= 1 && in[0] == '[') {
        if (len < 2 || in[len - 1] != ']')
            return refuse(out, why, "invalid IPv6 address");
        return parse_v6(in + 1, len - 2, out, why);
    }
    if (memchr(in, ':', len))
        return parse_v6(in, len, out, why);
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)in[i] >= 0x80)
            return parse_idn(in, len, out, why);
    return parse_name(in, len, out, why);
}

/* ---- Unicode for people, unless it could pass for another name ---- */

/* The scripts that names are written in, by code point block (names are lower case and in
 * NFC, so precomposed letters cover what people write). A code point in no range here is
 * shown as punycode: rare scripts, symbols and lone combining marks are where lookalikes
 * hide. */
enum script {
    SCRIPT_COMMON, /* digits and '-': go with any script */
    SCRIPT_LATIN,
    SCRIPT_GREEK,
    SCRIPT_CYRILLIC,
    SCRIPT_ARMENIAN,
    SCRIPT_HEBREW,
    SCRIPT_ARABIC,
    SCRIPT_DEVANAGARI,
    SCRIPT_BENGALI,
    SCRIPT_THAI,
    SCRIPT_GEORGIAN,
    SCRIPT_HANGUL,
    SCRIPT_HIRAGANA,
    SCRIPT_KATAKANA,
    SCRIPT_BOPOMOFO,
    SCRIPT_HAN,
    SCRIPT_UNKNOWN,
};

#define SCRIPT_BIT(s) (1u << (s))

static const struct {
    uint32_t lo, hi;
    enum script script;
} script_ranges[] = {
    {'-', '-', SCRIPT_COMMON},         {'0', '9', SCRIPT_COMMON},
    {'a', 'z', SCRIPT_LATIN},          {0xDF, 0xF6, SCRIPT_LATIN},
    {0xF8, 0x24F, SCRIPT_LATIN},       {0x1E00, 0x1EFF, SCRIPT_LATIN},
    {0x370, 0x3FF, SCRIPT_GREEK},      {0x1F00, 0x1FFF, SCRIPT_GREEK},
    {0x400, 0x52F, SCRIPT_CYRILLIC},   {0x531, 0x58F, SCRIPT_ARMENIAN},
    {0x591, 0x5FF, SCRIPT_HEBREW},     {0x600, 0x6FF, SCRIPT_ARABIC},
    {0x750, 0x77F, SCRIPT_ARABIC},     {0x900, 0x97F, SCRIPT_DEVANAGARI},
    {0x980, 0x9FF, SCRIPT_BENGALI},    {0xE00, 0xE7F, SCRIPT_THAI},
    {0x10A0, 0x10FF, SCRIPT_GEORGIAN}, {0x1100, 0x11FF, SCRIPT_HANGUL},
    {0x3130, 0x318F, SCRIPT_HANGUL},   {0xAC00, 0xD7AF, SCRIPT_HANGUL},
    {0x3040, 0x309F, SCRIPT_HIRAGANA}, {0x30A0, 0x30FF, SCRIPT_KATAKANA},
    {0x3100, 0x312F, SCRIPT_BOPOMOFO}, {0x3400, 0x4DBF, SCRIPT_HAN},
    {0x4E00, 0x9FFF, SCRIPT_HAN},      {0x20000, 0x2A6DF, SCRIPT_HAN},
};

static enum script script_of(uint32_t cp)
{
    for (size_t i = 0; i < sizeof(script_ranges) / sizeof(script_ranges[0]); i++)
        if (cp >= script_ranges[i].lo && cp <= script_ranges[i].hi)
            return script_ranges[i].script;
    return SCRIPT_UNKNOWN;
}

/* Latin mixed with one of these writes Japanese, Chinese or Korean names; Latin mixed with
 * any other script (a Cyrillic "а" in "аpple") is how lookalikes are made (UTS #39's
 * "highly restrictive" level, as browsers apply it). */
static const unsigned cjk_mixes[] = {
    SCRIPT_BIT(SCRIPT_HAN) | SCRIPT_BIT(SCRIPT_HIRAGANA) | SCRIPT_BIT(SCRIPT_KATAKANA),
    SCRIPT_BIT(SCRIPT_HAN) | SCRIPT_BIT(SCRIPT_BOPOMOFO),
    SCRIPT_BIT(SCRIPT_HAN) | SCRIPT_BIT(SCRIPT_HANGUL),
};

/* Letters of a script that read as Latin ones: a label of these alone ("аррӏе", all
 * Cyrillic) passes for a Latin name under a Latin top-level domain. */
static const struct {
    enum script script;
    const char *letters; /* UTF-8 */
} latin_lookalikes[] = {
    {SCRIPT_CYRILLIC, "аысԁеԍһіюјӏорԛѕԝхуъьҽпгѵѡк"},
    {SCRIPT_GREEK, "αεικνορτυχω"},
};

static bool is_lookalike(enum script script, uint32_t cp)
{
    for (size_t i = 0; i < sizeof(latin_lookalikes) / sizeof(latin_lookalikes[0]); i++) {
        if (latin_lookalikes[i].script != script)
            continue;
        for (const unsigned char *p = (const unsigned char *)latin_lookalikes[i].letters; *p;) {
            /* The letters are two-byte UTF-8 sequences. */
            uint32_t l = ((uint32_t)(p[0] & 0x1F) << 6) | (p[1] & 0x3F);
            if (l == cp)
                return true;
            p += 2;
        }
    }
    return false;
}

/* The scripts of label[0..len), as SCRIPT_BIT()s without SCRIPT_COMMON. */
static unsigned label_scripts(const uint32_t *label, size_t len)
{
    unsigned set = 0;
    for (size_t i = 0; i < len; i++)
        set |= SCRIPT_BIT(script_of(label[i]));
    return set & ~SCRIPT_BIT(SCRIPT_COMMON);
}

static bool label_safe(const uint32_t *label, size_t len, unsigned tld_scripts)
{
    unsigned set = label_scripts(label, len);
    if (set & SCRIPT_BIT(SCRIPT_UNKNOWN))
        return false;
    if (set & (set - 1)) { /* more than one script */
        unsigned other = set & ~SCRIPT_BIT(SCRIPT_LATIN);
        for (size_t i = 0; i < sizeof(cjk_mixes) / sizeof(cjk_mixes[0]); i++)
            if ((other & cjk_mixes[i]) == other)
                return true;
        return false;
    }
    for (size_t i = 0; i < sizeof(latin_lookalikes) / sizeof(latin_lookalikes[0]); i++) {
        enum script script = latin_lookalikes[i].script;
        if (set != SCRIPT_BIT(script) || (tld_scripts & SCRIPT_BIT(script)))
            continue;
        bool all = true;
        for (size_t k = 0; k < len && all; k++)
            all = script_of(label[k]) == SCRIPT_COMMON || is_lookalike(script, label[k]);
        if (all)
            return false;
    }
    return true;
}

/* True when every label of the name (UTF-32, '.' between labels) reads as itself. */
static bool unicode_safe(const uint32_t *name)
{
    size_t n = 0, tld = 0;
    while (name[n]) {
        if (name[n] == '.')
            tld = n + 1;
        n++;
    }
    unsigned tld_scripts = label_scripts(name + tld, n - tld);
    for (size_t start = 0; start <= n;) {
        size_t end = start;
        while (end < n && name[end] != '.')
            end++;
        if (!label_safe(name + start, end - start, tld_scripts))
            return false;
        start = end + 1;
    }
    return true;
}

int acl_host_unicode(const char *host, char *out, size_t outlen)
{
    char *u8 = NULL, *back = NULL;
    uint32_t *u32 = NULL;
    const char *show = host;
    /* Only names with an A-label need libidn2. Decoding does not validate: "xn--" and any
     * Punycode decode to any code points (a right-to-left override that shows the name
     * backwards, controls). So the Unicode is shown only when it is itself a valid name that
     * acl_host_parse turns back into these very A-labels, and no label of it could pass for
     * another name (mixed scripts, a Cyrillic "аррӏе"); anything else stays as it is. */
    if (strstr(host, "xn--") && idn2_to_unicode_8z8z(host, &u8, 0) == IDN2_OK &&
        idn2_to_ascii_8z(u8, &back, IDN2_NFC_INPUT | IDN2_NONTRANSITIONAL) == IDN2_OK &&
        strcmp(back, host) == 0 && idn2_to_unicode_8z4z(host, &u32, 0) == IDN2_OK &&
        unicode_safe(u32))
        show = u8;
    size_t n = strlen(show);
    int rc = n < outlen ? 0 : -1;
    if (rc == 0)
        memcpy(out, show, n + 1);
    idn2_free(u32);
    idn2_free(back);
    idn2_free(u8);
    return rc;
}
