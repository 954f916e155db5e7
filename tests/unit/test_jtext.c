/* test_jtext — JSON written as text reads as the same bytes as jansson's compact dump of
 * the same values (the documents a client reads did not change when the controller
 * stopped building them with jansson). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "jtext.h"

static void same_as_jansson(const json_t *doc, char *text)
{
    char *want = json_dumps(doc, JSON_COMPACT | JSON_ENCODE_ANY);
    assert_non_null(text);
    assert_string_equal(text, want);
    free(want);
    free(text);
}

static const char *const strings[] = {
    "", "plain", "quote \" and backslash \\", "slash / stays", "\b\f\n\r\t", "\x01\x1f\x7f",
    "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x93\xb1", "0x00000000DEADBEEF", "2026-11-24T10:00:00.123Z",
    /* eight bytes are checked at a time: an escape at each place of a word, and after */
    "1234567\"", "12345678\\", "123456789\n", "abc\\defgh", "ab\x01" "cdefghij", "a\"bcdefghijklmnopq", "abcdefghijklmno\x1f", "abcdefghijklmnop\x01q",
    "\xc3\xa9\xc3\xa9\xe2\x82\xac\xc3\xa9\"\xe2\x82\xac\xf0\x9f\x93\xb1\xc3\xa9", " !#$%&'()*+,-./[]^_`{|}~\x7f",
    "not verified: the agent read nothing back from the unit after the restore (it does not say why)",
};

static void strings_escape_as_jansson(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof strings / sizeof *strings; i++) {
        struct jtext jt;
        jt_init(&jt);
        jt_str(&jt, strings[i]);
        json_t *s = json_string(strings[i]);
        same_as_jansson(s, jt_take(&jt));
        json_decref(s);
    }
}

static const double reals[] = {
    0.0, -0.0, 1.0, 0.5, 0.1, 1.0 / 3.0, 2.0 / 3.0, 0.999999999999, 100.0, 1e16, 1e17, 1.5e300,
    1e-5, 1e-7, 2.5e-300, DBL_MAX, DBL_MIN, -123456.789, 4.9e-324, 123456789012345678.0,
    /* about the integral values written without %.17g: each side of where that stops */
    -1.0, 42.0, -7.0, 999999999999999.0, -999999999999999.0, 1e15, -1e15, 9007199254740993.0,
    0.25, -0.5,
};

static void numbers_print_as_jansson(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof reals / sizeof *reals; i++) {
        struct jtext jt;
        jt_init(&jt);
        jt_real(&jt, reals[i]);
        json_t *r = json_real(reals[i]);
        same_as_jansson(r, jt_take(&jt));
        json_decref(r);
    }
    static const int64_t ints[] = { 0, 1, -1, 9, 10, -10, 99, 100, INT64_MAX, INT64_MIN, INT64_MIN + 1,
                                    1234567890123, -1234567890123 };
    for (size_t i = 0; i < sizeof ints / sizeof *ints; i++) {
        struct jtext jt;
        jt_init(&jt);
        jt_int(&jt, ints[i]);
        json_t *n = json_integer(ints[i]);
        same_as_jansson(n, jt_take(&jt));
        json_decref(n);
    }
}

/* nesting, commas, empty containers, a jansson value and raw text inside */
static void documents_nest_as_jansson(void **state)
{
    (void)state;
    json_t *inner = json_pack("{s:[i, s, {}], s:n}", "list", 1, "two", "empty", "none");
    struct jtext jt;
    jt_init(&jt);
    jt_obj(&jt);
    jt_key(&jt, "rows");
    jt_arr(&jt);
    for (int i = 0; i < 3; i++) {
        jt_obj(&jt);
        jt_kint(&jt, "n", i);
        jt_kstr(&jt, "s", strings[i]);
        jt_kbool(&jt, "b", i == 1);
        jt_kreal(&jt, "f", reals[i + 4]);
        jt_key(&jt, "history");
        jt_raw(&jt, i ? "[{\"a\":1},{\"a\":2}]" : "[]");
        jt_obj_end(&jt);
    }
    jt_arr_end(&jt);
    jt_key(&jt, "empty");
    jt_arr(&jt);
    jt_arr_end(&jt);
    jt_key(&jt, "inner");
    jt_json(&jt, inner);
    jt_key(&jt, "nothing");
    jt_json(&jt, NULL);
    jt_kstr(&jt, "next", "[\"0x1\"]");
    jt_obj_end(&jt);

    json_t *rows = json_array();
    for (int i = 0; i < 3; i++)
        json_array_append_new(rows, json_pack("{s:i, s:s, s:b, s:f, s:o}", "n", i, "s", strings[i],
                                              "b", i == 1, "f", reals[i + 4], "history",
                                              i ? json_pack("[{s:i}, {s:i}]", "a", 1, "a", 2) : json_array()));
    json_t *doc = json_pack("{s:o, s:[], s:O, s:n, s:s}", "rows", rows, "empty", "inner", inner,
                            "nothing", "next", "[\"0x1\"]");
    same_as_jansson(doc, jt_take(&jt));
    json_decref(doc);
    json_decref(inner);
}

/* nested deeper than it holds: no text, rather than a wrong one */
static void too_deep_fails(void **state)
{
    (void)state;
    struct jtext jt;
    jt_init(&jt);
    for (int i = 0; i < JT_DEPTH + 1; i++)
        jt_arr(&jt);
    assert_null(jt_take(&jt));
    jt_release(&jt);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(strings_escape_as_jansson),
        cmocka_unit_test(numbers_print_as_jansson),
        cmocka_unit_test(documents_nest_as_jansson),
        cmocka_unit_test(too_deep_fails),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
