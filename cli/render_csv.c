/* render_csv — documents as CSV; see render_csv.h. */
#include "render_csv.h"

#include <stdio.h>
#include <string.h>

#include "csv.h"

/* One value as CSV text ("" for a missing key or an object). */
static void value_text(struct rval v, char *buf, size_t len)
{
    if (v.type == RVAL_STRING)
        snprintf(buf, len, "%s", v.s);
    else if (v.type == RVAL_INTEGER)
        snprintf(buf, len, "%lld", v.i);
    else if (v.type == RVAL_REAL)
        snprintf(buf, len, "%g", v.d);
    else if (v.type == RVAL_TRUE || v.type == RVAL_FALSE)
        snprintf(buf, len, "%s", v.type == RVAL_TRUE ? "true" : "false");
    else
        buf[0] = '\0';
}

static void header(const char *const *cols, FILE *out)
{
    for (size_t i = 0; cols[i]; i++)
        csv_field(out, cols[i], i == 0);
    csv_end(out);
}

/* A column "a.b": b in the row's object a (read into sub when it is text). */
static struct rval nested(struct rview *row, const char *col, const char *dot, struct rview *sub)
{
    char key[64];
    snprintf(key, sizeof key, "%.*s", (int)(dot - col), col);
    struct rval parent = rview_get(row, key);
    if (parent.obj || parent.type != RVAL_OTHER)
        return rval_json(json_object_get(parent.obj, dot + 1));
    rview_text(sub, parent.span);
    return rview_get(sub, dot + 1);
}

/* The fields cols of row (empty fields when row is NULL). */
static void fields(struct rview *row, const char *const *cols, int first, FILE *out)
{
    struct rview sub;
    rview_init(&sub);
    for (size_t i = 0; cols[i]; i++) {
        char text[4096];
        const char *dot = strchr(cols[i], '.');
        struct rval v = !row ? rval_json(NULL) : dot ? nested(row, cols[i], dot, &sub) : rview_get(row, cols[i]);
        value_text(v, text, sizeof text);
        csv_field(out, text, first && i == 0);
    }
    rview_release(&sub);
}

static void body(const struct rview_src *src, const char *const *cols, FILE *out)
{
    struct rview r;
    rview_init(&r);
    for (size_t i = 0; i < src->n; i++) {
        rview_src_row(src, i, &r);
        fields(&r, cols, 1, out);
        csv_end(out);
    }
    rview_release(&r);
}

static void rows(const struct rview_src *src, const char *const *cols, FILE *out)
{
    header(cols, out);
    body(src, cols, out);
}

static const char *const unit_cols[] = { "ecid", "product_type", "serial", "mode", "agent", "port",
                                         "label", "present", "last_seen", "run_state", NULL };
static const char *const port_cols[] = { "agent", "path", "label", "hub", "bus", "depth", "power_switch",
                                         "state", "ecid", "strikes", "reason", NULL };
static const char *const run_cols[] = { "job_id", "ecid", "product_type", "state", "agent", "port",
                                        "label", "attempt", "step", "fraction", "status", "error_class",
                                        "error", "started", "updated", NULL };

void render_csv_units_rows(const json_t *doc, const struct rview_src *src, FILE *out)
{
    (void)doc;
    rows(src, unit_cols, out);
}

void render_csv_units(const json_t *doc, FILE *out)
{
    struct rview_src src = rview_src_json(json_object_get(doc, "units"));
    rows(&src, unit_cols, out);
}

static void ports_head(const json_t *doc, FILE *out)
{
    (void)doc;
    header(port_cols, out);
}

static void ports_body(const json_t *doc, const struct rview_src *src, FILE *out)
{
    (void)doc;
    body(src, port_cols, out);
}

const struct render_parts render_csv_ports_parts = { ports_head, ports_body, NULL };

void render_csv_ports_rows(const json_t *doc, const struct rview_src *src, FILE *out)
{
    render_parts_all(&render_csv_ports_parts, doc, src, out);
}

void render_csv_ports(const json_t *doc, FILE *out)
{
    struct rview_src src = rview_src_json(json_object_get(doc, "ports"));
    rows(&src, port_cols, out);
}

void render_csv_jobs(const json_t *doc, FILE *out)
{
    static const char *const cols[] = { "id", "name", "state", "firmware", "erase", "created", "finished",
                                        "count", "standing", "totals.units", "totals.waiting",
                                        "totals.active", "totals.done", "totals.failed",
                                        "totals.cancelled", NULL };
    struct rview_src src = rview_src_json(json_object_get(doc, "jobs"));
    rows(&src, cols, out);
}

void render_csv_runs_rows(const json_t *doc, const struct rview_src *src, FILE *out)
{
    (void)doc;
    rows(src, run_cols, out);
}

void render_csv_runs(const json_t *doc, FILE *out)
{
    struct rview_src src = rview_src_json(json_object_get(doc, "runs"));
    rows(&src, run_cols, out);
}

static void report_head(const json_t *doc, FILE *out)
{
    (void)doc;
    static const char *const head[] = { "job_id", "ecid", "product_type", "serial", "unit_state",
                                        "unit_started", "unit_ended", "attempt", "agent", "port",
                                        "label", "started", "ended", "duration_s", "outcome",
                                        "error_class", "error_text", "exit_code", "firmware",
                                        "ios_version", "ios_build", "ipsw_sha256", "log", "verified",
                                        "verification", NULL };
    header(head, out);
}

static void report_body(const json_t *doc, const struct rview_src *units, FILE *out)
{
    static const char *const report_cols[] = { "ecid", "product_type", "serial", "state", "started",
                                               "ended", NULL };
    static const char *const att_cols[] = { "n", "agent", "port", "label", "started", "ended",
                                            "duration_s", "outcome", "error_class", "error_text",
                                            "exit_code", "firmware", "version", "build", "sha256",
                                            "log_path", "verified", "verification", NULL };
    char job[32];
    value_text(rval_json(json_object_get(json_object_get(doc, "job"), "id")), job, sizeof job);
    struct rview u, a;
    rview_init(&u);
    rview_init(&a);
    for (size_t i = 0; i < units->n; i++) {
        rview_src_row(units, i, &u);
        struct rval av = rview_get(&u, "attempts");
        struct rview_src atts = av.type == RVAL_OTHER ? rview_src_of(av) : rview_src_json(NULL);
        for (size_t k = 0; k < (atts.n ? atts.n : 1); k++) {
            if (atts.n) /* else empty attempt fields */
                rview_src_row(&atts, k, &a);
            csv_field(out, job, 1);
            fields(&u, report_cols, 0, out);
            fields(atts.n ? &a : NULL, att_cols, 0, out);
            csv_end(out);
        }
        rview_src_release(&atts);
    }
    rview_release(&a);
    rview_release(&u);
}

const struct render_parts render_csv_report_parts = { report_head, report_body, NULL };

void render_csv_report_rows(const json_t *doc, const struct rview_src *units, FILE *out)
{
    render_parts_all(&render_csv_report_parts, doc, units, out);
}

void render_csv_report(const json_t *doc, FILE *out)
{
    struct rview_src units = rview_src_json(json_object_get(doc, "units"));
    render_csv_report_rows(doc, &units, out);
}
