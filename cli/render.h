/* render — turns the controller's JSON documents into text for people.
 *
 * Pure functions: a document in, text out to a FILE. Missing keys or wrong types
 * print "-" and never crash, so an older or newer controller stays readable. */
#ifndef CLI_RENDER_H
#define CLI_RENDER_H

#include <jansson.h>
#include <stdio.h>

#include "rview.h"

/* A progress bar of width cells for percent (clamped to 0..100; NaN → 0):
 * "[#########.........]  45%". buf needs width + 8 bytes. */
void render_bar(double percent, int width, char *buf, size_t len);
/* Overall percent of a run from its state, step (0..7) and fraction. */
double render_run_percent(const json_t *run);

/* The paged documents' tables take their rows apart from the rest of the document (doc:
 * its other members), so rows read from the pages' text (rview.h) print the same as
 * those of a parsed document: render_units(doc) is render_units_rows(doc, its "units"). */
void render_units_rows(const json_t *doc, const struct rview_src *rows, FILE *out);
void render_ports_rows(const json_t *doc, const struct rview_src *rows, FILE *out);
void render_job_rows(const json_t *doc, const struct rview_src *runs, FILE *out);
void render_report_rows(const json_t *doc, const struct rview_src *units, FILE *out);

/* A list served in the order it is shown (the ports, a report's units) is printed as its
 * pages come: head before the first page's rows, rows for each page's, foot (NULL: none)
 * after the last, n the rows in all; doc is the document's other members. */
struct render_parts {
    void (*head)(const json_t *doc, FILE *out);
    void (*rows)(const json_t *doc, const struct rview_src *rows, FILE *out);
    void (*foot)(const json_t *doc, size_t n, FILE *out);
};
/* render_ports_rows and render_report_rows in parts (render_csv.h has the CSV's). */
extern const struct render_parts render_ports_parts, render_report_parts;
/* All of p at once: what render_ports_rows is of render_ports_parts. */
void render_parts_all(const struct render_parts *p, const json_t *doc, const struct rview_src *rows, FILE *out);

void render_agents(const json_t *doc, FILE *out);
void render_units(const json_t *doc, FILE *out);
void render_ports(const json_t *doc, FILE *out);
void render_jobs(const json_t *doc, FILE *out);
/* One job with its unit runs (status JOB, and each frame of watch). */
void render_job(const json_t *doc, FILE *out);
void render_report(const json_t *doc, FILE *out);
/* Open move instructions: "move 0x… (iPhone12,1) from A-05 to B-03 [start from DFU: …]". */
void render_moves(const json_t *doc, FILE *out);
void render_move_line(const json_t *move, char *buf, size_t len);
/* One line per run for non-terminal watch output: "A-03 0x... restoring step 2 45%". */
void render_run_line(const json_t *run, char *buf, size_t len);
/* The same line of a run read through v (from jansson or from its text). */
void render_run_line_view(struct rview *v, char *buf, size_t len);
/* One unit: where it is, held or not, and every job it was in with its attempts. */
void render_unit(const json_t *doc, FILE *out);
/* What a submit matched, every agent named: "12 units on A, B; 2 skipped: X held, Y in job 2". */
void render_submit_summary(const json_t *doc, FILE *out);
/* The firmware catalog, what a selector resolves to, and the site mirror. */
void render_firmware(const json_t *doc, FILE *out);

#endif
