/* test_log: the rate limiter of proxy/log.c, on a clock given by the test. */
#include "proxy/log.h"

#include <check.h>

static const struct {
    int64_t now_ms;
    bool pass;
    uint64_t suppressed; /* reported with a line that passes */
} steps[] = {
    {1000, true, 0},  {1001, true, 0}, /* a burst of 2 */
    {1002, false, 0}, {1500, false, 0}, {1999, false, 0},
    {2000, true, 3}, /* a new window: the three dropped lines are reported */
    {2001, true, 0},  {2002, false, 0}, {9000, true, 1}, /* long after: one dropped line */
    {9001, true, 0},  {9002, false, 0}, {9003, false, 0},
};

START_TEST(test_burst_per_interval_and_dropped_lines_reported)
{
    static struct log_ratelimit rl = LOG_RATELIMIT_INIT(1000, 2);
    for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
        uint64_t suppressed = 99;
        bool pass = log_ratelimit_pass(&rl, steps[i].now_ms, &suppressed);
        ck_assert_msg(pass == steps[i].pass, "step %zu", i);
        if (pass)
            ck_assert_msg(suppressed == steps[i].suppressed, "step %zu: %llu suppressed", i,
                          (unsigned long long)suppressed);
    }
}
END_TEST

int main(void)
{
    Suite *s = suite_create("log");
    TCase *tc = tcase_create("ratelimit");
    tcase_add_test(tc, test_burst_per_interval_and_dropped_lines_reported);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
