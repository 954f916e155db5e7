/* store_int — what the store's files share, and nobody else: the struct behind
 * struct store, the SQL fragments naming run and attempt states, and the statement
 * helpers. Only controller/store*.c include it; the rest of flashrackd uses store.h.
 *
 * The store is split by what its statements are about: store.c (schema, helpers, open,
 * transactions, backup, events), store_runs.c (agents, ports, units, attempts),
 * store_sched.c (jobs, scheduling, moves), store_docs.c (documents and queries for
 * clients, the records' lines), store_records.c (the end-of-run hook, the records' facts,
 * writing records). The helpers keep store.h's rules: every prepare and step goes through
 * them, an error inside a transaction poisons it, and one since a document began
 * makes the document NULL. */
#ifndef STORE_INT_H
#define STORE_INT_H

#include <jansson.h>
#include <sqlite3.h>
#include <stddef.h>
#include <stdint.h>

#include "fr_time.h"
#include "fr_types.h"
#include "store.h"

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
    int txn_gone;            /* SQLite rolled the open transaction back itself (store.c) */
    int depth;               /* store_begin nesting: 1 = the transaction, more = savepoints */
    int failed_at[STORE_MAX_DEPTH]; /* txn_failed when each savepoint began */
    int read_failed;         /* an error since a document began: it is not sent half-read */
    long fault_at, fault_calls;
    int fault_code;
    const char *fault_sql;   /* store_fault_arm_sql: the statements counted, */
    long fault_sql_at, fault_sql_steps; /* the step of them that fails, and their steps */
    int fault_sql_code;
    store_run_end_hook run_ended; /* records.h: unit runs reached a terminal state */
    void *run_ended_arg;
    struct store_profile *profile; /* store_profile.c: FR_STORE_PROFILE, else NULL */
    int expanding;           /* store_docs_expanding: selector jobs' runs still being made */
    store_wal_fn wal_fn;     /* store_on_wal_commit: after each commit, else NULL */
    void *wal_arg;
};

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

/* The next change number of unit runs (schema v10, v13): a writer of one run sets
 * "seq = " NEXT_SEQ in its UPDATE, and the trigger then leaves that write alone. Only for
 * an UPDATE of one row: the subquery is read once per statement. */
#define NEXT_SEQ "(SELECT COALESCE(MAX(seq), 0) FROM unit_runs) + 1"

/* Steps st: SQLITE_ROW, SQLITE_DONE, or an error (logged; it poisons the transaction). */
int st_step(struct store *s, sqlite3_stmt *st);
/* A reader loop's step: 1 = a row, 0 = no more rows, FR_ESTORE = an error (BUSY, IOERR...),
 * which is never taken for the end of the rows. */
int st_next_row(struct store *s, sqlite3_stmt *st);
/* The cached statement for sql (a string literal: its address is the key), reset and
 * bound by fmt: t = text, i = int64, u = uint64 (stored as int64), d = double. NULL on
 * an error. */
sqlite3_stmt *st_query(struct store *s, const char *sql, const char *fmt, ...);
/* st_query, stepped once and reset: 0 or FR_ESTORE. */
int st_exec(struct store *s, const char *sql, const char *fmt, ...);
/* The first column of the first row: 0 with *v set, FR_ENOTFOUND (no row or NULL), or
 * FR_ESTORE. */
int st_scalar_rc(struct store *s, int64_t *v, const char *sql, const char *fmt, ...);
/* st_scalar_rc with a default for no row; an error also gives the default, and poisons
 * the transaction it happens in. */
int64_t st_scalar(struct store *s, int64_t dflt, const char *sql, const char *fmt, ...);
/* Unit runs of job (ecid 0: any of them) reached a terminal state inside the open
 * transaction: calls the records hook (store_on_run_ended), if any. */
int st_run_ended(struct store *s, uint64_t job, uint64_t ecid, uint64_t now_ms);
/* An attempt's columns, from at on (ATTEMPT_DOC_COLS), and the joins they need; the
 * _LEAN forms leave out what only st_attempt_obj's full form writes (the agent's
 * versions: '' in their place), and the agents join with it, one lookup less a row. */
#define ATTEMPT_COLS_WITH(agent_cols)                                                          \
    "a.n, a.agent, a.port, COALESCE(p.label, ''), a.started, a.ended, a.outcome,"              \
    " a.error_class, a.error_text, a.exit_code, a.log_path, a.state, a.firmware, a.sha256,"    \
    " a.fw_version, a.fw_build, " agent_cols ", a.verified, a.verification"
#define ATTEMPT_DOC_COLS                                                                       \
    ATTEMPT_COLS_WITH("COALESCE(g.version, ''), COALESCE(g.engine, ''), COALESCE(g.libimobiledevice, '')")
#define ATTEMPT_DOC_COLS_LEAN ATTEMPT_COLS_WITH("'', '', ''")
#define ATTEMPT_DOC_JOINS_LEAN " LEFT JOIN ports p ON p.agent = a.agent AND p.path = a.port"
#define ATTEMPT_DOC_JOINS ATTEMPT_DOC_JOINS_LEAN " LEFT JOIN agents g ON g.id = a.agent"
struct jtext;
/* One attempt as an object, its ATTEMPT_DOC_COLS from column at on (full: with what a record
 * signs too: agent_version, engine, libimobiledevice, started_ms, ended_ms). */
void st_attempt_obj(struct jtext *jt, sqlite3_stmt *st, int at, int full);
/* The attempts of a unit run, as the report shows them; full adds what a record needs
 * (agent_version, engine, libimobiledevice, started_ms, ended_ms). */
json_t *st_attempts(struct store *s, uint64_t job, uint64_t ecid, int full);
/* store_profile.c: the statement profile, when FR_STORE_PROFILE names a file; finish
 * writes it (before the statements are finalized). */
void st_profile_start(struct store *s);
void st_profile_finish(struct store *s);
/* store_sched.c: the present units a running selector job matches that have no run of it
 * yet and that the expansion would give it (in no other live job, not held); its count
 * is not applied. */
int64_t st_unexpanded(struct store *s, uint64_t job);
/* doc, or NULL (and doc freed) when a read failed since s->read_failed was cleared. */
json_t *st_checked(struct store *s, json_t *doc);
/* v[0..n) as a compact JSON array of strings (malloc'ed; NULL when out of memory). */
char *st_json_list(char *const *v, size_t n);
/* ecids[0..n) as a JSON array of the integers the store holds (malloc'ed; NULL when out
 * of memory). */
char *st_ecid_list(const uint64_t *ecids, size_t n);

static inline const char *col_text(sqlite3_stmt *st, int i)
{
    const unsigned char *t = sqlite3_column_text(st, i);
    return t ? (const char *)t : "";
}

static inline json_t *col_time(sqlite3_stmt *st, int i)
{
    char buf[32];
    fr_time_iso8601((uint64_t)sqlite3_column_int64(st, i), buf, sizeof buf);
    return json_string(buf);
}

static inline json_t *col_ecid(sqlite3_stmt *st, int i)
{
    char buf[FR_ECID_STRLEN];
    fr_ecid_format((uint64_t)sqlite3_column_int64(st, i), buf, sizeof buf);
    return json_string(buf);
}

#endif
