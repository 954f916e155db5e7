/* fr_linebuf — byte stream to lines; see fr_linebuf.h. */
#include "fr_linebuf.h"
#include "fr_err.h"

#include <stdlib.h>
#include <string.h>

void fr_linebuf_init(struct fr_linebuf *lb, size_t max)
{
    memset(lb, 0, sizeof *lb);
    lb->max = max;
}

static int reserve(struct fr_linebuf *lb, size_t need)
{
    if (need <= lb->cap)
        return 0;
    size_t cap = lb->cap ? lb->cap : 1024;
    while (cap < need)
        cap *= 2;
    char *p = realloc(lb->buf, cap);
    if (!p)
        return FR_ENOMEM;
    lb->buf = p;
    lb->cap = cap;
    return 0;
}

int fr_linebuf_feed(struct fr_linebuf *lb, const char *data, size_t n, fr_linebuf_cb on_line,
                    void *arg)
{
    if (reserve(lb, lb->len + n + 1) < 0)
        return FR_ENOMEM;
    memcpy(lb->buf + lb->len, data, n);
    lb->len += n;
    char *start = lb->buf, *nl;
    int stop = 0;
    while (!stop && (nl = memchr(start, '\n', lb->len - (size_t)(start - lb->buf)))) {
        *nl = '\0';
        stop = on_line(arg, start);
        start = nl + 1;
    }
    size_t rest = lb->len - (size_t)(start - lb->buf);
    memmove(lb->buf, start, rest);
    lb->len = rest;
    if (lb->len > lb->max && !memchr(lb->buf, '\n', lb->len)) {
        lb->len = 0;
        lb->dropped++;
    }
    return 0;
}

void fr_linebuf_release(struct fr_linebuf *lb)
{
    free(lb->buf);
    memset(lb, 0, sizeof *lb);
}
