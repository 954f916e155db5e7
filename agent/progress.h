/* progress — the agent's progress reports: the latest state, step, fraction and status of
 * each run that changed, gathered and sent to the controller as ProgressBatch messages,
 * one round per tick for the whole agent (proto/PROTOCOL.md "Jobs and attempts").
 *
 * A run that changed is marked (progress_mark); a one-shot timer sends every marked run
 * PROGRESS_TICK_MS after the previous round at the earliest, at once when that is past.
 * So a change waits at most a tick, never for the engine's next line, and an agent with
 * nothing new sets no timer. Runs marked while the link is down go out after the next
 * Welcome (progress_kick). At most FR_WIRE_MAX_BATCH items per message. */
#ifndef PROGRESS_H
#define PROGRESS_H

#include "agent.h"

#define PROGRESS_TICK_MS 250

struct unit_run;

/* The run's progress changed: it goes out in the next round. */
void progress_mark(struct unit_run *r);
/* Sends the marked runs in the next round (after a Welcome). */
void progress_kick(struct agent *a);
/* Closes the timer (shutdown; safe twice); nothing is sent after it. */
void progress_close(struct agent *a);

#endif
