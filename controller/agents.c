/* agents — the controller's side of the agent protocol (proto/PROTOCOL.md):
 * Hello/Welcome and reconciliation, heartbeats and liveness, reliable seq/ack,
 * port events, accepts, progress and results. */
#include <stdlib.h>
#include <string.h>

#include "ctl.h"
#include "fr_err.h"
#include "fr_log.h"
#include "fr_replay.h"
#include "fr_time.h"
#include "fr_turn.h"
#include "fr_types.h"
#include "fr_wire.h"
#include "runs.h"

static struct agent_state **agent_bucket(struct controller *c, const char *id)
{
    uint32_t h = 2166136261u; /* FNV-1a */
    for (const unsigned char *p = (const unsigned char *)id; *p; p++)
        h = (h ^ *p) * 16777619u;
    return &c->agent_hash[h % AGENT_HASH];
}

struct agent_state *agents_find(struct controller *c, const char *id)
{
    for (struct agent_state *a = *agent_bucket(c, id); a; a = a->hnext)
        if (strcmp(a->id, id) == 0)
            return a;
    return NULL;
}

void agents_insert(struct controller *c, struct agent_state *a)
{
    a->next = c->agents;
    c->agents = a;
    struct agent_state **b = agent_bucket(c, a->id);
    a->hnext = *b;
    *b = a;
}

static struct agent_state *agents_add(struct controller *c, const char *id)
{
    struct agent_state *a = calloc(1, sizeof *a);
    if (!a)
        return NULL;
    snprintf(a->id, sizeof a->id, "%s", id);
    agents_insert(c, a);
    return a;
}

void agents_free(struct controller *c)
{
    free(c->progress);
    c->progress = NULL;
    free(c->progress_slot);
    c->progress_slot = NULL;
    while (c->agents) {
        struct agent_state *a = c->agents;
        c->agents = a->next;
        free(a);
    }
    memset(c->agent_hash, 0, sizeof c->agent_hash);
}

static int send_to(struct controller *c, const char *id, uint64_t ack, Fr__Envelope *env)
{
    env->agent_id = "controller";
    env->session = store_epoch(c->store);
    env->ack = ack;
    int rc = turn_send(c, id, env);
    if (rc < 0)
        fr_debug("agents", "cannot send %s to '%s': %s", fr_wire_body_name(env->body_case), id,
                 fr_strerror(rc));
    return rc;
}

/* An agent's messages go to a->route, the routing id its last accepted Hello came from
 * (fr_zsock_route_new); with CURVE only the agent's key can make one current. */
int agents_send(struct controller *c, struct agent_state *a, Fr__Envelope *env)
{
    return send_to(c, a->route, a->applied_seq, env);
}

static void send_heartbeat(struct controller *c, const char *id, uint64_t ack)
{
    Fr__Heartbeat hb = FR__HEARTBEAT__INIT;
    Fr__Envelope env = FR__ENVELOPE__INIT;
    env.body_case = FR__ENVELOPE__BODY_HEARTBEAT;
    env.heartbeat = &hb;
    send_to(c, id, ack, &env);
}

void agents_send_assign(struct controller *c, const Fr__AttemptRef *ref, const struct attempt_info *ai)
{
    struct agent_state *a = agents_find(c, ai->agent);
    if (!a || !a->online)
        return;
    Fr__AttemptRef r = *ref;
    Fr__JobAssign as = FR__JOB_ASSIGN__INIT;
    as.ref = &r;
    as.port_path = (char *)ai->port;
    as.firmware = (char *)ai->firmware;
    as.firmware_sha256 = (char *)ai->sha256;
    as.erase = ai->erase;
    as.attempt_number = ai->n;
    Fr__Envelope env = FR__ENVELOPE__INIT;
    env.body_case = FR__ENVELOPE__BODY_JOB_ASSIGN;
    env.job_assign = &as;
    agents_send(c, a, &env);
}

/* ---- re-sending JobAssigns --------------------------------------------------------- */

/* A JobAssign has no ack: its attempt stays "assigned" until the agent's accept or
 * refusal is applied. On a live link a JobAssign is not lost, only queued, and when we
 * are behind, the accept waits in our own queue. Sending every unaccepted one again on
 * every tick sent a 20,000-unit burst's 20,000 JobAssigns again once a second while the
 * accepts waited unread. So, as an agent does with its outbox (fr_replay.h), they go
 * again only where one may have been lost:
 *   - after the agent's Hello (a new link: what went to the old one may be gone), all;
 *   - else the ones claimed more than a heartbeat ago, on a tick when the agent's
 *     reliable messages stood still since the previous one (while they move, we are
 *     reading its stream, and an accept it sent is in it) and 1, 2, 4, 8, then 16
 *     ticks after the last round that found some; after RESEND_MAX_TICKS whatever its
 *     messages do, so that an agent that never stops sending still gets a lost one;
 *   - at most RESEND_PER_TICK a tick, the agents in turn from where the last tick stopped.
 * Counted in ticks: a loop that runs late sends no more for it. The agent refuses an
 * attempt it already has, so a copy never starts anything twice. */
#define RESEND_MAX_TICKS FR_REPLAY_MAX_WAIT
#define RESEND_PER_TICK 1024

struct resend {
    struct controller *c;
    size_t n;
};

static void on_resend_assign(void *arg, const Fr__AttemptRef *ref, const struct attempt_info *ai)
{
    struct resend *r = arg;
    agents_send_assign(r->c, ref, ai);
    r->n++;
}

/* A new link: everything still assigned goes at the next tick, and the waits start over. */
static void resend_relink(struct agent_state *a)
{
    a->tick_seq = a->applied_seq;
    a->resend_idle = a->resend_rounds = 0;
    a->resend_due = a->resend_any_age = 1;
}

/* One tick for an online agent: whether its next round is due. */
static void resend_tick(struct agent_state *a)
{
    int moved = a->applied_seq != a->tick_seq;
    a->tick_seq = a->applied_seq;
    a->resend_idle += a->resend_idle < RESEND_MAX_TICKS;
    unsigned wait = 1u << (a->resend_rounds < 4 ? a->resend_rounds : 4);
    if (a->resend_idle >= RESEND_MAX_TICKS || (!moved && a->resend_idle >= wait))
        a->resend_due = 1;
}

static void resend_round(struct controller *c, struct agent_state *a, struct resend *r)
{
    size_t before = r->n;
    uint64_t claimed_before = a->resend_any_age ? (uint64_t)INT64_MAX
                                                : fr_time_wall_ms() - (uint64_t)c->cfg.heartbeat_ms;
    if (store_assigned_attempts(c->store, a->id, claimed_before, on_resend_assign, r) < 0)
        fr_warn("agents", "agent '%s': cannot read its unaccepted attempts: %s", a->id,
                store_errmsg(c->store));
    a->resend_rounds = r->n > before ? a->resend_rounds + 1 : 0;
    a->resend_idle = 0;
    a->resend_due = a->resend_any_age = 0;
}

/* A tick's round of re-sends starts where the last tick's stopped. */
static void resend_begin(struct controller *c)
{
    c->resend_from = c->resend_at = c->resend_next ? c->resend_next : c->agents;
    c->resend_next = NULL;
    c->resend_sent = 0;
}

/* Goes on with the tick's round, each due agent's in turn, until budget_ns (0: no limit)
 * of the loop's CPU since start_ns are spent; returns whether the round is through. */
static int resend_assigns(struct controller *c, uint64_t start_ns, uint64_t budget_ns)
{
    struct resend r = { c, c->resend_sent };
    struct agent_state *a = c->resend_at;
    int spent = 0;
    while (a && !spent) {
        if (r.n >= RESEND_PER_TICK) {
            c->resend_next = a; /* the rest on the next tick */
            a = NULL;
            break;
        }
        if (a->online && a->resend_due) {
            resend_round(c, a, &r);
            spent = budget_ns && ctl_cpu_ns(c) - start_ns >= budget_ns;
        }
        a = a->next ? a->next : c->agents;
        if (a == c->resend_from)
            a = NULL; /* all of them looked at */
    }
    c->resend_at = a;
    c->resend_sent = r.n;
    return a == NULL;
}

/* ---- Hello ------------------------------------------------------------------------- */

static void on_hello(struct controller *c, struct agent_state *a, const Fr__Envelope *env)
{
    const Fr__Hello *h = env->hello;
    uint64_t now = fr_time_wall_ms();
    int interrupted = 0;
    int rc = store_agent_hello(c->store, a->id, h, now, &interrupted);
    if (rc < 0) {
        fr_error("agents", "agent '%s': cannot record its hello: %s", a->id, store_errmsg(c->store));
        return;
    }
    /* Hello's seq is the agent's acknowledged point: replays continue after it. */
    turn_touch(c, a);
    a->applied_seq = env->seq;
    for (size_t i = 0; i < h->n_units; i++)
        sched_expand_unit(c, h->units[i]->ecid);
    a->session = env->session;
    a->slots = h->slots;
    resend_relink(a);
    if (!a->online)
        store_event(c->store, now, "agent", 0, 0, a->id, NULL, "online");
    a->online = 1;
    /* the attempts it still runs that we no longer want (all of them: no cap) */
    Fr__AttemptRef **cancel = calloc(h->n_attempts + 1, sizeof *cancel);
    size_t ncancel = 0;
    for (size_t i = 0; cancel && i < h->n_attempts; i++)
        if (store_attempt_match(c->store, a->id, h->attempts[i]) == ATTEMPT_LIVE &&
            store_attempt_wanted(c->store, h->attempts[i]) == 0) /* an error keeps it */
            cancel[ncancel++] = h->attempts[i];
    fr_info("agents", "agent '%s' online: %zu ports, %zu units, %zu attempts kept, %d interrupted",
            a->id, h->n_ports, h->n_units, h->n_attempts, interrupted);
    Fr__Welcome w = FR__WELCOME__INIT;
    w.controller_epoch = store_epoch(c->store);
    w.heartbeat_ms = (uint32_t)c->cfg.heartbeat_ms;
    w.liveness = (uint32_t)c->cfg.liveness;
    w.cancel = cancel;
    w.n_cancel = ncancel;
    w.mirror_url = (char *)mirror_url(c);
    w.agent_session = env->session;
    w.hello_generation = h->generation;
    Fr__Envelope out = FR__ENVELOPE__INIT;
    out.body_case = FR__ENVELOPE__BODY_WELCOME;
    out.welcome = &w;
    agents_send(c, a, &out);
    free(cancel);
    sched_kick(c);
}

void agents_prefetch(struct controller *c, const char *url, const char *sha, char **only, size_t nonly)
{
    Fr__FirmwarePrefetch p = FR__FIRMWARE_PREFETCH__INIT;
    p.url = (char *)url;
    p.sha256 = (char *)sha;
    Fr__Envelope env = FR__ENVELOPE__INIT;
    env.body_case = FR__ENVELOPE__BODY_PREFETCH;
    env.prefetch = &p;
    for (struct agent_state *a = c->agents; a; a = a->next) {
        int named = nonly == 0;
        for (size_t i = 0; i < nonly && !named; i++)
            named = strcmp(only[i], a->id) == 0;
        if (a->online && named)
            agents_send(c, a, &env);
    }
}

/* ---- reliable messages ------------------------------------------------------------ */

static int on_port_event(struct controller *c, struct agent_state *a, const Fr__PortEvent *ev)
{
    char ecid[FR_ECID_STRLEN];
    fr_ecid_format(ev->unit->ecid, ecid, sizeof ecid);
    static const char *kinds[] = { "attached", "detached", "changed mode" };
    fr_debug("agents", "unit %s %s on %s:%s (%s)", ecid, kinds[ev->kind], a->id,
             ev->unit->port_path, fr_mode_name(ev->unit->mode));
    int rc = store_begin(c->store); /* a savepoint in the turn: all of the event or none */
    if (rc == 0) { /* else no savepoint: a rollback would undo the turn */
        rc = store_unit_event(c->store, a->id, ev, fr_time_wall_ms());
        if (rc == 0)
            rc = store_commit(c->store);
        if (rc < 0)
            store_rollback(c->store);
    }
    sched_expand_unit(c, ev->unit->ecid);
    if (rc < 0)
        fr_error("agents", "unit %s: cannot record port event: %s (not acknowledged)", ecid,
                 store_errmsg(c->store));
    sched_kick(c);
    return rc;
}

void agents_send_power_cycle(struct controller *c, struct agent_state *a, const char *port)
{
    Fr__PortCommand pc = FR__PORT_COMMAND__INIT;
    pc.action = FR__PORT_COMMAND__ACTION__POWER_CYCLE;
    pc.port_path = (char *)port;
    Fr__Envelope env = FR__ENVELOPE__INIT;
    env.body_case = FR__ENVELOPE__BODY_PORT_COMMAND;
    env.port_command = &pc;
    agents_send(c, a, &env);
}

/* Applies a reliable message once, in order; duplicates and gaps are not applied. The
 * ack advances only past a message whose effect is committed: one the store could not
 * take is not acknowledged, and the agent sends it again. */
static void on_reliable(struct controller *c, struct agent_state *a, const Fr__Envelope *env)
{
    if (env->seq <= a->applied_seq)
        return; /* a replay of something applied: the ack covers it */
    if (env->seq != a->applied_seq + 1)
        return; /* a gap: the agent replays from our ack */
    int rc = 0;
    if (env->body_case == FR__ENVELOPE__BODY_PORT_EVENT)
        rc = on_port_event(c, a, env->port_event);
    else if (env->body_case == FR__ENVELOPE__BODY_JOB_ACCEPT)
        rc = runs_on_accept(c, a, env->job_accept);
    else if (env->body_case == FR__ENVELOPE__BODY_JOB_RESULT)
        rc = runs_on_result(c, a, env->job_result);
    if (rc < 0)
        return;
    turn_touch(c, a);
    a->applied_seq = env->seq; /* acknowledged when the turn commits (turn.c) */
}

void agents_ack(struct controller *c, struct agent_state *a)
{
    send_heartbeat(c, a->route, a->applied_seq);
}

/* The slot of (agent, attempt) in progress_slot: its entry's, or the free one where it
 * goes. Ten thousand running attempts report four times a second: a linear search of
 * the pending ones cost more than everything else the loop did. */
static uint32_t *progress_slot(struct controller *c, const struct agent_state *a, uint64_t attempt)
{
    size_t h = (size_t)((attempt * 0x9E3779B97F4A7C15ull) >> 40) % PROGRESS_SLOTS;
    for (;; h = (h + 1) % PROGRESS_SLOTS) { /* never full: twice the entries */
        uint32_t *s = &c->progress_slot[h];
        if (*s == 0 || (c->progress[*s - 1].ref.attempt_id == attempt && c->progress[*s - 1].agent == a))
            return s;
    }
}

static void queue_progress(struct controller *c, struct agent_state *a, const Fr__JobProgress *p)
{
    uint32_t *slot = progress_slot(c, a, p->ref->attempt_id);
    /* an entry the flush under way has written already: a new one, written after it */
    if (*slot == 0 || *slot - 1 < c->progress_flushed) {
        if (c->nprogress >= PROGRESS_MAX)
            return; /* the next report of that attempt will get through */
        *slot = (uint32_t)++c->nprogress;
    }
    struct pending_progress *pp = &c->progress[*slot - 1];
    pp->ref = *p->ref;
    pp->agent = a;
    snprintf(pp->state, sizeof pp->state, "%s", p->state);
    pp->step = p->step;
    pp->fraction = p->fraction;
    snprintf(pp->status, sizeof pp->status, "%s", p->status);
}

/* Writes up to max pending reports in one transaction, and while cpu_ns (0: no limit) of
 * the loop's CPU is not spent; returns how many are left. */
static size_t flush_progress(struct controller *c, size_t max, uint64_t cpu_ns)
{
    size_t end = c->nprogress - c->progress_flushed > max ? c->progress_flushed + max : c->nprogress;
    if (end == c->progress_flushed || store_begin(c->store) < 0)
        return 0; /* nothing, or the next tick tries again */
    uint64_t now = fr_time_wall_ms(), start = ctl_cpu_ns(c);
    size_t i = c->progress_flushed;
    for (; i < end; i++) {
        if (cpu_ns && i > c->progress_flushed && (i - c->progress_flushed) % PROGRESS_CPU_EVERY == 0 &&
            ctl_cpu_ns(c) - start >= cpu_ns)
            break; /* spent: the rest on the next turn */
        struct pending_progress *pp = &c->progress[i];
        Fr__JobProgress p = FR__JOB_PROGRESS__INIT;
        p.ref = &pp->ref;
        p.state = pp->state;
        p.step = pp->step;
        p.fraction = pp->fraction;
        p.status = pp->status;
        /* most reports: one UPDATE of the run, the attempt matched inside it; the rest (a new
         * state, an attempt not running, a ref that matches none) the whole way */
        if (store_progress_running(c->store, pp->agent->id, &pp->ref, &p, now) != 1 &&
            runs_match(c, pp->agent, &pp->ref, "progress", now) == ATTEMPT_LIVE)
            store_attempt_progress(c->store, &pp->ref, &p, now);
    }
    end = i;
    if (store_commit(c->store) < 0)
        store_rollback(c->store);
    loop_count_add(&c->flush_work, end - c->progress_flushed, ctl_cpu_ns(c) - start);
    c->progress_flushed = end;
    if (end < c->nprogress)
        return c->nprogress - end;
    memset(c->progress_slot, 0, PROGRESS_SLOTS * sizeof *c->progress_slot);
    c->nprogress = c->progress_flushed = 0;
    return 0;
}

/* At most PROGRESS_PER_TURN reports and PROGRESS_CPU_NS of CPU per turn: ten thousand
 * running units' reports took 300 ms of one turn, with results and heartbeats waiting
 * behind them. The rest is written on the next turn, after the loop has read its sockets. */
void agents_on_progress_flush(uv_timer_t *t)
{
    struct controller *c = t->data;
    if (flush_progress(c, PROGRESS_PER_TURN, PROGRESS_CPU_NS) > 0 && !c->stopping)
        uv_timer_start(&c->progress_flush, agents_on_progress_flush, 1, PROGRESS_FLUSH_MS);
}

void agents_flush_progress(struct controller *c)
{
    flush_progress(c, PROGRESS_MAX, 0);
}

static void dispatch(struct controller *c, struct agent_state *a, const Fr__Envelope *env)
{
    switch (env->body_case) {
    case FR__ENVELOPE__BODY_HEARTBEAT:
        break;
    case FR__ENVELOPE__BODY_JOB_PROGRESS: /* one run's, from an agent before batches */
        queue_progress(c, a, env->job_progress);
        break;
    case FR__ENVELOPE__BODY_PROGRESS_BATCH: /* each item as if it came alone */
        for (size_t i = 0; i < env->progress_batch->n_items; i++)
            queue_progress(c, a, env->progress_batch->items[i]);
        break;
    case FR__ENVELOPE__BODY_PORT_EVENT:
    case FR__ENVELOPE__BODY_JOB_ACCEPT:
    case FR__ENVELOPE__BODY_JOB_RESULT:
        on_reliable(c, a, env);
        break;
    default:
        a->dropped++;
        fr_warn("agents", "agent '%s': dropped unexpected %s", a->id, fr_wire_body_name(env->body_case));
    }
}

static void refuse(struct controller *c, struct agent_state *a, const char *from, const char *why)
{
    if (a)
        a->dropped++;
    else
        c->dropped_unknown++;
    fr_warn("agents", "dropped a message from '%s': %s", from, why);
}

/* With CURVE, a message speaks for the agent its key is bound to, and no other. */
static const struct zap_peer *authenticated(struct controller *c, const zmq_msg_t *msg,
                                            const char *id, const Fr__Envelope *env)
{
    if (!c->zap)
        return NULL;
    const struct zap_peer *p = zap_peer_of(c->zap, msg);
    if (!p)
        zap_refuse(c->zap, &c->zap->refused_agent_msgs, "agents", "refused a %s claiming to be agent '%s': its key is not "
                   "(or no longer) authorized", fr_wire_body_name(env->body_case), id);
    else if (strcmp(p->name, env->agent_id) != 0 || !fr_zsock_route_belongs(id, p->name))
        zap_refuse(c->zap, &c->zap->refused_agent_msgs, "agents", "refused a %s from agent '%s' claiming to be agent '%s' "
                   "(routing id '%s')", fr_wire_body_name(env->body_case), p->name,
                   env->agent_id, id);
    else
        return p;
    return NULL;
}

void agents_on_keys_changed(void *arg)
{
    struct controller *c = arg;
    for (struct agent_state *a = c->agents; a; a = a->next) {
        const struct zap_peer *p = zap_agent(c->zap, a->id);
        if (!a->online || (p && strcmp(p->key, a->key) == 0))
            continue;
        a->online = 0;
        a->session = 0; /* nothing more from that link is taken, even with a new key */
        fr_warn("agents", "agent '%s' offline: its key was revoked", a->id);
        store_event(c->store, fr_time_wall_ms(), "agent", 0, 0, a->id, NULL, "offline: key revoked");
    }
}

void agents_on_msg(fr_zsock *zs, zmq_msg_t *parts, size_t nparts, void *arg)
{
    struct controller *c = arg;
    char id[FR_ZSOCK_ROUTE_MAX], name[64]; /* the routing id; the agent it names */
    size_t idlen = zmq_msg_size(&parts[0]);
    /* copies, not snprintf: this runs for every message (4 % of the loop at 125,000 a second) */
    size_t n = idlen < sizeof id - 1 ? idlen : sizeof id - 1;
    memcpy(id, zmq_msg_data(&parts[0]), n);
    id[n] = 0;
    n = strcspn(id, "/");
    n = n < sizeof name - 1 ? n : sizeof name - 1;
    memcpy(name, id, n);
    name[n] = 0;
    struct agent_state *a = agents_find(c, name);
    if (turn_begin(c) < 0) /* the drain's messages commit together in agents_on_drained */
        fr_error("agents", "cannot open this turn's transaction: %s", store_errmsg(c->store));
    if (nparts != 2) {
        refuse(c, a, id, "expected one frame after the routing id");
        return;
    }
    Fr__Envelope *env = NULL;
    char err[256];
    int rc = fr_wire_unpack(zmq_msg_data(&parts[1]), zmq_msg_size(&parts[1]), &env, err, sizeof err);
    if (rc < 0) {
        refuse(c, a, id, err);
        return;
    }
    const struct zap_peer *peer = authenticated(c, &parts[1], id, env);
    if (c->zap && !peer) {
        /* refused and counted */
    } else if (strcmp(env->agent_id, name) != 0 || !fr_zsock_route_belongs(id, name) || idlen >= sizeof id) {
        refuse(c, a, id, "agent id in the envelope differs from the routing id");
    } else if (env->body_case == FR__ENVELOPE__BODY_HELLO) {
        if (!a)
            a = agents_add(c, name);
        if (a) {
            /* its messages go where this Hello came from, from now on: with CURVE, a
             * routing id that only a peer holding this agent's key can have made current */
            snprintf(a->route, sizeof a->route, "%s", id);
            a->last_seen = uv_now(c->loop);
            snprintf(a->key, sizeof a->key, "%s", peer ? peer->key : "");
            on_hello(c, a, env);
        }
    } else if (!a || a->session != env->session) {
        send_heartbeat(c, id, 0); /* our epoch tells the agent to say Hello again */
    } else {
        if (!a->online) { /* the same session, silent for a while: it is back */
            a->online = 1;
            fr_info("agents", "agent '%s' online again", a->id);
            resend_relink(a); /* nothing went to it while it was offline */
            store_event(c->store, fr_time_wall_ms(), "agent", 0, 0, a->id, NULL, "online");
            sched_kick(c);
        }
        a->last_seen = uv_now(c->loop);
        dispatch(c, a, env);
    }
    fr_wire_free(&env);
}

void agents_on_drained(fr_zsock *zs, void *arg)
{
    turn_end(arg);
}

/* ---- the heartbeat tick, in slices ---------------------------------------------- */

/* A tick goes through the agents a slice per loop turn: TICK_CPU_EVERY agents between two
 * looks at the loop's CPU, until TICK_CPU_NS are spent; the rest at the next turn
 * (fr_turn_later), after the loop has read its sockets. 200 agents take about 1 ms, 1,600
 * about 8: a plug arriving meanwhile waited for all of it. After the heartbeats, the
 * JobAssigns due go again in the same slices, an agent's at a time (up to 1,024 of them
 * took 4-6 ms of a burst's tick). A slice is short, so the last agent's heartbeat comes a
 * few turns after the first's; a tick due while the last one is not through finishes it
 * first, so every agent gets one heartbeat per tick. */
#define TICK_CPU_NS (2 * 1000000ull)
#define TICK_CPU_EVERY 2

/* One online agent on a tick: offline after `limit` ms of silence (not on a tick after a
 * stall), else its heartbeat (and ack), and its JobAssigns' re-send wait counted. */
static void tick_agent(struct controller *c, struct agent_state *a, uint64_t now, uint64_t limit)
{
    if (!c->tick_stalled && now - a->last_seen > limit) {
        a->online = 0;
        fr_warn("agents", "agent '%s' offline: no message for %llu ms", a->id,
                (unsigned long long)(now - a->last_seen));
        store_event(c->store, fr_time_wall_ms(), "agent", 0, 0, a->id, NULL, "offline");
        return;
    }
    send_heartbeat(c, a->route, a->applied_seq);
    resend_tick(a);
}

/* The tick's agents from c->tick_at on, then its re-sends, until budget_ns (0: no limit)
 * of the loop's CPU are spent. Returns whether the tick is done. */
static int tick_slice(struct controller *c, uint64_t budget_ns)
{
    uint64_t start = ctl_cpu_ns(c), now = uv_now(c->loop), online = 0, seen = 0;
    uint64_t limit = (uint64_t)(c->cfg.heartbeat_ms * c->cfg.liveness);
    if (c->tick_phase == TICK_AGENTS) {
        struct agent_state *a = c->tick_at;
        for (; a; a = a->next, seen++) {
            if (budget_ns && seen && seen % TICK_CPU_EVERY == 0 && ctl_cpu_ns(c) - start >= budget_ns)
                break; /* spent: the rest at the next turn */
            if (a->online) {
                tick_agent(c, a, now, limit);
                online++;
            }
        }
        c->tick_at = a;
        if (!a) {
            resend_begin(c);
            c->tick_phase = TICK_RESENDS;
        }
    }
    if (c->tick_phase == TICK_RESENDS && resend_assigns(c, start, budget_ns))
        c->tick_phase = TICK_DONE;
    loop_count_add(&c->tick_work, online, ctl_cpu_ns(c) - start);
    return c->tick_phase == TICK_DONE;
}

static void on_tick_more(uv_timer_t *t)
{
    struct controller *c = t->data;
    if (c->tick_phase != TICK_DONE && !tick_slice(c, TICK_CPU_NS) && !c->stopping)
        fr_turn_later(&c->tick_more, on_tick_more);
}

void agents_on_heartbeat(uv_timer_t *t)
{
    struct controller *c = t->data;
    uint64_t now = uv_now(c->loop);
    if (c->tick_phase != TICK_DONE) /* the last tick is not through: its agents first */
        tick_slice(c, 0);
    /* A late tick means this loop was busy (agents' messages may wait unread, timers
     * run before the poll): no agent is declared offline on such a tick. */
    int stalled = c->last_tick && now - c->last_tick > 2 * (uint64_t)c->cfg.heartbeat_ms;
    if (stalled)
        fr_info("agents", "loop busy for %llu ms: not judging agents on this tick",
                (unsigned long long)(now - c->last_tick));
    c->last_tick = now;
    if (c->sched_retry_at && now >= c->sched_retry_at) { /* a refused run's backoff is over */
        c->sched_retry_at = 0;
        sched_kick(c);
    }
    c->tick_stalled = stalled;
    c->tick_at = c->agents;
    c->tick_phase = TICK_AGENTS;
    if (!tick_slice(c, TICK_CPU_NS) && !c->stopping)
        fr_turn_later(&c->tick_more, on_tick_more);
}
