/* seams — what every backend shares: freeing one through its own destroy. */
#include "seams.h"

void seams_destroy(struct seams **ps)
{
    if (*ps) {
        (*ps)->destroy(*ps);
        *ps = NULL;
    }
}
