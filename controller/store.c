/* store — the schema and its upgrades, the statement helpers every store_*.c uses, opening,
 * closing, transactions, backups and events; see store.h (the interface) and store_int.h. */
#include "store.h"
#include "store_int.h"

#include <sqlite3.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <sys/file.h>
#include <unistd.h>

#include "fr_err.h"
#include "fr_log.h"

#define SCHEMA_VERSION 14

static const char *const schema[] = {
    "CREATE TABLE meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL)",
    "INSERT INTO meta VALUES ('controller_epoch', 0), ('lease_epoch', 0)",
    "CREATE TABLE agents (id TEXT PRIMARY KEY, hostname TEXT NOT NULL DEFAULT '',"
    " version TEXT NOT NULL DEFAULT '', slots INTEGER NOT NULL DEFAULT 0,"
    " last_seen INTEGER NOT NULL DEFAULT 0)",
    "CREATE TABLE ports (agent TEXT NOT NULL, path TEXT NOT NULL, label TEXT NOT NULL DEFAULT '',"
    " hub TEXT NOT NULL DEFAULT '', bus INTEGER NOT NULL DEFAULT 0, depth INTEGER NOT NULL DEFAULT 0,"
    " power_switch INTEGER NOT NULL DEFAULT 0, strikes INTEGER NOT NULL DEFAULT 0,"
    " quarantined INTEGER NOT NULL DEFAULT 0, quarantine_reason TEXT NOT NULL DEFAULT '',"
    " PRIMARY KEY (agent, path))",
    "CREATE TABLE units (ecid INTEGER PRIMARY KEY, product_type TEXT NOT NULL DEFAULT '',"
    " cpid INTEGER NOT NULL DEFAULT 0, bdid INTEGER NOT NULL DEFAULT 0,"
    " serial TEXT NOT NULL DEFAULT '', mode INTEGER NOT NULL DEFAULT 0,"
    " agent TEXT NOT NULL DEFAULT '', port TEXT NOT NULL DEFAULT '',"
    " present INTEGER NOT NULL DEFAULT 0, last_seen INTEGER NOT NULL DEFAULT 0)",
    "CREATE TABLE jobs (id INTEGER PRIMARY KEY, key TEXT NOT NULL UNIQUE, name TEXT NOT NULL,"
    " firmware TEXT NOT NULL, sha256 TEXT NOT NULL DEFAULT '', erase INTEGER NOT NULL,"
    " agents TEXT NOT NULL DEFAULT '[]', ports TEXT NOT NULL DEFAULT '[]',"
    " count INTEGER NOT NULL DEFAULT 0, standing INTEGER NOT NULL DEFAULT 0,"
    " max_attempts INTEGER NOT NULL DEFAULT 3, same_port INTEGER NOT NULL DEFAULT 0,"
    " state TEXT NOT NULL DEFAULT 'running',"
    " created INTEGER NOT NULL, finished INTEGER NOT NULL DEFAULT 0)",
    "CREATE TABLE unit_runs (job INTEGER NOT NULL REFERENCES jobs(id), ecid INTEGER NOT NULL,"
    " state TEXT NOT NULL DEFAULT 'waiting_unit', attempts INTEGER NOT NULL DEFAULT 0,"
    " error_class TEXT NOT NULL DEFAULT '', error_text TEXT NOT NULL DEFAULT '',"
    " started INTEGER NOT NULL DEFAULT 0, ended INTEGER NOT NULL DEFAULT 0,"
    " step INTEGER NOT NULL DEFAULT 0, fraction REAL NOT NULL DEFAULT 0,"
    " status TEXT NOT NULL DEFAULT '', updated INTEGER NOT NULL DEFAULT 0,"
    " avoid TEXT NOT NULL DEFAULT '[]', from_dfu INTEGER NOT NULL DEFAULT 0,"
    " PRIMARY KEY (job, ecid))",
    "CREATE TABLE port_strikes (agent TEXT NOT NULL, path TEXT NOT NULL, ecid INTEGER NOT NULL,"
    " at INTEGER NOT NULL, class TEXT NOT NULL)",
    "CREATE TABLE moves (id INTEGER PRIMARY KEY, job INTEGER NOT NULL, ecid INTEGER NOT NULL,"
    " from_agent TEXT NOT NULL, from_port TEXT NOT NULL, to_agent TEXT NOT NULL,"
    " to_port TEXT NOT NULL, dfu INTEGER NOT NULL DEFAULT 0, repeats INTEGER NOT NULL DEFAULT 0,"
    " created INTEGER NOT NULL, done INTEGER NOT NULL DEFAULT 0)",
    "CREATE TABLE attempts (id INTEGER PRIMARY KEY, job INTEGER NOT NULL REFERENCES jobs(id),"
    " ecid INTEGER NOT NULL, n INTEGER NOT NULL, agent TEXT NOT NULL, port TEXT NOT NULL,"
    " epoch INTEGER NOT NULL, state TEXT NOT NULL, outcome TEXT NOT NULL DEFAULT '',"
    " error_class TEXT NOT NULL DEFAULT '', error_text TEXT NOT NULL DEFAULT '',"
    " exit_code INTEGER NOT NULL DEFAULT 0, log_path TEXT NOT NULL DEFAULT '',"
    " started INTEGER NOT NULL, ended INTEGER NOT NULL DEFAULT 0)",
    "CREATE INDEX attempts_live ON attempts(state, agent)",
    "CREATE INDEX attempts_unit ON attempts(job, ecid)",
    "CREATE TABLE events (id INTEGER PRIMARY KEY, at INTEGER NOT NULL, kind TEXT NOT NULL,"
    " job INTEGER NOT NULL DEFAULT 0, ecid INTEGER NOT NULL DEFAULT 0,"
    " agent TEXT NOT NULL DEFAULT '', port TEXT NOT NULL DEFAULT '', text TEXT NOT NULL)",
};

/* v2: the firmware an attempt was given (a catalog selector resolves per model). */
static const char *const schema_v2[] = {
    "ALTER TABLE attempts ADD COLUMN firmware TEXT NOT NULL DEFAULT ''",
    "ALTER TABLE attempts ADD COLUMN sha256 TEXT NOT NULL DEFAULT ''",
};

/* v3: each attempt's token (128 random bits, proto/PROTOCOL.md "Attempt tokens").
 * Attempts from before keep token 0, which their agents (which never saw a token)
 * send back; every attempt claimed from now on draws a random one. */
static const char *const schema_v3[] = {
    "ALTER TABLE attempts ADD COLUMN token_hi INTEGER NOT NULL DEFAULT 0",
    "ALTER TABLE attempts ADD COLUMN token_lo INTEGER NOT NULL DEFAULT 0",
};

/* v4: refusals in a row of a run's attempts, and when it may be assigned again. */
static const char *const schema_v4[] = {
    "ALTER TABLE unit_runs ADD COLUMN refusals INTEGER NOT NULL DEFAULT 0",
    "ALTER TABLE unit_runs ADD COLUMN not_before INTEGER NOT NULL DEFAULT 0",
};

/* v5: the indexes the scheduler's queries need (each checked with EXPLAIN QUERY PLAN):
 * a site of thousands of units scanned whole tables per unit without them. */
static const char *const schema_v5[] = {
    "CREATE INDEX IF NOT EXISTS units_port ON units(agent, port)",
    "CREATE INDEX IF NOT EXISTS unit_runs_ecid ON unit_runs(ecid)",
    "CREATE INDEX IF NOT EXISTS unit_runs_state ON unit_runs(state, job)",
    "CREATE INDEX IF NOT EXISTS attempts_ecid ON attempts(ecid, state)",
    "CREATE INDEX IF NOT EXISTS attempts_port ON attempts(agent, port, state)",
    "CREATE INDEX IF NOT EXISTS moves_open ON moves(job, ecid, done)",
    "CREATE INDEX IF NOT EXISTS moves_to ON moves(to_agent, to_port, done)",
};

/* v6: why a unit's agent cannot use it, with the fix ("" = it can: UnitInfo.reason). */
static const char *const schema_v6[] = {
    "ALTER TABLE units ADD COLUMN reason TEXT NOT NULL DEFAULT ''",
};

/* v7: the signed sanitization record of each ended unit run (records.h), immutable: no
 * statement here updates or deletes one, and triggers refuse it to anyone else; the
 * operator who submitted a job; the iOS version and build of an attempt's firmware; the
 * engine and libimobiledevice an agent runs. */
static const char *const schema_v7[] = {
    "ALTER TABLE jobs ADD COLUMN operator TEXT NOT NULL DEFAULT ''",
    "ALTER TABLE attempts ADD COLUMN fw_version TEXT NOT NULL DEFAULT ''",
    "ALTER TABLE attempts ADD COLUMN fw_build TEXT NOT NULL DEFAULT ''",
    "ALTER TABLE agents ADD COLUMN engine TEXT NOT NULL DEFAULT ''",
    "ALTER TABLE agents ADD COLUMN libimobiledevice TEXT NOT NULL DEFAULT ''",
    "CREATE TABLE records (job INTEGER NOT NULL REFERENCES jobs(id), ecid INTEGER NOT NULL,"
    " written INTEGER NOT NULL, key_id TEXT NOT NULL, line TEXT NOT NULL, PRIMARY KEY (job, ecid))",
    "CREATE INDEX records_ecid ON records(ecid)",
    "CREATE TRIGGER records_no_update BEFORE UPDATE ON records"
    " BEGIN SELECT RAISE(ABORT, 'sanitization records are immutable'); END",
    "CREATE TRIGGER records_no_delete BEFORE DELETE ON records"
    " BEGIN SELECT RAISE(ABORT, 'sanitization records are immutable'); END",
};

/* v8: when a unit last arrived (plugged in, or in another mode): a run waiting for an
 * operator starts again only after the unit did. */
static const char *const schema_v8[] = {
    "ALTER TABLE units ADD COLUMN arrived INTEGER NOT NULL DEFAULT 0",
};

/* v9: the indexes the documents' pages are read in (each checked with EXPLAIN QUERY PLAN):
 * ports in rack order (a page is a range of it, not a sort of every port), and a port's
 * newest strikes (looked up for every port of a page). */
static const char *const schema_v9[] = {
    "CREATE INDEX IF NOT EXISTS ports_rack ON ports(agent, label, path)",
    "CREATE INDEX IF NOT EXISTS port_strikes_port ON port_strikes(agent, path, at)",
};

/* v10: the change sequence of unit runs, for a watch that reads a snapshot and then only
 * what changed (store_doc_watch): every write of a run's shown columns, or of its unit's
 * port, stamps the run with the next number, one above every run's; indexed, so the runs
 * changed after a number are a range. Triggers stamp it, so that no writer can forget
 * to; the runs stored before are numbered in rowid order. */
static const char *const schema_v10[] = {
    "ALTER TABLE unit_runs ADD COLUMN seq INTEGER NOT NULL DEFAULT 0",
    "UPDATE unit_runs SET seq = rowid",
    "CREATE INDEX unit_runs_seq ON unit_runs(seq)",
    "CREATE TRIGGER unit_runs_added AFTER INSERT ON unit_runs BEGIN"
    " UPDATE unit_runs SET seq = (SELECT COALESCE(MAX(seq), 0) FROM unit_runs) + 1 WHERE rowid = NEW.rowid; END",
    "CREATE TRIGGER unit_runs_changed AFTER UPDATE OF state, attempts, error_class, error_text,"
    " started, ended, step, fraction, status, updated ON unit_runs BEGIN"
    " UPDATE unit_runs SET seq = (SELECT COALESCE(MAX(seq), 0) FROM unit_runs) + 1 WHERE rowid = NEW.rowid; END",
    /* a run shows its unit's port until an attempt names one: when the port (or model)
     * changes, not at every report of the unit, each run is stamped in turn (through
     * unit_runs_changed), so that no two share a number */
    "CREATE TRIGGER units_moved AFTER UPDATE OF agent, port, product_type ON units"
    " WHEN OLD.agent IS NOT NEW.agent OR OLD.port IS NOT NEW.port"
    " OR OLD.product_type IS NOT NEW.product_type BEGIN"
    " UPDATE unit_runs SET status = status WHERE ecid = NEW.ecid; END",
};

/* v11: what the unit said after a finished restore (its ProductVersion and BuildVersion
 * read back in normal mode) and the verdict against what was installed (verify.h). */
static const char *const schema_v11[] = {
    "ALTER TABLE attempts ADD COLUMN unit_version TEXT NOT NULL DEFAULT ''",
    "ALTER TABLE attempts ADD COLUMN unit_build TEXT NOT NULL DEFAULT ''",
    "ALTER TABLE attempts ADD COLUMN verified TEXT NOT NULL DEFAULT ''",
    "ALTER TABLE attempts ADD COLUMN verification TEXT NOT NULL DEFAULT ''",
};

/* v12: a unit's IMEI where an agent could read it ("" = not known). */
static const char *const schema_v12[] = {
    "ALTER TABLE units ADD COLUMN imei TEXT NOT NULL DEFAULT ''",
};

/* v13: the writers of the hot paths (a run's progress, its end, a refusal) stamp the change
 * sequence in their own UPDATE (NEXT_SEQ, store_int.h); the trigger stamps only a write
 * that left seq as it was, so that every other writer is still numbered and none twice.
 * Before, every progress item was two UPDATEs of its run: the writer's and the trigger's. */
static const char *const schema_v13[] = {
    "DROP TRIGGER unit_runs_changed",
    "CREATE TRIGGER unit_runs_changed AFTER UPDATE OF state, attempts, error_class, error_text,"
    " started, ended, step, fraction, status, updated ON unit_runs WHEN NEW.seq = OLD.seq BEGIN"
    " UPDATE unit_runs SET seq = (SELECT COALESCE(MAX(seq), 0) FROM unit_runs) + 1 WHERE rowid = NEW.rowid; END",
};

/* v14: the change sequence of ports, for the rack page (page_rack.h), which reads only the
 * ports written since its last reading: a port is stamped with the next number when it is
 * added, when a column its tile shows changes (label, hub, strikes, quarantine), and when
 * a unit comes, goes or changes on it (present, agent, port, model, reason: its old port
 * and its new one, each with its own number). Triggers stamp it, WHEN the value really
 * changed, so that a Hello that says what the store holds stamps nothing; the ports
 * stored before are numbered in rowid order. */
#define PORT_NEXT_SEQ "(SELECT COALESCE(MAX(seq), 0) FROM ports) + 1"
static const char *const schema_v14[] = {
    "ALTER TABLE ports ADD COLUMN seq INTEGER NOT NULL DEFAULT 0",
    "UPDATE ports SET seq = rowid",
    "CREATE INDEX ports_seq ON ports(seq)",
    "CREATE TRIGGER ports_added AFTER INSERT ON ports BEGIN"
    " UPDATE ports SET seq = " PORT_NEXT_SEQ " WHERE rowid = NEW.rowid; END",
    "CREATE TRIGGER ports_changed AFTER UPDATE OF label, hub, strikes, quarantined, quarantine_reason"
    " ON ports WHEN OLD.label IS NOT NEW.label OR OLD.hub IS NOT NEW.hub OR OLD.strikes IS NOT NEW.strikes"
    " OR OLD.quarantined IS NOT NEW.quarantined OR OLD.quarantine_reason IS NOT NEW.quarantine_reason BEGIN"
    " UPDATE ports SET seq = " PORT_NEXT_SEQ " WHERE rowid = NEW.rowid; END",
    "CREATE TRIGGER units_added_to_port AFTER INSERT ON units WHEN NEW.present = 1 BEGIN"
    " UPDATE ports SET seq = " PORT_NEXT_SEQ " WHERE agent = NEW.agent AND path = NEW.port; END",
    "CREATE TRIGGER units_changed_on_port AFTER UPDATE OF agent, port, present, product_type, reason ON units"
    " WHEN OLD.agent IS NOT NEW.agent OR OLD.port IS NOT NEW.port OR OLD.present IS NOT NEW.present"
    " OR OLD.product_type IS NOT NEW.product_type OR OLD.reason IS NOT NEW.reason BEGIN"
    " UPDATE ports SET seq = " PORT_NEXT_SEQ " WHERE agent = OLD.agent AND path = OLD.port;"
    " UPDATE ports SET seq = " PORT_NEXT_SEQ " WHERE agent = NEW.agent AND path = NEW.port"
    "  AND (OLD.agent IS NOT NEW.agent OR OLD.port IS NOT NEW.port); END",
};

/* upgrades[v] brings a store from version v to v + 1. */
static const struct {
    const char *const *sql;
    size_t n;
} upgrades[SCHEMA_VERSION] = {
    { schema, sizeof schema / sizeof schema[0] },
    { schema_v2, sizeof schema_v2 / sizeof schema_v2[0] },
    { schema_v3, sizeof schema_v3 / sizeof schema_v3[0] },
    { schema_v4, sizeof schema_v4 / sizeof schema_v4[0] },
    { schema_v5, sizeof schema_v5 / sizeof schema_v5[0] },
    { schema_v6, sizeof schema_v6 / sizeof schema_v6[0] },
    { schema_v7, sizeof schema_v7 / sizeof schema_v7[0] },
    { schema_v8, sizeof schema_v8 / sizeof schema_v8[0] },
    { schema_v9, sizeof schema_v9 / sizeof schema_v9[0] },
    { schema_v10, sizeof schema_v10 / sizeof schema_v10[0] },
    { schema_v11, sizeof schema_v11 / sizeof schema_v11[0] },
    { schema_v12, sizeof schema_v12 / sizeof schema_v12[0] },
    { schema_v13, sizeof schema_v13 / sizeof schema_v13[0] },
    { schema_v14, sizeof schema_v14 / sizeof schema_v14[0] },
};


/* ---- statement helpers --------------------------------------------------- */

/* Every prepare and step goes through these two: a test build (FR_STORE_FAULTS) can make
 * the nth of them fail, as SQLite's own tests do, and an error inside a transaction
 * poisons it: store_commit() refuses it, so nothing half-read is committed. */
static int fault(struct store *s)
{
#ifdef FR_STORE_FAULTS
    s->fault_calls++;
    if (s->fault_at && s->fault_calls == s->fault_at)
        return s->fault_code;
#else
    (void)s;
#endif
    return SQLITE_OK;
}

#ifdef FR_STORE_FAULTS
static int interrupt_now(void *arg)
{
    (void)arg;
    return 1;
}

static int fault_sql(struct store *s, sqlite3_stmt *st)
{
    if (!s->fault_sql || strncmp(sqlite3_sql(st), s->fault_sql, strlen(s->fault_sql)) != 0)
        return SQLITE_OK;
    return ++s->fault_sql_steps == s->fault_sql_at ? s->fault_sql_code : SQLITE_OK;
}
#endif

/* SQLite rolls a whole transaction back by itself after some errors of a statement that
 * writes (an interrupt, an I/O error, a full disk or memory), and what followed would then
 * run, and commit, outside it: a SAVEPOINT would open a transaction of its own, and its
 * RELEASE commit it. A transaction lost that way is poisoned, and no statement runs until
 * its owner rolls it back. */
static int txn_lost(struct store *s)
{
    if (s->depth == 0 || !sqlite3_get_autocommit(s->db))
        return 0;
    if (!s->txn_gone)
        fr_error("store", "the open transaction was rolled back by SQLite: nothing more runs in it "
                 "until it is rolled back");
    s->txn_gone = s->txn_failed = 1;
    return 1;
}

int st_step(struct store *s, sqlite3_stmt *st)
{
    int rc = txn_lost(s) ? SQLITE_ABORT : fault(s);
#ifdef FR_STORE_FAULTS
    if (rc == SQLITE_OK)
        rc = fault_sql(s, st);
    if (rc == SQLITE_INTERRUPT) { /* an interrupt for real: SQLite ends a writer's transaction */
        sqlite3_progress_handler(s->db, 1, interrupt_now, NULL);
        rc = sqlite3_step(st);
        sqlite3_progress_handler(s->db, 0, NULL, NULL);
    }
#endif
    if (rc == SQLITE_OK)
        rc = sqlite3_step(st);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
        fr_error("store", "'%.60s': %s", sqlite3_sql(st),
                 (s->fault_code && rc == s->fault_code) || (s->fault_sql && rc == s->fault_sql_code)
                 ? sqlite3_errstr(rc) : sqlite3_errmsg(s->db));
        s->txn_failed |= s->in_txn;
        s->read_failed = 1;
        txn_lost(s);
    }
    return rc;
}

/* A reader loop's step: 1 = a row, 0 = no more rows, FR_ESTORE = an error (BUSY, IOERR...),
 * which is never taken for the end of the rows. */
int st_next_row(struct store *s, sqlite3_stmt *st)
{
    int rc = st_step(s, st);
    return rc == SQLITE_ROW ? 1 : rc == SQLITE_DONE ? 0 : FR_ESTORE;
}

/* The statement cache grows as needed (every statement is a string literal of the store's
 * files, so it is bounded by the code) and is finalized at close. */
static sqlite3_stmt *prep(struct store *s, const char *sql)
{
    for (size_t i = 0; i < s->ncache; i++)
        if (s->cache[i].sql == sql) {
            sqlite3_reset(s->cache[i].st);
            sqlite3_clear_bindings(s->cache[i].st);
            return s->cache[i].st;
        }
    if (s->ncache == s->cache_cap) {
        size_t cap = s->cache_cap ? 2 * s->cache_cap : 32;
        void *grown = realloc(s->cache, cap * sizeof *s->cache);
        if (!grown) {
            fr_error("store", "cannot prepare '%.60s': out of memory", sql);
            s->txn_failed |= s->in_txn;
        s->read_failed = 1;
            return NULL;
        }
        s->cache = grown;
        s->cache_cap = cap;
    }
    sqlite3_stmt *st = NULL;
    int rc = fault(s);
    if (rc == SQLITE_OK)
        rc = sqlite3_prepare_v2(s->db, sql, -1, &st, NULL);
    if (rc != SQLITE_OK) {
        fr_error("store", "cannot prepare '%.60s': %s", sql, st ? sqlite3_errmsg(s->db) : sqlite3_errstr(rc));
        sqlite3_finalize(st);
        s->txn_failed |= s->in_txn;
        s->read_failed = 1;
        return NULL;
    }
    s->cache[s->ncache].sql = sql;
    s->cache[s->ncache].st = st;
    s->ncache++;
    return st;
}

/* Binds by a format: t = text, i = int64, u = uint64 (stored as int64), d = double. */
static int bindv(sqlite3_stmt *st, const char *fmt, va_list ap)
{
    for (int i = 1; fmt && *fmt; fmt++, i++) {
        int rc;
        switch (*fmt) {
        case 't': rc = sqlite3_bind_text(st, i, va_arg(ap, const char *), -1, SQLITE_TRANSIENT); break;
        case 'i': rc = sqlite3_bind_int64(st, i, va_arg(ap, int64_t)); break;
        case 'u': rc = sqlite3_bind_int64(st, i, (int64_t)va_arg(ap, uint64_t)); break;
        case 'd': rc = sqlite3_bind_double(st, i, va_arg(ap, double)); break;
        default: return FR_EINVAL;
        }
        if (rc != SQLITE_OK)
            return FR_ESTORE;
    }
    return 0;
}

static sqlite3_stmt *queryv(struct store *s, const char *sql, const char *fmt, va_list ap)
{
    sqlite3_stmt *st = prep(s, sql);
    if (st && bindv(st, fmt, ap) < 0) {
        s->txn_failed |= s->in_txn;
        s->read_failed = 1;
        return NULL;
    }
    return st;
}

sqlite3_stmt *st_query(struct store *s, const char *sql, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    sqlite3_stmt *st = queryv(s, sql, fmt, ap);
    va_end(ap);
    return st;
}

int st_exec(struct store *s, const char *sql, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    sqlite3_stmt *st = queryv(s, sql, fmt, ap);
    va_end(ap);
    if (!st)
        return FR_ESTORE;
    int rc = st_step(s, st);
    sqlite3_reset(st);
    return rc == SQLITE_DONE || rc == SQLITE_ROW ? 0 : FR_ESTORE;
}

/* The first column of the first row: 0 with *v set, FR_ENOTFOUND (no row or NULL), or
 * FR_ESTORE. */
static int scalarv(struct store *s, int64_t *v, const char *sql, const char *fmt, va_list ap)
{
    sqlite3_stmt *st = queryv(s, sql, fmt, ap);
    if (!st)
        return FR_ESTORE;
    int rc = st_next_row(s, st);
    int found = rc == 1 && sqlite3_column_type(st, 0) != SQLITE_NULL;
    if (found)
        *v = sqlite3_column_int64(st, 0);
    sqlite3_reset(st);
    return rc < 0 ? rc : found ? 0 : FR_ENOTFOUND;
}

int st_scalar_rc(struct store *s, int64_t *v, const char *sql, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = scalarv(s, v, sql, fmt, ap);
    va_end(ap);
    return rc;
}

/* scalar_rc with a default for no row; an error also gives the default, and poisons the
 * transaction it happens in. */
int64_t st_scalar(struct store *s, int64_t dflt, const char *sql, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int64_t v = dflt;
    if (scalarv(s, &v, sql, fmt, ap) < 0)
        v = dflt;
    va_end(ap);
    return v;
}

char *st_json_list(char *const *v, size_t n)
{
    json_t *a = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(a, json_string(v[i]));
    char *text = json_dumps(a, JSON_COMPACT);
    json_decref(a);
    return text;
}

char *st_ecid_list(const uint64_t *ecids, size_t n)
{
    char *text = malloc(n * 21 + 3), *p = text;
    if (!text)
        return NULL;
    *p++ = '[';
    for (size_t i = 0; i < n; i++)
        p += sprintf(p, "%s%" PRId64, i ? "," : "", (int64_t)ecids[i]);
    strcpy(p, "]");
    return text;
}

/* ---- open / close ---------------------------------------------------------- */

static int run_sql(sqlite3 *db, const char *sql, char *err, size_t errlen)
{
    char *msg = NULL;
    if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK) {
        fr_seterr(FR_ESTORE, err, errlen, "%s", msg ? msg : sqlite3_errmsg(db));
        sqlite3_free(msg);
        return FR_ESTORE;
    }
    return 0;
}

static int migrate(sqlite3 *db, char *err, size_t errlen)
{
    sqlite3_stmt *st;
    int version = -1;
    if (sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &st, NULL) == SQLITE_OK) {
        if (sqlite3_step(st) == SQLITE_ROW)
            version = sqlite3_column_int(st, 0);
        sqlite3_finalize(st);
    }
    if (version == -1) /* not "version 0": that would create a schema over a store we cannot read */
        return fr_seterr(FR_ESTORE, err, errlen, "cannot read its schema version: %s",
                         sqlite3_errmsg(db));
    if (version == SCHEMA_VERSION)
        return 0;
    if (version < 0 || version > SCHEMA_VERSION)
        return fr_seterr(FR_ESTORE, err, errlen, "schema version %d, this flashrackd knows up to %d",
                         version, SCHEMA_VERSION);
    /* One transaction: a store is upgraded completely or not at all. */
    int rc = run_sql(db, "BEGIN", err, errlen);
    for (int v = version; rc == 0 && v < SCHEMA_VERSION; v++)
        for (size_t i = 0; rc == 0 && i < upgrades[v].n; i++)
            rc = run_sql(db, upgrades[v].sql[i], err, errlen);
    char done[64];
    snprintf(done, sizeof done, "PRAGMA user_version = %d; COMMIT", SCHEMA_VERSION);
    if (rc == 0)
        rc = run_sql(db, done, err, errlen);
    else
        sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
    return rc;
}

/* The exclusive lock: PATH.lock, flock'ed for as long as the store is open. SQLite's
 * own locks are per transaction; two controllers on one store would both run, bump the
 * epoch and assign the same units. */
static int lock_store(const char *path, int *fd_out, char *err, size_t errlen)
{
    char lock[1100];
    if ((size_t)snprintf(lock, sizeof lock, "%s.lock", path) >= sizeof lock)
        return fr_seterr(FR_ESTORE, err, errlen, "store path '%s' is too long", path);
    int fd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0)
        return fr_seterr(FR_ESTORE, err, errlen, "cannot open store '%s': cannot create its lock "
                         "file '%s': %s", path, lock, strerror(errno));
    if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
        int busy = errno == EWOULDBLOCK;
        int rc = fr_seterr(busy ? FR_EBUSY : FR_ESTORE, err, errlen, busy
                           ? "store '%s' is in use by another flashrackd (its lock '%s' is held); "
                             "stop that one first"
                           : "cannot lock store '%s' ('%s'): %s", path, lock, strerror(errno));
        close(fd);
        return rc;
    }
    *fd_out = fd;
    return 0;
}

int store_open(const char *path, struct store **out, char *err, size_t errlen)
{
    *out = NULL;
    struct store *s = calloc(1, sizeof *s);
    if (!s)
        return FR_ENOMEM;
    s->lock_fd = -1;
    int rc = lock_store(path, &s->lock_fd, err, errlen);
    if (rc < 0) {
        store_close(&s);
        return rc;
    }
    /* NOMUTEX: the connection is the loop thread's alone, so SQLite need not lock around
     * every call (each column read of a 1,000-row page took its mutex) */
    if (sqlite3_open_v2(path, &s->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                        NULL) != SQLITE_OK) {
        fr_seterr(FR_ESTORE, err, errlen, "cannot open store '%s': %s", path,
                  s->db ? sqlite3_errmsg(s->db) : "out of memory");
        store_close(&s);
        return FR_ESTORE;
    }
    sqlite3_busy_timeout(s->db, 5000);
    char why[256] = "";
    /* temp_store: a savepoint's journal in memory (each nested begin journals every page it
     * touches; spilled to a file, that was a pwrite per page per claim or message);
     * journal_size_limit: see STORE_WAL_LIMIT */
    char pragmas[200];
    snprintf(pragmas, sizeof pragmas, "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;"
             " PRAGMA foreign_keys=ON; PRAGMA temp_store=MEMORY; PRAGMA journal_size_limit=%d",
             STORE_WAL_LIMIT);
    rc = run_sql(s->db, pragmas, why, sizeof why);
    if (rc == 0)
        rc = migrate(s->db, why, sizeof why);
    int64_t epoch = 0;
    if (rc == 0)
        rc = st_scalar_rc(s, &epoch, "SELECT value FROM meta WHERE key = 'controller_epoch'", NULL);
    if (rc < 0) {
        fr_seterr(FR_ESTORE, err, errlen, "cannot use store '%s': %s", path,
                  why[0] ? why : sqlite3_errmsg(s->db));
        store_close(&s);
        return FR_ESTORE;
    }
    s->epoch = (uint64_t)epoch;
    st_profile_start(s);
    *out = s;
    return 0;
}

int store_bump_epoch(struct store *s)
{
    int64_t epoch = 0;
    int rc = store_begin(s);
    if (rc < 0)
        return rc;
    rc = st_exec(s, "UPDATE meta SET value = value + 1 WHERE key = 'controller_epoch'", NULL);
    if (rc == 0)
        rc = st_scalar_rc(s, &epoch, "SELECT value FROM meta WHERE key = 'controller_epoch'", NULL);
    if (rc == 0)
        rc = store_commit(s);
    if (rc < 0) {
        store_rollback(s);
        return rc;
    }
    s->epoch = (uint64_t)epoch;
    return 0;
}

int store_close(struct store **ps)
{
    struct store *s = *ps;
    if (!s)
        return 0;
    st_profile_finish(s);
    for (size_t i = 0; i < s->ncache; i++)
        sqlite3_finalize(s->cache[i].st);
    free(s->cache);
    int rc = sqlite3_close(s->db) == SQLITE_OK ? 0 : FR_EBUSY; /* BUSY: a statement leaked */
    if (rc < 0)
        fr_error("store", "closing the store: %s", sqlite3_errmsg(s->db));
    if (s->lock_fd >= 0)
        close(s->lock_fd);
    free(s);
    *ps = NULL;
    return rc;
}

static int on_wal(void *arg, sqlite3 *db, const char *name, int frames)
{
    struct store *s = arg;
    s->wal_fn(s->wal_arg, frames);
    return SQLITE_OK;
}

void store_on_wal_commit(struct store *s, store_wal_fn fn, void *arg)
{
    s->wal_fn = fn;
    s->wal_arg = arg;
    if (fn) /* replaces SQLite's own hook, which was the automatic checkpoint */
        sqlite3_wal_hook(s->db, on_wal, s);
    else
        sqlite3_wal_autocheckpoint(s->db, 1000);
}

const char *store_path(const struct store *s) { return sqlite3_db_filename(s->db, "main"); }
uint64_t store_epoch(const struct store *s) { return s->epoch; }
int store_read_failed(const struct store *s) { return s->read_failed; }
const char *store_errmsg(const struct store *s) { return sqlite3_errmsg(s->db); }

uint64_t store_rows_changed(const struct store *s)
{
    return (uint64_t)sqlite3_total_changes64(s->db);
}

uint64_t store_statements_run(const struct store *s)
{
    uint64_t n = 0;
    for (size_t i = 0; i < s->ncache; i++)
        n += (uint64_t)sqlite3_stmt_status(s->cache[i].st, SQLITE_STMTSTATUS_RUN, 0);
    return n;
}

uint64_t store_vm_steps(const struct store *s)
{
    uint64_t n = 0;
    for (size_t i = 0; i < s->ncache; i++)
        n += (uint64_t)sqlite3_stmt_status(s->cache[i].st, SQLITE_STMTSTATUS_VM_STEP, 0);
    return n;
}
/* Nested begins are savepoints: the controller commits a loop turn's messages in one
 * transaction, and the writers it calls (runs.c, claims) keep their own begin/commit,
 * which then only release or undo their part. */
int store_begin(struct store *s)
{
    if (s->depth >= STORE_MAX_DEPTH)
        return FR_ESTORE;
    if (s->depth > 0) {
        int rc = st_exec(s, "SAVEPOINT nested", NULL);
        if (rc == 0)
            s->failed_at[s->depth++] = s->txn_failed;
        return rc;
    }
    int rc = st_exec(s, "BEGIN IMMEDIATE", NULL);
    s->in_txn = rc == 0;
    s->txn_failed = 0;
    s->depth = rc == 0;
    return rc;
}

int store_commit(struct store *s)
{
    if (s->txn_failed) {
        fr_error("store", "not committing: a statement of this transaction failed");
        return FR_ESTORE;
    }
    if (s->depth > 1) {
        int rc = st_exec(s, "RELEASE nested", NULL);
        s->depth -= rc == 0;
        return rc;
    }
    int rc = st_exec(s, "COMMIT", NULL);
    s->in_txn = rc < 0 && !sqlite3_get_autocommit(s->db); /* a failed COMMIT leaves it open */
    s->depth = s->in_txn;
    return rc;
}

void store_rollback(struct store *s)
{
    if (s->depth > 1) { /* undo this savepoint's part only; its failures go with it */
        s->depth--;
        if (st_exec(s, "ROLLBACK TO nested", NULL) == 0 && st_exec(s, "RELEASE nested", NULL) == 0) {
            s->txn_failed = s->failed_at[s->depth];
            return;
        }
        s->txn_failed = 1; /* the savepoint could not be undone: nor can the transaction commit */
        return;
    }
    if (!sqlite3_get_autocommit(s->db) && st_exec(s, "ROLLBACK", NULL) < 0)
        sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL); /* past any injected fault */
    s->in_txn = s->txn_failed = s->txn_gone = 0;
    s->depth = 0;
}

int store_in_txn(const struct store *s)
{
    return s->depth > 0;
}

int store_txn_ok(const struct store *s)
{
    return s->depth > 0 && !s->txn_failed;
}

#ifdef FR_STORE_FAULTS
void store_fault_arm(struct store *s, long n, int code)
{
    s->fault_at = n;
    s->fault_calls = 0;
    s->fault_code = code;
}

long store_fault_calls(const struct store *s) { return s->fault_calls; }

void store_fault_arm_sql(struct store *s, const char *prefix, long n, int code)
{
    s->fault_sql = prefix;
    s->fault_sql_at = n;
    s->fault_sql_steps = 0;
    s->fault_sql_code = code;
}
#endif

int store_backup(const char *path, const char *dest, char *err, size_t errlen)
{
    char tmp[1100];
    if ((size_t)snprintf(tmp, sizeof tmp, "%s.tmp", dest) >= sizeof tmp)
        return fr_seterr(FR_EINVAL, err, errlen, "backup path '%s' is too long", dest);
    sqlite3 *src = NULL, *dst = NULL;
    int rc = sqlite3_open_v2(path, &src, SQLITE_OPEN_READONLY, NULL);
    if (rc == SQLITE_OK) {
        sqlite3_busy_timeout(src, 5000);
        unlink(tmp);
        rc = sqlite3_open_v2(tmp, &dst, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL);
    }
    sqlite3_backup *b = rc == SQLITE_OK ? sqlite3_backup_init(dst, "main", src, "main") : NULL;
    /* the online backup API reads committed pages through SQLite (the WAL included) while
     * the controller goes on writing; a step that meets a writer waits and goes on */
    for (int tries = 0; b && tries < 600;) {
        rc = sqlite3_backup_step(b, 256);
        if (rc == SQLITE_DONE)
            break;
        if (rc != SQLITE_OK && rc != SQLITE_BUSY && rc != SQLITE_LOCKED)
            break;
        if (rc != SQLITE_OK) {
            tries++;
            sqlite3_sleep(50);
        }
    }
    if (b)
        sqlite3_backup_finish(b);
    int failed = rc != SQLITE_DONE || (dst && sqlite3_errcode(dst) != SQLITE_OK);
    if (failed)
        fr_seterr(FR_ESTORE, err, errlen, "cannot back up store '%s' to '%s': %s", path, dest,
                  dst && sqlite3_errcode(dst) != SQLITE_OK ? sqlite3_errmsg(dst)
                  : src ? sqlite3_errmsg(src) : "out of memory");
    sqlite3_close(dst);
    sqlite3_close(src);
    if (!failed && rename(tmp, dest) < 0) {
        fr_seterr(FR_EIO, err, errlen, "cannot back up store '%s': rename '%s' to '%s': %s", path,
                  tmp, dest, strerror(errno));
        failed = 1;
    }
    if (failed)
        unlink(tmp);
    return failed ? (rc == SQLITE_DONE ? FR_EIO : FR_ESTORE) : 0;
}

int store_event(struct store *s, uint64_t now_ms, const char *kind, uint64_t job, uint64_t ecid,
                const char *agent, const char *port, const char *text)
{
    return st_exec(s, "INSERT INTO events (at, kind, job, ecid, agent, port, text)"
                   " VALUES (?, ?, ?, ?, ?, ?, ?)",
                "utuutt" "t", now_ms, kind, job, ecid, agent ? agent : "", port ? port : "", text);
}
