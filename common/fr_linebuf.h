/* fr_linebuf — splits a byte stream into '\n'-terminated lines, for the
 * line-delimited JSON of the simulator's socket.
 *
 * The buffer owns its memory (fr_linebuf_release frees it) and holds at most
 * max bytes of an unfinished line; a longer line is dropped and counted. */
#ifndef FR_LINEBUF_H
#define FR_LINEBUF_H

#include <stddef.h>

struct fr_linebuf {
    char *buf;
    size_t len, cap, max;
    size_t dropped; /* over-long lines thrown away */
};

/* on_line gets each complete line without its '\n' (NUL-terminated, writable);
 * it returns nonzero to stop reading (the rest is kept for later). */
typedef int (*fr_linebuf_cb)(void *arg, char *line);

void fr_linebuf_init(struct fr_linebuf *lb, size_t max);
/* Returns 0, or FR_ENOMEM (the data was not taken). */
int fr_linebuf_feed(struct fr_linebuf *lb, const char *data, size_t n, fr_linebuf_cb on_line,
                    void *arg);
void fr_linebuf_release(struct fr_linebuf *lb);

#endif
