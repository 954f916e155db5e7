/* test_mirror_range — the mirror's Range header parsing (RFC 9110 byte ranges). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "mirror.h"

static void check(const char *h, uint64_t size, int want, uint64_t from, uint64_t to)
{
    uint64_t a = 77, b = 77;
    int got = mirror_parse_range(h, size, &a, &b);
    if (got != want)
        fail_msg("'%s' on %llu bytes: %d, expected %d", h ? h : "(none)", (unsigned long long)size,
                 got, want);
    if (want == 1 && (a != from || b != to))
        fail_msg("'%s': %llu-%llu, expected %llu-%llu", h, (unsigned long long)a,
                 (unsigned long long)b, (unsigned long long)from, (unsigned long long)to);
}

static void ranges(void **state)
{
    check(NULL, 100, 0, 0, 0);
    check("bytes=0-", 100, 1, 0, 99);
    check("bytes=10-19", 100, 1, 10, 19);
    check("bytes=90-200", 100, 1, 90, 99);  /* clipped to the file */
    check("bytes=-5", 100, 1, 95, 99);      /* the last five */
    check("bytes=-500", 100, 1, 0, 99);     /* more than the file: all of it */
    check("bytes=99-99", 100, 1, 99, 99);
}

static void whole_file_answers(void **state)
{
    check("items=0-5", 100, 0, 0, 0);       /* another unit */
    check("bytes=0-5,10-20", 100, 0, 0, 0); /* several ranges: we send it all */
}

static void unsatisfiable(void **state)
{
    check("bytes=100-", 100, -1, 0, 0);
    check("bytes=20-10", 100, -1, 0, 0);
    check("bytes=-0", 100, -1, 0, 0);
    check("bytes=abc", 100, -1, 0, 0);
    check("bytes=5-x", 100, -1, 0, 0);
    check("bytes=", 100, -1, 0, 0);
    check("bytes=0-", 0, -1, 0, 0);         /* nothing to give */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(ranges),
        cmocka_unit_test(whole_file_answers),
        cmocka_unit_test(unsatisfiable),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
