/* practice_model — the practices flashrack is measured against, played on the
 * simulator's own model (sim/world.c, fate.c, rack.c) without any processes.
 *
 *   practice_model RACK_FILE naive|careful
 *
 * naive:   every unit at once, each failure retried in place, 3 attempts in all.
 * careful: per host a queue of at most 10 restores at once (the idevicerestore
 *          maintainers' advice), taking the host's buses in turn, 6 attempts,
 *          failures retried at the back of the queue; after 2 failures on one port the technician moves the unit to a
 *          free port of another hub on the same host (Apple's "another cable and
 *          port"), through the world's technicians ([sim] technicians).
 * Prints one JSON object: the makespan in simulated seconds, each unit's end, and
 * the world's stats (touches, technician time). The rack starts full; loading it and
 * taking the phones out afterwards is the same for every practice and not counted. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fr_types.h"
#include "world.h"

#define TICK_S 1.0
#define MAX_SIM_S (7 * 24 * 3600.0)

enum rec_state { REC_WAITING, REC_RUNNING, REC_DONE, REC_WRITTEN_OFF };

struct rec {
    enum rec_state state;
    int attempts, fails_here, needs_move, moving_to;
    int home;                  /* the port it was last seen on (it comes back there) */
    unsigned long long queued; /* queue order: lower goes first */
    int failed_ports[16];
    int nfailed;
    double ended;
};

struct practice {
    const char *name;
    int per_host_cap;     /* 0: no cap */
    int max_attempts;
    int move_after;       /* failures on one port before a move; 0: never */
};

struct run {
    struct world *w;
    struct rack *rack;
    const struct practice *p;
    struct rec *recs;
    unsigned long long seq;
    int pending_exit_unit;
};

static void on_unit(void *arg, const char *op, int port, int unit) { }
static void on_out(void *arg, void *owner, int stream, const char *text) { }

static void on_exit_cb(void *arg, void *owner, int code)
{
    struct run *run = arg;
    int unit = (int)((struct rec *)owner - run->recs);
    struct rec *r = &run->recs[unit];
    if (r->state != REC_RUNNING)
        return; /* refused at once: the unit was not there */
    r->attempts++;
    if (code == 0) {
        r->state = REC_DONE;
        r->ended = world_now(run->w);
        return;
    }
    if (r->attempts >= run->p->max_attempts) {
        r->state = REC_WRITTEN_OFF;
        r->ended = world_now(run->w);
        return;
    }
    r->state = REC_WAITING;
    r->queued = ++run->seq;
    int port = run->rack->units[unit].port;
    if (port >= 0 && r->nfailed < 16)
        r->failed_ports[r->nfailed++] = port;
    if (run->p->move_after && ++r->fails_here >= run->p->move_after)
        r->needs_move = 1;
}

static int has_failed_on(const struct rec *r, int port)
{
    for (int i = 0; i < r->nfailed; i++)
        if (r->failed_ports[i] == port)
            return 1;
    return 0;
}

/* A port on the unit's host whose phone is finished (or that is empty), where the unit
 * has not failed and no other move is headed; another hub than the one it is on first. */
static int free_port_for(struct run *run, int unit, int from)
{
    const struct rack *rk = run->rack;
    int best = -1;
    for (size_t i = 0; i < rk->nports; i++) {
        const struct rack_port *p = &rk->ports[i];
        if (p->host != rk->ports[from].host || (int)i == from || has_failed_on(&run->recs[unit], (int)i))
            continue;
        int occ = p->unit;
        if (occ >= 0 && run->recs[occ].state != REC_DONE && run->recs[occ].state != REC_WRITTEN_OFF)
            continue;
        int taken = 0; /* another move heads there, or its unit dropped off and comes back */
        for (size_t u = 0; u < rk->nunits && !taken; u++)
            taken = run->recs[u].moving_to == (int)i ||
                    (occ < 0 && run->recs[u].home == (int)i && rk->units[u].port < 0);
        if (taken)
            continue;
        if (best < 0 || (rk->ports[best].hub == rk->ports[from].hub && p->hub != rk->ports[from].hub))
            best = (int)i;
    }
    return best;
}

static void note_homes(struct run *run)
{
    for (size_t u = 0; u < run->rack->nunits; u++)
        if (run->rack->units[u].port >= 0)
            run->recs[u].home = run->rack->units[u].port;
}

static void request_moves(struct run *run)
{
    for (size_t u = 0; u < run->rack->nunits; u++) {
        struct rec *r = &run->recs[u];
        int at = run->rack->units[u].port;
        if (!r->needs_move || r->state != REC_WAITING || at < 0)
            continue;
        int to = free_port_for(run, (int)u, at);
        char err[128];
        if (to < 0 || world_move(run->w, run->rack->units[u].ecid, to, 0, err, sizeof err) < 0)
            continue; /* no port free yet: the unit waits its turn */
        r->needs_move = 0;
        r->fails_here = 0;
        r->moving_to = to;
    }
}

static int running_on_host(const struct run *run, int host)
{
    int n = 0;
    for (size_t u = 0; u < run->rack->nunits; u++)
        n += run->recs[u].state == REC_RUNNING && run->rack->units[u].port >= 0 &&
             run->rack->ports[run->rack->units[u].port].host == host;
    return n;
}

/* Starts the oldest waiting, attached units while the host's queue has room. */
static void start_restores(struct run *run)
{
    const struct rack *rk = run->rack;
    for (size_t h = 0; h < rk->nhosts; h++) {
        int running = running_on_host(run, (int)h);
        for (;;) {
            if (run->p->per_host_cap && running >= run->p->per_host_cap)
                break;
            int next = -1;
            for (size_t u = 0; u < rk->nunits; u++) {
                const struct rec *r = &run->recs[u];
                int port = rk->units[u].port;
                if (r->state != REC_WAITING || r->needs_move || port < 0 || rk->ports[port].host != (int)h ||
                    (r->moving_to >= 0 && r->moving_to != port))
                    continue;
                if (next < 0 || r->queued < run->recs[next].queued)
                    next = (int)u;
            }
            if (next < 0)
                break;
            run->recs[next].moving_to = -1;
            run->recs[next].state = REC_RUNNING;
            world_restore_start(run->w, &run->recs[next], rk->units[next].ecid, 1, NULL, NULL);
            running++;
        }
    }
}

static int all_ended(const struct run *run)
{
    for (size_t u = 0; u < run->rack->nunits; u++)
        if (run->recs[u].state != REC_DONE && run->recs[u].state != REC_WRITTEN_OFF)
            return 0;
    return 1;
}

static json_t *report(struct run *run, double makespan)
{
    const struct world_stats *st = world_stats(run->w);
    json_t *units = json_array();
    for (size_t u = 0; u < run->rack->nunits; u++) {
        char ecid[FR_ECID_STRLEN];
        fr_ecid_format(run->rack->units[u].ecid, ecid, sizeof ecid);
        json_array_append_new(units, json_pack("{s:s, s:s, s:i, s:f}", "ecid", ecid, "state",
                                               run->recs[u].state == REC_DONE ? "done" : "written_off",
                                               "attempts", run->recs[u].attempts, "ended",
                                               run->recs[u].ended));
    }
    return json_pack("{s:s, s:f, s:o, s:{s:i, s:i, s:i, s:i, s:i, s:i, s:f, s:f, s:i}}", "practice",
                     run->p->name, "makespan", makespan, "units", units, "stats", "started",
                     st->restores_started, "restored", st->restored, "link_lost", st->link_lost,
                     "moves", st->moves, "touches", st->touches, "peak_data_on_bus",
                     st->peak_data_on_bus, "tech_busy_s", st->tech_busy_s, "tech_wait_s",
                     st->tech_wait_s, "phase_failures", st->phase_failures);
}

int main(int argc, char **argv)
{
    static const struct practice practices[] = {
        { "naive", 0, 3, 0 },
        { "careful", 10, 6, 2 },
    };
    const struct practice *p = NULL;
    for (size_t i = 0; argc == 3 && i < sizeof practices / sizeof practices[0]; i++)
        if (strcmp(argv[2], practices[i].name) == 0)
            p = &practices[i];
    if (!p) {
        fprintf(stderr, "usage: practice_model RACK_FILE naive|careful\n");
        return 2;
    }
    struct rack *rack = calloc(1, sizeof *rack);
    char err[512];
    if (!rack || rack_load(argv[1], rack, err, sizeof err) != 0) {
        fprintf(stderr, "practice_model: %s\n", rack ? err : "out of memory");
        return 1;
    }
    struct run run = { .rack = rack, .p = p };
    run.recs = calloc(rack->nunits + 1, sizeof *run.recs);
    struct world_io io = { on_unit, on_out, on_exit_cb, &run };
    run.w = world_new(rack, &io);
    if (!run.recs || !run.w) {
        fprintf(stderr, "practice_model: out of memory\n");
        return 1;
    }
    /* The first pass takes the ports bus by bus in turn (the first port of every bus,
     * then the second...), so a queue of 10 spreads over the host's buses; retries
     * join the back of the queue. */
    run.seq = 1ull << 32;
    for (size_t u = 0; u < rack->nunits; u++) {
        int port = rack->units[u].port, rank = 0;
        for (int i = 0; port >= 0 && i < port; i++)
            rank += rack->ports[i].host == rack->ports[port].host &&
                    rack->ports[i].bus == rack->ports[port].bus;
        run.recs[u].queued = port < 0 ? ++run.seq : (unsigned long long)rank * 1024 +
                                                        (unsigned long long)rack->ports[port].bus;
        run.recs[u].moving_to = -1;
        run.recs[u].home = rack->units[u].port;
    }
    while (!all_ended(&run) && world_now(run.w) < MAX_SIM_S) {
        note_homes(&run);
        request_moves(&run);
        start_restores(&run);
        world_tick(run.w, TICK_S);
    }
    json_t *doc = report(&run, world_now(run.w));
    json_dumpf(doc, stdout, JSON_COMPACT);
    putchar('\n');
    json_decref(doc);
    free(run.recs);
    world_destroy(&run.w);
    free(rack);
    return 0;
}
