/* records — the signed sanitization record of each unit run (proto/PROTOCOL.md
 * "Sanitization records").
 *
 * When a unit's run in a job reaches a terminal state (done, failed, cancelled,
 * hardware_suspect), the store calls records' hook inside that transaction; the hook only
 * notes the run as due. The record is written after that transaction commits, so that
 * neither the result's commit nor its ack waits for it, a batch of at most
 * RECORDS_PER_TURN runs at a time: the loop reads what the store knows of the batch's runs
 * (store_record_facts_batch: two statements for the batch), builds each record
 * (records_build: the fields of R2v3 Appendix B and of NIST SP 800-88 Rev. 1 Appendix G's
 * certificate of sanitization) and its canonical JSON; a thread of libuv's pool signs
 * them with the controller's Ed25519 record key (fr_sign.h; the batch has its own
 * signer, as a signer is one thread's); back on the loop, after-work stores the lines in
 * one transaction. One batch is in flight at a time: the next is taken only once the
 * last is stored, so no run is in two. Until then a run's record is pending
 * (store_records_pending). A record is never rewritten: the table has no UPDATE path
 * and triggers refuse one.
 *
 * What is due is found again in the store, not only in memory: a run noted here whose
 * transaction rolled back is skipped (it has not ended), and at start
 * records_catch_up writes every record a stop between a run's end and its record left
 * missing (a crash, a kill, a batch still on the pool): each ended run gets exactly one.
 * A stop (records_close) waits for the batch on the pool (cancelled if it has not begun)
 * and writes what is still due.
 *
 * The key is [records] key (default KEYS_DIR/record.key), made at first start when
 * missing (0600, atomically; its public key beside it as record.key.pub).
 * Loop thread only, but for the signing of a batch on the pool. */
#ifndef RECORDS_H
#define RECORDS_H

#include <jansson.h>
#include <openssl/evp.h>
#include <uv.h>

#include "fr_sign.h"
#include "loop_probe.h"
#include "store.h"

/* Records in a batch; the next after the loop has polled again. Each batch is two turns of
 * the loop (read and built; stored), each about 0.12 ms a record: at 64 a record's turns
 * took 7-11 ms of the loop's CPU, and a unit plugged meanwhile waited for its JobAssign. */
#define RECORDS_PER_TURN 16
#define RECORDS_RETRY_MS 1000  /* after a batch that could not be written */

/* A run whose record is due: ecid 0 for every ended run of job (a cancel), job 0 for
 * every ended run in the store. */
struct record_due {
    uint64_t job, ecid;
};

struct record_batch;

struct records {
    EVP_PKEY *key;
    struct fr_signer *signer;    /* the key set up for signing once, on the loop */
    char key_id[FR_SIGN_KEY_ID_LEN + 1];
    char site[128], destination[256];
    uint64_t written;            /* records written by this process */
    struct record_due *due;      /* due[head..ndue): noted, not yet written */
    size_t head, ndue, cap;
    int all_due;                 /* every ended run without a record is due (start, no room) */
    struct store *store;         /* records_start's */
    uv_loop_t *loop;
    uv_timer_t timer;            /* records_start: takes a batch of what is due after the turn */
    struct record_batch *batch;  /* the batch on the pool, or NULL */
    int started, closing;
    struct loop_count work;      /* the loop's share: batches read and built, their records */
    struct loop_count store_work; /* ... and the batches' records stored (loop_probe.h) */
    uint64_t signed_on_pool, pool_cpu_ns; /* records signed on the pool, and the pool's CPU */
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
/* Installs the hook on s: from now on every run that ends is noted as due. */
void records_attach(struct records *r, struct store *s);
/* Writes up to max due records in one transaction of s, signed here; returns how many
 * entries are still due (> 0: call again), or a negative fr_err code (the batch rolled
 * back, still due; FR_EBUSY while a batch is on the pool). */
int records_write_due(struct records *r, struct store *s, size_t max, uint64_t now_ms);
/* Every ended run in s without a record gets it now (at start); how many were written,
 * or a negative fr_err code. */
int records_catch_up(struct records *r, struct store *s, uint64_t now_ms);
/* Writes due records on loop, a batch at a time signed on libuv's pool, from a timer armed
 * when a run is noted: it fires after the turn that noted it has committed. */
void records_start(struct records *r, uv_loop_t *loop, struct store *s);
/* The loop is stopping: once the batch on the pool (if any) is back, writes what is
 * still due and closes the timer. Let the loop run until it ends. */
void records_close(struct records *r, struct store *s);

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
