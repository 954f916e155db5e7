/* fr_dirs — where a daemon's relative paths land: systemd's directories, the FHS, or
 * the working directory.
 *
 * A setting such as "store = flashrack.db" names a path relative to a base directory
 * of its kind (state, cache, runtime). The base is systemd's $STATE_DIRECTORY,
 * $CACHE_DIRECTORY or $RUNTIME_DIRECTORY when the unit sets one (the first entry of a
 * colon-separated list); else, in a build made with FR_FHS_DEFAULTS (the packages),
 * /var/lib/flashrack, /var/cache/flashrack or /run/flashrack; else none, and the path
 * stays relative to the working directory (the in-tree demo and tests). Absolute
 * paths and empty settings are never changed. Reads the environment only. */
#ifndef FR_DIRS_H
#define FR_DIRS_H

#include <stddef.h>

enum fr_dir_kind { FR_DIR_STATE, FR_DIR_CACHE, FR_DIR_RUNTIME };

/* The base directory for kind into buf (without a trailing slash); returns buf, or
 * NULL when relative paths stay relative to the working directory. */
const char *fr_dir_base(enum fr_dir_kind kind, char *buf, size_t len);

/* Rewrites the setting path (a char[size]) in place against its base. what names it
 * in errors ("[controller] store"). Returns 0, or FR_ECONFIG when the result would not
 * fit in size (path unchanged). */
int fr_dir_resolve(enum fr_dir_kind kind, char *path, size_t size, const char *what, char *err,
                   size_t errlen);

#endif
