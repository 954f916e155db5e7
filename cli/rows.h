/* rows — the order people read a document's rows in. The controller sends a paged list
 * in the order an index of its store serves (proto/PROTOCOL.md "Pages"): units and a
 * job's runs by ECID; the CLI shows them by port, as they sit on the rack. */
#ifndef CLI_ROWS_H
#define CLI_ROWS_H

#include <jansson.h>
#include <stddef.h>

#include "jscan.h"

#define ROWS_KEYS_MAX 4 /* the most string fields an order compares */

/* Sorts list's rows (objects) by the string fields named in keys (NULL-terminated, at
 * most ROWS_KEYS_MAX), compared bytewise, the first key first; a missing field sorts as
 * "", rows that tie keep their order. Left as it was when out of memory. */
void rows_sort(json_t *list, const char *const *keys);
/* One sort key of a row: a string of n bytes (compared bytewise; a shorter prefix first). */
struct rows_key {
    const char *p;
    size_t n;
};
/* The same order for rows 0..n-1 from the keys get() gives (the key-th key of row, left ""
 * when it has none; non-zero when out of memory): order[i] is the row shown i-th. One
 * sort serves parsed rows (rows_sort) and rows read as text (listing.h). */
int rows_order_keys(size_t n, int (*get)(void *arg, size_t row, size_t key, struct rows_key *k), void *arg,
                    size_t *order);
/* The same order for rows given as their JSON text (each an object), by string fields
 * read from the text (a string with an escape decoded by jansson); the spans are
 * reordered in place. Non-zero when out of memory (left as they were). */
int rows_sort_texts(struct jspan *rows, size_t n, const char *const *keys);
/* The rows (text) whose string member key is one of values (NULL-terminated). */
size_t rows_count_texts(const struct jspan *rows, size_t n, const char *key, const char *const *values);
/* The rack order of units and runs: agent, label, ECID. */
extern const char *const rows_by_port[];

#endif
