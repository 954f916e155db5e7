/* udid_join — one unit from two sources that know half of it each.
 *
 * A normal-mode unit is seen twice: at the USB level (a device with serial string =
 * its UDID on a port path: libusb on a real host, the simulator's feed in the
 * simulator) and through usbmuxd/lockdownd (its identity: ECID, ProductType…, but no
 * port: usbmuxd's LocationID holds the USB address, which changes at every
 * re-enumeration, so it never names a port). The join keys both by UDID and reports
 * the unit as attached once both halves are known, and detached as soon as either
 * half goes.
 *
 * Pure and single-threaded (the loop's); no I/O. Bounded: at most JOIN_MAX units in
 * each half; a presence or identity over that is refused (-1), not dropped silently. */
#ifndef UDID_JOIN_H
#define UDID_JOIN_H

#include <stddef.h>

#include "seams.h"

#define JOIN_MAX 512
#define JOIN_UDID_MAX 48

struct udid_join {
    struct join_entry {
        char udid[JOIN_UDID_MAX];
        int has_path, has_identity, attached;
        char path[32];
        struct unit_desc identity;
    } *entries;
    size_t n, cap;
    /* attach: the whole unit (identity with the path filled in); detach: path and ECID */
    void (*attach)(void *arg, const struct unit_desc *u);
    void (*detach)(void *arg, const char *path, uint64_t ecid);
    void *arg;
};

void udid_join_init(struct udid_join *j, void (*attach)(void *, const struct unit_desc *),
                    void (*detach)(void *, const char *, uint64_t), void *arg);
void udid_join_release(struct udid_join *j);

/* USB level: the device with serial udid is at path (again: it moved) / is gone. */
int udid_join_presence(struct udid_join *j, const char *udid, const char *path);
void udid_join_presence_gone(struct udid_join *j, const char *udid);
/* usbmuxd level: the identity of udid (its path is ignored) / it left usbmuxd. */
int udid_join_identity(struct udid_join *j, const char *udid, const struct unit_desc *id);
void udid_join_identity_gone(struct udid_join *j, const char *udid);
/* The UDID of the attached unit with this ECID, or NULL (borrowed from j). */
const char *udid_join_udid_of(const struct udid_join *j, uint64_t ecid);

#endif
