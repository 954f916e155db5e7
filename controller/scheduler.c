/* scheduler — matches units to jobs as they appear: creates unit runs for
 * selector jobs, then claims attempts for waiting runs whose unit is present on
 * an online agent with a free slot, and sends the assignments. A pass runs on the
 * next loop turn after anything that could change the answer (coalesced). */
#include <stdlib.h>
#include <string.h>

#include "ctl.h"
#include "fr_log.h"
#include "fr_time.h"
#include "fr_types.h"

#define MAX_BATCH 4096

struct batch {
    struct sched_candidate *c;
    size_t n;
};

static int on_candidate(void *arg, const struct sched_candidate *c)
{
    struct batch *b = arg;
    b->c[b->n++] = *c;
    return b->n >= MAX_BATCH;
}

static void assign_one(struct controller *c, const struct sched_candidate *cand)
{
    Fr__AttemptRef ref = FR__ATTEMPT_REF__INIT;
    char firmware[1024] = "";
    int erase = 1;
    uint32_t n = 0;
    if (store_claim_attempt(c->store, cand, fr_time_wall_ms(), &ref, firmware, sizeof firmware,
                            &erase, &n) < 0) {
        fr_error("sched", "cannot claim an attempt: %s", store_errmsg(c->store));
        return;
    }
    char ecid[FR_ECID_STRLEN];
    fr_ecid_format(cand->ecid, ecid, sizeof ecid);
    fr_info("sched", "unit %s: waiting_unit -> preflight (job %llu, attempt %u on %s:%s, epoch %llu)",
            ecid, (unsigned long long)cand->job, n, cand->agent, cand->port,
            (unsigned long long)ref.epoch);
    agents_send_assign(c, cand->agent, &ref, cand->port, firmware, erase, n);
}

static void sched_run(struct controller *c)
{
    uint64_t now = fr_time_wall_ms();
    if (store_sched_expand(c->store, now) < 0)
        fr_error("sched", "cannot expand selector jobs: %s", store_errmsg(c->store));
    struct batch b = { calloc(MAX_BATCH, sizeof *b.c), 0 };
    if (!b.c)
        return;
    store_sched_candidates(c->store, on_candidate, &b);
    for (size_t i = 0; i < b.n; i++) {
        struct agent_state *a = agents_find(c, b.c[i].agent);
        if (!a || !a->online || store_live_count(c->store, a->id) >= (int)a->slots)
            continue;
        assign_one(c, &b.c[i]);
    }
    free(b.c);
    store_jobs_settle(c->store, now);
}

void sched_on_timer(uv_timer_t *t)
{
    sched_run(t->data);
}

void sched_kick(struct controller *c)
{
    if (!c->stopping && !uv_is_active((uv_handle_t *)&c->sched))
        uv_timer_start(&c->sched, sched_on_timer, 0, 0);
}
