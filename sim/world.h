/* world — the simulated rack in motion: units attaching and detaching, restores
 * advancing phase by phase on a clock, bus bandwidth shared by the units in the
 * data phase, an operator moving units between ports.
 *
 * The world knows nothing about sockets: it reports what happens through the
 * callbacks in struct world_io, and the server turns that into protocol lines.
 * Time is simulated seconds; world_tick() advances it. Single-threaded. */
#ifndef SIM_WORLD_H
#define SIM_WORLD_H

#include <stddef.h>
#include <stdint.h>

#include "fate.h"
#include "rack.h"

struct world;

struct world_io {
    /* A unit appeared (attach), vanished (detach) or changed mode on a port. */
    void (*unit_event)(void *arg, const char *op, int port, int unit);
    /* A restore printed a line; stream 1 = stdout, 2 = stderr. */
    void (*restore_out)(void *arg, void *owner, int stream, const char *text);
    /* A restore ended with this exit code. */
    void (*restore_exit)(void *arg, void *owner, int code);
    void *arg;
};

struct world_stats {
    int restores_started, restored, link_lost, disk_failures, aborted, moves, power_cycles;
    int phase_failures;      /* prepare, verify and flash faults */
    int peak_data_on_bus;    /* most units in the data phase on one root bus at once */
    int peak_on_bus;         /* most restores in progress on one root bus at once */
    int touches;             /* moves a technician carried out */
    double tech_busy_s;      /* technician time spent on them, summed over technicians */
    double tech_wait_s;      /* time move instructions waited for a free technician */
};

/* Takes ownership of the rack. */
struct world *world_new(struct rack *rack, const struct world_io *io);
void world_destroy(struct world **w);
struct rack *world_rack(struct world *w);
const struct world_stats *world_stats(const struct world *w);
double world_now(const struct world *w);

/* Starts a restore for ECID owned by owner (the engine's connection). When the
 * unit is not attached, the restore fails at once the way idevicerestore does.
 * version and build are what the IPSW installs (NULL or "": not known, the unit keeps
 * its own); a unit that finishes runs them. */
void world_restore_start(struct world *w, void *owner, uint64_t ecid, int erase,
                         const char *version, const char *build);
/* The engine went away mid-restore: the unit falls back to recovery mode. */
void world_restore_abort(struct world *w, void *owner);

/* Power-cycles a port: its unit detaches and comes back in recovery mode.
 * Returns 0, or -1 with a reason in err when the hub cannot switch power. */
int world_power_cycle(struct world *w, int port, char *err, size_t errlen);
/* The operator moves a unit to another port (any host); dfu puts it into DFU mode
 * with its buttons on the way. With [sim] technicians = 0 the unit arrives move_s
 * later, however many moves are under way; with K technicians the move waits for one
 * of them, who walks (walk_s), unplugs and plugs (plug_s), and presses the buttons
 * (buttons_s) before taking the next. Checked now: a port busy restoring another unit
 * is refused. */
int world_move(struct world *w, uint64_t ecid, int to_port, int dfu, char *err, size_t errlen);

/* Lockdown told a unit in normal mode to enter recovery: it leaves and shows up in
 * recovery mode on the same port a few (simulated) seconds later. Returns 0, or -1 when
 * the unit is not attached in normal mode. */
int world_enter_recovery(struct world *w, int unit);

/* Advances the clock by dt simulated seconds. */
void world_tick(struct world *w, double dt);
/* Number of restores in progress. */
int world_active(const struct world *w);

#endif
