/* doctor — `flashrack-agent doctor [-o json]`: is this host ready to restore?
 *
 * Each check says ok, warn or fail, what it found, and a one-line fix:
 *  usb      the USB subsystem (HOST_ROOT/sys/bus/usb/devices) and its rack ports
 *  usbmuxd  it answers a ListDevices request where libusbmuxd looks ($USBMUXD_SOCKET_ADDRESS:
 *           a Unix socket or TCP, else HOST_ROOT/var/run/usbmuxd); its version
 *  engine   the configured engine runs, has -P, and which models it knows
 *  models   the units present against the engine's models (libirecovery's device table,
 *           as the engine loads it): DFU/recovery units by the CPID and BDID of their
 *           USB serial string, normal/restore-mode units on usbmuxd by the ProductType
 *           lockdownd gives; a unit of a model the engine does not know fails, named
 *  udev     the flashrack rule is installed (HOST_ROOT/etc/udev/rules.d or
 *           HOST_ROOT/lib/udev/rules.d), group flashrack exists, and every
 *           DFU/recovery unit's device node belongs to it
 *  depth    rack ports at hub depth 3 or more (restores fail more there)
 *  buses    root buses with more rack ports than bus_limit
 *  disk     free space for the IPSW cache
 *  mirror, signing   reachable over HTTP(S) within a short timeout
 * Every path is under a host root so tests use prepared fake roots. Blocking
 * (sockets, child processes, HTTP with timeouts): a one-shot command only. */
#ifndef DOCTOR_H
#define DOCTOR_H

#include <stddef.h>
#include <stdio.h>

enum doctor_status { DOCTOR_OK, DOCTOR_WARN, DOCTOR_FAIL };

struct doctor_check {
    char name[16];
    enum doctor_status status;
    char found[384];
    char fix[256];   /* "" when ok */
};

struct doctor_opts {
    const char *host_root;        /* "" on a real host */
    const char *usbmuxd_address;  /* $USBMUXD_SOCKET_ADDRESS as set, or NULL (fr_muxd_addr.h) */
    const char *usbmuxd_default;  /* the Unix socket when it is not set */
    const char *engine_path;
    long long bus_limit;          /* 0 = no limit */
    const char *cache_dir;
    long long cache_gb;
    const char *mirror;           /* a URL, or auto/off (not checked) */
    const char *signing_url;
    long timeout_ms;              /* per network check */
};

#define DOCTOR_MAX_CHECKS 16

struct doctor_report {
    struct doctor_check checks[DOCTOR_MAX_CHECKS];
    size_t n;
};

/* Runs every check into r. */
void doctor_run(const struct doctor_opts *o, struct doctor_report *r);
void doctor_print_text(const struct doctor_report *r, FILE *out);
void doctor_print_json(const struct doctor_report *r, FILE *out);
/* 1 when any check failed, else 0 (warnings pass). */
int doctor_exit_code(const struct doctor_report *r);
const char *doctor_status_name(enum doctor_status s);

#endif
