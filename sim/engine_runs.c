/* engine_runs — engine runs per unit over the simulator's life; see engine_runs.h. */
#include "engine_runs.h"

#include <stdlib.h>

struct engine_runs {
    json_t *units; /* ECID string -> {"started", "restored", "failed", "gone", ...} */
};

struct engine_runs *engine_runs_new(void)
{
    struct engine_runs *er = calloc(1, sizeof *er);
    if (er && !(er->units = json_object())) {
        free(er);
        return NULL;
    }
    return er;
}

void engine_runs_free(struct engine_runs *er)
{
    if (!er)
        return;
    json_decref(er->units);
    free(er);
}

static json_t *unit_of(struct engine_runs *er, const char *ecid)
{
    json_t *u = json_object_get(er->units, ecid);
    if (!u) {
        u = json_pack("{s:i, s:i, s:i, s:i, s:i, s:i}", "started", 0, "restored", 0, "failed", 0,
                      "gone", 0, "running", 0, "max_running", 0);
        if (!u || json_object_set_new(er->units, ecid, u) < 0)
            return NULL;
    }
    return u;
}

static void add(json_t *u, const char *field, int by)
{
    json_object_set_new(u, field, json_integer(json_integer_value(json_object_get(u, field)) + by));
}

void engine_runs_started(struct engine_runs *er, const char *ecid)
{
    json_t *u = er ? unit_of(er, ecid) : NULL;
    if (!u)
        return;
    add(u, "started", 1);
    add(u, "running", 1);
    json_int_t running = json_integer_value(json_object_get(u, "running"));
    if (running > json_integer_value(json_object_get(u, "max_running")))
        json_object_set_new(u, "max_running", json_integer(running));
}

void engine_runs_ended(struct engine_runs *er, const char *ecid, int code)
{
    json_t *u = er ? unit_of(er, ecid) : NULL;
    if (!u)
        return;
    add(u, code == 0 ? "restored" : code < 0 ? "gone" : "failed", 1);
    add(u, "running", -1);
}

json_t *engine_runs_json(const struct engine_runs *er)
{
    return json_deep_copy(er->units);
}
