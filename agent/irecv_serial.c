/* irecv_serial — parsing the DFU/recovery USB serial string; the mode of a product id. */
#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include "flashrack.pb-c.h"
#include "fr_err.h"
#include "irecv_serial.h"

enum field_kind { NUM, TEXT };

struct field {
    const char *key;
    enum field_kind kind;
    int hex_max;   /* NUM: most hex digits */
    size_t offset; /* into struct irecv_serial */
    size_t size;   /* TEXT: buffer size */
};

#define NUM32(k, m) { k, NUM, 8, offsetof(struct irecv_serial, m), sizeof(uint32_t) }
#define TEXTF(k, m) { k, TEXT, 0, offsetof(struct irecv_serial, m), sizeof(((struct irecv_serial *)0)->m) }

static const struct field fields[] = {
    NUM32("CPID", cpid), NUM32("CPRV", cprv), NUM32("CPFM", cpfm), NUM32("SCEP", scep),
    NUM32("BDID", bdid), NUM32("IBFL", ibfl),
    { "ECID", NUM, 16, offsetof(struct irecv_serial, ecid), sizeof(uint64_t) },
    TEXTF("SRNM", srnm), TEXTF("IMEI", imei), TEXTF("SRTG", srtg),
};
#define NFIELDS (sizeof fields / sizeof fields[0])

static const struct field *field_find(const char *key, size_t len)
{
    for (size_t i = 0; i < NFIELDS; i++)
        if (strlen(fields[i].key) == len && memcmp(fields[i].key, key, len) == 0)
            return &fields[i];
    return NULL;
}

static int parse_hex(const char *v, size_t len, int max, uint64_t *out)
{
    if (len == 0 || (int)len > max)
        return -1;
    uint64_t x = 0;
    for (size_t i = 0; i < len; i++) {
        if (!isxdigit((unsigned char)v[i]))
            return -1;
        x = x << 4 | (uint64_t)(isdigit((unsigned char)v[i]) ? v[i] - '0'
                                                               : (tolower((unsigned char)v[i]) - 'a' + 10));
    }
    *out = x;
    return FR__UNIT_MODE__MODE_UNKNOWN;
}

/* Stores one value; returns 0 or -1 with err set. */
static int store(const struct field *f, const char *v, size_t len, struct irecv_serial *out,
                 char *err, size_t errlen)
{
    char *dst = (char *)out + f->offset;
    if (f->kind == TEXT) {
        if (len < 2 || v[0] != '[' || v[len - 1] != ']' || len - 2 >= f->size)
            return fr_seterr(FR_EINVAL, err, errlen, "%s: expected [text] of at most %zu characters, "
                             "got '%.*s'", f->key, f->size - 1, (int)len, v);
        memcpy(dst, v + 1, len - 2);
        dst[len - 2] = '\0';
        return 0;
    }
    uint64_t x;
    if (parse_hex(v, len, f->hex_max, &x) < 0)
        return fr_seterr(FR_EINVAL, err, errlen, "%s: expected at most %d hex digits, got '%.*s'",
                         f->key, f->hex_max, (int)len, v);
    if (f->size == sizeof(uint64_t))
        memcpy(dst, &x, sizeof x);
    else {
        uint32_t y = (uint32_t)x;
        memcpy(dst, &y, sizeof y);
    }
    return FR__UNIT_MODE__MODE_UNKNOWN;
}

/* The end of the value starting at v: a [bracketed] value runs to its ']'
 * (it may hold spaces), anything else to the next space. NULL when unterminated. */
static const char *value_end(const char *v)
{
    if (*v == '[') {
        const char *close = strchr(v, ']');
        return close ? close + 1 : NULL;
    }
    return v + strcspn(v, " ");
}

static int parse_fields(const char *s, struct irecv_serial *out, unsigned *seen, char *err,
                        size_t errlen)
{
    const char *p = s;
    while (*p) {
        if (*p == ' ') {
            p++;
            continue;
        }
        size_t klen = strcspn(p, ": ");
        if (p[klen] != ':')
            return fr_seterr(FR_EINVAL, err, errlen, "expected KEY:value, got '%.*s'",
                             (int)strcspn(p, " "), p);
        const char *v = p + klen + 1, *end = value_end(v);
        if (!end)
            return fr_seterr(FR_EINVAL, err, errlen, "%.*s: unterminated [value]", (int)klen, p);
        if (*end && *end != ' ')
            return fr_seterr(FR_EINVAL, err, errlen, "%.*s: expected a space after the value",
                             (int)klen, p);
        const struct field *f = field_find(p, klen);
        if (f) {
            unsigned bit = 1u << (f - fields);
            if (*seen & bit)
                return fr_seterr(FR_EINVAL, err, errlen, "%s given twice", f->key);
            *seen |= bit;
            if (store(f, v, (size_t)(end - v), out, err, errlen) < 0)
                return FR_EINVAL;
        }
        p = end;
    }
    return FR__UNIT_MODE__MODE_UNKNOWN;
}

int irecv_serial_parse(const char *s, struct irecv_serial *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    size_t n = strnlen(s, IRECV_SERIAL_MAX + 1);
    int rc = 0;
    unsigned seen = 0;
    if (n > IRECV_SERIAL_MAX)
        rc = fr_seterr(FR_EINVAL, err, errlen, "serial string longer than %d bytes", IRECV_SERIAL_MAX);
    else
        rc = parse_fields(s, out, &seen, err, errlen);
    if (rc == 0 && !(seen & 1u << (field_find("CPID", 4) - fields)))
        rc = fr_seterr(FR_EINVAL, err, errlen, "no CPID field");
    if (rc == 0 && !(seen & 1u << (field_find("ECID", 4) - fields)))
        rc = fr_seterr(FR_EINVAL, err, errlen, "no ECID field");
    if (rc < 0)
        memset(out, 0, sizeof *out);
    return rc;
}

int irecv_pid_is_irecv(uint16_t pid)
{
    return pid == 0x1227 || pid == 0x1222 || (pid >= 0x1280 && pid <= 0x1283);
}

int irecv_mode_of_pid(uint16_t pid)
{
    if (pid == 0x1227 || pid == 0x1222)
        return FR__UNIT_MODE__MODE_DFU; /* WTF is the DFU loader of the oldest units */
    if (pid >= 0x1280 && pid <= 0x1283)
        return FR__UNIT_MODE__MODE_RECOVERY;
    if ((pid >= 0x1290 && pid <= 0x12af) || (pid >= 0x1901 && pid <= 0x1905))
        return FR__UNIT_MODE__MODE_NORMAL; /* or restore: only usbmuxd tells */
    return FR__UNIT_MODE__MODE_UNKNOWN;
}
