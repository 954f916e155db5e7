/* fr_log — the process-wide logger and its three sinks (text, JSON lines, journald). */
#include "fr_log.h"
#include "fr_time.h"
#include "fr_types.h"

#include <jansson.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <systemd/sd-journal.h>
#include <unistd.h>

static struct {
    const char *prog;
    enum fr_log_level min;
    enum fr_log_format format;
    FILE *out;
    int journal; /* stderr is journald's stream */
} g_log = { "flashrack", FR_LOG_INFO, FR_LOG_FORMAT_AUTO, NULL, 0 };

static const char *level_names[] = { "debug", "info", "warn", "error", "off" };
static const int prios[] = { 7, 6, 4, 3 }; /* LOG_DEBUG, LOG_INFO, LOG_WARNING, LOG_ERR */

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

static int parse_name(const char *s, const char *const *names, int n)
{
    for (int i = 0; i < n; i++)
        if (s && strcmp(s, names[i]) == 0)
            return i;
    return -1;
}

int fr_log_level_parse(const char *s)
{
    return parse_name(s, level_names, 5);
}

int fr_log_format_parse(const char *s)
{
    static const char *const names[] = { "auto", "text", "json" };
    return parse_name(s, names, 3);
}

int fr_log_configure(const char *level, const char *format, char *said, size_t len)
{
    int l = fr_log_level_parse(level), f = fr_log_format_parse(format);
    if (l < 0 || f < 0) {
        snprintf(said, len, "unknown log_level '%s' or log_format '%s'", level, format);
        return -1;
    }
    g_log.min = (enum fr_log_level)l;
    g_log.format = (enum fr_log_format)f;
    snprintf(said, len, "log_level %s, log_format %s", level, format);
    return 0;
}

/* One iovec per field, as sd_journal_sendv wants them ("KEY=value", no newline). */
struct jfields {
    struct iovec iov[10];
    char buf[10][160];
    int n;
};

static void jf_add(struct jfields *f, const char *key, const char *val)
{
    if (f->n >= 10)
        return;
    int len = snprintf(f->buf[f->n], sizeof f->buf[f->n], "%s=%s", key, val);
    if (len >= (int)sizeof f->buf[f->n])
        len = (int)sizeof f->buf[f->n] - 1;
    f->iov[f->n].iov_base = f->buf[f->n];
    f->iov[f->n].iov_len = (size_t)len;
    f->n++;
}

/* 0 when journald took the line; the caller falls back to the stream otherwise
 * (journald restarting, or a $JOURNAL_STREAM inherited without a journal).
 * sd_journal_sendv reports success when the socket does not exist, hence the check. */
static int send_journal(enum fr_log_level lvl, const char *component, const struct fr_log_ctx *ctx,
                        const char *msg)
{
    if (access("/run/systemd/journal/socket", W_OK) < 0)
        return -1;
    struct jfields f = { .n = 0 };
    size_t mlen = strlen("MESSAGE=") + strlen(component) + 2 + strlen(msg);
    char *m = malloc(mlen + 1); /* the message is long; the fields are short */
    if (!m)
        return -1;
    snprintf(m, mlen + 1, "MESSAGE=%s: %s", component, msg);
    char v[32];
    snprintf(v, sizeof v, "%d", prios[lvl]);
    jf_add(&f, "PRIORITY", v);
    jf_add(&f, "SYSLOG_IDENTIFIER", g_log.prog);
    jf_add(&f, "COMPONENT", component);
    if (ctx && ctx->job) {
        snprintf(v, sizeof v, "%llu", ctx->job);
        jf_add(&f, "JOB", v);
    }
    if (ctx && ctx->ecid) {
        fr_ecid_format(ctx->ecid, v, sizeof v);
        jf_add(&f, "ECID", v);
    }
    if (ctx && ctx->agent && *ctx->agent)
        jf_add(&f, "AGENT", ctx->agent);
    if (ctx && ctx->port && *ctx->port)
        jf_add(&f, "PORT", ctx->port);
    f.iov[f.n].iov_base = m;
    f.iov[f.n].iov_len = strlen(m);
    int rc = sd_journal_sendv(f.iov, f.n + 1);
    free(m);
    return rc < 0 ? -1 : 0;
}

static void write_json(FILE *out, const char *ts, enum fr_log_level lvl, const char *component,
                       const struct fr_log_ctx *ctx, const char *msg)
{
    json_t *o = json_pack("{s:s, s:s, s:s, s:s, s:s}", "time", ts, "prog", g_log.prog, "level",
                          level_names[lvl], "component", component, "message", msg);
    if (!o)
        return;
    char ecid[FR_ECID_STRLEN];
    if (ctx && ctx->job)
        json_object_set_new(o, "job", json_integer((json_int_t)ctx->job));
    if (ctx && ctx->ecid) {
        fr_ecid_format(ctx->ecid, ecid, sizeof ecid);
        json_object_set_new(o, "ecid", json_string(ecid));
    }
    if (ctx && ctx->agent && *ctx->agent)
        json_object_set_new(o, "agent", json_string(ctx->agent));
    if (ctx && ctx->port && *ctx->port)
        json_object_set_new(o, "port", json_string(ctx->port));
    char *line = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(o);
    if (line) {
        fprintf(out, "%s\n", line);
        free(line);
    }
}

static void vlog(enum fr_log_level lvl, const char *component, const struct fr_log_ctx *ctx,
                 const char *fmt, va_list ap)
{
    static const char *tags[] = { "DEBUG", "INFO ", "WARN ", "ERROR" };
    if (lvl < g_log.min || lvl >= FR_LOG_OFF)
        return;
    char ts[32], msg[2048];
    vsnprintf(msg, sizeof msg, fmt, ap);
    component = component ? component : "-";
    FILE *out = g_log.out ? g_log.out : stderr;
    if (g_log.format == FR_LOG_FORMAT_AUTO && g_log.journal) {
        if (send_journal(lvl, component, ctx, msg) < 0) { /* syslog(3)'s priorities */
            fprintf(out, "<%d>%s: %s\n", prios[lvl], component, msg);
            fflush(out);
        }
        return;
    }
    fr_time_iso8601(fr_time_wall_ms(), ts, sizeof ts);
    if (g_log.format == FR_LOG_FORMAT_JSON)
        write_json(out, ts, lvl, component, ctx, msg);
    else
        fprintf(out, "%s %s %s %s: %s\n", ts, g_log.prog, tags[lvl], component, msg);
    fflush(out);
}

void fr_log(enum fr_log_level lvl, const char *component, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vlog(lvl, component, NULL, fmt, ap);
    va_end(ap);
}

void fr_logx(enum fr_log_level lvl, const char *component, const struct fr_log_ctx *ctx,
             const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vlog(lvl, component, ctx, fmt, ap);
    va_end(ap);
}
