/* seams_usb — the hardware backend: the host's USB tree (usb_topology, re-read
 * on the loop's libusb hotplug when a hub comes or goes), port power (usb_power,
 * switched on the thread pool) and a list of discovery sources (discovery.h)
 * sharing the seams' events. */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "discovery.h"
#include "fr_err.h"
#include "fr_log.h"
#include "fr_types.h"
#include "irecv_serial.h"
#include "irecv_source.h"
#include "muxd_discovery.h"
#include "rackmap.h"
#include "seams.h"
#include "usb_dev.h"
#include "usb_power.h"
#include "usb_topology.h"

#define MAX_SOURCES 4
#define MAX_DENIED 64        /* units on this host the agent may not open, reported by path */
#define REREAD_DELAY_MS 300  /* a hub's ports appear one by one: read once they settle */
#define POWER_OFF_MS 2000    /* how long a cycled port stays off */
#define UDEV_RULE "60-flashrack.rules"

struct power_job {
    uv_work_t work;
    uv_timer_t wait;
    struct usb_seams *s;
    struct usb_power_plan plan;
    char path[32];
    int on, rc;
    char err[256];
    struct power_job *next;
};

/* A DFU/recovery unit the agent may not open, reported with a reason (libirecovery,
 * which opens every unit it reports, never sees it). */
struct denied {
    char path[32];
    uint64_t ecid;
};

struct usb_seams {
    struct seams base;
    uv_loop_t *loop;
    struct seam_events ev;        /* the agent's */
    struct seam_events src_ev;    /* what the sources call: paths made canonical first */
    char host_root[PATH_MAX];
    struct rackmap *map;          /* NULL: no rack map */
    struct usb_dev *dev;          /* NULL: libusb could not start (reported once) */
    struct usb_topology *topo;    /* the last tree read */
    uv_timer_t reread;
    uv_work_t read_work;
    int reading, read_again;
    struct usb_topology *fresh;   /* the worker's result */
    int read_rc, last_read_rc;
    char read_err[256];
    struct discovery_source *sources[MAX_SOURCES];
    size_t nsources;
    struct power_job *jobs;
    seams_usb_open_fn can_open;   /* whether a device may be opened (libusb; tests inject) */
    void *can_open_arg;
    struct denied denied[MAX_DENIED];
    size_t ndenied;
    int dev_started;
    int sources_started;          /* once the first tree is reported (start_sources) */
    int pending, closing;         /* pending: handles, sources and jobs still open */
    void (*on_closed)(struct seams *s);
};

static void settle(struct usb_seams *s)
{
    if (--s->pending == 0 && s->closing && s->on_closed)
        s->on_closed(&s->base);
}

/* ---- topology ------------------------------------------------------------------ */

static int hubdesc(void *arg, const struct usb_hub *h, uint8_t *buf, size_t cap)
{
    return usb_dev_hubdesc(arg, h->bus, h->devnum, h->superspeed, buf, cap);
}

static void read_on_worker(uv_work_t *w)
{
    struct usb_seams *s = w->data;
    s->read_rc = usb_topology_read(s->host_root, s->dev ? hubdesc : NULL, s->dev, &s->fresh,
                                   s->read_err, sizeof s->read_err);
}

/* The rack's ports as the controller sees them: one per physical port, named by
 * the USB 2 half, power_switch when usb_power would switch it. */
static void report_topology(struct usb_seams *s)
{
    const struct usb_topology *t = s->topo;
    size_t n = 0;
    struct port_desc *pd = calloc(t && t->nports ? t->nports : 1, sizeof *pd);
    if (!pd)
        return;
    for (size_t i = 0; t && i < t->nports; i++) {
        if (!usb_topology_is_rack_port(t, (int)i))
            continue;
        const struct usb_port *p = &t->ports[i];
        struct port_desc *d = &pd[n++];
        struct usb_power_plan plan;
        const struct usb_hub *h = &t->hubs[p->hub];
        const char *label = rackmap_label(s->map, p->path), *hub = rackmap_hub(s->map, h->name);
        if (!label && p->peer >= 0) /* the map may name a port by its USB 3 half only */
            label = rackmap_label(s->map, t->ports[p->peer].path);
        if (!hub && h->peer >= 0)
            hub = rackmap_hub(s->map, t->hubs[h->peer].name);
        snprintf(d->path, sizeof d->path, "%s", p->path);
        snprintf(d->label, sizeof d->label, "%s", label ? label : p->path);
        snprintf(d->hub, sizeof d->hub, "%s", hub ? hub : t->hubs[p->hub].name);
        if (p->peer >= 0)
            snprintf(d->peer_path, sizeof d->peer_path, "%s", t->ports[p->peer].path);
        d->bus = t->hubs[p->hub].bus;
        d->depth = p->depth;
        d->power_switch = usb_power_plan(t, p->path, &plan, NULL, 0) == 0;
    }
    s->ev.topology(s->ev.arg, pd, n);
    free(pd);
}

static void start_read(struct usb_seams *s);
static void scan_denied(struct usb_seams *s);
static void start_sources(struct usb_seams *s);

static void after_read(uv_work_t *w, int status)
{
    struct usb_seams *s = w->data;
    s->reading = 0;
    if (!s->closing) {
        if (s->read_rc < 0 && s->read_rc != s->last_read_rc)
            fr_warn("usb", "%s; this host has no USB ports until it does", s->read_err);
        if (s->read_rc == 0 || s->read_rc != s->last_read_rc) {
            usb_topology_destroy(&s->topo);
            s->topo = s->fresh;
            s->fresh = NULL;
            report_topology(s);
            scan_denied(s);
        }
        s->last_read_rc = s->read_rc;
        start_sources(s);
        if (s->read_again)
            start_read(s);
    }
    usb_topology_destroy(&s->fresh);
    settle(s);
}

static void start_read(struct usb_seams *s)
{
    if (s->reading) {
        s->read_again = 1; /* the tree changed while it was being read */
        return;
    }
    s->reading = 1;
    s->read_again = 0;
    s->read_work.data = s;
    s->pending++;
    uv_queue_work(s->loop, &s->read_work, read_on_worker, after_read);
}

static void on_reread(uv_timer_t *t)
{
    start_read(t->data);
}

/* ---- unit events from the sources ---------------------------------------------- */

/* A unit on the USB 3 half of a port is named by the port's USB 2 half, as the
 * port list names it. */
static void canonical(const struct usb_seams *s, const char *path, char *out, size_t len)
{
    int i = s->topo ? usb_topology_port(s->topo, path) : -1;
    snprintf(out, len, "%s", i >= 0 ? s->topo->ports[usb_topology_primary(s->topo, i)].path : path);
}

static void on_src_attach(void *arg, const struct unit_desc *u)
{
    struct usb_seams *s = arg;
    struct unit_desc c = *u;
    canonical(s, u->path, c.path, sizeof c.path);
    s->ev.attach(s->ev.arg, &c);
}

static void on_src_mode(void *arg, const struct unit_desc *u)
{
    struct usb_seams *s = arg;
    struct unit_desc c = *u;
    canonical(s, u->path, c.path, sizeof c.path);
    s->ev.mode(s->ev.arg, &c);
}

static void on_src_detach(void *arg, const char *path, uint64_t ecid)
{
    struct usb_seams *s = arg;
    char c[32];
    canonical(s, path, c, sizeof c);
    s->ev.detach(s->ev.arg, c, ecid);
}

/* ---- units nobody can open ----------------------------------------------------- */

static int libusb_can_open(void *arg, uint32_t bus, uint32_t devnum)
{
    struct usb_seams *s = arg;
    return s->dev ? usb_dev_can_open(s->dev, bus, devnum) : FR_EUNAVAIL;
}

static int in_group(gid_t gid)
{
    gid_t groups[256];
    int n = getgroups(256, groups);
    for (int i = 0; i < n; i++)
        if (groups[i] == gid)
            return 1;
    return gid == getegid();
}

/* With a recorded tree (host_root set) its device nodes answer, not this host's
 * libusb. libusb opens /dev/bus/usb/BBB/DDD read-write, which the kernel grants a
 * process without privileges when the node's owner, group or other bits allow it;
 * the agent runs as its own user, so root's override is not counted. */
static int node_can_open(void *arg, uint32_t bus, uint32_t devnum)
{
    struct usb_seams *s = arg;
    char node[PATH_MAX + 32];
    struct stat st;
    snprintf(node, sizeof node, "%s/dev/bus/usb/%03u/%03u", s->host_root, bus, devnum);
    if (stat(node, &st) != 0)
        return FR_ENOTFOUND;
    int shift = st.st_uid == geteuid() ? 6 : in_group(st.st_gid) ? 3 : 0;
    return ((st.st_mode >> shift) & 06) == 06 ? 0 : FR_ESYS;
}

/* A unit whose device the agent's user may not open: named by its serial string in
 * sysfs (readable by anyone) and reported with the reason and the fix. 0, or -1 when
 * its serial string says nothing usable. */
static int denied_unit(const struct usb_device_entry *d, struct unit_desc *u)
{
    struct irecv_serial id;
    char err[160];
    if (irecv_serial_parse(d->serial, &id, err, sizeof err) < 0) {
        fr_warn("usb", "a unit on port '%s' (05ac:%04x) may not be opened and its serial string "
                "says no ECID (%s): install deploy/udev/" UDEV_RULE, d->path, d->pid, err);
        return -1;
    }
    *u = (struct unit_desc){ .ecid = id.ecid, .mode = irecv_mode_of_pid(d->pid), .cpid = id.cpid,
                             .bdid = id.bdid };
    snprintf(u->path, sizeof u->path, "%s", d->path);
    snprintf(u->serial, sizeof u->serial, "%s", id.srnm);
    snprintf(u->reason, sizeof u->reason, "permission denied opening its USB device (05ac:%04x, "
             "%s mode): install deploy/udev/" UDEV_RULE " in /etc/udev/rules.d, add the agent's "
             "user to group flashrack, then plug the unit in again", d->pid, fr_mode_name(u->mode));
    fr_error("usb", "unit 0x%016llX on port '%s' needs an operator: %s", (unsigned long long)id.ecid,
             d->path, u->reason);
    return 0;
}

static const struct usb_device_entry *device_at(const struct usb_device_entry *devs, size_t n,
                                                const char *path)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(devs[i].path, path) == 0 && irecv_pid_is_irecv(devs[i].pid))
            return &devs[i];
    return NULL;
}

/* Units reported denied that left (detached) or may be opened now (reported again
 * without a reason). */
static void recheck_denied(struct usb_seams *s, const struct usb_device_entry *devs, size_t n)
{
    for (size_t i = 0; i < s->ndenied;) {
        struct denied *d = &s->denied[i];
        const struct usb_device_entry *e = device_at(devs, n, d->path);
        struct unit_desc u;
        if (e && s->can_open(s->can_open_arg, e->bus, e->devnum) == FR_ESYS) {
            i++;
            continue;
        }
        if (!e)
            on_src_detach(s, d->path, d->ecid);
        else if (denied_unit(e, &u) == 0) {
            u.reason[0] = '\0';
            fr_info("usb", "unit 0x%016llX on port '%s' may be opened now", (unsigned long long)u.ecid,
                    u.path);
            on_src_attach(s, &u);
        }
        *d = s->denied[--s->ndenied];
    }
}

/* libirecovery reports only the units it can open; the DFU/recovery units on this host
 * that the agent's user may not open are reported here, needing an operator. Run after
 * each tree read and when a DFU/recovery device comes or goes. */
static void scan_denied(struct usb_seams *s)
{
    struct usb_device_entry *devs = NULL;
    size_t n = 0;
    if (usb_topology_devices(s->host_root, APPLE_VID, &devs, &n) < 0)
        n = 0;
    recheck_denied(s, devs, n);
    for (size_t i = 0; i < n; i++) {
        int known = 0;
        for (size_t j = 0; j < s->ndenied && !known; j++)
            known = strcmp(s->denied[j].path, devs[i].path) == 0;
        struct unit_desc u;
        if (known || !irecv_pid_is_irecv(devs[i].pid) || s->ndenied == MAX_DENIED ||
            s->can_open(s->can_open_arg, devs[i].bus, devs[i].devnum) != FR_ESYS ||
            denied_unit(&devs[i], &u) < 0)
            continue;
        struct denied *d = &s->denied[s->ndenied++];
        snprintf(d->path, sizeof d->path, "%s", u.path);
        d->ecid = u.ecid;
        on_src_attach(s, &u);
    }
    free(devs);
}

static void on_usb_change(void *arg, const struct usb_dev_event *e)
{
    struct usb_seams *s = arg;
    if (e->device_class == 9)
        uv_timer_start(&s->reread, on_reread, REREAD_DELAY_MS, 0);
    else if (e->vid == APPLE_VID && irecv_pid_is_irecv(e->pid))
        scan_denied(s);
}

/* ---- power --------------------------------------------------------------------- */

static void power_on_worker(uv_work_t *w)
{
    struct power_job *j = w->data;
    j->rc = usb_power_apply(&j->plan, j->on, j->s->host_root, j->s->dev, j->err, sizeof j->err);
}

static void on_job_closed(uv_handle_t *h)
{
    struct power_job *j = h->data;
    struct usb_seams *s = j->s;
    for (struct power_job **pp = &s->jobs; *pp; pp = &(*pp)->next)
        if (*pp == j) {
            *pp = j->next;
            break;
        }
    free(j);
    settle(s);
}

static void after_power(uv_work_t *w, int status);

static void power_switch_on(uv_timer_t *t)
{
    struct power_job *j = t->data;
    j->on = 1;
    uv_queue_work(j->s->loop, &j->work, power_on_worker, after_power);
}

static void after_power(uv_work_t *w, int status)
{
    struct power_job *j = w->data;
    if (j->rc < 0)
        fr_error("usb", "port '%s' power %s: %s", j->path, j->on ? "on" : "off", j->err);
    else if (j->on)
        fr_info("usb", "port '%s' power cycle: done", j->path);
    if (j->rc == 0 && !j->on) { /* off: wait, then on (at once when the seams close) */
        uv_timer_start(&j->wait, power_switch_on, j->s->closing ? 0 : POWER_OFF_MS, 0);
        return;
    }
    uv_close((uv_handle_t *)&j->wait, on_job_closed);
}

static int usb_power_cycle(struct seams *base, const char *path, char *err, size_t errlen)
{
    struct usb_seams *s = base->impl;
    if (!s->topo)
        return fr_seterr(FR_EUNAVAIL, err, errlen, "no USB tree read on this host");
    struct power_job *j = calloc(1, sizeof *j);
    if (!j)
        return fr_seterr(FR_ENOMEM, err, errlen, "out of memory");
    int rc = usb_power_plan(s->topo, path, &j->plan, err, errlen);
    if (rc == 0 && j->plan.steps[0].method == USB_POWER_HUB_REQUEST && !s->dev)
        rc = fr_seterr(FR_EUNAVAIL, err, errlen, "port '%s': libusb is not available", path);
    if (rc < 0) {
        free(j);
        return rc;
    }
    j->s = s;
    snprintf(j->path, sizeof j->path, "%s", path);
    j->work.data = j->wait.data = j;
    uv_timer_init(s->loop, &j->wait);
    j->next = s->jobs;
    s->jobs = j;
    s->pending++;
    uv_queue_work(s->loop, &j->work, power_on_worker, after_power);
    fr_info("usb", "port '%s' power cycle: switching %d half%s off", path, j->plan.n,
            j->plan.n > 1 ? "ves" : "");
    return 0;
}

/* ---- normal mode --------------------------------------------------------------- */

/* A normal-mode unit's port: its USB device in sysfs, found by its serial (the UDID). */
static int resolve_port(void *arg, const char *udid, char *path, size_t len)
{
    struct usb_seams *s = arg;
    return usb_topology_find_serial(s->host_root, APPLE_VID, udid, path, len);
}

static int usb_enter_recovery(struct seams *base, const char *path, uint64_t ecid,
                              void (*cb)(void *arg, int rc, const char *why), void *arg)
{
    struct usb_seams *s = base->impl;
    for (size_t i = 0; i < s->nsources; i++)
        if (strcmp(s->sources[i]->name, "usbmuxd") == 0)
            return muxd_discovery_enter_recovery(s->sources[i], ecid, cb, arg);
    return FR_ENOTFOUND;
}

/* ---- lifecycle ----------------------------------------------------------------- */

static void on_source_closed(struct discovery_source *src)
{
    settle(src->owner);
}

static void on_dev_closed(void *arg)
{
    settle(arg);
}

static void on_timer_closed(uv_handle_t *h)
{
    settle(h->data);
}

/* The sources start once the first tree is reported (it always is: read or failed), so
 * that a unit already present, which a source reports as soon as it starts, finds its
 * port in the agent's table and is named canonically. Started earlier, such a unit
 * raced the tree's read on the worker, was dropped on an unknown port and never
 * reported again. */
static void start_sources(struct usb_seams *s)
{
    char why[256];
    if (s->sources_started)
        return;
    s->sources_started = 1;
    for (size_t i = 0; i < s->nsources; i++) {
        s->sources[i]->owner = s;
        if (s->sources[i]->start(s->sources[i], s->loop, &s->src_ev, why, sizeof why) < 0)
            fr_warn("usb", "%s discovery: %s", s->sources[i]->name, why);
        s->pending++;
    }
}

static int usb_start(struct seams *base, uv_loop_t *loop, const struct seam_events *ev, char *err,
                     size_t errlen)
{
    struct usb_seams *s = base->impl;
    s->loop = loop;
    s->ev = *ev;
    s->src_ev = (struct seam_events){ NULL, on_src_attach, on_src_detach, on_src_mode, s };
    uv_timer_init(loop, &s->reread);
    s->reread.data = s;
    s->pending++;
    char why[256];
    if (usb_dev_new(&s->dev, why, sizeof why) < 0)
        fr_warn("usb", "%s: no hotplug, no hub descriptors, no hub power requests", why);
    else if (usb_dev_start(s->dev, loop, on_usb_change, s, why, sizeof why) < 0)
        fr_warn("usb", "%s: the USB tree is read once, at start", why);
    else
        s->dev_started = ++s->pending;
    start_read(s); /* the sources start after it (start_sources) */
    return 0;
}

static void usb_close(struct seams *base, void (*cb)(struct seams *))
{
    struct usb_seams *s = base->impl;
    s->closing = 1;
    s->on_closed = cb;
    if (!s->loop) { /* never started */
        if (cb)
            cb(base);
        return;
    }
    s->pending++; /* held while closing starts */
    for (size_t i = 0; s->sources_started && i < s->nsources; i++)
        s->sources[i]->close(s->sources[i], on_source_closed);
    if (s->dev_started)
        usb_dev_close(s->dev, on_dev_closed, s);
    for (struct power_job *j = s->jobs; j; j = j->next)
        if (uv_is_active((uv_handle_t *)&j->wait))
            uv_timer_start(&j->wait, power_switch_on, 0, 0); /* never leave a port off */
    uv_close((uv_handle_t *)&s->reread, on_timer_closed);
    settle(s);
}

static void usb_destroy(struct seams *base)
{
    struct usb_seams *s = base->impl;
    for (size_t i = 0; i < s->nsources; i++)
        s->sources[i]->destroy(s->sources[i]);
    usb_dev_destroy(&s->dev);
    usb_topology_destroy(&s->topo);
    usb_topology_destroy(&s->fresh);
    rackmap_destroy(&s->map);
    free(s);
}

int seams_usb_new(const char *host_root, const char *rack_map, struct seams **out, char *err,
                  size_t errlen)
{
    *out = NULL;
    struct usb_seams *s = calloc(1, sizeof *s);
    if (!s)
        return fr_seterr(FR_ENOMEM, err, errlen, "out of memory");
    if (rack_map && *rack_map) {
        int rc = rackmap_load(rack_map, &s->map, err, errlen);
        if (rc < 0) {
            free(s);
            return rc == FR_ENOTFOUND ? FR_ECONFIG : rc;
        }
    }
    s->base.name = "usb";
    s->base.start = usb_start;
    s->base.power_cycle = usb_power_cycle;
    s->base.close = usb_close;
    s->base.destroy = usb_destroy;
    s->base.impl = s;
    snprintf(s->host_root, sizeof s->host_root, "%s", host_root ? host_root : "");
    /* The discovery sources: DFU/recovery from libirecovery, normal mode from usbmuxd. */
    int rc = irecv_source_new(s->host_root, &s->sources[s->nsources], err, errlen);
    if (rc == 0)
        s->nsources++;
    if (rc == 0 && (rc = muxd_discovery_new(resolve_port, s, &s->sources[s->nsources], err,
                                            errlen)) == 0)
        s->nsources++;
    if (rc < 0) {
        for (size_t i = 0; i < s->nsources; i++)
            s->sources[i]->destroy(s->sources[i]);
        rackmap_destroy(&s->map);
        free(s);
        return rc;
    }
    s->base.enter_recovery = usb_enter_recovery;
    s->can_open = s->host_root[0] ? node_can_open : libusb_can_open;
    s->can_open_arg = s;
    *out = &s->base;
    return 0;
}

void seams_usb_set_open(struct seams *base, seams_usb_open_fn fn, void *arg)
{
    struct usb_seams *s = base->impl;
    s->can_open = fn;
    s->can_open_arg = arg;
}

int seams_usb_add_source(struct seams *base, struct discovery_source *src)
{
    struct usb_seams *s = base->impl;
    if (s->nsources == MAX_SOURCES)
        return FR_EINVAL;
    s->sources[s->nsources++] = src;
    return 0;
}
