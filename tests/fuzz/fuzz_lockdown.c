/* fuzz_lockdown — a simulated unit's lockdownd (sim/lockdown.c) behind its framing
 * (common/fr_mux_wire's lockdownd side: a 4-byte big-endian length, then a plist).
 *
 * The first byte picks the unit: bit 0 paired or not, bit 1 normal or restore mode,
 * bit 2 an iOS before or after 14.5 (EnterRecovery without a session). The rest is read
 * as one tunnel's stream of frames, the way the simulator's usbmuxd reads it after a
 * Connect to port 62078: each whole frame is answered by lockdown_answer(), and every
 * answer must be a dictionary that encodes and parses again. A goodbye or a reboot into
 * recovery ends the stream, as it ends the tunnel. Built like fuzz_mux: a libFuzzer
 * target with -DFR_FUZZ=ON, else a corpus replay (fuzz_replay.c) in the suite. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fr_mux_wire.h"
#include "lockdown.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void unit_of(uint8_t pick, struct rack_unit *u)
{
    memset(u, 0, sizeof *u);
    u->ecid = 0x000356E221749A2Bull;
    snprintf(u->product_type, sizeof u->product_type, "iPhone12,1");
    snprintf(u->board, sizeof u->board, "n104ap");
    u->cpid = 0x8030, u->bdid = 0x04;
    snprintf(u->serial, sizeof u->serial, "F2LZK0AAN72J");
    u->paired = pick & 1;
    u->mode = (pick & 2) ? 3 : 4; /* fr UnitMode: restore, normal */
    snprintf(u->ios, sizeof u->ios, "%s", (pick & 4) ? "14.2" : "17.5");
    u->port = 0;
}

/* What the simulator sends back must be a frame it can read itself. */
static void check_answer(plist_t answer)
{
    uint8_t *out = NULL;
    size_t n = 0, used = 0;
    plist_t again = NULL;
    char err[160];
    if (!answer || plist_get_node_type(answer) != PLIST_DICT)
        abort();
    if (lockdown_wire_encode(answer, &out, &n) == 0 &&
        (lockdown_wire_parse(out, n, &again, &used, err, sizeof err) != MUX_PARSE_OK || used != n))
        abort();
    plist_free(again);
    free(out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    struct rack_unit u;
    struct lockdown_session s = { 0 };
    unit_of(data[0], &u);
    size_t off = 1;
    while (off < size) {
        plist_t req = NULL;
        size_t used = 0;
        char err[160];
        enum mux_parse r = lockdown_wire_parse(data + off, size - off, &req, &used, err, sizeof err);
        if (r != MUX_PARSE_OK)
            break; /* NEED_MORE at the end of the input, or FATAL: the tunnel closes */
        enum lockdown_effect effect = LOCKDOWN_STAY;
        plist_t answer = lockdown_answer(&s, &u, "SIM-BUID", req, &effect);
        check_answer(answer);
        plist_free(answer);
        plist_free(req);
        off += used;
        if (effect != LOCKDOWN_STAY)
            break;
    }
    return 0;
}
