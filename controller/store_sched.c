/* store_sched — jobs (submit, cancel, settle), the scheduler's reads and claims (runs to
 * create, candidates, attempts and their tokens), and moves between ports; see store.h. */
#include "store.h"
#include "store_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <inttypes.h>

#include "fr_err.h"
#include "fr_log.h"
#include "fr_time.h"

/* ---- jobs ------------------------------------------------------------------------ */

static int job_insert(struct store *s, const struct job_spec *sp, uint64_t now_ms, uint64_t *id)
{
    char *agents = st_json_list(sp->agents, sp->nagents);
    char *ports = st_json_list(sp->ports, sp->nports);
    int rc = st_exec(s, "INSERT INTO jobs (key, name, firmware, sha256, erase, agents, ports, count,"
                     " standing, max_attempts, same_port, created, operator)"
                     " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                  "ttttittiiiiut", sp->key, sp->name, sp->firmware, sp->sha256, (int64_t)sp->erase,
                  agents ? agents : "[]", ports ? ports : "[]", (int64_t)sp->count,
                  (int64_t)sp->standing, (int64_t)(sp->max_attempts ? sp->max_attempts : 3),
                  (int64_t)sp->same_port, now_ms, sp->operator ? sp->operator : "");
    free(agents);
    free(ports);
    *id = (uint64_t)sqlite3_last_insert_rowid(s->db);
    for (size_t i = 0; rc == 0 && i < sp->necids; i++)
        rc = st_exec(s, "INSERT OR IGNORE INTO unit_runs (job, ecid, updated) VALUES (?, ?, ?)", "uuu",
                  *id, sp->ecids[i], now_ms);
    return rc;
}

int store_job_by_key(struct store *s, const char *key, uint64_t *job)
{
    s->read_failed = 0;
    *job = (uint64_t)st_scalar(s, 0, "SELECT id FROM jobs WHERE key = ?", "t", key);
    return s->read_failed ? FR_ESTORE : *job > 0;
}

/* The first field in which spec differs from the stored job, or NULL when it is the same
 * request (the explicit units of a job that names no agents or ports are its runs). */
static const char *job_differs(struct store *s, uint64_t job, const struct job_spec *sp)
{
    char *agents = st_json_list(sp->agents, sp->nagents), *ports = st_json_list(sp->ports, sp->nports);
    sqlite3_stmt *st = st_query(s, "SELECT name = ?, firmware = ?, sha256 = ?, erase = ?, agents = ?,"
                                " ports = ?, count = ?, standing = ?, max_attempts = ?, same_port = ?"
                                " FROM jobs WHERE id = ?", "tttittiiiiu", sp->name, sp->firmware,
                             sp->sha256, (int64_t)sp->erase, agents ? agents : "[]", ports ? ports : "[]",
                             (int64_t)sp->count, (int64_t)sp->standing,
                             (int64_t)(sp->max_attempts ? sp->max_attempts : 3), (int64_t)sp->same_port, job);
    static const char *const names[] = { "name", "firmware", "sha256", "erase/update", "agents",
                                         "ports", "count", "standing", "max_attempts", "same_port" };
    const char *diff = st && st_next_row(s, st) == 1 ? NULL : "the stored job";
    for (int i = 0; !diff && i < 10; i++)
        if (!sqlite3_column_int(st, i))
            diff = names[i];
    if (st)
        sqlite3_reset(st);
    free(agents);
    free(ports);
    int64_t same = 0, stored = st_scalar(s, 0, "SELECT COUNT(*) FROM unit_runs WHERE job = ?", "u", job);
    for (size_t i = 0; !diff && sp->nagents + sp->nports == 0 && i < sp->necids; i++)
        same += st_scalar(s, 0, "SELECT COUNT(*) FROM unit_runs WHERE job = ? AND ecid = ?", "uu", job,
                       sp->ecids[i]);
    if (!diff && sp->nagents + sp->nports == 0 && (same != (int64_t)sp->necids || stored != same))
        diff = "ecids";
    return diff;
}

int store_job_submit(struct store *s, const struct job_spec *spec, uint64_t now_ms,
                     uint64_t *job_id, int *created, char *err, size_t errlen)
{
    s->read_failed = 0;
    int64_t existing = st_scalar(s, 0, "SELECT id FROM jobs WHERE key = ?", "t", spec->key);
    if (existing > 0) {
        const char *diff = job_differs(s, (uint64_t)existing, spec);
        if (s->read_failed) /* not "a different request": what it is was not read */
            return fr_seterr(FR_ESTORE, err, errlen, "cannot read job %lld, submitted with key '%s': %s",
                             (long long)existing, spec->key, sqlite3_errmsg(s->db));
        if (diff)
            return fr_seterr(FR_EEXIST, err, errlen, "key '%s' was used for job %lld with a different "
                             "request (%s differs): choose a new key, or send the same request",
                             spec->key, (long long)existing, diff);
        *job_id = (uint64_t)existing;
        *created = 0;
        return 0;
    }
    int rc = store_begin(s);
    if (rc == 0) { /* else no savepoint: a rollback would undo the enclosing turn */
        rc = job_insert(s, spec, now_ms, job_id);
        if (rc == 0)
            rc = store_event(s, now_ms, "job", *job_id, 0, NULL, NULL, "submitted");
        if (rc == 0)
            rc = store_commit(s); /* the reply goes out only after this */
        if (rc < 0)
            store_rollback(s);
    }
    if (rc < 0)
        return fr_seterr(FR_ESTORE, err, errlen, "cannot store the job: %s", sqlite3_errmsg(s->db));
    *created = 1;
    return 0;
}

static int each_attempt(struct store *s, sqlite3_stmt *st, store_attempt_cb cb, void *arg)
{
    if (!st)
        return FR_ESTORE;
    int rc;
    while ((rc = st_step(s, st)) == SQLITE_ROW) {
        Fr__AttemptRef ref = FR__ATTEMPT_REF__INIT;
        ref.job_id = (uint64_t)sqlite3_column_int64(st, 0);
        ref.attempt_id = (uint64_t)sqlite3_column_int64(st, 1);
        ref.epoch = (uint64_t)sqlite3_column_int64(st, 2);
        ref.ecid = (uint64_t)sqlite3_column_int64(st, 3);
        ref.token_hi = (uint64_t)sqlite3_column_int64(st, 10);
        ref.token_lo = (uint64_t)sqlite3_column_int64(st, 11);
        struct attempt_info ai = { col_text(st, 4), col_text(st, 5), col_text(st, 6), col_text(st, 9),
                                   sqlite3_column_int(st, 7), (uint32_t)sqlite3_column_int(st, 8) };
        cb(arg, &ref, &ai);
    }
    sqlite3_reset(st);
    return rc == SQLITE_DONE ? 0 : FR_ESTORE;
}

/* Attempts from before v2 carry no firmware of their own: their job's. */
#define ATTEMPT_COLS "a.job, a.id, a.epoch, a.ecid, a.agent, a.port," \
    " CASE WHEN a.firmware != '' THEN a.firmware ELSE j.firmware END, j.erase, a.n," \
    " CASE WHEN a.firmware != '' THEN a.sha256 ELSE j.sha256 END, a.token_hi, a.token_lo"

/* Live attempts collected inside a transaction, handed out after its commit. */
struct attempt_list {
    struct listed_attempt {
        Fr__AttemptRef ref;
        char agent[64];
    } *v;
    size_t n, cap;
    int failed;            /* out of memory or an agent id too long: the commit must not happen */
};

static void on_list_attempt(void *arg, const Fr__AttemptRef *ref, const struct attempt_info *ai)
{
    struct attempt_list *l = arg;
    if (l->n == l->cap) {
        size_t cap = l->cap ? 2 * l->cap : 16;
        struct listed_attempt *v = realloc(l->v, cap * sizeof *v);
        if (!v) {
            l->failed = 1;
            return;
        }
        l->v = v;
        l->cap = cap;
    }
    struct listed_attempt *e = &l->v[l->n++];
    e->ref = *ref;
    if ((size_t)snprintf(e->agent, sizeof e->agent, "%s", ai->agent) >= sizeof e->agent)
        l->failed = 1;
}

int store_job_cancel(struct store *s, uint64_t job_id, uint64_t ecid, uint64_t now_ms, int *nruns,
                     store_cancel_cb cb, void *arg)
{
    *nruns = 0;
    int64_t found = st_scalar(s, -1, "SELECT COUNT(*) FROM jobs WHERE id = ?", "u", job_id);
    if (found <= 0)
        return found < 0 ? FR_ESTORE : FR_ENOTFOUND;
    struct attempt_list live = { 0 };
    int rc = store_begin(s);
    if (rc < 0) /* no savepoint: a rollback would undo the enclosing turn */
        return rc;
    rc = each_attempt(s, st_query(s, "SELECT " ATTEMPT_COLS " FROM attempts a JOIN jobs j ON j.id = a.job"
                                      " WHERE a.job = ? AND (? = 0 OR a.ecid = ?) AND a.state IN " LIVE,
                                   "uuu", job_id, ecid, ecid), on_list_attempt, &live);
    if (rc == 0 && live.failed)
        rc = FR_ENOMEM;
    int n = 0;
    if (rc == 0)
        rc = st_exec(s, "UPDATE unit_runs SET state = 'cancelled', ended = ?, updated = ?"
                     " WHERE job = ? AND (? = 0 OR ecid = ?) AND state NOT IN " TERMINAL,
                  "uuuuu", now_ms, now_ms, job_id, ecid, ecid);
    if (rc == 0)
        n = sqlite3_changes(s->db);
    if (rc == 0 && n > 0)
        rc = st_run_ended(s, job_id, ecid, now_ms);
    if (rc == 0 && ecid == 0)
        rc = st_exec(s, "UPDATE jobs SET state = 'cancelled', finished = ? WHERE id = ?"
                     " AND state = 'running'", "uu", now_ms, job_id);
    if (rc == 0)
        rc = store_event(s, now_ms, "job", job_id, ecid, NULL, NULL, "cancelled");
    if (rc == 0)
        rc = store_commit(s);
    if (rc < 0)
        store_rollback(s);
    /* the JobCancels leave only now, with the cancel committed */
    for (size_t i = 0; rc == 0 && cb && i < live.n; i++)
        cb(arg, &live.v[i].ref, live.v[i].agent);
    free(live.v);
    if (rc == 0)
        *nruns = n;
    return rc;
}

/* A running job is done when it has runs, none of them open, and (a selector job) as many
 * as it asked for. The whole site's settle reads every running job; one job's is by its
 * id: a result settles only the job of a run it ended (runs.c). */
#define SETTLE(which)                                                                        \
    "UPDATE jobs SET state = 'done', finished = ?1 WHERE " which " AND state = 'running'"    \
    " AND standing = 0"                                                                      \
    " AND EXISTS (SELECT 1 FROM unit_runs r WHERE r.job = jobs.id)"                          \
    " AND NOT EXISTS (SELECT 1 FROM unit_runs r WHERE r.state IN " OPEN                      \
    "  AND r.job = jobs.id)"                                                                 \
    " AND (count = 0 OR (SELECT COUNT(*) FROM unit_runs r WHERE r.job = jobs.id) >= count"   \
    "  OR (agents = '[]' AND ports = '[]'))"

int store_jobs_settle(struct store *s, uint64_t now_ms)
{
    return st_exec(s, SETTLE("1"), "u", now_ms);
}

int store_job_settle(struct store *s, uint64_t job, uint64_t now_ms)
{
    return st_exec(s, SETTLE("id = ?2"), "uu", now_ms, job);
}
#undef SETTLE

/* ---- scheduling ------------------------------------------------------------------ */

struct expand_row {
    uint64_t job, ecid;
    int64_t count, have;
};

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* The (job, unit) pairs m(job, ecid, agent, port) the expansion filters: those of runs that
 * do not exist yet, units in no other live job and not held, in job order; a job's count
 * is read only when it has one (a standing job's runs grow without end). */
#define EXPAND_FREE                                                                          \
    " NOT EXISTS (SELECT 1 FROM unit_runs r WHERE r.job = m.job AND r.ecid = m.ecid)"         \
    " AND NOT EXISTS (SELECT 1 FROM unit_runs r JOIN jobs j2 ON j2.id = r.job"               \
    "  WHERE r.ecid = m.ecid AND j2.state = 'running' AND r.state NOT IN " TERMINAL ")"     \
    " AND NOT " HELD("m.ecid")
#define EXPAND_PICK                                                                          \
    " SELECT m.job, m.ecid, j.count,"                                                        \
    "  CASE WHEN j.count > 0 THEN (SELECT COUNT(*) FROM unit_runs r WHERE r.job = m.job) END" \
    " FROM m JOIN jobs j ON j.id = m.job WHERE" EXPAND_FREE                                   \
    " ORDER BY m.job, m.agent, m.port"

/* Whether a job's port list names the port of unit u (agent:path or its rack label). */
#define PORT_LISTED                                                                          \
    "EXISTS (SELECT 1 FROM json_each(j.ports) e WHERE e.value = u.agent || ':' || u.port"     \
    " OR e.value = (SELECT label FROM ports p WHERE p.agent = u.agent AND p.path = u.port))"

/* The present units in a range of (agent, port) (after ?1 ?2, up to ?3 ?4) against every
 * running selector job. Units are found through the job's agents (json_each first, then
 * units_port: CROSS JOIN keeps that order, which the planner otherwise turned into a scan
 * of every unit per agent); port lists are short and tested per unit. */
#define IN_RANGE " AND (u.agent, u.port) > (?1, ?2) AND (u.agent, u.port) <= (?3, ?4)"
static const char expand_range_sql[] =
    "WITH m(job, ecid, agent, port) AS ("
    " SELECT j.id, u.ecid, u.agent, u.port FROM jobs j CROSS JOIN json_each(j.agents) ja"
    "  CROSS JOIN units u ON u.agent = ja.value AND u.present = 1" IN_RANGE
    "  WHERE j.state = 'running' AND j.agents <> '[]'"
    " UNION"
    " SELECT j.id, u.ecid, u.agent, u.port FROM jobs j JOIN units u ON u.present = 1" IN_RANGE
    "  WHERE j.state = 'running' AND j.ports <> '[]' AND " PORT_LISTED ")"
    EXPAND_PICK;
#undef IN_RANGE

/* The units named (a JSON array of ECIDs) against every running selector job. */
static const char expand_units_sql[] =
    "WITH x(ecid) AS (SELECT DISTINCT value FROM json_each(?)),"
    " m(job, ecid, agent, port) AS ("
    " SELECT j.id, u.ecid, u.agent, u.port FROM x CROSS JOIN units u ON u.ecid = x.ecid"
    "  AND u.present = 1 CROSS JOIN jobs j"
    "  WHERE j.state = 'running' AND (EXISTS (SELECT 1 FROM json_each(j.agents) WHERE value = u.agent)"
    "  OR (j.ports <> '[]' AND " PORT_LISTED ")))"
    EXPAND_PICK;

/* The matches of one running selector job that have no run yet (st_unexpanded). */
static const char unexpanded_sql[] =
    "WITH m(job, ecid) AS ("
    " SELECT j.id, u.ecid FROM jobs j CROSS JOIN json_each(j.agents) ja"
    "  CROSS JOIN units u ON u.agent = ja.value AND u.present = 1"
    "  WHERE j.id = ?1 AND j.state = 'running' AND j.agents <> '[]'"
    " UNION"
    " SELECT j.id, u.ecid FROM jobs j JOIN units u ON u.present = 1"
    "  WHERE j.id = ?1 AND j.state = 'running' AND j.ports <> '[]' AND " PORT_LISTED ")"
    " SELECT COUNT(*) FROM m WHERE" EXPAND_FREE;

int64_t st_unexpanded(struct store *s, uint64_t job)
{
    return st_scalar(s, 0, unexpanded_sql, "u", job);
}

/* The runs of job for ecids[0..n), in that order, in one statement. */
static int insert_runs(struct store *s, uint64_t job, const uint64_t *ecids, size_t n, uint64_t now_ms)
{
    if (n == 0)
        return 0;
    char *list = st_ecid_list(ecids, n);
    if (!list)
        return FR_ENOMEM;
    int rc = st_exec(s, "INSERT INTO unit_runs (job, ecid, updated) SELECT ?, value, ? FROM json_each(?)",
                     "uut", job, now_ms, list);
    free(list);
    return rc;
}

/* Runs to create from the pairs st yields: every (job, unit) pair that matches, in job
 * order, each unit once (for the earliest job that wants it) and no job past its count.
 * One query, one INSERT per job and one transaction for the whole pass: a site of
 * hundreds of units joins a job at once, and a query per unit made that quadratic
 * (seconds with the loop blocked). */
static int expand_rows(struct store *s, sqlite3_stmt *st, uint64_t now_ms)
{
    if (!st)
        return FR_ESTORE;
    struct expand_row *rows = NULL;
    size_t n = 0, cap = 0;
    int rc;
    while ((rc = st_step(s, st)) == SQLITE_ROW) {
        if (n == cap) {
            struct expand_row *p = realloc(rows, (cap = cap ? 2 * cap : 256) * sizeof *p);
            if (!p)
                break;
            rows = p;
        }
        rows[n++] = (struct expand_row){ (uint64_t)sqlite3_column_int64(st, 0),
                                         (uint64_t)sqlite3_column_int64(st, 1),
                                         sqlite3_column_int64(st, 2), sqlite3_column_int64(st, 3) };
    }
    sqlite3_reset(st);
    uint64_t *taken = n ? calloc(n, sizeof *taken) : NULL;
    size_t ntaken = 0;
    int ret = rc == SQLITE_DONE && (n == 0 || taken) ? 0 : FR_ESTORE;
    int begun = ret == 0 && n > 0 && store_begin(s) == 0;
    if (ret == 0 && n > 0 && !begun) /* no savepoint: nothing to undo here, the turn fails */
        ret = FR_ESTORE;
    int64_t added = 0;
    size_t nsorted = 0; /* taken[0..nsorted): the units earlier jobs took, sorted */
    for (size_t i = 0; ret == 0 && i < n; i++) {
        const struct expand_row *r = &rows[i];
        if (i > 0 && rows[i - 1].job != r->job) { /* a unit comes once per job: sort per job */
            ret = insert_runs(s, rows[i - 1].job, taken + nsorted, ntaken - nsorted, now_ms);
            qsort(taken, ntaken, sizeof *taken, cmp_u64);
            nsorted = ntaken;
            added = 0;
        }
        if ((r->count > 0 && r->have + added >= r->count) ||
            bsearch(&r->ecid, taken, nsorted, sizeof *taken, cmp_u64))
            continue;
        added++;
        taken[ntaken++] = r->ecid;
    }
    if (ret == 0 && n > 0)
        ret = insert_runs(s, rows[n - 1].job, taken + nsorted, ntaken - nsorted, now_ms);
    if (ret == 0 && begun)
        ret = store_commit(s);
    if (ret < 0 && begun) /* only what this savepoint did: a failed read began none */
        store_rollback(s);
    free(rows);
    free(taken);
    return ret;
}

/* The (agent, port) of the present unit at offset off after (agent, port) in that order,
 * or with off < 0 the last present unit: 1 and out set, 0 when there is none, FR_ESTORE. */
static int unit_at(struct store *s, const struct expand_cursor *after, int64_t off,
                   struct expand_cursor *out)
{
    sqlite3_stmt *st = off >= 0
        ? st_query(s, "SELECT agent, port FROM units WHERE present = 1 AND (agent, port) > (?, ?)"
                      " ORDER BY agent, port LIMIT 1 OFFSET ?", "tti", after->agent, after->port, off)
        : st_query(s, "SELECT agent, port FROM units WHERE present = 1"
                      " ORDER BY agent DESC, port DESC LIMIT 1", NULL);
    int rc = st ? st_next_row(s, st) : FR_ESTORE;
    if (rc == 1) {
        snprintf(out->agent, sizeof out->agent, "%s", col_text(st, 0));
        snprintf(out->port, sizeof out->port, "%s", col_text(st, 1));
    }
    if (st)
        sqlite3_reset(st);
    return rc;
}

int store_sched_expand_page(struct store *s, uint64_t now_ms, struct expand_cursor *cur, size_t max,
                            int *done)
{
    struct expand_cursor last;
    *done = 0;
    int rc = unit_at(s, cur, max > 0 ? (int64_t)max - 1 : 0, &last);
    if (rc == 0) { /* fewer than max left: the page runs to the last unit */
        *done = 1;
        rc = unit_at(s, cur, -1, &last);
    }
    if (rc <= 0 || strcmp(last.agent, cur->agent) < 0 ||
        (!strcmp(last.agent, cur->agent) && strcmp(last.port, cur->port) <= 0)) {
        *done = 1; /* no unit past the cursor */
        return rc < 0 ? rc : 0;
    }
    rc = expand_rows(s, st_query(s, expand_range_sql, "tttt", cur->agent, cur->port, last.agent,
                                 last.port), now_ms);
    if (rc == 0)
        *cur = last;
    return rc;
}

/* Only the units that changed are looked at when the caller names them: a pass after one
 * result or one plug-in costs that unit, not the site. */
int store_sched_expand(struct store *s, uint64_t now_ms, const uint64_t *ecids, size_t necids)
{
    if (!ecids) {
        struct expand_cursor cur = { "", "" };
        int rc = 0, done = 0;
        while (rc == 0 && !done)
            rc = store_sched_expand_page(s, now_ms, &cur, 4096, &done);
        return rc;
    }
    if (necids == 0)
        return 0;
    char *list = st_ecid_list(ecids, necids);
    if (!list)
        return FR_ENOMEM;
    sqlite3_stmt *st = st_query(s, expand_units_sql, "t", list);
    free(list);
    return expand_rows(s, st, now_ms);
}

/* No ORDER BY: SQLite finds the waiting runs through unit_runs_state and hands them out
 * in the order their runs were made (job, then agent and port, as expand_rows inserts
 * them), and stops at the batch the caller takes. Sorting them made it test every waiting
 * run first: 55 ms per pass with 10,000 waiting, for a batch of 256 claims. */
int store_sched_candidates(struct store *s,
                           int (*cb)(void *arg, const struct sched_candidate *c), void *arg)
{
    sqlite3_stmt *st = st_query(s,
        "SELECT r.job, r.ecid, u.agent, u.port, u.product_type FROM unit_runs r"
        " JOIN jobs j ON j.id = r.job AND j.state = 'running'"
        /* a unit its agent cannot use (it said why: UnitInfo.reason) waits for an operator */
        " JOIN units u ON u.ecid = r.ecid AND u.present = 1 AND u.reason = ''"
        " LEFT JOIN ports p ON p.agent = u.agent AND p.path = u.port"
        " WHERE (r.state IN ('waiting_unit', 'needs_move')"
        /* an operator put it into DFU or recovery by hand, or plugged it in again in one of
         * them: it starts by itself (a unit that stayed as it was does not: no_device twice
         * in recovery mode would be retried for ever) */
        "  OR (r.state = 'needs_operator' AND u.mode IN (1, 2) AND u.arrived > r.updated))"
        " AND COALESCE(p.quarantined, 0) = 0 AND r.not_before <= ?"
        " AND (j.same_port = 1"
        "  OR NOT EXISTS (SELECT 1 FROM json_each(r.avoid) WHERE value = u.agent || ':' || u.port))"
        " AND NOT EXISTS (SELECT 1 FROM attempts a WHERE a.ecid = r.ecid AND a.state IN " LIVE ")"
        " AND NOT " HELD("r.ecid")
        /* a unit named by two live jobs is restored for the earlier one first, never at once */
        " AND NOT EXISTS (SELECT 1 FROM unit_runs o JOIN jobs oj ON oj.id = o.job AND oj.state = 'running'"
        "  WHERE o.ecid = r.ecid AND o.job < r.job AND o.state NOT IN " TERMINAL ")",
        "u", fr_time_wall_ms());
    if (!st)
        return FR_ESTORE;
    int rc;
    while ((rc = st_step(s, st)) == SQLITE_ROW) {
        struct sched_candidate c = { (uint64_t)sqlite3_column_int64(st, 0),
                                     (uint64_t)sqlite3_column_int64(st, 1), "", "", "" };
        snprintf(c.agent, sizeof c.agent, "%s", col_text(st, 2));
        snprintf(c.product_type, sizeof c.product_type, "%s", col_text(st, 4));
        snprintf(c.port, sizeof c.port, "%s", col_text(st, 3));
        if (cb(arg, &c))
            break;
    }
    sqlite3_reset(st);
    return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : FR_ESTORE;
}

/* 128 bits per token from the kernel's CSPRNG: a peer that did not receive the JobAssign
 * cannot guess them (job, attempt and epoch are small counters). One call for n tokens
 * (a read past 256 bytes may come short when a signal arrives: the rest is read again). */
static int draw_tokens(uint64_t *token, size_t n)
{
    size_t want = 2 * n * sizeof token[0], got = 0;
    for (int tries = 0; got < want && tries < 8; tries++) {
        ssize_t r = getrandom((char *)token + got, want - got, 0);
        if (r > 0)
            got += (size_t)r;
    }
    return got == want ? 0 : FR_ESYS;
}

/* One claim inside the batch's savepoint: the attempt (epoch given) and its run. */
static int claim_one(struct store *s, struct claim *cl, int64_t epoch, const uint64_t token[2],
                     uint64_t now_ms)
{
    const struct sched_candidate *c = cl->c;
    int64_t before = 0;
    int rc = st_scalar_rc(s, &before, "SELECT COUNT(*) FROM attempts WHERE job = ? AND ecid = ?", "uu",
                          c->job, c->ecid);
    cl->n = (uint32_t)before + 1;
    if (rc == 0)
        rc = st_exec(s, "INSERT INTO attempts (job, ecid, n, agent, port, epoch, state, started,"
                     " firmware, sha256, token_hi, token_lo, fw_version, fw_build)"
                     " VALUES (?, ?, ?, ?, ?, ?, 'assigned', ?, ?, ?, ?, ?, ?, ?)",
                  "uuittiutt" "uutt", c->job, c->ecid, (int64_t)cl->n, c->agent, c->port, epoch,
                  now_ms, cl->firmware, cl->sha, token[0], token[1],
                  cl->fw_version ? cl->fw_version : "", cl->fw_build ? cl->fw_build : "");
    uint64_t id = (uint64_t)sqlite3_last_insert_rowid(s->db);
    if (rc == 0)
        rc = st_exec(s, "UPDATE unit_runs SET state = 'preflight', attempts = attempts + 1,"
                     " started = CASE WHEN started = 0 THEN ? ELSE started END, step = 0,"
                     " fraction = 0, status = '', error_class = '', error_text = '',"
                     " updated = ? WHERE job = ? AND ecid = ?",
                  "uuuu", now_ms, now_ms, c->job, c->ecid);
    if (rc == 0)
        rc = st_exec(s, "UPDATE moves SET done = ? WHERE job = ? AND ecid = ? AND done = 0", "uuu",
                  now_ms, c->job, c->ecid);
    int64_t erase = 1;
    if (rc == 0)
        rc = st_scalar_rc(s, &erase, "SELECT erase FROM jobs WHERE id = ?", "u", c->job);
    cl->erase = (int)erase;
    fr__attempt_ref__init(&cl->ref);
    cl->ref.job_id = c->job;
    cl->ref.attempt_id = id;
    cl->ref.epoch = (uint64_t)epoch;
    cl->ref.ecid = c->ecid;
    cl->ref.token_hi = token[0];
    cl->ref.token_lo = token[1];
    return rc;
}

/* One savepoint and one bump of the lease epoch for the whole batch: a savepoint per
 * claim journalled the same pages again for every claim. */
int store_claim_attempts(struct store *s, struct claim *cl, size_t n, uint64_t now_ms)
{
    if (n == 0)
        return 0;
    uint64_t *token = malloc(2 * n * sizeof *token);
    if (!token)
        return FR_ENOMEM;
    if (draw_tokens(token, n) < 0) {
        fr_error("store", "cannot draw attempt tokens: getrandom failed");
        free(token);
        return FR_ESYS;
    }
    int rc = store_begin(s);
    if (rc < 0) { /* no savepoint: a rollback now would undo the enclosing turn's work */
        free(token);
        return rc;
    }
    int64_t last = 0;
    /* the batch's epochs, last - n + 1 .. last, in the statement that takes them */
    rc = st_scalar_rc(s, &last, "UPDATE meta SET value = value + ? WHERE key = 'lease_epoch'"
                      " RETURNING value", "u", (uint64_t)n);
    for (size_t i = 0; rc == 0 && i < n; i++)
        rc = claim_one(s, &cl[i], last - (int64_t)n + 1 + (int64_t)i, &token[2 * i], now_ms);
    free(token);
    if (rc == 0)
        rc = store_commit(s);
    if (rc < 0)
        store_rollback(s);
    return rc;
}

int store_claim_attempt(struct store *s, const struct sched_candidate *c, uint64_t now_ms,
                        const char *firmware, const char *sha, Fr__AttemptRef *ref, int *erase,
                        uint32_t *n)
{
    struct claim cl = { .c = c, .firmware = firmware, .sha = sha };
    int rc = store_claim_attempts(s, &cl, 1, now_ms);
    if (rc == 0) {
        *ref = cl.ref;
        *erase = cl.erase;
        *n = cl.n;
    }
    return rc;
}

int store_live_attempts(struct store *s, const char *agent, const char *state_filter,
                        store_attempt_cb cb, void *arg)
{
    return each_attempt(s, st_query(s, "SELECT " ATTEMPT_COLS " FROM attempts a JOIN jobs j ON j.id = a.job"
                                    " WHERE a.agent = ? AND a.state IN " LIVE
                                    " AND (? = '' OR a.state = ?) ORDER BY a.id",
                                 "ttt", agent, state_filter ? state_filter : "",
                                 state_filter ? state_filter : ""), cb, arg);
}

int store_assigned_attempts(struct store *s, const char *agent, uint64_t claimed_before_ms,
                            store_attempt_cb cb, void *arg)
{
    return each_attempt(s, st_query(s, "SELECT " ATTEMPT_COLS " FROM attempts a JOIN jobs j ON j.id = a.job"
                                    " WHERE a.agent = ? AND a.state = 'assigned' AND a.started < ?"
                                    " ORDER BY a.id", "tu", agent, claimed_before_ms), cb, arg);
}

int store_job_firmware(struct store *s, uint64_t job, char *fw, size_t fwlen, char *sha, size_t shalen)
{
    sqlite3_stmt *st = st_query(s, "SELECT firmware, sha256 FROM jobs WHERE id = ?", "u", job);
    int rc = st ? st_next_row(s, st) : FR_ESTORE;
    snprintf(fw, fwlen, "%s", rc == 1 ? col_text(st, 0) : "");
    snprintf(sha, shalen, "%s", rc == 1 ? col_text(st, 1) : "");
    if (st)
        sqlite3_reset(st);
    return rc < 0 ? rc : rc == 1 ? 0 : FR_ENOTFOUND;
}

int store_firmware_url(struct store *s, const char *sha, char *url, size_t len)
{
    /* attempts too: a catalog selector's URL and hash live on the attempts */
    sqlite3_stmt *st = st_query(s, "SELECT firmware FROM (SELECT firmware, sha256, created AS at FROM jobs"
                                " UNION ALL SELECT firmware, sha256, started AS at FROM attempts)"
                                " WHERE lower(sha256) = lower(?) AND"
                                " (firmware LIKE 'http://%' OR firmware LIKE 'https://%')"
                                " ORDER BY at DESC LIMIT 1", "t", sha);
    int rc = st ? st_next_row(s, st) : FR_ESTORE;
    snprintf(url, len, "%s", rc == 1 ? col_text(st, 0) : "");
    if (st)
        sqlite3_reset(st);
    return rc < 0 ? rc : rc == 1 ? 0 : FR_ENOTFOUND;
}

int store_live_count(struct store *s, const char *agent)
{
    int64_t n = 0;
    int rc = st_scalar_rc(s, &n, "SELECT COUNT(*) FROM attempts WHERE agent = ? AND state IN " LIVE,
                       "t", agent);
    return rc < 0 ? rc : (int)n;
}

int store_port_count(struct store *s, const char *agent)
{
    return (int)st_scalar(s, 0, "SELECT COUNT(*) FROM ports WHERE agent = ?", "t", agent);
}

int store_attempt_wanted(struct store *s, const Fr__AttemptRef *ref)
{
    int64_t n = 0;
    int rc = st_scalar_rc(s, &n, "SELECT COUNT(*) FROM unit_runs r JOIN attempts a ON a.job = r.job"
                              " AND a.ecid = r.ecid WHERE a.id = ? AND a.epoch = ?"
                              " AND r.state NOT IN " TERMINAL, "uu", ref->attempt_id, ref->epoch);
    return rc < 0 ? rc : n > 0;
}

/* ---- moves ------------------------------------------------------------------------------ */

#define MOVE_NEEDED_WHERE                                                                 \
    " WHERE r.state = 'needs_move'"                                                        \
    " AND NOT EXISTS (SELECT 1 FROM moves m WHERE m.job = r.job AND m.ecid = r.ecid AND m.done = 0)"

int store_moves_pending(struct store *s)
{
    return st_scalar(s, 0, "SELECT EXISTS (SELECT 1 FROM unit_runs r JOIN jobs j ON j.id = r.job"
                        " AND j.state = 'running'" MOVE_NEEDED_WHERE ")", NULL) > 0;
}

int store_moves_needed(struct store *s, int (*cb)(void *arg, const struct move_need *m), void *arg)
{
    sqlite3_stmt *st = st_query(s,
        "SELECT r.job, r.ecid, COALESCE(a.agent, ''), COALESCE(a.port, ''), r.from_dfu, r.avoid"
        " FROM unit_runs r JOIN jobs j ON j.id = r.job AND j.state = 'running'"
        " LEFT JOIN attempts a ON a.id = (SELECT MAX(id) FROM attempts WHERE job = r.job AND ecid = r.ecid)"
        MOVE_NEEDED_WHERE " ORDER BY r.updated", NULL);
    if (!st)
        return FR_ESTORE;
    /* all of them, read first: the callback writes move instructions */
    struct move_need *list = NULL;
    size_t n = 0, cap = 0;
    int rc;
    while ((rc = st_next_row(s, st)) == 1) {
        if (n == cap) {
            struct move_need *grown = realloc(list, (cap = cap ? 2 * cap : 64) * sizeof *grown);
            if (!grown) {
                rc = FR_ENOMEM;
                break;
            }
            list = grown;
        }
        struct move_need *m = &list[n++];
        m->job = (uint64_t)sqlite3_column_int64(st, 0);
        m->ecid = (uint64_t)sqlite3_column_int64(st, 1);
        snprintf(m->from_agent, sizeof m->from_agent, "%s", col_text(st, 2));
        snprintf(m->from_port, sizeof m->from_port, "%s", col_text(st, 3));
        m->from_dfu = sqlite3_column_int(st, 4);
        m->avoid = strdup(col_text(st, 5));
        if (!m->avoid)
            rc = FR_ENOMEM;
    }
    sqlite3_reset(st);
    for (size_t i = 0; rc == 0 && i < n; i++)
        if (cb(arg, &list[i]))
            break;
    for (size_t i = 0; i < n; i++)
        free((char *)list[i].avoid);
    free(list);
    return rc < 0 ? rc : 0;
}

/* Work on each root bus: units of running jobs on its ports that have yet to send
 * their filesystem (those past it, or leaving, do not load the bus), and units on
 * their way there (open moves). */
static int bus_loads(struct store *s, struct move_port *mp, size_t n)
{
    sqlite3_stmt *st = st_query(s,
        "SELECT agent, bus, COUNT(*) FROM ("
        " SELECT p.agent, p.bus FROM unit_runs r JOIN jobs j ON j.id = r.job AND j.state = 'running'"
        "  JOIN units u ON u.ecid = r.ecid JOIN ports p ON p.agent = u.agent AND p.path = u.port"
        "  WHERE r.state IN ('waiting_unit', 'preflight', 'fetching_firmware', 'queued_for_bus',"
        "   'restoring', 'needs_operator')"
        " UNION ALL SELECT p.agent, p.bus FROM moves m"
        "  JOIN ports p ON p.agent = m.to_agent AND p.path = m.to_port WHERE m.done = 0)"
        " GROUP BY agent, bus", NULL);
    int rc = st ? 1 : FR_ESTORE;
    while (st && (rc = st_next_row(s, st)) == 1) {
        const char *agent = col_text(st, 0);
        uint32_t bus = (uint32_t)sqlite3_column_int(st, 1);
        for (size_t k = 0; k < n; k++)
            if (mp[k].bus == bus && strcmp(mp[k].agent, agent) == 0)
                mp[k].load = sqlite3_column_int(st, 2);
    }
    if (st)
        sqlite3_reset(st);
    return rc;
}

int store_move_ports(struct store *s, int (*online)(void *arg, const char *agent), void *arg,
                     struct move_port **out, size_t *n)
{
    *out = NULL;
    *n = 0;
    int64_t total = 0;
    if (st_scalar_rc(s, &total, "SELECT COUNT(*) FROM ports", NULL) < 0)
        return FR_ESTORE;
    struct move_port *mp = calloc((size_t)total + 1, sizeof *mp);
    if (!mp)
        return FR_ENOMEM;
    sqlite3_stmt *st = st_query(s,
        "SELECT p.agent, p.path, p.hub, p.bus, p.depth, p.strikes,"
        " p.quarantined = 0"
        /* a phone that still has work to do is (or will be back) on that port; a finished
         * one is taken out by the technician to make room */
        " AND NOT EXISTS (SELECT 1 FROM units u JOIN unit_runs r ON r.ecid = u.ecid"
        "  JOIN jobs j ON j.id = r.job AND j.state = 'running'"
        "  WHERE u.agent = p.agent AND u.port = p.path AND r.state NOT IN " TERMINAL ")"
        " AND NOT EXISTS (SELECT 1 FROM attempts a WHERE a.agent = p.agent AND a.port = p.path"
        "  AND a.state IN " LIVE ")"
        " AND NOT EXISTS (SELECT 1 FROM moves m WHERE m.to_agent = p.agent AND m.to_port = p.path"
        "  AND m.done = 0)"
        ", p.quarantined = 0"
        " FROM ports p ORDER BY p.agent, p.label", NULL);
    size_t i = 0;
    int rc = st ? 1 : FR_ESTORE;
    while (st && i < (size_t)total && (rc = st_next_row(s, st)) == 1) {
        struct move_port *m = &mp[i++];
        snprintf(m->agent, sizeof m->agent, "%s", col_text(st, 0));
        snprintf(m->path, sizeof m->path, "%s", col_text(st, 1));
        snprintf(m->hub, sizeof m->hub, "%s", col_text(st, 2));
        snprintf(m->id, sizeof m->id, "%s:%s", m->agent, m->path);
        m->bus = (uint32_t)sqlite3_column_int(st, 3);
        m->depth = (uint32_t)sqlite3_column_int(st, 4);
        m->strikes = sqlite3_column_int(st, 5);
        m->usable = sqlite3_column_int(st, 6);
        m->eligible = sqlite3_column_int(st, 7);
    }
    if (st)
        sqlite3_reset(st);
    for (size_t k = 0; k < i; k++)
        if (!online(arg, mp[k].agent))
            mp[k].usable = mp[k].eligible = 0;
    if (rc >= 0)
        rc = bus_loads(s, mp, i);
    if (rc < 0) {
        free(mp);
        return rc;
    }
    *out = mp;
    *n = i;
    return 0;
}

int store_move_add(struct store *s, const struct move_need *m, const char *to_agent,
                   const char *to_port, uint64_t now_ms)
{
    int rc = st_exec(s, "INSERT INTO moves (job, ecid, from_agent, from_port, to_agent, to_port, dfu,"
                     " created) VALUES (?, ?, ?, ?, ?, ?, ?, ?)", "uuttttiu", m->job, m->ecid,
                  m->from_agent, m->from_port, to_agent, to_port, (int64_t)m->from_dfu, now_ms);
    if (rc == 0) {
        char text[256];
        snprintf(text, sizeof text, "move from %s:%s to %s:%s%s", m->from_agent, m->from_port,
                 to_agent, to_port, m->from_dfu ? ", start from DFU" : "");
        rc = store_event(s, now_ms, "move", m->job, m->ecid, to_agent, to_port, text);
    }
    return rc;
}

int store_port_clear(struct store *s, const char *spec, uint64_t now_ms, char *err, size_t errlen)
{
    sqlite3_stmt *st = st_query(s, "SELECT agent, path FROM ports WHERE label = ? OR agent || ':' || path = ?",
                             "tt", spec, spec);
    char agent[64] = "", path[64] = "";
    int found = st ? st_next_row(s, st) : FR_ESTORE;
    if (found == 1) {
        snprintf(agent, sizeof agent, "%s", col_text(st, 0));
        snprintf(path, sizeof path, "%s", col_text(st, 1));
    }
    if (st)
        sqlite3_reset(st);
    if (found < 0)
        return fr_seterr(FR_ESTORE, err, errlen, "cannot read port '%s': %s", spec, sqlite3_errmsg(s->db));
    if (!found)
        return fr_seterr(FR_ENOTFOUND, err, errlen, "no port '%s' (expected a rack label or agent:path)", spec);
    int rc = store_begin(s);
    if (rc < 0) /* no savepoint: a rollback would undo the enclosing turn */
        return fr_seterr(FR_ESTORE, err, errlen, "cannot clear port '%s': %s", spec, sqlite3_errmsg(s->db));
    rc = st_exec(s, "UPDATE ports SET quarantined = 0, strikes = 0, quarantine_reason = ''"
                 " WHERE agent = ? AND path = ?", "tt", agent, path);
    if (rc == 0)
        rc = st_exec(s, "DELETE FROM port_strikes WHERE agent = ? AND path = ?", "tt", agent, path);
    if (rc == 0)
        rc = store_event(s, now_ms, "port", 0, 0, agent, path, "cleared by an operator");
    if (rc == 0)
        rc = store_commit(s);
    if (rc < 0) {
        store_rollback(s);
        return fr_seterr(FR_ESTORE, err, errlen, "cannot clear port '%s': %s", spec, sqlite3_errmsg(s->db));
    }
    return 0;
}
