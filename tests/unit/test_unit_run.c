/* test_unit_run — the agent's state machine and its engine children (real processes). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "engine.h"
#include "fr_err.h"
#include "unit_run.h"

static void happy_path_is_legal(void **state)
{
    const enum fr_state path[] = { FR_STATE_PREFLIGHT, FR_STATE_QUEUED_FOR_BUS, FR_STATE_RESTORING,
                                   FR_STATE_VERIFYING, FR_STATE_DONE };
    for (size_t i = 0; i + 1 < sizeof path / sizeof path[0]; i++)
        assert_true(unit_run_can_move(path[i], path[i + 1]));
}

static void shortcuts_and_exits_from_terminal_states_are_not(void **state)
{
    assert_false(unit_run_can_move(FR_STATE_PREFLIGHT, FR_STATE_DONE));
    assert_false(unit_run_can_move(FR_STATE_QUEUED_FOR_BUS, FR_STATE_VERIFYING));
    assert_false(unit_run_can_move(FR_STATE_VERIFYING, FR_STATE_RESTORING));
    assert_false(unit_run_can_move(FR_STATE_DONE, FR_STATE_FAILED));
    assert_false(unit_run_can_move(FR_STATE_FAILED, FR_STATE_RESTORING));
    assert_false(unit_run_can_move(FR_STATE_CANCELLED, FR_STATE_CANCELLED));
    /* failure and cancellation are possible from every live state */
    for (int s = FR_STATE_PREFLIGHT; s <= FR_STATE_VERIFYING; s++) {
        assert_true(unit_run_can_move(s, FR_STATE_FAILED));
        assert_true(unit_run_can_move(s, FR_STATE_CANCELLED));
    }
}

struct child {
    int exited, code, sig, watchdog, progress_calls;
    int finished;
    char status[512];
};

static void on_progress(struct engine *e, void *arg)
{
    struct child *c = arg;
    c->progress_calls++;
    engine_parser_mut(e)->progress_changed = 0;
    engine_parser_mut(e)->status_changed = 0;
}

static void on_exit_cb(struct engine *e, void *arg, int code, int sig, int watchdog)
{
    struct child *c = arg;
    c->exited = 1;
    c->code = code;
    c->sig = sig;
    c->watchdog = watchdog;
    c->finished = engine_parser(e)->finished;
    snprintf(c->status, sizeof c->status, "%s", engine_parser(e)->status);
    engine_destroy(e);
}

static void run_script_env(const char *script, const char *const *env, uint64_t watchdog_ms,
                           struct child *c, const char *log)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    const char *argv[] = { "/bin/sh", "-c", script, NULL };
    struct engine_spec spec = { .path = "/bin/sh", .argv = argv, .env = env, .log_path = log,
                                .watchdog_ms = watchdog_ms };
    struct engine *e = NULL;
    char err[256];
    assert_int_equal(engine_start(&e, &loop, &spec, on_progress, on_exit_cb, c, err, sizeof err), 0);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);
}

static void run_script(const char *script, uint64_t watchdog_ms, struct child *c, const char *log)
{
    run_script_env(script, NULL, watchdog_ms, c, log);
}

static void slurp(const char *path, char *buf, size_t len)
{
    FILE *fp = fopen(path, "r");
    assert_non_null(fp);
    size_t n = fread(buf, 1, len - 1, fp);
    buf[n] = '\0';
    fclose(fp);
}

/* The agent hands its engine settings (the simulator's socket) through the child's
 * environment: set on top of the agent's own, replacing a stale value of the same name. */
static void engine_env_is_set_on_top_of_the_agents(void **state)
{
    setenv("FR_TEST_SOCKET", "/stale/from/the/user", 1);
    setenv("FR_TEST_KEPT", "kept", 1);
    const char *env[] = { "FR_TEST_SOCKET=/from/the/config", NULL };
    struct child c = { 0 };
    char log[] = "/tmp/fr-test-engine-XXXXXX", buf[256];
    close(mkstemp(log));
    run_script_env("echo \"socket=$FR_TEST_SOCKET kept=$FR_TEST_KEPT\"; env | grep -c ^FR_TEST_SOCKET=",
                   env, 5000, &c, log);
    slurp(log, buf, sizeof buf);
    unlink(log);
    assert_int_equal(c.code, 0);
    assert_non_null(strstr(buf, "socket=/from/the/config kept=kept"));
    assert_non_null(strstr(buf, "\n1\n")); /* once, not twice */
    unsetenv("FR_TEST_SOCKET");
    unsetenv("FR_TEST_KEPT");
}

static void engine_output_reaches_parser_and_log(void **state)
{
    struct child c = { 0 };
    char log[] = "/tmp/fr-test-engine-XXXXXX";
    close(mkstemp(log));
    run_script("echo 'progress: 2 0.500000'; echo 'Status: Restore Finished' >&2; echo DONE",
               5000, &c, log);
    assert_true(c.exited);
    assert_int_equal(c.code, 0);
    assert_false(c.watchdog);
    assert_true(c.finished);
    assert_true(c.progress_calls >= 1);
    FILE *fp = fopen(log, "r");
    char buf[256] = "";
    size_t n = fread(buf, 1, sizeof buf - 1, fp);
    buf[n] = '\0';
    fclose(fp);
    unlink(log);
    assert_non_null(strstr(buf, "progress: 2 0.500000"));
    assert_non_null(strstr(buf, "DONE"));
}

/* A silent engine is killed with its whole process group, grandchildren included. */
static void watchdog_kills_the_process_group(void **state)
{
    struct child c = { 0 };
    char pidfile[] = "/tmp/fr-test-pid-XXXXXX", script[256];
    close(mkstemp(pidfile));
    snprintf(script, sizeof script, "echo started; sleep 60 & echo $! > %s; wait", pidfile);
    run_script(script, 300, &c, "/dev/null");
    assert_true(c.exited);
    assert_true(c.watchdog);
    assert_int_equal(c.sig, SIGKILL);
    FILE *fp = fopen(pidfile, "r");
    int pid = 0;
    assert_int_equal(fscanf(fp, "%d", &pid), 1);
    fclose(fp);
    unlink(pidfile);
    int gone = 0;
    for (int i = 0; i < 200 && !gone; i++) { /* reaped by init shortly after the kill */
        gone = kill(pid, 0) < 0 && errno == ESRCH;
        if (!gone)
            usleep(10000);
    }
    assert_true(gone);
}

static void missing_engine_is_an_error_not_a_crash(void **state)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    const char *argv[] = { "/nonexistent/idevicerestore", NULL };
    struct engine_spec spec = { .path = argv[0], .argv = argv, .log_path = "/dev/null", .watchdog_ms = 1000 };
    struct engine *e = NULL;
    struct child c = { 0 };
    char err[256] = "";
    assert_int_equal(engine_start(&e, &loop, &spec, on_progress, on_exit_cb, &c, err, sizeof err), FR_ESYS);
    assert_non_null(strstr(err, "/nonexistent/idevicerestore"));
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_false(c.exited); /* a failed start never calls back */
    assert_int_equal(uv_loop_close(&loop), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(happy_path_is_legal),
        cmocka_unit_test(shortcuts_and_exits_from_terminal_states_are_not),
        cmocka_unit_test(engine_env_is_set_on_top_of_the_agents),
        cmocka_unit_test(engine_output_reaches_parser_and_log),
        cmocka_unit_test(watchdog_kills_the_process_group),
        cmocka_unit_test(missing_engine_is_an_error_not_a_crash),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
