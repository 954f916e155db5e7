/* test_records — the sanitization record of a unit run: built with the fields an audit
 * needs (pure), pending once the transaction that ends the run (a result, a cancel)
 * commits, then written once and signed in batches after it, never for a replay nor for
 * an end rolled back, written at start when a stop left it missing, refused an UPDATE or
 * DELETE by the store itself, and verifiable with the public key the controller wrote.
 * Real SQLite files. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sqlite3.h>

#include "fr_err.h"
#include "records.h"
#include "runs.h"
#include "sql_probe.h"
#include "store.h"

static char dir[64], dbpath[96], keypath[96], pubpath[112];

static const char *str_at(const json_t *o, const char *a, const char *b)
{
    const json_t *v = json_object_get(b ? json_object_get(o, a) : o, b ? b : a);
    return json_string_value(v) ? json_string_value(v) : "(missing)";
}

static json_t *facts(int erase, const char *state)
{
    return json_pack("{s:I, s:s, s:s, s:b, s:s, s:s, s:I, s:I, s:s, s:s, s:s, s:s, s:I, s:I, s:s, s:[o,o]}",
        "job_id", (json_int_t)7, "job_name", "batch", "job_firmware", "latest", "erase", erase,
        "operator", "dana", "state", state, "started_ms", (json_int_t)1700000000000,
        "ended_ms", (json_int_t)1700000312400, "error_class", "", "error_text", "",
        "product_type", "iPhone12,1", "serial", "F2LX", "cpid", (json_int_t)0x8030, "bdid", (json_int_t)4,
        "ecid", "0x000012345678ABCD", "attempts",
        json_pack("{s:s, s:s, s:I, s:i, s:s, s:s, s:s, s:s, s:s, s:s, s:i, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:I, s:I}",
                  "started", "2023-11-14T22:13:20.000Z", "ended", "2023-11-14T22:15:00.000Z", "duration_s", (json_int_t)100,
                  "n", 1, "agent", "A", "port", "1-1.1", "label", "A-01", "outcome", "failed",
                  "error_class", "link_lost", "error_text", "lost", "exit_code", -1, "log_path", "l1",
                  "firmware", "https://h/x.ipsw", "sha256", "aa", "version", "18.2", "build", "22C152",
                  "agent_version", "0.1.0", "engine", "idevicerestore 1.0.0", "libimobiledevice", "1.3.0",
                  "started_ms", (json_int_t)1700000000000, "ended_ms", (json_int_t)1700000100000),
        json_pack("{s:s, s:s, s:I, s:i, s:s, s:s, s:s, s:s, s:s, s:s, s:i, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:I, s:I}",
                  "started", "2023-11-14T22:16:40.000Z", "ended", "2023-11-14T22:18:32.400Z", "duration_s", (json_int_t)112,
                  "n", 2, "agent", "B", "port", "1-2.3", "label", "B-07", "outcome", "success",
                  "error_class", "", "error_text", "", "exit_code", 0, "log_path", "l2",
                  "firmware", "https://h/x.ipsw", "sha256", "bb", "version", "18.2", "build", "22C152",
                  "agent_version", "0.1.0", "engine", "idevicerestore 1.0.0", "libimobiledevice", "1.3.0",
                  "started_ms", (json_int_t)1700000200000, "ended_ms", (json_int_t)1700000312400));
}

static void a_record_has_the_audit_fields(void **state)
{
    struct records_info info = { "Depot 7", "resale", "2023-11-14T22:18:32.400Z" };
    json_t *f = facts(1, "done"), *r = records_build(f, &info);
    assert_non_null(r);
    assert_string_equal(str_at(r, "device", "manufacturer"), "Apple");
    assert_string_equal(str_at(r, "device", "marketing_name"), "iPhone 11");
    assert_string_equal(str_at(r, "device", "chip_id"), "0x8030");
    assert_string_equal(str_at(r, "device", "board_id"), "0x04");
    assert_string_equal(str_at(r, "device", "ecid"), "0x000012345678ABCD");
    assert_string_equal(str_at(r, "media_type", NULL), "flash memory");
    assert_string_equal(str_at(r, "sanitization", "method"), RECORDS_METHOD);
    /* the firmware, station and port are the successful attempt's, not the first one's */
    assert_string_equal(str_at(r, "firmware", "sha256"), "bb");
    assert_string_equal(str_at(r, "firmware", "build"), "22C152");
    assert_string_equal(str_at(r, "station", NULL), "B");
    assert_string_equal(str_at(r, "port", NULL), "B-07");
    assert_string_equal(str_at(r, "tools", "engine"), "idevicerestore 1.0.0");
    assert_string_equal(str_at(r, "tools", "agent"), "flashrack-agent 0.1.0");
    assert_string_equal(str_at(r, "operator", NULL), "dana");
    assert_string_equal(str_at(r, "site", NULL), "Depot 7");
    assert_string_equal(str_at(r, "destination", NULL), "resale");
    assert_string_equal(str_at(r, "result", NULL), "sanitized");
    assert_int_equal(json_integer_value(json_object_get(r, "duration_s")), 312);
    json_t *att = json_object_get(r, "attempts");
    assert_int_equal(json_array_size(att), 2);
    assert_int_equal(json_integer_value(json_object_get(json_array_get(att, 0), "duration_s")), 100);
    assert_string_equal(str_at(json_array_get(att, 0), "error_class", NULL), "link_lost");
    assert_true(strncmp(str_at(r, "verification", "result"), "not verified", 12) == 0);
    /* it has a canonical form: no real numbers in it */
    char *canon = NULL;
    assert_int_equal(fr_canon_json(r, &canon, NULL, NULL, 0), 0);
    free(canon);
    json_decref(r);
    json_decref(f);
    /* an update restore is no sanitization; a failed run says so */
    f = facts(0, "done");
    r = records_build(f, &info);
    assert_string_equal(str_at(r, "sanitization", "category"), "none");
    assert_string_equal(str_at(r, "result", NULL), "restored, not sanitized (update restore)");
    json_decref(r);
    json_decref(f);
    f = facts(1, "hardware_suspect");
    r = records_build(f, &info);
    assert_string_equal(str_at(r, "result", NULL), "not sanitized");
    json_decref(r);
    json_decref(f);
}

/* ---- in the store ----------------------------------------------------------------- */

static Fr__Hello *hello(void)
{
    static Fr__PortInfo port, *pp[1];
    static Fr__UnitInfo unit, *up[1];
    static Fr__Hello h;
    fr__port_info__init(&port);
    port.path = "1-1.1";
    port.label = "A-01";
    pp[0] = &port;
    fr__unit_info__init(&unit);
    unit.ecid = 0xE000;
    unit.product_type = "iPhone13,2";
    unit.serial = "SER1";
    unit.mode = 2;
    unit.port_path = "1-1.1";
    up[0] = &unit;
    fr__hello__init(&h);
    h.hostname = "A";
    h.agent_version = "0.1.0";
    h.engine = "flashrack-sim-restore 0.1.0";
    h.libimobiledevice = "1.3.0";
    h.slots = 4;
    h.ports = pp;
    h.n_ports = 1;
    h.units = up;
    h.n_units = 1;
    return &h;
}

static int on_cand(void *arg, const struct sched_candidate *c)
{
    *(struct sched_candidate *)arg = *c;
    return 1;
}

struct fixture {
    struct store *s;
    struct records r;
    Fr__AttemptRef ref;
    uint64_t job;
};

static int setup(void **state)
{
    snprintf(dir, sizeof dir, "/tmp/fr-test-records-XXXXXX");
    assert_non_null(mkdtemp(dir));
    snprintf(dbpath, sizeof dbpath, "%s/s.db", dir);
    snprintf(keypath, sizeof keypath, "%s/record.key", dir);
    snprintf(pubpath, sizeof pubpath, "%s.pub", keypath);
    struct fixture *f = calloc(1, sizeof *f);
    char err[512] = "";
    assert_int_equal(store_open(dbpath, &f->s, err, sizeof err), 0);
    assert_int_equal(store_bump_epoch(f->s), 0);
    assert_int_equal(records_open(&f->r, keypath, "Depot 7", "resale", err, sizeof err), 0);
    records_attach(&f->r, f->s);
    assert_int_equal(store_agent_hello(f->s, "A", hello(), 1000, NULL), 0);
    uint64_t ecid = 0xE000;
    struct job_spec spec = { .key = "k", .name = "t", .firmware = "/x.ipsw", .sha256 = "",
                             .ecids = &ecid, .necids = 1, .erase = 1, .operator = "dana" };
    int created;
    assert_int_equal(store_job_submit(f->s, &spec, 2000, &f->job, &created, err, sizeof err), 0);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(store_close(&f->s), 0);
    records_release(&f->r);
    char cmd[160];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    assert_int_equal(system(cmd), 0);
    free(f);
    return 0;
}

static void claim(struct fixture *f)
{
    struct sched_candidate c;
    memset(&c, 0, sizeof c);
    assert_int_equal(store_sched_candidates(f->s, on_cand, &c), 0);
    assert_true(c.ecid == 0xE000);
    int erase;
    uint32_t n;
    fr__attempt_ref__init(&f->ref);
    assert_int_equal(store_claim_attempt(f->s, &c, 3000, "/x.ipsw", "", &f->ref, &erase, &n), 0);
    assert_int_equal(store_attempt_set_build(f->s, f->ref.attempt_id, "18.2", "22C152"), 0);
    assert_int_equal(store_attempt_running(f->s, &f->ref), 0);
}

/* A success the unit was read back after: read_version/read_build what it said (NULL:
 * nothing read, for the reason unverified). */
static int apply_read_back(struct fixture *f, uint64_t now, const char *version, const char *build,
                           const char *read_version, const char *read_build, const char *unverified)
{
    struct policy_cfg pc;
    policy_cfg_default(&pc);
    struct run_end e = { FR__OUTCOME__OUTCOME_SUCCESS, "", "", "/logs/x.log", "", 0, now, version, build,
                         read_version, read_build, unverified };
    struct run_effects fx;
    return runs_apply(f->s, &pc, "A", &f->ref, &e, now, &fx);
}

/* version NULL: the engine did not say which firmware it restored */
static int apply_success_of(struct fixture *f, uint64_t now, const char *version, const char *build)
{
    struct policy_cfg pc;
    policy_cfg_default(&pc);
    struct run_end e = { FR__OUTCOME__OUTCOME_SUCCESS, "", "", "/logs/x.log", "", 0, now, version, build,
                         NULL, NULL, NULL };
    struct run_effects fx;
    return runs_apply(f->s, &pc, "A", &f->ref, &e, now, &fx);
}

static int apply_success(struct fixture *f, uint64_t now)
{
    return apply_success_of(f, now, NULL, NULL);
}

/* The only stored line, written now if it is still due, checked with the public key
 * the controller wrote. */
static json_t *the_record(struct fixture *f)
{
    assert_int_equal(records_write_due(&f->r, f->s, 64, 12000), 0);
    assert_int_equal(store_records_pending(f->s, f->job, 0), 0);
    json_t *doc = store_doc_records(f->s, f->job, 0);
    assert_non_null(doc);
    json_t *lines = json_object_get(doc, "records");
    assert_int_equal(json_array_size(lines), 1);
    EVP_PKEY *pub = NULL;
    char err[512] = "";
    assert_int_equal(fr_sign_pub_load(pubpath, &pub, err, sizeof err), 0);
    const char *line = json_string_value(json_array_get(lines, 0));
    json_t *rec = NULL;
    assert_int_equal(fr_verify_record(pub, line, strlen(line), &rec, err, sizeof err), 0);
    EVP_PKEY_free(pub);
    json_decref(doc);
    return rec;
}

static void a_run_that_ends_gets_one_signed_record(void **state)
{
    struct fixture *f = *state;
    claim(f);
    assert_int_equal(sql_probe(dbpath, "SELECT COUNT(*) FROM records"), 0); /* open: none yet */
    assert_int_equal(apply_success(f, 9000), 0);
    /* the run's end commits without its record: pending until it is written */
    assert_int_equal(sql_probe(dbpath, "SELECT COUNT(*) FROM unit_runs WHERE state = 'done'"), 1);
    assert_int_equal(sql_probe(dbpath, "SELECT COUNT(*) FROM records"), 0);
    assert_int_equal(store_records_pending(f->s, f->job, 0), 1);
    assert_int_equal(store_records_pending(f->s, 0, 0xE000), 1);
    assert_int_equal(records_write_due(&f->r, f->s, 64, 12000), 0);
    /* written and committed: another connection sees it with the run */
    assert_int_equal(sql_probe(dbpath, "SELECT COUNT(*) FROM records r JOIN unit_runs u ON u.job = r.job"
                                       " AND u.ecid = r.ecid WHERE u.state = 'done'"), 1);
    assert_int_equal(store_records_pending(f->s, f->job, 0), 0);
    json_t *rec = the_record(f);
    assert_string_equal(str_at(rec, "device", "model"), "iPhone13,2");
    assert_string_equal(str_at(rec, "device", "marketing_name"), "iPhone 12");
    assert_string_equal(str_at(rec, "device", "serial"), "SER1");
    assert_string_equal(str_at(rec, "firmware", "version"), "18.2");
    assert_string_equal(str_at(rec, "tools", "engine"), "flashrack-sim-restore 0.1.0");
    assert_string_equal(str_at(rec, "tools", "libimobiledevice"), "1.3.0");
    assert_string_equal(str_at(rec, "operator", NULL), "dana");
    assert_string_equal(str_at(rec, "port", NULL), "A-01");
    assert_string_equal(str_at(rec, "result", NULL), "sanitized");
    assert_string_equal(str_at(json_array_get(json_object_get(rec, "attempts"), 0), "log", NULL),
                        "/logs/x.log");
    /* claimed at 3000 ms, ended at 9000 ms */
    assert_int_equal(json_integer_value(json_object_get(json_array_get(json_object_get(rec, "attempts"), 0),
                                                        "duration_s")), 6);
    json_decref(rec);
    /* the agent's replay of the same result changes nothing: still one record */
    assert_int_equal(apply_success(f, 9500), 0);
    assert_int_equal(records_write_due(&f->r, f->s, 64, 12500), 0);
    assert_int_equal(sql_probe(dbpath, "SELECT COUNT(*) FROM records"), 1);
    assert_int_equal(f->r.written, 1);
    /* nothing is missing at a start after this: the catch-up writes none */
    assert_int_equal(records_catch_up(&f->r, f->s, 13000), 0);
    assert_int_equal(sql_probe(dbpath, "SELECT COUNT(*) FROM records"), 1);
}

/* A run's end noted, then rolled back (the turn's transaction failed): it has not ended,
 * so it gets no record; when it does end, it gets one. */
static void a_rolled_back_end_gets_no_record(void **state)
{
    struct fixture *f = *state;
    claim(f);
    assert_int_equal(store_begin(f->s), 0); /* the turn */
    assert_int_equal(apply_success(f, 9000), 0);
    store_rollback(f->s);
    assert_int_equal(sql_probe(dbpath, "SELECT COUNT(*) FROM unit_runs WHERE state = 'done'"), 0);
    assert_int_equal(records_write_due(&f->r, f->s, 64, 12000), 0);
    assert_int_equal(sql_probe(dbpath, "SELECT COUNT(*) FROM records"), 0);
    assert_int_equal(f->r.written, 0);
    assert_int_equal(apply_success(f, 9500), 0);
    json_decref(the_record(f));
    assert_int_equal(f->r.written, 1);
}

/* A records' batch inside a turn whose savepoint cannot be opened leaves the turn's
 * transaction to its owner: still open (what follows in the turn is not autocommitted on
 * its own), not committable, and undone whole by the owner's rollback; the record, due
 * again, is written once the run's end is. */
static void a_failed_batch_begin_leaves_the_turn_to_its_owner(void **state)
{
    struct fixture *f = *state;
    claim(f);
    assert_int_equal(store_begin(f->s), 0); /* the turn */
    assert_int_equal(apply_success(f, 9000), 0);
    store_fault_arm_sql(f->s, "SAVEPOINT", 1, SQLITE_BUSY);
    assert_true(records_write_due(&f->r, f->s, 64, 12000) < 0);
    store_fault_arm_sql(f->s, NULL, 0, 0);
    assert_true(store_in_txn(f->s));
    assert_true(store_commit(f->s) < 0);
    store_rollback(f->s);
    assert_int_equal(sql_probe(dbpath, "SELECT COUNT(*) FROM unit_runs WHERE state = 'done'"), 0);
    assert_int_equal(sql_probe(dbpath, "SELECT COUNT(*) FROM records"), 0);
    assert_int_equal(apply_success(f, 9500), 0);
    json_decref(the_record(f));
    assert_int_equal(f->r.written, 1);
}

/* How many records job (0: any) has, each checked with the public key the controller wrote. */
static size_t verified_records(struct fixture *f, uint64_t job)
{
    char err[256] = "";
    json_t *doc = store_doc_records(f->s, job, 0);
    EVP_PKEY *pub = NULL;
    assert_int_equal(fr_sign_pub_load(pubpath, &pub, err, sizeof err), 0);
    size_t i, n = json_array_size(json_object_get(doc, "records"));
    json_t *l;
    json_array_foreach(json_object_get(doc, "records"), i, l)
        assert_int_equal(fr_verify_record(pub, json_string_value(l), json_string_length(l), NULL, err,
                                          sizeof err), 0);
    EVP_PKEY_free(pub);
    json_decref(doc);
    return n;
}

/* Runs that ended before a stop that left their records unwritten (the process killed
 * between the two commits): the next start writes each, once, in batches. */
static void a_start_writes_the_records_a_stop_left_missing(void **state)
{
    struct fixture *f = *state;
    claim(f);
    assert_int_equal(apply_success(f, 9000), 0);
    int n = 0; /* and a second job, cancelled with all of its runs */
    uint64_t ecids[3 * RECORDS_PER_TURN], job2 = 0;
    for (size_t i = 0; i < sizeof ecids / sizeof *ecids; i++)
        ecids[i] = 0xF000 + i;
    struct job_spec spec = { .key = "k2", .name = "t2", .firmware = "/x.ipsw", .sha256 = "",
                             .ecids = ecids, .necids = sizeof ecids / sizeof *ecids, .erase = 1 };
    char err[256];
    int created;
    assert_int_equal(store_job_submit(f->s, &spec, 2000, &job2, &created, err, sizeof err), 0);
    assert_int_equal(store_job_cancel(f->s, job2, 0, 4000, &n, NULL, NULL), 0);
    assert_int_equal(n, 3 * RECORDS_PER_TURN);
    /* the process stops here: what it noted is gone with it */
    records_release(&f->r);
    assert_int_equal(store_records_pending(f->s, 0, 0), 1 + 3 * RECORDS_PER_TURN);
    assert_int_equal(records_open(&f->r, keypath, "Depot 7", "resale", err, sizeof err), 0);
    records_attach(&f->r, f->s);
    assert_int_equal(records_write_due(&f->r, f->s, 64, 12000), 0); /* nothing noted */
    assert_int_equal(records_catch_up(&f->r, f->s, 12000), 1 + 3 * RECORDS_PER_TURN);
    assert_int_equal(store_records_pending(f->s, 0, 0), 0);
    assert_int_equal(sql_probe(dbpath, "SELECT COUNT(*) FROM records"), 1 + 3 * RECORDS_PER_TURN);
    assert_int_equal(sql_probe(dbpath, "SELECT COUNT(DISTINCT job || ':' || ecid) FROM records"),
                     1 + 3 * RECORDS_PER_TURN);
    assert_int_equal(records_catch_up(&f->r, f->s, 13000), 0);
    assert_int_equal(verified_records(f, job2), 3 * RECORDS_PER_TURN);
}

/* A second job of n units (0xF000 on), submitted and cancelled: n runs ended at once. */
static uint64_t cancelled_job(struct fixture *f, size_t n)
{
    uint64_t *ecids = calloc(n, sizeof *ecids), job2 = 0;
    for (size_t i = 0; i < n; i++)
        ecids[i] = 0xF000 + i;
    struct job_spec spec = { .key = "k2", .name = "t2", .firmware = "/x.ipsw", .sha256 = "",
                             .ecids = ecids, .necids = n, .erase = 1 };
    char err[256];
    int created, ended = 0;
    assert_int_equal(store_job_submit(f->s, &spec, 2000, &job2, &created, err, sizeof err), 0);
    assert_int_equal(store_job_cancel(f->s, job2, 0, 4000, &ended, NULL, NULL), 0);
    assert_int_equal(ended, (int)n);
    free(ecids);
    return job2;
}

/* On the controller's loop the due records are written a batch per loop turn, with the
 * loop polling its sockets between two: a timer re-armed at 0 ms from its own callback
 * ran again in the same timer phase (libuv 1.44), and every due record was written in one
 * stretch of the loop, with no message read meanwhile. */
static void the_loop_writes_a_batch_a_turn(void **state)
{
    struct fixture *f = *state;
    uv_loop_t loop;
    assert_int_equal(uv_loop_init(&loop), 0);
    records_start(&f->r, &loop, f->s);
    cancelled_job(f, 5 * RECORDS_PER_TURN);
    int turns = 0;
    int64_t written = 0;
    while (written < 5 * RECORDS_PER_TURN && turns++ < 1000) {
        uv_run(&loop, UV_RUN_ONCE); /* 1.44 runs due timers before its poll and after it */
        int64_t now = sql_probe(dbpath, "SELECT COUNT(*) FROM records");
        assert_true(now - written <= 2 * RECORDS_PER_TURN);
        written = now;
    }
    assert_int_equal(written, 5 * RECORDS_PER_TURN);
    assert_true(turns >= 3);
    assert_int_equal(f->r.signed_on_pool, 5 * RECORDS_PER_TURN); /* not on the loop */
    assert_int_equal(f->r.work.items, 5 * RECORDS_PER_TURN);      /* what the loop probe sees */
    assert_true(f->r.work.runs >= 5);
    records_close(&f->r, f->s);
    assert_int_equal(uv_run(&loop, UV_RUN_DEFAULT), 0);
    assert_int_equal(uv_loop_close(&loop), 0);
}

/* A stop while a batch is on the pool (taken and handed over, not yet stored): the close
 * waits for it or cancels it, then writes what is still due; every ended run has exactly
 * one record that verifies, and a start after it finds none missing. */
static void a_stop_while_signing_leaves_one_record_each(void **state)
{
    struct fixture *f = *state;
    uv_loop_t loop;
    assert_int_equal(uv_loop_init(&loop), 0);
    records_start(&f->r, &loop, f->s);
    cancelled_job(f, 5 * RECORDS_PER_TURN);
    char err[256];
    int turns = 0;
    while (!f->r.batch && turns++ < 100)
        uv_run(&loop, UV_RUN_ONCE);
    assert_non_null(f->r.batch); /* on the pool */
    assert_int_equal(records_write_due(&f->r, f->s, 64, 5000), FR_EBUSY); /* not beside it */
    assert_true(sql_probe(dbpath, "SELECT COUNT(*) FROM records") < 5 * RECORDS_PER_TURN);
    records_close(&f->r, f->s);
    assert_int_equal(uv_run(&loop, UV_RUN_DEFAULT), 0);
    assert_int_equal(uv_loop_close(&loop), 0);
    assert_null(f->r.batch);
    assert_int_equal(sql_probe(dbpath, "SELECT COUNT(*) FROM records"), 5 * RECORDS_PER_TURN);
    assert_int_equal(sql_probe(dbpath, "SELECT COUNT(DISTINCT job || ':' || ecid) FROM records"),
                     5 * RECORDS_PER_TURN);
    /* the next start: nothing missing, nothing written twice */
    records_release(&f->r);
    assert_int_equal(records_open(&f->r, keypath, "Depot 7", "resale", err, sizeof err), 0);
    records_attach(&f->r, f->s);
    assert_int_equal(records_catch_up(&f->r, f->s, 13000), 0);
    assert_int_equal(verified_records(f, 0), 5 * RECORDS_PER_TURN);
}

/* A run asked for twice in one batch (every missing record, and a cancel's entry that
 * covers the same runs; or a unit's end and then its job's cancel) is written once: a
 * batch's runs are stored only after all of them are read, so the store alone cannot
 * say it is already taken. */
static void a_run_due_twice_in_a_batch_gets_one_record(void **state)
{
    struct fixture *f = *state;
    uint64_t job2 = cancelled_job(f, 3); /* noted: (job2, every run) */
    assert_int_equal(records_catch_up(&f->r, f->s, 12000), 3); /* and every missing one */
    assert_int_equal(store_records_pending(f->s, 0, 0), 0);
    assert_int_equal(verified_records(f, job2), 3);
    assert_int_equal(records_write_due(&f->r, f->s, 64, 12500), 0);
    assert_int_equal(f->r.written, 3);
}

/* A cancel of many runs writes their records a batch at a time, each batch committed. */
static void many_due_records_are_written_in_batches(void **state)
{
    struct fixture *f = *state;
    uint64_t ecids[2 * RECORDS_PER_TURN + 5], job2 = 0;
    for (size_t i = 0; i < sizeof ecids / sizeof *ecids; i++)
        ecids[i] = 0xF000 + i;
    struct job_spec spec = { .key = "k2", .name = "t2", .firmware = "/x.ipsw", .sha256 = "",
                             .ecids = ecids, .necids = sizeof ecids / sizeof *ecids, .erase = 1 };
    char err[256];
    int created, n = 0;
    assert_int_equal(store_job_submit(f->s, &spec, 2000, &job2, &created, err, sizeof err), 0);
    assert_int_equal(store_job_cancel(f->s, job2, 0, 4000, &n, NULL, NULL), 0);
    assert_true(records_write_due(&f->r, f->s, RECORDS_PER_TURN, 5000) > 0);
    assert_int_equal(sql_probe(dbpath, "SELECT COUNT(*) FROM records"), RECORDS_PER_TURN);
    assert_true(records_write_due(&f->r, f->s, RECORDS_PER_TURN, 5000) > 0);
    assert_int_equal(records_write_due(&f->r, f->s, RECORDS_PER_TURN, 5000), 0);
    assert_int_equal(sql_probe(dbpath, "SELECT COUNT(*) FROM records"), 2 * RECORDS_PER_TURN + 5);
    assert_int_equal(store_records_pending(f->s, job2, 0), 0);
}

/* What the unit said after the restore decides the record's verification: the same
 * version and build as installed match; another build is a failed verification, in
 * the result too; nothing read is "not verified" with the agent's reason. */
static void the_units_word_after_the_restore_verifies_the_record(void **state)
{
    struct fixture *f = *state;
    claim(f);
    assert_int_equal(apply_read_back(f, 9000, "18.2", "22C152", "18.2", "22C152", ""), 0);
    json_t *rec = the_record(f);
    assert_string_equal(str_at(rec, "verification", "result"),
                        "ProductVersion 18.2 BuildVersion 22C152 read from the unit after the restore: matches");
    assert_string_equal(str_at(rec, "verification", "status"), "matches");
    assert_string_equal(str_at(rec, "verification", "method"), RECORDS_VERIFY_METHOD);
    assert_string_equal(str_at(rec, "result", NULL), "sanitized");
    json_decref(rec);
}

static void a_unit_that_says_another_build_fails_verification(void **state)
{
    struct fixture *f = *state;
    /* the first mismatch fails the attempt and the unit is restored once more: no record yet */
    claim(f);
    assert_int_equal(apply_read_back(f, 9000, "18.2", "22C152", "18.2", "22C999", ""), 0);
    assert_int_equal(records_write_due(&f->r, f->s, 64, 9500), 0);
    json_t *none = store_doc_records(f->s, f->job, 0);
    assert_int_equal(json_array_size(json_object_get(none, "records")), 0);
    json_decref(none);
    claim(f);
    assert_int_equal(apply_read_back(f, 11000, "18.2", "22C152", "18.2", "22C999", ""), 0);
    json_t *rec = the_record(f);
    json_t *attempts = json_object_get(rec, "attempts");
    assert_int_equal(json_array_size(attempts), 2);
    for (size_t i = 0; i < 2; i++) {
        json_t *a = json_array_get(attempts, i);
        assert_string_equal(json_string_value(json_object_get(a, "outcome")), "failed");
        assert_string_equal(json_string_value(json_object_get(a, "error_class")), "verification");
    }
    assert_string_equal(str_at(rec, "verification", "result"),
                        "ProductVersion 18.2 BuildVersion 22C999 read from the unit after the restore: "
                        "does not match the installed iOS 18.2 (22C152)");
    assert_string_equal(str_at(rec, "verification", "status"), "does not match");
    assert_non_null(strstr(str_at(rec, "result", NULL), "verification failed"));
    json_decref(rec);
}

static void a_unit_not_read_back_is_not_verified_with_the_reason(void **state)
{
    struct fixture *f = *state;
    claim(f);
    assert_int_equal(apply_read_back(f, 9000, "18.2", "22C152", "", "",
                                     "the unit did not come back in normal mode within 180 s"), 0);
    json_t *rec = the_record(f);
    assert_string_equal(str_at(rec, "verification", "result"),
                        "not verified: the unit did not come back in normal mode within 180 s");
    assert_string_equal(str_at(rec, "verification", "status"), "not verified");
    assert_string_equal(str_at(rec, "verification", "method"), "none");
    assert_string_equal(str_at(rec, "result", NULL), "sanitized");
    json_decref(rec);
}

/* A failure the job retries in place (the naive policy: no move). */
static int apply_failure(struct fixture *f, uint64_t now)
{
    struct policy_cfg pc;
    policy_cfg_default(&pc);
    pc.naive = 1;
    struct run_end e = { FR__OUTCOME__OUTCOME_FAILED, "link_lost", "the unit went away", "/logs/1.log", "",
                         -1, now, NULL, NULL, NULL, NULL, NULL };
    struct run_effects fx;
    return runs_apply(f->s, &pc, "A", &f->ref, &e, now, &fx);
}

/* text with each "flashrackd " FR_VERSION written "flashrackd @VERSION@" (a release does
 * not change what the test expects), appended to out at *len, with a newline. */
static void put_unversioned(char *out, size_t *len, size_t cap, const char *text)
{
    static const char tool[] = "flashrackd " FR_VERSION "\"";
    for (const char *at; (at = strstr(text, tool)); text = at + sizeof tool - 1) {
        assert_true(*len + (size_t)(at - text) + 32 < cap);
        *len += (size_t)sprintf(out + *len, "%.*sflashrackd @VERSION@\"", (int)(at - text), text);
    }
    assert_true(*len + strlen(text) + 2 < cap);
    *len += (size_t)sprintf(out + *len, "%s\n", text);
}

/* The canonical text of each record a batch read of runs gives, a line each ("-" for a
 * run the store has not). */
static char *batch_texts(struct store *s, const struct store_run *runs, size_t n)
{
    json_t *facts[8] = { NULL };
    assert_true(n <= 8);
    assert_int_equal(store_record_facts_batch(s, runs, n, facts), 0);
    struct records_info info = { "Depot 7", "resale", "2026-12-02T00:00:00.000Z" };
    size_t len = 0, cap = 1 << 16;
    char *all = calloc(1, cap);
    for (size_t i = 0; i < n; i++) {
        json_t *rec = facts[i] ? records_build(facts[i], &info) : NULL;
        char *canon = NULL;
        if (rec)
            assert_int_equal(fr_canon_json(rec, &canon, NULL, NULL, 0), 0);
        put_unversioned(all, &len, cap, canon ? canon : "-");
        free(canon);
        json_decref(rec);
        json_decref(facts[i]);
    }
    return all;
}

static char *file_text(const char *path)
{
    FILE *fp = fopen(path, "r");
    if (!fp)
        return strdup("");
    static char buf[1 << 16];
    size_t n = fread(buf, 1, sizeof buf - 1, fp);
    fclose(fp);
    buf[n] = '\0';
    return strdup(buf);
}

/* Runs read as one batch, in any order, give the records they gave when each was read
 * alone (tests/fixtures/records/batch.txt was written by that code, before the reads
 * were batched): a run with two attempts, cancelled runs without any, a run there is
 * none of; each run's attempts are its own. */
static void a_batch_reads_the_records_one_run_at_a_time_gave(void **state)
{
    struct fixture *f = *state;
    claim(f);
    assert_int_equal(apply_failure(f, 5000), 0);
    claim(f);
    assert_int_equal(apply_read_back(f, 9000, "18.2", "22C152", "18.2", "22C152", ""), 0);
    uint64_t ecids[3] = { 0xF000, 0xF001, 0xF002 }, job2 = 0;
    struct job_spec spec = { .key = "k2", .name = "t2 \"quoted\"", .firmware = "/y.ipsw", .sha256 = "",
                             .ecids = ecids, .necids = 3, .erase = 0, .operator = "sam" };
    char err[256];
    int created, n = 0;
    assert_int_equal(store_job_submit(f->s, &spec, 2000, &job2, &created, err, sizeof err), 0);
    assert_int_equal(store_job_cancel(f->s, job2, 0, 4000, &n, NULL, NULL), 0);
    struct store_run runs[] = { { job2, 0xF001 }, { f->job, 0xE000 }, { job2, 0xF000 }, { 999, 1 },
                                { job2, 0xF002 } };
    char *got = batch_texts(f->s, runs, sizeof runs / sizeof *runs), path[1024];
    snprintf(path, sizeof path, "%s/records/batch.txt", getenv("FR_FIXTURES"));
    char *want = file_text(path);
    if (strcmp(got, want) != 0)
        printf("%s", got); /* what to compare with the fixture */
    assert_string_equal(got, want);
    free(got);
    free(want);
    /* one at a time, each the same as in the batch */
    json_t *in[5] = { NULL };
    assert_int_equal(store_record_facts_batch(f->s, runs, 5, in), 0);
    for (size_t i = 0; i < 5; i++) {
        json_t *one = store_record_facts(f->s, runs[i].job, runs[i].ecid);
        assert_true(one ? json_equal(one, in[i]) : in[i] == NULL);
        json_decref(one);
        json_decref(in[i]);
    }
}

static void a_cancelled_run_gets_its_record(void **state)
{
    struct fixture *f = *state;
    int n = 0;
    assert_int_equal(store_job_cancel(f->s, f->job, 0, 4000, &n, NULL, NULL), 0);
    assert_int_equal(n, 1);
    json_t *rec = the_record(f);
    assert_string_equal(str_at(rec, "state", NULL), "cancelled");
    assert_string_equal(str_at(rec, "result", NULL), "not sanitized");
    assert_int_equal(json_array_size(json_object_get(rec, "attempts")), 0);
    json_decref(rec);
}

static void records_cannot_be_changed_or_dropped(void **state)
{
    struct fixture *f = *state;
    claim(f);
    assert_int_equal(apply_success(f, 9000), 0);
    assert_int_equal(records_write_due(&f->r, f->s, 64, 12000), 0);
    assert_int_equal(sql_probe(dbpath, "SELECT COUNT(*) FROM records"), 1);
    sqlite3 *db;
    assert_int_equal(sqlite3_open(dbpath, &db), SQLITE_OK);
    sqlite3_busy_timeout(db, 2000);
    char *msg = NULL;
    assert_int_not_equal(sqlite3_exec(db, "UPDATE records SET line = 'forged'", NULL, NULL, &msg), SQLITE_OK);
    assert_non_null(strstr(msg, "immutable"));
    sqlite3_free(msg);
    msg = NULL;
    assert_int_not_equal(sqlite3_exec(db, "DELETE FROM records", NULL, NULL, &msg), SQLITE_OK);
    assert_non_null(strstr(msg, "immutable"));
    sqlite3_free(msg);
    sqlite3_close(db);
    /* and a second record for the same run is refused by its key */
    assert_int_not_equal(store_record_insert(f->s, f->job, 0xE000, "x", "{}", 1), 0);
    json_decref(the_record(f));
}

/* What the engine read from the IPSW's BuildManifest wins over the catalog's word. */
static void the_engines_firmware_version_is_recorded(void **state)
{
    struct fixture *f = *state;
    claim(f); /* the catalog said 18.2 (22C152) */
    assert_int_equal(apply_success_of(f, 9000, "18.3", "22D63"), 0);
    json_t *rec = the_record(f);
    assert_string_equal(str_at(rec, "firmware", "version"), "18.3");
    assert_string_equal(str_at(rec, "firmware", "build"), "22D63");
    json_decref(rec);
}

static void the_key_is_made_once_and_kept(void **state)
{
    struct fixture *f = *state;
    struct stat st;
    assert_int_equal(stat(keypath, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    struct records again;
    char err[512] = "";
    assert_int_equal(records_open(&again, keypath, "", "", err, sizeof err), 0);
    assert_string_equal(again.key_id, f->r.key_id); /* the same key, not a new one */
    records_release(&again);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(a_record_has_the_audit_fields),
        cmocka_unit_test_setup_teardown(a_run_that_ends_gets_one_signed_record, setup, teardown),
        cmocka_unit_test_setup_teardown(a_cancelled_run_gets_its_record, setup, teardown),
        cmocka_unit_test_setup_teardown(a_batch_reads_the_records_one_run_at_a_time_gave, setup, teardown),
        cmocka_unit_test_setup_teardown(a_rolled_back_end_gets_no_record, setup, teardown),
        cmocka_unit_test_setup_teardown(a_failed_batch_begin_leaves_the_turn_to_its_owner, setup, teardown),
        cmocka_unit_test_setup_teardown(a_start_writes_the_records_a_stop_left_missing, setup, teardown),
        cmocka_unit_test_setup_teardown(many_due_records_are_written_in_batches, setup, teardown),
        cmocka_unit_test_setup_teardown(the_loop_writes_a_batch_a_turn, setup, teardown),
        cmocka_unit_test_setup_teardown(a_stop_while_signing_leaves_one_record_each, setup, teardown),
        cmocka_unit_test_setup_teardown(a_run_due_twice_in_a_batch_gets_one_record, setup, teardown),
        cmocka_unit_test_setup_teardown(the_units_word_after_the_restore_verifies_the_record, setup, teardown),
        cmocka_unit_test_setup_teardown(a_unit_that_says_another_build_fails_verification, setup, teardown),
        cmocka_unit_test_setup_teardown(a_unit_not_read_back_is_not_verified_with_the_reason, setup, teardown),
        cmocka_unit_test_setup_teardown(records_cannot_be_changed_or_dropped, setup, teardown),
        cmocka_unit_test_setup_teardown(the_engines_firmware_version_is_recorded, setup, teardown),
        cmocka_unit_test_setup_teardown(the_key_is_made_once_and_kept, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
