/* fr_log — the process-wide logger. */
#include "fr_log.h"
#include "fr_time.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static struct {
    const char *prog;
    enum fr_log_level min;
    FILE *out;
    int journal; /* stderr is journald's stream: "<N>" priorities, no timestamp */
} g_log = { "flashrack", FR_LOG_INFO, NULL, 0 };

/* systemd names the journal stream it connected to stderr in $JOURNAL_STREAM
 * ("DEV:INO"); a stderr redirected elsewhere since keeps the plain format. */
static int stderr_is_journal(void)
{
    const char *js = getenv("JOURNAL_STREAM");
    unsigned long long dev, ino;
    struct stat st;
    if (!js || sscanf(js, "%llu:%llu", &dev, &ino) != 2 || fstat(STDERR_FILENO, &st) < 0)
        return 0;
    return (unsigned long long)st.st_dev == dev && (unsigned long long)st.st_ino == ino;
}

void fr_log_init(const char *prog, enum fr_log_level min, FILE *out)
{
    g_log.prog = prog ? prog : "flashrack";
    g_log.min = min;
    g_log.out = out;
    g_log.journal = !out && stderr_is_journal();
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
    static const int prios[] = { 7, 6, 4, 3 }; /* LOG_DEBUG, LOG_INFO, LOG_WARNING, LOG_ERR */
    if (lvl < g_log.min || lvl >= FR_LOG_OFF)
        return;
    char ts[32], msg[2048];
    fr_time_iso8601(fr_time_wall_ms(), ts, sizeof ts);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    FILE *out = g_log.out ? g_log.out : stderr;
    if (g_log.journal) /* journald keeps the time and the program; syslog(3)'s priorities */
        fprintf(out, "<%d>%s: %s\n", prios[lvl], component ? component : "-", msg);
    else
        fprintf(out, "%s %s %s %s: %s\n", ts, g_log.prog, tags[lvl], component ? component : "-", msg);
    fflush(out);
}
