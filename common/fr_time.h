/* fr_time — wall-clock time for records, a thread's CPU time, and formatting.
 *
 * Leases and liveness use monotonic time (uv_now / uv_hrtime), never these. */
#ifndef FR_TIME_H
#define FR_TIME_H

#include <stddef.h>
#include <stdint.h>

/* Milliseconds since the Unix epoch. */
uint64_t fr_time_wall_ms(void);
/* Monotonic milliseconds (CLOCK_MONOTONIC), for code without a uv loop. */
uint64_t fr_time_mono_ms(void);
/* The calling thread's CPU time in nanoseconds (CLOCK_THREAD_CPUTIME_ID; 0 if unknown):
 * what a loop turn costs, whatever else the machine runs. */
uint64_t fr_time_thread_cpu_ns(void);
/* A clock in nanoseconds: fr_time_thread_cpu_ns, or a test's own. */
typedef uint64_t (*fr_clock_ns)(void);
/* "2026-11-24T10:00:00.123Z"; buf needs 25 bytes. 0 ms formats as "". */
void fr_time_iso8601(uint64_t ms, char *buf, size_t len);

#endif
