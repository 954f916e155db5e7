/* loadgen — plays N agents x P ports against a real flashrackd, speaking the agent
 * protocol (proto/PROTOCOL.md) at the real agent's rates, and prints what it measured.
 *
 * One process, one libuv loop, one DEALER per simulated agent (common/fr_zsock). Each
 * agent says Hello with its ports (and, in burst mode, its units), heartbeats at the
 * Welcome's interval, keeps reliable messages (port events, accepts, results) in an
 * outbox until acknowledged and re-sends them after a heartbeat as the agent does,
 * re-Hellos when the controller's epoch changes or it falls silent. An assigned unit
 * is accepted, reports its progress in its agent's round (one ProgressBatch of every
 * running attempt per agent every --progress-ms, as flashrack-agent sends them), and
 * ends with a result; durations and link losses (4013) come from the simulator's pure
 * fate functions (sim/fate.h), so a seed gives the same site. A restored unit is
 * unplugged (PortEvent DETACH); in steady mode new units are plugged into free ports
 * at --rate per second across the site.
 *
 * Modes:
 *   burst   every port holds a unit at Hello; one job for all agents is submitted once
 *           every agent is welcomed; the run ends when every unit is restored, or when
 *           nothing runs and the controller says the job is over (units failed for good).
 *   steady  a standing job first, then units plugged in steadily for --duration s.
 *   capacity every port holds a unit and one job runs them all, restores outlasting the
 *           run (--restore-ms); once every attempt runs, a --duration s window measures
 *           the rate offered (with --progress-single: each attempt's own JobProgress
 *           every --progress-ms, as agents sent before ProgressBatch), what loadgen's
 *           agents sent, what the controller read (its loop.agent_messages), the backlog
 *           at the window's ends against one round's messages, and both processes' CPU
 *           by thread over it (/proc/PID/task).
 *
 * With --keys DIR every socket speaks CURVE, as real agents and operators do: --make-keys
 * writes a keypair per simulated agent and one for its client socket, authorized in the
 * controller's keys directory (agents/ID.pub, operators/loadgen.pub), before the
 * controller starts; without it the controller must be in its loopback insecure mode.
 *
 * It measures its own CPU (getrusage) and says when it was itself the bottleneck, and
 * the controller's CPU and peak RSS from /proc (--pid). Figures go to stdout as text,
 * and as one JSON object with --json. Exit status: 0 when every unit was restored
 * exactly once and every result acknowledged (burst) or the run completed (steady),
 * 1 otherwise, 2 on usage errors. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>
#include <uv.h>
#include <zmq.h>

#include "fate.h"
#include "fr_batch.h"
#include "fr_err.h"
#include "fr_keys.h"
#include "fr_replay.h"
#include "fr_types.h"
#include "fr_wire.h"

enum mode { MODE_BURST, MODE_STEADY, MODE_CAPACITY };

#define PATH_LEN 24

struct opts {
    const char *agents_ep, *clients_ep;
    int nagents, nports;
    enum mode mode;
    double restore_ms, link_fail, rate, duration_s, timeout_s;
    int progress_ms;
    int progress_single;   /* each attempt its own JobProgress, as agents before batches */
    uint64_t seed;
    int pid;
    int json;
    const char *keys_dir;  /* CURVE: the controller's keys directory, else NULL */
    int make_keys;         /* --make-keys: write and authorize the keys, then exit */
};

struct outbox_entry {
    uint64_t seq;
    uint8_t *data;
    size_t len;
    uint64_t first_ns;
    struct fr_replay replay; /* when it goes out again (ms), as the agent's */
    int is_result;
    Fr__AttemptRef ref; /* a result's attempt, listed in Hellos until acknowledged */
    struct outbox_entry *next;
};

struct lg_agent;

struct lg_unit {
    struct lg_agent *agent;
    int port;
    uint64_t ecid;
    int present;
    uint64_t attach_ns;     /* steady: when it was plugged in */
    int assigned;           /* a first JobAssign was seen */
    int running;
    Fr__AttemptRef ref;     /* the running attempt */
    uint64_t last_attempt;
    int k;                  /* restores started on this unit (fate's k) */
    int restored;           /* successes acknowledged */
    uint64_t end_ns;
    uv_timer_t end;
    struct fate fate;
};

struct lg_agent {
    char id[32];
    void *sock;
    fr_zsock zs;
    uint64_t session;
    int welcomed, hellos; /* hellos: 1 once welcomed */
    int unanswered;       /* Hellos since the last Welcome, for relink() */
    uint64_t epoch;
    uint32_t hb_ms, liveness;
    uint64_t last_heard_ms, last_tick_ms;
    uint64_t next_seq, acked, tick_acked;
    struct outbox_entry *outbox, **outbox_tail;
    uv_timer_t hb;
    struct lg_unit *units;
};

/* Latency samples in microseconds. */
struct samples {
    uint32_t *v;
    size_t n, cap;
};

struct stats {
    uint64_t sent, received, send_fail;
    uint64_t rehellos, relinks, replays, started_twice, restored_twice, refused, assigns;
    uint64_t assigns_again; /* JobAssigns of an attempt it already had (each answered again) */
    uint64_t results_sent, results_acked, restored, failed_results;
    struct samples submit_assign, attach_assign, result_ack;
    uint64_t last_assign_ns;
};

/* A process's CPU so far by thread name (threads of one name summed), in clock ticks. */
#define SNAP_MAX 16
struct cpu_snap {
    int n;
    double rusage_s;             /* loadgen's own: getrusage, all threads */
    struct { char name[24]; uint64_t ticks; } t[SNAP_MAX];
};

/* Steady mode's plugging window: the controller's own count of the agents' messages it
 * read (AGENTS document, loop.agent_messages) and loadgen's agents' sends, taken when
 * the controller answers at the window's start and at its end. */
struct window {
    int asking;               /* 1: the start's answer is due, 2: the end's */
    int have;                 /* answers received (2: both) */
    uint64_t ns[2], ctl_msgs[2], sent[2], received[2];
    uint64_t ask_ns[2], sent_ask[2], send_fail[2]; /* at each question */
    struct cpu_snap ctl[2], self[2]; /* CPU by thread at each question */
};

struct lg {
    struct opts o;
    uv_loop_t *loop;
    void *zctx;
    struct lg_agent *agents;
    struct stats st;
    uint64_t start_ns, submit_ns, done_ns, plug_start_ns;
    uint64_t all_running_ns; /* capacity: when the last unit's attempt started */
    uint64_t next_ecid, plugged;
    int submitted, job_id_known;
    unsigned probe_ticks;
    uint64_t progress_ticks, progress_t0;
    uint64_t job_id;
    void *client_sock;
    fr_zsock client;
    uint64_t client_seq;
    json_t *agents_doc;   /* the controller's AGENTS document, asked for at the end */
    struct window win;    /* steady: the plugging window, for the sustained rates */
    json_t *job_doc;      /* and its STATUS document of the job */
    uv_timer_t progress, plug, deadline, check;
    int finishing;
    struct rusage ru0;
    uint64_t ctl_ticks0;
};

static struct lg G;

/* ---- small helpers ------------------------------------------------------------------ */

static void sample_add(struct samples *s, uint64_t ns)
{
    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 4096;
        uint32_t *v = realloc(s->v, cap * sizeof *v);
        if (!v)
            return;
        s->v = v;
        s->cap = cap;
    }
    uint64_t us = ns / 1000;
    s->v[s->n++] = us > UINT32_MAX ? UINT32_MAX : (uint32_t)us;
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

/* The q-quantile in milliseconds (-1 when there are no samples). */
static double quantile_ms(struct samples *s, double q)
{
    if (s->n == 0)
        return -1;
    qsort(s->v, s->n, sizeof *s->v, cmp_u32);
    size_t i = (size_t)ceil(q * (double)s->n);
    i = i ? i - 1 : 0;
    return s->v[i < s->n ? i : s->n - 1] / 1000.0;
}

static uint64_t now_ms(void)
{
    return uv_hrtime() / 1000000;
}

static const char *port_path(int port, char *buf, size_t len)
{
    snprintf(buf, len, "1-%d.%d", 1 + port / 16, 1 + port % 16);
    return buf;
}

/* ---- sending ------------------------------------------------------------------------- */

static int raw_send(struct lg_agent *a, Fr__Envelope *env)
{
    env->agent_id = a->id;
    env->session = a->session;
    int rc = fr_wire_send(&a->zs, NULL, 0, env);
    if (rc < 0)
        G.st.send_fail++;
    else
        G.st.sent++;
    return rc;
}

static void outbox_transmit(struct lg_agent *a, struct outbox_entry *e)
{
    if (!a->welcomed)
        return;
    if (fr_zsock_send(&a->zs, NULL, 0, e->data, e->len) == 0) {
        G.st.sent++;
        fr_replay_sent(&e->replay, now_ms());
    } else {
        G.st.send_fail++;
    }
}

static void send_reliable(struct lg_agent *a, Fr__Envelope *env, int is_result)
{
    struct outbox_entry *e = calloc(1, sizeof *e);
    if (!e)
        return;
    env->agent_id = a->id;
    env->session = a->session;
    env->seq = e->seq = a->next_seq++;
    e->is_result = is_result;
    if (is_result && env->body_case == FR__ENVELOPE__BODY_JOB_RESULT && env->job_result->ref) {
        e->ref = *env->job_result->ref; /* scalars only: a plain copy */
    }
    if (fr_wire_pack(env, &e->data, &e->len) < 0) {
        free(e);
        return;
    }
    e->first_ns = uv_hrtime();
    *a->outbox_tail = e;
    a->outbox_tail = &e->next;
    outbox_transmit(a, e);
}

static void outbox_ack(struct lg_agent *a, uint64_t ack)
{
    if (ack > a->acked)
        a->acked = ack;
    uint64_t now = uv_hrtime();
    while (a->outbox && a->outbox->seq <= a->acked) {
        struct outbox_entry *e = a->outbox;
        a->outbox = e->next;
        if (e->is_result) {
            G.st.results_acked++;
            sample_add(&G.st.result_ack, now - e->first_ns);
        }
        free(e->data);
        free(e);
    }
    if (!a->outbox)
        a->outbox_tail = &a->outbox;
}

/* As the agent replays (fr_replay.h): all after a Welcome, else what may have been lost. */
static void outbox_replay(struct lg_agent *a, int all)
{
    uint64_t now = now_ms();
    int ack_moved = a->acked != a->tick_acked;
    a->tick_acked = a->acked;
    for (struct outbox_entry *e = a->outbox; e; e = e->next) {
        if (all)
            fr_replay_relink(&e->replay);
        if (fr_replay_due(&e->replay, now, a->hb_ms, ack_moved)) {
            G.st.replays += e->replay.sends > 0 || all;
            outbox_transmit(a, e);
        }
    }
}

static void fill_unit(const struct lg_unit *u, Fr__UnitInfo *ui, char *path, size_t pathlen)
{
    fr__unit_info__init(ui);
    ui->ecid = u->ecid;
    ui->product_type = "iPhone12,1";
    ui->cpid = 0x8030;
    ui->bdid = 4;
    ui->serial = "";
    ui->mode = FR__UNIT_MODE__MODE_RECOVERY;
    ui->port_path = (char *)port_path(u->port, path, pathlen);
}

static void send_hello(struct lg_agent *a)
{
    int np = G.o.nports;
    Fr__PortInfo *pi = calloc((size_t)np, sizeof *pi);
    Fr__PortInfo **pp = calloc((size_t)np, sizeof *pp);
    Fr__UnitInfo *ui = calloc((size_t)np, sizeof *ui);
    Fr__UnitInfo **up = calloc((size_t)np, sizeof *up);
    char (*paths)[PATH_LEN] = calloc((size_t)np, PATH_LEN);
    char (*labels)[PATH_LEN] = calloc((size_t)np, PATH_LEN);
    char (*upaths)[PATH_LEN] = calloc((size_t)np, PATH_LEN);
    size_t nresults = 0; /* as the agent does: attempts whose results await their ack */
    for (struct outbox_entry *e = a->outbox; e; e = e->next)
        nresults += e->ref.attempt_id != 0;
    Fr__AttemptRef **refs = calloc((size_t)np + nresults + 1, sizeof *refs);
    if (!pi || !pp || !ui || !up || !paths || !labels || !upaths || !refs)
        goto out;
    Fr__Hello h = FR__HELLO__INIT;
    h.agent_version = FR_VERSION;
    h.hostname = a->id;
    h.slots = (uint32_t)np;
    for (int i = 0; i < np; i++) {
        fr__port_info__init(&pi[i]);
        pi[i].path = (char *)port_path(i, paths[i], PATH_LEN);
        snprintf(labels[i], PATH_LEN, "P-%03d", i + 1);
        pi[i].label = labels[i];
        pi[i].hub = "hub";
        pi[i].bus = (uint32_t)(1 + i / 16);
        pi[i].depth = 2;
        pp[h.n_ports++] = &pi[i];
        struct lg_unit *u = &a->units[i];
        if (u->present) {
            fill_unit(u, &ui[h.n_units], upaths[h.n_units], PATH_LEN);
            up[h.n_units] = &ui[h.n_units];
            h.n_units++;
        }
        if (u->running)
            refs[h.n_attempts++] = &u->ref;
    }
    for (struct outbox_entry *e = a->outbox; e; e = e->next)
        if (e->ref.attempt_id)
            refs[h.n_attempts++] = &e->ref;
    h.ports = pp;
    h.units = up;
    h.attempts = refs;
    Fr__Envelope env = FR__ENVELOPE__INIT;
    env.seq = a->acked;
    env.body_case = FR__ENVELOPE__BODY_HELLO;
    env.hello = &h;
    if (a->hellos > 0) /* said Hello again after a Welcome */
        G.st.rehellos++;
    raw_send(a, &env);
out:
    free(pi);
    free(pp);
    free(ui);
    free(up);
    free(paths);
    free(labels);
    free(upaths);
    free(refs);
}

static void send_port_event(struct lg_agent *a, struct lg_unit *u, Fr__PortEvent__Kind kind)
{
    char path[PATH_LEN];
    Fr__UnitInfo ui;
    fill_unit(u, &ui, path, sizeof path);
    Fr__PortEvent pe = FR__PORT_EVENT__INIT;
    pe.kind = kind;
    pe.unit = &ui;
    Fr__Envelope env = FR__ENVELOPE__INIT;
    env.body_case = FR__ENVELOPE__BODY_PORT_EVENT;
    env.port_event = &pe;
    send_reliable(a, &env, 0);
}

static void send_batch(Fr__Envelope *env, void *arg)
{
    raw_send(arg, env);
}

static void fill_progress(struct lg_unit *u, Fr__JobProgress *it, uint64_t now)
{
    double total = G.o.restore_ms * 1e6;
    double left = u->end_ns > now ? (double)(u->end_ns - now) : 0;
    float f = (float)(left < total ? 1.0 - left / total : 0.0);
    it->ref = &u->ref;
    it->state = "restoring";
    it->step = f < 1.0f ? (uint32_t)(f * 7.0f) : 7;
    it->fraction = f;
    it->status = "Sending filesystem now...";
}

/* --progress-single: one JobProgress envelope per running attempt, as agents sent them
 * before ProgressBatch (envelope field 16): a message per attempt per round. */
static void send_progress_single(struct lg_agent *a, uint64_t now)
{
    for (int p = 0; p < G.o.nports; p++) {
        struct lg_unit *u = &a->units[p];
        if (!u->running)
            continue;
        Fr__JobProgress it = FR__JOB_PROGRESS__INIT;
        fill_progress(u, &it, now);
        Fr__Envelope env = FR__ENVELOPE__INIT;
        env.body_case = FR__ENVELOPE__BODY_JOB_PROGRESS;
        env.job_progress = &it;
        raw_send(a, &env);
    }
}

/* One agent's progress round, as flashrack-agent sends it (agent/progress.c): every
 * run that changed since the last round (here every running one: its fraction moves),
 * FR_WIRE_MAX_BATCH items to a ProgressBatch. */
static void send_progress_round(struct lg_agent *a, uint64_t now)
{
    if (G.o.progress_single) {
        send_progress_single(a, now);
        return;
    }
    struct fr_batch b;
    fr_batch_begin(&b, send_batch, a);
    for (int p = 0; p < G.o.nports; p++) {
        struct lg_unit *u = &a->units[p];
        if (u->running)
            fill_progress(u, fr_batch_add(&b), now);
    }
    fr_batch_end(&b);
}

/* ---- restores -------------------------------------------------------------------------- */

static void check_done(void);

static void on_restore_end(uv_timer_t *t)
{
    struct lg_unit *u = t->data;
    struct lg_agent *a = u->agent;
    char path[PATH_LEN];
    int ok = u->fate.outcome == FATE_OK;
    Fr__JobResult res = FR__JOB_RESULT__INIT;
    res.ref = &u->ref;
    res.outcome = ok ? FR__OUTCOME__OUTCOME_SUCCESS : FR__OUTCOME__OUTCOME_FAILED;
    res.error_class = (char *)fr_class_name(ok ? FR_CLASS_NONE : FR_CLASS_LINK_LOST);
    res.error_text = ok ? "" : "ERROR: Unable to restore device (4013)";
    res.exit_code = ok ? 0 : 1;
    res.log_path = "";
    res.started_ms = 1;
    res.ended_ms = 2;
    res.port_path = (char *)port_path(u->port, path, sizeof path);
    Fr__Envelope env = FR__ENVELOPE__INIT;
    env.body_case = FR__ENVELOPE__BODY_JOB_RESULT;
    env.job_result = &res;
    u->running = 0;
    G.st.results_sent++;
    if (ok) {
        u->restored++;
        G.st.restored++;
        if (u->restored > 1)
            G.st.restored_twice++;
    } else {
        G.st.failed_results++;
    }
    send_reliable(a, &env, 1);
    if (ok) { /* the operator takes the restored unit away */
        send_port_event(a, u, FR__PORT_EVENT__KIND__DETACH);
        u->present = 0;
    }
    check_done();
}

static void start_restore(struct lg_agent *a, struct lg_unit *u, const Fr__JobAssign *as)
{
    char path[PATH_LEN];
    u->ref = *as->ref;
    u->ref.base.descriptor = &fr__attempt_ref__descriptor;
    u->running = 1;
    u->last_attempt = as->ref->attempt_id;
    u->k++;
    port_path(u->port, path, sizeof path);
    fate_decide(G.o.seed, u->ecid, path, u->k, G.o.link_fail, HEALTH_GOOD, &u->fate);
    /* durations spread +-25 % around the mean, from the same hash */
    double ms = G.o.restore_ms * (0.75 + 0.5 * fate_u01(G.o.seed, u->ecid, path, u->k, 7));
    if (u->fate.outcome == FATE_LINK_LOST)
        ms *= u->fate.fail_at;
    u->end_ns = uv_hrtime() + (uint64_t)(ms * 1e6);
    Fr__JobAccept acc = FR__JOB_ACCEPT__INIT;
    acc.ref = &u->ref;
    acc.accepted = 1;
    acc.reason = "";
    Fr__Envelope env = FR__ENVELOPE__INIT;
    env.body_case = FR__ENVELOPE__BODY_JOB_ACCEPT;
    env.job_accept = &acc;
    send_reliable(a, &env, 0); /* its state goes in the agent's next progress round */
    uv_timer_start(&u->end, on_restore_end, (uint64_t)ms, 0);
}

/* A JobAssign of an attempt it runs or ran (the controller had not read our accept): as
 * the agent answers it (agent/unit_run.c), with an accept again while it runs, or its
 * result again, under a new seq, while that waits for its ack. Neither counts as a result. */
static void answer_again(struct lg_agent *a, const struct lg_unit *u, const Fr__AttemptRef *ref)
{
    G.st.assigns_again++;
    if (u->running) {
        Fr__AttemptRef r = *ref;
        Fr__JobAccept acc = FR__JOB_ACCEPT__INIT;
        acc.ref = &r;
        acc.accepted = 1;
        acc.reason = "already running";
        Fr__Envelope env = FR__ENVELOPE__INIT;
        env.body_case = FR__ENVELOPE__BODY_JOB_ACCEPT;
        env.job_accept = &acc;
        send_reliable(a, &env, 0);
        return;
    }
    for (struct outbox_entry *e = a->outbox; e; e = e->next) {
        Fr__Envelope *env = NULL;
        char err[64];
        if (!e->is_result || e->ref.attempt_id != ref->attempt_id ||
            fr_wire_unpack(e->data, e->len, &env, err, sizeof err) < 0)
            continue;
        char *kept_id = env->agent_id; /* send_reliable points it at ours; this one is freed */
        send_reliable(a, env, 0);
        env->agent_id = kept_id;
        fr_wire_free(&env);
        return;
    }
}

static void on_assign(struct lg_agent *a, const Fr__JobAssign *as)
{
    struct lg_unit *u = NULL;
    for (int i = 0; i < G.o.nports && !u; i++)
        if (a->units[i].ecid == as->ref->ecid)
            u = &a->units[i];
    if (u && as->ref->attempt_id == u->last_attempt) {
        answer_again(a, u, as->ref); /* a re-send that crossed our accept */
        return;
    }
    if (!u || !u->present) {
        G.st.refused++;
        return;
    }
    if (u->running) {
        G.st.started_twice++; /* a second attempt while one runs on this unit */
        return;
    }
    G.st.assigns++;
    uint64_t now = uv_hrtime();
    if (!u->assigned) {
        u->assigned = 1;
        if (G.o.mode != MODE_STEADY && G.submit_ns)
            sample_add(&G.st.submit_assign, now - G.submit_ns);
        if (G.o.mode == MODE_STEADY && u->attach_ns)
            sample_add(&G.st.attach_assign, now - u->attach_ns);
        G.st.last_assign_ns = now;
    }
    start_restore(a, u, as);
}

/* ---- the link ---------------------------------------------------------------------------- */

static void submit(void);

static void on_welcome(struct lg_agent *a, const Fr__Envelope *env)
{
    const Fr__Welcome *w = env->welcome;
    if (w->agent_session && w->agent_session != a->session)
        return;
    a->welcomed = 1;
    a->hellos = 1;
    a->unanswered = 0;
    a->last_tick_ms = 0;
    a->epoch = w->controller_epoch;
    a->hb_ms = w->heartbeat_ms;
    a->liveness = w->liveness;
    uv_timer_set_repeat(&a->hb, a->hb_ms);
    for (size_t i = 0; i < w->n_cancel; i++)
        for (int p = 0; p < G.o.nports; p++)
            if (a->units[p].running && a->units[p].ref.attempt_id == w->cancel[i]->attempt_id)
                uv_timer_stop(&a->units[p].end), a->units[p].running = 0;
    if (a->outbox)
        outbox_replay(a, 1);
    submit();
}

static void on_agent_msg(fr_zsock *zs, zmq_msg_t *parts, size_t nparts, void *arg)
{
    struct lg_agent *a = arg;
    Fr__Envelope *env = NULL;
    char err[256];
    G.st.received++;
    if (nparts != 1 ||
        fr_wire_unpack(zmq_msg_data(&parts[0]), zmq_msg_size(&parts[0]), &env, err, sizeof err) < 0)
        return;
    a->last_heard_ms = now_ms();
    if (env->body_case != FR__ENVELOPE__BODY_WELCOME && a->welcomed && env->session != a->epoch) {
        a->welcomed = 0;
        send_hello(a);
    } else if (env->body_case == FR__ENVELOPE__BODY_WELCOME) {
        outbox_ack(a, env->ack);
        on_welcome(a, env);
    } else if (a->welcomed) {
        outbox_ack(a, env->ack);
        if (env->body_case == FR__ENVELOPE__BODY_JOB_ASSIGN)
            on_assign(a, env->job_assign);
    }
    fr_wire_free(&env);
    check_done();
}

/* Ten Hellos without a Welcome: the link is made again under a new routing id, as the
 * agent does (its old connection may still hold the routing id at the controller). */
static void relink_if_unheard(struct lg_agent *a)
{
    if (++a->unanswered < 10)
        return;
    a->unanswered = 0;
    G.st.relinks++;
    char route[FR_ZSOCK_ROUTE_MAX];
    zmq_disconnect(a->sock, G.o.agents_ep);
    fr_zsock_route_new(a->sock, a->id, route);
    zmq_connect(a->sock, G.o.agents_ep);
}

static void on_hb_timer(uv_timer_t *t)
{
    struct lg_agent *a = t->data;
    uint64_t now = now_ms();
    uint64_t gap = a->last_tick_ms ? now - a->last_tick_ms : 0;
    a->last_tick_ms = now;
    if (gap <= 2ull * a->hb_ms && a->welcomed &&
        now - a->last_heard_ms > (uint64_t)a->hb_ms * a->liveness)
        a->welcomed = 0;
    if (!a->welcomed) {
        relink_if_unheard(a);
        send_hello(a);
        return;
    }
    int running = 0;
    for (int i = 0; i < G.o.nports; i++)
        running += a->units[i].running;
    Fr__Heartbeat hb = FR__HEARTBEAT__INIT;
    hb.running = (uint32_t)running;
    hb.free_slots = (uint32_t)(G.o.nports - running);
    Fr__Envelope env = FR__ENVELOPE__INIT;
    env.body_case = FR__ENVELOPE__BODY_HEARTBEAT;
    env.heartbeat = &hb;
    raw_send(a, &env);
    outbox_replay(a, 0);
}

/* Agents start at different times, so their rounds do not come together: the timer
 * ticks PROGRESS_SLICES times per --progress-ms, each tick taking one slice of them. */
#define PROGRESS_SLICES 10

/* A tick takes every slice due by the clock since the first, not one slice a tick: a
 * repeating timer runs late by up to a millisecond each time, which at 12 ms slices
 * offered 10 % less than asked. At most one round is caught up; beyond that loadgen
 * itself is behind, and its sends fall short of the rate offered (window_loadgen_bottleneck). */
static void on_progress_tick(uv_timer_t *t)
{
    uint64_t now = uv_hrtime(), slice_ns = (uint64_t)G.o.progress_ms * 1000000ull / PROGRESS_SLICES;
    if (!G.progress_t0)
        G.progress_t0 = now;
    uint64_t due = (now - G.progress_t0) / (slice_ns ? slice_ns : 1) + 1;
    if (due - G.progress_ticks > PROGRESS_SLICES)
        G.progress_ticks = due - PROGRESS_SLICES;
    while (G.progress_ticks < due) {
        int slice = (int)(G.progress_ticks++ % PROGRESS_SLICES);
        for (int i = slice; i < G.o.nagents; i += PROGRESS_SLICES)
            if (G.agents[i].welcomed)
                send_progress_round(&G.agents[i], now);
    }
}

/* ---- the operator: submit, plug, query ----------------------------------------------------- */

static void client_send(Fr__Envelope *env)
{
    env->agent_id = "loadgen";
    env->seq = ++G.client_seq;
    if (fr_wire_send(&G.client, NULL, 0, env) < 0)
        fprintf(stderr, "loadgen: cannot send %s to the controller\n",
                fr_wire_body_name(env->body_case));
}

static void query(Fr__QueryRequest__Kind kind);
static void cpu_snap_take(int pid, const char *main_name, struct cpu_snap *s);

static void window_ask(int which)
{
    G.win.asking = which;
    G.win.ask_ns[which - 1] = uv_hrtime();
    G.win.sent_ask[which - 1] = G.st.sent;
    G.win.send_fail[which - 1] = G.st.send_fail;
    if (G.o.pid > 0)
        cpu_snap_take(G.o.pid, "loop", &G.win.ctl[which - 1]);
    cpu_snap_take(getpid(), "main", &G.win.self[which - 1]);
    query(FR__QUERY_REQUEST__KIND__AGENTS);
}

/* An AGENTS answer to a window's question; 0 when it was not one. */
static int window_answer(json_t *doc)
{
    if (!G.win.asking)
        return 0;
    int i = G.win.asking - 1;
    json_t *n = json_object_get(json_object_get(doc, "loop"), "agent_messages");
    G.win.ns[i] = uv_hrtime();
    G.win.ctl_msgs[i] = n ? (uint64_t)json_integer_value(n) : 0;
    G.win.sent[i] = G.st.sent;
    G.win.received[i] = G.st.received;
    G.win.have += n != NULL;
    G.win.asking = 0;
    return 1;
}

static void submit(void)
{
    if (G.submitted)
        return;
    for (int i = 0; i < G.o.nagents; i++)
        if (!G.agents[i].welcomed)
            return;
    G.submitted = 1;
    char **ids = calloc((size_t)(unsigned)G.o.nagents, sizeof *ids);
    char key[64];
    if (!ids)
        return;
    for (int i = 0; i < G.o.nagents; i++)
        ids[i] = G.agents[i].id;
    snprintf(key, sizeof key, "loadgen-%" PRIx64 "-%" PRIx64, G.o.seed, uv_hrtime());
    Fr__SubmitRequest s = FR__SUBMIT_REQUEST__INIT;
    s.idempotency_key = key;
    s.name = "loadgen";
    s.agents = ids;
    s.n_agents = (size_t)G.o.nagents;
    s.firmware = "/srv/flashrack/loadgen.ipsw";
    s.firmware_sha256 = "";
    s.standing = G.o.mode == MODE_STEADY;
    s.same_port_retry = 1; /* a 4013 retries in place: loadgen's operator moves nothing */
    Fr__Envelope env = FR__ENVELOPE__INIT;
    env.body_case = FR__ENVELOPE__BODY_SUBMIT;
    env.submit = &s;
    G.submit_ns = uv_hrtime();
    client_send(&env);
    free(ids);
    if (G.o.mode == MODE_STEADY) {
        G.plug_start_ns = uv_hrtime();
        window_ask(1);
    }
}

static void query(Fr__QueryRequest__Kind kind)
{
    Fr__QueryRequest q = FR__QUERY_REQUEST__INIT;
    q.kind = kind;
    q.job_id = G.job_id;
    q.limit = 1; /* a job's status is read for its totals: one page of one run */
    Fr__Envelope env = FR__ENVELOPE__INIT;
    env.body_case = FR__ENVELOPE__BODY_QUERY;
    env.query = &q;
    client_send(&env);
}

static void finish(void);

static void on_client_msg(fr_zsock *zs, zmq_msg_t *parts, size_t nparts, void *arg)
{
    Fr__Envelope *env = NULL;
    char err[256];
    if (nparts != 1 ||
        fr_wire_unpack(zmq_msg_data(&parts[0]), zmq_msg_size(&parts[0]), &env, err, sizeof err) < 0 ||
        env->body_case != FR__ENVELOPE__BODY_REPLY) {
        fr_wire_free(&env);
        return;
    }
    const Fr__ClientReply *r = env->reply;
    json_t *doc = r->status == 0 ? json_loads(r->json, 0, NULL) : NULL;
    if (r->status != 0)
        fprintf(stderr, "loadgen: the controller refused: %s\n", r->error);
    else if (json_object_get(doc, "job_id")) {
        G.job_id = (uint64_t)json_integer_value(json_object_get(doc, "job_id"));
        G.job_id_known = 1;
    } else if (json_object_get(doc, "jobs")) {
        json_t *job = json_array_get(json_object_get(doc, "jobs"), 0);
        const char *state = json_string_value(json_object_get(job, "state"));
        if (G.finishing || (state && strcmp(state, "running") != 0)) {
            json_decref(G.job_doc);
            G.job_doc = json_incref(job);
            if (!G.finishing) /* a probe found the job over: some units failed for good */
                finish();
        }
    } else if (json_object_get(doc, "agents") && !window_answer(doc)) {
        G.agents_doc = json_incref(doc);
        uv_stop(G.loop);
    }
    json_decref(doc);
    fr_wire_free(&env);
}

/* Steady mode: plugs units into free ports so that rate * elapsed have been plugged. */
static void on_plug_tick(uv_timer_t *t)
{
    if (!G.plug_start_ns || G.finishing)
        return;
    double elapsed = (double)(uv_hrtime() - G.plug_start_ns) / 1e9;
    uint64_t want = (uint64_t)(elapsed * G.o.rate);
    int total = G.o.nagents * G.o.nports;
    for (int scan = 0; G.plugged < want && scan < total; scan++) {
        int slot = (int)((G.plugged + (uint64_t)scan) % (uint64_t)total);
        struct lg_agent *a = &G.agents[slot % G.o.nagents];
        struct lg_unit *u = &a->units[slot / G.o.nagents];
        if (u->present || u->running || !a->welcomed)
            continue;
        u->ecid = G.next_ecid++;
        u->present = 1;
        u->assigned = 0;
        u->restored = 0;
        u->k = 0;
        u->attach_ns = uv_hrtime();
        send_port_event(a, u, FR__PORT_EVENT__KIND__ATTACH);
        G.plugged++;
        scan = -1; /* next slot from the new count */
    }
}

static int all_settled(void)
{
    for (int i = 0; i < G.o.nagents; i++)
        if (G.agents[i].outbox)
            return 0;
    return 1;
}

static void finish(void)
{
    if (G.finishing)
        return;
    G.finishing = 1;
    G.done_ns = uv_hrtime();
    uv_timer_stop(&G.progress);
    uv_timer_stop(&G.plug);
    if (G.job_id_known) /* the controller's own account of the job, for the tests */
        query(FR__QUERY_REQUEST__KIND__STATUS);
    query(FR__QUERY_REQUEST__KIND__AGENTS);
}

static void check_done(void)
{
    if (G.o.mode != MODE_BURST || G.finishing)
        return;
    if (G.st.restored >= (uint64_t)G.o.nagents * (uint64_t)G.o.nports && all_settled())
        finish();
}

static void on_deadline(uv_timer_t *t)
{
    if (!G.finishing)
        finish();
    else
        uv_stop(G.loop); /* the controller did not answer the final query */
}

static int any_running(void)
{
    for (int i = 0; i < G.o.nagents; i++)
        for (int p = 0; p < G.o.nports; p++)
            if (G.agents[i].units[p].running)
                return 1;
    return 0;
}

/* Capacity mode: once every unit runs (restores outlast the window) and SETTLE has passed,
 * the window opens with a question to the controller; --duration s after its answer it
 * closes with another, and the run ends once that is answered (or 5 s on). */
static void capacity_tick(void)
{
    uint64_t now = uv_hrtime(), units = (uint64_t)G.o.nagents * (uint64_t)G.o.nports;
    uint64_t settle_ns = (uint64_t)(G.o.progress_ms > 500 ? 2 * G.o.progress_ms : 1000) * 1000000ull;
    if (!G.all_running_ns) {
        if (G.st.assigns >= units)
            G.all_running_ns = now;
    } else if (!G.plug_start_ns && !G.done_ns) {
        if (now - G.all_running_ns >= settle_ns) {
            G.plug_start_ns = now;
            window_ask(1);
        }
    } else if (G.plug_start_ns) { /* the window closes only after its start was answered */
        if (G.win.have >= 1 && (double)(now - G.win.ns[0]) / 1e9 >= G.o.duration_s) {
            G.plug_start_ns = 0;
            G.done_ns = now;
            window_ask(2);
        }
    } else if (G.win.have == 2 || now - G.done_ns > 5000000000ull) {
        finish();
    }
}

static void on_check_tick(uv_timer_t *t)
{
    if (G.o.mode == MODE_CAPACITY && !G.finishing)
        capacity_tick();
    /* burst mode: a unit that failed for good (its attempts used up) is never restored; once
     * nothing runs and nothing waits for an ack, ask the controller each second whether the
     * job is over */
    if (G.o.mode == MODE_BURST && G.job_id_known && !G.finishing && ++G.probe_ticks % 10 == 0 &&
        all_settled() && !any_running())
        query(FR__QUERY_REQUEST__KIND__STATUS);
    /* steady mode ends after --duration, once the last results are acknowledged or 5 s on */
    if (G.o.mode == MODE_STEADY && G.plug_start_ns && !G.finishing) {
        double el = (double)(uv_hrtime() - G.plug_start_ns) / 1e9;
        if (el >= G.o.duration_s) {
            uv_timer_stop(&G.plug);
            G.plug_start_ns = 0;
            G.done_ns = uv_hrtime();
            window_ask(2);
        }
    }
    if (G.o.mode == MODE_STEADY && !G.plug_start_ns && G.done_ns && !G.finishing &&
        (all_settled() || uv_hrtime() - G.done_ns > 5000000000ull))
        finish();
}

/* ---- figures ---------------------------------------------------------------------------------- */

/* utime + stime, in clock ticks, from a /proc stat file (a process's or a thread's). */
static int stat_ticks(const char *path, uint64_t *ticks)
{
    char buf[2048];
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    char *p = strrchr(buf, ')');
    unsigned long ut = 0, st = 0;
    if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st) != 2)
        return -1;
    *ticks = ut + st;
    return 0;
}

static int read_proc(int pid, uint64_t *ticks, long *hwm_kb)
{
    char path[64], buf[256];
    FILE *f;
    *ticks = 0;
    *hwm_kb = -1;
    snprintf(path, sizeof path, "/proc/%d/stat", pid);
    if (stat_ticks(path, ticks) < 0)
        return -1;
    snprintf(path, sizeof path, "/proc/%d/status", pid);
    if ((f = fopen(path, "r"))) {
        while (fgets(buf, sizeof buf, f))
            if (sscanf(buf, "VmHWM: %ld", hwm_kb) == 1)
                break;
        fclose(f);
    }
    return 0;
}

static double tv_s(struct timeval tv)
{
    return (double)tv.tv_sec + (double)tv.tv_usec / 1e6;
}

/* One thread's name and utime + stime from /proc/PID/task/TID/; -1 when it is gone. */
static int read_thread(int pid, const char *tid, char *name, size_t len, uint64_t *ticks)
{
    char path[96];
    snprintf(path, sizeof path, "/proc/%d/task/%s/comm", pid, tid);
    FILE *f = fopen(path, "r");
    if (!f || !fgets(name, (int)len, f)) {
        if (f)
            fclose(f);
        return -1;
    }
    fclose(f);
    name[strcspn(name, "\n")] = 0;
    snprintf(path, sizeof path, "/proc/%d/task/%s/stat", pid, tid);
    return stat_ticks(path, ticks);
}

/* PID's CPU by thread, its main thread named main_name, the others by their names (the
 * controller's ZeroMQ threads are ZMQbg/..., libuv's pool keeps the process's name). */
static void cpu_snap_take(int pid, const char *main_name, struct cpu_snap *s)
{
    char dir[64], name[24];
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    s->rusage_s = tv_s(ru.ru_utime) + tv_s(ru.ru_stime);
    s->n = 0;
    snprintf(dir, sizeof dir, "/proc/%d/task", pid);
    uv_fs_t req;
    uv_dirent_t ent;
    if (uv_fs_scandir(NULL, &req, dir, 0, NULL) < 0)
        return;
    while (uv_fs_scandir_next(&req, &ent) != UV_EOF) {
        uint64_t ticks;
        if (read_thread(pid, ent.name, name, sizeof name, &ticks) < 0)
            continue;
        if (atoi(ent.name) == pid)
            snprintf(name, sizeof name, "%s", main_name);
        int i = 0;
        while (i < s->n && strcmp(s->t[i].name, name))
            i++;
        if (i == s->n && s->n == SNAP_MAX)
            continue;
        if (i == s->n) {
            snprintf(s->t[i].name, sizeof s->t[i].name, "%s", name);
            s->t[s->n++].ticks = 0;
        }
        s->t[i].ticks += ticks;
    }
    uv_fs_req_cleanup(&req);
}

/* The cores each thread used between two snapshots, as {name: cores}; the most any
 * one used in *most. */
static json_t *cpu_share(const struct cpu_snap *a, const struct cpu_snap *b, double s, double *most)
{
    json_t *o = json_object();
    double tick = (double)sysconf(_SC_CLK_TCK);
    *most = 0;
    for (int i = 0; i < b->n; i++) {
        uint64_t before = 0;
        for (int k = 0; k < a->n; k++)
            if (!strcmp(a->t[k].name, b->t[i].name))
                before = a->t[k].ticks;
        double cores = (double)(b->t[i].ticks - before) / tick / s;
        *most = cores > *most ? cores : *most;
        json_object_set_new(o, b->t[i].name, json_real(cores));
    }
    return o;
}

static void put_i(json_t *j, const char *k, uint64_t v)
{
    json_object_set_new(j, k, json_integer((json_int_t)v));
}

static void put_f(json_t *j, const char *k, double v)
{
    json_object_set_new(j, k, json_real(v));
}

/* Messages the agents sent before a question that the controller had not yet read when
 * it answered it: the backlog, in ZeroMQ's queues and the sockets, at that moment. */
static int64_t backlog(int i)
{
    return (int64_t)G.win.sent_ask[i] - (int64_t)G.win.ctl_msgs[i];
}

/* Capacity mode's window: the rate offered (each running attempt's progress and each
 * agent's heartbeat, per second), the backlog at both ends against one round's messages,
 * whether the controller kept up, and the CPU by thread of both processes over it. */
static void put_capacity(json_t *j, double s)
{
    double units = (double)G.o.nagents * G.o.nports;
    double hb = (double)G.o.nagents * 1000.0 / (G.agents[0].hb_ms ? G.agents[0].hb_ms : 1000);
    double per_round = G.o.progress_ms > 0 ? (G.o.progress_single ? units : G.o.nagents) : 0;
    double offered = (G.o.progress_ms > 0 ? per_round * 1000.0 / G.o.progress_ms : 0) + hb;
    double sent = (double)(G.win.sent[1] - G.win.sent[0]) / s;
    double read = (double)(G.win.ctl_msgs[1] - G.win.ctl_msgs[0]) / s;
    double ctl_most, self_most, ask_s = (double)(G.win.ask_ns[1] - G.win.ask_ns[0]) / 1e9;
    put_f(j, "offered_per_s", offered);
    put_f(j, "round_msgs", per_round);
    json_object_set_new(j, "backlog_start", json_integer(backlog(0)));
    json_object_set_new(j, "backlog_end", json_integer(backlog(1)));
    put_i(j, "window_send_fail", G.win.send_fail[1] - G.win.send_fail[0]);
    int kept_up = read >= 0.95 * sent && backlog(1) < (int64_t)(per_round > 0 ? per_round : 1) &&
                  G.win.send_fail[1] == G.win.send_fail[0];
    json_object_set_new(j, "kept_up", json_boolean(kept_up));
    json_object_set_new(j, "window_controller_cpu", cpu_share(&G.win.ctl[0], &G.win.ctl[1], ask_s, &ctl_most));
    json_object_set_new(j, "window_loadgen_cpu", cpu_share(&G.win.self[0], &G.win.self[1], ask_s, &self_most));
    put_f(j, "window_loadgen_cores", (G.win.self[1].rusage_s - G.win.self[0].rusage_s) / ask_s);
    /* loadgen was the limit when it could not send what it offers, or its loop was busy */
    json_object_set_new(j, "window_loadgen_bottleneck", json_boolean(sent < 0.95 * offered || self_most > 0.9));
}

/* The plugging window's rates: what loadgen's agents sent and received, and what the
 * controller says it read from them, per second. */
static void put_window(json_t *j)
{
    if (G.win.have < 2 || G.win.ns[1] <= G.win.ns[0])
        return;
    double s = (double)(G.win.ns[1] - G.win.ns[0]) / 1e9;
    put_f(j, "window_s", s);
    put_f(j, "window_sent_per_s", (double)(G.win.sent[1] - G.win.sent[0]) / s);
    put_f(j, "window_received_per_s", (double)(G.win.received[1] - G.win.received[0]) / s);
    put_f(j, "window_controller_read_per_s", (double)(G.win.ctl_msgs[1] - G.win.ctl_msgs[0]) / s);
    if (G.o.mode == MODE_CAPACITY)
        put_capacity(j, s);
}

static int report(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    double wall = (double)(uv_hrtime() - G.start_ns) / 1e9;
    double run_s = (double)((G.done_ns ? G.done_ns : uv_hrtime()) - G.submit_ns) / 1e9;
    double self_cpu = tv_s(ru.ru_utime) + tv_s(ru.ru_stime) - tv_s(G.ru0.ru_utime) - tv_s(G.ru0.ru_stime);
    uint64_t ticks = 0;
    long hwm = -1;
    double ctl_cpu = -1;
    if (G.o.pid > 0 && read_proc(G.o.pid, &ticks, &hwm) == 0)
        ctl_cpu = (double)(ticks - G.ctl_ticks0) / (double)sysconf(_SC_CLK_TCK);
    uint64_t units = (uint64_t)G.o.nagents * (uint64_t)G.o.nports;
    json_t *loop = json_object_get(G.agents_doc, "loop");
    double last = G.st.last_assign_ns && G.submit_ns ? (double)(G.st.last_assign_ns - G.submit_ns) / 1e9 : -1;
    json_t *j = json_object();
    static const char *const names[] = { "burst", "steady", "capacity" };
    json_object_set_new(j, "mode", json_string(names[G.o.mode]));
    put_i(j, "units", units);
    put_i(j, "agents", (uint64_t)G.o.nagents);
    put_i(j, "ports", (uint64_t)G.o.nports);
    put_f(j, "submit_last_assign_s", last);
    put_f(j, "submit_assign_p50_ms", quantile_ms(&G.st.submit_assign, 0.50));
    put_f(j, "submit_assign_p99_ms", quantile_ms(&G.st.submit_assign, 0.99));
    put_f(j, "attach_assign_p50_ms", quantile_ms(&G.st.attach_assign, 0.50));
    put_f(j, "attach_assign_p99_ms", quantile_ms(&G.st.attach_assign, 0.99));
    put_f(j, "result_ack_p50_ms", quantile_ms(&G.st.result_ack, 0.50));
    put_f(j, "result_ack_p99_ms", quantile_ms(&G.st.result_ack, 0.99));
    put_f(j, "msgs_per_s", run_s > 0 ? (double)(G.st.sent + G.st.received) / run_s : 0);
    put_f(j, "job_done_s", run_s);
    put_f(j, "wall_s", wall);
    put_f(j, "loadgen_cpu_s", self_cpu);
    put_f(j, "controller_cpu_s", ctl_cpu);
    put_f(j, "controller_peak_rss_mb", hwm >= 0 ? (double)hwm / 1024.0 : -1);
    put_i(j, "restored", G.st.restored);
    put_i(j, "restored_twice", G.st.restored_twice);
    put_i(j, "started_twice", G.st.started_twice);
    put_i(j, "results_sent", G.st.results_sent);
    put_i(j, "results_acked", G.st.results_acked);
    put_i(j, "failed_results", G.st.failed_results);
    put_i(j, "rehellos", G.st.rehellos);
    put_i(j, "relinks", G.st.relinks);
    put_i(j, "replays", G.st.replays);
    put_i(j, "assigns_again", G.st.assigns_again);
    put_i(j, "refused_assigns", G.st.refused);
    put_i(j, "send_fail", G.st.send_fail);
    put_i(j, "plugged", G.plugged);
    put_window(j);
    json_object_set(j, "loop", loop ? loop : json_null());
    put_i(j, "job_id", G.job_id);
    json_object_set(j, "job", G.job_doc ? G.job_doc : json_null());
    int bottleneck = run_s > 0 && self_cpu / run_s > 0.85;
    json_object_set_new(j, "loadgen_bottleneck", json_boolean(bottleneck));
    if (G.o.json) {
        char *s = json_dumps(j, JSON_COMPACT);
        printf("%s\n", s ? s : "{}");
        free(s);
    } else {
        char *s = json_dumps(j, JSON_INDENT(2));
        printf("%s\n", s ? s : "{}");
        free(s);
    }
    if (bottleneck)
        fprintf(stderr, "loadgen: used %.2f s of CPU in %.2f s: it was itself the bottleneck\n",
                self_cpu, run_s);
    json_decref(j);
    int ok = G.st.started_twice == 0 && G.st.restored_twice == 0 &&
             G.st.results_acked == G.st.results_sent;
    if (G.o.mode == MODE_CAPACITY)
        ok = G.st.started_twice == 0 && G.win.have == 2;
    if (G.o.mode == MODE_BURST)
        ok = ok && G.st.restored == units;
    return ok ? 0 : 1;
}

/* ---- CURVE keys ------------------------------------------------------------------------------ */

/* The keys live in the controller's keys directory DIR, as a site's would: each simulated
 * agent's public key authorized in DIR/agents/ID.pub and the client's as an operator in
 * DIR/operators/loadgen.pub (zap.c reads both when it starts), their keypairs in
 * DIR/loadgen/NAME.key for loadgen alone. */
static int key_path(char *buf, size_t len, const char *sub, const char *name, const char *ext)
{
    return (size_t)snprintf(buf, len, "%s/%s/%s%s", G.o.keys_dir, sub, name, ext) < len ? 0 : -1;
}

static int make_key(const char *name, const char *kind, const char *role)
{
    struct fr_key k;
    char pair[1024], pub[1024], err[512];
    if (fr_key_generate(&k) < 0) {
        fprintf(stderr, "loadgen: this libzmq has no CURVE\n");
        return -1;
    }
    snprintf(k.role, sizeof k.role, "%s", role);
    if (key_path(pair, sizeof pair, "loadgen", name, ".key") < 0 ||
        key_path(pub, sizeof pub, kind, name, ".pub") < 0) {
        fprintf(stderr, "loadgen: --keys '%s': the path is too long\n", G.o.keys_dir);
        return -1;
    }
    if (fr_key_write(pair, &k, 1, "loadgen's keypair", 0600, err, sizeof err) < 0 ||
        fr_key_write(pub, &k, 0, "authorized for loadgen", 0644, err, sizeof err) < 0) {
        fprintf(stderr, "loadgen: %s\n", err);
        return -1;
    }
    return 0;
}

static int make_keys(void)
{
    static const char *const sub[] = { "loadgen", "agents", "operators" };
    char dir[1024];
    for (size_t i = 0; i < sizeof sub / sizeof sub[0]; i++) {
        snprintf(dir, sizeof dir, "%s/%s", G.o.keys_dir, sub[i]);
        if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
            fprintf(stderr, "loadgen: cannot make '%s': %s\n", dir, strerror(errno));
            return 2;
        }
    }
    if (make_key("loadgen", "operators", "operator") < 0)
        return 2;
    for (int i = 0; i < G.o.nagents; i++) {
        char id[32];
        snprintf(id, sizeof id, "lg-%04d", i + 1);
        if (make_key(id, "agents", "") < 0)
            return 2;
    }
    return 0;
}

/* Makes s a CURVE client with the keypair of name, of the controller in keys_dir. */
static int curve_socket(void *s, const char *name)
{
    struct fr_key mine, ctl;
    char pair[1024], pub[1024], err[512];
    if (key_path(pair, sizeof pair, "loadgen", name, ".key") < 0 ||
        key_path(pub, sizeof pub, ".", "controller", ".key.pub") < 0)
        return -1;
    if (fr_key_read_pair(pair, &mine, err, sizeof err) < 0 ||
        fr_key_read(pub, &ctl, err, sizeof err) < 0) {
        fprintf(stderr, "loadgen: --keys: %s (write the keys with --make-keys first)\n", err);
        return -1;
    }
    return fr_key_curve_client(s, &mine, ctl.public_key) < 0 ? -1 : 0;
}

/* ---- setup ------------------------------------------------------------------------------------ */

static void *dealer(const char *id, const char *ep)
{
    void *s = zmq_socket(G.zctx, ZMQ_DEALER);
    int one = 1, hwm = 100000;
    if (!s)
        return NULL;
    fr_zsock_set_defaults(s, FR_WIRE_MAX_MSG);
    if (G.o.keys_dir && curve_socket(s, id ? id : "loadgen") < 0) {
        zmq_close(s);
        return NULL;
    }
    char route[FR_ZSOCK_ROUTE_MAX];
    if (id) /* as flashrack-agent connects: see fr_zsock_route_new */
        fr_zsock_route_new(s, id, route);
    zmq_setsockopt(s, ZMQ_IMMEDIATE, &one, sizeof one);
    zmq_setsockopt(s, ZMQ_SNDHWM, &hwm, sizeof hwm);
    zmq_setsockopt(s, ZMQ_RCVHWM, &hwm, sizeof hwm);
    if (zmq_connect(s, ep) < 0) {
        zmq_close(s);
        return NULL;
    }
    return s;
}

static int setup_agents(void)
{
    G.agents = calloc((size_t)G.o.nagents, sizeof *G.agents);
    if (!G.agents)
        return -1;
    G.next_ecid = 0x100000000ull + G.o.seed * 1000003ull;
    for (int i = 0; i < G.o.nagents; i++) {
        struct lg_agent *a = &G.agents[i];
        snprintf(a->id, sizeof a->id, "lg-%04d", i + 1);
        a->sock = dealer(a->id, G.o.agents_ep);
        a->units = calloc((size_t)G.o.nports, sizeof *a->units);
        if (!a->sock || !a->units)
            return -1;
        a->session = ((uint64_t)rand() << 32) ^ (uint64_t)rand() ^ uv_hrtime();
        a->next_seq = 1;
        a->hb_ms = 1000;
        a->liveness = 3;
        a->outbox_tail = &a->outbox;
        for (int p = 0; p < G.o.nports; p++) {
            struct lg_unit *u = &a->units[p];
            u->agent = a;
            u->port = p;
            uv_timer_init(G.loop, &u->end);
            u->end.data = u;
            if (G.o.mode != MODE_STEADY) { /* burst, capacity: every port holds a unit */
                u->ecid = G.next_ecid++;
                u->present = 1;
            }
        }
        fr_zsock_start(&a->zs, G.loop, a->sock, on_agent_msg, a);
        uv_timer_init(G.loop, &a->hb);
        a->hb.data = a;
        /* spread the first Hellos over 200 ms, as agents start at different times */
        uv_timer_start(&a->hb, on_hb_timer, 1 + (uint64_t)(i * 200 / G.o.nagents), 1000);
    }
    return 0;
}

static void usage(FILE *f)
{
    fprintf(f,
            "usage: loadgen [options]\n"
            "  --agents-endpoint EP   the controller's agents ROUTER (tcp://127.0.0.1:7710)\n"
            "  --clients-endpoint EP  its clients ROUTER (tcp://127.0.0.1:7711)\n"
            "  --agents N             simulated agents (10)\n"
            "  --ports P              ports per agent (50)\n"
            "  --mode burst|steady|capacity\n"
            "                         one job for all present units, or a standing job and\n"
            "                         units plugged in at --rate per second, or every unit\n"
            "                         running and a --duration s window of the rate the\n"
            "                         controller reads (burst)\n"
            "  --rate R               steady: units plugged per second across the site (1000)\n"
            "  --duration S           steady: seconds of plugging (10)\n"
            "  --restore-ms MS        mean restore duration (2000)\n"
            "  --progress-ms MS       interval of each agent's progress round, 0 = none (250)\n"
            "  --progress-single      each running attempt sends its own JobProgress every\n"
            "                         --progress-ms, not one ProgressBatch per agent\n"
            "  --link-fail P          probability that a restore loses its link (0)\n"
            "  --seed N               fates and ECIDs (1)\n"
            "  --timeout S            give up after S seconds (300)\n"
            "  --pid PID              the controller, for its CPU and peak RSS\n"
            "  --keys DIR             CURVE, with the keys --make-keys wrote into the\n"
            "                         controller's keys directory DIR (its controller.key.pub)\n"
            "  --make-keys            write a keypair per agent and one for the client into\n"
            "                         --keys DIR, authorized (agents/, operators/), and exit\n"
            "  --json                 one JSON line instead of indented JSON\n");
}

static int parse(int argc, char **argv, struct opts *o)
{
    static const struct option lo[] = {
        { "agents-endpoint", 1, 0, 'A' }, { "clients-endpoint", 1, 0, 'C' },
        { "agents", 1, 0, 'n' }, { "ports", 1, 0, 'p' }, { "mode", 1, 0, 'm' },
        { "rate", 1, 0, 'r' }, { "duration", 1, 0, 'd' }, { "restore-ms", 1, 0, 'R' },
        { "progress-ms", 1, 0, 'g' }, { "link-fail", 1, 0, 'l' }, { "seed", 1, 0, 's' },
        { "timeout", 1, 0, 't' }, { "pid", 1, 0, 'P' }, { "json", 0, 0, 'j' },
        { "keys", 1, 0, 'k' }, { "make-keys", 0, 0, 'K' }, { "progress-single", 0, 0, 'S' },
        { "help", 0, 0, 'h' }, { 0, 0, 0, 0 } };
    *o = (struct opts){ "tcp://127.0.0.1:7710", "tcp://127.0.0.1:7711", 10, 50, MODE_BURST,
                        2000, 0, 1000, 10, 300, 250, 0, 1, 0, 0, NULL, 0 };
    int ch;
    while ((ch = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
        switch (ch) {
        case 'A': o->agents_ep = optarg; break;
        case 'C': o->clients_ep = optarg; break;
        case 'n': o->nagents = atoi(optarg); break;
        case 'p': o->nports = atoi(optarg); break;
        case 'm':
            if (!strcmp(optarg, "burst"))
                o->mode = MODE_BURST;
            else if (!strcmp(optarg, "steady"))
                o->mode = MODE_STEADY;
            else if (!strcmp(optarg, "capacity"))
                o->mode = MODE_CAPACITY;
            else {
                fprintf(stderr, "loadgen: --mode: expected burst, steady or capacity, got '%s'\n", optarg);
                return 2;
            }
            break;
        case 'r': o->rate = atof(optarg); break;
        case 'd': o->duration_s = atof(optarg); break;
        case 'R': o->restore_ms = atof(optarg); break;
        case 'g': o->progress_ms = atoi(optarg); break;
        case 'l': o->link_fail = atof(optarg); break;
        case 's': o->seed = strtoull(optarg, NULL, 10); break;
        case 't': o->timeout_s = atof(optarg); break;
        case 'P': o->pid = atoi(optarg); break;
        case 'j': o->json = 1; break;
        case 'k': o->keys_dir = optarg; break;
        case 'K': o->make_keys = 1; break;
        case 'S': o->progress_single = 1; break;
        case 'h': usage(stdout); return -1;
        default: usage(stderr); return 2;
        }
    }
    if (o->nagents < 1 || o->nagents > FR_WIRE_MAX_LIST || o->nports < 1 || o->nports > 1024) {
        fprintf(stderr, "loadgen: --agents: 1..%d, --ports: 1..1024\n", FR_WIRE_MAX_LIST);
        return 2;
    }
    if (o->make_keys && !o->keys_dir) {
        fprintf(stderr, "loadgen: --make-keys needs --keys DIR\n");
        return 2;
    }
    if (o->restore_ms < 1 || o->rate <= 0 || o->link_fail < 0 || o->link_fail > 1 ||
        o->progress_ms < 0 || o->timeout_s <= 0) {
        fprintf(stderr, "loadgen: --restore-ms >= 1, --rate > 0, --link-fail 0..1, "
                        "--progress-ms >= 0, --timeout > 0\n");
        return 2;
    }
    return 0;
}

int main(int argc, char **argv)
{
    int rc = parse(argc, argv, &G.o);
    if (rc)
        return rc < 0 ? 0 : rc;
    if (G.o.make_keys)
        return make_keys();
    srand((unsigned)(G.o.seed * 7919 + (uint64_t)getpid()));
    G.loop = uv_default_loop();
    G.zctx = zmq_ctx_new();
    /* one DEALER per agent and one client: ZeroMQ's default of 1,023 sockets a context
     * stops at 1,022 agents (51,100 units at 50 ports) */
    if (zmq_ctx_set(G.zctx, ZMQ_MAX_SOCKETS, G.o.nagents + 16) < 0) {
        fprintf(stderr, "loadgen: cannot allow %d sockets: %s\n", G.o.nagents + 16, zmq_strerror(errno));
        return 2;
    }
    G.start_ns = uv_hrtime();
    getrusage(RUSAGE_SELF, &G.ru0);
    long hwm0;
    if (G.o.pid > 0 && read_proc(G.o.pid, &G.ctl_ticks0, &hwm0) < 0) {
        fprintf(stderr, "loadgen: --pid %d: no such process\n", G.o.pid);
        return 2;
    }
    G.client_sock = dealer(NULL, G.o.clients_ep);
    if (!G.client_sock || setup_agents() < 0) {
        fprintf(stderr, "loadgen: cannot set up the sockets\n");
        return 2;
    }
    fr_zsock_start(&G.client, G.loop, G.client_sock, on_client_msg, NULL);
    uv_timer_init(G.loop, &G.progress);
    uv_timer_init(G.loop, &G.plug);
    uv_timer_init(G.loop, &G.deadline);
    uv_timer_init(G.loop, &G.check);
    uint64_t slice_ms = (uint64_t)G.o.progress_ms / PROGRESS_SLICES; /* on_progress_tick keeps the clock */
    if (G.o.progress_ms > 0)
        uv_timer_start(&G.progress, on_progress_tick, slice_ms ? slice_ms : 1, slice_ms ? slice_ms : 1);
    if (G.o.mode == MODE_STEADY)
        uv_timer_start(&G.plug, on_plug_tick, 10, 10);
    uv_timer_start(&G.check, on_check_tick, 100, 100);
    uv_timer_start(&G.deadline, on_deadline, (uint64_t)(G.o.timeout_s * 1000), 2000);
    uv_run(G.loop, UV_RUN_DEFAULT);
    rc = report();
    /* sockets close with the context (linger 0); the loop is not run again */
    for (int i = 0; i < G.o.nagents; i++)
        zmq_close(G.agents[i].sock);
    zmq_close(G.client_sock);
    zmq_ctx_term(G.zctx);
    json_decref(G.agents_doc);
    json_decref(G.job_doc);
    return rc;
}
