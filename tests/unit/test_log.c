/* test_log — the logger's formats: text, JSON lines with the fields, levels, reconfiguring. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fr_log.h"

/* Logs through fn into a memory stream; returns the text (caller frees). */
/* noinline: inlined into a caller, GCC 12 (-O2) takes the returned buffer for the
 * address of the local the stream wrote it through, and warns of a dangling pointer */
__attribute__((noinline)) static char *capture(void (*fn)(void))
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    assert_non_null(f);
    fr_log_init("flashrackd", FR_LOG_INFO, f);
    fn();
    fclose(f);
    return buf;
}

static void one_result_line(void)
{
    struct fr_log_ctx lc = { 12, 0xD9A8223D22383ULL, "A", "1-1.2" };
    fr_infox("runs", &lc, "unit %s: attempt %d -> done", "0x000D9A8223D22383", 3);
    fr_debug("runs", "not shown at info");
}

static void text_is_one_line_with_time_program_level_component(void **state)
{
    char said[96];
    assert_int_equal(fr_log_configure("info", "text", said, sizeof said), 0);
    char *out = capture(one_result_line);
    assert_non_null(strstr(out, "Z flashrackd INFO  runs: unit 0x000D9A8223D22383: attempt 3 -> done\n"));
    assert_null(strstr(out, "not shown"));
    assert_int_equal(strchr(out, '\n')[1], '\0'); /* one line */
    free(out);
}

static void json_lines_carry_the_fields(void **state)
{
    char said[96];
    assert_int_equal(fr_log_configure("info", "json", said, sizeof said), 0);
    assert_string_equal(said, "log_level info, log_format json");
    char *out = capture(one_result_line);
    json_error_t je;
    json_t *o = json_loads(out, 0, &je);
    assert_non_null(o);
    assert_string_equal(json_string_value(json_object_get(o, "level")), "info");
    assert_string_equal(json_string_value(json_object_get(o, "component")), "runs");
    assert_string_equal(json_string_value(json_object_get(o, "ecid")), "0x000D9A8223D22383");
    assert_int_equal(json_integer_value(json_object_get(o, "job")), 12);
    assert_string_equal(json_string_value(json_object_get(o, "agent")), "A");
    assert_string_equal(json_string_value(json_object_get(o, "port")), "1-1.2");
    assert_non_null(strstr(json_string_value(json_object_get(o, "message")), "attempt 3 -> done"));
    json_decref(o);
    free(out);
}

static void quote_in_message(void)
{
    fr_warn("cfg", "bad \"value\"\tand a newline\n in it");
}

static void json_escapes_and_has_no_absent_fields(void **state)
{
    char said[96];
    assert_int_equal(fr_log_configure("debug", "json", said, sizeof said), 0);
    char *out = capture(quote_in_message);
    assert_int_equal(strchr(out, '\n')[1], '\0'); /* the newline inside stays inside */
    json_t *o = json_loads(out, 0, NULL);
    assert_non_null(o);
    assert_string_equal(json_string_value(json_object_get(o, "message")), "bad \"value\"\tand a newline\n in it");
    assert_null(json_object_get(o, "ecid"));
    assert_null(json_object_get(o, "job"));
    json_decref(o);
    free(out);
}

static void unknown_names_change_nothing(void **state)
{
    char said[96];
    assert_int_equal(fr_log_configure("warn", "text", said, sizeof said), 0);
    assert_int_equal(fr_log_configure("loud", "json", said, sizeof said), -1);
    assert_non_null(strstr(said, "loud"));
    assert_int_equal(fr_log_configure("info", "xml", said, sizeof said), -1);
    /* still warn and text: an info line is dropped */
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    fr_log_init("flashrackd", FR_LOG_WARN, f);
    fr_info("x", "dropped");
    fr_warn("x", "kept");
    fclose(f);
    assert_null(strstr(buf, "dropped"));
    assert_non_null(strstr(buf, "WARN  x: kept"));
    free(buf);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(text_is_one_line_with_time_program_level_component),
        cmocka_unit_test(json_lines_carry_the_fields),
        cmocka_unit_test(json_escapes_and_has_no_absent_fields),
        cmocka_unit_test(unknown_names_change_nothing),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
