/* fr_batch — ProgressBatch envelopes of bounded size; see fr_batch.h. */
#include "fr_batch.h"

static void flush(struct fr_batch *b)
{
    if (b->body.n_items == 0)
        return;
    b->send(&b->env, b->arg);
    b->sent++;
    b->body.n_items = 0;
}

void fr_batch_begin(struct fr_batch *b, fr_batch_send_cb send, void *arg)
{
    fr__progress_batch__init(&b->body);
    fr__envelope__init(&b->env);
    b->body.items = b->ptrs;
    b->env.body_case = FR__ENVELOPE__BODY_PROGRESS_BATCH;
    b->env.progress_batch = &b->body;
    b->send = send;
    b->arg = arg;
    b->sent = 0;
}

Fr__JobProgress *fr_batch_add(struct fr_batch *b)
{
    if (b->body.n_items == FR_WIRE_MAX_BATCH)
        flush(b);
    Fr__JobProgress *p = &b->items[b->body.n_items];
    fr__job_progress__init(p);
    b->ptrs[b->body.n_items++] = p;
    return p;
}

void fr_batch_end(struct fr_batch *b)
{
    flush(b);
}
