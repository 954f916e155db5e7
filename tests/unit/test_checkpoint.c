/* test_checkpoint — the store's WAL checkpoints on libuv's thread pool (checkpoint.h):
 * commits checkpoint nothing themselves, the pool's checkpoints copy the WAL and it starts
 * again, also when frames came after the copy; a stop with one in flight closes
 * cleanly; a reader's snapshot holds the WAL only while it lasts; a WAL file grown past
 * the store's limit shrinks to it once the WAL starts again. Real files; the pool
 * has one thread (set before libuv starts it). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <semaphore.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>
#include <uv.h>

#include "checkpoint.h"
#include "fr_err.h"
#include "sql_probe.h"
#include "store.h"

#define THRESHOLD 1000
#define FULL_FRAMES 2000 /* the FULL step, from a WAL this long */
#define PAGE_ROW 3000 /* an event's text: about one 4 KiB page per row */

static char dbpath[64];

struct fixture {
    uv_loop_t loop;
    struct store *s;
    struct checkpoint *ck;
    sem_t entered, release; /* on_pool: a checkpoint in flight, held until released */
    int hold;
    sem_t unblock;          /* the pool's thread held by the test, until posted */
    int blocked;
    int entered_n, done_n;
    int rows;               /* events written */
};

/* hold: 1 holds the PASSIVE step, 2 the FULL one */
static void on_pool(void *arg, int step)
{
    struct fixture *f = arg;
    f->entered_n += step == 0;
    if (f->hold != step + 1)
        return;
    sem_post(&f->entered);
    sem_wait(&f->release);
}

static void on_done(void *arg, const struct checkpoint_stats *st)
{
    struct fixture *f = arg;
    f->done_n++;
}

/* Waits (bounded) for what a semaphore announces: 0 once posted. */
static int wait_sem(sem_t *sem)
{
    struct timespec t;
    clock_gettime(CLOCK_REALTIME, &t);
    t.tv_sec += 60;
    int rc;
    while ((rc = sem_timedwait(sem, &t)) < 0 && errno == EINTR)
        ;
    return rc;
}

static int setup(void **state)
{
    snprintf(dbpath, sizeof dbpath, "/tmp/fr-test-ckpt-%d.db", (int)getpid());
    sql_probe_remove(dbpath);
    struct fixture *f = calloc(1, sizeof *f);
    char err[512];
    assert_int_equal(uv_loop_init(&f->loop), 0);
    assert_int_equal(store_open(dbpath, &f->s, err, sizeof err), 0);
    sem_init(&f->entered, 0, 0);
    sem_init(&f->release, 0, 0);
    sem_init(&f->unblock, 0, 0);
    struct checkpoint_cfg cfg = { THRESHOLD, FULL_FRAMES, on_pool, on_done, f };
    assert_int_equal(checkpoint_start(&f->ck, &f->loop, f->s, &cfg, err, sizeof err), 0);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    checkpoint_close(&f->ck);
    if (f->hold) { /* a failed test left one held */
        f->hold = 0;
        sem_post(&f->release);
    }
    if (f->blocked)
        sem_post(&f->unblock);
    assert_int_equal(uv_run(&f->loop, UV_RUN_DEFAULT), 0); /* any checkpoint still in flight */
    assert_int_equal(store_close(&f->s), 0);
    assert_int_equal(uv_loop_close(&f->loop), 0);
    sem_destroy(&f->entered);
    sem_destroy(&f->release);
    sem_destroy(&f->unblock);
    free(f);
    sql_probe_remove(dbpath);
    return 0;
}

/* commits transactions of rows events each (about a page a row) */
static void write_rows(struct fixture *f, int commits, int rows)
{
    static char text[PAGE_ROW + 1];
    memset(text, 'x', PAGE_ROW);
    for (int c = 0; c < commits; c++) {
        assert_int_equal(store_begin(f->s), 0);
        for (int i = 0; i < rows; i++, f->rows++)
            assert_int_equal(store_event(f->s, 1, "test", 0, (uint64_t)f->rows, "", "", text), 0);
        assert_int_equal(store_commit(f->s), 0);
    }
}

/* Runs the loop until every checkpoint handed to the pool has ended (bounded: each turn
 * waits for one event, there is one checkpoint at a time). */
static void settle(struct fixture *f)
{
    for (int turns = 0; turns < 1000; turns++) {
        struct checkpoint_stats st = checkpoint_stats(f->ck);
        if (st.runs + st.failed == st.queued)
            return;
        uv_run(&f->loop, UV_RUN_ONCE);
    }
    fail_msg("the checkpoints never ended");
}

/* The store's own commits run no checkpoint: with the pool's checkpoint held, the WAL
 * grows past SQLite's automatic threshold without being started again (SQLite's own
 * checkpoint, inside COMMIT, would have copied it at 1,000 pages and the WAL would have
 * started again). Released, the pool's checkpoint copies all of it, and the next commit
 * starts the WAL from its beginning. */
static void test_commits_leave_checkpoints_to_the_pool(void **state)
{
    struct fixture *f = *state;
    f->hold = 1;
    write_rows(f, 40, 100);
    assert_int_equal(wait_sem(&f->entered), 0); /* queued at 1,000 pages, held */
    struct checkpoint_stats st = checkpoint_stats(f->ck);
    assert_true(st.frames >= 4000);
    assert_int_equal(st.max_frames, st.frames); /* never started again */
    assert_int_equal(st.queued, 1);             /* at most one in flight */
    assert_int_equal(sql_probe(dbpath, "SELECT count(*) FROM events"), f->rows);

    f->hold = 0;
    sem_post(&f->release);
    settle(f);
    st = checkpoint_stats(f->ck);
    assert_int_equal(st.runs, 1); /* it saw the whole WAL: none due after it */
    assert_int_equal(st.complete, 1);
    assert_int_equal(st.last_log, st.frames);
    assert_int_equal(st.last_copied, st.frames);
    assert_int_equal(f->done_n, 1);

    write_rows(f, 1, 10);
    st = checkpoint_stats(f->ck);
    assert_true(st.frames < 100); /* the WAL started again from its beginning */
    assert_int_equal(sql_probe(dbpath, "SELECT count(*) FROM events"), f->rows);
}

/* A stop while a checkpoint runs on the pool: the second connection closes when it has
 * ended, the store closes cleanly after (teardown: no statement left, nothing leaked), and
 * every committed row is there. */
static void test_close_with_a_checkpoint_in_flight(void **state)
{
    struct fixture *f = *state;
    f->hold = 1;
    write_rows(f, 20, 100);
    assert_int_equal(wait_sem(&f->entered), 0);
    checkpoint_close(&f->ck);
    assert_null(f->ck);
    write_rows(f, 2, 100); /* the store goes on committing meanwhile */
    f->hold = 0;
    sem_post(&f->release);
    assert_int_equal(uv_run(&f->loop, UV_RUN_DEFAULT), 0); /* the checkpoint's end frees it */
    assert_int_equal(f->done_n, 0);
    assert_int_equal(store_close(&f->s), 0);
    assert_int_equal(sql_probe(dbpath, "SELECT count(*) FROM events"), f->rows);
    assert_int_equal(sql_probe(dbpath, "SELECT count(*) FROM pragma_integrity_check"
                               " WHERE integrity_check <> 'ok'"), 0);
    char err[512];
    assert_int_equal(store_open(dbpath, &f->s, err, sizeof err), 0);
}

/* Closed before its queued checkpoint started: it is cancelled, never run. */
static void block_pool(uv_work_t *w)
{
    sem_wait(w->data);
}

static void unblocked(uv_work_t *w, int status)
{
}

static void test_close_with_a_checkpoint_queued(void **state)
{
    struct fixture *f = *state;
    static uv_work_t blocker; /* outlives a failed test: teardown lets it end */
    blocker.data = &f->unblock;
    assert_int_equal(uv_queue_work(&f->loop, &blocker, block_pool, unblocked), 0);
    f->blocked = 1;
    write_rows(f, 12, 100); /* a checkpoint queued behind the blocker: the pool has one thread */
    assert_int_equal(checkpoint_stats(f->ck).queued, 1);
    checkpoint_close(&f->ck);
    f->blocked = 0;
    sem_post(&f->unblock);
    assert_int_equal(uv_run(&f->loop, UV_RUN_DEFAULT), 0);
    assert_int_equal(f->entered_n, 0); /* cancelled before it ran */
    assert_int_equal(sql_probe(dbpath, "SELECT count(*) FROM events"), f->rows);
}

/* Frames committed after the PASSIVE copy's end, before the WAL could start again (here a
 * reader at the WAL's end kept the next commit from starting it again, as commits during
 * the copy do under a steady load): the FULL step copies them with the writer held off,
 * and the next commit starts the WAL again. Left to PASSIVE copies, the WAL would start
 * again only at a pause of the writer's after a copy of all of it. */
static void test_frames_after_the_copy(void **state)
{
    struct fixture *f = *state;
    f->hold = 1;
    write_rows(f, 25, 100);
    assert_int_equal(wait_sem(&f->entered), 0); /* queued at 1,000 pages, held */
    sqlite3 *reader = NULL;
    assert_int_equal(sqlite3_open(dbpath, &reader), SQLITE_OK);
    assert_int_equal(sqlite3_exec(reader, "BEGIN; SELECT count(*) FROM events", NULL, NULL, NULL),
                     SQLITE_OK);
    f->hold = 2;
    sem_post(&f->release);
    assert_int_equal(wait_sem(&f->entered), 0); /* all copied, the FULL step held */
    int copied = checkpoint_stats(f->ck).frames;
    assert_true(copied >= FULL_FRAMES);
    write_rows(f, 5, 100);
    assert_true(checkpoint_stats(f->ck).frames > copied); /* not started again: the reader */
    assert_int_equal(sqlite3_exec(reader, "COMMIT", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(reader);
    f->hold = 0;
    sem_post(&f->release);
    settle(f);
    struct checkpoint_stats st = checkpoint_stats(f->ck);
    assert_int_equal(st.runs, 1);
    assert_int_equal(st.full, 1);
    assert_int_equal(st.complete, 1);
    assert_int_equal(st.last_copied, st.frames); /* the frames after the PASSIVE copy too */
    write_rows(f, 1, 10);
    assert_true(checkpoint_stats(f->ck).frames < 100); /* started again */
    assert_int_equal(sql_probe(dbpath, "SELECT count(*) FROM events"), f->rows);
}

static off_t wal_size(void)
{
    char p[100];
    struct stat sb;
    snprintf(p, sizeof p, "%s-wal", dbpath);
    return stat(p, &sb) == 0 ? sb.st_size : -1;
}

/* Many commits, each checkpoint let to end before the next commit: the WAL never gets
 * past the threshold and one commit, and its file stays that size. */
static void test_wal_stays_bounded(void **state)
{
    struct fixture *f = *state;
    for (int i = 0; i < 400; i++) {
        write_rows(f, 1, 50);
        settle(f);
    }
    struct checkpoint_stats st = checkpoint_stats(f->ck);
    assert_true(st.max_frames >= THRESHOLD);
    assert_true(st.max_frames < THRESHOLD + 60);
    assert_true(st.complete >= 15); /* 20,000 pages in all */
    assert_int_equal(st.failed, 0);
    assert_true(wal_size() <= (off_t)(THRESHOLD + 60) * (4096 + 24) + 32);
    assert_int_equal(sql_probe(dbpath, "SELECT count(*) FROM events"), f->rows);
}

/* A reader's snapshot, as a backup's: another connection in a read transaction. */
static sqlite3 *reader_open(void)
{
    sqlite3 *reader = NULL;
    assert_int_equal(sqlite3_open(dbpath, &reader), SQLITE_OK);
    assert_int_equal(sqlite3_exec(reader, "BEGIN; SELECT count(*) FROM events", NULL, NULL, NULL),
                     SQLITE_OK);
    return reader;
}

/* Ends the reader, then writes until a checkpoint has copied the whole WAL, and once more:
 * that write starts the WAL again. */
static void reader_end_and_restart(struct fixture *f, sqlite3 *reader)
{
    assert_int_equal(sqlite3_exec(reader, "COMMIT", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(reader);
    for (int i = 0; i < 20 && checkpoint_stats(f->ck).complete == 0; i++) {
        write_rows(f, 1, 100);
        settle(f);
    }
    assert_int_equal(checkpoint_stats(f->ck).complete, 1);
    write_rows(f, 1, 10);
    assert_true(checkpoint_stats(f->ck).frames < 100);
}

/* A reader's snapshot (another connection, as a backup's) keeps the checkpoints from
 * copying the frames after it, and the WAL from starting again; they copy what they can,
 * once per threshold pages, not once per commit; after the reader ends, the next one
 * copies the rest and the WAL starts again. */
static void test_a_reader_holds_the_wal_while_it_lasts(void **state)
{
    struct fixture *f = *state;
    write_rows(f, 1, 100);
    sqlite3 *reader = reader_open();
    for (int i = 0; i < 60; i++) {
        write_rows(f, 1, 100);
        settle(f);
    }
    struct checkpoint_stats st = checkpoint_stats(f->ck);
    assert_true(st.frames >= 6000);
    assert_int_equal(st.max_frames, st.frames); /* never started again */
    assert_true(st.last_copied < st.last_log);
    assert_true(st.queued >= 4 && st.queued <= 7); /* once per 1,000 pages */
    assert_int_equal(st.complete, 0);

    reader_end_and_restart(f, reader);
    assert_int_equal(sql_probe(dbpath, "SELECT count(*) FROM events"), f->rows);
}

/* A burst that a reader's snapshot kept from being copied grows the WAL file past
 * STORE_WAL_LIMIT; once the reader has ended, a checkpoint copies it all and the store's
 * next commit starts the WAL again: the file gives back what passes the limit (SQLite
 * alone reuses the file and keeps its largest size for good). */
static void test_the_wal_file_shrinks_to_its_limit(void **state)
{
    struct fixture *f = *state;
    write_rows(f, 1, 100);
    sqlite3 *reader = reader_open();
    int burst = STORE_WAL_LIMIT / 4096 + 2000; /* pages: past the limit */
    for (int i = 0; i < burst / 1000; i++) {
        write_rows(f, 1, 1000);
        settle(f);
    }
    off_t grown = wal_size();
    assert_true(grown > (off_t)STORE_WAL_LIMIT);
    reader_end_and_restart(f, reader);
    assert_true(wal_size() <= (off_t)STORE_WAL_LIMIT); /* before: still the burst's size */
    assert_true(wal_size() < grown);
    assert_int_equal(sql_probe(dbpath, "SELECT count(*) FROM events"), f->rows);
}

int main(void)
{
    setenv("UV_THREADPOOL_SIZE", "1", 1); /* read when libuv first starts its pool */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_commits_leave_checkpoints_to_the_pool, setup, teardown),
        cmocka_unit_test_setup_teardown(test_frames_after_the_copy, setup, teardown),
        cmocka_unit_test_setup_teardown(test_close_with_a_checkpoint_in_flight, setup, teardown),
        cmocka_unit_test_setup_teardown(test_close_with_a_checkpoint_queued, setup, teardown),
        cmocka_unit_test_setup_teardown(test_wal_stays_bounded, setup, teardown),
        cmocka_unit_test_setup_teardown(test_a_reader_holds_the_wal_while_it_lasts, setup, teardown),
        cmocka_unit_test_setup_teardown(test_the_wal_file_shrinks_to_its_limit, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
