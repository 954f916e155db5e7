/* seams_sim — topology, discovery and port power from flashrack-sim, over its
 * Unix socket (line-delimited JSON, sim/PROTOCOL.md). Reconnects with back-off
 * when the simulator is not up yet or goes away. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fr_err.h"
#include "fr_linebuf.h"
#include "fr_log.h"
#include "fr_types.h"
#include "seams.h"

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
        (op[0] == 'a' ? s->ev.attach : s->ev.mode)(s->ev.arg, &u);
    } else if (strcmp(op, "detach") == 0 && unit_from(m, &u) == 0) {
        s->ev.detach(s->ev.arg, u.path, u.ecid);
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

static int sim_start(struct seams *base, uv_loop_t *loop, const struct seam_events *ev, char *err,
                     size_t errlen)
{
    struct sim_seams *s = (struct sim_seams *)base;
    s->loop = loop;
    s->ev = *ev;
    uv_timer_init(loop, &s->retry);
    s->retry.data = s;
    sim_connect(s);
    return 0;
}

static int sim_power_cycle(struct seams *base, const char *path, char *err, size_t errlen)
{
    struct sim_seams *s = (struct sim_seams *)base;
    int rc = sim_send(s, json_pack("{s:s, s:s}", "op", "power_cycle", "path", path));
    if (rc < 0)
        return fr_seterr(rc, err, errlen, "simulator not connected");
    return 0;
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
    uv_close((uv_handle_t *)&s->retry, NULL); /* embedded: freed with s after the loop ends */
    if (s->open_handles == 0 && cb)
        cb(base);
}

static void sim_destroy(struct seams *base)
{
    struct sim_seams *s = (struct sim_seams *)base;
    fr_linebuf_release(&s->lines);
    free(s);
}

int seams_sim_new(const char *socket, const char *host, struct seams **out)
{
    struct sim_seams *s = calloc(1, sizeof *s);
    if (!s)
        return FR_ENOMEM;
    s->base.name = "sim";
    s->base.start = sim_start;
    s->base.power_cycle = sim_power_cycle;
    s->base.close = sim_close;
    s->base.destroy = sim_destroy;
    s->base.impl = s;
    snprintf(s->socket, sizeof s->socket, "%s", socket);
    snprintf(s->host, sizeof s->host, "%s", host);
    fr_linebuf_init(&s->lines, SIM_LINE_MAX);
    *out = &s->base;
    return 0;
}

