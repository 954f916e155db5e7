/* engine_runs — how many times an engine was run on each unit, and how it ended.
 *
 * The simulator's own count, kept for its whole life (agents and controllers come
 * and go around it): a test that kills them can then tell "restored once" from
 * "restored twice" by what the units went through, not by what the controller
 * recorded. Answered on the socket by {"op":"runs"} (sim/PROTOCOL.md). */
#ifndef ENGINE_RUNS_H
#define ENGINE_RUNS_H

#include <jansson.h>

struct engine_runs;

struct engine_runs *engine_runs_new(void);
void engine_runs_free(struct engine_runs *er);
/* An engine began a restore of ecid (its "0x…" form). */
void engine_runs_started(struct engine_runs *er, const char *ecid);
/* That restore ended: exit code (0: the unit was restored), or -1 when the engine
 * went away before the end. */
void engine_runs_ended(struct engine_runs *er, const char *ecid, int code);
/* {"0x…": {"started": n, "restored": n, "failed": n, "gone": n, "running": n,
 *  "max_running": n}, ...} — a new reference. */
json_t *engine_runs_json(const struct engine_runs *er);

#endif
