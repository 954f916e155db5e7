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

#include "world.h"

struct sink {
    int exits, codes[8];
    void *owners[8];
    int attaches, detaches;
};

static void on_unit(void *arg, const char *op, int port, int unit)
{
    struct sink *s = arg;
    s->attaches += strcmp(op, "attach") == 0;
    s->detaches += strcmp(op, "detach") == 0;
}

static void on_out(void *arg, void *owner, int stream, const char *text)
{
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

static struct world *make_world(struct sink *s)
{
    char path[] = "/tmp/fr-test-world-XXXXXX";
    int fd = mkstemp(path);
    assert_int_equal(write(fd, rack_text, strlen(rack_text)), (ssize_t)strlen(rack_text));
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
    world_restore_start(w, &a, 0xA01, 1);
    world_restore_start(w, &b, 0xB01, 1);
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
    world_restore_start(w, &a, 0xA01, 1);
    world_restore_start(w, &b, 0xB01, 1);
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
    world_restore_start(w, &a, 0xA01, 1);
    world_restore_start(w, &b, 0xA01, 1);
    assert_int_equal(s.exits, 1); /* the second one failed at once */
    assert_ptr_equal(s.owners[0], &b);
    assert_int_not_equal(s.codes[0], 0);
    world_restore_abort(w, &a);
    assert_int_equal(world_active(w), 0);
    struct rack *r = world_rack(w);
    world_destroy(&w); /* releases the rack's contents; the struct is ours */
    free(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(buses_of_different_hosts_do_not_share_bandwidth),
        cmocka_unit_test(units_on_one_bus_share_it),
        cmocka_unit_test(a_busy_unit_cannot_be_restored_twice),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
