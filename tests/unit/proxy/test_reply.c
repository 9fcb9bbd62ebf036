/* test_reply: our own answers as a client receives them (proxy/reply.c's reply_format), with
 * no connection: the status line, Content-Length against the page actually sent, the
 * Connection header following keep-alive, the 407 challenge, HEAD, and attacker text from
 * the request's address escaped in the page. */
#include "proxy/reply.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define OUT_CAP (32 * 1024)

static char out[OUT_CAP], scratch[OUT_CAP];

/* The answer split at its blank line. */
struct answer {
    long len;
    size_t head_len; /* through the blank line */
    long content_length;
    const char *body;
    size_t body_len;
};

static struct answer format(const struct reply_page *pg)
{
    struct answer a = {0};
    memset(out, 0, sizeof(out));
    a.len = reply_format(pg, out, sizeof(out) - 1, scratch, sizeof(scratch));
    ck_assert_int_gt(a.len, 0);
    const char *end = strstr(out, "\r\n\r\n");
    ck_assert_ptr_nonnull(end);
    a.head_len = (size_t)(end + 4 - out);
    const char *cl = strstr(out, "\r\nContent-Length: ");
    ck_assert_ptr_nonnull(cl);
    ck_assert(cl < end);
    a.content_length = strtol(cl + 18, NULL, 10);
    a.body = out + a.head_len;
    a.body_len = (size_t)a.len - a.head_len;
    return a;
}

/* Whether the head (not the page) holds line, a whole header line with its CRLF. */
static bool head_has(const struct answer *a, const char *line)
{
    const char *p = strstr(out, line);
    return p && (size_t)(p - out) < a->head_len;
}

static const struct page_case {
    int status;
    const char *reason_phrase;
    bool keep_alive;
    bool head_only;
} page_cases[] = {
    {400, "Bad Request", false, false},
    {403, "Forbidden", true, false},
    {403, "Forbidden", false, false},
    {403, "Forbidden", true, true},
    {407, "Proxy Authentication Required", true, false},
    {408, "Request Timeout", false, false},
    {414, "URI Too Long", false, false},
    {431, "Request Header Fields Too Large", false, false},
    {501, "Not Implemented", false, false},
    {502, "Bad Gateway", true, false},
    {502, "Bad Gateway", false, true},
    {503, "Service Unavailable", false, false},
    {504, "Gateway Timeout", false, false},
    {599, "Error", false, false},
};

START_TEST(test_page_head_and_length_follow_the_case)
{
    for (size_t i = 0; i < sizeof(page_cases) / sizeof(page_cases[0]); i++) {
        const struct page_case *t = &page_cases[i];
        struct reply_page pg = {
            .status = t->status,
            .detail = "Something happened.",
            .url = "http://example.com:80/",
            .contact = "",
            .when = 0,
            .keep_alive = t->keep_alive,
            .head_only = t->head_only,
        };
        struct answer a = format(&pg);
        char line[128];
        snprintf(line, sizeof(line), "HTTP/1.1 %d %s\r\n", t->status, t->reason_phrase);
        ck_assert_msg(!strncmp(out, line, strlen(line)), "case %zu: %.40s", i, out);
        ck_assert_msg(head_has(&a, "\r\nConnection: close\r\n") == !t->keep_alive, "case %zu", i);
        ck_assert_msg(head_has(&a, "\r\nProxy-Authenticate: Basic realm=\"proxyd\"\r\n") ==
                          (t->status == 407),
                      "case %zu", i);
        ck_assert_msg(head_has(&a, "\r\nCache-Control: no-store\r\n"), "case %zu", i);
        if (t->head_only) {
            /* HEAD: no page, but the length of the page a GET would get. */
            ck_assert_uint_eq(a.body_len, 0);
            pg.head_only = false;
            long full = reply_format(&pg, out, sizeof(out) - 1, scratch, sizeof(scratch));
            ck_assert_int_eq(a.content_length, full - (long)a.head_len);
        } else {
            ck_assert_msg(a.content_length == (long)a.body_len, "case %zu: %ld != %zu", i,
                          a.content_length, a.body_len);
            snprintf(line, sizeof(line), "<h1>%d %s</h1>", t->status, t->reason_phrase);
            ck_assert_msg(strstr(a.body, line), "case %zu", i);
        }
    }
}
END_TEST

static const struct escape_case {
    const char *url;
    const char *detail;
    const char *must_not;  /* anywhere in the answer */
    const char *must_have; /* in the page */
} escape_cases[] = {
    {"http://x.test:80/<script>alert(1)</script>", "d", "<script>", "&lt;script&gt;alert(1)"},
    {"http://x.test:80/\"onmouseover='x'", "d", "\"onmouseover", "&quot;onmouseover=&#39;x&#39;"},
    {"http://x.test:80/a&b", "d", "a&b", "a&amp;b"},
    {"http://x.test:80/\r\nSet-Cookie: a=b", "d", "\r\nSet-Cookie", "/??Set-Cookie: a=b"},
    {"http://x.test:80/\x7f\x01", "d", "\x7f", "/?\?</code>"},
    {"http://x.test:80/", "blocked (rule 1: deny url-regex <img src=x>)", "<img",
     "&lt;img src=x&gt;"},
};

START_TEST(test_attacker_text_is_escaped)
{
    for (size_t i = 0; i < sizeof(escape_cases) / sizeof(escape_cases[0]); i++) {
        const struct escape_case *t = &escape_cases[i];
        struct reply_page pg = {
            .status = 403,
            .detail = t->detail,
            .url = t->url,
            .contact = "<b>admin</b>",
            .keep_alive = true,
        };
        struct answer a = format(&pg);
        ck_assert_msg(!strstr(out, t->must_not), "case %zu: %s", i, t->must_not);
        ck_assert_msg(strstr(a.body, t->must_have), "case %zu: no %s in %s", i, t->must_have,
                      a.body);
        ck_assert_msg(strstr(a.body, "Contact: &lt;b&gt;admin&lt;/b&gt;"), "case %zu", i);
        ck_assert_int_eq(a.content_length, (long)a.body_len);
    }
}
END_TEST

START_TEST(test_no_contact_line_without_a_contact)
{
    struct reply_page pg = {.status = 502, .detail = "d", .url = "u", .contact = ""};
    struct answer a = format(&pg);
    ck_assert_ptr_null(strstr(a.body, "Contact:"));
}
END_TEST

START_TEST(test_answer_too_large_for_out_is_refused)
{
    struct reply_page pg = {.status = 403, .detail = "d", .url = "u", .contact = ""};
    ck_assert_int_eq(reply_format(&pg, out, 200, scratch, sizeof(scratch)), -1);
    ck_assert_int_eq(reply_format(&pg, out, 20, scratch, sizeof(scratch)), -1);
}
END_TEST

START_TEST(test_page_too_large_for_scratch_is_sent_empty)
{
    struct reply_page pg = {.status = 403, .detail = "d", .url = "u", .contact = ""};
    struct answer a;
    memset(out, 0, sizeof(out));
    a.len = reply_format(&pg, out, sizeof(out) - 1, scratch, 100);
    ck_assert_int_gt(a.len, 0);
    ck_assert_ptr_nonnull(strstr(out, "\r\nContent-Length: 0\r\n"));
    ck_assert_str_eq(out + a.len - 4, "\r\n\r\n");
}
END_TEST

/* The largest logo with the longest contact line and address, all of quotes (escaped six
 * times over), and the form still fit the buffer a page is built in. */
START_TEST(test_largest_logo_fits_with_everything_else)
{
    static char logo[REPLY_LOGO_URI_MAX], url[1100], contact[256], token[200];
    size_t n = (size_t)snprintf(logo, sizeof(logo), "data:image/svg+xml;base64,");
    memset(logo + n, 'A', sizeof(logo) - 1 - n);
    ck_assert(reply_logo_ok(logo));
    memset(url, '"', sizeof(url) - 1);
    memset(contact, '"', sizeof(contact) - 1);
    memset(token, 'x', sizeof(token) - 1);
    struct reply_page pg = {.status = 403,
                            .detail = "d",
                            .url = url,
                            .contact = contact,
                            .logo = logo,
                            .form_token = token};
    struct answer a = format(&pg);
    ck_assert_int_eq(a.content_length, (long)a.body_len);
    ck_assert_ptr_nonnull(strstr(a.body, logo));
    ck_assert_ptr_nonnull(strstr(a.body, "Contact: &quot;"));
    ck_assert(head_has(&a, "Content-Security-Policy: default-src 'none'; img-src data:;"));
}
END_TEST

/* Only a data: URI of a PNG, JPEG or SVG in base64 is put in the page: nothing that could
 * leave the attribute or load from elsewhere. */
START_TEST(test_a_logo_that_is_not_a_data_uri_is_left_out)
{
    static const char *const bad[] = {
        "",
        "https://example.com/logo.png",
        "data:image/png;base64,",
        "data:image/png;base64,AAAA\"><script>alert(1)</script>",
        "data:text/html;base64,PGI+",
        "data:image/gif;base64,R0lGODlh",
        "javascript:alert(1)",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct reply_page pg = {
            .status = 403, .detail = "d", .url = "u", .contact = "", .logo = bad[i]};
        ck_assert_msg(!reply_logo_ok(bad[i]), "case %zu", i);
        struct answer a = format(&pg);
        ck_assert_msg(!strstr(a.body, "<img"), "case %zu", i);
    }
    static char big[REPLY_LOGO_URI_MAX + 1];
    size_t n = (size_t)snprintf(big, sizeof(big), "data:image/png;base64,");
    memset(big + n, 'A', sizeof(big) - 1 - n);
    ck_assert(!reply_logo_ok(big)); /* one byte too long */
    ck_assert(reply_logo_ok("data:image/jpeg;base64,/9j/4AAQ"));
}
END_TEST

int main(void)
{
    Suite *s = suite_create("reply");
    TCase *tc = tcase_create("reply");
    tcase_add_test(tc, test_page_head_and_length_follow_the_case);
    tcase_add_test(tc, test_attacker_text_is_escaped);
    tcase_add_test(tc, test_no_contact_line_without_a_contact);
    tcase_add_test(tc, test_answer_too_large_for_out_is_refused);
    tcase_add_test(tc, test_page_too_large_for_scratch_is_sent_empty);
    tcase_add_test(tc, test_largest_logo_fits_with_everything_else);
    tcase_add_test(tc, test_a_logo_that_is_not_a_data_uri_is_left_out);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
