/* sse — event-stream framing into a bounded queue; see sse.h. */
#include "sse.h"

#include <stdlib.h>
#include <string.h>

void sse_queue_init(struct sse_queue *q, size_t max)
{
    memset(q, 0, sizeof *q);
    q->max = max;
}

void sse_queue_free(struct sse_queue *q)
{
    free(q->buf);
    sse_queue_init(q, q->max);
}

size_t sse_queue_pending(const struct sse_queue *q)
{
    return q->len - q->off;
}

size_t sse_queue_take(struct sse_queue *q, char *out, size_t n)
{
    size_t have = sse_queue_pending(q);
    if (n > have)
        n = have;
    memcpy(out, q->buf + q->off, n);
    q->off += n;
    if (q->off == q->len)
        q->off = q->len = 0;
    return n;
}

/* Room for need more bytes, moving the unread ones to the front first. A client that has
 * read everything is not behind: one event into an empty queue fits whatever its size (a
 * snapshot of a rack larger than the bound). */
static int reserve(struct sse_queue *q, size_t need)
{
    if (sse_queue_pending(q) && sse_queue_pending(q) + need > q->max)
        return -1;
    if (q->off) {
        memmove(q->buf, q->buf + q->off, q->len - q->off);
        q->len -= q->off;
        q->off = 0;
    }
    if (q->len + need <= q->cap)
        return 0;
    size_t cap = q->cap ? q->cap : 4096;
    while (cap < q->len + need)
        cap *= 2;
    char *grown = realloc(q->buf, cap);
    if (!grown)
        return -1;
    q->buf = grown;
    q->cap = cap;
    return 0;
}

static void put(struct sse_queue *q, const char *s, size_t n)
{
    memcpy(q->buf + q->len, s, n);
    q->len += n;
}

/* Writes "PREFIX line\n" for each line of text, then "\n"; need is what that takes. */
static int frame(struct sse_queue *q, const char *head, const char *prefix, const char *text)
{
    size_t lines = 1, plen = strlen(prefix), hlen = strlen(head), tlen = strlen(text);
    for (const char *p = text; *p; p++)
        lines += *p == '\n';
    if (reserve(q, hlen + tlen + lines * (plen + 1) + 1) < 0)
        return -1;
    put(q, head, hlen);
    for (const char *p = text;;) {
        size_t n = strcspn(p, "\n");
        put(q, prefix, plen);
        put(q, p, n);
        put(q, "\n", 1);
        if (!p[n])
            break;
        p += n + 1;
    }
    put(q, "\n", 1);
    return 0;
}

int sse_event(struct sse_queue *q, const char *name, const char *data)
{
    char head[80];
    size_t n = strlen(name);
    if (n > sizeof head - 9 || strpbrk(name, "\r\n"))
        return -1;
    memcpy(head, "event: ", 7);
    memcpy(head + 7, name, n);
    head[7 + n] = '\n';
    head[8 + n] = '\0';
    return frame(q, head, "data: ", data);
}

int sse_comment(struct sse_queue *q, const char *text)
{
    return frame(q, "", ": ", text);
}
