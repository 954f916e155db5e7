/* engine_output — engine text to progress and failure classes; see engine_output.h. */
#include "engine_output.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ERRORS.md as data: the first matching pattern decides a line's class.
 * Specific patterns come before general ones. */
static const struct {
    const char *pattern;
    enum fr_class cls;
} classes[] = {
    { "Could not read data", FR_CLASS_LINK_LOST },
    { "Unable to send filesystem payload chunk", FR_CLASS_LINK_LOST },
    { "Unable to send filesystem", FR_CLASS_LINK_LOST },
    { "Unable to send payload to ASR", FR_CLASS_LINK_LOST },
    { "Unable to connect to ASR", FR_CLASS_LINK_LOST },
    { "Device did not reconnect", FR_CLASS_LINK_LOST },
    { "Device failed to enter restore mode", FR_CLASS_LINK_LOST },
    { "Unable to discover device mode", FR_CLASS_NO_DEVICE },
    { "Unable to connect to device in recovery mode", FR_CLASS_NO_DEVICE },
    { "Unable to connect to device in DFU mode", FR_CLASS_NO_DEVICE },
    { "Invalid HostID", FR_CLASS_NEEDS_DFU },
    { "SessionInactive", FR_CLASS_NEEDS_DFU },
    { "PairingDialogResponsePending", FR_CLASS_NEEDS_DFU },
    { "PasswordProtected", FR_CLASS_NEEDS_DFU },
    { "STATUS=94", FR_CLASS_NOT_SIGNED },
    { "status=94", FR_CLASS_NOT_SIGNED },
    { "This device isn't eligible for the requested build", FR_CLASS_NOT_SIGNED },
    { "TSS request failed", FR_CLASS_NETWORK },
    { "Could not resolve host", FR_CLASS_NETWORK },
    { "Unable to extract BuildManifest", FR_CLASS_FIRMWARE },
    { "cannot be opened", FR_CLASS_FIRMWARE },
    { "Firmware file", FR_CLASS_FIRMWARE }, /* "Firmware file X does not exist." */
    { "Unable to find a matching build identity", FR_CLASS_WRONG_FIRMWARE },
    /* 1.0.0: the IPSW's BuildManifest does not list the unit's ProductType */
    { "Could not make sure this firmware is suitable", FR_CLASS_WRONG_FIRMWARE },
    { "Unable to discover device type", FR_CLASS_STACK_TOO_OLD },
    { "Unknown data request", FR_CLASS_STACK_TOO_OLD },
    { "Status: Disk Failure", FR_CLASS_HARDWARE },
    { "Failed to recover FDR data", FR_CLASS_HARDWARE },
    { "X-Gold Baseband Update Failed", FR_CLASS_HARDWARE },
    { "Failed to mount filesystems", FR_CLASS_HARDWARE },
    { "Failed to load SEP Firmware", FR_CLASS_HARDWARE },
    { "Waiting for battery to charge", FR_CLASS_BATTERY },
    { "Checking battery voltage", FR_CLASS_BATTERY },
    { "Unhandled status message", FR_CLASS_UNKNOWN },
    { "Status: Verification Error", FR_CLASS_UNKNOWN },
    { "Status: Fail", FR_CLASS_UNKNOWN },
};

void engine_output_init(struct engine_output *eo)
{
    memset(eo, 0, sizeof *eo);
}

enum fr_class engine_output_classify(const char *line)
{
    for (size_t i = 0; i < sizeof classes / sizeof classes[0]; i++)
        if (strstr(line, classes[i].pattern))
            return classes[i].cls;
    return FR_CLASS_NONE;
}

static void set_progress(struct engine_output *eo, int step, double fraction)
{
    if (step < 0 || step > 7 || !(fraction >= 0.0 && fraction <= 1.0))
        return;
    eo->step = step;
    eo->fraction = fraction;
    eo->progress_changed = 1;
    if (step == 7 && fraction >= 1.0)
        eo->finished = 1;
}

/* "[=====     ]  45.0%" anywhere in the line (with or without a label before). */
static int parse_bar(const char *line, double *fraction)
{
    const char *open = strchr(line, '[');
    const char *close = open ? strchr(open, ']') : NULL;
    if (!close)
        return 0;
    for (const char *p = open + 1; p < close; p++)
        if (*p != '=' && *p != ' ' && *p != '#' && *p != '-')
            return 0;
    char *end = NULL;
    double pct = strtod(close + 1, &end);
    while (end && *end == ' ')
        end++;
    if (!end || *end != '%' || pct < 0 || pct > 100)
        return 0;
    *fraction = pct / 100.0;
    return 1;
}

static void take_line(struct engine_output *eo, char *line)
{
    size_t n = strlen(line);
    while (n && isspace((unsigned char)line[n - 1]))
        line[--n] = '\0';
    if (!n)
        return;
    eo->lines++;
    int step;
    double frac;
    char tail;
    if (sscanf(line, "progress: %d %lf%c", &step, &frac, &tail) == 2) {
        set_progress(eo, step, frac);
        return;
    }
    if (parse_bar(line, &frac)) {
        set_progress(eo, eo->step, frac);
        return;
    }
    if (strcmp(line, "DONE") == 0 || strstr(line, "Status: Restore Finished"))
        eo->finished = 1;
    if (sscanf(line, "Product Version: %31s", eo->version) == 1 ||
        sscanf(line, "Product Build: %31s", eo->build) == 1)
        return;
    enum fr_class c = engine_output_classify(line);
    if (c == FR_CLASS_BATTERY)
        eo->battery_wait = 1;
    else if (c != FR_CLASS_NONE && eo->cls == FR_CLASS_NONE) {
        eo->cls = c;
        snprintf(eo->cls_text, sizeof eo->cls_text, "%s", line);
    }
    if (strncmp(line, "ERROR: ", 7) == 0)
        snprintf(eo->last_error, sizeof eo->last_error, "%s", line);
    else {
        snprintf(eo->status, sizeof eo->status, "%s", line);
        eo->status_changed = 1;
    }
}

void engine_output_feed(struct engine_output *eo, const char *data, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        char ch = data[i];
        if (ch == '\n' || ch == '\r') {
            eo->line[eo->len] = '\0';
            take_line(eo, eo->line);
            eo->len = 0;
        } else if (eo->len < EO_LINE_MAX - 1) {
            eo->line[eo->len++] = ch == '\0' ? ' ' : ch;
        }
    }
}

void engine_output_end(struct engine_output *eo)
{
    if (eo->len) {
        eo->line[eo->len] = '\0';
        take_line(eo, eo->line);
        eo->len = 0;
    }
}

enum fr_class engine_output_outcome(const struct engine_output *eo, int exit_code, int signaled,
                                    char *text, size_t len)
{
    if (exit_code == 0 && !signaled && eo->finished && eo->cls == FR_CLASS_NONE) {
        snprintf(text, len, "%s", "");
        return FR_CLASS_NONE;
    }
    if (eo->cls != FR_CLASS_NONE) {
        snprintf(text, len, "%s", eo->cls_text);
        return eo->cls;
    }
    if (signaled)
        snprintf(text, len, "engine killed by signal %d", signaled);
    else if (exit_code == 0)
        snprintf(text, len, "engine exited 0 without finishing the restore");
    else
        snprintf(text, len, "engine exited with code %d: %s", exit_code,
                 eo->last_error[0] ? eo->last_error : eo->status[0] ? eo->status : "no output");
    return FR_CLASS_UNKNOWN;
}
