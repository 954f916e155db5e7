/* journal — the agent's results, kept across restarts; see journal.h. */
#include "journal.h"

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fr_err.h"
#include "fr_log.h"

/* v1: each result names its attempt and is marked when acknowledged (kept to answer a
 * re-sent JobAssign) instead of deleted. A v0 journal holds only unacknowledged rows. */
static const char *const upgrade_v1 =
    "BEGIN; ALTER TABLE results ADD COLUMN attempt INTEGER NOT NULL DEFAULT 0;"
    " ALTER TABLE results ADD COLUMN acked INTEGER NOT NULL DEFAULT 0;"
    " CREATE INDEX results_attempt ON results(attempt); PRAGMA user_version = 1; COMMIT";

/* v2: engines started and not yet ended with a kept result (engine_keep.h). */
static const char *const upgrade_v2 =
    "BEGIN; CREATE TABLE engines (attempt INTEGER PRIMARY KEY, job INTEGER NOT NULL,"
    " epoch INTEGER NOT NULL, ecid INTEGER NOT NULL, token_hi INTEGER NOT NULL,"
    " token_lo INTEGER NOT NULL, port_path TEXT NOT NULL, started_ms INTEGER NOT NULL,"
    " log_path TEXT NOT NULL); PRAGMA user_version = 2; COMMIT";

static int journal_version(sqlite3 *db)
{
    sqlite3_stmt *st = NULL;
    int v = -1;
    if (sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &st, NULL) == SQLITE_OK &&
        sqlite3_step(st) == SQLITE_ROW)
        v = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    return v;
}

static int journal_setup(sqlite3 *db, char **msg)
{
    if (sqlite3_exec(db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;"
                         " CREATE TABLE IF NOT EXISTS results (id INTEGER PRIMARY KEY, data BLOB NOT NULL)",
                     NULL, NULL, msg) != SQLITE_OK)
        return -1;
    int v = journal_version(db);
    if ((v == 0 && sqlite3_exec(db, upgrade_v1, NULL, NULL, msg) != SQLITE_OK) ||
        (v <= 1 && v >= 0 && sqlite3_exec(db, upgrade_v2, NULL, NULL, msg) != SQLITE_OK)) {
        sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
        return -1;
    }
    return v < 0 || v > 2 ? -1 : 0;
}

int journal_open(struct agent *a, char *err, size_t errlen)
{
    char path[600];
    snprintf(path, sizeof path, "%s/outbox.db", a->cfg.work_dir);
    sqlite3 *db = NULL;
    if (sqlite3_open(path, &db) != SQLITE_OK) {
        int rc = fr_seterr(FR_EIO, err, errlen, "cannot open the result journal '%s': %s", path,
                           db ? sqlite3_errmsg(db) : "out of memory");
        sqlite3_close(db);
        return rc;
    }
    char *msg = NULL;
    if (journal_setup(db, &msg) < 0) {
        int rc = fr_seterr(FR_EIO, err, errlen, "result journal '%s': %s", path,
                           msg ? msg : "unknown version");
        sqlite3_free(msg);
        sqlite3_close(db);
        return rc;
    }
    a->journal = db;
    return 0;
}

int64_t journal_add(struct agent *a, uint64_t attempt_id, const uint8_t *data, size_t len)
{
    sqlite3_stmt *st = NULL;
    int64_t id = 0;
    if (a->journal &&
        sqlite3_prepare_v2(a->journal, "INSERT INTO results (data, attempt) VALUES (?, ?)", -1, &st,
                           NULL) == SQLITE_OK &&
        sqlite3_bind_blob(st, 1, data, (int)len, SQLITE_TRANSIENT) == SQLITE_OK &&
        sqlite3_bind_int64(st, 2, (int64_t)attempt_id) == SQLITE_OK &&
        sqlite3_step(st) == SQLITE_DONE)
        id = sqlite3_last_insert_rowid(a->journal);
    else if (a->journal)
        fr_warn("journal", "cannot keep a result: %s (it stays in memory only)",
                sqlite3_errmsg(a->journal));
    sqlite3_finalize(st);
    return id;
}

static void exec_id(struct agent *a, const char *sql, int64_t id)
{
    sqlite3_stmt *st = NULL;
    if (a->journal && sqlite3_prepare_v2(a->journal, sql, -1, &st, NULL) == SQLITE_OK &&
        sqlite3_bind_int64(st, 1, id) == SQLITE_OK && sqlite3_step(st) != SQLITE_DONE)
        fr_warn("journal", "'%.40s': %s", sql, sqlite3_errmsg(a->journal));
    sqlite3_finalize(st);
}

void journal_acked(struct agent *a, int64_t id)
{
    if (id <= 0)
        return;
    exec_id(a, "UPDATE results SET acked = 1 WHERE id = ?", id);
    /* acknowledged results are kept only to answer re-sent assigns: the newest few thousand */
    exec_id(a, "DELETE FROM results WHERE acked = 1 AND id <= ?", id - JOURNAL_KEEP_ACKED);
}

int journal_find(struct agent *a, uint64_t attempt_id, uint8_t **data, size_t *len)
{
    sqlite3_stmt *st = NULL;
    int rc = FR_ENOTFOUND;
    if (!a->journal ||
        sqlite3_prepare_v2(a->journal, "SELECT data FROM results WHERE attempt = ? ORDER BY id DESC"
                           " LIMIT 1", -1, &st, NULL) != SQLITE_OK ||
        sqlite3_bind_int64(st, 1, (int64_t)attempt_id) != SQLITE_OK) {
        sqlite3_finalize(st);
        return a->journal ? FR_EIO : FR_ENOTFOUND;
    }
    int step = sqlite3_step(st);
    if (step == SQLITE_ROW) {
        *len = (size_t)sqlite3_column_bytes(st, 0);
        *data = malloc(*len ? *len : 1);
        rc = *data ? 0 : FR_ENOMEM;
        if (*data && *len)
            memcpy(*data, sqlite3_column_blob(st, 0), *len);
    } else if (step != SQLITE_DONE) {
        rc = FR_EIO;
    }
    sqlite3_finalize(st);
    return rc;
}

int journal_each(struct agent *a, void (*cb)(struct agent *a, int64_t id, const uint8_t *data,
                                             size_t len))
{
    sqlite3_stmt *st = NULL;
    if (!a->journal ||
        sqlite3_prepare_v2(a->journal, "SELECT id, data FROM results WHERE acked = 0 ORDER BY id",
                           -1, &st, NULL) != SQLITE_OK)
        return FR_EIO;
    int n = 0, rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        cb(a, sqlite3_column_int64(st, 0), sqlite3_column_blob(st, 1),
           (size_t)sqlite3_column_bytes(st, 1));
        n++;
    }
    if (rc != SQLITE_DONE)
        fr_error("journal", "reading the result journal: %s", sqlite3_errmsg(a->journal));
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? n : FR_EIO;
}

int journal_engine_add(struct agent *a, const struct kept_engine *k)
{
    sqlite3_stmt *st = NULL;
    int ok = a->journal &&
             sqlite3_prepare_v2(a->journal, "INSERT OR REPLACE INTO engines (attempt, job, epoch,"
                                " ecid, token_hi, token_lo, port_path, started_ms, log_path)"
                                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", -1, &st, NULL) == SQLITE_OK &&
             sqlite3_bind_int64(st, 1, (int64_t)k->ref.attempt_id) == SQLITE_OK &&
             sqlite3_bind_int64(st, 2, (int64_t)k->ref.job_id) == SQLITE_OK &&
             sqlite3_bind_int64(st, 3, (int64_t)k->ref.epoch) == SQLITE_OK &&
             sqlite3_bind_int64(st, 4, (int64_t)k->ref.ecid) == SQLITE_OK &&
             sqlite3_bind_int64(st, 5, (int64_t)k->ref.token_hi) == SQLITE_OK &&
             sqlite3_bind_int64(st, 6, (int64_t)k->ref.token_lo) == SQLITE_OK &&
             sqlite3_bind_text(st, 7, k->port_path, -1, SQLITE_TRANSIENT) == SQLITE_OK &&
             sqlite3_bind_int64(st, 8, (int64_t)k->started_ms) == SQLITE_OK &&
             sqlite3_bind_text(st, 9, k->log_path, -1, SQLITE_TRANSIENT) == SQLITE_OK &&
             sqlite3_step(st) == SQLITE_DONE;
    if (!ok && a->journal)
        fr_warn("journal", "cannot note a started engine: %s (its end is lost if this process "
                "dies first)", sqlite3_errmsg(a->journal));
    sqlite3_finalize(st);
    return ok ? 0 : FR_EIO;
}

void journal_engine_done(struct agent *a, uint64_t attempt_id)
{
    exec_id(a, "DELETE FROM engines WHERE attempt = ?", (int64_t)attempt_id);
}

static void read_kept(sqlite3_stmt *st, struct kept_engine *k)
{
    memset(k, 0, sizeof *k);
    fr__attempt_ref__init(&k->ref);
    k->ref.attempt_id = (uint64_t)sqlite3_column_int64(st, 0);
    k->ref.job_id = (uint64_t)sqlite3_column_int64(st, 1);
    k->ref.epoch = (uint64_t)sqlite3_column_int64(st, 2);
    k->ref.ecid = (uint64_t)sqlite3_column_int64(st, 3);
    k->ref.token_hi = (uint64_t)sqlite3_column_int64(st, 4);
    k->ref.token_lo = (uint64_t)sqlite3_column_int64(st, 5);
    snprintf(k->port_path, sizeof k->port_path, "%s", (const char *)sqlite3_column_text(st, 6));
    k->started_ms = (uint64_t)sqlite3_column_int64(st, 7);
    snprintf(k->log_path, sizeof k->log_path, "%s", (const char *)sqlite3_column_text(st, 8));
}

/* Read whole first, then handed out: cb deletes rows of the table being read. */
int journal_engines_each(struct agent *a, void (*cb)(struct agent *a, const struct kept_engine *k))
{
    sqlite3_stmt *st = NULL;
    if (!a->journal ||
        sqlite3_prepare_v2(a->journal, "SELECT attempt, job, epoch, ecid, token_hi, token_lo,"
                           " port_path, started_ms, log_path FROM engines ORDER BY attempt", -1,
                           &st, NULL) != SQLITE_OK)
        return FR_EIO;
    struct kept_engine *all = NULL;
    size_t n = 0, cap = 0;
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (n == cap) {
            struct kept_engine *more = realloc(all, (cap = cap ? cap * 2 : 16) * sizeof *all);
            if (!more) {
                rc = SQLITE_NOMEM;
                break;
            }
            all = more;
        }
        read_kept(st, &all[n++]);
    }
    if (rc != SQLITE_DONE)
        fr_error("journal", "reading the started engines: %s", sqlite3_errstr(rc));
    sqlite3_finalize(st);
    for (size_t i = 0; i < n; i++)
        cb(a, &all[i]);
    free(all);
    return rc == SQLITE_DONE ? (int)n : FR_EIO;
}

void journal_close(struct agent *a)
{
    sqlite3_close(a->journal);
    a->journal = NULL;
}
