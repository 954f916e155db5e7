/* fr_dirs — base directories of relative settings (see fr_dirs.h). */
#include "fr_dirs.h"
#include "fr_err.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const env_names[] = { "STATE_DIRECTORY", "CACHE_DIRECTORY", "RUNTIME_DIRECTORY" };

#ifdef FR_FHS_DEFAULTS
static const char *const fhs_dirs[] = { FR_FHS_STATE_DIR, FR_FHS_CACHE_DIR, FR_FHS_RUNTIME_DIR };
#else
static const char *const fhs_dirs[] = { NULL, NULL, NULL };
#endif

const char *fr_dir_base(enum fr_dir_kind kind, char *buf, size_t len)
{
    const char *env = getenv(env_names[kind]);
    if (env && env[0]) {
        /* systemd lists one directory per StateDirectory= entry; ours is the first. */
        size_t n = strcspn(env, ":");
        snprintf(buf, len, "%.*s", (int)n, env);
    } else if (fhs_dirs[kind]) {
        snprintf(buf, len, "%s", fhs_dirs[kind]);
    } else {
        return NULL;
    }
    size_t n = strlen(buf);
    while (n > 1 && buf[n - 1] == '/')
        buf[--n] = '\0';
    return buf;
}

int fr_dir_resolve(enum fr_dir_kind kind, char *path, size_t size, const char *what, char *err,
                   size_t errlen)
{
    char base[1024];
    if (!path[0] || path[0] == '/' || !fr_dir_base(kind, base, sizeof base))
        return 0;
    const char *rest = strncmp(path, "./", 2) == 0 ? path + 2 : path;
    if (strlen(base) + 1 + strlen(rest) + 1 > size)
        return fr_seterr(FR_ECONFIG, err, errlen, "%s: '%s' under '%s' is longer than %zu bytes",
                         what, path, base, size - 1);
    char out[4096];
    snprintf(out, sizeof out, "%s/%s", base, rest);
    memcpy(path, out, strlen(out) + 1);
    return 0;
}
