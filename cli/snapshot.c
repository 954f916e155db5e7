/* snapshot — a watch's runs, read once and then changed by what changed; see snapshot.h. */
#include "snapshot.h"

#include <stdio.h>

#include "rows.h"

json_t *snapshot_new(void)
{
    return json_pack("{s:I, s:[], s:[], s:{}}", "seq", (json_int_t)0, "jobs", "moves", "runs");
}

static void run_key(const json_t *run, char *key, size_t len)
{
    const char *ecid = json_string_value(json_object_get(run, "ecid"));
    snprintf(key, len, "%lld/%s", (long long)json_integer_value(json_object_get(run, "job_id")),
             ecid ? ecid : "");
}

void snapshot_apply(json_t *snap, const json_t *reply)
{
    json_t *runs = json_object_get(snap, "runs");
    size_t i;
    json_t *r;
    json_array_foreach(json_object_get(reply, "runs"), i, r) {
        char key[64];
        run_key(r, key, sizeof key);
        json_object_set(runs, key, r);
    }
    json_object_set(snap, "jobs", json_object_get(reply, "jobs"));
    json_object_set(snap, "moves", json_object_get(reply, "moves"));
    json_object_set(snap, "seq", json_object_get(reply, "seq"));
}

uint64_t snapshot_seq(const json_t *snap)
{
    return (uint64_t)json_integer_value(json_object_get(snap, "seq"));
}

static int job_listed(const json_t *jobs, json_int_t id)
{
    size_t i;
    const json_t *j;
    json_array_foreach(jobs, i, j)
        if (json_integer_value(json_object_get(j, "id")) == id)
            return 1;
    return 0;
}

json_t *snapshot_doc(const json_t *snap)
{
    const json_t *jobs = json_object_get(snap, "jobs");
    json_t *runs = json_array(), *r;
    const char *key;
    json_object_foreach((json_t *)json_object_get(snap, "runs"), key, r)
        if (job_listed(jobs, json_integer_value(json_object_get(r, "job_id")))) /* not a job no longer watched */
            json_array_append(runs, r);
    rows_sort(runs, rows_by_port);
    return json_pack("{s:O, s:o, s:O}", "jobs", jobs, "runs", runs, "moves", json_object_get(snap, "moves"));
}
