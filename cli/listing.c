/* listing — a paged document kept as its pages' text and its rows; see listing.h. */
#include "listing.h"

#include <stdlib.h>
#include <string.h>

#include "rows.h"

void listing_init(struct listing *l, const char *list)
{
    memset(l, 0, sizeof *l);
    l->list = list;
}

void listing_release(struct listing *l)
{
    for (size_t i = 0; i < l->npages; i++)
        free(l->texts[i]);
    free(l->texts);
    free(l->rows);
    listing_init(l, l->list);
}

static int key_is(const struct jmember *m, const char *key)
{
    return m->key.n == strlen(key) && !memcmp(m->key.p, key, m->key.n);
}

/* One walk of a page for its cursor and its list (listing_add's). */
char *listing_cursor(struct listing *l, const char *text)
{
    struct jmember *m = NULL;
    size_t n = 0;
    const struct jspan *v = NULL;
    l->scanned = NULL;
    if (jscan_members((struct jspan){ text, strlen(text) }, &m, &n) < 0)
        n = 0;
    for (size_t i = 0; i < n; i++) {
        if (!v && key_is(&m[i], "next"))
            v = &m[i].value;
        if (!l->scanned && key_is(&m[i], l->list)) {
            l->scanned = text;
            l->scanned_list = m[i].value;
        }
    }
    json_t *s = v ? json_loadb(v->p, v->n, JSON_DECODE_ANY, NULL) : NULL;
    /* no "next": a whole document, or not one at all: listing_add says which */
    char *next = !v ? strdup("") : json_is_string(s) ? strdup(json_string_value(s)) : NULL;
    json_decref(s);
    free(m);
    return next;
}

static int grow(struct listing *l, size_t more)
{
    if (l->nrows + more <= l->cap)
        return 0;
    size_t cap = l->cap ? l->cap : 1024;
    while (cap < l->nrows + more)
        cap *= 2;
    void *rows = realloc(l->rows, cap * sizeof *l->rows);
    if (!rows)
        return -1;
    l->rows = rows;
    l->cap = cap;
    return 0;
}

static int keep_page(struct listing *l, char *text)
{
    char **texts = realloc(l->texts, (l->npages + 1) * sizeof *texts);
    if (!texts)
        return -1;
    l->texts = texts;
    l->texts[l->npages++] = text;
    return 0;
}

int listing_add(struct listing *l, char *text, char *err, size_t errlen)
{
    struct jspan rows, *e = NULL;
    size_t n = 0;
    const char *why = NULL;
    if (l->scanned == text)
        rows = l->scanned_list;
    int listed = l->scanned == text || jscan_member((struct jspan){ text, strlen(text) }, l->list, &rows) == 0;
    l->scanned = NULL;
    if (!listed || jscan_elements(rows, &e, &n) < 0)
        why = "not a document holding its list";
    else if (grow(l, n) < 0 || keep_page(l, text) < 0)
        why = "out of memory";
    if (why) {
        snprintf(err, errlen, "the controller's page of %s is not JSON: %s", l->list, why);
        free(e);
        free(text);
        return -1;
    }
    if (n)
        memcpy(l->rows + l->nrows, e, n * sizeof *e);
    l->nrows += n;
    free(e);
    return 0;
}

int listing_sort(struct listing *l, const char *const *keys)
{
    return rows_sort_texts(l->rows, l->nrows, keys);
}

void listing_filter(struct listing *l, int (*keep)(struct rview *row, const void *arg), const void *arg)
{
    listing_filter_from(l, 0, keep, arg);
}

void listing_filter_from(struct listing *l, size_t from, int (*keep)(struct rview *row, const void *arg),
                         const void *arg)
{
    struct rview v;
    rview_init(&v);
    size_t kept = from;
    for (size_t i = from; i < l->nrows; i++) {
        rview_text(&v, l->rows[i]);
        if (keep(&v, arg))
            l->rows[kept++] = l->rows[i];
    }
    rview_release(&v);
    l->nrows = kept;
}

size_t listing_count(const struct listing *l, const char *key, const char *const *values)
{
    return rows_count_texts(l->rows, l->nrows, key, values);
}

/* The first page's members from member from on, but "next", printed as
 * json_dumps(JSON_INDENT(2)) prints them, up to the list's key (its value is the caller's:
 * returns 1 there) or to the end (0), counting them in l->shown. */
static int print_members(struct listing *l, size_t from, FILE *out)
{
    struct jmember *m = NULL;
    size_t n = 0;
    int at_list = 0;
    if (l->npages)
        jscan_members((struct jspan){ l->texts[0], strlen(l->texts[0]) }, &m, &n);
    for (size_t i = from; i < n && !at_list; i++) {
        if (key_is(&m[i], "next"))
            continue;
        fprintf(out, "%s\n  \"%.*s\": ", l->shown++ ? "," : "", (int)m[i].key.n, m[i].key.p);
        if ((at_list = key_is(&m[i], l->list)))
            l->after_list = i + 1;
        else
            jscan_print_indented(out, m[i].value, 1);
    }
    free(m);
    return at_list;
}

void listing_json_begin(struct listing *l, FILE *out)
{
    l->shown = l->printed = 0;
    fputc('{', out);
    l->in_list = print_members(l, 0, out);
}

void listing_json_rows(struct listing *l, size_t from, FILE *out)
{
    for (size_t i = from; l->in_list && i < l->nrows; i++) {
        fputs(l->printed++ ? ",\n    " : "[\n    ", out);
        jscan_print_indented(out, l->rows[i], 2);
    }
}

void listing_json_end(struct listing *l, FILE *out)
{
    if (l->in_list) {
        fputs(l->printed ? "\n  ]" : "[]", out);
        print_members(l, l->after_list, out);
    }
    fputs(l->shown ? "\n}\n" : "}\n", out);
    l->in_list = 0;
}

void listing_print_json(struct listing *l, FILE *out)
{
    listing_json_begin(l, out);
    listing_json_rows(l, 0, out);
    listing_json_end(l, out);
}

json_t *listing_head(const struct listing *l)
{
    struct jmember *m = NULL;
    size_t n = 0;
    json_t *doc = json_object();
    if (doc && l->npages && jscan_members((struct jspan){ l->texts[0], strlen(l->texts[0]) }, &m, &n) < 0)
        n = 0;
    for (size_t i = 0; doc && i < n; i++) {
        if (key_is(&m[i], "next") || key_is(&m[i], l->list))
            continue;
        char key[128];
        json_t *v = json_loadb(m[i].value.p, m[i].value.n, JSON_DECODE_ANY, NULL);
        snprintf(key, sizeof key, "%.*s", (int)m[i].key.n, m[i].key.p);
        if (!v || json_object_set_new(doc, key, v) < 0) {
            json_decref(doc);
            doc = NULL;
        }
    }
    free(m);
    return doc;
}

struct rview_src listing_rows(const struct listing *l)
{
    return rview_src_texts(l->rows, l->nrows);
}
