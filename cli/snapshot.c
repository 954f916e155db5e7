/* snapshot — a watch's runs, read once and then changed by what changed; see snapshot.h. */
#include "snapshot.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jscan.h"
#include "rows.h"

/* "runs" holds each run by job and ECID, "texts" its compact text; "view" the runs of
 * the watched jobs in rack order and "view_texts" theirs, made again only when a reply
 * brought runs or the watched jobs changed ("stale"): a quiet frame sorts nothing. */
json_t *snapshot_new(void)
{
    return json_pack("{s:I, s:[], s:[], s:{}, s:{}, s:[], s:[], s:b}", "seq", (json_int_t)0, "jobs", "moves",
                     "runs", "texts", "view", "view_texts", "stale", 1);
}

static void run_key(const json_t *run, char *key, size_t len)
{
    const char *ecid = json_string_value(json_object_get(run, "ecid"));
    snprintf(key, len, "%lld/%s", (long long)json_integer_value(json_object_get(run, "job_id")),
             ecid ? ecid : "");
}

static int same_jobs(const json_t *a, const json_t *b)
{
    if (json_array_size(a) != json_array_size(b))
        return 0;
    for (size_t i = 0; i < json_array_size(a); i++)
        if (json_integer_value(json_object_get(json_array_get(a, i), "id")) !=
            json_integer_value(json_object_get(json_array_get(b, i), "id")))
            return 0;
    return 1;
}

/* The runs' texts in the reply's text, if they are as many as its parsed runs. */
static struct jspan *run_texts(const json_t *reply, const char *text)
{
    struct jspan runs, *e = NULL;
    size_t n;
    if (!text || jscan_member((struct jspan){ text, strlen(text) }, "runs", &runs) < 0 ||
        jscan_elements(runs, &e, &n) < 0 || n != json_array_size(json_object_get(reply, "runs"))) {
        free(e);
        return NULL;
    }
    return e;
}

void snapshot_apply(json_t *snap, const json_t *reply, const char *text)
{
    json_t *runs = json_object_get(snap, "runs"), *texts = json_object_get(snap, "texts");
    struct jspan *spans = run_texts(reply, text);
    size_t i;
    json_t *r;
    json_array_foreach(json_object_get(reply, "runs"), i, r) {
        char key[64];
        run_key(r, key, sizeof key);
        json_object_set(runs, key, r);
        char *dumped = spans ? NULL : json_dumps(r, JSON_COMPACT);
        json_object_set_new(texts, key, spans ? json_stringn_nocheck(spans[i].p, spans[i].n)
                                              : json_string_nocheck(dumped ? dumped : "{}"));
        free(dumped);
    }
    free(spans);
    if (json_array_size(json_object_get(reply, "runs")) ||
        !same_jobs(json_object_get(snap, "jobs"), json_object_get(reply, "jobs")))
        json_object_set_new(snap, "stale", json_true());
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

/* The view made again: the watched jobs' runs by port, and their texts in that order. */
static void view_make(json_t *snap)
{
    const json_t *jobs = json_object_get(snap, "jobs"), *texts = json_object_get(snap, "texts");
    json_t *runs = json_array(), *r, *view_texts = json_array();
    const char *key;
    json_object_foreach(json_object_get(snap, "runs"), key, r)
        if (job_listed(jobs, json_integer_value(json_object_get(r, "job_id")))) /* not a job no longer watched */
            json_array_append(runs, r);
    rows_sort(runs, rows_by_port);
    size_t i;
    json_array_foreach(runs, i, r) {
        char k[64];
        run_key(r, k, sizeof k);
        json_array_append(view_texts, json_object_get(texts, k));
    }
    json_object_set_new(snap, "view", runs);
    json_object_set_new(snap, "view_texts", view_texts);
    json_object_set_new(snap, "stale", json_false());
}

json_t *snapshot_doc(json_t *snap)
{
    if (json_is_true(json_object_get(snap, "stale")))
        view_make(snap);
    return json_pack("{s:O, s:O, s:O}", "jobs", json_object_get(snap, "jobs"), "runs", json_object_get(snap, "view"),
                     "moves", json_object_get(snap, "moves"));
}

void snapshot_print_json(json_t *snap, size_t changes, FILE *out)
{
    json_t *doc = snapshot_doc(snap); /* the view made if stale, as the caller's doc is */
    char *jobs = json_dumps(json_object_get(doc, "jobs"), JSON_COMPACT);
    char *moves = json_dumps(json_object_get(doc, "moves"), JSON_COMPACT);
    json_decref(doc);
    fprintf(out, "{\"jobs\":%s,\"runs\":[", jobs ? jobs : "[]");
    size_t i;
    const json_t *t;
    json_array_foreach(json_object_get(snap, "view_texts"), i, t) {
        if (i)
            fputc(',', out);
        fwrite(json_string_value(t), 1, json_string_length(t), out);
    }
    fprintf(out, "],\"moves\":%s,\"changes\":%zu}\n", moves ? moves : "[]", changes);
    free(jobs);
    free(moves);
}
