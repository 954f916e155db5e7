/* test_simfate — the simulator's fates are a pure function of the seed; bus math. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "fate.h"

static void same_inputs_same_fate(void **state)
{
    for (int k = 0; k < 50; k++) {
        struct fate a, b;
        fate_decide(42, 0x1234 + (uint64_t)k, "1-1.3", k, 0.5, HEALTH_GOOD, &a);
        fate_decide(42, 0x1234 + (uint64_t)k, "1-1.3", k, 0.5, HEALTH_GOOD, &b);
        assert_int_equal(a.outcome, b.outcome);
        assert_true(a.fail_at == b.fail_at);
        assert_true(a.fail_at >= 0.05 && a.fail_at <= 0.95);
    }
}

static void seed_changes_fates(void **state)
{
    int differ = 0;
    for (int k = 0; k < 64; k++)
        differ += fate_u01(1, 0x99, "1-1.1", k, 0) != fate_u01(2, 0x99, "1-1.1", k, 0);
    assert_int_equal(differ, 64);
}

static void link_fail_rate_is_honoured(void **state)
{
    int fails0 = 0, fails1 = 0, fails_half = 0;
    for (int i = 0; i < 2000; i++) {
        struct fate f;
        fate_decide(7, (uint64_t)i + 1, "2-1.4", 0, 0.0, HEALTH_GOOD, &f);
        fails0 += f.outcome != FATE_OK;
        fate_decide(7, (uint64_t)i + 1, "2-1.4", 0, 1.0, HEALTH_GOOD, &f);
        fails1 += f.outcome == FATE_LINK_LOST;
        fate_decide(7, (uint64_t)i + 1, "2-1.4", 0, 0.5, HEALTH_GOOD, &f);
        fails_half += f.outcome == FATE_LINK_LOST;
    }
    assert_int_equal(fails0, 0);
    assert_int_equal(fails1, 2000);
    assert_true(fails_half > 900 && fails_half < 1100);
}

static void dead_units_fail_everywhere_disk_units_fail_disk(void **state)
{
    const char *ports[] = { "1-1.1", "1-2.7", "3-1.2" };
    for (int i = 0; i < 3; i++) {
        struct fate f;
        fate_decide(9, 0xDEAD, ports[i], i, 0.0, HEALTH_DEAD, &f);
        assert_int_equal(f.outcome, FATE_LINK_LOST);
        fate_decide(9, 0xD15C, ports[i], i, 0.0, HEALTH_DISK, &f);
        assert_int_equal(f.outcome, FATE_DISK);
    }
}

static void bus_share_and_oversubscription(void **state)
{
    assert_true(fate_share(35, 1) == 35);
    assert_true(fate_share(35, 7) == 5);
    assert_true(fate_share(35, 0) == 35);
    struct rack_sim s;
    memset(&s, 0, sizeof s);
    s.oversubscribe_at = 10;
    s.oversubscribe_fail = 0.04;
    assert_true(fate_oversubscribed(&s, 10) == 0);
    assert_true(fate_oversubscribed(&s, 12) > 0.079 && fate_oversubscribed(&s, 12) < 0.081);
    assert_true(fate_oversubscribed(&s, 100) == 1);
}

static void bus_rates_are_max_min_fair(void **state)
{
    double rate[3];
    int two_hubs[] = { 3, 4 };
    /* no hub or unit limit: an even split of the bus, exactly fate_share */
    fate_bus_rates(35, 0, 0, two_hubs, 2, rate);
    assert_true(rate[0] == 5 && rate[1] == 5);
    /* 12 MB/s uplinks: 12 / 3 = 4 and 12 / 4 = 3 each, below the bus's even 5 */
    fate_bus_rates(35, 12, 0, two_hubs, 2, rate);
    assert_true(rate[0] == 4);
    assert_true(rate[1] == 3);
    /* a per-phone ceiling below the fair share leaves bandwidth unused */
    int one[] = { 1 };
    fate_bus_rates(35, 0, 20, one, 1, rate);
    assert_true(rate[0] == 20);
    /* one hub capped, the others take what it leaves: 1 + 2 units, uplink 6 */
    int mixed[] = { 1, 2, 0 };
    fate_bus_rates(10, 6, 0, mixed, 3, rate);
    assert_true(rate[1] == 3);                    /* 6 / 2 */
    assert_true(rate[0] > 3.999 && rate[0] < 4.001); /* the bus's 10 - 6 left, under its cap of 6 */
    assert_true(rate[2] == 0);
}

static void depth_and_intermittent_faults(void **state)
{
    struct rack_sim s;
    memset(&s, 0, sizeof s);
    s.seed = 5;
    s.depth_fail = 0.1;
    s.intermittent_fail = 0.5;
    struct rack_port shallow = { .path = "1-1.1", .depth = 2 }, deep = { .path = "1-1.1.1.1", .depth = 4 };
    int lost_shallow = 0, lost_deep = 0, lost_intermittent = 0;
    for (int i = 0; i < 4000; i++) {
        struct fate f;
        fate_decide_at(&s, (uint64_t)i + 1, &shallow, 0, HEALTH_GOOD, &f);
        lost_shallow += f.outcome == FATE_LINK_LOST;
        fate_decide_at(&s, (uint64_t)i + 1, &deep, 0, HEALTH_GOOD, &f);
        lost_deep += f.outcome == FATE_LINK_LOST;
        fate_decide_at(&s, (uint64_t)i + 1, &shallow, i, HEALTH_INTERMITTENT, &f);
        lost_intermittent += f.outcome == FATE_LINK_LOST;
    }
    assert_int_equal(lost_shallow, 0);                    /* the first tier adds nothing */
    assert_true(lost_deep > 700 && lost_deep < 900);      /* two tiers below: 0.2 */
    assert_true(lost_intermittent > 1850 && lost_intermittent < 2150);
}

static void phase_faults_fail_in_their_phase(void **state)
{
    struct fate f;
    fate_decide(3, 0x77, "1-1.2", 0, 0.0, HEALTH_PREPARE, &f);
    assert_int_equal(f.outcome, FATE_PREPARE);
    fate_decide(3, 0x77, "1-1.2", 1, 0.0, HEALTH_VERIFY, &f);
    assert_int_equal(f.outcome, FATE_VERIFY);
    fate_decide(3, 0x77, "2-1.2", 2, 0.0, HEALTH_FLASH, &f);
    assert_int_equal(f.outcome, FATE_FLASH);
    fate_decide(3, 0x77, "2-1.2", 2, 0.0, HEALTH_INTERMITTENT, &f);
    assert_int_equal(f.outcome, FATE_OK); /* only fate_decide_at knows intermittent_fail */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(same_inputs_same_fate),
        cmocka_unit_test(seed_changes_fates),
        cmocka_unit_test(link_fail_rate_is_honoured),
        cmocka_unit_test(dead_units_fail_everywhere_disk_units_fail_disk),
        cmocka_unit_test(bus_share_and_oversubscription),
        cmocka_unit_test(bus_rates_are_max_min_fair),
        cmocka_unit_test(depth_and_intermittent_faults),
        cmocka_unit_test(phase_faults_fail_in_their_phase),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
