/* loop_probe — a cheap loop-lag probe: a timer that should tick every
 * LOOP_PROBE_MS and counts the ticks that came more than LOOP_STALL_MS late
 * (the loop was blocked that long). The counts appear in the agents document.
 * It also measures the loop thread's own CPU between two ticks: a late tick with
 * little CPU behind it is a loaded machine, one with more than LOOP_STALL_MS of CPU
 * is the controller's own long turn (the figure a benchmark on a shared machine
 * can trust); those are logged when the probe closes. Each such turn is logged as it
 * happens, with what the loop did since the last tick: the work each watched module
 * counts (runs, items, CPU), read from its counters at every tick. A module that counts
 * its work in a struct loop_count (loop_count_add, once per run) also gives how long its
 * runs are: the longest, and a 99th percentile from a histogram of each run's CPU; those
 * are in the agents document ("loop": "turns") and logged when the probe closes, so that
 * a benchmark can name the kinds of turn that hold the loop longest. */
#ifndef LOOP_PROBE_H
#define LOOP_PROBE_H

#include <jansson.h>
#include <stdint.h>
#include <uv.h>

#define LOOP_PROBE_MS 20
#define LOOP_STALL_MS 50
#define LOOP_PROBE_WATCH 8

#define LOOP_HIST_NS 250000ull /* a histogram bin: a quarter of a millisecond of CPU */
#define LOOP_HIST_BINS 128     /* up to 32 ms; the last bin holds every longer run */

/* A module's cumulative counts of one kind of work (it only adds to them, through
 * loop_count_add). */
struct loop_count {
    uint64_t runs, items, cpu_ns;
    uint64_t max_ns;                 /* the longest run */
    uint32_t hist[LOOP_HIST_BINS];   /* runs by their CPU, LOOP_HIST_NS a bin */
};

/* One run of the work: items done in cpu_ns of the loop's CPU. */
void loop_count_add(struct loop_count *n, uint64_t items, uint64_t cpu_ns);
/* The CPU under which 99 % of the runs stayed (the upper edge of its bin; the longest run
 * when that is less); 0 when there was none. */
uint64_t loop_count_p99_ns(const struct loop_count *n);

struct loop_total {
    uint64_t runs, items, cpu_ns;
};

struct loop_watch {
    const char *what, *items;   /* "scheduling passes", "claims" */
    const uint64_t *runs, *nitems, *cpu_ns;
    const struct loop_count *count; /* NULL: only the three counters */
    struct loop_total last;     /* at the last tick */
};

struct loop_probe {
    uv_timer_t timer;
    uint64_t last_ns, last_cpu_ns;
    uint64_t stalls;      /* ticks late by more than LOOP_STALL_MS */
    uint64_t max_lag_ms;  /* the latest tick so far */
    uint64_t cpu_stalls;  /* ticks after more than LOOP_STALL_MS of the loop's CPU */
    uint64_t max_cpu_ms;  /* the most CPU the loop spent between two ticks */
    struct loop_watch watch[LOOP_PROBE_WATCH];
    int nwatch;
};

void loop_probe_start(struct loop_probe *p, uv_loop_t *loop);
void loop_probe_close(struct loop_probe *p);
/* Logs, for each turn over LOOP_STALL_MS of CPU, what these counters added since the
 * last tick (they must outlive the probe). */
void loop_probe_watch(struct loop_probe *p, const char *what, const char *items,
                      const uint64_t *runs, const uint64_t *nitems, const uint64_t *cpu_ns);
/* The same for a struct loop_count, with its longest runs and their 99th percentile. */
void loop_probe_watch_count(struct loop_probe *p, const char *what, const char *items,
                            const struct loop_count *n);
/* {"heartbeat ticks": {"runs", "items", "cpu_ms", "max_ms", "p99_ms"}, ...} of the watched
 * loop_counts, for the agents document. */
json_t *loop_probe_turns(const struct loop_probe *p);

#endif
