/* irecv_source — DFU, WTF and recovery-mode units from libirecovery 1.0.0.
 *
 * irecv_device_event_subscribe() calls back on libirecovery's own thread; that
 * callback copies the event (mode, serial string) into a mutex-protected queue
 * and wakes the loop with uv_async_send, and the loop drains the queue: the
 * identity comes from the serial string (irecv_serial), the port path from the
 * device in sysfs whose serial is that string (usb_topology_find_serial). No loop
 * state is touched on libirecovery's thread. A discovery source (discovery.h). */
#ifndef IRECV_SOURCE_H
#define IRECV_SOURCE_H

#include <stdint.h>

#include "discovery.h"

/* host_root prefixes sysfs ("" on a real host). */
int irecv_source_new(const char *host_root, struct discovery_source **out, char *err, size_t errlen);

/* What libirecovery's callback does with one event, callable from any thread
 * once the source is started: queue (added, product id, serial string) and wake
 * the loop. The loop turns it into attach/detach. Tests call it from their own
 * thread in place of a device. */
void irecv_source_deliver(struct discovery_source *s, int added, uint16_t pid, const char *serial);

#endif
