/* fr_sha — SHA-256 and SHA-1; see fr_sha.h. */
#include "fr_sha.h"

#include <stdio.h>
#include <string.h>
#if defined(__x86_64__)
#include <cpuid.h>
#include <immintrin.h>
#endif

#define ROR(x, n) (((x) >> (n)) | ((x) << (32 - (n))))
#define ROL(x, n) (((x) << (n)) | ((x) >> (32 - (n))))

static const uint32_t K256[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
};

static uint32_t be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void sha256_block(uint32_t h[8], const uint8_t *p)
{
    uint32_t w[64];
    for (int i = 0; i < 16; i++)
        w[i] = be32(p + 4 * i);
    for (int i = 16; i < 64; i++) {
        uint32_t s0 = ROR(w[i - 15], 7) ^ ROR(w[i - 15], 18) ^ (w[i - 15] >> 3);
        uint32_t s1 = ROR(w[i - 2], 17) ^ ROR(w[i - 2], 19) ^ (w[i - 2] >> 10);
        w[i] = w[i - 16] + s0 + w[i - 7] + s1;
    }
    uint32_t a = h[0], b = h[1], c = h[2], d = h[3], e = h[4], f = h[5], g = h[6], hh = h[7];
    for (int i = 0; i < 64; i++) {
        uint32_t t1 = hh + (ROR(e, 6) ^ ROR(e, 11) ^ ROR(e, 25)) + ((e & f) ^ (~e & g)) + K256[i] + w[i];
        uint32_t t2 = (ROR(a, 2) ^ ROR(a, 13) ^ ROR(a, 22)) + ((a & b) ^ (a & c) ^ (b & c));
        hh = g, g = f, f = e, e = d + t1, d = c, c = b, b = a, a = t1 + t2;
    }
    h[0] += a, h[1] += b, h[2] += c, h[3] += d, h[4] += e, h[5] += f, h[6] += g, h[7] += hh;
}

static void sha1_block(uint32_t h[5], const uint8_t *p)
{
    uint32_t w[80], a = h[0], b = h[1], c = h[2], d = h[3], e = h[4];
    for (int i = 0; i < 16; i++)
        w[i] = be32(p + 4 * i);
    for (int i = 16; i < 80; i++)
        w[i] = ROL(w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16], 1);
    for (int i = 0; i < 80; i++) {
        uint32_t f, k;
        if (i < 20)
            f = (b & c) | (~b & d), k = 0x5A827999;
        else if (i < 40)
            f = b ^ c ^ d, k = 0x6ED9EBA1;
        else if (i < 60)
            f = (b & c) | (b & d) | (c & d), k = 0x8F1BBCDC;
        else
            f = b ^ c ^ d, k = 0xCA62C1D6;
        uint32_t t = ROL(a, 5) + f + e + k + w[i];
        e = d, d = c, c = ROL(b, 30), b = a, a = t;
    }
    h[0] += a, h[1] += b, h[2] += c, h[3] += d, h[4] += e;
}

/* The shared Merkle–Damgård buffering of both hashes. */
static void feed(uint32_t *h, uint8_t buf[64], size_t *used, uint64_t *bytes, const uint8_t *p,
                 size_t n, void (*block)(uint32_t *, const uint8_t *))
{
    *bytes += n;
    if (*used) {
        size_t take = 64 - *used < n ? 64 - *used : n;
        memcpy(buf + *used, p, take);
        *used += take, p += take, n -= take;
        if (*used < 64)
            return;
        block(h, buf);
        *used = 0;
    }
    for (; n >= 64; p += 64, n -= 64)
        block(h, p);
    memcpy(buf, p, n);
    *used = n;
}

static void finish(uint32_t *h, uint8_t buf[64], size_t used, uint64_t bytes,
                   void (*block)(uint32_t *, const uint8_t *))
{
    uint64_t bits = bytes * 8;
    buf[used++] = 0x80;
    if (used > 56) {
        memset(buf + used, 0, 64 - used);
        block(h, buf);
        used = 0;
    }
    memset(buf + used, 0, 56 - used);
    for (int i = 0; i < 8; i++)
        buf[56 + i] = (uint8_t)(bits >> (56 - 8 * i));
    block(h, buf);
}

static void sha256_block_any(uint32_t *h, const uint8_t *p) { sha256_block(h, p); }

#if defined(__x86_64__)
/* SHA-256 with the x86 SHA extensions: four rounds per pair of sha256rnds2, the
 * message schedule with sha256msg1/msg2. About ten times the plain C rounds. */
__attribute__((target("sha,sse4.1,ssse3"))) static void sha256_block_ni(uint32_t *h, const uint8_t *p)
{
    const __m128i mask = _mm_set_epi64x(0x0c0d0e0f08090a0bULL, 0x0405060700010203ULL);
    __m128i tmp = _mm_shuffle_epi32(_mm_loadu_si128((const __m128i *)&h[0]), 0xB1); /* CDAB */
    __m128i s1 = _mm_shuffle_epi32(_mm_loadu_si128((const __m128i *)&h[4]), 0x1B);  /* EFGH */
    __m128i s0 = _mm_alignr_epi8(tmp, s1, 8);                                       /* ABEF */
    s1 = _mm_blend_epi16(s1, tmp, 0xF0);                                            /* CDGH */
    const __m128i abef = s0, cdgh = s1;
    __m128i msg[4];
    for (int g = 0; g < 16; g++) {
        if (g < 4)
            msg[g] = _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)(p + 16 * g)), mask);
        else
            msg[g % 4] = _mm_sha256msg2_epu32(
                _mm_add_epi32(_mm_sha256msg1_epu32(msg[g % 4], msg[(g + 1) % 4]),
                              _mm_alignr_epi8(msg[(g + 3) % 4], msg[(g + 2) % 4], 4)),
                msg[(g + 3) % 4]);
        __m128i m = _mm_add_epi32(msg[g % 4], _mm_loadu_si128((const __m128i *)&K256[4 * g]));
        s1 = _mm_sha256rnds2_epu32(s1, s0, m);
        s0 = _mm_sha256rnds2_epu32(s0, s1, _mm_shuffle_epi32(m, 0x0E));
    }
    s0 = _mm_add_epi32(s0, abef);
    s1 = _mm_add_epi32(s1, cdgh);
    tmp = _mm_shuffle_epi32(s0, 0x1B);       /* FEBA */
    s1 = _mm_shuffle_epi32(s1, 0xB1);        /* DCHG */
    s0 = _mm_blend_epi16(tmp, s1, 0xF0);     /* DCBA */
    s1 = _mm_alignr_epi8(s1, tmp, 8);        /* HGFE */
    _mm_storeu_si128((__m128i *)&h[0], s0);
    _mm_storeu_si128((__m128i *)&h[4], s1);
}

static int cpu_has_sha(void)
{
    unsigned a, b, c, d;
    return __get_cpuid_count(7, 0, &a, &b, &c, &d) && (b & (1u << 29)) &&
           __get_cpuid(1, &a, &b, &c, &d) && (c & (1u << 19)) && (c & (1u << 9));
}
#else
static void sha256_block_ni(uint32_t *h, const uint8_t *p) { sha256_block(h, p); }
static int cpu_has_sha(void) { return 0; }
#endif
static void sha1_block_any(uint32_t *h, const uint8_t *p) { sha1_block(h, p); }

void fr_sha256_init(struct fr_sha256 *c)
{
    static const uint32_t iv[8] = { 0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
                                    0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19 };
    memset(c, 0, sizeof *c);
    memcpy(c->h, iv, sizeof iv);
    c->ni = cpu_has_sha();
}

void fr_sha256_init_portable(struct fr_sha256 *c)
{
    fr_sha256_init(c);
    c->ni = 0;
}

void fr_sha256_update(struct fr_sha256 *c, const void *data, size_t n)
{
    feed(c->h, c->buf, &c->used, &c->bytes, data, n, c->ni ? sha256_block_ni : sha256_block_any);
}

void fr_sha256_hex(struct fr_sha256 *c, char hex[65])
{
    finish(c->h, c->buf, c->used, c->bytes, c->ni ? sha256_block_ni : sha256_block_any);
    for (int i = 0; i < 8; i++)
        snprintf(hex + 8 * i, 9, "%08x", c->h[i]);
}

void fr_sha1_init(struct fr_sha1 *c)
{
    static const uint32_t iv[5] = { 0x67452301, 0xEFCDAB89, 0x98BADCFE, 0x10325476, 0xC3D2E1F0 };
    memset(c, 0, sizeof *c);
    memcpy(c->h, iv, sizeof iv);
}

void fr_sha1_update(struct fr_sha1 *c, const void *data, size_t n)
{
    feed(c->h, c->buf, &c->used, &c->bytes, data, n, sha1_block_any);
}

void fr_sha1_hex(struct fr_sha1 *c, char hex[41])
{
    finish(c->h, c->buf, c->used, c->bytes, sha1_block_any);
    for (int i = 0; i < 5; i++)
        snprintf(hex + 8 * i, 9, "%08x", c->h[i]);
}
