/* fr_err — the project's error codes.
 *
 * One X-macro table generates the enum, fr_strerror() and fr_err_name()
 * (libuv's UV_ERRNO_MAP habit). Functions return 0 or a negative FR_E* code;
 * detail text goes into a caller-owned buffer, and the caller decides whether
 * to log it. */
#ifndef FR_ERR_H
#define FR_ERR_H

#include <stddef.h>

#define FR_ERR_MAP(X)                                                   \
    X(EINVAL, -1, "invalid argument")                                   \
    X(ENOMEM, -2, "out of memory")                                      \
    X(EIO, -3, "input/output error")                                    \
    X(ECONFIG, -4, "configuration error")                               \
    X(EPROTO, -5, "malformed message")                                  \
    X(ETOOBIG, -6, "message too large")                                 \
    X(EVERSION, -7, "protocol version mismatch")                        \
    X(ENOTFOUND, -8, "not found")                                       \
    X(EEXIST, -9, "already exists")                                     \
    X(ESTORE, -10, "database error")                                    \
    X(ESTALE, -11, "stale lease")                                       \
    X(EBUSY, -12, "busy")                                               \
    X(ESYS, -13, "system call failed")                                  \
    X(ETIMEDOUT, -14, "timed out")                                      \
    X(EAGAIN, -15, "try again")                                         \
    X(EUNREACH, -16, "peer unreachable")                                \
    X(ECANCELED, -17, "cancelled")                                      \
    X(EUSAGE, -18, "usage error")                                       \
    X(ESTATE, -19, "operation not allowed in this state")               \
    X(EUNAVAIL, -20, "service unavailable")                             \
    X(EPERM, -21, "not permitted")

enum fr_err {
    FR_OK = 0,
#define FR_ERR_ENUM(name, code, text) FR_##name = (code),
    FR_ERR_MAP(FR_ERR_ENUM)
#undef FR_ERR_ENUM
};

/* "invalid argument"; never NULL, also for unknown codes. */
const char *fr_strerror(int err);
/* "FR_EINVAL"; never NULL. */
const char *fr_err_name(int err);

/* printf into a caller-owned error buffer; a NULL buffer is allowed. Returns err. */
int fr_seterr(int err, char *buf, size_t len, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

#endif
