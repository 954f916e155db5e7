/* test_turn — a step continued with fr_turn_later runs once per turn of the loop, not
 * every step in the turn that armed it. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "fr_turn.h"

#define STEPS 5

struct job {
    uv_timer_t t;
    int steps;
};

static void on_step(uv_timer_t *t)
{
    struct job *j = t->data;
    if (++j->steps < STEPS)
        fr_turn_later(&j->t, on_step);
}

static void a_continued_step_waits_for_the_next_turn(void **state)
{
    (void)state;
    uv_loop_t loop;
    struct job j = { .steps = 0 };
    assert_int_equal(uv_loop_init(&loop), 0);
    uv_timer_init(&loop, &j.t);
    j.t.data = &j;
    fr_turn_later(&j.t, on_step);
    for (int turn = 1; turn <= STEPS; turn++) {
        uv_run(&loop, UV_RUN_ONCE); /* blocks until the step is due, runs what is due */
        assert_int_equal(j.steps, turn);
    }
    assert_int_equal(uv_run(&loop, UV_RUN_NOWAIT), 0); /* nothing left armed */
    uv_close((uv_handle_t *)&j.t, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(a_continued_step_waits_for_the_next_turn),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
