/* fr_config — INI files into config structs, with file:line errors. */
#include "fr_config.h"
#include "fr_err.h"
#include "fr_text.h"

#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Lines are read here, not by inih: Debian's inih cuts lines at 200 bytes (INI_MAX_LINE)
 * and parses the rest as a new line, and it cannot say that a key or section came twice. */
#define INI_LINE_MAX (64 * 1024)
#define INI_MAX_SEEN 512

struct ini_seen {
    char *name; /* "[section]" or "section\nkey", whole: a line may be 64 KiB */
    int line;
};

struct ini_reader {
    const char *path;
    struct ini_seen seen[INI_MAX_SEEN];
    size_t nseen;
    char section[128];
    char *err;
    size_t errlen;
};

static char *trim(char *s)
{
    while (*s == ' ' || *s == '\t' || *s == '\r' || *s == '\n')
        s++;
    size_t n = strlen(s);
    while (n && strchr(" \t\r\n", s[n - 1]))
        s[--n] = '\0';
    return s;
}

/* An inline comment: ';' or '#' after whitespace. */
static void cut_comment(char *v)
{
    for (char *p = v; *p; p++)
        if ((*p == ';' || *p == '#') && p > v && (p[-1] == ' ' || p[-1] == '\t')) {
            *p = '\0';
            return;
        }
}

/* "section [s] given twice" or "[s] key given twice", whole; when the caller's buffer cannot
 * hold the whole key, the error says how long it is instead of ending in a cut name. */
static int ini_twice(struct ini_reader *r, const char *key, int line, int first)
{
    int rc = key ? fr_fmt(r->err, r->errlen, "%s:%d: [%s] %s given twice (first at line %d)", r->path,
                          line, r->section, key, first)
                 : fr_fmt(r->err, r->errlen, "%s:%d: section [%s] given twice (first at line %d)",
                          r->path, line, r->section, first);
    if (rc < 0 && key)
        fr_seterr(FR_ECONFIG, r->err, r->errlen, "%s:%d: [%s] a key of %zu characters given twice "
                  "(first at line %d)", r->path, line, r->section, strlen(key), first);
    else if (rc < 0)
        fr_seterr(FR_ECONFIG, r->err, r->errlen, "%s:%d: section given twice (first at line %d)",
                  r->path, line, first);
    return FR_ECONFIG;
}

/* Remembers the current section (key NULL) or one of its keys at line; a second time is an
 * error naming both lines. */
static int ini_once(struct ini_reader *r, const char *key, int line)
{
    size_t len = strlen(r->section) + (key ? strlen(key) + 2 : 3);
    char *name = malloc(len);
    if (!name)
        return fr_seterr(FR_ENOMEM, r->err, r->errlen, "out of memory");
    if (key)
        snprintf(name, len, "%s\n%s", r->section, key);
    else
        snprintf(name, len, "[%s]", r->section);
    for (size_t i = 0; i < r->nseen; i++)
        if (strcmp(r->seen[i].name, name) == 0) {
            free(name);
            return ini_twice(r, key, line, r->seen[i].line);
        }
    if (r->nseen == INI_MAX_SEEN) {
        free(name);
        return fr_seterr(FR_ECONFIG, r->err, r->errlen, "%s:%d: more than %d sections and keys",
                         r->path, line, INI_MAX_SEEN);
    }
    r->seen[r->nseen].name = name;
    r->seen[r->nseen++].line = line;
    return 0;
}

/* One line: a section, a key = value (cb), a comment or blank. */
static int ini_line(struct ini_reader *r, char *text, int line, fr_cfg_ini_handler cb, void *user)
{
    char *s = trim(text);
    if (!*s || *s == ';' || *s == '#')
        return 0;
    if (*s == '[') {
        char *close = strchr(s, ']');
        if (!close || close == s + 1 || *trim(close + 1) || (size_t)(close - s - 1) >= sizeof r->section)
            return fr_seterr(FR_ECONFIG, r->err, r->errlen, "%s:%d: expected '[section]'", r->path, line);
        snprintf(r->section, sizeof r->section, "%.*s", (int)(close - s - 1), s + 1);
        return ini_once(r, NULL, line);
    }
    char *eq = strchr(s, '=');
    if (!eq || eq == s || !*r->section)
        return fr_seterr(FR_ECONFIG, r->err, r->errlen, "%s:%d: expected '[section]', 'key = value' "
                         "(inside a section) or a comment", r->path, line);
    *eq = '\0';
    char *key = trim(s), *value = eq + 1;
    cut_comment(value);
    value = trim(value);
    if (ini_once(r, key, line) < 0)
        return FR_ECONFIG;
    return cb(user, r->section, key, value, line) ? 0 : FR_ECONFIG;
}

int fr_cfg_ini_parse(const char *path, fr_cfg_ini_handler cb, void *user, char *err, size_t errlen)
{
    FILE *fp = fopen(path, "r");
    if (!fp)
        return fr_seterr(FR_ECONFIG, err, errlen, "cannot open '%s': %s", path, strerror(errno));
    struct ini_reader *r = calloc(1, sizeof *r);
    char *text = NULL;
    size_t cap = 0;
    ssize_t n;
    int line = 0, rc = r ? 0 : fr_seterr(FR_ENOMEM, err, errlen, "out of memory");
    if (r) {
        r->path = path;
        r->err = err;
        r->errlen = errlen;
    }
    while (rc == 0 && (n = getline(&text, &cap, fp)) >= 0) {
        line++;
        if (n > INI_LINE_MAX)
            rc = fr_seterr(FR_ECONFIG, err, errlen, "%s:%d: line longer than %d characters", path,
                           line, INI_LINE_MAX);
        else
            rc = ini_line(r, text, line, cb, user);
    }
    if (rc == 0 && ferror(fp))
        rc = fr_seterr(FR_ECONFIG, err, errlen, "cannot read '%s': %s", path, strerror(errno));
    free(text);
    for (size_t i = 0; r && i < r->nseen; i++)
        free(r->seen[i].name);
    free(r);
    fclose(fp);
    return rc;
}

struct load_ctx {
    const char *path;
    const struct fr_cfg_field *fields;
    size_t nfields;
    void *target;
    char *err;
    size_t errlen;
};

int fr_cfg_parse_int(const char *s, long long min, long long max, long long *out)
{
    if (!s || !*s)
        return FR_EINVAL;
    errno = 0;
    char *end = NULL;
    long long v = strtoll(s, &end, 0);
    if (errno || !end || *end || v < min || v > max)
        return FR_EINVAL;
    *out = v;
    return 0;
}

int fr_cfg_parse_double(const char *s, double min, double max, double *out)
{
    if (!s || !*s)
        return FR_EINVAL;
    errno = 0;
    char *end = NULL;
    double v = strtod(s, &end);
    if (errno || !end || *end || isnan(v) || v < min || v > max)
        return FR_EINVAL;
    *out = v;
    return 0;
}

int fr_cfg_parse_bool(const char *s, int *out)
{
    static const char *yes[] = { "1", "true", "yes", "on" };
    static const char *no[] = { "0", "false", "no", "off" };
    for (int i = 0; s && i < 4; i++) {
        if (strcasecmp(s, yes[i]) == 0)
            return *out = 1, 0;
        if (strcasecmp(s, no[i]) == 0)
            return *out = 0, 0;
    }
    return FR_EINVAL;
}

int fr_cfg_choice(const char *choices, const char *value)
{
    size_t n = strlen(value);
    for (const char *p = choices; n && *p;) {
        size_t len = strcspn(p, "|");
        if (len == n && strncmp(p, value, n) == 0)
            return 1;
        p += len + (p[len] == '|');
    }
    return 0;
}

void fr_cfg_choices_text(const char *choices, char *out, size_t len)
{
    size_t n = 0, total = 1;
    for (const char *p = choices; *p; p++)
        total += *p == '|';
    out[0] = '\0';
    for (const char *p = choices; *p;) {
        size_t k = strcspn(p, "|");
        n++;
        size_t used = strlen(out);
        snprintf(out + used, len - used, "%s%.*s", n == 1 ? "" : n == total ? " or " : ", ", (int)k, p);
        p += k + (p[k] == '|');
    }
}

static const struct fr_cfg_field *find_field(const struct fr_cfg_field *f, size_t n, const char *sec,
                                             const char *key, int *section_known)
{
    *section_known = 0;
    for (size_t i = 0; i < n; i++) {
        if (strcmp(f[i].section, sec) != 0)
            continue;
        *section_known = 1;
        if (strcmp(f[i].key, key) == 0)
            return &f[i];
    }
    return NULL;
}

/* Stores value into the field; on a bad value writes "expected ..." into why. */
static int store_value(const struct fr_cfg_field *f, void *target, const char *value, char *why,
                       size_t whylen)
{
    char *dst = (char *)target + f->offset;
    switch (f->type) {
    case FR_CFG_STR:
        if (strlen(value) >= f->size)
            return fr_seterr(FR_EINVAL, why, whylen, "expected at most %zu characters", f->size - 1);
        memcpy(dst, value, strlen(value) + 1);
        return 0;
    case FR_CFG_ENUM:
        if (!fr_cfg_choice(f->choices, value) || strlen(value) >= f->size) {
            char list[256];
            fr_cfg_choices_text(f->choices, list, sizeof list);
            return fr_seterr(FR_EINVAL, why, whylen, "expected %s", list);
        }
        memcpy(dst, value, strlen(value) + 1);
        return 0;
    case FR_CFG_INT: {
        long long v;
        if (fr_cfg_parse_int(value, (long long)f->min, (long long)f->max, &v) < 0)
            return fr_seterr(FR_EINVAL, why, whylen, "expected an integer from %lld to %lld",
                             (long long)f->min, (long long)f->max);
        memcpy(dst, &v, sizeof v);
        return 0;
    }
    case FR_CFG_BOOL: {
        int v;
        if (fr_cfg_parse_bool(value, &v) < 0)
            return fr_seterr(FR_EINVAL, why, whylen, "expected true/false, yes/no, on/off or 1/0");
        memcpy(dst, &v, sizeof v);
        return 0;
    }
    case FR_CFG_DOUBLE: {
        double v;
        if (fr_cfg_parse_double(value, f->min, f->max, &v) < 0)
            return fr_seterr(FR_EINVAL, why, whylen, "expected a number from %g to %g", f->min,
                             f->max);
        memcpy(dst, &v, sizeof v);
        return 0;
    }
    }
    return fr_seterr(FR_EINVAL, why, whylen, "unsupported field type");
}

/* One "section.key = value" into the struct; where names the place for errors. */
static int apply(const struct fr_cfg_field *fields, size_t n, void *target, const char *where,
                 const char *sec, const char *key, const char *value, char *err, size_t errlen)
{
    int section_known;
    const struct fr_cfg_field *f = find_field(fields, n, sec, key, &section_known);
    if (!f) {
        if (!section_known)
            return fr_seterr(FR_ECONFIG, err, errlen, "%s: unknown section [%s]", where, sec);
        return fr_seterr(FR_ECONFIG, err, errlen, "%s: [%s] unknown key '%s'", where, sec, key);
    }
    char why[160];
    if (store_value(f, target, value, why, sizeof why) < 0)
        return fr_seterr(FR_ECONFIG, err, errlen, "%s: [%s] %s: %s, got '%s'", where, sec, key, why,
                         value);
    return 0;
}

static int on_ini_entry(void *user, const char *section, const char *name, const char *value,
                        int lineno)
{
    struct load_ctx *c = user;
    char where[512];
    snprintf(where, sizeof where, "%s:%d", c->path, lineno);
    return apply(c->fields, c->nfields, c->target, where, section, name, value, c->err, c->errlen) == 0;
}

int fr_cfg_load(const char *path, const struct fr_cfg_field *fields, size_t nfields, void *target,
                char *err, size_t errlen)
{
    struct load_ctx c = { path, fields, nfields, target, err, errlen };
    return fr_cfg_ini_parse(path, on_ini_entry, &c, err, errlen) < 0 ? FR_ECONFIG : 0;
}

int fr_cfg_set(const char *assignment, const struct fr_cfg_field *fields, size_t nfields,
               void *target, char *err, size_t errlen)
{
    const char *eq = strchr(assignment, '=');
    const char *dot = eq ? memchr(assignment, '.', (size_t)(eq - assignment)) : NULL;
    if (!eq || !dot || dot == assignment)
        return fr_seterr(FR_ECONFIG, err, errlen,
                         "--set '%s': expected section.key=value", assignment);
    char sec[128], key[128];
    size_t slen = (size_t)(dot - assignment), klen = (size_t)(eq - dot - 1);
    if (slen >= sizeof sec || klen >= sizeof key || klen == 0)
        return fr_seterr(FR_ECONFIG, err, errlen, "--set '%s': name too long or empty", assignment);
    memcpy(sec, assignment, slen);
    sec[slen] = '\0';
    memcpy(key, dot + 1, klen);
    key[klen] = '\0';
    return apply(fields, nfields, target, "--set", sec, key, eq + 1, err, errlen);
}

/* The file and the overrides named on the command line, in that order, then the check. */
static int apply_args(const char *file, const char *const *sets, int nsets,
                      const struct fr_cfg_cli *spec, char *err, size_t errlen)
{
    int rc = file ? fr_cfg_load(file, spec->fields, spec->nfields, spec->target, err, errlen) : 0;
    for (int i = 0; rc == 0 && i < nsets; i++)
        rc = fr_cfg_set(sets[i], spec->fields, spec->nfields, spec->target, err, errlen);
    if (rc == 0 && spec->check)
        rc = spec->check(spec->target, err, errlen);
    return rc;
}

/* getopt over -c/--set/--help/--version: 0 with the file and the overrides, 'h', 'V',
 * or '?' (a usage error, with the offending argument's index in *bad, 0 for getopt's own). */
static int parse_args(int argc, char **argv, const char **file, const char **sets, int *nsets, int *bad)
{
    static const struct option opts[] = {
        { "config", required_argument, NULL, 'c' }, { "set", required_argument, NULL, 's' },
        { "help", no_argument, NULL, 'h' }, { "version", no_argument, NULL, 'V' },
        { NULL, 0, NULL, 0 },
    };
    int ch;
    *file = NULL;
    *nsets = *bad = 0;
    optind = 1;
    while ((ch = getopt_long(argc, argv, "c:h", opts, NULL)) != -1) {
        switch (ch) {
        case 'c': *file = optarg; break;
        case 's':
            if (*nsets < 64)
                sets[(*nsets)++] = optarg;
            break;
        case 'h': case 'V': return ch;
        default: return '?';
        }
    }
    if (optind < argc) {
        *bad = optind;
        return '?';
    }
    return 0;
}

int fr_cfg_cli(int argc, char **argv, const struct fr_cfg_cli *spec)
{
    const char *file, *sets[64];
    int nsets, bad;
    switch (parse_args(argc, argv, &file, sets, &nsets, &bad)) {
    case 'h': fputs(spec->usage, stdout); return -1;
    case 'V': printf("%s %s\n", spec->prog, FR_VERSION); return -1;
    case '?':
        if (bad)
            fprintf(stderr, "%s: unexpected argument '%s'\n", spec->prog, argv[bad]);
        fputs(spec->usage, stderr);
        return 2;
    }
    char err[1024];
    if (apply_args(file, sets, nsets, spec, err, sizeof err) < 0) {
        fprintf(stderr, "%s: %s\n", spec->prog, err);
        return 2;
    }
    return 0;
}

int fr_cfg_reread(int argc, char **argv, const struct fr_cfg_cli *spec, char *err, size_t errlen)
{
    const char *file, *sets[64];
    int nsets, bad;
    if (parse_args(argc, argv, &file, sets, &nsets, &bad) != 0)
        return fr_seterr(FR_ECONFIG, err, errlen, "the command line no longer parses");
    return apply_args(file, sets, nsets, spec, err, errlen);
}
