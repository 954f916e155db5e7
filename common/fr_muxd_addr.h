/* fr_muxd_addr — where usbmuxd listens, read as libusbmuxd 2.0 reads
 * $USBMUXD_SOCKET_ADDRESS:
 *   UNIX:/path          a Unix socket
 *   HOST:PORT           TCP (an IPv4 address or a host name)
 *   [V6]:PORT           TCP over IPv6
 *   unset or empty      the default Unix socket (/var/run/usbmuxd on a host)
 * libusbmuxd silently falls back to /var/run/usbmuxd on a value it cannot read; here
 * such a value is an error naming it, so a typo is not mistaken for "no usbmuxd".
 * Parsing is pure; fr_muxd_addr_resolve() asks the resolver (blocking: call it at
 * start-up or from a one-shot command). */
#ifndef FR_MUXD_ADDR_H
#define FR_MUXD_ADDR_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#define FR_MUXD_ENV "USBMUXD_SOCKET_ADDRESS"

struct fr_muxd_addr {
    int tcp;                /* 1: host and port; 0: path */
    char path[108];         /* the Unix socket (sun_path's size) */
    char host[256];         /* TCP: without the brackets of an IPv6 address */
    uint16_t port;
    char text[400];         /* as written, for messages ("UNIX:/path", "127.0.0.1:27015") */
};

/* Reads value (NULL or "" for the default, which is default_path). Returns 0, or
 * FR_ECONFIG with err naming the value and what was expected. */
int fr_muxd_addr_parse(const char *value, const char *default_path, struct fr_muxd_addr *out,
                       char *err, size_t errlen);
/* The first address a TCP host:port resolves to (len set). Returns 0, or FR_ECONFIG. */
int fr_muxd_addr_resolve(const struct fr_muxd_addr *a, struct sockaddr_storage *ss,
                         socklen_t *len, char *err, size_t errlen);

#endif
