/* sign_bench — what a sanitization record's signature costs, in its parts: the canonical
 * JSON of a record (done on the controller's loop), setting up a signer for the key
 * (fr_signer_new: one per batch on libuv's pool) and signing the canonical text
 * (fr_signer_sign_canon, on the pool). Prints the mean of each over N rounds, in us.
 *
 * Usage: sign_bench RECORD.json KEY.pem [N]   (e.g. tests/fixtures/records/record.json
 *        and record.key) */
#include <stdio.h>
#include <stdlib.h>

#include "fr_sign.h"
#include "fr_time.h"

static double us_per(uint64_t ns, int n)
{
    return (double)ns / n / 1000.0;
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: sign_bench RECORD.json KEY.pem [N]\n");
        return 2;
    }
    int n = argc > 3 ? atoi(argv[3]) : 2000;
    char err[256] = "";
    json_error_t jerr;
    json_t *rec = json_load_file(argv[1], 0, &jerr);
    EVP_PKEY *k = NULL;
    if (!rec || fr_sign_key_load(argv[2], &k, err, sizeof err) < 0 || n <= 0) {
        fprintf(stderr, "sign_bench: %s\n", rec ? err : jerr.text);
        return 1;
    }
    char *canon = NULL, *line = NULL;
    size_t len = 0;
    uint64_t t0 = fr_time_thread_cpu_ns();
    for (int i = 0; i < n; i++) {
        free(canon);
        fr_canon_json(rec, &canon, &len, err, sizeof err);
    }
    uint64_t t1 = fr_time_thread_cpu_ns();
    for (int i = 0; i < n; i++) {
        struct fr_signer *sg = NULL;
        fr_signer_new(k, &sg, err, sizeof err);
        fr_signer_free(sg);
    }
    uint64_t t2 = fr_time_thread_cpu_ns();
    struct fr_signer *sg = NULL;
    if (fr_signer_new(k, &sg, err, sizeof err) < 0) {
        fprintf(stderr, "sign_bench: %s\n", err);
        return 1;
    }
    for (int i = 0; i < n; i++) {
        free(line);
        fr_signer_sign_canon(sg, canon, len, &line, err, sizeof err);
    }
    uint64_t t3 = fr_time_thread_cpu_ns();
    printf("record of %zu bytes, %d rounds, CPU per operation:\n", len, n);
    printf("  canonical JSON (loop)       %8.1f us\n", us_per(t1 - t0, n));
    printf("  fr_signer_new (per batch)   %8.1f us\n", us_per(t2 - t1, n));
    printf("  sign the canonical text     %8.1f us\n", us_per(t3 - t2, n));
    fr_signer_free(sg);
    free(canon);
    free(line);
    EVP_PKEY_free(k);
    json_decref(rec);
    return 0;
}
