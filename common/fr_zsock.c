/* fr_zsock — ZeroMQ socket on a libuv loop (poll wakes, prepare/idle/check drain). */
#include "fr_zsock.h"
#include "fr_err.h"
#include "fr_time.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

static int zs_pending(fr_zsock *zs)
{
    int events = 0;
    size_t len = sizeof events;
    if (zmq_getsockopt(zs->sock, ZMQ_EVENTS, &events, &len) < 0)
        return 0;
    return (events & ZMQ_POLLIN) != 0;
}

/* Receives one whole multipart message; returns parts received, 0 when nothing
 * is pending, -1 when it was dropped (shape or size). */
static int zs_recv_one(fr_zsock *zs, zmq_msg_t *parts, size_t *nparts)
{
    size_t n = 0;
    int bad = 0, more = 1;
    while (more) {
        zmq_msg_t scratch;
        zmq_msg_t *m = n < FR_ZSOCK_MAX_PARTS ? &parts[n] : &scratch;
        zmq_msg_init(m);
        if (zmq_msg_recv(m, zs->sock, ZMQ_DONTWAIT) < 0) {
            zmq_msg_close(m);
            if (n == 0)
                return 0;
            bad = 1; /* a partial message should not happen; treat as malformed */
            break;
        }
        more = zmq_msg_more(m);
        if (zs->max_frame && zmq_msg_size(m) > zs->max_frame)
            bad = 1;
        if (n >= FR_ZSOCK_MAX_PARTS) {
            zmq_msg_close(m);
            bad = 1;
        }
        n++;
    }
    size_t kept = n < FR_ZSOCK_MAX_PARTS ? n : FR_ZSOCK_MAX_PARTS;
    if (bad) {
        for (size_t i = 0; i < kept; i++)
            zmq_msg_close(&parts[i]);
        zs->dropped++;
        return -1;
    }
    *nparts = kept;
    return 1;
}

/* Whether the drain that started at CPU time start (and handed over n messages) may
 * take one more: under its count, and under its CPU every FR_ZSOCK_CPU_EVERY messages. */
static int zs_may_drain(fr_zsock *zs, unsigned n, uint64_t start)
{
    if (n >= zs->budget || zs->closing)
        return 0;
    if (!zs->budget_cpu_ns || n == 0 || n % FR_ZSOCK_CPU_EVERY)
        return 1;
    return zs->cpu_ns() - start < zs->budget_cpu_ns;
}

static void zs_drain(fr_zsock *zs)
{
    uint64_t start = zs->cpu_ns(), before = zs->received;
    unsigned n = 0;
    int more = 1;
    while ((more = zs_may_drain(zs, n, start))) {
        zmq_msg_t parts[FR_ZSOCK_MAX_PARTS];
        size_t nparts = 0;
        int rc = zs_recv_one(zs, parts, &nparts);
        if (rc == 0)
            break;
        n++; /* a dropped message counts: its frames were read */
        if (rc < 0)
            continue;
        zs->received++;
        zs->on_msg(zs, parts, nparts, zs->arg);
        for (size_t i = 0; i < nparts; i++)
            zmq_msg_close(&parts[i]);
    }
    if (zs->received == before)
        return; /* nothing, or only dropped shapes: no turn to commit */
    if (zs->on_drained)
        zs->on_drained(zs, zs->arg);
    zs->drains++;
    zs->yields += !more && !zs->closing && zs_pending(zs);
    zs->drain_cpu_ns += zs->cpu_ns() - start;
}

static void on_poll_readable(uv_poll_t *h, int status, int events)
{
    /* Only wakes the loop; prepare/check do the work (edge-triggered ZMQ_FD). */
}

static void on_idle(uv_idle_t *h)
{
}

static void on_prepare(uv_prepare_t *h)
{
    fr_zsock *zs = h->data;
    if (zs_pending(zs))
        uv_idle_start(&zs->idle, on_idle);
    else
        uv_idle_stop(&zs->idle);
}

static void on_check(uv_check_t *h)
{
    fr_zsock *zs = h->data;
    if (zs_pending(zs))
        zs_drain(zs);
    if (!zs->closing && !zs_pending(zs))
        uv_idle_stop(&zs->idle);
}

int fr_zsock_start(fr_zsock *zs, uv_loop_t *loop, void *sock, fr_zsock_msg_cb on_msg, void *arg)
{
    int fd = -1;
    size_t len = sizeof fd;
    memset(zs, 0, sizeof *zs);
    zs->sock = sock;
    zs->on_msg = on_msg;
    zs->arg = arg;
    zs->budget = FR_ZSOCK_BUDGET;
    zs->budget_cpu_ns = FR_ZSOCK_BUDGET_CPU_NS;
    zs->cpu_ns = fr_time_thread_cpu_ns;
    if (zmq_getsockopt(sock, ZMQ_FD, &fd, &len) < 0)
        return FR_ESYS;
    if (uv_poll_init(loop, &zs->poll, fd) < 0)
        return FR_ESYS;
    uv_prepare_init(loop, &zs->prepare);
    uv_check_init(loop, &zs->check);
    uv_idle_init(loop, &zs->idle);
    zs->poll.data = zs->prepare.data = zs->check.data = zs->idle.data = zs;
    zs->open_handles = 4;
    uv_poll_start(&zs->poll, UV_READABLE, on_poll_readable);
    uv_prepare_start(&zs->prepare, on_prepare);
    uv_check_start(&zs->check, on_check);
    return 0;
}

static void on_handle_closed(uv_handle_t *h)
{
    fr_zsock *zs = h->data;
    if (--zs->open_handles == 0 && zs->on_close)
        zs->on_close(zs);
}

void fr_zsock_close(fr_zsock *zs, fr_zsock_close_cb cb)
{
    if (zs->closing)
        return;
    zs->closing = 1;
    zs->on_close = cb;
    if (zs->open_handles == 0) {
        if (cb)
            cb(zs);
        return;
    }
    uv_close((uv_handle_t *)&zs->poll, on_handle_closed);
    uv_close((uv_handle_t *)&zs->prepare, on_handle_closed);
    uv_close((uv_handle_t *)&zs->check, on_handle_closed);
    uv_close((uv_handle_t *)&zs->idle, on_handle_closed);
}

int fr_zsock_send(fr_zsock *zs, const void *id, size_t idlen, const void *data, size_t len)
{
    if (id && zmq_send(zs->sock, id, idlen, ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0)
        goto fail;
    if (zmq_send(zs->sock, data, len, ZMQ_DONTWAIT) < 0)
        goto fail;
    return 0;
fail:
    if (errno == EHOSTUNREACH)
        return FR_EUNREACH;
    if (errno == EAGAIN)
        return FR_EAGAIN;
    return FR_EIO;
}

int fr_zsock_set_defaults(void *sock, int64_t max_msg)
{
    int zero = 0, one = 1, ivl = 1000, timeout = 5000;
    int rc = 0;
    rc |= zmq_setsockopt(sock, ZMQ_LINGER, &zero, sizeof zero);
    rc |= zmq_setsockopt(sock, ZMQ_MAXMSGSIZE, &max_msg, sizeof max_msg);
    rc |= zmq_setsockopt(sock, ZMQ_TCP_KEEPALIVE, &one, sizeof one);
    rc |= zmq_setsockopt(sock, ZMQ_HEARTBEAT_IVL, &ivl, sizeof ivl);
    rc |= zmq_setsockopt(sock, ZMQ_HEARTBEAT_TIMEOUT, &timeout, sizeof timeout);
    return rc < 0 ? FR_ESYS : 0;
}

int fr_zsock_route_new(void *sock, const char *id, char *route)
{
    uint64_t rnd = 0;
    if (getrandom(&rnd, sizeof rnd, 0) != (ssize_t)sizeof rnd) {
        struct timespec ts; /* no entropy yet: still new for each connection */
        clock_gettime(CLOCK_MONOTONIC, &ts);
        rnd = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
    }
    snprintf(route, FR_ZSOCK_ROUTE_MAX, "%.63s/%016llx", id, (unsigned long long)rnd);
    return zmq_setsockopt(sock, ZMQ_ROUTING_ID, route, strlen(route)) < 0 ? FR_ESYS : 0;
}

int fr_zsock_route_belongs(const char *route, const char *id)
{
    size_t n = strlen(id);
    return strncmp(route, id, n) == 0 && (route[n] == '\0' || route[n] == '/');
}
