/* test_seams_usb — the usb backend composed on this machine: libusb and
 * libirecovery start for real (and see no devices), the tree comes from a sysfs
 * fixture, power-cycle requests that cannot work are refused at once, and closing
 * ends every handle. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fr_err.h"
#include "seams.h"

struct seen {
    int topologies;
    size_t nports;
    struct port_desc ports[16];
    uv_loop_t *loop;
};

static void on_topology(void *arg, const struct port_desc *p, size_t n)
{
    struct seen *s = arg;
    s->topologies++;
    s->nports = n;
    memcpy(s->ports, p, (n < 16 ? n : 16) * sizeof *p);
    uv_stop(s->loop);
}

static void on_attach(void *arg, const struct unit_desc *u) {}
static void on_detach(void *arg, const char *path, uint64_t ecid) {}

static void on_bound(uv_timer_t *t)
{
    uv_stop(t->loop);
}

static int closed;

static void on_closed(struct seams *s)
{
    closed++;
}

static void composes_topology_power_and_discovery(void **state)
{
    char root[512], err[256] = "";
    snprintf(root, sizeof root, "%s/sysfs/nested", getenv("FR_FIXTURES"));
    uv_loop_t loop;
    uv_loop_init(&loop);
    struct seen seen = { .loop = &loop };
    struct seam_events ev = { on_topology, on_attach, on_detach, NULL, &seen };
    struct seams *s = NULL;
    assert_int_equal(seams_usb_new(root, "", &s, err, sizeof err), 0);
    assert_string_equal(s->name, "usb");
    assert_int_equal(s->start(s, &loop, &ev, err, sizeof err), 0);
    uv_timer_t bound;
    uv_timer_init(&loop, &bound);
    uv_timer_start(&bound, on_bound, 10000, 0);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(seen.topologies, 1);
    assert_int_equal(seen.nports, 10);
    assert_string_equal(seen.ports[9].path, "1-1.4.2.4");
    assert_string_equal(seen.ports[9].hub, "1-1.4.2");
    assert_int_equal(seen.ports[9].depth, 4);
    assert_int_equal(seen.ports[9].bus, 1);
    assert_false(seen.ports[9].power_switch);

    /* no hub here answers a descriptor request: refused at once, saying why */
    assert_int_equal(s->power_cycle(s, "1-1.2", err, sizeof err), FR_EINVAL);
    assert_non_null(strstr(err, "hub '1-1' did not give its hub descriptor"));
    assert_int_equal(s->power_cycle(s, "1-1.4", err, sizeof err), FR_EINVAL);
    assert_non_null(strstr(err, "has hub '1-1.4' on it"));
    assert_int_equal(s->power_cycle(s, "7-7", err, sizeof err), FR_ENOTFOUND);

    s->close(s, on_closed);
    uv_close((uv_handle_t *)&bound, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(closed, 1);
    seams_destroy(&s);
    assert_null(s);
    assert_int_equal(uv_loop_close(&loop), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(composes_topology_power_and_discovery),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
