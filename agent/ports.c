/* ports — the port registry: which ports this host has, which unit is on each,
 * in which mode. Discovery events update it and are forwarded to the controller
 * as PortEvents (reliable). */
#include <stdlib.h>
#include <string.h>

#include "agent.h"
#include "fr_log.h"
#include "unit_run.h"

struct port *ports_find(struct agent *a, const char *path)
{
    for (size_t i = 0; i < a->nports; i++)
        if (strcmp(a->ports[i].desc.path, path) == 0)
            return &a->ports[i];
    return NULL;
}

struct port *ports_find_unit(struct agent *a, uint64_t ecid)
{
    for (size_t i = 0; i < a->nports; i++)
        if (a->ports[i].has_unit && a->ports[i].unit.ecid == ecid)
            return &a->ports[i];
    return NULL;
}

static void unit_info(const struct unit_desc *u, Fr__UnitInfo *ui)
{
    fr__unit_info__init(ui);
    ui->ecid = u->ecid;
    ui->product_type = (char *)u->product_type;
    ui->cpid = u->cpid;
    ui->bdid = u->bdid;
    ui->serial = (char *)u->serial;
    ui->mode = u->mode;
    ui->port_path = (char *)u->path;
    ui->reason = (char *)u->reason;
    ui->imei = (char *)u->imei;
}

static void report(struct agent *a, Fr__PortEvent__Kind kind, const struct unit_desc *u)
{
    Fr__UnitInfo ui;
    unit_info(u, &ui);
    Fr__PortEvent ev = FR__PORT_EVENT__INIT;
    ev.kind = kind;
    ev.unit = &ui;
    Fr__Envelope env = FR__ENVELOPE__INIT;
    env.body_case = FR__ENVELOPE__BODY_PORT_EVENT;
    env.port_event = &ev;
    link_send_reliable(a, &env, NULL);
}

/* The unit on p has left: reported, and p is free. */
static void detach(struct agent *a, struct port *p)
{
    p->has_unit = 0;
    char e[FR_ECID_STRLEN];
    fr_ecid_format(p->unit.ecid, e, sizeof e);
    fr_info("ports", "unit %s detached from %s (%s)", e, p->desc.label, p->desc.path);
    report(a, FR__PORT_EVENT__KIND__DETACH, &p->unit);
}

/* A new tree (a hub came or went, the tree was read again): a unit on a port still in
 * it stays there as it is (no source reports it again, and a run on it needs its port);
 * a unit whose port is gone is detached. */
void ports_on_topology(void *arg, const struct port_desc *ports, size_t n)
{
    struct agent *a = arg;
    struct port *np = calloc(n ? n : 1, sizeof *np);
    if (!np)
        return;
    for (size_t i = 0; i < n; i++) {
        np[i].desc = ports[i];
        struct port *old = ports_find(a, ports[i].path);
        if (old && old->has_unit) {
            np[i].has_unit = 1;
            np[i].unit = old->unit;
            old->has_unit = 0;
        }
    }
    for (size_t i = 0; i < a->nports; i++)
        if (a->ports[i].has_unit)
            detach(a, &a->ports[i]);
    free(a->ports);
    a->ports = np;
    a->nports = n;
    fr_info("ports", "%zu ports on this host", n);
    /* the controller learns ports through Hello: say it again with the new topology (a
     * Welcome already on its way answers an older Hello: on_welcome sees it) */
    a->welcomed = 0;
    a->topology_gen++;
}

void ports_on_attach(void *arg, const struct unit_desc *u)
{
    struct agent *a = arg;
    struct port *old = ports_find_unit(a, u->ecid);
    if (old)
        old->has_unit = 0; /* a unit is on one port at a time */
    struct port *p = ports_find(a, u->path);
    if (!p) {
        fr_warn("ports", "a unit attached on unknown port '%s'", u->path);
        return;
    }
    p->has_unit = 1;
    p->unit = *u;
    char ecid[FR_ECID_STRLEN];
    fr_ecid_format(u->ecid, ecid, sizeof ecid);
    fr_info("ports", "unit %s attached on %s (%s) in %s mode", ecid, p->desc.label, u->path,
            fr_mode_name(u->mode));
    report(a, FR__PORT_EVENT__KIND__ATTACH, u);
    unit_run_on_unit(a, u);
}

void ports_on_detach(void *arg, const char *path, uint64_t ecid)
{
    struct agent *a = arg;
    struct port *p = ports_find(a, path);
    if (p && p->has_unit && p->unit.ecid == ecid)
        detach(a, p);
}

void ports_on_mode(void *arg, const struct unit_desc *u)
{
    struct agent *a = arg;
    struct port *p = ports_find(a, u->path);
    if (!p)
        return;
    p->has_unit = 1;
    p->unit = *u;
    report(a, FR__PORT_EVENT__KIND__MODE, u);
    unit_run_on_unit(a, u);
}

/* Fills h's ports and units from the registry (heap arrays freed by ports_free_hello). */
void ports_fill_hello(struct agent *a, Fr__Hello *h)
{
    h->ports = calloc(a->nports + 1, sizeof *h->ports);
    h->units = calloc(a->nports + 1, sizeof *h->units);
    Fr__PortInfo *pi = calloc(a->nports + 1, sizeof *pi);
    Fr__UnitInfo *ui = calloc(a->nports + 1, sizeof *ui);
    if (!h->ports || !h->units || !pi || !ui) {
        free(pi);
        free(ui);
        free(h->ports);
        free(h->units);
        h->ports = NULL;
        h->units = NULL;
        return;
    }
    h->ports[0] = pi; /* slot 0 always holds the arrays, for ports_free_hello */
    h->units[0] = ui;
    for (size_t i = 0; i < a->nports; i++) {
        fr__port_info__init(&pi[i]);
        pi[i].path = a->ports[i].desc.path;
        pi[i].label = a->ports[i].desc.label;
        pi[i].hub = a->ports[i].desc.hub;
        pi[i].bus = a->ports[i].desc.bus;
        pi[i].depth = a->ports[i].desc.depth;
        pi[i].power_switch = a->ports[i].desc.power_switch;
        h->ports[h->n_ports++] = &pi[i];
        if (a->ports[i].has_unit) {
            unit_info(&a->ports[i].unit, &ui[h->n_units]);
            h->units[h->n_units] = &ui[h->n_units];
            h->n_units++;
        }
    }
}

void ports_free_hello(Fr__Hello *h)
{
    if (h->ports)
        free(h->ports[0]);
    if (h->units)
        free(h->units[0]);
    free(h->ports);
    free(h->units);
}
