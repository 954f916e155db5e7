/* test_policy — the retry ladder: a bad cable is told from a bad phone. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "policy.h"

static struct policy_cfg cfg_default(void)
{
    struct policy_cfg c;
    policy_cfg_default(&c);
    return c;
}

/* Plays the ladder: the unit fails with cls on each port in turn. */
static enum policy_action play(const struct policy_cfg *cfg, struct policy_history *h,
                               enum fr_class cls, const char *port, struct policy_decision *d)
{
    policy_after_attempt(cfg, h, cls, port, d);
    h->attempts++;
    h->class_count[cls]++;
    if (cls == FR_CLASS_LINK_LOST || cls == FR_CLASS_HARDWARE)
        policy_history_add_port(h, port);
    return d->action;
}

static void success_is_done(void **state)
{
    struct policy_cfg c = cfg_default();
    struct policy_history h = { 0 };
    struct policy_decision d;
    policy_after_attempt(&c, &h, FR_CLASS_NONE, "A:1-1.1", &d);
    assert_int_equal(d.action, POLICY_DONE);
    assert_int_equal(d.next, FR_STATE_DONE);
    assert_false(d.strike_port);
}

static void lost_link_moves_then_dfu_then_suspect(void **state)
{
    struct policy_cfg c = cfg_default();
    struct policy_history h = { 0 };
    struct policy_decision d;
    assert_int_equal(play(&c, &h, FR_CLASS_LINK_LOST, "A:1-1.1", &d), POLICY_MOVE);
    assert_int_equal(d.next, FR_STATE_NEEDS_MOVE);
    assert_true(d.strike_port && d.power_cycle);
    assert_false(d.from_dfu);
    assert_int_equal(play(&c, &h, FR_CLASS_LINK_LOST, "B:2-1.4", &d), POLICY_MOVE);
    assert_true(d.from_dfu);
    assert_non_null(strstr(d.why, "DFU"));
    assert_int_equal(play(&c, &h, FR_CLASS_LINK_LOST, "A:1-2.7", &d), POLICY_SUSPECT);
    assert_int_equal(d.next, FR_STATE_HARDWARE_SUSPECT);
    assert_non_null(strstr(d.why, "3 different ports"));
}

static void same_port_twice_is_not_evidence_against_the_unit(void **state)
{
    struct policy_cfg c = cfg_default();
    struct policy_history h = { 0 };
    struct policy_decision d;
    for (int i = 0; i < 4; i++)
        assert_int_equal(play(&c, &h, FR_CLASS_LINK_LOST, "A:1-1.1", &d), POLICY_MOVE);
    assert_int_equal(h.nfailed_ports, 1);
    assert_false(d.from_dfu);
    /* ...until the attempts run out: a plain failure, never hardware_suspect */
    play(&c, &h, FR_CLASS_LINK_LOST, "A:1-1.1", &d);
    assert_int_equal(play(&c, &h, FR_CLASS_LINK_LOST, "A:1-1.1", &d), POLICY_FAIL);
}

static void disk_failure_gets_one_more_port_from_dfu(void **state)
{
    struct policy_cfg c = cfg_default();
    struct policy_history h = { 0 };
    struct policy_decision d;
    assert_int_equal(play(&c, &h, FR_CLASS_HARDWARE, "A:1-1.1", &d), POLICY_MOVE);
    assert_true(d.from_dfu);
    assert_false(d.strike_port); /* the port did nothing wrong */
    assert_int_equal(play(&c, &h, FR_CLASS_HARDWARE, "A:1-1.2", &d), POLICY_SUSPECT);
}

static void non_moving_classes(void **state)
{
    struct policy_cfg c = cfg_default();
    struct policy_decision d;
    const enum fr_class never[] = { FR_CLASS_NOT_SIGNED, FR_CLASS_WRONG_FIRMWARE,
                                    FR_CLASS_STACK_TOO_OLD };
    for (size_t i = 0; i < 3; i++) {
        struct policy_history h = { 0 };
        assert_int_equal(play(&c, &h, never[i], "A:1-1.1", &d), POLICY_FAIL);
        assert_false(d.strike_port);
    }
    struct policy_history h = { 0 };
    assert_int_equal(play(&c, &h, FR_CLASS_FIRMWARE, "A:1-1.1", &d), POLICY_RETRY_IN_PLACE);
    assert_int_equal(play(&c, &h, FR_CLASS_FIRMWARE, "A:1-1.1", &d), POLICY_RETRY_IN_PLACE);
    assert_int_equal(play(&c, &h, FR_CLASS_FIRMWARE, "A:1-1.1", &d), POLICY_FAIL);
    assert_int_equal(h.nfailed_ports, 0);

    struct policy_history n = { 0 };
    for (int i = 0; i < 3; i++)
        assert_int_equal(play(&c, &n, FR_CLASS_NETWORK, "A:1-1.1", &d), POLICY_RETRY_IN_PLACE);
    assert_int_equal(play(&c, &n, FR_CLASS_NETWORK, "A:1-1.1", &d), POLICY_FAIL);

    struct policy_history o = { 0 };
    assert_int_equal(play(&c, &o, FR_CLASS_NEEDS_DFU, "A:1-1.1", &d), POLICY_OPERATOR);
    assert_int_equal(d.next, FR_STATE_NEEDS_OPERATOR);
    struct policy_history nd = { 0 };
    assert_int_equal(play(&c, &nd, FR_CLASS_NO_DEVICE, "A:1-1.1", &d), POLICY_RETRY_IN_PLACE);
    assert_int_equal(play(&c, &nd, FR_CLASS_NO_DEVICE, "A:1-1.1", &d), POLICY_OPERATOR);
}

/* The engine said it restored but the unit runs another build: the restore did not take.
 * Once more in place (not the port's fault, no strike), then the run fails. */
static void a_failed_verification_is_retried_once_then_failed(void **state)
{
    struct policy_cfg c = cfg_default();
    struct policy_history h = { 0 };
    struct policy_decision d;
    assert_int_equal(play(&c, &h, FR_CLASS_VERIFICATION, "A:1-1.1", &d), POLICY_RETRY_IN_PLACE);
    assert_int_equal(d.next, FR_STATE_WAITING_UNIT);
    assert_false(d.strike_port);
    assert_int_equal(play(&c, &h, FR_CLASS_VERIFICATION, "A:1-1.1", &d), POLICY_FAIL);
    assert_int_equal(d.next, FR_STATE_FAILED);
    assert_false(d.strike_port);
    assert_int_equal(h.nfailed_ports, 0);
    assert_string_equal(fr_class_name(FR_CLASS_VERIFICATION), "verification");
}

static void interruptions_do_not_count(void **state)
{
    struct policy_cfg c = cfg_default();
    struct policy_history h = { 0 };
    struct policy_decision d;
    policy_after_attempt(&c, &h, FR_CLASS_INTERRUPTED, "A:1-1.1", &d);
    assert_int_equal(d.action, POLICY_REQUEUE);
    assert_false(d.strike_port);
}

static void naive_practice_retries_in_place(void **state)
{
    struct policy_cfg c = cfg_default();
    c.naive = 1;
    c.max_attempts = 3;
    struct policy_history h = { 0 };
    struct policy_decision d;
    assert_int_equal(play(&c, &h, FR_CLASS_LINK_LOST, "A:1-1.1", &d), POLICY_RETRY_IN_PLACE);
    assert_int_equal(play(&c, &h, FR_CLASS_LINK_LOST, "A:1-1.1", &d), POLICY_RETRY_IN_PLACE);
    assert_int_equal(play(&c, &h, FR_CLASS_LINK_LOST, "A:1-1.1", &d), POLICY_FAIL);
    assert_false(d.strike_port);
}

static void quarantine_needs_two_units_in_the_window(void **state)
{
    struct policy_cfg c = cfg_default();
    const int64_t hour = 3600 * 1000;
    struct policy_strike one_unit[] = { { 1, 0 }, { 1, 10 }, { 1, 20 } };
    assert_false(policy_port_quarantined(&c, one_unit, 3, 30));
    struct policy_strike two_units[] = { { 1, 0 }, { 2, 10 } };
    assert_true(policy_port_quarantined(&c, two_units, 2, 30));
    assert_false(policy_port_quarantined(&c, two_units, 2, 2 * hour)); /* both too old */
    struct policy_strike one_old[] = { { 1, 0 }, { 2, hour + 5 } };
    assert_false(policy_port_quarantined(&c, one_old, 2, hour + 10));
}

static void target_prefers_other_hub_bus_and_shallow_tier(void **state)
{
    /* id, agent, hub, bus, depth, usable, strikes, load, eligible */
    struct policy_port from = { "A:1-1.1", "A", "A.1", 1, 2, 0, 1, 0, 1 };
    struct policy_port ports[] = {
        { "A:1-1.2", "A", "A.1", 1, 2, 1, 0, 0, 1 }, /* same hub */
        { "A:1-2.1", "A", "A.2", 1, 3, 1, 0, 0, 1 }, /* other hub, same bus, deep */
        { "A:2-1.1", "A", "A.3", 2, 2, 1, 0, 0, 1 }, /* other hub and bus */
        { "B:1-1.1", "B", "B.1", 1, 1, 0, 0, 0, 0 }, /* agent offline */
    };
    const char *avoid[] = { "A:1-1.1" };
    assert_int_equal(policy_pick_target(ports, 4, &from, avoid, 1), 2);
    ports[2].usable = ports[2].eligible = 0; /* quarantined: the next best class */
    assert_int_equal(policy_pick_target(ports, 4, &from, avoid, 1), 1);
    const char *avoid2[] = { "A:1-1.1", "A:1-2.1" };
    assert_int_equal(policy_pick_target(ports, 4, &from, avoid2, 2), 0);
    ports[0].usable = ports[0].eligible = 0;
    assert_int_equal(policy_pick_target(ports, 4, &from, avoid2, 2), -1);
}

static void target_waits_for_a_better_separated_port(void **state)
{
    struct policy_port from = { "A:1-1.1", "A", "A.1", 1, 1, 0, 1, 0, 1 };
    struct policy_port ports[] = {
        { "A:1-2.1", "A", "A.2", 1, 1, 1, 0, 0, 1 }, /* free now, but on the bus that failed */
        { "A:2-1.1", "A", "A.3", 2, 1, 0, 0, 3, 1 }, /* another bus; its phone is still working */
    };
    assert_int_equal(policy_pick_target(ports, 2, &from, NULL, 0), -1);
    ports[1].usable = 1; /* that phone is done */
    assert_int_equal(policy_pick_target(ports, 2, &from, NULL, 0), 1);
}

static void target_prefers_the_bus_with_least_work(void **state)
{
    struct policy_port from = { "A:1-1.1", "A", "A.1", 1, 1, 0, 1, 0, 1 };
    struct policy_port ports[] = {
        { "A:2-1.1", "A", "A.2", 2, 1, 1, 0, 18, 1 }, /* a bus still full of transfers */
        { "B:3-1.1", "B", "B.3", 3, 2, 1, 0, 2, 1 },  /* deeper tier, nearly idle bus */
        { "C:4-1.1", "C", "C.4", 4, 1, 0, 0, 1, 1 },  /* the idlest bus, no free port yet */
    };
    assert_int_equal(policy_pick_target(ports, 3, &from, NULL, 0), 1);
    ports[1].load = 16; /* both far busier than C's bus: wait for a port there */
    assert_int_equal(policy_pick_target(ports, 3, &from, NULL, 0), -1);
    ports[1].load = ports[2].load = 17; /* all within the slack: the shallow tier decides again */
    assert_int_equal(policy_pick_target(ports, 3, &from, NULL, 0), 0);
    ports[0].load = ports[1].load = 30; /* however loaded, if it is the best there is */
    ports[2].eligible = 0;
    assert_int_equal(policy_pick_target(ports, 3, &from, NULL, 0), 0);
}

static void target_on_another_agent_counts_as_other_hub(void **state)
{
    struct policy_port from = { "A:1-1.1", "A", "hub1", 1, 1, 0, 0, 0, 1 };
    struct policy_port ports[] = {
        { "A:1-1.2", "A", "hub1", 1, 1, 1, 0, 0, 1 },
        { "B:1-1.1", "B", "hub1", 1, 1, 1, 0, 0, 1 }, /* same hub name, different host */
    };
    assert_int_equal(policy_pick_target(ports, 2, &from, NULL, 0), 1);
}

/* Every model family's full sequences, as in tests/fixtures/policy/buttons.txt. */
static void button_sequences_are_complete(void **state)
{
    char path[1024], line[1024];
    snprintf(path, sizeof path, "%s/policy/buttons.txt", getenv("FR_FIXTURES"));
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    int n = 0;
    while (fgets(line, sizeof line, f)) {
        if (line[0] == '#' || line[0] == '\n')
            continue;
        line[strcspn(line, "\n")] = '\0';
        char *save = NULL, *pt = strtok_r(line, "|", &save), *rec = strtok_r(NULL, "|", &save),
             *dfu = strtok_r(NULL, "|", &save);
        assert_non_null(dfu);
        assert_string_equal(policy_recovery_buttons(pt), rec);
        assert_string_equal(policy_dfu_buttons(pt), dfu);
        n++;
    }
    fclose(f);
    assert_true(n >= 7);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(success_is_done),
        cmocka_unit_test(lost_link_moves_then_dfu_then_suspect),
        cmocka_unit_test(same_port_twice_is_not_evidence_against_the_unit),
        cmocka_unit_test(disk_failure_gets_one_more_port_from_dfu),
        cmocka_unit_test(non_moving_classes),
        cmocka_unit_test(target_prefers_the_bus_with_least_work),
        cmocka_unit_test(target_waits_for_a_better_separated_port),
        cmocka_unit_test(interruptions_do_not_count),
        cmocka_unit_test(a_failed_verification_is_retried_once_then_failed),
        cmocka_unit_test(naive_practice_retries_in_place),
        cmocka_unit_test(quarantine_needs_two_units_in_the_window),
        cmocka_unit_test(target_prefers_other_hub_bus_and_shallow_tier),
        cmocka_unit_test(target_on_another_agent_counts_as_other_hub),
        cmocka_unit_test(button_sequences_are_complete),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
