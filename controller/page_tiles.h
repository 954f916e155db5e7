/* page_tiles — what the rack page shows: the rack as hubs of port tiles, built from the
 * store's ports document and the watch document (runs of the running jobs and the most
 * recent one, and the open move instructions). A pure function over plain data.
 *
 * {"hubs": [{"agent", "hub", "tiles": [TILE...]}]}, hubs in the ports' order (by agent,
 * then label), TILE = {"id": "agent:path", "label", "state", "tone", "model", "ecid",
 * "progress": 0..100 or -1, "try": n, "error", "move", "strikes"}.
 * state: "quarantined", the state of the unit run on the port, "present" (a unit, no
 * run) or "empty"; tone groups states for colour: ok, busy, wait, bad, idle. model: the
 * shown run's unit's, or with no run the model of the unit on the port (the port's
 * "model", where the port rows carry one). */
#ifndef PAGE_TILES_H
#define PAGE_TILES_H

#include <jansson.h>

json_t *page_tiles(const json_t *ports_doc, const json_t *watch_doc);

/* The same in parts, for a page that keeps the rack and rebuilds only the tiles whose
 * port, runs or moves changed. page_key: "agent<US>path", the key of a port (or of a hub:
 * agent and hub). page_runs_by_port: {"agent<US>port": [run...]}, the runs in the order
 * given (the newest job last). page_tile: one port's tile from the runs on it (NULL:
 * none). page_tiles_of: {"hubs"} from the ports in rack order and the runs by port. */
void page_key(const char *a, const char *b, char *buf, size_t len);
json_t *page_runs_by_port(const json_t *runs);
json_t *page_tile(const json_t *port, const json_t *port_runs, const json_t *moves);
json_t *page_tiles_of(const json_t *ports, const json_t *by_port, const json_t *moves);

/* The tone of a state (see above). */
const char *page_tone(const char *state);

#endif
