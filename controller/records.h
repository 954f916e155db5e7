/* records — the signed sanitization record of each unit run (proto/PROTOCOL.md
 * "Sanitization records").
 *
 * When a unit's run in a job reaches a terminal state (done, failed, cancelled,
 * hardware_suspect), the store calls records' hook inside that same transaction; it
 * reads what the store knows of the run (store_record_facts), builds the record
 * (records_build: the fields of R2v3 Appendix B and of NIST SP 800-88 Rev. 1 Appendix G's
 * certificate of sanitization), signs its canonical JSON with the controller's Ed25519
 * record key (fr_sign.h) and stores the line once. A record is never rewritten: the
 * table has no UPDATE path and triggers refuse one. A failure to build or sign fails
 * the transaction, so a run never ends without its record.
 *
 * The key is [records] key (default KEYS_DIR/record.key), made at first start when
 * missing (0600, atomically; its public key beside it as record.key.pub).
 * Loop thread only. */
#ifndef RECORDS_H
#define RECORDS_H

#include <jansson.h>
#include <openssl/evp.h>

#include "fr_sign.h"
#include "store.h"

struct records {
    EVP_PKEY *key;
    char key_id[FR_SIGN_KEY_ID_LEN + 1];
    char site[128], destination[256];
    uint64_t written;            /* records written by this process */
};

/* What a record says beyond the store's facts. */
struct records_info {
    const char *site, *destination;
    const char *signed_at;       /* ISO-8601 UTC */
};

/* Loads the key at key_path, making it (and key_path.pub) when it does not exist.
 * FR_ECONFIG / FR_EIO with the reason naming the file. */
int records_open(struct records *r, const char *key_path, const char *site, const char *destination,
                 char *err, size_t errlen);
void records_release(struct records *r);
/* Installs the hook on s: from now on every run that ends gets its record. */
void records_attach(struct records *r, struct store *s);

/* The record of one run from its facts (store_record_facts). Pure. */
json_t *records_build(const json_t *facts, const struct records_info *info);

#define RECORDS_MANUFACTURER "Apple"
#define RECORDS_MEDIA "flash memory"
#define RECORDS_METHOD "Purge \xe2\x80\x94 cryptographic erase by erase-restore"
/* A unit whose IMEI no agent read (lockdownd gives it only in a paired session). */
#define RECORDS_IMEI_UNKNOWN "not known"
/* How a restore is verified where the unit reaches normal mode (verify.h). */
#define RECORDS_VERIFY_METHOD "ProductVersion and BuildVersion read through lockdownd (unpaired) " \
                              "once the unit was back in normal mode, compared with the IPSW installed"

#endif
