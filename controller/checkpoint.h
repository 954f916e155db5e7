/* checkpoint — the store's WAL checkpoints, off the loop thread. It owns a second SQLite
 * connection to the store's file, used only for checkpoints, and the one checkpoint at a
 * time it runs on libuv's thread pool.
 *
 * SQLite's automatic checkpoint is run by the committing connection inside its COMMIT:
 * on the loop thread, where its fsyncs of the WAL and of the database stalled the loop.
 * checkpoint_start() turns that off for the store's connection (store_on_wal_commit) and,
 * when a commit leaves the WAL threshold frames longer than at the last checkpoint, queues
 * a checkpoint on the pool. Its first step, PASSIVE, never waits and holds no writer
 * off: it copies what no reader still needs, with the fsyncs. The WAL starts again from
 * its beginning only at a write that finds all of it copied: after a copy that ended while
 * the writer paused, which under a steady load may never come. So once the WAL is
 * full_frames long, a second step, FULL, copies the frames committed during the PASSIVE
 * copy with the store's writer held off (it takes the write lock, never waiting for it,
 * tried again a few times 2 ms apart), and the store's next write starts the WAL again.
 * That step's fsyncs make a commit of the loop that comes meanwhile wait (how often and
 * how long is counted): hence not at every checkpoint. The WAL is bounded by full_frames
 * plus what is written while one checkpoint runs, plus what is written while a reader
 * outside the loop (a --backup) holds an older snapshot.
 *
 * The pool's connection is used by one thread at a time: opened and closed on the loop
 * thread, used on the pool only while a checkpoint is in flight, never two at once. An
 * error (SQLITE_BUSY: another checkpoint is under way, I/O) is logged and the checkpoint
 * is tried again after threshold more frames; it is never fatal. Loop thread only, but
 * for the pool's own work. */
#ifndef CHECKPOINT_H
#define CHECKPOINT_H

#include <stdint.h>
#include <uv.h>

#include "store.h"

#define CHECKPOINT_FRAMES 1000 /* SQLite's own automatic threshold, in pages */
#define CHECKPOINT_FULL_FRAMES 25000 /* the FULL step's: about 100 MB of WAL */

struct checkpoint_stats {
    uint64_t queued;    /* checkpoints handed to the pool */
    uint64_t runs;      /* of them: ran to an answer (complete or not) */
    uint64_t complete;  /* of them: every frame of the WAL was copied */
    uint64_t failed;    /* checkpoints that returned an error (logged) */
    int frames;         /* the WAL's length after the store's last commit */
    int max_frames;     /* the longest it has been */
    int last_log, last_copied; /* the last checkpoint's WAL length and frames copied */
    uint64_t full;      /* checkpoints that ended with the FULL step (the writer held off) */
    uint64_t held_ns, held_max_ns; /* the FULL steps' time: in all, the longest */
};

struct checkpoint_cfg {
    int threshold;      /* frames; 0: CHECKPOINT_FRAMES */
    int full_frames;    /* the WAL's length from which the FULL step runs; 0: CHECKPOINT_FULL_FRAMES */
    /* Tests: called on the pool's thread before each step of a checkpoint (0: the
     * PASSIVE copy, 1: the FULL one; to hold one in flight), and on the loop after each
     * has ended. NULL: none. */
    void (*on_pool)(void *arg, int step);
    void (*on_done)(void *arg, const struct checkpoint_stats *st);
    void *arg;
};

struct checkpoint;

/* Opens the second connection to s's file and takes over s's checkpoints (cfg may be
 * NULL). 0, or FR_ESTORE with the reason in err; s then keeps SQLite's own. */
int checkpoint_start(struct checkpoint **out, uv_loop_t *loop, struct store *s,
                     const struct checkpoint_cfg *cfg, char *err, size_t errlen);
/* Gives s its automatic checkpoint back and closes the second connection: now, or, with a
 * checkpoint in flight, when it has ended (the loop runs until then: its request is
 * active). *ck is NULL after. */
void checkpoint_close(struct checkpoint **ck);
struct checkpoint_stats checkpoint_stats(const struct checkpoint *ck);

#endif
