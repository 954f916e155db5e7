/* records — building, signing and storing a unit run's sanitization record; see records.h. */
#include "records.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fr_err.h"
#include "fr_log.h"
#include "fr_turn.h"
#include "fr_models.h"
#include "fr_time.h"
#include "fr_types.h"

int records_open(struct records *r, const char *key_path, const char *site, const char *destination,
                 char *err, size_t errlen)
{
    memset(r, 0, sizeof *r);
    snprintf(r->site, sizeof r->site, "%s", site);
    snprintf(r->destination, sizeof r->destination, "%s", destination);
    if (access(key_path, F_OK) < 0) {
        char pub[1100];
        snprintf(pub, sizeof pub, "%s.pub", key_path);
        int rc = fr_sign_key_generate(key_path, pub, 0, err, errlen);
        if (rc < 0)
            return rc;
        fr_info("records", "made the record-signing key '%s' (public key '%s')", key_path, pub);
    }
    int rc = fr_sign_key_load(key_path, &r->key, err, errlen);
    if (rc == 0)
        rc = fr_sign_key_id(r->key, r->key_id);
    if (rc == 0)
        rc = fr_signer_new(r->key, &r->signer, err, errlen);
    return rc;
}

void records_release(struct records *r)
{
    fr_signer_free(r->signer);
    r->signer = NULL;
    EVP_PKEY_free(r->key);
    r->key = NULL;
    free(r->due);
    r->due = NULL;
    r->head = r->ndue = r->cap = 0;
}

static json_t *iso(json_int_t ms)
{
    char buf[32] = "";
    if (ms > 0)
        fr_time_iso8601((uint64_t)ms, buf, sizeof buf);
    return json_string(buf);
}

static json_int_t duration_s(json_int_t started, json_int_t ended)
{
    return started > 0 && ended >= started ? (ended - started + 500) / 1000 : 0;
}

static const char *str(const json_t *o, const char *key)
{
    const char *v = json_string_value(json_object_get(o, key));
    return v ? v : "";
}

static json_int_t num(const json_t *o, const char *key)
{
    return json_integer_value(json_object_get(o, key));
}

static json_t *hex_id(json_int_t v, int digits)
{
    char buf[24];
    snprintf(buf, sizeof buf, "0x%0*llX", digits, (unsigned long long)v);
    return json_string(buf);
}

static json_t *device_of(const json_t *f)
{
    const struct fr_model *m = fr_model_find(str(f, "product_type"));
    return json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:o, s:o}", "manufacturer", RECORDS_MANUFACTURER,
                     "model", str(f, "product_type"), "marketing_name", m ? m->name : "",
                     "serial", str(f, "serial"), "imei", *str(f, "imei") ? str(f, "imei") : RECORDS_IMEI_UNKNOWN,
                     "ecid", str(f, "ecid"),
                     "chip_id", hex_id(num(f, "cpid"), 4), "board_id", hex_id(num(f, "bdid"), 2));
}

/* The firmware an attempt was given: the file or URL, its hash and, when the catalog
 * named it, the iOS version and build. */
static json_t *firmware_of(const json_t *a)
{
    return json_pack("{s:s, s:s, s:s, s:s}", "file", a ? str(a, "firmware") : "", "sha256",
                     a ? str(a, "sha256") : "", "version", a ? str(a, "version") : "", "build",
                     a ? str(a, "build") : "");
}

static json_t *attempt_of(const json_t *a)
{
    return json_pack("{s:I, s:s, s:s, s:s, s:s, s:s, s:I, s:s, s:s, s:s, s:I, s:s, s:o}",
                     "n", num(a, "n"), "station", str(a, "agent"), "port", str(a, "label"),
                     "port_path", str(a, "port"), "started", str(a, "started"), "ended", str(a, "ended"),
                     "duration_s", num(a, "duration_s"), "outcome", str(a, "outcome"),
                     "error_class", str(a, "error_class"), "error_text", str(a, "error_text"),
                     "exit_code", num(a, "exit_code"), "log", str(a, "log_path"),
                     "firmware", firmware_of(a));
}

/* The attempt the run's result rests on: the successful one, else the last. */
static const json_t *deciding_attempt(const json_t *attempts)
{
    size_t i;
    const json_t *a, *last = NULL;
    json_array_foreach(attempts, i, a) {
        if (!strcmp(str(a, "outcome"), "success"))
            return a;
        last = a;
    }
    return last;
}

/* How the restore was verified, and what that found (the deciding attempt's verdict). */
static json_t *verification_of(const json_t *a)
{
    const char *result = a ? str(a, "verification") : "";
    int read = a && (!strcmp(str(a, "verified"), "matches") || !strcmp(str(a, "verified"), "does not match"));
    return json_pack("{s:s, s:s, s:s}", "method", read ? RECORDS_VERIFY_METHOD : "none",
                     "status", a && *str(a, "verified") ? str(a, "verified") : "not verified",
                     "result", *result ? result : "not verified: the unit was not restored");
}

static const char *result_of(const char *state, int erase, const json_t *last)
{
    if (last && !strcmp(str(last, "verified"), "does not match"))
        return "verification failed: the unit does not run the firmware that was installed";
    if (strcmp(state, "done") != 0)
        return "not sanitized";
    return erase ? "sanitized" : "restored, not sanitized (update restore)";
}

json_t *records_build(const json_t *f, const struct records_info *info)
{
    const json_t *attempts = json_object_get(f, "attempts"), *last = deciding_attempt(attempts);
    int erase = json_is_true(json_object_get(f, "erase"));
    json_t *list = json_array();
    size_t i;
    const json_t *a;
    json_array_foreach(attempts, i, a)
        json_array_append_new(list, attempt_of(a));
    json_int_t st = num(f, "started_ms"), en = num(f, "ended_ms");
    char agent_version[96] = "";
    if (last && *str(last, "agent_version"))
        snprintf(agent_version, sizeof agent_version, "flashrack-agent %s", str(last, "agent_version"));
    return json_pack(
        "{s:s, s:{s:I, s:s}, s:o, s:s, s:{s:s, s:s}, s:o, s:{s:s, s:s, s:s, s:s}, s:o,"
        " s:s, s:s, s:s, s:s, s:s, s:o, s:o, s:I, s:o, s:s, s:s, s:s, s:s, s:s, s:s}",
        "format", "flashrack-sanitization-record/1",
        "job", "id", num(f, "job_id"), "name", str(f, "job_name"),
        "device", device_of(f),
        "media_type", RECORDS_MEDIA,
        "sanitization", "method", erase ? RECORDS_METHOD : "none: an update restore keeps the user's data",
        "category", erase ? "purge" : "none",
        "firmware", firmware_of(last),
        "tools", "flashrack", "flashrackd " FR_VERSION, "agent", agent_version,
        "engine", last ? str(last, "engine") : "", "libimobiledevice", last ? str(last, "libimobiledevice") : "",
        "verification", verification_of(last),
        "operator", str(f, "operator"), "site", info->site,
        "station", last ? str(last, "agent") : "", "port", last ? str(last, "label") : "",
        "port_path", last ? str(last, "port") : "",
        "started", iso(st), "ended", iso(en), "duration_s", duration_s(st, en),
        "attempts", list,
        "result", result_of(str(f, "state"), erase, last), "state", str(f, "state"),
        "error_class", str(f, "error_class"), "error_text", str(f, "error_text"),
        "destination", info->destination, "signed_at", info->signed_at);
}

/* ---- a batch: read and built on the loop, signed (on the pool), stored on the loop ---- */

/* One record of a batch: its run, its canonical text, its signed line. */
struct record_item {
    struct store_run run;
    char *canon, *line;
    size_t len;
};

struct record_batch {
    uv_work_t req;               /* the pool's: its data is the batch */
    struct records *r;
    struct fr_signer *signer;    /* the batch's own, made for it (a signer is one thread's) */
    int own_signer, on_pool;
    uint64_t now_ms;
    size_t n, max;
    int rc;                      /* the signing's: 0 or the first failure (err says why) */
    char err[256];
    uint64_t sign_cpu_ns;        /* the signing thread's CPU for it */
    struct record_item item[];
};

static struct record_batch *batch_new(struct records *r, size_t max, uint64_t now_ms, int own_signer)
{
    struct record_batch *b = calloc(1, sizeof *b + max * sizeof b->item[0]);
    if (!b)
        return NULL;
    b->r = r;
    b->max = max;
    b->now_ms = now_ms;
    b->req.data = b;
    b->own_signer = own_signer;
    b->signer = r->signer;
    if (own_signer && fr_signer_new(r->key, &b->signer, b->err, sizeof b->err) < 0) {
        free(b);
        return NULL;
    }
    return b;
}

static void batch_free(struct record_batch *b)
{
    if (!b)
        return;
    for (size_t i = 0; i < b->n; i++) {
        free(b->item[i].canon);
        free(b->item[i].line);
    }
    if (b->own_signer)
        fr_signer_free(b->signer);
    free(b);
}

/* A run the store says is missing, into b once: two entries may name the same run (every
 * missing record and a cancel's; a unit's end and its job's cancel), and the store cannot
 * tell, as nothing of b is stored before all of it is read. */
static int add_one(void *arg, uint64_t job, uint64_t ecid)
{
    struct record_batch *b = arg;
    for (size_t i = 0; i < b->n; i++)
        if (b->item[i].run.job == job && b->item[i].run.ecid == ecid)
            return 0;
    if (b->n == b->max)
        return 1; /* the batch is full: the rest on the next one */
    b->item[b->n++].run = (struct store_run){ job, ecid };
    return 0;
}

/* What is due, taken into b until it is full: every missing record first when that was
 * asked for, then the entries at head. An entry leaves the queue only when all of its runs
 * are in a batch, as the store says: none twice (in the store, or in b), none for a run
 * whose end rolled back. */
static int collect(struct records *r, struct store *s, struct record_batch *b)
{
    int rc = r->all_due ? store_records_missing(s, 0, 0, add_one, b) : 0;
    if (rc == 0)
        r->all_due = 0;
    while (rc == 0 && r->head < r->ndue) {
        struct record_due d = r->due[r->head];
        rc = store_records_missing(s, d.job, d.ecid, add_one, b);
        if (rc == 0)
            r->head++;
    }
    return rc < 0 ? rc : 0;
}

/* Each record's canonical text, from its run's facts (read for the whole batch at once). */
static int prepare(struct records *r, struct store *s, struct record_batch *b)
{
    json_t **facts = calloc(b->n ? b->n : 1, sizeof *facts);
    struct store_run *runs = malloc((b->n ? b->n : 1) * sizeof *runs);
    int rc = facts && runs ? 0 : FR_ENOMEM;
    for (size_t i = 0; rc == 0 && i < b->n; i++)
        runs[i] = b->item[i].run;
    if (rc == 0 && (rc = store_record_facts_batch(s, runs, b->n, facts)) < 0)
        fr_error("records", "cannot read the %zu runs of a batch for their records: %s", b->n,
                 store_errmsg(s));
    char at[32], err[256] = "";
    fr_time_iso8601(b->now_ms, at, sizeof at);
    struct records_info info = { r->site, r->destination, at };
    for (size_t i = 0; rc == 0 && i < b->n; i++) {
        struct record_item *it = &b->item[i];
        json_t *rec = facts[i] ? records_build(facts[i], &info) : NULL;
        rc = rec ? fr_canon_json(rec, &it->canon, &it->len, err, sizeof err) : FR_ESTORE;
        json_decref(rec);
        if (rc < 0) {
            char e[FR_ECID_STRLEN];
            fr_ecid_format(it->run.ecid, e, sizeof e);
            fr_error("records", "job %llu unit %s: cannot read the run for its record%s%s",
                     (unsigned long long)it->run.job, e, *err ? ": " : "", err);
        }
    }
    for (size_t i = 0; facts && i < b->n; i++)
        json_decref(facts[i]);
    free(facts);
    free(runs);
    return rc;
}

/* Signs every record of b: on a pool thread, or on the loop for the synchronous paths. */
static void sign_all(struct record_batch *b)
{
    uint64_t start = fr_time_thread_cpu_ns();
    for (size_t i = 0; b->rc == 0 && i < b->n; i++)
        b->rc = fr_signer_sign_canon(b->signer, b->item[i].canon, b->item[i].len, &b->item[i].line,
                                     b->err, sizeof b->err);
    b->sign_cpu_ns = fr_time_thread_cpu_ns() - start;
}

/* The batch's lines, inserted in the open transaction of s. */
static int insert_all(struct records *r, struct store *s, const struct record_batch *b)
{
    for (size_t i = 0; i < b->n; i++) {
        const struct record_item *it = &b->item[i];
        int rc = store_record_insert(s, it->run.job, it->run.ecid, r->key_id, it->line, b->now_ms);
        if (rc < 0) {
            char e[FR_ECID_STRLEN];
            fr_ecid_format(it->run.ecid, e, sizeof e);
            fr_error("records", "job %llu unit %s: cannot write its record: %s",
                     (unsigned long long)it->run.job, e, store_errmsg(s));
            return rc;
        }
    }
    return 0;
}

static int due(const struct records *r)
{
    return (int)(r->ndue - r->head) + r->all_due;
}

int records_write_due(struct records *r, struct store *s, size_t max, uint64_t now_ms)
{
    if (r->batch)
        return FR_EBUSY; /* the pool's batch first: its runs are not written yet */
    if (r->head == r->ndue && !r->all_due)
        return 0;
    size_t head = r->head;
    int all_due = r->all_due;
    struct record_batch *b = batch_new(r, max, now_ms, 0);
    int rc = b ? store_begin(s) : FR_ENOMEM, began = rc == 0;
    if (rc == 0)
        rc = collect(r, s, b);
    if (rc == 0)
        rc = prepare(r, s, b);
    if (rc == 0) {
        sign_all(b);
        if ((rc = b->rc) < 0)
            fr_error("records", "cannot sign a record: %s", b->err);
    }
    if (rc == 0)
        rc = insert_all(r, s, b);
    if (rc == 0)
        rc = store_commit(s);
    if (rc < 0) {
        if (began) /* a begin that failed opened nothing: no rollback of the enclosing turn */
            store_rollback(s);
        r->head = head; /* all of the batch is due again */
        r->all_due = all_due;
        batch_free(b);
        return rc;
    }
    r->written += b->n;
    batch_free(b);
    if (r->head == r->ndue)
        r->head = r->ndue = 0;
    return due(r);
}

int records_catch_up(struct records *r, struct store *s, uint64_t now_ms)
{
    uint64_t before = r->written;
    r->all_due = 1;
    int rc;
    while ((rc = records_write_due(r, s, RECORDS_PER_TURN, now_ms)) > 0)
        ;
    return rc < 0 ? rc : (int)(r->written - before);
}

static void on_timer(uv_timer_t *t);

static void arm(struct records *r, uint64_t after_ms)
{
    if (r->started && !uv_is_closing((uv_handle_t *)&r->timer))
        uv_timer_start(&r->timer, on_timer, after_ms, 0);
}

/* Noted in the transaction that ends the run; written after it commits. A note that
 * finds no room asks for every missing record of the store instead: nothing is lost. */
static void note(struct records *r, uint64_t job, uint64_t ecid)
{
    if (r->head == r->ndue)
        r->head = r->ndue = 0;
    if (r->ndue == r->cap) {
        size_t cap = r->cap ? 2 * r->cap : 256;
        struct record_due *v = realloc(r->due, cap * sizeof *v);
        if (v) {
            r->due = v;
            r->cap = cap;
        }
    }
    if (r->ndue < r->cap)
        r->due[r->ndue++] = (struct record_due){ job, ecid };
    else
        r->all_due = 1;
    if (r->started && !uv_is_active((uv_handle_t *)&r->timer))
        arm(r, 0);
}

static int on_runs_ended(void *arg, struct store *s, uint64_t job, uint64_t ecid, uint64_t now_ms)
{
    (void)s;
    (void)now_ms;
    note(arg, job, ecid);
    return 0;
}

void records_attach(struct records *r, struct store *s)
{
    store_on_run_ended(s, on_runs_ended, r);
}

/* ---- on the loop: the timer takes a batch, the pool signs it, after-work stores it ---- */

static void finish_close(struct records *r);

static void sign_work(uv_work_t *req)
{
    sign_all(req->data);
}

/* On the loop, once the pool has signed b (or the close cancelled it before it began):
 * its records in one transaction. A batch that cannot be stored leaves every missing
 * record due, as the store will say: nothing is lost, nothing is written twice. */
static void after_sign(uv_work_t *req, int status)
{
    struct record_batch *b = req->data;
    struct records *r = b->r;
    uint64_t start = fr_time_thread_cpu_ns();
    r->batch = NULL;
    int rc = status < 0 ? FR_ECANCELED : b->rc;
    if (rc < 0 && status == 0)
        fr_error("records", "cannot sign a record: %s", b->err);
    int began = rc == 0 && (rc = store_begin(r->store)) == 0;
    if (rc == 0 && (rc = insert_all(r, r->store, b)) == 0)
        rc = store_commit(r->store);
    if (rc < 0 && began)
        store_rollback(r->store);
    if (rc < 0)
        r->all_due = 1;
    else
        r->written += b->n;
    r->signed_on_pool += rc < 0 || !b->on_pool ? 0 : b->n;
    r->pool_cpu_ns += b->sign_cpu_ns;
    loop_count_add(&r->store_work, rc < 0 ? 0 : b->n, fr_time_thread_cpu_ns() - start);
    batch_free(b);
    if (r->closing)
        finish_close(r);
    else if (due(r))
        arm(r, rc < 0 ? RECORDS_RETRY_MS : FR_TURN_NEXT_MS); /* after the loop has polled again */
}

/* A batch of what is due, read and built here and handed to the pool to sign. */
static int submit(struct records *r, uint64_t now_ms, size_t *taken)
{
    size_t head = r->head;
    int all_due = r->all_due;
    struct record_batch *b = batch_new(r, RECORDS_PER_TURN, now_ms, 1);
    int rc = b ? collect(r, r->store, b) : FR_ENOMEM;
    if (rc == 0 && b->n > 0)
        rc = prepare(r, r->store, b);
    if (rc < 0 || b->n == 0) {
        if (rc < 0) {
            r->head = head; /* all of the batch is due again */
            r->all_due = all_due;
        }
        batch_free(b);
        return rc;
    }
    if (r->head == r->ndue)
        r->head = r->ndue = 0;
    *taken = b->n;
    r->batch = b;
    b->on_pool = 1;
    if (uv_queue_work(r->loop, &b->req, sign_work, after_sign) < 0) {
        b->on_pool = 0;
        sign_all(b); /* no pool: signed here, stored as the pool's would be */
        after_sign(&b->req, 0);
    }
    return 0;
}

static void on_timer(uv_timer_t *t)
{
    struct records *r = t->data;
    if (r->batch || r->closing)
        return; /* after_sign arms it again */
    uint64_t start = fr_time_thread_cpu_ns();
    size_t taken = 0;
    int rc = due(r) ? submit(r, fr_time_wall_ms(), &taken) : 0;
    loop_count_add(&r->work, taken, fr_time_thread_cpu_ns() - start);
    if (rc < 0)
        arm(r, RECORDS_RETRY_MS);
    else if (!r->batch && due(r))
        arm(r, FR_TURN_NEXT_MS);
}

void records_start(struct records *r, uv_loop_t *loop, struct store *s)
{
    uv_timer_init(loop, &r->timer);
    r->timer.data = r;
    r->loop = loop;
    r->store = s;
    r->started = 1;
}

/* What is still due, written here; then the timer closes. */
static void finish_close(struct records *r)
{
    while (records_write_due(r, r->store, RECORDS_PER_TURN, fr_time_wall_ms()) > 0)
        ;
    if (r->signed_on_pool)
        fr_info("records", "%llu records signed on libuv's thread pool, %llu ms of its CPU",
                (unsigned long long)r->signed_on_pool, (unsigned long long)(r->pool_cpu_ns / 1000000));
    if (r->started && !uv_is_closing((uv_handle_t *)&r->timer))
        uv_close((uv_handle_t *)&r->timer, NULL);
}

void records_close(struct records *r, struct store *s)
{
    r->store = s;
    r->closing = 1;
    if (r->batch) /* cancelled if it has not begun; either way after_sign finishes the close */
        uv_cancel((uv_req_t *)&r->batch->req);
    else
        finish_close(r);
}
