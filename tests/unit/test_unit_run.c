/* test_unit_run — the agent's state machine, its flows (admission, fetch -> queue ->
 * restore, cancel in each phase, firmware failures) and its engine children (real
 * processes; the firmware publisher is a real HTTP server on 127.0.0.1). */
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
#include <uv.h>

#include "agent.h"
#include "engine.h"
#include "fr_err.h"
#include "fr_types.h"
#include "fr_fwcache.h"
#include "fr_sha.h"
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

/* Bounds in time for the loops below that wait for a child process or a socket: a count
 * of turns with a sleep in each is a bound in time only on an idle machine, and on a
 * loaded one the child may need far longer than the count allows. Long enough that it
 * only ends a real hang. */
#define WAIT_LIMIT_NS (30 * 1000000000ull)

static uint64_t wait_limit(void)
{
    return uv_hrtime() + WAIT_LIMIT_NS;
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

/* A silent engine is killed with its whole process group, grandchildren included. The
 * grandchild's pid is written before the engine's last line: the watchdog counts silence
 * from that line, so it cannot end the script before the grandchild is there, however
 * slowly the shell runs. */
static void watchdog_kills_the_process_group(void **state)
{
    struct child c = { 0 };
    char pidfile[] = "/tmp/fr-test-pid-XXXXXX", script[256];
    close(mkstemp(pidfile));
    snprintf(script, sizeof script, "echo starting; sleep 60 & echo $! > %s; echo started; wait",
             pidfile);
    run_script(script, 1000, &c, "/dev/null");
    assert_true(c.exited);
    assert_true(c.watchdog);
    assert_int_equal(c.sig, SIGKILL);
    FILE *fp = fopen(pidfile, "r");
    int pid = 0;
    assert_int_equal(fscanf(fp, "%d", &pid), 1);
    fclose(fp);
    unlink(pidfile);
    int gone = 0;
    for (uint64_t limit = wait_limit(); !gone && uv_hrtime() < limit;) { /* reaped by init after the kill */
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

/* The rig's hardware: no lockdownd to read a restored unit back from. */
static struct seams rig_seams = { .name = "rig", .no_lockdown = "the test rig reads no lockdownd" };

static void rig_agent(struct rig *g)
{
    struct agent *a = &g->a;
    memset(a, 0, sizeof *a);
    a->loop = &g->loop;
    a->seams = &rig_seams;
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

/* The rig's engine replaced: a shell script body ($2 is the ECID, STARTS the file the
 * rig counts starts in). */
static void rig_engine(struct rig *g, const char *body)
{
    char path[128];
    snprintf(path, sizeof path, "%s/engine.sh", g->dir);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fprintf(f, "#!/bin/sh\nSTARTS=%s\n%s\n", g->starts, body);
    fclose(f);
    chmod(path, 0755);
}

/* Another port (on root bus bus) with a unit on it. */
static void rig_port(struct rig *g, const char *path, uint32_t bus, uint64_t ecid)
{
    struct agent *a = &g->a;
    a->ports = realloc(a->ports, (a->nports + 1) * sizeof *a->ports);
    struct port *p = &a->ports[a->nports++];
    memset(p, 0, sizeof *p);
    snprintf(p->desc.path, sizeof p->desc.path, "%s", path);
    p->desc.bus = bus;
    p->has_unit = 1;
    p->unit.ecid = ecid;
}

static void rig_agent_free(struct rig *g)
{
    struct agent *a = &g->a;
    unit_run_free_all(a);
    link_outbox_free(a);
    journal_close(a);
    free(a->ports);
    if (a->cache) {
        fwcache_close(a->cache);
        uv_run(&g->loop, UV_RUN_DEFAULT);
        fwcache_destroy(&a->cache);
    }
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

/* A JobAssign of attempt for the unit ecid on port, with that firmware (NULL: the
 * rig's local IPSW) and hash; the loop does not run. */
static void assign_to(struct rig *g, uint64_t attempt, uint64_t ecid, const char *port,
                      const char *firmware, const char *sha256)
{
    Fr__AttemptRef ref = FR__ATTEMPT_REF__INIT;
    ref.job_id = 1;
    ref.attempt_id = attempt;
    ref.epoch = 7;
    ref.ecid = ecid;
    ref.token_hi = 0x1111;
    ref.token_lo = 0x2222;
    Fr__JobAssign as = FR__JOB_ASSIGN__INIT;
    as.ref = &ref;
    as.port_path = (char *)port;
    as.firmware = (char *)(firmware ? firmware : g->ipsw);
    as.firmware_sha256 = (char *)sha256;
    as.erase = 1;
    unit_run_on_assign(&g->a, &as);
}

static void assign(struct rig *g, uint64_t attempt)
{
    assign_to(g, attempt, TEST_ECID, "1-1", NULL, "");
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

/* ---- after the restore: the unit read back in normal mode ---------------------- */

static struct unit_run *run_of(struct agent *a, uint64_t attempt)
{
    for (struct unit_run *r = a->runs; r; r = r->next)
        if (r->ref.attempt_id == attempt)
            return r;
    return NULL;
}

/* Seams that read lockdownd: the restored unit boots into normal mode (an attach with
 * what its lockdownd said) after_ms after the engine was started, or never (-1). */
struct booting_seams {
    struct seams base;
    uv_timer_t boot;
    struct agent *a;
    const char *ios, *build;
};

static void on_booted(uv_timer_t *t)
{
    struct booting_seams *b = t->data;
    struct unit_desc u = { .ecid = TEST_ECID, .mode = fr_mode_parse("normal") };
    snprintf(u.path, sizeof u.path, "1-1");
    snprintf(u.ios, sizeof u.ios, "%s", b->ios);
    snprintf(u.build, sizeof u.build, "%s", b->build);
    ports_on_attach(b->a, &u);
}

static void booting_rig(struct rig *g, struct booting_seams *b, long long wait_s, int after_ms)
{
    rig_setup(g);
    b->base.name = "booting";
    b->a = &g->a;
    g->a.seams = &b->base;
    g->a.cfg.verify_wait_s = wait_s;
    uv_timer_init(&g->loop, &b->boot);
    b->boot.data = b;
    if (after_ms >= 0)
        uv_timer_start(&b->boot, on_booted, (uint64_t)after_ms, 0);
}

/* The result of attempt in the outbox (unpacked: the caller frees it with fr_wire_free). */
static Fr__Envelope *result_env(struct agent *a, uint64_t attempt)
{
    for (struct outbox_entry *e = a->outbox; e; e = e->next) {
        Fr__Envelope *env = NULL;
        char err[128];
        assert_int_equal(fr_wire_unpack(e->data, e->len, &env, err, sizeof err), 0);
        if (env->body_case == FR__ENVELOPE__BODY_JOB_RESULT && env->job_result->ref->attempt_id == attempt)
            return env;
        fr_wire_free(&env);
    }
    return NULL;
}

/* The run waits in verifying until the unit is back in normal mode and sends what its
 * lockdownd said with the result. */
static void a_restored_unit_is_read_back_in_normal_mode(void **state)
{
    struct rig g;
    struct booting_seams b = { .ios = "18.2", .build = "22C152" };
    booting_rig(&g, &b, 30, 400); /* the engine ends at once; the unit boots 0.4 s later */
    assign(&g, 61);
    Fr__Envelope *env = result_env(&g.a, 61);
    assert_non_null(env);
    assert_int_equal(env->job_result->outcome, FR__OUTCOME__OUTCOME_SUCCESS);
    assert_string_equal(env->job_result->unit_version, "18.2");
    assert_string_equal(env->job_result->unit_build, "22C152");
    assert_string_equal(env->job_result->unverified_reason, "");
    fr_wire_free(&env);
    assert_null(g.a.runs);
    uv_close((uv_handle_t *)&b.boot, NULL);
    rig_teardown(&g);
}

/* A unit that never comes back in normal mode holds its port only verify_wait_s: the
 * result is a success, not verified, with the reason. So is one whose backend cannot
 * read lockdownd at all, at once. */
static void a_unit_that_does_not_come_back_is_not_verified_after_the_wait(void **state)
{
    struct rig g;
    struct booting_seams b = { .ios = "", .build = "" };
    booting_rig(&g, &b, 1, -1);
    assign(&g, 62);
    Fr__Envelope *env = result_env(&g.a, 62);
    assert_non_null(env);
    assert_int_equal(env->job_result->outcome, FR__OUTCOME__OUTCOME_SUCCESS);
    assert_string_equal(env->job_result->unit_version, "");
    assert_non_null(strstr(env->job_result->unverified_reason,
                           "did not come back in normal mode within 1 s"));
    fr_wire_free(&env);
    uv_close((uv_handle_t *)&b.boot, NULL);
    rig_teardown(&g);

    rig_setup(&g); /* the rig's seams read no lockdownd */
    assign(&g, 63);
    env = result_env(&g.a, 63);
    assert_non_null(env);
    assert_int_equal(env->job_result->outcome, FR__OUTCOME__OUTCOME_SUCCESS);
    assert_string_equal(env->job_result->unverified_reason, "the test rig reads no lockdownd");
    fr_wire_free(&env);
    rig_teardown(&g);
}

/* A cancel while the agent waits for the restored unit ends the wait at once: the
 * restore happened, so the result is a success, not verified. */
static void a_cancel_while_waiting_for_the_unit_ends_the_wait(void **state)
{
    struct rig g;
    struct booting_seams b = { .ios = "", .build = "" };
    booting_rig(&g, &b, 60, -1);
    assign_to(&g, 64, TEST_ECID, "1-1", NULL, "");
    for (uint64_t limit = wait_limit();
         !(run_of(&g.a, 64) && run_of(&g.a, 64)->awaiting_normal) && uv_hrtime() < limit;)
        uv_run(&g.loop, UV_RUN_NOWAIT), usleep(1000);
    assert_non_null(run_of(&g.a, 64));
    Fr__AttemptRef ref = run_of(&g.a, 64)->ref;
    unit_run_on_cancel(&g.a, &ref);
    assert_null(g.a.runs);
    Fr__Envelope *env = result_env(&g.a, 64);
    assert_non_null(env);
    assert_int_equal(env->job_result->outcome, FR__OUTCOME__OUTCOME_SUCCESS);
    assert_non_null(strstr(env->job_result->unverified_reason, "cancelled"));
    fr_wire_free(&env);
    uv_close((uv_handle_t *)&b.boot, NULL);
    rig_teardown(&g);
}

/* ---- unit_run's flows: admission, fetch -> queue -> restore, cancel, firmware ------ */


/* The outcome of attempt's result in the outbox (-1: none), its class in cls. */
static int result_of(struct agent *a, uint64_t attempt, char *cls, size_t len)
{
    int outcome = -1;
    for (struct outbox_entry *e = a->outbox; e; e = e->next) {
        Fr__Envelope *env = NULL;
        char err[128];
        assert_int_equal(fr_wire_unpack(e->data, e->len, &env, err, sizeof err), 0);
        if (env->body_case == FR__ENVELOPE__BODY_JOB_RESULT &&
            env->job_result->ref->attempt_id == attempt) {
            outcome = env->job_result->outcome;
            snprintf(cls, len, "%s", env->job_result->error_class);
        }
        fr_wire_free(&env);
    }
    return outcome;
}

static int lines_starting(const char *path, const char *prefix, char *order, size_t len)
{
    FILE *f = fopen(path, "r");
    char line[128];
    int n = 0;
    if (order)
        order[0] = '\0';
    while (f && fgets(line, sizeof line, f)) {
        n += strncmp(line, prefix, strlen(prefix)) == 0;
        if (order && strlen(order) + 2 < len)
            strncat(order, line, 1); /* s(tart) or e(nd), in order */
    }
    if (f)
        fclose(f);
    return n;
}

/* Bus admission: with bus_limit 1, the second unit on the bus waits in queued_for_bus
 * until the first has left the data phase (here: its engine ended); a unit on another
 * bus does not wait. */
static void runs_on_one_bus_restore_one_at_a_time(void **state)
{
    struct rig g;
    rig_setup(&g);
    rig_engine(&g, "echo \"start $2\" >> $STARTS; sleep 0.3; echo \"end $2\" >> $STARTS\n"
                   "echo 'Status: Restore Finished'; exit 0");
    g.a.cfg.bus_limit = 1;
    g.a.ports[0].desc.bus = 1;
    rig_port(&g, "1-2", 1, 0xB0B);
    rig_port(&g, "2-1", 2, 0xC0C);
    assign_to(&g, 1, TEST_ECID, "1-1", NULL, "");
    assign_to(&g, 2, 0xB0B, "1-2", NULL, "");
    assign_to(&g, 3, 0xC0C, "2-1", NULL, "");
    assert_int_equal(run_of(&g.a, 1)->state, FR_STATE_RESTORING);
    assert_int_equal(run_of(&g.a, 2)->state, FR_STATE_QUEUED_FOR_BUS);
    assert_int_equal(run_of(&g.a, 3)->state, FR_STATE_RESTORING); /* its own bus */
    uv_run(&g.loop, UV_RUN_DEFAULT);
    char cls[64];
    for (uint64_t at = 1; at <= 3; at++)
        assert_int_equal(result_of(&g.a, at, cls, sizeof cls), FR__OUTCOME__OUTCOME_SUCCESS);
    /* units 1 and 2 (bus 1) never overlapped: no "start" between 1's start and its end */
    FILE *f = fopen(g.starts, "r");
    char line[128];
    int open1 = 0, overlap = 0;
    while (f && fgets(line, sizeof line, f)) {
        int is_bus1 = strstr(line, "0x000000000000ABCD") || strstr(line, "0x0000000000000B0B");
        if (is_bus1 && !strncmp(line, "start", 5))
            overlap |= open1++ > 0;
        else if (is_bus1)
            open1--;
    }
    fclose(f);
    assert_false(overlap);
    assert_int_equal(lines_starting(g.starts, "start", NULL, 0), 3);
    rig_teardown(&g);
}

/* Cancel while queued for the bus: ended at once as cancelled, its engine never run. */
static void a_run_cancelled_while_queued_never_starts(void **state)
{
    struct rig g;
    rig_setup(&g);
    g.a.cfg.bus_limit = 1;
    rig_port(&g, "1-2", 0, 0xB0B);
    assign_to(&g, 1, TEST_ECID, "1-1", NULL, "");
    assign_to(&g, 2, 0xB0B, "1-2", NULL, "");
    struct unit_run *r = run_of(&g.a, 2);
    assert_int_equal(r->state, FR_STATE_QUEUED_FOR_BUS);
    unit_run_on_cancel(&g.a, &r->ref);
    assert_null(run_of(&g.a, 2));
    char cls[64];
    assert_int_equal(result_of(&g.a, 2, cls, sizeof cls), FR__OUTCOME__OUTCOME_CANCELLED);
    uv_run(&g.loop, UV_RUN_DEFAULT);
    assert_int_equal(starts(&g), 1); /* only attempt 1's engine ran */
    assert_int_equal(result_of(&g.a, 1, cls, sizeof cls), FR__OUTCOME__OUTCOME_SUCCESS);
    rig_teardown(&g);
}

/* Cancel while restoring: the engine is killed and the result says cancelled, not a
 * failure (which would strike the port). A cancel for another epoch is ignored. */
static void a_run_cancelled_while_restoring_kills_its_engine(void **state)
{
    struct rig g;
    rig_setup(&g);
    rig_engine(&g, "echo start >> $STARTS; echo 'progress: 1 0.1'; exec sleep 30");
    assign_to(&g, 5, TEST_ECID, "1-1", NULL, "");
    struct unit_run *r = run_of(&g.a, 5);
    assert_int_equal(r->state, FR_STATE_RESTORING);
    Fr__AttemptRef stale = r->ref;
    stale.epoch = 6;
    unit_run_on_cancel(&g.a, &stale);
    assert_false(r->cancel_requested);
    unit_run_on_cancel(&g.a, &r->ref);
    uv_run(&g.loop, UV_RUN_DEFAULT); /* ends: the engine was killed, not waited for */
    assert_null(run_of(&g.a, 5));
    char cls[64];
    assert_int_equal(result_of(&g.a, 5, cls, sizeof cls), FR__OUTCOME__OUTCOME_CANCELLED);
    assert_string_equal(cls, ""); /* no failure class: nothing to strike */
    rig_teardown(&g);
}

/* Firmware that is not there fails the run as firmware before any engine starts: a
 * local IPSW that cannot be read, a URL without the hash the cache needs. */
static void missing_firmware_fails_before_the_engine(void **state)
{
    struct rig g;
    rig_setup(&g);
    char cls[64];
    assign_to(&g, 7, TEST_ECID, "1-1", "/nonexistent/x.ipsw", "");
    assert_int_equal(result_of(&g.a, 7, cls, sizeof cls), FR__OUTCOME__OUTCOME_FAILED);
    assert_string_equal(cls, "firmware");
    assign_to(&g, 8, TEST_ECID, "1-1", "http://127.0.0.1:9/x.ipsw", "");
    assert_int_equal(result_of(&g.a, 8, cls, sizeof cls), FR__OUTCOME__OUTCOME_FAILED);
    assert_string_equal(cls, "firmware");
    uv_run(&g.loop, UV_RUN_DEFAULT);
    assert_null(g.a.runs);
    assert_int_equal(starts(&g), 0);
    rig_teardown(&g);
}

/* ---- progress: one ProgressBatch per round for the whole agent -------------------- */

/* The rig's agent welcomed, its link a real DEALER connected to a ROUTER in the test
 * (inproc): what the agent sends unreliably is what the ROUTER reads. */
struct wire_tap {
    void *ctx, *router, *dealer;
    int batches, singles, max_items;
    float fraction[256];           /* the latest fraction sent, by attempt id */
    int seen[256];                 /* items sent, by attempt id */
};

static void tap_open(struct rig *g, struct wire_tap *t)
{
    memset(t, 0, sizeof *t);
    t->ctx = zmq_ctx_new();
    t->router = zmq_socket(t->ctx, ZMQ_ROUTER);
    t->dealer = zmq_socket(t->ctx, ZMQ_DEALER);
    assert_int_equal(zmq_bind(t->router, "inproc://progress-tap"), 0);
    assert_int_equal(zmq_connect(t->dealer, "inproc://progress-tap"), 0);
    g->a.zs.sock = t->dealer;
    g->a.welcomed = 1;
}

/* Reads every message the ROUTER holds. */
static void tap_read(struct wire_tap *t)
{
    zmq_msg_t id, body;
    zmq_msg_init(&id);
    zmq_msg_init(&body);
    while (zmq_msg_recv(&id, t->router, ZMQ_DONTWAIT) >= 0) {
        assert_true(zmq_msg_recv(&body, t->router, 0) >= 0);
        Fr__Envelope *env = NULL;
        char err[128];
        assert_int_equal(fr_wire_unpack(zmq_msg_data(&body), zmq_msg_size(&body), &env, err, sizeof err), 0);
        t->singles += env->body_case == FR__ENVELOPE__BODY_JOB_PROGRESS;
        if (env->body_case == FR__ENVELOPE__BODY_PROGRESS_BATCH) {
            const Fr__ProgressBatch *b = env->progress_batch;
            t->batches++;
            t->max_items = (int)b->n_items > t->max_items ? (int)b->n_items : t->max_items;
            for (size_t i = 0; i < b->n_items; i++) {
                uint64_t at = b->items[i]->ref->attempt_id;
                assert_true(at < 256);
                t->seen[at]++;
                t->fraction[at] = b->items[i]->fraction;
            }
        }
        fr_wire_free(&env);
    }
    zmq_msg_close(&id);
    zmq_msg_close(&body);
}

/* Runs the loop (bounded) until each of attempts 1..n has been sent with fraction want
 * (want < 0: sent at all); whether they were. */
static int tap_until(struct rig *g, struct wire_tap *t, int n, float want)
{
    for (uint64_t limit = wait_limit(); uv_hrtime() < limit;) {
        uv_run(&g->loop, UV_RUN_NOWAIT);
        tap_read(t);
        int all = 1;
        for (int at = 1; at <= n; at++)
            all &= t->seen[at] > 0 && (want < 0 || (t->fraction[at] > want - 0.01f &&
                                                    t->fraction[at] < want + 0.01f));
        if (all)
            return 1;
        usleep(1000);
    }
    return 0;
}

/* Cancels every run (the queued ones first, so none is admitted on the way), lets the
 * engines end, closes the tap. */
static void tap_close(struct rig *g, struct wire_tap *t)
{
    Fr__AttemptRef refs[256];
    int n = 0;
    for (struct unit_run *r = g->a.runs; r && n < 256; r = r->next)
        refs[n++] = r->ref;
    for (int pass = 0; pass < 2; pass++)
        for (int i = 0; i < n; i++) {
            struct unit_run *r = run_of(&g->a, refs[i].attempt_id);
            if (r && (r->state == FR_STATE_QUEUED_FOR_BUS) == (pass == 0))
                unit_run_on_cancel(&g->a, &refs[i]);
        }
    uv_run(&g->loop, UV_RUN_DEFAULT);
    g->a.welcomed = 0;
    zmq_close(t->dealer);
    zmq_close(t->router);
    zmq_ctx_term(t->ctx);
}

/* Three runs report in one batch per round, not one message each; the last line an
 * engine printed before going quiet reaches the controller on the next round, without
 * waiting for a further line (here the engines print nothing more for 30 s). */
static void progress_goes_in_batches_and_the_last_line_is_not_held_back(void **state)
{
    struct rig g;
    struct wire_tap t;
    rig_setup(&g);
    rig_engine(&g, "echo 'progress: 1 0.1'; sleep 0.05; echo 'progress: 1 0.3'; exec sleep 30");
    rig_port(&g, "1-2", 0, 0xB0B);
    rig_port(&g, "1-3", 0, 0xC0C);
    tap_open(&g, &t);
    assign_to(&g, 1, TEST_ECID, "1-1", NULL, "");
    assign_to(&g, 2, 0xB0B, "1-2", NULL, "");
    assign_to(&g, 3, 0xC0C, "1-3", NULL, "");
    assert_true(tap_until(&g, &t, 3, 0.3f));
    assert_int_equal(t.singles, 0);
    assert_int_equal(t.max_items, 3); /* the first round: the three runs' states together */
    for (uint64_t at = 1; at <= 3; at++)
        assert_int_equal(run_of(&g.a, at)->state, FR_STATE_RESTORING); /* engines still quiet */
    tap_close(&g, &t);
    rig_teardown(&g);
}

/* More changed runs than a batch holds go in several batches of at most
 * FR_WIRE_MAX_BATCH items in the same round, none left out. */
static void a_round_is_cut_into_batches_of_the_bound(void **state)
{
    enum { N = FR_WIRE_MAX_BATCH + 2 };
    struct rig g;
    struct wire_tap t;
    rig_setup(&g);
    rig_engine(&g, "exec sleep 30");
    g.a.cfg.slots = N;
    g.a.cfg.bus_limit = 1; /* one engine runs; the others wait queued for the bus */
    for (int i = 2; i <= N; i++) {
        char path[16];
        snprintf(path, sizeof path, "1-%d", i);
        rig_port(&g, path, 0, 0x1000 + (uint64_t)i);
    }
    tap_open(&g, &t);
    assign_to(&g, 1, TEST_ECID, "1-1", NULL, "");
    for (int i = 2; i <= N; i++) {
        char path[16];
        snprintf(path, sizeof path, "1-%d", i);
        assign_to(&g, (uint64_t)i, 0x1000 + (uint64_t)i, path, NULL, "");
    }
    assert_true(tap_until(&g, &t, N, -1));
    assert_int_equal(t.max_items, FR_WIRE_MAX_BATCH);
    assert_true(t.batches >= 2);
    assert_int_equal(t.singles, 0);
    tap_close(&g, &t);
    rig_teardown(&g);
}

/* ---- a publisher on 127.0.0.1: one fixed answer to every GET ---------------------- */

struct publisher {
    uv_tcp_t srv;
    const char *answer;  /* the whole HTTP response */
    int gets;
};

struct pub_conn {
    uv_tcp_t tcp;
    struct publisher *pub;
    uv_write_t wr;
    int answered;
};

static void pub_closed(uv_handle_t *h) { free(h->data); }

static void pub_written(uv_write_t *w, int status)
{
    struct pub_conn *c = w->data;
    uv_close((uv_handle_t *)&c->tcp, pub_closed);
}

static void pub_alloc(uv_handle_t *h, size_t n, uv_buf_t *b)
{
    static char buf[4096];
    *b = uv_buf_init(buf, sizeof buf);
}

static void pub_read(uv_stream_t *st, ssize_t n, const uv_buf_t *b)
{
    struct pub_conn *c = st->data;
    if (n < 0 && !c->answered) {
        uv_close((uv_handle_t *)&c->tcp, pub_closed);
        return;
    }
    if (n <= 0 || c->answered)
        return;
    c->answered = 1; /* the request fits one read here; the answer does not depend on it */
    c->pub->gets++;
    uv_read_stop(st);
    uv_buf_t out = uv_buf_init((char *)c->pub->answer, (unsigned)strlen(c->pub->answer));
    c->wr.data = c;
    uv_write(&c->wr, st, &out, 1, pub_written);
}

static void pub_conn(uv_stream_t *srv, int status)
{
    struct pub_conn *c = calloc(1, sizeof *c);
    c->pub = srv->data;
    uv_tcp_init(srv->loop, &c->tcp);
    c->tcp.data = c;
    assert_int_equal(uv_accept(srv, (uv_stream_t *)&c->tcp), 0);
    uv_read_start((uv_stream_t *)&c->tcp, pub_alloc, pub_read);
}

/* Serves answer on a free loopback port; its URL in url. */
static void publisher_start(struct publisher *p, uv_loop_t *loop, const char *answer, char *url,
                            size_t len)
{
    memset(p, 0, sizeof *p);
    p->answer = answer;
    struct sockaddr_in addr;
    uv_ip4_addr("127.0.0.1", 0, &addr);
    uv_tcp_init(loop, &p->srv);
    p->srv.data = p;
    assert_int_equal(uv_tcp_bind(&p->srv, (const struct sockaddr *)&addr, 0), 0);
    assert_int_equal(uv_listen((uv_stream_t *)&p->srv, 8, pub_conn), 0);
    struct sockaddr_in got;
    int n = sizeof got;
    uv_tcp_getsockname(&p->srv, (struct sockaddr *)&got, &n);
    snprintf(url, len, "http://127.0.0.1:%d/x.ipsw", ntohs(got.sin_port));
}

static void publisher_stop(struct publisher *p)
{
    uv_close((uv_handle_t *)&p->srv, NULL);
}

static void rig_cache(struct rig *g)
{
    char dir[128], err[256];
    snprintf(dir, sizeof dir, "%s/cache", g->dir);
    mkdir(dir, 0755);
    assert_int_equal(fwcache_open(&g->loop, dir, 1u << 30, &g->a.cache, err, sizeof err), 0);
}

#define IPSW_BODY "ipsw"
#define IPSW_OK "HTTP/1.1 200 OK\r\nContent-Length: 4\r\nConnection: close\r\n\r\n" IPSW_BODY

static void sha256_hex_of(const char *text, char *hex)
{
    struct fr_sha256 c;
    fr_sha256_init(&c);
    fr_sha256_update(&c, text, strlen(text));
    fr_sha256_hex(&c, hex);
}

/* A rig with a cache and a publisher giving answer, and attempt assigned the
 * publisher's URL with the hash of hashed; the loop does not run yet. */
static void assign_fetched(struct rig *g, struct publisher *pub, uint64_t attempt,
                           const char *answer, const char *hashed)
{
    rig_setup(g);
    rig_cache(g);
    char url[128], sha[65];
    publisher_start(pub, &g->loop, answer, url, sizeof url);
    sha256_hex_of(hashed, sha);
    assign_to(g, attempt, TEST_ECID, "1-1", url, sha);
}

/* Runs the loop until the attempt's run has ended, then stops the publisher. */
static void until_ended(struct rig *g, struct publisher *pub, uint64_t attempt)
{
    while (run_of(&g->a, attempt) && uv_run(&g->loop, UV_RUN_ONCE))
        ;
    publisher_stop(pub);
}

/* Fetch -> queue -> restore: a URL goes through the cache by its hash, then queues for
 * its bus, then restores from the cached file. */
static void a_fetched_ipsw_is_verified_then_restored(void **state)
{
    struct rig g;
    struct publisher pub;
    assign_fetched(&g, &pub, 11, IPSW_OK, IPSW_BODY);
    assert_int_equal(run_of(&g.a, 11)->state, FR_STATE_FETCHING_FIRMWARE);
    until_ended(&g, &pub, 11);
    char cls[64];
    assert_int_equal(result_of(&g.a, 11, cls, sizeof cls), FR__OUTCOME__OUTCOME_SUCCESS);
    assert_int_equal(pub.gets, 1);
    assert_int_equal(starts(&g), 1);
    rig_teardown(&g);
}

/* The publisher fails, or sends a file whose hash is not the one submitted: the run
 * fails as firmware and no engine ever sees the file. */
static void firmware_that_fails_to_fetch_or_to_verify_fails_the_run(void **state)
{
    static const char *const answers[] = {
        "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
        IPSW_OK, /* fine bytes, but the hash asked for is another file's */
    };
    for (size_t i = 0; i < 2; i++) {
        struct rig g;
        struct publisher pub;
        assign_fetched(&g, &pub, 12, answers[i], "another file");
        until_ended(&g, &pub, 12);
        char cls[64] = "";
        assert_int_equal(result_of(&g.a, 12, cls, sizeof cls), FR__OUTCOME__OUTCOME_FAILED);
        assert_string_equal(cls, "firmware");
        assert_true(pub.gets >= 1);
        assert_int_equal(starts(&g), 0);
        rig_teardown(&g);
    }
}

/* Cancel while fetching: the fetch's end finds the flag and the run ends cancelled,
 * its engine never run. */
static void a_run_cancelled_while_fetching_ends_cancelled(void **state)
{
    struct rig g;
    struct publisher pub;
    assign_fetched(&g, &pub, 13, IPSW_OK, IPSW_BODY);
    struct unit_run *r = run_of(&g.a, 13);
    assert_int_equal(r->state, FR_STATE_FETCHING_FIRMWARE);
    unit_run_on_cancel(&g.a, &r->ref);
    until_ended(&g, &pub, 13);
    char cls[64];
    assert_int_equal(result_of(&g.a, 13, cls, sizeof cls), FR__OUTCOME__OUTCOME_CANCELLED);
    assert_int_equal(starts(&g), 0);
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
        cmocka_unit_test(a_restored_unit_is_read_back_in_normal_mode),
        cmocka_unit_test(a_unit_that_does_not_come_back_is_not_verified_after_the_wait),
        cmocka_unit_test(a_cancel_while_waiting_for_the_unit_ends_the_wait),
        cmocka_unit_test(runs_on_one_bus_restore_one_at_a_time),
        cmocka_unit_test(a_run_cancelled_while_queued_never_starts),
        cmocka_unit_test(a_run_cancelled_while_restoring_kills_its_engine),
        cmocka_unit_test(missing_firmware_fails_before_the_engine),
        cmocka_unit_test(a_fetched_ipsw_is_verified_then_restored),
        cmocka_unit_test(firmware_that_fails_to_fetch_or_to_verify_fails_the_run),
        cmocka_unit_test(a_run_cancelled_while_fetching_ends_cancelled),
        cmocka_unit_test(progress_goes_in_batches_and_the_last_line_is_not_held_back),
        cmocka_unit_test(a_round_is_cut_into_batches_of_the_bound),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
