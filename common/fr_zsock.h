/* fr_zsock — a ZeroMQ socket driven by a libuv loop.
 *
 * ZMQ_FD is edge-triggered and a zmq_send can consume the readable edge
 * (a reader that reads once per wake-up stalls). So the uv_poll on ZMQ_FD only wakes the loop; a uv_prepare
 * checks ZMQ_EVENTS before every block and starts a uv_idle when input is
 * pending (so the loop does not block); a uv_check drains messages with ZMQ_DONTWAIT
 * until none is pending or the turn's budget is spent: budget_cpu_ns of the loop
 * thread's CPU (looked at every FR_ZSOCK_CPU_EVERY messages: what a message costs is
 * the caller's, from a heartbeat to a result with its signed record) or budget
 * messages, whichever comes first. What is left is drained on the next turns, after
 * the loop's timers ran. Every receive and send is non-blocking.
 *
 * Ownership: the caller owns the zmq socket and the struct (embed it); the
 * socket must outlive fr_zsock_close()'s callback. Loop thread only: a libzmq socket belongs to one thread.
 *
 * Messages: a multipart message of up to FR_ZSOCK_MAX_PARTS frames is handed
 * to on_msg as an array; the frames are closed after on_msg returns. A message
 * with more frames, or a frame over max_frame bytes (when set), is dropped and
 * counted in `dropped`. on_drained (set it after fr_zsock_start) runs once after each
 * turn's drain that handed over at least one message: a caller commits a turn's work
 * there. */
#ifndef FR_ZSOCK_H
#define FR_ZSOCK_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>
#include <zmq.h>

#include "fr_time.h"

#define FR_ZSOCK_MAX_PARTS 8 /* a ZAP request has 7 */
#define FR_ZSOCK_BUDGET 256 /* messages drained per loop turn, at most (default) */
#define FR_ZSOCK_BUDGET_CPU_NS (10 * 1000000ull) /* the CPU a turn's drain may spend (default) */
#define FR_ZSOCK_CPU_EVERY 4 /* messages between two looks at the CPU clock (a system call) */

typedef struct fr_zsock fr_zsock;
typedef void (*fr_zsock_msg_cb)(fr_zsock *zs, zmq_msg_t *parts, size_t nparts, void *arg);
typedef void (*fr_zsock_close_cb)(fr_zsock *zs);
typedef void (*fr_zsock_drained_cb)(fr_zsock *zs, void *arg);

struct fr_zsock {
    void *sock;           /* the zmq socket (not owned) */
    uv_poll_t poll;
    uv_prepare_t prepare;
    uv_check_t check;
    uv_idle_t idle;
    fr_zsock_msg_cb on_msg;
    fr_zsock_close_cb on_close;
    fr_zsock_drained_cb on_drained; /* optional: after each turn's drain that had messages */
    void *arg;
    size_t max_frame;     /* 0 = no limit beyond ZMQ_MAXMSGSIZE */
    unsigned budget;      /* messages per turn's drain (fr_zsock_start: FR_ZSOCK_BUDGET) */
    uint64_t budget_cpu_ns; /* CPU per turn's drain (FR_ZSOCK_BUDGET_CPU_NS; 0 = no limit) */
    fr_clock_ns cpu_ns;    /* the loop thread's CPU clock (fr_time_thread_cpu_ns; a test's own) */
    uint64_t received;
    uint64_t dropped;     /* malformed multipart shapes */
    uint64_t drains;      /* drains that handed over at least one message */
    uint64_t yields;      /* of those, the ones that stopped at the budget with more pending */
    uint64_t drain_cpu_ns; /* the CPU of those drains, on_drained included */
    int closing;
    int open_handles;
};

/* Joins the loop, with the default budgets (change them after). Returns 0 or FR_ESYS
 * (no callback is called on error). */
int fr_zsock_start(fr_zsock *zs, uv_loop_t *loop, void *sock, fr_zsock_msg_cb on_msg, void *arg);
/* Leaves the loop; cb (may be NULL) runs once every handle is closed. */
void fr_zsock_close(fr_zsock *zs, fr_zsock_close_cb cb);

/* Sends [id] + data as one message, non-blocking. id may be NULL (DEALER).
 * Returns 0, FR_EUNREACH (ROUTER_MANDATORY: no such peer), FR_EAGAIN (HWM), FR_EIO. */
int fr_zsock_send(fr_zsock *zs, const void *id, size_t idlen, const void *data, size_t len);

/* Common socket options: linger 0, maxmsgsize, tcp keepalive, zmq heartbeats. */
int fr_zsock_set_defaults(void *sock, int64_t max_msg);

/* Agents' routing ids, "ID/RANDOM": new for each connection, so that the controller's
 * ROUTER (no handover) never holds one for a connection that dropped, and one nobody
 * can guess is one nobody can take first. FR_ZSOCK_ROUTE_MAX holds an agent id (63),
 * "/" and 16 hex digits. */
#define FR_ZSOCK_ROUTE_MAX 96
/* Sets sock's ZMQ_ROUTING_ID, for its next connect, to a new "ID/RANDOM"; route (at
 * least FR_ZSOCK_ROUTE_MAX bytes) receives it. Returns 0 or FR_ESYS. */
int fr_zsock_route_new(void *sock, const char *id, char *route);
/* Whether routing id route may be agent id's: "ID/RANDOM", or the bare id. */
int fr_zsock_route_belongs(const char *route, const char *id);

#endif
