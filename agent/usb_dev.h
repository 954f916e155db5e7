/* usb_dev — the agent's one wrapper around libusb-1.0: the context, hotplug on
 * the libuv loop, hub descriptors and hub port-power requests, and whether a
 * device can be opened. Nothing else in flashrack includes libusb.h.
 *
 * Hotplug: libusb's own file descriptors sit on uv_poll handles (added and
 * removed through libusb's pollfd notifiers) and libusb_handle_events runs with a
 * zero timeout when one is readable, so libusb's hotplug callbacks run on the
 * loop thread. A callback only records the device; on_change runs on a later
 * loop turn, outside libusb's event handling, where opening devices is allowed.
 *
 * Loop thread only, except usb_dev_hubdesc/usb_dev_port_power/usb_dev_can_open,
 * which block for at most a second and may run on a worker. */
#ifndef USB_DEV_H
#define USB_DEV_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

struct usb_dev;

/* One device arriving or leaving. */
struct usb_dev_event {
    int arrived;           /* 1 arrived, 0 left */
    uint32_t bus, devnum;
    uint16_t vid, pid;
    uint8_t device_class;
    char path[32];         /* kernel port path "1-1.4.2" (from libusb_get_port_numbers) */
};

typedef void (*usb_dev_change_fn)(void *arg, const struct usb_dev_event *ev);

/* libusb_init. FR_EUNAVAIL with libusb's reason when there is no USB subsystem
 * (this is a state the agent reports, not a crash). */
int usb_dev_new(struct usb_dev **out, char *err, size_t errlen);
/* Joins the loop: hotplug events for devices present now and later go to cb.
 * FR_EUNAVAIL when this libusb cannot do hotplug (then nothing is started). */
int usb_dev_start(struct usb_dev *d, uv_loop_t *loop, usb_dev_change_fn cb, void *arg, char *err,
                  size_t errlen);
/* Leaves the loop; cb(arg) runs once every handle is closed. */
void usb_dev_close(struct usb_dev *d, void (*cb)(void *arg), void *arg);
/* Frees the context (after close, or when never started). */
void usb_dev_destroy(struct usb_dev **d);

/* The hub class descriptor of the hub at bus/devnum (type 0x2a when usb3, else
 * 0x29) into buf; returns its length, FR_ENOTFOUND, FR_ESYS (EACCES: no
 * permission) or FR_EIO. */
int usb_dev_hubdesc(struct usb_dev *d, uint32_t bus, uint32_t devnum, int usb3, uint8_t *buf,
                    size_t cap);
/* SET_FEATURE (on) or CLEAR_FEATURE PORT_POWER on port of the hub at bus/devnum. */
int usb_dev_port_power(struct usb_dev *d, uint32_t bus, uint32_t devnum, int port, int on,
                       char *err, size_t errlen);
/* Whether the device at bus/devnum can be opened: 0, FR_ESYS for no permission
 * (LIBUSB_ERROR_ACCESS), FR_ENOTFOUND when it is gone, FR_EIO otherwise. */
int usb_dev_can_open(struct usb_dev *d, uint32_t bus, uint32_t devnum);

#endif
