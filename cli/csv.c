/* csv — RFC 4180 fields and records; see csv.h. */
#include "csv.h"

#include <string.h>

void csv_field(FILE *out, const char *text, int first)
{
    if (!first)
        fputc(',', out);
    if (!text[strcspn(text, ",\"\r\n")]) {
        fputs(text, out);
        return;
    }
    fputc('"', out);
    for (const char *p = text; *p; p++) {
        if (*p == '"')
            fputc('"', out);
        fputc(*p, out);
    }
    fputc('"', out);
}

void csv_end(FILE *out)
{
    fputs("\r\n", out);
}
