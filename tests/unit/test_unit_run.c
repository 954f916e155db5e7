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
#include <sys/stat.h>
#include <unistd.h>

#include "agent.h"
#include "engine.h"
#include "fr_err.h"
#include "fr_types.h"
#include "fr_wire.h"
#include "journal.h"
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

/* ---- an agent without a controller: its outbox is what it would send ---------------- */

#define TEST_ECID 0xABCDull

struct rig {
    uv_loop_t loop;
    struct agent a;
    char dir[64], starts[96], ipsw[96];
};

static void rig_agent(struct rig *g)
{
    struct agent *a = &g->a;
    memset(a, 0, sizeof *a);
    a->loop = &g->loop;
    snprintf(a->cfg.id, sizeof a->cfg.id, "T");
    snprintf(a->cfg.work_dir, sizeof a->cfg.work_dir, "%s", g->dir);
    snprintf(a->cfg.engine_path, sizeof a->cfg.engine_path, "%s/engine.sh", g->dir);
    a->cfg.slots = 4;
    a->cfg.watchdog_s = 30;
    a->next_seq = 1;
    a->outbox_tail = &a->outbox;
    a->ports = calloc(1, sizeof *a->ports);
    a->nports = 1;
    snprintf(a->ports[0].desc.path, sizeof a->ports[0].desc.path, "1-1");
    a->ports[0].has_unit = 1;
    a->ports[0].unit.ecid = TEST_ECID;
    char err[256];
    assert_int_equal(journal_open(a, err, sizeof err), 0);
}

/* An engine stand-in that counts its starts and restores at once. */
static void rig_setup(struct rig *g)
{
    uv_loop_init(&g->loop);
    snprintf(g->dir, sizeof g->dir, "/tmp/fr-test-agent-%d", (int)getpid());
    mkdir(g->dir, 0755);
    snprintf(g->starts, sizeof g->starts, "%s/starts", g->dir);
    snprintf(g->ipsw, sizeof g->ipsw, "%s/x.ipsw", g->dir);
    unlink(g->starts);
    char path[128];
    snprintf(path, sizeof path, "%s/engine.sh", g->dir);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fprintf(f, "#!/bin/sh\necho start >> %s\necho 'Status: Restore Finished'\nexit 0\n", g->starts);
    fclose(f);
    chmod(path, 0755);
    f = fopen(g->ipsw, "w");
    fputs("ipsw", f);
    fclose(f);
    rig_agent(g);
}

static void rig_agent_free(struct rig *g)
{
    struct agent *a = &g->a;
    unit_run_free_all(a);
    while (a->outbox) {
        struct outbox_entry *e = a->outbox;
        a->outbox = e->next;
        free(e->data);
        free(e);
    }
    journal_close(a);
    free(a->ports);
}

static void rig_teardown(struct rig *g)
{
    rig_agent_free(g);
    uv_run(&g->loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&g->loop), 0);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", g->dir);
    assert_int_equal(system(cmd), 0);
}

/* Messages of kind body in the outbox for attempt (0 = any). */
static int outbox_count(struct agent *a, Fr__Envelope__BodyCase body, uint64_t attempt)
{
    int n = 0;
    for (struct outbox_entry *e = a->outbox; e; e = e->next) {
        Fr__Envelope *env = NULL;
        char err[128];
        assert_int_equal(fr_wire_unpack(e->data, e->len, &env, err, sizeof err), 0);
        const Fr__AttemptRef *ref = env->body_case == FR__ENVELOPE__BODY_JOB_RESULT ? env->job_result->ref
                                  : env->body_case == FR__ENVELOPE__BODY_JOB_ACCEPT ? env->job_accept->ref
                                  : NULL;
        n += env->body_case == body && (!attempt || (ref && ref->attempt_id == attempt));
        fr_wire_free(&env);
    }
    return n;
}

static int starts(const struct rig *g)
{
    FILE *f = fopen(g->starts, "r");
    int n = 0, ch;
    while (f && (ch = fgetc(f)) != EOF)
        n += ch == '\n';
    if (f)
        fclose(f);
    return n;
}

static void assign(struct rig *g, uint64_t attempt)
{
    Fr__AttemptRef ref = FR__ATTEMPT_REF__INIT;
    ref.job_id = 1;
    ref.attempt_id = attempt;
    ref.epoch = 7;
    ref.ecid = TEST_ECID;
    ref.token_hi = 0x1111;
    ref.token_lo = 0x2222;
    Fr__JobAssign as = FR__JOB_ASSIGN__INIT;
    as.ref = &ref;
    as.port_path = "1-1";
    as.firmware = g->ipsw;
    as.firmware_sha256 = "";
    as.erase = 1;
    unit_run_on_assign(&g->a, &as);
    uv_run(&g->loop, UV_RUN_DEFAULT); /* until the engine child has exited */
}

/* A JobAssign re-sent for an attempt that has ended (it crossed the result, or came
 * from a slow controller, or reaches the next agent process) is answered with the
 * result, and the phone is not restored again. */
static void a_reassigned_ended_attempt_gets_its_result_not_a_second_restore(void **state)
{
    struct rig g;
    rig_setup(&g);
    assign(&g, 41);
    assert_int_equal(starts(&g), 1);
    assert_null(g.a.runs);
    assert_int_equal(outbox_count(&g.a, FR__ENVELOPE__BODY_JOB_ACCEPT, 41), 1);
    assert_int_equal(outbox_count(&g.a, FR__ENVELOPE__BODY_JOB_RESULT, 41), 1);

    assign(&g, 41); /* again, the result not acknowledged yet */
    assert_int_equal(starts(&g), 1);
    assert_int_equal(outbox_count(&g.a, FR__ENVELOPE__BODY_JOB_RESULT, 41), 2);
    assert_int_equal(outbox_count(&g.a, FR__ENVELOPE__BODY_JOB_ACCEPT, 41), 1);

    rig_agent_free(&g); /* the agent restarts: the journal answers */
    rig_agent(&g);
    assign(&g, 41);
    assert_int_equal(starts(&g), 1);
    assert_int_equal(outbox_count(&g.a, FR__ENVELOPE__BODY_JOB_RESULT, 41), 1);
    /* the result carries the token it was given */
    Fr__Envelope *env = NULL;
    char err[128];
    assert_int_equal(fr_wire_unpack(g.a.outbox->data, g.a.outbox->len, &env, err, sizeof err), 0);
    assert_true(env->job_result->ref->token_hi == 0x1111 && env->job_result->ref->token_lo == 0x2222);
    fr_wire_free(&env);

    assign(&g, 42); /* a new attempt of the same unit does run */
    assert_int_equal(starts(&g), 2);
    rig_teardown(&g);
}

/* A message that cannot be packed takes no seq: the next one follows the last sent
 * without a gap (the controller would wait for the missing number forever). */
static void a_message_that_cannot_be_packed_takes_no_seq(void **state)
{
    struct rig g;
    rig_setup(&g);
    size_t big = FR_WIRE_MAX_MSG + 16;
    char *serial = malloc(big + 1);
    memset(serial, 'x', big);
    serial[big] = '\0';
    Fr__UnitInfo u = FR__UNIT_INFO__INIT;
    u.ecid = TEST_ECID;
    u.port_path = "1-1";
    u.serial = serial;
    Fr__PortEvent ev = FR__PORT_EVENT__INIT;
    ev.unit = &u;
    Fr__Envelope env = FR__ENVELOPE__INIT;
    env.body_case = FR__ENVELOPE__BODY_PORT_EVENT;
    env.port_event = &ev;
    assert_int_equal(link_send_reliable(&g.a, &env, NULL), FR_ETOOBIG);
    assert_null(g.a.outbox);
    u.serial = "C39XYZ";
    assert_int_equal(link_send_reliable(&g.a, &env, NULL), 0);
    assert_true(g.a.outbox && g.a.outbox->seq == 1);
    assert_true(g.a.next_seq == 2);
    free(serial);
    rig_teardown(&g);
}

/* Seams whose unit comes back in recovery mode (an attach from the DFU/recovery
 * source) before lockdown's answer to EnterRecovery arrives: two sources, no order. */
struct early_seams {
    struct seams base;
    uv_timer_t later;
    struct agent *a;
    void (*cb)(void *arg, int rc, const char *why);
    void *arg;
};

static void back_then_answer(uv_timer_t *t)
{
    struct early_seams *e = t->data;
    struct unit_desc u = { .ecid = TEST_ECID, .mode = fr_mode_parse("recovery") };
    snprintf(u.path, sizeof u.path, "1-1");
    ports_on_attach(e->a, &u);
    e->cb(e->arg, 0, NULL);
    uv_close((uv_handle_t *)t, NULL);
}

static int early_enter_recovery(struct seams *s, const char *path, uint64_t ecid,
                                void (*cb)(void *arg, int rc, const char *why), void *arg)
{
    struct early_seams *e = (struct early_seams *)s;
    e->cb = cb;
    e->arg = arg;
    uv_timer_start(&e->later, back_then_answer, 0, 0);
    return 0;
}

static void a_unit_back_in_recovery_before_lockdown_answers_is_restored(void **state)
{
    struct rig g;
    rig_setup(&g);
    struct early_seams e = { .base = { .name = "early", .enter_recovery = early_enter_recovery },
                             .a = &g.a };
    uv_timer_init(&g.loop, &e.later);
    e.later.data = &e;
    g.a.seams = &e.base;
    g.a.ports[0].unit.mode = fr_mode_parse("normal");
    assign(&g, 51); /* before the fix: 60 s waiting for a return that had happened, no_device */
    assert_int_equal(starts(&g), 1);
    assert_int_equal(outbox_count(&g.a, FR__ENVELOPE__BODY_JOB_RESULT, 51), 1);
    Fr__Envelope *env = NULL;
    char err[128];
    for (struct outbox_entry *o = g.a.outbox; o; o = o->next) {
        assert_int_equal(fr_wire_unpack(o->data, o->len, &env, err, sizeof err), 0);
        if (env->body_case == FR__ENVELOPE__BODY_JOB_RESULT)
            assert_int_equal(env->job_result->outcome, FR__OUTCOME__OUTCOME_SUCCESS);
        fr_wire_free(&env);
    }
    rig_teardown(&g);
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
        cmocka_unit_test(a_reassigned_ended_attempt_gets_its_result_not_a_second_restore),
        cmocka_unit_test(a_message_that_cannot_be_packed_takes_no_seq),
        cmocka_unit_test(a_unit_back_in_recovery_before_lockdown_answers_is_restored),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
