/* test_irecv_source — DFU/recovery events cross from another thread to the loop:
 * identity from the serial string, port path from sysfs (the nested fixture
 * tree has a DFU unit on 1-1.4.2.3), detach on the same path, garbage dropped.
 * The source subscribes to libirecovery for real (there are no devices here). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "flashrack.pb-c.h"
#include "irecv_source.h"

#define DFU_SERIAL "CPID:8030 CPRV:11 CPFM:03 SCEP:01 BDID:04 ECID:001A2B3C4D5E6F71 IBFL:3C " \
                   "SRTG:[iBoot-4479.0.0.100.4]"

struct seen {
    int attaches, detaches;
    struct unit_desc unit;
    char detached_path[32];
    uint64_t detached_ecid;
    uv_loop_t *loop;
};

static void on_topology(void *arg, const struct port_desc *p, size_t n) {}

static void on_attach(void *arg, const struct unit_desc *u)
{
    struct seen *s = arg;
    s->attaches++;
    s->unit = *u;
    uv_stop(s->loop);
}

static void on_detach(void *arg, const char *path, uint64_t ecid)
{
    struct seen *s = arg;
    s->detaches++;
    snprintf(s->detached_path, sizeof s->detached_path, "%s", path);
    s->detached_ecid = ecid;
    uv_stop(s->loop);
}

struct delivery {
    struct discovery_source *src;
    int added;
    uint16_t pid;
    const char *serial;
};

/* Delivers a list of events, in order, ended by one with no serial. */
static void *deliver_thread(void *arg)
{
    for (struct delivery *d = arg; d->serial; d++)
        irecv_source_deliver(d->src, d->added, d->pid, d->serial);
    return NULL;
}

static void on_bound(uv_timer_t *t)
{
    uv_stop(t->loop); /* the bound on how long the loop waits */
}

/* Delivers from a thread of its own and runs the loop until an event (or 5 s). */
static void deliver(uv_loop_t *loop, struct delivery *d)
{
    pthread_t th;
    uv_timer_t bound;
    uv_timer_init(loop, &bound);
    uv_timer_start(&bound, on_bound, 5000, 0);
    assert_int_equal(pthread_create(&th, NULL, deliver_thread, d), 0);
    uv_run(loop, UV_RUN_DEFAULT);
    pthread_join(th, NULL);
    uv_close((uv_handle_t *)&bound, NULL);
    uv_run(loop, UV_RUN_NOWAIT);
}

static void on_closed(struct discovery_source *s)
{
    *(int *)s->owner = 1;
}

static void units_cross_to_the_loop(void **state)
{
    char root[512], err[256] = "";
    snprintf(root, sizeof root, "%s/sysfs/nested", getenv("FR_FIXTURES"));
    uv_loop_t loop;
    uv_loop_init(&loop);
    struct seen seen = { .loop = &loop };
    struct seam_events ev = { on_topology, on_attach, on_detach, NULL, &seen };
    struct discovery_source *src = NULL;
    assert_int_equal(irecv_source_new(root, &src, err, sizeof err), 0);
    assert_int_equal(src->start(src, &loop, &ev, err, sizeof err), 0);

    struct delivery add[] = { { src, 1, 0x1227, DFU_SERIAL }, { 0 } };
    deliver(&loop, add);
    assert_int_equal(seen.attaches, 1);
    assert_string_equal(seen.unit.path, "1-1.4.2.3");
    assert_true(seen.unit.ecid == 0x001A2B3C4D5E6F71ull);
    assert_int_equal(seen.unit.mode, FR__UNIT_MODE__MODE_DFU);
    assert_int_equal(seen.unit.cpid, 0x8030);
    assert_int_equal(seen.unit.bdid, 0x04);

    /* a serial string that does not parse, and one on no port here, then the detach:
     * the detach is the next event the loop sees */
    struct delivery rest[] = { { src, 1, 0x1281, "CPID:8030 ECID:" },
                               { src, 1, 0x1281, "CPID:8030 ECID:0000000000000001" },
                               { src, 0, 0x1227, DFU_SERIAL }, { 0 } };
    deliver(&loop, rest);
    assert_int_equal(seen.attaches, 1);
    assert_int_equal(seen.detaches, 1);
    assert_string_equal(seen.detached_path, "1-1.4.2.3");
    assert_true(seen.detached_ecid == 0x001A2B3C4D5E6F71ull);

    int closed = 0;
    src->owner = &closed;
    src->close(src, on_closed);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(closed, 1);
    src->destroy(src);
    assert_int_equal(uv_loop_close(&loop), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(units_cross_to_the_loop),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
