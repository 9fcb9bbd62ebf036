/* test_store_queue: the per-producer record queues alone, without a writer or a database:
 * order, runs of adjacent records, full rings (of slots or of bytes) and their drop count,
 * capacity rounding, wrap-around, every member through the packing,
 * wake-ups, and one producer thread racing the consumer. */
#include <check.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "storage/store_queue.h"

/* A record that says who pushed it and in which order: producer in rule_id, sequence in
 * time_ms, both also in host so a torn copy shows. */
static struct store_access record(int producer, int64_t seq)
{
    struct store_access a;

    memset(&a, 0, sizeof(a));
    a.rule_id = producer;
    a.time_ms = seq;
    snprintf(a.host, sizeof(a.host), "p%d-%lld.test", producer, (long long)seq);
    return a;
}

static bool is_record(const struct store_access *a, int producer, int64_t seq)
{
    struct store_access want = record(producer, seq);

    return a->rule_id == want.rule_id && a->time_ms == want.time_ms &&
           strcmp(a->host, want.host) == 0;
}

static struct store_queue *queue(size_t producers, size_t capacity)
{
    char err[256] = "";
    struct store_queue *q = store_queue_new(producers, capacity, err, sizeof(err));

    ck_assert_msg(q != NULL, "%s", err);
    return q;
}

/* What a drain saw, in order. */
#define SEEN_MAX 4096
struct seen {
    size_t n;
    int producer[SEEN_MAX];
    int64_t seq[SEEN_MAX];
};

static void collect(void *arg, const struct store_access *rec)
{
    struct seen *s = arg;

    ck_assert_int_lt(s->n, SEEN_MAX);
    ck_assert_msg(is_record(rec, rec->rule_id, rec->time_ms), "record %zu torn", s->n);
    s->producer[s->n] = rec->rule_id;
    s->seq[s->n] = rec->time_ms;
    s->n++;
}

static void collect_any(void *arg, const struct store_access *rec)
{
    struct seen *s = arg;

    (void)rec;
    s->n++;
}

START_TEST(test_drain_gives_each_ring_oldest_first)
{
    struct store_queue *q = queue(2, 16);
    struct seen s = {0};
    struct store_access a;

    /* Interleaved pushes; the drain reads ring 0 whole, then ring 1. */
    for (int64_t i = 0; i < 5; i++) {
        a = record(0, i);
        ck_assert(store_queue_push(q, 0, &a));
        a = record(1, 100 + i);
        ck_assert(store_queue_push(q, 1, &a));
    }
    ck_assert_uint_eq(store_queue_len(q), 10);
    ck_assert_uint_eq(store_queue_drain(q, 100, collect, &s), 10);
    ck_assert_uint_eq(s.n, 10);
    for (size_t i = 0; i < 10; i++) {
        ck_assert_int_eq(s.producer[i], i < 5 ? 0 : 1);
        ck_assert_int_eq(s.seq[i], i < 5 ? (int64_t)i : 100 + (int64_t)i - 5);
    }
    ck_assert_uint_eq(store_queue_len(q), 0);
    ck_assert_uint_eq(store_queue_drain(q, 100, collect, &s), 0);
    store_queue_free(q);
}
END_TEST

/* What a run drain saw: each record as collect does, and each run's length. */
struct runs {
    struct seen s;
    size_t n;
    size_t len[SEEN_MAX];
};

static void collect_run(void *arg, const struct store_access *recs, size_t n)
{
    struct runs *r = arg;

    ck_assert_uint_gt(n, 0);
    ck_assert_uint_le(n, STORE_QUEUE_RUN_MAX);
    r->len[r->n++] = n;
    for (size_t i = 0; i < n; i++)
        collect(&r->s, &recs[i]);
}

START_TEST(test_runs_are_contiguous_capped_and_split_at_the_wrap)
{
    static const size_t want[] = {28, 2, 64, 6, 64, 6};
    struct store_queue *q = queue(2, 128);
    struct store_access a;
    struct runs *r = calloc(1, sizeof(*r));

    /* Ring 0 holds 100 records from 28 slots before its end: a run to the wrap (28), then
     * runs of at most the cap (64) after it; ring 1 holds 70: the cap, then the rest. The
     * first drain stops at max, inside the second run. */
    for (int64_t i = 0; i < 100; i++) {
        a = record(0, i);
        ck_assert(store_queue_push(q, 0, &a));
    }
    ck_assert_uint_eq(store_queue_drain(q, 100, collect, &r->s), 100);
    r->s.n = 0;
    for (int64_t i = 0; i < 100; i++) {
        a = record(0, 100 + i);
        ck_assert(store_queue_push(q, 0, &a));
    }
    for (int64_t i = 0; i < 70; i++) {
        a = record(1, 1000 + i);
        ck_assert(store_queue_push(q, 1, &a));
    }
    ck_assert_uint_eq(store_queue_drain_runs(q, 30, collect_run, r), 30);
    ck_assert_uint_eq(store_queue_len(q), 140);
    ck_assert_uint_eq(store_queue_drain_runs(q, 1000, collect_run, r), 140);
    ck_assert_uint_eq(store_queue_len(q), 0);
    ck_assert_uint_eq(r->n, sizeof(want) / sizeof(want[0]));
    for (size_t i = 0; i < r->n; i++)
        ck_assert_uint_eq(r->len[i], want[i]);
    ck_assert_uint_eq(r->s.n, 170);
    for (size_t i = 0; i < 170; i++) {
        ck_assert_int_eq(r->s.producer[i], i < 100 ? 0 : 1);
        ck_assert_int_eq(r->s.seq[i], i < 100 ? 100 + (int64_t)i : 1000 + (int64_t)i - 100);
    }
    store_queue_free(q);
    free(r);
}
END_TEST

START_TEST(test_push_copies_the_record)
{
    struct store_queue *q = queue(1, 4);
    struct store_access a = record(0, 7);
    struct seen s = {0};

    ck_assert(store_queue_push(q, 0, &a));
    memset(&a, 0xff, sizeof(a)); /* the caller reuses its record at once */
    ck_assert_uint_eq(store_queue_drain(q, 1, collect, &s), 1);
    ck_assert_int_eq(s.seq[0], 7);
    store_queue_free(q);
}
END_TEST

START_TEST(test_drain_stops_at_max_and_keeps_the_rest)
{
    struct store_queue *q = queue(2, 8);
    struct store_access a;
    struct seen s = {0};

    for (int64_t i = 0; i < 6; i++) {
        a = record(0, i);
        ck_assert(store_queue_push(q, 0, &a));
        a = record(1, 10 + i);
        ck_assert(store_queue_push(q, 1, &a));
    }
    ck_assert_uint_eq(store_queue_drain(q, 4, collect, &s), 4);
    ck_assert_uint_eq(store_queue_len(q), 8);
    /* Ring 0's last two, then ring 1's first two. */
    ck_assert_uint_eq(store_queue_drain(q, 4, collect, &s), 4);
    ck_assert_uint_eq(store_queue_drain(q, 100, collect, &s), 4);
    for (size_t i = 0; i < 12; i++)
        ck_assert_int_eq(s.seq[i], i < 6 ? (int64_t)i : 10 + (int64_t)i - 6);
    store_queue_free(q);
}
END_TEST

START_TEST(test_full_ring_refuses_and_counts_drops)
{
    struct store_queue *q = queue(2, 8);
    struct store_access a = record(0, 0);
    uint64_t pushed, dropped;
    struct seen s = {0};

    for (int i = 0; i < 8; i++)
        ck_assert(store_queue_push(q, 0, &a));
    for (int i = 0; i < 3; i++)
        ck_assert(!store_queue_push(q, 0, &a));
    /* A full ring holds up only its own producer. */
    a = record(1, 0);
    ck_assert(store_queue_push(q, 1, &a));
    /* Out of range is refused but is no drop: there is no ring to count it on. */
    ck_assert(!store_queue_push(q, 2, &a));
    store_queue_counts(q, &pushed, &dropped);
    ck_assert_uint_eq(pushed, 9);
    ck_assert_uint_eq(dropped, 3);
    /* Room again once drained; the counts only grow. */
    ck_assert_uint_eq(store_queue_drain(q, 100, collect, &s), 9);
    a = record(0, 1);
    ck_assert(store_queue_push(q, 0, &a));
    store_queue_counts(q, &pushed, &dropped);
    ck_assert_uint_eq(pushed, 10);
    ck_assert_uint_eq(dropped, 3);
    store_queue_free(q);
}
END_TEST

static const struct {
    size_t capacity; /* asked for */
    size_t holds;    /* records a ring takes before refusing; 0 = refused at creation */
} capacity_cases[] = {
    {0, STORE_QUEUE_DEFAULT_CAPACITY}, {1, 2}, {2, 2}, {3, 4}, {8, 8}, {9, 16}, {1000, 1024},
    {STORE_QUEUE_MAX_CAPACITY + 1, 0},
};

START_TEST(test_capacity_rounds_up_to_a_power_of_two)
{
    size_t cap = capacity_cases[_i].capacity, holds = capacity_cases[_i].holds;
    char err[256] = "";
    struct store_queue *q = store_queue_new(1, cap, err, sizeof(err));
    struct store_access a = record(0, 0);
    size_t n = 0;

    if (holds == 0) {
        ck_assert_ptr_null(q);
        ck_assert_msg(strstr(err, "exceeds") != NULL, "%s", err);
        return;
    }
    ck_assert_msg(q != NULL, "%s", err);
    while (n <= holds && store_queue_push(q, 0, &a))
        n++;
    ck_assert_uint_eq(n, holds);
    store_queue_free(q);
}
END_TEST

START_TEST(test_no_producers_is_refused_with_message)
{
    char err[256] = "";

    ck_assert_ptr_null(store_queue_new(0, 8, err, sizeof(err)));
    ck_assert_str_ne(err, "");
}
END_TEST

START_TEST(test_wrap_around_keeps_order)
{
    struct store_queue *q = queue(1, 4);
    struct seen s;
    int64_t next = 0;

    /* Fill levels 1..4 in turn, many times round the 4 slots, so head and tail wrap at
     * every offset. */
    for (int round = 0; round < 200; round++) {
        size_t fill = (size_t)(round % 4) + 1;

        memset(&s, 0, sizeof(s));
        for (size_t i = 0; i < fill; i++) {
            struct store_access a = record(0, next + (int64_t)i);

            ck_assert(store_queue_push(q, 0, &a));
        }
        ck_assert_uint_eq(store_queue_drain(q, fill, collect, &s), fill);
        for (size_t i = 0; i < fill; i++)
            ck_assert_int_eq(s.seq[i], next + (int64_t)i);
        next += (int64_t)fill;
    }
    ck_assert_uint_eq(store_queue_len(q), 0);
    store_queue_free(q);
}
END_TEST

/* A broken wake-up would leave these waits asleep forever: the test case's timeout, not a
 * clock, catches it. */
START_TEST(test_wake_and_half_full_push_end_a_wait)
{
    struct store_queue *q = queue(1, 8);
    struct store_access a = record(0, 0);
    struct seen s = {0};

    store_queue_wake(q);
    store_queue_wait(q, -1);
    for (int i = 0; i < 4; i++)
        ck_assert(store_queue_push(q, 0, &a));
    store_queue_wait(q, -1);
    /* Draining re-arms the producer's wake-up for the next fill. */
    ck_assert_uint_eq(store_queue_drain(q, 100, collect, &s), 4);
    for (int i = 0; i < 4; i++)
        ck_assert(store_queue_push(q, 0, &a));
    store_queue_wait(q, -1);
    store_queue_free(q);
}
END_TEST

/* Every member survives the packing, strings at their longest (truncated by the filler to
 * size - 1) and empty ones. */
static struct store_access full_record(char fill)
{
    struct store_access a;

    memset(&a, 0, sizeof(a));
    a.time_ms = 1764547200123;
    a.duration_ms = 4000000000u;
    a.status = 503;
    a.port = 65535;
    a.bytes_up = UINT64_MAX - 1;
    a.bytes_down = 1ull << 40;
    a.rule_id = -7;
    a.undecided_rule_id = 12;
    a.decision = STORE_REPORT;
    a.policy_version = INT64_MAX;
#define FILL(f) memset(a.f, fill, sizeof(a.f) - 1)
    FILL(client);
    FILL(user);
    FILL(method);
    FILL(scheme);
    FILL(host);
    FILL(path);
    FILL(error);
    FILL(sni);
    FILL(dest);
#undef FILL
    return a;
}

static struct store_access got;
static void keep(void *arg, const struct store_access *rec)
{
    (void)arg;
    got = *rec;
}

/* Every member of a equals b's; a string up to its NUL or its array's end (the bytes after a
 * NUL are not part of it: unpack leaves them as an earlier record left them). */
#define SAME(f) (a->f == b->f)
#define SAME_TEXT(f) (strncmp(a->f, b->f, sizeof(a->f)) == 0)
static bool same_record(const struct store_access *a, const struct store_access *b)
{
    bool numbers = SAME(time_ms) && SAME(duration_ms) && SAME(status) && SAME(port) &&
                   SAME(bytes_up) && SAME(bytes_down) && SAME(rule_id) && SAME(undecided_rule_id) &&
                   SAME(decision) && SAME(policy_version);

    return numbers && SAME_TEXT(client) && SAME_TEXT(user) && SAME_TEXT(method) &&
           SAME_TEXT(scheme) && SAME_TEXT(host) && SAME_TEXT(path) && SAME_TEXT(error) &&
           SAME_TEXT(sni) && SAME_TEXT(dest);
}
#undef SAME
#undef SAME_TEXT

START_TEST(test_every_member_survives_the_packing)
{
    struct store_queue *q = queue(1, 4);
    struct store_access a = full_record('h'), b;

    for (int round = 0; round < 20; round++) { /* round the ring's bytes several times */
        ck_assert(store_queue_push(q, 0, &a));
        ck_assert_uint_eq(store_queue_drain(q, 1, keep, NULL), 1);
        ck_assert(memcmp(&got, &a, sizeof(a)) == 0);
    }
    /* A string that fills its array without a NUL comes back so, and the next ones after it. */
    b = full_record('y');
    memset(b.method, 'M', sizeof(b.method));
    memset(b.error, 'E', sizeof(b.error));
    ck_assert(store_queue_push(q, 0, &b));
    ck_assert_uint_eq(store_queue_drain(q, 1, keep, NULL), 1);
    ck_assert(memcmp(&got, &b, sizeof(b)) == 0);
    /* Short and empty strings after longer ones in the same scratch record end at their
     * length: their NUL is written, whatever the earlier record left after it. */
    b = record(3, 9);
    b.sni[0] = '\0';
    ck_assert(store_queue_push(q, 0, &b));
    ck_assert_uint_eq(store_queue_drain(q, 1, keep, NULL), 1);
    ck_assert(same_record(&got, &b));
    ck_assert_str_eq(got.sni, "");
    ck_assert_uint_eq(strnlen(got.host, sizeof(got.host)), strlen(b.host));
    store_queue_free(q);
}
END_TEST

/* A worker reuses one record for each request on a slot and clears it with
 * store_access_clear, which writes only each string's first byte: what the last request left
 * behind the NULs must not reach the next one's row. */
START_TEST(test_a_cleared_record_is_empty_whatever_it_held)
{
    struct store_queue *q = queue(1, 4);
    struct store_access a = full_record('h'), empty;

    memset(&empty, 0, sizeof(empty));
    memset(a.error, 'E', sizeof(a.error)); /* one string without a NUL, as truncation allows */
    store_access_clear(&a);
    ck_assert(same_record(&a, &empty));
    ck_assert(store_queue_push(q, 0, &a));
    ck_assert_uint_eq(store_queue_drain(q, 1, keep, NULL), 1);
    ck_assert(same_record(&got, &empty));
    ck_assert_str_eq(got.host, "");
    ck_assert_str_eq(got.error, "");
    store_queue_free(q);
}
END_TEST

START_TEST(test_long_records_fill_the_bytes_first)
{
    /* 64 records' worth of bytes (16 KiB) hold 8 of the longest rows (about 1.9 KiB each),
     * though the ring has 64 slots; a drop is counted, and draining makes room. */
    struct store_queue *q = queue(1, 64);
    struct store_access a = full_record('x');
    struct seen s = {0};
    uint64_t pushed, dropped;
    size_t n = 0;

    while (n < 64 && store_queue_push(q, 0, &a))
        n++;
    ck_assert_uint_ge(n, 7);
    ck_assert_uint_le(n, 8);
    store_queue_counts(q, &pushed, &dropped);
    ck_assert_uint_eq(pushed, n);
    ck_assert_uint_eq(dropped, 1);
    /* Short rows still fit in the slots and bytes that are left. */
    struct store_access small = record(0, 1);
    ck_assert(store_queue_push(q, 0, &small));
    ck_assert_uint_eq(store_queue_drain(q, 100, keep, NULL), n + 1);
    ck_assert_int_eq(got.time_ms, 1);
    ck_assert(store_queue_push(q, 0, &a));
    ck_assert_uint_eq(store_queue_drain(q, 100, collect_any, &s), 1);
    store_queue_free(q);
}
END_TEST

/* ---- one producer thread against the consumer ---- */

#define RACE_RECORDS 200000
#define RACE_CAPACITY 64 /* small, so the ring is full often and wraps thousands of times */

struct race {
    struct store_queue *q;
    uint64_t refused; /* pushes that found the ring full */
    int64_t next;     /* consumer: sequence expected next */
    bool in_order;
};

static void *race_producer(void *arg)
{
    struct race *r = arg;

    for (int64_t i = 0; i < RACE_RECORDS; i++) {
        struct store_access a = record(0, i);

        while (!store_queue_push(r->q, 0, &a)) {
            r->refused++;
            sched_yield();
        }
    }
    return NULL;
}

static void race_take(void *arg, const struct store_access *rec)
{
    struct race *r = arg;

    if (!is_record(rec, 0, r->next))
        r->in_order = false;
    r->next++;
}

START_TEST(test_producer_thread_and_consumer_lose_nothing)
{
    struct race r = {.q = queue(1, RACE_CAPACITY), .in_order = true};
    uint64_t pushed, dropped;
    pthread_t t;
    long rounds;

    ck_assert_int_eq(pthread_create(&t, NULL, race_producer, &r), 0);
    /* Bounded: every round either takes a record or sleeps at most 10 ms, and the producer
     * never stops short of RACE_RECORDS, so this ends long before the bound. */
    for (rounds = 0; r.next < RACE_RECORDS && rounds < 10L * RACE_RECORDS; rounds++) {
        if (store_queue_drain(r.q, 1000, race_take, &r) == 0)
            store_queue_wait(r.q, 10);
    }
    ck_assert_int_eq(pthread_join(t, NULL), 0);
    ck_assert_int_eq(r.next, RACE_RECORDS);
    ck_assert(r.in_order);
    ck_assert_uint_eq(store_queue_len(r.q), 0);
    store_queue_counts(r.q, &pushed, &dropped);
    ck_assert_uint_eq(pushed, RACE_RECORDS);
    ck_assert_uint_eq(dropped, r.refused);
    store_queue_free(r.q);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("store_queue");
    TCase *tc = tcase_create("queue");
    SRunner *sr;
    int failed;

    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_drain_gives_each_ring_oldest_first);
    tcase_add_test(tc, test_push_copies_the_record);
    tcase_add_test(tc, test_runs_are_contiguous_capped_and_split_at_the_wrap);
    tcase_add_test(tc, test_drain_stops_at_max_and_keeps_the_rest);
    tcase_add_test(tc, test_full_ring_refuses_and_counts_drops);
    tcase_add_loop_test(tc, test_capacity_rounds_up_to_a_power_of_two, 0,
                        (int)(sizeof(capacity_cases) / sizeof(capacity_cases[0])));
    tcase_add_test(tc, test_no_producers_is_refused_with_message);
    tcase_add_test(tc, test_wrap_around_keeps_order);
    tcase_add_test(tc, test_wake_and_half_full_push_end_a_wait);
    tcase_add_test(tc, test_every_member_survives_the_packing);
    tcase_add_test(tc, test_a_cleared_record_is_empty_whatever_it_held);
    tcase_add_test(tc, test_long_records_fill_the_bytes_first);
    tcase_add_test(tc, test_producer_thread_and_consumer_lose_nothing);
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
