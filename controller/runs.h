/* runs — the one owner of "an attempt ended".
 *
 * A result from an agent, a refusal, or an end the controller decides itself (a
 * firmware selector that resolves to nothing) all come here. runs_apply() checks that
 * the attempt is the sender's (agent, job, attempt, epoch, ECID and token all match),
 * then ends it, asks the remediation policy (policy.h) what comes next, and writes the
 * port strikes, quarantine and the run's next state in ONE transaction. Only after the
 * commit does runs_end() act on it: power-cycle the port, log, kick the scheduler. A
 * result that does not match is recorded as an event and counted, never applied.
 *
 * runs_apply() needs only the store and the policy (unit-testable, failure-injected);
 * runs_end() and runs_on_*() are the controller's (loop thread). */
#ifndef RUNS_H
#define RUNS_H

#include <stdint.h>

#include "flashrack.pb-c.h"
#include "policy.h"
#include "store.h"

struct controller;
struct agent_state;

/* How an attempt ended (what a JobResult says, or what the controller decided). */
struct run_end {
    Fr__Outcome outcome;
    const char *error_class;    /* fr_class name, "" on success */
    const char *error_text, *log_path;
    const char *port;           /* "" = the port it was assigned to */
    int exit_code;
    uint64_t ended_ms;          /* 0 = now */
    const char *fw_version, *fw_build; /* what the engine read from the IPSW (NULL or "": not said) */
    /* after a success: what the unit said back in normal mode, or why nothing was read */
    const char *unit_version, *unit_build, *unverified;
};

/* What applying it did. */
struct run_effects {
    int match;                  /* enum attempt_match: only ATTEMPT_LIVE was applied */
    char next_state[32];        /* the run's new state */
    char port[64];              /* the attempt's port */
    char why[160];              /* the policy's reason */
    int struck;                 /* the port got a strike */
    int quarantined;            /* ... and is quarantined from now on */
    int power_cycle;            /* power-cycle the port (its hub can) */
    int from_dfu;               /* the next attempt should start from DFU */
};

/* Applies the end of ref's attempt, sent by agent, in one transaction. 0 when committed
 * (applied, or recorded as stale or mismatched: see fx->match); a negative fr_err code
 * when nothing was committed (the caller must not acknowledge it). */
int runs_apply(struct store *s, const struct policy_cfg *pc, const char *agent,
               const Fr__AttemptRef *ref, const struct run_end *e, uint64_t now_ms,
               struct run_effects *fx);

/* A refused attempt is not handed out again at once: after the nth refusal in a row
 * the run waits base_ms * 2^(n-1) (at most RUNS_BACKOFF_MAX_MS); after
 * RUNS_REFUSALS_HOLD in a row it is held, with the reason in its status, until its unit
 * is plugged in again. (An agent that refuses at once would otherwise be reassigned in
 * a loop: thousands of refusals a second.) */
#define RUNS_REFUSALS_HOLD 5
#define RUNS_BACKOFF_MAX_MS 30000
/* Ends ref's attempt as refused inside the caller's transaction and holds the run back;
 * *delay_ms is how long (-1: held until the unit is plugged in again). */
int runs_refused(struct store *s, const Fr__AttemptRef *ref, const char *reason, int64_t base_ms,
                 uint64_t now_ms, int64_t *delay_ms);

/* runs_apply, then its effects. Returns runs_apply's code. */
int runs_end(struct controller *c, struct agent_state *a, const Fr__AttemptRef *ref,
             const struct run_end *e);
/* A JobResult from agent a. */
int runs_on_result(struct controller *c, struct agent_state *a, const Fr__JobResult *r);
/* A JobAccept from agent a: running, or refused (the attempt ends, the unit waits). */
int runs_on_accept(struct controller *c, struct agent_state *a, const Fr__JobAccept *acc);
/* Matches ref from agent a inside the caller's transaction; a mismatch is recorded as
 * an event and counted on a. Returns enum attempt_match, or a negative fr_err code. */
int runs_match(struct controller *c, struct agent_state *a, const Fr__AttemptRef *ref,
               const char *what, uint64_t now_ms);

#endif
