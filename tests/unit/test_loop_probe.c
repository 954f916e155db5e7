/* test_loop_probe — what the loop probe says of a kind of turn from its struct
 * loop_count: the runs, items and CPU added up, the longest run, and the 99th percentile
 * of a run's CPU from the histogram (the upper edge of its bin, never more than the
 * longest run); and the agents document's "turns" object built from the watched counts.
 * Counts given by the test, no clock. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "loop_probe.h"

#define MS 1000000ull

static void sums_and_longest(void **state)
{
    (void)state;
    struct loop_count n;
    memset(&n, 0, sizeof n);
    assert_int_equal(loop_count_p99_ns(&n), 0); /* no run yet */
    loop_count_add(&n, 3, 2 * MS);
    loop_count_add(&n, 5, 7 * MS);
    loop_count_add(&n, 0, 1 * MS);
    assert_int_equal(n.runs, 3);
    assert_int_equal(n.items, 8);
    assert_int_equal(n.cpu_ns, 10 * MS);
    assert_int_equal(n.max_ns, 7 * MS);
    assert_int_equal(loop_count_p99_ns(&n), 7 * MS); /* under 100 runs: the longest */
}

/* 199 runs of 1 ms and 1 of 20 ms: the 99th percentile is the 1 ms runs' bin (its upper
 * edge, 1.25 ms), not the one long run; 3 of 20 ms in 200 are more than 1 %. */
static void p99_leaves_out_the_last_percent(void **state)
{
    (void)state;
    struct loop_count n;
    memset(&n, 0, sizeof n);
    for (int i = 0; i < 199; i++)
        loop_count_add(&n, 1, 1 * MS);
    loop_count_add(&n, 1, 20 * MS);
    assert_int_equal(n.max_ns, 20 * MS);
    assert_int_equal(loop_count_p99_ns(&n), 1 * MS + LOOP_HIST_NS);
    loop_count_add(&n, 1, 20 * MS);
    loop_count_add(&n, 1, 20 * MS);
    assert_int_equal(loop_count_p99_ns(&n), 20 * MS);
}

/* A run longer than the histogram goes into its last bin; the percentile there is the
 * longest run, not the bin's edge. */
static void runs_past_the_histogram(void **state)
{
    (void)state;
    struct loop_count n;
    memset(&n, 0, sizeof n);
    loop_count_add(&n, 1, 500 * MS);
    assert_int_equal(n.hist[LOOP_HIST_BINS - 1], 1);
    assert_int_equal(loop_count_p99_ns(&n), 500 * MS);
}

static double field(json_t *turns, const char *what, const char *key)
{
    json_t *v = json_object_get(json_object_get(turns, what), key);
    assert_non_null(v);
    return json_number_value(v);
}

/* Only the loop_counts watched appear, by their names; a plain counter does not. */
static void the_document_names_each_kind(void **state)
{
    (void)state;
    struct loop_probe p;
    struct loop_count ticks, passes;
    uint64_t runs = 4, items = 9, cpu = 3 * MS;
    memset(&p, 0, sizeof p);
    memset(&ticks, 0, sizeof ticks);
    memset(&passes, 0, sizeof passes);
    loop_count_add(&ticks, 200, 1500000);
    loop_count_add(&passes, 64, 4 * MS);
    loop_probe_watch(&p, "drains", "messages", &runs, &items, &cpu);
    loop_probe_watch_count(&p, "heartbeat ticks", "agents", &ticks);
    loop_probe_watch_count(&p, "scheduling passes", "claims", &passes);
    json_t *turns = loop_probe_turns(&p);
    assert_non_null(turns);
    assert_int_equal(json_object_size(turns), 2);
    assert_null(json_object_get(turns, "drains"));
    assert_true(field(turns, "heartbeat ticks", "runs") == 1);
    assert_true(field(turns, "heartbeat ticks", "items") == 200);
    assert_true(field(turns, "heartbeat ticks", "max_ms") == 1.5);
    assert_true(field(turns, "scheduling passes", "p99_ms") == 4.0);
    assert_true(field(turns, "scheduling passes", "cpu_ms") == 4.0);
    json_decref(turns);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(sums_and_longest),
        cmocka_unit_test(p99_leaves_out_the_last_percent),
        cmocka_unit_test(runs_past_the_histogram),
        cmocka_unit_test(the_document_names_each_kind),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
