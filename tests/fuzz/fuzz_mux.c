/* fuzz_mux — the usbmuxd and lockdownd framing (common/fr_mux_wire) under a fuzzer.
 *
 * The first byte picks the framing (even: usbmuxd, odd: lockdownd); the rest is read
 * as a stream of messages, the way the simulator's usbmuxd and the agent's usbmuxd
 * client read a socket. Every message that parses must encode and parse again to a
 * dictionary. Built like fuzz_wire: a libFuzzer target with -DFR_FUZZ=ON, else a
 * corpus replay (fuzz_replay.c) in the suite. */
#include <stdint.h>
#include <stdlib.h>

#include "fr_mux_wire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void round_trip(int lockdown, plist_t dict)
{
    uint8_t *out = NULL;
    size_t n = 0, used = 0;
    struct mux_header h;
    plist_t again = NULL;
    char err[160];
    int rc = lockdown ? lockdown_wire_encode(dict, &out, &n) : mux_wire_encode(7, dict, &out, &n);
    if (rc == 0) {
        enum mux_parse r = lockdown ? lockdown_wire_parse(out, n, &again, &used, err, sizeof err)
                                    : mux_wire_parse(out, n, &h, &again, &used, err, sizeof err);
        if (r != MUX_PARSE_OK || used != n)
            abort(); /* what we write, we must read */
    }
    plist_free(again);
    free(out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    int lockdown = data[0] & 1;
    size_t off = 1;
    while (off < size) {
        struct mux_header h;
        plist_t dict = NULL;
        size_t used = 0;
        char err[160];
        enum mux_parse r = lockdown
            ? lockdown_wire_parse(data + off, size - off, &dict, &used, err, sizeof err)
            : mux_wire_parse(data + off, size - off, &h, &dict, &used, err, sizeof err);
        if (r == MUX_PARSE_NEED_MORE || r == MUX_PARSE_FATAL)
            break;
        if (r == MUX_PARSE_OK) {
            mux_dict_string(dict, "MessageType");
            round_trip(lockdown, dict);
        }
        plist_free(dict);
        off += used;
    }
    return 0;
}
