/* fr_sha — streaming SHA-256 and SHA-1 (FIPS 180-4), so an IPSW is hashed while
 * it downloads and never read a second time. Plain C, no state beyond the context. */
#ifndef FR_SHA_H
#define FR_SHA_H

#include <stddef.h>
#include <stdint.h>

struct fr_sha256 {
    uint32_t h[8];
    uint64_t bytes;
    uint8_t buf[64];
    size_t used;
    int ni;              /* the CPU's SHA instructions are used */
};

struct fr_sha1 {
    uint32_t h[5];
    uint64_t bytes;
    uint8_t buf[64];
    size_t used;
};

void fr_sha256_init(struct fr_sha256 *c);
/* Same, never using the CPU's SHA instructions (to test one path against the other). */
void fr_sha256_init_portable(struct fr_sha256 *c);
void fr_sha256_update(struct fr_sha256 *c, const void *data, size_t n);
/* Writes 64 lower-case hex digits and a NUL into hex (65 bytes). */
void fr_sha256_hex(struct fr_sha256 *c, char hex[65]);

void fr_sha1_init(struct fr_sha1 *c);
void fr_sha1_update(struct fr_sha1 *c, const void *data, size_t n);
void fr_sha1_hex(struct fr_sha1 *c, char hex[41]);

#endif
