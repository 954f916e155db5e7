/* policy — the remediation ladder (ARCHITECTURE §4, ERRORS.md), as pure functions.
 *
 * What to do after an attempt ends, when a port is quarantined, and which port a
 * unit should be moved to. No I/O and no store: the caller gathers the facts into
 * plain structs, asks, and applies the decision. That keeps the rules in one place
 * and testable without processes.
 *
 * Counting is split the way a technician tells a bad cable from a bad phone:
 * strikes per port (from distinct units, in a time window) and failed ports per
 * unit (distinct ports the unit failed on). */
#ifndef POLICY_H
#define POLICY_H

#include <stddef.h>
#include <stdint.h>

#include "fr_types.h"

#define POLICY_MAX_PORTS 16   /* ports remembered per unit run */
#define POLICY_PORT_LEN 96    /* "agent:path" */

struct policy_cfg {
    int quarantine_units;      /* distinct units striking a port in the window → quarantine */
    int64_t strike_window_ms;  /* window for port strikes */
    int dfu_after_ports;       /* failed on this many distinct ports → next attempt from DFU */
    int suspect_after_ports;   /* failed on this many distinct ports → hardware_suspect */
    int max_attempts;          /* hard cap of attempts per unit run (interrupted ones excluded) */
    int same_port_retry;       /* the job allows retrying on the port that failed */
    int naive;                 /* the usual practice: retry in place, no moves, no quarantine */
};

/* Defaults from field experience: 2 units, 1 h, DFU after 2 ports, suspect after 3, 6 attempts. */
void policy_cfg_default(struct policy_cfg *cfg);

/* What the unit run has been through so far (before the attempt being judged). */
struct policy_history {
    int attempts;                                    /* counted attempts so far */
    size_t nfailed_ports;                            /* distinct ports with a lost link/hardware */
    char failed_ports[POLICY_MAX_PORTS][POLICY_PORT_LEN];
    int class_count[FR_CLASS__COUNT];                /* earlier failures by class */
};

enum policy_action {
    POLICY_DONE,             /* restored */
    POLICY_REQUEUE,          /* not the unit's fault (interrupted): same state as before, no count */
    POLICY_RETRY_IN_PLACE,   /* same port, next attempt (network, firmware purge, one unknown) */
    POLICY_MOVE,             /* needs_move: strike port, avoid it, wait for the unit elsewhere */
    POLICY_OPERATOR,         /* needs_operator: buttons (DFU/recovery), permissions */
    POLICY_SUSPECT,          /* hardware_suspect: failed on enough distinct ports */
    POLICY_FAIL,             /* failed for good (configuration, not signed, too many attempts) */
};

struct policy_decision {
    enum policy_action action;
    enum fr_state next;      /* the unit run's next state */
    int strike_port;         /* give the port a strike */
    int power_cycle;         /* power-cycle the port if the hub can */
    int from_dfu;            /* the next attempt should start from DFU */
    char why[160];           /* one line for the event log and the operator */
};

const char *policy_action_name(enum policy_action a);

/* Judges an attempt that ended with class cls (FR_CLASS_NONE = success) on port. */
void policy_after_attempt(const struct policy_cfg *cfg, const struct policy_history *h,
                          enum fr_class cls, const char *port, struct policy_decision *out);

/* Records port in h as failed (distinct); returns the number of distinct failed ports. */
size_t policy_history_add_port(struct policy_history *h, const char *port);
int policy_history_has_port(const struct policy_history *h, const char *port);

/* One strike on a port: which unit and when (wall ms). */
struct policy_strike {
    uint64_t ecid;
    int64_t at_ms;
};

/* Whether strikes (any order) put the port into quarantine at now_ms:
 * cfg->quarantine_units distinct units within cfg->strike_window_ms. */
int policy_port_quarantined(const struct policy_cfg *cfg, const struct policy_strike *strikes,
                            size_t n, int64_t now_ms);

/* A port a unit could be moved to. */
struct policy_port {
    const char *id;          /* "agent:path" */
    const char *agent;
    const char *hub;
    uint32_t bus;
    uint32_t depth;
    int usable;              /* agent online, not quarantined, free (no unit, no live attempt) */
    int strikes;             /* recent strikes */
    int load;                /* units still to send their data on this port's root bus
                              * (there, or on their way) */
    int eligible;            /* agent online and port not quarantined: it will take units
                              * (now if usable, else once its phone is done) */
};

/* A moved unit goes only to a bus with at most this many more units to send than the
 * least loaded bus it could use; otherwise it waits for a port there to free up. */
#define POLICY_MOVE_LOAD_SLACK 1

/* Picks the best target for a unit that failed on from (may be NULL). Of the eligible
 * ports it does not avoid, only the best separated ones count (another hub and bus,
 * else another hub, else any), and of those only buses within POLICY_MOVE_LOAD_SLACK of
 * the least loaded; among these, a usable one preferring less load, a shallow hub tier,
 * fewer strikes; ties by order. Returns the index into ports, or -1 when none is usable
 * now (the unit waits for one). */
int policy_pick_target(const struct policy_port *ports, size_t n, const struct policy_port *from,
                       const char *const *avoid, size_t navoid);

/* The complete button sequence that puts a model (by ProductType) into DFU mode, or
 * into recovery mode, with the unit connected. Static strings. */
const char *policy_dfu_buttons(const char *product_type);
const char *policy_recovery_buttons(const char *product_type);

#endif
