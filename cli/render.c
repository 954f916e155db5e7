/* render — documents to tables; see render.h. */
#include "render.h"

#include <math.h>
#include <string.h>

static const char *str(const json_t *o, const char *key)
{
    const char *s = json_string_value(json_object_get(o, key));
    return s && *s ? s : "-";
}

static long long num(const json_t *o, const char *key)
{
    const json_t *v = json_object_get(o, key);
    return json_is_integer(v) ? json_integer_value(v) : json_is_real(v) ? (long long)json_real_value(v) : 0;
}

static double real(const json_t *o, const char *key)
{
    const json_t *v = json_object_get(o, key);
    return json_is_number(v) ? json_number_value(v) : 0.0;
}

static const char *yes(const json_t *o, const char *key)
{
    return json_is_true(json_object_get(o, key)) ? "yes" : "no";
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

double render_run_percent(const json_t *run)
{
    const char *state = str(run, "state");
    if (strcmp(state, "done") == 0)
        return 100.0;
    if (strcmp(state, "waiting_unit") == 0 || strcmp(state, "preflight") == 0)
        return 0.0;
    double step = (double)num(run, "step"), frac = real(run, "fraction");
    if (step < 0 || step > 7)
        step = 0;
    if (!(frac >= 0 && frac <= 1))
        frac = 0;
    return (step + frac) * 100.0 / 8.0;
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

void render_units(const json_t *doc, FILE *out)
{
    fprintf(out, "%-18s %-11s %-9s %-8s %-8s %-8s %-7s %-14s %-16s %s\n", "ECID", "MODEL", "MODE",
            "AGENT", "PORT", "LABEL", "PRESENT", "STATE", "LAST RUN", "REASON");
    size_t i;
    const json_t *u;
    json_array_foreach(list(doc, "units"), i, u)
        fprintf(out, "%-18s %-11s %-9s %-8s %-8s %-8s %-7s %-14s %-16s %s\n", str(u, "ecid"),
                str(u, "product_type"), str(u, "mode"), str(u, "agent"), str(u, "port"),
                str(u, "label"), yes(u, "present"), str(u, "state"), str(u, "run_state"),
                json_is_string(json_object_get(u, "reason")) ? json_string_value(json_object_get(u, "reason")) : "");
}

void render_ports(const json_t *doc, FILE *out)
{
    fprintf(out, "%-8s %-7s %-8s %-8s %3s %5s %5s %-12s %-18s %7s  %s\n", "AGENT", "LABEL", "PATH", "HUB",
            "BUS", "DEPTH", "POWER", "STATE", "UNIT", "STRIKES", "REASON");
    size_t i;
    const json_t *p;
    json_array_foreach(list(doc, "ports"), i, p)
        fprintf(out, "%-8s %-7s %-8s %-8s %3lld %5lld %5s %-12s %-18s %7lld  %s\n", str(p, "agent"),
                str(p, "label"), str(p, "path"), str(p, "hub"), num(p, "bus"), num(p, "depth"),
                yes(p, "power_switch"), str(p, "state"), str(p, "ecid"), num(p, "strikes"),
                json_is_string(json_object_get(p, "reason")) ? str(p, "reason") : "");
}

static void job_line(const json_t *j, FILE *out)
{
    const json_t *t = json_object_get(j, "totals");
    char c[16];
    fprintf(out, "%-5lld %-16.16s %-10s %5lld %5lld %6lld %6lld %7lld  %s\n", num(j, "id"), str(j, "name"),
            str(j, "state"), num(t, "units"), num(t, "done"), num(t, "failed"), num(t, "active"),
            num(t, "waiting"), clock_of(json_string_value(json_object_get(j, "created")), c, sizeof c));
}

void render_jobs(const json_t *doc, FILE *out)
{
    fprintf(out, "%-5s %-16s %-10s %5s %5s %6s %6s %7s  %s\n", "JOB", "NAME", "STATE", "UNITS", "DONE",
            "FAILED", "ACTIVE", "WAITING", "CREATED");
    size_t i;
    const json_t *j;
    json_array_foreach(list(doc, "jobs"), i, j)
        job_line(j, out);
}

void render_job(const json_t *doc, FILE *out)
{
    render_jobs(doc, out);
    fprintf(out, "\n%-6s %-7s %-18s %-11s %-16s %3s %-27s %s\n", "AGENT", "PORT", "ECID", "MODEL",
            "STATE", "TRY", "PROGRESS", "STATUS");
    size_t i;
    const json_t *r;
    json_array_foreach(list(doc, "runs"), i, r) {
        char bar[64];
        render_bar(render_run_percent(r), 20, bar, sizeof bar);
        const char *err = str(r, "error");
        const char *status = strcmp(err, "-") != 0 ? err : str(r, "status");
        fprintf(out, "%-6s %-7s %-18s %-11s %-16s %3lld %-27s %.60s\n", str(r, "agent"), str(r, "label"),
                str(r, "ecid"), str(r, "product_type"), str(r, "state"), num(r, "attempt"), bar, status);
    }
    if (json_array_size(list(doc, "moves")) > 0) {
        fprintf(out, "\nMOVE INSTRUCTIONS\n");
        render_moves(doc, out);
    }
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

void render_run_line(const json_t *run, char *buf, size_t len)
{
    const char *err = str(run, "error");
    snprintf(buf, len, "%s %s %s %s try %lld step %lld %d%%%s%s", str(run, "label"), str(run, "ecid"),
             str(run, "product_type"), str(run, "state"), num(run, "attempt"), num(run, "step"),
             (int)(render_run_percent(run) + 0.5), strcmp(err, "-") ? ": " : "", strcmp(err, "-") ? err : "");
}

static void attempt_lines(const json_t *attempts, FILE *out)
{
    size_t k;
    const json_t *a;
    json_array_foreach(attempts, k, a) {
        fprintf(out, "  attempt %lld  %s:%s (%s)  %s → %s  %s", num(a, "n"), str(a, "agent"),
                str(a, "port"), str(a, "label"), str(a, "started"), str(a, "ended"), str(a, "outcome"));
        if (strcmp(str(a, "error_class"), "-") != 0)
            fprintf(out, "  [%s] %s", str(a, "error_class"), str(a, "error_text"));
        const char *version = json_string_value(json_object_get(a, "version"));
        if (version && *version)
            fprintf(out, "\n    installed: iOS %s (%s)", version, str(a, "build"));
        else
            fprintf(out, "\n    installed: %s (its iOS version not known)", str(a, "firmware"));
        fprintf(out, "  sha256 %s  %lld s\n", str(a, "sha256"), num(a, "duration_s"));
        const char *verdict = json_string_value(json_object_get(a, "verification"));
        if (verdict && *verdict) /* what the unit said after the restore */
            fprintf(out, "    verification: %s\n", verdict);
        fprintf(out, "    log: %s\n", str(a, "log_path"));
    }
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
        attempt_lines(list(r, "attempts"), out);
    }
    if (json_array_size(list(doc, "history")) == 0)
        fprintf(out, "\nin no job yet\n");
}

void render_submit_summary(const json_t *doc, char *buf, size_t len)
{
    const json_t *sk = list(doc, "skipped"), *v;
    long long matched = num(doc, "matched"), nskipped = num(doc, "skipped_total");
    const char *a;
    size_t i, n = 0;
    char agents[256] = "";
    json_object_foreach((json_t *)json_object_get(doc, "agents"), a, v) {
        if (*a && strlen(agents) + strlen(a) + 2 < sizeof agents) {
            strcat(agents, a);
            strcat(agents, ", ");
        }
    }
    if ((n = strlen(agents)) >= 2)
        agents[n - 2] = '\0';
    n = (size_t)snprintf(buf, len, "%lld unit%s%s%s", matched, matched == 1 ? "" : "s",
                         *agents ? " on " : "", agents);
    if (nskipped == 0 || n >= len)
        return;
    n += (size_t)snprintf(buf + n, len - n, "; %lld skipped:", nskipped);
    json_array_foreach(sk, i, v) {
        if (n >= len)
            return;
        if (!strcmp(str(v, "why"), "held"))
            n += (size_t)snprintf(buf + n, len - n, "%s %s held", i ? "," : "", str(v, "ecid"));
        else
            n += (size_t)snprintf(buf + n, len - n, "%s %s in job %lld", i ? "," : "", str(v, "ecid"),
                                  num(v, "job_id"));
    }
    if ((long long)json_array_size(sk) < nskipped && n < len)
        snprintf(buf + n, len - n, ", and %lld more", nskipped - (long long)json_array_size(sk));
}

void render_report(const json_t *doc, FILE *out)
{
    const json_t *job = json_object_get(doc, "job");
    fprintf(out, "Restore report — job %lld '%s' (%s)\nFirmware: %s\nMode: %s\nCreated: %s  Finished: %s\n",
            num(job, "id"), str(job, "name"), str(job, "state"), str(job, "firmware"),
            json_is_false(json_object_get(job, "erase")) ? "update" : "erase and restore",
            str(job, "created"), str(job, "finished"));
    size_t i;
    const json_t *u;
    json_array_foreach(list(doc, "units"), i, u) {
        fprintf(out, "\nUnit %s  %s  serial %s\n  result: %s   started %s   ended %s\n", str(u, "ecid"),
                str(u, "product_type"), str(u, "serial"), str(u, "state"), str(u, "started"),
                str(u, "ended"));
        attempt_lines(list(u, "attempts"), out);
    }
    fprintf(out, "\n%zu units\n", json_array_size(list(doc, "units")));
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
