/* progress — runs' progress batched per agent and tick; see progress.h. */
#include "progress.h"

#include <stdlib.h>

#include "fr_batch.h"
#include "unit_run.h"

static void fill_item(const struct unit_run *r, Fr__JobProgress *p)
{
    const struct engine_output *eo = r->engine ? engine_parser(r->engine) : NULL;
    p->ref = (Fr__AttemptRef *)&r->ref;
    p->state = (char *)fr_state_name(r->state);
    p->step = eo ? (uint32_t)eo->step : 0;
    p->fraction = eo ? (float)eo->fraction : 0.0f;
    p->status = (char *)(eo ? eo->status : "");
}

static void send_batch(Fr__Envelope *env, void *arg)
{
    link_send(arg, env);
}

/* Sends the marked runs (FR_WIRE_MAX_BATCH to a message) and unmarks them. */
static void send_round(struct agent *a)
{
    struct fr_batch b;
    fr_batch_begin(&b, send_batch, a);
    for (struct unit_run *r = a->runs; r; r = r->next)
        if (r->progress_marked) {
            r->progress_marked = 0;
            fill_item(r, fr_batch_add(&b));
        }
    fr_batch_end(&b);
    a->progress_sent_at = uv_now(a->loop);
}

static void on_tick(uv_timer_t *t)
{
    struct agent *a = t->data;
    if (a->welcomed) /* else the marks wait for the Welcome */
        send_round(a);
}

static void on_closed(uv_handle_t *h)
{
    free(h);
}

void progress_kick(struct agent *a)
{
    if (a->closed || a->stopping)
        return;
    if (!a->progress_timer) {
        a->progress_timer = malloc(sizeof *a->progress_timer);
        if (!a->progress_timer)
            return; /* the next mark tries again */
        uv_timer_init(a->loop, a->progress_timer);
        a->progress_timer->data = a;
    }
    if (uv_is_active((uv_handle_t *)a->progress_timer))
        return; /* the round already due takes it */
    uint64_t now = uv_now(a->loop), due = a->progress_sent_at + PROGRESS_TICK_MS;
    uv_timer_start(a->progress_timer, on_tick, a->progress_sent_at && due > now ? due - now : 0, 0);
}

void progress_mark(struct unit_run *r)
{
    r->progress_marked = 1;
    progress_kick(r->agent);
}

void progress_close(struct agent *a)
{
    if (a->progress_timer)
        uv_close((uv_handle_t *)a->progress_timer, on_closed);
    a->progress_timer = NULL;
}
