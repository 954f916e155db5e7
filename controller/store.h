/* store — the controller's SQLite store. Every SQL statement of flashrackd lives in store*.c
 * (store_int.h says which file holds what); this header is their interface.
 *
 * WAL mode, foreign keys on, schema versioned with PRAGMA user_version and created
 * on first open. An open store is held exclusively (flock on PATH.lock, taken before
 * anything is written): a second controller on it is refused with FR_EBUSY. The
 * controller epoch is incremented by store_bump_epoch(), which flashrackd calls once
 * its sockets are bound; attempt lease epochs come from a second counter (fencing,
 * never wall-clock). Functions return 0 or a negative fr_err code (FR_ESTORE with
 * SQLite's message in err where one is taken). An error of any statement inside a
 * transaction makes store_commit() refuse it. Reader loops stop on SQLITE_DONE only;
 * any other code is an error, never "no more rows". Documents for clients are built
 * here as jansson objects the caller owns; NULL when the store could not be read.
 *
 * Single-threaded: the controller's loop thread only. */
#ifndef STORE_H
#define STORE_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "flashrack.pb-c.h"

struct store;

/* The WAL file's size once it starts again after a checkpoint (journal_size_limit, on the
 * store's connection: the writer's first commit into a WAL started again truncates the
 * file; checkpoint.c's connection never writes, so its limit would change nothing).
 * SQLite reuses a WAL file in place and never shrinks it by itself: after a burst (the
 * FULL step comes only at about 100 MB, checkpoint.h) the file would keep its largest
 * size for good. 64 MiB: far above the 4 MB the checkpoints keep the WAL to in normal
 * running, so the file is cut only after a WAL that long (one ftruncate), not grown and
 * cut at every checkpoint. */
#define STORE_WAL_LIMIT (64 * 1024 * 1024)

/* Locks and opens (creating or upgrading) the store at path. FR_EBUSY: another
 * process holds it. */
int store_open(const char *path, struct store **out, char *err, size_t errlen);
/* Closes; FR_EBUSY if SQLite still had statements open (a leak; it is logged). */
int store_close(struct store **s);
/* After every commit of s's connection: fn(arg, frames), the WAL's length in frames (pages)
 * then. Setting one turns SQLite's automatic checkpoint off for that connection (it ran
 * inside the COMMIT, on the committing thread; checkpoint.h runs them elsewhere); NULL
 * gives it back (every 1,000 pages). The WAL is checkpointed, whatever was set, when the
 * store closes. */
typedef void (*store_wal_fn)(void *arg, int frames);
void store_on_wal_commit(struct store *s, store_wal_fn fn, void *arg);
/* The store's file as SQLite opened it (an absolute path). */
const char *store_path(const struct store *s);
/* Starts this process's controller epoch (the stored one + 1). */
int store_bump_epoch(struct store *s);
/* This process's controller epoch (the stored one until store_bump_epoch()). */
uint64_t store_epoch(const struct store *s);
/* Copies the store at path (live or not; it takes no lock) to dest with SQLite's online
 * backup API: a consistent snapshot of what was committed, the WAL included, written
 * to dest.tmp and renamed. (A plain cp of a live WAL store misses the WAL.) */
int store_backup(const char *path, const char *dest, char *err, size_t errlen);
#ifdef FR_STORE_FAULTS
/* Test builds only: the nth SQLite call (prepare or step) from now fails with code
 * (SQLITE_IOERR, SQLITE_FULL, SQLITE_BUSY...); n = 0 disarms. */
void store_fault_arm(struct store *s, long n, int code);
/* Calls counted since the last arm. */
long store_fault_calls(const struct store *s);
/* Test builds only: the nth step from now of the statements whose SQL begins with prefix
 * (a literal the caller keeps) fails with code; NULL disarms. */
void store_fault_arm_sql(struct store *s, const char *prefix, long n, int code);
#endif
/* The last SQLite error text, for logs. */
const char *store_errmsg(const struct store *s);
/* The virtual-machine steps of every statement the store has run: the work it did, in a
 * count that does not depend on the machine's speed (tests compare it across site
 * sizes: work per unit that grows with the site is a scan). */
/* The statements the store has run (SQLite's count of each cached statement's runs). */
uint64_t store_statements_run(const struct store *s);
uint64_t store_vm_steps(const struct store *s);
/* The rows every statement has inserted, updated or deleted, those of triggers included:
 * tests count the writes a message costs. */
uint64_t store_rows_changed(const struct store *s);
/* Whether the last document (store_doc_*) came back NULL because a read failed. */
int store_read_failed(const struct store *s);

/* A begin inside an open transaction is a savepoint: its commit releases it, its
 * rollback undoes only what followed it (and forgets failures that came after it). A
 * begin that failed opened nothing: its caller returns the error without a rollback (at
 * a depth > 0 that rollback would undo the enclosing transaction, which only its owner
 * ends), and the enclosing transaction, poisoned by the failure, does not commit. When
 * SQLite rolls an open transaction back by itself (an interrupt, an I/O error or a full
 * disk in a write), every statement fails until its owner rolls it back: none runs
 * outside it. */
int store_begin(struct store *s);
int store_commit(struct store *s);
void store_rollback(struct store *s);
/* Whether a transaction is open. */
int store_in_txn(const struct store *s);
/* Whether the open transaction can still commit: no statement of it failed (outside a
 * savepoint that was rolled back since). */
int store_txn_ok(const struct store *s);

/* ---- agents, ports, units ---------------------------------------------- */
/* An agent's Hello, in one transaction: the agent, its ports, the units present, and
 * its running attempts that the Hello does not list end as interrupted (their runs wait
 * again; *ninterrupted says how many, may be NULL). */
int store_agent_hello(struct store *s, const char *agent, const Fr__Hello *h, uint64_t now_ms,
                      int *ninterrupted);
int store_unit_event(struct store *s, const char *agent, const Fr__PortEvent *ev, uint64_t now_ms);

/* ---- jobs ---------------------------------------------------------------- */
struct job_spec {
    const char *key, *name, *firmware, *sha256;
    const uint64_t *ecids;
    size_t necids;
    char *const *agents;
    size_t nagents;
    char *const *ports;
    size_t nports;
    uint32_t count, max_attempts;
    int erase, standing, same_port;
    const char *operator;       /* the authenticated key's name that submitted it (may be NULL) */
};
/* Stores a job, or finds the one submitted with the same key: the same request gives
 * the same job (*created 0); the same key with a different request is FR_EEXIST naming
 * the first field that differs (as the IETF Idempotency-Key draft says). */
int store_job_submit(struct store *s, const struct job_spec *spec, uint64_t now_ms,
                     uint64_t *job_id, int *created, char *err, size_t errlen);
/* 1 and *job when a job was submitted with key, 0 when none, FR_ESTORE. */
int store_job_by_key(struct store *s, const char *key, uint64_t *job);
/* One live attempt, as sent in a JobAssign. */
struct attempt_info {
    const char *agent, *port, *firmware, *sha256;
    int erase;
    uint32_t n;
};
typedef void (*store_attempt_cb)(void *arg, const Fr__AttemptRef *ref, const struct attempt_info *ai);
/* Cancels non-terminal runs of a job (or of one unit when ecid != 0) in one
 * transaction. After the commit (never before, never when it failed) cb is called for
 * each attempt that was live, so the caller can send JobCancel. cb may be NULL. */
typedef void (*store_cancel_cb)(void *arg, const Fr__AttemptRef *ref, const char *agent);
int store_job_cancel(struct store *s, uint64_t job_id, uint64_t ecid, uint64_t now_ms, int *nruns,
                     store_cancel_cb cb, void *arg);
/* Marks finished jobs done: every running one, or the one job given. */
int store_jobs_settle(struct store *s, uint64_t now_ms);
int store_job_settle(struct store *s, uint64_t job, uint64_t now_ms);

/* ---- scheduling ------------------------------------------------------------ */
/* Creates unit runs for selector jobs (agents/ports) from the units present now: every
 * unit when ecids is NULL, else only ecids[0..n) (the units that changed). */
int store_sched_expand(struct store *s, uint64_t now_ms, const uint64_t *ecids, size_t n);
/* Where a look at the whole site has got to: the last unit's agent and port ("" "" to
 * begin with). */
struct expand_cursor {
    char agent[64], port[64];
};
/* store_sched_expand for every unit, one page at a time: the next max present units
 * after cur in (agent, port) order; cur moves past them, and *done says that no unit
 * lies beyond. A pass at a time, so that a 10,000-unit submit never blocks the loop. */
int store_sched_expand_page(struct store *s, uint64_t now_ms, struct expand_cursor *cur, size_t max,
                            int *done);
struct sched_candidate {
    uint64_t job, ecid;
    char agent[64], port[64];
    char product_type[32];
};
/* Waiting runs whose unit is present on a port that is not quarantined, that have no
 * live attempt and are not held back (refusals); cb returns nonzero to stop. */
int store_sched_candidates(struct store *s,
                           int (*cb)(void *arg, const struct sched_candidate *c), void *arg);
/* Creates the attempt (fresh lease epoch) with the firmware it is given (the job's,
 * or what the job's catalog selector means for this unit) and moves the run to
 * preflight. Fills ref (job, attempt, epoch, ecid), erase and the attempt number. */
int store_claim_attempt(struct store *s, const struct sched_candidate *c, uint64_t now_ms,
                        const char *firmware, const char *sha, Fr__AttemptRef *ref, int *erase,
                        uint32_t *n);
/* One claim of a batch: the candidate and its firmware in, the attempt out. */
struct claim {
    const struct sched_candidate *c;
    const char *firmware, *sha;
    const char *fw_version, *fw_build; /* the catalog's build for it, or NULL */
    Fr__AttemptRef ref; /* job, attempt, epoch, ecid, token */
    int erase;
    uint32_t n;         /* the attempt's number for its run */
};
/* Claims every one of cl[0..n) as store_claim_attempt does, in one savepoint: all of
 * them, or (an error) none and the store as it was. */
int store_claim_attempts(struct store *s, struct claim *cl, size_t n, uint64_t now_ms);
/* The job's firmware as submitted (file, URL or catalog selector) and its hash ("" if none). */
int store_job_firmware(struct store *s, uint64_t job, char *fw, size_t fwlen, char *sha, size_t shalen);
/* The newest job's download URL for an IPSW hash (the mirror fetches it from there). */
int store_firmware_url(struct store *s, const char *sha, char *url, size_t len);
/* Calls cb for every live attempt (assigned or running) on agent; state_filter NULL = both. */
int store_live_attempts(struct store *s, const char *agent, const char *state_filter,
                        store_attempt_cb cb, void *arg);
/* Calls cb for every attempt on agent still assigned (not accepted) that was claimed
 * before claimed_before_ms (wall clock): the JobAssigns the heartbeat may send again. */
int store_assigned_attempts(struct store *s, const char *agent, uint64_t claimed_before_ms,
                            store_attempt_cb cb, void *arg);

/* Live attempts (assigned or running) on agent, or FR_ESTORE. */
int store_live_count(struct store *s, const char *agent);
/* Ports known on agent (every port its Hellos listed). */
int store_port_count(struct store *s, const char *agent);
/* Whether the run behind a live attempt still wants it (not cancelled or ended): 1, 0,
 * or FR_ESTORE. */
int store_attempt_wanted(struct store *s, const Fr__AttemptRef *ref);

/* ---- attempts ------------------------------------------------------------ */
/* The writers below work inside the caller's transaction (store_begin/commit): runs.c
 * decides what an ended attempt means and writes it with them in one transaction. */

enum attempt_match {
    ATTEMPT_NONE = 0,   /* no attempt has this agent, job, attempt, epoch, ECID and token */
    ATTEMPT_ENDED = 1,  /* all match, and the attempt has ended (a replay, or stale) */
    ATTEMPT_LIVE = 2,   /* all match, and it is assigned or running */
};
/* How ref, sent by agent, matches the store (enum attempt_match), or FR_ESTORE. */
int store_attempt_match(struct store *s, const char *agent, const Fr__AttemptRef *ref);
/* An assigned attempt becomes running (accepted, or progress seen). */
int store_attempt_running(struct store *s, const Fr__AttemptRef *ref);
/* The agent refused the attempt: it ends, and the run waits for its unit again;
 * *refusals is how many attempts of the run were refused in a row now. */
int store_attempt_refused(struct store *s, const Fr__AttemptRef *ref, const char *reason,
                          uint64_t now_ms, int *refusals);
/* The run is not assigned before not_before_ms (wall clock; a unit plugged in again
 * lifts it); status says why. */
int store_run_hold(struct store *s, uint64_t job, uint64_t ecid, int64_t not_before_ms,
                   const char *status);
/* The agent accepted: the attempt runs, and the run's refusals start over. */
int store_run_accepted(struct store *s, const Fr__AttemptRef *ref);
/* Writes progress of ref's attempt when it is running, agent's, and in its run's state
 * already: 1 written, 0 not (match ref and call store_attempt_progress), FR_EINVAL for a
 * terminal or unknown state. One statement, no match before it. */
int store_progress_running(struct store *s, const char *agent, const Fr__AttemptRef *ref,
                           const Fr__JobProgress *p, uint64_t now_ms);
/* Writes progress of a live attempt (the caller has matched ref). */
int store_attempt_progress(struct store *s, const Fr__AttemptRef *ref, const Fr__JobProgress *p,
                           uint64_t now_ms);
/* How an attempt ended, as stored on it. */
struct attempt_end {
    const char *outcome;        /* success, failed, cancelled, interrupted, refused */
    const char *error_class, *error_text, *log_path, *port;
    int exit_code;
    uint64_t ended_ms;
    /* the firmware's iOS version and build as the engine read them from the IPSW: they
     * replace the catalog's (store_attempt_set_build) when given; NULL or "" keeps them */
    const char *fw_version, *fw_build;
    /* what the unit said after a finished restore ("" = not read), and the verdict
     * (verify.h: its status name and sentence; "" for an attempt that did not restore) */
    const char *unit_version, *unit_build, *verified, *verification;
};
int store_attempt_end(struct store *s, const Fr__AttemptRef *ref, const struct attempt_end *e);
/* The port an attempt was assigned to (FR_ENOTFOUND if there is no such attempt). */
int store_attempt_port(struct store *s, uint64_t attempt_id, char *port, size_t len);
/* The run's earlier failed attempts, oldest first: cb(class, "agent:port"). */
int store_run_failures(struct store *s, uint64_t job, uint64_t ecid, uint64_t except_attempt,
                       void (*cb)(void *arg, const char *error_class, const char *port_id), void *arg);
int store_job_max_attempts(struct store *s, uint64_t job, int dflt);
/* The most recent strikes store_port_strike() reports (the policy's window needs a few). */
#define STORE_STRIKES_MAX 64
/* One strike on a port; then cb for its latest STORE_STRIKES_MAX strikes, newest first. */
int store_port_strike(struct store *s, const char *agent, const char *port, uint64_t ecid,
                      const char *cls, uint64_t now_ms,
                      void (*cb)(void *arg, uint64_t ecid, int64_t at_ms), void *arg);
/* Quarantines a port with a reason (and an event): 1 if it was not quarantined yet, else 0. */
int store_port_quarantine(struct store *s, const char *agent, const char *port, uint64_t ecid,
                          const char *reason, uint64_t now_ms);
/* Whether the port's hub can switch its power (0 when unknown). */
int store_port_power_switch(struct store *s, const char *agent, const char *port);
/* The run avoids port_id ("agent:path") from now on; from_dfu for its next attempt. */
int store_run_avoid(struct store *s, uint64_t job, uint64_t ecid, const char *port_id, int from_dfu);
/* The run's state after an attempt. */
struct run_next {
    const char *state, *error_class, *error_text, *why;
    int terminal;               /* the run has ended: its end time is set */
};
int store_run_next(struct store *s, uint64_t job, uint64_t ecid, const struct run_next *n,
                   uint64_t now_ms);
/* ---- moves (the different-port ladder) --------------------------------------------- */
struct move_need {
    uint64_t job, ecid;
    char from_agent[64], from_port[64];
    int from_dfu;
    const char *avoid;       /* JSON list of "agent:path" (valid during the callback) */
};
/* Runs in needs_move without an open move instruction. */
int store_moves_needed(struct store *s, int (*cb)(void *arg, const struct move_need *m), void *arg);
/* Whether any run of a running job needs a move that is not planned yet (cheap: the
 * scheduler plans moves, which reads every port, only then). */
int store_moves_pending(struct store *s);
struct move_port {
    char id[128], agent[64], path[64], hub[64];
    uint32_t bus, depth;
    int strikes;
    int usable;              /* see below */
    int eligible;            /* its agent is online and it is not quarantined */
    int load;                /* units still to send their data on its root bus */
};
/* Every port, with usable set when a unit could be moved there now: its agent is
 * online (online(arg, agent)), it is not quarantined, nothing is plugged in, no
 * attempt runs there and no open move targets it. Free *out with free(). */
int store_move_ports(struct store *s, int (*online)(void *arg, const char *agent), void *arg,
                     struct move_port **out, size_t *n);
int store_move_add(struct store *s, const struct move_need *m, const char *to_agent,
                   const char *to_port, uint64_t now_ms);
/* Open move instructions; "dfu" says the unit should start from DFU (the caller adds
 * the model's button sequence). */
json_t *store_doc_moves(struct store *s);
/* ---- held units, one unit, what a submit would match ------------------------------- */
/* A hardware_suspect unit is held in every job until released (FR_ENOTFOUND when it
 * is not held). */
int store_unit_release(struct store *s, uint64_t ecid, uint64_t now_ms, char *err, size_t errlen);
/* {"unit": {..., "held", "held_by_job"}, "history": [{"job_id", "job_name", "state", "started",
 * "ended", "error_class", "error", "attempts": [...]}]}; NULL when no such unit. */
json_t *store_doc_unit(struct store *s, uint64_t ecid);
/* What spec names now: {"matched": N (restorable now, or waited for), "agents": {agent:
 * units} ("" for named units not connected), "unconnected": [ecid] (those, the first
 * 100), "skipped": [{"ecid", "why": "held"|"in_job", "job_id"}] (the first 100, named
 * units first), "skipped_total": M}. An agent that never connected or a port no agent
 * reported is FR_ENOTFOUND naming it. */
int store_job_plan(struct store *s, const struct job_spec *spec, json_t **plan, char *err, size_t errlen);

/* Clears a port's quarantine and strikes ("agent:path" or rack label). */
int store_port_clear(struct store *s, const char *spec, uint64_t now_ms, char *err, size_t errlen);

/* ---- audit ------------------------------------------------------------------ */
int store_event(struct store *s, uint64_t now_ms, const char *kind, uint64_t job, uint64_t ecid,
                const char *agent, const char *port, const char *text);

/* ---- documents (proto/PROTOCOL.md "Documents") -------------------------------- */
/* A page of a document's list (proto/PROTOCOL.md "Pages"): at most limit rows after
 * cursor ("" = from the first; else the "next" of the page before). A paged document
 * carries "next": the cursor of the following page, "" after the last. NULL, or limit
 * <= 0: the whole document, without "next". Pages follow a key of each row (keyset,
 * not offsets): a row added or removed between two pages moves no other row. */
struct store_page {
    const char *cursor;
    int limit;
};
/* A page also ends after the row that takes its text past this, whatever its limit, so
 * that a page of large rows (a report's units with many attempts) fits a message. */
#define STORE_PAGE_BYTES (512 * 1024)
/* Decorates the open moves of a status or watch document before it is written (the
 * controller adds each move's buttons); may be NULL. */
typedef void (*store_moves_fn)(json_t *moves);
/* Whether the controller is still making selector jobs' runs from the units present (a
 * look at the whole site, a page a pass): while on, a running job's totals count its
 * matches without a run yet as units waiting, and "expanding" says how many. */
void store_docs_expanding(struct store *s, int on);
json_t *store_doc_status(struct store *s, uint64_t job_id, int with_runs);
/* Pages of one job's runs (job_id > 0); the jobs and moves come whole on every page. */
json_t *store_doc_status_page(struct store *s, uint64_t job_id, int with_runs, const struct store_page *pg);
/* A watch's frame (proto/PROTOCOL.md "watch"): the jobs and moves of store_doc_status's
 * watch, and the runs changed after since (0 = every run) in change order, at most limit
 * (<= 0: all); "seq" is the since of the next frame, "more" that it may have more now. */
json_t *store_doc_watch(struct store *s, uint64_t job_id, int64_t since, int limit);
json_t *store_doc_units(struct store *s, const struct store_page *pg);
json_t *store_doc_ports(struct store *s, const struct store_page *pg);
/* A port as the rack page's tile shows it (controller/page_tiles.h): its unit (ECID and
 * model, "" when none is plugged in; of several present on it, the one the ports document
 * names), quarantined or not, its strikes, the reason its ports document gives, and its
 * change number (ports.seq). Strings valid during the call only. */
struct store_rack_port {
    const char *agent, *path, *label, *hub, *reason, *ecid, *model;
    int quarantined;
    long long strikes;
    int64_t seq;
};
typedef void (*store_rack_port_fn)(void *arg, const struct store_rack_port *port);
/* The ports written after change number since (0: every port), in change order, at most
 * limit of them, fn called for each: how many, or FR_ESTORE when the store could not be
 * read (fn may have seen some ports). */
int store_rack_ports_since(struct store *s, int64_t since, int limit, store_rack_port_fn fn, void *arg);
/* What tells a quiet rack from one whose runs or jobs changed: the newest change number
 * of any unit run (unit_runs.seq) and the watched jobs' ids, states and names, as text
 * (malloc'ed; NULL when the store could not be read). */
char *store_rack_stamp(struct store *s);
/* Agents rows; the caller adds live fields (state, running, dropped_msgs). */
json_t *store_doc_agents(struct store *s);
/* Pages of its units. */
json_t *store_doc_report(struct store *s, uint64_t job_id, uint64_t ecid, const struct store_page *pg);
/* The same documents as compact JSON text, written without a jansson tree (what a reply
 * carries; the json_t forms above are this text read back). malloc'ed; NULL as above (no
 * such job, or a read failed: store_read_failed says which). */
char *store_text_status(struct store *s, uint64_t job_id, int with_runs, const struct store_page *pg,
                        store_moves_fn moves_fn);
char *store_text_watch(struct store *s, uint64_t job_id, int64_t since, int limit, store_moves_fn moves_fn);
/* A page of a watch's snapshot: the watched jobs' runs in key order (job, ECID) after the
 * cursor ("[]" for the first page, then the page before's "next"), with "seq" (since, or
 * on the first page the store's newest change), "more" and "next". */
char *store_text_watch_snapshot(struct store *s, uint64_t job_id, int64_t since, const struct store_page *pg,
                                store_moves_fn moves_fn);
char *store_text_units(struct store *s, const struct store_page *pg);
char *store_text_ports(struct store *s, const struct store_page *pg);
char *store_text_report(struct store *s, uint64_t job_id, uint64_t ecid, const struct store_page *pg);
/* What /metrics shows from the store (metrics.h): {"restores": [{"result", "class", "model",
 * "n"}], "attempts", "ports": [{"agent", "path", "label", "strikes", "quarantined"}],
 * "runs": [{"state", "n"}], "queue", "durations_s": [s...] (successful attempts)}. */
json_t *store_doc_metrics(struct store *s);

/* ---- sanitization records (records.h) -------------------------------------------- */
/* hook is called inside the open transaction each time unit runs reach a terminal state
 * (ecid 0: some runs of job, a cancel); a non-zero return fails that transaction. It
 * must not write: records are written after that transaction commits (records.h). */
typedef int (*store_run_end_hook)(void *arg, struct store *s, uint64_t job, uint64_t ecid,
                                  uint64_t now_ms);
void store_on_run_ended(struct store *s, store_run_end_hook hook, void *arg);
/* The iOS version and build an attempt's firmware is (the catalog's word for it). */
int store_attempt_set_build(struct store *s, uint64_t attempt_id, const char *version, const char *build);
/* cb for each ended run of job (of ecid, unless 0; of every job when job is 0) that has
 * no record yet; a non-zero return from cb stops there and is returned. */
int store_records_missing(struct store *s, uint64_t job, uint64_t ecid,
                          int (*cb)(void *arg, uint64_t job, uint64_t ecid), void *arg);
/* How many ended runs of job (0: any) and ecid (0: any) have no record yet: their records
 * are pending, written after the transactions that ended them; -1 when a read failed. */
int64_t store_records_pending(struct store *s, uint64_t job, uint64_t ecid);
/* What the store knows of an ended run: {"job_id", "job_name", "job_firmware", "erase",
 * "operator", "state", "started_ms", "ended_ms", "error_class", "error_text",
 * "product_type", "serial", "cpid", "bdid", "ecid", "attempts": [{..., "firmware", "sha256",
 * "version", "build", "agent_version", "engine", "libimobiledevice", "started_ms",
 * "ended_ms"}]}; NULL when none (or when a read failed). */
json_t *store_record_facts(struct store *s, uint64_t job, uint64_t ecid);
/* A unit run: its job and its unit. */
struct store_run {
    uint64_t job, ecid;
};
/* store_record_facts of runs[0..n), read in one statement for the runs and one for all of
 * their attempts (not two per run): out[i] the facts of runs[i] (the caller decrefs), NULL
 * for a run the store has not. 0, or a negative fr_err code with every out[i] NULL. */
int store_record_facts_batch(struct store *s, const struct store_run *runs, size_t n, json_t **out);
/* Stores a signed record line once (a second one for the run fails: FR_ESTORE). */
int store_record_insert(struct store *s, uint64_t job, uint64_t ecid, const char *key_id,
                        const char *line, uint64_t now_ms);
/* {"records": [LINE...]}: the signed lines of job (0: any) and ecid (0: any). */
json_t *store_doc_records(struct store *s, uint64_t job, uint64_t ecid);

#endif
