/* muxd — the simulator's usbmuxd: a Unix socket, a TCP port on loopback, or both,
 * speaking usbmuxd's plist protocol
 * (ListDevices, Listen with Attached/Detached pushes, Connect, ReadBUID, ReadPairRecord),
 * so that libusbmuxd clients — Debian's idevice_id, ideviceinfo, ideviceenterrecovery,
 * idevicerestore, and the agent's libimobiledevice source — see simulated units.
 *
 * Only units in normal or restore mode are on it (DFU and recovery mode are not usbmuxd
 * devices). Each appearance gets a new DeviceID and a LocationID of (bus << 16) | USB
 * address, the address changing at every re-enumeration as on real hardware. A Connect
 * to port 62078 turns the connection into a tunnel to the unit's lockdownd (lockdown.h);
 * other ports are refused. Garbage from a client closes that client, never the server.
 *
 * Runs on the simulator's loop; the world (world.h) stays the one source of truth:
 * the server is told of every unit event and asks the world to act (EnterRecovery). */
#ifndef SIM_MUXD_H
#define SIM_MUXD_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "world.h"

struct sim_muxd;

/* Listens on the Unix socket path (a stale socket file is replaced) and on the TCP
 * address tcp ("127.0.0.1:PORT", "[::1]:PORT": loopback only, as libusbmuxd's
 * USBMUXD_SOCKET_ADDRESS writes it); either may be NULL or "". Returns 0, or -1 with
 * err set. */
int muxd_start(struct sim_muxd **out, uv_loop_t *loop, struct world *w, const char *path,
               const char *tcp, char *err, size_t errlen);
/* A world event ("attach", "detach", "mode") for unit on port. */
void muxd_on_unit(struct sim_muxd *m, const char *op, int port, int unit);
/* Closes the socket and every client; m is freed once its handles are closed. NULL is fine. */
void muxd_close(struct sim_muxd *m);

#endif
