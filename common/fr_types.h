/* fr_types — names shared by controller, agent and CLI: unit-run states,
 * failure classes, unit modes, ECID text form.
 *
 * Each list is an X-macro so that enum and name table cannot drift. */
#ifndef FR_TYPES_H
#define FR_TYPES_H

#include <stddef.h>
#include <stdint.h>

/* Unit-run states (ARCHITECTURE §3). Terminal ones are marked 1. */
#define FR_STATE_MAP(X)                  \
    X(WAITING_UNIT, "waiting_unit", 0)   \
    X(PREFLIGHT, "preflight", 0)         \
    X(FETCHING_FIRMWARE, "fetching_firmware", 0) \
    X(QUEUED_FOR_BUS, "queued_for_bus", 0) \
    X(RESTORING, "restoring", 0)         \
    X(VERIFYING, "verifying", 0)         \
    X(DONE, "done", 1)                   \
    X(NEEDS_MOVE, "needs_move", 0)       \
    X(NEEDS_OPERATOR, "needs_operator", 0) \
    X(HARDWARE_SUSPECT, "hardware_suspect", 1) \
    X(FAILED, "failed", 1)               \
    X(CANCELLED, "cancelled", 1)

enum fr_state {
#define FR_STATE_ENUM(e, name, term) FR_STATE_##e,
    FR_STATE_MAP(FR_STATE_ENUM)
#undef FR_STATE_ENUM
    FR_STATE__COUNT
};

const char *fr_state_name(enum fr_state s);
/* Returns -1 for an unknown name. */
int fr_state_parse(const char *name);
int fr_state_is_terminal(enum fr_state s);

/* Failure classes (ERRORS.md). */
#define FR_CLASS_MAP(X)                      \
    X(NONE, "")                              \
    X(LINK_LOST, "link_lost")                \
    X(NO_DEVICE, "no_device")                \
    X(NEEDS_DFU, "needs_dfu")                \
    X(NOT_SIGNED, "not_signed")              \
    X(NETWORK, "network")                    \
    X(FIRMWARE, "firmware")                  \
    X(WRONG_FIRMWARE, "wrong_firmware")      \
    X(STACK_TOO_OLD, "stack_too_old")        \
    X(HARDWARE, "hardware")                  \
    X(BATTERY, "battery")                    \
    X(VERIFICATION, "verification")          \
    X(UNKNOWN, "unknown")                    \
    X(INTERRUPTED, "interrupted")

enum fr_class {
#define FR_CLASS_ENUM(e, name) FR_CLASS_##e,
    FR_CLASS_MAP(FR_CLASS_ENUM)
#undef FR_CLASS_ENUM
    FR_CLASS__COUNT
};

const char *fr_class_name(enum fr_class c);
int fr_class_parse(const char *name); /* -1 when unknown */

/* Unit modes, same numbering as fr.UnitMode on the wire. */
const char *fr_mode_name(int mode); /* "dfu", "recovery", "restore", "normal", "unknown" */
int fr_mode_parse(const char *name); /* -1 when unknown */

/* ECID text form: "0x001A2B3C4D5E6F70" (16 upper-case hex digits). buf >= 19 bytes. */
#define FR_ECID_STRLEN 19
void fr_ecid_format(uint64_t ecid, char *buf, size_t len);
/* Accepts "0x..." hex, bare 16-digit hex, or decimal. Returns 0 or FR_EINVAL. */
int fr_ecid_parse(const char *s, uint64_t *out);

/* Firmware references. A download is an http(s) URL; an IPSW's hash is 64 (SHA-256)
 * or 40 (SHA-1) hex digits; fr_is_hex accepts any length, "" included. */
int fr_is_url(const char *s);
int fr_is_hash_hex(const char *s);
int fr_is_hex(const char *s);

/* 1 when an endpoint can be reached only from this host: "tcp://HOST:PORT" or
 * "HOST:PORT" with HOST 127.0.0.1 (any 127/8 address), ::1 ([::1]) or localhost,
 * or an ipc:// path. */
int fr_is_loopback_endpoint(const char *ep);

#endif
