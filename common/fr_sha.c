/* fr_sha — SHA-256 and SHA-1 through OpenSSL's EVP interface; see fr_sha.h. */
#include "fr_sha.h"

#include <openssl/evp.h>
#include <stdio.h>

static void *ctx_new(const EVP_MD *md)
{
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    if (ctx && EVP_DigestInit_ex(ctx, md, NULL) != 1) {
        EVP_MD_CTX_free(ctx);
        ctx = NULL;
    }
    return ctx;
}

static void ctx_update(void **ctx, const void *data, size_t n)
{
    if (*ctx && n && EVP_DigestUpdate(*ctx, data, n) != 1) {
        EVP_MD_CTX_free(*ctx); /* a failed update would give a wrong hash: give none */
        *ctx = NULL;
    }
}

/* Finalizes into hex (2 * the digest's size + NUL, or "" without a context). */
static void ctx_hex(void **ctx, char *hex, size_t digest_len)
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    hex[0] = '\0';
    if (*ctx && EVP_DigestFinal_ex(*ctx, md, &len) == 1 && len == digest_len)
        for (unsigned int i = 0; i < len; i++)
            snprintf(hex + 2 * i, 3, "%02x", md[i]);
    EVP_MD_CTX_free(*ctx);
    *ctx = NULL;
}

static void ctx_release(void **ctx)
{
    EVP_MD_CTX_free(*ctx);
    *ctx = NULL;
}

void fr_sha256_init(struct fr_sha256 *c) { c->ctx = ctx_new(EVP_sha256()); }
void fr_sha256_update(struct fr_sha256 *c, const void *data, size_t n) { ctx_update(&c->ctx, data, n); }
void fr_sha256_hex(struct fr_sha256 *c, char hex[65]) { ctx_hex(&c->ctx, hex, 32); }
void fr_sha256_release(struct fr_sha256 *c) { ctx_release(&c->ctx); }

void fr_sha1_init(struct fr_sha1 *c) { c->ctx = ctx_new(EVP_sha1()); }
void fr_sha1_update(struct fr_sha1 *c, const void *data, size_t n) { ctx_update(&c->ctx, data, n); }
void fr_sha1_hex(struct fr_sha1 *c, char hex[41]) { ctx_hex(&c->ctx, hex, 20); }
void fr_sha1_release(struct fr_sha1 *c) { ctx_release(&c->ctx); }
