/* test_text — fr_fmt() stores the whole text or nothing, never a cut one. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "fr_err.h"
#include "fr_text.h"

static void a_text_that_fits_is_stored_whole(void **state)
{
    char buf[8] = "x";
    assert_int_equal(fr_fmt(buf, sizeof buf, "%s.pub", "key"), 0);
    assert_string_equal(buf, "key.pub"); /* 7 characters and the NUL: exactly full */
}

static void one_byte_over_is_refused_and_leaves_nothing(void **state)
{
    char buf[8] = "x";
    assert_int_equal(fr_fmt(buf, sizeof buf, "%s.pub", "keys"), FR_ETOOBIG);
    assert_string_equal(buf, ""); /* not "keys.pu", which names another file */
    assert_int_equal(fr_fmt(buf, 0, "%s", ""), FR_ETOOBIG);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(a_text_that_fits_is_stored_whole),
        cmocka_unit_test(one_byte_over_is_refused_and_leaves_nothing),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
