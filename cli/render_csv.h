/* render_csv — the controller's documents as RFC 4180 CSV (csv.h), for spreadsheets:
 * a header row, then one row per unit, port, job, unit run, or (report) attempt.
 * Strings as they are, numbers in decimal, booleans true/false, missing fields empty.
 * Pure, like render.h. */
#ifndef CLI_RENDER_CSV_H
#define CLI_RENDER_CSV_H

#include <jansson.h>
#include <stdio.h>

#include "render.h"
#include "rview.h"

/* units: ecid, product_type, serial, mode, agent, port, label, present, last_seen, run_state */
void render_csv_units(const json_t *doc, FILE *out);
/* ports: agent, path, label, hub, bus, depth, power_switch, state, ecid, strikes, reason */
void render_csv_ports(const json_t *doc, FILE *out);
/* status: one row per job (id, name, state, firmware, ..., and its totals) */
void render_csv_jobs(const json_t *doc, FILE *out);
/* status JOB: one row per unit run */
void render_csv_runs(const json_t *doc, FILE *out);
/* report: one row per attempt (a unit without attempts: one row, attempt fields empty) */
void render_csv_report(const json_t *doc, FILE *out);

/* The paged lists' rows apart from their document, as in render.h. */
void render_csv_units_rows(const json_t *doc, const struct rview_src *rows, FILE *out);
void render_csv_ports_rows(const json_t *doc, const struct rview_src *rows, FILE *out);
void render_csv_runs_rows(const json_t *doc, const struct rview_src *rows, FILE *out);
void render_csv_report_rows(const json_t *doc, const struct rview_src *units, FILE *out);
/* The ports' and the report's CSV in parts, printed as the pages come (render.h). */
extern const struct render_parts render_csv_ports_parts, render_csv_report_parts;

#endif
