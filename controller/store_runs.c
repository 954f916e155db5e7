/* store_runs — what agents tell the store: Hellos (agents, ports, units), port events, and
 * the attempts they run (accepted, refused, progress, ends, strikes, the next try); see
 * store.h. */
#include "store.h"
#include "store_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fr_err.h"

static int interrupt_missing(struct store *s, const char *agent, Fr__AttemptRef *const *keep,
                             size_t nkeep, uint64_t now_ms, int *ninterrupted);

/* ---- agents, ports, units ---------------------------------------------------- */

static int unit_upsert(struct store *s, const char *agent, const Fr__UnitInfo *u, uint64_t now_ms)
{
    return st_exec(s, "INSERT INTO units (ecid, product_type, cpid, bdid, serial, mode, agent, port,"
                   " reason, present, last_seen, arrived, imei) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 1, ?, ?, ?)"
                   " ON CONFLICT(ecid) DO UPDATE SET"
                   " product_type = CASE WHEN excluded.product_type <> '' THEN excluded.product_type"
                   "  ELSE product_type END,"
                   " cpid = CASE WHEN excluded.cpid <> 0 THEN excluded.cpid ELSE cpid END,"
                   " bdid = CASE WHEN excluded.bdid <> 0 THEN excluded.bdid ELSE bdid END,"
                   " serial = CASE WHEN excluded.serial <> '' THEN excluded.serial ELSE serial END,"
                   " imei = CASE WHEN excluded.imei <> '' THEN excluded.imei ELSE imei END,"
                   " mode = excluded.mode, agent = excluded.agent, port = excluded.port,"
                   " reason = excluded.reason, present = 1, last_seen = excluded.last_seen",
                "utiititttuut", u->ecid, u->product_type, (int64_t)u->cpid, (int64_t)u->bdid, u->serial,
                (int64_t)u->mode, agent, u->port_path, u->reason, now_ms, now_ms, u->imei ? u->imei : "");
}

/* The agent's units its Hello does not list are absent. Only those are written: marking
 * every unit absent before the Hello's came back present stamped each of the agent's
 * ports twice (ports.seq, schema v14), and the rack page then read them all again. */
static int units_gone(struct store *s, const char *agent, const Fr__Hello *h)
{
    uint64_t *ecids = malloc((h->n_units + 1) * sizeof *ecids);
    for (size_t i = 0; ecids && i < h->n_units; i++)
        ecids[i] = h->units[i]->ecid;
    char *list = ecids ? st_ecid_list(ecids, h->n_units) : NULL;
    free(ecids);
    if (!list)
        return FR_ENOMEM;
    int rc = st_exec(s, "UPDATE units SET present = 0 WHERE agent = ? AND present = 1"
                     " AND ecid NOT IN (SELECT value FROM json_each(?))", "tt", agent, list);
    free(list);
    return rc;
}

static int agent_hello(struct store *s, const char *agent, const Fr__Hello *h, uint64_t now_ms)
{
    int rc = st_exec(s, "INSERT INTO agents (id, hostname, version, slots, last_seen, engine,"
                     " libimobiledevice) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT(id) DO UPDATE SET"
                     " hostname = excluded.hostname, version = excluded.version,"
                     " slots = excluded.slots, last_seen = excluded.last_seen,"
                     " engine = excluded.engine, libimobiledevice = excluded.libimobiledevice",
                  "tttiutt", agent, h->hostname, h->agent_version, (int64_t)h->slots, now_ms,
                  h->engine, h->libimobiledevice);
    for (size_t i = 0; rc == 0 && i < h->n_ports; i++) {
        const Fr__PortInfo *p = h->ports[i];
        rc = st_exec(s, "INSERT INTO ports (agent, path, label, hub, bus, depth, power_switch)"
                     " VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT(agent, path) DO UPDATE SET"
                     " label = excluded.label, hub = excluded.hub, bus = excluded.bus,"
                     " depth = excluded.depth, power_switch = excluded.power_switch",
                  "ttttiii", agent, p->path, p->label, p->hub, (int64_t)p->bus, (int64_t)p->depth,
                  (int64_t)p->power_switch);
    }
    for (size_t i = 0; rc == 0 && i < h->n_units; i++)
        rc = unit_upsert(s, agent, h->units[i], now_ms);
    if (rc == 0)
        rc = units_gone(s, agent, h);
    return rc;
}

int store_agent_hello(struct store *s, const char *agent, const Fr__Hello *h, uint64_t now_ms,
                      int *ninterrupted)
{
    int n = 0;
    int rc = store_begin(s);
    if (rc < 0) /* no savepoint: a rollback would undo the enclosing turn */
        return rc;
    rc = agent_hello(s, agent, h, now_ms);
    if (rc == 0)
        rc = interrupt_missing(s, agent, h->attempts, h->n_attempts, now_ms, &n);
    if (rc == 0)
        rc = store_commit(s);
    if (rc < 0) {
        store_rollback(s);
        return rc;
    }
    if (ninterrupted)
        *ninterrupted = n;
    return 0;
}

int store_unit_event(struct store *s, const char *agent, const Fr__PortEvent *ev, uint64_t now_ms)
{
    const Fr__UnitInfo *u = ev->unit;
    if (ev->kind == FR__PORT_EVENT__KIND__DETACH)
        return st_exec(s, "UPDATE units SET present = 0, last_seen = ? WHERE ecid = ? AND agent = ?"
                       " AND port = ?", "uutt", now_ms, u->ecid, agent, u->port_path);
    /* it arrives: plugged in again, moved, or in another mode (an operator's doing) */
    int rc = st_exec(s, "UPDATE units SET arrived = ? WHERE ecid = ? AND (present = 0 OR mode <> ?"
                        " OR agent <> ? OR port <> ?)", "uuitt", now_ms, u->ecid, (int64_t)u->mode,
                     agent, u->port_path);
    if (rc == 0)
        rc = unit_upsert(s, agent, u, now_ms);
    if (rc == 0 && ev->kind == FR__PORT_EVENT__KIND__ATTACH) /* plugged in again: no longer held */
        rc = st_exec(s, "UPDATE unit_runs SET refusals = 0, not_before = 0 WHERE ecid = ?"
                     " AND not_before > 0 AND state NOT IN " TERMINAL, "u", u->ecid);
    if (rc == 0 && ev->kind == FR__PORT_EVENT__KIND__ATTACH) {
        /* plugged back into a port its run avoids: the move instruction repeats */
        char here[128];
        snprintf(here, sizeof here, "%s:%s", agent, u->port_path);
        rc = st_exec(s, "UPDATE moves SET repeats = repeats + 1 WHERE ecid = ? AND done = 0 AND EXISTS"
                     " (SELECT 1 FROM unit_runs r, json_each(r.avoid) WHERE r.job = moves.job"
                     " AND r.ecid = moves.ecid AND value = ?)", "ut", u->ecid, here);
    }
    return rc;
}

/* ---- attempts ---------------------------------------------------------------------- */

int store_attempt_match(struct store *s, const char *agent, const Fr__AttemptRef *ref)
{
    sqlite3_stmt *st = st_query(s, "SELECT state IN " LIVE " FROM attempts WHERE id = ? AND job = ?"
                                " AND epoch = ? AND ecid = ? AND agent = ? AND token_hi = ?"
                                " AND token_lo = ?", "uuuutuu", ref->attempt_id, ref->job_id,
                             ref->epoch, ref->ecid, agent, ref->token_hi, ref->token_lo);
    if (!st)
        return FR_ESTORE;
    int rc = st_step(s, st);
    int match = rc == SQLITE_ROW ? (sqlite3_column_int(st, 0) ? ATTEMPT_LIVE : ATTEMPT_ENDED)
                                 : ATTEMPT_NONE;
    sqlite3_reset(st);
    return rc == SQLITE_ROW || rc == SQLITE_DONE ? match : FR_ESTORE;
}

int store_attempt_running(struct store *s, const Fr__AttemptRef *ref)
{
    return st_exec(s, "UPDATE attempts SET state = 'running' WHERE id = ? AND state = 'assigned'", "u",
                ref->attempt_id);
}

int store_attempt_refused(struct store *s, const Fr__AttemptRef *ref, const char *reason,
                          uint64_t now_ms, int *refusals)
{
    int rc = st_exec(s, "UPDATE attempts SET state = 'ended', outcome = 'refused', error_text = ?,"
                     " ended = ? WHERE id = ?", "tuu", reason, now_ms, ref->attempt_id);
    if (rc == 0)
        rc = st_exec(s, "UPDATE unit_runs SET state = 'waiting_unit', status = ?, updated = ?,"
                     " refusals = refusals + 1, seq = " NEXT_SEQ " WHERE job = ? AND ecid = ?"
                     " AND state NOT IN " TERMINAL,
                  "tuuu", reason, now_ms, ref->job_id, ref->ecid);
    int64_t n = 0;
    if (rc == 0)
        rc = st_scalar_rc(s, &n, "SELECT refusals FROM unit_runs WHERE job = ? AND ecid = ?", "uu",
                       ref->job_id, ref->ecid);
    *refusals = (int)n;
    return rc;
}

int store_run_hold(struct store *s, uint64_t job, uint64_t ecid, int64_t not_before_ms,
                   const char *status)
{
    return st_exec(s, "UPDATE unit_runs SET not_before = ?, status = ?, seq = " NEXT_SEQ
                   " WHERE job = ? AND ecid = ?",
                "ituu", not_before_ms, status, job, ecid);
}

int store_run_accepted(struct store *s, const Fr__AttemptRef *ref)
{
    int rc = store_attempt_running(s, ref);
    if (rc == 0)
        rc = st_exec(s, "UPDATE unit_runs SET refusals = 0, not_before = 0 WHERE job = ? AND ecid = ?",
                  "uu", ref->job_id, ref->ecid);
    return rc;
}

/* One UPDATE of the run per report, its change number stamped in it (schema v13). A report
 * in the state the run is in already (all but one per step) leaves state alone, and with it
 * the unit_runs_state index: SQLite rewrites only the indexes of the columns a SET names. */
int store_attempt_progress(struct store *s, const Fr__AttemptRef *ref, const Fr__JobProgress *p,
                           uint64_t now_ms)
{
    int st = fr_state_parse(p->state);
    if (st < 0 || fr_state_is_terminal(st))
        return FR_EINVAL; /* terminal states come with a JobResult */
    int rc = store_attempt_running(s, ref);
    if (rc == 0)
        rc = st_exec(s, "UPDATE unit_runs SET step = ?, fraction = ?, status = ?, updated = ?,"
                     " seq = " NEXT_SEQ " WHERE job = ? AND ecid = ? AND state = ?",
                     "idtuuut", (int64_t)p->step, (double)p->fraction, p->status, now_ms,
                     ref->job_id, ref->ecid, p->state);
    if (rc == 0 && sqlite3_changes(s->db) == 0) /* another state, or ended: not if terminal */
        rc = st_exec(s, "UPDATE unit_runs SET state = ?, step = ?, fraction = ?, status = ?,"
                     " updated = ?, seq = " NEXT_SEQ " WHERE job = ? AND ecid = ?"
                     " AND state NOT IN " TERMINAL,
                     "tidtuuu", p->state, (int64_t)p->step, (double)p->fraction, p->status, now_ms,
                     ref->job_id, ref->ecid);
    return rc;
}

/* The attempt matched in the run's own UPDATE, on its key: a report of a running attempt
 * in its run's state, all but one per step, is this one statement. */
int store_progress_running(struct store *s, const char *agent, const Fr__AttemptRef *ref,
                           const Fr__JobProgress *p, uint64_t now_ms)
{
    int st = fr_state_parse(p->state);
    if (st < 0 || fr_state_is_terminal(st))
        return FR_EINVAL; /* terminal states come with a JobResult */
    int rc = st_exec(s, "UPDATE unit_runs SET step = ?, fraction = ?, status = ?, updated = ?,"
                     " seq = " NEXT_SEQ " WHERE job = ? AND ecid = ? AND state = ? AND EXISTS"
                     " (SELECT 1 FROM attempts a WHERE a.id = ? AND a.job = unit_runs.job"
                     " AND a.ecid = unit_runs.ecid AND a.epoch = ? AND a.agent = ? AND a.token_hi = ?"
                     " AND a.token_lo = ? AND a.state = 'running')",
                     "idtuuut" "uutuu", (int64_t)p->step, (double)p->fraction, p->status, now_ms,
                     ref->job_id, ref->ecid, p->state, ref->attempt_id, ref->epoch, agent,
                     ref->token_hi, ref->token_lo);
    return rc < 0 ? rc : sqlite3_changes(s->db) > 0;
}

int store_attempt_end(struct store *s, const Fr__AttemptRef *ref, const struct attempt_end *e)
{
    int read = e->fw_version && *e->fw_version; /* the engine said what it installed */
    int rc = st_exec(s, "UPDATE attempts SET state = 'ended', outcome = ?, error_class = ?,"
                     " error_text = ?, exit_code = ?, log_path = ?, ended = ?, port = ? WHERE id = ?",
                  "tttitu" "tu", e->outcome, e->error_class, e->error_text, (int64_t)e->exit_code,
                  e->log_path, e->ended_ms, e->port, ref->attempt_id);
    if (rc == 0 && read)
        rc = store_attempt_set_build(s, ref->attempt_id, e->fw_version, e->fw_build ? e->fw_build : "");
    if (rc == 0 && e->verified && *e->verified)
        rc = st_exec(s, "UPDATE attempts SET unit_version = ?, unit_build = ?, verified = ?,"
                     " verification = ? WHERE id = ?", "ttttu", e->unit_version ? e->unit_version : "",
                     e->unit_build ? e->unit_build : "", e->verified, e->verification, ref->attempt_id);
    return rc;
}

int store_attempt_port(struct store *s, uint64_t attempt_id, char *port, size_t len)
{
    sqlite3_stmt *st = st_query(s, "SELECT port FROM attempts WHERE id = ?", "u", attempt_id);
    if (!st)
        return FR_ESTORE;
    int rc = st_step(s, st);
    if (rc == SQLITE_ROW)
        snprintf(port, len, "%s", col_text(st, 0));
    sqlite3_reset(st);
    return rc == SQLITE_ROW ? 0 : rc == SQLITE_DONE ? FR_ENOTFOUND : FR_ESTORE;
}

int store_run_failures(struct store *s, uint64_t job, uint64_t ecid, uint64_t except_attempt,
                       void (*cb)(void *arg, const char *error_class, const char *port_id), void *arg)
{
    sqlite3_stmt *st = st_query(s, "SELECT error_class, agent || ':' || port FROM attempts"
                                " WHERE job = ? AND ecid = ? AND id <> ? AND state = 'ended'"
                                " AND outcome = 'failed' ORDER BY id", "uuu", job, ecid, except_attempt);
    if (!st)
        return FR_ESTORE;
    int rc;
    while ((rc = st_step(s, st)) == SQLITE_ROW)
        cb(arg, col_text(st, 0), col_text(st, 1));
    sqlite3_reset(st);
    return rc == SQLITE_DONE ? 0 : FR_ESTORE;
}

int store_job_max_attempts(struct store *s, uint64_t job, int dflt)
{
    return (int)st_scalar(s, dflt, "SELECT max_attempts FROM jobs WHERE id = ?", "u", job);
}

int store_port_strike(struct store *s, const char *agent, const char *port, uint64_t ecid,
                      const char *cls, uint64_t now_ms,
                      void (*cb)(void *arg, uint64_t ecid, int64_t at_ms), void *arg)
{
    int rc = st_exec(s, "INSERT INTO port_strikes (agent, path, ecid, at, class) VALUES (?, ?, ?, ?, ?)",
                  "ttuut", agent, port, ecid, now_ms, cls);
    if (rc == 0)
        rc = st_exec(s, "UPDATE ports SET strikes = strikes + 1 WHERE agent = ? AND path = ?", "tt",
                  agent, port);
    sqlite3_stmt *st = rc == 0 ? st_query(s, "SELECT ecid, at FROM port_strikes WHERE agent = ?"
                                          " AND path = ? ORDER BY at DESC LIMIT ?", "tti", agent,
                                       port, (int64_t)STORE_STRIKES_MAX) : NULL;
    if (rc < 0 || !st)
        return FR_ESTORE;
    while ((rc = st_step(s, st)) == SQLITE_ROW)
        cb(arg, (uint64_t)sqlite3_column_int64(st, 0), sqlite3_column_int64(st, 1));
    sqlite3_reset(st);
    return rc == SQLITE_DONE ? 0 : FR_ESTORE;
}

int store_port_quarantine(struct store *s, const char *agent, const char *port, uint64_t ecid,
                          const char *reason, uint64_t now_ms)
{
    int rc = st_exec(s, "UPDATE ports SET quarantined = 1, quarantine_reason = ? WHERE agent = ?"
                     " AND path = ? AND quarantined = 0", "ttt", reason, agent, port);
    if (rc < 0 || sqlite3_changes(s->db) == 0)
        return rc;
    rc = store_event(s, now_ms, "quarantine", 0, ecid, agent, port, reason);
    return rc < 0 ? rc : 1;
}

int store_port_power_switch(struct store *s, const char *agent, const char *port)
{
    return (int)st_scalar(s, 0, "SELECT power_switch FROM ports WHERE agent = ? AND path = ?", "tt",
                       agent, port);
}

int store_run_avoid(struct store *s, uint64_t job, uint64_t ecid, const char *port_id, int from_dfu)
{
    return st_exec(s, "UPDATE unit_runs SET avoid = json_insert(avoid, '$[#]', ?), from_dfu = ?"
                   " WHERE job = ? AND ecid = ?", "tiuu", port_id, (int64_t)from_dfu, job, ecid);
}

int store_run_next(struct store *s, uint64_t job, uint64_t ecid, const struct run_next *n,
                   uint64_t now_ms)
{
    int rc = st_exec(s, "UPDATE unit_runs SET state = ?, error_class = ?, error_text = ?,"
                     " ended = ?, updated = ?, step = CASE WHEN ? = 'done' THEN 7 ELSE step END,"
                     " fraction = CASE WHEN ? = 'done' THEN 1 ELSE fraction END,"
                     " status = ?, seq = " NEXT_SEQ " WHERE job = ? AND ecid = ?"
                     " AND state NOT IN " TERMINAL,
                  "tttuuttt" "uu", n->state, n->error_class, n->error_text, n->terminal ? now_ms : 0,
                  now_ms, n->state, n->state, n->why, job, ecid);
    if (rc == 0 && n->terminal && sqlite3_changes(s->db) > 0)
        rc = st_run_ended(s, job, ecid, now_ms);
    return rc;
}

int store_attempt_set_build(struct store *s, uint64_t attempt_id, const char *version, const char *build)
{
    return st_exec(s, "UPDATE attempts SET fw_version = ?, fw_build = ? WHERE id = ?", "ttu", version,
                   build, attempt_id);
}

static int in_refs(uint64_t id, Fr__AttemptRef *const *keep, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (keep[i]->attempt_id == id)
            return 1;
    return 0;
}

/* Attempts running on agent that its Hello does not list: outcome interrupted, run waits
 * again. Inside the caller's transaction. */
static int interrupt_missing(struct store *s, const char *agent, Fr__AttemptRef *const *keep,
                             size_t nkeep, uint64_t now_ms, int *ninterrupted)
{
    /* Only accepted attempts: an assigned one may still be in flight to the agent (its
     * Hello crossed the assign); the heartbeat re-sends it, and the agent refuses it if
     * the unit is not there. */
    sqlite3_stmt *st = st_query(s, "SELECT id, job, ecid FROM attempts WHERE agent = ? AND state = 'running'",
                             "t", agent);
    if (!st)
        return FR_ESTORE;
    struct gone { uint64_t id, job, ecid; } *gone = NULL;
    size_t ngone = 0, cap = 0;
    int rc;
    while ((rc = st_next_row(s, st)) == 1) {
        uint64_t id = (uint64_t)sqlite3_column_int64(st, 0);
        if (in_refs(id, keep, nkeep))
            continue;
        if (ngone == cap) {
            struct gone *g = realloc(gone, (cap = cap ? 2 * cap : 64) * sizeof *g);
            if (!g) {
                rc = FR_ENOMEM;
                break;
            }
            gone = g;
        }
        gone[ngone++] = (struct gone){ id, (uint64_t)sqlite3_column_int64(st, 1),
                                       (uint64_t)sqlite3_column_int64(st, 2) };
    }
    sqlite3_reset(st);
    for (size_t i = 0; rc == 0 && i < ngone; i++) {
        rc = st_exec(s, "UPDATE attempts SET state = 'ended', outcome = 'interrupted',"
                     " error_class = 'interrupted', error_text = 'the agent no longer runs this attempt',"
                     " ended = ? WHERE id = ?", "uu", now_ms, gone[i].id);
        if (rc == 0)
            rc = st_exec(s, "UPDATE unit_runs SET state = 'waiting_unit', updated = ?,"
                         " seq = " NEXT_SEQ " WHERE job = ? AND ecid = ? AND state NOT IN " TERMINAL,
                      "uuu", now_ms, gone[i].job, gone[i].ecid);
    }
    free(gone);
    if (rc == 0)
        *ninterrupted = (int)ngone;
    return rc < 0 ? rc : 0;
}
