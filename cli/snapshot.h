/* snapshot — what `flashrack watch` shows, read once and then kept up to date with only
 * the runs that changed (proto/PROTOCOL.md "watch"): each reply's runs replace the rows
 * of the same job and ECID; its jobs and moves, which come whole, replace the old ones. */
#ifndef CLI_SNAPSHOT_H
#define CLI_SNAPSHOT_H

#include <jansson.h>
#include <stdint.h>
#include <stdio.h>

/* An empty snapshot (seq 0: the first request reads every run). */
json_t *snapshot_new(void);
/* Applies one watch reply (text: the reply as it came, whose runs' text is kept for
 * snapshot_print_json; NULL: each changed run is dumped instead). */
void snapshot_apply(json_t *snap, const json_t *reply, const char *text);
/* The change sequence to ask from next. */
uint64_t snapshot_seq(const json_t *snap);
/* The document it shows, as `status JOB` gives it: {"jobs", "runs", "moves"}, the runs
 * those of the jobs listed, by port (rows.h). */
json_t *snapshot_doc(json_t *snap);
/* snapshot_doc's document with "changes": changes as one compact line, the bytes of
 * json_dumps(JSON_COMPACT), printed from the runs' kept text: a frame costs the runs that
 * changed (and a sort when some did), not a dump of every run. */
void snapshot_print_json(json_t *snap, size_t changes, FILE *out);

#endif
