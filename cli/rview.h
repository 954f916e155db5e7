/* rview — one row of a document as the renderers read it: from a jansson object, or
 * straight from the row's JSON text as the controller wrote it (jscan.h), so a table of
 * 10,000 rows needs no jansson tree of them (proto/PROTOCOL.md "Pages"). A field reads the
 * same either way: the value jansson would decode (a string with escapes is decoded by
 * jansson itself; a number with a fraction or exponent is a real, else an integer).
 * An rview is reused from row to row (its buffers are kept); not thread-safe. */
#ifndef CLI_RVIEW_H
#define CLI_RVIEW_H

#include <jansson.h>
#include <stddef.h>

#include "jscan.h"

enum rval_type { RVAL_NONE, RVAL_STRING, RVAL_INTEGER, RVAL_REAL, RVAL_TRUE, RVAL_FALSE, RVAL_NULL, RVAL_OTHER };

/* One field's value. s: a string's decoded bytes (NUL-terminated, valid while the row
 * is); i, d: a number (an integer's d is its value too); an object or array is OTHER,
 * with its text in span (from text) or itself in obj (from jansson). */
struct rval {
    enum rval_type type;
    const char *s;
    long long i;
    double d;
    struct jspan span;
    const json_t *obj;
};

struct rview {
    const json_t *obj; /* the row parsed, or NULL: read from its text */
    struct jmember *m; /* the text's members (capacity mcap) */
    size_t n, mcap;
    const char **strs; /* each member's decoded string once read, or NULL */
    char *arena;       /* where decoded strings live: never more bytes than the text */
    size_t used, acap;
};

/* A jansson value as a field's value (NULL: RVAL_NONE). */
struct rval rval_json(const json_t *j);

void rview_init(struct rview *v);
void rview_release(struct rview *v);
/* The row in obj (an object; anything else reads as a row without fields). */
void rview_obj(struct rview *v, const json_t *obj);
/* The row in text (compact JSON, kept by the caller while the row is read); -1 when it is
 * not one object (then it reads as a row without fields). */
int rview_text(struct rview *v, struct jspan text);
/* The field key (written without escapes); RVAL_NONE when the row has none. */
struct rval rview_get(struct rview *v, const char *key);
/* The string field key, or NULL when it is missing or not a string. */
const char *rview_str(struct rview *v, const char *key);

/* The rows of a list: a jansson array, or spans of text (a listing's rows, or the
 * elements of a nested array read from text, which rview_src_of allocates). */
struct rview_src {
    const json_t *list;
    const struct jspan *texts;
    size_t n;
    struct jspan *owned;
};

struct rview_src rview_src_json(const json_t *list);
struct rview_src rview_src_texts(const struct jspan *texts, size_t n);
/* The array a field holds (none: no rows); release it with rview_src_release. */
struct rview_src rview_src_of(struct rval value);
void rview_src_release(struct rview_src *s);
/* Row i of s into v. */
void rview_src_row(const struct rview_src *s, size_t i, struct rview *v);

#endif
