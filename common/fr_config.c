/* fr_config — INI files into config structs, via inih, with file:line errors. */
#include "fr_config.h"
#include "fr_err.h"

#include <errno.h>
#include <getopt.h>
#include <ini.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Debian's inih is built without INI_HANDLER_LINENO, so line numbers are
 * counted here: the stream reader is called once per line, before the
 * handler sees that line's entry. */
struct line_reader {
    FILE *fp;
    int lineno;
};

static char *read_line(char *str, int num, void *stream)
{
    struct line_reader *r = stream;
    char *s = fgets(str, num, r->fp);
    if (s)
        r->lineno++;
    return s;
}

struct ini_lines_ctx {
    struct line_reader reader;
    fr_cfg_ini_handler cb;
    void *user;
};

static int on_ini_line(void *user, const char *section, const char *name, const char *value)
{
    struct ini_lines_ctx *c = user;
    return c->cb(c->user, section, name, value, c->reader.lineno);
}

int fr_cfg_ini_parse(const char *path, fr_cfg_ini_handler cb, void *user)
{
    FILE *fp = fopen(path, "r");
    if (!fp)
        return -1;
    struct ini_lines_ctx c = { { fp, 0 }, cb, user };
    int rc = ini_parse_stream(read_line, &c.reader, on_ini_line, &c);
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
    int failed;
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
    if (c->failed)
        return 1;
    char where[512];
    snprintf(where, sizeof where, "%s:%d", c->path, lineno);
    if (!name) /* a section line with no keys is fine */
        return 1;
    if (apply(c->fields, c->nfields, c->target, where, section, name, value, c->err, c->errlen) < 0)
        c->failed = 1;
    return 1;
}

int fr_cfg_load(const char *path, const struct fr_cfg_field *fields, size_t nfields, void *target,
                char *err, size_t errlen)
{
    struct load_ctx c = { path, fields, nfields, target, err, errlen, 0 };
    int rc = fr_cfg_ini_parse(path, on_ini_entry, &c);
    if (rc == -1)
        return fr_seterr(FR_ECONFIG, err, errlen, "cannot open '%s': %s", path, strerror(errno));
    if (c.failed)
        return FR_ECONFIG;
    if (rc > 0)
        return fr_seterr(FR_ECONFIG, err, errlen,
                         "%s:%d: expected '[section]', 'key = value' or a comment", path, rc);
    if (rc < 0)
        return fr_seterr(FR_ECONFIG, err, errlen, "cannot read '%s'", path);
    return 0;
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

int fr_cfg_cli(int argc, char **argv, const struct fr_cfg_cli *spec)
{
    static const struct option opts[] = {
        { "config", required_argument, NULL, 'c' }, { "set", required_argument, NULL, 's' },
        { "help", no_argument, NULL, 'h' }, { "version", no_argument, NULL, 'V' },
        { NULL, 0, NULL, 0 },
    };
    const char *file = NULL, *sets[64];
    int nsets = 0, ch;
    optind = 1;
    while ((ch = getopt_long(argc, argv, "c:h", opts, NULL)) != -1) {
        switch (ch) {
        case 'c': file = optarg; break;
        case 's':
            if (nsets < 64)
                sets[nsets++] = optarg;
            break;
        case 'h': fputs(spec->usage, stdout); return -1;
        case 'V': printf("%s %s\n", spec->prog, FR_VERSION); return -1;
        default: fputs(spec->usage, stderr); return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "%s: unexpected argument '%s'\n%s", spec->prog, argv[optind], spec->usage);
        return 2;
    }
    char err[1024];
    int rc = file ? fr_cfg_load(file, spec->fields, spec->nfields, spec->target, err, sizeof err) : 0;
    for (int i = 0; rc == 0 && i < nsets; i++)
        rc = fr_cfg_set(sets[i], spec->fields, spec->nfields, spec->target, err, sizeof err);
    if (rc == 0 && spec->check)
        rc = spec->check(spec->target, err, sizeof err);
    if (rc < 0) {
        fprintf(stderr, "%s: %s\n", spec->prog, err);
        return 2;
    }
    return 0;
}
