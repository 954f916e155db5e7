/* fr_service — a daemon's side of systemd's service manager: readiness, status, the
 * watchdog, and reloading on SIGHUP.
 *
 * Notifications use the plain $NOTIFY_SOCKET datagram protocol of sd_notify(3) (a
 * stable interface: "KEY=value" lines in one datagram to an AF_UNIX socket, a path or
 * "@abstract"), not libsystemd, so the daemons run the same with or without systemd
 * and a test can own the socket. Without $NOTIFY_SOCKET every notification is a no-op.
 * fr_service_init() reads and then unsets NOTIFY_SOCKET, WATCHDOG_USEC and
 * WATCHDOG_PID, so engine children never speak for the daemon.
 *
 * The watchdog: with $WATCHDOG_USEC (and $WATCHDOG_PID naming this process, if set) a
 * loop timer sends WATCHDOG=1 every half interval; a stuck loop stops the pings and
 * systemd restarts the daemon (WatchdogSec= in the unit).
 *
 * Status: after fr_service_ready() the owner's status callback is asked for one line
 * every FR_SERVICE_STATUS_MS; it is sent as STATUS= when it changed or its last send was
 * lost (the manager's queue full).
 *
 * Reload: modules register hooks with fr_service_on_reload(); SIGHUP sends RELOADING=1,
 * runs every hook in registration order, logs what each reloaded (or why it could not),
 * and sends READY=1. A failed hook keeps what it had.
 *
 * Ownership: the owner embeds struct fr_service and calls fr_service_close() from its
 * shutdown (it closes the three uv handles; they are free once the loop has run the
 * close callbacks). Loop thread only. */
#ifndef FR_SERVICE_H
#define FR_SERVICE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <uv.h>

#define FR_SERVICE_STATUS_MS 2000
#define FR_SERVICE_RELOAD_MAX 8

/* Writes what was reloaded ("catalog: 3 files, 12 firmwares") or why not into said;
 * returns 0 or a negative FR_E* code. */
typedef int (*fr_service_reload_fn)(void *arg, char *said, size_t len);
/* Writes the status line ("48 ports, 12 restoring"). */
typedef void (*fr_service_status_fn)(void *arg, char *buf, size_t len);

struct fr_service_hook {
    const char *what;        /* "catalog", "keys" */
    fr_service_reload_fn fn;
    void *arg;
};

struct fr_service {
    const char *prog;        /* log component */
    int fd;                  /* datagram socket; -1 without $NOTIFY_SOCKET */
    struct sockaddr_un addr;
    socklen_t addrlen;
    uint64_t watchdog_ms;    /* ping interval; 0 = no watchdog */
    uv_timer_t watchdog, status;
    uv_signal_t sighup;
    fr_service_status_fn status_fn;
    void *status_arg;
    char last_status[256];
    struct fr_service_hook hooks[FR_SERVICE_RELOAD_MAX];
    size_t nhooks;
    uint64_t reloads;        /* SIGHUPs handled */
};

/* Reads the environment, starts the watchdog timer and the SIGHUP handler. Returns 0,
 * or FR_ECONFIG with why in err ($NOTIFY_SOCKET too long, $WATCHDOG_USEC not a
 * number): a unit that asks for something the daemon cannot do is refused at once. */
int fr_service_init(struct fr_service *s, uv_loop_t *loop, const char *prog, char *err,
                    size_t errlen);
/* The status line's source; call before fr_service_ready(). */
void fr_service_on_status(struct fr_service *s, fr_service_status_fn fn, void *arg);
/* Registers a reload hook (what must outlive s). Returns 0 or FR_EBUSY when all
 * FR_SERVICE_RELOAD_MAX are taken. */
int fr_service_on_reload(struct fr_service *s, const char *what, fr_service_reload_fn fn, void *arg);
/* READY=1 with the first status line; then status every FR_SERVICE_STATUS_MS. */
void fr_service_ready(struct fr_service *s);
/* Runs the reload hooks now (what SIGHUP does). Returns how many failed. */
int fr_service_reload(struct fr_service *s);
/* Sends one notification ("STOPPING=1") without blocking; returns 0, or -1 when not
 * under systemd or the send failed (the manager's queue full: never fatal). */
int fr_service_notify(struct fr_service *s, const char *text);
/* STOPPING=1 and closes the handles and the socket. Safe to call twice. */
void fr_service_close(struct fr_service *s);

#endif
