/* flashrack — the operator CLI. Talks to flashrackd over ZeroMQ only: one
 * request, one reply (proto/PROTOCOL.md "Clients"). Verbs parse their options,
 * build a request, and render the reply's document (render.c) or print it as is
 * with -o json. Exit codes (proto/PROTOCOL.md): 0 ok, 1 failed at the controller
 * or failures found, 2 usage, 3 controller unreachable, 4 not found. */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#include "fr_config.h"
#include "fr_err.h"
#include "fr_catalog.h"
#include "fr_ipsw.h"
#include "fr_keys.h"
#include "fr_time.h"
#include "fr_types.h"
#include "fr_wire.h"
#include "keys.h"
#include "listing.h"
#include "record.h"
#include "render.h"
#include "render_csv.h"
#include "rows.h"
#include "snapshot.h"

enum { EXIT_OK = 0, EXIT_FAILED = 1, EXIT_USAGE = 2, EXIT_UNREACHABLE = 3, EXIT_NOTFOUND = 4 };

struct cli {
    const char *endpoint;
    int json;
    const char *format;     /* -o: table, json, csv or pdf (each verb says which it offers) */
    int timeout_s;
    void *ctx, *sock;
    uint64_t seq;
};

/* ---- the wire ------------------------------------------------------------- */

static int cli_connect(struct cli *c)
{
    if (c->sock)
        return 0;
    c->ctx = zmq_ctx_new();
    c->sock = zmq_socket(c->ctx, ZMQ_DEALER);
    fr_zsock_set_defaults(c->sock, FR_WIRE_MAX_MSG);
    char err[1024];
    if (fr_key_setup_client(c->sock, err, sizeof err) < 0) {
        fprintf(stderr, "flashrack: %s\n", err);
        return EXIT_USAGE;
    }
    if (zmq_connect(c->sock, c->endpoint) < 0) {
        fprintf(stderr, "flashrack: cannot use controller endpoint '%s': %s\n", c->endpoint,
                zmq_strerror(zmq_errno()));
        return EXIT_USAGE;
    }
    return 0;
}

static void cli_close(struct cli *c)
{
    if (c->sock)
        zmq_close(c->sock);
    if (c->ctx)
        zmq_ctx_term(c->ctx);
    c->sock = c->ctx = NULL;
}

/* Sends env as request *seq (the next of this connection). */
static int cli_send(struct cli *c, Fr__Envelope *env, uint64_t *seq)
{
    int rc = cli_connect(c);
    if (rc)
        return rc;
    env->agent_id = "cli";
    env->seq = *seq = ++c->seq;
    uint8_t *buf = NULL;
    size_t len = 0;
    if (fr_wire_pack(env, &buf, &len) < 0 || zmq_send(c->sock, buf, len, 0) < 0) {
        free(buf);
        fprintf(stderr, "flashrack: cannot send the request\n");
        return EXIT_FAILED;
    }
    free(buf);
    return 0;
}

/* Waits for the reply with ack == seq; *text gets its document's text (malloc'ed). */
static int cli_recv(struct cli *c, uint64_t seq, char **text)
{
    uint64_t deadline = fr_time_mono_ms() + (uint64_t)c->timeout_s * 1000u;
    for (;;) {
        uint64_t now = fr_time_mono_ms();
        zmq_pollitem_t pi = { c->sock, 0, ZMQ_POLLIN, 0 };
        if (now >= deadline || zmq_poll(&pi, 1, (long)(deadline - now)) <= 0) {
            fprintf(stderr, "flashrack: controller at '%s' did not answer within %d s\n", c->endpoint,
                    c->timeout_s);
            return EXIT_UNREACHABLE;
        }
        zmq_msg_t m;
        zmq_msg_init(&m);
        if (zmq_msg_recv(&m, c->sock, 0) < 0)
            continue;
        Fr__Envelope *r = NULL;
        char err[256];
        int ok = fr_wire_unpack(zmq_msg_data(&m), zmq_msg_size(&m), &r, err, sizeof err) == 0 &&
                 r->body_case == FR__ENVELOPE__BODY_REPLY && r->ack == seq;
        zmq_msg_close(&m);
        if (!ok) {
            fr_wire_free(&r);
            continue; /* a late reply to an earlier request, or garbage */
        }
        int rc = EXIT_OK;
        if (r->reply->status != 0) {
            fprintf(stderr, "flashrack: %s\n", *r->reply->error ? r->reply->error : fr_strerror(r->reply->status));
            rc = r->reply->status == FR_ENOTFOUND ? EXIT_NOTFOUND : EXIT_FAILED;
        } else if (!(*text = strdup(r->reply->json ? r->reply->json : ""))) {
            fprintf(stderr, "flashrack: out of memory\n");
            rc = EXIT_FAILED;
        }
        fr_wire_free(&r);
        return rc;
    }
}

/* Waits for the reply to request seq; *doc gets its document. */
static int cli_recv_doc(struct cli *c, uint64_t seq, json_t **doc)
{
    char *text = NULL;
    int rc = cli_recv(c, seq, &text);
    if (rc)
        return rc;
    json_error_t jerr;
    *doc = json_loads(text, 0, &jerr);
    free(text);
    if (!*doc) {
        fprintf(stderr, "flashrack: the controller's reply is not JSON: %s\n", jerr.text);
        return EXIT_FAILED;
    }
    return EXIT_OK;
}

/* Sends env, waits for the reply; *doc gets the document. */
static int cli_call(struct cli *c, Fr__Envelope *env, json_t **doc)
{
    uint64_t seq;
    int rc = cli_send(c, env, &seq);
    return rc ? rc : cli_recv_doc(c, seq, doc);
}

/* Asks for a page (limit > 0) of a document from cursor, or (limit 0) the whole of it;
 * its request's seq in *seq (the reply is read with cli_recv). */
static int page_send(struct cli *c, int kind, uint64_t job, uint64_t ecid, const char *cursor,
                     uint32_t limit, uint64_t *seq)
{
    Fr__QueryRequest q = FR__QUERY_REQUEST__INIT;
    q.kind = kind;
    q.job_id = job;
    q.ecid = ecid;
    q.cursor = (char *)cursor;
    q.limit = limit;
    Fr__Envelope env = FR__ENVELOPE__INIT;
    env.body_case = FR__ENVELOPE__BODY_QUERY;
    env.query = &q;
    return cli_send(c, &env, seq);
}

static int cli_query(struct cli *c, int kind, uint64_t job, uint64_t ecid, json_t **doc)
{
    uint64_t seq;
    int rc = page_send(c, kind, job, ecid, "", 0, &seq);
    return rc ? rc : cli_recv_doc(c, seq, doc);
}

/* ---- documents in pages (proto/PROTOCOL.md "Pages") ---------------------------------- */

#define PAGES_MAX 100000 /* 100 million rows: a cursor that never ends is a broken controller */

/* The list a kind of document comes in pages of, and the rows asked for per page. */
static const char *paged_list(int kind, uint64_t job, uint32_t *limit)
{
    *limit = 1000;
    switch (kind) {
    case FR__QUERY_REQUEST__KIND__UNITS: return "units";
    case FR__QUERY_REQUEST__KIND__PORTS: return "ports";
    case FR__QUERY_REQUEST__KIND__STATUS: return job ? "runs" : NULL;
    case FR__QUERY_REQUEST__KIND__REPORT: return "units";
    default: return NULL;
    }
}

/* Every page of a paged document into l, each given to on_page (unless NULL) once added,
 * with the index of its first row. The next page is asked for as soon as a page's cursor
 * is known, before its rows are read, so the controller builds it meanwhile. */
static int fetch_pages(struct cli *c, int kind, uint64_t job, uint64_t ecid, uint32_t limit, struct listing *l,
                       int (*on_page)(void *arg, struct listing *l, size_t from), void *arg)
{
    uint64_t seq;
    int rc = page_send(c, kind, job, ecid, "", limit, &seq);
    for (int pages = 1; rc == EXIT_OK; pages++) {
        char *text = NULL, *next, err[256];
        if ((rc = cli_recv(c, seq, &text)) != EXIT_OK)
            break;
        if (!(next = listing_cursor(l, text))) {
            fprintf(stderr, "flashrack: the controller's page of %s has no cursor string\n", l->list);
            rc = EXIT_FAILED;
        } else if (*next && pages >= PAGES_MAX) {
            fprintf(stderr, "flashrack: the controller sent more than %d pages of %s\n", PAGES_MAX, l->list);
            rc = EXIT_FAILED;
        } else if (*next) {
            rc = page_send(c, kind, job, ecid, next, limit, &seq);
        }
        size_t from = l->nrows;
        if (rc == EXIT_OK && listing_add(l, text, err, sizeof err) < 0) {
            fprintf(stderr, "flashrack: %s\n", err);
            rc = EXIT_FAILED;
        } else if (rc != EXIT_OK) {
            free(text);
        } else if (on_page) {
            rc = on_page(arg, l, from);
        }
        int last = !next || !*next;
        free(next);
        if (last)
            break;
    }
    return rc;
}

static void print_json(const json_t *doc)
{
    char *text = json_dumps(doc, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    puts(text ? text : "{}");
    free(text);
}

/* Sends an operator's action and shows its reply: the document with -o json, else the
 * one line say() makes of it for people. */
static int act(struct cli *c, Fr__Envelope *env, void (*say)(const json_t *doc, const void *arg),
               const void *arg)
{
    json_t *doc = NULL;
    int rc = cli_call(c, env, &doc);
    if (rc)
        return rc;
    if (c->json)
        print_json(doc);
    else
        say(doc, arg);
    json_decref(doc);
    return EXIT_OK;
}

/* ---- options shared by every verb ---------------------------------------------- */

#define GLOBAL_OPTS                                                                  \
    { "controller", required_argument, NULL, 'C' }, { "output", required_argument, NULL, 'o' }, \
    { "timeout", required_argument, NULL, 'T' }, { "help", no_argument, NULL, 'h' }

/* Handles a global option; returns 1 when handled, -1 on a bad value, 0 otherwise. */
static int global_opt(struct cli *c, int ch, const char *arg)
{
    long long v;
    switch (ch) {
    case 'C': c->endpoint = arg; return 1;
    case 'o':
        if (strcmp(arg, "json") && strcmp(arg, "table") && strcmp(arg, "csv") && strcmp(arg, "pdf")) {
            fprintf(stderr, "flashrack: -o: expected 'table', 'json', 'csv' or 'pdf', got '%s'\n", arg);
            return -1;
        }
        c->json = strcmp(arg, "json") == 0;
        c->format = arg;
        return 1;
    case 'T':
        if (fr_cfg_parse_int(arg, 1, 3600, &v) < 0) {
            fprintf(stderr, "flashrack: --timeout: expected seconds from 1 to 3600, got '%s'\n", arg);
            return -1;
        }
        c->timeout_s = (int)v;
        return 1;
    }
    return 0;
}

struct verb {
    const char *name;
    int (*run)(struct cli *c, int argc, char **argv);
    const char *summary;
    const char *usage;
};

/* Whether verb offers the output format -o asked for: every verb has table and json;
 * these have more. */
static int format_offered(const char *verb, const char *format)
{
    static const char *const more[][2] = { { "record", "csv pdf" }, { "report", "csv" },
                                           { "status", "csv" }, { "units", "csv" },
                                           { "ports", "csv" } };
    if (!strcmp(format, "table") || !strcmp(format, "json"))
        return 1;
    for (size_t i = 0; i < sizeof more / sizeof more[0]; i++)
        if (!strcmp(more[i][0], verb))
            return strstr(more[i][1], format) != NULL;
    return 0;
}

static const struct verb *find_verb(const char *name);

static int verb_usage(const char *name, FILE *out, int code)
{
    const struct verb *v = find_verb(name);
    fprintf(out, "usage: flashrack %s\n%s\nGlobal options: -C/--controller ENDPOINT, -o/--output table|json|csv|pdf (as the verb offers), "
                 "--timeout SEC\n", v ? v->name : name, v ? v->usage : "");
    return code;
}

/* getopt over a verb's argv with its own options plus the global ones. */
static int parse_verb(struct cli *c, const char *verb, int argc, char **argv,
                      const struct option *own, size_t nown,
                      int (*on_opt)(void *arg, int ch, const char *val), void *arg)
{
    struct option opts[32] = { GLOBAL_OPTS };
    size_t nglobal = 4;
    for (size_t i = 0; i < nown && nglobal + i < 31; i++)
        opts[nglobal + i] = own[i];
    optind = 0; /* 0, not 1: GNU getopt re-initialises, dropping main's '+' ordering */
    opterr = 0;
    int ch;
    /* GNU getopt permutes: options may follow the JOB argument ("status 3 -o json") */
    while ((ch = getopt_long(argc, argv, "C:o:h", opts, NULL)) != -1) {
        if (ch == 'h')
            exit(verb_usage(verb, stdout, EXIT_OK));
        int g = global_opt(c, ch, optarg);
        if (g < 0)
            return EXIT_USAGE;
        if (g > 0)
            continue;
        if (ch == '?' || ch == ':' || !on_opt || on_opt(arg, ch, optarg) < 0) {
            if (ch == '?' || ch == ':')
                fprintf(stderr, "flashrack %s: unknown or incomplete option '%s'\n", verb, argv[optind - 1]);
            return verb_usage(verb, stderr, EXIT_USAGE);
        }
    }
    if (!format_offered(verb, c->format)) {
        fprintf(stderr, "flashrack %s: -o %s is not offered here (table or json)\n", verb, c->format);
        return EXIT_USAGE;
    }
    return 0;
}

static int parse_id(const char *verb, const char *s, uint64_t *out)
{
    long long v;
    if (fr_cfg_parse_int(s, 1, INT64_MAX, &v) < 0) {
        fprintf(stderr, "flashrack %s: '%s' is not a job number\n", verb, s);
        return -1;
    }
    *out = (uint64_t)v;
    return 0;
}

/* Optional positional JOB argument. */
static int job_arg(const char *verb, int argc, char **argv, uint64_t *job)
{
    *job = 0;
    if (optind < argc && parse_id(verb, argv[optind++], job) < 0)
        return EXIT_USAGE;
    if (optind < argc) {
        fprintf(stderr, "flashrack %s: unexpected argument '%s'\n", verb, argv[optind]);
        return verb_usage(verb, stderr, EXIT_USAGE);
    }
    return 0;
}

/* ---- list verbs ------------------------------------------------------------------ */

/* The states of rows (unit runs, or a report's units) that are failures. */
static const char *const failed_states[] = { "failed", "hardware_suspect", NULL };

/* Rows a list verb keeps (--state, --model, --quarantined): NULL or 0 keeps all. */
struct filters {
    const char *state_key, *state, *model;
    int quarantined;
};

static int filtering(const struct filters *f)
{
    return f && (f->state || f->model || f->quarantined);
}

static int keep_row(struct rview *row, const void *arg)
{
    const struct filters *f = arg;
    const char *state = rview_str(row, f->state_key);
    const char *model = rview_str(row, "product_type");
    return (!f->state || (state && !strcmp(state, f->state))) &&
           (!f->model || (model && !strcmp(model, f->model))) &&
           (!f->quarantined || (state && !strcmp(state, "quarantined")));
}

/* A paged document's table and CSV: its rows apart from the rest of it (render.h). */
typedef void rows_fn(const json_t *doc, const struct rview_src *rows, FILE *out);

/* How a paged document is shown: its table and CSV (csv NULL where the verb has none),
 * and for a list served in the order it is shown, the same in parts, printed as the
 * pages come (NULL: printed once all have come, after sorting them into rack order). */
struct pages_view {
    rows_fn *render, *csv;
    const struct render_parts *parts, *csv_parts;
};

/* A document printed page by page: -o json, or the table or CSV in parts. */
struct streamed {
    struct cli *c;
    const struct render_parts *parts; /* NULL: -o json */
    const struct filters *filt;
    json_t *doc;
};

static int stream_page(void *arg, struct listing *l, size_t from)
{
    struct streamed *st = arg;
    if (filtering(st->filt))
        listing_filter_from(l, from, keep_row, st->filt);
    int first = from == 0 && l->npages == 1;
    if (first && st->parts && !(st->doc = listing_head(l))) {
        fprintf(stderr, "flashrack: the controller's page of %s is not JSON\n", l->list);
        return EXIT_FAILED;
    }
    if (!st->parts) {
        if (first)
            listing_json_begin(l, stdout);
        listing_json_rows(l, from, stdout);
        return EXIT_OK;
    }
    if (first && st->parts->head)
        st->parts->head(st->doc, stdout);
    struct rview_src rows = rview_src_texts(l->rows + from, l->nrows - from);
    st->parts->rows(st->doc, &rows, stdout);
    return EXIT_OK;
}

/* The rows once every page has come: sorted into rack order (by_port), filtered, shown. */
static int show_listing(struct cli *c, struct listing *l, const struct pages_view *pv, int by_port,
                        const struct filters *filt)
{
    if (by_port && listing_sort(l, rows_by_port) < 0)
        return EXIT_FAILED;
    if (filtering(filt))
        listing_filter(l, keep_row, filt);
    if (c->json) {
        listing_print_json(l, stdout);
        return EXIT_OK;
    }
    json_t *doc = listing_head(l);
    if (!doc) {
        fprintf(stderr, "flashrack: the controller's page of %s is not JSON\n", l->list);
        return EXIT_FAILED;
    }
    struct rview_src rows = listing_rows(l);
    (pv->csv && !strcmp(c->format, "csv") ? pv->csv : pv->render)(doc, &rows, stdout);
    json_decref(doc);
    return EXIT_OK;
}

/* A paged document: -o json prints its rows from the pages' text, a table or CSV reads
 * their fields from it; no page is parsed but for its members besides the rows. Units and
 * runs are shown in rack order, sorted by keys read from their text, once every page has
 * come; a list served in the order shown (pv's parts) is printed as its pages come, so the
 * CLI prints one page while the controller writes the next (after an error, what was
 * printed stays). failed: whether failed rows make the exit code 1; filt may be NULL. */
static int show_pages(struct cli *c, int kind, uint64_t job, uint64_t ecid, const struct pages_view *pv,
                      int failed, const struct filters *filt)
{
    int by_port = kind == FR__QUERY_REQUEST__KIND__UNITS || kind == FR__QUERY_REQUEST__KIND__STATUS;
    int csv = !strcmp(c->format, "csv");
    const struct render_parts *parts = csv && pv->csv ? pv->csv_parts : pv->parts;
    struct streamed st = { c, c->json ? NULL : parts, filt, NULL };
    int stream = !by_port && (c->json || parts);
    uint32_t limit;
    struct listing l;
    listing_init(&l, paged_list(kind, job, &limit));
    int rc = fetch_pages(c, kind, job, ecid, limit, &l, stream ? stream_page : NULL, &st);
    if (stream && rc == EXIT_OK) { /* after an error, what was printed stays unfinished */
        if (!st.parts)
            listing_json_end(&l, stdout);
        else if (st.parts->foot)
            st.parts->foot(st.doc, l.nrows, stdout);
    }
    if (rc == EXIT_OK && !stream)
        rc = show_listing(c, &l, pv, by_port, filt);
    failed = rc == EXIT_OK && failed && listing_count(&l, "state", failed_states);
    json_decref(st.doc);
    listing_release(&l);
    return rc ? rc : failed ? EXIT_FAILED : EXIT_OK;
}

/* A document that comes whole: its table (or CSV, where csv is not NULL) or -o json. */
static int show_whole(struct cli *c, int kind, uint64_t job, uint64_t ecid,
                      void (*render)(const json_t *, FILE *), void (*csv)(const json_t *, FILE *))
{
    json_t *doc = NULL;
    int rc = cli_query(c, kind, job, ecid, &doc);
    if (rc)
        return rc;
    if (c->json)
        print_json(doc);
    else if (csv && !strcmp(c->format, "csv"))
        csv(doc, stdout);
    else
        render(doc, stdout);
    json_decref(doc);
    return EXIT_OK;
}

static int show(struct cli *c, int kind, uint64_t ecid, void (*render)(const json_t *, FILE *))
{
    return show_whole(c, kind, 0, ecid, render, NULL);
}

static int no_args(struct cli *c, const char *verb, int argc, char **argv)
{
    int rc = parse_verb(c, verb, argc, argv, NULL, 0, NULL, NULL);
    if (!rc && optind < argc) {
        fprintf(stderr, "flashrack %s: unexpected argument '%s'\n", verb, argv[optind]);
        return verb_usage(verb, stderr, EXIT_USAGE);
    }
    return rc;
}

static int run_agents(struct cli *c, int argc, char **argv)
{
    int rc = no_args(c, "agents", argc, argv);
    return rc ? rc : show(c, FR__QUERY_REQUEST__KIND__AGENTS, 0, render_agents);
}

static void say_released(const json_t *doc, const void *arg)
{
    printf("unit %s released: it may be restored again\n", json_string_value(json_object_get(doc, "ecid")));
}

static int units_release(struct cli *c, const char *text)
{
    Fr__UnitReleaseRequest r = FR__UNIT_RELEASE_REQUEST__INIT;
    if (fr_ecid_parse(text, &r.ecid) < 0 || r.ecid == 0) {
        fprintf(stderr, "flashrack units release: '%s' is not an ECID (0x followed by hex, or decimal)\n", text);
        return EXIT_USAGE;
    }
    Fr__Envelope env = FR__ENVELOPE__INIT;
    env.body_case = FR__ENVELOPE__BODY_UNIT_RELEASE;
    env.unit_release = &r;
    return act(c, &env, say_released, NULL);
}

/* A list verb with one action sub-verb ("ports clear PORT", "units release ECID"), its
 * CSV form and its filters. */
struct list_verb {
    const char *verb, *sub, *what;
    int (*act)(struct cli *c, const char *arg);
    int kind;
    struct pages_view view;
    const char *list, *state_key; /* the rows --state filters, and the field it compares */
    int has_model, has_quarantined;
};

struct filter_args {
    const struct list_verb *lv;
    struct filters f;
};

static int on_filter_opt(void *arg, int ch, const char *val)
{
    struct filter_args *fa = arg;
    const char *bad = ch == 'M' && !fa->lv->has_model ? "--model" :
                      ch == 'Q' && !fa->lv->has_quarantined ? "--quarantined" : NULL;
    if (bad) {
        fprintf(stderr, "flashrack %s: %s does not apply to %s\n", fa->lv->verb, bad, fa->lv->list);
        return -1;
    }
    switch (ch) {
    case 'S': fa->f.state = val; return 0;
    case 'M': fa->f.model = val; return 0;
    case 'Q': fa->f.quarantined = 1; return 0;
    }
    return -1;
}

static int run_list_verb(struct cli *c, const struct list_verb *lv, int argc, char **argv)
{
    static const struct option own[] = { { "state", required_argument, NULL, 'S' },
                                         { "model", required_argument, NULL, 'M' },
                                         { "quarantined", no_argument, NULL, 'Q' } };
    struct filter_args fa = { lv, { lv->state_key, NULL, NULL, 0 } };
    int rc = parse_verb(c, lv->verb, argc, argv, own, 3, on_filter_opt, &fa);
    if (rc)
        return rc;
    if (optind < argc && strcmp(argv[optind], lv->sub) == 0) {
        if (optind + 2 != argc) {
            fprintf(stderr, "flashrack %s %s: name one %s\n", lv->verb, lv->sub, lv->what);
            return verb_usage(lv->verb, stderr, EXIT_USAGE);
        }
        return lv->act(c, argv[optind + 1]);
    }
    if (optind < argc) {
        fprintf(stderr, "flashrack %s: unexpected argument '%s'\n", lv->verb, argv[optind]);
        return verb_usage(lv->verb, stderr, EXIT_USAGE);
    }
    return show_pages(c, lv->kind, 0, 0, &lv->view, 0, &fa.f);
}

static int run_units(struct cli *c, int argc, char **argv)
{
    static const struct list_verb lv = { "units", "release", "unit (ECID)", units_release,
                                         FR__QUERY_REQUEST__KIND__UNITS,
                                         { render_units_rows, render_csv_units_rows, NULL, NULL },
                                         "units", "run_state", 1, 0 };
    return run_list_verb(c, &lv, argc, argv);
}

static int run_unit(struct cli *c, int argc, char **argv)
{
    uint64_t ecid = 0;
    int rc = parse_verb(c, "unit", argc, argv, NULL, 0, NULL, NULL);
    if (!rc && (optind + 1 != argc || fr_ecid_parse(argv[optind], &ecid) < 0 || ecid == 0)) {
        fprintf(stderr, "flashrack unit: name one unit by its ECID (0x followed by hex, or decimal)\n");
        rc = verb_usage("unit", stderr, EXIT_USAGE);
    }
    return rc ? rc : show(c, FR__QUERY_REQUEST__KIND__UNIT, ecid, render_unit);
}

static void say_cleared(const json_t *doc, const void *port)
{
    printf("port %s cleared: back in service, strikes reset\n", (const char *)port);
}

static int ports_clear(struct cli *c, const char *port)
{
    Fr__PortClearRequest r = FR__PORT_CLEAR_REQUEST__INIT;
    r.port = (char *)port;
    Fr__Envelope env = FR__ENVELOPE__INIT;
    env.body_case = FR__ENVELOPE__BODY_PORT_CLEAR;
    env.port_clear = &r;
    return act(c, &env, say_cleared, port);
}

static int run_ports(struct cli *c, int argc, char **argv)
{
    static const struct list_verb lv = { "ports", "clear", "port (rack label or agent:path)", ports_clear,
                                         FR__QUERY_REQUEST__KIND__PORTS,
                                         { render_ports_rows, render_csv_ports_rows, &render_ports_parts,
                                           &render_csv_ports_parts },
                                         "ports", "state", 0, 1 };
    return run_list_verb(c, &lv, argc, argv);
}

static int run_moves(struct cli *c, int argc, char **argv)
{
    int rc = no_args(c, "moves", argc, argv);
    return rc ? rc : show(c, FR__QUERY_REQUEST__KIND__MOVES, 0, render_moves);
}

static int run_status(struct cli *c, int argc, char **argv)
{
    uint64_t job;
    int rc = parse_verb(c, "status", argc, argv, NULL, 0, NULL, NULL);
    if (!rc)
        rc = job_arg("status", argc, argv, &job);
    if (rc)
        return rc;
    static const struct pages_view runs = { render_job_rows, render_csv_runs_rows, NULL, NULL };
    return job ? show_pages(c, FR__QUERY_REQUEST__KIND__STATUS, job, 0, &runs, 1, NULL)
               : show_whole(c, FR__QUERY_REQUEST__KIND__STATUS, 0, 0, render_jobs, render_csv_jobs);
}

static int on_ecid_opt(void *arg, int ch, const char *val)
{
    if (ch != 'e' || fr_ecid_parse(val, arg) < 0) {
        if (ch == 'e')
            fprintf(stderr, "flashrack: --ecid: '%s' is not an ECID (0x followed by hex, or decimal)\n", val);
        return -1;
    }
    return 0;
}

static int run_report(struct cli *c, int argc, char **argv)
{
    static const struct option own[] = { { "ecid", required_argument, NULL, 'e' } };
    uint64_t job, ecid = 0;
    int rc = parse_verb(c, "report", argc, argv, own, 1, on_ecid_opt, &ecid);
    if (!rc)
        rc = job_arg("report", argc, argv, &job);
    static const struct pages_view units = { render_report_rows, render_csv_report_rows, &render_report_parts,
                                             &render_csv_report_parts };
    return rc ? rc : show_pages(c, FR__QUERY_REQUEST__KIND__REPORT, job, ecid, &units, 1, NULL);
}

static void say_cancelled(const json_t *doc, const void *job)
{
    printf("job %llu: %lld unit runs cancelled\n", (unsigned long long)*(const uint64_t *)job,
           (long long)json_integer_value(json_object_get(doc, "cancelled_runs")));
}

static int run_cancel(struct cli *c, int argc, char **argv)
{
    static const struct option own[] = { { "ecid", required_argument, NULL, 'e' } };
    uint64_t job = 0, ecid = 0;
    int rc = parse_verb(c, "cancel", argc, argv, own, 1, on_ecid_opt, &ecid);
    if (!rc)
        rc = job_arg("cancel", argc, argv, &job);
    if (!rc && !job) {
        fprintf(stderr, "flashrack cancel: which job?\n");
        rc = verb_usage("cancel", stderr, EXIT_USAGE);
    }
    if (rc)
        return rc;
    Fr__CancelRequest r = FR__CANCEL_REQUEST__INIT;
    r.job_id = job;
    r.ecid = ecid;
    Fr__Envelope env = FR__ENVELOPE__INIT;
    env.body_case = FR__ENVELOPE__BODY_CANCEL;
    env.cancel = &r;
    return act(c, &env, say_cancelled, &job);
}

/* ---- submit ------------------------------------------------------------------------ */

#define MAX_SEL 1024
#define MAX_ECIDS FR_WIRE_MAX_LIST /* what one SubmitRequest may carry */

struct submit_args {
    uint64_t ecids[MAX_ECIDS];
    size_t necids;
    char *agents[MAX_SEL], *ports[MAX_SEL];
    size_t nagents, nports;
    Fr__SubmitRequest req;
    char key[64];
    char firmware[PATH_MAX]; /* a local IPSW's absolute path */
};

/* "--ecid A,B" or repeated --ecid: the whole list, however long (a copy of it cut at
 * 4 KiB once sent the first 512 ECIDs of 1,000 and dropped the rest unsaid). */
static int add_ecids(struct submit_args *s, const char *val)
{
    char *buf = strdup(val);
    int rc = buf ? 0 : -1;
    for (char *save = NULL, *tok = buf ? strtok_r(buf, ",", &save) : NULL; tok && rc == 0;
         tok = strtok_r(NULL, ",", &save)) {
        if (s->necids >= MAX_ECIDS) {
            fprintf(stderr, "flashrack submit: --ecid: more than %d ECIDs; submit the rest as another "
                            "job\n", MAX_ECIDS);
            rc = -1;
        } else if (fr_ecid_parse(tok, &s->ecids[s->necids]) < 0) {
            fprintf(stderr, "flashrack submit: --ecid: '%s' is not an ECID (0x followed by hex, or decimal)\n", tok);
            rc = -1;
        } else {
            s->necids++;
        }
    }
    free(buf);
    return rc;
}

static int on_submit_opt(void *arg, int ch, const char *val)
{
    struct submit_args *s = arg;
    long long v;
    switch (ch) {
    case 'e': return add_ecids(s, val);
    case 'a':
        if (s->nagents >= MAX_SEL || !*val)
            return -1;
        s->agents[s->nagents++] = (char *)val;
        return 0;
    case 'p':
        if (s->nports >= MAX_SEL || !*val)
            return -1;
        s->ports[s->nports++] = (char *)val;
        return 0;
    case 'n':
        if (fr_cfg_parse_int(val, 1, 1000000, &v) < 0)
            return fprintf(stderr, "flashrack submit: --count: expected a positive number, got '%s'\n", val), -1;
        s->req.count = (uint32_t)v;
        return 0;
    case 'm':
        if (fr_cfg_parse_int(val, 1, 100, &v) < 0)
            return fprintf(stderr, "flashrack submit: --max-attempts: expected 1..100, got '%s'\n", val), -1;
        s->req.max_attempts = (uint32_t)v;
        return 0;
    case 'f': s->req.firmware = (char *)val; return 0;
    case 's': s->req.firmware_sha256 = (char *)val; return 0;
    case 'u': s->req.update = 1; return 0;
    case 'N': s->req.name = (char *)val; return 0;
    case 'S': s->req.standing = 1; return 0;
    case 'k': s->req.idempotency_key = (char *)val; return 0;
    case 'P': s->req.same_port_retry = 1; return 0;
    case 'Q': s->req.queue = 1; return 0;
    case 'W': s->req.wait = 1; return 0;
    }
    return -1;
}

/* A local --firmware is checked here, before anything is sent: it must be a readable zip
 * with a BuildManifest.plist. The job carries its absolute path (the agents read it). */
static int check_local_firmware(struct submit_args *s)
{
    const char *path = s->req.firmware;
    if (fr_is_url(path) || fr_catalog_is_selector(path))
        return 0;
    struct fr_ipsw *ipsw = calloc(1, sizeof *ipsw);
    char err[PATH_MAX + 256];
    int rc = ipsw ? fr_ipsw_inspect(path, ipsw, err, sizeof err) : FR_ENOMEM;
    free(ipsw);
    if (rc == 0 && !realpath(path, s->firmware))
        rc = fr_seterr(FR_EIO, err, sizeof err, "cannot resolve '%s': %s", path, strerror(errno));
    if (rc < 0) {
        fprintf(stderr, "flashrack submit: --firmware: %s\n", rc == FR_ENOMEM ? "out of memory" : err);
        return -1;
    }
    s->req.firmware = s->firmware;
    return 0;
}

/* "job 3 submitted (key K): 12 units on A, B; 2 skipped: in job 2, held" */
static void print_submitted(const json_t *doc, const char *key)
{
    printf("job %lld %s (key %s)", (long long)json_integer_value(json_object_get(doc, "job_id")),
           json_is_true(json_object_get(doc, "created")) ? "submitted" : "already submitted", key);
    if (!json_object_get(doc, "matched")) {
        putchar('\n');
        return;
    }
    fputs(": ", stdout);
    render_submit_summary(doc, stdout);
    putchar('\n');
}

static int run_submit(struct cli *c, int argc, char **argv)
{
    static const struct option own[] = {
        { "ecid", required_argument, NULL, 'e' },     { "agent", required_argument, NULL, 'a' },
        { "port", required_argument, NULL, 'p' },     { "count", required_argument, NULL, 'n' },
        { "firmware", required_argument, NULL, 'f' }, { "sha256", required_argument, NULL, 's' },
        { "update", no_argument, NULL, 'u' },         { "max-attempts", required_argument, NULL, 'm' },
        { "name", required_argument, NULL, 'N' },     { "standing", no_argument, NULL, 'S' },
        { "key", required_argument, NULL, 'k' },      { "same-port", no_argument, NULL, 'P' },
        { "queue", no_argument, NULL, 'Q' },          { "wait", no_argument, NULL, 'W' },
    };
    struct submit_args *s = calloc(1, sizeof *s);
    Fr__SubmitRequest init = FR__SUBMIT_REQUEST__INIT;
    s->req = init;
    int rc = parse_verb(c, "submit", argc, argv, own, sizeof own / sizeof own[0], on_submit_opt, s);
    if (!rc && optind < argc) {
        fprintf(stderr, "flashrack submit: unexpected argument '%s'\n", argv[optind]);
        rc = verb_usage("submit", stderr, EXIT_USAGE);
    }
    if (!rc && !*s->req.firmware) {
        fprintf(stderr, "flashrack submit: --firmware FILE|URL is required\n");
        rc = verb_usage("submit", stderr, EXIT_USAGE);
    }
    if (!rc && fr_is_url(s->req.firmware) && !fr_is_hash_hex(s->req.firmware_sha256)) {
        fprintf(stderr, "flashrack submit: a firmware URL needs --sha256 HEX (the IPSW's SHA-256, or "
                        "its SHA-1), so the download can be checked\n");
        rc = verb_usage("submit", stderr, EXIT_USAGE);
    }
    if (!rc && check_local_firmware(s) < 0)
        rc = EXIT_USAGE;
    if (!rc && s->necids + s->nagents + s->nports == 0) {
        fprintf(stderr, "flashrack submit: name the units: --ecid, --agent or --port\n");
        rc = verb_usage("submit", stderr, EXIT_USAGE);
    }
    if (!rc && !*s->req.idempotency_key) {
        /* A fresh key per invocation; print it so a retry can reuse it with --key. */
        snprintf(s->key, sizeof s->key, "cli-%llx-%x", (unsigned long long)fr_time_wall_ms(),
                 (unsigned)getpid() ^ (unsigned)rand());
        s->req.idempotency_key = s->key;
    }
    if (!rc) {
        s->req.ecids = s->ecids;
        s->req.n_ecids = s->necids;
        s->req.agents = s->agents;
        s->req.n_agents = s->nagents;
        s->req.ports = s->ports;
        s->req.n_ports = s->nports;
        Fr__Envelope env = FR__ENVELOPE__INIT;
        env.body_case = FR__ENVELOPE__BODY_SUBMIT;
        env.submit = &s->req;
        json_t *doc = NULL;
        rc = cli_call(c, &env, &doc);
        if (!rc && c->json)
            print_json(doc);
        else if (!rc)
            print_submitted(doc, s->req.idempotency_key);
        json_decref(doc);
    }
    free(s);
    return rc;
}

/* ---- watch -------------------------------------------------------------------------- */

struct watch_args {
    int once;
    long long interval_ms, frames;
};

static int on_watch_opt(void *arg, int ch, const char *val)
{
    struct watch_args *w = arg;
    if (ch == '1') {
        w->once = 1;
        return 0;
    }
    if (ch == 'i' && fr_cfg_parse_int(val, 50, 60000, &w->interval_ms) == 0)
        return 0;
    if (ch == 'i')
        fprintf(stderr, "flashrack watch: --interval: expected 50..60000 ms, got '%s'\n", val);
    if (ch == 'f' && fr_cfg_parse_int(val, 1, 1000000, &w->frames) == 0)
        return 0;
    if (ch == 'f')
        fprintf(stderr, "flashrack watch: --frames: expected 1..1000000, got '%s'\n", val);
    return -1;
}

static int watched_finished(struct snapshot *snap, int *failures)
{
    size_t i;
    const json_t *j, *jobs = json_object_get(snapshot_head(snap), "jobs");
    int finished = json_array_size(jobs) > 0;
    json_array_foreach(jobs, i, j) {
        const char *st = json_string_value(json_object_get(j, "state"));
        finished &= st && strcmp(st, "running") != 0;
    }
    struct rview_src view = snapshot_view(snap);
    *failures = (int)rows_count_texts(view.texts, view.n, "state", failed_states);
    return finished;
}

/* Plain lines, one per change, for logs and pipes. */
static void watch_lines(const struct rview_src *runs, json_t *seen)
{
    struct rview r;
    rview_init(&r);
    for (size_t i = 0; i < runs->n; i++) {
        char line[512], key[64];
        rview_src_row(runs, i, &r);
        render_run_line_view(&r, line, sizeof line);
        struct rval job = rview_get(&r, "job_id");
        const char *ecid = rview_str(&r, "ecid");
        snprintf(key, sizeof key, "%lld/%s", job.type == RVAL_INTEGER ? job.i : 0, ecid ? ecid : "(null)");
        const char *old = json_string_value(json_object_get(seen, key));
        if (!old || strcmp(old, line) != 0) {
            printf("%s\n", line);
            json_object_set_new(seen, key, json_string(line));
        }
    }
    rview_release(&r);
    fflush(stdout);
}

static void watch_move_lines(const json_t *doc, json_t *seen)
{
    size_t i;
    const json_t *m;
    json_array_foreach(json_object_get(doc, "moves"), i, m) {
        char line[512], key[64];
        render_move_line(m, line, sizeof line);
        snprintf(key, sizeof key, "move/%lld", (long long)json_integer_value(json_object_get(m, "id")));
        const char *old = json_string_value(json_object_get(seen, key));
        if (!old || strcmp(old, line) != 0) {
            printf("%s\n", line);
            json_object_set_new(seen, key, json_string(line));
        }
    }
}

static void watch_frame(struct snapshot *snap, int ansi)
{
    if (ansi)
        fputs("\033[H\033[2J", stdout);
    char t[32];
    fr_time_iso8601(fr_time_wall_ms(), t, sizeof t);
    printf("flashrack watch — %s\n\n", t);
    struct rview_src view = snapshot_view(snap);
    render_job_rows(snapshot_head(snap), &view, stdout);
    fflush(stdout);
}

#define WATCH_PAGE 1000 /* runs per reply */

static int watch_send(struct cli *c, uint64_t job, uint64_t since, const char *cursor, uint64_t *seq)
{
    Fr__QueryRequest q = FR__QUERY_REQUEST__INIT;
    q.kind = FR__QUERY_REQUEST__KIND__WATCH;
    q.job_id = job;
    q.limit = WATCH_PAGE;
    q.since = since;
    q.cursor = (char *)cursor;
    Fr__Envelope env = FR__ENVELOPE__INIT;
    env.body_case = FR__ENVELOPE__BODY_QUERY;
    env.query = &q;
    return cli_send(c, &env, seq);
}

/* A frame's reads: watch replies, applied to snap, until one says there are no more
 * changes now. The first frame is the snapshot's pages (cursor "[]", then each page's
 * "next"), later ones the changes after seq. As with a listing's pages, the next request
 * goes out as soon as a reply's seq, more and next are read, before its runs are. */
static int watch_read(struct cli *c, uint64_t job, struct snapshot *snap)
{
    uint64_t seq, since = snapshot_seq(snap);
    int rc = watch_send(c, job, since, since ? "" : "[]", &seq), more = 1;
    for (int pages = 1; rc == EXIT_OK && more; pages++) {
        char *text = NULL, *next = NULL, err[256];
        if ((rc = cli_recv(c, seq, &text)) != EXIT_OK)
            break;
        if (snapshot_reply_cursor(text, &since, &more, &next) < 0) {
            fprintf(stderr, "flashrack: the controller's watch reply has no seq, more and next\n");
            free(text);
            return EXIT_FAILED;
        }
        if (more && pages >= PAGES_MAX) {
            fprintf(stderr, "flashrack watch: the controller sent more than %d pages of changes\n", PAGES_MAX);
            rc = EXIT_FAILED;
        } else if (more) {
            rc = watch_send(c, job, since, next, &seq);
        }
        free(next);
        if (rc != EXIT_OK)
            free(text);
        else if (snapshot_apply(snap, text, err, sizeof err) < 0) {
            fprintf(stderr, "flashrack: %s\n", err);
            rc = EXIT_FAILED;
        }
    }
    return rc;
}

/* One frame: the snapshot as a document (with -o json, "changes": the runs this frame
 * read), or the lines of what changed. */
static void watch_show(struct cli *c, struct snapshot *snap, int tty, json_t *seen)
{
    if (c->json) {
        snapshot_print_json(snap, stdout);
        fflush(stdout);
    } else if (tty) {
        watch_frame(snap, 1);
    } else {
        struct rview_src changed = snapshot_changed(snap);
        watch_lines(&changed, seen);
        watch_move_lines(snapshot_head(snap), seen);
    }
}

static int run_watch(struct cli *c, int argc, char **argv)
{
    static const struct option own[] = { { "once", no_argument, NULL, '1' },
                                         { "interval", required_argument, NULL, 'i' },
                                         { "frames", required_argument, NULL, 'f' } };
    struct watch_args w = { 0, 500, 0 };
    uint64_t job;
    int rc = parse_verb(c, "watch", argc, argv, own, 3, on_watch_opt, &w);
    if (!rc)
        rc = job_arg("watch", argc, argv, &job);
    if (rc)
        return rc;
    int tty = isatty(STDOUT_FILENO) && !c->json;
    json_t *seen = json_object();
    struct snapshot *snap = snapshot_new();
    if (!seen || !snap) {
        fprintf(stderr, "flashrack: out of memory\n");
        json_decref(seen);
        snapshot_free(snap);
        return EXIT_FAILED;
    }
    int failures = 0;
    for (long long frame = 1;; frame++) {
        rc = watch_read(c, job, snap);
        int finished = !rc && watched_finished(snap, &failures);
        if (!rc)
            watch_show(c, snap, tty, seen);
        if (finished && !c->json && !tty)
            render_jobs(snapshot_head(snap), stdout);
        snapshot_frame_end(snap);
        if (rc || w.once || (w.frames ? frame >= w.frames : finished))
            break;
        struct timespec ts = { w.interval_ms / 1000, (w.interval_ms % 1000) * 1000000L };
        nanosleep(&ts, NULL);
    }
    snapshot_free(snap);
    json_decref(seen);
    if (!rc && failures && !w.once) {
        fprintf(stderr, "flashrack watch: %d unit%s failed\n", failures, failures == 1 ? "" : "s");
        rc = EXIT_FAILED;
    }
    return rc;
}

/* ---- firmware ---------------------------------------------------------------------- */

/* Chip and board ids as PROTOCOL.md writes them: hex strings ("0x8020", "0x0E"). */
static json_t *hex_id(unsigned v, int digits)
{
    char buf[16];
    snprintf(buf, sizeof buf, "0x%0*X", digits, v);
    return json_string(buf);
}

static json_t *ipsw_doc(const char *path, const struct fr_ipsw *ipsw)
{
    json_t *types = json_array(), *ids = json_array();
    for (size_t i = 0; i < ipsw->nproduct_types; i++)
        json_array_append_new(types, json_string(ipsw->product_types[i]));
    for (size_t i = 0; i < ipsw->nidentities; i++) {
        const struct fr_ipsw_identity *id = &ipsw->identities[i];
        json_array_append_new(ids, json_pack("{s:s, s:s, s:s, s:o, s:o}", "device_class",
                                             id->device_class, "variant", id->variant, "behavior",
                                             id->behavior, "chip_id", hex_id(id->chip_id, 4),
                                             "board_id", hex_id(id->board_id, 2)));
    }
    return json_pack("{s:s, s:s, s:s, s:o, s:o}", "file", path, "version", ipsw->version, "build",
                     ipsw->build, "product_types", types, "identities", ids);
}

static int firmware_inspect(struct cli *c, const char *path)
{
    struct fr_ipsw *ipsw = calloc(1, sizeof *ipsw);
    char err[512];
    if (!ipsw || fr_ipsw_inspect(path, ipsw, err, sizeof err) < 0) {
        fprintf(stderr, "flashrack firmware inspect: %s\n", ipsw ? err : "out of memory");
        free(ipsw);
        return EXIT_FAILED;
    }
    json_t *doc = ipsw_doc(path, ipsw);
    if (c->json) {
        print_json(doc);
    } else {
        printf("%s\niOS %s (%s) for", path, ipsw->version, ipsw->build);
        for (size_t i = 0; i < ipsw->nproduct_types; i++)
            printf(" %s", ipsw->product_types[i]);
        printf("\n\n%-10s %-8s %-8s %s\n", "BOARD", "CHIP", "MODE", "VARIANT");
        for (size_t i = 0; i < ipsw->nidentities; i++)
            printf("%-10s 0x%-6X %-8s %s\n", ipsw->identities[i].device_class,
                   ipsw->identities[i].chip_id, ipsw->identities[i].behavior,
                   ipsw->identities[i].variant);
    }
    json_decref(doc);
    free(ipsw);
    return EXIT_OK;
}

struct catalogs {
    const char *files[16];
    int n;
    const char *model;
};

static int on_catalog_opt(void *arg, int ch, const char *val)
{
    struct catalogs *cs = arg;
    if (ch == 'm') {
        cs->model = val;
        return 0;
    }
    if (ch != 'k' || cs->n >= 16)
        return -1;
    cs->files[cs->n++] = val;
    return 0;
}

static int firmware_resolve(struct cli *c, const struct catalogs *cs, const char *model,
                            const char *selector)
{
    struct fr_catalog cat = { 0 };
    char err[512];
    struct fr_fw fw;
    int rc = 0;
    for (int i = 0; rc == 0 && i < cs->n; i++)
        rc = fr_catalog_load(&cat, cs->files[i], err, sizeof err);
    if (rc == 0)
        rc = fr_catalog_resolve(&cat, model, selector, &fw, err, sizeof err);
    fr_catalog_release(&cat);
    if (rc < 0) {
        fprintf(stderr, "flashrack firmware resolve: %s\n", err);
        return EXIT_FAILED;
    }
    /* "signed" as in the controller's FW documents: true, false, or null when unknown */
    json_t *doc = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:I, s:o}", "product_type", model,
                            "version", fw.version, "build", fw.build, "url", fw.url, "sha1", fw.sha1,
                            "sha256", fw.sha256, "size", (json_int_t)fw.size, "signed",
                            !fw.signed_known ? json_null() : json_boolean(fw.is_signed));
    if (c->json)
        print_json(doc);
    else
        printf("%s: iOS %s (%s), signed: %s\n%s\nsha256 %s  sha1 %s  %llu bytes\n", model,
               fw.version, fw.build, !fw.signed_known ? "unknown" : fw.is_signed ? "yes" : "no", fw.url,
               *fw.sha256 ? fw.sha256 : "-", *fw.sha1 ? fw.sha1 : "-", (unsigned long long)fw.size);
    json_decref(doc);
    return EXIT_OK;
}

/* list, show and refresh ask the controller (its catalog and mirror). */
static int firmware_remote(struct cli *c, int kind, const char *model, const char *selector)
{
    Fr__QueryRequest q = FR__QUERY_REQUEST__INIT;
    q.kind = kind;
    q.model = (char *)(model ? model : "");
    q.selector = (char *)(selector ? selector : "");
    Fr__Envelope env = FR__ENVELOPE__INIT;
    env.body_case = FR__ENVELOPE__BODY_QUERY;
    env.query = &q;
    if (kind == FR__QUERY_REQUEST__KIND__REFRESH && c->timeout_s < 150)
        c->timeout_s = 150; /* the controller answers once every source was fetched */
    json_t *doc = NULL;
    int rc = cli_call(c, &env, &doc);
    if (rc == 0 && c->json)
        print_json(doc);
    else if (rc == 0 && kind == FR__QUERY_REQUEST__KIND__REFRESH)
        printf("catalog refreshed: %lld files, %lld firmwares\n",
               (long long)json_integer_value(json_object_get(doc, "files")),
               (long long)json_integer_value(json_object_get(doc, "firmwares")));
    else if (rc == 0)
        render_firmware(doc, stdout);
    json_decref(doc);
    return rc;
}

static int run_firmware(struct cli *c, int argc, char **argv)
{
    static const struct option own[] = { { "catalog", required_argument, NULL, 'k' },
                                         { "model", required_argument, NULL, 'm' } };
    struct catalogs cs = { .n = 0 };
    int rc = parse_verb(c, "firmware", argc, argv, own, 2, on_catalog_opt, &cs);
    if (rc)
        return rc;
    int left = argc - optind;
    const char *sub = left > 0 ? argv[optind] : "";
    if (!strcmp(sub, "list") && left == 1)
        return firmware_remote(c, FR__QUERY_REQUEST__KIND__FIRMWARE, cs.model, NULL);
    if (!strcmp(sub, "show") && (left == 2 || left == 3))
        return firmware_remote(c, FR__QUERY_REQUEST__KIND__FIRMWARE, argv[optind + 1],
                               left == 3 ? argv[optind + 2] : "latest");
    if (!strcmp(sub, "refresh") && left == 1)
        return firmware_remote(c, FR__QUERY_REQUEST__KIND__REFRESH, NULL, NULL);
    if (optind + 2 == argc && strcmp(argv[optind], "inspect") == 0)
        return firmware_inspect(c, argv[optind + 1]);
    if ((optind + 2 == argc || optind + 3 == argc) && strcmp(argv[optind], "resolve") == 0) {
        if (cs.n == 0) {
            fprintf(stderr, "flashrack firmware resolve: name at least one --catalog FILE\n");
            return verb_usage("firmware", stderr, EXIT_USAGE);
        }
        return firmware_resolve(c, &cs, argv[optind + 1], optind + 3 == argc ? argv[optind + 2] : "latest");
    }
    fprintf(stderr, "flashrack firmware: expected list, show MODEL [SELECTOR], refresh, inspect FILE "
                    "or resolve MODEL [SELECTOR] --catalog FILE\n");
    return verb_usage("firmware", stderr, EXIT_USAGE);
}

static int run_keys(struct cli *c, int argc, char **argv)
{
    return keys_run(argc, argv, c->json);
}

/* ---- record ---------------------------------------------------------------------------- */

struct record_args {
    const char *out, *pubkey, *dir;
};

static int on_record_opt(void *arg, int ch, const char *val)
{
    struct record_args *r = arg;
    switch (ch) {
    case 'O': r->out = val; return 0;
    case 'K': r->pubkey = val; return 0;
    case 'd': r->dir = val; return 0;
    }
    return -1;
}

/* "record JOB|ECID": a decimal number is a job, 0x... a unit. */
static int record_fetch(struct cli *c, const char *what, const struct record_args *ra)
{
    uint64_t job = 0, ecid = 0;
    int is_ecid = strncmp(what, "0x", 2) == 0 || strncmp(what, "0X", 2) == 0;
    if (is_ecid ? fr_ecid_parse(what, &ecid) < 0 || ecid == 0 : parse_id("record", what, &job) < 0) {
        fprintf(stderr, "flashrack record: expected a job number or an ECID (0x...), got '%s'\n", what);
        return EXIT_USAGE;
    }
    if (record_check_out(ra->out) < 0)
        return EXIT_USAGE;
    json_t *doc = NULL;
    int rc = cli_query(c, FR__QUERY_REQUEST__KIND__RECORDS, job, ecid, &doc);
    if (rc == 0)
        rc = record_export(doc, c->format, ra->out);
    json_decref(doc);
    return rc;
}

static int run_record(struct cli *c, int argc, char **argv)
{
    static const struct option own[] = { { "out", required_argument, NULL, 'O' },
                                         { "pubkey", required_argument, NULL, 'K' },
                                         { "keys-dir", required_argument, NULL, 'd' } };
    struct record_args ra = { 0 };
    int rc = parse_verb(c, "record", argc, argv, own, 3, on_record_opt, &ra);
    if (rc)
        return rc;
    int left = argc - optind;
    const char *sub = left > 0 ? argv[optind] : "";
    if (!strcmp(sub, "verify") && left == 2)
        return record_verify(argv[optind + 1], ra.pubkey);
    if (!strcmp(sub, "pubkey") && left == 1)
        return record_pubkey(ra.dir);
    if (left == 1 && strcmp(sub, "verify") && strcmp(sub, "pubkey"))
        return record_fetch(c, sub, &ra);
    fprintf(stderr, "flashrack record: expected JOB, ECID, verify FILE or pubkey\n");
    return verb_usage("record", stderr, EXIT_USAGE);
}

/* ---- main ------------------------------------------------------------------------------ */

static const struct verb verbs[] = {
    { "submit", run_submit, "submit a restore job",
      "  submit --firmware IPSW|URL|latest|VERSION|BUILD (--ecid ECID[,ECID]... | --agent ID... | --port AGENT:PATH|LABEL...)\n"
      "         [--count N] [--sha256 HEX] [--update] [--max-attempts N] [--name NAME]\n"
      "         [--standing] [--same-port] [--key KEY] [--queue] [--wait]\n"
      "  Submits a restore job (erase-restore unless --update). --key makes a retry safe: the\n"
      "  same key returns the same job. Without --key a fresh one is generated and printed.\n"
      "  --same-port lets a unit retry on the port where it lost the link (default: another port).\n"
      "  Refused at once: an agent or port the controller does not know, 0 units matched (unless\n"
      "  --wait or --standing, which wait for units), a named unit not connected (unless --wait),\n"
      "  a named unit held as hardware_suspect, a named unit in another running job (unless\n"
      "  --queue: it is restored after that job), a --key reused for a different request.\n"
      "  Prints what it matched: \"12 units on A, B; 2 skipped: in job 2\"." },
    { "status", run_status, "jobs, or one job unit by unit", "  status [JOB]\n  Lists jobs, or one job unit by unit (-o csv: a row per job, or per unit).\n"
      "  Exit code 1 when a unit of JOB failed or is suspected faulty; 4 when there is no JOB." },
    { "watch", run_watch, "live per-port view until the job ends",
      "  watch [JOB] [--once] [--interval MS] [--frames N]\n"
      "  A live per-port view until the job ends (plain lines when not a terminal): every\n"
      "  run once, then each frame only the runs that changed. --frames stops after N\n"
      "  frames, ended or not; -o json prints one document per frame, with \"changes\",\n"
      "  the runs that frame read.\n"
      "  Exit code 1 when any unit failed or is suspected faulty; 4 when there is no JOB." },
    { "units", run_units, "every phone seen; release a held unit",
      "  units [--state RUN_STATE] [--model PRODUCT_TYPE]\n  Every phone seen: ECID, model, mode, where it is"
      " (-o csv: one row each).\n  --state keeps units whose current run is in that state, --model one model.\n"
      "  units release ECID\n  A unit held as hardware_suspect (it failed on several ports) may be restored\n"
      "  again: after a technician checked it." },
    { "unit", run_unit, "one phone: held or not, every job it was in",
      "  unit ECID\n  One phone: where it is, whether it is held, and its history across jobs with\n"
      "  every attempt. Exit code 4 when the controller never saw it." },
    { "ports", run_ports, "every port, its state and strikes",
      "  ports [clear PORT] [--state free|busy|quarantined|offline] [--quarantined]\n"
      "  Every port: label, hub, bus, state, strikes, quarantine reason (-o csv: one row each).\n"
      "  'ports clear A-05' puts a quarantined port back in service (after swapping its cable)." },
    { "firmware", run_firmware, "the firmware catalog, the site mirror, IPSWs",
      "  firmware list [--model MODEL]\n"
      "  The controller's catalog (every build it knows, signed or not, with its hashes)\n"
      "  and the site mirror (the IPSWs it holds, downloads from the publisher, bytes served).\n"
      "  firmware show MODEL [latest|VERSION|BUILD]\n"
      "  Which IPSW a job submitted with that --firmware would restore on that model.\n"
      "  firmware refresh\n"
      "  Fetches the catalog sources ([firmware] sources) now.\n"
      "  firmware inspect FILE\n  Version, build, the models an IPSW serves and its build identities\n"
      "  (read locally from BuildManifest.plist; needs no controller).\n"
      "  firmware resolve MODEL [latest|VERSION|BUILD|URL|FILE] --catalog FILE...\n"
      "  Which IPSW a job's firmware means for a model, from ipsw.me JSON or Apple's\n"
      "  version plist files (an offline site's catalog)." },
    { "moves", run_moves, "open move instructions",
      "  moves\n  Units to move to another port (after a lost link), with the target port and,\n"
      "  when the next attempt starts from DFU, the model's button sequence." },
    { "agents", run_agents, "agents and their health", "  agents\n  Agents, online or not, with their ports, units and restores." },
    { "cancel", run_cancel, "cancel a job or one unit of it", "  cancel JOB [--ecid ECID]\n  Cancels a job, or one unit of it." },
    { "report", run_report, "the per-unit record of a job",
      "  report [JOB] [--ecid ECID]\n"
      "  The per-unit record: identity, firmware, start and end, every attempt with agent,\n"
      "  port, outcome, the firmware installed (iOS version, build, SHA-256), its duration and\n"
      "  log, and the engine's error text. The latest job when JOB is omitted. -o csv: one row\n"
      "  per attempt.\n"
      "  Exit code 1 when a unit failed or is suspected faulty; 4 when there is no JOB." },
    { "keys", run_keys, "CURVE keys and who may connect", KEYS_USAGE },
    { "record", run_record, "signed sanitization records: export, verify", RECORD_USAGE },
};

static const struct verb *find_verb(const char *name)
{
    for (size_t i = 0; i < sizeof verbs / sizeof verbs[0]; i++)
        if (strcmp(verbs[i].name, name) == 0)
            return &verbs[i];
    return NULL;
}

static void usage(FILE *out)
{
    fprintf(out, "usage: flashrack [-C ENDPOINT] [-o table|json] [--timeout SEC] VERB [ARGS]\n\n"
                 "Verbs:\n");
    for (size_t i = 0; i < sizeof verbs / sizeof verbs[0]; i++)
        fprintf(out, "  %-8s %s\n", verbs[i].name, verbs[i].summary);
    fprintf(out, "\nThe controller is tcp://127.0.0.1:7711 unless -C or $FLASHRACK_CONTROLLER says otherwise.\n"
                 "'flashrack VERB --help' for a verb's options. Exit codes: 0 ok, 1 failed,\n"
                 "2 usage error, 3 controller unreachable, 4 no such job, unit or port.\n");
}

int main(int argc, char **argv)
{
    struct cli c = { .endpoint = getenv("FLASHRACK_CONTROLLER"), .timeout_s = 5, .format = "table" };
    if (!c.endpoint || !*c.endpoint)
        c.endpoint = "tcp://127.0.0.1:7711";
    srand((unsigned)fr_time_wall_ms());
    fr_wire_keep_buffers();
    /* a listing is megabytes to a pipe: written in 64 KiB blocks, not stdio's 4 KiB */
    if (!isatty(STDOUT_FILENO))
        setvbuf(stdout, NULL, _IOFBF, 64 * 1024);
    static const struct option opts[] = { GLOBAL_OPTS, { "version", no_argument, NULL, 'V' },
                                          { NULL, 0, NULL, 0 } };
    int ch;
    opterr = 0;
    while ((ch = getopt_long(argc, argv, "+C:o:h", opts, NULL)) != -1) {
        if (ch == 'h') {
            usage(stdout);
            return EXIT_OK;
        }
        if (ch == 'V') {
            printf("flashrack %s\n", FR_VERSION);
            return EXIT_OK;
        }
        int g = global_opt(&c, ch, optarg);
        if (g < 0)
            return EXIT_USAGE;
        if (g == 0) {
            fprintf(stderr, "flashrack: unknown option '%s'\n", argv[optind - 1]);
            usage(stderr);
            return EXIT_USAGE;
        }
    }
    if (optind >= argc) {
        usage(stderr);
        return EXIT_USAGE;
    }
    const struct verb *v = find_verb(argv[optind]);
    if (!v) {
        fprintf(stderr, "flashrack: unknown verb '%s'\n", argv[optind]);
        usage(stderr);
        return EXIT_USAGE;
    }
    int rc = v->run(&c, argc - optind, argv + optind);
    cli_close(&c);
    return rc;
}
