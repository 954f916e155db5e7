/* fr_muxd_addr — usbmuxd's address as $USBMUXD_SOCKET_ADDRESS gives it; see fr_muxd_addr.h. */
#include "fr_muxd_addr.h"

#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fr_err.h"

static int bad(const char *value, char *err, size_t errlen, const char *why)
{
    return fr_seterr(FR_ECONFIG, err, errlen, FR_MUXD_ENV " '%s': %s (expected UNIX:/path, "
                     "HOST:PORT or [IPV6]:PORT)", value, why);
}

static int parse_unix(const char *value, const char *path, struct fr_muxd_addr *out, char *err,
                      size_t errlen)
{
    if (!*path)
        return bad(value, err, errlen, "no path after UNIX:");
    if (strlen(path) >= sizeof out->path)
        return bad(value, err, errlen, "the path is longer than a Unix socket's 107 bytes");
    snprintf(out->path, sizeof out->path, "%s", path);
    return 0;
}

/* HOST:PORT or [V6]:PORT; the port is the part after the last colon, as libusbmuxd reads it. */
static int parse_tcp(const char *value, struct fr_muxd_addr *out, char *err, size_t errlen)
{
    const char *colon = strrchr(value, ':');
    if (!colon)
        return bad(value, err, errlen, "no :PORT");
    char *end = NULL;
    long port = strtol(colon + 1, &end, 10);
    if (colon[1] == '\0' || *end != '\0' || port < 1 || port > 65535)
        return bad(value, err, errlen, "the port is not a number from 1 to 65535");
    const char *host = value;
    size_t n = (size_t)(colon - value);
    if (value[0] == '[') {
        if (n < 2 || value[n - 1] != ']')
            return bad(value, err, errlen, "an IPv6 address needs its closing ']' before :PORT");
        host = value + 1;
        n -= 2;
    }
    if (n == 0)
        return bad(value, err, errlen, "no host before :PORT");
    if (n >= sizeof out->host)
        return bad(value, err, errlen, "the host name is too long");
    memcpy(out->host, host, n);
    out->host[n] = '\0';
    out->port = (uint16_t)port;
    out->tcp = 1;
    return 0;
}

int fr_muxd_addr_parse(const char *value, const char *default_path, struct fr_muxd_addr *out,
                       char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    if (!value || !*value) {
        snprintf(out->text, sizeof out->text, "%s", default_path);
        return parse_unix(default_path, default_path, out, err, errlen);
    }
    snprintf(out->text, sizeof out->text, "%s", value);
    if (strncmp(value, "UNIX:", 5) == 0)
        return parse_unix(value, value + 5, out, err, errlen);
    return parse_tcp(value, out, err, errlen);
}

int fr_muxd_addr_resolve(const struct fr_muxd_addr *a, struct sockaddr_storage *ss,
                         socklen_t *len, char *err, size_t errlen)
{
    struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
                              .ai_flags = AI_NUMERICSERV }, *res = NULL;
    char port[8];
    snprintf(port, sizeof port, "%u", a->port);
    int rc = getaddrinfo(a->host, port, &hints, &res);
    if (rc != 0 || !res || res->ai_addrlen > sizeof *ss) {
        if (res)
            freeaddrinfo(res);
        return fr_seterr(FR_ECONFIG, err, errlen, FR_MUXD_ENV " '%s': host '%s' does not resolve: "
                         "%s", a->text, a->host, rc ? gai_strerror(rc) : "no address");
    }
    memcpy(ss, res->ai_addr, res->ai_addrlen);
    *len = res->ai_addrlen;
    freeaddrinfo(res);
    return 0;
}
