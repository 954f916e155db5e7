/* page — the live rack page: a read-only web page laid out like the rack (hubs as rows
 * of port tiles: label, state, model, progress, try, last error, move hint), kept up to
 * date with Server-Sent Events, on its own listen address ([page] listen).
 *
 * GET /            the page (HTML, CSS and script embedded in the binary; no network)
 * GET /events      text/event-stream: "snapshot" (the whole rack, page_tiles.h, with the
 *                  live jobs), then "tile" (one tile that changed), "jobs" (the job
 *                  summary changed) and "snapshot" again when ports came or went;
 *                  a ": keepalive" comment after [page] heartbeat_s without an event
 * GET /rack.json   the snapshot as one JSON document
 *
 * The rack is read from the store every PAGE_TICK_MS while a client listens, and only
 * what changed is sent. A reading reads only what changed (page_rack.h: the ports and the
 * runs written since the last reading, by their change numbers) and builds only the
 * tiles that may have; it goes in steps of at most PAGE_RACK_STEP_NS of CPU, one per turn
 * of the loop, the first reading (the whole rack) too, and the clients hear of it only
 * when it is done. A request for /rack.json or /events waits (suspended) for the reading
 * it starts and is answered from the rack's text, kept a hub at a time. Where one reading
 * costs more than a tenth of PAGE_TICK_MS (a busy site of thousands of ports), the next
 * waits PAGE_DUTY times as long as the last took, so an open page never takes more than
 * about a tenth of the loop. At most [page] max_clients streams (503 beyond, at once);
 * each client has a queue of at most [page] client_buffer_kb unread bytes, or one event (a snapshot
 * larger than that goes to a client that has read everything): a client that falls that
 * far behind is dropped, so a slow reader never grows the controller's memory. A client
 * that went away is noticed at the next event or heartbeat sent to it (a stream with
 * nothing to send is suspended, its socket not watched).
 *
 * Bound to loopback by default. Any other address needs [page] token_file (the operator
 * token, checked at start: missing or empty refuses the start); with a token every
 * request must carry it (Authorization: Bearer TOKEN, or ?token=TOKEN, which the page
 * passes on to its event stream), compared in constant time. Loop thread only (httpd.h). */
#ifndef PAGE_H
#define PAGE_H

#include <stddef.h>

struct controller;

#define PAGE_TICK_MS 500
#define PAGE_DUTY 10 /* one reading of the rack per PAGE_DUTY times its cost, at least */

/* Checks [page] listen ("HOST:PORT", "[V6]:PORT" or "off") and that a non-loopback
 * address has a token_file. */
int page_check_cfg(const char *listen, const char *token_file, char *err, size_t errlen);
int page_start(struct controller *c, char *err, size_t errlen);
/* The page's URL ("" when off). */
const char *page_url(const struct controller *c);
void page_close(struct controller *c);
void page_destroy(struct controller *c);

/* Whether a and b are equal, in time that depends on their lengths only. */
int page_token_equal(const char *a, const char *b);

#endif
