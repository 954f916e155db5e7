/* fr_mux_wire — the framing of the usbmuxd socket and of lockdownd, both directions.
 *
 * usbmuxd: a 16-byte little-endian header {length including the header, version,
 * message, tag}; version 1 with message 8 carries an XML plist (the protocol libusbmuxd
 * 2.0 speaks). lockdownd (port 62078, inside a usbmuxd tunnel): a 4-byte big-endian
 * length, then a plist (XML or binary).
 *
 * Pure: bytes in, plists out, no I/O; every input is treated as hostile (bounded
 * lengths, plists checked to be dictionaries). Decoded plists belong to the caller
 * (plist_free); encoded buffers are malloc'd and belong to the caller (free). */
#ifndef FR_MUX_WIRE_H
#define FR_MUX_WIRE_H

#include <plist/plist.h>
#include <stddef.h>
#include <stdint.h>

#define MUX_HEADER_LEN 16
#define MUX_VERSION_PLIST 1
#define MUX_MESSAGE_PLIST 8
#define MUX_MAX_MESSAGE (1u << 20)     /* usbmuxd's own input buffer is far smaller */
#define LOCKDOWN_MAX_MESSAGE (1u << 20)

/* usbmuxd Result numbers (usbmuxd's proto header; ReadPairRecord answers errno ENOENT). */
enum mux_result {
    MUX_RESULT_OK = 0,
    MUX_RESULT_BADCOMMAND = 1,
    MUX_RESULT_BADDEV = 2,
    MUX_RESULT_CONNREFUSED = 3,
    MUX_RESULT_BADVERSION = 6,
    MUX_RESULT_ENOENT = 2,
};

struct mux_header {
    uint32_t length, version, message, tag;
};

enum mux_parse {
    MUX_PARSE_NEED_MORE = 0,   /* not a whole message yet */
    MUX_PARSE_OK = 1,          /* *dict set (a plist dictionary) */
    MUX_PARSE_SKIP = 2,        /* a whole message that is not a version-1 plist: answer, go on */
    MUX_PARSE_FATAL = -1,      /* the stream cannot be followed any more: close it */
};

/* Reads one usbmuxd message from buf. Sets *used to the bytes it took (on OK and SKIP),
 * fills hdr when the header is complete, and on FATAL or SKIP writes why into err. */
enum mux_parse mux_wire_parse(const uint8_t *buf, size_t len, struct mux_header *hdr,
                              plist_t *dict, size_t *used, char *err, size_t errlen);
/* Reads one lockdownd frame. Same contract; lockdownd has no SKIP. */
enum mux_parse lockdown_wire_parse(const uint8_t *buf, size_t len, plist_t *dict, size_t *used,
                                   char *err, size_t errlen);

/* Encodes dict as a version-1 plist message with tag; returns 0 or -1 (no memory). */
int mux_wire_encode(uint32_t tag, plist_t dict, uint8_t **out, size_t *outlen);
/* Encodes dict as a lockdownd frame (XML); returns 0 or -1. */
int lockdown_wire_encode(plist_t dict, uint8_t **out, size_t *outlen);

/* The string value of key in dict, or NULL (borrowed from dict; never allocated). */
const char *mux_dict_string(plist_t dict, const char *key);
/* The unsigned value of key in dict; returns 0 and sets *out, or -1 when missing or not a number. */
int mux_dict_uint(plist_t dict, const char *key, uint64_t *out);

#endif
