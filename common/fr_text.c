/* fr_text — text into fixed buffers, refused rather than cut (see fr_text.h). */
#include "fr_text.h"
#include "fr_err.h"

#include <stdarg.h>
#include <stdio.h>

int fr_fmt(char *buf, size_t len, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = len ? vsnprintf(buf, len, fmt, ap) : -1;
    va_end(ap);
    if (n >= 0 && (size_t)n < len)
        return 0;
    if (len)
        buf[0] = '\0';
    return FR_ETOOBIG;
}
