/* fr_tss — asks a signing server (Apple's TSS, or a site's stand-in) whether a
 * build may still be installed on a unit: iTunes error 3194 before a phone is
 * touched, instead of after.
 *
 * Blocking (libcurl easy interface, with a timeout): call it from a worker
 * thread or a tool, never from an event-loop callback. */
#ifndef FR_TSS_H
#define FR_TSS_H

#include <stddef.h>
#include <stdint.h>

#define FR_TSS_APPLE_URL "https://gs.apple.com/TSS/controller?action=2"

enum fr_tss_verdict {
    FR_TSS_SIGNED = 0,      /* STATUS=0 */
    FR_TSS_NOT_SIGNED,      /* STATUS=94: "This device isn't eligible for the requested build" */
    FR_TSS_UNREACHABLE,     /* no answer, a transport error, or an HTTP error status */
    FR_TSS_UNEXPECTED,      /* an answer that is none of the above */
};

struct fr_tss_request {
    const char *url;        /* NULL: FR_TSS_APPLE_URL */
    uint64_t ecid;
    uint32_t chip_id, board_id;
    const char *build;      /* for messages: "22C152" */
    long timeout_ms;        /* 0: 10 s */
};

const char *fr_tss_verdict_name(enum fr_tss_verdict v);

/* Builds the request body (an XML plist); *out is malloc'd. */
int fr_tss_body(const struct fr_tss_request *req, char **out, size_t *len);

/* Classifies a signing server's answer body. */
enum fr_tss_verdict fr_tss_classify(const char *body, char *detail, size_t len);

/* Posts the request and classifies the answer. Returns 0 with *verdict set (an
 * unreachable server is a verdict, not an error), or FR_ENOMEM. detail gets the
 * server's MESSAGE or the transport error. */
int fr_tss_check(const struct fr_tss_request *req, enum fr_tss_verdict *verdict, char *detail,
                 size_t len);

#endif
