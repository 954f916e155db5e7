/* test_types — ECID text form, ISO-8601 times and the shared name tables. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "fr_err.h"
#include "fr_time.h"
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

/* The ECID written by hand reads as printf's "0x%016llX", and truncates as it does. */
static void ecid_formats_as_printf(void **state)
{
    static const uint64_t ecids[] = { 0, 1, 0xF, 0x10, 0x001A2B3C4D5E6F70ull, 0xFFFFFFFFFFFFFFFFull,
                                      0x8000000000000000ull, 0x00000000DEADBEEFull };
    for (size_t i = 0; i < sizeof ecids / sizeof *ecids; i++) {
        char got[FR_ECID_STRLEN + 4], want[FR_ECID_STRLEN + 4];
        fr_ecid_format(ecids[i], got, sizeof got);
        snprintf(want, sizeof want, "0x%016" PRIX64, ecids[i]);
        assert_string_equal(got, want);
        fr_ecid_format(ecids[i], got, 7);
        want[6] = '\0';
        assert_string_equal(got, want);
    }
}

/* ISO-8601 written by hand reads as gmtime and strftime give it, across leap days,
 * centuries and the last millisecond of a four-digit year; 0 is "". */
static void iso8601_as_strftime(void **state)
{
    static const uint64_t ms[] = { 1, 999, 1000, 86399999, 86400000, 951782400000ull /* 2000-02-29 */,
                                   951868800000ull, 4107542400000ull /* 2100-03-01 */, 1796386800123ull,
                                   253402300799999ull, 253402300800000ull, 1709164800000ull /* 2024-02-29 */ };
    char got[32], want[32], base[24];
    for (size_t i = 0; i < sizeof ms / sizeof *ms + 2000; i++) {
        uint64_t t = i < sizeof ms / sizeof *ms ? ms[i] : (uint64_t)(i * 7919u) * 123456789ull % 253402300800000ull + 1;
        time_t secs = (time_t)(t / 1000u);
        struct tm tm;
        gmtime_r(&secs, &tm);
        strftime(base, sizeof base, "%Y-%m-%dT%H:%M:%S", &tm);
        snprintf(want, sizeof want, "%s.%03uZ", base, (unsigned)(t % 1000u));
        fr_time_iso8601(t, got, sizeof got);
        assert_string_equal(got, want);
    }
    fr_time_iso8601(0, got, sizeof got);
    assert_string_equal(got, "");
    fr_time_iso8601(1796386800123ull, got, 11); /* a short buffer: truncated */
    assert_string_equal(got, "2026-12-04");
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
        cmocka_unit_test(ecid_round_trip),       cmocka_unit_test(ecid_formats_as_printf),
        cmocka_unit_test(iso8601_as_strftime),       cmocka_unit_test(ecid_accepts_idevicerestore_forms),
        cmocka_unit_test(ecid_rejects_garbage),  cmocka_unit_test(state_names_round_trip),
        cmocka_unit_test(class_and_mode_names),  cmocka_unit_test(error_table),
        cmocka_unit_test(firmware_references),   cmocka_unit_test(loopback_endpoints),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
