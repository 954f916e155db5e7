/* test_types — ECID text form and the shared name tables. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "fr_err.h"
#include "fr_types.h"

static void ecid_round_trip(void **state)
{
    char buf[FR_ECID_STRLEN];
    uint64_t v = 0;
    fr_ecid_format(0x001A2B3C4D5E6F70ull, buf, sizeof buf);
    assert_string_equal(buf, "0x001A2B3C4D5E6F70");
    assert_int_equal(fr_ecid_parse(buf, &v), 0);
    assert_true(v == 0x001A2B3C4D5E6F70ull);
}

static void ecid_accepts_idevicerestore_forms(void **state)
{
    uint64_t v = 0;
    assert_int_equal(fr_ecid_parse("001A2B3C4D5E6F70", &v), 0); /* bare 16 hex, as in USB serials */
    assert_true(v == 0x001A2B3C4D5E6F70ull);
    assert_int_equal(fr_ecid_parse("7365723409284720", &v), 0); /* 16 digits read as hex */
    assert_true(v == 0x7365723409284720ull);
    assert_int_equal(fr_ecid_parse("1234567", &v), 0); /* decimal */
    assert_true(v == 1234567u);
}

static void ecid_rejects_garbage(void **state)
{
    uint64_t v = 42;
    const char *bad[] = { "", "0x", "0xZZ", "12ab", "0x00000000000000000", "-5", "0", "0x0",
                          "99999999999999999999999" };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_int_equal(fr_ecid_parse(bad[i], &v), FR_EINVAL);
    assert_int_equal(fr_ecid_parse(NULL, &v), FR_EINVAL);
    assert_true(v == 42);
}

static void state_names_round_trip(void **state)
{
    for (int s = 0; s < FR_STATE__COUNT; s++)
        assert_int_equal(fr_state_parse(fr_state_name(s)), s);
    assert_int_equal(fr_state_parse("nope"), -1);
    assert_true(fr_state_is_terminal(FR_STATE_DONE));
    assert_true(fr_state_is_terminal(FR_STATE_HARDWARE_SUSPECT));
    assert_false(fr_state_is_terminal(FR_STATE_NEEDS_MOVE));
    assert_string_equal(fr_state_name(FR_STATE__COUNT), "invalid");
}

static void class_and_mode_names(void **state)
{
    assert_string_equal(fr_class_name(FR_CLASS_LINK_LOST), "link_lost");
    assert_int_equal(fr_class_parse("stack_too_old"), FR_CLASS_STACK_TOO_OLD);
    assert_int_equal(fr_class_parse("4013"), -1);
    assert_string_equal(fr_mode_name(1), "dfu");
    assert_int_equal(fr_mode_parse("recovery"), 2);
    assert_string_equal(fr_mode_name(99), "unknown");
}

static void firmware_references(void **state)
{
    assert_true(fr_is_url("https://updates.cdn-apple.com/x.ipsw"));
    assert_true(fr_is_url("http://127.0.0.1:7713/x.ipsw"));
    assert_false(fr_is_url("/srv/ipsw/x.ipsw"));
    assert_false(fr_is_url("ftp://mirror/x.ipsw"));
    assert_false(fr_is_url(NULL));
    char h[65];
    memset(h, 'a', 64);
    h[64] = '\0';
    assert_true(fr_is_hash_hex(h));
    h[40] = '\0';
    assert_true(fr_is_hash_hex(h)); /* SHA-1 */
    h[39] = 'g';
    assert_false(fr_is_hash_hex(h));
    assert_false(fr_is_hash_hex("abc"));
    assert_true(fr_is_hex(""));
    assert_true(fr_is_hex("00fF"));
    assert_false(fr_is_hex("0x12"));
}

static void error_table(void **state)
{
    assert_string_equal(fr_strerror(FR_ESTALE), "stale lease");
    assert_string_equal(fr_err_name(FR_EPROTO), "FR_EPROTO");
    assert_string_equal(fr_strerror(-9999), "unknown error");
    char buf[32];
    assert_int_equal(fr_seterr(FR_EIO, buf, sizeof buf, "disk %d", 3), FR_EIO);
    assert_string_equal(buf, "disk 3");
}

static void loopback_endpoints(void **state)
{
    const char *local[] = { "tcp://127.0.0.1:7710", "127.0.0.1:7712", "tcp://127.9.8.7:1",
                            "tcp://[::1]:7710", "[::1]:7712", "tcp://localhost:7711", "ipc:///tmp/x" };
    const char *remote[] = { "tcp://0.0.0.0:7710", "*:7712", "tcp://*:7710", "tcp://10.0.0.5:7710",
                             "tcp://[::]:7710", "tcp://128.0.0.1:1", "tcp://127.0.0.1.evil:1",
                             "tcp://eth0:7710", "localhost", "tcp://127.0.0.256:1" };
    for (size_t i = 0; i < sizeof local / sizeof local[0]; i++)
        assert_true(fr_is_loopback_endpoint(local[i]));
    for (size_t i = 0; i < sizeof remote / sizeof remote[0]; i++)
        assert_false(fr_is_loopback_endpoint(remote[i]));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(ecid_round_trip),       cmocka_unit_test(ecid_accepts_idevicerestore_forms),
        cmocka_unit_test(ecid_rejects_garbage),  cmocka_unit_test(state_names_round_trip),
        cmocka_unit_test(class_and_mode_names),  cmocka_unit_test(error_table),
        cmocka_unit_test(firmware_references),   cmocka_unit_test(loopback_endpoints),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
