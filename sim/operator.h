/* operator — the simulated technician: reads the controller's open move
 * instructions (as any client would, over the clients socket) and carries them
 * out on the rack after move_s, sometimes plugging a unit back into the port it
 * came from (operator_misplug), as people do. */
#ifndef SIM_OPERATOR_H
#define SIM_OPERATOR_H

#include <uv.h>

#include "world.h"

struct sim_operator;

/* Polls endpoint (the controller's clients endpoint) every poll_ms. */
int operator_start(struct sim_operator **out, uv_loop_t *loop, struct world *w,
                   const char *endpoint, uint64_t poll_ms);
void operator_stop(struct sim_operator *op);
/* Frees after the loop has closed its handles. */
void operator_destroy(struct sim_operator **op);

#endif
