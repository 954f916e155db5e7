/* test_rack_learn — `rack learn` when the USB tree changes mid-session (a hub comes or
 * goes): the port being asked about is still asked about when it is in the new tree, and
 * its answer labels it; when it left with its hub the session says so and goes on with
 * the next phone. rack_learn_run is driven whole: a scripted seams backend reports trees
 * and attaches, the answers go in through a pipe on stdin, the prompts are read back
 * from stdout redirected to a file. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <uv.h>

#include "rack_learn.h"

/* One step of the script: a tree (paths, NULL-terminated), an attach, or a line typed. */
struct step {
    enum { TREE, ATTACH, LINE } kind;
    const char *const *paths;
    const char *text;
};

struct script {
    struct seams s;
    const struct seam_events *ev;
    const struct step *steps;
    size_t n, next;
    int typing; /* the write end of stdin's pipe, -1 once closed */
    uv_idle_t idle;
};

static void tree(struct script *sc, const char *const *paths)
{
    struct port_desc pd[8];
    size_t n = 0;
    memset(pd, 0, sizeof pd);
    for (; paths[n]; n++) {
        snprintf(pd[n].path, sizeof pd[n].path, "%s", paths[n]);
        snprintf(pd[n].hub, sizeof pd[n].hub, "%s", strchr(paths[n], '.') ? "added" : "root");
        pd[n].bus = 1;
    }
    sc->ev->topology(sc->ev->arg, pd, n);
}

static void attach(struct script *sc, const char *path)
{
    struct unit_desc u = { .ecid = 0x000A1B2C3D4E5F60ull, .mode = 1 };
    snprintf(u.path, sizeof u.path, "%s", path);
    sc->ev->attach(sc->ev->arg, &u);
}

static void type(struct script *sc, const char *text)
{
    char line[64];
    int n = snprintf(line, sizeof line, "%s\n", text);
    assert_int_equal(write(sc->typing, line, (size_t)n), n);
}

/* A step per turn of the loop: a line typed is read (the poll comes after the idle
 * handles) before the next step. After the last, stdin ends. */
static void on_idle(uv_idle_t *h)
{
    struct script *sc = h->data;
    if (sc->next == sc->n) {
        uv_idle_stop(h);
        close(sc->typing);
        sc->typing = -1;
        return;
    }
    const struct step *st = &sc->steps[sc->next++];
    if (st->kind == TREE)
        tree(sc, st->paths);
    else if (st->kind == ATTACH)
        attach(sc, st->text);
    else
        type(sc, st->text);
}

static int script_start(struct seams *s, uv_loop_t *loop, const struct seam_events *ev, char *err,
                        size_t errlen)
{
    struct script *sc = s->impl;
    sc->ev = ev;
    uv_idle_init(loop, &sc->idle);
    sc->idle.data = sc;
    return uv_idle_start(&sc->idle, on_idle);
}

static void script_close(struct seams *s, void (*cb)(struct seams *s))
{
    struct script *sc = s->impl;
    if (!uv_is_closing((uv_handle_t *)&sc->idle))
        uv_close((uv_handle_t *)&sc->idle, NULL);
}

/* Runs a session over the script with the map at map_path; its stdout into text. */
static void run(const struct step *steps, size_t n, const char *map_path, char *text, size_t len)
{
    struct script sc = { .steps = steps, .n = n };
    sc.s.name = "script";
    sc.s.start = script_start;
    sc.s.close = script_close;
    sc.s.impl = &sc;
    int in[2], saved_in = dup(0), saved_out = dup(1);
    char out_path[] = "/tmp/fr-test-rack-learn-out-XXXXXX";
    int out = mkstemp(out_path);
    assert_true(out >= 0 && saved_in >= 0 && saved_out >= 0);
    assert_int_equal(pipe(in), 0);
    dup2(in[0], 0);
    close(in[0]);
    sc.typing = in[1];
    fflush(stdout);
    dup2(out, 1);
    uv_loop_t loop;
    uv_loop_init(&loop);
    assert_int_equal(rack_learn_run(&loop, &sc.s, map_path, "S-"), 0);
    fflush(stdout);
    dup2(saved_out, 1);
    dup2(saved_in, 0);
    close(saved_out);
    close(saved_in);
    if (sc.typing >= 0)
        close(sc.typing);
    assert_int_equal(uv_loop_close(&loop), 0);
    FILE *f = fdopen(out, "r");
    assert_non_null(f);
    rewind(f);
    text[fread(text, 1, len - 1, f)] = '\0';
    fclose(f);
    unlink(out_path);
}

/* The lines of text from the first with want[0], each next one after it; fails naming
 * the first missing. */
static void expect_in_order(const char *text, const char *const *want)
{
    const char *at = text;
    for (; *want; want++) {
        const char *hit = strstr(at, *want);
        if (!hit)
            fail_msg("no '%s' after: %s\n--- whole output:\n%s", *want, at, text);
        at = hit + strlen(*want);
    }
}

/* A session over the script on a new map in a temporary directory: its stdout into out,
 * the map it wrote into map; the directory is removed. */
static void session(const struct step *steps, size_t n, char *out, size_t outlen, char *map,
                    size_t maplen)
{
    char dir[] = "/tmp/fr-test-rack-learn-XXXXXX", path[64];
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/rack-map.ini", dir);
    run(steps, n, path, out, outlen);
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    map[fread(map, 1, maplen - 1, f)] = '\0';
    fclose(f);
    unlink(path);
    rmdir(dir);
}

static const char *const TWO[] = { "1-1", "1-2", NULL };
static const char *const TWO_AND_HUB[] = { "1-1", "1-2", "1-3.1", "1-3.2", NULL };
static const char *const ONE[] = { "1-1", NULL };

/* A hub comes while port 1-2 is asked about: 1-2 is in the new tree, so it is asked
 * about again, and Enter labels it. */
static void the_port_asked_about_is_kept_when_a_hub_comes(void **state)
{
    const struct step steps[] = {
        { TREE, TWO, NULL }, { ATTACH, NULL, "1-2" }, { TREE, TWO_AND_HUB, NULL },
        { LINE, NULL, "" }, { ATTACH, NULL, "1-3.2" }, { LINE, NULL, "" }, { LINE, NULL, "done" },
    };
    char out[8192], m[4096];
    session(steps, sizeof steps / sizeof *steps, out, sizeof out, m, sizeof m);
    expect_in_order(out, (const char *const[]){
        "2 ports on this host; plug a phone into the first port to label",
        "port '1-2' (hub 'root'): label? [S-01]",
        "the USB tree changed: 4 ports on this host (2 before)",
        "port '1-2' (hub 'root'): label? [S-01]",  /* before the fix: forgotten */
        "port '1-2' is 'S-01' (saved)",
        "port '1-3.2' (hub 'added'): label? [S-02]",
        "port '1-3.2' is 'S-02' (saved)",
        "2 ports labelled", NULL });
    assert_null(strstr(out, "waiting for a phone"));
    assert_non_null(strstr(m, "S-01 = 1-2\nS-02 = 1-3.2\n"));
}

/* A hub goes while its port 1-3.2 is asked about: the session says the port is gone and
 * waits for the next phone; the answer typed meanwhile labels nothing. */
static void a_port_gone_with_its_hub_is_no_longer_asked_about(void **state)
{
    const struct step steps[] = {
        { TREE, TWO_AND_HUB, NULL }, { ATTACH, NULL, "1-3.2" }, { TREE, ONE, NULL },
        { LINE, NULL, "" }, { ATTACH, NULL, "1-1" }, { LINE, NULL, "" }, { LINE, NULL, "done" },
    };
    char out[8192], m[4096];
    session(steps, sizeof steps / sizeof *steps, out, sizeof out, m, sizeof m);
    expect_in_order(out, (const char *const[]){
        "port '1-3.2' (hub 'added'): label? [S-01]",
        "the USB tree changed: 1 port on this host (4 before)",
        "port '1-3.2' is no longer on this host (its hub went) and was not labelled; "
        "plug the phone into the next port to label (or type done)",
        "waiting for a phone to be plugged into a port",
        "port '1-1' (hub 'root'): label? [S-01]",
        "port '1-1' is 'S-01' (saved)",
        "1 port labelled", NULL });
    assert_non_null(strstr(m, "S-01 = 1-1\n"));
    assert_null(strstr(m, "1-3.2"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(the_port_asked_about_is_kept_when_a_hub_comes),
        cmocka_unit_test(a_port_gone_with_its_hub_is_no_longer_asked_about),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
