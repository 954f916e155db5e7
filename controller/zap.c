/* zap — the controller's keys, allowlists, ZAP handler and per-message identity check. */
#include "zap.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fr_err.h"
#include "fr_log.h"

#define ZAP_SETTLE_MS 50 /* an editor or `keys authorize` changes a directory in a few steps */

static const char *const subdirs[2] = { "agents", "operators" };

const char *zap_role_name(enum zap_role role)
{
    static const char *names[] = { "none", "agent", "viewer", "operator" };
    return names[role];
}

/* ---- the allowlists -------------------------------------------------------------- */

struct peer_list {
    struct zap_peer *v;
    size_t n, cap;
};

static int peer_role(const char *sub, const struct fr_key *k, const char *path, char *err,
                     size_t errlen, enum zap_role *role)
{
    if (strcmp(sub, "agents") == 0) {
        *role = ZAP_AGENT;
        return 0;
    }
    if (strcmp(k->role, "operator") == 0 || strcmp(k->role, "viewer") == 0) {
        *role = k->role[0] == 'o' ? ZAP_OPERATOR : ZAP_VIEWER;
        return 0;
    }
    return fr_seterr(FR_ECONFIG, err, errlen, "%s: role: expected operator or viewer, got '%s'",
                     path, k->role);
}

static const struct zap_peer *find_key(const struct peer_list *l, const char *key)
{
    for (size_t i = 0; i < l->n; i++)
        if (strcmp(l->v[i].key, key) == 0)
            return &l->v[i];
    return NULL;
}

/* One allowlist file into l. */
static int load_file(struct peer_list *l, const char *sub, const char *name, const char *path,
                     char *err, size_t errlen)
{
    if (!fr_key_name_ok(name))
        return fr_seterr(FR_ECONFIG, err, errlen, "%s: expected the file name to be NAME.pub with "
                         "NAME of 1-63 letters, digits, '.', '_' or '-'", path);
    struct fr_key k;
    enum zap_role role = ZAP_NONE;
    if (fr_key_read(path, &k, err, errlen) < 0 || peer_role(sub, &k, path, err, errlen, &role) < 0)
        return FR_ECONFIG;
    const struct zap_peer *dup = find_key(l, k.public_key);
    if (dup)
        return fr_seterr(FR_ECONFIG, err, errlen, "%s: the same key is authorized as '%s': one key, "
                         "one peer", path, dup->name);
    if (l->n == l->cap) {
        size_t cap = l->cap ? 2 * l->cap : 16;
        struct zap_peer *v = realloc(l->v, cap * sizeof *v);
        if (!v)
            return fr_seterr(FR_ENOMEM, err, errlen, "%s: out of memory", path);
        l->v = v;
        l->cap = cap;
    }
    struct zap_peer *p = &l->v[l->n++];
    snprintf(p->name, sizeof p->name, "%s", name);
    memcpy(p->key, k.public_key, sizeof p->key);
    p->role = role;
    return 0;
}

struct load_ctx {
    struct peer_list list;
    int strict;
    char *err;
    size_t errlen;
};

/* strict: the first bad file fails the load; else bad files are logged and left out. */
static int on_entry(void *arg, const char *kind, const char *name, const char *path)
{
    struct load_ctx *c = arg;
    char why[1024];
    if (load_file(&c->list, kind, name, path, why, sizeof why) == 0)
        return 0;
    if (c->strict)
        return fr_seterr(FR_ECONFIG, c->err, c->errlen, "%s", why);
    fr_error("zap", "%s: refusing this peer until the file is fixed", why);
    return 0;
}

/* Peers in (agent or not, name) order, for find_peer's binary search. */
static int peer_cmp(const void *x, const void *y)
{
    const struct zap_peer *a = x, *b = y;
    int ra = a->role == ZAP_AGENT, rb = b->role == ZAP_AGENT;
    return ra != rb ? ra - rb : strcmp(a->name, b->name);
}

static void set_peers(struct zap *z, struct peer_list *l)
{
    qsort(l->v, l->n, sizeof *l->v, peer_cmp);
    free(z->peers);
    z->peers = l->v;
    z->npeers = l->n;
}

int zap_new(const char *dir, struct zap **out, char *err, size_t errlen)
{
    struct zap *z = calloc(1, sizeof *z);
    if (!z)
        return fr_seterr(FR_ENOMEM, err, errlen, "out of memory");
    snprintf(z->dir, sizeof z->dir, "%s", dir);
    char path[1024];
    snprintf(path, sizeof path, "%s/controller.key", dir);
    struct load_ctx l = { { 0 }, 1, err, errlen };
    if (fr_key_read_pair(path, &z->server, err, errlen) < 0 || fr_keys_each(dir, on_entry, &l) < 0) {
        free(l.list.v);
        free(z);
        return FR_ECONFIG;
    }
    set_peers(z, &l.list);
    *out = z;
    return 0;
}

int zap_reload(struct zap *z, char *said, size_t len)
{
    struct load_ctx c = { { 0 }, 0, NULL, 0 };
    fr_keys_each(z->dir, on_entry, &c);
    struct peer_list l = c.list;
    set_peers(z, &l);
    size_t agents = 0;
    for (size_t i = 0; i < l.n; i++)
        agents += l.v[i].role == ZAP_AGENT;
    char text[640];
    snprintf(text, sizeof text, "'%s': %zu agents, %zu operators", z->dir, agents, l.n - agents);
    if (said)
        snprintf(said, len, "%s", text);
    else
        fr_info("zap", "keys reloaded from %s", text);
    if (z->on_reload)
        z->on_reload(z->arg);
    return 0;
}

/* Every agent's message is checked against its peer: a binary search of the sorted
 * peers, not a walk (200 agents' names compared one by one took 7 % of the loop's CPU
 * at 125,000 messages a second). */
static const struct zap_peer *find_peer(const struct zap *z, const char *name, int agent)
{
    struct zap_peer want = { .role = agent ? ZAP_AGENT : ZAP_OPERATOR };
    if (strlen(name) >= sizeof want.name)
        return NULL; /* no kept name is that long */
    memcpy(want.name, name, strlen(name) + 1);
    return z->npeers ? bsearch(&want, z->peers, z->npeers, sizeof *z->peers, peer_cmp) : NULL;
}

const struct zap_peer *zap_agent(const struct zap *z, const char *id)
{
    return find_peer(z, id, 1);
}

const struct zap_peer *zap_peer_of(const struct zap *z, const zmq_msg_t *msg)
{
    const char *user = zmq_msg_gets(msg, "User-Id"), *key = zmq_msg_gets(msg, "Key");
    const char *role = zmq_msg_gets(msg, "Role");
    if (!user || !key || !role)
        return NULL;
    const struct zap_peer *p = find_peer(z, user, strcmp(role, "agent") == 0);
    return p && strcmp(p->key, key) == 0 ? p : NULL;
}

/* ---- the handler ------------------------------------------------------------------ */

static size_t put_property(uint8_t *out, const char *name, const char *value)
{
    size_t nlen = strlen(name), vlen = strlen(value);
    out[0] = (uint8_t)nlen;
    memcpy(out + 1, name, nlen);
    out[1 + nlen] = (uint8_t)(vlen >> 24);
    out[2 + nlen] = (uint8_t)(vlen >> 16);
    out[3 + nlen] = (uint8_t)(vlen >> 8);
    out[4 + nlen] = (uint8_t)vlen;
    memcpy(out + 5 + nlen, value, vlen);
    return 5 + nlen + vlen;
}

static void send_reply(struct zap *z, const zmq_msg_t *reqid, const struct zap_peer *p,
                       const char *why)
{
    uint8_t meta[128];
    size_t mlen = 0;
    if (p) {
        mlen += put_property(meta, "Key", p->key);
        mlen += put_property(meta + mlen, "Role", zap_role_name(p->role));
    }
    const char *code = p ? "200" : "400";
    zmq_send(z->sock, "1.0", 3, ZMQ_SNDMORE | ZMQ_DONTWAIT);
    zmq_send(z->sock, zmq_msg_data((zmq_msg_t *)reqid), zmq_msg_size((zmq_msg_t *)reqid),
             ZMQ_SNDMORE | ZMQ_DONTWAIT);
    zmq_send(z->sock, code, 3, ZMQ_SNDMORE | ZMQ_DONTWAIT);
    zmq_send(z->sock, why, strlen(why), ZMQ_SNDMORE | ZMQ_DONTWAIT);
    zmq_send(z->sock, p ? p->name : "", p ? strlen(p->name) : 0, ZMQ_SNDMORE | ZMQ_DONTWAIT);
    zmq_send(z->sock, meta, mlen, ZMQ_DONTWAIT);
}

/* At most one warning a second; the next one says how many were not logged. */
static void warn_limited(struct zap *z, const char *component, const char *text)
{
    uint64_t now = uv_now(z->loop);
    if (z->warned_at && now - z->warned_at < 1000) {
        z->suppressed++;
        return;
    }
    if (z->suppressed)
        fr_warn(component, "%s (and %llu more refusals since the last warning, not logged)", text,
                (unsigned long long)z->suppressed);
    else
        fr_warn(component, "%s", text);
    z->warned_at = now ? now : 1;
    z->suppressed = 0;
}

static int frame_is(zmq_msg_t *m, const char *s)
{
    return zmq_msg_size(m) == strlen(s) && memcmp(zmq_msg_data(m), s, strlen(s)) == 0;
}

/* Frames: version, request id, domain, address, identity, mechanism, credentials. */
static void on_zap_request(fr_zsock *zs, zmq_msg_t *parts, size_t nparts, void *arg)
{
    struct zap *z = arg;
    if (nparts < 6) {
        fr_warn("zap", "dropped a ZAP request of %zu frames", nparts);
        return; /* the REP socket waits for a reply to nothing: none is owed */
    }
    char key[FR_KEY_Z85_LEN + 1] = "", addr[64];
    snprintf(addr, sizeof addr, "%.*s", (int)zmq_msg_size(&parts[3]), (char *)zmq_msg_data(&parts[3]));
    int agents = frame_is(&parts[2], ZAP_DOMAIN_AGENTS);
    const struct zap_peer *p = NULL;
    if (nparts == 7 && frame_is(&parts[5], "CURVE") && zmq_msg_size(&parts[6]) == 32 &&
        zmq_z85_encode(key, zmq_msg_data(&parts[6]), 32)) {
        for (size_t i = 0; i < z->npeers && !p; i++)
            if ((z->peers[i].role == ZAP_AGENT) == agents && strcmp(z->peers[i].key, key) == 0)
                p = &z->peers[i];
    }
    if (p) {
        z->handshakes_ok++;
        fr_debug("zap", "%s '%s' authenticated from %s", zap_role_name(p->role), p->name, addr);
    } else {
        z->handshakes_refused++;
        char text[256];
        snprintf(text, sizeof text, "refused a %s handshake from %s: key '%s' is not authorized "
                 "there", agents ? "agent" : "client", addr, *key ? key : "(none)");
        warn_limited(z, "zap", text);
    }
    send_reply(z, &parts[1], p, p ? "OK" : "key not authorized");
}

void zap_refuse(struct zap *z, uint64_t *count, const char *component, const char *fmt, ...)
{
    char text[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    (*count)++;
    warn_limited(z, component, text);
}

/* ---- reload on change ------------------------------------------------------------ */

static void on_settled(uv_timer_t *t)
{
    zap_reload(t->data, NULL, 0);
}

static void on_dir_change(uv_fs_event_t *h, const char *file, int events, int status)
{
    struct zap *z = h->data;
    uv_timer_start(&z->settle, on_settled, ZAP_SETTLE_MS, 0);
}

int zap_start(struct zap *z, void *zctx, uv_loop_t *loop, zap_reload_cb on_reload, void *arg,
              char *err, size_t errlen)
{
    z->loop = loop;
    z->on_reload = on_reload;
    z->arg = arg;
    z->sock = zmq_socket(zctx, ZMQ_REP);
    int zero = 0;
    if (!z->sock || zmq_setsockopt(z->sock, ZMQ_LINGER, &zero, sizeof zero) < 0 ||
        zmq_bind(z->sock, ZAP_ENDPOINT) < 0)
        return fr_seterr(FR_ESYS, err, errlen, "cannot bind the ZAP handler: %s",
                         zmq_strerror(zmq_errno()));
    if (fr_zsock_start(&z->zs, loop, z->sock, on_zap_request, z) < 0)
        return fr_seterr(FR_ESYS, err, errlen, "cannot drive the ZAP handler");
    uv_timer_init(loop, &z->settle);
    z->settle.data = z;
    z->open_handles = 1;
    for (int i = 0; i < 2; i++) {
        char path[1024];
        snprintf(path, sizeof path, "%s/%s", z->dir, subdirs[i]);
        mkdir(path, 0755); /* so that the first `keys authorize` is seen */
        uv_fs_event_init(loop, &z->watch[i]);
        z->watch[i].data = z;
        z->open_handles++;
        if (uv_fs_event_start(&z->watch[i], on_dir_change, path, 0) < 0)
            fr_warn("zap", "cannot watch '%s' (it is read on SIGHUP)", path);
    }
    return 0;
}

int zap_curve_server(struct zap *z, void *sock, const char *domain)
{
    int one = 1, rc = 0;
    rc |= zmq_setsockopt(sock, ZMQ_CURVE_SERVER, &one, sizeof one);
    rc |= zmq_setsockopt(sock, ZMQ_CURVE_SECRETKEY, z->server.secret_key, FR_KEY_Z85_LEN);
    rc |= zmq_setsockopt(sock, ZMQ_ZAP_DOMAIN, domain, strlen(domain));
    return rc < 0 ? FR_ESYS : 0;
}

/* A monitor event: frame 1 is the event (16 bits) and its value (32 bits), in the
 * host's byte order; frame 2 the endpoint. A peer without CURVE (NULL or any other
 * mechanism) ends in a mechanism mismatch; the key refusals (HANDSHAKE_FAILED_AUTH)
 * are not watched, the ZAP handler counts those itself (handshakes_refused). */
static void on_monitor_event(fr_zsock *zs, zmq_msg_t *parts, size_t nparts, void *arg)
{
    struct zap_monitor *m = arg;
    if (nparts < 1 || zmq_msg_size(&parts[0]) < 6)
        return;
    const uint8_t *d = zmq_msg_data(&parts[0]);
    uint16_t event;
    uint32_t value;
    memcpy(&event, d, sizeof event);
    memcpy(&value, d + 2, sizeof value);
    if (event == ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL &&
        value == ZMQ_PROTOCOL_ERROR_ZMTP_MECHANISM_MISMATCH)
        zap_refuse(m->z, &m->z->handshakes_no_key, "zap", "refused a handshake on the %s socket: "
                   "the peer has no CURVE key", m->name);
    else if (event == ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL ||
             event == ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL)
        zap_refuse(m->z, &m->z->handshakes_failed, "zap", "a handshake on the %s socket failed "
                   "(%s 0x%x)", m->name, event == ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL ?
                   "ZMTP protocol error" : "errno", (unsigned)value);
}

int zap_watch(struct zap *z, void *zctx, void *router, const char *name)
{
    if (z->nmon >= (int)(sizeof z->mon / sizeof z->mon[0]))
        return FR_ESYS;
    struct zap_monitor *m = &z->mon[z->nmon];
    char ep[96];
    snprintf(ep, sizeof ep, "inproc://flashrack-monitor-%s", name);
    snprintf(m->name, sizeof m->name, "%s", name);
    m->z = z;
    if (zmq_socket_monitor(router, ep, ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL |
                                           ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL) < 0)
        return FR_ESYS;
    int zero = 0;
    m->sock = zmq_socket(zctx, ZMQ_PAIR);
    if (m->sock)
        zmq_setsockopt(m->sock, ZMQ_LINGER, &zero, sizeof zero);
    if (!m->sock || zmq_connect(m->sock, ep) < 0 ||
        fr_zsock_start(&m->zs, z->loop, m->sock, on_monitor_event, m) < 0) {
        if (m->sock)
            zmq_close(m->sock);
        m->sock = NULL;
        zmq_socket_monitor(router, NULL, 0);
        return FR_ESYS;
    }
    z->nmon++;
    return 0;
}

json_t *zap_doc(const struct zap *z)
{
    if (!z)
        return json_pack("{s:s}", "mode", "insecure-loopback");
    size_t agents = 0;
    for (size_t i = 0; i < z->npeers; i++)
        agents += z->peers[i].role == ZAP_AGENT;
    return json_pack("{s:s, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I}", "mode", "curve",
                     "agent_keys", (json_int_t)agents, "operator_keys", (json_int_t)(z->npeers - agents),
                     "handshakes_ok", (json_int_t)z->handshakes_ok,
                     "handshakes_refused", (json_int_t)z->handshakes_refused,
                     "handshakes_no_key", (json_int_t)z->handshakes_no_key,
                     "handshakes_failed", (json_int_t)z->handshakes_failed,
                     "agent_messages_refused", (json_int_t)z->refused_agent_msgs,
                     "requests_refused", (json_int_t)z->refused_requests);
}

static void on_handle_closed(uv_handle_t *h)
{
    struct zap *z = h->data;
    z->open_handles--;
}

void zap_stop(struct zap *z)
{
    if (!z || !z->loop)
        return;
    fr_zsock_close(&z->zs, NULL);
    for (int i = 0; i < z->nmon; i++)
        fr_zsock_close(&z->mon[i].zs, NULL);
    if (z->open_handles == 0)
        return;
    uv_close((uv_handle_t *)&z->settle, on_handle_closed);
    for (int i = 0; i < 2; i++)
        uv_close((uv_handle_t *)&z->watch[i], on_handle_closed);
}

void zap_destroy(struct zap **pz)
{
    struct zap *z = *pz;
    if (!z)
        return;
    if (z->sock)
        zmq_close(z->sock);
    for (int i = 0; i < z->nmon; i++)
        zmq_close(z->mon[i].sock);
    memset(&z->server, 0, sizeof z->server);
    free(z->peers);
    free(z);
    *pz = NULL;
}
