/* httpd — libmicrohttpd on the controller's loop; see httpd.h. */
#include "httpd.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int httpd_parse_listen(const char *s, struct sockaddr_storage *ss, char *host, size_t hostlen,
                       int *port)
{
    const char *colon = strrchr(s, ':');
    char *end;
    long p = colon ? strtol(colon + 1, &end, 10) : -1;
    if (!colon || colon[1] == '\0' || *end || p < 0 || p > 65535)
        return -1;
    snprintf(host, hostlen, "%.*s", (int)(colon - s), s);
    if (host[0] == '[') { /* [v6]:port */
        size_t n = strlen(host);
        if (n < 2 || host[n - 1] != ']')
            return -1;
        memmove(host, host + 1, n - 2);
        host[n - 2] = '\0';
    }
    memset(ss, 0, sizeof *ss);
    struct sockaddr_in *v4 = (struct sockaddr_in *)ss;
    struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)ss;
    if (!host[0] || !strcmp(host, "*"))
        snprintf(host, hostlen, "0.0.0.0");
    if (inet_pton(AF_INET, host, &v4->sin_addr) == 1) {
        v4->sin_family = AF_INET;
        v4->sin_port = htons((uint16_t)p);
    } else if (inet_pton(AF_INET6, host, &v6->sin6_addr) == 1) {
        v6->sin6_family = AF_INET6;
        v6->sin6_port = htons((uint16_t)p);
    } else {
        return -1;
    }
    *port = (int)p;
    return 0;
}

int httpd_is_loopback(const struct sockaddr_storage *ss)
{
    if (ss->ss_family == AF_INET)
        return (ntohl(((const struct sockaddr_in *)ss)->sin_addr.s_addr) >> 24) == 127;
    return ss->ss_family == AF_INET6 &&
           IN6_IS_ADDR_LOOPBACK(&((const struct sockaddr_in6 *)ss)->sin6_addr);
}

static void on_timer(uv_timer_t *t)
{
    httpd_drive(t->data);
}

static void on_poll(uv_poll_t *p, int status, int events)
{
    httpd_drive(p->data);
}

void httpd_drive(struct httpd *h)
{
    if (!h->d || h->closed)
        return;
    MHD_run(h->d);
    MHD_UNSIGNED_LONG_LONG ms;
    if (MHD_get_timeout(h->d, &ms) == MHD_YES)
        uv_timer_start(&h->timer, on_timer, (uint64_t)ms, 0);
    else
        uv_timer_stop(&h->timer);
}

int httpd_start(struct httpd *h, uv_loop_t *loop, const struct sockaddr_storage *ss,
                unsigned max_conns, MHD_AccessHandlerCallback handler, void *cls)
{
    unsigned flags = MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME |
                     (ss->ss_family == AF_INET6 ? MHD_USE_IPv6 : 0);
    uint16_t port = ntohs(ss->ss_family == AF_INET6 ? ((const struct sockaddr_in6 *)ss)->sin6_port
                                                    : ((const struct sockaddr_in *)ss)->sin_port);
    if (max_conns)
        h->d = MHD_start_daemon(flags, port, NULL, NULL, handler, cls, MHD_OPTION_SOCK_ADDR, ss,
                                MHD_OPTION_CONNECTION_TIMEOUT, 120u, MHD_OPTION_CONNECTION_LIMIT,
                                max_conns, MHD_OPTION_END);
    else
        h->d = MHD_start_daemon(flags, port, NULL, NULL, handler, cls, MHD_OPTION_SOCK_ADDR, ss,
                                MHD_OPTION_CONNECTION_TIMEOUT, 120u, MHD_OPTION_END);
    if (!h->d)
        return -1;
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(h->d, MHD_DAEMON_INFO_EPOLL_FD);
    uv_poll_init(loop, &h->poll, info->epoll_fd);
    uv_timer_init(loop, &h->timer);
    h->poll.data = h->timer.data = h;
    uv_poll_start(&h->poll, UV_READABLE, on_poll);
    return MHD_get_daemon_info(h->d, MHD_DAEMON_INFO_BIND_PORT)->port;
}

static void on_closed(uv_handle_t *h)
{
}

void httpd_close(struct httpd *h)
{
    if (!h->d || h->closed)
        return;
    h->closed = 1;
    uv_poll_stop(&h->poll);
    uv_close((uv_handle_t *)&h->poll, on_closed);
    uv_close((uv_handle_t *)&h->timer, on_closed);
}

void httpd_stop(struct httpd *h)
{
    if (h->d)
        MHD_stop_daemon(h->d);
    h->d = NULL;
}
