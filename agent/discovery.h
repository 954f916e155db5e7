/* discovery — one source of units on the usb seams: units attaching, detaching
 * and changing mode, reported through the seams' own struct seam_events on the
 * loop thread. seams_usb runs a list of them (libirecovery for DFU/recovery
 * units, the USB access check for units nobody can open, and usbmuxd for
 * normal/restore-mode units); each is started and closed with the seams. */
#ifndef DISCOVERY_H
#define DISCOVERY_H

#include <stddef.h>
#include <uv.h>

#include "seams.h"

struct discovery_source {
    const char *name;
    /* Joins the loop; events go to ev (copied). 0 or FR_E* with the reason in err. */
    int (*start)(struct discovery_source *s, uv_loop_t *loop, const struct seam_events *ev,
                 char *err, size_t errlen);
    /* Leaves the loop; cb(s) runs once every handle of s is closed. */
    void (*close)(struct discovery_source *s, void (*cb)(struct discovery_source *s));
    /* Frees s (after close, or when never started). */
    void (*destroy)(struct discovery_source *s);
    void *owner;   /* the seams running it, for cb */
};

#endif
