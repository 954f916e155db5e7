/* store_profile — the statement profile, a benchmark's tool: with FR_STORE_PROFILE=FILE in
 * flashrackd's environment, SQLite's profile callback sums each statement's runs and time,
 * and the store writes the sums to FILE when it closes, the costliest first. Without the
 * variable no callback is installed and nothing is counted. */
#include "store_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fr_log.h"

struct stmt_cost {
    sqlite3_stmt *st;  /* the store caches its statements: one per SQL text for its life */
    uint64_t runs, ns;
};

struct store_profile {
    char *path;
    struct stmt_cost *v;
    size_t n, cap;
};

static struct stmt_cost *cost_of(struct store_profile *p, sqlite3_stmt *st)
{
    for (size_t i = 0; i < p->n; i++)
        if (p->v[i].st == st)
            return &p->v[i];
    if (p->n == p->cap) {
        size_t cap = p->cap ? 2 * p->cap : 64;
        struct stmt_cost *v = realloc(p->v, cap * sizeof *v);
        if (!v)
            return NULL;
        p->v = v;
        p->cap = cap;
    }
    p->v[p->n] = (struct stmt_cost){ st, 0, 0 };
    return &p->v[p->n++];
}

static int on_trace(unsigned type, void *arg, void *stmt, void *x)
{
    struct stmt_cost *c = type == SQLITE_TRACE_PROFILE ? cost_of(arg, stmt) : NULL;
    if (c) {
        c->runs++;
        c->ns += (uint64_t)*(sqlite3_int64 *)x;
    }
    return 0;
}

void st_profile_start(struct store *s)
{
    const char *path = getenv("FR_STORE_PROFILE");
    if (!path || !*path)
        return;
    s->profile = calloc(1, sizeof *s->profile);
    if (s->profile && !(s->profile->path = strdup(path))) {
        free(s->profile);
        s->profile = NULL;
    }
    if (s->profile)
        sqlite3_trace_v2(s->db, SQLITE_TRACE_PROFILE, on_trace, s->profile);
}

static int by_time(const void *a, const void *b)
{
    const struct stmt_cost *x = a, *y = b;
    return x->ns < y->ns ? 1 : x->ns > y->ns ? -1 : 0;
}

/* Writes the sums (before the statements are finalized: their SQL is read here). */
void st_profile_finish(struct store *s)
{
    struct store_profile *p = s->profile;
    if (!p)
        return;
    sqlite3_trace_v2(s->db, 0, NULL, NULL);
    qsort(p->v, p->n, sizeof *p->v, by_time);
    FILE *f = fopen(p->path, "w");
    if (!f)
        fr_warn("store", "cannot write the statement profile to '%s'", p->path);
    for (size_t i = 0; f && i < p->n; i++)
        fprintf(f, "%10.3f s %9llu runs %9.3f ms/run  %s\n", p->v[i].ns / 1e9,
                (unsigned long long)p->v[i].runs,
                p->v[i].runs ? p->v[i].ns / 1e6 / (double)p->v[i].runs : 0.0,
                sqlite3_sql(p->v[i].st));
    if (f)
        fclose(f);
    free(p->v);
    free(p->path);
    free(p);
    s->profile = NULL;
}
