/* page_rack — the rack as the rack page keeps it between readings (page.h): read whole
 * at the first reading, then only what changed. Each reading walks the ports with only
 * the columns a tile shows (store_rack_ports: no jansson unless a port changed) and reads
 * the runs written since the last reading (store_doc_watch from its change number,
 * unit_runs.seq); only the tiles of ports whose row, runs or move instructions changed are
 * built again. It reads the rack whole again when ports came, went or moved between hubs
 * (the layout) or the watched jobs changed (one started or ended). Loop thread only. */
#ifndef PAGE_RACK_H
#define PAGE_RACK_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

struct store;
struct page_rack;

/* What one reading found. */
struct page_rack_delta {
    int whole;           /* read whole (the first reading, a new layout, other jobs) */
    int layout;          /* the hubs or the tiles' order changed: clients need a snapshot */
    int jobs;            /* the job summary changed */
    json_t *tiles;       /* the tiles that changed (an array; the caller frees it) */
    size_t ports_changed; /* port rows that differed from the last reading */
    size_t runs_read;    /* runs the reading read */
    size_t tiles_built;  /* tiles built */
};

struct page_rack *page_rack_new(void);
void page_rack_destroy(struct page_rack **r);
/* One reading: 0, or FR_ESTORE (r is as it was, d empty) when the store could not be read. */
int page_rack_read(struct page_rack *r, struct store *s, struct page_rack_delta *d);
/* The rack now, {"hubs", "jobs"} (page_tiles.h); NULL before a reading succeeded. */
const json_t *page_rack_doc(const struct page_rack *r);
/* The job summary, [{"id", "name", "state", "totals"}]. */
const json_t *page_rack_jobs(const struct page_rack *r);

#endif
