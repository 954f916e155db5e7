/* engine_keep — the keeper's files, read by the agent's next process; see engine_keep.h. */
#include "engine_keep.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include "fr_err.h"

#define KEEPER "flashrack-engine-keeper"

int engine_keep_find(char *out, size_t len)
{
    char self[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n <= 0)
        return -1;
    self[n] = '\0';
    char *slash = strrchr(self, '/');
    if (!slash)
        return -1;
    *slash = '\0';
    /* the build tree and a package's sbin both put it near: beside us, or in libexec */
    static const char *const where[] = { "%s/" KEEPER, "%s/../libexec/flashrack/" KEEPER };
    for (size_t i = 0; i < sizeof where / sizeof where[0]; i++) {
        if ((size_t)snprintf(out, len, where[i], self) < len && access(out, X_OK) == 0)
            return 0;
    }
    out[0] = '\0';
    return -1;
}

static void path_of(char *buf, size_t len, const char *log_path, const char *suffix)
{
    snprintf(buf, len, "%s%s", log_path, suffix);
}

/* The keeper's pid while it holds its lock; 0 when nobody holds it; -1 when there
 * is no lock file. */
static long lock_holder(const char *log_path)
{
    char path[PATH_MAX + 8];
    path_of(path, sizeof path, log_path, ".lock");
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    long pid = 0;
    if (flock(fd, LOCK_SH | LOCK_NB) < 0 && errno == EWOULDBLOCK) {
        char buf[32] = "";
        ssize_t n = read(fd, buf, sizeof buf - 1);
        pid = n > 0 ? strtol(buf, NULL, 10) : 0;
        if (pid <= 0)
            pid = LONG_MAX; /* held, pid not written yet */
    }
    close(fd);
    return pid;
}

enum engine_keep_state engine_keep_check(const char *log_path, int *exit_code, int *term_signal)
{
    *exit_code = *term_signal = 0;
    if (lock_holder(log_path) > 0)
        return ENGINE_KEEP_RUNNING;
    char path[PATH_MAX + 8];
    path_of(path, sizeof path, log_path, ".exit");
    FILE *f = fopen(path, "r");
    if (!f)
        return ENGINE_KEEP_LOST;
    char how[16] = "";
    int v = 0;
    int ok = fscanf(f, "%15s %d", how, &v) == 2;
    fclose(f);
    if (ok && strcmp(how, "exit") == 0)
        *exit_code = v;
    else if (ok && strcmp(how, "signal") == 0 && v > 0)
        *term_signal = v;
    else
        return ENGINE_KEEP_LOST;
    return ENGINE_KEEP_ENDED;
}

void engine_keep_kill(const char *log_path)
{
    long pid = lock_holder(log_path);
    if (pid > 1 && pid != LONG_MAX)
        kill(-(pid_t)pid, SIGKILL); /* the keeper leads its group; the engine is in it */
}

int engine_keep_parse_log(const char *log_path, struct engine_output *eo)
{
    engine_output_init(eo);
    FILE *f = fopen(log_path, "r");
    if (!f)
        return FR_ENOTFOUND;
    char buf[8192];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, f)) > 0)
        engine_output_feed(eo, buf, n);
    fclose(f);
    engine_output_end(eo);
    return 0;
}

void engine_keep_forget(const char *log_path)
{
    char path[PATH_MAX + 8];
    path_of(path, sizeof path, log_path, ".lock");
    unlink(path);
    path_of(path, sizeof path, log_path, ".exit");
    unlink(path);
}
