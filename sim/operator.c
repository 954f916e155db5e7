/* operator — follows move instructions from the controller; see operator.h. */
#include "operator.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "fate.h"
#include "fr_keys.h"
#include "fr_log.h"
#include "fr_types.h"
#include "fr_wire.h"

#define MAX_DONE 4096

struct handled {
    long long id;
    long long repeats;
};

struct sim_operator {
    uv_loop_t *loop;
    struct world *world;
    void *ctx, *sock;
    fr_zsock zs;
    uv_timer_t poll;
    uint64_t seq;
    struct handled done[MAX_DONE];
    size_t ndone;
};

static struct handled *find(struct sim_operator *op, long long id)
{
    for (size_t i = 0; i < op->ndone; i++)
        if (op->done[i].id == id)
            return &op->done[i];
    return NULL;
}

/* Carries out one instruction unless this (id, repeats) was handled already. */
static void follow(struct sim_operator *op, json_t *m)
{
    long long id = json_integer_value(json_object_get(m, "id"));
    long long repeats = json_integer_value(json_object_get(m, "repeats"));
    struct handled *h = find(op, id);
    if (h && h->repeats == repeats)
        return;
    if (!h && op->ndone < MAX_DONE)
        h = &op->done[op->ndone++];
    if (h)
        *h = (struct handled){ id, repeats };
    const char *e = json_string_value(json_object_get(m, "ecid"));
    const char *to = json_string_value(json_object_get(m, "to_label"));
    const char *from = json_string_value(json_object_get(m, "from_label"));
    uint64_t ecid;
    struct rack *r = world_rack(op->world);
    if (!e || !to || fr_ecid_parse(e, &ecid) < 0)
        return;
    /* people sometimes put the phone back where it was; never twice for one instruction */
    int misplug = repeats == 0 && from && *from &&
                  fate_u01(r->sim.seed, ecid, from, (int)id, 3) < r->sim.misplug;
    const char *target = misplug ? from : to;
    int port = rack_find_port_label(r, target);
    char err[128];
    if (port < 0 || world_move(op->world, ecid, port, json_is_true(json_object_get(m, "dfu")), err,
                               sizeof err) < 0) {
        fr_warn("operator", "cannot move %s to %s: %s", e, target, port < 0 ? "no such port" : err);
        return;
    }
    fr_info("operator", "moving %s from %s to %s%s%s", e, from ? from : "?", target,
            json_is_true(json_object_get(m, "dfu")) ? " (into DFU)" : "",
            misplug ? " (back into the same port, by mistake)" : "");
}

static void on_reply(fr_zsock *zs, zmq_msg_t *parts, size_t nparts, void *arg)
{
    struct sim_operator *op = arg;
    Fr__Envelope *env = NULL;
    char err[128];
    if (nparts != 1 || fr_wire_unpack(zmq_msg_data(&parts[0]), zmq_msg_size(&parts[0]), &env, err,
                                      sizeof err) < 0)
        return;
    if (env->body_case == FR__ENVELOPE__BODY_REPLY && env->reply->status == 0) {
        json_t *doc = json_loads(env->reply->json, 0, NULL);
        size_t i;
        json_t *m;
        json_array_foreach(json_object_get(doc, "moves"), i, m)
            follow(op, m);
        json_decref(doc);
    }
    fr_wire_free(&env);
}

static void on_poll(uv_timer_t *t)
{
    struct sim_operator *op = t->data;
    Fr__QueryRequest q = FR__QUERY_REQUEST__INIT;
    q.kind = FR__QUERY_REQUEST__KIND__MOVES;
    Fr__Envelope env = FR__ENVELOPE__INIT;
    env.agent_id = "sim-operator";
    env.seq = ++op->seq;
    env.body_case = FR__ENVELOPE__BODY_QUERY;
    env.query = &q;
    fr_wire_send(&op->zs, NULL, 0, &env);
}

int operator_start(struct sim_operator **out, uv_loop_t *loop, struct world *w,
                   const char *endpoint, uint64_t poll_ms)
{
    struct sim_operator *op = calloc(1, sizeof *op);
    if (!op)
        return -1;
    op->loop = loop;
    op->world = w;
    op->ctx = zmq_ctx_new();
    op->sock = zmq_socket(op->ctx, ZMQ_DEALER);
    fr_zsock_set_defaults(op->sock, FR_WIRE_MAX_MSG);
    int hwm = 4; /* a controller that is away must not pile up polls */
    zmq_setsockopt(op->sock, ZMQ_SNDHWM, &hwm, sizeof hwm);
    char err[1024] = "";
    if (fr_key_setup_client(op->sock, err, sizeof err) < 0 || zmq_connect(op->sock, endpoint) < 0) {
        fr_error("operator", "cannot use controller endpoint '%s'%s%s", endpoint, *err ? ": " : "", err);
        zmq_close(op->sock);
        zmq_ctx_term(op->ctx);
        free(op);
        return -1;
    }
    fr_zsock_start(&op->zs, loop, op->sock, on_reply, op);
    uv_timer_init(loop, &op->poll);
    op->poll.data = op;
    uv_timer_start(&op->poll, on_poll, poll_ms, poll_ms);
    fr_info("operator", "following move instructions from '%s'", endpoint);
    *out = op;
    return 0;
}

void operator_stop(struct sim_operator *op)
{
    if (!op)
        return;
    fr_zsock_close(&op->zs, NULL);
    uv_close((uv_handle_t *)&op->poll, NULL);
}

void operator_destroy(struct sim_operator **pop)
{
    struct sim_operator *op = *pop;
    if (!op)
        return;
    zmq_close(op->sock);
    zmq_ctx_term(op->ctx);
    free(op);
    *pop = NULL;
}
