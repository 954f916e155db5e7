/* metrics — Prometheus text exposition 0.0.4 of the controller's state; see metrics.h. */
#include "metrics.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl.h"

/* A restore takes 10-40 minutes on real hardware; a simulated one seconds. */
const double metrics_duration_buckets[] = { 1, 5, 15, 30, 60, 120, 300, 600, 900, 1200, 1800, 2700, 3600 };
const int metrics_nduration_buckets = sizeof metrics_duration_buckets / sizeof metrics_duration_buckets[0];

/* A label value: backslash, double quote and line feed escaped (format 0.0.4). */
static void label(FILE *f, const char *name, const char *value, int first)
{
    fprintf(f, "%s%s=\"", first ? "{" : ",", name);
    for (const char *p = value ? value : ""; *p; p++) {
        if (*p == '\\' || *p == '"')
            fprintf(f, "\\%c", *p);
        else if (*p == '\n')
            fputs("\\n", f);
        else
            fputc(*p, f);
    }
    fputc('"', f);
}

/* One sample: name{k1="v1",...} value; kv is name, value pairs ending with NULL. */
static void series(FILE *f, const char *name, const char *const *kv, long long v)
{
    fputs(name, f);
    for (int i = 0; kv[i]; i += 2)
        label(f, kv[i], kv[i + 1], i == 0);
    if (kv[0])
        fputc('}', f);
    fprintf(f, " %lld\n", v);
}

static void family(FILE *f, const char *name, const char *type, const char *help)
{
    fprintf(f, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static const char *str(const json_t *o, const char *key)
{
    const char *s = json_string_value(json_object_get(o, key));
    return s ? s : "";
}

static long long num(const json_t *o, const char *key)
{
    return (long long)json_integer_value(json_object_get(o, key));
}

static void restores(FILE *f, const json_t *doc)
{
    size_t i;
    const json_t *r;
    family(f, "flashrack_restores_total", "counter",
           "Ended restore attempts by result (outcome), failure class and model.");
    json_array_foreach(json_object_get(doc, "restores"), i, r) {
        const char *kv[] = { "result", str(r, "result"), "class", str(r, "class"), "model",
                             str(r, "model"), NULL };
        series(f, "flashrack_restores_total", kv, num(r, "n"));
    }
    family(f, "flashrack_attempts_total", "counter", "Restore attempts started (assigned to an agent).");
    fprintf(f, "flashrack_attempts_total %lld\n", num(doc, "attempts"));
}

static void ports(FILE *f, const json_t *doc)
{
    size_t i;
    const json_t *p;
    long long quarantined = 0;
    family(f, "flashrack_port_strikes", "gauge", "Strikes a port has now (units that lost the link there).");
    json_array_foreach(json_object_get(doc, "ports"), i, p) {
        const char *kv[] = { "agent", str(p, "agent"), "port", str(p, "path"), "label", str(p, "label"), NULL };
        series(f, "flashrack_port_strikes", kv, num(p, "strikes"));
        quarantined += num(p, "quarantined") != 0;
    }
    family(f, "flashrack_ports_quarantined", "gauge", "Ports in quarantine.");
    fprintf(f, "flashrack_ports_quarantined %lld\n", quarantined);
}

static void runs(FILE *f, const json_t *doc)
{
    size_t i;
    const json_t *r;
    family(f, "flashrack_unit_runs", "gauge", "Unit runs (one unit in one job) by state.");
    json_array_foreach(json_object_get(doc, "runs"), i, r) {
        const char *kv[] = { "state", str(r, "state"), NULL };
        series(f, "flashrack_unit_runs", kv, num(r, "n"));
    }
    family(f, "flashrack_queue_depth", "gauge", "Unit runs of running jobs waiting for their unit, a move or an operator.");
    fprintf(f, "flashrack_queue_depth %lld\n", num(doc, "queue"));
}

static void durations(FILE *f, const json_t *doc)
{
    const json_t *all = json_object_get(doc, "durations_s");
    double sum = 0;
    size_t i, n = json_array_size(all);
    const json_t *v;
    family(f, "flashrack_restore_duration_seconds", "histogram", "Duration of successful restore attempts.");
    for (int b = 0; b < metrics_nduration_buckets; b++) {
        long long in = 0;
        json_array_foreach(all, i, v)
            in += json_number_value(v) <= metrics_duration_buckets[b];
        fprintf(f, "flashrack_restore_duration_seconds_bucket{le=\"%g\"} %lld\n", metrics_duration_buckets[b], in);
    }
    json_array_foreach(all, i, v)
        sum += json_number_value(v);
    fprintf(f, "flashrack_restore_duration_seconds_bucket{le=\"+Inf\"} %zu\n", n);
    fprintf(f, "flashrack_restore_duration_seconds_sum %.3f\nflashrack_restore_duration_seconds_count %zu\n", sum, n);
}

static void agents_and_mirror(FILE *f, const json_t *agents, const json_t *mirror)
{
    size_t i;
    const json_t *a;
    long long up = 0;
    family(f, "flashrack_agent_up", "gauge", "1 when the agent is online.");
    json_array_foreach(agents, i, a) {
        int on = json_is_true(json_object_get(a, "online"));
        const char *kv[] = { "agent", str(a, "id"), NULL };
        series(f, "flashrack_agent_up", kv, on);
        up += on;
    }
    family(f, "flashrack_agents_up", "gauge", "Agents online.");
    fprintf(f, "flashrack_agents_up %lld\n", up);
    family(f, "flashrack_mirror_upstream_bytes_total", "counter", "Bytes the site mirror fetched from publishers.");
    fprintf(f, "flashrack_mirror_upstream_bytes_total %lld\n", num(mirror, "upstream_bytes"));
    family(f, "flashrack_mirror_served_bytes_total", "counter", "Bytes the site mirror served to agents.");
    fprintf(f, "flashrack_mirror_served_bytes_total %lld\n", num(mirror, "served_bytes"));
}

/* Handshakes and refusals (zap.h): counted since this controller process started. */
static void security(FILE *f, const json_t *sec)
{
    if (!json_is_object(sec) || strcmp(str(sec, "mode"), "curve") != 0)
        return;
    family(f, "flashrack_handshakes_total", "counter",
           "CURVE handshakes on the controller's sockets by result, since it started "
           "(refused: a key not authorized; no_key: a peer without CURVE; failed: a broken handshake).");
    static const char *const results[][2] = { { "ok", "handshakes_ok" },
                                              { "refused", "handshakes_refused" },
                                              { "no_key", "handshakes_no_key" },
                                              { "failed", "handshakes_failed" } };
    for (size_t i = 0; i < sizeof results / sizeof results[0]; i++) {
        const char *kv[] = { "result", results[i][0], NULL };
        series(f, "flashrack_handshakes_total", kv, num(sec, results[i][1]));
    }
    family(f, "flashrack_messages_refused_total", "counter",
           "Messages refused since the controller started: an agent's under another identity or "
           "a revoked key, a client's request beyond its role.");
    const char *agents[] = { "socket", "agents", NULL }, *clients[] = { "socket", "clients", NULL };
    series(f, "flashrack_messages_refused_total", agents, num(sec, "agent_messages_refused"));
    series(f, "flashrack_messages_refused_total", clients, num(sec, "requests_refused"));
}

char *metrics_format(const json_t *store_doc, const json_t *agents, const json_t *mirror,
                     const json_t *sec)
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    if (!f)
        return NULL;
    restores(f, store_doc);
    ports(f, store_doc);
    runs(f, store_doc);
    durations(f, store_doc);
    agents_and_mirror(f, agents, mirror);
    security(f, sec);
    if (fclose(f) != 0) {
        free(text);
        return NULL;
    }
    return text;
}

char *metrics_text(struct controller *c)
{
    json_t *doc = store_doc_metrics(c->store);
    if (!doc)
        return NULL; /* a read failed: no half-true numbers */
    json_t *agents = json_array(), *mirror = mirror_doc(c);
    for (struct agent_state *a = c->agents; a; a = a->next)
        json_array_append_new(agents, json_pack("{s:s, s:b}", "id", a->id, "online", a->online));
    json_t *sec = zap_doc(c->zap);
    char *text = metrics_format(doc, agents, mirror, sec);
    json_decref(sec);
    json_decref(doc);
    json_decref(agents);
    json_decref(mirror);
    return text;
}
