/* rack — the simulated rack: hosts, hubs, ports, units and their faults, read
 * from an INI rack file.
 *
 * A rack file has one [sim] section (seed, time scale, timings, bandwidth),
 * [host NAME] sections (a USB host = one agent), [hub NAME] sections (ports on a
 * root bus at a hub tier), and optional [port LABEL] / [unit ECID] sections that
 * set faults and place units. config/rack-example.ini documents every key.
 *
 * Errors name the file, line, section and key and what was expected. The rack
 * owns all its arrays; rack_free() releases them. */
#ifndef SIM_RACK_H
#define SIM_RACK_H

#include <stddef.h>
#include <stdint.h>

/* A phone's fault: dead loses the link on every port; intermittent loses it on a share of
 * restores anywhere; disk, prepare, verify and flash fail in that phase on every port. */
enum unit_health {
    HEALTH_GOOD = 0, HEALTH_DEAD, HEALTH_DISK, HEALTH_INTERMITTENT, HEALTH_PREPARE, HEALTH_VERIFY,
    HEALTH_FLASH
};
enum engine_dialect { DIALECT_MASTER = 0, DIALECT_1_0_0 };

struct rack_port {
    char path[32];        /* "1-2.5" */
    char label[32];       /* "A-05" */
    int host;             /* index into hosts */
    int hub;              /* index into hubs */
    int bus;
    int depth;
    int power_switch;
    double link_fail;     /* probability a restore here loses the link */
    int unit;             /* index into units, -1 when empty */
};

struct rack_unit {
    uint64_t ecid;
    char product_type[24];
    char board[16];
    uint32_t cpid, bdid;
    char serial[16];
    int mode;             /* fr UnitMode numbering */
    int battery;
    enum unit_health health;
    char ios[16];         /* ProductVersion, "17.5" */
    char build[16];       /* BuildVersion of what a restore installed ("": ios's own build) */
    int after_restore;    /* the mode a successful restore leaves it in (0: normal) */
    char reports_build[16]; /* after a restore it says this BuildVersion ("": what was installed) */
    int paired;           /* this rack's host holds a pair record for the unit */
    int erased;           /* an erase restore since the pairing: the unit no longer trusts
                             that record (the host still holds it; sessions are refused) */
    int port;             /* index into ports, -1 when unplugged */
    int arrive_at;        /* the next tray: plugged into this port (index) once the unit
                             there has been moved to another port; -1 = none, or arrived */
    int restores;         /* restores started so far (the k of the fate) */
};

struct rack_host {
    char name[32];
    char label_prefix[16];
    int fill;
    char product_types[256];
    int mode;
    char ios[16];         /* ProductVersion of generated phones */
    int paired;           /* generated phones trust this host */
    int next_label;
    int line;             /* where the host was declared, for errors */
};

struct rack_hub {
    char name[32];
    int host;
    int bus;
    int depth;
    int nports;
    int power_switch;
    int index_on_bus;     /* 1-based: the hub's number on its root bus */
    int line;             /* where the hub was declared, for errors */
};

struct rack_sim {
    uint64_t seed;
    double time_scale;
    char socket[108];
    char usbmuxd_socket[108]; /* where the simulated usbmuxd listens ("" = none) */
    enum engine_dialect dialect;
    double bus_mbps;          /* bandwidth of one root bus */
    double hub_mbps;          /* bandwidth of one hub's uplink (0: only the bus limits) */
    double unit_mbps;         /* most one phone takes in (0: no ceiling) */
    double filesystem_mb;     /* data sent in the upload-filesystem phase */
    double oversubscribe_at;  /* units in the data phase on one bus before failures climb */
    double oversubscribe_fail;/* added link-loss probability per unit over that */
    int oversubscribe_all;    /* count every restore on the bus, not only the data phase */
    double depth_fail;        /* added link-loss probability per hub tier below the first */
    double intermittent_fail; /* chance an intermittent phone loses the link on a restore */
    double t_detect, t_prepare, t_verify, t_flash, t_baseband, t_finish;
    double reattach_s;        /* a dropped unit comes back after this */
    double move_s;            /* the operator takes this long to move a unit */
    double misplug;           /* chance the operator plugs a unit back into the port it left */
    int technicians;          /* people who move units, one move at a time each (0: move_s, unlimited) */
    double walk_s, plug_s, buttons_s; /* a technician's move: walk, unplug + plug, DFU buttons */
};

struct rack {
    struct rack_sim sim;
    struct rack_host *hosts;
    size_t nhosts;
    struct rack_hub *hubs;
    size_t nhubs;
    struct rack_port *ports;
    size_t nports;
    struct rack_unit *units;
    size_t nunits;
};

/* Loads path. Returns 0, or FR_ECONFIG with "FILE:LINE: [section] key: ..." in err. */
int rack_load(const char *path, struct rack *r, char *err, size_t errlen);
void rack_free(struct rack *r);

int rack_find_host(const struct rack *r, const char *name);
int rack_find_port_label(const struct rack *r, const char *label);
int rack_find_port_path(const struct rack *r, int host, const char *path);
int rack_find_unit(const struct rack *r, uint64_t ecid);

/* Model facts: fr_models.h. */

/* The iOS build of a ProductVersion the simulator knows ("17.5" → "21F90"); NULL when unknown. */
const char *rack_ios_build(const char *ios);
/* The BuildVersion a unit reports: what its last restore installed, else its ios's. */
const char *rack_unit_build(const struct rack_unit *u);
/* A cellular unit's IMEI: 15 digits, deterministic per ECID, its last the Luhn check
 * digit of the other 14 (3GPP TS 23.003). -1 for a model without a modem (an iPhone has
 * one; an iPod touch would not). buf >= 16. */
int rack_unit_imei(const struct rack_unit *u, char *buf, size_t len);
/* The Luhn check digit (0-9) of a string of digits. */
int rack_luhn_digit(const char *digits);
/* A unit's UDID as usbmuxd reports it: "<CPID 8 hex>-<ECID 16 hex>" from A12 (0x8020) on,
 * else 40 hex digits (derived from the ECID; real ones are unrelated to it). buf >= 41. */
void rack_unit_udid(const struct rack_unit *u, char *buf, size_t len);
/* Whether the unit trusts the pair record this rack's host holds: paired, and not
 * erased since (an erase removes the unit's side of every pairing). */
int rack_unit_trusts_host(const struct rack_unit *u);
/* Whether lockdown lets a host put this unit into recovery: a trusted host, or iOS before
 * 14.5 (since 14.5 it needs pairing). */
int rack_unit_allows_recovery(const struct rack_unit *u);
/* Whether the unit runs iOS major.minor or later. */
int rack_unit_ios_at_least(const struct rack_unit *u, int major, int minor);

#endif
