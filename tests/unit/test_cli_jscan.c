/* test_cli_jscan — the controller's compact text, walked and re-indented without a
 * jansson tree, prints the bytes jansson's own indented dump prints; text that is not
 * well nested is refused. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli_fixture.h"
#include "jscan.h"

static struct jspan span(const char *s)
{
    return (struct jspan){ s, strlen(s) };
}

/* compact text of doc re-indented here equals jansson's indented dump of doc */
static void reindents_as_jansson(const json_t *doc)
{
    char *compact = json_dumps(doc, JSON_COMPACT | JSON_ENCODE_ANY);
    char *want = json_dumps(doc, JSON_INDENT(2) | JSON_ENCODE_ANY);
    char *got = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&got, &len);
    jscan_print_indented(f, span(compact), 0);
    fclose(f);
    assert_string_equal(got, want);
    free(compact);
    free(want);
    free(got);
}

static void documents_reindent_as_jansson(void **state)
{
    (void)state;
    static const char *const fixtures[] = { "report.json", "watch.json" };
    for (size_t i = 0; i < sizeof fixtures / sizeof *fixtures; i++) {
        json_t *doc = load(fixtures[i]);
        reindents_as_jansson(doc);
        json_decref(doc);
    }
    /* strings holding the characters the walk reacts to, empty containers, nesting */
    json_t *odd = json_pack("{s:s, s:s, s:[], s:{}, s:[[], {s:[i, f, b, n]}], s:s}", "brackets", "{[,:]} \"q\"",
                            "escapes", "back\\slash \\\" \n\t end\\", "empty", "none", "deep", "k", -12,
                            0.25, 1, "last", "");
    reindents_as_jansson(odd);
    json_decref(odd);
    json_t *scalar = json_integer(7);
    reindents_as_jansson(scalar);
    json_decref(scalar);
}

static void members_and_elements(void **state)
{
    (void)state;
    const char *text = "{\"units\":[{\"a\":\"x,]\"},{\"a\":2},[]],\"next\":\"[\\\"0x1\\\"]\",\"n\":-3}";
    struct jmember *m;
    size_t n;
    assert_int_equal(jscan_members(span(text), &m, &n), 0);
    assert_int_equal(n, 3);
    assert_int_equal(m[1].key.n, 4);
    assert_memory_equal(m[1].key.p, "next", 4);
    assert_memory_equal(m[2].value.p, "-3", m[2].value.n);
    struct jspan *e;
    size_t ne;
    assert_int_equal(jscan_elements(m[0].value, &e, &ne), 0);
    assert_int_equal(ne, 3);
    assert_int_equal(e[0].n, strlen("{\"a\":\"x,]\"}"));
    struct jspan v;
    assert_int_equal(jscan_member(e[0], "a", &v), 0);
    assert_true(jscan_is_string(v, "x,]"));
    assert_false(jscan_is_string(v, "x,"));
    assert_int_equal(jscan_member(e[1], "b", &v), -1);
    /* jscan_find gives what jscan_member gives, the first of a key given twice too */
    assert_int_equal(jscan_find(e[0], "a", &v), 0);
    assert_true(jscan_is_string(v, "x,]"));
    assert_int_equal(jscan_find(e[1], "b", &v), -1);
    assert_int_equal(jscan_find(span("{\"k\":1,\"s\":\"a\",\"s\":\"b\"}"), "s", &v), 0);
    assert_true(jscan_is_string(v, "a"));
    assert_int_equal(jscan_find(span("[1]"), "s", &v), -1);
    free(e);
    free(m);
    assert_int_equal(jscan_elements(span("[]"), &e, &ne), 0);
    assert_int_equal(ne, 0);
    free(e);
}

static void bad_text_is_refused(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "", "{", "{\"a\":1", "{\"a\":\"open}", "{\"a\":[1}", "{\"a\":1]}", "[1,2", "{\"a\":1} x",
        "{\"a\" 1}", "{a:1}", "[1,,2]", "{\"a\":1,}", "[\x01]", "[1]]",
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        struct jmember *m = NULL;
        struct jspan *e = NULL;
        size_t n;
        int obj = jscan_members(span(bad[i]), &m, &n), arr = jscan_elements(span(bad[i]), &e, &n);
        if (obj == 0 || arr == 0)
            fail_msg("'%s' was taken as JSON", bad[i]);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(documents_reindent_as_jansson),
        cmocka_unit_test(members_and_elements),
        cmocka_unit_test(bad_text_is_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
