/* fr_log — levelled, printf-checked log lines, with optional structured fields.
 *
 * Line format: "2026-11-24T10:00:00.123Z flashrack-agent INFO  unit: 0x00...: restoring -> done (ok)".
 * Each line names the component; callers name the unit (ECID) or port in the text, and
 * lines about a unit, job, agent or port also carry them as fields (fr_logx).
 *
 * Where a line goes (fr_log_configure):
 * - text: the line above, on stderr (or the stream given to fr_log_init).
 * - json: one JSON object per line: {"time","prog","level","component","message", and
 *   "job","ecid","agent","port" where known} — for log shippers.
 * - auto (the default): text, except under systemd — when $JOURNAL_STREAM names the
 *   stream stderr is connected to — where each line goes to journald's native socket
 *   (sd_journal_sendv) with PRIORITY, SYSLOG_IDENTIFIER, COMPONENT and the JOB, ECID,
 *   AGENT and PORT fields (`journalctl ECID=0x...`); if that socket cannot be written,
 *   the line goes to the stream as "<6>unit: ...": a syslog priority journald reads, and
 *   no timestamp or program name (the journal records both).
 * The logger is process-global (set once at start, read everywhere). Thread-safe
 * for whole lines (one write per line). */
#ifndef FR_LOG_H
#define FR_LOG_H

#include <stdio.h>

enum fr_log_level { FR_LOG_DEBUG = 0, FR_LOG_INFO, FR_LOG_WARN, FR_LOG_ERROR, FR_LOG_OFF };
enum fr_log_format { FR_LOG_FORMAT_AUTO = 0, FR_LOG_FORMAT_TEXT, FR_LOG_FORMAT_JSON };

/* What a line is about. Zero or NULL members are absent. */
struct fr_log_ctx {
    unsigned long long job;
    unsigned long long ecid;
    const char *agent;
    const char *port;
};

/* prog: "flashrackd"; out: NULL = stderr. The format starts as auto. */
void fr_log_init(const char *prog, enum fr_log_level min, FILE *out);
void fr_log_set_level(enum fr_log_level min);
/* "debug|info|warn|error|off" -> level; returns -1 when unknown. */
int fr_log_level_parse(const char *s);
/* "auto|text|json" -> format; returns -1 when unknown. */
int fr_log_format_parse(const char *s);
/* Sets the level and the format from their names (start, and SIGHUP reloads); says
 * "log_level info, log_format auto" in said. Returns 0, or -1 (nothing changed) when a
 * name is unknown. */
int fr_log_configure(const char *level, const char *format, char *said, size_t len);
void fr_log(enum fr_log_level lvl, const char *component, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* fr_log with fields; ctx may be NULL. */
void fr_logx(enum fr_log_level lvl, const char *component, const struct fr_log_ctx *ctx,
             const char *fmt, ...) __attribute__((format(printf, 4, 5)));

#define fr_debug(comp, ...) fr_log(FR_LOG_DEBUG, (comp), __VA_ARGS__)
#define fr_info(comp, ...) fr_log(FR_LOG_INFO, (comp), __VA_ARGS__)
#define fr_warn(comp, ...) fr_log(FR_LOG_WARN, (comp), __VA_ARGS__)
#define fr_error(comp, ...) fr_log(FR_LOG_ERROR, (comp), __VA_ARGS__)
#define fr_infox(comp, ctx, ...) fr_logx(FR_LOG_INFO, (comp), (ctx), __VA_ARGS__)
#define fr_warnx(comp, ctx, ...) fr_logx(FR_LOG_WARN, (comp), (ctx), __VA_ARGS__)
#define fr_errorx(comp, ctx, ...) fr_logx(FR_LOG_ERROR, (comp), (ctx), __VA_ARGS__)

#endif
