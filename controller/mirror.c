/* mirror — the site mirror on the controller's loop; see mirror.h. */
#include "mirror.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <microhttpd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ctl.h"
#include "fr_err.h"
#include "fr_fwcache.h"
#include "fr_log.h"
#include "fr_types.h"
#include "httpd.h"
#include "metrics.h"

#define FAILURE_HOLD_MS (5 * 60 * 1000) /* a failed fetch is not retried for agents before this */
#define NFAILURES 16
#define RETRY_AFTER "1" /* agents ask again after a second: a ready file is noticed soon */

struct failure {
    char key[65];
    uint64_t at;
    char why[256];
};

struct stream;

struct mirror {
    struct controller *c;
    struct fwcache *cache;
    struct httpd http;
    char url[300];
    struct failure failures[NFAILURES];
    struct stream *streams;      /* answers still reading a file being fetched */
    uint64_t requests, served, busy, refused, streamed;
    int closing;
};

/* One answer sent while the mirror still fetches the file: it reads the partial file
 * as it grows, sleeping (a suspended connection) when it has caught up, woken by the
 * cache's progress. What it sends is not verified yet; the agent checks the hash. */
struct stream {
    struct mirror *m;
    struct MHD_Connection *conn;
    char key[65];
    int fd;
    int suspended;
    struct stream *next;
};

/* ---- Range ---------------------------------------------------------------------- */

int mirror_parse_range(const char *h, uint64_t size, uint64_t *from, uint64_t *to)
{
    unsigned long long a = 0, b = 0;
    int n = 0;
    if (!h || strncmp(h, "bytes=", 6) != 0 || strchr(h, ','))
        return 0; /* none, another unit, or several ranges: the whole file is a valid answer */
    h += 6;
    if (*h == '-') { /* the last N bytes */
        if (sscanf(h + 1, "%llu%n", &b, &n) != 1 || h[1 + n] || b == 0)
            return -1;
        *from = b >= size ? 0 : size - b;
        *to = size - 1;
        return size ? 1 : -1;
    }
    if (!isdigit((unsigned char)*h) || sscanf(h, "%llu-%n", &a, &n) != 1 || n == 0)
        return -1;
    if (h[n] == '\0') {
        b = size ? size - 1 : 0;
    } else {
        int m = 0;
        if (sscanf(h + n, "%llu%n", &b, &m) != 1 || h[n + m] || b < a)
            return -1;
        if (b >= size)
            b = size - 1;
    }
    if (a >= size)
        return -1;
    *from = a;
    *to = b;
    return 1;
}

/* ---- answers -------------------------------------------------------------------- */

static enum MHD_Result answer_text(struct MHD_Connection *conn, unsigned code, const char *text,
                                   const char *retry_after)
{
    struct MHD_Response *r = MHD_create_response_from_buffer(strlen(text), (void *)text,
                                                             MHD_RESPMEM_MUST_COPY);
    if (!r)
        return MHD_NO;
    MHD_add_response_header(r, "Content-Type", "text/plain");
    if (retry_after)
        MHD_add_response_header(r, "Retry-After", retry_after);
    enum MHD_Result ret = MHD_queue_response(conn, code, r);
    MHD_destroy_response(r);
    return ret;
}

static enum MHD_Result serve_file(struct mirror *m, struct MHD_Connection *conn, const char *path)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) < 0) {
        if (fd >= 0)
            close(fd);
        return answer_text(conn, 503, "the file is being replaced\n", RETRY_AFTER);
    }
    uint64_t size = (uint64_t)st.st_size, from = 0, to = size ? size - 1 : 0;
    const char *range = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_RANGE);
    int partial = mirror_parse_range(range, size, &from, &to);
    if (partial < 0) {
        close(fd);
        char cr[64];
        snprintf(cr, sizeof cr, "bytes */%" PRIu64, size);
        struct MHD_Response *r = MHD_create_response_from_buffer(0, NULL, MHD_RESPMEM_PERSISTENT);
        MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_RANGE, cr);
        enum MHD_Result ret = MHD_queue_response(conn, MHD_HTTP_RANGE_NOT_SATISFIABLE, r);
        MHD_destroy_response(r);
        return ret;
    }
    uint64_t len = size ? to - from + 1 : 0;
    /* MHD owns fd from here and sends it with sendfile(2). */
    struct MHD_Response *r = MHD_create_response_from_fd_at_offset64(len, fd, from);
    if (!r) {
        close(fd);
        return MHD_NO;
    }
    MHD_add_response_header(r, MHD_HTTP_HEADER_ACCEPT_RANGES, "bytes");
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "application/octet-stream");
    if (partial) {
        char cr[96];
        snprintf(cr, sizeof cr, "bytes %" PRIu64 "-%" PRIu64 "/%" PRIu64, from, to, size);
        MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_RANGE, cr);
    }
    enum MHD_Result ret = MHD_queue_response(conn, partial ? MHD_HTTP_PARTIAL_CONTENT : MHD_HTTP_OK, r);
    MHD_destroy_response(r);
    m->served += len;
    return ret;
}

/* ---- answering from a file still being fetched ---------------------------------- */

static ssize_t stream_read(void *cls, uint64_t pos, char *buf, size_t max)
{
    struct stream *st = cls;
    char path[700];
    uint64_t have = 0, total = 0;
    enum fwcache_state state = fwcache_lookup(st->m->cache, st->key, path, sizeof path);
    if (state == FWCACHE_READY) { /* verified and renamed: our descriptor still reads it */
        struct stat sb;
        have = fstat(st->fd, &sb) == 0 ? (uint64_t)sb.st_size : 0;
        if (pos >= have)
            return MHD_CONTENT_READER_END_OF_STREAM;
    } else if (fwcache_partial(st->m->cache, st->key, path, sizeof path, &have, &total) < 0) {
        return MHD_CONTENT_READER_END_WITH_ERROR; /* the fetch failed: the agent goes elsewhere */
    } else if (pos >= have) {
        MHD_suspend_connection(st->conn); /* woken by on_progress */
        st->suspended = 1;
        return 0;
    }
    size_t want = have - pos < max ? (size_t)(have - pos) : max;
    ssize_t n = pread(st->fd, buf, want, (off_t)pos);
    if (n <= 0)
        return MHD_CONTENT_READER_END_WITH_ERROR;
    st->m->served += (uint64_t)n;
    return n;
}

static void stream_free(void *cls)
{
    struct stream *st = cls;
    for (struct stream **pp = &st->m->streams; *pp; pp = &(*pp)->next)
        if (*pp == st) {
            *pp = st->next;
            break;
        }
    close(st->fd);
    free(st);
}

static void wake_streams(struct mirror *m, const char *key)
{
    for (struct stream *st = m->streams; st; st = st->next)
        if (st->suspended && (!key || !strcasecmp(st->key, key))) {
            st->suspended = 0;
            MHD_resume_connection(st->conn);
        }
}

static void on_progress(void *arg, const char *key)
{
    struct mirror *m = arg;
    wake_streams(m, key);
    if (!m->closing)
        httpd_drive(&m->http); /* resumed connections are picked up by the next MHD_run */
}

/* A plain GET for a file being fetched is answered at once from the partial file
 * (a ranged one waits for the whole file: its end is not known yet). */
static enum MHD_Result stream_answer(struct mirror *m, struct MHD_Connection *conn, const char *key)
{
    char path[700];
    uint64_t have, total;
    if (MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_RANGE) ||
        fwcache_partial(m->cache, key, path, sizeof path, &have, &total) < 0)
        return MHD_NO;
    struct stream *st = calloc(1, sizeof *st);
    if (!st)
        return MHD_NO;
    st->fd = open(path, O_RDONLY | O_CLOEXEC);
    if (st->fd < 0) {
        free(st);
        return MHD_NO;
    }
    st->m = m;
    st->conn = conn;
    snprintf(st->key, sizeof st->key, "%s", key);
    struct MHD_Response *r = MHD_create_response_from_callback(total ? total : MHD_SIZE_UNKNOWN,
                                                               256 * 1024, stream_read, st,
                                                               stream_free);
    if (!r) {
        close(st->fd);
        free(st);
        return MHD_NO;
    }
    st->next = m->streams;
    m->streams = st;
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "application/octet-stream");
    enum MHD_Result ret = MHD_queue_response(conn, MHD_HTTP_OK, r);
    MHD_destroy_response(r);
    m->streamed++;
    return ret;
}

static struct failure *failure_of(struct mirror *m, const char *key)
{
    uint64_t now = uv_now(m->c->loop);
    for (int i = 0; i < NFAILURES; i++)
        if (!strcasecmp(m->failures[i].key, key) && now - m->failures[i].at < FAILURE_HOLD_MS)
            return &m->failures[i];
    return NULL;
}

struct fetch_arg {
    struct mirror *m;
    char key[65];
};

static void on_fetched(void *arg, int status, const char *path, const char *err)
{
    struct fetch_arg *fa = arg;
    struct mirror *m = fa->m;
    if (status == 0) {
        fr_info("mirror", "'%s' verified and ready to serve", fa->key);
    } else if (status != FR_ECANCELED) {
        /* Remembered for a while: agents asking meanwhile get 502 and go upstream. */
        int slot = 0;
        for (int i = 1; i < NFAILURES; i++)
            if (m->failures[i].at < m->failures[slot].at)
                slot = i;
        struct failure *f = &m->failures[slot];
        snprintf(f->key, sizeof f->key, "%s", fa->key);
        snprintf(f->why, sizeof f->why, "%s", err ? err : fr_strerror(status));
        f->at = uv_now(m->c->loop);
        fr_warn("mirror", "cannot fetch '%s': %s", fa->key, f->why);
    }
    free(fa);
}

/* Starts a fetch (or the check of a file found at start; url NULL). */
static int fetch(struct mirror *m, const char *key, const char *url)
{
    struct fetch_arg *fa = calloc(1, sizeof *fa);
    if (!fa)
        return FR_ENOMEM;
    fa->m = m;
    snprintf(fa->key, sizeof fa->key, "%s", key);
    int rc = fwcache_get(m->cache, key, url, on_fetched, fa);
    if (rc < 0)
        free(fa);
    return rc;
}

static void collect(void *arg, const char *key, uint64_t size, enum fwcache_state st)
{
    static const char *names[] = { "absent", "ready", "fetching", "unchecked" };
    json_array_append_new(arg, json_pack("{s:s, s:I, s:s}", "sha", key, "bytes", (json_int_t)size,
                                         "state", names[st]));
}

static enum MHD_Result on_ipsw(struct mirror *m, struct MHD_Connection *conn, const char *k)
{
    char path[700], url[2048];
    enum fwcache_state st = fwcache_lookup(m->cache, k, path, sizeof path);
    if (st == FWCACHE_READY)
        return serve_file(m, conn, path);
    if (st == FWCACHE_BUSY) {
        if (stream_answer(m, conn, k) == MHD_YES)
            return MHD_YES;
        m->busy++;
        return answer_text(conn, 503, "fetching; ask again\n", RETRY_AFTER);
    }
    struct failure *f = failure_of(m, k);
    if (f) {
        m->refused++;
        char text[400];
        snprintf(text, sizeof text, "the mirror could not fetch it: %s\n", f->why);
        return answer_text(conn, 502, text, NULL);
    }
    int known = store_firmware_url(m->c->store, k, url, sizeof url) == 0;
    if (!known && st == FWCACHE_ABSENT) {
        m->refused++;
        return answer_text(conn, 404, "no job names this file\n", NULL);
    }
    if (fetch(m, k, known ? url : NULL) < 0) {
        m->refused++;
        return answer_text(conn, 502, "the mirror cannot fetch it\n", NULL);
    }
    if (stream_answer(m, conn, k) == MHD_YES)
        return MHD_YES;
    m->busy++;
    return answer_text(conn, 503, "fetching; ask again\n", RETRY_AFTER);
}

/* Prometheus scrapes /metrics here: one HTTP server for the controller. */
static enum MHD_Result answer_metrics(struct mirror *m, struct MHD_Connection *conn)
{
    char *text = metrics_text(m->c);
    if (!text)
        return answer_text(conn, MHD_HTTP_INTERNAL_SERVER_ERROR, "cannot read the store now\n", NULL);
    struct MHD_Response *r = MHD_create_response_from_buffer(strlen(text), text, MHD_RESPMEM_MUST_FREE);
    if (!r) {
        free(text);
        return MHD_NO;
    }
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8");
    enum MHD_Result ret = MHD_queue_response(conn, MHD_HTTP_OK, r);
    MHD_destroy_response(r);
    return ret;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *data,
                                  size_t *data_size, void **con_cls)
{
    struct mirror *m = cls;
    m->requests++;
    if (strcmp(method, MHD_HTTP_METHOD_GET) != 0 && strcmp(method, MHD_HTTP_METHOD_HEAD) != 0)
        return answer_text(conn, MHD_HTTP_METHOD_NOT_ALLOWED, "GET or HEAD only\n", NULL);
    if (strcmp(url, "/ipsw/") == 0 || strcmp(url, "/ipsw") == 0) {
        json_t *doc = mirror_doc(m->c);
        char *text = json_dumps(doc, JSON_INDENT(1));
        json_decref(doc);
        enum MHD_Result ret = answer_text(conn, 200, text ? text : "{}", NULL);
        free(text);
        return ret;
    }
    if (strcmp(url, "/metrics") == 0)
        return answer_metrics(m, conn);
    if (strncmp(url, "/ipsw/", 6) != 0)
        return answer_text(conn, 404, "try /ipsw/<sha256> or /metrics\n", NULL);
    char key[72];
    size_t n = strlen(url + 6);
    if (n > 5 && strcmp(url + 6 + n - 5, ".ipsw") == 0)
        n -= 5;
    snprintf(key, sizeof key, "%.*s", (int)(n < sizeof key ? n : sizeof key - 1), url + 6);
    if (n >= sizeof key || !fr_is_hash_hex(key))
        return answer_text(conn, 404, "expected /ipsw/ and 64 or 40 hex digits\n", NULL);
    return on_ipsw(m, conn, key);
}

/* ---- the server -------------------------------------------------------------- */

static void public_url(struct mirror *m, const char *host, int port)
{
    const struct ctl_cfg *cfg = &m->c->cfg;
    if (cfg->mirror_url[0]) {
        snprintf(m->url, sizeof m->url, "%s", cfg->mirror_url);
        return;
    }
    char name[256];
    if (!strcmp(host, "0.0.0.0") || !strcmp(host, "::")) {
        if (gethostname(name, sizeof name) < 0)
            snprintf(name, sizeof name, "localhost");
        name[sizeof name - 1] = '\0';
        host = name;
    }
    if (strchr(host, ':'))
        snprintf(m->url, sizeof m->url, "http://[%s]:%d", host, port);
    else
        snprintf(m->url, sizeof m->url, "http://%s:%d", host, port);
}

int mirror_check_listen(const char *listen, char *err, size_t errlen)
{
    struct sockaddr_storage ss;
    char host[128];
    int port;
    if (!strcmp(listen, "off") || !listen[0] || httpd_parse_listen(listen, &ss, host, sizeof host, &port) == 0)
        return 0;
    return fr_seterr(FR_ECONFIG, err, errlen, "[mirror] listen: expected HOST:PORT, [V6]:PORT or off, "
                     "got '%s'", listen);
}

int mirror_start(struct controller *c, char *err, size_t errlen)
{
    const struct ctl_cfg *cfg = &c->cfg;
    if (!strcmp(cfg->mirror_listen, "off") || !cfg->mirror_listen[0])
        return 0;
    struct sockaddr_storage ss;
    char host[128];
    int port;
    if (httpd_parse_listen(cfg->mirror_listen, &ss, host, sizeof host, &port) < 0)
        return fr_seterr(FR_ECONFIG, err, errlen, "[mirror] listen: expected HOST:PORT, [V6]:PORT "
                         "or off, got '%s'", cfg->mirror_listen);
    struct mirror *m = calloc(1, sizeof *m);
    if (!m)
        return FR_ENOMEM;
    m->c = c;
    c->mirror = m;
    int rc = fwcache_open(c->loop, cfg->mirror_dir, (uint64_t)cfg->mirror_cache_gb << 30, &m->cache,
                          err, errlen);
    if (rc < 0)
        return rc;
    fwcache_set_progress(m->cache, on_progress, m);
    port = httpd_start(&m->http, c->loop, &ss, 0, on_request, m);
    if (port < 0)
        return fr_seterr(FR_EIO, err, errlen, "[mirror] listen: cannot serve on '%s': %s",
                         cfg->mirror_listen, strerror(errno));
    public_url(m, host, port);
    fr_info("mirror", "serving the IPSW cache '%s' on '%s' as %s", cfg->mirror_dir,
            cfg->mirror_listen, m->url);
    return 0;
}

void mirror_want(struct controller *c, const char *key, const char *url)
{
    struct mirror *m = c->mirror;
    char path[700];
    if (!m || fwcache_lookup(m->cache, key, path, sizeof path) == FWCACHE_READY)
        return;
    if (fetch(m, key, url) == 0)
        fr_info("mirror", "prefetching '%s' from '%s'", key, url);
}

const char *mirror_url(const struct controller *c)
{
    return c->mirror ? c->mirror->url : "";
}

json_t *mirror_doc(struct controller *c)
{
    struct mirror *m = c->mirror;
    json_t *files = json_array();
    if (!m)
        return json_pack("{s:s, s:o}", "url", "", "files", files);
    fwcache_foreach(m->cache, collect, files);
    const struct fwcache_stats *st = fwcache_stats(m->cache);
    return json_pack("{s:s, s:o, s:I, s:I, s:I, s:I, s:I, s:I}", "url", m->url, "files", files,
                     "upstream_downloads", (json_int_t)st->downloads, "upstream_bytes",
                     (json_int_t)st->bytes, "requests", (json_int_t)m->requests, "served_bytes",
                     (json_int_t)m->served, "busy_answers", (json_int_t)m->busy,
                     "streamed_answers", (json_int_t)m->streamed);
}

void mirror_close(struct controller *c)
{
    struct mirror *m = c->mirror;
    if (!m)
        return;
    m->closing = 1;
    httpd_close(&m->http);
    if (m->cache)
        fwcache_close(m->cache);
}

void mirror_destroy(struct controller *c)
{
    struct mirror *m = c->mirror;
    if (!m)
        return;
    wake_streams(m, NULL); /* stopping with suspended connections is not allowed */
    httpd_stop(&m->http);
    fwcache_destroy(&m->cache);
    free(m);
    c->mirror = NULL;
}
