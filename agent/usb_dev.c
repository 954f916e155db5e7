/* usb_dev — libusb on the libuv loop: pollfds on uv_poll, hotplug, control transfers. */
#include <libusb.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fr_err.h"
#include "fr_log.h"
#include "usb_dev.h"
#include "usb_power.h"

#define CTRL_TIMEOUT_MS 1000
#define MAX_PENDING 512

struct dev_poll {
    uv_poll_t poll;
    int fd;
    struct usb_dev *owner;
    struct dev_poll *next;
};

struct usb_dev {
    libusb_context *ctx;
    uv_loop_t *loop;
    usb_dev_change_fn cb;
    void *arg;
    libusb_hotplug_callback_handle hotplug;
    int hotplug_on;
    struct dev_poll *polls;
    uv_timer_t drain;        /* runs the recorded events on a later turn */
    uv_timer_t timeouts;     /* only when libusb's fds do not carry its timeouts */
    struct usb_dev_event pending[MAX_PENDING];
    size_t npending;
    uint64_t dropped;
    int open_handles, closing;
    void (*on_closed)(void *arg);
    void *closed_arg;
};

int usb_dev_new(struct usb_dev **out, char *err, size_t errlen)
{
    *out = NULL;
    struct usb_dev *d = calloc(1, sizeof *d);
    if (!d)
        return fr_seterr(FR_ENOMEM, err, errlen, "out of memory");
    int rc = libusb_init(&d->ctx);
    if (rc < 0) {
        free(d);
        return fr_seterr(FR_EUNAVAIL, err, errlen, "no USB subsystem: libusb_init: %s",
                         libusb_strerror(rc));
    }
    *out = d;
    return 0;
}

static void handle_gone(struct usb_dev *d)
{
    if (--d->open_handles == 0 && d->closing && d->on_closed)
        d->on_closed(d->closed_arg);
}

static void on_timer_closed(uv_handle_t *h)
{
    handle_gone(h->data);
}

static void on_poll_closed(uv_handle_t *h)
{
    struct dev_poll *p = h->data;
    struct usb_dev *d = p->owner;
    free(p);
    handle_gone(d);
}

static void handle_events(struct usb_dev *d)
{
    struct timeval zero = { 0, 0 };
    libusb_handle_events_timeout_completed(d->ctx, &zero, NULL);
}

static void on_poll(uv_poll_t *h, int status, int events)
{
    struct dev_poll *p = h->data;
    handle_events(p->owner);
}

static void on_timeouts(uv_timer_t *t)
{
    handle_events(t->data);
}

static void on_fd_added(int fd, short events, void *user)
{
    struct usb_dev *d = user;
    struct dev_poll *p = calloc(1, sizeof *p);
    if (!p || uv_poll_init(d->loop, &p->poll, fd) < 0) {
        fr_error("usb", "cannot watch libusb's descriptor %d; hotplug may stall", fd);
        free(p);
        return;
    }
    p->fd = fd;
    p->owner = d;
    p->poll.data = p;
    p->next = d->polls;
    d->polls = p;
    d->open_handles++;
    uv_poll_start(&p->poll, ((events & POLLIN) ? UV_READABLE : 0) | ((events & POLLOUT) ? UV_WRITABLE : 0),
                  on_poll);
}

static void on_fd_removed(int fd, void *user)
{
    struct usb_dev *d = user;
    for (struct dev_poll **pp = &d->polls; *pp; pp = &(*pp)->next)
        if ((*pp)->fd == fd) {
            struct dev_poll *p = *pp;
            *pp = p->next;
            uv_close((uv_handle_t *)&p->poll, on_poll_closed);
            return;
        }
}

static void on_drain(uv_timer_t *t)
{
    struct usb_dev *d = t->data;
    size_t n = d->npending;
    struct usb_dev_event *evs = malloc(n * sizeof *evs + 1);
    if (!evs)
        return;
    memcpy(evs, d->pending, n * sizeof *evs);
    d->npending = 0;
    for (size_t i = 0; i < n && !d->closing; i++)
        d->cb(d->arg, &evs[i]);
    free(evs);
}

/* The kernel's name for where dev hangs: bus 1, ports {1,4,2} -> "1-1.4.2". */
static void dev_path(libusb_device *dev, char *buf, size_t len)
{
    uint8_t ports[8];
    int n = libusb_get_port_numbers(dev, ports, sizeof ports);
    int off = snprintf(buf, len, "%u", libusb_get_bus_number(dev));
    for (int i = 0; i < n && off > 0 && (size_t)off < len; i++)
        off += snprintf(buf + off, len - (size_t)off, "%c%u", i ? '.' : '-', ports[i]);
    if (n <= 0)
        snprintf(buf, len, "usb%u", libusb_get_bus_number(dev)); /* a root hub */
}

/* libusb calls this from inside libusb_handle_events (or register): record only. */
static int on_hotplug(libusb_context *ctx, libusb_device *dev, libusb_hotplug_event what, void *user)
{
    struct usb_dev *d = user;
    if (d->npending == MAX_PENDING) {
        d->dropped++;
        return 0;
    }
    struct usb_dev_event *e = &d->pending[d->npending++];
    memset(e, 0, sizeof *e);
    struct libusb_device_descriptor desc;
    if (libusb_get_device_descriptor(dev, &desc) == 0) {
        e->vid = desc.idVendor;
        e->pid = desc.idProduct;
        e->device_class = desc.bDeviceClass;
    }
    e->arrived = what == LIBUSB_HOTPLUG_EVENT_DEVICE_ARRIVED;
    e->bus = libusb_get_bus_number(dev);
    e->devnum = libusb_get_device_address(dev);
    dev_path(dev, e->path, sizeof e->path);
    uv_timer_start(&d->drain, on_drain, 0, 0);
    return 0;
}

static void watch_fds(struct usb_dev *d)
{
    const struct libusb_pollfd **fds = libusb_get_pollfds(d->ctx);
    for (size_t i = 0; fds && fds[i]; i++)
        on_fd_added(fds[i]->fd, fds[i]->events, d);
    libusb_free_pollfds(fds);
    libusb_set_pollfd_notifiers(d->ctx, on_fd_added, on_fd_removed, d);
}

int usb_dev_start(struct usb_dev *d, uv_loop_t *loop, usb_dev_change_fn cb, void *arg, char *err,
                  size_t errlen)
{
    if (!libusb_has_capability(LIBUSB_CAP_HAS_HOTPLUG))
        return fr_seterr(FR_EUNAVAIL, err, errlen, "this libusb cannot report hotplug events");
    d->loop = loop;
    d->cb = cb;
    d->arg = arg;
    uv_timer_init(loop, &d->drain);
    uv_timer_init(loop, &d->timeouts);
    d->drain.data = d->timeouts.data = d;
    d->open_handles += 2;
    watch_fds(d);
    if (!libusb_pollfds_handle_timeouts(d->ctx)) /* Linux has timerfd: this is the odd case */
        uv_timer_start(&d->timeouts, on_timeouts, 100, 100);
    int rc = libusb_hotplug_register_callback(d->ctx,
                                              LIBUSB_HOTPLUG_EVENT_DEVICE_ARRIVED |
                                                  LIBUSB_HOTPLUG_EVENT_DEVICE_LEFT,
                                              LIBUSB_HOTPLUG_ENUMERATE, LIBUSB_HOTPLUG_MATCH_ANY,
                                              LIBUSB_HOTPLUG_MATCH_ANY, LIBUSB_HOTPLUG_MATCH_ANY,
                                              on_hotplug, d, &d->hotplug);
    if (rc < 0)
        fr_warn("usb", "libusb hotplug: %s", libusb_strerror(rc));
    d->hotplug_on = rc == 0;
    return 0;
}

void usb_dev_close(struct usb_dev *d, void (*cb)(void *arg), void *arg)
{
    d->closing = 1;
    d->on_closed = cb;
    d->closed_arg = arg;
    if (!d->loop) {
        if (cb)
            cb(arg);
        return;
    }
    if (d->hotplug_on)
        libusb_hotplug_deregister_callback(d->ctx, d->hotplug);
    d->hotplug_on = 0;
    libusb_set_pollfd_notifiers(d->ctx, NULL, NULL, NULL);
    while (d->polls) {
        struct dev_poll *p = d->polls;
        d->polls = p->next;
        uv_close((uv_handle_t *)&p->poll, on_poll_closed);
    }
    uv_close((uv_handle_t *)&d->drain, on_timer_closed);
    uv_close((uv_handle_t *)&d->timeouts, on_timer_closed);
}

void usb_dev_destroy(struct usb_dev **pd)
{
    if (*pd) {
        libusb_exit((*pd)->ctx);
        free(*pd);
        *pd = NULL;
    }
}

static int map_err(int rc)
{
    if (rc == LIBUSB_ERROR_ACCESS)
        return FR_ESYS;
    if (rc == LIBUSB_ERROR_NO_DEVICE || rc == LIBUSB_ERROR_NOT_FOUND)
        return FR_ENOTFOUND;
    return FR_EIO;
}

/* Opens the device at bus/devnum. */
static int open_at(struct usb_dev *d, uint32_t bus, uint32_t devnum, libusb_device_handle **h,
                   int *lrc)
{
    libusb_device **list;
    ssize_t n = libusb_get_device_list(d->ctx, &list);
    *lrc = LIBUSB_ERROR_NOT_FOUND;
    for (ssize_t i = 0; i < n; i++)
        if (libusb_get_bus_number(list[i]) == bus && libusb_get_device_address(list[i]) == devnum) {
            *lrc = libusb_open(list[i], h);
            break;
        }
    if (n >= 0)
        libusb_free_device_list(list, 1);
    return *lrc < 0 ? map_err(*lrc) : 0;
}

int usb_dev_hubdesc(struct usb_dev *d, uint32_t bus, uint32_t devnum, int usb3, uint8_t *buf,
                    size_t cap)
{
    libusb_device_handle *h;
    int lrc, rc = open_at(d, bus, devnum, &h, &lrc);
    if (rc < 0)
        return rc;
    uint8_t type = usb3 ? LIBUSB_DT_SUPERSPEED_HUB : LIBUSB_DT_HUB;
    /* GET_DESCRIPTOR, class, device: bmRequestType 0xa0 */
    int n = libusb_control_transfer(h, LIBUSB_ENDPOINT_IN | LIBUSB_REQUEST_TYPE_CLASS |
                                           LIBUSB_RECIPIENT_DEVICE,
                                    LIBUSB_REQUEST_GET_DESCRIPTOR, (uint16_t)(type << 8), 0, buf,
                                    (uint16_t)(cap > 255 ? 255 : cap), CTRL_TIMEOUT_MS);
    libusb_close(h);
    return n < 0 ? map_err(n) : n;
}

int usb_dev_port_power(struct usb_dev *d, uint32_t bus, uint32_t devnum, int port, int on,
                       char *err, size_t errlen)
{
    libusb_device_handle *h;
    int lrc, rc = open_at(d, bus, devnum, &h, &lrc);
    if (rc < 0)
        return fr_seterr(FR_EIO, err, errlen, "cannot open hub %u:%u: %s", bus, devnum,
                         libusb_strerror(lrc));
    int n = libusb_control_transfer(h, USB_RT_PORT, on ? USB_REQ_SET_FEATURE : USB_REQ_CLEAR_FEATURE,
                                    USB_PORT_FEAT_POWER, (uint16_t)port, NULL, 0, CTRL_TIMEOUT_MS);
    libusb_close(h);
    if (n < 0)
        return fr_seterr(FR_EIO, err, errlen, "hub %u:%u port %d: %s PORT_POWER: %s", bus, devnum,
                         port, on ? "SET_FEATURE" : "CLEAR_FEATURE", libusb_strerror(n));
    return 0;
}

int usb_dev_can_open(struct usb_dev *d, uint32_t bus, uint32_t devnum)
{
    libusb_device_handle *h;
    int lrc, rc = open_at(d, bus, devnum, &h, &lrc);
    if (rc == 0)
        libusb_close(h);
    return rc;
}
