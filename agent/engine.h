/* engine — one restore engine child process (idevicerestore or a stand-in).
 *
 * Spawned with uv_spawn in its own process group; stdout and stderr read through
 * pipes into the per-attempt log file and the output parser (under a keeper, the
 * keeper writes the log and this side only parses); a no-output watchdog
 * kills the whole group. on_exit fires once, after the process has exited and both
 * pipes are drained; the engine is freed by engine_destroy() after that. */
#ifndef ENGINE_H
#define ENGINE_H

#include <stdio.h>
#include <uv.h>

#include "engine_output.h"

struct engine;
typedef void (*engine_progress_cb)(struct engine *e, void *arg);
typedef void (*engine_exit_cb)(struct engine *e, void *arg, int exit_code, int term_signal,
                               int watchdog_fired);

struct engine_spec {
    const char *path;             /* executable */
    const char *const *argv;      /* full argv, argv[0] included, NULL-terminated */
    const char *const *env;       /* "NAME=value" entries set in the child's environment on top
                                     of the agent's (replacing the same NAME); NULL-terminated or NULL */
    const char *log_path;
    uint64_t watchdog_ms;
    const char *keeper;           /* flashrack-engine-keeper to run the engine under (it writes
                                     the log and records the end; engine_keep.h), or NULL */
};

int engine_start(struct engine **out, uv_loop_t *loop, const struct engine_spec *spec,
                 engine_progress_cb on_progress, engine_exit_cb on_exit, void *arg, char *err,
                 size_t errlen);
/* Kills the process group (SIGKILL). */
void engine_kill(struct engine *e);
const struct engine_output *engine_parser(const struct engine *e);
struct engine_output *engine_parser_mut(struct engine *e);
int engine_pid(const struct engine *e);
/* Frees an engine whose on_exit has run (closes remaining handles). */
void engine_destroy(struct engine *e);

#endif
