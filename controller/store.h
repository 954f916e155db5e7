/* store — the controller's SQLite store. Every SQL statement of flashrackd lives here.
 *
 * WAL mode, foreign keys on, schema versioned with PRAGMA user_version and created
 * on first open. Each open increments the controller epoch; attempt lease epochs
 * come from a second counter (fencing, never wall-clock). Functions return 0 or a
 * negative fr_err code (FR_ESTORE with SQLite's message in err where one is taken).
 * Documents for clients are built here as jansson objects the caller owns.
 *
 * Single-threaded: the controller's loop thread only. */
#ifndef STORE_H
#define STORE_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "flashrack.pb-c.h"
#include "policy.h"

struct store;

int store_open(const char *path, struct store **out, char *err, size_t errlen);
void store_close(struct store **s);
/* This process's controller epoch (incremented at open). */
uint64_t store_epoch(const struct store *s);
/* The last SQLite error text, for logs. */
const char *store_errmsg(const struct store *s);

int store_begin(struct store *s);
int store_commit(struct store *s);
void store_rollback(struct store *s);

/* ---- agents, ports, units ---------------------------------------------- */
int store_agent_hello(struct store *s, const char *agent, const Fr__Hello *h, uint64_t now_ms);
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
};
int store_job_submit(struct store *s, const struct job_spec *spec, uint64_t now_ms,
                     uint64_t *job_id, int *created, char *err, size_t errlen);
/* Cancels non-terminal runs of a job (or of one unit when ecid != 0). For each live
 * attempt, cb(arg, agent, ref) is called so the caller can send JobCancel. */
/* One live attempt, as sent in a JobAssign. */
struct attempt_info {
    const char *agent, *port, *firmware, *sha256;
    int erase;
    uint32_t n;
};
typedef void (*store_attempt_cb)(void *arg, const Fr__AttemptRef *ref, const struct attempt_info *ai);
int store_job_cancel(struct store *s, uint64_t job_id, uint64_t ecid, uint64_t now_ms, int *nruns,
                     store_attempt_cb cb, void *arg);
/* Marks finished jobs done. */
int store_jobs_settle(struct store *s, uint64_t now_ms);

/* ---- scheduling ------------------------------------------------------------ */
/* Creates unit runs for selector jobs (agents/ports) from the units present now. */
int store_sched_expand(struct store *s, uint64_t now_ms);
struct sched_candidate {
    uint64_t job, ecid;
    char agent[64], port[64];
    char product_type[32];
};
/* Waiting runs whose unit is present on a port that is not quarantined and that
 * have no live attempt; cb returns nonzero to stop. */
int store_sched_candidates(struct store *s,
                           int (*cb)(void *arg, const struct sched_candidate *c), void *arg);
/* Creates the attempt (fresh lease epoch) with the firmware it is given (the job's,
 * or what the job's catalog selector means for this unit) and moves the run to
 * preflight. Fills ref (job, attempt, epoch, ecid), erase and the attempt number. */
int store_claim_attempt(struct store *s, const struct sched_candidate *c, uint64_t now_ms,
                        const char *firmware, const char *sha, Fr__AttemptRef *ref, int *erase,
                        uint32_t *n);
/* The job's firmware as submitted (file, URL or catalog selector) and its hash ("" if none). */
void store_job_firmware(struct store *s, uint64_t job, char *fw, size_t fwlen, char *sha, size_t shalen);
/* The newest job's download URL for an IPSW hash (the mirror fetches it from there). */
int store_firmware_url(struct store *s, const char *sha, char *url, size_t len);
/* Calls cb for every live attempt (assigned or running) on agent; state_filter NULL = both. */
int store_live_attempts(struct store *s, const char *agent, const char *state_filter,
                        store_attempt_cb cb, void *arg);

/* Live attempts (assigned or running) on agent. */
int store_live_count(struct store *s, const char *agent);
/* Whether the run behind a live attempt still wants it (not cancelled or ended). */
int store_attempt_wanted(struct store *s, const Fr__AttemptRef *ref);

/* ---- attempts ------------------------------------------------------------ */
/* Whether ref names a live attempt (job, attempt, epoch all match). */
int store_attempt_live(struct store *s, const Fr__AttemptRef *ref);
int store_attempt_accepted(struct store *s, const Fr__AttemptRef *ref, int accepted,
                           const char *reason, uint64_t now_ms);
int store_attempt_progress(struct store *s, const Fr__AttemptRef *ref, const Fr__JobProgress *p,
                           uint64_t now_ms);
/* What applying a result did. */
struct result_effects {
    int applied;            /* 0: stale (recorded as an event, not applied) */
    char next_state[32];    /* the run's new state */
    char port[64];          /* the attempt's port */
    char why[160];          /* the policy's reason */
    int struck;             /* the port got a strike */
    int quarantined;        /* ... and is quarantined from now on */
    int power_cycle;        /* power-cycle the port (its hub can) */
    int from_dfu;           /* the next attempt should start from DFU */
};
struct policy_cfg;
/* Applies a result: ends the attempt and moves the run on as the remediation
 * policy (policy.h) decides, with port strikes and quarantine. */
int store_apply_result(struct store *s, const char *agent, const Fr__JobResult *r, uint64_t now_ms,
                       const struct policy_cfg *pc, struct result_effects *fx);
/* Attempts live on agent that are not in keep[]: outcome interrupted, run waits again. */
int store_interrupt_missing(struct store *s, const char *agent, Fr__AttemptRef *const *keep,
                            size_t nkeep, uint64_t now_ms, int *ninterrupted);

/* ---- moves (the different-port ladder) --------------------------------------------- */
struct move_need {
    uint64_t job, ecid;
    char from_agent[64], from_port[64];
    int from_dfu;
    char avoid[2048];        /* JSON list of "agent:path" */
};
/* Runs in needs_move without an open move instruction. */
int store_moves_needed(struct store *s, int (*cb)(void *arg, const struct move_need *m), void *arg);
struct move_port {
    char id[128], agent[64], path[64], hub[64];
    struct policy_port p;    /* points into the fields above */
};
/* Every port, with p.usable set when a unit could be moved there now: its agent is
 * online (online(arg, agent)), it is not quarantined, nothing is plugged in, no
 * attempt runs there and no open move targets it. Free *out with free(). */
int store_move_ports(struct store *s, int (*online)(void *arg, const char *agent), void *arg,
                     struct move_port **out, size_t *n);
int store_move_add(struct store *s, const struct move_need *m, const char *to_agent,
                   const char *to_port, uint64_t now_ms);
json_t *store_doc_moves(struct store *s);
/* Clears a port's quarantine and strikes ("agent:path" or rack label). */
int store_port_clear(struct store *s, const char *spec, uint64_t now_ms, char *err, size_t errlen);

/* ---- audit ------------------------------------------------------------------ */
int store_event(struct store *s, uint64_t now_ms, const char *kind, uint64_t job, uint64_t ecid,
                const char *agent, const char *port, const char *text);

/* ---- documents (proto/PROTOCOL.md "Documents") -------------------------------- */
json_t *store_doc_status(struct store *s, uint64_t job_id, int with_runs);
json_t *store_doc_units(struct store *s);
json_t *store_doc_ports(struct store *s);
/* Agents rows; the caller adds live fields (state, running, dropped_msgs). */
json_t *store_doc_agents(struct store *s);
json_t *store_doc_report(struct store *s, uint64_t job_id, uint64_t ecid);

#endif
