/* seams — the agent's hardware seams: topology (ports), discovery (units
 * attaching, detaching, changing mode) and port power. One backend serves all
 * three: "sim" talks to flashrack-sim over its Unix socket (sim/PROTOCOL.md);
 * "usb" uses sysfs, libusb and libirecovery (seams_usb.c). The restore engine
 * seam is the engine path in the config (engine.c).
 *
 * Events arrive on the loop thread through struct seam_events. */
#ifndef SEAMS_H
#define SEAMS_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

struct port_desc {
    char path[32], label[32], hub[32];
    char peer_path[32]; /* usb: the USB 3 half of this physical port ("" if none) */
    uint32_t bus, depth;
    int power_switch;
};

struct unit_desc {
    uint64_t ecid;
    char path[32];
    int mode; /* fr UnitMode numbering */
    char product_type[24], serial[32];
    char udid[48];  /* normal/restore mode: the USB serial string usbmuxd knows it by ("" if unknown) */
    uint32_t cpid, bdid;
    char ios[16], build[16]; /* normal mode: ProductVersion, BuildVersion read from lockdownd ("" = not read) */
    char imei[32];    /* InternationalMobileEquipmentIdentity where it was read ("" = not known) */
    char reason[256]; /* why the agent cannot use it, with the fix ("" = it can) */
};

struct seam_events {
    void (*topology)(void *arg, const struct port_desc *ports, size_t n);
    void (*attach)(void *arg, const struct unit_desc *u);
    void (*detach)(void *arg, const char *path, uint64_t ecid);
    void (*mode)(void *arg, const struct unit_desc *u);
    void *arg;
};

struct seams {
    const char *name;
    int (*start)(struct seams *s, uv_loop_t *loop, const struct seam_events *ev, char *err,
                 size_t errlen);
    /* Power-cycles one port; the answer comes later (logged). */
    int (*power_cycle)(struct seams *s, const char *path, char *err, size_t errlen);
    /* Asks a unit in normal mode to reboot into recovery (lockdown), or NULL when the
     * backend cannot (the engine is then left to do it). cb runs later, exactly once,
     * with 0 or a code as muxd_source.h describes; the unit's return in recovery mode
     * is an attach like any other. */
    int (*enter_recovery)(struct seams *s, const char *path, uint64_t ecid,
                          void (*cb)(void *arg, int rc, const char *why), void *arg);
    /* Why this backend reads no unit's lockdownd (a restored unit's iOS version cannot be
     * read back), NULL when it reads them: units in normal mode then carry ios and build. */
    const char *no_lockdown;
    /* Leaves the loop; cb runs when every handle is closed. */
    void (*close)(struct seams *s, void (*cb)(struct seams *s));
    /* Frees the backend (after close, or when never started). */
    void (*destroy)(struct seams *s);
    void *impl;
};

/* The simulated backend: socket is the simulator's, host the rack host this agent is.
 * With usbmuxd set, units in normal mode come through the real libimobiledevice path
 * (muxd_source.h) against the simulator's usbmuxd socket ($USBMUXD_SOCKET_ADDRESS): the
 * simulator's feed gives their port (by UDID), lockdownd their identity. */
int seams_sim_new(const char *socket, const char *host, int usbmuxd, struct seams **out);
/* The hardware backend (seams_usb.c): sysfs under host_root ("" on a real host),
 * libusb, libirecovery; ports labelled by the rack map at rack_map ("" = none, every
 * port labelled by its path). A rack map with a mistake is FR_ECONFIG naming its
 * file and line. A host without USB is a logged state (no ports), not an error. */
int seams_usb_new(const char *host_root, const char *rack_map, struct seams **out, char *err,
                  size_t errlen);
/* Whether the agent may open the USB device at bus/devnum: 0, FR_ESYS when permission
 * is denied (libusb's LIBUSB_ERROR_ACCESS), another fr_err code when it cannot tell. */
typedef int (*seams_usb_open_fn)(void *arg, uint32_t bus, uint32_t devnum);
/* How the usb seams try a device (libusb's open by default); tests give recorded
 * answers for the devices of a recorded tree. Before start. */
void seams_usb_set_open(struct seams *s, seams_usb_open_fn fn, void *arg);
struct discovery_source;
/* Adds a discovery source (discovery.h) to the usb seams, which then own it; tests give
 * one of their own. Before start. 0, or FR_EINVAL when the seams have no room. */
int seams_usb_add_source(struct seams *s, struct discovery_source *src);
void seams_destroy(struct seams **s);

#endif
