/* fr_sign — signed records: canonical JSON and Ed25519 (OpenSSL libcrypto).
 *
 * Canonical JSON (proto/PROTOCOL.md "Signed records"): no whitespace; object members
 * sorted by the bytes of their UTF-8 keys; strings escape only '"', '\' and the control
 * characters below U+0020 (as \b \f \n \r \t, the others as \u00xx in lower-case hex),
 * everything else is written as its UTF-8 bytes; integers in plain decimal; true, false,
 * null. Real numbers are refused (FR_EINVAL): their text is not unique, so a record
 * carries durations and sizes as integers.
 *
 * A signed record is one line of canonical JSON:
 *   {"record":{...},"signature":{"alg":"Ed25519","key_id":"<hex>","value":"<base64>"}}
 * where value is the Ed25519 signature of the canonical JSON of "record" alone and
 * key_id the first 16 hex digits of the SHA-256 of the 32-byte public key. A checker
 * also requires the line itself to be canonical, so that every byte of the file is
 * covered: a changed space fails as surely as a changed digit.
 *
 * Keys are PEM files (PKCS#8 private key, mode 0600; SubjectPublicKeyInfo public
 * key), so anyone can check a record with `openssl pkeyutl -verify -rawin` too.
 * Keys are EVP_PKEY *: the caller frees them with EVP_PKEY_free(). Functions return 0
 * or a negative fr_err code with the reason in err (naming the file). Thread-safe, but
 * a struct fr_signer is used by one thread at a time. */
#ifndef FR_SIGN_H
#define FR_SIGN_H

#include <jansson.h>
#include <openssl/evp.h>
#include <stddef.h>

#define FR_SIGN_KEY_ID_LEN 16

/* Canonical JSON of v into *out (malloc'ed, NUL-terminated), *len its length (may be
 * NULL). FR_EINVAL (with the path of the offending value in err) for a real number. */
int fr_canon_json(const json_t *v, char **out, size_t *len, char *err, size_t errlen);

/* A fresh key written to path (PEM, 0600, atomically) and its public key to pub_path
 * (0644). Fails with FR_EEXIST when path exists and force is 0. */
int fr_sign_key_generate(const char *path, const char *pub_path, int force, char *err, size_t errlen);
/* The private key at path. */
int fr_sign_key_load(const char *path, EVP_PKEY **out, char *err, size_t errlen);
/* A public key from path: a public key file, or a private key file (its public half). */
int fr_sign_pub_load(const char *path, EVP_PKEY **out, char *err, size_t errlen);
/* The PEM text of k's public key (malloc'ed). */
int fr_sign_pub_pem(EVP_PKEY *k, char **pem);
/* k's key id (FR_SIGN_KEY_ID_LEN hex digits). */
int fr_sign_key_id(EVP_PKEY *k, char id[FR_SIGN_KEY_ID_LEN + 1]);

/* The signed record line (no newline) for record, into *line (malloc'ed). */
int fr_sign_record(EVP_PKEY *k, const json_t *record, char **line, char *err, size_t errlen);

/* A key made ready for many records: its key id and its signing context set up once,
 * not per record (a controller signs one per ended run). The lines are fr_sign_record's,
 * byte for byte. k stays the caller's and must outlive the signer. */
struct fr_signer;
int fr_signer_new(EVP_PKEY *k, struct fr_signer **out, char *err, size_t errlen);
void fr_signer_free(struct fr_signer *sg);
int fr_signer_sign(struct fr_signer *sg, const json_t *record, char **line, char *err, size_t errlen);
/* The same from the record's canonical JSON (fr_canon_json's msg, len): what a thread that
 * does not share the caller's jansson values signs (records.h signs on libuv's pool). */
int fr_signer_sign_canon(struct fr_signer *sg, const char *msg, size_t len, char **line, char *err,
                         size_t errlen);
/* Checks one signed record line (trailing "\n" allowed) against pub. 0 and *record
 * (when not NULL; the caller decrefs) when it is canonical and the signature is
 * pub's over its record; else FR_EPROTO (not a signed record: the reason) or FR_EPERM
 * (altered, or signed by another key: which). */
int fr_verify_record(EVP_PKEY *pub, const char *line, size_t len, json_t **record, char *err,
                     size_t errlen);

#endif
