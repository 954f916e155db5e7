/* turn — group commit: one store transaction per loop turn of agent messages, or per
 * scheduling pass.
 *
 * While a turn is open, every write joins one transaction (the writers' own begins
 * become savepoints, store.h) and every message to an agent is held. turn_end()
 * commits, and only then sends what was held: acks, Welcomes, assigns, cancels and
 * port commands go out after the state they announce is committed; then each agent whose
 * reliable messages the turn applied gets one ack for all of them. When the commit
 * fails, the held messages are dropped and each agent's applied sequence number goes
 * back to where the turn found it: nothing was acknowledged, so the agents replay. */
#ifndef TURN_H
#define TURN_H

#include <stddef.h>
#include <stdint.h>

#include "flashrack.pb-c.h"

struct controller;
struct agent_state;
struct turn_msg;

struct turn_seq {
    struct agent_state *agent;
    uint64_t applied_seq; /* as the turn found it */
};

struct turn {
    int open;
    struct turn_msg *held, **tail;
    struct turn_seq *seqs;
    size_t nseqs, cap;
    uint64_t commits, failed; /* turns committed, turns whose commit failed */
};

/* Opens a turn (nothing when one is open). Returns 0 or the store's error. */
int turn_begin(struct controller *c);
/* Remembers a's applied sequence number before the turn changes it. */
void turn_touch(struct controller *c, struct agent_state *a);
/* Sends env (packed) to the agent with routing id `id` now, or at turn_end when a turn
 * is open. Returns 0 or a negative fr_err code. */
int turn_send(struct controller *c, const char *id, Fr__Envelope *env);
/* Commits the turn and sends what it held, or rolls it back (see above): 0, or
 * FR_ESTORE when it was rolled back. */
int turn_end(struct controller *c);
/* Frees what a turn that never ended held (shutdown). */
void turn_free(struct controller *c);

#endif
