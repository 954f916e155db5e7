/* loop_probe — counts the loop's stalls; see loop_probe.h. */
#include "loop_probe.h"

#include "fr_log.h"

static void on_tick(uv_timer_t *t)
{
    struct loop_probe *p = t->data;
    uint64_t now = uv_hrtime();
    uint64_t gap_ms = (now - p->last_ns) / 1000000;
    p->last_ns = now;
    uint64_t lag = gap_ms > LOOP_PROBE_MS ? gap_ms - LOOP_PROBE_MS : 0;
    if (lag > p->max_lag_ms)
        p->max_lag_ms = lag;
    if (lag > LOOP_STALL_MS) {
        p->stalls++;
        fr_warn("loop", "loop stalled: a %d ms tick came %llu ms late", LOOP_PROBE_MS,
                (unsigned long long)lag);
    }
}

void loop_probe_start(struct loop_probe *p, uv_loop_t *loop)
{
    uv_timer_init(loop, &p->timer);
    p->timer.data = p;
    p->last_ns = uv_hrtime();
    uv_timer_start(&p->timer, on_tick, LOOP_PROBE_MS, LOOP_PROBE_MS);
}

static void on_closed(uv_handle_t *h)
{
}

void loop_probe_close(struct loop_probe *p)
{
    uv_close((uv_handle_t *)&p->timer, on_closed);
}
