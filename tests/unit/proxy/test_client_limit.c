/* test_client_limit: per-address connection counts (proxy/client_limit.c). A table of steps
 * for the limit itself, then a long random run checked against a plain array, which is what
 * proves deletion (backward shift) never loses an entry. */
#include "proxy/client_limit.h"

#include <arpa/inet.h>
#include <check.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static struct sockaddr_storage addr_of(const char *text)
{
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof(ss));
    if (strchr(text, ':')) {
        struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
        s6->sin6_family = AF_INET6;
        ck_assert_int_eq(inet_pton(AF_INET6, text, &s6->sin6_addr), 1);
    } else {
        struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
        s4->sin_family = AF_INET;
        ck_assert_int_eq(inet_pton(AF_INET, text, &s4->sin_addr), 1);
    }
    return ss;
}

enum op { TAKE, RELEASE };

static const struct step {
    enum op op;
    const char *addr;
    unsigned max;
    enum client_take want; /* TAKE only */
    unsigned count_after;
} steps[] = {
    {TAKE, "10.0.0.1", 2, CLIENT_TAKEN, 1},
    {TAKE, "10.0.0.1", 2, CLIENT_TAKEN, 2},
    {TAKE, "10.0.0.1", 2, CLIENT_OVER_LIMIT, 2},        /* the third is refused */
    {TAKE, "::ffff:10.0.0.1", 2, CLIENT_OVER_LIMIT, 2}, /* IPv4-mapped is the same client */
    {TAKE, "10.0.0.2", 2, CLIENT_TAKEN, 1},             /* another client is not affected */
    {RELEASE, "10.0.0.1", 0, 0, 1},
    {TAKE, "10.0.0.1", 2, CLIENT_TAKEN, 2}, /* a freed place is free again */
    {TAKE, "10.0.0.1", 0, CLIENT_TAKEN, 3}, /* max 0: counted, never refused */
    {TAKE, "2001:db8::1", 1, CLIENT_TAKEN, 1},
    {TAKE, "2001:db8::2", 1, CLIENT_TAKEN, 1},
    {TAKE, "2001:db8::3", 1, CLIENT_UNTRACKED, 0}, /* the table holds 4 clients */
    {RELEASE, "2001:db8::1", 0, 0, 0},
    {RELEASE, "2001:db8::1", 0, 0, 0}, /* releasing what is not there: no-op */
    {TAKE, "2001:db8::3", 1, CLIENT_TAKEN, 1},
};

START_TEST(test_steps)
{
    struct client_limit *t = client_limit_new(4);
    ck_assert_ptr_nonnull(t);
    for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
        struct sockaddr_storage ss = addr_of(steps[i].addr);
        const struct sockaddr *sa = (const struct sockaddr *)&ss;
        if (steps[i].op == TAKE)
            ck_assert_msg(client_limit_take(t, sa, steps[i].max) == steps[i].want, "step %zu", i);
        else
            client_limit_release(t, sa);
        ck_assert_msg(client_limit_count(t, sa) == steps[i].count_after, "step %zu: count %u", i,
                      client_limit_count(t, sa));
    }
    client_limit_free(t);
}
END_TEST

START_TEST(test_random_run_agrees_with_an_array)
{
    enum { ADDRS = 300, MAX_CLIENTS = 200, LIMIT = 5, OPS = 200000 };
    static unsigned model[ADDRS];
    memset(model, 0, sizeof(model));
    size_t distinct = 0;
    struct client_limit *t = client_limit_new(MAX_CLIENTS);
    ck_assert_ptr_nonnull(t);
    srand(12345);
    for (int op = 0; op < OPS; op++) {
        int a = rand() % ADDRS;
        char text[64];
        snprintf(text, sizeof(text), a % 2 ? "10.%d.%d.1" : "fd00::%d:%d", a / 256, a % 256);
        struct sockaddr_storage ss = addr_of(text);
        const struct sockaddr *sa = (const struct sockaddr *)&ss;
        if (rand() % 2) {
            enum client_take want = model[a] >= LIMIT                          ? CLIENT_OVER_LIMIT
                                    : model[a] == 0 && distinct >= MAX_CLIENTS ? CLIENT_UNTRACKED
                                                                               : CLIENT_TAKEN;
            ck_assert_int_eq(client_limit_take(t, sa, LIMIT), want);
            if (want == CLIENT_TAKEN && model[a]++ == 0)
                distinct++;
        } else if (model[a] > 0) {
            client_limit_release(t, sa);
            if (--model[a] == 0)
                distinct--;
        }
        if (op % 1000 == 0)
            for (int k = 0; k < ADDRS; k++) {
                snprintf(text, sizeof(text), k % 2 ? "10.%d.%d.1" : "fd00::%d:%d", k / 256,
                         k % 256);
                struct sockaddr_storage s2 = addr_of(text);
                ck_assert_uint_eq(client_limit_count(t, (const struct sockaddr *)&s2), model[k]);
            }
    }
    client_limit_free(t);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("client_limit");
    TCase *tc = tcase_create("client_limit");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_steps);
    tcase_add_test(tc, test_random_run_agrees_with_an_array);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
