/* test_ipsw — reading IPSWs (real zips made here, real-shaped manifest) and
 * choosing the build identity the way idevicerestore does. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zip.h>

#include "fr_err.h"
#include "fr_ipsw.h"

static char ipsw_path[64], empty_zip[64];

/* A zip holding the fixture manifest (and a stand-in filesystem), or nothing. */
static void make_zip(const char *path, int with_manifest)
{
    int zerr;
    unlink(path);
    zip_t *z = zip_open(path, ZIP_CREATE | ZIP_TRUNCATE, &zerr);
    assert_non_null(z);
    if (with_manifest) {
        char fixture[1024];
        snprintf(fixture, sizeof fixture, "%s/firmware/BuildManifest-18.2-22C152.plist",
                 getenv("FR_FIXTURES"));
        zip_source_t *src = zip_source_file(z, fixture, 0, -1);
        assert_non_null(src);
        assert_true(zip_file_add(z, "BuildManifest.plist", src, ZIP_FL_OVERWRITE) >= 0);
    }
    static const char fs[] = "not really a filesystem";
    zip_source_t *b = zip_source_buffer(z, fs, sizeof fs, 0);
    assert_true(zip_file_add(z, "090-27226-102.dmg.aea", b, ZIP_FL_OVERWRITE) >= 0);
    assert_int_equal(zip_close(z), 0);
}

static int setup(void **state)
{
    snprintf(ipsw_path, sizeof ipsw_path, "/tmp/fr-test-%d.ipsw", (int)getpid());
    snprintf(empty_zip, sizeof empty_zip, "/tmp/fr-test-%d-empty.ipsw", (int)getpid());
    make_zip(ipsw_path, 1);
    make_zip(empty_zip, 0);
    return 0;
}

static int teardown(void **state)
{
    unlink(ipsw_path);
    unlink(empty_zip);
    return 0;
}

static void reads_version_build_and_models(void **state)
{
    struct fr_ipsw ipsw;
    char err[256] = "";
    int rc = fr_ipsw_inspect(ipsw_path, &ipsw, err, sizeof err);
    if (rc)
        fail_msg("%s", err);
    assert_string_equal(ipsw.version, "18.2");
    assert_string_equal(ipsw.build, "22C152");
    assert_int_equal(ipsw.nproduct_types, 3);
    assert_true(fr_ipsw_supports(&ipsw, "iPhone11,6"));
    assert_false(fr_ipsw_supports(&ipsw, "iPhone12,1"));
    assert_int_equal(ipsw.nidentities, 7);
    assert_int_equal(ipsw.identities[0].chip_id, 0x8020);
    assert_int_equal(ipsw.identities[0].board_id, 0x0e);
}

static void chooses_identity_like_idevicerestore(void **state)
{
    struct fr_ipsw ipsw;
    char err[256];
    assert_int_equal(fr_ipsw_inspect(ipsw_path, &ipsw, err, sizeof err), 0);
    const struct fr_ipsw_identity *id = fr_ipsw_identity_for(&ipsw, "d321ap", 1, err, sizeof err);
    assert_non_null(id);
    assert_string_equal(id->variant, "Customer Erase Install (IPSW)");
    id = fr_ipsw_identity_for(&ipsw, "D331PAP", 0, err, sizeof err); /* case-insensitive */
    assert_non_null(id);
    assert_string_equal(id->device_class, "d331pap");
    assert_string_equal(id->behavior, "Update");
    assert_null(strstr(id->variant, "Research"));
}

static void model_not_in_manifest_is_a_clear_error(void **state)
{
    struct fr_ipsw ipsw;
    char err[256] = "";
    assert_int_equal(fr_ipsw_inspect(ipsw_path, &ipsw, err, sizeof err), 0);
    assert_null(fr_ipsw_identity_for(&ipsw, "n104ap", 1, err, sizeof err));
    /* the same words idevicerestore uses, so the class is wrong_firmware */
    assert_non_null(strstr(err, "Unable to find a matching build identity"));
    assert_non_null(strstr(err, "n104ap"));
    assert_non_null(strstr(err, "22C152"));
}

static void bad_files_name_what_is_wrong(void **state)
{
    struct fr_ipsw ipsw;
    char err[256] = "";
    assert_int_equal(fr_ipsw_inspect(empty_zip, &ipsw, err, sizeof err), FR_EINVAL);
    assert_non_null(strstr(err, "has no BuildManifest.plist"));
    char junk[] = "/tmp/fr-test-junk-ipsw-XXXXXX";
    int fd = mkstemp(junk);
    assert_int_equal(write(fd, "plain text, not a zip at all", 28), 28);
    close(fd);
    assert_int_equal(fr_ipsw_inspect(junk, &ipsw, err, sizeof err), FR_EIO);
    assert_non_null(strstr(err, "cannot open"));
    assert_non_null(strstr(err, junk));
    unlink(junk);
    assert_int_equal(fr_ipsw_inspect("/nonexistent.ipsw", &ipsw, err, sizeof err), FR_EIO);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(reads_version_build_and_models),
        cmocka_unit_test(chooses_identity_like_idevicerestore),
        cmocka_unit_test(model_not_in_manifest_is_a_clear_error),
        cmocka_unit_test(bad_files_name_what_is_wrong),
    };
    return cmocka_run_group_tests_name("ipsw", tests, setup, teardown);
}
