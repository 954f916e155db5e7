/* record — exporting and checking sanitization records; see record.h. */
#include "record.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cert.h"
#include "csv.h"
#include "fr_sign.h"
#include "fr_text.h"

static const char *keys_dir(const char *dir)
{
    if (dir && *dir)
        return dir;
    const char *env = getenv("FLASHRACK_KEYS_DIR");
    return env && *env ? env : "keys";
}

int record_pubkey_path(char *buf, size_t len)
{
    const char *env = getenv("FLASHRACK_RECORD_PUBKEY");
    if (env && *env)
        return fr_fmt(buf, len, "%s", env);
    return fr_fmt(buf, len, "%s/record.key.pub", keys_dir(NULL));
}

int record_pubkey(const char *dir)
{
    char path[4096], err[512], *pem = NULL;
    if (fr_fmt(path, sizeof path, "%s/record.key", keys_dir(dir)) < 0) {
        fprintf(stderr, "flashrack record pubkey: --keys-dir: '%s/record.key' is longer than %zu "
                        "bytes\n", keys_dir(dir), sizeof path - 1);
        return RECORD_VERIFY_UNREADABLE;
    }
    EVP_PKEY *k = NULL;
    if (fr_sign_pub_load(path, &k, err, sizeof err) < 0) {
        fprintf(stderr, "flashrack record pubkey: %s\n", err);
        return RECORD_VERIFY_UNREADABLE;
    }
    int rc = fr_sign_pub_pem(k, &pem);
    EVP_PKEY_free(k);
    if (rc == 0)
        fputs(pem, stdout);
    free(pem);
    return rc == 0 ? 0 : RECORD_VERIFY_UNREADABLE;
}

static const char *str(const json_t *o, const char *path)
{
    /* "a.b": one level of nesting is all a record has */
    char key[64];
    const char *dot = strchr(path, '.');
    if (dot) {
        snprintf(key, sizeof key, "%.*s", (int)(dot - path), path);
        o = json_object_get(o, key);
        path = dot + 1;
    }
    const json_t *v = json_object_get(o, path);
    return json_is_string(v) ? json_string_value(v) : "";
}

/* ---- verify ---------------------------------------------------------------------- */

static void say_valid(const char *path, int lineno, const json_t *rec, const char *key_id)
{
    printf("%s:%d: valid: job %lld unit %s (%s), %s, signed with key %s\n", path, lineno,
           (long long)json_integer_value(json_object_get(json_object_get(rec, "job"), "id")),
           str(rec, "device.ecid"), str(rec, "device.model"), str(rec, "result"), key_id);
}

static int verify_lines(FILE *fp, const char *path, EVP_PKEY *pub)
{
    char *line = NULL, err[512], id[FR_SIGN_KEY_ID_LEN + 1];
    size_t cap = 0;
    ssize_t n;
    int lineno = 0, bad = 0, good = 0;
    fr_sign_key_id(pub, id);
    while ((n = getline(&line, &cap, fp)) >= 0) {
        lineno++;
        if (n == 0 || (n == 1 && line[0] == '\n'))
            continue;
        json_t *rec = NULL;
        if (fr_verify_record(pub, line, (size_t)n, &rec, err, sizeof err) == 0) {
            say_valid(path, lineno, rec, id);
            good++;
        } else {
            printf("%s:%d: NOT VALID: %s\n", path, lineno, err);
            bad++;
        }
        json_decref(rec);
    }
    free(line);
    if (good + bad == 0) {
        printf("%s: NOT VALID: no records in it\n", path);
        return RECORD_VERIFY_BAD;
    }
    return bad ? RECORD_VERIFY_BAD : RECORD_VERIFY_OK;
}

int record_verify(const char *path, const char *pubkey)
{
    char keypath[4096], err[512];
    if (!pubkey && record_pubkey_path(keypath, sizeof keypath) < 0) {
        fprintf(stderr, "flashrack record verify: the default public key's path ($FLASHRACK_RECORD_PUBKEY, "
                        "or $FLASHRACK_KEYS_DIR/record.key.pub) is longer than %zu bytes\n",
                sizeof keypath - 1);
        return RECORD_VERIFY_UNREADABLE;
    }
    EVP_PKEY *pub = NULL;
    if (fr_sign_pub_load(pubkey ? pubkey : keypath, &pub, err, sizeof err) < 0) {
        fprintf(stderr, "flashrack record verify: %s (--pubkey names the controller's record.key.pub)\n", err);
        return RECORD_VERIFY_UNREADABLE;
    }
    FILE *fp = fopen(path, "r");
    if (!fp) {
        fprintf(stderr, "flashrack record verify: cannot open '%s': %s\n", path, strerror(errno));
        EVP_PKEY_free(pub);
        return RECORD_VERIFY_UNREADABLE;
    }
    int rc = verify_lines(fp, path, pub);
    fclose(fp);
    EVP_PKEY_free(pub);
    return rc;
}

/* ---- export ------------------------------------------------------------------------ */

const char *const record_csv_columns[] = {
    "job_id", "ecid", "manufacturer", "model", "marketing_name", "serial", "imei", "media_type",
    "method", "ios_version", "ios_build", "ipsw_sha256", "tools", "verification", "operator", "site",
    "station", "port", "started", "ended", "duration_s", "attempts", "result", "destination",
    "signed_at", NULL,
};

void record_csv_row(const json_t *rec, FILE *out)
{
    char job[24], dur[24], natt[24], tools[512];
    snprintf(job, sizeof job, "%lld", (long long)json_integer_value(json_object_get(json_object_get(rec, "job"), "id")));
    snprintf(dur, sizeof dur, "%lld", (long long)json_integer_value(json_object_get(rec, "duration_s")));
    snprintf(natt, sizeof natt, "%zu", json_array_size(json_object_get(rec, "attempts")));
    snprintf(tools, sizeof tools, "%s; %s; %s; libimobiledevice %s", str(rec, "tools.flashrack"),
             str(rec, "tools.agent"), str(rec, "tools.engine"), str(rec, "tools.libimobiledevice"));
    const char *v[] = {
        job, str(rec, "device.ecid"), str(rec, "device.manufacturer"), str(rec, "device.model"),
        str(rec, "device.marketing_name"), str(rec, "device.serial"), str(rec, "device.imei"),
        str(rec, "media_type"), str(rec, "sanitization.method"), str(rec, "firmware.version"),
        str(rec, "firmware.build"), str(rec, "firmware.sha256"), tools, str(rec, "verification.result"),
        str(rec, "operator"), str(rec, "site"), str(rec, "station"), str(rec, "port"),
        str(rec, "started"), str(rec, "ended"), dur, natt, str(rec, "result"), str(rec, "destination"),
        str(rec, "signed_at"),
    };
    for (size_t i = 0; record_csv_columns[i]; i++)
        csv_field(out, v[i], i == 0);
    csv_end(out);
}

/* The record inside a signed line (not checked here: `record verify` does that). */
static json_t *record_of(const char *line)
{
    json_error_t je;
    json_t *whole = json_loads(line, 0, &je);
    json_t *rec = json_incref(json_object_get(whole, "record"));
    json_decref(whole);
    return rec;
}

/* The longest file name export writes into --out (file_name() below). */
#define RECORD_NAME_MAX 127

int record_check_out(const char *out_dir)
{
    if (!out_dir || strlen(out_dir) + 1 + RECORD_NAME_MAX < RECORD_PATH_MAX)
        return 0;
    fprintf(stderr, "flashrack record: --out: expected a directory path of at most %d bytes (its "
                    "files' names are added to it), got %zu bytes\n",
            RECORD_PATH_MAX - 2 - RECORD_NAME_MAX, strlen(out_dir));
    return -1;
}

static FILE *open_out(const char *dir, const char *name, char *path, size_t len)
{
    if (fr_fmt(path, len, "%s/%s", dir, name) < 0) { /* record_check_out() keeps this off */
        fprintf(stderr, "flashrack record: --out: '%s/%s' is too long\n", dir, name);
        return NULL;
    }
    FILE *fp = fopen(path, "w");
    if (!fp)
        fprintf(stderr, "flashrack record: cannot write '%s': %s\n", path, strerror(errno));
    return fp;
}

static void file_name(const json_t *rec, const char *ext, char *buf, size_t len)
{
    snprintf(buf, len, "%lld-%s.%s",
             (long long)json_integer_value(json_object_get(json_object_get(rec, "job"), "id")),
             str(rec, "device.ecid"), ext);
}

static void print_table_row(const json_t *rec)
{
    printf("%-5lld %-20s %-12s %-24s %-10s %-9s %s\n",
           (long long)json_integer_value(json_object_get(json_object_get(rec, "job"), "id")),
           str(rec, "device.ecid"), str(rec, "device.model"), str(rec, "result"),
           *str(rec, "firmware.version") ? str(rec, "firmware.version") : "-",
           *str(rec, "firmware.build") ? str(rec, "firmware.build") : "-", str(rec, "ended"));
}

/* One record in one format: to out (json, csv, table) or to a file of its own in dir. */
static int export_one(const char *line, const json_t *rec, const char *format, const char *dir, FILE *out)
{
    char name[RECORD_NAME_MAX + 1], path[RECORD_PATH_MAX], err[512];
    if (!strcmp(format, "csv")) {
        record_csv_row(rec, out);
        return 0;
    }
    if (!strcmp(format, "table")) {
        print_table_row(rec);
        return 0;
    }
    if (!strcmp(format, "pdf")) {
        file_name(rec, "pdf", name, sizeof name);
        if (fr_fmt(path, sizeof path, "%s/%s", dir, name) < 0) {
            fprintf(stderr, "flashrack record: --out: '%s/%s' is too long\n", dir, name);
            return 1;
        }
        if (cert_pdf(rec, path, err, sizeof err) < 0) {
            fprintf(stderr, "flashrack record: %s\n", err);
            return 1;
        }
        printf("%s\n", path);
        return 0;
    }
    if (!dir) {
        fprintf(out, "%s\n", line);
        return 0;
    }
    file_name(rec, "json", name, sizeof name);
    FILE *fp = open_out(dir, name, path, sizeof path);
    if (!fp)
        return 1;
    fprintf(fp, "%s\n", line);
    int bad = fclose(fp) != 0;
    printf("%s\n", path);
    return bad;
}

int record_export(const json_t *doc, const char *format, const char *out_dir)
{
    if (!strcmp(format, "pdf") && !out_dir) {
        fprintf(stderr, "flashrack record: -o pdf writes one file per unit: name a directory with --out\n");
        return 2;
    }
    if (record_check_out(out_dir) < 0)
        return 2;
    if (out_dir && mkdir(out_dir, 0755) < 0 && errno != EEXIST) {
        fprintf(stderr, "flashrack record: cannot make '%s': %s\n", out_dir, strerror(errno));
        return 1;
    }
    FILE *out = stdout;
    char path[RECORD_PATH_MAX];
    if (!strcmp(format, "csv") && out_dir && !(out = open_out(out_dir, "records.csv", path, sizeof path)))
        return 1;
    if (!strcmp(format, "csv"))
        for (size_t i = 0; record_csv_columns[i]; i++)
            csv_field(out, record_csv_columns[i], i == 0);
    if (!strcmp(format, "csv"))
        csv_end(out);
    if (!strcmp(format, "table"))
        printf("%-5s %-20s %-12s %-24s %-10s %-9s %s\n", "JOB", "ECID", "MODEL", "RESULT", "IOS",
               "BUILD", "ENDED");
    int rc = 0;
    size_t i;
    const json_t *l;
    json_array_foreach(json_object_get(doc, "records"), i, l) {
        json_t *rec = record_of(json_string_value(l));
        rc |= rec ? export_one(json_string_value(l), rec, format, out_dir, out) : 1;
        json_decref(rec);
    }
    if (!strcmp(format, "pdf"))
        cert_done();
    json_int_t pending = json_integer_value(json_object_get(doc, "pending"));
    if (pending > 0) /* runs that ended, their records written after their commit */
        fprintf(stderr, "flashrack record: %lld more pending (the run%s ended; %s being signed)\n",
                (long long)pending, pending == 1 ? "" : "s", pending == 1 ? "its record is" : "their records are");
    if (out != stdout) {
        rc |= fclose(out) != 0;
        printf("%s\n", path);
    }
    return rc ? 1 : 0;
}
