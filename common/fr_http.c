/* fr_http — see fr_http.h. */
#include "fr_http.h"

#include <stdlib.h>
#include <string.h>

size_t fr_http_collect(char *ptr, size_t size, size_t nmemb, void *arg)
{
    struct fr_http_body *b = arg;
    size_t n = size * nmemb;
    if (b->len + n > b->max)
        return 0;
    char *p = realloc(b->data, b->len + n + 1);
    if (!p)
        return 0;
    memcpy(p + b->len, ptr, n);
    b->data = p;
    b->len += n;
    b->data[b->len] = '\0';
    return n;
}
