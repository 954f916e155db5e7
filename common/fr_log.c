/* fr_log — the process-wide logger. */
#include "fr_log.h"
#include "fr_time.h"

#include <stdarg.h>
#include <string.h>

static struct {
    const char *prog;
    enum fr_log_level min;
    FILE *out;
} g_log = { "flashrack", FR_LOG_INFO, NULL };

void fr_log_init(const char *prog, enum fr_log_level min, FILE *out)
{
    g_log.prog = prog ? prog : "flashrack";
    g_log.min = min;
    g_log.out = out;
}

void fr_log_set_level(enum fr_log_level min)
{
    g_log.min = min;
}

int fr_log_level_parse(const char *s)
{
    static const char *names[] = { "debug", "info", "warn", "error", "off" };
    for (int i = 0; i < 5; i++)
        if (s && strcmp(s, names[i]) == 0)
            return i;
    return -1;
}

void fr_log(enum fr_log_level lvl, const char *component, const char *fmt, ...)
{
    static const char *tags[] = { "DEBUG", "INFO ", "WARN ", "ERROR" };
    if (lvl < g_log.min || lvl >= FR_LOG_OFF)
        return;
    char ts[32], msg[2048];
    fr_time_iso8601(fr_time_wall_ms(), ts, sizeof ts);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    FILE *out = g_log.out ? g_log.out : stderr;
    fprintf(out, "%s %s %s %s: %s\n", ts, g_log.prog, tags[lvl], component ? component : "-", msg);
    fflush(out);
}
