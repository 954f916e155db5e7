/* cert — a sanitization record drawn as a one-page PDF certificate (cairo): the device,
 * the method and the firmware installed, tools, verification, who, where and when, the
 * attempts, result and destination. Only the JSON record is signed: the PDF is for
 * people, `flashrack record verify` checks the JSON. */
#ifndef CLI_CERT_H
#define CLI_CERT_H

#include <jansson.h>
#include <stddef.h>

/* Writes rec (the "record" of a signed line) to path. Returns 0, or -1 with the reason. */
int cert_pdf(const json_t *rec, const char *path, char *err, size_t errlen);
/* Frees cairo's and fontconfig's process-wide caches (after the last certificate). */
void cert_done(void);

#endif
