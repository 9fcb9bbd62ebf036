/* test_access_req: block-page access requests (proxy/access_req.c): the token binds client,
 * host, port and expiry; the form's parser; the per-client rate limit; the queue. */
#include <check.h>
#include <stdio.h>
#include <string.h>

#include "proxy/access_req.h"

static struct access_req_box box;

static void setup(void)
{
    ck_assert_int_eq(access_req_init(&box), 0);
}

static void teardown(void)
{
    access_req_destroy(&box);
}

START_TEST(test_token_binds_client_host_port_and_time)
{
    char t[ACCESS_REQ_TOKEN_LEN], other[ACCESS_REQ_TOKEN_LEN];
    struct access_req_box second;
    int64_t now = 1800000000;

    access_req_token(&box, "10.0.0.5", "a.test", 80, now, t);
    ck_assert(access_req_token_ok(&box, t, "10.0.0.5", "a.test", 80, now));
    ck_assert(access_req_token_ok(&box, t, "10.0.0.5", "a.test", 80, now + ACCESS_REQ_TOKEN_TTL_S));
    ck_assert(
        !access_req_token_ok(&box, t, "10.0.0.5", "a.test", 80, now + ACCESS_REQ_TOKEN_TTL_S + 1));
    ck_assert(!access_req_token_ok(&box, t, "10.0.0.6", "a.test", 80, now));
    ck_assert(!access_req_token_ok(&box, t, "10.0.0.5", "b.test", 80, now));
    ck_assert(!access_req_token_ok(&box, t, "10.0.0.5", "a.test", 8080, now));
    /* Client and host are told apart even when their bytes would run together. */
    access_req_token(&box, "10.0.0.5a", ".test", 80, now, other);
    ck_assert(!access_req_token_ok(&box, other, "10.0.0.5", "a.test", 80, now));
    /* A later expiry or another process's key does not pass. */
    snprintf(other, sizeof(other), "%lld%s", (long long)now + 7200, strchr(t, '.'));
    ck_assert(!access_req_token_ok(&box, other, "10.0.0.5", "a.test", 80, now));
    ck_assert_int_eq(access_req_init(&second), 0);
    ck_assert(!access_req_token_ok(&second, t, "10.0.0.5", "a.test", 80, now));
    access_req_destroy(&second);
    ck_assert(!access_req_token_ok(&box, "", "10.0.0.5", "a.test", 80, now));
    ck_assert(!access_req_token_ok(&box, "99999999999999999999.00", "10.0.0.5", "a.test", 80, now));
}
END_TEST

START_TEST(test_form_parse)
{
    struct access_req_form f;
    const char *why = NULL;
    static const char ok[] = "t=1.ab&reason=need+it%21%0Afor+work&name=Zo%C3%A9&x=y";

    ck_assert_int_eq(access_req_parse(ok, strlen(ok), &f, &why), 0);
    ck_assert_str_eq(f.token, "1.ab");
    ck_assert_str_eq(f.reason, "need it!\nfor work");
    ck_assert_str_eq(f.name, "Zo\xc3\xa9");
    ck_assert_int_eq(access_req_parse("t=1", 3, &f, &why), -1);
    ck_assert_str_eq(why, "please say why you need this address");
    ck_assert_int_eq(access_req_parse("t=1&reason=+%20", 15, &f, &why), -1);
    ck_assert_int_eq(access_req_parse("reason=x", 8, &f, &why), -1);
    ck_assert_str_eq(why, "the form's token is missing");
    ck_assert_int_eq(access_req_parse("t=1&reason=%4", 13, &f, &why), -1);
    ck_assert_int_eq(access_req_parse("t=1&reason=a%00b", 16, &f, &why), -1);
    ck_assert_str_eq(why, "the reason is not text");
    ck_assert_int_eq(access_req_parse("t=1&reason=a&name=a%0Ab", 23, &f, &why), -1);
    ck_assert_str_eq(why, "the name is not text");
    ck_assert_int_eq(access_req_parse("t=1&reason=%FF", 14, &f, &why), -1);
}
END_TEST

START_TEST(test_form_limits)
{
    struct access_req_form f;
    const char *why;
    char q[700];

    snprintf(q, sizeof(q), "t=1&reason=%0*d", ACCESS_REQ_REASON_MAX, 0);
    ck_assert_int_eq(access_req_parse(q, strlen(q), &f, &why), 0);
    ck_assert_uint_eq(strlen(f.reason), ACCESS_REQ_REASON_MAX);
    snprintf(q, sizeof(q), "t=1&reason=%0*d", ACCESS_REQ_REASON_MAX + 1, 0);
    ck_assert_int_eq(access_req_parse(q, strlen(q), &f, &why), -1);
    ck_assert_str_eq(why, "the reason is too long (at most 500 bytes)");
    snprintf(q, sizeof(q), "t=1&reason=x&name=%0*d", ACCESS_REQ_NAME_MAX, 0);
    ck_assert_int_eq(access_req_parse(q, strlen(q), &f, &why), 0);
    snprintf(q, sizeof(q), "t=1&reason=x&name=%0*d", ACCESS_REQ_NAME_MAX + 1, 0);
    ck_assert_int_eq(access_req_parse(q, strlen(q), &f, &why), -1);
}
END_TEST

static struct store_request request(const char *client, const char *host)
{
    struct store_request rq = {.port = 80, .rule_id = 3};
    snprintf(rq.client, sizeof(rq.client), "%s", client);
    snprintf(rq.host, sizeof(rq.host), "%s", host);
    return rq;
}

START_TEST(test_rate_limit_and_queue)
{
    struct access_req_form f = {.reason = "why"};
    struct store_request rq, out[ACCESS_REQ_QUEUE];
    int64_t now_ms = 1800000000000LL;

    /* Five an hour per client; a bad token counts for nothing. */
    rq = request("10.0.0.5", "a.test");
    snprintf(f.token, sizeof(f.token), "1.x");
    ck_assert_int_eq(access_req_submit(&box, &f, &rq, now_ms), ACCESS_REQ_BAD_TOKEN);
    access_req_token(&box, "10.0.0.5", "a.test", 80, now_ms / 1000, f.token);
    for (int i = 0; i < ACCESS_REQ_PER_CLIENT; i++)
        ck_assert_int_eq(access_req_submit(&box, &f, &rq, now_ms), ACCESS_REQ_QUEUED);
    ck_assert_int_eq(access_req_submit(&box, &f, &rq, now_ms), ACCESS_REQ_RATE_LIMITED);
    ck_assert_int_eq(access_req_submit(&box, &f, &rq, now_ms + ACCESS_REQ_WINDOW_MS),
                     ACCESS_REQ_QUEUED);
    ck_assert_uint_eq(access_req_take(&box, out, 2), 2);
    ck_assert_str_eq(out[0].reason, "why");
    ck_assert_str_eq(out[0].host, "a.test");
    ck_assert_uint_eq(access_req_take(&box, out, ACCESS_REQ_QUEUE), ACCESS_REQ_PER_CLIENT - 1);
    ck_assert_uint_eq(access_req_take(&box, out, ACCESS_REQ_QUEUE), 0);

    /* A full queue refuses without counting against the client. */
    for (int i = 0; i < ACCESS_REQ_QUEUE; i++) {
        char client[32];
        snprintf(client, sizeof(client), "10.1.0.%d", i);
        rq = request(client, "a.test");
        access_req_token(&box, client, "a.test", 80, now_ms / 1000, f.token);
        ck_assert_int_eq(access_req_submit(&box, &f, &rq, now_ms), ACCESS_REQ_QUEUED);
    }
    rq = request("10.2.0.1", "a.test");
    access_req_token(&box, "10.2.0.1", "a.test", 80, now_ms / 1000, f.token);
    ck_assert_int_eq(access_req_submit(&box, &f, &rq, now_ms), ACCESS_REQ_BUSY);
    ck_assert_uint_eq(access_req_take(&box, out, ACCESS_REQ_QUEUE), ACCESS_REQ_QUEUE);
    ck_assert_int_eq(access_req_submit(&box, &f, &rq, now_ms), ACCESS_REQ_QUEUED);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("access_req");
    TCase *tc = tcase_create("access_req");
    SRunner *sr;
    int failed;

    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_token_binds_client_host_port_and_time);
    tcase_add_test(tc, test_form_parse);
    tcase_add_test(tc, test_form_limits);
    tcase_add_test(tc, test_rate_limit_and_queue);
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
