/* link — the agent's transport to the controller (proto/PROTOCOL.md): the socket and
 * its keys, Hello until Welcome, session and seq, heartbeats and liveness, re-Hello
 * when the controller restarts, and the outbox of reliable messages (with the result
 * journal) replayed until acknowledged. What the controller's messages mean is
 * dispatch.c's: every message this side accepts is handed there. */
#include <stdlib.h>
#include <string.h>

#include "agent.h"
#include "dispatch.h"
#include "fr_err.h"
#include "fr_keys.h"
#include "fr_log.h"
#include "fr_types.h"
#include "fr_wire.h"
#include "journal.h"
#include "progress.h"
#include "unit_run.h"

static int raw_send(struct agent *a, Fr__Envelope *env)
{
    env->agent_id = a->cfg.id;
    env->session = a->session;
    return fr_wire_send(&a->zs, NULL, 0, env);
}

void link_send(struct agent *a, Fr__Envelope *env)
{
    if (a->welcomed)
        raw_send(a, env);
}

static void outbox_transmit(struct agent *a, struct outbox_entry *e)
{
    if (a->welcomed && fr_zsock_send(&a->zs, NULL, 0, e->data, e->len) == 0)
        fr_replay_sent(&e->replay, uv_now(a->loop));
}

/* Queues env under the next seq. The seq is taken only once the message is packed: a
 * number burnt on a message that never left would be a gap the controller waits on
 * forever (it applies seq n + 1 only after n). */
static int enqueue(struct agent *a, Fr__Envelope *env, const Fr__AttemptRef *ref,
                   struct outbox_entry **out)
{
    struct outbox_entry *e = calloc(1, sizeof *e);
    if (!e)
        return FR_ENOMEM;
    env->agent_id = a->cfg.id;
    env->session = a->session;
    env->seq = a->next_seq;
    int rc = fr_wire_pack(env, &e->data, &e->len);
    if (rc < 0) {
        free(e);
        return rc;
    }
    e->seq = a->next_seq++;
    if (ref)
        e->ref = *ref;
    *a->outbox_tail = e;
    a->outbox_tail = &e->next;
    *out = e;
    return 0;
}

/* Keeps a result in the journal, without our session and seq (a later process sends it
 * under its own); returns its row, or 0 when it could not be kept. */
static int64_t keep_result(struct agent *a, const Fr__Envelope *env, const Fr__AttemptRef *ref)
{
    Fr__Envelope copy = *env;
    copy.session = 0;
    copy.seq = 0;
    uint8_t *data = NULL;
    size_t len = 0;
    int64_t id = 0;
    if (fr_wire_pack(&copy, &data, &len) == 0)
        id = journal_add(a, ref->attempt_id, data, len);
    free(data);
    return id;
}

int link_send_reliable(struct agent *a, Fr__Envelope *env, const Fr__AttemptRef *result_ref)
{
    if (a->closed) { /* stopping: the engines we ended report after the link closed */
        if (result_ref)
            keep_result(a, env, result_ref);
        return 0;
    }
    struct outbox_entry *e = NULL;
    int rc = enqueue(a, env, result_ref, &e);
    if (rc < 0) {
        fr_error("link", "cannot queue a %s for the controller: %s", fr_wire_body_name(env->body_case),
                 fr_strerror(rc));
        return rc;
    }
    if (result_ref)
        e->journal_id = keep_result(a, env, result_ref);
    outbox_transmit(a, e);
    return 0;
}

/* Queues a result kept in the journal (row journal_id; 0 = do not tie the entry to it). */
static int queue_stored(struct agent *a, const uint8_t *data, size_t len, int64_t journal_id,
                        uint64_t *attempt_id)
{
    Fr__Envelope *env = NULL;
    char err[256];
    int rc = fr_wire_unpack(data, len, &env, err, sizeof err);
    if (rc == 0 && env->body_case != FR__ENVELOPE__BODY_JOB_RESULT)
        rc = FR_EPROTO;
    if (rc < 0) {
        fr_warn("link", "result journal: entry %lld unreadable (%s)", (long long)journal_id,
                env ? "not a result" : err);
        fr_wire_free(&env);
        return rc;
    }
    *attempt_id = env->job_result->ref->attempt_id;
    char *kept_id = env->agent_id; /* enqueue points it at our id; the unpacked one is freed below */
    struct outbox_entry *e = NULL;
    rc = enqueue(a, env, env->job_result->ref, &e);
    env->agent_id = kept_id;
    if (rc == 0) {
        e->journal_id = journal_id;
        outbox_transmit(a, e);
    }
    fr_wire_free(&env);
    return rc;
}

static void restore_one(struct agent *a, int64_t id, const uint8_t *data, size_t len)
{
    uint64_t attempt = 0;
    if (queue_stored(a, data, len, id, &attempt) < 0) {
        journal_acked(a, id); /* never replayed again */
        return;
    }
    fr_info("link", "the result of attempt %llu, kept from before a restart, goes out again",
            (unsigned long long)attempt);
}

int link_resend_result(struct agent *a, uint64_t attempt_id)
{
    uint8_t *data = NULL;
    size_t len = 0;
    int rc = journal_find(a, attempt_id, &data, &len);
    uint64_t attempt = 0;
    if (rc == 0)
        rc = queue_stored(a, data, len, 0, &attempt);
    free(data);
    return rc;
}

static void outbox_ack(struct agent *a, uint64_t ack)
{
    if (ack > a->acked)
        a->acked = ack;
    while (a->outbox && a->outbox->seq <= a->acked) {
        struct outbox_entry *e = a->outbox;
        a->outbox = e->next;
        if (e->journal_id)
            journal_acked(a, e->journal_id);
        free(e->data);
        free(e);
    }
    if (!a->outbox)
        a->outbox_tail = &a->outbox;
}

/* After a Welcome, every entry goes again on the new link; at a tick, those that may
 * have been lost (fr_replay.h: never sent, or unacknowledged while the ack stands still). */
static void outbox_replay(struct agent *a, int all)
{
    uint64_t now = uv_now(a->loop);
    int ack_moved = a->acked != a->tick_acked;
    a->tick_acked = a->acked;
    for (struct outbox_entry *e = a->outbox; e; e = e->next) {
        if (all)
            fr_replay_relink(&e->replay);
        if (fr_replay_due(&e->replay, now, a->heartbeat_ms, ack_moved))
            outbox_transmit(a, e);
    }
}

static int send_hello(struct agent *a)
{
    Fr__Hello h = FR__HELLO__INIT;
    h.agent_version = FR_VERSION;
    char engine[160];
    snprintf(engine, sizeof engine, "%s %s", a->engine.name, a->engine.version);
    h.engine = engine[0] != ' ' ? engine : "";
    h.libimobiledevice = FR_LIBIMOBILEDEVICE_VERSION;
    h.hostname = a->cfg.id;
    h.slots = (uint32_t)a->cfg.slots;
    h.generation = a->topology_gen;
    ports_fill_hello(a, &h);
    size_t n = 0;
    for (struct unit_run *r = a->runs; r; r = r->next)
        n++;
    for (struct outbox_entry *e = a->outbox; e; e = e->next)
        n += e->ref.ecid != 0;
    Fr__AttemptRef **refs = calloc(n + 1, sizeof *refs);
    for (struct unit_run *r = a->runs; r && refs; r = r->next)
        refs[h.n_attempts++] = &r->ref;
    for (struct outbox_entry *e = a->outbox; e && refs; e = e->next)
        if (e->ref.ecid)
            refs[h.n_attempts++] = &e->ref;
    h.attempts = refs;
    Fr__Envelope env = FR__ENVELOPE__INIT;
    env.seq = a->acked; /* our acknowledged point: the controller continues after it */
    env.body_case = FR__ENVELOPE__BODY_HELLO;
    env.hello = &h;
    int rc = raw_send(a, &env);
    free(refs);
    ports_free_hello(&h);
    return rc;
}

/* Connects under a routing id new for this connection, "ID/RANDOM": the controller
 * sends only to the routing id of our last Hello it accepted (with CURVE, authenticated
 * with our key), its ROUTER ignores a second connection under a routing id in use, and
 * a routing id nobody can guess is one nobody can take first. */
static int link_connect(struct agent *a)
{
    char route[FR_ZSOCK_ROUTE_MAX];
    fr_zsock_route_new(a->dealer, a->cfg.id, route);
    fr_info("link", "connecting to '%s' as routing id '%s'", a->cfg.controller, route);
    return zmq_connect(a->dealer, a->cfg.controller);
}

/* A controller that refused our key (a handshake failure) ends that connection for
 * good: libzmq does not try again. And a connection the controller still takes for
 * alive (its end never saw ours drop) keeps our routing id there: libzmq then made our
 * reconnection one whose messages the controller never sees. So when Hellos find no
 * link for a while, or go unanswered for twice as long, the link is made again, under a
 * new routing id (the key may have been authorized since). */
#define LINK_RELINK_TICKS 5

static void say_hello(struct agent *a)
{
    int unsent = send_hello(a) == FR_EAGAIN;
    if (unsent) {
        a->hellos_unanswered = 0;
        if (++a->hellos_unsent < LINK_RELINK_TICKS)
            return;
    } else {
        a->hellos_unsent = 0;
        if (++a->hellos_unanswered < 2 * LINK_RELINK_TICKS)
            return;
    }
    fr_info("link", "%s '%s' for %d heartbeats (down, or our key refused): connecting again",
            unsent ? "no link to" : "no Welcome from", a->cfg.controller,
            unsent ? LINK_RELINK_TICKS : 2 * LINK_RELINK_TICKS);
    a->hellos_unsent = a->hellos_unanswered = 0;
    zmq_disconnect(a->dealer, a->cfg.controller);
    link_connect(a);
}

static void on_link_timer(uv_timer_t *t);

static void on_welcome(struct agent *a, const Fr__Envelope *env)
{
    const Fr__Welcome *w = env->welcome;
    a->welcomed = 1;
    a->hellos_unsent = a->hellos_unanswered = 0;
    a->last_tick = 0; /* the heartbeat interval changes: the next tick is not late */
    a->controller_epoch = w->controller_epoch;
    a->heartbeat_ms = w->heartbeat_ms;
    a->liveness = w->liveness;
    /* Restarted, not only given a new repeat: the tick already due comes at the old
     * period (1 s at start), a silence longer than the controller's liveness
     * (3 x 200 ms in the tests) that made it take a new agent for dead at once. */
    uv_timer_start(&a->link_timer, on_link_timer, a->heartbeat_ms, a->heartbeat_ms);
    fr_info("link", "welcomed by controller epoch %llu (heartbeat %u ms)",
            (unsigned long long)w->controller_epoch, w->heartbeat_ms);
    if (w->hello_generation != a->topology_gen) {
        /* it answers a Hello sent before the ports changed: only a Hello carries them */
        fr_info("link", "the ports changed since the hello this welcome answers (generation "
                "%llu, now %llu): saying hello again", (unsigned long long)w->hello_generation,
                (unsigned long long)a->topology_gen);
        a->welcomed = 0;
        send_hello(a);
        return;
    }
    outbox_replay(a, 1);
    progress_kick(a); /* what changed while the link was down */
}

/* A Welcome that answers a Hello of an earlier process of this agent, queued at a
 * controller that was busy. Taking it would apply its ack to this process's outbox
 * (dropping results a crash left to deliver) and leave this process unknown at the
 * controller (its messages refused for their session) while it hears heartbeats, so
 * it would never say Hello. */
static int stale_welcome(struct agent *a, const Fr__Envelope *env)
{
    if (env->body_case != FR__ENVELOPE__BODY_WELCOME || !env->welcome->agent_session ||
        env->welcome->agent_session == a->session)
        return 0;
    fr_info("link", "ignored a welcome meant for an earlier run of this agent");
    return 1;
}

static void on_msg(fr_zsock *zs, zmq_msg_t *parts, size_t nparts, void *arg)
{
    struct agent *a = arg;
    Fr__Envelope *env = NULL;
    char err[256];
    if (nparts != 1 || fr_wire_unpack(zmq_msg_data(&parts[0]), zmq_msg_size(&parts[0]), &env, err,
                                      sizeof err) < 0) {
        a->dropped++;
        fr_warn("link", "dropped a message from the controller: %s", nparts != 1 ? "frames" : err);
        return;
    }
    if (stale_welcome(a, env)) {
        fr_wire_free(&env);
        return;
    }
    a->last_heard = uv_now(a->loop);
    if (env->body_case != FR__ENVELOPE__BODY_WELCOME && a->welcomed &&
        env->session != a->controller_epoch) {
        fr_info("link", "controller epoch changed (%llu -> %llu): saying hello again",
                (unsigned long long)a->controller_epoch, (unsigned long long)env->session);
        a->welcomed = 0;
        send_hello(a);
    } else if (env->body_case == FR__ENVELOPE__BODY_WELCOME || a->welcomed) {
        outbox_ack(a, env->ack);
        if (env->body_case == FR__ENVELOPE__BODY_WELCOME)
            on_welcome(a, env);
        dispatch_message(a, env);
    }
    fr_wire_free(&env);
}

static void on_link_timer(uv_timer_t *t)
{
    struct agent *a = t->data;
    uint64_t now = uv_now(a->loop);
    /* A tick this late means our own loop was busy: the controller's messages may be
     * waiting unread (timers run before the poll), so silence is no verdict this time. */
    uint64_t gap = a->last_tick ? now - a->last_tick : 0;
    a->last_tick = now;
    int stalled = gap > 2 * a->heartbeat_ms;
    if (stalled && a->welcomed)
        fr_info("link", "loop busy for %llu ms: not judging the controller on this tick",
                (unsigned long long)gap);
    else if (a->welcomed && now - a->last_heard > a->heartbeat_ms * a->liveness) {
        fr_warn("link", "controller silent for %llu ms: saying hello again",
                (unsigned long long)(now - a->last_heard));
        a->welcomed = 0;
    }
    if (!a->welcomed) {
        say_hello(a);
        return;
    }
    Fr__Heartbeat hb = FR__HEARTBEAT__INIT;
    int running = unit_run_count(a);
    hb.running = (uint32_t)running;
    hb.free_slots = running < a->cfg.slots ? (uint32_t)(a->cfg.slots - running) : 0;
    Fr__Envelope env = FR__ENVELOPE__INIT;
    env.body_case = FR__ENVELOPE__BODY_HEARTBEAT;
    env.heartbeat = &hb;
    raw_send(a, &env);
    outbox_replay(a, 0);
}

/* CURVE with this agent's keypair, when [agent] key is set (else a plain link, which
 * only a controller in insecure mode accepts). */
static int link_keys(struct agent *a, char *err, size_t errlen)
{
    struct fr_key mine, controller;
    char why[1024];
    if (!a->cfg.key[0])
        return 0;
    if (fr_key_read_pair(a->cfg.key, &mine, why, sizeof why) < 0)
        return fr_seterr(FR_ECONFIG, err, errlen, "[agent] key: %s", why);
    if (fr_key_read(a->cfg.controller_key, &controller, why, sizeof why) < 0)
        return fr_seterr(FR_ECONFIG, err, errlen, "[agent] controller_key: %s", why);
    int rc = fr_key_curve_client(a->dealer, &mine, controller.public_key);
    memset(&mine, 0, sizeof mine);
    return rc < 0 ? fr_seterr(FR_ESYS, err, errlen, "cannot use CURVE: %s",
                              zmq_strerror(zmq_errno())) : 0;
}

int link_start(struct agent *a, char *err, size_t errlen)
{
    a->zctx = zmq_ctx_new();
    a->dealer = zmq_socket(a->zctx, ZMQ_DEALER);
    int one = 1, ivl = 100, ivl_max = 2000;
    fr_zsock_set_defaults(a->dealer, FR_WIRE_MAX_MSG);
    if (link_keys(a, err, errlen) < 0)
        return FR_ECONFIG;
    zmq_setsockopt(a->dealer, ZMQ_IMMEDIATE, &one, sizeof one);
    zmq_setsockopt(a->dealer, ZMQ_RECONNECT_IVL, &ivl, sizeof ivl);
    zmq_setsockopt(a->dealer, ZMQ_RECONNECT_IVL_MAX, &ivl_max, sizeof ivl_max);
    if (link_connect(a) < 0)
        return fr_seterr(FR_ECONFIG, err, errlen, "[agent] controller: cannot use '%s': %s",
                         a->cfg.controller, zmq_strerror(zmq_errno()));
    fr_zsock_start(&a->zs, a->loop, a->dealer, on_msg, a);
    a->heartbeat_ms = 1000;
    a->liveness = 3;
    a->next_seq = 1;
    a->outbox_tail = &a->outbox;
    /* results a previous process could not deliver go first, under this session */
    journal_each(a, restore_one);
    uv_timer_init(a->loop, &a->link_timer);
    a->link_timer.data = a;
    uv_timer_start(&a->link_timer, on_link_timer, 200, 1000);
    fr_info("link", "agent '%s' connecting to '%s' (%s)", a->cfg.id, a->cfg.controller,
            a->cfg.key[0] ? "CURVE" : "no key: only a controller in insecure mode accepts it");
    return 0;
}

void link_close(struct agent *a)
{
    a->closed = 1;
    progress_close(a);
    fr_zsock_close(&a->zs, NULL);
    uv_close((uv_handle_t *)&a->link_timer, NULL);
    link_outbox_free(a);
}

void link_outbox_free(struct agent *a)
{
    while (a->outbox) {
        struct outbox_entry *e = a->outbox;
        a->outbox = e->next;
        free(e->data);
        free(e);
    }
    a->outbox_tail = &a->outbox;
}
