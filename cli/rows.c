/* rows — the order people read a document's rows in; see rows.h. */
#include "rows.h"

#include <stdlib.h>
#include <string.h>

#include <jansson.h>

const char *const rows_by_port[] = { "agent", "label", "ecid", NULL };

/* a row's sort keys, read once (not twice per comparison), and where it was */
struct keyed {
    struct rows_key key[ROWS_KEYS_MAX];
    size_t at;
};

static int key_cmp(const struct rows_key *x, const struct rows_key *y)
{
    int c = memcmp(x->p, y->p, x->n < y->n ? x->n : y->n);
    return c ? c : x->n < y->n ? -1 : x->n > y->n;
}

static int by_keys(const void *a, const void *b)
{
    const struct keyed *x = a, *y = b;
    for (size_t i = 0; i < ROWS_KEYS_MAX; i++) {
        int c = key_cmp(&x->key[i], &y->key[i]);
        if (c)
            return c;
    }
    return x->at < y->at ? -1 : x->at > y->at;
}

int rows_order_keys(size_t n, int (*get)(void *arg, size_t row, size_t key, struct rows_key *k), void *arg,
                    size_t *order)
{
    struct keyed *k = n ? malloc(n * sizeof *k) : NULL;
    if (n && !k)
        return -1;
    int rc = 0;
    for (size_t i = 0; i < n; i++) {
        k[i].at = i;
        for (size_t j = 0; j < ROWS_KEYS_MAX; j++) {
            k[i].key[j] = (struct rows_key){ "", 0 };
            rc |= get(arg, i, j, &k[i].key[j]);
        }
    }
    if (rc == 0 && n > 1)
        qsort(k, n, sizeof *k, by_keys);
    for (size_t i = 0; i < n; i++)
        order[i] = k[i].at;
    free(k);
    return rc;
}

struct objects {
    json_t *const *rows;
    const char *const *keys;
};

static int object_key(void *arg, size_t row, size_t key, struct rows_key *k)
{
    const struct objects *o = arg;
    for (size_t j = 0; j <= key; j++)
        if (!o->keys[j])
            return 0;
    const json_t *v = json_object_get(o->rows[row], o->keys[key]);
    if (json_is_string(v))
        *k = (struct rows_key){ json_string_value(v), json_string_length(v) };
    return 0;
}

static int rows_order(json_t *const *rows, size_t n, const char *const *keys, size_t *order)
{
    struct objects o = { rows, keys };
    return rows_order_keys(n, object_key, &o, order);
}

void rows_sort(json_t *list, const char *const *keys)
{
    size_t n = json_array_size(list);
    json_t **v = n > 1 ? malloc(n * sizeof *v) : NULL;
    size_t *order = v ? malloc(n * sizeof *order) : NULL;
    for (size_t i = 0; order && i < n; i++)
        v[i] = json_incref(json_array_get(list, i));
    if (order && rows_order(v, n, keys, order) == 0) { /* else (or 0 or 1 rows): as they came */
        json_array_clear(list);
        for (size_t i = 0; i < n; i++)
            json_array_append(list, v[order[i]]);
    }
    for (size_t i = 0; order && i < n; i++)
        json_decref(v[i]);
    free(order);
    free(v);
}

static int key_is(const struct jmember *m, const char *key)
{
    return m->key.n == strlen(key) && !memcmp(m->key.p, key, m->key.n);
}

/* Sort keys read from the rows' text: a string's bytes between its quotes, or, when it
 * holds an escape, the string jansson decodes (kept in decoded until the sort is done). */
struct text_keys {
    const struct jspan *rows;
    const char *const *keys;
    json_t *decoded;
    size_t row;
    struct jmember *m;
    size_t n;
};

static int text_key(void *arg, size_t row, size_t key, struct rows_key *k)
{
    struct text_keys *t = arg;
    for (size_t j = 0; j <= key; j++)
        if (!t->keys[j])
            return 0;
    if (!t->m || t->row != row) {
        free(t->m);
        t->m = NULL;
        t->row = row;
        if (jscan_members(t->rows[row], &t->m, &t->n) < 0)
            return 0; /* not an object: no keys */
    }
    for (size_t i = 0; i < t->n; i++) {
        struct jspan v = t->m[i].value;
        if (!key_is(&t->m[i], t->keys[key]) || v.n < 2 || v.p[0] != '"')
            continue;
        if (!memchr(v.p, '\\', v.n)) {
            *k = (struct rows_key){ v.p + 1, v.n - 2 };
            return 0;
        }
        json_t *s = json_loadb(v.p, v.n, JSON_DECODE_ANY, NULL);
        if (!json_is_string(s) || json_array_append_new(t->decoded, s) < 0)
            return -1;
        *k = (struct rows_key){ json_string_value(s), json_string_length(s) };
        return 0;
    }
    return 0;
}

int rows_sort_texts(struct jspan *rows, size_t n, const char *const *keys)
{
    size_t *order = malloc((n ? n : 1) * sizeof *order);
    struct jspan *sorted = malloc((n ? n : 1) * sizeof *sorted);
    struct text_keys t = { rows, keys, json_array(), 0, NULL, 0 };
    int rc = order && sorted && t.decoded ? rows_order_keys(n, text_key, &t, order) : -1;
    for (size_t i = 0; rc == 0 && i < n; i++)
        sorted[i] = rows[order[i]];
    if (rc == 0 && n)
        memcpy(rows, sorted, n * sizeof *sorted);
    free(t.m);
    json_decref(t.decoded);
    free(order);
    free(sorted);
    return rc;
}

size_t rows_count_texts(const struct jspan *rows, size_t n, const char *key, const char *const *values)
{
    size_t count = 0;
    for (size_t i = 0; i < n; i++) {
        struct jspan v;
        if (jscan_find(rows[i], key, &v) < 0)
            continue;
        for (size_t j = 0; values[j]; j++)
            if (jscan_is_string(v, values[j])) {
                count++;
                break;
            }
    }
    return count;
}
