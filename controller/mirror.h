/* mirror — the site mirror: the controller's own verified IPSW cache, served to
 * the agents over HTTP with Range, so the WAN sees one download per build per site.
 *
 * GET /ipsw/<sha256 or sha1>[.ipsw]:
 *   200/206  the verified file (Range: bytes=A-B, A-, -N);
 *   200      while the mirror fetches it (no Range): the partial file as it grows;
 *   503      the mirror is checking it, or fetching it and Range was asked (Retry-After):
 *            wait, do not bypass;
 *   502      the mirror's own fetch failed recently: go to the publisher;
 *   404      no job names this hash.
 * GET /ipsw/ lists what the mirror holds (JSON).
 * GET /metrics is the controller's Prometheus metrics (metrics.h), on this one server.
 *
 * The server runs on the controller's libuv loop (httpd.h), so the cache and the store
 * are only ever touched from the loop thread. */
#ifndef MIRROR_H
#define MIRROR_H

#include <jansson.h>
#include <stdint.h>

struct controller;

/* Checks [mirror] listen ("HOST:PORT", "[V6]:PORT", "*:PORT" or "off"). */
int mirror_check_listen(const char *listen, char *err, size_t errlen);
int mirror_start(struct controller *c, char *err, size_t errlen);
/* A job will need this file: start fetching it now (prefetch). */
void mirror_want(struct controller *c, const char *key, const char *url);
/* The base URL agents use ("" when the mirror is off). */
const char *mirror_url(const struct controller *c);
json_t *mirror_doc(struct controller *c);
void mirror_close(struct controller *c);
void mirror_destroy(struct controller *c);

/* "bytes=A-B" against a file of size bytes: 1 and [*from, *to] for a range, 0 for
 * the whole file (no header, or one we do not serve partially), -1 when it cannot
 * be satisfied (416). */
int mirror_parse_range(const char *header, uint64_t size, uint64_t *from, uint64_t *to);

#endif
