/* render_csv — documents as CSV; see render_csv.h. */
#include "render_csv.h"

#include <stdio.h>
#include <string.h>

#include "csv.h"

/* One value as CSV text ("" for a missing key or an object). */
static void value_text(const json_t *v, char *buf, size_t len)
{
    if (json_is_string(v))
        snprintf(buf, len, "%s", json_string_value(v));
    else if (json_is_integer(v))
        snprintf(buf, len, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
    else if (json_is_real(v))
        snprintf(buf, len, "%g", json_real_value(v));
    else if (json_is_boolean(v))
        snprintf(buf, len, "%s", json_is_true(v) ? "true" : "false");
    else
        buf[0] = '\0';
}

static void header(const char *const *cols, FILE *out)
{
    for (size_t i = 0; cols[i]; i++)
        csv_field(out, cols[i], i == 0);
    csv_end(out);
}

/* The fields cols of row, then (when more) those of more: a column "a.b" is b in
 * row's object a. */
static void fields(const json_t *row, const char *const *cols, int first, FILE *out)
{
    for (size_t i = 0; cols[i]; i++) {
        char text[4096], key[64];
        const char *dot = strchr(cols[i], '.');
        const json_t *v;
        if (dot) {
            snprintf(key, sizeof key, "%.*s", (int)(dot - cols[i]), cols[i]);
            v = json_object_get(json_object_get(row, key), dot + 1);
        } else {
            v = json_object_get(row, cols[i]);
        }
        value_text(v, text, sizeof text);
        csv_field(out, text, first && i == 0);
    }
}

static void rows(const json_t *list, const char *const *cols, FILE *out)
{
    header(cols, out);
    size_t i;
    const json_t *r;
    json_array_foreach(list, i, r) {
        fields(r, cols, 1, out);
        csv_end(out);
    }
}

void render_csv_units(const json_t *doc, FILE *out)
{
    static const char *const cols[] = { "ecid", "product_type", "serial", "mode", "agent", "port",
                                        "label", "present", "last_seen", "run_state", NULL };
    rows(json_object_get(doc, "units"), cols, out);
}

void render_csv_ports(const json_t *doc, FILE *out)
{
    static const char *const cols[] = { "agent", "path", "label", "hub", "bus", "depth", "power_switch",
                                        "state", "ecid", "strikes", "reason", NULL };
    rows(json_object_get(doc, "ports"), cols, out);
}

void render_csv_jobs(const json_t *doc, FILE *out)
{
    static const char *const cols[] = { "id", "name", "state", "firmware", "erase", "created", "finished",
                                        "count", "standing", "totals.units", "totals.waiting",
                                        "totals.active", "totals.done", "totals.failed",
                                        "totals.cancelled", NULL };
    rows(json_object_get(doc, "jobs"), cols, out);
}

void render_csv_runs(const json_t *doc, FILE *out)
{
    static const char *const cols[] = { "job_id", "ecid", "product_type", "state", "agent", "port",
                                        "label", "attempt", "step", "fraction", "status", "error_class",
                                        "error", "started", "updated", NULL };
    rows(json_object_get(doc, "runs"), cols, out);
}

void render_csv_report(const json_t *doc, FILE *out)
{
    static const char *const unit_cols[] = { "ecid", "product_type", "serial", "state", "started",
                                             "ended", NULL };
    static const char *const att_cols[] = { "n", "agent", "port", "label", "started", "ended",
                                            "duration_s", "outcome", "error_class", "error_text",
                                            "exit_code", "firmware", "version", "build", "sha256",
                                            "log_path", "verified", "verification", NULL };
    static const char *const head[] = { "job_id", "ecid", "product_type", "serial", "unit_state",
                                        "unit_started", "unit_ended", "attempt", "agent", "port",
                                        "label", "started", "ended", "duration_s", "outcome",
                                        "error_class", "error_text", "exit_code", "firmware",
                                        "ios_version", "ios_build", "ipsw_sha256", "log", "verified",
                                        "verification", NULL };
    header(head, out);
    char job[32];
    value_text(json_object_get(json_object_get(doc, "job"), "id"), job, sizeof job);
    size_t i, k;
    const json_t *u, *a;
    json_array_foreach(json_object_get(doc, "units"), i, u) {
        const json_t *atts = json_object_get(u, "attempts");
        size_t n = json_array_size(atts);
        for (k = 0; k < (n ? n : 1); k++) {
            a = n ? json_array_get(atts, k) : NULL; /* NULL: empty attempt fields */
            csv_field(out, job, 1);
            fields(u, unit_cols, 0, out);
            fields(a, att_cols, 0, out);
            csv_end(out);
        }
    }
}
