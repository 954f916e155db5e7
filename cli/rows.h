/* rows — the order people read a document's rows in. The controller sends a paged list
 * in the order an index of its store serves (proto/PROTOCOL.md "Pages"): units and a
 * job's runs by ECID; the CLI shows them by port, as they sit on the rack. */
#ifndef CLI_ROWS_H
#define CLI_ROWS_H

#include <jansson.h>

/* Sorts list's rows (objects) by the string fields named in keys (NULL-terminated),
 * compared bytewise, the first key first; a missing field sorts as "". */
void rows_sort(json_t *list, const char *const *keys);
/* The rack order of units and runs: agent, label, ECID. */
extern const char *const rows_by_port[];

#endif
