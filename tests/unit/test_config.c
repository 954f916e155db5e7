/* test_config — table-driven INI loading: values, bounds, and errors that name the line. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fr_config.h"
#include "fr_err.h"

struct demo_cfg {
    char endpoint[64];
    long long heartbeat_ms;
    int verbose;
    double scale;
    char sources[2048];
    char mode[8];
};

static const struct fr_cfg_field fields[] = {
    FR_CFG_FIELD_STR("link", "endpoint", struct demo_cfg, endpoint),
    FR_CFG_FIELD_INT("link", "heartbeat_ms", struct demo_cfg, heartbeat_ms, 10, 60000),
    FR_CFG_FIELD_BOOL("log", "verbose", struct demo_cfg, verbose),
    FR_CFG_FIELD_DOUBLE("sim", "scale", struct demo_cfg, scale, 0.1, 1000),
    FR_CFG_FIELD_STR("sim", "sources", struct demo_cfg, sources),
    FR_CFG_FIELD_ENUM("sim", "mode", struct demo_cfg, mode, "sim|usb|none"),
};
#define NFIELDS (sizeof fields / sizeof fields[0])

static char *write_tmp(const char *text)
{
    char *path = strdup("/tmp/fr-test-config-XXXXXX");
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
    return path;
}

static int load_text(const char *text, struct demo_cfg *cfg, char *err, size_t errlen)
{
    char *path = write_tmp(text);
    int rc = fr_cfg_load(path, fields, NFIELDS, cfg, err, errlen);
    unlink(path);
    free(path);
    return rc;
}

static void loads_every_type(void **state)
{
    struct demo_cfg cfg = { "tcp://default", 1000, 0, 1.0, "", "" };
    char err[256] = "";
    int rc = load_text("; comment\n[link]\nendpoint = tcp://127.0.0.1:7710\nheartbeat_ms = 250\n"
                       "[log]\nverbose = yes\n[sim]\nscale = 60\n",
                       &cfg, err, sizeof err);
    assert_int_equal(rc, 0);
    assert_string_equal(cfg.endpoint, "tcp://127.0.0.1:7710");
    assert_int_equal(cfg.heartbeat_ms, 250);
    assert_int_equal(cfg.verbose, 1);
    assert_true(cfg.scale == 60.0);
}

static void missing_keys_keep_defaults(void **state)
{
    struct demo_cfg cfg = { "tcp://default", 1000, 0, 1.0, "", "" };
    char err[256];
    assert_int_equal(load_text("[link]\n", &cfg, err, sizeof err), 0);
    assert_string_equal(cfg.endpoint, "tcp://default");
    assert_int_equal(cfg.heartbeat_ms, 1000);
}

static void bad_value_names_line_and_key(void **state)
{
    struct demo_cfg cfg = { "x", 1000, 0, 1.0, "", "" };
    char err[256] = "";
    int rc = load_text("[link]\nendpoint = a\n\nheartbeat_ms = fast\n", &cfg, err, sizeof err);
    assert_int_equal(rc, FR_ECONFIG);
    assert_non_null(strstr(err, ":4: [link] heartbeat_ms: expected an integer from 10 to 60000, got 'fast'"));
    assert_int_equal(cfg.heartbeat_ms, 1000);
}

static void out_of_range_and_unknown(void **state)
{
    struct demo_cfg cfg = { "x", 1000, 0, 1.0, "", "" };
    char err[256] = "";
    assert_int_equal(load_text("[link]\nheartbeat_ms = 5\n", &cfg, err, sizeof err), FR_ECONFIG);
    assert_non_null(strstr(err, ":2: [link] heartbeat_ms"));
    assert_int_equal(load_text("[link]\nheartbeat = 5\n", &cfg, err, sizeof err), FR_ECONFIG);
    assert_non_null(strstr(err, ":2: [link] unknown key 'heartbeat'"));
    assert_int_equal(load_text("[lnk]\nendpoint = 5\n", &cfg, err, sizeof err), FR_ECONFIG);
    assert_non_null(strstr(err, "unknown section [lnk]"));
    assert_int_equal(load_text("[log]\nverbose = maybe\n", &cfg, err, sizeof err), FR_ECONFIG);
    assert_non_null(strstr(err, "expected true/false"));
}

static void syntax_error_and_missing_file(void **state)
{
    struct demo_cfg cfg = { "x", 1000, 0, 1.0, "", "" };
    char err[256] = "";
    assert_int_equal(load_text("[link]\nendpoint = a\nthis line is wrong\n", &cfg, err, sizeof err),
                     FR_ECONFIG);
    assert_non_null(strstr(err, ":3: expected"));
    assert_int_equal(fr_cfg_load("/nonexistent/x.ini", fields, NFIELDS, &cfg, err, sizeof err),
                     FR_ECONFIG);
    assert_non_null(strstr(err, "cannot open '/nonexistent/x.ini'"));
}

static void string_too_long(void **state)
{
    struct demo_cfg cfg = { "x", 1000, 0, 1.0, "", "" };
    char err[256] = "", text[256];
    snprintf(text, sizeof text, "[link]\nendpoint = %0100d\n", 7);
    assert_int_equal(load_text(text, &cfg, err, sizeof err), FR_ECONFIG);
    assert_non_null(strstr(err, "at most 63 characters"));
    assert_string_equal(cfg.endpoint, "x");
}

static void command_line_overrides(void **state)
{
    struct demo_cfg cfg = { "x", 1000, 0, 1.0, "", "" };
    char err[256] = "";
    assert_int_equal(fr_cfg_set("link.heartbeat_ms=300", fields, NFIELDS, &cfg, err, sizeof err), 0);
    assert_int_equal(cfg.heartbeat_ms, 300);
    assert_int_equal(fr_cfg_set("link.heartbeat_ms", fields, NFIELDS, &cfg, err, sizeof err),
                     FR_ECONFIG);
    assert_non_null(strstr(err, "expected section.key=value"));
    assert_int_equal(fr_cfg_set("sim.scale=0", fields, NFIELDS, &cfg, err, sizeof err), FR_ECONFIG);
    assert_non_null(strstr(err, "--set: [sim] scale"));
}

/* inih cut lines at 200 bytes and parsed the rest as a line of its own. */
static void long_lines_are_read_whole(void **state)
{
    struct demo_cfg cfg = { "x", 1000, 0, 1.0, "", "" };
    char err[256] = "", text[1200], urls[1000] = "";
    for (int i = 0; i < 12; i++)
        snprintf(urls + strlen(urls), sizeof urls - strlen(urls), "%shttps://catalog%02d.example/v4/devices",
                 i ? " " : "", i);
    snprintf(text, sizeof text, "[sim]\nsources = %s\nscale = 3\n", urls);
    assert_true(strlen(urls) > 400);
    assert_int_equal(load_text(text, &cfg, err, sizeof err), 0);
    assert_string_equal(cfg.sources, urls);
    assert_true(cfg.scale == 3.0);
    /* and an error after a long line has the right line number */
    snprintf(text, sizeof text, "[sim]\nsources = %s\nscale = big\n", urls);
    assert_int_equal(load_text(text, &cfg, err, sizeof err), FR_ECONFIG);
    assert_non_null(strstr(err, ":3: [sim] scale"));
}

static void repeats_are_errors_with_both_lines(void **state)
{
    struct demo_cfg cfg = { "x", 1000, 0, 1.0, "", "" };
    char err[256] = "";
    assert_int_equal(load_text("[link]\nheartbeat_ms = 100\n; note\nheartbeat_ms = 200\n", &cfg, err,
                               sizeof err), FR_ECONFIG);
    assert_non_null(strstr(err, ":4: [link] heartbeat_ms given twice (first at line 2)"));
    assert_int_equal(cfg.heartbeat_ms, 100);
    assert_int_equal(load_text("[link]\nendpoint = a\n[log]\nverbose = 1\n[link]\nheartbeat_ms = 9\n",
                               &cfg, err, sizeof err), FR_ECONFIG);
    assert_non_null(strstr(err, ":5: section [link] given twice (first at line 1)"));
    /* the same key in two sections is two settings */
    assert_int_equal(load_text("[link]\nendpoint = a\n[sim]\nscale = 2\n", &cfg, err, sizeof err), 0);
}

static int accept_any(void *user, const char *section, const char *key, const char *value, int line)
{
    (void)user, (void)section, (void)key, (void)value, (void)line;
    return 1;
}

/* A long key given twice is named whole, or, when the caller's buffer cannot hold it, by its
 * length; never cut. */
static void long_key_given_twice_is_named_whole(void **state)
{
    char key[301], text[700], want[400], err[1024] = "", small[128] = "";
    memset(key, 'k', 300);
    key[300] = '\0';
    snprintf(text, sizeof text, "[rack]\n%s = 1\n%s = 2\n", key, key);
    char *path = write_tmp(text);
    assert_int_equal(fr_cfg_ini_parse(path, accept_any, NULL, err, sizeof err), FR_ECONFIG);
    snprintf(want, sizeof want, ":3: [rack] %s given twice (first at line 2)", key);
    assert_non_null(strstr(err, want));
    assert_int_equal(fr_cfg_ini_parse(path, accept_any, NULL, small, sizeof small), FR_ECONFIG);
    assert_non_null(strstr(small, ":3: [rack] a key of 300 characters given twice (first at line 2)"));
    unlink(path);
    free(path);
}

static void choices_are_checked_with_their_line(void **state)
{
    struct demo_cfg cfg = { "x", 1000, 0, 1.0, "", "" };
    char err[256] = "";
    assert_int_equal(load_text("[sim]\nmode = usb\n", &cfg, err, sizeof err), 0);
    assert_string_equal(cfg.mode, "usb");
    assert_int_equal(load_text("[sim]\n\nmode = usbb\n", &cfg, err, sizeof err), FR_ECONFIG);
    assert_non_null(strstr(err, ":3: [sim] mode: expected sim, usb or none, got 'usbb'"));
    assert_int_equal(fr_cfg_set("sim.mode=", fields, NFIELDS, &cfg, err, sizeof err), FR_ECONFIG);
    assert_string_equal(cfg.mode, "usb");
}

static void comments_and_key_outside_a_section(void **state)
{
    struct demo_cfg cfg = { "x", 1000, 0, 1.0, "", "" };
    char err[256] = "";
    assert_int_equal(load_text("# hash\n[link]\nendpoint = tcp://h:1 ; the hub\n", &cfg, err, sizeof err), 0);
    assert_string_equal(cfg.endpoint, "tcp://h:1");
    assert_int_equal(load_text("endpoint = a\n[link]\n", &cfg, err, sizeof err), FR_ECONFIG);
    assert_non_null(strstr(err, ":1: expected"));
    assert_int_equal(load_text("[link\n", &cfg, err, sizeof err), FR_ECONFIG);
    assert_non_null(strstr(err, ":1: expected '[section]'"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(loads_every_type),         cmocka_unit_test(missing_keys_keep_defaults),
        cmocka_unit_test(bad_value_names_line_and_key), cmocka_unit_test(out_of_range_and_unknown),
        cmocka_unit_test(syntax_error_and_missing_file), cmocka_unit_test(string_too_long),
        cmocka_unit_test(command_line_overrides),  cmocka_unit_test(long_lines_are_read_whole),
        cmocka_unit_test(repeats_are_errors_with_both_lines),
        cmocka_unit_test(long_key_given_twice_is_named_whole),
        cmocka_unit_test(choices_are_checked_with_their_line),
        cmocka_unit_test(comments_and_key_outside_a_section),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
