/* test_seams_usb — the usb backend composed on this machine: libusb and
 * libirecovery start for real (and see no devices), the tree comes from a sysfs
 * fixture, power-cycle requests that cannot work are refused at once, a DFU unit
 * whose device may not be opened (the recorded answer LIBUSB_ERROR_ACCESS) is
 * reported needing an operator with the fix, a unit a source reports as soon as it
 * starts comes after the port list, and closing ends every handle. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "discovery.h"
#include "flashrack.pb-c.h"
#include "fr_err.h"
#include "fr_types.h"
#include "seams.h"

struct seen {
    int topologies;
    size_t nports;
    struct port_desc ports[16];
    int attaches, detaches;
    int topologies_at_attach; /* how many port lists came before the last attach */
    struct unit_desc unit;
    int stop_on_attach;
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

static void on_attach(void *arg, const struct unit_desc *u)
{
    struct seen *s = arg;
    s->attaches++;
    s->topologies_at_attach = s->topologies;
    s->unit = *u;
    if (s->stop_on_attach)
        uv_stop(s->loop);
}

static void on_detach(void *arg, const char *path, uint64_t ecid)
{
    struct seen *s = arg;
    s->detaches++;
}

static void on_bound(uv_timer_t *t)
{
    uv_stop(t->loop);
}

static int closed;

static void on_closed(struct seams *s)
{
    closed++;
}

/* The usb seams on the recorded tree sysfs/nested. */
static struct seams *nested_seams(void)
{
    char root[512], err[256] = "";
    snprintf(root, sizeof root, "%s/sysfs/nested", getenv("FR_FIXTURES"));
    struct seams *s = NULL;
    assert_int_equal(seams_usb_new(root, "", &s, err, sizeof err), 0);
    return s;
}

static void composes_topology_power_and_discovery(void **state)
{
    char err[256] = "";
    uv_loop_t loop;
    uv_loop_init(&loop);
    struct seen seen = { .loop = &loop };
    struct seam_events ev = { on_topology, on_attach, on_detach, NULL, &seen };
    struct seams *s = nested_seams();
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

/* The recorded tree's answers to opening a device: the DFU unit (bus 1, device 6)
 * is root's only, as it is on a host without the udev rule. */
static int denied_opens;

static int open_denied(void *arg, uint32_t bus, uint32_t devnum)
{
    if (bus == 1 && devnum == 6) {
        denied_opens++;
        return FR_ESYS;
    }
    return 0;
}

static void unit_that_cannot_be_opened_needs_an_operator(void **state)
{
    char err[256] = "";
    uv_loop_t loop;
    uv_loop_init(&loop);
    struct seen seen = { .loop = &loop, .stop_on_attach = 1 };
    struct seam_events ev = { on_topology, on_attach, on_detach, NULL, &seen };
    struct seams *s = nested_seams();
    seams_usb_set_open(s, open_denied, NULL);
    assert_int_equal(s->start(s, &loop, &ev, err, sizeof err), 0);
    uv_timer_t bound;
    uv_timer_init(&loop, &bound);
    uv_timer_start(&bound, on_bound, 10000, 0);
    uv_run(&loop, UV_RUN_DEFAULT); /* the topology */
    if (!seen.attaches)
        uv_run(&loop, UV_RUN_DEFAULT); /* the unit */
    assert_int_equal(seen.topologies, 1);
    assert_int_equal(seen.attaches, 1);
    assert_true(denied_opens >= 1);
    /* identified from its serial string in sysfs, which needs no open */
    assert_true(seen.unit.ecid == 0x001A2B3C4D5E6F71ull);
    assert_int_equal(seen.unit.cpid, 0x8030);
    assert_int_equal(seen.unit.bdid, 4);
    assert_string_equal(seen.unit.path, "1-1.4.2.3");
    assert_string_equal(fr_mode_name(seen.unit.mode), "dfu");
    assert_string_equal(seen.unit.reason,
                        "permission denied opening its USB device (05ac:1227, dfu mode): install "
                        "deploy/udev/60-flashrack.rules in /etc/udev/rules.d, add the agent's user "
                        "to group flashrack, then plug the unit in again");

    s->close(s, on_closed);
    uv_close((uv_handle_t *)&bound, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    seams_destroy(&s);
    assert_int_equal(seen.detaches, 0);
    assert_int_equal(uv_loop_close(&loop), 0);
}

/* A source with a unit already present: it reports it within its start, as usbmuxd's
 * listen does with the units it has, before the tree's read on the worker is back. */
static int present_start(struct discovery_source *src, uv_loop_t *loop,
                         const struct seam_events *ev, char *err, size_t errlen)
{
    struct unit_desc u = { .ecid = 0x001A2B3C4D5E6F70ull, .mode = FR__UNIT_MODE__MODE_NORMAL };
    snprintf(u.path, sizeof u.path, "1-1.1");
    ev->attach(ev->arg, &u);
    return 0;
}

static void present_close(struct discovery_source *src, void (*cb)(struct discovery_source *))
{
    cb(src);
}

static void present_destroy(struct discovery_source *src)
{
}

static void a_unit_present_at_start_comes_after_the_ports(void **state)
{
    char err[256] = "";
    uv_loop_t loop;
    uv_loop_init(&loop);
    struct seen seen = { .loop = &loop, .stop_on_attach = 1 };
    struct seam_events ev = { on_topology, on_attach, on_detach, NULL, &seen };
    struct discovery_source present = { "present", present_start, present_close, present_destroy,
                                        NULL };
    struct seams *s = nested_seams();
    assert_int_equal(seams_usb_add_source(s, &present), 0);
    assert_int_equal(s->start(s, &loop, &ev, err, sizeof err), 0);
    uv_timer_t bound;
    uv_timer_init(&loop, &bound);
    uv_timer_start(&bound, on_bound, 10000, 0);
    for (int i = 0; i < 4 && !seen.attaches; i++)
        uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(seen.attaches, 1);
    assert_int_equal(seen.topologies_at_attach, 1);
    assert_string_equal(seen.unit.path, "1-1.1");

    s->close(s, on_closed);
    uv_close((uv_handle_t *)&bound, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    seams_destroy(&s);
    assert_int_equal(uv_loop_close(&loop), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(composes_topology_power_and_discovery),
        cmocka_unit_test(unit_that_cannot_be_opened_needs_an_operator),
        cmocka_unit_test(a_unit_present_at_start_comes_after_the_ports),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
