/* fuzz_wire — the Envelope decoder under a fuzzer.
 *
 * With clang -fsanitize=fuzzer this is a libFuzzer target (build with
 * -DFR_FUZZ=ON and CC=clang). Without it, fuzz_replay.c's main() replays the corpus
 * and past crash inputs, so the regular test suite runs them on every build. In the
 * fuzz build the protobuf-c runtime is compiled in with the fuzzer's instrumentation
 * (tests/fuzz/protobuf-c.cmake), so its decoder's branches count as coverage;
 * the replay links Debian's libprotobuf-c, as every other build does. */
#include <stdint.h>
#include <stdlib.h>

#include "fr_wire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    Fr__Envelope *env = NULL;
    char err[256];
    if (fr_wire_unpack(data, size, &env, err, sizeof err) == 0) {
        /* a valid message must survive a round trip */
        uint8_t *out = NULL;
        size_t len = 0;
        if (fr_wire_pack(env, &out, &len) == 0)
            free(out);
        fr_wire_free(&env);
    }
    return 0;
}
