/* fr_ipsw — what an IPSW holds: BuildManifest.plist read with libzip and libplist,
 * and the build identity a unit will be restored with, chosen the way
 * idevicerestore chooses it (DeviceClass, case-insensitive, and the variant:
 * "Customer Erase Install (IPSW)" / "Customer Upgrade Install (IPSW)", or
 * RestoreBehavior Erase / Update; Research variants are never taken).
 *
 * A file that is not a zip, a zip without a manifest, or a manifest without the
 * unit's model is an error naming the file and what is missing. */
#ifndef FR_IPSW_H
#define FR_IPSW_H

#include <stddef.h>
#include <stdint.h>

#define FR_IPSW_MAX_TYPES 32
#define FR_IPSW_MAX_IDENTITIES 64

struct fr_ipsw_identity {
    char device_class[32];     /* board config, "d321ap" */
    char variant[96];
    char behavior[16];         /* "Erase" or "Update" */
    uint32_t chip_id, board_id;
};

struct fr_ipsw {
    char version[32];          /* ProductVersion, "18.2" */
    char build[32];            /* ProductBuildVersion, "22C152" */
    char product_types[FR_IPSW_MAX_TYPES][24];
    size_t nproduct_types;
    struct fr_ipsw_identity identities[FR_IPSW_MAX_IDENTITIES];
    size_t nidentities;
};

/* Reads path's BuildManifest.plist. Returns 0, or FR_EIO / FR_EINVAL with a reason. */
int fr_ipsw_inspect(const char *path, struct fr_ipsw *out, char *err, size_t errlen);

/* The same from the manifest's bytes (XML or binary plist); path names it in errors. */
int fr_ipsw_parse_manifest(const char *data, size_t len, const char *path, struct fr_ipsw *out,
                           char *err, size_t errlen);

/* Whether the IPSW serves product_type ("iPhone11,2"). */
int fr_ipsw_supports(const struct fr_ipsw *ipsw, const char *product_type);

/* The identity for a board config and mode; NULL with a reason when there is none. */
const struct fr_ipsw_identity *fr_ipsw_identity_for(const struct fr_ipsw *ipsw,
                                                    const char *device_class, int erase,
                                                    char *err, size_t errlen);

#endif
