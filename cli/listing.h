/* listing — a paged document (proto/PROTOCOL.md "Pages") as the CLI receives it, page by
 * page: the text of each page, kept while its rows point into it, and the rows of its
 * list in the order they are shown. No jansson tree of the rows is ever built: -o json
 * prints them from the controller's own text, re-indented (jscan.h), and the tables,
 * CSV and filters read each row's fields from that text (rview.h). Not thread-safe; one
 * listing per command. */
#ifndef CLI_LISTING_H
#define CLI_LISTING_H

#include <jansson.h>
#include <stdio.h>

#include "jscan.h"
#include "rview.h"

struct listing {
    const char *list;   /* the key of the paged list: "units", "runs", "ports" */
    char **texts;       /* every page's text, in order */
    size_t npages;
    struct jspan *rows; /* each row's text, in the order shown */
    size_t nrows, cap;
    /* -o json as it is printed: members and rows printed, whether the list is open, the
     * first page's member after it */
    size_t shown, printed, after_list;
    int in_list;
    /* the page listing_cursor read last and its list, so that listing_add does not walk
     * the page again (NULL: none, or it holds no list) */
    const char *scanned;
    struct jspan scanned_list;
};

void listing_init(struct listing *l, const char *list);
void listing_release(struct listing *l);
/* The cursor of the page after the one in text (its "next", decoded; malloc'ed): "" after
 * the last page, NULL when "next" is not a string. Read before the page's rows are (by
 * listing_add of the same text, which then uses what this walk found). */
char *listing_cursor(struct listing *l, const char *text);
/* Takes a page's text (freed with the listing, or here on an error); -1 with err set
 * when the page is not a document holding the list. */
int listing_add(struct listing *l, char *text, char *err, size_t errlen);
/* Rows in the order of the string fields keys (rows.h), read from their text. */
int listing_sort(struct listing *l, const char *const *keys);
/* Drops the rows keep() says no to (each row read from its text). */
void listing_filter(struct listing *l, int (*keep)(struct rview *row, const void *arg), const void *arg);
/* The same for the rows from row from on (a page just added). */
void listing_filter_from(struct listing *l, size_t from, int (*keep)(struct rview *row, const void *arg),
                         const void *arg);
/* The rows whose string member key is one of values (NULL-terminated), read from their
 * text. */
size_t listing_count(const struct listing *l, const char *key, const char *const *values);
/* The document as one, as json_dumps(JSON_INDENT(2)) of the merged document would print
 * it: the first page's members in order with the list holding every row, no "next". */
void listing_print_json(struct listing *l, FILE *out);
/* The same printed as the pages come, for a list served in the order it is shown: begin
 * after the first page is added (the members before the list), rows after each page (its
 * rows, from row from on), end after the last (the members after the list). */
void listing_json_begin(struct listing *l, FILE *out);
void listing_json_rows(struct listing *l, size_t from, FILE *out);
void listing_json_end(struct listing *l, FILE *out);
/* The rest of the document for the renderers: the first page's members but the list and
 * "next", parsed (the caller frees it). NULL when they do not read as JSON or out of memory. */
json_t *listing_head(const struct listing *l);
/* The rows, in their order, for the renderers (valid while the listing is unchanged). */
struct rview_src listing_rows(const struct listing *l);

#endif
