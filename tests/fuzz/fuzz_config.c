/* fuzz_config — the INI reader and the typed settings (strings, bounded integers,
 * booleans, choices) under a fuzzer: any file gives 0 or an error with text, never a
 * crash or an overrun. */
#include <stdint.h>
#include <string.h>

#include "fr_config.h"
#include "fuzz_input_file.h"

struct settings {
    char name[16], endpoint[256], level[16];
    long long slots, ms;
    int flag;
};

static const struct fr_cfg_field fields[] = {
    FR_CFG_FIELD_STR("agent", "id", struct settings, name),
    FR_CFG_FIELD_STR("agent", "controller", struct settings, endpoint),
    FR_CFG_FIELD_INT("agent", "slots", struct settings, slots, 1, 512),
    FR_CFG_FIELD_INT("controller", "heartbeat_ms", struct settings, ms, 50, 60000),
    FR_CFG_FIELD_BOOL("policy", "naive", struct settings, flag),
    FR_CFG_FIELD_STR("controller", "log_level", struct settings, level),
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *path = fuzz_input_file(data, size);
    if (!path)
        return 0;
    struct settings s;
    memset(&s, 0, sizeof s);
    char err[512];
    if (fr_cfg_load(path, fields, sizeof fields / sizeof fields[0], &s, err, sizeof err) < 0 &&
        !err[0])
        __builtin_trap(); /* an error always says what is wrong */
    return 0;
}
