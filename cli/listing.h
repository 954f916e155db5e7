/* listing — a paged document (proto/PROTOCOL.md "Pages") as the CLI receives it, page by
 * page: the text of each page, kept while its rows point into it, and the rows of its
 * list in the order they are shown. With -o json the rows are printed from the
 * controller's own text, re-indented (jscan.h), so no jansson tree of them is built or
 * dumped; a page is parsed with jansson only when its rows must be read (a table, a
 * filter, the rack order). Not thread-safe; one listing per command. */
#ifndef CLI_LISTING_H
#define CLI_LISTING_H

#include <jansson.h>
#include <stdio.h>

#include "jscan.h"

struct listing_row {
    struct jspan text;
    json_t *obj; /* the parsed row (owned by its page's document), or NULL when not parsed */
};

struct listing {
    const char *list; /* the key of the paged list: "units", "runs", "ports" */
    int parse;        /* read each page's rows with jansson */
    char **texts;     /* every page's text, in order */
    json_t **docs;    /* every page parsed (NULL entries when not parse) */
    size_t npages;
    struct listing_row *rows;
    size_t nrows, cap;
};

void listing_init(struct listing *l, const char *list, int parse);
void listing_release(struct listing *l);
/* The cursor of the page after the one in text (its "next", decoded; malloc'ed): "" after
 * the last page, NULL when "next" is not a string. Read before the page's rows are. */
char *listing_cursor(const char *text);
/* Takes a page's text (freed with the listing, or here on an error); -1 with err set
 * when the page is not a document holding the list. */
int listing_add(struct listing *l, char *text, char *err, size_t errlen);
/* Rows in the order of the string fields keys (rows.h), read from their text. */
int listing_sort(struct listing *l, const char *const *keys);
/* Drops the rows keep() says no to (the rows must be parsed). */
void listing_filter(struct listing *l, int (*keep)(const json_t *row, const void *arg), const void *arg);
/* The rows whose string member key is one of values (NULL-terminated), read from their
 * text: parsed or not. */
size_t listing_count(const struct listing *l, const char *key, const char *const *values);
/* The document as one, as json_dumps(JSON_INDENT(2)) of the merged document would print
 * it: the first page's members in order with the list holding every row, no "next". */
void listing_print_json(const struct listing *l, FILE *out);
/* The same document as a jansson object for the renderers (the rows must be parsed);
 * the caller frees it. NULL when out of memory. */
json_t *listing_doc(const struct listing *l);

#endif
