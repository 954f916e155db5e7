/* test_ports — the agent's port registry across a new tree (a hub came or went): the
 * units on ports still in it stay on them and are in the Hello that follows, with no
 * second ATTACH; a unit whose port is gone is detached (a DETACH goes out). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "agent.h"
#include "fr_types.h"
#include "fr_wire.h"
#include "unit_run.h"

#define ECID_A 0x000012345678ABCDull
#define ECID_B 0x0000222233334444ull

struct rig {
    uv_loop_t loop;
    struct agent a;
};

static void rig_setup(struct rig *g)
{
    uv_loop_init(&g->loop);
    memset(&g->a, 0, sizeof g->a);
    g->a.loop = &g->loop;
    snprintf(g->a.cfg.id, sizeof g->a.cfg.id, "T");
    g->a.next_seq = 1;
    g->a.outbox_tail = &g->a.outbox;
}

static void rig_teardown(struct rig *g)
{
    link_outbox_free(&g->a);
    free(g->a.ports);
    assert_int_equal(uv_loop_close(&g->loop), 0);
}

/* A tree of the given port paths (NULL-terminated), reported to the registry. */
static void topology(struct rig *g, const char *const *paths)
{
    struct port_desc pd[16];
    size_t n = 0;
    memset(pd, 0, sizeof pd);
    for (; paths[n]; n++) {
        snprintf(pd[n].path, sizeof pd[n].path, "%s", paths[n]);
        snprintf(pd[n].label, sizeof pd[n].label, "L%s", paths[n]);
        pd[n].bus = 1;
    }
    ports_on_topology(&g->a, pd, n);
}

static void attach(struct rig *g, uint64_t ecid, const char *path)
{
    struct unit_desc u = { .ecid = ecid, .mode = fr_mode_parse("recovery"), .cpid = 0x8101 };
    snprintf(u.path, sizeof u.path, "%s", path);
    snprintf(u.product_type, sizeof u.product_type, "iPhone15,2");
    snprintf(u.serial, sizeof u.serial, "SER%llx", (unsigned long long)ecid);
    ports_on_attach(&g->a, &u);
}

/* PortEvents of kind in the outbox for ecid. */
static int port_events(struct rig *g, Fr__PortEvent__Kind kind, uint64_t ecid)
{
    int n = 0;
    for (struct outbox_entry *e = g->a.outbox; e; e = e->next) {
        Fr__Envelope *env = NULL;
        char err[128];
        assert_int_equal(fr_wire_unpack(e->data, e->len, &env, err, sizeof err), 0);
        n += env->body_case == FR__ENVELOPE__BODY_PORT_EVENT && env->port_event->kind == kind &&
             env->port_event->unit->ecid == ecid;
        fr_wire_free(&env);
    }
    return n;
}

/* The port path ecid is on in the Hello the agent would send now ("" = not in it). */
static void hello_unit(struct rig *g, uint64_t ecid, char *path, size_t len)
{
    Fr__Hello h = FR__HELLO__INIT;
    ports_fill_hello(&g->a, &h);
    assert_non_null(h.units);
    snprintf(path, len, "%s", "");
    for (size_t i = 0; i < h.n_units; i++)
        if (h.units[i]->ecid == ecid)
            snprintf(path, len, "%s", h.units[i]->port_path);
    ports_free_hello(&h);
}

/* A hub appears: the tree read again has the old ports and the hub's. */
static void a_unit_stays_on_its_port_when_a_hub_comes(void **state)
{
    struct rig g;
    rig_setup(&g);
    topology(&g, (const char *const[]){ "1-1", "1-2", NULL });
    attach(&g, ECID_A, "1-2");
    g.a.welcomed = 1;
    uint64_t gen = g.a.topology_gen;
    topology(&g, (const char *const[]){ "1-1", "1-2", "1-3.1", "1-3.2", NULL });
    struct port *p = ports_find_unit(&g.a, ECID_A);
    assert_non_null(p); /* before the fix: every port empty */
    assert_string_equal(p->desc.path, "1-2");
    assert_string_equal(p->unit.product_type, "iPhone15,2");
    assert_string_equal(p->unit.serial, "SER12345678abcd");
    assert_int_equal(p->unit.mode, fr_mode_parse("recovery"));
    assert_int_equal(g.a.nports, 4);
    assert_int_equal(g.a.welcomed, 0); /* the new ports go out in a Hello */
    assert_int_equal(g.a.topology_gen, gen + 1);
    char path[32];
    hello_unit(&g, ECID_A, path, sizeof path);
    assert_string_equal(path, "1-2");
    assert_int_equal(port_events(&g, FR__PORT_EVENT__KIND__ATTACH, ECID_A), 1);
    assert_int_equal(port_events(&g, FR__PORT_EVENT__KIND__DETACH, ECID_A), 0);
    rig_teardown(&g);
}

/* A hub goes: the unit on its port is detached, the unit on a port still there stays. */
static void a_unit_whose_port_is_gone_is_detached(void **state)
{
    struct rig g;
    rig_setup(&g);
    topology(&g, (const char *const[]){ "1-1", "1-3.1", "1-3.2", NULL });
    attach(&g, ECID_A, "1-3.2");
    attach(&g, ECID_B, "1-1");
    topology(&g, (const char *const[]){ "1-1", NULL });
    assert_null(ports_find_unit(&g.a, ECID_A));
    assert_int_equal(port_events(&g, FR__PORT_EVENT__KIND__DETACH, ECID_A), 1);
    char path[32];
    hello_unit(&g, ECID_A, path, sizeof path);
    assert_string_equal(path, "");
    hello_unit(&g, ECID_B, path, sizeof path);
    assert_string_equal(path, "1-1");
    assert_int_equal(port_events(&g, FR__PORT_EVENT__KIND__DETACH, ECID_B), 0);
    /* the source's own detach of the unit that left, after the tree: nothing more */
    ports_on_detach(&g.a, "1-3.2", ECID_A);
    assert_int_equal(port_events(&g, FR__PORT_EVENT__KIND__DETACH, ECID_A), 1);
    /* the hub back: its ports are empty until a source attaches a unit again */
    topology(&g, (const char *const[]){ "1-1", "1-3.1", "1-3.2", NULL });
    assert_null(ports_find_unit(&g.a, ECID_A));
    assert_non_null(ports_find_unit(&g.a, ECID_B));
    rig_teardown(&g);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(a_unit_stays_on_its_port_when_a_hub_comes),
        cmocka_unit_test(a_unit_whose_port_is_gone_is_detached),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
