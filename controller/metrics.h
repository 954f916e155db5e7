/* metrics — the controller's Prometheus metrics: GET /metrics on the mirror's HTTP
 * server ([mirror] listen), in the text exposition format 0.0.4.
 *
 * Built on each scrape from the store (restores by result, class and model, attempts,
 * port strikes and quarantine, unit runs by state, the queue, restore durations), the
 * agent registry (agents up) and the mirror (bytes fetched and served). Nothing is
 * counted twice: the store is the one record, so a controller restart loses no count.
 * Handshakes and refused messages (zap.h) are the exception: counted since start.
 * Loop thread only. */
#ifndef METRICS_H
#define METRICS_H

#include <jansson.h>

struct controller;

/* The exposition text (malloc'd, the caller frees), or NULL when the store could not be
 * read or memory ran out. */
char *metrics_text(struct controller *c);

/* Formats the families of doc (store_doc_metrics) plus agents, mirror and security
 * (zap_doc) numbers; split out so it is a pure function over plain data. */
char *metrics_format(const json_t *store_doc, const json_t *agents, const json_t *mirror,
                     const json_t *sec);

/* The upper bounds (seconds) of the restore-duration histogram's buckets. */
extern const double metrics_duration_buckets[];
extern const int metrics_nduration_buckets;

#endif
