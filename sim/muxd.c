/* muxd — the simulator's usbmuxd socket; see muxd.h. */
#include "muxd.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fr_log.h"
#include "fr_muxd_addr.h"
#include "fr_types.h"
#include "lockdown.h"
#include "fr_mux_wire.h"

#define LOCKDOWN_PORT 62078
#define APPLE_PID_NORMAL 0x12a8  /* an iPhone in normal or restore mode (05ac:12a8) */
#define MUX_READ_MAX (MUX_MAX_MESSAGE + MUX_HEADER_LEN)

enum client_state { CLIENT_COMMAND, CLIENT_LISTEN, CLIENT_TUNNEL };

struct mux_client {
    union {                      /* accepted on the Unix socket or on the TCP port */
        uv_handle_t handle;
        uv_stream_t stream;
        uv_pipe_t pipe;
        uv_tcp_t tcp;
    } io;
    uv_shutdown_t shutdown;
    struct sim_muxd *m;
    enum client_state state;
    uint8_t *buf;
    size_t len;
    int unit;                    /* tunnel: the unit behind it */
    uint32_t device_id;          /* tunnel: the DeviceID it was opened to */
    struct lockdown_session ld;
    int closing;
    struct mux_client *next;
};

/* What the mux shows of one unit (index = rack unit). */
struct mux_device {
    uint32_t id;                 /* DeviceID, 0 when not on the mux */
    uint32_t location;
    int mode;                    /* the mode it appeared in */
};

struct sim_muxd {
    uv_loop_t *loop;
    uv_pipe_t server;            /* the Unix socket, when path is set */
    uv_tcp_t tcp_server;         /* the TCP port, when tcp is set */
    struct world *world;
    struct rack *rack;
    struct mux_device *devices;
    uint32_t next_id;
    uint32_t next_address;
    char buid[48];
    char path[108];
    char tcp[64];                /* "127.0.0.1:27015", "" when not served */
    struct mux_client *clients;
    int handles;                 /* open uv handles (server + clients) */
    int closing;
};

static void client_close(struct mux_client *c, const char *why);

static void maybe_free(struct sim_muxd *m)
{
    if (m->closing && m->handles == 0) {
        free(m->devices);
        free(m);
    }
}

static void on_write_done(uv_write_t *req, int status)
{
    free(req->data);
    free(req);
}

static void send_bytes(struct mux_client *c, uint8_t *data, size_t n)
{
    uv_write_t *req = malloc(sizeof *req);
    if (!req || c->closing) {
        free(req);
        free(data);
        return;
    }
    req->data = data;
    uv_buf_t b = uv_buf_init((char *)data, (unsigned)n);
    if (uv_write(req, &c->io.stream, &b, 1, on_write_done) < 0) {
        free(data);
        free(req);
    }
}

/* Sends a usbmuxd message and frees dict. */
static void send_plist(struct mux_client *c, uint32_t tag, plist_t dict)
{
    uint8_t *out;
    size_t n;
    if (mux_wire_encode(tag, dict, &out, &n) == 0)
        send_bytes(c, out, n);
    plist_free(dict);
}

static void send_result(struct mux_client *c, uint32_t tag, uint32_t number)
{
    plist_t d = plist_new_dict();
    plist_dict_set_item(d, "MessageType", plist_new_string("Result"));
    plist_dict_set_item(d, "Number", plist_new_uint(number));
    send_plist(c, tag, d);
}

static int visible_mode(int mode)
{
    return mode == 3 || mode == 4; /* restore, normal */
}

static plist_t attached(struct sim_muxd *m, int unit)
{
    const struct rack_unit *u = &m->rack->units[unit];
    const struct mux_device *d = &m->devices[unit];
    char udid[48];
    rack_unit_udid(u, udid, sizeof udid);
    plist_t props = plist_new_dict();
    plist_dict_set_item(props, "ConnectionSpeed", plist_new_uint(480000000));
    plist_dict_set_item(props, "ConnectionType", plist_new_string("USB"));
    plist_dict_set_item(props, "DeviceID", plist_new_uint(d->id));
    plist_dict_set_item(props, "LocationID", plist_new_uint(d->location));
    plist_dict_set_item(props, "ProductID", plist_new_uint(APPLE_PID_NORMAL));
    plist_dict_set_item(props, "SerialNumber", plist_new_string(udid));
    plist_t dict = plist_new_dict();
    plist_dict_set_item(dict, "MessageType", plist_new_string("Attached"));
    plist_dict_set_item(dict, "DeviceID", plist_new_uint(d->id));
    plist_dict_set_item(dict, "Properties", props);
    return dict;
}

static void push_to_listeners(struct sim_muxd *m, plist_t dict)
{
    for (struct mux_client *c = m->clients; c; c = c->next)
        if (c->state == CLIENT_LISTEN && !c->closing)
            send_plist(c, 0, plist_copy(dict));
    plist_free(dict);
}

static void device_appear(struct sim_muxd *m, int unit)
{
    const struct rack_unit *u = &m->rack->units[unit];
    struct mux_device *d = &m->devices[unit];
    d->id = m->next_id++;
    d->mode = u->mode;
    /* a new USB address at every enumeration: LocationID never names a port for long */
    uint32_t bus = (uint32_t)m->rack->ports[u->port].bus;
    d->location = bus << 16 | (m->next_address++ % 127 + 1);
    push_to_listeners(m, attached(m, unit));
}

static void device_vanish(struct sim_muxd *m, int unit)
{
    struct mux_device *d = &m->devices[unit];
    uint32_t id = d->id;
    d->id = 0;
    for (struct mux_client *c = m->clients; c; c = c->next)
        if (c->state == CLIENT_TUNNEL && c->device_id == id)
            client_close(c, "the unit left");
    plist_t dict = plist_new_dict();
    plist_dict_set_item(dict, "MessageType", plist_new_string("Detached"));
    plist_dict_set_item(dict, "DeviceID", plist_new_uint(id));
    push_to_listeners(m, dict);
}

void muxd_on_unit(struct sim_muxd *m, const char *op, int port, int unit)
{
    if (!m || m->closing || unit < 0 || (size_t)unit >= m->rack->nunits)
        return;
    const struct rack_unit *u = &m->rack->units[unit];
    int now = strcmp(op, "detach") != 0 && u->port >= 0 && visible_mode(u->mode);
    struct mux_device *d = &m->devices[unit];
    /* normal <-> restore is a new USB device too */
    if (d->id && (!now || d->mode != u->mode))
        device_vanish(m, unit);
    if (now && !d->id)
        device_appear(m, unit);
}

static int unit_by_device(struct sim_muxd *m, uint64_t id)
{
    for (size_t i = 0; i < m->rack->nunits; i++)
        if (m->devices[i].id && m->devices[i].id == id)
            return (int)i;
    return -1;
}

static int unit_by_udid(struct sim_muxd *m, const char *udid)
{
    char buf[48];
    for (size_t i = 0; udid && i < m->rack->nunits; i++) {
        rack_unit_udid(&m->rack->units[i], buf, sizeof buf);
        if (strcmp(buf, udid) == 0)
            return (int)i;
    }
    return -1;
}

static void op_list_devices(struct mux_client *c, uint32_t tag)
{
    plist_t list = plist_new_array();
    for (size_t i = 0; i < c->m->rack->nunits; i++)
        if (c->m->devices[i].id)
            plist_array_append_item(list, attached(c->m, (int)i));
    plist_t d = plist_new_dict();
    plist_dict_set_item(d, "DeviceList", list);
    send_plist(c, tag, d);
}

static void op_listen(struct mux_client *c, uint32_t tag)
{
    send_result(c, tag, MUX_RESULT_OK);
    c->state = CLIENT_LISTEN;
    for (size_t i = 0; i < c->m->rack->nunits; i++)
        if (c->m->devices[i].id)
            send_plist(c, 0, attached(c->m, (int)i));
}

static void op_connect(struct mux_client *c, uint32_t tag, plist_t req)
{
    uint64_t id = 0, port = 0;
    int unit = mux_dict_uint(req, "DeviceID", &id) == 0 ? unit_by_device(c->m, id) : -1;
    if (unit < 0) {
        send_result(c, tag, MUX_RESULT_BADDEV);
        return;
    }
    if (mux_dict_uint(req, "PortNumber", &port) < 0) {
        send_result(c, tag, MUX_RESULT_BADCOMMAND);
        return;
    }
    if (ntohs((uint16_t)port) != LOCKDOWN_PORT) {
        send_result(c, tag, MUX_RESULT_CONNREFUSED);
        return;
    }
    send_result(c, tag, MUX_RESULT_OK);
    c->state = CLIENT_TUNNEL; /* from here on the bytes are lockdownd's */
    c->unit = unit;
    c->device_id = (uint32_t)id;
    memset(&c->ld, 0, sizeof c->ld);
}

static void op_read_buid(struct mux_client *c, uint32_t tag)
{
    plist_t d = plist_new_dict();
    plist_dict_set_item(d, "BUID", plist_new_string(c->m->buid));
    send_plist(c, tag, d);
}

static void op_read_pair_record(struct mux_client *c, uint32_t tag, plist_t req)
{
    int unit = unit_by_udid(c->m, mux_dict_string(req, "PairRecordID"));
    plist_t rec = unit >= 0 ? lockdown_pair_record(&c->m->rack->units[unit], c->m->buid) : NULL;
    if (!rec) {
        send_result(c, tag, MUX_RESULT_ENOENT); /* this host holds no pair record for it */
        return;
    }
    char *xml = NULL;
    uint32_t n = 0;
    plist_to_xml(rec, &xml, &n);
    plist_free(rec);
    plist_t d = plist_new_dict();
    plist_dict_set_item(d, "PairRecordData", plist_new_data(xml ? xml : "", xml ? n : 0));
    free(xml);
    send_plist(c, tag, d);
}

static void handle_command(struct mux_client *c, uint32_t tag, plist_t req)
{
    const char *type = mux_dict_string(req, "MessageType");
    if (!type) {
        fr_warn("muxd", "client sent a plist without MessageType; answering BadCommand");
        send_result(c, tag, MUX_RESULT_BADCOMMAND);
    } else if (strcmp(type, "ListDevices") == 0) {
        op_list_devices(c, tag);
    } else if (strcmp(type, "Listen") == 0) {
        op_listen(c, tag);
    } else if (strcmp(type, "Connect") == 0) {
        op_connect(c, tag, req);
    } else if (strcmp(type, "ReadBUID") == 0) {
        op_read_buid(c, tag);
    } else if (strcmp(type, "ReadPairRecord") == 0) {
        op_read_pair_record(c, tag, req);
    } else {
        fr_debug("muxd", "unsupported request '%s': BadCommand", type);
        send_result(c, tag, MUX_RESULT_BADCOMMAND);
    }
}

static void handle_lockdown(struct mux_client *c, plist_t req)
{
    struct sim_muxd *m = c->m;
    const struct rack_unit *u = &m->rack->units[c->unit];
    enum lockdown_effect effect;
    plist_t answer = lockdown_answer(&c->ld, u, m->buid, req, &effect);
    uint8_t *out;
    size_t n;
    if (lockdown_wire_encode(answer, &out, &n) == 0)
        send_bytes(c, out, n);
    plist_free(answer);
    char ecid[FR_ECID_STRLEN];
    fr_ecid_format(u->ecid, ecid, sizeof ecid);
    if (effect == LOCKDOWN_ENTER_RECOVERY) {
        fr_info("muxd", "unit %s: lockdown EnterRecovery: rebooting into recovery mode", ecid);
        world_enter_recovery(m->world, c->unit); /* its detach closes this tunnel */
    } else if (effect == LOCKDOWN_GOODBYE) {
        client_close(c, "goodbye");
    }
}

/* Handles whole messages in the buffer; stops when the client is closing. */
static void process(struct mux_client *c)
{
    size_t off = 0;
    while (!c->closing && off < c->len) {
        char err[160] = "";
        plist_t dict = NULL;
        size_t used = 0;
        struct mux_header hdr = { 0 };
        enum mux_parse r = c->state == CLIENT_TUNNEL
            ? lockdown_wire_parse(c->buf + off, c->len - off, &dict, &used, err, sizeof err)
            : mux_wire_parse(c->buf + off, c->len - off, &hdr, &dict, &used, err, sizeof err);
        if (r == MUX_PARSE_NEED_MORE)
            break;
        off += used;
        if (r == MUX_PARSE_FATAL) {
            fr_warn("muxd", "client sent %s; closing it", err);
            client_close(c, NULL);
        } else if (r == MUX_PARSE_SKIP) {
            fr_warn("muxd", "client: %s", err);
            send_result(c, hdr.tag, hdr.version != MUX_VERSION_PLIST ? MUX_RESULT_BADVERSION
                                                                    : MUX_RESULT_BADCOMMAND);
        } else if (c->state == CLIENT_TUNNEL) {
            handle_lockdown(c, dict);
        } else {
            handle_command(c, hdr.tag, dict);
        }
        plist_free(dict);
    }
    memmove(c->buf, c->buf + off, c->len - off);
    c->len -= off;
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *b)
{
    struct mux_client *c = h->data;
    size_t room = MUX_READ_MAX - c->len;
    b->base = (char *)c->buf + c->len;
    b->len = room > 65536 ? 65536 : room;
}

static void on_read(uv_stream_t *st, ssize_t n, const uv_buf_t *b)
{
    struct mux_client *c = st->data;
    if (n < 0) {
        client_close(c, NULL);
        return;
    }
    c->len += (size_t)n;
    process(c);
    if (!c->closing && c->len == MUX_READ_MAX) {
        fr_warn("muxd", "client message larger than %u bytes; closing it", MUX_READ_MAX);
        client_close(c, NULL);
    }
}

static void on_client_closed(uv_handle_t *h)
{
    struct mux_client *c = h->data;
    struct sim_muxd *m = c->m;
    free(c->buf);
    free(c);
    m->handles--;
    maybe_free(m);
}

static void on_shutdown(uv_shutdown_t *req, int status)
{
    uv_close((uv_handle_t *)req->handle, on_client_closed);
}

/* Ends a client after what it was sent has gone out (an answer before a reboot). */
static void client_close(struct mux_client *c, const char *why)
{
    if (c->closing)
        return;
    c->closing = 1;
    if (why)
        fr_debug("muxd", "closing a client: %s", why);
    for (struct mux_client **pp = &c->m->clients; *pp; pp = &(*pp)->next)
        if (*pp == c) {
            *pp = c->next;
            break;
        }
    uv_read_stop(&c->io.stream);
    if (uv_shutdown(&c->shutdown, &c->io.stream, on_shutdown) < 0)
        uv_close(&c->io.handle, on_client_closed);
}

static void on_connection(uv_stream_t *server, int status)
{
    struct sim_muxd *m = server->data;
    struct mux_client *c = status < 0 ? NULL : calloc(1, sizeof *c);
    uint8_t *buf = c ? malloc(MUX_READ_MAX) : NULL;
    if (!buf) {
        free(c);
        return;
    }
    c->m = m;
    c->buf = buf;
    c->unit = -1;
    if (server == (uv_stream_t *)&m->tcp_server)
        uv_tcp_init(m->loop, &c->io.tcp);
    else
        uv_pipe_init(m->loop, &c->io.pipe, 0);
    c->io.handle.data = c;
    m->handles++;
    if (uv_accept(server, &c->io.stream) < 0) {
        uv_close(&c->io.handle, on_client_closed);
        return;
    }
    c->next = m->clients;
    m->clients = c;
    uv_read_start(&c->io.stream, on_alloc, on_read);
}

static void on_server_closed(uv_handle_t *h)
{
    struct sim_muxd *m = h->data;
    if (h == (uv_handle_t *)&m->server)
        unlink(m->path);
    m->handles--;
    maybe_free(m);
}

static int listen_unix(struct sim_muxd *m, const char *path, char *err, size_t errlen)
{
    unlink(path); /* a stale socket from an earlier run */
    uv_pipe_init(m->loop, &m->server, 0);
    m->server.data = m;
    m->handles++;
    snprintf(m->path, sizeof m->path, "%s", path);
    int rc = uv_pipe_bind(&m->server, path);
    if (rc == 0)
        rc = uv_listen((uv_stream_t *)&m->server, 64, on_connection);
    if (rc < 0)
        snprintf(err, errlen, "cannot listen on '%s': %s", path, uv_strerror(rc));
    return rc;
}

/* The simulator answers anyone who connects, without pairing: loopback only. */
static int is_loopback(const struct sockaddr_storage *ss)
{
    if (ss->ss_family == AF_INET)
        return (ntohl(((const struct sockaddr_in *)ss)->sin_addr.s_addr) >> 24) == 127;
    return ss->ss_family == AF_INET6 &&
           IN6_IS_ADDR_LOOPBACK(&((const struct sockaddr_in6 *)ss)->sin6_addr);
}

static int listen_tcp(struct sim_muxd *m, const char *tcp, char *err, size_t errlen)
{
    struct fr_muxd_addr a;
    struct sockaddr_storage ss;
    socklen_t len;
    uv_tcp_init(m->loop, &m->tcp_server);
    m->tcp_server.data = m;
    m->handles++;
    if (strncmp(tcp, "UNIX:", 5) == 0)
        return snprintf(err, errlen, "TCP address '%s': expected HOST:PORT", tcp), -1;
    if (fr_muxd_addr_parse(tcp, "", &a, err, errlen) < 0 ||
        fr_muxd_addr_resolve(&a, &ss, &len, err, errlen) < 0)
        return -1;
    if (!is_loopback(&ss))
        return snprintf(err, errlen, "TCP address '%s': expected a loopback address (127.0.0.1 or "
                        "[::1]): the simulator lets anyone who connects in", tcp), -1;
    snprintf(m->tcp, sizeof m->tcp, "%s", tcp);
    int rc = uv_tcp_bind(&m->tcp_server, (const struct sockaddr *)&ss, 0);
    if (rc == 0)
        rc = uv_listen((uv_stream_t *)&m->tcp_server, 64, on_connection);
    if (rc < 0)
        snprintf(err, errlen, "cannot listen on TCP '%s': %s", tcp, uv_strerror(rc));
    return rc;
}

int muxd_start(struct sim_muxd **out, uv_loop_t *loop, struct world *w, const char *path,
               const char *tcp, char *err, size_t errlen)
{
    struct sim_muxd *m = calloc(1, sizeof *m);
    struct rack *r = world_rack(w);
    if (m)
        m->devices = calloc(r->nunits ? r->nunits : 1, sizeof *m->devices);
    if (!m || !m->devices) {
        free(m);
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    m->loop = loop;
    m->world = w;
    m->rack = r;
    m->next_id = 1;
    uint64_t s = r->sim.seed * 0x9E3779B97F4A7C15ull;
    snprintf(m->buid, sizeof m->buid, "%08X-%04X-4%03X-8%03X-%012llX", (unsigned)(s >> 32),
             (unsigned)(s >> 16) & 0xFFFF, (unsigned)s & 0xFFF, (unsigned)(s >> 20) & 0xFFF,
             (unsigned long long)(s & 0xFFFFFFFFFFFFull));
    for (size_t i = 0; i < r->nunits; i++)
        if (r->units[i].port >= 0 && visible_mode(r->units[i].mode))
            device_appear(m, (int)i);
    int rc = 0;
    if (path && *path)
        rc = listen_unix(m, path, err, errlen);
    if (rc == 0 && tcp && *tcp)
        rc = listen_tcp(m, tcp, err, errlen);
    if (rc < 0) {
        muxd_close(m); /* m is freed once its servers are closed */
        *out = NULL;
        return -1;
    }
    *out = m;
    return 0;
}

void muxd_close(struct sim_muxd *m)
{
    if (!m || m->closing)
        return;
    m->closing = 1;
    while (m->clients)
        client_close(m->clients, NULL);
    if (m->server.data)
        uv_close((uv_handle_t *)&m->server, on_server_closed);
    if (m->tcp_server.data)
        uv_close((uv_handle_t *)&m->tcp_server, on_server_closed);
}
