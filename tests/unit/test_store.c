/* test_store — the controller's SQLite store: epochs, idempotent submits, leases,
 * stale results, reconciliation and the client documents. Real files. */
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
#include "fr_time.h"
#include "sql_probe.h"
#include "fr_types.h"
#include "runs.h"
#include "store.h"

static char dbpath[64];

static int setup(void **state)
{
    snprintf(dbpath, sizeof dbpath, "/tmp/fr-test-store-%d.db", (int)getpid());
    unlink(dbpath);
    struct store *s = NULL;
    char err[256];
    assert_int_equal(store_open(dbpath, &s, err, sizeof err), 0);
    assert_int_equal(store_bump_epoch(s), 0);
    *state = s;
    return 0;
}

static int teardown(void **state)
{
    struct store *s = *state;
    assert_int_equal(store_close(&s), 0); /* no statement left unfinalized */
    char p[80];
    unlink(dbpath);
    snprintf(p, sizeof p, "%s.lock", dbpath);
    unlink(p);
    snprintf(p, sizeof p, "%s-wal", dbpath);
    unlink(p);
    snprintf(p, sizeof p, "%s-shm", dbpath);
    unlink(p);
    return 0;
}

/* An agent's Hello with nunits units from first_ecid, still running keep[]. */
static int hello_keeping(struct store *s, const char *agent, int nunits, uint64_t first_ecid,
                         Fr__AttemptRef **keep, size_t nkeep, uint64_t now, int *interrupted)
{
    Fr__PortInfo ports[8], *pp[8];
    Fr__UnitInfo units[8], *up[8];
    char paths[8][16];
    for (int i = 0; i < nunits; i++) {
        fr__port_info__init(&ports[i]);
        snprintf(paths[i], sizeof paths[i], "1-1.%d", i + 1);
        ports[i].path = paths[i];
        ports[i].label = paths[i];
        pp[i] = &ports[i];
        fr__unit_info__init(&units[i]);
        units[i].ecid = first_ecid + (uint64_t)i;
        units[i].product_type = "iPhone12,1";
        units[i].mode = 2;
        units[i].port_path = paths[i];
        up[i] = &units[i];
    }
    Fr__Hello h = FR__HELLO__INIT;
    h.hostname = (char *)agent;
    h.slots = 8;
    h.ports = pp;
    h.n_ports = (size_t)nunits;
    h.units = up;
    h.n_units = (size_t)nunits;
    h.attempts = keep;
    h.n_attempts = nkeep;
    return store_agent_hello(s, agent, &h, now, interrupted);
}

static void hello_with_units(struct store *s, const char *agent, int nunits, uint64_t first_ecid)
{
    assert_int_equal(hello_keeping(s, agent, nunits, first_ecid, NULL, 0, 1000, NULL), 0);
}

static uint64_t submit(struct store *s, const char *key, uint64_t *ecids, size_t n, char **agents,
                       size_t na, int *created)
{
    struct job_spec spec = { .key = key, .name = "t", .firmware = "/x.ipsw", .sha256 = "",
                             .ecids = ecids, .necids = n, .agents = agents, .nagents = na,
                             .erase = 1 };
    uint64_t id = 0;
    char err[256];
    assert_int_equal(store_job_submit(s, &spec, 2000, &id, created, err, sizeof err), 0);
    return id;
}

/* Applies a JobResult as the controller does (runs.c), in one transaction. */
static int apply(struct store *s, const char *agent, const Fr__JobResult *r, uint64_t now,
                 const struct policy_cfg *pc, struct run_effects *fx)
{
    struct run_end e = { r->outcome, r->error_class, r->error_text, r->log_path, r->port_path,
                         r->exit_code, r->ended_ms, r->firmware_version, r->firmware_build,
                         r->unit_version, r->unit_build, r->unverified_reason };
    return runs_apply(s, pc, agent, r->ref, &e, now, fx);
}

struct cands {
    struct sched_candidate c[16];
    size_t n;
};

static int collect(void *arg, const struct sched_candidate *c)
{
    struct cands *cs = arg;
    cs->c[cs->n++] = *c;
    return cs->n == 16;
}

static void epoch_grows_at_each_open(void **state)
{
    struct store *s = *state;
    uint64_t first = store_epoch(s);
    store_close(&s);
    char err[256];
    assert_int_equal(store_open(dbpath, &s, err, sizeof err), 0);
    assert_true(store_epoch(s) == first); /* not before the controller can serve */
    assert_int_equal(store_bump_epoch(s), 0);
    assert_true(store_epoch(s) == first + 1);
    *state = s;
}

static void submit_is_idempotent(void **state)
{
    struct store *s = *state;
    uint64_t ecid = 0x1000;
    int created = 0;
    uint64_t a = submit(s, "key-1", &ecid, 1, NULL, 0, &created);
    assert_true(created);
    uint64_t b = submit(s, "key-1", &ecid, 1, NULL, 0, &created);
    assert_false(created);
    assert_true(a == b);
    json_t *doc = store_doc_status(s, 0, 0);
    assert_int_equal(json_array_size(json_object_get(doc, "jobs")), 1);
    json_decref(doc);
}

struct given {
    int n;
    char fw[4][64], sha[4][80];
};

static void note_given(void *arg, const Fr__AttemptRef *ref, const struct attempt_info *ai)
{
    struct given *g = arg;
    if (g->n < 4) {
        snprintf(g->fw[g->n], sizeof g->fw[0], "%s", ai->firmware);
        snprintf(g->sha[g->n], sizeof g->sha[0], "%s", ai->sha256);
        g->n++;
    }
}

static void note_token(void *arg, const Fr__AttemptRef *ref, const struct attempt_info *ai)
{
    struct { uint64_t hi[4]; int n; } *t = arg;
    if (t->n < 4)
        t->hi[t->n++] = ref->token_hi;
}

static void claims_get_increasing_epochs_and_stale_results_are_not_applied(void **state)
{
    struct store *s = *state;
    hello_with_units(s, "A", 2, 0x2000);
    uint64_t ecids[] = { 0x2000, 0x2001 };
    int created;
    submit(s, "k", ecids, 2, NULL, 0, &created);
    struct cands cs = { .n = 0 };
    assert_int_equal(store_sched_candidates(s, collect, &cs), 0);
    assert_int_equal(cs.n, 2);
    Fr__AttemptRef r1 = FR__ATTEMPT_REF__INIT, r2 = FR__ATTEMPT_REF__INIT;
    int erase;
    uint32_t n;
    assert_int_equal(store_claim_attempt(s, &cs.c[0], 3000, "/x.ipsw", "", &r1, &erase, &n), 0);
    assert_int_equal(store_claim_attempt(s, &cs.c[1], 3000, "https://h/22C152.ipsw", "ab12", &r2,
                                         &erase, &n), 0);
    assert_true(r2.epoch > r1.epoch);
    /* each attempt keeps the firmware it was given (a selector resolves per model) */
    struct given g = { 0 };
    store_live_attempts(s, "A", NULL, note_given, &g);
    assert_int_equal(g.n, 2);
    assert_string_equal(g.fw[0], "/x.ipsw");
    assert_string_equal(g.fw[1], "https://h/22C152.ipsw");
    assert_string_equal(g.sha[1], "ab12");
    assert_int_equal(n, 1);

    /* a claimed unit is no longer a candidate */
    cs.n = 0;
    store_sched_candidates(s, collect, &cs);
    assert_int_equal(cs.n, 0);

    Fr__JobResult res = FR__JOB_RESULT__INIT;
    Fr__AttemptRef stale = r1;
    stale.epoch = r1.epoch + 100;
    res.ref = &stale;
    res.outcome = FR__OUTCOME__OUTCOME_SUCCESS;
    struct policy_cfg pc;
    policy_cfg_default(&pc);
    struct run_effects fx;
    assert_int_equal(apply(s, "A", &res, 4000, &pc, &fx), 0);
    assert_int_not_equal(fx.match, ATTEMPT_LIVE);
    res.ref = &r1;
    assert_int_equal(apply(s, "A", &res, 4000, &pc, &fx), 0);
    assert_int_equal(fx.match, ATTEMPT_LIVE);
    assert_string_equal(fx.next_state, "done");
    /* the same result again (a replay) is stale now */
    assert_int_equal(apply(s, "A", &res, 4001, &pc, &fx), 0);
    assert_int_not_equal(fx.match, ATTEMPT_LIVE);

    json_t *rep = store_doc_report(s, r1.job_id, 0, NULL);
    json_t *units = json_object_get(rep, "units");
    assert_int_equal(json_array_size(units), 2);
    json_t *u0 = json_array_get(units, 0);
    assert_string_equal(json_string_value(json_object_get(u0, "state")), "done");
    json_t *att = json_array_get(json_object_get(u0, "attempts"), 0);
    assert_string_equal(json_string_value(json_object_get(att, "outcome")), "success");
    assert_string_equal(json_string_value(json_object_get(att, "agent")), "A");
    json_decref(rep);
}

static int64_t count_sql(const char *text)
{
    return sql_probe(dbpath, text);
}

/* Only the agent the attempt was given to, with its job, attempt, epoch, ECID and token,
 * can end it; a guessed one is recorded as a mismatch and changes nothing. */
static void results_apply_only_with_the_attempts_own_agent_ecid_and_token(void **state)
{
    struct store *s = *state;
    hello_with_units(s, "A", 2, 0xB000);
    uint64_t ecids[] = { 0xB000, 0xB001 };
    int created, erase;
    uint32_t n;
    submit(s, "tok", ecids, 2, NULL, 0, &created);
    struct cands cs = { .n = 0 };
    store_sched_candidates(s, collect, &cs);
    Fr__AttemptRef r[2] = { FR__ATTEMPT_REF__INIT, FR__ATTEMPT_REF__INIT };
    for (int i = 0; i < 2; i++)
        assert_int_equal(store_claim_attempt(s, &cs.c[i], 3000, "/x.ipsw", "", &r[i], &erase, &n), 0);
    assert_true(r[0].token_hi || r[0].token_lo);
    assert_false(r[0].token_hi == r[1].token_hi && r[0].token_lo == r[1].token_lo);

    Fr__JobResult res = FR__JOB_RESULT__INIT;
    res.outcome = FR__OUTCOME__OUTCOME_SUCCESS;
    struct policy_cfg pc;
    policy_cfg_default(&pc);
    struct run_effects fx;
    Fr__AttemptRef forged[4] = { r[0], r[0], r[0], r[0] };
    forged[0].token_lo ^= 1;           /* a guessed token */
    forged[1].ecid = r[1].ecid;        /* another unit's ECID */
    forged[2].token_hi = forged[2].token_lo = 0;
    const char *senders[4] = { "A", "A", "A", "B" }; /* the last: the right ref, the wrong agent */
    for (int i = 0; i < 4; i++) {
        res.ref = &forged[i];
        assert_int_equal(apply(s, senders[i], &res, 4000, &pc, &fx), 0);
        assert_int_equal(fx.match, ATTEMPT_NONE);
    }
    assert_int_equal(count_sql("SELECT COUNT(*) FROM events WHERE kind = 'mismatch'"), 4);
    assert_int_equal(count_sql("SELECT COUNT(*) FROM unit_runs WHERE state = 'done'"), 0);
    assert_int_equal(store_attempt_match(s, "A", &r[0]), ATTEMPT_LIVE);
    res.ref = &r[0];
    assert_int_equal(apply(s, "A", &res, 4000, &pc, &fx), 0);
    assert_int_equal(fx.match, ATTEMPT_LIVE);
    assert_int_equal(count_sql("SELECT COUNT(*) FROM unit_runs WHERE state = 'done'"), 1);
    /* a re-sent assign carries the token */
    struct tokens { uint64_t hi[4]; int n; } seen = { { 0 }, 0 };
    store_live_attempts(s, "A", NULL, note_token, &seen);
    assert_int_equal(seen.n, 1);
    assert_true(seen.hi[0] == r[1].token_hi);
}

static void reconcile_interrupts_attempts_the_agent_lost(void **state)
{
    struct store *s = *state;
    hello_with_units(s, "A", 2, 0x3000);
    uint64_t ecids[] = { 0x3000, 0x3001 };
    int created, interrupted = 0;
    submit(s, "k", ecids, 2, NULL, 0, &created);
    struct cands cs = { .n = 0 };
    store_sched_candidates(s, collect, &cs);
    Fr__AttemptRef r[2] = { FR__ATTEMPT_REF__INIT, FR__ATTEMPT_REF__INIT };
    int erase;
    uint32_t n;
    for (int i = 0; i < 2; i++)
        store_claim_attempt(s, &cs.c[i], 3000, "/x.ipsw", "", &r[i], &erase, &n);
    Fr__AttemptRef *keep[] = { &r[1] };
    /* Not accepted yet: the assign may still be on its way (a Hello crossed it); it is
     * re-sent with the heartbeats, so it is not the agent's loss. */
    assert_int_equal(hello_keeping(s, "A", 2, 0x3000, keep, 1, 4000, &interrupted), 0);
    assert_int_equal(interrupted, 0);
    assert_true(store_attempt_match(s, "A", &r[0]) == ATTEMPT_LIVE);
    for (int i = 0; i < 2; i++)
        assert_int_equal(store_attempt_running(s, &r[i]), 0);
    assert_int_equal(hello_keeping(s, "A", 2, 0x3000, keep, 1, 5000, &interrupted), 0);
    assert_int_equal(interrupted, 1);
    assert_false(store_attempt_match(s, "A", &r[0]) == ATTEMPT_LIVE);
    assert_true(store_attempt_match(s, "A", &r[1]) == ATTEMPT_LIVE);
    /* the interrupted unit waits again and is a candidate for a new attempt */
    cs.n = 0;
    store_sched_candidates(s, collect, &cs);
    assert_int_equal(cs.n, 1);
    assert_true(cs.c[0].ecid == r[0].ecid);
    Fr__AttemptRef again = FR__ATTEMPT_REF__INIT;
    store_claim_attempt(s, &cs.c[0], 6000, "/x.ipsw", "", &again, &erase, &n);
    assert_int_equal(n, 2);
}

static size_t runs_of_job(struct store *s, uint64_t job)
{
    json_t *doc = store_doc_status(s, job, 1);
    size_t n = json_array_size(json_object_get(doc, "runs"));
    json_decref(doc);
    return n;
}

/* A pass after one unit changed looks at that unit only; NULL looks at the site. */
static void selector_expansion_takes_only_the_units_named(void **state)
{
    struct store *s = *state;
    hello_with_units(s, "A", 5, 0x4000);
    char *agents[] = { "A" };
    int created;
    uint64_t id = submit(s, "sel", NULL, 0, agents, 1, &created);
    uint64_t changed[] = { 0x4001, 0x4003, 0x4003, 0x9999 /* not present anywhere */ };
    assert_int_equal(store_sched_expand(s, 2, changed, 4), 0);
    assert_int_equal(runs_of_job(s, id), 2);
    assert_int_equal(store_sched_expand(s, 3, changed, 0), 0);
    assert_int_equal(runs_of_job(s, id), 2);
    assert_int_equal(store_sched_expand(s, 4, NULL, 0), 0);
    assert_int_equal(runs_of_job(s, id), 5);
}

/* A unit named by two selector jobs joins the earlier one only, by list or by site. */
static void a_unit_joins_the_earliest_selector_job_only(void **state)
{
    struct store *s = *state;
    hello_with_units(s, "A", 3, 0x4100);
    char *agents[] = { "A" };
    int created;
    uint64_t first = submit(s, "one", NULL, 0, agents, 1, &created);
    uint64_t second = submit(s, "two", NULL, 0, agents, 1, &created);
    uint64_t changed[] = { 0x4100 };
    assert_int_equal(store_sched_expand(s, 2, changed, 1), 0);
    assert_int_equal(store_sched_expand(s, 3, NULL, 0), 0);
    assert_int_equal(runs_of_job(s, first), 3);
    assert_int_equal(runs_of_job(s, second), 0);
}

/* Pages of 2 rows list every unit once, in the whole document's order, and end with "". */
static void documents_come_in_pages_that_cover_them_once(void **state)
{
    struct store *s = *state;
    hello_with_units(s, "B", 3, 0x4200);
    hello_with_units(s, "A", 2, 0x4300);
    json_t *whole = store_doc_units(s, NULL);
    assert_null(json_object_get(whole, "next"));
    json_t *paged = json_array();
    char cursor[256] = "";
    int pages = 0;
    do {
        struct store_page pg = { cursor, 2 };
        json_t *doc = store_doc_units(s, &pg);
        assert_true(json_array_size(json_object_get(doc, "units")) <= 2);
        json_array_extend(paged, json_object_get(doc, "units"));
        snprintf(cursor, sizeof cursor, "%s", json_string_value(json_object_get(doc, "next")));
        json_decref(doc);
    } while (cursor[0] && ++pages < 10);
    assert_int_equal(pages, 2); /* 2 + 2 + 1 rows */
    assert_true(json_equal(paged, json_object_get(whole, "units")));
    json_decref(paged);
    json_decref(whole);
}

/* A paged document, limit rows at a time: its list's rows of every page, in order; the
 * pages' count in *pages. between (if any) changes the store after the first page. */
typedef json_t *(*doc_pager)(struct store *s, uint64_t job, const struct store_page *pg);

static json_t *units_pager(struct store *s, uint64_t job, const struct store_page *pg)
{
    (void)job;
    return store_doc_units(s, pg);
}

static json_t *ports_pager(struct store *s, uint64_t job, const struct store_page *pg)
{
    (void)job;
    return store_doc_ports(s, pg);
}

static json_t *runs_pager(struct store *s, uint64_t job, const struct store_page *pg)
{
    return store_doc_status_page(s, job, 0, pg);
}

static json_t *report_pager(struct store *s, uint64_t job, const struct store_page *pg)
{
    return store_doc_report(s, job, 0, pg);
}

static json_t *every_page(struct store *s, doc_pager get, uint64_t job, const char *list, int limit,
                          void (*between)(struct store *), int *pages)
{
    json_t *rows = json_array();
    char cursor[256] = "";
    *pages = 0;
    do {
        struct store_page pg = { cursor, limit };
        json_t *doc = get(s, job, &pg);
        assert_non_null(doc);
        assert_true(json_array_size(json_object_get(doc, list)) <= (size_t)limit);
        if (cursor[0]) /* the rest of the document came with the first page */
            assert_int_equal(json_object_size(doc), 2);
        json_array_extend(rows, json_object_get(doc, list));
        snprintf(cursor, sizeof cursor, "%s", json_string_value(json_object_get(doc, "next")));
        json_decref(doc);
        if (between && ++*pages == 1)
            between(s);
        else if (!between)
            ++*pages;
    } while (cursor[0] && *pages < 20);
    return rows;
}

/* The pages of a job's runs, of its report and of the ports list every row once, in the
 * whole document's order (an index's: ECID, rack order for ports). */
static void runs_ports_and_report_pages_cover_them_once_in_order(void **state)
{
    struct store *s = *state;
    hello_with_units(s, "B", 3, 0x4200);
    hello_with_units(s, "A", 4, 0x4300);
    char *agents[] = { "A", "B" };
    int created, pages;
    uint64_t job = submit(s, "paged", NULL, 0, agents, 2, &created);
    assert_int_equal(store_sched_expand(s, 2, NULL, 0), 0);
    struct {
        doc_pager get;
        const char *list;
    } docs[] = { { runs_pager, "runs" }, { report_pager, "units" }, { ports_pager, "ports" } };
    for (size_t d = 0; d < sizeof docs / sizeof docs[0]; d++) {
        json_t *whole = docs[d].get(s, job, NULL);
        json_t *rows = every_page(s, docs[d].get, job, docs[d].list, 3, NULL, &pages);
        assert_int_equal(pages, 3); /* 3 + 3 + 1 rows */
        assert_int_equal(json_array_size(rows), 7);
        assert_true(json_equal(rows, json_object_get(whole, docs[d].list)));
        json_decref(rows);
        json_decref(whole);
    }
    json_t *whole = runs_pager(s, job, NULL);
    const char *first = json_string_value(json_object_get(json_array_get(json_object_get(whole, "runs"), 0), "ecid"));
    assert_string_equal(first, "0x0000000000004200"); /* ECID order, not agent order */
    json_decref(whole);
    struct store_page later = { "[1]", 3 };
    assert_null(runs_pager(s, job + 1, &later)); /* no such job, on any page */
    assert_null(report_pager(s, job + 1, &later));
}

/* A page of large rows ends once its text passes STORE_PAGE_BYTES, whatever its limit:
 * 7 units of 100 kB each come in pages of 6 and 1 (each fits a message), every unit once. */
static void a_page_of_large_rows_ends_at_its_byte_size(void **state)
{
    struct store *s = *state;
    hello_with_units(s, "A", 7, 0x4300);
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open(dbpath, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, "UPDATE units SET serial = printf('%.*c', 100000, 'x')", NULL, NULL, NULL),
                     SQLITE_OK);
    sqlite3_close(db);
    json_t *whole = store_doc_units(s, NULL);
    char cursor[256] = "";
    size_t rows = 0, sizes[4] = { 0 };
    int pages = 0;
    do {
        struct store_page pg = { cursor, 1000 };
        char *text = store_text_units(s, &pg);
        assert_non_null(text);
        assert_true(strlen(text) < STORE_PAGE_BYTES + 110000); /* at most one row past it */
        json_t *doc = json_loads(text, 0, NULL);
        free(text);
        sizes[pages] = json_array_size(json_object_get(doc, "units"));
        for (size_t i = 0; i < sizes[pages]; i++, rows++)
            assert_true(json_equal(json_array_get(json_object_get(doc, "units"), i),
                                   json_array_get(json_object_get(whole, "units"), rows)));
        snprintf(cursor, sizeof cursor, "%s", json_string_value(json_object_get(doc, "next")));
        json_decref(doc);
    } while (cursor[0] && ++pages < 4);
    assert_int_equal(pages, 1);
    assert_int_equal(sizes[0], 6);
    assert_int_equal(sizes[1], 1);
    assert_int_equal(rows, 7);
    json_decref(whole);
}

static void plug_units_before_and_after_the_cursor(struct store *s)
{
    hello_with_units(s, "C", 1, 0x4000); /* before the first page's last row */
    hello_with_units(s, "D", 1, 0x4900); /* after every row */
}

/* A unit plugged in between two pages moves no other row into or out of the listing:
 * each unit listed before is listed once, the one after the cursor is listed, the one
 * before it is not. */
static void a_change_between_pages_shifts_no_other_row(void **state)
{
    struct store *s = *state;
    hello_with_units(s, "A", 5, 0x4300);
    int pages;
    json_t *rows = every_page(s, units_pager, 0, "units", 2, plug_units_before_and_after_the_cursor, &pages);
    assert_int_equal(json_array_size(rows), 6);
    const char *want[] = { "0x0000000000004300", "0x0000000000004301", "0x0000000000004302",
                           "0x0000000000004303", "0x0000000000004304", "0x0000000000004900" };
    for (size_t i = 0; i < 6; i++)
        assert_string_equal(json_string_value(json_object_get(json_array_get(rows, i), "ecid")), want[i]);
    json_decref(rows);
    /* a cursor that is not this document's key is an empty last page, not an error */
    struct store_page odd = { "[\"x\", 1]", 2 };
    json_t *doc = store_doc_units(s, &odd);
    assert_int_equal(json_array_size(json_object_get(doc, "units")), 0);
    assert_string_equal(json_string_value(json_object_get(doc, "next")), "");
    json_decref(doc);
}

/* The watch's runs changed after since, read limit at a time until none are left; the
 * next since in *seq. */
static json_t *watch_changes(struct store *s, uint64_t job, int64_t *seq, int limit)
{
    json_t *runs = json_array();
    int more = 1;
    for (int pages = 0; more && pages < 20; pages++) {
        json_t *doc = store_doc_watch(s, job, *seq, limit);
        assert_non_null(doc);
        assert_int_equal(json_array_size(json_object_get(doc, "jobs")), 1);
        json_array_extend(runs, json_object_get(doc, "runs"));
        *seq = json_integer_value(json_object_get(doc, "seq"));
        more = json_is_true(json_object_get(doc, "more"));
        json_decref(doc);
    }
    return runs;
}

static const char *run_field(json_t *runs, size_t i, const char *key)
{
    return json_string_value(json_object_get(json_array_get(runs, i), key));
}

/* A watch reads every run once (in pages), then only the runs written since: none when
 * nothing was, the cancelled one, the one whose unit moved to another agent's port. */
static void a_watch_reads_every_run_then_only_what_changed(void **state)
{
    struct store *s = *state;
    hello_with_units(s, "A", 5, 0x4700);
    char *agents[] = { "A" };
    int created, n;
    uint64_t job = submit(s, "watched", NULL, 0, agents, 1, &created);
    assert_int_equal(store_sched_expand(s, 2, NULL, 0), 0);
    int64_t seq = 0;
    json_t *runs = watch_changes(s, job, &seq, 2);
    assert_int_equal(json_array_size(runs), 5);
    for (size_t i = 0; i < 5; i++)
        for (size_t j = 0; j < i; j++)
            assert_string_not_equal(run_field(runs, i, "ecid"), run_field(runs, j, "ecid"));
    json_decref(runs);
    assert_true(seq > 0);

    runs = watch_changes(s, job, &seq, 2);
    assert_int_equal(json_array_size(runs), 0); /* nothing written */
    json_decref(runs);

    assert_int_equal(store_job_cancel(s, job, 0x4701, 10, &n, NULL, NULL), 0);
    runs = watch_changes(s, job, &seq, 2);
    assert_int_equal(json_array_size(runs), 1);
    assert_string_equal(run_field(runs, 0, "ecid"), "0x0000000000004701");
    assert_string_equal(run_field(runs, 0, "state"), "cancelled");
    json_decref(runs);

    hello_with_units(s, "B", 1, 0x4703); /* unit 0x4703 is now on B's port */
    runs = watch_changes(s, job, &seq, 2);
    assert_int_equal(json_array_size(runs), 1);
    assert_string_equal(run_field(runs, 0, "ecid"), "0x0000000000004703");
    assert_string_equal(run_field(runs, 0, "agent"), "B");
    json_decref(runs);
    hello_with_units(s, "B", 1, 0x4703); /* the same port again: nothing shown changed */
    runs = watch_changes(s, job, &seq, 2);
    assert_int_equal(json_array_size(runs), 0);
    json_decref(runs);
    assert_null(store_doc_watch(s, job + 1, 0, 2)); /* no such job */
}

/* A job's totals count each run once by its state's group (units counts every run). */
static void a_jobs_totals_count_each_state(void **state)
{
    struct store *s = *state;
    hello_with_units(s, "A", 8, 0x4a00);
    char *agents[] = { "A" };
    int created;
    uint64_t job = submit(s, "totals", NULL, 0, agents, 1, &created);
    assert_int_equal(store_sched_expand(s, 2, NULL, 0), 0);
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open(dbpath, &db), SQLITE_OK);
    static const char *const states[] = { "waiting_unit", "needs_move", "restoring", "verifying", "done",
                                          "failed", "hardware_suspect", "cancelled" };
    for (int i = 0; i < 8; i++) {
        char sql[160];
        snprintf(sql, sizeof sql, "UPDATE unit_runs SET state = '%s' WHERE ecid = %d", states[i], 0x4a00 + i);
        assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
    }
    sqlite3_close(db);
    json_t *doc = store_doc_status(s, job, 0);
    json_t *t = json_object_get(json_array_get(json_object_get(doc, "jobs"), 0), "totals");
    static const char *const keys[] = { "units", "waiting", "active", "done", "failed", "cancelled" };
    static const int want[] = { 8, 2, 2, 1, 2, 1 };
    for (int i = 0; i < 6; i++)
        assert_int_equal(json_integer_value(json_object_get(t, keys[i])), want[i]);
    json_decref(doc);
}

/* A watch snapshot's pages (limit 2) from the cursor "[]" on: the runs, appended to runs;
 * returns the last page's seq. */
static int64_t snapshot_pages(struct store *s, uint64_t job, json_t *runs)
{
    char cursor[128] = "[]";
    int64_t seq = 0;
    for (int pages = 0; pages < 20; pages++) {
        struct store_page pg = { cursor, 2 };
        char *text = store_text_watch_snapshot(s, job, seq, &pg, NULL);
        json_t *doc = json_loads(text, 0, NULL);
        free(text);
        assert_non_null(doc);
        json_array_extend(runs, json_object_get(doc, "runs"));
        int64_t got = json_integer_value(json_object_get(doc, "seq"));
        assert_true(got > 0 && (!seq || got == seq)); /* every page says where the snapshot began */
        seq = got;
        const char *next = json_string_value(json_object_get(doc, "next"));
        assert_int_equal(json_is_true(json_object_get(doc, "more")), *next != 0);
        snprintf(cursor, sizeof cursor, "%s", next);
        json_decref(doc);
        if (!*cursor)
            return seq;
    }
    fail_msg("a snapshot that does not end");
    return 0;
}

/* Every watched job's run once, in key order (job, ECID), in pages across two jobs; its
 * seq is the newest change when it began, so a run written during the snapshot comes
 * with the changes after it; a cursor that is not [job, ecid] is an empty last page. */
static void a_watch_snapshot_reads_every_run_in_key_order(void **state)
{
    struct store *s = *state;
    hello_with_units(s, "A", 3, 0x4800);
    char *agents[] = { "A" };
    int created;
    uint64_t ecids[] = { 0x4802 };
    uint64_t first = submit(s, "snap1", ecids, 1, NULL, 0, &created);
    uint64_t second = submit(s, "snap2", NULL, 0, agents, 1, &created); /* the other two */
    assert_int_equal(store_sched_expand(s, 2, NULL, 0), 0);
    json_t *runs = json_array();
    int64_t seq = snapshot_pages(s, 0, runs); /* job 0: every running job; a page crosses */
    assert_int_equal(json_array_size(runs), 3);
    const char *want[] = { "0x0000000000004802", "0x0000000000004800", "0x0000000000004801" };
    for (size_t i = 0; i < 3; i++) {
        assert_string_equal(run_field(runs, i, "ecid"), want[i]);
        assert_int_equal(json_integer_value(json_object_get(json_array_get(runs, i), "job_id")),
                         i < 1 ? first : second);
    }
    json_decref(runs);
    assert_int_equal(seq, count_sql("SELECT MAX(seq) FROM unit_runs"));

    int n;
    assert_int_equal(store_job_cancel(s, second, 0x4801, 10, &n, NULL, NULL), 0);
    runs = watch_changes(s, second, &seq, 2);
    assert_int_equal(json_array_size(runs), 1);
    assert_string_equal(run_field(runs, 0, "state"), "cancelled");
    json_decref(runs);

    struct store_page odd = { "[\"x\"]", 2 };
    char *text = store_text_watch_snapshot(s, second, 1, &odd, NULL);
    json_t *doc = json_loads(text, 0, NULL);
    free(text);
    assert_int_equal(json_array_size(json_object_get(doc, "runs")), 0);
    assert_string_equal(json_string_value(json_object_get(doc, "next")), "");
    json_decref(doc);
    assert_null(store_text_watch_snapshot(s, second + 1, 0, &odd, NULL)); /* no such job */
}

static void selector_jobs_take_units_up_to_count(void **state)
{
    struct store *s = *state;
    hello_with_units(s, "A", 5, 0x4000);
    hello_with_units(s, "B", 3, 0x5000);
    char *agents[] = { "A" };
    int created;
    struct job_spec spec = { .key = "sel", .name = "sel", .firmware = "/x.ipsw", .sha256 = "",
                             .agents = agents, .nagents = 1, .count = 3, .erase = 1 };
    uint64_t id;
    char err[128];
    assert_int_equal(store_job_submit(s, &spec, 1, &id, &created, err, sizeof err), 0);
    assert_int_equal(store_sched_expand(s, 2, NULL, 0), 0);
    json_t *doc = store_doc_status(s, id, 1);
    json_t *runs = json_object_get(doc, "runs");
    assert_int_equal(json_array_size(runs), 3);
    size_t i;
    json_t *r;
    json_array_foreach(runs, i, r)
        assert_string_equal(json_string_value(json_object_get(r, "agent")), "A");
    json_decref(doc);
}

/* A look at the whole site in pages: every present unit of the job's agents gets its
 * run once, a page creates at most its size of them, and a count holds across pages
 * (units joined in agent and port order, as in one pass). */
static char *three_agents[] = { "A", "B", "C" };

/* 22 units on A (8), B (8) and C (6), and a job for every unit of the three. */
static uint64_t job_on_three_agents(struct store *s)
{
    hello_with_units(s, "A", 8, 0x4100);
    hello_with_units(s, "B", 8, 0x4200);
    hello_with_units(s, "C", 6, 0x4300);
    struct job_spec spec = { .key = "all", .name = "all", .firmware = "/x.ipsw", .sha256 = "",
                             .agents = three_agents, .nagents = 3, .erase = 1 };
    uint64_t id;
    int created;
    char err[128];
    assert_int_equal(store_job_submit(s, &spec, 1, &id, &created, err, sizeof err), 0);
    return id;
}

static void the_whole_site_is_looked_at_a_page_at_a_time(void **state)
{
    struct store *s = *state;
    char *bc[] = { "B", "C" };
    uint64_t id = job_on_three_agents(s), counted;
    int created;
    char err[128];
    struct job_spec spec;
    struct expand_cursor cur = { "", "" };
    int done = 0, pages = 0;
    int64_t runs = 0;
    while (!done) {
        assert_int_equal(store_sched_expand_page(s, 2, &cur, 5, &done), 0);
        int64_t now = count_sql("SELECT COUNT(*) FROM unit_runs");
        assert_true(now - runs <= 5);
        runs = now;
        assert_true(++pages <= 5);
    }
    assert_int_equal(pages, 5); /* 22 units, 5 a page */
    assert_int_equal(runs, 22);
    assert_int_equal(count_sql("SELECT COUNT(DISTINCT ecid) FROM unit_runs"), 22);
    assert_int_equal(store_sched_expand_page(s, 3, &cur, 5, &done), 0); /* past the end */
    assert_int_equal(done, 1);
    /* a counted job on B and C once A's runs are over: the first 10 in agent, port order */
    assert_int_equal(store_job_cancel(s, id, 0, 4, &created, NULL, NULL), 0);
    spec = (struct job_spec){ .key = "bc", .name = "bc", .firmware = "/x.ipsw", .sha256 = "",
                              .agents = bc, .nagents = 2, .count = 10, .erase = 1 };
    assert_int_equal(store_job_submit(s, &spec, 5, &counted, &created, err, sizeof err), 0);
    cur = (struct expand_cursor){ "", "" };
    for (done = 0, pages = 0; !done && pages < 10; pages++)
        assert_int_equal(store_sched_expand_page(s, 6, &cur, 3, &done), 0);
    assert_int_equal(count_sql("SELECT COUNT(*) FROM unit_runs WHERE job = 2"), 10);
    assert_int_equal(count_sql("SELECT COUNT(*) FROM unit_runs WHERE job = 2 AND ecid >= 16896"
                               " AND ecid < 16904"), 8); /* all of B (0x4200..) */
    assert_int_equal(count_sql("SELECT COUNT(*) FROM unit_runs WHERE job = 2 AND ecid IN"
                               " (17152, 17153)"), 2); /* and C's first two (0x4300, 0x4301) */
}

static json_int_t total(json_t *job, const char *key)
{
    return json_integer_value(json_object_get(json_object_get(job, "totals"), key));
}

/* The job's totals in its status: units, of which waiting and expanding. */
static void assert_totals(struct store *s, uint64_t job, json_int_t units, json_int_t waiting,
                          json_int_t expanding)
{
    json_t *doc = store_doc_status(s, job, 0), *j = json_array_get(json_object_get(doc, "jobs"), 0);
    assert_int_equal(total(j, "units"), units);
    assert_int_equal(total(j, "waiting"), waiting);
    assert_int_equal(total(j, "expanding"), expanding);
    json_decref(doc);
}

/* While the site is still being looked at a page a pass, a job's totals count the units it
 * matched that have no run yet as waiting, and "expanding" says how many: status and
 * report say 22 units from the submit on, not 5, 10, ... 22. Up to a job's count. */
static void totals_count_the_matches_not_yet_expanded(void **state)
{
    struct store *s = *state;
    uint64_t id = job_on_three_agents(s), counted;
    int created, done = 0;
    char err[128];
    struct expand_cursor cur = { "", "" };
    assert_int_equal(store_sched_expand_page(s, 2, &cur, 5, &done), 0);
    assert_int_equal(count_sql("SELECT COUNT(*) FROM unit_runs"), 5);
    store_docs_expanding(s, 1);
    assert_totals(s, id, 22, 22, 17);
    json_t *doc = store_doc_report(s, id, 0, NULL);
    assert_int_equal(total(json_object_get(doc, "job"), "units"), 22);
    assert_int_equal(total(json_object_get(doc, "job"), "expanding"), 17);
    json_decref(doc);
    while (!done)
        assert_int_equal(store_sched_expand_page(s, 3, &cur, 5, &done), 0);
    assert_totals(s, id, 22, 22, 0);
    /* a job of 10 on units another job holds: none to come; once they are free, up to 10 */
    struct job_spec spec = { .key = "ten", .name = "ten", .firmware = "/x.ipsw", .sha256 = "",
                             .agents = three_agents, .nagents = 3, .count = 10, .erase = 1 };
    assert_int_equal(store_job_submit(s, &spec, 4, &counted, &created, err, sizeof err), 0);
    assert_totals(s, counted, 0, 0, 0);
    assert_int_equal(store_job_cancel(s, id, 0, 5, &created, NULL, NULL), 0);
    cur = (struct expand_cursor){ "", "" };
    assert_int_equal(store_sched_expand_page(s, 6, &cur, 3, &done), 0);
    assert_totals(s, counted, 10, 10, 7);
    /* the controller says when it is not looking: the runs there are, nothing more */
    store_docs_expanding(s, 0);
    assert_totals(s, counted, 3, 3, 0);
}

struct cancels {
    int n;
    int64_t committed;  /* cancelled runs another connection saw when the callback ran */
    uint64_t token_hi;
};

static void on_cancel(void *arg, const Fr__AttemptRef *ref, const char *agent)
{
    struct cancels *c = arg;
    c->n++;
    c->token_hi = ref->token_hi;
    assert_string_equal(agent, "A");
    c->committed = count_sql("SELECT COUNT(*) FROM unit_runs WHERE state = 'cancelled'");
}

static void cancel_marks_runs_and_job(void **state)
{
    struct store *s = *state;
    hello_with_units(s, "A", 2, 0x6000);
    uint64_t ecids[] = { 0x6000, 0x6001 };
    int created, nruns = 0, erase;
    uint32_t n;
    uint64_t id = submit(s, "c", ecids, 2, NULL, 0, &created);
    struct cands cs = { .n = 0 };
    store_sched_candidates(s, collect, &cs);
    Fr__AttemptRef ref = FR__ATTEMPT_REF__INIT;
    assert_int_equal(store_claim_attempt(s, &cs.c[0], 3000, "/x.ipsw", "", &ref, &erase, &n), 0);
    /* the JobCancel for the live attempt goes out only once the cancel is committed */
    struct cancels seen = { 0, 0, 0 };
    assert_int_equal(store_job_cancel(s, id, 0, 10, &nruns, on_cancel, &seen), 0);
    assert_int_equal(seen.n, 1);
    assert_int_equal(seen.committed, 2);
    assert_true(seen.token_hi == ref.token_hi);
    assert_int_equal(nruns, 2);
    json_t *doc = store_doc_status(s, id, 0);
    json_t *job = json_array_get(json_object_get(doc, "jobs"), 0);
    assert_string_equal(json_string_value(json_object_get(job, "state")), "cancelled");
    json_decref(doc);
    assert_int_equal(store_job_cancel(s, 999, 0, 10, &nruns, NULL, NULL), FR_ENOTFOUND);
}

static int count_row(void *arg, uint64_t job, uint64_t ecid)
{
    (void)job;
    (void)ecid;
    ++*(int *)arg;
    return 0;
}

/* The same work, some, at a small site and a large one (steps, not times). */
static void assert_same_work(uint64_t small, uint64_t large)
{
    assert_true(small > 0);
    assert_int_equal(large, small);
}

/* The store's work to find whether one ended unit of a job has its record: a job of n
 * cancelled runs, and the steps that lookup took. */
static uint64_t steps_for_one_record_lookup(struct store *s, const char *key, uint64_t first, size_t n)
{
    uint64_t *ecids = calloc(n, sizeof *ecids);
    for (size_t i = 0; i < n; i++)
        ecids[i] = first + i;
    int created, nruns = 0, rows = 0;
    uint64_t job = submit(s, key, ecids, n, NULL, 0, &created);
    assert_int_equal(store_job_cancel(s, job, 0, 10, &nruns, NULL, NULL), 0);
    assert_int_equal(nruns, (int)n);
    uint64_t before = store_vm_steps(s);
    assert_int_equal(store_records_missing(s, job, first + n / 2, count_row, &rows), 0);
    uint64_t steps = store_vm_steps(s) - before;
    assert_int_equal(rows, 1);
    free(ecids);
    return steps;
}

/* Each ended unit asks for its record: that must cost the same in a job of 10 runs as
 * in one of 2,000 (it read every run of the job, and a 10,000-unit job spent most of
 * its CPU there). */
static void one_units_record_lookup_does_not_grow_with_the_job(void **state)
{
    struct store *s = *state;
    uint64_t small = steps_for_one_record_lookup(s, "small", 0x10000, 10);
    assert_same_work(small, steps_for_one_record_lookup(s, "large", 0x20000, 2000));
}

/* A submit's plan: the selector's units counted per agent (each once, however often its
 * agent or port is named), named units too ("" when not connected), less the units held
 * or in a live job, which are skipped with the reason and the job. */
static void a_plan_counts_what_a_submit_matches_and_skips(void **state)
{
    struct store *s = *state;
    hello_with_units(s, "A", 8, 0x100);
    hello_with_units(s, "B", 8, 0x200);
    hello_with_units(s, "C", 8, 0x300);
    int created;
    uint64_t busy[] = { 0x100, 0x101 }, dead[] = { 0x200 };
    uint64_t live = submit(s, "live", busy, 2, NULL, 0, &created);
    uint64_t suspect = submit(s, "suspect", dead, 1, NULL, 0, &created);
    char sql[160];
    snprintf(sql, sizeof sql, "UPDATE unit_runs SET state = 'hardware_suspect', updated = 5000"
             " WHERE job = %llu", (unsigned long long)suspect);
    sql_probe(dbpath, sql);
    char *agents[] = { "A", "B", "A" }, *ports[] = { "C:1-1.2", "B:1-1.3" };
    uint64_t named[] = { 0x999 };
    struct job_spec spec = { .key = "p", .name = "p", .firmware = "/x.ipsw", .sha256 = "",
                             .agents = agents, .nagents = 3, .ports = ports, .nports = 2,
                             .ecids = named, .necids = 1, .erase = 1 };
    json_t *plan = NULL;
    char err[256];
    assert_int_equal(store_job_plan(s, &spec, &plan, err, sizeof err), 0);
    assert_int_equal(json_integer_value(json_object_get(plan, "matched")), 6 + 7 + 1 + 1);
    json_t *per = json_object_get(plan, "agents");
    assert_int_equal(json_integer_value(json_object_get(per, "A")), 6);
    assert_int_equal(json_integer_value(json_object_get(per, "B")), 7);
    assert_int_equal(json_integer_value(json_object_get(per, "C")), 1);
    assert_int_equal(json_integer_value(json_object_get(per, "")), 1);
    assert_string_equal(json_string_value(json_array_get(json_object_get(plan, "unconnected"), 0)),
                        "0x0000000000000999");
    assert_int_equal(json_integer_value(json_object_get(plan, "skipped_total")), 3);
    json_t *sk = json_object_get(plan, "skipped");
    assert_int_equal(json_array_size(sk), 3);
    const char *want[][2] = { { "0x0000000000000100", "in_job" }, { "0x0000000000000101", "in_job" },
                              { "0x0000000000000200", "held" } };
    uint64_t jobs[] = { live, live, suspect };
    for (size_t i = 0; i < 3; i++) {
        json_t *e = json_array_get(sk, i);
        assert_string_equal(json_string_value(json_object_get(e, "ecid")), want[i][0]);
        assert_string_equal(json_string_value(json_object_get(e, "why")), want[i][1]);
        assert_int_equal(json_integer_value(json_object_get(e, "job_id")), jobs[i]);
    }
    json_decref(plan);
}

/* The SQLite steps of the plan of a submit naming nagents agents of 8 units each. */
static uint64_t steps_for_a_plan(struct store *s, size_t nagents)
{
    char **names = calloc(nagents, sizeof *names);
    for (size_t i = 0; i < nagents; i++) {
        names[i] = malloc(24);
        snprintf(names[i], 24, "P%zu", i);
        hello_with_units(s, names[i], 8, 0x100000 * (nagents + 1) + 8 * i);
    }
    struct job_spec spec = { .key = "p", .name = "p", .firmware = "/x.ipsw", .sha256 = "",
                             .agents = names, .nagents = nagents, .erase = 1 };
    json_t *plan = NULL;
    char err[256];
    uint64_t before = store_vm_steps(s);
    assert_int_equal(store_job_plan(s, &spec, &plan, err, sizeof err), 0);
    uint64_t steps = store_vm_steps(s) - before;
    json_decref(plan);
    for (size_t i = 0; i < nagents; i++)
        free(names[i]);
    free(names);
    return steps;
}

/* A plan costs per unit what it costs at a small site: it tested each unit against the
 * whole list of agents named and looked up each unit's jobs one by one (200-350 ms in
 * the turn of a 10,000-unit submit). 8 agents and 64 agents, 8 units each. */
static void a_plans_cost_per_unit_does_not_grow_with_the_site(void **state)
{
    struct store *s = *state;
    uint64_t small = steps_for_a_plan(s, 8);
    uint64_t large = steps_for_a_plan(s, 64);
    assert_true(small > 0);
    assert_true(large * 8 <= small * 64 * 3 / 2); /* per unit at most 1.5 times as many */
}

static void documents_have_documented_keys(void **state)
{
    struct store *s = *state;
    hello_with_units(s, "A", 1, 0x7000);
    json_t *u = store_doc_units(s, NULL);
    json_t *row = json_array_get(json_object_get(u, "units"), 0);
    const char *ukeys[] = { "ecid", "product_type", "serial", "mode", "agent", "port", "label",
                            "present", "last_seen", "run_state" };
    for (size_t i = 0; i < sizeof ukeys / sizeof ukeys[0]; i++)
        assert_non_null(json_object_get(row, ukeys[i]));
    assert_string_equal(json_string_value(json_object_get(row, "ecid")), "0x0000000000007000");
    json_decref(u);
    json_t *p = store_doc_ports(s, NULL);
    row = json_array_get(json_object_get(p, "ports"), 0);
    const char *pkeys[] = { "agent", "path", "label", "hub", "bus", "depth", "power_switch",
                            "state", "ecid", "strikes" };
    for (size_t i = 0; i < sizeof pkeys / sizeof pkeys[0]; i++)
        assert_non_null(json_object_get(row, pkeys[i]));
    assert_string_equal(json_string_value(json_object_get(row, "state")), "free");
    json_decref(p);
}

/* Claims the single candidate and ends the attempt with a failure class. */
static void fail_attempt(struct store *s, const char *agent, const char *cls,
                         struct run_effects *fx)
{
    struct cands cs = { .n = 0 };
    store_sched_candidates(s, collect, &cs);
    assert_int_equal(cs.n, 1);
    Fr__AttemptRef ref = FR__ATTEMPT_REF__INIT;
    int erase;
    uint32_t n;
    assert_int_equal(store_claim_attempt(s, &cs.c[0], 3000, "/x.ipsw", "", &ref, &erase, &n), 0);
    Fr__JobResult res = FR__JOB_RESULT__INIT;
    res.ref = &ref;
    res.outcome = FR__OUTCOME__OUTCOME_FAILED;
    res.error_class = (char *)cls;
    res.error_text = "ERROR: test";
    struct policy_cfg pc;
    policy_cfg_default(&pc);
    assert_int_equal(apply(s, agent, &res, 4000, &pc, fx), 0);
    assert_int_equal(fx->match, ATTEMPT_LIVE);
}

static int ncands(struct store *s)
{
    struct cands cs = { .n = 0 };
    store_sched_candidates(s, collect, &cs);
    return (int)cs.n;
}

static void unpaired_unit_starts_once_put_in_dfu(void **state)
{
    struct store *s = *state;
    hello_with_units(s, "A", 1, 0x8000);
    uint64_t ecid = 0x8000;
    int created;
    submit(s, "op", &ecid, 1, NULL, 0, &created);
    struct run_effects fx;
    fail_attempt(s, "A", "needs_dfu", &fx);
    assert_string_equal(fx.next_state, "needs_operator");
    Fr__UnitInfo u = FR__UNIT_INFO__INIT;
    u.ecid = ecid;
    u.port_path = "1-1.1";
    u.mode = 4; /* normal: waits for the operator */
    Fr__PortEvent ev = FR__PORT_EVENT__INIT;
    ev.kind = FR__PORT_EVENT__KIND__MODE;
    ev.unit = &u;
    assert_int_equal(store_unit_event(s, "A", &ev, 5000), 0);
    assert_int_equal(ncands(s), 0);
    u.mode = 1; /* DFU by hand */
    assert_int_equal(store_unit_event(s, "A", &ev, 6000), 0);
    assert_int_equal(ncands(s), 1);
    /* the new attempt starts with a clean status line; the old error stays on its attempt */
    struct cands cs = { .n = 0 };
    store_sched_candidates(s, collect, &cs);
    Fr__AttemptRef ref = FR__ATTEMPT_REF__INIT;
    int erase;
    uint32_t n;
    assert_int_equal(store_claim_attempt(s, &cs.c[0], 7000, "/x.ipsw", "", &ref, &erase, &n), 0);
    json_t *doc = store_doc_status(s, ref.job_id, 1);
    json_t *run = json_array_get(json_object_get(doc, "runs"), 0);
    assert_string_equal(json_string_value(json_object_get(run, "error")), "");
    assert_int_equal(json_integer_value(json_object_get(run, "attempt")), 2);
    json_decref(doc);
    doc = store_doc_report(s, ref.job_id, 0, NULL);
    json_t *att = json_array_get(json_object_get(json_array_get(json_object_get(doc, "units"), 0),
                                                 "attempts"), 0);
    assert_string_equal(json_string_value(json_object_get(att, "error_class")), "needs_dfu");
    json_decref(doc);
}

static void lost_link_avoids_the_port_unless_the_job_allows_it(void **state)
{
    struct store *s = *state;
    hello_with_units(s, "A", 1, 0x9000);
    uint64_t ecid = 0x9000;
    int created;
    submit(s, "avoid", &ecid, 1, NULL, 0, &created);
    struct run_effects fx;
    fail_attempt(s, "A", "link_lost", &fx);
    assert_string_equal(fx.next_state, "needs_move");
    assert_true(fx.struck);
    assert_int_equal(ncands(s), 0); /* still on the port it failed on */

    hello_with_units(s, "B", 1, 0xA000); /* another agent: A's port is not quarantined by this */
    struct job_spec spec = { .key = "same", .name = "t", .firmware = "/x.ipsw", .sha256 = "",
                             .ecids = (uint64_t[]){ 0xA000 }, .necids = 1, .erase = 1,
                             .same_port = 1 };
    uint64_t id;
    char err[128];
    assert_int_equal(store_job_submit(s, &spec, 1, &id, &created, err, sizeof err), 0);
    fail_attempt(s, "B", "link_lost", &fx);
    assert_int_equal(ncands(s), 1); /* the job lets it retry where it is */
}

static void unusable_path_is_a_clear_error(void **state)
{
    struct store *s = NULL;
    char err[256] = "";
    assert_int_equal(store_open("/nonexistent-dir/x.db", &s, err, sizeof err), FR_ESTORE);
    assert_null(s);
    assert_non_null(strstr(err, "/nonexistent-dir/x.db"));
    /* a file that is not a database */
    char junk[] = "/tmp/fr-test-junk-XXXXXX";
    int fd = mkstemp(junk);
    assert_int_equal(write(fd, "this is not sqlite, not at all, no.\n", 36), 36);
    close(fd);
    assert_int_equal(store_open(junk, &s, err, sizeof err), FR_ESTORE);
    assert_non_null(strstr(err, junk));
    unlink(junk);
}

static void sql(const char *text)
{
    sqlite3 *db;
    assert_int_equal(sqlite3_open(dbpath, &db), SQLITE_OK);
    char *msg = NULL;
    if (sqlite3_exec(db, text, NULL, NULL, &msg) != SQLITE_OK)
        fail_msg("%s: %s", text, msg);
    sqlite3_close(db);
}

/* A store written by the first schema (no firmware per attempt) opens, is upgraded
 * in place, and its old attempts read their job's firmware. */
/* What schema 14 added, taken away again: a store as schema 13 left it. */
#define V14_DROPPED                                                                          \
    "DROP TRIGGER ports_added; DROP TRIGGER ports_changed; DROP TRIGGER units_added_to_port;"   \
    " DROP TRIGGER units_changed_on_port; DROP INDEX ports_seq; ALTER TABLE ports DROP COLUMN seq;"

static void a_version_1_store_is_upgraded_in_place(void **state)
{
    struct store *s = *state;
    hello_with_units(s, "A", 1, 0x3000);
    uint64_t ecid = 0x3000;
    int created, erase;
    uint32_t n;
    submit(s, "old", &ecid, 1, NULL, 0, &created);
    struct cands cs = { .n = 0 };
    store_sched_candidates(s, collect, &cs);
    Fr__AttemptRef ref = FR__ATTEMPT_REF__INIT;
    assert_int_equal(store_claim_attempt(s, &cs.c[0], 3000, "", "", &ref, &erase, &n), 0);
    store_close(&s);
    sql(V14_DROPPED
        " ALTER TABLE attempts DROP COLUMN firmware; ALTER TABLE attempts DROP COLUMN sha256;"
        " ALTER TABLE attempts DROP COLUMN token_hi; ALTER TABLE attempts DROP COLUMN token_lo;"
        " ALTER TABLE unit_runs DROP COLUMN refusals; ALTER TABLE unit_runs DROP COLUMN not_before;"
        " ALTER TABLE units DROP COLUMN reason; ALTER TABLE units DROP COLUMN arrived;"
        " DROP TABLE records; ALTER TABLE jobs DROP COLUMN operator;"
        " ALTER TABLE attempts DROP COLUMN fw_version; ALTER TABLE attempts DROP COLUMN fw_build;"
        " ALTER TABLE agents DROP COLUMN engine; ALTER TABLE agents DROP COLUMN libimobiledevice;"
        " DROP TRIGGER unit_runs_added; DROP TRIGGER unit_runs_changed; DROP TRIGGER units_moved;"
        " DROP INDEX unit_runs_seq; ALTER TABLE unit_runs DROP COLUMN seq;"
        " ALTER TABLE attempts DROP COLUMN unit_version; ALTER TABLE attempts DROP COLUMN unit_build;"
        " ALTER TABLE attempts DROP COLUMN verified; ALTER TABLE attempts DROP COLUMN verification;"
        " ALTER TABLE units DROP COLUMN imei;"
        " PRAGMA user_version = 1");
    char err[256];
    assert_int_equal(store_open(dbpath, &s, err, sizeof err), 0);
    *state = s;
    struct given g = { 0 };
    store_live_attempts(s, "A", NULL, note_given, &g);
    assert_int_equal(g.n, 1);
    assert_string_equal(g.fw[0], "/x.ipsw"); /* the job's */
    /* an attempt from before tokens keeps token 0, which its agent sends back */
    Fr__AttemptRef old = ref;
    old.token_hi = old.token_lo = 0;
    assert_int_equal(store_attempt_match(s, "A", &old), ATTEMPT_LIVE);
    assert_int_equal(store_attempt_match(s, "A", &ref), ATTEMPT_NONE);
}

static void a_store_from_a_newer_flashrackd_is_refused_untouched(void **state)
{
    struct store *s = *state;
    store_close(&s);
    sql("PRAGMA user_version = 99");
    char err[256];
    assert_int_equal(store_open(dbpath, &s, err, sizeof err), FR_ESTORE);
    assert_non_null(strstr(err, "schema version 99"));
    sql("PRAGMA user_version = 14"); /* nothing else was changed: it opens again */
    assert_int_equal(store_open(dbpath, &s, err, sizeof err), 0);
    *state = s;
}

/* A begin inside a transaction is a savepoint: its rollback undoes only its own part
 * (and its failure does not stop the outer commit); nothing is visible before the
 * outer commit. */
static void a_nested_rollback_undoes_only_its_part(void **state)
{
    struct store *s = *state;
    int64_t before = count_sql("SELECT COUNT(*) FROM events");
    assert_int_equal(store_begin(s), 0);
    assert_int_equal(store_event(s, 1, "test", 0, 0, "A", NULL, "outer"), 0);
    assert_int_equal(store_begin(s), 0);
    assert_int_equal(store_event(s, 2, "test", 0, 0, "A", NULL, "inner, undone"), 0);
    store_rollback(s);
    assert_int_equal(store_begin(s), 0);
    assert_int_equal(store_event(s, 3, "test", 0, 0, "A", NULL, "inner, kept"), 0);
    assert_int_equal(store_commit(s), 0);
    assert_true(store_in_txn(s));
    assert_int_equal(count_sql("SELECT COUNT(*) FROM events"), before); /* not committed yet */
    assert_int_equal(store_commit(s), 0);
    assert_false(store_in_txn(s));
    assert_int_equal(count_sql("SELECT COUNT(*) FROM events WHERE kind = 'test'"), 2);
    assert_int_equal(count_sql("SELECT COUNT(*) FROM events WHERE text = 'inner, undone'"), 0);
}

/* SQLite's temporary files this process holds open: it unlinks them at once, so
 * /proc/self/fd is where they show (their names begin "etilqs_"). */
static int open_temp_files(void)
{
    int n = 0;
    char link[64], target[512];
    for (int fd = 0; fd < 1024; fd++) {
        snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
        ssize_t len = readlink(link, target, sizeof target - 1);
        if (len > 0) {
            target[len] = 0;
            n += strstr(target, "etilqs_") != NULL;
        }
    }
    return n;
}

/* A savepoint's journal (every nested begin: a claim, each message of a turn) is kept in
 * memory: spilled to a temporary file it cost a pwrite of every page each savepoint
 * touched, which was most of a claim's time. */
static void a_savepoints_journal_stays_in_memory(void **state)
{
    struct store *s = *state;
    uint64_t ecids[2000];
    for (size_t i = 0; i < 2000; i++)
        ecids[i] = 0x900000 + i;
    int created = 0, n = 0;
    uint64_t job = submit(s, "big", ecids, 2000, NULL, 0, &created);
    int before = open_temp_files();
    assert_int_equal(store_begin(s), 0);
    /* a savepoint rewriting every page of the job's runs: far past SQLite's 64 KiB spill */
    assert_int_equal(store_begin(s), 0);
    assert_int_equal(store_job_cancel(s, job, 0, 10, &n, NULL, NULL), 0);
    assert_int_equal(n, 2000);
    int during = open_temp_files();
    assert_int_equal(store_commit(s), 0);
    assert_int_equal(store_commit(s), 0);
    assert_int_equal(during, before);
}

/* A batch of claims (the scheduler's chunk) in one savepoint: one lease epoch each, in
 * order, a token each, references a JobAssign can carry, and the catalog's build kept. */
static void a_batch_of_claims_gets_an_epoch_and_token_each(void **state)
{
    struct store *s = *state;
    hello_with_units(s, "A", 3, 0x2100);
    uint64_t ecids[] = { 0x2100, 0x2101, 0x2102 };
    int created;
    submit(s, "batch", ecids, 3, NULL, 0, &created);
    struct cands cs = { .n = 0 };
    assert_int_equal(store_sched_candidates(s, collect, &cs), 0);
    assert_int_equal(cs.n, 3);
    struct claim cl[3];
    for (int i = 0; i < 3; i++)
        cl[i] = (struct claim){ .c = &cs.c[i], .firmware = "/x.ipsw", .sha = "" };
    cl[2].fw_version = "18.2";
    cl[2].fw_build = "22C152";
    assert_int_equal(store_claim_attempts(s, cl, 3, 3000), 0);
    for (int i = 0; i < 3; i++) {
        assert_ptr_equal(cl[i].ref.base.descriptor, &fr__attempt_ref__descriptor);
        assert_true(fr__attempt_ref__get_packed_size(&cl[i].ref) > 0);
        assert_int_equal(cl[i].n, 1);
        assert_int_equal(cl[i].erase, 1);
        assert_int_equal(cl[i].ref.ecid, cs.c[i].ecid);
        if (i > 0) {
            assert_int_equal(cl[i].ref.epoch, cl[i - 1].ref.epoch + 1);
            assert_true(cl[i].ref.token_hi != cl[i - 1].ref.token_hi);
        }
    }
    assert_int_equal(count_sql("SELECT COUNT(*) FROM unit_runs WHERE state = 'preflight'"), 3);
    assert_int_equal(count_sql("SELECT COUNT(DISTINCT epoch) FROM attempts"), 3);
    assert_int_equal(count_sql("SELECT COUNT(*) FROM attempts WHERE fw_build = '22C152'"
                               " AND fw_version = '18.2'"), 1);
    /* the next claim's epoch comes after the batch's */
    hello_with_units(s, "B", 1, 0x2200);
    uint64_t more[] = { 0x2200 };
    submit(s, "after", more, 1, NULL, 0, &created);
    cs.n = 0;
    assert_int_equal(store_sched_candidates(s, collect, &cs), 0);
    assert_int_equal(cs.n, 1);
    Fr__AttemptRef r = FR__ATTEMPT_REF__INIT;
    int erase;
    uint32_t n;
    assert_int_equal(store_claim_attempt(s, &cs.c[0], 3000, "/x.ipsw", "", &r, &erase, &n), 0);
    assert_int_equal(r.epoch, cl[2].ref.epoch + 1);
}

/* A second controller on a live store is refused before it writes anything. */
static void a_store_in_use_is_refused(void **state)
{
    struct store *s = *state, *second = NULL;
    uint64_t epoch = store_epoch(s);
    char err[512] = "";
    assert_int_equal(store_open(dbpath, &second, err, sizeof err), FR_EBUSY);
    assert_null(second);
    assert_non_null(strstr(err, dbpath));
    assert_non_null(strstr(err, "in use"));
    assert_int_equal(count_sql("SELECT value FROM meta WHERE key = 'controller_epoch'"), (int64_t)epoch);
    store_close(&s);
    assert_int_equal(store_open(dbpath, &s, err, sizeof err), 0); /* free again once closed */
    *state = s;
}

/* More running attempts than any fixed buffer: a Hello that lists none interrupts all. */
static void a_hello_interrupts_every_lost_attempt(void **state)
{
    struct store *s = *state;
    enum { N = 1100 };
    Fr__UnitInfo *units = calloc(N, sizeof *units), **up = calloc(N, sizeof *up);
    uint64_t *ecids = calloc(N, sizeof *ecids);
    char (*paths)[16] = calloc(N, sizeof *paths);
    for (int i = 0; i < N; i++) {
        fr__unit_info__init(&units[i]);
        snprintf(paths[i], sizeof paths[i], "1-%d", i + 1);
        units[i].ecid = ecids[i] = 0x100000 + (uint64_t)i;
        units[i].port_path = paths[i];
        up[i] = &units[i];
    }
    Fr__Hello h = FR__HELLO__INIT;
    h.hostname = "A";
    h.units = up;
    h.n_units = N;
    assert_int_equal(store_agent_hello(s, "A", &h, 1000, NULL), 0);
    int created, erase, interrupted = 0;
    uint32_t n;
    submit(s, "many", ecids, N, NULL, 0, &created);
    struct sched_candidate c = { .job = 1 };
    snprintf(c.agent, sizeof c.agent, "A");
    for (int i = 0; i < N; i++) {
        c.ecid = ecids[i];
        snprintf(c.port, sizeof c.port, "%s", paths[i]);
        Fr__AttemptRef ref = FR__ATTEMPT_REF__INIT;
        assert_int_equal(store_claim_attempt(s, &c, 2000, "/x.ipsw", "", &ref, &erase, &n), 0);
        assert_int_equal(store_attempt_running(s, &ref), 0);
    }
    assert_int_equal(store_agent_hello(s, "A", &h, 3000, &interrupted), 0);
    assert_int_equal(interrupted, N);
    assert_int_equal(count_sql("SELECT COUNT(*) FROM attempts WHERE state = 'running'"), 0);
    free(units);
    free(up);
    free(ecids);
    free(paths);
}

/* --backup: a consistent copy of a live store, its WAL included; a plain copy of the main
 * file alone is not one (the recent commits are still in the WAL). */
static void a_backup_of_a_live_store_has_its_latest_commits(void **state)
{
    struct store *s = *state;
    uint64_t ecid = 0xC000;
    int created;
    submit(s, "kept", &ecid, 1, NULL, 0, &created);
    char bak[96], cp[160], err[512];
    snprintf(bak, sizeof bak, "%s.bak", dbpath);
    assert_int_equal(store_backup(dbpath, bak, err, sizeof err), 0);
    snprintf(cp, sizeof cp, "cp %s %s.cp", dbpath, dbpath);
    assert_int_equal(system(cp), 0);
    sqlite3 *db;
    sqlite3_stmt *st;
    const char *copies[] = { bak, NULL };
    char plain[96];
    snprintf(plain, sizeof plain, "%s.cp", dbpath);
    copies[1] = plain;
    int64_t jobs[2] = { -1, -1 };
    for (int i = 0; i < 2; i++) {
        assert_int_equal(sqlite3_open(copies[i], &db), SQLITE_OK);
        if (sqlite3_prepare_v2(db, "SELECT COUNT(*) FROM jobs WHERE key = 'kept'", -1, &st, NULL) == SQLITE_OK) {
            if (sqlite3_step(st) == SQLITE_ROW)
                jobs[i] = sqlite3_column_int64(st, 0);
            sqlite3_finalize(st);
        }
        sqlite3_close(db);
        unlink(copies[i]);
    }
    assert_int_equal(jobs[0], 1);
    assert_true(jobs[1] != 1);
    /* a destination that cannot be written is a clear error */
    assert_int_equal(store_backup(dbpath, "/nonexistent-dir/b.db", err, sizeof err), FR_ESTORE);
    assert_non_null(strstr(err, "/nonexistent-dir/b.db"));
}

/* A refused attempt is not handed out again at once: the run waits (doubling), and after
 * RUNS_REFUSALS_HOLD refusals in a row it is held, saying why, until its unit is plugged
 * in again. */
static void refusals_back_off_then_hold_the_run(void **state)
{
    struct store *s = *state;
    hello_with_units(s, "A", 1, 0xD000);
    uint64_t ecid = 0xD000;
    int created, erase;
    uint32_t n;
    submit(s, "refuse", &ecid, 1, NULL, 0, &created);
    int64_t delays[RUNS_REFUSALS_HOLD];
    for (int i = 0; i < RUNS_REFUSALS_HOLD; i++) {
        struct cands cs = { .n = 0 };
        assert_int_equal(store_sched_candidates(s, collect, &cs), 0);
        assert_int_equal(cs.n, 1);
        Fr__AttemptRef ref = FR__ATTEMPT_REF__INIT;
        assert_int_equal(store_claim_attempt(s, &cs.c[0], 3000, "/x.ipsw", "", &ref, &erase, &n), 0);
        uint64_t now = fr_time_wall_ms();
        assert_int_equal(store_begin(s), 0);
        assert_int_equal(runs_refused(s, &ref, "no free slot", 1000, now, &delays[i]), 0);
        assert_int_equal(store_commit(s), 0);
        assert_int_equal(ncands(s), 0); /* not at once */
        if (delays[i] >= 0) /* the backoff over: it is a candidate again */
            sql("UPDATE unit_runs SET not_before = 0 WHERE not_before < 9000000000000000000");
    }
    assert_true(delays[0] == 1000 && delays[1] == 2000 && delays[2] == 4000 && delays[3] == 8000);
    assert_true(delays[RUNS_REFUSALS_HOLD - 1] == -1);
    assert_int_equal(ncands(s), 0);
    json_t *doc = store_doc_status(s, 0, 1);
    const char *status = json_string_value(json_object_get(json_array_get(json_object_get(doc, "runs"), 0),
                                                           "status"));
    assert_non_null(strstr(status, "held: refused 5 times"));
    json_decref(doc);
    assert_int_equal(count_sql("SELECT COUNT(*) FROM events WHERE kind = 'held'"), 1);
    /* plugged in again: it is tried again */
    Fr__UnitInfo u = FR__UNIT_INFO__INIT;
    u.ecid = ecid;
    u.port_path = "1-1.1";
    u.mode = 2;
    Fr__PortEvent ev = FR__PORT_EVENT__INIT;
    ev.kind = FR__PORT_EVENT__KIND__ATTACH;
    ev.unit = &u;
    assert_int_equal(store_unit_event(s, "A", &ev, 9000), 0);
    assert_int_equal(ncands(s), 1);
}

/* A unit its agent cannot use (UnitInfo.reason) is listed needing an operator and
 * never a candidate; reported again without a reason, it is one. */
static void a_unit_with_a_reason_waits_for_an_operator(void **state)
{
    struct store *s = *state;
    hello_with_units(s, "A", 1, 0x5000);
    uint64_t ecid = 0x5000;
    int created;
    submit(s, "denied", &ecid, 1, NULL, 0, &created);
    Fr__UnitInfo u = FR__UNIT_INFO__INIT;
    u.ecid = ecid;
    u.port_path = "1-1.1";
    u.mode = 1;
    u.reason = "permission denied: install deploy/udev/60-flashrack.rules";
    Fr__PortEvent ev = FR__PORT_EVENT__INIT;
    ev.kind = FR__PORT_EVENT__KIND__ATTACH;
    ev.unit = &u;
    assert_int_equal(store_unit_event(s, "A", &ev, 5000), 0);
    assert_int_equal(ncands(s), 0);
    json_t *doc = store_doc_units(s, NULL);
    json_t *row = json_array_get(json_object_get(doc, "units"), 0);
    assert_string_equal(json_string_value(json_object_get(row, "state")), "needs_operator");
    assert_string_equal(json_string_value(json_object_get(row, "reason")), u.reason);
    json_decref(doc);
    doc = store_doc_ports(s, NULL);
    row = json_array_get(json_object_get(doc, "ports"), 0);
    assert_string_equal(json_string_value(json_object_get(row, "state")), "needs_operator");
    assert_string_equal(json_string_value(json_object_get(row, "reason")), u.reason);
    json_decref(doc);
    u.reason = ""; /* the rule installed, plugged in again */
    assert_int_equal(store_unit_event(s, "A", &ev, 6000), 0);
    assert_int_equal(ncands(s), 1);
    doc = store_doc_units(s, NULL);
    row = json_array_get(json_object_get(doc, "units"), 0);
    assert_string_equal(json_string_value(json_object_get(row, "state")), "ready");
    json_decref(doc);
}

/* A unit's IMEI is kept once an agent has read it: a later report without one (the unit
 * in recovery mode, or not paired any more) does not erase it. */
static void a_units_imei_is_kept_once_read(void **state)
{
    struct store *s = *state;
    hello_with_units(s, "A", 1, 0x5100);
    Fr__UnitInfo u = FR__UNIT_INFO__INIT;
    u.ecid = 0x5100;
    u.port_path = "1-1.1";
    u.mode = 4;
    u.imei = "352099001761481";
    Fr__PortEvent ev = FR__PORT_EVENT__INIT;
    ev.kind = FR__PORT_EVENT__KIND__MODE;
    ev.unit = &u;
    assert_int_equal(store_unit_event(s, "A", &ev, 5000), 0);
    u.mode = 2;
    u.imei = "";
    assert_int_equal(store_unit_event(s, "A", &ev, 6000), 0);
    json_t *doc = store_doc_unit(s, 0x5100);
    assert_string_equal(json_string_value(json_object_get(json_object_get(doc, "unit"), "imei")),
                        "352099001761481");
    json_decref(doc);
}

/* no_device twice with the unit in recovery mode: the run waits for an operator and is
 * not assigned again until the unit arrives again (it was tried every few seconds for
 * ever, the unit still being in recovery mode). */
static void no_device_twice_holds_until_the_unit_is_plugged_in_again(void **state)
{
    struct store *s = *state;
    hello_with_units(s, "A", 1, 0x6000);
    uint64_t ecid = 0x6000;
    int created;
    submit(s, "nodev", &ecid, 1, NULL, 0, &created);
    Fr__UnitInfo u = FR__UNIT_INFO__INIT;
    u.ecid = ecid;
    u.port_path = "1-1.1";
    u.mode = 2; /* recovery, as the agent sees it; the engine finds no device */
    Fr__PortEvent ev = FR__PORT_EVENT__INIT;
    ev.kind = FR__PORT_EVENT__KIND__MODE;
    ev.unit = &u;
    assert_int_equal(store_unit_event(s, "A", &ev, 2500), 0);
    struct run_effects fx;
    fail_attempt(s, "A", "no_device", &fx);
    assert_string_equal(fx.next_state, "waiting_unit"); /* once more in place */
    fail_attempt(s, "A", "no_device", &fx);
    assert_string_equal(fx.next_state, "needs_operator");
    assert_int_equal(ncands(s), 0);
    assert_int_equal(store_unit_event(s, "A", &ev, 5000), 0); /* reported again, as it was */
    assert_int_equal(ncands(s), 0);
    ev.kind = FR__PORT_EVENT__KIND__DETACH; /* the operator plugs it in again */
    assert_int_equal(store_unit_event(s, "A", &ev, 6000), 0);
    ev.kind = FR__PORT_EVENT__KIND__ATTACH;
    assert_int_equal(store_unit_event(s, "A", &ev, 7000), 0);
    assert_int_equal(ncands(s), 1);
}

/* One unit of agent A in a job of its own, its attempt claimed and accepted. */
static Fr__AttemptRef running_attempt(struct store *s, const char *key, uint64_t ecid)
{
    hello_with_units(s, "A", 1, ecid);
    int created, erase;
    uint32_t n;
    submit(s, key, &ecid, 1, NULL, 0, &created);
    struct cands cs = { .n = 0 };
    assert_int_equal(store_sched_candidates(s, collect, &cs), 0);
    assert_int_equal(cs.n, 1);
    Fr__AttemptRef ref = FR__ATTEMPT_REF__INIT;
    assert_int_equal(store_claim_attempt(s, &cs.c[0], 3000, "/x.ipsw", "", &ref, &erase, &n), 0);
    assert_int_equal(store_run_accepted(s, &ref), 0);
    return ref;
}

/* The rows one progress report of ref writes, and checks it is the newest change. */
static uint64_t rows_of_a_report(struct store *s, const Fr__AttemptRef *ref, const char *state,
                                 int step, float fraction)
{
    Fr__JobProgress p = FR__JOB_PROGRESS__INIT;
    p.ref = (Fr__AttemptRef *)ref;
    p.state = (char *)state;
    p.step = step;
    p.fraction = fraction;
    p.status = "working";
    int64_t before = count_sql("SELECT MAX(seq) FROM unit_runs");
    uint64_t rows = store_rows_changed(s);
    assert_int_equal(store_attempt_progress(s, ref, &p, 5000), 0);
    rows = store_rows_changed(s) - rows;
    char q[160];
    snprintf(q, sizeof q, "SELECT seq FROM unit_runs WHERE job = %llu AND ecid = %llu",
             (unsigned long long)ref->job_id, (unsigned long long)ref->ecid);
    assert_int_equal(count_sql(q), before + 1); /* above every run's, by one */
    snprintf(q, sizeof q, "SELECT step FROM unit_runs WHERE job = %llu AND ecid = %llu"
             " AND state = '%s'", (unsigned long long)ref->job_id, (unsigned long long)ref->ecid, state);
    assert_int_equal(count_sql(q), step);
    return rows;
}

/* A progress report is one write of its run, the change number stamped in it: the
 * trigger of v10 made it two (the writer's UPDATE, then the trigger's), for 40,000
 * reports a second at 10,000 units. A watch still sees it, once. */
static void a_progress_report_is_one_write_of_its_run(void **state)
{
    struct store *s = *state;
    Fr__AttemptRef ref = running_attempt(s, "progress", 0xE000);
    int64_t seq = 0;
    json_decref(watch_changes(s, ref.job_id, &seq, 10));
    assert_int_equal(rows_of_a_report(s, &ref, "restoring", 3, 0.25f), 1); /* a new state */
    assert_int_equal(rows_of_a_report(s, &ref, "restoring", 4, 0.5f), 1);  /* the same one */
    json_t *runs = watch_changes(s, ref.job_id, &seq, 10);
    assert_int_equal(json_array_size(runs), 1);
    assert_int_equal(json_integer_value(json_object_get(json_array_get(runs, 0), "step")), 4);
    json_decref(runs);
    /* a terminal state comes only with a result, and an ended run takes no report */
    Fr__JobProgress p = FR__JOB_PROGRESS__INIT;
    p.ref = &ref;
    p.state = "done";
    p.status = "";
    assert_int_equal(store_attempt_progress(s, &ref, &p, 5000), FR_EINVAL);
    sql("UPDATE unit_runs SET state = 'failed' WHERE ecid = 57344");
    p.state = "restoring";
    assert_int_equal(store_attempt_progress(s, &ref, &p, 5000), 0);
    assert_int_equal(count_sql("SELECT COUNT(*) FROM unit_runs WHERE ecid = 57344 AND state = 'failed'"), 1);
}

/* What one report of a running attempt in its run's state costs: statements run, rows
 * written, VM steps; checks it was written. */
struct cost {
    uint64_t statements, rows, steps;
};

static struct cost cost_of_a_report(struct store *s, const Fr__AttemptRef *ref, int step, int want)
{
    Fr__JobProgress p = FR__JOB_PROGRESS__INIT;
    p.ref = (Fr__AttemptRef *)ref;
    p.state = "restoring";
    p.step = step;
    p.fraction = 0.5f;
    p.status = "working";
    struct cost c = { store_statements_run(s), store_rows_changed(s), store_vm_steps(s) };
    assert_int_equal(store_progress_running(s, "A", ref, &p, 5000), want);
    c = (struct cost){ store_statements_run(s) - c.statements, store_rows_changed(s) - c.rows,
                       store_vm_steps(s) - c.steps };
    char q[160];
    snprintf(q, sizeof q, "SELECT step FROM unit_runs WHERE job = %llu AND ecid = %llu",
             (unsigned long long)ref->job_id, (unsigned long long)ref->ecid);
    if (want == 1)
        assert_int_equal(count_sql(q), step);
    return c;
}

/* A report of a running attempt in its run's state is one statement: the run's UPDATE, with
 * the attempt matched inside it (no SELECT to match first, no UPDATE of the attempt that
 * changes nothing), one row written, and the same work with 1 or 97 runs restoring.
 * Anything else (a new state, an attempt not running, another agent's or epoch's ref)
 * is not written by it, and goes the whole way. */
static void a_report_in_its_state_is_one_statement_flat_as_runs_grow(void **state)
{
    struct store *s = *state;
    Fr__AttemptRef ref = running_attempt(s, "flat", 0xE700);
    assert_int_equal(rows_of_a_report(s, &ref, "restoring", 1, 0.1f), 1); /* its new state */
    /* the whole way: the match's SELECT, the attempt's UPDATE that changes nothing, the
     * run's UPDATE; SQLite counts the run's UPDATE twice (its trigger's program runs too) */
    uint64_t before = store_statements_run(s);
    assert_int_equal(store_attempt_match(s, "A", &ref), ATTEMPT_LIVE);
    Fr__JobProgress whole = FR__JOB_PROGRESS__INIT;
    whole.ref = &ref;
    whole.state = "restoring";
    whole.status = "working";
    assert_int_equal(store_attempt_progress(s, &ref, &whole, 5000), 0);
    assert_int_equal(store_statements_run(s) - before, 4);
    struct cost few = cost_of_a_report(s, &ref, 2, 1);
    assert_int_equal(few.statements, 2); /* the run's UPDATE alone */
    assert_int_equal(few.rows, 1);
    uint64_t others[96]; /* and 96 more restoring, on 12 other agents */
    for (size_t i = 0; i < 96; i++)
        others[i] = 0xE800 + i;
    for (int i = 0; i < 12; i++) {
        char agent[8];
        snprintf(agent, sizeof agent, "B%d", i);
        hello_with_units(s, agent, 8, others[8 * i]);
    }
    int created, erase, running = 0;
    uint32_t n;
    submit(s, "flat-others", others, 96, NULL, 0, &created);
    for (struct cands cs = { .n = 16 }; cs.n > 0;) {
        cs.n = 0;
        assert_int_equal(store_sched_candidates(s, collect, &cs), 0);
        for (size_t i = 0; i < cs.n; i++, running++) {
            Fr__AttemptRef other = FR__ATTEMPT_REF__INIT;
            assert_int_equal(store_claim_attempt(s, &cs.c[i], 3000, "/x.ipsw", "", &other, &erase, &n), 0);
            assert_int_equal(store_run_accepted(s, &other), 0);
            assert_int_equal(rows_of_a_report(s, &other, "restoring", 1, 0.1f), 1);
        }
    }
    assert_int_equal(running, 96);
    struct cost many = cost_of_a_report(s, &ref, 3, 1);
    assert_int_equal(many.statements, 2);
    assert_int_equal(many.rows, 1);
    assert_same_work(few.steps, many.steps);
    /* not written here: another state, another token, another agent, an attempt assigned */
    Fr__JobProgress p = FR__JOB_PROGRESS__INIT;
    p.ref = &ref;
    p.state = "verifying";
    p.status = "";
    assert_int_equal(store_progress_running(s, "A", &ref, &p, 5000), 0);
    p.state = "done";
    assert_int_equal(store_progress_running(s, "A", &ref, &p, 5000), FR_EINVAL);
    Fr__AttemptRef forged = ref;
    forged.token_lo ^= 1;
    assert_int_equal(cost_of_a_report(s, &forged, 9, 0).rows, 0);
    assert_int_equal(store_progress_running(s, "B", &ref, &p, 5000) <= 0, 1);
    sql("UPDATE attempts SET state = 'assigned' WHERE id = (SELECT MAX(id) FROM attempts WHERE ecid = 59136)");
    assert_int_equal(cost_of_a_report(s, &ref, 9, 0).rows, 0);
    assert_int_equal(count_sql("SELECT step FROM unit_runs WHERE ecid = 59136"), 3);
}

/* A store of schema 12 is upgraded to 13: the trigger leaves the runs a writer stamped
 * alone, and still numbers every other write (a cancel is one of those). */
static void a_version_12_store_stamps_each_write_once(void **state)
{
    struct store *s = *state;
    Fr__AttemptRef ref = running_attempt(s, "v12", 0xE100);
    store_close(&s);
    sql(V14_DROPPED " DROP TRIGGER unit_runs_changed; CREATE TRIGGER unit_runs_changed AFTER UPDATE OF state,"
        " attempts, error_class, error_text, started, ended, step, fraction, status, updated"
        " ON unit_runs BEGIN UPDATE unit_runs SET seq = (SELECT COALESCE(MAX(seq), 0) FROM unit_runs)"
        " + 1 WHERE rowid = NEW.rowid; END; PRAGMA user_version = 12");
    char err[256];
    assert_int_equal(store_open(dbpath, &s, err, sizeof err), 0);
    *state = s;
    assert_int_equal(count_sql("PRAGMA user_version"), 14);
    assert_int_equal(rows_of_a_report(s, &ref, "restoring", 2, 0.1f), 1);
    int64_t seq = count_sql("SELECT MAX(seq) FROM unit_runs");
    int nruns = 0;
    assert_int_equal(store_job_cancel(s, ref.job_id, 0, 6000, &nruns, NULL, NULL), 0);
    assert_int_equal(count_sql("SELECT seq FROM unit_runs WHERE ecid = 57600"), seq + 1);
}

static int64_t port_seq(const char *path)
{
    char q[160];
    snprintf(q, sizeof q, "SELECT seq FROM ports WHERE agent = 'A' AND path = '%s'", path);
    return count_sql(q);
}

/* A port is stamped with the next change number when what its tile shows changes (its
 * own columns, or the unit on it), each port with its own, and not when nothing did. */
static void a_port_is_stamped_when_what_its_tile_shows_changes(void **state)
{
    struct store *s = *state;
    hello_with_units(s, "A", 3, 0x100);
    int64_t seq = count_sql("SELECT MAX(seq) FROM ports");
    assert_int_equal(count_sql("SELECT COUNT(DISTINCT seq) FROM ports WHERE seq > 0"), 3);
    sql("UPDATE ports SET label = label, strikes = strikes, hub = hub; UPDATE units SET last_seen = 5,"
        " serial = 'S', product_type = product_type");
    assert_int_equal(count_sql("SELECT MAX(seq) FROM ports"), seq);
    sql("UPDATE ports SET strikes = 2 WHERE path = '1-1.3'");
    assert_int_equal(port_seq("1-1.3"), seq + 1);
    sql("UPDATE units SET port = '1-1.2' WHERE ecid = 256"); /* moved: the port left and the new one */
    assert_int_equal(port_seq("1-1.1"), seq + 2);
    assert_int_equal(port_seq("1-1.2"), seq + 3);
    sql("UPDATE units SET product_type = 'iPhone13,2' WHERE ecid = 257");
    assert_int_equal(port_seq("1-1.2"), seq + 4);
    Fr__UnitInfo u = FR__UNIT_INFO__INIT;
    u.ecid = 0x102;
    u.port_path = "1-1.3";
    Fr__PortEvent ev = FR__PORT_EVENT__INIT;
    ev.kind = FR__PORT_EVENT__KIND__DETACH;
    ev.unit = &u;
    assert_int_equal(store_unit_event(s, "A", &ev, 6000), 0);
    assert_int_equal(port_seq("1-1.3"), seq + 5);
    assert_int_equal(count_sql("SELECT COUNT(DISTINCT seq) FROM ports"), 3);
}

/* A Hello stamps only the ports whose tile changes: one that says what the store holds
 * stamps none and writes only the agent, its ports and its units' last_seen; a unit it no
 * longer lists stamps that port once, and the unit back stamps it once more. */
static void a_hello_stamps_only_the_ports_that_change(void **state)
{
    struct store *s = *state;
    hello_with_units(s, "A", 3, 0x300);
    int64_t seq = count_sql("SELECT MAX(seq) FROM ports");
    uint64_t rows = store_rows_changed(s);
    hello_with_units(s, "A", 3, 0x300);
    assert_int_equal(count_sql("SELECT MAX(seq) FROM ports"), seq);
    /* the agent's row, its 3 ports' and its 3 units' (last_seen): no trigger wrote */
    assert_int_equal(store_rows_changed(s) - rows, 1 + 3 + 3);
    hello_with_units(s, "A", 2, 0x300); /* the unit on 1-1.3 is gone */
    assert_int_equal(port_seq("1-1.3"), seq + 1);
    assert_int_equal(count_sql("SELECT MAX(seq) FROM ports"), seq + 1);
    assert_int_equal(count_sql("SELECT COUNT(*) FROM units WHERE present = 1"), 2);
    assert_int_equal(count_sql("SELECT present FROM units WHERE ecid = 770"), 0);
    hello_with_units(s, "A", 3, 0x300); /* and back */
    assert_int_equal(port_seq("1-1.3"), seq + 2);
    assert_int_equal(count_sql("SELECT MAX(seq) FROM ports"), seq + 2);
    assert_int_equal(count_sql("SELECT COUNT(*) FROM units WHERE present = 1"), 3);
    hello_with_units(s, "A", 0, 0x300); /* none left */
    assert_int_equal(count_sql("SELECT COUNT(*) FROM units WHERE present = 1"), 0);
    assert_int_equal(count_sql("SELECT MAX(seq) FROM ports"), seq + 5);
}

/* A store of schema 13 is upgraded to 14: its ports numbered, and stamped from there. */
static void a_version_13_store_numbers_its_ports(void **state)
{
    struct store *s = *state;
    hello_with_units(s, "A", 2, 0x200);
    store_close(&s);
    sql(V14_DROPPED " PRAGMA user_version = 13");
    char err[256];
    assert_int_equal(store_open(dbpath, &s, err, sizeof err), 0);
    *state = s;
    assert_int_equal(count_sql("PRAGMA user_version"), 14);
    assert_int_equal(count_sql("SELECT COUNT(*) FROM ports WHERE seq = rowid"), 2);
    sql("UPDATE ports SET quarantined = 1 WHERE path = '1-1.1'");
    assert_int_equal(port_seq("1-1.1"), 3);
}

/* The store's work for one result that ends its run, in a site with nother other jobs
 * running (their units absent); the job is done after it. */
static uint64_t steps_for_a_result(struct store *s, const char *key, uint64_t ecid, size_t nother)
{
    for (size_t i = 0; i < nother; i++) {
        char k[64];
        uint64_t absent = ecid + 0x100 + i;
        int created;
        snprintf(k, sizeof k, "%s-other-%zu", key, i);
        submit(s, k, &absent, 1, NULL, 0, &created);
    }
    Fr__AttemptRef ref = running_attempt(s, key, ecid);
    Fr__JobResult res = FR__JOB_RESULT__INIT;
    res.ref = &ref;
    res.outcome = FR__OUTCOME__OUTCOME_SUCCESS;
    struct policy_cfg pc;
    policy_cfg_default(&pc);
    struct run_effects fx;
    uint64_t before = store_vm_steps(s);
    assert_int_equal(apply(s, "A", &res, 4000, &pc, &fx), 0);
    uint64_t steps = store_vm_steps(s) - before;
    assert_int_equal(fx.match, ATTEMPT_LIVE);
    char q[96];
    snprintf(q, sizeof q, "SELECT state = 'done' FROM jobs WHERE id = %llu", (unsigned long long)ref.job_id);
    assert_int_equal(count_sql(q), 1);
    return steps;
}

/* A result settles only the job of the run it ended: it looked at every running job (an
 * UPDATE of jobs with two subqueries each), after every result. */
static void a_results_work_does_not_grow_with_the_running_jobs(void **state)
{
    struct store *s = *state;
    uint64_t few = steps_for_a_result(s, "few", 0xE200, 1);
    assert_same_work(few, steps_for_a_result(s, "many", 0xE400, 60));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(a_progress_report_is_one_write_of_its_run, setup, teardown),
        cmocka_unit_test_setup_teardown(a_report_in_its_state_is_one_statement_flat_as_runs_grow, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(a_version_12_store_stamps_each_write_once, setup, teardown),
        cmocka_unit_test_setup_teardown(a_port_is_stamped_when_what_its_tile_shows_changes, setup, teardown),
        cmocka_unit_test_setup_teardown(a_hello_stamps_only_the_ports_that_change, setup, teardown),
        cmocka_unit_test_setup_teardown(a_version_13_store_numbers_its_ports, setup, teardown),
        cmocka_unit_test_setup_teardown(a_results_work_does_not_grow_with_the_running_jobs, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(no_device_twice_holds_until_the_unit_is_plugged_in_again, setup, teardown),
        cmocka_unit_test_setup_teardown(a_units_imei_is_kept_once_read, setup, teardown),
        cmocka_unit_test_setup_teardown(a_unit_with_a_reason_waits_for_an_operator, setup, teardown),
        cmocka_unit_test_setup_teardown(epoch_grows_at_each_open, setup, teardown),
        cmocka_unit_test_setup_teardown(a_version_1_store_is_upgraded_in_place, setup, teardown),
        cmocka_unit_test_setup_teardown(a_store_from_a_newer_flashrackd_is_refused_untouched, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(submit_is_idempotent, setup, teardown),
        cmocka_unit_test_setup_teardown(a_savepoints_journal_stays_in_memory, setup, teardown),
        cmocka_unit_test_setup_teardown(a_batch_of_claims_gets_an_epoch_and_token_each, setup, teardown),
        cmocka_unit_test_setup_teardown(selector_expansion_takes_only_the_units_named, setup, teardown),
        cmocka_unit_test_setup_teardown(documents_come_in_pages_that_cover_them_once, setup, teardown),
        cmocka_unit_test_setup_teardown(a_page_of_large_rows_ends_at_its_byte_size, setup, teardown),
        cmocka_unit_test_setup_teardown(runs_ports_and_report_pages_cover_them_once_in_order, setup, teardown),
        cmocka_unit_test_setup_teardown(a_change_between_pages_shifts_no_other_row, setup, teardown),
        cmocka_unit_test_setup_teardown(a_watch_reads_every_run_then_only_what_changed, setup, teardown),
        cmocka_unit_test_setup_teardown(a_watch_snapshot_reads_every_run_in_key_order, setup, teardown),
        cmocka_unit_test_setup_teardown(a_jobs_totals_count_each_state, setup, teardown),
        cmocka_unit_test_setup_teardown(a_unit_joins_the_earliest_selector_job_only, setup, teardown),
        cmocka_unit_test_setup_teardown(claims_get_increasing_epochs_and_stale_results_are_not_applied, setup, teardown),
        cmocka_unit_test_setup_teardown(reconcile_interrupts_attempts_the_agent_lost, setup, teardown),
        cmocka_unit_test_setup_teardown(results_apply_only_with_the_attempts_own_agent_ecid_and_token,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(selector_jobs_take_units_up_to_count, setup, teardown),
        cmocka_unit_test_setup_teardown(the_whole_site_is_looked_at_a_page_at_a_time, setup, teardown),
        cmocka_unit_test_setup_teardown(totals_count_the_matches_not_yet_expanded, setup, teardown),
        cmocka_unit_test_setup_teardown(cancel_marks_runs_and_job, setup, teardown),
        cmocka_unit_test_setup_teardown(a_plan_counts_what_a_submit_matches_and_skips, setup, teardown),
        cmocka_unit_test_setup_teardown(a_plans_cost_per_unit_does_not_grow_with_the_site, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(one_units_record_lookup_does_not_grow_with_the_job, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(documents_have_documented_keys, setup, teardown),
        cmocka_unit_test_setup_teardown(unpaired_unit_starts_once_put_in_dfu, setup, teardown),
        cmocka_unit_test_setup_teardown(lost_link_avoids_the_port_unless_the_job_allows_it, setup, teardown),
        cmocka_unit_test(unusable_path_is_a_clear_error),
        cmocka_unit_test_setup_teardown(a_store_in_use_is_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(a_nested_rollback_undoes_only_its_part, setup, teardown),
        cmocka_unit_test_setup_teardown(refusals_back_off_then_hold_the_run, setup, teardown),
        cmocka_unit_test_setup_teardown(a_hello_interrupts_every_lost_attempt, setup, teardown),
        cmocka_unit_test_setup_teardown(a_backup_of_a_live_store_has_its_latest_commits, setup,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
