/* fr_replay — when a reliable message still waiting for its ack goes out again.
 *
 * A message on a live ZeroMQ connection is not lost: it waits in the peer's queue. So a
 * sender re-sends what is unacknowledged only where it may have been lost, not merely
 * late:
 *   - a message that never went out (the send failed) goes at the next tick;
 *   - while the peer's ack moves, nothing is re-sent: it applies in seq order, so what
 *     lies beyond its ack is still in its queue;
 *   - when the ack stands still for a period, what waited that long goes again, and each
 *     later copy of the same message waits twice as long as the one before (at most
 *     FR_REPLAY_MAX_WAIT periods), so a controller minutes behind gets a few copies of a
 *     message, not one per heartbeat (each of which it has to read, decrypt and drop);
 *   - after a new Welcome (a new link) everything goes again, the waits start over.
 * The agent (agent/link.c) and the load generator (bench/loadgen.c) both follow it. */
#ifndef FR_REPLAY_H
#define FR_REPLAY_H

#include <stdint.h>

#define FR_REPLAY_MAX_WAIT 16 /* periods between copies, at most (16 s at the 1 s heartbeat) */

struct fr_replay {
    uint64_t sent_at; /* when it last went out (ms, any clock); meaningful once sends > 0 */
    unsigned sends;   /* copies gone out on this link */
};

/* Whether the message goes out again at now (ms), with a heartbeat period of period_ms;
 * ack_moved: the peer's ack rose since the previous tick. */
int fr_replay_due(const struct fr_replay *r, uint64_t now, uint64_t period_ms, int ack_moved);

/* Notes a copy that went out at now. */
void fr_replay_sent(struct fr_replay *r, uint64_t now);

/* A new link: the next copy is the first of its link (the waits start over). */
void fr_replay_relink(struct fr_replay *r);

#endif
