/* rview — a row's fields from jansson or from its text; see rview.h. */
#include "rview.h"

#include <stdlib.h>
#include <string.h>

void rview_init(struct rview *v)
{
    memset(v, 0, sizeof *v);
}

void rview_release(struct rview *v)
{
    free(v->m);
    free(v->strs);
    free(v->arena);
    rview_init(v);
}

void rview_obj(struct rview *v, const json_t *obj)
{
    v->obj = json_is_object(obj) ? obj : NULL;
    v->n = 0;
    v->used = 0;
}

/* Room for the decoded strings of a text of n bytes, and a slot per member. */
static int reserve(struct rview *v, size_t textlen)
{
    if (v->acap < textlen + 1) {
        char *a = realloc(v->arena, textlen + 1);
        if (!a)
            return -1;
        v->arena = a;
        v->acap = textlen + 1;
    }
    const char **strs = realloc(v->strs, (v->mcap ? v->mcap : 1) * sizeof *strs);
    if (!strs)
        return -1;
    v->strs = strs;
    return 0;
}

int rview_text(struct rview *v, struct jspan text)
{
    v->obj = NULL;
    v->used = 0;
    if (jscan_members_into(text, &v->m, &v->mcap, &v->n) < 0 || reserve(v, text.n) < 0) {
        v->n = 0;
        return -1;
    }
    memset(v->strs, 0, v->n * sizeof *v->strs);
    return 0;
}

struct rval rval_json(const json_t *j)
{
    struct rval r = { RVAL_NONE, NULL, 0, 0.0, { NULL, 0 }, NULL };
    if (!j)
        return r;
    switch (json_typeof(j)) {
    case JSON_STRING: r.type = RVAL_STRING; r.s = json_string_value(j); break;
    case JSON_INTEGER: r.type = RVAL_INTEGER; r.i = json_integer_value(j); r.d = (double)r.i; break;
    case JSON_REAL: r.type = RVAL_REAL; r.d = json_real_value(j); break;
    case JSON_TRUE: r.type = RVAL_TRUE; break;
    case JSON_FALSE: r.type = RVAL_FALSE; break;
    case JSON_NULL: r.type = RVAL_NULL; break;
    default: r.type = RVAL_OTHER; r.obj = j; break;
    }
    return r;
}

/* A string's bytes into the arena: copied when it has no escape, else as jansson decodes
 * it (never longer than its text, so the arena, as long as the row's text, holds them all). */
static const char *decode(struct rview *v, struct jspan s)
{
    char *dst = v->arena + v->used;
    size_t n = s.n - 2;
    if (memchr(s.p, '\\', s.n)) {
        json_t *j = json_loadb(s.p, s.n, JSON_DECODE_ANY, NULL);
        if (!json_is_string(j)) {
            json_decref(j);
            return NULL;
        }
        n = json_string_length(j);
        memcpy(dst, json_string_value(j), n);
        json_decref(j);
    } else {
        memcpy(dst, s.p + 1, n);
    }
    dst[n] = '\0';
    v->used += n + 1;
    return dst;
}

static int is_real(struct jspan s)
{
    for (size_t i = 0; i < s.n; i++)
        if (s.p[i] == '.' || s.p[i] == 'e' || s.p[i] == 'E')
            return 1;
    return 0;
}

/* A scalar's text as jansson reads it; objects and arrays are OTHER. */
static struct rval from_text(struct rview *v, size_t i)
{
    struct rval r = { RVAL_OTHER, NULL, 0, 0.0, v->m[i].value, NULL };
    struct jspan s = r.span;
    char num[64];
    if (s.p[0] == '"') {
        if (!v->strs[i])
            v->strs[i] = decode(v, s);
        r.type = v->strs[i] ? RVAL_STRING : RVAL_OTHER;
        r.s = v->strs[i];
    } else if (s.p[0] == 't' || s.p[0] == 'f' || s.p[0] == 'n') {
        r.type = s.p[0] == 't' ? RVAL_TRUE : s.p[0] == 'f' ? RVAL_FALSE : RVAL_NULL;
    } else if ((s.p[0] == '-' || (s.p[0] >= '0' && s.p[0] <= '9')) && s.n < sizeof num) {
        memcpy(num, s.p, s.n);
        num[s.n] = '\0';
        if (is_real(s)) {
            r.type = RVAL_REAL;
            r.d = strtod(num, NULL);
        } else {
            r.type = RVAL_INTEGER;
            r.i = strtoll(num, NULL, 10);
            r.d = (double)r.i;
        }
    }
    return r;
}

struct rval rview_get(struct rview *v, const char *key)
{
    if (v->obj)
        return rval_json(json_object_get(v->obj, key));
    size_t klen = strlen(key);
    for (size_t i = 0; i < v->n; i++)
        if (v->m[i].key.n == klen && !memcmp(v->m[i].key.p, key, klen))
            return from_text(v, i);
    return (struct rval){ RVAL_NONE, NULL, 0, 0.0, { NULL, 0 }, NULL };
}

const char *rview_str(struct rview *v, const char *key)
{
    struct rval r = rview_get(v, key);
    return r.type == RVAL_STRING ? r.s : NULL;
}

struct rview_src rview_src_json(const json_t *list)
{
    return (struct rview_src){ json_is_array(list) ? list : NULL, NULL, json_array_size(list), NULL };
}

struct rview_src rview_src_texts(const struct jspan *texts, size_t n)
{
    return (struct rview_src){ NULL, texts, n, NULL };
}

struct rview_src rview_src_of(struct rval value)
{
    if (value.obj)
        return rview_src_json(value.obj);
    struct rview_src s = { NULL, NULL, 0, NULL };
    if (value.type == RVAL_OTHER && value.span.n && value.span.p[0] == '[' &&
        jscan_elements(value.span, &s.owned, &s.n) == 0)
        s.texts = s.owned;
    return s;
}

void rview_src_release(struct rview_src *s)
{
    free(s->owned);
    *s = (struct rview_src){ NULL, NULL, 0, NULL };
}

void rview_src_row(const struct rview_src *s, size_t i, struct rview *v)
{
    if (s->list)
        rview_obj(v, json_array_get(s->list, i));
    else
        rview_text(v, s->texts[i]);
}
