/* page — the live rack page and its event stream; see page.h. */
#include "page.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ctl.h"
#include "fr_err.h"
#include "fr_log.h"
#include "fr_turn.h"
#include "httpd.h"
#include "page_rack.h"
#include "sse.h"

/* controller/page/rack.html, embedded at build time (controller/page/embed.cmake). */
extern const unsigned char page_html[];
extern const size_t page_html_len;

#define TOKEN_MAX 256

struct page_client {
    struct page *p;
    struct MHD_Connection *conn;
    struct sse_queue q;
    uint64_t last_write;     /* uv_now of the last bytes queued */
    int suspended, dropped;
    struct page_client *next;
};

/* A request for the rack (/rack.json, /events) waiting, suspended, for the reading under
 * way to be done, so that it gets the rack as the clients were just told it. */
struct page_wait {
    struct MHD_Connection *conn;
    int resumed, failed;
    struct page_wait *next;
};

struct page {
    struct controller *c;
    struct httpd http;
    uv_timer_t tick;
    uv_timer_t step;         /* the next step of a reading under way, at the next turn */
    char token[TOKEN_MAX];   /* "" when none is needed */
    char url[300];
    struct page_client *clients;
    int nclients;
    struct page_rack *rack;  /* what the clients were last sent, read only where it changed */
    uint64_t dropped;
    uint64_t next_ms;        /* no reading of the rack before this (uv_now; PAGE_DUTY) */
    uint64_t reading_ns;     /* the loop's time the reading under way has taken */
    int reading;             /* a reading is under way: its next step is due */
    struct page_wait *waits;
    int closing;
};

/* ---- clients -------------------------------------------------------------------- */

static void wake(struct page_client *cl)
{
    if (cl->suspended) {
        cl->suspended = 0;
        MHD_resume_connection(cl->conn);
    }
}

static void drop(struct page_client *cl, const char *why)
{
    if (cl->dropped)
        return;
    cl->dropped = 1;
    cl->p->dropped++;
    sse_queue_free(&cl->q);
    fr_warn("page", "dropped a client of the rack page: %s", why);
    wake(cl); /* its reader ends the stream */
}

static void queued(struct page_client *cl, int rc)
{
    if (rc < 0) {
        drop(cl, "it fell too far behind ([page] client_buffer_kb)");
        return;
    }
    cl->last_write = uv_now(cl->p->c->loop);
    wake(cl);
}

static void broadcast_text(struct page *p, const char *event, const char *text)
{
    for (struct page_client *cl = p->clients; cl; cl = cl->next)
        if (!cl->dropped)
            queued(cl, sse_event(&cl->q, event, text));
}

/* What a reading found, told to the clients. */
static void tell(struct page *p, const struct page_rack_delta *d)
{
    size_t len, i;
    const char *text = page_rack_text(p->rack, &len);
    const json_t *t;
    if (d->layout && text) {
        broadcast_text(p, "snapshot", text);
        return;
    }
    json_array_foreach(d->tiles, i, t)
        broadcast_text(p, "tile", json_string_value(t));
    char *jobs = d->jobs ? json_dumps(page_rack_jobs(p->rack), JSON_COMPACT) : NULL;
    if (jobs)
        broadcast_text(p, "jobs", jobs);
    free(jobs);
}

/* The requests waiting for the reading are served again (failed: the store could not be read). */
static void resume_waits(struct page *p, int failed)
{
    for (struct page_wait *w = p->waits; w; w = w->next)
        if (!w->resumed) {
            w->resumed = 1;
            w->failed = failed;
            MHD_resume_connection(w->conn);
        }
}

static void on_step(uv_timer_t *t);

/* One step of the reading of the rack (page_rack.h): the next at the next turn of the
 * loop until it is done; then the clients hear what changed and the waiting requests
 * are answered. A reading that took more than a tenth of the loop's time makes the next
 * wait PAGE_DUTY times as long. */
static void step(struct page *p)
{
    struct page_rack_delta d;
    uint64_t t0 = uv_hrtime();
    int rc = page_rack_step(p->rack, p->c->store, PAGE_RACK_STEP_NS, p->waits != NULL, &d);
    p->reading_ns += uv_hrtime() - t0;
    p->reading = rc == 0 && !d.done;
    if (p->reading) {
        fr_turn_later(&p->step, on_step); /* after the loop has read its sockets again */
        return;
    }
    if (rc == 0) {
        tell(p, &d);
        fr_debug("page", "read the rack%s in %zu steps: %zu port rows changed, %zu runs read, %zu tiles "
                 "built, %zu sent", d.whole ? " whole" : "", d.steps, d.ports_read, d.runs_read, d.tiles_built,
                 d.layout ? (size_t)0 : json_array_size(d.tiles));
    }
    json_decref(d.tiles);
    uv_update_time(p->c->loop);
    p->next_ms = uv_now(p->c->loop) + (PAGE_DUTY - 1) * (p->reading_ns / 1000000);
    p->reading_ns = 0;
    resume_waits(p, rc < 0);
    httpd_drive(&p->http);
}

static void on_step(uv_timer_t *t)
{
    struct page *p = t->data;
    if (!p->closing)
        step(p);
}

/* A reading begun now, unless one is under way. */
static void kick(struct page *p)
{
    if (!p->reading) {
        p->reading = 1;
        uv_timer_start(&p->step, on_step, 0, 0);
    }
}

static void heartbeats(struct page *p)
{
    uint64_t now = uv_now(p->c->loop), every = (uint64_t)p->c->cfg.page_heartbeat_s * 1000;
    for (struct page_client *cl = p->clients; cl; cl = cl->next)
        if (!cl->dropped && now - cl->last_write >= every)
            queued(cl, sse_comment(&cl->q, "keepalive"));
}

static void on_tick(uv_timer_t *t)
{
    struct page *p = t->data;
    if (!p->nclients)
        return;
    if (uv_now(p->c->loop) >= p->next_ms)
        kick(p);
    heartbeats(p);
    httpd_drive(&p->http);
}

static ssize_t client_read(void *cls, uint64_t pos, char *buf, size_t max)
{
    struct page_client *cl = cls;
    if (cl->dropped || cl->p->closing)
        return MHD_CONTENT_READER_END_WITH_ERROR;
    size_t n = sse_queue_take(&cl->q, buf, max);
    if (n)
        return (ssize_t)n;
    MHD_suspend_connection(cl->conn); /* woken when something is queued */
    cl->suspended = 1;
    return 0;
}

static void client_free(void *cls)
{
    struct page_client *cl = cls;
    struct page *p = cl->p;
    for (struct page_client **pp = &p->clients; *pp; pp = &(*pp)->next)
        if (*pp == cl) {
            *pp = cl->next;
            break;
        }
    p->nclients--;
    sse_queue_free(&cl->q);
    free(cl);
}

/* ---- answers -------------------------------------------------------------------- */

static enum MHD_Result answer(struct MHD_Connection *conn, unsigned code, const char *type,
                              const char *body, size_t len, enum MHD_ResponseMemoryMode mode)
{
    struct MHD_Response *r = MHD_create_response_from_buffer(len, (void *)body, mode);
    if (!r)
        return MHD_NO;
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type);
    MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
    enum MHD_Result ret = MHD_queue_response(conn, code, r);
    MHD_destroy_response(r);
    return ret;
}

static enum MHD_Result answer_text(struct MHD_Connection *conn, unsigned code, const char *text)
{
    return answer(conn, code, "text/plain; charset=utf-8", text, strlen(text), MHD_RESPMEM_MUST_COPY);
}

static enum MHD_Result answer_page(struct MHD_Connection *conn)
{
    struct MHD_Response *r = MHD_create_response_from_buffer(page_html_len, (void *)page_html,
                                                             MHD_RESPMEM_PERSISTENT);
    if (!r)
        return MHD_NO;
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "text/html; charset=utf-8");
    MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    /* Everything is in the one document; it talks only to this server. */
    MHD_add_response_header(r, "Content-Security-Policy", "default-src 'none'; script-src "
                            "'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'; img-src data:");
    MHD_add_response_header(r, "Referrer-Policy", "no-referrer");
    enum MHD_Result ret = MHD_queue_response(conn, MHD_HTTP_OK, r);
    MHD_destroy_response(r);
    return ret;
}

static enum MHD_Result answer_json(struct page *p, struct MHD_Connection *conn)
{
    size_t len;
    const char *text = page_rack_text(p->rack, &len);
    if (!text)
        return answer_text(conn, MHD_HTTP_INTERNAL_SERVER_ERROR, "cannot read the store now\n");
    return answer(conn, MHD_HTTP_OK, "application/json", text, len, MHD_RESPMEM_MUST_COPY);
}

static enum MHD_Result answer_events(struct page *p, struct MHD_Connection *conn)
{
    if (p->nclients >= (int)p->c->cfg.page_max_clients)
        return answer_text(conn, MHD_HTTP_SERVICE_UNAVAILABLE, "too many clients of the rack page "
                           "([page] max_clients)\n");
    size_t len;
    const char *text = page_rack_text(p->rack, &len);
    struct page_client *cl = text ? calloc(1, sizeof *cl) : NULL;
    if (!cl)
        return answer_text(conn, MHD_HTTP_INTERNAL_SERVER_ERROR, "cannot read the store now\n");
    cl->p = p;
    cl->conn = conn;
    cl->last_write = uv_now(p->c->loop);
    sse_queue_init(&cl->q, (size_t)p->c->cfg.page_buffer_kb * 1024);
    int rc = sse_event(&cl->q, "snapshot", text);
    struct MHD_Response *r = rc == 0 ? MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 16 * 1024,
                                                                         client_read, cl, client_free)
                                     : NULL;
    if (!r) {
        sse_queue_free(&cl->q);
        free(cl);
        return answer_text(conn, MHD_HTTP_SERVICE_UNAVAILABLE, "cannot queue the rack's snapshot "
                           "now (out of memory)\n");
    }
    cl->next = p->clients;
    p->clients = cl;
    p->nclients++;
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "text/event-stream; charset=utf-8");
    MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    enum MHD_Result ret = MHD_queue_response(conn, MHD_HTTP_OK, r);
    MHD_destroy_response(r);
    return ret;
}

/* A request for the rack waits (suspended) for a reading: the first call suspends it,
 * the one after its resume answers. 1 when it is to wait (or waits still), 0 when it
 * is to be answered now, -1 when the reading failed or memory ran out. */
static int wait_for_reading(struct page *p, struct MHD_Connection *conn, void **con_cls)
{
    struct page_wait *w = *con_cls;
    if (!w) {
        if (!(w = calloc(1, sizeof *w)))
            return -1;
        w->conn = conn;
        w->next = p->waits;
        p->waits = w;
        *con_cls = w;
        MHD_suspend_connection(conn);
        kick(p);
        return 1;
    }
    if (!w->resumed)
        return 1;
    int failed = w->failed;
    for (struct page_wait **pp = &p->waits; *pp; pp = &(*pp)->next)
        if (*pp == w) {
            *pp = w->next;
            break;
        }
    free(w);
    *con_cls = NULL;
    return failed ? -1 : 0;
}

int page_token_equal(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    unsigned char diff = la != lb;
    for (size_t i = 0; i < lb; i++)
        diff |= (unsigned char)(b[i] ^ (i < la ? a[i] : 0));
    return diff == 0;
}

static int authorized(struct page *p, struct MHD_Connection *conn)
{
    if (!p->token[0])
        return 1;
    const char *auth = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);
    const char *query = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "token");
    const char *given = auth && !strncmp(auth, "Bearer ", 7) ? auth + 7 : query;
    return given && page_token_equal(given, p->token);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *data,
                                  size_t *data_size, void **con_cls)
{
    struct page *p = cls;
    if (strcmp(method, MHD_HTTP_METHOD_GET) != 0 && strcmp(method, MHD_HTTP_METHOD_HEAD) != 0)
        return answer_text(conn, MHD_HTTP_METHOD_NOT_ALLOWED, "the rack page is read-only: GET\n");
    if (!authorized(p, conn))
        return answer_text(conn, MHD_HTTP_UNAUTHORIZED, "the rack page needs the operator token "
                           "([page] token_file): ?token=TOKEN or Authorization: Bearer TOKEN\n");
    if (!strcmp(url, "/"))
        return answer_page(conn);
    int events = !strcmp(url, "/events");
    if (events && p->nclients >= (int)p->c->cfg.page_max_clients)
        return answer_events(p, conn); /* refused at once */
    if (events || !strcmp(url, "/rack.json")) {
        int rc = wait_for_reading(p, conn, con_cls);
        if (rc > 0)
            return MHD_YES;
        if (rc < 0)
            return answer_text(conn, MHD_HTTP_INTERNAL_SERVER_ERROR, "cannot read the store now\n");
        return events ? answer_events(p, conn) : answer_json(p, conn);
    }
    return answer_text(conn, MHD_HTTP_NOT_FOUND, "try /, /events or /rack.json\n");
}

/* ---- start and stop ------------------------------------------------------------- */

int page_check_cfg(const char *listen, const char *token_file, char *err, size_t errlen)
{
    struct sockaddr_storage ss;
    char host[128];
    int port;
    if (!strcmp(listen, "off"))
        return 0;
    if (httpd_parse_listen(listen, &ss, host, sizeof host, &port) < 0)
        return fr_seterr(FR_ECONFIG, err, errlen, "[page] listen: expected HOST:PORT, [V6]:PORT or "
                         "off, got '%s'", listen);
    if (!httpd_is_loopback(&ss) && !token_file[0])
        return fr_seterr(FR_ECONFIG, err, errlen, "[page] listen = '%s' is not a loopback address: "
                         "set [page] token_file to a file holding the operator token, or listen "
                         "on 127.0.0.1", listen);
    return 0;
}

static int read_token(const char *path, char *token, char *err, size_t errlen)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return fr_seterr(FR_ECONFIG, err, errlen, "[page] token_file: cannot read '%s': %s", path,
                         strerror(errno));
    ssize_t n = read(fd, token, TOKEN_MAX);
    close(fd);
    if (n < 0)
        return fr_seterr(FR_ECONFIG, err, errlen, "[page] token_file: cannot read '%s': %s", path,
                         strerror(errno));
    if (n >= TOKEN_MAX)
        return fr_seterr(FR_ECONFIG, err, errlen, "[page] token_file: '%s' is longer than %d bytes",
                         path, TOKEN_MAX - 1);
    token[n] = '\0';
    token[strcspn(token, "\r\n")] = '\0';
    if (strlen(token) < 16 || strpbrk(token, " \t&#?%+"))
        return fr_seterr(FR_ECONFIG, err, errlen, "[page] token_file: '%s' must hold one token of at "
                         "least 16 characters, without spaces or any of &#?%%+", path);
    return 0;
}

int page_start(struct controller *c, char *err, size_t errlen)
{
    const struct ctl_cfg *cfg = &c->cfg;
    struct sockaddr_storage ss;
    char host[128];
    int port;
    if (!strcmp(cfg->page_listen, "off"))
        return 0;
    if (page_check_cfg(cfg->page_listen, cfg->page_token_file, err, errlen) < 0 ||
        httpd_parse_listen(cfg->page_listen, &ss, host, sizeof host, &port) < 0)
        return FR_ECONFIG;
    struct page *p = calloc(1, sizeof *p);
    if (!p)
        return FR_ENOMEM;
    p->c = c;
    c->page = p;
    if (!(p->rack = page_rack_new()))
        return FR_ENOMEM;
    if (cfg->page_token_file[0] && read_token(cfg->page_token_file, p->token, err, errlen) < 0)
        return FR_ECONFIG;
    port = httpd_start(&p->http, c->loop, &ss, (unsigned)cfg->page_max_clients + 16, on_request, p);
    if (port < 0)
        return fr_seterr(FR_EIO, err, errlen, "[page] listen: cannot serve on '%s': %s",
                         cfg->page_listen, strerror(errno));
    uv_timer_init(c->loop, &p->tick);
    p->tick.data = p;
    uv_timer_init(c->loop, &p->step);
    p->step.data = p;
    uv_timer_start(&p->tick, on_tick, PAGE_TICK_MS, PAGE_TICK_MS);
    snprintf(p->url, sizeof p->url, strchr(host, ':') ? "http://[%s]:%d/" : "http://%s:%d/", host, port);
    fr_info("page", "the rack page is on %s%s", p->url, p->token[0] ? " (operator token required)" : "");
    return 0;
}

const char *page_url(const struct controller *c)
{
    return c->page ? c->page->url : "";
}

static void on_closed(uv_handle_t *h)
{
}

void page_close(struct controller *c)
{
    struct page *p = c->page;
    if (!p || p->closing)
        return;
    p->closing = 1;
    if (p->http.d) {
        uv_close((uv_handle_t *)&p->tick, on_closed);
        uv_close((uv_handle_t *)&p->step, on_closed);
    }
    httpd_close(&p->http);
}

void page_destroy(struct controller *c)
{
    struct page *p = c->page;
    if (!p)
        return;
    p->closing = 1;
    for (struct page_client *cl = p->clients; cl; cl = cl->next)
        wake(cl); /* stopping with suspended connections is not allowed */
    resume_waits(p, 1);
    httpd_stop(&p->http); /* frees the clients */
    while (p->waits) { /* requests that were not called again */
        struct page_wait *w = p->waits;
        p->waits = w->next;
        free(w);
    }
    page_rack_destroy(&p->rack);
    free(p);
    c->page = NULL;
}
