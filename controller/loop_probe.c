/* loop_probe — counts the loop's stalls; see loop_probe.h. */
#include "loop_probe.h"

#include <stdio.h>

#include "fr_log.h"
#include "fr_time.h"

static struct loop_total read_watch(const struct loop_watch *w)
{
    return (struct loop_total){ *w->runs, *w->nitems, *w->cpu_ns };
}

void loop_count_add(struct loop_count *n, uint64_t items, uint64_t cpu_ns)
{
    uint64_t bin = cpu_ns / LOOP_HIST_NS;
    n->runs++;
    n->items += items;
    n->cpu_ns += cpu_ns;
    if (cpu_ns > n->max_ns)
        n->max_ns = cpu_ns;
    n->hist[bin < LOOP_HIST_BINS ? bin : LOOP_HIST_BINS - 1]++;
}

uint64_t loop_count_p99_ns(const struct loop_count *n)
{
    uint64_t seen = 0, want = n->runs - n->runs / 100; /* the runs at or under the 99th */
    for (int i = 0; n->runs && i < LOOP_HIST_BINS; i++)
        if ((seen += n->hist[i]) >= want) {
            uint64_t edge = (uint64_t)(i + 1) * LOOP_HIST_NS;
            return i == LOOP_HIST_BINS - 1 || edge > n->max_ns ? n->max_ns : edge;
        }
    return n->max_ns;
}

/* "scheduling passes 2 (512 claims, 31 ms), ..., the rest 3 ms" since the last tick
 * (which spent cpu_ms); takes the new counts as the last. */
static void describe_turn(struct loop_probe *p, uint64_t cpu_ms, char *buf, size_t len)
{
    size_t at = 0;
    uint64_t watched_ms = 0;
    buf[0] = '\0';
    for (int i = 0; i < p->nwatch; i++) {
        struct loop_watch *w = &p->watch[i];
        struct loop_total now = read_watch(w);
        if (now.runs != w->last.runs && at < len)
            at += (size_t)snprintf(buf + at, len - at, "%s%s %llu (%llu %s, %llu ms)",
                                   at ? ", " : "", w->what,
                                   (unsigned long long)(now.runs - w->last.runs),
                                   (unsigned long long)(now.items - w->last.items), w->items,
                                   (unsigned long long)((now.cpu_ns - w->last.cpu_ns) / 1000000));
        watched_ms += (now.cpu_ns - w->last.cpu_ns) / 1000000;
        w->last = now;
    }
    if (at < len) /* timers: heartbeats and liveness, the mirror, the rack page */
        snprintf(buf + at, len - at, "%sthe rest %llu ms", at ? ", " : "",
                 (unsigned long long)(cpu_ms > watched_ms ? cpu_ms - watched_ms : 0));
}

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
    char work[512];
    describe_turn(p, cpu_ms, work, sizeof work);
    if (cpu_ms > LOOP_STALL_MS) {
        p->cpu_stalls++;
        fr_warn("loop", "a turn of %llu ms of the loop's CPU: %s", (unsigned long long)cpu_ms, work);
    }
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

void loop_probe_watch(struct loop_probe *p, const char *what, const char *items,
                      const uint64_t *runs, const uint64_t *nitems, const uint64_t *cpu_ns)
{
    if (p->nwatch == LOOP_PROBE_WATCH)
        return;
    struct loop_watch *w = &p->watch[p->nwatch++];
    *w = (struct loop_watch){ what, items, runs, nitems, cpu_ns, NULL, { 0, 0, 0 } };
    w->last = read_watch(w);
}

void loop_probe_watch_count(struct loop_probe *p, const char *what, const char *items,
                            const struct loop_count *n)
{
    loop_probe_watch(p, what, items, &n->runs, &n->items, &n->cpu_ns);
    if (p->nwatch && p->watch[p->nwatch - 1].runs == &n->runs)
        p->watch[p->nwatch - 1].count = n;
}

static double ms_of(uint64_t ns)
{
    return (double)(ns / 1000) / 1000.0;
}

json_t *loop_probe_turns(const struct loop_probe *p)
{
    json_t *doc = json_object();
    for (int i = 0; doc && i < p->nwatch; i++) {
        const struct loop_count *n = p->watch[i].count;
        if (n)
            json_object_set_new(doc, p->watch[i].what, json_pack(
                "{s:I, s:I, s:f, s:f, s:f}", "runs", (json_int_t)n->runs, "items",
                (json_int_t)n->items, "cpu_ms", ms_of(n->cpu_ns), "max_ms", ms_of(n->max_ns),
                "p99_ms", ms_of(loop_count_p99_ns(n))));
    }
    return doc;
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
    for (int i = 0; i < p->nwatch; i++) { /* what the loop's CPU went to, over its life */
        struct loop_total n = read_watch(&p->watch[i]);
        const struct loop_count *k = p->watch[i].count;
        char runs[96] = "";
        if (k) /* each run's CPU: the longest, and the 99th percentile */
            snprintf(runs, sizeof runs, "; a run at most %.2f ms, p99 %.2f ms", ms_of(k->max_ns),
                     ms_of(loop_count_p99_ns(k)));
        fr_log(p->stalls || p->cpu_stalls ? FR_LOG_WARN : FR_LOG_INFO, "loop",
               "loop probe: %s %llu (%llu %s, %llu ms of CPU%s)", p->watch[i].what,
               (unsigned long long)n.runs, (unsigned long long)n.items, p->watch[i].items,
               (unsigned long long)(n.cpu_ns / 1000000), runs);
    }
    uv_close((uv_handle_t *)&p->timer, on_closed);
}
