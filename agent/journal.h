/* journal — the agent's results that the controller has not acknowledged yet, kept in
 * SQLite (WORK_DIR/outbox.db) as well as in the outbox.
 *
 * A restore's result is the unit's record. Without the journal, an agent that dies
 * after a restore finished but before the controller acknowledged the result loses
 * it: the controller can only call the attempt interrupted, and the phone is
 * restored a second time. With it, the next agent process sends those results first,
 * lists their attempts in its Hello (so they are not interrupted), and marks each
 * row when the controller acknowledges it. An acknowledged result is kept a while
 * (the newest JOURNAL_KEEP_ACKED) so that a JobAssign re-sent for an attempt that has
 * ended (it crossed the result, or the controller was slow) is answered with the
 * result, never started again. Engines started and not yet ended are noted too
 * (engine_keep.h), so a restore that ends after its agent died still counts. Only
 * results and started engines are journaled: port events are found
 * again by discovery, and an accept is moot once its run is gone.
 *
 * Loop thread only. synchronous=NORMAL in WAL mode: a crash of the process loses
 * nothing; a power cut may lose the last results, which then count as interrupted. */
#ifndef JOURNAL_H
#define JOURNAL_H

#include <stddef.h>
#include <stdint.h>

#include "agent.h"

int journal_open(struct agent *a, char *err, size_t errlen);
#define JOURNAL_KEEP_ACKED 4096

/* Keeps a packed JobResult envelope; returns its row id (> 0), or 0 if it could not. */
int64_t journal_add(struct agent *a, uint64_t attempt_id, const uint8_t *data, size_t len);
/* The controller acknowledged row id. */
void journal_acked(struct agent *a, int64_t id);
/* The kept result of an attempt (acknowledged or not): 0 with *data malloc'd,
 * FR_ENOTFOUND, or FR_EIO. */
int journal_find(struct agent *a, uint64_t attempt_id, uint8_t **data, size_t *len);
/* Calls cb for every result not acknowledged yet, oldest first. */
int journal_each(struct agent *a, void (*cb)(struct agent *a, int64_t id, const uint8_t *data,
                                             size_t len));
/* An engine started for an attempt (engine_keep.h): kept until its result is. */
struct kept_engine {
    Fr__AttemptRef ref;
    char port_path[32];
    uint64_t started_ms;
    char log_path[1024];
};
int journal_engine_add(struct agent *a, const struct kept_engine *k);
/* The attempt's result is kept (or it never will be): the row goes. */
void journal_engine_done(struct agent *a, uint64_t attempt_id);
/* Calls cb for every started engine still noted, oldest attempt first. */
int journal_engines_each(struct agent *a, void (*cb)(struct agent *a, const struct kept_engine *k));
void journal_close(struct agent *a);

#endif
