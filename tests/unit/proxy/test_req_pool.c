/* test_req_pool: the per-worker pool of request slots (proxy/req_pool.c). Places are bounded,
 * a held place always yields a slot, no two requests in flight ever share one (a long random
 * run of accepts, requests and closes, each slot stamped with its owner), and places held by
 * idle connections cost no resident memory (mincore on the mapped chunks). */
#include "proxy/req_pool.h"

#include <check.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

/* Resident pages of the first n slots' chunk memory, counted by mincore. */
static size_t resident_pages(const struct req_pool *p)
{
    long page = sysconf(_SC_PAGESIZE);
    size_t bytes = REQ_POOL_CHUNK * sizeof(struct req_slot);
    size_t npages = (bytes + (size_t)page - 1) / (size_t)page, total = 0;
    unsigned char *vec = malloc(npages);
    ck_assert_ptr_nonnull(vec);
    for (size_t i = 0; i < p->nchunks; i++) {
        ck_assert_int_eq(mincore(p->chunks[i], bytes, vec), 0);
        for (size_t j = 0; j < npages; j++)
            total += vec[j] & 1;
    }
    free(vec);
    return total;
}

START_TEST(test_places_are_bounded)
{
    struct req_pool p;
    ck_assert_int_eq(req_pool_init(&p, 2 * REQ_POOL_CHUNK + 2), 0);
    for (int i = 0; i < 3 * REQ_POOL_CHUNK; i++)
        ck_assert_int_eq(req_pool_reserve(&p), 0);
    ck_assert_int_eq(req_pool_reserve(&p), -1); /* three chunks hold max_slots, no more */
    ck_assert_uint_eq(p.nchunks, 3);
    req_pool_unreserve(&p);
    ck_assert_int_eq(req_pool_reserve(&p), 0); /* a place let go is free again */
    req_pool_destroy(&p);
}
END_TEST

START_TEST(test_idle_places_touch_no_memory)
{
    struct req_pool p;
    ck_assert_int_eq(req_pool_init(&p, 100000), 0);
    for (int i = 0; i < 10 * REQ_POOL_CHUNK; i++)
        ck_assert_int_eq(req_pool_reserve(&p), 0);
    ck_assert_uint_eq(p.nchunks, 10);
    ck_assert_uint_eq(resident_pages(&p), 0);
    /* Requests come and go one at a time: the same slot serves them all. */
    struct req_slot *first = req_pool_take(&p);
    memset(first, 0x5a, sizeof(*first));
    req_pool_give(&p, first);
    for (int i = 0; i < 1000; i++) {
        struct req_slot *s = req_pool_take(&p);
        ck_assert_ptr_eq(s, first);
        req_pool_give(&p, s);
    }
    size_t pages = (sizeof(struct req_slot) + 4095) / 4096 + 1;
    ck_assert_uint_le(resident_pages(&p), pages);
    req_pool_destroy(&p);
}
END_TEST

enum { NCONN = 700 };

START_TEST(test_random_run_never_shares_a_slot)
{
    struct req_pool p;
    ck_assert_int_eq(req_pool_init(&p, NCONN), 0);
    struct {
        bool open;
        struct req_slot *slot;
    } conn[NCONN] = {{0}};
    size_t held = 0, in_flight = 0, most_in_flight = 0;
    srand(15);
    for (int step = 0; step < 200000; step++) {
        int i = rand() % NCONN;
        switch (rand() % 4) {
        case 0: /* accept */
            if (!conn[i].open) {
                ck_assert_int_eq(req_pool_reserve(&p), 0);
                conn[i].open = true;
                held++;
            }
            break;
        case 1: /* a request starts */
            if (conn[i].open && !conn[i].slot) {
                conn[i].slot = req_pool_take(&p);
                memset(&conn[i].slot->rec, 0, sizeof(conn[i].slot->rec));
                snprintf(conn[i].slot->rec.client, sizeof(conn[i].slot->rec.client), "c%d", i);
                conn[i].slot->addrs.naddrs = (size_t)i;
                if (++in_flight > most_in_flight)
                    most_in_flight = in_flight;
            }
            break;
        case 2: /* its record is handed on */
            if (conn[i].slot) {
                char want[16];
                snprintf(want, sizeof(want), "c%d", i);
                ck_assert_str_eq(conn[i].slot->rec.client, want);
                ck_assert_uint_eq(conn[i].slot->addrs.naddrs, (size_t)i);
                req_pool_give(&p, conn[i].slot);
                conn[i].slot = NULL;
                in_flight--;
            }
            break;
        default: /* close: an unfinished request's record goes first */
            if (conn[i].open) {
                if (conn[i].slot) {
                    req_pool_give(&p, conn[i].slot);
                    conn[i].slot = NULL;
                    in_flight--;
                }
                req_pool_unreserve(&p);
                conn[i].open = false;
                held--;
            }
            break;
        }
        ck_assert_uint_eq(p.reserved, held);
        ck_assert_uint_le(p.fresh, p.nchunks * REQ_POOL_CHUNK);
    }
    /* Slots ever touched: never more than were in flight at once. */
    ck_assert_uint_eq(p.fresh, most_in_flight);
    req_pool_destroy(&p);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("req_pool");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_places_are_bounded);
    tcase_add_test(tc, test_idle_places_touch_no_memory);
    tcase_add_test(tc, test_random_run_never_shares_a_slot);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
