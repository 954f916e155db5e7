/* muxd_source — units in normal and restore mode, through usbmuxd and lockdownd (libimobiledevice
 * 1.3.0, libusbmuxd 2.0). The one module that includes their headers.
 *
 * - Events: the source holds usbmuxd's Listen connection itself, on the loop (a
 *   stream read with fr_mux_wire's bounded parser), rather than through
 *   idevice_event_subscribe: libusbmuxd 2.0.2's monitor thread never closes its socket
 *   when a Listen connection breaks and reconnects at once, so a usbmuxd that keeps
 *   answering garbage makes it leak a descriptor per attempt until glibc aborts the
 *   process in FD_SET (past 1024). Here a broken connection is closed, logged with its
 *   reason, its units reported gone, and tried again with back-off (1 s doubling to
 *   30 s; back to 1 s once Listen is answered). One Listen per source, one source per
 *   agent. $USBMUXD_SOCKET_ADDRESS is read as libusbmuxd reads it (fr_muxd_addr.h): a
 *   Unix socket (UNIX:/path) or TCP (HOST:PORT, [V6]:PORT), resolved once at start; a
 *   value it cannot read is refused at start. libimobiledevice, which the identity and
 *   recovery jobs call, reads the same variable for its own connections.
 * - Identity: for each attached device an unpaired lockdownd_client_new (no handshake,
 *   so no Trust dialog) reads UniqueChipID, ProductType, ProductVersion, BuildVersion,
 *   HardwareModel, SerialNumber, ChipID, BoardId on libuv's thread pool, never on the
 *   loop (ProductVersion and BuildVersion travel in unit_desc: unit_run verifies a
 *   restore by them). A lockdown that answers without UniqueChipID or ProductType is logged and the
 *   unit not reported. A unit whose QueryType says com.apple.mobile.restored is in
 *   restore mode: restored's QueryValue HardwareInfo gives its ECID, CPID and BDID, its
 *   QueryType answer SerialNumber and HardwareModel (ProductType through libirecovery's
 *   device table); it is reported in mode restore and never asked to enter recovery.
 * - Recovery: enter_recovery asks lockdownd on the thread pool, with a session when
 *   usbmuxd holds a pair record for the unit (no pairing is ever started), else
 *   without one (which iOS before 14.5 accepts).
 *
 * Identities carry no port path: usbmuxd's LocationID holds the USB address, which
 * changes at every re-enumeration. The port comes from the USB level (udid_join.h).
 * Everything the caller sees happens on the loop thread. */
#ifndef MUXD_SOURCE_H
#define MUXD_SOURCE_H

#include <stddef.h>
#include <uv.h>

#include "seams.h"

struct muxd_source;

struct muxd_source_events {
    /* udid's identity was read (u->path is empty, u->mode normal or restore) */
    void (*identity)(void *arg, const char *udid, const struct unit_desc *u);
    /* udid left usbmuxd */
    void (*gone)(void *arg, const char *udid);
    void *arg;
};

int muxd_source_start(struct muxd_source **out, uv_loop_t *loop,
                      const struct muxd_source_events *ev, char *err, size_t errlen);

/* rc 0: the unit was told to enter recovery (it will leave and come back in recovery
 * mode); FR_ESTATE: lockdown refused (why has its reason: an operator's buttons are
 * needed); FR_EUNAVAIL: the unit or lockdownd could not be reached; FR_ECANCELED: the
 * source closed first. Called on the loop, exactly once, always later (never from
 * inside muxd_source_enter_recovery). */
typedef void (*muxd_recovery_cb)(void *arg, int rc, const char *why);
int muxd_source_enter_recovery(struct muxd_source *s, const char *udid, muxd_recovery_cb cb,
                               void *arg);

/* The identity of the unit udid on usbmuxd, read as the source reads it (lockdownd, or
 * restored in restore mode), here and now: blocking, for one-shot commands (doctor),
 * never on a loop. Returns 0, or FR_EUNAVAIL (not reachable) / FR_EPROTO (an answer
 * without what is needed) with the reason in err; u->product_type may be set even then. */
int muxd_read_identity(const char *udid, struct unit_desc *u, char *err, size_t errlen);

/* 1 while usbmuxd's Listen connection is up. */
int muxd_source_reachable(const struct muxd_source *s);

/* Unsubscribes and leaves the loop; cb runs (on the loop) once every handle is closed
 * and every thread-pool job has come back; s is freed after it. */
void muxd_source_close(struct muxd_source *s, void (*cb)(void *arg), void *arg);

#endif
