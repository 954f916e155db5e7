/* rows — the order people read a document's rows in; see rows.h. */
#include "rows.h"

#include <stdlib.h>
#include <string.h>

const char *const rows_by_port[] = { "agent", "label", "ecid", NULL };

static const char *field(const json_t *row, const char *key)
{
    const char *v = json_string_value(json_object_get(row, key));
    return v ? v : "";
}

static int by_keys(const void *a, const void *b, void *arg)
{
    const char *const *keys = arg;
    const json_t *x = *(json_t *const *)a, *y = *(json_t *const *)b;
    for (size_t i = 0; keys[i]; i++) {
        int c = strcmp(field(x, keys[i]), field(y, keys[i]));
        if (c)
            return c;
    }
    return 0;
}

void rows_sort(json_t *list, const char *const *keys)
{
    size_t n = json_array_size(list);
    json_t **v = n > 1 ? malloc(n * sizeof *v) : NULL;
    if (!v)
        return; /* 0 or 1 rows, or no memory: left as they came */
    for (size_t i = 0; i < n; i++)
        v[i] = json_incref(json_array_get(list, i));
    qsort_r(v, n, sizeof *v, by_keys, (void *)keys);
    json_array_clear(list);
    for (size_t i = 0; i < n; i++)
        json_array_append_new(list, v[i]);
    free(v);
}
