/* runs — applying the end of an attempt; see runs.h. */
#include "runs.h"

#include <stdio.h>
#include <string.h>

#include "ctl.h"
#include "fr_err.h"
#include "fr_log.h"
#include "fr_time.h"
#include "fr_types.h"
#include "verify.h"

static const char *outcome_name(Fr__Outcome o)
{
    switch (o) {
    case FR__OUTCOME__OUTCOME_SUCCESS: return "success";
    case FR__OUTCOME__OUTCOME_FAILED: return "failed";
    case FR__OUTCOME__OUTCOME_CANCELLED: return "cancelled";
    case FR__OUTCOME__OUTCOME_INTERRUPTED: return "interrupted";
    case FR__OUTCOME__OUTCOME_REFUSED: return "refused";
    default: return "unknown";
    }
}

/* The failure class an outcome stands for, as the policy sees it. */
static enum fr_class end_class(const struct run_end *e)
{
    switch (e->outcome) {
    case FR__OUTCOME__OUTCOME_SUCCESS: return FR_CLASS_NONE;
    case FR__OUTCOME__OUTCOME_INTERRUPTED:
    case FR__OUTCOME__OUTCOME_REFUSED: return FR_CLASS_INTERRUPTED;
    default: {
        int c = fr_class_parse(e->error_class);
        return c <= FR_CLASS_NONE ? FR_CLASS_UNKNOWN : (enum fr_class)c;
    }
    }
}

/* An event for a message about an attempt that was not applied: stale (the attempt
 * ended already) or mismatched (no attempt of this agent has this ref and token). */
static int record_unapplied(struct store *s, const char *agent, const Fr__AttemptRef *ref,
                            const char *what, int match, uint64_t now_ms)
{
    char text[256];
    snprintf(text, sizeof text, match == ATTEMPT_ENDED
             ? "stale %s for attempt %llu epoch %llu: the attempt has ended; not applied"
             : "%s for attempt %llu epoch %llu does not match the agent, attempt, epoch, ECID "
               "and token of any attempt; not applied", what, (unsigned long long)ref->attempt_id,
             (unsigned long long)ref->epoch);
    return store_event(s, now_ms, match == ATTEMPT_ENDED ? "stale" : "mismatch", ref->job_id,
                       ref->ecid, agent, NULL, text);
}

static void on_failure(void *arg, const char *error_class, const char *port_id)
{
    struct policy_history *h = arg;
    int c = fr_class_parse(error_class);
    if (c < 0)
        c = FR_CLASS_UNKNOWN;
    h->attempts++;
    h->class_count[c]++;
    if (c == FR_CLASS_LINK_LOST || c == FR_CLASS_HARDWARE)
        policy_history_add_port(h, port_id);
}

struct strikes {
    struct policy_strike v[STORE_STRIKES_MAX];
    size_t n;
};

static void on_strike(void *arg, uint64_t ecid, int64_t at_ms)
{
    struct strikes *st = arg;
    if (st->n < STORE_STRIKES_MAX)
        st->v[st->n++] = (struct policy_strike){ ecid, at_ms };
}

/* One strike on the port; quarantine when the policy says so. */
static int strike(struct store *s, const struct policy_cfg *pc, const char *agent,
                  const Fr__AttemptRef *ref, const char *cls, uint64_t now_ms, struct run_effects *fx)
{
    struct strikes st = { .n = 0 };
    int rc = store_port_strike(s, agent, fx->port, ref->ecid, cls, now_ms, on_strike, &st);
    fx->struck = 1;
    if (rc == 0 && !pc->naive && policy_port_quarantined(pc, st.v, st.n, (int64_t)now_ms)) {
        char reason[128];
        snprintf(reason, sizeof reason, "%d units lost the link here within %lld min",
                 pc->quarantine_units, (long long)(pc->strike_window_ms / 60000));
        rc = store_port_quarantine(s, agent, fx->port, ref->ecid, reason, now_ms);
        fx->quarantined = rc > 0;
        rc = rc < 0 ? rc : 0;
    }
    fx->power_cycle = store_port_power_switch(s, agent, fx->port);
    return rc;
}

/* The attempt is live and the sender's: end it and move the run on. */
static int apply_live(struct store *s, const struct policy_cfg *base, const char *agent,
                      const Fr__AttemptRef *ref, const struct run_end *e, uint64_t now_ms,
                      struct run_effects *fx)
{
    int rc = 0;
    snprintf(fx->port, sizeof fx->port, "%s", e->port ? e->port : "");
    if (!fx->port[0])
        rc = store_attempt_port(s, ref->attempt_id, fx->port, sizeof fx->port);
    const char *cls = e->error_class ? e->error_class : "";
    struct verify_input vi = { e->outcome == FR__OUTCOME__OUTCOME_SUCCESS, e->fw_version, e->fw_build,
                               e->unit_version, e->unit_build, e->unverified };
    char verdict[400];
    enum verify_status vs = verify_judge(&vi, verdict, sizeof verdict);
    /* The engine said it restored, but the unit runs something else: the restore did not
     * take, so the attempt failed (class verification), whatever the engine's exit said. */
    struct run_end judged = *e;
    if (vs == VERIFY_MISMATCH) {
        judged.outcome = FR__OUTCOME__OUTCOME_FAILED;
        judged.error_class = cls = fr_class_name(FR_CLASS_VERIFICATION);
        judged.error_text = verdict;
    }
    e = &judged;
    struct attempt_end ae = { outcome_name(e->outcome), cls, e->error_text ? e->error_text : "",
                              e->log_path ? e->log_path : "", fx->port, e->exit_code,
                              e->ended_ms ? e->ended_ms : now_ms, e->fw_version, e->fw_build,
                              e->unit_version, e->unit_build, verify_status_name(vs), verdict };
    if (rc == 0)
        rc = store_attempt_end(s, ref, &ae);
    struct policy_cfg pc = *base;
    pc.max_attempts = store_job_max_attempts(s, ref->job_id, base->max_attempts);
    struct policy_history h;
    memset(&h, 0, sizeof h);
    if (rc == 0)
        rc = store_run_failures(s, ref->job_id, ref->ecid, ref->attempt_id, on_failure, &h);
    if (rc < 0)
        return rc;
    char port_id[128];
    snprintf(port_id, sizeof port_id, "%s:%s", agent, fx->port);
    struct policy_decision d;
    policy_after_attempt(&pc, &h, end_class(e), port_id, &d);
    const char *next = e->outcome == FR__OUTCOME__OUTCOME_CANCELLED ? "cancelled" : fr_state_name(d.next);
    snprintf(fx->next_state, sizeof fx->next_state, "%s", next);
    snprintf(fx->why, sizeof fx->why, "%s", d.why);
    fx->from_dfu = d.from_dfu;
    if (d.strike_port)
        rc = strike(s, &pc, agent, ref, cls, now_ms, fx);
    fx->power_cycle &= d.power_cycle;
    if (rc == 0 && d.action == POLICY_MOVE)
        rc = store_run_avoid(s, ref->job_id, ref->ecid, port_id, d.from_dfu);
    struct run_next rn = { next, cls, ae.error_text, d.why, fr_state_is_terminal(fr_state_parse(next)) };
    if (rc == 0)
        rc = store_run_next(s, ref->job_id, ref->ecid, &rn, now_ms);
    if (rc == 0 && *cls)
        rc = store_event(s, now_ms, "decision", ref->job_id, ref->ecid, agent, fx->port, d.why);
    if (rc == 0 && rn.terminal) /* only a run that ended can finish its job */
        rc = store_job_settle(s, ref->job_id, now_ms);
    return rc;
}

int runs_apply(struct store *s, const struct policy_cfg *pc, const char *agent,
               const Fr__AttemptRef *ref, const struct run_end *e, uint64_t now_ms,
               struct run_effects *fx)
{
    memset(fx, 0, sizeof *fx);
    int rc = store_begin(s);
    if (rc < 0)
        return rc;
    int match = store_attempt_match(s, agent, ref);
    rc = match < 0 ? match
       : match == ATTEMPT_LIVE ? apply_live(s, pc, agent, ref, e, now_ms, fx)
       : record_unapplied(s, agent, ref, "result", match, now_ms);
    if (rc == 0)
        rc = store_commit(s);
    if (rc < 0) {
        store_rollback(s);
        memset(fx, 0, sizeof *fx);
        return rc;
    }
    fx->match = match;
    return 0;
}

static void count_mismatch(struct agent_state *a, const Fr__AttemptRef *ref, const char *what)
{
    a->mismatched++;
    char ecid[FR_ECID_STRLEN];
    fr_ecid_format(ref->ecid, ecid, sizeof ecid);
    struct fr_log_ctx lc = { 0, ref->ecid, a->id, NULL };
    fr_warnx("runs", &lc, "unit %s: agent '%s' sent a %s for attempt %llu that is not its own "
             "(agent, epoch, ECID or token differ): recorded, not applied", ecid, a->id, what,
             (unsigned long long)ref->attempt_id);
}

int runs_match(struct controller *c, struct agent_state *a, const Fr__AttemptRef *ref,
               const char *what, uint64_t now_ms)
{
    int match = store_attempt_match(c->store, a->id, ref);
    if (match != ATTEMPT_NONE)
        return match;
    int rc = record_unapplied(c->store, a->id, ref, what, match, now_ms);
    if (rc < 0)
        return rc;
    count_mismatch(a, ref, what);
    return match;
}

static void log_applied(struct agent_state *a, const Fr__AttemptRef *ref, const struct run_end *e,
                        const struct run_effects *fx)
{
    char ecid[FR_ECID_STRLEN];
    struct fr_log_ctx lc = { ref->job_id, ref->ecid, a->id, fx->port };
    fr_ecid_format(ref->ecid, ecid, sizeof ecid);
    if (e->error_class && *e->error_class)
        fr_infox("runs", &lc, "unit %s: attempt %llu on %s:%s -> %s (%s: %s; %s)", ecid,
                 (unsigned long long)ref->attempt_id, a->id, fx->port, fx->next_state,
                 e->error_class, e->error_text, fx->why);
    else
        fr_infox("runs", &lc, "unit %s: attempt %llu on %s:%s -> %s", ecid,
                 (unsigned long long)ref->attempt_id, a->id, fx->port, fx->next_state);
    struct fr_log_ctx port_lc = { 0, 0, a->id, fx->port };
    if (fx->quarantined)
        fr_warnx("runs", &port_lc, "port %s:%s quarantined: units keep losing the link there; "
                 "swap the cable and run 'flashrack ports clear'", a->id, fx->port);
}

int runs_end(struct controller *c, struct agent_state *a, const Fr__AttemptRef *ref,
             const struct run_end *e)
{
    struct run_effects fx;
    char ecid[FR_ECID_STRLEN];
    fr_ecid_format(ref->ecid, ecid, sizeof ecid);
    int rc = runs_apply(c->store, &c->policy, a->id, ref, e, fr_time_wall_ms(), &fx);
    if (rc < 0) {
        fr_error("runs", "unit %s: cannot apply the end of attempt %llu: %s (not acknowledged)",
                 ecid, (unsigned long long)ref->attempt_id, store_errmsg(c->store));
        return rc;
    }
    if (fx.match == ATTEMPT_NONE) {
        count_mismatch(a, ref, "result");
        return 0;
    }
    if (fx.match == ATTEMPT_ENDED) {
        fr_info("runs", "unit %s: stale result for attempt %llu epoch %llu recorded, not applied",
                ecid, (unsigned long long)ref->attempt_id, (unsigned long long)ref->epoch);
        return 0;
    }
    log_applied(a, ref, e, &fx);
    if (fx.power_cycle)
        agents_send_power_cycle(c, a, fx.port);
    sched_expand_unit(c, ref->ecid); /* the unit may be free for another job */
    sched_kick(c);
    return 0;
}

int runs_on_result(struct controller *c, struct agent_state *a, const Fr__JobResult *r)
{
    struct run_end e = { r->outcome, r->error_class, r->error_text, r->log_path, r->port_path,
                         r->exit_code, r->ended_ms, r->firmware_version, r->firmware_build,
                         r->unit_version, r->unit_build, r->unverified_reason };
    return runs_end(c, a, r->ref, &e);
}

int runs_refused(struct store *s, const Fr__AttemptRef *ref, const char *reason, int64_t base_ms,
                 uint64_t now_ms, int64_t *delay_ms)
{
    int n = 0;
    int rc = store_attempt_refused(s, ref, reason, now_ms, &n);
    if (rc < 0)
        return rc;
    char status[300];
    if (n >= RUNS_REFUSALS_HOLD) {
        *delay_ms = -1;
        snprintf(status, sizeof status, "held: refused %d times in a row (last: %s); tried again "
                 "when the unit is plugged in again", n, reason);
        rc = store_run_hold(s, ref->job_id, ref->ecid, INT64_MAX, status);
        if (rc == 0)
            rc = store_event(s, now_ms, "held", ref->job_id, ref->ecid, NULL, NULL, status);
        return rc;
    }
    int64_t delay = base_ms;
    for (int i = 1; i < n && delay < RUNS_BACKOFF_MAX_MS; i++)
        delay *= 2;
    *delay_ms = delay < RUNS_BACKOFF_MAX_MS ? delay : RUNS_BACKOFF_MAX_MS;
    snprintf(status, sizeof status, "refused (%s); assigned again in %lld ms", reason,
             (long long)*delay_ms);
    return store_run_hold(s, ref->job_id, ref->ecid, (int64_t)now_ms + *delay_ms, status);
}

int runs_on_accept(struct controller *c, struct agent_state *a, const Fr__JobAccept *acc)
{
    uint64_t now = fr_time_wall_ms();
    int64_t delay = 0;
    int rc = store_begin(c->store);
    int begun = rc == 0; /* else no savepoint: a rollback would undo the enclosing turn */
    int match = rc < 0 ? rc : runs_match(c, a, acc->ref, "accept", now);
    rc = match < 0 ? match : 0;
    if (match == ATTEMPT_LIVE)
        rc = acc->accepted ? store_run_accepted(c->store, acc->ref)
                           : runs_refused(c->store, acc->ref, acc->reason, c->cfg.heartbeat_ms, now,
                                          &delay);
    if (rc == 0)
        rc = store_commit(c->store);
    if (rc < 0) {
        if (begun)
            store_rollback(c->store);
        fr_error("runs", "agent '%s': cannot record an accept: %s (not acknowledged)", a->id,
                 store_errmsg(c->store));
        return rc;
    }
    if (match == ATTEMPT_LIVE && !acc->accepted) {
        char ecid[FR_ECID_STRLEN];
        fr_ecid_format(acc->ref->ecid, ecid, sizeof ecid);
        a->refused++;
        if (delay < 0)
            fr_warn("runs", "unit %s: agent '%s' refused attempt %llu (%s), %d times in a row: "
                    "held until the unit is plugged in again", ecid, a->id,
                    (unsigned long long)acc->ref->attempt_id, acc->reason, RUNS_REFUSALS_HOLD);
        else {
            fr_info("runs", "unit %s: agent '%s' refused attempt %llu: %s (again in %lld ms)", ecid,
                    a->id, (unsigned long long)acc->ref->attempt_id, acc->reason, (long long)delay);
            sched_kick_after(c, (uint64_t)delay);
        }
    }
    return 0;
}
