/* scheduler — matches units to jobs as they appear: creates unit runs for
 * selector jobs, then claims attempts for waiting runs whose unit is present on
 * an online agent with a free slot, and sends the assignments. A pass runs on the
 * next loop turn after anything that could change the answer (coalesced), in one
 * transaction (turn.h: the assignments go out after its commit), and claims at most
 * MAX_CLAIMS attempts: a larger backlog continues on the next turn, after the loop
 * has read its sockets, so heartbeats and results never wait behind a 10,000-unit
 * submit. Selector jobs look for new units only after units, jobs or runs changed, and
 * then only at the units that changed; after a submit at all of them, EXPAND_PAGE
 * units per pass (the whole site in one query blocked the loop for 300 ms). */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "ctl.h"
#include "fr_catalog.h"
#include "fr_err.h"
#include "fr_log.h"
#include "fr_time.h"
#include "fr_types.h"
#include "policy.h"
#include "runs.h"

#define MAX_BATCH 1024
#define MAX_CLAIMS 256
#define CONTINUE_MS 1 /* > 0: a continued pass runs after the loop polled its sockets */
#define EXPAND_UNITS_MAX 4096 /* more changed units than this: look at them all */
#define EXPAND_PAGE 1024      /* units of the whole site looked at per pass */

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

/* A job naming firmware by selector gets, per unit, the build the catalog says
 * for the unit's model: its URL and hash (SHA-256, else SHA-1). */
static int resolve_firmware(struct controller *c, const struct sched_candidate *cand, char *fw,
                            size_t fwlen, char *sha, size_t shalen, struct fr_fw *w_out, char *err,
                            size_t errlen)
{
    memset(w_out, 0, sizeof *w_out);
    if (!fr_catalog_is_selector(fw))
        return 0;
    struct fr_fw w;
    char why[300];
    char selector[64];
    snprintf(selector, sizeof selector, "%.63s", fw);
    if (firmware_resolve(c, cand->product_type, selector, &w, why, sizeof why) < 0) {
        snprintf(err, errlen, "firmware '%s': %s", selector, why);
        return FR_ENOTFOUND;
    }
    if (!w.url[0] || (!w.sha256[0] && !w.sha1[0])) {
        snprintf(err, errlen, "firmware '%s' for %s: the catalog gives no URL and hash for build %s",
                 selector, cand->product_type, w.build);
        return FR_ENOTFOUND;
    }
    snprintf(fw, fwlen, "%s", w.url);
    snprintf(sha, shalen, "%s", w.sha256[0] ? w.sha256 : w.sha1);
    *w_out = w;
    return 0;
}

static void assign_one(struct controller *c, struct agent_state *a, const struct sched_candidate *cand)
{
    Fr__AttemptRef ref = FR__ATTEMPT_REF__INIT;
    char firmware[1024], sha[80], why[512] = "";
    int erase = 1;
    uint32_t n = 0;
    if (store_job_firmware(c->store, cand->job, firmware, sizeof firmware, sha, sizeof sha) < 0)
        return; /* the next pass tries again */
    struct fr_fw w;
    int unresolved = resolve_firmware(c, cand, firmware, sizeof firmware, sha, sizeof sha, &w, why,
                                      sizeof why) < 0;
    if (store_claim_attempt(c->store, cand, fr_time_wall_ms(), firmware, sha, &ref, &erase, &n) < 0 ||
        (*w.build && store_attempt_set_build(c->store, ref.attempt_id, w.version, w.build) < 0)) {
        fr_error("sched", "cannot claim an attempt: %s", store_errmsg(c->store));
        return;
    }
    char ecid[FR_ECID_STRLEN];
    fr_ecid_format(cand->ecid, ecid, sizeof ecid);
    struct fr_log_ctx lc = { cand->job, cand->ecid, cand->agent, cand->port };
    fr_infox("sched", &lc, "unit %s: waiting_unit -> preflight (job %llu, attempt %u on %s:%s, "
             "epoch %llu)", ecid, (unsigned long long)cand->job, n, cand->agent, cand->port,
             (unsigned long long)ref.epoch);
    if (unresolved) { /* never retried, never blames a port (ERRORS.md: wrong_firmware) */
        struct run_end e = { FR__OUTCOME__OUTCOME_FAILED, fr_class_name(FR_CLASS_WRONG_FIRMWARE),
                             why, "", cand->port, 0, 0, NULL, NULL, NULL, NULL, NULL };
        runs_end(c, a, &ref, &e);
        return;
    }
    struct attempt_info ai = { cand->agent, cand->port, firmware, sha, erase, n };
    agents_send_assign(c, &ref, &ai);
}

static int agent_online(void *arg, const char *agent)
{
    struct agent_state *a = agents_find(arg, agent);
    return a && a->online;
}

struct planner {
    struct controller *c;
    struct move_port *ports;
    struct policy_port *pp;  /* the policy's view of ports[] (pointing into it) */
    size_t nports;
};

/* Picks a target port for a unit that must move, and publishes the instruction. */
static int plan_move(void *arg, const struct move_need *m)
{
    struct planner *pl = arg;
    json_t *avoid = json_loads(m->avoid, 0, NULL);
    const char *list[64];
    size_t navoid = 0, i;
    json_t *v;
    json_array_foreach(avoid, i, v)
        if (navoid < 64 && json_is_string(v))
            list[navoid++] = json_string_value(v);
    struct policy_port *ports = calloc(pl->nports + 1, sizeof *ports);
    const struct policy_port *from = NULL;
    char from_id[160];
    snprintf(from_id, sizeof from_id, "%s:%s", m->from_agent, m->from_port);
    for (i = 0; ports && i < pl->nports; i++) {
        ports[i] = pl->pp[i];
        if (strcmp(pl->ports[i].id, from_id) == 0)
            from = &pl->pp[i];
    }
    int pick = ports ? policy_pick_target(ports, pl->nports, from, list, navoid) : -1;
    char ecid[FR_ECID_STRLEN];
    fr_ecid_format(m->ecid, ecid, sizeof ecid);
    if (pick >= 0) {
        struct move_port *t = &pl->ports[pick];
        if (store_move_add(pl->c->store, m, t->agent, t->path, fr_time_wall_ms()) == 0) {
            pl->pp[pick].usable = 0;
            for (size_t k = 0; k < pl->nports; k++) /* the next move of this pass sees it */
                if (pl->pp[k].bus == pl->pp[pick].bus && !strcmp(pl->ports[k].agent, t->agent))
                    pl->pp[k].load++;
            fr_info("sched", "unit %s: move from %s to %s%s", ecid, from_id, t->id,
                    m->from_dfu ? " and start it from DFU" : "");
        }
    }
    free(ports);
    json_decref(avoid);
    return 0;
}

static void plan_moves(struct controller *c)
{
    struct planner pl = { c, NULL, NULL, 0 };
    if (!store_moves_pending(c->store))
        return;
    if (store_move_ports(c->store, agent_online, c, &pl.ports, &pl.nports) < 0)
        return;
    pl.pp = calloc(pl.nports + 1, sizeof *pl.pp);
    for (size_t i = 0; pl.pp && i < pl.nports; i++) {
        const struct move_port *m = &pl.ports[i];
        pl.pp[i] = (struct policy_port){ m->id, m->agent, m->hub, m->bus, m->depth, m->usable,
                                         m->strikes, m->load, m->eligible };
    }
    if (pl.pp)
        store_moves_needed(c->store, plan_move, &pl);
    free(pl.pp);
    free(pl.ports);
}

/* Claims for up to MAX_CLAIMS candidates; returns whether it stopped at that limit. */
static int claim_batch(struct controller *c)
{
    struct batch b = { calloc(MAX_BATCH, sizeof *b.c), 0 };
    if (!b.c)
        return 0;
    store_sched_candidates(c->store, on_candidate, &b);
    size_t claims = 0;
    for (size_t i = 0; i < b.n && claims < MAX_CLAIMS; i++) {
        struct agent_state *a = agents_find(c, b.c[i].agent);
        int live = a && a->online ? store_live_count(c->store, a->id) : -1;
        if (live < 0 || live >= (int)a->slots)
            continue;
        assign_one(c, a, &b.c[i]);
        claims++;
    }
    free(b.c);
    return claims == MAX_CLAIMS;
}

/* Runs for selector jobs: a page of the whole site when it is being looked at, else the
 * units that changed. Returns whether a pass has more to look at. */
static int expand(struct controller *c, uint64_t now)
{
    int done = 1, rc = 0;
    if (c->expand_all)
        rc = store_sched_expand_page(c->store, now, &c->expand_at, EXPAND_PAGE, &done);
    else if (c->nexpand)
        rc = store_sched_expand(c->store, now, c->expand_units, c->nexpand);
    if (rc < 0)
        fr_error("sched", "cannot expand selector jobs: %s", store_errmsg(c->store));
    if (!c->expand_all || rc < 0) /* the changed units were looked at (or cannot be) */
        c->nexpand = 0;
    if (done || rc < 0)
        c->expand_all = 0;
    return rc == 0 && (!done || c->nexpand > 0);
}

static void sched_run(struct controller *c)
{
    uint64_t now = fr_time_wall_ms();
    if (turn_begin(c) < 0) {
        fr_error("sched", "cannot open a transaction: %s", store_errmsg(c->store));
        return;
    }
    int more = expand(c, now);
    more |= claim_batch(c);
    plan_moves(c);
    store_jobs_settle(c->store, now);
    turn_end(c);
    if (more && !c->stopping)
        uv_timer_start(&c->sched, sched_on_timer, CONTINUE_MS, 0);
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

void sched_kick_after(struct controller *c, uint64_t ms)
{
    uint64_t at = uv_now(c->loop) + ms;
    if (!c->sched_retry_at || at < c->sched_retry_at)
        c->sched_retry_at = at;
}

/* From the first unit again; what changed before now is in the look at the whole site. */
void sched_expand_all(struct controller *c)
{
    c->expand_all = 1;
    c->expand_at = (struct expand_cursor){ "", "" };
    c->nexpand = 0;
}

/* Listed even while the whole site is being looked at: the pages behind the cursor
 * would not see this unit's change. */
void sched_expand_unit(struct controller *c, uint64_t ecid)
{
    if (c->nexpand == c->expand_cap) {
        size_t cap = c->expand_cap ? 2 * c->expand_cap : 256;
        uint64_t *p = cap <= EXPAND_UNITS_MAX ? realloc(c->expand_units, cap * sizeof *p) : NULL;
        if (!p) { /* too many, or no memory: the whole site, which is always right */
            sched_expand_all(c);
            return;
        }
        c->expand_units = p;
        c->expand_cap = cap;
    }
    c->expand_units[c->nexpand++] = ecid;
}

void sched_free(struct controller *c)
{
    free(c->expand_units);
    c->expand_units = NULL;
    c->nexpand = c->expand_cap = 0;
}
