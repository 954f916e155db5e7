/* test_catalog — firmware lists in the real formats, and what a job's firmware means. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fr_catalog.h"
#include "fr_err.h"

static void fixture(char *buf, size_t len, const char *name)
{
    snprintf(buf, len, "%s/firmware/%s", getenv("FR_FIXTURES"), name);
}

static void load_both(struct fr_catalog *c)
{
    char path[1024], err[256];
    memset(c, 0, sizeof *c);
    fixture(path, sizeof path, "ipswme-iPhone11,2.json");
    if (fr_catalog_load(c, path, err, sizeof err))
        fail_msg("%s", err);
    fixture(path, sizeof path, "version.xml");
    if (fr_catalog_load(c, path, err, sizeof err))
        fail_msg("%s", err);
}

static void versions_order_numerically(void **state)
{
    assert_true(fr_version_cmp("17.7.2", "18.2") < 0);
    assert_true(fr_version_cmp("18.10", "18.2") > 0);
    assert_true(fr_version_cmp("18.2", "18.2") == 0);
    assert_true(fr_version_cmp("18.2.1", "18.2") > 0);
}

static void sources_merge(void **state)
{
    struct fr_catalog c;
    load_both(&c);
    /* iPhone11,2: 3 from ipsw.me (22C152 also in Apple's list: merged), iPhone11,6: 1 from Apple */
    assert_int_equal(c.n, 4);
    fr_catalog_release(&c);
}

static void latest_signed_for_a_model(void **state)
{
    struct fr_catalog c;
    load_both(&c);
    struct fr_fw fw;
    char err[256];
    assert_int_equal(fr_catalog_resolve(&c, "iPhone11,2", "latest", &fw, err, sizeof err), 0);
    assert_string_equal(fw.build, "22C152");
    assert_string_equal(fw.sha256, "c2ab81582fa89ce12d68309458e6d3d5339811d20ee0a7c444e0c2cccfd4c242");
    assert_true(fw.size == 8576542980ull);
    /* Apple's list alone says nothing of signing: its newest build is taken */
    assert_int_equal(fr_catalog_resolve(&c, "iPhone11,6", "latest", &fw, err, sizeof err), 0);
    assert_string_equal(fw.version, "18.2");
    assert_string_equal(fw.sha1, "39dc9be8699797763df6c744b7ec207419748fec");
    fr_catalog_release(&c);
}

static void by_version_build_url_or_file(void **state)
{
    struct fr_catalog c;
    load_both(&c);
    struct fr_fw fw;
    char err[256];
    assert_int_equal(fr_catalog_resolve(&c, "iPhone11,2", "17.7.2", &fw, err, sizeof err), 0);
    assert_string_equal(fw.build, "21H221");
    assert_int_equal(fr_catalog_resolve(&c, "iPhone11,2", "22B91", &fw, err, sizeof err), 0);
    assert_false(fw.is_signed); /* asked for by build: the caller checks signing */
    assert_int_equal(fr_catalog_resolve(&c, "iPhone11,2", "https://mirror.example/x.ipsw", &fw, err,
                                        sizeof err), 0);
    assert_string_equal(fw.url, "https://mirror.example/x.ipsw");
    char path[1024];
    fixture(path, sizeof path, "version.xml"); /* any readable file stands for a local IPSW */
    assert_int_equal(fr_catalog_resolve(&c, "iPhone11,2", path, &fw, err, sizeof err), 0);
    assert_string_equal(fw.url, path);
    fr_catalog_release(&c);
}

static void unknown_models_and_builds_say_so(void **state)
{
    struct fr_catalog c;
    load_both(&c);
    struct fr_fw fw;
    char err[256] = "";
    assert_int_equal(fr_catalog_resolve(&c, "iPhone12,1", "latest", &fw, err, sizeof err), FR_ENOTFOUND);
    assert_non_null(strstr(err, "no signed build for iPhone12,1"));
    assert_int_equal(fr_catalog_resolve(&c, "iPhone11,2", "9.9", &fw, err, sizeof err), FR_ENOTFOUND);
    assert_non_null(strstr(err, "no build '9.9' for iPhone11,2"));
    fr_catalog_release(&c);
}

static void malformed_catalogs_name_the_problem(void **state)
{
    struct fr_catalog c = { 0 };
    char err[256] = "";
    const char *bad_json = "{\"identifier\": \"iPhone11,2\", \"firmwares\": [ {\"version\": \"18.2\"} ]}";
    assert_int_equal(fr_catalog_load_data(&c, "dev.json", bad_json, strlen(bad_json), err, sizeof err),
                     FR_EINVAL);
    assert_non_null(strstr(err, "dev.json: firmwares[0]"));
    assert_int_equal(fr_catalog_load_data(&c, "x.json", "{ nope", 6, err, sizeof err), FR_EINVAL);
    assert_non_null(strstr(err, "x.json:1: not JSON"));
    assert_int_equal(fr_catalog_load_data(&c, "v.xml", "<plist><dict/></plist>", 22, err, sizeof err),
                     FR_EINVAL);
    assert_non_null(strstr(err, "MobileDeviceSoftwareVersionsByVersion"));
    assert_int_equal(fr_catalog_load(&c, "/nonexistent.json", err, sizeof err), FR_EIO);
    assert_int_equal(c.n, 0);
    fr_catalog_release(&c);
}

static void selectors_are_told_from_files_and_urls(void **state)
{
    const char *yes[] = { "latest", "18.2", "17.7.2", "22C152", "21H216", "20G81a", "9A334" };
    const char *no[] = { "", "18", "18.", ".2", "1..2", "http://x/18.2.ipsw", "fw.ipsw", "/srv/22C152",
                         "22c152", "123C1", "22C", "22C12345", "22C152ab", "Latest" };
    for (size_t i = 0; i < sizeof yes / sizeof *yes; i++)
        if (!fr_catalog_is_selector(yes[i]))
            fail_msg("'%s' should be a selector", yes[i]);
    for (size_t i = 0; i < sizeof no / sizeof *no; i++)
        if (fr_catalog_is_selector(no[i]))
            fail_msg("'%s' should not be a selector", no[i]);
}

static void cache_age(void **state)
{
    char path[] = "/tmp/fr-test-catalog-XXXXXX";
    close(mkstemp(path));
    assert_true(fr_catalog_fresh(path, 3600));
    assert_false(fr_catalog_fresh(path, 0));
    unlink(path);
    assert_false(fr_catalog_fresh(path, 3600));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(versions_order_numerically),
        cmocka_unit_test(sources_merge),
        cmocka_unit_test(latest_signed_for_a_model),
        cmocka_unit_test(by_version_build_url_or_file),
        cmocka_unit_test(unknown_models_and_builds_say_so),
        cmocka_unit_test(malformed_catalogs_name_the_problem),
        cmocka_unit_test(selectors_are_told_from_files_and_urls),
        cmocka_unit_test(cache_age),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
