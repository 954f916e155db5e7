/* csv — RFC 4180 output: fields separated by commas, records ended by CRLF; a field
 * holding a comma, a double quote, CR or LF is quoted and its quotes doubled. */
#ifndef CLI_CSV_H
#define CLI_CSV_H

#include <stdio.h>

/* One field; first is 1 for the first field of a record (no comma before it). */
void csv_field(FILE *out, const char *text, int first);
/* Ends a record. */
void csv_end(FILE *out);

#endif
