/* world — restores, units and the operator on a simulated clock; see world.h.
 *
 * Bandwidth: each tick, the units sending their filesystem share their root bus (and
 * their hub's uplink, and each its own ceiling) max-min fairly (fate_bus_rates).
 * Technicians: move instructions wait in one queue; a free technician takes the
 * oldest, walks to the rack, pulls the unit and plugs it into its new port. */
#include "world.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fr_types.h"

enum phase { PH_DETECT, PH_PREPARE, PH_DATA, PH_VERIFY, PH_FLASH, PH_BASEBAND, PH_FINISH, PH_END };
static const int phase_step[] = { 0, 1, 2, 3, 4, 5, 7 };

struct restore {
    void *owner;
    int unit, port;
    int erase;
    char version[16], build[16]; /* what the IPSW installs ("": the engine did not say) */
    enum phase phase;
    double frac;          /* 0..1 within the phase */
    double next_emit;     /* next progress fraction to print */
    struct fate fate;
    int k;
    struct restore *next;
};

/* ATTACH: a unit appears on a port (mode); PULL: a technician who has walked to the
 * rack moves a unit to port (mode = 1 when into DFU). */
enum delayed_kind { DELAYED_ATTACH, DELAYED_PULL };

struct delayed {
    double at;
    enum delayed_kind kind;
    int unit, port, mode;
    struct delayed *next;
};

/* A move instruction waiting for a technician. */
struct task {
    int unit, port, dfu;
    double queued_at;
    struct task *next;
};

struct world {
    struct rack *rack;
    struct world_io io;
    double now;
    struct restore *restores;
    struct delayed *delayed;
    struct world_stats stats;
    int *data_on_bus; /* per (host, bus), recomputed each tick: see bus_key() */
    int *on_bus;      /* restores in any phase, per (host, bus) */
    int *data_on_hub; /* per hub index */
    int *hub_seen;
    double *hub_rate; /* MB/s of each unit in the data phase behind a hub, this tick */
    struct task *tasks, **tasks_tail;
    double *tech_free_at; /* per technician */
};

/* Root buses belong to a host: bus 1 of host A and bus 1 of host B share nothing. */
static size_t bus_key(const struct world *w, int port)
{
    return (size_t)w->rack->ports[port].host * 128u + (size_t)w->rack->ports[port].bus;
}

struct world *world_new(struct rack *rack, const struct world_io *io)
{
    struct world *w = calloc(1, sizeof *w);
    if (!w)
        return NULL;
    w->rack = rack;
    w->io = *io;
    w->data_on_bus = calloc((rack->nhosts + 1) * 128, sizeof *w->data_on_bus);
    w->on_bus = calloc((rack->nhosts + 1) * 128, sizeof *w->on_bus);
    w->data_on_hub = calloc(rack->nhubs + 1, sizeof *w->data_on_hub);
    w->hub_seen = calloc(rack->nhubs + 1, sizeof *w->hub_seen);
    w->hub_rate = calloc(rack->nhubs + 1, sizeof *w->hub_rate);
    w->tech_free_at = calloc((size_t)rack->sim.technicians + 1, sizeof *w->tech_free_at);
    w->tasks_tail = &w->tasks;
    if (!w->data_on_bus || !w->on_bus || !w->data_on_hub || !w->hub_seen || !w->hub_rate ||
        !w->tech_free_at) {
        world_destroy(&w);
        return NULL;
    }
    return w;
}

void world_destroy(struct world **pw)
{
    struct world *w = *pw;
    if (!w)
        return;
    while (w->restores) {
        struct restore *r = w->restores;
        w->restores = r->next;
        free(r);
    }
    while (w->delayed) {
        struct delayed *d = w->delayed;
        w->delayed = d->next;
        free(d);
    }
    while (w->tasks) {
        struct task *t = w->tasks;
        w->tasks = t->next;
        free(t);
    }
    rack_free(w->rack);
    free(w->on_bus);
    free(w->data_on_hub);
    free(w->hub_seen);
    free(w->hub_rate);
    free(w->tech_free_at);
    free(w->data_on_bus);
    free(w);
    *pw = NULL;
}

struct rack *world_rack(struct world *w) { return w->rack; }
const struct world_stats *world_stats(const struct world *w) { return &w->stats; }
double world_now(const struct world *w) { return w->now; }

int world_active(const struct world *w)
{
    int n = 0;
    for (struct restore *r = w->restores; r; r = r->next)
        n++;
    return n;
}

static void out(struct world *w, struct restore *r, int stream, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void out(struct world *w, struct restore *r, int stream, const char *fmt, ...)
{
    char line[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    w->io.restore_out(w->io.arg, r->owner, stream, line);
}

static void set_mode(struct world *w, int unit, int mode)
{
    struct rack_unit *u = &w->rack->units[unit];
    u->mode = mode;
    if (u->port >= 0)
        w->io.unit_event(w->io.arg, "mode", u->port, unit);
}

static void detach(struct world *w, int unit)
{
    struct rack_unit *u = &w->rack->units[unit];
    if (u->port < 0)
        return;
    int port = u->port;
    w->io.unit_event(w->io.arg, "detach", port, unit);
    w->rack->ports[port].unit = -1;
    u->port = -1;
}

static void later(struct world *w, enum delayed_kind kind, int unit, int port, int mode,
                  double after)
{
    struct delayed *d = calloc(1, sizeof *d);
    if (!d)
        return;
    d->kind = kind;
    d->at = w->now + after;
    d->unit = unit;
    d->port = port;
    d->mode = mode;
    d->next = w->delayed;
    w->delayed = d;
}

static void attach_later(struct world *w, int unit, int port, int mode, double after)
{
    later(w, DELAYED_ATTACH, unit, port, mode, after);
}

static void remove_restore(struct world *w, struct restore *r)
{
    for (struct restore **pp = &w->restores; *pp; pp = &(*pp)->next)
        if (*pp == r) {
            *pp = r->next;
            break;
        }
    free(r);
}

static int fail_code(const struct world *w)
{
    return w->rack->sim.dialect == DIALECT_1_0_0 ? 255 : 1;
}

static void finish(struct world *w, struct restore *r, int code)
{
    w->io.restore_exit(w->io.arg, r->owner, code);
    remove_restore(w, r);
}

static void lose_link(struct world *w, struct restore *r)
{
    if (w->rack->sim.dialect == DIALECT_1_0_0) {
        out(w, r, 2, "ERROR: Could not read data (-4). Aborting.");
    } else {
        out(w, r, 2, "ERROR: Unable to send filesystem payload chunk");
        out(w, r, 2, "ERROR: Unable to send filesystem");
    }
    out(w, r, 2, "ERROR: Unable to restore device");
    w->stats.link_lost++;
    int unit = r->unit, port = r->port;
    detach(w, unit);
    /* a phone on a bad cable comes back by itself, in recovery mode */
    attach_later(w, unit, port, 2, w->rack->sim.reattach_s);
    finish(w, r, fail_code(w));
}

/* A phone fault that shows in prepare, verify or flash: the engine's error, the unit
 * left in recovery mode on its port. */
static void fail_in_phase(struct world *w, struct restore *r)
{
    if (r->fate.outcome == FATE_PREPARE)
        out(w, r, 2, "ERROR: Device failed to enter restore mode");
    else if (r->fate.outcome == FATE_VERIFY)
        out(w, r, 1, "Status: Verification Error");
    else
        out(w, r, 2, "ERROR: Failed to mount filesystems");
    out(w, r, 2, "ERROR: Unable to restore device");
    w->stats.phase_failures++;
    set_mode(w, r->unit, 2);
    finish(w, r, fail_code(w));
}

/* Whether the restore's fate is to fail in the phase it is in. */
static int fails_here(const struct restore *r)
{
    return (r->phase == PH_PREPARE && r->fate.outcome == FATE_PREPARE) ||
           (r->phase == PH_VERIFY && r->fate.outcome == FATE_VERIFY) ||
           (r->phase == PH_FLASH && r->fate.outcome == FATE_FLASH);
}

static void phase_start_lines(struct world *w, struct restore *r)
{
    struct rack_unit *u = &w->rack->units[r->unit];
    char ecid[FR_ECID_STRLEN];
    fr_ecid_format(u->ecid, ecid, sizeof ecid);
    switch (r->phase) {
    case PH_DETECT:
        out(w, r, 1, "Found device in %s mode", u->mode == 1 ? "DFU" : "Recovery");
        out(w, r, 1, "Identified device as %s, %s", u->board, u->product_type);
        /* "Extracting BuildManifest", "Product Version/Build": flashrack-sim-restore prints
         * them from the IPSW it was given, before this stream */
        out(w, r, 1, "Variant: Customer %s Install (IPSW)", r->erase ? "Erase" : "Upgrade");
        if (r->erase)
            out(w, r, 1, "This restore will erase all device data.");
        break;
    case PH_PREPARE:
        out(w, r, 1, "Sending iBEC (1376592 bytes)...");
        out(w, r, 1, "Waiting for device to enter restore mode...");
        break;
    case PH_DATA:
        out(w, r, 1, "Device %s has successfully entered restore mode", ecid);
        out(w, r, 1, "About to send filesystem...");
        out(w, r, 1, "Sending filesystem now...");
        break;
    case PH_VERIFY:
        out(w, r, 1, "Done sending filesystem");
        out(w, r, 1, "Verifying restore...");
        break;
    case PH_FLASH:
        out(w, r, 1, "Flashing firmware...");
        break;
    case PH_BASEBAND:
        out(w, r, 1, "Updating baseband...");
        break;
    case PH_FINISH:
        out(w, r, 1, "Status: Restore Finished");
        break;
    case PH_END:
        break;
    }
}

static double phase_seconds(const struct world *w, enum phase p)
{
    const struct rack_sim *s = &w->rack->sim;
    switch (p) {
    case PH_DETECT: return s->t_detect;
    case PH_PREPARE: return s->t_prepare;
    case PH_VERIFY: return s->t_verify;
    case PH_FLASH: return s->t_flash;
    case PH_BASEBAND: return s->t_baseband;
    case PH_FINISH: return s->t_finish;
    default: return 0;
    }
}

static void emit_progress(struct world *w, struct restore *r)
{
    while (r->frac + 1e-9 >= r->next_emit && r->next_emit <= 1.0) {
        out(w, r, 1, "progress: %d %f", phase_step[r->phase], r->next_emit);
        r->next_emit += 0.1;
    }
}

/* A restore that finished: the unit runs what was installed (or says another build:
 * reports_build) and boots into normal mode, unless it is one that stays in recovery or
 * restore mode (after_restore); an erase leaves it no longer trusting this host. */
static void boot_installed(struct world *w, const struct restore *r)
{
    struct rack_unit *u = &w->rack->units[r->unit];
    if (r->version[0]) {
        snprintf(u->ios, sizeof u->ios, "%s", r->version);
        snprintf(u->build, sizeof u->build, "%s", r->build);
    }
    if (u->reports_build[0])
        snprintf(u->build, sizeof u->build, "%s", u->reports_build);
    if (r->erase)
        u->erased = 1; /* an erase also removes the unit's side of its pairings */
    set_mode(w, r->unit, u->after_restore ? u->after_restore : 4);
}

/* Enters the next phase; returns 0 when the restore has ended (and is freed). */
static int enter_phase(struct world *w, struct restore *r, enum phase p)
{
    r->phase = p;
    r->frac = 0;
    r->next_emit = 0;
    if (p == PH_END) {
        out(w, r, 1, "Cleaning up...");
        out(w, r, 1, "DONE");
        w->stats.restored++;
        boot_installed(w, r);
        finish(w, r, 0);
        return 0;
    }
    phase_start_lines(w, r);
    if (p == PH_DATA) {
        set_mode(w, r->unit, 3);
        const struct rack_port *port = &w->rack->ports[r->port];
        int n = ++w->data_on_bus[bus_key(w, r->port)];
        if (n > w->stats.peak_data_on_bus)
            w->stats.peak_data_on_bus = n;
        if (w->rack->sim.oversubscribe_all)
            n = w->on_bus[bus_key(w, r->port)];
        struct rack_unit *u = &w->rack->units[r->unit];
        if (r->fate.outcome == FATE_OK && fate_oversub_drop(&w->rack->sim, u->ecid, port->path, r->k, n))
            r->fate.outcome = FATE_LINK_LOST;
    }
    if (p == PH_VERIFY && r->fate.outcome == FATE_DISK) {
        out(w, r, 1, "Status: Disk Failure");
        out(w, r, 2, "ERROR: Unable to restore device");
        w->stats.disk_failures++;
        set_mode(w, r->unit, 2);
        finish(w, r, fail_code(w));
        return 0;
    }
    emit_progress(w, r);
    return 1;
}

void world_restore_start(struct world *w, void *owner, uint64_t ecid, int erase,
                         const char *version, const char *build)
{
    struct restore tmp = { .owner = owner };
    int unit = rack_find_unit(w->rack, ecid);
    int busy = 0;
    for (struct restore *r = w->restores; r && unit >= 0; r = r->next)
        busy |= r->unit == unit;
    if (unit < 0 || w->rack->units[unit].port < 0 || busy) {
        out(w, &tmp, 2, "ERROR: Unable to discover device mode. Please make sure a device is attached.");
        w->io.restore_exit(w->io.arg, owner, fail_code(w));
        return;
    }
    struct restore *r = calloc(1, sizeof *r);
    if (!r) {
        w->io.restore_exit(w->io.arg, owner, fail_code(w));
        return;
    }
    struct rack_unit *u = &w->rack->units[unit];
    r->owner = owner;
    r->unit = unit;
    r->port = u->port;
    r->erase = erase;
    snprintf(r->version, sizeof r->version, "%s", version ? version : "");
    snprintf(r->build, sizeof r->build, "%s", build ? build : "");
    r->k = u->restores++;
    const struct rack_port *port = &w->rack->ports[r->port];
    fate_decide_at(&w->rack->sim, u->ecid, port, r->k, u->health, &r->fate);
    r->next = w->restores;
    w->restores = r;
    int on_bus = ++w->on_bus[bus_key(w, r->port)];
    if (on_bus > w->stats.peak_on_bus)
        w->stats.peak_on_bus = on_bus;
    w->stats.restores_started++;
    enter_phase(w, r, PH_DETECT);
}

void world_restore_abort(struct world *w, void *owner)
{
    for (struct restore *r = w->restores; r; r = r->next) {
        if (r->owner != owner)
            continue;
        w->stats.aborted++;
        set_mode(w, r->unit, 2);
        remove_restore(w, r);
        return;
    }
}

int world_power_cycle(struct world *w, int port, char *err, size_t errlen)
{
    struct rack_port *p = &w->rack->ports[port];
    if (!p->power_switch) {
        snprintf(err, errlen, "hub of port '%s' cannot switch power per port", p->label);
        return -1;
    }
    w->stats.power_cycles++;
    int unit = p->unit;
    if (unit >= 0) {
        for (struct restore *r = w->restores; r; r = r->next)
            if (r->unit == unit) {
                lose_link(w, r);
                return 0;
            }
        detach(w, unit);
        attach_later(w, unit, port, 2, 2.0);
    }
    return 0;
}

static int restoring(const struct world *w, int unit)
{
    for (const struct restore *r = w->restores; r; r = r->next)
        if (r->unit == unit)
            return 1;
    return 0;
}

/* Whether to_port holds another unit that is restoring (a move there is refused). */
static int port_busy(const struct world *w, int unit, int to_port)
{
    int occupant = w->rack->ports[to_port].unit;
    return occupant >= 0 && occupant != unit && restoring(w, occupant);
}

/* The next tray: a phone waiting for from_port is plugged in there as the unit that
 * was on it is moved elsewhere (by the same hands, after the same time). */
static void plug_next_tray(struct world *w, int from_port, double after)
{
    for (size_t i = 0; i < w->rack->nunits; i++) {
        struct rack_unit *u = &w->rack->units[i];
        if (u->arrive_at != from_port || u->port >= 0)
            continue;
        u->arrive_at = -1;
        attach_later(w, (int)i, from_port, 2, after);
        return; /* one phone per port */
    }
}

/* The hands-on part of a move: the unit leaves its port and arrives on to_port after. */
static void carry_out_move(struct world *w, int unit, int to_port, int dfu, double after)
{
    if (port_busy(w, unit, to_port))
        return; /* another restore started there meanwhile: the technician leaves it */
    int occupant = w->rack->ports[to_port].unit;
    if (occupant >= 0 && occupant != unit)
        detach(w, occupant); /* the technician takes the finished phone out */
    for (struct restore *r = w->restores; r; r = r->next)
        if (r->unit == unit) {
            lose_link(w, r); /* pulled out mid-restore */
            break;
        }
    int from_port = w->rack->units[unit].port;
    for (struct delayed *d = w->delayed; d; d = d->next)
        if (d->unit == unit && d->kind == DELAYED_ATTACH) {
            if (from_port < 0 && d->at >= 0) /* dropped off the bus, not back yet: it left that port */
                from_port = d->port;
            d->at = -1; /* cancelled: it is going elsewhere */
        }
    detach(w, unit);
    w->stats.moves++;
    attach_later(w, unit, to_port, dfu || w->rack->units[unit].mode == 1 ? 1 : 2, after);
    if (from_port >= 0 && from_port != to_port)
        plug_next_tray(w, from_port, after);
}

/* Free technicians take the oldest waiting moves. */
static void dispatch(struct world *w)
{
    const struct rack_sim *s = &w->rack->sim;
    for (int i = 0; i < s->technicians && w->tasks; i++) {
        if (w->tech_free_at[i] > w->now)
            continue;
        struct task *t = w->tasks;
        w->tasks = t->next;
        if (!w->tasks)
            w->tasks_tail = &w->tasks;
        double hands = s->plug_s + (t->dfu ? s->buttons_s : 0);
        w->tech_free_at[i] = w->now + s->walk_s + hands;
        w->stats.touches++;
        w->stats.tech_busy_s += s->walk_s + hands;
        w->stats.tech_wait_s += w->now - t->queued_at;
        later(w, DELAYED_PULL, t->unit, t->port, t->dfu, s->walk_s);
        free(t);
    }
}

int world_move(struct world *w, uint64_t ecid, int to_port, int dfu, char *err, size_t errlen)
{
    int unit = rack_find_unit(w->rack, ecid);
    if (unit < 0) {
        snprintf(err, errlen, "no unit with that ECID in the rack");
        return -1;
    }
    if (port_busy(w, unit, to_port)) {
        snprintf(err, errlen, "port '%s' is busy restoring another unit",
                 w->rack->ports[to_port].label);
        return -1;
    }
    if (w->rack->sim.technicians == 0) {
        w->stats.touches++;
        w->stats.tech_busy_s += w->rack->sim.move_s;
        carry_out_move(w, unit, to_port, dfu, w->rack->sim.move_s);
        return 0;
    }
    struct task *t = calloc(1, sizeof *t);
    if (!t) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    *t = (struct task){ unit, to_port, dfu, w->now, NULL };
    *w->tasks_tail = t;
    w->tasks_tail = &t->next;
    dispatch(w);
    return 0;
}

#define RECOVERY_REBOOT_S 4.0 /* normal mode to iBoot's recovery screen */

int world_enter_recovery(struct world *w, int unit)
{
    struct rack_unit *u = &w->rack->units[unit];
    if (u->port < 0 || u->mode != 4)
        return -1;
    int port = u->port;
    detach(w, unit);
    attach_later(w, unit, port, 2, RECOVERY_REBOOT_S);
    return 0;
}

static void run_delayed(struct world *w)
{
    struct delayed **pp = &w->delayed;
    while (*pp) {
        struct delayed *d = *pp;
        if (d->at >= 0 && d->at > w->now) {
            pp = &d->next;
            continue;
        }
        *pp = d->next;
        struct rack_port *p = &w->rack->ports[d->port];
        struct rack_unit *u = &w->rack->units[d->unit];
        if (d->kind == DELAYED_PULL) {
            const struct rack_sim *s = &w->rack->sim;
            carry_out_move(w, d->unit, d->port, d->mode, s->plug_s + (d->mode ? s->buttons_s : 0));
        } else if (d->at >= 0 && p->unit < 0 && u->port < 0) {
            p->unit = d->unit;
            u->port = d->port;
            u->mode = d->mode;
            w->io.unit_event(w->io.arg, "attach", d->port, d->unit);
        }
        free(d);
    }
}

/* Shares each root bus among its hubs' units in the data phase. */
static void share_bandwidth(struct world *w)
{
    const struct rack *rk = w->rack;
    const struct rack_sim *s = &rk->sim;
    memset(w->hub_seen, 0, rk->nhubs * sizeof *w->hub_seen);
    for (size_t h = 0; h < rk->nhubs; h++) {
        if (w->hub_seen[h] || w->data_on_hub[h] == 0)
            continue;
        int idx[128], n[128], nh = 0;
        double rate[128];
        for (size_t g = h; g < rk->nhubs && nh < 128; g++)
            if (!w->hub_seen[g] && w->data_on_hub[g] > 0 && rk->hubs[g].host == rk->hubs[h].host &&
                rk->hubs[g].bus == rk->hubs[h].bus) {
                idx[nh] = (int)g;
                n[nh++] = w->data_on_hub[g];
                w->hub_seen[g] = 1;
            }
        fate_bus_rates(s->bus_mbps, s->hub_mbps, s->unit_mbps, n, nh, rate);
        for (int k = 0; k < nh; k++)
            w->hub_rate[idx[k]] = rate[k];
    }
}

static void count_data_phase(struct world *w)
{
    size_t nkeys = (w->rack->nhosts + 1) * 128;
    memset(w->data_on_bus, 0, nkeys * sizeof *w->data_on_bus);
    memset(w->on_bus, 0, nkeys * sizeof *w->on_bus);
    memset(w->data_on_hub, 0, w->rack->nhubs * sizeof *w->data_on_hub);
    for (struct restore *r = w->restores; r; r = r->next) {
        w->on_bus[bus_key(w, r->port)]++;
        if (r->phase == PH_DATA) {
            w->data_on_bus[bus_key(w, r->port)]++;
            w->data_on_hub[w->rack->ports[r->port].hub]++;
        }
    }
    share_bandwidth(w);
}

/* Advances one restore; returns 0 when it ended (and was freed). */
static int advance(struct world *w, struct restore *r, double dt)
{
    const struct rack_sim *s = &w->rack->sim;
    if (r->phase == PH_DATA) {
        double share = w->hub_rate[w->rack->ports[r->port].hub];
        r->frac += share * dt / s->filesystem_mb;
        if (r->fate.outcome == FATE_LINK_LOST && r->frac >= r->fate.fail_at) {
            r->frac = r->fate.fail_at;
            emit_progress(w, r);
            lose_link(w, r);
            return 0;
        }
    } else {
        double len = phase_seconds(w, r->phase);
        r->frac = len > 0 ? r->frac + dt / len : 1.0;
        if (fails_here(r) && r->frac >= r->fate.fail_at) {
            r->frac = r->fate.fail_at;
            emit_progress(w, r);
            fail_in_phase(w, r);
            return 0;
        }
    }
    if (r->frac > 1.0)
        r->frac = 1.0;
    emit_progress(w, r);
    if (r->frac < 1.0)
        return 1;
    return enter_phase(w, r, r->phase + 1);
}

void world_tick(struct world *w, double dt)
{
    w->now += dt;
    run_delayed(w);
    dispatch(w);
    count_data_phase(w);
    struct restore *r = w->restores;
    while (r) {
        struct restore *next = r->next;
        advance(w, r, dt);
        r = next;
    }
}
