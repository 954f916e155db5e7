/* irecv_serial — the identity a DFU, WTF or recovery-mode unit carries in its USB
 * serial-number string, and the mode its USB product id means.
 *
 * The string is space-separated KEY:value fields in any order, hex numbers or
 * [bracketed] text: "CPID:8030 CPRV:11 CPFM:03 SCEP:01 BDID:04
 * ECID:001A2B3C4D5E6F70 IBFL:3C SRTG:[iBoot-4479.0.0.100.4]"; iBoot (recovery)
 * adds SRNM:[serial] and sometimes IMEI:[...]. Pure functions, any thread. */
#ifndef IRECV_SERIAL_H
#define IRECV_SERIAL_H

#include <stddef.h>
#include <stdint.h>

/* A USB string descriptor holds at most 126 UTF-16 units; longer is not a serial. */
#define IRECV_SERIAL_MAX 255

#define APPLE_VID 0x05ac

struct irecv_serial {
    uint32_t cpid, cprv, cpfm, scep, bdid, ibfl;
    uint64_t ecid;
    char srnm[32], imei[32], srtg[64];
};

/* Parses s into out. CPID and ECID are required; a key given twice, a number that
 * is not hex or too wide, an unterminated [value], a field without ':' or an
 * overlong string is FR_EINVAL with the reason in err (out is then zeroed).
 * Unknown keys (NONC, SNON, ...) are skipped. */
int irecv_serial_parse(const char *s, struct irecv_serial *out, char *err, size_t errlen);

/* The fr UnitMode number (fr_types.h) for an Apple USB product id: DFU 0x1227 and
 * WTF 0x1222 are dfu, 0x1280-0x1283 recovery, 0x1290-0x12af and 0x1901-0x1905
 * normal (restore mode shares them; usbmuxd tells them apart), else 0 (unknown). */
int irecv_mode_of_pid(uint16_t pid);
/* Whether pid is a DFU, WTF or recovery-mode id (libirecovery's units). */
int irecv_pid_is_irecv(uint16_t pid);

#endif
