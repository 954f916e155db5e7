/* test_world — the simulated rack in motion: bandwidth per root bus, restores
 * ending in the right state, the operator's moves. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lockdown.h"
#include "fr_mux_wire.h"
#include "world.h"

struct sink {
    int exits, codes[8];
    void *owners[8];
    int attaches, detaches;
    char last_err[128];
};

static void on_unit(void *arg, const char *op, int port, int unit)
{
    struct sink *s = arg;
    s->attaches += strcmp(op, "attach") == 0;
    s->detaches += strcmp(op, "detach") == 0;
}

static void on_out(void *arg, void *owner, int stream, const char *text)
{
    struct sink *s = arg;
    if ((stream == 2 || strncmp(text, "Status: ", 8) == 0) && !strstr(text, "Unable to restore"))
        snprintf(s->last_err, sizeof s->last_err, "%s", text);
}

static void on_exit_cb(void *arg, void *owner, int code)
{
    struct sink *s = arg;
    if (s->exits < 8) {
        s->owners[s->exits] = owner;
        s->codes[s->exits] = code;
    }
    s->exits++;
}

/* Two hosts, one port each, both on "bus 1" of their own host; data phase only. */
static const char *rack_text =
    "[sim]\nseed = 1\nfilesystem_mb = 350\nbus_bandwidth_mbps = 35\ndetect_s = 0\nprepare_s = 0\n"
    "verify_s = 0\nflash_s = 0\nbaseband_s = 0\nfinish_s = 0\nreattach_s = 5\nmove_s = 5\n"
    "[hub A.1]\nhost = A\nbus = 1\nports = 2\n[hub B.1]\nhost = B\nbus = 1\nports = 2\n"
    "[host A]\nfill = no\n[host B]\nfill = no\n"
    "[unit 0x0000000000000A01]\nat = A-01\n[unit 0x0000000000000B01]\nat = B-01\n";

static struct world *make_world_from(struct sink *s, const char *text)
{
    char path[] = "/tmp/fr-test-world-XXXXXX";
    int fd = mkstemp(path);
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
    struct rack *r = calloc(1, sizeof *r);
    char err[256];
    int rc = rack_load(path, r, err, sizeof err);
    unlink(path);
    if (rc)
        fail_msg("%s", err);
    struct world_io io = { on_unit, on_out, on_exit_cb, s };
    return world_new(r, &io);
}

static struct world *make_world(struct sink *s)
{
    return make_world_from(s, rack_text);
}

static void drop_world(struct world *w)
{
    struct rack *r = world_rack(w);
    world_destroy(&w); /* releases the rack's contents; the struct is ours */
    free(r);
}

static double run_until_exits(struct world *w, struct sink *s, int n)
{
    for (int i = 0; i < 10000 && s->exits < n; i++)
        world_tick(w, 0.1);
    return world_now(w);
}

static void buses_of_different_hosts_do_not_share_bandwidth(void **state)
{
    struct sink s = { 0 };
    struct world *w = make_world(&s);
    int a = 1, b = 2;
    world_restore_start(w, &a, 0xA01, 1, NULL, NULL);
    world_restore_start(w, &b, 0xB01, 1, NULL, NULL);
    double t = run_until_exits(w, &s, 2);
    assert_int_equal(s.codes[0], 0);
    assert_int_equal(s.codes[1], 0);
    /* 350 MB at 35 MB/s each: 10 s, not 20 s */
    assert_true(t > 9.5 && t < 11.5);
    struct rack *r = world_rack(w);
    world_destroy(&w); /* releases the rack's contents; the struct is ours */
    free(r);
}

static void units_on_one_bus_share_it(void **state)
{
    struct sink s = { 0 };
    struct world *w = make_world(&s);
    char err[128];
    int a = 1, b = 2;
    /* move B's unit next to A's, on A's bus */
    assert_int_equal(world_move(w, 0xB01, 1, 0, err, sizeof err), 0); /* port index 1 = A-02 */
    run_until_exits(w, &s, 0);
    for (int i = 0; i < 100; i++)
        world_tick(w, 0.1);
    assert_int_equal(s.attaches, 1);
    world_restore_start(w, &a, 0xA01, 1, NULL, NULL);
    world_restore_start(w, &b, 0xB01, 1, NULL, NULL);
    double t0 = world_now(w);
    double t = run_until_exits(w, &s, 2) - t0;
    assert_true(t > 19.5 && t < 21.5);
    struct rack *r = world_rack(w);
    world_destroy(&w); /* releases the rack's contents; the struct is ours */
    free(r);
}

static void a_busy_unit_cannot_be_restored_twice(void **state)
{
    struct sink s = { 0 };
    struct world *w = make_world(&s);
    int a = 1, b = 2;
    world_restore_start(w, &a, 0xA01, 1, NULL, NULL);
    world_restore_start(w, &b, 0xA01, 1, NULL, NULL);
    assert_int_equal(s.exits, 1); /* the second one failed at once */
    assert_ptr_equal(s.owners[0], &b);
    assert_int_not_equal(s.codes[0], 0);
    world_restore_abort(w, &a);
    assert_int_equal(world_active(w), 0);
    struct rack *r = world_rack(w);
    world_destroy(&w); /* releases the rack's contents; the struct is ours */
    free(r);
}

/* One host, one bus: hub A.1 with two ports, hub A.2 with one. */
#define ONE_BUS_TWO_HUBS                                                                           \
    "detect_s = 0\nprepare_s = 0\nverify_s = 0\nflash_s = 0\nbaseband_s = 0\nfinish_s = 0\n"       \
    "[hub A.1]\nhost = A\nbus = 1\nports = 2\n[hub A.2]\nhost = A\nbus = 1\nports = 1\n"          \
    "[host A]\nfill = yes\n"

static void hub_uplinks_and_phone_ceilings_limit_bandwidth(void **state)
{
    struct sink s = { 0 };
    struct world *w = make_world_from(&s, "[sim]\nfilesystem_mb = 100\nbus_bandwidth_mbps = 35\n"
                                          "hub_bandwidth_mbps = 10\nunit_max_mbps = 8\n"
                                          ONE_BUS_TWO_HUBS);
    struct rack *r = world_rack(w);
    int o[3];
    for (int i = 0; i < 3; i++)
        world_restore_start(w, &o[i], r->units[i].ecid, 1, NULL, NULL);
    /* A.2's one phone: its own ceiling of 8 MB/s, 12.5 s; A.1's two: 10 / 2 = 5 each, 20 s */
    double first = run_until_exits(w, &s, 1);
    assert_true(first > 12 && first < 13.5);
    assert_ptr_equal(s.owners[0], &o[2]);
    double last = run_until_exits(w, &s, 3);
    assert_true(last > 19.5 && last < 21);
    drop_world(w);
}

static void one_technician_takes_moves_in_turn(void **state)
{
    struct sink s = { 0 };
    struct world *w = make_world_from(&s, "[sim]\nfilesystem_mb = 100\ntechnicians = 1\n"
                                          "walk_s = 10\nplug_s = 5\nbuttons_s = 20\n"
                                          "[hub A.1]\nhost = A\nbus = 1\nports = 4\n"
                                          "[host A]\nfill = no\n[unit 0x0A01]\nat = A-01\n"
                                          "[unit 0x0A02]\nat = A-02\n");
    char err[128];
    assert_int_equal(world_move(w, 0xA01, 2, 0, err, sizeof err), 0);
    assert_int_equal(world_move(w, 0xA02, 3, 1, err, sizeof err), 0);
    int detaches_at_9 = 0, attaches_at_16 = 0, attaches_at_49 = 0;
    for (int i = 1; i <= 600; i++) {
        world_tick(w, 0.1);
        if (i == 90)
            detaches_at_9 = s.detaches; /* still walking */
        if (i == 160)
            attaches_at_16 = s.attaches; /* the first move is done, the second under way */
        if (i == 490)
            attaches_at_49 = s.attaches; /* 15 + 10 + 5 + 20 = 50 s: not yet */
    }
    assert_int_equal(detaches_at_9, 0);
    assert_int_equal(attaches_at_16, 1);
    assert_int_equal(attaches_at_49, 1);
    assert_int_equal(s.attaches, 2);
    const struct world_stats *st = world_stats(w);
    assert_int_equal(st->touches, 2);
    assert_true(st->tech_busy_s == 15 + 35);
    assert_true(st->tech_wait_s > 14.9 && st->tech_wait_s < 15.2);
    assert_int_equal(world_rack(w)->units[1].mode, 1); /* into DFU with its buttons */
    drop_world(w);
}

static void phone_faults_fail_in_their_phase(void **state)
{
    static const char *healths[] = { "prepare", "verify", "flash" };
    static const char *lines[] = { "ERROR: Device failed to enter restore mode",
                                   "Status: Verification Error", "ERROR: Failed to mount filesystems" };
    static const double after[][2] = { { 5, 15 }, { 25, 45 }, { 45, 65 } };
    for (int i = 0; i < 3; i++) {
        char text[512];
        snprintf(text, sizeof text, "[sim]\nfilesystem_mb = 100\nbus_bandwidth_mbps = 10\n"
                 "detect_s = 5\nprepare_s = 10\nverify_s = 20\nflash_s = 20\n[hub A.1]\nhost = A\n"
                 "ports = 1\n[host A]\nfill = no\n[unit 0x0A01]\nat = A-01\nhealth = %s\n",
                 healths[i]);
        struct sink s = { 0 };
        struct world *w = make_world_from(&s, text);
        int o;
        world_restore_start(w, &o, 0xA01, 1, NULL, NULL);
        double t = run_until_exits(w, &s, 1);
        assert_int_not_equal(s.codes[0], 0);
        assert_string_equal(s.last_err, lines[i]);
        /* prepare runs 5-15 s, data 15-25 s, verify 25-45 s, flash 45-65 s */
        assert_true(t > after[i][0] && t < after[i][1]);
        assert_int_equal(world_stats(w)->phase_failures, 1);
        assert_int_equal(world_rack(w)->units[0].port, 0); /* still on its port */
        drop_world(w);
    }
}

static void oversubscription_can_count_every_restore_on_the_bus(void **state)
{
    static const char *counts[] = { "data", "all" };
    int lost[2];
    for (int i = 0; i < 2; i++) {
        char text[512];
        snprintf(text, sizeof text, "[sim]\nfilesystem_mb = 100\noversubscribe_at = 1\n"
                 "oversubscribe_fail = 1\noversubscribe_counts = %s\n" ONE_BUS_TWO_HUBS,
                 counts[i]);
        struct sink s = { 0 };
        struct world *w = make_world_from(&s, text);
        struct rack *r = world_rack(w);
        int o[2];
        for (int k = 0; k < 2; k++)
            world_restore_start(w, &o[k], r->units[k].ecid, 1, NULL, NULL);
        run_until_exits(w, &s, 2);
        lost[i] = world_stats(w)->link_lost;
        assert_int_equal(world_stats(w)->peak_on_bus, 2);
        drop_world(w);
    }
    assert_int_equal(lost[0], 1); /* the second to enter the data phase makes two */
    assert_int_equal(lost[1], 2); /* both see two restores on the bus */
}

/* The next tray: a phone waiting for a port is plugged in there once the unit on it has
 * been moved to another port, not before, and only once. */
static void the_next_tray_takes_a_port_its_unit_left(void **state)
{
    struct sink s = { 0 };
    char text[1024], err[128];
    snprintf(text, sizeof text, "%s[unit 0x0000000000000A09]\narrive_at = A-01\n", rack_text);
    struct world *w = make_world_from(&s, text);
    struct rack *r = world_rack(w);
    int a01 = rack_find_port_label(r, "A-01"), next = rack_find_unit(r, 0xA09);
    assert_int_equal(r->units[next].port, -1);
    for (int i = 0; i < 100; i++)
        world_tick(w, 0.1);
    assert_int_equal(s.attaches, 0); /* A-01 is taken: it waits */
    assert_int_equal(world_move(w, 0xA01, rack_find_port_label(r, "A-02"), 0, err, sizeof err), 0);
    for (int i = 0; i < 100; i++)
        world_tick(w, 0.1);
    assert_int_equal(s.attaches, 2); /* the moved unit on A-02, the next tray's on A-01 */
    assert_int_equal(r->ports[a01].unit, next);
    assert_int_equal(r->units[next].mode, 2);
    /* moved off again: nobody else is waiting for A-01 */
    assert_int_equal(world_move(w, 0xA09, rack_find_port_label(r, "B-02"), 0, err, sizeof err), 0);
    for (int i = 0; i < 100; i++)
        world_tick(w, 0.1);
    assert_int_equal(s.attaches, 3);
    assert_int_equal(r->ports[a01].unit, -1);
    drop_world(w);

    /* a unit moved while it is off the bus (it lost the link and has not come back yet)
     * left its port too: the next tray's phone takes it */
    struct sink s2 = { 0 };
    w = make_world_from(&s2, text);
    r = world_rack(w);
    int o = 1;
    world_restore_start(w, &o, 0xA01, 1, NULL, NULL);
    assert_int_equal(world_move(w, 0xA01, rack_find_port_label(r, "A-02"), 0, err, sizeof err), 0);
    assert_int_equal(r->units[rack_find_unit(r, 0xA01)].port, -1); /* pulled out mid-restore */
    for (int i = 0; i < 100; i++)
        world_tick(w, 0.1);
    assert_int_equal(r->ports[a01].unit, next);
    drop_world(w);
}

/* A finished restore leaves the unit running what the IPSW installs, in normal mode; one
 * that stays in recovery or says another build does what its rack file says. */
static void a_restored_unit_boots_what_was_installed(void **state)
{
    struct sink s = { 0 };
    char text[1024];
    snprintf(text, sizeof text, "%s[unit 0x0000000000000A02]\nat = A-02\nafter_restore = recovery\n"
             "[unit 0x0000000000000B02]\nat = B-02\nreports_build = 22C999\n", rack_text);
    struct world *w = make_world_from(&s, text);
    struct rack *r = world_rack(w);
    int o[4] = { 0 };
    uint64_t ecids[4] = { 0xA01, 0xA02, 0xB02, 0xB01 };
    for (int i = 0; i < 3; i++)
        world_restore_start(w, &o[i], ecids[i], 1, "18.2", "22C152");
    world_restore_start(w, &o[3], 0xB01, 1, NULL, NULL); /* no IPSW manifest: it keeps its own */
    run_until_exits(w, &s, 4);
    for (int i = 0; i < 4; i++)
        assert_int_equal(s.codes[i], 0);
    const struct rack_unit *a = &r->units[rack_find_unit(r, 0xA01)];
    assert_string_equal(a->ios, "18.2");
    assert_string_equal(rack_unit_build(a), "22C152");
    assert_int_equal(a->mode, 4);
    const struct rack_unit *stays = &r->units[rack_find_unit(r, 0xA02)];
    assert_int_equal(stays->mode, 2);
    const struct rack_unit *other = &r->units[rack_find_unit(r, 0xB02)];
    assert_string_equal(other->ios, "18.2");
    assert_string_equal(rack_unit_build(other), "22C999");
    assert_int_equal(other->mode, 4);
    const struct rack_unit *own = &r->units[rack_find_unit(r, 0xB01)];
    assert_string_equal(own->ios, "17.5");
    assert_string_equal(rack_unit_build(own), "21F90");
    drop_world(w);
}

/* What a session with the pair record this host holds gets from the unit. */
static const char *start_session_with_held_record(const struct rack_unit *u)
{
    static char said[64];
    plist_t rec = lockdown_pair_record(u, "BUID");
    assert_non_null(rec); /* the host keeps its record whatever the unit did */
    plist_t req = plist_new_dict();
    plist_dict_set_item(req, "Request", plist_new_string("StartSession"));
    plist_dict_set_item(req, "HostID", plist_new_string(mux_dict_string(rec, "HostID")));
    struct lockdown_session ls = { 0 };
    enum lockdown_effect e;
    plist_t a = lockdown_answer(&ls, u, "BUID", req, &e);
    const char *err = mux_dict_string(a, "Error");
    snprintf(said, sizeof said, "%s", err ? err : mux_dict_string(a, "SessionID") ? "session" : "?");
    plist_free(a);
    plist_free(req);
    plist_free(rec);
    return said;
}

/* An erase removes the unit's side of its pairings: the host's record no longer opens a
 * session (InvalidHostID), so neither the IMEI nor EnterRecovery on iOS 14.5+ work until
 * the unit is trusted again; an update keeps them. */
static void an_erase_leaves_the_unit_no_longer_trusting_the_host(void **state)
{
    struct sink s = { 0 };
    struct world *w = make_world(&s);
    struct rack *r = world_rack(w);
    struct rack_unit *erased = &r->units[rack_find_unit(r, 0xA01)];
    struct rack_unit *updated = &r->units[rack_find_unit(r, 0xB01)];
    erased->paired = updated->paired = 1;
    assert_string_equal(start_session_with_held_record(erased), "session");
    int a = 1, b = 2;
    world_restore_start(w, &a, 0xA01, 1, "18.2", "22C152");
    world_restore_start(w, &b, 0xB01, 0, "18.2", "22C152");
    run_until_exits(w, &s, 2);
    assert_int_equal(s.codes[0], 0);
    assert_int_equal(s.codes[1], 0);
    assert_int_equal(erased->mode, 4);
    assert_false(rack_unit_trusts_host(erased));
    assert_string_equal(start_session_with_held_record(erased), "InvalidHostID");
    assert_false(rack_unit_allows_recovery(erased)); /* 18.2: recovery needs the session */
    assert_true(rack_unit_trusts_host(updated));
    assert_string_equal(start_session_with_held_record(updated), "session");
    drop_world(w);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(buses_of_different_hosts_do_not_share_bandwidth),
        cmocka_unit_test(units_on_one_bus_share_it),
        cmocka_unit_test(a_busy_unit_cannot_be_restored_twice),
        cmocka_unit_test(hub_uplinks_and_phone_ceilings_limit_bandwidth),
        cmocka_unit_test(one_technician_takes_moves_in_turn),
        cmocka_unit_test(phone_faults_fail_in_their_phase),
        cmocka_unit_test(oversubscription_can_count_every_restore_on_the_bus),
        cmocka_unit_test(a_restored_unit_boots_what_was_installed),
        cmocka_unit_test(an_erase_leaves_the_unit_no_longer_trusting_the_host),
        cmocka_unit_test(the_next_tray_takes_a_port_its_unit_left),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
