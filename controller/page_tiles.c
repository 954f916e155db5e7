/* page_tiles — the rack page's tiles from the store's documents; see page_tiles.h. */
#include "page_tiles.h"

#include <stdio.h>
#include <string.h>

static const char *str(const json_t *o, const char *key)
{
    const char *s = json_string_value(json_object_get(o, key));
    return s ? s : "";
}

static int same_port(const json_t *o, const char *agent_key, const char *path_key, const json_t *port)
{
    return !strcmp(str(o, agent_key), str(port, "agent")) && !strcmp(str(o, path_key), str(port, "path"));
}

static int terminal(const char *state)
{
    static const char *const ends[] = { "done", "failed", "cancelled", "hardware_suspect", NULL };
    for (int i = 0; ends[i]; i++)
        if (!strcmp(state, ends[i]))
            return 1;
    return 0;
}

const char *page_tone(const char *state)
{
    static const char *const tones[][2] = {
        { "done", "ok" },           { "failed", "bad" },          { "hardware_suspect", "bad" },
        { "quarantined", "bad" },   { "cancelled", "idle" },      { "present", "idle" },
        { "empty", "idle" },        { "waiting_unit", "wait" },   { "queued_for_bus", "wait" },
        { "needs_move", "wait" },   { "needs_operator", "wait" },
    };
    for (size_t i = 0; i < sizeof tones / sizeof tones[0]; i++)
        if (!strcmp(state, tones[i][0]))
            return tones[i][1];
    return "busy"; /* preflight, fetching_firmware, restoring, verifying */
}

void page_key(const char *a, const char *b, char *buf, size_t len)
{
    snprintf(buf, len, "%s\x1f%s", a, b);
}

/* The runs on each port, in the document's order: {"agent<US>port": [run...]}. One pass,
 * so a refresh costs the ports plus the runs, not the ports times the runs (at 3,000 ports
 * that product took 4 s a refresh, with the controller's loop blocked). */
json_t *page_runs_by_port(const json_t *runs)
{
    json_t *by = json_object(), *r;
    size_t i;
    json_array_foreach(runs, i, r) {
        char key[200];
        page_key(str(r, "agent"), str(r, "port"), key, sizeof key);
        json_t *list = json_object_get(by, key);
        if (!list) {
            list = json_array();
            json_object_set_new(by, key, list);
        }
        json_array_append(list, r);
    }
    return by;
}

/* The run to show on a port, from the runs on it: the one of the unit plugged in there
 * before others, a live one before an ended one, and otherwise the newest (runs come by
 * job, oldest first). */
static const json_t *run_on(const json_t *port_runs, const json_t *port)
{
    const json_t *best = NULL, *r;
    int best_score = -1;
    size_t i;
    json_array_foreach(port_runs, i, r) {
        int score = 2 * (*str(port, "ecid") && !strcmp(str(r, "ecid"), str(port, "ecid"))) +
                    !terminal(str(r, "state"));
        if (score >= best_score) {
            best = r;
            best_score = score;
        }
    }
    return best;
}

/* "move to B-03 (DFU: ...)" on the port a unit leaves, "from A-02" on its new one. */
static void move_hint(const json_t *moves, const json_t *port, char *out, size_t len)
{
    const json_t *m;
    size_t i;
    out[0] = '\0';
    json_array_foreach(moves, i, m) {
        if (same_port(m, "from_agent", "from_port", port)) {
            const char *buttons = str(m, "buttons");
            snprintf(out, len, "move %s to %s%s%s", str(m, "ecid"), str(m, "to_label"),
                     *buttons ? "; start in DFU: " : "", buttons);
            return;
        }
        if (same_port(m, "to_agent", "to_port", port))
            snprintf(out, len, "%s comes here from %s", str(m, "ecid"), str(m, "from_label"));
    }
}

json_t *page_tile(const json_t *port, const json_t *port_runs, const json_t *moves)
{
    const json_t *run = run_on(port_runs, port);
    const char *state = !strcmp(str(port, "state"), "quarantined") ? "quarantined"
                      : run ? str(run, "state") : *str(port, "ecid") ? "present" : "empty";
    char error[600] = "", move[600], id[160];
    if (!strcmp(state, "quarantined"))
        snprintf(error, sizeof error, "%s", str(port, "reason"));
    else if (run && *str(run, "error"))
        snprintf(error, sizeof error, "%s%s%s", str(run, "error_class"),
                 *str(run, "error_class") ? ": " : "", str(run, "error"));
    move_hint(moves, port, move, sizeof move);
    snprintf(id, sizeof id, "%s:%s", str(port, "agent"), str(port, "path"));
    int progress = run && !terminal(state) && strcmp(state, "quarantined")
                 ? (int)(json_number_value(json_object_get(run, "fraction")) * 100 + 0.5) : -1;
    return json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:i, s:i, s:s, s:s, s:i}", "id", id, "label",
                     str(port, "label"), "state", state, "tone", page_tone(state), "model",
                     run ? str(run, "product_type") : str(port, "model"), "ecid",
                     *str(port, "ecid") ? str(port, "ecid") : run ? str(run, "ecid") : "",
                     "progress", progress, "try", run ? (int)json_integer_value(json_object_get(run, "attempt")) : 0,
                     "error", error, "move", move, "strikes",
                     (int)json_integer_value(json_object_get(port, "strikes")));
}

json_t *page_tiles_of(const json_t *ports, const json_t *by_port, const json_t *moves)
{
    json_t *hubs = json_array(), *rows = json_object(); /* rows: "agent<US>hub" -> hub */
    const json_t *p;
    size_t i;
    json_array_foreach(ports, i, p) {
        char key[200];
        page_key(str(p, "agent"), str(p, "hub"), key, sizeof key);
        json_t *row = json_object_get(rows, key); /* a hub seen before (labels interleave hubs) */
        if (!row) {
            row = json_pack("{s:s, s:s, s:[]}", "agent", str(p, "agent"), "hub", str(p, "hub"), "tiles");
            json_array_append_new(hubs, row);
            json_object_set(rows, key, row);
        }
        page_key(str(p, "agent"), str(p, "path"), key, sizeof key);
        json_array_append_new(json_object_get(row, "tiles"), page_tile(p, json_object_get(by_port, key), moves));
    }
    json_decref(rows);
    return json_pack("{s:o}", "hubs", hubs);
}

json_t *page_tiles(const json_t *ports_doc, const json_t *watch_doc)
{
    json_t *by_port = page_runs_by_port(json_object_get(watch_doc, "runs"));
    json_t *doc = page_tiles_of(json_object_get(ports_doc, "ports"), by_port, json_object_get(watch_doc, "moves"));
    json_decref(by_port);
    return doc;
}
