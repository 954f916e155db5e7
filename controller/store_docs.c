/* store_docs — the documents clients read (status, units, ports, agents, metrics, report,
 * moves, one unit), held units and their release, and what a submit would match; see
 * store.h. The long lists (a job's runs, the units, the ports, a report's units and their
 * attempts) are written as JSON text row by row (jtext.h), not built as jansson trees. */
#include "store.h"
#include "store_int.h"

#include "jtext.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fr_err.h"
#include "fr_log.h"
#include "fr_types.h"

static json_t *doc_moves(struct store *s);

/* A page is the rows after its cursor (the JSON array of the previous page's last sort
 * key, from page_next) in the document's order, and that order is an index's: a page
 * reads its own rows, never the ones before it, nor sorts the whole list. Each paged
 * document has two statements, the first page's and the next pages' (one macro with
 * the keyset condition as its argument), whose key values are bound from the cursor
 * (page_stmt). ?1 is the limit (-1 = every row). */
static const struct store_page whole = { "", -1 };

static const struct store_page *page_or_whole(const struct store_page *pg)
{
    return pg && pg->limit > 0 ? pg : &whole;
}

static int later_page(const struct store_page *pg)
{
    return pg->cursor[0] != 0;
}

/* st with the cursor's key values bound from parameter at on (nothing on a first page);
 * NULL when the cursor is not this document's key (clients.c checks that it is a JSON
 * array): the page is empty, and the last. */
static sqlite3_stmt *page_stmt(sqlite3_stmt *st, const struct store_page *pg, int at)
{
    if (!st || !later_page(pg))
        return st;
    json_t *key = json_loads(pg->cursor, 0, NULL), *v;
    int ok = json_is_array(key) && at + (int)json_array_size(key) - 1 == sqlite3_bind_parameter_count(st);
    size_t i;
    json_array_foreach(key, i, v) {
        int p = at + (int)i;
        ok = ok && (json_is_integer(v) ? sqlite3_bind_int64(st, p, json_integer_value(v))
                  : json_is_string(v) ? sqlite3_bind_text(st, p, json_string_value(v), -1, SQLITE_TRANSIENT)
                  : SQLITE_MISMATCH) == SQLITE_OK;
    }
    json_decref(key);
    if (!ok)
        fr_warn("store", "a page's cursor is not this document's key: '%.60s'", pg->cursor);
    return ok ? st : NULL;
}

/* After a page's rows: the cursor of the next page as the document's "next" ('' after
 * the last; nothing for a whole document). key holds the sort key of a full page's last
 * row (NULL for a page that is not full: the last). */
static void page_next(struct jtext *jt, const struct store_page *pg, json_t *key)
{
    if (pg->limit > 0) {
        char *next = key ? json_dumps(key, JSON_COMPACT) : NULL;
        jt_kstr(jt, "next", next ? next : "");
        free(next);
    }
    json_decref(key);
}

/* The page ends after rows rows whose text is jt's: its limit reached, or its text past
 * STORE_PAGE_BYTES (rows of any size fit a message); the last row's key is the next
 * page's cursor. */
static int page_ends(const struct store_page *pg, size_t rows, const struct jtext *jt)
{
    return pg && pg->limit > 0 && (rows == (size_t)pg->limit || jt->len >= STORE_PAGE_BYTES);
}

static json_t *ecid_key(int64_t ecid)
{
    return json_pack("[I]", (json_int_t)ecid);
}

/* ---- columns as JSON text --------------------------------------------------------------- */

static void jt_ktime(struct jtext *jt, const char *key, sqlite3_stmt *st, int i)
{
    char buf[32];
    fr_time_iso8601((uint64_t)sqlite3_column_int64(st, i), buf, sizeof buf);
    jt_kstr(jt, key, buf);
}

static void jt_kecid(struct jtext *jt, const char *key, sqlite3_stmt *st, int i)
{
    char buf[FR_ECID_STRLEN];
    fr_ecid_format((uint64_t)sqlite3_column_int64(st, i), buf, sizeof buf);
    jt_kstr(jt, key, buf);
}

static void jt_kcol(struct jtext *jt, const char *key, sqlite3_stmt *st, int i)
{
    jt_kstr(jt, key, col_text(st, i));
}

/* The text as a jansson document, for the callers that want one (NULL stays NULL). */
static json_t *parsed(char *text)
{
    json_error_t e;
    json_t *doc = text ? json_loads(text, 0, &e) : NULL;
    if (text && !doc)
        fr_error("store", "a document written as text does not read back: %s", e.text);
    free(text);
    return doc;
}

/* jt's text, or NULL (and jt emptied) when a read failed or it ran out of memory. */
static char *checked_text(struct store *s, struct jtext *jt, int ok)
{
    char *text = jt_take(jt);
    if (ok && text && !s->read_failed)
        return text;
    if (ok && !text)
        s->read_failed = 1; /* out of memory: the caller replies that the store was not read */
    free(text);
    return NULL;
}

/* ---- documents ---------------------------------------------------------------------- */

/* The states each total counts (a state in none is counted in "units" only). */
static const char *const total_states[][6] = {
    { "waiting_unit", "needs_move", "needs_operator", NULL },
    { "preflight", "fetching_firmware", "queued_for_bus", "restoring", "verifying", NULL },
    { "done", NULL },
    { "failed", "hardware_suspect", NULL },
    { "cancelled", NULL },
};

static int total_of(const char *state)
{
    for (int i = 0; i < 5; i++)
        for (int j = 0; total_states[i][j]; j++)
            if (!strcmp(total_states[i][j], state))
                return i + 1;
    return 0;
}

/* A job's totals: its runs counted in the primary key's index, and each state's in
 * unit_runs_state (state, job), a range per state. Neither visits a run's row: summing
 * the states over the rows cost about 8 ms at 10,000 runs, and every page of a watch
 * carries its jobs' totals. */
static json_t *job_totals(struct store *s, uint64_t job)
{
    int64_t t[6] = { st_scalar(s, 0, "SELECT COUNT(*) FROM unit_runs WHERE job = ?", "u", job) };
    sqlite3_stmt *st = st_query(s,
        "SELECT state, COUNT(*) FROM unit_runs WHERE job = ? AND state IN ('waiting_unit', 'needs_move',"
        " 'needs_operator', 'preflight', 'fetching_firmware', 'queued_for_bus', 'restoring', 'verifying', 'done',"
        " 'failed', 'hardware_suspect', 'cancelled') GROUP BY state", "u", job);
    while (st && st_step(s, st) == SQLITE_ROW) {
        int i = total_of(col_text(st, 0));
        if (i)
            t[i] += sqlite3_column_int64(st, 1);
    }
    if (st)
        sqlite3_reset(st);
    static const char *keys[] = { "units", "waiting", "active", "done", "failed", "cancelled" };
    json_t *totals = json_object();
    for (int i = 0; i < 6; i++)
        json_object_set_new(totals, keys[i], json_integer(t[i]));
    return totals;
}

#define JOB_COLS "id, name, state, firmware, erase, created, finished, count, standing"

static json_t *job_row(struct store *s, sqlite3_stmt *st)
{
    uint64_t id = (uint64_t)sqlite3_column_int64(st, 0);
    json_t *j = json_pack("{s:I, s:s, s:s, s:s, s:b, s:o, s:o, s:I, s:b}", "id", (json_int_t)id,
                          "name", col_text(st, 1), "state", col_text(st, 2), "firmware",
                          col_text(st, 3), "erase", sqlite3_column_int(st, 4), "created",
                          col_time(st, 5), "finished", col_time(st, 6), "count",
                          (json_int_t)sqlite3_column_int64(st, 7), "standing",
                          sqlite3_column_int(st, 8));
    return j;
}

/* While the controller is still making selector jobs' runs (a large submit takes a few
 * passes), a running job's totals count its matches without a run yet as units waiting,
 * and say how many they are in "expanding": else "units" grew 0, 512, 1,000 after a
 * submit that said "matched 1000". Up to the job's count, if it has one. */
static void with_unexpanded(struct store *s, json_t *j, json_t *totals)
{
    json_int_t units = json_integer_value(json_object_get(totals, "units")), more = 0;
    json_int_t count = json_integer_value(json_object_get(j, "count"));
    if (s->expanding && !strcmp(json_string_value(json_object_get(j, "state")), "running") &&
        (count == 0 || units < count)) {
        more = st_unexpanded(s, (uint64_t)json_integer_value(json_object_get(j, "id")));
        if (count > 0 && more > count - units)
            more = count - units;
    }
    json_object_set_new(totals, "units", json_integer(units + more));
    json_object_set_new(totals, "waiting",
                        json_integer(json_integer_value(json_object_get(totals, "waiting")) + more));
    json_object_set_new(totals, "expanding", json_integer(more));
}

/* Rows of a jobs query, with totals (a second statement per job, after the first is done). */
static json_t *jobs_from(struct store *s, sqlite3_stmt *st)
{
    json_t *jobs = json_array();
    while (st && st_step(s, st) == SQLITE_ROW)
        json_array_append_new(jobs, job_row(s, st));
    if (st)
        sqlite3_reset(st);
    size_t i;
    json_t *j;
    json_array_foreach(jobs, i, j) {
        json_t *totals = job_totals(s, (uint64_t)json_integer_value(json_object_get(j, "id")));
        with_unexpanded(s, j, totals);
        json_object_set_new(j, "totals", totals);
    }
    return jobs;
}

void store_docs_expanding(struct store *s, int on)
{
    s->expanding = on;
}

#define RUNS_SQL(tail)                                                                       \
    "SELECT r.job, r.ecid, COALESCE(u.product_type, ''), r.state,"                             \
    " COALESCE(a.agent, u.agent, ''), COALESCE(a.port, u.port, ''), COALESCE(p.label, ''),"    \
    " COALESCE(a.n, 0), r.step, r.fraction, r.status, r.error_class, r.error_text, r.started," \
    " r.updated, r.seq FROM unit_runs r LEFT JOIN units u ON u.ecid = r.ecid"                  \
    " LEFT JOIN attempts a ON a.id = (SELECT MAX(id) FROM attempts WHERE job = r.job AND ecid = r.ecid)" \
    " LEFT JOIN ports p ON p.agent = COALESCE(a.agent, u.agent) AND p.path = COALESCE(a.port, u.port)" \
    tail

/* The rows of a RUNS_SQL statement, each an object in the array being written, up to
 * the end of page pg (NULL: every row); last[] gets the last row's ECID and change
 * sequence. Returns the number of rows, *ended whether the page ended. */
static size_t run_rows(struct store *s, sqlite3_stmt *st, struct jtext *jt, int64_t last[2],
                       const struct store_page *pg, int *ended)
{
    size_t n = 0;
    *ended = 0;
    while (!*ended && st && st_step(s, st) == SQLITE_ROW) {
        jt_obj(jt);
        jt_kint(jt, "job_id", sqlite3_column_int64(st, 0));
        jt_kecid(jt, "ecid", st, 1);
        jt_kcol(jt, "product_type", st, 2);
        jt_kcol(jt, "state", st, 3);
        jt_kcol(jt, "agent", st, 4);
        jt_kcol(jt, "port", st, 5);
        jt_kcol(jt, "label", st, 6);
        jt_kint(jt, "attempt", sqlite3_column_int(st, 7));
        jt_kint(jt, "step", sqlite3_column_int(st, 8));
        jt_kreal(jt, "fraction", sqlite3_column_double(st, 9));
        jt_kcol(jt, "status", st, 10);
        jt_kcol(jt, "error_class", st, 11);
        jt_kcol(jt, "error", st, 12);
        jt_ktime(jt, "started", st, 13);
        jt_ktime(jt, "updated", st, 14);
        jt_obj_end(jt);
        last[0] = sqlite3_column_int64(st, 1);
        last[1] = sqlite3_column_int64(st, 15);
        *ended = page_ends(pg, ++n, jt);
    }
    if (st)
        sqlite3_reset(st);
    return n;
}

/* One job's runs, a page of them in ECID order (its primary key's), written into the
 * array being written; *key gets the sort key of a full page's last row. */
static void runs_of(struct store *s, uint64_t job, const struct store_page *pg, struct jtext *jt, json_t **key)
{
    sqlite3_stmt *st = page_stmt(st_query(s, later_page(pg)
                                          ? RUNS_SQL(" WHERE r.job = ?2 AND r.ecid > ?3 ORDER BY r.ecid LIMIT ?1")
                                          : RUNS_SQL(" WHERE r.job = ?2 ORDER BY r.ecid LIMIT ?1"),
                                          "iu", (int64_t)pg->limit, job), pg, 3);
    int64_t last[2];
    int ended;
    run_rows(s, st, jt, last, pg, &ended);
    if (ended)
        *key = ecid_key(last[0]);
}

/* A later page of one job's runs: its rows and the next cursor only (0: no such job). */
static int status_page(struct store *s, uint64_t job_id, const struct store_page *pg, struct jtext *jt)
{
    if (!st_scalar(s, 0, "SELECT COUNT(*) FROM jobs WHERE id = ?", "u", job_id))
        return 0;
    json_t *key = NULL;
    jt_obj(jt);
    jt_key(jt, "runs");
    jt_arr(jt);
    runs_of(s, job_id, pg, jt, &key);
    jt_arr_end(jt);
    page_next(jt, pg, key);
    jt_obj_end(jt);
    return 1;
}

/* The jobs of a status document: job_id's, a watch's (every running job and the newest),
 * or the newest 200; NULL when job_id names no job. */
static json_t *status_jobs(struct store *s, uint64_t job_id, int watched)
{
    sqlite3_stmt *st;
    if (job_id)
        st = st_query(s, "SELECT " JOB_COLS " FROM jobs WHERE id = ?", "u", job_id);
    else if (watched)
        st = st_query(s, "SELECT " JOB_COLS " FROM jobs WHERE state = 'running'"
                      " OR id = (SELECT MAX(id) FROM jobs) ORDER BY id", NULL);
    else
        st = st_query(s, "SELECT " JOB_COLS " FROM jobs ORDER BY id DESC LIMIT 200", NULL);
    json_t *jobs = jobs_from(s, st);
    if (job_id && json_array_size(jobs) == 0) {
        json_decref(jobs);
        return NULL;
    }
    return jobs;
}

/* The open moves as the document's "moves" (decorated by the caller's moves_fn, if any). */
static void with_moves(struct store *s, struct jtext *jt, store_moves_fn moves_fn)
{
    json_t *moves = doc_moves(s);
    if (moves_fn)
        moves_fn(json_object_get(moves, "moves"));
    jt_key(jt, "moves");
    jt_json(jt, json_object_get(moves, "moves"));
    json_decref(moves);
}

/* 0 when job_id names no job. */
static int doc_status(struct store *s, uint64_t job_id, int with_runs, const struct store_page *pg,
                      store_moves_fn moves_fn, struct jtext *jt)
{
    if (job_id && later_page(pg))
        return status_page(s, job_id, pg, jt);
    json_t *jobs = status_jobs(s, job_id, with_runs);
    if (!jobs)
        return 0;
    jt_obj(jt);
    jt_key(jt, "jobs");
    jt_json(jt, jobs);
    if (job_id || with_runs) {
        /* pages are of one job's runs; the jobs and moves come with the first */
        const struct store_page *p = job_id ? page_or_whole(pg) : &whole;
        json_t *key = NULL;
        size_t i;
        json_t *j;
        jt_key(jt, "runs");
        jt_arr(jt);
        json_array_foreach(jobs, i, j)
            runs_of(s, (uint64_t)json_integer_value(json_object_get(j, "id")), p, jt, &key);
        jt_arr_end(jt);
        page_next(jt, p, key);
        with_moves(s, jt, moves_fn);
    }
    jt_obj_end(jt);
    json_decref(jobs);
    return 1;
}

/* The watched jobs' runs (job ?3, or with ?3 = 0 every running job and the newest)
 * changed after ?2, in change order: a range of the index unit_runs_seq (the unary + keeps
 * the planner from reading every run of the job by its key and sorting them instead). */
#define WATCHED_SQL                                                                          \
    RUNS_SQL(" WHERE r.seq > ?2 AND (+r.job = ?3 OR ?3 = 0 AND +r.job IN (SELECT id FROM jobs"  \
             " WHERE state = 'running' OR id = (SELECT MAX(id) FROM jobs))) ORDER BY r.seq LIMIT ?1")

/* A watch's frame: the jobs and moves whole, the runs changed after since (0: every run,
 * the snapshot), at most limit of them ("more" when there may be others), and "seq", the
 * change sequence to ask from next. NULL when job_id names no job. */
static int doc_watch(struct store *s, uint64_t job_id, int64_t since, int limit, store_moves_fn moves_fn,
                     struct jtext *jt)
{
    json_t *jobs = status_jobs(s, job_id, 1);
    if (!jobs)
        return 0;
    int64_t last[2] = { 0, since };
    jt_obj(jt);
    jt_key(jt, "jobs");
    jt_json(jt, jobs);
    jt_key(jt, "runs");
    jt_arr(jt);
    int ended;
    size_t n = run_rows(s, st_query(s, WATCHED_SQL, "iiu", (int64_t)limit, since, job_id), jt, last, NULL, &ended);
    jt_arr_end(jt);
    jt_kint(jt, "seq", last[1]);
    jt_kbool(jt, "more", n == (size_t)limit);
    with_moves(s, jt, moves_fn);
    jt_obj_end(jt);
    json_decref(jobs);
    return 1;
}

/* A snapshot page's runs: the watched jobs' (in jobs, by id) in key order, job and ECID,
 * after the cursor [job, ecid] (none on the first page), up to the end of page pg;
 * *key gets the sort key of a full page's last row. */
static void snapshot_runs(struct store *s, json_t *jobs, const struct store_page *pg, struct jtext *jt, json_t **key)
{
    json_t *from = later_page(pg) ? json_loads(pg->cursor, 0, NULL) : NULL;
    int64_t from_job = json_integer_value(json_array_get(from, 0)), from_ecid = json_integer_value(json_array_get(from, 1));
    int ok = !from || (json_array_size(from) == 2 && json_is_integer(json_array_get(from, 0)) &&
                       json_is_integer(json_array_get(from, 1)));
    json_decref(from);
    if (!ok) {
        fr_warn("store", "a watch snapshot's cursor is not [job, ecid]: '%.60s'", pg->cursor);
        return;
    }
    size_t n = 0, i;
    json_t *j;
    json_array_foreach(jobs, i, j) {
        int64_t id = json_integer_value(json_object_get(j, "id")), last[2];
        if (id < from_job)
            continue;
        struct store_page rest = { "", pg->limit - (int)n };
        int ended;
        n += run_rows(s, id == from_job ? st_query(s, RUNS_SQL(" WHERE r.job = ?2 AND r.ecid > ?3 ORDER BY r.ecid LIMIT ?1"),
                                                   "iii", (int64_t)rest.limit, id, from_ecid)
                                        : st_query(s, RUNS_SQL(" WHERE r.job = ?2 ORDER BY r.ecid LIMIT ?1"), "ii",
                                                   (int64_t)rest.limit, id),
                      jt, last, &rest, &ended);
        if (ended) {
            *key = json_pack("[I, I]", (json_int_t)id, (json_int_t)last[0]);
            return;
        }
    }
}

/* A page of a watch's snapshot (proto/PROTOCOL.md "watch"): the watched jobs' runs in key
 * order, not in change order, which visits the runs' rows at random (twice the cost of a
 * status page). "seq" is the newest change when the snapshot began: since, or on its
 * first page (since 0) the store's newest; a run written after it comes with the changes
 * after the snapshot. "more" while "next" is not "". 0 when job_id names no job. */
static int doc_watch_snapshot(struct store *s, uint64_t job_id, int64_t since, const struct store_page *pg,
                              store_moves_fn moves_fn, struct jtext *jt)
{
    json_t *jobs = status_jobs(s, job_id, 1), *key = NULL;
    if (!jobs)
        return 0;
    int64_t seq = since > 0 ? since : st_scalar(s, 0, "SELECT COALESCE(MAX(seq), 0) FROM unit_runs", NULL);
    jt_obj(jt);
    jt_key(jt, "jobs");
    jt_json(jt, jobs);
    jt_key(jt, "runs");
    jt_arr(jt);
    snapshot_runs(s, jobs, pg, jt, &key);
    jt_arr_end(jt);
    jt_kint(jt, "seq", seq);
    jt_kbool(jt, "more", key != NULL);
    page_next(jt, pg, key);
    with_moves(s, jt, moves_fn);
    jt_obj_end(jt);
    json_decref(jobs);
    return 1;
}

#define UNITS_SQL(after)                                                                     \
    "SELECT u.ecid, u.product_type, u.serial, u.mode, u.agent, u.port, COALESCE(p.label, ''),"  \
    " u.present, u.last_seen, COALESCE((SELECT r.state FROM unit_runs r WHERE r.ecid = u.ecid" \
    "  ORDER BY r.job DESC LIMIT 1), ''), u.reason"                                            \
    " FROM units u LEFT JOIN ports p ON p.agent = u.agent AND p.path = u.port"                 \
    after " ORDER BY u.ecid LIMIT ?1"

/* The units in ECID order (their primary key's); the CLI shows them by port. */
static int doc_units(struct store *s, const struct store_page *pg, struct jtext *jt)
{
    sqlite3_stmt *st = page_stmt(st_query(s, later_page(pg) ? UNITS_SQL(" WHERE u.ecid > ?2") : UNITS_SQL(""),
                                             "i", (int64_t)pg->limit), pg, 2);
    json_t *key = NULL;
    jt_obj(jt);
    jt_key(jt, "units");
    jt_arr(jt);
    for (size_t n = 1; !key && st && st_step(s, st) == SQLITE_ROW; n++) {
        int present = sqlite3_column_int(st, 7);
        const char *reason = present ? col_text(st, 10) : "";
        jt_obj(jt);
        jt_kecid(jt, "ecid", st, 0);
        jt_kcol(jt, "product_type", st, 1);
        jt_kcol(jt, "serial", st, 2);
        jt_kstr(jt, "mode", fr_mode_name(sqlite3_column_int(st, 3)));
        jt_kcol(jt, "agent", st, 4);
        jt_kcol(jt, "port", st, 5);
        jt_kcol(jt, "label", st, 6);
        jt_kbool(jt, "present", present);
        jt_ktime(jt, "last_seen", st, 8);
        jt_kcol(jt, "run_state", st, 9);
        jt_kstr(jt, "state", !present ? "gone" : reason[0] ? "needs_operator" : "ready");
        jt_kstr(jt, "reason", reason);
        jt_obj_end(jt);
        if (page_ends(pg, n, jt))
            key = ecid_key(sqlite3_column_int64(st, 0));
    }
    if (st)
        sqlite3_reset(st);
    jt_arr_end(jt);
    page_next(jt, pg, key);
    jt_obj_end(jt);
    return 1;
}

#define PORTS_SQL(after)                                                                     \
    "SELECT p.agent, p.path, p.label, p.hub, p.bus, p.depth, p.power_switch, p.quarantined,"    \
    " p.strikes, p.quarantine_reason,"                                                         \
    " (SELECT json_group_array(json_object('ecid', printf('0x%016X', ecid),"                   \
    "  'at', strftime('%Y-%m-%dT%H:%M:%fZ', at / 1000.0, 'unixepoch'),"                       \
    "  'class', class)) FROM (SELECT * FROM port_strikes ps WHERE ps.agent = p.agent"          \
    "  AND ps.path = p.path ORDER BY at DESC LIMIT 5)),"                                       \
    " (SELECT u.ecid FROM units u WHERE u.agent = p.agent AND u.port = p.path AND u.present = 1)," \
    " EXISTS (SELECT 1 FROM attempts a WHERE a.agent = p.agent AND a.port = p.path"            \
    "  AND a.state IN " LIVE "),"                                                              \
    " (SELECT u.reason FROM units u WHERE u.agent = p.agent AND u.port = p.path AND u.present = 1)" \
    " FROM ports p" after " ORDER BY p.agent, p.label, p.path LIMIT ?1"

/* The ports in rack order (agent, label, path: the index ports_rack). */
static int doc_ports(struct store *s, const struct store_page *pg, struct jtext *jt)
{
    sqlite3_stmt *st = page_stmt(st_query(s, later_page(pg)
                                             ? PORTS_SQL(" WHERE (p.agent, p.label, p.path) > (?2, ?3, ?4)")
                                             : PORTS_SQL(""), "i", (int64_t)pg->limit), pg, 2);
    json_t *key = NULL;
    jt_obj(jt);
    jt_key(jt, "ports");
    jt_arr(jt);
    for (size_t n = 1; !key && st && st_step(s, st) == SQLITE_ROW; n++) {
        const char *unit_reason = col_text(st, 13);
        const char *state = sqlite3_column_int(st, 7) ? "quarantined"
                          : sqlite3_column_int(st, 12) ? "busy"
                          : unit_reason[0] ? "needs_operator" : "free";
        const char *reason = col_text(st, 9)[0] ? col_text(st, 9) : unit_reason;
        const char *history = col_text(st, 10); /* SQLite's json_group_array: compact JSON */
        jt_obj(jt);
        jt_kcol(jt, "agent", st, 0);
        jt_kcol(jt, "path", st, 1);
        jt_kcol(jt, "label", st, 2);
        jt_kcol(jt, "hub", st, 3);
        jt_kint(jt, "bus", sqlite3_column_int(st, 4));
        jt_kint(jt, "depth", sqlite3_column_int(st, 5));
        jt_kbool(jt, "power_switch", sqlite3_column_int(st, 6));
        jt_kstr(jt, "state", state);
        if (sqlite3_column_type(st, 11) == SQLITE_NULL)
            jt_kstr(jt, "ecid", "");
        else
            jt_kecid(jt, "ecid", st, 11);
        jt_kint(jt, "strikes", sqlite3_column_int(st, 8));
        jt_kstr(jt, "reason", reason);
        jt_key(jt, "history");
        jt_raw(jt, history[0] == '[' ? history : "[]");
        jt_obj_end(jt);
        if (page_ends(pg, n, jt))
            key = json_pack("[s, s, s]", col_text(st, 0), col_text(st, 2), col_text(st, 1));
    }
    if (st)
        sqlite3_reset(st);
    jt_arr_end(jt);
    page_next(jt, pg, key);
    jt_obj_end(jt);
    return 1;
}

/* The ports written since a change number with only what a tile shows: a range of the
 * index ports_seq; no jansson, no strikes history. The unit is the one the ports document
 * names (the same subquery: a port may hold more than one present unit). */
int store_rack_ports_since(struct store *s, int64_t since, int limit, store_rack_port_fn fn, void *arg)
{
    sqlite3_stmt *st = st_query(s, "SELECT p.agent, p.path, p.label, p.hub, p.quarantined, p.strikes,"
                                " p.quarantine_reason, u.ecid, u.reason, u.product_type, p.seq FROM ports p"
                                " LEFT JOIN units u ON u.ecid = (SELECT x.ecid FROM units x WHERE x.agent = p.agent"
                                "  AND x.port = p.path AND x.present = 1)"
                                " WHERE p.seq > ?1 ORDER BY p.seq LIMIT ?2", "ii", since, (int64_t)limit);
    int rc, n = 0;
    s->read_failed = 0;
    while (st && (rc = st_step(s, st)) == SQLITE_ROW) {
        char ecid[FR_ECID_STRLEN] = "";
        if (sqlite3_column_type(st, 7) != SQLITE_NULL)
            fr_ecid_format((uint64_t)sqlite3_column_int64(st, 7), ecid, sizeof ecid);
        const char *reason = col_text(st, 6)[0] ? col_text(st, 6) : col_text(st, 8);
        struct store_rack_port r = { col_text(st, 0), col_text(st, 1), col_text(st, 2), col_text(st, 3),
                                     reason, ecid, col_text(st, 9), sqlite3_column_int(st, 4),
                                     sqlite3_column_int64(st, 5), sqlite3_column_int64(st, 10) };
        fn(arg, &r);
        n++;
    }
    if (st)
        sqlite3_reset(st);
    return st && !s->read_failed ? n : FR_ESTORE;
}

char *store_rack_stamp(struct store *s)
{
    sqlite3_stmt *st = st_query(s, "SELECT (SELECT COALESCE(MAX(seq), 0) FROM unit_runs) || '|' ||"
                                " COALESCE((SELECT group_concat(id || ':' || state || ':' || name, ',') FROM"
                                " (SELECT id, state, name FROM jobs WHERE state = 'running'"
                                "  OR id = (SELECT MAX(id) FROM jobs) ORDER BY id)), '')", NULL);
    s->read_failed = 0;
    char *stamp = st && st_step(s, st) == SQLITE_ROW ? strdup(col_text(st, 0)) : NULL;
    if (st)
        sqlite3_reset(st);
    return s->read_failed ? (free(stamp), NULL) : stamp;
}

/* rows of sql (no parameters) into objects with the given keys (t = text, i = integer). */
static json_t *rows_of(struct store *s, const char *sql, const char *const *keys, const char *types)
{
    json_t *list = json_array();
    sqlite3_stmt *st = st_query(s, sql, NULL);
    while (st && st_step(s, st) == SQLITE_ROW) {
        json_t *row = json_object();
        for (int i = 0; keys[i]; i++)
            json_object_set_new(row, keys[i], types[i] == 't' ? json_string(col_text(st, i))
                                              : json_integer(sqlite3_column_int64(st, i)));
        json_array_append_new(list, row);
    }
    if (st)
        sqlite3_reset(st);
    return list;
}

static json_t *doc_metrics(struct store *s)
{
    static const char *const restore_keys[] = { "result", "class", "model", "n", NULL };
    static const char *const port_keys[] = { "agent", "path", "label", "strikes", "quarantined", NULL };
    static const char *const run_keys[] = { "state", "n", NULL };
    json_t *durations = json_array();
    sqlite3_stmt *st = st_query(s, "SELECT (ended - started) / 1000.0 FROM attempts"
                                " WHERE outcome = 'success' AND ended >= started", NULL);
    while (st && st_step(s, st) == SQLITE_ROW)
        json_array_append_new(durations, json_real(sqlite3_column_double(st, 0)));
    if (st)
        sqlite3_reset(st);
    return json_pack("{s:o, s:I, s:o, s:o, s:I, s:o}",
        "restores", rows_of(s, "SELECT a.outcome, a.error_class, COALESCE(u.product_type, ''), COUNT(*)"
                               " FROM attempts a LEFT JOIN units u ON u.ecid = a.ecid"
                               " WHERE a.state = 'ended' GROUP BY 1, 2, 3 ORDER BY 1, 2, 3",
                            restore_keys, "ttti"),
        "attempts", (json_int_t)st_scalar(s, 0, "SELECT COUNT(*) FROM attempts", NULL),
        "ports", rows_of(s, "SELECT agent, path, label, strikes, quarantined FROM ports"
                            " ORDER BY agent, path", port_keys, "tttii"),
        "runs", rows_of(s, "SELECT state, COUNT(*) FROM unit_runs GROUP BY state ORDER BY state",
                        run_keys, "ti"),
        "queue", (json_int_t)st_scalar(s, 0, "SELECT COUNT(*) FROM unit_runs r JOIN jobs j ON j.id = r.job"
                                          " WHERE j.state = 'running'"
                                          " AND r.state IN ('waiting_unit', 'needs_move', 'needs_operator')", NULL),
        "durations_s", durations);
}

static json_t *doc_agents(struct store *s)
{
    sqlite3_stmt *st = st_query(s,
        "SELECT a.id, a.hostname, a.version, a.last_seen, a.slots,"
        " (SELECT COUNT(*) FROM ports p WHERE p.agent = a.id),"
        " (SELECT COUNT(*) FROM units u WHERE u.agent = a.id AND u.present = 1),"
        " (SELECT COUNT(*) FROM attempts t WHERE t.agent = a.id AND t.state IN " LIVE ")"
        " FROM agents a ORDER BY a.id", NULL);
    json_t *agents = json_array();
    while (st && st_step(s, st) == SQLITE_ROW)
        json_array_append_new(agents, json_pack("{s:s, s:s, s:s, s:o, s:i, s:i, s:i, s:i}",
            "id", col_text(st, 0), "hostname", col_text(st, 1), "version", col_text(st, 2),
            "last_seen", col_time(st, 3), "slots", sqlite3_column_int(st, 4),
            "ports", sqlite3_column_int(st, 5), "units", sqlite3_column_int(st, 6),
            "running", sqlite3_column_int(st, 7)));
    if (st)
        sqlite3_reset(st);
    return json_pack("{s:o}", "agents", agents);
}

/* duration in whole seconds (rounded) of an attempt that has ended, else 0 */
static json_int_t duration_s(int64_t started, int64_t ended)
{
    return started > 0 && ended >= started ? (ended - started + 500) / 1000 : 0;
}

void st_attempt_obj(struct jtext *jt, sqlite3_stmt *st, int at, int full)
{
    const char *outcome = col_text(st, at + 6);
    int64_t started = sqlite3_column_int64(st, at + 4), ended = sqlite3_column_int64(st, at + 5);
    jt_obj(jt);
    jt_kint(jt, "n", sqlite3_column_int(st, at));
    jt_kcol(jt, "agent", st, at + 1);
    jt_kcol(jt, "port", st, at + 2);
    jt_kcol(jt, "label", st, at + 3);
    jt_ktime(jt, "started", st, at + 4);
    jt_ktime(jt, "ended", st, at + 5);
    jt_kint(jt, "duration_s", duration_s(started, ended));
    jt_kstr(jt, "outcome", *outcome ? outcome : col_text(st, at + 11));
    jt_kcol(jt, "error_class", st, at + 7);
    jt_kcol(jt, "error_text", st, at + 8);
    jt_kint(jt, "exit_code", sqlite3_column_int(st, at + 9));
    jt_kcol(jt, "log_path", st, at + 10);
    jt_kcol(jt, "firmware", st, at + 12);
    jt_kcol(jt, "sha256", st, at + 13);
    jt_kcol(jt, "version", st, at + 14);
    jt_kcol(jt, "build", st, at + 15);
    jt_kcol(jt, "verified", st, at + 19);
    jt_kcol(jt, "verification", st, at + 20);
    if (full) {
        jt_kcol(jt, "agent_version", st, at + 16);
        jt_kcol(jt, "engine", st, at + 17);
        jt_kcol(jt, "libimobiledevice", st, at + 18);
        jt_kint(jt, "started_ms", started);
        jt_kint(jt, "ended_ms", ended);
    }
    jt_obj_end(jt);
}

/* A run's attempts, as the array being written. */
static void attempts_of(struct store *s, uint64_t job, uint64_t ecid, int full, struct jtext *jt)
{
    sqlite3_stmt *st = st_query(s, "SELECT " ATTEMPT_DOC_COLS " FROM attempts a" ATTEMPT_DOC_JOINS
                                   " WHERE a.job = ? AND a.ecid = ? ORDER BY a.n", "uu", job, ecid);
    jt_arr(jt);
    while (st && st_step(s, st) == SQLITE_ROW)
        st_attempt_obj(jt, st, 0, full);
    if (st)
        sqlite3_reset(st);
    jt_arr_end(jt);
}

json_t *st_attempts(struct store *s, uint64_t job, uint64_t ecid, int full)
{
    struct jtext jt;
    jt_init(&jt);
    attempts_of(s, job, ecid, full, &jt);
    json_t *list = parsed(jt_take(&jt));
    if (!list)
        s->read_failed = 1;
    return list ? list : json_array();
}

/* A job's units from a page's first on, each with its attempts: a row per attempt, or one
 * with a NULL attempt for a unit that has none, in ECID and attempt order; the page ends
 * in doc_report. The attempts come by the index attempts_unit (job, ecid), whose entries
 * of one run are in id order, which is the attempts' n order (claim_one numbers an attempt
 * as it inserts it): ordering by n, or taking the units in a subquery with their LIMIT,
 * made SQLite copy the whole page into a sorter first. */
#define REPORT_SQL(after)                                                                    \
    "SELECT r.ecid, COALESCE(u.product_type, ''), COALESCE(u.serial, ''), j.firmware, r.state," \
    " r.started, r.ended, " ATTEMPT_DOC_COLS_LEAN " FROM unit_runs r JOIN jobs j ON j.id = r.job"   \
    " LEFT JOIN units u ON u.ecid = r.ecid LEFT JOIN attempts a ON a.job = r.job AND a.ecid = r.ecid" \
    ATTEMPT_DOC_JOINS_LEAN " WHERE r.job = ?2 AND (?3 = 0 OR r.ecid = ?3)" after " ORDER BY r.ecid, a.id"
#define REPORT_ATTEMPT 7 /* the column the attempt's start at */

/* A job's units in ECID order (the primary key's), the job itself with the first page;
 * NULL when there is no such job. */
static int doc_report(struct store *s, uint64_t job_id, uint64_t ecid, const struct store_page *pg,
                      struct jtext *jt)
{
    if (!job_id)
        job_id = (uint64_t)st_scalar(s, 0, "SELECT MAX(id) FROM jobs", NULL);
    json_t *jobs = later_page(pg) ? NULL
                 : jobs_from(s, st_query(s, "SELECT " JOB_COLS " FROM jobs WHERE id = ?", "u", job_id));
    if (later_page(pg) ? !st_scalar(s, 0, "SELECT COUNT(*) FROM jobs WHERE id = ?", "u", job_id)
                       : json_array_size(jobs) == 0) {
        json_decref(jobs);
        return 0;
    }
    jt_obj(jt);
    if (jobs) {
        jt_key(jt, "job");
        jt_json(jt, json_array_get(jobs, 0));
        json_decref(jobs);
    }
    sqlite3_stmt *st = page_stmt(st_query(s, later_page(pg) ? REPORT_SQL(" AND r.ecid > ?4") : REPORT_SQL(""),
                                             "iuu", (int64_t)pg->limit, job_id, ecid), pg, 4);
    json_t *key = NULL;
    size_t n = 0;
    int64_t unit = 0;
    jt_key(jt, "units");
    jt_arr(jt);
    while (st && st_step(s, st) == SQLITE_ROW) {
        if (!n || sqlite3_column_int64(st, 0) != unit) { /* a unit's first row */
            if (n && page_ends(pg, n, jt)) { /* the unit before was the page's last */
                key = ecid_key(unit);
                break;
            }
            if (n++) {
                jt_arr_end(jt);
                jt_obj_end(jt);
            }
            unit = sqlite3_column_int64(st, 0);
            jt_obj(jt);
            jt_kecid(jt, "ecid", st, 0);
            jt_kcol(jt, "product_type", st, 1);
            jt_kcol(jt, "serial", st, 2);
            jt_kcol(jt, "firmware", st, 3);
            jt_kcol(jt, "state", st, 4);
            jt_ktime(jt, "started", st, 5);
            jt_ktime(jt, "ended", st, 6);
            jt_key(jt, "attempts");
            jt_arr(jt);
        }
        if (sqlite3_column_type(st, REPORT_ATTEMPT) != SQLITE_NULL)
            st_attempt_obj(jt, st, REPORT_ATTEMPT, 0);
    }
    if (st)
        sqlite3_reset(st);
    if (n) {
        jt_arr_end(jt);
        jt_obj_end(jt);
    }
    jt_arr_end(jt);
    page_next(jt, pg, key);
    jt_obj_end(jt);
    return 1;
}

static json_t *doc_moves(struct store *s)
{
    sqlite3_stmt *st = st_query(s,
        "SELECT m.id, m.job, m.ecid, COALESCE(u.product_type, ''), m.from_agent, m.from_port,"
        " COALESCE(pf.label, ''), m.to_agent, m.to_port, COALESCE(pt.label, ''), m.dfu, m.repeats,"
        " m.created FROM moves m LEFT JOIN units u ON u.ecid = m.ecid"
        " LEFT JOIN ports pf ON pf.agent = m.from_agent AND pf.path = m.from_port"
        " LEFT JOIN ports pt ON pt.agent = m.to_agent AND pt.path = m.to_port"
        " WHERE m.done = 0 ORDER BY m.id", NULL);
    json_t *moves = json_array();
    while (st && st_step(s, st) == SQLITE_ROW) {
        const char *pt = col_text(st, 3);
        json_array_append_new(moves, json_pack("{s:I, s:I, s:o, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:b, s:i, s:o}",
            "id", (json_int_t)sqlite3_column_int64(st, 0), "job_id", (json_int_t)sqlite3_column_int64(st, 1),
            "ecid", col_ecid(st, 2), "product_type", pt, "from_agent", col_text(st, 4),
            "from_port", col_text(st, 5), "from_label", col_text(st, 6), "to_agent", col_text(st, 7),
            "to_port", col_text(st, 8), "to_label", col_text(st, 9), "dfu", sqlite3_column_int(st, 10),
            "repeats", sqlite3_column_int(st, 11), "created", col_time(st, 12)));
    }
    if (st)
        sqlite3_reset(st);
    return json_pack("{s:o}", "moves", moves);
}

/* ---- documents as the API gives them: whole, or NULL when a read failed ------------ */

json_t *st_checked(struct store *s, json_t *doc)
{
    if (!s->read_failed)
        return doc;
    json_decref(doc);
    return NULL;
}

char *store_text_status(struct store *s, uint64_t job_id, int with_runs, const struct store_page *pg,
                        store_moves_fn moves_fn)
{
    struct jtext jt;
    jt_init(&jt);
    s->read_failed = 0;
    int ok = doc_status(s, job_id, with_runs, page_or_whole(pg), moves_fn, &jt);
    return checked_text(s, &jt, ok);
}

json_t *store_doc_status(struct store *s, uint64_t job_id, int with_runs)
{
    return store_doc_status_page(s, job_id, with_runs, NULL);
}

json_t *store_doc_status_page(struct store *s, uint64_t job_id, int with_runs, const struct store_page *pg)
{
    return parsed(store_text_status(s, job_id, with_runs, pg, NULL));
}

char *store_text_watch(struct store *s, uint64_t job_id, int64_t since, int limit, store_moves_fn moves_fn)
{
    struct jtext jt;
    jt_init(&jt);
    s->read_failed = 0;
    int ok = doc_watch(s, job_id, since, limit > 0 ? limit : -1, moves_fn, &jt);
    return checked_text(s, &jt, ok);
}

char *store_text_watch_snapshot(struct store *s, uint64_t job_id, int64_t since, const struct store_page *pg,
                                store_moves_fn moves_fn)
{
    struct jtext jt;
    jt_init(&jt);
    s->read_failed = 0;
    /* the first page's cursor is "[]": a watch request without one is the change-ordered kind */
    struct store_page first = { "", pg->limit }, *p = !strcmp(pg->cursor, "[]") ? &first : NULL;
    int ok = doc_watch_snapshot(s, job_id, since, p ? p : pg, moves_fn, &jt);
    return checked_text(s, &jt, ok);
}

json_t *store_doc_watch(struct store *s, uint64_t job_id, int64_t since, int limit)
{
    return parsed(store_text_watch(s, job_id, since, limit, NULL));
}

char *store_text_units(struct store *s, const struct store_page *pg)
{
    struct jtext jt;
    jt_init(&jt);
    s->read_failed = 0;
    return checked_text(s, &jt, doc_units(s, page_or_whole(pg), &jt));
}

json_t *store_doc_units(struct store *s, const struct store_page *pg)
{
    return parsed(store_text_units(s, pg));
}

char *store_text_ports(struct store *s, const struct store_page *pg)
{
    struct jtext jt;
    jt_init(&jt);
    s->read_failed = 0;
    return checked_text(s, &jt, doc_ports(s, page_or_whole(pg), &jt));
}

json_t *store_doc_ports(struct store *s, const struct store_page *pg)
{
    return parsed(store_text_ports(s, pg));
}

json_t *store_doc_agents(struct store *s)
{
    s->read_failed = 0;
    return st_checked(s, doc_agents(s));
}

char *store_text_report(struct store *s, uint64_t job_id, uint64_t ecid, const struct store_page *pg)
{
    struct jtext jt;
    jt_init(&jt);
    s->read_failed = 0;
    return checked_text(s, &jt, doc_report(s, job_id, ecid, page_or_whole(pg), &jt));
}

json_t *store_doc_report(struct store *s, uint64_t job_id, uint64_t ecid, const struct store_page *pg)
{
    return parsed(store_text_report(s, job_id, ecid, pg));
}

json_t *store_doc_moves(struct store *s)
{
    s->read_failed = 0;
    return st_checked(s, doc_moves(s));
}

json_t *store_doc_metrics(struct store *s)
{
    s->read_failed = 0;
    return st_checked(s, doc_metrics(s));
}

/* ---- held units, one unit's history, what a submit would match ------------------------ */

#define PLAN_LISTED 100 /* skipped and unconnected units a plan names; the rest it counts */

static int unit_held(struct store *s, uint64_t ecid, int64_t *job)
{
    *job = st_scalar(s, 0, "SELECT MAX(x.job) FROM unit_runs x WHERE x.ecid = ? AND x.state = 'hardware_suspect'"
                        " AND " HELD("x.ecid"), "u", ecid);
    return *job > 0;
}

int store_unit_release(struct store *s, uint64_t ecid, uint64_t now_ms, char *err, size_t errlen)
{
    char e[FR_ECID_STRLEN];
    fr_ecid_format(ecid, e, sizeof e);
    int64_t job;
    s->read_failed = 0;
    int held = unit_held(s, ecid, &job);
    if (s->read_failed)
        return fr_seterr(FR_ESTORE, err, errlen, "cannot read unit %s: %s", e, sqlite3_errmsg(s->db));
    if (!held)
        return fr_seterr(FR_ENOTFOUND, err, errlen, "unit %s is not held (only a hardware_suspect "
                         "unit is)", e);
    int rc = store_begin(s);
    if (rc < 0) /* no savepoint: a rollback would undo the enclosing turn */
        return fr_seterr(FR_ESTORE, err, errlen, "cannot release unit %s: %s", e, sqlite3_errmsg(s->db));
    rc = store_event(s, now_ms, "unit_released", (uint64_t)job, ecid, NULL, NULL,
                     "released by an operator: it may be restored again");
    if (rc == 0)
        rc = store_commit(s);
    if (rc < 0) {
        store_rollback(s);
        return fr_seterr(FR_ESTORE, err, errlen, "cannot release unit %s: %s", e, sqlite3_errmsg(s->db));
    }
    return 0;
}

static json_t *unit_history(struct store *s, uint64_t ecid)
{
    sqlite3_stmt *st = st_query(s,
        "SELECT r.job, j.name, r.state, r.started, r.ended, r.error_class, r.error_text"
        " FROM unit_runs r JOIN jobs j ON j.id = r.job WHERE r.ecid = ? ORDER BY r.job", "u", ecid);
    json_t *list = json_array();
    while (st && st_step(s, st) == SQLITE_ROW)
        json_array_append_new(list, json_pack("{s:I, s:s, s:s, s:o, s:o, s:s, s:s}",
            "job_id", (json_int_t)sqlite3_column_int64(st, 0), "job_name", col_text(st, 1),
            "state", col_text(st, 2), "started", col_time(st, 3), "ended", col_time(st, 4),
            "error_class", col_text(st, 5), "error", col_text(st, 6)));
    if (st)
        sqlite3_reset(st);
    size_t i;
    json_t *run;
    json_array_foreach(list, i, run)
        json_object_set_new(run, "attempts",
                            st_attempts(s, (uint64_t)json_integer_value(json_object_get(run, "job_id")), ecid, 0));
    return list;
}

static json_t *doc_unit(struct store *s, uint64_t ecid)
{
    sqlite3_stmt *st = st_query(s,
        "SELECT u.ecid, u.product_type, u.serial, u.mode, u.agent, u.port, COALESCE(p.label, ''),"
        " u.present, u.last_seen, u.imei FROM units u LEFT JOIN ports p ON p.agent = u.agent AND p.path = u.port"
        " WHERE u.ecid = ?", "u", ecid);
    json_t *unit = NULL;
    if (st && st_step(s, st) == SQLITE_ROW)
        unit = json_pack("{s:o, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:b, s:o}", "ecid", col_ecid(st, 0),
            "imei", col_text(st, 9),
            "product_type", col_text(st, 1), "serial", col_text(st, 2),
            "mode", fr_mode_name(sqlite3_column_int(st, 3)), "agent", col_text(st, 4),
            "port", col_text(st, 5), "label", col_text(st, 6), "present", sqlite3_column_int(st, 7),
            "last_seen", col_time(st, 8));
    if (st)
        sqlite3_reset(st);
    json_t *history = unit_history(s, ecid);
    if (!unit && json_array_size(history) == 0) {
        json_decref(history);
        return NULL;
    }
    if (!unit) { /* named by a job, never seen */
        char e[FR_ECID_STRLEN];
        fr_ecid_format(ecid, e, sizeof e);
        unit = json_pack("{s:s, s:s, s:b}", "ecid", e, "product_type", "", "present", 0);
    }
    int64_t job;
    int held = unit_held(s, ecid, &job);
    json_object_set_new(unit, "held", json_boolean(held));
    json_object_set_new(unit, "held_by_job", json_integer(held ? job : 0));
    return json_pack("{s:o, s:o}", "unit", unit, "history", history);
}

json_t *store_doc_unit(struct store *s, uint64_t ecid)
{
    s->read_failed = 0;
    return st_checked(s, doc_unit(s, ecid));
}

/* Why a unit would not be restored by a new job now: held, or in a live job (its id). */
static const char *unit_blocked(struct store *s, uint64_t ecid, int64_t *job)
{
    if (unit_held(s, ecid, job))
        return "held";
    *job = st_scalar(s, 0, "SELECT MIN(r.job) FROM unit_runs r JOIN jobs j ON j.id = r.job"
                        " WHERE r.ecid = ? AND j.state = 'running' AND r.state NOT IN " TERMINAL, "u", ecid);
    return *job > 0 ? "in_job" : NULL;
}

/* A unit a new job could not restore now: named in the plan's first PLAN_LISTED skips,
 * counted in all of them. */
static void plan_skip(json_t *plan, uint64_t ecid, const char *why, int64_t job)
{
    json_t *total = json_object_get(plan, "skipped_total");
    json_integer_set(total, json_integer_value(total) + 1);
    json_t *list = json_object_get(plan, "skipped");
    if (json_array_size(list) >= PLAN_LISTED)
        return;
    char e[FR_ECID_STRLEN];
    fr_ecid_format(ecid, e, sizeof e);
    json_array_append_new(list, json_pack("{s:s, s:s, s:I}", "ecid", e, "why", why, "job_id", (json_int_t)job));
}

/* n more (or fewer) units the plan matched on agent ("" for units not connected). */
static void plan_count(json_t *plan, const char *agent, json_int_t n)
{
    json_t *agents = json_object_get(plan, "agents"), *v = json_object_get(agents, agent);
    json_t *matched = json_object_get(plan, "matched");
    json_integer_set(matched, json_integer_value(matched) + n);
    if (v)
        json_integer_set(v, json_integer_value(v) + n);
    else
        json_object_set_new(agents, agent, json_integer(n));
    if (v && json_integer_value(v) == 0)
        json_object_del(agents, agent);
}

/* The agents named, each once; whether a unit's port is one of the ports named (?2: its
 * agent:path or its rack label). */
#define PLAN_AGENTS "a(v) AS (SELECT DISTINCT value FROM json_each(?1))"
#define PLAN_PORT_LISTED                                                                    \
    "EXISTS (SELECT 1 FROM json_each(?2) e WHERE e.value = u.agent || ':' || u.port"          \
    " OR e.value = (SELECT label FROM ports p WHERE p.agent = u.agent AND p.path = u.port))"

/* The selector's present units per agent: through each agent named (units_port), then
 * the ports named for the units on no agent named, so that each unit counts once. */
static const char plan_counts_sql[] =
    "WITH " PLAN_AGENTS ", m(agent) AS ("
    " SELECT u.agent FROM a CROSS JOIN units u ON u.agent = a.v AND u.present = 1"
    " UNION ALL SELECT u.agent FROM units u WHERE ?2 <> '[]' AND u.present = 1"
    "  AND u.agent NOT IN (SELECT v FROM a) AND " PLAN_PORT_LISTED ")"
    " SELECT agent, COUNT(*) FROM m GROUP BY agent";

/* Of those, the units held (hardware_suspect, not released: the latest such job) or in
 * a live job (the earliest): read from the runs that make a unit so, which are few
 * next to the site, never unit by unit. */
static const char plan_blocked_sql[] =
    "WITH " PLAN_AGENTS ","
    " h(ecid, job) AS (SELECT x.ecid, MAX(x.job) FROM unit_runs x WHERE x.state = 'hardware_suspect'"
    "  AND " HELD("x.ecid") " GROUP BY x.ecid),"
    " l(ecid, job) AS (SELECT r.ecid, MIN(r.job) FROM unit_runs r JOIN jobs j ON j.id = r.job"
    "  AND j.state = 'running' WHERE r.state IN " OPEN " GROUP BY r.ecid),"
    " b(ecid, why, job) AS (SELECT ecid, 'held', job FROM h"
    "  UNION ALL SELECT ecid, 'in_job', job FROM l WHERE ecid NOT IN (SELECT ecid FROM h))"
    " SELECT b.ecid, u.agent, b.why, b.job FROM b JOIN units u ON u.ecid = b.ecid AND u.present = 1"
    " WHERE u.agent IN (SELECT v FROM a) OR (?2 <> '[]' AND " PLAN_PORT_LISTED ")"
    " ORDER BY u.agent, u.port";

/* The agents and ports named must exist (FR_ENOTFOUND naming the first that does not). */
static int plan_names_known(struct store *s, const struct job_spec *sp, char *err, size_t errlen)
{
    for (size_t i = 0; i < sp->nagents; i++)
        if (!st_scalar(s, 0, "SELECT COUNT(*) FROM agents WHERE id = ?", "t", sp->agents[i]))
            return fr_seterr(FR_ENOTFOUND, err, errlen, "submit: no agent '%s' has ever connected "
                             "(see 'flashrack agents')", sp->agents[i]);
    for (size_t i = 0; i < sp->nports; i++)
        if (!st_scalar(s, 0, "SELECT COUNT(*) FROM ports WHERE label = ? OR agent || ':' || path = ?", "tt",
                    sp->ports[i], sp->ports[i]))
            return fr_seterr(FR_ENOTFOUND, err, errlen, "submit: no port '%s' (expected a rack label "
                             "or agent:path, see 'flashrack ports')", sp->ports[i]);
    return 0;
}

/* The selector's present units (agents, ports or labels), counted per agent, less those
 * held or in a live job, which are skipped. Two set-based reads: the plan of a
 * 10,000-unit submit runs in the turn that receives it. */
static int plan_selector(struct store *s, const struct job_spec *sp, json_t *plan, char *err, size_t errlen)
{
    int rc = plan_names_known(s, sp, err, errlen);
    if (rc < 0 || sp->nagents + sp->nports == 0)
        return rc;
    char *agents = st_json_list(sp->agents, sp->nagents), *ports = st_json_list(sp->ports, sp->nports);
    const char *al = agents ? agents : "[]", *pl = ports ? ports : "[]";
    sqlite3_stmt *st = st_query(s, plan_counts_sql, "tt", al, pl);
    while (st && st_step(s, st) == SQLITE_ROW)
        plan_count(plan, col_text(st, 0), sqlite3_column_int64(st, 1));
    if (st)
        sqlite3_reset(st);
    st = st_query(s, plan_blocked_sql, "tt", al, pl);
    while (st && st_step(s, st) == SQLITE_ROW) {
        plan_count(plan, col_text(st, 1), -1);
        plan_skip(plan, (uint64_t)sqlite3_column_int64(st, 0), col_text(st, 2), sqlite3_column_int64(st, 3));
    }
    if (st)
        sqlite3_reset(st);
    free(agents);
    free(ports);
    return 0;
}

/* The units named by ECID: where each is connected (or "" and listed in "unconnected"),
 * unless held or in a live job. A request names at most what fits in one message. */
static void plan_named(struct store *s, const struct job_spec *sp, json_t *plan)
{
    json_t *unconnected = json_object_get(plan, "unconnected");
    for (size_t i = 0; i < sp->necids; i++) {
        int64_t job = 0;
        const char *why = unit_blocked(s, sp->ecids[i], &job);
        if (why) {
            plan_skip(plan, sp->ecids[i], why, job);
            continue;
        }
        sqlite3_stmt *st = st_query(s, "SELECT agent FROM units WHERE ecid = ? AND present = 1", "u", sp->ecids[i]);
        int found = st && st_step(s, st) == SQLITE_ROW;
        plan_count(plan, found ? col_text(st, 0) : "", 1);
        if (st)
            sqlite3_reset(st);
        if (!found && json_array_size(unconnected) < PLAN_LISTED) {
            char e[FR_ECID_STRLEN];
            fr_ecid_format(sp->ecids[i], e, sizeof e);
            json_array_append_new(unconnected, json_string(e));
        }
    }
}

int store_job_plan(struct store *s, const struct job_spec *sp, json_t **out, char *err, size_t errlen)
{
    s->read_failed = 0;
    json_t *plan = json_pack("{s:i, s:{}, s:[], s:[], s:i}", "matched", 0, "agents", "unconnected",
                             "skipped", "skipped_total", 0);
    if (!plan)
        return fr_seterr(FR_ENOMEM, err, errlen, "submit: out of memory");
    plan_named(s, sp, plan); /* first: a refusal names the first unit named that cannot work */
    int rc = plan_selector(s, sp, plan, err, errlen);
    if (rc == 0 && s->read_failed)
        rc = fr_seterr(FR_ESTORE, err, errlen, "cannot read the units: %s", sqlite3_errmsg(s->db));
    if (rc < 0) {
        json_decref(plan);
        return rc;
    }
    *out = plan;
    return 0;
}

/* ---- sanitization records (records.h) ------------------------------------------------ */

json_t *store_doc_records(struct store *s, uint64_t job, uint64_t ecid)
{
    s->read_failed = 0;
    sqlite3_stmt *st = st_query(s, "SELECT line FROM records WHERE (? = 0 OR job = ?)"
                                   " AND (? = 0 OR ecid = ?) ORDER BY job, ecid",
                                "uuuu", job, job, ecid, ecid);
    json_t *lines = json_array();
    while (st && st_step(s, st) == SQLITE_ROW)
        json_array_append_new(lines, json_string(col_text(st, 0)));
    if (st)
        sqlite3_reset(st);
    return st_checked(s, json_pack("{s:o}", "records", lines));
}
