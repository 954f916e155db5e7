/* loop_probe — counts the loop's stalls; see loop_probe.h. */
#include "loop_probe.h"

#include "fr_log.h"
#include "fr_time.h"

static void on_tick(uv_timer_t *t)
{
    struct loop_probe *p = t->data;
    uint64_t now = uv_hrtime(), cpu = fr_time_thread_cpu_ns();
    uint64_t gap_ms = (now - p->last_ns) / 1000000;
    uint64_t cpu_ms = (cpu - p->last_cpu_ns) / 1000000;
    p->last_ns = now;
    p->last_cpu_ns = cpu;
    uint64_t lag = gap_ms > LOOP_PROBE_MS ? gap_ms - LOOP_PROBE_MS : 0;
    if (lag > p->max_lag_ms)
        p->max_lag_ms = lag;
    if (cpu_ms > p->max_cpu_ms)
        p->max_cpu_ms = cpu_ms;
    if (cpu_ms > LOOP_STALL_MS)
        p->cpu_stalls++;
    if (lag > LOOP_STALL_MS) {
        p->stalls++;
        fr_warn("loop", "loop stalled: a %d ms tick came %llu ms late (%llu ms of the loop's CPU "
                "since the last)", LOOP_PROBE_MS, (unsigned long long)lag,
                (unsigned long long)cpu_ms);
    }
}

void loop_probe_start(struct loop_probe *p, uv_loop_t *loop)
{
    uv_timer_init(loop, &p->timer);
    p->timer.data = p;
    p->last_ns = uv_hrtime();
    p->last_cpu_ns = fr_time_thread_cpu_ns();
    uv_timer_start(&p->timer, on_tick, LOOP_PROBE_MS, LOOP_PROBE_MS);
}

static void on_closed(uv_handle_t *h)
{
}

void loop_probe_close(struct loop_probe *p)
{
    /* a warning when the loop stalled at all, so that a benchmark at log level warn sees it */
    fr_log(p->stalls || p->cpu_stalls ? FR_LOG_WARN : FR_LOG_INFO, "loop", "loop probe: %llu ticks more than %d ms late (the latest %llu ms); %llu after "
            "more than %d ms of the loop's CPU (the most %llu ms)", (unsigned long long)p->stalls,
            LOOP_STALL_MS, (unsigned long long)p->max_lag_ms, (unsigned long long)p->cpu_stalls,
            LOOP_STALL_MS, (unsigned long long)p->max_cpu_ms);
    uv_close((uv_handle_t *)&p->timer, on_closed);
}
