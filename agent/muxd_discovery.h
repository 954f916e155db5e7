/* muxd_discovery — units in normal mode on a real host: a discovery source
 * (discovery.h) for seams_usb. Identities come from usbmuxd and lockdownd
 * (muxd_source); the port from the resolver, by the unit's USB serial string (its
 * UDID) — on a real host usb_topology_find_serial, the device's directory in sysfs,
 * never usbmuxd's LocationID. The two halves are put together by udid_join. */
#ifndef MUXD_DISCOVERY_H
#define MUXD_DISCOVERY_H

#include <stddef.h>

#include "discovery.h"

/* The port path of the USB device whose serial string is udid: 0, or FR_ENOTFOUND. */
typedef int (*muxd_port_resolver)(void *arg, const char *udid, char *path, size_t len);

/* resolve(arg, ...) is called on the loop thread; arg must outlive the source. */
int muxd_discovery_new(muxd_port_resolver resolve, void *arg, struct discovery_source **out,
                       char *err, size_t errlen);

/* Sends the unit with this ECID (seen by this source) to recovery through lockdown;
 * as seams.h's enter_recovery. FR_ENOTFOUND when the source does not hold it. */
int muxd_discovery_enter_recovery(struct discovery_source *src, uint64_t ecid,
                                  void (*cb)(void *arg, int rc, const char *why), void *arg);

#endif
