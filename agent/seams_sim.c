/* seams_sim — topology, discovery and port power from flashrack-sim, over its
 * Unix socket (line-delimited JSON, sim/PROTOCOL.md). Reconnects with back-off
 * when the simulator is not up yet or goes away.
 *
 * With usbmuxd (discovery = sim+usbmuxd), units in normal mode are not taken from
 * the feed: the feed says where their USB device is (path, UDID), the real
 * libimobiledevice path (muxd_source) says who they are, and udid_join puts the two
 * together. Entering recovery goes through lockdownd then. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fr_err.h"
#include "fr_linebuf.h"
#include "fr_log.h"
#include "fr_types.h"
#include "muxd_source.h"
#include "seams.h"
#include "udid_join.h"

#define SIM_LINE_MAX (64 * 1024)

struct sim_seams {
    struct seams base;
    uv_loop_t *loop;
    struct seam_events ev;
    char socket[108], host[64];
    uv_pipe_t *pipe;        /* NULL when not connected */
    uv_connect_t conn;
    uv_timer_t retry;
    uint64_t backoff_ms;
    struct fr_linebuf lines;
    int closing, open_handles;
    void (*on_closed)(struct seams *s);
    int use_muxd;
    struct muxd_source *muxd;    /* NULL unless use_muxd */
    struct udid_join join;
};

static void sim_connect(struct sim_seams *s);
static void on_retry(uv_timer_t *t);

static void on_written(uv_write_t *req, int status)
{
    free(req->data);
    free(req);
}

static int sim_send(struct sim_seams *s, json_t *obj)
{
    char *text = json_dumps(obj, JSON_COMPACT);
    json_decref(obj);
    if (!text || !s->pipe) {
        free(text);
        return FR_EUNAVAIL;
    }
    size_t n = strlen(text);
    char *line = realloc(text, n + 2);
    if (!line) {
        free(text);
        return FR_ENOMEM;
    }
    memcpy(line + n, "\n", 2);
    uv_write_t *req = malloc(sizeof *req);
    uv_buf_t b = uv_buf_init(line, (unsigned)(n + 1));
    req->data = line;
    if (uv_write(req, (uv_stream_t *)s->pipe, &b, 1, on_written) < 0) {
        free(line);
        free(req);
        return FR_EIO;
    }
    return 0;
}

static void copy(char *dst, size_t n, json_t *obj, const char *key)
{
    const char *v = json_string_value(json_object_get(obj, key));
    snprintf(dst, n, "%s", v ? v : "");
}

static int unit_from(json_t *m, struct unit_desc *u)
{
    memset(u, 0, sizeof *u);
    const char *e = json_string_value(json_object_get(m, "ecid"));
    if (!e || fr_ecid_parse(e, &u->ecid) < 0)
        return -1;
    copy(u->path, sizeof u->path, m, "path");
    copy(u->product_type, sizeof u->product_type, m, "product_type");
    copy(u->serial, sizeof u->serial, m, "serial");
    copy(u->udid, sizeof u->udid, m, "udid");
    int mode = fr_mode_parse(json_string_value(json_object_get(m, "mode")));
    u->mode = mode < 0 ? 0 : mode;
    u->cpid = (uint32_t)json_integer_value(json_object_get(m, "cpid"));
    u->bdid = (uint32_t)json_integer_value(json_object_get(m, "bdid"));
    return 0;
}

static void on_topology(struct sim_seams *s, json_t *m)
{
    json_t *ports = json_object_get(m, "ports");
    size_t n = json_array_size(ports), i;
    struct port_desc *pd = calloc(n ? n : 1, sizeof *pd);
    json_t *p;
    json_array_foreach(ports, i, p) {
        copy(pd[i].path, sizeof pd[i].path, p, "path");
        copy(pd[i].label, sizeof pd[i].label, p, "label");
        copy(pd[i].hub, sizeof pd[i].hub, p, "hub");
        pd[i].bus = (uint32_t)json_integer_value(json_object_get(p, "bus"));
        pd[i].depth = (uint32_t)json_integer_value(json_object_get(p, "depth"));
        pd[i].power_switch = json_is_true(json_object_get(p, "power_switch"));
    }
    s->ev.topology(s->ev.arg, pd, n);
    free(pd);
}

/* Whether the unit goes through the join: in normal or restore mode (both on usbmuxd),
 * with usbmuxd on. */
static int joined(const struct sim_seams *s, const struct unit_desc *u)
{
    return s->use_muxd && (u->mode == fr_mode_parse("normal") || u->mode == fr_mode_parse("restore")) &&
           u->udid[0];
}

/* A unit appeared or changed mode. A normal-mode unit is only a USB presence here:
 * its identity must come from usbmuxd. Crossing between the two ways is a detach
 * from the one and an attach through the other. */
static void on_unit(struct sim_seams *s, const char *op, const struct unit_desc *u)
{
    if (joined(s, u)) {
        if (strcmp(op, "mode") == 0)
            s->ev.detach(s->ev.arg, u->path, u->ecid);
        if (udid_join_presence(&s->join, u->udid, u->path) < 0)
            fr_error("seams", "unit '%s' on '%s': too many units to join", u->udid, u->path);
        return;
    }
    if (s->use_muxd && u->udid[0])
        udid_join_presence_gone(&s->join, u->udid); /* left normal mode: a detach if joined */
    (strcmp(op, "attach") == 0 ? s->ev.attach : s->ev.mode)(s->ev.arg, u);
}

static void on_unit_detach(struct sim_seams *s, const struct unit_desc *u)
{
    if (s->use_muxd && u->udid[0])
        udid_join_presence_gone(&s->join, u->udid);
    s->ev.detach(s->ev.arg, u->path, u->ecid); /* ports ignores what it does not hold */
}

static void handle_line(struct sim_seams *s, const char *line)
{
    json_t *m = json_loads(line, 0, NULL);
    const char *op = json_string_value(json_object_get(m, "op"));
    struct unit_desc u;
    if (!op) {
        fr_warn("seams", "simulator sent a line that is not a message: %.80s", line);
    } else if (strcmp(op, "topology") == 0) {
        on_topology(s, m);
    } else if ((strcmp(op, "attach") == 0 || strcmp(op, "mode") == 0) && unit_from(m, &u) == 0) {
        on_unit(s, op, &u);
    } else if (strcmp(op, "detach") == 0 && unit_from(m, &u) == 0) {
        on_unit_detach(s, &u);
    } else if (strcmp(op, "power_cycle") == 0) {
        fr_info("seams", "port '%s' power cycle: %s", json_string_value(json_object_get(m, "path")),
                json_is_true(json_object_get(m, "ok")) ? "done"
                : json_string_value(json_object_get(m, "error")));
    } else if (strcmp(op, "error") == 0) {
        fr_error("seams", "simulator: %s", json_string_value(json_object_get(m, "error")));
    }
    json_decref(m);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *b)
{
    b->base = malloc(16384);
    b->len = b->base ? 16384 : 0;
}

static void on_pipe_closed(uv_handle_t *h)
{
    struct sim_seams *s = h->data;
    free(h);
    if (--s->open_handles == 0 && s->closing && s->on_closed)
        s->on_closed(&s->base);
}

static void drop_connection(struct sim_seams *s, const char *why)
{
    if (!s->pipe)
        return;
    fr_warn("seams", "lost the simulator at '%s': %s", s->socket, why);
    uv_close((uv_handle_t *)s->pipe, on_pipe_closed);
    s->pipe = NULL;
    s->lines.len = 0;
    if (!s->closing)
        uv_timer_start(&s->retry, on_retry, 500, 0);
}

static int on_line(void *arg, char *line)
{
    struct sim_seams *s = arg;
    handle_line(s, line);
    return s->pipe == NULL; /* the connection went away while handling */
}

static void on_read(uv_stream_t *st, ssize_t n, const uv_buf_t *b)
{
    struct sim_seams *s = st->data;
    if (n < 0) {
        free(b->base);
        drop_connection(s, uv_strerror((int)n));
        return;
    }
    if (fr_linebuf_feed(&s->lines, b->base, (size_t)n, on_line, s) < 0)
        fr_warn("seams", "out of memory reading the simulator");
    free(b->base);
}

static void on_retry(uv_timer_t *t)
{
    sim_connect(t->data);
}

static void on_connected(uv_connect_t *req, int status)
{
    struct sim_seams *s = req->data;
    if (s->closing)
        return;
    if (status < 0) {
        uv_close((uv_handle_t *)s->pipe, on_pipe_closed);
        s->pipe = NULL;
        if (s->backoff_ms >= 1000)
            fr_warn("seams", "cannot reach the simulator at '%s': %s; retrying", s->socket,
                    uv_strerror(status));
        s->backoff_ms = s->backoff_ms ? (s->backoff_ms * 2 > 2000 ? 2000 : s->backoff_ms * 2) : 100;
        uv_timer_start(&s->retry, on_retry, s->backoff_ms, 0);
        return;
    }
    s->backoff_ms = 0;
    fr_info("seams", "connected to the simulator at '%s' as host '%s'", s->socket, s->host);
    uv_read_start((uv_stream_t *)s->pipe, on_alloc, on_read);
    sim_send(s, json_pack("{s:s, s:s}", "op", "hello", "host", s->host));
}

static void sim_connect(struct sim_seams *s)
{
    if (s->pipe || s->closing)
        return;
    s->pipe = malloc(sizeof *s->pipe);
    uv_pipe_init(s->loop, s->pipe, 0);
    s->pipe->data = s;
    s->open_handles++;
    s->conn.data = s;
    uv_pipe_connect(&s->conn, s->pipe, s->socket, on_connected);
}

static void on_muxd_identity(void *arg, const char *udid, const struct unit_desc *u)
{
    struct sim_seams *s = arg;
    struct unit_desc id = *u;
    snprintf(id.udid, sizeof id.udid, "%s", udid);
    if (udid_join_identity(&s->join, udid, &id) < 0)
        fr_error("seams", "unit '%s': too many units to join", udid);
}

static void on_muxd_gone(void *arg, const char *udid)
{
    udid_join_identity_gone(&((struct sim_seams *)arg)->join, udid);
}

static void on_join_attach(void *arg, const struct unit_desc *u)
{
    struct sim_seams *s = arg;
    s->ev.attach(s->ev.arg, u);
}

static void on_join_detach(void *arg, const char *path, uint64_t ecid)
{
    struct sim_seams *s = arg;
    s->ev.detach(s->ev.arg, path, ecid);
}

static int sim_start(struct seams *base, uv_loop_t *loop, const struct seam_events *ev, char *err,
                     size_t errlen)
{
    struct sim_seams *s = (struct sim_seams *)base;
    s->loop = loop;
    s->ev = *ev;
    if (s->use_muxd) {
        struct muxd_source_events mev = { on_muxd_identity, on_muxd_gone, s };
        udid_join_init(&s->join, on_join_attach, on_join_detach, s);
        if (muxd_source_start(&s->muxd, loop, &mev, err, errlen) < 0)
            return FR_EUNAVAIL;
    }
    uv_timer_init(loop, &s->retry);
    s->retry.data = s;
    sim_connect(s);
    return 0;
}

struct recovery_ask {
    void (*cb)(void *arg, int rc, const char *why);
    void *arg;
};

static void on_recovery_answer(void *arg, int rc, const char *why)
{
    struct recovery_ask *ask = arg;
    ask->cb(ask->arg, rc, why);
    free(ask);
}

static int sim_enter_recovery(struct seams *base, const char *path, uint64_t ecid,
                              void (*cb)(void *arg, int rc, const char *why), void *arg)
{
    struct sim_seams *s = (struct sim_seams *)base;
    const char *udid = udid_join_udid_of(&s->join, ecid);
    if (!udid)
        return FR_ENOTFOUND;
    struct recovery_ask *ask = malloc(sizeof *ask);
    if (!ask)
        return FR_ENOMEM;
    ask->cb = cb;
    ask->arg = arg;
    int rc = muxd_source_enter_recovery(s->muxd, udid, on_recovery_answer, ask);
    if (rc < 0)
        free(ask);
    return rc;
}

static int sim_power_cycle(struct seams *base, const char *path, char *err, size_t errlen)
{
    struct sim_seams *s = (struct sim_seams *)base;
    int rc = sim_send(s, json_pack("{s:s, s:s}", "op", "power_cycle", "path", path));
    if (rc < 0)
        return fr_seterr(rc, err, errlen, "simulator not connected");
    return 0;
}

static void on_muxd_closed(void *arg)
{
    struct sim_seams *s = arg;
    s->muxd = NULL;
    if (--s->open_handles == 0 && s->on_closed)
        s->on_closed(&s->base);
}

static void sim_close(struct seams *base, void (*cb)(struct seams *))
{
    struct sim_seams *s = (struct sim_seams *)base;
    s->closing = 1;
    s->on_closed = cb;
    if (s->pipe) {
        uv_close((uv_handle_t *)s->pipe, on_pipe_closed);
        s->pipe = NULL;
    }
    if (s->muxd) {
        s->open_handles++;
        muxd_source_close(s->muxd, on_muxd_closed, s);
    }
    uv_close((uv_handle_t *)&s->retry, NULL); /* embedded: freed with s after the loop ends */
    if (s->open_handles == 0 && cb)
        cb(base);
}

static void sim_destroy(struct seams *base)
{
    struct sim_seams *s = (struct sim_seams *)base;
    fr_linebuf_release(&s->lines);
    udid_join_release(&s->join);
    free(s);
}

int seams_sim_new(const char *socket, const char *host, int usbmuxd, struct seams **out)
{
    struct sim_seams *s = calloc(1, sizeof *s);
    if (!s)
        return FR_ENOMEM;
    s->base.name = usbmuxd ? "sim+usbmuxd" : "sim";
    s->base.start = sim_start;
    s->base.power_cycle = sim_power_cycle;
    s->base.enter_recovery = usbmuxd ? sim_enter_recovery : NULL;
    s->base.no_lockdown = usbmuxd ? NULL : "discovery = sim reads no lockdownd (sim+usbmuxd does)";
    s->use_muxd = usbmuxd;
    s->base.close = sim_close;
    s->base.destroy = sim_destroy;
    s->base.impl = s;
    snprintf(s->socket, sizeof s->socket, "%s", socket);
    snprintf(s->host, sizeof s->host, "%s", host);
    fr_linebuf_init(&s->lines, SIM_LINE_MAX);
    *out = &s->base;
    return 0;
}

