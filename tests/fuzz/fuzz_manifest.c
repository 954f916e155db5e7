/* fuzz_manifest — the BuildManifest.plist reader (XML or binary plist; identities,
 * DeviceClass, variants) under a fuzzer. */
#include <stdint.h>

#include "fr_ipsw.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fr_ipsw ipsw;
    char err[512] = "";
    if (fr_ipsw_parse_manifest((const char *)data, size, "fuzz.ipsw", &ipsw, err, sizeof err) == 0)
        fr_ipsw_supports(&ipsw, "iPhone12,1");
    else if (!err[0])
        __builtin_trap(); /* an error always says what is wrong */
    return 0;
}
