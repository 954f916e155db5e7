/* unit_run — one accepted attempt on one unit, and its state machine.
 *
 * preflight → queued_for_bus → restoring → verifying → done, or failed (with a
 * class) or cancelled. After a restore that finished, the run stays in verifying
 * until the unit is back in normal mode and its lockdownd has said ProductVersion and
 * BuildVersion (sent with the result), at most [engine] verify_wait_s; a backend that
 * reads no lockdownd, or a unit that does not come back in time, is "not verified"
 * with the reason. Every change goes through unit_run_set_state(), which logs
 * "unit 0x…: from -> to (why)" and marks the run for the agent's next progress round
 * (progress.h). The run owns its engine child; it is freed once the engine has exited
 * and the result is in the outbox. */
#ifndef UNIT_RUN_H
#define UNIT_RUN_H

#include "agent.h"
#include "engine.h"

struct unit_run {
    struct agent *agent;
    Fr__AttemptRef ref;
    char port_path[32];
    char product_type[24];        /* as discovered ("" when not known) */
    int unit_mode;                /* the unit's mode when assigned */
    int awaiting_recovery;        /* lockdown took EnterRecovery; waiting for its return */
    int awaiting_normal;          /* restored; waiting for it in normal mode to read it */
    uv_timer_t *wait_timer;       /* either wait's limit (closed and freed with the run) */
    int exit_code;                /* the engine's, once it has exited */
    char unit_version[16], unit_build[16]; /* what the unit said after the restore */
    char unverified[200];         /* why that was not read ("" = read, or not yet) */
    uv_timer_t *keeper_poll;      /* an engine an earlier process started (engine_keep.h):
                                     watched through its keeper's files until it ends */
    char kept_log[1024];          /* that engine's log */
    uint64_t kept_log_size, kept_quiet_since; /* its no-output watchdog */
    int kept_watchdog;            /* that watchdog killed it */
    uint32_t bus;                 /* the port's root bus (bus admission) */
    char firmware[1024];          /* a local path, or a URL until the cache has it */
    char sha256[65];
    int pinned;                   /* holds a pin on the cached IPSW */
    int erase;
    uint32_t attempt_number;
    enum fr_state state;
    struct engine *engine;
    uint64_t started_ms;          /* wall clock */
    int progress_marked;          /* changed since the last progress round (progress.h) */
    int cancel_requested;
    struct unit_run *next;
};

/* Handles a JobAssign: accepts (starting the run) or refuses, answering JobAccept. */
void unit_run_on_assign(struct agent *a, const Fr__JobAssign *as);
/* A unit appeared or changed mode (ports.c): a run waiting for it in recovery goes on. */
void unit_run_on_unit(struct agent *a, const struct unit_desc *u);
/* Handles a JobCancel (or a Welcome's cancel list entry). */
void unit_run_on_cancel(struct agent *a, const Fr__AttemptRef *ref);
/* The transition function: the only place a run's state changes. */
void unit_run_set_state(struct unit_run *r, enum fr_state to, const char *why);
/* Whether from -> to is a legal transition. */
int unit_run_can_move(enum fr_state from, enum fr_state to);
/* Frees what is left after the loop has ended (shutdown). */
void unit_run_free_all(struct agent *a);
/* Kills every engine (shutdown). */
void unit_run_kill_all(struct agent *a);
int unit_run_count(const struct agent *a);
/* At start, before the first Hello: the engines an earlier process started and did not
 * see end (engine_keep.h) — a result for each that ended; each still running is taken
 * over (a run, listed in the Hello, watched until its keeper records the end). */
void unit_run_recover(struct agent *a);

#endif
