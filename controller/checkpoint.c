/* checkpoint — the store's WAL checkpoints on libuv's thread pool; see checkpoint.h. */
#include "checkpoint.h"

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "fr_err.h"
#include "fr_log.h"
#include "loop_probe.h"

struct checkpoint {
    uv_loop_t *loop;
    struct store *store;
    sqlite3 *db;          /* the pool's connection: one thread at a time (checkpoint.h) */
    struct checkpoint_cfg cfg;
    uv_work_t work;
    int busy;             /* a checkpoint is in flight: work is the pool's */
    int closing;          /* closed with one in flight: its end frees all */
    int queued_at;        /* the WAL's length when the last one was queued */
    /* the pool's answer, read on the loop once the work has ended */
    int rc, log, copied;
    uint64_t held_ns;     /* how long the FULL step held the store's writer off */
    char why[256];
    struct checkpoint_stats st;
};

static void destroy(struct checkpoint *ck)
{
    if (ck->db && sqlite3_close(ck->db) != SQLITE_OK)
        fr_warn("store", "closing the checkpoints' connection: %s", sqlite3_errmsg(ck->db));
    free(ck);
}

/* FULL takes the store's write lock (with no busy handler it never waits for it; taken,
 * held until it ends); busy, it has done a PASSIVE one and says BUSY. Between two of the
 * loop's turns it gets the lock within a few tries. */
#define FULL_TRIES 10
#define FULL_RETRY_US 2000
#define CHECKPOINT_LATE_NS ((uint64_t)LOOP_STALL_MS * 1000000) /* what the probe calls a stall */

static int step(struct checkpoint *ck, int mode)
{
    ck->log = ck->copied = -1;
    ck->rc = sqlite3_wal_checkpoint_v2(ck->db, "main", mode, &ck->log, &ck->copied);
    if (ck->rc != SQLITE_OK && ck->rc != SQLITE_BUSY) /* the connection's: read it here */
        snprintf(ck->why, sizeof ck->why, "%s", sqlite3_errmsg(ck->db));
    return ck->rc;
}

/* The frames committed while the PASSIVE copy ran, copied with the store's writer held
 * off, so that none is added before the copy ends and the store's next write starts the
 * WAL again. (A PASSIVE copy that the writer outran never lets it start again: under a
 * steady load the WAL would only grow.) Only those few, but with two fsyncs, which on a
 * busy disk took up to 460 ms: so only once the WAL is long (checkpoint.h). */
static void finish_on_pool(struct checkpoint *ck)
{
    for (int i = 0; i < FULL_TRIES; i++) {
        if (i)
            usleep(FULL_RETRY_US);
        uint64_t t0 = uv_hrtime();
        if (step(ck, SQLITE_CHECKPOINT_FULL) != SQLITE_BUSY) {
            ck->held_ns = uv_hrtime() - t0;
            return;
        }
    }
    ck->rc = SQLITE_OK; /* the last try copied what it could (PASSIVE); the next one goes on */
}

static void run_on_pool(uv_work_t *w)
{
    struct checkpoint *ck = w->data;
    ck->held_ns = 0;
    if (ck->cfg.on_pool)
        ck->cfg.on_pool(ck->cfg.arg, 0);
    if (step(ck, SQLITE_CHECKPOINT_PASSIVE) != SQLITE_OK || ck->copied != ck->log)
        return; /* an error, or a reader holds the rest: FULL could not end it either */
    if (ck->log < ck->cfg.full_frames)
        return; /* the WAL may yet start again by itself, at a pause of the writer's */
    if (ck->cfg.on_pool)
        ck->cfg.on_pool(ck->cfg.arg, 1);
    finish_on_pool(ck);
}

static void after_pool(uv_work_t *w, int status);

/* Due when the WAL has grown by threshold frames since the last one was queued (a
 * checkpoint that could not copy all, or failed, is tried again only after that much
 * more: never once per commit). */
static void maybe_start(struct checkpoint *ck)
{
    if (ck->busy || ck->closing || ck->st.frames < ck->queued_at + ck->cfg.threshold)
        return;
    ck->queued_at = ck->st.frames;
    ck->work.data = ck;
    ck->busy = uv_queue_work(ck->loop, &ck->work, run_on_pool, after_pool) == 0;
    ck->st.queued += ck->busy;
    if (!ck->busy)
        fr_warn("store", "cannot queue a WAL checkpoint on the thread pool; trying again after "
                "%d more pages", ck->cfg.threshold);
}

static void note(struct checkpoint *ck)
{
    if (ck->rc != SQLITE_OK) {
        ck->st.failed++;
        fr_warn("store", "a WAL checkpoint failed (%s), trying again after %d more pages; the "
                "WAL has %d pages", ck->why, ck->cfg.threshold, ck->st.frames);
        return;
    }
    ck->st.runs++;
    ck->st.complete += ck->log == ck->copied;
    ck->st.last_log = ck->log;
    ck->st.last_copied = ck->copied;
    ck->st.held_ns += ck->held_ns;
    if (ck->held_ns > ck->st.held_max_ns)
        ck->st.held_max_ns = ck->held_ns;
    ck->st.full += ck->held_ns > 0;
    if (ck->log > ck->queued_at) /* it saw the WAL to there: the next one is due from there */
        ck->queued_at = ck->log;
    if (ck->log != ck->copied)
        fr_debug("store", "a WAL checkpoint copied %d of %d pages (a reader holds the rest)",
                 ck->copied, ck->log);
}

static void after_pool(uv_work_t *w, int status)
{
    struct checkpoint *ck = w->data;
    ck->busy = 0;
    if (status == 0)
        note(ck);
    if (ck->closing) {
        destroy(ck);
        return;
    }
    if (ck->cfg.on_done)
        ck->cfg.on_done(ck->cfg.arg, &ck->st);
    maybe_start(ck); /* the WAL grew by threshold more while this one ran */
}

/* After each commit of the store (loop thread). A WAL shorter than after the commit before
 * has been started again from its beginning: the last checkpoint copied all of it. */
static void on_commit(void *arg, int frames)
{
    struct checkpoint *ck = arg;
    if (frames < ck->st.frames)
        ck->queued_at = 0;
    ck->st.frames = frames;
    if (frames > ck->st.max_frames)
        ck->st.max_frames = frames;
    maybe_start(ck);
}

int checkpoint_start(struct checkpoint **out, uv_loop_t *loop, struct store *s,
                     const struct checkpoint_cfg *cfg, char *err, size_t errlen)
{
    *out = NULL;
    struct checkpoint *ck = calloc(1, sizeof *ck);
    if (!ck)
        return fr_seterr(FR_ENOMEM, err, errlen, "out of memory");
    if (cfg)
        ck->cfg = *cfg;
    if (ck->cfg.threshold <= 0)
        ck->cfg.threshold = CHECKPOINT_FRAMES;
    if (ck->cfg.full_frames <= 0)
        ck->cfg.full_frames = CHECKPOINT_FULL_FRAMES;
    ck->loop = loop;
    ck->store = s;
    /* NOMUTEX: one thread at a time (checkpoint.h). A first read opens the WAL: a
     * checkpoint on a connection that never read does nothing. */
    int rc = sqlite3_open_v2(store_path(s), &ck->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX,
                             NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_exec(ck->db, "PRAGMA synchronous=NORMAL; PRAGMA user_version", NULL, NULL,
                          NULL);
    if (rc != SQLITE_OK) {
        fr_seterr(FR_ESTORE, err, errlen, "cannot open store '%s' for its checkpoints: %s",
                  store_path(s), ck->db ? sqlite3_errmsg(ck->db) : "out of memory");
        destroy(ck);
        return FR_ESTORE;
    }
    store_on_wal_commit(s, on_commit, ck);
    *out = ck;
    return 0;
}

void checkpoint_close(struct checkpoint **pck)
{
    struct checkpoint *ck = *pck;
    *pck = NULL;
    if (!ck)
        return;
    store_on_wal_commit(ck->store, NULL, NULL);
    /* a warning when the FULL step made the loop late (the loop probe's own measure) */
    fr_log(ck->st.held_max_ns >= CHECKPOINT_LATE_NS ? FR_LOG_WARN : FR_LOG_INFO, "store",
           "%llu WAL checkpoints on libuv's thread pool (%llu of all the WAL, %llu "
           "failed); the WAL was at most %d pages; the writer held off %llu times, for %.1f ms "
           "at most, %.1f ms in all", (unsigned long long)ck->st.runs,
           (unsigned long long)ck->st.complete, (unsigned long long)ck->st.failed,
           ck->st.max_frames, (unsigned long long)ck->st.full, ck->st.held_max_ns / 1e6,
           ck->st.held_ns / 1e6);
    if (!ck->busy) {
        destroy(ck);
        return;
    }
    ck->closing = 1;
    uv_cancel((uv_req_t *)&ck->work); /* not started yet: it ends now, cancelled */
}

struct checkpoint_stats checkpoint_stats(const struct checkpoint *ck)
{
    return ck->st;
}
