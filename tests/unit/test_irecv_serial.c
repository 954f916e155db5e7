/* test_irecv_serial — the DFU/recovery serial-string parser on real strings, and
 * the ones it must refuse. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>

#include "flashrack.pb-c.h"
#include "fr_err.h"
#include "irecv_serial.h"

static void parses_a_dfu_string(void **state)
{
    struct irecv_serial s;
    char err[160] = "";
    assert_int_equal(irecv_serial_parse("CPID:8030 CPRV:11 CPFM:03 SCEP:01 BDID:04 "
                                        "ECID:001A2B3C4D5E6F70 IBFL:3C SRTG:[iBoot-4479.0.0.100.4]",
                                        &s, err, sizeof err), 0);
    assert_int_equal(s.cpid, 0x8030);
    assert_int_equal(s.cprv, 0x11);
    assert_int_equal(s.cpfm, 0x03);
    assert_int_equal(s.scep, 0x01);
    assert_int_equal(s.bdid, 0x04);
    assert_int_equal(s.ibfl, 0x3c);
    assert_true(s.ecid == 0x001A2B3C4D5E6F70ull);
    assert_string_equal(s.srtg, "iBoot-4479.0.0.100.4");
    assert_string_equal(s.srnm, "");
}

static void parses_a_recovery_string_in_another_order(void **state)
{
    struct irecv_serial s;
    char err[160] = "";
    assert_int_equal(irecv_serial_parse("SRNM:[F17XK0QJHG7F] ECID:000A1B2C3D4E5F60 CPID:8020 "
                                        "CPRV:11 CPFM:03 SCEP:01 BDID:0E IBFL:3D "
                                        "IMEI:[356123456789012]",
                                        &s, err, sizeof err), 0);
    assert_int_equal(s.cpid, 0x8020);
    assert_int_equal(s.bdid, 0x0e);
    assert_true(s.ecid == 0x000A1B2C3D4E5F60ull);
    assert_string_equal(s.srnm, "F17XK0QJHG7F");
    assert_string_equal(s.imei, "356123456789012");
}

static void skips_unknown_keys_and_lower_case_hex(void **state)
{
    struct irecv_serial s;
    char err[160] = "";
    assert_int_equal(irecv_serial_parse("CPID:8960 CPRV:11 CPFM:03 SCEP:01 BDID:00 "
                                        "ECID:000001234567890a IBFL:1d NONC:abcdef SRTG:[iBoot-1704.10]",
                                        &s, err, sizeof err), 0);
    assert_int_equal(s.cpid, 0x8960);
    assert_true(s.ecid == 0x1234567890aull);
    assert_string_equal(s.srtg, "iBoot-1704.10");
}

static void refuses(const char *text, const char *why)
{
    struct irecv_serial s;
    char err[160] = "";
    assert_int_equal(irecv_serial_parse(text, &s, err, sizeof err), FR_EINVAL);
    assert_non_null(strstr(err, why));
    assert_true(s.ecid == 0 && s.cpid == 0); /* nothing half-filled */
}

static void refuses_garbage(void **state)
{
    refuses("", "no CPID");
    refuses("hello world", "expected KEY:value, got 'hello'");
    refuses("CPID:zz30 ECID:001A2B3C4D5E6F70", "CPID: expected at most 8 hex digits, got 'zz30'");
    refuses("CPID:8030 ECID:001A2B3C4D5E6F70 CPID:8030", "CPID given twice");
    refuses("CPID:8030 CPRV:11", "no ECID");
    refuses("CPID:8030 ECID:001A2B3C4D5E6F7011", "ECID: expected at most 16 hex digits");
    refuses("CPID:8030 ECID:001A2B3C4D5E6F70 SRNM:F17XK0", "SRNM: expected [text]");
    refuses("CPID:8030 ECID:001A2B3C4D5E6F70 SRNM:[F17XK0]x", "expected a space after");
}

static void refuses_truncated(void **state)
{
    refuses("CPID:8030 CPRV:11 CPFM:03 SCEP:01 BDID:04 ECID:", "ECID: expected at most 16 hex");
    refuses("CPID:8030 CPRV:11 CPFM:03 SCEP:01 BDID:04 ECID:001A2B3C4D5E6F70 IBFL:3C SRTG:[iBoot-44",
            "SRTG: unterminated [value]");
    refuses("CPID:8030 CPRV:11 CPFM:03 SCEP:01 BD", "expected KEY:value, got 'BD'");
}

static void refuses_overlong(void **state)
{
    char text[400];
    int n = snprintf(text, sizeof text, "CPID:8030 ECID:001A2B3C4D5E6F70 SRTG:[");
    memset(text + n, 'x', sizeof text - (size_t)n - 2);
    text[sizeof text - 2] = ']';
    text[sizeof text - 1] = '\0';
    refuses(text, "longer than 255 bytes");
    refuses("CPID:8030 ECID:001A2B3C4D5E6F70 SRNM:[0123456789012345678901234567890123456789]",
            "SRNM: expected [text] of at most 31 characters");
}

static void modes_from_product_ids(void **state)
{
    assert_int_equal(irecv_mode_of_pid(0x1227), FR__UNIT_MODE__MODE_DFU);
    assert_int_equal(irecv_mode_of_pid(0x1222), FR__UNIT_MODE__MODE_DFU);
    for (uint16_t p = 0x1280; p <= 0x1283; p++) {
        assert_int_equal(irecv_mode_of_pid(p), FR__UNIT_MODE__MODE_RECOVERY);
        assert_true(irecv_pid_is_irecv(p));
    }
    assert_int_equal(irecv_mode_of_pid(0x1284), FR__UNIT_MODE__MODE_UNKNOWN);
    assert_int_equal(irecv_mode_of_pid(0x12a8), FR__UNIT_MODE__MODE_NORMAL);
    assert_int_equal(irecv_mode_of_pid(0x1905), FR__UNIT_MODE__MODE_NORMAL);
    assert_int_equal(irecv_mode_of_pid(0x1906), FR__UNIT_MODE__MODE_UNKNOWN);
    assert_false(irecv_pid_is_irecv(0x12a8));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(parses_a_dfu_string),
        cmocka_unit_test(parses_a_recovery_string_in_another_order),
        cmocka_unit_test(skips_unknown_keys_and_lower_case_hex),
        cmocka_unit_test(refuses_garbage),
        cmocka_unit_test(refuses_truncated),
        cmocka_unit_test(refuses_overlong),
        cmocka_unit_test(modes_from_product_ids),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
