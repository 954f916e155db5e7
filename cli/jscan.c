/* jscan — JSON text walked as text (spans, re-indenting); see jscan.h. */
#include "jscan.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static int space(char ch)
{
    return ch == ' ' || ch == '\n' || ch == '\t' || ch == '\r';
}

static int scalar_char(char ch)
{
    return (ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'z') || ch == '-' || ch == '+' || ch == '.' ||
           (ch >= 'A' && ch <= 'Z');
}

static const char *skip_space(const char *p, const char *end)
{
    while (p < end && space(*p))
        p++;
    return p;
}

/* past the string whose '"' is at p, or NULL: the first quote after it that an even run
 * of backslashes (or none) precedes closes it */
static const char *skip_string(const char *p, const char *end)
{
    const char *start = ++p;
    while (p < end && (p = memchr(p, '"', (size_t)(end - p)))) {
        const char *b = p;
        while (b > start && b[-1] == '\\')
            b--;
        if ((p - b) % 2 == 0)
            return p + 1;
        p++;
    }
    return NULL;
}

#define DEPTH_MAX 63 /* a bit per level of what is open: 1 an object, 0 an array */

/* past the value at p (after spaces), or NULL when it is not one well-nested value */
static const char *skip_value(const char *p, const char *end)
{
    uint64_t objects = 0;
    int depth = 0;
    p = skip_space(p, end);
    do {
        if (p >= end)
            return NULL;
        char ch = *p;
        if (ch == '"') {
            if (!(p = skip_string(p, end)))
                return NULL;
        } else if (ch == '{' || ch == '[') {
            if (depth == DEPTH_MAX)
                return NULL;
            objects = objects << 1 | (ch == '{');
            depth++;
            p++;
        } else if (ch == '}' || ch == ']') {
            if (depth == 0 || (int)(objects & 1) != (ch == '}'))
                return NULL;
            objects >>= 1;
            depth--;
            p++;
        } else if ((ch == ',' || ch == ':' || space(ch)) && depth > 0) {
            p++;
        } else if (scalar_char(ch)) {
            while (p < end && scalar_char(*p))
                p++;
        } else {
            return NULL;
        }
    } while (depth > 0);
    return p;
}

/* The items of the container in text opening with open ('{': members key:value, '['
 * elements), each handed to item; -1 when it is not one. item returns 0 to go on, -1 to
 * fail, 1 to stop there (items then returns 1, the rest unread). */
static int items(struct jspan text, char open, int (*item)(void *arg, struct jspan key, struct jspan value),
                 void *arg)
{
    const char *end = text.p + text.n, *p = skip_space(text.p, end);
    if (p >= end || *p != open)
        return -1;
    /* one walk: each value is skipped (and checked) once, every step bounded by end */
    char close = open == '{' ? '}' : ']';
    p = skip_space(p + 1, end);
    if (p < end && *p == close)
        return skip_space(p + 1, end) == end ? 0 : -1;
    for (;;) {
        struct jspan key = { NULL, 0 };
        if (open == '{') {
            const char *k = p;
            if (p >= end || *p != '"' || !(p = skip_string(p, end)))
                return -1;
            key = (struct jspan){ k + 1, (size_t)(p - k - 2) };
            p = skip_space(p, end);
            if (p >= end || *p != ':')
                return -1;
            p = skip_space(p + 1, end);
        }
        const char *v = p;
        if (!(p = skip_value(p, end)))
            return -1;
        int stop = item(arg, key, (struct jspan){ v, (size_t)(p - v) });
        if (stop)
            return stop < 0 ? -1 : 1;
        p = skip_space(p, end);
        if (p < end && *p == ',')
            p = skip_space(p + 1, end);
        else if (p < end && *p == close)
            return skip_space(p + 1, end) == end ? 0 : -1;
        else
            return -1;
    }
}

struct collect {
    void *v;
    size_t n, cap, size;
};

static int collect_one(struct collect *c, const void *item)
{
    if (c->n == c->cap) {
        size_t cap = c->cap ? 2 * c->cap : 64;
        void *v = realloc(c->v, cap * c->size);
        if (!v)
            return -1;
        c->v = v;
        c->cap = cap;
    }
    memcpy((char *)c->v + c->n++ * c->size, item, c->size);
    return 0;
}

static int add_member(void *arg, struct jspan key, struct jspan value)
{
    struct jmember m = { key, value };
    return collect_one(arg, &m);
}

static int add_element(void *arg, struct jspan key, struct jspan value)
{
    (void)key;
    return collect_one(arg, &value);
}

int jscan_members(struct jspan text, struct jmember **out, size_t *n)
{
    struct collect c = { NULL, 0, 0, sizeof **out };
    if (items(text, '{', add_member, &c) < 0) {
        free(c.v);
        return -1;
    }
    *out = c.v;
    *n = c.n;
    return 0;
}

int jscan_members_into(struct jspan text, struct jmember **buf, size_t *cap, size_t *n)
{
    struct collect c = { *buf, 0, *cap, sizeof **buf };
    int rc = items(text, '{', add_member, &c);
    *buf = c.v;
    *cap = c.cap;
    *n = rc < 0 ? 0 : c.n;
    return rc;
}

int jscan_elements(struct jspan text, struct jspan **out, size_t *n)
{
    struct collect c = { NULL, 0, 0, sizeof **out };
    if (items(text, '[', add_element, &c) < 0) {
        free(c.v);
        return -1;
    }
    *out = c.v;
    *n = c.n;
    return 0;
}

int jscan_is_string(struct jspan value, const char *s)
{
    size_t n = strlen(s);
    return value.n == n + 2 && value.p[0] == '"' && !memcmp(value.p + 1, s, n) && value.p[n + 1] == '"';
}

int jscan_member(struct jspan text, const char *key, struct jspan *value)
{
    struct jmember *m;
    size_t n;
    if (jscan_members(text, &m, &n) < 0)
        return -1;
    int found = -1;
    for (size_t i = 0; i < n && found < 0; i++)
        if (m[i].key.n == strlen(key) && !memcmp(m[i].key.p, key, m[i].key.n)) {
            *value = m[i].value;
            found = 0;
        }
    free(m);
    return found;
}

struct find {
    const char *key;
    size_t n;
    struct jspan *value;
};

static int found(void *arg, struct jspan key, struct jspan value)
{
    struct find *f = arg;
    if (key.n != f->n || memcmp(key.p, f->key, f->n))
        return 0;
    *f->value = value;
    return 1;
}

int jscan_find(struct jspan text, const char *key, struct jspan *value)
{
    struct find f = { key, strlen(key), value };
    return items(text, '{', found, &f) == 1 ? 0 : -1;
}

/* Output gathered in a block and written with one call: a call into stdio per token (a
 * report's 9.7 MB are a million and more) cost the CLI about a tenth of its CPU. */
struct out_block {
    FILE *out;
    size_t n;
    char b[16384];
};

static void block_flush(struct out_block *o)
{
    if (o->n)
        fwrite_unlocked(o->b, 1, o->n, o->out);
    o->n = 0;
}

static void block_put(struct out_block *o, const char *p, size_t n)
{
    if (o->n + n > sizeof o->b) {
        block_flush(o);
        if (n > sizeof o->b) {
            fwrite_unlocked(p, 1, n, o->out);
            return;
        }
    }
    memcpy(o->b + o->n, p, n);
    o->n += n;
}

static void newline(struct out_block *o, int depth)
{
    static const char spaces[] = "\n                                                               ";
    block_put(o, spaces, 1);
    for (int n = 2 * depth; n > 0; n -= (int)sizeof spaces - 2)
        block_put(o, spaces + 1, n < (int)sizeof spaces - 2 ? (size_t)n : sizeof spaces - 2);
}

/* jansson's indented form: a newline and two spaces a level after an opening bracket and
 * after each comma, before a closing one; ": " after a key; "{}" and "[]" when empty. */
void jscan_print_indented(FILE *out, struct jspan value, int depth)
{
    struct out_block o;
    o.out = out;
    o.n = 0;
    const char *p = value.p, *end = value.p + value.n;
    while (p < end) {
        const char *run = p;
        if (*p == '"') {
            p = skip_string(p, end);
            p = p ? p : end;
        } else {
            while (p < end && scalar_char(*p))
                p++;
        }
        if (p > run) {
            block_put(&o, run, (size_t)(p - run));
            continue;
        }
        char ch = *p++;
        if (ch == '{' || ch == '[') {
            const char *next = skip_space(p, end);
            block_put(&o, &ch, 1);
            if (next < end && *next == (ch == '{' ? '}' : ']')) {
                block_put(&o, next, 1);
                p = next + 1;
            } else {
                newline(&o, ++depth);
            }
        } else if (ch == '}' || ch == ']') {
            newline(&o, --depth);
            block_put(&o, &ch, 1);
        } else if (ch == ',') {
            block_put(&o, ",", 1);
            newline(&o, depth);
        } else if (ch == ':') {
            block_put(&o, ": ", 2);
        }
    }
    block_flush(&o);
}
