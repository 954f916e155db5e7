/* usb_topology — the USB tree of one host as the agent needs it: hubs and their
 * ports named by kernel port path ("1-1.4.2" is port 2 of the hub on port 4 of
 * the hub on port 1 of root bus 1), each hub's tier and power switching, the two
 * halves (USB 2 and USB 3) of one physical port paired, and a hub's internal
 * daisy-chain port recognised.
 *
 * It is read from sysfs (HOST_ROOT/sys/bus/usb/devices, so tests point it at a
 * recorded tree); the hub class descriptor, which sysfs does not expose, comes
 * from a caller's reader (a control transfer on a real host, a file in tests).
 * Pure data once read: any thread, no handles. */
#ifndef USB_TOPOLOGY_H
#define USB_TOPOLOGY_H

#include <stddef.h>
#include <stdint.h>

/* wHubCharacteristics bits 1:0 (USB 2.0 11.23.2.1; USB 3.2 10.15.2.1). */
enum usb_switching {
    USB_SWITCH_UNKNOWN,  /* descriptor not readable */
    USB_SWITCH_GANGED,   /* 00: all ports at once */
    USB_SWITCH_PER_PORT, /* 01: each port */
    USB_SWITCH_NONE,     /* 1x: no power switching */
};
const char *usb_switching_name(enum usb_switching s);

#define USB_HUB_DESC_USB2 0x29
#define USB_HUB_DESC_USB3 0x2a

struct usb_hub {
    char name[32];       /* kernel device name: "usb1" (root hub), "1-1.4" */
    uint32_t bus, devnum;
    uint32_t tier;       /* 0 root hub, 1 a hub on a root port, ... */
    uint16_t vid, pid;
    int superspeed;      /* the USB 3 half of a hub (or a USB 3 root hub) */
    int nports;
    enum usb_switching switching;
    int peer;            /* index of the other half of the same physical hub, -1 */
    int parent;          /* index of the upstream hub, -1 for a root hub */
};

struct usb_port {
    char path[32];       /* the port path of what plugs in: "1-1.4.2" */
    int hub, num;        /* index into hubs, port number (1-based) */
    uint32_t depth;      /* hub tier + 1: 1 on a root hub (PortInfo.depth) */
    char connect_type[16]; /* hotplug, hardwired, not used, unknown (sysfs) */
    int peer;            /* index of the other half of this physical port, -1 */
    int child_hub;       /* index of the hub plugged in here, -1 */
    int internal;        /* a hub's internal daisy-chain port: never a rack port */
    int has_disable;     /* the kernel's port/disable file exists */
};

struct usb_topology {
    struct usb_hub *hubs;
    size_t nhubs;
    struct usb_port *ports;
    size_t nports;
};

/* Fills buf with the hub class descriptor of hub h (at most cap bytes); returns its
 * length or a negative FR_E* code (the hub's switching is then unknown). */
typedef int (*usb_hubdesc_fn)(void *arg, const struct usb_hub *h, uint8_t *buf, size_t cap);

/* Reads the tree under host_root ("" or "/" on a real host). A missing
 * sys/bus/usb/devices is FR_ENOTFOUND ("no USB subsystem"); an unreadable or
 * malformed attribute is FR_EIO naming the file. *out is freed with
 * usb_topology_destroy. */
int usb_topology_read(const char *host_root, usb_hubdesc_fn desc, void *arg,
                      struct usb_topology **out, char *err, size_t errlen);
void usb_topology_destroy(struct usb_topology **t);

/* Parses a hub class descriptor (USB 2 type 0x29 or USB 3 type 0x2a). Returns 0
 * with the port count and switching, or FR_EINVAL (too short, wrong type). */
int usb_hubdesc_parse(const uint8_t *d, size_t len, int *nports, enum usb_switching *sw);

/* The port with this path (either half), or -1. */
int usb_topology_port(const struct usb_topology *t, const char *path);
/* The half a unit is named by: the USB 2 half of a paired port, else the port itself. */
int usb_topology_primary(const struct usb_topology *t, int port);
/* Whether port i is a rack port: not a hub's internal chain, no hub plugged in,
 * and the primary half. */
int usb_topology_is_rack_port(const struct usb_topology *t, int port);

/* One non-hub device in sysfs. */
struct usb_device_entry {
    char path[32];       /* its port path, "1-1.4.2" */
    uint16_t vid, pid;
    uint32_t bus, devnum;
    char serial[260];    /* "" when it has none */
};

/* The devices of vendor vid under host_root (heap array, free() it). 0, or
 * FR_ENOTFOUND when there is no USB subsystem there. */
int usb_topology_devices(const char *host_root, uint16_t vid, struct usb_device_entry **out,
                         size_t *n);

/* The port path of the USB device (vid, serial string) in sysfs under host_root,
 * into path: 0, or FR_ENOTFOUND. The serial is readable there without opening
 * the device. */
int usb_topology_find_serial(const char *host_root, uint16_t vid, const char *serial, char *path,
                             size_t len);

#endif
