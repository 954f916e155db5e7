/* test_zap — the controller's allowlists as loaded from a keys directory: an agent's entry
 * found by its id among many (in any order the directory lists them), operators kept
 * apart from agents of the same name, and a reload that adds and drops entries. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fr_keys.h"
#include "zap.h"

#define NAGENTS 300

static char dir[64];

static void write_key(const char *sub, const char *name, const char *ext, int pair, const char *role)
{
    char path[256], err[256];
    struct fr_key k;
    assert_int_equal(fr_key_generate(&k), 0);
    snprintf(k.role, sizeof k.role, "%s", role);
    snprintf(path, sizeof path, "%s/%s%s%s%s", dir, sub, *sub ? "/" : "", name, ext);
    assert_int_equal(fr_key_write(path, &k, pair, "test", pair ? 0600 : 0644, err, sizeof err), 0);
}

/* The id of agent i: spread so that no order of creation is the sorted one. */
static void agent_id(int i, char *buf, size_t len)
{
    snprintf(buf, len, "ag-%04d", (i * 7919) % 10007);
}

static int setup(void **state)
{
    char sub[128];
    snprintf(dir, sizeof dir, "/tmp/fr-test-zap-XXXXXX");
    assert_non_null(mkdtemp(dir));
    snprintf(sub, sizeof sub, "%s/agents", dir);
    assert_int_equal(mkdir(sub, 0700), 0);
    snprintf(sub, sizeof sub, "%s/operators", dir);
    assert_int_equal(mkdir(sub, 0700), 0);
    write_key("", "controller", ".key", 1, "");
    for (int i = 0; i < NAGENTS; i++) {
        char id[32];
        agent_id(i, id, sizeof id);
        write_key("agents", id, ".pub", 0, "");
    }
    char same[32];
    agent_id(5, same, sizeof same);
    write_key("operators", same, ".pub", 0, "operator"); /* an operator named as an agent */
    write_key("operators", "zz-viewer", ".pub", 0, "viewer");
    return 0;
}

static int teardown(void **state)
{
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    return system(cmd) == 0 ? 0 : -1;
}

static void test_every_agent_found_by_id(void **state)
{
    struct zap *z = NULL;
    char err[512];
    assert_int_equal(zap_new(dir, &z, err, sizeof err), 0);
    for (int i = 0; i < NAGENTS; i++) {
        char id[32];
        agent_id(i, id, sizeof id);
        const struct zap_peer *p = zap_agent(z, id);
        assert_non_null(p);
        assert_string_equal(p->name, id);
        assert_int_equal(p->role, ZAP_AGENT);
    }
    assert_null(zap_agent(z, "ag-99999"));
    assert_null(zap_agent(z, ""));
    assert_null(zap_agent(z, "zz-viewer")); /* an operator's entry is no agent's */
    char longer[128];
    memset(longer, 'a', sizeof longer - 1);
    longer[sizeof longer - 1] = 0;
    assert_null(zap_agent(z, longer));
    zap_destroy(&z);
}

static void test_operator_of_an_agents_name_kept_apart(void **state)
{
    struct zap *z = NULL;
    char err[512], same[32];
    assert_int_equal(zap_new(dir, &z, err, sizeof err), 0);
    agent_id(5, same, sizeof same);
    const struct zap_peer *p = zap_agent(z, same);
    assert_non_null(p);
    assert_int_equal(p->role, ZAP_AGENT);
    zap_destroy(&z);
}

static void test_reload_adds_and_drops(void **state)
{
    struct zap *z = NULL;
    char err[512], path[256], said[640], gone[32];
    assert_int_equal(zap_new(dir, &z, err, sizeof err), 0);
    write_key("agents", "aa-new", ".pub", 0, "");
    agent_id(17, gone, sizeof gone);
    snprintf(path, sizeof path, "%s/agents/%s.pub", dir, gone);
    assert_int_equal(unlink(path), 0);
    assert_null(zap_agent(z, "aa-new"));
    assert_int_equal(zap_reload(z, said, sizeof said), 0);
    assert_non_null(zap_agent(z, "aa-new"));
    assert_null(zap_agent(z, gone));
    char id[32];
    agent_id(NAGENTS - 1, id, sizeof id);
    assert_non_null(zap_agent(z, id));
    zap_destroy(&z);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_agent_found_by_id),
        cmocka_unit_test(test_operator_of_an_agents_name_kept_apart),
        cmocka_unit_test(test_reload_adds_and_drops),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
