/* test_zsock — ZeroMQ on libuv: no lost wake-ups under load (ZMQ_FD is edge-triggered),
 * malformed multipart shapes dropped and counted, clean close. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "fr_err.h"
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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(every_reply_arrives),
        cmocka_unit_test(too_many_frames_dropped),
        cmocka_unit_test(oversized_frame_dropped),
        cmocka_unit_test(unroutable_send_reports_unreach),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
