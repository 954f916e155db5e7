/* fuzz_input_file — the parsers that read a file (configs, rack files) get the fuzz
 * input as one: written to a file of this process, reused for every input. */
#ifndef FUZZ_INPUT_FILE_H
#define FUZZ_INPUT_FILE_H

#include <stdint.h>
#include <stdio.h>
#include <unistd.h>

/* The path holding data, or NULL if it could not be written. */
static inline const char *fuzz_input_file(const uint8_t *data, size_t size)
{
    static char path[64];
    if (!path[0])
        snprintf(path, sizeof path, "/tmp/fr-fuzz-%d.ini", (int)getpid());
    FILE *fp = fopen(path, "wb");
    if (!fp)
        return NULL;
    size_t n = fwrite(data, 1, size, fp);
    fclose(fp);
    return n == size ? path : NULL;
}

#endif
