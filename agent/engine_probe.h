/* engine_probe — what the configured restore engine is and what it can do.
 *
 * Runs the binary with --version and --help (bounded: a few seconds each, the child
 * is killed after that), and reads:
 *  - its name and version ("idevicerestore 1.0.0"; a source build prints e.g.
 *    "idevicerestore 1.0.0-244-g1a2b3c4"), parsed into numbers where it can;
 *  - whether --help offers -P/--plain-progress (flashrack needs it);
 *  - the models it can restore. idevicerestore knows a device only through
 *    libirecovery's device table, so the probe asks the dynamic loader which
 *    libirecovery that binary loads (LD_TRACE_LOADED_OBJECTS, as ldd does), opens
 *    that very library and copies its iPhone ProductTypes. Debian 12's 1.0.0 with
 *    libirecovery 1.0.0 stops at iPhone12,8. An engine that loads no libirecovery
 *    (flashrack-sim-restore, a static build) has no known limit: models_known = 0.
 *
 * Blocking (fork, exec, wait): call it at start-up or from a one-shot command,
 * never on a running loop. The caller owns the info and frees it with
 * engine_info_release(). */
#ifndef ENGINE_PROBE_H
#define ENGINE_PROBE_H

#include <stddef.h>
#include <stdint.h>

struct engine_info {
    char path[512];          /* as configured */
    char name[64];           /* first word of --version: "idevicerestore" */
    char version[64];        /* as printed: "1.0.0", "1.0.0-244-g1a2b3c4" */
    int major, minor, patch; /* parsed from version; -1 when it has no number */
    int has_plain_progress;  /* --help lists -P / --plain-progress */
    int models_known;        /* 1: models[] is the engine's own device table */
    char irecovery[512];     /* the libirecovery it loads ("" when none) */
    char **models;           /* iPhone ProductTypes it knows, when models_known */
    struct engine_chip { uint32_t cpid, bdid; } *chips; /* models[i]'s ChipID and BoardID */
    size_t nmodels;
    char newest[32];         /* the newest iPhone in models[] ("iPhone12,8"), or "" */
};

/* Probes the engine at path (a file name is looked up in $PATH). Returns 0 and
 * fills out, or a negative FR_E* code with the reason in err, naming the path:
 * FR_ENOTFOUND (cannot be run), FR_EPROTO (it does not answer like idevicerestore),
 * FR_EUNAVAIL (it lacks -P). out is usable (and must be released) either way. */
int engine_probe(const char *path, struct engine_info *out, char *err, size_t errlen);
void engine_info_release(struct engine_info *info);

/* 1 when the engine can restore product_type (or its limit is not known), else 0. */
int engine_supports_model(const struct engine_info *info, const char *product_type);

/* The same for a unit known by its chip and board only (DFU and recovery mode: the USB
 * serial string's CPID and BDID); *product_type is then its row's ProductType, or NULL. */
int engine_supports_chip(const struct engine_info *info, uint32_t cpid, uint32_t bdid,
                         const char **product_type);

/* The reason a model cannot be restored, for a stack_too_old result:
 * "iPhone13,2 is newer than 'idevicerestore 1.0.0' knows (its libirecovery ... stops at
 * iPhone12,8): build the upstream stack (docs/UPSTREAM-STACK.md)". */
void engine_explain_unsupported(const struct engine_info *info, const char *product_type,
                                char *buf, size_t len);

#endif
