/* httpd — a libmicrohttpd daemon on the controller's libuv loop, shared by the site
 * mirror (mirror.h) and the rack page (page.h).
 *
 * The daemon runs in libmicrohttpd's external-epoll mode: one uv_poll on its epoll
 * descriptor and a uv_timer for its timeouts, so every handler runs on the loop thread
 * like every other socket of the controller, and never blocks it. Suspend/resume is
 * allowed: a handler may suspend a connection and resume it later, then call
 * httpd_drive() so the resumed connection is served. */
#ifndef HTTPD_H
#define HTTPD_H

#include <microhttpd.h>
#include <stddef.h>
#include <sys/socket.h>
#include <uv.h>

struct httpd {
    struct MHD_Daemon *d;
    uv_poll_t poll;
    uv_timer_t timer;
    int closed;          /* httpd_close() was called: the handles are gone */
};

/* "HOST:PORT", "[V6]:PORT" or "*:PORT" (any IPv4 address) into ss; host gets the
 * address as written (without brackets, "0.0.0.0" for "*"). 0, or -1 when malformed. */
int httpd_parse_listen(const char *listen, struct sockaddr_storage *ss, char *host, size_t hostlen,
                       int *port);
/* Whether ss is a loopback address (127.0.0.0/8 or ::1). */
int httpd_is_loopback(const struct sockaddr_storage *ss);
/* Serves on ss with handler(cls); max_conns 0 leaves libmicrohttpd's default. Returns
 * the bound port, or -1 with errno set. */
int httpd_start(struct httpd *h, uv_loop_t *loop, const struct sockaddr_storage *ss,
                unsigned max_conns, MHD_AccessHandlerCallback handler, void *cls);
/* Runs what is ready and re-arms the timeout (after a resume, for instance). */
void httpd_drive(struct httpd *h);
/* Stops watching the daemon (the loop's handles close); httpd_stop() ends it later. */
void httpd_close(struct httpd *h);
/* Ends the daemon (after every suspended connection was resumed). */
void httpd_stop(struct httpd *h);

#endif
