/* loop_probe — a cheap loop-lag probe: a timer that should tick every
 * LOOP_PROBE_MS and counts the ticks that came more than LOOP_STALL_MS late
 * (the loop was blocked that long). The counts appear in the agents document.
 * It also measures the loop thread's own CPU between two ticks: a late tick with
 * little CPU behind it is a loaded machine, one with more than LOOP_STALL_MS of CPU
 * is the controller's own long turn (the figure a benchmark on a shared machine
 * can trust); those are logged when the probe closes. */
#ifndef LOOP_PROBE_H
#define LOOP_PROBE_H

#include <stdint.h>
#include <uv.h>

#define LOOP_PROBE_MS 20
#define LOOP_STALL_MS 50

struct loop_probe {
    uv_timer_t timer;
    uint64_t last_ns, last_cpu_ns;
    uint64_t stalls;      /* ticks late by more than LOOP_STALL_MS */
    uint64_t max_lag_ms;  /* the latest tick so far */
    uint64_t cpu_stalls;  /* ticks after more than LOOP_STALL_MS of the loop's CPU */
    uint64_t max_cpu_ms;  /* the most CPU the loop spent between two ticks */
};

void loop_probe_start(struct loop_probe *p, uv_loop_t *loop);
void loop_probe_close(struct loop_probe *p);

#endif
