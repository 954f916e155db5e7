/* engine_keep — restores that outlive the agent process that started them.
 *
 * An agent killed while an engine runs used to lose the restore's end: the engine
 * could finish the unit a moment later (or a moment before the agent read its
 * exit), the next agent process knew nothing of it, the controller called the
 * attempt interrupted, and the unit was restored a second time. So each engine runs
 * under flashrack-engine-keeper (agent/engine_keeper.c), which writes the attempt's
 * log, holds LOG.lock while it runs and records the end in LOG.exit; and each
 * started engine is a row in the journal (journal.h) until its result is kept.
 *
 * At start the agent looks at every such row (unit_run_recover()): an engine that
 * ended has its result made from its log and exit, as if the agent had watched it;
 * one still running is taken over (a run watched through these files until its end:
 * ending it instead lost a restore that finished in the moment before); one that left
 * no end (killed with its group) is left to the controller, which calls it interrupted. */
#ifndef ENGINE_KEEP_H
#define ENGINE_KEEP_H

#include <stddef.h>

#include "engine_output.h"

enum engine_keep_state {
    ENGINE_KEEP_RUNNING, /* its keeper holds LOG.lock */
    ENGINE_KEEP_ENDED,   /* LOG.exit says how it ended */
    ENGINE_KEEP_LOST,    /* neither: killed with its process group, or never started */
};

/* The keeper program beside this executable (or in ../libexec/flashrack/ from it):
 * 0 with its path in out, or -1 (engines then run without one). */
int engine_keep_find(char *out, size_t len);
/* What became of the engine whose log is log_path; on ENGINE_KEEP_ENDED, how it ended
 * (*exit_code, or *term_signal > 0). */
enum engine_keep_state engine_keep_check(const char *log_path, int *exit_code, int *term_signal);
/* Ends a keeper still running (SIGKILL to its process group). */
void engine_keep_kill(const char *log_path);
/* Feeds the whole log to a fresh parser (eo is initialized and ended here). */
int engine_keep_parse_log(const char *log_path, struct engine_output *eo);
/* Removes LOG.lock and LOG.exit (the log stays). */
void engine_keep_forget(const char *log_path);

#endif
