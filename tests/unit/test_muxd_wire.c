/* test_muxd_wire — the simulator's usbmuxd and lockdownd: framing (whole, split,
 * hostile) and what a unit's lockdownd answers, by its model. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lockdown.h"
#include "fr_mux_wire.h"

static plist_t request(const char *key, const char *value)
{
    plist_t d = plist_new_dict();
    plist_dict_set_item(d, key, plist_new_string(value));
    return d;
}

static void a_message_round_trips_and_splits_anywhere(void **state)
{
    plist_t d = request("MessageType", "ListDevices");
    uint8_t *buf;
    size_t n;
    assert_int_equal(mux_wire_encode(7, d, &buf, &n), 0);
    plist_free(d);
    /* little-endian header: length, version 1, message 8, tag */
    assert_int_equal(buf[0] | buf[1] << 8, (int)n);
    assert_int_equal(buf[4], 1);
    assert_int_equal(buf[8], 8);
    assert_int_equal(buf[12], 7);
    for (size_t cut = 0; cut < n; cut++) {
        struct mux_header h;
        plist_t out = NULL;
        size_t used;
        char err[128];
        assert_int_equal(mux_wire_parse(buf, cut, &h, &out, &used, err, sizeof err),
                         MUX_PARSE_NEED_MORE);
        assert_null(out);
    }
    struct mux_header h;
    plist_t out = NULL;
    size_t used;
    char err[128];
    assert_int_equal(mux_wire_parse(buf, n, &h, &out, &used, err, sizeof err), MUX_PARSE_OK);
    assert_int_equal(used, n);
    assert_int_equal(h.tag, 7);
    assert_string_equal(mux_dict_string(out, "MessageType"), "ListDevices");
    plist_free(out);
    free(buf);
}

static void put32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static enum mux_parse parse_raw(uint32_t length, uint32_t version, uint32_t message,
                                const char *payload, char *err, size_t *used)
{
    uint8_t buf[256] = { 0 };
    size_t n = strlen(payload);
    put32(buf, length);
    put32(buf + 4, version);
    put32(buf + 8, message);
    put32(buf + 12, 1);
    memcpy(buf + 16, payload, n);
    struct mux_header h;
    plist_t out = NULL;
    enum mux_parse r = mux_wire_parse(buf, 16 + n, &h, &out, used, err, 160);
    assert_true(r == MUX_PARSE_OK || out == NULL);
    plist_free(out);
    return r;
}

static void hostile_usbmuxd_input_is_refused_with_the_reason(void **state)
{
    char err[160];
    size_t used;
    assert_int_equal(parse_raw(8, 1, 8, "", err, &used), MUX_PARSE_FATAL);
    assert_non_null(strstr(err, "message length 8"));
    assert_int_equal(parse_raw(0xFFFFFFF0u, 1, 8, "", err, &used), MUX_PARSE_FATAL);
    assert_non_null(strstr(err, "message length 4294967280"));
    /* a binary-protocol message: a whole message, answered and skipped */
    assert_int_equal(parse_raw(16, 0, 3, "", err, &used), MUX_PARSE_SKIP);
    assert_int_equal(used, 16);
    assert_non_null(strstr(err, "version 0 message 3"));
    assert_int_equal(parse_raw(16 + 9, 1, 8, "not a pl", err, &used), MUX_PARSE_NEED_MORE);
    assert_int_equal(parse_raw(16 + 8, 1, 8, "not a pl", err, &used), MUX_PARSE_FATAL);
    assert_non_null(strstr(err, "not an XML plist dictionary"));
    /* a plist, but an array: not a request */
    const char *arr = "<?xml version=\"1.0\"?><plist version=\"1.0\"><array/></plist>";
    assert_int_equal(parse_raw(16 + (uint32_t)strlen(arr), 1, 8, arr, err, &used),
                     MUX_PARSE_FATAL);
    /* truncated XML */
    const char *cut = "<?xml version=\"1.0\"?><plist version=\"1.0\"><dict><key>Mess";
    assert_int_equal(parse_raw(16 + (uint32_t)strlen(cut), 1, 8, cut, err, &used),
                     MUX_PARSE_FATAL);
}

static void lockdown_frames_are_big_endian_and_bounded(void **state)
{
    plist_t d = request("Request", "QueryType");
    uint8_t *buf;
    size_t n;
    assert_int_equal(lockdown_wire_encode(d, &buf, &n), 0);
    plist_free(d);
    assert_int_equal((size_t)(buf[0] << 24 | buf[1] << 16 | buf[2] << 8 | buf[3]), n - 4);
    plist_t out;
    size_t used;
    char err[128];
    assert_int_equal(lockdown_wire_parse(buf, n - 1, &out, &used, err, sizeof err), MUX_PARSE_NEED_MORE);
    assert_int_equal(lockdown_wire_parse(buf, n, &out, &used, err, sizeof err), MUX_PARSE_OK);
    assert_string_equal(mux_dict_string(out, "Request"), "QueryType");
    plist_free(out);
    free(buf);
    const uint8_t huge[4] = { 0x7f, 0xff, 0xff, 0xff }, zero[4] = { 0 };
    assert_int_equal(lockdown_wire_parse(huge, 4, &out, &used, err, sizeof err), MUX_PARSE_FATAL);
    assert_non_null(strstr(err, "2147483647 bytes"));
    assert_int_equal(lockdown_wire_parse(zero, 4, &out, &used, err, sizeof err), MUX_PARSE_FATAL);
    const uint8_t junk[] = { 0, 0, 0, 4, 'j', 'u', 'n', 'k' };
    assert_int_equal(lockdown_wire_parse(junk, sizeof junk, &out, &used, err, sizeof err),
                     MUX_PARSE_FATAL);
}

static struct rack_unit unit(const char *ios, int paired)
{
    struct rack_unit u;
    memset(&u, 0, sizeof u);
    u.ecid = 0x000A1B2C3D4E5F60ull;
    snprintf(u.product_type, sizeof u.product_type, "iPhone12,8");
    snprintf(u.board, sizeof u.board, "d79ap");
    u.cpid = 0x8030;
    u.bdid = 0x10;
    snprintf(u.serial, sizeof u.serial, "F2LXYZ123456");
    snprintf(u.ios, sizeof u.ios, "%s", ios);
    u.paired = paired;
    u.mode = 4;
    return u;
}

static plist_t ask(struct lockdown_session *s, const struct rack_unit *u, plist_t req,
                   enum lockdown_effect *effect)
{
    plist_t a = lockdown_answer(s, u, "BUID", req, effect);
    plist_free(req);
    return a;
}

static plist_t get_value(const char *key)
{
    plist_t r = request("Request", "GetValue");
    if (key)
        plist_dict_set_item(r, "Key", plist_new_string(key));
    return r;
}

static void unpaired_reads_give_the_identity(void **state)
{
    struct rack_unit u = unit("17.5", 0);
    struct lockdown_session s = { 0 };
    enum lockdown_effect e;
    plist_t a = ask(&s, &u, request("Request", "QueryType"), &e);
    assert_string_equal(mux_dict_string(a, "Type"), "com.apple.mobile.lockdown");
    plist_free(a);
    static const char *const keys[] = { "ProductType", "ProductVersion", "BuildVersion",
                                        "HardwareModel", "DeviceName", "UniqueDeviceID",
                                        "SerialNumber" };
    static const char *const want[] = { "iPhone12,8", "17.5", "21F90", "D79AP",
                                        "iPhone SE (2nd gen)", "00008030-000A1B2C3D4E5F60",
                                        "F2LXYZ123456" };
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        a = ask(&s, &u, get_value(keys[i]), &e);
        plist_t node = plist_dict_get_item(a, "Value");
        assert_non_null(node);
        const char *v = plist_get_string_ptr(node, NULL);
        if (strcmp(v, want[i]) != 0)
            fail_msg("%s: '%s', want '%s'", keys[i], v, want[i]);
        plist_free(a);
    }
    uint64_t ecid = 0;
    a = ask(&s, &u, get_value("UniqueChipID"), &e);
    assert_int_equal(mux_dict_uint(a, "Value", &ecid), 0);
    assert_true(ecid == u.ecid);
    plist_free(a);
    a = ask(&s, &u, get_value("NoSuchKey"), &e);
    assert_string_equal(mux_dict_string(a, "Error"), "MissingValue");
    plist_free(a);
    a = ask(&s, &u, get_value("InternationalMobileEquipmentIdentity"), &e);
    assert_string_equal(mux_dict_string(a, "Error"), "GetProhibited");
    plist_free(a);
    a = ask(&s, &u, get_value(NULL), &e); /* everything at once */
    assert_non_null(plist_dict_get_item(plist_dict_get_item(a, "Value"), "UniqueChipID"));
    plist_free(a);
}

static void recovery_needs_pairing_from_ios_14_5(void **state)
{
    enum lockdown_effect e;
    struct lockdown_session s = { 0 };
    struct rack_unit modern = unit("17.5", 0), old = unit("14.4", 0), paired = unit("17.5", 1);
    plist_t a = ask(&s, &modern, request("Request", "EnterRecovery"), &e);
    assert_string_equal(mux_dict_string(a, "Error"), "SessionInactive");
    assert_int_equal(e, LOCKDOWN_STAY);
    plist_free(a);
    a = ask(&s, &modern, request("Request", "StartSession"), &e);
    assert_string_equal(mux_dict_string(a, "Error"), "InvalidHostID");
    plist_free(a);
    a = ask(&s, &modern, request("Request", "Pair"), &e);
    assert_string_equal(mux_dict_string(a, "Error"), "PairingDialogResponsePending");
    plist_free(a);

    a = ask(&s, &old, request("Request", "EnterRecovery"), &e);
    assert_string_equal(mux_dict_string(a, "Result"), "Success");
    assert_int_equal(e, LOCKDOWN_ENTER_RECOVERY);
    plist_free(a);

    /* a paired host: the HostID of its pair record opens a session, which allows it */
    plist_t rec = lockdown_pair_record(&paired, "BUID");
    assert_non_null(rec);
    assert_null(lockdown_pair_record(&modern, "BUID"));
    plist_t start = request("Request", "StartSession");
    plist_dict_set_item(start, "HostID", plist_new_string(mux_dict_string(rec, "HostID")));
    plist_free(rec);
    a = ask(&s, &paired, request("Request", "EnterRecovery"), &e);
    assert_string_equal(mux_dict_string(a, "Error"), "SessionInactive");
    plist_free(a);
    a = ask(&s, &paired, start, &e);
    assert_non_null(mux_dict_string(a, "SessionID"));
    uint8_t ssl = 1;
    plist_get_bool_val(plist_dict_get_item(a, "EnableSessionSSL"), &ssl);
    assert_false(ssl);
    plist_free(a);
    a = ask(&s, &paired, request("Request", "EnterRecovery"), &e);
    assert_int_equal(e, LOCKDOWN_ENTER_RECOVERY);
    plist_free(a);
    a = ask(&s, &paired, request("Request", "Goodbye"), &e);
    assert_int_equal(e, LOCKDOWN_GOODBYE);
    plist_free(a);
}

static void restore_mode_answers_as_restored(void **state)
{
    struct rack_unit u = unit("17.5", 0);
    u.mode = 3;
    struct lockdown_session s = { 0 };
    enum lockdown_effect e;
    plist_t a = ask(&s, &u, request("Request", "QueryType"), &e);
    assert_string_equal(mux_dict_string(a, "Type"), "com.apple.mobile.restored");
    plist_free(a);
    a = ask(&s, &u, get_value("ProductType"), &e);
    assert_non_null(mux_dict_string(a, "Error"));
    plist_free(a);
    a = ask(&s, &u, request("NotARequest", "x"), &e);
    assert_string_equal(mux_dict_string(a, "Error"), "MissingRequest");
    plist_free(a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(a_message_round_trips_and_splits_anywhere),
        cmocka_unit_test(hostile_usbmuxd_input_is_refused_with_the_reason),
        cmocka_unit_test(lockdown_frames_are_big_endian_and_bounded),
        cmocka_unit_test(unpaired_reads_give_the_identity),
        cmocka_unit_test(recovery_needs_pairing_from_ios_14_5),
        cmocka_unit_test(restore_mode_answers_as_restored),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
