/* page_rack — the rack page's rack, read in steps and only where it changed; see page_rack.h. */
#include "page_rack.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "fr_err.h"
#include "page_tiles.h"
#include "store.h"

/* What one reading (begun, not yet done) has seen. */
struct reading {
    int on;
    int runs_read_up, ports_read_up, moves_read, placed;
    int layout, jobs;         /* a port came or moved; the job summary changed */
    char *stamp;              /* store_rack_stamp when it began */
    json_t *told;             /* texts of the placed tiles that changed */
    struct page_rack_delta st;
};

struct page_rack {
    json_t *rows;       /* "agent<US>path" -> the port's row (the fields a tile reads) */
    json_t *runs;       /* "job/ecid" -> run */
    json_t *by_port;    /* "agent<US>port" -> [run...] by job, then ECID (the status order) */
    json_t *moves;      /* the open move instructions */
    char *moves_text;
    json_t *job_set;    /* the watched jobs' ids -> true */
    json_int_t newest_job;
    char *stamp;        /* store_rack_stamp at the last reading done */
    int64_t port_seq, run_seq; /* the change numbers read up to */
    json_t *jobs;       /* the job summary */
    json_t *tiles;      /* "agent:path" -> its tile (the object placed in doc) */
    json_t *dirty;      /* "agent<US>path" of the ports whose tiles are to be built again */
    json_t *doc;        /* {"hubs", "jobs"}: NULL before the first reading is done */
    json_t *hub_of;     /* "agent:path" -> the index of its hub in doc */
    char **hub_text;    /* each hub as compact JSON, NULL where to be dumped again */
    size_t nhubs;
    char *text;         /* the whole doc as compact JSON, NULL where to be joined again */
    size_t text_len;
    struct reading rd;
    struct page_rack *fresh; /* the rack being read whole again, while this one is served */
};

static uint64_t cpu_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static const char *str(const json_t *o, const char *key)
{
    const char *v = json_string_value(json_object_get(o, key));
    return v ? v : "";
}

static void mark(json_t *dirty, const char *port_key)
{
    json_object_set_new(dirty, port_key, json_true());
}

static void tile_id(const json_t *row, char *buf, size_t len)
{
    snprintf(buf, len, "%s:%s", str(row, "agent"), str(row, "path"));
}

/* ---- port rows ------------------------------------------------------------------ */

static json_t *port_obj(const struct store_rack_port *p)
{
    return json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:I}", "agent", p->agent, "path", p->path,
                     "label", p->label, "hub", p->hub, "state", p->quarantined ? "quarantined" : "",
                     "reason", p->reason, "ecid", p->ecid, "model", p->model, "strikes",
                     (json_int_t)p->strikes);
}

struct port_scan {
    struct page_rack *r;
    int n, oom;
};

/* A port row read: kept, its tile to be built again; a new port, or one in another
 * place in the rack's order or in another hub, is a new layout. */
static void on_port(void *arg, const struct store_rack_port *p)
{
    struct port_scan *sc = arg;
    struct page_rack *r = sc->r;
    char key[200];
    page_key(p->agent, p->path, key, sizeof key);
    const json_t *was = json_object_get(r->rows, key);
    if (!was || strcmp(str(was, "label"), p->label) || strcmp(str(was, "hub"), p->hub))
        r->rd.layout = 1;
    json_t *row = port_obj(p);
    sc->oom |= !row || json_object_set_new(r->rows, key, row) < 0;
    mark(r->dirty, key);
    r->port_seq = p->seq;
    sc->n++;
}

static int read_ports(struct page_rack *r, struct store *s)
{
    struct port_scan sc = { r, 0, 0 };
    int n = store_rack_ports_since(s, r->port_seq, PAGE_RACK_ROWS, on_port, &sc);
    if (n < 0 || sc.oom)
        return FR_ESTORE;
    r->rd.st.ports_read += (size_t)n;
    r->rd.ports_read_up = n < PAGE_RACK_ROWS;
    return 0;
}

/* ---- runs ----------------------------------------------------------------------- */

static void run_key(const json_t *run, char *buf, size_t len)
{
    snprintf(buf, len, "%lld/%s", (long long)json_integer_value(json_object_get(run, "job_id")), str(run, "ecid"));
}

static void port_of_run(const json_t *run, char *buf, size_t len)
{
    page_key(str(run, "agent"), str(run, "port"), buf, len);
}

/* a before b in the status document's order: by job, then ECID (fixed-width hex) */
static int run_before(const json_t *a, const json_t *b)
{
    json_int_t ja = json_integer_value(json_object_get(a, "job_id")), jb = json_integer_value(json_object_get(b, "job_id"));
    return ja != jb ? ja < jb : strcmp(str(a, "ecid"), str(b, "ecid")) < 0;
}

/* The kept run of key out of its port's list (that port's tile to be built again). */
static void forget_run(struct page_rack *r, const char *key)
{
    json_t *was = json_object_get(r->runs, key);
    if (!was)
        return;
    char port[200];
    port_of_run(was, port, sizeof port);
    mark(r->dirty, port);
    json_t *list = json_object_get(r->by_port, port);
    for (size_t i = 0; i < json_array_size(list); i++)
        if (json_array_get(list, i) == was) {
            json_array_remove(list, i);
            break;
        }
    json_object_del(r->runs, key);
}

/* run replaces the kept run of its job and unit: out of its old port's list, into its
 * new one's in order; both ports' tiles are to be built again. */
static void apply_run(struct page_rack *r, json_t *run)
{
    char key[160], port[200];
    run_key(run, key, sizeof key);
    forget_run(r, key);
    port_of_run(run, port, sizeof port);
    mark(r->dirty, port);
    json_t *list = json_object_get(r->by_port, port);
    if (!list) {
        list = json_array();
        json_object_set_new(r->by_port, port, list);
    }
    size_t at = json_array_size(list);
    while (at > 0 && run_before(run, json_array_get(list, at - 1)))
        at--;
    json_array_insert(list, at, run);
    json_object_set(r->runs, key, run);
}

static json_t *job_summary(const json_t *watch)
{
    json_t *jobs = json_array();
    const json_t *j;
    size_t i;
    json_array_foreach(json_object_get(watch, "jobs"), i, j)
        json_array_append_new(jobs, json_pack("{s:O, s:O, s:O, s:O}", "id", json_object_get(j, "id"),
                                              "name", json_object_get(j, "name"), "state",
                                              json_object_get(j, "state"), "totals",
                                              json_object_get(j, "totals")));
    return jobs;
}

/* The watched jobs of a watch page: the runs of a job no longer watched are let go; 1
 * when a job is watched that is older than the newest one read (a job watched again:
 * its runs were not all written since), which only a whole reading shows. */
static int watch_jobs(struct page_rack *r, const json_t *watch)
{
    json_t *set = json_object();
    const json_t *j;
    size_t i;
    int again = 0;
    json_int_t newest = r->newest_job;
    json_array_foreach(json_object_get(watch, "jobs"), i, j) {
        json_int_t id = json_integer_value(json_object_get(j, "id"));
        char k[32];
        snprintf(k, sizeof k, "%lld", (long long)id);
        json_object_set_new(set, k, json_true());
        again |= r->job_set && !json_object_get(r->job_set, k) && id <= r->newest_job;
        newest = id > newest ? id : newest;
    }
    if (again) {
        json_decref(set);
        return 1;
    }
    const char *key;
    json_t *run, *tmp;
    if (r->job_set && !json_equal(set, r->job_set))
        json_object_foreach_safe(r->runs, tmp, key, run) {
            char k[32];
            snprintf(k, sizeof k, "%lld", (long long)json_integer_value(json_object_get(run, "job_id")));
            if (!json_object_get(set, k))
                forget_run(r, key);
        }
    json_decref(r->job_set);
    r->job_set = set;
    r->newest_job = newest;
    return 0;
}

#define WHOLE 2 /* a part's answer: the rack is to be read whole */

/* A page of the runs written since the last: WHOLE when the rack is to be read whole. */
static int read_runs(struct page_rack *r, struct store *s)
{
    json_t *watch = store_doc_watch(s, 0, r->run_seq, PAGE_RACK_ROWS);
    if (!watch)
        return FR_ESTORE;
    if (watch_jobs(r, watch)) {
        json_decref(watch);
        return WHOLE;
    }
    const json_t *run;
    size_t i;
    json_array_foreach(json_object_get(watch, "runs"), i, run)
        apply_run(r, (json_t *)run);
    r->rd.st.runs_read += json_array_size(json_object_get(watch, "runs"));
    r->run_seq = json_integer_value(json_object_get(watch, "seq"));
    r->rd.runs_read_up = !json_is_true(json_object_get(watch, "more"));
    json_t *jobs = job_summary(watch);
    if (!json_equal(jobs, r->jobs)) {
        json_decref(r->jobs);
        r->jobs = jobs;
        r->rd.jobs = 1;
    } else {
        json_decref(jobs);
    }
    json_decref(watch);
    return 0;
}

/* ---- moves ---------------------------------------------------------------------- */

static void mark_moves(struct page_rack *r, const json_t *moves)
{
    const json_t *m;
    size_t i;
    char port[200];
    json_array_foreach(moves, i, m) {
        page_key(str(m, "from_agent"), str(m, "from_port"), port, sizeof port);
        mark(r->dirty, port);
        page_key(str(m, "to_agent"), str(m, "to_port"), port, sizeof port);
        mark(r->dirty, port);
    }
}

/* The open move instructions: the ports of the ones that came or went are to be built again. */
static int read_moves(struct page_rack *r, struct store *s)
{
    json_t *doc = store_doc_moves(s);
    if (!doc)
        return FR_ESTORE;
    json_t *moves = json_incref(json_object_get(doc, "moves"));
    json_decref(doc);
    char *text = json_dumps(moves, JSON_COMPACT);
    if (!text || !r->moves_text || strcmp(text, r->moves_text)) {
        mark_moves(r, r->moves);
        mark_moves(r, moves);
    }
    json_decref(r->moves);
    r->moves = moves;
    free(r->moves_text);
    r->moves_text = text;
    r->rd.moves_read = 1;
    return 0;
}

/* ---- tiles and their text -------------------------------------------------------- */

static void hub_changed(struct page_rack *r, const char *id)
{
    json_t *h = json_object_get(r->hub_of, id);
    if (!h)
        return;
    size_t i = (size_t)json_integer_value(h);
    if (i < r->nhubs) {
        free(r->hub_text[i]);
        r->hub_text[i] = NULL;
    }
    free(r->text);
    r->text = NULL;
}

/* The tiles of the ports marked dirty built again (a run on a port not in the rack has
 * none); a placed tile that changed is changed in place (the same object is in doc) and
 * its text told, unless the layout changed (the clients get a snapshot). */
static void build_dirty(struct page_rack *r)
{
    const char *key;
    json_t *v;
    json_object_foreach(r->dirty, key, v) {
        const json_t *row = json_object_get(r->rows, key);
        if (!row)
            continue;
        char id[160];
        tile_id(row, id, sizeof id);
        json_t *t = page_tile(row, json_object_get(r->by_port, key), r->moves);
        json_t *was = json_object_get(r->tiles, id);
        r->rd.st.tiles_built++;
        if (!t)
            continue;
        if (!was) {
            json_object_set_new(r->tiles, id, t);
            continue;
        }
        if (!json_equal(t, was)) {
            json_object_update(was, t);
            hub_changed(r, id);
            if (!r->rd.layout && json_object_get(r->hub_of, id)) {
                char *text = json_dumps(was, JSON_COMPACT);
                if (text)
                    json_array_append_new(r->rd.told, json_string(text));
                free(text);
            }
        }
        json_decref(t);
    }
    json_object_clear(r->dirty);
}

static int rack_order(const void *a, const void *b)
{
    const json_t *x = *(const json_t *const *)a, *y = *(const json_t *const *)b;
    int c = strcmp(str(x, "agent"), str(y, "agent"));
    if (!c)
        c = strcmp(str(x, "label"), str(y, "label"));
    return c ? c : strcmp(str(x, "path"), str(y, "path"));
}

static void forget_text(struct page_rack *r)
{
    for (size_t i = 0; i < r->nhubs; i++)
        free(r->hub_text[i]);
    free(r->hub_text);
    r->hub_text = NULL;
    r->nhubs = 0;
    free(r->text);
    r->text = NULL;
}

/* The ports in rack order (agent, label, path: the ports document's) into hubs of their
 * tiles, hubs in the order of their first port (labels interleave hubs). */
static int place(struct page_rack *r)
{
    size_t n = json_object_size(r->rows), k = 0;
    const json_t **v = malloc((n + 1) * sizeof *v);
    json_t *hubs = json_array(), *by_hub = json_object(), *hub_of = json_object();
    if (!v || !hubs || !by_hub || !hub_of) {
        free(v);
        json_decref(hubs);
        json_decref(by_hub);
        json_decref(hub_of);
        return FR_ENOMEM;
    }
    const char *key;
    json_t *row;
    json_object_foreach(r->rows, key, row)
        v[k++] = row;
    qsort(v, n, sizeof *v, rack_order);
    for (size_t i = 0; i < n; i++) {
        char hk[200], id[160];
        page_key(str(v[i], "agent"), str(v[i], "hub"), hk, sizeof hk);
        json_t *hub = json_object_get(by_hub, hk);
        if (!hub) {
            hub = json_pack("{s:s, s:s, s:[]}", "agent", str(v[i], "agent"), "hub", str(v[i], "hub"), "tiles");
            json_object_set_new(by_hub, hk, json_integer((json_int_t)json_array_size(hubs)));
            json_array_append_new(hubs, hub);
        } else {
            hub = json_array_get(hubs, (size_t)json_integer_value(hub));
        }
        tile_id(v[i], id, sizeof id);
        json_array_append(json_object_get(hub, "tiles"), json_object_get(r->tiles, id));
        json_object_set(hub_of, id, json_object_get(by_hub, hk));
    }
    free(v);
    json_decref(by_hub);
    json_decref(r->doc);
    r->doc = json_pack("{s:o, s:O}", "hubs", hubs, "jobs", r->jobs ? r->jobs : json_array());
    json_decref(r->hub_of);
    r->hub_of = hub_of;
    forget_text(r);
    r->nhubs = json_array_size(hubs);
    r->hub_text = calloc(r->nhubs + 1, sizeof *r->hub_text);
    return r->doc && r->hub_text ? 0 : FR_ENOMEM;
}

/* One hub's text dumped again, or the whole text joined from them: 0 when there was
 * something to do, 1 when the text is current. */
static int text_step(struct page_rack *r)
{
    if (r->text)
        return 1;
    const json_t *hubs = json_object_get(r->doc, "hubs");
    size_t len = 0;
    for (size_t i = 0; i < r->nhubs; i++) {
        if (!r->hub_text[i]) {
            r->hub_text[i] = json_dumps(json_array_get(hubs, i), JSON_COMPACT);
            return 0;
        }
        len += strlen(r->hub_text[i]) + 1;
    }
    /* byte for byte json_dumps(doc, JSON_COMPACT): {"hubs":[HUB,...],"jobs":JOBS} */
    char *jobs = json_dumps(json_object_get(r->doc, "jobs"), JSON_COMPACT);
    FILE *f = jobs ? open_memstream(&r->text, &r->text_len) : NULL;
    if (!f) {
        free(jobs);
        return 0;
    }
    fputs("{\"hubs\":[", f);
    for (size_t i = 0; i < r->nhubs; i++)
        fprintf(f, "%s%s", i ? "," : "", r->hub_text[i]);
    fprintf(f, "],\"jobs\":%s}", jobs);
    fclose(f);
    free(jobs);
    return 0;
}

/* ---- readings ------------------------------------------------------------------- */

struct page_rack *page_rack_new(void)
{
    struct page_rack *r = calloc(1, sizeof *r);
    if (!r)
        return NULL;
    r->rows = json_object();
    r->runs = json_object();
    r->by_port = json_object();
    r->moves = json_array();
    r->tiles = json_object();
    r->dirty = json_object();
    r->hub_of = json_object();
    if (!r->rows || !r->runs || !r->by_port || !r->moves || !r->tiles || !r->dirty || !r->hub_of)
        page_rack_destroy(&r);
    return r;
}

static void end_reading(struct reading *rd)
{
    free(rd->stamp);
    json_decref(rd->told);
    memset(rd, 0, sizeof *rd);
}

static void forget(struct page_rack *r)
{
    json_decref(r->rows);
    json_decref(r->runs);
    json_decref(r->by_port);
    json_decref(r->moves);
    free(r->moves_text);
    json_decref(r->job_set);
    free(r->stamp);
    json_decref(r->jobs);
    json_decref(r->tiles);
    json_decref(r->dirty);
    json_decref(r->doc);
    json_decref(r->hub_of);
    forget_text(r);
    end_reading(&r->rd);
    page_rack_destroy(&r->fresh);
    memset(r, 0, sizeof *r);
}

void page_rack_destroy(struct page_rack **r)
{
    if (!*r)
        return;
    forget(*r);
    free(*r);
    *r = NULL;
}

/* A reading begun: the runs are not read when none was written and the jobs are the
 * same since the last (store_rack_stamp). */
static int begin(struct page_rack *r, struct store *s)
{
    struct reading *rd = &r->rd;
    memset(rd, 0, sizeof *rd);
    rd->stamp = store_rack_stamp(s);
    rd->told = json_array();
    if (!rd->stamp || !rd->told) {
        end_reading(rd);
        return FR_ESTORE;
    }
    rd->on = 1;
    rd->runs_read_up = r->doc && r->stamp && !strcmp(rd->stamp, r->stamp);
    rd->st.whole = !r->doc;
    return 0;
}

/* The reading done: what the clients are to hear into d. */
static void done(struct page_rack *r, struct page_rack_delta *d)
{
    struct reading *rd = &r->rd;
    *d = rd->st;
    d->done = 1;
    d->layout = rd->layout;
    d->jobs = rd->jobs;
    d->tiles = rd->told;
    rd->told = NULL;
    free(r->stamp);
    r->stamp = rd->stamp;
    rd->stamp = NULL;
    end_reading(rd);
}

/* The rack read whole again into r->fresh, a step at a time; once it is done it takes
 * r's place (the clients get a snapshot). */
static int step_fresh(struct page_rack *r, struct store *s, uint64_t budget_ns, struct page_rack_delta *d)
{
    if (!r->fresh && !(r->fresh = page_rack_new()))
        return FR_ENOMEM;
    struct page_rack_delta fd;
    int rc = page_rack_step(r->fresh, s, budget_ns, 1, &fd);
    if (rc < 0 || !fd.done)
        return rc;
    struct page_rack *f = r->fresh;
    r->fresh = NULL;
    forget(r);
    *r = *f;
    free(f);
    json_decref(fd.tiles);
    *d = fd;
    d->tiles = json_array();
    d->whole = d->layout = 1;
    return 0;
}

/* One part of the reading (a page of runs, then of ports; the moves; the tiles put in
 * order; a hub's text): 0, 1 when there was none left, WHOLE, or an error. */
static int part(struct page_rack *r, struct store *s, int want_text)
{
    struct reading *rd = &r->rd;
    int rc = 0;
    if (!rd->runs_read_up)
        rc = read_runs(r, s);
    else if (!rd->ports_read_up)
        rc = read_ports(r, s);
    else if (!rd->moves_read)
        rc = read_moves(r, s);
    else if (!rd->placed) {
        rd->placed = 1;
        if (rd->layout || !r->doc) {
            rd->layout = 1;
            return place(r);
        }
        if (rd->jobs) {
            json_object_set(r->doc, "jobs", r->jobs);
            free(r->text);
            r->text = NULL;
        }
        return 0;
    } else
        return !(want_text || rd->layout) || text_step(r);
    if (rc == 0)
        build_dirty(r);
    return rc;
}

int page_rack_step(struct page_rack *r, struct store *s, uint64_t budget_ns, int want_text,
                   struct page_rack_delta *d)
{
    memset(d, 0, sizeof *d);
    if (r->fresh)
        return step_fresh(r, s, budget_ns, d);
    if (!r->rd.on && begin(r, s) < 0)
        return FR_ESTORE;
    r->rd.st.steps++;
    uint64_t t0 = cpu_ns();
    int rc;
    while ((rc = part(r, s, want_text)) == 0 && cpu_ns() - t0 < budget_ns)
        ;
    if (rc == 1) {
        done(r, d);
        return 0;
    }
    if (rc == WHOLE) { /* a job watched again */
        end_reading(&r->rd);
        return step_fresh(r, s, budget_ns, d);
    }
    return rc < 0 ? rc : 0;
}

const char *page_rack_text(const struct page_rack *r, size_t *len)
{
    *len = r->text_len;
    return r->text;
}

const json_t *page_rack_doc(const struct page_rack *r)
{
    return r->doc;
}

const json_t *page_rack_jobs(const struct page_rack *r)
{
    return json_object_get(r->doc, "jobs");
}
