/* journal — unacknowledged results kept across agent restarts; see journal.h. */
#include "journal.h"

#include <sqlite3.h>
#include <stdio.h>

#include "fr_err.h"
#include "fr_log.h"

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
    if (sqlite3_exec(db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;"
                         " CREATE TABLE IF NOT EXISTS results (id INTEGER PRIMARY KEY, data BLOB NOT NULL)",
                     NULL, NULL, &msg) != SQLITE_OK) {
        int rc = fr_seterr(FR_EIO, err, errlen, "result journal '%s': %s", path, msg ? msg : "?");
        sqlite3_free(msg);
        sqlite3_close(db);
        return rc;
    }
    a->journal = db;
    return 0;
}

int64_t journal_add(struct agent *a, const uint8_t *data, size_t len)
{
    sqlite3_stmt *st = NULL;
    int64_t id = 0;
    if (a->journal &&
        sqlite3_prepare_v2(a->journal, "INSERT INTO results (data) VALUES (?)", -1, &st, NULL) == SQLITE_OK &&
        sqlite3_bind_blob(st, 1, data, (int)len, SQLITE_TRANSIENT) == SQLITE_OK &&
        sqlite3_step(st) == SQLITE_DONE)
        id = sqlite3_last_insert_rowid(a->journal);
    else if (a->journal)
        fr_warn("journal", "cannot keep a result: %s (it stays in memory only)",
                sqlite3_errmsg(a->journal));
    sqlite3_finalize(st);
    return id;
}

void journal_remove(struct agent *a, int64_t id)
{
    sqlite3_stmt *st = NULL;
    if (a->journal && id > 0 &&
        sqlite3_prepare_v2(a->journal, "DELETE FROM results WHERE id = ?", -1, &st, NULL) == SQLITE_OK &&
        sqlite3_bind_int64(st, 1, id) == SQLITE_OK)
        sqlite3_step(st);
    sqlite3_finalize(st);
}

int journal_each(struct agent *a, void (*cb)(struct agent *a, int64_t id, const uint8_t *data,
                                             size_t len))
{
    sqlite3_stmt *st = NULL;
    if (!a->journal ||
        sqlite3_prepare_v2(a->journal, "SELECT id, data FROM results ORDER BY id", -1, &st, NULL) != SQLITE_OK)
        return FR_EIO;
    int n = 0;
    while (sqlite3_step(st) == SQLITE_ROW) {
        cb(a, sqlite3_column_int64(st, 0), sqlite3_column_blob(st, 1),
           (size_t)sqlite3_column_bytes(st, 1));
        n++;
    }
    sqlite3_finalize(st);
    return n;
}

void journal_close(struct agent *a)
{
    sqlite3_close(a->journal);
    a->journal = NULL;
}
