/* rackmap — the rack map of one USB host: which printed label each port has
 * (one or more kernel port paths: a USB 3 port has a USB 2 and a USB 3 half),
 * hub names, and which hubs share an uplink. An INI file named by
 * [seams] rack_map, written by `flashrack-agent rack learn`:
 *
 *     [ports]
 *     A-01 = 1-1.1 2-1.1
 *     [hubs]
 *     front = 1-1 2-1
 *     [uplinks]
 *     shelf-1 = front back
 *
 * A port the map does not name is labelled by its path. A duplicate label, path
 * or hub, a malformed path, an unknown hub in [uplinks] or an unknown section is
 * an error "FILE:LINE: [section] key: ..." (fr_config's form). Plain data: the
 * caller owns it; no threads. */
#ifndef RACKMAP_H
#define RACKMAP_H

#include <stddef.h>

#define RACKMAP_PATHS 2 /* the halves of one physical port or hub */

struct rackmap_entry {
    char name[32];                     /* a port's label, a hub's name */
    char paths[RACKMAP_PATHS][32];
    int npaths;
    char uplink[32];                   /* hubs: the uplink it shares, "" */
    int line;                          /* where it was read, 0 when added */
};

struct rackmap {
    struct rackmap_entry *ports, *hubs;
    size_t nports, nhubs, ports_cap, hubs_cap;
};

/* Reads path. A missing file is FR_ENOTFOUND; anything wrong FR_ECONFIG with err. */
int rackmap_load(const char *path, struct rackmap **out, char *err, size_t errlen);
struct rackmap *rackmap_new(void);
void rackmap_destroy(struct rackmap **m);

/* Adds a port: FR_EEXIST when the label or a path is taken (err says by what),
 * FR_EINVAL for a malformed label or path. */
int rackmap_add_port(struct rackmap *m, const char *label, const char *const *paths, int npaths,
                     char *err, size_t errlen);

/* The label of the port with this path (either half), or NULL. */
const char *rackmap_label(const struct rackmap *m, const char *path);
/* The name of the hub with this kernel name (either half), or NULL. */
const char *rackmap_hub(const struct rackmap *m, const char *hub);
/* The next free label "PREFIXnn" (01, 02, ...) into buf. */
void rackmap_next_label(const struct rackmap *m, const char *prefix, char *buf, size_t len);

/* Writes m to path atomically (fr_file_write_atomic: a temporary file, fsync, rename). */
int rackmap_save(const struct rackmap *m, const char *path, char *err, size_t errlen);

#endif
