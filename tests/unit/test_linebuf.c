/* test_linebuf — a byte stream split into lines, whatever the chunking. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "fr_linebuf.h"

struct seen {
    char lines[8][64];
    int n, stop_after;
};

static int on_line(void *arg, char *line)
{
    struct seen *s = arg;
    if (s->n < 8)
        strncpy(s->lines[s->n], line, 63);
    s->n++;
    return s->stop_after && s->n >= s->stop_after;
}

static void any_chunking_gives_the_same_lines(void **state)
{
    const char *text = "{\"op\":\"hello\"}\n{\"op\":\"attach\"}\n\npartial";
    size_t len = strlen(text);
    for (size_t cut = 0; cut <= len; cut++) {
        struct fr_linebuf lb;
        struct seen s = { .n = 0 };
        fr_linebuf_init(&lb, 1024);
        assert_int_equal(fr_linebuf_feed(&lb, text, cut, on_line, &s), 0);
        assert_int_equal(fr_linebuf_feed(&lb, text + cut, len - cut, on_line, &s), 0);
        assert_int_equal(s.n, 3);
        assert_string_equal(s.lines[0], "{\"op\":\"hello\"}");
        assert_string_equal(s.lines[2], "");
        assert_int_equal(lb.len, strlen("partial"));
        fr_linebuf_release(&lb);
    }
}

static void stopping_keeps_the_rest(void **state)
{
    struct fr_linebuf lb;
    struct seen s = { .n = 0, .stop_after = 1 };
    fr_linebuf_init(&lb, 1024);
    fr_linebuf_feed(&lb, "a\nb\nc\n", 6, on_line, &s);
    assert_int_equal(s.n, 1);
    s.stop_after = 0;
    fr_linebuf_feed(&lb, "", 0, on_line, &s);
    assert_int_equal(s.n, 3);
    assert_string_equal(s.lines[2], "c");
    fr_linebuf_release(&lb);
}

static void overlong_lines_are_dropped_and_counted(void **state)
{
    struct fr_linebuf lb;
    struct seen s = { .n = 0 };
    fr_linebuf_init(&lb, 16);
    char big[100];
    memset(big, 'x', sizeof big);
    fr_linebuf_feed(&lb, big, sizeof big, on_line, &s);
    assert_int_equal(lb.dropped, 1);
    assert_int_equal(lb.len, 0);
    fr_linebuf_feed(&lb, "ok\n", 3, on_line, &s);
    assert_int_equal(s.n, 1);
    assert_string_equal(s.lines[0], "ok");
    fr_linebuf_release(&lb);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(any_chunking_gives_the_same_lines),
        cmocka_unit_test(stopping_keeps_the_rest),
        cmocka_unit_test(overlong_lines_are_dropped_and_counted),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
