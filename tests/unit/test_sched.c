/* test_sched — the scheduler's passes against a real store file and real ZeroMQ: a
 * controller with NAGENTS agents online (each a DEALER on an inproc ROUTER, so the
 * JobAssigns a pass sends are read back), one job for all their units, and passes run
 * one at a time under a CPU clock the test controls. What it checks:
 * - a chunk of claims the store refuses is claimed again one by one: an SQLite call
 *   failed at every point of a pass loses no claim, starts none twice, and sends a
 *   JobAssign only for an attempt that was committed;
 * - a pass whose clock says its budget is spent claims MIN_CLAIMS (one chunk) and
 *   continues on the next turn; under a clock that does not move it claims them all;
 * - while claims are left the progress flush is held (a report waits), and the pass
 *   that leaves none starts it again and the report is written;
 * - a pass whose read of the candidates fails claims none of those it read, sends
 *   nothing and runs again later; one whose transaction is rolled back after it made a
 *   selector job's runs makes them again on that next pass;
 * - a drain's turn of agents' messages (accepts, port events; each in a savepoint), an
 *   SQLite call failed at every point of it: what is committed is exactly what is
 *   acknowledged, and the agents' replay completes it.
 * - the heartbeat tick goes a slice of agents per loop turn while its budget is spent,
 *   then its re-sends of unaccepted JobAssigns an agent's at a time, every agent getting
 *   one heartbeat per tick and its JobAssigns once, a tick due before the last is through
 *   finishing it first, and one slice when the clock does not move.
 * Counts and states only, never times. Built against the store with FR_STORE_FAULTS. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sqlite3.h>

#include "ctl.h"
#include "fr_err.h"
#include "fr_wire.h"
#include "sql_probe.h"

#define NAGENTS 4
#define MAX_PORTS 64
#define CHUNK 64 /* scheduler.c's CLAIM_CHUNK and MIN_CLAIMS */

static char dbpath[64];

/* The CPU clock of the passes: still, or a second further at every look. */
static uint64_t clock_ns;
static int clock_runs;
static uint64_t test_clock(void)
{
    uint64_t v = clock_ns;
    if (clock_runs)
        clock_ns += 1000000000ull;
    return v;
}

struct site {
    struct controller c;
    uv_loop_t loop;
    void *zctx, *router, *dealer[NAGENTS];
    struct agent_state agent[NAGENTS];
    uint64_t job;
    int assigns;                 /* JobAssigns read back so far */
    Fr__AttemptRef first;        /* the first one's attempt */
};

static void remove_store(void)
{
    sql_probe_remove(dbpath);
}

static int64_t count_sql(const char *q)
{
    return sql_probe(dbpath, q);
}

static void ignore_msg(fr_zsock *zs, zmq_msg_t *parts, size_t n, void *arg)
{
    (void)zs, (void)parts, (void)n, (void)arg;
}

/* Agent i's Hello: nunits units on as many ports, ECIDs from 0xE000 + 1000 * i. */
static void hello(struct site *st, int i, int nunits)
{
    Fr__PortInfo ports[MAX_PORTS], *pp[MAX_PORTS];
    Fr__UnitInfo units[MAX_PORTS], *up[MAX_PORTS];
    char paths[MAX_PORTS][16];
    for (int k = 0; k < nunits; k++) {
        fr__port_info__init(&ports[k]);
        snprintf(paths[k], sizeof paths[k], "1-1.%d", k + 1);
        ports[k].path = ports[k].label = paths[k];
        pp[k] = &ports[k];
        fr__unit_info__init(&units[k]);
        units[k].ecid = 0xE000 + 1000 * (uint64_t)i + (uint64_t)k;
        units[k].product_type = "iPhone12,1";
        units[k].mode = 2;
        units[k].port_path = paths[k];
        up[k] = &units[k];
    }
    Fr__Hello h = FR__HELLO__INIT;
    h.hostname = st->agent[i].id;
    h.slots = (uint32_t)nunits;
    h.ports = pp;
    h.n_ports = h.n_units = (size_t)nunits;
    h.units = up;
    assert_int_equal(store_agent_hello(st->c.store, st->agent[i].id, &h, 1000, NULL), 0);
}

/* The agent's DEALER, known to the ROUTER by its routing id before any pass sends. */
static void connect_agent(struct site *st, int i)
{
    char hi[8];
    st->dealer[i] = zmq_socket(st->zctx, ZMQ_DEALER);
    zmq_setsockopt(st->dealer[i], ZMQ_ROUTING_ID, st->agent[i].id, strlen(st->agent[i].id));
    assert_int_equal(zmq_connect(st->dealer[i], "inproc://sched-agents"), 0);
    assert_int_equal(zmq_send(st->dealer[i], "hi", 2, 0), 2);
    assert_true(zmq_recv(st->router, hi, sizeof hi, 0) > 0); /* its routing id */
    assert_int_equal(zmq_recv(st->router, hi, sizeof hi, 0), 2);
}

/* A controller on a fresh store with nagents agents of nunits units each, online with
 * a slot per unit, and one job for all of those units: naming them, or (selector) naming
 * agent0, its runs made by the passes. */
static void site_open_job(struct site *st, int nagents, int nunits, int selector)
{
    memset(st, 0, sizeof *st);
    remove_store();
    struct controller *c = &st->c;
    char err[256];
    assert_int_equal(store_open(dbpath, &c->store, err, sizeof err), 0);
    assert_int_equal(store_bump_epoch(c->store), 0);
    assert_int_equal(uv_loop_init(&st->loop), 0);
    c->loop = &st->loop;
    c->cpu_ns = test_clock;
    st->zctx = zmq_ctx_new();
    st->router = zmq_socket(st->zctx, ZMQ_ROUTER);
    assert_int_equal(zmq_bind(st->router, "inproc://sched-agents"), 0);
    uint64_t ecids[NAGENTS * MAX_PORTS];
    size_t n = 0;
    for (int i = 0; i < nagents; i++) {
        struct agent_state *a = &st->agent[i];
        snprintf(a->id, sizeof a->id, "agent%d", i);
        snprintf(a->route, sizeof a->route, "agent%d", i);
        a->online = 1;
        a->last_seen = uv_now(c->loop);
        a->session = 77;
        a->slots = (uint32_t)nunits;
        agents_insert(c, a);
        connect_agent(st, i);
        hello(st, i, nunits);
        for (int k = 0; k < nunits; k++)
            ecids[n++] = 0xE000 + 1000 * (uint64_t)i + (uint64_t)k;
    }
    assert_int_equal(fr_zsock_start(&c->agents_zs, c->loop, st->router, ignore_msg, c), 0);
    uv_timer_init(c->loop, &c->sched);
    uv_timer_init(c->loop, &c->progress_flush);
    uv_timer_init(c->loop, &c->heartbeat);
    uv_timer_init(c->loop, &c->tick_more);
    c->sched.data = c->progress_flush.data = c->heartbeat.data = c->tick_more.data = c;
    c->cfg.heartbeat_ms = 1000;
    c->cfg.liveness = 3;
    uv_timer_start(&c->progress_flush, agents_on_progress_flush, PROGRESS_FLUSH_MS, PROGRESS_FLUSH_MS);
    c->progress = calloc(PROGRESS_MAX, sizeof *c->progress);
    c->progress_slot = calloc(PROGRESS_SLOTS, sizeof *c->progress_slot);
    assert_non_null(c->progress);
    assert_non_null(c->progress_slot);
    char *agent0[] = { "agent0" };
    struct job_spec spec = { .key = "k", .name = "t", .firmware = "/x.ipsw", .sha256 = "",
                             .ecids = ecids, .necids = n, .erase = 1 };
    if (selector)
        spec = (struct job_spec){ .key = "k", .name = "t", .firmware = "/x.ipsw", .sha256 = "",
                                  .agents = agent0, .nagents = 1, .erase = 1 };
    int created;
    assert_int_equal(store_job_submit(c->store, &spec, 2000, &st->job, &created, err, sizeof err), 0);
    if (selector)
        sched_expand_all(c); /* as a submit does */
}

static void site_open(struct site *st, int nagents, int nunits)
{
    site_open_job(st, nagents, nunits, 0);
}

static void site_close(struct site *st)
{
    struct controller *c = &st->c;
    c->stopping = 1;
    uv_close((uv_handle_t *)&c->sched, NULL);
    uv_close((uv_handle_t *)&c->progress_flush, NULL);
    uv_close((uv_handle_t *)&c->heartbeat, NULL);
    uv_close((uv_handle_t *)&c->tick_more, NULL);
    fr_zsock_close(&c->agents_zs, NULL);
    assert_int_equal(uv_run(c->loop, UV_RUN_DEFAULT), 0);
    assert_int_equal(uv_loop_close(c->loop), 0);
    turn_free(c);
    sched_free(c);
    free(c->progress);
    free(c->progress_slot);
    assert_int_equal(store_close(&c->store), 0);
    for (int i = 0; i < NAGENTS; i++)
        if (st->dealer[i])
            zmq_close(st->dealer[i]);
    zmq_close(st->router);
    zmq_ctx_term(st->zctx);
    remove_store();
}

/* Calls on(st, i, env, arg) for each message agent i got since the last read; returns
 * how many on counted (its return: 1 or 0). */
static int read_msgs(struct site *st, int (*on)(struct site *, int, const Fr__Envelope *, void *),
                     void *arg)
{
    int got = 0;
    for (int i = 0; i < NAGENTS; i++) {
        uint8_t buf[4096];
        int len;
        while (st->dealer[i] && (len = zmq_recv(st->dealer[i], buf, sizeof buf, ZMQ_DONTWAIT)) > 0) {
            Fr__Envelope *env = NULL;
            char err[128];
            assert_int_equal(fr_wire_unpack(buf, (size_t)len, &env, err, sizeof err), 0);
            got += on(st, i, env, arg);
            fr__envelope__free_unpacked(env, NULL);
        }
    }
    return got;
}

static int on_assign(struct site *st, int i, const Fr__Envelope *env, void *arg)
{
    int *got = arg;
    (void)i;
    if (env->body_case != FR__ENVELOPE__BODY_JOB_ASSIGN)
        return 0;
    if (st->assigns + (*got)++ == 0) {
        st->first = *env->job_assign->ref;
        st->first.base.unknown_fields = NULL;
    }
    return 1;
}

/* Reads every JobAssign the agents got since the last call; returns how many. */
static int read_assigns(struct site *st)
{
    int got = 0;
    read_msgs(st, on_assign, &got);
    st->assigns += got;
    return got;
}

static int64_t attempts(void)
{
    return count_sql("SELECT COUNT(*) FROM attempts");
}

/* ---- a failed chunk, claimed again one by one ----------------------------------- */

#define FEW 3

static int ncand;
static int on_cand(void *arg, const struct sched_candidate *cd)
{
    struct sched_candidate *out = arg;
    out[ncand++] = *cd;
    return ncand == FEW;
}

/* The SQLite calls of one chunk of FEW claims, as a pass makes it. */
static long calls_of_a_chunk(void)
{
    struct site st;
    site_open(&st, 1, FEW);
    struct sched_candidate cand[FEW];
    struct claim cl[FEW];
    memset(cl, 0, sizeof cl);
    size_t n = 0;
    ncand = 0;
    assert_int_equal(store_sched_candidates(st.c.store, on_cand, cand), 0);
    assert_int_equal(ncand, FEW);
    for (n = 0; n < FEW; n++)
        cl[n] = (struct claim){ .c = &cand[n], .firmware = "/x.ipsw", .sha = "" };
    assert_int_equal(store_begin(st.c.store), 0);
    store_fault_arm(st.c.store, 0, 0);
    assert_int_equal(store_claim_attempts(st.c.store, cl, FEW, 3000), 0);
    long calls = store_fault_calls(st.c.store);
    store_rollback(st.c.store);
    site_close(&st);
    return calls;
}

/* For every N, the Nth SQLite call of a pass fails: after it, what was sent is what was
 * committed, and a second pass completes the job's claims, each unit's once. A failure
 * inside the chunk's claim leaves the pass claiming all FEW, one by one. */
static void a_failed_chunk_is_claimed_one_by_one(void **state)
{
    (void)state;
    long chunk = calls_of_a_chunk();
    assert_true(chunk >= 3);
    long calls = 0, rescued = 0;
    for (long n = 1;; n++) {
        struct site st;
        site_open(&st, 1, FEW);
        clock_ns = 0;
        clock_runs = 0;
        store_fault_arm(st.c.store, n, SQLITE_IOERR);
        sched_on_timer(&st.c.sched);
        long made = store_fault_calls(st.c.store);
        store_fault_arm(st.c.store, 0, 0);
        int sent = read_assigns(&st);
        assert_int_equal(sent, attempts()); /* a JobAssign for each committed attempt only */
        if (made >= n && sent == FEW)
            rescued++;
        if (made < n) /* the pass made fewer calls than n: every point was tried */
            calls = made;
        sched_on_timer(&st.c.sched); /* no fault: the rest */
        read_assigns(&st);
        assert_int_equal(attempts(), FEW);
        assert_int_equal(st.assigns, FEW);
        assert_int_equal(count_sql("SELECT COUNT(DISTINCT ecid) FROM attempts"), FEW);
        site_close(&st);
        if (calls)
            break;
    }
    assert_true(calls > chunk);
    /* every call of the chunk's but its SAVEPOINT's prepare and step (a failure there
     * fails the turn) */
    assert_true(rescued >= chunk - 2);
}

/* ---- the pass budget, and the progress flush held behind it --------------------- */

#define MANY 50 /* per agent: 200 units, four chunks */

static int64_t claimed_runs(void)
{
    return count_sql("SELECT COUNT(*) FROM unit_runs WHERE state <> 'waiting_unit'");
}

static void a_spent_budget_claims_one_chunk_a_pass(void **state)
{
    (void)state;
    struct site st;
    site_open(&st, NAGENTS, MANY);
    clock_ns = 0;
    clock_runs = 1; /* every look at the clock: a second later, the budget spent */
    int passes = 0;
    for (int64_t want = CHUNK; want < NAGENTS * MANY; want += CHUNK) {
        sched_on_timer(&st.c.sched);
        passes++;
        assert_int_equal(attempts(), want);
        assert_int_equal(read_assigns(&st), CHUNK);
        assert_int_equal(st.c.sched_continued, 1); /* claims left: the next turn goes on */
        assert_true(uv_is_active((uv_handle_t *)&st.c.sched));
    }
    sched_on_timer(&st.c.sched);
    passes++;
    assert_int_equal(attempts(), NAGENTS * MANY);
    assert_int_equal(claimed_runs(), NAGENTS * MANY);
    assert_int_equal(read_assigns(&st), NAGENTS * MANY - (passes - 1) * CHUNK);
    assert_int_equal(st.c.sched_continued, 0);
    assert_int_equal(passes, (NAGENTS * MANY + CHUNK - 1) / CHUNK);
    assert_true(st.c.pass_work.runs == (uint64_t)passes);
    assert_true(st.c.pass_work.items == NAGENTS * MANY);
    site_close(&st);
}

static void a_still_clock_claims_all_in_one_pass(void **state)
{
    (void)state;
    struct site st;
    site_open(&st, NAGENTS, MANY);
    clock_ns = 0;
    clock_runs = 0;
    sched_on_timer(&st.c.sched);
    assert_int_equal(attempts(), NAGENTS * MANY);
    assert_int_equal(read_assigns(&st), NAGENTS * MANY);
    assert_int_equal(st.c.sched_continued, 0);
    site_close(&st);
}

/* A report for the first claimed attempt, queued as agents.c queues one. */
static void queue_report(struct site *st, const char *status)
{
    struct controller *c = &st->c;
    struct pending_progress *pp = &c->progress[0];
    memset(pp, 0, sizeof *pp);
    pp->ref = st->first;
    pp->agent = agents_find(c, "agent0");
    snprintf(pp->state, sizeof pp->state, "restoring");
    pp->step = 3;
    snprintf(pp->status, sizeof pp->status, "%s", status);
    c->nprogress = 1;
}

static int64_t reports_written(void)
{
    return count_sql("SELECT COUNT(*) FROM unit_runs WHERE status = 'held report'");
}

static void the_progress_flush_waits_for_the_claims(void **state)
{
    (void)state;
    struct site st;
    site_open(&st, NAGENTS, MANY);
    clock_ns = 0;
    clock_runs = 1;
    sched_on_timer(&st.c.sched);
    assert_int_equal(read_assigns(&st), CHUNK);
    assert_int_equal(st.first.ecid >= 0xE000, 1);
    assert_int_equal(st.c.progress_held, 1);
    assert_false(uv_is_active((uv_handle_t *)&st.c.progress_flush));
    queue_report(&st, "held report");
    /* the passes that still claim: the flush stays off, the report waits */
    while (attempts() < NAGENTS * MANY - CHUNK) {
        sched_on_timer(&st.c.sched);
        assert_int_equal(st.c.progress_held, 1);
        assert_false(uv_is_active((uv_handle_t *)&st.c.progress_flush));
    }
    assert_int_equal(reports_written(), 0);
    assert_int_equal(st.c.nprogress, 1);
    sched_on_timer(&st.c.sched); /* the last claims */
    assert_int_equal(attempts(), NAGENTS * MANY);
    assert_int_equal(st.c.progress_held, 0);
    assert_true(uv_is_active((uv_handle_t *)&st.c.progress_flush));
    uv_timer_stop(&st.c.sched);
    assert_int_equal(uv_run(st.c.loop, UV_RUN_NOWAIT), 1); /* the flush's timer, due now */
    assert_int_equal(reports_written(), 1);
    assert_int_equal(st.c.nprogress, 0);
    assert_true(st.c.flush_work.items == 1);
    site_close(&st);
}

/* ---- a pass whose store fails ----------------------------------------------------- */

#define CANDIDATES_SQL "SELECT r.job, r.ecid, u.agent, u.port, u.product_type FROM unit_runs r"

/* The candidates' read fails after it read one: the pass claims none (not even that one:
 * its transaction cannot commit), sends nothing, and runs again later. */
static void a_failed_candidate_read_claims_nothing(void **state)
{
    (void)state;
    struct site st;
    site_open(&st, 1, FEW);
    clock_ns = 0;
    clock_runs = 0;
    store_fault_arm_sql(st.c.store, CANDIDATES_SQL, 2, SQLITE_IOERR);
    sched_on_timer(&st.c.sched);
    store_fault_arm_sql(st.c.store, NULL, 0, 0);
    assert_int_equal(attempts(), 0);
    assert_int_equal(read_assigns(&st), 0);
    assert_true(st.c.pass_work.items == 0); /* no claim was tried */
    assert_int_equal(st.c.turn.failed, 1);
    assert_false(store_in_txn(st.c.store));
    assert_int_equal(st.c.sched_continued, 0);
    assert_true(uv_is_active((uv_handle_t *)&st.c.sched)); /* it runs again */
    assert_int_equal(st.c.progress_held, 0);
    uv_timer_stop(&st.c.sched);
    sched_on_timer(&st.c.sched); /* that next pass */
    assert_int_equal(attempts(), FEW);
    assert_int_equal(read_assigns(&st), FEW);
    site_close(&st);
}

/* A selector job's runs, made by a pass whose transaction then fails: the next pass looks
 * at those units again and makes them. */
static void a_rolled_back_pass_expands_again(void **state)
{
    (void)state;
    struct site st;
    site_open_job(&st, 1, FEW, 1);
    clock_ns = 0;
    clock_runs = 0;
    store_fault_arm_sql(st.c.store, CANDIDATES_SQL, 1, SQLITE_IOERR);
    sched_on_timer(&st.c.sched);
    store_fault_arm_sql(st.c.store, NULL, 0, 0);
    assert_int_equal(count_sql("SELECT COUNT(*) FROM unit_runs"), 0);
    assert_int_equal(read_assigns(&st), 0);
    assert_true(uv_is_active((uv_handle_t *)&st.c.sched));
    uv_timer_stop(&st.c.sched);
    sched_on_timer(&st.c.sched);
    assert_int_equal(count_sql("SELECT COUNT(*) FROM unit_runs"), FEW);
    assert_int_equal(attempts(), FEW);
    assert_int_equal(read_assigns(&st), FEW);
    site_close(&st);
}

/* ---- a drain's turn, a fault at each of its SQLite calls ------------------------------ */

#define TURN_AGENTS 2

struct drain {
    Fr__AttemptRef ref[TURN_AGENTS];  /* each agent's attempt (one unit each) */
    uint64_t acked[TURN_AGENTS];      /* the highest ack each agent got */
};

/* Each agent's claimed attempt, as its JobAssign named it. */
static void read_refs(struct drain *d)
{
    sqlite3 *db;
    sqlite3_stmt *q;
    assert_int_equal(sqlite3_open(dbpath, &db), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(db, "SELECT id, job, epoch, ecid, token_hi, token_lo FROM attempts"
                                        " WHERE agent = ?", -1, &q, NULL), SQLITE_OK);
    for (int i = 0; i < TURN_AGENTS; i++) {
        char id[16];
        snprintf(id, sizeof id, "agent%d", i);
        sqlite3_bind_text(q, 1, id, -1, SQLITE_TRANSIENT);
        assert_int_equal(sqlite3_step(q), SQLITE_ROW);
        fr__attempt_ref__init(&d->ref[i]);
        d->ref[i].attempt_id = (uint64_t)sqlite3_column_int64(q, 0);
        d->ref[i].job_id = (uint64_t)sqlite3_column_int64(q, 1);
        d->ref[i].epoch = (uint64_t)sqlite3_column_int64(q, 2);
        d->ref[i].ecid = (uint64_t)sqlite3_column_int64(q, 3);
        d->ref[i].token_hi = (uint64_t)sqlite3_column_int64(q, 4);
        d->ref[i].token_lo = (uint64_t)sqlite3_column_int64(q, 5);
        sqlite3_reset(q);
    }
    sqlite3_finalize(q);
    sqlite3_close(db);
}

/* Agent i's reliable message seq: 1 its accept, 2 its unit in another mode (recovery). */
static void agent_says(struct site *st, struct drain *d, int i, uint64_t seq)
{
    Fr__Envelope env = FR__ENVELOPE__INIT;
    Fr__JobAccept acc = FR__JOB_ACCEPT__INIT;
    Fr__PortEvent ev = FR__PORT_EVENT__INIT;
    Fr__UnitInfo u = FR__UNIT_INFO__INIT;
    env.agent_id = st->agent[i].id;
    env.session = st->agent[i].session;
    env.seq = seq;
    if (seq == 1) {
        acc.ref = &d->ref[i];
        acc.accepted = 1;
        env.body_case = FR__ENVELOPE__BODY_JOB_ACCEPT;
        env.job_accept = &acc;
    } else {
        u.ecid = d->ref[i].ecid;
        u.product_type = "iPhone12,1";
        u.mode = 1;
        u.port_path = "1-1.1";
        ev.kind = FR__PORT_EVENT__KIND__MODE;
        ev.unit = &u;
        env.body_case = FR__ENVELOPE__BODY_PORT_EVENT;
        env.port_event = &ev;
    }
    uint8_t *buf;
    size_t len;
    assert_int_equal(fr_wire_pack(&env, &buf, &len), 0);
    zmq_msg_t parts[2];
    zmq_msg_init_size(&parts[0], strlen(st->agent[i].id));
    memcpy(zmq_msg_data(&parts[0]), st->agent[i].id, strlen(st->agent[i].id));
    zmq_msg_init_size(&parts[1], len);
    memcpy(zmq_msg_data(&parts[1]), buf, len);
    free(buf);
    agents_on_msg(&st->c.agents_zs, parts, 2, &st->c);
    zmq_msg_close(&parts[0]);
    zmq_msg_close(&parts[1]);
}

/* One drain: the agents' messages interleaved, then the turn's end. */
static void drain(struct site *st, struct drain *d)
{
    agent_says(st, d, 1, 1);
    agent_says(st, d, 0, 1);
    agent_says(st, d, 0, 2);
    agent_says(st, d, 1, 2);
    agents_on_drained(&st->c.agents_zs, &st->c);
}

/* The acks the agents got since the last call: the highest of each. */
static void read_acks(struct site *st, struct drain *d)
{
    for (int i = 0; i < TURN_AGENTS; i++) {
        uint8_t buf[4096];
        int len;
        while ((len = zmq_recv(st->dealer[i], buf, sizeof buf, ZMQ_DONTWAIT)) > 0) {
            Fr__Envelope *env = NULL;
            char err[128];
            assert_int_equal(fr_wire_unpack(buf, (size_t)len, &env, err, sizeof err), 0);
            if (env->ack > d->acked[i])
                d->acked[i] = env->ack;
            fr__envelope__free_unpacked(env, NULL);
        }
    }
}

/* How many of agent i's messages are committed: 0, 1 (its accept) or 2 (and its mode). */
static int64_t committed(const struct drain *d, int i)
{
    char q[160];
    snprintf(q, sizeof q, "SELECT (SELECT COUNT(*) FROM attempts WHERE id = %llu AND state = 'running')"
             " + (SELECT COUNT(*) FROM units WHERE ecid = %llu AND mode = 1)",
             (unsigned long long)d->ref[i].attempt_id, (unsigned long long)d->ref[i].ecid);
    return count_sql(q);
}

static long drain_with_fault(long n, int code)
{
    struct site st;
    struct drain d;
    memset(&d, 0, sizeof d);
    site_open(&st, TURN_AGENTS, 1);
    clock_ns = 0;
    clock_runs = 0;
    sched_on_timer(&st.c.sched); /* both attempts claimed and assigned */
    assert_int_equal(read_assigns(&st), TURN_AGENTS);
    read_refs(&d);
    store_fault_arm(st.c.store, n, code);
    drain(&st, &d);
    long calls = store_fault_calls(st.c.store);
    store_fault_arm(st.c.store, 0, 0);
    assert_false(store_in_txn(st.c.store));
    read_acks(&st, &d);
    for (int i = 0; i < TURN_AGENTS; i++)
        if (committed(&d, i) != (int64_t)d.acked[i])
            fail_msg("fault %d at call %ld of the turn: agent%d has %lld of its messages committed, "
                     "%llu acknowledged", code, n, i, (long long)committed(&d, i),
                     (unsigned long long)d.acked[i]);
    drain(&st, &d); /* the agents replay what was not acknowledged */
    read_acks(&st, &d);
    for (int i = 0; i < TURN_AGENTS; i++) {
        assert_int_equal(committed(&d, i), 2);
        assert_int_equal(d.acked[i], 2);
    }
    site_close(&st);
    return calls;
}

static void a_failed_savepoint_does_not_undo_the_turn(void **state)
{
    (void)state;
    static const int codes[] = { SQLITE_IOERR, SQLITE_INTERRUPT };
    for (size_t k = 0; k < sizeof codes / sizeof codes[0]; k++) {
        long n = 1;
        while (drain_with_fault(n, codes[k]) >= n)
            n++;
        assert_true(n > 8); /* four messages, each a savepoint and its statements */
    }
}

/* ---- the heartbeat tick, a slice of agents per turn ----------------------------- */

static int on_heartbeat(struct site *st, int i, const Fr__Envelope *env, void *arg)
{
    int *got = arg;
    (void)st;
    got[i] += env->body_case == FR__ENVELOPE__BODY_HEARTBEAT;
    return env->body_case == FR__ENVELOPE__BODY_HEARTBEAT;
}

/* Heartbeats each agent got since the last call, into got[] (added); how many in all. */
static int read_heartbeats(struct site *st, int got[NAGENTS])
{
    return read_msgs(st, on_heartbeat, got);
}

/* Runs the loop a turn at a time until the tick's slices are through (at most 20 turns);
 * returns how many turns ran a slice. */
static int run_tick_slices(struct site *st)
{
    uint64_t before = st->c.tick_work.runs;
    for (int turns = 0; uv_is_active((uv_handle_t *)&st->c.tick_more) && turns < 20; turns++)
        uv_run(st->c.loop, UV_RUN_ONCE);
    assert_false(uv_is_active((uv_handle_t *)&st->c.tick_more));
    return (int)(st->c.tick_work.runs - before);
}

/* A spent budget: two agents a slice (TICK_CPU_EVERY), the rest at the next turn, then the
 * re-sends' round an agent a slice (each is due: a tick with its messages still); every
 * agent gets exactly one heartbeat per tick, none is judged offline. A tick due while the
 * last one is not through finishes it first. A clock that does not move: one slice. */
static void the_heartbeat_tick_goes_a_slice_a_turn(void **state)
{
    (void)state;
    struct site st;
    site_open(&st, NAGENTS, 1);
    int got[NAGENTS] = { 0 };
    clock_ns = 0;
    clock_runs = 1; /* every look: a second later */
    agents_on_heartbeat(&st.c.heartbeat);
    assert_int_equal(read_heartbeats(&st, got), 2);
    assert_true(uv_is_active((uv_handle_t *)&st.c.tick_more)); /* the rest: next turn */
    assert_int_equal(run_tick_slices(&st), NAGENTS / 2 - 1 + NAGENTS - 1);
    assert_int_equal(read_heartbeats(&st, got), NAGENTS - 2);
    for (int i = 0; i < NAGENTS; i++) {
        assert_int_equal(got[i], 1);
        assert_true(st.agent[i].online);
    }
    assert_int_equal(st.c.tick_work.items, NAGENTS);
    /* two ticks in a row, the first not through: each agent gets both */
    agents_on_heartbeat(&st.c.heartbeat);
    agents_on_heartbeat(&st.c.heartbeat);
    run_tick_slices(&st);
    assert_int_equal(read_heartbeats(&st, got), 2 * NAGENTS);
    for (int i = 0; i < NAGENTS; i++)
        assert_int_equal(got[i], 3);
    clock_runs = 0;
    agents_on_heartbeat(&st.c.heartbeat);
    assert_false(uv_is_active((uv_handle_t *)&st.c.tick_more));
    assert_int_equal(read_heartbeats(&st, got), NAGENTS);
    site_close(&st);
}

/* JobAssigns not accepted go again an agent's at a time under a spent budget, each agent's
 * once, the tick done only after the last; under a still clock all in one slice. */
static void the_ticks_resends_go_an_agent_a_slice(void **state)
{
    (void)state;
    struct site st;
    site_open(&st, NAGENTS, 1);
    clock_ns = 0;
    clock_runs = 0;
    sched_on_timer(&st.c.sched);
    assert_int_equal(read_assigns(&st), NAGENTS); /* claimed, never accepted */
    for (int i = 0; i < NAGENTS; i++)
        st.agent[i].resend_any_age = 1; /* as after a Hello: all of them, however new */
    clock_runs = 1;
    uint64_t runs = st.c.tick_work.runs;
    agents_on_heartbeat(&st.c.heartbeat);
    run_tick_slices(&st);
    assert_int_equal(read_assigns(&st), NAGENTS);
    assert_true(st.c.tick_work.runs - runs >= NAGENTS); /* an agent's round a slice at most */
    for (int i = 0; i < NAGENTS; i++) {
        assert_false(st.agent[i].resend_due);
        st.agent[i].resend_any_age = 1;
        st.agent[i].resend_due = 1;
    }
    clock_runs = 0;
    runs = st.c.tick_work.runs;
    agents_on_heartbeat(&st.c.heartbeat);
    assert_int_equal(st.c.tick_work.runs - runs, 1);
    assert_false(uv_is_active((uv_handle_t *)&st.c.tick_more));
    assert_int_equal(read_assigns(&st), NAGENTS);
    site_close(&st);
}

int main(void)
{
    snprintf(dbpath, sizeof dbpath, "/tmp/fr-test-sched-%d.db", (int)getpid());
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(a_failed_chunk_is_claimed_one_by_one),
        cmocka_unit_test(a_spent_budget_claims_one_chunk_a_pass),
        cmocka_unit_test(a_still_clock_claims_all_in_one_pass),
        cmocka_unit_test(the_progress_flush_waits_for_the_claims),
        cmocka_unit_test(a_failed_candidate_read_claims_nothing),
        cmocka_unit_test(a_rolled_back_pass_expands_again),
        cmocka_unit_test(a_failed_savepoint_does_not_undo_the_turn),
        cmocka_unit_test(the_heartbeat_tick_goes_a_slice_a_turn),
        cmocka_unit_test(the_ticks_resends_go_an_agent_a_slice),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
