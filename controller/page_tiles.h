/* page_tiles — what the rack page shows: the rack as hubs of port tiles, built from the
 * store's ports document and the watch document (runs of the running jobs and the most
 * recent one, and the open move instructions). A pure function over plain data.
 *
 * {"hubs": [{"agent", "hub", "tiles": [TILE...]}]}, hubs in the ports' order (by agent,
 * then label), TILE = {"id": "agent:path", "label", "state", "tone", "model", "ecid",
 * "progress": 0..100 or -1, "try": n, "error", "move", "strikes"}.
 * state: "quarantined", the state of the unit run on the port, "present" (a unit, no
 * run) or "empty"; tone groups states for colour: ok, busy, wait, bad, idle. */
#ifndef PAGE_TILES_H
#define PAGE_TILES_H

#include <jansson.h>

json_t *page_tiles(const json_t *ports_doc, const json_t *watch_doc);

/* The tone of a state (see above). */
const char *page_tone(const char *state);

#endif
