/* scheduler — matches units to jobs as they appear: creates unit runs for
 * selector jobs, then claims attempts for waiting runs whose unit is present on
 * an online agent with a free slot, and sends the assignments. A pass runs on the
 * next loop turn after anything that could change the answer (coalesced), in one
 * transaction (turn.h: the assignments go out after its commit). It claims CLAIM_CHUNK
 * attempts per savepoint (a chunk the store refuses is claimed again one by one) until
 * the pass has used its share of the loop's CPU (pass_budget: at least MIN_CLAIMS, at
 * most MAX_CLAIMS); a larger backlog continues on the next turn, after the loop has read
 * its sockets, so heartbeats and results never wait behind a 10,000-unit submit, and the
 * progress flush waits until no claims are left. Selector jobs look for new units only
 * after units, jobs or runs changed, and then only at the units that changed; after a
 * submit at all of them, EXPAND_PAGE units per pass (the whole site in one query blocked
 * the loop for 300 ms). A pass whose transaction cannot commit (a read failed: the
 * candidates, say) stops claiming there, and one whose commit failed is undone: nothing
 * it claimed was sent, the units it looked at are looked at again, and it runs again
 * RETRY_MS later. */
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
#define PASS_BUDGET_NS (25 * 1000000ull) /* the most of the loop's CPU a pass spends claiming */
#define PASS_MIN_NS (5 * 1000000ull)
#define TURN_TARGET_NS (40 * 1000000ull) /* a continued pass and the loop's work since the last */
#define MIN_CLAIMS 64                      /* claimed in any pass with candidates, whatever it cost */
#define MAX_CLAIMS 8192
#define CLAIM_CHUNK 64                     /* claims in one savepoint; the budget is looked at between two */
#define CONTINUE_MS 1 /* > 0: a continued pass runs after the loop polled its sockets */
#define EXPAND_UNITS_MAX 4096 /* more changed units than this: look at them all */
#define EXPAND_PAGE 512       /* units of the whole site looked at per pass (about 15 ms) */
#define RETRY_MS 250          /* after a pass the store failed */

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

/* What one pass has learnt, so that each claim does not ask again: per job its firmware
 * (and per unit model what a catalog selector means for it), per agent its live attempts. */
struct claim_pass {
    struct controller *c;
    uint64_t until_ns; /* the loop thread's CPU time at which the pass stops claiming */
    size_t claims;
    struct pass_fw {
        uint64_t job;
        char product_type[32];
        int rc;            /* < 0: the job's firmware could not be read (the next pass tries) */
        int unresolved;    /* a selector the catalog cannot resolve for this model: why says */
        char firmware[1024], sha[80], why[512];
        struct fr_fw w;
    } *fw;
    size_t nfw, fwcap;
    struct pass_agent {
        struct agent_state *a;
        int live;
    } *ag;
    size_t nag, agcap;
};

/* A job naming firmware by selector gets, per unit, the build the catalog says
 * for the unit's model: its URL and hash (SHA-256, else SHA-1). */
static int resolve_firmware(struct controller *c, const char *product_type, char *fw,
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
    if (firmware_resolve(c, product_type, selector, &w, why, sizeof why) < 0) {
        snprintf(err, errlen, "firmware '%s': %s", selector, why);
        return FR_ENOTFOUND;
    }
    if (!w.url[0] || (!w.sha256[0] && !w.sha1[0])) {
        snprintf(err, errlen, "firmware '%s' for %s: the catalog gives no URL and hash for build %s",
                 selector, product_type, w.build);
        return FR_ENOTFOUND;
    }
    snprintf(fw, fwlen, "%s", w.url);
    snprintf(sha, shalen, "%s", w.sha256[0] ? w.sha256 : w.sha1);
    *w_out = w;
    return 0;
}

/* Whether *v (n of *cap elements of size) has room for one more, doubling it if not. */
static int room_for_one(void **v, size_t n, size_t *cap, size_t size)
{
    if (n < *cap)
        return 1;
    size_t grown = *cap ? 2 * *cap : 8;
    void *p = realloc(*v, grown * size);
    if (!p)
        return 0;
    *v = p;
    *cap = grown;
    return 1;
}

/* The firmware for a candidate's job and model, read and resolved once per pass. */
static const struct pass_fw *pass_firmware(struct claim_pass *p, const struct sched_candidate *cand)
{
    for (size_t i = 0; i < p->nfw; i++)
        if (p->fw[i].job == cand->job && !strcmp(p->fw[i].product_type, cand->product_type))
            return &p->fw[i];
    if (!room_for_one((void **)&p->fw, p->nfw, &p->fwcap, sizeof *p->fw))
        return NULL;
    struct pass_fw *f = &p->fw[p->nfw++];
    memset(f, 0, sizeof *f);
    f->job = cand->job;
    snprintf(f->product_type, sizeof f->product_type, "%s", cand->product_type);
    f->rc = store_job_firmware(p->c->store, cand->job, f->firmware, sizeof f->firmware, f->sha,
                               sizeof f->sha);
    if (f->rc == 0)
        f->unresolved = resolve_firmware(p->c, cand->product_type, f->firmware, sizeof f->firmware,
                                         f->sha, sizeof f->sha, &f->w, f->why, sizeof f->why) < 0;
    return f;
}

/* The agent's live attempts, counted once per pass and then as the pass claims; NULL
 * when the agent is offline (or out of memory: the next pass). */
static struct pass_agent *pass_agent(struct claim_pass *p, const char *agent)
{
    struct agent_state *a = agents_find(p->c, agent);
    if (!a || !a->online)
        return NULL;
    for (size_t i = 0; i < p->nag; i++)
        if (p->ag[i].a == a)
            return &p->ag[i];
    int live = store_live_count(p->c->store, a->id);
    if (live < 0)
        return NULL;
    if (!room_for_one((void **)&p->ag, p->nag, &p->agcap, sizeof *p->ag))
        return NULL;
    p->ag[p->nag] = (struct pass_agent){ a, live };
    return &p->ag[p->nag++];
}

/* A claim made: its log line and its JobAssign (sent after the commit), or, for firmware
 * the catalog cannot resolve, its end at once. 1 when it is live on the agent now. */
static int announce(struct controller *c, struct agent_state *a, const struct pass_fw *f,
                    const struct claim *cl)
{
    const struct sched_candidate *cand = cl->c;
    char ecid[FR_ECID_STRLEN];
    fr_ecid_format(cand->ecid, ecid, sizeof ecid);
    struct fr_log_ctx lc = { cand->job, cand->ecid, cand->agent, cand->port };
    fr_infox("sched", &lc, "unit %s: waiting_unit -> preflight (job %llu, attempt %u on %s:%s, "
             "epoch %llu)", ecid, (unsigned long long)cand->job, cl->n, cand->agent, cand->port,
             (unsigned long long)cl->ref.epoch);
    Fr__AttemptRef ref = cl->ref;
    if (f->unresolved) { /* never retried, never blames a port (ERRORS.md: wrong_firmware) */
        struct run_end e = { FR__OUTCOME__OUTCOME_FAILED, fr_class_name(FR_CLASS_WRONG_FIRMWARE),
                             f->why, "", cand->port, 0, 0, NULL, NULL, NULL, NULL, NULL };
        runs_end(c, a, &ref, &e);
        return 0;
    }
    struct attempt_info ai = { cand->agent, cand->port, f->firmware, f->sha, cl->erase, cl->n };
    agents_send_assign(c, &ref, &ai);
    return 1;
}

/* The claims of one chunk, each with its agent (a slot already counted) and firmware as
 * indexes into the pass's arrays (which grow, and move, as the chunk is filled). */
struct chunk {
    struct claim cl[CLAIM_CHUNK];
    size_t ag[CLAIM_CHUNK], fw[CLAIM_CHUNK];
    size_t n;
};

/* Claims a chunk in one savepoint; when that fails, each claim on its own, so that one
 * the store refuses does not lose the others (the next pass tries it again). */
static void claim_chunk(struct claim_pass *p, struct chunk *k)
{
    struct controller *c = p->c;
    uint64_t now = fr_time_wall_ms();
    if (k->n == 0)
        return;
    for (size_t i = 0; i < k->n; i++) { /* p->fw no longer moves */
        const struct pass_fw *f = &p->fw[k->fw[i]];
        int built = f->w.build[0] != 0;
        k->cl[i].firmware = f->firmware;
        k->cl[i].sha = f->sha;
        k->cl[i].fw_version = built ? f->w.version : NULL;
        k->cl[i].fw_build = built ? f->w.build : NULL;
    }
    int together = store_claim_attempts(c->store, k->cl, k->n, now) == 0;
    for (size_t i = 0; i < k->n; i++) {
        struct pass_agent *pa = &p->ag[k->ag[i]];
        /* one by one only into a transaction that can still commit (a failed savepoint
         * poisons the turn: nothing claimed in it would be kept) */
        if (!together && (!store_txn_ok(c->store) || store_claim_attempts(c->store, &k->cl[i], 1, now) < 0)) {
            fr_error("sched", "cannot claim an attempt: %s", store_errmsg(c->store));
            pa->live--;
            continue;
        }
        if (!announce(c, pa->a, &p->fw[k->fw[i]], &k->cl[i]))
            pa->live--;
    }
}

/* Adds cand to the chunk when its agent is online with a free slot and its firmware is
 * known; returns whether it did. */
static int chunk_add(struct claim_pass *p, struct chunk *k, const struct sched_candidate *cand)
{
    struct pass_agent *pa = pass_agent(p, cand->agent);
    if (!pa || pa->live >= (int)pa->a->slots)
        return 0;
    size_t ag = (size_t)(pa - p->ag);
    const struct pass_fw *f = pass_firmware(p, cand); /* may move p->fw, not p->ag */
    if (!f || f->rc < 0)
        return 0; /* the next pass tries again */
    pa->live++;
    k->cl[k->n] = (struct claim){ .c = cand }; /* its firmware: when the chunk is claimed */
    k->ag[k->n] = ag;
    k->fw[k->n] = (size_t)(f - p->fw);
    k->n++;
    return 1;
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

/* Whether the pass may claim once more: MIN_CLAIMS always, then until its CPU budget
 * (looked at between two chunks) or MAX_CLAIMS; never into a transaction that cannot
 * commit. */
static int pass_may_claim(struct claim_pass *p)
{
    if (p->claims >= MAX_CLAIMS || !store_txn_ok(p->c->store))
        return 0;
    if (p->claims >= MIN_CLAIMS && p->until_ns && ctl_cpu_ns(p->c) >= p->until_ns)
        p->until_ns = 0; /* spent: no more this pass */
    return p->claims < MIN_CLAIMS || p->until_ns != 0;
}

/* Claims for one batch of candidates, a chunk at a time; returns how many it tried. */
static size_t claim_batch(struct claim_pass *p, struct batch *b)
{
    struct chunk k;
    size_t tried = 0, i = 0;
    b->n = 0;
    if (store_sched_candidates(p->c->store, on_candidate, b) < 0) {
        fr_error("sched", "cannot read the runs waiting for an attempt: %s (none claimed; the pass "
                 "runs again)", store_errmsg(p->c->store));
        b->n = 0; /* those read before the error are not claimed: the transaction cannot commit */
        return 0;
    }
    while (i < b->n && pass_may_claim(p)) {
        k.n = 0;
        for (; i < b->n && k.n < CLAIM_CHUNK && p->claims + k.n < MAX_CLAIMS; i++)
            chunk_add(p, &k, &b->c[i]);
        claim_chunk(p, &k);
        p->claims += k.n; /* tried: claimed, ended at once, or a claim that failed */
        tried += k.n;
    }
    return tried;
}

/* Claims for candidates, batch after batch, while the pass may (its budget counted
 * from started_ns); returns whether it
 * stopped with candidates left (a full batch it did not finish, or its budget). */
static int claim_pass(struct controller *c, uint64_t until_ns, size_t *claims)
{
    struct claim_pass p = { .c = c, .until_ns = until_ns };
    struct batch b = { calloc(MAX_BATCH, sizeof *b.c), 0 };
    int more = 0;
    while (b.c) {
        size_t claimed = claim_batch(&p, &b);
        more = !pass_may_claim(&p) && b.n > 0;
        /* a batch that was not full had every candidate; one that claimed nothing would
         * be read again as it is (agents full) */
        if (more || b.n < MAX_BATCH || claimed == 0)
            break;
    }
    free(b.c);
    free(p.fw);
    free(p.ag);
    *claims = p.claims;
    return more;
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

/* The CPU a continued pass may spend: what keeps it and the loop's other work since the
 * last pass (a drain of the agents' messages, timers) under TURN_TARGET_NS, between
 * PASS_MIN_NS and PASS_BUDGET_NS. A first pass, after the loop was idle, gets the most. */
static uint64_t pass_budget(struct controller *c, uint64_t start_ns)
{
    if (!c->sched_continued || start_ns < c->sched_end_cpu_ns)
        return PASS_BUDGET_NS;
    uint64_t other = start_ns - c->sched_end_cpu_ns;
    uint64_t b = other + PASS_MIN_NS < TURN_TARGET_NS ? TURN_TARGET_NS - other : PASS_MIN_NS;
    return b < PASS_BUDGET_NS ? b : PASS_BUDGET_NS;
}

/* While claims are left, the progress flush waits (a run's latest report stays queued,
 * the newer replacing the older): its turns took a third of the loop from the passes of
 * a large submit. It resumes, and writes what waited, with the pass that leaves none. */
static void hold_progress(struct controller *c, int hold)
{
    if (c->stopping || hold == c->progress_held)
        return;
    c->progress_held = hold;
    if (hold)
        uv_timer_stop(&c->progress_flush);
    else
        uv_timer_start(&c->progress_flush, agents_on_progress_flush, 0, PROGRESS_FLUSH_MS);
}

/* What a pass's expansion moves on, put back when its transaction was rolled back. */
struct expand_state {
    int all;
    struct expand_cursor at;
    size_t n;
};

static void sched_run(struct controller *c)
{
    uint64_t now = fr_time_wall_ms();
    uint64_t start = ctl_cpu_ns(c);
    if (turn_begin(c) < 0) {
        fr_error("sched", "cannot open a transaction: %s", store_errmsg(c->store));
        hold_progress(c, 0); /* no pass continues: progress is not held for one */
        return;
    }
    /* the budget counts from the start: a page of the site after a submit is part of it */
    uint64_t until = start + pass_budget(c, start);
    size_t claims = 0;
    struct expand_state was = { c->expand_all, c->expand_at, c->nexpand };
    int more = expand(c, now);
    more |= claim_pass(c, until, &claims);
    if (store_txn_ok(c->store)) { /* else all of it is rolled back: no use */
        plan_moves(c);
        store_jobs_settle(c->store, now);
    }
    int failed = turn_end(c) < 0;
    if (failed) { /* nothing of it is kept, nor was anything sent */
        c->expand_all = was.all;
        c->expand_at = was.at;
        c->nexpand = was.n;
        more = 0;
    }
    c->sched_continued = more && !c->stopping;
    c->sched_end_cpu_ns = ctl_cpu_ns(c);
    loop_count_add(&c->pass_work, claims, c->sched_end_cpu_ns - start);
    hold_progress(c, c->sched_continued);
    if (c->sched_continued || (failed && !c->stopping))
        uv_timer_start(&c->sched, sched_on_timer, failed ? RETRY_MS : CONTINUE_MS, 0);
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
