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

/* A batch: the records written so far and how many more it may write. */
struct write_ctx {
    struct records *r;
    struct store *s;
    uint64_t now_ms;
    size_t left, written;
};

static int write_one(void *arg, uint64_t job, uint64_t ecid)
{
    struct write_ctx *w = arg;
    if (w->left == 0)
        return 1; /* the batch is full: the rest on the next one */
    char err[256] = "", at[32], e[FR_ECID_STRLEN];
    fr_ecid_format(ecid, e, sizeof e);
    json_t *facts = store_record_facts(w->s, job, ecid);
    if (!facts) {
        fr_error("records", "job %llu unit %s: cannot read the run for its record",
                 (unsigned long long)job, e);
        return FR_ESTORE;
    }
    fr_time_iso8601(w->now_ms, at, sizeof at);
    struct records_info info = { w->r->site, w->r->destination, at };
    json_t *rec = records_build(facts, &info);
    json_decref(facts);
    char *line = NULL;
    int rc = rec ? fr_signer_sign(w->r->signer, rec, &line, err, sizeof err) : FR_ENOMEM;
    json_decref(rec);
    if (rc == 0)
        rc = store_record_insert(w->s, job, ecid, w->r->key_id, line, w->now_ms);
    free(line);
    if (rc < 0) {
        fr_error("records", "job %llu unit %s: cannot write its record: %s", (unsigned long long)job, e,
                 *err ? err : store_errmsg(w->s));
        return rc;
    }
    w->left--;
    w->written++;
    return 0;
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

/* What is due, written until the batch is full: every missing record first when that was
 * asked for, then the entries at head. An entry leaves the queue only when all of its runs
 * have their record, as the store says: none twice, none for a run whose end rolled back. */
static int write_batch(struct records *r, struct store *s, struct write_ctx *w)
{
    int rc = r->all_due ? store_records_missing(s, 0, 0, write_one, w) : 0;
    if (rc == 0)
        r->all_due = 0;
    while (rc == 0 && r->head < r->ndue) {
        struct record_due d = r->due[r->head];
        rc = store_records_missing(s, d.job, d.ecid, write_one, w);
        if (rc == 0)
            r->head++;
    }
    return rc < 0 ? rc : 0;
}

int records_write_due(struct records *r, struct store *s, size_t max, uint64_t now_ms)
{
    if (r->head == r->ndue && !r->all_due)
        return 0;
    size_t head = r->head;
    int all_due = r->all_due;
    struct write_ctx w = { r, s, now_ms, max, 0 };
    int rc = store_begin(s);
    if (rc == 0)
        rc = write_batch(r, s, &w);
    if (rc == 0)
        rc = store_commit(s);
    if (rc < 0) {
        store_rollback(s);
        r->head = head; /* all of the batch is due again */
        r->all_due = all_due;
        return rc;
    }
    r->written += w.written;
    if (r->head == r->ndue)
        r->head = r->ndue = 0;
    return (int)(r->ndue - r->head) + r->all_due;
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

static void on_timer(uv_timer_t *t)
{
    struct records *r = t->data;
    int rc = records_write_due(r, r->store, RECORDS_PER_TURN, fr_time_wall_ms());
    if (rc > 0)
        arm(r, FR_TURN_NEXT_MS); /* after the loop has polled its sockets again */
    else if (rc < 0)
        arm(r, RECORDS_RETRY_MS);
}

void records_start(struct records *r, uv_loop_t *loop, struct store *s)
{
    uv_timer_init(loop, &r->timer);
    r->timer.data = r;
    r->store = s;
    r->started = 1;
}

void records_close(struct records *r, struct store *s)
{
    while (records_write_due(r, s, RECORDS_PER_TURN, fr_time_wall_ms()) > 0)
        ;
    if (r->started && !uv_is_closing((uv_handle_t *)&r->timer))
        uv_close((uv_handle_t *)&r->timer, NULL);
}
