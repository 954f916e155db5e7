/* dispatch — what the controller's messages mean to this agent, above the transport.
 *
 * link.c owns the socket, sessions, seqs, acks and the outbox, and hands every
 * message it accepted (a Welcome after taking its session) to dispatch_message(),
 * which routes it: JobAssign and JobCancel (and a Welcome's cancel list) to
 * unit_run.c, FirmwarePrefetch and a Welcome's mirror to the IPSW cache, PortCommand
 * to the seams' port power. Anything else is counted as dropped. */
#ifndef DISPATCH_H
#define DISPATCH_H

#include "agent.h"

void dispatch_message(struct agent *a, const Fr__Envelope *env);

#endif
