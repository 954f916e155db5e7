/* fr_types — name tables for states, classes, modes; ECID text form. */
#include "fr_types.h"
#include "fr_err.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const state_names[] = {
#define FR_STATE_NAME(e, name, term) name,
    FR_STATE_MAP(FR_STATE_NAME)
#undef FR_STATE_NAME
};

static const int state_terminal[] = {
#define FR_STATE_TERM(e, name, term) term,
    FR_STATE_MAP(FR_STATE_TERM)
#undef FR_STATE_TERM
};

static const char *const class_names[] = {
#define FR_CLASS_NAME(e, name) name,
    FR_CLASS_MAP(FR_CLASS_NAME)
#undef FR_CLASS_NAME
};

static const char *const mode_names[] = { "unknown", "dfu", "recovery", "restore", "normal" };

static int lookup(const char *const *names, int n, const char *name)
{
    if (!name)
        return -1;
    for (int i = 0; i < n; i++)
        if (strcmp(names[i], name) == 0)
            return i;
    return -1;
}

const char *fr_state_name(enum fr_state s)
{
    return (s >= 0 && s < FR_STATE__COUNT) ? state_names[s] : "invalid";
}

int fr_state_parse(const char *name)
{
    return lookup(state_names, FR_STATE__COUNT, name);
}

int fr_state_is_terminal(enum fr_state s)
{
    return (s >= 0 && s < FR_STATE__COUNT) ? state_terminal[s] : 0;
}

const char *fr_class_name(enum fr_class c)
{
    return (c >= 0 && c < FR_CLASS__COUNT) ? class_names[c] : "invalid";
}

int fr_class_parse(const char *name)
{
    return lookup(class_names, FR_CLASS__COUNT, name);
}

const char *fr_mode_name(int mode)
{
    return (mode >= 0 && mode < 5) ? mode_names[mode] : "unknown";
}

int fr_mode_parse(const char *name)
{
    return lookup(mode_names, 5, name);
}

/* By hand, not printf: a page of 1,000 rows formats an ECID per row. As "0x%016llX",
 * truncated as snprintf truncates. */
void fr_ecid_format(uint64_t ecid, char *buf, size_t len)
{
    static const char hex[] = "0123456789ABCDEF";
    char t[FR_ECID_STRLEN] = "0x";
    for (int i = FR_ECID_STRLEN - 2; i >= 2; i--, ecid >>= 4)
        t[i] = hex[ecid & 15];
    t[FR_ECID_STRLEN - 1] = '\0';
    if (!len)
        return;
    size_t n = len - 1 < FR_ECID_STRLEN - 1 ? len - 1 : FR_ECID_STRLEN - 1;
    memcpy(buf, t, n);
    buf[n] = '\0';
}

static int all_hex(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!isxdigit((unsigned char)s[i]))
            return 0;
    return 1;
}

int fr_is_url(const char *s)
{
    return s && (!strncmp(s, "http://", 7) || !strncmp(s, "https://", 8));
}

int fr_is_hex(const char *s)
{
    return s && all_hex(s, strlen(s));
}

int fr_is_hash_hex(const char *s)
{
    size_t n = s ? strlen(s) : 0;
    return (n == 64 || n == 40) && all_hex(s, n);
}

int fr_is_loopback_endpoint(const char *ep)
{
    if (!strncmp(ep, "ipc://", 6))
        return 1;
    if (!strncmp(ep, "tcp://", 6))
        ep += 6;
    const char *colon = strrchr(ep, ':');
    if (!colon || colon == ep)
        return 0;
    size_t n = (size_t)(colon - ep);
    if (ep[0] == '[' && ep[n - 1] == ']') {
        ep++;
        n -= 2;
    }
    char host[64];
    if (n >= sizeof host)
        return 0;
    memcpy(host, ep, n);
    host[n] = '\0';
    unsigned a, b, c, d;
    char tail;
    if (sscanf(host, "%u.%u.%u.%u%c", &a, &b, &c, &d, &tail) == 4)
        return a == 127 && b < 256 && c < 256 && d < 256;
    return !strcmp(host, "::1") || !strcmp(host, "localhost");
}

int fr_ecid_parse(const char *s, uint64_t *out)
{
    if (!s || !*s)
        return FR_EINVAL;
    int base = 10;
    const char *p = s;
    size_t n = strlen(s);
    if (n > 2 && p[0] == '0' && (p[1] == 'x' || p[1] == 'X')) {
        p += 2;
        n -= 2;
        base = 16;
    } else if (n == 16 && all_hex(p, n)) {
        base = 16;
    }
    if (n == 0 || n > 20 || (base == 16 && (n > 16 || !all_hex(p, n))))
        return FR_EINVAL;
    for (size_t i = 0; base == 10 && i < n; i++)
        if (!isdigit((unsigned char)p[i]))
            return FR_EINVAL;
    errno = 0;
    char *end = NULL;
    unsigned long long v = strtoull(p, &end, base);
    if (errno || !end || *end || v == 0)
        return FR_EINVAL;
    *out = (uint64_t)v;
    return 0;
}
