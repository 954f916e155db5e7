/* fuzz_rack — the simulator's rack file parser under a fuzzer. */
#include <stdint.h>
#include <string.h>

#include "fuzz_input_file.h"
#include "rack.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *path = fuzz_input_file(data, size);
    if (!path)
        return 0;
    struct rack r;
    char err[512] = "";
    if (rack_load(path, &r, err, sizeof err) == 0)
        rack_free(&r);
    else if (!err[0])
        __builtin_trap(); /* an error always says what is wrong */
    return 0;
}
