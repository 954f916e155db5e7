/* jscan — JSON text walked as text: the spans of an object's members and of an array's
 * elements, and a value printed re-indented as jansson's JSON_INDENT(2) prints it. It
 * reads no values (jansson does that); it lets the CLI print a page of the controller's
 * rows without building and dumping a jansson tree of them (proto/PROTOCOL.md "Pages").
 * The text must be the controller's compact JSON; a span that is not well nested (an
 * unterminated string, unbalanced or mismatched brackets, a stray character) is refused,
 * never read past. Spans point into the caller's text. */
#ifndef CLI_JSCAN_H
#define CLI_JSCAN_H

#include <stddef.h>
#include <stdio.h>

struct jspan {
    const char *p;
    size_t n;
};

/* One member of an object: its key as written (inside the quotes) and its value. */
struct jmember {
    struct jspan key, value;
};

/* The members of the object in text, in order, in a malloc'ed array (*n of them);
 * -1 when text is not one well-nested object. */
int jscan_members(struct jspan text, struct jmember **out, size_t *n);
/* The same into *buf (capacity *cap members, grown with realloc and kept by the caller
 * from object to object); *n is 0 when text is not one object (-1). */
int jscan_members_into(struct jspan text, struct jmember **buf, size_t *cap, size_t *n);
/* The member whose key is key (written without escapes), or -1 (none, or not an object). */
int jscan_member(struct jspan text, const char *key, struct jspan *value);
/* The same read only up to that member, with nothing collected: for an object already
 * checked as one value (a listing's row), where the rest need not be walked again. */
int jscan_find(struct jspan text, const char *key, struct jspan *value);
/* The elements of the array in text (malloc'ed, *n of them); -1 when it is not one. */
int jscan_elements(struct jspan text, struct jspan **out, size_t *n);
/* Whether value is the string s (s written without escapes). */
int jscan_is_string(struct jspan value, const char *s);
/* value re-indented as json_dumps(JSON_INDENT(2)) prints it nested depth levels deep
 * (its first line is not indented: the caller has placed it). */
void jscan_print_indented(FILE *out, struct jspan value, int depth);

#endif
