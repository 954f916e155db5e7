/* engine_output — reads what a restore engine (idevicerestore, or the
 * simulator's stand-in) prints, and decides what happened.
 *
 * Pure: bytes in, state out; no I/O. Lines end at '\n' or '\r' (progress bars
 * redraw with '\r'), chunks may split anywhere. It understands -P's
 * "progress: <step> <fraction>", both bar styles ("[===   ]  45.0%" of 1.0.0 and
 * "Uploading [===   ]  45.0%" of master), "Status: ..." lines, error text of both
 * dialects, and the firmware it restores ("Product Version: 18.2", "Product Build: 22C152
 * Major: 22", printed once it has read the IPSW's BuildManifest). Failure classes come from one data table (ERRORS.md). */
#ifndef ENGINE_OUTPUT_H
#define ENGINE_OUTPUT_H

#include <stddef.h>

#include "fr_types.h"

#define EO_LINE_MAX 2048
#define EO_TEXT_MAX 512

struct engine_output {
    char line[EO_LINE_MAX];
    size_t len;
    int step;               /* last progress step, 0..7 */
    double fraction;        /* within the step */
    int progress_changed;   /* set on new progress; the caller clears it */
    char status[EO_TEXT_MAX];   /* last Status:/info line */
    int status_changed;
    enum fr_class cls;      /* first failure class seen (FR_CLASS_NONE if none) */
    char cls_text[EO_TEXT_MAX]; /* the line that decided it */
    char last_error[EO_TEXT_MAX]; /* the last "ERROR: ..." line, for an unclassified failure */
    int finished;           /* saw "Status: Restore Finished", "DONE" or "progress: 7 1.0" */
    int battery_wait;       /* the device is charging: not a failure, extend the watchdog */
    char version[32], build[32]; /* the IPSW's ProductVersion and build ("" until printed) */
    size_t lines;
};

void engine_output_init(struct engine_output *eo);
/* Feeds a chunk of output (either stream). */
void engine_output_feed(struct engine_output *eo, const char *data, size_t n);
/* Ends the stream (flushes a last line without a terminator). */
void engine_output_end(struct engine_output *eo);

/* The class of one line, or FR_CLASS_NONE; battery lines give FR_CLASS_BATTERY. */
enum fr_class engine_output_classify(const char *line);

/* The outcome after the engine exited with code (signaled: killed by a signal).
 * Success needs exit 0 AND a finish marker; anything else is a failure with the
 * class seen, or FR_CLASS_UNKNOWN. Writes the deciding text into text. */
enum fr_class engine_output_outcome(const struct engine_output *eo, int exit_code, int signaled,
                                    char *text, size_t len);

#endif
