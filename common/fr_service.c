/* fr_service — sd_notify's datagram protocol, the watchdog timer, STATUS, SIGHUP reloads
 * (see fr_service.h). */
#include "fr_service.h"
#include "fr_config.h"
#include "fr_err.h"
#include "fr_log.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int open_socket(struct fr_service *s, const char *path, char *err, size_t errlen)
{
    size_t n = strlen(path);
    if ((path[0] != '/' && path[0] != '@') || n < 2 || n >= sizeof s->addr.sun_path)
        return fr_seterr(FR_ECONFIG, err, errlen, "$NOTIFY_SOCKET: expected an absolute path or "
                         "@name shorter than %zu bytes, got '%s'", sizeof s->addr.sun_path, path);
    s->addr.sun_family = AF_UNIX;
    memcpy(s->addr.sun_path, path, n);
    if (path[0] == '@')
        s->addr.sun_path[0] = '\0'; /* the abstract namespace */
    s->addrlen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n);
    s->fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (s->fd < 0)
        return fr_seterr(FR_ESYS, err, errlen, "cannot open a socket for '%s': %s", path,
                         strerror(errno));
    return 0;
}

/* WATCHDOG_USEC, unless WATCHDOG_PID says the watchdog is another process's. */
static int read_watchdog(struct fr_service *s, char *err, size_t errlen)
{
    const char *usec = getenv("WATCHDOG_USEC"), *pid = getenv("WATCHDOG_PID");
    long long v;
    if (!usec || !usec[0])
        return 0;
    if (pid && pid[0] && fr_cfg_parse_int(pid, 1, 1LL << 31, &v) == 0 && v != (long long)getpid())
        return 0;
    if (fr_cfg_parse_int(usec, 1000, 1LL << 50, &v) < 0)
        return fr_seterr(FR_ECONFIG, err, errlen, "$WATCHDOG_USEC: expected microseconds (at "
                         "least 1000), got '%s'", usec);
    /* ping at half the interval, as sd_watchdog_enabled(3) advises */
    s->watchdog_ms = (uint64_t)v / 2000 ? (uint64_t)v / 2000 : 1;
    return 0;
}

int fr_service_notify(struct fr_service *s, const char *text)
{
    if (s->fd < 0)
        return -1;
    /* Never wait for the manager: with its queue full the notification is lost, not the loop. */
    ssize_t n = sendto(s->fd, text, strlen(text), MSG_NOSIGNAL | MSG_DONTWAIT,
                       (struct sockaddr *)&s->addr, s->addrlen);
    return n == (ssize_t)strlen(text) ? 0 : -1;
}

static void send_status(struct fr_service *s, const char *prefix)
{
    char line[256] = "", msg[300];
    if (s->status_fn)
        s->status_fn(s->status_arg, line, sizeof line);
    if (!prefix[0] && !strcmp(line, s->last_status))
        return;
    snprintf(msg, sizeof msg, "%sSTATUS=%s", prefix, line);
    if (fr_service_notify(s, msg) == 0) /* else the next tick tries again */
        snprintf(s->last_status, sizeof s->last_status, "%s", line);
}

static void on_watchdog_timer(uv_timer_t *t)
{
    fr_service_notify(t->data, "WATCHDOG=1");
}

static void on_status_timer(uv_timer_t *t)
{
    send_status(t->data, "");
}

static void on_sighup(uv_signal_t *h, int signum)
{
    fr_service_reload(h->data);
}

int fr_service_init(struct fr_service *s, uv_loop_t *loop, const char *prog, char *err,
                    size_t errlen)
{
    memset(s, 0, sizeof *s);
    s->fd = -1;
    const char *path = getenv("NOTIFY_SOCKET");
    if (path && path[0] && open_socket(s, path, err, errlen) < 0)
        return FR_ECONFIG;
    if (read_watchdog(s, err, errlen) < 0) {
        if (s->fd >= 0)
            close(s->fd);
        s->fd = -1;
        return FR_ECONFIG;
    }
    s->prog = prog; /* from here on there are handles to close */
    unsetenv("NOTIFY_SOCKET");
    unsetenv("WATCHDOG_USEC");
    unsetenv("WATCHDOG_PID");
    uv_timer_init(loop, &s->watchdog);
    uv_timer_init(loop, &s->status);
    uv_signal_init(loop, &s->sighup);
    s->watchdog.data = s->status.data = s->sighup.data = s;
    if (s->watchdog_ms)
        uv_timer_start(&s->watchdog, on_watchdog_timer, 0, s->watchdog_ms);
    uv_signal_start(&s->sighup, on_sighup, SIGHUP);
    return 0;
}

void fr_service_on_status(struct fr_service *s, fr_service_status_fn fn, void *arg)
{
    s->status_fn = fn;
    s->status_arg = arg;
}

int fr_service_on_reload(struct fr_service *s, const char *what, fr_service_reload_fn fn, void *arg)
{
    if (s->nhooks == FR_SERVICE_RELOAD_MAX)
        return FR_EBUSY;
    s->hooks[s->nhooks++] = (struct fr_service_hook){ what, fn, arg };
    return 0;
}

void fr_service_ready(struct fr_service *s)
{
    send_status(s, "READY=1\n");
    if (s->fd >= 0) /* no one to tell, no status to compute */
        uv_timer_start(&s->status, on_status_timer, FR_SERVICE_STATUS_MS, FR_SERVICE_STATUS_MS);
}

int fr_service_reload(struct fr_service *s)
{
    int failed = 0;
    s->reloads++;
    fr_service_notify(s, "RELOADING=1");
    if (!s->nhooks)
        fr_info(s->prog, "SIGHUP: nothing to reload");
    for (size_t i = 0; i < s->nhooks; i++) {
        char said[512] = "";
        int rc = s->hooks[i].fn(s->hooks[i].arg, said, sizeof said);
        if (rc < 0) {
            failed++;
            fr_warn(s->prog, "SIGHUP: cannot reload %s, keeping what it had: %s", s->hooks[i].what,
                    said[0] ? said : fr_strerror(rc));
        } else {
            fr_info(s->prog, "SIGHUP: reloaded %s%s%s", s->hooks[i].what, said[0] ? ": " : "", said);
        }
    }
    send_status(s, "READY=1\n");
    return failed;
}

static void on_quiet_close(uv_handle_t *h)
{
}

void fr_service_close(struct fr_service *s)
{
    if (!s->prog || uv_is_closing((uv_handle_t *)&s->sighup))
        return;
    fr_service_notify(s, "STOPPING=1");
    uv_close((uv_handle_t *)&s->watchdog, on_quiet_close);
    uv_close((uv_handle_t *)&s->status, on_quiet_close);
    uv_close((uv_handle_t *)&s->sighup, on_quiet_close);
    if (s->fd >= 0)
        close(s->fd);
    s->fd = -1;
}
