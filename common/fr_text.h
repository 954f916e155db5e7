/* fr_text — text into fixed buffers, refused rather than cut.
 *
 * snprintf() into a char array silently keeps the first len - 1 bytes of a longer
 * text; for a path, a name or a list that is a different value. fr_fmt() either
 * stores the whole text or stores nothing and says so, and the caller names the
 * option, key or file:line and the limit in its own error. */
#ifndef FR_TEXT_H
#define FR_TEXT_H

#include <stddef.h>

/* printf into buf[len]. Returns 0, or FR_ETOOBIG when the whole text would not fit
 * (buf is then "", never a prefix of it). */
int fr_fmt(char *buf, size_t len, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

#endif
