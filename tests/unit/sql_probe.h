/* sql_probe — what another connection sees in a store: the tests' way to tell that
 * something was committed (and not only written inside a transaction); and a store's
 * files removed between two scenarios. */
#ifndef SQL_PROBE_H
#define SQL_PROBE_H

#include <sqlite3.h>
#include <stdint.h>
#include <stdio.h>
#include <unistd.h>

/* The first column of the first row of query on the database at path (a fresh
 * connection each time). */
static inline int64_t sql_probe(const char *path, const char *query)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    int64_t v = -1;
    if (sqlite3_open(path, &db) == SQLITE_OK &&
        sqlite3_prepare_v2(db, query, -1, &st, NULL) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW)
        v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    sqlite3_close(db);
    return v;
}

/* Removes the store at path with its -wal, -shm and .lock files. */
static inline void sql_probe_remove(const char *path)
{
    char p[1100];
    const char *sfx[] = { "", "-wal", "-shm", ".lock" };
    for (int i = 0; i < 4; i++) {
        snprintf(p, sizeof p, "%s%s", path, sfx[i]);
        unlink(p);
    }
}

#endif
