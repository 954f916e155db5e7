/* rack_learn — the interactive rack-map session on the loop. */
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fr_err.h"
#include "fr_linebuf.h"
#include "fr_log.h"
#include "rack_learn.h"
#include "rackmap.h"

struct learn {
    uv_loop_t *loop;
    struct seams *seams;
    const char *map_path, *prefix;
    struct rackmap *map;
    struct port_desc *ports;
    size_t nports;
    int asking;                 /* index into ports awaiting its label, -1 */
    char proposed[32];
    uv_stream_t *in;
    struct fr_linebuf lines;
    uv_signal_t sigint;
    int learnt, finished, rc;
    int trees;                  /* trees the seams reported: the first, then hubs coming or going */
};

static void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void say(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    putchar('\n');
    fflush(stdout);
}

static void on_quiet_close(uv_handle_t *h)
{
}

static void finish(struct learn *l)
{
    if (l->finished)
        return;
    l->finished = 1;
    say("%d port%s labelled; the rack map is '%s'", l->learnt, l->learnt == 1 ? "" : "s", l->map_path);
    uv_read_stop(l->in);
    uv_close((uv_handle_t *)l->in, on_quiet_close);
    uv_close((uv_handle_t *)&l->sigint, on_quiet_close);
    l->seams->close(l->seams, NULL);
}

static int port_index(struct learn *l, const char *path)
{
    for (size_t i = 0; i < l->nports; i++)
        if (strcmp(l->ports[i].path, path) == 0 || strcmp(l->ports[i].peer_path, path) == 0)
            return (int)i;
    return -1;
}

static void ask(struct learn *l, int i)
{
    l->asking = i;
    rackmap_next_label(l->map, l->prefix, l->proposed, sizeof l->proposed);
    say("port '%s' (hub '%s'): label? [%s] (Enter accepts, or type a label, skip or done)",
        l->ports[i].path, l->ports[i].hub, l->proposed);
}

/* After a new tree: the port that was asked about (asked, "" if none) is asked about
 * again where it is still in the tree (the seams report no attach again for the phone
 * on it); gone with its hub, it is dropped, and the operator told. */
static void ask_again(struct learn *l, const char *asked)
{
    l->asking = asked[0] ? port_index(l, asked) : -1;
    if (l->asking >= 0)
        ask(l, l->asking);
    else if (asked[0])
        say("port '%s' is no longer on this host (its hub went) and was not labelled; "
            "plug the phone into the next port to label (or type done)", asked);
}

/* A tree: the first at start, then one each time a hub comes or goes. What was learnt
 * and the question under way outlive it; only the ports' table is new. */
static void on_topology(void *arg, const struct port_desc *ports, size_t n)
{
    struct learn *l = arg;
    struct port_desc *copy = calloc(n ? n : 1, sizeof *copy);
    char asked[sizeof copy->path] = "";
    size_t before = l->nports;
    if (!copy)
        return;
    memcpy(copy, ports, n * sizeof *copy);
    if (l->asking >= 0)
        snprintf(asked, sizeof asked, "%s", l->ports[l->asking].path);
    free(l->ports);
    l->ports = copy;
    l->nports = n;
    if (l->trees++ == 0)
        say("%zu ports on this host; plug a phone into the first port to label (or type done)", n);
    else
        say("the USB tree changed: %zu port%s on this host (%zu before)", n, n == 1 ? "" : "s", before);
    ask_again(l, asked);
}

static void on_attach(void *arg, const struct unit_desc *u)
{
    struct learn *l = arg;
    int i = port_index(l, u->path);
    const char *label = i >= 0 ? rackmap_label(l->map, l->ports[i].path) : NULL;
    if (l->finished)
        return;
    if (i < 0)
        say("a phone appeared on '%s', which is not a rack port of this host; ignored", u->path);
    else if (label)
        say("port '%s' is already '%s'; plug the phone into the next port", u->path, label);
    else if (l->asking >= 0 && l->asking != i)
        say("a phone appeared on '%s': answer for port '%s' first", u->path, l->ports[l->asking].path);
    else if (l->asking < 0)
        ask(l, i);
}

static void on_detach(void *arg, const char *path, uint64_t ecid)
{
}

/* Labels the port being asked about; 0, or -1 (said why) to ask again. */
static int assign(struct learn *l, const char *label)
{
    const struct port_desc *p = &l->ports[l->asking];
    const char *paths[2] = { p->path, p->peer_path };
    char err[256];
    if (rackmap_add_port(l->map, label, paths, p->peer_path[0] ? 2 : 1, err, sizeof err) < 0) {
        say("cannot label port '%s' '%s': %s", p->path, label, err);
        return -1;
    }
    if (rackmap_save(l->map, l->map_path, err, sizeof err) < 0) {
        say("%s", err);
        l->rc = 1;
        finish(l);
        return 0;
    }
    l->learnt++;
    say("port '%s' is '%s' (saved); plug the phone into the next port, or type done", p->path, label);
    return 0;
}

static int on_line(void *arg, char *line)
{
    struct learn *l = arg;
    line[strcspn(line, "\r")] = '\0';
    if (l->finished)
        return 1;
    if (strcmp(line, "done") == 0) {
        finish(l);
    } else if (l->asking < 0) {
        say("waiting for a phone to be plugged into a port (or type done)");
    } else if (strcmp(line, "skip") == 0) {
        say("port '%s' skipped", l->ports[l->asking].path);
        l->asking = -1;
    } else if (assign(l, line[0] ? line : l->proposed) == 0) {
        l->asking = -1;
    } else {
        ask(l, l->asking);
    }
    return l->finished;
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *b)
{
    b->base = malloc(4096);
    b->len = b->base ? 4096 : 0;
}

static void on_read(uv_stream_t *st, ssize_t n, const uv_buf_t *b)
{
    struct learn *l = st->data;
    if (n < 0)
        finish(l); /* the end of input finishes, as done does */
    else if (fr_linebuf_feed(&l->lines, b->base, (size_t)n, on_line, l) < 0)
        say("input line too long; ignored");
    free(b->base);
}

static void on_sigint(uv_signal_t *h, int signum)
{
    finish(h->data);
}

static int open_stdin(struct learn *l)
{
    uv_handle_type t = uv_guess_handle(0);
    if (t == UV_TTY) {
        uv_tty_t *tty = malloc(sizeof *tty);
        if (!tty || uv_tty_init(l->loop, tty, 0, 1) < 0)
            return free(tty), -1;
        l->in = (uv_stream_t *)tty;
    } else if (t == UV_NAMED_PIPE) {
        uv_pipe_t *p = malloc(sizeof *p);
        if (!p || uv_pipe_init(l->loop, p, 0) < 0 || uv_pipe_open(p, 0) < 0)
            return free(p), -1;
        l->in = (uv_stream_t *)p;
    } else {
        return -1;
    }
    l->in->data = l;
    return uv_read_start(l->in, on_alloc, on_read) < 0 ? -1 : 0;
}

int rack_learn_run(uv_loop_t *loop, struct seams *seams, const char *map_path, const char *prefix)
{
    struct learn l = { .loop = loop, .seams = seams, .map_path = map_path, .prefix = prefix, .asking = -1 };
    char err[512];
    int rc = rackmap_load(map_path, &l.map, err, sizeof err);
    if (rc == FR_ENOTFOUND)
        l.map = rackmap_new();
    else if (rc < 0) {
        fprintf(stderr, "flashrack-agent: %s\n", err);
        return 2;
    } else
        say("extending the rack map '%s' (%zu ports labelled)", map_path, l.map->nports);
    fr_linebuf_init(&l.lines, 4096);
    if (open_stdin(&l) < 0) {
        fprintf(stderr, "flashrack-agent: rack learn: stdin must be a terminal or a pipe\n");
        rackmap_destroy(&l.map);
        return 2;
    }
    uv_signal_init(loop, &l.sigint);
    l.sigint.data = &l;
    uv_signal_start(&l.sigint, on_sigint, SIGINT);
    struct seam_events ev = { on_topology, on_attach, on_detach, on_attach, &l };
    if (seams->start(seams, loop, &ev, err, sizeof err) < 0) {
        fprintf(stderr, "flashrack-agent: %s\n", err);
        l.rc = 1;
        finish(&l);
    }
    uv_run(loop, UV_RUN_DEFAULT);
    free(l.in);
    free(l.ports);
    fr_linebuf_release(&l.lines);
    rackmap_destroy(&l.map);
    return l.rc;
}
