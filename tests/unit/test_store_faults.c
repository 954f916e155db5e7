/* test_store_faults — failure injection in the store, as SQLite tests itself: the Nth
 * SQLite call (prepare or step) fails, for every N, on the result, submit, cancel, Hello,
 * claim, expansion, port clear and release paths: with IOERR (FULL and BUSY take the same
 * path: the call returns the code), and interrupted for real (SQLITE_INTERRUPT from a
 * progress handler: SQLite then rolls back the whole transaction of a statement that
 * writes). After each: no crash; an operation that reported success is committed (read
 * back through another connection); one that failed left the store exactly as it was and
 * sent no effect; and the same operation tried again succeeds once (nothing lost). Each
 * path also runs inside an enclosing transaction, as the controller's turn calls it
 * (turn.h), with a write of the turn before it and one after: the operation never ends
 * that transaction, and the turn commits both of its writes and the operation's part as
 * reported, or (its transaction failed) nothing at all: no statement of it ran outside. The sanitization records (records.h) are
 * attached: a run that ends commits without its record (written after that commit), and
 * writing the due records is a path of its own: all of a batch or none, tried again until
 * each ended run has one. Built against the store compiled with FR_STORE_FAULTS
 * (tests/unit/controller.cmake). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sqlite3.h>

#include "fr_err.h"
#include "sql_probe.h"
#include "records.h"
#include "runs.h"
#include "store.h"

static char dbpath[64], keypath[64];
static struct records recs;

/* Every row of every table, as one string, read through a connection of its own. */
static char *digest(void)
{
    static const char *sql =
        "SELECT (SELECT group_concat(key || '=' || value) FROM meta) || '|' ||"
        " (SELECT COALESCE(group_concat(id || slots), '') FROM agents) || '|' ||"
        " (SELECT COALESCE(group_concat(agent || path || strikes || quarantined), '') FROM ports) || '|' ||"
        " (SELECT COALESCE(group_concat(ecid || port || present || mode), '') FROM units) || '|' ||"
        " (SELECT COALESCE(group_concat(id || state), '') FROM jobs) || '|' ||"
        " (SELECT COALESCE(group_concat(job || ecid || state || attempts || avoid), '') FROM unit_runs) || '|' ||"
        " (SELECT COALESCE(group_concat(id || state || outcome || port), '') FROM attempts) || '|' ||"
        " (SELECT COUNT(*) FROM port_strikes) || '|' ||"
        " (SELECT COUNT(*) FROM events WHERE kind <> 'turn') || '|' ||"
        " (SELECT COUNT(*) FROM records)";
    sqlite3 *db;
    sqlite3_stmt *st;
    assert_int_equal(sqlite3_open(dbpath, &db), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    char *d = strdup((const char *)sqlite3_column_text(st, 0));
    sqlite3_finalize(st);
    sqlite3_close(db);
    return d;
}

static int64_t count_sql(const char *text)
{
    return sql_probe(dbpath, text);
}

static void remove_store(void)
{
    sql_probe_remove(dbpath);
}

/* ---- the site every scenario starts from ----------------------------------------- */

#define NUNITS 2
static const uint64_t ecids[NUNITS] = { 0xE000, 0xE001 };

static Fr__Hello *make_hello(Fr__AttemptRef **keep, size_t nkeep)
{
    static Fr__PortInfo ports[NUNITS], *pp[NUNITS];
    static Fr__UnitInfo units[NUNITS], *up[NUNITS];
    static char paths[NUNITS][16];
    static Fr__Hello h;
    for (int i = 0; i < NUNITS; i++) {
        fr__port_info__init(&ports[i]);
        snprintf(paths[i], sizeof paths[i], "1-1.%d", i + 1);
        ports[i].path = ports[i].label = paths[i];
        ports[i].power_switch = 1;
        pp[i] = &ports[i];
        fr__unit_info__init(&units[i]);
        units[i].ecid = ecids[i];
        units[i].product_type = "iPhone12,1";
        units[i].mode = 2;
        units[i].port_path = paths[i];
        up[i] = &units[i];
    }
    fr__hello__init(&h);
    h.hostname = "A";
    h.slots = 4;
    h.ports = pp;
    h.n_ports = NUNITS;
    h.units = up;
    h.n_units = NUNITS;
    h.attempts = keep;
    h.n_attempts = nkeep;
    return &h;
}

static uint64_t submit(struct store *s, const char *key)
{
    struct job_spec spec = { .key = key, .name = "t", .firmware = "/x.ipsw", .sha256 = "",
                             .ecids = ecids, .necids = NUNITS, .erase = 1 };
    uint64_t id = 0;
    int created;
    char err[256];
    int rc = store_job_submit(s, &spec, 2000, &id, &created, err, sizeof err);
    return rc < 0 ? 0 : id;
}

static int on_cand(void *arg, const struct sched_candidate *c)
{
    struct sched_candidate *out = arg;
    for (int i = 0; i < NUNITS; i++)
        if (!out[i].ecid) {
            out[i] = *c;
            return 0;
        }
    return 1;
}

/* A store with agent A, a job on both units and (claimed) both attempts running (refs[]). */
static struct store *site(Fr__AttemptRef refs[NUNITS], int claimed)
{
    remove_store();
    struct store *s = NULL;
    char err[256];
    assert_int_equal(store_open(dbpath, &s, err, sizeof err), 0);
    assert_int_equal(store_bump_epoch(s), 0);
    records_attach(&recs, s);
    assert_int_equal(store_agent_hello(s, "A", make_hello(NULL, 0), 1000, NULL), 0);
    assert_true(submit(s, "site") > 0);
    struct sched_candidate c[NUNITS];
    memset(c, 0, sizeof c);
    assert_int_equal(store_sched_candidates(s, on_cand, c), 0);
    for (int i = 0; claimed && i < NUNITS; i++) {
        int erase;
        uint32_t n;
        fr__attempt_ref__init(&refs[i]);
        assert_int_equal(store_claim_attempt(s, &c[i], 3000, "/x.ipsw", "", &refs[i], &erase, &n), 0);
        assert_int_equal(store_attempt_running(s, &refs[i]), 0);
    }
    /* what an earlier store left due is not this one's: found ended in none, dropped */
    assert_int_equal(records_write_due(&recs, s, 1000, 1000), 0);
    return s;
}

/* ---- the operations under test ------------------------------------------------------ */

struct op_ctx {
    Fr__AttemptRef refs[NUNITS];
    int cancels;            /* JobCancels the store handed out */
    int nested;             /* inside an enclosing transaction, which has not committed yet */
};

static int op_result(struct store *s, struct op_ctx *x)
{
    struct policy_cfg pc;
    policy_cfg_default(&pc);
    struct run_end e = { FR__OUTCOME__OUTCOME_FAILED, "link_lost", "ERROR: lost", "", "", -1, 0, NULL, NULL,
                         NULL, NULL, NULL };
    struct run_effects fx;
    return runs_apply(s, &pc, "A", &x->refs[0], &e, 5000, &fx);
}

static int result_applied(void)
{
    return count_sql("SELECT COUNT(*) FROM attempts WHERE outcome = 'failed'") == 1 &&
           count_sql("SELECT COUNT(*) FROM unit_runs WHERE state = 'needs_move'") == 1 &&
           count_sql("SELECT COUNT(*) FROM port_strikes") == 1;
}

static int op_success(struct store *s, struct op_ctx *x)
{
    struct policy_cfg pc;
    policy_cfg_default(&pc);
    /* the unit read back after it too: its verdict is one more statement to fail */
    struct run_end e = { FR__OUTCOME__OUTCOME_SUCCESS, "", "", "/l.log", "", 0, 0, "18.2", "22C152",
                         "18.2", "22C152", "" };
    struct run_effects fx;
    return runs_apply(s, &pc, "A", &x->refs[0], &e, 5000, &fx);
}

/* the record is not in the result's commit: due, written after it */
static int success_applied(void)
{
    return count_sql("SELECT COUNT(*) FROM unit_runs WHERE state = 'done'") == 1 &&
           count_sql("SELECT COUNT(*) FROM attempts WHERE fw_build = '22C152'") == 1 &&
           count_sql("SELECT COUNT(*) FROM records") == 0;
}

static int op_records(struct store *s, struct op_ctx *x)
{
    (void)x;
    int rc = records_write_due(&recs, s, 64, 5000);
    return rc < 0 ? rc : 0;
}

static int success_record_applied(void)
{
    return count_sql("SELECT COUNT(*) FROM unit_runs WHERE state = 'done'") == 1 &&
           count_sql("SELECT COUNT(*) FROM records WHERE ecid = 57344") == 1 &&
           count_sql("SELECT COUNT(*) FROM records") == 1;
}

static int op_submit(struct store *s, struct op_ctx *x)
{
    (void)x;
    return submit(s, "second") > 0 ? 0 : FR_ESTORE;
}

/* The same request again: the job it made, never "a different request" for a read that
 * failed. */
static int op_resubmit(struct store *s, struct op_ctx *x)
{
    (void)x;
    struct job_spec spec = { .key = "site", .name = "t", .firmware = "/x.ipsw", .sha256 = "",
                             .ecids = ecids, .necids = NUNITS, .erase = 1 };
    uint64_t id = 0;
    int created = -1;
    char err[256];
    int rc = store_job_submit(s, &spec, 2000, &id, &created, err, sizeof err);
    if (rc == FR_EEXIST)
        fail_msg("the same request again: %s", err);
    assert_true(rc < 0 || (id > 0 && created == 0));
    return rc;
}

static int resubmit_applied(void)
{
    return count_sql("SELECT COUNT(*) FROM jobs") == 1;
}

static int submit_applied(void)
{
    return count_sql("SELECT COUNT(*) FROM jobs WHERE key = 'second'") == 1 &&
           count_sql("SELECT COUNT(*) FROM unit_runs r JOIN jobs j ON j.id = r.job"
                     " WHERE j.key = 'second'") == NUNITS;
}

static void on_cancel(void *arg, const Fr__AttemptRef *ref, const char *agent)
{
    struct op_ctx *x = arg;
    (void)ref;
    (void)agent;
    /* handed out only after the commit: another connection sees it (not yet when the
     * enclosing transaction is still open) */
    if (!x->nested)
        assert_int_equal(count_sql("SELECT COUNT(*) FROM unit_runs WHERE state = 'cancelled'"), NUNITS);
    x->cancels++;
}

static int op_cancel(struct store *s, struct op_ctx *x)
{
    int n = 0;
    return store_job_cancel(s, x->refs[0].job_id, 0, 5000, &n, on_cancel, x);
}

static int cancel_applied(void)
{
    return count_sql("SELECT COUNT(*) FROM unit_runs WHERE state = 'cancelled'") == NUNITS &&
           count_sql("SELECT COUNT(*) FROM jobs WHERE state = 'cancelled'") == 1 &&
           count_sql("SELECT COUNT(*) FROM records") == 0;
}

static int cancel_records_applied(void)
{
    return count_sql("SELECT COUNT(*) FROM unit_runs WHERE state = 'cancelled'") == NUNITS &&
           count_sql("SELECT COUNT(*) FROM records") == NUNITS;
}

/* The agent comes back running only the second attempt: the first is interrupted. */
static int op_hello(struct store *s, struct op_ctx *x)
{
    Fr__AttemptRef *keep[] = { &x->refs[1] };
    int interrupted = 0;
    int rc = store_agent_hello(s, "A", make_hello(keep, 1), 6000, &interrupted);
    assert_true(rc < 0 || interrupted == 1);
    return rc;
}

static int hello_applied(void)
{
    return count_sql("SELECT COUNT(*) FROM attempts WHERE outcome = 'interrupted'") == 1 &&
           count_sql("SELECT COUNT(*) FROM unit_runs WHERE state = 'waiting_unit'") == 1;
}

/* Both units claimed in one batch (the scheduler's chunk), on a site with none claimed. */
static int op_claim(struct store *s, struct op_ctx *x)
{
    static struct sched_candidate c[NUNITS];
    memset(c, 0, sizeof c);
    if (store_sched_candidates(s, on_cand, c) < 0)
        return FR_ESTORE;
    struct claim cl[NUNITS];
    for (int i = 0; i < NUNITS; i++)
        cl[i] = (struct claim){ .c = &c[i], .firmware = "/x.ipsw", .sha = "" };
    int rc = store_claim_attempts(s, cl, NUNITS, 3000);
    for (int i = 0; rc == 0 && i < NUNITS; i++)
        x->refs[i] = cl[i].ref;
    return rc;
}

static int claim_applied(void)
{
    return count_sql("SELECT COUNT(*) FROM attempts WHERE state = 'assigned'") == NUNITS &&
           count_sql("SELECT COUNT(*) FROM unit_runs WHERE state = 'preflight' AND attempts = 1") == NUNITS &&
           count_sql("SELECT COUNT(DISTINCT epoch) FROM attempts") == NUNITS;
}

/* A selector job for agent A's units, their explicit job cancelled: its runs are made by
 * the expansion. */
static int selector_job(struct store *s, struct op_ctx *x)
{
    int rc = op_cancel(s, x);
    char *agents[] = { "A" };
    struct job_spec spec = { .key = "sel", .name = "t", .firmware = "/x.ipsw", .sha256 = "",
                             .agents = agents, .nagents = 1, .erase = 1 };
    uint64_t id;
    int created;
    char err[256];
    return rc < 0 ? rc : store_job_submit(s, &spec, 4000, &id, &created, err, sizeof err);
}

static int op_expand(struct store *s, struct op_ctx *x)
{
    (void)x;
    return store_sched_expand(s, 5000, NULL, 0);
}

static int expand_applied(void)
{
    return count_sql("SELECT COUNT(*) FROM unit_runs r JOIN jobs j ON j.id = r.job WHERE j.key = 'sel'"
                     " AND r.state = 'waiting_unit'") == NUNITS;
}

static int op_port_clear(struct store *s, struct op_ctx *x)
{
    (void)x;
    char err[256];
    return store_port_clear(s, "A:1-1.1", 5000, err, sizeof err);
}

static int port_clear_applied(void)
{
    return count_sql("SELECT COUNT(*) FROM events WHERE kind = 'port' AND agent = 'A' AND port = '1-1.1'"
                     " AND text = 'cleared by an operator'") == 1;
}

/* The first unit found hardware_suspect: held until released. */
static int hold_unit(struct store *s, struct op_ctx *x)
{
    struct run_next n = { "hardware_suspect", "hardware_suspect", "held for a test", "held", 1 };
    int rc = store_begin(s);
    if (rc < 0)
        return rc;
    rc = store_run_next(s, x->refs[0].job_id, x->refs[0].ecid, &n, 4500);
    if (rc == 0)
        rc = store_commit(s);
    if (rc < 0)
        store_rollback(s);
    return rc;
}

static int op_release(struct store *s, struct op_ctx *x)
{
    char err[256];
    return store_unit_release(s, x->refs[0].ecid, 5000, err, sizeof err);
}

static int release_applied(void)
{
    return count_sql("SELECT COUNT(*) FROM events WHERE kind = 'unit_released' AND ecid = 57344") == 1;
}

struct path {
    const char *name;
    int (*op)(struct store *s, struct op_ctx *x);
    int (*applied)(void);
    int effects;            /* JobCancels a successful run hands out */
    int unclaimed;          /* the site's attempts are not claimed yet */
    int (*before)(struct store *s, struct op_ctx *x); /* run first, without faults */
};

/* The enclosing transaction's own writes: events of kind 'turn', which digest() leaves out. */
static int turn_write(struct store *s, const char *text)
{
    return store_event(s, 4000, "turn", 0, 0, NULL, NULL, text);
}

/* Ends the enclosing transaction around p's operation (fault code at call n, rc its
 * result): it must still be open, and it commits its two writes, or nothing; returns
 * whether it committed. */
static int end_enclosing(struct store *s, const struct path *p, int code, int n, int rc)
{
    if (!store_in_txn(s))
        fail_msg("%s inside a transaction, fault %d at call %d: the operation (rc %d) ended the "
                 "enclosing transaction", p->name, code, n, rc);
    int later = turn_write(s, "after");
    int committed = store_commit(s) == 0;
    if (!committed)
        store_rollback(s);
    int64_t writes = count_sql("SELECT COUNT(*) FROM events WHERE kind = 'turn'");
    if (writes != (committed ? 2 : 0))
        fail_msg("%s inside a transaction, fault %d at call %d: %lld of its 2 writes are committed "
                 "(its commit %s, the write after the operation %s)", p->name, code, n,
                 (long long)writes, committed ? "succeeded" : "failed", later < 0 ? "failed" : "ran");
    return committed;
}

/* For N = 1, 2, ...: the Nth call fails with code; until the operation runs through
 * without reaching call N. Nested: inside an enclosing transaction. Returns how many N
 * were tried. */
static int sweep(const struct path *p, int code, int nested)
{
    int n;
    for (n = 1; n < 1000; n++) {
        struct op_ctx x = { .cancels = 0 };
        struct store *s = site(x.refs, !p->unclaimed);
        if (p->before) {
            assert_int_equal(p->before(s, &x), 0);
            x.cancels = 0;
        }
        char *before = digest();
        if (nested) {
            assert_int_equal(store_begin(s), 0);
            assert_int_equal(turn_write(s, "before"), 0);
            x.nested = 1;
        }
        store_fault_arm(s, n, code);
        int rc = p->op(s, &x);
        long calls = store_fault_calls(s);
        store_fault_arm(s, 0, 0);
        x.nested = 0;
        if (nested && !end_enclosing(s, p, code, n, rc)) {
            rc = FR_ESTORE; /* what it did, if anything, went with the enclosing transaction */
            x.cancels = 0;  /* handed out before that failed (it was not the owner) */
        }
        char *after = digest();
        if (rc == 0) {
            if (!p->applied())
                fail_msg("%s, fault %d at call %d: success reported, not committed", p->name, code, n);
            assert_int_equal(x.cancels, p->effects);
        } else {
            if (strcmp(before, after) != 0)
                fail_msg("%s, fault %d at call %d: failed but changed the store:\n%s\n%s", p->name,
                         code, n, before, after);
            assert_int_equal(x.cancels, 0); /* no effect of what was not committed */
            x.cancels = 0;
            assert_int_equal(p->op(s, &x), 0); /* tried again, it goes through: nothing lost */
            assert_true(p->applied());
            assert_int_equal(x.cancels, p->effects);
        }
        free(before);
        free(after);
        assert_int_equal(store_close(&s), 0); /* no statement leaked on any error path */
        if (calls < n)
            break; /* it ran through without reaching call n: every call has been failed once */
    }
    remove_store();
    return n;
}

static const int codes[] = { SQLITE_IOERR, SQLITE_INTERRUPT };

static void sweep_codes(const struct path *p, int nested)
{
    for (size_t i = 0; i < sizeof codes / sizeof codes[0]; i++) {
        int tried = sweep(p, codes[i], nested);
        assert_true(tried > 3); /* the path made SQLite calls to fail */
        print_message("%s%s: %s at each of %d calls\n", p->name, nested ? " (nested)" : "",
                      sqlite3_errstr(codes[i]), tried - 1);
    }
}

static void sweep_all(const struct path *p)
{
    sweep_codes(p, 0);
}

/* On its own and inside an enclosing transaction, as a turn calls it. */
static void sweep_both(const struct path *p)
{
    sweep_codes(p, 0);
    sweep_codes(p, 1);
}

static void result_path(void **state)
{
    (void)state;
    sweep_both(&(struct path){ "result", op_result, result_applied, 0, 0, NULL });
}

static void success_path(void **state)
{
    (void)state;
    sweep_both(&(struct path){ "success", op_success, success_applied, 0, 0, NULL });
}

static void success_record_path(void **state)
{
    (void)state;
    sweep_all(&(struct path){ "success's record", op_records, success_record_applied, 0, 0, op_success });
}

static void cancel_records_path(void **state)
{
    (void)state;
    sweep_all(&(struct path){ "cancel's records", op_records, cancel_records_applied, 0, 0, op_cancel });
}

static void submit_path(void **state)
{
    (void)state;
    sweep_both(&(struct path){ "submit", op_submit, submit_applied, 0, 0, NULL });
}

static void resubmit_path(void **state)
{
    (void)state;
    sweep_all(&(struct path){ "resubmit", op_resubmit, resubmit_applied, 0, 0, NULL });
}

static void cancel_path(void **state)
{
    (void)state;
    sweep_both(&(struct path){ "cancel", op_cancel, cancel_applied, NUNITS, 0, NULL });
}

static void hello_path(void **state)
{
    (void)state;
    sweep_both(&(struct path){ "hello", op_hello, hello_applied, 0, 0, NULL });
}

static void claim_path(void **state)
{
    (void)state;
    sweep_both(&(struct path){ "claim", op_claim, claim_applied, 0, 1, NULL });
}

static void expand_path(void **state)
{
    (void)state;
    sweep_both(&(struct path){ "expand", op_expand, expand_applied, 0, 0, selector_job });
}

static void port_clear_path(void **state)
{
    (void)state;
    sweep_both(&(struct path){ "port clear", op_port_clear, port_clear_applied, 0, 0, NULL });
}

static void release_path(void **state)
{
    (void)state;
    sweep_both(&(struct path){ "release", op_release, release_applied, 0, 0, hold_unit });
}

int main(void)
{
    snprintf(dbpath, sizeof dbpath, "/tmp/fr-test-faults-%d.db", (int)getpid());
    snprintf(keypath, sizeof keypath, "/tmp/fr-test-faults-%d.key", (int)getpid());
    char err[512];
    if (records_open(&recs, keypath, "", "", err, sizeof err) < 0) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(result_path),
        cmocka_unit_test(success_path),
        cmocka_unit_test(success_record_path),
        cmocka_unit_test(cancel_records_path),
        cmocka_unit_test(submit_path),
        cmocka_unit_test(resubmit_path),
        cmocka_unit_test(cancel_path),
        cmocka_unit_test(hello_path),
        cmocka_unit_test(claim_path),
        cmocka_unit_test(expand_path),
        cmocka_unit_test(port_clear_path),
        cmocka_unit_test(release_path),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    records_release(&recs);
    unlink(keypath);
    strcat(keypath, ".pub");
    unlink(keypath);
    return rc;
}
