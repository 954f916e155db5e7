/* snapshot — a watch's runs, read once and then changed by what changed; see snapshot.h. */
#include "snapshot.h"

#include <stdlib.h>
#include <string.h>

#include "rows.h"

/* One run: its job and ECID (the key), and its compact text. */
struct srun {
    long long job;
    char *ecid;
    char *text;
    size_t n;
};

/* runs[] in the order first seen (ties in the view keep it); slots[] an open-addressing
 * index of them by key (0: empty, else the run's index + 1). view[] the texts of the
 * watched jobs' runs by port, made again only when a reply brought runs or the watched
 * jobs changed (stale): a quiet frame sorts nothing. The frame's replies are kept in
 * texts[] while changed[] points into them. */
struct snapshot {
    uint64_t seq;
    json_t *head; /* {"jobs", "moves"} */
    struct srun *runs;
    size_t nruns, cap;
    size_t *slots, nslots;
    struct jspan *view;
    size_t nview;
    int stale;
    char **texts;
    size_t ntexts;
    struct jspan *changed;
    size_t nchanged, ccap;
};

struct snapshot *snapshot_new(void)
{
    struct snapshot *s = calloc(1, sizeof *s);
    if (s && !(s->head = json_pack("{s:[], s:[]}", "jobs", "moves"))) {
        free(s);
        return NULL;
    }
    if (s)
        s->stale = 1;
    return s;
}

void snapshot_frame_end(struct snapshot *s)
{
    for (size_t i = 0; i < s->ntexts; i++)
        free(s->texts[i]);
    free(s->texts);
    s->texts = NULL;
    s->ntexts = 0;
    s->nchanged = 0;
}

void snapshot_free(struct snapshot *s)
{
    if (!s)
        return;
    snapshot_frame_end(s);
    for (size_t i = 0; i < s->nruns; i++) {
        free(s->runs[i].ecid);
        free(s->runs[i].text);
    }
    free(s->runs);
    free(s->slots);
    free(s->view);
    free(s->changed);
    json_decref(s->head);
    free(s);
}

uint64_t snapshot_seq(const struct snapshot *s)
{
    return s->seq;
}

const json_t *snapshot_head(const struct snapshot *s)
{
    return s->head;
}

static int is_word(struct jspan v, const char *w)
{
    return v.n == strlen(w) && !memcmp(v.p, w, v.n);
}

int snapshot_reply_cursor(const char *text, uint64_t *seq, int *more, char **next)
{
    struct jspan doc = { text, strlen(text) }, v, m, c;
    if (jscan_member(doc, "seq", &v) < 0 || jscan_member(doc, "more", &m) < 0)
        return -1;
    json_t *n = json_loadb(v.p, v.n, JSON_DECODE_ANY, NULL);
    json_t *cur = jscan_member(doc, "next", &c) < 0 ? json_string("") : json_loadb(c.p, c.n, JSON_DECODE_ANY, NULL);
    int ok = json_is_integer(n) && (is_word(m, "true") || is_word(m, "false")) && json_is_string(cur) &&
             (*next = strdup(json_string_value(cur)));
    if (ok) {
        *seq = (uint64_t)json_integer_value(n);
        *more = is_word(m, "true");
    }
    json_decref(n);
    json_decref(cur);
    return ok ? 0 : -1;
}

/* ---- the runs by key ------------------------------------------------------------------- */

static size_t key_hash(long long job, const char *ecid)
{
    uint64_t h = 1469598103934665603ull ^ (uint64_t)job;
    for (; *ecid; ecid++)
        h = (h ^ (unsigned char)*ecid) * 1099511628211ull;
    return (size_t)(h ^ h >> 29);
}

/* The slot of job/ecid: the run's, or the empty one where it would go. */
static size_t *slot_of(struct snapshot *s, long long job, const char *ecid)
{
    size_t i = key_hash(job, ecid) & (s->nslots - 1);
    for (;; i = (i + 1) & (s->nslots - 1)) {
        size_t at = s->slots[i];
        if (!at || (s->runs[at - 1].job == job && !strcmp(s->runs[at - 1].ecid, ecid)))
            return &s->slots[i];
    }
}

/* Room for one more run: the array, and the index kept at most half full. */
static int room(struct snapshot *s)
{
    if (s->nruns == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 1024;
        struct srun *r = realloc(s->runs, cap * sizeof *r);
        if (!r)
            return -1;
        s->runs = r;
        s->cap = cap;
    }
    if ((s->nruns + 1) * 2 <= s->nslots)
        return 0;
    size_t n = s->nslots ? s->nslots * 2 : 2048;
    size_t *slots = calloc(n, sizeof *slots), *old = s->slots;
    if (!slots)
        return -1;
    s->slots = slots;
    s->nslots = n;
    for (size_t i = 0; i < s->nruns; i++)
        *slot_of(s, s->runs[i].job, s->runs[i].ecid) = i + 1;
    free(old);
    return 0;
}

/* The run in text (read through v) replaces the one of its job and ECID, or is added. */
static int keep_run(struct snapshot *s, struct rview *v, struct jspan text)
{
    struct rval job = rview_get(v, "job_id");
    const char *ecid = rview_str(v, "ecid");
    long long id = job.type == RVAL_INTEGER ? job.i : 0;
    if (!ecid)
        ecid = "";
    char *copy = malloc(text.n + 1);
    if (!copy || room(s) < 0) {
        free(copy);
        return -1;
    }
    memcpy(copy, text.p, text.n);
    copy[text.n] = '\0';
    size_t *slot = slot_of(s, id, ecid);
    if (*slot) {
        struct srun *r = &s->runs[*slot - 1];
        free(r->text);
        r->text = copy;
        r->n = text.n;
        return 0;
    }
    char *key = strdup(ecid);
    if (!key) {
        free(copy);
        return -1;
    }
    s->runs[s->nruns] = (struct srun){ id, key, copy, text.n };
    *slot = ++s->nruns;
    return 0;
}

/* ---- applying a reply ------------------------------------------------------------------ */

static json_t *member(struct jspan doc, const char *key)
{
    struct jspan v;
    return jscan_member(doc, key, &v) < 0 ? NULL : json_loadb(v.p, v.n, JSON_DECODE_ANY, NULL);
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

static int keep_text(struct snapshot *s, char *text, size_t nruns)
{
    char **texts = realloc(s->texts, (s->ntexts + 1) * sizeof *texts);
    if (!texts)
        return -1;
    s->texts = texts;
    s->texts[s->ntexts++] = text;
    if (s->nchanged + nruns > s->ccap) {
        size_t cap = s->ccap ? s->ccap : 1024;
        while (cap < s->nchanged + nruns)
            cap *= 2;
        struct jspan *c = realloc(s->changed, cap * sizeof *c);
        if (!c)
            return -1;
        s->changed = c;
        s->ccap = cap;
    }
    return 0;
}

/* The reply's runs into the snapshot and the frame's changes. */
static int apply_runs(struct snapshot *s, struct jspan *runs, size_t n)
{
    struct rview v;
    rview_init(&v);
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < n; i++) {
        if (rview_text(&v, runs[i]) < 0)
            rc = -1;
        else
            rc = keep_run(s, &v, runs[i]);
        s->changed[s->nchanged++] = runs[i];
    }
    rview_release(&v);
    return rc;
}

int snapshot_apply(struct snapshot *s, char *text, char *err, size_t errlen)
{
    struct jspan doc = { text, strlen(text) }, list, *runs = NULL;
    size_t n = 0;
    uint64_t seq;
    int more;
    char *next = NULL;
    json_t *jobs = member(doc, "jobs"), *moves = member(doc, "moves");
    const char *why = NULL;
    if (!json_is_array(jobs) || !json_is_array(moves) || snapshot_reply_cursor(text, &seq, &more, &next) < 0 ||
        jscan_member(doc, "runs", &list) < 0 || jscan_elements(list, &runs, &n) < 0)
        why = "not a watch document (jobs, runs, seq, more, moves)";
    else if (keep_text(s, text, n) < 0)
        why = "out of memory";
    else if (apply_runs(s, runs, n) < 0)
        why = "a run is not an object, or out of memory";
    if (why) {
        snprintf(err, errlen, "the controller's watch reply: %s", why);
        if (!s->ntexts || s->texts[s->ntexts - 1] != text)
            free(text);
        s->stale = 1;
    } else {
        if (n || !same_jobs(json_object_get(s->head, "jobs"), jobs))
            s->stale = 1;
        json_object_set(s->head, "jobs", jobs);
        json_object_set(s->head, "moves", moves);
        s->seq = seq;
    }
    json_decref(jobs);
    json_decref(moves);
    free(runs);
    free(next);
    return why ? -1 : 0;
}

/* ---- what a frame shows ---------------------------------------------------------------- */

static int job_listed(const json_t *jobs, long long id)
{
    size_t i;
    const json_t *j;
    json_array_foreach(jobs, i, j)
        if (json_integer_value(json_object_get(j, "id")) == id)
            return 1;
    return 0;
}

/* The view made again: the watched jobs' runs by port (not a job no longer watched). */
static int view_make(struct snapshot *s)
{
    struct jspan *view = realloc(s->view, (s->nruns ? s->nruns : 1) * sizeof *view);
    if (!view)
        return -1;
    s->view = view;
    s->nview = 0;
    const json_t *jobs = json_object_get(s->head, "jobs");
    for (size_t i = 0; i < s->nruns; i++)
        if (job_listed(jobs, s->runs[i].job))
            s->view[s->nview++] = (struct jspan){ s->runs[i].text, s->runs[i].n };
    if (rows_sort_texts(s->view, s->nview, rows_by_port) != 0)
        return -1;
    s->stale = 0;
    return 0;
}

struct rview_src snapshot_view(struct snapshot *s)
{
    if (s->stale && view_make(s) < 0)
        return rview_src_texts(NULL, 0);
    return rview_src_texts(s->view, s->nview);
}

struct rview_src snapshot_changed(struct snapshot *s)
{
    rows_sort_texts(s->changed, s->nchanged, rows_by_port); /* as they came when out of memory */
    return rview_src_texts(s->changed, s->nchanged);
}

void snapshot_print_json(struct snapshot *s, FILE *out)
{
    struct rview_src view = snapshot_view(s);
    char *jobs = json_dumps(json_object_get(s->head, "jobs"), JSON_COMPACT);
    char *moves = json_dumps(json_object_get(s->head, "moves"), JSON_COMPACT);
    fprintf(out, "{\"jobs\":%s,\"runs\":[", jobs ? jobs : "[]");
    for (size_t i = 0; i < view.n; i++) {
        if (i)
            fputc(',', out);
        fwrite(view.texts[i].p, 1, view.texts[i].n, out);
    }
    fprintf(out, "],\"moves\":%s,\"changes\":%zu}\n", moves ? moves : "[]", s->nchanged);
    free(jobs);
    free(moves);
}
