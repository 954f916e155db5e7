/* test_page_rack — the rack page's rack over a real store file: read in steps, the same
 * rack whatever the steps; a quiet reading reads nothing; a reading reads only the ports
 * and runs written since; a new port is a new layout; the tile follows its unit's model;
 * a port with two units present shows the one the ports document shows. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fr_err.h"
#include "page_rack.h"
#include "store.h"

static char dbpath[64];

static int setup(void **state)
{
    snprintf(dbpath, sizeof dbpath, "/tmp/fr-test-page-rack-%d.db", (int)getpid());
    unlink(dbpath);
    struct store *s = NULL;
    char err[256];
    assert_int_equal(store_open(dbpath, &s, err, sizeof err), 0);
    *state = s;
    return 0;
}

static int teardown(void **state)
{
    struct store *s = *state;
    store_close(&s);
    char p[96];
    unlink(dbpath);
    snprintf(p, sizeof p, "%s.lock", dbpath);
    unlink(p);
    snprintf(p, sizeof p, "%s-wal", dbpath);
    unlink(p);
    snprintf(p, sizeof p, "%s-shm", dbpath);
    unlink(p);
    return 0;
}

/* agent's Hello: nports ports 1-1.1.., the first nunits with a unit from first_ecid */
static void hello(struct store *s, const char *agent, int nports, int nunits, uint64_t first_ecid)
{
    Fr__PortInfo ports[8], *pp[8];
    Fr__UnitInfo units[8], *up[8];
    char paths[8][16], labels[8][16];
    for (int i = 0; i < nports; i++) {
        fr__port_info__init(&ports[i]);
        snprintf(paths[i], sizeof paths[i], "1-1.%d", i + 1);
        snprintf(labels[i], sizeof labels[i], "%s-%02d", agent, i + 1);
        ports[i].path = paths[i];
        ports[i].label = labels[i];
        ports[i].hub = i < 4 ? "hub1" : "hub2";
        pp[i] = &ports[i];
        fr__unit_info__init(&units[i]);
        units[i].ecid = first_ecid + (uint64_t)i;
        units[i].product_type = "iPhone12,1";
        units[i].mode = 2;
        units[i].port_path = paths[i];
        up[i] = &units[i];
    }
    Fr__Hello h = FR__HELLO__INIT;
    h.hostname = (char *)agent;
    h.slots = 8;
    h.ports = pp;
    h.n_ports = (size_t)nports;
    h.units = up;
    h.n_units = (size_t)nunits;
    assert_int_equal(store_agent_hello(s, agent, &h, 1000, NULL), 0);
}

static void attach(struct store *s, const char *agent, const char *path, uint64_t ecid, const char *model)
{
    Fr__UnitInfo u = FR__UNIT_INFO__INIT;
    u.ecid = ecid;
    u.product_type = (char *)model;
    u.mode = 2;
    u.port_path = (char *)path;
    Fr__PortEvent ev = FR__PORT_EVENT__INIT;
    ev.kind = FR__PORT_EVENT__KIND__ATTACH;
    ev.unit = &u;
    assert_int_equal(store_unit_event(s, agent, &ev, 5000), 0);
}

static void submit_all(struct store *s, char *agent)
{
    struct job_spec spec = { .key = "k", .name = "t", .firmware = "/x.ipsw", .sha256 = "",
                             .agents = &agent, .nagents = 1, .erase = 1 };
    uint64_t id = 0;
    int created;
    char err[256];
    assert_int_equal(store_job_submit(s, &spec, 2000, &id, &created, err, sizeof err), 0);
    assert_int_equal(store_sched_expand(s, 2500, NULL, 0), 0);
}

/* Steps one reading to its end (within 1,000 steps); the caller frees d->tiles. */
static void read_all(struct page_rack *r, struct store *s, uint64_t budget_ns, struct page_rack_delta *d)
{
    size_t steps = 0;
    do {
        assert_int_equal(page_rack_step(r, s, budget_ns, 1, d), 0);
        if (!d->done)
            json_decref(d->tiles);
    } while (!d->done && ++steps < 1000);
    assert_true(d->done);
}

static char *text_of(const struct page_rack *r)
{
    size_t len;
    const char *text = page_rack_text(r, &len);
    assert_non_null(text);
    assert_int_equal(strlen(text), len);
    char *dumped = json_dumps(page_rack_doc(r), JSON_COMPACT);
    assert_string_equal(text, dumped); /* the text kept by hubs is the document's, byte for byte */
    free(dumped);
    return strdup(text);
}

static const json_t *tile(const struct page_rack *r, const char *id)
{
    const json_t *h, *t;
    size_t i, j;
    json_array_foreach(json_object_get(page_rack_doc(r), "hubs"), i, h)
        json_array_foreach(json_object_get(h, "tiles"), j, t)
            if (!strcmp(json_string_value(json_object_get(t, "id")), id))
                return t;
    return NULL;
}

static size_t ntiles(const struct page_rack *r)
{
    const json_t *h;
    size_t i, n = 0;
    json_array_foreach(json_object_get(page_rack_doc(r), "hubs"), i, h)
        n += json_array_size(json_object_get(h, "tiles"));
    return n;
}

/* The first reading in as many steps as it has parts (no budget) gives byte for byte the
 * rack one step gives; every port and run is read once and every tile built once. */
static void a_reading_in_steps_gives_the_same_rack(void **state)
{
    struct store *s = *state;
    hello(s, "A", 8, 8, 0x100);
    hello(s, "B", 6, 6, 0x200);
    submit_all(s, "A");
    struct page_rack *a = page_rack_new(), *b = page_rack_new();
    struct page_rack_delta d;
    read_all(a, s, 0, &d);
    assert_true(d.whole && d.layout);
    assert_true(d.steps >= 6); /* runs, ports, moves, the order, a text per hub (3), joined */
    assert_int_equal(d.ports_read, 14);
    assert_int_equal(d.runs_read, 8);
    assert_int_equal(d.tiles_built, 14);
    json_decref(d.tiles);
    read_all(b, s, 1000000000ULL, &d);
    assert_int_equal(d.steps, 1);
    json_decref(d.tiles);
    char *ta = text_of(a), *tb = text_of(b);
    assert_string_equal(ta, tb);
    assert_int_equal(ntiles(a), 14);
    assert_int_equal(json_array_size(json_object_get(page_rack_doc(a), "hubs")), 4);
    assert_string_equal(json_string_value(json_object_get(tile(a, "A:1-1.1"), "state")), "waiting_unit");
    free(ta);
    free(tb);
    /* quiet: nothing read, nothing built */
    read_all(a, s, 0, &d);
    assert_false(d.whole || d.layout || d.jobs);
    assert_int_equal(d.ports_read + d.runs_read + d.tiles_built + json_array_size(d.tiles), 0);
    json_decref(d.tiles);
    page_rack_destroy(&a);
    page_rack_destroy(&b);
}

/* A change reads only what was written: a unit leaving reads its port alone and tells its
 * tile; another agent's ports are a new layout, read without the rest. */
static void a_reading_reads_only_what_was_written(void **state)
{
    struct store *s = *state;
    hello(s, "A", 8, 8, 0x100);
    struct page_rack *r = page_rack_new();
    struct page_rack_delta d;
    read_all(r, s, 0, &d);
    json_decref(d.tiles);
    Fr__UnitInfo u = FR__UNIT_INFO__INIT;
    u.ecid = 0x103;
    u.port_path = "1-1.4";
    Fr__PortEvent ev = FR__PORT_EVENT__INIT;
    ev.kind = FR__PORT_EVENT__KIND__DETACH;
    ev.unit = &u;
    assert_int_equal(store_unit_event(s, "A", &ev, 6000), 0);
    read_all(r, s, 0, &d);
    assert_false(d.whole || d.layout);
    assert_int_equal(d.ports_read, 1);
    assert_int_equal(d.tiles_built, 1);
    assert_int_equal(json_array_size(d.tiles), 1);
    json_t *told = json_loads(json_string_value(json_array_get(d.tiles, 0)), 0, NULL);
    assert_string_equal(json_string_value(json_object_get(told, "id")), "A:1-1.4");
    assert_string_equal(json_string_value(json_object_get(told, "state")), "empty");
    assert_true(json_equal(told, tile(r, "A:1-1.4")));
    json_decref(told);
    json_decref(d.tiles);
    free(text_of(r));
    hello(s, "B", 3, 0, 0);
    read_all(r, s, 0, &d);
    assert_true(d.layout && !d.whole);
    assert_int_equal(d.ports_read, 3);
    assert_int_equal(d.tiles_built, 3);
    json_decref(d.tiles);
    assert_int_equal(ntiles(r), 11);
    free(text_of(r));
    page_rack_destroy(&r);
}

/* A unit with no run shows its model, and its tile follows the model when it changes. */
static void a_tile_follows_its_units_model(void **state)
{
    struct store *s = *state;
    hello(s, "A", 2, 2, 0x100);
    struct page_rack *r = page_rack_new();
    struct page_rack_delta d;
    read_all(r, s, 0, &d);
    json_decref(d.tiles);
    assert_string_equal(json_string_value(json_object_get(tile(r, "A:1-1.1"), "model")), "iPhone12,1");
    attach(s, "A", "1-1.1", 0x100, "iPhone13,2");
    read_all(r, s, 0, &d);
    assert_int_equal(json_array_size(d.tiles), 1);
    json_decref(d.tiles);
    assert_string_equal(json_string_value(json_object_get(tile(r, "A:1-1.1"), "model")), "iPhone13,2");
    free(text_of(r));
    page_rack_destroy(&r);
}

/* The store lets two units be present on one port (one plugged in before the other's
 * detach was heard): the port is one tile, with the unit the ports document names. */
static void a_port_with_two_units_is_one_tile(void **state)
{
    struct store *s = *state;
    hello(s, "A", 3, 3, 0x100);
    attach(s, "A", "1-1.2", 0x300, "iPhone14,5");
    struct page_rack *r = page_rack_new();
    struct page_rack_delta d;
    read_all(r, s, 0, &d);
    json_decref(d.tiles);
    assert_int_equal(ntiles(r), 3);
    json_t *ports = store_doc_ports(s, NULL);
    const char *named = json_string_value(json_object_get(json_array_get(json_object_get(ports, "ports"), 1), "ecid"));
    assert_string_equal(json_string_value(json_object_get(tile(r, "A:1-1.2"), "ecid")), named);
    json_decref(ports);
    free(text_of(r));
    page_rack_destroy(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(a_reading_in_steps_gives_the_same_rack, setup, teardown),
        cmocka_unit_test_setup_teardown(a_reading_reads_only_what_was_written, setup, teardown),
        cmocka_unit_test_setup_teardown(a_tile_follows_its_units_model, setup, teardown),
        cmocka_unit_test_setup_teardown(a_port_with_two_units_is_one_tile, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
