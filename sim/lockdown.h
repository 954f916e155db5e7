/* lockdown — the subset of lockdownd (port 62078) a simulated unit answers.
 *
 * One session per usbmuxd tunnel. Requests and answers are plist dictionaries
 * ({"Request": ...}); framing is mux_wire's. What a unit allows follows its model
 * (rack.h): unpaired reads of its identity always work; its IMEI (cellular models:
 * rack_unit_imei) only in a session, as the other private keys; StartSession needs the
 * HostID of the pair record the host holds (only for paired units); EnterRecovery
 * works in a session, or without one before iOS 14.5. A session never turns on SSL
 * here (EnableSessionSSL false): the simulator has no certificates to speak TLS with.
 *
 * Restore-mode units answer as restored does: QueryType (com.apple.mobile.restored,
 * with RestoreProtocolVersion, SerialNumber and HardwareModel) and QueryValue
 * HardwareInfo (UniqueChipID, ChipID, BoardID); the restore protocol itself is not
 * simulated.
 * Pure: no I/O; the caller acts on the effect after sending the answer. */
#ifndef SIM_LOCKDOWN_H
#define SIM_LOCKDOWN_H

#include <plist/plist.h>

#include "rack.h"

enum lockdown_effect {
    LOCKDOWN_STAY = 0,          /* keep the tunnel open */
    LOCKDOWN_ENTER_RECOVERY,    /* the unit reboots into recovery mode */
    LOCKDOWN_GOODBYE,           /* the host said goodbye: close the tunnel */
};

struct lockdown_session {
    int active;                 /* StartSession succeeded */
    char session_id[40];
};

/* The answer to req from unit u (caller frees it). buid is the host's SystemBUID. */
plist_t lockdown_answer(struct lockdown_session *s, const struct rack_unit *u, const char *buid,
                        plist_t req, enum lockdown_effect *effect);

/* The pair record a host holds for a paired unit: what usbmuxd's ReadPairRecord returns
 * (as PairRecordData, serialized). NULL for an unpaired unit. Caller frees. */
plist_t lockdown_pair_record(const struct rack_unit *u, const char *buid);

#endif
