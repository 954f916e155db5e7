/* test_zsock — ZeroMQ on libuv: no lost wake-ups under load (ZMQ_FD is edge-triggered),
 * malformed multipart shapes dropped and counted, clean close, and a turn's drain
 * bounded by its CPU budget and its count (the rest on the next turns, in order). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "fr_err.h"
#include "fr_time.h"
#include "fr_zsock.h"

#define TOTAL 12000
#define WINDOW 400

struct pair {
    uv_loop_t loop;
    void *ctx, *router, *dealer;
    fr_zsock rz, dz;
    uv_timer_t deadline;
    int sent, replies, served, closed;
    int timed_out;
};

static void on_router_msg(fr_zsock *zs, zmq_msg_t *parts, size_t n, void *arg)
{
    struct pair *p = arg;
    assert_int_equal(n, 2); /* routing id + payload */
    p->served++;
    int rc = fr_zsock_send(zs, zmq_msg_data(&parts[0]), zmq_msg_size(&parts[0]),
                           zmq_msg_data(&parts[1]), zmq_msg_size(&parts[1]));
    assert_int_equal(rc, 0);
}

static void pump(struct pair *p)
{
    while (p->sent < TOTAL && p->sent - p->replies < WINDOW) {
        int v = p->sent;
        if (fr_zsock_send(&p->dz, NULL, 0, &v, sizeof v) != 0)
            break;
        p->sent++;
    }
}

static void on_closed(fr_zsock *zs)
{
    struct pair *p = zs->arg;
    p->closed++;
}

static void finish(struct pair *p)
{
    uv_timer_stop(&p->deadline);
    uv_close((uv_handle_t *)&p->deadline, NULL);
    fr_zsock_close(&p->rz, on_closed);
    fr_zsock_close(&p->dz, on_closed);
}

static void on_dealer_msg(fr_zsock *zs, zmq_msg_t *parts, size_t n, void *arg)
{
    struct pair *p = arg;
    assert_int_equal(n, 1);
    p->replies++;
    if (p->replies == TOTAL)
        finish(p);
    else
        pump(p);
}

static void on_deadline(uv_timer_t *t)
{
    struct pair *p = t->data;
    p->timed_out = 1;
    finish(p);
}

static void setup_pair(struct pair *p)
{
    memset(p, 0, sizeof *p);
    uv_loop_init(&p->loop);
    p->ctx = zmq_ctx_new();
    p->router = zmq_socket(p->ctx, ZMQ_ROUTER);
    p->dealer = zmq_socket(p->ctx, ZMQ_DEALER);
    assert_int_equal(fr_zsock_set_defaults(p->router, 1 << 20), 0);
    assert_int_equal(fr_zsock_set_defaults(p->dealer, 1 << 20), 0);
    assert_int_equal(zmq_bind(p->router, "tcp://127.0.0.1:*"), 0);
    char ep[256];
    size_t len = sizeof ep;
    zmq_getsockopt(p->router, ZMQ_LAST_ENDPOINT, ep, &len);
    assert_int_equal(zmq_connect(p->dealer, ep), 0);
    assert_int_equal(fr_zsock_start(&p->rz, &p->loop, p->router, on_router_msg, p), 0);
    assert_int_equal(fr_zsock_start(&p->dz, &p->loop, p->dealer, on_dealer_msg, p), 0);
    uv_timer_init(&p->loop, &p->deadline);
    p->deadline.data = p;
    uv_timer_start(&p->deadline, on_deadline, 60000, 0);
}

static void teardown_pair(struct pair *p)
{
    assert_int_equal(uv_run(&p->loop, UV_RUN_DEFAULT), 0);
    assert_int_equal(p->closed, 2);
    zmq_close(p->router);
    zmq_close(p->dealer);
    zmq_ctx_term(p->ctx);
    assert_int_equal(uv_loop_close(&p->loop), 0);
}

static void every_reply_arrives(void **state)
{
    struct pair p;
    setup_pair(&p);
    pump(&p);
    uv_run(&p.loop, UV_RUN_DEFAULT);
    assert_false(p.timed_out);
    assert_int_equal(p.replies, TOTAL);
    assert_int_equal(p.served, TOTAL);
    assert_true(p.rz.received == TOTAL);
    teardown_pair(&p);
}

static void on_router_count(fr_zsock *zs, zmq_msg_t *parts, size_t n, void *arg)
{
    struct pair *p = arg;
    p->served++;
    if (p->served == 1)
        finish(p);
}

static void too_many_frames_dropped(void **state)
{
    struct pair p;
    setup_pair(&p);
    p.rz.on_msg = on_router_count;
    /* FR_ZSOCK_MAX_PARTS frames from the dealer = one more at the router. */
    for (int i = 0; i < FR_ZSOCK_MAX_PARTS - 1; i++)
        zmq_send(p.dealer, "x", 1, ZMQ_SNDMORE);
    zmq_send(p.dealer, "x", 1, 0);
    zmq_send(p.dealer, "ok", 2, 0); /* then a good one */
    uv_run(&p.loop, UV_RUN_DEFAULT);
    assert_false(p.timed_out);
    assert_int_equal(p.served, 1);
    assert_true(p.rz.dropped == 1);
    teardown_pair(&p);
}

static void oversized_frame_dropped(void **state)
{
    struct pair p;
    setup_pair(&p);
    p.rz.on_msg = on_router_count;
    p.rz.max_frame = 16;
    char big[64] = { 0 };
    zmq_send(p.dealer, big, sizeof big, 0);
    zmq_send(p.dealer, "ok", 2, 0);
    uv_run(&p.loop, UV_RUN_DEFAULT);
    assert_int_equal(p.served, 1);
    assert_true(p.rz.dropped == 1);
    teardown_pair(&p);
}

static void unroutable_send_reports_unreach(void **state)
{
    struct pair p;
    setup_pair(&p);
    int one = 1;
    zmq_setsockopt(p.router, ZMQ_ROUTER_MANDATORY, &one, sizeof one);
    assert_int_equal(fr_zsock_send(&p.rz, "nobody", 6, "x", 1), FR_EUNREACH);
    finish(&p);
    teardown_pair(&p);
}

/* A drain's budget: NQUEUED messages queued at once over inproc (in the reader's pipe as
 * soon as zmq_send returns), drained under a CPU clock the test controls or under the
 * thread's own; each drain's count is recorded by on_drained. */
#define NQUEUED 40

struct budgeted {
    uv_loop_t loop;
    void *ctx, *router, *dealer;
    fr_zsock rz;
    int seen[NQUEUED], nseen;
    int per_drain[NQUEUED + 1], ndrains, in_drain;
    uint64_t cost_ns; /* what each message costs: on the fake clock, or burnt for real */
    int burn;         /* 1: burn cost_ns of the thread's CPU; 0: advance the fake clock */
};

static uint64_t fake_ns;
static uint64_t fake_clock(void)
{
    return fake_ns;
}

static void on_budgeted_msg(fr_zsock *zs, zmq_msg_t *parts, size_t n, void *arg)
{
    struct budgeted *b = arg;
    int v = -1;
    assert_int_equal(n, 2);
    assert_int_equal(zmq_msg_size(&parts[1]), sizeof v);
    memcpy(&v, zmq_msg_data(&parts[1]), sizeof v);
    assert_true(b->nseen < NQUEUED);
    b->seen[b->nseen++] = v;
    b->in_drain++;
    if (b->burn) {
        uint64_t t0 = fr_time_thread_cpu_ns();
        while (fr_time_thread_cpu_ns() - t0 < b->cost_ns)
            ;
    } else {
        fake_ns += b->cost_ns;
    }
    if (b->nseen == NQUEUED)
        fr_zsock_close(zs, NULL);
}

static void on_budgeted_drained(fr_zsock *zs, void *arg)
{
    struct budgeted *b = arg;
    assert_true(b->ndrains <= NQUEUED);
    b->per_drain[b->ndrains++] = b->in_drain;
    b->in_drain = 0;
}

/* Queues NQUEUED messages 0..NQUEUED-1 and runs the loop until they are all drained. */
static void run_budgeted(struct budgeted *b, unsigned budget, uint64_t budget_cpu_ns)
{
    uv_loop_init(&b->loop);
    b->ctx = zmq_ctx_new();
    b->router = zmq_socket(b->ctx, ZMQ_ROUTER);
    b->dealer = zmq_socket(b->ctx, ZMQ_DEALER);
    assert_int_equal(zmq_bind(b->router, "inproc://budget"), 0);
    assert_int_equal(zmq_connect(b->dealer, "inproc://budget"), 0);
    for (int i = 0; i < NQUEUED; i++)
        assert_int_equal(zmq_send(b->dealer, &i, sizeof i, 0), (int)sizeof i);
    assert_int_equal(fr_zsock_start(&b->rz, &b->loop, b->router, on_budgeted_msg, b), 0);
    b->rz.on_drained = on_budgeted_drained;
    b->rz.budget = budget;
    b->rz.budget_cpu_ns = budget_cpu_ns;
    if (!b->burn)
        b->rz.cpu_ns = fake_clock;
    assert_int_equal(uv_run(&b->loop, UV_RUN_DEFAULT), 0);
    zmq_close(b->router);
    zmq_close(b->dealer);
    zmq_ctx_term(b->ctx);
    assert_int_equal(uv_loop_close(&b->loop), 0);
    assert_int_equal(b->nseen, NQUEUED); /* nothing lost */
    for (int i = 0; i < NQUEUED; i++)
        assert_int_equal(b->seen[i], i); /* order kept */
}

/* 3 ms a message against a 10 ms budget looked at every FR_ZSOCK_CPU_EVERY (4): each
 * drain stops at its first look (12 ms), the rest waits for the next turns. */
static void drain_stops_at_cpu_budget(void **state)
{
    struct budgeted b = { .cost_ns = 3000000, .burn = 0 };
    fake_ns = 0;
    run_budgeted(&b, FR_ZSOCK_BUDGET, 10000000);
    assert_int_equal(b.ndrains, NQUEUED / FR_ZSOCK_CPU_EVERY);
    for (int i = 0; i < b.ndrains; i++)
        assert_int_equal(b.per_drain[i], FR_ZSOCK_CPU_EVERY);
    assert_true(b.rz.drains == (uint64_t)b.ndrains);
    assert_true(b.rz.yields == (uint64_t)b.ndrains - 1); /* the last one emptied the socket */
    assert_true(b.rz.drain_cpu_ns == 3000000ull * NQUEUED);
}

/* Cheap messages: the count caps the drain before the CPU budget does. */
static void drain_stops_at_count(void **state)
{
    struct budgeted b = { .cost_ns = 1000, .burn = 0 };
    fake_ns = 0;
    run_budgeted(&b, 16, 10000000);
    assert_int_equal(b.ndrains, 3); /* 16, 16, 8 */
    assert_int_equal(b.per_drain[0], 16);
    assert_int_equal(b.per_drain[1], 16);
    assert_int_equal(b.per_drain[2], 8);
}

/* The thread's own CPU clock: messages that each burn 2 ms of it against a 10 ms budget.
 * At the second look (8 messages) a drain has spent at least 16 ms: no drain hands over
 * more than 8, so the 40 take at least 5 turns. */
static void drain_stops_at_real_cpu(void **state)
{
    struct budgeted b = { .cost_ns = 2000000, .burn = 1 };
    run_budgeted(&b, FR_ZSOCK_BUDGET, 10000000);
    assert_true(b.ndrains >= NQUEUED / (2 * FR_ZSOCK_CPU_EVERY));
    for (int i = 0; i < b.ndrains; i++) {
        assert_true(b.per_drain[i] >= 1);
        assert_true(b.per_drain[i] <= 2 * FR_ZSOCK_CPU_EVERY);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(every_reply_arrives),
        cmocka_unit_test(too_many_frames_dropped),
        cmocka_unit_test(oversized_frame_dropped),
        cmocka_unit_test(unroutable_send_reports_unreach),
        cmocka_unit_test(drain_stops_at_cpu_budget),
        cmocka_unit_test(drain_stops_at_count),
        cmocka_unit_test(drain_stops_at_real_cpu),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
