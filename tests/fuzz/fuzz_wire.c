/* fuzz_wire — the Envelope decoder under a fuzzer.
 *
 * With clang -fsanitize=fuzzer this is a libFuzzer target (build with
 * -DFR_FUZZ=ON and CC=clang). Without it, main() replays every file named on the
 * command line or found in a directory — the corpus and past crash inputs — so
 * the regular test suite runs them on every build. The protobuf-c runtime should
 * be compiled into a fuzzing build for coverage (PITFALLS 12). */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

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

#ifndef FR_LIBFUZZER
static int replay_file(const char *path)
{
    FILE *fp = fopen(path, "rb");
    if (!fp) {
        fprintf(stderr, "fuzz_wire: cannot open '%s'\n", path);
        return -1;
    }
    static uint8_t buf[FR_WIRE_MAX_MSG + 16];
    size_t n = fread(buf, 1, sizeof buf, fp);
    fclose(fp);
    LLVMFuzzerTestOneInput(buf, n);
    return 0;
}

static int replay(const char *path, int *count)
{
    struct stat st;
    if (stat(path, &st) < 0) {
        fprintf(stderr, "fuzz_wire: cannot stat '%s'\n", path);
        return -1;
    }
    if (!S_ISDIR(st.st_mode)) {
        (*count)++;
        return replay_file(path);
    }
    DIR *d = opendir(path);
    struct dirent *e;
    int rc = 0;
    while (d && (e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        char sub[4096];
        snprintf(sub, sizeof sub, "%s/%s", path, e->d_name);
        rc |= replay(sub, count);
    }
    if (d)
        closedir(d);
    return rc;
}

int main(int argc, char **argv)
{
    int count = 0, rc = 0;
    for (int i = 1; i < argc; i++)
        rc |= replay(argv[i], &count);
    printf("fuzz_wire: replayed %d inputs\n", count);
    return rc || count == 0 ? 1 : 0;
}
#endif
