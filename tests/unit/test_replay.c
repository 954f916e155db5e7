/* test_replay — when an unacknowledged reliable message goes out again (fr_replay.h). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "fr_replay.h"

#define PERIOD 1000

/* Copies sent over span ms of ticks every period, the first at 0; the peer's ack moves
 * at every tick when ack_moves. */
static unsigned copies_over(uint64_t span, int ack_moves)
{
    struct fr_replay r = { 0 };
    unsigned n = 0;
    for (uint64_t now = 0; now <= span; now += PERIOD)
        if (fr_replay_due(&r, now, PERIOD, now > 0 && ack_moves)) {
            fr_replay_sent(&r, now);
            n++;
        }
    return n;
}

static void a_message_that_never_went_out_goes_at_once(void **state)
{
    struct fr_replay r = { 0 };
    assert_true(fr_replay_due(&r, 0, PERIOD, 0));
    assert_true(fr_replay_due(&r, 0, PERIOD, 1)); /* even while the ack moves */
}

/* The ack standing still for a period: the message may be lost, it goes again; each
 * later copy waits twice as long (1, 2, 4, 8, 16 periods), never longer than 16. */
static void copies_back_off_while_the_ack_stands_still(void **state)
{
    struct fr_replay r = { 0 };
    fr_replay_sent(&r, 0);
    assert_false(fr_replay_due(&r, PERIOD - 1, PERIOD, 0));
    assert_true(fr_replay_due(&r, PERIOD, PERIOD, 0));
    fr_replay_sent(&r, PERIOD);
    assert_false(fr_replay_due(&r, 3 * PERIOD - 1, PERIOD, 0));
    assert_true(fr_replay_due(&r, 3 * PERIOD, PERIOD, 0));
    for (int i = 0; i < 20; i++)
        fr_replay_sent(&r, 100 * PERIOD);
    assert_false(fr_replay_due(&r, 116 * PERIOD - 1, PERIOD, 0));
    assert_true(fr_replay_due(&r, 116 * PERIOD, PERIOD, 0));
    /* a minute behind: 7 copies (0, 1, 3, 7, 15, 31, 47 s), not one per heartbeat */
    assert_int_equal(copies_over(60 * PERIOD, 0), 7);
}

/* The peer applies in seq order: while its ack rises, what lies beyond it is queued
 * there, not lost, and nothing goes again. */
static void nothing_goes_again_while_the_ack_moves(void **state)
{
    assert_int_equal(copies_over(60 * PERIOD, 1), 1);
}

/* A new link: every entry goes again at once, and its waits start over. */
static void a_new_link_starts_the_waits_over(void **state)
{
    struct fr_replay r = { 0 };
    for (int i = 0; i < 6; i++)
        fr_replay_sent(&r, 0);
    assert_false(fr_replay_due(&r, PERIOD, PERIOD, 0));
    fr_replay_relink(&r);
    assert_true(fr_replay_due(&r, PERIOD, PERIOD, 1));
    fr_replay_sent(&r, PERIOD);
    assert_true(fr_replay_due(&r, 2 * PERIOD, PERIOD, 0)); /* one period again, not 32 */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(a_message_that_never_went_out_goes_at_once),
        cmocka_unit_test(copies_back_off_while_the_ack_stands_still),
        cmocka_unit_test(nothing_goes_again_while_the_ack_moves),
        cmocka_unit_test(a_new_link_starts_the_waits_over),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
