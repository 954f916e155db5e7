/* fr_sha — streaming SHA-256 and SHA-1, so an IPSW is hashed while it downloads and
 * never read a second time. OpenSSL's libcrypto (EVP) does the hashing: one crypto
 * library for the project (libcurl already links it), with its CPU-specific code.
 *
 * A context holds an EVP context: fr_sha*_hex() finalizes and frees it, and
 * fr_sha*_release() frees one that is dropped unfinished (safe after hex, and twice).
 * If libcrypto cannot allocate a context, update does nothing and hex writes "" (a
 * hash that never matches): a file is never taken for verified by mistake. */
#ifndef FR_SHA_H
#define FR_SHA_H

#include <stddef.h>
#include <stdint.h>

struct fr_sha256 {
    void *ctx;           /* EVP_MD_CTX */
};

struct fr_sha1 {
    void *ctx;
};

void fr_sha256_init(struct fr_sha256 *c);
void fr_sha256_update(struct fr_sha256 *c, const void *data, size_t n);
/* Writes 64 lower-case hex digits and a NUL into hex (65 bytes); frees the context. */
void fr_sha256_hex(struct fr_sha256 *c, char hex[65]);
void fr_sha256_release(struct fr_sha256 *c);

void fr_sha1_init(struct fr_sha1 *c);
void fr_sha1_update(struct fr_sha1 *c, const void *data, size_t n);
void fr_sha1_hex(struct fr_sha1 *c, char hex[41]);
void fr_sha1_release(struct fr_sha1 *c);

#endif
