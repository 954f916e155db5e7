/* flashrack-sim — serves a simulated rack on a Unix socket (sim/PROTOCOL.md).
 *
 * Owns the listening socket and the peers (agents' seams and restore engines),
 * turns protocol lines into world calls and world events into protocol lines,
 * and drives the world's clock from a libuv timer. */
#include <getopt.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <uv.h>

#include "fr_config.h"
#include "fr_err.h"
#include "fr_linebuf.h"
#include "fr_log.h"
#include "fr_types.h"
#include "engine_runs.h"
#include "muxd.h"
#include "operator.h"
#include "world.h"

#define MAX_LINE (64 * 1024)
#define TICK_MS 50

enum peer_kind { PEER_NEW, PEER_AGENT, PEER_ENGINE };

struct peer {
    uv_pipe_t pipe;
    struct sim *sim;
    enum peer_kind kind;
    int host;
    struct fr_linebuf lines;
    int in_restore;
    char ecid[FR_ECID_STRLEN]; /* engine peers: the unit being restored */
    int closing;
    struct peer *next;
};

struct sim {
    uv_loop_t *loop;
    uv_pipe_t server;
    uv_timer_t tick;
    uv_signal_t sigint, sigterm;
    uint64_t last_ms;
    struct world *world;
    struct rack *rack;
    struct peer *peers;
    char socket[108];
    struct sim_operator *op;
    struct sim_muxd *muxd;       /* the simulated usbmuxd ([sim] usbmuxd_socket), or NULL */
    struct engine_runs *runs;    /* engine runs per unit ({"op":"runs"}) */
};

static void peer_close(struct peer *p);

static void on_write_done(uv_write_t *req, int status)
{
    free(req->data);
    free(req);
}

static void peer_send(struct peer *p, json_t *obj)
{
    char *text = json_dumps(obj, JSON_COMPACT);
    json_decref(obj);
    if (!text || p->closing) {
        free(text);
        return;
    }
    size_t n = strlen(text);
    char *line = realloc(text, n + 2);
    if (!line) {
        free(text);
        return;
    }
    line[n] = '\n';
    line[n + 1] = '\0';
    uv_write_t *req = malloc(sizeof *req);
    uv_buf_t buf = uv_buf_init(line, (unsigned)(n + 1));
    req->data = line;
    if (uv_write(req, (uv_stream_t *)&p->pipe, &buf, 1, on_write_done) < 0) {
        free(line);
        free(req);
    }
}

static void send_error(struct peer *p, const char *msg)
{
    peer_send(p, json_pack("{s:s, s:s}", "op", "error", "error", msg));
}

static json_t *port_json(const struct rack *r, int i)
{
    const struct rack_port *p = &r->ports[i];
    return json_pack("{s:s, s:s, s:s, s:i, s:i, s:b}", "path", p->path, "label", p->label, "hub",
                     r->hubs[p->hub].name, "bus", p->bus, "depth", p->depth, "power_switch",
                     p->power_switch);
}

static json_t *unit_json(const struct rack *r, const char *op, int port, int unit)
{
    const struct rack_unit *u = &r->units[unit];
    char ecid[FR_ECID_STRLEN], udid[48];
    fr_ecid_format(u->ecid, ecid, sizeof ecid);
    rack_unit_udid(u, udid, sizeof udid); /* the USB serial string of normal/restore mode */
    if (strcmp(op, "detach") == 0)
        return json_pack("{s:s, s:s, s:s, s:s}", "op", op, "path", r->ports[port].path, "ecid",
                         ecid, "udid", udid);
    return json_pack("{s:s, s:s, s:s, s:s, s:s, s:i, s:i, s:s, s:s}", "op", op, "path",
                     r->ports[port].path, "ecid", ecid, "mode", fr_mode_name(u->mode),
                     "product_type", u->product_type, "cpid", (int)u->cpid, "bdid", (int)u->bdid,
                     "serial", u->serial, "udid", udid);
}

static struct peer *host_peer(struct sim *s, int host)
{
    struct peer *found = NULL;
    for (struct peer *p = s->peers; p; p = p->next)
        if (p->kind == PEER_AGENT && p->host == host && !p->closing)
            found = p; /* the newest connection for a host wins */
    return found;
}

/* ---- world callbacks ---------------------------------------------------- */

static void on_world_unit(void *arg, const char *op, int port, int unit)
{
    struct sim *s = arg;
    const struct rack_unit *u = &s->rack->units[unit];
    char ecid[FR_ECID_STRLEN];
    fr_ecid_format(u->ecid, ecid, sizeof ecid);
    fr_debug("sim", "%s %s on %s (%s)", op, ecid, s->rack->ports[port].label, fr_mode_name(u->mode));
    struct peer *p = host_peer(s, s->rack->ports[port].host);
    if (p)
        peer_send(p, unit_json(s->rack, op, port, unit));
    muxd_on_unit(s->muxd, op, port, unit);
}

static void on_world_out(void *arg, void *owner, int stream, const char *text)
{
    peer_send(owner, json_pack("{s:s, s:s, s:s}", "op", "out", "stream",
                               stream == 2 ? "stderr" : "stdout", "text", text));
}

static void on_world_exit(void *arg, void *owner, int code)
{
    struct peer *p = owner;
    p->in_restore = 0;
    engine_runs_ended(p->sim->runs, p->ecid, code);
    fr_info("sim", "restore of %s ended: exit %d", p->ecid, code);
    peer_send(p, json_pack("{s:s, s:i}", "op", "exit", "code", code));
}

/* ---- requests ------------------------------------------------------------ */

static void op_hello(struct peer *p, json_t *req)
{
    struct sim *s = p->sim;
    const char *host = json_string_value(json_object_get(req, "host"));
    int h = host ? rack_find_host(s->rack, host) : -1;
    if (h < 0) {
        char msg[96];
        snprintf(msg, sizeof msg, "unknown host '%s'", host ? host : "");
        send_error(p, msg);
        peer_close(p);
        return;
    }
    p->kind = PEER_AGENT;
    p->host = h;
    fr_info("sim", "agent connected for host '%s'", host);
    json_t *ports = json_array();
    for (size_t i = 0; i < s->rack->nports; i++)
        if (s->rack->ports[i].host == h)
            json_array_append_new(ports, port_json(s->rack, (int)i));
    peer_send(p, json_pack("{s:s, s:s, s:o}", "op", "topology", "host", host, "ports", ports));
    for (size_t i = 0; i < s->rack->nports; i++)
        if (s->rack->ports[i].host == h && s->rack->ports[i].unit >= 0)
            peer_send(p, unit_json(s->rack, "attach", (int)i, s->rack->ports[i].unit));
}

static void op_power_cycle(struct peer *p, json_t *req)
{
    const char *path = json_string_value(json_object_get(req, "path"));
    int port = p->kind == PEER_AGENT && path ? rack_find_port_path(p->sim->rack, p->host, path) : -1;
    char err[128] = "no such port on this host";
    int ok = port >= 0 && world_power_cycle(p->sim->world, port, err, sizeof err) == 0;
    json_t *reply = json_pack("{s:s, s:s, s:b}", "op", "power_cycle", "path", path ? path : "",
                              "ok", ok);
    if (!ok)
        json_object_set_new(reply, "error", json_string(err));
    peer_send(p, reply);
}

static void op_restore(struct peer *p, json_t *req)
{
    uint64_t ecid = 0;
    const char *e = json_string_value(json_object_get(req, "ecid"));
    if (!e || fr_ecid_parse(e, &ecid) < 0) {
        send_error(p, "restore: 'ecid' must be an ECID string");
        return;
    }
    p->kind = PEER_ENGINE;
    p->in_restore = 1;
    fr_ecid_format(ecid, p->ecid, sizeof p->ecid);
    fr_info("sim", "restore started for %s", p->ecid);
    engine_runs_started(p->sim->runs, p->ecid);
    world_restore_start(p->sim->world, p, ecid, json_is_true(json_object_get(req, "erase")),
                        json_string_value(json_object_get(req, "version")),
                        json_string_value(json_object_get(req, "build")));
}

static void op_move(struct peer *p, json_t *req)
{
    uint64_t ecid = 0;
    const char *e = json_string_value(json_object_get(req, "ecid"));
    const char *to = json_string_value(json_object_get(req, "to"));
    int port = to ? rack_find_port_label(p->sim->rack, to) : -1;
    char err[128] = "expected 'ecid' and 'to' (a port label)";
    int ok = e && fr_ecid_parse(e, &ecid) == 0 && port >= 0 &&
             world_move(p->sim->world, ecid, port, json_is_true(json_object_get(req, "dfu")), err,
                        sizeof err) == 0;
    json_t *reply = json_pack("{s:s, s:b}", "op", "move", "ok", ok);
    if (!ok)
        json_object_set_new(reply, "error", json_string(err));
    peer_send(p, reply);
}

static void op_stats(struct peer *p, json_t *req)
{
    const struct world_stats *st = world_stats(p->sim->world);
    json_t *doc = json_pack("{s:s, s:f, s:i, s:i, s:i, s:i, s:i, s:i, s:i, s:i}", "op", "stats",
                            "sim_time", world_now(p->sim->world), "active",
                            world_active(p->sim->world), "started", st->restores_started,
                            "restored", st->restored, "link_lost", st->link_lost, "disk_failures",
                            st->disk_failures, "aborted", st->aborted, "moves", st->moves,
                            "power_cycles", st->power_cycles);
    json_object_update_new(doc, json_pack("{s:i, s:i, s:i, s:i, s:f, s:f}", "phase_failures",
                                      st->phase_failures, "peak_data_on_bus", st->peak_data_on_bus,
                                      "peak_on_bus", st->peak_on_bus, "touches", st->touches,
                                      "tech_busy_s", st->tech_busy_s, "tech_wait_s",
                                      st->tech_wait_s));
    peer_send(p, doc);
}

static void op_runs(struct peer *p, json_t *req)
{
    peer_send(p, json_pack("{s:s, s:o}", "op", "runs", "units", engine_runs_json(p->sim->runs)));
}

static void handle_line(struct peer *p, const char *line)
{
    json_error_t jerr;
    json_t *req = json_loads(line, 0, &jerr);
    const char *op = req ? json_string_value(json_object_get(req, "op")) : NULL;
    static const struct { const char *op; void (*fn)(struct peer *, json_t *); } ops[] = {
        { "hello", op_hello }, { "power_cycle", op_power_cycle }, { "restore", op_restore },
        { "move", op_move },   { "stats", op_stats },
        { "runs", op_runs },
    };
    size_t i = 0;
    for (; op && i < sizeof ops / sizeof ops[0]; i++)
        if (strcmp(op, ops[i].op) == 0) {
            ops[i].fn(p, req);
            break;
        }
    if (!req || !op || i == sizeof ops / sizeof ops[0]) {
        char msg[300];
        snprintf(msg, sizeof msg, !req ? "bad JSON: %s" : !op ? "missing 'op'%s" : "unknown op '%s'",
                 !req ? jerr.text : op ? op : "");
        send_error(p, msg);
    }
    json_decref(req);
}

/* ---- connections ----------------------------------------------------------- */

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    buf->base = malloc(16384);
    buf->len = buf->base ? 16384 : 0;
}

static void on_peer_closed(uv_handle_t *h)
{
    struct peer *p = h->data;
    fr_linebuf_release(&p->lines);
    free(p);
}

static void peer_close(struct peer *p)
{
    if (p->closing)
        return;
    p->closing = 1;
    if (p->in_restore) {
        world_restore_abort(p->sim->world, p);
        engine_runs_ended(p->sim->runs, p->ecid, -1);
    }
    for (struct peer **pp = &p->sim->peers; *pp; pp = &(*pp)->next)
        if (*pp == p) {
            *pp = p->next;
            break;
        }
    uv_close((uv_handle_t *)&p->pipe, on_peer_closed);
}

static int on_peer_line(void *arg, char *line)
{
    struct peer *p = arg;
    handle_line(p, line);
    return p->closing;
}

static void on_peer_read(uv_stream_t *st, ssize_t n, const uv_buf_t *buf)
{
    struct peer *p = st->data;
    size_t dropped = p->lines.dropped;
    if (n < 0 || fr_linebuf_feed(&p->lines, buf->base, (size_t)n, on_peer_line, p) < 0) {
        free(buf->base);
        peer_close(p);
        return;
    }
    free(buf->base);
    if (p->lines.dropped != dropped)
        send_error(p, "line longer than 64 KiB");
}

static void on_connection(uv_stream_t *server, int status)
{
    struct sim *s = server->data;
    if (status < 0)
        return;
    struct peer *p = calloc(1, sizeof *p);
    if (!p)
        return;
    p->sim = s;
    p->host = -1;
    fr_linebuf_init(&p->lines, MAX_LINE);
    uv_pipe_init(s->loop, &p->pipe, 0);
    p->pipe.data = p;
    if (uv_accept(server, (uv_stream_t *)&p->pipe) < 0) {
        uv_close((uv_handle_t *)&p->pipe, on_peer_closed);
        return;
    }
    p->next = s->peers;
    s->peers = p;
    uv_read_start((uv_stream_t *)&p->pipe, on_alloc, on_peer_read);
}

static void on_tick(uv_timer_t *t)
{
    struct sim *s = t->data;
    uint64_t now = uv_now(s->loop);
    double dt = (double)(now - s->last_ms) / 1000.0 * s->rack->sim.time_scale;
    s->last_ms = now;
    world_tick(s->world, dt);
}

static void on_closed_quietly(uv_handle_t *h)
{
}

/* Closes every handle so the loop ends by itself and nothing leaks. */
static void sim_shutdown(struct sim *s)
{
    while (s->peers)
        peer_close(s->peers);
    uv_close((uv_handle_t *)&s->server, on_closed_quietly);
    uv_close((uv_handle_t *)&s->tick, on_closed_quietly);
    uv_close((uv_handle_t *)&s->sigint, on_closed_quietly);
    uv_close((uv_handle_t *)&s->sigterm, on_closed_quietly);
    operator_stop(s->op);
    muxd_close(s->muxd);
    s->muxd = NULL;
}

static void on_signal(uv_signal_t *h, int signum)
{
    struct sim *s = h->data;
    const struct world_stats *st = world_stats(s->world);
    fr_info("sim", "stopping: %d restores started, %d restored, %d lost link, %d disk failures, "
            "%d aborted, %d moves, %d power cycles", st->restores_started, st->restored,
            st->link_lost, st->disk_failures, st->aborted, st->moves, st->power_cycles);
    sim_shutdown(s);
}

static void usage(FILE *out)
{
    fprintf(out, "usage: flashrack-sim RACK.ini [--socket PATH] [--usbmuxd PATH] [--seed N]\n"
                 "                     [--usbmuxd-tcp HOST:PORT] [--time-scale X] [--operator ENDPOINT]\n"
                 "                     [--log-level debug|info|warn|error] [--help] [--version]\n"
                 "  --operator ENDPOINT  a simulated technician follows the move instructions\n"
                 "                       of the controller at ENDPOINT (its clients endpoint)\n"
                 "  --usbmuxd PATH       also serve a usbmuxd socket for the units in normal\n"
                 "                       and restore mode (USBMUXD_SOCKET_ADDRESS=UNIX:PATH)\n"
                 "  --usbmuxd-tcp HOST:PORT  serve the same usbmuxd on TCP, loopback only\n"
                 "                       (USBMUXD_SOCKET_ADDRESS=HOST:PORT), with or without --usbmuxd\n"
                 "Serves a simulated rack of USB hubs and phones on a Unix socket for\n"
                 "flashrack-agent (seams 'sim') and flashrack-sim-restore.\n");
}

static int parse_args(int argc, char **argv, struct rack *rack, const char **path,
                      const char **operator_ep, const char **muxd_tcp)
{
    static const struct option opts[] = {
        { "socket", required_argument, NULL, 's' }, { "seed", required_argument, NULL, 'S' },
        { "time-scale", required_argument, NULL, 't' }, { "log-level", required_argument, NULL, 'l' },
        { "operator", required_argument, NULL, 'o' }, { "usbmuxd", required_argument, NULL, 'u' },
        { "usbmuxd-tcp", required_argument, NULL, 'T' },
        { "help", no_argument, NULL, 'h' }, { "version", no_argument, NULL, 'V' },
        { NULL, 0, NULL, 0 },
    };
    const char *sock = NULL, *seed = NULL, *scale = NULL, *muxd = NULL;
    int c;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 's': sock = optarg; break;
        case 'S': seed = optarg; break;
        case 't': scale = optarg; break;
        case 'o': *operator_ep = optarg; break;
        case 'u': muxd = optarg; break;
        case 'T': *muxd_tcp = optarg; break;
        case 'l':
            if (fr_log_level_parse(optarg) < 0)
                return fprintf(stderr, "flashrack-sim: --log-level: expected debug, info, warn or error\n"), 2;
            fr_log_set_level(fr_log_level_parse(optarg));
            break;
        case 'h': usage(stdout); exit(0);
        case 'V': printf("flashrack-sim %s\n", FR_VERSION); exit(0);
        default: usage(stderr); return 2;
        }
    }
    if (optind != argc - 1) {
        usage(stderr);
        return 2;
    }
    *path = argv[optind];
    char err[512];
    if (rack_load(*path, rack, err, sizeof err) < 0) {
        fprintf(stderr, "flashrack-sim: %s\n", err);
        return 2;
    }
    long long v;
    double d;
    if (seed && fr_cfg_parse_int(seed, 0, INT64_MAX, &v) < 0)
        return fprintf(stderr, "flashrack-sim: --seed: expected a non-negative integer, got '%s'\n", seed), 2;
    if (seed)
        rack->sim.seed = (uint64_t)v;
    if (scale && fr_cfg_parse_double(scale, 0.01, 100000, &d) < 0)
        return fprintf(stderr, "flashrack-sim: --time-scale: expected 0.01..100000, got '%s'\n", scale), 2;
    if (scale)
        rack->sim.time_scale = d;
    if (sock)
        snprintf(rack->sim.socket, sizeof rack->sim.socket, "%s", sock);
    if (muxd && strlen(muxd) >= sizeof rack->sim.usbmuxd_socket)
        return fprintf(stderr, "flashrack-sim: --usbmuxd: path longer than %zu bytes\n",
                       sizeof rack->sim.usbmuxd_socket - 1), 2;
    if (muxd)
        snprintf(rack->sim.usbmuxd_socket, sizeof rack->sim.usbmuxd_socket, "%s", muxd);
    return 0;
}

static int listen_on(struct sim *s)
{
    unlink(s->rack->sim.socket); /* a stale socket from an earlier run */
    uv_pipe_init(s->loop, &s->server, 0);
    s->server.data = s;
    int rc = uv_pipe_bind(&s->server, s->rack->sim.socket);
    if (rc == 0)
        rc = uv_listen((uv_stream_t *)&s->server, 128, on_connection);
    if (rc < 0) {
        fr_error("sim", "cannot listen on '%s': %s", s->rack->sim.socket, uv_strerror(rc));
        return -1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    fr_log_init("flashrack-sim", FR_LOG_INFO, NULL);
    signal(SIGPIPE, SIG_IGN);
    struct rack *rack = calloc(1, sizeof *rack);
    const char *path = NULL, *operator_ep = NULL, *muxd_tcp = NULL;
    int rc = parse_args(argc, argv, rack, &path, &operator_ep, &muxd_tcp);
    if (rc) {
        free(rack);
        return rc;
    }
    struct sim s = { .loop = uv_default_loop(), .rack = rack };
    struct world_io io = { on_world_unit, on_world_out, on_world_exit, &s };
    s.world = world_new(rack, &io);
    s.runs = engine_runs_new();
    if (!s.runs || listen_on(&s) < 0)
        return 1;
    char err[256];
    if ((rack->sim.usbmuxd_socket[0] || muxd_tcp) &&
        muxd_start(&s.muxd, s.loop, s.world, rack->sim.usbmuxd_socket, muxd_tcp, err,
                   sizeof err) < 0) {
        fr_error("sim", "usbmuxd: %s", err);
        return 1;
    }
    if (s.muxd && rack->sim.usbmuxd_socket[0])
        fr_info("sim", "usbmuxd socket '%s' (USBMUXD_SOCKET_ADDRESS=UNIX:%s)",
                rack->sim.usbmuxd_socket, rack->sim.usbmuxd_socket);
    if (s.muxd && muxd_tcp)
        fr_info("sim", "usbmuxd on TCP '%s' (USBMUXD_SOCKET_ADDRESS=%s)", muxd_tcp, muxd_tcp);
    fr_info("sim", "rack '%s': %zu hosts, %zu hubs, %zu ports, %zu units, seed %llu, time scale %g; "
            "listening on '%s'", path, rack->nhosts, rack->nhubs, rack->nports, rack->nunits,
            (unsigned long long)rack->sim.seed, rack->sim.time_scale, rack->sim.socket);
    uv_timer_init(s.loop, &s.tick);
    s.tick.data = &s;
    s.last_ms = uv_now(s.loop);
    uv_timer_start(&s.tick, on_tick, TICK_MS, TICK_MS);
    uv_signal_init(s.loop, &s.sigint);
    uv_signal_init(s.loop, &s.sigterm);
    s.sigint.data = s.sigterm.data = &s;
    uv_signal_start(&s.sigint, on_signal, SIGINT);
    uv_signal_start(&s.sigterm, on_signal, SIGTERM);
    if (operator_ep && operator_start(&s.op, s.loop, s.world, operator_ep, 500) < 0)
        return 2;
    uv_run(s.loop, UV_RUN_DEFAULT);
    operator_destroy(&s.op);
    uv_loop_close(s.loop);
    unlink(rack->sim.socket);
    world_destroy(&s.world);
    engine_runs_free(s.runs);
    free(rack);
    return 0;
}
