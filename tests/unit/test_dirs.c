/* test_dirs — relative settings land in systemd's directories; absolute ones never move. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fr_dirs.h"
#include "fr_err.h"

static void relative_goes_under_the_first_state_directory(void **state)
{
    setenv("STATE_DIRECTORY", "/var/lib/flashrack/:/var/lib/other", 1);
    char store[64] = "flashrack.db", dot[64] = "./catalog";
    assert_int_equal(fr_dir_resolve(FR_DIR_STATE, store, sizeof store, "[controller] store", NULL, 0), 0);
    assert_string_equal(store, "/var/lib/flashrack/flashrack.db");
    assert_int_equal(fr_dir_resolve(FR_DIR_STATE, dot, sizeof dot, "[firmware] catalog_dir", NULL, 0), 0);
    assert_string_equal(dot, "/var/lib/flashrack/catalog");
    unsetenv("STATE_DIRECTORY");
}

static void each_kind_has_its_own_variable(void **state)
{
    setenv("STATE_DIRECTORY", "/s", 1);
    setenv("CACHE_DIRECTORY", "/c", 1);
    setenv("RUNTIME_DIRECTORY", "/r", 1);
    char a[32] = "x", b[32] = "x", c[32] = "x";
    fr_dir_resolve(FR_DIR_STATE, a, sizeof a, "a", NULL, 0);
    fr_dir_resolve(FR_DIR_CACHE, b, sizeof b, "b", NULL, 0);
    fr_dir_resolve(FR_DIR_RUNTIME, c, sizeof c, "c", NULL, 0);
    assert_string_equal(a, "/s/x");
    assert_string_equal(b, "/c/x");
    assert_string_equal(c, "/r/x");
    unsetenv("STATE_DIRECTORY");
    unsetenv("CACHE_DIRECTORY");
    unsetenv("RUNTIME_DIRECTORY");
}

static void absolute_and_empty_settings_are_kept(void **state)
{
    setenv("STATE_DIRECTORY", "/var/lib/flashrack", 1);
    char abs[64] = "/srv/flashrack.db", empty[8] = "";
    assert_int_equal(fr_dir_resolve(FR_DIR_STATE, abs, sizeof abs, "s", NULL, 0), 0);
    assert_string_equal(abs, "/srv/flashrack.db");
    assert_int_equal(fr_dir_resolve(FR_DIR_STATE, empty, sizeof empty, "s", NULL, 0), 0);
    assert_string_equal(empty, "");
    unsetenv("STATE_DIRECTORY");
}

static void a_result_too_long_is_an_error_naming_the_setting(void **state)
{
    setenv("CACHE_DIRECTORY", "/var/cache/flashrack", 1);
    char dir[16] = "mirror", err[256];
    assert_int_equal(fr_dir_resolve(FR_DIR_CACHE, dir, sizeof dir, "[mirror] dir", err, sizeof err),
                     FR_ECONFIG);
    assert_string_equal(dir, "mirror");
    assert_non_null(strstr(err, "[mirror] dir"));
    assert_non_null(strstr(err, "/var/cache/flashrack"));
    unsetenv("CACHE_DIRECTORY");
}

static void without_systemd_the_build_decides(void **state)
{
    /* The test build keeps relative paths; a FR_FHS_DEFAULTS build puts them under the FHS. */
    unsetenv("STATE_DIRECTORY");
    char base[256], store[128] = "flashrack.db", want[300];
    const char *b = fr_dir_base(FR_DIR_STATE, base, sizeof base);
    fr_dir_resolve(FR_DIR_STATE, store, sizeof store, "s", NULL, 0);
    if (b) {
        snprintf(want, sizeof want, "%s/flashrack.db", b);
        assert_string_equal(b, "/var/lib/flashrack");
    } else {
        snprintf(want, sizeof want, "flashrack.db");
    }
    assert_string_equal(store, want);
    setenv("STATE_DIRECTORY", "", 1);
    assert_true((fr_dir_base(FR_DIR_STATE, base, sizeof base) != NULL) == (b != NULL));
    unsetenv("STATE_DIRECTORY");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(relative_goes_under_the_first_state_directory),
        cmocka_unit_test(each_kind_has_its_own_variable),
        cmocka_unit_test(absolute_and_empty_settings_are_kept),
        cmocka_unit_test(a_result_too_long_is_an_error_naming_the_setting),
        cmocka_unit_test(without_systemd_the_build_decides),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
