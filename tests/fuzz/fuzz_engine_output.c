/* fuzz_engine_output — the restore engine's output parser (progress, Status: and error
 * lines, classification) under a fuzzer, fed in pieces as a pipe delivers them. */
#include <stdint.h>
#include <string.h>

#include "engine_output.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct engine_output eo;
    engine_output_init(&eo);
    /* the first byte chooses the chunk size, so line ends fall anywhere */
    size_t chunk = size ? (size_t)data[0] % 61 + 1 : 1;
    for (size_t at = size ? 1 : 0; at < size; at += chunk)
        engine_output_feed(&eo, (const char *)data + at, size - at < chunk ? size - at : chunk);
    engine_output_end(&eo);
    char text[EO_TEXT_MAX + 64];
    engine_output_outcome(&eo, (int)(size % 3) - 1, 0, text, sizeof text);
    if (strlen(text) >= sizeof text)
        __builtin_trap();
    return 0;
}
