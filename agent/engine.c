/* engine — the engine child: spawn, read, log, watchdog, kill; see engine.h. */
#include "engine.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "fr_err.h"
#include "fr_log.h"

struct engine {
    uv_loop_t *loop;
    uv_process_t proc;
    uv_pipe_t out, err;
    uv_timer_t watchdog;
    FILE *log;
    struct engine_output parser;
    uint64_t watchdog_ms;
    engine_progress_cb on_progress;
    engine_exit_cb on_exit;
    void *arg;
    int pid;
    int open_pipes;       /* pipes still reading */
    int exited, exit_code, term_signal, watchdog_fired, reported;
    int handles;          /* uv handles not yet closed */
    int destroy_requested;
};

static void maybe_free(struct engine *e)
{
    if (e->handles == 0 && e->destroy_requested) {
        if (e->log)
            fclose(e->log);
        free(e);
    }
}

static void on_closed(uv_handle_t *h)
{
    struct engine *e = h->data;
    e->handles--;
    maybe_free(e);
}

static void close_handle(struct engine *e, uv_handle_t *h)
{
    if (!uv_is_closing(h))
        uv_close(h, on_closed);
}

/* Reports the exit once the process is gone and both pipes reached EOF. */
static void maybe_report(struct engine *e)
{
    if (!e->exited || e->open_pipes > 0 || e->reported)
        return;
    e->reported = 1;
    uv_timer_stop(&e->watchdog);
    engine_output_end(&e->parser);
    if (e->log)
        fflush(e->log);
    e->on_exit(e, e->arg, e->exit_code, e->term_signal, e->watchdog_fired);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *b)
{
    b->base = malloc(8192);
    b->len = b->base ? 8192 : 0;
}

static void on_read(uv_stream_t *st, ssize_t n, const uv_buf_t *b)
{
    struct engine *e = st->data;
    if (n > 0) {
        if (e->log)
            fwrite(b->base, 1, (size_t)n, e->log);
        engine_output_feed(&e->parser, b->base, (size_t)n);
        /* any output proves the engine is alive; a charging battery gets more time */
        uint64_t wd = e->parser.battery_wait ? e->watchdog_ms * 4 : e->watchdog_ms;
        if (!e->exited) {
            uv_timer_set_repeat(&e->watchdog, wd);
            uv_timer_again(&e->watchdog);
        }
        if (e->parser.progress_changed || e->parser.status_changed)
            e->on_progress(e, e->arg);
    }
    free(b->base);
    if (n < 0) {
        uv_read_stop(st);
        close_handle(e, (uv_handle_t *)st);
        e->open_pipes--;
        maybe_report(e);
    }
}

static void on_exit_cb(uv_process_t *p, int64_t status, int term_signal)
{
    struct engine *e = p->data;
    e->exited = 1;
    e->exit_code = (int)status;
    e->term_signal = term_signal;
    /* the group may hold children that keep our pipes open: end them too */
    if (e->pid > 0)
        kill(-e->pid, SIGKILL);
    close_handle(e, (uv_handle_t *)p);
    maybe_report(e);
}

static void on_watchdog(uv_timer_t *t)
{
    struct engine *e = t->data;
    if (e->exited)
        return;
    fr_warn("engine", "pid %d: no output for %llu ms, killing its process group", e->pid,
            (unsigned long long)e->watchdog_ms);
    e->watchdog_fired = 1;
    engine_kill(e);
}

extern char **environ;

/* The agent's environment with spec->env on top (NULL when out of memory). The
 * array is freed by the caller; its strings are borrowed. */
static char **child_env(const struct engine_spec *spec)
{
    size_t n = 0, k = 0;
    while (environ[n])
        n++;
    while (spec->env[k])
        k++;
    char **env = calloc(n + k + 1, sizeof *env);
    if (!env)
        return NULL;
    size_t m = 0;
    for (size_t i = 0; i < n; i++) {
        int replaced = 0;
        for (size_t j = 0; j < k && !replaced; j++) {
            size_t name = strcspn(spec->env[j], "=");
            replaced = strncmp(environ[i], spec->env[j], name + 1) == 0;
        }
        if (!replaced)
            env[m++] = environ[i];
    }
    for (size_t j = 0; j < k; j++)
        env[m++] = (char *)spec->env[j];
    return env;
}

/* keeper LOG -- ENGINE ARGS... (NULL when out of memory; the strings are borrowed). */
static const char **keeper_argv(const struct engine_spec *spec)
{
    size_t n = 0;
    while (spec->argv[n])
        n++;
    const char **argv = calloc(n + 4, sizeof *argv);
    if (!argv)
        return NULL;
    argv[0] = spec->keeper;
    argv[1] = spec->log_path;
    argv[2] = "--";
    argv[3] = spec->path; /* the keeper runs the engine by path, argv[0] as given */
    for (size_t i = 1; i < n; i++)
        argv[3 + i] = spec->argv[i];
    return argv;
}

int engine_start(struct engine **out, uv_loop_t *loop, const struct engine_spec *spec,
                 engine_progress_cb on_progress, engine_exit_cb on_exit, void *arg, char *err,
                 size_t errlen)
{
    int wants_env = spec->env && spec->env[0];
    char **env = wants_env ? child_env(spec) : NULL;
    struct engine *e = (env || !wants_env) ? calloc(1, sizeof *e) : NULL;
    if (!e) {
        free(env);
        return FR_ENOMEM;
    }
    e->loop = loop;
    e->watchdog_ms = spec->watchdog_ms;
    e->on_progress = on_progress;
    e->on_exit = on_exit;
    e->arg = arg;
    engine_output_init(&e->parser);
    e->log = spec->keeper ? NULL : fopen(spec->log_path, "a");
    if (!e->log && !spec->keeper)
        fr_warn("engine", "cannot open log '%s': %s", spec->log_path, strerror(errno));
    const char **argv = spec->keeper ? keeper_argv(spec) : NULL;
    if (spec->keeper && !argv) {
        if (e->log)
            fclose(e->log);
        free(e);
        free(env);
        return FR_ENOMEM;
    }
    uv_pipe_init(loop, &e->out, 0);
    uv_pipe_init(loop, &e->err, 0);
    uv_timer_init(loop, &e->watchdog);
    e->out.data = e->err.data = e->watchdog.data = e->proc.data = e;
    e->handles = 3;
    uv_stdio_container_t stdio[3] = {
        { .flags = UV_IGNORE },
        { .flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE, .data.stream = (uv_stream_t *)&e->out },
        { .flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE, .data.stream = (uv_stream_t *)&e->err },
    };
    uv_process_options_t opt = {
        .exit_cb = on_exit_cb, .file = argv ? spec->keeper : spec->path,
        .args = (char **)(argv ? argv : spec->argv), .env = env,
        .stdio_count = 3, .stdio = stdio,
        .flags = UV_PROCESS_DETACHED, /* its own process group, killed as a whole */
    };
    int rc = uv_spawn(loop, &e->proc, &opt);
    free(env);
    free(argv);
    if (rc < 0) {
        fr_seterr(FR_ESYS, err, errlen, "cannot start engine '%s': %s", spec->path, uv_strerror(rc));
        e->destroy_requested = 1;
        e->reported = 1;
        e->handles++;
        close_handle(e, (uv_handle_t *)&e->proc); /* a failed spawn still needs a close */
        close_handle(e, (uv_handle_t *)&e->out);
        close_handle(e, (uv_handle_t *)&e->err);
        close_handle(e, (uv_handle_t *)&e->watchdog);
        return FR_ESYS;
    }
    e->handles++;
    e->pid = e->proc.pid;
    e->open_pipes = 2;
    uv_read_start((uv_stream_t *)&e->out, on_alloc, on_read);
    uv_read_start((uv_stream_t *)&e->err, on_alloc, on_read);
    uv_timer_start(&e->watchdog, on_watchdog, e->watchdog_ms, e->watchdog_ms);
    *out = e;
    return 0;
}

void engine_kill(struct engine *e)
{
    if (e && !e->exited && e->pid > 0)
        kill(-e->pid, SIGKILL);
}

const struct engine_output *engine_parser(const struct engine *e) { return &e->parser; }
struct engine_output *engine_parser_mut(struct engine *e) { return &e->parser; }
int engine_pid(const struct engine *e) { return e->pid; }

void engine_destroy(struct engine *e)
{
    if (!e)
        return;
    e->destroy_requested = 1;
    close_handle(e, (uv_handle_t *)&e->watchdog);
    close_handle(e, (uv_handle_t *)&e->out);
    close_handle(e, (uv_handle_t *)&e->err);
    close_handle(e, (uv_handle_t *)&e->proc);
    maybe_free(e);
}
