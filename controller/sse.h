/* sse — Server-Sent Events (text/event-stream) framing into a bounded byte queue, one
 * per client of the rack page.
 *
 * A queue holds what a client has not read yet, at most max bytes: a push that would go
 * beyond is refused, and the caller drops that client (a slow reader is let go rather
 * than allowed to grow the controller's memory). A client that has read everything is not
 * behind: a push into an empty queue is taken whatever its size (the rack's snapshot may
 * be larger than max), so a queue holds at most max bytes or one event. */
#ifndef SSE_H
#define SSE_H

#include <stddef.h>

struct sse_queue {
    char *buf;
    size_t off, len;   /* unread bytes are buf[off, len) */
    size_t cap;        /* allocated */
    size_t max;        /* the bound on unread bytes */
};

void sse_queue_init(struct sse_queue *q, size_t max);
void sse_queue_free(struct sse_queue *q);
/* Unread bytes. */
size_t sse_queue_pending(const struct sse_queue *q);
/* Copies up to n unread bytes to out and consumes them; returns how many. */
size_t sse_queue_take(struct sse_queue *q, char *out, size_t n);
/* "event: NAME\ndata: DATA\n\n" (a line of DATA per line of data). 0, or -1 when it
 * does not fit under the bound behind unread bytes (or memory ran out): nothing is
 * queued then. */
int sse_event(struct sse_queue *q, const char *name, const char *data);
/* ": TEXT\n\n", a comment (a heartbeat: clients ignore it, proxies see traffic). */
int sse_comment(struct sse_queue *q, const char *text);

#endif
