/* engine_probe — the engine's name, version, -P and model table; see engine_probe.h. */
#include "engine_probe.h"

#include <dlfcn.h>
#include <fcntl.h>
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "fr_err.h"

#define PROBE_OUT_MAX (64 * 1024) /* --help of 1.0.0 is ~3 KiB */
#define PROBE_TIMEOUT_MS 5000

extern char **environ;

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The environment plus one extra "NAME=value" (or none). Caller frees the array. */
static char **env_with(const char *extra)
{
    size_t n = 0;
    while (environ[n])
        n++;
    char **env = calloc(n + 2, sizeof *env);
    if (!env)
        return NULL;
    memcpy(env, environ, n * sizeof *env);
    env[n] = (char *)extra;
    return env;
}

/* Reads fd until EOF, the buffer is full or the deadline passes. */
static void read_all(int fd, char *out, size_t outlen, long long deadline)
{
    size_t len = 0;
    for (;;) {
        long long left = deadline - now_ms();
        struct pollfd p = { .fd = fd, .events = POLLIN };
        if (left <= 0 || poll(&p, 1, (int)left) <= 0)
            break;
        char scratch[4096];
        int full = len >= outlen - 1;
        ssize_t n = read(fd, full ? scratch : out + len, full ? sizeof scratch : outlen - 1 - len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        if (!full)
            len += (size_t)n; /* past the buffer's end we keep draining, so the child can exit */
    }
    out[len] = '\0';
}

/* Runs path arg (stdout and stderr together into out); returns the exit code,
 * -1 when it could not be started (errno set), -2 when it was killed at the deadline. */
static int run_capture(const char *path, const char *arg, const char *extra_env, char *out,
                       size_t outlen)
{
    int fds[2];
    out[0] = '\0';
    if (pipe(fds) < 0)
        return -1;
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_adddup2(&fa, fds[1], 1);
    posix_spawn_file_actions_adddup2(&fa, fds[1], 2);
    posix_spawn_file_actions_addclose(&fa, fds[0]);
    char **env = env_with(extra_env);
    char *argv[] = { (char *)path, (char *)arg, NULL };
    pid_t pid;
    int rc = env ? posix_spawnp(&pid, path, &fa, NULL, argv, env) : ENOMEM;
    posix_spawn_file_actions_destroy(&fa);
    free(env);
    close(fds[1]);
    if (rc != 0) {
        close(fds[0]);
        errno = rc;
        return -1;
    }
    long long deadline = now_ms() + PROBE_TIMEOUT_MS;
    read_all(fds[0], out, outlen, deadline);
    close(fds[0]);
    int status = 0, killed = 0;
    while (waitpid(pid, &status, WNOHANG) == 0) {
        if (now_ms() >= deadline) {
            kill(pid, SIGKILL);
            killed = 1;
            waitpid(pid, &status, 0);
            break;
        }
        usleep(10 * 1000);
    }
    if (killed)
        return -2;
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

/* "idevicerestore 1.0.0" → name, version, numbers. */
static int parse_version(struct engine_info *info, const char *text)
{
    char name[64], version[64];
    if (sscanf(text, "%63s %63s", name, version) != 2)
        return -1;
    snprintf(info->name, sizeof info->name, "%s", name);
    snprintf(info->version, sizeof info->version, "%s", version);
    int n = sscanf(version, "%d.%d.%d", &info->major, &info->minor, &info->patch);
    if (n < 1)
        info->major = -1;
    if (n < 2)
        info->minor = -1;
    if (n < 3)
        info->patch = -1;
    return 0;
}

static int has_plain_progress(const char *help)
{
    return strstr(help, "--plain-progress") != NULL &&
           (strstr(help, "-P,") != NULL || strstr(help, "-P ") != NULL);
}

/* The libirecovery the loader resolves for the engine: "libirecovery-1.0.so.3 => /usr/lib/…". */
static void find_irecovery(const char *trace, char *out, size_t outlen)
{
    out[0] = '\0';
    for (const char *l = trace; l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL) {
        const char *arrow = strstr(l, "=> ");
        const char *eol = strchr(l, '\n');
        if (!arrow || (eol && arrow > eol) || !strstr(l, "libirecovery"))
            continue;
        if (strstr(l, "libirecovery") > arrow)
            continue;
        const char *p = arrow + 3;
        size_t n = strcspn(p, " \n(");
        if (n && n < outlen && p[0] == '/') {
            memcpy(out, p, n);
            out[n] = '\0';
        }
        return;
    }
}

/* irecv_devices_get_all()'s table in libirecovery 1.0.0 and later (its public header). */
struct irecv_device_row {
    const char *product_type, *hardware_model;
    unsigned int board_id, chip_id;
    const char *display_name;
};

static int iphone_number(const char *pt, int *major, int *minor)
{
    return sscanf(pt, "iPhone%d,%d", major, minor) == 2 ? 0 : -1;
}

static int add_model(struct engine_info *info, const struct irecv_device_row *d)
{
    const char *pt = d->product_type;
    char **m = realloc(info->models, (info->nmodels + 1) * sizeof *m);
    if (m)
        info->models = m;
    struct engine_chip *c = m ? realloc(info->chips, (info->nmodels + 1) * sizeof *c) : NULL;
    if (c)
        info->chips = c;
    if (!c || !(m[info->nmodels] = strdup(pt)))
        return FR_ENOMEM;
    c[info->nmodels] = (struct engine_chip){ d->chip_id, d->board_id };
    info->nmodels++;
    int major, minor, nmaj, nmin;
    if (!info->newest[0] || (iphone_number(info->newest, &nmaj, &nmin) == 0 &&
                             iphone_number(pt, &major, &minor) == 0 &&
                             (major > nmaj || (major == nmaj && minor > nmin))))
        snprintf(info->newest, sizeof info->newest, "%s", pt);
    return 0;
}

/* Copies the iPhones of the library's device table into info->models. */
static int read_models(struct engine_info *info, char *err, size_t errlen)
{
    void *lib = dlopen(info->irecovery, RTLD_NOW | RTLD_LOCAL);
    const struct irecv_device_row *(*get_all)(void) = NULL;
    if (lib)
        *(void **)&get_all = dlsym(lib, "irecv_devices_get_all");
    if (!get_all) {
        int rc = fr_seterr(FR_EPROTO, err, errlen, "[engine] path '%s': cannot read the device "
                           "table of its libirecovery '%s': %s", info->path, info->irecovery,
                           dlerror());
        if (lib)
            dlclose(lib);
        return rc;
    }
    int rc = 0;
    for (const struct irecv_device_row *d = get_all(); rc == 0 && d && d->product_type; d++)
        if (strncmp(d->product_type, "iPhone", 6) == 0)
            rc = add_model(info, d);
    dlclose(lib);
    info->models_known = rc == 0;
    return rc;
}

static int probe_models(struct engine_info *info, char *err, size_t errlen)
{
    char *trace = malloc(PROBE_OUT_MAX);
    if (!trace)
        return FR_ENOMEM;
    /* the loader lists the libraries and exits; a static binary just prints its version */
    int code = run_capture(info->path, "--version", "LD_TRACE_LOADED_OBJECTS=1", trace,
                           PROBE_OUT_MAX);
    if (code == 0)
        find_irecovery(trace, info->irecovery, sizeof info->irecovery);
    free(trace);
    return info->irecovery[0] ? read_models(info, err, errlen) : 0;
}

int engine_probe(const char *path, struct engine_info *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    snprintf(out->path, sizeof out->path, "%s", path);
    char *text = malloc(PROBE_OUT_MAX);
    if (!text)
        return FR_ENOMEM;
    int rc = 0, code = run_capture(path, "--version", NULL, text, PROBE_OUT_MAX);
    if (code == -1)
        rc = fr_seterr(FR_ENOTFOUND, err, errlen, "[engine] path '%s': cannot run it: %s", path,
                       strerror(errno));
    else if (code != 0 || parse_version(out, text) < 0)
        rc = fr_seterr(FR_EPROTO, err, errlen, "[engine] path '%s': '--version' %s (expected "
                       "'idevicerestore X.Y.Z'): %.120s", path,
                       code == -2 ? "did not answer in time" : code ? "failed" : "printed no version",
                       text);
    if (rc == 0 && (code = run_capture(path, "--help", NULL, text, PROBE_OUT_MAX)) != 0)
        rc = fr_seterr(FR_EPROTO, err, errlen, "[engine] path '%s': '--help' %s", path,
                       code == -2 ? "did not answer in time" : "failed");
    else if (rc == 0 && !(out->has_plain_progress = has_plain_progress(text)))
        rc = fr_seterr(FR_EUNAVAIL, err, errlen, "[engine] path '%s': '%s %s' has no -P "
                       "(--plain-progress), which flashrack reads progress from; install "
                       "idevicerestore 1.0.0 or later", path, out->name, out->version);
    free(text);
    if (rc == 0)
        rc = probe_models(out, err, errlen);
    return rc;
}

void engine_info_release(struct engine_info *info)
{
    for (size_t i = 0; i < info->nmodels; i++)
        free(info->models[i]);
    free(info->models);
    free(info->chips);
    info->models = NULL;
    info->chips = NULL;
    info->nmodels = 0;
    info->models_known = 0;
}

int engine_supports_model(const struct engine_info *info, const char *product_type)
{
    if (!info->models_known)
        return 1;
    for (size_t i = 0; i < info->nmodels; i++)
        if (strcmp(info->models[i], product_type) == 0)
            return 1;
    return 0;
}

int engine_supports_chip(const struct engine_info *info, uint32_t cpid, uint32_t bdid,
                         const char **product_type)
{
    *product_type = NULL;
    for (size_t i = 0; info->models_known && i < info->nmodels; i++)
        if (info->chips[i].cpid == cpid && info->chips[i].bdid == bdid) {
            *product_type = info->models[i];
            return 1;
        }
    return !info->models_known;
}

void engine_explain_unsupported(const struct engine_info *info, const char *product_type,
                                char *buf, size_t len)
{
    snprintf(buf, len, "%s is newer than the engine '%s %s' knows (its libirecovery '%s' stops "
             "at %s): install idevicerestore and libirecovery built from the upstream sources "
             "(docs/UPSTREAM-STACK.md) and point [engine] path at it",
             product_type, info->name, info->version, info->irecovery,
             info->newest[0] ? info->newest : "no iPhone");
}
