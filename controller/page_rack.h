/* page_rack — the rack as the rack page keeps it between readings (page.h), read in steps
 * and only where it changed. A reading reads the runs written since the last one
 * (store_doc_watch from its change number, unit_runs.seq) and the ports written since
 * (store_rack_ports_since, ports.seq: a port's own columns or the unit on it), a page of
 * rows at a time, in as many steps as it takes (each step stops once it has used its CPU
 * budget); only the tiles of ports whose row, runs or move instructions changed are built
 * again. A new port, or one whose label or hub changed, is a new layout: the rack is put
 * in order again from the rows it keeps, without reading the rest. The first reading is
 * the same reading from change number 0 (the runs first, then the ports, each tile built
 * once). Only a job watched again that was watched before (older than the newest read)
 * makes the rack read whole again, into a second rack, while the first is still served.
 * The rack's text (the snapshot) is kept a hub at a time, and a hub's text dumped again
 * only when one of its tiles changed. Loop thread only. */
#ifndef PAGE_RACK_H
#define PAGE_RACK_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

struct store;
struct page_rack;

/* What one step found; the rest only when done. */
struct page_rack_delta {
    int done;             /* the reading is complete: the clients may be told what follows */
    int whole;            /* the rack was read whole (the first reading, a job watched again) */
    int layout;           /* the hubs or the tiles' order changed: clients need a snapshot */
    int jobs;             /* the job summary changed */
    json_t *tiles;        /* the texts (JSON strings) of the tiles that changed; NULL or an array */
    size_t ports_read;    /* port rows the reading read */
    size_t runs_read;     /* runs the reading read */
    size_t tiles_built;   /* tiles built */
    size_t steps;         /* steps the reading took */
};

/* The CPU a step may take before it stops (it ends the page of rows it is in). */
#define PAGE_RACK_STEP_NS (20 * 1000000ULL)
/* Rows read at a time. */
#define PAGE_RACK_ROWS 200

struct page_rack *page_rack_new(void);
void page_rack_destroy(struct page_rack **r);
/* One step of the reading under way (a new one is begun when none is): 0, or FR_ESTORE
 * when the store could not be read (what was read stays; the next step reads on). With
 * want_text the reading is done only once the rack's text is current (page_rack_text).
 * The caller frees d->tiles. */
int page_rack_step(struct page_rack *r, struct store *s, uint64_t budget_ns, int want_text,
                   struct page_rack_delta *d);
/* The rack, {"hubs", "jobs"} (page_tiles.h) as compact JSON: NULL unless a reading with
 * want_text (or a new layout) is done and nothing changed since. */
const char *page_rack_text(const struct page_rack *r, size_t *len);
/* The rack now, {"hubs", "jobs"}; NULL before the first reading is done. */
const json_t *page_rack_doc(const struct page_rack *r);
/* The job summary, [{"id", "name", "state", "totals"}]. */
const json_t *page_rack_jobs(const struct page_rack *r);

#endif
