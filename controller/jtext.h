/* jtext — JSON documents written as text, without a jansson tree: a growable buffer
 * that writes objects, arrays, keys and values in order. Its bytes are those of
 * json_dumps(JSON_COMPACT) of the same values built with jansson (strings escaped as
 * jansson escapes them, integers and reals printed as it prints them), so a reader
 * cannot tell the two apart; it exists because building and freeing a jansson object
 * per row was most of the cost of a page of 1,000 rows. One writer belongs to one
 * caller; it is not thread-safe. */
#ifndef CONTROLLER_JTEXT_H
#define CONTROLLER_JTEXT_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#define JT_DEPTH 16 /* the deepest nesting a document written here has */

struct jtext {
    char *buf;
    size_t len, cap;
    int depth;
    unsigned char first[JT_DEPTH]; /* no member written yet at this depth */
    int after_key;                 /* a key was written last: its value takes no comma */
    int failed;                    /* out of memory, or nested too deep: the text is lost */
};

/* An empty writer (nothing allocated until something is written). */
void jt_init(struct jtext *jt);
void jt_release(struct jtext *jt);
/* The text written so far, NUL-terminated, handed to the caller (free it); NULL when
 * the writer failed. The writer is empty again after. */
char *jt_take(struct jtext *jt);

void jt_obj(struct jtext *jt);
void jt_obj_end(struct jtext *jt);
void jt_arr(struct jtext *jt);
void jt_arr_end(struct jtext *jt);
/* A member's key, in an object (its value follows). */
void jt_key(struct jtext *jt, const char *key);

void jt_str(struct jtext *jt, const char *s);
void jt_int(struct jtext *jt, int64_t v);
void jt_real(struct jtext *jt, double v);
void jt_bool(struct jtext *jt, int v);
/* v dumped compactly (a jansson value written into the text; NULL writes null). */
void jt_json(struct jtext *jt, const json_t *v);
/* text that is already one compact JSON value (e.g. SQLite's json_group_array). */
void jt_raw(struct jtext *jt, const char *text);

/* key and value at once */
void jt_kstr(struct jtext *jt, const char *key, const char *s);
void jt_kint(struct jtext *jt, const char *key, int64_t v);
void jt_kreal(struct jtext *jt, const char *key, double v);
void jt_kbool(struct jtext *jt, const char *key, int v);

#endif
