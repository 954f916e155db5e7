/* fuzz_replay — main() for a fuzz target built without libFuzzer: replays every file
 * named on the command line or found in a named directory (the corpus and past crash
 * inputs) through LLVMFuzzerTestOneInput, so the regular test suite runs them on every
 * build. Fails when a path cannot be read or nothing was replayed. */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define REPLAY_MAX (4u << 20) /* larger than any target's message limit */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int replay_file(const char *path, uint8_t *buf)
{
    FILE *fp = fopen(path, "rb");
    if (!fp) {
        fprintf(stderr, "fuzz: cannot open '%s'\n", path);
        return -1;
    }
    size_t n = fread(buf, 1, REPLAY_MAX, fp);
    fclose(fp);
    LLVMFuzzerTestOneInput(buf, n);
    return 0;
}

static int replay(const char *path, uint8_t *buf, int *count)
{
    struct stat st;
    if (stat(path, &st) < 0) {
        fprintf(stderr, "fuzz: cannot stat '%s'\n", path);
        return -1;
    }
    if (!S_ISDIR(st.st_mode)) {
        (*count)++;
        return replay_file(path, buf);
    }
    DIR *d = opendir(path);
    struct dirent *e;
    int rc = 0;
    while (d && (e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        char sub[4096];
        snprintf(sub, sizeof sub, "%s/%s", path, e->d_name);
        rc |= replay(sub, buf, count);
    }
    if (d)
        closedir(d);
    return rc;
}

int main(int argc, char **argv)
{
    int count = 0, rc = 0;
    uint8_t *buf = malloc(REPLAY_MAX);
    if (!buf)
        return 1;
    for (int i = 1; i < argc; i++)
        rc |= replay(argv[i], buf, &count);
    free(buf);
    printf("%s: replayed %d inputs\n", argv[0], count);
    return rc || count == 0 ? 1 : 0;
}
