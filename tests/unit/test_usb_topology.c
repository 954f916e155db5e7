/* test_usb_topology — the host's USB tree read from sysfs trees in the kernel's layout and hub
 * descriptor bytes (tests/fixtures/sysfs), and the power-cycle decision on it. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fr_err.h"
#include "usb_power.h"
#include "usb_topology.h"

static char tree_dir[512];

/* The hub descriptor a hub would answer: the tree's hubdesc/NAME file. */
static int fixture_hubdesc(void *arg, const struct usb_hub *h, uint8_t *buf, size_t cap)
{
    char path[700];
    snprintf(path, sizeof path, "%s/hubdesc/%s", (const char *)arg, h->name);
    FILE *f = fopen(path, "rb");
    if (!f)
        return FR_ENOTFOUND;
    size_t n = fread(buf, 1, cap, f);
    fclose(f);
    return (int)n;
}

static struct usb_topology *load(const char *tree)
{
    snprintf(tree_dir, sizeof tree_dir, "%s/sysfs/%s", getenv("FR_FIXTURES"), tree);
    struct usb_topology *t = NULL;
    char err[256] = "";
    assert_int_equal(usb_topology_read(tree_dir, fixture_hubdesc, tree_dir, &t, err, sizeof err), 0);
    assert_non_null(t);
    return t;
}

static const struct usb_hub *hub(const struct usb_topology *t, const char *name)
{
    for (size_t i = 0; i < t->nhubs; i++)
        if (strcmp(t->hubs[i].name, name) == 0)
            return &t->hubs[i];
    fail_msg("no hub %s", name);
    return NULL;
}

static const struct usb_port *port(const struct usb_topology *t, const char *path)
{
    int i = usb_topology_port(t, path);
    if (i < 0)
        fail_msg("no port %s", path);
    return &t->ports[i];
}

/* The rack ports, space separated, in topology order. */
static void rack_ports(const struct usb_topology *t, char *buf, size_t len)
{
    buf[0] = '\0';
    for (size_t i = 0; i < t->nports; i++)
        if (usb_topology_is_rack_port(t, (int)i))
            snprintf(buf + strlen(buf), len - strlen(buf), "%s%s", buf[0] ? " " : "", t->ports[i].path);
}

static void nested_hubs_to_depth_four(void **state)
{
    struct usb_topology *t = load("nested");
    assert_int_equal(t->nhubs, 4);
    assert_int_equal(hub(t, "usb1")->tier, 0);
    assert_int_equal(hub(t, "1-1.4.2")->tier, 3);
    assert_int_equal(hub(t, "1-1.4.2")->bus, 1);
    assert_int_equal(hub(t, "1-1.4.2")->switching, USB_SWITCH_GANGED);
    assert_int_equal(hub(t, "1-1.4")->switching, USB_SWITCH_PER_PORT);
    assert_int_equal(port(t, "1-2")->depth, 1);
    assert_int_equal(port(t, "1-1.3")->depth, 2);
    assert_int_equal(port(t, "1-1.4.2.3")->depth, 4);
    assert_string_equal(port(t, "1-2")->connect_type, "not used");
    assert_int_equal(t->hubs[port(t, "1-1.4.2")->child_hub].tier, 3);
    assert_int_equal(hub(t, "1-1.4.2")->parent, (int)(hub(t, "1-1.4") - t->hubs));
    char list[512];
    rack_ports(t, list, sizeof list);
    assert_string_equal(list, "1-1.1 1-1.2 1-1.3 1-1.4.1 1-1.4.3 1-1.4.4 "
                              "1-1.4.2.1 1-1.4.2.2 1-1.4.2.3 1-1.4.2.4");
    usb_topology_destroy(&t);
    assert_null(t);
}

static void check_usb3_pair(const char *tree)
{
    struct usb_topology *t = load(tree);
    assert_int_equal(t->nhubs, 6);
    assert_int_equal(hub(t, "1-1")->peer, (int)(hub(t, "2-1") - t->hubs));
    assert_int_equal(hub(t, "2-1.4")->peer, (int)(hub(t, "1-1.4") - t->hubs));
    assert_int_equal(hub(t, "usb2")->peer, (int)(hub(t, "usb1") - t->hubs));
    assert_true(hub(t, "2-1")->superspeed);
    assert_false(hub(t, "1-1")->superspeed);
    assert_string_equal(t->ports[port(t, "1-1.2")->peer].path, "2-1.2");
    assert_string_equal(t->ports[port(t, "2-1.4.3")->peer].path, "1-1.4.3");
    int ss = usb_topology_port(t, "2-1.2");
    assert_string_equal(t->ports[usb_topology_primary(t, ss)].path, "1-1.2");
    assert_true(port(t, "1-1.4")->internal);
    assert_true(port(t, "2-1.4")->internal);
    assert_false(port(t, "1-1.3")->internal);
    char list[512];
    rack_ports(t, list, sizeof list);
    assert_string_equal(list, "1-1.1 1-1.2 1-1.3 1-1.4.1 1-1.4.2 1-1.4.3 1-1.4.4 1-2");
    usb_topology_destroy(&t);
}

static void usb3_hub_halves_paired_by_peer_links(void **state)
{
    check_usb3_pair("usb3pair");
}

static void usb3_hub_halves_paired_without_peer_links(void **state)
{
    check_usb3_pair("usb3pair_nopeer");
}

static void switching_from_the_descriptor(void **state)
{
    struct usb_topology *t = load("switching");
    assert_int_equal(hub(t, "1-1")->switching, USB_SWITCH_GANGED);
    assert_int_equal(hub(t, "1-2")->switching, USB_SWITCH_PER_PORT);
    assert_int_equal(hub(t, "1-3")->switching, USB_SWITCH_NONE);
    assert_true(port(t, "1-2.1")->has_disable);
    assert_false(port(t, "1-1.1")->has_disable);
    usb_topology_destroy(&t);
}

static void hub_descriptor_bytes(void **state)
{
    int n;
    enum usb_switching sw;
    const uint8_t usb2[] = { 0x09, 0x29, 0x04, 0xe9, 0x00, 0x32, 0x64, 0x00, 0xff };
    assert_int_equal(usb_hubdesc_parse(usb2, sizeof usb2, &n, &sw), 0);
    assert_int_equal(n, 4);
    assert_int_equal(sw, USB_SWITCH_PER_PORT); /* 0x00e9: bits 1:0 = 01 */
    const uint8_t usb3[] = { 0x0c, 0x2a, 0x07, 0x08, 0x00, 0x32, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00 };
    assert_int_equal(usb_hubdesc_parse(usb3, sizeof usb3, &n, &sw), 0);
    assert_int_equal(n, 7);
    assert_int_equal(sw, USB_SWITCH_GANGED);
    const uint8_t none[] = { 0x09, 0x29, 0x04, 0x03, 0x00, 0x32, 0x64, 0x00, 0xff };
    assert_int_equal(usb_hubdesc_parse(none, sizeof none, &n, &sw), 0);
    assert_int_equal(sw, USB_SWITCH_NONE); /* 11 is "no switching" too */
    const uint8_t device[] = { 0x12, 0x01, 0x00, 0x02, 0x09 };
    assert_int_equal(usb_hubdesc_parse(device, sizeof device, &n, &sw), FR_EINVAL);
    assert_int_equal(usb_hubdesc_parse(usb2, 4, &n, &sw), FR_EINVAL);
}

static void no_usb_subsystem_is_a_clear_error(void **state)
{
    struct usb_topology *t = NULL;
    char err[256] = "";
    assert_int_equal(usb_topology_read("/nonexistent-host-root", NULL, NULL, &t, err, sizeof err),
                     FR_ENOTFOUND);
    assert_null(t);
    assert_non_null(strstr(err, "no USB subsystem: cannot open '/nonexistent-host-root/sys/bus/usb/devices'"));
}

static void malformed_attribute_names_the_file(void **state)
{
    char root[] = "/tmp/fr-test-usb-XXXXXX", cmd[600];
    assert_non_null(mkdtemp(root));
    snprintf(cmd, sizeof cmd, "cp -r %s/sysfs/nested/. %s && echo bogus > %s/sys/bus/usb/devices/1-1.4/busnum",
             getenv("FR_FIXTURES"), root, root);
    assert_int_equal(system(cmd), 0);
    struct usb_topology *t = NULL;
    char err[512] = "";
    assert_int_equal(usb_topology_read(root, NULL, NULL, &t, err, sizeof err), FR_EIO);
    assert_null(t);
    assert_non_null(strstr(err, "/sys/bus/usb/devices/1-1.4/busnum': expected a number up to 255, got 'bogus'"));
    snprintf(cmd, sizeof cmd, "rm -rf %s", root);
    assert_int_equal(system(cmd), 0);
}

static void power_plan_on_a_per_port_hub(void **state)
{
    struct usb_topology *t = load("nested");
    struct usb_power_plan plan;
    char err[256] = "";
    assert_int_equal(usb_power_plan(t, "1-1.2", &plan, err, sizeof err), 0);
    assert_int_equal(plan.n, 1);
    assert_int_equal(plan.steps[0].method, USB_POWER_HUB_REQUEST); /* no disable file here */
    assert_string_equal(plan.steps[0].hub, "1-1");
    assert_int_equal(plan.steps[0].bus, 1);
    assert_int_equal(plan.steps[0].devnum, 2);
    assert_int_equal(plan.steps[0].port, 2);
    usb_topology_destroy(&t);
}

static void power_plan_switches_both_halves_usb3_first(void **state)
{
    struct usb_topology *t = load("usb3pair");
    struct usb_power_plan plan;
    char err[256] = "";
    assert_int_equal(usb_power_plan(t, "1-1.4.3", &plan, err, sizeof err), 0);
    assert_int_equal(plan.n, 2);
    assert_string_equal(plan.steps[0].path, "2-1.4.3");
    assert_string_equal(plan.steps[1].path, "1-1.4.3");
    assert_int_equal(plan.steps[0].method, USB_POWER_SYSFS);
    assert_int_equal(plan.steps[1].port, 3);
    /* named by its USB 3 half, the same two steps */
    struct usb_power_plan again;
    assert_int_equal(usb_power_plan(t, "2-1.4.3", &again, err, sizeof err), 0);
    assert_memory_equal(&plan, &again, sizeof plan);
    usb_topology_destroy(&t);
}

static void refuse(struct usb_topology *t, const char *path, int code, const char *why)
{
    struct usb_power_plan plan;
    char err[256] = "";
    assert_int_equal(usb_power_plan(t, path, &plan, err, sizeof err), code);
    if (!strstr(err, why))
        fail_msg("'%s' does not say '%s'", err, why);
    assert_int_equal(plan.n, 0);
}

static void power_plan_refusals(void **state)
{
    struct usb_topology *t = load("usb3pair");
    refuse(t, "1-1.4", FR_EINVAL, "port '1-1.4' is the internal daisy-chain port of hub '1-1'");
    refuse(t, "2-1.4", FR_EINVAL, "internal daisy-chain port of hub '2-1'");
    refuse(t, "1-1", FR_EINVAL, "port '1-1' has hub '1-1' on it");
    refuse(t, "9-9", FR_ENOTFOUND, "no port '9-9' on this host");
    usb_topology_destroy(&t);
    t = load("switching");
    refuse(t, "1-1.3", FR_EINVAL, "port '1-1.3': hub '1-1' switches all its "
                                  "ports together (ganged");
    refuse(t, "1-3.1", FR_EINVAL, "hub '1-3' cannot switch port power (wHubCharacteristics bits 1:0 = 1x)");
    usb_topology_destroy(&t);
    t = load("nested");
    refuse(t, "1-1.4.2.3", FR_EINVAL, "hub '1-1.4.2' switches all its ports together");
    usb_topology_destroy(&t);
    /* no descriptor (a hub that cannot be opened): unknown, refused */
    char err[256];
    assert_int_equal(usb_topology_read(tree_dir, NULL, NULL, &t, err, sizeof err), 0);
    refuse(t, "1-1.2", FR_EINVAL, "hub '1-1' did not give its hub descriptor");
    usb_topology_destroy(&t);
}

static void read_file(const char *path, char *buf, size_t len)
{
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    size_t n = fread(buf, 1, len - 1, f);
    buf[n] = '\0';
    fclose(f);
}

static void power_apply_writes_the_kernel_disable_files(void **state)
{
    char root[] = "/tmp/fr-test-usb-XXXXXX", cmd[600], got[8];
    assert_non_null(mkdtemp(root));
    snprintf(cmd, sizeof cmd, "cp -r %s/sysfs/usb3pair/. %s", getenv("FR_FIXTURES"), root);
    assert_int_equal(system(cmd), 0);
    struct usb_topology *t = NULL;
    char err[256] = "", f2[700], f3[700];
    assert_int_equal(usb_topology_read(root, fixture_hubdesc, root, &t, err, sizeof err), 0);
    struct usb_power_plan plan;
    assert_int_equal(usb_power_plan(t, "1-1.2", &plan, err, sizeof err), 0);
    snprintf(f2, sizeof f2, "%s/sys/bus/usb/devices/1-1:1.0/1-1-port2/disable", root);
    snprintf(f3, sizeof f3, "%s/sys/bus/usb/devices/2-1:1.0/2-1-port2/disable", root);
    assert_int_equal(usb_power_apply(&plan, 0, root, NULL, err, sizeof err), 0);
    read_file(f2, got, sizeof got);
    assert_string_equal(got, "1");
    read_file(f3, got, sizeof got);
    assert_string_equal(got, "1");
    assert_int_equal(usb_power_apply(&plan, 1, root, NULL, err, sizeof err), 0);
    read_file(f2, got, sizeof got);
    assert_string_equal(got, "0");
    read_file(f3, got, sizeof got);
    assert_string_equal(got, "0");
    /* a file the kernel refuses to write: the error names it */
    snprintf(cmd, sizeof cmd, "rm -rf %s/sys/bus/usb/devices/2-1:1.0", root);
    assert_int_equal(system(cmd), 0);
    assert_int_equal(usb_power_apply(&plan, 0, root, NULL, err, sizeof err), FR_EIO);
    assert_non_null(strstr(err, "2-1-port2/disable': No such file or directory"));
    usb_topology_destroy(&t);
    snprintf(cmd, sizeof cmd, "rm -rf %s", root);
    assert_int_equal(system(cmd), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(nested_hubs_to_depth_four),
        cmocka_unit_test(usb3_hub_halves_paired_by_peer_links),
        cmocka_unit_test(usb3_hub_halves_paired_without_peer_links),
        cmocka_unit_test(switching_from_the_descriptor),
        cmocka_unit_test(hub_descriptor_bytes),
        cmocka_unit_test(no_usb_subsystem_is_a_clear_error),
        cmocka_unit_test(malformed_attribute_names_the_file),
        cmocka_unit_test(power_plan_on_a_per_port_hub),
        cmocka_unit_test(power_plan_switches_both_halves_usb3_first),
        cmocka_unit_test(power_plan_refusals),
        cmocka_unit_test(power_apply_writes_the_kernel_disable_files),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
