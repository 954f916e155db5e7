/* snapshot — what `flashrack watch` shows, read once and then kept up to date with only
 * the runs that changed (proto/PROTOCOL.md "watch"): each reply's runs replace the rows
 * of the same job and ECID; its jobs and moves, which come whole, replace the old ones. */
#ifndef CLI_SNAPSHOT_H
#define CLI_SNAPSHOT_H

#include <jansson.h>
#include <stdint.h>

/* An empty snapshot (seq 0: the first request reads every run). */
json_t *snapshot_new(void);
/* Applies one watch reply. */
void snapshot_apply(json_t *snap, const json_t *reply);
/* The change sequence to ask from next. */
uint64_t snapshot_seq(const json_t *snap);
/* The document it shows, as `status JOB` gives it: {"jobs", "runs", "moves"}, the runs
 * those of the jobs listed, by port (rows.h). */
json_t *snapshot_doc(const json_t *snap);

#endif
