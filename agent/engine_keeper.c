/* flashrack-engine-keeper — runs one restore engine so that its end is known even
 * when the agent that started it is gone.
 *
 *   flashrack-engine-keeper LOG -- ENGINE [ARG...]
 *
 * Runs ENGINE with its stdout and stderr on pipes, appends everything it prints to
 * LOG and passes it on, unchanged and on the same stream, to the keeper's own
 * stdout and stderr (the agent's pipes). While it runs it holds an exclusive flock
 * on LOG.lock, which holds its pid. When the engine has exited and its output is
 * drained it writes LOG.exit ("exit N" or "signal N", atomically) and ends the same
 * way the engine did. A broken pipe to the agent (killed) is no reason to stop: the
 * restore goes on and its end is recorded, for the agent's next process
 * (agent/engine_keep.h). SIGKILL of the process group ends both, and leaves no
 * LOG.exit. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/wait.h>
#include <unistd.h>

struct stream {
    int from;  /* the engine's pipe (-1 once at EOF) */
    int to;    /* our stdout or stderr (-1 once broken) */
};

static void write_all(int *fd, const char *buf, size_t n)
{
    while (*fd >= 0 && n > 0) {
        ssize_t w = write(*fd, buf, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            *fd = -1; /* the agent is gone: the log still gets everything */
            return;
        }
        buf += w;
        n -= (size_t)w;
    }
}

static void pump(struct stream *s, int nstreams, int logfd)
{
    for (;;) {
        struct pollfd pfd[2];
        int open = 0;
        for (int i = 0; i < nstreams; i++) {
            pfd[i] = (struct pollfd){ .fd = s[i].from, .events = POLLIN };
            open += s[i].from >= 0;
        }
        if (!open)
            return;
        if (poll(pfd, (nfds_t)nstreams, -1) < 0) {
            if (errno == EINTR)
                continue;
            return;
        }
        for (int i = 0; i < nstreams; i++) {
            if (s[i].from < 0 || !(pfd[i].revents & (POLLIN | POLLHUP | POLLERR)))
                continue;
            char buf[8192];
            ssize_t n = read(s[i].from, buf, sizeof buf);
            if (n < 0 && errno == EINTR)
                continue;
            if (n <= 0) {
                close(s[i].from);
                s[i].from = -1;
                continue;
            }
            int lf = logfd;
            write_all(&lf, buf, (size_t)n);
            write_all(&s[i].to, buf, (size_t)n);
        }
    }
}

static int take_lock(const char *log)
{
    char path[4096];
    snprintf(path, sizeof path, "%s.lock", log);
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0 || flock(fd, LOCK_EX | LOCK_NB) < 0) {
        fprintf(stderr, "flashrack-engine-keeper: cannot lock '%s': %s\n", path, strerror(errno));
        return -1;
    }
    char pid[32];
    int n = snprintf(pid, sizeof pid, "%ld\n", (long)getpid());
    if (ftruncate(fd, 0) < 0 || write(fd, pid, (size_t)n) != n)
        fprintf(stderr, "flashrack-engine-keeper: cannot write '%s': %s\n", path, strerror(errno));
    return fd;
}

/* LOG.exit, written to a temporary name and renamed: a reader sees all of it or none. */
static void record_end(const char *log, int status)
{
    char path[4096], tmp[4200];
    snprintf(path, sizeof path, "%s.exit", log);
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    if (!f)
        return;
    if (WIFEXITED(status))
        fprintf(f, "exit %d\n", WEXITSTATUS(status));
    else
        fprintf(f, "signal %d\n", WTERMSIG(status));
    /* no fsync: what it guards against is the agent's process dying, not the host
     * (as the result journal, synchronous=NORMAL) */
    if (fclose(f) == 0)
        rename(tmp, path);
    else
        unlink(tmp);
}

static pid_t spawn(char **argv, int out[2], int err[2])
{
    if (pipe2(out, O_CLOEXEC) < 0 || pipe2(err, O_CLOEXEC) < 0)
        return -1;
    pid_t pid = fork();
    if (pid == 0) {
        signal(SIGPIPE, SIG_DFL);
        dup2(out[1], 1);
        dup2(err[1], 2);
        execvp(argv[0], argv);
        dprintf(2, "flashrack-engine-keeper: cannot run '%s': %s\n", argv[0], strerror(errno));
        _exit(127);
    }
    close(out[1]);
    close(err[1]);
    return pid;
}

int main(int argc, char **argv)
{
    if (argc < 4 || strcmp(argv[2], "--") != 0) {
        fprintf(stderr, "usage: flashrack-engine-keeper LOG -- ENGINE [ARG...]\n");
        return 127;
    }
    const char *log = argv[1];
    signal(SIGPIPE, SIG_IGN);
    if (take_lock(log) < 0)
        return 127;
    char exit_path[4096];
    snprintf(exit_path, sizeof exit_path, "%s.exit", log);
    unlink(exit_path); /* an earlier run's end is not this one's */
    int logfd = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    int out[2], err[2];
    pid_t pid = spawn(argv + 3, out, err);
    if (pid < 0) {
        fprintf(stderr, "flashrack-engine-keeper: cannot start '%s': %s\n", argv[3], strerror(errno));
        return 127;
    }
    struct stream s[2] = { { out[0], 1 }, { err[0], 2 } };
    pump(s, 2, logfd);
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    record_end(log, status);
    if (WIFEXITED(status))
        return WEXITSTATUS(status);
    signal(WTERMSIG(status), SIG_DFL);
    raise(WTERMSIG(status));
    return 128 + WTERMSIG(status);
}
