/* fr_http — small pieces shared by the blocking libcurl callers (the signing
 * check, the catalog refresh): a response body collected in memory, bounded. */
#ifndef FR_HTTP_H
#define FR_HTTP_H

#include <stddef.h>

struct fr_http_body {
    char *data;   /* NUL-terminated; free() it */
    size_t len;
    size_t max;   /* a longer answer aborts the transfer (it is not what we asked for) */
};

/* CURLOPT_WRITEFUNCTION for a struct fr_http_body (CURLOPT_WRITEDATA). */
size_t fr_http_collect(char *ptr, size_t size, size_t nmemb, void *body);

#endif
