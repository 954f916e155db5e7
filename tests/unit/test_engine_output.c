/* test_engine_output — what a restore engine prints, read the way the agent reads it. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine_output.h"

static char *fixture(const char *name, size_t *len)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/engine/%s", getenv("FR_FIXTURES"), name);
    FILE *fp = fopen(path, "rb");
    assert_non_null(fp);
    static char buf[65536];
    *len = fread(buf, 1, sizeof buf - 1, fp);
    buf[*len] = '\0';
    fclose(fp);
    return buf;
}

static enum fr_class run(const char *name, int exit_code, char *text, size_t tlen,
                         struct engine_output *eo)
{
    size_t len;
    char *data = fixture(name, &len);
    engine_output_init(eo);
    engine_output_feed(eo, data, len);
    engine_output_end(eo);
    return engine_output_outcome(eo, exit_code, 0, text, tlen);
}

static void master_success(void **state)
{
    struct engine_output eo;
    char text[512];
    assert_int_equal(run("master_success.txt", 0, text, sizeof text, &eo), FR_CLASS_NONE);
    assert_true(eo.finished);
    assert_int_equal(eo.step, 7);
    assert_string_equal(eo.status, "DONE");
    /* the firmware it restored, as it read it from the IPSW's BuildManifest */
    assert_string_equal(eo.version, "18.2");
    assert_string_equal(eo.build, "22C152");
}

static void exit_zero_without_finish_is_not_success(void **state)
{
    struct engine_output eo;
    char text[512];
    engine_output_init(&eo);
    engine_output_feed(&eo, "progress: 2 0.500000\n", 21);
    assert_int_equal(engine_output_outcome(&eo, 0, 0, text, sizeof text), FR_CLASS_UNKNOWN);
    assert_non_null(strstr(text, "without finishing"));
}

/* An unclassified failure keeps the engine's own last error, not an empty tail. */
static void unknown_failure_keeps_the_last_error_line(void **state)
{
    struct engine_output eo;
    char text[512];
    const char *out = "progress: 0 0.000000\nERROR: the engine could not reach what it needs\n";
    engine_output_init(&eo);
    engine_output_feed(&eo, out, strlen(out));
    engine_output_end(&eo);
    assert_int_equal(engine_output_outcome(&eo, 2, 0, text, sizeof text), FR_CLASS_UNKNOWN);
    assert_string_equal(text, "engine exited with code 2: ERROR: the engine could not reach what it needs");
    engine_output_init(&eo);
    assert_int_equal(engine_output_outcome(&eo, 3, 0, text, sizeof text), FR_CLASS_UNKNOWN);
    assert_string_equal(text, "engine exited with code 3: no output");
}

static void both_dialects_lose_the_link(void **state)
{
    struct engine_output eo;
    char text[512];
    assert_int_equal(run("master_link_lost.txt", 1, text, sizeof text, &eo), FR_CLASS_LINK_LOST);
    assert_string_equal(text, "ERROR: Unable to send filesystem payload chunk");
    assert_int_equal(eo.step, 2);
    assert_true(eo.fraction > 0.36 && eo.fraction < 0.38);
    assert_int_equal(run("v100_link_lost.txt", 255, text, sizeof text, &eo), FR_CLASS_LINK_LOST);
    assert_string_equal(text, "ERROR: Could not read data (-4). Aborting.");
}

static void disk_failure_is_hardware(void **state)
{
    struct engine_output eo;
    char text[512];
    assert_int_equal(run("disk_failure.txt", 1, text, sizeof text, &eo), FR_CLASS_HARDWARE);
    assert_string_equal(text, "Status: Disk Failure");
}

static void chunking_anywhere_gives_the_same_result(void **state)
{
    size_t len;
    char *data = fixture("master_link_lost.txt", &len);
    char *copy = malloc(len);
    memcpy(copy, data, len);
    for (size_t cut = 1; cut < len; cut++) {
        struct engine_output eo;
        char text[512];
        engine_output_init(&eo);
        engine_output_feed(&eo, copy, cut);
        engine_output_feed(&eo, copy + cut, len - cut);
        engine_output_end(&eo);
        assert_int_equal(engine_output_outcome(&eo, 1, 0, text, sizeof text), FR_CLASS_LINK_LOST);
        assert_string_equal(text, "ERROR: Unable to send filesystem payload chunk");
        assert_int_equal(eo.step, 2);
    }
    free(copy);
}

static void progress_bars_of_both_versions(void **state)
{
    struct engine_output eo;
    char text[512];
    run("bars_v100.txt", 1, text, sizeof text, &eo);
    assert_true(eo.fraction > 0.99);
    run("bars_master.txt", 1, text, sizeof text, &eo);
    assert_true(eo.fraction > 0.74 && eo.fraction < 0.76);
}

static void every_class_has_a_real_string(void **state)
{
    static const struct { const char *line; enum fr_class cls; } cases[] = {
        { "ERROR: Unable to send payload to ASR", FR_CLASS_LINK_LOST },
        { "ERROR: Unable to connect to ASR", FR_CLASS_LINK_LOST },
        { "ERROR: Device did not reconnect. Possibly invalid iBEC. Reset device and try again.", FR_CLASS_LINK_LOST },
        { "ERROR: Device failed to enter restore mode.", FR_CLASS_LINK_LOST },
        { "ERROR: Unable to discover device mode. Please make sure a device is attached.", FR_CLASS_NO_DEVICE },
        { "ERROR: Unable to connect to device in recovery mode", FR_CLASS_NO_DEVICE },
        { "ERROR: Could not connect to lockdownd: Invalid HostID", FR_CLASS_NEEDS_DFU },
        { "ERROR: TSS request failed: STATUS=94&MESSAGE=This device isn't eligible for the requested build.", FR_CLASS_NOT_SIGNED },
        { "ERROR: TSS request failed (curl error 6)", FR_CLASS_NETWORK },
        { "ERROR: Firmware file /x.ipsw does not exist.", FR_CLASS_FIRMWARE },
        { "ERROR: Unable to extract BuildManifest from /x.ipsw", FR_CLASS_FIRMWARE },
        { "ERROR: Unable to find a matching build identity", FR_CLASS_WRONG_FIRMWARE },
        { "ERROR: Could not make sure this firmware is suitable for the current device. Refusing to continue.", FR_CLASS_WRONG_FIRMWARE },
        { "ERROR: Unable to discover device type", FR_CLASS_STACK_TOO_OLD },
        { "Status: Failed to recover FDR data.", FR_CLASS_HARDWARE },
        { "Status: X-Gold Baseband Update Failed. Defective Unit?", FR_CLASS_HARDWARE },
        { "Waiting for battery to charge", FR_CLASS_BATTERY },
        { "Unhandled status message (42)", FR_CLASS_UNKNOWN },
        { "Sending filesystem now...", FR_CLASS_NONE },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        enum fr_class got = engine_output_classify(cases[i].line);
        if (got != cases[i].cls)
            fail_msg("'%s': got %s, expected %s", cases[i].line, fr_class_name(got),
                     fr_class_name(cases[i].cls));
    }
}

static void battery_wait_is_not_a_failure(void **state)
{
    struct engine_output eo;
    char text[512];
    engine_output_init(&eo);
    const char *s = "Checking battery voltage\nWaiting for battery to charge\nStatus: Restore Finished\nDONE\n";
    engine_output_feed(&eo, s, strlen(s));
    assert_true(eo.battery_wait);
    assert_int_equal(engine_output_outcome(&eo, 0, 0, text, sizeof text), FR_CLASS_NONE);
}

static void garbage_never_crashes(void **state)
{
    struct engine_output eo;
    char text[512];
    engine_output_init(&eo);
    char junk[9000];
    for (size_t i = 0; i < sizeof junk; i++)
        junk[i] = (char)(i * 131 + 7);
    engine_output_feed(&eo, junk, sizeof junk);
    engine_output_feed(&eo, "progress: 9 7.5\nprogress: -1 0.5\nprogress: 2 nan\n", 48);
    engine_output_end(&eo);
    assert_true(eo.step >= 0 && eo.step <= 7);
    assert_int_equal(engine_output_outcome(&eo, 0, 9, text, sizeof text), FR_CLASS_UNKNOWN);
    assert_non_null(strstr(text, "signal 9"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(master_success),
        cmocka_unit_test(exit_zero_without_finish_is_not_success),
        cmocka_unit_test(unknown_failure_keeps_the_last_error_line),
        cmocka_unit_test(both_dialects_lose_the_link),
        cmocka_unit_test(disk_failure_is_hardware),
        cmocka_unit_test(chunking_anywhere_gives_the_same_result),
        cmocka_unit_test(progress_bars_of_both_versions),
        cmocka_unit_test(every_class_has_a_real_string),
        cmocka_unit_test(battery_wait_is_not_a_failure),
        cmocka_unit_test(garbage_never_crashes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
