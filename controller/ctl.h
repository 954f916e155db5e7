/* ctl — the controller process: its loop, sockets, store and agent registry.
 *
 * struct controller is shared by the controller's modules: agents.c (agent
 * protocol, liveness), clients.c (operator requests), scheduler.c (matching units
 * to jobs), main.c (configuration, start and stop). Everything runs on the loop
 * thread. */
#ifndef CTL_H
#define CTL_H

#include <stdint.h>
#include <uv.h>

#include "flashrack.pb-c.h"
#include "firmware.h"
#include "fr_service.h"
#include "fr_time.h"
#include "fr_zsock.h"
#include "checkpoint.h"
#include "loop_probe.h"
#include "turn.h"
#include "mirror.h"
#include "page.h"
#include "policy.h"
#include "records.h"
#include "store.h"
#include "zap.h"

struct ctl_cfg {
    char agents_endpoint[256];
    char clients_endpoint[256];
    char store[1024];
    long long heartbeat_ms;
    long long liveness;
    char log_level[16];
    char log_format[8];
    long long max_attempts;
    int naive;                  /* [policy] naive: retry in place, no moves (for comparison) */
    long long quarantine_units;
    long long strike_window_s;
    char mirror_listen[128];    /* [mirror] listen: HOST:PORT or off */
    char mirror_url[256];       /* [mirror] url: what agents use ("" = from listen) */
    char mirror_dir[512];
    long long mirror_cache_gb;
    char fw_catalog_dir[512];   /* [firmware] catalog_dir */
    char fw_sources[2048];      /* [firmware] sources: catalog URLs, space-separated */
    long long fw_max_age_s;
    char keys_dir[512];         /* [security] keys_dir (zap.h) */
    char insecure[16];          /* [security] insecure: no, or loopback (no CURVE) */
    char record_key[1024];      /* [records] key ("" = KEYS_DIR/record.key) */
    char site[128];             /* [records] site: where the units are sanitized */
    char destination[256];      /* [records] destination: where they go afterwards */
    char page_listen[128];      /* [page] listen: HOST:PORT or off (page.h) */
    char page_token_file[512];  /* [page] token_file: the operator token ("" = none) */
    long long page_max_clients;
    long long page_heartbeat_s;
    long long page_buffer_kb;   /* [page] client_buffer_kb */
};


struct agent_state {
    char id[64];
    int online;
    uint64_t session;      /* the agent's session from its last Hello */
    uint64_t last_seen;    /* uv_now of its last message */
    uint64_t applied_seq;  /* highest reliable seq applied */
    uint32_t slots;
    uint64_t dropped;      /* refused messages */
    uint64_t mismatched;   /* accepts, progress and results naming no attempt of its own */
    uint64_t refused;      /* attempts it refused */
    char key[48];          /* the CURVE key its Hello came with ("" in insecure mode) */
    char route[FR_ZSOCK_ROUTE_MAX]; /* the routing id its last Hello came from ("ID/RANDOM") */
    /* its JobAssigns not accepted yet, sent again (agents.c, "re-sending JobAssigns") */
    uint64_t tick_seq;       /* applied_seq at the previous heartbeat tick */
    unsigned resend_idle;    /* ticks since they last went again */
    unsigned resend_rounds;  /* rounds since its Hello that found some, in a row */
    int resend_due;          /* the next round may take them (RESEND_PER_TICK permitting) */
    int resend_any_age;      /* ... all of them, however new (a new link) */
    struct agent_state *next;
    struct agent_state *hnext; /* the next in its agent_hash bucket */
};

/* Progress waiting to be written: the latest per attempt wins, flushed in one
 * transaction every PROGRESS_FLUSH_MS (hundreds of units report several times a
 * second; one transaction per report would make the store the bottleneck). */
struct pending_progress {
    Fr__AttemptRef ref;
    struct agent_state *agent; /* who sent it (agents are never freed while running) */
    char state[32];
    uint32_t step;
    float fraction;
    char status[256];
};
#define AGENT_HASH 1024 /* buckets of agent_hash (chained: any number of agents) */
#define PROGRESS_FLUSH_MS 500
#define PROGRESS_PER_TURN 1024 /* written per loop turn, at most; a larger backlog goes on next turn */
/* And at most this much of the loop's CPU per turn: at 10 ms a flush with its commit took
 * up to 18 ms, a unit plugged meanwhile waiting for its JobAssign. */
#define PROGRESS_CPU_NS (3 * 1000000ull)
#define PROGRESS_CPU_EVERY 16  /* reports between two looks at the CPU clock */
#define PROGRESS_MAX 16384
#define PROGRESS_SLOTS (2 * PROGRESS_MAX) /* open addressing by attempt id: index + 1, 0 = free */

struct controller {
    uv_loop_t *loop;
    int argc;                 /* the command line, read again by reloads */
    char **argv;
    struct ctl_cfg cfg;
    struct store *store;
    struct checkpoint *ckpt;  /* checkpoint.c: the store's WAL checkpoints, on the pool */
    struct policy_cfg policy;
    void *zctx, *agents_sock, *clients_sock;
    fr_zsock agents_zs, clients_zs;
    uv_timer_t heartbeat, sched, progress_flush;
    struct pending_progress *progress;
    uint32_t *progress_slot;  /* PROGRESS_SLOTS: finds an attempt's entry in progress[] */
    size_t nprogress;
    size_t progress_flushed;  /* progress[0..this) written by the flush under way */
    uv_signal_t sigint, sigterm;
    struct agent_state *agents;
    /* agents by id: every message names its agent, and 200 agents' ids compared one by one
     * took a tenth of the loop's CPU at 125,000 messages a second */
    struct agent_state *agent_hash[AGENT_HASH];
    uint64_t dropped_unknown; /* refused messages from no known agent */
    uint64_t last_tick;       /* uv_now of the last heartbeat tick */
    struct agent_state *resend_next; /* whose JobAssigns the next tick looks at first (NULL: the first's) */
    uv_timer_t tick_more;     /* the heartbeat tick's next slice (agents.c) */
    enum { TICK_DONE, TICK_AGENTS, TICK_RESENDS } tick_phase; /* the tick under way's */
    struct agent_state *tick_at; /* the next agent it sends a heartbeat (TICK_AGENTS) */
    int tick_stalled;         /* it came after a stall: no agent judged offline */
    /* its round of re-sends (TICK_RESENDS): the next agent, the first, how many went */
    struct agent_state *resend_at, *resend_from;
    size_t resend_sent;
    uint64_t sched_retry_at;  /* uv_now when a held-back run may be assigned (0 = none) */
    struct mirror *mirror;    /* mirror.c; NULL when off */
    struct page *page;        /* page.c, the rack page; NULL when off */
    struct firmware *firmware; /* firmware.c: the catalog */
    struct loop_probe probe;  /* loop stalls, shown in the agents document */
    struct fr_service svc;    /* systemd: readiness, status, watchdog, SIGHUP reloads */
    struct zap *zap;          /* zap.c: keys and the ZAP handler; NULL in insecure mode */
    struct turn turn;         /* turn.c: the open group commit */
    struct records records;   /* records.c: the signed record of every ended unit run */
    /* What changed since the last pass, for selector jobs to look at: every unit (a job
     * was submitted, or at start: a page of the site per pass, from expand_at), and the
     * units listed (plugged in, Helloed, finished a run, released), once the whole site
     * has been looked at. */
    int expand_all;
    struct expand_cursor expand_at;
    uint64_t *expand_units;
    size_t nexpand, expand_cap;
    int sched_continued;      /* the last pass left claims: the next one continues it */
    uint64_t sched_end_cpu_ns; /* the loop thread's CPU when the last pass ended */
    int progress_held;        /* the progress flush waits for the passes (scheduler.c) */
    fr_clock_ns cpu_ns;       /* the loop thread's CPU clock (NULL: fr_time_thread_cpu_ns; a test's own) */
    struct loop_count pass_work;  /* scheduling passes: claims tried, CPU (the loop probe logs them) */
    struct loop_count flush_work; /* progress flushes: reports written, CPU */
    struct loop_count tick_work;  /* heartbeat ticks' slices: agents online, CPU (agents.c) */
    int stopping;
};

/* The loop thread's CPU time, on c->cpu_ns when a test gave its own clock: what the
 * budgets of a turn's work (passes, flushes) are counted in. */
static inline uint64_t ctl_cpu_ns(const struct controller *c)
{
    return c->cpu_ns ? c->cpu_ns() : fr_time_thread_cpu_ns();
}

/* agents.c */
void agents_on_msg(fr_zsock *zs, zmq_msg_t *parts, size_t nparts, void *arg);
/* After a drain of agent messages: commits their turn, then sends what it held. */
void agents_on_drained(fr_zsock *zs, void *arg);
/* The heartbeat tick: a heartbeat to every online agent (or offline after its silence),
 * unaccepted JobAssigns again where one may be lost; a slice per loop turn (tick_more). */
void agents_on_heartbeat(uv_timer_t *t);
struct agent_state *agents_find(struct controller *c, const char *id);
/* Makes a (its id set) one of c's agents: in c->agents and found by agents_find. */
void agents_insert(struct controller *c, struct agent_state *a);
int agents_send(struct controller *c, struct agent_state *a, Fr__Envelope *env);
/* A heartbeat acknowledging what a's messages applied so far (turn.c, after a commit). */
void agents_ack(struct controller *c, struct agent_state *a);
void agents_send_assign(struct controller *c, const Fr__AttemptRef *ref, const struct attempt_info *ai);
void agents_free(struct controller *c);
void agents_send_power_cycle(struct controller *c, struct agent_state *a, const char *port);
void agents_on_progress_flush(uv_timer_t *t);
/* Writes every pending progress report now (at a stop). */
void agents_flush_progress(struct controller *c);
/* After the keys were reloaded: an online agent whose key was revoked goes offline. */
void agents_on_keys_changed(void *arg);

/* Tells agents to fetch an IPSW now (the job's agents, else every online agent). */
void agents_prefetch(struct controller *c, const char *url, const char *sha, char **only, size_t nonly);

/* clients.c */
void clients_on_msg(fr_zsock *zs, zmq_msg_t *parts, size_t nparts, void *arg);

/* scheduler.c: runs a scheduling pass on the next loop turn (coalesced). */
void sched_kick(struct controller *c);
/* Selector jobs look at every present unit on the next pass. */
void sched_expand_all(struct controller *c);
/* Selector jobs look at this unit on the next pass (it changed). */
void sched_expand_unit(struct controller *c, uint64_t ecid);
void sched_free(struct controller *c);
/* A pass once ms have passed (checked at the heartbeat ticks). */
void sched_kick_after(struct controller *c, uint64_t ms);
void sched_on_timer(uv_timer_t *t);

#endif
