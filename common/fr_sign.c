/* fr_sign — canonical JSON, Ed25519 record keys, signing and checking records. */
#include "fr_sign.h"
#include "fr_err.h"
#include "fr_keys.h"
#include "fr_sha.h"

#include <errno.h>
#include <openssl/pem.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define CANON_MAX (4u << 20) /* a record is a few KiB; anything near this is a bug */
#define SIG_LEN 64
#define SIG_B64_LEN 88

/* ---- canonical JSON -------------------------------------------------------------- */

struct canon {
    char *buf;
    size_t len, cap;
    int rc;
    char *err;
    size_t errlen;
};

static void put(struct canon *c, const char *s, size_t n)
{
    if (c->rc)
        return;
    if (c->len + n + 1 > CANON_MAX) {
        c->rc = fr_seterr(FR_ETOOBIG, c->err, c->errlen, "canonical JSON over %u bytes", CANON_MAX);
        return;
    }
    if (c->len + n + 1 > c->cap) {
        size_t cap = c->cap ? c->cap : 256;
        while (cap < c->len + n + 1)
            cap *= 2;
        char *nb = realloc(c->buf, cap);
        if (!nb) {
            c->rc = fr_seterr(FR_ENOMEM, c->err, c->errlen, "out of memory");
            return;
        }
        c->buf = nb;
        c->cap = cap;
    }
    memcpy(c->buf + c->len, s, n);
    c->len += n;
    c->buf[c->len] = '\0';
}

static void put_string(struct canon *c, const char *s, size_t n)
{
    put(c, "\"", 1);
    size_t run = 0; /* bytes copied as they are, flushed before each escape */
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch >= 0x20 && ch != '"' && ch != '\\') {
            run++;
            continue;
        }
        put(c, s + i - run, run);
        run = 0;
        char esc[8];
        switch (ch) {
        case '"': put(c, "\\\"", 2); break;
        case '\\': put(c, "\\\\", 2); break;
        case '\b': put(c, "\\b", 2); break;
        case '\f': put(c, "\\f", 2); break;
        case '\n': put(c, "\\n", 2); break;
        case '\r': put(c, "\\r", 2); break;
        case '\t': put(c, "\\t", 2); break;
        default:
            snprintf(esc, sizeof esc, "\\u%04x", ch);
            put(c, esc, 6);
        }
    }
    put(c, s + n - run, run);
    put(c, "\"", 1);
}

static int key_cmp(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static void put_value(struct canon *c, const json_t *v, const char *where);

static void put_object(struct canon *c, const json_t *v, const char *where)
{
    size_t n = json_object_size(v), i = 0;
    const char **keys = calloc(n ? n : 1, sizeof *keys);
    if (!keys) {
        c->rc = fr_seterr(FR_ENOMEM, c->err, c->errlen, "out of memory");
        return;
    }
    const char *k;
    const json_t *m;
    json_object_foreach((json_t *)v, k, m)
        keys[i++] = k;
    qsort(keys, n, sizeof *keys, key_cmp);
    put(c, "{", 1);
    for (i = 0; i < n && !c->rc; i++) {
        if (i)
            put(c, ",", 1);
        put_string(c, keys[i], strlen(keys[i]));
        put(c, ":", 1);
        char path[256];
        snprintf(path, sizeof path, "%s.%s", where, keys[i]);
        put_value(c, json_object_get(v, keys[i]), path);
    }
    put(c, "}", 1);
    free(keys);
}

static void put_value(struct canon *c, const json_t *v, const char *where)
{
    char num[32];
    size_t i;
    const json_t *m;
    switch (json_typeof(v)) {
    case JSON_OBJECT: put_object(c, v, where); break;
    case JSON_ARRAY:
        put(c, "[", 1);
        json_array_foreach((json_t *)v, i, m) {
            if (i)
                put(c, ",", 1);
            char path[256];
            snprintf(path, sizeof path, "%s[%zu]", where, i);
            put_value(c, m, path);
        }
        put(c, "]", 1);
        break;
    case JSON_STRING: put_string(c, json_string_value(v), json_string_length(v)); break;
    case JSON_INTEGER:
        snprintf(num, sizeof num, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
        put(c, num, strlen(num));
        break;
    case JSON_TRUE: put(c, "true", 4); break;
    case JSON_FALSE: put(c, "false", 5); break;
    case JSON_NULL: put(c, "null", 4); break;
    case JSON_REAL:
        if (!c->rc)
            c->rc = fr_seterr(FR_EINVAL, c->err, c->errlen, "%s: a real number has no canonical "
                              "form (use an integer)", where);
        break;
    }
}

int fr_canon_json(const json_t *v, char **out, size_t *len, char *err, size_t errlen)
{
    struct canon c = { .err = err, .errlen = errlen };
    *out = NULL;
    put_value(&c, v, "$");
    if (c.rc) {
        free(c.buf);
        return c.rc;
    }
    *out = c.buf;
    if (len)
        *len = c.len;
    return 0;
}

/* ---- keys ------------------------------------------------------------------------ */

static int pem_of(EVP_PKEY *k, int private, char **pem)
{
    BIO *b = BIO_new(BIO_s_mem());
    int ok = b && (private ? PEM_write_bio_PrivateKey(b, k, NULL, NULL, 0, NULL, NULL)
                           : PEM_write_bio_PUBKEY(b, k));
    char *data;
    long n = ok ? BIO_get_mem_data(b, &data) : 0;
    *pem = n > 0 ? strndup(data, (size_t)n) : NULL;
    BIO_free(b);
    return *pem ? 0 : FR_ENOMEM;
}

int fr_sign_pub_pem(EVP_PKEY *k, char **pem)
{
    return pem_of(k, 0, pem);
}

int fr_sign_key_generate(const char *path, const char *pub_path, int force, char *err, size_t errlen)
{
    struct stat st;
    if (!force && stat(path, &st) == 0)
        return fr_seterr(FR_EEXIST, err, errlen, "'%s' exists (--force replaces it)", path);
    EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
    if (!k)
        return fr_seterr(FR_ESYS, err, errlen, "libcrypto cannot make an Ed25519 key");
    char *priv = NULL, *pub = NULL;
    int rc = pem_of(k, 1, &priv);
    if (rc == 0)
        rc = pem_of(k, 0, &pub);
    if (rc < 0)
        fr_seterr(rc, err, errlen, "cannot write the key: out of memory");
    if (rc == 0)
        rc = fr_file_write_atomic(path, priv, strlen(priv), 0600, err, errlen);
    if (rc == 0)
        rc = fr_file_write_atomic(pub_path, pub, strlen(pub), 0644, err, errlen);
    if (priv)
        OPENSSL_cleanse(priv, strlen(priv));
    free(priv);
    free(pub);
    EVP_PKEY_free(k);
    return rc;
}

static int key_read(const char *path, int private, EVP_PKEY **out, char *err, size_t errlen)
{
    *out = NULL;
    FILE *fp = fopen(path, "r");
    if (!fp)
        return fr_seterr(FR_EIO, err, errlen, "cannot open '%s': %s", path, strerror(errno));
    EVP_PKEY *k = private ? PEM_read_PrivateKey(fp, NULL, NULL, NULL) : NULL;
    if (!private) { /* a public key file, or the private key file of the same key */
        k = PEM_read_PUBKEY(fp, NULL, NULL, NULL);
        if (!k) {
            rewind(fp);
            k = PEM_read_PrivateKey(fp, NULL, NULL, NULL);
        }
    }
    fclose(fp);
    if (!k || EVP_PKEY_get_id(k) != EVP_PKEY_ED25519) {
        EVP_PKEY_free(k);
        return fr_seterr(FR_ECONFIG, err, errlen, "'%s': expected an Ed25519 %s key in PEM form", path,
                         private ? "private" : "public");
    }
    *out = k;
    return 0;
}

int fr_sign_key_load(const char *path, EVP_PKEY **out, char *err, size_t errlen)
{
    return key_read(path, 1, out, err, errlen);
}

int fr_sign_pub_load(const char *path, EVP_PKEY **out, char *err, size_t errlen)
{
    return key_read(path, 0, out, err, errlen);
}

int fr_sign_key_id(EVP_PKEY *k, char id[FR_SIGN_KEY_ID_LEN + 1])
{
    unsigned char raw[32];
    size_t n = sizeof raw;
    id[0] = '\0';
    if (EVP_PKEY_get_raw_public_key(k, raw, &n) != 1 || n != sizeof raw)
        return FR_EINVAL;
    struct fr_sha256 sha;
    char hex[65];
    fr_sha256_init(&sha);
    fr_sha256_update(&sha, raw, n);
    fr_sha256_hex(&sha, hex);
    memcpy(id, hex, FR_SIGN_KEY_ID_LEN);
    id[FR_SIGN_KEY_ID_LEN] = '\0';
    return strlen(hex) == 64 ? 0 : FR_ENOMEM;
}

/* ---- records ----------------------------------------------------------------------- */

struct fr_signer {
    EVP_MD_CTX *ready; /* initialised with the key once; each record signs with a copy */
    EVP_MD_CTX *work;
    char id[FR_SIGN_KEY_ID_LEN + 1];
};

void fr_signer_free(struct fr_signer *sg)
{
    if (!sg)
        return;
    EVP_MD_CTX_free(sg->ready);
    EVP_MD_CTX_free(sg->work);
    free(sg);
}

int fr_signer_new(EVP_PKEY *k, struct fr_signer **out, char *err, size_t errlen)
{
    struct fr_signer *sg = calloc(1, sizeof *sg);
    *out = NULL;
    if (!sg)
        return fr_seterr(FR_ENOMEM, err, errlen, "out of memory");
    sg->ready = EVP_MD_CTX_new();
    sg->work = EVP_MD_CTX_new();
    if (!sg->ready || !sg->work || EVP_DigestSignInit(sg->ready, NULL, NULL, NULL, k) != 1 ||
        fr_sign_key_id(k, sg->id) < 0) {
        fr_signer_free(sg);
        return fr_seterr(FR_ESYS, err, errlen, "libcrypto cannot sign with this key");
    }
    *out = sg;
    return 0;
}

static char *cat(char *p, const char *s, size_t n)
{
    memcpy(p, s, n);
    return p + n;
}

/* The line written around the record's canonical text, in canonical order ("record"
 * before "signature"; "alg", "key_id", "value"): the record is serialized once, and
 * the signature's members need no escaping (hex and base64). */
static int line_of(const char *msg, size_t len, const char *id, const char *b64, char **line,
                   char *err, size_t errlen)
{
    static const char head[] = "{\"record\":", mid[] = ",\"signature\":{\"alg\":\"Ed25519\",\"key_id\":\"",
                      val[] = "\",\"value\":\"", tail[] = "\"}}";
    size_t idlen = strlen(id), n = sizeof head - 1 + len + sizeof mid - 1 + idlen + sizeof val - 1 +
                                   SIG_B64_LEN + sizeof tail - 1;
    char *p = *line = malloc(n + 1);
    if (!p)
        return fr_seterr(FR_ENOMEM, err, errlen, "out of memory");
    p = cat(p, head, sizeof head - 1);
    p = cat(p, msg, len);
    p = cat(p, mid, sizeof mid - 1);
    p = cat(p, id, idlen);
    p = cat(p, val, sizeof val - 1);
    p = cat(p, b64, SIG_B64_LEN);
    cat(p, tail, sizeof tail); /* with its NUL */
    return 0;
}

int fr_signer_sign_canon(struct fr_signer *sg, const char *msg, size_t len, char **line, char *err,
                         size_t errlen)
{
    *line = NULL;
    unsigned char sig[SIG_LEN];
    size_t siglen = sizeof sig;
    int ok = EVP_MD_CTX_copy_ex(sg->work, sg->ready) == 1 &&
             EVP_DigestSign(sg->work, sig, &siglen, (const unsigned char *)msg, len) == 1 &&
             siglen == SIG_LEN;
    if (!ok)
        return fr_seterr(FR_ESYS, err, errlen, "libcrypto cannot sign with this key");
    char b64[SIG_B64_LEN + 1];
    EVP_EncodeBlock((unsigned char *)b64, sig, SIG_LEN);
    return line_of(msg, len, sg->id, b64, line, err, errlen);
}

int fr_signer_sign(struct fr_signer *sg, const json_t *record, char **line, char *err, size_t errlen)
{
    *line = NULL;
    char *msg = NULL;
    size_t len = 0;
    int rc = fr_canon_json(record, &msg, &len, err, errlen);
    if (rc == 0)
        rc = fr_signer_sign_canon(sg, msg, len, line, err, errlen);
    free(msg);
    return rc;
}

int fr_sign_record(EVP_PKEY *k, const json_t *record, char **line, char *err, size_t errlen)
{
    struct fr_signer *sg = NULL;
    *line = NULL;
    int rc = fr_signer_new(k, &sg, err, errlen);
    if (rc == 0)
        rc = fr_signer_sign(sg, record, line, err, errlen);
    fr_signer_free(sg);
    return rc;
}

static int sig_decode(const char *b64, unsigned char sig[SIG_LEN])
{
    unsigned char raw[SIG_B64_LEN];
    if (!b64 || strlen(b64) != SIG_B64_LEN || strcmp(b64 + SIG_B64_LEN - 2, "==") != 0)
        return -1;
    if (EVP_DecodeBlock(raw, (const unsigned char *)b64, SIG_B64_LEN) != SIG_LEN + 2)
        return -1; /* 66: EVP_DecodeBlock counts the two padding bytes */
    /* only the canonical text: the last character before "==" carries 4 unused bits,
     * which decoding ignores, so another text could give the same signature */
    unsigned char again[SIG_B64_LEN + 1];
    EVP_EncodeBlock(again, raw, SIG_LEN);
    if (memcmp(again, b64, SIG_B64_LEN) != 0)
        return -1;
    memcpy(sig, raw, SIG_LEN);
    return 0;
}

/* The line parsed, shaped like a signed record; FR_EPROTO otherwise. */
static int record_parse(const char *line, size_t len, json_t **whole, char *err, size_t errlen)
{
    json_error_t je;
    *whole = json_loadb(line, len, JSON_REJECT_DUPLICATES, &je);
    if (!*whole)
        return fr_seterr(FR_EPROTO, err, errlen, "not JSON (column %d: %s)", je.column, je.text);
    json_t *sig = json_object_get(*whole, "signature");
    const char *alg = json_string_value(json_object_get(sig, "alg"));
    if (!json_is_object(json_object_get(*whole, "record")) || !json_is_object(sig) ||
        json_object_size(*whole) != 2)
        return fr_seterr(FR_EPROTO, err, errlen, "not a signed record: expected an object with "
                         "\"record\" and \"signature\" and nothing else");
    if (!alg || strcmp(alg, "Ed25519") || !json_is_string(json_object_get(sig, "key_id")) ||
        !json_is_string(json_object_get(sig, "value")))
        return fr_seterr(FR_EPROTO, err, errlen, "signature: expected {\"alg\": \"Ed25519\", "
                         "\"key_id\", \"value\"}");
    return 0;
}

/* Where line first differs from its canonical form: 0 when it does not. */
static size_t first_difference(const char *line, size_t len, const char *canon, size_t clen)
{
    size_t i = 0;
    while (i < len && i < clen && line[i] == canon[i])
        i++;
    return i == len && i == clen ? 0 : i + 1;
}

int fr_verify_record(EVP_PKEY *pub, const char *line, size_t len, json_t **record, char *err,
                     size_t errlen)
{
    if (record)
        *record = NULL;
    if (len > 0 && line[len - 1] == '\n')
        len--;
    json_t *whole = NULL;
    char *canon = NULL, *msg = NULL, id[FR_SIGN_KEY_ID_LEN + 1];
    size_t clen = 0, mlen = 0, at;
    unsigned char sig[SIG_LEN];
    int rc = record_parse(line, len, &whole, err, errlen);
    if (rc == 0)
        rc = fr_canon_json(whole, &canon, &clen, err, errlen);
    if (rc == FR_EINVAL)
        rc = FR_EPROTO;
    json_t *sigobj = json_object_get(whole, "signature");
    const char *key_id = json_string_value(json_object_get(sigobj, "key_id"));
    if (rc == 0 && (at = first_difference(line, len, canon, clen)) != 0)
        rc = fr_seterr(FR_EPERM, err, errlen, "altered: byte %zu is not where signing put it (the "
                       "line is not in canonical form)", at);
    if (rc == 0 && fr_sign_key_id(pub, id) == 0 && strcmp(id, key_id) != 0)
        rc = fr_seterr(FR_EPERM, err, errlen, "signed by key %.16s, not by this public key (%s)",
                       key_id, id);
    if (rc == 0 && sig_decode(json_string_value(json_object_get(sigobj, "value")), sig) < 0)
        rc = fr_seterr(FR_EPROTO, err, errlen, "signature.value: expected %d base64 characters",
                       SIG_B64_LEN);
    if (rc == 0)
        rc = fr_canon_json(json_object_get(whole, "record"), &msg, &mlen, err, errlen);
    if (rc == 0) {
        EVP_MD_CTX *ctx = EVP_MD_CTX_new();
        int ok = ctx && EVP_DigestVerifyInit(ctx, NULL, NULL, NULL, pub) == 1 &&
                 EVP_DigestVerify(ctx, sig, SIG_LEN, (const unsigned char *)msg, mlen) == 1;
        EVP_MD_CTX_free(ctx);
        if (!ok)
            rc = fr_seterr(FR_EPERM, err, errlen, "the signature does not match: the record was "
                           "altered after it was signed");
    }
    if (rc == 0 && record)
        *record = json_incref(json_object_get(whole, "record"));
    free(canon);
    free(msg);
    json_decref(whole);
    return rc;
}
