/* store_records — the store's side of the sanitization records (records.h): the hook
 * called when unit runs end, the runs still without a record (due, pending), what the
 * store knows of them (their facts, read a batch of runs at a time), and writing one
 * (once: the table's key and triggers refuse a second, a change or a removal). */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fr_err.h"
#include "jtext.h"
#include "store_int.h"

void store_on_run_ended(struct store *s, store_run_end_hook hook, void *arg)
{
    s->run_ended = hook;
    s->run_ended_arg = arg;
}

int st_run_ended(struct store *s, uint64_t job, uint64_t ecid, uint64_t now_ms)
{
    return s->run_ended ? s->run_ended(s->run_ended_arg, s, job, ecid, now_ms) : 0;
}

/* two statements, not "(? = 0 OR r.ecid = ?)": with that the planner walks every run of
 * the job for each ended unit, and a 10,000-unit job spent most of its CPU here */
#define MISSING "SELECT r.job, r.ecid FROM unit_runs r WHERE r.state IN " TERMINAL \
                " AND NOT EXISTS (SELECT 1 FROM records d WHERE d.job = r.job AND d.ecid = r.ecid)"

static sqlite3_stmt *missing_query(struct store *s, uint64_t job, uint64_t ecid)
{
    if (!job)
        return st_query(s, MISSING " ORDER BY r.job, r.ecid", NULL);
    return ecid ? st_query(s, MISSING " AND r.job = ? AND r.ecid = ?", "uu", job, ecid)
                : st_query(s, MISSING " AND r.job = ? ORDER BY r.ecid", "u", job);
}

int store_records_missing(struct store *s, uint64_t job, uint64_t ecid,
                          int (*cb)(void *arg, uint64_t job, uint64_t ecid), void *arg)
{
    sqlite3_stmt *st = missing_query(s, job, ecid);
    if (!st)
        return FR_ESTORE;
    size_t n = 0, cap = 0;
    uint64_t *v = NULL; /* job, ecid pairs */
    int rc = 0, row = 0;
    while (rc == 0 && (row = st_next_row(s, st)) == 1) { /* collected first: cb writes */
        uint64_t *nv = n < cap ? v : realloc(v, (cap = cap ? cap * 2 : 16) * 2 * sizeof *v);
        if (!nv)
            rc = FR_ENOMEM;
        else {
            (v = nv)[2 * n] = (uint64_t)sqlite3_column_int64(st, 0);
            v[2 * n++ + 1] = (uint64_t)sqlite3_column_int64(st, 1);
        }
    }
    sqlite3_reset(st);
    if (rc == 0 && row < 0)
        rc = FR_ESTORE;
    for (size_t i = 0; rc == 0 && i < n; i++)
        rc = cb(arg, v[2 * i], v[2 * i + 1]);
    free(v);
    return rc;
}

int64_t store_records_pending(struct store *s, uint64_t job, uint64_t ecid)
{
    return st_scalar(s, -1, "SELECT COUNT(*) FROM unit_runs r WHERE (? = 0 OR r.job = ?)"
                     " AND (? = 0 OR r.ecid = ?) AND r.state IN " TERMINAL " AND NOT EXISTS"
                     " (SELECT 1 FROM records d WHERE d.job = r.job AND d.ecid = r.ecid)",
                     "uuuu", job, job, ecid, ecid);
}

int store_record_insert(struct store *s, uint64_t job, uint64_t ecid, const char *key_id,
                        const char *line, uint64_t now_ms)
{
    return st_exec(s, "INSERT INTO records (job, ecid, written, key_id, line) VALUES (?, ?, ?, ?, ?)",
                   "uuutt", job, ecid, now_ms, key_id, line);
}

/* The runs of a batch as the JSON array [[job, ecid], ...] its statements walk with
 * json_each (malloc'ed). An ECID is stored as int64 and written so: the same bits. */
static char *runs_json(const struct store_run *runs, size_t n)
{
    char *v = malloc(n * 44 + 3), *p = v;
    if (!v)
        return NULL;
    *p++ = '[';
    for (size_t i = 0; i < n; i++)
        p += sprintf(p, "%s[%" PRId64 ",%" PRId64 "]", i ? "," : "", (int64_t)runs[i].job,
                     (int64_t)runs[i].ecid);
    strcpy(p, "]");
    return v;
}

/* json_each first (CROSS JOIN): each run is then one lookup by its key */
#define BATCH_RUNS " FROM json_each(?1) k CROSS JOIN unit_runs r ON r.job = json_extract(k.value, '$[0]')" \
                   " AND r.ecid = json_extract(k.value, '$[1]')"

static json_t *facts_row(sqlite3_stmt *st)
{
    return json_pack("{s:I, s:s, s:s, s:b, s:s, s:s, s:I, s:I, s:s, s:s, s:s, s:s, s:I, s:I, s:o, s:s, s:[]}",
        "job_id", (json_int_t)sqlite3_column_int64(st, 1), "job_name", col_text(st, 2),
        "job_firmware", col_text(st, 3), "erase", sqlite3_column_int(st, 4),
        "operator", col_text(st, 5), "state", col_text(st, 6),
        "started_ms", (json_int_t)sqlite3_column_int64(st, 7),
        "ended_ms", (json_int_t)sqlite3_column_int64(st, 8), "error_class", col_text(st, 9),
        "error_text", col_text(st, 10), "product_type", col_text(st, 11), "serial", col_text(st, 12),
        "cpid", (json_int_t)sqlite3_column_int64(st, 13),
        "bdid", (json_int_t)sqlite3_column_int64(st, 14), "ecid", col_ecid(st, 15),
        "imei", col_text(st, 16), "attempts");
}

/* The runs' own facts and their units': out[i] for each run found. */
static int read_runs(struct store *s, const char *keys, size_t n, json_t **out)
{
    sqlite3_stmt *st = st_query(s,
        "SELECT k.key, j.id, j.name, j.firmware, j.erase, j.operator, r.state, r.started, r.ended,"
        " r.error_class, r.error_text, COALESCE(u.product_type, ''), COALESCE(u.serial, ''),"
        " COALESCE(u.cpid, 0), COALESCE(u.bdid, 0), r.ecid, COALESCE(u.imei, '')" BATCH_RUNS
        " JOIN jobs j ON j.id = r.job LEFT JOIN units u ON u.ecid = r.ecid", "t", keys);
    int row = 0;
    while (st && (row = st_next_row(s, st)) == 1) {
        int64_t i = sqlite3_column_int64(st, 0);
        if (i >= 0 && (size_t)i < n && !out[i] && !(out[i] = facts_row(st)))
            row = FR_ENOMEM;
    }
    if (st)
        sqlite3_reset(st);
    return !st || row < 0 ? FR_ESTORE : 0;
}

/* The array of run i's attempts, from the text written so far (NULL: none written). */
static int set_attempts(json_t *facts, struct jtext *jt)
{
    jt_arr_end(jt);
    char *text = jt_take(jt);
    json_t *list = text ? json_loads(text, 0, NULL) : NULL;
    free(text);
    if (list && facts && json_object_set_new(facts, "attempts", list) == 0)
        return 0;
    json_decref(facts ? NULL : list); /* set_new took it even when it failed */
    return FR_ENOMEM;
}

/* The runs' attempts, in run and attempt order, each run's as one array. */
static int read_attempts(struct store *s, const char *keys, size_t n, json_t **out)
{
    sqlite3_stmt *st = st_query(s, "SELECT k.key, " ATTEMPT_DOC_COLS " FROM json_each(?1) k CROSS JOIN"
        " attempts a ON a.job = json_extract(k.value, '$[0]') AND a.ecid = json_extract(k.value, '$[1]')"
        ATTEMPT_DOC_JOINS " ORDER BY k.key, a.n", "t", keys);
    struct jtext jt;
    jt_init(&jt);
    int64_t cur = -1;
    int row = 0, rc = 0;
    while (rc == 0 && st && (row = st_next_row(s, st)) == 1) {
        int64_t i = sqlite3_column_int64(st, 0);
        if (i < 0 || (size_t)i >= n)
            continue;
        if (i != cur && cur >= 0)
            rc = set_attempts(out[cur], &jt);
        if (i != cur)
            jt_arr(&jt);
        cur = i;
        st_attempt_obj(&jt, st, 1, 1);
    }
    if (rc == 0 && cur >= 0)
        rc = set_attempts(out[cur], &jt);
    jt_release(&jt);
    if (st)
        sqlite3_reset(st);
    return rc < 0 ? rc : !st || row < 0 ? FR_ESTORE : 0;
}

int store_record_facts_batch(struct store *s, const struct store_run *runs, size_t n, json_t **out)
{
    for (size_t i = 0; i < n; i++)
        out[i] = NULL;
    char *keys = runs_json(runs, n);
    s->read_failed = 0;
    int rc = keys ? read_runs(s, keys, n, out) : FR_ENOMEM;
    if (rc == 0)
        rc = read_attempts(s, keys, n, out);
    free(keys);
    if (rc == 0 && s->read_failed)
        rc = FR_ESTORE; /* a record is never signed from half a read */
    for (size_t i = 0; rc < 0 && i < n; i++) {
        json_decref(out[i]);
        out[i] = NULL;
    }
    return rc;
}

json_t *store_record_facts(struct store *s, uint64_t job, uint64_t ecid)
{
    json_t *f = NULL;
    struct store_run run = { job, ecid };
    return store_record_facts_batch(s, &run, 1, &f) == 0 ? f : NULL;
}
