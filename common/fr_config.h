/* fr_config — table-driven INI loading with errors that name file, line and key.
 *
 * A program describes its settings as an array of fr_cfg_field (section, key,
 * type, offset into its config struct, bounds). fr_cfg_load() fills the struct
 * from the file; an unknown section or key, a value of the wrong type or out of
 * bounds is an error "FILE:LINE: [section] key: expected ..., got '...'", and the
 * struct keeps its defaults for that field. Strings are copied into fixed char
 * arrays inside the struct (no ownership to track). */
#ifndef FR_CONFIG_H
#define FR_CONFIG_H

#include <stddef.h>
#include <stdint.h>

enum fr_cfg_type {
    FR_CFG_STR,    /* char[size] */
    FR_CFG_INT,    /* long long, in [min, max] */
    FR_CFG_BOOL,   /* int: true/false/yes/no/on/off/1/0 */
    FR_CFG_DOUBLE, /* double, in [min, max] */
    FR_CFG_ENUM,   /* char[size]: one of choices ("sim|usb") */
};

struct fr_cfg_field {
    const char *section;
    const char *key;
    enum fr_cfg_type type;
    size_t offset;
    size_t size;   /* FR_CFG_STR, FR_CFG_ENUM: array size */
    double min, max;
    const char *choices; /* FR_CFG_ENUM: the allowed values, '|'-separated */
};

#define FR_CFG_FIELD_STR(sec, key, type, member) \
    { sec, key, FR_CFG_STR, offsetof(type, member), sizeof(((type *)0)->member), 0, 0, NULL }
#define FR_CFG_FIELD_INT(sec, key, type, member, lo, hi) \
    { sec, key, FR_CFG_INT, offsetof(type, member), 0, lo, hi, NULL }
#define FR_CFG_FIELD_BOOL(sec, key, type, member) \
    { sec, key, FR_CFG_BOOL, offsetof(type, member), 0, 0, 1, NULL }
#define FR_CFG_FIELD_ENUM(sec, key, type, member, choices) \
    { sec, key, FR_CFG_ENUM, offsetof(type, member), sizeof(((type *)0)->member), 0, 0, choices }
#define FR_CFG_FIELD_DOUBLE(sec, key, type, member, lo, hi) \
    { sec, key, FR_CFG_DOUBLE, offsetof(type, member), 0, lo, hi, NULL }

/* Whether value is one of choices ("debug|info|warn|error"). */
int fr_cfg_choice(const char *choices, const char *value);
/* choices for a message: "debug, info, warn or error". */
void fr_cfg_choices_text(const char *choices, char *out, size_t len);

/* Loads path into target. nfields entries. Returns 0, or FR_ECONFIG with the
 * first problem in err (loading stops there). */
int fr_cfg_load(const char *path, const struct fr_cfg_field *fields, size_t nfields, void *target,
                char *err, size_t errlen);

/* Applies one "section.key=value" override (command line), same checks. */
int fr_cfg_set(const char *assignment, const struct fr_cfg_field *fields, size_t nfields,
               void *target, char *err, size_t errlen);

/* The command line every flashrack daemon shares: [-c FILE] [--set section.key=value]...
 * [--help] [--version]. Loads FILE, then the overrides, then runs check (may be NULL).
 * Errors go to stderr as "PROG: FILE:LINE: [section] key: ...". */
struct fr_cfg_cli {
    const char *prog;        /* "flashrackd" */
    const char *usage;       /* printed for --help and usage errors */
    const struct fr_cfg_field *fields;
    size_t nfields;
    void *target;
    int (*check)(const void *target, char *err, size_t errlen);
};
/* Returns 0 to go on, 2 on a usage or configuration error, -1 when --help or
 * --version was answered (exit 0). */
int fr_cfg_cli(int argc, char **argv, const struct fr_cfg_cli *spec);
/* Reads the same command line's file and overrides again into spec->target (a reload:
 * the caller starts it from its defaults). Prints nothing; returns 0, or FR_ECONFIG with
 * "FILE:LINE: ..." in err. */
int fr_cfg_reread(int argc, char **argv, const struct fr_cfg_cli *spec, char *err, size_t errlen);

/* The INI reader under fr_cfg_load, for files that are not a field table (rack files):
 * cb gets each "key = value" with its section and line number and returns nonzero to go
 * on (0 stops: it has put its error in err). Lines have no length limit short of 64 KiB;
 * ';' or '#' starts a comment at the start of a line or after whitespace. A section or a
 * key given twice, a line that is none of these, or a key outside a section is an error
 * "FILE:LINE: ..." in err. Returns 0 or FR_ECONFIG (FR_ENOMEM). */
typedef int (*fr_cfg_ini_handler)(void *user, const char *section, const char *name,
                                  const char *value, int lineno);
int fr_cfg_ini_parse(const char *path, fr_cfg_ini_handler cb, void *user, char *err, size_t errlen);

/* Value parsers shared with hand-written parsers (rack files). Return 0 or FR_EINVAL. */
int fr_cfg_parse_int(const char *s, long long min, long long max, long long *out);
int fr_cfg_parse_double(const char *s, double min, double max, double *out);
int fr_cfg_parse_bool(const char *s, int *out);

#endif
