/* test_turn — a step continued with fr_turn_later runs only after the loop has polled
 * its sockets again, never twice in the timer phase that armed it.
 *
 * The check is on the loop's phases, not on a count per uv_run call: a timer due again
 * by the time the loop updates its clock can run both at the start and at the end of one
 * UV_RUN_ONCE (libuv runs timers in both places), so "one step per uv_run" depends on how
 * loaded the machine is. What must hold is that a poll (announced by a prepare handle,
 * which runs before every poll) separates every two steps. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "fr_turn.h"

#define STEPS 5

struct job {
    uv_timer_t t;
    uv_prepare_t polls;
    unsigned long npolls;            /* polls entered so far */
    unsigned long poll_at[STEPS];    /* npolls when each step ran */
    int steps;
};

static void on_poll(uv_prepare_t *p)
{
    struct job *j = p->data;
    j->npolls++;
}

static void on_step(uv_timer_t *t)
{
    struct job *j = t->data;
    j->poll_at[j->steps] = j->npolls;
    if (++j->steps < STEPS)
        fr_turn_later(&j->t, on_step);
    else
        uv_prepare_stop(&j->polls);
}

static void a_continued_step_waits_for_the_next_poll(void **state)
{
    (void)state;
    uv_loop_t loop;
    struct job j = { .steps = 0 };
    assert_int_equal(uv_loop_init(&loop), 0);
    uv_timer_init(&loop, &j.t);
    uv_prepare_init(&loop, &j.polls);
    j.t.data = &j;
    j.polls.data = &j;
    uv_prepare_start(&j.polls, on_poll);
    fr_turn_later(&j.t, on_step);

    assert_int_equal(uv_run(&loop, UV_RUN_DEFAULT), 0); /* ends when nothing is armed */
    assert_int_equal(j.steps, STEPS);
    for (int i = 1; i < STEPS; i++)
        assert_true(j.poll_at[i] > j.poll_at[i - 1]); /* a poll between every two steps */

    uv_close((uv_handle_t *)&j.t, NULL);
    uv_close((uv_handle_t *)&j.polls, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(a_continued_step_waits_for_the_next_poll),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
