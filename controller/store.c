/* store — every SQL statement of flashrackd; see store.h. */
#include "store.h"

#include <sqlite3.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/random.h>
#include <unistd.h>

#include "fr_err.h"
#include "fr_log.h"
#include "fr_time.h"
#include "fr_types.h"

#define SCHEMA_VERSION 5
#define STORE_MAX_DEPTH 8

struct store {
    sqlite3 *db;
    int lock_fd;             /* flock'ed lock file beside the store, held while open */
    uint64_t epoch;
    struct {
        const char *sql;     /* the literal's address is the key */
        sqlite3_stmt *st;
    } *cache;
    size_t ncache, cache_cap;
    int in_txn, txn_failed;  /* an error inside the open transaction: it must not commit */
    int depth;               /* store_begin nesting: 1 = the transaction, more = savepoints */
    int failed_at[STORE_MAX_DEPTH]; /* txn_failed when each savepoint began */
    int read_failed;         /* an error since a document began: it is not sent half-read */
    long fault_at, fault_calls;
    int fault_code;
};

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
};

static int interrupt_missing(struct store *s, const char *agent, Fr__AttemptRef *const *keep,
                             size_t nkeep, uint64_t now_ms, int *ninterrupted);
static json_t *doc_moves(struct store *s);

#define LIVE "('assigned','running')"
/* A unit found hardware_suspect stays held, in every job, until an operator releases it
 * (an event 'unit_released' newer than the suspect verdict). */
#define HELD(e) "EXISTS (SELECT 1 FROM unit_runs h WHERE h.ecid = " e " AND h.state = 'hardware_suspect'" \
    " AND h.updated > COALESCE((SELECT MAX(v.at) FROM events v WHERE v.kind = 'unit_released'" \
    " AND v.ecid = " e "), -1))"
#define TERMINAL "('done','failed','cancelled','hardware_suspect')"
/* the other states (fr_types.h): listed, so that a lookup can use unit_runs_state */
#define OPEN "('waiting_unit','preflight','fetching_firmware','queued_for_bus','restoring'," \
             "'verifying','needs_move','needs_operator')"

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

static int step(struct store *s, sqlite3_stmt *st)
{
    int rc = fault(s);
    if (rc == SQLITE_OK)
        rc = sqlite3_step(st);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
        fr_error("store", "'%.60s': %s", sqlite3_sql(st),
                 s->fault_code && rc == s->fault_code ? sqlite3_errstr(rc) : sqlite3_errmsg(s->db));
        s->txn_failed |= s->in_txn;
        s->read_failed = 1;
    }
    return rc;
}

/* A reader loop's step: 1 = a row, 0 = no more rows, FR_ESTORE = an error (BUSY, IOERR...),
 * which is never taken for the end of the rows. */
static int next_row(struct store *s, sqlite3_stmt *st)
{
    int rc = step(s, st);
    return rc == SQLITE_ROW ? 1 : rc == SQLITE_DONE ? 0 : FR_ESTORE;
}

/* The statement cache grows as needed (every statement is a string literal of this file,
 * so it is bounded by the code) and is finalized at close. */
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

static sqlite3_stmt *query(struct store *s, const char *sql, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    sqlite3_stmt *st = queryv(s, sql, fmt, ap);
    va_end(ap);
    return st;
}

static int exec(struct store *s, const char *sql, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    sqlite3_stmt *st = queryv(s, sql, fmt, ap);
    va_end(ap);
    if (!st)
        return FR_ESTORE;
    int rc = step(s, st);
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
    int rc = next_row(s, st);
    int found = rc == 1 && sqlite3_column_type(st, 0) != SQLITE_NULL;
    if (found)
        *v = sqlite3_column_int64(st, 0);
    sqlite3_reset(st);
    return rc < 0 ? rc : found ? 0 : FR_ENOTFOUND;
}

static int scalar_rc(struct store *s, int64_t *v, const char *sql, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = scalarv(s, v, sql, fmt, ap);
    va_end(ap);
    return rc;
}

/* scalar_rc with a default for no row; an error also gives the default, and poisons the
 * transaction it happens in. */
static int64_t scalar(struct store *s, int64_t dflt, const char *sql, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int64_t v = dflt;
    if (scalarv(s, &v, sql, fmt, ap) < 0)
        v = dflt;
    va_end(ap);
    return v;
}

static const char *col_text(sqlite3_stmt *st, int i)
{
    const unsigned char *t = sqlite3_column_text(st, i);
    return t ? (const char *)t : "";
}

static json_t *col_time(sqlite3_stmt *st, int i)
{
    char buf[32];
    fr_time_iso8601((uint64_t)sqlite3_column_int64(st, i), buf, sizeof buf);
    return json_string(buf);
}

static json_t *col_ecid(sqlite3_stmt *st, int i)
{
    char buf[FR_ECID_STRLEN];
    fr_ecid_format((uint64_t)sqlite3_column_int64(st, i), buf, sizeof buf);
    return json_string(buf);
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
    if (sqlite3_open_v2(path, &s->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL) != SQLITE_OK) {
        fr_seterr(FR_ESTORE, err, errlen, "cannot open store '%s': %s", path,
                  s->db ? sqlite3_errmsg(s->db) : "out of memory");
        store_close(&s);
        return FR_ESTORE;
    }
    sqlite3_busy_timeout(s->db, 5000);
    char why[256] = "";
    rc = run_sql(s->db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;"
                        " PRAGMA foreign_keys=ON", why, sizeof why);
    if (rc == 0)
        rc = migrate(s->db, why, sizeof why);
    int64_t epoch = 0;
    if (rc == 0)
        rc = scalar_rc(s, &epoch, "SELECT value FROM meta WHERE key = 'controller_epoch'", NULL);
    if (rc < 0) {
        fr_seterr(FR_ESTORE, err, errlen, "cannot use store '%s': %s", path,
                  why[0] ? why : sqlite3_errmsg(s->db));
        store_close(&s);
        return FR_ESTORE;
    }
    s->epoch = (uint64_t)epoch;
    *out = s;
    return 0;
}

int store_bump_epoch(struct store *s)
{
    int64_t epoch = 0;
    int rc = store_begin(s);
    if (rc == 0)
        rc = exec(s, "UPDATE meta SET value = value + 1 WHERE key = 'controller_epoch'", NULL);
    if (rc == 0)
        rc = scalar_rc(s, &epoch, "SELECT value FROM meta WHERE key = 'controller_epoch'", NULL);
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

uint64_t store_epoch(const struct store *s) { return s->epoch; }
int store_read_failed(const struct store *s) { return s->read_failed; }
const char *store_errmsg(const struct store *s) { return sqlite3_errmsg(s->db); }
/* Nested begins are savepoints: the controller commits a loop turn's messages in one
 * transaction, and the writers it calls (runs.c, claims) keep their own begin/commit,
 * which then only release or undo their part. */
int store_begin(struct store *s)
{
    if (s->depth >= STORE_MAX_DEPTH)
        return FR_ESTORE;
    if (s->depth > 0) {
        int rc = exec(s, "SAVEPOINT nested", NULL);
        if (rc == 0)
            s->failed_at[s->depth++] = s->txn_failed;
        return rc;
    }
    int rc = exec(s, "BEGIN IMMEDIATE", NULL);
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
        int rc = exec(s, "RELEASE nested", NULL);
        s->depth -= rc == 0;
        return rc;
    }
    int rc = exec(s, "COMMIT", NULL);
    s->in_txn = rc < 0 && !sqlite3_get_autocommit(s->db); /* a failed COMMIT leaves it open */
    s->depth = s->in_txn;
    return rc;
}

void store_rollback(struct store *s)
{
    if (s->depth > 1) { /* undo this savepoint's part only; its failures go with it */
        s->depth--;
        if (exec(s, "ROLLBACK TO nested", NULL) == 0 && exec(s, "RELEASE nested", NULL) == 0) {
            s->txn_failed = s->failed_at[s->depth];
            return;
        }
        s->txn_failed = 1; /* the savepoint could not be undone: nor can the transaction commit */
        return;
    }
    if (!sqlite3_get_autocommit(s->db) && exec(s, "ROLLBACK", NULL) < 0)
        sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL); /* past any injected fault */
    s->in_txn = s->txn_failed = 0;
    s->depth = 0;
}

int store_in_txn(const struct store *s)
{
    return s->depth > 0;
}

#ifdef FR_STORE_FAULTS
void store_fault_arm(struct store *s, long n, int code)
{
    s->fault_at = n;
    s->fault_calls = 0;
    s->fault_code = code;
}

long store_fault_calls(const struct store *s) { return s->fault_calls; }
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
    return exec(s, "INSERT INTO events (at, kind, job, ecid, agent, port, text)"
                   " VALUES (?, ?, ?, ?, ?, ?, ?)",
                "utuutt" "t", now_ms, kind, job, ecid, agent ? agent : "", port ? port : "", text);
}

/* ---- agents, ports, units ---------------------------------------------------- */

static int unit_upsert(struct store *s, const char *agent, const Fr__UnitInfo *u, uint64_t now_ms)
{
    return exec(s, "INSERT INTO units (ecid, product_type, cpid, bdid, serial, mode, agent, port,"
                   " present, last_seen) VALUES (?, ?, ?, ?, ?, ?, ?, ?, 1, ?)"
                   " ON CONFLICT(ecid) DO UPDATE SET"
                   " product_type = CASE WHEN excluded.product_type <> '' THEN excluded.product_type"
                   "  ELSE product_type END,"
                   " cpid = CASE WHEN excluded.cpid <> 0 THEN excluded.cpid ELSE cpid END,"
                   " bdid = CASE WHEN excluded.bdid <> 0 THEN excluded.bdid ELSE bdid END,"
                   " serial = CASE WHEN excluded.serial <> '' THEN excluded.serial ELSE serial END,"
                   " mode = excluded.mode, agent = excluded.agent, port = excluded.port,"
                   " present = 1, last_seen = excluded.last_seen",
                "utiitittu", u->ecid, u->product_type, (int64_t)u->cpid, (int64_t)u->bdid, u->serial,
                (int64_t)u->mode, agent, u->port_path, now_ms);
}

static int agent_hello(struct store *s, const char *agent, const Fr__Hello *h, uint64_t now_ms)
{
    int rc = exec(s, "INSERT INTO agents (id, hostname, version, slots, last_seen)"
                     " VALUES (?, ?, ?, ?, ?) ON CONFLICT(id) DO UPDATE SET"
                     " hostname = excluded.hostname, version = excluded.version,"
                     " slots = excluded.slots, last_seen = excluded.last_seen",
                  "tttiu", agent, h->hostname, h->agent_version, (int64_t)h->slots, now_ms);
    for (size_t i = 0; rc == 0 && i < h->n_ports; i++) {
        const Fr__PortInfo *p = h->ports[i];
        rc = exec(s, "INSERT INTO ports (agent, path, label, hub, bus, depth, power_switch)"
                     " VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT(agent, path) DO UPDATE SET"
                     " label = excluded.label, hub = excluded.hub, bus = excluded.bus,"
                     " depth = excluded.depth, power_switch = excluded.power_switch",
                  "ttttiii", agent, p->path, p->label, p->hub, (int64_t)p->bus, (int64_t)p->depth,
                  (int64_t)p->power_switch);
    }
    if (rc == 0)
        rc = exec(s, "UPDATE units SET present = 0 WHERE agent = ?", "t", agent);
    for (size_t i = 0; rc == 0 && i < h->n_units; i++)
        rc = unit_upsert(s, agent, h->units[i], now_ms);
    return rc;
}

int store_agent_hello(struct store *s, const char *agent, const Fr__Hello *h, uint64_t now_ms,
                      int *ninterrupted)
{
    int n = 0;
    int rc = store_begin(s);
    if (rc == 0)
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
        return exec(s, "UPDATE units SET present = 0, last_seen = ? WHERE ecid = ? AND agent = ?"
                       " AND port = ?", "uutt", now_ms, u->ecid, agent, u->port_path);
    int rc = unit_upsert(s, agent, u, now_ms);
    if (rc == 0 && ev->kind == FR__PORT_EVENT__KIND__ATTACH) /* plugged in again: no longer held */
        rc = exec(s, "UPDATE unit_runs SET refusals = 0, not_before = 0 WHERE ecid = ?"
                     " AND not_before > 0 AND state NOT IN " TERMINAL, "u", u->ecid);
    if (rc == 0 && ev->kind == FR__PORT_EVENT__KIND__ATTACH) {
        /* plugged back into a port its run avoids: the move instruction repeats */
        char here[128];
        snprintf(here, sizeof here, "%s:%s", agent, u->port_path);
        rc = exec(s, "UPDATE moves SET repeats = repeats + 1 WHERE ecid = ? AND done = 0 AND EXISTS"
                     " (SELECT 1 FROM unit_runs r, json_each(r.avoid) WHERE r.job = moves.job"
                     " AND r.ecid = moves.ecid AND value = ?)", "ut", u->ecid, here);
    }
    return rc;
}

/* ---- jobs ------------------------------------------------------------------------ */

static char *json_list(char *const *v, size_t n)
{
    json_t *a = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(a, json_string(v[i]));
    char *text = json_dumps(a, JSON_COMPACT);
    json_decref(a);
    return text;
}

static int job_insert(struct store *s, const struct job_spec *sp, uint64_t now_ms, uint64_t *id)
{
    char *agents = json_list(sp->agents, sp->nagents);
    char *ports = json_list(sp->ports, sp->nports);
    int rc = exec(s, "INSERT INTO jobs (key, name, firmware, sha256, erase, agents, ports, count,"
                     " standing, max_attempts, same_port, created)"
                     " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                  "ttttittiiiiu", sp->key, sp->name, sp->firmware, sp->sha256, (int64_t)sp->erase,
                  agents ? agents : "[]", ports ? ports : "[]", (int64_t)sp->count,
                  (int64_t)sp->standing, (int64_t)(sp->max_attempts ? sp->max_attempts : 3),
                  (int64_t)sp->same_port, now_ms);
    free(agents);
    free(ports);
    *id = (uint64_t)sqlite3_last_insert_rowid(s->db);
    for (size_t i = 0; rc == 0 && i < sp->necids; i++)
        rc = exec(s, "INSERT OR IGNORE INTO unit_runs (job, ecid, updated) VALUES (?, ?, ?)", "uuu",
                  *id, sp->ecids[i], now_ms);
    return rc;
}

int store_job_by_key(struct store *s, const char *key, uint64_t *job)
{
    s->read_failed = 0;
    *job = (uint64_t)scalar(s, 0, "SELECT id FROM jobs WHERE key = ?", "t", key);
    return s->read_failed ? FR_ESTORE : *job > 0;
}

/* The first field in which spec differs from the stored job, or NULL when it is the same
 * request (the explicit units of a job that names no agents or ports are its runs). */
static const char *job_differs(struct store *s, uint64_t job, const struct job_spec *sp)
{
    char *agents = json_list(sp->agents, sp->nagents), *ports = json_list(sp->ports, sp->nports);
    sqlite3_stmt *st = query(s, "SELECT name = ?, firmware = ?, sha256 = ?, erase = ?, agents = ?,"
                                " ports = ?, count = ?, standing = ?, max_attempts = ?, same_port = ?"
                                " FROM jobs WHERE id = ?", "tttittiiiiu", sp->name, sp->firmware,
                             sp->sha256, (int64_t)sp->erase, agents ? agents : "[]", ports ? ports : "[]",
                             (int64_t)sp->count, (int64_t)sp->standing,
                             (int64_t)(sp->max_attempts ? sp->max_attempts : 3), (int64_t)sp->same_port, job);
    static const char *const names[] = { "name", "firmware", "sha256", "erase/update", "agents",
                                         "ports", "count", "standing", "max_attempts", "same_port" };
    const char *diff = st && next_row(s, st) == 1 ? NULL : "the stored job";
    for (int i = 0; !diff && i < 10; i++)
        if (!sqlite3_column_int(st, i))
            diff = names[i];
    if (st)
        sqlite3_reset(st);
    free(agents);
    free(ports);
    int64_t same = 0, stored = scalar(s, 0, "SELECT COUNT(*) FROM unit_runs WHERE job = ?", "u", job);
    for (size_t i = 0; !diff && sp->nagents + sp->nports == 0 && i < sp->necids; i++)
        same += scalar(s, 0, "SELECT COUNT(*) FROM unit_runs WHERE job = ? AND ecid = ?", "uu", job,
                       sp->ecids[i]);
    if (!diff && sp->nagents + sp->nports == 0 && (same != (int64_t)sp->necids || stored != same))
        diff = "ecids";
    return diff;
}

int store_job_submit(struct store *s, const struct job_spec *spec, uint64_t now_ms,
                     uint64_t *job_id, int *created, char *err, size_t errlen)
{
    int64_t existing = scalar(s, 0, "SELECT id FROM jobs WHERE key = ?", "t", spec->key);
    if (existing > 0) {
        const char *diff = job_differs(s, (uint64_t)existing, spec);
        if (diff)
            return fr_seterr(FR_EEXIST, err, errlen, "key '%s' was used for job %lld with a different "
                             "request (%s differs): choose a new key, or send the same request",
                             spec->key, (long long)existing, diff);
        *job_id = (uint64_t)existing;
        *created = 0;
        return 0;
    }
    int rc = store_begin(s);
    if (rc == 0)
        rc = job_insert(s, spec, now_ms, job_id);
    if (rc == 0)
        rc = store_event(s, now_ms, "job", *job_id, 0, NULL, NULL, "submitted");
    if (rc == 0)
        rc = store_commit(s); /* the reply goes out only after this */
    if (rc < 0) {
        store_rollback(s);
        return fr_seterr(FR_ESTORE, err, errlen, "cannot store the job: %s", sqlite3_errmsg(s->db));
    }
    *created = 1;
    return 0;
}

static int each_attempt(struct store *s, sqlite3_stmt *st, store_attempt_cb cb, void *arg)
{
    if (!st)
        return FR_ESTORE;
    int rc;
    while ((rc = step(s, st)) == SQLITE_ROW) {
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
    int64_t found = scalar(s, -1, "SELECT COUNT(*) FROM jobs WHERE id = ?", "u", job_id);
    if (found <= 0)
        return found < 0 ? FR_ESTORE : FR_ENOTFOUND;
    struct attempt_list live = { 0 };
    int rc = store_begin(s);
    if (rc == 0)
        rc = each_attempt(s, query(s, "SELECT " ATTEMPT_COLS " FROM attempts a JOIN jobs j ON j.id = a.job"
                                      " WHERE a.job = ? AND (? = 0 OR a.ecid = ?) AND a.state IN " LIVE,
                                   "uuu", job_id, ecid, ecid), on_list_attempt, &live);
    if (rc == 0 && live.failed)
        rc = FR_ENOMEM;
    int n = 0;
    if (rc == 0)
        rc = exec(s, "UPDATE unit_runs SET state = 'cancelled', ended = ?, updated = ?"
                     " WHERE job = ? AND (? = 0 OR ecid = ?) AND state NOT IN " TERMINAL,
                  "uuuuu", now_ms, now_ms, job_id, ecid, ecid);
    if (rc == 0)
        n = sqlite3_changes(s->db);
    if (rc == 0 && ecid == 0)
        rc = exec(s, "UPDATE jobs SET state = 'cancelled', finished = ? WHERE id = ?"
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

int store_jobs_settle(struct store *s, uint64_t now_ms)
{
    return exec(s, "UPDATE jobs SET state = 'done', finished = ? WHERE state = 'running'"
                   " AND standing = 0"
                   " AND EXISTS (SELECT 1 FROM unit_runs r WHERE r.job = jobs.id)"
                   " AND NOT EXISTS (SELECT 1 FROM unit_runs r WHERE r.state IN " OPEN
                   "  AND r.job = jobs.id)"
                   " AND (count = 0 OR (SELECT COUNT(*) FROM unit_runs r WHERE r.job = jobs.id) >= count"
                   "  OR (agents = '[]' AND ports = '[]'))", "u", now_ms);
}

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

/* Adds v to the sorted set v[0..*n) (room for it is there). */
static void set_add(uint64_t *set, size_t *n, uint64_t v)
{
    size_t lo = 0, hi = *n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (set[mid] < v)
            lo = mid + 1;
        else
            hi = mid;
    }
    memmove(set + lo + 1, set + lo, (*n - lo) * sizeof *set);
    set[lo] = v;
    (*n)++;
}

/* Runs to create: every (job, unit) pair that matches, in job order, each unit once
 * (for the earliest job that wants it) and no job past its count. One query and one
 * transaction for the whole pass: a site of hundreds of units joins a job at once, and
 * a query per unit made that quadratic (seconds with the loop blocked). */
int store_sched_expand(struct store *s, uint64_t now_ms)
{
    /* Units are found through the job's agents (units_port index), not by testing
     * every unit against every agent list; port lists are short and tested per unit. */
    static const char *pick =
        "WITH m(job, ecid, agent, port) AS ("
        " SELECT j.id, u.ecid, u.agent, u.port FROM jobs j"
        "  JOIN units u ON u.agent IN (SELECT value FROM json_each(j.agents)) AND u.present = 1"
        "  WHERE j.state = 'running' AND j.agents <> '[]'"
        " UNION"
        " SELECT j.id, u.ecid, u.agent, u.port FROM jobs j JOIN units u ON u.present = 1"
        "  WHERE j.state = 'running' AND j.ports <> '[]'"
        "  AND EXISTS (SELECT 1 FROM json_each(j.ports) e WHERE e.value = u.agent || ':' || u.port"
        "   OR e.value = (SELECT label FROM ports p WHERE p.agent = u.agent AND p.path = u.port)))"
        " SELECT m.job, m.ecid, j.count, (SELECT COUNT(*) FROM unit_runs r WHERE r.job = m.job)"
        " FROM m JOIN jobs j ON j.id = m.job"
        " WHERE NOT EXISTS (SELECT 1 FROM unit_runs r WHERE r.job = m.job AND r.ecid = m.ecid)"
        " AND NOT EXISTS (SELECT 1 FROM unit_runs r JOIN jobs j2 ON j2.id = r.job"
        "  WHERE r.ecid = m.ecid AND j2.state = 'running' AND r.state NOT IN " TERMINAL ")"
        " AND NOT " HELD("m.ecid")
        " ORDER BY m.job, m.agent, m.port";
    sqlite3_stmt *st = query(s, pick, NULL);
    if (!st)
        return FR_ESTORE;
    struct expand_row *rows = NULL;
    size_t n = 0, cap = 0;
    int rc;
    while ((rc = step(s, st)) == SQLITE_ROW) {
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
    if (ret == 0 && n > 0)
        ret = store_begin(s);
    int64_t added = 0;
    for (size_t i = 0; ret == 0 && i < n; i++) {
        const struct expand_row *r = &rows[i];
        added = i > 0 && rows[i - 1].job == r->job ? added : 0;
        if ((r->count > 0 && r->have + added >= r->count) ||
            bsearch(&r->ecid, taken, ntaken, sizeof *taken, cmp_u64))
            continue;
        ret = exec(s, "INSERT INTO unit_runs (job, ecid, updated) VALUES (?, ?, ?)", "uuu", r->job,
                   r->ecid, now_ms);
        added++;
        set_add(taken, &ntaken, r->ecid);
    }
    if (ret == 0 && n > 0)
        ret = store_commit(s);
    else if (n > 0)
        store_rollback(s);
    free(rows);
    free(taken);
    return ret;
}

int store_sched_candidates(struct store *s,
                           int (*cb)(void *arg, const struct sched_candidate *c), void *arg)
{
    sqlite3_stmt *st = query(s,
        "SELECT r.job, r.ecid, u.agent, u.port, u.product_type FROM unit_runs r"
        " JOIN jobs j ON j.id = r.job AND j.state = 'running'"
        " JOIN units u ON u.ecid = r.ecid AND u.present = 1"
        " LEFT JOIN ports p ON p.agent = u.agent AND p.path = u.port"
        " WHERE (r.state IN ('waiting_unit', 'needs_move')"
        /* an operator put it into DFU or recovery by hand: it starts by itself */
        "  OR (r.state = 'needs_operator' AND u.mode IN (1, 2)))"
        " AND COALESCE(p.quarantined, 0) = 0 AND r.not_before <= ?"
        " AND (j.same_port = 1"
        "  OR NOT EXISTS (SELECT 1 FROM json_each(r.avoid) WHERE value = u.agent || ':' || u.port))"
        " AND NOT EXISTS (SELECT 1 FROM attempts a WHERE a.ecid = r.ecid AND a.state IN " LIVE ")"
        " AND NOT " HELD("r.ecid")
        /* a unit named by two live jobs is restored for the earlier one first, never at once */
        " AND NOT EXISTS (SELECT 1 FROM unit_runs o JOIN jobs oj ON oj.id = o.job AND oj.state = 'running'"
        "  WHERE o.ecid = r.ecid AND o.job < r.job AND o.state NOT IN " TERMINAL ")"
        " ORDER BY r.job, u.agent, u.port", "u", fr_time_wall_ms());
    if (!st)
        return FR_ESTORE;
    int rc;
    while ((rc = step(s, st)) == SQLITE_ROW) {
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

/* 128 bits from the kernel's CSPRNG: a peer that did not receive the JobAssign cannot
 * guess them (job, attempt and epoch are small counters). */
static int draw_token(uint64_t token[2])
{
    ssize_t got = getrandom(token, 2 * sizeof token[0], 0);
    return got == (ssize_t)(2 * sizeof token[0]) ? 0 : FR_ESYS;
}

int store_claim_attempt(struct store *s, const struct sched_candidate *c, uint64_t now_ms,
                        const char *firmware, const char *sha, Fr__AttemptRef *ref, int *erase,
                        uint32_t *n)
{
    uint64_t token[2];
    if (draw_token(token) < 0) {
        fr_error("store", "cannot draw an attempt token: getrandom failed");
        return FR_ESYS;
    }
    int rc = store_begin(s);
    if (rc == 0)
        rc = exec(s, "UPDATE meta SET value = value + 1 WHERE key = 'lease_epoch'", NULL);
    uint64_t epoch = (uint64_t)scalar(s, 0, "SELECT value FROM meta WHERE key = 'lease_epoch'", NULL);
    *n = (uint32_t)scalar(s, 0, "SELECT COUNT(*) FROM attempts WHERE job = ? AND ecid = ?", "uu",
                          c->job, c->ecid) + 1;
    if (rc == 0)
        rc = exec(s, "INSERT INTO attempts (job, ecid, n, agent, port, epoch, state, started,"
                     " firmware, sha256, token_hi, token_lo)"
                     " VALUES (?, ?, ?, ?, ?, ?, 'assigned', ?, ?, ?, ?, ?)",
                  "uuittuutt" "uu", c->job, c->ecid, (int64_t)*n, c->agent, c->port, epoch, now_ms,
                  firmware, sha, token[0], token[1]);
    uint64_t id = (uint64_t)sqlite3_last_insert_rowid(s->db);
    if (rc == 0)
        rc = exec(s, "UPDATE unit_runs SET state = 'preflight', attempts = attempts + 1,"
                     " started = CASE WHEN started = 0 THEN ? ELSE started END, step = 0,"
                     " fraction = 0, status = '', error_class = '', error_text = '',"
                     " updated = ? WHERE job = ? AND ecid = ?",
                  "uuuu", now_ms, now_ms, c->job, c->ecid);
    if (rc == 0)
        rc = exec(s, "UPDATE moves SET done = ? WHERE job = ? AND ecid = ? AND done = 0", "uuu",
                  now_ms, c->job, c->ecid);
    *erase = (int)scalar(s, 1, "SELECT erase FROM jobs WHERE id = ?", "u", c->job);
    if (rc == 0)
        rc = store_commit(s);
    if (rc < 0) {
        store_rollback(s);
        return rc;
    }
    ref->job_id = c->job;
    ref->attempt_id = id;
    ref->epoch = epoch;
    ref->ecid = c->ecid;
    ref->token_hi = token[0];
    ref->token_lo = token[1];
    return 0;
}

int store_live_attempts(struct store *s, const char *agent, const char *state_filter,
                        store_attempt_cb cb, void *arg)
{
    return each_attempt(s, query(s, "SELECT " ATTEMPT_COLS " FROM attempts a JOIN jobs j ON j.id = a.job"
                                    " WHERE a.agent = ? AND a.state IN " LIVE
                                    " AND (? = '' OR a.state = ?) ORDER BY a.id",
                                 "ttt", agent, state_filter ? state_filter : "",
                                 state_filter ? state_filter : ""), cb, arg);
}

int store_job_firmware(struct store *s, uint64_t job, char *fw, size_t fwlen, char *sha, size_t shalen)
{
    sqlite3_stmt *st = query(s, "SELECT firmware, sha256 FROM jobs WHERE id = ?", "u", job);
    int rc = st ? next_row(s, st) : FR_ESTORE;
    snprintf(fw, fwlen, "%s", rc == 1 ? col_text(st, 0) : "");
    snprintf(sha, shalen, "%s", rc == 1 ? col_text(st, 1) : "");
    if (st)
        sqlite3_reset(st);
    return rc < 0 ? rc : rc == 1 ? 0 : FR_ENOTFOUND;
}

int store_firmware_url(struct store *s, const char *sha, char *url, size_t len)
{
    /* attempts too: a catalog selector's URL and hash live on the attempts */
    sqlite3_stmt *st = query(s, "SELECT firmware FROM (SELECT firmware, sha256, created AS at FROM jobs"
                                " UNION ALL SELECT firmware, sha256, started AS at FROM attempts)"
                                " WHERE lower(sha256) = lower(?) AND"
                                " (firmware LIKE 'http://%' OR firmware LIKE 'https://%')"
                                " ORDER BY at DESC LIMIT 1", "t", sha);
    int rc = st ? next_row(s, st) : FR_ESTORE;
    snprintf(url, len, "%s", rc == 1 ? col_text(st, 0) : "");
    if (st)
        sqlite3_reset(st);
    return rc < 0 ? rc : rc == 1 ? 0 : FR_ENOTFOUND;
}

int store_live_count(struct store *s, const char *agent)
{
    int64_t n = 0;
    int rc = scalar_rc(s, &n, "SELECT COUNT(*) FROM attempts WHERE agent = ? AND state IN " LIVE,
                       "t", agent);
    return rc < 0 ? rc : (int)n;
}

int store_port_count(struct store *s, const char *agent)
{
    return (int)scalar(s, 0, "SELECT COUNT(*) FROM ports WHERE agent = ?", "t", agent);
}

int store_attempt_wanted(struct store *s, const Fr__AttemptRef *ref)
{
    int64_t n = 0;
    int rc = scalar_rc(s, &n, "SELECT COUNT(*) FROM unit_runs r JOIN attempts a ON a.job = r.job"
                              " AND a.ecid = r.ecid WHERE a.id = ? AND a.epoch = ?"
                              " AND r.state NOT IN " TERMINAL, "uu", ref->attempt_id, ref->epoch);
    return rc < 0 ? rc : n > 0;
}

/* ---- attempts ---------------------------------------------------------------------- */

int store_attempt_match(struct store *s, const char *agent, const Fr__AttemptRef *ref)
{
    sqlite3_stmt *st = query(s, "SELECT state IN " LIVE " FROM attempts WHERE id = ? AND job = ?"
                                " AND epoch = ? AND ecid = ? AND agent = ? AND token_hi = ?"
                                " AND token_lo = ?", "uuuutuu", ref->attempt_id, ref->job_id,
                             ref->epoch, ref->ecid, agent, ref->token_hi, ref->token_lo);
    if (!st)
        return FR_ESTORE;
    int rc = step(s, st);
    int match = rc == SQLITE_ROW ? (sqlite3_column_int(st, 0) ? ATTEMPT_LIVE : ATTEMPT_ENDED)
                                 : ATTEMPT_NONE;
    sqlite3_reset(st);
    return rc == SQLITE_ROW || rc == SQLITE_DONE ? match : FR_ESTORE;
}

int store_attempt_running(struct store *s, const Fr__AttemptRef *ref)
{
    return exec(s, "UPDATE attempts SET state = 'running' WHERE id = ? AND state = 'assigned'", "u",
                ref->attempt_id);
}

int store_attempt_refused(struct store *s, const Fr__AttemptRef *ref, const char *reason,
                          uint64_t now_ms, int *refusals)
{
    int rc = exec(s, "UPDATE attempts SET state = 'ended', outcome = 'refused', error_text = ?,"
                     " ended = ? WHERE id = ?", "tuu", reason, now_ms, ref->attempt_id);
    if (rc == 0)
        rc = exec(s, "UPDATE unit_runs SET state = 'waiting_unit', status = ?, updated = ?,"
                     " refusals = refusals + 1 WHERE job = ? AND ecid = ? AND state NOT IN " TERMINAL,
                  "tuuu", reason, now_ms, ref->job_id, ref->ecid);
    int64_t n = 0;
    if (rc == 0)
        rc = scalar_rc(s, &n, "SELECT refusals FROM unit_runs WHERE job = ? AND ecid = ?", "uu",
                       ref->job_id, ref->ecid);
    *refusals = (int)n;
    return rc;
}

int store_run_hold(struct store *s, uint64_t job, uint64_t ecid, int64_t not_before_ms,
                   const char *status)
{
    return exec(s, "UPDATE unit_runs SET not_before = ?, status = ? WHERE job = ? AND ecid = ?",
                "ituu", not_before_ms, status, job, ecid);
}

int store_run_accepted(struct store *s, const Fr__AttemptRef *ref)
{
    int rc = store_attempt_running(s, ref);
    if (rc == 0)
        rc = exec(s, "UPDATE unit_runs SET refusals = 0, not_before = 0 WHERE job = ? AND ecid = ?",
                  "uu", ref->job_id, ref->ecid);
    return rc;
}

int store_attempt_progress(struct store *s, const Fr__AttemptRef *ref, const Fr__JobProgress *p,
                           uint64_t now_ms)
{
    int st = fr_state_parse(p->state);
    if (st < 0 || fr_state_is_terminal(st))
        return FR_EINVAL; /* terminal states come with a JobResult */
    int rc = store_attempt_running(s, ref);
    if (rc == 0)
        rc = exec(s, "UPDATE unit_runs SET state = ?, step = ?, fraction = ?, status = ?, updated = ?"
                     " WHERE job = ? AND ecid = ? AND state NOT IN " TERMINAL,
                  "tidtuuu", p->state, (int64_t)p->step, (double)p->fraction, p->status, now_ms,
                  ref->job_id, ref->ecid);
    return rc;
}

int store_attempt_end(struct store *s, const Fr__AttemptRef *ref, const struct attempt_end *e)
{
    return exec(s, "UPDATE attempts SET state = 'ended', outcome = ?, error_class = ?,"
                   " error_text = ?, exit_code = ?, log_path = ?, ended = ?, port = ? WHERE id = ?",
                "tttitu" "tu", e->outcome, e->error_class, e->error_text, (int64_t)e->exit_code,
                e->log_path, e->ended_ms, e->port, ref->attempt_id);
}

int store_attempt_port(struct store *s, uint64_t attempt_id, char *port, size_t len)
{
    sqlite3_stmt *st = query(s, "SELECT port FROM attempts WHERE id = ?", "u", attempt_id);
    if (!st)
        return FR_ESTORE;
    int rc = step(s, st);
    if (rc == SQLITE_ROW)
        snprintf(port, len, "%s", col_text(st, 0));
    sqlite3_reset(st);
    return rc == SQLITE_ROW ? 0 : rc == SQLITE_DONE ? FR_ENOTFOUND : FR_ESTORE;
}

int store_run_failures(struct store *s, uint64_t job, uint64_t ecid, uint64_t except_attempt,
                       void (*cb)(void *arg, const char *error_class, const char *port_id), void *arg)
{
    sqlite3_stmt *st = query(s, "SELECT error_class, agent || ':' || port FROM attempts"
                                " WHERE job = ? AND ecid = ? AND id <> ? AND state = 'ended'"
                                " AND outcome = 'failed' ORDER BY id", "uuu", job, ecid, except_attempt);
    if (!st)
        return FR_ESTORE;
    int rc;
    while ((rc = step(s, st)) == SQLITE_ROW)
        cb(arg, col_text(st, 0), col_text(st, 1));
    sqlite3_reset(st);
    return rc == SQLITE_DONE ? 0 : FR_ESTORE;
}

int store_job_max_attempts(struct store *s, uint64_t job, int dflt)
{
    return (int)scalar(s, dflt, "SELECT max_attempts FROM jobs WHERE id = ?", "u", job);
}

int store_port_strike(struct store *s, const char *agent, const char *port, uint64_t ecid,
                      const char *cls, uint64_t now_ms,
                      void (*cb)(void *arg, uint64_t ecid, int64_t at_ms), void *arg)
{
    int rc = exec(s, "INSERT INTO port_strikes (agent, path, ecid, at, class) VALUES (?, ?, ?, ?, ?)",
                  "ttuut", agent, port, ecid, now_ms, cls);
    if (rc == 0)
        rc = exec(s, "UPDATE ports SET strikes = strikes + 1 WHERE agent = ? AND path = ?", "tt",
                  agent, port);
    sqlite3_stmt *st = rc == 0 ? query(s, "SELECT ecid, at FROM port_strikes WHERE agent = ?"
                                          " AND path = ? ORDER BY at DESC LIMIT ?", "tti", agent,
                                       port, (int64_t)STORE_STRIKES_MAX) : NULL;
    if (rc < 0 || !st)
        return FR_ESTORE;
    while ((rc = step(s, st)) == SQLITE_ROW)
        cb(arg, (uint64_t)sqlite3_column_int64(st, 0), sqlite3_column_int64(st, 1));
    sqlite3_reset(st);
    return rc == SQLITE_DONE ? 0 : FR_ESTORE;
}

int store_port_quarantine(struct store *s, const char *agent, const char *port, uint64_t ecid,
                          const char *reason, uint64_t now_ms)
{
    int rc = exec(s, "UPDATE ports SET quarantined = 1, quarantine_reason = ? WHERE agent = ?"
                     " AND path = ? AND quarantined = 0", "ttt", reason, agent, port);
    if (rc < 0 || sqlite3_changes(s->db) == 0)
        return rc;
    rc = store_event(s, now_ms, "quarantine", 0, ecid, agent, port, reason);
    return rc < 0 ? rc : 1;
}

int store_port_power_switch(struct store *s, const char *agent, const char *port)
{
    return (int)scalar(s, 0, "SELECT power_switch FROM ports WHERE agent = ? AND path = ?", "tt",
                       agent, port);
}

int store_run_avoid(struct store *s, uint64_t job, uint64_t ecid, const char *port_id, int from_dfu)
{
    return exec(s, "UPDATE unit_runs SET avoid = json_insert(avoid, '$[#]', ?), from_dfu = ?"
                   " WHERE job = ? AND ecid = ?", "tiuu", port_id, (int64_t)from_dfu, job, ecid);
}

int store_run_next(struct store *s, uint64_t job, uint64_t ecid, const struct run_next *n,
                   uint64_t now_ms)
{
    return exec(s, "UPDATE unit_runs SET state = ?, error_class = ?, error_text = ?,"
                   " ended = ?, updated = ?, step = CASE WHEN ? = 'done' THEN 7 ELSE step END,"
                   " fraction = CASE WHEN ? = 'done' THEN 1 ELSE fraction END,"
                   " status = ? WHERE job = ? AND ecid = ? AND state NOT IN " TERMINAL,
                "tttuuttt" "uu", n->state, n->error_class, n->error_text, n->terminal ? now_ms : 0,
                now_ms, n->state, n->state, n->why, job, ecid);
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
    sqlite3_stmt *st = query(s, "SELECT id, job, ecid FROM attempts WHERE agent = ? AND state = 'running'",
                             "t", agent);
    if (!st)
        return FR_ESTORE;
    struct gone { uint64_t id, job, ecid; } *gone = NULL;
    size_t ngone = 0, cap = 0;
    int rc;
    while ((rc = next_row(s, st)) == 1) {
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
        rc = exec(s, "UPDATE attempts SET state = 'ended', outcome = 'interrupted',"
                     " error_class = 'interrupted', error_text = 'the agent no longer runs this attempt',"
                     " ended = ? WHERE id = ?", "uu", now_ms, gone[i].id);
        if (rc == 0)
            rc = exec(s, "UPDATE unit_runs SET state = 'waiting_unit', updated = ?"
                         " WHERE job = ? AND ecid = ? AND state NOT IN " TERMINAL,
                      "uuu", now_ms, gone[i].job, gone[i].ecid);
    }
    free(gone);
    if (rc == 0)
        *ninterrupted = (int)ngone;
    return rc < 0 ? rc : 0;
}

/* ---- documents ---------------------------------------------------------------------- */

static json_t *job_totals(struct store *s, uint64_t job)
{
    sqlite3_stmt *st = query(s,
        "SELECT COUNT(*),"
        " SUM(state IN ('waiting_unit','needs_move','needs_operator')),"
        " SUM(state IN ('preflight','fetching_firmware','queued_for_bus','restoring','verifying')),"
        " SUM(state = 'done'), SUM(state IN ('failed','hardware_suspect')), SUM(state = 'cancelled')"
        " FROM unit_runs WHERE job = ?", "u", job);
    json_t *t = json_object();
    static const char *keys[] = { "units", "waiting", "active", "done", "failed", "cancelled" };
    int row = st && step(s, st) == SQLITE_ROW;
    for (int i = 0; i < 6; i++)
        json_object_set_new(t, keys[i], json_integer(row ? sqlite3_column_int64(st, i) : 0));
    if (st)
        sqlite3_reset(st);
    return t;
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

/* Rows of a jobs query, with totals (a second statement per job, after the first is done). */
static json_t *jobs_from(struct store *s, sqlite3_stmt *st)
{
    json_t *jobs = json_array();
    while (st && step(s, st) == SQLITE_ROW)
        json_array_append_new(jobs, job_row(s, st));
    if (st)
        sqlite3_reset(st);
    size_t i;
    json_t *j;
    json_array_foreach(jobs, i, j)
        json_object_set_new(j, "totals", job_totals(s, (uint64_t)json_integer_value(json_object_get(j, "id"))));
    return jobs;
}

static json_t *runs_of(struct store *s, uint64_t job)
{
    sqlite3_stmt *st = query(s,
        "SELECT r.job, r.ecid, COALESCE(u.product_type, ''), r.state,"
        " COALESCE(a.agent, u.agent, ''), COALESCE(a.port, u.port, ''),"
        " COALESCE(p.label, ''), COALESCE(a.n, 0), r.step, r.fraction, r.status,"
        " r.error_class, r.error_text, r.started, r.updated"
        " FROM unit_runs r LEFT JOIN units u ON u.ecid = r.ecid"
        " LEFT JOIN attempts a ON a.id = (SELECT MAX(id) FROM attempts WHERE job = r.job AND ecid = r.ecid)"
        " LEFT JOIN ports p ON p.agent = COALESCE(a.agent, u.agent) AND p.path = COALESCE(a.port, u.port)"
        " WHERE r.job = ? ORDER BY COALESCE(a.agent, u.agent), p.label, r.ecid", "u", job);
    json_t *runs = json_array();
    while (st && step(s, st) == SQLITE_ROW) {
        json_t *r = json_pack("{s:I, s:o, s:s, s:s, s:s, s:s, s:s, s:i, s:i, s:f, s:s, s:s, s:s, s:o, s:o}",
            "job_id", (json_int_t)sqlite3_column_int64(st, 0), "ecid", col_ecid(st, 1),
            "product_type", col_text(st, 2), "state", col_text(st, 3), "agent", col_text(st, 4),
            "port", col_text(st, 5), "label", col_text(st, 6), "attempt", sqlite3_column_int(st, 7),
            "step", sqlite3_column_int(st, 8), "fraction", sqlite3_column_double(st, 9),
            "status", col_text(st, 10), "error_class", col_text(st, 11), "error", col_text(st, 12),
            "started", col_time(st, 13), "updated", col_time(st, 14));
        json_array_append_new(runs, r);
    }
    if (st)
        sqlite3_reset(st);
    return runs;
}

static json_t *doc_status(struct store *s, uint64_t job_id, int with_runs)
{
    sqlite3_stmt *st;
    if (job_id)
        st = query(s, "SELECT " JOB_COLS " FROM jobs WHERE id = ?", "u", job_id);
    else if (with_runs)
        st = query(s, "SELECT " JOB_COLS " FROM jobs WHERE state = 'running'"
                      " OR id = (SELECT MAX(id) FROM jobs) ORDER BY id", NULL);
    else
        st = query(s, "SELECT " JOB_COLS " FROM jobs ORDER BY id DESC LIMIT 200", NULL);
    json_t *jobs = jobs_from(s, st);
    json_t *doc = json_pack("{s:o}", "jobs", jobs);
    if (job_id || with_runs) {
        json_t *runs = json_array();
        size_t i;
        json_t *j;
        json_array_foreach(jobs, i, j)
        {
            json_t *more = runs_of(s, (uint64_t)json_integer_value(json_object_get(j, "id")));
            json_array_extend(runs, more);
            json_decref(more);
        }
        json_object_set_new(doc, "runs", runs);
        json_t *moves = doc_moves(s);
        json_object_set(doc, "moves", json_object_get(moves, "moves"));
        json_decref(moves);
    }
    return doc;
}

static json_t *doc_units(struct store *s)
{
    sqlite3_stmt *st = query(s,
        "SELECT u.ecid, u.product_type, u.serial, u.mode, u.agent, u.port, COALESCE(p.label, ''),"
        " u.present, u.last_seen, COALESCE((SELECT r.state FROM unit_runs r WHERE r.ecid = u.ecid"
        "  ORDER BY r.job DESC LIMIT 1), '')"
        " FROM units u LEFT JOIN ports p ON p.agent = u.agent AND p.path = u.port"
        " ORDER BY u.agent, p.label, u.ecid", NULL);
    json_t *units = json_array();
    while (st && step(s, st) == SQLITE_ROW)
        json_array_append_new(units, json_pack("{s:o, s:s, s:s, s:s, s:s, s:s, s:s, s:b, s:o, s:s}",
            "ecid", col_ecid(st, 0), "product_type", col_text(st, 1), "serial", col_text(st, 2),
            "mode", fr_mode_name(sqlite3_column_int(st, 3)), "agent", col_text(st, 4),
            "port", col_text(st, 5), "label", col_text(st, 6), "present", sqlite3_column_int(st, 7),
            "last_seen", col_time(st, 8), "run_state", col_text(st, 9)));
    if (st)
        sqlite3_reset(st);
    return json_pack("{s:o}", "units", units);
}

static json_t *doc_ports(struct store *s)
{
    sqlite3_stmt *st = query(s,
        "SELECT p.agent, p.path, p.label, p.hub, p.bus, p.depth, p.power_switch, p.quarantined,"
        " p.strikes, p.quarantine_reason,"
        " (SELECT json_group_array(json_object('ecid', printf('0x%016X', ecid),"
        "  'at', strftime('%Y-%m-%dT%H:%M:%fZ', at / 1000.0, 'unixepoch'),"
        "  'class', class)) FROM (SELECT * FROM port_strikes ps WHERE ps.agent = p.agent"
        "  AND ps.path = p.path ORDER BY at DESC LIMIT 5)),"
        " (SELECT u.ecid FROM units u WHERE u.agent = p.agent AND u.port = p.path AND u.present = 1),"
        " EXISTS (SELECT 1 FROM attempts a WHERE a.agent = p.agent AND a.port = p.path"
        "  AND a.state IN " LIVE ")"
        " FROM ports p ORDER BY p.agent, p.label", NULL);
    json_t *ports = json_array();
    while (st && step(s, st) == SQLITE_ROW) {
        const char *state = sqlite3_column_int(st, 7) ? "quarantined"
                          : sqlite3_column_int(st, 12) ? "busy" : "free";
        json_t *ecid = sqlite3_column_type(st, 11) == SQLITE_NULL ? json_string("") : col_ecid(st, 11);
        json_t *history = json_loads(col_text(st, 10), 0, NULL);
        json_array_append_new(ports, json_pack("{s:s, s:s, s:s, s:s, s:i, s:i, s:b, s:s, s:o, s:i, s:s, s:o}",
            "agent", col_text(st, 0), "path", col_text(st, 1), "label", col_text(st, 2),
            "hub", col_text(st, 3), "bus", sqlite3_column_int(st, 4), "depth", sqlite3_column_int(st, 5),
            "power_switch", sqlite3_column_int(st, 6), "state", state, "ecid", ecid,
            "strikes", sqlite3_column_int(st, 8), "reason", col_text(st, 9),
            "history", history ? history : json_array()));
    }
    if (st)
        sqlite3_reset(st);
    return json_pack("{s:o}", "ports", ports);
}

/* rows of sql (no parameters) into objects with the given keys (t = text, i = integer). */
static json_t *rows_of(struct store *s, const char *sql, const char *const *keys, const char *types)
{
    json_t *list = json_array();
    sqlite3_stmt *st = query(s, sql, NULL);
    while (st && step(s, st) == SQLITE_ROW) {
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
    sqlite3_stmt *st = query(s, "SELECT (ended - started) / 1000.0 FROM attempts"
                                " WHERE outcome = 'success' AND ended >= started", NULL);
    while (st && step(s, st) == SQLITE_ROW)
        json_array_append_new(durations, json_real(sqlite3_column_double(st, 0)));
    if (st)
        sqlite3_reset(st);
    return json_pack("{s:o, s:I, s:o, s:o, s:I, s:o}",
        "restores", rows_of(s, "SELECT a.outcome, a.error_class, COALESCE(u.product_type, ''), COUNT(*)"
                               " FROM attempts a LEFT JOIN units u ON u.ecid = a.ecid"
                               " WHERE a.state = 'ended' GROUP BY 1, 2, 3 ORDER BY 1, 2, 3",
                            restore_keys, "ttti"),
        "attempts", (json_int_t)scalar(s, 0, "SELECT COUNT(*) FROM attempts", NULL),
        "ports", rows_of(s, "SELECT agent, path, label, strikes, quarantined FROM ports"
                            " ORDER BY agent, path", port_keys, "tttii"),
        "runs", rows_of(s, "SELECT state, COUNT(*) FROM unit_runs GROUP BY state ORDER BY state",
                        run_keys, "ti"),
        "queue", (json_int_t)scalar(s, 0, "SELECT COUNT(*) FROM unit_runs r JOIN jobs j ON j.id = r.job"
                                          " WHERE j.state = 'running'"
                                          " AND r.state IN ('waiting_unit', 'needs_move', 'needs_operator')", NULL),
        "durations_s", durations);
}

static json_t *doc_agents(struct store *s)
{
    sqlite3_stmt *st = query(s,
        "SELECT a.id, a.hostname, a.version, a.last_seen, a.slots,"
        " (SELECT COUNT(*) FROM ports p WHERE p.agent = a.id),"
        " (SELECT COUNT(*) FROM units u WHERE u.agent = a.id AND u.present = 1),"
        " (SELECT COUNT(*) FROM attempts t WHERE t.agent = a.id AND t.state IN " LIVE ")"
        " FROM agents a ORDER BY a.id", NULL);
    json_t *agents = json_array();
    while (st && step(s, st) == SQLITE_ROW)
        json_array_append_new(agents, json_pack("{s:s, s:s, s:s, s:o, s:i, s:i, s:i, s:i}",
            "id", col_text(st, 0), "hostname", col_text(st, 1), "version", col_text(st, 2),
            "last_seen", col_time(st, 3), "slots", sqlite3_column_int(st, 4),
            "ports", sqlite3_column_int(st, 5), "units", sqlite3_column_int(st, 6),
            "running", sqlite3_column_int(st, 7)));
    if (st)
        sqlite3_reset(st);
    return json_pack("{s:o}", "agents", agents);
}

static json_t *attempts_of(struct store *s, uint64_t job, uint64_t ecid)
{
    sqlite3_stmt *st = query(s,
        "SELECT a.n, a.agent, a.port, COALESCE(p.label, ''), a.started, a.ended, a.outcome,"
        " a.error_class, a.error_text, a.exit_code, a.log_path, a.state"
        " FROM attempts a LEFT JOIN ports p ON p.agent = a.agent AND p.path = a.port"
        " WHERE a.job = ? AND a.ecid = ? ORDER BY a.n", "uu", job, ecid);
    json_t *list = json_array();
    while (st && step(s, st) == SQLITE_ROW) {
        const char *outcome = col_text(st, 6);
        json_array_append_new(list, json_pack("{s:i, s:s, s:s, s:s, s:o, s:o, s:s, s:s, s:s, s:i, s:s}",
            "n", sqlite3_column_int(st, 0), "agent", col_text(st, 1), "port", col_text(st, 2),
            "label", col_text(st, 3), "started", col_time(st, 4), "ended", col_time(st, 5),
            "outcome", *outcome ? outcome : col_text(st, 11), "error_class", col_text(st, 7),
            "error_text", col_text(st, 8), "exit_code", sqlite3_column_int(st, 9),
            "log_path", col_text(st, 10)));
    }
    if (st)
        sqlite3_reset(st);
    return list;
}

static json_t *doc_report(struct store *s, uint64_t job_id, uint64_t ecid)
{
    if (!job_id)
        job_id = (uint64_t)scalar(s, 0, "SELECT MAX(id) FROM jobs", NULL);
    json_t *jobs = jobs_from(s, query(s, "SELECT " JOB_COLS " FROM jobs WHERE id = ?", "u", job_id));
    if (json_array_size(jobs) == 0) {
        json_decref(jobs);
        return NULL;
    }
    sqlite3_stmt *st = query(s,
        "SELECT r.ecid, COALESCE(u.product_type, ''), COALESCE(u.serial, ''), j.firmware, r.state,"
        " r.started, r.ended FROM unit_runs r JOIN jobs j ON j.id = r.job"
        " LEFT JOIN units u ON u.ecid = r.ecid WHERE r.job = ? AND (? = 0 OR r.ecid = ?)"
        " ORDER BY r.ecid", "uuu", job_id, ecid, ecid);
    json_t *units = json_array();
    while (st && step(s, st) == SQLITE_ROW)
        json_array_append_new(units, json_pack("{s:o, s:s, s:s, s:s, s:s, s:o, s:o, s:I}",
            "ecid", col_ecid(st, 0), "product_type", col_text(st, 1), "serial", col_text(st, 2),
            "firmware", col_text(st, 3), "state", col_text(st, 4), "started", col_time(st, 5),
            "ended", col_time(st, 6), "_ecid", (json_int_t)sqlite3_column_int64(st, 0)));
    if (st)
        sqlite3_reset(st);
    size_t i;
    json_t *u;
    json_array_foreach(units, i, u) {
        uint64_t e = (uint64_t)json_integer_value(json_object_get(u, "_ecid"));
        json_object_set_new(u, "attempts", attempts_of(s, job_id, e));
        json_object_del(u, "_ecid");
    }
    json_t *job = json_incref(json_array_get(jobs, 0));
    json_decref(jobs);
    return json_pack("{s:o, s:o}", "job", job, "units", units);
}

/* ---- documents as the API gives them: whole, or NULL when a read failed ------------ */

static json_t *checked(struct store *s, json_t *doc)
{
    if (!s->read_failed)
        return doc;
    json_decref(doc);
    return NULL;
}

json_t *store_doc_status(struct store *s, uint64_t job_id, int with_runs)
{
    s->read_failed = 0;
    return checked(s, doc_status(s, job_id, with_runs));
}

json_t *store_doc_units(struct store *s)
{
    s->read_failed = 0;
    return checked(s, doc_units(s));
}

json_t *store_doc_ports(struct store *s)
{
    s->read_failed = 0;
    return checked(s, doc_ports(s));
}

json_t *store_doc_agents(struct store *s)
{
    s->read_failed = 0;
    return checked(s, doc_agents(s));
}

json_t *store_doc_report(struct store *s, uint64_t job_id, uint64_t ecid)
{
    s->read_failed = 0;
    return checked(s, doc_report(s, job_id, ecid));
}

json_t *store_doc_moves(struct store *s)
{
    s->read_failed = 0;
    return checked(s, doc_moves(s));
}

json_t *store_doc_metrics(struct store *s)
{
    s->read_failed = 0;
    return checked(s, doc_metrics(s));
}

/* ---- moves ------------------------------------------------------------------------------ */

#define MOVE_NEEDED_WHERE                                                                 \
    " WHERE r.state = 'needs_move'"                                                        \
    " AND NOT EXISTS (SELECT 1 FROM moves m WHERE m.job = r.job AND m.ecid = r.ecid AND m.done = 0)"

int store_moves_pending(struct store *s)
{
    return scalar(s, 0, "SELECT EXISTS (SELECT 1 FROM unit_runs r JOIN jobs j ON j.id = r.job"
                        " AND j.state = 'running'" MOVE_NEEDED_WHERE ")", NULL) > 0;
}

int store_moves_needed(struct store *s, int (*cb)(void *arg, const struct move_need *m), void *arg)
{
    sqlite3_stmt *st = query(s,
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
    while ((rc = next_row(s, st)) == 1) {
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
    sqlite3_stmt *st = query(s,
        "SELECT agent, bus, COUNT(*) FROM ("
        " SELECT p.agent, p.bus FROM unit_runs r JOIN jobs j ON j.id = r.job AND j.state = 'running'"
        "  JOIN units u ON u.ecid = r.ecid JOIN ports p ON p.agent = u.agent AND p.path = u.port"
        "  WHERE r.state IN ('waiting_unit', 'preflight', 'fetching_firmware', 'queued_for_bus',"
        "   'restoring', 'needs_operator')"
        " UNION ALL SELECT p.agent, p.bus FROM moves m"
        "  JOIN ports p ON p.agent = m.to_agent AND p.path = m.to_port WHERE m.done = 0)"
        " GROUP BY agent, bus", NULL);
    int rc = st ? 1 : FR_ESTORE;
    while (st && (rc = next_row(s, st)) == 1) {
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
    if (scalar_rc(s, &total, "SELECT COUNT(*) FROM ports", NULL) < 0)
        return FR_ESTORE;
    struct move_port *mp = calloc((size_t)total + 1, sizeof *mp);
    if (!mp)
        return FR_ENOMEM;
    sqlite3_stmt *st = query(s,
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
    while (st && i < (size_t)total && (rc = next_row(s, st)) == 1) {
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
    int rc = exec(s, "INSERT INTO moves (job, ecid, from_agent, from_port, to_agent, to_port, dfu,"
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

static json_t *doc_moves(struct store *s)
{
    sqlite3_stmt *st = query(s,
        "SELECT m.id, m.job, m.ecid, COALESCE(u.product_type, ''), m.from_agent, m.from_port,"
        " COALESCE(pf.label, ''), m.to_agent, m.to_port, COALESCE(pt.label, ''), m.dfu, m.repeats,"
        " m.created FROM moves m LEFT JOIN units u ON u.ecid = m.ecid"
        " LEFT JOIN ports pf ON pf.agent = m.from_agent AND pf.path = m.from_port"
        " LEFT JOIN ports pt ON pt.agent = m.to_agent AND pt.path = m.to_port"
        " WHERE m.done = 0 ORDER BY m.id", NULL);
    json_t *moves = json_array();
    while (st && step(s, st) == SQLITE_ROW) {
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

int store_port_clear(struct store *s, const char *spec, uint64_t now_ms, char *err, size_t errlen)
{
    sqlite3_stmt *st = query(s, "SELECT agent, path FROM ports WHERE label = ? OR agent || ':' || path = ?",
                             "tt", spec, spec);
    char agent[64] = "", path[64] = "";
    int found = st ? next_row(s, st) : FR_ESTORE;
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
    if (rc == 0)
        rc = exec(s, "UPDATE ports SET quarantined = 0, strikes = 0, quarantine_reason = ''"
                     " WHERE agent = ? AND path = ?", "tt", agent, path);
    if (rc == 0)
        rc = exec(s, "DELETE FROM port_strikes WHERE agent = ? AND path = ?", "tt", agent, path);
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

/* ---- held units, one unit's history, what a submit would match ------------------------ */

static int unit_held(struct store *s, uint64_t ecid, int64_t *job)
{
    *job = scalar(s, 0, "SELECT MAX(x.job) FROM unit_runs x WHERE x.ecid = ? AND x.state = 'hardware_suspect'"
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
    if (rc == 0)
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
    sqlite3_stmt *st = query(s,
        "SELECT r.job, j.name, r.state, r.started, r.ended, r.error_class, r.error_text"
        " FROM unit_runs r JOIN jobs j ON j.id = r.job WHERE r.ecid = ? ORDER BY r.job", "u", ecid);
    json_t *list = json_array();
    while (st && step(s, st) == SQLITE_ROW)
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
                            attempts_of(s, (uint64_t)json_integer_value(json_object_get(run, "job_id")), ecid));
    return list;
}

static json_t *doc_unit(struct store *s, uint64_t ecid)
{
    sqlite3_stmt *st = query(s,
        "SELECT u.ecid, u.product_type, u.serial, u.mode, u.agent, u.port, COALESCE(p.label, ''),"
        " u.present, u.last_seen FROM units u LEFT JOIN ports p ON p.agent = u.agent AND p.path = u.port"
        " WHERE u.ecid = ?", "u", ecid);
    json_t *unit = NULL;
    if (st && step(s, st) == SQLITE_ROW)
        unit = json_pack("{s:o, s:s, s:s, s:s, s:s, s:s, s:s, s:b, s:o}", "ecid", col_ecid(st, 0),
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
    return checked(s, doc_unit(s, ecid));
}

/* Why a unit would not be restored by a new job now: held, or in a live job (its id). */
static const char *unit_blocked(struct store *s, uint64_t ecid, int64_t *job)
{
    if (unit_held(s, ecid, job))
        return "held";
    *job = scalar(s, 0, "SELECT MIN(r.job) FROM unit_runs r JOIN jobs j ON j.id = r.job"
                        " WHERE r.ecid = ? AND j.state = 'running' AND r.state NOT IN " TERMINAL, "u", ecid);
    return *job > 0 ? "in_job" : NULL;
}

static void plan_skip(json_t *plan, uint64_t ecid, const char *why, int64_t job)
{
    char e[FR_ECID_STRLEN];
    fr_ecid_format(ecid, e, sizeof e);
    json_array_append_new(json_object_get(plan, "skipped"),
                          json_pack("{s:s, s:s, s:I}", "ecid", e, "why", why, "job_id", (json_int_t)job));
}

/* The selector's present units (agents, ports or labels), each once. */
static int plan_selector(struct store *s, const struct job_spec *sp, json_t *plan, char *err, size_t errlen)
{
    for (size_t i = 0; i < sp->nagents; i++)
        if (!scalar(s, 0, "SELECT COUNT(*) FROM agents WHERE id = ?", "t", sp->agents[i]))
            return fr_seterr(FR_ENOTFOUND, err, errlen, "submit: no agent '%s' has ever connected "
                             "(see 'flashrack agents')", sp->agents[i]);
    for (size_t i = 0; i < sp->nports; i++)
        if (!scalar(s, 0, "SELECT COUNT(*) FROM ports WHERE label = ? OR agent || ':' || path = ?", "tt",
                    sp->ports[i], sp->ports[i]))
            return fr_seterr(FR_ENOTFOUND, err, errlen, "submit: no port '%s' (expected a rack label "
                             "or agent:path, see 'flashrack ports')", sp->ports[i]);
    char *agents = json_list(sp->agents, sp->nagents), *ports = json_list(sp->ports, sp->nports);
    sqlite3_stmt *st = query(s,
        "SELECT u.ecid, u.agent FROM units u LEFT JOIN ports p ON p.agent = u.agent AND p.path = u.port"
        " WHERE u.present = 1 AND (EXISTS (SELECT 1 FROM json_each(?) WHERE value = u.agent)"
        "  OR EXISTS (SELECT 1 FROM json_each(?) e WHERE e.value = u.agent || ':' || u.port"
        "   OR e.value = p.label)) ORDER BY u.agent, p.label", "tt", agents ? agents : "[]",
        ports ? ports : "[]");
    free(agents);
    free(ports);
    json_t *units = json_object_get(plan, "units");
    while (st && step(s, st) == SQLITE_ROW) {
        char e[FR_ECID_STRLEN];
        fr_ecid_format((uint64_t)sqlite3_column_int64(st, 0), e, sizeof e);
        json_array_append_new(units, json_pack("{s:s, s:s}", "ecid", e, "agent", col_text(st, 1)));
    }
    if (st)
        sqlite3_reset(st);
    return 0;
}

int store_job_plan(struct store *s, const struct job_spec *sp, json_t **out, char *err, size_t errlen)
{
    s->read_failed = 0;
    json_t *plan = json_pack("{s:[], s:[]}", "units", "skipped");
    int rc = plan_selector(s, sp, plan, err, errlen);
    json_t *units = json_object_get(plan, "units");
    for (size_t i = 0; rc == 0 && i < sp->necids; i++) {
        char e[FR_ECID_STRLEN];
        fr_ecid_format(sp->ecids[i], e, sizeof e);
        char *agent = NULL;
        sqlite3_stmt *st = query(s, "SELECT agent FROM units WHERE ecid = ? AND present = 1", "u", sp->ecids[i]);
        if (st && step(s, st) == SQLITE_ROW)
            agent = strdup(col_text(st, 0));
        if (st)
            sqlite3_reset(st);
        json_array_append_new(units, json_pack("{s:s, s:s}", "ecid", e, "agent", agent ? agent : ""));
        free(agent);
    }
    /* what a new job could not restore now: held units, units another live job has */
    json_t *keep = json_array();
    size_t i;
    json_t *u;
    json_array_foreach(units, i, u) {
        uint64_t ecid = 0;
        int64_t job = 0;
        fr_ecid_parse(json_string_value(json_object_get(u, "ecid")), &ecid);
        const char *why = rc == 0 ? unit_blocked(s, ecid, &job) : NULL;
        if (why)
            plan_skip(plan, ecid, why, job);
        else
            json_array_append(keep, u);
    }
    json_object_set_new(plan, "units", keep);
    if (rc == 0 && s->read_failed)
        rc = fr_seterr(FR_ESTORE, err, errlen, "cannot read the units: %s", sqlite3_errmsg(s->db));
    if (rc < 0) {
        json_decref(plan);
        return rc;
    }
    *out = plan;
    return 0;
}
