/* agent — the flashrack-agent process: configuration, loop, controller link,
 * ports and units present, and the unit runs it is driving.
 *
 * struct agent is shared by the agent's modules: link.c (controller transport,
 * outbox), dispatch.c (the controller's messages), ports.c (port registry), unit_run.c (state machine),
 * progress.c (the runs' progress, batched per tick), engine.c
 * (engine children), main.c. Everything runs on the loop thread. */
#ifndef AGENT_H
#define AGENT_H

#include <stdint.h>
#include <uv.h>

#include "engine_output.h"
#include "engine_probe.h"
#include "flashrack.pb-c.h"
#include "fr_replay.h"
#include "fr_service.h"
#include "fr_types.h"
#include "fr_zsock.h"
#include "seams.h"

struct agent_cfg {
    char id[64];
    char controller[256];
    long long slots;
    long long bus_limit;     /* units sending data on one root bus at once (0 = no limit) */
    long long cache_gb;      /* IPSW cache size cap */
    char mirror[256];        /* site mirror: auto (the controller's), off, or a base URL */
    char work_dir[512];
    char cache_dir[512];     /* the IPSW cache; "" = see resolve_dirs() in main.c */
    char log_level[16];
    char log_format[8];
    char topology[16], discovery[16], power[16];
    char sim_socket[108];
    char host_root[256];
    char rack_map[512];      /* usb seams: the rack map (rackmap.h); "" = ports labelled by path */     /* usb seams: prefix of sysfs ("" = this host; tests use a recorded tree) */
    char engine_path[512];
    long long watchdog_s;
    long long verify_wait_s; /* after a restore: the longest wait for the unit in normal mode */
    char engine_extra[256];
    char key[512];            /* [agent] key: this agent's keypair file ("" = no CURVE) */
    char controller_key[512]; /* [agent] controller_key: the controller's public key file */
};

/* One port and what is on it. */
struct port {
    struct port_desc desc;
    int has_unit;
    struct unit_desc unit;
};

struct unit_run;

/* One reliable message waiting for the controller's ack. */
struct outbox_entry {
    uint64_t seq;
    uint8_t *data;
    size_t len;
    struct fr_replay replay;     /* when it goes out again (uv_now ms) */
    Fr__AttemptRef ref;          /* JobResult entries: the attempt it reports (else ecid 0) */
    int64_t journal_id;          /* its row in the result journal (0 = none) */
    struct outbox_entry *next;
};

struct agent {
    uv_loop_t *loop;
    int argc;                    /* the command line, read again by reloads */
    char **argv;
    struct agent_cfg cfg;
    uint64_t session;            /* random per process start */
    void *zctx, *dealer;
    fr_zsock zs;
    uv_timer_t link_timer;
    uv_signal_t sigint, sigterm;
    struct fr_service svc;       /* systemd: readiness, status, watchdog, SIGHUP reloads */
    struct seams *seams;
    struct fwcache *cache;
    struct sqlite3 *journal;     /* journal.c: results not yet acknowledged */
    struct engine_info engine;   /* the engine as probed at start */
    char engine_sim_env[160];    /* "FLASHRACK_SIM_SOCKET=..." for the simulator's engine */
    const char *engine_env[2];   /* what the engine's children get on top of our environment */
    char keeper[600];            /* flashrack-engine-keeper ("" = engines run without one) */

    /* link state */
    int welcomed;
    int closed;                  /* link_close() ran: results go to the journal only */
    uint64_t controller_epoch;
    uint64_t heartbeat_ms, liveness;
    uint64_t last_heard;         /* uv_now of the last controller message */
    uint64_t last_tick;          /* uv_now of the last link timer tick */
    uint64_t next_seq;           /* next reliable seq */
    uint64_t acked;              /* highest seq the controller acked */
    uint64_t tick_acked;         /* acked at the previous link tick */
    struct outbox_entry *outbox, **outbox_tail;
    uint64_t dropped;
    int hellos_unsent;           /* Hellos in a row with no link to send them on */
    int hellos_unanswered;       /* Hellos in a row sent and not answered by a Welcome */

    /* ports and units */
    struct port *ports;
    size_t nports;
    uint64_t topology_gen;       /* +1 at each topology report; a Hello carries it */

    struct unit_run *runs;
    uv_timer_t *progress_timer;  /* progress.c: the next round of marked runs (NULL = none) */
    uint64_t progress_sent_at;   /* uv_now of the last round */
    int stopping;
};

/* link.c */
int link_start(struct agent *a, char *err, size_t errlen);
void link_close(struct agent *a);
/* Drops every queued reliable message, sent or not (at close; tests). */
void link_outbox_free(struct agent *a);
/* Sends an unreliable message (progress, heartbeat) now; dropped when not welcomed. */
void link_send(struct agent *a, Fr__Envelope *env);
/* Queues a reliable message (port event, accept, result) in the outbox and sends it;
 * a result (result_ref set) is also kept in the journal (after link_close, only kept
 * there, for the next process; anything else is dropped). 0, or a negative fr_err code
 * (logged) when it could not be queued: nothing was sent and no seq was used. */
int link_send_reliable(struct agent *a, Fr__Envelope *env, const Fr__AttemptRef *result_ref);
/* Sends the journaled result of an attempt that has ended again (reliable). 0, or
 * FR_ENOTFOUND when the journal has none. */
int link_resend_result(struct agent *a, uint64_t attempt_id);

/* ports.c */
void ports_on_topology(void *arg, const struct port_desc *ports, size_t n);
void ports_on_attach(void *arg, const struct unit_desc *u);
void ports_on_detach(void *arg, const char *path, uint64_t ecid);
void ports_on_mode(void *arg, const struct unit_desc *u);
struct port *ports_find_unit(struct agent *a, uint64_t ecid);
struct port *ports_find(struct agent *a, const char *path);
void ports_fill_hello(struct agent *a, Fr__Hello *h);
void ports_free_hello(Fr__Hello *h);

#endif
