/* rackmap — reading, querying and atomically writing the rack map. */
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fr_config.h"
#include "fr_err.h"
#include "fr_keys.h"
#include "rackmap.h"

#define RACKMAP_MAX 4096 /* entries per section */

struct rackmap *rackmap_new(void)
{
    return calloc(1, sizeof(struct rackmap));
}

void rackmap_destroy(struct rackmap **m)
{
    if (*m) {
        free((*m)->ports);
        free((*m)->hubs);
        free(*m);
        *m = NULL;
    }
}

/* "1-1.4.2": bus, '-', port numbers joined by '.'; a hub may also be a root hub "usb2". */
static int path_ok(const char *p, int hub)
{
    if (hub && strncmp(p, "usb", 3) == 0 && isdigit((unsigned char)p[3]))
        return strspn(p + 3, "0123456789") == strlen(p + 3);
    size_t bus = strspn(p, "0123456789");
    if (bus == 0 || p[bus] != '-' || strlen(p) >= 32)
        return 0;
    for (const char *c = p + bus + 1;; c++) {
        size_t n = strspn(c, "0123456789");
        if (n == 0)
            return 0;
        c += n;
        if (*c == '\0')
            return 1;
        if (*c != '.')
            return 0;
    }
}

static int name_ok(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n >= 32)
        return 0;
    for (; *s; s++)
        if (!isgraph((unsigned char)*s) || *s == '=' || *s == ';' || *s == '[' || *s == ']')
            return 0;
    return 1;
}

static const struct rackmap_entry *by_path(const struct rackmap_entry *e, size_t n, const char *path)
{
    for (size_t i = 0; i < n; i++)
        for (int j = 0; j < e[i].npaths; j++)
            if (strcmp(e[i].paths[j], path) == 0)
                return &e[i];
    return NULL;
}

static const struct rackmap_entry *by_name(const struct rackmap_entry *e, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(e[i].name, name) == 0)
            return &e[i];
    return NULL;
}

/* " (line N)" for an entry read from the file, "" for one added since. */
static void where(const struct rackmap_entry *e, char *buf, size_t len)
{
    if (e->line)
        snprintf(buf, len, " (line %d)", e->line);
    else
        buf[0] = '\0';
}

/* Adds an entry to ports (hub = 0) or hubs; paths are space separated in text. */
static int add_entry(struct rackmap *m, int hub, const char *name, const char *const *paths,
                     int npaths, int line, char *err, size_t errlen)
{
    struct rackmap_entry **arr = hub ? &m->hubs : &m->ports;
    size_t *n = hub ? &m->nhubs : &m->nports, *cap = hub ? &m->hubs_cap : &m->ports_cap;
    const char *kind = hub ? "hub" : "port";
    char at[32];
    if (!name_ok(name))
        return fr_seterr(FR_EINVAL, err, errlen, "expected a %s name of 1 to 31 characters without "
                         "spaces, '=', ';' or brackets", kind);
    const struct rackmap_entry *dup = by_name(*arr, *n, name);
    if (dup) {
        where(dup, at, sizeof at);
        return fr_seterr(FR_EEXIST, err, errlen, "%s '%s' is given twice%s", kind, name, at);
    }
    if (npaths < 1 || npaths > RACKMAP_PATHS)
        return fr_seterr(FR_EINVAL, err, errlen, "expected 1 or %d paths (the halves of one %s)",
                         RACKMAP_PATHS, kind);
    for (int i = 0; i < npaths; i++) {
        if (!path_ok(paths[i], hub))
            return fr_seterr(FR_EINVAL, err, errlen, "expected a kernel port path like 1-1.4.2, "
                             "got '%s'", paths[i]);
        dup = by_path(*arr, *n, paths[i]);
        for (int j = 0; !dup && j < i; j++)
            if (strcmp(paths[j], paths[i]) == 0)
                return fr_seterr(FR_EEXIST, err, errlen, "path '%s' is given twice", paths[i]);
        if (dup) {
            where(dup, at, sizeof at);
            return fr_seterr(FR_EEXIST, err, errlen, "path '%s' is already %s '%s'%s", paths[i],
                             kind, dup->name, at);
        }
    }
    if (*n == *cap) {
        if (*n >= RACKMAP_MAX)
            return fr_seterr(FR_ETOOBIG, err, errlen, "more than %d %ss", RACKMAP_MAX, kind);
        size_t ncap = *cap ? *cap * 2 : 32;
        struct rackmap_entry *p = realloc(*arr, ncap * sizeof *p);
        if (!p)
            return fr_seterr(FR_ENOMEM, err, errlen, "out of memory");
        *arr = p;
        *cap = ncap;
    }
    struct rackmap_entry *e = &(*arr)[(*n)++];
    memset(e, 0, sizeof *e);
    snprintf(e->name, sizeof e->name, "%s", name);
    for (int i = 0; i < npaths; i++)
        snprintf(e->paths[i], sizeof e->paths[i], "%s", paths[i]);
    e->npaths = npaths;
    e->line = line;
    return 0;
}

int rackmap_add_port(struct rackmap *m, const char *label, const char *const *paths, int npaths,
                     char *err, size_t errlen)
{
    return add_entry(m, 0, label, paths, npaths, 0, err, errlen);
}

/* ---- loading ------------------------------------------------------------------- */

struct load {
    struct rackmap *m;
    const char *file;
    char *err;
    size_t errlen;
    int failed;
};

static int fail(struct load *l, int line, const char *section, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

static int fail(struct load *l, int line, const char *section, const char *key, const char *fmt, ...)
{
    char why[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof why, fmt, ap);
    va_end(ap);
    if (!l->failed) /* the first problem is the one reported */
        fr_seterr(FR_ECONFIG, l->err, l->errlen, "%s:%d: [%s] %s: %s", l->file, line, section, key,
                  why);
    l->failed = 1;
    return 0;
}

/* Splits value into at most max words (copied into words[][32]); -1 when more. */
static int split(const char *value, char words[][32], int max)
{
    int n = 0;
    for (const char *p = value; *p;) {
        p += strspn(p, " \t");
        size_t len = strcspn(p, " \t");
        if (len == 0)
            break;
        if (n == max || len >= 32)
            return -1;
        memcpy(words[n], p, len);
        words[n++][len] = '\0';
        p += len;
    }
    return n;
}

static int on_uplink(struct load *l, int line, const char *name, const char *value)
{
    char hubs[64][32];
    if (!name_ok(name)) /* its hubs keep it in uplink[32]: a longer name would be cut */
        return fail(l, line, "uplinks", name, "expected an uplink name of 1 to %zu characters "
                    "without spaces, '=', ';' or brackets", sizeof l->m->hubs[0].uplink - 1);
    int n = split(value, hubs, 64);
    if (n <= 0)
        return fail(l, line, "uplinks", name, "expected the names of the hubs sharing it");
    for (int i = 0; i < n; i++) {
        struct rackmap_entry *h = (struct rackmap_entry *)by_name(l->m->hubs, l->m->nhubs, hubs[i]);
        if (!h)
            return fail(l, line, "uplinks", name, "no hub '%s' in [hubs] above", hubs[i]);
        if (h->uplink[0])
            return fail(l, line, "uplinks", name, "hub '%s' is already on uplink '%s'", hubs[i],
                        h->uplink);
        snprintf(h->uplink, sizeof h->uplink, "%s", name);
    }
    return 1;
}

static int on_entry(void *user, const char *section, const char *name, const char *value, int line)
{
    struct load *l = user;
    int hub = strcmp(section, "hubs") == 0;
    if (strcmp(section, "uplinks") == 0)
        return on_uplink(l, line, name, value);
    if (!hub && strcmp(section, "ports") != 0)
        return fail(l, line, section, name, "unknown section (expected [ports], [hubs] or [uplinks])");
    char words[RACKMAP_PATHS + 1][32];
    int n = split(value, words, RACKMAP_PATHS);
    const char *paths[RACKMAP_PATHS] = { words[0], words[1] };
    char why[256];
    if (n < 0)
        return fail(l, line, section, name, "expected 1 or %d paths, got '%s'", RACKMAP_PATHS, value);
    if (add_entry(l->m, hub, name, paths, n, line, why, sizeof why) < 0)
        return fail(l, line, section, name, "%s", why);
    return 1;
}

int rackmap_load(const char *path, struct rackmap **out, char *err, size_t errlen)
{
    *out = NULL;
    if (access(path, F_OK) != 0)
        return fr_seterr(errno == ENOENT ? FR_ENOTFOUND : FR_ECONFIG, err, errlen,
                         "cannot open rack map '%s': %s", path, strerror(errno));
    struct load l = { rackmap_new(), path, err, errlen, 0 };
    if (!l.m)
        return fr_seterr(FR_ENOMEM, err, errlen, "out of memory");
    int rc = fr_cfg_ini_parse(path, on_entry, &l, err, errlen);
    if (rc < 0 || l.failed) {
        rackmap_destroy(&l.m);
        return FR_ECONFIG;
    }
    *out = l.m;
    return 0;
}

/* ---- queries ------------------------------------------------------------------- */

const char *rackmap_label(const struct rackmap *m, const char *path)
{
    const struct rackmap_entry *e = m ? by_path(m->ports, m->nports, path) : NULL;
    return e ? e->name : NULL;
}

const char *rackmap_hub(const struct rackmap *m, const char *hub)
{
    const struct rackmap_entry *e = m ? by_path(m->hubs, m->nhubs, hub) : NULL;
    return e ? e->name : NULL;
}

void rackmap_next_label(const struct rackmap *m, const char *prefix, char *buf, size_t len)
{
    for (int i = 1;; i++) {
        snprintf(buf, len, "%s%02d", prefix, i);
        if (!by_name(m->ports, m->nports, buf))
            return;
    }
}

/* ---- writing ------------------------------------------------------------------- */

static void write_entries(FILE *f, const char *section, const struct rackmap_entry *e, size_t n)
{
    if (n)
        fprintf(f, "\n[%s]\n", section);
    for (size_t i = 0; i < n; i++) {
        fprintf(f, "%s =", e[i].name);
        for (int j = 0; j < e[i].npaths; j++)
            fprintf(f, " %s", e[i].paths[j]);
        fputc('\n', f);
    }
}

static void write_uplinks(FILE *f, const struct rackmap *m)
{
    int header = 0;
    for (size_t i = 0; i < m->nhubs; i++) {
        const char *up = m->hubs[i].uplink;
        int first = up[0] != '\0';
        for (size_t j = 0; first && j < i; j++)
            first = strcmp(m->hubs[j].uplink, up) != 0;
        if (!first)
            continue;
        if (!header++)
            fputs("\n[uplinks]\n", f);
        fprintf(f, "%s =", up);
        for (size_t j = i; j < m->nhubs; j++)
            if (strcmp(m->hubs[j].uplink, up) == 0)
                fprintf(f, " %s", m->hubs[j].name);
        fputc('\n', f);
    }
}

int rackmap_save(const struct rackmap *m, const char *path, char *err, size_t errlen)
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len); /* the text first, then one atomic write */
    if (!f)
        return fr_seterr(FR_ENOMEM, err, errlen, "cannot write '%s': out of memory", path);
    fputs("; flashrack rack map: printed label = kernel port path(s) (a USB 3 port has two).\n"
          "; Written by 'flashrack-agent rack learn'; edit by hand as needed.\n", f);
    write_entries(f, "ports", m->ports, m->nports);
    write_entries(f, "hubs", m->hubs, m->nhubs);
    write_uplinks(f, m);
    int rc = fclose(f) == 0 ? fr_file_write_atomic(path, text, len, 0644, err, errlen)
                            : fr_seterr(FR_ENOMEM, err, errlen, "cannot write '%s': out of memory", path);
    free(text);
    return rc;
}
