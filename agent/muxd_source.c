/* muxd_source — normal-mode units through usbmuxd and lockdownd; see muxd_source.h. */
#include "muxd_source.h"

#include <libimobiledevice/libimobiledevice.h>
#include <libimobiledevice/lockdown.h>
#include <libimobiledevice/restore.h>
#include <libirecovery.h>
#include <plist/plist.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <usbmuxd.h>

#include "fr_err.h"
#include "fr_log.h"
#include "fr_mux_wire.h"
#include "fr_muxd_addr.h"
#include "fr_types.h"

#define LABEL "flashrack-agent"
#define UDID_MAX 48
#define PROBE_BACKOFF_MIN_MS 1000
#define PROBE_BACKOFF_MAX_MS 30000
#define PRESENT_MAX 1024

struct present {
    char udid[UDID_MAX];
    uint32_t device_id;          /* usbmuxd's handle of this appearance */
    uint64_t generation;
};

enum job_kind { JOB_IDENTITY, JOB_RECOVERY };

struct job {
    uv_work_t req;
    struct muxd_source *s;
    enum job_kind kind;
    char udid[UDID_MAX];
    uint64_t generation;         /* identity: the appearance it belongs to */
    struct unit_desc u;
    char versions[96];           /* identity: "iOS 17.5 (21F90), N104AP" for the log */
    int rc;
    char err[300];
    muxd_recovery_cb cb;
    void *arg;
};

/* The Listen connection: a Unix socket or TCP, as $USBMUXD_SOCKET_ADDRESS says. */
union mux_conn {
    uv_handle_t handle;
    uv_stream_t stream;
    uv_pipe_t pipe;
    uv_tcp_t tcp;
};

struct muxd_source {
    uv_loop_t *loop;
    struct muxd_source_events ev;
    union mux_conn *pipe;        /* the Listen connection; NULL while not connected */
    uv_connect_t conn;
    uv_timer_t retry;
    uint8_t *buf;                /* what usbmuxd sent that is not a whole message yet */
    size_t len;
    int listening;               /* usbmuxd answered Listen with Result 0 */
    struct present *present;
    size_t npresent;
    uint64_t generation;
    struct fr_muxd_addr addr;    /* where usbmuxd is */
    struct sockaddr_storage sa;  /* addr resolved, when TCP */
    const char *address;         /* addr.text: as configured, for the log */
    uint64_t backoff_ms;
    int jobs, handles, closing;
    void (*on_closed)(void *arg);
    void *closed_arg;
};

/* ---- thread-pool jobs ---------------------------------------------------- */

static int get_value(lockdownd_client_t c, const char *key, plist_type want, plist_t *out)
{
    *out = NULL;
    lockdownd_error_t le = lockdownd_get_value(c, NULL, key, out);
    if (le != LOCKDOWN_E_SUCCESS || !*out || plist_get_node_type(*out) != want) {
        plist_free(*out);
        *out = NULL;
        return le != LOCKDOWN_E_SUCCESS ? le : LOCKDOWN_E_UNKNOWN_ERROR;
    }
    return 0;
}

static void get_string(lockdownd_client_t c, const char *key, char *dst, size_t n)
{
    plist_t v;
    dst[0] = '\0';
    if (get_value(c, key, PLIST_STRING, &v) == 0)
        snprintf(dst, n, "%s", plist_get_string_ptr(v, NULL));
    plist_free(v);
}

static uint64_t get_uint(lockdownd_client_t c, const char *key, int *ok)
{
    plist_t v;
    uint64_t x = 0;
    *ok = get_value(c, key, PLIST_UINT, &v) == 0;
    if (*ok)
        plist_get_uint_val(v, &x);
    plist_free(v);
    return x;
}

static uint64_t dict_uint(plist_t d, const char *key, int *ok)
{
    plist_t v = plist_dict_get_item(d, key);
    uint64_t x = 0;
    *ok = v && plist_get_node_type(v) == PLIST_UINT;
    if (*ok)
        plist_get_uint_val(v, &x);
    return x;
}

/* A string restored keeps from its QueryType answer (restored_get_value). */
static void restored_string(restored_client_t c, const char *key, char *dst, size_t n)
{
    plist_t v = NULL;
    dst[0] = '\0';
    if (restored_get_value(c, key, &v) == RESTORE_E_SUCCESS && plist_get_node_type(v) == PLIST_STRING)
        snprintf(dst, n, "%s", plist_get_string_ptr(v, NULL));
    plist_free(v);
}

/* A unit in restore mode: restored answers on lockdownd's port. ECID, CPID and BDID
 * come from QueryValue HardwareInfo, SerialNumber and HardwareModel from its QueryType
 * answer, the ProductType from the HardwareModel through libirecovery's device table
 * (as idevicerestore finds it). */
static void read_restore_identity(struct job *j, idevice_t dev)
{
    restored_client_t c = NULL;
    plist_t hw = NULL;
    restored_error_t re = restored_client_new(dev, &c, LABEL);
    if (re == RESTORE_E_SUCCESS)
        re = restored_query_type(c, NULL, NULL);
    if (re == RESTORE_E_SUCCESS)
        re = restored_query_value(c, "HardwareInfo", &hw);
    int have_ecid = 0, have;
    if (re == RESTORE_E_SUCCESS && plist_get_node_type(hw) == PLIST_DICT) {
        j->u.ecid = dict_uint(hw, "UniqueChipID", &have_ecid);
        j->u.cpid = (uint32_t)dict_uint(hw, "ChipID", &have);
        j->u.bdid = (uint32_t)dict_uint(hw, "BoardID", &have);
    }
    char model[24] = "";
    irecv_device_t known = NULL;
    if (c) {
        restored_string(c, "SerialNumber", j->u.serial, sizeof j->u.serial);
        restored_string(c, "HardwareModel", model, sizeof model);
    }
    if (model[0] && irecv_devices_get_device_by_hardware_model(model, &known) == IRECV_E_SUCCESS &&
        known && known->product_type)
        snprintf(j->u.product_type, sizeof j->u.product_type, "%s", known->product_type);
    snprintf(j->versions, sizeof j->versions, "restore mode, %s", model[0] ? model : "?");
    j->u.mode = fr_mode_parse("restore");
    if (re != RESTORE_E_SUCCESS || !have_ecid) {
        j->rc = FR_EPROTO;
        snprintf(j->err, sizeof j->err, "restored answered %s",
                 re != RESTORE_E_SUCCESS ? "no HardwareInfo" : "HardwareInfo without UniqueChipID (a number)");
    } else if (!j->u.product_type[0]) {
        j->rc = FR_EPROTO;
        snprintf(j->err, sizeof j->err, "restore mode: no ProductType for HardwareModel '%s' in this "
                 "libirecovery's device table", model);
    }
    plist_free(hw);
    if (c)
        restored_client_free(c);
}

/* Whether usbmuxd holds a pair record for the unit (this host is trusted by it). */
static int has_pair_record(const char *udid)
{
    char *rec = NULL;
    uint32_t len = 0;
    int paired = usbmuxd_read_pair_record(udid, &rec, &len) == 0 && rec && len > 0;
    free(rec);
    return paired;
}

/* The IMEI, which lockdownd gives only in a session: read only where this host holds a
 * pair record (a pairing is never started: it would put a Trust dialog on the phone). */
static void read_imei(struct job *j, idevice_t dev)
{
    lockdownd_client_t c = NULL;
    if (!has_pair_record(j->udid) || lockdownd_client_new_with_handshake(dev, &c, LABEL) != LOCKDOWN_E_SUCCESS)
        return;
    get_string(c, "InternationalMobileEquipmentIdentity", j->u.imei, sizeof j->u.imei);
    lockdownd_client_free(c);
}

/* The identity of one unit over an unpaired lockdown connection (restored's, in
 * restore mode); its IMEI in a session where the unit is paired. */
static void read_identity(struct job *j, idevice_t dev)
{
    lockdownd_client_t c = NULL;
    lockdownd_error_t le = lockdownd_client_new(dev, &c, LABEL);
    if (le != LOCKDOWN_E_SUCCESS) {
        j->rc = FR_EUNAVAIL;
        snprintf(j->err, sizeof j->err, "cannot reach lockdownd: %s (%d)", lockdownd_strerror(le), le);
        return;
    }
    char *type = NULL;
    le = lockdownd_query_type(c, &type);
    int ok = le == LOCKDOWN_E_SUCCESS && type && strcmp(type, "com.apple.mobile.lockdown") == 0;
    if (le == LOCKDOWN_E_SUCCESS && type && strcmp(type, "com.apple.mobile.restored") == 0) {
        free(type);
        lockdownd_client_free(c);
        read_restore_identity(j, dev);
        return;
    }
    if (!ok) {
        j->rc = FR_EPROTO;
        snprintf(j->err, sizeof j->err, "QueryType answered %s (not a unit in normal mode)",
                 type ? type : lockdownd_strerror(le));
    }
    free(type);
    int have_ecid = 0, have_cpid = 0, have_bdid = 0;
    char hw[24];
    char *version = j->u.ios, *build = j->u.build;
    if (ok) {
        j->u.ecid = get_uint(c, "UniqueChipID", &have_ecid);
        j->u.cpid = (uint32_t)get_uint(c, "ChipID", &have_cpid);
        j->u.bdid = (uint32_t)get_uint(c, "BoardId", &have_bdid);
        get_string(c, "ProductType", j->u.product_type, sizeof j->u.product_type);
        get_string(c, "SerialNumber", j->u.serial, sizeof j->u.serial);
        get_string(c, "ProductVersion", version, sizeof j->u.ios);
        get_string(c, "BuildVersion", build, sizeof j->u.build);
        get_string(c, "HardwareModel", hw, sizeof hw);
        snprintf(j->versions, sizeof j->versions, "iOS %s (%s), %s", version[0] ? version : "?",
                 build[0] ? build : "?", hw[0] ? hw : "?");
        if (!have_ecid || !j->u.product_type[0]) {
            j->rc = FR_EPROTO;
            snprintf(j->err, sizeof j->err, "lockdown answered without %s",
                     !have_ecid ? "UniqueChipID (a number)" : "ProductType (a string)");
        }
    }
    j->u.mode = fr_mode_parse("normal");
    lockdownd_client_free(c);
    if (ok && j->rc == 0)
        read_imei(j, dev);
}

static void enter_recovery(struct job *j, idevice_t dev)
{
    int paired = has_pair_record(j->udid);
    lockdownd_client_t c = NULL;
    lockdownd_error_t le = paired ? lockdownd_client_new_with_handshake(dev, &c, LABEL)
                                  : lockdownd_client_new(dev, &c, LABEL);
    if (le != LOCKDOWN_E_SUCCESS) {
        j->rc = paired ? FR_ESTATE : FR_EUNAVAIL;
        snprintf(j->err, sizeof j->err, "lockdown %s: %s (%d)",
                 paired ? "refused a session with this host's pair record" : "cannot be reached",
                 lockdownd_strerror(le), le);
        return;
    }
    le = lockdownd_enter_recovery(c);
    if (le != LOCKDOWN_E_SUCCESS) {
        j->rc = FR_ESTATE;
        snprintf(j->err, sizeof j->err, "lockdown refused EnterRecovery %s: %s (%d)",
                 paired ? "in a paired session" : "without pairing (iOS 14.5 and later need it)",
                 lockdownd_strerror(le), le);
    }
    lockdownd_client_free(c); /* its Goodbye may fail: the unit is rebooting */
}

/* libusbmuxd copies the program's name into a global at its first message to usbmuxd,
 * without a lock: two first lookups at once (units that attach together, read on the
 * thread pool) each make a copy and one is lost, which LeakSanitizer reports at exit.
 * So lookups take turns until one has gone through; then they run side by side. */
static pthread_mutex_t first_lookup = PTHREAD_MUTEX_INITIALIZER;
static atomic_int looked_up;

static idevice_error_t lookup(idevice_t *dev, const char *udid)
{
    if (atomic_load(&looked_up))
        return idevice_new_with_options(dev, udid, IDEVICE_LOOKUP_USBMUX);
    pthread_mutex_lock(&first_lookup);
    idevice_error_t ie = idevice_new_with_options(dev, udid, IDEVICE_LOOKUP_USBMUX);
    if (ie == IDEVICE_E_SUCCESS)
        atomic_store(&looked_up, 1);
    pthread_mutex_unlock(&first_lookup);
    return ie;
}

static void on_work(uv_work_t *req)
{
    struct job *j = req->data;
    idevice_t dev = NULL;
    idevice_error_t ie = lookup(&dev, j->udid);
    if (ie != IDEVICE_E_SUCCESS) {
        j->rc = FR_EUNAVAIL;
        snprintf(j->err, sizeof j->err, "not on usbmuxd (idevice error %d)", ie);
        return;
    }
    if (j->kind == JOB_IDENTITY)
        read_identity(j, dev);
    else
        enter_recovery(j, dev);
    idevice_free(dev);
}

int muxd_read_identity(const char *udid, struct unit_desc *u, char *err, size_t errlen)
{
    struct job j = { .kind = JOB_IDENTITY };
    j.req.data = &j;
    snprintf(j.udid, sizeof j.udid, "%s", udid);
    on_work(&j.req);
    *u = j.u;
    return j.rc < 0 ? fr_seterr(j.rc, err, errlen, "%s", j.err) : 0;
}

/* ---- the loop ------------------------------------------------------------ */

static void maybe_closed(struct muxd_source *s)
{
    if (!s->closing || s->handles > 0 || s->jobs > 0)
        return;
    free(s->present);
    free(s->buf);
    void (*cb)(void *) = s->on_closed;
    void *arg = s->closed_arg;
    free(s);
    if (cb)
        cb(arg);
}

static struct present *find_present(struct muxd_source *s, const char *udid, uint32_t device_id)
{
    for (size_t i = 0; i < s->npresent; i++)
        if (udid ? strcmp(s->present[i].udid, udid) == 0 : s->present[i].device_id == device_id)
            return &s->present[i];
    return NULL;
}

static void after_identity(struct muxd_source *s, struct job *j)
{
    struct present *p = find_present(s, j->udid, 0);
    if (!p || p->generation != j->generation)
        return; /* it left (or came again) while we read */
    if (j->rc < 0) {
        fr_error("muxd", "unit '%s': %s; not reported", j->udid, j->err);
        return;
    }
    char ecid[FR_ECID_STRLEN];
    fr_ecid_format(j->u.ecid, ecid, sizeof ecid);
    fr_info("muxd", "unit '%s': %s %s, %s", j->udid, ecid, j->u.product_type, j->versions);
    s->ev.identity(s->ev.arg, j->udid, &j->u);
}

static void on_after_work(uv_work_t *req, int status)
{
    struct job *j = req->data;
    struct muxd_source *s = j->s;
    s->jobs--;
    if (j->kind == JOB_RECOVERY) /* always answered, also while closing: the caller frees its arg */
        j->cb(j->arg, s->closing ? FR_ECANCELED : j->rc, s->closing ? "shutting down" : j->err);
    else if (!s->closing)
        after_identity(s, j);
    free(j);
    maybe_closed(s);
}

static struct job *new_job(struct muxd_source *s, enum job_kind kind, const char *udid)
{
    struct job *j = calloc(1, sizeof *j);
    if (j) {
        j->s = s;
        j->kind = kind;
        j->req.data = j;
        snprintf(j->udid, sizeof j->udid, "%s", udid);
    }
    return j;
}

static int submit(struct muxd_source *s, struct job *j)
{
    if (!j)
        return FR_ENOMEM;
    if (uv_queue_work(s->loop, &j->req, on_work, on_after_work) < 0) {
        free(j);
        return FR_EIO;
    }
    s->jobs++;
    return 0;
}

static void device_added(struct muxd_source *s, const char *udid, uint32_t device_id)
{
    struct present *p = find_present(s, udid, 0);
    if (!p) {
        if (s->npresent == PRESENT_MAX) {
            fr_error("muxd", "unit '%s': more than %d units on usbmuxd; not reported", udid,
                     PRESENT_MAX);
            return;
        }
        struct present *np = realloc(s->present, (s->npresent + 1) * sizeof *np);
        if (!np)
            return;
        s->present = np;
        p = &s->present[s->npresent++];
        snprintf(p->udid, sizeof p->udid, "%s", udid);
    }
    p->device_id = device_id;
    p->generation = ++s->generation;
    struct job *j = new_job(s, JOB_IDENTITY, udid);
    if (j)
        j->generation = p->generation;
    if (submit(s, j) < 0)
        fr_error("muxd", "unit '%s': cannot queue its lockdown reads", udid);
}

static void device_removed(struct muxd_source *s, struct present *p)
{
    char udid[UDID_MAX];
    snprintf(udid, sizeof udid, "%s", p->udid);
    *p = s->present[--s->npresent];
    fr_info("muxd", "unit '%s' left usbmuxd", udid);
    s->ev.gone(s->ev.arg, udid);
}

static void muxd_connect(struct muxd_source *s);

static void on_retry(uv_timer_t *t)
{
    muxd_connect(t->data);
}

static void on_pipe_closed(uv_handle_t *h)
{
    struct muxd_source *s = h->data;
    free(h);
    s->handles--;
    maybe_closed(s);
}

/* The Listen connection failed or went bad: every unit it showed is gone (as usbmuxd
 * forgets nothing but the connection does), and it is tried again with back-off. */
static void drop(struct muxd_source *s, const char *what, const char *why)
{
    if (s->pipe) {
        uv_close(&s->pipe->handle, on_pipe_closed);
        s->pipe = NULL;
    }
    s->len = 0;
    s->listening = 0;
    while (s->npresent)
        device_removed(s, &s->present[s->npresent - 1]);
    if (s->closing)
        return;
    s->backoff_ms = s->backoff_ms ? s->backoff_ms * 2 : PROBE_BACKOFF_MIN_MS;
    if (s->backoff_ms > PROBE_BACKOFF_MAX_MS)
        s->backoff_ms = PROBE_BACKOFF_MAX_MS;
    fr_warn("muxd", "usbmuxd at '%s' %s: %s; retrying in %llu s (normal-mode units are not "
            "seen until it answers)", s->address, what, why,
            (unsigned long long)(s->backoff_ms / 1000));
    uv_timer_start(&s->retry, on_retry, s->backoff_ms, 0);
}

static void on_attached(struct muxd_source *s, plist_t m)
{
    uint64_t id = 0;
    plist_t props = plist_dict_get_item(m, "Properties");
    const char *udid = props && plist_get_node_type(props) == PLIST_DICT
                           ? mux_dict_string(props, "SerialNumber") : NULL;
    const char *conn = props ? mux_dict_string(props, "ConnectionType") : NULL;
    if (mux_dict_uint(m, "DeviceID", &id) < 0 || !udid || !udid[0] || strlen(udid) >= UDID_MAX) {
        fr_warn("muxd", "usbmuxd sent an Attached without DeviceID or Properties.SerialNumber; "
                "ignored");
        return;
    }
    if (conn && strcmp(conn, "USB") != 0)
        return; /* a network device: not on a port of this host */
    device_added(s, udid, (uint32_t)id);
}

/* One message on the Listen connection; returns -1 when the connection must go. */
static int on_message(struct muxd_source *s, plist_t m)
{
    const char *type = mux_dict_string(m, "MessageType");
    uint64_t n = 0;
    if (!s->listening) {
        if (!type || strcmp(type, "Result") != 0 || mux_dict_uint(m, "Number", &n) < 0 || n != 0) {
            char why[80];
            snprintf(why, sizeof why, "answered Listen with %s %llu", type ? type : "no MessageType",
                     (unsigned long long)n);
            drop(s, "refused", why);
            return -1;
        }
        s->listening = 1;
        s->backoff_ms = 0;
        fr_info("muxd", "listening to usbmuxd at '%s'", s->address);
    } else if (type && strcmp(type, "Attached") == 0) {
        on_attached(s, m);
    } else if (type && strcmp(type, "Detached") == 0) {
        struct present *p = mux_dict_uint(m, "DeviceID", &n) == 0 ? find_present(s, NULL, (uint32_t)n) : NULL;
        if (p)
            device_removed(s, p);
    } /* Paired and anything newer: nothing to do */
    return 0;
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *b)
{
    struct muxd_source *s = h->data;
    b->base = (char *)s->buf + s->len;
    b->len = MUX_MAX_MESSAGE + MUX_HEADER_LEN - s->len;
}

static void on_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *b)
{
    struct muxd_source *s = st->data;
    if (nread < 0) {
        char why[96];
        if (s->len) /* e.g. a truncated plist */
            snprintf(why, sizeof why, "after %zu bytes of an unfinished message", s->len);
        drop(s, "closed the connection", s->len ? why : nread == UV_EOF ? "end of stream"
                                                                       : uv_strerror((int)nread));
        return;
    }
    s->len += (size_t)nread;
    size_t off = 0;
    while (s->pipe) {
        struct mux_header h;
        plist_t m = NULL;
        size_t used = 0;
        char err[160] = "";
        enum mux_parse r = mux_wire_parse(s->buf + off, s->len - off, &h, &m, &used, err, sizeof err);
        if (r == MUX_PARSE_NEED_MORE)
            break;
        if (r != MUX_PARSE_OK) {
            drop(s, "sent", err);
            return;
        }
        off += used;
        int rc = on_message(s, m);
        plist_free(m);
        if (rc < 0)
            return;
    }
    if (!s->pipe)
        return;
    memmove(s->buf, s->buf + off, s->len - off);
    s->len -= off;
}

static void send_listen(struct muxd_source *s)
{
    plist_t d = plist_new_dict();
    plist_dict_set_item(d, "MessageType", plist_new_string("Listen"));
    plist_dict_set_item(d, "ClientVersionString", plist_new_string(LABEL " " FR_VERSION));
    plist_dict_set_item(d, "ProgName", plist_new_string(LABEL));
    plist_dict_set_item(d, "kLibUSBMuxVersion", plist_new_uint(3));
    uint8_t *out = NULL;
    size_t n = 0;
    int rc = mux_wire_encode(1, d, &out, &n);
    plist_free(d);
    uv_buf_t b = uv_buf_init((char *)out, (unsigned)n);
    /* a few hundred bytes on a fresh socket: written at once, or the connection is bad */
    if (rc < 0 || uv_try_write(&s->pipe->stream, &b, 1) != (int)n)
        drop(s, "cannot be written to", "Listen not sent");
    free(out);
}

static void on_connected(uv_connect_t *req, int status)
{
    struct muxd_source *s = req->data;
    if (s->closing || !s->pipe)
        return;
    if (status < 0) {
        drop(s, "does not answer", uv_strerror(status));
        return;
    }
    uv_read_start(&s->pipe->stream, on_alloc, on_read);
    send_listen(s);
}

static void muxd_connect(struct muxd_source *s)
{
    if (s->pipe || s->closing)
        return;
    s->pipe = malloc(sizeof *s->pipe);
    if (!s->pipe) {
        drop(s, "cannot be reached", "out of memory");
        return;
    }
    s->handles++;
    s->conn.data = s;
    int rc = 0;
    if (s->addr.tcp)
        uv_tcp_init(s->loop, &s->pipe->tcp);
    else
        uv_pipe_init(s->loop, &s->pipe->pipe, 0);
    s->pipe->handle.data = s;
    if (s->addr.tcp)
        rc = uv_tcp_connect(&s->conn, &s->pipe->tcp, (const struct sockaddr *)&s->sa, on_connected);
    else
        uv_pipe_connect(&s->conn, &s->pipe->pipe, s->addr.path, on_connected);
    if (rc < 0)
        drop(s, "cannot be reached", uv_strerror(rc));
}

int muxd_source_start(struct muxd_source **out, uv_loop_t *loop,
                      const struct muxd_source_events *ev, char *err, size_t errlen)
{
    struct fr_muxd_addr addr;
    struct sockaddr_storage sa = { 0 };
    socklen_t salen;
    int rc = fr_muxd_addr_parse(getenv(FR_MUXD_ENV), "/var/run/usbmuxd", &addr, err, errlen);
    if (rc == 0 && addr.tcp)
        rc = fr_muxd_addr_resolve(&addr, &sa, &salen, err, errlen);
    if (rc < 0)
        return rc;
    struct muxd_source *s = calloc(1, sizeof *s);
    if (s && !(s->buf = malloc(MUX_MAX_MESSAGE + MUX_HEADER_LEN))) {
        free(s);
        s = NULL;
    }
    if (!s)
        return fr_seterr(FR_ENOMEM, err, errlen, "usbmuxd at '%s': out of memory", addr.text);
    s->loop = loop;
    s->ev = *ev;
    s->addr = addr;
    s->sa = sa;
    s->address = s->addr.text;
    uv_timer_init(loop, &s->retry);
    s->retry.data = s;
    s->handles = 1;
    muxd_connect(s);
    *out = s;
    return 0;
}

int muxd_source_enter_recovery(struct muxd_source *s, const char *udid, muxd_recovery_cb cb,
                               void *arg)
{
    if (s->closing)
        return FR_ESTATE;
    struct job *j = new_job(s, JOB_RECOVERY, udid);
    if (j) {
        j->cb = cb;
        j->arg = arg;
    }
    return submit(s, j);
}

int muxd_source_reachable(const struct muxd_source *s)
{
    return s->listening;
}

static void on_timer_closed(uv_handle_t *h)
{
    struct muxd_source *s = h->data;
    s->handles--;
    maybe_closed(s);
}

void muxd_source_close(struct muxd_source *s, void (*cb)(void *arg), void *arg)
{
    if (!s || s->closing)
        return;
    s->closing = 1;
    s->on_closed = cb;
    s->closed_arg = arg;
    if (s->pipe) {
        uv_close(&s->pipe->handle, on_pipe_closed);
        s->pipe = NULL;
    }
    uv_close((uv_handle_t *)&s->retry, on_timer_closed);
}
