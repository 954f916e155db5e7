/* test_engine_probe — what the agent learns about its engine before it starts:
 * Debian's real idevicerestore 1.0.0, the simulator's stand-in, and engines it must refuse. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "engine_probe.h"
#include "fr_err.h"

static const char *fixture(const char *name)
{
    static char path[1024];
    snprintf(path, sizeof path, "%s/engine/probe/%s", getenv("FR_FIXTURES"), name);
    return path;
}

/* flashrack-sim-restore is built next to this test. */
static const char *sim_restore(void)
{
    static char path[1024];
    char self[1024];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    assert_true(n > 0);
    self[n] = '\0';
    snprintf(path, sizeof path, "%s/flashrack-sim-restore", dirname(self));
    return path;
}

/* deploy/install-deps.sh installs Debian's idevicerestore package: this is the real binary. */
static void debian_idevicerestore_1_0_0_stops_at_iphone12_8(void **state)
{
    struct engine_info e;
    char err[512] = "";
    int rc = engine_probe("/usr/bin/idevicerestore", &e, err, sizeof err);
    assert_int_equal(rc, 0);
    assert_string_equal(e.name, "idevicerestore");
    assert_string_equal(e.version, "1.0.0");
    assert_int_equal(e.major, 1);
    assert_int_equal(e.minor, 0);
    assert_int_equal(e.patch, 0);
    assert_true(e.has_plain_progress);
    assert_true(e.models_known);
    assert_non_null(strstr(e.irecovery, "libirecovery"));
    assert_string_equal(e.newest, "iPhone12,8");
    assert_true(engine_supports_model(&e, "iPhone12,1"));
    assert_true(engine_supports_model(&e, "iPhone12,8"));
    assert_true(engine_supports_model(&e, "iPhone10,3"));
    assert_false(engine_supports_model(&e, "iPhone13,2"));
    assert_false(engine_supports_model(&e, "iPhone16,1"));
    /* DFU and recovery units are known by their chip and board (CPID, BDID) */
    const char *pt = NULL;
    assert_true(engine_supports_chip(&e, 0x8030, 0x04, &pt));
    assert_string_equal(pt, "iPhone12,1");
    assert_false(engine_supports_chip(&e, 0x8110, 0x0a, &pt)); /* iPhone14,5 */
    assert_null(pt);
    char why[512];
    engine_explain_unsupported(&e, "iPhone13,2", why, sizeof why);
    assert_non_null(strstr(why, "iPhone13,2"));
    assert_non_null(strstr(why, "idevicerestore 1.0.0"));
    assert_non_null(strstr(why, "iPhone12,8"));
    assert_non_null(strstr(why, "UPSTREAM-STACK.md"));
    engine_info_release(&e);
}

/* Found through $PATH, as config/agent.ini's default "idevicerestore" is. */
static void a_bare_name_is_looked_up_in_path(void **state)
{
    struct engine_info e;
    char err[512] = "";
    assert_int_equal(engine_probe("idevicerestore", &e, err, sizeof err), 0);
    assert_string_equal(e.name, "idevicerestore");
    engine_info_release(&e);
}

static void the_simulators_engine_answers_like_idevicerestore(void **state)
{
    struct engine_info e;
    char err[512] = "";
    assert_int_equal(engine_probe(sim_restore(), &e, err, sizeof err), 0);
    assert_string_equal(e.name, "flashrack-sim-restore");
    assert_true(e.major >= 0);
    assert_true(e.has_plain_progress);
    assert_false(e.models_known); /* it loads no libirecovery: every simulated model */
    assert_true(engine_supports_model(&e, "iPhone17,3"));
    const char *pt = "";
    assert_true(engine_supports_chip(&e, 0x8110, 0x0a, &pt));
    assert_null(pt);
    engine_info_release(&e);
}

static void a_source_build_version_is_parsed(void **state)
{
    struct engine_info e;
    char err[512] = "";
    assert_int_equal(engine_probe(fixture("upstream-build"), &e, err, sizeof err), 0);
    assert_string_equal(e.version, "1.0.0-244-g1a2b3c4");
    assert_int_equal(e.major, 1);
    assert_int_equal(e.patch, 0);
    assert_true(e.has_plain_progress);
    engine_info_release(&e);
}

static void refused(const char *path, int code, const char *want)
{
    struct engine_info e;
    char err[512] = "";
    assert_int_equal(engine_probe(path, &e, err, sizeof err), code);
    assert_non_null(strstr(err, "[engine] path '"));
    assert_non_null(strstr(err, path));
    assert_non_null(strstr(err, want));
    engine_info_release(&e);
}

static void engines_that_cannot_serve_are_refused_with_the_reason(void **state)
{
    refused("/nonexistent/idevicerestore", FR_ENOTFOUND, "cannot run it");
    refused("no-such-engine-in-path", FR_ENOTFOUND, "cannot run it");
    refused(fixture("no-plain-progress"), FR_EUNAVAIL, "has no -P");
    refused(fixture("not-an-engine"), FR_EPROTO, "printed no version");
    refused("/bin/false", FR_EPROTO, "'--version' failed");
}

/* An engine that never answers is killed at the probe's deadline, not waited for. */
static void a_hanging_engine_is_given_up_on(void **state)
{
    refused(fixture("hangs"), FR_EPROTO, "did not answer in time");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(debian_idevicerestore_1_0_0_stops_at_iphone12_8),
        cmocka_unit_test(a_bare_name_is_looked_up_in_path),
        cmocka_unit_test(the_simulators_engine_answers_like_idevicerestore),
        cmocka_unit_test(a_source_build_version_is_parsed),
        cmocka_unit_test(engines_that_cannot_serve_are_refused_with_the_reason),
        cmocka_unit_test(a_hanging_engine_is_given_up_on),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
