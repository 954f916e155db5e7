/* fr_wire — packing, unpacking and validating Envelopes.
 *
 * Every message from the network is hostile: fr_wire_unpack() checks the size
 * cap, decodes, checks the protocol version, then validates the body's fields
 * (string lengths, repeated counts, enums, required sub-messages). A message that
 * fails is an error with a reason, never a crash; the caller drops and counts it. */
#ifndef FR_WIRE_H
#define FR_WIRE_H

#include <stddef.h>
#include <stdint.h>

#include "flashrack.pb-c.h"
#include "fr_zsock.h"

#define FR_PROTO_VERSION 1
#define FR_WIRE_MAX_MSG (1024 * 1024) /* also set as ZMQ_MAXMSGSIZE */
#define FR_WIRE_MAX_STR 4096          /* any string field */
#define FR_WIRE_MAX_LIST 4096         /* any repeated field */
#define FR_WIRE_MAX_BATCH 128         /* items of a ProgressBatch: 128 statuses of 4 kB fit
                                         a message */

/* Packs env (proto_version is set to FR_PROTO_VERSION). *out is malloc'd. */
int fr_wire_pack(Fr__Envelope *env, uint8_t **out, size_t *len);
/* For a process that serves or reads documents of many pages: malloc keeps blocks the size
 * of a message in its heap for reuse (glibc maps each one anew above its mmap threshold,
 * and hands freed memory back at once above its trim threshold). Call once, first. */
void fr_wire_keep_buffers(void);

/* Decodes and validates. On success *out must be released with fr_wire_free().
 * On failure returns FR_ETOOBIG, FR_EPROTO or FR_EVERSION with a reason in err. */
int fr_wire_unpack(const void *data, size_t len, Fr__Envelope **out, char *err, size_t errlen);

/* Validation alone (used by fr_wire_unpack and tests). */
int fr_wire_validate(const Fr__Envelope *env, char *err, size_t errlen);

void fr_wire_free(Fr__Envelope **env);

/* Pack + fr_zsock_send. id may be NULL. */
int fr_wire_send(fr_zsock *zs, const void *id, size_t idlen, Fr__Envelope *env);

/* Name of the body case ("hello", "job_result", ...), for logs. */
const char *fr_wire_body_name(int body_case);

#endif
