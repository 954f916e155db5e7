/* test_store_faults — failure injection in the store, as SQLite tests itself: the Nth
 * SQLite call (prepare or step) fails with IOERR, FULL or BUSY, for every N, on the
 * result, submit, cancel, Hello and claim paths. After each: no crash; an operation that
 * reported success is committed (read back through another connection); one that
 * failed left the store exactly as it was and sent no effect; and the same operation
 * tried again succeeds once (nothing lost). The sanitization records (records.h) are
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
        " (SELECT COUNT(*) FROM port_strikes) || '|' || (SELECT COUNT(*) FROM events) || '|' ||"
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
    /* handed out only after the commit: another connection sees it */
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

struct path {
    const char *name;
    int (*op)(struct store *s, struct op_ctx *x);
    int (*applied)(void);
    int effects;            /* JobCancels a successful run hands out */
    int unclaimed;          /* the site's attempts are not claimed yet */
    int (*before)(struct store *s, struct op_ctx *x); /* run first, without faults */
};

/* For N = 1, 2, ...: the Nth call fails with code; until the operation runs through
 * without reaching call N. Returns how many N were tried. */
static int sweep(const struct path *p, int code)
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
        store_fault_arm(s, n, code);
        int rc = p->op(s, &x);
        long calls = store_fault_calls(s);
        store_fault_arm(s, 0, 0);
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

static const int codes[] = { SQLITE_IOERR, SQLITE_FULL, SQLITE_BUSY };

static void sweep_all(const struct path *p)
{
    for (size_t i = 0; i < sizeof codes / sizeof codes[0]; i++) {
        int tried = sweep(p, codes[i]);
        assert_true(tried > 3); /* the path made SQLite calls to fail */
        print_message("%s: %s failed at each of %d calls\n", p->name, sqlite3_errstr(codes[i]),
                      tried - 1);
    }
}

static void result_path(void **state)
{
    (void)state;
    sweep_all(&(struct path){ "result", op_result, result_applied, 0, 0, NULL });
}

static void success_path(void **state)
{
    (void)state;
    sweep_all(&(struct path){ "success", op_success, success_applied, 0, 0, NULL });
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
    sweep_all(&(struct path){ "submit", op_submit, submit_applied, 0, 0, NULL });
}

static void cancel_path(void **state)
{
    (void)state;
    sweep_all(&(struct path){ "cancel", op_cancel, cancel_applied, NUNITS, 0, NULL });
}

static void hello_path(void **state)
{
    (void)state;
    sweep_all(&(struct path){ "hello", op_hello, hello_applied, 0, 0, NULL });
}

static void claim_path(void **state)
{
    (void)state;
    sweep_all(&(struct path){ "claim", op_claim, claim_applied, 0, 1, NULL });
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
        cmocka_unit_test(cancel_path),
        cmocka_unit_test(hello_path),
        cmocka_unit_test(claim_path),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    records_release(&recs);
    unlink(keypath);
    strcat(keypath, ".pub");
    unlink(keypath);
    return rc;
}
