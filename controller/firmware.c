/* firmware — the controller's firmware catalog; see firmware.h. */
#include "firmware.h"

#include <curl/curl.h>
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ctl.h"
#include "fr_err.h"
#include "fr_http.h"
#include "fr_log.h"
#include "fr_time.h"

#define MAX_SOURCES 32
#define CATALOG_MAX_BYTES (64L * 1024 * 1024)
#define STALE_CHECK_MS (10 * 60 * 1000) /* how often the age of the sources is looked at */

struct waiter {
    void (*done)(void *arg, int status, json_t *report);
    void *arg;
    struct waiter *next;
};

struct firmware {
    struct controller *c;
    struct fr_catalog cat;
    size_t nfiles;
    json_t *load_errors;          /* files that did not parse, with why */
    uint64_t loaded_ms;
    char *sources[MAX_SOURCES];
    size_t nsources;
    uv_timer_t stale;
    /* a refresh in progress (one at a time; later askers wait for it) */
    int refreshing;
    uv_work_t work;
    struct waiter *waiters;
    json_t *report;               /* built on the worker, read on the loop after */
    int failures;
};

/* ---- loading the directory ---------------------------------------------------- */

static int catalog_file(const char *name)
{
    size_t n = strlen(name);
    return name[0] != '.' && ((n > 5 && !strcmp(name + n - 5, ".json")) ||
                              (n > 4 && !strcmp(name + n - 4, ".xml")) ||
                              (n > 6 && !strcmp(name + n - 6, ".plist")));
}

/* Reads every catalog file; a file that does not parse is reported and skipped,
 * the others still count. */
static void load(struct firmware *f)
{
    const char *dir = f->c->cfg.fw_catalog_dir;
    struct fr_catalog cat = { 0 };
    json_t *errors = json_array();
    size_t files = 0;
    DIR *d = opendir(dir);
    struct dirent *de;
    while (d && (de = readdir(d))) {
        if (!catalog_file(de->d_name))
            continue;
        char path[1024], err[512];
        snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
        if (fr_catalog_load(&cat, path, err, sizeof err) < 0) {
            fr_warn("firmware", "catalog file skipped: %s", err);
            json_array_append_new(errors, json_string(err));
        } else {
            files++;
        }
    }
    if (d)
        closedir(d);
    fr_catalog_release(&f->cat);
    f->cat = cat;
    f->nfiles = files;
    json_decref(f->load_errors);
    f->load_errors = errors;
    f->loaded_ms = fr_time_wall_ms();
    fr_info("firmware", "catalog '%s': %zu files, %zu firmwares", dir, files, cat.n);
}

/* ---- refreshing from the sources (thread pool) --------------------------------- */

/* The file a source is kept in: its URL without the scheme, made a file name. */
static void source_file(const char *dir, const char *url, const char *data, char *out, size_t len)
{
    const char *u = strstr(url, "://");
    u = u ? u + 3 : url;
    char name[200];
    size_t i = 0;
    for (; *u && i < sizeof name - 8; u++)
        name[i++] = (strchr("/?&=:", *u) || (unsigned char)*u < 0x21) ? '_' : *u;
    name[i] = '\0';
    snprintf(out, len, "%s/%s%s", dir, name, data && data[0] == '{' ? ".json" : ".plist");
}

static int fetch_one(struct firmware *f, const char *url, char *err, size_t errlen, size_t *count)
{
    struct fr_http_body b = { NULL, 0, CATALOG_MAX_BYTES };
    char cerr[CURL_ERROR_SIZE] = "";
    CURL *h = curl_easy_init();
    if (!h)
        return fr_seterr(FR_ENOMEM, err, errlen, "%s: cannot start a transfer", url);
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, fr_http_collect);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &b);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, cerr);
    curl_easy_setopt(h, CURLOPT_FAILONERROR, 1L);
    curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 1L);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, 15L);
    curl_easy_setopt(h, CURLOPT_TIMEOUT, 120L);
    CURLcode rc = curl_easy_perform(h);
    curl_easy_cleanup(h);
    int ret = 0;
    struct fr_catalog check = { 0 };
    char perr[512], path[1200], tmp[1300];
    if (rc != CURLE_OK) {
        ret = fr_seterr(FR_EIO, err, errlen, "%s: %s", url, cerr[0] ? cerr : curl_easy_strerror(rc));
    } else if (fr_catalog_load_data(&check, url, b.data ? b.data : "", b.len, perr, sizeof perr) < 0) {
        ret = fr_seterr(FR_EINVAL, err, errlen, "%s", perr); /* never replaces a good file */
    } else {
        *count = check.n;
        source_file(f->c->cfg.fw_catalog_dir, url, b.data, path, sizeof path);
        snprintf(tmp, sizeof tmp, "%s.tmp", path);
        FILE *fp = fopen(tmp, "wb");
        int ok = fp && fwrite(b.data, 1, b.len, fp) == b.len && fflush(fp) == 0 && fsync(fileno(fp)) == 0;
        if (fp)
            fclose(fp);
        if (!ok || rename(tmp, path) < 0) {
            ret = fr_seterr(FR_EIO, err, errlen, "cannot write '%s': %s", path, strerror(errno));
            unlink(tmp);
        }
    }
    fr_catalog_release(&check);
    free(b.data);
    return ret;
}

static void refresh_work(uv_work_t *w)
{
    struct firmware *f = w->data;
    mkdir(f->c->cfg.fw_catalog_dir, 0755);
    for (size_t i = 0; i < f->nsources; i++) {
        char err[1024];
        size_t n = 0;
        int rc = fetch_one(f, f->sources[i], err, sizeof err, &n);
        f->failures += rc < 0;
        json_array_append_new(f->report, rc < 0
            ? json_pack("{s:s, s:s}", "source", f->sources[i], "error", err)
            : json_pack("{s:s, s:I}", "source", f->sources[i], "firmwares", (json_int_t)n));
    }
}

static void refresh_done(uv_work_t *w, int status)
{
    struct firmware *f = w->data;
    load(f);
    json_t *report = f->report;
    f->report = NULL;
    size_t i;
    json_t *r;
    json_array_foreach(report, i, r)
        if (json_object_get(r, "error"))
            fr_warn("firmware", "cannot refresh: %s", json_string_value(json_object_get(r, "error")));
    int rc = f->failures ? FR_EIO : 0;
    f->refreshing = 0;
    struct waiter *wt = f->waiters;
    f->waiters = NULL;
    json_t *doc = json_pack("{s:O, s:I, s:I}", "sources", report, "files", (json_int_t)f->nfiles,
                            "firmwares", (json_int_t)f->cat.n);
    while (wt) {
        struct waiter *next = wt->next;
        wt->done(wt->arg, rc, doc);
        free(wt);
        wt = next;
    }
    json_decref(doc);
    json_decref(report);
}

void firmware_refresh(struct controller *c, void (*done)(void *arg, int status, json_t *report),
                      void *arg)
{
    struct firmware *f = c->firmware;
    if (done) {
        struct waiter *w = calloc(1, sizeof *w);
        if (w) {
            *w = (struct waiter){ done, arg, f->waiters };
            f->waiters = w;
        }
    }
    if (f->refreshing)
        return; /* this one's answer serves every asker */
    f->refreshing = 1;
    f->failures = 0;
    f->report = json_array();
    f->work.data = f;
    fr_info("firmware", "refreshing the catalog from %zu sources", f->nsources);
    uv_queue_work(c->loop, &f->work, refresh_work, refresh_done);
}

static int stale(struct firmware *f)
{
    for (size_t i = 0; i < f->nsources; i++) {
        char json[1200], plist[1200];
        source_file(f->c->cfg.fw_catalog_dir, f->sources[i], "{", json, sizeof json);
        source_file(f->c->cfg.fw_catalog_dir, f->sources[i], "<", plist, sizeof plist);
        int64_t age = f->c->cfg.fw_max_age_s;
        if (!fr_catalog_fresh(json, age) && !fr_catalog_fresh(plist, age))
            return 1;
    }
    return 0;
}

static void on_stale_check(uv_timer_t *t)
{
    struct firmware *f = t->data;
    if (!f->refreshing && stale(f))
        firmware_refresh(f->c, NULL, NULL);
}

/* ---- API --------------------------------------------------------------------- */

int firmware_start(struct controller *c, char *err, size_t errlen)
{
    struct firmware *f = calloc(1, sizeof *f);
    if (!f)
        return FR_ENOMEM;
    f->c = c;
    c->firmware = f;
    /* URLs carry commas ("iPhone12,1"): only blanks separate them (checked at configure) */
    char *list = strdup(c->cfg.fw_sources), *save = NULL;
    for (char *t = strtok_r(list, " \t", &save); t && f->nsources < MAX_SOURCES;
         t = strtok_r(NULL, " \t", &save))
        f->sources[f->nsources++] = strdup(t);
    free(list);
    curl_global_init(CURL_GLOBAL_DEFAULT); /* before any worker thread uses curl */
    load(f);
    uv_timer_init(c->loop, &f->stale);
    f->stale.data = f;
    if (f->nsources)
        uv_timer_start(&f->stale, on_stale_check, 0, STALE_CHECK_MS);
    return 0;
}

int firmware_resolve(struct controller *c, const char *model, const char *selector,
                     struct fr_fw *out, char *err, size_t errlen)
{
    return fr_catalog_resolve(&c->firmware->cat, model, selector, out, err, errlen);
}

int firmware_known(struct controller *c, const char *selector)
{
    const struct fr_catalog *cat = &c->firmware->cat;
    for (size_t i = 0; i < cat->n; i++)
        if (!strcmp(selector, "latest") || !strcmp(cat->fw[i].version, selector) ||
            !strcmp(cat->fw[i].build, selector))
            return 1;
    return 0;
}

static json_t *fw_json(const struct fr_fw *w)
{
    return json_pack("{s:s, s:s, s:s, s:o, s:s, s:s, s:s, s:I}", "product_type", w->product_type,
                     "version", w->version, "build", w->build, "signed",
                     w->signed_known ? json_boolean(w->is_signed) : json_null(), "url", w->url,
                     "sha256", w->sha256, "sha1", w->sha1, "size", (json_int_t)w->size);
}

json_t *firmware_doc(struct controller *c, const char *model, const char *selector, char *err,
                     size_t errlen)
{
    struct firmware *f = c->firmware;
    json_t *resolved = NULL;
    if (selector && *selector) {
        struct fr_fw w;
        if (!model || !*model) {
            fr_seterr(FR_EINVAL, err, errlen, "firmware: name a model to resolve '%s' for", selector);
            return NULL;
        }
        if (firmware_resolve(c, model, selector, &w, err, errlen) < 0)
            return NULL;
        resolved = fw_json(&w);
    }
    json_t *entries = json_array(), *sources = json_array();
    for (size_t i = 0; i < f->cat.n; i++)
        if (!model || !*model || !strcmp(model, f->cat.fw[i].product_type))
            json_array_append_new(entries, fw_json(&f->cat.fw[i]));
    for (size_t i = 0; i < f->nsources; i++)
        json_array_append_new(sources, json_string(f->sources[i]));
    char loaded[32];
    fr_time_iso8601(f->loaded_ms, loaded, sizeof loaded);
    json_t *doc = json_pack("{s:{s:s, s:o, s:I, s:O, s:s, s:b, s:o}, s:o}", "catalog", "dir",
                            c->cfg.fw_catalog_dir, "sources", sources, "files", (json_int_t)f->nfiles,
                            "errors", f->load_errors, "loaded", loaded,
                            "refreshing", f->refreshing, "firmwares", entries, "mirror",
                            mirror_doc(c));
    if (resolved)
        json_object_set_new(doc, "resolved", resolved);
    return doc;
}

int firmware_reload(struct controller *c, char *said, size_t len)
{
    struct firmware *f = c->firmware;
    const char *dir = c->cfg.fw_catalog_dir;
    if (access(dir, R_OK | X_OK) < 0)
        return fr_seterr(FR_ENOTFOUND, said, len, "cannot read '%s': %s", dir, strerror(errno));
    load(f);
    snprintf(said, len, "'%s': %zu files, %zu firmwares, %zu files skipped", dir, f->nfiles, f->cat.n,
             json_array_size(f->load_errors));
    return 0;
}

static void on_closed(uv_handle_t *h)
{
}

void firmware_close(struct controller *c)
{
    if (c->firmware)
        uv_close((uv_handle_t *)&c->firmware->stale, on_closed);
}

void firmware_destroy(struct controller *c)
{
    struct firmware *f = c->firmware;
    if (!f)
        return;
    fr_catalog_release(&f->cat);
    json_decref(f->load_errors);
    json_decref(f->report);
    for (size_t i = 0; i < f->nsources; i++)
        free(f->sources[i]);
    while (f->waiters) {
        struct waiter *w = f->waiters;
        f->waiters = w->next;
        free(w);
    }
    free(f);
    c->firmware = NULL;
}
