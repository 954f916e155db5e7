/* render — documents to tables; see render.h. */
#include "render.h"

#include <math.h>
#include <string.h>

/* A field as the tables show it, read the same from jansson or from a row's text
 * (rview.h): a string, "-" when missing or empty; a number, 0 when missing. */
static const char *shown(struct rval r)
{
    return r.type == RVAL_STRING && *r.s ? r.s : "-";
}

static long long whole(struct rval r)
{
    return r.type == RVAL_INTEGER ? r.i : r.type == RVAL_REAL ? (long long)r.d : 0;
}

static double number(struct rval r)
{
    return r.type == RVAL_INTEGER || r.type == RVAL_REAL ? r.d : 0.0;
}

static const char *str(const json_t *o, const char *key)
{
    return shown(rval_json(json_object_get(o, key)));
}

static long long num(const json_t *o, const char *key)
{
    return whole(rval_json(json_object_get(o, key)));
}

static const char *vstr(struct rview *v, const char *key)
{
    return shown(rview_get(v, key));
}

static long long vnum(struct rview *v, const char *key)
{
    return whole(rview_get(v, key));
}

static const char *vyes(struct rview *v, const char *key)
{
    return rview_get(v, key).type == RVAL_TRUE ? "yes" : "no";
}

/* A string field as it is, "" when it is not a string ("-" when empty: vstr). */
static const char *vraw(struct rview *v, const char *key)
{
    const char *s = rview_str(v, key);
    return s ? s : "";
}

/* "2026-11-24T10:00:00.123Z" → "10:00:00" (times are shown in UTC, as stored). */
static const char *clock_of(const char *iso, char *buf, size_t len)
{
    if (!iso || strlen(iso) < 19)
        return "-";
    snprintf(buf, len, "%.8s", iso + 11);
    return buf;
}

void render_bar(double percent, int width, char *buf, size_t len)
{
    if (isnan(percent) || percent < 0)
        percent = 0;
    if (percent > 100)
        percent = 100;
    if (width < 1)
        width = 1;
    if (width > 200)
        width = 200;
    int fill = (int)(percent * width / 100.0 + 0.5);
    char cells[208];
    for (int i = 0; i < width; i++)
        cells[i] = i < fill ? '#' : '.';
    cells[width] = '\0';
    int n = snprintf(buf, len, "[%.*s] %3d%%", width, cells, (int)(percent + 0.5));
    (void)n; /* truncation to len is what the caller asked for */
}

static double run_percent(struct rview *run)
{
    const char *state = vstr(run, "state");
    if (strcmp(state, "done") == 0)
        return 100.0;
    if (strcmp(state, "waiting_unit") == 0 || strcmp(state, "preflight") == 0)
        return 0.0;
    double step = (double)vnum(run, "step"), frac = number(rview_get(run, "fraction"));
    if (step < 0 || step > 7)
        step = 0;
    if (!(frac >= 0 && frac <= 1))
        frac = 0;
    return (step + frac) * 100.0 / 8.0;
}

double render_run_percent(const json_t *run)
{
    struct rview v;
    rview_init(&v);
    rview_obj(&v, run);
    return run_percent(&v);
}

static const json_t *list(const json_t *doc, const char *key)
{
    const json_t *a = json_object_get(doc, key);
    return json_is_array(a) ? a : NULL;
}

void render_agents(const json_t *doc, FILE *out)
{
    fprintf(out, "%-12s %-8s %-16s %5s %5s %7s %5s  %s\n", "AGENT", "STATE", "HOST", "PORTS", "UNITS",
            "RUNNING", "SLOTS", "LAST SEEN");
    size_t i;
    const json_t *a;
    char t[16];
    json_array_foreach(list(doc, "agents"), i, a)
        fprintf(out, "%-12s %-8s %-16.16s %5lld %5lld %7lld %5lld  %s\n", str(a, "id"), str(a, "state"),
                str(a, "hostname"), num(a, "ports"), num(a, "units"), num(a, "running"),
                num(a, "slots"), clock_of(json_string_value(json_object_get(a, "last_seen")), t, sizeof t));
}

void render_units_rows(const json_t *doc, const struct rview_src *rows, FILE *out)
{
    (void)doc;
    fprintf(out, "%-18s %-11s %-9s %-8s %-8s %-8s %-7s %-14s %-16s %s\n", "ECID", "MODEL", "MODE",
            "AGENT", "PORT", "LABEL", "PRESENT", "STATE", "LAST RUN", "REASON");
    struct rview u;
    rview_init(&u);
    for (size_t i = 0; i < rows->n; i++) {
        rview_src_row(rows, i, &u);
        fprintf(out, "%-18s %-11s %-9s %-8s %-8s %-8s %-7s %-14s %-16s %s\n", vstr(&u, "ecid"),
                vstr(&u, "product_type"), vstr(&u, "mode"), vstr(&u, "agent"), vstr(&u, "port"),
                vstr(&u, "label"), vyes(&u, "present"), vstr(&u, "state"), vstr(&u, "run_state"),
                vraw(&u, "reason"));
    }
    rview_release(&u);
}

void render_units(const json_t *doc, FILE *out)
{
    struct rview_src rows = rview_src_json(list(doc, "units"));
    render_units_rows(doc, &rows, out);
}

static void ports_head(const json_t *doc, FILE *out)
{
    (void)doc;
    fprintf(out, "%-8s %-7s %-8s %-8s %3s %5s %5s %-12s %-18s %7s  %s\n", "AGENT", "LABEL", "PATH", "HUB",
            "BUS", "DEPTH", "POWER", "STATE", "UNIT", "STRIKES", "REASON");
}

static void ports_body(const json_t *doc, const struct rview_src *rows, FILE *out)
{
    (void)doc;
    struct rview p;
    rview_init(&p);
    for (size_t i = 0; i < rows->n; i++) {
        rview_src_row(rows, i, &p);
        fprintf(out, "%-8s %-7s %-8s %-8s %3lld %5lld %5s %-12s %-18s %7lld  %s\n", vstr(&p, "agent"),
                vstr(&p, "label"), vstr(&p, "path"), vstr(&p, "hub"), vnum(&p, "bus"), vnum(&p, "depth"),
                vyes(&p, "power_switch"), vstr(&p, "state"), vstr(&p, "ecid"), vnum(&p, "strikes"),
                rview_str(&p, "reason") ? vstr(&p, "reason") : "");
    }
    rview_release(&p);
}

const struct render_parts render_ports_parts = { ports_head, ports_body, NULL };

void render_parts_all(const struct render_parts *p, const json_t *doc, const struct rview_src *rows, FILE *out)
{
    if (p->head)
        p->head(doc, out);
    p->rows(doc, rows, out);
    if (p->foot)
        p->foot(doc, rows->n, out);
}

void render_ports_rows(const json_t *doc, const struct rview_src *rows, FILE *out)
{
    render_parts_all(&render_ports_parts, doc, rows, out);
}

void render_ports(const json_t *doc, FILE *out)
{
    struct rview_src rows = rview_src_json(list(doc, "ports"));
    render_ports_rows(doc, &rows, out);
}

static void job_line(const json_t *j, FILE *out)
{
    const json_t *t = json_object_get(j, "totals");
    char c[16];
    fprintf(out, "%-5lld %-16.16s %-10s %5lld %5lld %6lld %6lld %7lld  %s\n", num(j, "id"), str(j, "name"),
            str(j, "state"), num(t, "units"), num(t, "done"), num(t, "failed"), num(t, "active"),
            num(t, "waiting"), clock_of(json_string_value(json_object_get(j, "created")), c, sizeof c));
}

/* A selector job whose runs the controller is still making (a page of units a pass): its
 * totals count those units as waiting already, and this says so. */
static void expanding_line(const json_t *j, FILE *out)
{
    long long more = num(json_object_get(j, "totals"), "expanding");
    if (more > 0)
        fprintf(out, "job %lld: %lld of its units are still being added (counted as waiting)\n",
                num(j, "id"), more);
}

void render_jobs(const json_t *doc, FILE *out)
{
    fprintf(out, "%-5s %-16s %-10s %5s %5s %6s %6s %7s  %s\n", "JOB", "NAME", "STATE", "UNITS", "DONE",
            "FAILED", "ACTIVE", "WAITING", "CREATED");
    size_t i;
    const json_t *j;
    json_array_foreach(list(doc, "jobs"), i, j)
        job_line(j, out);
    json_array_foreach(list(doc, "jobs"), i, j)
        expanding_line(j, out);
}

void render_job_rows(const json_t *doc, const struct rview_src *runs, FILE *out)
{
    render_jobs(doc, out);
    fprintf(out, "\n%-6s %-7s %-18s %-11s %-16s %3s %-27s %s\n", "AGENT", "PORT", "ECID", "MODEL",
            "STATE", "TRY", "PROGRESS", "STATUS");
    struct rview r;
    rview_init(&r);
    for (size_t i = 0; i < runs->n; i++) {
        char bar[64];
        rview_src_row(runs, i, &r);
        render_bar(run_percent(&r), 20, bar, sizeof bar);
        const char *err = vstr(&r, "error");
        const char *status = strcmp(err, "-") != 0 ? err : vstr(&r, "status");
        fprintf(out, "%-6s %-7s %-18s %-11s %-16s %3lld %-27s %.60s\n", vstr(&r, "agent"), vstr(&r, "label"),
                vstr(&r, "ecid"), vstr(&r, "product_type"), vstr(&r, "state"), vnum(&r, "attempt"), bar,
                status);
    }
    rview_release(&r);
    if (json_array_size(list(doc, "moves")) > 0) {
        fprintf(out, "\nMOVE INSTRUCTIONS\n");
        render_moves(doc, out);
    }
}

void render_job(const json_t *doc, FILE *out)
{
    struct rview_src runs = rview_src_json(list(doc, "runs"));
    render_job_rows(doc, &runs, out);
}

void render_move_line(const json_t *m, char *buf, size_t len)
{
    int dfu = json_is_true(json_object_get(m, "dfu"));
    long long rep = num(m, "repeats");
    snprintf(buf, len, "move %s (%s) from %s to %s%s%s%s%s", str(m, "ecid"), str(m, "product_type"),
             str(m, "from_label"), str(m, "to_label"), dfu ? " and start it in DFU: " : "",
             dfu ? str(m, "buttons") : "", rep ? " (it is still on, or back on, a port it must avoid)" : "",
             "");
}

void render_moves(const json_t *doc, FILE *out)
{
    size_t i;
    const json_t *m;
    char line[512];
    if (json_array_size(list(doc, "moves")) == 0) {
        fprintf(out, "no move instructions open\n");
        return;
    }
    json_array_foreach(list(doc, "moves"), i, m) {
        render_move_line(m, line, sizeof line);
        fprintf(out, "%s\n", line);
    }
}

void render_run_line_view(struct rview *v, char *buf, size_t len)
{
    const char *err = vstr(v, "error");
    snprintf(buf, len, "%s %s %s %s try %lld step %lld %d%%%s%s", vstr(v, "label"), vstr(v, "ecid"),
             vstr(v, "product_type"), vstr(v, "state"), vnum(v, "attempt"), vnum(v, "step"),
             (int)(run_percent(v) + 0.5), strcmp(err, "-") ? ": " : "", strcmp(err, "-") ? err : "");
}

void render_run_line(const json_t *run, char *buf, size_t len)
{
    struct rview v;
    rview_init(&v);
    rview_obj(&v, run);
    render_run_line_view(&v, buf, len);
    rview_release(&v);
}

/* The attempts of a unit (a report's unit, or a job in a unit's history). */
static void attempt_lines(struct rval attempts, FILE *out)
{
    struct rview_src src = rview_src_of(attempts);
    struct rview a;
    rview_init(&a);
    for (size_t k = 0; k < src.n; k++) {
        rview_src_row(&src, k, &a);
        fprintf(out, "  attempt %lld  %s:%s (%s)  %s → %s  %s", vnum(&a, "n"), vstr(&a, "agent"),
                vstr(&a, "port"), vstr(&a, "label"), vstr(&a, "started"), vstr(&a, "ended"), vstr(&a, "outcome"));
        if (strcmp(vstr(&a, "error_class"), "-") != 0)
            fprintf(out, "  [%s] %s", vstr(&a, "error_class"), vstr(&a, "error_text"));
        const char *version = rview_str(&a, "version");
        if (version && *version)
            fprintf(out, "\n    installed: iOS %s (%s)", version, vstr(&a, "build"));
        else
            fprintf(out, "\n    installed: %s (its iOS version not known)", vstr(&a, "firmware"));
        fprintf(out, "  sha256 %s  %lld s\n", vstr(&a, "sha256"), vnum(&a, "duration_s"));
        const char *verdict = rview_str(&a, "verification");
        if (verdict && *verdict) /* what the unit said after the restore */
            fprintf(out, "    verification: %s\n", verdict);
        fprintf(out, "    log: %s\n", vstr(&a, "log_path"));
    }
    rview_release(&a);
    rview_src_release(&src);
}

void render_unit(const json_t *doc, FILE *out)
{
    const json_t *u = json_object_get(doc, "unit");
    const char *imei = json_string_value(json_object_get(u, "imei"));
    fprintf(out, "Unit %s  %s  serial %s  IMEI %s\n  at %s %s (%s), %s\n", str(u, "ecid"),
            str(u, "product_type"), str(u, "serial"), imei && *imei ? imei : "not known",
            str(u, "agent"), str(u, "port"), str(u, "label"),
            json_is_true(json_object_get(u, "present")) ? "connected" : "not connected");
    if (json_is_true(json_object_get(u, "held")))
        fprintf(out, "  HELD: found hardware_suspect in job %lld; not restored again until "
                     "'flashrack units release %s'\n", num(u, "held_by_job"), str(u, "ecid"));
    size_t i;
    const json_t *r;
    json_array_foreach(list(doc, "history"), i, r) {
        fprintf(out, "\nJob %lld '%s': %s   started %s   ended %s", num(r, "job_id"), str(r, "job_name"),
                str(r, "state"), str(r, "started"), str(r, "ended"));
        if (strcmp(str(r, "error_class"), "-") != 0)
            fprintf(out, "  [%s] %s", str(r, "error_class"), str(r, "error"));
        fputc('\n', out);
        attempt_lines(rval_json(list(r, "attempts")), out);
    }
    if (json_array_size(list(doc, "history")) == 0)
        fprintf(out, "\nin no job yet\n");
}

void render_submit_summary(const json_t *doc, FILE *out)
{
    const json_t *sk = list(doc, "skipped"), *v;
    long long matched = num(doc, "matched"), nskipped = num(doc, "skipped_total");
    const char *a, *sep = " on ";
    size_t i;
    fprintf(out, "%lld unit%s", matched, matched == 1 ? "" : "s");
    json_object_foreach((json_t *)json_object_get(doc, "agents"), a, v) {
        if (*a) { /* "" counts the units not connected */
            fprintf(out, "%s%s", sep, a);
            sep = ", ";
        }
    }
    if (nskipped == 0)
        return;
    fprintf(out, "; %lld skipped:", nskipped);
    json_array_foreach(sk, i, v) {
        if (!strcmp(str(v, "why"), "held"))
            fprintf(out, "%s %s held", i ? "," : "", str(v, "ecid"));
        else
            fprintf(out, "%s %s in job %lld", i ? "," : "", str(v, "ecid"), num(v, "job_id"));
    }
    if ((long long)json_array_size(sk) < nskipped)
        fprintf(out, ", and %lld more", nskipped - (long long)json_array_size(sk));
}

static void report_head(const json_t *doc, FILE *out)
{
    const json_t *job = json_object_get(doc, "job");
    fprintf(out, "Restore report — job %lld '%s' (%s)\nFirmware: %s\nMode: %s\nCreated: %s  Finished: %s\n",
            num(job, "id"), str(job, "name"), str(job, "state"), str(job, "firmware"),
            json_is_false(json_object_get(job, "erase")) ? "update" : "erase and restore",
            str(job, "created"), str(job, "finished"));
    expanding_line(job, out);
}

static void report_body(const json_t *doc, const struct rview_src *units, FILE *out)
{
    (void)doc;
    struct rview u;
    rview_init(&u);
    for (size_t i = 0; i < units->n; i++) {
        rview_src_row(units, i, &u);
        fprintf(out, "\nUnit %s  %s  serial %s\n  result: %s   started %s   ended %s\n", vstr(&u, "ecid"),
                vstr(&u, "product_type"), vstr(&u, "serial"), vstr(&u, "state"), vstr(&u, "started"),
                vstr(&u, "ended"));
        struct rval atts = rview_get(&u, "attempts");
        attempt_lines(atts.type == RVAL_OTHER ? atts : rval_json(NULL), out);
    }
    rview_release(&u);
}

static void report_foot(const json_t *doc, size_t n, FILE *out)
{
    (void)doc;
    fprintf(out, "\n%zu units\n", n);
}

const struct render_parts render_report_parts = { report_head, report_body, report_foot };

void render_report_rows(const json_t *doc, const struct rview_src *units, FILE *out)
{
    render_parts_all(&render_report_parts, doc, units, out);
}

void render_report(const json_t *doc, FILE *out)
{
    struct rview_src units = rview_src_json(list(doc, "units"));
    render_report_rows(doc, &units, out);
}

static void human_bytes(long long n, char *buf, size_t len)
{
    if (n >= 1000LL * 1000 * 1000)
        snprintf(buf, len, "%.1f GB", n / 1e9);
    else if (n >= 1000LL * 1000)
        snprintf(buf, len, "%.1f MB", n / 1e6);
    else
        snprintf(buf, len, "%lld B", n);
}

static void render_resolved(const json_t *fw, FILE *out)
{
    const json_t *sig = json_object_get(fw, "signed");
    fprintf(out, "%s: iOS %s (%s), signed: %s\n%s\nsha256 %s  sha1 %s\n\n", str(fw, "product_type"),
            str(fw, "version"), str(fw, "build"),
            json_is_boolean(sig) ? (json_is_true(sig) ? "yes" : "no") : "unknown", str(fw, "url"),
            str(fw, "sha256"), str(fw, "sha1"));
}

void render_firmware(const json_t *doc, FILE *out)
{
    const json_t *cat = json_object_get(doc, "catalog"), *mirror = json_object_get(doc, "mirror");
    const json_t *v;
    size_t i;
    char size[32];
    if (json_object_get(doc, "resolved"))
        render_resolved(json_object_get(doc, "resolved"), out);
    fprintf(out, "catalog in %s: %lld files, %zu firmwares%s\n", str(cat, "dir"), num(cat, "files"),
            json_array_size(list(cat, "firmwares")),
            json_is_true(json_object_get(cat, "refreshing")) ? " (refreshing)" : "");
    json_array_foreach(list(cat, "errors"), i, v)
        fprintf(out, "  skipped: %s\n", json_string_value(v) ? json_string_value(v) : "-");
    if (json_array_size(list(cat, "firmwares")) == 0) {
        fprintf(out, "  empty: put ipsw.me or Apple catalog files there, or set [firmware] sources\n");
    } else {
        fprintf(out, "%-12s %-9s %-9s %-7s %-9s %s\n", "MODEL", "VERSION", "BUILD", "SIGNED", "SIZE", "SHA256");
        json_array_foreach(list(cat, "firmwares"), i, v) {
            const json_t *sig = json_object_get(v, "signed");
            human_bytes(num(v, "size"), size, sizeof size);
            fprintf(out, "%-12s %-9s %-9s %-7s %-9s %.16s\n", str(v, "product_type"), str(v, "version"),
                    str(v, "build"), json_is_boolean(sig) ? (json_is_true(sig) ? "yes" : "no") : "?",
                    num(v, "size") ? size : "-", str(v, "sha256"));
        }
    }
    if (!strcmp(str(mirror, "url"), "-")) {
        fprintf(out, "\nmirror: off\n");
        return;
    }
    human_bytes(num(mirror, "served_bytes"), size, sizeof size);
    fprintf(out, "\nmirror %s: %lld upstream download%s, %s served to agents\n", str(mirror, "url"),
            num(mirror, "upstream_downloads"), num(mirror, "upstream_downloads") == 1 ? "" : "s", size);
    json_array_foreach(list(mirror, "files"), i, v) {
        human_bytes(num(v, "bytes"), size, sizeof size);
        fprintf(out, "  %s  %-9s %s\n", str(v, "sha"), str(v, "state"), size);
    }
}
