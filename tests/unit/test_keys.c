/* test_keys — CURVE key files: round trip, mode, errors that name the line, atomic
 * writes that leave nothing behind when they fail, and where clients find their keys. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <dirent.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fr_err.h"
#include "fr_keys.h"

static char *tmpdir(void)
{
    char *d = strdup("/tmp/fr-test-keys-XXXXXX");
    assert_non_null(mkdtemp(d));
    return d;
}

static void put(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static size_t entries(const char *dir)
{
    size_t n = 0;
    DIR *d = opendir(dir);
    struct dirent *e;
    while ((e = readdir(d)))
        n += e->d_name[0] != '.';
    closedir(d);
    return n;
}

static void keypair_round_trip_is_private(void **state)
{
    char *d = tmpdir(), path[256], err[512] = "";
    snprintf(path, sizeof path, "%s/a.key", d);
    struct fr_key k, back;
    assert_int_equal(fr_key_generate(&k), 0);
    assert_true(fr_key_is_z85(k.public_key) && fr_key_is_z85(k.secret_key));
    assert_int_equal(fr_key_write(path, &k, 1, "test", 0600, err, sizeof err), 0);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    assert_int_equal(fr_key_read_pair(path, &back, err, sizeof err), 0);
    assert_string_equal(back.public_key, k.public_key);
    assert_string_equal(back.secret_key, k.secret_key);
    /* a public file is not a keypair */
    snprintf(k.role, sizeof k.role, "viewer");
    assert_int_equal(fr_key_write(path, &k, 0, NULL, 0644, err, sizeof err), 0);
    assert_int_equal(fr_key_read(path, &back, err, sizeof err), 0);
    assert_string_equal(back.secret_key, "");
    assert_string_equal(back.role, "viewer");
    assert_int_equal(fr_key_read_pair(path, &back, err, sizeof err), FR_ECONFIG);
    assert_non_null(strstr(err, "this is a public key"));
    assert_int_equal(entries(d), 1); /* no temporary file left */
    unlink(path);
    rmdir(d);
    free(d);
}

static void errors_name_file_and_line(void **state)
{
    char *d = tmpdir(), path[256], err[512], want[300];
    snprintf(path, sizeof path, "%s/bad.pub", d);
    struct fr_key k, other;
    fr_key_generate(&k);
    fr_key_generate(&other);
    char text[512];

    snprintf(text, sizeof text, "# comment\npublic = %.39s\n", k.public_key);
    put(path, text);
    assert_int_equal(fr_key_read(path, &k, err, sizeof err), FR_ECONFIG);
    snprintf(want, sizeof want, "%s:2: public: expected 40 Z85", path);
    assert_non_null(strstr(err, want));

    put(path, "public = 0123456789012345678901234567890123456789\nflavour = mint\n");
    assert_int_equal(fr_key_read(path, &k, err, sizeof err), FR_ECONFIG);
    snprintf(want, sizeof want, "%s:2: expected public, secret or role", path);
    assert_non_null(strstr(err, want));

    snprintf(text, sizeof text, "public = %s\nsecret = %s\n", k.public_key, other.secret_key);
    put(path, text);
    assert_int_equal(fr_key_read(path, &k, err, sizeof err), FR_ECONFIG);
    assert_non_null(strstr(err, "does not belong"));

    put(path, "# nothing\n");
    assert_int_equal(fr_key_read(path, &k, err, sizeof err), FR_ECONFIG);
    assert_non_null(strstr(err, "expected a 'public = ...' line"));

    put(path, "# comment\n\n[key]\n");
    assert_int_equal(fr_key_read(path, &k, err, sizeof err), FR_ECONFIG);
    snprintf(want, sizeof want, "%s:3: expected 'name = value'", path);
    assert_non_null(strstr(err, want));

    /* Z85 has '#' and ';': inside a key they are not comments */
    for (int tries = 0; tries < 1000 && !strpbrk(k.public_key, "#;"); tries++)
        fr_key_generate(&k);
    assert_non_null(strpbrk(k.public_key, "#;"));
    snprintf(text, sizeof text, "public = %s\n", k.public_key);
    put(path, text);
    assert_int_equal(fr_key_read(path, &other, err, sizeof err), 0);
    assert_string_equal(other.public_key, k.public_key);

    unlink(path);
    assert_int_equal(fr_key_read(path, &k, err, sizeof err), FR_EIO);
    assert_non_null(strstr(err, "cannot open"));
    rmdir(d);
    free(d);
}

/* A write that fails half way (the file size limit) keeps the old file whole and
 * leaves no temporary file. */
static void failed_write_leaves_old_file(void **state)
{
    char *d = tmpdir(), path[256], err[512] = "";
    snprintf(path, sizeof path, "%s/f", d);
    assert_int_equal(fr_file_write_atomic(path, "old\n", 4, 0600, err, sizeof err), 0);
    char big[8192];
    memset(big, 'x', sizeof big);
    struct rlimit saved, small = { 1024, 1024 };
    getrlimit(RLIMIT_FSIZE, &saved);
    signal(SIGXFSZ, SIG_IGN);
    small.rlim_max = saved.rlim_max;
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &small), 0);
    int rc = fr_file_write_atomic(path, big, sizeof big, 0600, err, sizeof err);
    setrlimit(RLIMIT_FSIZE, &saved);
    assert_int_equal(rc, FR_EIO);
    assert_non_null(strstr(err, "cannot write"));
    char buf[16] = "";
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    assert_non_null(fgets(buf, sizeof buf, f));
    fclose(f);
    assert_string_equal(buf, "old\n");
    assert_int_equal(entries(d), 1);
    unlink(path);
    rmdir(d);
    free(d);
}

static void clients_find_keys(void **state)
{
    char *d = tmpdir(), path[256], pub[256], err[512] = "";
    struct fr_key mine, ctl;
    setenv("HOME", d, 1);
    unsetenv("FLASHRACK_KEY");
    unsetenv("FLASHRACK_CONTROLLER_KEY");
    assert_int_equal(fr_key_find_client(&mine, &ctl, err, sizeof err), FR_ENOTFOUND);

    snprintf(path, sizeof path, "%s/me.key", d);
    setenv("FLASHRACK_KEY", path, 1);
    assert_int_equal(fr_key_find_client(&mine, &ctl, err, sizeof err), FR_ECONFIG);
    assert_non_null(strstr(err, "me.key"));

    struct fr_key k;
    fr_key_generate(&k);
    fr_key_write(path, &k, 1, NULL, 0600, err, sizeof err);
    assert_int_equal(fr_key_find_client(&mine, &ctl, err, sizeof err), FR_ECONFIG);
    assert_non_null(strstr(err, ".config/flashrack/controller.pub"));

    snprintf(pub, sizeof pub, "%s/ctl.pub", d);
    fr_key_write(pub, &k, 0, NULL, 0644, err, sizeof err);
    setenv("FLASHRACK_CONTROLLER_KEY", pub, 1);
    assert_int_equal(fr_key_find_client(&mine, &ctl, err, sizeof err), 0);
    assert_string_equal(mine.secret_key, k.secret_key);
    assert_string_equal(ctl.public_key, k.public_key);
    unsetenv("FLASHRACK_KEY");
    unsetenv("FLASHRACK_CONTROLLER_KEY");
    unlink(path);
    unlink(pub);
    rmdir(d);
    free(d);
}

static void names(void **state)
{
    assert_true(fr_key_name_ok("agent-1"));
    assert_true(fr_key_name_ok("A.b_c"));
    assert_false(fr_key_name_ok(""));
    assert_false(fr_key_name_ok(".hidden"));
    assert_false(fr_key_name_ok("../etc"));
    assert_false(fr_key_name_ok("a b"));
    assert_false(fr_key_name_ok("0123456789012345678901234567890123456789012345678901234567890123"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(keypair_round_trip_is_private),
        cmocka_unit_test(errors_name_file_and_line),
        cmocka_unit_test(failed_write_leaves_old_file),
        cmocka_unit_test(clients_find_keys),
        cmocka_unit_test(names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
