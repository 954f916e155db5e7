/* snapshot — what `flashrack watch` shows, read once and then kept up to date with only
 * the runs that changed (proto/PROTOCOL.md "watch"): each reply's runs replace the rows
 * of the same job and ECID; its jobs and moves, which come whole, replace the old ones.
 * Runs are kept as their JSON text, as the controller wrote them, and read from it
 * (rview.h) like the pages of a table: no jansson tree of a run is ever built, so the
 * first frame of 10,000 runs costs about what `status JOB` does. Only the jobs and the
 * moves are parsed. Not thread-safe; one snapshot per watch. */
#ifndef CLI_SNAPSHOT_H
#define CLI_SNAPSHOT_H

#include <jansson.h>
#include <stdint.h>
#include <stdio.h>

#include "jscan.h"
#include "rview.h"

struct snapshot;

/* An empty snapshot (seq 0: the first request reads every run); NULL when out of memory. */
struct snapshot *snapshot_new(void);
void snapshot_free(struct snapshot *s);
/* A watch reply's "seq", "more" and "next" (a snapshot page's cursor, malloc'ed: "" when
 * the reply has none), read from its text before its runs are, so the next request can go
 * out first; -1 when the reply has no integer seq, boolean more or string next. */
int snapshot_reply_cursor(const char *text, uint64_t *seq, int *more, char **next);
/* Applies one watch reply (its text, taken: kept until snapshot_frame_end, and freed
 * here on an error); its runs are this frame's changes too. -1 with err set when the
 * reply is not a watch document (the snapshot is then as it was, but for the runs
 * already read from it). The snapshot's pages come in key order, then the changes in
 * the order they were written; both replace runs alike. */
int snapshot_apply(struct snapshot *s, char *text, char *err, size_t errlen);
/* The change sequence to ask from next. */
uint64_t snapshot_seq(const struct snapshot *s);
/* The watched jobs and the moves, as the document's other members: {"jobs", "moves"}
 * (owned by the snapshot; valid until the next apply). */
const json_t *snapshot_head(const struct snapshot *s);
/* The runs it shows, as `status JOB` gives them: those of the jobs listed, by port
 * (rows.h); valid until the next apply. NULL rows when out of memory. */
struct rview_src snapshot_view(struct snapshot *s);
/* The runs the replies of this frame carried, by port (valid until snapshot_frame_end). */
struct rview_src snapshot_changed(struct snapshot *s);
/* The document {"jobs", "runs", "moves", "changes": the runs this frame read} as one
 * compact line, the bytes of json_dumps(JSON_COMPACT), printed from the runs' kept text. */
void snapshot_print_json(struct snapshot *s, FILE *out);
/* The frame is shown: its replies' text and its changes are dropped. */
void snapshot_frame_end(struct snapshot *s);

#endif
