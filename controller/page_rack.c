/* page_rack — the rack page's rack, kept and read only where it changed; see page_rack.h. */
#include "page_rack.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fr_err.h"
#include "page_tiles.h"
#include "store.h"

struct page_rack {
    json_t *ports;      /* the port rows in rack order (the fields a tile reads) */
    uint64_t *hashes;   /* each row's hash, to notice the ones that changed */
    size_t nports;
    uint64_t layout;    /* the hash of every port's agent, hub and path, in order */
    json_t *index;      /* "agent<US>path" -> its row's index in ports */
    json_t *runs;       /* "job/ecid" -> run */
    json_t *by_port;    /* "agent<US>port" -> [run...] by job, then ECID (the status order) */
    json_t *moves;      /* the open move instructions */
    char *moves_text, *job_ids;
    char *stamp;        /* store_rack_stamp at the last reading of the runs */
    int64_t seq;        /* the change number read up to */
    json_t *doc;        /* {"hubs", "jobs"}: what the clients were last told */
    json_t *tiles;      /* "agent:path" -> its tile in doc (the same objects) */
};

/* ---- port rows ------------------------------------------------------------------ */

static uint64_t fnv(uint64_t h, const char *s)
{
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ULL;
    return (h ^ 0x1f) * 1099511628211ULL; /* a separator: "ab","c" is not "a","bc" */
}

static uint64_t row_hash(const struct store_rack_port *p)
{
    uint64_t h = 14695981039346656037ULL;
    const char *f[] = { p->agent, p->path, p->label, p->hub, p->reason, p->ecid };
    for (size_t i = 0; i < sizeof f / sizeof f[0]; i++)
        h = fnv(h, f[i]);
    return (h ^ (uint64_t)p->strikes ^ ((uint64_t)p->quarantined << 62)) * 1099511628211ULL;
}

static json_t *port_obj(const struct store_rack_port *p)
{
    return json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:I}", "agent", p->agent, "path", p->path, "label",
                     p->label, "hub", p->hub, "state", p->quarantined ? "quarantined" : "", "reason", p->reason,
                     "ecid", p->ecid, "strikes", (json_int_t)p->strikes);
}

/* One walk of the ports: the new hashes and layout, and a row object for every port
 * (all) or only for those whose hash differs from the kept one (changed: index -> row). */
struct scan {
    const struct page_rack *r;
    int all;
    uint64_t *hashes, layout;
    size_t n, cap;
    json_t *rows;    /* all: every row, in order */
    json_t *changed; /* not all: "index" -> row */
    int oom;
};

static void on_port(void *arg, const struct store_rack_port *p)
{
    struct scan *sc = arg;
    if (sc->n == sc->cap) {
        size_t cap = sc->cap ? 2 * sc->cap : 1024;
        uint64_t *h = realloc(sc->hashes, cap * sizeof *h);
        if (!h) {
            sc->oom = 1;
            return;
        }
        sc->hashes = h;
        sc->cap = cap;
    }
    uint64_t h = row_hash(p);
    sc->layout = fnv(fnv(fnv(sc->layout, p->agent), p->hub), p->path);
    size_t i = sc->n++;
    sc->hashes[i] = h;
    if (sc->all) {
        sc->oom |= json_array_append_new(sc->rows, port_obj(p)) < 0;
    } else if (i >= sc->r->nports || sc->r->hashes[i] != h) {
        char key[32];
        snprintf(key, sizeof key, "%zu", i);
        sc->oom |= json_object_set_new(sc->changed, key, port_obj(p)) < 0;
    }
}

static int scan_ports(const struct page_rack *r, struct store *s, int all, struct scan *sc)
{
    memset(sc, 0, sizeof *sc);
    sc->r = r;
    sc->all = all;
    sc->layout = 14695981039346656037ULL;
    sc->rows = all ? json_array() : NULL;
    sc->changed = all ? NULL : json_object();
    if (store_rack_ports(s, on_port, sc) < 0 || sc->oom || !(all ? sc->rows : sc->changed)) {
        free(sc->hashes);
        json_decref(sc->rows);
        json_decref(sc->changed);
        return FR_ESTORE;
    }
    return 0;
}

/* ---- runs ----------------------------------------------------------------------- */

static const char *str(const json_t *o, const char *key)
{
    const char *v = json_string_value(json_object_get(o, key));
    return v ? v : "";
}

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

static void mark(json_t *affected, const char *port_key)
{
    json_object_set_new(affected, port_key, json_true());
}

/* run replaces the kept run of its job and unit: out of its old port's list, into its
 * new one's in order; both ports' tiles are to be built again. */
static void apply_run(struct page_rack *r, json_t *run, json_t *affected)
{
    char key[160], port[200];
    run_key(run, key, sizeof key);
    json_t *was = json_object_get(r->runs, key);
    if (was) {
        port_of_run(was, port, sizeof port);
        mark(affected, port);
        json_t *list = json_object_get(r->by_port, port);
        for (size_t i = 0; i < json_array_size(list); i++)
            if (json_array_get(list, i) == was) {
                json_array_remove(list, i);
                break;
            }
    }
    port_of_run(run, port, sizeof port);
    mark(affected, port);
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

/* ---- moves and jobs ------------------------------------------------------------- */

static void mark_moves(const json_t *moves, json_t *affected)
{
    const json_t *m;
    size_t i;
    char port[200];
    json_array_foreach(moves, i, m) {
        page_key(str(m, "from_agent"), str(m, "from_port"), port, sizeof port);
        mark(affected, port);
        page_key(str(m, "to_agent"), str(m, "to_port"), port, sizeof port);
        mark(affected, port);
    }
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

static char *job_ids(const json_t *watch)
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    const json_t *j;
    size_t i;
    if (!f)
        return NULL;
    json_array_foreach(json_object_get(watch, "jobs"), i, j)
        fprintf(f, "%lld,", (long long)json_integer_value(json_object_get(j, "id")));
    fclose(f);
    return text;
}

/* ---- readings ------------------------------------------------------------------- */

struct page_rack *page_rack_new(void)
{
    return calloc(1, sizeof(struct page_rack));
}

static void forget(struct page_rack *r)
{
    json_decref(r->ports);
    free(r->hashes);
    json_decref(r->index);
    json_decref(r->runs);
    json_decref(r->by_port);
    json_decref(r->moves);
    free(r->moves_text);
    free(r->job_ids);
    free(r->stamp);
    json_decref(r->doc);
    json_decref(r->tiles);
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

static void tile_index(struct page_rack *r)
{
    const json_t *h, *t;
    size_t i, j;
    r->tiles = json_object();
    json_array_foreach(json_object_get(r->doc, "hubs"), i, h)
        json_array_foreach(json_object_get(h, "tiles"), j, t)
            json_object_set(r->tiles, str(t, "id"), (json_t *)t);
}

/* The tiles that differ from the ones in old (the same layout's): none when old is NULL
 * (the clients get a snapshot). */
static void changed_tiles(const struct page_rack *r, const json_t *old, struct page_rack_delta *d)
{
    const json_t *h;
    json_t *t;
    size_t i, j;
    if (old)
        json_array_foreach(json_object_get(r->doc, "hubs"), i, h)
            json_array_foreach(json_object_get(h, "tiles"), j, t)
                if (!json_equal(t, json_object_get(old, str(t, "id"))))
                    json_array_append(d->tiles, t);
}

/* The rack read whole: every port row, every watched run; what the clients were told
 * before is compared with it when the layout is the same. */
static int read_whole(struct page_rack *r, struct store *s, struct page_rack_delta *d)
{
    struct scan sc;
    if (scan_ports(r, s, 1, &sc) < 0)
        return FR_ESTORE;
    char *stamp = store_rack_stamp(s);
    json_t *watch = stamp ? store_doc_watch(s, 0, 0, 0) : NULL;
    if (!watch) {
        free(sc.hashes);
        json_decref(sc.rows);
        free(stamp);
        return FR_ESTORE;
    }
    json_t *old_tiles = r->tiles, *old_jobs = json_incref(json_object_get(r->doc, "jobs"));
    int same_layout = r->doc && sc.n == r->nports && sc.layout == r->layout;
    r->tiles = NULL;
    forget(r);
    r->ports = sc.rows;
    r->hashes = sc.hashes;
    r->nports = sc.n;
    r->layout = sc.layout;
    r->index = json_object();
    const json_t *p, *run;
    size_t i;
    char key[200];
    json_array_foreach(r->ports, i, p) {
        page_key(str(p, "agent"), str(p, "path"), key, sizeof key);
        json_object_set_new(r->index, key, json_integer((json_int_t)i));
    }
    r->runs = json_object();
    r->by_port = json_object();
    json_t *none = json_object(); /* nothing to mark: every tile is built below */
    json_array_foreach(json_object_get(watch, "runs"), i, run)
        apply_run(r, (json_t *)run, none);
    json_decref(none);
    r->moves = json_incref(json_object_get(watch, "moves"));
    r->moves_text = json_dumps(r->moves, JSON_COMPACT);
    r->job_ids = job_ids(watch);
    r->seq = json_integer_value(json_object_get(watch, "seq"));
    r->stamp = stamp;
    r->doc = page_tiles_of(r->ports, r->by_port, r->moves);
    json_object_set_new(r->doc, "jobs", job_summary(watch));
    tile_index(r);
    d->whole = 1;
    d->layout = !same_layout;
    d->jobs = !json_equal(old_jobs, json_object_get(r->doc, "jobs"));
    changed_tiles(r, same_layout ? old_tiles : NULL, d);
    json_decref(old_tiles);
    json_decref(old_jobs);
    d->ports_changed = r->nports;
    d->runs_read = json_array_size(json_object_get(watch, "runs"));
    d->tiles_built = r->nports;
    json_decref(watch);
    return 0;
}

/* The tile of the port at index i built again; into d->tiles when it changed. */
static void rebuild_tile(struct page_rack *r, size_t i, struct page_rack_delta *d)
{
    const json_t *p = json_array_get(r->ports, i);
    char key[200], id[160];
    page_key(str(p, "agent"), str(p, "path"), key, sizeof key);
    snprintf(id, sizeof id, "%s:%s", str(p, "agent"), str(p, "path"));
    json_t *t = page_tile(p, json_object_get(r->by_port, key), r->moves);
    json_t *was = json_object_get(r->tiles, id);
    d->tiles_built++;
    if (t && was && !json_equal(t, was)) {
        json_object_update(was, t); /* in place: the same object is in doc's hub */
        json_array_append(d->tiles, was);
    }
    json_decref(t);
}

static int by_index(const void *a, const void *b)
{
    size_t x = *(const size_t *)a, y = *(const size_t *)b;
    return x < y ? -1 : x > y;
}

/* The tiles of the affected ports built again, in rack order (a run on a port that is
 * not in the rack has no tile). */
static void rebuild_tiles(struct page_rack *r, const json_t *affected, struct page_rack_delta *d)
{
    size_t *at = malloc((json_object_size(affected) + 1) * sizeof *at), n = 0;
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)affected, k, v) {
        json_t *i = json_object_get(r->index, k);
        if (i && at)
            at[n++] = (size_t)json_integer_value(i);
    }
    if (at)
        qsort(at, n, sizeof *at, by_index);
    for (size_t i = 0; i < n; i++)
        rebuild_tile(r, at[i], d);
    free(at);
}

/* What changed since the last reading; whole again when the layout or the jobs did. */
static int read_changes(struct page_rack *r, struct store *s, struct page_rack_delta *d)
{
    struct scan sc;
    if (scan_ports(r, s, 0, &sc) < 0)
        return FR_ESTORE;
    int layout = sc.n != r->nports || sc.layout != r->layout;
    char *stamp = layout ? NULL : store_rack_stamp(s);
    /* quiet: no run written and the same jobs since the last reading; only the moves are read */
    int quiet = stamp && r->stamp && !strcmp(stamp, r->stamp);
    json_t *watch = !stamp ? NULL : quiet ? store_doc_moves(s) : store_doc_watch(s, 0, r->seq, 0);
    char *ids = watch && !quiet ? job_ids(watch) : NULL;
    if (!watch || (!quiet && (!ids || strcmp(ids, r->job_ids)))) {
        free(sc.hashes);
        json_decref(sc.changed);
        json_decref(watch);
        free(ids);
        free(stamp);
        return read_whole(r, s, d);
    }
    free(ids);
    free(r->stamp);
    r->stamp = stamp;
    json_t *affected = json_object(), *v;
    const char *k;
    json_object_foreach(sc.changed, k, v) { /* the same ports in the same places: rows replaced */
        size_t i = (size_t)strtoull(k, NULL, 10);
        json_array_set(r->ports, i, v);
        char key[200];
        page_key(str(v, "agent"), str(v, "path"), key, sizeof key);
        mark(affected, key);
    }
    d->ports_changed = json_object_size(sc.changed);
    json_decref(sc.changed);
    free(r->hashes);
    r->hashes = sc.hashes;
    const json_t *run;
    size_t i;
    json_array_foreach(json_object_get(watch, "runs"), i, run)
        apply_run(r, (json_t *)run, affected);
    d->runs_read = json_array_size(json_object_get(watch, "runs"));
    if (!quiet)
        r->seq = json_integer_value(json_object_get(watch, "seq"));
    char *moves = json_dumps(json_object_get(watch, "moves"), JSON_COMPACT);
    if (!moves || !r->moves_text || strcmp(moves, r->moves_text)) {
        mark_moves(r->moves, affected);
        json_decref(r->moves);
        r->moves = json_incref(json_object_get(watch, "moves"));
        mark_moves(r->moves, affected);
    }
    free(r->moves_text);
    r->moves_text = moves;
    rebuild_tiles(r, affected, d);
    json_decref(affected);
    if (!quiet) {
        json_t *jobs = job_summary(watch);
        d->jobs = !json_equal(jobs, json_object_get(r->doc, "jobs"));
        json_object_set_new(r->doc, "jobs", jobs);
    }
    json_decref(watch);
    return 0;
}

int page_rack_read(struct page_rack *r, struct store *s, struct page_rack_delta *d)
{
    memset(d, 0, sizeof *d);
    d->tiles = json_array();
    if (!d->tiles)
        return FR_ENOMEM;
    int rc = r->doc ? read_changes(r, s, d) : read_whole(r, s, d);
    if (rc < 0) {
        json_decref(d->tiles);
        memset(d, 0, sizeof *d);
    }
    return rc;
}

const json_t *page_rack_doc(const struct page_rack *r)
{
    return r->doc;
}

const json_t *page_rack_jobs(const struct page_rack *r)
{
    return json_object_get(r->doc, "jobs");
}
