/* test_udid_join — a normal-mode unit from its USB presence and its usbmuxd identity. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>

#include "udid_join.h"

struct seen {
    int attaches, detaches;
    struct unit_desc last;
    char detached_path[32];
    uint64_t detached_ecid;
};

static void on_attach(void *arg, const struct unit_desc *u)
{
    struct seen *s = arg;
    s->attaches++;
    s->last = *u;
}

static void on_detach(void *arg, const char *path, uint64_t ecid)
{
    struct seen *s = arg;
    s->detaches++;
    snprintf(s->detached_path, sizeof s->detached_path, "%s", path);
    s->detached_ecid = ecid;
}

static struct unit_desc identity(uint64_t ecid)
{
    struct unit_desc u;
    memset(&u, 0, sizeof u);
    u.ecid = ecid;
    u.mode = 4;
    snprintf(u.product_type, sizeof u.product_type, "iPhone12,1");
    snprintf(u.path, sizeof u.path, "ignored");
    return u;
}

#define UDID "00008030-000356E221749A2B"

static void attached_once_both_halves_are_known_in_either_order(void **state)
{
    for (int order = 0; order < 2; order++) {
        struct seen s = { 0 };
        struct udid_join j;
        udid_join_init(&j, on_attach, on_detach, &s);
        struct unit_desc id = identity(0x000356E221749A2Bull);
        if (order == 0) {
            assert_int_equal(udid_join_presence(&j, UDID, "1-1.3"), 0);
            assert_int_equal(s.attaches, 0);
            assert_int_equal(udid_join_identity(&j, UDID, &id), 0);
        } else {
            assert_int_equal(udid_join_identity(&j, UDID, &id), 0);
            assert_int_equal(s.attaches, 0);
            assert_int_equal(udid_join_presence(&j, UDID, "1-1.3"), 0);
        }
        assert_int_equal(s.attaches, 1);
        assert_string_equal(s.last.path, "1-1.3"); /* the port from USB, never from usbmuxd */
        assert_true(s.last.ecid == 0x000356E221749A2Bull);
        assert_string_equal(s.last.product_type, "iPhone12,1");
        udid_join_identity(&j, UDID, &id); /* said again: no second attach */
        assert_int_equal(s.attaches, 1);
        udid_join_release(&j);
    }
}

static void either_half_leaving_detaches(void **state)
{
    struct seen s = { 0 };
    struct udid_join j;
    udid_join_init(&j, on_attach, on_detach, &s);
    struct unit_desc id = identity(42);
    udid_join_presence(&j, UDID, "1-1.3");
    udid_join_identity(&j, UDID, &id);
    udid_join_identity_gone(&j, UDID); /* left usbmuxd (e.g. rebooting into recovery) */
    assert_int_equal(s.detaches, 1);
    assert_string_equal(s.detached_path, "1-1.3");
    assert_true(s.detached_ecid == 42);
    udid_join_presence_gone(&j, UDID);
    assert_int_equal(s.detaches, 1); /* not twice */
    assert_int_equal(j.n, 0);         /* forgotten */
    udid_join_presence(&j, UDID, "1-1.3");
    udid_join_identity(&j, UDID, &id);
    udid_join_presence_gone(&j, UDID);
    assert_int_equal(s.detaches, 2);
    udid_join_release(&j);
}

static void a_replugged_unit_moves_port(void **state)
{
    struct seen s = { 0 };
    struct udid_join j;
    udid_join_init(&j, on_attach, on_detach, &s);
    struct unit_desc id = identity(42);
    udid_join_identity(&j, UDID, &id);
    udid_join_presence(&j, UDID, "1-1.3");
    udid_join_presence(&j, UDID, "1-1.4");
    assert_int_equal(s.detaches, 1);
    assert_string_equal(s.detached_path, "1-1.3");
    assert_int_equal(s.attaches, 2);
    assert_string_equal(s.last.path, "1-1.4");
    udid_join_release(&j);
}

static void limits_are_refused_not_truncated(void **state)
{
    struct seen s = { 0 };
    struct udid_join j;
    udid_join_init(&j, on_attach, on_detach, &s);
    char udid[64];
    for (int i = 0; i < JOIN_MAX; i++) {
        snprintf(udid, sizeof udid, "u%d", i);
        assert_int_equal(udid_join_presence(&j, udid, "1-1"), 0);
    }
    assert_int_equal(udid_join_presence(&j, "one-too-many", "1-1"), -1);
    assert_int_equal(udid_join_presence(&j, "", "1-1"), -1);
    char longer[80];
    memset(longer, 'a', sizeof longer - 1);
    longer[sizeof longer - 1] = '\0';
    udid_join_presence_gone(&j, "u0");
    assert_int_equal(udid_join_presence(&j, longer, "1-1"), -1);
    udid_join_release(&j);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(attached_once_both_halves_are_known_in_either_order),
        cmocka_unit_test(either_half_leaving_detaches),
        cmocka_unit_test(a_replugged_unit_moves_port),
        cmocka_unit_test(limits_are_refused_not_truncated),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
