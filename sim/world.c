/* world — restores, units and the operator on a simulated clock; see world.h. */
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
    enum phase phase;
    double frac;          /* 0..1 within the phase */
    double next_emit;     /* next progress fraction to print */
    struct fate fate;
    int k;
    struct restore *next;
};

enum delayed_kind { DELAYED_ATTACH };

struct delayed {
    double at;
    int unit, port, mode;
    struct delayed *next;
};

struct world {
    struct rack *rack;
    struct world_io io;
    double now;
    struct restore *restores;
    struct delayed *delayed;
    struct world_stats stats;
    int *data_on_bus; /* per (host, bus), recomputed each tick: see bus_key() */
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
    rack_free(w->rack);
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

static void attach_later(struct world *w, int unit, int port, int mode, double after)
{
    struct delayed *d = calloc(1, sizeof *d);
    if (!d)
        return;
    d->at = w->now + after;
    d->unit = unit;
    d->port = port;
    d->mode = mode;
    d->next = w->delayed;
    w->delayed = d;
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

static void phase_start_lines(struct world *w, struct restore *r)
{
    struct rack_unit *u = &w->rack->units[r->unit];
    char ecid[FR_ECID_STRLEN];
    fr_ecid_format(u->ecid, ecid, sizeof ecid);
    switch (r->phase) {
    case PH_DETECT:
        out(w, r, 1, "Found device in %s mode", u->mode == 1 ? "DFU" : "Recovery");
        out(w, r, 1, "Identified device as %s, %s", u->board, u->product_type);
        out(w, r, 1, "Extracting BuildManifest from IPSW");
        out(w, r, 1, "Product Version: 18.2");
        out(w, r, 1, "Product Build: 22C152 Major: 22");
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
        set_mode(w, r->unit, 4);
        finish(w, r, 0);
        return 0;
    }
    phase_start_lines(w, r);
    if (p == PH_DATA) {
        set_mode(w, r->unit, 3);
        const struct rack_port *port = &w->rack->ports[r->port];
        int n = ++w->data_on_bus[bus_key(w, r->port)];
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

void world_restore_start(struct world *w, void *owner, uint64_t ecid, int erase)
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
    r->k = u->restores++;
    const struct rack_port *port = &w->rack->ports[r->port];
    fate_decide(w->rack->sim.seed, u->ecid, port->path, r->k, port->link_fail, u->health, &r->fate);
    r->next = w->restores;
    w->restores = r;
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

int world_move(struct world *w, uint64_t ecid, int to_port, int dfu, char *err, size_t errlen)
{
    int unit = rack_find_unit(w->rack, ecid);
    if (unit < 0) {
        snprintf(err, errlen, "no unit with that ECID in the rack");
        return -1;
    }
    int occupant = w->rack->ports[to_port].unit;
    if (occupant >= 0 && occupant != unit) {
        for (struct restore *r = w->restores; r; r = r->next)
            if (r->unit == occupant) {
                snprintf(err, errlen, "port '%s' is busy restoring another unit",
                         w->rack->ports[to_port].label);
                return -1;
            }
        detach(w, occupant); /* the technician takes the finished phone out */
    }
    for (struct restore *r = w->restores; r; r = r->next)
        if (r->unit == unit) {
            lose_link(w, r); /* pulled out mid-restore */
            break;
        }
    for (struct delayed *d = w->delayed; d; d = d->next)
        if (d->unit == unit)
            d->at = -1; /* cancelled: it is going elsewhere */
    detach(w, unit);
    w->stats.moves++;
    attach_later(w, unit, to_port, dfu || w->rack->units[unit].mode == 1 ? 1 : 2, w->rack->sim.move_s);
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
        if (d->at >= 0 && p->unit < 0 && u->port < 0) {
            p->unit = d->unit;
            u->port = d->port;
            u->mode = d->mode;
            w->io.unit_event(w->io.arg, "attach", d->port, d->unit);
        }
        free(d);
    }
}

static void count_data_phase(struct world *w)
{
    memset(w->data_on_bus, 0, (w->rack->nhosts + 1) * 128 * sizeof *w->data_on_bus);
    for (struct restore *r = w->restores; r; r = r->next)
        if (r->phase == PH_DATA)
            w->data_on_bus[bus_key(w, r->port)]++;
}

/* Advances one restore; returns 0 when it ended (and was freed). */
static int advance(struct world *w, struct restore *r, double dt)
{
    const struct rack_sim *s = &w->rack->sim;
    if (r->phase == PH_DATA) {
        double share = fate_share(s->bus_mbps, w->data_on_bus[bus_key(w, r->port)]);
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
    count_data_phase(w);
    struct restore *r = w->restores;
    while (r) {
        struct restore *next = r->next;
        advance(w, r, dt);
        r = next;
    }
}
