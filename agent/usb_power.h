/* usb_power — which requests power-cycle one rack port, or why it cannot be done.
 *
 * usb_power_plan() is the decision, a pure function of the topology: both halves
 * of a USB 3 port (the USB 3 half first, as the hub sees them), each through the
 * kernel's port/disable file where it exists (the kernel then knows the port is
 * off and does not power it again) or else a hub-class SET/CLEAR_FEATURE
 * PORT_POWER request (bmRequestType 0x23, feature 8, wIndex = port). It refuses a
 * hub's internal daisy-chain port, a port with a hub on it, and any half whose
 * hub descriptor says ganged, none or could not be read.
 * usb_power_apply() carries a plan out (usb_dev for the requests). */
#ifndef USB_POWER_H
#define USB_POWER_H

#include <stddef.h>
#include <stdint.h>

#include "usb_topology.h"

#define USB_REQ_CLEAR_FEATURE 0x01
#define USB_REQ_SET_FEATURE 0x03
#define USB_RT_PORT 0x23 /* host to device, class, other (a hub port) */
#define USB_PORT_FEAT_POWER 8

enum usb_power_method {
    USB_POWER_SYSFS,       /* write 1/0 to .../HUB-portN/disable */
    USB_POWER_HUB_REQUEST, /* SET/CLEAR_FEATURE PORT_POWER to the hub */
};

struct usb_power_step {
    enum usb_power_method method;
    char hub[32];          /* kernel name of the hub */
    uint32_t bus, devnum;  /* the hub's, for a hub request */
    int port;              /* port number on that hub */
    char path[32];         /* the port's path (this half) */
};

struct usb_power_plan {
    struct usb_power_step steps[2];
    int n;
};

/* Decides how to switch the port named by path (either half). Returns 0 with the
 * plan, FR_ENOTFOUND for a path this host does not have, or FR_EINVAL with the
 * reason in err (one line, naming the hub and what its descriptor says). */
int usb_power_plan(const struct usb_topology *t, const char *path, struct usb_power_plan *plan,
                   char *err, size_t errlen);

struct usb_dev;
/* Switches every half of plan on (on = 1) or off. host_root prefixes the sysfs
 * files; dev makes the hub requests. Blocking (a control transfer, at most 1 s
 * per step): call it where that is acceptable. Returns 0 or FR_EIO naming the step. */
int usb_power_apply(const struct usb_power_plan *plan, int on, const char *host_root,
                    struct usb_dev *dev, char *err, size_t errlen);

#endif
