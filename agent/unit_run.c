/* unit_run — accepted attempts and their state machine; see unit_run.h. */
#include "unit_run.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fr_err.h"
#include "fr_log.h"
#include "fr_time.h"
#include "fr_fwcache.h"
#include "engine_keep.h"
#include "journal.h"
#include "progress.h"

/* Legal moves of the agent-side machine (from -> to). */
int unit_run_can_move(enum fr_state from, enum fr_state to)
{
    if (fr_state_is_terminal(from))
        return 0;
    if (to == FR_STATE_FAILED || to == FR_STATE_CANCELLED)
        return 1;
    switch (from) {
    case FR_STATE_PREFLIGHT: return to == FR_STATE_QUEUED_FOR_BUS || to == FR_STATE_FETCHING_FIRMWARE;
    case FR_STATE_FETCHING_FIRMWARE: return to == FR_STATE_QUEUED_FOR_BUS;
    case FR_STATE_QUEUED_FOR_BUS: return to == FR_STATE_RESTORING;
    case FR_STATE_RESTORING: return to == FR_STATE_VERIFYING || to == FR_STATE_DONE;
    case FR_STATE_VERIFYING: return to == FR_STATE_DONE;
    default: return 0;
    }
}

/* The journal's JOB/ECID/AGENT/PORT fields for a line about this run. */
static struct fr_log_ctx run_log_ctx(const struct unit_run *r)
{
    return (struct fr_log_ctx){ r->ref.job_id, r->ref.ecid, r->agent->cfg.id, r->port_path };
}

void unit_run_set_state(struct unit_run *r, enum fr_state to, const char *why)
{
    char ecid[FR_ECID_STRLEN];
    struct fr_log_ctx lc = run_log_ctx(r);
    fr_ecid_format(r->ref.ecid, ecid, sizeof ecid);
    if (!unit_run_can_move(r->state, to)) {
        fr_errorx("unit", &lc, "unit %s: refused transition %s -> %s (%s)", ecid,
                  fr_state_name(r->state), fr_state_name(to), why);
        return;
    }
    fr_infox("unit", &lc, "unit %s: %s -> %s (%s)", ecid, fr_state_name(r->state),
             fr_state_name(to), why);
    r->state = to;
    if (!fr_state_is_terminal(to))
        progress_mark(r);
}

int unit_run_count(const struct agent *a)
{
    int n = 0;
    for (const struct unit_run *r = a->runs; r; r = r->next)
        n++;
    return n;
}

static struct unit_run *find_run(struct agent *a, uint64_t attempt_id)
{
    for (struct unit_run *r = a->runs; r; r = r->next)
        if (r->ref.attempt_id == attempt_id)
            return r;
    return NULL;
}

static void answer(struct agent *a, const Fr__AttemptRef *ref, int accepted, const char *reason)
{
    Fr__AttemptRef copy = *ref;
    Fr__JobAccept acc = FR__JOB_ACCEPT__INIT;
    acc.ref = &copy;
    acc.accepted = accepted;
    acc.reason = (char *)reason;
    Fr__Envelope env = FR__ENVELOPE__INIT;
    env.body_case = FR__ENVELOPE__BODY_JOB_ACCEPT;
    env.job_accept = &acc;
    link_send_reliable(a, &env, NULL);
}

static void admit(struct agent *a);

static void on_timer_closed(uv_handle_t *h)
{
    free(h);
}

static void close_timers(struct unit_run *r)
{
    if (r->wait_timer)
        uv_close((uv_handle_t *)r->wait_timer, on_timer_closed);
    r->wait_timer = NULL;
    if (r->keeper_poll)
        uv_close((uv_handle_t *)r->keeper_poll, on_timer_closed);
    r->keeper_poll = NULL;
}

static void remove_run(struct agent *a, struct unit_run *r)
{
    if (r->pinned)
        fwcache_unpin(a->cache, r->sha256);
    for (struct unit_run **pp = &a->runs; *pp; pp = &(*pp)->next)
        if (*pp == r) {
            *pp = r->next;
            break;
        }
    engine_destroy(r->engine);
    close_timers(r);
    free(r);
    admit(a); /* a place on its bus may have opened */
}

static void send_result(struct unit_run *r, Fr__Outcome outcome, enum fr_class cls, const char *text,
                        int exit_code, const char *log_path)
{
    Fr__JobResult res = FR__JOB_RESULT__INIT;
    res.ref = &r->ref;
    res.outcome = outcome;
    res.error_class = (char *)fr_class_name(cls);
    res.error_text = (char *)text;
    res.exit_code = exit_code;
    res.log_path = (char *)log_path;
    res.started_ms = r->started_ms;
    res.ended_ms = fr_time_wall_ms();
    res.port_path = r->port_path;
    if (r->engine) { /* the firmware as the engine read it from the IPSW */
        res.firmware_version = (char *)engine_parser(r->engine)->version;
        res.firmware_build = (char *)engine_parser(r->engine)->build;
    }
    if (outcome == FR__OUTCOME__OUTCOME_SUCCESS) { /* what the unit said after it */
        res.unit_version = r->unit_version;
        res.unit_build = r->unit_build;
        res.unverified_reason = r->unverified;
    }
    Fr__Envelope env = FR__ENVELOPE__INIT;
    env.body_case = FR__ENVELOPE__BODY_JOB_RESULT;
    env.job_result = &res;
    link_send_reliable(r->agent, &env, &r->ref);
}

static void log_path_of(const struct unit_run *r, char *buf, size_t len)
{
    char ecid[FR_ECID_STRLEN];
    fr_ecid_format(r->ref.ecid, ecid, sizeof ecid);
    /* named as the report names the attempt: job, unit, try within the unit's run */
    snprintf(buf, len, "%s/logs/job%llu-%s-try%u.log", r->agent->cfg.work_dir,
             (unsigned long long)r->ref.job_id, ecid, r->attempt_number);
}

static void on_engine_progress(struct engine *e, void *arg)
{
    struct unit_run *r = arg;
    struct engine_output *eo = engine_parser_mut(e);
    int state_change = eo->progress_changed && eo->step >= 3 && r->state == FR_STATE_RESTORING;
    if (state_change) {
        unit_run_set_state(r, FR_STATE_VERIFYING, "filesystem sent");
        admit(r->agent);
    }
    else
        progress_mark(r); /* sent in the agent's next round, at most a tick from now */
    eo->progress_changed = eo->status_changed = 0;
}

#define STOPPED_TEXT "the agent stopped and ended the restore; not the unit's fault, it runs again"

/* How an engine's end reads: the outcome, its class and text. An engine this agent ended
 * because it was itself stopping (SIGTERM: a restart, an upgrade) is interrupted, which
 * the controller runs again, not cancelled, which it would leave as the operator's. */
static Fr__Outcome classify(const struct engine_output *eo, int exit_code, int term_signal,
                            int cancelled, int stopping, int watchdog, long long watchdog_s,
                            enum fr_class *cls, char *text, size_t len)
{
    *cls = engine_output_outcome(eo, exit_code, term_signal, text, len);
    if (cancelled && stopping) {
        *cls = FR_CLASS_INTERRUPTED;
        snprintf(text, len, STOPPED_TEXT);
        return FR__OUTCOME__OUTCOME_INTERRUPTED;
    }
    if (cancelled) {
        *cls = FR_CLASS_NONE;
        snprintf(text, len, "cancelled by the controller");
        return FR__OUTCOME__OUTCOME_CANCELLED;
    }
    if (watchdog) {
        *cls = FR_CLASS_LINK_LOST;
        snprintf(text, len, "watchdog: no output for %lld s", watchdog_s);
        return FR__OUTCOME__OUTCOME_FAILED;
    }
    return *cls == FR_CLASS_NONE ? FR__OUTCOME__OUTCOME_SUCCESS : FR__OUTCOME__OUTCOME_FAILED;
}

/* The run's result is kept (journal): its engine's note and the keeper's files go. */
static void engine_noted_done(struct unit_run *r, const char *log_path)
{
    if (!r->agent->keeper[0])
        return;
    journal_engine_done(r->agent, r->ref.attempt_id);
    engine_keep_forget(log_path);
}

/* ---- after the restore: the unit's own word on what it runs ------------------ */

/* Ends a successful run: its result, with what the unit said (version and build
 * read), or why nothing was read. */
static void verify_done(struct unit_run *r, const struct unit_desc *u, const char *unverified)
{
    char log_path[1024], why[320];
    log_path_of(r, log_path, sizeof log_path);
    r->awaiting_normal = 0;
    if (r->wait_timer)
        uv_timer_stop(r->wait_timer);
    if (u) {
        snprintf(r->unit_version, sizeof r->unit_version, "%s", u->ios);
        snprintf(r->unit_build, sizeof r->unit_build, "%s", u->build);
        snprintf(why, sizeof why, "restore finished; the unit says iOS %s (%s)", u->ios, u->build);
    } else {
        snprintf(r->unverified, sizeof r->unverified, "%s", unverified);
        snprintf(why, sizeof why, "restore finished; not verified: %s", unverified);
    }
    if (r->state == FR_STATE_RESTORING) /* an engine that never reported the verify step */
        unit_run_set_state(r, FR_STATE_VERIFYING, "restore finished");
    unit_run_set_state(r, FR_STATE_DONE, why);
    send_result(r, FR__OUTCOME__OUTCOME_SUCCESS, FR_CLASS_NONE, "", r->exit_code, log_path);
    engine_noted_done(r, log_path);
    remove_run(r->agent, r);
}

/* A unit in normal mode whose lockdownd was read: ios and build say what it runs. */
static int reads_back(const struct unit_desc *u)
{
    return u->mode == fr_mode_parse("normal") && u->ios[0] && !u->reason[0];
}

static void on_verify_timeout(uv_timer_t *t)
{
    struct unit_run *r = t->data;
    char why[160];
    snprintf(why, sizeof why, "the unit did not come back in normal mode within %lld s",
             r->agent->cfg.verify_wait_s);
    verify_done(r, NULL, why);
}

/* The restore finished: wait (bounded) for the unit to boot into normal mode and read
 * its ProductVersion and BuildVersion, where the backend reads lockdownd at all. The
 * engine's note (engine_keep.h) stays until the result is kept. */
static void verify_start(struct unit_run *r, int exit_code)
{
    struct agent *a = r->agent;
    r->exit_code = exit_code;
    if (a->seams->no_lockdown) {
        verify_done(r, NULL, a->seams->no_lockdown);
        return;
    }
    if (a->cfg.verify_wait_s == 0) {
        verify_done(r, NULL, "[engine] verify_wait_s = 0 (the agent does not wait for it)");
        return;
    }
    if (!(r->wait_timer = malloc(sizeof *r->wait_timer))) {
        verify_done(r, NULL, "out of memory");
        return;
    }
    if (r->state == FR_STATE_RESTORING)
        unit_run_set_state(r, FR_STATE_VERIFYING, "restore finished");
    struct fr_log_ctx lc = run_log_ctx(r);
    fr_infox("unit", &lc, "unit 0x%016llX: restore finished; waiting up to %lld s for it in normal "
             "mode to read its iOS version", (unsigned long long)r->ref.ecid, a->cfg.verify_wait_s);
    r->awaiting_normal = 1;
    uv_timer_init(a->loop, r->wait_timer);
    r->wait_timer->data = r;
    uv_timer_start(r->wait_timer, on_verify_timeout, (uint64_t)a->cfg.verify_wait_s * 1000u, 0);
    /* it may have booted before the engine's exit was seen */
    struct port *p = ports_find_unit(a, r->ref.ecid);
    if (p && reads_back(&p->unit))
        verify_done(r, &p->unit, NULL);
}

static void on_engine_exit(struct engine *e, void *arg, int exit_code, int term_signal, int watchdog)
{
    struct unit_run *r = arg;
    char text[EO_TEXT_MAX + 64], log_path[1024];
    log_path_of(r, log_path, sizeof log_path);
    enum fr_class cls;
    Fr__Outcome outcome = classify(engine_parser(e), exit_code, term_signal, r->cancel_requested,
                                   r->agent->stopping, watchdog, r->agent->cfg.watchdog_s, &cls,
                                   text, sizeof text);
    if (outcome == FR__OUTCOME__OUTCOME_CANCELLED) {
        unit_run_set_state(r, FR_STATE_CANCELLED, text);
    } else if (outcome == FR__OUTCOME__OUTCOME_SUCCESS) {
        verify_start(r, exit_code);
        return;
    } else {
        char why[EO_TEXT_MAX + 96];
        snprintf(why, sizeof why, "%s: %s", fr_class_name(cls), text);
        unit_run_set_state(r, FR_STATE_FAILED, watchdog ? text : why);
        if (cls == FR_CLASS_FIRMWARE && r->pinned) /* the retry checks the file first */
            fwcache_suspect(r->agent->cache, r->sha256);
    }
    send_result(r, outcome, cls, text, term_signal ? -term_signal : exit_code, log_path);
    engine_noted_done(r, log_path);
    remove_run(r->agent, r);
}

/* Notes the engine about to start (engine_keep.h): its end survives this process. */
static void note_engine(struct unit_run *r, const char *log_path)
{
    struct kept_engine k;
    memset(&k, 0, sizeof k);
    k.ref = r->ref;
    snprintf(k.port_path, sizeof k.port_path, "%s", r->port_path);
    k.started_ms = r->started_ms;
    snprintf(k.log_path, sizeof k.log_path, "%s", log_path);
    journal_engine_add(r->agent, &k);
}

static int start_engine(struct unit_run *r, char *err, size_t errlen)
{
    struct agent *a = r->agent;
    char ecid[FR_ECID_STRLEN], cache[600], logs[600], log_path[1024];
    fr_ecid_format(r->ref.ecid, ecid, sizeof ecid);
    snprintf(cache, sizeof cache, "%s/cache", a->cfg.work_dir);
    snprintf(logs, sizeof logs, "%s/logs", a->cfg.work_dir);
    mkdir(cache, 0755);
    mkdir(logs, 0755);
    log_path_of(r, log_path, sizeof log_path);
    const char *argv[12];
    int n = 0;
    argv[n++] = a->cfg.engine_path;
    argv[n++] = "-i";
    argv[n++] = ecid;
    if (r->erase)
        argv[n++] = "-e";
    argv[n++] = "-y";
    argv[n++] = "-P";
    argv[n++] = "-C";
    argv[n++] = cache;
    if (a->cfg.engine_extra[0])
        argv[n++] = a->cfg.engine_extra;
    argv[n++] = r->firmware;
    argv[n] = NULL;
    struct engine_spec spec = { a->cfg.engine_path, argv, a->engine_env, log_path,
                                (uint64_t)a->cfg.watchdog_s * 1000u, a->keeper[0] ? a->keeper : NULL };
    if (spec.keeper)
        note_engine(r, log_path);
    int rc = engine_start(&r->engine, a->loop, &spec, on_engine_progress, on_engine_exit, r, err,
                          errlen);
    if (rc < 0)
        engine_noted_done(r, log_path);
    return rc;
}

static void engine_go(struct unit_run *r)
{
    char err[512];
    unit_run_set_state(r, FR_STATE_RESTORING, "admitted to its bus, engine starting");
    if (start_engine(r, err, sizeof err) < 0) {
        r->engine = NULL;
        unit_run_set_state(r, FR_STATE_FAILED, err);
        send_result(r, FR__OUTCOME__OUTCOME_FAILED, FR_CLASS_STACK_TOO_OLD, err, 0, "");
        remove_run(r->agent, r);
    }
}

/* Units on a later attempt go first (they have waited through a failure and a move
 * already, and hold the job's tail), then the oldest. */
static int admit_before(const struct unit_run *r, const struct unit_run *other)
{
    if (r->attempt_number != other->attempt_number)
        return r->attempt_number > other->attempt_number;
    return r->started_ms < other->started_ms;
}

#define MAX_BUSES 128

struct bus_count {
    uint32_t bus;
    int n;
};

/* Units in the data phase per bus, counted once per pick (counting per pair of runs
 * made a hundred assigns at once quadratic and stalled the loop for seconds). */
static size_t count_busy(const struct agent *a, struct bus_count *busy)
{
    size_t n = 0;
    for (const struct unit_run *o = a->runs; o; o = o->next) {
        if (o->state != FR_STATE_RESTORING)
            continue;
        size_t k = 0;
        while (k < n && busy[k].bus != o->bus)
            k++;
        if (k == n && n < MAX_BUSES)
            busy[n++] = (struct bus_count){ o->bus, 0 };
        if (k < n)
            busy[k].n++;
    }
    return n;
}

static int busy_on(const struct bus_count *busy, size_t n, uint32_t bus)
{
    for (size_t k = 0; k < n; k++)
        if (busy[k].bus == bus)
            return busy[k].n;
    return 0;
}

/* Bus-aware admission: at most bus_limit units per root bus restore before their
 * filesystem is sent (the data phase), oldest first; the rest wait in
 * queued_for_bus, so the rack does not cause its own lost links. */
static void admit(struct agent *a)
{
    if (a->stopping)
        return;
    for (;;) {
        struct bus_count busy[MAX_BUSES];
        size_t nbusy = count_busy(a, busy);
        struct unit_run *next = NULL;
        for (struct unit_run *r = a->runs; r; r = r->next) {
            if (r->state != FR_STATE_QUEUED_FOR_BUS)
                continue;
            int n = busy_on(busy, nbusy, r->bus);
            if ((a->cfg.bus_limit == 0 || n < a->cfg.bus_limit) && (!next || admit_before(r, next)))
                next = r;
        }
        if (!next)
            return;
        engine_go(next); /* may remove next, and admit again: the loop looks afresh */
    }
}

/* Ends a run that never started its engine. */
static void fail_run(struct unit_run *r, enum fr_class cls, const char *why)
{
    unit_run_set_state(r, FR_STATE_FAILED, why);
    send_result(r, FR__OUTCOME__OUTCOME_FAILED, cls, why, 0, "");
    remove_run(r->agent, r);
}

static void fail_firmware(struct unit_run *r, const char *why)
{
    fail_run(r, FR_CLASS_FIRMWARE, why);
}

/* Ends a run before its engine started, on the controller's cancel or this agent's stop. */
static void cancel_now(struct unit_run *r)
{
    if (r->agent->stopping) {
        unit_run_set_state(r, FR_STATE_FAILED, STOPPED_TEXT);
        send_result(r, FR__OUTCOME__OUTCOME_INTERRUPTED, FR_CLASS_INTERRUPTED, STOPPED_TEXT, 0, "");
    } else {
        unit_run_set_state(r, FR_STATE_CANCELLED, "cancelled by the controller");
        send_result(r, FR__OUTCOME__OUTCOME_CANCELLED, FR_CLASS_NONE, "cancelled by the controller", 0, "");
    }
    remove_run(r->agent, r);
}

static void queue_for_bus(struct unit_run *r, const char *why)
{
    unit_run_set_state(r, FR_STATE_QUEUED_FOR_BUS, why);
    admit(r->agent);
}

/* The cache has the IPSW (verified) or gave up on it. */
static void on_firmware_ready(void *arg, int status, const char *path, const char *err)
{
    struct unit_run *r = arg;
    if (r->cancel_requested) {
        cancel_now(r);
        return;
    }
    if (status < 0) {
        char why[1200];
        snprintf(why, sizeof why, "firmware %s: %s", r->sha256, err ? err : "unavailable");
        fail_firmware(r, why);
        return;
    }
    snprintf(r->firmware, sizeof r->firmware, "%s", path);
    fwcache_pin(r->agent->cache, r->sha256); /* never evicted while this attempt needs it */
    r->pinned = 1;
    queue_for_bus(r, "firmware verified in the cache");
}

/* Preflight: a local IPSW must be readable; a URL goes through the verified cache
 * (by its SHA-256) first. Then the run queues for its bus. */
static void run_fetch(struct unit_run *r)
{
    char err[1200];
    int remote = fr_is_url(r->firmware);
    if (remote && !fr_is_hash_hex(r->sha256)) {
        snprintf(err, sizeof err, "Firmware file %s cannot be opened: a downloaded IPSW needs its "
                 "SHA-256 or SHA-1 (submit --sha256)", r->firmware);
        fail_firmware(r, err);
        return;
    }
    if (remote) {
        unit_run_set_state(r, FR_STATE_FETCHING_FIRMWARE, "fetching the IPSW into the cache");
        if (fwcache_get(r->agent->cache, r->sha256, r->firmware, on_firmware_ready, r) < 0) {
            snprintf(err, sizeof err, "Firmware file %s cannot be opened: bad hash '%s'", r->firmware,
                     r->sha256);
            fail_firmware(r, err);
        }
        return;
    }
    if (access(r->firmware, R_OK) != 0) {
        snprintf(err, sizeof err, "Firmware file %s cannot be opened", r->firmware);
        fail_firmware(r, err);
        return;
    }
    queue_for_bus(r, "preflight passed");
}

/* ---- a unit in normal mode goes to recovery first ------------------------ */

#define RECOVERY_WAIT_MS 60000 /* reboot to the recovery screen takes seconds */

struct recovery_ctx {
    struct agent *agent;
    uint64_t attempt_id;  /* the run may be gone when lockdown answers */
};

static void on_recovery_timeout(uv_timer_t *t)
{
    struct unit_run *r = t->data;
    char why[160];
    snprintf(why, sizeof why, "the unit did not come back in recovery mode within %d s",
             RECOVERY_WAIT_MS / 1000);
    fail_run(r, FR_CLASS_NO_DEVICE, why);
}

static void on_recovery_answer(void *arg, int rc, const char *why)
{
    struct recovery_ctx *ctx = arg;
    struct unit_run *r = find_run(ctx->agent, ctx->attempt_id);
    free(ctx);
    if (!r || rc == FR_ECANCELED)
        return;
    char text[512];
    if (r->cancel_requested) {
        cancel_now(r);
    } else if (rc < 0) {
        /* lockdown's refusal needs an operator's buttons (needs_dfu); else the unit is gone */
        snprintf(text, sizeof text, "cannot send the unit to recovery mode: %s", why);
        fail_run(r, rc == FR_ESTATE ? FR_CLASS_NEEDS_DFU : FR_CLASS_NO_DEVICE, text);
    } else if ((r->wait_timer = malloc(sizeof *r->wait_timer))) {
        struct fr_log_ctx lc = run_log_ctx(r);
        fr_infox("unit", &lc, "unit 0x%016llX: lockdown took EnterRecovery; waiting for it in "
                 "recovery mode on '%s'", (unsigned long long)r->ref.ecid, r->port_path);
        r->awaiting_recovery = 1;
        uv_timer_init(r->agent->loop, r->wait_timer);
        r->wait_timer->data = r;
        uv_timer_start(r->wait_timer, on_recovery_timeout, RECOVERY_WAIT_MS, 0);
        /* the unit's return in recovery can come before lockdown's answer (two sources:
         * the simulator's feed or libirecovery, and usbmuxd): it may be here already */
        struct port *p = ports_find_unit(r->agent, r->ref.ecid);
        if (p)
            unit_run_on_unit(r->agent, &p->unit);
    } else {
        fail_run(r, FR_CLASS_UNKNOWN, "out of memory");
    }
}

static void ask_recovery(struct unit_run *r)
{
    struct agent *a = r->agent;
    struct recovery_ctx *ctx = malloc(sizeof *ctx);
    int rc = ctx ? 0 : FR_ENOMEM;
    if (ctx) {
        ctx->agent = a;
        ctx->attempt_id = r->ref.attempt_id;
        rc = a->seams->enter_recovery(a->seams, r->port_path, r->ref.ecid, on_recovery_answer, ctx);
    }
    if (rc < 0) {
        free(ctx);
        char why[160];
        snprintf(why, sizeof why, "cannot ask the unit to enter recovery mode: %s",
                 rc == FR_ENOTFOUND ? "it is not on usbmuxd" : fr_strerror(rc));
        fail_run(r, FR_CLASS_NO_DEVICE, why);
    }
}

void unit_run_on_unit(struct agent *a, const struct unit_desc *u)
{
    for (struct unit_run *r = a->runs; r && reads_back(u); r = r->next)
        if (r->awaiting_normal && r->ref.ecid == u->ecid) {
            verify_done(r, u, NULL);
            return;
        }
    if ((u->mode != fr_mode_parse("recovery") && u->mode != fr_mode_parse("dfu")) || u->reason[0])
        return; /* a unit the agent may not open waits for an operator (u->reason) */
    for (struct unit_run *r = a->runs; r; r = r->next) {
        if (!r->awaiting_recovery || r->ref.ecid != u->ecid)
            continue;
        r->awaiting_recovery = 0;
        uv_timer_stop(r->wait_timer);
        if (strcmp(r->port_path, u->path) != 0)
            fr_warn("unit", "unit 0x%016llX came back on '%s', not '%s'",
                    (unsigned long long)u->ecid, u->path, r->port_path);
        snprintf(r->port_path, sizeof r->port_path, "%s", u->path);
        struct fr_log_ctx lc = run_log_ctx(r);
        fr_infox("unit", &lc, "unit 0x%016llX is in %s mode on '%s'", (unsigned long long)u->ecid,
                 fr_mode_name(u->mode), u->path);
        run_fetch(r);
        return;
    }
}

/* Preflight: the engine must know the model; a unit in normal mode is sent to recovery
 * through lockdown where the seams can (the engine would otherwise try pairing, which
 * puts a Trust dialog on the phone); then the firmware. */
static void run_start(struct unit_run *r)
{
    char err[1200];
    if (r->product_type[0] && !engine_supports_model(&r->agent->engine, r->product_type)) {
        /* nothing is sent to a unit the engine would not know: a configuration error */
        engine_explain_unsupported(&r->agent->engine, r->product_type, err, sizeof err);
        fail_run(r, FR_CLASS_STACK_TOO_OLD, err);
        return;
    }
    if (r->unit_mode == fr_mode_parse("normal") && r->agent->seams->enter_recovery) {
        ask_recovery(r);
        return;
    }
    run_fetch(r);
}

void unit_run_on_assign(struct agent *a, const Fr__JobAssign *as)
{
    const Fr__AttemptRef *ref = as->ref;
    if (find_run(a, ref->attempt_id)) {
        answer(a, ref, 1, "already running"); /* a re-sent assign: never start twice */
        return;
    }
    if (link_resend_result(a, ref->attempt_id) == 0) { /* it ran here and ended: its result */
        char ecid[FR_ECID_STRLEN];
        fr_ecid_format(ref->ecid, ecid, sizeof ecid);
        fr_info("unit", "unit %s: attempt %llu was assigned again after it ended: its result "
                "goes out again, the restore does not", ecid, (unsigned long long)ref->attempt_id);
        return;
    }
    struct port *p = ports_find_unit(a, ref->ecid);
    char reason[160] = "";
    if (!p)
        snprintf(reason, sizeof reason, "the unit is not on this agent");
    else if (unit_run_count(a) >= a->cfg.slots)
        snprintf(reason, sizeof reason, "no free slot (%lld running)", a->cfg.slots);
    for (struct unit_run *r = a->runs; !reason[0] && r; r = r->next)
        if (r->ref.ecid == ref->ecid)
            snprintf(reason, sizeof reason, "the unit is already being restored (attempt %llu)",
                     (unsigned long long)r->ref.attempt_id);
    if (reason[0]) {
        answer(a, ref, 0, reason);
        return;
    }
    struct unit_run *r = calloc(1, sizeof *r);
    if (!r) {
        answer(a, ref, 0, "out of memory");
        return;
    }
    r->agent = a;
    fr__attempt_ref__init(&r->ref);
    r->ref.job_id = ref->job_id;
    r->ref.attempt_id = ref->attempt_id;
    r->ref.epoch = ref->epoch;
    r->ref.ecid = ref->ecid;
    r->ref.token_hi = ref->token_hi;
    r->ref.token_lo = ref->token_lo;
    snprintf(r->port_path, sizeof r->port_path, "%s", p->desc.path);
    snprintf(r->product_type, sizeof r->product_type, "%s", p->unit.product_type);
    r->unit_mode = p->unit.mode;
    r->bus = p->desc.bus;
    snprintf(r->firmware, sizeof r->firmware, "%s", as->firmware);
    snprintf(r->sha256, sizeof r->sha256, "%.64s", as->firmware_sha256);
    r->erase = as->erase;
    r->attempt_number = as->attempt_number;
    r->state = FR_STATE_PREFLIGHT;
    r->started_ms = fr_time_wall_ms();
    r->next = a->runs;
    a->runs = r;
    answer(a, ref, 1, strcmp(as->port_path, p->desc.path) ? "the unit is on another port" : "");
    run_start(r);
}

void unit_run_on_cancel(struct agent *a, const Fr__AttemptRef *ref)
{
    struct unit_run *r = find_run(a, ref->attempt_id);
    if (!r || r->ref.epoch != ref->epoch)
        return;
    r->cancel_requested = 1;
    if (r->awaiting_normal) { /* restored already: the result says so */
        verify_done(r, NULL, "the attempt was cancelled while the agent waited for the unit");
    } else if (r->engine) {
        engine_kill(r->engine);
    } else if (r->keeper_poll) {
        engine_keep_kill(r->kept_log); /* the poll sees it end */
    } else if (r->state == FR_STATE_QUEUED_FOR_BUS || r->awaiting_recovery) {
        cancel_now(r);
    } /* fetching, or asking lockdown: that callback sees the flag */
}

void unit_run_kill_all(struct agent *a)
{
    struct unit_run *r = a->runs, *next;
    for (; r; r = next) { /* restored units waiting to be read: their results go out now */
        next = r->next;
        if (r->awaiting_normal)
            verify_done(r, NULL, "the agent stopped while it waited for the unit");
    }
    for (r = a->runs; r; r = r->next) {
        r->cancel_requested = 1;
        r->awaiting_recovery = 0;
        if (r->keeper_poll)
            engine_keep_kill(r->kept_log);
        close_timers(r); /* while the loop still runs its close callbacks */
        engine_kill(r->engine);
    }
}

void unit_run_free_all(struct agent *a)
{
    progress_close(a);
    while (a->runs) {
        struct unit_run *r = a->runs;
        a->runs = r->next;
        engine_destroy(r->engine);
        close_timers(r);
        free(r);
    }
}

/* ---- engines an earlier process of this agent started (engine_keep.h) --------- */

#define KEEPER_POLL_MS 250

/* The result of an engine that ran under a keeper, from its log and recorded end (a
 * recorded end missing: the keeper was killed, by us on a cancel or a silence). */
static void report_kept(struct agent *a, struct unit_run *r, const char *log_path,
                        enum engine_keep_state st, int code, int sig, int watchdog)
{
    char ecid[FR_ECID_STRLEN], text[EO_TEXT_MAX + 64];
    fr_ecid_format(r->ref.ecid, ecid, sizeof ecid);
    struct engine_output eo;
    enum fr_class cls;
    engine_keep_parse_log(log_path, &eo);
    if (st != ENGINE_KEEP_ENDED && !sig)
        sig = SIGKILL;
    Fr__Outcome outcome = classify(&eo, code, sig, r->cancel_requested, a->stopping, watchdog,
                                   a->cfg.watchdog_s, &cls, text, sizeof text);
    fr_info("unit", "unit %s: attempt %llu, started by an earlier run of this agent, ended: %s%s%s",
            ecid, (unsigned long long)r->ref.attempt_id,
            outcome == FR__OUTCOME__OUTCOME_SUCCESS ? "restored" : fr_class_name(cls),
            outcome == FR__OUTCOME__OUTCOME_SUCCESS ? "" : ": ", text);
    if (outcome == FR__OUTCOME__OUTCOME_SUCCESS) /* this process never waited for the unit */
        snprintf(r->unverified, sizeof r->unverified, "the agent restarted during the restore; "
                 "the unit was not read back afterwards");
    if (find_run(a, r->ref.attempt_id) == r) /* a run taken over (not one ended meanwhile) */
        unit_run_set_state(r, outcome == FR__OUTCOME__OUTCOME_SUCCESS ? FR_STATE_DONE
                              : outcome == FR__OUTCOME__OUTCOME_CANCELLED ? FR_STATE_CANCELLED
                              : FR_STATE_FAILED, text);
    send_result(r, outcome, cls, text, sig ? -sig : code, log_path);
    journal_engine_done(a, r->ref.attempt_id);
    engine_keep_forget(log_path);
}

static void on_keeper_poll(uv_timer_t *t)
{
    struct unit_run *r = t->data;
    struct agent *a = r->agent;
    int code = 0, sig = 0;
    enum engine_keep_state st = engine_keep_check(r->kept_log, &code, &sig);
    if (st == ENGINE_KEEP_RUNNING) {
        /* the no-output watchdog, on the log the keeper writes */
        struct stat sb;
        uint64_t size = stat(r->kept_log, &sb) == 0 ? (uint64_t)sb.st_size : 0, now = uv_now(a->loop);
        if (size != r->kept_log_size) {
            r->kept_log_size = size;
            r->kept_quiet_since = now;
        } else if (now - r->kept_quiet_since > (uint64_t)a->cfg.watchdog_s * 1000u) {
            r->kept_quiet_since = now;
            r->kept_watchdog = 1;
            fr_warn("unit", "attempt %llu: no output for %lld s from the engine taken over, "
                    "killing it", (unsigned long long)r->ref.attempt_id, a->cfg.watchdog_s);
            engine_keep_kill(r->kept_log);
        }
        return;
    }
    report_kept(a, r, r->kept_log, st, code, sig, r->kept_watchdog);
    remove_run(a, r);
}

/* A keeper still running: its attempt goes on as a run of this process, listed in the
 * Hello (so the controller keeps it), watched until the keeper records its end. */
static void adopt(struct agent *a, const struct kept_engine *k)
{
    struct unit_run *r = calloc(1, sizeof *r);
    uv_timer_t *t = r ? malloc(sizeof *t) : NULL;
    if (!t) {
        free(r);
        engine_keep_kill(k->log_path); /* cannot watch it: interrupted, as before */
        journal_engine_done(a, k->ref.attempt_id);
        return;
    }
    r->agent = a;
    r->ref = k->ref;
    snprintf(r->port_path, sizeof r->port_path, "%s", k->port_path);
    snprintf(r->kept_log, sizeof r->kept_log, "%s", k->log_path);
    r->started_ms = k->started_ms;
    r->state = FR_STATE_RESTORING;
    r->kept_quiet_since = uv_now(a->loop);
    r->keeper_poll = t;
    uv_timer_init(a->loop, t);
    t->data = r;
    uv_timer_start(t, on_keeper_poll, KEEPER_POLL_MS, KEEPER_POLL_MS);
    r->next = a->runs;
    a->runs = r;
    char ecid[FR_ECID_STRLEN];
    fr_ecid_format(k->ref.ecid, ecid, sizeof ecid);
    fr_info("unit", "unit %s: the engine of attempt %llu outlived an earlier run of this agent; "
            "taken over until it ends", ecid, (unsigned long long)k->ref.attempt_id);
}

static void recover_one(struct agent *a, const struct kept_engine *k)
{
    uint8_t *kept = NULL;
    size_t kept_len = 0;
    int code = 0, sig = 0;
    enum engine_keep_state st = engine_keep_check(k->log_path, &code, &sig);
    if (journal_find(a, k->ref.attempt_id, &kept, &kept_len) == 0) {
        free(kept); /* its result was kept before that process died: it goes out as it is */
        journal_engine_done(a, k->ref.attempt_id);
        engine_keep_forget(k->log_path);
    } else if (st == ENGINE_KEEP_RUNNING) {
        adopt(a, k);
    } else if (st == ENGINE_KEEP_ENDED) {
        struct unit_run r = { .ref = k->ref, .started_ms = k->started_ms };
        snprintf(r.port_path, sizeof r.port_path, "%s", k->port_path);
        r.agent = a;
        report_kept(a, &r, k->log_path, st, code, sig, 0);
    } else {
        journal_engine_done(a, k->ref.attempt_id); /* killed with its group: interrupted */
        engine_keep_forget(k->log_path);
    }
}

void unit_run_recover(struct agent *a)
{
    journal_engines_each(a, recover_one);
}
