/* fr_models — the model table; see fr_models.h. */
#include "fr_models.h"

#include <string.h>

static const struct fr_model models[] = {
    { "iPhone10,1", "d20ap", 0x02, 0x8015, "iPhone 8" },
    { "iPhone10,3", "d22ap", 0x06, 0x8015, "iPhone X" },
    { "iPhone11,2", "d321ap", 0x0e, 0x8020, "iPhone XS" },
    { "iPhone11,8", "n841ap", 0x0c, 0x8020, "iPhone XR" },
    { "iPhone12,1", "n104ap", 0x04, 0x8030, "iPhone 11" },
    { "iPhone12,8", "d79ap", 0x10, 0x8030, "iPhone SE (2nd gen)" },
    { "iPhone13,2", "d53gap", 0x0c, 0x8101, "iPhone 12" },
    { "iPhone14,5", "d17ap", 0x0a, 0x8110, "iPhone 13" },
    { "iPhone14,7", "d27ap", 0x18, 0x8110, "iPhone 14" },
    { "iPhone15,4", "d37ap", 0x08, 0x8120, "iPhone 15" },
    { "iPhone16,1", "d83ap", 0x04, 0x8130, "iPhone 15 Pro" },
    { "iPhone17,3", "d47ap", 0x08, 0x8140, "iPhone 16" },
};

const struct fr_model *fr_model_find(const char *product_type)
{
    for (size_t i = 0; i < sizeof models / sizeof models[0]; i++)
        if (strcmp(models[i].product_type, product_type) == 0)
            return &models[i];
    return NULL;
}
