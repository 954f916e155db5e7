/* record — `flashrack record`: the signed sanitization records (proto/PROTOCOL.md
 * "Sanitization records").
 *
 *   record JOB|ECID [-o table|json|csv|pdf] [--out DIR]   export (asks the controller)
 *   record verify FILE [--pubkey FILE]                     offline check, no controller
 *   record pubkey [--keys-dir KEYS_DIR]                    the public key, PEM
 *
 * cli.c parses the options and fetches the document; this module writes what the
 * records say (JSON Lines exactly as signed, CSV, a one-page PDF certificate per unit
 * through cert.h) and checks records offline. Functions return the CLI's exit code. */
#ifndef CLI_RECORD_H
#define CLI_RECORD_H

#include <jansson.h>

/* Exit codes of `record verify`: every record valid; one is not (altered, another key's,
 * not a signed record); the file or the key could not be read. */
enum { RECORD_VERIFY_OK = 0, RECORD_VERIFY_BAD = 1, RECORD_VERIFY_UNREADABLE = 2 };

/* Checks every line of path against the public key in pubkey (NULL: the default, see
 * record_pubkey_path()); prints one line per record. */
int record_verify(const char *path, const char *pubkey);
/* The public key file `record verify` uses without --pubkey: $FLASHRACK_RECORD_PUBKEY, else
 * KEYS_DIR/record.key.pub with KEYS_DIR = $FLASHRACK_KEYS_DIR or ./keys. */
int record_pubkey_path(char *buf, size_t len); /* 0, or FR_ETOOBIG: longer than len - 1 */
/* Prints the public half of KEYS_DIR/record.key (--keys-dir; NULL: $FLASHRACK_KEYS_DIR or ./keys). */
int record_pubkey(const char *dir);
/* The paths export writes: --out DIR, "/" and a file's name. */
#define RECORD_PATH_MAX 4096
/* 0 when out_dir (NULL: none) leaves room for the names export writes into it; else
 * prints the --out error and returns -1 (checked before anything is asked or made). */
int record_check_out(const char *out_dir);
/* Writes doc ({"records": [LINE...]}) as format ("table", "json", "csv", "pdf") to stdout,
 * or to files in out_dir (required for pdf). */
int record_export(const json_t *doc, const char *format, const char *out_dir);

/* One row of the CSV form per record: the columns, and their values for rec. */
extern const char *const record_csv_columns[];
void record_csv_row(const json_t *rec, FILE *out);

#define RECORD_USAGE                                                                          \
    "  record JOB|ECID [-o table|json|csv|pdf] [--out DIR]\n"                                 \
    "  The signed sanitization record of every unit of job JOB, or of unit ECID (0x...) in\n"  \
    "  every job: json is one signed record per line, exactly as the controller signed it;\n" \
    "  csv one row per unit; pdf a one-page certificate per unit (needs --out). --out DIR\n"   \
    "  writes files there (JOB-ECID.json, .pdf; records.csv) instead of to stdout. A run that\n" \
    "  has just ended may have its record pending (signed just after): stderr says how many,\n" \
    "  and the exit code is 1 while none is written yet.\n"                                    \
    "  record verify FILE [--pubkey FILE]\n"                                                  \
    "  Checks every record in FILE offline against the controller's record key (default\n"    \
    "  $FLASHRACK_RECORD_PUBKEY, else $FLASHRACK_KEYS_DIR/record.key.pub, else\n"              \
    "  keys/record.key.pub). Exit code 0 all valid, 1 a record is altered or signed by\n"     \
    "  another key, 2 FILE or the key cannot be read.\n"                                      \
    "  record pubkey [--keys-dir KEYS_DIR]\n"                                                         \
    "  Prints the record key's public half (PEM), for whoever checks the records.\n"

#endif
