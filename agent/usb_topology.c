/* usb_topology — reading the host's USB tree from sysfs plus hub descriptors. */
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fr_err.h"
#include "usb_topology.h"

#define DEVICES "sys/bus/usb/devices"
#define MAX_HUBS 256
#define MAX_PORTS 64
#define IRECV_SERIAL_BUF 260 /* a USB string descriptor as UTF-8, and its newline */ /* per hub: USB 2 allows 255, real hubs stop well below */

const char *usb_switching_name(enum usb_switching s)
{
    static const char *const names[] = { "unknown", "ganged", "per-port", "none" };
    return (unsigned)s < 4 ? names[s] : "unknown";
}

struct reader {
    char dir[PATH_MAX];
    struct usb_topology *t;
    size_t hubs_cap, ports_cap;
    char *err;
    size_t errlen;
};

/* Reads one attribute line into buf (newline stripped). Returns 0, or -1 if absent
 * (a path longer than the kernel allows is absent too, never a truncated other path). */
static int attr(const char *dir, const char *name, char *buf, size_t len)
{
    char path[PATH_MAX + 64];
    if ((size_t)snprintf(path, sizeof path, "%s/%s", dir, name) >= sizeof path)
        return -1;
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    if (!fgets(buf, (int)len, f))
        buf[0] = '\0';
    fclose(f);
    buf[strcspn(buf, "\n")] = '\0';
    return 0;
}

static int attr_num(struct reader *r, const char *dev, const char *name, int base,
                    unsigned long max, unsigned long *out)
{
    char dir[PATH_MAX + 40], buf[32], *end;
    snprintf(dir, sizeof dir, "%s/%s", r->dir, dev);
    if (attr(dir, name, buf, sizeof buf) < 0)
        return fr_seterr(FR_EIO, r->err, r->errlen, "cannot read '%s/%s': %s", dir, name,
                         strerror(errno));
    errno = 0;
    *out = strtoul(buf, &end, base);
    if (!buf[0] || *end || errno || *out > max)
        return fr_seterr(FR_EIO, r->err, r->errlen, "'%s/%s': expected a number up to %lu, got '%s'",
                         dir, name, max, buf);
    return 0;
}

int usb_hubdesc_parse(const uint8_t *d, size_t len, int *nports, enum usb_switching *sw)
{
    if (len < 5 || d[0] < 5 || (d[1] != USB_HUB_DESC_USB2 && d[1] != USB_HUB_DESC_USB3))
        return FR_EINVAL;
    uint16_t chars = (uint16_t)(d[3] | d[4] << 8);
    *nports = d[2];
    *sw = (chars & 0x2) ? USB_SWITCH_NONE : (chars & 0x1) ? USB_SWITCH_PER_PORT : USB_SWITCH_GANGED;
    return 0;
}

/* "usb3" -> 3; "3-1.4" -> its name as is. Whether a device entry is a hub. */
static int is_hub_entry(struct reader *r, const char *name)
{
    if (strchr(name, ':') || name[0] == '.')
        return 0; /* an interface, or . and .. */
    char dir[PATH_MAX + 40], cls[8];
    if ((size_t)snprintf(dir, sizeof dir, "%s/%s", r->dir, name) >= sizeof dir)
        return 0;
    return attr(dir, "bDeviceClass", cls, sizeof cls) == 0 && strcmp(cls, "09") == 0;
}

static int grow(void **arr, size_t *cap, size_t n, size_t size, size_t max)
{
    if (n < *cap)
        return 0;
    if (n >= max)
        return FR_ETOOBIG;
    size_t ncap = *cap ? *cap * 2 : 16;
    void *p = realloc(*arr, ncap * size);
    if (!p)
        return FR_ENOMEM;
    *arr = p;
    *cap = ncap;
    return 0;
}

static int add_hub(struct reader *r, const char *name, usb_hubdesc_fn desc, void *arg)
{
    struct usb_topology *t = r->t;
    if (grow((void **)&t->hubs, &r->hubs_cap, t->nhubs, sizeof *t->hubs, MAX_HUBS) < 0)
        return fr_seterr(FR_ETOOBIG, r->err, r->errlen, "more than %d hubs", MAX_HUBS);
    struct usb_hub *h = &t->hubs[t->nhubs];
    memset(h, 0, sizeof *h);
    snprintf(h->name, sizeof h->name, "%s", name);
    unsigned long bus, devnum, vid, pid, maxchild, speed;
    char devpath[32], dir[PATH_MAX + 40];
    if (attr_num(r, name, "busnum", 10, 255, &bus) < 0 || attr_num(r, name, "devnum", 10, 255, &devnum) < 0 ||
        attr_num(r, name, "idVendor", 16, 0xffff, &vid) < 0 ||
        attr_num(r, name, "idProduct", 16, 0xffff, &pid) < 0 ||
        attr_num(r, name, "maxchild", 10, MAX_PORTS, &maxchild) < 0 ||
        attr_num(r, name, "speed", 10, 100000, &speed) < 0)
        return FR_EIO;
    snprintf(dir, sizeof dir, "%s/%s", r->dir, name);
    if (attr(dir, "devpath", devpath, sizeof devpath) < 0)
        return fr_seterr(FR_EIO, r->err, r->errlen, "cannot read '%s/devpath'", dir);
    h->bus = (uint32_t)bus;
    h->devnum = (uint32_t)devnum;
    h->vid = (uint16_t)vid;
    h->pid = (uint16_t)pid;
    h->nports = (int)maxchild;
    h->superspeed = speed >= 5000;
    h->tier = strcmp(devpath, "0") == 0 ? 0 : 1; /* devpath "1.4": tier 2 */
    for (const char *c = devpath; h->tier && *c; c++)
        h->tier += *c == '.';
    h->peer = h->parent = -1;
    uint8_t d[64];
    int n = desc ? desc(arg, h, d, sizeof d) : FR_EUNAVAIL, nports;
    if (n > 0 && usb_hubdesc_parse(d, (size_t)n, &nports, &h->switching) < 0)
        h->switching = USB_SWITCH_UNKNOWN;
    t->nhubs++;
    return 0;
}

/* The path of what plugs into port num of hub h: "1-3" on root hub usb1, "1-1.4.2"
 * on port 2 of hub 1-1.4. */
static int port_path(const struct usb_hub *h, int num, char *buf, size_t len)
{
    int n = h->tier == 0 ? snprintf(buf, len, "%u-%d", h->bus, num)
                         : snprintf(buf, len, "%s.%d", h->name, num);
    return n >= 0 && (size_t)n < len ? 0 : -1;
}

/* The sysfs directory of port num of hub h. */
static void port_dir(struct reader *r, const struct usb_hub *h, int num, char *buf, size_t len)
{
    if (h->tier == 0)
        snprintf(buf, len, "%s/%u-0:1.0/%s-port%d", r->dir, h->bus, h->name, num);
    else
        snprintf(buf, len, "%s/%s:1.0/%s-port%d", r->dir, h->name, h->name, num);
}

static int add_ports(struct reader *r, int hi)
{
    struct usb_topology *t = r->t;
    for (int num = 1; num <= t->hubs[hi].nports; num++) {
        if (grow((void **)&t->ports, &r->ports_cap, t->nports, sizeof *t->ports,
                 MAX_HUBS * MAX_PORTS) < 0)
            return fr_seterr(FR_ENOMEM, r->err, r->errlen, "out of memory reading ports");
        struct usb_port *p = &t->ports[t->nports++];
        memset(p, 0, sizeof *p);
        const struct usb_hub *h = &t->hubs[hi];
        if (port_path(h, num, p->path, sizeof p->path) < 0) /* past USB's 7 tiers */
            return fr_seterr(FR_ETOOBIG, r->err, r->errlen, "%s: port %d: its path is too long",
                             h->name, num);
        p->hub = hi;
        p->num = num;
        p->depth = h->tier + 1;
        p->peer = p->child_hub = -1;
        char dir[PATH_MAX + 120];
        port_dir(r, h, num, dir, sizeof dir);
        if (attr(dir, "connect_type", p->connect_type, sizeof p->connect_type) < 0)
            snprintf(p->connect_type, sizeof p->connect_type, "unknown");
        p->has_disable = access((snprintf(dir + strlen(dir), 16, "/disable"), dir), F_OK) == 0;
    }
    return 0;
}

static int hub_find(const struct usb_topology *t, const char *name)
{
    for (size_t i = 0; i < t->nhubs; i++)
        if (strcmp(t->hubs[i].name, name) == 0)
            return (int)i;
    return -1;
}

int usb_topology_port(const struct usb_topology *t, const char *path)
{
    for (size_t i = 0; i < t->nports; i++)
        if (strcmp(t->ports[i].path, path) == 0)
            return (int)i;
    return -1;
}

static int port_of(const struct usb_topology *t, int hub, int num)
{
    for (size_t i = 0; i < t->nports; i++)
        if (t->ports[i].hub == hub && t->ports[i].num == num)
            return (int)i;
    return -1;
}

/* Follows port i's sysfs peer link ("../../2-1:1.0/2-1-port3") to the port it names. */
static int peer_link(struct reader *r, int i)
{
    const struct usb_port *p = &r->t->ports[i];
    char dir[PATH_MAX + 120], target[PATH_MAX];
    port_dir(r, &r->t->hubs[p->hub], p->num, dir, sizeof dir);
    strncat(dir, "/peer", sizeof dir - strlen(dir) - 1);
    ssize_t n = readlink(dir, target, sizeof target - 1);
    if (n <= 0)
        return -1;
    target[n] = '\0';
    char *base = strrchr(target, '/');
    base = base ? base + 1 : target;
    char *mark = strstr(base, "-port");
    if (!mark)
        return -1;
    *mark = '\0';
    int hub = hub_find(r->t, base);
    return hub < 0 ? -1 : port_of(r->t, hub, atoi(mark + 5));
}

/* Links every hub to its parent and the port it hangs on. */
static void link_parents(struct usb_topology *t)
{
    for (size_t i = 0; i < t->nhubs; i++) {
        int p = t->hubs[i].tier ? usb_topology_port(t, t->hubs[i].name) : -1;
        if (p >= 0) {
            t->ports[p].child_hub = (int)i;
            t->hubs[i].parent = t->ports[p].hub;
        }
    }
}

/* The two halves of one physical hub: hubs on peered upstream ports, or (no peer
 * links) a USB 2 and a USB 3 hub of one vendor at the same devpath under paired
 * parents. */
static int same_hub(const struct usb_topology *t, const struct usb_hub *a, const struct usb_hub *b)
{
    if (a->tier == 0) /* xHCI's two root hubs: USB 2 (1d6b:0002) on bus n, USB 3 on n + 1 */
        return a->nports == b->nports && a->vid == b->vid && a->pid == 0x0002 && b->pid == 0x0003 &&
               a->bus + 1 == b->bus;
    int pa = usb_topology_port(t, a->name), pb = usb_topology_port(t, b->name);
    if (pa >= 0 && t->ports[pa].peer >= 0)
        return t->ports[pa].peer == pb;
    return a->vid == b->vid && a->parent >= 0 && t->hubs[a->parent].peer == b->parent &&
           strcmp(strchr(a->name, '-'), strchr(b->name, '-')) == 0;
}

/* The two halves of one physical hub: hubs on peered upstream ports, or (no peer
 * links) a USB 2 and a USB 3 hub of one vendor at the same devpath under paired
 * parents. Tier by tier, so that parents are paired first. */
static void pair_hubs(struct usb_topology *t)
{
    for (uint32_t tier = 0; tier < 8; tier++)
        for (size_t i = 0; i < t->nhubs; i++) {
            struct usb_hub *a = &t->hubs[i];
            for (size_t j = 0; a->tier == tier && !a->superspeed && a->peer < 0 && j < t->nhubs; j++) {
                struct usb_hub *b = &t->hubs[j];
                if (b->superspeed && b->peer < 0 && b->tier == tier && same_hub(t, a, b)) {
                    a->peer = (int)j;
                    b->peer = (int)i;
                }
            }
        }
}

static void pair_ports(struct reader *r)
{
    struct usb_topology *t = r->t;
    for (size_t i = 0; i < t->nports; i++)
        t->ports[i].peer = peer_link(r, (int)i);
    link_parents(t);
    pair_hubs(t);
    for (size_t i = 0; i < t->nports; i++) { /* no peer link: same number on the other half */
        struct usb_port *p = &t->ports[i];
        int other = t->hubs[p->hub].peer;
        if (p->peer < 0 && other >= 0)
            p->peer = port_of(t, other, p->num);
    }
}

/* A hub's internal daisy chain: a hub hard-wired to the port (or one the kernel
 * calls fixed, from the parent's DeviceRemovable bits). */
static void mark_internal(struct reader *r)
{
    struct usb_topology *t = r->t;
    for (size_t i = 0; i < t->nports; i++) {
        struct usb_port *p = &t->ports[i];
        if (p->child_hub < 0 || t->hubs[p->hub].tier == 0)
            continue;
        char dir[PATH_MAX + 40], removable[16] = "";
        snprintf(dir, sizeof dir, "%s/%s", r->dir, t->hubs[p->child_hub].name);
        attr(dir, "removable", removable, sizeof removable);
        p->internal = strcmp(p->connect_type, "hardwired") == 0 || strcmp(removable, "fixed") == 0;
    }
}

static int name_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int read_hubs(struct reader *r, usb_hubdesc_fn desc, void *arg)
{
    DIR *d = opendir(r->dir);
    if (!d)
        return fr_seterr(errno == ENOENT ? FR_ENOTFOUND : FR_EIO, r->err, r->errlen,
                         "no USB subsystem: cannot open '%s': %s", r->dir, strerror(errno));
    char *names[MAX_HUBS];
    size_t n = 0;
    int rc = 0;
    for (struct dirent *e; (e = readdir(d)) != NULL;)
        if (is_hub_entry(r, e->d_name)) {
            if (n == MAX_HUBS) {
                rc = fr_seterr(FR_ETOOBIG, r->err, r->errlen, "more than %d hubs", MAX_HUBS);
                break;
            }
            names[n++] = strdup(e->d_name);
        }
    closedir(d);
    qsort(names, n, sizeof *names, name_cmp); /* readdir order is the file system's */
    for (size_t i = 0; i < n; i++) {
        if (rc == 0)
            rc = add_hub(r, names[i], desc, arg);
        free(names[i]);
    }
    return rc;
}

int usb_topology_read(const char *host_root, usb_hubdesc_fn desc, void *arg,
                      struct usb_topology **out, char *err, size_t errlen)
{
    *out = NULL;
    struct reader r = { .err = err, .errlen = errlen };
    snprintf(r.dir, sizeof r.dir, "%s/%s", host_root && *host_root ? host_root : "", DEVICES);
    r.t = calloc(1, sizeof *r.t);
    if (!r.t)
        return fr_seterr(FR_ENOMEM, err, errlen, "out of memory");
    int rc = read_hubs(&r, desc, arg);
    for (size_t i = 0; rc == 0 && i < r.t->nhubs; i++)
        rc = add_ports(&r, (int)i);
    if (rc < 0) {
        usb_topology_destroy(&r.t);
        return rc;
    }
    pair_ports(&r);
    mark_internal(&r);
    *out = r.t;
    return 0;
}

void usb_topology_destroy(struct usb_topology **t)
{
    if (*t) {
        free((*t)->hubs);
        free((*t)->ports);
        free(*t);
        *t = NULL;
    }
}

int usb_topology_primary(const struct usb_topology *t, int port)
{
    const struct usb_port *p = &t->ports[port];
    if (p->peer >= 0 && t->hubs[p->hub].superspeed)
        return p->peer;
    return port;
}

int usb_topology_is_rack_port(const struct usb_topology *t, int port)
{
    const struct usb_port *p = &t->ports[port];
    int peer_hub = p->peer >= 0 ? t->ports[p->peer].child_hub : -1;
    return !p->internal && p->child_hub < 0 && peer_hub < 0 && strcmp(p->connect_type, "not used") &&
           usb_topology_primary(t, port) == port;
}

/* Reads one device directory into e; 0, or -1 when it is not vid's or lacks a number. */
static int device_entry(const char *dir, const char *name, uint16_t vid, struct usb_device_entry *e)
{
    char dev[PATH_MAX + 260], buf[16], want[8];
    if (strlen(name) >= sizeof e->path || (size_t)snprintf(dev, sizeof dev, "%s/%s", dir, name) >= sizeof dev)
        return -1; /* no USB device's name is that long */
    snprintf(want, sizeof want, "%04x", vid);
    if (attr(dev, "idVendor", buf, sizeof buf) < 0 || strcmp(buf, want) != 0)
        return -1;
    memset(e, 0, sizeof *e);
    snprintf(e->path, sizeof e->path, "%s", name);
    e->vid = vid;
    if (attr(dev, "idProduct", buf, sizeof buf) < 0)
        return -1;
    e->pid = (uint16_t)strtoul(buf, NULL, 16);
    if (attr(dev, "busnum", buf, sizeof buf) < 0)
        return -1;
    e->bus = (uint32_t)strtoul(buf, NULL, 10);
    if (attr(dev, "devnum", buf, sizeof buf) < 0)
        return -1;
    e->devnum = (uint32_t)strtoul(buf, NULL, 10);
    if (attr(dev, "serial", e->serial, sizeof e->serial) < 0)
        e->serial[0] = '\0';
    return 0;
}

int usb_topology_devices(const char *host_root, uint16_t vid, struct usb_device_entry **out,
                         size_t *n)
{
    char dir[PATH_MAX];
    snprintf(dir, sizeof dir, "%s/%s", host_root && *host_root ? host_root : "", DEVICES);
    *out = NULL;
    *n = 0;
    DIR *d = opendir(dir);
    if (!d)
        return FR_ENOTFOUND;
    size_t cap = 0;
    int rc = 0;
    for (struct dirent *e; rc == 0 && (e = readdir(d)) != NULL;) {
        if (strchr(e->d_name, ':') || e->d_name[0] == '.' || strncmp(e->d_name, "usb", 3) == 0)
            continue;
        if (*n == cap)
            rc = grow((void **)out, &cap, *n, sizeof **out, MAX_HUBS * MAX_PORTS);
        if (rc == 0 && device_entry(dir, e->d_name, vid, &(*out)[*n]) == 0)
            (*n)++;
    }
    closedir(d);
    return rc;
}

int usb_topology_find_serial(const char *host_root, uint16_t vid, const char *serial, char *path,
                             size_t len)
{
    struct usb_device_entry *devs;
    size_t n;
    int rc = usb_topology_devices(host_root, vid, &devs, &n);
    for (size_t i = 0; rc == 0 && i < n; i++)
        if (strcmp(devs[i].serial, serial) == 0) {
            snprintf(path, len, "%s", devs[i].path);
            free(devs);
            return 0;
        }
    free(devs);
    return FR_ENOTFOUND;
}
