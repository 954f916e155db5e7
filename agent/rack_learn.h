/* rack_learn — `flashrack-agent rack learn`: commissioning a rack map by hand.
 * The operator plugs a phone into each port in turn; the seams' own discovery
 * reports the attach, the command proposes the next label (PREFIX01, 02, ...),
 * the operator accepts it (Enter), types another, or `skip`; each answer is
 * written to the map at once, atomically (rackmap_save), so an interrupted
 * session keeps what it learnt. `done` or the end of input finishes. An existing
 * map is loaded first and extended. A hub coming or going mid-session (a new tree)
 * keeps what was learnt and the question under way while its port is still in the tree;
 * a port gone with its hub is said to be so. Prompts go to stdout, one line each; answers
 * come from stdin (a terminal or a pipe). Runs the loop itself. */
#ifndef RACK_LEARN_H
#define RACK_LEARN_H

#include <uv.h>

#include "seams.h"

/* Returns the process exit code: 0 done, 2 for a bad map or stdin. */
int rack_learn_run(uv_loop_t *loop, struct seams *seams, const char *map_path, const char *prefix);

#endif
