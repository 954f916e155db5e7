/* jtext — JSON documents written as text, byte for byte as jansson dumps them; see
 * jtext.h. */
#include "jtext.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void jt_init(struct jtext *jt)
{
    memset(jt, 0, sizeof *jt);
    jt->first[0] = 1;
}

void jt_release(struct jtext *jt)
{
    free(jt->buf);
    jt_init(jt);
}

char *jt_take(struct jtext *jt)
{
    char *text = jt->failed ? NULL : jt->buf;
    if (text)
        text[jt->len] = '\0'; /* grow keeps a byte for it */
    if (!jt->failed && !text && !(text = calloc(1, 1)))
        jt->failed = 1;
    if (jt->failed)
        free(jt->buf);
    jt_init(jt);
    return text;
}

static int grow(struct jtext *jt, size_t more)
{
    if (jt->failed)
        return -1;
    if (jt->len + more + 1 <= jt->cap)
        return 0;
    size_t cap = jt->cap ? jt->cap : 4096;
    while (cap < jt->len + more + 1)
        cap *= 2;
    char *b = realloc(jt->buf, cap);
    if (!b) {
        jt->failed = 1;
        return -1;
    }
    jt->buf = b;
    jt->cap = cap;
    return 0;
}

/* The text is NUL-terminated only when taken: a put is a copy, nothing more. */
static inline void put(struct jtext *jt, const char *s, size_t n)
{
    if (jt->len + n + 1 <= jt->cap || grow(jt, n) == 0) {
        memcpy(jt->buf + jt->len, s, n);
        jt->len += n;
    }
}

static inline void putc_(struct jtext *jt, char ch)
{
    if (jt->len + 2 <= jt->cap || grow(jt, 1) == 0)
        jt->buf[jt->len++] = ch;
}

/* Before a value: the comma after the previous member of an array (an object's comma
 * comes before its key). */
static void value_at(struct jtext *jt, int is_key)
{
    if (jt->depth > 0 && !jt->first[jt->depth] && (is_key || !jt->after_key))
        putc_(jt, ',');
    jt->first[jt->depth] = 0;
    jt->after_key = is_key;
}

static void open_(struct jtext *jt, char ch)
{
    if (jt->depth + 1 >= JT_DEPTH)
        jt->failed = 1;
    if (jt->failed)
        return;
    value_at(jt, 0);
    putc_(jt, ch);
    jt->first[++jt->depth] = 1;
}

static void close_(struct jtext *jt, char ch)
{
    if (jt->depth > 0)
        jt->depth--;
    putc_(jt, ch);
}

void jt_obj(struct jtext *jt) { open_(jt, '{'); }
void jt_obj_end(struct jtext *jt) { close_(jt, '}'); }
void jt_arr(struct jtext *jt) { open_(jt, '['); }
void jt_arr_end(struct jtext *jt) { close_(jt, ']'); }

/* Whether any of the 8 bytes in w needs an escape: below 0x20, '"' or '\\' (the bit
 * tricks of "determine if a word has a byte less than n" and "has a byte equal to n"). */
static inline int needs_escape(uint64_t w)
{
    const uint64_t ones = 0x0101010101010101ull, highs = 0x8080808080808080ull;
    uint64_t q = w ^ (ones * '"'), b = w ^ (ones * '\\');
    return (((w - ones * 0x20) | (q - ones) | (b - ones)) & ~w & highs) != 0;
}

/* s quoted, escaped as jansson's dump escapes (no JSON_ENSURE_ASCII, no
 * JSON_ESCAPE_SLASH): the quote, the backslash and control characters; UTF-8 as is.
 * Eight bytes are checked at a time: most strings need no escape, and this was a fifth
 * of the cost of writing a report. */
static void quoted(struct jtext *jt, const char *s)
{
    size_t n = strlen(s), i = 0;
    putc_(jt, '"');
    while (i + 8 <= n) {
        uint64_t w;
        memcpy(&w, s + i, 8);
        if (needs_escape(w))
            break;
        i += 8;
    }
    const char *run = s;
    for (s += i; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch >= 0x20 && ch != '"' && ch != '\\')
            continue;
        put(jt, run, (size_t)(s - run));
        run = s + 1;
        char esc[8];
        switch (ch) {
        case '"': put(jt, "\\\"", 2); break;
        case '\\': put(jt, "\\\\", 2); break;
        case '\b': put(jt, "\\b", 2); break;
        case '\f': put(jt, "\\f", 2); break;
        case '\n': put(jt, "\\n", 2); break;
        case '\r': put(jt, "\\r", 2); break;
        case '\t': put(jt, "\\t", 2); break;
        default: snprintf(esc, sizeof esc, "\\u%04X", ch); put(jt, esc, 6); break;
        }
    }
    put(jt, run, (size_t)(s - run));
    putc_(jt, '"');
}

void jt_key(struct jtext *jt, const char *key)
{
    value_at(jt, 1);
    quoted(jt, key);
    putc_(jt, ':');
}

void jt_str(struct jtext *jt, const char *s)
{
    value_at(jt, 0);
    quoted(jt, s ? s : "");
}

/* v in decimal at the end of b[24] (as "%lld" prints it); returns where it starts. */
static char *decimal(char b[24], int64_t v)
{
    uint64_t u = v < 0 ? 0 - (uint64_t)v : (uint64_t)v;
    char *p = b + 24;
    do
        *--p = (char)('0' + u % 10);
    while (u /= 10);
    if (v < 0)
        *--p = '-';
    return p;
}

void jt_int(struct jtext *jt, int64_t v)
{
    char b[24], *p = decimal(b, v);
    value_at(jt, 0);
    put(jt, p, (size_t)(b + 24 - p));
}

#define JT_EXACT 1e15 /* below it, %.17g prints an integral double as its digits */

/* As jansson prints a real: %.17g, ".0" when that reads as an integer, and the
 * exponent without its '+' or leading zeros. A value JSON cannot hold is written 0.0
 * (jansson refuses to make one). */
void jt_real(struct jtext *jt, double v)
{
    if (v > -JT_EXACT && v < JT_EXACT && v == (double)(int64_t)v && (v != 0 || !signbit(v))) {
        jt_int(jt, (int64_t)v); /* the common case (a fraction of 1.0, 0.0) without %.17g */
        put(jt, ".0", 2);
        return;
    }
    char b[40];
    int n = isfinite(v) ? snprintf(b, sizeof b, "%.17g", v) : snprintf(b, sizeof b, "0");
    if (!strchr(b, '.') && !strchr(b, 'e'))
        n += snprintf(b + n, sizeof b - (size_t)n, ".0");
    char *e = strchr(b, 'e');
    if (e) {
        char *from = e + 1, *to = e + 1;
        if (*from == '-')
            from++, to++;
        else if (*from == '+')
            from++;
        while (*from == '0')
            from++;
        memmove(to, from, strlen(from) + 1);
        n = (int)strlen(b);
    }
    value_at(jt, 0);
    put(jt, b, (size_t)n);
}

void jt_bool(struct jtext *jt, int v)
{
    value_at(jt, 0);
    put(jt, v ? "true" : "false", v ? 4 : 5);
}

void jt_raw(struct jtext *jt, const char *text)
{
    value_at(jt, 0);
    put(jt, text, strlen(text));
}

void jt_json(struct jtext *jt, const json_t *v)
{
    char *text = v ? json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
    if (v && !text)
        jt->failed = 1;
    jt_raw(jt, text ? text : "null");
    free(text);
}

void jt_kstr(struct jtext *jt, const char *key, const char *s)
{
    jt_key(jt, key);
    jt_str(jt, s);
}

void jt_kint(struct jtext *jt, const char *key, int64_t v)
{
    jt_key(jt, key);
    jt_int(jt, v);
}

void jt_kreal(struct jtext *jt, const char *key, double v)
{
    jt_key(jt, key);
    jt_real(jt, v);
}

void jt_kbool(struct jtext *jt, const char *key, int v)
{
    jt_key(jt, key);
    jt_bool(jt, v);
}
