/* page_bench — what one refresh of the rack page costs in tiles at a large site.
 *
 * Builds the two documents the page reads (the ports document and the watch document,
 * in the shapes controller/store_docs.c gives them) for AGENTS x PORTS ports, hubs of 7
 * ports as a 7-port hub chain gives, one unit and one live run on every port and
 * OLD earlier ended runs per port (a depot's day: earlier trays), then times page_tiles
 * over them, the median of RUNS. The store reads that come before are not included:
 * bench/cli_bench.py measures those documents.
 *
 *   page_bench [AGENTS [PORTS [OLD [RUNS]]]]      defaults 200 50 1 5 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "page_tiles.h"

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static void site(int agents, int ports, int old, json_t **ports_doc, json_t **watch_doc)
{
    json_t *pl = json_array(), *runs = json_array();
    for (int a = 0; a < agents; a++)
        for (int p = 0; p < ports; p++) {
            char agent[16], path[32], label[16], hub[32], ecid[24];
            snprintf(agent, sizeof agent, "ag%03d", a);
            snprintf(hub, sizeof hub, "1-%d", 1 + p / 7);
            snprintf(path, sizeof path, "1-%d.%d", 1 + p / 7, 1 + p % 7);
            snprintf(label, sizeof label, "%c-%02d", 'A' + a % 26, p + 1);
            snprintf(ecid, sizeof ecid, "0x%016llX", 0x100000ULL + (unsigned long long)(a * ports + p));
            json_array_append_new(pl, json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:i}", "agent", agent,
                                                "path", path, "label", label, "hub", hub, "state",
                                                "ok", "ecid", ecid, "strikes", 0));
            for (int k = 0; k <= old; k++) {
                char e[24];
                snprintf(e, sizeof e, "0x%016llX", k == old ? 0x100000ULL + (unsigned long long)(a * ports + p)
                                                            : 0x900000ULL + (unsigned long long)((a * ports + p) * 8 + k));
                json_array_append_new(runs, json_pack("{s:s, s:s, s:s, s:s, s:s, s:f, s:i, s:s, s:s}",
                                                      "agent", agent, "port", path, "ecid", e, "state",
                                                      k == old ? "restoring" : "done", "product_type",
                                                      "iPhone12,1", "fraction", 0.5, "attempt", 1,
                                                      "error", "", "error_class", ""));
            }
        }
    *ports_doc = json_pack("{s:o}", "ports", pl);
    *watch_doc = json_pack("{s:o, s:[], s:[]}", "runs", runs, "moves", "jobs");
}

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
    int agents = argc > 1 ? atoi(argv[1]) : 200, ports = argc > 2 ? atoi(argv[2]) : 50;
    int old = argc > 3 ? atoi(argv[3]) : 1, n = argc > 4 ? atoi(argv[4]) : 5;
    if (agents < 1 || ports < 1 || old < 0 || n < 1 || n > 99) {
        fprintf(stderr, "usage: page_bench [AGENTS [PORTS [OLD_RUNS_PER_PORT [RUNS]]]] (1..99 runs)\n");
        return 2;
    }
    json_t *pd, *wd;
    site(agents, ports, old, &pd, &wd);
    double t[99];
    size_t tiles = 0;
    for (int i = 0; i < n; i++) {
        double t0 = now_ms();
        json_t *doc = page_tiles(pd, wd);
        t[i] = now_ms() - t0;
        tiles = 0;
        size_t j;
        json_t *h;
        json_array_foreach(json_object_get(doc, "hubs"), j, h)
            tiles += json_array_size(json_object_get(h, "tiles"));
        json_decref(doc);
    }
    qsort(t, (size_t)n, sizeof t[0], cmp);
    printf("page_tiles: %d ports, %zu runs -> %zu tiles: median %.1f ms, max %.1f ms (%d runs)\n",
           agents * ports, json_array_size(json_object_get(wd, "runs")), tiles, t[n / 2], t[n - 1], n);
    json_decref(pd);
    json_decref(wd);
    return 0;
}
