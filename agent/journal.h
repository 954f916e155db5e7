/* journal — the agent's results that the controller has not acknowledged yet, kept in
 * SQLite (WORK_DIR/outbox.db) as well as in the outbox.
 *
 * A restore's result is the unit's record. Without the journal, an agent that dies
 * after a restore finished but before the controller acknowledged the result loses
 * it: the controller can only call the attempt interrupted, and the phone is
 * restored a second time. With it, the next agent process sends those results first,
 * lists their attempts in its Hello (so they are not interrupted), and deletes each
 * row when the controller acknowledges it. Only results are journaled: port events
 * are found again by discovery, and an accept is moot once its run is gone.
 *
 * Loop thread only. synchronous=NORMAL in WAL mode: a crash of the process loses
 * nothing; a power cut may lose the last results, which then count as interrupted. */
#ifndef JOURNAL_H
#define JOURNAL_H

#include <stddef.h>
#include <stdint.h>

#include "agent.h"

int journal_open(struct agent *a, char *err, size_t errlen);
/* Keeps a packed JobResult envelope; returns its row id (> 0), or 0 if it could not. */
int64_t journal_add(struct agent *a, const uint8_t *data, size_t len);
void journal_remove(struct agent *a, int64_t id);
/* Calls cb for every kept result, oldest first. */
int journal_each(struct agent *a, void (*cb)(struct agent *a, int64_t id, const uint8_t *data,
                                             size_t len));
void journal_close(struct agent *a);

#endif
