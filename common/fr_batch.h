/* fr_batch — gathers JobProgress items into ProgressBatch envelopes of at most
 * FR_WIRE_MAX_BATCH items (proto/PROTOCOL.md "Jobs and attempts"), handing each to the
 * caller's send as it fills, and the rest at fr_batch_end. Items point at the caller's
 * strings and refs, which must live until the batch holding them is sent. */
#ifndef FR_BATCH_H
#define FR_BATCH_H

#include "fr_wire.h"

typedef void (*fr_batch_send_cb)(Fr__Envelope *env, void *arg);

struct fr_batch {
    Fr__JobProgress items[FR_WIRE_MAX_BATCH];
    Fr__JobProgress *ptrs[FR_WIRE_MAX_BATCH];
    Fr__ProgressBatch body;
    Fr__Envelope env;
    fr_batch_send_cb send;
    void *arg;
    size_t sent;                  /* envelopes handed to send */
};

void fr_batch_begin(struct fr_batch *b, fr_batch_send_cb send, void *arg);
/* The next item, initialized (the full batch before it is sent first). */
Fr__JobProgress *fr_batch_add(struct fr_batch *b);
/* Sends what is left (nothing when empty). */
void fr_batch_end(struct fr_batch *b);

#endif
