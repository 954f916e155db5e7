/* fr_models — the iPhone models flashrack knows: ProductType → board, CPID, BDID and
 * the marketing name (for people: the sanitization record, the simulator's units).
 * A model not listed is still restorable; only its name is then unknown. */
#ifndef FR_MODELS_H
#define FR_MODELS_H

#include <stdint.h>

struct fr_model {
    const char *product_type, *board;
    uint32_t bdid, cpid;
    const char *name;            /* "iPhone 11" */
};

/* NULL when product_type is not in the table. */
const struct fr_model *fr_model_find(const char *product_type);

#endif
