/* store_records — the store's side of the sanitization records (records.h): the hook
 * called when unit runs end, the runs still without a record (due, pending), and writing
 * one (once: the table's key and triggers refuse a second, a change or a removal). */
#include <stdlib.h>

#include "fr_err.h"
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
