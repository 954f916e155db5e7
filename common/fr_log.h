/* fr_log — levelled, printf-checked log lines.
 *
 * Line format: "2026-11-24T10:00:00.123Z flashrack-agent INFO  unit: 0x00...: restoring -> done (ok)".
 * Each line names the component; callers name the unit (ECID) or port in the text.
 * Under systemd, when $JOURNAL_STREAM names the stream stderr is connected to, lines
 * are "<6>unit: ..." instead: a syslog priority journald reads, and no timestamp or
 * program name (the journal records both).
 * The logger is process-global (set once at start, read everywhere). Thread-safe
 * for whole lines (one fprintf per line). */
#ifndef FR_LOG_H
#define FR_LOG_H

#include <stdio.h>

enum fr_log_level { FR_LOG_DEBUG = 0, FR_LOG_INFO, FR_LOG_WARN, FR_LOG_ERROR, FR_LOG_OFF };

/* prog: "flashrackd"; out: NULL = stderr. */
void fr_log_init(const char *prog, enum fr_log_level min, FILE *out);
void fr_log_set_level(enum fr_log_level min);
/* "debug|info|warn|error|off" -> level; returns -1 when unknown. */
int fr_log_level_parse(const char *s);
void fr_log(enum fr_log_level lvl, const char *component, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#define fr_debug(comp, ...) fr_log(FR_LOG_DEBUG, (comp), __VA_ARGS__)
#define fr_info(comp, ...) fr_log(FR_LOG_INFO, (comp), __VA_ARGS__)
#define fr_warn(comp, ...) fr_log(FR_LOG_WARN, (comp), __VA_ARGS__)
#define fr_error(comp, ...) fr_log(FR_LOG_ERROR, (comp), __VA_ARGS__)

#endif
