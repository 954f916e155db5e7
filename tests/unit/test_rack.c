/* test_rack — rack files: the shipped examples load, bad ones name line and key. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fr_err.h"
#include "rack.h"

static void demo_rack_has_two_hosts_of_24(void **state)
{
    struct rack r;
    char err[512] = "";
    int rc = rack_load(FR_CONFIG_DIR "/demo-rack.ini", &r, err, sizeof err);
    if (rc)
        fail_msg("%s", err);
    assert_int_equal(r.nhosts, 2);
    assert_int_equal(r.nhubs, 4);
    assert_int_equal(r.nports, 48);
    assert_int_equal(r.nunits, 49); /* one on every port, and the next tray's for A-05 */
    int a = rack_find_host(&r, "A");
    int a20 = rack_find_port_label(&r, "A-20");
    assert_true(a >= 0 && a20 >= 0);
    assert_string_equal(r.ports[a20].path, "2-1.8");
    /* hubs are numbered per host and bus: host B's first hub on bus 1 is hub 1 there too */
    assert_string_equal(r.ports[rack_find_port_label(&r, "B-01")].path, "1-1.1");
    assert_string_equal(r.ports[rack_find_port_label(&r, "B-24")].path, "2-1.12");
    assert_int_equal(r.ports[a20].bus, 2);
    /* the dead unit placed by hand replaced the generated one */
    int dead = rack_find_unit(&r, 0x000D3ADBEEF00001ull);
    assert_true(dead >= 0);
    assert_int_equal(r.units[dead].health, HEALTH_DEAD);
    assert_int_equal(r.ports[a20].unit, dead);
    int a05 = rack_find_port_label(&r, "A-05");
    assert_true(r.ports[a05].link_fail > 0.5);
    /* the next tray's phone waits for the bad cable's port, off the rack */
    int next = rack_find_unit(&r, 0x0000000E27A50001ull);
    assert_true(next >= 0);
    assert_int_equal(r.units[next].arrive_at, a05);
    assert_int_equal(r.units[next].port, -1);
    /* identities come from the model table */
    int u1 = r.ports[rack_find_port_label(&r, "A-01")].unit;
    assert_string_equal(r.units[u1].product_type, "iPhone12,1");
    assert_string_equal(r.units[u1].board, "n104ap");
    assert_int_equal(r.units[u1].cpid, 0x8030);
    assert_int_equal(strlen(r.units[u1].serial), 12);
    rack_free(&r);
}

static void example_rack_loads(void **state)
{
    struct rack r;
    char err[512] = "";
    int rc = rack_load(FR_CONFIG_DIR "/rack-example.ini", &r, err, sizeof err);
    if (rc)
        fail_msg("%s", err);
    assert_int_equal(r.nports, 8);
    assert_true(r.sim.time_scale == 60);
    rack_free(&r);
}

static void same_seed_same_ecids(void **state)
{
    struct rack a, b;
    char err[512];
    assert_int_equal(rack_load(FR_CONFIG_DIR "/demo-rack.ini", &a, err, sizeof err), 0);
    assert_int_equal(rack_load(FR_CONFIG_DIR "/demo-rack.ini", &b, err, sizeof err), 0);
    for (size_t i = 0; i < a.nunits; i++)
        assert_true(a.units[i].ecid == b.units[i].ecid);
    for (size_t i = 1; i < a.nunits; i++)
        assert_true(a.units[i].ecid != a.units[0].ecid);
    rack_free(&a);
    rack_free(&b);
}

static void expect_error(const char *file, const char *needle1, const char *needle2)
{
    char path[1024], err[512] = "";
    snprintf(path, sizeof path, "%s/racks/%s", getenv("FR_FIXTURES"), file);
    struct rack r;
    assert_int_equal(rack_load(path, &r, err, sizeof err), FR_ECONFIG);
    if (!strstr(err, needle1) || !strstr(err, needle2))
        fail_msg("%s: error '%s' lacks '%s' or '%s'", file, err, needle1, needle2);
    assert_null(r.ports);
}

static void bad_racks_name_line_and_key(void **state)
{
    expect_error("bad_ports.ini", "bad_ports.ini:7: [hub A.1] ports", "expected an integer from 1 to 64");
    expect_error("bad_port_label.ini", "bad_port_label.ini:7: [port Z-09]", "no port labelled 'Z-09'");
    expect_error("bad_health.ini", "bad_health.ini:6: [unit 0x0000000000000042] health",
                 "expected good, dead, disk, intermittent, prepare, verify or flash, got 'poorly'");
    expect_error("bad_key.ini", "bad_key.ini:4: [hub A.1] speed", "unknown key");
    expect_error("bad_section.ini", "bad_section.ini:4: [rack]", "unknown section");
    expect_error("no_hubs.ini", "no_hubs.ini", "add a [hub NAME] section");
    expect_error("bad_ios.ini", "bad_ios.ini:7: [unit 0x0000000000000042] ios",
                 "expected an iOS version the simulator knows");
    /* one place for each thing: a port holds one unit, a hub, key or unit is described once */
    expect_error("bad_two_units_one_port.ini", "bad_two_units_one_port.ini:10: [unit 0x1B] at",
                 "expected a free port: [unit 0x1A] is there already (line 7), got 'A-02'");
    expect_error("bad_hub_twice.ini", "bad_hub_twice.ini:9:", "section [hub A.1] given twice (first at line 3)");
    expect_error("bad_ecid_two_ways.ini", "bad_ecid_two_ways.ini:9: [unit 0x001A]",
                 "unit 0x001A is already described at line 7 (as [unit 0x1A])");
    expect_error("bad_key_twice.ini", "bad_key_twice.ini:4:", "[sim] time_scale given twice (first at line 3)");
    char err[256];
    struct rack r;
    assert_int_equal(rack_load("/nonexistent/rack.ini", &r, err, sizeof err), FR_ECONFIG);
    assert_non_null(strstr(err, "cannot open '/nonexistent/rack.ini'"));
}

/* A name longer than its field is refused with the limit, never cut to fit: a cut host
 * name made a second host, a cut label prefix gave two hosts the same port labels. */
static void long_names_are_refused_not_cut(void **state)
{
    expect_error("bad_hub_host_long.ini", "bad_hub_host_long.ini:3: [hub A.1] host",
                 "expected a host name of 1 to 31 characters, got 'assembly-line-west-aisle-03-bench-12'");
    expect_error("bad_host_no_prefix.ini", "bad_host_no_prefix.ini:4: [host west-aisle-bench-1]",
                 "a host name over 14 characters needs a label_prefix");
    expect_error("bad_section_name_long.ini",
                 "bad_section_name_long.ini:2: [host assembly-line-west-aisle-03-bench-12]",
                 "is longer than 31 characters");
    char path[1024], err[512] = "";
    snprintf(path, sizeof path, "%s/racks/long_host_with_prefix.ini", getenv("FR_FIXTURES"));
    struct rack r;
    if (rack_load(path, &r, err, sizeof err))
        fail_msg("%s", err);
    assert_int_equal(r.nhosts, 2);
    assert_true(rack_find_port_label(&r, "W1-04") >= 0 && rack_find_port_label(&r, "W2-01") >= 0);
    assert_int_equal(r.ports[rack_find_port_label(&r, "W2-01")].host,
                     rack_find_host(&r, "west-aisle-bench-2"));
    rack_free(&r);
}

/* The lockdown model's keys, and UDIDs in the two real forms. */
static void normal_mode_units_have_ios_pairing_and_udids(void **state)
{
    char path[1024], err[512] = "", udid[48];
    snprintf(path, sizeof path, "%s/racks/normal_units.ini", getenv("FR_FIXTURES"));
    struct rack r;
    if (rack_load(path, &r, err, sizeof err))
        fail_msg("%s", err);
    const struct rack_unit *a1 = &r.units[r.ports[rack_find_port_label(&r, "A-01")].unit];
    const struct rack_unit *a2 = &r.units[r.ports[rack_find_port_label(&r, "A-02")].unit];
    const struct rack_unit *a3 = &r.units[rack_find_unit(&r, 0x000A1B2C3D4E5F60ull)];
    assert_int_equal(a1->mode, 4);
    assert_string_equal(a1->ios, "16.7");
    assert_true(a1->paired);
    assert_true(rack_unit_allows_recovery(a1)); /* paired */
    assert_string_equal(a3->ios, "14.4");
    assert_false(a3->paired);
    assert_true(rack_unit_allows_recovery(a3)); /* before 14.5 */
    struct rack_unit late = *a3;
    snprintf(late.ios, sizeof late.ios, "14.5");
    assert_false(rack_unit_allows_recovery(&late));
    assert_string_equal(rack_ios_build("17.5"), "21F90");
    assert_null(rack_ios_build("17.6"));
    /* A12 (0x8020) and later: CPID-ECID */
    rack_unit_udid(a3, udid, sizeof udid);
    assert_string_equal(udid, "00008101-000A1B2C3D4E5F60");
    /* iPhone X (A11, 0x8015): 40 hex digits */
    assert_string_equal(a2->product_type, "iPhone10,3");
    rack_unit_udid(a2, udid, sizeof udid);
    assert_int_equal(strlen(udid), 40);
    assert_int_equal(strspn(udid, "0123456789abcdef"), 40);
    rack_free(&r);
}

/* A simulated iPhone's IMEI: 15 digits, the same for one ECID every time, another for
 * another ECID, its last digit the Luhn check of the rest; a model without a modem has none. */
static void iphones_have_an_imei_with_a_luhn_check_digit(void **state)
{
    assert_int_equal(rack_luhn_digit("49015420323751"), 8); /* 3GPP's example IMEI 490154203237518 */
    assert_int_equal(rack_luhn_digit("35209900176148"), 1);
    struct rack_unit u = { .ecid = 0x000A1B2C3D4E5F60ull };
    snprintf(u.product_type, sizeof u.product_type, "iPhone12,1");
    char a[16], b[16], c[16];
    assert_int_equal(rack_unit_imei(&u, a, sizeof a), 0);
    assert_int_equal(strlen(a), 15);
    assert_int_equal(strspn(a, "0123456789"), 15);
    assert_int_equal(a[14] - '0', rack_luhn_digit((char[15]){ a[0], a[1], a[2], a[3], a[4], a[5], a[6],
                                                               a[7], a[8], a[9], a[10], a[11], a[12],
                                                               a[13], '\0' }));
    assert_int_equal(rack_unit_imei(&u, b, sizeof b), 0);
    assert_string_equal(a, b);
    u.ecid++;
    assert_int_equal(rack_unit_imei(&u, c, sizeof c), 0);
    assert_string_not_equal(a, c);
    snprintf(u.product_type, sizeof u.product_type, "iPod9,1");
    assert_int_equal(rack_unit_imei(&u, c, sizeof c), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(demo_rack_has_two_hosts_of_24),
        cmocka_unit_test(example_rack_loads),
        cmocka_unit_test(same_seed_same_ecids),
        cmocka_unit_test(bad_racks_name_line_and_key),
        cmocka_unit_test(long_names_are_refused_not_cut),
        cmocka_unit_test(normal_mode_units_have_ios_pairing_and_udids),
        cmocka_unit_test(iphones_have_an_imei_with_a_luhn_check_digit),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
