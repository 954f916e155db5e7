/* test_rackmap — the rack map: labels for both halves of a port, hub names and
 * uplinks, every mistake named by file and line, and an atomic round trip. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fr_err.h"
#include "rackmap.h"

static void fixture(const char *name, char *buf, size_t len)
{
    snprintf(buf, len, "%s/rackmap/%s", getenv("FR_FIXTURES"), name);
}

static void reads_labels_hubs_and_uplinks(void **state)
{
    char path[512], err[512] = "";
    fixture("good.ini", path, sizeof path);
    struct rackmap *m = NULL;
    assert_int_equal(rackmap_load(path, &m, err, sizeof err), 0);
    assert_int_equal(m->nports, 4);
    assert_string_equal(rackmap_label(m, "1-1.2"), "A-02");
    assert_string_equal(rackmap_label(m, "2-1.2"), "A-02"); /* the USB 3 half */
    assert_string_equal(rackmap_label(m, "1-2.1"), "B-01");
    assert_null(rackmap_label(m, "1-2.2")); /* unknown: the caller labels it by path */
    assert_string_equal(rackmap_hub(m, "2-1.4"), "front-chain");
    assert_null(rackmap_hub(m, "1-3"));
    assert_string_equal(m->hubs[0].uplink, "shelf-1");
    assert_string_equal(m->hubs[1].uplink, "shelf-1");
    assert_string_equal(m->hubs[2].uplink, "");
    char next[32];
    rackmap_next_label(m, "A-", next, sizeof next);
    assert_string_equal(next, "A-04");
    rackmap_destroy(&m);
    assert_null(m);
}

static void refuses(const char *name, const char *want)
{
    char path[512], err[512] = "", full[700];
    fixture(name, path, sizeof path);
    struct rackmap *m = NULL;
    assert_int_equal(rackmap_load(path, &m, err, sizeof err), FR_ECONFIG);
    assert_null(m);
    snprintf(full, sizeof full, "%s:%s", path, want);
    if (strcmp(err, full) != 0)
        fail_msg("got '%s', expected '%s'", err, full);
}

static void mistakes_name_file_and_line(void **state)
{
    refuses("dup_label.ini", "4: [ports] A-01 given twice (first at line 2)");
    refuses("dup_path.ini", "4: [ports] A-03: path '2-1.1' is already port 'A-01' (line 2)");
    refuses("bad_path.ini", "3: [ports] A-02: expected a kernel port path like 1-1.4.2, got 'port-two'");
    refuses("bad_section.ini", "4: [shelves] top: unknown section (expected [ports], [hubs] or [uplinks])");
    refuses("bad_uplink.ini", "4: [uplinks] shelf-1: no hub 'back' in [hubs] above");
    refuses("three_paths.ini", "2: [ports] A-01: expected 1 or 2 paths, got '1-1.1 2-1.1 3-1.1'");
}

/* An uplink's name is kept whole or refused: it was cut to 31 characters (so two long
 * names sharing a beginning became one uplink, and a rewrite of the map stored the cut one). */
static void long_uplink_name_is_refused(void **state)
{
    refuses("long_uplink.ini", "4: [uplinks] shelf-1-front-chain-left-side-usb3: expected an uplink "
                               "name of 1 to 31 characters without spaces, '=', ';' or brackets");
}

static void missing_file(void **state)
{
    struct rackmap *m = NULL;
    char err[256];
    assert_int_equal(rackmap_load("/nonexistent/rack-map.ini", &m, err, sizeof err), FR_ENOTFOUND);
    assert_string_equal(err, "cannot open rack map '/nonexistent/rack-map.ini': No such file or directory");
}

static void adds_and_round_trips(void **state)
{
    char dir[] = "/tmp/fr-test-rackmap-XXXXXX", path[600], err[256] = "";
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/rack-map.ini", dir);
    struct rackmap *m = rackmap_new();
    const char *a[] = { "1-1.1", "2-1.1" }, *b[] = { "1-1.2" }, *taken[] = { "2-1.1" };
    assert_int_equal(rackmap_add_port(m, "S-01", a, 2, err, sizeof err), 0);
    assert_int_equal(rackmap_add_port(m, "S-02", b, 1, err, sizeof err), 0);
    assert_int_equal(rackmap_add_port(m, "S-03", taken, 1, err, sizeof err), FR_EEXIST);
    assert_string_equal(err, "path '2-1.1' is already port 'S-01'");
    assert_int_equal(rackmap_add_port(m, "S-02", taken + 0, 0, err, sizeof err), FR_EEXIST);
    assert_int_equal(rackmap_add_port(m, "two words", b, 1, err, sizeof err), FR_EINVAL);
    assert_int_equal(rackmap_save(m, path, err, sizeof err), 0);
    rackmap_destroy(&m);
    assert_int_equal(access(path, F_OK), 0);
    char tmp[700];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    assert_int_equal(access(tmp, F_OK), -1); /* renamed into place */
    assert_int_equal(rackmap_load(path, &m, err, sizeof err), 0);
    assert_int_equal(m->nports, 2);
    assert_string_equal(rackmap_label(m, "2-1.1"), "S-01");
    assert_string_equal(rackmap_label(m, "1-1.2"), "S-02");
    rackmap_destroy(&m);
    unlink(path);
    rmdir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(reads_labels_hubs_and_uplinks),
        cmocka_unit_test(long_uplink_name_is_refused),
        cmocka_unit_test(mistakes_name_file_and_line),
        cmocka_unit_test(missing_file),
        cmocka_unit_test(adds_and_round_trips),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
