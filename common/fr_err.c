/* fr_err — error names and texts generated from FR_ERR_MAP. */
#include "fr_err.h"

#include <stdarg.h>
#include <stdio.h>

const char *fr_strerror(int err)
{
    switch (err) {
    case FR_OK:
        return "success";
#define FR_ERR_TEXT(name, code, text) \
    case FR_##name:                   \
        return text;
        FR_ERR_MAP(FR_ERR_TEXT)
#undef FR_ERR_TEXT
    }
    return "unknown error";
}

const char *fr_err_name(int err)
{
    switch (err) {
    case FR_OK:
        return "FR_OK";
#define FR_ERR_NAME(name, code, text) \
    case FR_##name:                   \
        return "FR_" #name;
        FR_ERR_MAP(FR_ERR_NAME)
#undef FR_ERR_NAME
    }
    return "FR_EUNKNOWN";
}

int fr_seterr(int err, char *buf, size_t len, const char *fmt, ...)
{
    if (buf && len) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(buf, len, fmt, ap);
        va_end(ap);
    }
    return err;
}
