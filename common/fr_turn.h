/* fr_turn — work continued at the loop's next turn, after the loop has polled its sockets.
 *
 * A uv_timer started at 0 ms from inside a timer callback is due at once: libuv 1.44
 * (Debian 12) runs every timer due at the loop's cached time, which a callback does not
 * advance, so a "next step" armed at 0 ms runs again in the same timer phase, and a job
 * done in steps runs every step in one turn with no I/O between. Armed at 1 ms it is due
 * only after the loop has updated its time, at a later turn. */
#ifndef FR_TURN_H
#define FR_TURN_H

#include <uv.h>

#define FR_TURN_NEXT_MS 1

/* Runs cb once at the loop's next turn (t already initialized; a pending start is replaced). */
static inline int fr_turn_later(uv_timer_t *t, uv_timer_cb cb)
{
    return uv_timer_start(t, cb, FR_TURN_NEXT_MS, 0);
}

#endif
